//! The cluster client: bootstrap from `bootstrap.servers`, a pool of
//! connections keyed by broker id with reconnect backoff, the metadata cache
//! and its refreshes, and the coordinator cache.
//!
//! Connections are opened lazily and re-opened after they die; a broker that
//! keeps failing is retried after `reconnect.backoff.ms`, doubling up to
//! `reconnect.backoff.max.ms`, with jitter. Non-retriable failures (TLS trust,
//! authentication) are returned as they are, never looped on.

mod coordinator;
mod refresh;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use exactly_codec::protocol::Request;
use tokio::time::Instant;

pub use coordinator::{Coordinator, CoordinatorType};

use crate::backoff::backoff;
use crate::config::NetConfig;
use crate::conn::{Connection, Connector};
use crate::error::NetError;
use crate::metadata::{ClusterView, MetadataCache};
use crate::metrics::{Metrics, MetricsSnapshot};
use crate::response::ResponseMeta;

/// A handle to a Kafka cluster. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    connector: Connector,
    metadata: MetadataCache,
    /// One metadata refresh at a time; others wait and reuse its answer.
    refresh_lock: tokio::sync::Mutex<()>,
    pool: Mutex<HashMap<i32, Arc<Slot>>>,
    /// Addresses learnt outside Metadata (FindCoordinator), by broker id.
    extra_addrs: Mutex<HashMap<i32, String>>,
    coordinators: Mutex<HashMap<(CoordinatorType, String), Coordinator>>,
    coordinator_generation: AtomicU64,
    /// Rotates the broker chosen for cluster-wide requests.
    next_any: AtomicUsize,
}

/// One broker's connection and its reconnect state.
#[derive(Debug, Default)]
struct Slot {
    state: tokio::sync::Mutex<SlotState>,
}

#[derive(Debug, Default)]
struct SlotState {
    conn: Option<Connection>,
    failures: u32,
    retry_at: Option<Instant>,
    ever_connected: bool,
}

/// Pseudo broker ids for bootstrap servers: -1, -2, ... (as the Java client).
fn bootstrap_id(index: usize) -> i32 {
    -1 - i32::try_from(index).unwrap_or(i32::MAX - 1)
}

impl Client {
    /// Connects to the cluster: opens a connection to the first reachable
    /// bootstrap server and loads the broker list.
    pub async fn connect(config: NetConfig) -> Result<Client, NetError> {
        Self::connect_with_metrics(config, Arc::new(Metrics::default())).await
    }

    /// As [`Client::connect`], counting into `metrics` (shared with, e.g., a
    /// producer's own counters).
    pub async fn connect_with_metrics(
        config: NetConfig,
        metrics: Arc<Metrics>,
    ) -> Result<Client, NetError> {
        let connector = Connector::new(Arc::new(config), metrics)?;
        let client = Client {
            inner: Arc::new(Inner {
                connector,
                metadata: MetadataCache::default(),
                refresh_lock: tokio::sync::Mutex::new(()),
                pool: Mutex::new(HashMap::new()),
                extra_addrs: Mutex::new(HashMap::new()),
                coordinators: Mutex::new(HashMap::new()),
                coordinator_generation: AtomicU64::new(0),
                next_any: AtomicUsize::new(0),
            }),
        };
        client.refresh_metadata(&[]).await?;
        client.close_bootstrap_connections();
        Ok(client)
    }

    /// The configuration.
    pub fn config(&self) -> &NetConfig {
        self.inner.connector.config()
    }

    /// The live counters.
    pub fn metrics(&self) -> &Arc<Metrics> {
        self.inner.connector.metrics()
    }

    /// A snapshot of the counters.
    pub fn metrics_snapshot(&self) -> MetricsSnapshot {
        self.metrics().snapshot()
    }

    /// The current cluster view (no I/O).
    pub fn view(&self) -> Arc<ClusterView> {
        self.inner.metadata.view()
    }

    /// The address of a broker id (bootstrap pseudo ids included).
    fn addr_of(&self, id: i32) -> Result<String, NetError> {
        if id < 0 {
            let idx = usize::try_from(-1 - i64::from(id)).unwrap_or(usize::MAX);
            return self
                .config()
                .bootstrap_servers()
                .get(idx)
                .cloned()
                .ok_or(NetError::UnknownBroker(id));
        }
        if let Some(b) = self.view().broker(id) {
            return Ok(b.addr());
        }
        self.inner
            .extra_addrs
            .lock()
            .ok()
            .and_then(|m| m.get(&id).cloned())
            .ok_or(NetError::UnknownBroker(id))
    }

