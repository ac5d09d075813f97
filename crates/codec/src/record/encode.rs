//! Writing v2 batches: records are appended straight into an open buffer; the
//! header is finalized in two steps (close, then stamp) so that the producer's
//! transaction core can decide the producer fields last.
//!
//! Invariants kept here:
//! - a [`ClosedBatch`] holds a complete batch whose producer fields and CRC are
//!   blank until [`ClosedBatch::stamp`] writes them (the architecture's "header
//!   left blank until the transaction core decides");
//! - stamping touches only attributes, producer id, epoch, base sequence and
//!   the CRC; the records bytes never change after close. Each stamp computes
//!   the CRC in one pass over the batch, so the common path (close, stamp once,
//!   resend the same bytes on retry) reads the records once for the CRC.

use bytes::{Bytes, BytesMut};

use super::varint::{encoded_len, zigzag32, zigzag64};
use super::writer::{self, SCRATCH};
use super::{
    offsets, Attributes, RecordError, BATCH_HEADER_LEN, CRC_START, LOG_OVERHEAD, MAGIC_V2,
};
use crate::compression::{compress, Compression};

/// One record header (KIP-82): a string key and a nullable value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordHeader<'a> {
    /// The header key.
    pub key: &'a str,
    /// The header value; `None` is null.
    pub value: Option<&'a [u8]>,
}

/// The producer fields of a batch, decided by the transaction core.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProducerStamp {
    /// Producer id (-1 when not idempotent).
    pub producer_id: i64,
    /// Producer epoch (-1 when not idempotent).
    pub producer_epoch: i16,
    /// Sequence of the first record (-1 when not idempotent).
    pub base_sequence: i32,
    /// Whether the batch belongs to a transaction.
    pub transactional: bool,
}

impl ProducerStamp {
    /// The fields of a batch from a producer that is neither idempotent nor
    /// transactional.
    pub const NONE: ProducerStamp = ProducerStamp {
        producer_id: -1,
        producer_epoch: -1,
        base_sequence: -1,
        transactional: false,
    };
}

/// An open batch: records are encoded into it as they are appended.
///
/// The buffer is allocated by the first append, sized for the capacity asked
/// for and at least that first record (one allocation for a one-record
/// batch, whatever its size); it starts with a blank 61-byte header and
/// records follow uncompressed. Batch-level fields (compression, producer
/// fields) are kept once here, not per record.
#[derive(Debug, Clone)]
pub struct BatchBuilder {
    /// The batch so far (header, then records), or empty (no allocation)
    /// before the first append; its spare capacity is where the next records
    /// are written (see `writer`), never zero-filled ahead.
    buf: Vec<u8>,
    /// Bytes of records to make room for when the buffer is allocated.
    capacity: usize,
    compression: Compression,
    base_timestamp: i64,
    max_timestamp: i64,
    count: i32,
}

/// Upper bound of a record's framing bytes beside key, value and headers:
/// length (5), attributes (1), timestamp delta (10), offset delta (5), key
/// length (5), value length (5), header count (5).
const RECORD_FRAMING_MAX: usize = 36;

/// What the buffer holds beyond the header and the records' bytes: a
/// record's write reserves more than it fills (its framing's upper bound
/// rather than its actual varint widths, plus the writer's scratch), at most
/// [`RECORD_FRAMING_MAX`] plus the writer's scratch. With this much
/// spare, records whose encoded bytes fit the capacity asked for never
/// reallocate, the last one included.
const RESERVE_SLACK: usize = RECORD_FRAMING_MAX + SCRATCH;

impl BatchBuilder {
    /// An empty batch whose records will be compressed with `compression`.
    /// Nothing is allocated until the first append, which sizes the buffer
    /// for that record (later records grow it).
    pub fn new(compression: Compression) -> Self {
        Self::with_capacity(compression, 0)
    }

