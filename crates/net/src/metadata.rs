//! The cached cluster view: brokers, topics with their ids (KIP-516), and
//! partition leaders with their leader epochs (KIP-320).
//!
//! Invariants kept here:
//! - every applied Metadata response makes a new [`ClusterView`] with the
//!   next generation; views are immutable and shared (`Arc`), so a reader
//!   never sees half an update;
//! - a partition's leader epoch never goes backwards: a response from a
//!   broker that lags behind (older epoch) does not replace a newer entry;
//! - an invalidation names the generation the caller routed with; if the
//!   cache has moved past it, the invalidation is stale and ignored, so an
//!   old failure can never wipe newer data (ARCHITECTURE.md principle 4).

use std::collections::HashMap;
use std::sync::Arc;

use exactly_codec::messages::MetadataResponse;
use exactly_codec::ErrorCode;
use tokio::time::Instant;

/// Whether an error code means the client's metadata is stale and the
/// request should be routed again after a refresh.
pub fn is_stale_metadata(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::NotLeaderOrFollower
            | ErrorCode::UnknownTopicOrPartition
            | ErrorCode::FencedLeaderEpoch
            | ErrorCode::UnknownLeaderEpoch
            | ErrorCode::LeaderNotAvailable
            | ErrorCode::KafkaStorageError
            | ErrorCode::UnknownTopicId
            | ErrorCode::InconsistentTopicId
            | ErrorCode::ReplicaNotAvailable
            | ErrorCode::NetworkException
    )
}

/// A topic id (KIP-516), the 16 bytes of a UUID; all zero when unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TopicId(pub [u8; 16]);

impl From<uuid::Uuid> for TopicId {
    fn from(u: uuid::Uuid) -> Self {
        TopicId(*u.as_bytes())
    }
}

impl From<TopicId> for uuid::Uuid {
    fn from(t: TopicId) -> Self {
        uuid::Uuid::from_bytes(t.0)
    }
}

impl TopicId {
    /// Whether the id is the all-zero "no id".
    pub fn is_zero(&self) -> bool {
        self.0 == [0; 16]
    }
}

/// A broker as Metadata describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerInfo {
    /// The broker id (`node.id`).
    pub id: i32,
    /// Advertised host.
    pub host: String,
    /// Advertised port.
    pub port: u16,
    /// Rack, when configured.
    pub rack: Option<String>,
}

impl BrokerInfo {
    /// `host:port`.
    pub fn addr(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// One partition's routing data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionInfo {
    /// Partition index.
    pub partition: i32,
    /// Leader broker id, or -1 when there is none right now.
    pub leader: i32,
    /// The leader epoch (-1 when the broker did not say).
    pub leader_epoch: i32,
    /// Replica broker ids.
    pub replicas: Vec<i32>,
    /// In-sync replica broker ids.
    pub isr: Vec<i32>,
    /// The partition-level error Metadata reported, if any.
    pub error: Option<ErrorCode>,
}

/// One topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    /// Topic name.
    pub name: String,
    /// Topic id.
    pub id: TopicId,
    /// Internal topic (`__consumer_offsets`...).
    pub is_internal: bool,
    /// Partitions, indexed by partition number when dense.
    pub partitions: Vec<PartitionInfo>,
}

impl TopicInfo {
    /// The partition with this index.
    pub fn partition(&self, p: i32) -> Option<&PartitionInfo> {
        self.partitions
            .get(usize::try_from(p).ok()?)
            .filter(|x| x.partition == p)
            .or_else(|| self.partitions.iter().find(|x| x.partition == p))
    }
}

/// An immutable snapshot of the cluster.
#[derive(Debug, Clone)]
pub struct ClusterView {
    generation: u64,
    brokers: HashMap<i32, BrokerInfo>,
    topics: HashMap<String, Arc<TopicInfo>>,
    /// Topics Metadata reported an error for (e.g. UNKNOWN_TOPIC_OR_PARTITION).
    topic_errors: HashMap<String, ErrorCode>,
    controller: i32,
    cluster_id: Option<String>,
    updated: Option<Instant>,
}

impl Default for ClusterView {
    fn default() -> Self {
        Self {
            generation: 0,
            brokers: HashMap::new(),
            topics: HashMap::new(),
            topic_errors: HashMap::new(),
            controller: -1,
            cluster_id: None,
            updated: None,
        }
    }
}

/// Where to send a request for one partition, and under which generation the
/// answer was given (pass it back to [`MetadataCache::invalidate`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// The leader's broker id.
    pub leader: i32,
    /// The leader epoch to send (Fetch, OffsetsForLeaderEpoch).
    pub leader_epoch: i32,
    /// The cache generation this route came from.
    pub generation: u64,
}

