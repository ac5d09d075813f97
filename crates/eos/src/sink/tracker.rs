//! The runner's bookkeeping, without I/O: which partitions are ready to
//! apply and what their stored offset is, which must have it read (again)
//! from the sink, and how a poll's records become a [`super::SinkBatch`].
//!
//! ```text
//!   assigned ──▶ Loading ──(stored offsets read; seek)──▶ Ready { stored }
//!                   ▲                                        │  committed: stored = next_offset
//!                   └──────── fenced / retriable error ◀─────┘
//!   revoked / lost: forgotten (no transaction is open then: batches are
//!   applied one at a time, between polls)
//! ```

use std::collections::BTreeMap;

use exactly_consumer::{ConsumerRecord, TopicPartition};

/// What the tracker needs of a record (a trait so the tests can use plain
/// values).
pub(crate) trait Positioned {
    fn topic_partition(&self) -> TopicPartition;
    fn offset(&self) -> i64;
}

impl Positioned for ConsumerRecord {
    fn topic_partition(&self) -> TopicPartition {
        ConsumerRecord::topic_partition(self)
    }
    fn offset(&self) -> i64 {
        ConsumerRecord::offset(self)
    }
}

/// One partition's records to apply, with the compare-and-set offsets
/// (becomes a [`super::PartitionBatch`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Part<R> {
    pub(crate) partition: TopicPartition,
    pub(crate) stored: Option<i64>,
    pub(crate) next_offset: i64,
    pub(crate) records: Vec<R>,
}

/// One assigned partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Slot {
    /// Paused in the consumer until its stored offset is read.
    /// `resume_from`: where to read from if the sink has no offset for it
    /// (the first offset of records read and not applied); `None` at
    /// assignment, when the consumer's own start position
    /// (`auto.offset.reset`) is right.
    Loading { resume_from: Option<i64> },
    /// Reading. `stored`: the sink's stored offset as this member last
    /// read or wrote it (the compare of the next compare-and-set).
    Ready { stored: Option<i64> },
}

/// Where the consumer must go once a partition's stored offset is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Seek {
    /// `Consumer::seek` to this offset.
    To(i64),
    /// Leave the consumer's own position (never set by this member).
    ConsumerDecides,
}

/// The parts to apply (sorted by partition) and the partitions whose
/// records could not be used (they must be paused and reloaded).
#[derive(Debug)]
pub(crate) struct Split<R> {
    pub(crate) parts: Vec<Part<R>>,
    pub(crate) reload: Vec<TopicPartition>,
}

/// See the module docs.
#[derive(Debug, Default)]
pub(crate) struct Tracker {
    slots: BTreeMap<TopicPartition, Slot>,
}

impl Tracker {
    /// Partitions assigned; each starts `Loading`.
    pub(crate) fn assign(&mut self, partitions: &[TopicPartition]) {
        // Added to what is kept: a cooperative rebalance (KIP-429) reports
        // only the new partitions, and the kept ones stay as they are.
        for tp in partitions {
            self.slots
                .entry(tp.clone())
                .or_insert(Slot::Loading { resume_from: None });
        }
    }

    /// Partitions taken away (revoked or lost).
    pub(crate) fn forget(&mut self, partitions: &[TopicPartition]) {
        for tp in partitions {
            self.slots.remove(tp);
        }
    }

    /// The partitions waiting for their stored offset.
    pub(crate) fn loading(&self) -> Vec<TopicPartition> {
        self.slots
            .iter()
            .filter(|(_, s)| matches!(s, Slot::Loading { .. }))
            .map(|(tp, _)| tp.clone())
            .collect()
    }

    /// The slot of a partition.
    #[cfg(test)]
    pub(crate) fn slot(&self, tp: &TopicPartition) -> Option<Slot> {
        self.slots.get(tp).copied()
    }

    /// Stored offsets read from the sink: each `Loading` partition among
    /// them becomes `Ready`, with where the consumer must go. Partitions
    /// not loading (forgotten meanwhile, or already ready) are ignored.
    pub(crate) fn loaded(
        &mut self,
        stored: &[(TopicPartition, Option<i64>)],
    ) -> Vec<(TopicPartition, Seek)> {
        let mut seeks = Vec::new();
        for (tp, offset) in stored {
            let Some(slot) = self.slots.get_mut(tp) else {
                continue;
            };
            let Slot::Loading { resume_from } = *slot else {
                continue;
            };
            let seek = match (offset, resume_from) {
                (Some(o), _) => Seek::To(*o),
                (None, Some(r)) => Seek::To(r),
                (None, None) => Seek::ConsumerDecides,
            };
            *slot = Slot::Ready { stored: *offset };
            seeks.push((tp.clone(), seek));
        }
        seeks
    }

