//! The exactly-once processing session: the consume-transform-produce loop
//! over a `read_committed` [`Consumer`] and a transactional [`Producer`]
//! (KIP-98 transactions; KIP-447 offsets with the group's metadata, so one
//! `transactional.id` per instance is enough; KIP-890 where the broker
//! finalizes `transaction.version=2`), with a user [`Handler`] in the
//! middle.
//!
//! What the session does, and why:
//!
//! - Input records go to the handler one input-partition run at a time
//!   inside an open transaction; what the handler sends joins it, and the
//!   offsets of the records it finished join it too
//!   (`send_offsets_to_transaction` with the generation and member id), so
//!   output and input progress commit or vanish together.
//! - A transaction commits when it holds `transaction.max.records` input
//!   records or is `commit.interval.ms` old, whichever comes first.
//! - On an abortable error (a failed delivery, a stale generation refusing
//!   the offsets, the handler returning `Err`) the transaction is aborted,
//!   the consumer is moved back to the group's committed offsets
//!   (KAFKA-17582: otherwise the aborted input would be skipped), the
//!   handler's [`Handler::rollback`] undoes its in-memory changes, and the
//!   input is processed again.
//! - On a revoke (the member still holds its generation) the open
//!   transaction is committed before the partitions are given up; on a lost
//!   membership it is aborted (another member may own the input already).
//! - A fatal error (fenced by a newer instance with the same
//!   `transactional.id`, authorization) ends the session with a typed
//!   [`SessionError`]: a zombie must not write.
//! - A handler panic is caught: the transaction is aborted and the session
//!   ends with [`SessionError::HandlerPanicked`], never leaving a
//!   transaction open.
//!
//! ## Why `transactional.id` is fixed per instance
//!
//! The broker fences older producers of the same `transactional.id`: when an
//! instance restarts (after a crash, a `kill -9`, a network partition that
//! made it look dead), its `init_transactions` bumps the epoch, aborts the
//! transaction the old incarnation left open and makes any write from that
//! zombie fail. That only works if the restarted instance uses the *same*
//! id as the one it replaces, so the id must be stable per instance (say
//! `orders-app-3` for the third replica), not random per process. Since
//! KIP-447 the group coordinator fences zombies on the input side (offsets
//! carry the member's generation), so one id per instance is enough; ids per
//! input partition, as before Kafka 2.5, are not needed.

mod config;
mod error;
mod handler;
mod metrics;
mod per_record;
mod run;
mod topics;
mod txn;

use std::time::Duration;

use exactly_consumer::{Consumer, ConsumerConfig, ConsumerConfigBuilder};
use exactly_net::ConfigError;
use exactly_producer::{Producer, ProducerConfigBuilder};
use tracing::Instrument;

pub use crate::shutdown::ShutdownHandle;
use crate::state::StateConfig;

pub use config::{InputTopics, SessionConfig};
pub use error::SessionError;
pub use handler::{AbortReason, Context, Handler, HandlerError, Output, TransactionEnd};
pub use metrics::{SessionMetrics, SessionStats};
pub use per_record::{per_record, OutputRecord, PerRecord};

/// Builds a [`Session`]: Kafka property names through
/// [`set`](SessionBuilder::set), or typed setters.
///
/// The session's own properties (defaults in brackets):
///
/// | property | meaning |
/// |---|---|
/// | `group.id` | the consumer group (required) |
/// | `transactional.id` | fixed per instance, see the [module docs](crate::session) (required) |
/// | `input.topics` | comma-separated topics to read |
/// | `input.pattern` | or: a regular expression over whole topic names |
/// | `input.pattern.refresh.ms` | how often a pattern is resolved again \[30000\] |
/// | `transaction.max.records` | input records per transaction at most \[1000\] |
/// | `commit.interval.ms` | age at which a transaction commits \[100\] |
/// | `shutdown.timeout.ms` | bound of a graceful stop's work, and of the close after it \[30000\] |
/// | `idle.stop.ms` | stop once no input came for this long (-1: never) \[-1\] |
/// | `handler.max.retries` | consecutive handler failures tolerated (-1: no limit) \[-1\] |
/// | `handler.retry.backoff.ms` | pause after a handler failure \[100\] |
/// | `poll.timeout.ms` | longest wait in one poll \[500\] |
/// | `state.name` | keep an in-memory state per input partition under this name (see [`crate::state`]) |
///
/// Every other key goes to the consumer and/or the producer (prefix it
/// `consumer.` or `producer.` to aim at one); see [`SessionBuilder::set`].
///
/// ```no_run
/// # async fn demo() -> Result<(), exactly_eos::SessionError> {
/// use std::time::Duration;
/// use exactly_eos::Session;
///
/// let mut b = Session::builder();
/// b.set("bootstrap.servers", "127.0.0.1:9092")?
///     .set("linger.ms", "5")?
///     .set("consumer.fetch.max.wait.ms", "100")?;
/// b.group_id("orders-app")
///     .transactional_id("orders-app-1")
///     .input_topics(&["orders"])
///     .max_records_per_transaction(500)
///     .max_transaction_time(Duration::from_millis(200));
/// let session = b.build().await?;
/// # let _ = session; Ok(()) }
/// ```
#[derive(Debug, Clone, Default)]
pub struct SessionBuilder {
    draft: config::Draft,
}

