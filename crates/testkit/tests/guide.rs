//! The example of `docs/GUIDE-PROPERTY-TEST.md`: property-test an
//! exactly-once pipeline against the simulated broker.
//!
//! The pipeline keeps a running total per account: it reads payments
//! (key = account, value = amount) `read_committed`, and for each one writes
//! the account's new total to `totals`, in a transaction that also carries
//! the input offsets (KIP-98 transactions, KIP-447 offsets). A transaction
//! can fail (here: a seeded "downstream error"); the pipeline aborts it and
//! rewinds the consumer to the committed offsets.
//!
//! The property: for every account, the totals visible `read_committed`
//! are exactly the running sums of its payments, in order. Two bugs are
//! planted behind [`Bugs`]; the property finds each within a few cases, and
//! passes with both removed. The pipeline is written twice: a hand-written
//! loop over the real `Consumer` and `Producer`, and a `Session` handler.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use exactly_consumer::{Consumer, ConsumerRecord, IsolationLevel, OffsetReset};
use exactly_eos::{Context, Handler, HandlerError, Output, Session, SessionStats, TransactionEnd};
use exactly_producer::TopicPartition;
use exactly_producer::{Producer, ProducerConfig, ProducerRecord};
use exactly_testkit::cluster::{SimCluster, SimRecord};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

/// The planted bugs.
#[derive(Debug, Clone, Copy, Default)]
struct Bugs {
    /// Bug 1: the input offsets are committed with the consumer's plain
    /// commit, outside the transaction: an abort after it skips the input.
    offsets_outside_txn: bool,
    /// Bug 2: the totals are updated in place and not rolled back when the
    /// transaction aborts: the re-read input is counted twice.
    state_not_rolled_back: bool,
    /// Run the pipeline as an exactly-once `Session` handler instead of the
    /// hand-written loop (bug 1 cannot be written there: the session owns
    /// the offsets; bug 2 is a handler without `rollback`).
    session: bool,
}

/// One test case: the payments (account, amount) and which transactions
/// fail (by number, from 0; beyond the list none fails).
#[derive(Debug, Clone)]
struct Case {
    payments: Vec<(u8, u16)>,
    failures: Vec<bool>,
}

fn cases() -> impl Strategy<Value = Case> {
    (
        prop::collection::vec((0u8..4, 1u16..1000), 1..20),
        prop::collection::vec(prop::bool::weighted(0.3), 0..8),
    )
        .prop_map(|(payments, failures)| Case { payments, failures })
}

fn account(a: u8) -> String {
    format!("acct-{a}")
}

async fn write_payments(sim: &SimCluster, payments: &[(u8, u16)]) {
    let mut b = ProducerConfig::builder();
    b.bootstrap_servers("sim:9092").unwrap();
    b.net().dialer(sim.dialer());
    let p = Producer::new(b.build().unwrap()).await.unwrap();
    for (a, amount) in payments {
        let key = account(*a);
        p.send(
            ProducerRecord::new("payments")
                .with_key(key.as_bytes())
                .with_value(&amount.to_be_bytes()),
        )
        .await
        .unwrap();
    }
    p.close(Duration::from_secs(5)).await.unwrap();
}

/// The pipeline under test: a hand-written consume-transform-produce loop.
async fn run_pipeline(sim: &SimCluster, bugs: Bugs, failures: &[bool]) {
    let mut c = Consumer::builder();
    c.bootstrap_servers("sim:9092").unwrap();
    c.group_id("totals")
        .isolation_level(IsolationLevel::ReadCommitted)
        .auto_offset_reset(OffsetReset::Earliest)
        .enable_auto_commit(false)
        .max_poll_records(5)
        .fetch_max_wait(Duration::from_millis(50));
    c.net().dialer(sim.dialer());
    let mut consumer = c.build().await.unwrap();
    consumer.subscribe(&["payments"]).unwrap();
    let mut p = ProducerConfig::builder();
    p.bootstrap_servers("sim:9092").unwrap();
    p.transactional_id("totals-1");
    p.net().dialer(sim.dialer());
    let producer = Producer::new(p.build().unwrap()).await.unwrap();
    producer.init_transactions().await.unwrap();

    // The committed state: account -> total.
    let mut totals: BTreeMap<Vec<u8>, i64> = BTreeMap::new();
    let (mut txn, mut idle) = (0usize, 0);
    while idle < 3 {
        let records = consumer
            .poll(Duration::from_millis(100))
            .await
            .unwrap()
            .into_records();
        if records.is_empty() {
            idle += 1;
            continue;
        }
        idle = 0;
        producer.begin_transaction().await.unwrap();
        // The transaction's view of the state: a copy, kept on commit only
        // (bug 2 updates the committed state itself).
        let mut staged = (!bugs.state_not_rolled_back).then(|| totals.clone());
        for r in &records {
            let key = r.key().unwrap().to_vec();
            let v = r.value().unwrap();
            let amount = i64::from(u16::from_be_bytes([v[0], v[1]]));
            let state = staged.as_mut().unwrap_or(&mut totals);
            let total = state.entry(key.clone()).or_insert(0);
            *total += amount;
            let total = *total;
            producer
                .send(
                    ProducerRecord::new("totals")
                        .with_key(&key)
                        .with_value(&total.to_be_bytes()),
                )
                .await
                .unwrap();
        }
        let offsets = consumer.offsets_to_commit();
        if bugs.offsets_outside_txn {
            consumer.commit_offsets(&offsets).await.unwrap();
        } else {
            producer
                .send_offsets_to_transaction(offsets, &consumer.group_metadata())
                .await
                .unwrap();
        }
        let fails = failures.get(txn).copied().unwrap_or(false);
        txn += 1;
        if fails {
            // A downstream error: abort, and read the input again from the
            // committed offsets.
            producer.abort_transaction().await.unwrap();
            let assigned = consumer.assignment();
            consumer.seek_to_committed(&assigned).await.unwrap();
        } else {
            producer.commit_transaction().await.unwrap();
            if let Some(s) = staged {
                totals = s;
            }
        }
    }
    producer.close(Duration::from_secs(5)).await.unwrap();
    consumer.close().await.unwrap();
}

