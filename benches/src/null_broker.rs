//! A null broker for client CPU measurements (PERFORMANCE.md): it answers
//! ApiVersions, Metadata, InitProducerId, FindCoordinator and Produce at
//! once, with no storage and no checks beyond counting the records it was
//! given, so that the client's own CPU is what a run measures.
//!
//! It runs on its own thread with its own single-threaded runtime, and
//! reports that thread's CPU time, so an in-process measurement can subtract
//! it from the process's.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use exactly_codec::messages::api_versions_response::ApiVersion;
use exactly_codec::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use exactly_codec::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use exactly_codec::messages::{
    ApiKey, ApiVersionsResponse, BrokerId, FindCoordinatorResponse, InitProducerIdResponse,
    MetadataResponse, ProduceResponse, ProducerId, RequestKind, ResponseKind,
};
use exactly_codec::{decode_request, encode_response, FrameDecoder, CLIENT_APIS};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Offset of the record count in a v2 batch header.
const RECORD_COUNT_AT: usize = 57;

#[derive(Debug, Default)]
struct Shared {
    /// Records received per (topic, partition): the partitions' end offsets.
    end_offsets: Mutex<HashMap<(String, i32), i64>>,
    records: AtomicU64,
    produce_requests: AtomicU64,
    stop: AtomicBool,
    /// CPU time of the broker thread so far, in nanoseconds.
    cpu_ns: AtomicU64,
}

/// A running null broker.
#[derive(Debug)]
pub struct NullBroker {
    addr: String,
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// CPU time (user + system) of the calling thread.
pub fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into the pointer given.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Pins the calling thread to `cpu` (best effort; false if refused).
pub fn pin_to_cpu(cpu: usize) -> bool {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET and
    // sched_setaffinity only read/write the set given.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0
    }
}

impl NullBroker {
    /// Starts the broker on 127.0.0.1 (a free port) on its own thread, pinned
    /// to `cpu` when given. Every topic has `partitions` partitions.
    pub fn start(partitions: i32, cpu: Option<usize>) -> std::io::Result<NullBroker> {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        std_listener.set_nonblocking(true)?;
        let addr = std_listener.local_addr()?.to_string();
        let shared = Arc::new(Shared::default());
        let sh = shared.clone();
        let port = std_listener.local_addr()?.port();
        let thread = std::thread::Builder::new()
            .name("null-broker".into())
            .spawn(move || {
                if let Some(c) = cpu {
                    pin_to_cpu(c);
                }
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(_) => return,
                };
                rt.block_on(async move {
                    let Ok(listener) = TcpListener::from_std(std_listener) else {
                        return;
                    };
                    let ticker = {
                        let sh = sh.clone();
                        async move {
                            while !sh.stop.load(Ordering::Relaxed) {
                                sh.cpu_ns
                                    .store(thread_cpu().as_nanos() as u64, Ordering::Relaxed);
                                tokio::time::sleep(Duration::from_millis(5)).await;
                            }
                        }
                    };
                    let accept = async {
                        while let Ok((sock, _)) = listener.accept().await {
                            let _ = sock.set_nodelay(true);
                            tokio::spawn(serve(sock, sh.clone(), partitions, port));
                        }
                    };
                    tokio::select! {
                        () = ticker => {}
                        () = accept => {}
                    }
                    sh.cpu_ns
                        .store(thread_cpu().as_nanos() as u64, Ordering::Relaxed);
                });
            })?;
        Ok(NullBroker {
            addr,
            shared,
            thread: Some(thread),
        })
    }

    /// `host:port` for `bootstrap.servers`.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Records received so far (sum of the batches' record counts).
    pub fn records(&self) -> u64 {
        self.shared.records.load(Ordering::Relaxed)
    }

    /// Produce requests received so far.
    pub fn produce_requests(&self) -> u64 {
        self.shared.produce_requests.load(Ordering::Relaxed)
    }

    /// The sum of the partitions' end offsets.
    pub fn end_offsets_total(&self) -> i64 {
        self.shared
            .end_offsets
            .lock()
            .map(|m| m.values().sum())
            .unwrap_or(-1)
    }

    /// The broker thread's CPU time so far (sampled every 5 ms).
    pub fn cpu(&self) -> Duration {
        Duration::from_nanos(self.shared.cpu_ns.load(Ordering::Relaxed))
    }

    /// Stops the broker and returns its thread's total CPU time.
    pub fn stop(mut self) -> Duration {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.cpu()
    }
}

