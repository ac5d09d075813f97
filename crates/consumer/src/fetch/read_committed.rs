//! The `read_committed` filter (KIP-98): which batches of one fetched
//! partition a consumer may show.
//!
//! A Fetch response at `isolation_level = 1` holds data only up to the last
//! stable offset, plus the list of aborted transactions that overlap the
//! fetched range, each as (producer id, first offset). The filter walks the
//! batches in offset order:
//!
//! - an aborted transaction becomes *active* for its producer once a batch
//!   reaches its first offset (`first offset <= batch's last offset`);
//! - a transactional data batch of a producer with an active aborted
//!   transaction is skipped;
//! - that producer's ABORT marker ends the skipping;
//! - control batches (COMMIT and ABORT markers) are never shown.
//!
//! Invariants kept by [`ReadCommitted`]:
//! - the aborted list is sorted by first offset on construction, so a list
//!   that arrives unsorted (Redpanda sends one) gives the same verdicts as a
//!   sorted one, and duplicate entries are harmless;
//! - a second ABORT marker for a producer that is not skipping (a double
//!   abort marker) changes nothing;
//! - no state survives one partition's response: the broker lists again, in
//!   every fetch, each aborted transaction still overlapping the fetched
//!   range, so an aborted transaction spanning fetches is skipped in each.
//!
//! Broker answers that contradict the markers are counted as anomalies
//! ([`ReadCommitted::anomalies`], the consumer metric
//! `read_committed_anomalies`), not errors — the consumer cannot tell which
//! side lies, and the Java client trusts the list the same way:
//! - a COMMIT marker for a producer the aborted list made us skip (the list
//!   named a committed transaction): skipping ends there, but what was
//!   skipped before it is lost;
//! - an ABORT marker for a producer whose transactional batches were
//!   delivered from this response (the list missed an aborted transaction):
//!   those records were shown;
//! - a marker of a producer never seen in the response is normal (its data
//!   came in an earlier fetch) and is skipped like any marker.
//!
//! A partition's last stable offset going backwards between two answers
//! (same leader epoch) is an anomaly too ([`LsoWatch`]): the LSO only grows
//! on one leader, as transactions end. Outcome: counted in
//! `read_committed_anomalies`, and reading continues — the position never
//! moves back (nothing at or past the new LSO is shown, what was shown stays
//! shown), so the worst effect is a pause until the LSO passes the position
//! again. It is not an error because nothing the consumer could do differs:
//! an error would only stop a reader whose records are all still correct,
//! and across a leader change the new leader's high watermark (so its LSO)
//! may lawfully lag the old one's for a moment — which is why a change of
//! leader epoch forgets the previous LSO instead of comparing with it. A
//! seek, an offset reset or a new assignment forgets it too.
//!
//! The filter is pure (no I/O, no clock) and holds no record bytes.

use exactly_codec::record::{BatchHeader, ControlRecordKind};

/// One entry of a Fetch response's `aborted_transactions`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AbortedTxn {
    /// The first offset of the aborted transaction in this partition.
    pub first_offset: i64,
    /// The producer that aborted it.
    pub producer_id: i64,
}

/// What to do with one batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A data batch whose records may be shown.
    Deliver,
    /// A data batch of an aborted transaction: skip it.
    Aborted,
    /// A control batch (transaction marker): never shown.
    Control,
}

/// The per-partition filter state. See the module docs.
#[derive(Debug, Clone, Default)]
pub struct ReadCommitted {
    /// Sorted by first offset; entries before `next` are consumed.
    aborted: Vec<AbortedTxn>,
    next: usize,
    /// Producers inside an aborted transaction right now (few: a linear
    /// search beats hashing).
    skipping: Vec<i64>,
    /// Producers whose transactional batches were delivered since their
    /// last marker in this response.
    delivered: Vec<i64>,
    /// Markers that contradict the aborted list (see the module docs).
    anomalies: u64,
}

impl ReadCommitted {
    /// A filter for one partition's response, from its aborted transactions
    /// in any order.
    pub fn new(mut aborted: Vec<AbortedTxn>) -> Self {
        aborted.sort_unstable();
        Self {
            aborted,
            next: 0,
            skipping: Vec::new(),
            delivered: Vec::new(),
            anomalies: 0,
        }
    }

