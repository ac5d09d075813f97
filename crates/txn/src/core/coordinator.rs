//! Outcomes of coordinator requests: FindCoordinator, InitProducerId
//! (KIP-98, KIP-360, KIP-588), AddPartitionsToTxn, AddOffsetsToTxn,
//! TxnOffsetCommit (KIP-447) and EndTxn (KIP-890 v5 returns the new epoch).
//!
//! Every answer is checked against the identity its request was issued
//! under: an answer to a request of an older identity or of a transaction
//! that is over (a zombie's late response) changes nothing.

use exactly_codec::messages::ApiKey;
use exactly_codec::ErrorCode;

use super::{Completing, PendingKind, ProducerCore, PROBE_AT_ONCE};
use crate::classify::{classify, Context, ErrorClass};
use crate::config::Flow;
use crate::error::{ErrorReason, Severity, TxnError};
use crate::io::{CoordinatorType, Event, IdentityCause, Outcome, Response};
use crate::state::{EndTxnStatus, EpochRisk, InitReason, OffsetsStep, Opening, TxnState};
use crate::types::{ProducerIdentity, TopicPartition};

/// Orders classes by how much they override: one fatal result in a
/// multi-partition answer makes the whole answer fatal.
fn rank(class: ErrorClass) -> u8 {
    match class {
        ErrorClass::Fatal => 6,
        ErrorClass::AbortableRecoverEpoch => 5,
        ErrorClass::Abortable | ErrorClass::Rejected | ErrorClass::BumpEpoch => 4,
        ErrorClass::FindCoordinator => 3,
        ErrorClass::OutcomeUnknown | ErrorClass::RefreshMetadata | ErrorClass::Retriable => 2,
        ErrorClass::Success => 0,
    }
}

impl ProducerCore {
    fn classify_ctx(&self, commit: bool, group: bool) -> Context {
        Context {
            transactional: self.is_transactional(),
            head_batch: false,
            can_bump_epoch: self.broker.can_bump_epoch(),
            commit,
            group,
            acknowledged: self
                .state
                .transaction()
                .is_some_and(|t| t.opening == Opening::Acknowledged),
        }
    }

    /// The broker acknowledged a request of the open transaction that
    /// opens it on the coordinator.
    fn mark_acknowledged(&mut self) {
        if let Some(txn) = self.state.transaction_mut() {
            txn.mark_acknowledged();
        }
    }

    /// Whether an answer issued under `identity` still concerns the open
    /// transaction.
    fn current_txn(&self, identity: Option<ProducerIdentity>) -> bool {
        self.state
            .transaction()
            .is_some_and(|t| Some(t.identity) == identity)
    }

    fn invalidate_coordinator(&mut self, group: Option<&str>, generation: u64) {
        let c = match group {
            None => &mut self.txn_coordinator,
            Some(g) => match self.group_coordinators.get_mut(g) {
                Some(c) => c,
                None => return,
            },
        };
        if c.generation == generation {
            c.node = None;
        }
    }

    /// Applies a non-success class common to the transactional requests.
    fn on_txn_error(
        &mut self,
        class: ErrorClass,
        api: ApiKey,
        code: ErrorCode,
        partition: Option<TopicPartition>,
        group: Option<&str>,
        generation: u64,
    ) {
        let err = TxnError::broker(Severity::Abortable, api, Some(code), partition);
        match class {
            ErrorClass::FindCoordinator => self.invalidate_coordinator(group, generation),
            ErrorClass::Retriable | ErrorClass::OutcomeUnknown | ErrorClass::RefreshMetadata => {
                let no_partition_yet = self
                    .state
                    .transaction()
                    .is_some_and(|t| t.partitions.is_empty());
                let ms = if code == ErrorCode::ConcurrentTransactions
                    && api == ApiKey::AddPartitionsToTxn
                    && no_partition_yet
                {
                    self.config.concurrent_transactions_backoff_ms
                } else {
                    self.config.retry_backoff_ms
                };
                self.backoff_coordinator(ms);
            }
            ErrorClass::AbortableRecoverEpoch => self.abortable(err, EpochRisk::EpochMoved),
            ErrorClass::Abortable | ErrorClass::Rejected | ErrorClass::BumpEpoch => {
                self.abortable(err, EpochRisk::None)
            }
            ErrorClass::Fatal => self.fatal(err),
            ErrorClass::Success => {}
        }
    }

