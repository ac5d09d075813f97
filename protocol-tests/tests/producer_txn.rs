//! Transactions on the real broker, under transaction.version 2 and 1:
//! visibility of committed and aborted records to a `read_committed` Java
//! consumer, offsets committed only with their transaction, zombie fencing,
//! a transaction left open past `transaction.timeout.ms`, and the metrics
//! of a transactional producer and a read_committed consumer as
//! `crates/exactly/examples/prometheus_metrics.rs` serves them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod producer_support;
/// The Prometheus example itself (its `main` unused here).
#[path = "../../crates/exactly/examples/prometheus_metrics.rs"]
mod prometheus_example;

use std::time::Duration;

use exactly_producer::{Producer, ProducerRecord};
use exactly_protocol_tests::{unique_topic, Broker, TransactionVersion};
use producer_support::*;

async fn send_values(p: &Producer, topic: &str, tag: &str, range: std::ops::Range<u32>) {
    let mut futures = Vec::new();
    for i in range {
        let v = format!("{tag}-{i}");
        futures.push(
            p.send(ProducerRecord::new(topic).with_value(v.as_bytes()))
                .await
                .unwrap(),
        );
    }
    p.flush().await.unwrap();
    for f in futures {
        f.await.unwrap();
    }
}

fn visibility(tv: TransactionVersion) {
    let broker = Broker::shared(tv).unwrap_or_else(|e| panic!("{e}"));
    let topic = unique_topic("txn-vis");
    broker.create_topic(&topic, 3).unwrap();
    let txn_id = unique_topic("txn-vis-id");
    runtime().block_on(async {
        let p = producer(&broker.bootstrap(), &[("transactional.id", &txn_id)]).await;
        p.init_transactions().await.unwrap();
        for round in 0..6u32 {
            p.begin_transaction().await.unwrap();
            let tag = if round % 2 == 0 { "commit" } else { "abort" };
            send_values(&p, &topic, &format!("{tag}{round}"), 0..500).await;
            if round % 2 == 0 {
                p.commit_transaction().await.unwrap();
            } else {
                p.abort_transaction().await.unwrap();
            }
        }
        p.close(Duration::from_secs(10)).await.unwrap();
    });
    let got = read_committed(broker, &topic, 1500, Duration::from_secs(120));
    let values: Vec<String> = got.iter().map(|r| r.value.clone().unwrap()).collect();
    assert_eq!(values.len(), 1500, "{tv:?}");
    assert!(
        values.iter().all(|v| v.starts_with("commit")),
        "{tv:?}: aborted record visible"
    );
    let mut sorted = values.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 1500, "{tv:?}: duplicates");
    assert_no_hanging(broker, &[&topic]);
}

#[test]
fn committed_visible_aborted_never_tv2() {
    visibility(TransactionVersion::V2);
}

#[test]
fn committed_visible_aborted_never_tv1() {
    visibility(TransactionVersion::V1);
}