    /// The verdict for the next batch in offset order. `control` is the
    /// batch's control record kind when it is a control batch (`None` for a
    /// control batch whose record could not be read still counts as control).
    pub fn verdict(&mut self, header: &BatchHeader, control: Option<ControlRecordKind>) -> Verdict {
        let is_control = header.attributes.control;
        if header.producer_id >= 0 {
            let last = header.last_offset();
            while let Some(t) = self.aborted.get(self.next) {
                if t.first_offset > last {
                    break;
                }
                if !self.skipping.contains(&t.producer_id) {
                    self.skipping.push(t.producer_id);
                }
                self.next += 1;
            }
            let pid = header.producer_id;
            if is_control {
                let skipping = self.skipping.contains(&pid);
                let delivered = self.delivered.contains(&pid);
                match control {
                    Some(ControlRecordKind::Abort) if !skipping && delivered => self.anomalies += 1,
                    Some(ControlRecordKind::Commit) if skipping => self.anomalies += 1,
                    _ => {}
                }
                if control.is_some() {
                    self.skipping.retain(|&p| p != pid);
                    self.delivered.retain(|&p| p != pid);
                }
            } else if header.attributes.transactional {
                if self.skipping.contains(&pid) {
                    return Verdict::Aborted;
                }
                if !self.delivered.contains(&pid) {
                    self.delivered.push(pid);
                }
            }
        }
        if is_control {
            Verdict::Control
        } else {
            Verdict::Deliver
        }
    }

    /// Markers met so far that contradict the aborted list.
    pub fn anomalies(&self) -> u64 {
        self.anomalies
    }

    /// Whether `producer_id` is inside an aborted transaction at this point.
    pub fn is_skipping(&self, producer_id: i64) -> bool {
        self.skipping.contains(&producer_id)
    }
}

/// The previous last stable offset of one partition, to notice it going
/// backwards (see the module docs for the outcome). Kept in the
/// partition's fetch state; [`LsoWatch::forget`] on a seek or reset.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LsoWatch {
    /// (leader epoch the answer was fetched under, its LSO).
    last: Option<(i32, i64)>,
}

impl LsoWatch {
    /// Notes the LSO of an answer fetched under `leader_epoch` (-1 when
    /// unknown); returns whether it went backwards from the previous answer
    /// of the same epoch. An unknown LSO (-1) is skipped: it is counted
    /// where it is met ([`super::parse`]) and proves nothing about order.
    pub fn observe(&mut self, leader_epoch: i32, lso: i64) -> bool {
        if lso < 0 {
            return false;
        }
        let back = matches!(self.last, Some((e, prev)) if e == leader_epoch && lso < prev);
        self.last = Some((leader_epoch, lso));
        back
    }