/// The same pipeline as a `Session` handler.
struct Totals {
    committed: BTreeMap<Vec<u8>, i64>,
    /// The open transaction's changes (unused with bug 2).
    pending: BTreeMap<Vec<u8>, i64>,
    in_place: bool,
    failures: Vec<bool>,
    txn: usize,
}

/// The seeded downstream error.
#[derive(Debug)]
struct Downstream;
impl std::fmt::Display for Downstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("downstream error")
    }
}
impl std::error::Error for Downstream {}

impl Handler for Totals {
    async fn process(
        &mut self,
        ctx: &mut Context<'_>,
        records: &[ConsumerRecord],
    ) -> Result<(), HandlerError> {
        for r in records {
            let key = r.key().map(|k| k.to_vec()).unwrap_or_default();
            let v = r.value().map(|v| v.to_vec()).unwrap_or_default();
            let amount = i64::from(u16::from_be_bytes([v[0], v[1]]));
            let total = if self.in_place {
                let t = self.committed.entry(key.clone()).or_insert(0);
                *t += amount;
                *t
            } else {
                let before = self.pending.get(&key).or(self.committed.get(&key));
                let t = before.copied().unwrap_or(0) + amount;
                self.pending.insert(key.clone(), t);
                t
            };
            ctx.send(
                ProducerRecord::new("totals")
                    .with_key(&key)
                    .with_value(&total.to_be_bytes()),
            )
            .await?;
        }
        Ok(())
    }

    async fn before_commit(&mut self, _out: &mut Output<'_>) -> Result<(), HandlerError> {
        let fails = self.failures.get(self.txn).copied().unwrap_or(false);
        self.txn += 1;
        match fails {
            true => Err(Downstream.into()),
            false => Ok(()),
        }
    }

    fn rollback(&mut self, _partitions: &[TopicPartition]) {
        self.pending.clear();
    }

    fn transaction_ended(&mut self, end: &TransactionEnd, _stats: &SessionStats) {
        if let TransactionEnd::Committed { .. } = end {
            let pending = std::mem::take(&mut self.pending);
            self.committed.extend(pending);
        }
    }
}

async fn run_session(sim: &SimCluster, bugs: Bugs, failures: &[bool]) {
    let mut b = Session::builder();
    b.bootstrap_servers("sim:9092")
        .unwrap()
        .set("consumer.auto.offset.reset", "earliest")
        .unwrap()
        .set("consumer.fetch.max.wait.ms", "50")
        .unwrap();
    b.group_id("totals")
        .transactional_id("totals-1")
        .input_topics(&["payments"])
        .max_records_per_transaction(5)
        .max_transaction_time(Duration::from_millis(100))
        .stop_when_idle(Duration::from_millis(500))
        .handler_retry_backoff(Duration::ZERO);
    b.consumer().net().dialer(sim.dialer());
    b.producer().net().dialer(sim.dialer());
    let handler = Totals {
        committed: BTreeMap::new(),
        pending: BTreeMap::new(),
        in_place: bugs.state_not_rolled_back,
        failures: failures.to_vec(),
        txn: 0,
    };
    b.build().await.unwrap().run(handler).await.unwrap();
}

