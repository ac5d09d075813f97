//! [`SinkRunner`]: the consumer loop of an exactly-once sink (see the
//! module docs of [`crate::sink`] for the protocol it keeps).

use std::time::Duration;

use exactly_consumer::{Consumer, ConsumerError, Polled, Rebalance, TopicPartition};
use tokio::time::Instant;
use tracing::Instrument;

use super::tracker::{Part, Seek, Tracker};
use super::{Applied, PartitionBatch, Sink, SinkBatch, SinkError, SinkRunError};
use crate::shutdown::ShutdownHandle;
use exactly_consumer::{ConsumerRecord, IsolationLevel};

/// How a [`SinkRunner`] waits and retries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkOptions {
    /// The longest one poll waits for records (also how often partitions
    /// waiting for their stored offsets are looked at). Default 500 ms.
    pub poll_timeout: Duration,
    /// The first wait after a retriable sink error; it doubles up to
    /// `max_backoff`. Default 100 ms.
    pub retry_backoff: Duration,
    /// The longest wait between retries. Default 5 s.
    pub max_backoff: Duration,
    /// Retriable sink errors with no success in between for this long stop
    /// the runner with the last one. Default 2 minutes.
    pub give_up_after: Duration,
    /// After a shutdown request, how long the batch in flight may take to
    /// finish, and then how long leaving the group may take. Default 10 s.
    pub shutdown_timeout: Duration,
}

impl Default for SinkOptions {
    fn default() -> Self {
        Self {
            poll_timeout: Duration::from_millis(500),
            retry_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            give_up_after: Duration::from_secs(120),
            shutdown_timeout: Duration::from_secs(10),
        }
    }
}

/// What a [`SinkRunner`] did so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SinkStats {
    /// Batches committed by the sink.
    pub batches_committed: u64,
    /// Records in those batches.
    pub records_applied: u64,
    /// Batches rolled back because another writer had moved a partition's
    /// stored offset (the fence at work: a rebalance, a zombie, or a lost
    /// commit answer).
    pub batches_fenced: u64,
    /// Batches or stored-offset reads that failed with a retriable error.
    pub retries: u64,
    /// Assignments received.
    pub rebalances: u64,
}

/// Runs a [`Sink`] over a consumer group: see the module docs.
///
/// ```no_run
/// # async fn demo<S: exactly_eos::sink::Sink>(sink: S) -> Result<(), Box<dyn std::error::Error>> {
/// use exactly_eos::sink::SinkRunner;
///
/// let runner = SinkRunner::from_properties(
///     [("bootstrap.servers", "127.0.0.1:9092"), ("group.id", "orders-sink")],
///     &["orders"],
///     sink,
/// )
/// .await?;
/// let shutdown = runner.shutdown_handle();
/// tokio::spawn(async move {
///     let _ = tokio::signal::ctrl_c().await;
///     shutdown.shutdown();
/// });
/// let stats = runner.run(|s| tracing::debug!(?s, "committed")).await?;
/// println!("{} records applied", stats.records_applied);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct SinkRunner<S> {
    consumer: Consumer,
    sink: S,
    options: SinkOptions,
    shutdown: ShutdownHandle,
    tracker: Tracker,
    stats: SinkStats,
    /// Retriable failures in a row: since when, and when to try again.
    failing_since: Option<Instant>,
    retry_at: Option<Instant>,
    backoff: Duration,
}

impl<S: Sink> SinkRunner<S> {
    /// A runner over `consumer` (which must have `group.id`,
    /// `isolation.level=read_committed` and `enable.auto.commit=false`),
    /// subscribed to `topics`.
    pub fn new<T: AsRef<str>>(
        mut consumer: Consumer,
        topics: &[T],
        sink: S,
    ) -> Result<Self, SinkRunError<S::Error>> {
        let cfg = consumer.config();
        if cfg.group_id().is_none() {
            return Err(SinkRunError::Config("`group.id` is required".into()));
        }
        if cfg.isolation_level() != IsolationLevel::ReadCommitted {
            return Err(SinkRunError::Config(
                "`isolation.level` must be read_committed: records of aborted transactions \
                 must not reach the sink"
                    .into(),
            ));
        }
        if cfg.enable_auto_commit() {
            return Err(SinkRunError::Config(
                "`enable.auto.commit` must be false: the offsets live in the sink".into(),
            ));
        }
        consumer.subscribe(topics)?;
        let options = SinkOptions::default();
        Ok(Self {
            consumer,
            sink,
            backoff: options.retry_backoff,
            options,
            shutdown: ShutdownHandle::new(),
            tracker: Tracker::default(),
            stats: SinkStats::default(),
            failing_since: None,
            retry_at: None,
        })
    }

