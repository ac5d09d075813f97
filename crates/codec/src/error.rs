//! The codec's one error type.

use kafka_protocol::messages::ApiKey;

/// Everything that can go wrong while framing, encoding or decoding.
///
/// Each variant says what was wrong with the bytes; none of them is produced by
/// a panic path, and none carries bytes of attacker-chosen size.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CodecError {
    /// A frame's size prefix was negative.
    #[error("negative frame size {0}")]
    NegativeFrameSize(i32),
    /// A frame's size prefix exceeded the configured maximum (checked before
    /// any allocation).
    #[error("frame size {size} exceeds the maximum of {max} bytes")]
    FrameTooLarge {
        /// The declared size.
        size: i32,
        /// The configured maximum.
        max: usize,
    },
    /// A message could not be encoded (a field does not fit the version).
    #[error("cannot encode {api:?} v{version}: {reason}")]
    Encode {
        /// The API being encoded.
        api: ApiKey,
        /// The version it was encoded at.
        version: i16,
        /// What the message crate reported.
        reason: String,
    },
    /// A message could not be decoded: the wire guard refused its bytes
    /// (then `malformed` says where and why), or the message crate did.
    #[error("cannot decode {api:?} v{version}: {reason}")]
    Decode {
        /// The API being decoded.
        api: ApiKey,
        /// The version it was decoded at.
        version: i16,
        /// What was wrong.
        reason: String,
        /// The wire guard's verdict (direction, field path, fault with the
        /// declared and available lengths), when the guard refused the bytes.
        malformed: Option<Box<crate::guard::Malformed>>,
    },
    /// A response header could not be decoded.
    #[error("cannot decode response header: {0}")]
    Header(String),
    /// Bytes were left over after a message was decoded.
    #[error("{api:?} v{version} left {extra} undecoded bytes")]
    TrailingBytes {
        /// The API decoded.
        api: ApiKey,
        /// The version it was decoded at.
        version: i16,
        /// How many bytes were left.
        extra: usize,
    },
    /// The broker and this client share no version of an API.
    #[error(
        "{api:?} is unsupported: broker supports v{broker_min}..=v{broker_max}, \
         client supports v{client_min}..=v{client_max}"
    )]
    UnsupportedVersion {
        /// The API.
        api: ApiKey,
        /// Lowest version the broker accepts (-1 when it does not list the API).
        broker_min: i16,
        /// Highest version the broker accepts (-1 when it does not list the API).
        broker_max: i16,
        /// Lowest version this client can speak.
        client_min: i16,
        /// Highest version this client can speak.
        client_max: i16,
    },
    /// A record batch was malformed.
    #[error(transparent)]
    Record(#[from] crate::record::RecordError),
    /// No wire schema covers this API at this version (an API the client
    /// does not use, or a version the message crate cannot decode), so the
    /// message is refused rather than decoded unchecked.
    #[error("{api:?} v{version} has no wire schema")]
    NoWireSchema {
        /// The API.
        api: ApiKey,
        /// The version asked for.
        version: i16,
    },
    /// A raw API key that is not a Kafka API.
    #[error("unknown API key {0}")]
    UnknownApiKey(i16),
}

impl CodecError {
    /// The wire guard's verdict, if this error is the guard refusing bytes.
    pub fn malformed(&self) -> Option<&crate::guard::Malformed> {
        match self {
            CodecError::Decode { malformed, .. } => malformed.as_deref(),
            _ => None,
        }
    }
}