/// Offsets sent to a transaction become the group's committed offsets only
/// when it commits: invisible (and "unstable" to a require_stable reader)
/// while it is open, discarded when it aborts.
fn offsets_with_transaction(tv: TransactionVersion) {
    use exactly_producer::{ConsumerGroupMetadata, OffsetCommit, TopicPartition};
    let broker = Broker::shared(tv).unwrap_or_else(|e| panic!("{e}"));
    let input = unique_topic("txn-off-in");
    let output = unique_topic("txn-off-out");
    broker.create_topic(&input, 2).unwrap();
    broker.create_topic(&output, 1).unwrap();
    let group = unique_topic("txn-off-group");
    let txn_id = unique_topic("txn-off-id");
    runtime().block_on(async {
        let check = net_client(&broker.bootstrap()).await;
        let p = producer(&broker.bootstrap(), &[("transactional.id", &txn_id)]).await;
        let meta = ConsumerGroupMetadata::new(&group);
        let offsets = |a: i64, b: i64| {
            [(0, a), (1, b)].map(|(p, offset)| OffsetCommit {
                partition: TopicPartition::new(&input, p),
                offset,
                leader_epoch: None,
                metadata: None,
            })
        };
        p.init_transactions().await.unwrap();
        // 1: commit offsets 10 and 20.
        p.begin_transaction().await.unwrap();
        send_values(&p, &output, "t1", 0..10).await;
        p.send_offsets_to_transaction(offsets(10, 20), &meta)
            .await
            .unwrap();
        assert_eq!(
            committed_offsets(&check, &group, &input, &[0, 1], false).await,
            vec![Ok(-1), Ok(-1)],
            "{tv:?}: offsets of an open transaction are not committed"
        );
        let unstable = committed_offsets(&check, &group, &input, &[0, 1], true).await;
        assert_eq!(
            unstable,
            vec![Err(88), Err(88)],
            "{tv:?}: a require_stable reader sees UNSTABLE_OFFSET_COMMIT"
        );
        p.commit_transaction().await.unwrap();
        assert_eq!(
            stable_offsets(&check, &group, &input, &[0, 1]).await,
            vec![Ok(10), Ok(20)],
            "{tv:?}"
        );
        // 2: abort offsets 30 and 40: nothing changes.
        p.begin_transaction().await.unwrap();
        send_values(&p, &output, "t2", 0..10).await;
        p.send_offsets_to_transaction(offsets(30, 40), &meta)
            .await
            .unwrap();
        p.abort_transaction().await.unwrap();
        assert_eq!(
            stable_offsets(&check, &group, &input, &[0, 1]).await,
            vec![Ok(10), Ok(20)],
            "{tv:?}: aborted offsets discarded"
        );
        // 3: offsets alone (no records) in a transaction, committed.
        p.begin_transaction().await.unwrap();
        p.send_offsets_to_transaction(offsets(50, 60), &meta)
            .await
            .unwrap();
        p.commit_transaction().await.unwrap();
        assert_eq!(
            stable_offsets(&check, &group, &input, &[0, 1]).await,
            vec![Ok(50), Ok(60)],
            "{tv:?}"
        );
        // 4: a zombie group member (a generation the group never had) is
        // fenced by the group coordinator (KIP-447): the transaction must
        // abort, the producer lives on, the offsets stay.
        p.begin_transaction().await.unwrap();
        send_values(&p, &output, "t4", 0..10).await;
        let zombie = ConsumerGroupMetadata {
            generation_id: 7,
            member_id: "gone-member".into(),
            ..ConsumerGroupMetadata::new(&group)
        };
        let e = p
            .send_offsets_to_transaction(offsets(70, 80), &zombie)
            .await
            .unwrap_err();
        eprintln!("{tv:?}: stale generation: {e}");
        assert!(e.is_abortable(), "{tv:?}: {e:?}");
        assert!(p.commit_transaction().await.unwrap_err().is_abortable());
        p.abort_transaction().await.unwrap();
        assert_eq!(
            stable_offsets(&check, &group, &input, &[0, 1]).await,
            vec![Ok(50), Ok(60)],
            "{tv:?}"
        );
        p.begin_transaction().await.unwrap();
        send_values(&p, &output, "t5", 0..10).await;
        p.commit_transaction().await.unwrap();
        p.close(Duration::from_secs(10)).await.unwrap();
    });
    assert_no_hanging(broker, &[&output]);
}

#[test]
fn offsets_commit_only_with_the_transaction_tv2() {
    offsets_with_transaction(TransactionVersion::V2);
}

#[test]
fn offsets_commit_only_with_the_transaction_tv1() {
    offsets_with_transaction(TransactionVersion::V1);
}

