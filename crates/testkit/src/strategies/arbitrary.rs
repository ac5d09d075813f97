//! `arbitrary` implementations (feature `arbitrary`) of the same specs the
//! proptest strategies draw, for `cargo fuzz` targets: a fuzzer's bytes
//! become a valid [`BatchSpec`] (records, compression, producer stamp), a
//! transaction marker, a fault mix, or a near-valid [`HostileBatch`] with
//! one field corrupted. The shapes follow the strategies (`record()`,
//! `batch()`, `marker()`, `hostile()`), so a crash found by a fuzzer is the
//! same kind of input a property test draws.
//!
//! A `cargo fuzz` target over a decoder of record values (the pattern of
//! `fuzz/fuzz_targets/user_values.rs` in this repository):
//!
//! ```ignore
//! #![no_main]
//! use exactly_codec::RecordBatch;
//! use exactly_testkit::strategies::BatchSpec;
//!
//! libfuzzer_sys::fuzz_target!(|spec: BatchSpec| {
//!     let Ok(bytes) = spec.encode() else { return };
//!     let batch = RecordBatch::decode(bytes).expect("a valid batch decodes");
//!     for record in batch.records() {
//!         let record = record.expect("a record of a valid batch");
//!         // Your decoder: an error is fine, a panic is the bug.
//!         let _ = my_app::decode_order(record.value());
//!     }
//! });
//! ```

use arbitrary::{Arbitrary, Error, Result, Unstructured};
use exactly_codec::{Compression, ProducerStamp};

use super::hostile::{corrupt, Corruption, HostileBatch, ATTRIBUTES};
use super::{BatchSpec, MarkerSpec, RecordSpec};
use crate::sim::Faults;

/// Up to `max` bytes (fewer when the input runs out), or null.
fn nullable_bytes(u: &mut Unstructured<'_>, max: usize) -> Result<Option<Vec<u8>>> {
    if !u.arbitrary::<bool>()? {
        return Ok(None);
    }
    let len = u.int_in_range(0..=max)?.min(u.len());
    Ok(Some(u.bytes(len)?.to_vec()))
}

/// A header key of up to 8 characters from a small alphabet with a
/// non-ASCII letter, as `record()` draws them.
fn header_key(u: &mut Unstructured<'_>) -> Result<String> {
    let len = u.int_in_range(0..=8)?;
    (0..len)
        .map(|_| u.choose(&['a', 'b', 'k', 'z', '\u{e9}']).copied())
        .collect()
}

impl<'a> Arbitrary<'a> for RecordSpec {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        let timestamp = if u.arbitrary()? {
            u.arbitrary()?
        } else {
            u.int_in_range(1_700_000_000_000i64..=1_700_000_100_000)?
        };
        let key = nullable_bytes(u, 40)?;
        let value = nullable_bytes(u, 300)?;
        let headers = (0..u.int_in_range(0..=2)?)
            .map(|_| Ok((header_key(u)?, nullable_bytes(u, 20)?)))
            .collect::<Result<_>>()?;
        Ok(RecordSpec {
            timestamp,
            key,
            value,
            headers,
        })
    }
}

/// Any producer stamp, as `stamp()` draws it.
fn stamp(u: &mut Unstructured<'_>) -> Result<ProducerStamp> {
    Ok(ProducerStamp {
        producer_id: u.arbitrary()?,
        producer_epoch: u.arbitrary()?,
        base_sequence: u.arbitrary()?,
        transactional: u.arbitrary()?,
    })
}

impl<'a> Arbitrary<'a> for BatchSpec {
    /// 1 to 20 records, any compression, any stamp.
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        let records = (0..u.int_in_range(1..=20)?)
            .map(|_| RecordSpec::arbitrary(u))
            .collect::<Result<_>>()?;
        let compression: Compression = *u.choose(&Compression::ALL)?;
        Ok(BatchSpec {
            records,
            compression,
            stamp: stamp(u)?,
        })
    }
}

impl<'a> Arbitrary<'a> for MarkerSpec {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        Ok(MarkerSpec {
            base_offset: u.int_in_range(0..=i64::MAX / 2)?,
            timestamp: u.arbitrary()?,
            producer_id: u.int_in_range(0..=i64::MAX)?,
            producer_epoch: u.int_in_range(0..=i16::MAX)?,
            commit: u.arbitrary()?,
            coordinator_epoch: u.arbitrary()?,
        })
    }
}

