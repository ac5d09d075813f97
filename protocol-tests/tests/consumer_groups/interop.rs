//! Our consumer and the Java client in the *same* classic group, both with
//! the cooperative-sticky assignor (KIP-429): two Java `VerifiableConsumer`s
//! (`CooperativeStickyAssignor`) and two of ours split 8 partitions; every
//! record is consumed once and its offset committed (whoever leads the group
//! computes the assignment, so each side reads the other's subscription and
//! assignment bytes). Then our two leave: the Java members take their
//! partitions over from the offsets we committed, and read only what came
//! after (no record twice).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use exactly_consumer::{Consumer, Polled, Rebalance, TopicPartition};
use exactly_producer::{Producer, ProducerRecord};
use exactly_protocol_tests::{unique_topic, Broker, TransactionVersion};
use serde_json::Value;

const PARTITIONS: i32 = 8;

/// Who read which value, and who holds which partitions now.
#[derive(Default)]
struct Group {
    /// value -> readers.
    reads: BTreeMap<u64, Vec<String>>,
    /// member -> partitions held.
    held: BTreeMap<String, BTreeSet<i32>>,
}

type Shared = Arc<Mutex<Group>>;

fn java_member(
    broker: &Broker,
    topic: &str,
    group: &str,
    name: &str,
    g: Shared,
    done: Arc<AtomicBool>,
) {
    let java = broker.java();
    let cfg = java
        .config_file(
            &format!("{name}.properties"),
            &[
                ("heartbeat.interval.ms", "500"),
                ("isolation.level", "read_committed"),
            ],
        )
        .expect("config");
    let args: Vec<String> = [
        "--bootstrap-server",
        &broker.bootstrap(),
        "--topic",
        topic,
        "--group-id",
        group,
        "--reset-policy",
        "earliest",
        "--assignment-strategy",
        "org.apache.kafka.clients.consumer.CooperativeStickyAssignor",
        "--session-timeout",
        "10000",
        "--verbose",
        "--command-config",
        &cfg.display().to_string(),
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let run = java
        .run_until(
            "org.apache.kafka.tools.VerifiableConsumer",
            &args,
            Duration::from_secs(90),
            |line| {
                let Ok(v) = serde_json::from_str::<Value>(line) else {
                    return false;
                };
                let parts = |v: &Value| -> Vec<i32> {
                    v["partitions"]
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(|p| p["partition"].as_i64())
                                .map(|p| p as i32)
                                .collect()
                        })
                        .unwrap_or_default()
                };
                let mut g = g.lock().unwrap();
                match v["name"].as_str() {
                    Some("partitions_assigned") => {
                        g.held.entry(name.into()).or_default().extend(parts(&v));
                    }
                    Some("partitions_revoked") | Some("partitions_lost") => {
                        let gone = parts(&v);
                        g.held
                            .entry(name.into())
                            .or_default()
                            .retain(|p| !gone.contains(p));
                    }
                    Some("record_data") => {
                        if let Some(val) = v["value"].as_str().and_then(|s| s.parse().ok()) {
                            g.reads.entry(val).or_default().push(name.into());
                        }
                    }
                    _ => {}
                }
                done.load(Ordering::SeqCst)
            },
        )
        .expect("VerifiableConsumer");
    if run.status.is_some_and(|s| !s.success()) {
        panic!("{name} failed: {}", run.stderr_tail);
    }
}

async fn our_member(
    bootstrap: String,
    topic: String,
    group: String,
    name: String,
    g: Shared,
    leave: Arc<AtomicBool>,
) {
    let mut c = Consumer::from_properties([
        ("bootstrap.servers", bootstrap.as_str()),
        ("group.id", group.as_str()),
        ("auto.offset.reset", "earliest"),
        ("partition.assignment.strategy", "cooperative-sticky"),
        ("heartbeat.interval.ms", "500"),
        ("session.timeout.ms", "10000"),
    ])
    .await
    .expect("consumer");
    c.subscribe(&[&topic]).expect("subscribe");
    while !leave.load(Ordering::SeqCst) {
        match c.poll(Duration::from_millis(200)).await {
            Ok(Polled::Records(rs)) => {
                if rs.is_empty() {
                    continue;
                }
                {
                    let mut g = g.lock().unwrap();
                    for r in &rs {
                        let v: u64 = std::str::from_utf8(r.value().unwrap())
                            .unwrap()
                            .parse()
                            .unwrap();
                        g.reads.entry(v).or_default().push(name.clone());
                    }
                }
                c.commit().await.expect("commit");
            }
            Ok(Polled::Rebalance(ev)) => {
                let mut g = g.lock().unwrap();
                let held = g.held.entry(name.clone()).or_default();
                match ev {
                    Rebalance::Assigned(p) => held.extend(p.iter().map(|tp| tp.partition)),
                    Rebalance::Revoked(p) | Rebalance::Lost(p) => {
                        held.retain(|x| !p.iter().any(|tp| tp.partition == *x))
                    }
                }
            }
            Err(e) if e.is_retriable() => {}
            Err(e) => panic!("{name}: {e}"),
        }
    }
    c.close().await.expect("close");
    g.lock().unwrap().held.remove(&name);
}

