//! The record accumulator: per-partition open batches that records are
//! encoded straight into (exactly-codec's `BatchBuilder`), the `batch.size`
//! and `linger.ms` triggers, and `buffer.memory` back-pressure.
//!
//! Invariants kept here:
//! - a partition has at most one open batch; a batch leaves the accumulator
//!   (to the driver, which closes it and hands it to the txn core) when it is
//!   full, when its linger time passed and its partition may send, or when
//!   everything is drained (flush, commit, abort, close). Batches of one
//!   partition leave in the order they were opened, so records keep their
//!   per-partition send order;
//! - "full" is `batch.size`, except while the partition is *backlogged*
//!   (the driver already holds `max.in.flight.requests.per.connection`
//!   unresolved batches of it, so a new batch could not be sent anyway):
//!   then the open batch keeps growing, up to the grown-batch limit
//!   (`ProducerConfig::grown_batch_limit`: at most 1,000,000 bytes and
//!   `max.request.size`), and leaves as soon as the partition may send
//!   again. A Produce request carries one batch per partition (brokers
//!   refuse a second RecordBatch v2 for a partition in one request), so
//!   under load one grown batch per request replaces a queue of
//!   `batch.size` ones and a round trip carries up to ~60x more records.
//!   Nothing is sent later than without the rule (the batch could not go
//!   before the partition frees up), and `linger.ms` is untouched;
//! - a new batch's buffer is pre-allocated at most `batch.size` (the size of
//!   the partition's last batch, clamped); a grown batch's buffer grows with
//!   its records, which `buffer.memory` bounds;
//! - every buffered record holds `buffer.memory` permits for its encoded
//!   size (an upper bound) until its batch is delivered or failed: `send`
//!   waits for permits, so buffered bytes never exceed `buffer.memory`;
//! - bookkeeping is per batch (the slot every record's delivery future
//!   shares), never per record: memory per buffered record is its encoded
//!   bytes only;
//! - `send` is checked against the producer's phase under the same lock that
//!   appends, so a record is never appended after its transaction started to
//!   end.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use exactly_codec::{BatchBuilder, Compression};
use exactly_txn::{TopicPartition, UsageError};
use tokio::sync::{Notify, Semaphore, TryAcquireError};
use tokio::time::Instant;

use crate::delivery::{BatchSlot, DeliveryFuture};
use crate::error::ProducerError;
use crate::partitioner::{Partitioner, PartitionerKind};
use crate::record::ProducerRecord;

/// Smallest buffer a new batch starts with.
const MIN_BATCH_CAPACITY: usize = 4096;

/// Whether `send` may append now.
#[derive(Debug, Clone)]
pub(crate) enum Phase {
    /// Records are accepted (idempotent producer, or a transaction is open).
    Accepting,
    /// Transactional producer with no open transaction.
    NoTransaction,
    /// A commit or abort is in progress.
    Completing,
    /// The transaction must be aborted, or the producer is dead.
    Failed(ProducerError),
    /// `close` was called.
    Closed,
}

/// A batch being filled, or full and waiting for the driver.
#[derive(Debug)]
pub(crate) struct OpenBatch {
    pub(crate) tp: TopicPartition,
    pub(crate) builder: BatchBuilder,
    pub(crate) slot: Arc<BatchSlot>,
    pub(crate) created: Instant,
    /// `buffer.memory` permits its records hold.
    pub(crate) reserved: usize,
}

#[derive(Debug, Default)]
struct PartitionAcc {
    open: Option<OpenBatch>,
    /// Size of the last batch closed here: the next one starts that big.
    capacity_hint: usize,
    /// The driver holds as many unresolved batches of this partition as it
    /// may send: the open batch may grow past `batch.size`.
    backlogged: bool,
}

#[derive(Debug)]
struct AccState {
    phase: Phase,
    topics: HashMap<String, Vec<PartitionAcc>>,
    /// Full batches, in the order they filled.
    ready: VecDeque<OpenBatch>,
    partitioner: Partitioner,
}

/// Why a record was not appended.
#[derive(Debug)]
pub(crate) enum AppendError {
    /// The topic's partition count is not known yet: fetch metadata, retry.
    UnknownTopic,
    /// The explicit partition is not below the known partition count.
    NoSuchPartition(usize),
    /// Refused (phase, encoding).
    Refused(ProducerError),
}

