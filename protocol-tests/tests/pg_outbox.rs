//! The outbox relay (issue 11's acceptance, `exactly-postgres`'s
//! `OutboxRelay`) on a real PostgreSQL server and a real broker, under
//! `transaction.version` 2 and 1:
//!
//! - writers on concurrent connections insert rows in transactions that
//!   overlap and commit out of id order (some roll back; one writer keeps a
//!   transaction open for over a second now and then), while the relay
//!   process is killed -9 at random moments and made to kill itself right
//!   after a Kafka commit; every committed row then appears in Kafka exactly
//!   once, no rolled-back row appears, and each key's rows come in insert
//!   order, read `read_committed` by our consumer and by the Java
//!   `VerifiableConsumer`;
//! - the trap of ids assigned at insert but visible at commit, set up
//!   deterministically: a row with a lower id committed after a higher one
//!   was committed is still published, and first.
//!
//! Scale with `EXACTLY_OUTBOX_ROWS` (default 4,000 per transaction version)
//! and `EXACTLY_OUTBOX_FAULTS` (default 6).

use std::collections::{BTreeMap, HashSet};
use std::process::Command;
use std::time::{Duration, Instant};

use exactly::postgres::tokio_postgres::{self, Client};
use exactly::postgres::{outbox::OUTBOX_ID_HEADER, Outbox, OutboxRelay, RelayConfig};
use exactly::{Consumer, Polled, TopicPartition};
use exactly_protocol_tests::child::ReportingChild;
use exactly_protocol_tests::process::Signal;
use exactly_protocol_tests::rng::Rng;
use exactly_protocol_tests::{unique_topic, Broker, Postgres, TransactionVersion};

const PARTITIONS: i32 = 3;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().expect("tokio runtime")
}

async fn connect(postgres: &str) -> Client {
    exactly_protocol_tests::postgres::connect(postgres)
        .await
        .expect("connect to PostgreSQL")
}

/// A database with an outbox table, and an output topic.
struct Setup {
    postgres: String,
    outbox: Outbox,
    topic: String,
    progress: String,
}

fn setup(
    broker: &Broker,
    pg: &Postgres,
    rt: &tokio::runtime::Runtime,
    label: &str,
    partitions: i32,
) -> Setup {
    let postgres = pg.create_database(label).unwrap_or_else(|e| panic!("{e}"));
    let outbox = Outbox::new("outbox").expect("table name");
    rt.block_on(async {
        let c = connect(&postgres).await;
        outbox.create(&c).await.expect("create the outbox");
    });
    let topic = unique_topic(&format!("{label}-out"));
    broker
        .create_topic(&topic, partitions)
        .unwrap_or_else(|e| panic!("{e}"));
    Setup {
        postgres,
        outbox,
        topic,
        progress: unique_topic(&format!("{label}-progress")),
    }
}

/// The outbox row id a published record names in its header (-1: none).
fn outbox_id(r: &exactly::ConsumerRecord) -> i64 {
    r.headers()
        .iter()
        .find(|h| h.key() == OUTBOX_ID_HEADER.as_bytes())
        .and_then(|h| h.value())
        .and_then(|v| std::str::from_utf8(v).ok()?.parse().ok())
        .unwrap_or(-1)
}

/// A record read back: partition, offset, key, value, outbox row id.
type Read = (i32, i64, String, String, i64);

/// Reads `topic` `read_committed` from the start until `expected` records
/// arrived and nothing more came for 3 s (or `limit` passed).
async fn read_all(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    expected: usize,
    limit: Duration,
) -> Vec<Read> {
    let mut c = Consumer::from_properties([
        ("bootstrap.servers", bootstrap),
        ("isolation.level", "read_committed"),
        ("auto.offset.reset", "earliest"),
    ])
    .await
    .expect("consumer");
    let tps: Vec<TopicPartition> = (0..partitions)
        .map(|p| TopicPartition::new(topic, p))
        .collect();
    c.assign(&tps).expect("assign");
    let deadline = Instant::now() + limit;
    let mut out = Vec::new();
    let mut last = Instant::now();
    while Instant::now() < deadline
        && !(out.len() >= expected && last.elapsed() > Duration::from_secs(3))
    {
        let Polled::Records(records) = c.poll(Duration::from_millis(200)).await.expect("poll")
        else {
            continue;
        };
        if !records.is_empty() {
            last = Instant::now();
        }
        for r in records.iter() {
            let text = |b: Option<&bytes::Bytes>| {
                b.map(|b| String::from_utf8_lossy(b).into_owned())
                    .unwrap_or_default()
            };
            let id = outbox_id(r);
            out.push((
                r.partition(),
                r.offset(),
                text(r.key()),
                text(r.value()),
                id,
            ));
        }
    }
    let _ = c.close().await;
    out
}

