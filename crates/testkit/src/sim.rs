//! Deterministic simulation of the sans-IO producer core
//! ([`exactly_txn::ProducerCore`]) against the [`crate::broker::Broker`], on a
//! virtual clock, with a seeded RNG injecting faults between them: lost,
//! delayed and duplicated responses, requests that never left, zombie
//! requests applied after their sender gave up (a connection cut after the
//! write), retriable and "maybe written" errors, coordinator moves
//! (`NOT_COORDINATOR`, `COORDINATOR_LOAD_IN_PROGRESS`), leader changes
//! (`NOT_LEADER_OR_FOLLOWER`), transaction timeouts (KIP-588), fencing by
//! another instance, and epoch exhaustion (KIP-360). [`Faults`] holds the
//! knobs; every schedule is a function of its seed and checks exactly-once
//! at the end ([`Sim::run`]).
//!
//! ```
//! use exactly_testkit::sim::{Faults, Sim};
//!
//! for seed in 0..100 {
//!     let mut sim = Sim::with_faults(seed, Faults::default());
//!     sim.run().unwrap_or_else(|e| panic!("seed {seed}: {e}"));
//! }
//! ```

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};

use exactly_txn::*;

use crate::broker::Broker;
use crate::rng::Rng;

/// The fault knobs of a simulation: each `*_pct` is the chance, in percent,
/// that the fault hits one request while the schedule's fault window is
/// open (from time 0 to a seeded point below [`Faults::window_ms`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Faults {
    /// The request never leaves the client (`Outcome::NotSent`).
    pub not_sent_pct: u64,
    /// The connection is cut after the write: the client sees
    /// `Outcome::MaybeDelivered` and the broker applies the request later
    /// (a zombie).
    pub zombie_pct: u64,
    /// The broker refuses before applying: leader change, coordinator move
    /// or load, concurrent transactions, `TRANSACTION_ABORTABLE`, or a
    /// definitive `MESSAGE_TOO_LARGE`.
    pub refuse_pct: u64,
    /// A produce is applied but answered with an error that says it may not
    /// have been (`NOT_ENOUGH_REPLICAS_AFTER_APPEND`, `REQUEST_TIMED_OUT`).
    pub applied_but_error_pct: u64,
    /// The response is lost: the client times out (`MaybeDelivered`).
    pub lost_response_pct: u64,
    /// The response is delivered twice.
    pub duplicate_response_pct: u64,
    /// Latency of each hop: 1 to this many ms (responses are therefore
    /// reordered across connections).
    pub max_latency_ms: u64,
    /// Chance that another instance with the same transactional id fences
    /// the producer once during the schedule.
    pub fence_pct: u64,
    /// The fault window closes at a seeded time below this (ms); after it
    /// the network is perfect, so every schedule can finish.
    pub window_ms: u64,
}

impl Default for Faults {
    /// The mix our own simulation runs (`crates/txn/tests/simulation.rs`).
    fn default() -> Self {
        Self {
            not_sent_pct: 3,
            zombie_pct: 2,
            refuse_pct: 6,
            applied_but_error_pct: 4,
            lost_response_pct: 3,
            duplicate_response_pct: 2,
            max_latency_ms: 15,
            fence_pct: 3,
            window_ms: 8_000,
        }
    }
}

impl Faults {
    /// A perfect network and no other instance: only the schedule's own
    /// choices (transaction timeouts, epoch exhaustion) remain.
    pub fn none() -> Self {
        Self {
            not_sent_pct: 0,
            zombie_pct: 0,
            refuse_pct: 0,
            applied_but_error_pct: 0,
            lost_response_pct: 0,
            duplicate_response_pct: 0,
            max_latency_ms: 15,
            fence_pct: 0,
            window_ms: 8_000,
        }
    }
}

#[derive(Debug)]
enum Ev {
    Arrive {
        id: RequestId,
        request: Request,
        sent_at: u64,
        zombie: bool,
    },
    Outcome {
        id: RequestId,
        outcome: Outcome,
    },
    Fence,
}