/// What the driver takes out.
#[derive(Debug, Default)]
pub(crate) struct Drained {
    pub(crate) batches: Vec<OpenBatch>,
    /// When the next open batch's linger time ends.
    pub(crate) next_linger: Option<Instant>,
}

/// The accumulator shared by `send` callers and the driver.
#[derive(Debug)]
pub(crate) struct Accumulator {
    state: Mutex<AccState>,
    memory: Semaphore,
    /// Wakes the driver: a batch filled, or a batch opened (linger timer).
    pub(crate) wake: Notify,
    batch_size: usize,
    /// How far a backlogged partition's batch may grow (>= `batch_size`).
    max_batch: usize,
    compression: Compression,
}

impl Accumulator {
    pub(crate) fn new(
        batch_size: usize,
        max_batch: usize,
        buffer_memory: usize,
        compression: Compression,
        partitioner: PartitionerKind,
        transactional: bool,
        seed: u64,
    ) -> Self {
        Self {
            state: Mutex::new(AccState {
                phase: if transactional {
                    Phase::NoTransaction
                } else {
                    Phase::Accepting
                },
                topics: HashMap::new(),
                ready: VecDeque::new(),
                partitioner: Partitioner::new(partitioner, batch_size, seed),
            }),
            memory: Semaphore::new(buffer_memory.min(Semaphore::MAX_PERMITS)),
            wake: Notify::new(),
            batch_size,
            max_batch: max_batch.max(batch_size),
            compression,
        }
    }

    fn lock(&self) -> MutexGuard<'_, AccState> {
        // A panic while holding the lock cannot leave the state half-updated
        // in a way that matters more than losing the producer; keep going.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits for `bytes` of `buffer.memory` (at most `max_block`).
    pub(crate) async fn reserve(
        &self,
        bytes: usize,
        max_block: Duration,
    ) -> Result<(), ProducerError> {
        let n = u32::try_from(bytes).unwrap_or(u32::MAX);
        match self.memory.try_acquire_many(n) {
            Ok(p) => {
                p.forget();
                return Ok(());
            }
            Err(TryAcquireError::Closed) => return Err(ProducerError::Closed),
            Err(TryAcquireError::NoPermits) => {}
        }
        match tokio::time::timeout(max_block, self.memory.acquire_many(n)).await {
            Ok(Ok(p)) => {
                p.forget();
                Ok(())
            }
            Ok(Err(_)) => Err(ProducerError::Closed),
            Err(_) => Err(ProducerError::Timeout {
                what: "buffer.memory",
                after: max_block,
            }),
        }
    }

    /// Gives `bytes` of `buffer.memory` back.
    pub(crate) fn release(&self, bytes: usize) {
        if bytes > 0 {
            self.memory.add_permits(bytes);
        }
    }

    /// Permits currently free.
    #[cfg(test)]
    pub(crate) fn available_memory(&self) -> usize {
        self.memory.available_permits()
    }

    /// Records (or raises) the partition count of `topic`.
    pub(crate) fn set_partition_count(&self, topic: &str, count: usize) {
        let mut s = self.lock();
        match s.topics.get_mut(topic) {
            Some(parts) => {
                if parts.len() < count {
                    parts.resize_with(count, PartitionAcc::default);
                }
            }
            None => {
                let mut parts = Vec::with_capacity(count);
                parts.resize_with(count, PartitionAcc::default);
                s.topics.insert(topic.to_owned(), parts);
            }
        }
    }

    /// Topics with a known partition count.
    pub(crate) fn topics(&self) -> Vec<String> {
        self.lock().topics.keys().cloned().collect()
    }

    pub(crate) fn set_phase(&self, phase: Phase) {
        self.lock().phase = phase;
    }

    /// The driver's count of `tp`'s unresolved batches reached its limit
    /// (`on`) or fell below it again: while on, the open batch may grow past
    /// `batch.size` (module docs). Called on the transitions only.
    pub(crate) fn set_backlogged(&self, tp: &TopicPartition, on: bool) {
        let mut s = self.lock();
        if let Some(pa) = s
            .topics
            .get_mut(tp.topic.as_str())
            .and_then(|parts| parts.get_mut(usize::try_from(tp.partition).ok()?))
        {
            pa.backlogged = on;
        }
    }

