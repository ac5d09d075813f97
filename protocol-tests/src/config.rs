//! What kind of broker (or cluster) a test wants.

/// The transaction protocol the cluster is formatted with (`transaction.version`
/// finalized feature; KIP-890).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransactionVersion {
    /// Pre-KIP-890 flow: explicit AddPartitionsToTxn, EndTxn without new epoch.
    V1,
    /// KIP-890 part 2: implicit partition add, epoch bumped every transaction.
    V2,
}

impl TransactionVersion {
    /// The feature level.
    pub fn level(self) -> i16 {
        match self {
            TransactionVersion::V1 => 1,
            TransactionVersion::V2 => 2,
        }
    }

    /// Both versions, for tests that must run under each.
    pub const ALL: [TransactionVersion; 2] = [TransactionVersion::V2, TransactionVersion::V1];
}

/// An extra listener (beside the PLAINTEXT one the harness always has), e.g.
/// SASL_SSL for security tests. The harness picks its port on every node and
/// adds it to `listeners`, `advertised.listeners` and the protocol map; any
/// listener-specific settings go in [`BrokerConfig::server_properties`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraListener {
    /// Listener name, e.g. `SASL_SSL` or `EXTERNAL`.
    pub name: String,
    /// Security protocol: `PLAINTEXT`, `SSL`, `SASL_PLAINTEXT` or `SASL_SSL`.
    pub security_protocol: String,
    /// The port clients are told to use for this listener (in metadata),
    /// when it is not the listener's own: a chaos proxy's port, so that
    /// the clients that bootstrap through this listener reach every node
    /// through the proxy while other listeners stay direct. One node only
    /// (every node would advertise the same port).
    pub advertised_port: Option<u16>,
}

impl ExtraListener {
    /// A listener named `name` speaking `security_protocol`, advertised at
    /// its own port.
    pub fn new(name: impl Into<String>, security_protocol: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            security_protocol: security_protocol.into(),
            advertised_port: None,
        }
    }

    /// Advertised at `port` (a proxy's) instead of its own.
    pub fn advertised_at(mut self, port: u16) -> Self {
        self.advertised_port = Some(port);
        self
    }
}

/// A broker (or cluster) to start.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// Transaction protocol; defaults to V2 (the 4.x default).
    pub transaction_version: TransactionVersion,
    /// Number of nodes: 1 (combined broker+controller, `--standalone`) or 3
    /// (static quorum, replication factor 3, `min.insync.replicas=2`).
    pub nodes: usize,
    /// Extra `server.properties` entries (override the harness's defaults).
    pub server_properties: Vec<(String, String)>,
    /// Extra arguments to `StorageTool format` (e.g. `--add-scram ...`).
    pub format_args: Vec<String>,
    /// Extra listeners.
    pub extra_listeners: Vec<ExtraListener>,
    /// Every listener of every node behind a chaos proxy the test controls
    /// ([`crate::cluster_proxies`]): clients, replication (a separate
    /// `REPLICATION` inter-broker listener) and the controller quorum (one
    /// proxy per (from, to) node pair). Three nodes only; `false` (the
    /// default): every listener direct, as before.
    pub proxied: bool,
    /// How long to wait for readiness before failing.
    pub ready_timeout: std::time::Duration,
    /// The Kafka release to run; `None`: the one `$EXACTLY_KAFKA_VERSION`
    /// selects, else the default ([`crate::jars::KafkaVersion::selected`]).
    pub kafka_version: Option<crate::jars::KafkaVersion>,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        Self {
            transaction_version: TransactionVersion::V2,
            nodes: 1,
            server_properties: Vec::new(),
            format_args: Vec::new(),
            extra_listeners: Vec::new(),
            proxied: false,
            ready_timeout: std::time::Duration::from_secs(120),
            kafka_version: None,
        }
    }
}

impl BrokerConfig {
    /// A single node with the given transaction protocol.
    pub fn with_transaction_version(tv: TransactionVersion) -> Self {
        Self {
            transaction_version: tv,
            ..Self::default()
        }
    }

    /// A three-node cluster.
    pub fn three_nodes() -> Self {
        Self {
            nodes: 3,
            ..Self::default()
        }
    }

    /// A three-node cluster with every listener behind a chaos proxy
    /// ([`BrokerConfig::proxied`]).
    pub fn three_nodes_proxied() -> Self {
        Self {
            nodes: 3,
            proxied: true,
            ..Self::default()
        }
    }

    /// Runs this Kafka release instead of the selected one.
    pub fn version(mut self, version: crate::jars::KafkaVersion) -> Self {
        self.kafka_version = Some(version);
        self
    }

    /// Adds a `server.properties` override.
    pub fn property(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.server_properties.push((key.into(), value.into()));
        self
    }
}
