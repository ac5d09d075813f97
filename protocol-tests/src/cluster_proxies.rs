//! Chaos proxies in front of every listener of every node of a 3-node
//! cluster ([`crate::BrokerConfig::proxied`]; issue 16 item 3, RELIABILITY.md
//! "Faults between brokers"), so a test can make faults *between brokers*
//! and asymmetric ones: a node unreachable from clients while the others
//! serve them, a node cut from the controller quorum while clients still
//! reach it, a node's replication listener cut while its clients are not.
//!
//! The layout (Kafka listeners, KIP-103; KRaft quorum, KIP-595/KIP-631):
//!
//! - **client** (`PLAINTEXT`): one proxy per node; `advertised.listeners`
//!   names the proxy, so every client connection after bootstrap goes
//!   through it, and [`crate::Broker::bootstrap`] lists the proxies too.
//! - **inter-broker** (`REPLICATION`, `inter.broker.listener.name`): one
//!   proxy per node, advertised; followers' fetches from a leader and the
//!   transaction coordinator's `WriteTxnMarkers` to a leader cross the
//!   leader's proxy.
//! - **controller** (`CONTROLLER`): one proxy per (from, to) pair of nodes:
//!   each node's `controller.quorum.voters` names its own proxies, so a
//!   node's quorum traffic (Raft fetches and votes, broker registration and
//!   heartbeats) can be cut in both directions without touching the others'.
//!
//! The proxies run on a runtime of their own (the broker is started from
//! synchronous code); faults are set from any thread
//! ([`crate::proxy::ChaosProxy`]'s methods are synchronous).

use std::collections::BTreeMap;

use crate::error::{IoContext, Result};
use crate::proxy::{ChaosProxy, Faults};

/// Which listener of a node a fault applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ListenerKind {
    /// The client listener (`PLAINTEXT`).
    Client,
    /// The inter-broker listener (`REPLICATION`).
    InterBroker,
    /// The controller quorum: every link from and to the node (not the
    /// node's link to itself).
    Controller,
}

/// The upstream ports of one node.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NodePorts {
    pub(crate) id: i32,
    pub(crate) client: u16,
    pub(crate) inter_broker: u16,
    pub(crate) controller: u16,
}

/// The proxies of a cluster. See the module docs.
#[derive(Debug)]
pub struct ClusterProxies {
    // Field order is drop order: the proxies before the runtime they run on.
    client: BTreeMap<i32, ChaosProxy>,
    inter_broker: BTreeMap<i32, ChaosProxy>,
    /// (from, to) -> the proxy `from` reaches `to`'s controller listener by.
    controller: BTreeMap<(i32, i32), ChaosProxy>,
    rt: tokio::runtime::Runtime,
}

impl ClusterProxies {
    /// Starts every proxy towards the nodes' own ports.
    pub(crate) fn start(nodes: &[NodePorts]) -> Result<ClusterProxies> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("cluster-proxies")
            .enable_all()
            .build()
            .ctx(|| "starting the cluster proxies' runtime".into())?;
        let start = |port: u16| {
            rt.block_on(ChaosProxy::start(&format!("127.0.0.1:{port}")))
                .ctx(|| format!("starting a proxy towards port {port}"))
        };
        let mut client = BTreeMap::new();
        let mut inter_broker = BTreeMap::new();
        let mut controller = BTreeMap::new();
        for n in nodes {
            client.insert(n.id, start(n.client)?);
            inter_broker.insert(n.id, start(n.inter_broker)?);
            for from in nodes {
                controller.insert((from.id, n.id), start(n.controller)?);
            }
        }
        Ok(ClusterProxies {
            client,
            inter_broker,
            controller,
            rt,
        })
    }

    /// The port `node`'s `kind` listener is advertised at (Client,
    /// InterBroker).
    pub(crate) fn advertised_port(&self, node: i32, kind: ListenerKind) -> Option<u16> {
        let map = match kind {
            ListenerKind::Client => &self.client,
            ListenerKind::InterBroker => &self.inter_broker,
            ListenerKind::Controller => return None,
        };
        map.get(&node).map(ChaosProxy::port)
    }

    /// The port `from` reaches `to`'s controller listener at.
    pub(crate) fn controller_port(&self, from: i32, to: i32) -> Option<u16> {
        self.controller.get(&(from, to)).map(ChaosProxy::port)
    }

    /// The client-listener proxy of `node`.
    pub fn client(&self, node: i32) -> Option<&ChaosProxy> {
        self.client.get(&node)
    }

    /// The inter-broker-listener proxy of `node`.
    pub fn inter_broker(&self, node: i32) -> Option<&ChaosProxy> {
        self.inter_broker.get(&node)
    }

    /// The proxy `from` reaches `to`'s controller listener through.
    pub fn controller_link(&self, from: i32, to: i32) -> Option<&ChaosProxy> {
        self.controller.get(&(from, to))
    }

    /// The proxies a fault on `node`'s `kind` listener acts on (for
    /// Controller: every link from and to `node`, not its link to itself).
    pub fn of(&self, node: i32, kind: ListenerKind) -> Vec<&ChaosProxy> {
        match kind {
            ListenerKind::Client => self.client.get(&node).into_iter().collect(),
            ListenerKind::InterBroker => self.inter_broker.get(&node).into_iter().collect(),
            ListenerKind::Controller => self
                .controller
                .iter()
                .filter(|((from, to), _)| from != to && (*from == node || *to == node))
                .map(|(_, p)| p)
                .collect(),
        }
    }

    /// Every proxy of `kind`.
    pub fn all(&self, kind: ListenerKind) -> Vec<&ChaosProxy> {
        match kind {
            ListenerKind::Client => self.client.values().collect(),
            ListenerKind::InterBroker => self.inter_broker.values().collect(),
            ListenerKind::Controller => self.controller.values().collect(),
        }
    }

    /// Sets the faults of `node`'s `kind` listener.
    pub fn set_faults(&self, node: i32, kind: ListenerKind, faults: Faults) {
        for p in self.of(node, kind) {
            p.set_faults(faults.clone());
        }
    }

    /// Makes `node`'s `kind` listener unreachable: every byte swallowed,
    /// connections kept open (requests time out, as behind a dropped
    /// route), open connections cut first so none carries on.
    pub fn black_hole(&self, node: i32, kind: ListenerKind) {
        for p in self.of(node, kind) {
            p.set_faults(Faults {
                black_hole: true,
                ..Faults::default()
            });
            p.cut_all();
        }
    }

    /// Lifts every fault of `node`'s `kind` listener, cuts the connections
    /// opened under it (a client that kept one would wait on it forever)
    /// and releases held bytes.
    pub fn heal(&self, node: i32, kind: ListenerKind) {
        for p in self.of(node, kind) {
            p.set_faults(Faults::default());
            p.release();
            p.cut_all();
        }
    }

    /// Connections cut by the proxies of `kind` so far.
    pub fn cuts(&self, kind: ListenerKind) -> u64 {
        self.all(kind).iter().map(|p| p.cuts()).sum()
    }

    /// Held requests delivered after their client closed the connection,
    /// over the proxies of `kind`.
    pub fn late_deliveries(&self, kind: ListenerKind) -> u64 {
        self.all(kind).iter().map(|p| p.late_deliveries()).sum()
    }

    /// The runtime the proxies run on.
    pub fn runtime(&self) -> &tokio::runtime::Runtime {
        &self.rt
    }
}
