//! The processing session (`exactly::eos`) on the real broker, in process:
//! a handler that fails aborts, rewinds, rolls back and retries without
//! loss; a handler that panics leaves no transaction open and the session
//! reports it; input topics by pattern, including one created while the
//! session runs. Transaction versions 2 and 1 (`EXACTLY_EOS_TV` picks one).

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use exactly::eos::{Context, Handler, HandlerError, TransactionEnd};
use exactly::{
    ConsumerRecord, Producer, ProducerRecord, Session, SessionError, SessionStats, ShutdownHandle,
};
use exactly_protocol_tests::judge::{self, assert_no_hanging, transaction_state};
use exactly_protocol_tests::{unique_topic, Broker, TransactionVersion};

fn versions() -> Vec<TransactionVersion> {
    match std::env::var("EXACTLY_EOS_TV").as_deref() {
        Ok("1") => vec![TransactionVersion::V1],
        Ok("2") => vec![TransactionVersion::V2],
        _ => TransactionVersion::ALL.to_vec(),
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().expect("tokio runtime")
}

/// A session copying `input` (list or pattern) with `txn_id`, stopping when
/// idle for `idle`.
async fn session(
    broker: &Broker,
    input: Input<'_>,
    group: &str,
    txn_id: &str,
    idle: Duration,
) -> Session {
    let mut b = Session::builder();
    b.bootstrap_servers(&broker.bootstrap())
        .expect("bootstrap")
        .set("auto.offset.reset", "earliest")
        .expect("reset");
    match input {
        Input::Topic(t) => b.input_topics(&[t]),
        Input::Pattern(p) => b
            .input_pattern(p)
            .expect("pattern")
            .set("input.pattern.refresh.ms", "500")
            .expect("refresh"),
    };
    b.group_id(group)
        .transactional_id(txn_id)
        .max_records_per_transaction(200)
        .stop_when_idle(idle)
        .handler_retry_backoff(Duration::from_millis(10));
    b.build().await.expect("session")
}

enum Input<'a> {
    Topic(&'a str),
    Pattern(&'a str),
}

/// Sends each record's value to `output`.
async fn copy_records(
    ctx: &mut Context<'_>,
    output: &str,
    records: &[ConsumerRecord],
) -> Result<(), HandlerError> {
    for r in records {
        let mut out = ProducerRecord::new(output);
        if let Some(v) = r.value() {
            out = out.with_value(v);
        }
        ctx.send(out).await?;
    }
    Ok(())
}

/// Copies, failing once on each value `v % 400 == 17` (after sending it),
/// and keeps an in-memory tally of what it processed since the last commit
/// that only a correct rollback keeps right.
struct FailsOnce {
    output: String,
    failed: HashSet<u64>,
    /// Input records processed since the last commit (the "state").
    tally: u64,
    rollbacks: Arc<AtomicU64>,
    mismatches: Arc<AtomicU64>,
    stop_after: u64,
    stop: ShutdownHandle,
}

impl Handler for FailsOnce {
    async fn process(
        &mut self,
        ctx: &mut Context<'_>,
        records: &[ConsumerRecord],
    ) -> Result<(), HandlerError> {
        copy_records(ctx, &self.output, records).await?;
        self.tally += records.len() as u64;
        for r in records {
            let v: u64 = std::str::from_utf8(r.value().ok_or("no value")?)?.parse()?;
            if v % 400 == 17 && self.failed.insert(v) {
                return Err(format!("poison {v} (fails once)").into());
            }
        }
        Ok(())
    }

    fn rollback(&mut self, partitions: &[exactly::TopicPartition]) {
        assert!(
            !partitions.is_empty(),
            "a rollback names the input partitions"
        );
        self.rollbacks.fetch_add(1, Ordering::SeqCst);
        self.tally = 0;
    }

    fn transaction_ended(&mut self, end: &TransactionEnd, stats: &SessionStats) {
        if let TransactionEnd::Committed { records_in, .. } = end {
            if *records_in != self.tally {
                self.mismatches.fetch_add(1, Ordering::SeqCst);
            }
            self.tally = 0;
        }
        if stats.records_committed >= self.stop_after {
            self.stop.shutdown();
        }
    }
}

#[test]
fn handler_error_aborts_rewinds_rolls_back_and_retries_without_loss() {
    let rt = runtime();
    let n = 4_000u64;
    for tv in versions() {
        let broker = Broker::shared(tv).unwrap_or_else(|e| panic!("{e}"));
        let (input, output) = judge::numbered_copy_topics(broker, &rt, "herr", n);
        let rollbacks = Arc::new(AtomicU64::new(0));
        let mismatches = Arc::new(AtomicU64::new(0));
        let stats = rt.block_on(async {
            let s = session(
                broker,
                Input::Topic(&input),
                &unique_topic("herr-group"),
                &unique_topic("herr-txn"),
                Duration::from_secs(30),
            )
            .await;
            let h = FailsOnce {
                output: output.clone(),
                failed: HashSet::new(),
                tally: 0,
                rollbacks: rollbacks.clone(),
                mismatches: mismatches.clone(),
                stop_after: n,
                stop: s.shutdown_handle(),
            };
            s.run(h).await.expect("session")
        });
        let poisons = (0..n).filter(|v| v % 400 == 17).count() as u64;
        println!("handler errors {tv:?}: {poisons} poison values, {stats:?}");
        assert_eq!(stats.aborted_by_handler, poisons);
        assert_eq!(rollbacks.load(Ordering::SeqCst), poisons);
        assert_eq!(
            mismatches.load(Ordering::SeqCst),
            0,
            "rollback kept the tally"
        );
        assert_eq!(stats.records_committed, n);
        assert!(stats.records_in > n, "aborted input was processed again");
        judge::exactly_once(
            broker,
            &rt,
            &output,
            3,
            n,
            &format!("handler errors {tv:?}"),
        );
    }
}

/// Copies, and panics on `panic_at` after sending it.
struct Panics {
    output: String,
    panic_at: u64,
}

impl Handler for Panics {
    async fn process(
        &mut self,
        ctx: &mut Context<'_>,
        records: &[ConsumerRecord],
    ) -> Result<(), HandlerError> {
        for r in records {
            copy_records(ctx, &self.output, std::slice::from_ref(r)).await?;
            let v: u64 = std::str::from_utf8(r.value().ok_or("no value")?)?.parse()?;
            if v == self.panic_at {
                assert!(ctx.records_out() > 0);
                // Let the batch go out (linger.ms), so the broker knows the
                // transaction before the panic.
                tokio::time::sleep(Duration::from_millis(300)).await;
                panic!("handler bug at {v}");
            }
        }
        Ok(())
    }
}

/// Plain copy, stopping after `n` committed records.
struct Copy {
    output: String,
    n: u64,
    stop: ShutdownHandle,
}

impl Handler for Copy {
    async fn process(
        &mut self,
        ctx: &mut Context<'_>,
        records: &[ConsumerRecord],
    ) -> Result<(), HandlerError> {
        copy_records(ctx, &self.output, records).await
    }

    fn transaction_ended(&mut self, _: &TransactionEnd, stats: &SessionStats) {
        if stats.records_committed >= self.n {
            self.stop.shutdown();
        }
    }
}

#[test]
fn handler_panic_aborts_leaves_nothing_hanging_and_reports() {
    let rt = runtime();
    let n = 3_000u64;
    for tv in versions() {
        let broker = Broker::shared(tv).unwrap_or_else(|e| panic!("{e}"));
        let (input, output) = judge::numbered_copy_topics(broker, &rt, "hpanic", n);
        let group = unique_topic("hpanic-group");
        let txn_id = unique_topic("hpanic-txn");
        let err = rt.block_on(async {
            let s = session(
                broker,
                Input::Topic(&input),
                &group,
                &txn_id,
                Duration::from_secs(30),
            )
            .await;
            let h = Panics {
                output: output.clone(),
                panic_at: 1_500,
            };
            s.run(h).await.expect_err("the handler panics")
        });
        println!("handler panic {tv:?}: {err}");
        assert!(
            matches!(&err, SessionError::HandlerPanicked { message } if message == "handler bug at 1500"),
            "{err:?}"
        );
        let (state, _) = transaction_state(broker, &txn_id).expect("describe");
        // Aborted (under transaction version 1 the coordinator can show
        // the epoch bump that follows as Empty): in no case still open.
        assert!(
            matches!(state.as_str(), "CompleteAbort" | "Empty"),
            "{tv:?}: the panicking transaction is {state}"
        );
        assert_no_hanging(broker, &[&output]);
        // A fresh instance (same id and group) finishes, stopping once
        // idle: nothing of the aborted transaction is visible, nothing was
        // lost.
        let stats = rt.block_on(async {
            let s = session(
                broker,
                Input::Topic(&input),
                &group,
                &txn_id,
                Duration::from_secs(3),
            )
            .await;
            let h = Copy {
                output: output.clone(),
                n: u64::MAX,
                stop: s.shutdown_handle(),
            };
            s.run(h).await.expect("second session")
        });
        assert!(
            stats.records_committed < n,
            "{stats:?}: the first run committed some"
        );
        judge::exactly_once(broker, &rt, &output, 3, n, &format!("handler panic {tv:?}"));
    }
}

/// Writes the values `from..to` (as decimal strings) to `topic`.
async fn produce_range(bootstrap: &str, topic: &str, from: u64, to: u64) {
    let p = Producer::from_properties([("bootstrap.servers", bootstrap), ("linger.ms", "5")])
        .await
        .expect("producer");
    for v in from..to {
        let s = v.to_string();
        p.send(ProducerRecord::new(topic).with_value(s.as_bytes()))
            .await
            .expect("send");
    }
    p.flush().await.expect("flush");
    p.close(Duration::from_secs(10)).await.expect("close");
}

#[test]
fn input_pattern_follows_topics_created_while_running() {
    let rt = runtime();
    let broker = Broker::shared(TransactionVersion::V2).unwrap_or_else(|e| panic!("{e}"));
    let prefix = unique_topic("pat");
    let output = unique_topic("pat-out");
    broker.create_topic(&output, 3).expect("output");
    let (t1, t2, late) = (
        format!("{prefix}-one"),
        format!("{prefix}-two"),
        format!("{prefix}-late"),
    );
    let other = unique_topic("nopat");
    for t in [&t1, &t2, &other] {
        broker.create_topic(t, 2).expect("input topic");
    }
    let bootstrap = broker.bootstrap();
    rt.block_on(async {
        produce_range(&bootstrap, &t1, 0, 1_000).await;
        produce_range(&bootstrap, &t2, 1_000, 2_000).await;
        // Not matched: must not be copied (values would be foreign).
        produce_range(&bootstrap, &other, 9_000, 9_100).await;
    });
    let n = 3_000;
    let stats = rt.block_on(async {
        let s = session(
            broker,
            Input::Pattern(&format!("{}-.*", regex_escape(&prefix))),
            &unique_topic("pat-group"),
            &unique_topic("pat-txn"),
            Duration::from_secs(30),
        )
        .await;
        let metrics = s.metrics();
        let h = Copy {
            output: output.clone(),
            n,
            stop: s.shutdown_handle(),
        };
        let run = tokio::spawn(s.run(h));
        // Once the first topics are copied, a new matching topic appears.
        while metrics.snapshot().records_committed < 2_000 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        broker.create_topic(&late, 3).expect("late topic");
        produce_range(&bootstrap, &late, 2_000, 3_000).await;
        run.await.expect("join").expect("session")
    });
    println!("pattern: {stats:?}");
    assert!(stats.rebalances >= 2, "the new topic made the group rejoin");
    judge::exactly_once(broker, &rt, &output, 3, n, "pattern");
}

/// A topic name as a literal inside a pattern (names hold only
/// `[a-zA-Z0-9._-]`; `.` is the one regex character among them).
fn regex_escape(s: &str) -> String {
    s.replace('.', "\\.")
}

/// Copies, but hangs forever on `hang_at`.
struct Hangs {
    output: String,
    hang_at: u64,
}

impl Handler for Hangs {
    async fn process(
        &mut self,
        ctx: &mut Context<'_>,
        records: &[ConsumerRecord],
    ) -> Result<(), HandlerError> {
        for r in records {
            copy_records(ctx, &self.output, std::slice::from_ref(r)).await?;
            let v: u64 = std::str::from_utf8(r.value().ok_or("no value")?)?.parse()?;
            if v == self.hang_at {
                tokio::time::sleep(Duration::from_secs(3_600)).await;
            }
        }
        Ok(())
    }
}

/// A graceful stop is bounded even when the handler never returns: past
/// `shutdown.timeout.ms` the call is dropped, the open transaction aborted,
/// and the session closes; nothing is left open.
#[test]
fn graceful_stop_is_bounded_when_the_handler_hangs() {
    let rt = runtime();
    let n = 2_000u64;
    let broker = Broker::shared(TransactionVersion::V2).unwrap_or_else(|e| panic!("{e}"));
    let (input, output) = judge::numbered_copy_topics(broker, &rt, "hang", n);
    let txn_id = unique_topic("hang-txn");
    let (stats, took) = rt.block_on(async {
        let mut b = Session::builder();
        b.bootstrap_servers(&broker.bootstrap())
            .expect("bootstrap")
            .set("auto.offset.reset", "earliest")
            .expect("reset");
        b.group_id(unique_topic("hang-group"))
            .transactional_id(&txn_id)
            .input_topics(&[&input])
            .max_records_per_transaction(100)
            .shutdown_timeout(Duration::from_secs(2));
        let s = b.build().await.expect("session");
        let (metrics, stop) = (s.metrics(), s.shutdown_handle());
        let run = tokio::spawn(s.run(Hangs {
            output: output.clone(),
            hang_at: 1_000,
        }));
        // Wait until the handler is stuck: records flow, then stop moving.
        let mut last = u64::MAX;
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let s = metrics.snapshot();
            if s.records_committed > 0 && s.records_in == last {
                break;
            }
            last = s.records_in;
        }
        let t = std::time::Instant::now();
        stop.shutdown();
        let stats = run
            .await
            .expect("join")
            .expect("a bounded stop is not an error");
        (stats, t.elapsed())
    });
    println!("hanging handler: stopped in {took:?}, {stats:?}");
    assert!(took >= Duration::from_secs(2), "the handler had its time");
    assert!(
        took < Duration::from_secs(10),
        "stopped within the bound: {took:?}"
    );
    assert!(
        stats.transactions_aborted >= 1,
        "the stuck transaction was aborted"
    );
    let (state, _) = transaction_state(broker, &txn_id).expect("describe");
    assert!(
        matches!(state.as_str(), "CompleteAbort" | "Empty"),
        "the stuck transaction is {state}"
    );
    assert_no_hanging(broker, &[&output]);
}

/// `idle.stop.ms` does not count the group join: on a broker whose first
/// join is held back longer than the idle time
/// (`group.initial.rebalance.delay.ms`, 3 s by default on a real broker,
/// 0 in the harness), a session with input waiting copies all of it
/// instead of stopping before it held a partition (the session stopped
/// with nothing copied before the fix).
#[test]
fn idle_stop_does_not_count_the_group_join() {
    let rt = runtime();
    let broker = Broker::start(
        exactly_protocol_tests::BrokerConfig::with_transaction_version(TransactionVersion::V2)
            .property("group.initial.rebalance.delay.ms", "3000"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let (input, output) = (unique_topic("idle-in"), unique_topic("idle-out"));
    broker.create_topic(&input, 2).expect("input");
    broker.create_topic(&output, 3).expect("output");
    let n = 500;
    rt.block_on(produce_range(&broker.bootstrap(), &input, 0, n));
    let stats = rt.block_on(async {
        let s = session(
            &broker,
            Input::Topic(&input),
            &unique_topic("idle-group"),
            &unique_topic("idle-txn"),
            Duration::from_millis(1_500),
        )
        .await;
        let h = Copy {
            output: output.clone(),
            n: u64::MAX,
            stop: s.shutdown_handle(),
        };
        s.run(h).await.expect("session")
    });
    println!("idle after a slow join: {stats:?}");
    assert_eq!(stats.records_committed, n, "the session stopped early");
    judge::exactly_once(&broker, &rt, &output, 3, n, "idle after a slow join");
}
