//! [`ProducerCore`]: the sans-IO idempotent and transactional producer.
//!
//! How to drive it (as quinn-proto's `Connection`):
//! 1. *Getters* ([`ProducerCore::state`], [`ProducerCore::identity`]) never
//!    change anything.
//! 2. *Commands* from the user ([`init`](ProducerCore::init),
//!    [`begin`](ProducerCore::begin), [`enqueue`](ProducerCore::enqueue),
//!    [`add_offsets`](ProducerCore::add_offsets),
//!    [`commit`](ProducerCore::commit), [`abort`](ProducerCore::abort)) either
//!    change the state or return a [`UsageError`] and change nothing.
//! 3. *Inputs* from the network and the clock:
//!    [`handle_outcome`](ProducerCore::handle_outcome) once per request, and
//!    [`handle_timeout`](ProducerCore::handle_timeout) when the deadline from
//!    [`poll_timeout`](ProducerCore::poll_timeout) passes.
//! 4. After any of them, drain the outputs:
//!    [`poll_request`](ProducerCore::poll_request) until `None`, then
//!    [`poll_event`](ProducerCore::poll_event) until `None`, then re-arm the
//!    timer from `poll_timeout`.
//!
//! `now` only moves forward; a smaller `now` is treated as the largest seen.
//!
//! ## Completion probe
//!
//! The coordinator answers EndTxn once the transaction is *prepared*; its
//! markers are written afterwards. Until they are, a request that opens the
//! next transaction is refused with CONCURRENT_TRANSACTIONS: AddPartitionsToTxn
//! and AddOffsetsToTxn (flow v1) to the client, which waits
//! `concurrent_transactions_backoff_ms` (20 ms, as the Java client) before
//! retrying; a KIP-890 Produce or TxnOffsetCommit (flow v2) inside the
//! partition leader's verification, which retries after its own
//! `add.partitions.to.txn.retry.backoff.ms` (20 ms). A client that begins
//! the next transaction as soon as the commit returns loses that race on
//! most transactions (traced on the wire against Kafka 4.3.1: our Produce
//! 0.15 ms after the EndTxn answer, the Java client's 0.65 ms, and a
//! 20 ms stall on most of ours). So within
//! `concurrent_transactions_backoff_ms` of a successful EndTxn, before the
//! first request that opens the next transaction, the core asks the
//! coordinator (DescribeTransactions) whether it is still completing, and
//! holds that request until it is not: again at once for the first few
//! answers, then every millisecond. The probe only delays: any error, lost
//! answer or the end of the window lets the request go as before, and an
//! error that says the broker will never answer it (authorization, version)
//! turns the probe off for the producer's life.

mod coordinator;
mod poll;
mod produce;
#[cfg(test)]
mod scale_tests;

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::config::{BrokerInfo, Config, Flow};
use crate::error::{DeliveryError, DeliveryFailure, ErrorReason, Severity, TxnError, UsageError};
use crate::io::{CoordinatorType, Event, Outcome};
use crate::ledger::{Batch, Ledger};
use crate::state::{EpochRisk, InitReason, OffsetsJob, OffsetsStep, TxnState};
use crate::types::{
    BatchId, GroupMetadata, Millis, NodeId, OffsetCommit, OffsetsId, ProducerIdentity, RequestId,
    TopicPartition,
};

/// A coordinator as last found, with a generation so that an error from a
/// request sent to an older coordinator never invalidates a newer one.
#[derive(Debug, Clone, Default)]
struct Coordinator {
    node: Option<NodeId>,
    generation: u64,
}

/// A request awaiting its outcome, with the identity it was issued under.
#[derive(Debug, Clone)]
struct Pending {
    identity: Option<ProducerIdentity>,
    kind: PendingKind,
}

#[derive(Debug, Clone)]
enum PendingKind {
    FindCoordinator {
        key_type: CoordinatorType,
        key: String,
    },
    InitProducerId,
    AddPartitions {
        partitions: Vec<TopicPartition>,
        generation: u64,
    },
    AddOffsets {
        generation: u64,
    },
    TxnOffsetCommit {
        group: String,
        generation: u64,
    },
    EndTxn {
        commit: bool,
        generation: u64,
    },
    DescribeTransactions,
    Produce {
        partition: TopicPartition,
        batch: BatchId,
    },
}