    /// Appends a record whose encoded size is at most `size` (already
    /// reserved). On success the record is in an open batch and its future is
    /// returned, with whether the driver must be woken.
    pub(crate) fn append(
        &self,
        record: &ProducerRecord<'_>,
        timestamp: i64,
        size: usize,
    ) -> Result<(DeliveryFuture, bool), AppendError> {
        let mut guard = self.lock();
        let AccState {
            phase,
            topics,
            ready,
            partitioner,
        } = &mut *guard;
        match phase {
            Phase::Accepting => {}
            Phase::NoTransaction => {
                return Err(AppendError::Refused(ProducerError::Usage(
                    UsageError::InvalidState {
                        command: "send",
                        state: "Ready (no transaction begun)",
                    },
                )))
            }
            Phase::Completing => {
                return Err(AppendError::Refused(ProducerError::Usage(
                    UsageError::InvalidState {
                        command: "send",
                        state: "Committing or Aborting",
                    },
                )))
            }
            Phase::Failed(e) => return Err(AppendError::Refused(e.clone())),
            Phase::Closed => return Err(AppendError::Refused(ProducerError::Closed)),
        }
        let Some(parts) = topics.get_mut(record.topic) else {
            return Err(AppendError::UnknownTopic);
        };
        let count = parts.len();
        let p = match record.partition {
            Some(p) if p >= 0 && (p as usize) < count => p as usize,
            Some(_) => return Err(AppendError::NoSuchPartition(count)),
            None if count == 0 => return Err(AppendError::NoSuchPartition(0)),
            None => partitioner.partition(record.topic, record.key, size, count as u32) as usize,
        };
        let pa = &mut parts[p];
        let limit = if pa.backlogged {
            self.max_batch
        } else {
            self.batch_size
        };
        let mut wake = false;
        if let Some(open) = &pa.open {
            if !open.builder.is_empty() && open.builder.size_in_bytes() + size > limit {
                if let Some(full) = pa.open.take() {
                    pa.capacity_hint = full.builder.size_in_bytes();
                    ready.push_back(full);
                    wake = true;
                }
            }
        }
        let open = match &mut pa.open {
            Some(open) => open,
            slot @ None => {
                wake = true;
                let capacity = pa
                    .capacity_hint
                    .clamp(MIN_BATCH_CAPACITY, self.batch_size.max(MIN_BATCH_CAPACITY))
                    .max(size);
                slot.insert(OpenBatch {
                    tp: TopicPartition::new(record.topic, p as i32),
                    builder: BatchBuilder::with_capacity(self.compression, capacity),
                    slot: BatchSlot::new(p as i32),
                    created: Instant::now(),
                    reserved: 0,
                })
            }
        };
        let index = open.builder.record_count() as u32;
        open.builder
            .append(timestamp, record.key, record.value, &record.headers)
            .map_err(|e| AppendError::Refused(ProducerError::Encode(e)))?;
        open.reserved += size;
        let future = DeliveryFuture::new(open.slot.clone(), index, timestamp);
        if open.builder.size_in_bytes() >= limit {
            if let Some(full) = pa.open.take() {
                pa.capacity_hint = full.builder.size_in_bytes();
                ready.push_back(full);
                wake = true;
            }
        }
        Ok((future, wake))
    }

    /// Takes the batches that should go now: every full one, and every open
    /// one whose linger time passed, or that reached `batch.size` while its
    /// partition was backlogged, and whose partition `may_send` (or all of
    /// them when `force`). Empty batches (a failed first append) are dropped.
    pub(crate) fn drain(
        &self,
        now: Instant,
        linger: Duration,
        force: bool,
        mut may_send: impl FnMut(&TopicPartition) -> bool,
    ) -> Drained {
        let mut guard = self.lock();
        let AccState { topics, ready, .. } = &mut *guard;
        let mut out = Drained {
            batches: ready.drain(..).collect(),
            next_linger: None,
        };
        for parts in topics.values_mut() {
            for pa in parts.iter_mut() {
                let Some(open) = &pa.open else { continue };
                let due = open.created + linger;
                let full = open.builder.size_in_bytes() >= self.batch_size;
                if open.builder.is_empty() {
                    pa.open = None;
                } else if force || ((due <= now || full) && may_send(&open.tp)) {
                    if let Some(b) = pa.open.take() {
                        pa.capacity_hint = b.builder.size_in_bytes();
                        out.batches.push(b);
                    }
                } else if due > now && out.next_linger.is_none_or(|t| due < t) {
                    out.next_linger = Some(due);
                }
            }
        }
        out.batches.retain(|b| !b.builder.is_empty());
        out
    }

