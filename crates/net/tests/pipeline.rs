//! Pipelining, cancellation, timeouts and disconnects against an in-process
//! fake broker.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use exactly_codec::messages::metadata_request::MetadataRequestTopic;
use exactly_codec::messages::{ApiVersionsRequest, MetadataRequest, TopicName};
use exactly_codec::CodecError;
use exactly_net::{Connection, Connector, Delivery, Disconnect, Metrics, NetConfig, NetError};
use support::{FakeBroker, Mode};

async fn connect(fb: &FakeBroker, max_in_flight: usize, timeout_ms: u64) -> Connection {
    let mut b = NetConfig::builder();
    b.set("bootstrap.servers", &fb.addr).unwrap();
    b.set(
        "max.in.flight.requests.per.connection",
        &max_in_flight.to_string(),
    )
    .unwrap();
    b.set("request.timeout.ms", &timeout_ms.to_string())
        .unwrap();
    let connector =
        Connector::new(Arc::new(b.build().unwrap()), Arc::new(Metrics::default())).unwrap();
    connector.connect(&fb.addr, Some(1)).await.unwrap()
}

fn topics_for(i: usize) -> Vec<String> {
    (0..i % 7)
        .map(|k| format!("t{i}-{k}-{}", "x".repeat((i * 31 + k * 7) % 53)))
        .collect()
}

fn metadata(names: &[String]) -> MetadataRequest {
    MetadataRequest::default().with_topics(Some(
        names
            .iter()
            .map(|n| MetadataRequestTopic::default().with_name(Some(TopicName(n.clone().into()))))
            .collect(),
    ))
}

async fn ask(conn: &Connection, names: &[String]) -> Result<Vec<String>, NetError> {
    let r = conn.send(&metadata(names)).await?;
    Ok(r.topics
        .iter()
        .map(|t| {
            let name = t.name.as_ref().unwrap().0.to_string();
            // Sizes differ per topic: the partition count is the name length.
            assert_eq!(t.partitions.len(), name.len());
            name
        })
        .collect())
}

