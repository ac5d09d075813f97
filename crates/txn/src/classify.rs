//! The one error classifier: `classify(api, version, code, context)`.
//!
//! Every response error the core meets goes through [`classify`]; no call site
//! decides on its own whether to retry. The table follows the Java client's
//! handlers (JAVA-CLIENT-RULES.md §2, §3) and KIP-98, KIP-360, KIP-447,
//! KIP-588, KIP-890 and KIP-1050, with these deliberate differences:
//!
//! - An error the handler did not expect is *abortable* for the requests made
//!   inside a transaction (AddPartitionsToTxn, AddOffsetsToTxn,
//!   TxnOffsetCommit, a transactional Produce), not fatal: an abort is always
//!   a safe way out and keeps the producer. For InitProducerId and EndTxn it
//!   stays fatal: their outcome decides identities and commits.
//! - INVALID_PRODUCER_EPOCH from the transaction coordinator, and from Produce
//!   in a transaction, is [`ErrorClass::AbortableRecoverEpoch`] when the
//!   broker supports InitProducerId v3+: the coordinator may have bumped the
//!   epoch after a transaction timeout (KIP-588), and InitProducerId with the
//!   current identity either recovers or answers PRODUCER_FENCED. The Java
//!   client treats it as fenced.
//! - TRANSACTION_ABORTABLE from InitProducerId is retried: re-initializing is
//!   itself the recovery.
//! - Group errors of TxnOffsetCommit (REBALANCE_IN_PROGRESS too) are
//!   abortable: a rebalance aborts the transaction, it does not kill the
//!   producer.
//! - INVALID_TXN_STATE answering EndTxn(commit) is
//!   [`ErrorClass::AbortableRecoverEpoch`], not fatal: a real 4.3.1
//!   coordinator (transaction.version 2) answers it when the transaction was
//!   aborted on timeout and the epoch bumped (KIP-588); InitProducerId with
//!   the current identity then recovers the same producer, or answers
//!   PRODUCER_FENCED if another producer took over. An EndTxn that was once
//!   unanswered stays fatal (the core's rule: it may have committed).
//! - INVALID_TXN_STATE answering EndTxn(abort) of a transaction no opening
//!   request of which was acknowledged is
//!   [`ErrorClass::Abortable`]: under transaction.version 1 the
//!   coordinator answers it when it never saw the transaction (the
//!   AddPartitionsToTxn was lost with a broker that died); there is nothing
//!   to abort, and the epoch bump that completes the abort fences the lost
//!   request should it still arrive. Found by T4 (broker kill -9 during a
//!   copy). Once the transaction was acknowledged it stays fatal.
//! - PRODUCER_FENCED answering EndTxn(abort) under transaction version 2
//!   (EndTxn v5+) of a transaction no opening request of which was
//!   acknowledged is [`ErrorClass::AbortableRecoverEpoch`]: the v2
//!   coordinator answers it to any EndTxn after a completed transaction
//!   (our unseen one included); InitProducerId with the current identity
//!   then recovers, or answers PRODUCER_FENCED if the fence is real. Also
//!   found by T4. The Java client treats it as fenced.
//! - An unexpected error of an idempotent-only Produce is
//!   [`ErrorClass::OutcomeUnknown`]: the same bytes are retried until
//!   `delivery.timeout.ms`, and the batch is never reported as unwritten.

use exactly_codec::messages::ApiKey;
use exactly_codec::ErrorCode;

/// What the core does about an error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// Not an error for this request (DUPLICATE_SEQUENCE_NUMBER on Produce:
    /// the batch was already written).
    Success,
    /// The request was not applied; send it again after a backoff.
    Retriable,
    /// The request was not applied because our metadata is stale: refresh it,
    /// then send the same request again.
    RefreshMetadata,
    /// The coordinator moved or is not there: look it up again, then retry.
    FindCoordinator,
    /// The request may have been applied: retry the same bytes, never treat
    /// the data as unwritten, never reset sequences beneath it.
    OutcomeUnknown,
    /// Idempotent-only producer: the partition's sequence state is broken;
    /// bump the epoch and restart sequences (KIP-360), when safe.
    BumpEpoch,
    /// Idempotent-only producer: the batch was rejected and is not written.
    Rejected,
    /// The transaction must be aborted.
    Abortable,
    /// The transaction must be aborted, and the abort must re-initialize with
    /// the current identity (KIP-588) because the epoch may have moved.
    AbortableRecoverEpoch,
    /// The producer is dead.
    Fatal,
}

