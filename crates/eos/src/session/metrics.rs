//! The session's counters: shared with [`SessionMetrics`] handles so another
//! task (a metrics exporter, a health check) can read them while the
//! session runs, and returned as a [`SessionStats`] snapshot when it ends.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A snapshot of a session's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionStats {
    /// Input records handed to the handler (records of an aborted
    /// transaction count again when processed again).
    pub records_in: u64,
    /// Records the handler sent (in committed and aborted transactions).
    pub records_out: u64,
    /// Input records of committed transactions.
    pub records_committed: u64,
    /// Output records of committed transactions.
    pub records_out_committed: u64,
    /// Transactions committed.
    pub transactions_committed: u64,
    /// Transactions aborted, for any reason.
    pub transactions_aborted: u64,
    /// ... of which because the handler returned an error.
    pub aborted_by_handler: u64,
    /// ... of which because of an abortable producer error.
    pub aborted_on_error: u64,
    /// ... of which because partitions were lost.
    pub aborted_on_lost: u64,
    /// Rebalance events (revoked, assigned, lost).
    pub rebalances: u64,
    /// How long the last commit took (offsets into the transaction, then
    /// EndTxn), in microseconds.
    pub last_commit_latency_us: u64,
}

impl SessionStats {
    /// [`SessionStats::last_commit_latency_us`] as a duration.
    pub fn last_commit_latency(&self) -> Duration {
        Duration::from_micros(self.last_commit_latency_us)
    }
}

#[derive(Debug, Default)]
struct Counters {
    records_in: AtomicU64,
    records_out: AtomicU64,
    records_committed: AtomicU64,
    records_out_committed: AtomicU64,
    transactions_committed: AtomicU64,
    transactions_aborted: AtomicU64,
    aborted_by_handler: AtomicU64,
    aborted_on_error: AtomicU64,
    aborted_on_lost: AtomicU64,
    rebalances: AtomicU64,
    last_commit_latency_us: AtomicU64,
}

/// A live view of a session's counters (cheap to clone).
#[derive(Debug, Clone, Default)]
pub struct SessionMetrics {
    inner: Arc<Counters>,
}

/// Which counter an abort adds to, besides the total.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AbortKind {
    Handler,
    Error,
    Lost,
    Shutdown,
}

impl SessionMetrics {
    /// The counters now.
    pub fn snapshot(&self) -> SessionStats {
        let c = &*self.inner;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        SessionStats {
            records_in: get(&c.records_in),
            records_out: get(&c.records_out),
            records_committed: get(&c.records_committed),
            records_out_committed: get(&c.records_out_committed),
            transactions_committed: get(&c.transactions_committed),
            transactions_aborted: get(&c.transactions_aborted),
            aborted_by_handler: get(&c.aborted_by_handler),
            aborted_on_error: get(&c.aborted_on_error),
            aborted_on_lost: get(&c.aborted_on_lost),
            rebalances: get(&c.rebalances),
            last_commit_latency_us: get(&c.last_commit_latency_us),
        }
    }

    pub(crate) fn processed(&self, records_in: u64) {
        self.inner
            .records_in
            .fetch_add(records_in, Ordering::Relaxed);
    }

    pub(crate) fn sent(&self, records_out: u64) {
        self.inner
            .records_out
            .fetch_add(records_out, Ordering::Relaxed);
    }

    pub(crate) fn committed(&self, records_in: u64, records_out: u64, latency: Duration) {
        let c = &*self.inner;
        c.transactions_committed.fetch_add(1, Ordering::Relaxed);
        c.records_committed.fetch_add(records_in, Ordering::Relaxed);
        c.records_out_committed
            .fetch_add(records_out, Ordering::Relaxed);
        c.last_commit_latency_us.store(
            u64::try_from(latency.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    pub(crate) fn aborted(&self, kind: AbortKind) {
        let c = &*self.inner;
        c.transactions_aborted.fetch_add(1, Ordering::Relaxed);
        let by = match kind {
            AbortKind::Handler => &c.aborted_by_handler,
            AbortKind::Error => &c.aborted_on_error,
            AbortKind::Lost => &c.aborted_on_lost,
            AbortKind::Shutdown => return,
        };
        by.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn rebalanced(&self) {
        self.inner.rebalances.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_what_happened() {
        let m = SessionMetrics::default();
        m.processed(10);
        m.sent(15);
        m.committed(10, 15, Duration::from_millis(3));
        m.processed(4);
        m.aborted(AbortKind::Handler);
        m.aborted(AbortKind::Shutdown);
        m.rebalanced();
        let s = m.clone().snapshot();
        assert_eq!(
            s,
            SessionStats {
                records_in: 14,
                records_out: 15,
                records_committed: 10,
                records_out_committed: 15,
                transactions_committed: 1,
                transactions_aborted: 2,
                aborted_by_handler: 1,
                aborted_on_error: 0,
                aborted_on_lost: 0,
                rebalances: 1,
                last_commit_latency_us: 3000,
            }
        );
        assert_eq!(s.last_commit_latency(), Duration::from_millis(3));
    }
}
