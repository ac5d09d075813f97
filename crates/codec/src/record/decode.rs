//! Reading v2 batches zero-copy.
//!
//! [`RecordBatch::decode`] checks, in this order, that the header is whole,
//! the batch length matches, the magic is 2, the CRC-32C matches, the
//! attributes name a known codec, the offsets are sane, and decompresses the
//! records (capped). [`Records`] then parses one record per `next()`: keys,
//! values and headers are slices of the batch's buffer (borrowed `&[u8]`, or
//! `Bytes` via [`Record::key_bytes`] and friends, both without copying);
//! headers are parsed only when iterated. Nothing is allocated per record.

use bytes::Bytes;

use super::control::ControlRecord;
use super::varint::{get_varint, get_varlong};
use super::{
    offsets, Attributes, RecordError, TimestampType, BATCH_HEADER_LEN, CRC_START, LOG_OVERHEAD,
    MAGIC_V2, MIN_BATCH_LENGTH,
};
use crate::compression::{decompress, Compression, DEFAULT_MAX_DECOMPRESSED_SIZE};

/// The smallest encoded record: a 1-byte length and six 1-byte fields.
const MIN_RECORD_LEN: usize = 7;

/// Limits applied while decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeOptions {
    /// Cap on a batch's decompressed records section.
    pub max_decompressed_size: usize,
    /// Whether to verify the CRC-32C (on by default; only benches of the
    /// parser alone turn it off).
    pub verify_crc: bool,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        Self {
            max_decompressed_size: DEFAULT_MAX_DECOMPRESSED_SIZE,
            verify_crc: true,
        }
    }
}

/// The fixed header of a v2 batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    /// Offset of the first record.
    pub base_offset: i64,
    /// Bytes after the length field.
    pub batch_length: i32,
    /// The leader epoch the batch was appended under (-1 from producers).
    pub partition_leader_epoch: i32,
    /// Always 2.
    pub magic: i8,
    /// The CRC-32C in the header (verified).
    pub crc: u32,
    /// Codec, timestamp type, transactional and control flags.
    pub attributes: Attributes,
    /// Offset of the last record relative to the base offset.
    pub last_offset_delta: i32,
    /// Timestamp of the first record (or the delete horizon, KIP-534).
    pub base_timestamp: i64,
    /// Largest timestamp in the batch.
    pub max_timestamp: i64,
    /// Producer id (-1 when not idempotent).
    pub producer_id: i64,
    /// Producer epoch.
    pub producer_epoch: i16,
    /// Sequence of the first record.
    pub base_sequence: i32,
    /// Records in the batch.
    pub record_count: i32,
}

fn i16_at(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}
fn i32_at(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn i64_at(b: &[u8], at: usize) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    i64::from_be_bytes(a)
}

impl BatchHeader {
    /// Parses the 61-byte header at the front of `b` (no CRC check).
    pub fn parse(b: &[u8]) -> Result<Self, RecordError> {
        let Some(b) = b.get(..BATCH_HEADER_LEN) else {
            return Err(RecordError::Truncated("batch header"));
        };
        let magic = b[offsets::MAGIC] as i8;
        if magic != MAGIC_V2 {
            return Err(RecordError::UnsupportedMagic(magic));
        }
        Ok(Self {
            base_offset: i64_at(b, 0),
            batch_length: i32_at(b, offsets::BATCH_LENGTH),
            partition_leader_epoch: i32_at(b, offsets::PARTITION_LEADER_EPOCH),
            magic,
            crc: i32_at(b, offsets::CRC) as u32,
            attributes: Attributes::from_bits(i16_at(b, offsets::ATTRIBUTES))?,
            last_offset_delta: i32_at(b, offsets::LAST_OFFSET_DELTA),
            base_timestamp: i64_at(b, offsets::BASE_TIMESTAMP),
            max_timestamp: i64_at(b, offsets::MAX_TIMESTAMP),
            producer_id: i64_at(b, offsets::PRODUCER_ID),
            producer_epoch: i16_at(b, offsets::PRODUCER_EPOCH),
            base_sequence: i32_at(b, offsets::BASE_SEQUENCE),
            record_count: i32_at(b, offsets::RECORD_COUNT),
        })
    }

