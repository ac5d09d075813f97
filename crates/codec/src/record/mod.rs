//! Record batches, magic v2 (KIP-98 exactly-once message format; headers from
//! KIP-82; timestamps from KIP-32), our own implementation.
//!
//! Layout of a batch (big-endian, offsets in bytes):
//!
//! ```text
//!  0 base offset          i64   -- not covered by the CRC
//!  8 batch length         i32   -- bytes after this field
//! 12 partition leader ep. i32   -- not covered by the CRC
//! 16 magic (= 2)          i8
//! 17 crc                  u32   -- CRC-32C of bytes 21..end
//! 21 attributes           i16   -- compression:3 | timestamp type:1 | transactional:1 | control:1
//! 23 last offset delta    i32
//! 27 base timestamp       i64
//! 35 max timestamp        i64
//! 43 producer id          i64
//! 51 producer epoch       i16
//! 53 base sequence        i32
//! 57 record count         i32
//! 61 records (compressed as one unit when a codec is set)
//! ```
//!
//! Producer side: [`BatchBuilder`] appends records straight into an open
//! buffer; [`BatchBuilder::close`] compresses and yields a [`ClosedBatch`]
//! whose producer fields are blank; [`ClosedBatch::stamp`] writes
//! (producer id, epoch, base sequence, transactional) and the CRC. Consumer
//! side: [`RecordBatch::decode`] checks length, magic and CRC and decompresses;
//! [`RecordBatch::records`] iterates records zero-copy; [`Batches`] walks the
//! concatenated batches of a Fetch response.

mod control;
mod decode;
mod encode;
#[cfg(test)]
mod encode_props;
pub(crate) mod varint;
// The crate's one measured unsafe hot spot (see its module doc and
// BENCHMARKS.md): records written into the batch vector's spare capacity.
#[allow(unsafe_code)]
mod writer;

use crate::compression::Compression;

pub use control::{encode_control_batch, ControlRecord, ControlRecordKind};
pub use decode::{
    BatchHeader, Batches, DecodeOptions, Header, Headers, Record, RecordBatch, Records,
};
pub use encode::{set_base_offset, BatchBuilder, ClosedBatch, ProducerStamp, RecordHeader};

/// The magic byte of the v2 format.
pub const MAGIC_V2: i8 = 2;
/// Size of the batch header, up to and including the record count.
pub const BATCH_HEADER_LEN: usize = 61;
/// Size of the base offset and batch length fields, which the batch length
/// does not count.
pub const LOG_OVERHEAD: usize = 12;
/// Smallest valid batch length (a header with no records).
pub const MIN_BATCH_LENGTH: i32 = (BATCH_HEADER_LEN - LOG_OVERHEAD) as i32;
/// Where the CRC-covered part of a batch starts.
pub(crate) const CRC_START: usize = 21;

pub(crate) mod offsets {
    pub(crate) const BATCH_LENGTH: usize = 8;
    pub(crate) const PARTITION_LEADER_EPOCH: usize = 12;
    pub(crate) const MAGIC: usize = 16;
    pub(crate) const CRC: usize = 17;
    pub(crate) const ATTRIBUTES: usize = 21;
    pub(crate) const LAST_OFFSET_DELTA: usize = 23;
    pub(crate) const BASE_TIMESTAMP: usize = 27;
    pub(crate) const MAX_TIMESTAMP: usize = 35;
    pub(crate) const PRODUCER_ID: usize = 43;
    pub(crate) const PRODUCER_EPOCH: usize = 51;
    pub(crate) const BASE_SEQUENCE: usize = 53;
    pub(crate) const RECORD_COUNT: usize = 57;
}

/// How a batch's timestamps were assigned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TimestampType {
    /// The producer's timestamps (`CreateTime`).
    #[default]
    CreateTime,
    /// The broker's append time (`LogAppendTime`): every record's timestamp is
    /// the batch's max timestamp.
    LogAppendTime,
}

/// The attributes field of a batch header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Attributes {
    /// The codec of the records section.
    pub compression: Compression,
    /// How timestamps were assigned.
    pub timestamp_type: TimestampType,
    /// Part of a transaction.
    pub transactional: bool,
    /// A control batch (transaction markers).
    pub control: bool,
    /// The batch carries a delete horizon in its base timestamp (KIP-534).
    pub delete_horizon: bool,
}

impl Attributes {
    /// Encodes to the wire's `int16`.
    pub const fn to_bits(self) -> i16 {
        let mut b = self.compression.id() as i16;
        if matches!(self.timestamp_type, TimestampType::LogAppendTime) {
            b |= 1 << 3;
        }
        if self.transactional {
            b |= 1 << 4;
        }
        if self.control {
            b |= 1 << 5;
        }
        if self.delete_horizon {
            b |= 1 << 6;
        }
        b
    }

