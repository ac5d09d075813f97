//! The producer's configuration, by Kafka's own property names or a typed
//! builder.
//!
//! The producer takes its own keys (`acks`, `enable.idempotence`,
//! `transactional.id`, `linger.ms`, ...) and passes every other key to
//! [`NetConfigBuilder::set`], which knows the connection keys
//! (`bootstrap.servers`, `request.timeout.ms`, `security.protocol`, ...) and
//! rejects the rest: an unknown or invalid property is always a
//! [`ConfigError`], never ignored. `max.in.flight.requests.per.connection`,
//! `retry.backoff.ms` and `retry.backoff.max.ms` are read by both layers.
//!
//! Consistency rules follow the Java client (KIP-679): idempotence is on by
//! default; asking for it explicitly together with `acks` other than `all`,
//! `retries=0` or more than 5 requests in flight is an error; when it was not
//! asked for explicitly, such settings turn it off. A `transactional.id`
//! requires idempotence.

use std::time::Duration;

use exactly_codec::Compression;
use exactly_net::config::props::{boolean, count, invalid, millis, wire_millis};
use exactly_net::{ConfigError, NetConfig, NetConfigBuilder};

use crate::partitioner::PartitionerKind;

/// `acks`: how many replicas must have a batch before the leader answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Acks {
    /// `acks=0`: the broker does not answer; nothing is known about delivery.
    None,
    /// `acks=1`: the leader wrote it.
    Leader,
    /// `acks=all` (`-1`): every in-sync replica has it. Required for
    /// idempotence.
    #[default]
    All,
}

impl Acks {
    /// The value of the Produce request's `acks` field.
    pub fn wire(self) -> i16 {
        match self {
            Acks::None => 0,
            Acks::Leader => 1,
            Acks::All => -1,
        }
    }
}

/// Every property name the producer itself reads (the net layer's are in
/// [`exactly_net::config::PROPERTY_NAMES`]).
pub const PRODUCER_PROPERTY_NAMES: &[&str] = &[
    "acks",
    "enable.idempotence",
    "transactional.id",
    "transaction.timeout.ms",
    "linger.ms",
    "batch.size",
    "buffer.memory",
    "max.in.flight.requests.per.connection",
    "compression.type",
    "delivery.timeout.ms",
    "retries",
    "partitioner",
    "max.request.size",
    "max.block.ms",
    "retry.backoff.ms",
    "retry.backoff.max.ms",
];

/// The most a batch grows past `batch.size` under backlog (bytes of records
/// before compression; [`ProducerConfig::grown_batch_limit`]): librdkafka's
/// `batch.size` and franz-go's `ProducerBatchMaxBytes` default. It leaves
/// 48 KB under the broker's default `message.max.bytes` (1,048,588) for the
/// batch header and any compression overhead on incompressible data, so the
/// defaults never make a batch a default broker refuses with
/// MESSAGE_TOO_LARGE. A topic with a lower `max.message.bytes` needs a
/// `max.request.size` at most that (as with the Java client, whose records
/// above `max.request.size` are refused before sending).
pub const GROWN_BATCH_LIMIT: usize = 1_000_000;

/// The validated producer configuration.
#[derive(Debug, Clone)]
pub struct ProducerConfig {
    pub(crate) net: NetConfig,
    pub(crate) acks: Acks,
    pub(crate) idempotence: bool,
    pub(crate) transactional_id: Option<String>,
    pub(crate) transaction_timeout: Duration,
    pub(crate) linger: Duration,
    pub(crate) batch_size: usize,
    pub(crate) buffer_memory: usize,
    pub(crate) max_in_flight: usize,
    pub(crate) compression: Compression,
    pub(crate) delivery_timeout: Duration,
    pub(crate) retries: u32,
    pub(crate) partitioner: PartitionerKind,
    pub(crate) max_request_size: usize,
    pub(crate) max_block: Duration,
}