impl<'a> Arbitrary<'a> for HostileBatch {
    /// A valid batch of 1 to 20 records with exactly one corruption; input
    /// whose batch does not encode is refused (`IncorrectFormat`), as the
    /// strategy filters it.
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        let spec = BatchSpec::arbitrary(u)?;
        let valid = spec.encode().map_err(|_| Error::IncorrectFormat)?;
        let len = valid.len();
        let true_length = i32::try_from(len - 12).map_err(|_| Error::IncorrectFormat)?;
        let true_count = i32::try_from(spec.records.len()).map_err(|_| Error::IncorrectFormat)?;
        let corruption = match u.int_in_range(0u8..=5)? {
            0 => Corruption::Length(u.arbitrary::<i32>()?).not(true_length, -1),
            1 => match u.arbitrary::<u8>()? {
                2 => Corruption::Magic(3),
                b => Corruption::Magic(b),
            },
            2 => Corruption::Flipped {
                at: u.choose_index(len - ATTRIBUTES)?,
                xor: u.int_in_range(1..=u8::MAX)?,
            },
            3 => Corruption::UnknownCompression(u.int_in_range(5..=7)?),
            4 => Corruption::RecordCount(u.arbitrary::<i32>()?).not(true_count, -1),
            _ => Corruption::Truncated(u.choose_index(len)?),
        };
        let bytes = corrupt(&valid, corruption);
        Ok(HostileBatch {
            spec,
            valid,
            corruption,
            bytes,
        })
    }
}

impl Corruption {
    /// The same corruption, unless its value is the true one (which would
    /// corrupt nothing): then `instead`.
    fn not(self, truth: i32, instead: i32) -> Self {
        match self {
            Corruption::Length(v) if v == truth => Corruption::Length(instead),
            Corruption::RecordCount(v) if v == truth => Corruption::RecordCount(instead),
            other => other,
        }
    }
}

impl<'a> Arbitrary<'a> for Faults {
    /// The ranges of `faults()`: each chance from none to well above the
    /// default mix, latency 1 to 50 ms.
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        Ok(Faults {
            not_sent_pct: u.int_in_range(0..=7)?,
            zombie_pct: u.int_in_range(0..=5)?,
            refuse_pct: u.int_in_range(0..=14)?,
            applied_but_error_pct: u.int_in_range(0..=9)?,
            lost_response_pct: u.int_in_range(0..=7)?,
            duplicate_response_pct: u.int_in_range(0..=5)?,
            max_latency_ms: u.int_in_range(1..=49)?,
            fence_pct: u.int_in_range(0..=9)?,
            window_ms: u.int_in_range(0..=19_999)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use exactly_codec::RecordBatch;

    /// Every byte string becomes a spec that encodes and decodes to the
    /// same records, or is refused for running out; hostile batches differ
    /// from their valid twin and never panic the decoder.
    #[test]
    fn specs_from_bytes_round_trip_and_hostile_ones_differ() {
        let mut rng = crate::rng::Rng::new(7);
        let (mut batches, mut hostile) = (0, 0);
        for _ in 0..300 {
            let data: Vec<u8> = (0..rng.below(4_000))
                .map(|_| rng.below(256) as u8)
                .collect();
            if let Ok(spec) = BatchSpec::arbitrary(&mut Unstructured::new(&data)) {
                let decoded = RecordBatch::decode(spec.encode().unwrap()).unwrap();
                assert_eq!(decoded.header().record_count as usize, spec.records.len());
                batches += 1;
            }
            if let Ok(h) = HostileBatch::arbitrary(&mut Unstructured::new(&data)) {
                assert_ne!(h.bytes, h.valid, "{:?}", h.corruption);
                let _ = RecordBatch::decode(h.bytes.clone())
                    .and_then(|b| b.records().try_for_each(|r| r.map(drop)));
                hostile += 1;
            }
            let _ = MarkerSpec::arbitrary(&mut Unstructured::new(&data)).map(|m| m.encode());
            let _ = Faults::arbitrary(&mut Unstructured::new(&data));
        }
        assert!(batches > 250 && hostile > 250, "{batches} {hostile}");
    }
}
