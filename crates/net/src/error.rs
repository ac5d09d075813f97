//! The net layer's one error type.
//!
//! Every failure of a request says whether the request may have reached the
//! broker ([`Delivery`]). The idempotent producer depends on that: a batch that
//! was [`Delivery::NotSent`] may be re-stamped freely, one that was
//! [`Delivery::MaybeDelivered`] is "outcome unknown" and may only be retried
//! with the very same bytes (see ARCHITECTURE.md, principle 3).

use std::sync::Arc;
use std::time::Duration;

use exactly_codec::messages::ApiKey;
use exactly_codec::{CodecError, ErrorCode};

use crate::config::ConfigError;

/// Whether a failed request may have been delivered to the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Delivery {
    /// Not one whole frame of the request was handed to the socket: the broker
    /// cannot have acted on it.
    NotSent,
    /// The whole request was written; the broker may have acted on it even
    /// though no response came back.
    MaybeDelivered,
}

/// Why a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Disconnect {
    /// The peer closed the stream.
    ClosedByPeer,
    /// A socket read or write failed.
    Io {
        /// The I/O error kind.
        kind: std::io::ErrorKind,
        /// The I/O error's text.
        message: Arc<str>,
    },
    /// A request was not answered within its timeout; the connection was
    /// closed because every later response is queued behind it.
    RequestTimedOut {
        /// Correlation id of the request that timed out.
        correlation_id: i32,
    },
    /// The broker broke the protocol: a response whose correlation id is not
    /// the head of the in-flight queue, a response nobody asked for, or a bad
    /// frame. The Java client treats this as fatal for the request.
    ProtocolViolation(Arc<str>),
    /// The client closed the connection (dropped, or shut down).
    Closed,
}

impl std::fmt::Display for Disconnect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Disconnect::ClosedByPeer => f.write_str("closed by the broker"),
            Disconnect::Io { kind, message } => write!(f, "I/O error ({kind:?}): {message}"),
            Disconnect::RequestTimedOut { correlation_id } => {
                write!(f, "request {correlation_id} timed out")
            }
            Disconnect::ProtocolViolation(m) => write!(f, "protocol violation: {m}"),
            Disconnect::Closed => f.write_str("closed by the client"),
        }
    }
}

/// Everything that can go wrong between a caller and a broker.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum NetError {
    /// The connection ended before the response came.
    #[error("connection to {addr} lost ({delivery:?}): {cause}")]
    ConnectionLost {
        /// The broker address.
        addr: Arc<str>,
        /// Whether the request may have been delivered.
        delivery: Delivery,
        /// Why the connection ended.
        cause: Disconnect,
    },
    /// The request was written but no response came within
    /// `request.timeout.ms`. Always [`Delivery::MaybeDelivered`].
    #[error("request to {addr} timed out after {after:?}")]
    Timeout {
        /// The broker address.
        addr: Arc<str>,
        /// The timeout that elapsed.
        after: Duration,
    },
    /// A TCP connection could not be opened.
    #[error("cannot connect to {addr}: {message}")]
    Connect {
        /// The address tried.
        addr: Arc<str>,
        /// What went wrong.
        message: Arc<str>,
    },
    /// The TLS handshake failed (untrusted certificate, wrong host name...).
    /// Not retriable: retrying will not make a certificate trusted.
    #[error("TLS with {addr} failed: {message}")]
    Tls {
        /// The address tried.
        addr: Arc<str>,
        /// What rustls reported.
        message: Arc<str>,
    },
    /// SASL authentication was refused. Not retriable.
    #[error("SASL {mechanism} authentication failed: {message}")]
    Authentication {
        /// The mechanism used.
        mechanism: Arc<str>,
        /// The broker's or the client's reason.
        message: Arc<str>,
    },
    /// A request could not be encoded or a response decoded, or no version is
    /// common to client and broker.
    #[error("codec: {0}")]
    Codec(#[from] CodecError),
    /// The broker answered a request made by the net layer itself
    /// (Metadata, FindCoordinator, CreateTopics, ApiVersions) with an error.
    #[error("{api:?} failed: {code}{}", message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Kafka {
        /// The API that failed.
        api: ApiKey,
        /// The error code.
        code: ErrorCode,
        /// The broker's error message, if any.
        message: Option<Arc<str>>,
    },
    /// The cluster view has no broker with this id.
    #[error("unknown broker id {0}")]
    UnknownBroker(i32),
    /// Every bootstrap server failed.
    #[error("no bootstrap server reachable: {0}")]
    Bootstrap(Arc<str>),
    /// Invalid configuration.
    #[error("configuration: {0}")]
    Config(#[from] ConfigError),
}

