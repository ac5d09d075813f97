//! Exactly once into PostgreSQL (issue 11's acceptance, `exactly-postgres`'s
//! `PgSink`): two sink processes in one group, a real broker and a real
//! PostgreSQL server, while the input is still being written:
//!
//! - `kill -9` at random moments, and kills the process does to itself
//!   right after a database commit, before anything else;
//! - a frozen process (SIGSTOP past the session timeout, then SIGCONT);
//! - a process that stalls past `max.poll.interval.ms` with a batch in hand
//!   and then writes it: a zombie write, which the offsets' compare-and-set
//!   must fence (the test requires at least one fenced batch).
//!
//! The table has a primary key on the value and the sink uses plain
//! `INSERT`s (no `ON CONFLICT`), so a value applied twice is a unique
//! violation: the test fails if the server's log shows one (every error a
//! client caused is logged, killed clients included) or a sink exits with
//! it. At the end every value is in the table exactly once, each
//! partition's stored offset is the partition's end, and both sinks stop
//! gracefully on SIGTERM.
//!
//! Scale with `EXACTLY_PG_RECORDS` (default 20,000) and `EXACTLY_PG_FAULTS`
//! (default 8; each fault costs a few seconds).

use std::process::Command;
use std::time::{Duration, Instant};

use exactly::{Consumer, Producer, ProducerRecord, TopicPartition};
use exactly_protocol_tests::child::ReportingChild;
use exactly_protocol_tests::postgres::connect;
use exactly_protocol_tests::process::Signal;
use exactly_protocol_tests::rng::Rng;
use exactly_protocol_tests::{unique_topic, Broker, Postgres, TransactionVersion};

const PARTITIONS: i32 = 4;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().expect("tokio runtime")
}

/// What starts a sink process.
struct SinkArgs {
    bootstrap: String,
    topic: String,
    group: String,
    postgres: String,
}

impl SinkArgs {
    fn start(&self, name: &str, env: &[(&str, String)]) -> ReportingChild {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_pg_sink"));
        cmd.args([
            &self.bootstrap,
            &self.topic,
            &self.group,
            &self.postgres,
            "sink_values",
        ]);
        for (k, v) in env {
            cmd.env(k, v);
        }
        ReportingChild::start(name, cmd).unwrap_or_else(|e| panic!("{name}: {e}"))
    }
}

/// Writes `0..n` to `topic` over about `spread`, so the sinks are killed
/// while input still arrives.
fn produce_slowly(bootstrap: String, topic: String, n: u64, spread: Duration) {
    let rt = runtime();
    rt.block_on(async move {
        let producer = Producer::from_properties([
            ("bootstrap.servers", bootstrap.as_str()),
            ("acks", "all"),
            ("linger.ms", "5"),
        ])
        .await
        .expect("producer");
        let chunks = 40u64;
        let per = n.div_ceil(chunks);
        let mut i = 0;
        while i < n {
            let mut pending = Vec::new();
            for v in i..(i + per).min(n) {
                let s = v.to_string();
                pending.push(
                    producer
                        .send(
                            ProducerRecord::new(&topic)
                                .with_key(s.as_bytes())
                                .with_value(s.as_bytes()),
                        )
                        .await
                        .expect("send"),
                );
            }
            for d in pending {
                d.await.expect("delivered");
            }
            i += per;
            tokio::time::sleep(spread / chunks as u32).await;
        }
        producer
            .close(Duration::from_secs(30))
            .await
            .expect("close");
    });
}

/// `SELECT count(*), count(DISTINCT value), min(value), max(value)`.
fn table_counts(rt: &tokio::runtime::Runtime, postgres: &str) -> (i64, i64, i64, i64) {
    rt.block_on(async {
        let client = connect(postgres).await.expect("connect");
        let row = client
            .query_one(
                "SELECT count(*), count(DISTINCT value), coalesce(min(value), -1), \
                 coalesce(max(value), -1) FROM sink_values",
                &[],
            )
            .await
            .expect("count");
        (row.get(0), row.get(1), row.get(2), row.get(3))
    })
}

fn stored_offsets(
    rt: &tokio::runtime::Runtime,
    postgres: &str,
    group: &str,
) -> Vec<(String, i32, i64)> {
    rt.block_on(async {
        let client = connect(postgres).await.expect("connect");
        client
            .query(
                "SELECT topic, partition, next_offset FROM exactly_offsets WHERE sink = $1 \
                 ORDER BY topic, partition",
                &[&group],
            )
            .await
            .expect("offsets")
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect()
    })
}

