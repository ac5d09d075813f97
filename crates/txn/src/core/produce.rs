//! Produce outcomes, delivery expiry and the idempotent epoch bump (KIP-98,
//! KIP-360; JAVA-CLIENT-RULES §3).

use exactly_codec::messages::ApiKey;

use super::ProducerCore;
use crate::classify::{classify, Context, ErrorClass};
use crate::error::{DeliveryFailure, ErrorReason, Severity, TxnError};
use crate::io::{Event, IdentityCause, Outcome, Response};
use crate::ledger::{BatchState, Knowledge};
use crate::state::{EpochRisk, InitReason, TxnState};
use crate::types::{BatchId, Millis, RequestId, TopicPartition};

impl ProducerCore {
    /// Exponential produce backoff: `retry.backoff.ms * 2^(sends-1)`, capped.
    fn produce_backoff(&self, sends: u32) -> u64 {
        let shift = sends.saturating_sub(1).min(20);
        self.config
            .retry_backoff_ms
            .saturating_mul(1u64 << shift)
            .min(
                self.config
                    .retry_backoff_max_ms
                    .max(self.config.retry_backoff_ms),
            )
    }

    pub(super) fn on_produce(
        &mut self,
        id: RequestId,
        partition: TopicPartition,
        batch: BatchId,
        outcome: Outcome,
    ) {
        let transactional = self.is_transactional();
        let aborting = matches!(self.state, TxnState::Aborting { .. });
        let can_bump = self.broker.can_bump_epoch();
        let now = self.now;
        // Only the request the batch is in now counts (a late answer to an
        // older send of a batch failed or reset since is ignored).
        let found = self.ledgers.get(&partition).and_then(|ledger| {
            ledger
                .batches
                .iter()
                .enumerate()
                .find_map(|(i, b)| match b.state {
                    BatchState::InFlight(s, r) if r == id && b.id == batch => {
                        Some((i, s, b.sends, b.created))
                    }
                    _ => None,
                })
        });
        let Some((index, stamp, sends, created)) = found else {
            return;
        };
        // The batch leaves its request: it may be retried (and expire), and
        // its partition may now be resolved or reset.
        self.lower_expiry_check(created);
        self.ready.insert(partition.clone());
        self.reset_check.insert(partition.clone());
        let backoff = self.produce_backoff(sends);
        // A send that never left: the first resend goes at once (a new
        // connection may be up by then), later ones back off like any
        // retry, so a broker that refuses connections is not hammered.
        let not_sent_backoff = if sends <= 1 {
            0
        } else {
            self.produce_backoff(sends - 1)
        };
        let Some(ledger) = self.ledgers.get_mut(&partition) else {
            return;
        };
        let (version, error, base_offset) = match outcome {
            Outcome::NotSent => {
                let b = &mut ledger.batches[index];
                b.state = BatchState::Stamped(stamp);
                b.not_before = now.plus(not_sent_backoff);
                self.after_retry(&partition, aborting);
                return;
            }
            Outcome::MaybeDelivered => {
                let b = &mut ledger.batches[index];
                b.state = BatchState::Stamped(stamp);
                b.knowledge = Knowledge::MaybeWritten;
                b.not_before = now.plus(backoff);
                self.after_retry(&partition, aborting);
                return;
            }
            Outcome::Received {
                version,
                response:
                    Response::Produce {
                        error, base_offset, ..
                    },
            } => (version, error, base_offset),
            Outcome::Received { .. } => {
                self.fatal(TxnError {
                    api: Some(ApiKey::Produce),
                    partition: Some(partition),
                    ..Self::local_error(Severity::Fatal, ErrorReason::ProtocolViolation)
                });
                return;
            }
        };
        let class = match error {
            None => ErrorClass::Success,
            Some(code) => classify(
                ApiKey::Produce,
                version,
                code,
                &Context {
                    transactional,
                    head_batch: index == 0,
                    can_bump_epoch: can_bump,
                    ..Context::default()
                },
            ),
        };
        match class {
            ErrorClass::Success => {
                if stamp.transactional {
                    // Written (or already written): the partition is in the
                    // transaction the stamp belongs to.
                    if let Some(txn) = self.state.transaction_mut() {
                        if txn.identity == stamp.identity() {
                            txn.mark_acknowledged();
                        }
                    }
                }
                let Some(ledger) = self.ledgers.get_mut(&partition) else {
                    return;
                };
                let offset = if error.is_none() && base_offset >= 0 {
                    Some(base_offset)
                } else {
                    None
                };
                let acked = ledger.ack_through(index);
                let last = acked.len().saturating_sub(1);
                for (i, b) in acked.into_iter().enumerate() {
                    self.events.push_back(Event::Delivered {
                        batch: b.id,
                        partition: partition.clone(),
                        base_offset: if i == last { offset } else { None },
                    });
                }
            }
            ErrorClass::Retriable
            | ErrorClass::RefreshMetadata
            | ErrorClass::OutcomeUnknown
            | ErrorClass::FindCoordinator
            | ErrorClass::BumpEpoch => {
                let b = &mut ledger.batches[index];
                b.state = BatchState::Stamped(stamp);
                b.not_before = now.plus(backoff);
                if class == ErrorClass::OutcomeUnknown {
                    b.knowledge = Knowledge::MaybeWritten;
                }
                if class == ErrorClass::BumpEpoch {
                    ledger.needs_reset = true;
                }
                if matches!(
                    class,
                    ErrorClass::RefreshMetadata | ErrorClass::OutcomeUnknown
                ) {
                    self.events.push_back(Event::RefreshMetadata {
                        partition: partition.clone(),
                    });
                }
                self.after_retry(&partition, aborting);
            }
            ErrorClass::Rejected
            | ErrorClass::Abortable
            | ErrorClass::AbortableRecoverEpoch
            | ErrorClass::Fatal => {
                let code = error.unwrap_or(exactly_codec::ErrorCode::UnknownServerError);
                let Some(mut b) = ledger.batches.remove(index) else {
                    return;
                };
                // The broker answered this send definitively; the batch is
                // written only if an earlier send may have been.
                b.state = BatchState::Stamped(stamp);
                if !transactional {
                    // A sequence gap now exists: bump before sending more.
                    ledger.needs_reset = true;
                }
                self.fail_batch(&partition, &b, DeliveryFailure::Rejected(code));
                let err = TxnError::broker(
                    Severity::Abortable,
                    ApiKey::Produce,
                    Some(code),
                    Some(partition),
                );
                match class {
                    ErrorClass::Fatal => self.fatal(err),
                    ErrorClass::Abortable => self.abortable(err, EpochRisk::None),
                    ErrorClass::AbortableRecoverEpoch => self.abortable(err, EpochRisk::EpochMoved),
                    _ => {}
                }
            }
        }
    }