impl ProducerConfig {
    /// The connection settings.
    pub fn net(&self) -> &NetConfig {
        &self.net
    }
    /// `acks`.
    pub fn acks(&self) -> Acks {
        self.acks
    }
    /// Whether the producer is idempotent (`enable.idempotence`, after the
    /// consistency rules).
    pub fn idempotence(&self) -> bool {
        self.idempotence
    }
    /// `transactional.id`.
    pub fn transactional_id(&self) -> Option<&str> {
        self.transactional_id.as_deref()
    }
    /// `transaction.timeout.ms`.
    pub fn transaction_timeout(&self) -> Duration {
        self.transaction_timeout
    }
    /// `linger.ms`.
    pub fn linger(&self) -> Duration {
        self.linger
    }
    /// `batch.size` (bytes of records before compression).
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }
    /// How large (bytes of records before compression) a partition's batch
    /// may grow past `batch.size` while the partition is backlogged: its
    /// `max.in.flight.requests.per.connection` earlier batches are not yet
    /// resolved, so the batch could not be sent anyway. This differs from
    /// the Java client, whose backlog is a queue of `batch.size` batches
    /// sent one per request: with Java's 16,384 B default that caps a
    /// round trip at ~16 KB per partition, where librdkafka and franz-go
    /// default to 1 MB batches. The limit is the smaller of
    /// [`GROWN_BATCH_LIMIT`] and `max.request.size` (which the Java client
    /// documents as a cap on the uncompressed batch size), and never below
    /// `batch.size`; `batch.size=0` (no batching) turns growth off.
    pub fn grown_batch_limit(&self) -> usize {
        if self.batch_size <= 1 {
            return self.batch_size;
        }
        GROWN_BATCH_LIMIT
            .min(self.max_request_size)
            .max(self.batch_size)
    }
    /// `buffer.memory`.
    pub fn buffer_memory(&self) -> usize {
        self.buffer_memory
    }
    /// `max.in.flight.requests.per.connection`.
    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight
    }
    /// `compression.type`.
    pub fn compression(&self) -> Compression {
        self.compression
    }
    /// `delivery.timeout.ms`.
    pub fn delivery_timeout(&self) -> Duration {
        self.delivery_timeout
    }
    /// `request.timeout.ms`.
    pub fn request_timeout(&self) -> Duration {
        self.net.request_timeout()
    }
    /// `retries`.
    pub fn retries(&self) -> u32 {
        self.retries
    }
    /// `partitioner`.
    pub fn partitioner(&self) -> PartitionerKind {
        self.partitioner
    }
    /// `max.request.size`.
    pub fn max_request_size(&self) -> usize {
        self.max_request_size
    }
    /// `max.block.ms`: how long `send` may wait for metadata or buffer space.
    pub fn max_block(&self) -> Duration {
        self.max_block
    }
}

/// Builds a [`ProducerConfig`] (and, through
/// [`crate::Producer::builder`], a producer). Typed setters and
/// [`set`](ProducerConfigBuilder::set) by Kafka property name.
#[derive(Debug, Clone)]
pub struct ProducerConfigBuilder {
    net: NetConfigBuilder,
    acks: Option<Acks>,
    idempotence: Option<bool>,
    transactional_id: Option<String>,
    transaction_timeout: Duration,
    linger: Duration,
    batch_size: usize,
    buffer_memory: usize,
    max_in_flight: usize,
    compression: Compression,
    delivery_timeout: Duration,
    retries: Option<u32>,
    partitioner: PartitionerKind,
    max_request_size: usize,
    max_block: Duration,
}

impl Default for ProducerConfigBuilder {
    fn default() -> Self {
        Self {
            net: NetConfigBuilder::default(),
            acks: None,
            idempotence: None,
            transactional_id: None,
            transaction_timeout: Duration::from_millis(60_000),
            linger: Duration::from_millis(5),
            batch_size: 16_384,
            buffer_memory: 32 * 1024 * 1024,
            max_in_flight: 5,
            compression: Compression::None,
            delivery_timeout: Duration::from_millis(120_000),
            retries: None,
            partitioner: PartitionerKind::Default,
            max_request_size: 1024 * 1024,
            max_block: Duration::from_millis(60_000),
        }
    }
}

/// Parses `compression.type`.
pub fn parse_compression(value: &str) -> Option<Compression> {
    let v = value.trim().to_ascii_lowercase();
    Compression::ALL.into_iter().find(|c| c.name() == v)
}