    /// Offset of the last record (`base + last offset delta`).
    pub fn last_offset(&self) -> i64 {
        self.base_offset + i64::from(self.last_offset_delta)
    }

    /// The offset after this batch.
    pub fn next_offset(&self) -> i64 {
        self.last_offset() + 1
    }
}

/// One decoded batch: its header and its (decompressed) records section.
#[derive(Debug, Clone)]
pub struct RecordBatch {
    header: BatchHeader,
    raw: Bytes,
    records: Bytes,
}

impl RecordBatch {
    /// Decodes exactly one batch with the default limits.
    pub fn decode(raw: Bytes) -> Result<Self, RecordError> {
        Self::decode_with(raw, &DecodeOptions::default())
    }

    /// Decodes exactly one batch (`raw` must be the whole batch, no more).
    pub fn decode_with(raw: Bytes, opts: &DecodeOptions) -> Result<Self, RecordError> {
        if raw.len() < LOG_OVERHEAD {
            return Err(RecordError::Truncated("batch header"));
        }
        if let Some(&magic) = raw.get(offsets::MAGIC) {
            if magic as i8 != MAGIC_V2 {
                return Err(RecordError::UnsupportedMagic(magic as i8));
            }
        }
        let length = i32_at(&raw, offsets::BATCH_LENGTH);
        if length < MIN_BATCH_LENGTH {
            return Err(RecordError::InvalidBatchLength(length));
        }
        let total = LOG_OVERHEAD + length as usize;
        if raw.len() < total {
            return Err(RecordError::Truncated("batch"));
        }
        if raw.len() > total {
            return Err(RecordError::BatchTrailingBytes(raw.len() - total));
        }
        let header = BatchHeader::parse(&raw)?;
        if opts.verify_crc {
            let computed = crc32c::crc32c(&raw[CRC_START..]);
            if computed != header.crc {
                return Err(RecordError::CrcMismatch {
                    expected: header.crc,
                    computed,
                });
            }
        }
        if header.base_offset < 0 {
            return Err(RecordError::InvalidOffset("negative base offset"));
        }
        // `next_offset()` (base + delta + 1) must fit an i64 too.
        if header.last_offset_delta < 0
            || header
                .base_offset
                .checked_add(i64::from(header.last_offset_delta) + 1)
                .is_none()
        {
            return Err(RecordError::InvalidOffset("invalid last offset delta"));
        }
        let records = match header.attributes.compression {
            Compression::None => raw.slice(BATCH_HEADER_LEN..),
            codec => Bytes::from(decompress(
                codec,
                &raw[BATCH_HEADER_LEN..],
                opts.max_decompressed_size,
            )?),
        };
        let count = header.record_count;
        if count < 0 || count as usize > records.len() / MIN_RECORD_LEN {
            return Err(RecordError::InvalidRecordCount {
                count,
                bytes: records.len(),
            });
        }
        Ok(Self {
            header,
            raw,
            records,
        })
    }

    /// The header.
    pub fn header(&self) -> &BatchHeader {
        &self.header
    }

    /// The batch as received (compressed, if it was).
    pub fn raw(&self) -> &Bytes {
        &self.raw
    }

    /// The records section, decompressed.
    pub fn records_section(&self) -> &Bytes {
        &self.records
    }

    /// Iterates the records, parsing each on demand.
    pub fn records(&self) -> Records<'_> {
        let h = &self.header;
        Records {
            src: &self.records,
            pos: 0,
            index: 0,
            declared: h.record_count,
            base_offset: h.base_offset,
            base_timestamp: h.base_timestamp,
            log_append_time: match h.attributes.timestamp_type {
                TimestampType::LogAppendTime => Some(h.max_timestamp),
                TimestampType::CreateTime => None,
            },
            last_offset_delta: h.last_offset_delta,
            done: false,
        }
    }

    /// For a control batch, its control record; `None` for a data batch.
    pub fn control_record(&self) -> Result<Option<ControlRecord>, RecordError> {
        if !self.header.attributes.control {
            return Ok(None);
        }
        match self.records().next() {
            Some(Ok(r)) => ControlRecord::decode(r.key(), r.value()).map(Some),
            Some(Err(e)) => Err(e),
            None => Err(RecordError::MalformedControl(
                "control batch without a record",
            )),
        }
    }
}

