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
//! Nothing here decides a retry or waits before one: the core's backoffs
//! come back as `poll_timeout`.
//!
//! The files, by concern:
//! - `mod.rs`: the task, its wake-ups and one turn (this run loop);
//! - `batches.rs`: batches in (accumulator to core) and resolved (futures);
//! - `requests.rs`: the core's requests out, their outcomes back in;
//! - `dispatch.rs`: Produce queueing and merging per leader (pure);
//! - `wire.rs` and `coordinator.rs`: requests to kafka-protocol structs;
//! - `calls.rs`: the application's calls and the events that answer them;
//! - `waiters.rs`: who waits for what (pure);
//! - `inflight.rs`: request futures polled in creation order.

mod batches;
mod calls;
mod coordinator;
mod dispatch;
mod inflight;
mod requests;
mod waiters;
mod wire;

use std::collections::{BTreeMap, HashMap};
use std::future::poll_fn;
use std::sync::Arc;
use std::time::Duration;

use exactly_codec::ClosedBatch;
use exactly_net::Client;
use exactly_txn::{
    Acceptance, BatchId, GroupMetadata, Millis, OffsetCommit, ProducerCore, ProducerIdentity,
    RequestId, TopicPartition,
};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::Instrument;

use crate::accumulator::{Accumulator, Phase};
use crate::config::ProducerConfig;
use crate::delivery::BatchSlot;
use crate::error::ProducerError;
use crate::metrics::ProducerMetrics;
use coordinator::CoordinatorDone;
use dispatch::Dispatch;
use inflight::InFlight;
use waiters::{Reply, Waiters};
use wire::ProduceResult;

pub(crate) use wire::broker_info;

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
    /// Produce requests made for it so far (the second and later are
    /// retries).
    sends: u32,
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
    dispatch: Dispatch,
    inflight: InFlight<Completion>,
    refreshing: bool,
    /// When the periodic metadata refresh (`metadata.max.age.ms`) is due:
    /// new partitions of a topic and moved leaders are picked up even when
    /// no error asks for a refresh.
    next_metadata_refresh: Instant,
    /// The application's calls waiting for the core.
    waiters: Waiters,
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
    /// The counters the [`crate::Producer`] handles read.
    metrics: Arc<ProducerMetrics>,
    /// The identity last reported by the core (to tell an epoch bump from
    /// a producer id rotation).
    identity: Option<ProducerIdentity>,
    /// When the commit under way was asked for (its latency's start).
    commit_started: Option<Instant>,
}

impl Driver {
    pub(crate) fn new(
        core: ProducerCore,
        client: Client,
        acc: Arc<Accumulator>,
        cfg: Arc<ProducerConfig>,
        cmd_rx: mpsc::UnboundedReceiver<Command>,
        features_epoch: i64,
        metrics: Arc<ProducerMetrics>,
    ) -> Self {
        let span = tracing::info_span!(
            "exactly.producer",
            transactional_id = cfg.transactional_id.as_deref(),
        );
        let cfg_max_age = client_max_age(&client);
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
            dispatch: Dispatch::default(),
            inflight: InFlight::default(),
            refreshing: false,
            next_metadata_refresh: Instant::now() + cfg_max_age,
            waiters: Waiters::default(),
            next_linger: None,
            features_epoch,
            span,
            identity_span: tracing::Span::none(),
            metrics,
            identity: None,
            commit_started: None,
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
        if let Some(c) = self.waiters.closing() {
            d = d.min(c.deadline);
        }
        d.min(self.next_metadata_refresh)
    }

    /// One turn: batches in, requests out, events handled, until quiet.
    /// Each round runs in the current identity's span, so an identity that
    /// changes in one round shows from the next.
    fn turn(&mut self) {
        let now = Instant::now();
        let m = self.millis(now);
        if now >= self.next_metadata_refresh {
            self.next_metadata_refresh = now + client_max_age(&self.client);
            if !self.acc.topics().is_empty() {
                tracing::debug!("periodic metadata refresh (metadata.max.age.ms)");
                self.refresh_metadata();
            }
        }
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
        if self.waiters.closing().is_some() {
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
}

/// `metadata.max.age.ms`, at least 100 ms so a zero does not spin.
fn client_max_age(client: &Client) -> Duration {
    client
        .config()
        .metadata_max_age()
        .max(Duration::from_millis(100))
}
