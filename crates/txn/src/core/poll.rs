//! Outputs: which request goes next, and when the core wants to be woken.
//!
//! Requests are derived from the state each time: at most one coordinator
//! request (FindCoordinator, InitProducerId, AddPartitionsToTxn,
//! AddOffsetsToTxn, TxnOffsetCommit, EndTxn) is in flight at a time, as in the
//! Java client; Produce requests are not paused meanwhile, because each
//! partition is gated on its own (flow v1: its AddPartitionsToTxn succeeded)
//! and EndTxn waits until no batch is outstanding.

use std::collections::BTreeSet;
use std::ops::Bound;

use super::{Pending, PendingKind, ProducerCore};
use crate::config::Flow;
use crate::io::{CoordinatorType, Event, Request, Target};
use crate::ledger::{BatchState, Ledger, NextSend};
use crate::state::{EndTxnStatus, EpochRisk, InitReason, OffsetsStep, TxnState};
use crate::types::{Millis, ProducerIdentity, RequestId, TopicPartition};

impl ProducerCore {
    /// The next request to send, with its id and target. Call until `None`.
    pub fn poll_request(&mut self, now: Millis) -> Option<(RequestId, Target, Request)> {
        self.advance(now);
        if matches!(self.state, TxnState::Fatal { .. }) {
            return None;
        }
        self.maybe_reset_partitions();
        self.progress();
        if self.completing.is_some_and(|c| self.now >= c.until) {
            self.completing = None;
        }
        if let Some(r) = self.next_coordinator_request() {
            return Some(r);
        }
        self.next_produce_request()
    }

    /// The earliest instant at which
    /// [`handle_timeout`](ProducerCore::handle_timeout) or
    /// [`poll_request`](ProducerCore::poll_request) has something new to do: a batch's
    /// delivery deadline or the end of a backoff. `None`: nothing is timed.
    pub fn poll_timeout(&self) -> Option<Millis> {
        if matches!(self.state, TxnState::Fatal { .. }) {
            return None;
        }
        let now = self.now;
        let mut earliest: Option<Millis> = None;
        let mut consider = |t: Millis| {
            if t > now && earliest.is_none_or(|e| t < e) {
                earliest = Some(t);
            }
        };
        for ledger in self.ledgers.values() {
            for b in &ledger.batches {
                if !b.in_flight() {
                    consider(b.created.plus(self.config.delivery_timeout_ms));
                }
                if let BatchState::Stamped(_) = b.state {
                    consider(b.not_before);
                }
            }
        }
        consider(self.coordinator_not_before);
        if let Some(c) = self.completing {
            consider(c.not_before);
        }
        earliest
    }

    /// Local transitions that need no request: ending an empty transaction,
    /// deciding how a commit or abort ends once nothing is outstanding.
    fn progress(&mut self) {
        if !matches!(
            self.state,
            TxnState::Committing {
                end: EndTxnStatus::Waiting,
                ..
            } | TxnState::Aborting {
                end: EndTxnStatus::Waiting,
                ..
            }
        ) {
            return;
        }
        let quiet = !self.coordinator_busy() && self.ledgers.values().all(|l| l.batches.is_empty());
        if !quiet {
            return;
        }
        let (commit, txn) = match &self.state {
            TxnState::Committing {
                txn,
                end: EndTxnStatus::Waiting,
            } if txn.pending_partitions.is_empty()
                && txn.offsets.iter().all(|j| j.step == OffsetsStep::Done) =>
            {
                (true, txn)
            }
            TxnState::Aborting {
                txn,
                end: EndTxnStatus::Waiting,
            } => (false, txn),
            _ => return,
        };
        let (identity, rewind) = (txn.identity, txn.rewind_list());
        if !txn.started() {
            // The coordinator never heard of it: it ends here.
            if self.state.end_locally().is_ok() {
                self.events.push_back(if commit {
                    Event::Committed { identity }
                } else {
                    Event::Aborted { identity, rewind }
                });
            }
        } else if !commit && txn.epoch_risk == EpochRisk::EpochMoved {
            let reason = InitReason::Abort {
                aborted: identity,
                rewind,
            };
            let moved = self.state.reinitialize(reason);
            debug_assert!(moved.is_ok(), "{moved:?}");
        } else {
            let moved = self.state.send_end();
            debug_assert!(moved.is_ok(), "{moved:?}");
        }
    }