    /// An empty batch with room for `capacity` bytes of records, allocated
    /// by the first append (larger if that record needs it).
    pub fn with_capacity(compression: Compression, capacity: usize) -> Self {
        Self {
            buf: Vec::new(),
            capacity,
            compression,
            base_timestamp: 0,
            max_timestamp: 0,
            count: 0,
        }
    }

    /// An upper bound of the bytes a record adds to a batch (uncompressed).
    pub fn max_record_size(
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[RecordHeader<'_>],
    ) -> usize {
        let h: usize = headers
            .iter()
            .map(|h| 10 + h.key.len() + h.value.map_or(0, <[u8]>::len))
            .sum();
        RECORD_FRAMING_MAX + key.map_or(0, <[u8]>::len) + value.map_or(0, <[u8]>::len) + h
    }

    /// Appends a record. Its offset delta is the number of records before it;
    /// the first record's timestamp becomes the batch's base timestamp.
    #[inline]
    pub fn append(
        &mut self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[RecordHeader<'_>],
    ) -> Result<(), RecordError> {
        if self.count == i32::MAX {
            return Err(RecordError::Overflow);
        }
        if self.count == 0 {
            // the first record's timestamp is the batch's base (kept if the
            // record fails: the next first record sets it again)
            self.base_timestamp = timestamp;
            self.max_timestamp = timestamp;
            if self.buf.is_empty() {
                self.allocate(key, value, headers);
            }
        }
        if headers.is_empty() {
            // Fast path: the body is written first and its length filled in
            // after, with no sizing pass (declined for lengths near a varint
            // width boundary, and for huge records, which the general path
            // sizes or rejects).
            let ts_delta = zigzag64(timestamp.wrapping_sub(self.base_timestamp));
            // count is in 0..i32::MAX (checked above), so it fits a u32
            if writer::append_headerless(&mut self.buf, ts_delta, self.count as u32, key, value) {
                self.max_timestamp = self.max_timestamp.max(timestamp);
                self.count += 1;
                return Ok(());
            }
        }
        self.append_general(timestamp, key, value, headers)
    }

    /// Allocates the buffer, once, for the capacity asked for and at least
    /// the first record, and writes the blank header.
    #[cold]
    fn allocate(&mut self, key: Option<&[u8]>, value: Option<&[u8]>, headers: &[RecordHeader<'_>]) {
        // a record beyond i32 lengths is refused by the append: not sized for
        let first = Self::max_record_size(key, value, headers);
        let first = if first <= i32::MAX as usize { first } else { 0 };
        // `first` bounds the record's framing already: only the writer's
        // scratch is added to it
        let records = self
            .capacity
            .saturating_add(RESERVE_SLACK)
            .max(first + SCRATCH);
        self.buf = Vec::with_capacity(BATCH_HEADER_LEN.saturating_add(records));
        self.buf.resize(BATCH_HEADER_LEN, 0);
    }

    fn append_general(
        &mut self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[RecordHeader<'_>],
    ) -> Result<(), RecordError> {
        let ts_delta = zigzag64(timestamp.wrapping_sub(self.base_timestamp));
        let key_len = nullable_len(key)?;
        let value_len = nullable_len(value)?;
        let header_count = i32::try_from(headers.len()).map_err(|_| RecordError::Overflow)?;

        let mut headers_len = 0usize;
        for h in headers {
            let k = i32::try_from(h.key.len()).map_err(|_| RecordError::Overflow)?;
            let v = nullable_len(h.value)?;
            headers_len = headers_len
                .checked_add(
                    encoded_len(zigzag32(k))
                        + h.key.len()
                        + encoded_len(zigzag32(v))
                        + h.value.map_or(0, <[u8]>::len),
                )
                .ok_or(RecordError::Overflow)?;
        }
        let body_len = (1
            + encoded_len(ts_delta)
            + encoded_len(zigzag32(self.count))
            + encoded_len(zigzag32(key_len))
            + key.map_or(0, <[u8]>::len)
            + encoded_len(zigzag32(value_len))
            + value.map_or(0, <[u8]>::len)
            + encoded_len(zigzag32(header_count)))
        .checked_add(headers_len)
        .ok_or(RecordError::Overflow)?;
        let body_len = i32::try_from(body_len).map_err(|_| RecordError::Overflow)?;
        writer::append_sized(
            &mut self.buf,
            body_len,
            ts_delta,
            self.count as u32,
            key,
            value,
            headers,
        );
        self.max_timestamp = self.max_timestamp.max(timestamp);
        self.count += 1;
        Ok(())
    }

    /// Records appended so far.
    pub fn record_count(&self) -> i32 {
        self.count
    }

    /// Whether no record was appended.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Bytes of the batch so far, header included, before compression.
    pub fn size_in_bytes(&self) -> usize {
        // the header is written with the first append
        self.buf.len().max(BATCH_HEADER_LEN)
    }

    /// The codec the batch will be compressed with.
    pub fn compression(&self) -> Compression {
        self.compression
    }

    /// Finishes the batch: compresses the records and fills the header except
    /// the producer fields and the CRC, which [`ClosedBatch::stamp`] writes.
    // Inline (the compressing part is not): moving the builder into an
    // out-of-line call, and the closed batch out of it, cost a one-record
    // batch more than the header writes themselves (BENCHMARKS.md).
    #[inline]
    pub fn close(self) -> Result<ClosedBatch, RecordError> {
        if self.count == 0 {
            return Err(RecordError::EmptyBatch);
        }
        let mut buf = if self.compression == Compression::None {
            self.buf
        } else {
            compressed(self.compression, &self.buf)?
        };
        let batch_length =
            i32::try_from(buf.len() - LOG_OVERHEAD).map_err(|_| RecordError::Overflow)?;
        let attributes = Attributes {
            compression: self.compression,
            ..Attributes::default()
        };
        let h = &mut buf[..BATCH_HEADER_LEN];
        h[..8].copy_from_slice(&0i64.to_be_bytes());
        put(h, offsets::BATCH_LENGTH, &batch_length.to_be_bytes());
        put(h, offsets::PARTITION_LEADER_EPOCH, &(-1i32).to_be_bytes());
        h[offsets::MAGIC] = MAGIC_V2 as u8;
        put(
            h,
            offsets::LAST_OFFSET_DELTA,
            &(self.count - 1).to_be_bytes(),
        );
        put(
            h,
            offsets::BASE_TIMESTAMP,
            &self.base_timestamp.to_be_bytes(),
        );
        put(h, offsets::MAX_TIMESTAMP, &self.max_timestamp.to_be_bytes());
        put(h, offsets::RECORD_COUNT, &self.count.to_be_bytes());
        put(h, offsets::ATTRIBUTES, &attributes.to_bits().to_be_bytes());
        Ok(ClosedBatch {
            buf: Buf::Blank(buf),
            record_count: self.count,
            attributes,
            stamp: None,
        })
    }
}

/// A new batch buffer: a blank header, then `batch`'s records compressed.
#[inline(never)]
fn compressed(codec: Compression, batch: &[u8]) -> Result<Vec<u8>, RecordError> {
    let records = &batch[BATCH_HEADER_LEN..];
    let mut out = Vec::with_capacity(BATCH_HEADER_LEN + records.len() / 2 + 64);
    out.resize(BATCH_HEADER_LEN, 0);
    compress(codec, records, &mut out)?;
    Ok(out)
}

#[inline(always)]
fn put(h: &mut [u8], at: usize, v: &[u8]) {
    h[at..at + v.len()].copy_from_slice(v);
}

#[inline]
fn nullable_len(v: Option<&[u8]>) -> Result<i32, RecordError> {
    match v {
        None => Ok(-1),
        Some(v) => i32::try_from(v.len()).map_err(|_| RecordError::Overflow),
    }
}

/// Stamps bytes stamped before (an epoch bump): in place if no one else holds
/// them, else into a copy.
#[inline(never)]
fn restamp(bytes: Bytes, attributes: Attributes, stamp: ProducerStamp) -> Bytes {
    let mut m = match bytes.try_into_mut() {
        Ok(m) => m,
        Err(shared) => BytesMut::from(&shared[..]),
    };
    write_stamp(&mut m, attributes, stamp);
    m.freeze()
}

/// Writes the producer fields and the CRC into a whole batch.
fn write_stamp(buf: &mut [u8], attributes: Attributes, stamp: ProducerStamp) {
    let attributes = Attributes {
        transactional: stamp.transactional,
        ..attributes
    };
    put(
        buf,
        offsets::ATTRIBUTES,
        &attributes.to_bits().to_be_bytes(),
    );
    put(buf, offsets::PRODUCER_ID, &stamp.producer_id.to_be_bytes());
    put(
        buf,
        offsets::PRODUCER_EPOCH,
        &stamp.producer_epoch.to_be_bytes(),
    );
    put(
        buf,
        offsets::BASE_SEQUENCE,
        &stamp.base_sequence.to_be_bytes(),
    );
    let crc = crc32c::crc32c(&buf[CRC_START..]);
    put(buf, offsets::CRC, &crc.to_be_bytes());
}

/// A finished batch: records encoded (and compressed), header filled but for
/// the producer fields and the CRC, which the last [`ClosedBatch::stamp`]
/// wrote (blank and invalid before the first stamp: not sendable).
#[derive(Debug, Clone)]
pub struct ClosedBatch {
    // Invariant: `Buf::Blank` exactly while `stamp` is `None`.
    buf: Buf,
    record_count: i32,
    pub(super) attributes: Attributes,
    stamp: Option<ProducerStamp>,
}

/// The bytes of a closed batch.
#[derive(Debug, Clone)]
enum Buf {
    /// Before the first stamp: the builder's own vector, stamped in place
    /// and turned into `Bytes` once (one shared handle; going through
    /// `Bytes` at close would make the first stamp convert back and forth,
    /// allocating a handle each way).
    Blank(Vec<u8>),
    /// As last stamped: what was handed out to be sent.
    Stamped(Bytes),
}

impl ClosedBatch {
    /// Writes the producer fields and computes the CRC, returning the bytes to
    /// send. A plain retry (the same stamp again) returns these same bytes,
    /// without a copy or a CRC pass; stamping anew (after an epoch bump)
    /// changes only the header and re-computes the CRC, copying the batch
    /// first only if the previous bytes are still shared.
    #[inline]
    pub fn stamp(&mut self, stamp: ProducerStamp) -> Bytes {
        let bytes = match std::mem::replace(&mut self.buf, Buf::Stamped(Bytes::new())) {
            Buf::Stamped(bytes) if self.stamp == Some(stamp) => bytes,
            Buf::Blank(mut v) => {
                write_stamp(&mut v, self.attributes, stamp);
                Bytes::from(v)
            }
            Buf::Stamped(bytes) => restamp(bytes, self.attributes, stamp),
        };
        self.stamp = Some(stamp);
        self.buf = Buf::Stamped(bytes.clone());
        bytes
    }

    /// The batch bytes as last stamped (producer fields and CRC blank before
    /// the first stamp). [`ClosedBatch::stamp`] gives them as `Bytes`.
    pub fn bytes(&self) -> &[u8] {
        match &self.buf {
            Buf::Blank(v) => v,
            Buf::Stamped(b) => b,
        }
    }

    /// The producer fields last stamped, `None` before the first stamp.
    pub fn producer_stamp(&self) -> Option<ProducerStamp> {
        self.stamp
    }

    /// Records in the batch.
    pub fn record_count(&self) -> i32 {
        self.record_count
    }

    /// Size of the batch on the wire.
    pub fn len(&self) -> usize {
        self.bytes().len()
    }

    /// Always false: a closed batch holds at least one record.
    pub fn is_empty(&self) -> bool {
        self.bytes().is_empty()
    }

    /// The codec of the records section.
    pub fn compression(&self) -> Compression {
        self.attributes.compression
    }
}

/// Sets the base offset of a whole batch in place (as a broker does on
/// append). The base offset is outside the CRC, which stays valid.
pub fn set_base_offset(batch: &mut [u8], base_offset: i64) -> Result<(), RecordError> {
    match batch.get_mut(..8) {
        Some(b) => {
            b.copy_from_slice(&base_offset.to_be_bytes());
            Ok(())
        }
        None => Err(RecordError::Truncated("base offset")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::RecordBatch;

    #[test]
    fn close_and_stamp_give_valid_crc() {
        let mut b = BatchBuilder::new(Compression::None);
        b.append(1000, Some(b"k"), Some(b"v"), &[]).unwrap();
        b.append(
            999,
            None,
            Some(b"v2"),
            &[RecordHeader {
                key: "h",
                value: None,
            }],
        )
        .unwrap();
        let mut closed = b.close().unwrap();
        assert!(
            RecordBatch::decode(Bytes::copy_from_slice(closed.bytes())).is_err(),
            "no CRC yet"
        );
        assert_eq!(closed.producer_stamp(), None);
        let blank = RecordBatch::decode(closed.stamp(ProducerStamp::NONE)).unwrap();
        assert_eq!(blank.header().producer_id, -1);
        assert_eq!(blank.header().base_timestamp, 1000);
        assert_eq!(blank.header().max_timestamp, 1000);
        let s = ProducerStamp {
            producer_id: 77,
            producer_epoch: 3,
            base_sequence: 10,
            transactional: true,
        };
        let sent = closed.stamp(s);
        let d = RecordBatch::decode(sent.clone()).unwrap();
        assert_eq!(d.header().producer_id, 77);
        assert_eq!(d.header().producer_epoch, 3);
        assert_eq!(d.header().base_sequence, 10);
        assert!(d.header().attributes.transactional);
        // re-stamp while the first bytes are still held (copy path)
        let bumped = closed.stamp(ProducerStamp {
            producer_epoch: 4,
            base_sequence: 0,
            ..s
        });
        assert_eq!(&sent[61..], &bumped[61..]);
        assert_ne!(sent[17..21], bumped[17..21]);
        let d = RecordBatch::decode(bumped).unwrap();
        assert_eq!(d.header().producer_epoch, 4);
        assert_eq!(d.header().base_sequence, 0);
    }

    #[test]
    fn stamp_in_place_when_unique() {
        let mut b = BatchBuilder::new(Compression::None);
        b.append(0, None, Some(&[7; 100]), &[]).unwrap();
        let mut closed = b.close().unwrap();
        let p1 = closed.bytes().as_ptr();
        let first = closed.stamp(ProducerStamp::NONE);
        assert_eq!(p1, first.as_ptr(), "the first stamp must not copy");
        // the same stamp again (a plain retry): the same bytes
        let again = closed.stamp(ProducerStamp::NONE);
        assert_eq!(first, again);
        assert_eq!(p1, again.as_ptr());
        drop((first, again));
        let bumped = ProducerStamp {
            producer_id: 5,
            producer_epoch: 1,
            base_sequence: 0,
            transactional: false,
        };
        let b2 = closed.stamp(bumped);
        assert_eq!(
            p1,
            b2.as_ptr(),
            "re-stamping a unique batch must not copy it"
        );
        assert_eq!(RecordBatch::decode(b2).unwrap().header().producer_id, 5);
    }

    #[test]
    fn empty_batch_is_an_error() {
        assert_eq!(
            BatchBuilder::new(Compression::Lz4).close().unwrap_err(),
            RecordError::EmptyBatch
        );
    }
}
