//! The producer's own counters: what it delivered, what it resent, how its
//! identity moved and how its transactions ended. The net layer counts
//! requests, bytes on the wire and errors by code apart
//! ([`exactly_net::Metrics`], [`crate::Producer::metrics`]).
//!
//! Who counts: the driver, from the sans-IO core's events (a batch's
//! `Delivered`/`DeliveryFailed`, `IdentityChanged` with its cause,
//! `Committed`/`Aborted`) and from the Produce requests the core asks for.
//! The core itself counts nothing and knows no metrics crate. Everything is
//! counted per batch, never per record, with relaxed atomic adds: the
//! per-record path (`send`) is untouched.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::Duration;

use exactly_txn::{IdentityCause, ProducerIdentity};

/// Commit latencies kept for [`ProducerMetrics::take_commit_latencies`]
/// when nobody takes them (the oldest go first).
const KEPT_LATENCIES: usize = 1024;

/// Every [`IdentityCause`], in the order of [`ProducerMetricsSnapshot::epoch_bumps`].
pub const IDENTITY_CAUSES: [IdentityCause; 6] = [
    IdentityCause::EndTxn,
    IdentityCause::Abort,
    IdentityCause::FenceLateRequests,
    IdentityCause::MissingIdentity,
    IdentityCause::EpochExhausted,
    IdentityCause::SequenceReset,
];

fn cause_index(c: IdentityCause) -> usize {
    match c {
        IdentityCause::EndTxn => 0,
        IdentityCause::Abort => 1,
        IdentityCause::FenceLateRequests => 2,
        IdentityCause::MissingIdentity => 3,
        IdentityCause::EpochExhausted => 4,
        IdentityCause::SequenceReset => 5,
    }
}

/// Live counters, shared by the driver (which updates them) and the
/// [`crate::Producer`] handles (which read them).
#[derive(Debug, Default)]
pub struct ProducerMetrics {
    records_sent: AtomicU64,
    batches_sent: AtomicU64,
    bytes_sent: AtomicU64,
    records_failed: AtomicU64,
    batches_failed: AtomicU64,
    retries: AtomicU64,
    epoch_bumps: [AtomicU64; IDENTITY_CAUSES.len()],
    producer_id_rotations: AtomicU64,
    transactions_committed: AtomicU64,
    transactions_aborted: AtomicU64,
    commit_latency_us_total: AtomicU64,
    last_commit_latency_us: AtomicU64,
    commit_latencies: Mutex<VecDeque<Duration>>,
}

/// A copy of the counters at one moment (each exact, the set not taken
/// atomically).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProducerMetricsSnapshot {
    /// Records in batches the partition leader acknowledged. For a
    /// transactional producer they become visible only if their
    /// transaction commits.
    pub records_sent: u64,
    /// Batches the partition leader acknowledged.
    pub batches_sent: u64,
    /// Record-batch bytes (as encoded and compressed, headers included) of
    /// the acknowledged batches, each counted once however often it was
    /// sent. The wire bytes, resends and request framing included, are the
    /// net layer's `bytes_out`.
    pub bytes_sent: u64,
    /// Records in batches that failed (not acknowledged; some may have been
    /// written, see `DeliveryError::maybe_written`), including records of
    /// an aborted transaction that were never sent.
    pub records_failed: u64,
    /// Batches that failed (as `records_failed`; batches of an aborted
    /// transaction never handed to the core are not batches yet and are
    /// counted in `records_failed` only).
    pub batches_failed: u64,
    /// Produce requests for a batch after its first one (after a retriable
    /// error, a lost connection, a timeout, or an epoch bump's re-stamp).
    pub retries: u64,
    /// Epoch bumps (the same producer id, a new epoch), by cause in the
    /// order of [`IDENTITY_CAUSES`]. Under transaction protocol v2 (KIP-890)
    /// every ended transaction bumps the epoch (`EndTxn`); under v1 this
    /// producer bumps after every abort (`Abort`) to fence its late
    /// requests.
    pub epoch_bumps: [u64; IDENTITY_CAUSES.len()],
    /// New identities with a different producer id (whatever the cause).
    pub producer_id_rotations: u64,
    /// Transactions committed (EndTxn(commit) succeeded).
    pub transactions_committed: u64,
    /// Transactions aborted (by the application, on close, or after an
    /// abortable error).
    pub transactions_aborted: u64,
    /// Sum of the commit latencies, in microseconds.
    pub commit_latency_us_total: u64,
    /// The last commit's latency, in microseconds.
    pub last_commit_latency_us: u64,
}

impl ProducerMetricsSnapshot {
    /// Epoch bumps of one cause.
    pub fn epoch_bumps_of(&self, cause: IdentityCause) -> u64 {
        self.epoch_bumps[cause_index(cause)]
    }

    /// Epoch bumps of every cause.
    pub fn epoch_bumps_total(&self) -> u64 {
        self.epoch_bumps.iter().sum()
    }
}

impl ProducerMetrics {
    pub(crate) fn batch_sent(&self, records: u64, bytes: u64) {
        self.records_sent.fetch_add(records, Relaxed);
        self.batches_sent.fetch_add(1, Relaxed);
        self.bytes_sent.fetch_add(bytes, Relaxed);
    }

    pub(crate) fn batch_failed(&self, records: u64) {
        self.records_failed.fetch_add(records, Relaxed);
        self.batches_failed.fetch_add(1, Relaxed);
    }

    /// Records failed before they became a batch of the core.
    pub(crate) fn records_failed(&self, records: u64) {
        self.records_failed.fetch_add(records, Relaxed);
    }