    /// Splits one poll's records into a batch of `Ready` partitions.
    /// `position`: the consumer's position of a partition after the poll
    /// (the `next_offset` to store; at least the last record's offset + 1).
    /// Records of a partition that is not ready, and records below the
    /// stored offset (already applied: the consumer should never return
    /// them), are not applied; such a partition is put back to `Loading`
    /// and listed in `reload`, so its position is set again from the sink.
    pub(crate) fn split<R: Positioned>(
        &mut self,
        records: impl IntoIterator<Item = R>,
        position: impl Fn(&TopicPartition) -> Option<i64>,
    ) -> Split<R> {
        let mut by_partition: BTreeMap<TopicPartition, Vec<R>> = BTreeMap::new();
        for r in records {
            by_partition.entry(r.topic_partition()).or_default().push(r);
        }
        let mut out = Split {
            parts: Vec::new(),
            reload: Vec::new(),
        };
        for (tp, records) in by_partition {
            let Some(slot) = self.slots.get_mut(&tp) else {
                // Not ours (any more): nothing to apply, nothing to track.
                continue;
            };
            let first = records.first().map(R::offset);
            let in_order = records.windows(2).all(|w| w[0].offset() < w[1].offset());
            match *slot {
                Slot::Ready { stored }
                    if in_order && first.is_some_and(|f| stored.is_none_or(|s| f >= s)) =>
                {
                    let last = records.last().map_or(0, R::offset);
                    let next_offset = position(&tp).map_or(last + 1, |p| p.max(last + 1));
                    out.parts.push(Part {
                        partition: tp,
                        stored,
                        next_offset,
                        records,
                    });
                }
                Slot::Ready { .. } => {
                    tracing::warn!(
                        partition = %tp,
                        ?slot,
                        first,
                        in_order,
                        "records out of place for the stored offset: reloading the partition"
                    );
                    *slot = Slot::Loading { resume_from: None };
                    out.reload.push(tp);
                }
                Slot::Loading { resume_from } => {
                    // Its position moved past these records: if the sink has
                    // no offset for it, they are where to start again.
                    *slot = Slot::Loading {
                        resume_from: resume_from.or(first),
                    };
                    out.reload.push(tp);
                }
            }
        }
        out
    }

    /// A batch of these (partition, next offset) committed: their stored
    /// offsets moved.
    pub(crate) fn committed<'a>(
        &mut self,
        parts: impl IntoIterator<Item = (&'a TopicPartition, i64)>,
    ) {
        for (tp, next_offset) in parts {
            if let Some(slot) = self.slots.get_mut(tp) {
                *slot = Slot::Ready {
                    stored: Some(next_offset),
                };
            }
        }
    }

