//! [`OutboxRelay`]: reads the outbox in `(txid, id)` order below the
//! snapshot's `xmin` and publishes it in Kafka transactions that also carry
//! the relay's new position (see the module docs of [`crate::outbox`]).

use std::time::Duration;

use exactly_consumer::{Consumer, ConsumerError};
use exactly_eos::ShutdownHandle;
use exactly_producer::{Producer, ProducerError, ProducerRecord};
use tokio_postgres::{Client, Config, IsolationLevel};
use tracing::Instrument;

use super::progress::{ensure_topic, restore, OutboxPosition};
use super::{Outbox, OUTBOX_ID_HEADER};
use crate::connect::connect;
use crate::error::PgError;

/// Why the relay stopped.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    /// The database failed with an error a retry cannot fix, or for longer
    /// than [`RelayConfig::give_up_after`].
    #[error("database: {0}")]
    Db(#[from] PgError),
    /// The producer failed fatally (fenced by a newer relay with the same
    /// id, authorization, a bad configuration).
    #[error("producer: {0}")]
    Producer(#[from] ProducerError),
    /// Reading the progress topic failed.
    #[error("consumer: {0}")]
    Consumer(#[from] ConsumerError),
    /// Creating the progress topic failed.
    #[error("kafka: {0}")]
    Kafka(String),
    /// The progress topic holds something the relay cannot read, or could
    /// not be read to its end in time.
    #[error("progress: {0}")]
    Progress(String),
    /// The configuration is unusable.
    #[error("configuration: {0}")]
    Config(String),
}

/// What a relay reads, where it publishes, and how it waits. Its `Debug`
/// output prints neither the connection string (it may hold a password)
/// nor the value of a secret property (`sasl.password`, ...).
#[derive(Clone)]
pub struct RelayConfig {
    /// The database (libpq-style connection string or `postgresql://` URL).
    pub postgres: String,
    /// The outbox table ([`Outbox::ddl`] describes it).
    pub table: String,
    /// The relay's id: its `transactional.id` and its key in the progress
    /// topic. Fixed per outbox table and stable across restarts: a restart
    /// under the same id fences the old instance and resumes its position;
    /// under a new id it would start from the beginning.
    pub relay_id: String,
    /// The compacted topic holding positions (default
    /// `exactly-outbox-progress`; created with 1 partition if missing).
    pub progress_topic: String,
    /// Kafka properties for both the producer and the progress reader
    /// (`bootstrap.servers`, security settings).
    pub kafka_properties: Vec<(String, String)>,
    /// Extra producer properties (`linger.ms`, `compression.type`, ...).
    pub producer_properties: Vec<(String, String)>,
    /// Rows per Kafka transaction, at most (default 500).
    pub max_rows_per_transaction: usize,
    /// How long to wait when the outbox has nothing new (default 100 ms).
    pub poll_interval: Duration,
    /// Delete rows once their Kafka transaction committed (default false).
    pub delete_published: bool,
    /// The first wait after a retriable failure; doubles up to 5 s.
    pub retry_backoff: Duration,
    /// Retriable database failures with no success between them for this
    /// long stop the relay (default 2 minutes).
    pub give_up_after: Duration,
    /// Limit for creating and reading the progress topic, and for the
    /// transaction in flight at shutdown (default 30 s).
    pub timeout: Duration,
}

impl std::fmt::Debug for RelayConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use exactly_net::config::props::{shown, REDACTED};
        let props = |ps: &[(String, String)]| -> Vec<(String, String)> {
            ps.iter()
                .map(|(k, v)| (k.clone(), shown(k, v).to_owned()))
                .collect()
        };
        f.debug_struct("RelayConfig")
            .field("postgres", &REDACTED)
            .field("table", &self.table)
            .field("relay_id", &self.relay_id)
            .field("progress_topic", &self.progress_topic)
            .field("kafka_properties", &props(&self.kafka_properties))
            .field("producer_properties", &props(&self.producer_properties))
            .field("max_rows_per_transaction", &self.max_rows_per_transaction)
            .field("poll_interval", &self.poll_interval)
            .field("delete_published", &self.delete_published)
            .field("retry_backoff", &self.retry_backoff)
            .field("give_up_after", &self.give_up_after)
            .field("timeout", &self.timeout)
            .finish()
    }
}

#[cfg(test)]
mod debug_tests {
    use super::*;

