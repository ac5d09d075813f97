//! Public proptest strategies for the codec's types (feature `proptest`):
//! valid record batches (KIP-98 RecordBatch v2) under every compression,
//! with any producer stamp and the transactional flag either way;
//! transaction markers (control batches); frames; and near-valid hostile
//! batches with one field corrupted at a time ([`hostile()`]). The fault
//! knobs of the simulation have a strategy too ([`faults`]).
//!
//! `exactly-codec`'s own property tests draw from these.
//!
//! ```
//! use exactly_codec::RecordBatch;
//! use exactly_testkit::strategies::batch;
//! use proptest::prelude::*;
//! use proptest::test_runner::TestRunner;
//!
//! let mut runner = TestRunner::default();
//! runner
//!     .run(&batch(1..20), |spec| {
//!         let bytes = spec.encode().map_err(|e| TestCaseError::fail(e.to_string()))?;
//!         let decoded = RecordBatch::decode(bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
//!         prop_assert_eq!(decoded.header().record_count as usize, spec.records.len());
//!         Ok(())
//!     })
//!     .unwrap();
//! ```

#[cfg(feature = "arbitrary")]
mod arbitrary;
pub mod hostile;

use bytes::{Bytes, BytesMut};
use exactly_codec::frame::write_frame;
use exactly_codec::record::{encode_control_batch, RecordHeader};
use exactly_codec::{BatchBuilder, Compression, ProducerStamp, RecordError};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;

use crate::sim::Faults;

pub use hostile::{hostile, Corruption, HostileBatch};

/// One record to append to a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordSpec {
    /// Timestamp (ms).
    pub timestamp: i64,
    /// Key (`None`: null).
    pub key: Option<Vec<u8>>,
    /// Value (`None`: null, a tombstone).
    pub value: Option<Vec<u8>>,
    /// Headers (KIP-82), in order; a key may repeat.
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

/// A record: any or a realistic timestamp, null or short keys, values up
/// to 300 bytes, up to 2 headers with non-ASCII keys.
pub fn record() -> impl Strategy<Value = RecordSpec> {
    (
        prop_oneof![any::<i64>(), 1_700_000_000_000i64..1_700_000_100_000],
        option::of(vec(any::<u8>(), 0..40)),
        option::of(vec(any::<u8>(), 0..300)),
        vec(
            ("[a-z\\u{e9}]{0,8}", option::of(vec(any::<u8>(), 0..20))),
            0..3,
        ),
    )
        .prop_map(|(timestamp, key, value, headers)| RecordSpec {
            timestamp,
            key,
            value,
            headers,
        })
}

/// Any compression codec the codec supports.
pub fn compression() -> impl Strategy<Value = Compression> {
    proptest::sample::select(Compression::ALL.to_vec())
}

/// Any producer stamp: any id, epoch and base sequence, transactional or
/// not.
pub fn stamp() -> impl Strategy<Value = ProducerStamp> {
    (any::<i64>(), any::<i16>(), any::<i32>(), any::<bool>()).prop_map(|(p, e, s, t)| {
        ProducerStamp {
            producer_id: p,
            producer_epoch: e,
            base_sequence: s,
            transactional: t,
        }
    })
}

/// A data batch to encode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchSpec {
    /// The records, at least one.
    pub records: Vec<RecordSpec>,
    /// The compression codec.
    pub compression: Compression,
    /// The producer stamp (id, epoch, sequence, transactional flag).
    pub stamp: ProducerStamp,
}

impl BatchSpec {
    /// The batch's bytes as the producer sends them (base offset 0).
    pub fn encode(&self) -> Result<Bytes, RecordError> {
        let mut b = BatchBuilder::new(self.compression);
        for r in &self.records {
            let headers: Vec<RecordHeader<'_>> = r
                .headers
                .iter()
                .map(|(k, v)| RecordHeader {
                    key: k,
                    value: v.as_deref(),
                })
                .collect();
            b.append(r.timestamp, r.key.as_deref(), r.value.as_deref(), &headers)?;
        }
        Ok(b.close()?.stamp(self.stamp))
    }
}

