//! exactly-net through the chaos proxy against the real broker: connections
//! cut mid-pipeline, black-holed, and held then released after the client
//! gave up. Every in-flight request fails within its timeout with a retriable
//! error that says whether it may have been delivered; the next request
//! reconnects; nothing hangs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use exactly_codec::messages::create_topics_request::CreatableTopic;
use exactly_codec::messages::metadata_request::MetadataRequestTopic;
use exactly_codec::messages::{CreateTopicsRequest, MetadataRequest, TopicName};
use exactly_net::{Connection, Connector, Delivery, Disconnect, Metrics, NetConfig, NetError};
use exactly_protocol_tests::proxy::{ChaosProxy, Faults};
use exactly_protocol_tests::{unique_topic, Broker, TransactionVersion};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn connector(addr: &str, timeout_ms: u64) -> Connector {
    let cfg = NetConfig::from_properties([
        ("bootstrap.servers", addr),
        ("request.timeout.ms", &timeout_ms.to_string()),
        ("max.in.flight.requests.per.connection", "64"),
    ])
    .unwrap();
    Connector::new(Arc::new(cfg), Arc::new(Metrics::default())).unwrap()
}

fn metadata(topic: &str) -> MetadataRequest {
    MetadataRequest::default()
        .with_topics(Some(vec![
            MetadataRequestTopic::default().with_name(Some(TopicName(topic.to_owned().into())))
        ]))
        // The harness broker auto-creates topics; a probe must not.
        .with_allow_auto_topic_creation(false)
}

