//! The consumer's one error type.
//!
//! Retriable trouble (a lost connection, a leader change, a coordinator
//! moving, a pending transactional offset commit) is handled inside the
//! consumer and never reaches the user as an error; what does reach the user
//! keeps its context (API, partition, offset).

use std::time::Duration;

use exactly_codec::messages::ApiKey;
use exactly_codec::record::RecordError;
use exactly_codec::ErrorCode;
use exactly_net::{ConfigError, NetError};

use crate::TopicPartition;

/// Everything that can go wrong in the consumer.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ConsumerError {
    /// Invalid configuration.
    #[error("configuration: {0}")]
    Config(#[from] ConfigError),
    /// A request failed in the net layer and could not be retried (or the
    /// retries ran out of time).
    #[error(transparent)]
    Net(#[from] NetError),
    /// The broker answered with an error the consumer cannot handle itself.
    #[error("{api:?} failed{}: {code}{}",
        partition.as_ref().map(|p| format!(" for {p}")).unwrap_or_default(),
        message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Kafka {
        /// The API.
        api: ApiKey,
        /// The error code.
        code: ErrorCode,
        /// The partition, for partition-level errors.
        partition: Option<TopicPartition>,
        /// The broker's message, or ours.
        message: Option<String>,
    },
    /// A fetched batch is malformed (CRC mismatch, bad lengths, a bad control
    /// record). The position stays at `offset`; seek past it to go on.
    #[error("corrupt record batch in {partition} at offset {offset}: {source}")]
    CorruptRecord {
        /// The partition.
        partition: TopicPartition,
        /// Where reading stopped.
        offset: i64,
        /// What is wrong.
        source: RecordError,
    },
    /// A batch decompresses past the cap: `fetch.max.uncompressed.bytes`
    /// (the total one fetch response may decompress to) or the codec's
    /// 64 MiB per batch, whichever is lower. The position stays at
    /// `offset`; raise `fetch.max.uncompressed.bytes` (or seek past it).
    #[error("the batch in {partition} at offset {offset} decompresses past {max} bytes: raise `fetch.max.uncompressed.bytes` (at most 64 MiB per batch) or seek past it")]
    DecompressedTooLarge {
        /// The partition.
        partition: TopicPartition,
        /// Where reading stopped.
        offset: i64,
        /// The cap that was hit.
        max: usize,
    },
    /// The position is out of range and `auto.offset.reset` is `none`.
    #[error("offset {offset} is out of range for {partition} (auto.offset.reset=none)")]
    OffsetOutOfRange {
        /// The partition.
        partition: TopicPartition,
        /// The position that was out of range.
        offset: i64,
    },
    /// No committed offset and `auto.offset.reset` is `none`.
    #[error("no committed offset for {partition} (auto.offset.reset=none)")]
    NoOffset {
        /// The partition.
        partition: TopicPartition,
    },
    /// An offset commit was refused because the group moved on (a rebalance,
    /// an expired member, a newer static member): the offsets were not
    /// committed and the partitions may belong to another member now.
    #[error("offset commit refused by the group: {code}")]
    CommitFailed {
        /// ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID, REBALANCE_IN_PROGRESS or
        /// FENCED_INSTANCE_ID.
        code: ErrorCode,
    },
    /// The call is not valid in the consumer's state (e.g. `subscribe` after
    /// `assign`, a group operation without `group.id`).
    #[error("{0}")]
    Usage(String),
    /// An operation did not finish within its time limit.
    #[error("{what} did not complete within {after:?}")]
    Timeout {
        /// What timed out.
        what: &'static str,
        /// The limit.
        after: Duration,
    },
    /// A fetch task panicked (a bug in the client, reported rather than
    /// silently ending fetches from that broker). Fetching from the broker
    /// resumes after the retry backoff; the position did not move.
    #[error("the fetch from broker {broker} panicked: {message}")]
    FetchPanicked {
        /// The broker the fetch went to.
        broker: i32,
        /// The panic's message.
        message: String,
    },
    /// The consumer was closed.
    #[error("the consumer is closed")]
    Closed,
    /// A topic whose partitions the consumer held was deleted (the cluster
    /// no longer knows it). Reported once per topic by `poll`; its
    /// partitions are dropped (manual assignment) or revoked by the group's
    /// next rebalance. Polling again goes on with the other partitions.
    #[error("topic `{topic}` was deleted")]
    TopicDeleted {
        /// The topic.
        topic: String,
    },
}

impl ConsumerError {
    /// Whether trying the same call again may succeed.
    pub fn is_retriable(&self) -> bool {
        match self {
            ConsumerError::Net(e) => e.is_retriable(),
            ConsumerError::Kafka { code, .. } => code.is_retriable(),
            ConsumerError::Timeout { .. } | ConsumerError::TopicDeleted { .. } => true,
            _ => false,
        }
    }

    pub(crate) fn kafka(api: ApiKey, code: ErrorCode, partition: Option<TopicPartition>) -> Self {
        ConsumerError::Kafka {
            api,
            code,
            partition,
            message: None,
        }
    }
}

/// Whether a group error code means the member's generation is gone: offsets
/// it commits are refused and its partitions may belong to another member.
pub(crate) fn is_group_fenced(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::IllegalGeneration
            | ErrorCode::UnknownMemberId
            | ErrorCode::RebalanceInProgress
            | ErrorCode::FencedInstanceId
            // KIP-848: the member epoch the commit carried is not the
            // member's (stale: a newer one is on its way in a heartbeat;
            // fenced: the membership is gone).
            | ErrorCode::StaleMemberEpoch
            | ErrorCode::FencedMemberEpoch
    )
}

/// Whether a coordinator error code means "find the coordinator again".
pub(crate) fn is_coordinator_moved(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::NotCoordinator | ErrorCode::CoordinatorNotAvailable
    )
}