impl ProducerConfigBuilder {
    /// Sets one property by its Kafka name. Producer keys are taken here,
    /// every other key goes to the net layer; unknown keys and bad values are
    /// errors.
    pub fn set(&mut self, key: &str, value: &str) -> Result<&mut Self, ConfigError> {
        match key {
            "acks" => {
                self.acks = Some(match value.trim().to_ascii_lowercase().as_str() {
                    "all" | "-1" => Acks::All,
                    "1" => Acks::Leader,
                    "0" => Acks::None,
                    _ => return Err(invalid(key, value, "expected all, -1, 0 or 1")),
                })
            }
            "enable.idempotence" => self.idempotence = Some(boolean(key, value)?),
            "transactional.id" => {
                let id = value.trim();
                self.transactional_id = if id.is_empty() {
                    None
                } else {
                    Some(id.to_owned())
                };
            }
            // Sent in InitProducerId as an int32.
            "transaction.timeout.ms" => self.transaction_timeout = wire_millis(key, value, 1)?,
            "linger.ms" => self.linger = millis(key, value, 0)?,
            "batch.size" => {
                // batch.size=0 disables batching in the Java client: one
                // record per batch. A batch always takes at least one record
                // here, so 1 has the same effect.
                self.batch_size = count(key, value, 0)?.max(1);
            }
            "buffer.memory" => self.buffer_memory = count(key, value, 1024)?,
            "max.in.flight.requests.per.connection" => {
                self.net.set(key, value)?;
                self.max_in_flight = count(key, value, 1)?;
            }
            "compression.type" => {
                self.compression = parse_compression(value).ok_or_else(|| {
                    invalid(key, value, "expected none, gzip, snappy, lz4 or zstd")
                })?;
            }
            "delivery.timeout.ms" => self.delivery_timeout = millis(key, value, 1)?,
            "retries" => {
                let n = count(key, value, 0)?;
                self.retries = Some(u32::try_from(n).unwrap_or(u32::MAX));
            }
            "partitioner" => {
                self.partitioner = value.trim().parse().map_err(|e| invalid(key, value, e))?;
            }
            "max.request.size" => self.max_request_size = count(key, value, 1024)?,
            "max.block.ms" => self.max_block = millis(key, value, 0)?,
            _ => {
                self.net.set(key, value)?;
            }
        }
        Ok(self)
    }

    /// `bootstrap.servers`.
    pub fn bootstrap_servers(&mut self, servers: &str) -> Result<&mut Self, ConfigError> {
        self.set("bootstrap.servers", servers)
    }
    /// `acks`.
    pub fn acks(&mut self, acks: Acks) -> &mut Self {
        self.acks = Some(acks);
        self
    }
    /// `enable.idempotence`.
    pub fn idempotence(&mut self, on: bool) -> &mut Self {
        self.idempotence = Some(on);
        self
    }
    /// `transactional.id`.
    pub fn transactional_id(&mut self, id: impl Into<String>) -> &mut Self {
        self.transactional_id = Some(id.into());
        self
    }
    /// `transaction.timeout.ms`.
    pub fn transaction_timeout(&mut self, t: Duration) -> &mut Self {
        self.transaction_timeout = t;
        self
    }
    /// `linger.ms`.
    pub fn linger(&mut self, t: Duration) -> &mut Self {
        self.linger = t;
        self
    }
    /// `batch.size` (Java's 16,384 by default; a backlogged partition's
    /// batch may grow past it, see [`ProducerConfig::grown_batch_limit`]).
    pub fn batch_size(&mut self, bytes: usize) -> &mut Self {
        self.batch_size = bytes.max(1);
        self
    }
    /// `buffer.memory`.
    pub fn buffer_memory(&mut self, bytes: usize) -> &mut Self {
        self.buffer_memory = bytes;
        self
    }
    /// `compression.type`.
    pub fn compression(&mut self, c: Compression) -> &mut Self {
        self.compression = c;
        self
    }
    /// `delivery.timeout.ms`.
    pub fn delivery_timeout(&mut self, t: Duration) -> &mut Self {
        self.delivery_timeout = t;
        self
    }
    /// `partitioner`.
    pub fn partitioner(&mut self, kind: PartitionerKind) -> &mut Self {
        self.partitioner = kind;
        self
    }
    /// The net layer's builder, for settings without a property name (TLS
    /// files are named; an OAUTHBEARER token callback is not).
    pub fn net(&mut self) -> &mut NetConfigBuilder {
        &mut self.net
    }

