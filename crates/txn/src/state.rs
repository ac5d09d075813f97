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
//! Every arrow is one method of [`TxnState`] below, in the diagram's order
//! (`start_init`, `initialized`, `begin`, `commit`, `abort`, `abortable`,
//! `send_end`, `end_unknown`, `end_locally`, `ended`, `reinitialize`,
//! `fail`): each matches on the state it leaves and returns
//! [`IllegalTransition`] (changing nothing) when the state does not allow
//! it. The core (`core/`) decides *when* to move; only these methods move.
//! Within a state, what changes is data of [`Transaction`] (partitions
//! added, [`Opening`] progress, [`EpochRisk`]).
//!
//! Where each arrow is taken: commands in `core/mod.rs` (`init`, `begin`,
//! `commit`, `abort`); answers in `core/coordinator.rs` (InitProducerId,
//! EndTxn, errors) and `core/produce.rs` (batch errors, the idempotent
//! producer's new id); the local endings in `core/poll.rs` (`progress`).
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

/// A move the state does not allow; nothing changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IllegalTransition {
    /// The state's name.
    pub from: &'static str,
    /// The move asked for.
    pub to: &'static str,
}

impl std::fmt::Display for IllegalTransition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "no move from {} to {}", self.from, self.to)
    }
}

/// The transitions, one per arrow of the diagram in the module docs.
impl TxnState {
    fn illegal<T>(&self, to: &'static str) -> Result<T, IllegalTransition> {
        Err(IllegalTransition {
            from: self.name(),
            to,
        })
    }

    /// `init()`: Uninitialized → Initializing (first identity).
    pub(crate) fn start_init(&mut self) -> Result<(), IllegalTransition> {
        match self {
            TxnState::Uninitialized => {
                *self = TxnState::Initializing {
                    reason: InitReason::First,
                };
                Ok(())
            }
            _ => self.illegal("Initializing"),
        }
    }

    /// InitProducerId succeeded: Initializing → Ready. Returns why it
    /// initialized (an abort completes with it).
    pub(crate) fn initialized(&mut self) -> Result<InitReason, IllegalTransition> {
        match self {
            TxnState::Initializing { reason } => {
                let reason = reason.clone();
                *self = TxnState::Ready;
                Ok(reason)
            }
            _ => self.illegal("Ready"),
        }
    }

    /// `begin()`: Ready → InTransaction, with the flow chosen now.
    pub(crate) fn begin(
        &mut self,
        flow: Flow,
        identity: ProducerIdentity,
    ) -> Result<(), IllegalTransition> {
        match self {
            TxnState::Ready => {
                *self = TxnState::InTransaction {
                    txn: Transaction::new(flow, identity),
                };
                Ok(())
            }
            _ => self.illegal("InTransaction"),
        }
    }

    /// `commit()`: InTransaction → Committing (waiting for its batches and
    /// offsets).
    pub(crate) fn commit(&mut self) -> Result<(), IllegalTransition> {
        match self {
            TxnState::InTransaction { txn } => {
                *self = TxnState::Committing {
                    txn: txn.clone(),
                    end: EndTxnStatus::Waiting,
                };
                Ok(())
            }
            _ => self.illegal("Committing"),
        }
    }

    /// `abort()`: InTransaction, AbortableError, or a commit whose EndTxn
    /// was not sent → Aborting.
    pub(crate) fn abort(&mut self) -> Result<(), IllegalTransition> {
        match self {
            TxnState::InTransaction { txn }
            | TxnState::AbortableError { txn, .. }
            | TxnState::Committing {
                txn,
                end: EndTxnStatus::Waiting,
            } => {
                *self = TxnState::Aborting {
                    txn: txn.clone(),
                    end: EndTxnStatus::Waiting,
                };
                Ok(())
            }
            _ => self.illegal("Aborting"),
        }
    }

