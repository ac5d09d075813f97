//! A scripted fake broker for the consumer: it answers ApiVersions, Metadata
//! (one broker, itself, leading every partition of the topics asked for,
//! with a leader epoch the test can bump) and ListOffsets (from a table),
//! and hands every Fetch to the test's script, which may answer anything a
//! hostile or buggy broker could: duplicate, missing or unrequested
//! partitions, odd error codes, unsorted aborted lists, corrupt batches.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use exactly_codec::messages::api_versions_response::ApiVersion;
use exactly_codec::messages::fetch_response::{
    AbortedTransaction, FetchableTopicResponse, PartitionData,
};
use exactly_codec::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use exactly_codec::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use exactly_codec::messages::*;
use exactly_codec::record::{encode_control_batch, set_base_offset};
use exactly_codec::{
    decode_request, encode_response, BatchBuilder, Compression, FrameDecoder, ProducerStamp,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the script sees of one Fetch.
#[derive(Debug, Clone)]
pub struct FetchSeen {
    /// The n-th fetch (from 0, over every node).
    pub n: usize,
    /// The node it came to.
    pub node: i32,
    /// (topic, partition, fetch offset, current leader epoch) in order.
    pub partitions: Vec<(String, i32, i64, i32)>,
    /// The isolation level asked for.
    pub isolation_level: i8,
    /// `max_wait_ms`, `min_bytes` and `max_bytes` of the request.
    pub max_wait_ms: i32,
    pub min_bytes: i32,
    pub max_bytes: i32,
    /// `partition_max_bytes` of each partition, in the order of `partitions`.
    pub partition_max_bytes: Vec<i32>,
    /// `session_id` and `session_epoch` (KIP-227).
    pub session_id: i32,
    pub session_epoch: i32,
    /// `forgotten_topics_data` as (topic, partition).
    pub forgotten: Vec<(String, i32)>,
    /// `rack_id` (KIP-392, v11+; "" for none).
    pub rack_id: String,
}

/// The test's answer to a Fetch.
pub type Script = Box<dyn FnMut(&FetchSeen, &FakeState) -> FetchResponse + Send>;

/// The test's answer to a ConsumerGroupHeartbeat (KIP-848); the fake is
/// its own group coordinator.
pub type HeartbeatScript =
    Box<dyn FnMut(&ConsumerGroupHeartbeatRequest) -> ConsumerGroupHeartbeatResponse + Send>;

/// The topic id the fake gives `name` in Metadata.
pub fn topic_id(name: &str) -> uuid::Uuid {
    let mut b = [0x5a_u8; 16];
    for (i, c) in name.bytes().take(16).enumerate() {
        b[i] = c;
    }
    uuid::Uuid::from_bytes(b)
}

pub struct FakeState {
    pub script: Mutex<Script>,
    pub fetches: Mutex<Vec<FetchSeen>>,
    pub metadata_requests: AtomicUsize,
    pub leader_epoch: AtomicI32,
    /// Partitions per topic in Metadata.
    pub partitions: AtomicI32,
    /// (topic, partition, timestamp) -> offset for ListOffsets.
    pub list_offsets: Mutex<HashMap<(String, i32, i64), i64>>,
    /// The nodes' ports, node id = index + 1; partition p is led by node
    /// `p % nodes + 1`.
    pub ports: Mutex<Vec<i32>>,
    /// Fetch answers of these nodes wait this long.
    pub delays: Mutex<HashMap<i32, std::time::Duration>>,
    /// Per node: fetches in flight now, and the most ever.
    pub in_flight: Mutex<HashMap<i32, (usize, usize)>>,
    /// Answers ConsumerGroupHeartbeat when set.
    pub heartbeat: Mutex<Option<HeartbeatScript>>,
    /// Every ConsumerGroupHeartbeat received.
    pub heartbeats: Mutex<Vec<ConsumerGroupHeartbeatRequest>>,
    /// The cluster's topics, answered to a Metadata request for all topics.
    pub all_topics: Mutex<Vec<String>>,
}

pub struct FakeBroker {
    pub addr: String,
    pub state: Arc<FakeState>,
}

impl FakeBroker {
    pub async fn start(script: Script) -> FakeBroker {
        Self::cluster(1, script).await
    }

    /// `nodes` brokers sharing one script and one view of the cluster;
    /// `addr` is node 1's.
    pub async fn cluster(nodes: usize, script: Script) -> FakeBroker {
        let state = Arc::new(FakeState {
            script: Mutex::new(script),
            fetches: Mutex::new(Vec::new()),
            metadata_requests: AtomicUsize::new(0),
            leader_epoch: AtomicI32::new(5),
            partitions: AtomicI32::new(2),
            list_offsets: Mutex::new(HashMap::new()),
            ports: Mutex::new(Vec::new()),
            delays: Mutex::new(HashMap::new()),
            in_flight: Mutex::new(HashMap::new()),
            heartbeat: Mutex::new(None),
            heartbeats: Mutex::new(Vec::new()),
            all_topics: Mutex::new(Vec::new()),
        });
        let mut addr = String::new();
        for i in 0..nodes {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let a = listener.local_addr().unwrap();
            if i == 0 {
                addr = a.to_string();
            }
            state.ports.lock().unwrap().push(i32::from(a.port()));
            let st = state.clone();
            let node = i as i32 + 1;
            tokio::spawn(async move {
                while let Ok((sock, _)) = listener.accept().await {
                    tokio::spawn(serve(sock, st.clone(), node));
                }
            });
        }
        FakeBroker { addr, state }
    }

    pub fn fetches(&self) -> Vec<FetchSeen> {
        self.state.fetches.lock().unwrap().clone()
    }
}

fn api_versions() -> ApiVersionsResponse {
    let keys = [
        (ApiKey::ApiVersions, 0, 3),
        (ApiKey::Metadata, 0, 12),
        (ApiKey::Fetch, 4, 12),
        (ApiKey::ListOffsets, 1, 7),
        (ApiKey::FindCoordinator, 0, 3),
        (ApiKey::OffsetFetch, 1, 7),
        (ApiKey::ConsumerGroupHeartbeat, 0, 1),
    ];
    ApiVersionsResponse::default().with_api_keys(
        keys.iter()
            .map(|&(k, min, max)| {
                ApiVersion::default()
                    .with_api_key(k as i16)
                    .with_min_version(min)
                    .with_max_version(max)
            })
            .collect(),
    )
}

async fn serve(mut sock: TcpStream, st: Arc<FakeState>, node: i32) {
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
        let corr = header.correlation_id;
        let (api, resp) = match req {
            RequestKind::ApiVersions(_) => (
                ApiKey::ApiVersions,
                ResponseKind::ApiVersions(api_versions()),
            ),
            RequestKind::Metadata(m) => {
                st.metadata_requests.fetch_add(1, Ordering::SeqCst);
                let epoch = st.leader_epoch.load(Ordering::SeqCst);
                let n = st.partitions.load(Ordering::SeqCst);
                let nodes = st.ports.lock().unwrap().len() as i32;
                let asked: Vec<TopicName> = match m.topics {
                    Some(t) => t.into_iter().filter_map(|t| t.name).collect(),
                    None => st
                        .all_topics
                        .lock()
                        .unwrap()
                        .iter()
                        .map(|n| TopicName(n.clone().into()))
                        .collect(),
                };
                let topics = asked
                    .into_iter()
                    .map(|name| {
                        MetadataResponseTopic::default()
                            .with_topic_id(topic_id(name.0.as_str()))
                            .with_name(Some(name))
                            .with_partitions(
                                (0..n)
                                    .map(|p| {
                                        let leader = p % nodes + 1;
                                        MetadataResponsePartition::default()
                                            .with_partition_index(p)
                                            .with_leader_id(BrokerId(leader))
                                            .with_leader_epoch(epoch)
                                            .with_replica_nodes(vec![BrokerId(1)])
                                            .with_isr_nodes(vec![BrokerId(1)])
                                    })
                                    .collect(),
                            )
                    })
                    .collect();
                let ports = st.ports.lock().unwrap().clone();
                (
                    ApiKey::Metadata,
                    ResponseKind::Metadata(
                        MetadataResponse::default()
                            .with_brokers(
                                ports
                                    .iter()
                                    .enumerate()
                                    .map(|(i, port)| {
                                        MetadataResponseBroker::default()
                                            .with_node_id(BrokerId(i as i32 + 1))
                                            .with_host("127.0.0.1".into())
                                            .with_port(*port)
                                    })
                                    .collect(),
                            )
                            .with_controller_id(BrokerId(1))
                            .with_topics(topics),
                    ),
                )
            }
            RequestKind::ListOffsets(r) => {
                let table = st.list_offsets.lock().unwrap().clone();
                let topics = r
                    .topics
                    .iter()
                    .map(|t| {
                        ListOffsetsTopicResponse::default()
                            .with_name(t.name.clone())
                            .with_partitions(
                                t.partitions
                                    .iter()
                                    .map(|p| {
                                        let key =
                                            (t.name.0.to_string(), p.partition_index, p.timestamp);
                                        ListOffsetsPartitionResponse::default()
                                            .with_partition_index(p.partition_index)
                                            .with_offset(table.get(&key).copied().unwrap_or(0))
                                            .with_leader_epoch(5)
                                    })
                                    .collect(),
                            )
                    })
                    .collect();
                (
                    ApiKey::ListOffsets,
                    ResponseKind::ListOffsets(ListOffsetsResponse::default().with_topics(topics)),
                )
            }
            RequestKind::Fetch(f) => {
                let seen = {
                    let mut all = st.fetches.lock().unwrap();
                    let seen = FetchSeen {
                        n: all.len(),
                        node,
                        partitions: f
                            .topics
                            .iter()
                            .flat_map(|t| {
                                t.partitions.iter().map(move |p| {
                                    (
                                        t.topic.0.to_string(),
                                        p.partition,
                                        p.fetch_offset,
                                        p.current_leader_epoch,
                                    )
                                })
                            })
                            .collect(),
                        isolation_level: f.isolation_level,
                        max_wait_ms: f.max_wait_ms,
                        min_bytes: f.min_bytes,
                        max_bytes: f.max_bytes,
                        partition_max_bytes: f
                            .topics
                            .iter()
                            .flat_map(|t| t.partitions.iter().map(|p| p.partition_max_bytes))
                            .collect(),
                        session_id: f.session_id,
                        session_epoch: f.session_epoch,
                        forgotten: f
                            .forgotten_topics_data
                            .iter()
                            .flat_map(|t| t.partitions.iter().map(|p| (t.topic.0.to_string(), *p)))
                            .collect(),
                        rack_id: f.rack_id.to_string(),
                    };
                    all.push(seen.clone());
                    seen
                };
                {
                    let mut f = st.in_flight.lock().unwrap();
                    let e = f.entry(node).or_insert((0, 0));
                    e.0 += 1;
                    e.1 = e.1.max(e.0);
                }
                let resp = (st.script.lock().unwrap())(&seen, &st);
                let delay = st.delays.lock().unwrap().get(&node).copied();
                if let Some(d) = delay {
                    tokio::time::sleep(d).await;
                }
                let empty = resp
                    .responses
                    .iter()
                    .flat_map(|t| t.partitions.iter())
                    .all(|p| p.records.as_ref().is_none_or(|r| r.is_empty()));
                if empty {
                    // As a broker's long poll with nothing new.
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
                (ApiKey::Fetch, ResponseKind::Fetch(resp))
            }
            RequestKind::FindCoordinator(_) => {
                let port = st.ports.lock().unwrap()[0];
                (
                    ApiKey::FindCoordinator,
                    ResponseKind::FindCoordinator(
                        FindCoordinatorResponse::default()
                            .with_node_id(BrokerId(1))
                            .with_host("127.0.0.1".into())
                            .with_port(port),
                    ),
                )
            }
            RequestKind::OffsetFetch(r) => {
                use exactly_codec::messages::offset_fetch_response::{
                    OffsetFetchResponsePartition, OffsetFetchResponseTopic,
                };
                let topics = r
                    .topics
                    .unwrap_or_default()
                    .iter()
                    .map(|t| {
                        OffsetFetchResponseTopic::default()
                            .with_name(t.name.clone())
                            .with_partitions(
                                t.partition_indexes
                                    .iter()
                                    .map(|p| {
                                        OffsetFetchResponsePartition::default()
                                            .with_partition_index(*p)
                                            .with_committed_offset(-1)
                                    })
                                    .collect(),
                            )
                    })
                    .collect();
                (
                    ApiKey::OffsetFetch,
                    ResponseKind::OffsetFetch(OffsetFetchResponse::default().with_topics(topics)),
                )
            }
            RequestKind::ConsumerGroupHeartbeat(r) => {
                st.heartbeats.lock().unwrap().push(r.clone());
                let resp = match st.heartbeat.lock().unwrap().as_mut() {
                    Some(script) => script(&r),
                    None => return,
                };
                (
                    ApiKey::ConsumerGroupHeartbeat,
                    ResponseKind::ConsumerGroupHeartbeat(resp),
                )
            }
            _ => return,
        };
        let mut out = BytesMut::new();
        if encode_response(&mut out, api, corr, version, &resp).is_err() {
            return;
        }
        if api == ApiKey::Fetch {
            if let Some(e) = st.in_flight.lock().unwrap().get_mut(&node) {
                e.0 -= 1;
            }
        }
        if sock.write_all(&out).await.is_err() {
            return;
        }
    }
}

/// An empty fetch answer (the script's "nothing new").
pub fn idle() -> FetchResponse {
    FetchResponse::default()
}

/// One topic's partition answers.
pub fn topic(name: &str, partitions: Vec<PartitionData>) -> FetchableTopicResponse {
    FetchableTopicResponse::default()
        .with_topic(TopicName(name.to_owned().into()))
        .with_partitions(partitions)
}

/// One partition's answer.
pub fn part(p: i32, error: i16, records: Option<Bytes>, end: i64) -> PartitionData {
    PartitionData::default()
        .with_partition_index(p)
        .with_error_code(error)
        .with_high_watermark(end)
        .with_last_stable_offset(end)
        .with_records(records)
}

/// With an aborted-transactions list, in the order given.
pub fn with_aborted(mut p: PartitionData, list: &[(i64, i64)]) -> PartitionData {
    p.aborted_transactions = Some(
        list.iter()
            .map(|&(pid, first)| {
                AbortedTransaction::default()
                    .with_producer_id(ProducerId(pid))
                    .with_first_offset(first)
            })
            .collect(),
    );
    p
}

/// A log being written by the test: batches with real offsets.
#[derive(Default, Clone)]
pub struct Log {
    pub buf: Vec<u8>,
    pub next: i64,
}

impl Log {
    pub fn at(offset: i64) -> Log {
        Log {
            buf: Vec::new(),
            next: offset,
        }
    }

    fn push(&mut self, bytes: Bytes, count: i64) -> std::ops::Range<usize> {
        let mut m = BytesMut::from(&bytes[..]);
        set_base_offset(&mut m, self.next).unwrap();
        let start = self.buf.len();
        self.buf.extend_from_slice(&m);
        self.next += count;
        start..self.buf.len()
    }

    /// A batch of values (`pid` -1 for a plain producer).
    pub fn data(&mut self, pid: i64, values: &[&str]) -> std::ops::Range<usize> {
        let mut b = BatchBuilder::new(Compression::None);
        for v in values {
            b.append(1, None, Some(v.as_bytes()), &[]).unwrap();
        }
        let mut c = b.close().unwrap();
        let bytes = c.stamp(ProducerStamp {
            producer_id: pid,
            producer_epoch: if pid < 0 { -1 } else { 0 },
            base_sequence: if pid < 0 { -1 } else { 0 },
            transactional: pid >= 0,
        });
        self.push(bytes, values.len() as i64)
    }

    pub fn marker(&mut self, pid: i64, commit: bool) {
        let b = encode_control_batch(0, 1, pid, 0, commit, 0).unwrap();
        self.push(b, 1);
    }

    pub fn bytes(&self) -> Bytes {
        Bytes::from(self.buf.clone())
    }
}

/// Values of records as strings.
pub fn values(rs: &exactly_consumer::Records) -> Vec<String> {
    rs.iter()
        .map(|r| String::from_utf8(r.value().unwrap().to_vec()).unwrap())
        .collect()
}
