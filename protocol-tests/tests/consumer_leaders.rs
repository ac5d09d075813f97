//! Issue 12, "following the cluster": on a 3-node cluster (replication
//! factor 3, `min.insync.replicas=2`) a transactional producer and a
//! `read_committed` consumer keep working, without an error reaching either
//! caller, while the leadership of every partition moves under them: twice
//! by a reassignment that only reorders the replicas followed by a
//! preferred-leader election (the old leader stays up and answers
//! `NOT_LEADER_OR_FOLLOWER` / `FENCED_LEADER_EPOCH`: the clients must
//! refresh metadata and follow), then by a `kill -9` of the node leading
//! partition 0 (its partitions get new leaders once the controller fences
//! it). Afterwards every value is read exactly once, by our consumer during
//! the run and by both judges (our checker and the Java
//! `VerifiableConsumer`) at the end.
//!
//! One 3-node cluster, transaction version 2 (`EXACTLY_EOS_TV=1` runs 1):
//! 206 s (tv2) and 244 s (tv1) on the shared 2-core machine (72-107 s of it the cluster's start, 45-70 s
//! the two elections' tool JVMs), too much for CI's budget, so `#[ignore]`d:
//! `cargo test -p exactly-protocol-tests --test consumer_leaders -- --ignored --nocapture`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use exactly::{Consumer, Polled, Producer, ProducerRecord, TopicPartition};
use exactly_protocol_tests::{judge, unique_topic, Broker, BrokerConfig, TransactionVersion};

const PARTITIONS: i32 = 3;
const PER_TXN: u64 = 50;

/// What the clients saw.
#[derive(Default)]
struct Seen {
    /// Values committed by the producer.
    committed: AtomicU64,
    /// Values read, in arrival order.
    read: Mutex<Vec<u64>>,
    /// Errors that reached the producer's or the consumer's caller.
    errors: Mutex<Vec<String>>,
}