    /// A batch, offset or EndTxn error: InTransaction or Committing →
    /// AbortableError (returns `true`: the application must learn it). In
    /// AbortableError or Aborting only `risk` is raised (`false`).
    pub(crate) fn abortable(
        &mut self,
        error: TxnError,
        risk: EpochRisk,
    ) -> Result<bool, IllegalTransition> {
        match self {
            TxnState::InTransaction { txn } | TxnState::Committing { txn, .. } => {
                let mut txn = txn.clone();
                txn.raise_risk(risk);
                *self = TxnState::AbortableError { txn, error };
                Ok(true)
            }
            TxnState::AbortableError { txn, .. } | TxnState::Aborting { txn, .. } => {
                txn.raise_risk(risk);
                Ok(false)
            }
            _ => self.illegal("AbortableError"),
        }
    }

    /// Nothing is outstanding: Committing or Aborting (waiting) → the same,
    /// with its EndTxn to be sent.
    pub(crate) fn send_end(&mut self) -> Result<(), IllegalTransition> {
        match self {
            TxnState::Committing { end, .. } | TxnState::Aborting { end, .. }
                if *end == EndTxnStatus::Waiting =>
            {
                *end = EndTxnStatus::Sent;
                Ok(())
            }
            _ => self.illegal("EndTxn sent"),
        }
    }

    /// An EndTxn attempt of this commit (`commit`) or abort may have been
    /// applied: only the same EndTxn may follow.
    pub(crate) fn end_unknown(&mut self, commit: bool) -> Result<(), IllegalTransition> {
        match self {
            TxnState::Committing { end, .. } if commit => {
                *end = EndTxnStatus::OutcomeUnknown;
                Ok(())
            }
            TxnState::Aborting { end, .. } if !commit => {
                *end = EndTxnStatus::OutcomeUnknown;
                Ok(())
            }
            _ => self.illegal("EndTxn outcome unknown"),
        }
    }

    /// A transaction the coordinator never heard of ends with no request:
    /// Committing or Aborting → Ready. Returns it.
    pub(crate) fn end_locally(&mut self) -> Result<Transaction, IllegalTransition> {
        match self {
            TxnState::Committing { txn, .. } | TxnState::Aborting { txn, .. } if !txn.started() => {
                let txn = txn.clone();
                *self = TxnState::Ready;
                Ok(txn)
            }
            _ => self.illegal("Ready"),
        }
    }

    /// EndTxn succeeded: Committing or Aborting → `next` (Ready, or
    /// Initializing when the epoch must move first).
    pub(crate) fn ended(&mut self, next: TxnState) -> Result<(), IllegalTransition> {
        match (&*self, &next) {
            (
                TxnState::Committing { .. } | TxnState::Aborting { .. },
                TxnState::Ready | TxnState::Initializing { .. },
            ) => {
                *self = next;
                Ok(())
            }
            _ => self.illegal(next.name()),
        }
    }

    /// A new identity is needed first: an abort that completes with an
    /// epoch bump (from Aborting), or an idempotent producer's exhausted
    /// epoch (from Ready).
    pub(crate) fn reinitialize(&mut self, reason: InitReason) -> Result<(), IllegalTransition> {
        match self {
            TxnState::Aborting { .. } | TxnState::Ready => {
                *self = TxnState::Initializing { reason };
                Ok(())
            }
            _ => self.illegal("Initializing"),
        }
    }

    /// A fatal error: any state → Fatal (terminal; a second one keeps the
    /// first error). Returns whether it entered now.
    pub(crate) fn fail(&mut self, error: TxnError) -> bool {
        if let TxnState::Fatal { .. } = self {
            return false;
        }
        *self = TxnState::Fatal { error };
        true
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
    /// How far the coordinator may know of the transaction.
    pub opening: Opening,
    /// What the transaction's end must also fence.
    pub epoch_risk: EpochRisk,
}

/// How far the coordinator may know of a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Opening {
    /// Nothing of it was sent: it can end locally.
    Unsent,
    /// Some request of it was sent: the coordinator may know it, so it must
    /// be ended on the broker, not just locally; but it may also never have
    /// heard of it (every opening request lost with the connection): a flow
    /// v1 EndTxn(abort) is then answered INVALID_TXN_STATE, which means
    /// "nothing to abort", not a fatal error.
    Sent,
    /// The broker acknowledged a request that opens it on the coordinator
    /// (flow v1: AddPartitionsToTxn or AddOffsetsToTxn; flow v2: a Produce
    /// or a TxnOffsetCommit, which add their partition implicitly).
    Acknowledged,
}

