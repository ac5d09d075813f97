//! The core's outputs (requests with their target, events) and the answers
//! the driver feeds back ([`Outcome`], [`Response`]).
//!
//! The enums carry exactly the fields the core needs. The producer driver maps
//! a [`Request`] to the kafka-protocol struct of the version it negotiated
//! (within the bounds [`Flow`] sets) and maps the answer back to a
//! [`Response`].

use exactly_codec::messages::ApiKey;
use exactly_codec::ErrorCode;

use crate::config::Flow;
use crate::error::{DeliveryError, TxnError};
use crate::types::{
    BatchId, GroupMetadata, NodeId, OffsetCommit, OffsetsId, ProducerIdentity, Stamp,
    TopicPartition,
};

/// Where a request must go.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    /// Any broker (the driver picks the least loaded).
    AnyBroker,
    /// The current leader of this partition (the driver's metadata knows it).
    Leader(TopicPartition),
    /// The transaction coordinator found by the core's FindCoordinator.
    TransactionCoordinator(NodeId),
    /// The group coordinator of a consumer group.
    GroupCoordinator {
        /// The group.
        group_id: String,
        /// Its coordinator.
        node: NodeId,
    },
}

/// FindCoordinator's key type (defined once, in exactly-codec).
pub use exactly_codec::CoordinatorType;

/// A request for the driver to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// FindCoordinator.
    FindCoordinator {
        /// Group or transaction.
        key_type: CoordinatorType,
        /// The group id or transactional id.
        key: String,
    },
    /// InitProducerId: a new identity, or (with `current`) an epoch bump
    /// (KIP-360) or timeout recovery (KIP-588).
    InitProducerId {
        /// `None` for an idempotent-only producer.
        transactional_id: Option<String>,
        /// `transaction.timeout.ms` (`i32::MAX` when idempotent-only).
        transaction_timeout_ms: i32,
        /// The current identity, when bumping (sent only at v3+).
        current: Option<ProducerIdentity>,
    },
    /// AddPartitionsToTxn (client versions 0..=3; flow v1 only).
    AddPartitionsToTxn {
        /// Transactional id.
        transactional_id: String,
        /// The transaction's identity.
        identity: ProducerIdentity,
        /// Partitions to add.
        partitions: Vec<TopicPartition>,
    },
    /// AddOffsetsToTxn (flow v1 only).
    AddOffsetsToTxn {
        /// Transactional id.
        transactional_id: String,
        /// The transaction's identity.
        identity: ProducerIdentity,
        /// The consumer group.
        group_id: String,
    },
    /// TxnOffsetCommit, to the group coordinator (v3+ carries the group
    /// metadata of KIP-447). Flow v1: at most v4; flow v2: v5+.
    TxnOffsetCommit {
        /// Transactional id.
        transactional_id: String,
        /// The transaction's identity.
        identity: ProducerIdentity,
        /// Group metadata.
        group: GroupMetadata,
        /// Offsets.
        offsets: Vec<OffsetCommit>,
        /// The transaction's flow (selects the version range).
        flow: Flow,
    },
    /// EndTxn. Flow v1: at most v4; flow v2: v5+ (returns the new epoch).
    EndTxn {
        /// Transactional id.
        transactional_id: String,
        /// The transaction's identity.
        identity: ProducerIdentity,
        /// Commit (`true`) or abort.
        commit: bool,
        /// The transaction's flow.
        flow: Flow,
    },
    /// DescribeTransactions (KIP-664) for the producer's own transactional id,
    /// to the transaction coordinator: whether the previous transaction is
    /// still completing (its markers not all written). Read-only; sent only
    /// as the completion probe (see [`Config::probe_completion`]).
    ///
    /// [`Config::probe_completion`]: crate::Config::probe_completion
    DescribeTransactions {
        /// Transactional id.
        transactional_id: String,
    },
    /// Produce one batch (the driver may put several Produce requests for the
    /// same broker into one wire request, and must then answer each).
    Produce {
        /// The partition.
        partition: TopicPartition,
        /// The batch to send.
        batch: BatchId,
        /// Its record count.
        record_count: u32,
        /// What to write in the batch header. Identical on a plain retry.
        stamp: Stamp,
        /// Transactional id (transactional producers).
        transactional_id: Option<String>,
        /// `Some(V1)`: Produce v11 or lower; `Some(V2)`: v12+ (implicit add);
        /// `None` (idempotent-only): any version.
        flow: Option<Flow>,
    },
}

impl Request {
    /// The Kafka API of this request.
    pub fn api(&self) -> ApiKey {
        match self {
            Request::FindCoordinator { .. } => ApiKey::FindCoordinator,
            Request::InitProducerId { .. } => ApiKey::InitProducerId,
            Request::AddPartitionsToTxn { .. } => ApiKey::AddPartitionsToTxn,
            Request::AddOffsetsToTxn { .. } => ApiKey::AddOffsetsToTxn,
            Request::TxnOffsetCommit { .. } => ApiKey::TxnOffsetCommit,
            Request::EndTxn { .. } => ApiKey::EndTxn,
            Request::DescribeTransactions { .. } => ApiKey::DescribeTransactions,
            Request::Produce { .. } => ApiKey::Produce,
        }
    }
}

