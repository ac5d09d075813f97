//! What the user writes: a [`Handler`] that turns input records into output
//! records inside the session's open transaction.
//!
//! The session calls [`Handler::process`] with the records of one input
//! partition at a time (a run of one poll's records) and a [`Context`] for
//! that partition: output sent through it joins the open transaction, the
//! input's offsets join it when the handler returns `Ok`. Keeping the call
//! per input partition is what lets per-partition state (a changelog-backed
//! store, restored when the partition is assigned and rolled back on abort)
//! plug into the same context later, as Kafka Streams keeps a task's state
//! per input partition.

use std::future::Future;

use exactly_consumer::ConsumerRecord;
use exactly_producer::{Producer, ProducerError, ProducerRecord, TopicPartition};

use super::metrics::SessionStats;
use crate::state::State;

/// What a handler's failure carries: any error. Returning one aborts the
/// open transaction; the session rewinds to the committed offsets, calls
/// [`Handler::rollback`] and processes the records again.
pub type HandlerError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a transaction was aborted.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AbortReason {
    /// The handler returned an error (from `process` or `before_commit`).
    Handler(String),
    /// The producer reported an abortable error (a failed delivery, a
    /// refused offset commit from a stale generation, ...).
    Producer(String),
    /// The consumer failed in a way that ends the session.
    Consumer(String),
    /// The group took the partitions away without a clean revoke (the
    /// membership was lost): nothing may be committed for them.
    PartitionsLost,
    /// The session was asked to stop with [`ShutdownHandle::abort`], or a
    /// graceful stop ran out of time.
    ///
    /// [`ShutdownHandle::abort`]: crate::ShutdownHandle::abort
    Shutdown,
}

/// How a transaction ended, as [`Handler::transaction_ended`] is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransactionEnd {
    /// Committed: its output and its input offsets are visible together.
    Committed {
        /// Input records it consumed.
        records_in: u64,
        /// Records it produced.
        records_out: u64,
    },
    /// Aborted: none of its output is visible, its input will be read again
    /// (by this session, or by the partition's next owner).
    Aborted {
        /// Why.
        reason: AbortReason,
        /// Input records whose processing was discarded.
        records_in: u64,
    },
}

/// The open transaction's output side: records sent here become visible,
/// all together, when the transaction commits, and never if it aborts.
#[derive(Debug)]
pub struct Output<'a> {
    pub(crate) producer: &'a Producer,
    /// The first error that dooms the transaction (abortable or fatal),
    /// kept even if the handler swallows it: the session aborts then,
    /// whatever the handler returns.
    pub(crate) doomed: &'a mut Option<ProducerError>,
    pub(crate) records_out: &'a mut u64,
}

impl Output<'_> {
    /// Sends one record in the open transaction: any topic, with a key,
    /// headers, an explicit partition or a timestamp as the record says.
    ///
    /// Returns once the record is in the producer's buffer (its delivery is
    /// part of the commit: a transaction with a failed delivery never
    /// commits). An error means the record was not taken. If that error
    /// dooms the transaction (abortable or fatal), the session aborts it
    /// whatever the handler returns; a refusal that leaves the transaction
    /// sound (a record too large, an unknown topic) is the handler's to
    /// decide: return the error to abort and retry, or carry on without
    /// that record.
    pub async fn send(&mut self, record: ProducerRecord<'_>) -> Result<(), ProducerError> {
        match self.producer.send(record).await {
            Ok(_delivery) => {
                *self.records_out += 1;
                Ok(())
            }
            Err(e) => {
                if (e.is_abortable() || e.is_fatal()) && self.doomed.is_none() {
                    *self.doomed = Some(e.clone());
                }
                Err(e)
            }
        }
    }

    /// Records sent in this transaction so far.
    pub fn records_out(&self) -> u64 {
        *self.records_out
    }
}

