//! The simulated broker on the wire (feature `net`): a [`Dialer`] whose every
//! connection is an in-memory `tokio::io::duplex` stream served by a task
//! that decodes Kafka frames, applies them to the [`Broker`] model and
//! encodes the answers. The real clients of `exactly` run against it
//! in-process, unchanged: only their `NetConfigBuilder::dialer` is set.
//!
//! The server reads the clock through `tokio::time::Instant`, so under
//! `#[tokio::test(start_paused = true)]` the whole run (clients, server,
//! timeouts, backoffs) is on tokio's virtual clock.
//!
//! Built so far (see `docs/TESTKIT.md` for the rest): one node (id 1)
//! leading every partition and coordinating every transaction and group;
//! ApiVersions, Metadata, InitProducerId, Produce (RecordBatch v2 headers
//! read with the codec, the producer-state checks of the model, KIP-98; the
//! stored batch gets its base offset), the transaction APIs of transaction
//! version 1 (FindCoordinator, AddPartitionsToTxn, AddOffsetsToTxn,
//! TxnOffsetCommit, EndTxn), Fetch and ListOffsets under both isolation
//! levels (read_committed: up to the LSO, with the aborted list of KIP-98),
//! the classic group protocol for one member with OffsetCommit/OffsetFetch;
//! the fault of a connection cut after a Produce was applied (the client
//! sees "maybe delivered" and retries, the broker's sequence checks must
//! deduplicate). `docs/GUIDE-PROPERTY-TEST.md` shows how a user tests a
//! pipeline with it.

mod fetch;
mod group;
mod txn;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::{Bytes, BytesMut};
use exactly_codec::messages::api_versions_response::ApiVersion;
use exactly_codec::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use exactly_codec::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use exactly_codec::messages::{
    ApiKey, ApiVersionsResponse, BrokerId, InitProducerIdResponse, MetadataResponse,
    ProduceRequest, ProduceResponse, ProducerId, RequestKind, ResponseKind, TopicName,
};
use exactly_codec::record::set_base_offset;
use exactly_codec::{decode_request, encode_response, ErrorCode, FrameDecoder, RecordBatch};
use exactly_net::conn::Stream;
use exactly_net::Dialer;
/// A topic and partition, as the [`SimCluster`] accessors take them.
pub use exactly_txn::TopicPartition;
use exactly_txn::{BatchId, Request, Response, Stamp};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::time::Instant;

use crate::broker::Broker;

/// The API versions the simulated broker answers (min, max).
const VERSIONS: &[(ApiKey, i16, i16)] = &[
    (ApiKey::ApiVersions, 0, 3),
    (ApiKey::Metadata, 1, 12),
    (ApiKey::InitProducerId, 0, 4),
    (ApiKey::Produce, 3, 11),
    (ApiKey::FindCoordinator, 1, 3),
    (ApiKey::AddPartitionsToTxn, 0, 3),
    (ApiKey::AddOffsetsToTxn, 0, 3),
    (ApiKey::TxnOffsetCommit, 0, 3),
    (ApiKey::EndTxn, 0, 3),
    (ApiKey::Fetch, 4, 12),
    (ApiKey::ListOffsets, 1, 7),
    (ApiKey::JoinGroup, 0, 9),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 5),
    (ApiKey::OffsetCommit, 2, 8),
    (ApiKey::OffsetFetch, 1, 7),
];

struct Inner {
    broker: Broker,
    start: Instant,
    partitions: i32,
    next_batch: u64,
    batches: BTreeMap<BatchId, Bytes>,
    produces: usize,
    duplicates: usize,
    cut_after_produce: BTreeSet<usize>,
    connections: usize,
    groups: BTreeMap<String, group::Group>,
    fetches: usize,
}

/// One record as [`SimCluster::read_committed`] returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimRecord {
    /// Its partition.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
    /// Its key.
    pub key: Option<Bytes>,
    /// Its value.
    pub value: Option<Bytes>,
    /// Its headers: (key, value).
    pub headers: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

impl SimRecord {
    /// The headers as [`crate::oracle::Oracle::observe_headers`] takes them.
    pub fn header_pairs(&self) -> impl Iterator<Item = (&[u8], Option<&[u8]>)> {
        self.headers
            .iter()
            .map(|(k, v)| (k.as_slice(), v.as_deref()))
    }
}