    #[test]
    fn debug_prints_no_secret() {
        let mut c = RelayConfig::new(
            "postgresql://relay:PG-SECRET-1@db/app",
            "h:9092",
            "outbox",
            "r1",
        );
        c.kafka_properties
            .push(("sasl.password".into(), "KAFKA-SECRET-2".into()));
        c.producer_properties
            .push(("ssl.key.password".into(), "KEY-SECRET-3".into()));
        let d = format!("{c:?}");
        for secret in ["PG-SECRET-1", "KAFKA-SECRET-2", "KEY-SECRET-3"] {
            assert!(!d.contains(secret), "{secret} in {d}");
        }
        assert!(d.contains("outbox") && d.contains("h:9092"), "{d}");
    }
}

impl RelayConfig {
    /// A relay of `table` in the database `postgres` to the cluster at
    /// `bootstrap_servers`, under the id `relay_id`.
    pub fn new(
        postgres: impl Into<String>,
        bootstrap_servers: impl Into<String>,
        table: impl Into<String>,
        relay_id: impl Into<String>,
    ) -> Self {
        Self {
            postgres: postgres.into(),
            table: table.into(),
            relay_id: relay_id.into(),
            progress_topic: "exactly-outbox-progress".into(),
            kafka_properties: vec![("bootstrap.servers".into(), bootstrap_servers.into())],
            producer_properties: Vec::new(),
            max_rows_per_transaction: 500,
            poll_interval: Duration::from_millis(100),
            delete_published: false,
            retry_backoff: Duration::from_millis(100),
            give_up_after: Duration::from_secs(120),
            timeout: Duration::from_secs(30),
        }
    }
}

/// What the relay did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RelayStats {
    /// Kafka transactions committed.
    pub transactions_committed: u64,
    /// Rows published in them.
    pub rows_published: u64,
    /// Transactions aborted after an abortable error (their rows are
    /// published again).
    pub transactions_aborted: u64,
    /// Restarts from the progress topic after an error whose outcome was
    /// unknown.
    pub restarts: u64,
    /// The committed position.
    pub position: OutboxPosition,
}

/// One outbox row.
#[derive(Debug)]
struct Row {
    id: i64,
    txid: u64,
    topic: String,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
}

impl Row {
    fn position(&self) -> OutboxPosition {
        OutboxPosition {
            txid: self.txid,
            id: self.id,
        }
    }
}

/// Publishes an outbox table to Kafka exactly once. See the module docs.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use exactly_postgres::{OutboxRelay, RelayConfig};
///
/// let cfg = RelayConfig::new(
///     "host=127.0.0.1 user=app dbname=shop",
///     "127.0.0.1:9092",
///     "outbox",
///     "shop-outbox-relay",
/// );
/// let relay = OutboxRelay::new(cfg)?;
/// let shutdown = relay.shutdown_handle();
/// tokio::spawn(async move {
///     let _ = tokio::signal::ctrl_c().await;
///     shutdown.shutdown();
/// });
/// let stats = relay.run(|_| {}).await?;
/// println!("{} rows published", stats.rows_published);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct OutboxRelay {
    cfg: RelayConfig,
    outbox: Outbox,
    pg_config: Config,
    shutdown: ShutdownHandle,
}

impl OutboxRelay {
    /// Checks the configuration (nothing is connected yet).
    pub fn new(cfg: RelayConfig) -> Result<Self, OutboxError> {
        if cfg.relay_id.is_empty() {
            return Err(OutboxError::Config("`relay_id` is empty".into()));
        }
        if cfg.max_rows_per_transaction == 0 {
            return Err(OutboxError::Config(
                "`max_rows_per_transaction` must be at least 1".into(),
            ));
        }
        let outbox = Outbox::new(&cfg.table)?;
        let pg_config = cfg.postgres.parse().map_err(PgError::from)?;
        Ok(Self {
            cfg,
            outbox,
            pg_config,
            shutdown: ShutdownHandle::new(),
        })
    }