/// Runs one case on a fresh simulated cluster (virtual clock, one thread:
/// deterministic) and returns the totals visible `read_committed`.
fn run_case(case: &Case, bugs: Bugs) -> Vec<SimRecord> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    rt.block_on(async {
        let sim = SimCluster::new(2);
        write_payments(&sim, &case.payments).await;
        if bugs.session {
            run_session(&sim, bugs, &case.failures).await;
        } else {
            run_pipeline(&sim, bugs, &case.failures).await;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        sim.settle();
        sim.read_committed("totals")
    })
}

/// The property: per account, the visible totals are the running sums of
/// its payments, in order.
fn check(case: &Case, bugs: Bugs) -> Result<(), TestCaseError> {
    let out = run_case(case, bugs);
    // Expected: per account, the running sums of its payments in order.
    let mut want: BTreeMap<Vec<u8>, Vec<i64>> = BTreeMap::new();
    let mut sums: BTreeMap<Vec<u8>, i64> = BTreeMap::new();
    for (a, amount) in &case.payments {
        let key = account(*a).into_bytes();
        let s = sums.entry(key.clone()).or_insert(0);
        *s += i64::from(*amount);
        want.entry(key).or_default().push(*s);
    }
    let mut got: BTreeMap<Vec<u8>, Vec<i64>> = BTreeMap::new();
    for r in &out {
        let key = r.key.clone().unwrap_or_default().to_vec();
        let v = r.value.clone().unwrap_or_default();
        let total = i64::from_be_bytes(v.as_ref().try_into().unwrap_or([0; 8]));
        got.entry(key).or_default().push(total);
    }
    prop_assert_eq!(got, want);
    Ok(())
}

fn config(cases: u32) -> Config {
    Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 32,
        ..Config::default()
    }
}

/// Runs the property; returns the minimal failing case, if any. The cases
/// come from a fixed seed, so a run is the same every time (the simulation
/// is deterministic too: one thread, virtual clock).
fn find_bug(bugs: Bugs) -> Option<Case> {
    find_bug_in(bugs, 32)
}

fn find_bug_in(bugs: Bugs, n: u32) -> Option<Case> {
    let rng = TestRng::deterministic_rng(RngAlgorithm::ChaCha);
    let mut runner = TestRunner::new_with_rng(config(n), rng);
    let runs = std::cell::Cell::new(0u32);
    let started = std::time::Instant::now();
    let found = match runner.run(&cases(), |case| {
        runs.set(runs.get() + 1);
        check(&case, bugs)
    }) {
        Ok(()) => None,
        Err(proptest::test_runner::TestError::Fail(_, case)) => Some(case),
        Err(e) => panic!("{e}"),
    };
    eprintln!(
        "{bugs:?}: {} runs in {:?}, found {found:?}",
        runs.get(),
        started.elapsed()
    );
    found
}

// No wall-clock assertions: the runs are deterministic (fixed seed, virtual
// clock), so each bug is found at the same case every time; the time a run
// takes is printed (`--nocapture`) and measured in docs/GUIDE-PROPERTY-TEST.md.

#[test]
fn the_correct_pipeline_keeps_exact_totals() {
    assert_eq!(find_bug(Bugs::default()).map(|c| c.payments), None);
}

#[test]
fn planted_bug_1_offsets_committed_outside_the_transaction_is_found() {
    let bugs = Bugs {
        offsets_outside_txn: true,
        ..Bugs::default()
    };
    let case = find_bug(bugs).expect("the property finds bug 1");
    // Only an aborted transaction exposes it.
    assert!(case.failures.contains(&true), "{case:?}");
}

#[test]
fn planted_bug_2_state_not_rolled_back_on_abort_is_found() {
    let bugs = Bugs {
        state_not_rolled_back: true,
        ..Bugs::default()
    };
    let case = find_bug(bugs).expect("the property finds bug 2");
    // Only an aborted transaction exposes it.
    assert!(case.failures.contains(&true), "{case:?}");
}

#[test]
fn the_correct_session_handler_keeps_exact_totals() {
    let bugs = Bugs {
        session: true,
        ..Bugs::default()
    };
    assert_eq!(find_bug_in(bugs, 16).map(|c| c.payments), None);
}

#[test]
fn planted_bug_2_in_a_session_handler_without_rollback_is_found() {
    let bugs = Bugs {
        session: true,
        state_not_rolled_back: true,
        ..Bugs::default()
    };
    let case = find_bug_in(bugs, 16).expect("the property finds bug 2");
    assert!(case.failures.contains(&true), "{case:?}");
}

/// The same case gives the same output, offsets included: the simulation is
/// deterministic, so a failing case replays exactly.
#[test]
fn a_case_replays_identically() {
    let case = Case {
        payments: (0..12).map(|i| (i % 3, u16::from(i) + 1)).collect(),
        failures: vec![false, true, false, true],
    };
    let first = run_case(&case, Bugs::default());
    assert!(!first.is_empty());
    assert_eq!(first, run_case(&case, Bugs::default()));
}
