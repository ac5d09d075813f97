//! An in-process fake broker speaking the Kafka frame protocol, for
//! deterministic pipelining, cancellation, timeout and disconnect tests.
//! It answers ApiVersions and Metadata (echoing the requested topic names, so
//! a caller can tell its own response from anyone else's) and can misbehave
//! on demand.

#![allow(dead_code, unreachable_pub)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use exactly_codec::messages::api_versions_response::ApiVersion;
use exactly_codec::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use exactly_codec::messages::*;
use exactly_codec::protocol::{Decodable, Encodable};
use exactly_codec::FrameDecoder;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

/// How the fake broker behaves.
#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    /// Answer every request in order.
    Normal,
    /// Answer requests two at a time, in swapped order.
    SwapPairs,
    /// Read requests, never answer (except ApiVersions).
    Silent,
    /// Close the connection on receiving the n-th request after ApiVersions.
    CloseAfter(usize),
    /// Put this throttle time in Metadata responses.
    Throttle(i32),
    /// Hold Metadata responses until this many Metadata requests arrived on
    /// the connection, then answer all of them in order.
    Hold(usize),
    /// Answer Metadata with a well-framed but truncated body.
    Truncated,
    /// Support ApiVersions only up to this version (answer higher ones with
    /// UNSUPPORTED_VERSION and a v0 body, as KIP-511 says).
    ApiVersionsMax(i16),
}

#[derive(Debug)]
pub struct FakeState {
    pub mode: Mutex<Mode>,
    pub connections: AtomicUsize,
    pub requests: AtomicUsize,
    /// Produce requests received (never answered: the tests send acks=0).
    pub produces: AtomicUsize,
    /// (api key, version, arrival) of every request, all connections.
    pub arrivals: Mutex<Vec<(i16, i16, Instant)>>,
}

pub struct FakeBroker {
    pub addr: String,
    pub state: Arc<FakeState>,
}

impl FakeBroker {
    pub async fn start(mode: Mode) -> FakeBroker {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let state = Arc::new(FakeState {
            mode: Mutex::new(mode),
            connections: AtomicUsize::new(0),
            requests: AtomicUsize::new(0),
            produces: AtomicUsize::new(0),
            arrivals: Mutex::new(Vec::new()),
        });
        let st = state.clone();
        let port: i32 = listener.local_addr().unwrap().port().into();
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                st.connections.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(serve(sock, port, st.clone()));
            }
        });
        FakeBroker { addr, state }
    }

    /// A dialer that serves each connection over an in-memory duplex stream
    /// (no socket), recording the addresses dialed.
    pub fn dialer(&self, dialed: Arc<Mutex<Vec<String>>>) -> exactly_net::Dialer {
        let st = self.state.clone();
        let port: i32 = self.addr.rsplit(':').next().unwrap().parse().unwrap();
        exactly_net::Dialer::new(move |addr: &str| {
            dialed.lock().unwrap().push(addr.to_owned());
            let st = st.clone();
            Box::pin(async move {
                let (client, server) = tokio::io::duplex(64 * 1024);
                st.connections.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(serve(server, port, st));
                Ok(Box::new(client) as Box<dyn exactly_net::conn::Stream>)
            })
        })
    }

    pub fn set_mode(&self, m: Mode) {
        *self.state.mode.lock().unwrap() = m;
    }
}

fn respond<M: Encodable>(
    api: ApiKey,
    version: i16,
    corr: i32,
    body: &M,
    body_version: i16,
) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i32(0);
    ResponseHeader::default()
        .with_correlation_id(corr)
        .encode(&mut b, api.response_header_version(version))
        .unwrap();
    body.encode(&mut b, body_version).unwrap();
    let len = (b.len() - 4) as i32;
    b[..4].copy_from_slice(&len.to_be_bytes());
    b.freeze()
}