/// Two producers with one transactional.id: the second's init fences the
/// first, whose open transaction is aborted; the first fails fatally and
/// none of its records (before or after the fence) is ever visible.
fn zombie(tv: TransactionVersion) {
    let broker = Broker::shared(tv).unwrap_or_else(|e| panic!("{e}"));
    let topic = unique_topic("txn-zombie");
    broker.create_topic(&topic, 2).unwrap();
    let txn_id = unique_topic("txn-zombie-id");
    runtime().block_on(async {
        let old = producer(&broker.bootstrap(), &[("transactional.id", &txn_id)]).await;
        old.init_transactions().await.unwrap();
        old.begin_transaction().await.unwrap();
        send_values(&old, &topic, "zombie-before", 0..50).await;

        let new = producer(&broker.bootstrap(), &[("transactional.id", &txn_id)]).await;
        new.init_transactions().await.unwrap();

        // The zombie keeps going: its later sends fail, its commit fails.
        let mut late = Vec::new();
        for i in 0..50u32 {
            let v = format!("zombie-after-{i}");
            match old
                .send(ProducerRecord::new(&topic).with_value(v.as_bytes()))
                .await
            {
                Ok(f) => late.push(f),
                Err(e) => {
                    assert!(e.is_fatal() || e.is_abortable(), "{e:?}");
                    break;
                }
            }
        }
        let commit = old.commit_transaction().await.unwrap_err();
        eprintln!("{tv:?}: zombie commit: {commit}");
        for f in late {
            assert!(f.await.is_err(), "{tv:?}: a zombie record was acknowledged");
        }
        if !commit.is_fatal() {
            assert!(commit.is_abortable(), "{commit:?}");
            let abort = old.abort_transaction().await.unwrap_err();
            eprintln!("{tv:?}: zombie abort: {abort}");
            assert!(abort.is_fatal(), "{tv:?}: {abort:?}");
        }
        let again = old.begin_transaction().await.unwrap_err();
        assert!(again.is_fatal(), "{tv:?}: fatal is sticky: {again:?}");
        assert!(old
            .send(ProducerRecord::new(&topic).with_value(b"x"))
            .await
            .unwrap_err()
            .is_fatal());

        new.begin_transaction().await.unwrap();
        send_values(&new, &topic, "fresh", 0..50).await;
        new.commit_transaction().await.unwrap();
        new.close(Duration::from_secs(10)).await.unwrap();
        let _ = old.close(Duration::from_secs(5)).await;
    });
    let got = read_committed(broker, &topic, 50, Duration::from_secs(60));
    assert_eq!(got.len(), 50);
    assert!(
        got.iter()
            .all(|r| r.value.as_deref().unwrap().starts_with("fresh")),
        "{tv:?}: a zombie record is visible"
    );
    assert_no_hanging(broker, &[&topic]);
}

#[test]
fn zombie_is_fenced_fatally_tv2() {
    zombie(TransactionVersion::V2);
}

#[test]
fn zombie_is_fenced_fatally_tv1() {
    zombie(TransactionVersion::V1);
}

