//! The assignment: every partition the consumer reads, its position, and
//! the records fetched for it but not yet handed out.
//!
//! Invariants kept here:
//! - a partition's `version` changes whenever its position is set from
//!   outside the fetch path (seek, reset, committed offset, reassignment); a
//!   fetch response carries the version and offset it was requested under and
//!   is dropped if either moved, so a seek is never undone by a fetch that
//!   was in flight;
//! - buffered records all lie at or after the position, in offset order;
//!   handing one out moves the position just past it;
//! - a partition without a position is not fetched;
//! - a partition is fetched from the end of what is buffered for it (the
//!   position when nothing is), so the next response can be on its way
//!   while the application drains the last one; at most [`READ_AHEAD`]
//!   responses are buffered per partition, and none is added past
//!   `fetch.max.bytes` buffered in all (a partition with nothing buffered is
//!   always fetched, as the Java client does).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use tokio::time::Instant;

use crate::config::OffsetReset;
use crate::error::ConsumerError;
use crate::fetch::parse::BatchFault;
use crate::fetch::read_committed::LsoWatch;
use crate::record::ConsumerRecord;
use crate::TopicPartition;

/// Where the next fetch of a partition starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// The next offset to read.
    pub offset: i64,
    /// The leader epoch of the last record read (KIP-320), if known.
    pub leader_epoch: Option<i32>,
}

/// How a partition without a position gets one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pending {
    /// From the group's committed offset (then `auto.offset.reset`).
    Committed,
    /// From ListOffsets with this policy.
    Reset(OffsetReset),
}

/// Responses buffered per partition, the one being handed out included:
/// with 2, the next response is fetched while the application drains one.
pub(crate) const READ_AHEAD: usize = 2;

/// Fetched records not yet handed out.
#[derive(Debug, Default)]
pub struct Buffered {
    /// Records at or after the position.
    pub records: VecDeque<ConsumerRecord>,
    /// The position once `records` are all handed out; where the next fetch
    /// of this partition starts.
    pub next_offset: i64,
    /// A malformed batch after `records` (nothing is fetched past it).
    pub fault: Option<BatchFault>,
    /// The responses `records` came from, oldest first: how many of each
    /// one's records are still here, and its size as fetched.
    chunks: VecDeque<Chunk>,
}

#[derive(Debug, Clone, Copy)]
struct Chunk {
    records: usize,
    bytes: usize,
}

impl Buffered {
    /// A buffer holding one response's records.
    pub fn new(
        records: Vec<ConsumerRecord>,
        next_offset: i64,
        fault: Option<BatchFault>,
        bytes: usize,
    ) -> Self {
        let mut b = Buffered {
            next_offset,
            ..Buffered::default()
        };
        b.append(records, next_offset, fault, bytes);
        b
    }

    /// Appends the next response's records (fetched from `self.next_offset`).
    pub fn append(
        &mut self,
        records: Vec<ConsumerRecord>,
        next_offset: i64,
        fault: Option<BatchFault>,
        bytes: usize,
    ) {
        if !records.is_empty() {
            self.chunks.push_back(Chunk {
                records: records.len(),
                bytes,
            });
            self.records.extend(records);
        }
        self.next_offset = self.next_offset.max(next_offset);
        if fault.is_some() {
            self.fault = fault;
        }
    }

    /// Forgets `n` records handed out from the front.
    fn handed_out(&mut self, mut n: usize) {
        while n > 0 {
            let Some(front) = self.chunks.front_mut() else {
                return;
            };
            let k = n.min(front.records);
            front.records -= k;
            n -= k;
            if front.records == 0 {
                self.chunks.pop_front();
            }
        }
    }

    /// Fetched bytes of the responses still (partly) buffered.
    pub fn bytes(&self) -> usize {
        self.chunks.iter().map(|c| c.bytes).sum()
    }

    /// Whether another response may be buffered behind these.
    fn has_room(&self) -> bool {
        self.fault.is_none() && self.chunks.len() < READ_AHEAD
    }
}

/// Where a partition stands for the next fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fetchable {
    /// Not fetched now: no position, paused, a fetch in flight, an error or
    /// a malformed batch to report first, or backing off.
    No,
    /// Records are buffered up to the read-ahead limit: fetched again once
    /// the application drains some.
    Full,
    /// Fetch from `offset`. `at_end`: the last response put `offset` at the
    /// end of what the broker returns (the last stable offset under
    /// `read_committed`, the high watermark otherwise), so a fetch of this
    /// partition alone would likely wait out `fetch.max.wait.ms`.
    Yes {
        /// Where the fetch starts.
        offset: i64,
        /// Nothing more was there at the last fetch.
        at_end: bool,
    },
}