impl PendingKind {
    fn is_coordinator_request(&self) -> bool {
        !matches!(self, PendingKind::Produce { .. })
    }
}

/// What the producer may take from the application, as
/// [`ProducerCore::acceptance`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acceptance {
    /// Records are accepted (an open transaction, or an idempotent producer).
    Accepting,
    /// A commit or abort is completing: records wait for the next
    /// transaction.
    Completing,
    /// No transaction is open: `begin` first.
    NoTransaction,
    /// Failed: records are refused with this error (only `abort` helps
    /// when it is abortable).
    Failed(TxnError),
}

/// Probe answers after which the next probe waits a millisecond instead of
/// going at once.
const PROBE_AT_ONCE: u32 = 4;

/// The completion probe's progress (see the module docs): the previous
/// transaction's EndTxn succeeded at most `concurrent_transactions_backoff_ms`
/// ago and the coordinator may still be writing its markers.
#[derive(Debug, Clone, Copy)]
struct Completing {
    /// The probe window ends here.
    until: Millis,
    /// Answers so far that said "still completing".
    answers: u32,
    /// The next probe goes no earlier.
    not_before: Millis,
}

/// What decides, besides each partition's own ledger, whether a partition
/// may send: the identity, whether new batches may be stamped, the flow and
/// (flow v1) how many partitions the transaction has.
type ReadyKey = (Option<ProducerIdentity>, bool, Option<Flow>, usize);

/// The idempotent and transactional producer core. No I/O, deterministic:
/// the same inputs give the same outputs.
#[derive(Debug, Clone)]
pub struct ProducerCore {
    config: Config,
    broker: BrokerInfo,
    state: TxnState,
    identity: Option<ProducerIdentity>,
    ledgers: BTreeMap<TopicPartition, Ledger>,
    next_batch: u64,
    next_offsets: u64,
    next_request: u64,
    pending: BTreeMap<RequestId, Pending>,
    txn_coordinator: Coordinator,
    group_coordinators: BTreeMap<String, Coordinator>,
    coordinator_not_before: Millis,
    /// Set by a successful EndTxn; see the module docs.
    completing: Option<Completing>,
    /// The coordinator cannot answer the probe (authorization, version).
    probe_refused: bool,
    events: VecDeque<Event>,
    now: Millis,
    /// The partition that sent last: the round robin of Produce requests
    /// starts after it.
    cursor: Option<TopicPartition>,
    /// No batch outside a request expires before this instant (a lower
    /// bound, exact after each scan): `expire_batches` scans only from it.
    expiry_check_at: Millis,
    /// Partitions that may have something to send: every such partition is
    /// here, or `all_ready` is set (a partition leaves once it offers
    /// nothing and waits for no backoff; enqueues and outcomes bring it
    /// back). Keeps a turn of `poll_request` from walking idle partitions.
    ready: BTreeSet<TopicPartition>,
    /// Something that concerns every partition changed (identity, state,
    /// the transaction's partitions): the next Produce poll looks at all.
    all_ready: bool,
    /// What `all_ready` was last computed from (see `next_produce_request`).
    ready_key: Option<ReadyKey>,
    /// Partitions whose sequence state may have changed since
    /// `maybe_reset_partitions` last looked at them.
    reset_check: BTreeSet<TopicPartition>,
    /// The identity `maybe_reset_partitions` last looked under (a new one:
    /// it looks at every partition).
    reset_scanned_for: Option<ProducerIdentity>,
    /// Coordinator requests in `pending` (at most one goes at a time).
    coordinator_pending: usize,
    /// Ledgers the per-call scans examined, for the unit test that keeps
    /// them linear in the partitions (`scale_tests`).
    ledger_visits: u64,
}