impl ClusterView {
    /// The generation (0 = never loaded).
    pub fn generation(&self) -> u64 {
        self.generation
    }
    /// When the view was last refreshed.
    pub fn updated(&self) -> Option<Instant> {
        self.updated
    }
    /// A broker by id.
    pub fn broker(&self, id: i32) -> Option<&BrokerInfo> {
        self.brokers.get(&id)
    }
    /// Every known broker.
    pub fn brokers(&self) -> impl Iterator<Item = &BrokerInfo> {
        self.brokers.values()
    }
    /// A topic by name.
    pub fn topic(&self, name: &str) -> Option<&Arc<TopicInfo>> {
        self.topics.get(name)
    }
    /// The error Metadata gave for a topic, if it gave one.
    pub fn topic_error(&self, name: &str) -> Option<ErrorCode> {
        self.topic_errors.get(name).copied()
    }
    /// Every known topic name.
    pub fn topic_names(&self) -> impl Iterator<Item = &str> {
        self.topics.keys().map(String::as_str)
    }
    /// The active controller id (-1 when unknown).
    pub fn controller(&self) -> i32 {
        self.controller
    }
    /// The cluster id.
    pub fn cluster_id(&self) -> Option<&str> {
        self.cluster_id.as_deref()
    }
    /// The leader of a partition, if there is one and it is a known broker.
    pub fn route(&self, topic: &str, partition: i32) -> Option<Route> {
        let p = self.topic(topic)?.partition(partition)?;
        (p.leader >= 0 && self.brokers.contains_key(&p.leader)).then_some(Route {
            leader: p.leader,
            leader_epoch: p.leader_epoch,
            generation: self.generation,
        })
    }

    /// The view after applying a Metadata response.
    fn merged(&self, resp: &MetadataResponse, now: Instant) -> ClusterView {
        let mut next = self.clone();
        next.generation = self.generation + 1;
        next.updated = Some(now);
        if !resp.brokers.is_empty() {
            next.brokers = resp
                .brokers
                .iter()
                .filter_map(|b| {
                    Some((
                        b.node_id.0,
                        BrokerInfo {
                            id: b.node_id.0,
                            host: b.host.to_string(),
                            port: u16::try_from(b.port).ok()?,
                            rack: b.rack.as_ref().map(|r| r.to_string()),
                        },
                    ))
                })
                .collect();
        }
        next.controller = resp.controller_id.0;
        if let Some(c) = &resp.cluster_id {
            next.cluster_id = Some(c.to_string());
        }
        for t in &resp.topics {
            let Some(name) = t.name.as_ref().map(|n| n.0.to_string()) else {
                continue;
            };
            if let Some(code) = ErrorCode::from_code(t.error_code) {
                next.topic_errors.insert(name.clone(), code);
                if matches!(
                    code,
                    ErrorCode::UnknownTopicOrPartition | ErrorCode::UnknownTopicId
                ) {
                    next.topics.remove(&name);
                }
                continue;
            }
            next.topic_errors.remove(&name);
            let id = TopicId::from(t.topic_id);
            // A topic deleted and re-created under the same name has a new id
            // and starts its leader epochs again: the old entry says nothing.
            let old = self
                .topics
                .get(&name)
                .filter(|o| o.id == id || o.id.is_zero() || id.is_zero());
            let mut partitions: Vec<PartitionInfo> = t
                .partitions
                .iter()
                .map(|p| {
                    let fresh = PartitionInfo {
                        partition: p.partition_index,
                        leader: p.leader_id.0,
                        leader_epoch: p.leader_epoch,
                        replicas: p.replica_nodes.iter().map(|b| b.0).collect(),
                        isr: p.isr_nodes.iter().map(|b| b.0).collect(),
                        error: ErrorCode::from_code(p.error_code),
                    };
                    // KIP-320: never go back to an older leader epoch.
                    match old.and_then(|o| o.partition(p.partition_index)) {
                        Some(prev)
                            if prev.leader_epoch > fresh.leader_epoch
                                && fresh.leader_epoch >= 0 =>
                        {
                            prev.clone()
                        }
                        _ => fresh,
                    }
                })
                .collect();
            partitions.sort_by_key(|p| p.partition);
            next.topics.insert(
                name.clone(),
                Arc::new(TopicInfo {
                    name,
                    id,
                    is_internal: t.is_internal,
                    partitions,
                }),
            );
        }
        next
    }
}

/// The shared, generation-stamped cache.
#[derive(Debug, Default)]
pub struct MetadataCache {
    inner: std::sync::Mutex<CacheState>,
}

#[derive(Debug, Default)]
struct CacheState {
    view: Arc<ClusterView>,
    /// Set by a valid invalidation; cleared by the next applied response.
    stale: bool,
}

impl MetadataCache {
    /// The current view.
    pub fn view(&self) -> Arc<ClusterView> {
        self.inner
            .lock()
            .map(|s| s.view.clone())
            .unwrap_or_default()
    }

    /// Whether a refresh was asked for since the last one.
    pub fn is_stale(&self) -> bool {
        self.inner.lock().map(|s| s.stale).unwrap_or(true)
    }