/// A transaction left open past `transaction.timeout.ms`: the coordinator
/// aborts it and bumps the epoch; the late commit fails and none of its
/// records is ever visible; the next transaction succeeds.
///
/// What a 4.3.1 broker allows (checked here): under transaction.version 2 the
/// late EndTxn(commit) gets INVALID_TXN_STATE and InitProducerId with the old
/// identity is accepted (KIP-588: it is the coordinator's last epoch), so the
/// *same* producer recovers by aborting. Under transaction.version 1 the
/// EndTxn gets PRODUCER_FENCED and so would that InitProducerId (the timeout
/// fence resets the coordinator's last epoch): the producer is fatally
/// failed and a new one with the same transactional.id carries on.
fn timeout(tv: TransactionVersion) {
    let broker = Broker::shared(tv).unwrap_or_else(|e| panic!("{e}"));
    let topic = unique_topic("txn-timeout");
    broker.create_topic(&topic, 1).unwrap();
    let txn_id = unique_topic("txn-timeout-id");
    runtime().block_on(async {
        let check = net_client(&broker.bootstrap()).await;
        let props = [
            ("transactional.id", txn_id.as_str()),
            ("transaction.timeout.ms", "2000"),
        ];
        let p = producer(&broker.bootstrap(), &props).await;
        p.init_transactions().await.unwrap();
        p.begin_transaction().await.unwrap();
        send_values(&p, &topic, "stalled", 0..20).await;
        let before = describe_transaction(&check, &txn_id).await;
        assert_eq!(before.0, "Ongoing");
        // The broker looks for expired transactions every 10 s by default.
        let deadline = std::time::Instant::now() + Duration::from_secs(40);
        let after = loop {
            let d = describe_transaction(&check, &txn_id).await;
            if d.0 == "CompleteAbort" {
                break d;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "never timed out: {d:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        assert!(
            after.2 > before.2,
            "{tv:?}: the timeout bumps the epoch: {after:?}"
        );
        let late = p.commit_transaction().await.unwrap_err();
        eprintln!("{tv:?}: late commit: {late}");
        let next = match tv {
            TransactionVersion::V2 => {
                assert!(late.is_abortable(), "{late:?}");
                p.abort_transaction().await.unwrap();
                p
            }
            TransactionVersion::V1 => {
                assert!(late.is_fatal(), "{late:?}");
                assert!(p.begin_transaction().await.unwrap_err().is_fatal());
                let _ = p.close(Duration::from_secs(5)).await;
                let fresh = producer(&broker.bootstrap(), &props).await;
                fresh.init_transactions().await.unwrap();
                fresh
            }
        };
        next.begin_transaction().await.unwrap();
        send_values(&next, &topic, "next", 0..20).await;
        next.commit_transaction().await.unwrap();
        next.close(Duration::from_secs(10)).await.unwrap();
    });
    let got = read_committed(broker, &topic, 20, Duration::from_secs(60));
    assert_eq!(got.len(), 20);
    assert!(
        got.iter()
            .all(|r| r.value.as_deref().unwrap().starts_with("next")),
        "{tv:?}: a record of the timed-out transaction is visible"
    );
    assert_no_hanging(broker, &[&topic]);
}

#[test]
fn open_past_transaction_timeout_tv2() {
    timeout(TransactionVersion::V2);
}

#[test]
fn open_past_transaction_timeout_tv1() {
    timeout(TransactionVersion::V1);
}

/// The Prometheus recorder of this test binary (one global recorder per
/// process; each test labels its clients apart).
fn prometheus() -> metrics_exporter_prometheus::PrometheusHandle {
    static HANDLE: std::sync::OnceLock<metrics_exporter_prometheus::PrometheusHandle> =
        std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| prometheus_example::install().unwrap())
        .clone()
}

/// Scrapes `addr` as Prometheus would: an HTTP GET, the body back.
async fn scrape(addr: std::net::SocketAddr) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nhost: test\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    s.read_to_string(&mut response).await.unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    body.to_owned()
}

