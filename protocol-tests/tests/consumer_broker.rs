//! exactly-consumer against the real broker, under `transaction.version` 2
//! and 1:
//! - (a) the Java `TransactionalMessageCopier` copies a topic in
//!   transactions, a third aborted at random; our `read_committed` consumer
//!   reads exactly what the Java `VerifiableConsumer` (`read_committed`)
//!   reads: every input value once, no aborted record, per-partition order;
//!   our `read_uncommitted` reader sees the aborted copies (so there were
//!   aborts to skip);
//! - (b) two of our consumers in one group split 6 partitions, one leaves,
//!   the other takes over all: with manual commits nothing is lost or read
//!   twice;
//! - (c) committed offsets under a pending transactional offset commit
//!   (`require_stable`, KIP-447): `committed()` and a new owner's start
//!   position wait for the transaction; an abort keeps the old offset, a
//!   commit gives the new one.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use exactly_consumer::{Consumer, Polled, Rebalance, TopicPartition};
use exactly_protocol_tests::{unique_topic, Broker, CopierOptions, TransactionVersion};

/// One test at a time: the machine has 2 cores and every test runs JVMs.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn broker(tv: TransactionVersion) -> &'static Broker {
    Broker::shared(tv).unwrap_or_else(|e| panic!("{e}"))
}

/// (partition, offset, value) as read.
type Seen = Vec<(i32, i64, String)>;

fn text(v: Option<&bytes::Bytes>) -> String {
    String::from_utf8(v.map(|b| b.to_vec()).unwrap_or_default()).unwrap()
}

/// Reads `partitions` from the start until every position reaches the end
/// offset (the last stable offset under read_committed).
async fn read_to_end(props: &[(&str, &str)], partitions: &[TopicPartition]) -> (Seen, Consumer) {
    let mut c = Consumer::from_properties(props.iter().copied())
        .await
        .unwrap();
    c.assign(partitions).unwrap();
    let end = c.end_offsets(partitions).await.unwrap();
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while partitions
        .iter()
        .any(|tp| c.position(tp).is_none_or(|p| p < end[tp]))
    {
        assert!(
            Instant::now() < deadline,
            "not at the end after 120 s: {seen:?}"
        );
        match c.poll(Duration::from_millis(500)).await.unwrap() {
            Polled::Records(rs) => {
                for r in &rs {
                    seen.push((r.partition(), r.offset(), text(r.value())));
                }
            }
            Polled::Rebalance(e) => panic!("no group here: {e:?}"),
        }
    }
    (seen, c)
}

fn per_partition_values(seen: &Seen) -> BTreeMap<i32, Vec<(i64, String)>> {
    let mut m: BTreeMap<i32, Vec<(i64, String)>> = BTreeMap::new();
    for (p, o, v) in seen {
        m.entry(*p).or_default().push((*o, v.clone()));
    }
    m
}