    /// Decodes the wire's `int16` (unknown high bits are ignored, as the
    /// broker does; an unknown codec id is an error).
    pub fn from_bits(bits: i16) -> Result<Self, RecordError> {
        let compression = Compression::from_id((bits & 7) as u8)?;
        Ok(Self {
            compression,
            timestamp_type: if bits & (1 << 3) != 0 {
                TimestampType::LogAppendTime
            } else {
                TimestampType::CreateTime
            },
            transactional: bits & (1 << 4) != 0,
            control: bits & (1 << 5) != 0,
            delete_horizon: bits & (1 << 6) != 0,
        })
    }
}

/// What is wrong with a record batch or a record. No variant carries input
/// bytes; each names the field at fault.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecordError {
    /// The input ended inside the named field.
    #[error("truncated {0}")]
    Truncated(&'static str),
    /// A batch length below the header size or negative.
    #[error("invalid batch length {0}")]
    InvalidBatchLength(i32),
    /// A batch length beyond the configured maximum.
    #[error("batch length {length} exceeds the maximum of {max} bytes")]
    BatchTooLarge {
        /// The declared length.
        length: i32,
        /// The configured maximum.
        max: usize,
    },
    /// A magic byte other than 2.
    #[error("unsupported record batch magic {0}")]
    UnsupportedMagic(i8),
    /// The CRC-32C does not match the bytes.
    #[error("crc mismatch: header says {expected:#010x}, bytes give {computed:#010x}")]
    CrcMismatch {
        /// The CRC in the header.
        expected: u32,
        /// The CRC of the bytes.
        computed: u32,
    },
    /// A codec id 5..=7.
    #[error("unknown compression codec id {0}")]
    UnknownCompression(u8),
    /// The records section could not be decompressed.
    #[error("{codec} decompression failed: {reason}")]
    Decompress {
        /// The codec.
        codec: Compression,
        /// What the codec reported.
        reason: String,
    },
    /// Decompression would exceed the cap (a decompression bomb).
    #[error("{codec} output exceeds the cap of {max} bytes")]
    DecompressedTooLarge {
        /// The codec.
        codec: Compression,
        /// The cap.
        max: usize,
    },
    /// Compression failed (should not happen with in-memory buffers).
    #[error("{codec} compression failed: {reason}")]
    Compress {
        /// The codec.
        codec: Compression,
        /// What the codec reported.
        reason: String,
    },
    /// A varint with more continuation bytes than its width allows.
    #[error("varint longer than its maximum width")]
    VarintTooLong,
    /// A varint whose value does not fit its width.
    #[error("varint overflows its width")]
    VarintOverflow,
    /// A negative record count, or one the remaining bytes cannot hold.
    #[error("record count {count} impossible in {bytes} bytes of records")]
    InvalidRecordCount {
        /// The declared count.
        count: i32,
        /// The bytes of the (decompressed) records section.
        bytes: usize,
    },
    /// Fewer or more records than the header declares.
    #[error("header declares {declared} records, the records section holds {found}")]
    RecordCountMismatch {
        /// The declared count.
        declared: i32,
        /// What was found before the error.
        found: i32,
    },
    /// A length that is negative where null is not allowed, or that runs past
    /// its enclosing record.
    #[error("invalid {field} length {len}")]
    InvalidLength {
        /// The field.
        field: &'static str,
        /// The declared length.
        len: i64,
    },
    /// A record's fields do not fill exactly its declared length.
    #[error("record fields end {0} bytes before the record's declared end")]
    RecordTrailingBytes(usize),
    /// A negative base offset, or a record offset delta outside
    /// `0..=last offset delta`.
    #[error("invalid offset: {0}")]
    InvalidOffset(&'static str),
    /// A control batch whose record is not a valid control record.
    #[error("malformed control record: {0}")]
    MalformedControl(&'static str),
    /// The operation needs a batch with at least one record.
    #[error("empty batch")]
    EmptyBatch,
    /// Bytes left in the records section after the declared records.
    #[error("{0} bytes follow the last declared record")]
    BatchTrailingBytes(usize),
    /// A header key that is not UTF-8.
    #[error("{0} is not valid UTF-8")]
    InvalidUtf8(&'static str),
    /// The batch would exceed `i32` lengths or counts.
    #[error("batch too large to encode")]
    Overflow,
    /// A non-empty records section without one complete batch. Since
    /// KIP-74 (Fetch v3) a broker replaces an incomplete first batch with an
    /// empty answer, so this is a batch whose length field lies (or a broker
    /// bug); fetching again would get the same bytes forever.
    #[error("{0} bytes of records hold no complete batch (a batch length that lies?)")]
    NoCompleteBatch(usize),
}
