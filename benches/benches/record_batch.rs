//! RecordBatch v2 encode and decode: ours, kafka-protocol 0.18's, and the
//! floors (copy + one CRC-32C to encode; CRC-32C alone to decode), on the
//! PERFORMANCE.md workload: one batch of N records, 12-byte keys, no headers,
//! uncompressed, transactional. Throughput is in records, so criterion's
//! time / N is ns per record.
//!
//! cargo bench -p exactly-benches --bench record_batch -- --warm-up-time 1 --measurement-time 2

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use exactly_benches::{encode_ours, workload, STAMP, T0};
use exactly_codec::record::DecodeOptions;
use exactly_codec::{BatchBuilder, Compression, RecordBatch};
use kafka_protocol::records::{
    Compression as KpCompression, Record, RecordBatchDecoder, RecordBatchEncoder,
    RecordEncodeOptions, TimestampType,
};

const COUNTS: [usize; 3] = [1, 100, 1000];
const SIZES: [usize; 3] = [10, 100, 1000];

fn kp_records(input: &[(Bytes, Bytes)]) -> Vec<Record> {
    input
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
        .collect()
}

fn kp_encode(records: &[Record], buf: &mut BytesMut) {
    let opts = RecordEncodeOptions {
        version: 2,
        compression: KpCompression::None,
    };
    if let Err(e) = RecordBatchEncoder::encode(buf, records, &opts) {
        panic!("kafka-protocol encode failed: {e}");
    }
}

fn encode(c: &mut Criterion) {
    for n in COUNTS {
        for size in SIZES {
            let input = workload(n, size);
            let kp = kp_records(&input);
            // identical input, identical output
            let ours = encode_ours(&input, Compression::None);
            let mut theirs = BytesMut::new();
            kp_encode(&kp, &mut theirs);
            assert_eq!(&ours[..], &theirs[..], "byte-identical batches");
            let total: usize = input.iter().map(|(k, v)| k.len() + v.len()).sum();

            let mut g = c.benchmark_group(format!("encode/{n}x{size}B"));
            g.throughput(Throughput::Elements(n as u64));
            g.bench_function("exactly", |b| {
                b.iter(|| {
                    let mut bb = BatchBuilder::with_capacity(Compression::None, ours.len());
                    for (i, (k, v)) in input.iter().enumerate() {
                        let _ = bb.append(T0 + i as i64, Some(k), Some(v), &[]);
                    }
                    match bb.close() {
                        Ok(mut closed) => black_box(closed.stamp(STAMP)),
                        Err(e) => panic!("{e}"),
                    }
                })
            });
            g.bench_function("kafka-protocol", |b| {
                b.iter(|| {
                    let mut buf = BytesMut::with_capacity(theirs.len());
                    kp_encode(black_box(&kp), &mut buf);
                    black_box(buf)
                })
            });
            g.bench_function("floor-copy+crc32c", |b| {
                b.iter(|| {
                    let mut buf = Vec::with_capacity(total);
                    for (k, v) in &input {
                        buf.extend_from_slice(k);
                        buf.extend_from_slice(v);
                    }
                    black_box(crc32c::crc32c(&buf));
                    black_box(buf)
                })
            });
            g.finish();
        }
    }
}

fn decode(c: &mut Criterion) {
    for n in COUNTS {
        for size in SIZES {
            let input = workload(n, size);
            let batch = encode_ours(&input, Compression::None);
            let mut g = c.benchmark_group(format!("decode/{n}x{size}B"));
            g.throughput(Throughput::Elements(n as u64));
            g.bench_function(BenchmarkId::new("exactly", "crc+iterate"), |b| {
                b.iter(|| {
                    let d = match RecordBatch::decode_with(
                        black_box(batch.clone()),
                        &DecodeOptions::default(),
                    ) {
                        Ok(d) => d,
                        Err(e) => panic!("{e}"),
                    };
                    let mut sum = 0usize;
                    for r in d.records() {
                        match r {
                            Ok(r) => {
                                sum += r.key().map_or(0, |k| k[0] as usize)
                                    + r.value().map_or(0, |v| v[v.len() - 1] as usize)
                            }
                            Err(e) => panic!("{e}"),
                        }
                    }
                    black_box(sum)
                })
            });
            g.bench_function(BenchmarkId::new("kafka-protocol", "crc+iterate"), |b| {
                b.iter(|| {
                    let mut buf = black_box(batch.clone());
                    let set = match RecordBatchDecoder::decode(&mut buf) {
                        Ok(s) => s,
                        Err(e) => panic!("{e}"),
                    };
                    let mut sum = 0usize;
                    for r in &set.records {
                        sum += r.key.as_ref().map_or(0, |k| k[0] as usize)
                            + r.value.as_ref().map_or(0, |v| v[v.len() - 1] as usize);
                    }
                    black_box(sum)
                })
            });
            g.bench_function(BenchmarkId::new("floor", "crc32c"), |b| {
                b.iter(|| black_box(crc32c::crc32c(&black_box(&batch)[21..])))
            });
            g.finish();
        }
    }
}

criterion_group!(benches, encode, decode);
criterion_main!(benches);