async fn produce(bootstrap: &str, topic: &str, values: std::ops::Range<u64>) {
    let p = Producer::from_properties([("bootstrap.servers", bootstrap), ("linger.ms", "5")])
        .await
        .expect("producer");
    for v in values {
        let s = v.to_string();
        p.send(
            ProducerRecord::new(topic)
                .with_key(s.as_bytes())
                .with_value(s.as_bytes()),
        )
        .await
        .expect("send");
    }
    p.flush().await.expect("flush");
    p.close(Duration::from_secs(10)).await.expect("close");
}

fn wait_for(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn java_and_ours_share_a_cooperative_group_every_record_once() {
    let _serial = crate::serial();
    let broker = Broker::shared(TransactionVersion::V2).unwrap_or_else(|e| panic!("{e}"));
    let started = Instant::now();
    let bootstrap = broker.bootstrap();
    let topic = unique_topic("interop");
    let group = unique_topic("interop-group");
    broker.create_topic(&topic, PARTITIONS).expect("topic");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let g: Shared = Arc::default();
    let done = Arc::new(AtomicBool::new(false));
    let leave = Arc::new(AtomicBool::new(false));
    std::thread::scope(|s| {
        for name in ["java-1", "java-2"] {
            let (g, done, topic, group) = (g.clone(), done.clone(), topic.clone(), group.clone());
            s.spawn(move || java_member(broker, &topic, &group, name, g, done));
        }
        let ours: Vec<_> = ["ours-1", "ours-2"]
            .into_iter()
            .map(|name| {
                rt.spawn(our_member(
                    bootstrap.clone(),
                    topic.clone(),
                    group.clone(),
                    name.into(),
                    g.clone(),
                    leave.clone(),
                ))
            })
            .collect();
        // The four members hold two partitions each, disjoint.
        let stable = |g: &Shared, members: usize| {
            let g = g.lock().unwrap();
            let all: Vec<i32> = g.held.values().flatten().copied().collect();
            let distinct: BTreeSet<i32> = all.iter().copied().collect();
            g.held.len() == members
                && all.len() == PARTITIONS as usize
                && distinct.len() == PARTITIONS as usize
                && g.held
                    .values()
                    .all(|h| h.len() == PARTITIONS as usize / members)
        };
        wait_for("a stable group of four", Duration::from_secs(60), || {
            stable(&g, 4)
        });
        println!(
            "stable after {:?}: {:?}",
            started.elapsed(),
            g.lock().unwrap().held
        );
        let n = 4_000u64;
        rt.block_on(produce(&bootstrap, &topic, 0..n));
        wait_for("every record read", Duration::from_secs(60), || {
            g.lock().unwrap().reads.len() as u64 >= n
        });
        {
            let g = g.lock().unwrap();
            let by: BTreeMap<&str, usize> =
                g.reads
                    .values()
                    .flatten()
                    .fold(BTreeMap::new(), |mut m, who| {
                        *m.entry(who.as_str()).or_default() += 1;
                        m
                    });
            println!("reads by member: {by:?}");
            assert_eq!(by.len(), 4, "every member read its share: {by:?}");
            let twice: Vec<_> = g
                .reads
                .iter()
                .filter(|(_, w)| w.len() > 1)
                .take(5)
                .collect();
            assert!(twice.is_empty(), "read twice: {twice:?}");
        }
        // Every offset is committed (each side commits after its batches).
        let committed = rt.block_on(async {
            let mut c = Consumer::from_properties([
                ("bootstrap.servers", bootstrap.as_str()),
                ("group.id", group.as_str()),
            ])
            .await
            .unwrap();
            let tps: Vec<TopicPartition> = (0..PARTITIONS)
                .map(|p| TopicPartition::new(&topic, p))
                .collect();
            let end = c.end_offsets(&tps).await.unwrap();
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                let got = c.committed(&tps).await.unwrap();
                let ok = tps
                    .iter()
                    .all(|tp| got[tp].as_ref().is_some_and(|o| o.offset == end[tp]));
                if ok || Instant::now() > deadline {
                    break (ok, got, end);
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        assert!(
            committed.0,
            "committed {:?}, end {:?}",
            committed.1, committed.2
        );
        // Ours leave; Java takes over from our committed offsets.
        leave.store(true, Ordering::SeqCst);
        for h in ours {
            rt.block_on(h).expect("our member");
        }
        wait_for(
            "the Java members holding everything",
            Duration::from_secs(40),
            || stable(&g, 2),
        );
        let m = 1_000u64;
        rt.block_on(produce(&bootstrap, &topic, n..n + m));
        wait_for("the new records read", Duration::from_secs(40), || {
            g.lock().unwrap().reads.len() as u64 >= n + m
        });
        // Let a Java member re-read anything it would (it must not).
        std::thread::sleep(Duration::from_secs(2));
        done.store(true, Ordering::SeqCst);
        let g2 = g.lock().unwrap();
        let twice: Vec<_> = g2
            .reads
            .iter()
            .filter(|(_, w)| w.len() > 1)
            .take(5)
            .collect();
        assert!(
            twice.is_empty(),
            "read twice after the take-over: {twice:?}"
        );
        assert_eq!(g2.reads.len() as u64, n + m);
        drop(g2);
        // One more record per partition so each Java member prints a line
        // and sees `done`.
        rt.block_on(produce(&bootstrap, &topic, n + m..n + m + 64));
    });
    println!("took {:?}", started.elapsed());
}
