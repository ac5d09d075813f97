//! # exactly-postgres
//!
//! Exactly-once between Kafka and PostgreSQL, both ways, with a pure-Rust
//! driver (`tokio-postgres`, no libpq, no C):
//!
//! - **Kafka → PostgreSQL**: [`PgSink`] keeps the consumed offsets in a
//!   table of the target database and moves them in the same transaction
//!   as the records' side effects, with a compare-and-set that fences every
//!   other writer of a partition (see [`sink`] and
//!   [`exactly_eos::sink`] for the contract and why it is exactly once).
//! - **PostgreSQL → Kafka**: [`outbox`]'s relay publishes the rows of an
//!   outbox table with a transactional producer, its position kept in a
//!   compacted Kafka topic written in the same Kafka transaction, and rows
//!   taken in an order no concurrent writer can slip under (see the module
//!   docs for the two traps it avoids).
//!
//! What it does not do (yet): TLS to the database (connections use
//! `NoTls`), `LISTEN/NOTIFY` wake-ups for the relay (it polls), reading the
//! outbox from a standby.

mod connect;
mod error;
pub mod outbox;
pub mod sink;

pub use error::PgError;
pub use outbox::{Outbox, OutboxError, OutboxPosition, OutboxRelay, RelayConfig, RelayStats};
pub use sink::{PgHandler, PgSink};

/// The driver, for handlers ([`tokio_postgres::Transaction`]) and writers
/// of the outbox.
pub use tokio_postgres;
