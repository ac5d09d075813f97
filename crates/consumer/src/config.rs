//! Consumer configuration under Kafka's property names.
//!
//! [`ConsumerConfigBuilder::set`] takes the consumer's own keys and passes the
//! rest to the net layer's [`NetConfigBuilder`] (`bootstrap.servers`,
//! `client.id`, `security.protocol`, `request.timeout.ms`, ...). A name that
//! neither knows, or a bad value, is a [`ConfigError`]: nothing is silently
//! ignored.
//!
//! Two defaults differ from the Java client, on purpose:
//! - `isolation.level` is `read_committed` (Java: `read_uncommitted`). This
//!   library exists for exactly-once pipelines; a reader that defaults to
//!   `read_uncommitted` shows records of aborted and still-open transactions,
//!   which silently breaks exactly-once for whoever forgot the setting. The
//!   cost of `read_committed` is latency: records wait behind the oldest open
//!   transaction (the last stable offset).
//! - `enable.auto.commit` is `false` (Java: `true`). An auto commit stores the
//!   positions of records a poll *returned*, whether or not they were
//!   processed, so a crash loses or repeats records; in a transactional
//!   pipeline offsets must be committed through the producer's transaction
//!   (`send_offsets_to_transaction`), and an auto commit beside it would move
//!   the group's offsets outside the transaction.

use std::time::Duration;

pub use exactly_net::ConfigError;
// One set of property helpers and bounds for net, producer and consumer
// (`exactly_net::config::props`). The consumer's durations keep the int32
// bound they always had (most are sent to the broker: session, rebalance,
// fetch wait; the others are Java `int` properties).
use exactly_net::config::props::{boolean, int32, invalid, non_empty, wire_millis};
use exactly_net::{NetConfig, NetConfigBuilder};

/// `isolation.level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IsolationLevel {
    /// Only records of committed transactions (and non-transactional ones),
    /// up to the last stable offset. Our default.
    #[default]
    ReadCommitted,
    /// Every record up to the high watermark, aborted ones included.
    ReadUncommitted,
}

impl IsolationLevel {
    /// The wire value (0 = read_uncommitted, 1 = read_committed).
    pub fn wire(self) -> i8 {
        match self {
            IsolationLevel::ReadUncommitted => 0,
            IsolationLevel::ReadCommitted => 1,
        }
    }
}

/// `auto.offset.reset`: where to start when there is no committed offset or
/// the position is out of range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OffsetReset {
    /// The log start offset.
    Earliest,
    /// The end (the last stable offset under `read_committed`).
    #[default]
    Latest,
    /// No reset: report an error.
    None,
}

impl OffsetReset {
    /// The ListOffsets timestamp that asks for this position, if any.
    pub(crate) fn timestamp(self) -> Option<i64> {
        match self {
            OffsetReset::Earliest => Some(-2),
            OffsetReset::Latest => Some(-1),
            OffsetReset::None => None,
        }
    }
}

/// A client-side partition assignor of the classic group protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssignmentStrategy {
    /// `range`: per topic, consecutive ranges of partitions.
    Range,
    /// `roundrobin`: every subscribed partition dealt in turn.
    RoundRobin,
    /// `cooperative-sticky`: balanced and sticky, rebalanced incrementally
    /// (KIP-429): only the partitions that move are revoked.
    CooperativeSticky,
}

impl AssignmentStrategy {
    /// The protocol name in JoinGroup.
    pub fn name(self) -> &'static str {
        match self {
            AssignmentStrategy::Range => "range",
            AssignmentStrategy::RoundRobin => "roundrobin",
            AssignmentStrategy::CooperativeSticky => "cooperative-sticky",
        }
    }

    /// Whether rebalances under this assignor are incremental (KIP-429)
    /// rather than eager.
    pub fn is_cooperative(self) -> bool {
        matches!(self, AssignmentStrategy::CooperativeSticky)
    }

    /// Parses a protocol name or the Java class name.
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim() {
            "range" | "org.apache.kafka.clients.consumer.RangeAssignor" => {
                Some(AssignmentStrategy::Range)
            }
            "roundrobin" | "org.apache.kafka.clients.consumer.RoundRobinAssignor" => {
                Some(AssignmentStrategy::RoundRobin)
            }
            "cooperative-sticky"
            | "org.apache.kafka.clients.consumer.CooperativeStickyAssignor" => {
                Some(AssignmentStrategy::CooperativeSticky)
            }
            _ => None,
        }
    }
}

