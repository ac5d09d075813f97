//! # exactly-consumer
//!
//! The consumer of `exactly`: a `read_committed` fetcher (KIP-98) and
//! classic consumer groups, built for exactly-once consume-transform-produce
//! (KIP-447).
//!
//! ```no_run
//! # async fn demo() -> Result<(), exactly_consumer::ConsumerError> {
//! use std::time::Duration;
//! use exactly_consumer::{Consumer, Polled, Rebalance};
//!
//! let mut consumer = Consumer::from_properties([
//!     ("bootstrap.servers", "127.0.0.1:9092"),
//!     ("group.id", "orders-copier"),
//!     ("auto.offset.reset", "earliest"),
//! ])
//! .await?;
//! consumer.subscribe(&["orders"])?;
//! loop {
//!     match consumer.poll(Duration::from_millis(500)).await? {
//!         Polled::Records(records) => {
//!             for r in &records {
//!                 // r.value() is a slice of the fetched buffer (no copy).
//!                 let _ = (r.partition(), r.offset(), r.value());
//!             }
//!             consumer.commit().await?;
//!         }
//!         // The member still holds its generation here: commit what was
//!         // processed (or abort the open transaction) before polling again.
//!         Polled::Rebalance(Rebalance::Revoked(_)) => consumer.commit().await?,
//!         Polled::Rebalance(_) => {}
//!     }
//! }
//! # }
//! ```
//!
//! What it does:
//! - **`read_committed` by default** (the Java client defaults to
//!   `read_uncommitted`; see [`config`] for why we differ): only committed
//!   and non-transactional records, up to the last stable offset, with the
//!   aborted transactions the broker lists skipped per producer until that
//!   producer's ABORT marker, the list sorted whatever order it comes in,
//!   double abort markers harmless, control batches never shown
//!   ([`fetch::read_committed`], [`fetch::parse`]);
//! - **zero-copy records**: keys, values and header values are `Bytes`
//!   slices of the fetch response (or of a batch's decompressed section);
//!   CRCs checked, decompression capped;
//! - **one Fetch in flight per broker**, on tasks of their own, so fetches
//!   to several brokers overlap and keep going while records are processed;
//!   sessionless fetches (KIP-227 fetch sessions are not used); a
//!   partition's next response is fetched while the application drains the
//!   last (two responses buffered per partition at most, and no read-ahead
//!   past `fetch.max.bytes` buffered in all), and no fetch is sent that
//!   could only wait at the log end while records of the same broker are
//!   still buffered ([`fetch::plan`]);
//! - **consumer groups**, classic protocol: FindCoordinator, JoinGroup,
//!   SyncGroup with a client-side `range` or `roundrobin` assignor,
//!   Heartbeat in the background on a connection of its own, LeaveGroup on
//!   close; rebalances come out of [`Consumer::poll`] as [`Rebalance`]
//!   events ([`group`]);
//! - **offsets**: [`Consumer::commit`], [`Consumer::committed`] through
//!   OffsetFetch with `require_stable` (a new owner waits for a pending
//!   transaction, KIP-447), [`Consumer::seek_to_committed`] for the rewind
//!   after an aborted transaction (KAFKA-17582), and
//!   [`Consumer::group_metadata`] for the producer's
//!   `send_offsets_to_transaction` ([`offsets`]);
//! - **recovery without user action**: lost connections, leader changes
//!   (metadata refreshed through `exactly-net`'s `on_partition_error`),
//!   coordinator moves, broker restarts.
//!
//! What it does not do: log truncation detection after unclean leader
//! changes (KIP-320's OffsetsForLeaderEpoch), fetching from followers
//! (KIP-392: `client.rack` is sent in Fetch and in group membership, but a
//! preferred read replica the broker names is not followed; every fetch
//! goes to the leader), client-side pattern subscriptions under the
//! classic protocol (`subscribe_pattern` is KIP-848's broker-side regex),
//! deserializers (records are bytes).

mod client;
pub mod config;
mod error;
pub mod fetch;
#[doc(hidden)]
pub mod fuzz;
pub mod group;
mod metrics;
pub mod offsets;
pub mod record;
mod state;

pub use client::{Consumer, ConsumerBuilder, Polled};
pub use config::{
    AssignmentStrategy, ConfigError, ConsumerConfig, ConsumerConfigBuilder, GroupProtocol,
    IsolationLevel, OffsetReset, RemoteAssignor,
};
pub use error::ConsumerError;
pub use group::member::Rebalance;
pub use metrics::{ConsumerMetrics, ConsumerMetricsSnapshot};
pub use offsets::OffsetAndMetadata;
pub use record::{ConsumerRecord, RecordHeader, Records, TimestampType};

pub use exactly_txn::{OffsetCommit, TopicPartition};

/// The group metadata a transactional producer's
/// `send_offsets_to_transaction` takes (KIP-447): the Kafka name for
/// [`exactly_txn::GroupMetadata`].
pub type ConsumerGroupMetadata = exactly_txn::GroupMetadata;

/// The README's sketch compiles (`cargo test --doc -p exactly-consumer`).
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