    /// A handle that stops [`OutboxRelay::run`] gracefully: the transaction
    /// in flight finishes (within [`RelayConfig::timeout`]) and the producer
    /// closes.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.shutdown.clone()
    }

    /// Uses `shutdown` instead of the relay's own handle.
    pub fn with_shutdown(mut self, shutdown: ShutdownHandle) -> Self {
        self.shutdown = shutdown;
        self
    }

    /// Runs until a stop is asked for on the shutdown handle or a fatal error.
    /// `on_commit` is called right after each Kafka commit, before anything
    /// else happens.
    pub async fn run(
        self,
        mut on_commit: impl FnMut(&RelayStats) + Send,
    ) -> Result<RelayStats, OutboxError> {
        let span = tracing::info_span!("outbox.relay", relay = %self.cfg.relay_id, table = %self.cfg.table);
        async {
            let (mut producer, position) = self.start().await?;
            let mut stats = RelayStats {
                position,
                ..RelayStats::default()
            };
            let result = self.pump(&mut producer, &mut stats, &mut on_commit).await;
            if let Err(e) = producer.close(self.cfg.timeout).await {
                tracing::debug!(error = %e, "closing the relay's producer");
            }
            tracing::info!(?stats, ok = result.is_ok(), "relay stopped");
            result.map(|()| stats)
        }
        .instrument(span)
        .await
    }

    /// A fresh producer, fenced in (`init_transactions`), and the position
    /// the progress topic holds.
    async fn start(&self) -> Result<(Producer, OutboxPosition), OutboxError> {
        let mut cprops = self.cfg.kafka_properties.clone();
        cprops.push(("isolation.level".into(), "read_committed".into()));
        cprops.push(("auto.offset.reset".into(), "earliest".into()));
        let mut consumer = Consumer::from_properties(cprops).await?;
        ensure_topic(&consumer, &self.cfg.progress_topic, self.cfg.timeout).await?;
        let mut pprops = self.cfg.kafka_properties.clone();
        pprops.push(("acks".into(), "all".into()));
        pprops.extend(self.cfg.producer_properties.iter().cloned());
        pprops.push(("transactional.id".into(), self.cfg.relay_id.clone()));
        let producer = Producer::from_properties(pprops).await?;
        // First fence the older instance (its open transaction is aborted),
        // then read: the committed position is final from here on.
        producer.init_transactions().await?;
        let position = restore(
            &mut consumer,
            &self.cfg.progress_topic,
            &self.cfg.relay_id,
            self.cfg.timeout,
        )
        .await;
        let _ = consumer.close_with_timeout(Duration::from_secs(5)).await;
        let position = position?;
        tracing::info!(?position, "relay position restored from the progress topic");
        Ok((producer, position))
    }

    async fn pump(
        &self,
        producer: &mut Producer,
        stats: &mut RelayStats,
        on_commit: &mut (impl FnMut(&RelayStats) + Send),
    ) -> Result<(), OutboxError> {
        let mut pg: Option<Client> = None;
        let mut backoff = self.cfg.retry_backoff;
        let mut failing_since: Option<tokio::time::Instant> = None;
        loop {
            if self.shutdown.is_requested() {
                return Ok(());
            }
            let rows = match self.read(&mut pg, stats.position).await {
                Ok(rows) => {
                    failing_since = None;
                    backoff = self.cfg.retry_backoff;
                    rows
                }
                Err(OutboxError::Db(e)) if e.is_retriable() => {
                    pg = None;
                    let since = *failing_since.get_or_insert_with(tokio::time::Instant::now);
                    if since.elapsed() >= self.cfg.give_up_after {
                        return Err(e.into());
                    }
                    tracing::warn!(error = %e, ?backoff, "reading the outbox failed; retrying");
                    self.pause(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
                Err(e) => return Err(e),
            };
            let Some(last) = rows.last().map(Row::position) else {
                self.pause(self.cfg.poll_interval).await;
                continue;
            };
            let outcome = {
                let fut = self.publish(producer, &rows, last);
                tokio::pin!(fut);
                tokio::select! {
                    r = &mut fut => Some(r),
                    () = self.shutdown.requested() => {
                        tokio::time::timeout(self.cfg.timeout, fut).await.ok()
                    }
                }
            };
            let Some(outcome) = outcome else {
                tracing::warn!("shutdown: the transaction in flight did not finish in time");
                return Ok(());
            };
            match outcome {
                Ok(()) => {
                    tracing::debug!(
                        rows = rows.len(),
                        first = ?rows.first().map(Row::position),
                        ?last,
                        "committed"
                    );
                    stats.position = last;
                    stats.transactions_committed += 1;
                    stats.rows_published += rows.len() as u64;
                    on_commit(stats);
                    if self.cfg.delete_published {
                        self.delete_published(&mut pg, last).await;
                    }
                }
                Err(e) if e.is_fatal() => return Err(e.into()),
                Err(e) if e.is_abortable() => {
                    tracing::warn!(error = %e, "aborting the relay's transaction; its rows go again");
                    stats.transactions_aborted += 1;
                    if let Err(abort) = producer.abort_transaction().await {
                        tracing::warn!(error = %abort, "abort failed; restarting the producer");
                        self.restart(producer, stats).await?;
                    }
                    self.pause(self.cfg.retry_backoff).await;
                }
                Err(e) => {
                    // Neither committed nor aborted for sure: only the
                    // progress topic can say where we are.
                    tracing::warn!(error = %e, "transaction outcome unknown; restarting from the progress topic");
                    self.restart(producer, stats).await?;
                }
            }
        }
    }

    async fn restart(
        &self,
        producer: &mut Producer,
        stats: &mut RelayStats,
    ) -> Result<(), OutboxError> {
        let _ = producer.close(Duration::from_secs(5)).await;
        let (fresh, position) = self.start().await?;
        *producer = fresh;
        stats.position = position;
        stats.restarts += 1;
        Ok(())
    }

    /// Sleeps, or returns early on shutdown.
    async fn pause(&self, d: Duration) {
        tokio::select! {
            () = tokio::time::sleep(d) => {}
            () = self.shutdown.requested() => {}
        }
    }

    /// The next rows after `position` whose transactions ended, in one
    /// `REPEATABLE READ` snapshot.
    async fn read(
        &self,
        pg: &mut Option<Client>,
        position: OutboxPosition,
    ) -> Result<Vec<Row>, OutboxError> {
        if pg.as_ref().is_some_and(Client::is_closed) {
            *pg = None;
        }
        let client = match pg {
            Some(c) => c,
            None => pg.insert(connect(&self.pg_config, "").await?),
        };
        let tx = client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(PgError::from)?;
        let xmin: String = tx
            .query_one("SELECT pg_snapshot_xmin(pg_current_snapshot())::text", &[])
            .await
            .and_then(|r| r.try_get(0))
            .map_err(PgError::from)?;
        let limit = i64::try_from(self.cfg.max_rows_per_transaction).unwrap_or(i64::MAX);
        let rows = tx
            .query(
                &format!(
                    // The table's own columns in ORDER BY (qualified): an
                    // output column named `txid` (the text cast) would sort
                    // as text, "1000" before "772".
                    "SELECT o.id, o.txid::text AS txid_text, o.topic, o.key, o.value FROM {} AS o \
                     WHERE (o.txid, o.id) > ($1::text::xid8, $2) AND o.txid < $3::text::xid8 \
                     ORDER BY o.txid, o.id LIMIT $4",
                    self.outbox.table()
                ),
                &[&position.txid.to_string(), &position.id, &xmin, &limit],
            )
            .await
            .map_err(PgError::from)?;
        tx.commit().await.map_err(PgError::from)?;
        tracing::debug!(
            ?position,
            xmin = %xmin,
            rows = rows.len(),
            "read the outbox"
        );
        rows.into_iter()
            .map(|r| {
                let txid: String = r.try_get(1).map_err(PgError::from)?;
                Ok(Row {
                    id: r.try_get(0).map_err(PgError::from)?,
                    txid: txid.parse().map_err(|_| {
                        OutboxError::Progress(format!("unreadable xid8 {txid:?} in the outbox"))
                    })?,
                    topic: r.try_get(2).map_err(PgError::from)?,
                    key: r.try_get(3).map_err(PgError::from)?,
                    value: r.try_get(4).map_err(PgError::from)?,
                })
            })
            .collect()
    }

    /// One Kafka transaction: the rows, then the position, then commit.
    async fn publish(
        &self,
        producer: &Producer,
        rows: &[Row],
        last: OutboxPosition,
    ) -> Result<(), ProducerError> {
        producer.begin_transaction().await?;
        for row in rows {
            let id = row.id.to_string();
            let mut record =
                ProducerRecord::new(&row.topic).with_header(OUTBOX_ID_HEADER, Some(id.as_bytes()));
            if let Some(k) = &row.key {
                record = record.with_key(k);
            }
            if let Some(v) = &row.value {
                record = record.with_value(v);
            }
            // The delivery is awaited by the commit, which fails if any
            // record of the transaction failed.
            producer.send(record).await?;
        }
        let position = last.encode();
        producer
            .send(
                ProducerRecord::new(&self.cfg.progress_topic)
                    .with_partition(0)
                    .with_key(self.cfg.relay_id.as_bytes())
                    .with_value(position.as_bytes()),
            )
            .await?;
        producer.commit_transaction().await
    }

    /// Housekeeping after a commit: rows at or below the committed position
    /// are never read again. A failure here changes nothing but disk use.
    async fn delete_published(&self, pg: &mut Option<Client>, upto: OutboxPosition) {
        let Some(client) = pg.as_ref() else {
            return;
        };
        let r = client
            .execute(
                &format!(
                    "DELETE FROM {} WHERE (txid, id) <= ($1::text::xid8, $2)",
                    self.outbox.table()
                ),
                &[&upto.txid.to_string(), &upto.id],
            )
            .await;
        if let Err(e) = r {
            tracing::warn!(error = %e, "deleting published outbox rows failed (they stay; nothing is republished)");
        }
    }
}
