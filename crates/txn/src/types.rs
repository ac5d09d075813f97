//! Plain values the core speaks in: virtual time, identities, partitions,
//! batch and request handles, group metadata and offsets.

use std::fmt;

/// A point in time, in milliseconds, on whatever clock the driver uses.
///
/// The core never reads a clock: every input carries `now` as a `Millis`, so a
/// simulation can run on a virtual clock and a replay reproduces a session.
/// Only differences and comparisons matter; the origin is the driver's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Millis(pub u64);

impl Millis {
    /// `self + ms`, saturating at `u64::MAX`.
    pub const fn plus(self, ms: u64) -> Millis {
        Millis(self.0.saturating_add(ms))
    }
}

impl fmt::Display for Millis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ms", self.0)
    }
}

/// The handle of one [`add_offsets`](crate::ProducerCore::add_offsets)
/// call: [`Event::OffsetsCommitted`](crate::Event::OffsetsCommitted) names
/// it once its TxnOffsetCommit succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OffsetsId(pub u64);

/// A producer id and epoch as the broker assigned them (KIP-98).
///
/// Every request the core emits carries the identity it was issued under, and
/// every response is judged against that identity, never against the current
/// one (a zombie's late answer cannot move the current state).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProducerIdentity {
    /// The producer id.
    pub producer_id: i64,
    /// The producer epoch; never negative, never wrapped (rotation instead).
    pub epoch: i16,
}

impl ProducerIdentity {
    /// A new identity.
    pub const fn new(producer_id: i64, epoch: i16) -> Self {
        Self { producer_id, epoch }
    }

    /// The identity with the epoch bumped by one, or `None` when the epoch is
    /// exhausted (`i16::MAX`) and the producer id must rotate (librdkafka
    /// #3720, KAFKA-19367: never wrap an epoch).
    pub fn bumped(self) -> Option<Self> {
        if self.epoch == i16::MAX || self.epoch < 0 {
            None
        } else {
            Some(Self::new(self.producer_id, self.epoch + 1))
        }
    }
}

impl fmt::Display for ProducerIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pid {} epoch {}", self.producer_id, self.epoch)
    }
}

/// A topic partition.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TopicPartition {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
}

impl TopicPartition {
    /// A new topic partition.
    pub fn new(topic: impl Into<String>, partition: i32) -> Self {
        Self {
            topic: topic.into(),
            partition,
        }
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// The core's handle for a closed record batch. The batch's bytes stay with
/// the driver; the core only knows its partition and record count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BatchId(pub u64);

/// The core's handle for one request it asked the driver to send. Every
/// request gets exactly one [`Outcome`](crate::Outcome) back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestId(pub u64);

/// A broker's node id.
pub type NodeId = i32;

/// What the driver must write into a batch header before it sends it.
///
/// A plain retry carries the very same stamp (so the very same bytes); only an
/// epoch bump with a sequence reset produces a new stamp for a batch that was
/// never acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Stamp {
    /// Producer id.
    pub producer_id: i64,
    /// Producer epoch.
    pub epoch: i16,
    /// Base sequence of the batch's first record.
    pub base_sequence: i32,
    /// The batch header's transactional flag.
    pub transactional: bool,
}

impl Stamp {
    /// The identity the batch was stamped under.
    pub const fn identity(&self) -> ProducerIdentity {
        ProducerIdentity::new(self.producer_id, self.epoch)
    }
}

/// The sequence after `records` records starting at `seq`, wrapping from
/// `i32::MAX` to 0 as the broker does.
pub fn advance_sequence(seq: i32, records: u32) -> i32 {
    // Sequences live in [0, 2^31); arithmetic in i64 cannot overflow.
    let next = (i64::from(seq) + i64::from(records)) % (i64::from(i32::MAX) + 1);
    next as i32
}

/// A consumer group's metadata for a transactional offset commit (KIP-447):
/// the group coordinator fences a zombie member by generation, member id and
/// group instance id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GroupMetadata {
    /// The group id.
    pub group_id: String,
    /// The generation the consumer holds (`-1` when unknown).
    pub generation_id: i32,
    /// The member id (empty when unknown).
    pub member_id: String,
    /// The static group instance id, if any.
    pub group_instance_id: Option<String>,
}

impl GroupMetadata {
    /// The metadata of a group with no member: generation -1, no member id,
    /// no instance id (what a standalone consumer, or a producer committing
    /// offsets for a group it does not join, sends).
    pub fn new(group_id: impl Into<String>) -> Self {
        Self {
            group_id: group_id.into(),
            generation_id: -1,
            member_id: String::new(),
            group_instance_id: None,
        }
    }
}

/// One partition's offset to commit inside a transaction.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OffsetCommit {
    /// The consumed partition.
    pub partition: TopicPartition,
    /// The next offset to consume.
    pub offset: i64,
    /// The leader epoch of the last consumed record, if known.
    pub leader_epoch: Option<i32>,
    /// Optional metadata string.
    pub metadata: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_wraps_at_i32_max() {
        assert_eq!(advance_sequence(0, 5), 5);
        assert_eq!(advance_sequence(i32::MAX, 1), 0);
        assert_eq!(advance_sequence(i32::MAX - 1, 3), 1);
        assert_eq!(advance_sequence(i32::MAX - 4, 5), 0);
    }

    #[test]
    fn epoch_never_wraps() {
        let id = ProducerIdentity::new(7, i16::MAX - 1);
        let b = id.bumped().unwrap();
        assert_eq!(b.epoch, i16::MAX);
        assert_eq!(b.bumped(), None);
    }
}
