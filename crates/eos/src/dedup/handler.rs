//! [`Deduplicate`]: a session handler that drops duplicate input records
//! before the inner handler sees them, with the seen-set in the session's
//! state (so in its changelog, in the same transaction as everything else).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use exactly_consumer::ConsumerRecord;
use exactly_producer::TopicPartition;

use super::{Dedup, MessageId, SeenLimits, StateSeenStore, Verdict};
use crate::session::{Context, Handler, HandlerError, Output, SessionStats, TransactionEnd};

/// What a [`Deduplicate`] has done, readable while the session runs.
/// Counts committed and aborted work alike (a record skipped in an aborted
/// transaction is counted again when it is skipped on the retry).
#[derive(Debug, Clone, Default)]
pub struct DedupCounters {
    passed: Arc<AtomicU64>,
    skipped: Arc<AtomicU64>,
    without_id: Arc<AtomicU64>,
}

impl DedupCounters {
    /// Records handed to the inner handler as new.
    pub fn passed(&self) -> u64 {
        self.passed.load(Ordering::Relaxed)
    }
    /// Duplicates dropped.
    pub fn skipped(&self) -> u64 {
        self.skipped.load(Ordering::Relaxed)
    }
    /// Records without an id (handed to the inner handler).
    pub fn without_id(&self) -> u64 {
        self.without_id.load(Ordering::Relaxed)
    }
}

/// Wraps a session [`Handler`]: each input record whose [`MessageId`] was
/// already seen on its partition is dropped (its offset still commits), the
/// others go to the inner handler and their ids join the seen-set in the
/// same transaction. Needs the session's state
/// ([`SessionBuilder::state`](crate::SessionBuilder::state)); the seen-set
/// shares it under [`STATE_KEY_PREFIX`](super::STATE_KEY_PREFIX).
///
/// ```no_run
/// use exactly_eos::dedup::{Deduplicate, MessageId, SeenLimits};
/// use exactly_eos::{per_record, OutputRecord, Session, StateConfig};
///
/// # async fn demo() -> Result<(), exactly_eos::SessionError> {
/// let mut b = Session::builder();
/// b.bootstrap_servers("127.0.0.1:9092")?;
/// b.group_id("payments")
///     .transactional_id("payments-1")
///     .input_topics(&["payments-at-least-once"])
///     .state(StateConfig::new("seen"));
/// let copy = per_record(|r, out| {
///     out.push(OutputRecord::new("payments").with_value(r.value().cloned().unwrap_or_default()));
///     Ok(())
/// });
/// let handler = Deduplicate::new(copy, MessageId::header("message-id"), SeenLimits::default());
/// b.build().await?.run(handler).await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Deduplicate<H> {
    inner: H,
    dedup: Dedup,
    counters: DedupCounters,
}

impl<H: Handler> Deduplicate<H> {
    /// `inner`, fed only records whose `id` it has not seen.
    pub fn new(inner: H, id: MessageId, limits: SeenLimits) -> Self {
        Self {
            inner,
            dedup: Dedup::new(id, limits),
            counters: DedupCounters::default(),
        }
    }

    /// Counters shared with the running handler.
    pub fn counters(&self) -> DedupCounters {
        self.counters.clone()
    }

    /// Splits `records` into the new ones (marked seen in `ctx`'s state)
    /// and counts the rest.
    fn filter(
        &mut self,
        ctx: &mut Context<'_>,
        records: &[ConsumerRecord],
    ) -> Result<Vec<ConsumerRecord>, HandlerError> {
        let tp = ctx.partition().clone();
        let state = ctx.state().ok_or(
            "Deduplicate keeps its seen-set in the session's state: configure SessionBuilder::state",
        )?;
        let mut store = StateSeenStore::new(state);
        let mut fresh = Vec::with_capacity(records.len());
        let (mut passed, mut skipped, mut no_id) = (0u64, 0u64, 0u64);
        for r in records {
            match self.dedup.admit(&tp, &mut store, r) {
                Verdict::New(_) => {
                    passed += 1;
                    fresh.push(r.clone());
                }
                Verdict::NoId => {
                    no_id += 1;
                    fresh.push(r.clone());
                }
                Verdict::Duplicate(id) => {
                    skipped += 1;
                    tracing::debug!(partition = %tp, offset = r.offset(), id = ?id, "duplicate skipped");
                }
            }
        }
        self.counters.passed.fetch_add(passed, Ordering::Relaxed);
        self.counters.skipped.fetch_add(skipped, Ordering::Relaxed);
        self.counters.without_id.fetch_add(no_id, Ordering::Relaxed);
        Ok(fresh)
    }
}

impl<H: Handler> Handler for Deduplicate<H> {
    async fn process(
        &mut self,
        ctx: &mut Context<'_>,
        records: &[ConsumerRecord],
    ) -> Result<(), HandlerError> {
        let fresh = self.filter(ctx, records)?;
        if fresh.is_empty() {
            return Ok(());
        }
        self.inner.process(ctx, &fresh).await
    }

    async fn before_commit(&mut self, out: &mut Output<'_>) -> Result<(), HandlerError> {
        self.inner.before_commit(out).await
    }

    fn rollback(&mut self, partitions: &[TopicPartition]) {
        // The state dropped this transaction's marks: reload from it.
        self.dedup.forget(partitions);
        self.inner.rollback(partitions);
    }

    fn assigned(&mut self, partitions: &[TopicPartition]) {
        self.dedup.forget(partitions);
        self.inner.assigned(partitions);
    }

    fn revoked(&mut self, partitions: &[TopicPartition], lost: bool) {
        self.dedup.forget(partitions);
        self.inner.revoked(partitions, lost);
    }

    fn transaction_ended(&mut self, end: &TransactionEnd, stats: &SessionStats) {
        self.inner.transaction_ended(end, stats);
    }
}