/// How a planned transaction ended, as the application saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnOutcome {
    /// `Event::Committed`.
    Committed,
    /// `Event::Aborted`.
    Aborted,
    /// The producer ended fatally first.
    Unknown,
}

struct PlannedTxn {
    batches: Vec<usize>,
    offsets: bool,
    abort: bool,
}

/// What one schedule did, for the summary.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    /// Fatal errors by (api, code, reason, fenced).
    pub fatal_reasons: BTreeMap<String, usize>,
    /// Transactions committed.
    pub committed: usize,
    /// Transactions aborted.
    pub aborted: usize,
    /// Transactions (or idempotent runs) ended by a fatal error.
    pub fatal: usize,
    /// Batches delivered.
    pub delivered: usize,
    /// Batches failed.
    pub failed: usize,
    /// Requests sent.
    pub requests: usize,
}

impl Stats {
    /// Adds another schedule's counts.
    pub fn add(&mut self, other: &Stats) {
        for (k, v) in &other.fatal_reasons {
            *self.fatal_reasons.entry(k.clone()).or_default() += v;
        }
        self.committed += other.committed;
        self.aborted += other.aborted;
        self.fatal += other.fatal;
        self.delivered += other.delivered;
        self.failed += other.failed;
        self.requests += other.requests;
    }
}

const REQUEST_TIMEOUT: u64 = 300;
const MAX_TIME: u64 = 600_000;

/// One seeded schedule: the producer core, the broker, the network between
/// them and an application that runs a plan of transactions (or idempotent
/// sends) the seed chose.
pub struct Sim {
    rng: Rng,
    faults: Faults,
    now: u64,
    queue: BinaryHeap<Reverse<(u64, u64, usize)>>,
    events: Vec<Option<Ev>>,
    seq: u64,
    core: ProducerCore,
    broker: Broker,
    transactional: bool,
    partitions: Vec<TopicPartition>,
    fault_until: u64,
    conn_free: BTreeMap<String, u64>,
    // App.
    plan: Vec<PlannedTxn>,
    current: Option<usize>,
    commit_at: Option<u64>,
    txn_batches: BTreeMap<BatchId, usize>,
    txn_outcomes: BTreeMap<usize, TxnOutcome>,
    reports: BTreeMap<BatchId, Vec<Event>>,
    idem_plan: Vec<(u64, usize)>,
    enqueued: Vec<BatchId>,
    fatal: bool,
    /// What the schedule did (complete after [`Sim::run`]).
    pub stats: Stats,
    /// EndTxn requests in flight: id -> (identity, flow).
    end_txns: BTreeMap<RequestId, (ProducerIdentity, Flow)>,
    /// Identities no new transactional request may use: every EndTxn's under
    /// v2, and under v1 those of an EndTxn whose outcome went unknown
    /// (KAFKA-17754).
    retired: BTreeSet<ProducerIdentity>,
    /// Violations of the epoch invariant, seen when requests are sent.
    violations: Vec<String>,
    trace: bool,
    fenced: bool,
    /// A zombie request that opens or re-initializes was applied.
    zombie_landed: bool,
    group: GroupMetadata,
    /// The open transaction's `add_offsets` not yet reported committed.
    offsets_pending: Option<OffsetsId>,
}

impl Sim {
    /// The schedule of `seed` with the default faults.
    pub fn new(seed: u64) -> Self {
        Self::with_faults(seed, Faults::default())
    }

