//! The session's loop: poll, hand runs of records to the handler inside the
//! open transaction, commit when it is full or old, abort and rewind on
//! failure, follow the group's rebalances, stop on request.
//!
//! ```text
//!            records polled, room left: begin (local), process a run
//!   No txn ────────────────────────────────────────────▶ Open txn
//!     ▲  ▲                                                  │ │
//!     │  │ commit: before_commit, offsets (TxnOffsetCommit), │ │
//!     │  └──────────────── EndTxn(commit) ◀─── full / old ──┘ │
//!     │                                       / revoked / stop │
//!     │  abort: EndTxn(abort), rewind to committed offsets,    │
//!     └───────── rollback hook ◀── handler Err / abortable ────┘
//!                                  error / lost / stop(abort)
//! ```
//!
//! A fatal error, a handler panic or too many handler failures leave the
//! loop with an error; [`Runner::close`] then closes the producer (which
//! aborts a transaction still open) and the consumer.

use std::time::Duration;

use exactly_consumer::{Consumer, ConsumerConfig, ConsumerError, Polled, Rebalance};
use exactly_producer::{Producer, ProducerError, ProducerRecord, TopicPartition};
use tokio::time::Instant;

use super::error::{catch_panic, catch_panic_sync};
use super::handler::{AbortReason, Context, Handler, Output, TransactionEnd};
use super::metrics::{AbortKind, SessionMetrics};
use super::topics::matching_topics;
use super::txn::{Backlog, OpenTxn};
use super::{InputTopics, Session, SessionConfig, SessionError};
use crate::shutdown::{StopMode, StopSignal};
use crate::state::{self, States};

/// How long past its due time a commit waits for a cooperative join to
/// complete before it is tried anyway (and fenced, aborted, rewound if the
/// generation moved meanwhile).
const MAX_COMMIT_HOLD: Duration = Duration::from_secs(10);

/// Attempts at a producer call that failed with a retriable error before
/// the failure is treated as abortable.
const RETRIES: u32 = 5;

/// How a handler call (or the commit) ended.
enum Outcome<T> {
    Done(T),
    /// The handler panicked.
    Panicked(String),
    /// A stop's time ran out first; the call was dropped.
    Expired,
}

pub(crate) struct Runner<H> {
    cfg: SessionConfig,
    consumer: Consumer,
    producer: Producer,
    stop: StopSignal,
    metrics: SessionMetrics,
    handler: H,
    open: Option<OpenTxn>,
    backlog: Backlog,
    /// The first producer error that dooms the open transaction.
    doomed: Option<ProducerError>,
    /// Handler failures since the last commit.
    failures: u32,
    /// Whether aborting rewinds (not while the partitions are leaving).
    rewind_on_abort: bool,
    /// Partitions paused while a commit waits for a cooperative join (so
    /// the backlog stops growing); resumed when the join completes.
    paused_for_join: Vec<TopicPartition>,
    /// The subscribed topics (empty: a pattern matched nothing yet).
    topics: Vec<String>,
    next_pattern_refresh: Instant,
    /// Per-partition state, when the session keeps state.
    states: Option<States>,
    /// The consumer configurations that restore state (`read_committed`,
    /// `read_uncommitted`).
    restore: (ConsumerConfig, ConsumerConfig),
}

impl<H: Handler> Runner<H> {
    pub(crate) fn new(s: Session, handler: H) -> Self {
        let stop = s.stop.signal(s.cfg.shutdown_timeout);
        let states = s
            .cfg
            .state
            .clone()
            .map(|c| States::new(c, s.cfg.group_id.clone()));
        Self {
            states,
            restore: s.restore,
            cfg: s.cfg,
            consumer: s.consumer,
            producer: s.producer,
            stop,
            metrics: s.metrics,
            handler,
            open: None,
            backlog: Backlog::default(),
            doomed: None,
            failures: 0,
            rewind_on_abort: true,
            paused_for_join: Vec::new(),
            topics: Vec::new(),
            next_pattern_refresh: Instant::now(),
        }
    }

