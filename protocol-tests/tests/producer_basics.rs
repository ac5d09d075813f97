//! The producer's API on the real broker: records arrive byte for byte
//! (keys, values, nulls, headers, timestamps, explicit partitions), keyed
//! records land where the Java client puts them, every compression codec,
//! acks 0/1/all, config errors, unknown topics and partitions, sends outside
//! a transaction, a broker rejection surfaced by both the record's future
//! and `flush` (never hidden: KAFKA-15259), and delivery callbacks that
//! report where each record was written.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod producer_support;

use std::collections::BTreeMap;
use std::time::Duration;

use exactly_producer::{partition_for_key, Producer, ProducerError, ProducerRecord};
use exactly_protocol_tests::{unique_topic, Broker, TransactionVersion};
use producer_support::*;

fn shared() -> &'static Broker {
    Broker::shared(TransactionVersion::V2).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn records_arrive_byte_for_byte() {
    let broker = shared();
    let topic = unique_topic("basics-bytes");
    broker.create_topic(&topic, 3).unwrap();
    runtime().block_on(async {
        let p = producer(&broker.bootstrap(), &[]).await;
        let big = vec![0xabu8; 100_000];
        let sent = [
            (Some(&b"k1"[..]), Some(&b"v1"[..]), 1_600_000_000_000i64),
            (None, Some(&b"no key"[..]), 1_600_000_000_001),
            (Some(&b"k3"[..]), None, 1_600_000_000_002),
            (None, None, 1_600_000_000_003),
            (Some(&b""[..]), Some(&b""[..]), 1_600_000_000_004),
            (Some(&b"big"[..]), Some(&big[..]), 1_600_000_000_005),
        ];
        let mut futures = Vec::new();
        for (i, (k, v, ts)) in sent.iter().enumerate() {
            let index = i.to_string();
            let mut r = ProducerRecord::new(&topic)
                .with_partition(1)
                .with_timestamp(*ts)
                .with_header("index", Some(index.as_bytes()))
                .with_header("null", None);
            if let Some(k) = k {
                r = r.with_key(k);
            }
            if let Some(v) = v {
                r = r.with_value(v);
            }
            futures.push(p.send(r).await.unwrap());
        }
        let mut metas = Vec::new();
        for f in futures {
            metas.push(f.await.unwrap());
        }
        for (i, m) in metas.iter().enumerate() {
            assert_eq!(m.partition, 1);
            assert_eq!(m.offset, Some(i as i64));
            assert_eq!(m.timestamp, sent[i].2);
        }
        let check = net_client(&broker.bootstrap()).await;
        let got = fetch_all(&check, &topic, 1).await;
        assert_eq!(got.len(), sent.len());
        for (i, (r, (k, v, ts))) in got.iter().zip(sent.iter()).enumerate() {
            assert_eq!(r.offset, i as i64);
            assert_eq!(r.key.as_deref(), *k);
            assert_eq!(r.value.as_deref(), *v);
            assert_eq!(r.timestamp, *ts);
            assert_eq!(
                r.headers,
                vec![
                    ("index".to_owned(), Some(i.to_string().into_bytes())),
                    ("null".to_owned(), None)
                ]
            );
            assert!(r.producer_id >= 0, "idempotent batches carry a producer id");
        }
        assert!(fetch_all(&check, &topic, 0).await.is_empty());
        p.close(Duration::from_secs(10)).await.unwrap();
    });
}

