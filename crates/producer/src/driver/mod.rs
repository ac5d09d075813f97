//! The driver: the one task that touches the runtime on the producer's
//! behalf. It owns the sans-IO [`ProducerCore`] and feeds it `now`, user
//! commands, request outcomes and timeouts; it sends what the core asks for
//! over exactly-net connections, writes each Produce's stamp into its batch,
//! completes delivery futures and answers the user's calls.
//!
//! One turn (after any wake-up) follows the core's calling order
//! (crates/txn/README.md): take batches from the accumulator and `enqueue`
//! them, `handle_timeout`, then `poll_request` until `None` (each request is
//! dispatched: Produce requests are queued per leader and merged, at most one
//! batch per partition and `max.request.size` per wire request, at most
//! `max.in.flight.requests.per.connection` wire requests per broker), then
//! `poll_event` until `None`; repeat while anything moved. Every request the
//! core emitted gets exactly one outcome back.
//!
//! It wakes on: a request completing, a user command, the accumulator's
//! notification (a batch filled or opened), or the earliest timer (the core's
//! `poll_timeout`, the next batch's linger deadline, a close deadline).

mod inflight;
mod wire;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::poll_fn;
use std::sync::Arc;
use std::time::Duration;

use exactly_codec::{ClosedBatch, ErrorCode, ProducerStamp};
use exactly_net::Client;
use exactly_txn::{
    Acceptance, BatchId, DeliveryError, DeliveryFailure, Event, GroupMetadata, Millis,
    OffsetCommit, OffsetsId, Outcome, ProducerCore, ProducerIdentity, Request, RequestId, Response,
    Target, TopicPartition, UsageError,
};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tracing::Instrument;

use crate::accumulator::{Accumulator, OpenBatch, Phase};
use crate::config::ProducerConfig;
use crate::delivery::{BatchAck, BatchSlot};
use crate::error::ProducerError;
use inflight::InFlight;
use wire::{CoordinatorDone, ProduceItem, ProduceResult};

pub(crate) use wire::broker_info;

type Reply = oneshot::Sender<Result<(), ProducerError>>;

/// A call from a [`crate::Producer`] handle.
#[derive(Debug)]
pub(crate) enum Command {
    InitTransactions(Reply),
    Begin(Reply),
    SendOffsets {
        group: GroupMetadata,
        offsets: Vec<OffsetCommit>,
        reply: Reply,
    },
    Commit(Reply),
    Abort(Reply),
    Flush(Reply),
    Close {
        timeout: Duration,
        reply: Reply,
    },
}

/// A closed batch the core knows by id.
#[derive(Debug)]
struct DriverBatch {
    closed: ClosedBatch,
    slot: Arc<BatchSlot>,
    tp: TopicPartition,
    reserved: usize,
    log_append_time: Option<i64>,
}

#[derive(Debug, Default)]
struct BrokerQueue {
    pending: VecDeque<ProduceItem>,
    in_flight: usize,
}