    pub(super) fn on_coordinator_outcome(
        &mut self,
        identity: Option<ProducerIdentity>,
        kind: PendingKind,
        outcome: Outcome,
    ) {
        if matches!(self.state, TxnState::Fatal { .. }) {
            return;
        }
        if let PendingKind::DescribeTransactions = kind {
            self.on_completion_probe(outcome);
            return;
        }
        let (version, response) = match outcome {
            Outcome::Received { version, response } => (version, response),
            lost => {
                let maybe = lost == Outcome::MaybeDelivered;
                self.backoff_coordinator(self.config.retry_backoff_ms);
                match kind {
                    PendingKind::EndTxn { commit, generation } => {
                        if maybe && self.current_txn(identity) {
                            self.end_outcome_unknown(commit);
                        }
                        self.invalidate_coordinator(None, generation);
                    }
                    PendingKind::AddPartitions { generation, .. }
                    | PendingKind::AddOffsets { generation } => {
                        self.invalidate_coordinator(None, generation)
                    }
                    PendingKind::TxnOffsetCommit { group, generation } => {
                        if maybe && self.current_txn(identity) {
                            self.mark_late_request_risk();
                        }
                        self.invalidate_coordinator(Some(&group), generation)
                    }
                    _ => {}
                }
                return;
            }
        };
        match (kind, response) {
            (
                PendingKind::FindCoordinator { key_type, key },
                Response::FindCoordinator { error, node },
            ) => self.on_find_coordinator(version, key_type, key, error, node),
            (
                PendingKind::InitProducerId,
                Response::InitProducerId {
                    error,
                    identity: got,
                },
            ) => self.on_init_producer_id(version, identity, error, got),
            (
                PendingKind::AddPartitions {
                    partitions,
                    generation,
                },
                Response::AddPartitionsToTxn { results },
            ) => self.on_add_partitions(version, identity, partitions, generation, results),
            (PendingKind::AddOffsets { generation }, Response::AddOffsetsToTxn { error }) => {
                if !self.current_txn(identity) {
                    return;
                }
                match error {
                    None => {
                        self.mark_acknowledged();
                        self.advance_offsets(OffsetsStep::AddToTxn, OffsetsStep::Commit)
                    }
                    Some(code) => {
                        let class = classify(
                            ApiKey::AddOffsetsToTxn,
                            version,
                            code,
                            &self.classify_ctx(false, false),
                        );
                        self.on_txn_error(
                            class,
                            ApiKey::AddOffsetsToTxn,
                            code,
                            None,
                            None,
                            generation,
                        )
                    }
                }
            }
            (
                PendingKind::TxnOffsetCommit { group, generation },
                Response::TxnOffsetCommit { results },
            ) => {
                if !self.current_txn(identity) {
                    return;
                }
                let worst = results
                    .iter()
                    .filter_map(|(tp, e)| e.map(|c| (tp.clone(), c)))
                    .map(|(tp, code)| {
                        let class = classify(
                            ApiKey::TxnOffsetCommit,
                            version,
                            code,
                            &self.classify_ctx(false, true),
                        );
                        (class, code, tp)
                    })
                    .max_by_key(|(class, _, _)| rank(*class));
                if worst
                    .as_ref()
                    .is_some_and(|(_, code, _)| *code == ErrorCode::RequestTimedOut)
                {
                    // The write to the offsets log may still complete.
                    self.mark_late_request_risk();
                }
                match worst {
                    None => {
                        self.mark_acknowledged();
                        self.advance_offsets(OffsetsStep::Commit, OffsetsStep::Done)
                    }
                    Some((class, code, tp)) => self.on_txn_error(
                        class,
                        ApiKey::TxnOffsetCommit,
                        code,
                        Some(tp),
                        Some(&group),
                        generation,
                    ),
                }
            }
            (
                PendingKind::EndTxn { commit, generation },
                Response::EndTxn {
                    error,
                    identity: got,
                },
            ) => self.on_end_txn(version, identity, commit, generation, error, got),
            (kind, _) => {
                let api = match kind {
                    PendingKind::FindCoordinator { .. } => ApiKey::FindCoordinator,
                    PendingKind::InitProducerId => ApiKey::InitProducerId,
                    PendingKind::AddPartitions { .. } => ApiKey::AddPartitionsToTxn,
                    PendingKind::AddOffsets { .. } => ApiKey::AddOffsetsToTxn,
                    PendingKind::TxnOffsetCommit { .. } => ApiKey::TxnOffsetCommit,
                    PendingKind::EndTxn { .. } => ApiKey::EndTxn,
                    PendingKind::DescribeTransactions => ApiKey::DescribeTransactions,
                    PendingKind::Produce { .. } => ApiKey::Produce,
                };
                self.fatal(TxnError {
                    api: Some(api),
                    ..Self::local_error(Severity::Fatal, ErrorReason::ProtocolViolation)
                });
            }
        }
    }