    pub(crate) async fn pump(&mut self) -> Result<(), SessionError> {
        // Fencing first: a previous incarnation's open transaction is
        // aborted before the group's committed offsets are read.
        self.producer
            .init_transactions()
            .await
            .map_err(SessionError::Producer)?;
        tracing::info!("transactions initialized");
        let mut last_input = Instant::now();
        loop {
            if let Some(mode) = self.stop.requested() {
                return self.stop_now(mode).await;
            }
            let now = Instant::now();
            // While the member rejoins a cooperative group (KIP-429) it keeps
            // its partitions, but the generation is about to change: hold
            // the commit until the join completes (a commit under the old
            // generation would be fenced and rewind the kept partitions),
            // within a bound on how long (the transaction must not run into
            // its timeout); polls go on meanwhile (they complete the join)
            // but pause the partitions once the backlog is large.
            let hold = self.consumer.is_rebalancing()
                && self
                    .open
                    .as_ref()
                    .is_none_or(|t| now < t.deadline(self.cfg.max_time) + MAX_COMMIT_HOLD);
            self.pace_for_join(hold);
            if !hold
                && self
                    .open
                    .as_ref()
                    .is_some_and(|t| t.is_due(now, self.cfg.max_records, self.cfg.max_time))
            {
                self.commit().await?;
                continue;
            }
            let room = self
                .open
                .as_ref()
                .map_or(self.cfg.max_records, |t| t.room(self.cfg.max_records));
            if !self.backlog.is_empty() && room > 0 {
                self.process_run().await?;
                continue;
            }
            if self.consumer.is_rebalancing() {
                // A join is not idle input: the first join alone can take
                // longer than the idle time (a broker's
                // `group.initial.rebalance.delay.ms` is 3 s by default), and
                // a session must not stop before it held a partition.
                last_input = now;
            }
            if let Some(idle) = self.cfg.idle_stop {
                if self.open.is_none() && now.duration_since(last_input) >= idle {
                    tracing::info!(?idle, "no input for the idle time: stopping");
                    return Ok(());
                }
            }
            if now >= self.next_pattern_refresh {
                self.refresh_subscription().await?;
            }
            let mut wait = self.cfg.poll_timeout;
            if let Some(t) = &self.open {
                wait = wait.min(t.deadline(self.cfg.max_time).saturating_duration_since(now));
            }
            if hold {
                // Come back soon to see whether the join completed.
                wait = wait.max(Duration::from_millis(50));
            }
            if let Some(idle) = self.cfg.idle_stop {
                wait = wait.min((last_input + idle).saturating_duration_since(now));
            }
            if matches!(self.cfg.input, InputTopics::Pattern(_)) {
                wait = wait.min(self.next_pattern_refresh.saturating_duration_since(now));
            }
            if self.topics.is_empty() {
                // Nothing to read yet (a pattern with no match).
                tokio::select! {
                    _ = self.stop.requested_wait() => {}
                    _ = tokio::time::sleep(wait) => {}
                }
                continue;
            }
            let polled = tokio::select! {
                biased;
                _ = self.stop.requested_wait() => continue,
                r = self.consumer.poll(wait) => r,
            };
            match polled {
                Ok(Polled::Records(records)) => {
                    if !records.is_empty() {
                        last_input = Instant::now();
                        self.backlog.fill(records);
                    }
                }
                Ok(Polled::Rebalance(event)) => {
                    self.rebalance(event).await?;
                    // The idle clock restarts with the new assignment.
                    last_input = Instant::now();
                }
                Err(e) if e.is_retriable() => {
                    tracing::warn!(error = %e, "poll failed; polling again");
                }
                Err(e) => {
                    // The session ends: abort, no rewind (the consumer is
                    // what failed).
                    self.rewind_on_abort = false;
                    self.abort_if_open(AbortReason::Consumer(e.to_string()), AbortKind::Error)
                        .await?;
                    return Err(e.into());
                }
            }
        }
    }

    /// Subscribes to the input topics (resolving a pattern) when they
    /// changed.
    async fn refresh_subscription(&mut self) -> Result<(), SessionError> {
        self.next_pattern_refresh = Instant::now() + self.cfg.pattern_refresh;
        let topics = match &self.cfg.input {
            InputTopics::Names(t) => {
                // A fixed list never changes.
                self.next_pattern_refresh = Instant::now() + Duration::from_secs(86_400 * 365);
                t.clone()
            }
            InputTopics::Pattern(re) => match matching_topics(self.consumer.client(), re).await {
                Ok(t) => t,
                Err(e) if e.is_retriable() => {
                    tracing::warn!(error = %e, "listing topics for the input pattern failed");
                    return Ok(());
                }
                Err(e) => return Err(ConsumerError::Net(e).into()),
            },
        };
        if topics == self.topics {
            return Ok(());
        }
        tracing::info!(?topics, "subscribing");
        if topics.is_empty() {
            // No topic left: finish the open transaction, leave the group.
            self.commit().await?;
            self.backlog.clear();
            self.consumer.unsubscribe().await?;
        } else {
            self.consumer.subscribe(&topics)?;
        }
        self.topics = topics;
        Ok(())
    }