    /// The schedule of `seed` with the given fault knobs.
    pub fn with_faults(seed: u64, faults: Faults) -> Self {
        let mut rng = Rng::new(seed);
        let tv2 = rng.pct(50);
        let transactional = rng.pct(75);
        let first_epoch = if rng.pct(10) { i16::MAX - 2 } else { 0 };
        let broker_info = if tv2 {
            BrokerInfo::v2()
        } else if rng.pct(20) {
            BrokerInfo {
                init_producer_id: 2,
                ..BrokerInfo::v1()
            }
        } else {
            BrokerInfo::v1()
        };
        let timeout_ms = if rng.pct(20) { 1_500 } else { 20_000 };
        let config = Config {
            transactional_id: transactional.then(|| "txn".to_string()),
            transaction_timeout_ms: timeout_ms as i32,
            delivery_timeout_ms: if rng.pct(20) { 800 } else { 30_000 },
            retry_backoff_ms: 50,
            retry_backoff_max_ms: 400,
            concurrent_transactions_backoff_ms: 20,
            max_in_flight_per_partition: 1 + rng.below(5) as usize,
            probe_completion: rng.pct(50),
        };
        let n_partitions = 1 + rng.below(3) as usize;
        let partitions = (0..n_partitions)
            .map(|p| TopicPartition::new("t", p as i32))
            .collect::<Vec<_>>();
        let n_txns = 1 + rng.below(4) as usize;
        let plan = (0..n_txns)
            .map(|_| {
                let n = rng.below(6) as usize;
                PlannedTxn {
                    batches: (0..n)
                        .map(|_| rng.below(n_partitions as u64) as usize)
                        .collect(),
                    offsets: rng.pct(40),
                    abort: rng.pct(20),
                }
            })
            .collect();
        let idem_plan = (0..1 + rng.below(12))
            .map(|_| (rng.below(3_000), rng.below(n_partitions as u64) as usize))
            .collect();
        let fault_until = rng.below(faults.window_ms);
        let mut sim = Self {
            now: 0,
            queue: BinaryHeap::new(),
            events: Vec::new(),
            seq: 0,
            core: ProducerCore::new(config, broker_info),
            broker: Broker::new(tv2, first_epoch, timeout_ms),
            transactional,
            partitions,
            fault_until,
            conn_free: BTreeMap::new(),
            plan,
            current: None,
            commit_at: None,
            txn_batches: BTreeMap::new(),
            txn_outcomes: BTreeMap::new(),
            reports: BTreeMap::new(),
            idem_plan,
            enqueued: Vec::new(),
            fatal: false,
            stats: Stats::default(),
            end_txns: BTreeMap::new(),
            retired: BTreeSet::new(),
            violations: Vec::new(),
            fenced: false,
            zombie_landed: false,
            trace: false,
            offsets_pending: None,
            group: GroupMetadata {
                group_id: "g".into(),
                generation_id: 1,
                member_id: "m".into(),
                group_instance_id: None,
            },
            rng,
            faults,
        };
        if sim.transactional {
            sim.idem_plan.clear();
        }
        if sim.transactional && sim.rng.pct(faults.fence_pct) {
            let at = sim.rng.below(6_000);
            sim.schedule(at, Ev::Fence);
        }
        sim
    }

    /// Prints every request, outcome and event to stderr (for a failing
    /// seed).
    pub fn set_trace(&mut self, on: bool) {
        self.trace = on;
    }

    /// The broker (to inspect its logs and offsets after [`Sim::run`]).
    pub fn broker(&self) -> &Broker {
        &self.broker
    }

    fn schedule(&mut self, at: u64, ev: Ev) {
        self.seq += 1;
        self.events.push(Some(ev));
        self.queue
            .push(Reverse((at, self.seq, self.events.len() - 1)));
    }

    fn faulty(&mut self, pct: u64) -> bool {
        self.now < self.fault_until && self.rng.pct(pct)
    }

    fn latency(&mut self) -> u64 {
        1 + self.rng.below(self.faults.max_latency_ms)
    }

