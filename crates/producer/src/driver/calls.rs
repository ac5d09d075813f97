//! The application's calls (`Command`s from the `Producer` handles) and the
//! core's events that answer them; the bookkeeping of who waits is in
//! `waiters.rs`.

use std::time::Duration;

use exactly_txn::{Event, Millis, UsageError};
use tokio::time::Instant;

use super::waiters::{Reply, TxnOpKind, TxnOpStart};
use super::{Command, Driver};
use crate::accumulator::Phase;
use crate::delivery::BatchAck;
use crate::error::ProducerError;

impl Driver {
    pub(super) fn on_command(&mut self, cmd: Command) {
        let now = Instant::now();
        let m = self.millis(now);
        if self.waiters.closing().is_some() {
            match cmd {
                Command::Close { timeout, reply } => self.begin_close(Some(reply), now + timeout),
                Command::Flush(reply) => self.flush(now, reply),
                Command::InitTransactions(reply)
                | Command::Begin(reply)
                | Command::SendOffsets { reply, .. }
                | Command::Commit(reply)
                | Command::Abort(reply) => {
                    let _ = reply.send(Err(ProducerError::Closed));
                }
            }
            return;
        }
        match cmd {
            Command::InitTransactions(reply) => match self.core.init(m) {
                Ok(()) => self.waiters.wait_init(reply),
                Err(e) => {
                    let _ = reply.send(Err(ProducerError::Usage(e)));
                }
            },
            // Between transactions the core may re-initialize its epoch:
            // flow v1 after an abort whose requests may still land, or after
            // a commit with a once-unanswered EndTxn or TxnOffsetCommit
            // (fencing them), or for a new producer id. Java's
            // abortTransaction returns only after such a bump; ours returns
            // once the transaction is decided, and the next begin waits for
            // the new identity instead of failing.
            Command::Begin(reply) => self.begin(m, reply),
            Command::SendOffsets {
                group,
                offsets,
                reply,
            } => match self.core.add_offsets(m, group, offsets) {
                Ok(id) => self.waiters.wait_offsets(id, reply),
                Err(e) => {
                    let _ = reply.send(Err(ProducerError::Usage(e)));
                }
            },
            Command::Commit(reply) => self.start_txn_op(TxnOpKind::Commit, now, reply),
            Command::Abort(reply) => self.start_txn_op(TxnOpKind::Abort, now, reply),
            Command::Flush(reply) => self.flush(now, reply),
            Command::Close { timeout, reply } => self.begin_close(Some(reply), now + timeout),
        }
    }

    /// What the core reported, turned into deliveries and answers.
    pub(super) fn on_event(&mut self, ev: Event) {
        tracing::trace!(?ev, "event");
        match ev {
            Event::Delivered {
                batch, base_offset, ..
            } => {
                let log_append_time = self.batches.get(&batch).and_then(|b| b.log_append_time);
                self.resolve(
                    batch,
                    Ok(BatchAck {
                        base_offset,
                        log_append_time,
                    }),
                );
            }
            Event::DeliveryFailed { batch, error } => {
                let transactional = self.core.is_transactional();
                self.resolve(
                    batch,
                    Err(ProducerError::Delivery {
                        error,
                        transactional,
                    }),
                );
            }
            Event::RefreshMetadata { .. } => self.refresh_metadata(),
            Event::OffsetsCommitted { id } => self.waiters.offsets_committed(id),
            Event::Initialized { identity } => {
                self.record_identity(identity, None);
                self.waiters.initialized();
                self.resume_begins();
            }
            Event::IdentityChanged { identity, cause } => {
                self.record_identity(identity, Some(cause));
                self.resume_begins();
            }
            Event::Committed { .. } => {
                let latency = self.commit_started.take().map(|t| t.elapsed());
                self.metrics.committed(latency);
                self.waiters.committed();
            }
            Event::Aborted { .. } => {
                self.commit_started = None;
                self.metrics.aborted();
                self.waiters.aborted();
            }
            Event::AbortableError { error } => {
                tracing::debug!(%error, "transaction must be aborted");
                self.waiters.abortable(ProducerError::txn(error));
            }
            Event::Fatal { error } => {
                tracing::warn!(%error, "producer failed fatally");
                self.waiters.fatal(ProducerError::txn(error));
            }
        }
    }