#[derive(Debug)]
enum Completion {
    Produce {
        broker: Option<i32>,
        items: Vec<(RequestId, TopicPartition, BatchId, u64)>,
        result: ProduceResult,
    },
    Coordinator(CoordinatorDone),
    Metadata(Result<(), exactly_net::NetError>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TxnOpKind {
    Commit,
    Abort,
}

#[derive(Debug)]
struct TxnOp {
    kind: TxnOpKind,
    replies: Vec<Reply>,
}

#[derive(Debug)]
struct FlushWaiter {
    /// Every batch with a smaller id must be resolved.
    upto: u64,
    error: Option<ProducerError>,
    reply: Reply,
}

#[derive(Debug)]
struct OffsetsWaiter {
    id: OffsetsId,
    reply: Reply,
}

#[derive(Debug)]
struct Closing {
    deadline: Instant,
    replies: Vec<Reply>,
}

enum Wake {
    Done(Vec<Completion>),
    Cmd(Option<Command>),
    Other,
}

/// The driver task's state.
pub(crate) struct Driver {
    core: ProducerCore,
    client: Client,
    acc: Arc<Accumulator>,
    cfg: Arc<ProducerConfig>,
    cmd_rx: mpsc::UnboundedReceiver<Command>,
    cmds_open: bool,
    origin: Instant,
    batches: BTreeMap<BatchId, DriverBatch>,
    /// Batches per partition held by the core (queued or in flight).
    per_partition: HashMap<TopicPartition, usize>,
    /// The smallest id no batch has yet.
    next_batch: u64,
    brokers: HashMap<i32, BrokerQueue>,
    inflight: InFlight<Completion>,
    refreshing: bool,
    init_waiters: Vec<Reply>,
    /// `begin_transaction` calls made while the core re-initializes between
    /// transactions (see `on_command`); answered once it is Ready again.
    begin_waiters: Vec<Reply>,
    txn_op: Option<TxnOp>,
    offsets_waiters: Vec<OffsetsWaiter>,
    flush_waiters: Vec<FlushWaiter>,
    closing: Option<Closing>,
    next_linger: Option<Instant>,
    features_epoch: i64,
    /// `exactly.producer{transactional_id}`: the driver task's span.
    span: tracing::Span,
    /// `identity{producer_id, epoch}`, a child of `span` made anew for each
    /// identity and entered while the driver works (never across an await).
    /// A new span per identity rather than `record`ing the identity again on
    /// the long-lived span: fmt-style subscribers append every recorded
    /// value to the span's formatted fields, so that span would grow with
    /// every transaction (tv2 bumps the epoch on each) and every line would
    /// carry all the identities ever used.
    identity_span: tracing::Span,
}

impl Driver {
    pub(crate) fn new(
        core: ProducerCore,
        client: Client,
        acc: Arc<Accumulator>,
        cfg: Arc<ProducerConfig>,
        cmd_rx: mpsc::UnboundedReceiver<Command>,
        features_epoch: i64,
    ) -> Self {
        let span = tracing::info_span!(
            "exactly.producer",
            transactional_id = cfg.transactional_id.as_deref(),
        );
        Self {
            core,
            client,
            acc,
            cfg,
            cmd_rx,
            cmds_open: true,
            origin: Instant::now(),
            batches: BTreeMap::new(),
            per_partition: HashMap::new(),
            next_batch: 0,
            brokers: HashMap::new(),
            inflight: InFlight::default(),
            refreshing: false,
            init_waiters: Vec::new(),
            begin_waiters: Vec::new(),
            txn_op: None,
            offsets_waiters: Vec::new(),
            flush_waiters: Vec::new(),
            closing: None,
            next_linger: None,
            features_epoch,
            span,
            identity_span: tracing::Span::none(),
        }
    }

    /// Runs `f` inside the current identity's span.
    fn in_identity_span<R>(&mut self, f: impl FnOnce(&mut Self) -> R) -> R {
        let span = self.identity_span.clone();
        let _entered = span.enter();
        f(self)
    }

    /// Runs until closed (by `close`, or when every handle is dropped and
    /// the buffered records are delivered).
    pub(crate) async fn run(mut self) {
        let span = self.span.clone();
        async move {
            if !self.core.is_transactional() {
                // The idempotent producer initializes on its own.
                let _ = self.core.init(self.millis(Instant::now()));
            }
            loop {
                self.turn();
                if self.finish_close_if_done() {
                    break;
                }
                let deadline = self.next_deadline();
                let acc = self.acc.clone();
                // Unbiased: a steady stream of responses must not starve
                // user commands. Request order does not depend on it (the
                // in-flight set polls its futures oldest first).
                let wake = tokio::select! {
                    done = poll_fn(|cx| self.inflight.poll_ready(cx)) => Wake::Done(done),
                    cmd = self.cmd_rx.recv(), if self.cmds_open => Wake::Cmd(cmd),
                    () = acc.wake.notified() => Wake::Other,
                    () = tokio::time::sleep_until(deadline) => Wake::Other,
                };
                self.in_identity_span(|d| match wake {
                    Wake::Done(done) => {
                        for c in done {
                            d.on_completion(c);
                        }
                    }
                    Wake::Cmd(Some(cmd)) => d.on_command(cmd),
                    Wake::Cmd(None) => {
                        // Every handle is gone: deliver what is buffered,
                        // then stop.
                        d.cmds_open = false;
                        let deadline = Instant::now() + d.cfg.delivery_timeout;
                        d.begin_close(None, deadline);
                    }
                    Wake::Other => {}
                });
            }
            self.client.close();
            tracing::debug!("producer driver stopped");
        }
        .instrument(span)
        .await
    }

    fn millis(&self, now: Instant) -> Millis {
        Millis(now.saturating_duration_since(self.origin).as_millis() as u64)
    }

    fn instant(&self, m: Millis) -> Instant {
        self.origin + Duration::from_millis(m.0)
    }

    fn next_deadline(&self) -> Instant {
        let mut d = Instant::now() + Duration::from_secs(3600);
        if let Some(t) = self.core.poll_timeout() {
            d = d.min(self.instant(t));
        }
        if let Some(t) = self.next_linger {
            d = d.min(t);
        }
        if let Some(c) = &self.closing {
            d = d.min(c.deadline);
        }
        d
    }

    /// One turn: batches in, requests out, events handled, until quiet.
    /// Each round runs in the current identity's span, so an identity that
    /// changes in one round shows from the next.
    fn turn(&mut self) {
        let now = Instant::now();
        let m = self.millis(now);
        let mut first = true;
        loop {
            let span = self.identity_span.clone();
            let _entered = span.enter();
            if std::mem::take(&mut first) {
                self.core.handle_timeout(m);
            }
            let mut moved = self.drain_accumulator(now, false);
            while let Some((id, target, req)) = self.core.poll_request(m) {
                self.dispatch(id, target, req);
                moved = true;
            }
            while let Some(ev) = self.core.poll_event() {
                self.on_event(ev);
                moved = true;
            }
            if !moved {
                self.send_queued();
                self.check_flush_waiters();
                self.sync_phase();
                return;
            }
        }
    }

    /// The accumulator's phase follows the core's state (and `close`).
    fn sync_phase(&self) {
        if self.closing.is_some() {
            return;
        }
        let phase = match self.core.acceptance() {
            Acceptance::Failed(error) => Phase::Failed(ProducerError::txn(error)),
            Acceptance::Accepting => Phase::Accepting,
            Acceptance::Completing => Phase::Completing,
            Acceptance::NoTransaction => Phase::NoTransaction,
        };
        self.acc.set_phase(phase);
    }

    // ----- batches in -----

    /// Takes due batches from the accumulator and hands them to the core.
    fn drain_accumulator(&mut self, now: Instant, force: bool) -> bool {
        let limit = self.cfg.max_in_flight.clamp(1, 5);
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

    /// Closes a batch and gives it to the core; a refusal fails its records.
    fn enqueue(&mut self, now: Instant, b: OpenBatch) -> Option<ProducerError> {
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
            Err(e) => return Some(self.fail_unqueued(&slot, reserved, ProducerError::Encode(e))),
        };
        match self.core.enqueue(self.millis(now), tp.clone(), records) {
            Ok(id) => {
                *self.per_partition.entry(tp.clone()).or_default() += 1;
                self.next_batch = self.next_batch.max(id.0 + 1);
                self.batches.insert(
                    id,
                    DriverBatch {
                        closed,
                        slot,
                        tp,
                        reserved,
                        log_append_time: None,
                    },
                );
                None
            }
            Err(e) => Some(self.fail_unqueued(&slot, reserved, ProducerError::Usage(e))),
        }
    }

    fn fail_unqueued(&self, slot: &BatchSlot, reserved: usize, e: ProducerError) -> ProducerError {
        self.acc.release(reserved);
        slot.complete(Err(e.clone()));
        e
    }

    /// Fails batches that never reached the core (abort, close of a
    /// transactional producer): certainly not written.
    fn fail_aborted(&self, batches: Vec<OpenBatch>) {
        for b in batches {
            let e = ProducerError::Delivery {
                error: DeliveryError {
                    failure: DeliveryFailure::Aborted,
                    partition: b.tp.clone(),
                    maybe_written: false,
                },
                transactional: true,
            };
            self.fail_unqueued(&b.slot, b.reserved, e);
        }
    }

    // ----- requests out -----

    fn dispatch(&mut self, id: RequestId, target: Target, req: Request) {
        tracing::trace!(?id, ?target, ?req, "request");
        let Request::Produce {
            partition,
            batch,
            stamp,
            transactional_id,
            flow,
            ..
        } = req
        else {
            let fut = wire::coordinator(self.client.clone(), id, target, req);
            self.inflight
                .push(async move { Completion::Coordinator(fut.await) });
            return;
        };
        let idempotence = self.cfg.idempotence;
        let Some(b) = self.batches.get_mut(&batch) else {
            // The core asks only for batches it holds, and the driver drops a
            // batch only after the core resolved it.
            tracing::error!(?batch, "core asked for an unknown batch");
            self.core
                .handle_outcome(self.millis(Instant::now()), id, Outcome::MaybeDelivered);
            return;
        };
        let ps = if idempotence {
            ProducerStamp {
                producer_id: stamp.producer_id,
                producer_epoch: stamp.epoch,
                base_sequence: stamp.base_sequence,
                transactional: stamp.transactional,
            }
        } else {
            ProducerStamp::NONE
        };
        // A plain retry (the same stamp) resends the very same bytes; only a
        // new stamp (after an epoch bump) rewrites the header and the CRC.
        let bytes = b.closed.stamp(ps);
        let route = self
            .client
            .view()
            .route(&partition.topic, partition.partition);
        let item = ProduceItem {
            id,
            tp: partition,
            batch,
            bytes,
            flow,
            transactional_id,
            generation: route.map_or(0, |r| r.generation),
        };
        match route {
            Some(r) => self
                .brokers
                .entry(r.leader)
                .or_default()
                .pending
                .push_back(item),
            None => self.spawn_produce(None, vec![item]),
        }
    }

    /// Sends queued Produce batches while brokers have request slots.
    fn send_queued(&mut self) {
        let max = self.cfg.max_in_flight.max(1);
        let max_bytes = self.cfg.max_request_size;
        let mut out = Vec::new();
        for (&broker, q) in self.brokers.iter_mut() {
            while q.in_flight < max && !q.pending.is_empty() {
                out.push((broker, take_request(&mut q.pending, max_bytes)));
                q.in_flight += 1;
            }
        }
        for (broker, items) in out {
            self.spawn_produce(Some(broker), items);
        }
    }

    fn spawn_produce(&mut self, broker: Option<i32>, items: Vec<ProduceItem>) {
        let meta: Vec<(RequestId, TopicPartition, BatchId, u64)> = items
            .iter()
            .map(|i| (i.id, i.tp.clone(), i.batch, i.generation))
            .collect();
        let span = tracing::debug_span!("produce", broker, batches = items.len());
        let fut = wire::produce(
            self.client.clone(),
            broker,
            items,
            self.cfg.acks.wire(),
            self.cfg.net.request_timeout(),
        )
        .instrument(span);
        self.inflight.push(async move {
            Completion::Produce {
                broker,
                items: meta,
                result: fut.await,
            }
        });
    }

    fn refresh_metadata(&mut self) {
        if self.refreshing {
            return;
        }
        self.refreshing = true;
        let client = self.client.clone();
        let topics = self.acc.topics();
        self.inflight.push(async move {
            let refs: Vec<&str> = topics.iter().map(String::as_str).collect();
            Completion::Metadata(client.refresh_metadata(&refs).await.map(|_| ()))
        });
    }

    // ----- outcomes in -----

    fn on_completion(&mut self, c: Completion) {
        let m = self.millis(Instant::now());
        match c {
            Completion::Coordinator(done) => {
                tracing::trace!(id = ?done.id, outcome = ?done.outcome, "coordinator outcome");
                if let Some((epoch, info)) = done.info {
                    if epoch >= self.features_epoch && info != self.core.broker_info() {
                        self.features_epoch = epoch;
                        self.core.set_broker_info(info);
                    }
                }
                self.core.handle_outcome(m, done.id, done.outcome);
            }
            Completion::Metadata(r) => {
                self.refreshing = false;
                match r {
                    Ok(()) => {
                        let view = self.client.view();
                        for t in self.acc.topics() {
                            if let Some(info) = view.topic(&t) {
                                let n = info.partitions.iter().map(|p| p.partition + 1).max();
                                if let Some(n) = n {
                                    self.acc.set_partition_count(&t, n.max(0) as usize);
                                }
                            }
                        }
                    }
                    Err(e) => tracing::debug!(error = %e, "metadata refresh failed"),
                }
            }
            Completion::Produce {
                broker,
                items,
                result,
            } => {
                if let Some(q) = broker.and_then(|b| self.brokers.get_mut(&b)) {
                    q.in_flight = q.in_flight.saturating_sub(1);
                }
                self.on_produce_result(m, items, result);
            }
        }
    }

    fn on_produce_result(
        &mut self,
        m: Millis,
        items: Vec<(RequestId, TopicPartition, BatchId, u64)>,
        result: ProduceResult,
    ) {
        match result {
            ProduceResult::Answered {
                version,
                response,
                leader,
            } => {
                for (id, tp, batch, generation) in items {
                    let outcome = match wire::partition_response(&response, &tp) {
                        Some(p) => {
                            let error = ErrorCode::from_code(p.error_code);
                            if let Some(code) = error {
                                let route = exactly_net::metadata::Route {
                                    leader,
                                    leader_epoch: -1,
                                    generation,
                                };
                                self.client.on_partition_error(code, &route);
                            }
                            if p.log_append_time_ms >= 0 {
                                if let Some(b) = self.batches.get_mut(&batch) {
                                    b.log_append_time = Some(p.log_append_time_ms);
                                }
                            }
                            Outcome::Received {
                                version,
                                response: Response::Produce {
                                    error,
                                    base_offset: p.base_offset,
                                    log_start_offset: p.log_start_offset,
                                },
                            }
                        }
                        // A broker that leaves a partition out broke the
                        // protocol; the batch may have been written.
                        None => Outcome::MaybeDelivered,
                    };
                    self.core.handle_outcome(m, id, outcome);
                }
            }
            ProduceResult::Written { version } => {
                for (id, ..) in items {
                    let response = Response::Produce {
                        error: None,
                        base_offset: -1,
                        log_start_offset: -1,
                    };
                    self.core
                        .handle_outcome(m, id, Outcome::Received { version, response });
                }
            }
            ProduceResult::Refused(code) => {
                for (id, ..) in items {
                    let response = Response::Produce {
                        error: Some(code),
                        base_offset: -1,
                        log_start_offset: -1,
                    };
                    self.core.handle_outcome(
                        m,
                        id,
                        Outcome::Received {
                            version: -1,
                            response,
                        },
                    );
                }
            }
            ProduceResult::Failed { outcome, refresh } => {
                if refresh {
                    for (.., generation) in &items {
                        self.client.invalidate_metadata(*generation);
                    }
                    self.refresh_metadata();
                }
                for (id, ..) in items {
                    self.core.handle_outcome(m, id, outcome.clone());
                }
            }
        }
    }

    fn on_event(&mut self, ev: Event) {
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
            Event::OffsetsCommitted { id } => {
                if let Some(i) = self.offsets_waiters.iter().position(|w| w.id == id) {
                    let _ = self.offsets_waiters.swap_remove(i).reply.send(Ok(()));
                }
            }
            Event::Initialized { identity } => {
                self.record_identity(identity);
                for r in self.init_waiters.drain(..) {
                    let _ = r.send(Ok(()));
                }
                self.resume_begins();
            }
            Event::IdentityChanged { identity } => {
                self.record_identity(identity);
                self.resume_begins();
            }
            Event::Committed { .. } => {
                self.finish_txn_op(TxnOpKind::Commit, Ok(()));
                for w in self.offsets_waiters.drain(..) {
                    let _ = w.reply.send(Ok(()));
                }
            }
            Event::Aborted { .. } => {
                self.finish_txn_op(TxnOpKind::Abort, Ok(()));
                for w in self.offsets_waiters.drain(..) {
                    let _ = w
                        .reply
                        .send(Err(ProducerError::Usage(UsageError::InvalidState {
                            command: "send_offsets_to_transaction",
                            state: "Aborted",
                        })));
                }
            }
            Event::AbortableError { error } => {
                tracing::debug!(%error, "transaction must be aborted");
                let e = ProducerError::txn(error);
                self.finish_txn_op(TxnOpKind::Commit, Err(e.clone()));
                for w in self.offsets_waiters.drain(..) {
                    let _ = w.reply.send(Err(e.clone()));
                }
            }
            Event::Fatal { error } => {
                tracing::warn!(%error, "producer failed fatally");
                let e = ProducerError::txn(error);
                for r in self
                    .init_waiters
                    .drain(..)
                    .chain(self.begin_waiters.drain(..))
                {
                    let _ = r.send(Err(e.clone()));
                }
                if let Some(op) = self.txn_op.take() {
                    for r in op.replies {
                        let _ = r.send(Err(e.clone()));
                    }
                }
                for w in self.offsets_waiters.drain(..) {
                    let _ = w.reply.send(Err(e.clone()));
                }
            }
        }
    }

    /// A new identity: a new span for what follows (entered from the next
    /// piece of work on), and one event on the driver's span.
    fn record_identity(&mut self, identity: ProducerIdentity) {
        tracing::debug!(
            parent: &self.span,
            producer_id = identity.producer_id,
            epoch = identity.epoch,
            "identity"
        );
        self.identity_span = tracing::info_span!(
            parent: &self.span,
            "identity",
            producer_id = identity.producer_id,
            epoch = identity.epoch,
        );
    }

    fn resolve(&mut self, batch: BatchId, result: Result<BatchAck, ProducerError>) {
        let Some(b) = self.batches.remove(&batch) else {
            return;
        };
        self.acc.release(b.reserved);
        if let Some(n) = self.per_partition.get_mut(&b.tp) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_partition.remove(&b.tp);
            }
        }
        if let Err(e) = &result {
            for w in &mut self.flush_waiters {
                if batch.0 < w.upto && w.error.is_none() {
                    w.error = Some(e.clone());
                }
            }
        }
        b.slot.complete(result);
    }

    fn finish_txn_op(&mut self, kind: TxnOpKind, result: Result<(), ProducerError>) {
        if self.txn_op.as_ref().is_some_and(|op| op.kind == kind) {
            if let Some(op) = self.txn_op.take() {
                for r in op.replies {
                    let _ = r.send(result.clone());
                }
            }
        }
    }

    fn check_flush_waiters(&mut self) {
        if self.flush_waiters.is_empty() {
            return;
        }
        let lowest = self.batches.keys().next().map_or(u64::MAX, |b| b.0);
        let waiters = std::mem::take(&mut self.flush_waiters);
        for w in waiters {
            if lowest >= w.upto {
                let _ = w.reply.send(w.error.map_or(Ok(()), Err));
            } else {
                self.flush_waiters.push(w);
            }
        }
    }

    // ----- user commands -----

    fn on_command(&mut self, cmd: Command) {
        let now = Instant::now();
        let m = self.millis(now);
        if self.closing.is_some() {
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
                Ok(()) => self.init_waiters.push(reply),
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
                Ok(id) => self.offsets_waiters.push(OffsetsWaiter { id, reply }),
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

    /// Begins a transaction, or keeps the call waiting while the core
    /// re-initializes between transactions.
    fn begin(&mut self, m: Millis, reply: Reply) {
        match self.core.begin(m) {
            Err(UsageError::Reinitializing { .. }) => self.begin_waiters.push(reply),
            r => {
                self.sync_phase();
                let _ = reply.send(r.map_err(ProducerError::Usage));
            }
        }
    }

    /// Asks again for the `begin_transaction` calls that waited for the
    /// core to re-initialize (after a new identity).
    fn resume_begins(&mut self) {
        if self.begin_waiters.is_empty() {
            return;
        }
        let m = self.millis(Instant::now());
        for reply in std::mem::take(&mut self.begin_waiters) {
            self.begin(m, reply);
        }
    }

    fn start_txn_op(&mut self, kind: TxnOpKind, now: Instant, reply: Reply) {
        if let Some(op) = &mut self.txn_op {
            if op.kind == kind {
                // The same call again (a caller that timed out): share the
                // outcome of the one in progress.
                op.replies.push(reply);
            } else {
                // The other one of commit and abort is running: refused, in
                // the core's words.
                let command = match kind {
                    TxnOpKind::Commit => "commit",
                    TxnOpKind::Abort => "abort",
                };
                let _ = reply.send(Err(ProducerError::Usage(self.core.refusal(command))));
            }
            return;
        }
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
                self.txn_op = Some(TxnOp {
                    kind,
                    replies: vec![reply],
                })
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
        self.flush_waiters.push(FlushWaiter {
            upto: self.next_batch,
            error,
            reply,
        });
    }

    fn begin_close(&mut self, reply: Option<Reply>, deadline: Instant) {
        if let Some(c) = &mut self.closing {
            c.replies.extend(reply);
            c.deadline = c.deadline.min(deadline);
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
        self.closing = Some(Closing {
            deadline,
            replies: reply.into_iter().collect(),
        });
    }

    /// Ends the run when closing and nothing is left (or the deadline
    /// passed). Returns whether the driver should stop.
    fn finish_close_if_done(&mut self) -> bool {
        let Some(c) = &self.closing else {
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
        let left: Vec<BatchId> = self.batches.keys().copied().collect();
        for id in left {
            self.resolve(id, Err(ProducerError::Closed));
        }
        for r in self
            .init_waiters
            .drain(..)
            .chain(self.begin_waiters.drain(..))
        {
            let _ = r.send(Err(ProducerError::Closed));
        }
        if let Some(op) = self.txn_op.take() {
            for r in op.replies {
                let _ = r.send(Err(ProducerError::Closed));
            }
        }
        for w in self.offsets_waiters.drain(..) {
            let _ = w.reply.send(Err(ProducerError::Closed));
        }
        for w in self.flush_waiters.drain(..) {
            let _ = w.reply.send(Err(w.error.unwrap_or(ProducerError::Closed)));
        }
        if let Some(c) = self.closing.take() {
            for r in c.replies {
                let _ = r.send(result.clone());
            }
        }
        true
    }
}

/// Takes the next wire request's batches from a broker's queue: distinct
/// partitions (the broker takes one batch per partition per request), one
/// flow, at most `max_bytes` (but at least one batch). A partition whose
/// batch stays behind blocks its later batches, keeping sequence order.
fn take_request(pending: &mut VecDeque<ProduceItem>, max_bytes: usize) -> Vec<ProduceItem> {
    let mut out: Vec<ProduceItem> = Vec::new();
    let mut blocked: Vec<TopicPartition> = Vec::new();
    let mut size = 0usize;
    let mut i = 0;
    while i < pending.len() {
        let it = &pending[i];
        let same_kind = out
            .first()
            .is_none_or(|f| f.flow == it.flow && f.transactional_id == it.transactional_id);
        let fits = out.is_empty() || size + it.bytes.len() <= max_bytes;
        let free = !out.iter().any(|o| o.tp == it.tp) && !blocked.contains(&it.tp);
        if same_kind && fits && free {
            if let Some(it) = pending.remove(i) {
                size += it.bytes.len();
                out.push(it);
            }
        } else {
            if !blocked.contains(&it.tp) {
                blocked.push(it.tp.clone());
            }
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn item(p: i32, seq: u64, len: usize) -> ProduceItem {
        ProduceItem {
            id: RequestId(seq),
            tp: TopicPartition::new("t", p),
            batch: BatchId(seq),
            bytes: Bytes::from(vec![0u8; len]),
            flow: None,
            transactional_id: None,
            generation: 0,
        }
    }

    fn ids(v: &[ProduceItem]) -> Vec<u64> {
        v.iter().map(|i| i.id.0).collect()
    }

    #[test]
    fn one_batch_per_partition_per_request_in_order() {
        let mut q: VecDeque<ProduceItem> = [
            item(0, 1, 10),
            item(0, 2, 10),
            item(1, 3, 10),
            item(2, 4, 10),
            item(1, 5, 10),
        ]
        .into_iter()
        .collect();
        assert_eq!(ids(&take_request(&mut q, 1000)), vec![1, 3, 4]);
        assert_eq!(ids(&take_request(&mut q, 1000)), vec![2, 5]);
        assert!(q.is_empty());
    }

    #[test]
    fn size_limit_blocks_the_partition_behind() {
        let mut q: VecDeque<ProduceItem> = [
            item(0, 1, 60),
            item(1, 2, 60),
            item(1, 3, 10),
            item(2, 4, 30),
        ]
        .into_iter()
        .collect();
        // 1 fits; 2 does not (blocks partition 1, so 3 must wait too); 4 fits.
        assert_eq!(ids(&take_request(&mut q, 100)), vec![1, 4]);
        assert_eq!(ids(&take_request(&mut q, 100)), vec![2]);
        assert_eq!(ids(&take_request(&mut q, 100)), vec![3]);
        // A batch larger than the limit still goes, alone.
        let mut q: VecDeque<ProduceItem> = [item(0, 9, 500)].into_iter().collect();
        assert_eq!(ids(&take_request(&mut q, 100)), vec![9]);
    }
}