/// A record borrowed from its batch.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    src: &'a Bytes,
    offset: i64,
    timestamp: i64,
    key: Option<&'a [u8]>,
    value: Option<&'a [u8]>,
    headers: &'a [u8],
    header_count: i32,
}

impl<'a> Record<'a> {
    /// The record's offset.
    pub fn offset(&self) -> i64 {
        self.offset
    }

    /// The record's timestamp (the batch's max timestamp under
    /// `LogAppendTime`).
    pub fn timestamp(&self) -> i64 {
        self.timestamp
    }

    /// The key (`None` = null).
    pub fn key(&self) -> Option<&'a [u8]> {
        self.key
    }

    /// The value (`None` = null, a tombstone).
    pub fn value(&self) -> Option<&'a [u8]> {
        self.value
    }

    /// The key as a `Bytes` sharing the batch's buffer (no copy).
    pub fn key_bytes(&self) -> Option<Bytes> {
        self.key.map(|k| self.src.slice_ref(k))
    }

    /// The value as a `Bytes` sharing the batch's buffer (no copy).
    pub fn value_bytes(&self) -> Option<Bytes> {
        self.value.map(|v| self.src.slice_ref(v))
    }

    /// How many headers the record declares.
    pub fn header_count(&self) -> i32 {
        self.header_count
    }

    /// Iterates the headers, parsing each on demand.
    pub fn headers(&self) -> Headers<'a> {
        Headers {
            src: self.src,
            buf: self.headers,
            pos: 0,
            left: self.header_count,
            done: false,
        }
    }
}

#[inline(always)]
fn nullable<'a>(
    buf: &'a [u8],
    pos: &mut usize,
    field: &'static str,
) -> Result<Option<&'a [u8]>, RecordError> {
    let len = get_varint(buf, pos)?;
    if len < 0 {
        if len == -1 {
            return Ok(None);
        }
        return Err(RecordError::InvalidLength {
            field,
            len: i64::from(len),
        });
    }
    let end = *pos + len as usize;
    match buf.get(*pos..end) {
        Some(s) => {
            *pos = end;
            Ok(Some(s))
        }
        None => Err(RecordError::InvalidLength {
            field,
            len: i64::from(len),
        }),
    }
}

/// Iterator over a batch's records. Stops after the first error.
#[derive(Debug, Clone)]
pub struct Records<'a> {
    src: &'a Bytes,
    pos: usize,
    index: i32,
    declared: i32,
    base_offset: i64,
    base_timestamp: i64,
    log_append_time: Option<i64>,
    last_offset_delta: i32,
    done: bool,
}

impl<'a> Records<'a> {
    #[inline(always)]
    fn parse(&mut self) -> Result<Record<'a>, RecordError> {
        let data: &'a [u8] = self.src;
        let mut pos = self.pos;
        let len = get_varint(data, &mut pos)?;
        let end = pos.wrapping_add(len as usize);
        if len < (MIN_RECORD_LEN as i32 - 1) || end > data.len() {
            return Err(RecordError::InvalidLength {
                field: "record",
                len: i64::from(len),
            });
        }
        let rec = &data[..end];
        pos += 1; // record attributes: unused in v2
        let ts_delta = get_varlong(rec, &mut pos)?;
        let offset_delta = get_varint(rec, &mut pos)?;
        if offset_delta < 0 || offset_delta > self.last_offset_delta {
            return Err(RecordError::InvalidOffset(
                "record offset delta out of range",
            ));
        }
        let key = nullable(rec, &mut pos, "key")?;
        let value = nullable(rec, &mut pos, "value")?;
        let header_count = get_varint(rec, &mut pos)?;
        let left = end.saturating_sub(pos);
        if header_count < 0 || header_count as usize > left / 2 {
            return Err(RecordError::InvalidLength {
                field: "header count",
                len: i64::from(header_count),
            });
        }
        if header_count == 0 && left != 0 {
            return Err(RecordError::RecordTrailingBytes(left));
        }
        let headers = &rec[pos.min(end)..];
        self.pos = end;
        Ok(Record {
            src: self.src,
            offset: self.base_offset + i64::from(offset_delta),
            timestamp: match self.log_append_time {
                Some(t) => t,
                None => self.base_timestamp.wrapping_add(ts_delta),
            },
            key,
            value,
            headers,
            header_count,
        })
    }
}

