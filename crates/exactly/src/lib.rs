//! # exactly
//!
//! A pure-Rust Apache Kafka client built around its own idempotent and
//! transactional producer state machine, for exactly-once
//! consume-transform-produce. No C anywhere in its dependency tree.
//!
//! This crate re-exports the public API of the workspace's crates:
//! [`Producer`] and friends at the top, and each layer as a module
//! ([`producer`], [`net`], [`txn`], [`codec`]).
//!
//! ```no_run
//! # async fn demo() -> Result<(), exactly::ProducerError> {
//! use exactly::{Producer, ProducerRecord};
//!
//! let producer = Producer::from_properties([
//!     ("bootstrap.servers", "127.0.0.1:9092"),
//!     ("transactional.id", "copier-1"),
//! ])
//! .await?;
//! producer.init_transactions().await?;
//! producer.begin_transaction().await?;
//! producer
//!     .send(ProducerRecord::new("out").with_key(b"k").with_value(b"v"))
//!     .await?;
//! producer.commit_transaction().await?;
//! # Ok(()) }
//! ```

pub use exactly_producer::{
    Acks, Compression, ConsumerGroupMetadata, DeliveryFuture, OffsetAndMetadata, Partitioner,
    PartitionerKind, Producer, ProducerBuilder, ProducerConfig, ProducerConfigBuilder,
    ProducerError, ProducerRecord, RecordHeader, RecordMetadata, TopicPartition,
};

/// The async idempotent and transactional producer (`exactly-producer`).
pub mod producer {
    pub use exactly_producer::*;
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
