//! Model-based test of the pipeline: random request sizes, random points at
//! which callers give up, a broker that answers in random-sized chunks. The
//! model: every caller that waits gets exactly its own payload back, and the
//! stream stays in step whatever was dropped.

use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, BytesMut};
use exactly_codec::FrameDecoder;
use proptest::prelude::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::pipeline::{Pipeline, PipelineOptions};
use crate::metrics::Metrics;

fn frame(payload: &[u8]) -> BytesMut {
    let mut b = BytesMut::new();
    b.put_i32((8 + payload.len()) as i32);
    b.put_i16(3);
    b.put_i16(0);
    b.put_i32(0);
    b.put_slice(payload);
    b
}

/// Echoes correlation id + payload, writing each response in pieces of the
/// given sizes (cycled), so responses arrive split and glued at random.
async fn chunked_echo(mut s: tokio::io::DuplexStream, chunks: Vec<usize>) {
    let dec = FrameDecoder::default();
    let mut buf = BytesMut::new();
    let mut out = BytesMut::new();
    let mut k = 0;
    loop {
        while let Ok(Some(f)) = dec.decode(&mut buf) {
            out.put_i32((f.len() - 4) as i32);
            out.put_slice(&f[4..]);
        }
        while !out.is_empty() {
            let n = chunks[k % chunks.len()].clamp(1, out.len());
            k += 1;
            let piece = out.split_to(n);
            if s.write_all(&piece).await.is_err() {
                return;
            }
            tokio::task::yield_now().await;
        }
        match s.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

#[derive(Debug, Clone)]
struct Req {
    size: usize,
    /// None: wait for the answer; Some(k): give up after k polls.
    give_up_after: Option<u8>,
}

fn req() -> impl Strategy<Value = Req> {
    (0usize..3000, prop::option::weighted(0.3, 0u8..6)).prop_map(|(size, give_up_after)| Req {
        size,
        give_up_after,
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn every_waiting_caller_gets_its_own_response(
        reqs in prop::collection::vec(req(), 1..120),
        chunks in prop::collection::vec(1usize..700, 1..8),
        max_in_flight in 1usize..32,
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let (client, server) = tokio::io::duplex(4096);
            tokio::spawn(chunked_echo(server, chunks));
            let metrics = Arc::new(Metrics::default());
            let pipe = Pipeline::spawn(
                client,
                "mem".into(),
                PipelineOptions { max_in_flight, max_response_size: 1 << 20, first_correlation_id: i32::MAX - 40 },
                metrics.clone(),
            );
            let mut tasks = Vec::new();
            for (i, r) in reqs.iter().cloned().enumerate() {
                let pipe = pipe.clone();
                tasks.push(tokio::spawn(async move {
                    let payload: Vec<u8> = (0..r.size).map(|j| (i * 31 + j) as u8).collect();
                    let fut = pipe.request(frame(&payload), 3, 0, Duration::from_secs(60));
                    match r.give_up_after {
                        None => {
                            let reply = fut.await.unwrap();
                            assert_eq!(&reply.frame[4..], &payload[..], "request {i}");
                            true
                        }
                        Some(k) => {
                            tokio::pin!(fut);
                            for _ in 0..k {
                                tokio::select! {
                                    biased;
                                    r = &mut fut => {
                                        let reply = r.unwrap();
                                        assert_eq!(&reply.frame[4..], &payload[..], "request {i}");
                                        return true;
                                    }
                                    _ = tokio::task::yield_now() => {}
                                }
                            }
                            false
                        }
                    }
                }));
            }
            for t in tasks {
                t.await.unwrap();
            }
            // Still in step after every drop.
            let last = pipe.request(frame(b"last"), 3, 0, Duration::from_secs(60)).await.unwrap();
            assert_eq!(&last.frame[4..], b"last");
            let m = metrics.snapshot();
            assert_eq!(m.requests, m.responses, "{m:?}");
            assert_eq!(m.disconnects, 0);
        });
    }
}