#[test]
fn keyed_records_go_where_the_java_client_puts_them() {
    let broker = shared();
    let topic = unique_topic("basics-keys");
    broker.create_topic(&topic, 7).unwrap();
    runtime().block_on(async {
        let p = producer(&broker.bootstrap(), &[]).await;
        let mut futures = Vec::new();
        for i in 0..2000u32 {
            let key = format!("key-{i}");
            let f = p
                .send(
                    ProducerRecord::new(&topic)
                        .with_key(key.as_bytes())
                        .with_value(b"v"),
                )
                .await
                .unwrap();
            assert_eq!(f.partition(), partition_for_key(key.as_bytes(), 7));
            futures.push((key, f));
        }
        let mut per_partition = BTreeMap::new();
        for (key, f) in futures {
            let m = f.await.unwrap();
            assert_eq!(m.partition, partition_for_key(key.as_bytes(), 7), "{key}");
            *per_partition.entry(m.partition).or_insert(0) += 1;
        }
        assert_eq!(per_partition.len(), 7, "{per_partition:?}");
        // Unkeyed records stick to one partition per batch, then move on.
        let mut unkeyed = BTreeMap::new();
        for _ in 0..20_000 {
            let f = p
                .send(ProducerRecord::new(&topic).with_value(&[7u8; 100]))
                .await
                .unwrap();
            *unkeyed.entry(f.partition()).or_insert(0) += 1;
        }
        p.flush().await.unwrap();
        assert!(
            unkeyed.len() > 1,
            "uniform sticky spreads over time: {unkeyed:?}"
        );
        p.close(Duration::from_secs(10)).await.unwrap();
    });
}

#[test]
fn every_compression_codec_and_acks_level() {
    let broker = shared();
    let topic = unique_topic("basics-codecs");
    broker.create_topic(&topic, 1).unwrap();
    let cases: [&[(&str, &str)]; 7] = [
        &[("compression.type", "none")],
        &[("compression.type", "gzip")],
        &[("compression.type", "snappy")],
        &[("compression.type", "lz4")],
        &[("compression.type", "zstd")],
        &[("acks", "1")],
        &[("acks", "0")],
    ];
    runtime().block_on(async {
        let check = net_client(&broker.bootstrap()).await;
        let mut expected = 0;
        for (c, props) in cases.iter().enumerate() {
            let p = producer(&broker.bootstrap(), props).await;
            let acks0 = props.contains(&("acks", "0"));
            assert_eq!(
                p.config().idempotence(),
                !props.iter().any(|(k, _)| *k == "acks")
            );
            let mut futures = Vec::new();
            for i in 0..500u32 {
                let v = format!("case{c}-{i}-{}", "x".repeat(50));
                futures.push(
                    p.send(ProducerRecord::new(&topic).with_value(v.as_bytes()))
                        .await
                        .unwrap(),
                );
            }
            p.flush().await.unwrap();
            for f in futures {
                let m = f.await.unwrap();
                assert_eq!(m.offset.is_none(), acks0, "{props:?}");
            }
            p.close(Duration::from_secs(10)).await.unwrap();
            expected += 500;
            // acks=0 is answered once written: wait for the broker.
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            let got = loop {
                let got = fetch_all(&check, &topic, 0).await;
                if got.len() >= expected || std::time::Instant::now() > deadline {
                    break got;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            };
            assert_eq!(got.len(), expected, "{props:?}");
            let mine: Vec<&Fetched> = got
                .iter()
                .filter(|r| {
                    r.value
                        .as_ref()
                        .unwrap()
                        .starts_with(format!("case{c}-").as_bytes())
                })
                .collect();
            assert_eq!(mine.len(), 500, "{props:?}");
            for (i, r) in mine.iter().enumerate() {
                let v = String::from_utf8(r.value.clone().unwrap()).unwrap();
                assert!(v.starts_with(&format!("case{c}-{i}-")), "{props:?}: order");
                if let Some(codec) = props.iter().find(|(k, _)| *k == "compression.type") {
                    assert_eq!(r.compression.name(), codec.1);
                }
                assert_eq!(r.producer_id >= 0, p.config().idempotence());
            }
        }
    });
}

#[test]
fn configuration_errors_are_clear() {
    runtime().block_on(async {
        let e = try_producer("127.0.0.1:1", &[("linger", "5")])
            .await
            .unwrap_err();
        assert!(matches!(&e, ProducerError::Config(_)), "{e:?}");
        assert!(e.to_string().contains("unknown property `linger`"), "{e}");
        let e = try_producer("127.0.0.1:1", &[("acks", "most")])
            .await
            .unwrap_err();
        assert!(e.to_string().contains("`acks`"), "{e}");
        let e = try_producer("127.0.0.1:1", &[("transactional.id", "t"), ("acks", "1")])
            .await
            .unwrap_err();
        assert!(e.to_string().contains("acks"), "{e}");
        let e = Producer::from_properties([("linger.ms", "5")])
            .await
            .unwrap_err();
        assert!(e.to_string().contains("bootstrap.servers"), "{e}");
        // No broker there: like the Java client, construction does not wait
        // for the cluster (it may start first); what needs the cluster
        // fails within its deadline with a clear, retriable error.
        let p = try_producer(
            "127.0.0.1:1",
            &[
                ("socket.connection.setup.timeout.ms", "500"),
                ("request.timeout.ms", "1000"),
                ("delivery.timeout.ms", "2000"),
                ("max.block.ms", "1500"),
                ("linger.ms", "0"),
            ],
        )
        .await
        .expect("construction does not need a reachable cluster");
        let started = std::time::Instant::now();
        // Either the metadata wait (max.block.ms) or the delivery
        // (delivery.timeout.ms) gives up.
        let e = match p
            .send(ProducerRecord::new("nowhere").with_value(b"v"))
            .await
        {
            Ok(delivery) => delivery.await.unwrap_err(),
            Err(e) => e,
        };
        assert!(e.is_retriable(), "{e:?}");
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "failed within its deadline, not after {:?}",
            started.elapsed()
        );
    });
}

