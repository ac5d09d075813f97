//! The [`Consumer`]: subscription or manual assignment, positions, offsets,
//! and the group member's life. `poll` is in `poll.rs`; the member's state
//! machine is the group's (`crate::group::member`).
//!
//! Everything slow runs on tasks the consumer owns (fetches, the join, the
//! heartbeat, committed-offset and ListOffsets lookups, metadata refreshes),
//! so `poll` keeps to its timeout and dropping any of the consumer's futures
//! leaves its state consistent. The tasks end when the consumer is closed or
//! dropped.

pub(crate) mod background;
mod offsets_api;
mod poll;
mod tasks;

use std::sync::Arc;
use std::time::Duration;

use exactly_net::Client;
use tokio::time::Instant;

use crate::config::{ConsumerConfig, ConsumerConfigBuilder, IsolationLevel, OffsetReset};
use crate::error::ConsumerError;
use crate::fetch::fetcher::Fetcher;
use crate::group::coordinator::CoordinatorLink;
use crate::group::heartbeat::GroupShared;
use crate::metrics::{ConsumerMetrics, ConsumerMetricsSnapshot};

use crate::record::Records;
use crate::state::{Assignment, Pending, Position};
use crate::{ConsumerGroupMetadata, OffsetCommit, TopicPartition};

pub(crate) use crate::group::member::Rebalance;
use crate::group::membership::Membership;
use tasks::Tasks;

/// What one [`Consumer::poll`] returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Polled {
    /// Records (empty when the timeout passed first).
    Records(Records),
    /// The group's assignment changed; see [`Rebalance`].
    Rebalance(Rebalance),
}

impl Polled {
    /// The records, or none for a rebalance event.
    pub fn into_records(self) -> Records {
        match self {
            Polled::Records(r) => r,
            Polled::Rebalance(_) => Records::default(),
        }
    }
}

/// How the consumer reads.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Mode {
    /// Neither subscribed nor assigned.
    None,
    /// Group membership over these topics (sorted).
    Subscribed(Vec<String>),
    /// Group membership over the topics a regex matches, resolved by the
    /// coordinator (KIP-848 only).
    Pattern(String),
    /// Partitions chosen by the user.
    Assigned,
}

/// A Kafka consumer: `read_committed` by default, classic consumer groups,
/// zero-copy records. See the crate docs for an example.
#[derive(Debug)]
pub struct Consumer {
    cfg: ConsumerConfig,
    client: Client,
    metrics: Arc<ConsumerMetrics>,
    mode: Mode,
    asg: Assignment,
    fetcher: Fetcher,
    shared: Arc<GroupShared>,
    group: Option<Membership>,
    tasks: Tasks,
    next_auto_commit: Instant,
    /// When the periodic metadata refresh (`metadata.max.age.ms`) is due.
    next_metadata_refresh: Instant,
    /// Deleted topics already reported.
    deleted: std::collections::BTreeSet<String>,
    closed: bool,
}

/// Builds a [`Consumer`]: Kafka property names through `set`, or the typed
/// setters of [`ConsumerConfigBuilder`] (it derefs to it).
///
/// ```no_run
/// # async fn demo() -> Result<(), exactly_consumer::ConsumerError> {
/// use exactly_consumer::{Consumer, IsolationLevel};
///
/// let mut b = Consumer::builder();
/// b.set("bootstrap.servers", "127.0.0.1:9092")?
///     .set("group.id", "readers")?
///     .set("fetch.max.wait.ms", "100")?;
/// b.isolation_level(IsolationLevel::ReadCommitted);
/// let consumer = b.build().await?;
/// # let _ = consumer; Ok(()) }
/// ```
#[derive(Debug, Clone, Default)]
pub struct ConsumerBuilder {
    config: ConsumerConfigBuilder,
}

impl std::ops::Deref for ConsumerBuilder {
    type Target = ConsumerConfigBuilder;
    fn deref(&self) -> &ConsumerConfigBuilder {
        &self.config
    }
}

impl std::ops::DerefMut for ConsumerBuilder {
    fn deref_mut(&mut self) -> &mut ConsumerConfigBuilder {
        &mut self.config
    }
}

impl ConsumerBuilder {
    /// Sets one property by its Kafka name (chainable).
    pub fn set(&mut self, key: &str, value: &str) -> Result<&mut Self, ConsumerError> {
        self.config.set(key, value)?;
        Ok(self)
    }

    /// Validates the configuration and connects.
    pub async fn build(&self) -> Result<Consumer, ConsumerError> {
        Consumer::new(self.config.build()?).await
    }
}

