//! A real Apache Kafka broker (or 3-node cluster) started by the test itself.
//!
//! [`Broker::start`] formats fresh KRaft storage, starts one JVM per node on
//! free 127.0.0.1 ports, and returns only after a real ApiVersions + Metadata
//! round trip shows every node serving. Fault primitives (`kill -9`, SIGTERM,
//! SIGSTOP/SIGCONT, restart on the same ports and data) act on single nodes.
//! Dropping a [`Broker`] kills its JVMs and deletes its data; JVMs are also
//! tied to the test process (see [`crate::process`]), so none survives a
//! panic or a killed test binary.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::cluster_proxies::{ClusterProxies, ListenerKind, NodePorts};
use crate::config::{BrokerConfig, TransactionVersion};
use crate::error::{tail_of, HarnessError, IoContext, Result};
use crate::jars::{classpath, ensure_jars_for, KafkaVersion};
use crate::java::JavaTools;
use crate::probe::ProbeClient;
use crate::process::{self, Signal};

/// Marker put on every harness JVM's command line (`-D<marker>=<root dir>`),
/// so strays can be found and `kafka down` never kills a foreign process.
pub const JVM_MARKER: &str = "exactly.harness";

/// JVM options of the harness's short-lived Java processes (the storage
/// format at every broker start, the Java tools the tests run as judges and
/// reference clients): the C1 compiler only and the serial collector. Such a
/// JVM spends most of its life starting up; C2's compile threads would only
/// compete for the CI machine's two cores (a `StorageTool format` took
/// 10-12 s instead of 16-33 s on a loaded 2-core machine). Not for the
/// brokers (long-lived, C2 pays off) nor for the Java clients benchmarks
/// compare ours with.
pub const SHORT_LIVED_JVM: &[&str] = &["-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC"];

/// One node's fixed facts; its process comes and goes.
#[derive(Debug)]
struct Node {
    id: i32,
    port: u16,
    controller_port: u16,
    /// The `REPLICATION` inter-broker listener's port (proxied clusters).
    inter_broker_port: Option<u16>,
    extra_ports: Vec<(String, u16)>,
    dir: PathBuf,
    child: Mutex<Option<Child>>,
}

impl Node {
    fn props_path(&self) -> PathBuf {
        self.dir.join("server.properties")
    }
    fn log_path(&self) -> PathBuf {
        self.dir.join("broker.log")
    }
    fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }
    fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

/// A running broker or cluster. See the module docs.
#[derive(Debug)]
pub struct Broker {
    config: BrokerConfig,
    version: KafkaVersion,
    root: PathBuf,
    libs: PathBuf,
    cluster_id: String,
    nodes: Vec<Node>,
    detached: bool,
    /// Dropped after the JVMs are killed (`Drop` runs before the fields').
    proxies: Option<ClusterProxies>,
}

static SEQ: AtomicUsize = AtomicUsize::new(0);

impl Broker {
    /// Formats and starts a broker (or cluster) and waits until it serves.
    pub fn start(config: BrokerConfig) -> Result<Broker> {
        Self::start_inner(config, false)
    }

    /// Like [`Broker::start`], but the JVMs are not tied to this process:
    /// used by `cargo xtask kafka up`, stopped by [`Broker::stop_detached`].
    /// Call [`Broker::into_detached_state`] to keep the broker running after
    /// the handle is gone.
    pub fn start_detached(config: BrokerConfig) -> Result<Broker> {
        Self::start_inner(config, true)
    }