/// `group.protocol`: which consumer group protocol the member speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GroupProtocol {
    /// `classic`: JoinGroup/SyncGroup, client-side assignors.
    #[default]
    Classic,
    /// `consumer`: KIP-848, ConsumerGroupHeartbeat and server-side
    /// assignment (Kafka 4.0+).
    Consumer,
}

/// `group.remote.assignor`: the broker-side assignor a KIP-848 member asks
/// for (unset: the broker's default, `uniform` unless configured otherwise).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoteAssignor {
    /// `uniform`: spreads partitions evenly, sticky across rebalances.
    Uniform,
    /// `range`: per topic, consecutive ranges (co-partitioned joins).
    Range,
}

impl RemoteAssignor {
    /// The name the broker knows it by.
    pub fn name(self) -> &'static str {
        match self {
            RemoteAssignor::Uniform => "uniform",
            RemoteAssignor::Range => "range",
        }
    }
}

/// The validated consumer configuration.
#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    pub(crate) net: NetConfig,
    pub(crate) group_id: Option<String>,
    pub(crate) group_instance_id: Option<String>,
    pub(crate) isolation_level: IsolationLevel,
    pub(crate) auto_offset_reset: OffsetReset,
    pub(crate) enable_auto_commit: bool,
    pub(crate) auto_commit_interval: Duration,
    pub(crate) fetch_min_bytes: i32,
    pub(crate) fetch_max_bytes: i32,
    pub(crate) max_partition_fetch_bytes: i32,
    pub(crate) fetch_max_wait: Duration,
    pub(crate) max_poll_records: usize,
    pub(crate) session_timeout: Duration,
    pub(crate) heartbeat_interval: Duration,
    pub(crate) max_poll_interval: Duration,
    pub(crate) rebalance_timeout: Duration,
    pub(crate) strategies: Vec<AssignmentStrategy>,
    pub(crate) default_api_timeout: Duration,
    pub(crate) check_crcs: bool,
    /// `fetch.max.uncompressed.bytes`: the total a fetch response may
    /// decompress to (all its compressed batches together).
    pub(crate) fetch_max_uncompressed_bytes: usize,
    /// `enable.fetch.sessions` (ours; the Java client always uses them):
    /// KIP-227 incremental fetch requests.
    pub(crate) fetch_sessions: bool,
    pub(crate) group_protocol: GroupProtocol,
    pub(crate) remote_assignor: Option<RemoteAssignor>,
    /// `client.rack`: sent as Fetch's `rack_id` (KIP-392, v11+), in
    /// ConsumerGroupHeartbeat (KIP-848) and in the classic subscription (v3,
    /// KIP-881); `None` when empty (the Java default).
    pub(crate) client_rack: Option<String>,
}

impl ConsumerConfig {
    /// `group.protocol`.
    pub fn group_protocol(&self) -> GroupProtocol {
        self.group_protocol
    }

    /// `group.remote.assignor` (KIP-848 only).
    pub fn remote_assignor(&self) -> Option<RemoteAssignor> {
        self.remote_assignor
    }

    /// `client.rack` (`None` when empty, the default): the rack sent in
    /// Fetch (KIP-392), ConsumerGroupHeartbeat (KIP-848) and the classic
    /// subscription (KIP-881), so a broker can name a preferred read replica
    /// and rack-aware assignors can use it. Not done: following the
    /// preferred read replica a broker names; every fetch goes to the leader.
    pub fn client_rack(&self) -> Option<&str> {
        self.client_rack.as_deref()
    }

    /// A builder with the defaults.
    pub fn builder() -> ConsumerConfigBuilder {
        ConsumerConfigBuilder::default()
    }