async fn produce(bootstrap: String, topic: String, stop: Arc<AtomicBool>, seen: Arc<Seen>) {
    let tid = unique_topic("leaders-txn");
    let p = match Producer::from_properties([
        ("bootstrap.servers", bootstrap.as_str()),
        ("transactional.id", tid.as_str()),
        ("linger.ms", "5"),
    ])
    .await
    {
        Ok(p) => p,
        Err(e) => return seen.errors.lock().unwrap().push(format!("producer: {e}")),
    };
    let fail = |what: &str, e: &dyn std::fmt::Display| {
        seen.errors.lock().unwrap().push(format!("{what}: {e}"));
    };
    if let Err(e) = p.init_transactions().await {
        return fail("init_transactions", &e);
    }
    let mut next = 0u64;
    while !stop.load(Ordering::SeqCst) {
        if let Err(e) = p.begin_transaction().await {
            return fail("begin", &e);
        }
        for v in next..next + PER_TXN {
            let s = v.to_string();
            let r = ProducerRecord::new(&topic)
                .with_key(s.as_bytes())
                .with_value(s.as_bytes());
            if let Err(e) = p.send(r).await {
                return fail("send", &e);
            }
        }
        if let Err(e) = p.commit_transaction().await {
            return fail("commit", &e);
        }
        next += PER_TXN;
        seen.committed.store(next, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if let Err(e) = p.close(Duration::from_secs(30)).await {
        fail("close", &e);
    }
}

async fn consume(bootstrap: String, topic: String, stop: Arc<AtomicBool>, seen: Arc<Seen>) {
    let c = Consumer::from_properties([
        ("bootstrap.servers", bootstrap.as_str()),
        ("isolation.level", "read_committed"),
        ("auto.offset.reset", "earliest"),
    ])
    .await;
    let mut c = match c {
        Ok(c) => c,
        Err(e) => return seen.errors.lock().unwrap().push(format!("consumer: {e}")),
    };
    let tps: Vec<TopicPartition> = (0..PARTITIONS)
        .map(|p| TopicPartition::new(&topic, p))
        .collect();
    if let Err(e) = c.assign(&tps) {
        return seen.errors.lock().unwrap().push(format!("assign: {e}"));
    }
    while !stop.load(Ordering::SeqCst) {
        match c.poll(Duration::from_millis(200)).await {
            Ok(Polled::Records(rs)) => {
                let mut read = seen.read.lock().unwrap();
                for r in rs.iter() {
                    let v = r.value().and_then(|v| std::str::from_utf8(v).ok());
                    read.push(v.and_then(|v| v.parse().ok()).unwrap_or(u64::MAX));
                }
            }
            Ok(Polled::Rebalance(e)) => {
                seen.errors.lock().unwrap().push(format!("rebalance {e:?}"));
            }
            Err(e) => seen.errors.lock().unwrap().push(format!("poll: {e}")),
        }
    }
    let _ = c.close().await;
}

/// Moves the leadership of every partition of `topic` to the next node:
/// replicas reordered (no data moves), then a preferred-leader election.
fn rotate_leaders(broker: &Broker, topic: &str) {
    let nodes = broker.node_ids();
    let mut parts = Vec::new();
    for p in 0..PARTITIONS {
        let leader = broker.leader_of(topic, p).expect("leader");
        let i = nodes.iter().position(|n| *n == leader).expect("known node");
        let order: Vec<String> = (1..=nodes.len())
            .map(|k| nodes[(i + k) % nodes.len()].to_string())
            .collect();
        parts.push(format!(
            r#"{{"topic":"{topic}","partition":{p},"replicas":[{}]}}"#,
            order.join(",")
        ));
    }
    let json = format!(r#"{{"version":1,"partitions":[{}]}}"#, parts.join(","));
    let java = broker.java();
    let file = std::env::temp_dir().join(format!("{}.json", unique_topic("reassign")));
    std::fs::write(&file, json).expect("reassignment file");
    let tool = |class: &str, args: &[&str]| {
        let mut a = vec!["--bootstrap-server".to_owned(), broker.bootstrap()];
        a.extend(args.iter().map(|s| s.to_string()));
        let run = java.run(class, &a, Duration::from_secs(60)).expect(class);
        assert!(
            run.status.is_some_and(|s| s.success()),
            "{class}: {:?} {}",
            run.stdout,
            run.stderr_tail
        );
    };
    let path = file.display().to_string();
    tool(
        "org.apache.kafka.tools.reassign.ReassignPartitionsCommand",
        &["--reassignment-json-file", &path, "--execute"],
    );
    tool(
        "org.apache.kafka.tools.LeaderElectionCommand",
        &["--election-type", "PREFERRED", "--all-topic-partitions"],
    );
    let _ = std::fs::remove_file(file);
}

fn leaders(broker: &Broker, topic: &str) -> Vec<i32> {
    (0..PARTITIONS)
        .map(|p| broker.leader_of(topic, p).unwrap_or(-1))
        .collect()
}

/// Waits until both clients made progress: `n` more values committed and
/// read than now.
fn progress(seen: &Seen, n: u64, what: &str) {
    let (c0, r0) = (
        seen.committed.load(Ordering::SeqCst),
        seen.read.lock().unwrap().len() as u64,
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let errors = seen.errors.lock().unwrap().clone();
        assert!(errors.is_empty(), "{what}: errors surfaced: {errors:?}");
        let (c, r) = (
            seen.committed.load(Ordering::SeqCst),
            seen.read.lock().unwrap().len() as u64,
        );
        if c >= c0 + n && r >= r0 + n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: no progress in 60 s ({c0} -> {c} committed, {r0} -> {r} read)"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
#[ignore = "a 3-node cluster and 4 tool JVMs: 200-250 s here; run with -- --ignored"]
fn producer_and_consumer_follow_leader_changes_without_errors() {
    let tv = match std::env::var("EXACTLY_EOS_TV").as_deref() {
        Ok("1") => TransactionVersion::V1,
        _ => TransactionVersion::V2,
    };
    let t = Instant::now();
    let phase = |what: &str| println!("{:6.1} s  {what}", t.elapsed().as_secs_f64());
    let broker = Broker::start(BrokerConfig {
        nodes: 3,
        ..BrokerConfig::with_transaction_version(tv)
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let topic = unique_topic("leaders");
    broker.create_topic(&topic, PARTITIONS).expect("topic");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (stop_p, stop_c) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    let seen = Arc::new(Seen::default());
    let producer = rt.spawn(produce(
        broker.bootstrap(),
        topic.clone(),
        stop_p.clone(),
        seen.clone(),
    ));
    let consumer = rt.spawn(consume(
        broker.bootstrap(),
        topic.clone(),
        stop_c.clone(),
        seen.clone(),
    ));
    phase("cluster up");
    progress(&seen, 500, "start");
    phase("clients running");
    for round in 0..2 {
        let before = leaders(&broker, &topic);
        rotate_leaders(&broker, &topic);
        let after = leaders(&broker, &topic);
        assert!(
            before.iter().zip(&after).all(|(b, a)| a != b),
            "round {round}: leaders {before:?} -> {after:?}"
        );
        progress(
            &seen,
            500,
            &format!("after election {round} ({before:?} -> {after:?})"),
        );
        phase(&format!(
            "election {round}: leaders {before:?} -> {after:?}, both clients progressed"
        ));
    }
    let victim = broker.leader_of(&topic, 0).expect("leader");
    broker.kill9(victim).expect("kill -9");
    let deadline = Instant::now() + Duration::from_secs(60);
    while leaders(&broker, &topic).contains(&victim) {
        assert!(Instant::now() < deadline, "node {victim} still leads");
        std::thread::sleep(Duration::from_millis(200));
    }
    phase(&format!(
        "node {victim} killed, its partitions led elsewhere"
    ));
    progress(&seen, 500, &format!("after kill -9 of node {victim}"));
    phase("both clients progressed");

    stop_p.store(true, Ordering::SeqCst);
    rt.block_on(producer).expect("producer task");
    let n = seen.committed.load(Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs(60);
    while (seen.read.lock().unwrap().len() as u64) < n && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    stop_c.store(true, Ordering::SeqCst);
    rt.block_on(consumer).expect("consumer task");
    let errors = seen.errors.lock().unwrap().clone();
    assert!(errors.is_empty(), "errors surfaced: {errors:?}");
    let mut read = seen.read.lock().unwrap().clone();
    read.sort_unstable();
    let expected: Vec<u64> = (0..n).collect();
    assert!(
        read == expected,
        "{tv:?}: read {} values, {} expected (first difference at {:?})",
        read.len(),
        n,
        read.iter().zip(&expected).position(|(a, b)| a != b)
    );
    phase("drained");
    judge::exactly_once(&broker, &rt, &topic, PARTITIONS, n, "leader changes");
    phase("judged");
    println!("{tv:?}: {n} values through 2 elections and a leader kill -9");
}