    /// While a commit is held for a join, polls still run (they complete the
    /// join) but must not pile records up: past a bound the assigned
    /// partitions are paused; they are resumed once the hold ends.
    fn pace_for_join(&mut self, hold: bool) {
        let bound = self.cfg.max_records.saturating_mul(4).max(1000);
        if hold && self.paused_for_join.is_empty() && self.backlog.len() >= bound {
            self.paused_for_join = self.consumer.assignment();
            let _ = self.consumer.pause(&self.paused_for_join);
        } else if !hold && !self.paused_for_join.is_empty() {
            for tp in std::mem::take(&mut self.paused_for_join) {
                // Those revoked meanwhile are gone already.
                let _ = self.consumer.resume(std::slice::from_ref(&tp));
            }
        }
    }

    /// The group's assignment changed.
    async fn rebalance(&mut self, event: Rebalance) -> Result<(), SessionError> {
        self.metrics.rebalanced();
        tracing::info!(?event, "rebalance");
        match event {
            Rebalance::Revoked(parts) => {
                // The member still holds its generation: commit what was
                // processed, then let the partitions go. Under a cooperative
                // assignor only some go: the others keep their backlog and
                // positions (and are rewound only if this commit fails).
                let everything = self
                    .consumer
                    .assignment()
                    .iter()
                    .all(|tp| parts.contains(tp));
                self.rewind_on_abort = !everything;
                let r = self.commit().await;
                self.rewind_on_abort = true;
                r?;
                self.backlog.drop_partitions(&parts);
                if let Some(st) = &mut self.states {
                    st.remove(&parts);
                }
                self.hook(|h| h.revoked(&parts, false))
            }
            Rebalance::Lost(parts) => {
                self.abort_if_open(AbortReason::PartitionsLost, AbortKind::Lost)
                    .await?;
                self.backlog.clear();
                if let Some(st) = &mut self.states {
                    st.remove(&parts);
                }
                self.hook(|h| h.revoked(&parts, true))
            }
            Rebalance::Assigned(parts) => {
                self.restore_state(&parts).await?;
                self.hook(|h| h.assigned(&parts))
            }
        }
    }

    /// Rebuilds the state of newly assigned partitions from their
    /// changelogs (creating the changelog topics first if needed), before
    /// any of their records is processed.
    async fn restore_state(&mut self, parts: &[TopicPartition]) -> Result<(), SessionError> {
        let Some(states) = &mut self.states else {
            return Ok(());
        };
        if parts.is_empty() {
            return Ok(());
        }
        let timeout = self.consumer.config().default_api_timeout();
        state::ensure_changelogs(self.consumer.client(), states, parts, timeout).await?;
        let (committed, uncommitted) = self.restore.clone();
        for (tp, st) in state::restore(committed, uncommitted, states, parts).await? {
            states.insert(tp, st);
        }
        Ok(())
    }

    /// Hands the next run of backlog records to the handler.
    async fn process_run(&mut self) -> Result<(), SessionError> {
        if self.open.is_none() {
            if let Err(e) = self.producer.begin_transaction().await {
                return self.on_producer_error(e).await;
            }
            self.open = Some(OpenTxn::new(Instant::now()));
        }
        let Some(txn) = self.open.as_mut() else {
            return Ok(());
        };
        let run = self.backlog.peek_run(txn.room(self.cfg.max_records));
        let Some(last) = run.last() else {
            return Ok(());
        };
        let partition = last.topic_partition();
        txn.touch(&partition);
        let (count, next_offset, epoch) = (run.len(), last.offset() + 1, last.leader_epoch());
        let out_before = txn.records_out;
        let outcome = {
            let mut ctx = Context {
                output: Output {
                    producer: &self.producer,
                    doomed: &mut self.doomed,
                    records_out: &mut txn.records_out,
                },
                partition: &partition,
                state: self.states.as_mut().and_then(|s| s.view(&partition)),
            };
            let call = catch_panic(self.handler.process(&mut ctx, run));
            tokio::select! {
                r = call => match r {
                    Ok(r) => Outcome::Done(r),
                    Err(panic) => Outcome::Panicked(panic),
                },
                _ = self.stop.expired() => Outcome::Expired,
            }
        };
        self.metrics.sent(txn.records_out - out_before);
        self.metrics.processed(count as u64);
        match outcome {
            Outcome::Done(Ok(())) => {
                if let Some(e) = self.doomed.take() {
                    return self.on_producer_error(e).await;
                }
                txn.consumed(&partition, count as u64, next_offset, epoch);
                self.backlog.advance(count);
                Ok(())
            }
            Outcome::Done(Err(e)) => self.on_handler_error(e).await,
            Outcome::Panicked(message) => self.on_panic(message).await,
            Outcome::Expired => self.on_expired().await,
        }
    }