/// Checks records read back against the committed rows (key -> values in
/// commit order per key, which is insert order: each key has one writer,
/// whose transactions follow each other). Returns a description of what is
/// wrong, if anything.
fn judge(
    records: &[(i32, String, String)],
    committed: &BTreeMap<String, Vec<String>>,
) -> Result<(), String> {
    let expected: usize = committed.values().map(Vec::len).sum();
    let mut seen = HashSet::new();
    let mut per_key: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    let mut key_partition: BTreeMap<&str, i32> = BTreeMap::new();
    let mut duplicates = 0;
    for (p, k, v) in records {
        if !seen.insert(v.as_str()) {
            duplicates += 1;
        }
        if *key_partition.entry(k).or_insert(*p) != *p {
            return Err(format!("key {k} in two partitions"));
        }
        per_key.entry(k).or_default().push(v);
    }
    if duplicates > 0 {
        return Err(format!(
            "{duplicates} duplicates among {} records",
            records.len()
        ));
    }
    for (k, values) in committed {
        let got = per_key.remove(k.as_str()).unwrap_or_default();
        if got.iter().copied().ne(values.iter().map(String::as_str)) {
            let missing = values.iter().filter(|v| !got.contains(&v.as_str())).count();
            return Err(format!(
                "key {k}: {} records, {missing} missing, expected {} in insert order; first got {:?}, expected {:?}",
                got.len(),
                values.len(),
                &got[..got.len().min(5)],
                &values[..values.len().min(5)]
            ));
        }
    }
    if let Some((k, v)) = per_key.into_iter().next() {
        return Err(format!(
            "records of a key never committed (a rolled-back row?): {k} {v:?}"
        ));
    }
    if records.len() != expected {
        return Err(format!("{} records, expected {expected}", records.len()));
    }
    Ok(())
}

/// One writer: transactions of 1-4 rows over its own keys, an overlap with
/// the other writers (a random pause inside the transaction), one in ten
/// rolled back. `slow`: now and then keeps a transaction open 1.2 s (its id
/// is taken early, its rows are visible late). Returns the committed values
/// per key, in insert order.
async fn writer(
    postgres: String,
    outbox: Outbox,
    topic: String,
    w: usize,
    rows: usize,
    slow: bool,
    rng_seed: u64,
) -> BTreeMap<String, Vec<String>> {
    let mut client = connect(&postgres).await;
    let mut rng = Rng::from_seed(rng_seed);
    let mut committed: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut done = 0;
    let mut txns = 0u64;
    while done < rows {
        txns += 1;
        let tx = client.transaction().await.expect("begin");
        let mut pending: Vec<(String, String)> = Vec::new();
        for _ in 0..1 + rng.below(4) {
            let key = format!("w{w}-k{}", rng.below(3));
            let seq = committed.get(&key).map_or(0, Vec::len)
                + pending.iter().filter(|(k, _)| *k == key).count();
            let value = format!("{key}:{seq}");
            outbox
                .insert(&tx, &topic, Some(key.as_bytes()), Some(value.as_bytes()))
                .await
                .expect("insert");
            pending.push((key, value));
        }
        let pause = if slow && txns.is_multiple_of(50) {
            1200
        } else {
            rng.below(30)
        };
        tokio::time::sleep(Duration::from_millis(pause)).await;
        if rng.below(10) == 0 {
            tx.rollback().await.expect("rollback");
            continue;
        }
        tx.commit().await.expect("commit");
        done += pending.len();
        for (k, v) in pending {
            committed.entry(k).or_default().push(v);
        }
    }
    committed
}