    fn emit(
        &mut self,
        target: Target,
        request: Request,
        kind: PendingKind,
        identity: Option<ProducerIdentity>,
    ) -> Option<(RequestId, Target, Request)> {
        let id = self.next_request_id();
        if kind.is_coordinator_request() {
            self.coordinator_pending += 1;
        }
        self.pending.insert(id, Pending { identity, kind });
        Some((id, target, request))
    }

    fn find_coordinator(
        &mut self,
        key_type: CoordinatorType,
        key: String,
    ) -> Option<(RequestId, Target, Request)> {
        self.emit(
            Target::AnyBroker,
            Request::FindCoordinator {
                key_type,
                key: key.clone(),
            },
            PendingKind::FindCoordinator { key_type, key },
            None,
        )
    }

    fn next_coordinator_request(&mut self) -> Option<(RequestId, Target, Request)> {
        if self.coordinator_busy() || self.now < self.coordinator_not_before {
            return None;
        }
        let Some(txn_id) = self.config.transactional_id.clone() else {
            // Idempotent-only: InitProducerId to any broker, no coordinator.
            if let TxnState::Initializing { .. } = self.state {
                return self.emit(
                    Target::AnyBroker,
                    Request::InitProducerId {
                        transactional_id: None,
                        transaction_timeout_ms: i32::MAX,
                        current: None,
                    },
                    PendingKind::InitProducerId,
                    self.identity,
                );
            }
            return None;
        };
        let coordinator = self.txn_coordinator.node;
        let generation = self.txn_coordinator.generation;
        if self.completing.is_some() && self.opening_request_waits() {
            // Module docs, "Completion probe": ask before opening.
            return match (coordinator, self.completing) {
                (Some(node), Some(c)) if self.now >= c.not_before => self.emit(
                    Target::TransactionCoordinator(node),
                    Request::DescribeTransactions {
                        transactional_id: txn_id,
                    },
                    PendingKind::DescribeTransactions,
                    self.identity,
                ),
                (Some(_), _) => None,
                (None, _) => {
                    // The coordinator moved: its answer would say nothing
                    // about the markers of the old one.
                    self.completing = None;
                    self.next_coordinator_request()
                }
            };
        }
        // What the state wants from the transaction coordinator.
        let want = match &self.state {
            TxnState::Initializing { reason } => {
                let current = match reason {
                    InitReason::First => None,
                    _ if self.broker.can_bump_epoch() => self.identity,
                    _ => None,
                };
                Some((
                    Request::InitProducerId {
                        transactional_id: Some(txn_id.clone()),
                        transaction_timeout_ms: self.config.transaction_timeout_ms,
                        current,
                    },
                    PendingKind::InitProducerId,
                    self.identity,
                ))
            }
            TxnState::InTransaction { txn }
            | TxnState::Committing {
                txn,
                end: EndTxnStatus::Waiting,
            } => {
                if txn.flow == Flow::V1 && !txn.pending_partitions.is_empty() {
                    let partitions: Vec<TopicPartition> =
                        txn.pending_partitions.iter().cloned().collect();
                    Some((
                        Request::AddPartitionsToTxn {
                            transactional_id: txn_id.clone(),
                            identity: txn.identity,
                            partitions: partitions.clone(),
                        },
                        PendingKind::AddPartitions {
                            partitions,
                            generation,
                        },
                        Some(txn.identity),
                    ))
                } else {
                    match txn.offsets.iter().find(|j| j.step != OffsetsStep::Done) {
                        Some(job) if job.step == OffsetsStep::AddToTxn => Some((
                            Request::AddOffsetsToTxn {
                                transactional_id: txn_id.clone(),
                                identity: txn.identity,
                                group_id: job.group.group_id.clone(),
                            },
                            PendingKind::AddOffsets { generation },
                            Some(txn.identity),
                        )),
                        Some(job) => {
                            // TxnOffsetCommit goes to the group coordinator.
                            let group_id = job.group.group_id.clone();
                            let gc = self.group_coordinators.get(&group_id).cloned();
                            let request = Request::TxnOffsetCommit {
                                transactional_id: txn_id.clone(),
                                identity: txn.identity,
                                group: job.group.clone(),
                                offsets: job.offsets.clone(),
                                flow: txn.flow,
                            };
                            let identity = txn.identity;
                            return match gc.and_then(|c| c.node.map(|n| (n, c.generation))) {
                                None => self.find_coordinator(CoordinatorType::Group, group_id),
                                Some((node, generation)) => {
                                    if let Some(t) = self.state.transaction_mut() {
                                        t.mark_sent();
                                    }
                                    self.emit(
                                        Target::GroupCoordinator {
                                            group_id: group_id.clone(),
                                            node,
                                        },
                                        request,
                                        PendingKind::TxnOffsetCommit {
                                            group: group_id,
                                            generation,
                                        },
                                        Some(identity),
                                    )
                                }
                            };
                        }
                        None => None,
                    }
                }
            }
            TxnState::Committing { txn, .. } | TxnState::Aborting { txn, .. } => {
                let commit = matches!(self.state, TxnState::Committing { .. });
                if matches!(
                    self.state,
                    TxnState::Aborting {
                        end: EndTxnStatus::Waiting,
                        ..
                    }
                ) {
                    None
                } else {
                    Some((
                        Request::EndTxn {
                            transactional_id: txn_id.clone(),
                            identity: txn.identity,
                            commit,
                            flow: txn.flow,
                        },
                        PendingKind::EndTxn { commit, generation },
                        Some(txn.identity),
                    ))
                }
            }
            _ => None,
        };
        let (request, kind, identity) = want?;
        let Some(node) = coordinator else {
            return self.find_coordinator(CoordinatorType::Transaction, txn_id);
        };
        if matches!(
            kind,
            PendingKind::AddPartitions { .. } | PendingKind::AddOffsets { .. }
        ) {
            if let Some(t) = self.state.transaction_mut() {
                t.mark_sent();
            }
        }
        self.emit(
            Target::TransactionCoordinator(node),
            request,
            kind,
            identity,
        )
    }