#[test]
fn unknown_topics_partitions_and_misuse() {
    let broker = shared();
    let topic = unique_topic("basics-misuse");
    broker.create_topic(&topic, 2).unwrap();
    runtime().block_on(async {
        let p = producer(
            &broker.bootstrap(),
            &[
                ("allow.auto.create.topics", "false"),
                ("max.block.ms", "1500"),
            ],
        )
        .await;
        let started = std::time::Instant::now();
        let e = p
            .send(ProducerRecord::new("no-such-topic-anywhere").with_value(b"v"))
            .await
            .unwrap_err();
        assert!(
            matches!(e, ProducerError::UnknownTopicOrPartition { .. }),
            "{e:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(5));
        let e = p
            .send(
                ProducerRecord::new(&topic)
                    .with_partition(2)
                    .with_value(b"v"),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(
                e,
                ProducerError::UnknownTopicOrPartition {
                    partition: Some(2),
                    ..
                }
            ),
            "{e:?}"
        );
        let e = p
            .send(ProducerRecord::new(&topic).with_value(&vec![0u8; 2 << 20]))
            .await
            .unwrap_err();
        assert!(
            matches!(
                e,
                ProducerError::RecordTooLarge {
                    limit: "max.request.size",
                    ..
                }
            ),
            "{e:?}"
        );
        // Transaction calls on an idempotent producer.
        let e = p.begin_transaction().await.unwrap_err();
        assert!(matches!(e, ProducerError::Usage(_)), "{e:?}");
        p.close(Duration::from_secs(5)).await.unwrap();
        let e = p
            .send(ProducerRecord::new(&topic).with_value(b"v"))
            .await
            .unwrap_err();
        assert!(matches!(e, ProducerError::Closed) && e.is_fatal(), "{e:?}");

        // A transactional producer refuses sends outside a transaction.
        let txn_id = unique_topic("basics-misuse-id");
        let t = producer(&broker.bootstrap(), &[("transactional.id", &txn_id)]).await;
        let e = t
            .send(ProducerRecord::new(&topic).with_value(b"v"))
            .await
            .unwrap_err();
        assert!(matches!(e, ProducerError::Usage(_)), "{e:?}");
        assert!(
            t.begin_transaction().await.is_err(),
            "begin before init_transactions"
        );
        t.init_transactions().await.unwrap();
        assert!(t.init_transactions().await.is_err(), "init twice");
        assert!(
            t.commit_transaction().await.is_err(),
            "commit without begin"
        );
        t.begin_transaction().await.unwrap();
        t.send(ProducerRecord::new(&topic).with_value(b"v"))
            .await
            .unwrap();
        t.commit_transaction().await.unwrap();
        t.close(Duration::from_secs(5)).await.unwrap();
    });
}

/// The broker rejects a batch (here: larger than the topic's
/// max.message.bytes): the record's future fails, `flush` fails too, and
/// the producer goes on.
#[test]
fn broker_rejections_are_never_hidden() {
    let broker = shared();
    let topic = unique_topic("basics-reject");
    broker
        .create_topic_with(&topic, 1, &[("max.message.bytes", "2000")])
        .unwrap();
    runtime().block_on(async {
        let p = producer(&broker.bootstrap(), &[("linger.ms", "0")]).await;
        let small = p
            .send(ProducerRecord::new(&topic).with_value(b"fits"))
            .await
            .unwrap();
        small.await.unwrap();
        let big = p
            .send(ProducerRecord::new(&topic).with_value(&[1u8; 5000]))
            .await
            .unwrap();
        let flushed = p.flush().await;
        let e = big.await.unwrap_err();
        eprintln!("rejected: {e}");
        assert!(matches!(e, ProducerError::Delivery { .. }), "{e:?}");
        assert!(
            !e.maybe_written(),
            "a rejected batch was not written: {e:?}"
        );
        let fe = flushed.unwrap_err();
        assert!(matches!(fe, ProducerError::Delivery { .. }), "{fe:?}");
        // The next records go through, in order after the gap.
        let next = p
            .send(ProducerRecord::new(&topic).with_value(b"after"))
            .await
            .unwrap();
        assert_eq!(next.await.unwrap().offset, Some(1));
        p.flush().await.unwrap();
        p.close(Duration::from_secs(5)).await.unwrap();
    });
}

/// Dropping every handle without `close`: what was sent is still
/// delivered, then the driver stops.
#[test]
fn dropping_the_producer_still_delivers() {
    let broker = shared();
    let topic = unique_topic("basics-drop");
    broker.create_topic(&topic, 2).unwrap();
    runtime().block_on(async {
        let p = producer(&broker.bootstrap(), &[("linger.ms", "200")]).await;
        let mut futures = Vec::new();
        for i in 0..100u32 {
            let v = i.to_string();
            futures.push(
                p.send(ProducerRecord::new(&topic).with_value(v.as_bytes()))
                    .await
                    .unwrap(),
            );
        }
        drop(p);
        for f in futures {
            assert!(f.await.unwrap().offset.is_some());
        }
        let check = net_client(&broker.bootstrap()).await;
        let n = fetch_all(&check, &topic, 0).await.len() + fetch_all(&check, &topic, 1).await.len();
        assert_eq!(n, 100);
    });
}

/// A delivery callback (`on_delivery`) is called once per record with the
/// partition and offset the broker gave it, as the record's future would
/// report; futures and callbacks mixed in one batch.
#[test]
fn delivery_callbacks_report_where_each_record_was_written() {
    use std::sync::{Arc, Mutex};
    let broker = shared();
    let topic = unique_topic("basics-callbacks");
    broker.create_topic(&topic, 3).unwrap();
    runtime().block_on(async {
        let p = producer(&broker.bootstrap(), &[("linger.ms", "20")]).await;
        // (value, partition, offset) as reported.
        let seen: Arc<Mutex<Vec<(String, i32, i64)>>> = Arc::default();
        let mut futures = Vec::new();
        for i in 0..600u32 {
            let v = format!("cb-{i}");
            let f = p
                .send(ProducerRecord::new(&topic).with_value(v.as_bytes()))
                .await
                .unwrap();
            if i % 2 == 0 {
                futures.push((v, f));
            } else {
                let seen = seen.clone();
                f.on_delivery(move |r| {
                    let m = r.unwrap();
                    seen.lock()
                        .unwrap()
                        .push((v, m.partition, m.offset.unwrap()));
                });
            }
        }
        p.flush().await.unwrap();
        for (v, f) in futures {
            let m = f.await.unwrap();
            seen.lock()
                .unwrap()
                .push((v, m.partition, m.offset.unwrap()));
        }
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 600, "each callback once");
        let check = net_client(&broker.bootstrap()).await;
        let mut on_broker = BTreeMap::new();
        for part in 0..3 {
            for r in fetch_all(&check, &topic, part).await {
                let v = String::from_utf8(r.value.unwrap()).unwrap();
                on_broker.insert(v, (part, r.offset));
            }
        }
        assert_eq!(on_broker.len(), 600);
        for (v, part, offset) in seen {
            assert_eq!(on_broker.get(&v), Some(&(part, offset)), "{v}");
        }
        p.close(Duration::from_secs(10)).await.unwrap();
    });
}
