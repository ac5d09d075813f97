//! A fixed amount of codec work, for instruction counting (repeatable on a
//! shared, noisy machine where wall-clock benches are not):
//!
//! ```text
//! cargo build --release -p exactly-benches --example codec_loop
//! perf stat -e instructions:u target/release/examples/codec_loop encode 10 1000
//! ```
//!
//! Arguments: `encode|decode|floor-encode|floor-decode|kp-encode|kp-decode`,
//! value size, iterations (each over one batch of 1,000 records, or of
//! `n=K` records). Divide the instruction count by iterations x records
//! (the setup is a few % of a run of 1,000 iterations; run with 0 iterations
//! to measure it). Where `perf` has no
//! counters (VMs), count with callgrind (BENCHMARKS.md has the commands).
//!
//! Further arguments: `time` prints the loop's wall-clock ns per record
//! (setup excluded); `n=K` sets the records per batch (default 1,000; `n=1`
//! is the one-record batch of a producer with `linger.ms=0`); `cap=K` makes
//! `encode` ask the builder for K bytes of capacity (default: the batch's
//! size; `cap=0` is `BatchBuilder::new`, sized by the first record). On a shared machine, interleave modes and keep the
//! minimum of several runs, e.g.:
//!
//! ```text
//! for i in $(seq 11); do for m in encode floor-encode; do
//!   target/release/examples/codec_loop $m 10 5000 time; done; done | sort -k4,4n | awk '!s[$1]++'
//! ```

use std::hint::black_box;

use bytes::BytesMut;
use exactly_benches::{encode_ours, workload, STAMP, T0};
use exactly_codec::{BatchBuilder, Compression, RecordBatch};
use kafka_protocol::records::{
    Compression as KpCompression, Record, RecordBatchDecoder, RecordBatchEncoder,
    RecordEncodeOptions, TimestampType,
};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let what = args.get(1).map_or("encode", String::as_str);
    let size: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(10);
    let iters: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(1000);
    let timed = args.iter().skip(4).any(|a| a == "time");
    let n: usize = args
        .iter()
        .skip(4)
        .find_map(|a| a.strip_prefix("n=")?.parse().ok())
        .unwrap_or(1000);
    let cap: Option<usize> = args
        .iter()
        .skip(4)
        .find_map(|a| a.strip_prefix("cap=")?.parse().ok());
    let input = workload(n, size);
    let batch = encode_ours(&input, Compression::None);
    let kp: Vec<Record> = input
        .iter()
        .enumerate()
        .map(|(i, (k, v))| Record {
            transactional: true,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: STAMP.producer_id,
            producer_epoch: STAMP.producer_epoch,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: STAMP.base_sequence + i as i32,
            timestamp: T0 + i as i64,
            key: Some(k.clone()),
            value: Some(v.clone()),
            headers: Default::default(),
        })
        .collect();
    let started = std::time::Instant::now();
    let mut sink = 0usize;
    for _ in 0..iters {
        match what {
            "encode" => {
                let mut b =
                    BatchBuilder::with_capacity(Compression::None, cap.unwrap_or(batch.len()));
                for (i, (k, v)) in input.iter().enumerate() {
                    let _ = b.append(T0 + i as i64, Some(k), Some(v), &[]);
                }
                if let Ok(mut c) = b.close() {
                    sink += black_box(c.stamp(STAMP)).len();
                }
            }
            "floor-encode" => {
                let mut buf = Vec::with_capacity(batch.len());
                for (k, v) in &input {
                    buf.extend_from_slice(k);
                    buf.extend_from_slice(v);
                }
                sink += crc32c::crc32c(black_box(&buf)) as usize;
            }
            "kp-encode" => {
                let mut buf = BytesMut::with_capacity(batch.len());
                let opts = RecordEncodeOptions {
                    version: 2,
                    compression: KpCompression::None,
                };
                let _ = RecordBatchEncoder::encode(&mut buf, black_box(&kp), &opts);
                sink += buf.len();
            }
            "decode" => {
                if let Ok(d) = RecordBatch::decode(black_box(batch.clone())) {
                    for r in d.records().flatten() {
                        sink += r.key().map_or(0, |k| k[0] as usize)
                            + r.value().map_or(0, |v| v[v.len() - 1] as usize);
                    }
                }
            }
            "floor-decode" => sink += crc32c::crc32c(&black_box(&batch)[21..]) as usize,
            "kp-decode" => {
                let mut buf = black_box(batch.clone());
                if let Ok(set) = RecordBatchDecoder::decode(&mut buf) {
                    for r in &set.records {
                        sink += r.key.as_ref().map_or(0, |k| k[0] as usize)
                            + r.value.as_ref().map_or(0, |v| v[v.len() - 1] as usize);
                    }
                }
            }
            other => panic!("unknown mode {other}"),
        }
    }
    if timed {
        let ns = started.elapsed().as_nanos() as f64 / (iters.max(1) * n) as f64;
        println!("{what} {size} B: {ns:.2} ns/record, {n} per batch");
    } else {
        println!("{sink}");
    }
    black_box(sink);
}