    fn slot(&self, id: i32) -> Arc<Slot> {
        match self.inner.pool.lock() {
            Ok(mut pool) => pool.entry(id).or_default().clone(),
            Err(_) => Arc::new(Slot::default()),
        }
    }

    /// A live connection to broker `id`, reusing the pooled one or opening a
    /// new one (after the reconnect backoff if the last attempts failed).
    pub async fn connection(&self, id: i32) -> Result<Connection, NetError> {
        let slot = self.slot(id);
        let mut st = slot.state.lock().await;
        if let Some(c) = &st.conn {
            if c.is_expiring() {
                // KIP-368: replace it before the broker ends the session.
                c.retire();
                st.conn = None;
                st.retry_at = None;
            } else if !c.is_closed() {
                return Ok(c.clone());
            } else {
                st.conn = None;
            }
        }
        if let Some(at) = st.retry_at {
            tokio::time::sleep_until(at).await;
        }
        let addr = self.addr_of(id)?;
        let broker_id = (id >= 0).then_some(id);
        match self.inner.connector.connect(&addr, broker_id).await {
            Ok(c) => {
                if st.ever_connected {
                    self.metrics().reconnected();
                }
                st.ever_connected = true;
                st.failures = 0;
                st.retry_at = None;
                st.conn = Some(c.clone());
                Ok(c)
            }
            Err(e) => {
                st.failures = st.failures.saturating_add(1);
                let cfg = self.config();
                let wait = backoff(
                    cfg.reconnect_backoff(),
                    cfg.reconnect_backoff_max(),
                    st.failures,
                );
                st.retry_at = Some(Instant::now() + wait);
                Err(e)
            }
        }
    }

    /// The pooled connection to `id` if one is open (no I/O).
    pub fn pooled(&self, id: i32) -> Option<Connection> {
        let slot = self.inner.pool.lock().ok()?.get(&id)?.clone();
        let st = slot.state.try_lock().ok()?;
        st.conn
            .as_ref()
            .filter(|c| !c.is_closed() && !c.is_expiring())
            .cloned()
    }

    /// Sends `req` to broker `id` at the negotiated version.
    pub async fn send_to<R>(&self, id: i32, req: &R) -> Result<R::Response, NetError>
    where
        R: Request,
        R::Response: ResponseMeta,
    {
        self.connection(id).await?.send(req).await
    }

    /// A connection to some broker, for cluster-wide requests (Metadata,
    /// CreateTopics): known brokers in rotation, then the bootstrap servers.
    /// Non-retriable errors (authentication, TLS) are returned at once.
    pub async fn any_connection(&self) -> Result<Connection, NetError> {
        let view = self.view();
        let mut ids: Vec<i32> = view.brokers().map(|b| b.id).collect();
        ids.sort_unstable();
        // Prefer a broker we already hold a live connection to.
        for &id in &ids {
            if let Some(c) = self.pooled(id) {
                return Ok(c);
            }
        }
        let start = self.inner.next_any.fetch_add(1, Ordering::Relaxed);
        if !ids.is_empty() {
            let k = start % ids.len();
            ids.rotate_left(k);
        }
        let n = self.config().bootstrap_servers().len();
        ids.extend((0..n).map(bootstrap_id));
        let mut last = None;
        for id in ids {
            match self.connection(id).await {
                Ok(c) => return Ok(c),
                Err(e) if !e.is_retriable() => return Err(e),
                Err(e) => last = Some(e),
            }
        }
        Err(NetError::Bootstrap(
            last.map_or_else(|| "no broker known".to_owned(), |e| e.to_string())
                .into(),
        ))
    }

    /// Once brokers are known, the bootstrap connections (pseudo ids -1, -2,
    /// ...) are closed; the brokers' own ids are used from then on.
    fn close_bootstrap_connections(&self) {
        if self.view().brokers().next().is_none() {
            return;
        }
        if let Ok(mut pool) = self.inner.pool.lock() {
            pool.retain(|&id, slot| {
                if id < 0 {
                    if let Ok(st) = slot.state.try_lock() {
                        if let Some(c) = &st.conn {
                            c.close();
                        }
                    }
                }
                id >= 0
            });
        }
    }

    /// Closes every pooled connection.
    pub fn close(&self) {
        if let Ok(pool) = self.inner.pool.lock() {
            for slot in pool.values() {
                if let Ok(st) = slot.state.try_lock() {
                    if let Some(c) = &st.conn {
                        c.close();
                    }
                }
            }
        }
    }
}
