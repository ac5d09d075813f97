//! The real `Consumer` against the simulated broker on the wire, on tokio's
//! virtual clock: Fetch under both isolation levels (read_committed stops at
//! the last stable offset and drops aborted transactions, KIP-98), the
//! classic group protocol with one member, and offsets committed by a
//! transaction reaching OffsetFetch only when it commits (KIP-447).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use exactly_consumer::{
    Consumer, ConsumerRecord, IsolationLevel, OffsetCommit, OffsetReset, TopicPartition,
};
use exactly_producer::{Producer, ProducerConfig, ProducerRecord};
use exactly_testkit::cluster::SimCluster;

async fn txn_producer(sim: &SimCluster, id: &str) -> Producer {
    let mut b = ProducerConfig::builder();
    b.bootstrap_servers("sim:9092").unwrap();
    b.transactional_id(id);
    b.net().dialer(sim.dialer());
    let p = Producer::new(b.build().unwrap()).await.unwrap();
    p.init_transactions().await.unwrap();
    p
}

async fn consumer(sim: &SimCluster, group: Option<&str>, level: IsolationLevel) -> Consumer {
    let mut b = Consumer::builder();
    b.bootstrap_servers("sim:9092").unwrap();
    if let Some(g) = group {
        b.group_id(g);
    }
    b.isolation_level(level)
        .auto_offset_reset(OffsetReset::Earliest)
        .enable_auto_commit(false)
        .fetch_max_wait(Duration::from_millis(100));
    b.net().dialer(sim.dialer());
    b.build().await.unwrap()
}

/// Writes transaction `t` of five records `[t, i]` to `topic`, and commits
/// or aborts it (`None`: leaves it open).
async fn txn(p: &Producer, topic: &str, t: u8, commit: Option<bool>) {
    p.begin_transaction().await.unwrap();
    for i in 0..5u8 {
        p.send(ProducerRecord::new(topic).with_value(&[t, i]))
            .await
            .unwrap();
    }
    p.flush().await.unwrap();
    match commit {
        Some(true) => p.commit_transaction().await.unwrap(),
        Some(false) => p.abort_transaction().await.unwrap(),
        None => {}
    }
}

/// Polls until `want` records arrived or `limit` of virtual time passed.
async fn read(c: &mut Consumer, want: usize, limit: Duration) -> Vec<ConsumerRecord> {
    let until = tokio::time::Instant::now() + limit;
    let mut got = Vec::new();
    while got.len() < want && tokio::time::Instant::now() < until {
        got.extend(
            c.poll(Duration::from_millis(200))
                .await
                .unwrap()
                .into_records(),
        );
    }
    got
}

fn values(rs: &[ConsumerRecord]) -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = rs.iter().map(|r| r.value().unwrap().to_vec()).collect();
    v.sort();
    v
}

fn commit_at(tp: &TopicPartition, offset: i64) -> OffsetCommit {
    OffsetCommit {
        partition: tp.clone(),
        offset,
        leader_epoch: None,
        metadata: None,
    }
}

fn txn_values(ts: &[u8]) -> Vec<Vec<u8>> {
    ts.iter()
        .flat_map(|&t| (0..5u8).map(move |i| vec![t, i]))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn read_committed_group_consumer_reads_exactly_the_committed_records() {
    let sim = SimCluster::new(2);
    let p = txn_producer(&sim, "sim-in").await;
    txn(&p, "in", 0, Some(true)).await;
    txn(&p, "in", 1, Some(false)).await;
    txn(&p, "in", 2, Some(true)).await;
    // Open: beyond the last stable offset until it commits.
    txn(&p, "in", 3, None).await;

    let mut c = consumer(&sim, Some("g"), IsolationLevel::ReadCommitted).await;
    c.subscribe(&["in"]).unwrap();
    let got = read(&mut c, 11, Duration::from_secs(5)).await;
    assert_eq!(values(&got), txn_values(&[0, 2]), "committed only");
    assert!(sim.fetches() > 0);

    // The open transaction commits: its records become readable.
    p.commit_transaction().await.unwrap();
    let got = read(&mut c, 5, Duration::from_secs(5)).await;
    assert_eq!(values(&got), txn_values(&[3]));

    // A plain commit of the positions reaches the group's offsets.
    c.commit().await.unwrap();
    for part in 0..2 {
        let tp = TopicPartition::new("in", part);
        assert_eq!(sim.committed_offset("g", &tp), c.position(&tp));
    }
    c.close().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn read_uncommitted_reads_every_record_up_to_the_high_watermark() {
    let sim = SimCluster::new(1);
    let p = txn_producer(&sim, "sim-in").await;
    txn(&p, "in", 0, Some(true)).await;
    txn(&p, "in", 1, Some(false)).await;
    txn(&p, "in", 2, None).await;
    let mut c = consumer(&sim, None, IsolationLevel::ReadUncommitted).await;
    c.assign(&[TopicPartition::new("in", 0)]).unwrap();
    let got = read(&mut c, 16, Duration::from_secs(3)).await;
    assert_eq!(values(&got), txn_values(&[0, 1, 2]));
    // Offsets skip the markers (5 and 11).
    let offsets: Vec<i64> = got.iter().map(ConsumerRecord::offset).collect();
    let want: Vec<i64> = (0..5).chain(6..11).chain(12..17).collect();
    assert_eq!(offsets, want);
}

#[tokio::test(start_paused = true)]
async fn offsets_of_a_transaction_reach_offset_fetch_on_commit_only() {
    let sim = SimCluster::new(1);
    let input = txn_producer(&sim, "sim-in").await;
    txn(&input, "in", 0, Some(true)).await;
    txn(&input, "in", 1, Some(true)).await;
    let tp = TopicPartition::new("in", 0);

    let mut c = consumer(&sim, Some("g"), IsolationLevel::ReadCommitted).await;
    c.subscribe(&["in"]).unwrap();
    let got = read(&mut c, 10, Duration::from_secs(5)).await;
    assert_eq!(got.len(), 10);
    let group = c.group_metadata();
    let out = txn_producer(&sim, "sim-out").await;
    // Offset 3 in an aborted transaction: never visible.
    out.begin_transaction().await.unwrap();
    out.send_offsets_to_transaction([commit_at(&tp, 3)], &group)
        .await
        .unwrap();
    out.abort_transaction().await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    sim.settle();
    assert_eq!(sim.committed_offset("g", &tp), None);
    // Offset 7 in a committed one: visible once the markers are written.
    out.begin_transaction().await.unwrap();
    out.send_offsets_to_transaction([commit_at(&tp, 7)], &group)
        .await
        .unwrap();
    assert_eq!(sim.committed_offset("g", &tp), None, "pending until commit");
    out.commit_transaction().await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    sim.settle();
    assert_eq!(sim.committed_offset("g", &tp), Some(7));
    c.close().await.unwrap();

    // A new member of the group resumes at the committed offset (OffsetFetch).
    let mut c2 = consumer(&sim, Some("g"), IsolationLevel::ReadCommitted).await;
    c2.subscribe(&["in"]).unwrap();
    let got = read(&mut c2, 4, Duration::from_secs(5)).await;
    // Offsets 7..=10: transaction 1's records [1, 1..=4] (offset 6 is [1, 0]).
    assert_eq!(
        values(&got),
        vec![vec![1, 1], vec![1, 2], vec![1, 3], vec![1, 4]]
    );
}