struct RelayArgs {
    bootstrap: String,
    postgres: String,
    relay_id: String,
    progress: String,
}

impl RelayArgs {
    fn start(&self, env: &[(&str, String)]) -> ReportingChild {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_outbox_relay"));
        cmd.args([
            &self.bootstrap,
            &self.postgres,
            "outbox",
            &self.relay_id,
            &self.progress,
            "100",
        ]);
        for (k, v) in env {
            cmd.env(k, v);
        }
        ReportingChild::start("outbox_relay", cmd).unwrap_or_else(|e| panic!("{e}"))
    }
}

/// Ends a relay before its replacement starts: 1 if it had already killed
/// itself (it must never exit otherwise), after `kill -9` and keeping its
/// lines.
fn replace_relay(relay: &mut ReportingChild, history: &mut Vec<String>) -> usize {
    let mut ended_itself = 0;
    if let Some(status) = relay.exit_status() {
        assert!(
            relay.was_killed(),
            "the relay exited on its own: {status:?}"
        );
        ended_itself = 1;
    }
    relay.kill9();
    history.extend(relay.lines());
    ended_itself
}

fn relay_killed_repeatedly(tv: TransactionVersion) {
    let rows = env_or("EXACTLY_OUTBOX_ROWS", 4_000) as usize;
    let faults = env_or("EXACTLY_OUTBOX_FAULTS", 6) as usize;
    let writers = 4;
    let rt = runtime();
    let broker = Broker::shared(tv).unwrap_or_else(|e| panic!("{e}"));
    let pg = Postgres::shared().unwrap_or_else(|e| panic!("{e}"));
    let s = setup(broker, pg, &rt, "outbox", PARTITIONS);
    let args = RelayArgs {
        bootstrap: broker.bootstrap(),
        postgres: s.postgres.clone(),
        relay_id: unique_topic("relay"),
        progress: s.progress.clone(),
    };
    let t = Instant::now();
    let writing = {
        let (postgres, outbox, topic) = (s.postgres.clone(), s.outbox.clone(), s.topic.clone());
        std::thread::spawn(move || {
            let rt = runtime();
            rt.block_on(async move {
                let tasks: Vec<_> = (0..writers)
                    .map(|w| {
                        tokio::spawn(writer(
                            postgres.clone(),
                            outbox.clone(),
                            topic.clone(),
                            w,
                            rows / writers,
                            w == 0,
                            100 + w as u64,
                        ))
                    })
                    .collect();
                let mut all = BTreeMap::new();
                for t in tasks {
                    all.extend(t.await.expect("writer"));
                }
                all
            })
        })
    };

    let mut history = Vec::new();
    let mut relay = args.start(&[]);
    let mut rng = Rng::from_seed(tv.level() as u64 * 31 + 7);
    let mut self_kills = 0;
    let mut restarts = 0;
    for f in 0..faults {
        std::thread::sleep(Duration::from_millis(700 + rng.below(1300)));
        self_kills += replace_relay(&mut relay, &mut history);
        let env = if f % 2 == 1 {
            vec![(
                "EXACTLY_CRASH_AFTER_COMMITS",
                (1 + rng.below(3)).to_string(),
            )]
        } else {
            vec![]
        };
        println!("{tv:?} fault {f}: kill -9 the relay, restart with {env:?}");
        relay = args.start(&env);
        restarts += 1;
    }
    let committed = writing.join().expect("writers");
    let expected: usize = committed.values().map(Vec::len).sum();
    println!(
        "{tv:?}: writers committed {expected} rows in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    // A relay started to kill itself may still be waiting for its k-th
    // commit: replace it by a plain one (one more kill -9) for the tail.
    self_kills += replace_relay(&mut relay, &mut history);
    relay = args.start(&[]);
    restarts += 1;
    let ours = rt.block_on(read_all(
        &broker.bootstrap(),
        &s.topic,
        PARTITIONS,
        expected,
        Duration::from_secs(120),
    ));
    relay.signal(Signal::Term);
    let status = relay.wait_exit(Duration::from_secs(30));
    assert!(
        status.is_some_and(|s| s.success()),
        "the relay did not stop gracefully: {status:?}"
    );
    history.extend(relay.lines());
    let commits = history
        .iter()
        .filter(|l| l.starts_with("committed"))
        .count();
    let ids: HashSet<i64> = ours.iter().map(|r| r.4).collect();
    println!(
        "{tv:?}: outbox relay: {expected} rows, {restarts} restarts ({self_kills} right after a commit), \
         {commits} Kafka commits reported, ours read {} records with {} distinct row ids, {:.1} s",
        ours.len(),
        ids.len(),
        t.elapsed().as_secs_f64()
    );
    let plain: Vec<(i32, String, String)> = ours
        .iter()
        .map(|(p, _, k, v, _)| (*p, k.clone(), v.clone()))
        .collect();
    let verdict = judge(&plain, &committed);
    let java = broker
        .java()
        .verifiable_consumer(
            &s.topic,
            &unique_topic("outbox-judge"),
            expected,
            &[("isolation.level", "read_committed")],
            Duration::from_secs(180),
        )
        .unwrap_or_else(|e| panic!("{tv:?}: VerifiableConsumer: {e}"));
    let java: Vec<(i32, String, String)> = java
        .into_iter()
        .map(|r| {
            (
                r.partition,
                r.key.unwrap_or_default(),
                r.value.unwrap_or_default(),
            )
        })
        .collect();
    // The Java consumer interleaves partitions; per partition it reads in
    // offset order, which is all the per-key order needs.
    let java_verdict = judge(&java, &committed);
    if verdict.is_err() || java_verdict.is_err() {
        diagnose(broker, &rt, &s, &args.relay_id, &ids);
        let mut seen: BTreeMap<&str, (i32, i64)> = BTreeMap::new();
        for (p, o, _, v, id) in &ours {
            if let Some(first) = seen.insert(v.as_str(), (*p, *o)) {
                println!("duplicate {v} (row {id}): at {first:?} and {:?}", (p, o));
            }
        }
        println!("the relays said:\n{}", history.join("\n"));
        // Each commit's rows, as the outbox has them now.
        rt.block_on(async {
            let c = connect(&s.postgres).await;
            let mut prev: Option<(u64, String, i64)> = None;
            for l in history.iter().filter(|l| l.starts_with("committed")) {
                let f: Vec<&str> = l.split_whitespace().collect();
                let (total, txid, id): (u64, String, i64) =
                    (f[1].parse().unwrap_or(0), f[3].to_owned(), f[4].parse().unwrap_or(0));
                if let Some((pt, ptx, pid)) = prev.take().filter(|(pt, ..)| *pt < total) {
                    let n: i64 = c
                        .query_one(
                            "SELECT count(*) FROM outbox WHERE (txid, id) > ($1::text::xid8, $2) \
                             AND (txid, id) <= ($3::text::xid8, $4)",
                            &[&ptx, &pid, &txid, &id],
                        )
                        .await
                        .expect("count")
                        .get(0);
                    if n as u64 != total - pt {
                        println!("commit ({ptx},{pid}) -> ({txid},{id}): relay published {}, outbox has {n}", total - pt);
                    }
                }
                prev = Some((total, txid, id));
            }
        });
        panic!("{tv:?}: ours: {verdict:?}; Java VerifiableConsumer: {java_verdict:?}");
    }
    assert_eq!(ids.len(), expected, "{tv:?}: distinct outbox row ids");
    println!(
        "{tv:?}: Java VerifiableConsumer read {} records, exactly once, in order per key",
        java.len()
    );
    if faults >= 4 {
        assert!(
            self_kills >= 1,
            "{tv:?}: the relay never killed itself right after a commit"
        );
    }
}

/// What the broker and the outbox say when a run fails: the partitions'
/// last stable offsets against their high watermarks (a transaction left
/// open holds read_committed readers back), the relay's transaction, and
/// the outbox rows that did not come out.
fn diagnose(
    broker: &Broker,
    rt: &tokio::runtime::Runtime,
    s: &Setup,
    relay_id: &str,
    ids: &HashSet<i64>,
) {
    rt.block_on(async {
        let tps: Vec<TopicPartition> = (0..PARTITIONS)
            .map(|p| TopicPartition::new(&s.topic, p))
            .collect();
        for level in ["read_committed", "read_uncommitted"] {
            let mut c = Consumer::from_properties([
                ("bootstrap.servers", broker.bootstrap().as_str()),
                ("isolation.level", level),
            ])
            .await
            .expect("consumer");
            println!("end offsets {level}: {:?}", c.end_offsets(&tps).await);
        }
        let uncommitted = {
            let mut c = Consumer::from_properties([
                ("bootstrap.servers", broker.bootstrap().as_str()),
                ("isolation.level", "read_uncommitted"),
                ("auto.offset.reset", "earliest"),
            ])
            .await
            .expect("consumer");
            c.assign(&tps).expect("assign");
            let mut seen: Vec<(i32, i64, i64)> = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Polled::Records(r)) = c.poll(Duration::from_millis(200)).await {
                    for r in r.iter() {
                        let id = outbox_id(r);
                        seen.push((r.partition(), r.offset(), id));
                    }
                }
            }
            seen
        };
        let client = connect(&s.postgres).await;
        let rows = client
            .query("SELECT id, txid::text FROM outbox ORDER BY txid, id", &[])
            .await
            .expect("rows");
        let missing: Vec<(i64, String)> = rows
            .iter()
            .map(|r| (r.get::<_, i64>(0), r.get::<_, String>(1)))
            .filter(|(id, _)| !ids.contains(id))
            .collect();
        println!(
            "{} outbox rows not read back; first: {:?}",
            missing.len(),
            &missing[..missing.len().min(20)]
        );
        let in_log: Vec<&(i32, i64, i64)> = uncommitted
            .iter()
            .filter(|(_, _, id)| missing.iter().any(|(m, _)| m == id))
            .collect();
        println!(
            "read_uncommitted: {} records; {} of the missing rows are in the log: first {:?}",
            uncommitted.len(),
            in_log.len(),
            &in_log[..in_log.len().min(10)]
        );
    });
    for args in [
        vec!["describe", "--transactional-id", relay_id],
        vec!["find-hanging", "--broker-id", "1"],
    ] {
        match broker.java().transactions_command(&args) {
            Ok(run) => println!(
                "TransactionsCommand {args:?}:\n{}\n{}",
                run.stdout.join("\n"),
                run.stderr_tail
            ),
            Err(e) => println!("TransactionsCommand {args:?} failed: {e}"),
        }
    }
}