fn transactional_copy_read_committed_matches_java(tv: TransactionVersion) {
    let _s = serial();
    let broker = broker(tv);
    let java = broker.java();
    let input = unique_topic("eos-in");
    let output = unique_topic("eos-out");
    broker.create_topic(&input, 1).unwrap();
    broker.create_topic(&output, 3).unwrap();
    const N: usize = 3000;
    let produced = java
        .verifiable_producer(
            &input,
            N as u64,
            &[("acks", "all")],
            Duration::from_secs(120),
        )
        .unwrap();
    assert_eq!(produced.acked, N as u64);
    let txn_id = format!("{output}-copier");
    let group = format!("{output}-copier-group");
    let started = Instant::now();
    java.transactional_message_copier(
        &CopierOptions {
            input_topic: &input,
            input_partition: 0,
            output_topic: &output,
            max_messages: N as u64,
            transaction_size: 50,
            transactional_id: &txn_id,
            group: &group,
            random_aborts: true,
        },
        Duration::from_secs(300),
    )
    .unwrap();
    eprintln!("{tv:?}: copier done in {:?}", started.elapsed());

    let parts: Vec<TopicPartition> = (0..3).map(|p| TopicPartition::new(&output, p)).collect();
    let bootstrap = broker.bootstrap();
    let rt = runtime();
    let (ours, committed_metrics, uncommitted) = rt.block_on(async {
        let base = [
            ("bootstrap.servers", bootstrap.as_str()),
            ("auto.offset.reset", "earliest"),
            ("max.poll.records", "200"),
        ];
        let (ours, c) = read_to_end(&base, &parts).await;
        let m = c.metrics();
        c.close().await.unwrap();
        let mut props = base.to_vec();
        props.push(("isolation.level", "read_uncommitted"));
        let (all, c) = read_to_end(&props, &parts).await;
        c.close().await.unwrap();
        (ours, m, all)
    });

    // Every input value exactly once, nothing else.
    let mut values: Vec<u64> = ours.iter().map(|(_, _, v)| v.parse().unwrap()).collect();
    values.sort_unstable();
    let expected: Vec<u64> = (0..N as u64).collect();
    assert_eq!(values.len(), N, "duplicates or losses");
    assert_eq!(values, expected);
    // Per partition: offsets increase; values increase (the copier copies
    // one input partition in order, one transaction after the other).
    for (p, rs) in per_partition_values(&ours) {
        for w in rs.windows(2) {
            assert!(w[0].0 < w[1].0, "partition {p}: offsets out of order {w:?}");
            let (a, b): (u64, u64) = (w[0].1.parse().unwrap(), w[1].1.parse().unwrap());
            assert!(a < b, "partition {p}: values out of order {w:?}");
        }
    }
    // There were aborted transactions, and we skipped them.
    assert!(
        uncommitted.len() > N,
        "read_uncommitted saw {} records: no aborted copies to skip",
        uncommitted.len()
    );
    assert!(
        committed_metrics.aborted_batches > 0,
        "{committed_metrics:?}"
    );
    assert!(
        committed_metrics.control_batches > 0,
        "{committed_metrics:?}"
    );
    let ours_set: BTreeSet<(i32, i64)> = ours.iter().map(|(p, o, _)| (*p, *o)).collect();
    let aborted_visible = uncommitted
        .iter()
        .filter(|(p, o, _)| !ours_set.contains(&(*p, *o)))
        .count();
    assert_eq!(aborted_visible + N, uncommitted.len());

    // The reference client reads the very same records.
    let java_seen = java
        .verifiable_consumer(
            &output,
            &format!("{output}-java-reader"),
            N,
            &[("isolation.level", "read_committed")],
            Duration::from_secs(120),
        )
        .unwrap();
    let theirs: BTreeMap<(i32, i64), String> = java_seen
        .iter()
        .map(|r| ((r.partition, r.offset), r.value.clone().unwrap_or_default()))
        .collect();
    let mine: BTreeMap<(i32, i64), String> =
        ours.iter().map(|(p, o, v)| ((*p, *o), v.clone())).collect();
    assert_eq!(
        java_seen.len(),
        N,
        "the Java consumer read {}",
        java_seen.len()
    );
    assert_eq!(mine, theirs);
    eprintln!(
        "{tv:?}: {N} committed, {} aborted copies skipped, {} aborted batches, {} markers",
        aborted_visible, committed_metrics.aborted_batches, committed_metrics.control_batches
    );
}

#[test]
fn v2_transactional_copy_read_committed_matches_java() {
    transactional_copy_read_committed_matches_java(TransactionVersion::V2);
}

#[test]
fn v1_transactional_copy_read_committed_matches_java() {
    transactional_copy_read_committed_matches_java(TransactionVersion::V1);
}

// ---------------------------------------------------------------- (b)

/// What one group member did.
#[derive(Debug, Default)]
struct MemberLog {
    seen: Seen,
    events: Vec<Rebalance>,
}

