//! A minimal blocking Kafka client for the harness itself, built on
//! `exactly-codec` over `std::net` (no runtime): ApiVersions handshake,
//! Metadata and CreateTopics. The harness uses it to know a broker is really
//! serving (a round trip, never a fixed sleep) and to create test topics.
//! It is deliberately simple — one request at a time — and is not the
//! library's connection layer (`exactly-net`).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use bytes::BytesMut;
use exactly_codec::messages::metadata_request::MetadataRequestTopic;
use exactly_codec::messages::{
    create_topics_request::CreatableTopic, ApiKey, ApiVersionsRequest, CreateTopicsRequest,
    MetadataRequest, MetadataResponse,
};
use exactly_codec::protocol::{Request, StrBytes};
use exactly_codec::{decode_response, encode_request, ErrorCode, FrameDecoder, VersionTable};

use crate::error::{HarnessError, Result};

/// One blocking connection to one broker.
pub struct ProbeClient {
    addr: String,
    stream: TcpStream,
    decoder: FrameDecoder,
    rbuf: BytesMut,
    wbuf: BytesMut,
    next_correlation_id: i32,
    versions: VersionTable,
}

impl std::fmt::Debug for ProbeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProbeClient")
            .field("addr", &self.addr)
            .finish()
    }
}

impl ProbeClient {
    /// Connects and performs the ApiVersions handshake (v3, falling back to
    /// v0 if the broker answers UNSUPPORTED_VERSION, as KIP-511 asks).
    pub fn connect(addr: &str, timeout: Duration) -> Result<Self> {
        let err = |why: String| HarnessError::Protocol {
            addr: addr.to_owned(),
            why,
        };
        let sock: SocketAddr = addr
            .to_socket_addrs()
            .map_err(|e| err(e.to_string()))?
            .next()
            .ok_or_else(|| err("address resolves to nothing".into()))?;
        let stream = TcpStream::connect_timeout(&sock, timeout).map_err(|e| err(e.to_string()))?;
        stream
            .set_read_timeout(Some(timeout))
            .and_then(|()| stream.set_write_timeout(Some(timeout)))
            .and_then(|()| stream.set_nodelay(true))
            .map_err(|e| err(e.to_string()))?;
        let mut client = Self {
            addr: addr.to_owned(),
            stream,
            decoder: FrameDecoder::default(),
            rbuf: BytesMut::with_capacity(64 * 1024),
            wbuf: BytesMut::with_capacity(4096),
            next_correlation_id: 0,
            versions: VersionTable::default(),
        };
        let req = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("exactly-harness"))
            .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
        let mut resp = client.call_at(&req, 3)?;
        if ErrorCode::from_code(resp.error_code) == Some(ErrorCode::UnsupportedVersion) {
            resp = client.call_at(&ApiVersionsRequest::default(), 0)?;
        }
        client.versions =
            VersionTable::from_response(&resp).map_err(|e| err(format!("ApiVersions: {e}")))?;
        Ok(client)
    }

    /// The broker's version table.
    pub fn versions(&self) -> &VersionTable {
        &self.versions
    }

    /// Sends `req` at the highest version both sides support.
    pub fn call<R: Request>(&mut self, req: &R) -> Result<R::Response> {
        let api = ApiKey::try_from(R::KEY).map_err(|()| self.err(format!("api key {}", R::KEY)))?;
        let version = self
            .versions
            .pick(api, R::VERSIONS)
            .map_err(|e| self.err(e.to_string()))?;
        self.call_at(req, version)
    }

    /// Sends `req` at `version` and waits for its response.
    pub fn call_at<R: Request>(&mut self, req: &R, version: i16) -> Result<R::Response> {
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id = self.next_correlation_id.wrapping_add(1);
        self.wbuf.clear();
        encode_request(
            &mut self.wbuf,
            correlation_id,
            Some("exactly-harness"),
            version,
            req,
        )
        .map_err(|e| self.err(e.to_string()))?;
        self.stream
            .write_all(&self.wbuf)
            .map_err(|e| self.err(format!("write: {e}")))?;
        let frame = loop {
            if let Some(frame) = self
                .decoder
                .decode(&mut self.rbuf)
                .map_err(|e| self.err(e.to_string()))?
            {
                break frame;
            }
            let mut chunk = [0u8; 16 * 1024];
            let n = self
                .stream
                .read(&mut chunk)
                .map_err(|e| self.err(format!("read: {e}")))?;
            if n == 0 {
                return Err(self.err("connection closed by broker".into()));
            }
            self.rbuf.extend_from_slice(&chunk[..n]);
        };
        let (got, resp) =
            decode_response::<R>(frame, version).map_err(|e| self.err(e.to_string()))?;
        if got != correlation_id {
            return Err(self.err(format!(
                "correlation id mismatch: sent {correlation_id}, got {got}"
            )));
        }
        Ok(resp)
    }

    /// Metadata for all topics (`None`) or the named ones.
    pub fn metadata(&mut self, topics: Option<&[&str]>) -> Result<MetadataResponse> {
        // Never auto-create: asking about a missing topic must not make it.
        let req = MetadataRequest::default()
            .with_allow_auto_topic_creation(false)
            .with_topics(topics.map(|ts| {
                ts.iter()
                    .map(|t| {
                        MetadataRequestTopic::default()
                            .with_name(Some(StrBytes::from_string((*t).to_owned()).into()))
                    })
                    .collect()
            }));
        self.call(&req)
    }

    /// Creates a topic and waits until every partition has a leader.
    pub fn create_topic(
        &mut self,
        name: &str,
        partitions: i32,
        replication_factor: i16,
        configs: &[(&str, &str)],
    ) -> Result<()> {
        use exactly_codec::messages::create_topics_request::CreatableTopicConfig;
        let topic = CreatableTopic::default()
            .with_name(StrBytes::from_string(name.to_owned()).into())
            .with_num_partitions(partitions)
            .with_replication_factor(replication_factor)
            .with_configs(
                configs
                    .iter()
                    .map(|(k, v)| {
                        CreatableTopicConfig::default()
                            .with_name(StrBytes::from_string((*k).to_owned()))
                            .with_value(Some(StrBytes::from_string((*v).to_owned())))
                    })
                    .collect(),
            );
        self.create_and_wait(topic, name, partitions)
    }

    /// Creates a topic whose partition `i` lives on the nodes
    /// `replicas[i]`, the first being its preferred leader, and waits until
    /// every partition has a leader.
    pub fn create_topic_assigned(&mut self, name: &str, replicas: &[Vec<i32>]) -> Result<()> {
        use exactly_codec::messages::create_topics_request::CreatableReplicaAssignment;
        use exactly_codec::messages::BrokerId;
        let assignments = replicas
            .iter()
            .enumerate()
            .map(|(i, nodes)| {
                CreatableReplicaAssignment::default()
                    .with_partition_index(i as i32)
                    .with_broker_ids(nodes.iter().map(|&n| BrokerId(n)).collect())
            })
            .collect();
        let topic = CreatableTopic::default()
            .with_name(StrBytes::from_string(name.to_owned()).into())
            .with_num_partitions(-1)
            .with_replication_factor(-1)
            .with_assignments(assignments);
        self.create_and_wait(topic, name, replicas.len() as i32)
    }

    fn create_and_wait(
        &mut self,
        topic: CreatableTopic,
        name: &str,
        partitions: i32,
    ) -> Result<()> {
        let req = CreateTopicsRequest::default()
            .with_topics(vec![topic])
            .with_timeout_ms(30_000);
        let resp = self.call(&req)?;
        for t in &resp.topics {
            if let Some(e) = ErrorCode::from_code(t.error_code) {
                let msg = t.error_message.as_deref().unwrap_or("");
                return Err(self.err(format!("CreateTopics {name}: {e} {msg}")));
            }
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let md = self.metadata(Some(&[name]))?;
            let ready = md.topics.iter().any(|t| {
                t.error_code == 0
                    && t.partitions.len() == partitions as usize
                    && t.partitions
                        .iter()
                        .all(|p| p.error_code == 0 && p.leader_id.0 >= 0)
            });
            if ready {
                return Ok(());
            }
            if std::time::Instant::now() > deadline {
                return Err(self.err(format!("topic {name} has no leaders after 30 s")));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Raises `name` to `total` partitions (CreatePartitions, KIP-195) and
    /// waits until every partition has a leader.
    pub fn create_partitions(&mut self, name: &str, total: i32) -> Result<()> {
        use exactly_codec::messages::create_partitions_request::CreatePartitionsTopic;
        use exactly_codec::messages::CreatePartitionsRequest;
        let req = CreatePartitionsRequest::default()
            .with_topics(vec![CreatePartitionsTopic::default()
                .with_name(StrBytes::from_string(name.to_owned()).into())
                .with_count(total)
                .with_assignments(None)])
            .with_timeout_ms(30_000);
        let resp = self.call(&req)?;
        for r in &resp.results {
            if let Some(e) = ErrorCode::from_code(r.error_code) {
                let msg = r.error_message.as_deref().unwrap_or("");
                return Err(self.err(format!("CreatePartitions {name}: {e} {msg}")));
            }
        }
        self.wait_for_leaders(name, total)
    }

    /// Deletes topic `name` (DeleteTopics) and waits until Metadata no
    /// longer knows it.
    pub fn delete_topic(&mut self, name: &str) -> Result<()> {
        use exactly_codec::messages::delete_topics_request::DeleteTopicState;
        use exactly_codec::messages::DeleteTopicsRequest;
        // Names go in `topic_names` up to v5 and in `topics` from v6: both
        // are set, the version picked uses its own.
        let req = DeleteTopicsRequest::default()
            .with_topic_names(vec![StrBytes::from_string(name.to_owned()).into()])
            .with_topics(vec![DeleteTopicState::default()
                .with_name(Some(StrBytes::from_string(name.to_owned()).into()))])
            .with_timeout_ms(30_000);
        let resp = self.call(&req)?;
        for r in &resp.responses {
            if let Some(e) = ErrorCode::from_code(r.error_code) {
                let msg = r.error_message.as_deref().unwrap_or("");
                return Err(self.err(format!("DeleteTopics {name}: {e} {msg}")));
            }
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let md = self.metadata(Some(&[name]))?;
            if md.topics.iter().all(|t| t.error_code != 0) {
                return Ok(());
            }
            if std::time::Instant::now() > deadline {
                return Err(self.err(format!("topic {name} still known 30 s after deletion")));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn wait_for_leaders(&mut self, name: &str, partitions: i32) -> Result<()> {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let md = self.metadata(Some(&[name]))?;
            let ready = md.topics.iter().any(|t| {
                t.error_code == 0
                    && t.partitions.len() == partitions as usize
                    && t.partitions
                        .iter()
                        .all(|p| p.error_code == 0 && p.leader_id.0 >= 0)
            });
            if ready {
                return Ok(());
            }
            if std::time::Instant::now() > deadline {
                return Err(self.err(format!("topic {name} has no leaders after 30 s")));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn err(&self, why: String) -> HarnessError {
        HarnessError::Protocol {
            addr: self.addr.clone(),
            why,
        }
    }
}
