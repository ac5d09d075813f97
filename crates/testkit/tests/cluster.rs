//! The real idempotent `Producer` against the simulated broker on the wire,
//! in-process, on tokio's virtual clock: connections cut right after a
//! Produce was applied make it retry, and the broker's sequence checks keep
//! every record exactly once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::time::Duration;

use exactly_producer::{Producer, ProducerConfig, ProducerRecord};
use exactly_testkit::cluster::SimCluster;

async fn producer(sim: &SimCluster) -> Producer {
    let mut b = ProducerConfig::builder();
    b.bootstrap_servers("sim:9092").unwrap();
    b.linger(Duration::from_millis(5));
    b.net()
        .dialer(sim.dialer())
        .request_timeout(Duration::from_secs(2));
    Producer::new(b.build().unwrap()).await.unwrap()
}

fn values(sim: &SimCluster) -> Vec<Vec<u8>> {
    sim.committed_batches()
        .iter()
        .flat_map(|(_, b)| {
            b.records()
                .map(|r| r.unwrap().value().unwrap().to_vec())
                .collect::<Vec<_>>()
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn idempotent_producer_writes_each_record_once_through_cut_connections() {
    let sim = SimCluster::new(2);
    sim.cut_after_produce([1, 3, 4]);
    let p = producer(&sim).await;
    let started = tokio::time::Instant::now();
    let mut deliveries = Vec::new();
    for i in 0..40u32 {
        let v = i.to_be_bytes();
        deliveries.push(
            p.send(ProducerRecord::new("out").with_value(&v))
                .await
                .unwrap(),
        );
        if i % 7 == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    for d in deliveries {
        d.await.unwrap();
    }
    let got = values(&sim);
    let unique: BTreeSet<_> = got.iter().cloned().collect();
    assert_eq!(got.len(), 40, "every record once: {} written", got.len());
    assert_eq!(unique.len(), 40);
    assert!(sim.connections() >= 4, "the cuts forced reconnects");
    assert!(
        sim.duplicates() >= 1,
        "a retry of an applied batch met the broker's dedup"
    );
    // Virtual time passed (request timeouts, backoffs), not real time.
    assert!(started.elapsed() >= Duration::from_millis(100));
}

/// The real transactional `Producer` (transaction version 1: AddPartitionsToTxn,
/// EndTxn v3) against the simulated coordinator: committed transactions are
/// visible to a `read_committed` reader, the aborted one is not.
#[tokio::test(start_paused = true)]
async fn transactional_producer_commits_and_aborts_against_the_sim() {
    let sim = SimCluster::new(3);
    let mut b = ProducerConfig::builder();
    b.bootstrap_servers("sim:9092").unwrap();
    b.transactional_id("sim-tx");
    b.net().dialer(sim.dialer());
    let p = Producer::new(b.build().unwrap()).await.unwrap();
    p.init_transactions().await.unwrap();
    for (t, commit) in [(0u8, true), (1, false), (2, true)] {
        p.begin_transaction().await.unwrap();
        for i in 0..5u8 {
            let v = [t, i];
            p.send(ProducerRecord::new("out").with_value(&v))
                .await
                .unwrap();
        }
        if commit {
            p.commit_transaction().await.unwrap();
        } else {
            p.abort_transaction().await.unwrap();
        }
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    sim.settle();
    let mut got = values(&sim);
    got.sort();
    let want: Vec<Vec<u8>> = [0u8, 2]
        .iter()
        .flat_map(|&t| (0..5u8).map(move |i| vec![t, i]))
        .collect();
    assert_eq!(got, want);
    let (_, open) = sim.with_broker(|b| b.read_committed());
    assert_eq!(open, 0, "no transaction left hanging");
}

/// Offsets are Kafka's: one per record and one per transaction marker; the
/// producer's deliveries carry them, the stored batches start at them, and
/// the partition keeps its aborted transactions as KIP-98's index does.
#[tokio::test(start_paused = true)]
async fn each_record_and_each_marker_takes_one_offset() {
    let sim = SimCluster::new(1);
    let mut b = ProducerConfig::builder();
    b.bootstrap_servers("sim:9092").unwrap();
    b.transactional_id("sim-offsets");
    b.net().dialer(sim.dialer());
    let p = Producer::new(b.build().unwrap()).await.unwrap();
    p.init_transactions().await.unwrap();
    let mut offsets = Vec::new();
    for (t, commit) in [(0u8, true), (1, false), (2, true)] {
        p.begin_transaction().await.unwrap();
        let mut ds = Vec::new();
        for i in 0..5u8 {
            ds.push(
                p.send(ProducerRecord::new("out").with_value(&[t, i]))
                    .await
                    .unwrap(),
            );
        }
        p.flush().await.unwrap();
        for d in ds {
            offsets.push(d.await.unwrap().offset.unwrap());
        }
        if commit {
            p.commit_transaction().await.unwrap();
        } else {
            p.abort_transaction().await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        sim.settle();
    }
    let want: Vec<i64> = (0..5).chain(6..11).chain(12..17).collect();
    assert_eq!(offsets, want, "markers at 5, 11 and 17");
    let (end, lso, aborted) = sim.with_broker(|b| {
        let log = &b.logs[&exactly_txn::TopicPartition::new("out", 0)];
        (
            log.end_offset,
            log.last_stable_offset(),
            log.aborted.clone(),
        )
    });
    assert_eq!((end, lso), (18, 18));
    assert_eq!(aborted.len(), 1);
    assert_eq!((aborted[0].first_offset, aborted[0].marker_offset), (6, 11));
    let bases: Vec<i64> = sim
        .committed_batches()
        .iter()
        .map(|(_, b)| b.header().base_offset)
        .collect();
    assert_eq!(bases.first(), Some(&0));
    assert!(bases.iter().all(|o| *o < 5 || *o >= 12), "{bases:?}");
}