/// One assigned partition.
#[derive(Debug)]
pub struct PartitionState {
    /// The topic name, shared with every record of this partition.
    pub topic: Arc<str>,
    /// The position, once known.
    pub position: Option<Position>,
    /// How to get a position while there is none.
    pub pending: Pending,
    /// Changes whenever the position is set from outside the fetch path.
    pub version: u64,
    /// Paused by the user: not fetched, buffered records kept.
    pub paused: bool,
    /// A fetch for this partition is in flight.
    pub in_flight: bool,
    /// Fetched records not yet handed out.
    pub buffer: Option<Buffered>,
    /// Do not fetch (or look up) before this time (after an error).
    pub retry_at: Option<Instant>,
    /// An error to report on the next poll.
    pub error: Option<ConsumerError>,
    /// The high watermark from the last fetch (-1 unknown).
    pub high_watermark: i64,
    /// The last stable offset from the last fetch (-1 unknown).
    pub last_stable_offset: i64,
    /// The previous `read_committed` LSO, to count it going backwards
    /// (forgotten on a seek or reset).
    pub lso_watch: LsoWatch,
}

impl PartitionState {
    fn new(topic: Arc<str>, pending: Pending, version: u64) -> Self {
        Self {
            topic,
            position: None,
            pending,
            version,
            paused: false,
            in_flight: false,
            buffer: None,
            retry_at: None,
            error: None,
            high_watermark: -1,
            last_stable_offset: -1,
            lso_watch: LsoWatch::default(),
        }
    }

    /// Sets the position from outside the fetch path: buffered records and
    /// any in-flight fetch become stale.
    pub fn seek(&mut self, position: Option<Position>, pending: Pending, version: u64) {
        self.position = position;
        self.pending = pending;
        self.version = version;
        self.buffer = None;
        self.retry_at = None;
        self.error = None;
        self.lso_watch.forget();
    }

    /// Where the next fetch of this partition starts: the end of what is
    /// buffered, else the position.
    pub fn fetch_offset(&self) -> Option<i64> {
        match &self.buffer {
            Some(b) => Some(b.next_offset),
            None => self.position.map(|p| p.offset),
        }
    }

    /// Whether a fetch may be sent for this partition now, and from where.
    /// `room`: whether all partitions together buffer less than
    /// `fetch.max.bytes`; `read_committed`: the isolation level.
    pub fn fetchable(&self, now: Instant, room: bool, read_committed: bool) -> Fetchable {
        let ready = self.position.is_some()
            && !self.paused
            && !self.in_flight
            && self.error.is_none()
            && self.retry_at.is_none_or(|t| now >= t);
        if !ready {
            return Fetchable::No;
        }
        if let Some(b) = &self.buffer {
            if b.fault.is_some() {
                return Fetchable::No;
            }
            if !room || !b.has_room() {
                return Fetchable::Full;
            }
        }
        let Some(offset) = self.fetch_offset() else {
            return Fetchable::No;
        };
        // Under read_committed the broker returns nothing at or past the
        // last stable offset; an old broker reports none (-1).
        let end = if read_committed && self.last_stable_offset >= 0 {
            self.last_stable_offset
        } else {
            self.high_watermark
        };
        Fetchable::Yes {
            offset,
            at_end: end >= 0 && offset >= end,
        }
    }
}

/// The assigned partitions.
#[derive(Debug, Default)]
pub struct Assignment {
    /// Every assigned partition.
    pub partitions: BTreeMap<TopicPartition, PartitionState>,
    /// Source of versions (never reused).
    next_version: u64,
    /// Where the next drain starts (round robin over partitions).
    drain_from: usize,
}

impl Assignment {
    /// A fresh version number.
    pub fn bump(&mut self) -> u64 {
        self.next_version += 1;
        self.next_version
    }

    /// Replaces the assignment; partitions kept keep their state.
    pub fn set(&mut self, parts: &[TopicPartition], pending: Pending) {
        let keep: BTreeMap<TopicPartition, PartitionState> = std::mem::take(&mut self.partitions)
            .into_iter()
            .filter(|(tp, _)| parts.contains(tp))
            .collect();
        self.partitions = keep;
        for tp in parts {
            if !self.partitions.contains_key(tp) {
                let v = self.bump();
                self.partitions.insert(
                    tp.clone(),
                    PartitionState::new(Arc::from(tp.topic.as_str()), pending, v),
                );
            }
        }
    }

    /// Removes every partition.
    pub fn clear(&mut self) -> Vec<TopicPartition> {
        std::mem::take(&mut self.partitions).into_keys().collect()
    }

    /// The assigned partitions.
    pub fn list(&self) -> Vec<TopicPartition> {
        self.partitions.keys().cloned().collect()
    }

    /// Fetched bytes buffered over every partition.
    pub fn buffered_bytes(&self) -> usize {
        self.partitions
            .values()
            .filter_map(|p| p.buffer.as_ref())
            .map(Buffered::bytes)
            .sum()
    }

    /// Takes the first pending error.
    pub fn take_error(&mut self) -> Option<ConsumerError> {
        self.partitions.values_mut().find_map(|p| p.error.take())
    }

