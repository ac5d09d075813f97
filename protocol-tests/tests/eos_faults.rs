//! Exactly-once copies under broker faults (RELIABILITY.md T4 and T8), each
//! on a private broker so the faults touch no other test.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use exactly::{copy, CopyConfig, Producer, ProducerRecord, Transformed};
use exactly_protocol_tests::{judge, unique_topic, Broker, BrokerConfig, TransactionVersion};

fn runtime() -> tokio::runtime::Runtime {
    // `RUST_LOG=...` shows the clients' tracing (debugging a fault run).
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    tokio::runtime::Runtime::new().expect("tokio runtime")
}

/// The transaction versions to run: both, or the one named by
/// `EXACTLY_EOS_TV` (`1` or `2`) when chasing a failure.
fn versions() -> Vec<TransactionVersion> {
    match std::env::var("EXACTLY_EOS_TV").as_deref() {
        Ok("1") => vec![TransactionVersion::V1],
        Ok("2") => vec![TransactionVersion::V2],
        _ => TransactionVersion::ALL.to_vec(),
    }
}

/// What the broker knows of the copier's transaction (TransactionsCommand
/// `describe`, and `list`), printed when a run fails.
fn diagnose(broker: &Broker, txn_id: &str) {
    for line in marker_drops(broker) {
        println!("broker dropped transaction markers: {line}");
    }
    for args in [vec!["describe", "--transactional-id", txn_id], vec!["list"]] {
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

/// Lines of the brokers' logs where the transaction coordinator dropped the
/// markers of a transaction because a partition had no leader (Kafka 4.3's
/// metadata cache answers "unknown" for a leaderless partition, which the
/// marker sender takes for a deleted topic: KAFKA-20734). A single node is
/// leaderless for a moment on every restart, so a transaction whose markers
/// were pending at the crash can be completed without them.
fn marker_drops(broker: &Broker) -> Vec<String> {
    broker
        .node_ids()
        .into_iter()
        .filter_map(|id| {
            let log = broker.data_dir(id).parent()?.join("broker.log");
            std::fs::read_to_string(log).ok()
        })
        .flat_map(|text| {
            text.lines()
                .filter(|l| l.contains("likely deleted already"))
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Waits until `progress` reaches `target` (or panics after `limit`, or
/// when the copier thread ended early).
fn wait_progress(
    progress: &AtomicU64,
    target: u64,
    limit: Duration,
    what: &str,
    copier: &std::thread::JoinHandle<Result<exactly::CopyStats, exactly::CopyError>>,
) -> Duration {
    let t = Instant::now();
    while progress.load(Ordering::Relaxed) < target {
        assert!(!copier.is_finished(), "{what}: the copier stopped early");
        assert!(
            t.elapsed() < limit,
            "{what}: progress stuck at {}",
            progress.load(Ordering::Relaxed)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    t.elapsed()
}

/// T4: a transactional copy while a broker is killed -9 twice and SIGTERMed
/// once (restarted each time): no duplicate, no loss, nothing aborted
/// visible, progress resumes after each fault. Each fault hits the node that
/// is the transaction coordinator at that moment.
///
/// On three nodes (replication factor 3, `min.insync.replicas=2`), not one:
/// a Kafka 4.3 coordinator drops the markers of a partition that has no
/// leader and completes the transaction without them (KAFKA-20734: its
/// metadata cache answers "unknown" for a leaderless partition, which the
/// marker sender takes for a deleted topic), and a single node's partitions
/// are leaderless on every restart while it re-registers. A transaction
/// whose markers were pending at the crash then stays open in its
/// partitions, although the coordinator (and so the client) sees it
/// complete, until the producer id's next marker in each partition decides
/// it, whatever that marker says: its offsets block `require_stable`
/// OffsetFetch (the copy's rewind after an abort waited 60 s and failed),
/// and a later abort can undo a committed transaction's output. That is a
/// broker failure no client is told about; with replicas a partition keeps
/// a leader through one node's crash and every marker is written.
#[test]
fn t4_copy_survives_broker_kill9_twice_and_sigterm() {
    let rt = runtime();
    let n: u64 = std::env::var("EXACTLY_EOS_RECORDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .map_or(50_000, |r: u64| r / 2);
    for tv in versions() {
        let broker = Broker::start(BrokerConfig {
            nodes: 3,
            ..BrokerConfig::with_transaction_version(tv)
        })
        .expect("cluster");
        let (input, output) = judge::numbered_copy_topics(&broker, &rt, "t4", n);
        let progress = Arc::new(AtomicU64::new(0));
        let txn_id = unique_topic("t4-txn");
        let cfg = CopyConfig {
            records_per_transaction: 500,
            abort_fraction: 1.0 / 3.0,
            label: true,
            stop_after: Some(n),
            idle_timeout: Duration::from_secs(120),
            ..CopyConfig::new(
                broker.bootstrap(),
                &input,
                &output,
                unique_topic("t4-group"),
                &txn_id,
            )
        };
        // Every commit with its instant: recovery is measured from the
        // fault, since the cluster keeps serving while the node is down.
        let commits = Arc::new(Mutex::new(Vec::<(u64, Instant)>::new()));
        let (p, c) = (progress.clone(), commits.clone());
        let copier = std::thread::spawn(move || {
            runtime().block_on(copy(&cfg, Transformed::identity, |s| {
                if p.swap(s.committed_records, Ordering::Relaxed) != s.committed_records {
                    c.lock()
                        .expect("commit log")
                        .push((s.committed_records, Instant::now()));
                }
            }))
        });
        let t = Instant::now();
        let mut recoveries = Vec::new();
        for (i, fault) in ["kill -9", "kill -9", "SIGTERM"].iter().enumerate() {
            let at = n * (i as u64 + 1) / 4;
            if let Err(stuck) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                wait_progress(
                    &progress,
                    at,
                    Duration::from_secs(300),
                    "before fault",
                    &copier,
                )
            })) {
                diagnose(&broker, &txn_id);
                if copier.is_finished() {
                    panic!(
                        "{tv:?}: copier ended: {:?}",
                        copier.join().map(|r| r.map_err(|e| e.to_string()))
                    );
                }
                std::panic::resume_unwind(stuck);
            }
            let node = broker
                .leader_of("__transaction_state", 0)
                .expect("transaction coordinator");
            let before = progress.load(Ordering::Relaxed);
            let fault_at = Instant::now();
            match *fault {
                "SIGTERM" => broker.sigterm(node).expect("sigterm"),
                _ => broker.kill9(node).expect("kill -9"),
            }
            std::thread::sleep(Duration::from_secs(2));
            broker.restart(node).expect("restart");
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                wait_progress(
                    &progress,
                    (before + 1).min(n),
                    Duration::from_secs(120),
                    "after restart",
                    &copier,
                )
            })) {
                Ok(_) => {}
                Err(stuck) => {
                    diagnose(&broker, &txn_id);
                    if copier.is_finished() {
                        panic!(
                            "{tv:?}: copier ended after {fault}: {:?}",
                            copier.join().map(|r| r.map_err(|e| e.to_string()))
                        );
                    }
                    std::panic::resume_unwind(stuck)
                }
            };
            let next_commit = commits
                .lock()
                .expect("commit log")
                .iter()
                .find(|(records, at)| *records > before && *at >= fault_at)
                .map(|(_, at)| at.duration_since(fault_at));
            recoveries.push((format!("{fault} node {node}"), next_commit));
        }
        let stats = match copier.join().expect("copier thread") {
            Ok(stats) => stats,
            Err(e) => {
                diagnose(&broker, &txn_id);
                panic!("{tv:?}: copy failed after the faults: {e}");
            }
        };
        let longest_stall = commits
            .lock()
            .expect("commit log")
            .windows(2)
            .map(|w| w[1].1.duration_since(w[0].1))
            .max();
        println!(
            "T4 {tv:?}: {n} records, faults and time from each to the next commit \
             {recoveries:?}, longest time between commits {longest_stall:?}, {stats:?}, {:.1} s",
            t.elapsed().as_secs_f64()
        );
        for line in marker_drops(&broker) {
            println!("T4 {tv:?}: broker dropped transaction markers: {line}");
        }
        assert_eq!(stats.committed_records, n);
        judge::exactly_once(&broker, &rt, &output, 3, n, &format!("T4 {tv:?}"));
    }
}

/// T8: the coordinator is unavailable. The producer is created and
/// `init_transactions` called while the broker is down; the broker comes
/// back, and init completes without a fatal error. Then the broker restarts
/// during a transaction's commit, and the next transactions succeed.
///
/// Judged by value (issue 16 item 7): round `r` writes the numbers
/// `100 r .. 100 r + 100`; exactly the rounds whose commit the client
/// reported are visible, each value once, and our judge reads until the
/// topic is quiet (a round reported aborted but visible, or one committed
/// twice, would be seen after the expected count).
#[test]
fn t8_coordinator_unavailable_then_recovers() {
    for tv in TransactionVersion::ALL {
        let broker = Broker::start(BrokerConfig::with_transaction_version(tv)).expect("broker");
        let topic = unique_topic("t8");
        broker.create_topic(&topic, 1).expect("topic");
        broker.kill9(1).expect("kill -9");
        let bootstrap = broker.bootstrap();
        let txn_id = unique_topic("t8-txn");
        let t = Instant::now();
        let init = std::thread::spawn(move || {
            let rt = runtime();
            rt.block_on(async {
                let producer = Producer::from_properties([
                    ("bootstrap.servers", bootstrap.as_str()),
                    ("transactional.id", txn_id.as_str()),
                    ("max.block.ms", "120000"),
                ])
                .await?;
                producer.init_transactions().await?;
                Ok::<_, exactly::ProducerError>(producer)
            })
            .map(|p| (p, rt))
        });
        std::thread::sleep(Duration::from_secs(3));
        broker.restart(1).expect("restart");
        let (producer, prt) = init
            .join()
            .expect("init thread")
            .unwrap_or_else(|e| panic!("{tv:?}: init while the broker was down: {e}"));
        println!(
            "T8 {tv:?}: init completed {:.1} s after the client started",
            t.elapsed().as_secs_f64()
        );
        let mut committed = 0;
        let mut committed_rounds = Vec::new();
        for round in 0..3u64 {
            prt.block_on(async {
                producer.begin_transaction().await?;
                for i in 0..100 {
                    let v = (round * 100 + i).to_string();
                    producer
                        .send(ProducerRecord::new(&topic).with_value(v.as_bytes()))
                        .await?;
                }
                producer.flush().await?;
                Ok::<_, exactly::ProducerError>(())
            })
            .unwrap_or_else(|e| panic!("{tv:?}: round {round}: {e}"));
            if round == 1 {
                broker.kill9(1).expect("kill -9 before commit");
                std::thread::sleep(Duration::from_secs(1));
                broker.restart(1).expect("restart");
            }
            match prt.block_on(producer.commit_transaction()) {
                Ok(()) => {
                    committed += 100;
                    committed_rounds.push(round);
                }
                Err(e) if e.is_abortable() => {
                    prt.block_on(producer.abort_transaction()).expect("abort");
                }
                Err(e) => panic!("{tv:?}: round {round}: fatal after a broker restart: {e}"),
            }
        }
        assert!(committed >= 200, "{tv:?}: only {committed} committed");
        judge::exactly_once_selected(
            &broker,
            &prt,
            &topic,
            1,
            300,
            |v| committed_rounds.contains(&(v / 100)),
            &format!("T8 {tv:?} (committed rounds {committed_rounds:?})"),
        );
        prt.block_on(producer.close(Duration::from_secs(10)))
            .expect("close");
    }
}
