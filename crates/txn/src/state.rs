//! The transaction state machine (KIP-98, KIP-360, KIP-588, KIP-890).
//!
//! ```text
//!                 init()
//!  Uninitialized ─────────▶ Initializing ◀───────────────────────────────┐
//!                              │ InitProducerId ok                        │
//!                              ▼                                          │
//!   ┌─────────────────────▶  Ready  ◀──────────── local commit/abort      │
//!   │                          │ begin() (flow chosen here, never again)  │
//!   │                          ▼                                          │
//!   │                    InTransaction ──── batch/offset error ──┐        │
//!   │                     │         │ abort()                    ▼        │
//!   │            commit() │         └─────────▶ Aborting ◀── AbortableError
//!   │                     ▼                       │   abort()             │
//!   │                 Committing ── error ──▶ AbortableError              │
//!   │    EndTxn ok (v2:   │                       │ v1 EndTxn(abort) ok,  │
//!   │    new epoch) ◀─────┤                       │ epoch doubt: re-init ─┤
//!   │                     │ v1, EndTxn once       │ v2: EndTxn(abort) ok  │
//!   │                     │ unknown: re-init ─────┼───────────────────────┘
//!   └─────────────────────┴───────────────────────┘
//!
//!   any state ── fatal error (fenced, authorization, ...) ──▶ Fatal (terminal)
//! ```
//!
//! An idempotent-only producer uses Uninitialized, Initializing, Ready and
//! Fatal (and Initializing again when its epoch is exhausted).
//!
//! The EndTxn of a commit or abort has its own small machine,
//! [`EndTxnStatus`]: once an attempt's outcome is unknown the transaction can
//! only be ended by resending the same EndTxn, and under flow v1 the producer
//! re-initializes (bumping its epoch) before any new transaction, so a delayed
//! EndTxn can never decide a later transaction (KAFKA-17754).

use std::collections::BTreeSet;

use crate::config::Flow;
use crate::error::TxnError;
use crate::types::{GroupMetadata, OffsetCommit, OffsetsId, ProducerIdentity, TopicPartition};

/// The producer's state. Each variant carries the data that state needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnState {
    /// Nothing done yet: `init` starts.
    Uninitialized,
    /// Waiting for an identity from InitProducerId.
    Initializing {
        /// Why.
        reason: InitReason,
    },
    /// Has an identity, no transaction open.
    Ready,
    /// A transaction is open.
    InTransaction {
        /// The transaction.
        txn: Transaction,
    },
    /// `commit` was called: finishing batches and offsets, then EndTxn.
    Committing {
        /// The transaction.
        txn: Transaction,
        /// Progress of the EndTxn.
        end: EndTxnStatus,
    },
    /// `abort` was called.
    Aborting {
        /// The transaction.
        txn: Transaction,
        /// Progress of the EndTxn(abort) (flow v1 then bumps the epoch).
        end: EndTxnStatus,
    },
    /// Something in the transaction failed: only `abort` is allowed.
    AbortableError {
        /// The transaction.
        txn: Transaction,
        /// The first error.
        error: TxnError,
    },
    /// Dead. Every call fails with this error.
    Fatal {
        /// The error.
        error: TxnError,
    },
}

impl TxnState {
    /// The state's name, for messages.
    pub fn name(&self) -> &'static str {
        match self {
            TxnState::Uninitialized => "Uninitialized",
            TxnState::Initializing { .. } => "Initializing",
            TxnState::Ready => "Ready",
            TxnState::InTransaction { .. } => "InTransaction",
            TxnState::Committing { .. } => "Committing",
            TxnState::Aborting { .. } => "Aborting",
            TxnState::AbortableError { .. } => "AbortableError",
            TxnState::Fatal { .. } => "Fatal",
        }
    }

    /// The open transaction, if any.
    pub fn transaction(&self) -> Option<&Transaction> {
        match self {
            TxnState::InTransaction { txn }
            | TxnState::Committing { txn, .. }
            | TxnState::Aborting { txn, .. }
            | TxnState::AbortableError { txn, .. } => Some(txn),
            _ => None,
        }
    }

    pub(crate) fn transaction_mut(&mut self) -> Option<&mut Transaction> {
        match self {
            TxnState::InTransaction { txn }
            | TxnState::Committing { txn, .. }
            | TxnState::Aborting { txn, .. }
            | TxnState::AbortableError { txn, .. } => Some(txn),
            _ => None,
        }
    }
}