    /// A configuration from Kafka property names and values.
    pub fn from_properties<K, V>(
        props: impl IntoIterator<Item = (K, V)>,
    ) -> Result<ConsumerConfig, ConfigError>
    where
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut b = ConsumerConfigBuilder::default();
        for (k, v) in props {
            b.set(k.as_ref(), v.as_ref())?;
        }
        b.build()
    }

    /// The net layer's part.
    pub fn net(&self) -> &NetConfig {
        &self.net
    }
    /// `group.id`.
    pub fn group_id(&self) -> Option<&str> {
        self.group_id.as_deref()
    }
    /// `group.instance.id` (static membership, KIP-345).
    pub fn group_instance_id(&self) -> Option<&str> {
        self.group_instance_id.as_deref()
    }
    /// `isolation.level`.
    pub fn isolation_level(&self) -> IsolationLevel {
        self.isolation_level
    }
    /// `auto.offset.reset`.
    pub fn auto_offset_reset(&self) -> OffsetReset {
        self.auto_offset_reset
    }
    /// `enable.auto.commit`.
    pub fn enable_auto_commit(&self) -> bool {
        self.enable_auto_commit
    }
    /// `max.poll.records`.
    pub fn max_poll_records(&self) -> usize {
        self.max_poll_records
    }
    /// `session.timeout.ms`.
    pub fn session_timeout(&self) -> Duration {
        self.session_timeout
    }
    /// `heartbeat.interval.ms`.
    pub fn heartbeat_interval(&self) -> Duration {
        self.heartbeat_interval
    }
    /// `rebalance.timeout.ms` (defaults to `max.poll.interval.ms`).
    pub fn rebalance_timeout(&self) -> Duration {
        self.rebalance_timeout
    }
    /// `partition.assignment.strategy`, in preference order.
    pub fn assignment_strategies(&self) -> &[AssignmentStrategy] {
        &self.strategies
    }
    /// `default.api.timeout.ms`.
    pub fn default_api_timeout(&self) -> Duration {
        self.default_api_timeout
    }
}

/// Builder of [`ConsumerConfig`] (and, through [`crate::Consumer::builder`],
/// of a consumer).
#[derive(Debug, Clone)]
pub struct ConsumerConfigBuilder {
    pub(crate) net: NetConfigBuilder,
    cfg: Partial,
}

#[derive(Debug, Clone)]
struct Partial {
    group_id: Option<String>,
    group_instance_id: Option<String>,
    isolation_level: IsolationLevel,
    auto_offset_reset: OffsetReset,
    enable_auto_commit: Option<bool>,
    auto_commit_interval: Duration,
    fetch_min_bytes: i32,
    fetch_max_bytes: i32,
    max_partition_fetch_bytes: i32,
    fetch_max_wait: Duration,
    max_poll_records: usize,
    session_timeout: Duration,
    heartbeat_interval: Duration,
    max_poll_interval: Duration,
    rebalance_timeout: Option<Duration>,
    strategies: Vec<AssignmentStrategy>,
    default_api_timeout: Duration,
    check_crcs: bool,
    fetch_max_uncompressed_bytes: usize,
    fetch_sessions: bool,
    group_protocol: GroupProtocol,
    remote_assignor: Option<RemoteAssignor>,
    client_rack: Option<String>,
    /// Classic-protocol settings set explicitly (refused under
    /// `group.protocol=consumer`).
    classic_only: Vec<&'static str>,
}

/// Settings of the classic protocol that KIP-848 moves to the coordinator
/// (`group.consumer.session.timeout.ms`,
/// `group.consumer.heartbeat.interval.ms`, `group.remote.assignor`): the
/// Java client refuses them with `group.protocol=consumer`, and so do we
/// rather than ignore them silently.
const CLASSIC_ONLY: [&str; 3] = [
    "session.timeout.ms",
    "heartbeat.interval.ms",
    "partition.assignment.strategy",
];

impl Default for ConsumerConfigBuilder {
    fn default() -> Self {
        Self {
            net: NetConfig::builder(),
            cfg: Partial {
                group_id: None,
                group_instance_id: None,
                isolation_level: IsolationLevel::ReadCommitted,
                auto_offset_reset: OffsetReset::Latest,
                enable_auto_commit: None,
                auto_commit_interval: Duration::from_millis(5_000),
                fetch_min_bytes: 1,
                fetch_max_bytes: 52_428_800,
                max_partition_fetch_bytes: 1_048_576,
                fetch_max_wait: Duration::from_millis(500),
                max_poll_records: 500,
                session_timeout: Duration::from_millis(45_000),
                heartbeat_interval: Duration::from_millis(3_000),
                max_poll_interval: Duration::from_millis(300_000),
                rebalance_timeout: None,
                strategies: vec![AssignmentStrategy::Range],
                default_api_timeout: Duration::from_millis(60_000),
                check_crcs: true,
                fetch_max_uncompressed_bytes: DEFAULT_FETCH_MAX_UNCOMPRESSED_BYTES,
                fetch_sessions: true,
                group_protocol: GroupProtocol::Classic,
                remote_assignor: None,
                client_rack: None,
                classic_only: Vec::new(),
            },
        }
    }
}