#[test]
fn outbox_relay_exactly_once_in_order_through_kills_tv2() {
    relay_killed_repeatedly(TransactionVersion::V2);
}

#[test]
fn outbox_relay_exactly_once_in_order_through_kills_tv1() {
    relay_killed_repeatedly(TransactionVersion::V1);
}

/// The trap of ids taken at insert but visible at commit, set up on
/// purpose: transaction A inserts (lower id) and stays open while B inserts
/// (higher id) and commits. A relay that tracks the highest id published
/// would publish B's row and never A's. Ours waits for A, then publishes
/// both, A's first (same key: insert order).
#[test]
fn outbox_relay_publishes_a_row_committed_after_a_higher_id() {
    let rt = runtime();
    for tv in TransactionVersion::ALL {
        let broker = Broker::shared(tv).unwrap_or_else(|e| panic!("{e}"));
        let pg = Postgres::shared().unwrap_or_else(|e| panic!("{e}"));
        let s = setup(broker, pg, &rt, "trap", 1);
        let mut cfg = RelayConfig::new(
            &s.postgres,
            broker.bootstrap(),
            "outbox",
            unique_topic("trap-relay"),
        );
        cfg.progress_topic = s.progress.clone();
        cfg.poll_interval = Duration::from_millis(20);
        let relay = OutboxRelay::new(cfg).expect("relay");
        let shutdown = relay.shutdown_handle();
        rt.block_on(async {
            let running = tokio::spawn(relay.run(|_| {}));
            let mut a = connect(&s.postgres).await;
            let b = connect(&s.postgres).await;
            let tx_a = a.transaction().await.expect("begin A");
            let id_a = s
                .outbox
                .insert(&tx_a, &s.topic, Some(b"k"), Some(b"first"))
                .await
                .expect("A");
            let id_b = s
                .outbox
                .insert(&b, &s.topic, Some(b"k"), Some(b"second"))
                .await
                .expect("B");
            assert!(id_a < id_b);
            // Time for a relay to (wrongly) publish B: it polls every 20 ms.
            tokio::time::sleep(Duration::from_millis(1500)).await;
            let early = read_all(&broker.bootstrap(), &s.topic, 1, 0, Duration::from_secs(4)).await;
            assert!(
                early.is_empty(),
                "{tv:?}: published before A committed: {early:?}"
            );
            tx_a.commit().await.expect("commit A");
            let got = read_all(&broker.bootstrap(), &s.topic, 1, 2, Duration::from_secs(60)).await;
            let values: Vec<(&str, i64)> = got.iter().map(|r| (r.3.as_str(), r.4)).collect();
            assert_eq!(values, [("first", id_a), ("second", id_b)], "{tv:?}");
            shutdown.shutdown();
            let stats = running.await.expect("relay task").expect("relay");
            assert_eq!(stats.rows_published, 2, "{tv:?}: {stats:?}");
        });
    }
}

