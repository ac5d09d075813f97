//! Errors the core reports: a transaction or producer error ([`TxnError`]),
//! a batch's delivery failure ([`DeliveryError`]) and a command refused in the
//! current state ([`UsageError`]).
//!
//! Every error keeps its request context (API, partition, broker code) and
//! answers `is_retriable()`, `is_abortable()`, `is_fatal()`.

use exactly_codec::messages::ApiKey;
use exactly_codec::ErrorCode;

use crate::types::TopicPartition;

/// How bad an error is for the producer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Severity {
    /// The current transaction must be aborted; the producer stays usable.
    Abortable,
    /// The producer is dead; every later call fails with this error.
    Fatal,
}

/// Why the core raised an error (besides the broker code, if any).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorReason {
    /// The broker answered with an error code.
    Broker,
    /// A batch of the transaction failed (KAFKA-9279: the commit must fail).
    BatchFailed,
    /// A batch reached `delivery.timeout.ms`.
    DeliveryTimeout,
    /// The driver answered a request with the wrong response kind.
    ProtocolViolation,
    /// The broker gave an identity the core cannot use (negative epoch...).
    InvalidIdentity,
}

/// A transaction-level or producer-level error.
///
/// Its `Display` is a sentence: "fatal: the broker answered
/// PRODUCER_FENCED(90) to EndTxn", "abortable: a batch reached
/// delivery.timeout.ms on orders-3".
#[derive(Debug, Clone, PartialEq, Eq, Hash, thiserror::Error)]
#[error("{}", self.describe())]
pub struct TxnError {
    /// Abortable or fatal.
    pub severity: Severity,
    /// Why.
    pub reason: ErrorReason,
    /// The broker's error code, if one caused it.
    pub code: Option<ErrorCode>,
    /// The API whose response caused it.
    pub api: Option<ApiKey>,
    /// The partition concerned, if any.
    pub partition: Option<TopicPartition>,
}

impl TxnError {
    /// The `Display` text, in words.
    fn describe(&self) -> String {
        let mut out = String::from(match self.severity {
            Severity::Abortable => "abortable: ",
            Severity::Fatal => "fatal: ",
        });
        let what = match (self.reason, self.code) {
            (ErrorReason::Broker, Some(code)) => format!("the broker answered {code}"),
            (ErrorReason::Broker, None) => "the broker answered with an error".to_owned(),
            (ErrorReason::BatchFailed, _) => "a batch of the transaction failed".to_owned(),
            (ErrorReason::DeliveryTimeout, _) => "a batch reached delivery.timeout.ms".to_owned(),
            (ErrorReason::ProtocolViolation, _) => {
                "an answer of the wrong kind (a protocol violation)".to_owned()
            }
            (ErrorReason::InvalidIdentity, _) => {
                "the broker gave an unusable producer id or epoch".to_owned()
            }
        };
        out.push_str(&what);
        if let Some(api) = self.api {
            out.push_str(&format!(" to {api:?}"));
        }
        if let Some(p) = &self.partition {
            out.push_str(&format!(" on {p}"));
        }
        out
    }

    pub(crate) fn broker(
        severity: Severity,
        api: ApiKey,
        code: Option<ErrorCode>,
        partition: Option<TopicPartition>,
    ) -> Self {
        Self {
            severity,
            reason: ErrorReason::Broker,
            code,
            api: Some(api),
            partition,
        }
    }

    pub(crate) fn local(severity: Severity, reason: ErrorReason) -> Self {
        Self {
            severity,
            reason,
            code: None,
            api: None,
            partition: None,
        }
    }

    /// Never: a `TxnError` is what is left once retries are not the answer.
    pub fn is_retriable(&self) -> bool {
        false
    }

    /// The transaction must be aborted, the producer lives on.
    pub fn is_abortable(&self) -> bool {
        self.severity == Severity::Abortable
    }

    /// The producer is dead.
    pub fn is_fatal(&self) -> bool {
        self.severity == Severity::Fatal
    }
}

/// Why a batch was not delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryFailure {
    /// The broker rejected the batch with this code.
    Rejected(ErrorCode),
    /// `delivery.timeout.ms` passed.
    Expired,
    /// The transaction was aborted before the batch was acknowledged.
    Aborted,
    /// The sequence state of the partition had to be reset and this batch's
    /// outcome could not be resolved (KIP-360: never re-sent under a new
    /// epoch, which could write it twice).
    SequenceReset,
    /// The producer became fatal.
    ProducerFatal,
}

/// A batch's failure, with what is known about whether it was written.
#[derive(Debug, Clone, PartialEq, Eq, Hash, thiserror::Error)]
#[error("batch failed on {partition}: {failure:?} (maybe written: {maybe_written})")]
pub struct DeliveryError {
    /// What happened.
    pub failure: DeliveryFailure,
    /// The partition.
    pub partition: TopicPartition,
    /// `true` when the batch may have been written (a send of it got no
    /// answer, or an answer that does not exclude a write). Such a batch is
    /// never reported as unwritten (franz-go #1217).
    pub maybe_written: bool,
}

impl DeliveryError {
    /// Whether retrying the same batch could help: never, the core already
    /// retried for as long as `delivery.timeout.ms` allowed.
    pub fn is_retriable(&self) -> bool {
        false
    }
}

/// A command that the current state does not allow. Nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsageError {
    /// The command needs a `transactional.id`.
    #[error("not a transactional producer")]
    NotTransactional,
    /// The command is not allowed in this state.
    #[error("{command} is not allowed in state {state}")]
    InvalidState {
        /// The refused command.
        command: &'static str,
        /// The state's name.
        state: &'static str,
    },
    /// `begin` while the producer re-initializes between transactions (an
    /// epoch bump after an abort or a doubtful commit, a new producer id):
    /// it will be allowed once the core is ready again, with no call needed
    /// in between ([`Event::Initialized`] or [`Event::IdentityChanged`]
    /// says when to ask again).
    ///
    /// [`Event::Initialized`]: crate::Event::Initialized
    /// [`Event::IdentityChanged`]: crate::Event::IdentityChanged
    #[error("{command} must wait: the producer is re-initializing between transactions")]
    Reinitializing {
        /// The refused command.
        command: &'static str,
    },
    /// The transaction hit an abortable error: only `abort` is allowed
    /// (KAFKA-9279: never commit a transaction with a failed send).
    #[error("transaction must be aborted: {0}")]
    MustAbort(TxnError),
    /// The producer is fatally failed.
    #[error("producer is fatally failed: {0}")]
    Fatal(TxnError),
    /// A batch must hold at least one record.
    #[error("a batch must hold at least one record")]
    EmptyBatch,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_in_words() {
        let e = TxnError::broker(
            Severity::Fatal,
            ApiKey::EndTxn,
            Some(ErrorCode::ProducerFenced),
            None,
        );
        assert_eq!(
            e.to_string(),
            "fatal: the broker answered PRODUCER_FENCED(90) to EndTxn"
        );
        let e = TxnError {
            partition: Some(TopicPartition::new("orders", 3)),
            ..TxnError::local(Severity::Abortable, ErrorReason::DeliveryTimeout)
        };
        assert_eq!(
            e.to_string(),
            "abortable: a batch reached delivery.timeout.ms on orders-3"
        );
    }
}
