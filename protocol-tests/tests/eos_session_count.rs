//! Issue 11's acceptance for stateful exactly-once: the count application
//! (`src/bin/eos_app.rs count`: a running count per input key in the
//! session's changelog-backed state, `(key, count)` written to topic A on
//! every input) under the fan-out test's kill schedule (3 processes, each
//! killed -9 5 times, every third death between TxnOffsetCommit and EndTxn, one
//! SIGTERMed mid-stream). Then, read `read_committed` by our consumer and by
//! the Java `VerifiableConsumer`, every key's counts are 1, 2, 3, ... in
//! order with no gap and no repeat, the last one equal to the number of
//! inputs with that key; and a fresh instance restoring from the changelog
//! holds exactly those counts.
//!
//! `EXACTLY_SESSION_LONG=1` runs the long variant; `EXACTLY_EOS_TV=1|2` one
//! transaction version.

mod session_support;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use exactly::eos::{Context, Handler, HandlerError, StateConfig};
use exactly::{
    Consumer, ConsumerRecord, Polled, Producer, ProducerRecord, Session, ShutdownHandle,
    TopicPartition,
};
use exactly_protocol_tests::judge::assert_no_hanging;
use exactly_protocol_tests::{unique_topic, Broker, TransactionVersion};
use session_support::{kill_schedule, long, produce_paced, versions, App};

const KEYS: u64 = 50;
const INPUT_PARTITIONS: i32 = 6;

fn key(v: u64) -> String {
    format!("k{}", v % KEYS)
}

/// Checks (partition, offset, key, count) records: per key, in offset
/// order within its partition, the counts are 1, 2, 3, ... ending at
/// `per_key`. Returns the problems found.
fn judge_counts(mut records: Vec<(i32, i64, String, u64)>, per_key: u64) -> Vec<String> {
    records.sort();
    let mut last: BTreeMap<String, (i32, u64)> = BTreeMap::new();
    let mut problems = Vec::new();
    for (p, o, k, c) in records {
        let (part, prev) = last.get(&k).copied().unwrap_or((p, 0));
        if part != p {
            problems.push(format!("{k} in partitions {part} and {p}"));
        }
        if c != prev + 1 {
            problems.push(format!("{k}: {c} after {prev} (partition {p} offset {o})"));
        }
        last.insert(k, (p, c));
    }
    if last.len() as u64 != KEYS {
        problems.push(format!("{} keys seen, {KEYS} expected", last.len()));
    }
    for (k, (_, c)) in &last {
        if *c != per_key {
            problems.push(format!("{k}: last count {c}, {per_key} inputs"));
        }
    }
    problems
}

/// Reads all of `topic` (`partitions`) `read_committed` until `n` records
/// arrived and nothing more came for 2 s (or 60 s without any).
async fn read_counts(bootstrap: &str, topic: &str, n: u64) -> Vec<(i32, i64, String, u64)> {
    let mut c = Consumer::from_properties([
        ("bootstrap.servers", bootstrap),
        ("isolation.level", "read_committed"),
        ("auto.offset.reset", "earliest"),
    ])
    .await
    .expect("consumer");
    let tps: Vec<TopicPartition> = (0..3).map(|p| TopicPartition::new(topic, p)).collect();
    c.assign(&tps).expect("assign");
    let mut out = Vec::new();
    let mut last = Instant::now();
    loop {
        let quiet = if out.len() as u64 >= n { 2 } else { 60 };
        if last.elapsed() >= Duration::from_secs(quiet) {
            break;
        }
        if let Polled::Records(rs) = c.poll(Duration::from_millis(200)).await.expect("poll") {
            if !rs.is_empty() {
                last = Instant::now();
            }
            for r in rs.iter() {
                out.push(parse(r.partition(), r.offset(), r.key(), r.value()));
            }
        }
    }
    let _ = c.close().await;
    out
}

fn parse(
    p: i32,
    o: i64,
    k: Option<&bytes::Bytes>,
    v: Option<&bytes::Bytes>,
) -> (i32, i64, String, u64) {
    let k = k
        .map(|k| String::from_utf8_lossy(k).into_owned())
        .unwrap_or_default();
    let c = v
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    (p, o, k, c)
}

/// Per input partition, the (key, count) entries of its state.
type Restored = Arc<Mutex<HashMap<i32, Vec<(String, u64)>>>>;

/// A fresh instance's view of the state: on each probe record (one per
/// input partition) it records that partition's restored state.
struct Probe {
    seen: Restored,
    stop: ShutdownHandle,
}

impl Handler for Probe {
    async fn process(
        &mut self,
        ctx: &mut Context<'_>,
        records: &[ConsumerRecord],
    ) -> Result<(), HandlerError> {
        let p = ctx.partition().partition;
        for r in records {
            if r.key().map(|k| &k[..]) != Some(b"probe") {
                return Err(format!("an input past the probe: {r:?}").into());
            }
            let state = ctx.state().ok_or("no state")?;
            let entries = state
                .entries()
                .into_iter()
                .map(|(k, v)| {
                    let c = std::str::from_utf8(&v).ok().and_then(|v| v.parse().ok());
                    (String::from_utf8_lossy(&k).into_owned(), c.unwrap_or(0))
                })
                .collect();
            let mut seen = self.seen.lock().expect("probe lock");
            seen.insert(p, entries);
            if seen.len() == INPUT_PARTITIONS as usize {
                self.stop.shutdown();
            }
        }
        Ok(())
    }
}