/// The simulated cluster: the [`Broker`] model served over in-memory
/// connections. Cheap to clone (shared state).
#[derive(Clone)]
pub struct SimCluster {
    inner: Arc<Mutex<Inner>>,
}

impl std::fmt::Debug for SimCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimCluster").finish_non_exhaustive()
    }
}

impl SimCluster {
    /// A cluster whose topics have `partitions` partitions each. Must be
    /// called inside a tokio runtime (it reads the runtime's clock).
    pub fn new(partitions: i32) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Inner {
                broker: Broker::new(false, 0, 60_000),
                start: Instant::now(),
                partitions: partitions.max(1),
                next_batch: 0,
                batches: BTreeMap::new(),
                produces: 0,
                duplicates: 0,
                cut_after_produce: BTreeSet::new(),
                connections: 0,
                groups: BTreeMap::new(),
                fetches: 0,
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic elsewhere cannot leave the model half-updated in a way
        // that matters more than the panic itself.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The dialer to give the clients (`NetConfigBuilder::dialer`, or the
    /// producer's and consumer's `net()` builders).
    pub fn dialer(&self) -> Dialer {
        let cluster = self.clone();
        Dialer::new(move |_addr: &str| {
            let cluster = cluster.clone();
            Box::pin(async move {
                let (client, server) = tokio::io::duplex(256 * 1024);
                cluster.lock().connections += 1;
                tokio::spawn(serve(cluster, server));
                Ok(Box::new(client) as Box<dyn Stream>)
            })
        })
    }

    /// Cuts the connection right after applying the `n`-th Produce request
    /// (from 1): the client never sees the answer.
    pub fn cut_after_produce(&self, n: impl IntoIterator<Item = usize>) {
        self.lock().cut_after_produce.extend(n);
    }

    /// Connections opened so far.
    pub fn connections(&self) -> usize {
        self.lock().connections
    }

    /// Produce requests applied so far (each partition's batch counts).
    pub fn produces(&self) -> usize {
        self.lock().produces
    }

    /// Fetch requests answered so far.
    pub fn fetches(&self) -> usize {
        self.lock().fetches
    }

    /// The offset `group` has committed for `tp` (plainly, or by a
    /// committed transaction), if any.
    pub fn committed_offset(&self, group: &str, tp: &TopicPartition) -> Option<i64> {
        self.lock()
            .broker
            .committed_offsets
            .get(&(group.to_string(), tp.clone()))
            .copied()
    }

    /// Batches refused as duplicates of one already written (a retry of a
    /// request whose answer was lost), so far.
    pub fn duplicates(&self) -> usize {
        self.lock().duplicates
    }

    /// The batches a `read_committed` reader sees, per partition, in log
    /// order.
    pub fn committed_batches(&self) -> Vec<(TopicPartition, RecordBatch)> {
        let inner = self.lock();
        let (visible, _) = inner.broker.read_committed();
        visible
            .into_iter()
            .filter_map(|(tp, id)| {
                let bytes = inner.batches.get(&id)?.clone();
                RecordBatch::decode(bytes).ok().map(|b| (tp, b))
            })
            .collect()
    }

    /// The records of `topic` a `read_committed` reader sees, per partition
    /// in offset order (the batches of committed transactions and the
    /// non-transactional ones; markers and aborted or open transactions
    /// left out). What a test judges a pipeline's output by.
    pub fn read_committed(&self, topic: &str) -> Vec<SimRecord> {
        let mut out = Vec::new();
        for (tp, batch) in self.committed_batches() {
            if tp.topic != topic {
                continue;
            }
            for r in batch.records().flatten() {
                out.push(SimRecord {
                    partition: tp.partition,
                    offset: r.offset(),
                    key: r.key_bytes(),
                    value: r.value_bytes(),
                    headers: r
                        .headers()
                        .flatten()
                        .map(|h| (h.key().to_vec(), h.value().map(<[u8]>::to_vec)))
                        .collect(),
                });
            }
        }
        out
    }

    /// Runs `f` on the broker model (its logs, transactions, offsets).
    pub fn with_broker<R>(&self, f: impl FnOnce(&Broker) -> R) -> R {
        f(&self.lock().broker)
    }

    /// Runs `f` on the broker model to change it (fence a transactional id,
    /// set the group generation), at the current virtual time.
    pub fn with_broker_mut<R>(&self, f: impl FnOnce(&mut Broker, u64) -> R) -> R {
        let mut inner = self.lock();
        let now = Self::now(&inner);
        f(&mut inner.broker, now)
    }

    /// Lets the coordinator write the markers of transactions whose
    /// completion is due by now (a reader sees a transaction once its
    /// markers are written).
    pub fn settle(&self) {
        let mut inner = self.lock();
        let now = Self::now(&inner);
        inner.broker.complete_due(now);
    }
}

/// One connection: frames in, answers out, until the client closes it or a
/// fault cuts it.
async fn serve(cluster: SimCluster, mut sock: DuplexStream) {
    let dec = FrameDecoder::default();
    let mut buf = BytesMut::new();
    loop {
        let frame = loop {
            match dec.decode(&mut buf) {
                Ok(Some(f)) => break f,
                Ok(None) => {}
                Err(_) => return,
            }
            match sock.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        };
        let Ok((header, req)) = decode_request(frame) else {
            return;
        };
        let version = header.request_api_version;
        let (api, resp, cut) = match req {
            RequestKind::ApiVersions(_) => (ApiKey::ApiVersions, api_versions(), false),
            RequestKind::Metadata(m) => {
                let names = m
                    .topics
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|t| t.name)
                    .collect();
                (ApiKey::Metadata, cluster.metadata(names), false)
            }
            RequestKind::InitProducerId(r) => {
                let current = (r.producer_id.0 >= 0)
                    .then(|| exactly_txn::ProducerIdentity::new(r.producer_id.0, r.producer_epoch));
                let resp = cluster.apply(&Request::InitProducerId {
                    transactional_id: r.transactional_id.map(|t| t.0.to_string()),
                    transaction_timeout_ms: r.transaction_timeout_ms,
                    current,
                });
                let body = match resp {
                    Response::InitProducerId { error, identity } => {
                        InitProducerIdResponse::default()
                            .with_error_code(error.map_or(0, ErrorCode::code))
                            .with_producer_id(ProducerId(identity.producer_id))
                            .with_producer_epoch(identity.epoch)
                    }
                    _ => InitProducerIdResponse::default()
                        .with_error_code(ErrorCode::UnknownServerError.code()),
                };
                (
                    ApiKey::InitProducerId,
                    ResponseKind::InitProducerId(body),
                    false,
                )
            }
            RequestKind::Produce(p) => {
                let (body, cut) = cluster.produce(p);
                (ApiKey::Produce, ResponseKind::Produce(body), cut)
            }
            RequestKind::FindCoordinator(r) => {
                (ApiKey::FindCoordinator, cluster.find_coordinator(r), false)
            }
            RequestKind::AddPartitionsToTxn(r) => {
                (ApiKey::AddPartitionsToTxn, cluster.add_partitions(r), false)
            }
            RequestKind::AddOffsetsToTxn(r) => {
                (ApiKey::AddOffsetsToTxn, cluster.add_offsets(r), false)
            }
            RequestKind::TxnOffsetCommit(r) => {
                (ApiKey::TxnOffsetCommit, cluster.txn_offset_commit(r), false)
            }
            RequestKind::EndTxn(r) => (ApiKey::EndTxn, cluster.end_txn(r), false),
            RequestKind::Fetch(r) => (ApiKey::Fetch, cluster.fetch(r).await, false),
            RequestKind::ListOffsets(r) => (ApiKey::ListOffsets, cluster.list_offsets(r), false),
            RequestKind::JoinGroup(r) => (ApiKey::JoinGroup, cluster.join_group(r, version), false),
            RequestKind::SyncGroup(r) => (ApiKey::SyncGroup, cluster.sync_group(r), false),
            RequestKind::Heartbeat(r) => (ApiKey::Heartbeat, cluster.heartbeat(r), false),
            RequestKind::LeaveGroup(r) => (ApiKey::LeaveGroup, cluster.leave_group(r), false),
            RequestKind::OffsetCommit(r) => (ApiKey::OffsetCommit, cluster.offset_commit(r), false),
            RequestKind::OffsetFetch(r) => (ApiKey::OffsetFetch, cluster.offset_fetch(r), false),
            // An API the simulation does not serve: a broker that does not
            // know it closes the connection.
            _ => return,
        };
        if cut {
            return;
        }
        let mut out = BytesMut::new();
        if encode_response(&mut out, api, header.correlation_id, version, &resp).is_err() {
            return;
        }
        if sock.write_all(&out).await.is_err() {
            return;
        }
    }
}

