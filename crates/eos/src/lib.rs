//! # exactly-eos
//!
//! Exactly-once applications over `exactly`'s transactional producer and
//! `read_committed` consumer (KIP-98 transactions, KIP-447 offsets with
//! group metadata, KIP-890 where the broker finalizes
//! `transaction.version=2`).
//!
//! The [`Session`] is the consume-transform-produce loop most users would
//! otherwise write by hand, safer by default: a [`Handler`] turns each run
//! of input records into 0..N output records to any topics; the session
//! keeps output and input offsets in one transaction, aborts and rewinds on
//! failure (calling the handler's rollback hook), commits or aborts around
//! rebalances, ends on fatal errors with a typed [`SessionError`], survives
//! a handler panic without leaving a transaction open, and stops gracefully
//! through a [`ShutdownHandle`]. See the [`session`] module for the rules
//! and why each one matters.
//!
//! ```no_run
//! use exactly_eos::{per_record, OutputRecord, Session};
//!
//! # async fn demo() -> Result<(), exactly_eos::SessionError> {
//! let session = Session::from_properties([
//!     ("bootstrap.servers", "127.0.0.1:9092"),
//!     ("group.id", "fan-out"),
//!     ("transactional.id", "fan-out-1"),
//!     ("input.topics", "numbers"),
//! ])
//! .await?;
//! let stop = session.shutdown_handle();
//! tokio::spawn(async move {
//!     let _ = tokio::signal::ctrl_c().await;
//!     stop.shutdown();
//! });
//! let stats = session
//!     .run(per_record(|r, out| {
//!         if let Some(v) = r.value() {
//!             out.push(OutputRecord::new("copies").with_value(v.clone()));
//!         }
//!         Ok(())
//!     }))
//!     .await?;
//! println!("{} transactions committed", stats.transactions_committed);
//! # Ok(()) }
//! ```
//!
//! With [`SessionBuilder::state`], the handler also gets a key-value
//! [`State`] per input partition, kept in a compacted changelog topic
//! written in the same transaction (see [`state`]).
//!
//! The [`sink`] module runs exactly-once into an external database: the
//! side effects and the consumed offsets in the database's own transaction.
//!
//! The [`dedup`] module is the idempotent consumer, for inputs that can
//! carry duplicates at different offsets (an at-least-once upstream): it
//! skips records whose message id was already processed, with a bounded
//! seen-set kept in the session's state; its docs say when transactions
//! make it unnecessary.

pub mod dedup;
pub mod session;
pub mod shutdown;
pub mod sink;
pub mod state;

pub use session::{
    per_record, AbortReason, Context, Handler, HandlerError, InputTopics, Output, OutputRecord,
    PerRecord, Session, SessionBuilder, SessionConfig, SessionError, SessionMetrics, SessionStats,
    TransactionEnd,
};
pub use shutdown::ShutdownHandle;
pub use state::{MemoryStore, State, StateConfig, Store, StoreFactory};