/// What the end of a transaction must also take care of. Only rises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum EpochRisk {
    /// Nothing: end it with EndTxn.
    None,
    /// A TxnOffsetCommit of it went unanswered: under flow v1 it could land
    /// in a later transaction of the same epoch (found by the simulation),
    /// so the epoch is bumped after this one.
    LateRequests,
    /// The epoch may have moved under us (KIP-588): abort by InitProducerId
    /// with the current identity.
    EpochMoved,
}

impl Transaction {
    pub(crate) fn new(flow: Flow, identity: ProducerIdentity) -> Self {
        Self {
            flow,
            identity,
            partitions: BTreeSet::new(),
            pending_partitions: BTreeSet::new(),
            offsets: Vec::new(),
            opening: Opening::Unsent,
            epoch_risk: EpochRisk::None,
        }
    }

    /// Some request of it goes out.
    pub(crate) fn mark_sent(&mut self) {
        self.opening = self.opening.max(Opening::Sent);
    }

    /// The broker acknowledged a request that opens it.
    pub(crate) fn mark_acknowledged(&mut self) {
        self.opening = Opening::Acknowledged;
    }

    /// Whether the coordinator may know it (it must end on the broker).
    pub fn started(&self) -> bool {
        self.opening != Opening::Unsent
    }

    /// Raises what its end must fence.
    pub(crate) fn raise_risk(&mut self, risk: EpochRisk) {
        self.epoch_risk = self.epoch_risk.max(risk);
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::error::{ErrorReason, Severity};

    fn id() -> ProducerIdentity {
        ProducerIdentity::new(1, 0)
    }

    fn err() -> TxnError {
        TxnError::local(Severity::Abortable, ErrorReason::BatchFailed)
    }

    #[test]
    fn illegal_moves_are_errors_and_change_nothing() {
        let mut s = TxnState::Ready;
        assert_eq!(
            s.commit(),
            Err(IllegalTransition {
                from: "Ready",
                to: "Committing"
            })
        );
        assert!(s.abort().is_err());
        assert!(s.send_end().is_err());
        assert!(s.end_unknown(true).is_err());
        assert!(s.end_locally().is_err());
        assert!(s.initialized().is_err());
        assert!(s.start_init().is_err());
        assert!(s.abortable(err(), EpochRisk::None).is_err());
        assert!(s.ended(TxnState::Ready).is_err());
        assert_eq!(s, TxnState::Ready);

        s.begin(Flow::V2, id()).unwrap();
        assert!(
            s.begin(Flow::V2, id()).is_err(),
            "one transaction at a time"
        );
        assert!(s.reinitialize(InitReason::NewProducerId).is_err());
        assert!(s.ended(TxnState::Ready).is_err(), "not ending");
        s.commit().unwrap();
        // The EndTxn goes only once nothing is outstanding; then abort is
        // no longer allowed.
        s.send_end().unwrap();
        assert!(s.abort().is_err());
        assert!(s.end_unknown(false).is_err(), "not aborting");
        s.end_unknown(true).unwrap();
        assert!(matches!(
            s,
            TxnState::Committing {
                end: EndTxnStatus::OutcomeUnknown,
                ..
            }
        ));
        assert!(s.ended(TxnState::Uninitialized).is_err());
        s.ended(TxnState::Ready).unwrap();

        assert!(s.fail(err()));
        assert!(!s.fail(err()), "Fatal keeps its first error");
        assert!(s.begin(Flow::V2, id()).is_err());
    }

    #[test]
    fn risk_and_opening_only_rise() {
        let mut s = TxnState::Ready;
        s.begin(Flow::V1, id()).unwrap();
        assert_eq!(s.abortable(err(), EpochRisk::EpochMoved), Ok(true));
        assert_eq!(s.abortable(err(), EpochRisk::LateRequests), Ok(false));
        let txn = s.transaction().unwrap();
        assert_eq!(txn.epoch_risk, EpochRisk::EpochMoved);
        let mut t = txn.clone();
        t.mark_acknowledged();
        t.mark_sent();
        assert_eq!(t.opening, Opening::Acknowledged);
        assert!(t.started());
    }
}