    /// Commits the open transaction (if any).
    async fn commit(&mut self) -> Result<(), SessionError> {
        let Some(txn) = self.open.as_mut() else {
            return Ok(());
        };
        let out_before = txn.records_out;
        let outcome = {
            let mut out = Output {
                producer: &self.producer,
                doomed: &mut self.doomed,
                records_out: &mut txn.records_out,
            };
            tokio::select! {
                r = catch_panic(self.handler.before_commit(&mut out)) => match r {
                    Ok(r) => Outcome::Done(r),
                    Err(panic) => Outcome::Panicked(panic),
                },
                _ = self.stop.expired() => Outcome::Expired,
            }
        };
        self.metrics.sent(txn.records_out - out_before);
        match outcome {
            Outcome::Done(Ok(())) => {}
            Outcome::Done(Err(e)) => return self.on_handler_error(e).await,
            Outcome::Panicked(message) => return self.on_panic(message).await,
            Outcome::Expired => return self.on_expired().await,
        }
        if let Some(e) = self.doomed.take() {
            return self.on_producer_error(e).await;
        }
        let started = Instant::now();
        let offsets = txn.offsets();
        let (records_in, records_out) = (txn.records_in, txn.records_out);
        let group = self.consumer.group_metadata();
        let changelog = self
            .states
            .as_ref()
            .map(States::changelog_records)
            .unwrap_or_default();
        let ended = {
            let producer = &self.producer;
            let send_and_commit = async {
                // The state's changes, in the same transaction.
                for c in &changelog {
                    let mut r = ProducerRecord::new(&c.topic)
                        .with_partition(c.partition)
                        .with_key(&c.key);
                    if let Some(v) = &c.value {
                        r = r.with_value(v);
                    }
                    producer.send(r).await?;
                }
                if !offsets.is_empty() {
                    retrying(|| producer.send_offsets_to_transaction(offsets.clone(), &group))
                        .await?;
                }
                // The window between TxnOffsetCommit and EndTxn, named so a
                // crash test can stop the process right here.
                tracing::debug!(
                    step = "offsets_sent",
                    generation = group.generation_id,
                    partitions = offsets.len(),
                    after_us = started.elapsed().as_micros() as u64,
                    "offsets added to the transaction"
                );
                retrying(|| producer.commit_transaction()).await
            };
            tokio::select! {
                r = send_and_commit => Some(r),
                _ = self.stop.expired() => None,
            }
        };
        match ended {
            Some(Ok(())) => {
                self.open = None;
                self.failures = 0;
                if let Some(st) = &mut self.states {
                    st.committed();
                }
                let latency = started.elapsed();
                self.metrics.committed(records_in, records_out, latency);
                tracing::debug!(
                    records_in,
                    records_out,
                    latency_us = latency.as_micros() as u64,
                    "transaction committed"
                );
                let stats = self.metrics.snapshot();
                let end = TransactionEnd::Committed {
                    records_in,
                    records_out,
                };
                self.hook(|h| h.transaction_ended(&end, &stats))
            }
            Some(Err(e)) => self.on_producer_error(e).await,
            None => {
                // The stop's time ran out mid-commit: the producer finishes
                // (or aborts) it when it is closed; nothing is left open.
                tracing::warn!("the stop's time ran out while committing");
                self.open = None;
                self.backlog.clear();
                Ok(())
            }
        }
    }

    async fn on_handler_error(&mut self, error: super::HandlerError) -> Result<(), SessionError> {
        if let Some(e) = self.doomed.take() {
            if e.is_fatal() {
                return self.on_producer_error(e).await;
            }
        }
        tracing::warn!(error = %error, "the handler failed; aborting the transaction");
        self.abort(AbortReason::Handler(error.to_string()), AbortKind::Handler)
            .await?;
        self.failures += 1;
        if self
            .cfg
            .handler_max_retries
            .is_some_and(|max| self.failures > max)
        {
            return Err(SessionError::HandlerFailed {
                attempts: self.failures,
                source: error,
            });
        }
        tokio::select! {
            _ = tokio::time::sleep(self.cfg.handler_retry_backoff) => {}
            _ = self.stop.requested_wait() => {}
        }
        Ok(())
    }

    async fn on_panic(&mut self, message: String) -> Result<(), SessionError> {
        tracing::error!(%message, "the handler panicked; aborting the transaction");
        // No rollback hook: the handler's state cannot be trusted now.
        self.end_transaction_abort().await?;
        self.metrics.aborted(AbortKind::Handler);
        Err(SessionError::HandlerPanicked { message })
    }