    /// Sets the phase and takes every batch, full or not, under one lock: no
    /// record can be appended between the two.
    pub(crate) fn drain_all_and_set(&self, phase: Phase) -> Vec<OpenBatch> {
        let mut guard = self.lock();
        guard.phase = phase;
        let AccState { topics, ready, .. } = &mut *guard;
        let mut out: Vec<OpenBatch> = ready.drain(..).collect();
        for parts in topics.values_mut() {
            for pa in parts.iter_mut() {
                if let Some(b) = pa.open.take() {
                    out.push(b);
                }
            }
        }
        out.retain(|b| !b.builder.is_empty());
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn acc(batch_size: usize, memory: usize) -> Accumulator {
        let a = Accumulator::new(
            batch_size,
            batch_size,
            memory,
            Compression::None,
            PartitionerKind::Default,
            false,
            1,
        );
        a.set_partition_count("t", 2);
        a
    }

    #[test]
    fn unknown_topic_and_bad_partition() {
        let a = acc(1000, 10_000);
        let r = ProducerRecord::new("other").with_value(b"v");
        assert!(matches!(
            a.append(&r, 0, 50),
            Err(AppendError::UnknownTopic)
        ));
        let r = ProducerRecord::new("t").with_partition(2);
        assert!(matches!(
            a.append(&r, 0, 50),
            Err(AppendError::NoSuchPartition(2))
        ));
    }

    #[test]
    fn batches_fill_then_leave_in_order() {
        let a = acc(200, 10_000);
        let mut futures = Vec::new();
        for i in 0..10u8 {
            let v = [i; 40];
            let r = ProducerRecord::new("t").with_partition(1).with_value(&v);
            let (f, _) = a.append(&r, i64::from(i), 80).unwrap();
            futures.push(f);
        }
        // 10 records of at most 80 B in batches of 200 B: several batches,
        // full ones ready at once, the last one open until linger.
        let now = Instant::now();
        let d = a.drain(now, Duration::from_secs(60), false, |_| true);
        assert!(d.batches.len() >= 2, "{}", d.batches.len());
        assert!(d.next_linger.is_some());
        let rest = a.drain(now, Duration::ZERO, false, |_| true);
        assert_eq!(rest.batches.len(), 1);
        let total: i32 = d
            .batches
            .iter()
            .chain(&rest.batches)
            .map(|b| b.builder.record_count())
            .sum();
        assert_eq!(total, 10);
        // Indexes within each batch start at 0 and follow append order.
        assert_eq!(futures[0].partition(), 1);
        let reserved: usize = d
            .batches
            .iter()
            .chain(&rest.batches)
            .map(|b| b.reserved)
            .sum();
        assert_eq!(reserved, 800);
    }

    #[test]
    fn linger_waits_for_capacity() {
        let a = acc(10_000, 10_000);
        let r = ProducerRecord::new("t").with_partition(0).with_value(b"x");
        let (_, wake) = a.append(&r, 0, 40).unwrap();
        assert!(wake, "a new batch wakes the driver for its linger timer");
        let (_, wake) = a.append(&r, 0, 40).unwrap();
        assert!(!wake, "appending to an open batch does not");
        let later = Instant::now() + Duration::from_millis(10);
        let d = a.drain(later, Duration::from_millis(5), false, |_| false);
        assert!(
            d.batches.is_empty(),
            "partition busy: the batch keeps filling"
        );
        let d = a.drain(later, Duration::from_millis(5), false, |_| true);
        assert_eq!(d.batches.len(), 1);
        assert_eq!(d.batches[0].builder.record_count(), 2);
    }

    /// The growth rule against a model of the driver (at most `LIMIT`
    /// unresolved batches per partition, `set_backlogged` on the
    /// transitions), linger far away so only fullness sends: sizes only, no
    /// timing.
    #[test]
    fn backlog_grows_the_open_batch_up_to_the_limit() {
        const LIMIT: usize = 2;
        let a = Accumulator::new(
            1000,
            4000,
            1 << 20,
            Compression::None,
            PartitionerKind::Default,
            false,
            1,
        );
        a.set_partition_count("t", 1);
        let tp = TopicPartition::new("t", 0);
        let value = [7u8; 90];
        let r = ProducerRecord::new("t")
            .with_partition(0)
            .with_value(&value);
        let size = BatchBuilder::max_record_size(None, Some(&value), &[]);
        let now = Instant::now();
        let linger = Duration::from_secs(60);
        let append = |n: usize| {
            for _ in 0..n {
                a.append(&r, 0, size).unwrap();
            }
        };
        let sizes = |d: &Drained| -> Vec<usize> {
            d.batches
                .iter()
                .map(|b| b.builder.size_in_bytes())
                .collect()
        };

        // Not backlogged: batches leave at batch.size (about 9 records).
        append(25);
        let first = a.drain(now, linger, false, |_| true);
        assert_eq!(first.batches.len(), 2, "{:?}", sizes(&first));
        assert!(sizes(&first).iter().all(|&s| s > 850 && s <= 1000));
        let mut unresolved = first.batches.len();
        assert_eq!(unresolved, LIMIT);
        a.set_backlogged(&tp, true);

        // Backlogged: the open batch grows past batch.size and stays while
        // the partition may not send.
        append(20);
        let held = a.drain(now, linger, false, |_| unresolved < LIMIT);
        assert!(held.batches.is_empty(), "{:?}", sizes(&held));

        // It leaves at the grown-batch limit, never above it.
        append(20);
        let capped = a.drain(now, linger, false, |_| unresolved < LIMIT);
        assert_eq!(capped.batches.len(), 1, "{:?}", sizes(&capped));
        let s = sizes(&capped)[0];
        assert!(s > 3850 && s <= 4000, "{s}");
        unresolved += 1;

        // More records while backlogged: a new batch grows again.
        append(15);
        assert!(a
            .drain(now, linger, false, |_| unresolved < LIMIT)
            .batches
            .is_empty());

        // Two batches resolve: the partition may send, and its grown batch
        // goes at once (it is past batch.size; linger is far).
        unresolved -= 2;
        a.set_backlogged(&tp, false);
        let freed = a.drain(now, linger, false, |_| unresolved < LIMIT);
        assert_eq!(freed.batches.len(), 1);
        let s = sizes(&freed)[0];
        assert!(s > 1000 && s <= 4000, "{s}");

        // Not backlogged any more: batch.size again.
        append(10);
        let again = a.drain(now, linger, false, |_| true);
        assert_eq!(again.batches.len(), 1);
        assert!(sizes(&again)[0] <= 1000);
        let total: i32 = [&first, &capped, &freed, &again]
            .iter()
            .flat_map(|d| d.batches.iter())
            .map(|b| b.builder.record_count())
            .sum();
        let open = a.drain_all_and_set(Phase::Closed);
        let open: i32 = open.iter().map(|b| b.builder.record_count()).sum();
        assert_eq!(total + open, 25 + 20 + 20 + 15 + 10);
    }

    #[test]
    fn phase_gates_append() {
        let a = acc(1000, 10_000);
        let r = ProducerRecord::new("t").with_value(b"x");
        a.append(&r, 0, 40).unwrap();
        let taken = a.drain_all_and_set(Phase::Completing);
        assert_eq!(taken.len(), 1);
        match a.append(&r, 0, 40) {
            Err(AppendError::Refused(ProducerError::Usage(_))) => {}
            other => panic!("{other:?}"),
        }
        a.set_phase(Phase::Closed);
        assert!(matches!(
            a.append(&r, 0, 40),
            Err(AppendError::Refused(ProducerError::Closed))
        ));
    }

    #[test]
    fn memory_is_bounded() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        rt.block_on(async {
            let a = acc(1000, 2048);
            a.reserve(2000, Duration::from_millis(10)).await.unwrap();
            assert_eq!(a.available_memory(), 48);
            let e = a.reserve(100, Duration::from_millis(10)).await.unwrap_err();
            assert!(matches!(e, ProducerError::Timeout { .. }));
            a.release(2000);
            a.reserve(100, Duration::from_millis(10)).await.unwrap();
        });
    }
}
