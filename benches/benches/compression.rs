//! Compression throughput per codec on the records section of a 1,000 x 100 B
//! batch (MB/s of uncompressed bytes), and the whole-batch cost of encoding
//! and decoding it compressed.
//!
//! cargo bench -p exactly-benches --bench compression -- --warm-up-time 1 --measurement-time 2

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use exactly_benches::{encode_ours, workload};
use exactly_codec::compression::{compress, decompress};
use exactly_codec::{Compression, RecordBatch};

fn codecs(c: &mut Criterion) {
    let input = workload(1000, 100);
    let plain = encode_ours(&input, Compression::None);
    let records = &plain[61..];
    for codec in Compression::ALL.into_iter().skip(1) {
        let mut compressed = Vec::new();
        compress(codec, records, &mut compressed).unwrap_or_else(|e| panic!("{e}"));
        println!(
            "{codec}: {} -> {} bytes (ratio {:.2})",
            records.len(),
            compressed.len(),
            records.len() as f64 / compressed.len() as f64
        );
        let mut g = c.benchmark_group(format!("compression/{codec}"));
        g.throughput(Throughput::Bytes(records.len() as u64));
        g.bench_function("compress", |b| {
            b.iter(|| {
                let mut out = Vec::with_capacity(records.len());
                compress(codec, black_box(records), &mut out).unwrap_or_else(|e| panic!("{e}"));
                black_box(out)
            })
        });
        g.bench_function("decompress", |b| {
            b.iter(|| {
                black_box(
                    decompress(codec, black_box(&compressed), 1 << 24)
                        .unwrap_or_else(|e| panic!("{e}")),
                )
            })
        });
        let batch = encode_ours(&input, codec);
        g.bench_function("batch-encode", |b| {
            b.iter(|| black_box(encode_ours(black_box(&input), codec)))
        });
        g.bench_function("batch-decode+iterate", |b| {
            b.iter(|| {
                let d =
                    RecordBatch::decode(black_box(batch.clone())).unwrap_or_else(|e| panic!("{e}"));
                black_box(d.records().filter(|r| r.is_ok()).count())
            })
        });
        g.finish();
    }
}

criterion_group!(benches, codecs);
criterion_main!(benches);