    fn start_inner(config: BrokerConfig, detached: bool) -> Result<Broker> {
        // Free ports are found by binding port 0 and releasing it, so another
        // process (a second test binary, another CI run) can take one before
        // our JVM binds it. That shows up as a JVM that cannot bind, or as a
        // different cluster answering on "our" port: start afresh with new
        // ports a few times before giving up.
        let mut attempt = 1;
        loop {
            match Self::start_once(config.clone(), detached) {
                Err(HarnessError::NotReady { why, tail, .. })
                    if attempt < 3
                        && (tail.contains("Address already in use")
                            || why.contains("another cluster")) =>
                {
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    fn start_once(config: BrokerConfig, detached: bool) -> Result<Broker> {
        if !(config.nodes == 1 || config.nodes == 3) {
            return Err(HarnessError::Protocol {
                addr: String::new(),
                why: format!("unsupported node count {} (1 or 3)", config.nodes),
            });
        }
        if config.proxied && config.nodes != 3 {
            return Err(HarnessError::Protocol {
                addr: String::new(),
                why: "proxied listeners need 3 nodes".into(),
            });
        }
        let version = match config.kafka_version {
            Some(v) => v,
            None => KafkaVersion::selected()?,
        };
        if config.transaction_version == TransactionVersion::V2 && !version.offers_transaction_v2()
        {
            return Err(HarnessError::Version {
                version: version.to_string(),
                why: "transaction.version=2 (KIP-890) needs Kafka 4.0 or newer; a 3.x cluster \
                      runs the older transaction protocol only (start it with TransactionVersion::V1)"
                    .into(),
            });
        }
        let libs = ensure_jars_for(version)?;
        collect_garbage();
        let root = std::env::temp_dir().join("exactly-harness").join(format!(
            "{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).ctx(|| format!("creating {}", root.display()))?;
        let nodes = (1..=config.nodes as i32)
            .map(|id| {
                let dir = root.join(format!("node-{id}"));
                std::fs::create_dir_all(&dir).ctx(|| format!("creating {}", dir.display()))?;
                Ok(Node {
                    id,
                    port: free_port()?,
                    controller_port: free_port()?,
                    inter_broker_port: if config.proxied {
                        Some(free_port()?)
                    } else {
                        None
                    },
                    extra_ports: config
                        .extra_listeners
                        .iter()
                        .map(|l| Ok((l.name.clone(), free_port()?)))
                        .collect::<Result<_>>()?,
                    dir,
                    child: Mutex::new(None),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let cluster_id = random_cluster_id();
        let proxies = if config.proxied {
            let ports: Vec<NodePorts> = nodes
                .iter()
                .map(|n| NodePorts {
                    id: n.id,
                    client: n.port,
                    inter_broker: n.inter_broker_port.unwrap_or(n.port),
                    controller: n.controller_port,
                })
                .collect();
            Some(ClusterProxies::start(&ports)?)
        } else {
            None
        };
        let broker = Broker {
            config,
            version,
            root,
            libs,
            cluster_id,
            nodes,
            detached,
            proxies,
        };
        for node in &broker.nodes {
            broker.write_node_files(node)?;
        }
        // One storage format (a JVM, seconds) per node, all at once: a
        // 3-node cluster waits for the slowest instead of the sum.
        std::thread::scope(|s| {
            let formats: Vec<_> = broker
                .nodes
                .iter()
                .map(|node| s.spawn(|| broker.format(node)))
                .collect();
            formats
                .into_iter()
                .map(|f| f.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect::<Result<Vec<()>>>()
        })?;
        for node in &broker.nodes {
            broker.spawn(node)?;
        }
        for node in &broker.nodes {
            broker.wait_ready(node, broker.nodes.len())?;
        }
        Ok(broker)
    }

    /// A broker shared by every test of this test binary, one per transaction
    /// version, started on first use. A start failure is returned to every
    /// caller (tests fail with the reason; they never skip).
    pub fn shared(tv: TransactionVersion) -> Result<&'static Broker, String> {
        static V1: OnceLock<std::result::Result<Broker, String>> = OnceLock::new();
        static V2: OnceLock<std::result::Result<Broker, String>> = OnceLock::new();
        let cell = match tv {
            TransactionVersion::V1 => &V1,
            TransactionVersion::V2 => &V2,
        };
        cell.get_or_init(|| {
            Broker::start(BrokerConfig::with_transaction_version(tv)).map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| format!("the shared test broker ({tv:?}) could not start: {e}"))
    }

    /// Comma-separated `bootstrap.servers` for the PLAINTEXT listener: the
    /// client proxies' addresses in a proxied cluster (the addresses the
    /// nodes advertise).
    pub fn bootstrap(&self) -> String {
        self.nodes
            .iter()
            .map(|n| match self.advertised_port(n, ListenerKind::Client) {
                Some(port) => format!("127.0.0.1:{port}"),
                None => n.address(),
            })
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The chaos proxies in front of every listener, when started with
    /// [`BrokerConfig::proxied`].
    pub fn proxies(&self) -> Option<&ClusterProxies> {
        self.proxies.as_ref()
    }

    fn advertised_port(&self, node: &Node, kind: ListenerKind) -> Option<u16> {
        self.proxies
            .as_ref()
            .and_then(|p| p.advertised_port(node.id, kind))
    }

    /// The PLAINTEXT address of one node, direct (not through a proxy).
    pub fn address(&self, node: i32) -> String {
        self.node(node).address()
    }

    /// The address of an extra listener on one node.
    pub fn listener_address(&self, node: i32, listener: &str) -> Option<String> {
        self.node(node)
            .extra_ports
            .iter()
            .find(|(name, _)| name == listener)
            .map(|(_, port)| format!("127.0.0.1:{port}"))
    }

    /// Node ids (1-based).
    pub fn node_ids(&self) -> Vec<i32> {
        self.nodes.iter().map(|n| n.id).collect()
    }

    /// The Kafka release this broker runs.
    pub fn version(&self) -> KafkaVersion {
        self.version
    }

    /// The configuration this broker was started with.
    pub fn config(&self) -> &BrokerConfig {
        &self.config
    }

    /// The cluster id.
    pub fn cluster_id(&self) -> &str {
        &self.cluster_id
    }

    /// The data (log) directory of a node, for `DumpLogSegments`.
    pub fn data_dir(&self, node: i32) -> PathBuf {
        self.node(node).data_dir()
    }

    /// The log segment files of one partition on one node, oldest first.
    pub fn segment_files(&self, node: i32, topic: &str, partition: i32) -> Result<Vec<PathBuf>> {
        let dir = self.data_dir(node).join(format!("{topic}-{partition}"));
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .ctx(|| format!("listing {}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "log"))
            .collect();
        files.sort();
        Ok(files)
    }

    /// The process id of a node's JVM, if running.
    pub fn pid(&self, node: i32) -> Option<u32> {
        self.node(node)
            .child
            .lock()
            .ok()
            .and_then(|c| c.as_ref().map(Child::id))
    }

    /// The exact command-line argument that marks this broker's JVMs.
    pub fn jvm_marker(&self) -> String {
        marker_arg(&self.root)
    }

    /// Java reference tools bound to this broker.
    pub fn java(&self) -> JavaTools {
        JavaTools::new(self.libs.clone(), self.bootstrap(), self.root.join("tools"))
    }

    /// A blocking probe client connected to the first node that answers.
    pub fn client(&self) -> Result<ProbeClient> {
        let mut last = None;
        for node in &self.nodes {
            match ProbeClient::connect(&node.address(), Duration::from_secs(10)) {
                Ok(c) => return Ok(c),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| HarnessError::Protocol {
            addr: self.bootstrap(),
            why: "no nodes".into(),
        }))
    }

    /// Creates a topic (replication factor = node count) and waits for leaders.
    pub fn create_topic(&self, name: &str, partitions: i32) -> Result<()> {
        self.create_topic_with(name, partitions, &[])
    }

    /// Creates a topic with topic-level configs.
    pub fn create_topic_with(
        &self,
        name: &str,
        partitions: i32,
        configs: &[(&str, &str)],
    ) -> Result<()> {
        self.client()?
            .create_topic(name, partitions, self.nodes.len() as i16, configs)
    }

    /// Creates a topic whose partition `i` lives on the nodes `replicas[i]`
    /// (the first its preferred leader) and waits for leaders.
    pub fn create_topic_assigned(&self, name: &str, replicas: &[Vec<i32>]) -> Result<()> {
        self.client()?.create_topic_assigned(name, replicas)
    }

    /// Raises `name` to `total` partitions (CreatePartitions).
    pub fn create_partitions(&self, name: &str, total: i32) -> Result<()> {
        self.client()?.create_partitions(name, total)
    }

    /// Deletes topic `name` (DeleteTopics).
    pub fn delete_topic(&self, name: &str) -> Result<()> {
        self.client()?.delete_topic(name)
    }

    /// The leader of a partition as Metadata reports it right now.
    pub fn leader_of(&self, topic: &str, partition: i32) -> Result<i32> {
        let md = self.client()?.metadata(Some(&[topic]))?;
        md.topics
            .iter()
            .flat_map(|t| t.partitions.iter())
            .find(|p| p.partition_index == partition)
            .map(|p| p.leader_id.0)
            .ok_or_else(|| HarnessError::Protocol {
                addr: self.bootstrap(),
                why: format!("no metadata for {topic}-{partition}"),
            })
    }

    /// The node that is the transaction coordinator of `transactional_id`
    /// now (FindCoordinator, KIP-98; the batched form of KIP-699 at v4+).
    pub fn txn_coordinator(&self, transactional_id: &str) -> Result<i32> {
        use exactly_codec::messages::{ApiKey, FindCoordinatorRequest};
        use exactly_codec::protocol::StrBytes;
        let mut client = self.client()?;
        let version = client
            .versions()
            .pick_client(ApiKey::FindCoordinator)
            .map_err(|e| HarnessError::Protocol {
                addr: self.bootstrap(),
                why: e.to_string(),
            })?;
        let key = StrBytes::from_string(transactional_id.to_owned());
        let req = FindCoordinatorRequest::default().with_key_type(1);
        // v4+ asks in a batch (KIP-699); the single key is v0-v3 only.
        let req = if version >= 4 {
            req.with_coordinator_keys(vec![key])
        } else {
            req.with_key(key)
        };
        let resp = client.call_at(&req, version)?;
        let (error, node) = match resp.coordinators.first() {
            Some(c) => (c.error_code, c.node_id.0),
            None => (resp.error_code, resp.node_id.0),
        };
        if error != 0 || node < 0 {
            return Err(HarnessError::Protocol {
                addr: self.bootstrap(),
                why: format!("FindCoordinator({transactional_id}): error {error}, node {node}"),
            });
        }
        Ok(node)
    }

    /// `kill -9` a node (no shutdown at all) and reap it.
    pub fn kill9(&self, node: i32) -> Result<()> {
        self.signal_and_reap(node, Signal::Kill, Duration::from_secs(30))
    }

    /// SIGTERM a node and wait for its clean shutdown (SIGKILL after 60 s).
    pub fn sigterm(&self, node: i32) -> Result<()> {
        self.signal_and_reap(node, Signal::Term, Duration::from_secs(60))
    }

    /// Freeze a node (SIGSTOP): it keeps its sockets but answers nothing.
    /// Returns once every thread of the JVM is stopped (up to 10 s).
    pub fn sigstop(&self, node: i32) {
        if let Some(pid) = self.pid(node) {
            if process::signal(pid, Signal::Stop)
                && !process::wait_stopped(pid, Duration::from_secs(10))
            {
                tracing::warn!(
                    node,
                    pid,
                    "SIGSTOP sent but some thread still runs after 10 s"
                );
            }
        }
    }

    /// Resume a frozen node (SIGCONT).
    pub fn sigcont(&self, node: i32) {
        if let Some(pid) = self.pid(node) {
            process::signal(pid, Signal::Cont);
        }
    }

    /// Starts a stopped or killed node again on the same ports and data and
    /// waits until it serves. Kills it first if it is still running.
    pub fn restart(&self, node: i32) -> Result<()> {
        if self.pid(node).is_some() {
            self.kill9(node)?;
        }
        let n = self.node(node);
        self.spawn(n)?;
        self.wait_ready(n, 1)
    }

    /// Whether a node's JVM is running (not exited; a stopped one counts).
    pub fn is_running(&self, node: i32) -> bool {
        let n = self.node(node);
        let Ok(mut guard) = n.child.lock() else {
            return false;
        };
        match guard.as_mut().map(Child::try_wait) {
            Some(Ok(None)) => true,
            Some(_) => {
                *guard = None;
                false
            }
            None => false,
        }
    }

    fn node(&self, id: i32) -> &Node {
        self.nodes
            .iter()
            .find(|n| n.id == id)
            .unwrap_or_else(|| panic!("no node {id}; nodes are {:?}", self.node_ids()))
    }

    fn signal_and_reap(&self, node: i32, sig: Signal, grace: Duration) -> Result<()> {
        let n = self.node(node);
        let mut guard = n
            .child
            .lock()
            .map_err(|_| std::io::Error::other("node lock poisoned"))
            .ctx(|| format!("signalling node {node}"))?;
        let Some(mut child) = guard.take() else {
            return Ok(());
        };
        // A frozen JVM cannot act on SIGTERM: wake it first.
        process::signal(child.id(), Signal::Cont);
        process::signal(child.id(), sig);
        let deadline = Instant::now() + grace;
        loop {
            if child
                .try_wait()
                .ctx(|| format!("reaping node {node}"))?
                .is_some()
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn quorum_config(&self, node: &Node) -> Vec<(String, String)> {
        if let Some(proxies) = &self.proxies {
            // Each node reaches every voter through its own proxy.
            let voters = self
                .nodes
                .iter()
                .map(|n| {
                    let port = proxies
                        .controller_port(node.id, n.id)
                        .unwrap_or(n.controller_port);
                    format!("{}@127.0.0.1:{port}", n.id)
                })
                .collect::<Vec<_>>()
                .join(",");
            return vec![("controller.quorum.voters".into(), voters)];
        }
        if self.nodes.len() == 1 {
            let n = &self.nodes[0];
            vec![(
                "controller.quorum.bootstrap.servers".into(),
                format!("127.0.0.1:{}", n.controller_port),
            )]
        } else {
            let voters = self
                .nodes
                .iter()
                .map(|n| format!("{}@127.0.0.1:{}", n.id, n.controller_port))
                .collect::<Vec<_>>()
                .join(",");
            vec![("controller.quorum.voters".into(), voters)]
        }
    }

    fn properties(&self, node: &Node) -> BTreeMap<String, String> {
        let rf = self.nodes.len().to_string();
        let min_isr = if self.nodes.len() >= 3 { "2" } else { "1" };
        let mut listeners = vec![format!("PLAINTEXT://127.0.0.1:{}", node.port)];
        let client_port = self
            .advertised_port(node, ListenerKind::Client)
            .unwrap_or(node.port);
        let mut advertised = vec![format!("PLAINTEXT://127.0.0.1:{client_port}")];
        let mut map = vec![
            "CONTROLLER:PLAINTEXT".to_owned(),
            "PLAINTEXT:PLAINTEXT".to_owned(),
        ];
        let mut inter_broker = "PLAINTEXT";
        if let Some(port) = node.inter_broker_port {
            let shown = self
                .advertised_port(node, ListenerKind::InterBroker)
                .unwrap_or(port);
            listeners.push(format!("REPLICATION://127.0.0.1:{port}"));
            advertised.push(format!("REPLICATION://127.0.0.1:{shown}"));
            map.push("REPLICATION:PLAINTEXT".to_owned());
            inter_broker = "REPLICATION";
        }
        for ((name, port), l) in node.extra_ports.iter().zip(&self.config.extra_listeners) {
            listeners.push(format!("{name}://127.0.0.1:{port}"));
            let shown = l.advertised_port.unwrap_or(*port);
            advertised.push(format!("{name}://127.0.0.1:{shown}"));
            map.push(format!("{name}:{}", l.security_protocol));
        }
        listeners.push(format!("CONTROLLER://127.0.0.1:{}", node.controller_port));
        let mut p: BTreeMap<String, String> = [
            ("process.roles", "broker,controller".to_owned()),
            ("node.id", node.id.to_string()),
            ("listeners", listeners.join(",")),
            ("advertised.listeners", advertised.join(",")),
            ("controller.listener.names", "CONTROLLER".into()),
            ("inter.broker.listener.name", inter_broker.into()),
            ("listener.security.protocol.map", map.join(",")),
            ("log.dirs", node.data_dir().display().to_string()),
            ("offsets.topic.replication.factor", rf.clone()),
            ("offsets.topic.num.partitions", "1".into()),
            ("transaction.state.log.replication.factor", rf.clone()),
            ("transaction.state.log.min.isr", min_isr.into()),
            ("transaction.state.log.num.partitions", "1".into()),
            (
                "share.coordinator.state.topic.replication.factor",
                rf.clone(),
            ),
            ("share.coordinator.state.topic.min.isr", min_isr.into()),
            ("default.replication.factor", rf.clone()),
            ("min.insync.replicas", min_isr.into()),
            ("group.initial.rebalance.delay.ms", "0".into()),
            ("num.network.threads", "2".into()),
            ("num.io.threads", "4".into()),
            ("num.partitions", "1".into()),
            ("auto.create.topics.enable", "true".into()),
            // Tests write records with fixed timestamps from years ago
            // (golden batches, byte-for-byte checks). With the default
            // 7-day time retention the broker's periodic retention check
            // (every 5 min) deletes them mid-test and a reader then finds
            // an empty log: keep everything a test writes.
            ("log.retention.ms", "-1".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        if self.version.major >= 4 {
            // KIP-848 (`group.protocol=consumer`, GA in 4.0): both
            // protocols offered (the 4.x default, said out loud), and
            // heartbeats and session timeouts short enough for a test to
            // see a rebalance within seconds (the defaults are 5 s and 45 s).
            for (k, v) in [
                ("group.coordinator.rebalance.protocols", "classic,consumer"),
                ("group.consumer.heartbeat.interval.ms", "500"),
                ("group.consumer.min.heartbeat.interval.ms", "500"),
                ("group.consumer.session.timeout.ms", "10000"),
                ("group.consumer.min.session.timeout.ms", "6000"),
            ] {
                p.insert(k.to_owned(), v.to_owned());
            }
        }
        p.extend(self.quorum_config(node));
        p.extend(self.config.server_properties.iter().cloned());
        p
    }

    fn write_node_files(&self, node: &Node) -> Result<()> {
        let props: String = self
            .properties(node)
            .iter()
            .map(|(k, v)| format!("{k}={v}\n"))
            .collect();
        std::fs::write(node.props_path(), props)
            .ctx(|| format!("writing {}", node.props_path().display()))?;
        std::fs::write(node.dir.join("log4j2.properties"), LOG4J2)
            .ctx(|| "writing log4j2.properties".into())
    }

    fn format(&self, node: &Node) -> Result<()> {
        let mut args: Vec<String> = vec![
            "format".into(),
            "-t".into(),
            self.cluster_id.clone(),
            "-c".into(),
            node.props_path().display().to_string(),
        ];
        // The transaction.version feature is set at format time on 4.x. A 3.x
        // cluster (checked in start_once: V1 only) is formatted without it and
        // runs the pre-KIP-890 protocol, reporting no transaction.version.
        if self.version.offers_transaction_v2() {
            args.push("--feature".into());
            args.push(format!(
                "transaction.version={}",
                self.config.transaction_version.level()
            ));
        }
        if self.nodes.len() == 1 {
            args.push("--standalone".into());
        }
        args.extend(self.config.format_args.iter().cloned());
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        run_java_capture(&self.libs, "kafka.tools.StorageTool", &refs).map(|_| ())
    }

    fn spawn(&self, node: &Node) -> Result<()> {
        let heap = if self.nodes.len() == 1 {
            "-Xmx1g"
        } else {
            "-Xmx512m"
        };
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(node.log_path())
            .ctx(|| format!("opening {}", node.log_path().display()))?;
        let log2 = log.try_clone().ctx(|| "cloning log handle".into())?;
        let mut cmd = Command::new("java");
        cmd.args([
            "-Xms256m",
            heap,
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-XX:+ExitOnOutOfMemoryError",
            "-Djava.awt.headless=true",
        ])
        .arg(self.jvm_marker())
        .arg(process::run_tag_property())
        .arg(format!(
            "-Dkafka.logs.dir={}",
            node.dir.join("logs").display()
        ))
        .arg(format!(
            "-Dlog4j2.configurationFile={}",
            node.dir.join("log4j2.properties").display()
        ))
        .arg("-cp")
        .arg(classpath(&self.libs))
        .arg("kafka.Kafka")
        .arg(node.props_path())
        .stdin(Stdio::null())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(log2));
        let what = format!("broker node {}", node.id);
        let child = if self.detached {
            process::spawn_detached(cmd, &what)?
        } else {
            process::spawn_tied(cmd, &what)?
        };
        if let Ok(mut guard) = node.child.lock() {
            *guard = Some(child);
        }
        Ok(())
    }

    /// Waits until `node` answers ApiVersions and a Metadata listing at least
    /// `min_brokers` brokers, including itself. Never a fixed sleep: a short
    /// pause only between failed attempts.
    fn wait_ready(&self, node: &Node, min_brokers: usize) -> Result<()> {
        let deadline = Instant::now() + self.config.ready_timeout;
        loop {
            let exited = node
                .child
                .lock()
                .ok()
                .and_then(|mut g| g.as_mut().and_then(|c| c.try_wait().ok().flatten()));
            if let Some(status) = exited {
                return Err(self.not_ready(node, format!("JVM exited with {status}")));
            }
            let last_err = match ProbeClient::connect(&node.address(), Duration::from_secs(2))
                .and_then(|mut c| c.metadata(None))
            {
                Ok(md) if md.cluster_id.as_deref() != Some(self.cluster_id.as_str()) => {
                    // Not ours: fail now so start_inner retries on new ports.
                    return Err(self.not_ready(
                        node,
                        format!(
                            "another cluster ({:?}) answers on {}",
                            md.cluster_id,
                            node.address()
                        ),
                    ));
                }
                Ok(md)
                    if md.brokers.len() >= min_brokers
                        && md.brokers.iter().any(|b| b.node_id.0 == node.id) =>
                {
                    return Ok(())
                }
                Ok(md) => format!(
                    "metadata lists brokers {:?}, want {min_brokers} incl. {}",
                    md.brokers.iter().map(|b| b.node_id.0).collect::<Vec<_>>(),
                    node.id
                ),
                Err(e) => e.to_string(),
            };
            if Instant::now() > deadline {
                return Err(self.not_ready(
                    node,
                    format!(
                        "not serving after {:?}: {last_err}",
                        self.config.ready_timeout
                    ),
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn not_ready(&self, node: &Node, why: String) -> HarnessError {
        HarnessError::NotReady {
            node: node.id,
            why,
            log: node.log_path(),
            tail: tail_of(&node.log_path(), 40),
        }
    }

    /// Keeps a detached broker running past this handle and returns what
    /// `kafka down`/`status` need (written to a state file by xtask).
    pub fn into_detached_state(mut self) -> DetachedState {
        let state = DetachedState {
            root: self.root.clone(),
            bootstrap: self.bootstrap(),
            pids: self.nodes.iter().filter_map(|n| self.pid(n.id)).collect(),
            transaction_version: self.config.transaction_version.level(),
        };
        // Forget the children so Drop does not kill them.
        for n in &mut self.nodes {
            if let Ok(mut g) = n.child.lock() {
                g.take();
            }
        }
        self.detached = true;
        state
    }

    /// Stops a broker described by a [`DetachedState`]: SIGTERM, then
    /// SIGKILL after 30 s; only processes carrying this harness's marker for
    /// that root are signalled. Removes its data directory.
    pub fn stop_detached(state: &DetachedState) {
        let needle = marker_arg(&state.root);
        for &pid in &state.pids {
            if process::alive_with_arg(pid, &needle) {
                process::signal(pid, Signal::Term);
            }
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while state
            .pids
            .iter()
            .any(|&p| process::alive_with_arg(p, &needle))
        {
            if Instant::now() > deadline {
                for &pid in &state.pids {
                    if process::alive_with_arg(pid, &needle) {
                        process::signal(pid, Signal::Kill);
                    }
                }
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = std::fs::remove_dir_all(&state.root);
    }
}

/// What is needed to find and stop a detached broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetachedState {
    /// Its data root.
    pub root: PathBuf,
    /// Its bootstrap servers.
    pub bootstrap: String,
    /// JVM pids.
    pub pids: Vec<u32>,
    /// The transaction.version it was formatted with.
    pub transaction_version: i16,
}

impl DetachedState {
    /// `key=value` lines.
    pub fn to_text(&self) -> String {
        format!(
            "root={}\nbootstrap={}\npids={}\ntransaction_version={}\n",
            self.root.display(),
            self.bootstrap,
            self.pids
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(","),
            self.transaction_version
        )
    }

    /// Parses [`DetachedState::to_text`].
    pub fn from_text(text: &str) -> Option<Self> {
        let get = |key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        };
        Some(Self {
            root: PathBuf::from(get("root")?),
            bootstrap: get("bootstrap")?.to_owned(),
            pids: get("pids")?
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::parse)
                .collect::<std::result::Result<_, _>>()
                .ok()?,
            transaction_version: get("transaction_version")?.parse().ok()?,
        })
    }

    /// Whether any of its JVMs is still alive.
    pub fn is_alive(&self) -> bool {
        let needle = marker_arg(&self.root);
        self.pids
            .iter()
            .any(|&p| process::alive_with_arg(p, &needle))
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if self.detached {
            return;
        }
        for n in &self.nodes {
            if let Ok(mut g) = n.child.lock() {
                if let Some(mut child) = g.take() {
                    let _ = child.kill();
                    let _ = child.wait();
                }
            }
        }
        if std::env::var_os("EXACTLY_KEEP_BROKER_DIR").is_none() {
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }
}

/// Deletes data roots left by test processes that no longer exist (a test
/// binary's shared broker lives in a static and is never dropped).
fn collect_garbage() {
    let base = std::env::temp_dir().join("exactly-harness");
    let Ok(entries) = std::fs::read_dir(&base) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        let root_marker = marker_arg(&e.path());
        let owner_alive = Path::new(&format!("/proc/{pid}")).exists();
        if !owner_alive && process::pids_with_arg(&root_marker).is_empty() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// The `-D` argument that marks the JVMs of the broker rooted at `root`.
fn marker_arg(root: &Path) -> String {
    format!("-D{JVM_MARKER}={}", root.display())
}

/// A fresh cluster id as `StorageTool random-uuid` prints it (a Kafka
/// `Uuid`: 16 random bytes, URL-safe base64 without padding, never starting
/// with `-`, never all zero), made here to save a JVM start per broker.
fn random_cluster_id() -> String {
    let mut rng = crate::rng::Rng::seeded();
    loop {
        let mut bytes = [0u8; 16];
        for chunk in bytes.chunks_mut(8) {
            let x = rng.below(u64::MAX) ^ u64::from(std::process::id());
            chunk.copy_from_slice(&x.to_be_bytes());
        }
        let id = base64_url(&bytes);
        if bytes != [0; 16] && !id.starts_with('-') {
            return id;
        }
    }
}

/// URL-safe base64 without padding (RFC 4648 section 5).
fn base64_url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
        }
    }
    out
}

/// A free TCP port on 127.0.0.1 (bound, then released).
pub(crate) fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").ctx(|| "finding a free port".into())?;
    l.local_addr()
        .map(|a| a.port())
        .ctx(|| "reading a free port".into())
}

/// Runs a short Java main to completion and returns its stdout.
fn run_java_capture(libs: &Path, class: &str, args: &[&str]) -> Result<String> {
    let out = Command::new("java")
        .args(SHORT_LIVED_JVM)
        .arg("-cp")
        .arg(classpath(libs))
        .arg(class)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .ctx(|| format!("running {class}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        return Err(HarnessError::JavaTool {
            class: class.to_owned(),
            why: format!("exit {}; stdout: {}", out.status, stdout.trim()),
            stderr: crate::error::tail_lines(&String::from_utf8_lossy(&out.stderr), 20),
        });
    }
    Ok(stdout)
}

/// The broker's log4j 2 configuration, in the properties format that
/// log4j-core reads on every Kafka version (YAML needs Jackson's YAML
/// module, which Kafka 3.x does not bring).
const LOG4J2: &str = "\
appender.stdout.type = Console
appender.stdout.name = STDOUT
appender.stdout.target = SYSTEM_OUT
appender.stdout.layout.type = PatternLayout
appender.stdout.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.stdout.ref = STDOUT
logger.raft.name = kafka.server.KafkaRaftServer
logger.raft.level = INFO
logger.broker.name = kafka.server.BrokerServer
logger.broker.level = INFO
logger.txn.name = kafka.coordinator.transaction
logger.txn.level = INFO
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_url_matches_rfc4648() {
        assert_eq!(base64_url(b"f"), "Zg");
        assert_eq!(base64_url(b"fo"), "Zm8");
        assert_eq!(base64_url(b"foo"), "Zm9v");
        assert_eq!(base64_url(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64_url(&[0xfb, 0xff]), "-_8");
    }

    #[test]
    fn cluster_ids_look_like_kafka_uuids() {
        let a = random_cluster_id();
        let b = random_cluster_id();
        assert_eq!(a.len(), 22);
        assert_ne!(a, b);
        assert!(!a.starts_with('-'));
    }
}