fn api_versions() -> ResponseKind {
    ResponseKind::ApiVersions(
        ApiVersionsResponse::default().with_api_keys(
            VERSIONS
                .iter()
                .map(|&(k, min, max)| {
                    ApiVersion::default()
                        .with_api_key(k as i16)
                        .with_min_version(min)
                        .with_max_version(max)
                })
                .collect(),
        ),
    )
}

impl SimCluster {
    fn now(inner: &Inner) -> u64 {
        Instant::now().duration_since(inner.start).as_millis() as u64
    }

    fn apply(&self, request: &Request) -> Response {
        let mut inner = self.lock();
        let now = Self::now(&inner);
        inner.broker.complete_due(now);
        inner.broker.expire_transactions(now);
        inner.broker.handle(now, request)
    }

    fn metadata(&self, names: Vec<TopicName>) -> ResponseKind {
        let partitions = self.lock().partitions;
        let topics = names
            .into_iter()
            .map(|name| {
                MetadataResponseTopic::default()
                    .with_name(Some(name))
                    .with_partitions(
                        (0..partitions)
                            .map(|p| {
                                MetadataResponsePartition::default()
                                    .with_partition_index(p)
                                    .with_leader_id(BrokerId(1))
                                    .with_leader_epoch(0)
                                    .with_replica_nodes(vec![BrokerId(1)])
                                    .with_isr_nodes(vec![BrokerId(1)])
                            })
                            .collect(),
                    )
            })
            .collect();
        ResponseKind::Metadata(
            MetadataResponse::default()
                .with_brokers(vec![MetadataResponseBroker::default()
                    .with_node_id(BrokerId(1))
                    .with_host("sim-1".into())
                    .with_port(9092)])
                .with_controller_id(BrokerId(1))
                .with_topics(topics),
        )
    }