/// The handler's view of the open transaction for one input partition.
/// Dereferences to [`Output`] to send records.
#[derive(Debug)]
pub struct Context<'a> {
    pub(crate) output: Output<'a>,
    pub(crate) partition: &'a TopicPartition,
    pub(crate) state: Option<State<'a>>,
}

impl<'a> Context<'a> {
    /// The input partition whose records are being processed.
    pub fn partition(&self) -> &TopicPartition {
        self.partition
    }

    /// The input partition's state, when the session keeps state
    /// ([`SessionBuilder::state`](crate::SessionBuilder::state)): reads see
    /// this transaction's writes; writes commit with it, or vanish if it
    /// aborts.
    pub fn state(&mut self) -> Option<&mut State<'a>> {
        self.state.as_mut()
    }

    /// The output side of the transaction.
    pub fn output(&mut self) -> &mut Output<'a> {
        &mut self.output
    }
}

impl<'a> std::ops::Deref for Context<'a> {
    type Target = Output<'a>;
    fn deref(&self) -> &Output<'a> {
        &self.output
    }
}

impl<'a> std::ops::DerefMut for Context<'a> {
    fn deref_mut(&mut self) -> &mut Output<'a> {
        &mut self.output
    }
}

/// An exactly-once processing step, called by [`Session::run`].
///
/// Only [`process`](Handler::process) is required. Every method runs on the
/// session's task, one at a time; a panic in any of them aborts the open
/// transaction and ends the session with [`SessionError::HandlerPanicked`]
/// (the handler's own state cannot be trusted after a panic).
///
/// [`Session::run`]: crate::Session::run
/// [`SessionError::HandlerPanicked`]: crate::SessionError::HandlerPanicked
pub trait Handler: Send {
    /// Processes `records`, all from the input partition
    /// `ctx.partition()`, in offset order, sending 0..N records per input
    /// record through `ctx`. `Ok`: their offsets join the transaction.
    /// `Err`: the transaction aborts, the input is rewound to the committed
    /// offsets, [`rollback`](Handler::rollback) is called, and the records
    /// come again (after `handler.retry.backoff.ms`; the session ends after
    /// `handler.max.retries` consecutive failures, if set).
    fn process(
        &mut self,
        ctx: &mut Context<'_>,
        records: &[ConsumerRecord],
    ) -> impl Future<Output = Result<(), HandlerError>> + Send;

    /// Called right before the transaction commits (after its last
    /// `process`): the place to send what was held back for the end of a
    /// transaction (an aggregate, a summary). `Err` aborts as in
    /// [`process`](Handler::process).
    fn before_commit(
        &mut self,
        out: &mut Output<'_>,
    ) -> impl Future<Output = Result<(), HandlerError>> + Send {
        let _ = out;
        async { Ok(()) }
    }

    /// The open transaction was aborted: whatever the handler changed in
    /// memory while processing input of `partitions` since the last commit
    /// must be undone, because that input will be processed again.
    fn rollback(&mut self, partitions: &[TopicPartition]) {
        let _ = partitions;
    }

    /// The group gave this instance `partitions` (before any of their
    /// records is processed). Under a cooperative assignor (KIP-429) only
    /// the partitions added; the ones kept are not named again.
    fn assigned(&mut self, partitions: &[TopicPartition]) {
        let _ = partitions;
    }

    /// The group is taking `partitions` away (a rebalance); the open
    /// transaction was committed first. Eager assignors take everything; a
    /// cooperative one only the partitions that move, and processing of the
    /// others goes on. `lost`: the membership was lost instead, and the
    /// open transaction was aborted.
    fn revoked(&mut self, partitions: &[TopicPartition], lost: bool) {
        let _ = (partitions, lost);
    }

    /// A transaction ended; `stats` are the session's counters after it.
    /// For progress reporting.
    fn transaction_ended(&mut self, end: &TransactionEnd, stats: &SessionStats) {
        let _ = (end, stats);
    }
}