fn count(tv: TransactionVersion) {
    let broker = Broker::shared(tv).unwrap_or_else(|e| panic!("{e}"));
    let (n, kills_each, rate) = if long() {
        (300_000, 15, 3_000)
    } else {
        (30_000, 5, 1_000)
    };
    let per_key = n / KEYS;
    let app = App {
        mode: "count",
        broker,
        input: unique_topic("count-in"),
        a: unique_topic("count-out"),
        b: unique_topic("count-unused"),
        group: unique_topic("count-group"),
        idle_secs: 8,
    };
    broker
        .create_topic(&app.input, INPUT_PARTITIONS)
        .expect("input topic");
    broker.create_topic(&app.a, 3).expect("output topic");
    broker.create_topic(&app.b, 1).expect("unused topic");
    let t = Instant::now();
    let deadline = t + Duration::from_secs(if long() { 1800 } else { 420 });
    let produced = Arc::new(AtomicBool::new(false));
    let producer = {
        let (bootstrap, topic, done) = (broker.bootstrap(), app.input.clone(), produced.clone());
        std::thread::spawn(move || produce_paced(bootstrap, topic, n, rate, key, done))
    };
    let report = kill_schedule(&app, tv, kills_each, deadline, &produced, producer);
    println!(
        "count {tv:?}: {n} inputs over {KEYS} keys, {report:?}, {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let changelog = StateConfig::new("counts").changelog_topic(&app.group, &app.input);
    assert_no_hanging(broker, &[&app.a, &changelog]);

    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let bootstrap = broker.bootstrap();
    let ours = rt.block_on(read_counts(&bootstrap, &app.a, n));
    assert_eq!(ours.len() as u64, n, "{tv:?}: one output per input (ours)");
    let problems = judge_counts(ours, per_key);
    assert!(problems.is_empty(), "{tv:?}: ours: {problems:?}");
    let java = broker
        .java()
        .verifiable_consumer(
            &app.a,
            &unique_topic("count-judge"),
            n as usize,
            &[("isolation.level", "read_committed")],
            Duration::from_secs(180),
        )
        .expect("VerifiableConsumer");
    assert_eq!(java.len() as u64, n, "{tv:?}: one output per input (Java)");
    let java: Vec<_> = java
        .iter()
        .map(|r| {
            let k = r.key.clone().unwrap_or_default();
            let c = r.value.as_deref().and_then(|v| v.parse().ok()).unwrap_or(0);
            (r.partition, r.offset, k, c)
        })
        .collect();
    let problems = judge_counts(java, per_key);
    assert!(problems.is_empty(), "{tv:?}: Java: {problems:?}");

    // A fresh instance restores every partition's state from the changelog.
    let seen: Restored = Arc::new(Mutex::new(HashMap::new()));
    rt.block_on(async {
        let p = Producer::from_properties([("bootstrap.servers", bootstrap.as_str())])
            .await
            .expect("producer");
        for part in 0..INPUT_PARTITIONS {
            p.send(
                ProducerRecord::new(&app.input)
                    .with_partition(part)
                    .with_key(b"probe")
                    .with_value(b"probe"),
            )
            .await
            .expect("probe");
        }
        p.flush().await.expect("flush");
        let mut b = Session::builder();
        b.bootstrap_servers(&bootstrap)
            .expect("bootstrap")
            .set("auto.offset.reset", "earliest")
            .expect("reset");
        b.group_id(&app.group)
            .transactional_id(unique_topic("count-probe"))
            .input_topics(&[&app.input])
            .state(StateConfig::new("counts"))
            .stop_when_idle(Duration::from_secs(60));
        let s = b.build().await.expect("probe session");
        let h = Probe {
            seen: seen.clone(),
            stop: s.shutdown_handle(),
        };
        s.run(h).await.expect("probe run");
    });
    let seen = seen.lock().expect("probe lock");
    assert_eq!(
        seen.len(),
        INPUT_PARTITIONS as usize,
        "every partition probed"
    );
    let mut restored: BTreeMap<String, u64> = BTreeMap::new();
    for entries in seen.values() {
        for (k, c) in entries {
            assert!(
                restored.insert(k.clone(), *c).is_none(),
                "{k} in two partitions' state"
            );
        }
    }
    let expected: BTreeMap<String, u64> = (0..KEYS).map(|v| (key(v), per_key)).collect();
    assert_eq!(restored, expected, "{tv:?}: the restored state");
}

#[test]
fn count_state_survives_kills_and_restores_from_the_changelog() {
    for tv in versions() {
        count(tv);
    }
}

#[test]
fn the_count_judge_catches_gaps_repeats_and_wrong_totals() {
    let ok = vec![
        (0, 0, "k0".to_owned(), 1),
        (0, 1, "k0".to_owned(), 2),
        (1, 0, "k1".to_owned(), 1),
        (1, 5, "k1".to_owned(), 2),
    ];
    // Only 2 keys of KEYS here: that alone is reported.
    assert_eq!(judge_counts(ok.clone(), 2).len(), 1);
    let mut repeat = ok.clone();
    repeat.push((0, 2, "k0".to_owned(), 2));
    assert!(judge_counts(repeat, 2)
        .iter()
        .any(|p| p.contains("2 after 2")));
    let mut gap = ok;
    gap[1].3 = 3;
    assert!(judge_counts(gap, 2).iter().any(|p| p.contains("3 after 1")));
}