    /// A batch of these (partition, first offset) was rolled back (fenced)
    /// or its outcome is unknown: they must have their stored offsets read
    /// again. Returns those still assigned.
    pub(crate) fn rewind<'a>(
        &mut self,
        parts: impl IntoIterator<Item = (&'a TopicPartition, Option<i64>)>,
    ) -> Vec<TopicPartition> {
        let mut out = Vec::new();
        for (tp, first) in parts {
            if let Some(slot) = self.slots.get_mut(tp) {
                *slot = Slot::Loading { resume_from: first };
                out.push(tp.clone());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp(p: i32) -> TopicPartition {
        TopicPartition::new("in", p)
    }

    #[derive(Debug, Clone, PartialEq, Eq)]
    struct Rec(i32, i64);

    impl Positioned for Rec {
        fn topic_partition(&self) -> TopicPartition {
            tp(self.0)
        }
        fn offset(&self) -> i64 {
            self.1
        }
    }

    fn recs(p: i32, offsets: std::ops::Range<i64>) -> Vec<Rec> {
        offsets.map(|o| Rec(p, o)).collect()
    }

    fn done(parts: &[Part<Rec>]) -> Vec<(&TopicPartition, i64)> {
        parts
            .iter()
            .map(|p| (&p.partition, p.next_offset))
            .collect()
    }

    fn firsts(parts: &[Part<Rec>]) -> Vec<(&TopicPartition, Option<i64>)> {
        parts
            .iter()
            .map(|p| (&p.partition, p.records.first().map(|r| r.1)))
            .collect()
    }

    fn ready(t: &mut Tracker, stored: &[(i32, Option<i64>)]) {
        let parts: Vec<_> = stored.iter().map(|(p, _)| tp(*p)).collect();
        t.assign(&parts);
        let s: Vec<_> = stored.iter().map(|(p, o)| (tp(*p), *o)).collect();
        t.loaded(&s);
    }

    #[test]
    fn assignment_loads_then_seeks_to_the_stored_offsets() {
        let mut t = Tracker::default();
        t.assign(&[tp(0), tp(1)]);
        assert_eq!(t.loading(), vec![tp(0), tp(1)]);
        let seeks = t.loaded(&[(tp(0), Some(40)), (tp(1), None), (tp(9), Some(1))]);
        assert_eq!(
            seeks,
            vec![(tp(0), Seek::To(40)), (tp(1), Seek::ConsumerDecides)]
        );
        assert!(t.loading().is_empty());
        assert_eq!(t.slot(&tp(0)), Some(Slot::Ready { stored: Some(40) }));
        assert_eq!(t.slot(&tp(9)), None, "a partition not assigned stays out");
        // A second answer for an already ready partition changes nothing.
        assert!(t.loaded(&[(tp(0), Some(7))]).is_empty());
        assert_eq!(t.slot(&tp(0)), Some(Slot::Ready { stored: Some(40) }));
    }

    #[test]
    fn a_poll_becomes_a_sorted_batch_with_compare_and_set_offsets() {
        let mut t = Tracker::default();
        ready(&mut t, &[(0, Some(40)), (1, None)]);
        let mut records = recs(1, 0..3);
        records.extend(recs(0, 40..42));
        // Partition 0's position went past a commit marker after 41.
        let split = t.split(records, |p| (p.partition == 0).then_some(43));
        assert!(split.reload.is_empty());
        let b = &split.parts;
        assert_eq!(b.iter().map(|p| p.records.len()).sum::<usize>(), 5);
        let parts: Vec<_> = b
            .iter()
            .map(|p| (p.partition.partition, p.stored, p.next_offset))
            .collect();
        assert_eq!(parts, vec![(0, Some(40), 43), (1, None, 3)]);
        t.committed(done(b));
        assert_eq!(t.slot(&tp(0)), Some(Slot::Ready { stored: Some(43) }));
        assert_eq!(t.slot(&tp(1)), Some(Slot::Ready { stored: Some(3) }));
        // The next batch compares against what this member stored.
        let next = t.split(recs(0, 43..44), |_| None).parts;
        assert_eq!(next[0].stored, Some(43));
        assert_eq!(next[0].next_offset, 44);
    }

    #[test]
    fn a_rewound_batch_reloads_and_falls_back_to_its_first_record() {
        let mut t = Tracker::default();
        ready(&mut t, &[(0, None), (1, Some(10))]);
        let mut records = recs(0, 5..8);
        records.extend(recs(1, 10..12));
        let b = t.split(records, |_| None).parts;
        assert_eq!(t.rewind(firsts(&b)), vec![tp(0), tp(1)]);
        assert_eq!(t.loading(), vec![tp(0), tp(1)]);
        // The store still has nothing for 0 (the batch never committed), and
        // someone else moved 1 to 15.
        let seeks = t.loaded(&[(tp(0), None), (tp(1), Some(15))]);
        assert_eq!(seeks, vec![(tp(0), Seek::To(5)), (tp(1), Seek::To(15))]);
        assert_eq!(t.slot(&tp(1)), Some(Slot::Ready { stored: Some(15) }));
    }

    #[test]
    fn records_of_a_partition_not_ready_are_never_applied() {
        let mut t = Tracker::default();
        t.assign(&[tp(0), tp(1)]);
        t.loaded(&[(tp(1), Some(0))]);
        let mut records = recs(0, 3..5);
        records.extend(recs(1, 0..2));
        records.extend(recs(7, 0..2)); // not assigned at all
        let split = t.split(records, |_| None);
        assert_eq!(split.reload, vec![tp(0)]);
        assert_eq!(split.parts.len(), 1);
        assert_eq!(split.parts[0].partition, tp(1));
        assert_eq!(
            t.slot(&tp(0)),
            Some(Slot::Loading {
                resume_from: Some(3)
            })
        );
        // If the sink has nothing stored, reading resumes at those records.
        assert_eq!(t.loaded(&[(tp(0), None)]), vec![(tp(0), Seek::To(3))]);
    }

    #[test]
    fn records_below_the_stored_offset_reload_instead_of_applying_twice() {
        let mut t = Tracker::default();
        ready(&mut t, &[(0, Some(10))]);
        let split = t.split(recs(0, 8..12), |_| None);
        assert!(
            split.parts.is_empty(),
            "offsets 8 and 9 are already applied"
        );
        assert_eq!(split.reload, vec![tp(0)]);
        assert_eq!(t.loaded(&[(tp(0), Some(10))]), vec![(tp(0), Seek::To(10))]);
    }

    #[test]
    fn forgotten_partitions_are_neither_applied_nor_committed() {
        let mut t = Tracker::default();
        ready(&mut t, &[(0, Some(1)), (1, Some(1))]);
        let b = t.split(recs(0, 1..3), |_| None).parts;
        t.forget(&[tp(0)]);
        t.committed(done(&b));
        assert_eq!(t.slot(&tp(0)), None);
        assert!(t.rewind(firsts(&b)).is_empty());
        let again = t.split(recs(0, 3..4), |_| None);
        assert!(again.parts.is_empty() && again.reload.is_empty());
    }
}