impl SessionBuilder {
    /// Sets one property by its Kafka name (chainable). Session keys are the
    /// session's; `consumer.`/`producer.` prefixed keys go to that client;
    /// other keys go to each client that knows them. Unknown keys, and
    /// settings that would break exactly-once (`isolation.level` other than
    /// `read_committed`, `enable.auto.commit=true`, `acks` other than
    /// `all`), are errors.
    pub fn set(&mut self, key: &str, value: &str) -> Result<&mut Self, ConfigError> {
        self.draft.set(key, value)?;
        Ok(self)
    }

    /// `bootstrap.servers` (both clients).
    pub fn bootstrap_servers(&mut self, servers: &str) -> Result<&mut Self, ConfigError> {
        self.set("bootstrap.servers", servers)
    }

    /// `group.id`.
    pub fn group_id(&mut self, id: impl Into<String>) -> &mut Self {
        self.draft.group_id = Some(id.into());
        self
    }

    /// `transactional.id`: fixed per instance (see the module docs).
    pub fn transactional_id(&mut self, id: impl Into<String>) -> &mut Self {
        self.draft.transactional_id = Some(id.into());
        self
    }

    /// `input.topics`.
    pub fn input_topics<S: AsRef<str>>(&mut self, topics: &[S]) -> &mut Self {
        self.draft.topics = topics.iter().map(|t| t.as_ref().to_owned()).collect();
        self
    }

    /// `input.pattern`: every topic whose whole name matches.
    pub fn input_pattern(&mut self, pattern: &str) -> Result<&mut Self, ConfigError> {
        self.set("input.pattern", pattern)
    }

    /// `transaction.max.records`.
    pub fn max_records_per_transaction(&mut self, n: usize) -> &mut Self {
        self.draft.max_records = n.max(1);
        self
    }

    /// `commit.interval.ms`.
    pub fn max_transaction_time(&mut self, t: Duration) -> &mut Self {
        self.draft.max_time = t.max(Duration::from_millis(1));
        self
    }

    /// `shutdown.timeout.ms`.
    pub fn shutdown_timeout(&mut self, t: Duration) -> &mut Self {
        self.draft.shutdown_timeout = t;
        self
    }

    /// `idle.stop.ms`: end [`Session::run`] once no input arrived for `t`
    /// and no transaction is open (a batch job that stops when caught up).
    /// The time counts from the last input or the last rebalance, whichever
    /// came later, and not while the member is joining its group.
    pub fn stop_when_idle(&mut self, t: Duration) -> &mut Self {
        self.draft.idle_stop = Some(t);
        self
    }

    /// `handler.max.retries`.
    pub fn handler_max_retries(&mut self, n: u32) -> &mut Self {
        self.draft.handler_max_retries = Some(n);
        self
    }

    /// `handler.retry.backoff.ms`.
    pub fn handler_retry_backoff(&mut self, t: Duration) -> &mut Self {
        self.draft.handler_retry_backoff = t;
        self
    }

    /// Keeps a key-value state per input partition, backed by a changelog
    /// topic (see [`crate::state`]); the handler reaches it through
    /// [`Context::state`].
    pub fn state(&mut self, state: StateConfig) -> &mut Self {
        self.draft.state = Some(state);
        self
    }

    /// `group.instance.id`: static membership (KIP-345). A restarted
    /// instance with the same id takes its place in the group without a
    /// rebalance; with a fixed `transactional.id` per instance, the natural
    /// choice is the same name for both.
    pub fn group_instance_id(&mut self, id: impl Into<String>) -> &mut Self {
        self.draft.group_instance_id = Some(id.into());
        self
    }