    fn send(&mut self, id: RequestId, target: Target, request: Request) {
        self.stats.requests += 1;
        if self.trace {
            eprintln!("{:>6} send {id:?} {target:?} {request:?}", self.now);
        }
        let txn_identity = match &request {
            Request::AddPartitionsToTxn { identity, .. }
            | Request::AddOffsetsToTxn { identity, .. }
            | Request::TxnOffsetCommit { identity, .. } => Some(*identity),
            Request::Produce { stamp, .. } if stamp.transactional => Some(stamp.identity()),
            _ => None,
        };
        if let Some(identity) = txn_identity {
            if self.retired.contains(&identity) {
                self.violations
                    .push(format!("{request:?} reuses the ended epoch of {identity}"));
            }
        }
        if let Request::EndTxn { identity, flow, .. } = &request {
            self.end_txns.insert(id, (*identity, *flow));
            if *flow == Flow::V2 {
                self.retired.insert(*identity);
            }
        }
        if self.faulty(self.faults.not_sent_pct) {
            let at = self.now + 1;
            self.schedule(
                at,
                Ev::Outcome {
                    id,
                    outcome: Outcome::NotSent,
                },
            );
            return;
        }
        let key = format!("{target:?}");
        let zombie = self.faulty(self.faults.zombie_pct);
        let lat = self.latency();
        let arrive = if zombie {
            self.now + REQUEST_TIMEOUT + 1 + self.rng.below(3_000)
        } else {
            let free = self.conn_free.get(&key).copied().unwrap_or(0);
            let a = (self.now + lat).max(free);
            self.conn_free.insert(key, a);
            a
        };
        if zombie {
            let at = self.now + REQUEST_TIMEOUT;
            self.schedule(
                at,
                Ev::Outcome {
                    id,
                    outcome: Outcome::MaybeDelivered,
                },
            );
        }
        let sent_at = self.now;
        self.schedule(
            arrive,
            Ev::Arrive {
                id,
                request,
                sent_at,
                zombie,
            },
        );
    }

    fn version_of(&self, request: &Request) -> i16 {
        let b = self.core.broker_info();
        match request {
            Request::Produce { flow, .. } => match flow {
                Some(Flow::V1) => b.produce.min(11),
                _ => b.produce,
            },
            Request::EndTxn { .. } => b.end_txn,
            Request::InitProducerId { .. } => b.init_producer_id,
            Request::TxnOffsetCommit { .. } => b.txn_offset_commit,
            _ => 3,
        }
    }

    fn arrive(&mut self, id: RequestId, request: Request, sent_at: u64, zombie: bool) {
        self.broker.complete_due(self.now);
        self.broker.expire_transactions(self.now);
        let version = self.version_of(&request);
        // Errors before the request is applied.
        let pre = if self.faulty(self.faults.refuse_pct) {
            Some(match &request {
                Request::Produce { .. } => match self.rng.below(20) {
                    // A definitive rejection: the batch fails, unwritten.
                    0 => ErrorCode::MessageTooLarge,
                    1..=10 => ErrorCode::NotLeaderOrFollower,
                    _ => ErrorCode::NotEnoughReplicas,
                },
                Request::FindCoordinator { .. } => ErrorCode::CoordinatorNotAvailable,
                Request::AddPartitionsToTxn { .. } | Request::TxnOffsetCommit { .. }
                    if self.rng.pct(5) =>
                {
                    ErrorCode::TransactionAbortable
                }
                _ => match self.rng.below(3) {
                    0 => ErrorCode::NotCoordinator,
                    1 => ErrorCode::CoordinatorLoadInProgress,
                    _ => ErrorCode::ConcurrentTransactions,
                },
            })
        } else {
            None
        };
        let response = match pre {
            Some(code) => error_response(&request, code),
            None => {
                let r = self.broker.handle(self.now, &request);
                // Applied, but the answer says it may not have been.
                match r {
                    Response::Produce { error: None, .. }
                        if self.faulty(self.faults.applied_but_error_pct) =>
                    {
                        Response::Produce {
                            error: Some(if self.rng.pct(50) {
                                ErrorCode::NotEnoughReplicasAfterAppend
                            } else {
                                ErrorCode::RequestTimedOut
                            }),
                            base_offset: -1,
                            log_start_offset: 0,
                        }
                    }
                    r => r,
                }
            }
        };
        if zombie {
            // A request applied after its sender gave up on it may change
            // what the coordinator knows behind the producer's back (an
            // InitProducerId that re-initializes, an AddPartitionsToTxn that
            // reopens a transaction just aborted): it may end the producer
            // fatally (fenced), which is safe, never silently wrong.
            // (An InitProducerId that meets an open transaction fences it
            // and answers CONCURRENT_TRANSACTIONS: applied all the same.)
            let opens = match &request {
                Request::InitProducerId { .. } => true,
                Request::AddPartitionsToTxn { .. }
                | Request::AddOffsetsToTxn { .. }
                | Request::TxnOffsetCommit { .. } => true,
                Request::Produce { stamp, flow, .. } => {
                    stamp.transactional && *flow == Some(Flow::V2)
                }
                _ => false,
            };
            let applied = response_ok(&response)
                || matches!(
                    response,
                    Response::InitProducerId {
                        error: Some(ErrorCode::ConcurrentTransactions),
                        ..
                    }
                );
            if opens && applied {
                self.zombie_landed = true;
            }
            return;
        }
        let outcome = Outcome::Received { version, response };
        if self.faulty(self.faults.lost_response_pct) {
            let at = (sent_at + REQUEST_TIMEOUT).max(self.now + 1);
            self.schedule(
                at,
                Ev::Outcome {
                    id,
                    outcome: Outcome::MaybeDelivered,
                },
            );
            return;
        }
        let at = self.now + self.latency();
        if self.faulty(self.faults.duplicate_response_pct) {
            // A duplicated outcome: the core must ignore the second.
            let later = at + self.latency();
            self.schedule(
                later,
                Ev::Outcome {
                    id,
                    outcome: outcome.clone(),
                },
            );
        }
        self.schedule(at, Ev::Outcome { id, outcome });
    }

