//! Exactly-once into a database: the side effects of consumed records and
//! the consumed offsets written **in the database's own transaction**, so
//! a crash anywhere applies nothing twice and loses nothing.
//!
//! This is the pattern the Kafka literature describes for sinks outside
//! Kafka (KIP-98's design notes on "consume-transform-produce" with offsets
//! kept beside the output; Kafka Connect sinks that store offsets in the
//! target): Kafka transactions cannot span a database, so the offsets move
//! into the database instead and Kafka's group offsets are not used at all.
//!
//! # The contract
//!
//! A [`Sink`] keeps, per input partition, the *next offset to apply* (its
//! "stored offset"; none for a partition it never saw). The [`SinkRunner`]
//! hands it [`SinkBatch`]es; for each [`PartitionBatch`] it says which
//! stored offset it expects ([`PartitionBatch::stored`]) and which to store
//! ([`PartitionBatch::next_offset`]). An implementation must, in **one**
//! database transaction:
//!
//! 1. for every partition of the batch, in the batch's order (sorted, so two
//!    writers always take row locks in the same order and cannot deadlock),
//!    move the stored offset from `stored` to `next_offset` **only if it is
//!    still `stored`** (a compare-and-set, e.g. `UPDATE offsets SET
//!    next_offset = $next WHERE partition = $p AND next_offset = $stored`,
//!    or an `INSERT .. ON CONFLICT DO NOTHING` when `stored` is `None`), and
//!    check that exactly one row changed;
//! 2. only then apply the records' side effects;
//! 3. commit.
//!
//! If a compare-and-set changes no row, someone else moved that partition
//! (another member after a rebalance, or this member's own earlier
//! transaction whose answer was lost): roll back and return
//! [`Applied::Fenced`]. Doing the compare-and-set *first* matters: the row
//! lock it takes makes a concurrent writer of the same partition wait there
//! and then fail the compare, before it ever touches the side-effect tables,
//! so a duplicate is never even attempted (no unique-violation retry can
//! hide one).
//!
//! # Why this is exactly once, zombies included
//!
//! Every committed transaction moves a partition's stored offset from
//! exactly the offset its records start at to just past them, and the
//! stored offset only grows; so the committed transactions of a partition
//! tile its log: each record is applied by exactly one committed
//! transaction. Nothing else is needed against zombies (a member that lost
//! its partitions in a rebalance or was frozen, and still writes): its
//! compare fails because the new owner moved the offset, or the new owner's
//! compare fails because the zombie moved it first (and the new owner then
//! re-reads the stored offset and continues after the zombie's records).
//! Kafka's generation checks play no part: the database is the fence.
//!
//! # The runner
//!
//! [`SinkRunner`] drives a [`exactly_consumer::Consumer`] that is a group
//! member (`read_committed`, no auto commit). On assignment it pauses the
//! new partitions, reads their stored offsets from the sink and seeks there
//! (a partition the sink never saw starts where `auto.offset.reset` says);
//! on revoke or loss it forgets them. Each poll's records become one batch.
//! After [`Applied::Fenced`], or a retriable error (a lost connection, a
//! serialization failure, a commit whose answer never came), the batch's
//! partitions are paused, their stored offsets read again and the consumer
//! moved there: the database, not the runner's memory, says where to go on.
//! A [`ShutdownHandle`](crate::ShutdownHandle) (the one type that stops a
//! session, a sink runner and an outbox relay) stops it gracefully: the batch in flight finishes
//! (within a bound), the member leaves the group, the consumer closes.
//!
//! What it does not do: commit the offsets to the Kafka group as well (so
//! lag tools that read the group's committed offsets see no progress; the
//! sink's table is the truth), apply several batches at once, or use
//! cooperative rebalancing (the consumer's groups are eager).
//!
//! The PostgreSQL implementation is `exactly-postgres` (`exactly::postgres`
//! with the facade's `postgres` feature).

mod error;
mod runner;
mod tracker;

use std::future::Future;

use exactly_consumer::{ConsumerRecord, TopicPartition};

pub use error::SinkRunError;
pub use runner::{SinkOptions, SinkRunner, SinkStats};

/// What a sink's errors must tell the runner.
pub trait SinkError: std::error::Error + Send + Sync + 'static {
    /// Whether the batch may be tried again after the stored offsets are
    /// read anew: a lost connection, a serialization failure or deadlock, a
    /// commit whose outcome is unknown. False stops the runner with this
    /// error (bad SQL, a constraint violated by the data, authorization).
    /// A unique violation must never be retriable: under the contract it
    /// means a record reached the sink twice.
    fn is_retriable(&self) -> bool;
}

/// How a batch ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// Committed: every partition's stored offset is now its
    /// `next_offset`, and the records' side effects are in.
    Committed,
    /// Rolled back because the stored offset of these partitions was not the
    /// one expected: someone else moved them.
    Fenced(Vec<TopicPartition>),
}

/// A store that applies records and keeps the offsets in one transaction.
/// See the module docs for the contract an implementation must keep.
pub trait Sink: Send {
    /// The sink's error.
    type Error: SinkError;

    /// The stored offsets (the next offset to apply) of `partitions`;
    /// `None` for a partition never stored. Reads committed data only.
    fn stored_offsets(
        &mut self,
        partitions: &[TopicPartition],
    ) -> impl Future<Output = Result<Vec<(TopicPartition, Option<i64>)>, Self::Error>> + Send;

    /// Applies `batch` in one transaction: compare-and-set of every
    /// partition's stored offset first, then the records, then commit.
    fn apply(
        &mut self,
        batch: &SinkBatch,
    ) -> impl Future<Output = Result<Applied, Self::Error>> + Send;
}

/// One partition's share of a batch.
///
/// Invariant (kept by the runner, which builds every batch):
/// `records` is non-empty, in offset order, every offset at least
/// `stored` (when known) and below `next_offset`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionBatch {
    partition: TopicPartition,
    stored: Option<i64>,
    next_offset: i64,
    records: Vec<ConsumerRecord>,
}

impl PartitionBatch {
    /// The input partition.
    pub fn partition(&self) -> &TopicPartition {
        &self.partition
    }

    /// The stored offset the transaction must find (the compare of the
    /// compare-and-set); `None`: no offset may be stored yet.
    pub fn stored(&self) -> Option<i64> {
        self.stored
    }

    /// The offset to store (the set of the compare-and-set): the
    /// consumer's position after these records.
    pub fn next_offset(&self) -> i64 {
        self.next_offset
    }

    /// The records, in offset order.
    pub fn records(&self) -> &[ConsumerRecord] {
        &self.records
    }
}

/// The records of one poll, by partition, sorted by partition (the order in
/// which an implementation takes its row locks).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SinkBatch {
    partitions: Vec<PartitionBatch>,
}

impl SinkBatch {
    /// The partitions' shares, sorted by topic and partition.
    pub fn partitions(&self) -> &[PartitionBatch] {
        &self.partitions
    }

    /// The number of records.
    pub fn len(&self) -> usize {
        self.partitions.iter().map(|p| p.records.len()).sum()
    }

    /// Whether there is nothing to apply.
    pub fn is_empty(&self) -> bool {
        self.partitions.is_empty()
    }

    /// Every record, partition by partition.
    pub fn records(&self) -> impl Iterator<Item = &ConsumerRecord> {
        self.partitions.iter().flat_map(|p| p.records.iter())
    }
}