    /// The consumer's typed settings. The session overrides `group.id`,
    /// `isolation.level` (`read_committed`) and `enable.auto.commit`
    /// (`false`) when it builds. Set `group.instance.id` with
    /// [`group_instance_id`](Self::group_instance_id), not here (the
    /// consumer that restores state must not get it).
    pub fn consumer(&mut self) -> &mut ConsumerConfigBuilder {
        &mut self.draft.consumer
    }

    /// The producer's typed settings. The session overrides
    /// `transactional.id`, `acks` (`all`) and `enable.idempotence` when it
    /// builds.
    pub fn producer(&mut self) -> &mut ProducerConfigBuilder {
        &mut self.draft.producer
    }

    /// Validates the settings and connects both clients (the producer's
    /// `init_transactions` and the group join happen in [`Session::run`]).
    pub async fn build(&self) -> Result<Session, SessionError> {
        let built = self.draft.build()?;
        let consumer = Consumer::new(built.consumer.build()?).await?;
        let producer = Producer::new(built.producer.build()?)
            .await
            .map_err(SessionError::Producer)?;
        Ok(Session {
            cfg: built.session,
            restore: (built.restore, built.uncommitted),
            consumer,
            producer,
            stop: ShutdownHandle::default(),
            metrics: SessionMetrics::default(),
        })
    }
}

/// An exactly-once processing session: build it, take its
/// [`shutdown_handle`](Session::shutdown_handle), then
/// [`run`](Session::run) a [`Handler`].
#[derive(Debug)]
pub struct Session {
    cfg: SessionConfig,
    /// The restore consumer's configurations: `read_committed`, and
    /// `read_uncommitted` for high watermarks.
    restore: (ConsumerConfig, ConsumerConfig),
    consumer: Consumer,
    producer: Producer,
    stop: ShutdownHandle,
    metrics: SessionMetrics,
}

impl Session {
    /// A builder.
    pub fn builder() -> SessionBuilder {
        SessionBuilder::default()
    }

    /// A session from Kafka property names and values (see
    /// [`SessionBuilder`]).
    pub async fn from_properties<K, V>(
        props: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Session, SessionError>
    where
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut b = SessionBuilder::default();
        for (k, v) in props {
            b.set(k.as_ref(), v.as_ref())?;
        }
        b.build().await
    }

    /// The settings.
    pub fn config(&self) -> &SessionConfig {
        &self.cfg
    }

    /// A handle that stops [`Session::run`] (gracefully or not); clone it
    /// into a signal handler.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.stop.clone()
    }

    /// Uses `shutdown` (e.g. one shared with a [`SinkRunner`] or an outbox
    /// relay, so one signal stops them all) instead of the session's own
    /// handle.
    ///
    /// [`SinkRunner`]: crate::sink::SinkRunner
    pub fn with_shutdown(mut self, shutdown: ShutdownHandle) -> Self {
        self.stop = shutdown;
        self
    }

    /// A live view of the session's counters.
    pub fn metrics(&self) -> SessionMetrics {
        self.metrics.clone()
    }

    /// The consumer (its metrics, its assignment).
    pub fn consumer(&self) -> &Consumer {
        &self.consumer
    }

    /// The producer (its metrics).
    pub fn producer(&self) -> &Producer {
        &self.producer
    }

    /// Runs `handler` until a stop is asked for through the
    /// [`ShutdownHandle`], the input stays idle for `idle.stop.ms` (if set),
    /// or a fatal error. Returns the session's counters.
    ///
    /// Whatever ends it, the open transaction is committed (graceful stop)
    /// or aborted, the producer is closed and the consumer leaves the group
    /// before this returns (a static member, `group.instance.id`, keeps its
    /// place for `session.timeout.ms`, as KIP-345 intends).
    pub async fn run<H: Handler>(self, handler: H) -> Result<SessionStats, SessionError> {
        let span = tracing::info_span!(
            "eos.session",
            group = %self.cfg.group_id,
            transactional_id = %self.cfg.transactional_id,
        );
        let metrics = self.metrics.clone();
        async move {
            let mut runner = run::Runner::new(self, handler);
            let result = runner.pump().await;
            if let Err(e) = &result {
                tracing::error!(error = %e, "the session is ending on an error");
            }
            runner.close().await;
            let stats = metrics.snapshot();
            tracing::info!(?stats, "session closed");
            result.map(|()| stats)
        }
        .instrument(span)
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `run`'s future can be spawned on a multi-threaded runtime.
    #[allow(dead_code)]
    fn run_is_send(s: Session) {
        fn is_send<T: Send>(_: T) {}
        is_send(s.run(per_record(|_, _| Ok(()))));
    }
}