    /// Forgets the previous LSO (a seek, a reset: the next answer starts a
    /// new comparison).
    pub fn forget(&mut self) {
        self.last = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use exactly_codec::record::{Attributes, BatchHeader};

    fn header(base: i64, count: i32, pid: i64, txn: bool, control: bool) -> BatchHeader {
        BatchHeader {
            base_offset: base,
            batch_length: 0,
            partition_leader_epoch: 0,
            magic: 2,
            crc: 0,
            attributes: Attributes {
                transactional: txn,
                control,
                ..Attributes::default()
            },
            last_offset_delta: count - 1,
            base_timestamp: 0,
            max_timestamp: 0,
            producer_id: pid,
            producer_epoch: 0,
            base_sequence: 0,
            record_count: count,
        }
    }

    fn data(base: i64, count: i32, pid: i64) -> BatchHeader {
        header(base, count, pid, true, false)
    }

    fn marker(at: i64, pid: i64) -> BatchHeader {
        header(at, 1, pid, true, true)
    }

    const ABORT: Option<ControlRecordKind> = Some(ControlRecordKind::Abort);
    const COMMIT: Option<ControlRecordKind> = Some(ControlRecordKind::Commit);

    #[test]
    fn skips_aborted_until_its_marker_then_delivers() {
        let mut f = ReadCommitted::new(vec![AbortedTxn {
            first_offset: 0,
            producer_id: 7,
        }]);
        assert_eq!(f.verdict(&data(0, 3, 7), None), Verdict::Aborted);
        assert_eq!(f.verdict(&marker(3, 7), ABORT), Verdict::Control);
        assert_eq!(f.verdict(&data(4, 2, 7), None), Verdict::Deliver);
        assert_eq!(f.verdict(&marker(6, 7), COMMIT), Verdict::Control);
    }

    #[test]
    fn unsorted_list_and_duplicates_give_the_same_verdicts() {
        let log = [
            (data(0, 2, 1), None),
            (data(2, 2, 2), None),
            (marker(4, 1), ABORT),
            (data(5, 1, 2), None),
            (marker(6, 2), COMMIT),
            (data(7, 1, 1), None),
            (marker(8, 1), ABORT),
        ];
        let sorted = vec![
            AbortedTxn {
                first_offset: 0,
                producer_id: 1,
            },
            AbortedTxn {
                first_offset: 7,
                producer_id: 1,
            },
        ];
        let mut unsorted = sorted.clone();
        unsorted.reverse();
        unsorted.push(sorted[0]);
        let run = |list: Vec<AbortedTxn>| {
            let mut f = ReadCommitted::new(list);
            log.iter()
                .map(|(h, c)| f.verdict(h, *c))
                .collect::<Vec<_>>()
        };
        let expected = vec![
            Verdict::Aborted,
            Verdict::Deliver,
            Verdict::Control,
            Verdict::Deliver,
            Verdict::Control,
            Verdict::Aborted,
            Verdict::Control,
        ];
        assert_eq!(run(sorted), expected);
        assert_eq!(run(unsorted), expected);
    }

    #[test]
    fn double_abort_marker_changes_nothing() {
        let mut f = ReadCommitted::new(vec![
            AbortedTxn {
                first_offset: 0,
                producer_id: 3,
            },
            AbortedTxn {
                first_offset: 4,
                producer_id: 3,
            },
        ]);
        assert_eq!(f.verdict(&data(0, 1, 3), None), Verdict::Aborted);
        assert_eq!(f.verdict(&marker(1, 3), ABORT), Verdict::Control);
        assert_eq!(f.verdict(&marker(2, 3), ABORT), Verdict::Control);
        assert!(!f.is_skipping(3));
        assert_eq!(f.verdict(&data(3, 1, 3), None), Verdict::Deliver);
        assert_eq!(f.verdict(&data(4, 1, 3), None), Verdict::Aborted);
        assert_eq!(f.verdict(&marker(5, 3), ABORT), Verdict::Control);
        assert_eq!(f.verdict(&marker(6, 3), ABORT), Verdict::Control);
        assert_eq!(f.verdict(&data(7, 1, 3), None), Verdict::Deliver);
    }

    #[test]
    fn non_transactional_batches_and_other_producers_pass() {
        let mut f = ReadCommitted::new(vec![AbortedTxn {
            first_offset: 0,
            producer_id: 5,
        }]);
        // An idempotent (non-transactional) batch of the same producer id is
        // never part of a transaction.
        assert_eq!(
            f.verdict(&header(0, 1, 5, false, false), None),
            Verdict::Deliver
        );
        assert_eq!(f.verdict(&data(1, 1, 6), None), Verdict::Deliver);
        assert_eq!(
            f.verdict(&header(2, 1, -1, false, false), None),
            Verdict::Deliver
        );
        assert_eq!(f.verdict(&data(3, 1, 5), None), Verdict::Aborted);
    }

    #[test]
    fn aborted_transaction_started_before_the_fetch_is_active_at_once() {
        // The fetch starts at 100 inside a transaction that began at 40.
        let mut f = ReadCommitted::new(vec![AbortedTxn {
            first_offset: 40,
            producer_id: 9,
        }]);
        assert_eq!(f.verdict(&data(100, 5, 9), None), Verdict::Aborted);
        assert_eq!(f.verdict(&marker(105, 9), ABORT), Verdict::Control);
    }

    #[test]
    fn an_lso_going_backwards_on_one_leader_is_noticed_once() {
        let mut w = LsoWatch::default();
        assert!(!w.observe(3, 10));
        assert!(!w.observe(3, 10), "the same LSO again is no anomaly");
        assert!(!w.observe(3, 12));
        assert!(w.observe(3, 11), "12 then 11 on one leader");
        assert!(!w.observe(3, 11), "counted once, not on every answer");
        assert!(!w.observe(3, -1), "unknown is skipped");
        assert!(w.observe(3, 5), "and does not hide a later decrease");
        // A new leader may lag the old one: compared from scratch.
        assert!(!w.observe(4, 2));
        assert!(w.observe(4, 1));
        w.forget();
        assert!(!w.observe(4, 0), "a seek forgets the previous LSO");
    }

    #[test]
    fn control_batch_with_unreadable_record_is_still_control() {
        let mut f = ReadCommitted::new(Vec::new());
        assert_eq!(f.verdict(&marker(0, 1), None), Verdict::Control);
        assert_eq!(
            f.verdict(&header(1, 1, -1, false, true), None),
            Verdict::Control
        );
    }
}