    /// The completion probe's answer (module docs, "Completion probe"):
    /// still completing keeps the next transaction's opening request held
    /// and asks again (at once for the first few answers, then every
    /// millisecond); anything else lets it go. An error that will not go
    /// away turns the probe off.
    fn on_completion_probe(&mut self, outcome: Outcome) {
        let Some(mut c) = self.completing.take() else {
            return;
        };
        match outcome {
            Outcome::Received {
                response:
                    Response::DescribeTransactions {
                        error: None,
                        completing: true,
                    },
                ..
            } if self.now < c.until => {
                c.answers += 1;
                let pause = if c.answers < PROBE_AT_ONCE { 0 } else { 1 };
                c.not_before = self.now.plus(pause);
                self.completing = Some(c);
            }
            Outcome::Received {
                response:
                    Response::DescribeTransactions {
                        error:
                            Some(
                                ErrorCode::TransactionalIdAuthorizationFailed
                                | ErrorCode::UnsupportedVersion
                                | ErrorCode::InvalidRequest
                                | ErrorCode::ClusterAuthorizationFailed,
                            ),
                        ..
                    },
                ..
            } => {
                self.probe_refused = true;
            }
            _ => {}
        }
    }

    fn mark_late_request_risk(&mut self) {
        if let Some(txn) = self.state.transaction_mut() {
            txn.raise_risk(EpochRisk::LateRequests);
        }
    }

    /// An EndTxn attempt may have been applied. (An answer for a commit or
    /// abort that is over already changes nothing.)
    fn end_outcome_unknown(&mut self, commit: bool) {
        let _over = self.state.end_unknown(commit);
    }

    fn advance_offsets(&mut self, from: OffsetsStep, to: OffsetsStep) {
        let mut done = None;
        if let Some(txn) = self.state.transaction_mut() {
            if let Some(job) = txn.offsets.iter_mut().find(|j| j.step != OffsetsStep::Done) {
                if job.step == from {
                    job.step = to;
                    if to == OffsetsStep::Done {
                        done = Some(job.id);
                    }
                }
            }
        }
        if let Some(id) = done {
            self.events.push_back(Event::OffsetsCommitted { id });
        }
    }

    fn on_find_coordinator(
        &mut self,
        version: i16,
        key_type: CoordinatorType,
        key: String,
        error: Option<ErrorCode>,
        node: i32,
    ) {
        match error {
            None => {
                let c = match key_type {
                    CoordinatorType::Transaction => &mut self.txn_coordinator,
                    CoordinatorType::Group => self.group_coordinators.entry(key).or_default(),
                };
                c.node = Some(node);
                c.generation += 1;
            }
            Some(code) => {
                let group = key_type == CoordinatorType::Group;
                let class = classify(
                    ApiKey::FindCoordinator,
                    version,
                    code,
                    &self.classify_ctx(false, group),
                );
                self.on_txn_error(class, ApiKey::FindCoordinator, code, None, None, 0);
            }
        }
    }

