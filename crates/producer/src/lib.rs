//! # exactly-producer
//!
//! The async idempotent and transactional Kafka producer of `exactly`
//! (KIP-98 idempotence and transactions, KIP-360 epoch bumps, KIP-447 group
//! metadata, KIP-588 timeout recovery, KIP-890 transaction protocol v2,
//! KIP-1050 error categories).
//!
//! ```no_run
//! # async fn demo() -> Result<(), exactly_producer::ProducerError> {
//! use exactly_producer::{Producer, ProducerRecord};
//!
//! let producer = Producer::from_properties([
//!     ("bootstrap.servers", "127.0.0.1:9092"),
//!     ("linger.ms", "5"),
//! ])
//! .await?;
//! let delivery = producer
//!     .send(ProducerRecord::new("events").with_key(b"k").with_value(b"hello"))
//!     .await?;
//! let meta = delivery.await?;
//! println!("partition {} offset {:?}", meta.partition, meta.offset);
//! producer.close(std::time::Duration::from_secs(10)).await?;
//! # Ok(()) }
//! ```
//!
//! How it is built (ARCHITECTURE.md's one-way data flow):
//! - [`Producer::send`] picks the partition ([`partitioner`]: explicit, else
//!   Java-compatible murmur2 of the key, else uniform sticky) and encodes the
//!   record straight into that partition's open batch (the accumulator, over
//!   exactly-codec's `BatchBuilder`), waiting only for `buffer.memory` room
//!   or first-time metadata. It returns a [`DeliveryFuture`].
//! - The driver, the one task the producer runs (`driver/`), takes batches
//!   that are full or past `linger.ms`, closes (compresses) them and hands
//!   them to the sans-IO `exactly_txn::ProducerCore`, which decides when each
//!   goes and with which producer id, epoch and sequence. The driver writes
//!   that stamp into the batch header, merges batches per leader into Produce
//!   requests over exactly-net connections, feeds every outcome back to the
//!   core, and completes the futures from the core's events.
//! - Where tokio is used: the driver (its task, timers, request futures);
//!   the accumulator (a semaphore for `buffer.memory`, bounded by
//!   `max.block.ms`, and a notification that wakes the driver); the
//!   [`Producer`] handle (spawning the driver, a channel of commands to it,
//!   oneshot answers, and in `send` the wait for first-time metadata with
//!   `retry.backoff.ms` between lookups, bounded by `max.block.ms`). The
//!   transaction core itself (exactly-txn) has no runtime at all.
//! - Every error is a [`ProducerError`] answering `is_retriable()`,
//!   `is_abortable()` and `is_fatal()`.
//!
//! Awaiting deliveries: a [`DeliveryFuture`] per record, or a callback
//! ([`DeliveryFuture::on_delivery`]). The cheapest way to learn that every
//! record was written is to drop the futures and call [`Producer::flush`];
//! for per-record outcomes, a callback or awaiting in order cost about 10%
//! more; `FuturesUnordered` and `join_all` over many records cost far more
//! (see [`DeliveryFuture`]'s docs).
//!
//! What it does not do: decide retries or classify errors (the txn core
//! does), or hold any per-record bookkeeping (one shared slot per batch).
//!
//! Differences from the Java client worth knowing: `retries` is accepted but
//! retries are bounded by `delivery.timeout.ms` (0 is refused); `batch.size`
//! counts uncompressed bytes, and a backlogged partition's batch grows past
//! it up to [`ProducerConfig::grown_batch_limit`] (1,000,000 B by default:
//! one batch per partition per request, so Java's 16 KB batches cap a round
//! trip; see that method); `delivery.timeout.ms` runs from the moment a
//! batch leaves the accumulator (at most `linger.ms` after its first record,
//! or longer while its partition already has
//! `max.in.flight.requests.per.connection` batches outstanding), and an
//! in-flight batch expires only once its request's outcome is known (the
//! request timeout bounds that).

mod accumulator;
pub mod config;
mod delivery;
mod driver;
mod error;
pub mod metrics;
pub mod partitioner;
mod producer;
pub mod record;

pub use config::{Acks, ProducerConfig, ProducerConfigBuilder, GROWN_BATCH_LIMIT};
pub use delivery::DeliveryFuture;
pub use error::ProducerError;
pub use metrics::{ProducerMetrics, ProducerMetricsSnapshot};
pub use partitioner::{murmur2, partition_for_key, Partitioner, PartitionerKind};
pub use producer::{ConsumerGroupMetadata, Producer, ProducerBuilder};
pub use record::{ProducerRecord, RecordHeader, RecordMetadata};

/// Re-exported: codecs for `compression.type`.
pub use exactly_codec::Compression;
/// Re-exported: the net layer's errors carried by [`ProducerError`].
pub use exactly_net::{ConfigError, NetError};
/// Re-exported: the partition type of offsets and errors, and the core's
/// error details carried by [`ProducerError`].
pub use exactly_txn::{
    DeliveryError, DeliveryFailure, ErrorReason, GroupMetadata, IdentityCause, OffsetCommit,
    Severity, TopicPartition, TxnError, UsageError,
};