    /// Polls the core dry and lets the app react.
    fn drain(&mut self) -> Result<(), String> {
        let mut rounds = 0;
        loop {
            rounds += 1;
            if rounds >= 10_000 {
                return Err(format!("drain livelock in {:?}", self.core.state()));
            }
            let mut progressed = false;
            while let Some((id, target, request)) = self.core.poll_request(Millis(self.now)) {
                progressed = true;
                self.send(id, target, request);
            }
            while let Some(event) = self.core.poll_event() {
                progressed = true;
                self.on_event(event);
            }
            if self.app_step() {
                progressed = true;
            }
            if !progressed {
                return Ok(());
            }
        }
    }

    fn on_event(&mut self, event: Event) {
        if self.trace {
            eprintln!("{:>6} event {event:?}", self.now);
        }
        match &event {
            Event::Delivered { batch, .. } | Event::DeliveryFailed { batch, .. } => {
                self.reports.entry(*batch).or_default().push(event.clone());
            }
            Event::OffsetsCommitted { id } => {
                // Only the open transaction's offsets, each once.
                let expected = self.offsets_pending.take();
                if expected != Some(*id) {
                    self.violations
                        .push(format!("offsets {id:?} reported committed unexpectedly"));
                }
            }
            Event::Committed { .. } => {
                if let Some(id) = self.offsets_pending.take() {
                    self.violations.push(format!(
                        "transaction committed before its offsets {id:?} were"
                    ));
                }
                if let Some(t) = self.current.take() {
                    self.txn_outcomes.insert(t, TxnOutcome::Committed);
                }
            }
            Event::Aborted { .. } => {
                self.offsets_pending = None;
                if let Some(t) = self.current.take() {
                    self.txn_outcomes.insert(t, TxnOutcome::Aborted);
                }
            }
            Event::AbortableError { .. } => {
                let _ = self.core.abort(Millis(self.now));
            }
            Event::Fatal { error } => {
                let key = format!(
                    "{:?}/{:?}/{:?}/fenced={}",
                    error.api, error.code, error.reason, self.fenced
                );
                *self.stats.fatal_reasons.entry(key.clone()).or_default() += 1;
                if !self.fenced && self.broker.expired == 0 && !self.zombie_landed {
                    // Only another instance (fencing), a transaction the
                    // coordinator aborted on timeout, or a zombie request of
                    // our own applied late may end the producer.
                    self.violations
                        .push(format!("fatal without fencing or timeout: {key}"));
                }
                self.fatal = true;
                if let Some(t) = self.current.take() {
                    self.txn_outcomes.insert(t, TxnOutcome::Unknown);
                }
            }
            _ => {}
        }
    }

