//! Batches in and out of the driver: taken from the accumulator, closed and
//! handed to the core, resolved (delivery futures completed, memory
//! released) when the core reports them; and the identity span.

use exactly_txn::{BatchId, DeliveryError, DeliveryFailure, IdentityCause, ProducerIdentity};
use tokio::time::Instant;

use super::{Driver, DriverBatch};
use crate::accumulator::OpenBatch;
use crate::delivery::{BatchAck, BatchSlot};
use crate::error::ProducerError;

impl Driver {
    /// Takes due batches from the accumulator and hands them to the core.
    pub(super) fn drain_accumulator(&mut self, now: Instant, force: bool) -> bool {
        let limit = self.partition_limit();
        let per_partition = &self.per_partition;
        let drained = self.acc.drain(now, self.cfg.linger, force, |tp| {
            per_partition.get(tp).copied().unwrap_or(0) < limit
        });
        self.next_linger = drained.next_linger;
        let any = !drained.batches.is_empty();
        for b in drained.batches {
            self.enqueue(now, b);
        }
        any
    }

    /// How many unresolved batches of one partition the driver takes from
    /// the accumulator before its open batch waits (and may grow).
    fn partition_limit(&self) -> usize {
        self.cfg.max_in_flight.clamp(1, 5)
    }

    /// Closes a batch and gives it to the core; a refusal fails its records.
    pub(super) fn enqueue(&mut self, now: Instant, b: OpenBatch) -> Option<ProducerError> {
        let OpenBatch {
            tp,
            builder,
            slot,
            reserved,
            ..
        } = b;
        let records = builder.record_count() as u32;
        let closed = match builder.close() {
            Ok(c) => c,
            Err(e) => {
                return Some(self.fail_unqueued(&slot, reserved, records, ProducerError::Encode(e)))
            }
        };
        match self.core.enqueue(self.millis(now), tp.clone(), records) {
            Ok(id) => {
                let limit = self.partition_limit();
                let n = self.per_partition.entry(tp.clone()).or_default();
                *n += 1;
                if *n == limit {
                    // Backlogged: its open batch may grow past batch.size.
                    self.acc.set_backlogged(&tp, true);
                }
                self.next_batch = self.next_batch.max(id.0 + 1);
                self.batches.insert(
                    id,
                    DriverBatch {
                        closed,
                        slot,
                        tp,
                        reserved,
                        log_append_time: None,
                        sends: 0,
                    },
                );
                None
            }
            Err(e) => Some(self.fail_unqueued(&slot, reserved, records, ProducerError::Usage(e))),
        }
    }

    fn fail_unqueued(
        &self,
        slot: &BatchSlot,
        reserved: usize,
        records: u32,
        e: ProducerError,
    ) -> ProducerError {
        self.metrics.records_failed(u64::from(records));
        self.acc.release(reserved);
        slot.complete(Err(e.clone()));
        e
    }

    /// Fails batches that never reached the core (abort, close of a
    /// transactional producer): certainly not written.
    pub(super) fn fail_aborted(&self, batches: Vec<OpenBatch>) {
        for b in batches {
            let e = ProducerError::Delivery {
                error: DeliveryError {
                    failure: DeliveryFailure::Aborted,
                    partition: b.tp.clone(),
                    maybe_written: false,
                },
                transactional: true,
            };
            let records = b.builder.record_count() as u32;
            self.fail_unqueued(&b.slot, b.reserved, records, e);
        }
    }

    /// A new identity (`cause` is `None` for the first): counted, a new
    /// span for what follows (entered from the next piece of work on), and
    /// one event on the driver's span.
    pub(super) fn record_identity(
        &mut self,
        identity: ProducerIdentity,
        cause: Option<IdentityCause>,
    ) {
        let previous = self.identity.replace(identity);
        if let Some(cause) = cause {
            self.metrics.identity_changed(previous, identity, cause);
        }
        tracing::debug!(
            parent: &self.span,
            producer_id = identity.producer_id,
            epoch = identity.epoch,
            cause = cause.map(IdentityCause::as_str),
            "identity"
        );
        self.identity_span = tracing::info_span!(
            parent: &self.span,
            "identity",
            producer_id = identity.producer_id,
            epoch = identity.epoch,
        );
    }

    pub(super) fn resolve(&mut self, batch: BatchId, result: Result<BatchAck, ProducerError>) {
        let Some(b) = self.batches.remove(&batch) else {
            return;
        };
        self.acc.release(b.reserved);
        // Per batch, never per record: two or three relaxed adds.
        let records = b.closed.record_count().max(0) as u64;
        match &result {
            Ok(_) => self.metrics.batch_sent(records, b.closed.len() as u64),
            Err(_) => self.metrics.batch_failed(records),
        }
        let limit = self.partition_limit();
        if let Some(n) = self.per_partition.get_mut(&b.tp) {
            if *n == limit {
                // It may send again: the next drain takes its open batch if
                // that reached batch.size meanwhile.
                self.acc.set_backlogged(&b.tp, false);
            }
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_partition.remove(&b.tp);
            }
        }
        if let Err(e) = &result {
            self.waiters.batch_failed(batch.0, e);
        }
        b.slot.complete(result);
    }

    /// Answers the flushes whose batches are all resolved.
    pub(super) fn check_flush_waiters(&mut self) {
        let lowest = self.batches.keys().next().map_or(u64::MAX, |b| b.0);
        self.waiters.flushes_done(lowest);
    }
}