/// The value of the sample `name{labels}` in Prometheus text.
fn sample(text: &str, name: &str, labels: &str) -> Option<f64> {
    let key = format!("{name}{{{labels}}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&key))
        .map(|v| v.trim().parse().unwrap())
}

/// The example's demo (5 transactions of 100 records, the third aborted
/// after its records were acknowledged) against the real broker, its
/// metrics scraped over HTTP from the example's listener: the producer's
/// and the consumer's counters are what the demo did.
fn metrics_example(tv: TransactionVersion) {
    let broker = Broker::shared(tv).unwrap_or_else(|e| panic!("{e}"));
    let topic = unique_topic("txn-metrics");
    broker.create_topic(&topic, 1).unwrap();
    let client = unique_topic("metrics");
    let demo = prometheus_example::Demo {
        bootstrap: broker.bootstrap(),
        topic: topic.clone(),
        transactional_id: unique_topic("txn-metrics-id"),
        client: client.clone(),
        transactions: 5,
        records: 100,
        abort_every: 3,
    };
    let handle = prometheus();
    let started = std::time::Instant::now();
    let text = runtime().block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(prometheus_example::serve(listener, handle));
        let (consumer, done) = prometheus_example::run_demo(&demo).await.unwrap();
        assert_eq!(
            (
                done.committed,
                done.aborted,
                done.records_sent,
                done.consumed
            ),
            (4, 1, 500, 400),
            "{tv:?}"
        );
        drop(consumer);
        scrape(addr).await
    });
    eprintln!("{tv:?}: demo and scrape in {:?}", started.elapsed());
    let p = format!(
        "client=\"{client}-producer\",transactional_id=\"{}\"",
        demo.transactional_id
    );
    let c = format!("client=\"{client}-consumer\"");
    let get = |name: &str, labels: &str| {
        sample(&text, name, labels)
            .unwrap_or_else(|| panic!("{tv:?}: no {name}{{{labels}}} in:\n{text}"))
    };
    // Exact: what the demo did.
    for (name, want) in [
        ("exactly_producer_records_sent_total", 500.0),
        ("exactly_producer_records_failed_total", 0.0),
        ("exactly_producer_batches_failed_total", 0.0),
        ("exactly_producer_transactions_committed_total", 4.0),
        ("exactly_producer_transactions_aborted_total", 1.0),
        ("exactly_producer_id_rotations_total", 0.0),
        ("exactly_producer_commit_latency_seconds_count", 4.0),
    ] {
        assert_eq!(get(name, &p), want, "{tv:?}: {name}");
    }
    // Epoch bumps: under KIP-890 every ended transaction bumps (EndTxn v5);
    // under v1 this producer bumps once after its abort, to fence it.
    let (cause, bumps) = match tv {
        TransactionVersion::V2 => ("end_txn", 5.0),
        TransactionVersion::V1 => ("abort", 1.0),
    };
    let bump_labels = format!("{p},cause=\"{cause}\"");
    assert_eq!(
        get("exactly_producer_epoch_bumps_total", &bump_labels),
        bumps,
        "{tv:?}"
    );
    let causes = text
        .lines()
        .filter(|l| l.starts_with("exactly_producer_epoch_bumps_total{") && l.contains(&p))
        .count();
    assert_eq!(causes, 1, "{tv:?}: bumps of another cause:\n{text}");
    // A batch never spans transactions: at least one per transaction.
    let batches = get("exactly_producer_batches_sent_total", &p);
    assert!(
        (5.0..=500.0).contains(&batches),
        "{tv:?}: {batches} batches"
    );
    // Values of 4 to 6 bytes, each record at least its value, the batch
    // headers on top; uncompressed, far below 100 bytes a record.
    let bytes = get("exactly_producer_bytes_sent_total", &p);
    assert!(
        (2_000.0..50_000.0).contains(&bytes),
        "{tv:?}: {bytes} bytes"
    );
    assert!(get("exactly_producer_retries_total", &p) >= 0.0);
    let sum = get("exactly_producer_commit_latency_seconds_sum", &p);
    assert!(sum > 0.0 && sum < 60.0, "{tv:?}: commit latency sum {sum}");
    let producer_client = format!("client=\"{client}-producer\"");
    assert!(get("exactly_requests_total", &producer_client) > 0.0);
    // The consumer: every committed record, the aborted ones skipped, and
    // nothing left to read.
    assert_eq!(get("exactly_consumer_records_total", &c), 400.0, "{tv:?}");
    assert!(
        get("exactly_consumer_aborted_batches_total", &c) >= 1.0,
        "{tv:?}"
    );
    let tp = format!("{c},topic=\"{topic}\",partition=\"0\"");
    assert_eq!(get("exactly_consumer_lag", &tp), 0.0, "{tv:?}");
    assert_eq!(get("exactly_consumer_lso_distance", &tp), 0.0, "{tv:?}");
}

#[test]
fn metrics_of_the_prometheus_example_tv2() {
    metrics_example(TransactionVersion::V2);
}

#[test]
fn metrics_of_the_prometheus_example_tv1() {
    metrics_example(TransactionVersion::V1);
}