/// Every property name the consumer itself takes (the net layer's come on
/// top: [`exactly_net::config::PROPERTY_NAMES`]).
pub const PROPERTY_NAMES: &[&str] = &[
    "group.id",
    "group.instance.id",
    "group.protocol",
    "group.remote.assignor",
    "isolation.level",
    "auto.offset.reset",
    "enable.auto.commit",
    "auto.commit.interval.ms",
    "fetch.min.bytes",
    "fetch.max.bytes",
    "max.partition.fetch.bytes",
    "fetch.max.wait.ms",
    "max.poll.records",
    "session.timeout.ms",
    "heartbeat.interval.ms",
    "max.poll.interval.ms",
    "rebalance.timeout.ms",
    "partition.assignment.strategy",
    "default.api.timeout.ms",
    "check.crcs",
    "fetch.max.uncompressed.bytes",
    "client.rack",
];

/// Default of `fetch.max.uncompressed.bytes` (256 MiB): four batches at the
/// per-batch decompression cap.
pub const DEFAULT_FETCH_MAX_UNCOMPRESSED_BYTES: usize = 256 << 20;

impl ConsumerConfigBuilder {
    /// Whether `key` is a property of the consumer (not counting the net
    /// layer's).
    pub fn is_known(key: &str) -> bool {
        PROPERTY_NAMES.contains(&key)
    }

