//! Connections: tokio-postgres without TLS (`NoTls`), its connection task
//! spawned on the caller's runtime, and the session settings the sink and
//! the relay rely on.

use std::time::Duration;

use tokio_postgres::{Client, Config, NoTls};

use crate::error::PgError;

/// Connects and applies `settings` (e.g. `SET idle_in_transaction_session_timeout`).
pub(crate) async fn connect(config: &Config, settings: &str) -> Result<Client, PgError> {
    let (client, connection) = config.connect(NoTls).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "postgres connection ended");
        }
    });
    if !settings.is_empty() {
        client.batch_execute(settings).await?;
    }
    Ok(client)
}

/// `SET idle_in_transaction_session_timeout`: a frozen process (SIGSTOP, a
/// long GC-like pause) holding an open transaction, and so the row locks of
/// its offsets, loses its session after `timeout` instead of blocking the
/// partition's next owner forever.
pub(crate) fn idle_timeout_setting(timeout: Duration) -> String {
    format!(
        "SET idle_in_transaction_session_timeout = {}",
        timeout.as_millis().clamp(1, i32::MAX as u128)
    )
}