    fn on_init_producer_id(
        &mut self,
        version: i16,
        issued_under: Option<ProducerIdentity>,
        error: Option<ErrorCode>,
        got: ProducerIdentity,
    ) {
        let TxnState::Initializing { reason } = &self.state else {
            return;
        };
        if issued_under != self.identity {
            return;
        }
        let reason = reason.clone();
        if let Some(code) = error {
            let class = classify(
                ApiKey::InitProducerId,
                version,
                code,
                &self.classify_ctx(false, false),
            );
            match class {
                ErrorClass::FindCoordinator => {
                    let g = self.txn_coordinator.generation;
                    self.invalidate_coordinator(None, g);
                }
                ErrorClass::Retriable => self.backoff_coordinator(self.config.retry_backoff_ms),
                _ => self.fatal(TxnError::broker(
                    Severity::Fatal,
                    ApiKey::InitProducerId,
                    Some(code),
                    None,
                )),
            }
            return;
        }
        if got.producer_id < 0 || got.epoch < 0 {
            self.fatal(TxnError {
                api: Some(ApiKey::InitProducerId),
                ..Self::local_error(Severity::Fatal, ErrorReason::InvalidIdentity)
            });
            return;
        }
        self.identity = Some(got);
        let moved = self.state.initialized();
        debug_assert!(moved.is_ok(), "{moved:?}");
        let changed = |cause| Event::IdentityChanged {
            identity: got,
            cause,
        };
        match reason {
            InitReason::First => self.events.push_back(Event::Initialized { identity: got }),
            InitReason::Abort { aborted, rewind } => {
                self.events.push_back(changed(IdentityCause::Abort));
                self.events.push_back(Event::Aborted {
                    identity: aborted,
                    rewind,
                });
            }
            InitReason::NewProducerId => {
                self.events
                    .push_back(changed(IdentityCause::EpochExhausted));
            }
            InitReason::FenceLateRequests => {
                self.events
                    .push_back(changed(IdentityCause::FenceLateRequests));
            }
            InitReason::MissingIdentity => {
                self.events
                    .push_back(changed(IdentityCause::MissingIdentity));
            }
        }
    }

    fn on_add_partitions(
        &mut self,
        version: i16,
        identity: Option<ProducerIdentity>,
        partitions: Vec<TopicPartition>,
        generation: u64,
        results: Vec<(TopicPartition, Option<ErrorCode>)>,
    ) {
        if !self.current_txn(identity) {
            return;
        }
        let ctx = self.classify_ctx(false, false);
        let mut worst: Option<(ErrorClass, ErrorCode, TopicPartition)> = None;
        let mut added = Vec::new();
        for (tp, error) in results {
            if !partitions.contains(&tp) {
                continue;
            }
            match error {
                None => added.push(tp),
                Some(code) => {
                    let class = classify(ApiKey::AddPartitionsToTxn, version, code, &ctx);
                    if worst
                        .as_ref()
                        .is_none_or(|(w, _, _)| rank(class) > rank(*w))
                    {
                        worst = Some((class, code, tp));
                    }
                }
            }
        }
        if let Some(txn) = self.state.transaction_mut() {
            if !added.is_empty() {
                txn.mark_acknowledged();
            }
            for tp in added {
                txn.pending_partitions.remove(&tp);
                txn.partitions.insert(tp);
            }
        }
        if let Some((class, code, tp)) = worst {
            self.on_txn_error(
                class,
                ApiKey::AddPartitionsToTxn,
                code,
                Some(tp),
                None,
                generation,
            );
        }
    }

