//! What the user sends ([`ProducerRecord`]) and what a delivery tells
//! ([`RecordMetadata`]).
//!
//! A record borrows its topic, key, value and headers: `send` encodes them
//! straight into the open batch of their partition (exactly-codec's
//! `BatchBuilder`), so nothing is copied or allocated per record on the way.

pub use exactly_codec::record::RecordHeader;

/// A record to send. Build it with [`ProducerRecord::new`] and the `with_*`
/// methods.
///
/// ```
/// use exactly_producer::ProducerRecord;
///
/// let record = ProducerRecord::new("orders")
///     .with_key(b"customer-42")
///     .with_value(b"{\"total\": 10}")
///     .with_header("source", Some(b"web"))
///     .with_timestamp(1_700_000_000_000);
/// assert_eq!(record.topic(), "orders");
/// assert_eq!(record.partition(), None);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerRecord<'a> {
    pub(crate) topic: &'a str,
    pub(crate) partition: Option<i32>,
    pub(crate) key: Option<&'a [u8]>,
    pub(crate) value: Option<&'a [u8]>,
    pub(crate) headers: Vec<RecordHeader<'a>>,
    pub(crate) timestamp: Option<i64>,
}

impl<'a> ProducerRecord<'a> {
    /// A record for `topic` with a null key and a null value.
    pub fn new(topic: &'a str) -> Self {
        Self {
            topic,
            partition: None,
            key: None,
            value: None,
            headers: Vec::new(),
            timestamp: None,
        }
    }

    /// Sends to this partition instead of the partitioner's choice.
    pub fn with_partition(mut self, partition: i32) -> Self {
        self.partition = Some(partition);
        self
    }

    /// The key (keyed records are partitioned by murmur2 of it, as the Java
    /// client does).
    pub fn with_key(mut self, key: &'a [u8]) -> Self {
        self.key = Some(key);
        self
    }

    /// The value.
    pub fn with_value(mut self, value: &'a [u8]) -> Self {
        self.value = Some(value);
        self
    }

    /// Appends a header (KIP-82); `None` is a null header value.
    pub fn with_header(mut self, key: &'a str, value: Option<&'a [u8]>) -> Self {
        self.headers.push(RecordHeader { key, value });
        self
    }

    /// The record's timestamp (`CreateTime`, ms since the epoch); the send
    /// time when not set.
    pub fn with_timestamp(mut self, timestamp_ms: i64) -> Self {
        self.timestamp = Some(timestamp_ms);
        self
    }

    /// The topic.
    pub fn topic(&self) -> &str {
        self.topic
    }
    /// The explicit partition, if any.
    pub fn partition(&self) -> Option<i32> {
        self.partition
    }
    /// The key.
    pub fn key(&self) -> Option<&[u8]> {
        self.key
    }
    /// The value.
    pub fn value(&self) -> Option<&[u8]> {
        self.value
    }
    /// The headers.
    pub fn headers(&self) -> &[RecordHeader<'a>] {
        &self.headers
    }
    /// The explicit timestamp, if any.
    pub fn timestamp(&self) -> Option<i64> {
        self.timestamp
    }
}

/// Where a record landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RecordMetadata {
    /// The partition.
    pub partition: i32,
    /// The record's offset. `None` when the broker did not say: a retried
    /// batch the broker recognised as already written
    /// (DUPLICATE_SEQUENCE_NUMBER), or `acks=0`.
    pub offset: Option<i64>,
    /// The record's timestamp: its `CreateTime`, or the broker's append time
    /// when the topic uses `LogAppendTime`.
    pub timestamp: i64,
}