async fn reconnect(c: &Connector, addr: &str) -> Connection {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match c.connect(addr, Some(1)).await {
            Ok(conn) => return conn,
            Err(e) => {
                assert!(e.is_retriable(), "{e:?}");
                assert!(Instant::now() < deadline, "could not reconnect: {e}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

/// Cut every connection after 0.5-1.5 s while 64 requests at a time are in
/// flight, for about 6 s. Every request ends (answer or typed retriable
/// error) within its timeout, and the client keeps reconnecting.
#[test]
fn cuts_mid_pipeline_fail_in_flight_requests_and_reconnect() {
    let broker = Broker::shared(TransactionVersion::V2).unwrap_or_else(|e| panic!("{e}"));
    let topic = unique_topic("chaos-cut");
    broker.create_topic(&topic, 3).unwrap();
    runtime().block_on(async {
        let proxy = ChaosProxy::start(&broker.address(1)).await.unwrap();
        let timeout = Duration::from_millis(3_000);
        let c = connector(&proxy.addr(), timeout.as_millis() as u64);
        let mut conn = reconnect(&c, &proxy.addr()).await;
        proxy.set_faults(Faults {
            cut_after: Some((500, 1500)),
            ..Faults::default()
        });
        conn.close();
        conn = reconnect(&c, &proxy.addr()).await;
        let until = Instant::now() + Duration::from_secs(6);
        let (mut ok, mut maybe, mut not_sent) = (0u32, 0u32, 0u32);
        while Instant::now() < until {
            if conn.is_closed() {
                conn = reconnect(&c, &proxy.addr()).await;
            }
            let batch: Vec<_> = (0..64)
                .map(|_| {
                    let conn = conn.clone();
                    let req = metadata(&topic);
                    tokio::spawn(async move {
                        let started = Instant::now();
                        let r = conn.send(&req).await;
                        (r, started.elapsed())
                    })
                })
                .collect();
            for h in batch {
                let (r, took) = h.await.unwrap();
                assert!(took < timeout + Duration::from_secs(1), "took {took:?}");
                match r {
                    Ok(resp) => {
                        assert_eq!(resp.topics[0].partitions.len(), 3);
                        ok += 1;
                    }
                    Err(e) => {
                        assert!(e.is_retriable(), "{e:?}");
                        assert!(
                            matches!(e, NetError::ConnectionLost { .. } | NetError::Timeout { .. }),
                            "{e:?}"
                        );
                        match e.delivery() {
                            Delivery::MaybeDelivered => maybe += 1,
                            Delivery::NotSent => not_sent += 1,
                        }
                    }
                }
            }
        }
        eprintln!(
            "cuts: {}, answered {ok}, failed maybe-delivered {maybe}, failed not-sent {not_sent}, metrics {:?}",
            proxy.cuts(),
            c.metrics().snapshot()
        );
        assert!(proxy.cuts() >= 3, "{}", proxy.cuts());
        assert!(ok > 100);
        assert!(maybe + not_sent > 0, "cuts must have hit requests in flight");
        // Faults off: the next request reconnects and succeeds.
        proxy.set_faults(Faults::default());
        let conn = reconnect(&c, &proxy.addr()).await;
        conn.send(&metadata(&topic)).await.unwrap();
    });
}

/// A black hole: the connection stays open but nothing comes back. Requests
/// fail with a timeout (maybe delivered) within request.timeout.ms.
#[test]
fn black_hole_times_out_promptly() {
    let broker = Broker::shared(TransactionVersion::V2).unwrap_or_else(|e| panic!("{e}"));
    runtime().block_on(async {
        let proxy = ChaosProxy::start(&broker.address(1)).await.unwrap();
        let c = connector(&proxy.addr(), 800);
        let conn = reconnect(&c, &proxy.addr()).await;
        proxy.set_faults(Faults {
            black_hole: true,
            ..Faults::default()
        });
        let started = Instant::now();
        let results = tokio::time::timeout(Duration::from_secs(10), async {
            let mut v = Vec::new();
            let hs: Vec<_> = (0..10)
                .map(|_| {
                    let conn = conn.clone();
                    tokio::spawn(async move { conn.send(&metadata("x")).await })
                })
                .collect();
            for h in hs {
                v.push(h.await.unwrap());
            }
            v
        })
        .await
        .expect("nothing may hang");
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(800) && took < Duration::from_secs(3),
            "{took:?}"
        );
        for r in results {
            let e = r.unwrap_err();
            // The first request to time out closes the connection (every
            // later response would queue behind it); requests whose own timer
            // had not fired yet end with the connection, for that reason.
            assert!(
                matches!(
                    e,
                    NetError::Timeout { .. }
                        | NetError::ConnectionLost {
                            cause: Disconnect::RequestTimedOut { .. },
                            ..
                        }
                ),
                "{e:?}"
            );
            assert_eq!(e.delivery(), Delivery::MaybeDelivered);
            assert!(e.is_retriable());
        }
        // A connection attempt through the black hole fails within the
        // timeout too (the handshake's ApiVersions is never answered).
        let e = c.connect(&proxy.addr(), Some(1)).await.unwrap_err();
        assert!(e.is_retriable(), "{e:?}");
        proxy.set_faults(Faults::default());
        let conn = reconnect(&c, &proxy.addr()).await;
        conn.send(&metadata("x")).await.unwrap();
    });
}

/// Hold-and-release (the KAFKA-17754 shape): a CreateTopics is held by the
/// proxy, the client times out and gives up with "maybe delivered", then the
/// proxy releases the bytes and the broker acts on them. "Maybe delivered"
/// was the truth.
#[test]
fn held_request_released_after_the_client_gave_up_is_applied() {
    let broker = Broker::shared(TransactionVersion::V2).unwrap_or_else(|e| panic!("{e}"));
    let topic = unique_topic("chaos-held");
    runtime().block_on(async {
        let proxy = ChaosProxy::start(&broker.address(1)).await.unwrap();
        let c = connector(&proxy.addr(), 500);
        let conn = reconnect(&c, &proxy.addr()).await;
        proxy.set_faults(Faults {
            hold: true,
            ..Faults::default()
        });
        let req = CreateTopicsRequest::default()
            .with_timeout_ms(10_000)
            .with_topics(vec![CreatableTopic::default()
                .with_name(TopicName(topic.clone().into()))
                .with_num_partitions(2)
                .with_replication_factor(1)]);
        let e = conn.send(&req).await.unwrap_err();
        assert!(matches!(e, NetError::Timeout { .. }), "{e:?}");
        assert_eq!(e.delivery(), Delivery::MaybeDelivered);
        assert!(conn.is_closed());
        // The topic does not exist yet.
        let direct = connector(&broker.address(1), 5_000);
        let dconn = reconnect(&direct, &broker.address(1)).await;
        let md = dconn.send(&metadata(&topic)).await.unwrap();
        assert_ne!(md.topics[0].error_code, 0);
        // Release: the broker gets the request the client gave up on.
        proxy.set_faults(Faults::default());
        proxy.release();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let md = dconn.send(&metadata(&topic)).await.unwrap();
            if md.topics[0].error_code == 0 {
                assert_eq!(md.topics[0].partitions.len(), 2);
                break;
            }
            assert!(Instant::now() < deadline, "held CreateTopics never applied");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
}

/// Delay: slow answers still arrive within a generous timeout, and a
/// per-request timeout shorter than the delay fails that request (and the
/// connection) as maybe delivered.
#[test]
fn delayed_bytes_answer_late_or_time_out() {
    let broker = Broker::shared(TransactionVersion::V2).unwrap_or_else(|e| panic!("{e}"));
    runtime().block_on(async {
        let proxy = ChaosProxy::start(&broker.address(1)).await.unwrap();
        let c = connector(&proxy.addr(), 5_000);
        let conn = reconnect(&c, &proxy.addr()).await;
        proxy.set_faults(Faults {
            delay: Duration::from_millis(200),
            ..Faults::default()
        });
        let t = Instant::now();
        conn.send(&metadata("x")).await.unwrap();
        assert!(
            t.elapsed() >= Duration::from_millis(400),
            "{:?}",
            t.elapsed()
        );
        let e = conn
            .send_with(
                &metadata("x"),
                exactly_net::SendOptions {
                    version: None,
                    timeout: Some(Duration::from_millis(150)),
                },
            )
            .await
            .unwrap_err();
        assert!(matches!(e, NetError::Timeout { .. }), "{e:?}");
        assert_eq!(e.delivery(), Delivery::MaybeDelivered);
        assert!(conn.is_closed());
    });
}