/// A decoded response, reduced to what the core needs. `error: None` is
/// success (error code 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// FindCoordinator.
    FindCoordinator {
        /// Error code.
        error: Option<ErrorCode>,
        /// The coordinator's node id.
        node: NodeId,
    },
    /// InitProducerId.
    InitProducerId {
        /// Error code.
        error: Option<ErrorCode>,
        /// The identity granted.
        identity: ProducerIdentity,
    },
    /// AddPartitionsToTxn: one result per partition.
    AddPartitionsToTxn {
        /// Per-partition error codes.
        results: Vec<(TopicPartition, Option<ErrorCode>)>,
    },
    /// AddOffsetsToTxn.
    AddOffsetsToTxn {
        /// Error code.
        error: Option<ErrorCode>,
    },
    /// TxnOffsetCommit: one result per partition.
    TxnOffsetCommit {
        /// Per-partition error codes.
        results: Vec<(TopicPartition, Option<ErrorCode>)>,
    },
    /// EndTxn.
    EndTxn {
        /// Error code.
        error: Option<ErrorCode>,
        /// v5+: the identity for the next transaction (`None` below v5 or
        /// when the broker sent -1).
        identity: Option<ProducerIdentity>,
    },
    /// DescribeTransactions: the state of the producer's transactional id.
    DescribeTransactions {
        /// Error code (of the transactional id's entry).
        error: Option<ErrorCode>,
        /// The coordinator is still completing a transaction (state
        /// `PrepareCommit`, `PrepareAbort` or `PrepareEpochFence`): a request
        /// that opens the next one would be answered (or, for a KIP-890
        /// Produce, held by the partition leader) with
        /// CONCURRENT_TRANSACTIONS.
        completing: bool,
    },
    /// Produce: the result for the one batch of the request.
    Produce {
        /// Error code.
        error: Option<ErrorCode>,
        /// Base offset (-1 when unknown, e.g. DUPLICATE_SEQUENCE_NUMBER).
        base_offset: i64,
        /// Log start offset (-1 when unknown).
        log_start_offset: i64,
    },
}

/// What became of a request. The driver reports exactly one outcome for every
/// request the core emitted; a second one for the same id is ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A response arrived, decoded at this version.
    Received {
        /// The version the request was sent and decoded at.
        version: i16,
        /// The response.
        response: Response,
    },
    /// The request certainly never left (no connection, write never began).
    NotSent,
    /// The request may have reached the broker, and no answer will come
    /// (timeout, connection lost after the write began).
    MaybeDelivered,
}

/// Why the core took a new identity ([`Event::IdentityChanged`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IdentityCause {
    /// EndTxn v5 returned the next transaction's epoch (KIP-890, flow v2:
    /// every transaction, committed or aborted, ends with one).
    EndTxn,
    /// InitProducerId with the current identity completed an abort: flow
    /// v1's fencing bump after EndTxn(abort), or the abort of a transaction
    /// whose epoch may have moved (KIP-588).
    Abort,
    /// InitProducerId fenced a committed transaction's request that was
    /// once unanswered and may still land (flow v1).
    FenceLateRequests,
    /// InitProducerId after EndTxn v5 answered without a usable identity.
    MissingIdentity,
    /// InitProducerId for a new producer id: the epoch was exhausted.
    EpochExhausted,
    /// The producer bumped its epoch itself to reset sequences after a
    /// batch failed with its outcome known (idempotent producer, KIP-360).
    SequenceReset,
}

impl IdentityCause {
    /// A short snake_case name (a metrics label value).
    pub fn as_str(self) -> &'static str {
        match self {
            IdentityCause::EndTxn => "end_txn",
            IdentityCause::Abort => "abort",
            IdentityCause::FenceLateRequests => "fence_late_requests",
            IdentityCause::MissingIdentity => "missing_identity",
            IdentityCause::EpochExhausted => "epoch_exhausted",
            IdentityCause::SequenceReset => "sequence_reset",
        }
    }
}

/// Something the user (through the driver) must learn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The producer has an identity and is ready.
    Initialized {
        /// The identity.
        identity: ProducerIdentity,
    },
    /// The identity changed (epoch bump, producer id rotation, EndTxn v5).
    IdentityChanged {
        /// The new identity.
        identity: ProducerIdentity,
        /// Why (for logs and metrics: the driver tells an epoch bump from a
        /// producer id rotation by comparing with the previous identity).
        cause: IdentityCause,
    },
    /// The partition leader acknowledged the batch (for a transactional
    /// producer the records become visible only if the transaction commits).
    Delivered {
        /// The batch.
        batch: BatchId,
        /// Its partition.
        partition: TopicPartition,
        /// Its base offset, when the broker told it.
        base_offset: Option<i64>,
    },
    /// The batch failed; see [`DeliveryError::maybe_written`].
    DeliveryFailed {
        /// The batch.
        batch: BatchId,
        /// Why.
        error: DeliveryError,
    },
    /// The driver should refresh metadata for this partition.
    RefreshMetadata {
        /// The partition.
        partition: TopicPartition,
    },
    /// The TxnOffsetCommit of this [`add_offsets`](crate::ProducerCore::add_offsets)
    /// call succeeded (the offsets commit with the transaction).
    OffsetsCommitted {
        /// The call's handle.
        id: OffsetsId,
    },
    /// EndTxn(commit) succeeded on the transaction's epoch.
    Committed {
        /// The identity the transaction ran under.
        identity: ProducerIdentity,
    },
    /// The transaction was aborted.
    Aborted {
        /// The identity the transaction ran under.
        identity: ProducerIdentity,
        /// Consumer groups whose offsets were part of the aborted
        /// transaction: the consumer must rewind those partitions to their
        /// last committed offsets (KAFKA-17582 is the consumer's half).
        rewind: Vec<(String, Vec<TopicPartition>)>,
    },
    /// The transaction hit an abortable error (a commit in progress fails).
    AbortableError {
        /// The error.
        error: TxnError,
    },
    /// The producer is fatally failed.
    Fatal {
        /// The error.
        error: TxnError,
    },
}
