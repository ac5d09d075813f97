//! The KIP-848 consumer group protocol (`group.protocol=consumer`, Kafka
//! 4.0+): one ConsumerGroupHeartbeat carries the member's subscription and
//! owned partitions; the coordinator runs the assignor (`uniform` or
//! `range`, `group.remote.assignor`) and answers with the member's epoch and
//! assignment. Rebalancing is incremental: only the partitions that move
//! are revoked, and a member is never asked to stop reading the others.
//!
//! - member ids are chosen by the member (KIP-1082, heartbeat v1); join
//!   with epoch 0, leave with -1, or -2 for a static member
//!   (`group.instance.id`) that will come back;
//! - FENCED_MEMBER_EPOCH and UNKNOWN_MEMBER_ID lose the partitions
//!   ([`Rebalance::Lost`]) and rejoin with epoch 0; UNRELEASED_INSTANCE_ID
//!   and FENCED_INSTANCE_ID are fatal, as in the Java client;
//! - offsets (OffsetCommit, and a transaction's TxnOffsetCommit through
//!   [`crate::Consumer::group_metadata`]) carry the member epoch where the
//!   classic protocol carries the generation (KIP-447 over KIP-848): the
//!   coordinator refuses a stale one, which aborts the transaction.
//!
//! - regex subscription ([`crate::Consumer::subscribe_pattern`]) goes as
//!   `SubscribedTopicRegex` (heartbeat v1, KIP-848): the coordinator
//!   resolves it (RE2J syntax) against the cluster's topics, including
//!   topics created later; assigned topic ids are named from metadata of
//!   all topics.
//!
//! - `client.rack` goes as the heartbeat's `RackId` with the subscription
//!   (rack-aware assignors on the coordinator may use it); following a
//!   preferred read replica (KIP-392) is not done.
//!
//! The sans-IO member is [`machine`]; [`driver`] runs its heartbeats.

pub(crate) mod driver;
pub(crate) mod machine;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::Instrument;

use crate::config::ConsumerConfig;
use crate::error::ConsumerError;
use crate::group::coordinator::CoordinatorLink;
use crate::group::heartbeat::GroupShared;
#[cfg(doc)]
use crate::group::member::Rebalance;
use driver::lock;
use machine::{Machine, Settings, Turn};

/// The consumer's KIP-848 membership: the machine, shared with the
/// heartbeat task.
#[derive(Debug)]
pub(crate) struct ConsumerMember {
    pub(crate) link: Arc<CoordinatorLink>,
    machine: Arc<Mutex<Machine>>,
    kick: Arc<Notify>,
    driver: Option<JoinHandle<()>>,
}

/// A fresh member id: 16 random bytes in the UUID form (KIP-1082).
fn new_member_id() -> String {
    let mut b = [0u8; 16];
    if getrandom::fill(&mut b).is_err() {
        // No entropy source: still unique enough within one group.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        b = t.to_le_bytes();
    }
    uuid::Builder::from_random_bytes(b).into_uuid().to_string()
}

impl ConsumerMember {
    pub(crate) fn new(link: Arc<CoordinatorLink>, cfg: &ConsumerConfig, backoff: Duration) -> Self {
        let s = Settings {
            member_id: new_member_id(),
            instance_id: cfg.group_instance_id.clone(),
            rebalance_timeout: cfg.rebalance_timeout,
            server_assignor: cfg.remote_assignor.map(|a| a.name()),
            rack: cfg.client_rack.clone(),
            retry_backoff: backoff,
        };
        Self {
            link,
            machine: Arc::new(Mutex::new(Machine::new(s, Instant::now()))),
            kick: Arc::new(Notify::new()),
            driver: None,
        }
    }

    /// The member epoch (what commits carry as the generation).
    pub(crate) fn epoch(&self) -> i32 {
        lock(&self.machine).epoch()
    }

    pub(crate) fn member_id(&self) -> String {
        lock(&self.machine).member_id().to_owned()
    }

    pub(crate) fn is_member(&self) -> bool {
        lock(&self.machine).is_member()
    }

    pub(crate) fn is_revoking(&self) -> bool {
        lock(&self.machine).is_revoking()
    }

    pub(crate) fn revoke_coming(&self) -> bool {
        lock(&self.machine).revoke_coming()
    }

    pub(crate) fn stop(&mut self) {
        if let Some(d) = self.driver.take() {
            d.abort();
        }
    }

    /// Leaves the group (epoch -1, or -2 for a static member).
    pub(crate) async fn leave(&mut self) {
        self.stop();
        let beat = lock(&self.machine).leave();
        if let Some(b) = beat {
            driver::send_leave(&self.link, self.link.group_id(), &b).await;
        }
    }

    /// One step for `poll`: starts the heartbeat task, passes the
    /// subscription on, and takes what the user must see.
    pub(crate) fn step(
        &mut self,
        shared: &Arc<GroupShared>,
        cfg: &ConsumerConfig,
        client: &exactly_net::Client,
        topics: &[String],
        regex: Option<&str>,
    ) -> Result<Turn, ConsumerError> {
        let now = Instant::now();
        let turn = {
            let mut m = lock(&self.machine);
            m.subscribe(topics, regex, now);
            m.step(now)
        };
        if self.driver.as_ref().is_none_or(|d| d.is_finished()) {
            let span = tracing::info_span!(
                "consumer.kip848",
                group = self.link.group_id(),
                member = %self.member_id()
            );
            self.driver = Some(tokio::spawn(
                driver::run(
                    self.link.clone(),
                    client.clone(),
                    self.machine.clone(),
                    shared.clone(),
                    self.kick.clone(),
                    cfg.max_poll_interval,
                )
                .instrument(span),
            ));
        }
        // A revocation done, an assignment taken or a rejoin: the heartbeat
        // goes now rather than at the interval.
        self.kick.notify_one();
        turn
    }
}

impl Drop for ConsumerMember {
    fn drop(&mut self) {
        self.stop();
    }
}
