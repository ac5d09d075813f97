//! The crate's database error and its one classifier: what a retry can fix
//! (a lost connection, a serialization failure, a deadlock, a server
//! restarting) and what it cannot (bad SQL, a violated constraint: above
//! all a unique violation, which under the sink's contract means a record
//! reached the database twice and must stop everything).

use tokio_postgres::error::SqlState;

/// A PostgreSQL failure of the sink or the outbox relay.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    /// The driver or the server failed.
    #[error("postgres: {0}")]
    Db(#[from] tokio_postgres::Error),
    /// A table name that is not a plain SQL identifier.
    #[error("invalid table name {0:?}: letters, digits and `_`, optionally `schema.table`")]
    Identifier(String),
    /// The user's handler refused the batch (never retried: the same
    /// records would be refused again).
    #[error("the handler refused the batch: {0}")]
    Handler(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl PgError {
    /// A handler's own refusal (bad data, a business rule).
    pub fn handler(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        PgError::Handler(e.into())
    }

    /// The server's SQLSTATE, when it answered with one.
    pub fn code(&self) -> Option<&SqlState> {
        match self {
            PgError::Db(e) => e.code(),
            _ => None,
        }
    }

    /// A unique constraint was violated (SQLSTATE 23505). Never retriable.
    pub fn is_unique_violation(&self) -> bool {
        self.code() == Some(&SqlState::UNIQUE_VIOLATION)
    }

    /// Whether trying again (on a new connection, after the stored offsets
    /// are read again) may succeed.
    pub fn is_retriable(&self) -> bool {
        let PgError::Db(e) = self else {
            return false;
        };
        if e.is_closed() {
            return true;
        }
        match e.code() {
            Some(code) => retriable_state(code),
            // No SQLSTATE: the socket failed (connect refused, reset, EOF).
            None => std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>()),
        }
    }
}

/// SQLSTATEs a retry may fix: class 08 (connection exception), 40001 and
/// 40P01 (serialization failure, deadlock), 55P03 (lock not available),
/// 57014 (a statement or lock timeout), 57P01-57P03 (the server shutting
/// down or starting), 25P03 (the idle-in-transaction timeout ended our
/// session).
fn retriable_state(code: &SqlState) -> bool {
    code.code().starts_with("08")
        || [
            SqlState::T_R_SERIALIZATION_FAILURE,
            SqlState::T_R_DEADLOCK_DETECTED,
            SqlState::LOCK_NOT_AVAILABLE,
            SqlState::QUERY_CANCELED,
            SqlState::ADMIN_SHUTDOWN,
            SqlState::CRASH_SHUTDOWN,
            SqlState::CANNOT_CONNECT_NOW,
            SqlState::IDLE_IN_TRANSACTION_SESSION_TIMEOUT,
        ]
        .contains(code)
}

impl exactly_eos::sink::SinkError for PgError {
    fn is_retriable(&self) -> bool {
        PgError::is_retriable(self)
    }
}

/// Checks a table name: `name` or `schema.name`, each part ASCII letters,
/// digits and `_`, not starting with a digit. The name goes into SQL text
/// (identifiers cannot be bound parameters), so nothing else is accepted.
pub(crate) fn table_name(name: &str) -> Result<String, PgError> {
    let ok_part = |p: &str| {
        p.chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && p.len() <= 63
    };
    let parts: Vec<&str> = name.split('.').collect();
    if parts.len() <= 2 && parts.iter().all(|p| ok_part(p)) {
        Ok(name.to_owned())
    } else {
        Err(PgError::Identifier(name.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_classifier_retries_what_a_new_attempt_can_fix_and_never_a_unique_violation() {
        for (code, retriable) in [
            (SqlState::T_R_SERIALIZATION_FAILURE, true),
            (SqlState::T_R_DEADLOCK_DETECTED, true),
            (SqlState::CONNECTION_FAILURE, true),
            (SqlState::ADMIN_SHUTDOWN, true),
            (SqlState::IDLE_IN_TRANSACTION_SESSION_TIMEOUT, true),
            (SqlState::UNIQUE_VIOLATION, false),
            (SqlState::SYNTAX_ERROR, false),
            (SqlState::INSUFFICIENT_PRIVILEGE, false),
            (SqlState::CHECK_VIOLATION, false),
        ] {
            assert_eq!(retriable_state(&code), retriable, "{code:?}");
        }
        let refused = PgError::handler("bad order");
        assert!(!refused.is_retriable() && !refused.is_unique_violation());
    }

    #[test]
    fn table_names_are_plain_identifiers() {
        for ok in ["exactly_offsets", "app.outbox", "_t1"] {
            assert_eq!(table_name(ok).ok().as_deref(), Some(ok));
        }
        for bad in [
            "",
            "1t",
            "a.b.c",
            "t; DROP TABLE x",
            "\"quoted\"",
            "a-b",
            "t ",
            ".t",
        ] {
            assert!(
                matches!(table_name(bad), Err(PgError::Identifier(_))),
                "{bad:?}"
            );
        }
    }
}
