//! Control records: the transaction markers a coordinator writes into each
//! partition of a transaction when it ends (KIP-98).
//!
//! A control batch has the control and transactional attributes set and holds
//! one record whose key is `version: i16, type: i16` (0 = abort, 1 = commit)
//! and, for markers, whose value is `version: i16, coordinator epoch: i32`.
//! Other control types (leader change, KRaft snapshots and voters) exist in
//! internal logs; they are reported as [`ControlRecordKind::Other`].

use bytes::Bytes;

use super::encode::{BatchBuilder, ProducerStamp};
use super::{offsets, Attributes, RecordError};
use crate::compression::Compression;

/// What a control record says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ControlRecordKind {
    /// The transaction was aborted (type 0).
    Abort,
    /// The transaction was committed (type 1).
    Commit,
    /// Another control type (not a transaction marker), kept as received.
    Other(i16),
}

impl ControlRecordKind {
    /// The wire type.
    pub const fn code(self) -> i16 {
        match self {
            ControlRecordKind::Abort => 0,
            ControlRecordKind::Commit => 1,
            ControlRecordKind::Other(c) => c,
        }
    }
}

/// A decoded control record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ControlRecord {
    /// Abort, commit or another control type.
    pub kind: ControlRecordKind,
    /// The key's version (0 today).
    pub version: i16,
    /// For markers: the epoch of the coordinator that wrote it.
    pub coordinator_epoch: Option<i32>,
}

impl ControlRecord {
    /// Decodes a control record from its key and value.
    pub fn decode(key: Option<&[u8]>, value: Option<&[u8]>) -> Result<Self, RecordError> {
        let Some(key) = key else {
            return Err(RecordError::MalformedControl("null key"));
        };
        let Some(k) = key.get(..4) else {
            return Err(RecordError::MalformedControl("key shorter than 4 bytes"));
        };
        let version = i16::from_be_bytes([k[0], k[1]]);
        if version < 0 {
            return Err(RecordError::MalformedControl("negative key version"));
        }
        let kind = match i16::from_be_bytes([k[2], k[3]]) {
            0 => ControlRecordKind::Abort,
            1 => ControlRecordKind::Commit,
            other => ControlRecordKind::Other(other),
        };
        let coordinator_epoch = match kind {
            ControlRecordKind::Abort | ControlRecordKind::Commit => {
                let Some(v) = value.and_then(|v| v.get(..6)) else {
                    return Err(RecordError::MalformedControl(
                        "marker value shorter than 6 bytes",
                    ));
                };
                if i16::from_be_bytes([v[0], v[1]]) < 0 {
                    return Err(RecordError::MalformedControl("negative marker version"));
                }
                Some(i32::from_be_bytes([v[2], v[3], v[4], v[5]]))
            }
            ControlRecordKind::Other(_) => None,
        };
        Ok(Self {
            kind,
            version,
            coordinator_epoch,
        })
    }
}

/// Encodes a whole control batch holding one transaction marker, as a
/// coordinator would write it (for fake brokers and tests). The batch is
/// transactional with the given producer id and epoch; base sequence -1.
pub fn encode_control_batch(
    base_offset: i64,
    timestamp: i64,
    producer_id: i64,
    producer_epoch: i16,
    commit: bool,
    coordinator_epoch: i32,
) -> Result<Bytes, RecordError> {
    let mut key = [0u8; 4];
    key[2..].copy_from_slice(&i16::from(commit).to_be_bytes());
    let mut value = [0u8; 6];
    value[2..].copy_from_slice(&coordinator_epoch.to_be_bytes());
    let mut b = BatchBuilder::with_capacity(Compression::None, 32);
    b.append(timestamp, Some(&key), Some(&value), &[])?;
    let mut closed = b.close()?;
    closed.attributes = Attributes {
        control: true,
        ..closed.attributes
    };
    let bytes = closed.stamp(ProducerStamp {
        producer_id,
        producer_epoch,
        base_sequence: -1,
        transactional: true,
    });
    drop(closed);
    let mut m = bytes
        .try_into_mut()
        .unwrap_or_else(|shared| bytes::BytesMut::from(&shared[..]));
    super::encode::set_base_offset(&mut m, base_offset)?;
    debug_assert_eq!(m[offsets::MAGIC], 2);
    Ok(m.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::RecordBatch;

    #[test]
    fn marker_roundtrip() {
        let b = encode_control_batch(100, 5, 9, 2, false, 17).unwrap();
        let d = RecordBatch::decode(b).unwrap();
        let h = d.header();
        assert!(h.attributes.control && h.attributes.transactional);
        assert_eq!(
            (h.base_offset, h.producer_id, h.producer_epoch),
            (100, 9, 2)
        );
        let c = d.control_record().unwrap().unwrap();
        assert_eq!(c.kind, ControlRecordKind::Abort);
        assert_eq!(c.coordinator_epoch, Some(17));
        let b = encode_control_batch(0, 5, 9, 2, true, 1).unwrap();
        let c = RecordBatch::decode(b)
            .unwrap()
            .control_record()
            .unwrap()
            .unwrap();
        assert_eq!(c.kind, ControlRecordKind::Commit);
    }

    #[test]
    fn malformed_markers() {
        use RecordError::MalformedControl as M;
        assert!(matches!(ControlRecord::decode(None, None), Err(M(_))));
        assert!(matches!(
            ControlRecord::decode(Some(&[0, 0, 0]), None),
            Err(M(_))
        ));
        assert!(matches!(
            ControlRecord::decode(Some(&[0, 0, 0, 1]), None),
            Err(M(_))
        ));
        assert!(matches!(
            ControlRecord::decode(Some(&[0, 0, 0, 1]), Some(&[0, 0, 0, 0, 0])),
            Err(M(_))
        ));
        assert!(matches!(
            ControlRecord::decode(Some(&[0xff, 0, 0, 1]), Some(&[0; 6])),
            Err(M(_))
        ));
        let other = ControlRecord::decode(Some(&[0, 0, 0, 2]), None).unwrap();
        assert_eq!(other.kind, ControlRecordKind::Other(2));
    }
}