/// Runs one member until `stop` is set (then it commits and closes, leaving
/// the group) or `done` says everything was read.
async fn member(
    name: &'static str,
    props: Vec<(String, String)>,
    topic: String,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    done: impl Fn(usize) -> bool,
    log: std::sync::Arc<std::sync::Mutex<MemberLog>>,
    total: std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    use std::sync::atomic::Ordering;
    let mut c = Consumer::from_properties(props).await.unwrap();
    c.subscribe(&[&topic]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        assert!(Instant::now() < deadline, "member did not finish");
        if stop.load(Ordering::SeqCst) || done(total.load(Ordering::SeqCst)) {
            c.commit().await.unwrap();
            c.close().await.unwrap();
            return;
        }
        match c.poll(Duration::from_millis(200)).await.unwrap() {
            Polled::Records(rs) if rs.is_empty() => {}
            Polled::Records(rs) => {
                {
                    let mut l = log.lock().unwrap();
                    for r in &rs {
                        l.seen.push((r.partition(), r.offset(), text(r.value())));
                    }
                }
                total.fetch_add(rs.len(), Ordering::SeqCst);
                // Process slowly enough for the group to change under us.
                tokio::time::sleep(Duration::from_millis(20)).await;
                if let Err(e) = c.commit().await {
                    panic!(
                        "{name}: commit failed: {e} after {:?}",
                        log.lock().unwrap().events
                    );
                }
            }
            Polled::Rebalance(e) => {
                if let Rebalance::Revoked(_) = e {
                    c.commit().await.unwrap();
                }
                assert!(!matches!(e, Rebalance::Lost(_)), "membership lost: {e:?}");
                log.lock().unwrap().events.push(e);
            }
        }
    }
}

