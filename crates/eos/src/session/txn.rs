//! The session's bookkeeping, free of I/O: the open transaction (what it
//! consumed, up to which offset per partition, since when) and the backlog
//! of polled records not yet processed.
//!
//! Invariants kept here:
//!
//! - The offsets a transaction commits are those of the records the handler
//!   *finished* (last processed offset + 1 per partition, with that record's
//!   leader epoch, KIP-320), never the consumer's position: records polled
//!   but left in the backlog (the transaction was full) are not committed by
//!   it, so the transaction size limit can cut a poll in two without losing
//!   the second half.
//! - A transaction never holds more than `transaction.max.records` input
//!   records: the backlog hands out at most the room left.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::time::Duration;

use exactly_consumer::ConsumerRecord;
use exactly_producer::{OffsetCommit, TopicPartition};
use tokio::time::Instant;

/// The open transaction.
#[derive(Debug)]
pub(crate) struct OpenTxn {
    started: Instant,
    pub(crate) records_in: u64,
    pub(crate) records_out: u64,
    offsets: BTreeMap<TopicPartition, OffsetCommit>,
    /// Input partitions handed to the handler in this transaction, finished
    /// or not (what a rollback must undo).
    touched: BTreeSet<TopicPartition>,
}

impl OpenTxn {
    pub(crate) fn new(now: Instant) -> Self {
        Self {
            started: now,
            records_in: 0,
            records_out: 0,
            offsets: BTreeMap::new(),
            touched: BTreeSet::new(),
        }
    }

    /// The handler is about to process records of `partition`.
    pub(crate) fn touch(&mut self, partition: &TopicPartition) {
        if !self.touched.contains(partition) {
            self.touched.insert(partition.clone());
        }
    }

    /// The handler finished `count` records of `partition`, the last at
    /// `next_offset - 1` written under `leader_epoch`.
    pub(crate) fn consumed(
        &mut self,
        partition: &TopicPartition,
        count: u64,
        next_offset: i64,
        leader_epoch: Option<i32>,
    ) {
        self.records_in += count;
        let commit = OffsetCommit {
            partition: partition.clone(),
            offset: next_offset,
            leader_epoch,
            metadata: None,
        };
        match self.offsets.get_mut(partition) {
            Some(c) if c.offset < next_offset => *c = commit,
            Some(_) => {}
            None => {
                self.offsets.insert(partition.clone(), commit);
            }
        }
    }

    /// Input records the transaction may still take.
    pub(crate) fn room(&self, max_records: usize) -> usize {
        max_records.saturating_sub(usize::try_from(self.records_in).unwrap_or(usize::MAX))
    }

    /// When the transaction must commit by age (`commit.interval.ms`).
    pub(crate) fn deadline(&self, max_time: Duration) -> Instant {
        self.started + max_time
    }

    /// Full, or old enough.
    pub(crate) fn is_due(&self, now: Instant, max_records: usize, max_time: Duration) -> bool {
        self.room(max_records) == 0 || now >= self.deadline(max_time)
    }

    /// The offsets to commit with the transaction.
    pub(crate) fn offsets(&self) -> Vec<OffsetCommit> {
        self.offsets.values().cloned().collect()
    }

    /// The input partitions the handler processed records of in this
    /// transaction (including a run that failed).
    pub(crate) fn partitions(&self) -> Vec<TopicPartition> {
        self.touched.iter().cloned().collect()
    }
}

/// Polled records not processed yet, in poll order.
#[derive(Debug, Default)]
pub(crate) struct Backlog {
    records: Vec<ConsumerRecord>,
    next: usize,
}

impl Backlog {
    pub(crate) fn is_empty(&self) -> bool {
        self.next >= self.records.len()
    }

    /// Appends a poll's records to what is left of the backlog.
    pub(crate) fn fill(&mut self, records: impl IntoIterator<Item = ConsumerRecord>) {
        self.records.drain(..self.next.min(self.records.len()));
        self.records.extend(records);
        self.next = 0;
    }

    /// Records left to process.
    pub(crate) fn len(&self) -> usize {
        self.records.len().saturating_sub(self.next)
    }

