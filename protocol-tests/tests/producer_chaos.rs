//! The idempotent producer through the chaos proxy: every connection is cut
//! after a random 0.5-1.5 s while records flow to 6 partitions. The Java
//! `VerifiableConsumer` must read every record exactly once, in per-partition
//! send order, and `DumpLogSegments` must show contiguous sequences per
//! producer id, epoch and partition.
//!
//! `EXACTLY_PRODUCER_RECORDS` sets the record count (default 200,000 for CI;
//! 1,000,000 is the acceptance run).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod producer_support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use exactly_producer::ProducerRecord;
use exactly_protocol_tests::proxy::{ChaosProxy, Faults};
use exactly_protocol_tests::{unique_topic, Broker, BrokerConfig, TransactionVersion};
use producer_support::*;

const PARTITIONS: i32 = 6;

fn record_count() -> u64 {
    std::env::var("EXACTLY_PRODUCER_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000)
}

fn chaos(tv: TransactionVersion) {
    let n = record_count();
    // The broker advertises the proxy's address, so every connection the
    // client opens (bootstrap and leader alike) goes through the proxy.
    let reserved = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy_port = reserved.local_addr().unwrap().port();
    let broker = Broker::start(BrokerConfig::with_transaction_version(tv).property(
        "advertised.listeners",
        format!("PLAINTEXT://127.0.0.1:{proxy_port}"),
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    let topic = unique_topic("chaos");
    broker.create_topic(&topic, PARTITIONS).unwrap();
    let started = Instant::now();
    let (acked, cuts) = runtime().block_on(async {
        let proxy = ChaosProxy::start_on(reserved, &broker.address(1))
            .await
            .unwrap();
        let producer = producer(
            &proxy.addr(),
            &[
                ("linger.ms", "5"),
                ("batch.size", "4096"),
                ("request.timeout.ms", "10000"),
                ("delivery.timeout.ms", "120000"),
                ("retry.backoff.ms", "20"),
            ],
        )
        .await;
        // A small delay keeps requests in flight, so that cuts hit them.
        proxy.set_faults(Faults {
            cut_after: Some((500, 1500)),
            delay: Duration::from_millis(20),
            ..Faults::default()
        });
        proxy.cut_all();
        // Paced so that the run spans many connection lifetimes (unpaced,
        // 200,000 records take well under a second).
        let span = Duration::from_secs((n / 20_000).clamp(10, 30));
        let paced_from = tokio::time::Instant::now();
        let mut futures = Vec::with_capacity(n as usize);
        for i in 0..n {
            if i % 1000 == 0 {
                tokio::time::sleep_until(paced_from + span.mul_f64(i as f64 / n as f64)).await;
            }
            let key = format!("k{}", i % 1009);
            let value = i.to_string();
            let f = producer
                .send(
                    ProducerRecord::new(&topic)
                        .with_key(key.as_bytes())
                        .with_value(value.as_bytes()),
                )
                .await
                .unwrap();
            futures.push(f);
        }
        producer.flush().await.unwrap();
        let mut acked = BTreeMap::new();
        for (i, f) in futures.into_iter().enumerate() {
            let m = f.await.unwrap_or_else(|e| panic!("record {i} failed: {e}"));
            acked.insert(i as u64, m);
        }
        let cuts = proxy.cuts();
        let m = producer.metrics();
        assert!(
            m.requests > m.responses,
            "cuts must hit requests in flight: {m:?}"
        );
        eprintln!(
            "{n} records acked in {:?} through {cuts} connection cuts; client metrics: {:?}",
            started.elapsed(),
            producer.metrics()
        );
        producer.close(Duration::from_secs(10)).await.unwrap();
        // The Java reader goes through the proxy too: no faults now.
        proxy.set_faults(Faults::default());
        let consumed = read_committed(&broker, &topic, n as usize, Duration::from_secs(300));
        if consumed.len() < n as usize {
            diagnose_missing(&broker, &topic, n, &acked, &consumed);
        }
        (check(n, &acked, &consumed), cuts)
    });
    assert!(
        cuts >= 5,
        "only {cuts} connection cuts: the chaos did not bite"
    );
    let mut runs = 0;
    for p in 0..PARTITIONS {
        let batches = dumped_batches(&broker, &topic, p);
        assert_eq!(
            batches.iter().map(|b| b.count).sum::<i64>() as u64,
            acked[&p],
            "partition {p}: the log holds exactly the acknowledged records"
        );
        runs += assert_contiguous_sequences(&batches, &format!("partition {p}"));
    }
    eprintln!(
        "{tv:?}: {n} records, {cuts} cuts, exactly once and in order; {runs} (producer id, epoch, partition) sequence runs, all contiguous; {:?} total",
        started.elapsed()
    );
}

/// Prints what the log holds next to what the producer was told, for the
/// records the Java reader did not get.
fn diagnose_missing(
    broker: &Broker,
    topic: &str,
    n: u64,
    acked: &BTreeMap<u64, exactly_producer::RecordMetadata>,
    consumed: &[exactly_protocol_tests::ConsumedRecord],
) {
    let mut seen = vec![false; n as usize];
    for r in consumed {
        if let Some(i) = r.value.as_deref().and_then(|v| v.parse::<u64>().ok()) {
            if i < n {
                seen[i as usize] = true;
            }
        }
    }
    let missing: Vec<u64> = (0..n).filter(|&i| !seen[i as usize]).collect();
    eprintln!(
        "{} of {n} records not read; their acks (first 40):",
        missing.len()
    );
    for i in missing.iter().take(40) {
        eprintln!("  value {i}: {:?}", acked.get(i));
    }
    let mut per_partition: BTreeMap<i32, Vec<Option<i64>>> = BTreeMap::new();
    for i in &missing {
        if let Some(m) = acked.get(i) {
            per_partition.entry(m.partition).or_default().push(m.offset);
        }
    }
    for (p, offsets) in &per_partition {
        let known: Vec<i64> = offsets.iter().flatten().copied().collect();
        eprintln!(
            "  partition {p}: {} missing, acked offsets {:?}..{:?} ({} without offset)",
            offsets.len(),
            known.iter().min(),
            known.iter().max(),
            offsets.len() - known.len()
        );
    }
    for p in 0..PARTITIONS {
        let batches = dumped_batches(broker, topic, p);
        eprintln!(
            "  partition {p} log (first 8 of {} batches):",
            batches.len()
        );
        for b in batches.iter().take(8) {
            eprintln!(
                "    offsets {}..{} count {} pid {} epoch {} seq {}..{}",
                b.base_offset,
                b.last_offset,
                b.count,
                b.producer_id,
                b.producer_epoch,
                b.base_sequence,
                b.last_sequence
            );
        }
    }
}

/// Each index read exactly once; per partition, offsets and indexes both
/// increase; every record where its delivery future said. Returns the record
/// count per partition.
fn check(
    n: u64,
    acked: &BTreeMap<u64, exactly_producer::RecordMetadata>,
    consumed: &[exactly_protocol_tests::ConsumedRecord],
) -> BTreeMap<i32, u64> {
    let mut seen = vec![false; n as usize];
    let mut last: BTreeMap<i32, (i64, u64)> = BTreeMap::new();
    let mut per_partition = BTreeMap::new();
    for r in consumed {
        let i: u64 = r.value.as_deref().unwrap().parse().unwrap();
        assert!(i < n, "value {i} never sent");
        assert!(
            !seen[i as usize],
            "record {i} read twice (partition {} offset {})",
            r.partition, r.offset
        );
        seen[i as usize] = true;
        if let Some(&(offset, index)) = last.get(&r.partition) {
            assert!(
                r.offset > offset && i > index,
                "partition {}: {i}@{} after {index}@{offset}",
                r.partition,
                r.offset
            );
        }
        last.insert(r.partition, (r.offset, i));
        let m = acked[&i];
        assert_eq!(m.partition, r.partition, "record {i}");
        if let Some(o) = m.offset {
            assert_eq!(o, r.offset, "record {i}: delivery said offset {o}");
        }
        *per_partition.entry(r.partition).or_default() += 1;
    }
    let missing: Vec<u64> = (0..n).filter(|&i| !seen[i as usize]).take(10).collect();
    assert!(
        missing.is_empty(),
        "{} records missing, first {missing:?}",
        seen.iter().filter(|s| !**s).count()
    );
    per_partition
}

#[test]
fn idempotent_exactly_once_through_connection_cuts_tv2() {
    chaos(TransactionVersion::V2);
}

#[test]
fn idempotent_exactly_once_through_connection_cuts_tv1() {
    chaos(TransactionVersion::V1);
}