fn group_split_takeover_no_loss_no_duplicates(tv: TransactionVersion) {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    let _s = serial();
    let broker = broker(tv);
    let topic = unique_topic("group6");
    broker.create_topic(&topic, 6).unwrap();
    const N: usize = 6000;
    let produced = broker
        .java()
        .verifiable_producer_with(
            &topic,
            N as u64,
            &["--repeating-keys", "600"],
            &[("acks", "all")],
            Duration::from_secs(120),
        )
        .unwrap();
    assert_eq!(produced.acked, N as u64);
    let group = format!("{topic}-g");
    let props: Vec<(String, String)> = [
        ("bootstrap.servers", broker.bootstrap()),
        ("group.id", group.clone()),
        ("auto.offset.reset", "earliest".into()),
        ("max.poll.records", "50".into()),
        ("session.timeout.ms", "6000".into()),
        ("heartbeat.interval.ms", "300".into()),
        ("partition.assignment.strategy", "range".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let rt = runtime();
    let (a, b) = rt.block_on(async {
        let total = Arc::new(AtomicUsize::new(0));
        let a_log = Arc::new(Mutex::new(MemberLog::default()));
        let b_log = Arc::new(Mutex::new(MemberLog::default()));
        let a_stop = Arc::new(AtomicBool::new(false));
        let b_stop = Arc::new(AtomicBool::new(false));
        let a = tokio::spawn(member(
            "A",
            props.clone(),
            topic.clone(),
            a_stop.clone(),
            |n| n >= N,
            a_log.clone(),
            total.clone(),
        ));
        // A alone: all six partitions, some records read.
        let wait = |what: &'static str, f: Box<dyn Fn() -> bool + Send>| async move {
            let deadline = Instant::now() + Duration::from_secs(60);
            while !f() {
                assert!(Instant::now() < deadline, "timed out waiting for {what}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        let t = total.clone();
        wait(
            "A to read",
            Box::new(move || t.load(Ordering::SeqCst) >= 300),
        )
        .await;
        let b = tokio::spawn(member(
            "B",
            props.clone(),
            topic.clone(),
            b_stop.clone(),
            |_| false,
            b_log.clone(),
            total.clone(),
        ));
        // B joins: 3 and 3; B reads some of its own.
        let bl = b_log.clone();
        wait(
            "B to read 300 records",
            Box::new(move || bl.lock().unwrap().seen.len() >= 300),
        )
        .await;
        b_stop.store(true, Ordering::SeqCst);
        b.await.unwrap();
        a.await.unwrap();
        let a = std::mem::take(&mut *a_log.lock().unwrap());
        let b = std::mem::take(&mut *b_log.lock().unwrap());
        (a, b)
    });

    // Assignments: A had all 6, then 3 (B had the other 3), then all 6.
    let sizes = |l: &MemberLog| -> Vec<String> {
        l.events
            .iter()
            .map(|e| match e {
                Rebalance::Assigned(p) => format!("+{}", p.len()),
                Rebalance::Revoked(p) => format!("-{}", p.len()),
                Rebalance::Lost(p) => format!("lost{}", p.len()),
            })
            .collect()
    };
    assert_eq!(sizes(&a), ["+6", "-6", "+3", "-3", "+6"], "{:?}", a.events);
    assert_eq!(sizes(&b), ["+3"], "{:?}", b.events);
    let (Rebalance::Assigned(a3), Rebalance::Assigned(b3)) = (&a.events[2], &b.events[0]) else {
        panic!("events {:?} {:?}", a.events, b.events);
    };
    let a3: BTreeSet<_> = a3.iter().map(|tp| tp.partition).collect();
    let b3: BTreeSet<_> = b3.iter().map(|tp| tp.partition).collect();
    assert!(a3.is_disjoint(&b3));
    // B's partitions were read by A after B left (the takeover).
    let b_last: HashMap<i32, i64> = b.seen.iter().fold(HashMap::new(), |mut m, (p, o, _)| {
        let e = m.entry(*p).or_insert(*o);
        *e = (*e).max(*o);
        m
    });
    for p in &b3 {
        let after = a
            .seen
            .iter()
            .filter(|(q, o, _)| q == p && b_last.get(p).is_some_and(|l| o > l))
            .count();
        assert!(after > 0, "A read nothing of partition {p} after B left");
    }
    // Nothing lost, nothing read twice.
    let mut all: Vec<(i32, i64)> = a
        .seen
        .iter()
        .chain(b.seen.iter())
        .map(|(p, o, _)| (*p, *o))
        .collect();
    all.sort_unstable();
    let total = all.len();
    all.dedup();
    assert_eq!(total, all.len(), "{} records read twice", total - all.len());
    let mut values: Vec<u64> = a
        .seen
        .iter()
        .chain(b.seen.iter())
        .map(|(_, _, v)| v.parse().unwrap())
        .collect();
    values.sort_unstable();
    assert_eq!(values, (0..N as u64).collect::<Vec<_>>());
    // Offsets per partition are contiguous from 0 (a plain topic).
    let per = per_partition_values(&a.seen.iter().chain(b.seen.iter()).cloned().collect());
    for (p, mut rs) in per {
        rs.sort();
        for (i, (o, _)) in rs.iter().enumerate() {
            assert_eq!(*o, i as i64, "partition {p}");
        }
    }
    eprintln!(
        "{tv:?}: A read {}, B read {}, events A {:?} B {:?}",
        a.seen.len(),
        b.seen.len(),
        sizes(&a),
        sizes(&b)
    );
}

#[test]
fn v2_group_split_takeover_no_loss_no_duplicates() {
    group_split_takeover_no_loss_no_duplicates(TransactionVersion::V2);
}

#[test]
fn v1_group_split_takeover_no_loss_no_duplicates() {
    group_split_takeover_no_loss_no_duplicates(TransactionVersion::V1);
}

// ---------------------------------------------------------------- (c)

/// A transaction that only commits offsets, driven with raw requests so the
/// test controls when it ends (InitProducerId; under v1 AddOffsetsToTxn;
/// TxnOffsetCommit; later EndTxn).
struct OffsetsTxn {
    client: exactly_net::Client,
    txn_id: String,
    producer_id: i64,
    epoch: i16,
    v2: bool,
}

mod raw {
    use super::*;
    use exactly_codec::messages::txn_offset_commit_request::{
        TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
    };
    use exactly_codec::messages::{
        AddOffsetsToTxnRequest, ApiKey, EndTxnRequest, GroupId, InitProducerIdRequest, ProducerId,
        TopicName, TransactionalId, TxnOffsetCommitRequest,
    };
    use exactly_codec::protocol::StrBytes;
    use exactly_codec::ErrorCode;
    use exactly_net::{Client, Connection, CoordinatorType, NetConfig, SendOptions};

    async fn conn_for(client: &Client, ty: CoordinatorType, key: &str) -> Connection {
        let c = client.coordinator(ty, key).await.unwrap();
        client.connection(c.broker_id).await.unwrap()
    }

    /// Retries a request while the broker answers a retriable code.
    async fn retry<T>(mut f: impl AsyncFnMut() -> (T, Option<ErrorCode>)) -> T {
        for _ in 0..100 {
            let (v, code) = f().await;
            match code {
                None => return v,
                Some(c) if c.is_retriable() => tokio::time::sleep(Duration::from_millis(100)).await,
                Some(c) => panic!("unexpected {c}"),
            }
        }
        panic!("still retriable after 100 tries");
    }

    fn capped(conn: &Connection, api: ApiKey, v2: bool) -> i16 {
        let v = conn.versions().pick_client(api).unwrap();
        if v2 {
            v
        } else {
            v.min(4)
        }
    }

    impl OffsetsTxn {
        pub(super) async fn begin(
            bootstrap: &str,
            txn_id: &str,
            group: &str,
            tp: &TopicPartition,
            offset: i64,
            tv: TransactionVersion,
        ) -> OffsetsTxn {
            let v2 = tv == TransactionVersion::V2;
            let client = Client::connect(
                NetConfig::from_properties([("bootstrap.servers", bootstrap)]).unwrap(),
            )
            .await
            .unwrap();
            let tc = conn_for(&client, CoordinatorType::Transaction, txn_id).await;
            let init = InitProducerIdRequest::default()
                .with_transactional_id(Some(TransactionalId(StrBytes::from_string(
                    txn_id.to_owned(),
                ))))
                .with_transaction_timeout_ms(60_000);
            let (producer_id, epoch) = retry(async || {
                let r = tc.send(&init).await.unwrap();
                (
                    (r.producer_id.0, r.producer_epoch),
                    ErrorCode::from_code(r.error_code),
                )
            })
            .await;
            if !v2 {
                let add = AddOffsetsToTxnRequest::default()
                    .with_transactional_id(TransactionalId(StrBytes::from_string(
                        txn_id.to_owned(),
                    )))
                    .with_producer_id(ProducerId(producer_id))
                    .with_producer_epoch(epoch)
                    .with_group_id(GroupId(StrBytes::from_string(group.to_owned())));
                retry(async || {
                    let r = tc.send(&add).await.unwrap();
                    ((), ErrorCode::from_code(r.error_code))
                })
                .await;
            }
            let gc = conn_for(&client, CoordinatorType::Group, group).await;
            let commit = TxnOffsetCommitRequest::default()
                .with_transactional_id(TransactionalId(StrBytes::from_string(txn_id.to_owned())))
                .with_group_id(GroupId(StrBytes::from_string(group.to_owned())))
                .with_producer_id(ProducerId(producer_id))
                .with_producer_epoch(epoch)
                .with_generation_id(-1)
                .with_member_id(StrBytes::from_static_str(""))
                .with_topics(vec![TxnOffsetCommitRequestTopic::default()
                    .with_name(TopicName(StrBytes::from_string(tp.topic.clone())))
                    .with_partitions(vec![TxnOffsetCommitRequestPartition::default()
                        .with_partition_index(tp.partition)
                        .with_committed_offset(offset)])]);
            let version = capped(&gc, ApiKey::TxnOffsetCommit, v2);
            retry(async || {
                let r = gc
                    .send_with(
                        &commit,
                        SendOptions {
                            version: Some(version),
                            timeout: None,
                        },
                    )
                    .await
                    .unwrap();
                let code = r
                    .topics
                    .iter()
                    .flat_map(|t| t.partitions.iter())
                    .find_map(|p| ErrorCode::from_code(p.error_code));
                ((), code)
            })
            .await;
            OffsetsTxn {
                client,
                txn_id: txn_id.to_owned(),
                producer_id,
                epoch,
                v2,
            }
        }

        pub(super) async fn end(self, commit: bool) {
            let tc = conn_for(&self.client, CoordinatorType::Transaction, &self.txn_id).await;
            let req = EndTxnRequest::default()
                .with_transactional_id(TransactionalId(StrBytes::from_string(self.txn_id.clone())))
                .with_producer_id(ProducerId(self.producer_id))
                .with_producer_epoch(self.epoch)
                .with_committed(commit);
            let version = capped(&tc, ApiKey::EndTxn, self.v2);
            retry(async || {
                let r = tc
                    .send_with(
                        &req,
                        SendOptions {
                            version: Some(version),
                            timeout: None,
                        },
                    )
                    .await
                    .unwrap();
                ((), ErrorCode::from_code(r.error_code))
            })
            .await;
            self.client.close();
        }
    }
}

fn committed_offsets_wait_for_pending_transactions(tv: TransactionVersion) {
    let _s = serial();
    let broker = broker(tv);
    let topic = unique_topic("stable");
    broker.create_topic(&topic, 1).unwrap();
    let produced = broker
        .java()
        .verifiable_producer(&topic, 100, &[("acks", "all")], Duration::from_secs(120))
        .unwrap();
    assert_eq!(produced.acked, 100);
    let group = format!("{topic}-g");
    let tp = TopicPartition::new(&topic, 0);
    let bootstrap = broker.bootstrap();
    let props = [
        ("bootstrap.servers", bootstrap.as_str()),
        ("group.id", group.as_str()),
        ("auto.offset.reset", "earliest"),
        ("session.timeout.ms", "6000"),
        ("heartbeat.interval.ms", "300"),
    ];
    let rt = runtime();
    rt.block_on(async {
        // A plain commit of 10 as a simple (manually assigned) consumer.
        let mut c = Consumer::from_properties(props).await.unwrap();
        c.assign(std::slice::from_ref(&tp)).unwrap();
        c.commit_offsets(&[exactly_consumer::OffsetCommit {
            partition: tp.clone(),
            offset: 10,
            leader_epoch: None,
            metadata: Some("plain".into()),
        }])
        .await
        .unwrap();
        let got = c.committed(std::slice::from_ref(&tp)).await.unwrap();
        assert_eq!(got[&tp].as_ref().map(|o| o.offset), Some(10));
        assert_eq!(
            got[&tp].as_ref().unwrap().metadata.as_deref(),
            Some("plain")
        );

        // A transaction commits 40 for the group and stays open.
        let txn = OffsetsTxn::begin(&bootstrap, &format!("{topic}-t1"), &group, &tp, 40, tv).await;
        // read_committed (require_stable): committed() waits...
        let waited = tokio::time::timeout(
            Duration::from_millis(1500),
            c.committed(std::slice::from_ref(&tp)),
        )
        .await;
        assert!(waited.is_err(), "committed() did not wait: {waited:?}");
        // ...while a read_uncommitted consumer (no require_stable) sees 10.
        let mut u = Consumer::from_properties(
            props
                .iter()
                .copied()
                .chain([("isolation.level", "read_uncommitted")]),
        )
        .await
        .unwrap();
        let got = u.committed(std::slice::from_ref(&tp)).await.unwrap();
        assert_eq!(got[&tp].as_ref().map(|o| o.offset), Some(10));
        u.close().await.unwrap();
        // Abort: the offset stays 10, and committed() returns at once.
        let started = Instant::now();
        let pending = c.committed(std::slice::from_ref(&tp));
        let (got, ()) = tokio::join!(pending, async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            txn.end(false).await;
        });
        assert_eq!(got.unwrap()[&tp].as_ref().map(|o| o.offset), Some(10));
        assert!(started.elapsed() >= Duration::from_millis(300));
        // The consumer's half of the abort (KAFKA-17582): back to 10.
        c.seek(&tp, 55).unwrap();
        let rewound = c
            .rewind_after_abort(&[
                (group.clone(), vec![tp.clone()]),
                ("another-group".into(), vec![TopicPartition::new(&topic, 0)]),
            ])
            .await
            .unwrap();
        assert_eq!(rewound, std::slice::from_ref(&tp));
        assert_eq!(c.position(&tp), Some(10));
        c.close().await.unwrap();

        // A new owner (group member) while a transaction commits 40: it
        // must not start from 10.
        let txn = OffsetsTxn::begin(&bootstrap, &format!("{topic}-t2"), &group, &tp, 40, tv).await;
        let mut owner = Consumer::from_properties(props).await.unwrap();
        owner.subscribe(&[&topic]).unwrap();
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            assert!(Instant::now() < until, "never assigned");
            match owner.poll(Duration::from_millis(200)).await.unwrap() {
                Polled::Rebalance(Rebalance::Assigned(ps)) => {
                    assert_eq!(ps, std::slice::from_ref(&tp));
                    break;
                }
                Polled::Records(rs) => assert!(rs.is_empty()),
                other => panic!("{other:?}"),
            }
        }
        let hold = Instant::now() + Duration::from_millis(1500);
        while Instant::now() < hold {
            let p = owner.poll(Duration::from_millis(200)).await.unwrap();
            assert_eq!(
                p.into_records().len(),
                0,
                "records before the transaction ended"
            );
            assert_eq!(owner.position(&tp), None);
        }
        txn.end(true).await;
        let first = loop {
            assert!(Instant::now() < until, "no records after the commit");
            let rs = owner
                .poll(Duration::from_millis(200))
                .await
                .unwrap()
                .into_records();
            if let Some(r) = rs.iter().next() {
                break r.offset();
            }
        };
        assert_eq!(
            first, 40,
            "the new owner must start at the transaction's offset"
        );
        let got = owner.committed(std::slice::from_ref(&tp)).await.unwrap();
        assert_eq!(got[&tp].as_ref().map(|o| o.offset), Some(40));
        assert_eq!(owner.group_metadata().group_id, group);
        assert!(owner.group_metadata().generation_id >= 1);
        assert!(!owner.group_metadata().member_id.is_empty());
        owner.close().await.unwrap();
    });
}

#[test]
fn v2_committed_offsets_wait_for_pending_transactions() {
    committed_offsets_wait_for_pending_transactions(TransactionVersion::V2);
}

#[test]
fn v1_committed_offsets_wait_for_pending_transactions() {
    committed_offsets_wait_for_pending_transactions(TransactionVersion::V1);
}

// ------------------------------------------------- (e), (f): group edges

fn events(l: &[Rebalance]) -> Vec<String> {
    l.iter()
        .map(|e| match e {
            Rebalance::Assigned(p) => format!("+{}", p.len()),
            Rebalance::Revoked(p) => format!("-{}", p.len()),
            Rebalance::Lost(p) => format!("lost{}", p.len()),
        })
        .collect()
}

/// Polls until `pred` holds for the events seen (or 30 s pass); records are
/// counted into `read`.
async fn poll_until(
    c: &mut Consumer,
    evs: &mut Vec<Rebalance>,
    read: &mut Vec<(i32, i64)>,
    pred: impl Fn(&[Rebalance], usize) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !pred(evs, read.len()) {
        assert!(Instant::now() < deadline, "stuck at {:?}", events(evs));
        match c.poll(Duration::from_millis(100)).await.unwrap() {
            Polled::Records(rs) => {
                read.extend(rs.iter().map(|r| (r.partition(), r.offset())));
                if !rs.is_empty() {
                    c.commit().await.unwrap();
                }
            }
            Polled::Rebalance(e) => {
                if let Rebalance::Revoked(_) = e {
                    c.commit().await.unwrap();
                }
                evs.push(e);
            }
        }
    }
}

/// (e) A member that stops polling for longer than `max.poll.interval.ms`
/// leaves the group; its next poll reports the partitions lost, it rejoins
/// and goes on from the committed offsets.
#[test]
fn member_that_stops_polling_loses_its_partitions_and_rejoins() {
    let _s = serial();
    let broker = broker(TransactionVersion::V2);
    let topic = unique_topic("slowpoll");
    broker.create_topic(&topic, 2).unwrap();
    let r = broker
        .java()
        .verifiable_producer(&topic, 400, &[("acks", "all")], Duration::from_secs(120))
        .unwrap();
    assert_eq!(r.acked, 400);
    let bootstrap = broker.bootstrap();
    let group = format!("{topic}-g");
    runtime().block_on(async {
        let mut c = Consumer::from_properties([
            ("bootstrap.servers", bootstrap.as_str()),
            ("group.id", group.as_str()),
            ("auto.offset.reset", "earliest"),
            ("max.poll.records", "50"),
            ("session.timeout.ms", "6000"),
            ("heartbeat.interval.ms", "200"),
            ("max.poll.interval.ms", "2000"),
        ])
        .await
        .unwrap();
        c.subscribe(&[&topic]).unwrap();
        let (mut evs, mut read) = (Vec::new(), Vec::new());
        poll_until(&mut c, &mut evs, &mut read, |e, n| {
            !e.is_empty() && n >= 100
        })
        .await;
        let generation = c.group_metadata().generation_id;
        // Stall past max.poll.interval.ms.
        tokio::time::sleep(Duration::from_millis(3500)).await;
        poll_until(&mut c, &mut evs, &mut read, |e, _| e.len() >= 3).await;
        assert_eq!(events(&evs), ["+2", "lost2", "+2"]);
        assert!(c.group_metadata().generation_id > generation);
        poll_until(&mut c, &mut evs, &mut read, |_, n| n >= 400).await;
        // Committed before the stall, so nothing was read twice.
        let mut all = read.clone();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), read.len(), "records read twice");
        assert_eq!(read.len(), 400);
        // Waiting inside one long poll is polling: no loss.
        let p = c.poll(Duration::from_millis(4500)).await.unwrap();
        assert_eq!(p, Polled::Records(Default::default()));
        let p = c.poll(Duration::from_millis(500)).await.unwrap();
        assert_eq!(p, Polled::Records(Default::default()), "{:?}", events(&evs));
        c.close().await.unwrap();
    });
}

