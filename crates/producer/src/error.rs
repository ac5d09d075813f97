//! The producer's one public error type.
//!
//! Every error answers three questions (KIP-1050's categories):
//! [`is_retriable`](ProducerError::is_retriable) (calling again may work),
//! [`is_abortable`](ProducerError::is_abortable) (the transaction must be
//! aborted, the producer lives on) and [`is_fatal`](ProducerError::is_fatal)
//! (the producer is dead; close it). At most one of them is true. Errors keep
//! their context: the partition, the API and the broker's code where one
//! caused them.

use std::time::Duration;

use exactly_codec::RecordError;
use exactly_net::{ConfigError, NetError};
use exactly_txn::{DeliveryError, DeliveryFailure, TxnError, UsageError};

/// Everything that can go wrong in the producer.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ProducerError {
    /// An unknown or invalid property, or settings that contradict each
    /// other.
    #[error("configuration: {0}")]
    Config(#[from] ConfigError),
    /// The connection layer failed where the producer could not retry on its
    /// own (no broker reachable at start, metadata failures).
    #[error("network: {0}")]
    Net(#[from] NetError),
    /// A record's batch was not delivered.
    #[error("delivery failed: {error}")]
    Delivery {
        /// What the core reported, with whether the batch may have been
        /// written.
        error: DeliveryError,
        /// Whether the producer is transactional (the transaction must then
        /// be aborted).
        transactional: bool,
    },
    /// A transaction-level or producer-level error from the core.
    #[error("transaction: {0}")]
    Transaction(TxnError),
    /// A call the producer's state does not allow (e.g. `send` outside a
    /// transaction on a transactional producer).
    #[error("{0}")]
    Usage(#[from] UsageError),
    /// A record larger than a limit.
    #[error("record of about {size} bytes exceeds {limit} ({max} bytes)")]
    RecordTooLarge {
        /// The record's encoded size (upper bound).
        size: usize,
        /// The limit's property name.
        limit: &'static str,
        /// The limit.
        max: usize,
    },
    /// The topic or partition does not exist (after waiting for metadata up
    /// to `max.block.ms`).
    #[error("unknown topic or partition {topic}-{partition:?}: {reason}")]
    UnknownTopicOrPartition {
        /// The topic.
        topic: String,
        /// The partition, if one was named.
        partition: Option<i32>,
        /// What the metadata said.
        reason: String,
    },
    /// Waited longer than allowed (`max.block.ms` for buffer space or
    /// metadata, the timeout given to `close`).
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout {
        /// What was awaited.
        what: &'static str,
        /// How long.
        after: Duration,
    },
    /// A record could not be encoded.
    #[error("record encoding: {0}")]
    Encode(#[from] RecordError),
    /// The producer was closed.
    #[error("the producer is closed")]
    Closed,
}

impl ProducerError {
    /// Calling again (resending the record, retrying the call) may succeed.
    pub fn is_retriable(&self) -> bool {
        match self {
            ProducerError::Net(e) => e.is_retriable(),
            ProducerError::Timeout { .. } => true,
            ProducerError::Delivery {
                error,
                transactional: false,
            } => matches!(
                error.failure,
                DeliveryFailure::Expired | DeliveryFailure::SequenceReset
            ),
            _ => false,
        }
    }

    /// The transaction must be aborted; the producer stays usable.
    pub fn is_abortable(&self) -> bool {
        match self {
            ProducerError::Transaction(e) => e.is_abortable(),
            ProducerError::Usage(UsageError::MustAbort(_)) => true,
            ProducerError::Delivery {
                error,
                transactional: true,
            } => error.failure != DeliveryFailure::ProducerFatal,
            _ => false,
        }
    }

    /// The producer cannot be used any more.
    pub fn is_fatal(&self) -> bool {
        match self {
            ProducerError::Transaction(e) => e.is_fatal(),
            ProducerError::Usage(UsageError::Fatal(_)) => true,
            ProducerError::Delivery { error, .. } => {
                error.failure == DeliveryFailure::ProducerFatal
            }
            ProducerError::Config(_) | ProducerError::Closed => true,
            _ => false,
        }
    }

    /// For a failed delivery: whether the record may have been written
    /// anyway (its request was sent and no answer excluded a write). Such a
    /// record must not be assumed lost.
    pub fn maybe_written(&self) -> bool {
        matches!(self, ProducerError::Delivery { error, .. } if error.maybe_written)
    }

    /// The transaction-level error behind this one, if any.
    pub fn txn_error(&self) -> Option<&TxnError> {
        match self {
            ProducerError::Transaction(e)
            | ProducerError::Usage(UsageError::MustAbort(e) | UsageError::Fatal(e)) => Some(e),
            _ => None,
        }
    }

    pub(crate) fn txn(e: TxnError) -> Self {
        ProducerError::Transaction(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use exactly_txn::{ErrorReason, Severity, TopicPartition};

    fn txn_error(severity: Severity) -> TxnError {
        TxnError {
            severity,
            reason: ErrorReason::Broker,
            code: Some(exactly_codec::ErrorCode::ProducerFenced),
            api: None,
            partition: None,
        }
    }

    fn delivery(failure: DeliveryFailure, transactional: bool) -> ProducerError {
        ProducerError::Delivery {
            error: DeliveryError {
                failure,
                partition: TopicPartition::new("t", 0),
                maybe_written: true,
            },
            transactional,
        }
    }

    #[test]
    fn at_most_one_category() {
        let cases = [
            ProducerError::Transaction(txn_error(Severity::Fatal)),
            ProducerError::Transaction(txn_error(Severity::Abortable)),
            ProducerError::Usage(UsageError::MustAbort(txn_error(Severity::Abortable))),
            ProducerError::Usage(UsageError::NotTransactional),
            delivery(DeliveryFailure::Expired, false),
            delivery(DeliveryFailure::Expired, true),
            delivery(DeliveryFailure::ProducerFatal, true),
            ProducerError::Closed,
            ProducerError::Timeout {
                what: "x",
                after: Duration::ZERO,
            },
        ];
        let got: Vec<(bool, bool, bool)> = cases
            .iter()
            .map(|e| (e.is_retriable(), e.is_abortable(), e.is_fatal()))
            .collect();
        assert_eq!(
            got,
            vec![
                (false, false, true),
                (false, true, false),
                (false, true, false),
                (false, false, false),
                (true, false, false),
                (false, true, false),
                (false, false, true),
                (false, false, true),
                (true, false, false),
            ]
        );
        assert!(cases[4].maybe_written());
        assert!(cases[2].txn_error().is_some());
    }
}
