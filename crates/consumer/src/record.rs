//! What [`crate::Consumer::poll`] hands out: records whose keys, values and
//! header values are slices of the fetched buffer (`Bytes`, no copy).

use std::sync::Arc;

use bytes::Bytes;
pub use exactly_codec::record::TimestampType;

/// One record header (KIP-82). The key is UTF-8 by contract; it is kept as
/// bytes and checked only when asked for as a string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordHeader {
    key: Bytes,
    value: Option<Bytes>,
}

impl RecordHeader {
    pub(crate) fn new(key: Bytes, value: Option<Bytes>) -> Self {
        Self { key, value }
    }

    /// The key's bytes.
    pub fn key(&self) -> &[u8] {
        &self.key
    }

    /// The key as a string; an error if it is not UTF-8.
    pub fn key_str(&self) -> Result<&str, std::str::Utf8Error> {
        std::str::from_utf8(&self.key)
    }

    /// The value (`None` = null).
    pub fn value(&self) -> Option<&Bytes> {
        self.value.as_ref()
    }
}

/// A consumed record. Its key, value and header values share the buffer
/// of the Fetch response they came in (or of their batch's decompressed
/// section): holding a record keeps that buffer alive; copy what must
/// outlive it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerRecord {
    pub(crate) topic: Arc<str>,
    pub(crate) partition: i32,
    pub(crate) offset: i64,
    pub(crate) timestamp: i64,
    pub(crate) timestamp_type: TimestampType,
    pub(crate) leader_epoch: Option<i32>,
    pub(crate) key: Option<Bytes>,
    pub(crate) value: Option<Bytes>,
    pub(crate) headers: Vec<RecordHeader>,
}

impl ConsumerRecord {
    /// The topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }
    /// The partition.
    pub fn partition(&self) -> i32 {
        self.partition
    }
    /// The offset.
    pub fn offset(&self) -> i64 {
        self.offset
    }
    /// The timestamp in milliseconds since the epoch.
    pub fn timestamp(&self) -> i64 {
        self.timestamp
    }
    /// Whether the timestamp is the producer's or the broker's.
    pub fn timestamp_type(&self) -> TimestampType {
        self.timestamp_type
    }
    /// The leader epoch the record was written under (KIP-320), when the
    /// broker stamped one.
    pub fn leader_epoch(&self) -> Option<i32> {
        self.leader_epoch
    }
    /// The key (`None` = null). A slice of the fetched buffer.
    pub fn key(&self) -> Option<&Bytes> {
        self.key.as_ref()
    }
    /// The value (`None` = null, a tombstone). A slice of the fetched buffer.
    pub fn value(&self) -> Option<&Bytes> {
        self.value.as_ref()
    }
    /// The headers, in order.
    pub fn headers(&self) -> &[RecordHeader] {
        &self.headers
    }
    /// The topic partition.
    pub fn topic_partition(&self) -> crate::TopicPartition {
        crate::TopicPartition::new(&*self.topic, self.partition)
    }
    /// Takes the value out (no copy).
    pub fn into_value(self) -> Option<Bytes> {
        self.value
    }
}

/// Building a record by hand: for testing handlers and deduplicators
/// without a broker. A consumer never hands these out.
impl ConsumerRecord {
    /// A record of `topic`/`partition` at `offset`: timestamp 0
    /// (create time), no leader epoch, null key and value, no headers.
    pub fn new(topic: &str, partition: i32, offset: i64) -> Self {
        Self {
            topic: Arc::from(topic),
            partition,
            offset,
            timestamp: 0,
            timestamp_type: TimestampType::CreateTime,
            leader_epoch: None,
            key: None,
            value: None,
            headers: Vec::new(),
        }
    }
    /// With this (create-time) timestamp.
    pub fn with_timestamp(mut self, timestamp: i64) -> Self {
        self.timestamp = timestamp;
        self
    }
    /// With this key.
    pub fn with_key(mut self, key: impl Into<Bytes>) -> Self {
        self.key = Some(key.into());
        self
    }
    /// With this value.
    pub fn with_value(mut self, value: impl Into<Bytes>) -> Self {
        self.value = Some(value.into());
        self
    }
    /// With one more header.
    pub fn with_header(mut self, key: impl Into<Bytes>, value: Option<Bytes>) -> Self {
        self.headers.push(RecordHeader::new(key.into(), value));
        self
    }
}

/// The records one poll returned, in fetch order (per partition, in offset
/// order).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Records {
    records: Vec<ConsumerRecord>,
}

impl Records {
    pub(crate) fn new(records: Vec<ConsumerRecord>) -> Self {
        Self { records }
    }

    /// The number of records.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Iterates the records.
    pub fn iter(&self) -> std::slice::Iter<'_, ConsumerRecord> {
        self.records.iter()
    }

    /// The records as a slice.
    pub fn as_slice(&self) -> &[ConsumerRecord] {
        &self.records
    }

    /// The records of one partition.
    pub fn for_partition<'a>(
        &'a self,
        topic: &'a str,
        partition: i32,
    ) -> impl Iterator<Item = &'a ConsumerRecord> + 'a {
        self.records
            .iter()
            .filter(move |r| r.partition == partition && &*r.topic == topic)
    }
}

impl IntoIterator for Records {
    type Item = ConsumerRecord;
    type IntoIter = std::vec::IntoIter<ConsumerRecord>;
    fn into_iter(self) -> Self::IntoIter {
        self.records.into_iter()
    }
}

impl<'a> IntoIterator for &'a Records {
    type Item = &'a ConsumerRecord;
    type IntoIter = std::slice::Iter<'a, ConsumerRecord>;
    fn into_iter(self) -> Self::IntoIter {
        self.records.iter()
    }
}