/// (f) Static membership (KIP-345): a static member that closes and comes
/// back under the same `group.instance.id` within the session timeout gets
/// its partitions back without a rebalance of the other members.
#[test]
fn static_member_restart_keeps_its_partitions_without_a_rebalance() {
    let _s = serial();
    let broker = broker(TransactionVersion::V2);
    let topic = unique_topic("static");
    broker.create_topic(&topic, 4).unwrap();
    let bootstrap = broker.bootstrap();
    let group = format!("{topic}-g");
    let props = |instance: &'static str| {
        vec![
            ("bootstrap.servers".to_owned(), bootstrap.clone()),
            ("group.id".to_owned(), group.clone()),
            ("group.instance.id".to_owned(), instance.to_owned()),
            ("session.timeout.ms".to_owned(), "20000".to_owned()),
            ("heartbeat.interval.ms".to_owned(), "300".to_owned()),
        ]
    };
    runtime().block_on(async {
        let mut a = Consumer::from_properties(props("a")).await.unwrap();
        a.subscribe(&[&topic]).unwrap();
        let (mut a_evs, mut a_read) = (Vec::new(), Vec::new());
        poll_until(&mut a, &mut a_evs, &mut a_read, |e, _| !e.is_empty()).await;
        let mut b = Consumer::from_properties(props("b")).await.unwrap();
        b.subscribe(&[&topic]).unwrap();
        let (mut b_evs, mut b_read) = (Vec::new(), Vec::new());
        // A rebalances once for B; both end with two partitions.
        let (ra, rb) = tokio::join!(
            poll_until(&mut a, &mut a_evs, &mut a_read, |e, _| e.len() >= 3),
            poll_until(&mut b, &mut b_evs, &mut b_read, |e, _| !e.is_empty()),
        );
        let ((), ()) = (ra, rb);
        assert_eq!(events(&a_evs), ["+4", "-4", "+2"]);
        let Rebalance::Assigned(b_parts) = b_evs[0].clone() else {
            panic!("{b_evs:?}");
        };
        assert_eq!(b_parts.len(), 2);
        // B goes away without LeaveGroup and comes back as "b".
        b.close().await.unwrap();
        let mut b2 = Consumer::from_properties(props("b")).await.unwrap();
        b2.subscribe(&[&topic]).unwrap();
        let (mut b2_evs, mut b2_read) = (Vec::new(), Vec::new());
        poll_until(&mut b2, &mut b2_evs, &mut b2_read, |e, _| !e.is_empty()).await;
        assert_eq!(b2_evs, [Rebalance::Assigned(b_parts.clone())]);
        // A is not disturbed.
        let quiet = Instant::now() + Duration::from_secs(3);
        poll_until(&mut a, &mut a_evs, &mut a_read, |_, _| {
            Instant::now() >= quiet
        })
        .await;
        assert_eq!(events(&a_evs), ["+4", "-4", "+2"], "A rebalanced");
        a.close().await.unwrap();
        b2.close().await.unwrap();
    });
}