impl<'a> Iterator for Records<'a> {
    type Item = Result<Record<'a>, RecordError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        if self.index == self.declared {
            self.done = true;
            let left = self.src.len() - self.pos;
            return (left != 0).then_some(Err(RecordError::BatchTrailingBytes(left)));
        }
        if self.pos >= self.src.len() {
            self.done = true;
            return Some(Err(RecordError::RecordCountMismatch {
                declared: self.declared,
                found: self.index,
            }));
        }
        match self.parse() {
            Ok(r) => {
                self.index += 1;
                Some(Ok(r))
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = (self.declared - self.index).max(0) as usize;
        (0, Some(left + 1))
    }
}

/// A record header borrowed from its record.
#[derive(Debug, Clone, Copy)]
pub struct Header<'a> {
    src: &'a Bytes,
    key: &'a [u8],
    value: Option<&'a [u8]>,
}

impl<'a> Header<'a> {
    /// The key's bytes (UTF-8 by contract, see [`Header::key_str`]).
    pub fn key(&self) -> &'a [u8] {
        self.key
    }

    /// The key as a string; not UTF-8 is an error.
    pub fn key_str(&self) -> Result<&'a str, RecordError> {
        std::str::from_utf8(self.key).map_err(|_| RecordError::InvalidUtf8("header key"))
    }

    /// The value (`None` = null).
    pub fn value(&self) -> Option<&'a [u8]> {
        self.value
    }

    /// The value as a `Bytes` sharing the batch's buffer (no copy).
    pub fn value_bytes(&self) -> Option<Bytes> {
        self.value.map(|v| self.src.slice_ref(v))
    }
}

/// Iterator over a record's headers. Stops after the first error.
#[derive(Debug, Clone)]
pub struct Headers<'a> {
    src: &'a Bytes,
    buf: &'a [u8],
    pos: usize,
    left: i32,
    done: bool,
}

impl<'a> Iterator for Headers<'a> {
    type Item = Result<Header<'a>, RecordError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        if self.left == 0 {
            self.done = true;
            let extra = self.buf.len() - self.pos;
            return (extra != 0).then_some(Err(RecordError::RecordTrailingBytes(extra)));
        }
        let r = (|| {
            let key = match nullable(self.buf, &mut self.pos, "header key")? {
                Some(k) => k,
                None => {
                    return Err(RecordError::InvalidLength {
                        field: "header key",
                        len: -1,
                    })
                }
            };
            let value = nullable(self.buf, &mut self.pos, "header value")?;
            Ok(Header {
                src: self.src,
                key,
                value,
            })
        })();
        self.left -= 1;
        if r.is_err() {
            self.done = true;
        }
        Some(r)
    }
}

/// Iterator over the concatenated batches of a records set (a Fetch
/// partition's `records`). A partial batch at the end (the broker cuts at the
/// fetch size) ends the iteration quietly; a malformed batch is an error, after
/// which the iteration stops.
#[derive(Debug, Clone)]
pub struct Batches {
    buf: Bytes,
    pos: usize,
    opts: DecodeOptions,
    done: bool,
}