/// Fails at once if a sink stopped because of a unique violation.
fn check_no_duplicate_attempt(sinks: &mut [ReportingChild], pg: &Postgres) {
    for s in sinks.iter_mut() {
        if s.exit_status().and_then(|st| st.code()) == Some(3)
            || s.lines().iter().any(|l| l.starts_with("UNIQUE VIOLATION"))
        {
            panic!(
                "{} tried to insert a value twice: {:?}",
                s.name(),
                s.last_line("UNIQUE")
            );
        }
    }
    let log = pg.log();
    if let Some(line) = log.lines().find(|l| l.contains("duplicate key value")) {
        panic!("the server saw a duplicate insert: {line}");
    }
}

#[test]
fn pg_sink_exactly_once_through_kills_freezes_and_a_zombie_write() {
    let n = env_or("EXACTLY_PG_RECORDS", 20_000);
    let faults = env_or("EXACTLY_PG_FAULTS", 8) as usize;
    let rt = runtime();
    let broker = Broker::shared(TransactionVersion::V2).unwrap_or_else(|e| panic!("{e}"));
    let pg = Postgres::shared().unwrap_or_else(|e| panic!("{e}"));
    let postgres = pg.create_database("sink").unwrap_or_else(|e| panic!("{e}"));
    let db = postgres
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix("dbname="))
        .expect("dbname")
        .to_owned();
    pg.execute(
        &db,
        &format!(
            "CREATE TABLE sink_values (value bigint PRIMARY KEY, \
               kafka_partition integer NOT NULL, kafka_offset bigint NOT NULL); {}",
            exactly::postgres::sink::offsets_table_ddl("exactly_offsets").expect("ddl")
        ),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let args = SinkArgs {
        bootstrap: broker.bootstrap(),
        topic: unique_topic("pg-sink-in"),
        group: unique_topic("pg-sink-group"),
        postgres: postgres.clone(),
    };
    broker
        .create_topic(&args.topic, PARTITIONS)
        .unwrap_or_else(|e| panic!("{e}"));
    let t = Instant::now();
    let producer = {
        let (b, topic) = (args.bootstrap.clone(), args.topic.clone());
        std::thread::spawn(move || produce_slowly(b, topic, n, Duration::from_secs(15)))
    };

    // Every line of every sink process, the replaced ones included.
    let mut history: Vec<String> = Vec::new();
    let mut restarts = 0;
    let mut restart =
        |s: &mut ReportingChild, env: &[(&str, String)], history: &mut Vec<String>| {
            s.kill9();
            history.extend(s.lines());
            let name = s.name().to_owned();
            *s = args.start(&name, env);
            restarts += 1;
        };

    // Phase 1, a zombie write: sink-a stalls 12 s with its third batch in
    // hand, past max.poll.interval.ms (5 s); the group gives its partitions
    // to sink-b, which moves their stored offsets; then sink-a writes the
    // old batch, and the compare-and-set must roll it back.
    let mut sinks = vec![
        args.start(
            "sink-a",
            &[("EXACTLY_STALL_BEFORE_APPLY", "3:12000".to_owned())],
        ),
        args.start("sink-b", &[]),
    ];
    let deadline = Instant::now() + Duration::from_secs(90);
    while !sinks[0].lines().iter().any(|l| l.starts_with("fenced")) {
        check_no_duplicate_attempt(&mut sinks, pg);
        if sinks.iter_mut().any(|s| s.exit_status().is_some()) {
            check_no_duplicate_attempt(&mut sinks, pg);
            panic!("a sink ended during the zombie phase");
        }
        assert!(
            Instant::now() < deadline,
            "the zombie write was not fenced; sink-a said {:?}",
            sinks[0].lines()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    println!(
        "zombie write fenced after {:.1} s: {:?}",
        t.elapsed().as_secs_f64(),
        sinks[0].last_line("fenced")
    );

    // Phase 2, random faults while the input is still being written.
    let mut self_kills = 0;
    let mut rng = Rng::from_seed(11);
    // 0: kill -9; 1: kill -9, restarted to kill itself right after its k-th
    // database commit; 2: SIGSTOP past the session timeout, then SIGCONT.
    let kinds = [0, 1, 2, 1, 0, 1, 0, 2];
    for f in 0..faults {
        std::thread::sleep(Duration::from_millis(1000 + rng.below(1500)));
        check_no_duplicate_attempt(&mut sinks, pg);
        let i = f % 2;
        let name = sinks[i].name().to_owned();
        match kinds[f % kinds.len()] {
            0 => {
                println!("fault {f}: kill -9 {name}");
                restart(&mut sinks[i], &[], &mut history);
            }
            1 => {
                let k = (1 + rng.below(3)).to_string();
                println!("fault {f}: kill -9 {name}; it will kill itself after commit {k}");
                restart(
                    &mut sinks[i],
                    &[("EXACTLY_CRASH_AFTER_COMMITS", k)],
                    &mut history,
                );
            }
            _ => {
                println!("fault {f}: freeze {name} for 8 s");
                sinks[i].signal(Signal::Stop);
                std::thread::sleep(Duration::from_secs(8));
                sinks[i].signal(Signal::Cont);
            }
        }
        // A sink that killed itself after a commit comes back plainly.
        for s in sinks.iter_mut() {
            if s.exit_status().is_some() {
                check_no_duplicate_attempt(std::slice::from_mut(s), pg);
                let st = s.exit_status();
                assert!(s.was_killed(), "{} exited on its own: {st:?}", s.name());
                self_kills += 1;
                restart(s, &[], &mut history);
            }
        }
    }
    producer.join().expect("producer thread");
    println!(
        "input written and faults done after {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        check_no_duplicate_attempt(&mut sinks, pg);
        for s in sinks.iter_mut() {
            if s.exit_status().is_some() {
                let st = s.exit_status();
                assert!(s.was_killed(), "{} exited on its own: {st:?}", s.name());
                self_kills += 1;
                restart(s, &[], &mut history);
            }
        }
        let (rows, ..) = table_counts(&rt, &postgres);
        if rows as u64 >= n {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {rows} of {n} values in the table after the faults ({restarts} restarts)"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    // Graceful stop: the batch in flight finishes, the members leave.
    for s in sinks.iter_mut() {
        s.signal(Signal::Term);
    }
    for s in sinks.iter_mut() {
        let status = s.wait_exit(Duration::from_secs(30));
        assert!(
            status.is_some_and(|st| st.success()),
            "{} did not stop gracefully on SIGTERM: {status:?}",
            s.name()
        );
        assert!(
            s.last_line("done").is_some(),
            "{} did not report done",
            s.name()
        );
    }
    check_no_duplicate_attempt(&mut sinks, pg);

    let (rows, distinct, min, max) = table_counts(&rt, &postgres);
    for s in &sinks {
        history.extend(s.lines());
    }
    let fenced = history.iter().filter(|l| l.starts_with("fenced")).count();
    let commits = history
        .iter()
        .filter(|l| l.starts_with("committed"))
        .count();
    println!(
        "PostgreSQL sink: {n} values, {faults} faults, {restarts} restarts, {self_kills} kills \
         right after a commit, {fenced} fenced batches, {commits} commits reported, {rows} rows, {:.1} s",
        t.elapsed().as_secs_f64()
    );
    assert_eq!(
        (rows, distinct, min, max),
        (n as i64, n as i64, 0, n as i64 - 1)
    );
    if faults >= 4 {
        assert!(
            self_kills >= 1,
            "no sink killed itself right after a commit"
        );
    }

    // Each partition's stored offset is its end: nothing left, nothing past.
    let stored = stored_offsets(&rt, &postgres, &args.group);
    let ends = rt.block_on(async {
        let mut c = Consumer::from_properties([("bootstrap.servers", args.bootstrap.as_str())])
            .await
            .expect("consumer");
        let tps: Vec<TopicPartition> = (0..PARTITIONS)
            .map(|p| TopicPartition::new(&args.topic, p))
            .collect();
        c.end_offsets(&tps).await.expect("end offsets")
    });
    let expected: Vec<(String, i32, i64)> = ends
        .iter()
        .map(|(tp, o)| (tp.topic.clone(), tp.partition, *o))
        .collect();
    assert_eq!(stored, expected, "stored offsets vs the partitions' ends");
}
