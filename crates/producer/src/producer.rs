//! The public [`Producer`]: a cheap-to-clone handle over the accumulator
//! (shared with `send` callers) and the driver task (which owns the txn
//! core). Every call is async and never blocks the runtime.

use std::sync::Arc;
use std::time::Duration;

use exactly_codec::BatchBuilder;
use exactly_codec::Compression;
use exactly_net::{Client, ConfigError, MetricsSnapshot};
use exactly_txn::{GroupMetadata, OffsetCommit, ProducerCore};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::accumulator::{Accumulator, AppendError};
use crate::config::{Acks, ProducerConfig, ProducerConfigBuilder};
use crate::delivery::DeliveryFuture;
use crate::driver::{broker_info, Command, Driver};
use crate::error::ProducerError;
use crate::metrics::{ProducerMetrics, ProducerMetricsSnapshot};
use crate::partitioner::PartitionerKind;
use crate::record::ProducerRecord;

/// A consumer group's identity for [`Producer::send_offsets_to_transaction`]
/// (KIP-447): the group coordinator fences a zombie member by its generation,
/// member id and group instance id. The same type as
/// `exactly_consumer::ConsumerGroupMetadata` (what `Consumer::group_metadata`
/// returns); [`ConsumerGroupMetadata::new`] makes the metadata of a group
/// with no member.
pub type ConsumerGroupMetadata = GroupMetadata;

/// Builds a [`Producer`]: Kafka property names through
/// [`set`](ProducerBuilder::set), or typed setters.
///
/// ```no_run
/// # async fn demo() -> Result<(), exactly_producer::ProducerError> {
/// use exactly_producer::Producer;
///
/// let producer = Producer::builder()
///     .set("bootstrap.servers", "127.0.0.1:9092")?
///     .set("linger.ms", "10")?
///     .set("compression.type", "lz4")?
///     .build()
///     .await?;
/// # let _ = producer; Ok(()) }
/// ```
#[derive(Debug, Clone, Default)]
pub struct ProducerBuilder {
    config: ProducerConfigBuilder,
}

impl ProducerBuilder {
    /// Sets a property by its Kafka name (producer keys here, connection
    /// keys passed to the net layer). Unknown keys and bad values are errors.
    pub fn set(&mut self, key: &str, value: &str) -> Result<&mut Self, ConfigError> {
        self.config.set(key, value)?;
        Ok(self)
    }
    /// `bootstrap.servers`.
    pub fn bootstrap_servers(&mut self, servers: &str) -> Result<&mut Self, ConfigError> {
        self.set("bootstrap.servers", servers)
    }
    /// `acks`.
    pub fn acks(&mut self, acks: Acks) -> &mut Self {
        self.config.acks(acks);
        self
    }
    /// `enable.idempotence`.
    pub fn idempotence(&mut self, on: bool) -> &mut Self {
        self.config.idempotence(on);
        self
    }
    /// `transactional.id`.
    pub fn transactional_id(&mut self, id: impl Into<String>) -> &mut Self {
        self.config.transactional_id(id);
        self
    }
    /// `transaction.timeout.ms`.
    pub fn transaction_timeout(&mut self, t: Duration) -> &mut Self {
        self.config.transaction_timeout(t);
        self
    }
    /// `linger.ms`.
    pub fn linger(&mut self, t: Duration) -> &mut Self {
        self.config.linger(t);
        self
    }
    /// `batch.size`.
    pub fn batch_size(&mut self, bytes: usize) -> &mut Self {
        self.config.batch_size(bytes);
        self
    }
    /// `buffer.memory`.
    pub fn buffer_memory(&mut self, bytes: usize) -> &mut Self {
        self.config.buffer_memory(bytes);
        self
    }
    /// `compression.type`.
    pub fn compression(&mut self, c: Compression) -> &mut Self {
        self.config.compression(c);
        self
    }
    /// `delivery.timeout.ms`.
    pub fn delivery_timeout(&mut self, t: Duration) -> &mut Self {
        self.config.delivery_timeout(t);
        self
    }
    /// `partitioner`.
    pub fn partitioner(&mut self, kind: PartitionerKind) -> &mut Self {
        self.config.partitioner(kind);
        self
    }
    /// The configuration builder (for the net layer's typed settings).
    pub fn config_mut(&mut self) -> &mut ProducerConfigBuilder {
        &mut self.config
    }