impl ErrorClass {
    /// Whether the same request may simply be sent again.
    pub fn is_retriable(self) -> bool {
        matches!(
            self,
            ErrorClass::Retriable
                | ErrorClass::RefreshMetadata
                | ErrorClass::FindCoordinator
                | ErrorClass::OutcomeUnknown
        )
    }

    /// Whether the transaction must be aborted.
    pub fn is_abortable(self) -> bool {
        matches!(
            self,
            ErrorClass::Abortable | ErrorClass::AbortableRecoverEpoch
        )
    }

    /// Whether the producer is dead.
    pub fn is_fatal(self) -> bool {
        self == ErrorClass::Fatal
    }
}

/// What the classifier needs to know besides the code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Context {
    /// The producer has a `transactional.id`.
    pub transactional: bool,
    /// Produce: the batch is the lowest unacknowledged batch of its
    /// partition (an out-of-order answer to a later batch only means an
    /// earlier one has not landed yet).
    pub head_batch: bool,
    /// The coordinator accepts InitProducerId with the current identity
    /// (v3+, KIP-360), so an epoch can be bumped or recovered.
    pub can_bump_epoch: bool,
    /// EndTxn: the request commits (`false`: aborts).
    pub commit: bool,
    /// FindCoordinator: the key is a consumer group.
    pub group: bool,
    /// EndTxn: the broker acknowledged a request that opened the
    /// transaction on the coordinator (see `Transaction::acknowledged`).
    pub acknowledged: bool,
}