    /// A runner whose consumer is built from Kafka properties, with
    /// `isolation.level=read_committed`, `enable.auto.commit=false` and
    /// `auto.offset.reset=earliest` unless `props` say otherwise (the first
    /// two may not be changed).
    pub async fn from_properties<K, V, T>(
        props: impl IntoIterator<Item = (K, V)>,
        topics: &[T],
        sink: S,
    ) -> Result<Self, SinkRunError<S::Error>>
    where
        K: AsRef<str>,
        V: AsRef<str>,
        T: AsRef<str>,
    {
        let mut all: Vec<(String, String)> = vec![
            ("isolation.level".into(), "read_committed".into()),
            ("enable.auto.commit".into(), "false".into()),
            ("auto.offset.reset".into(), "earliest".into()),
        ];
        all.extend(
            props
                .into_iter()
                .map(|(k, v)| (k.as_ref().to_owned(), v.as_ref().to_owned())),
        );
        let consumer = Consumer::from_properties(all).await?;
        Self::new(consumer, topics, sink)
    }

    /// Replaces the options.
    pub fn with_options(mut self, options: SinkOptions) -> Self {
        self.backoff = options.retry_backoff;
        self.options = options;
        self
    }

    /// Uses `shutdown` (e.g. one shared with other tasks) instead of the
    /// runner's own handle.
    pub fn with_shutdown(mut self, shutdown: ShutdownHandle) -> Self {
        self.shutdown = shutdown;
        self
    }