impl Consumer {
    /// A builder.
    pub fn builder() -> ConsumerBuilder {
        ConsumerBuilder::default()
    }

    /// A consumer from Kafka property names and values.
    pub async fn from_properties<K, V>(
        props: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Consumer, ConsumerError>
    where
        K: AsRef<str>,
        V: AsRef<str>,
    {
        Consumer::new(ConsumerConfig::from_properties(props)?).await
    }

    /// Connects to the cluster (bootstrap and the broker list) with `cfg`.
    pub async fn new(cfg: ConsumerConfig) -> Result<Consumer, ConsumerError> {
        let client = Client::connect(cfg.net.clone()).await?;
        let shared = Arc::new(GroupShared::default());
        let group = match &cfg.group_id {
            Some(id) => Some(Membership::new(
                Arc::new(CoordinatorLink::new(client.clone(), id.clone())?),
                &cfg,
                &client,
            )),
            None => None,
        };
        let next_auto_commit = Instant::now() + cfg.auto_commit_interval;
        let max_age = metadata_max_age(&client);
        Ok(Consumer {
            cfg,
            client,
            metrics: Arc::new(ConsumerMetrics::default()),
            mode: Mode::None,
            asg: Assignment::default(),
            fetcher: Fetcher::default(),
            shared,
            group,
            tasks: Tasks::default(),
            next_auto_commit,
            next_metadata_refresh: Instant::now() + max_age,
            deleted: std::collections::BTreeSet::new(),
            closed: false,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &ConsumerConfig {
        &self.cfg
    }

    /// The cluster client (shared with nobody else; its metrics count this
    /// consumer's requests).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The consumer's counters.
    pub fn metrics(&self) -> ConsumerMetricsSnapshot {
        self.metrics.snapshot()
    }

    fn check_open(&self) -> Result<(), ConsumerError> {
        if self.closed {
            Err(ConsumerError::Closed)
        } else {
            Ok(())
        }
    }

    fn link(&self) -> Result<&Arc<CoordinatorLink>, ConsumerError> {
        self.group
            .as_ref()
            .map(|g| g.link())
            .ok_or_else(|| ConsumerError::Usage("this needs `group.id`".into()))
    }

    /// Joins the group over `topics` (classic protocol: eager rebalancing;
    /// `group.protocol=consumer`: KIP-848, incremental).
    /// The join happens in [`Consumer::poll`], which reports the assignment
    /// as [`Rebalance::Assigned`]. Subscribing again with other topics
    /// rejoins.
    pub fn subscribe<S: AsRef<str>>(&mut self, topics: &[S]) -> Result<(), ConsumerError> {
        self.check_open()?;
        if self.group.is_none() {
            return Err(ConsumerError::Usage("subscribe needs `group.id`".into()));
        }
        if self.mode == Mode::Assigned {
            return Err(ConsumerError::Usage(
                "subscribe after assign: call unsubscribe first".into(),
            ));
        }
        let mut t: Vec<String> = topics.iter().map(|s| s.as_ref().to_owned()).collect();
        t.sort();
        t.dedup();
        if t.is_empty() {
            return Err(ConsumerError::Usage(
                "subscribe to at least one topic".into(),
            ));
        }
        let changed = self.mode != Mode::Subscribed(t.clone());
        self.mode = Mode::Subscribed(t);
        if changed {
            if let Some(g) = &mut self.group {
                g.request_rejoin(&self.shared);
            }
        }
        Ok(())
    }

    /// Joins the group over every topic whose name `regex` matches,
    /// including topics created later (`group.protocol=consumer` only: the
    /// coordinator resolves the regex, in RE2J syntax, and sends it as the
    /// heartbeat's `SubscribedTopicRegex`, KIP-848; the broker needs
    /// ConsumerGroupHeartbeat v1, Kafka 4.0+). As in the Java client, the
    /// classic protocol refuses it.
    pub fn subscribe_pattern(&mut self, regex: &str) -> Result<(), ConsumerError> {
        self.check_open()?;
        if self.group.is_none() {
            return Err(ConsumerError::Usage("subscribe needs `group.id`".into()));
        }
        if self.cfg.group_protocol != crate::GroupProtocol::Consumer {
            return Err(ConsumerError::Usage(
                "subscribe_pattern needs group.protocol=consumer".into(),
            ));
        }
        if self.mode == Mode::Assigned {
            return Err(ConsumerError::Usage(
                "subscribe after assign: call unsubscribe first".into(),
            ));
        }
        if regex.trim().is_empty() {
            return Err(ConsumerError::Usage("the regex is empty".into()));
        }
        let changed = self.mode != Mode::Pattern(regex.to_owned());
        self.mode = Mode::Pattern(regex.to_owned());
        if changed {
            if let Some(g) = &mut self.group {
                g.request_rejoin(&self.shared);
            }
        }
        Ok(())
    }

    /// Reads `partitions` without group membership. With `group.id` the
    /// start positions come from the group's committed offsets (then
    /// `auto.offset.reset`), and commits go in as a simple consumer.
    pub fn assign(&mut self, partitions: &[TopicPartition]) -> Result<(), ConsumerError> {
        self.check_open()?;
        if matches!(self.mode, Mode::Subscribed(_) | Mode::Pattern(_)) {
            return Err(ConsumerError::Usage(
                "assign after subscribe: call unsubscribe first".into(),
            ));
        }
        let pending = self.initial_pending();
        self.fetcher.abort_all(&mut self.asg);
        self.tasks.abort_lookups();
        self.asg.set(partitions, pending);
        self.mode = Mode::Assigned;
        Ok(())
    }

    fn initial_pending(&self) -> Pending {
        if self.group.is_some() {
            Pending::Committed
        } else {
            Pending::Reset(self.cfg.auto_offset_reset)
        }
    }

    /// Leaves the group (or drops the manual assignment).
    pub async fn unsubscribe(&mut self) -> Result<(), ConsumerError> {
        self.check_open()?;
        self.fetcher.abort_all(&mut self.asg);
        self.tasks.abort_lookups();
        self.asg.clear();
        if let Some(g) = &mut self.group {
            g.leave(&self.cfg).await;
        }
        self.mode = Mode::None;
        Ok(())
    }

    /// The assigned partitions.
    pub fn assignment(&self) -> Vec<TopicPartition> {
        self.asg.list()
    }

    /// The subscribed topics.
    pub fn subscription(&self) -> Vec<String> {
        match &self.mode {
            Mode::Subscribed(t) => t.clone(),
            _ => Vec::new(),
        }
    }

    /// The next offset the consumer will return for `tp`, once known.
    pub fn position(&self, tp: &TopicPartition) -> Option<i64> {
        self.asg
            .partitions
            .get(tp)
            .and_then(|p| p.position)
            .map(|p| p.offset)
    }

    /// The last stable offset (`read_committed`) or high watermark the last
    /// fetch reported for `tp`, minus the position: how far behind we are.
    pub fn lag(&self, tp: &TopicPartition) -> Option<i64> {
        let st = self.asg.partitions.get(tp)?;
        let end = match self.cfg.isolation_level {
            IsolationLevel::ReadCommitted => st.last_stable_offset,
            IsolationLevel::ReadUncommitted => st.high_watermark,
        };
        let pos = st.position?.offset;
        (end >= 0).then(|| (end - pos).max(0))
    }

    /// The high watermark minus the last stable offset the last fetch
    /// reported for `tp`: how many offsets open transactions hold back from
    /// `read_committed` readers (0 when none is open).
    pub fn lso_distance(&self, tp: &TopicPartition) -> Option<i64> {
        let st = self.asg.partitions.get(tp)?;
        (st.high_watermark >= 0 && st.last_stable_offset >= 0)
            .then(|| (st.high_watermark - st.last_stable_offset).max(0))
    }

    fn partition_mut(
        &mut self,
        tp: &TopicPartition,
    ) -> Result<&mut crate::state::PartitionState, ConsumerError> {
        self.asg
            .partitions
            .get_mut(tp)
            .ok_or_else(|| ConsumerError::Usage(format!("{tp} is not assigned to this consumer")))
    }

    /// Moves the position of `tp` to `offset`; records fetched beyond the old
    /// position are dropped.
    pub fn seek(&mut self, tp: &TopicPartition, offset: i64) -> Result<(), ConsumerError> {
        if offset < 0 {
            return Err(ConsumerError::Usage(format!(
                "cannot seek {tp} to {offset}"
            )));
        }
        let v = self.asg.bump();
        self.partition_mut(tp)?.seek(
            Some(Position {
                offset,
                leader_epoch: None,
            }),
            Pending::Committed,
            v,
        );
        Ok(())
    }

    /// Moves `partitions` to the start of their logs (on the next poll).
    pub fn seek_to_beginning(
        &mut self,
        partitions: &[TopicPartition],
    ) -> Result<(), ConsumerError> {
        self.seek_reset(partitions, OffsetReset::Earliest)
    }

    /// Moves `partitions` to their ends (the last stable offset under
    /// `read_committed`) on the next poll.
    pub fn seek_to_end(&mut self, partitions: &[TopicPartition]) -> Result<(), ConsumerError> {
        self.seek_reset(partitions, OffsetReset::Latest)
    }

    fn seek_reset(
        &mut self,
        partitions: &[TopicPartition],
        to: OffsetReset,
    ) -> Result<(), ConsumerError> {
        for tp in partitions {
            let v = self.asg.bump();
            self.partition_mut(tp)?.seek(None, Pending::Reset(to), v);
        }
        Ok(())
    }

    /// Stops fetching `partitions` (their buffered records are kept).
    pub fn pause(&mut self, partitions: &[TopicPartition]) -> Result<(), ConsumerError> {
        for tp in partitions {
            self.partition_mut(tp)?.paused = true;
        }
        Ok(())
    }

    /// Resumes fetching `partitions`.
    pub fn resume(&mut self, partitions: &[TopicPartition]) -> Result<(), ConsumerError> {
        for tp in partitions {
            self.partition_mut(tp)?.paused = false;
        }
        Ok(())
    }

    /// The positions of every assigned partition that has one, ready to
    /// commit (with the leader epoch of the last record read): what a
    /// transactional pipeline passes to `send_offsets_to_transaction`.
    pub fn offsets_to_commit(&self) -> Vec<OffsetCommit> {
        self.asg
            .partitions
            .iter()
            .filter_map(|(tp, st)| {
                st.position.map(|p| OffsetCommit {
                    partition: tp.clone(),
                    offset: p.offset,
                    leader_epoch: p.leader_epoch,
                    metadata: None,
                })
            })
            .collect()
    }

    /// The group metadata for a transactional offset commit (KIP-447): group
    /// id, generation (the member epoch under KIP-848), member id, group
    /// instance id. Generation -1 and an
    /// empty member id when not in a generation (manual assignment).
    pub fn group_metadata(&self) -> ConsumerGroupMetadata {
        let (generation_id, member_id) = self
            .group
            .as_ref()
            .map(|g| (g.generation(), g.member_id()))
            .unwrap_or((-1, String::new()));
        ConsumerGroupMetadata {
            group_id: self.cfg.group_id.clone().unwrap_or_default(),
            generation_id,
            member_id,
            group_instance_id: self.cfg.group_instance_id.clone(),
        }
    }

    /// Whether the member is rejoining its group right now. Under a
    /// cooperative assignor it keeps its partitions meanwhile, but the
    /// generation in [`Consumer::group_metadata`] may be replaced when the
    /// join completes: a transactional offset commit is best held until the
    /// next [`Rebalance`] event (or a poll that returns records again).
    pub fn is_rebalancing(&self) -> bool {
        self.group.as_ref().is_some_and(|g| g.is_joining())
    }

    /// Commits (when `enable.auto.commit`), leaves the group (unless this is
    /// a static member, which keeps its place for `session.timeout.ms`, as
    /// KIP-345 intends), stops every task and closes the connections.
    pub async fn close(mut self) -> Result<(), ConsumerError> {
        self.close_inner(self.cfg.default_api_timeout).await
    }

    /// [`Consumer::close`] with a time limit for the commit and LeaveGroup.
    pub async fn close_with_timeout(mut self, timeout: Duration) -> Result<(), ConsumerError> {
        self.close_inner(timeout).await
    }

    async fn close_inner(&mut self, timeout: Duration) -> Result<(), ConsumerError> {
        if self.closed {
            return Ok(());
        }
        let deadline = Instant::now() + timeout;
        self.fetcher.abort_all(&mut self.asg);
        self.tasks.abort_all();
        let mut result = Ok(());
        if self.cfg.enable_auto_commit && !self.asg.partitions.is_empty() {
            if let Ok(Err(e)) = tokio::time::timeout_at(deadline, self.commit()).await {
                result = Err(e);
            }
        }
        if let Some(g) = &mut self.group {
            let _ = tokio::time::timeout_at(deadline, g.leave(&self.cfg)).await;
            g.link().close().await;
        }
        self.asg.clear();
        self.client.close();
        self.closed = true;
        result
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        self.tasks.abort_all();
        if let Some(g) = &mut self.group {
            g.stop_heartbeat();
        }
    }
}

/// `metadata.max.age.ms`, at least 100 ms so a zero does not spin.
fn metadata_max_age(client: &Client) -> Duration {
    client
        .config()
        .metadata_max_age()
        .max(Duration::from_millis(100))
}
