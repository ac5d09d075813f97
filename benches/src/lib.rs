//! Shared inputs of the criterion benches (see `benches/`) and of the
//! allocation tests: the record batch workload of PERFORMANCE.md.

pub mod null_broker;

use bytes::Bytes;
use exactly_codec::{BatchBuilder, Compression, ProducerStamp};

/// The stamp of the benchmarked batches: transactional, as in PERFORMANCE.md.
pub const STAMP: ProducerStamp = ProducerStamp {
    producer_id: 4242,
    producer_epoch: 7,
    base_sequence: 1000,
    transactional: true,
};

/// Base timestamp of the benchmarked records.
pub const T0: i64 = 1_700_000_000_000;

/// `n` records of a 12-byte key and a `value_size`-byte value, no headers.
pub fn workload(n: usize, value_size: usize) -> Vec<(Bytes, Bytes)> {
    (0..n)
        .map(|i| {
            let key = format!("key-{i:08}");
            let value: Vec<u8> = (0..value_size).map(|j| (i * 31 + j * 7) as u8).collect();
            (Bytes::from(key), Bytes::from(value))
        })
        .collect()
}

/// Encodes the workload with our builder and stamps it with [`STAMP`].
pub fn encode_ours(records: &[(Bytes, Bytes)], compression: Compression) -> Bytes {
    let size: usize = records.iter().map(|(k, v)| k.len() + v.len() + 16).sum();
    let mut b = BatchBuilder::with_capacity(compression, size);
    for (i, (k, v)) in records.iter().enumerate() {
        // the workload never exceeds i32 limits
        let _ = b.append(T0 + i as i64, Some(k), Some(v), &[]);
    }
    match b.close() {
        Ok(mut c) => c.stamp(STAMP),
        Err(e) => panic!("bench workload failed to encode: {e}"),
    }
}