    /// A batch went back to `Stamped` for a resend. While aborting nothing is
    /// resent: the batch fails as aborted.
    fn after_retry(&mut self, partition: &TopicPartition, aborting: bool) {
        if !aborting {
            return;
        }
        let Some(ledger) = self.ledgers.get_mut(partition) else {
            return;
        };
        let (busy, idle): (Vec<_>, Vec<_>) = ledger.batches.drain(..).partition(|b| b.in_flight());
        ledger.batches = busy.into();
        if !idle.is_empty() {
            ledger.needs_reset = true;
        }
        for b in idle {
            self.fail_batch(partition, &b, DeliveryFailure::Aborted);
        }
    }

    /// Fails every batch not in flight whose `delivery.timeout.ms` passed. A
    /// stamped one leaves a sequence gap: an idempotent producer resolves or
    /// resets the partition; a transactional one must abort.
    pub(super) fn expire_batches(&mut self) {
        if matches!(self.state, TxnState::Fatal { .. }) {
            return;
        }
        let deadline_ms = self.config.delivery_timeout_ms;
        let now = self.now;
        if now < self.expiry_check_at {
            // No batch outside a request is due yet: no scan.
            return;
        }
        let mut next_check = Millis(u64::MAX);
        let mut expired = Vec::new();
        for (tp, ledger) in self.ledgers.iter_mut() {
            self.ledger_visits += 1;
            let mut i = 0;
            while i < ledger.batches.len() {
                let b = &ledger.batches[i];
                let due = b.created.plus(deadline_ms);
                if !b.in_flight() && due <= now {
                    if let Some(b) = ledger.batches.remove(i) {
                        if b.stamp().is_some() {
                            ledger.needs_reset = true;
                        }
                        self.ready.insert(tp.clone());
                        self.reset_check.insert(tp.clone());
                        expired.push((tp.clone(), b));
                    }
                } else {
                    if !b.in_flight() && due < next_check {
                        next_check = due;
                    }
                    i += 1;
                }
            }
        }
        self.expiry_check_at = next_check;
        if expired.is_empty() {
            return;
        }
        let mut first = None;
        for (tp, b) in expired {
            self.fail_batch(&tp, &b, DeliveryFailure::Expired);
            first.get_or_insert(tp);
        }
        if self.is_transactional() {
            let err = TxnError {
                partition: first,
                ..Self::local_error(Severity::Abortable, ErrorReason::DeliveryTimeout)
            };
            self.abortable(err, EpochRisk::None);
        }
    }

    /// Idempotent producer: resolves or resets partitions whose sequence
    /// state broke, bumping the epoch locally when needed (as the Java client
    /// does, with no request) and rotating the producer id at epoch
    /// exhaustion. A partition is reset only once nothing of it is in flight,
    /// and never beneath a batch that may have been written.
    pub(super) fn maybe_reset_partitions(&mut self) {
        if self.is_transactional() || self.state != TxnState::Ready {
            return;
        }
        let Some(current) = self.identity else {
            return;
        };
        let check = std::mem::take(&mut self.reset_check);
        let partitions: Vec<TopicPartition> = if self.reset_scanned_for == Some(current) {
            // Only partitions touched since the last look can have changed.
            check.into_iter().collect()
        } else {
            self.ledgers.keys().cloned().collect()
        };
        self.reset_scanned_for = Some(current);
        let mut need_bump = false;
        let mut failed = Vec::new();
        for tp in partitions {
            let Some(ledger) = self.ledgers.get_mut(&tp) else {
                continue;
            };
            self.ledger_visits += 1;
            if !ledger.needs_reset || ledger.has_in_flight() {
                continue;
            }
            if ledger.resolved() {
                ledger.needs_reset = false;
                self.ready.insert(tp);
            } else if ledger.seq_identity != Some(current) {
                failed.extend(ledger.reset().into_iter().map(|b| (tp.clone(), b)));
                self.ready.insert(tp);
            } else {
                need_bump = true;
            }
        }
        for (tp, b) in failed {
            self.fail_batch(&tp, &b, DeliveryFailure::SequenceReset);
        }
        if !need_bump {
            return;
        }
        match current.bumped() {
            Some(next) => {
                self.identity = Some(next);
                self.events.push_back(Event::IdentityChanged {
                    identity: next,
                    cause: IdentityCause::SequenceReset,
                });
                self.maybe_reset_partitions();
            }
            None => {
                let moved = self.state.reinitialize(InitReason::NewProducerId);
                debug_assert!(moved.is_ok(), "{moved:?}");
            }
        }
    }
}