    /// Checks the settings against each other.
    pub fn build(&self) -> Result<ProducerConfig, ConfigError> {
        let net = self.net.build()?;
        let explicit = self.idempotence == Some(true);
        let acks = self.acks.unwrap_or(Acks::All);
        let retries = self.retries.unwrap_or(u32::MAX);
        let transactional = self.transactional_id.is_some();
        if self.idempotence == Some(false) && transactional {
            return Err(ConfigError::Inconsistent(
                "`transactional.id` requires `enable.idempotence=true`".into(),
            ));
        }
        let mut conflicts = Vec::new();
        if acks != Acks::All {
            conflicts.push("`acks` must be `all`");
        }
        if retries == 0 {
            conflicts.push("`retries` must be non-zero");
        }
        if self.max_in_flight > 5 {
            conflicts.push("`max.in.flight.requests.per.connection` must be at most 5");
        }
        let idempotence = match (self.idempotence, conflicts.is_empty()) {
            (Some(false), _) => false,
            (_, true) => true,
            (None, false) if !transactional => false,
            _ => {
                let who = if transactional && !explicit {
                    "a transactional producer"
                } else {
                    "`enable.idempotence=true`"
                };
                return Err(ConfigError::Inconsistent(format!(
                    "{who} is idempotent: {}",
                    conflicts.join(", ")
                )));
            }
        };
        if retries == 0 {
            // The core retries until `delivery.timeout.ms`; a retry count is
            // not one of its inputs, so a request for none is refused rather
            // than silently ignored.
            return Err(ConfigError::InvalidValue {
                key: "retries".into(),
                value: "0".into(),
                reason: "retries are bounded by `delivery.timeout.ms`; 0 is not supported".into(),
            });
        }
        let min_delivery = self.linger + net.request_timeout();
        if self.delivery_timeout < min_delivery {
            return Err(ConfigError::Inconsistent(format!(
                "`delivery.timeout.ms` ({} ms) must be at least `linger.ms` + `request.timeout.ms` ({} ms)",
                self.delivery_timeout.as_millis(),
                min_delivery.as_millis()
            )));
        }
        if self.max_in_flight == 0 {
            return Err(ConfigError::Inconsistent(
                "`max.in.flight.requests.per.connection` must be at least 1".into(),
            ));
        }
        if self.transaction_timeout.as_millis() > i32::MAX as u128 {
            return Err(ConfigError::Inconsistent(
                "`transaction.timeout.ms` does not fit an int32".into(),
            ));
        }
        Ok(ProducerConfig {
            net,
            acks,
            idempotence,
            transactional_id: self.transactional_id.clone(),
            transaction_timeout: self.transaction_timeout,
            linger: self.linger,
            batch_size: self.batch_size,
            buffer_memory: self.buffer_memory,
            max_in_flight: self.max_in_flight,
            compression: self.compression,
            delivery_timeout: self.delivery_timeout,
            retries,
            partitioner: self.partitioner,
            max_request_size: self.max_request_size,
            max_block: self.max_block,
        })
    }
}

impl ProducerConfig {
    /// A builder with Kafka's defaults.
    pub fn builder() -> ProducerConfigBuilder {
        ProducerConfigBuilder::default()
    }