/// Why the producer is (re-)initializing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InitReason {
    /// The user's `init`.
    First,
    /// The epoch is exhausted: a new producer id is needed (never wrap).
    NewProducerId,
    /// Completing an abort with InitProducerId and the current identity:
    /// under flow v1 after EndTxn(abort) succeeded (the epoch bump fences
    /// every late request of the aborted transaction), and instead of EndTxn
    /// when the epoch may have moved (KIP-588). The abort completes with it.
    Abort {
        /// The aborted transaction's identity.
        aborted: ProducerIdentity,
        /// Groups whose offsets the abort discarded.
        rewind: Vec<(String, Vec<TopicPartition>)>,
    },
    /// Flow v1: a request of the committed transaction that carries no
    /// sequence (its EndTxn, KAFKA-17754, or a TxnOffsetCommit) was once
    /// unanswered and may still land; bump the epoch before any new
    /// transaction so that it is fenced instead of deciding a later one.
    FenceLateRequests,
    /// EndTxn v5 answered without a usable identity.
    MissingIdentity,
}

/// Progress of a commit's or abort's EndTxn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndTxnStatus {
    /// Batches, partition adds or offsets are still outstanding.
    Waiting,
    /// EndTxn sent (or to be re-sent); every answer so far excluded that it
    /// was applied.
    Sent,
    /// An EndTxn attempt may have been applied without our knowing: only the
    /// same EndTxn may follow, and (flow v1) a re-init before the next
    /// transaction.
    OutcomeUnknown,
}

/// One open transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transaction {
    /// The flow chosen at `begin`.
    pub flow: Flow,
    /// The identity the transaction runs under.
    pub identity: ProducerIdentity,
    /// Partitions in the transaction (v1: AddPartitionsToTxn succeeded; v2:
    /// produced to).
    pub partitions: BTreeSet<TopicPartition>,
    /// Flow v1: partitions waiting for AddPartitionsToTxn; their batches wait.
    pub pending_partitions: BTreeSet<TopicPartition>,
    /// Offset commits of this transaction, in call order.
    pub offsets: Vec<OffsetsJob>,
    /// Some request of this transaction was sent: the coordinator may know it,
    /// so it must be ended on the broker, not just locally.
    pub started: bool,
    /// The broker acknowledged a request that opens the transaction on the
    /// coordinator (flow v1: AddPartitionsToTxn or AddOffsetsToTxn; flow
    /// v2: a Produce or a TxnOffsetCommit, which add their partition
    /// implicitly). While `started` but not `acknowledged`, the coordinator
    /// may never have heard of the transaction (every opening request was
    /// lost with the connection): a flow v1 EndTxn(abort) is then answered
    /// INVALID_TXN_STATE, which means "nothing to abort", not a fatal error.
    pub acknowledged: bool,
    /// The epoch may have moved under us (KIP-588): abort by InitProducerId
    /// with the current identity.
    pub recover_epoch: bool,
    /// A TxnOffsetCommit of this transaction went unanswered: under flow v1
    /// it could land in a later transaction of the same epoch (found by the
    /// simulation), so the epoch is bumped after this one.
    pub late_request_risk: bool,
}

impl Transaction {
    pub(crate) fn new(flow: Flow, identity: ProducerIdentity) -> Self {
        Self {
            flow,
            identity,
            partitions: BTreeSet::new(),
            pending_partitions: BTreeSet::new(),
            offsets: Vec::new(),
            started: false,
            acknowledged: false,
            recover_epoch: false,
            late_request_risk: false,
        }
    }

    pub(crate) fn rewind_list(&self) -> Vec<(String, Vec<TopicPartition>)> {
        self.offsets
            .iter()
            .map(|j| {
                (
                    j.group.group_id.clone(),
                    j.offsets.iter().map(|o| o.partition.clone()).collect(),
                )
            })
            .collect()
    }
}

/// One `add_offsets` call's progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetsJob {
    /// The `add_offsets` call's handle.
    pub id: OffsetsId,
    /// Group metadata (KIP-447).
    pub group: GroupMetadata,
    /// The offsets.
    pub offsets: Vec<OffsetCommit>,
    /// Where it is.
    pub step: OffsetsStep,
}

/// Steps of a transactional offset commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetsStep {
    /// Flow v1: AddOffsetsToTxn to the transaction coordinator.
    AddToTxn,
    /// TxnOffsetCommit to the group coordinator.
    Commit,
    /// Done.
    Done,
}