/// Classifies `code` returned by `api` at `version` in `ctx`.
///
/// The only version-dependent rows: CONCURRENT_TRANSACTIONS is a normal
/// answer to Produce only at v12+ (implicit partition add, KIP-890), and
/// before InitProducerId v4 the broker reports fencing as
/// INVALID_PRODUCER_EPOCH (KIP-588 added PRODUCER_FENCED), so there it is
/// fatal.
pub fn classify(api: ApiKey, version: i16, code: ErrorCode, ctx: &Context) -> ErrorClass {
    use ErrorClass as C;
    use ErrorCode as E;
    // The one PRODUCER_FENCED that is not proof of a fence: an abort, under
    // transaction version 2 (EndTxn v5+), of a transaction no opening
    // request of which was acknowledged. A v2 coordinator in CompleteCommit
    // or CompleteAbort accepts only a retry of the EndTxn that bumped the
    // epoch and answers any other EndTxn PRODUCER_FENCED, the current epoch
    // included: so a coordinator that never saw the transaction (its first
    // Produce expired or was lost while the coordinator's node restarted)
    // answers our abort this way. InitProducerId with the current identity
    // tells the two apart (KIP-588): it bumps the epoch if no other producer
    // initialized, and answers PRODUCER_FENCED if one did. Found by T4
    // (SIGTERM of the coordinator's node during a copy).
    if api == ApiKey::EndTxn
        && code == E::ProducerFenced
        && version >= 5
        && !ctx.commit
        && !ctx.acknowledged
        && ctx.can_bump_epoch
    {
        return C::AbortableRecoverEpoch;
    }
    // Fatal to any producer, whatever the API (Java `maybeTransitionToErrorState`).
    if matches!(
        code,
        E::ProducerFenced
            | E::TransactionalIdAuthorizationFailed
            | E::UnsupportedVersion
            | E::InvalidProducerIdMapping
    ) {
        return C::Fatal;
    }
    let in_txn_abortable = if ctx.transactional {
        C::Abortable
    } else {
        C::Rejected
    };
    let recover_epoch = if ctx.can_bump_epoch {
        C::AbortableRecoverEpoch
    } else {
        C::Fatal
    };
    let unknown_producer = if ctx.can_bump_epoch {
        C::Abortable
    } else {
        C::Fatal
    };
    match api {
        ApiKey::Produce => match code {
            E::DuplicateSequenceNumber => C::Success,
            E::NotLeaderOrFollower
            | E::UnknownTopicOrPartition
            | E::LeaderNotAvailable
            | E::FencedLeaderEpoch
            | E::UnknownLeaderEpoch
            | E::UnknownTopicId
            | E::InconsistentTopicId
            | E::ReplicaNotAvailable
            | E::BrokerNotAvailable => C::RefreshMetadata,
            E::NotEnoughReplicas | E::CorruptMessage | E::ThrottlingQuotaExceeded => C::Retriable,
            E::ConcurrentTransactions if version >= 12 => C::Retriable,
            E::RequestTimedOut
            | E::NotEnoughReplicasAfterAppend
            | E::NetworkException
            | E::KafkaStorageError => C::OutcomeUnknown,
            E::OutOfOrderSequenceNumber | E::UnknownProducerId => {
                if !ctx.head_batch {
                    C::Retriable
                } else if ctx.transactional {
                    C::Abortable
                } else {
                    C::BumpEpoch
                }
            }
            E::InvalidProducerEpoch => {
                if ctx.transactional {
                    recover_epoch
                } else {
                    C::BumpEpoch
                }
            }
            E::ClusterAuthorizationFailed | E::UnsupportedForMessageFormat => C::Fatal,
            E::TransactionAbortable
            | E::InvalidTxnState
            | E::MessageTooLarge
            | E::RecordListTooLarge
            | E::InvalidRecord
            | E::InvalidTimestamp
            | E::TopicAuthorizationFailed
            | E::InvalidRequiredAcks
            | E::InvalidTopicException
            | E::PolicyViolation
            | E::UnsupportedCompressionType
            | E::InvalidRequest => in_txn_abortable,
            _ => {
                if ctx.transactional {
                    C::Abortable
                } else {
                    C::OutcomeUnknown
                }
            }
        },
        ApiKey::FindCoordinator => match code {
            E::CoordinatorNotAvailable
            | E::NotCoordinator
            | E::CoordinatorLoadInProgress
            | E::RequestTimedOut
            | E::NetworkException => C::Retriable,
            _ if ctx.group => C::Abortable,
            _ => C::Fatal,
        },
        ApiKey::InitProducerId => match code {
            E::NotCoordinator | E::CoordinatorNotAvailable if ctx.transactional => {
                C::FindCoordinator
            }
            E::NotCoordinator
            | E::CoordinatorNotAvailable
            | E::CoordinatorLoadInProgress
            | E::ConcurrentTransactions
            | E::RequestTimedOut
            | E::NetworkException
            | E::TransactionAbortable => C::Retriable,
            _ => C::Fatal,
        },
        ApiKey::AddPartitionsToTxn => match code {
            E::NotCoordinator | E::CoordinatorNotAvailable => C::FindCoordinator,
            E::CoordinatorLoadInProgress
            | E::ConcurrentTransactions
            | E::RequestTimedOut
            | E::UnknownTopicOrPartition
            | E::NetworkException => C::Retriable,
            E::InvalidTxnState => C::Fatal,
            E::InvalidProducerEpoch => recover_epoch,
            E::UnknownProducerId => unknown_producer,
            _ => C::Abortable,
        },
        ApiKey::AddOffsetsToTxn => match code {
            E::NotCoordinator | E::CoordinatorNotAvailable => C::FindCoordinator,
            E::CoordinatorLoadInProgress
            | E::ConcurrentTransactions
            | E::RequestTimedOut
            | E::UnknownTopicOrPartition
            | E::NetworkException => C::Retriable,
            E::InvalidTxnState => C::Fatal,
            E::InvalidProducerEpoch => recover_epoch,
            E::UnknownProducerId => unknown_producer,
            _ => C::Abortable,
        },
        ApiKey::TxnOffsetCommit => match code {
            E::NotCoordinator | E::CoordinatorNotAvailable | E::RequestTimedOut => {
                C::FindCoordinator
            }
            E::CoordinatorLoadInProgress
            | E::UnknownTopicOrPartition
            | E::UnstableOffsetCommit
            | E::ConcurrentTransactions
            | E::NetworkException => C::Retriable,
            E::UnsupportedForMessageFormat => C::Fatal,
            E::InvalidProducerEpoch => recover_epoch,
            _ => C::Abortable,
        },
        ApiKey::EndTxn => match code {
            E::NotCoordinator | E::CoordinatorNotAvailable => C::FindCoordinator,
            E::CoordinatorLoadInProgress | E::ConcurrentTransactions | E::NetworkException => {
                C::Retriable
            }
            E::RequestTimedOut => C::OutcomeUnknown,
            E::InvalidProducerEpoch => recover_epoch,
            E::InvalidTxnState if ctx.commit => recover_epoch,
            // Nothing to abort: no request that opens the transaction was
            // acknowledged, and the coordinator (transaction.version 1:
            // Empty, PrepareCommit or CompleteCommit) never saw one. The
            // abort completes by bumping the epoch, which also fences a
            // lost AddPartitionsToTxn that might still arrive (without
            // KIP-360, a plain InitProducerId bumps it just the same).
            E::InvalidTxnState if !ctx.acknowledged => C::Abortable,
            E::UnknownProducerId => unknown_producer,
            // KAFKA-19250: an abort answered TRANSACTION_ABORTABLE would loop.
            E::TransactionAbortable if ctx.commit => C::Abortable,
            _ => C::Fatal,
        },
        _ => C::Fatal,
    }
}