    /// Drops the unprocessed records of `partitions` (revoked), keeping the
    /// others in order.
    pub(crate) fn drop_partitions(&mut self, partitions: &[TopicPartition]) {
        self.records.drain(..self.next.min(self.records.len()));
        self.next = 0;
        self.records.retain(|r| {
            !partitions
                .iter()
                .any(|tp| tp.partition == r.partition() && tp.topic == r.topic())
        });
    }

    pub(crate) fn clear(&mut self) {
        self.records.clear();
        self.next = 0;
    }

    /// The next run of records of one partition, at most `max` long
    /// (`max` >= 1); they stay in the backlog until [`Backlog::advance`].
    pub(crate) fn peek_run(&self, max: usize) -> &[ConsumerRecord] {
        let rest = &self.records[self.next.min(self.records.len())..];
        let r = same_key_run(rest, max, |a, b| {
            a.partition() == b.partition() && a.topic() == b.topic()
        });
        &rest[r]
    }

    /// Drops the first `n` records (processed).
    pub(crate) fn advance(&mut self, n: usize) {
        self.next = (self.next + n).min(self.records.len());
    }
}

/// The range of the first run of `items` whose elements are `same` as the
/// first, at most `max` long.
fn same_key_run<T>(items: &[T], max: usize, same: impl Fn(&T, &T) -> bool) -> Range<usize> {
    let Some(first) = items.first() else {
        return 0..0;
    };
    let len = items
        .iter()
        .take(max.max(1))
        .take_while(|x| same(first, x))
        .count();
    0..len
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_stop_at_a_new_key_or_the_room_left() {
        let items = [1, 1, 1, 2, 2, 1];
        let eq = |a: &i32, b: &i32| a == b;
        assert_eq!(same_key_run(&items, 10, eq), 0..3);
        assert_eq!(same_key_run(&items, 2, eq), 0..2);
        assert_eq!(same_key_run(&items[3..], 10, eq), 0..2);
        assert_eq!(same_key_run(&items[5..], 10, eq), 0..1);
        assert_eq!(same_key_run::<i32>(&[], 10, eq), 0..0);
        assert_eq!(same_key_run(&items, 0, eq), 0..1, "max 0 still moves");
    }

    #[test]
    fn commits_the_offset_after_the_last_processed_record() {
        let now = Instant::now();
        let mut t = OpenTxn::new(now);
        let a0 = TopicPartition::new("a", 0);
        let a1 = TopicPartition::new("a", 1);
        let b0 = TopicPartition::new("b", 0);
        for p in [&a0, &a1, &b0, &a0] {
            t.touch(p);
        }
        t.consumed(&a0, 3, 13, Some(4));
        t.consumed(&a1, 1, 7, None);
        t.consumed(&a0, 2, 15, Some(5));
        // A stale report never moves an offset back.
        t.consumed(&a0, 0, 9, Some(3));
        assert_eq!(t.records_in, 6);
        let offsets: Vec<_> = t
            .offsets()
            .into_iter()
            .map(|c| (c.partition.partition, c.offset, c.leader_epoch))
            .collect();
        assert_eq!(offsets, [(0, 15, Some(5)), (1, 7, None)]);
        // b-0 failed: no offset, but a rollback names it.
        assert_eq!(t.partitions(), [a0, a1, b0]);
    }

    #[test]
    fn due_when_full_or_old() {
        let now = Instant::now();
        let mut t = OpenTxn::new(now);
        let ms = Duration::from_millis;
        assert!(!t.is_due(now, 10, ms(100)));
        assert_eq!(t.room(10), 10);
        t.consumed(&TopicPartition::new("a", 0), 10, 10, None);
        assert_eq!(t.room(10), 0);
        assert!(t.is_due(now, 10, ms(100)));
        let t = OpenTxn::new(now);
        assert!(!t.is_due(now + ms(99), 10, ms(100)));
        assert!(t.is_due(now + ms(100), 10, ms(100)));
        assert_eq!(t.deadline(ms(100)), now + ms(100));
    }
}
