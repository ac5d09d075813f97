//! The consumer's counters (the net layer counts requests, bytes and errors
//! of its own; see [`exactly_net::Metrics`]).

use std::sync::atomic::{AtomicU64, Ordering};

use crate::fetch::parse::ParseStats;

/// Live counters, updated without locks.
#[derive(Debug, Default)]
pub struct ConsumerMetrics {
    fetches: AtomicU64,
    fetch_errors: AtomicU64,
    fetches_held: AtomicU64,
    partition_errors: AtomicU64,
    unexpected_partitions: AtomicU64,
    records_fetched: AtomicU64,
    records_delivered: AtomicU64,
    batches: AtomicU64,
    aborted_batches: AtomicU64,
    control_batches: AtomicU64,
    rebalances: AtomicU64,
    commits: AtomicU64,
    decompression_budget_spent: AtomicU64,
    read_committed_anomalies: AtomicU64,
    fetch_session_resets: AtomicU64,
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConsumerMetricsSnapshot {
    /// Fetch responses (or failures) handled.
    pub fetches: u64,
    /// Fetches that failed as a whole (connection lost, top-level error).
    pub fetch_errors: u64,
    /// Fetches not sent because every partition they would name was at its
    /// end while another partition of the same broker waited for the
    /// application to drain its buffered records (they go out with it).
    pub fetches_held: u64,
    /// Partition-level errors in fetch responses.
    pub partition_errors: u64,
    /// Partitions in fetch responses that were not asked for, or came twice.
    pub unexpected_partitions: u64,
    /// Records decoded from fetch responses (before `max.poll.records`).
    pub records_fetched: u64,
    /// Records handed to the user.
    pub records_delivered: u64,
    /// Batches decoded.
    pub batches: u64,
    /// Batches skipped as part of an aborted transaction (`read_committed`).
    pub aborted_batches: u64,
    /// Control batches (transaction markers) skipped.
    pub control_batches: u64,
    /// Completed group joins.
    pub rebalances: u64,
    /// Successful offset commits.
    pub commits: u64,
    /// Partitions whose data a fetch response cut short because the
    /// response had decompressed `fetch.max.uncompressed.bytes` already
    /// (fetched again, first in a later response).
    pub decompression_budget_spent: u64,
    /// Fetch answers that contradict themselves under `read_committed`: a
    /// marker contradicting the aborted-transactions list, no last stable
    /// offset (-1: nothing delivered), a last stable offset above the
    /// high watermark (the high watermark is used instead), or a last stable
    /// offset lower than the previous answer's from the same leader epoch
    /// (reading continues; the position never moves back).
    pub read_committed_anomalies: u64,
    /// Fetch sessions (KIP-227) that had to start over with a full request
    /// (the broker lost the session, an epoch mismatch, a lost request).
    pub fetch_session_resets: u64,
}

fn add(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

impl ConsumerMetrics {
    pub(crate) fn fetch(&self) {
        add(&self.fetches, 1);
    }
    pub(crate) fn fetch_error(&self) {
        add(&self.fetch_errors, 1);
    }
    pub(crate) fn fetch_held(&self) {
        add(&self.fetches_held, 1);
    }
    pub(crate) fn partition_error(&self) {
        add(&self.partition_errors, 1);
    }
    pub(crate) fn unexpected_partition(&self) {
        add(&self.unexpected_partitions, 1);
    }
    pub(crate) fn parsed(&self, s: &ParseStats, records: usize) {
        add(&self.batches, s.batches);
        add(&self.aborted_batches, s.aborted_batches);
        add(&self.control_batches, s.control_batches);
        add(&self.read_committed_anomalies, s.read_committed_anomalies);
        add(&self.records_fetched, records as u64);
    }
    pub(crate) fn delivered(&self, n: usize) {
        add(&self.records_delivered, n as u64);
    }
    pub(crate) fn rebalanced(&self) {
        add(&self.rebalances, 1);
    }
    pub(crate) fn committed(&self) {
        add(&self.commits, 1);
    }
    pub(crate) fn read_committed_anomaly(&self) {
        add(&self.read_committed_anomalies, 1);
    }
    pub(crate) fn fetch_session_reset(&self) {
        add(&self.fetch_session_resets, 1);
    }
    pub(crate) fn decompression_budget_spent(&self) {
        add(&self.decompression_budget_spent, 1);
    }

    /// A snapshot of the counters.
    pub fn snapshot(&self) -> ConsumerMetricsSnapshot {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ConsumerMetricsSnapshot {
            fetches: g(&self.fetches),
            fetch_errors: g(&self.fetch_errors),
            fetches_held: g(&self.fetches_held),
            partition_errors: g(&self.partition_errors),
            unexpected_partitions: g(&self.unexpected_partitions),
            records_fetched: g(&self.records_fetched),
            records_delivered: g(&self.records_delivered),
            batches: g(&self.batches),
            aborted_batches: g(&self.aborted_batches),
            control_batches: g(&self.control_batches),
            rebalances: g(&self.rebalances),
            commits: g(&self.commits),
            decompression_budget_spent: g(&self.decompression_budget_spent),
            read_committed_anomalies: g(&self.read_committed_anomalies),
            fetch_session_resets: g(&self.fetch_session_resets),
        }
    }
}