    /// Hands out up to `max` buffered records, a partition at a time starting
    /// after the one served last, moving positions past them. A partition
    /// whose buffer runs dry moves to the buffer's next offset; one that ends
    /// in a malformed batch reports it.
    pub fn drain(&mut self, max: usize) -> Vec<ConsumerRecord> {
        let mut out = Vec::new();
        let n = self.partitions.len();
        if n == 0 {
            return out;
        }
        let start = self.drain_from % n;
        let keys: Vec<TopicPartition> = self
            .partitions
            .keys()
            .cycle()
            .skip(start)
            .take(n)
            .cloned()
            .collect();
        for (i, tp) in keys.iter().enumerate() {
            if out.len() >= max {
                break;
            }
            let Some(st) = self.partitions.get_mut(tp) else {
                continue;
            };
            if st.paused {
                continue;
            }
            let Some(buf) = st.buffer.as_mut() else {
                continue;
            };
            let Some(pos) = st.position.as_mut() else {
                continue;
            };
            let before = out.len();
            while out.len() < max {
                let Some(r) = buf.records.pop_front() else {
                    break;
                };
                pos.offset = r.offset + 1;
                if r.leader_epoch.is_some() {
                    pos.leader_epoch = r.leader_epoch;
                }
                out.push(r);
            }
            buf.handed_out(out.len() - before);
            if buf.records.is_empty() {
                if let Some(f) = buf.fault.take() {
                    pos.offset = pos.offset.max(f.offset);
                    st.error = Some(match f.error {
                        exactly_codec::record::RecordError::DecompressedTooLarge {
                            max, ..
                        } => ConsumerError::DecompressedTooLarge {
                            partition: tp.clone(),
                            offset: f.offset,
                            max,
                        },
                        error => ConsumerError::CorruptRecord {
                            partition: tp.clone(),
                            offset: f.offset,
                            source: error,
                        },
                    });
                } else {
                    pos.offset = pos.offset.max(buf.next_offset);
                }
                st.buffer = None;
            }
            self.drain_from = start + i + 1;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use bytes::Bytes;

    fn rec(tp: &TopicPartition, offset: i64) -> ConsumerRecord {
        ConsumerRecord {
            topic: Arc::from(tp.topic.as_str()),
            partition: tp.partition,
            offset,
            timestamp: 0,
            timestamp_type: crate::record::TimestampType::CreateTime,
            leader_epoch: Some(2),
            key: None,
            value: Some(Bytes::from_static(b"v")),
            headers: Vec::new(),
        }
    }

    #[test]
    fn drain_moves_positions_and_rotates_partitions() {
        let a = TopicPartition::new("t", 0);
        let b = TopicPartition::new("t", 1);
        let mut asg = Assignment::default();
        asg.set(&[a.clone(), b.clone()], Pending::Committed);
        for (tp, base) in [(&a, 10), (&b, 20)] {
            let st = asg.partitions.get_mut(tp).unwrap();
            st.position = Some(Position {
                offset: base,
                leader_epoch: None,
            });
            st.buffer = Some(Buffered::new(
                (base..base + 3).map(|o| rec(tp, o)).collect(),
                base + 5,
                None,
                100,
            ));
        }
        let first = asg.drain(2);
        assert_eq!(first.iter().map(|r| r.offset).collect::<Vec<_>>(), [10, 11]);
        assert_eq!(asg.partitions[&a].position.unwrap().offset, 12);
        assert_eq!(asg.partitions[&a].position.unwrap().leader_epoch, Some(2));
        // The next drain starts with the other partition.
        let second = asg.drain(4);
        assert_eq!(
            second
                .iter()
                .map(|r| (r.partition, r.offset))
                .collect::<Vec<_>>(),
            [(1, 20), (1, 21), (1, 22), (0, 12)]
        );
        // Dry buffers move to their next offset (skipped aborted/control).
        assert_eq!(asg.partitions[&b].position.unwrap().offset, 25);
        assert_eq!(asg.partitions[&a].position.unwrap().offset, 15);
        assert!(asg.partitions.values().all(|p| p.buffer.is_none()));
    }

    #[test]
    fn seek_makes_buffers_stale_and_set_keeps_survivors() {
        let a = TopicPartition::new("t", 0);
        let b = TopicPartition::new("t", 1);
        let mut asg = Assignment::default();
        asg.set(std::slice::from_ref(&a), Pending::Committed);
        let v0 = asg.partitions[&a].version;
        let v = asg.bump();
        let st = asg.partitions.get_mut(&a).unwrap();
        st.buffer = Some(Buffered::default());
        st.seek(
            Some(Position {
                offset: 3,
                leader_epoch: None,
            }),
            Pending::Committed,
            v,
        );
        assert!(st.buffer.is_none() && st.version != v0);
        asg.set(
            &[a.clone(), b.clone()],
            Pending::Reset(OffsetReset::Earliest),
        );
        assert_eq!(asg.partitions[&a].position.unwrap().offset, 3);
        assert_eq!(
            asg.partitions[&b].pending,
            Pending::Reset(OffsetReset::Earliest)
        );
        assert_eq!(asg.clear(), [a, b]);
    }
}