async fn ask_n(conn: &Connection, i: usize) -> Result<Vec<String>, NetError> {
    let t = topics_for(i);
    ask(conn, &t).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_pipelined_mixed_requests_with_random_drops() {
    let fb = FakeBroker::start(Mode::Normal).await;
    let conn = connect(&fb, 128, 30_000).await;
    let started = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for i in 0..10_000usize {
        let c = conn.clone();
        set.spawn(async move {
            let work = async {
                if i % 5 == 0 {
                    let r = c.send(&ApiVersionsRequest::default()).await.unwrap();
                    assert!(!r.api_keys.is_empty());
                } else {
                    let want = topics_for(i);
                    assert_eq!(ask(&c, &want).await.unwrap(), want, "request {i}");
                }
            };
            // Drop roughly one caller in eleven part-way through.
            let drop_it = (i.wrapping_mul(2_654_435_761) >> 7) % 11 == 0;
            if drop_it {
                tokio::select! {
                    biased;
                    _ = work => true,
                    _ = tokio::task::yield_now() => false,
                }
            } else {
                work.await;
                true
            }
        });
    }
    let mut answered = 0;
    while let Some(r) = set.join_next().await {
        if r.unwrap() {
            answered += 1;
        }
    }
    let elapsed = started.elapsed();
    eprintln!("10,000 pipelined requests over one connection: {elapsed:?} ({answered} awaited to the end)");
    assert!(answered >= 9_000);
    // The stream is still in step after all the drops.
    let want = topics_for(12_345);
    assert_eq!(ask(&conn, &want).await.unwrap(), want);
    let m = conn.metrics().snapshot();
    assert_eq!(m.disconnects, 0);
    assert_eq!(
        m.requests, m.responses,
        "every written request was answered: {m:?}"
    );
    assert_eq!(fb.state.connections.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn correlation_mismatch_fails_the_connection() {
    let fb = FakeBroker::start(Mode::SwapPairs).await;
    let conn = connect(&fb, 5, 30_000).await;
    let a = topics_for(1);
    let b = topics_for(2);
    let (ra, rb) = tokio::join!(ask(&conn, &a), ask(&conn, &b));
    for r in [ra, rb] {
        match r {
            Err(
                e @ NetError::ConnectionLost {
                    cause: Disconnect::ProtocolViolation(_),
                    delivery: Delivery::MaybeDelivered,
                    ..
                },
            ) => assert!(!e.is_retriable()),
            other => panic!("{other:?}"),
        }
    }
    assert!(conn.is_closed());
    match ask(&conn, &a).await {
        Err(e @ NetError::ConnectionLost { .. }) => assert_eq!(e.delivery(), Delivery::NotSent),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn timeout_fails_every_in_flight_request_promptly() {
    let fb = FakeBroker::start(Mode::Silent).await;
    let conn = connect(&fb, 5, 300).await;
    let started = Instant::now();
    let all = async { tokio::join!(ask_n(&conn, 1), ask_n(&conn, 2), ask_n(&conn, 3)) };
    let (a, b, c) = tokio::time::timeout(Duration::from_secs(10), all)
        .await
        .expect("nothing may hang");
    assert!(started.elapsed() >= Duration::from_millis(300));
    for r in [a, b, c] {
        let e = r.unwrap_err();
        assert!(matches!(e, NetError::Timeout { .. }), "{e:?}");
        assert!(e.is_retriable());
        assert_eq!(e.delivery(), Delivery::MaybeDelivered);
    }
    assert!(conn.is_closed());
    assert_eq!(conn.metrics().snapshot().timeouts, 1);
}

#[tokio::test]
async fn disconnect_tells_written_from_unwritten() {
    let fb = FakeBroker::start(Mode::CloseAfter(1)).await;
    // One request in flight at a time: the others wait their turn unwritten.
    let conn = connect(&fb, 1, 30_000).await;
    let (a, b, c) = tokio::join!(ask_n(&conn, 1), ask_n(&conn, 2), ask_n(&conn, 3));
    let mut deliveries: Vec<Delivery> = [a, b, c]
        .into_iter()
        .map(|r| {
            let e = r.unwrap_err();
            assert!(e.is_retriable(), "{e:?}");
            assert!(
                matches!(
                    e,
                    NetError::ConnectionLost {
                        cause: Disconnect::ClosedByPeer | Disconnect::Io { .. },
                        ..
                    }
                ),
                "{e:?}"
            );
            e.delivery()
        })
        .collect();
    deliveries.sort_by_key(|d| *d == Delivery::NotSent);
    assert_eq!(
        deliveries,
        vec![
            Delivery::MaybeDelivered,
            Delivery::NotSent,
            Delivery::NotSent
        ]
    );
    assert_eq!(fb.state.requests.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn dropped_caller_response_is_discarded_and_stream_stays_in_step() {
    let fb = FakeBroker::start(Mode::Hold(2)).await;
    let conn = connect(&fb, 5, 30_000).await;
    let first = topics_for(1);
    {
        let c = conn.clone();
        let f = async move { ask(&c, &first).await };
        let mut f = Box::pin(f);
        // Poll until the broker has the request, then drop the future.
        while fb.state.requests.load(Ordering::SeqCst) < 1 {
            tokio::select! {
                biased;
                r = &mut f => panic!("answered while held: {r:?}"),
                _ = tokio::time::sleep(Duration::from_millis(5)) => {}
            }
        }
    }
    let second = topics_for(2);
    assert_eq!(ask(&conn, &second).await.unwrap(), second);
    let m = conn.metrics().snapshot();
    assert_eq!(m.discarded_responses, 1);
    assert_eq!(m.responses, m.requests);
}

#[tokio::test]
async fn throttle_holds_back_the_next_request() {
    let fb = FakeBroker::start(Mode::Throttle(300)).await;
    let conn = connect(&fb, 5, 30_000).await;
    ask_n(&conn, 1).await.unwrap();
    let answered = Instant::now();
    ask_n(&conn, 2).await.unwrap();
    // A lower bound only: the second request waited out the throttle.
    assert!(answered.elapsed() >= Duration::from_millis(290));
    let arrivals = fb.state.arrivals.lock().unwrap().clone();
    let md: Vec<_> = arrivals.iter().filter(|a| a.0 == 3).collect();
    assert_eq!(md.len(), 2);
    assert!(md[1].2 - md[0].2 >= Duration::from_millis(290));
    assert_eq!(conn.metrics().snapshot().throttled, 2);
}

#[tokio::test]
async fn api_versions_falls_back_on_unsupported_version() {
    let fb = FakeBroker::start(Mode::ApiVersionsMax(2)).await;
    let conn = connect(&fb, 5, 30_000).await;
    let versions: Vec<(i16, i16)> = fb
        .state
        .arrivals
        .lock()
        .unwrap()
        .iter()
        .map(|a| (a.0, a.1))
        .collect();
    assert_eq!(versions, vec![(18, 4), (18, 2)]);
    assert_eq!(conn.version_of::<ApiVersionsRequest>().unwrap(), 2);
    let want = topics_for(4);
    assert_eq!(ask(&conn, &want).await.unwrap(), want);
}

#[tokio::test]
async fn caller_chosen_version_is_checked_and_used() {
    let fb = FakeBroker::start(Mode::Normal).await;
    let conn = connect(&fb, 5, 30_000).await;
    assert_eq!(conn.version_of::<MetadataRequest>().unwrap(), 12);
    let r = conn.send_at(&metadata(&topics_for(3)), 9).await.unwrap();
    assert_eq!(r.topics.len(), 3);
    let arrivals = fb.state.arrivals.lock().unwrap().clone();
    assert_eq!(arrivals.last().map(|a| (a.0, a.1)), Some((3, 9)));
    let e = conn.send_at(&metadata(&[]), 13).await.unwrap_err();
    assert!(matches!(
        e,
        NetError::Codec(CodecError::UnsupportedVersion { broker_max: 12, .. })
    ));
    assert_eq!(e.delivery(), Delivery::NotSent);
}

#[tokio::test]
async fn undecodable_response_is_a_typed_error_and_the_stream_stays_usable() {
    let fb = FakeBroker::start(Mode::Truncated).await;
    let conn = connect(&fb, 5, 30_000).await;
    let e = ask_n(&conn, 3).await.unwrap_err();
    assert!(
        matches!(e, NetError::Codec(CodecError::Decode { .. })),
        "{e:?}"
    );
    assert_eq!(e.delivery(), Delivery::MaybeDelivered);
    assert!(!e.is_retriable());
    // Framing was intact, so the connection goes on.
    fb.set_mode(Mode::Normal);
    assert!(!conn.is_closed());
    let want = topics_for(5);
    assert_eq!(ask(&conn, &want).await.unwrap(), want);
}

#[tokio::test]
async fn produce_acks0_goes_without_response_and_keeps_the_fifo_in_step() {
    use exactly_codec::messages::ProduceRequest;
    use exactly_net::SendOptions;
    let fb = FakeBroker::start(Mode::Normal).await;
    let conn = connect(&fb, 5, 30_000).await;
    let produce = ProduceRequest::default().with_acks(0).with_timeout_ms(1000);
    for i in 0..20 {
        // Interleave unanswered Produce with answered Metadata.
        conn.send_without_response(&produce, SendOptions::default())
            .await
            .unwrap();
        let want = topics_for(i);
        assert_eq!(ask(&conn, &want).await.unwrap(), want);
    }
    assert_eq!(fb.state.produces.load(Ordering::SeqCst), 20);
    // Only Produce may go unanswered.
    let e = conn
        .send_without_response(&metadata(&[]), SendOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(e, NetError::Codec(CodecError::Encode { .. })),
        "{e:?}"
    );
    // A version outside the broker's range is refused before sending.
    let e = conn
        .send_without_response(
            &produce,
            SendOptions {
                version: Some(13),
                timeout: None,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(e.delivery(), Delivery::NotSent);
    let m = conn.metrics().snapshot();
    assert_eq!(m.requests, m.responses + 20);
}