    pub(crate) fn retry(&self) {
        self.retries.fetch_add(1, Relaxed);
    }

    /// A new identity after `previous`: an epoch bump or a rotation.
    pub(crate) fn identity_changed(
        &self,
        previous: Option<ProducerIdentity>,
        next: ProducerIdentity,
        cause: IdentityCause,
    ) {
        match previous {
            Some(p) if p.producer_id == next.producer_id => {
                if p.epoch != next.epoch {
                    self.epoch_bumps[cause_index(cause)].fetch_add(1, Relaxed);
                }
            }
            _ => {
                self.producer_id_rotations.fetch_add(1, Relaxed);
            }
        }
    }

    pub(crate) fn committed(&self, latency: Option<Duration>) {
        self.transactions_committed.fetch_add(1, Relaxed);
        let Some(latency) = latency else {
            return;
        };
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.commit_latency_us_total.fetch_add(us, Relaxed);
        self.last_commit_latency_us.store(us, Relaxed);
        // A poisoned lock only means a panic elsewhere while pushing: the
        // queue itself is still a queue.
        let mut kept = self
            .commit_latencies
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if kept.len() == KEPT_LATENCIES {
            kept.pop_front();
        }
        kept.push_back(latency);
    }

    pub(crate) fn aborted(&self) {
        self.transactions_aborted.fetch_add(1, Relaxed);
    }

    /// The commit latencies (from the `commit_transaction` call to the
    /// coordinator's answer) recorded since the last call, oldest first; at
    /// most the last 1024. For a histogram exporter: each latency is handed
    /// out once.
    pub fn take_commit_latencies(&self) -> Vec<Duration> {
        let mut kept = self
            .commit_latencies
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        kept.drain(..).collect()
    }

    /// A snapshot of the counters.
    pub fn snapshot(&self) -> ProducerMetricsSnapshot {
        let g = |c: &AtomicU64| c.load(Relaxed);
        ProducerMetricsSnapshot {
            records_sent: g(&self.records_sent),
            batches_sent: g(&self.batches_sent),
            bytes_sent: g(&self.bytes_sent),
            records_failed: g(&self.records_failed),
            batches_failed: g(&self.batches_failed),
            retries: g(&self.retries),
            epoch_bumps: std::array::from_fn(|i| g(&self.epoch_bumps[i])),
            producer_id_rotations: g(&self.producer_id_rotations),
            transactions_committed: g(&self.transactions_committed),
            transactions_aborted: g(&self.transactions_aborted),
            commit_latency_us_total: g(&self.commit_latency_us_total),
            last_commit_latency_us: g(&self.last_commit_latency_us),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(pid: i64, epoch: i16) -> ProducerIdentity {
        ProducerIdentity::new(pid, epoch)
    }

    #[test]
    fn identity_changes_split_into_bumps_by_cause_and_rotations() {
        let m = ProducerMetrics::default();
        m.identity_changed(Some(id(7, 0)), id(7, 1), IdentityCause::EndTxn);
        m.identity_changed(Some(id(7, 1)), id(7, 2), IdentityCause::Abort);
        m.identity_changed(Some(id(7, 2)), id(8, 0), IdentityCause::EpochExhausted);
        m.identity_changed(None, id(9, 0), IdentityCause::Abort);
        // The same identity again is no bump.
        m.identity_changed(Some(id(9, 0)), id(9, 0), IdentityCause::Abort);
        let s = m.snapshot();
        assert_eq!(s.epoch_bumps_of(IdentityCause::EndTxn), 1);
        assert_eq!(s.epoch_bumps_of(IdentityCause::Abort), 1);
        assert_eq!(s.epoch_bumps_of(IdentityCause::EpochExhausted), 0);
        assert_eq!(s.epoch_bumps_total(), 2);
        assert_eq!(s.producer_id_rotations, 2);
        for (i, c) in IDENTITY_CAUSES.iter().enumerate() {
            assert_eq!(cause_index(*c), i);
        }
    }

    #[test]
    fn commit_latencies_are_handed_out_once_and_bounded() {
        let m = ProducerMetrics::default();
        m.committed(Some(Duration::from_millis(3)));
        m.committed(Some(Duration::from_millis(5)));
        m.committed(None);
        let s = m.snapshot();
        assert_eq!(s.transactions_committed, 3);
        assert_eq!(s.commit_latency_us_total, 8_000);
        assert_eq!(s.last_commit_latency_us, 5_000);
        assert_eq!(
            m.take_commit_latencies(),
            [Duration::from_millis(3), Duration::from_millis(5)]
        );
        assert!(m.take_commit_latencies().is_empty());
        for i in 0..KEPT_LATENCIES as u64 + 10 {
            m.committed(Some(Duration::from_micros(i)));
        }
        let kept = m.take_commit_latencies();
        assert_eq!(kept.len(), KEPT_LATENCIES);
        assert_eq!(kept[0], Duration::from_micros(10), "the oldest went first");
    }

    #[test]
    fn batches_count_records_and_bytes_once() {
        let m = ProducerMetrics::default();
        m.batch_sent(10, 700);
        m.batch_sent(5, 300);
        m.batch_failed(4);
        m.records_failed(2);
        m.retry();
        let s = m.snapshot();
        assert_eq!(
            (s.records_sent, s.batches_sent, s.bytes_sent),
            (15, 2, 1000)
        );
        assert_eq!((s.records_failed, s.batches_failed, s.retries), (6, 1, 1));
    }
}