    /// Begins a transaction, or keeps the call waiting while the core
    /// re-initializes between transactions.
    fn begin(&mut self, m: Millis, reply: Reply) {
        match self.core.begin(m) {
            Err(UsageError::Reinitializing { .. }) => self.waiters.wait_begin(reply),
            r => {
                self.sync_phase();
                let _ = reply.send(r.map_err(ProducerError::Usage));
            }
        }
    }

    /// Asks again for the `begin_transaction` calls that waited for the
    /// core to re-initialize (after a new identity).
    fn resume_begins(&mut self) {
        let waiting = self.waiters.take_begins();
        if waiting.is_empty() {
            return;
        }
        let m = self.millis(Instant::now());
        for reply in waiting {
            self.begin(m, reply);
        }
    }

    fn start_txn_op(&mut self, kind: TxnOpKind, now: Instant, reply: Reply) {
        let reply = match self.waiters.start_txn_op(kind, reply) {
            TxnOpStart::Ask(reply) => reply,
            TxnOpStart::Joined => return,
            TxnOpStart::Refuse(reply) => {
                let e = self.core.refusal(kind.command());
                let _ = reply.send(Err(ProducerError::Usage(e)));
                return;
            }
        };
        let m = self.millis(now);
        let result = match kind {
            TxnOpKind::Commit => {
                // Every record sent before the commit goes into it: take all
                // batches (and stop appends) under one lock.
                let batches = self.acc.drain_all_and_set(Phase::Completing);
                for b in batches {
                    self.enqueue(now, b);
                }
                self.core.commit(m)
            }
            TxnOpKind::Abort => {
                let r = self.core.abort(m);
                if r.is_ok() {
                    let batches = self.acc.drain_all_and_set(Phase::Completing);
                    self.fail_aborted(batches);
                }
                r
            }
        };
        match result {
            Ok(()) => {
                if kind == TxnOpKind::Commit {
                    self.commit_started = Some(now);
                }
                self.waiters.txn_op_started(kind, reply);
            }
            Err(e) => {
                let _ = reply.send(Err(ProducerError::Usage(e)));
            }
        }
        self.sync_phase();
    }

    fn flush(&mut self, now: Instant, reply: Reply) {
        let batches = self.acc.drain(now, self.cfg.linger, true, |_| true).batches;
        let mut error = None;
        for b in batches {
            if let Some(e) = self.enqueue(now, b) {
                error.get_or_insert(e);
            }
        }
        self.waiters.wait_flush(self.next_batch, error, reply);
    }

    pub(super) fn begin_close(&mut self, reply: Option<Reply>, deadline: Instant) {
        if !self.waiters.close(reply, deadline) {
            return;
        }
        let now = Instant::now();
        let batches = self.acc.drain_all_and_set(Phase::Closed);
        if self.core.is_transactional() {
            // Records of an unfinished transaction are not sent: abort it
            // (as the Java client does on close).
            self.fail_aborted(batches);
            if self.core.abort_left_open(self.millis(now)) {
                tracing::debug!("aborting the open transaction on close");
            }
        } else {
            for b in batches {
                self.enqueue(now, b);
            }
        }
    }

    /// Ends the run when closing and nothing is left (or the deadline
    /// passed). Returns whether the driver should stop.
    pub(super) fn finish_close_if_done(&mut self) -> bool {
        let Some(c) = self.waiters.closing() else {
            return false;
        };
        let busy = !self.batches.is_empty()
            || self.core.ending_transaction()
            || self.core.requests_in_flight() > 0 && self.core.is_transactional();
        let timed_out = Instant::now() >= c.deadline;
        if busy && !timed_out {
            return false;
        }
        let result = if busy {
            Err(ProducerError::Timeout {
                what: "close",
                after: Duration::ZERO,
            })
        } else {
            Ok(())
        };
        let left: Vec<_> = self.batches.keys().copied().collect();
        for id in left {
            self.resolve(id, Err(ProducerError::Closed));
        }
        self.waiters.closed(result);
        true
    }
}
