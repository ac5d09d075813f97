//! The producer against a broker reached only through the chaos proxy (the
//! broker advertises the proxy's address): `delivery.timeout.ms` expiry as
//! the txn core classifies it (idempotent: retriable, maybe written;
//! transactional: the transaction must abort), `buffer.memory`
//! back-pressure, `close` with a deadline, and a held request delivered
//! after the client gave up on it (written once, never twice).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod producer_support;

use std::time::{Duration, Instant};

use exactly_producer::{DeliveryFailure, DeliveryFuture, ProducerError, ProducerRecord};
use exactly_protocol_tests::proxy::{ChaosProxy, Faults};
use exactly_protocol_tests::{unique_topic, Broker, BrokerConfig, TransactionVersion};
use producer_support::*;

fn failure(e: &ProducerError) -> Option<DeliveryFailure> {
    match e {
        ProducerError::Delivery { error, .. } => Some(error.failure),
        _ => None,
    }
}

fn black_hole() -> Faults {
    Faults {
        black_hole: true,
        ..Faults::default()
    }
}

#[test]
fn faults_through_the_proxy() {
    let reserved = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = reserved.local_addr().unwrap().port();
    let broker = Broker::start(
        BrokerConfig::with_transaction_version(TransactionVersion::V2).property(
            "advertised.listeners",
            format!("PLAINTEXT://127.0.0.1:{port}"),
        ),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let topic = unique_topic("faults");
    broker.create_topic(&topic, 1).unwrap();
    let rt = runtime();
    let proxy = rt
        .block_on(ChaosProxy::start_on(reserved, &broker.address(1)))
        .unwrap();
    let fast = [
        ("request.timeout.ms", "1000"),
        ("delivery.timeout.ms", "2500"),
        ("linger.ms", "0"),
        ("retry.backoff.ms", "50"),
        ("reconnect.backoff.max.ms", "200"),
        ("socket.connection.setup.timeout.ms", "1000"),
    ];
    let everything = rt.block_on(async {
        let check = net_client(&broker.bootstrap()).await;

        // 1. Idempotent delivery timeout: the request goes into a black
        // hole; the batch expires as "maybe written", retriable.
        let p = producer(&proxy.addr(), &fast).await;
        p.send(ProducerRecord::new(&topic).with_value(b"warm"))
            .await
            .unwrap()
            .await
            .unwrap();
        proxy.set_faults(black_hole());
        let started = Instant::now();
        let f = p
            .send(ProducerRecord::new(&topic).with_value(b"lost?"))
            .await
            .unwrap();
        let e = f.await.unwrap_err();
        let took = started.elapsed();
        eprintln!("expired after {took:?}: {e}");
        assert_eq!(failure(&e), Some(DeliveryFailure::Expired), "{e:?}");
        assert!(e.maybe_written(), "its request was sent: {e:?}");
        assert!(
            e.is_retriable() && !e.is_abortable() && !e.is_fatal(),
            "{e:?}"
        );
        assert!(
            took >= Duration::from_millis(2400) && took < Duration::from_secs(10),
            "{took:?}"
        );
        proxy.set_faults(Faults::default());
        proxy.cut_all();
        let m = p
            .send(ProducerRecord::new(&topic).with_value(b"after"))
            .await
            .unwrap()
            .await
            .unwrap();
        assert!(m.offset.is_some());

        // 2. `close` with a deadline while nothing gets through.
        proxy.set_faults(black_hole());
        let pending = p
            .send(ProducerRecord::new(&topic).with_value(b"stuck"))
            .await
            .unwrap();
        let started = Instant::now();
        let e = p.close(Duration::from_millis(500)).await.unwrap_err();
        assert!(
            matches!(e, ProducerError::Timeout { what: "close", .. }),
            "{e:?}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
        let e = pending.await.unwrap_err();
        assert!(matches!(e, ProducerError::Closed), "{e:?}");
        proxy.set_faults(Faults::default());
        proxy.cut_all();

        // 3. buffer.memory: sends wait for room, then give up after
        // max.block.ms; buffered bytes never exceed buffer.memory.
        let mut props = fast.to_vec();
        props.extend([
            ("buffer.memory", "65536"),
            ("max.block.ms", "500"),
            ("delivery.timeout.ms", "60000"),
            ("request.timeout.ms", "5000"),
        ]);
        let p = producer(&proxy.addr(), &props).await;
        p.send(ProducerRecord::new(&topic).with_value(b"warm"))
            .await
            .unwrap()
            .await
            .unwrap();
        proxy.set_faults(black_hole());
        let value = vec![3u8; 1000];
        let mut accepted: Vec<DeliveryFuture> = Vec::new();
        let blocked_at = loop {
            let started = Instant::now();
            match p.send(ProducerRecord::new(&topic).with_value(&value)).await {
                Ok(f) => accepted.push(f),
                Err(e) => {
                    assert!(
                        matches!(
                            e,
                            ProducerError::Timeout {
                                what: "buffer.memory",
                                ..
                            }
                        ),
                        "{e:?}"
                    );
                    assert!(e.is_retriable());
                    break started.elapsed();
                }
            }
            assert!(accepted.len() < 1000, "buffer.memory does not hold back");
        };
        eprintln!(
            "{} records of 1000 B accepted into 64 KiB, then blocked {blocked_at:?}",
            accepted.len()
        );
        assert!(
            accepted.len() >= 30 && accepted.len() * 1000 <= 65536,
            "{}",
            accepted.len()
        );
        assert!(blocked_at >= Duration::from_millis(450), "{blocked_at:?}");
        // Room comes back once the broker answers: everything is delivered.
        proxy.set_faults(Faults::default());
        proxy.cut_all();
        for f in accepted {
            f.await.unwrap();
        }
        p.send(ProducerRecord::new(&topic).with_value(&value))
            .await
            .unwrap()
            .await
            .unwrap();
        p.close(Duration::from_secs(10)).await.unwrap();

        // 4. A Produce held by the proxy past the client's timeout, released
        // after the client retried on new connections: written once.
        let mut props = fast.to_vec();
        props.push(("delivery.timeout.ms", "60000"));
        let p = producer(&proxy.addr(), &props).await;
        p.send(ProducerRecord::new(&topic).with_value(b"warm"))
            .await
            .unwrap()
            .await
            .unwrap();
        proxy.set_faults(Faults {
            hold: true,
            ..Faults::default()
        });
        let f = p
            .send(ProducerRecord::new(&topic).with_value(b"held-once"))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(3500)).await;
        proxy.set_faults(Faults::default());
        proxy.release();
        let m = f.await.unwrap();
        eprintln!("held record delivered: {m:?}");
        p.close(Duration::from_secs(10)).await.unwrap();
        let all = fetch_all(&check, &topic, 0).await;
        let held = all
            .iter()
            .filter(|r| r.value.as_deref() == Some(&b"held-once"[..]))
            .count();
        assert_eq!(
            held, 1,
            "the held and retried record is in the log exactly once"
        );
        if let Some(o) = m.offset {
            assert_eq!(
                all.iter().find(|r| r.offset == o).unwrap().value.as_deref(),
                Some(&b"held-once"[..])
            );
        }

        // 5. Transactional delivery timeout: the transaction must abort;
        // the producer lives on.
        let txn_id = unique_topic("faults-txn");
        let mut props = fast.to_vec();
        props.push(("transactional.id", &txn_id));
        let t = producer(&proxy.addr(), &props).await;
        t.init_transactions().await.unwrap();
        t.begin_transaction().await.unwrap();
        t.send(ProducerRecord::new(&topic).with_value(b"txn-doomed-0"))
            .await
            .unwrap()
            .await
            .unwrap();
        proxy.set_faults(black_hole());
        let f = t
            .send(ProducerRecord::new(&topic).with_value(b"txn-doomed-1"))
            .await
            .unwrap();
        let e = f.await.unwrap_err();
        assert_eq!(failure(&e), Some(DeliveryFailure::Expired), "{e:?}");
        assert!(e.is_abortable() && !e.is_retriable(), "{e:?}");
        proxy.set_faults(Faults::default());
        proxy.cut_all();
        let c = t.commit_transaction().await.unwrap_err();
        assert!(
            c.is_abortable(),
            "KAFKA-9279: no commit after a failed send: {c:?}"
        );
        t.abort_transaction().await.unwrap();
        t.begin_transaction().await.unwrap();
        t.send(ProducerRecord::new(&topic).with_value(b"txn-ok"))
            .await
            .unwrap();
        t.commit_transaction().await.unwrap();
        t.close(Duration::from_secs(10)).await.unwrap();
        fetch_all(&check, &topic, 0).await
    });
    // Everything but the aborted transaction's records is committed.
    let expected = everything
        .iter()
        .filter(|r| {
            !r.value
                .as_deref()
                .unwrap_or_default()
                .starts_with(b"txn-doomed")
        })
        .count();
    let committed = read_committed(&broker, &topic, expected, Duration::from_secs(60));
    assert_eq!(committed.len(), expected);
    let txn_values: Vec<String> = committed
        .into_iter()
        .filter_map(|r| r.value)
        .filter(|v| v.starts_with("txn-"))
        .collect();
    assert_eq!(txn_values, vec!["txn-ok".to_owned()]);
    assert_no_hanging(&broker, &[&topic]);
}