    /// A handle that stops [`SinkRunner::run`] gracefully.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.shutdown.clone()
    }

    /// The consumer (e.g. for its metrics).
    pub fn consumer(&self) -> &Consumer {
        &self.consumer
    }

    /// Runs until a stop is asked for on the shutdown handle (then returns the stats)
    /// or a fatal error. `on_commit` is called right after every commit of
    /// the sink, before anything else happens. Whatever the outcome, the
    /// member leaves the group and the consumer is closed.
    pub async fn run(
        mut self,
        mut on_commit: impl FnMut(&SinkStats) + Send,
    ) -> Result<SinkStats, SinkRunError<S::Error>> {
        let group = self.consumer.config().group_id().unwrap_or("").to_owned();
        let span = tracing::info_span!("sink.run", group = %group);
        let result = self.pump(&mut on_commit).instrument(span).await;
        let SinkRunner {
            consumer,
            options,
            stats,
            ..
        } = self;
        if let Err(e) = consumer.close_with_timeout(options.shutdown_timeout).await {
            tracing::debug!(error = %e, "closing the sink's consumer");
        }
        tracing::info!(?stats, ok = result.is_ok(), "sink stopped");
        result.map(|()| stats)
    }

    async fn pump(
        &mut self,
        on_commit: &mut (impl FnMut(&SinkStats) + Send),
    ) -> Result<(), SinkRunError<S::Error>> {
        loop {
            if self.shutdown.is_requested() {
                return Ok(());
            }
            self.load().await?;
            let polled = tokio::select! {
                p = self.consumer.poll(self.options.poll_timeout) => p,
                () = self.shutdown.requested() => return Ok(()),
            };
            let records = match polled {
                Ok(Polled::Records(r)) => r,
                Ok(Polled::Rebalance(ev)) => {
                    self.rebalance(ev);
                    continue;
                }
                Err(e) if e.is_retriable() => {
                    tracing::warn!(error = %e, "poll failed; polling again");
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            if records.is_empty() {
                continue;
            }
            let consumer = &self.consumer;
            let split = self.tracker.split(records, |tp| consumer.position(tp));
            self.pause(&split.reload);
            if split.parts.is_empty() {
                continue;
            }
            if self.apply(batch_of(split.parts), on_commit).await? {
                return Ok(());
            }
        }
    }

    fn rebalance(&mut self, ev: Rebalance) {
        match ev {
            Rebalance::Assigned(parts) => {
                tracing::info!(partitions = ?parts, "assigned: reading the stored offsets");
                self.stats.rebalances += 1;
                self.tracker.assign(&parts);
                self.pause(&parts);
            }
            Rebalance::Revoked(parts) | Rebalance::Lost(parts) => {
                // No transaction of ours is open: batches are applied
                // between polls.
                self.tracker.forget(&parts);
            }
        }
    }

    /// Pauses partitions until their stored offsets are read; one the
    /// consumer does not hold any more is forgotten.
    fn pause(&mut self, parts: &[TopicPartition]) {
        for tp in parts {
            if self.consumer.pause(std::slice::from_ref(tp)).is_err() {
                self.tracker.forget(std::slice::from_ref(tp));
            }
        }
    }

    /// Reads the stored offsets of the partitions waiting for them, seeks
    /// there and resumes them.
    async fn load(&mut self) -> Result<(), SinkRunError<S::Error>> {
        let loading = self.tracker.loading();
        if loading.is_empty() || self.retry_at.is_some_and(|t| Instant::now() < t) {
            return Ok(());
        }
        let stored = tokio::select! {
            r = self.sink.stored_offsets(&loading) => r,
            () = self.shutdown.requested() => return Ok(()),
        };
        let stored = match stored {
            Ok(s) => s,
            Err(e) => return self.failed(e),
        };
        if let Some(missing) = loading
            .iter()
            .find(|tp| !stored.iter().any(|(s, _)| s == *tp))
        {
            return Err(SinkRunError::Contract(format!(
                "stored_offsets did not answer for {missing}"
            )));
        }
        self.succeeded();
        for (tp, seek) in self.tracker.loaded(&stored) {
            let moved = match seek {
                Seek::To(offset) => self.consumer.seek(&tp, offset),
                Seek::ConsumerDecides => Ok(()),
            };
            let resumed = moved.and_then(|()| self.consumer.resume(std::slice::from_ref(&tp)));
            match resumed {
                Ok(()) => tracing::debug!(partition = %tp, ?seek, "partition ready"),
                Err(ConsumerError::Usage(why)) => {
                    // No longer assigned: a rebalance event is on its way.
                    tracing::debug!(partition = %tp, %why, "not resumed");
                    self.tracker.forget(std::slice::from_ref(&tp));
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Applies one batch. Returns true when a shutdown cut it short.
    async fn apply(
        &mut self,
        batch: SinkBatch,
        on_commit: &mut (impl FnMut(&SinkStats) + Send),
    ) -> Result<bool, SinkRunError<S::Error>> {
        let span = tracing::debug_span!(
            "sink.batch",
            partitions = batch.partitions().len(),
            records = batch.len()
        );
        let outcome = {
            let fut = self.sink.apply(&batch).instrument(span);
            tokio::pin!(fut);
            tokio::select! {
                r = &mut fut => Some(r),
                () = self.shutdown.requested() => {
                    // Let the batch in flight finish, within the bound.
                    tokio::time::timeout(self.options.shutdown_timeout, fut).await.ok()
                }
            }
        };
        let Some(outcome) = outcome else {
            // Cut short: its outcome is for the database to say, and the
            // next owner of these partitions reads it there.
            tracing::warn!("shutdown: the batch in flight did not finish in time");
            return Ok(true);
        };
        let parts = batch.partitions();
        match outcome {
            Ok(Applied::Committed) => {
                self.tracker
                    .committed(parts.iter().map(|p| (&p.partition, p.next_offset)));
                self.stats.batches_committed += 1;
                self.stats.records_applied += batch.len() as u64;
                on_commit(&self.stats);
                self.succeeded();
                Ok(false)
            }
            Ok(Applied::Fenced(fenced)) => {
                self.stats.batches_fenced += 1;
                tracing::warn!(
                    partitions = ?fenced,
                    "fenced: another writer moved the stored offsets; reading them again"
                );
                self.rewind(&batch);
                Ok(false)
            }
            Err(e) => {
                self.rewind(&batch);
                self.failed(e).map(|()| false)
            }
        }
    }

    fn rewind(&mut self, batch: &SinkBatch) {
        let parts = self.tracker.rewind(
            batch
                .partitions()
                .iter()
                .map(|p| (&p.partition, p.records.first().map(ConsumerRecord::offset))),
        );
        self.pause(&parts);
    }

    /// A sink error: a retriable one schedules a retry (until
    /// `give_up_after`), any other stops the runner.
    fn failed(&mut self, e: S::Error) -> Result<(), SinkRunError<S::Error>> {
        if !e.is_retriable() {
            return Err(SinkRunError::Sink(e));
        }
        let now = Instant::now();
        let since = *self.failing_since.get_or_insert(now);
        if now.duration_since(since) >= self.options.give_up_after {
            return Err(SinkRunError::Sink(e));
        }
        self.stats.retries += 1;
        tracing::warn!(error = %e, backoff = ?self.backoff, "sink failed; retrying after the stored offsets are read again");
        self.retry_at = Some(now + self.backoff);
        self.backoff = (self.backoff * 2).min(self.options.max_backoff);
        Ok(())
    }

    fn succeeded(&mut self) {
        self.failing_since = None;
        self.retry_at = None;
        self.backoff = self.options.retry_backoff;
    }
}

fn batch_of(parts: Vec<Part<ConsumerRecord>>) -> SinkBatch {
    SinkBatch {
        partitions: parts
            .into_iter()
            .map(|p| PartitionBatch {
                partition: p.partition,
                stored: p.stored,
                next_offset: p.next_offset,
                records: p.records,
            })
            .collect(),
    }
}
