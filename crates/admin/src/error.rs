//! What an admin call can fail with.

use exactly_codec::messages::ApiKey;
use exactly_codec::{CodecError, ErrorCode};
use exactly_net::{ConfigError, NetError};

/// Everything an admin call can fail with.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum AdminError {
    /// The request did not get an answer (connection, timeout, TLS, SASL,
    /// or a version the codec cannot speak with this broker).
    #[error(transparent)]
    Net(#[from] NetError),
    /// The configuration was refused.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The broker answered with an error code.
    #[error("{api:?}{}: {code:?}{}", .resource.as_deref().map(|r| format!(" {r}")).unwrap_or_default(), .message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Kafka {
        /// The request.
        api: ApiKey,
        /// What it was about (a topic, group, transactional id, partition).
        resource: Option<String>,
        /// The error code.
        code: ErrorCode,
        /// The broker's message, when it sent one.
        message: Option<String>,
    },
    /// The cluster does not know what was asked for (a topic, partition,
    /// producer, open transaction).
    #[error("not found: {0}")]
    NotFound(String),
    /// The broker's answer does not make sense (a missing entry, a malformed
    /// consumer-protocol assignment).
    #[error("unexpected response: {0}")]
    Unexpected(String),
}

impl From<CodecError> for AdminError {
    fn from(e: CodecError) -> Self {
        AdminError::Net(NetError::Codec(e))
    }
}

impl AdminError {
    /// The Kafka error code, if the broker answered with one.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            AdminError::Kafka { code, .. } => Some(*code),
            AdminError::Net(NetError::Kafka { code, .. }) => Some(*code),
            _ => None,
        }
    }

    /// `Err(Kafka)` for a non-zero error code, else `Ok(())`.
    pub(crate) fn check(
        api: ApiKey,
        resource: impl FnOnce() -> String,
        code: i16,
        message: Option<&str>,
    ) -> Result<(), AdminError> {
        match ErrorCode::from_code(code) {
            None => Ok(()),
            Some(code) => Err(AdminError::Kafka {
                api,
                resource: Some(resource()),
                code,
                message: message.map(str::to_owned),
            }),
        }
    }
}
