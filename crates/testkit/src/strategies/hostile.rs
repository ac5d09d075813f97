//! Near-valid hostile record batches: a valid batch with exactly one field
//! corrupted (the length, the magic byte, the CRC-covered bytes, the
//! compression bits of the attributes, the record count) or cut short. A
//! decoder must answer each with an error, never a panic, a hang or an
//! allocation the input did not pay for. Where the corruption is not the
//! CRC itself, the CRC is recomputed, so the check under test is the one
//! behind the CRC (RecordBatch v2 layout: KIP-98).

use bytes::Bytes;
use proptest::prelude::*;

use super::{batch, BatchSpec};

/// Offsets of the RecordBatch v2 header fields.
const LENGTH: usize = 8;
const MAGIC: usize = 16;
const CRC: usize = 17;
pub(super) const ATTRIBUTES: usize = 21;
const RECORD_COUNT: usize = 57;
/// The header's size: the first record starts here.
const HEADER: usize = 61;

/// The one thing wrong with a [`HostileBatch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Corruption {
    /// The batch length field is this instead of the true one.
    Length(i32),
    /// The magic byte is this instead of 2.
    Magic(u8),
    /// One CRC-covered byte (at this offset) XORed with a non-zero mask;
    /// the CRC is left as it was.
    Flipped {
        /// Offset in the batch.
        at: usize,
        /// The XOR mask.
        xor: u8,
    },
    /// The compression bits of the attributes name no codec (5 to 7).
    UnknownCompression(u8),
    /// The record count field is this instead of the true one.
    RecordCount(i32),
    /// The batch is cut to this many bytes.
    Truncated(usize),
}

/// A valid batch, and the same batch with one corruption.
#[derive(Debug, Clone)]
pub struct HostileBatch {
    /// What the valid batch holds.
    pub spec: BatchSpec,
    /// The valid bytes.
    pub valid: Bytes,
    /// What was corrupted.
    pub corruption: Corruption,
    /// The corrupted bytes.
    pub bytes: Bytes,
}

fn recrc(m: &mut [u8]) {
    if m.len() > ATTRIBUTES {
        let crc = crc32c::crc32c(&m[ATTRIBUTES..]);
        m[CRC..ATTRIBUTES].copy_from_slice(&crc.to_be_bytes());
    }
}

/// Applies `c` to the valid batch `valid`.
pub fn corrupt(valid: &Bytes, c: Corruption) -> Bytes {
    let mut m = valid.to_vec();
    match c {
        Corruption::Length(v) => {
            m[LENGTH..LENGTH + 4].copy_from_slice(&v.to_be_bytes());
        }
        Corruption::Magic(v) => {
            m[MAGIC] = v;
            recrc(&mut m);
        }
        Corruption::Flipped { at, xor } => {
            let at = ATTRIBUTES + at % (m.len() - ATTRIBUTES);
            m[at] ^= xor.max(1);
        }
        Corruption::UnknownCompression(id) => {
            m[ATTRIBUTES + 1] = (m[ATTRIBUTES + 1] & !0x07) | (id.clamp(5, 7));
            recrc(&mut m);
        }
        Corruption::RecordCount(v) => {
            m[RECORD_COUNT..HEADER].copy_from_slice(&v.to_be_bytes());
            recrc(&mut m);
        }
        Corruption::Truncated(n) => m.truncate(n.min(m.len().saturating_sub(1))),
    }
    Bytes::from(m)
}

/// A valid batch of 1 to 10 records with one field corrupted.
pub fn hostile() -> impl Strategy<Value = HostileBatch> {
    (
        batch(1..10),
        any::<prop::sample::Index>(),
        any::<u8>(),
        any::<i32>(),
        0u8..7,
    )
        .prop_filter_map("the batch must encode", |(spec, at, byte, word, which)| {
            let valid = spec.encode().ok()?;
            let len = valid.len();
            let true_length = (len - 12) as i32;
            let true_count = spec.records.len() as i32;
            let corruption = match which {
                0 => Corruption::Length(if word == true_length { -1 } else { word }),
                1 => Corruption::Magic(if byte == 2 { 3 } else { byte }),
                2 => Corruption::Flipped {
                    at: at.index(len - ATTRIBUTES),
                    xor: byte.max(1),
                },
                3 => Corruption::UnknownCompression(5 + byte % 3),
                4 => Corruption::RecordCount(if word == true_count { -1 } else { word }),
                _ => Corruption::Truncated(at.index(len)),
            };
            let bytes = corrupt(&valid, corruption);
            Some(HostileBatch {
                spec,
                valid,
                corruption,
                bytes,
            })
        })
}