/// Transaction ids are ordered as numbers, not as text: rows whose ids
/// cross a power of ten (`999` -> `1000`) in one batch still go out in
/// insert order. (The relay once sorted by its text-cast output column of
/// the same name, publishing `1000` before `999`, and then skipped rows.)
#[test]
fn outbox_relay_orders_transaction_ids_as_numbers() {
    let rt = runtime();
    let tv = TransactionVersion::V2;
    let broker = Broker::shared(tv).unwrap_or_else(|e| panic!("{e}"));
    let pg = Postgres::shared().unwrap_or_else(|e| panic!("{e}"));
    let s = setup(broker, pg, &rt, "xidorder", 1);
    rt.block_on(async {
        let c = connect(&s.postgres).await;
        let current = |row: tokio_postgres::Row| -> u64 {
            row.get::<_, String>(0).parse().expect("xid8 as text")
        };
        let now = current(
            c.query_one("SELECT pg_current_xact_id()::text", &[])
                .await
                .expect("xid"),
        );
        // The next power of ten at least 50 ids away.
        let mut boundary = 10u64;
        while boundary < now + 50 {
            boundary *= 10;
        }
        // Burn ids up to just before it fast: each subtransaction that
        // writes takes an id of its own.
        c.batch_execute(&format!(
            "CREATE TABLE burn (i int); DO $$ BEGIN FOR i IN 1..{} LOOP \
               BEGIN INSERT INTO burn VALUES (i); EXCEPTION WHEN others THEN NULL; END; \
             END LOOP; END $$",
            boundary - 10 - now
        ))
        .await
        .expect("burn transaction ids");
        let mut values = Vec::new();
        let mut next = current(
            c.query_one("SELECT pg_current_xact_id()::text", &[])
                .await
                .expect("xid"),
        );
        while next < boundary + 3 {
            if next + 3 >= boundary {
                // A row from each of the ids around the boundary.
                let v = format!("row-{next}");
                s.outbox
                    .insert(&c, &s.topic, Some(b"k"), Some(v.as_bytes()))
                    .await
                    .expect("insert");
                values.push(v);
            }
            // Each autocommit statement that asks for an id takes one.
            next = current(
                c.query_one("SELECT pg_current_xact_id()::text", &[])
                    .await
                    .expect("xid"),
            );
        }
        let mut cfg = RelayConfig::new(
            &s.postgres,
            broker.bootstrap(),
            "outbox",
            unique_topic("xid-relay"),
        );
        cfg.progress_topic = s.progress.clone();
        let relay = OutboxRelay::new(cfg).expect("relay");
        let shutdown = relay.shutdown_handle();
        let running = tokio::spawn(relay.run(|_| {}));
        let got = read_all(
            &broker.bootstrap(),
            &s.topic,
            1,
            values.len(),
            Duration::from_secs(60),
        )
        .await;
        shutdown.shutdown();
        running.await.expect("relay task").expect("relay");
        let got: Vec<&str> = got.iter().map(|r| r.3.as_str()).collect();
        assert_eq!(got, values.iter().map(String::as_str).collect::<Vec<_>>());
    });
}
