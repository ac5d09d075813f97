//! The consumer's read path after the socket: one partition's Fetch data
//! (10 transactional batches of 100 records, 12-byte keys, CRC checked,
//! uncompressed) through `parse_partition` under `read_committed` with an
//! aborted-transactions list (every other batch belongs to an aborted
//! transaction of another producer, so half the records are skipped), and
//! the handing out of the records as `ConsumerRecord`s. Throughput is in
//! records of the input, so time / N is ns per input record.
//!
//! cargo bench -p exactly-consumer --bench parse -- --warm-up-time 1 --measurement-time 2

#![allow(clippy::unwrap_used, missing_docs)]

use std::hint::black_box;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use exactly_codec::record::{encode_control_batch, set_base_offset, DecodeOptions};
use exactly_codec::{BatchBuilder, Compression, ProducerStamp};
use exactly_consumer::fetch::parse::{parse_partition, PartitionData};
use exactly_consumer::fetch::read_committed::AbortedTxn;

const BATCHES: i64 = 10;
const PER_BATCH: i64 = 100;

fn log(value_size: usize) -> (Bytes, Vec<AbortedTxn>) {
    let mut out = Vec::new();
    let mut next = 0i64;
    let mut aborted = Vec::new();
    let value = vec![b'v'; value_size];
    for b in 0..BATCHES {
        // Even batches: producer 1, committed; odd: producer 2, aborted.
        let pid = 1 + b % 2;
        if pid == 2 {
            aborted.push(AbortedTxn {
                first_offset: next,
                producer_id: 2,
            });
        }
        let mut bb = BatchBuilder::new(Compression::None);
        for i in 0..PER_BATCH {
            let key = format!("key-{:08}", next + i);
            bb.append(
                1_700_000_000_000 + i,
                Some(key.as_bytes()),
                Some(&value),
                &[],
            )
            .unwrap();
        }
        let bytes = bb.close().unwrap().stamp(ProducerStamp {
            producer_id: pid,
            producer_epoch: 0,
            base_sequence: 0,
            transactional: true,
        });
        let mut m = BytesMut::from(&bytes[..]);
        set_base_offset(&mut m, next).unwrap();
        out.extend_from_slice(&m);
        next += PER_BATCH;
        let marker = encode_control_batch(next, 1, pid, 0, pid == 1, 0).unwrap();
        out.extend_from_slice(&marker);
        next += 1;
    }
    (Bytes::from(out), aborted)
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("consumer_parse_read_committed");
    let topic: Arc<str> = Arc::from("t");
    for size in [10usize, 100, 1000] {
        let (records, aborted) = log(size);
        g.throughput(Throughput::Elements((BATCHES * PER_BATCH) as u64));
        g.bench_with_input(BenchmarkId::from_parameter(size), &size, |b, _| {
            b.iter(|| {
                let p = parse_partition(
                    &topic,
                    0,
                    PartitionData {
                        fetch_offset: 0,
                        records: records.clone(),
                        aborted: Some(aborted.clone()),
                        last_stable_offset: i64::MAX,
                    },
                    DecodeOptions::default(),
                );
                assert_eq!(p.records.len() as i64, BATCHES * PER_BATCH / 2);
                let mut touched = 0usize;
                for r in &p.records {
                    touched +=
                        r.value().map_or(0, |v| v.len()) + r.key().map_or(0, |k| k[0] as usize);
                }
                black_box(touched)
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