    /// Sets one property by its Kafka name; names the consumer does not own
    /// go to the net layer. Unknown names and bad values are errors.
    pub fn set(&mut self, key: &str, value: &str) -> Result<&mut Self, ConfigError> {
        if let Some(k) = CLASSIC_ONLY.iter().find(|k| **k == key) {
            self.cfg.classic_only.push(k);
        }
        let c = &mut self.cfg;
        match key {
            "group.id" => c.group_id = Some(non_empty(key, value)?),
            "group.instance.id" => c.group_instance_id = Some(non_empty(key, value)?),
            "group.protocol" => {
                c.group_protocol = match value.trim().to_ascii_lowercase().as_str() {
                    "classic" => GroupProtocol::Classic,
                    "consumer" => GroupProtocol::Consumer,
                    _ => return Err(invalid(key, value, "expected classic or consumer")),
                }
            }
            "group.remote.assignor" => {
                c.remote_assignor = match value.trim() {
                    "uniform" | "org.apache.kafka.coordinator.group.assignor.UniformAssignor" => {
                        Some(RemoteAssignor::Uniform)
                    }
                    "range" | "org.apache.kafka.coordinator.group.assignor.RangeAssignor" => {
                        Some(RemoteAssignor::Range)
                    }
                    "" => None,
                    _ => return Err(invalid(key, value, "expected uniform or range")),
                }
            }
            "isolation.level" => {
                c.isolation_level = match value.trim().to_ascii_lowercase().as_str() {
                    "read_committed" => IsolationLevel::ReadCommitted,
                    "read_uncommitted" => IsolationLevel::ReadUncommitted,
                    _ => {
                        return Err(invalid(
                            key,
                            value,
                            "expected read_committed or read_uncommitted",
                        ))
                    }
                }
            }
            "auto.offset.reset" => {
                c.auto_offset_reset = match value.trim().to_ascii_lowercase().as_str() {
                    "earliest" => OffsetReset::Earliest,
                    "latest" => OffsetReset::Latest,
                    "none" => OffsetReset::None,
                    _ => return Err(invalid(key, value, "expected earliest, latest or none")),
                }
            }
            "enable.auto.commit" => c.enable_auto_commit = Some(boolean(key, value)?),
            "auto.commit.interval.ms" => c.auto_commit_interval = wire_millis(key, value, 1)?,
            "fetch.min.bytes" => c.fetch_min_bytes = int32(key, value, 0)?,
            "fetch.max.bytes" => c.fetch_max_bytes = int32(key, value, 1)?,
            "max.partition.fetch.bytes" => c.max_partition_fetch_bytes = int32(key, value, 1)?,
            "fetch.max.wait.ms" => c.fetch_max_wait = wire_millis(key, value, 0)?,
            "max.poll.records" => c.max_poll_records = int32(key, value, 1)? as usize,
            "session.timeout.ms" => c.session_timeout = wire_millis(key, value, 1)?,
            "heartbeat.interval.ms" => c.heartbeat_interval = wire_millis(key, value, 1)?,
            "max.poll.interval.ms" => c.max_poll_interval = wire_millis(key, value, 1)?,
            "rebalance.timeout.ms" => c.rebalance_timeout = Some(wire_millis(key, value, 1)?),
            "partition.assignment.strategy" => {
                let mut list = Vec::new();
                for name in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    let s = AssignmentStrategy::parse(name).ok_or_else(|| {
                        invalid(
                            key,
                            value,
                            format!("`{name}` is not an assignor here (range, roundrobin, cooperative-sticky)"),
                        )
                    })?;
                    if !list.contains(&s) {
                        list.push(s);
                    }
                }
                if list.is_empty() {
                    return Err(invalid(key, value, "name at least one assignor"));
                }
                c.strategies = list;
            }
            "default.api.timeout.ms" => c.default_api_timeout = wire_millis(key, value, 1)?,
            "check.crcs" => c.check_crcs = boolean(key, value)?,
            "enable.fetch.sessions" => c.fetch_sessions = boolean(key, value)?,
            "client.rack" => c.client_rack = rack(value),
            "fetch.max.uncompressed.bytes" => {
                c.fetch_max_uncompressed_bytes = exactly_net::config::props::count(key, value, 1)?
            }
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
    /// `group.id`.
    pub fn group_id(&mut self, id: impl Into<String>) -> &mut Self {
        self.cfg.group_id = Some(id.into());
        self
    }
    /// `group.instance.id`.
    pub fn group_instance_id(&mut self, id: impl Into<String>) -> &mut Self {
        self.cfg.group_instance_id = Some(id.into());
        self
    }
    /// `isolation.level`.
    pub fn isolation_level(&mut self, level: IsolationLevel) -> &mut Self {
        self.cfg.isolation_level = level;
        self
    }
    /// `auto.offset.reset`.
    pub fn auto_offset_reset(&mut self, reset: OffsetReset) -> &mut Self {
        self.cfg.auto_offset_reset = reset;
        self
    }
    /// `enable.auto.commit`.
    pub fn enable_auto_commit(&mut self, on: bool) -> &mut Self {
        self.cfg.enable_auto_commit = Some(on);
        self
    }
    /// `max.poll.records`.
    pub fn max_poll_records(&mut self, n: usize) -> &mut Self {
        self.cfg.max_poll_records = n;
        self
    }
    /// `fetch.max.wait.ms`.
    pub fn fetch_max_wait(&mut self, t: Duration) -> &mut Self {
        self.cfg.fetch_max_wait = t;
        self
    }
    /// `session.timeout.ms` and `heartbeat.interval.ms`.
    pub fn session(&mut self, session_timeout: Duration, heartbeat: Duration) -> &mut Self {
        self.cfg.session_timeout = session_timeout;
        self.cfg.heartbeat_interval = heartbeat;
        self.cfg.classic_only.extend(&CLASSIC_ONLY[..2]);
        self
    }
    /// `partition.assignment.strategy`.
    pub fn assignment_strategies(&mut self, s: &[AssignmentStrategy]) -> &mut Self {
        self.cfg.strategies = s.to_vec();
        self.cfg.classic_only.push(CLASSIC_ONLY[2]);
        self
    }
    /// `group.protocol`.
    pub fn group_protocol(&mut self, p: GroupProtocol) -> &mut Self {
        self.cfg.group_protocol = p;
        self
    }
    /// `group.remote.assignor` (KIP-848).
    pub fn remote_assignor(&mut self, a: RemoteAssignor) -> &mut Self {
        self.cfg.remote_assignor = Some(a);
        self
    }
    /// `client.rack` (empty: none).
    pub fn client_rack(&mut self, rack: &str) -> &mut Self {
        self.cfg.client_rack = self::rack(rack);
        self
    }
    /// The net layer's builder, for settings without a property name (an
    /// OAUTHBEARER token callback, TLS files).
    pub fn net(&mut self) -> &mut NetConfigBuilder {
        &mut self.net
    }

    /// Checks the settings against each other.
    pub fn build(&self) -> Result<ConsumerConfig, ConfigError> {
        let net = self.net.build()?;
        let c = &self.cfg;
        if c.group_protocol == GroupProtocol::Consumer {
            if let Some(k) = c.classic_only.first() {
                return Err(ConfigError::Inconsistent(format!(
                    "`{k}` is not supported with `group.protocol=consumer`: the group \
                     coordinator decides it (group.consumer.session.timeout.ms, \
                     group.consumer.heartbeat.interval.ms, group.remote.assignor)"
                )));
            }
        }
        if c.heartbeat_interval >= c.session_timeout {
            return Err(ConfigError::Inconsistent(
                "`heartbeat.interval.ms` must be lower than `session.timeout.ms`".into(),
            ));
        }
        if c.group_instance_id.is_some() && c.group_id.is_none() {
            return Err(ConfigError::Inconsistent(
                "`group.instance.id` needs `group.id`".into(),
            ));
        }
        if c.enable_auto_commit == Some(true) && c.group_id.is_none() {
            return Err(ConfigError::Inconsistent(
                "`enable.auto.commit=true` needs `group.id`".into(),
            ));
        }
        if c.max_poll_records == 0 || c.strategies.is_empty() {
            return Err(ConfigError::Inconsistent(
                "`max.poll.records` and `partition.assignment.strategy` must not be empty".into(),
            ));
        }
        Ok(ConsumerConfig {
            net,
            group_id: c.group_id.clone(),
            group_instance_id: c.group_instance_id.clone(),
            isolation_level: c.isolation_level,
            auto_offset_reset: c.auto_offset_reset,
            enable_auto_commit: c.enable_auto_commit.unwrap_or(false),
            auto_commit_interval: c.auto_commit_interval,
            fetch_min_bytes: c.fetch_min_bytes,
            fetch_max_bytes: c.fetch_max_bytes,
            max_partition_fetch_bytes: c.max_partition_fetch_bytes,
            fetch_max_wait: c.fetch_max_wait,
            max_poll_records: c.max_poll_records,
            session_timeout: c.session_timeout,
            heartbeat_interval: c.heartbeat_interval,
            max_poll_interval: c.max_poll_interval,
            rebalance_timeout: c.rebalance_timeout.unwrap_or(c.max_poll_interval),
            strategies: c.strategies.clone(),
            default_api_timeout: c.default_api_timeout,
            check_crcs: c.check_crcs,
            fetch_max_uncompressed_bytes: c.fetch_max_uncompressed_bytes,
            fetch_sessions: c.fetch_sessions,
            group_protocol: c.group_protocol,
            remote_assignor: c.remote_assignor,
            client_rack: c.client_rack.clone(),
        })
    }
}

/// `client.rack`: empty (the Java default) or blank means none.
fn rack(value: &str) -> Option<String> {
    let v = value.trim();
    (!v.is_empty()).then(|| v.to_owned())
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
        let mut b = ConsumerConfig::builder();
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
        let c = ConsumerConfig::from_properties(props).unwrap();
        assert!(!format!("{c:?}").contains(SECRET));
        // The password without a user name: refused, without the password.
        let e = ConsumerConfig::from_properties([
            ("bootstrap.servers", "h:1"),
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanism", "PLAIN"),
            ("sasl.password", SECRET),
        ])
        .unwrap_err();
        assert!(!e.to_string().contains(SECRET) && !format!("{e:?}").contains(SECRET));
    }

