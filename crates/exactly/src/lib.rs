//! # exactly
//!
//! A pure-Rust Apache Kafka client built around its own idempotent and
//! transactional producer state machine, for exactly-once
//! consume-transform-produce. No C anywhere in its dependency tree.
//!
//! This crate re-exports the public API of the workspace's crates: the
//! producer's and the consumer's main types at the top, and each layer as a
//! module ([`eos`], [`producer`], [`consumer`], [`net`], [`txn`], [`codec`]), plus
//! [`copy()`] (an exactly-once copy between topics, a thin handler on the
//! session) and [`check`] (its read_committed verdict), [`oracle`] (the
//! exactly-once checker) and [`testkit`] (the simulated broker and seeded
//! fault schedules, to test exactly-once code without a broker); with the
//! default `cli` feature, the `exactly` command-line tool.
//!
//! What it does not do: add behaviour of its own beyond [`copy()`] and [`check`]
//! (everything else is the layer crates', documented there); serialize
//! (keys and values are bytes); administer a cluster (only the topic
//! creation tests and the demo need, in [`net::admin`]).
//!
//! Most exactly-once applications want the [`Session`] ([`eos`]): it runs
//! the loop below with a [`Handler`] of yours in the middle, and keeps the
//! rules (offsets in the transaction, abort and rewind, rebalances, fenced
//! zombies, graceful shutdown) for you. The loop by hand, a sketch:
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use exactly::{Consumer, Polled, Producer, ProducerRecord};
//!
//! let mut consumer = Consumer::from_properties([
//!     ("bootstrap.servers", "127.0.0.1:9092"),
//!     ("group.id", "copier"),
//!     ("auto.offset.reset", "earliest"),
//! ])
//! .await?;
//! consumer.subscribe(&["in"])?;
//! let producer = Producer::from_properties([
//!     ("bootstrap.servers", "127.0.0.1:9092"),
//!     ("transactional.id", "copier-1"),
//! ])
//! .await?;
//! producer.init_transactions().await?;
//! loop {
//!     if let Polled::Records(records) = consumer.poll(Duration::from_millis(500)).await? {
//!         producer.begin_transaction().await?;
//!         for r in &records {
//!             let mut out = ProducerRecord::new("out");
//!             if let Some(v) = r.value() {
//!                 out = out.with_value(v);
//!             }
//!             producer.send(out).await?;
//!         }
//!         producer
//!             .send_offsets_to_transaction(consumer.offsets_to_commit(), &consumer.group_metadata())
//!             .await?;
//!         producer.commit_transaction().await?;
//!     }
//! }
//! # }
//! ```

//!
//! ## Feature flags
//!
//! - `cli` (on by default): the `exactly` command-line tool (`consume`,
//!   `produce`, `metadata`, `offsets`, `topics`, `groups`, `txn`, `copy`,
//!   `verify`) and what only it needs (tokio's multi-threaded runtime, clap,
//!   indicatif, tracing-subscriber, anyhow, serde_json, base64). A library user
//!   turns it off: `exactly = { version = "0.1", default-features = false }`.
//!
//! - `postgres` (off by default): `exactly::postgres`, exactly once between Kafka
//!   and PostgreSQL (the sink that keeps offsets in the database's own
//!   transaction, and the outbox relay), with the pure-Rust driver
//!   `tokio-postgres`; off so the core library pulls in no database driver.
//!
//! - `metrics` (off by default): `exactly::metrics`, the clients' and
//!   sessions' counters, gauges and histograms through the `metrics` facade
//!   (one small pure-Rust crate; the application installs the recorder).
//!
//! No other crate of the workspace has feature flags: TLS, SASL and every
//! compression codec are always built (all pure Rust).
//!
//! ## Stability
//!
//! The crates are at 0.x: a minor release (0.1 -> 0.2) may change the public
//! API, a patch release does not. Items marked `#[doc(hidden)]` (the codec's
//! fuzz hooks and wire-guard introspection) are not public API. The README's
//! "Versioning" section says more.

pub use exactly_consumer::{
    Consumer, ConsumerBuilder, ConsumerConfig, ConsumerError, ConsumerRecord, IsolationLevel,
    OffsetReset, Polled, Rebalance,
};
pub use exactly_eos::{
    per_record, Handler, HandlerError, OutputRecord, Session, SessionBuilder, SessionError,
    SessionStats, ShutdownHandle,
};
pub use exactly_producer::{
    Acks, Compression, ConsumerGroupMetadata, DeliveryFuture, OffsetCommit, Partitioner,
    PartitionerKind, Producer, ProducerBuilder, ProducerConfig, ProducerConfigBuilder,
    ProducerError, ProducerRecord, RecordMetadata, TopicPartition,
};

/// The async idempotent and transactional producer (`exactly-producer`).
pub mod producer {
    pub use exactly_producer::*;
}

/// The `read_committed` consumer and consumer groups (`exactly-consumer`).
pub mod consumer {
    pub use exactly_consumer::*;
}

/// Exactly-once applications (`exactly-eos`): the processing [`Session`]
/// and its [`Handler`], per-partition state ([`eos::state`]), the sink
/// that keeps offsets in the target database ([`eos::sink`]), and the
/// idempotent consumer for inputs written at least once ([`eos::dedup`]).
pub mod eos {
    pub use exactly_eos::*;
}

/// Exactly-once between Kafka and PostgreSQL (`exactly-postgres`, feature
/// `postgres`): [`postgres::PgSink`] and the outbox relay
/// [`postgres::OutboxRelay`].
#[cfg(feature = "postgres")]
pub mod postgres {
    pub use exactly_postgres::*;
}

/// Administration: topics, configs, offsets, groups with lag, and the
/// transaction tools of `kafka-transactions.sh` (list, describe, producers,
/// find hanging, abort). Re-export of `exactly-admin`.
pub mod admin {
    pub use exactly_admin::*;
}

/// Connections, handshake, metadata and coordinators (`exactly-net`).
pub mod net {
    pub use exactly_net::*;
}

/// The sans-IO idempotence and transaction state machine and its error
/// classifier (`exactly-txn`).
pub mod txn {
    pub use exactly_txn::*;
}

/// The wire codec: framing, versions, record batches, compression
/// (`exactly-codec`).
pub mod codec {
    pub use exactly_codec::*;
}

pub mod check;
#[cfg(feature = "cli")]
#[doc(hidden)]
pub mod cli;
pub mod copy;
#[cfg(feature = "metrics")]
pub mod metrics;
/// Test your exactly-once code without a broker: the simulated broker, seeded
/// fault schedules on a virtual clock, the exactly-once checker.
pub use exactly_testkit as testkit;
/// The exactly-once checker (intent headers and the oracle that reads them
/// back); it lives in [`exactly_testkit`] so that tests below this facade and
/// users' tests share it with `exactly verify`.
pub use exactly_testkit::oracle;

pub use copy::{copy, CopyConfig, CopyError, CopyStats, Transformed};

/// The README's Rust snippets compile (`cargo test --doc -p exactly`).
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct ReadmeDoctests;