    async fn on_expired(&mut self) -> Result<(), SessionError> {
        tracing::warn!("the stop's time ran out; aborting the open transaction");
        self.abort(AbortReason::Shutdown, AbortKind::Shutdown).await
    }

    /// A producer error: fatal ends the session, anything else aborts.
    async fn on_producer_error(&mut self, error: ProducerError) -> Result<(), SessionError> {
        if error.is_fatal() {
            tracing::error!(%error, "fatal producer error");
            return Err(SessionError::Producer(error));
        }
        tracing::warn!(%error, "aborting the transaction after a producer error");
        self.abort(AbortReason::Producer(error.to_string()), AbortKind::Error)
            .await
    }

    async fn abort_if_open(
        &mut self,
        reason: AbortReason,
        kind: AbortKind,
    ) -> Result<(), SessionError> {
        if self.open.is_some() {
            self.abort(reason, kind).await?;
        }
        Ok(())
    }

    /// Aborts the open transaction, rewinds the input to the committed
    /// offsets, and lets the handler roll back.
    async fn abort(&mut self, reason: AbortReason, kind: AbortKind) -> Result<(), SessionError> {
        let txn = self.open.take();
        self.end_transaction_abort().await?;
        if self.rewind_on_abort && kind != AbortKind::Lost {
            self.rewind().await?;
        }
        self.metrics.aborted(kind);
        let partitions: Vec<TopicPartition> =
            txn.as_ref().map(OpenTxn::partitions).unwrap_or_default();
        let records_in = txn.map_or(0, |t| t.records_in);
        self.hook(|h| h.rollback(&partitions))?;
        let stats = self.metrics.snapshot();
        let end = TransactionEnd::Aborted { reason, records_in };
        self.hook(|h| h.transaction_ended(&end, &stats))
    }

    /// EndTxn(abort) at the producer; drops what was polled.
    async fn end_transaction_abort(&mut self) -> Result<(), SessionError> {
        self.open = None;
        self.doomed = None;
        self.backlog.clear();
        if let Some(st) = &mut self.states {
            st.rolled_back();
        }
        match retrying(|| self.producer.abort_transaction()).await {
            Ok(()) => Ok(()),
            Err(e) => {
                tracing::error!(error = %e, "the abort failed");
                Err(SessionError::Producer(e))
            }
        }
    }

    /// Moves every assigned partition back to the group's committed offset
    /// (KAFKA-17582), retrying while the failure is retriable.
    async fn rewind(&mut self) -> Result<(), SessionError> {
        let mut backoff = Duration::from_millis(50);
        loop {
            let assigned = self.consumer.assignment();
            match self.consumer.seek_to_committed(&assigned).await {
                Ok(()) => return Ok(()),
                Err(e) if e.is_retriable() && self.stop.requested().is_none() => {
                    tracing::warn!(error = %e, "rewind to the committed offsets failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The stop asked for: finish (commit) or abort the open transaction.
    async fn stop_now(&mut self, mode: StopMode) -> Result<(), SessionError> {
        tracing::info!(?mode, "stopping");
        self.backlog.clear();
        match mode {
            StopMode::Finish => self.commit().await,
            StopMode::Abort => {
                self.rewind_on_abort = false;
                self.abort_if_open(AbortReason::Shutdown, AbortKind::Shutdown)
                    .await
            }
        }
    }

    /// Calls a synchronous hook of the handler, catching a panic.
    fn hook(&mut self, f: impl FnOnce(&mut H)) -> Result<(), SessionError> {
        let h = &mut self.handler;
        catch_panic_sync(|| f(h)).map_err(|message| SessionError::HandlerPanicked { message })
    }

    /// Closes the producer (aborting a transaction still open) and the
    /// consumer (leaving the group), each within `shutdown.timeout.ms`.
    pub(crate) async fn close(self) {
        let bound = self.cfg.shutdown_timeout;
        if let Err(e) = self.producer.close(bound).await {
            tracing::warn!(error = %e, "closing the producer");
        }
        if let Err(e) = self.consumer.close_with_timeout(bound).await {
            tracing::warn!(error = %e, "closing the consumer");
        }
    }
}

/// Calls `f` again while it fails with a retriable error, a few times.
async fn retrying<F, Fut>(mut f: F) -> Result<(), ProducerError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), ProducerError>>,
{
    let mut attempt = 0;
    loop {
        match f().await {
            Err(e) if e.is_retriable() && attempt + 1 < RETRIES => {
                attempt += 1;
                tracing::debug!(error = %e, attempt, "retrying");
                tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
            }
            r => return r,
        }
    }
}