impl NetError {
    /// Whether the request may have reached the broker.
    pub fn delivery(&self) -> Delivery {
        match self {
            NetError::ConnectionLost { delivery, .. } => *delivery,
            NetError::Timeout { .. } => Delivery::MaybeDelivered,
            // A decode failure means a response came back: the request was
            // delivered; so were requests answered with an error code.
            NetError::Codec(CodecError::Decode { .. })
            | NetError::Codec(CodecError::TrailingBytes { .. })
            | NetError::Codec(CodecError::Header(_))
            | NetError::Kafka { .. } => Delivery::MaybeDelivered,
            _ => Delivery::NotSent,
        }
    }

    /// Whether trying again (possibly on a new connection) may succeed.
    /// Authentication, TLS trust, codec, configuration and protocol
    /// violations are not retriable.
    pub fn is_retriable(&self) -> bool {
        match self {
            NetError::ConnectionLost { cause, .. } => {
                !matches!(cause, Disconnect::ProtocolViolation(_))
            }
            NetError::Timeout { .. } | NetError::Connect { .. } | NetError::Bootstrap(_) => true,
            NetError::UnknownBroker(_) => true,
            NetError::Kafka { code, .. } => code.is_retriable(),
            NetError::Tls { .. }
            | NetError::Authentication { .. }
            | NetError::Codec(_)
            | NetError::Config(_) => false,
        }
    }

    /// Whether the error means the cached metadata may be stale (the request
    /// should be re-routed after a refresh).
    pub fn needs_metadata_refresh(&self) -> bool {
        match self {
            NetError::Kafka { code, .. } => crate::metadata::is_stale_metadata(*code),
            NetError::ConnectionLost { .. }
            | NetError::Connect { .. }
            | NetError::Timeout { .. }
            | NetError::UnknownBroker(_) => true,
            _ => false,
        }
    }

    pub(crate) fn lost(addr: &Arc<str>, delivery: Delivery, cause: Disconnect) -> Self {
        NetError::ConnectionLost {
            addr: addr.clone(),
            delivery,
            cause,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_and_retriability() {
        let addr: Arc<str> = "b:1".into();
        let e = NetError::lost(&addr, Delivery::NotSent, Disconnect::ClosedByPeer);
        assert_eq!(e.delivery(), Delivery::NotSent);
        assert!(e.is_retriable());
        let e = NetError::lost(
            &addr,
            Delivery::MaybeDelivered,
            Disconnect::ProtocolViolation("x".into()),
        );
        assert_eq!(e.delivery(), Delivery::MaybeDelivered);
        assert!(!e.is_retriable());
        let e = NetError::Timeout {
            addr,
            after: Duration::from_secs(1),
        };
        assert_eq!(e.delivery(), Delivery::MaybeDelivered);
        assert!(e.is_retriable());
        let e = NetError::Authentication {
            mechanism: "SCRAM-SHA-256".into(),
            message: "bad".into(),
        };
        assert!(!e.is_retriable());
        assert_eq!(e.delivery(), Delivery::NotSent);
        let e = NetError::Kafka {
            api: ApiKey::Metadata,
            code: ErrorCode::NotLeaderOrFollower,
            message: None,
        };
        assert!(e.is_retriable() && e.needs_metadata_refresh());
        assert!(e.to_string().contains("NOT_LEADER_OR_FOLLOWER"));
    }
}