    /// Validates the configuration, connects to the cluster and starts the
    /// producer. A transactional producer then needs
    /// [`Producer::init_transactions`]; an idempotent one initializes on its
    /// own (records sent meanwhile wait for its producer id).
    pub async fn build(&self) -> Result<Producer, ProducerError> {
        Producer::new(self.config.build()?).await
    }
}

/// An async Kafka producer: idempotent by default (KIP-98), transactional
/// with a `transactional.id` (KIP-98, KIP-447, KIP-890).
///
/// Cheap to clone: clones share one accumulator and one driver. When the
/// last clone is dropped, buffered records are still delivered (for up to
/// `delivery.timeout.ms`) and the driver stops; [`close`](Producer::close)
/// does it with a deadline and reports the result.
///
/// A transaction:
///
/// ```no_run
/// # async fn demo() -> Result<(), exactly_producer::ProducerError> {
/// use exactly_producer::{Producer, ProducerRecord};
///
/// let producer = Producer::builder()
///     .set("bootstrap.servers", "127.0.0.1:9092")?
///     .set("transactional.id", "orders-copier-1")?
///     .build()
///     .await?;
/// producer.init_transactions().await?;
/// producer.begin_transaction().await?;
/// for i in 0..10u32 {
///     let value = i.to_string();
///     producer
///         .send(ProducerRecord::new("orders").with_value(value.as_bytes()))
///         .await?;
/// }
/// match producer.commit_transaction().await {
///     Ok(()) => {}
///     Err(e) if e.is_abortable() => producer.abort_transaction().await?,
///     Err(e) => return Err(e),
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Producer {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    acc: Arc<Accumulator>,
    cmd: mpsc::UnboundedSender<Command>,
    client: Client,
    config: Arc<ProducerConfig>,
    metrics: Arc<ProducerMetrics>,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Producer {
    /// A builder with Kafka's defaults.
    pub fn builder() -> ProducerBuilder {
        ProducerBuilder::default()
    }

    /// A producer from Kafka property names and values.
    pub async fn from_properties<K, V>(
        props: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Producer, ProducerError>
    where
        K: AsRef<str>,
        V: AsRef<str>,
    {
        Self::new(ProducerConfig::from_properties(props)?).await
    }

    /// Connects and starts a producer with `config`.
    pub async fn new(config: ProducerConfig) -> Result<Producer, ProducerError> {
        let client = Client::connect(config.net.clone()).await?;
        // A producer may start before its cluster is reachable (as with the
        // Java client, construction does not wait for brokers): then the
        // versions are learned from the first coordinator exchange, which
        // always precedes any Produce and any `begin` (InitProducerId comes
        // first). Until then the core holds the v1 profile, which every
        // broker accepts.
        let (info, features_epoch) = match client.any_connection().await {
            Ok(conn) => (
                broker_info(conn.versions()),
                conn.versions().finalized_features_epoch(),
            ),
            Err(e) if e.is_retriable() => {
                tracing::warn!(error = %e, "no broker reachable yet; versions learned on first contact");
                (exactly_txn::BrokerInfo::v1(), i64::MIN)
            }
            Err(e) => return Err(e.into()),
        };
        let config = Arc::new(config);
        let core = ProducerCore::new(config.core_config(), info);
        let acc = Arc::new(Accumulator::new(
            config.batch_size,
            config.grown_batch_limit(),
            config.buffer_memory,
            config.compression,
            config.partitioner,
            config.transactional_id.is_some(),
            now_ms() as u64 ^ u64::from(std::process::id()),
        ));
        let (tx, rx) = mpsc::unbounded_channel();
        let metrics = Arc::new(ProducerMetrics::default());
        let driver = Driver::new(
            core,
            client.clone(),
            acc.clone(),
            config.clone(),
            rx,
            features_epoch,
            metrics.clone(),
        );
        tokio::spawn(driver.run());
        Ok(Producer {
            inner: Arc::new(Inner {
                acc,
                cmd: tx,
                client,
                config,
                metrics,
            }),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &ProducerConfig {
        &self.inner.config
    }

    /// The connection layer's counters (requests, errors by code, bytes...).
    pub fn metrics(&self) -> MetricsSnapshot {
        self.inner.client.metrics_snapshot()
    }

    /// The producer's own counters: records, batches and bytes delivered,
    /// retries, epoch bumps, producer id rotations, transactions committed
    /// and aborted, commit latency ([`crate::metrics`]).
    pub fn producer_metrics(&self) -> ProducerMetricsSnapshot {
        self.inner.metrics.snapshot()
    }

    /// The commit latencies recorded since the last call (for a histogram;
    /// see [`ProducerMetrics::take_commit_latencies`]).
    pub fn take_commit_latencies(&self) -> Vec<Duration> {
        self.inner.metrics.take_commit_latencies()
    }

    /// Appends a record to its partition's open batch and returns the
    /// future of its delivery.
    ///
    /// Waits (up to `max.block.ms`) only for `buffer.memory` to have room
    /// and, the first time a topic is used, for its metadata. The partition
    /// is the record's own, else murmur2 of the key (as the Java client),
    /// else uniform sticky. Errors at this point (closed producer, no open
    /// transaction, a record too large, an unknown partition, an abortable
    /// or fatal state) mean the record was not accepted.
    pub async fn send(&self, record: ProducerRecord<'_>) -> Result<DeliveryFuture, ProducerError> {
        let inner = &*self.inner;
        let cfg = &inner.config;
        let size = BatchBuilder::max_record_size(record.key, record.value, &record.headers);
        let wire = size + exactly_codec::record::BATCH_HEADER_LEN;
        if wire > cfg.max_request_size {
            return Err(ProducerError::RecordTooLarge {
                size: wire,
                limit: "max.request.size",
                max: cfg.max_request_size,
            });
        }
        if size > cfg.buffer_memory {
            return Err(ProducerError::RecordTooLarge {
                size,
                limit: "buffer.memory",
                max: cfg.buffer_memory,
            });
        }
        let timestamp = record.timestamp.unwrap_or_else(now_ms);
        let started = Instant::now();
        inner.acc.reserve(size, cfg.max_block).await?;
        let mut refreshed = false;
        loop {
            match inner.acc.append(&record, timestamp, size) {
                Ok((future, wake)) => {
                    if wake {
                        inner.acc.wake.notify_one();
                    }
                    return Ok(future);
                }
                Err(AppendError::Refused(e)) => {
                    inner.acc.release(size);
                    return Err(e);
                }
                Err(AppendError::NoSuchPartition(count)) if refreshed => {
                    inner.acc.release(size);
                    return Err(ProducerError::UnknownTopicOrPartition {
                        topic: record.topic.to_owned(),
                        partition: record.partition,
                        reason: format!("the topic has {count} partitions"),
                    });
                }
                Err(AppendError::UnknownTopic | AppendError::NoSuchPartition(_)) => {
                    let deadline = started + cfg.max_block;
                    if let Err(e) = self
                        .wait_for_topic(record.topic, record.partition, deadline)
                        .await
                    {
                        inner.acc.release(size);
                        return Err(e);
                    }
                    refreshed = true;
                }
            }
        }
    }

    /// Fetches metadata until `topic` has partitions (and `partition`, when
    /// named), or `deadline`.
    async fn wait_for_topic(
        &self,
        topic: &str,
        partition: Option<i32>,
        deadline: Instant,
    ) -> Result<(), ProducerError> {
        let inner = &*self.inner;
        let mut first = true;
        let mut reason = String::from("no metadata");
        loop {
            let view = if first {
                inner.client.metadata_for(&[topic]).await
            } else {
                inner.client.refresh_metadata(&[topic]).await
            };
            first = false;
            // The attempt's network failure, if no broker answered it.
            let mut unreachable = None;
            match view {
                Ok(view) => {
                    let count = view
                        .topic(topic)
                        .and_then(|t| t.partitions.iter().map(|p| p.partition + 1).max())
                        .unwrap_or(0);
                    if count > 0 {
                        inner.acc.set_partition_count(topic, count as usize);
                        if partition.is_none_or(|p| p < count) {
                            return Ok(());
                        }
                        reason = format!("the topic has {count} partitions");
                    } else if let Some(code) = view.topic_error(topic) {
                        reason = code.to_string();
                        if !code.is_retriable() {
                            return Err(ProducerError::UnknownTopicOrPartition {
                                topic: topic.to_owned(),
                                partition,
                                reason,
                            });
                        }
                    }
                }
                Err(e) if !e.is_retriable() => return Err(ProducerError::Net(e)),
                Err(e) => {
                    reason = e.to_string();
                    unreachable = Some(e);
                }
            }
            let backoff = inner
                .config
                .net
                .retry_backoff()
                .max(Duration::from_millis(10));
            if Instant::now() + backoff > deadline {
                // No broker answered: that is a (retriable) network failure,
                // not news about the topic.
                if let Some(e) = unreachable {
                    return Err(ProducerError::Net(e));
                }
                return Err(ProducerError::UnknownTopicOrPartition {
                    topic: topic.to_owned(),
                    partition,
                    reason: format!("{reason} after max.block.ms"),
                });
            }
            tokio::time::sleep(backoff).await;
        }
    }

    async fn call(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<(), ProducerError>>) -> Command,
    ) -> Result<(), ProducerError> {
        let (tx, rx) = oneshot::channel();
        self.inner
            .cmd
            .send(make(tx))
            .map_err(|_| ProducerError::Closed)?;
        rx.await.unwrap_or(Err(ProducerError::Closed))
    }

    /// Sends every buffered record now (ignoring `linger.ms`) and waits
    /// until each record sent before this call is delivered or failed.
    /// Returns the first failure among them (a failed send is never hidden,
    /// unlike KAFKA-15259).
    pub async fn flush(&self) -> Result<(), ProducerError> {
        self.call(Command::Flush).await
    }

    /// Transactional producer: finds the transaction coordinator and gets
    /// the producer id and epoch for `transactional.id`, fencing older
    /// producers with the same id and ending their open transaction. Call
    /// once, before the first transaction.
    pub async fn init_transactions(&self) -> Result<(), ProducerError> {
        self.call(Command::InitTransactions).await
    }

    /// Begins a transaction (local: nothing is sent until the first record).
    pub async fn begin_transaction(&self) -> Result<(), ProducerError> {
        self.call(Command::Begin).await
    }

    /// Adds consumed offsets (the next offset to consume per partition) to
    /// the transaction: they become the group's committed offsets only if
    /// the transaction commits (KIP-98, KIP-447). Waits until the group
    /// coordinator holds them for the transaction. With the consumer:
    /// `producer.send_offsets_to_transaction(consumer.offsets_to_commit(),
    /// &consumer.group_metadata())`.
    ///
    /// A group error (a stale generation, an unknown member: a zombie
    /// consumer) fails the transaction, which must then be aborted.
    pub async fn send_offsets_to_transaction(
        &self,
        offsets: impl IntoIterator<Item = OffsetCommit>,
        group: &ConsumerGroupMetadata,
    ) -> Result<(), ProducerError> {
        let offsets: Vec<OffsetCommit> = offsets.into_iter().collect();
        let group = group.clone();
        self.call(|reply| Command::SendOffsets {
            group,
            offsets,
            reply,
        })
        .await
    }

    /// Commits the transaction: sends every buffered record, waits for all
    /// of them, then ends the transaction. Fails (abortable) if any record of
    /// the transaction failed: a transaction with a failed send never
    /// commits (KAFKA-9279). Calling it again after the future was dropped
    /// waits for the same commit.
    pub async fn commit_transaction(&self) -> Result<(), ProducerError> {
        self.call(Command::Commit).await
    }

    /// Aborts the transaction: buffered records are failed, nothing of the
    /// transaction becomes visible to `read_committed` readers.
    pub async fn abort_transaction(&self) -> Result<(), ProducerError> {
        self.call(Command::Abort).await
    }

    /// Stops accepting records, delivers what is buffered (a transactional
    /// producer aborts its open transaction instead) and closes the
    /// connections, waiting at most `timeout`. Records still unresolved then
    /// fail with [`ProducerError::Closed`].
    pub async fn close(&self, timeout: Duration) -> Result<(), ProducerError> {
        self.call(|reply| Command::Close { timeout, reply }).await
    }
}