    /// Applies each partition's batch; returns the answer and whether a
    /// fault cuts the connection instead of answering.
    fn produce(&self, p: ProduceRequest) -> (ProduceResponse, bool) {
        let txn_id = p.transactional_id.map(|t| t.0.to_string());
        let mut cut = false;
        let mut responses = Vec::new();
        for topic in p.topic_data {
            let mut parts = Vec::new();
            for part in topic.partition_data {
                let tp = TopicPartition::new(topic.name.0.as_str(), part.index);
                let bytes = part.records.unwrap_or_default();
                let (error, base_offset) = match RecordBatch::decode(bytes.clone()) {
                    Err(_) => (Some(ErrorCode::CorruptMessage), -1),
                    Ok(batch) => {
                        let h = batch.header();
                        let mut inner = self.lock();
                        let id = BatchId(inner.next_batch);
                        inner.next_batch += 1;
                        let now = Self::now(&inner);
                        let request = Request::Produce {
                            partition: tp.clone(),
                            batch: id,
                            record_count: u32::try_from(h.record_count).unwrap_or(0),
                            stamp: Stamp {
                                producer_id: h.producer_id,
                                epoch: h.producer_epoch,
                                base_sequence: h.base_sequence,
                                transactional: h.attributes.transactional,
                            },
                            transactional_id: txn_id.clone(),
                            flow: None,
                        };
                        inner.broker.complete_due(now);
                        match inner.broker.handle(now, &request) {
                            Response::Produce {
                                error, base_offset, ..
                            } => {
                                if error == Some(ErrorCode::DuplicateSequenceNumber) {
                                    inner.duplicates += 1;
                                }
                                if error.is_none() {
                                    // Kafka assigns the offsets: the stored
                                    // (and later fetched) batch carries them.
                                    let mut stored = BytesMut::from(&bytes[..]);
                                    if set_base_offset(&mut stored, base_offset).is_err() {
                                        return (ProduceResponse::default(), true);
                                    }
                                    inner.batches.insert(id, stored.freeze());
                                    inner.produces += 1;
                                    let n = inner.produces;
                                    if inner.cut_after_produce.remove(&n) {
                                        cut = true;
                                    }
                                }
                                (error, base_offset)
                            }
                            _ => (Some(ErrorCode::UnknownServerError), -1),
                        }
                    }
                };
                parts.push(
                    PartitionProduceResponse::default()
                        .with_index(part.index)
                        .with_error_code(error.map_or(0, ErrorCode::code))
                        .with_base_offset(base_offset),
                );
            }
            responses.push(
                TopicProduceResponse::default()
                    .with_name(topic.name)
                    .with_partition_responses(parts),
            );
        }
        (ProduceResponse::default().with_responses(responses), cut)
    }
}