async fn serve(mut sock: TcpStream, shared: Arc<Shared>, partitions: i32, port: u16) {
    let decoder = FrameDecoder::default();
    let mut rbuf = BytesMut::with_capacity(4 << 20);
    let mut wbuf = BytesMut::with_capacity(64 << 10);
    loop {
        match sock.read_buf(&mut rbuf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        loop {
            let frame = match decoder.decode(&mut rbuf) {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(_) => return,
            };
            if answer(frame, &shared, partitions, port, &mut wbuf).is_err() {
                return;
            }
        }
        if !wbuf.is_empty() {
            if sock.write_all(&wbuf).await.is_err() {
                return;
            }
            wbuf.clear();
        }
    }
}

fn answer(
    frame: Bytes,
    shared: &Shared,
    partitions: i32,
    port: u16,
    out: &mut BytesMut,
) -> Result<(), exactly_codec::CodecError> {
    let (header, body) = decode_request(frame)?;
    let version = header.request_api_version;
    let corr = header.correlation_id;
    let (api, resp) = match body {
        RequestKind::ApiVersions(_) => (
            ApiKey::ApiVersions,
            ResponseKind::ApiVersions(
                ApiVersionsResponse::default().with_api_keys(
                    CLIENT_APIS
                        .iter()
                        .map(|(k, r)| {
                            ApiVersion::default()
                                .with_api_key(*k as i16)
                                .with_min_version(r.min)
                                .with_max_version(r.max)
                        })
                        .collect(),
                ),
            ),
        ),
        RequestKind::Metadata(req) => {
            let topics = req
                .topics
                .unwrap_or_default()
                .into_iter()
                .filter_map(|t| t.name)
                .map(|name| {
                    MetadataResponseTopic::default()
                        .with_name(Some(name))
                        .with_partitions(
                            (0..partitions)
                                .map(|p| {
                                    MetadataResponsePartition::default()
                                        .with_partition_index(p)
                                        .with_leader_id(BrokerId(1))
                                        .with_replica_nodes(vec![BrokerId(1)])
                                        .with_isr_nodes(vec![BrokerId(1)])
                                })
                                .collect(),
                        )
                })
                .collect();
            (
                ApiKey::Metadata,
                ResponseKind::Metadata(
                    MetadataResponse::default()
                        .with_brokers(vec![MetadataResponseBroker::default()
                            .with_node_id(BrokerId(1))
                            .with_host("127.0.0.1".into())
                            .with_port(i32::from(port))])
                        .with_cluster_id(Some("null-broker".into()))
                        .with_controller_id(BrokerId(1))
                        .with_topics(topics),
                ),
            )
        }
        RequestKind::InitProducerId(_) => (
            ApiKey::InitProducerId,
            ResponseKind::InitProducerId(
                InitProducerIdResponse::default()
                    .with_producer_id(ProducerId(4242))
                    .with_producer_epoch(0),
            ),
        ),
        RequestKind::FindCoordinator(_) => (
            ApiKey::FindCoordinator,
            ResponseKind::FindCoordinator(
                FindCoordinatorResponse::default()
                    .with_node_id(BrokerId(1))
                    .with_host("127.0.0.1".into())
                    .with_port(i32::from(port)),
            ),
        ),
        RequestKind::Produce(req) => {
            shared.produce_requests.fetch_add(1, Ordering::Relaxed);
            let mut ends = shared
                .end_offsets
                .lock()
                .map_err(|_| exactly_codec::CodecError::Header("poisoned".into()))?;
            let mut responses = Vec::with_capacity(req.topic_data.len());
            for t in req.topic_data {
                let mut parts = Vec::with_capacity(t.partition_data.len());
                for p in t.partition_data {
                    let count = p
                        .records
                        .as_ref()
                        .and_then(|r| r.get(RECORD_COUNT_AT..RECORD_COUNT_AT + 4))
                        .map_or(0, |b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]));
                    shared
                        .records
                        .fetch_add(u64::try_from(count).unwrap_or(0), Ordering::Relaxed);
                    let end = ends.entry((t.name.0.to_string(), p.index)).or_insert(0);
                    let base = *end;
                    *end += i64::from(count);
                    parts.push(
                        PartitionProduceResponse::default()
                            .with_index(p.index)
                            .with_base_offset(base)
                            .with_log_append_time_ms(-1)
                            .with_log_start_offset(0),
                    );
                }
                responses.push(
                    TopicProduceResponse::default()
                        .with_name(t.name)
                        .with_partition_responses(parts),
                );
            }
            (
                ApiKey::Produce,
                ResponseKind::Produce(ProduceResponse::default().with_responses(responses)),
            )
        }
        _ => return Ok(()),
    };
    encode_response(out, api, corr, version, &resp)?;
    Ok(())
}