impl Batches {
    /// Iterates the batches of `records` with the default limits.
    pub fn new(records: Bytes) -> Self {
        Self::with_options(records, DecodeOptions::default())
    }

    /// Iterates the batches of `records` with `opts`.
    pub fn with_options(records: Bytes, opts: DecodeOptions) -> Self {
        Self {
            buf: records,
            pos: 0,
            opts,
            done: false,
        }
    }

    /// Bytes not consumed by whole batches so far (a trailing partial batch
    /// once the iteration ended).
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }
}

impl Iterator for Batches {
    type Item = Result<RecordBatch, RecordError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let rest = &self.buf[self.pos..];
        if rest.len() < LOG_OVERHEAD {
            self.done = true;
            return None;
        }
        // Legacy message sets (magic 0 and 1) keep the magic at the same
        // place: name the format before judging a length it defines otherwise.
        if let Some(&magic) = rest.get(offsets::MAGIC) {
            if magic as i8 != MAGIC_V2 {
                self.done = true;
                return Some(Err(RecordError::UnsupportedMagic(magic as i8)));
            }
        }
        let length = i32_at(rest, offsets::BATCH_LENGTH);
        if length < MIN_BATCH_LENGTH {
            self.done = true;
            return Some(Err(RecordError::InvalidBatchLength(length)));
        }
        let total = LOG_OVERHEAD + length as usize;
        if rest.len() < total {
            self.done = true;
            return None;
        }
        let raw = self.buf.slice(self.pos..self.pos + total);
        self.pos += total;
        let r = RecordBatch::decode_with(raw, &self.opts);
        if r.is_err() {
            self.done = true;
        }
        Some(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{BatchBuilder, ProducerStamp, RecordHeader};

    fn batch(codec: Compression) -> Bytes {
        let mut b = BatchBuilder::new(codec);
        b.append(10, Some(b"k0"), Some(b"v0"), &[]).unwrap();
        b.append(
            12,
            None,
            None,
            &[
                RecordHeader {
                    key: "a",
                    value: Some(b"1"),
                },
                RecordHeader {
                    key: "b",
                    value: None,
                },
            ],
        )
        .unwrap();
        let mut c = b.close().unwrap();
        c.stamp(ProducerStamp {
            producer_id: 5,
            producer_epoch: 1,
            base_sequence: 0,
            transactional: false,
        })
    }

    #[test]
    fn decode_records_and_headers() {
        for codec in Compression::ALL {
            let d = RecordBatch::decode(batch(codec)).unwrap();
            assert_eq!(d.header().attributes.compression, codec);
            let recs: Vec<_> = d.records().collect::<Result<_, _>>().unwrap();
            assert_eq!(recs.len(), 2);
            assert_eq!(recs[0].key(), Some(&b"k0"[..]));
            assert_eq!(recs[0].value_bytes().as_deref(), Some(&b"v0"[..]));
            assert_eq!((recs[1].offset(), recs[1].timestamp()), (1, 12));
            assert_eq!((recs[1].key(), recs[1].value()), (None, None));
            let hs: Vec<_> = recs[1].headers().collect::<Result<_, _>>().unwrap();
            assert_eq!(hs[0].key_str().unwrap(), "a");
            assert_eq!(hs[0].value(), Some(&b"1"[..]));
            assert_eq!((hs[1].key(), hs[1].value()), (&b"b"[..], None));
            assert_eq!(d.header().max_timestamp, 12);
            assert_eq!(d.header().last_offset(), 1);
        }
    }

    #[test]
    fn batches_skip_a_trailing_partial_batch() {
        let one = batch(Compression::None);
        let mut set = Vec::new();
        set.extend_from_slice(&one);
        set.extend_from_slice(&batch(Compression::Lz4));
        set.extend_from_slice(&one[..one.len() - 1]);
        let mut it = Batches::new(Bytes::from(set));
        assert_eq!(it.next().unwrap().unwrap().header().record_count, 2);
        assert!(it.next().unwrap().is_ok());
        assert!(it.next().is_none());
        assert_eq!(it.remaining(), one.len() - 1);
    }
}