    /// The application: returns whether it did something.
    fn app_step(&mut self) -> bool {
        let now = Millis(self.now);
        if self.fatal {
            return false;
        }
        if *self.core.state() == TxnState::Uninitialized {
            if let Err(e) = self.core.init(now) {
                self.violations.push(format!("init refused: {e:?}"));
                self.fatal = true;
            }
            return true;
        }
        if !self.transactional {
            let mut did = false;
            let due: Vec<(u64, usize)> = self
                .idem_plan
                .iter()
                .copied()
                .filter(|(t, _)| *t <= self.now)
                .collect();
            self.idem_plan.retain(|(t, _)| *t > self.now);
            for (_, p) in due {
                let count = 1 + self.rng.below(4) as u32;
                match self.core.enqueue(now, self.partitions[p].clone(), count) {
                    Ok(id) => self.enqueued.push(id),
                    Err(e) => self
                        .violations
                        .push(format!("idempotent enqueue refused: {e:?}")),
                }
                did = true;
            }
            return did;
        }
        if let (Some(t), Some(at)) = (self.current, self.commit_at) {
            if at <= self.now {
                self.commit_at = None;
                let r = if self.plan[t].abort {
                    self.core.abort(now)
                } else {
                    self.core.commit(now)
                };
                if r.is_err() {
                    // An abortable error came first: abort instead.
                    let _ = self.core.abort(now);
                }
                return true;
            }
            return false;
        }
        if self.current.is_none() {
            if let TxnState::Initializing { reason } = self.core.state().clone() {
                // Between transactions the core refuses `begin` with
                // `Reinitializing` (the driver keeps such calls waiting);
                // before the first identity, as a plain invalid state.
                let r = self.core.begin(now);
                let ok = match reason {
                    InitReason::First => matches!(r, Err(UsageError::InvalidState { .. })),
                    _ => matches!(r, Err(UsageError::Reinitializing { .. })),
                };
                if !ok {
                    self.violations
                        .push(format!("begin while {reason:?} answered {r:?}"));
                }
            }
        }
        if self.current.is_some() || *self.core.state() != TxnState::Ready {
            return false;
        }
        let next = self.txn_outcomes.len();
        if next >= self.plan.len() {
            return false;
        }
        if let Err(e) = self.core.begin(now) {
            self.violations
                .push(format!("begin in Ready refused: {e:?}"));
            self.fatal = true;
            return true;
        }
        self.commit_at = None;
        self.current = Some(next);
        for &p in &self.plan[next].batches.clone() {
            let count = 1 + self.rng.below(4) as u32;
            match self.core.enqueue(now, self.partitions[p].clone(), count) {
                Ok(id) => {
                    self.enqueued.push(id);
                    self.txn_batches.insert(id, next);
                }
                Err(e) => self.violations.push(format!("enqueue refused: {e:?}")),
            }
        }
        if self.plan[next].offsets {
            let offsets = vec![OffsetCommit {
                partition: TopicPartition::new("in", 0),
                offset: 10 * (next as i64 + 1),
                leader_epoch: None,
                metadata: None,
            }];
            match self.core.add_offsets(now, self.group.clone(), offsets) {
                Ok(id) => self.offsets_pending = Some(id),
                Err(e) => self.violations.push(format!("add_offsets refused: {e:?}")),
            }
        }
        self.commit_at = Some(self.now + self.rng.below(200));
        true
    }

    fn done(&self) -> bool {
        if self.fatal {
            return true;
        }
        if self.transactional {
            self.txn_outcomes.len() >= self.plan.len()
                && self.enqueued.iter().all(|b| self.reports.contains_key(b))
        } else {
            self.idem_plan.is_empty() && self.enqueued.iter().all(|b| self.reports.contains_key(b))
        }
    }