    /// Whether the open transaction has a request ready that would open it
    /// on the coordinator: flow v1 an AddPartitionsToTxn or
    /// AddOffsetsToTxn; flow v2 a Produce or a TxnOffsetCommit (which add
    /// their partition implicitly). Only asked while the previous
    /// transaction may still be completing, before anything of this one
    /// was sent.
    fn opening_request_waits(&self) -> bool {
        let txn = match &self.state {
            TxnState::InTransaction { txn }
            | TxnState::Committing {
                txn,
                end: EndTxnStatus::Waiting,
            } => txn,
            _ => return false,
        };
        let offsets = txn.offsets.iter().any(|j| j.step != OffsetsStep::Done);
        match txn.flow {
            Flow::V1 => !txn.pending_partitions.is_empty() || offsets,
            Flow::V2 => offsets || self.ledgers.values().any(|l| !l.batches.is_empty()),
        }
    }

    fn next_produce_request(&mut self) -> Option<(RequestId, Target, Request)> {
        let transactional = self.is_transactional();
        if transactional && self.completing.is_some() {
            // Held until the previous transaction completed (module docs,
            // "Completion probe"); flow v1 batches wait for their
            // AddPartitionsToTxn anyway.
            return None;
        }
        let limit = self.config.in_flight_limit();
        let now = self.now;
        // Whether resends and new stamps may go in this state.
        let (may_resend, may_stamp, flow) = match &self.state {
            TxnState::Ready | TxnState::Uninitialized | TxnState::Initializing { .. }
                if !transactional =>
            {
                (true, self.state == TxnState::Ready, None)
            }
            TxnState::InTransaction { txn }
            | TxnState::Committing {
                txn,
                end: EndTxnStatus::Waiting,
            } => (true, true, Some(txn.flow)),
            _ => (false, false, None),
        };
        if !may_resend {
            return None;
        }
        let identity = self.identity?;
        // Only partitions that may send are looked at (`ready`), round robin
        // (as the Java client's drain) from the one served last: a turn of
        // `poll_request` calls costs about one look per ready partition plus
        // one per request, not partitions x requests, and no partition
        // waits behind lower-numbered ones.
        let pick = Pick {
            now,
            limit,
            identity,
            may_stamp,
            transactional,
            v1_partitions: match flow {
                Some(Flow::V1) => self.state.transaction().map(|t| &t.partitions),
                _ => None,
            },
        };
        let key = (
            self.identity,
            may_stamp,
            flow,
            pick.v1_partitions.map_or(0, BTreeSet::len),
        );
        if self.ready_key != Some(key) {
            self.ready_key = Some(key);
            self.all_ready = true;
        }
        if std::mem::take(&mut self.all_ready) {
            self.ready = self.ledgers.keys().cloned().collect();
        }
        let mut visits = 0u64;
        let mut choice = None;
        let mut idle = Vec::new();
        let after = match &self.cursor {
            Some(c) => self
                .ready
                .range::<TopicPartition, _>((Bound::Excluded(c), Bound::Unbounded)),
            None => self.ready.range::<TopicPartition, _>(..),
        };
        let before = self
            .cursor
            .as_ref()
            .map(|c| self.ready.range::<TopicPartition, _>(..=c));
        for tp in after.chain(before.into_iter().flatten()) {
            visits += 1;
            let Some(ledger) = self.ledgers.get_mut(tp) else {
                idle.push(tp.clone());
                continue;
            };
            if let Some(i) = pick.ledger(tp, ledger) {
                choice = Some((tp.clone(), i));
                break;
            }
            if !ledger.waits_for_backoff(now) {
                idle.push(tp.clone());
            }
        }
        for tp in idle {
            self.ready.remove(&tp);
        }
        self.ledger_visits += visits;
        let (tp, index) = choice?;
        self.cursor = Some(tp.clone());
        if flow == Some(Flow::V2) {
            if let Some(txn) = self.state.transaction_mut() {
                txn.partitions.insert(tp.clone());
                txn.mark_sent();
            }
        }
        let id = self.next_request_id();
        let ledger = self.ledgers.get_mut(&tp)?;
        let batch = ledger.batches.get_mut(index)?;
        let stamp = batch.stamp()?;
        batch.state = BatchState::InFlight(stamp, id);
        batch.sends += 1;
        let request = Request::Produce {
            partition: tp.clone(),
            batch: batch.id,
            record_count: batch.record_count,
            stamp,
            transactional_id: self.config.transactional_id.clone(),
            flow,
        };
        self.pending.insert(
            id,
            Pending {
                identity: Some(stamp.identity()),
                kind: PendingKind::Produce {
                    partition: tp.clone(),
                    batch: batch.id,
                },
            },
        );
        Some((id, Target::Leader(tp), request))
    }
}