    /// A configuration from Kafka property names and values.
    ///
    /// ```
    /// use exactly_producer::{Acks, ProducerConfig};
    ///
    /// let c = ProducerConfig::from_properties([
    ///     ("bootstrap.servers", "127.0.0.1:9092"),
    ///     ("acks", "all"),
    ///     ("linger.ms", "10"),
    /// ])
    /// .unwrap();
    /// assert_eq!(c.acks(), Acks::All);
    /// assert!(c.idempotence(), "on by default");
    ///
    /// // Unknown or invalid properties are errors, never ignored.
    /// let e = ProducerConfig::from_properties([
    ///     ("bootstrap.servers", "127.0.0.1:9092"),
    ///     ("linger", "10"),
    /// ])
    /// .unwrap_err();
    /// assert_eq!(e.to_string(), "unknown property `linger`");
    /// ```
    pub fn from_properties<K, V>(
        props: impl IntoIterator<Item = (K, V)>,
    ) -> Result<ProducerConfig, ConfigError>
    where
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut b = ProducerConfigBuilder::default();
        for (k, v) in props {
            b.set(k.as_ref(), v.as_ref())?;
        }
        b.build()
    }

    /// The configuration of the sans-IO core.
    pub(crate) fn core_config(&self) -> exactly_txn::Config {
        exactly_txn::Config {
            transactional_id: self.transactional_id.clone(),
            transaction_timeout_ms: self.transaction_timeout.as_millis() as i32,
            delivery_timeout_ms: self.delivery_timeout.as_millis() as u64,
            retry_backoff_ms: self.net.retry_backoff().as_millis() as u64,
            retry_backoff_max_ms: self.net.retry_backoff_max().as_millis() as u64,
            concurrent_transactions_backoff_ms: 20,
            max_in_flight_per_partition: self.max_in_flight.clamp(1, 5),
            probe_completion: true,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Issue 16 item 5: neither the config, its builder, nor an error
    /// about a secret property prints the secret.
    #[test]
    fn debug_and_errors_print_no_secret() {
        const SECRET: &str = "CLIENT-SECRET-7";
        let props = [
            ("bootstrap.servers", "h:1"),
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanism", "PLAIN"),
            ("sasl.username", "alice"),
            ("sasl.password", SECRET),
        ];
        let mut b = ProducerConfig::builder();
        for (k, v) in props {
            b.set(k, v).unwrap();
        }
        let c = b.build().unwrap();
        for s in [
            format!("{b:?}"),
            format!("{b:#?}"),
            format!("{c:?}"),
            format!("{c:#?}"),
        ] {
            assert!(!s.contains(SECRET), "{s}");
        }
        let c = ProducerConfig::from_properties(props).unwrap();
        assert!(!format!("{c:?}").contains(SECRET));
        // The password without a user name: refused, without the password.
        let e = ProducerConfig::from_properties([
            ("bootstrap.servers", "h:1"),
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanism", "PLAIN"),
            ("sasl.password", SECRET),
        ])
        .unwrap_err();
        assert!(!e.to_string().contains(SECRET) && !format!("{e:?}").contains(SECRET));
    }

    fn props(extra: &[(&str, &str)]) -> Result<ProducerConfig, ConfigError> {
        let mut all = vec![("bootstrap.servers", "127.0.0.1:9092")];
        all.extend_from_slice(extra);
        ProducerConfig::from_properties(all)
    }

    #[test]
    fn grown_batch_limit_follows_max_request_size() {
        let limit = |extra: &[(&str, &str)]| props(extra).unwrap().grown_batch_limit();
        assert_eq!(limit(&[]), GROWN_BATCH_LIMIT);
        // Below the broker's default message.max.bytes with room to spare.
        const { assert!(GROWN_BATCH_LIMIT + 48_000 <= 1_048_588) };
        assert_eq!(limit(&[("max.request.size", "200000")]), 200_000);
        assert_eq!(
            limit(&[("max.request.size", "10485760")]),
            GROWN_BATCH_LIMIT
        );
        assert_eq!(limit(&[("batch.size", "2097152")]), 2 << 20);
        assert_eq!(limit(&[("batch.size", "0")]), 1, "no batching, no growth");
    }

    #[test]
    fn defaults_are_kafkas() {
        let c = props(&[]).unwrap();
        assert_eq!(c.acks(), Acks::All);
        assert!(c.idempotence());
        assert_eq!(c.linger(), Duration::from_millis(5));
        assert_eq!(c.batch_size(), 16_384);
        assert_eq!(c.buffer_memory(), 32 << 20);
        assert_eq!(c.max_in_flight(), 5);
        assert_eq!(c.compression(), Compression::None);
        assert_eq!(c.delivery_timeout(), Duration::from_secs(120));
        assert_eq!(c.request_timeout(), Duration::from_secs(30));
        assert_eq!(c.transactional_id(), None);
    }

    #[test]
    fn every_producer_key_is_parsed() {
        let c = props(&[
            ("acks", "1"),
            ("enable.idempotence", "false"),
            ("linger.ms", "50"),
            ("batch.size", "1048576"),
            ("buffer.memory", "1000000"),
            ("max.in.flight.requests.per.connection", "7"),
            ("compression.type", "ZSTD"),
            ("delivery.timeout.ms", "60000"),
            ("request.timeout.ms", "5000"),
            ("retries", "3"),
            ("partitioner", "round_robin"),
            ("max.request.size", "2000000"),
            ("max.block.ms", "100"),
        ])
        .unwrap();
        assert_eq!(c.acks(), Acks::Leader);
        assert!(!c.idempotence());
        assert_eq!(c.linger(), Duration::from_millis(50));
        assert_eq!(c.batch_size(), 1 << 20);
        assert_eq!(c.buffer_memory(), 1_000_000);
        assert_eq!(c.max_in_flight(), 7);
        assert_eq!(c.net().max_in_flight(), 7);
        assert_eq!(c.compression(), Compression::Zstd);
        assert_eq!(c.request_timeout(), Duration::from_millis(5000));
        assert_eq!(c.retries(), 3);
        assert_eq!(c.partitioner(), PartitionerKind::RoundRobin);
        assert_eq!(c.max_request_size(), 2_000_000);
        assert_eq!(c.max_block(), Duration::from_millis(100));
        let t = props(&[
            ("transactional.id", "tx"),
            ("transaction.timeout.ms", "9000"),
        ])
        .unwrap();
        assert_eq!(t.transactional_id(), Some("tx"));
        assert_eq!(t.core_config().transaction_timeout_ms, 9000);
        assert!(t.idempotence());
    }

    #[test]
    fn unknown_and_invalid_properties_are_errors() {
        assert_eq!(
            props(&[("linger", "5")]).unwrap_err(),
            ConfigError::UnknownProperty("linger".into())
        );
        for (k, v) in [
            ("acks", "2"),
            ("enable.idempotence", "yes"),
            ("linger.ms", "-1"),
            ("compression.type", "brotli"),
            ("partitioner", "random"),
            ("transaction.timeout.ms", "0"),
            ("buffer.memory", "10"),
            ("retries", "-1"),
        ] {
            let e = props(&[(k, v)]).unwrap_err();
            assert!(
                matches!(&e, ConfigError::InvalidValue { key, .. } if key == k),
                "{k}={v}: {e:?}"
            );
        }
    }

    #[test]
    fn idempotence_conflicts_follow_the_java_rules() {
        // Not asked for: conflicting settings turn it off.
        assert!(!props(&[("acks", "1")]).unwrap().idempotence());
        assert!(!props(&[("max.in.flight.requests.per.connection", "6")])
            .unwrap()
            .idempotence());
        // Asked for: an error naming the conflict.
        let e = props(&[("enable.idempotence", "true"), ("acks", "0")]).unwrap_err();
        assert!(e.to_string().contains("`acks` must be `all`"), "{e}");
        // Transactions need idempotence.
        let e = props(&[("transactional.id", "t"), ("acks", "1")]).unwrap_err();
        assert!(e.to_string().contains("transactional"), "{e}");
        let e = props(&[("transactional.id", "t"), ("enable.idempotence", "false")]).unwrap_err();
        assert!(e.to_string().contains("requires"), "{e}");
        // retries=0 cannot be honoured.
        assert!(props(&[("enable.idempotence", "false"), ("retries", "0")]).is_err());
        // delivery.timeout.ms >= linger.ms + request.timeout.ms
        let e = props(&[("delivery.timeout.ms", "1000")]).unwrap_err();
        assert!(e.to_string().contains("delivery.timeout.ms"), "{e}");
    }
}