    /// Runs the schedule to its end, quiesces the broker and checks
    /// exactly-once: no duplicate visible batch, each batch reported once,
    /// a committed transaction wholly visible with its offsets, an aborted
    /// one invisible, nothing hanging, an idempotent delivery not lost, a
    /// batch reported unwritten not in the log, no request reusing an ended
    /// epoch, and no fatal error without fencing, a timeout or a zombie to
    /// explain it. `Err` describes the first violation.
    pub fn run(&mut self) -> Result<(), String> {
        let mut steps = 0u64;
        loop {
            steps += 1;
            if steps > 200_000 {
                return Err(format!(
                    "livelock at {} in {:?}",
                    self.now,
                    self.core.state()
                ));
            }
            self.drain()?;
            if self.done() {
                break;
            }
            let mut next = self.queue.peek().map(|Reverse((t, _, _))| *t);
            if let Some(t) = self.core.poll_timeout() {
                next = Some(next.map_or(t.0, |n| n.min(t.0)));
            }
            if let (Some(at), Some(_)) = (self.commit_at, self.current) {
                next = Some(next.map_or(at, |n| n.min(at)));
            }
            if let Some(&(t, _)) = self.idem_plan.iter().min() {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
            if let Some(&(t, _)) = self.broker.completions.iter().min() {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
            let Some(next) = next else {
                return Err(format!("stuck at {} in {:?}", self.now, self.core.state()));
            };
            if next > MAX_TIME {
                return Err(format!(
                    "not done by {} in state {:?}",
                    self.now,
                    self.core.state()
                ));
            }
            if steps > 199_990 {
                eprintln!(
                    "now {} next {next} queue {:?} timeout {:?} commit_at {:?} completions {:?}",
                    self.now,
                    self.queue.peek(),
                    self.core.poll_timeout(),
                    self.commit_at,
                    self.broker.completions
                );
            }
            self.now = self.now.max(next);
            self.core.handle_timeout(Millis(self.now));
            self.broker.complete_due(self.now);
            while let Some(Reverse((t, _, idx))) = self.queue.peek().copied() {
                if t > self.now {
                    break;
                }
                self.queue.pop();
                let Some(ev) = self.events[idx].take() else {
                    continue;
                };
                match ev {
                    Ev::Arrive {
                        id,
                        request,
                        sent_at,
                        zombie,
                        ..
                    } => self.arrive(id, request, sent_at, zombie),
                    Ev::Outcome { id, outcome } => {
                        if self.trace {
                            eprintln!("{:>6} outcome {id:?} {outcome:?}", self.now);
                        }
                        if let Some((identity, _)) = self.end_txns.remove(&id) {
                            if outcome == Outcome::MaybeDelivered {
                                self.retired.insert(identity);
                            }
                        }
                        self.core.handle_outcome(Millis(self.now), id, outcome)
                    }
                    Ev::Fence => {
                        self.fenced = true;
                        self.broker.fence("txn", self.now)
                    }
                }
            }
        }
        // Quiesce the broker: pending zombies land, open transactions time
        // out and complete.
        let mut t = self.now;
        while let Some(Reverse((at, _, idx))) = self.queue.pop() {
            t = t.max(at);
            self.now = t;
            if let Some(Ev::Arrive {
                id,
                request,
                sent_at,
                zombie,
                ..
            }) = self.events[idx].take()
            {
                self.fault_until = 0;
                self.arrive(id, request, sent_at, zombie);
            }
        }
        for _ in 0..3 {
            t += self.broker.timeout_ms + 10;
            self.broker.complete_due(t);
            self.broker.expire_transactions(t);
            self.broker.complete_due(t + 10);
        }
        self.check()
    }

    fn check(&mut self) -> Result<(), String> {
        if let Some(v) = self.violations.first() {
            return Err(v.clone());
        }
        let (visible, open) = self.broker.read_committed();
        if open > 0 {
            return Err(format!("{open} batches left in hanging transactions"));
        }
        let written = self.broker.all_written();
        let mut seen = BTreeSet::new();
        for (_, b) in &visible {
            if !seen.insert(*b) {
                return Err(format!("duplicate visible batch {b:?}"));
            }
        }
        for b in &self.enqueued {
            let reports = self.reports.get(b).map(Vec::as_slice).unwrap_or(&[]);
            if reports.len() != 1 {
                return Err(format!(
                    "batch {b:?} has {} reports: {reports:?}",
                    reports.len()
                ));
            }
            match &reports[0] {
                Event::Delivered { .. } => {
                    self.stats.delivered += 1;
                    if !self.transactional && !seen.contains(b) {
                        return Err(format!("delivered batch {b:?} lost"));
                    }
                }
                Event::DeliveryFailed { error, .. } => {
                    self.stats.failed += 1;
                    if !error.maybe_written && written.contains(b) {
                        return Err(format!(
                            "batch {b:?} reported unwritten but is in the log: {error:?}"
                        ));
                    }
                }
                other => return Err(format!("batch {b:?} reported as {other:?}")),
            }
        }
        if self.transactional {
            for (t, _) in self.plan.iter().enumerate() {
                let batches: Vec<BatchId> = self
                    .txn_batches
                    .iter()
                    .filter(|(_, &tt)| tt == t)
                    .map(|(b, _)| *b)
                    .collect();
                let vis = batches.iter().filter(|b| seen.contains(b)).count();
                match self.txn_outcomes.get(&t) {
                    Some(TxnOutcome::Committed) => {
                        self.stats.committed += 1;
                        if vis != batches.len() {
                            return Err(format!(
                                "txn {t} committed but {vis}/{} batches visible",
                                batches.len()
                            ));
                        }
                        if self.plan[t].offsets {
                            let o = self
                                .broker
                                .committed_offsets
                                .get(&("g".to_string(), TopicPartition::new("in", 0)));
                            if o.is_none_or(|&o| o < 10 * (t as i64 + 1)) {
                                return Err(format!("txn {t} committed without its offsets"));
                            }
                        }
                    }
                    Some(TxnOutcome::Aborted) => {
                        self.stats.aborted += 1;
                        if vis != 0 {
                            return Err(format!("txn {t} aborted but {vis} batches visible"));
                        }
                    }
                    Some(TxnOutcome::Unknown) | None => {
                        self.stats.fatal += 1;
                        if vis != 0 && vis != batches.len() {
                            return Err(format!(
                                "txn {t} partially visible: {vis}/{}",
                                batches.len()
                            ));
                        }
                    }
                }
            }
            // Visible data belongs to committed (or unknown) transactions.
            for b in &seen {
                let t = self.txn_batches.get(b).copied();
                if let Some(t) = t {
                    if self.txn_outcomes.get(&t) == Some(&TxnOutcome::Aborted) {
                        return Err(format!("aborted batch {b:?} visible"));
                    }
                }
            }
        } else if self.fatal {
            self.stats.fatal += 1;
        }
        Ok(())
    }
}

/// Whether the broker applied the request (no error in its answer).
fn response_ok(response: &Response) -> bool {
    match response {
        Response::FindCoordinator { error, .. }
        | Response::InitProducerId { error, .. }
        | Response::AddOffsetsToTxn { error }
        | Response::EndTxn { error, .. }
        | Response::DescribeTransactions { error, .. }
        | Response::Produce { error, .. } => error.is_none(),
        Response::AddPartitionsToTxn { results } | Response::TxnOffsetCommit { results } => {
            results.iter().all(|(_, e)| e.is_none())
        }
    }
}

fn error_response(request: &Request, code: ErrorCode) -> Response {
    let e = Some(code);
    match request {
        Request::FindCoordinator { .. } => Response::FindCoordinator { error: e, node: -1 },
        Request::InitProducerId { .. } => Response::InitProducerId {
            error: e,
            identity: ProducerIdentity::new(-1, -1),
        },
        Request::AddPartitionsToTxn { partitions, .. } => Response::AddPartitionsToTxn {
            results: partitions.iter().map(|p| (p.clone(), e)).collect(),
        },
        Request::AddOffsetsToTxn { .. } => Response::AddOffsetsToTxn { error: e },
        Request::TxnOffsetCommit { offsets, .. } => Response::TxnOffsetCommit {
            results: offsets.iter().map(|o| (o.partition.clone(), e)).collect(),
        },
        Request::EndTxn { .. } => Response::EndTxn {
            error: e,
            identity: None,
        },
        Request::DescribeTransactions { .. } => Response::DescribeTransactions {
            error: e,
            completing: false,
        },
        Request::Produce { .. } => Response::Produce {
            error: e,
            base_offset: -1,
            log_start_offset: -1,
        },
    }
}