/// What decides whether a partition's ledger offers a batch now.
struct Pick<'a> {
    now: Millis,
    limit: usize,
    identity: ProducerIdentity,
    may_stamp: bool,
    transactional: bool,
    /// Flow v1: only the partitions added to the transaction may send.
    v1_partitions: Option<&'a BTreeSet<TopicPartition>>,
}

impl Pick<'_> {
    /// The index of the batch `ledger` sends next (stamped by now), if any.
    fn ledger(&self, tp: &TopicPartition, ledger: &mut Ledger) -> Option<usize> {
        if ledger.needs_reset
            && ledger.stamped_count() == 0
            && ledger.seq_identity.is_some_and(|s| s != self.identity)
        {
            // The gap was left under an older identity; under the current
            // one the partition starts again at sequence 0 (a transactional
            // producer's epoch moves on every abort).
            ledger.prepare_stamp(self.identity);
        }
        if self.v1_partitions.is_some_and(|p| !p.contains(tp)) {
            return None;
        }
        match ledger.next_send(self.now, self.limit) {
            Some(NextSend::Resend(i)) => Some(i),
            Some(NextSend::Stamp(i))
                if self.may_stamp
                    && ledger.prepare_stamp(self.identity)
                    && ledger
                        .stamp_at(i, self.identity, self.transactional)
                        .is_some() =>
            {
                Some(i)
            }
            _ => None,
        }
    }
}