    fn on_end_txn(
        &mut self,
        version: i16,
        identity: Option<ProducerIdentity>,
        commit: bool,
        generation: u64,
        error: Option<ErrorCode>,
        got: Option<ProducerIdentity>,
    ) {
        let (txn, end) = match &self.state {
            TxnState::Committing { txn, end } if commit => (txn.clone(), *end),
            TxnState::Aborting { txn, end } if !commit => (txn.clone(), *end),
            _ => return,
        };
        if Some(txn.identity) != identity {
            return;
        }
        if let Some(code) = error {
            let class = classify(
                ApiKey::EndTxn,
                version,
                code,
                &self.classify_ctx(commit, false),
            );
            let err = TxnError::broker(Severity::Abortable, ApiKey::EndTxn, Some(code), None);
            match class {
                ErrorClass::OutcomeUnknown => {
                    self.end_outcome_unknown(commit);
                    self.backoff_coordinator(self.config.retry_backoff_ms);
                }
                ErrorClass::Abortable | ErrorClass::AbortableRecoverEpoch
                    if commit && end == EndTxnStatus::OutcomeUnknown =>
                {
                    // An earlier attempt may have committed: never report
                    // this transaction as aborted.
                    self.fatal(err)
                }
                ErrorClass::Abortable | ErrorClass::AbortableRecoverEpoch if !commit => {
                    // The abort could not end on this epoch: abort by
                    // re-initializing with the current identity (KIP-588).
                    let moved = self.state.reinitialize(InitReason::Abort {
                        aborted: txn.identity,
                        rewind: txn.rewind_list(),
                    });
                    debug_assert!(moved.is_ok(), "{moved:?}");
                }
                other => self.on_txn_error(other, ApiKey::EndTxn, code, None, None, generation),
            }
            return;
        }
        // Success on the transaction's epoch. The coordinator writes the
        // markers now: hold the next transaction's opening request until it
        // is done (module docs, "Completion probe").
        if self.config.probe_completion && !self.probe_refused {
            self.completing = Some(Completing {
                until: self
                    .now
                    .plus(self.config.concurrent_transactions_backoff_ms),
                answers: 0,
                not_before: self.now,
            });
        }
        if !commit && txn.flow == Flow::V1 {
            // The abort is written. Under flow v1 the epoch does not move
            // with it, so bump it now (KIP-360, on a transaction that is no
            // longer open): a late request of the aborted transaction is then
            // fenced instead of starting a hanging one. The abort completes
            // with the bump. (Bumping *instead of* EndTxn does not work: the
            // coordinator fences the epoch of an open transaction to abort
            // it and answers the retry with PRODUCER_FENCED.)
            let moved = self.state.reinitialize(InitReason::Abort {
                aborted: txn.identity,
                rewind: txn.rewind_list(),
            });
            debug_assert!(moved.is_ok(), "{moved:?}");
            return;
        }
        let next = match (txn.flow, got) {
            (Flow::V2, Some(id)) if id.producer_id >= 0 && id.epoch >= 0 => Some(id),
            _ => None,
        };
        self.events.push_back(if commit {
            Event::Committed {
                identity: txn.identity,
            }
        } else {
            Event::Aborted {
                identity: txn.identity,
                rewind: txn.rewind_list(),
            }
        });
        let next_state = match (txn.flow, next) {
            (Flow::V2, Some(id)) => {
                self.identity = Some(id);
                self.events.push_back(Event::IdentityChanged {
                    identity: id,
                    cause: IdentityCause::EndTxn,
                });
                TxnState::Ready
            }
            (Flow::V2, None) => TxnState::Initializing {
                reason: InitReason::MissingIdentity,
            },
            (Flow::V1, _)
                if end == EndTxnStatus::OutcomeUnknown
                    || txn.epoch_risk >= EpochRisk::LateRequests =>
            {
                TxnState::Initializing {
                    reason: InitReason::FenceLateRequests,
                }
            }
            (Flow::V1, _) => TxnState::Ready,
        };
        let moved = self.state.ended(next_state);
        debug_assert!(moved.is_ok(), "{moved:?}");
    }
}