impl ProducerCore {
    /// A new core in [`TxnState::Uninitialized`]. `broker` is what the driver
    /// negotiated so far; update it with
    /// [`set_broker_info`](ProducerCore::set_broker_info).
    pub fn new(config: Config, broker: BrokerInfo) -> Self {
        Self {
            config,
            broker,
            state: TxnState::Uninitialized,
            identity: None,
            ledgers: BTreeMap::new(),
            next_batch: 0,
            next_offsets: 0,
            next_request: 0,
            pending: BTreeMap::new(),
            txn_coordinator: Coordinator::default(),
            group_coordinators: BTreeMap::new(),
            coordinator_not_before: Millis(0),
            completing: None,
            probe_refused: false,
            events: VecDeque::new(),
            now: Millis(0),
            cursor: None,
            expiry_check_at: Millis(u64::MAX),
            ready: BTreeSet::new(),
            all_ready: false,
            ready_key: None,
            reset_check: BTreeSet::new(),
            reset_scanned_for: None,
            coordinator_pending: 0,
            ledger_visits: 0,
        }
    }

    // ----- getters -----

    /// The current state.
    pub fn state(&self) -> &TxnState {
        &self.state
    }

    /// The current (producer id, epoch), once initialized.
    pub fn identity(&self) -> Option<ProducerIdentity> {
        self.identity
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// What the core believes about the brokers.
    pub fn broker_info(&self) -> BrokerInfo {
        self.broker
    }

    /// Whether the producer is transactional.
    pub fn is_transactional(&self) -> bool {
        self.config.transactional_id.is_some()
    }

    /// Batches accepted and not yet resolved (delivered or failed).
    pub fn unresolved_batches(&self) -> usize {
        self.ledgers.values().map(|l| l.batches.len()).sum()
    }

    /// Requests emitted whose outcome has not been reported yet.
    pub fn requests_in_flight(&self) -> usize {
        self.pending.len()
    }

    /// What the producer may take from the application now (the driver's
    /// accumulator follows it).
    pub fn acceptance(&self) -> Acceptance {
        match &self.state {
            TxnState::Fatal { error } | TxnState::AbortableError { error, .. } => {
                Acceptance::Failed(error.clone())
            }
            _ if !self.is_transactional() => Acceptance::Accepting,
            TxnState::InTransaction { .. } => Acceptance::Accepting,
            TxnState::Committing { .. } | TxnState::Aborting { .. } => Acceptance::Completing,
            TxnState::Uninitialized | TxnState::Initializing { .. } | TxnState::Ready => {
                Acceptance::NoTransaction
            }
        }
    }

    /// The error `command` gets in the current state: what a driver answers
    /// a call it refuses on the core's behalf (a commit while the
    /// application's abort runs, or the reverse).
    pub fn refusal(&self, command: &'static str) -> UsageError {
        self.refuse(command)
    }

    /// Whether a commit or an abort is under way (its outcome event is still
    /// to come).
    pub fn ending_transaction(&self) -> bool {
        matches!(
            self.state,
            TxnState::Committing { .. } | TxnState::Aborting { .. }
        )
    }

    // ----- commands -----

    /// Updates the negotiated versions and finalized `transaction.version`.
    /// An open transaction keeps the flow it began with.
    pub fn set_broker_info(&mut self, broker: BrokerInfo) {
        self.broker = broker;
        self.touch_all();
    }

    /// Starts initialization (InitProducerId). Allowed once, from
    /// Uninitialized.
    pub fn init(&mut self, now: Millis) -> Result<(), UsageError> {
        self.advance(now);
        self.touch_all();
        self.state.start_init().map_err(|_| self.refuse("init"))
    }

    /// Begins a transaction. The flow (v1 or v2) is chosen now from the
    /// broker info and kept until the transaction ends.
    pub fn begin(&mut self, now: Millis) -> Result<(), UsageError> {
        self.advance(now);
        self.touch_all();
        if !self.is_transactional() {
            return Err(UsageError::NotTransactional);
        }
        match (&self.state, self.identity) {
            (TxnState::Initializing { reason }, _) if *reason != InitReason::First => {
                Err(UsageError::Reinitializing { command: "begin" })
            }
            (_, Some(identity)) => {
                let flow = self.broker.flow();
                self.state
                    .begin(flow, identity)
                    .map_err(|_| self.refuse("begin"))
            }
            (_, None) => Err(self.refuse("begin")),
        }
    }

    /// Accepts a closed batch of `record_count` records for `partition`. The
    /// core decides when it goes and with which stamp. A transactional
    /// producer accepts batches only inside a transaction; an idempotent one
    /// in any live state (they wait for the identity).
    pub fn enqueue(
        &mut self,
        now: Millis,
        partition: TopicPartition,
        record_count: u32,
    ) -> Result<BatchId, UsageError> {
        self.advance(now);
        if record_count == 0 || record_count > i32::MAX as u32 {
            return Err(UsageError::EmptyBatch);
        }
        if self.is_transactional() {
            match &mut self.state {
                TxnState::InTransaction { txn } => {
                    if txn.flow == Flow::V1 && !txn.partitions.contains(&partition) {
                        txn.pending_partitions.insert(partition.clone());
                    }
                }
                _ => return Err(self.refuse("enqueue")),
            }
        } else if let TxnState::Fatal { error } = &self.state {
            return Err(UsageError::Fatal(error.clone()));
        }
        let id = BatchId(self.next_batch);
        self.next_batch += 1;
        self.lower_expiry_check(now);
        self.ready.insert(partition.clone());
        self.ledgers
            .entry(partition)
            .or_default()
            .batches
            .push_back(Batch::new(id, record_count, now));
        Ok(id)
    }

    /// Adds consumed offsets to the transaction (KIP-447 group metadata).
    /// Flow v1: AddOffsetsToTxn then TxnOffsetCommit; flow v2: TxnOffsetCommit
    /// v5 only.
    ///
    /// Returns the call's handle: [`Event::OffsetsCommitted`] names it once
    /// its TxnOffsetCommit succeeded (the end of the transaction settles it
    /// otherwise).
    pub fn add_offsets(
        &mut self,
        now: Millis,
        group: GroupMetadata,
        offsets: Vec<OffsetCommit>,
    ) -> Result<OffsetsId, UsageError> {
        self.advance(now);
        if !self.is_transactional() {
            return Err(UsageError::NotTransactional);
        }
        let refused = self.refuse("add_offsets");
        let id = OffsetsId(self.next_offsets);
        match &mut self.state {
            TxnState::InTransaction { txn } => {
                let step = match txn.flow {
                    Flow::V1 => OffsetsStep::AddToTxn,
                    Flow::V2 => OffsetsStep::Commit,
                };
                txn.offsets.push(OffsetsJob {
                    id,
                    group,
                    offsets,
                    step,
                });
                self.next_offsets += 1;
                Ok(id)
            }
            _ => Err(refused),
        }
    }

    /// Commits the transaction: waits for every batch and offset commit,
    /// then sends EndTxn(commit). Refused once any batch of the transaction
    /// failed (KAFKA-9279). The result comes as [`Event::Committed`] or
    /// [`Event::AbortableError`] / [`Event::Fatal`].
    pub fn commit(&mut self, now: Millis) -> Result<(), UsageError> {
        self.advance(now);
        self.touch_all();
        if !self.is_transactional() {
            return Err(UsageError::NotTransactional);
        }
        self.state.commit().map_err(|_| self.refuse("commit"))
    }

    /// Aborts the transaction. Allowed in a transaction, after an abortable
    /// error, and during a commit whose EndTxn was not sent yet. Batches not
    /// in flight fail at once; the result comes as [`Event::Aborted`].
    pub fn abort(&mut self, now: Millis) -> Result<(), UsageError> {
        self.advance(now);
        self.touch_all();
        if !self.is_transactional() {
            return Err(UsageError::NotTransactional);
        }
        self.state.abort().map_err(|_| self.refuse("abort"))?;
        self.fail_idle_batches(DeliveryFailure::Aborted);
        Ok(())
    }

    /// On close: aborts a transaction the application left open (in
    /// progress, or failed and waiting for its abort), never one being
    /// committed or aborted. Returns whether an abort started.
    pub fn abort_left_open(&mut self, now: Millis) -> bool {
        matches!(
            self.state,
            TxnState::InTransaction { .. } | TxnState::AbortableError { .. }
        ) && self.abort(now).is_ok()
    }

    // ----- inputs -----

    /// Reports what became of request `id`. Unknown ids (a second outcome,
    /// an id never issued) are ignored.
    pub fn handle_outcome(&mut self, now: Millis, id: RequestId, outcome: Outcome) {
        self.advance(now);
        let Some(pending) = self.pending.remove(&id) else {
            return;
        };
        if pending.kind.is_coordinator_request() {
            self.coordinator_pending = self.coordinator_pending.saturating_sub(1);
            self.all_ready = true;
        }
        match pending.kind {
            PendingKind::Produce { partition, batch } => {
                self.on_produce(id, partition, batch, outcome)
            }
            kind => self.on_coordinator_outcome(pending.identity, kind, outcome),
        }
    }

    /// Lets time pass: expires batches past `delivery.timeout.ms`.
    pub fn handle_timeout(&mut self, now: Millis) {
        self.advance(now);
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    // ----- internals shared by the submodules -----

    /// A command or a coordinator answer may change what every partition
    /// may send.
    fn touch_all(&mut self) {
        self.all_ready = true;
    }

    fn advance(&mut self, now: Millis) {
        if now > self.now {
            self.now = now;
        }
        self.expire_batches();
    }

    fn refuse(&self, command: &'static str) -> UsageError {
        match &self.state {
            TxnState::Fatal { error } => UsageError::Fatal(error.clone()),
            TxnState::AbortableError { error, .. } if command != "abort" => {
                UsageError::MustAbort(error.clone())
            }
            state => UsageError::InvalidState {
                command,
                state: state.name(),
            },
        }
    }

    fn next_request_id(&mut self) -> RequestId {
        let id = RequestId(self.next_request);
        self.next_request += 1;
        id
    }

    fn coordinator_busy(&self) -> bool {
        self.coordinator_pending > 0
    }

    /// A batch created at `created` is (again) outside a request: it may
    /// expire at its delivery deadline.
    fn lower_expiry_check(&mut self, created: Millis) {
        let at = created.plus(self.config.delivery_timeout_ms);
        if at < self.expiry_check_at {
            self.expiry_check_at = at;
        }
    }

    fn backoff_coordinator(&mut self, ms: u64) {
        self.coordinator_not_before = self.now.plus(ms);
    }

    /// Enters Fatal: every batch fails, nothing is sent any more.
    fn fatal(&mut self, error: TxnError) {
        let error = TxnError {
            severity: Severity::Fatal,
            ..error
        };
        if !self.state.fail(error.clone()) {
            return;
        }
        let ledgers = std::mem::take(&mut self.ledgers);
        for (partition, ledger) in ledgers {
            for b in ledger.batches {
                self.fail_batch(&partition, &b, DeliveryFailure::ProducerFatal);
            }
        }
        self.events.push_back(Event::Fatal { error });
    }

    /// Records an abortable error: a transaction in progress (or a commit
    /// waiting for its batches) must now be aborted.
    fn abortable(&mut self, error: TxnError, risk: EpochRisk) {
        if risk == EpochRisk::EpochMoved && !self.broker.can_bump_epoch() {
            self.fatal(error);
            return;
        }
        let error = TxnError {
            severity: Severity::Abortable,
            ..error
        };
        // Outside a transaction (Ready, Initializing, Fatal) a late error
        // changes nothing.
        if let Ok(true) = self.state.abortable(error.clone(), risk) {
            self.events.push_back(Event::AbortableError { error });
        }
    }

    fn fail_batch(&mut self, partition: &TopicPartition, batch: &Batch, failure: DeliveryFailure) {
        self.events.push_back(Event::DeliveryFailed {
            batch: batch.id,
            error: DeliveryError {
                failure,
                partition: partition.clone(),
                maybe_written: batch.maybe_written(),
            },
        });
    }

    /// Fails every batch not in flight (abort, fatal).
    fn fail_idle_batches(&mut self, failure: DeliveryFailure) {
        self.all_ready = true;
        let mut failed = Vec::new();
        for (tp, ledger) in self.ledgers.iter_mut() {
            self.reset_check.insert(tp.clone());
            let (busy, idle): (VecDeque<Batch>, VecDeque<Batch>) =
                ledger.batches.drain(..).partition(Batch::in_flight);
            ledger.batches = busy;
            if !idle.is_empty() {
                // A gap may now exist behind the in-flight batches.
                ledger.needs_reset |= idle.iter().any(|b| b.stamp().is_some());
            }
            failed.extend(idle.into_iter().map(|b| (tp.clone(), b)));
        }
        for (tp, b) in failed {
            self.fail_batch(&tp, &b, failure);
        }
    }

    fn local_error(severity: Severity, reason: ErrorReason) -> TxnError {
        TxnError::local(severity, reason)
    }
}