/// A valid data batch with a record count in `records` (clamped to at
/// least 1), any compression, any stamp.
pub fn batch(records: std::ops::Range<usize>) -> impl Strategy<Value = BatchSpec> {
    let records = records.start.max(1)..records.end.max(2);
    (vec(record(), records), compression(), stamp()).prop_map(|(records, compression, stamp)| {
        BatchSpec {
            records,
            compression,
            stamp,
        }
    })
}

/// A transaction marker (a control batch, KIP-98).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MarkerSpec {
    /// Its offset in the log.
    pub base_offset: i64,
    /// Timestamp (ms).
    pub timestamp: i64,
    /// The producer whose transaction it ends.
    pub producer_id: i64,
    /// That producer's epoch.
    pub producer_epoch: i16,
    /// Commit (true) or abort.
    pub commit: bool,
    /// The epoch of the coordinator that wrote it.
    pub coordinator_epoch: i32,
}

impl MarkerSpec {
    /// The marker's bytes as a broker writes them.
    pub fn encode(&self) -> Result<Bytes, RecordError> {
        encode_control_batch(
            self.base_offset,
            self.timestamp,
            self.producer_id,
            self.producer_epoch,
            self.commit,
            self.coordinator_epoch,
        )
    }
}

/// Any commit or abort marker.
pub fn marker() -> impl Strategy<Value = MarkerSpec> {
    (
        0i64..i64::MAX / 2,
        any::<i64>(),
        0i64..i64::MAX,
        0i16..i16::MAX,
        any::<bool>(),
        any::<i32>(),
    )
        .prop_map(
            |(base_offset, timestamp, producer_id, producer_epoch, commit, coordinator_epoch)| {
                MarkerSpec {
                    base_offset,
                    timestamp,
                    producer_id,
                    producer_epoch,
                    commit,
                    coordinator_epoch,
                }
            },
        )
}

/// Frame bodies (up to 10 of up to `max_body` bytes) with their wire form:
/// each body behind its 4-byte big-endian size.
pub fn frames(max_body: usize) -> impl Strategy<Value = (Vec<Vec<u8>>, Bytes)> {
    vec(vec(any::<u8>(), 0..max_body.max(1)), 0..10).prop_map(|bodies| {
        let mut wire = BytesMut::new();
        for b in &bodies {
            // Writing into a BytesMut cannot fail; a body too large for an
            // i32 size cannot be drawn here.
            let _ = write_frame::<()>(&mut wire, |d| {
                d.extend_from_slice(b);
                Ok(())
            });
        }
        (bodies, wire.freeze())
    })
}

/// Fault knobs for [`crate::sim::Sim::with_faults`]: each chance from none
/// to well above the default mix, latency 1 to 50 ms.
pub fn faults() -> impl Strategy<Value = Faults> {
    (
        (0u64..8, 0u64..6, 0u64..15, 0u64..10),
        (0u64..8, 0u64..6, 1u64..50, 0u64..10, 0u64..20_000),
    )
        .prop_map(
            |((ns, z, rf, ab), (lost, dup, lat, fence, window))| Faults {
                not_sent_pct: ns,
                zombie_pct: z,
                refuse_pct: rf,
                applied_but_error_pct: ab,
                lost_response_pct: lost,
                duplicate_response_pct: dup,
                max_latency_ms: lat,
                fence_pct: fence,
                window_ms: window,
            },
        )
}

/// A producer schedule for [`crate::sim::Sim::with_faults`]: the seed picks
/// the transaction version, idempotent or transactional, the epoch start
/// (near exhaustion one time in ten), the plan of sends, commits, aborts and
/// offsets, and the draws of the faults; the knobs set how often requests
/// are lost, retried, refused by a moved coordinator or leader, duplicated,
/// or the producer fenced. Epoch bumps follow from those.
pub fn schedule() -> impl Strategy<Value = (u64, Faults)> {
    (any::<u64>(), faults())
}