    #[test]
    fn classic_settings_are_refused_under_the_consumer_protocol() {
        for key in CLASSIC_ONLY {
            let value = if key == "partition.assignment.strategy" {
                "range"
            } else {
                "30000"
            };
            // In either order: the check is on the whole configuration.
            for props in [
                [("group.protocol", "consumer"), (key, value)],
                [(key, value), ("group.protocol", "consumer")],
            ] {
                let mut all = vec![("bootstrap.servers", "127.0.0.1:9092"), ("group.id", "g")];
                all.extend(props);
                match ConsumerConfig::from_properties(all) {
                    Err(ConfigError::Inconsistent(m)) => assert!(m.contains(key), "{m}"),
                    other => panic!("{key}: {other:?}"),
                }
            }
            // The classic protocol takes them.
            ConsumerConfig::from_properties([
                ("bootstrap.servers", "127.0.0.1:9092"),
                ("group.protocol", "classic"),
                (key, value),
            ])
            .unwrap();
        }
        // The typed builders count as set too.
        let mut b = ConsumerConfig::builder();
        b.bootstrap_servers("127.0.0.1:9092").unwrap();
        b.group_protocol(GroupProtocol::Consumer)
            .assignment_strategies(&[AssignmentStrategy::Range]);
        assert!(matches!(b.build(), Err(ConfigError::Inconsistent(_))));
        // Untouched defaults are fine.
        let mut b = ConsumerConfig::builder();
        b.bootstrap_servers("127.0.0.1:9092").unwrap();
        b.group_protocol(GroupProtocol::Consumer);
        b.build().unwrap();
    }