fn api_versions(max_av: i16) -> ApiVersionsResponse {
    let keys = [
        (ApiKey::ApiVersions, 0, max_av),
        (ApiKey::Metadata, 0, 12),
        (ApiKey::SaslHandshake, 0, 1),
        (ApiKey::SaslAuthenticate, 0, 2),
        (ApiKey::FindCoordinator, 0, 6),
        (ApiKey::CreateTopics, 0, 7),
        (ApiKey::Produce, 3, 11),
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

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(mut sock: S, port: i32, st: Arc<FakeState>) {
    let dec = FrameDecoder::default();
    let mut buf = BytesMut::new();
    let mut held: Option<Bytes> = None;
    let mut holding: Vec<Bytes> = Vec::new();
    let mut count = 0usize;
    loop {
        let mut frame = loop {
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
        let api = ApiKey::try_from(i16::from_be_bytes([frame[0], frame[1]])).unwrap();
        let version = i16::from_be_bytes([frame[2], frame[3]]);
        let header =
            RequestHeader::decode(&mut frame, api.request_header_version(version)).unwrap();
        let corr = header.correlation_id;
        st.arrivals
            .lock()
            .unwrap()
            .push((api as i16, version, Instant::now()));
        let mode = st.mode.lock().unwrap().clone();
        let out = match api {
            ApiKey::ApiVersions => {
                let max = match mode {
                    Mode::ApiVersionsMax(m) => m,
                    _ => 4,
                };
                if version > max {
                    let mut r = api_versions(max);
                    r.error_code = 35;
                    respond(api, version, corr, &r, 0)
                } else {
                    respond(api, version, corr, &api_versions(max), version)
                }
            }
            ApiKey::Metadata => {
                st.requests.fetch_add(1, Ordering::SeqCst);
                count += 1;
                let req = MetadataRequest::decode(&mut frame, version).unwrap();
                assert!(!frame.has_remaining());
                if let Mode::CloseAfter(n) = mode {
                    if count >= n {
                        return;
                    }
                }
                let topics = req
                    .topics
                    .unwrap_or_default()
                    .into_iter()
                    .map(|t| {
                        let name = t.name.unwrap();
                        let n = name.0.len() as i32;
                        MetadataResponseTopic::default()
                            .with_name(Some(name))
                            .with_partitions(
                                (0..n)
                                    .map(|p| {
                                        MetadataResponsePartition::default()
                                            .with_partition_index(p)
                                            .with_leader_id(BrokerId(1))
                                            .with_leader_epoch(7)
                                    })
                                    .collect(),
                            )
                    })
                    .collect();
                let mut r = MetadataResponse::default()
                    .with_brokers(vec![MetadataResponseBroker::default()
                        .with_node_id(BrokerId(1))
                        .with_host("127.0.0.1".into())
                        .with_port(port)])
                    .with_controller_id(BrokerId(1))
                    .with_topics(topics);
                if let Mode::Throttle(ms) = mode {
                    r.throttle_time_ms = ms;
                }
                let out = respond(api, version, corr, &r, version);
                if mode == Mode::Truncated {
                    // Keep the header, cut the body short, fix the size.
                    let mut b = BytesMut::from(&out[..out.len().min(12)]);
                    let len = (b.len() - 4) as i32;
                    b[..4].copy_from_slice(&len.to_be_bytes());
                    b.freeze()
                } else {
                    out
                }
            }
            ApiKey::Produce => {
                let req = ProduceRequest::decode(&mut frame, version).unwrap();
                assert_eq!(req.acks, 0);
                st.produces.fetch_add(1, Ordering::SeqCst);
                continue;
            }
            _ => return,
        };
        if api != ApiKey::ApiVersions {
            match mode {
                Mode::Silent => continue,
                Mode::SwapPairs => match held.take() {
                    None => {
                        held = Some(out);
                        continue;
                    }
                    Some(first) => {
                        if sock.write_all(&out).await.is_err()
                            || sock.write_all(&first).await.is_err()
                        {
                            return;
                        }
                        continue;
                    }
                },
                Mode::Hold(n) => {
                    holding.push(out);
                    if count >= n {
                        for b in holding.drain(..) {
                            if sock.write_all(&b).await.is_err() {
                                return;
                            }
                        }
                    }
                    continue;
                }
                _ => {}
            }
        }
        if sock.write_all(&out).await.is_err() {
            return;
        }
    }
}