    /// Applies a Metadata response and returns the new view.
    pub fn apply(&self, resp: &MetadataResponse, now: Instant) -> Arc<ClusterView> {
        match self.inner.lock() {
            Ok(mut s) => {
                let next = Arc::new(s.view.merged(resp, now));
                s.view = next.clone();
                s.stale = false;
                next
            }
            Err(_) => Arc::new(ClusterView::default()),
        }
    }

    /// Marks the cache stale because a request routed with `generation`
    /// failed in a way that means stale metadata. Returns whether it took
    /// effect (false when the cache is already newer than `generation`).
    pub fn invalidate(&self, generation: u64) -> bool {
        match self.inner.lock() {
            Ok(mut s) if s.view.generation <= generation => {
                s.stale = true;
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use exactly_codec::messages::metadata_response::{
        MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
    };
    use exactly_codec::messages::{BrokerId, TopicName};

    use super::*;

    fn resp(leader: i32, epoch: i32) -> MetadataResponse {
        MetadataResponse::default()
            .with_brokers(
                (1..=3)
                    .map(|i| {
                        MetadataResponseBroker::default()
                            .with_node_id(BrokerId(i))
                            .with_host("127.0.0.1".into())
                            .with_port(9000 + i)
                    })
                    .collect(),
            )
            .with_controller_id(BrokerId(1))
            .with_topics(vec![MetadataResponseTopic::default()
                .with_name(Some(TopicName("t".into())))
                .with_partitions(vec![MetadataResponsePartition::default()
                    .with_partition_index(0)
                    .with_leader_id(BrokerId(leader))
                    .with_leader_epoch(epoch)])])
    }

    #[test]
    fn route_and_generations() {
        let c = MetadataCache::default();
        let now = Instant::now();
        assert_eq!(c.view().route("t", 0), None);
        let v = c.apply(&resp(2, 5), now);
        let r = v.route("t", 0).unwrap();
        assert_eq!((r.leader, r.leader_epoch, r.generation), (2, 5, 1));
        assert_eq!(v.broker(2).unwrap().addr(), "127.0.0.1:9002");
        // A newer answer moves the leader.
        let v = c.apply(&resp(3, 6), now);
        assert_eq!(v.route("t", 0).unwrap().leader, 3);
        // A lagging broker's older epoch does not move it back.
        let v = c.apply(&resp(2, 5), now);
        assert_eq!(v.route("t", 0).unwrap().leader, 3);
        assert_eq!(v.generation(), 3);
    }

    #[test]
    fn recreated_topic_resets_epochs() {
        let c = MetadataCache::default();
        let now = Instant::now();
        let with_id = |leader, epoch, id: u8| {
            let mut r = resp(leader, epoch);
            r.topics[0].topic_id = uuid::Uuid::from_bytes([id; 16]);
            r
        };
        c.apply(&with_id(3, 9, 1), now);
        // Same id, older epoch: ignored.
        assert_eq!(
            c.apply(&with_id(2, 0, 1), now)
                .route("t", 0)
                .unwrap()
                .leader,
            3
        );
        // New id (deleted and re-created): epoch 0 is news.
        let v = c.apply(&with_id(2, 0, 2), now);
        assert_eq!(v.route("t", 0).unwrap().leader, 2);
        assert_eq!(v.topic("t").unwrap().id, TopicId([2; 16]));
    }

    #[test]
    fn stale_invalidation_is_ignored() {
        let c = MetadataCache::default();
        let now = Instant::now();
        c.apply(&resp(2, 5), now);
        c.apply(&resp(2, 5), now);
        assert!(
            !c.invalidate(1),
            "a failure routed with generation 1 is old news"
        );
        assert!(!c.is_stale());
        assert!(c.invalidate(2));
        assert!(c.is_stale());
        c.apply(&resp(2, 5), now);
        assert!(!c.is_stale());
    }

    #[test]
    fn unknown_topic_removed_and_reported() {
        let c = MetadataCache::default();
        let now = Instant::now();
        c.apply(&resp(2, 5), now);
        let gone = MetadataResponse::default().with_topics(vec![MetadataResponseTopic::default()
            .with_name(Some(TopicName("t".into())))
            .with_error_code(ErrorCode::UnknownTopicOrPartition.code())]);
        let v = c.apply(&gone, now);
        assert!(v.topic("t").is_none());
        assert_eq!(v.topic_error("t"), Some(ErrorCode::UnknownTopicOrPartition));
        // Brokers survive a response that lists none.
        assert_eq!(v.brokers().count(), 3);
    }

    #[test]
    fn stale_codes() {
        assert!(is_stale_metadata(ErrorCode::NotLeaderOrFollower));
        assert!(is_stale_metadata(ErrorCode::FencedLeaderEpoch));
        assert!(!is_stale_metadata(ErrorCode::ProducerFenced));
    }
}