    #[test]
    fn defaults_and_kafka_names() {
        let c = ConsumerConfig::from_properties([
            ("bootstrap.servers", "127.0.0.1:9092"),
            ("group.id", "g"),
            ("client.id", "me"),
            ("fetch.max.wait.ms", "100"),
            (
                "partition.assignment.strategy",
                "roundrobin, org.apache.kafka.clients.consumer.RangeAssignor",
            ),
            ("max.poll.interval.ms", "60000"),
        ])
        .unwrap();
        assert_eq!(c.isolation_level(), IsolationLevel::ReadCommitted);
        assert!(!c.enable_auto_commit());
        assert_eq!(c.auto_offset_reset(), OffsetReset::Latest);
        assert_eq!(c.group_id(), Some("g"));
        assert_eq!(c.net().client_id(), "me");
        assert_eq!(c.fetch_max_wait, Duration::from_millis(100));
        assert_eq!(
            c.assignment_strategies(),
            [AssignmentStrategy::RoundRobin, AssignmentStrategy::Range]
        );
        assert_eq!(c.rebalance_timeout(), Duration::from_secs(60));
        assert_eq!(c.max_poll_records(), 500);
        assert_eq!(c.client_rack(), None);
    }

    #[test]
    fn client_rack_is_taken_and_empty_means_none() {
        let with = |v: &str| {
            ConsumerConfig::from_properties([("bootstrap.servers", "h:1"), ("client.rack", v)])
                .unwrap()
                .client_rack()
                .map(str::to_owned)
        };
        assert_eq!(with("use1-az2").as_deref(), Some("use1-az2"));
        assert_eq!(with(""), None);
        assert_eq!(with("  "), None);
        assert!(ConsumerConfigBuilder::is_known("client.rack"));
    }

    #[test]
    fn unknown_and_invalid_properties_are_errors() {
        let mut b = ConsumerConfig::builder();
        assert_eq!(
            b.set("group.idd", "g").unwrap_err(),
            ConfigError::UnknownProperty("group.idd".into())
        );
        for (k, v) in [
            ("isolation.level", "serializable"),
            ("auto.offset.reset", "smallest"),
            ("enable.auto.commit", "yes"),
            ("max.poll.records", "0"),
            ("fetch.max.wait.ms", "-1"),
            ("partition.assignment.strategy", "sticky"),
            ("partition.assignment.strategy", ""),
            ("group.protocol", "kip848"),
            ("group.remote.assignor", "sticky"),
            ("group.id", " "),
            ("session.timeout.ms", "99999999999"),
        ] {
            assert!(
                matches!(b.set(k, v), Err(ConfigError::InvalidValue { .. })),
                "{k}={v}"
            );
        }
    }

    #[test]
    fn inconsistent_settings_are_errors() {
        let base = [("bootstrap.servers", "h:1")];
        let with = |extra: &[(&str, &str)]| {
            ConsumerConfig::from_properties(base.iter().chain(extra.iter()).copied())
        };
        assert!(matches!(
            with(&[
                ("heartbeat.interval.ms", "10000"),
                ("session.timeout.ms", "6000")
            ]),
            Err(ConfigError::Inconsistent(_))
        ));
        assert!(matches!(
            with(&[("group.instance.id", "i1")]),
            Err(ConfigError::Inconsistent(_))
        ));
        assert!(matches!(
            with(&[("enable.auto.commit", "true")]),
            Err(ConfigError::Inconsistent(_))
        ));
        assert!(matches!(
            ConsumerConfig::from_properties([("group.id", "g")]),
            Err(ConfigError::Inconsistent(_))
        ));
        assert!(with(&[("group.protocol", "CLASSIC")]).is_ok());
        let c = with(&[
            ("group.protocol", "consumer"),
            ("group.remote.assignor", "range"),
        ])
        .unwrap();
        assert_eq!(c.group_protocol(), GroupProtocol::Consumer);
        assert_eq!(c.remote_assignor(), Some(RemoteAssignor::Range));
        let c = with(&[]).unwrap();
        assert_eq!(c.group_protocol(), GroupProtocol::Classic);
        assert_eq!(c.remote_assignor(), None);
    }
}
