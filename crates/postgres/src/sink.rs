//! [`PgSink`]: the [`exactly_eos::sink::Sink`] contract on PostgreSQL.
//!
//! The stored offsets live in a table (default `exactly_offsets`), one row
//! per (sink name, topic, partition):
//!
//! ```sql
//! CREATE TABLE exactly_offsets (
//!     sink        text    NOT NULL,
//!     topic       text    NOT NULL,
//!     partition   integer NOT NULL,
//!     next_offset bigint  NOT NULL,
//!     PRIMARY KEY (sink, topic, partition)
//! );
//! ```
//!
//! Each batch is one transaction (`READ COMMITTED`):
//!
//! 1. per partition, in the batch's sorted order, the compare-and-set:
//!    `UPDATE .. SET next_offset = $next WHERE .. AND next_offset =
//!    $stored`, or for a partition never stored `INSERT .. ON CONFLICT DO
//!    NOTHING`; one row changed, or the transaction rolls back as
//!    [`Applied::Fenced`]. A concurrent writer of the same partition waits
//!    on the row lock (or on the not-yet-committed primary key) and then
//!    finds the offset moved: it fails *here*, before it runs any of its
//!    handler's statements;
//! 2. the [`PgHandler`] writes the records' side effects;
//! 3. `COMMIT`. A commit whose answer is lost is a retriable error: the
//!    runner reads the stored offsets again on a new connection, and they
//!    say whether it happened (if the old backend still holds the
//!    transaction open, the next compare-and-set waits for it).
//!
//! The session sets `idle_in_transaction_session_timeout` (default 30 s), so
//! a frozen zombie does not hold a partition's row lock forever.

use std::future::Future;
use std::time::Duration;

use exactly_consumer::TopicPartition;
use exactly_eos::sink::{Applied, Sink, SinkBatch};
use tokio_postgres::{Client, Config, Statement, Transaction};

use crate::connect::{connect, idle_timeout_setting};
use crate::error::{table_name, PgError};

/// Writes the side effects of a batch's records inside the sink's
/// transaction (after the offsets' compare-and-set, before the commit).
///
/// It must not commit or roll back, and must not catch and hide errors
/// (least of all a unique violation: under the sink's contract a record is
/// never applied twice, so plain `INSERT`s are right, and a duplicate key
/// means a bug that must stop the run).
///
/// ```no_run
/// use exactly_eos::sink::SinkBatch;
/// use exactly_postgres::{PgError, PgHandler};
/// use tokio_postgres::Transaction;
///
/// /// One row per order; the record's value is the order id.
/// struct Orders;
///
/// impl PgHandler for Orders {
///     async fn apply(&mut self, tx: &Transaction<'_>, batch: &SinkBatch) -> Result<(), PgError> {
///         let insert = tx
///             .prepare("INSERT INTO orders (id, kafka_offset) VALUES ($1, $2)")
///             .await?;
///         for r in batch.records() {
///             let id = std::str::from_utf8(r.value().map(|v| &v[..]).unwrap_or_default())
///                 .map_err(PgError::handler)?;
///             tx.execute(&insert, &[&id, &r.offset()]).await?;
///         }
///         Ok(())
///     }
/// }
/// ```
pub trait PgHandler: Send {
    /// Applies `batch`'s records through `tx`.
    fn apply(
        &mut self,
        tx: &Transaction<'_>,
        batch: &SinkBatch,
    ) -> impl Future<Output = Result<(), PgError>> + Send;
}

/// An exactly-once PostgreSQL sink: see the module docs. Run it with
/// [`exactly_eos::sink::SinkRunner`].
///
/// ```no_run
/// # use exactly_postgres::{PgHandler, PgError};
/// # struct Orders;
/// # impl PgHandler for Orders {
/// #     async fn apply(&mut self, _: &tokio_postgres::Transaction<'_>, _: &exactly_eos::sink::SinkBatch) -> Result<(), PgError> { Ok(()) }
/// # }
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use exactly_eos::sink::SinkRunner;
/// use exactly_postgres::PgSink;
///
/// let mut sink = PgSink::new("host=127.0.0.1 user=app dbname=shop", "orders-sink", Orders)?;
/// sink.create_offsets_table().await?;
/// let runner = SinkRunner::from_properties(
///     [("bootstrap.servers", "127.0.0.1:9092"), ("group.id", "orders-sink")],
///     &["orders"],
///     sink,
/// )
/// .await?;
/// runner.run(|_| {}).await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct PgSink<H> {
    config: Config,
    name: String,
    table: String,
    idle_timeout: Duration,
    conn: Option<Conn>,
    handler: H,
}

/// A connection with the sink's statements prepared on it.
#[derive(Debug)]
struct Conn {
    client: Client,
    select: Statement,
    update: Statement,
    insert: Statement,
}

impl<H: PgHandler> PgSink<H> {
    /// A sink named `name` (its rows in the offsets table; use the consumer
    /// group's id) on the database `config` (a libpq-style connection string
    /// such as `host=.. port=.. user=.. dbname=..`, or a `postgresql://`
    /// URL). Connects on first use.
    pub fn new(config: &str, name: impl Into<String>, handler: H) -> Result<Self, PgError> {
        Ok(Self {
            config: config.parse()?,
            name: name.into(),
            table: "exactly_offsets".into(),
            idle_timeout: Duration::from_secs(30),
            conn: None,
            handler,
        })
    }

    /// Keeps the offsets in `table` (`name` or `schema.name`) instead of
    /// `exactly_offsets`.
    pub fn with_offsets_table(mut self, table: &str) -> Result<Self, PgError> {
        self.table = table_name(table)?;
        self.conn = None;
        Ok(self)
    }

    /// The session's `idle_in_transaction_session_timeout` (default 30 s).
    pub fn with_idle_in_transaction_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self.conn = None;
        self
    }

    /// The handler.
    pub fn handler(&self) -> &H {
        &self.handler
    }

    /// The handler, mutably.
    pub fn handler_mut(&mut self) -> &mut H {
        &mut self.handler
    }

    /// Creates the offsets table unless it exists. Do it once, before the
    /// sinks start: concurrent `CREATE TABLE IF NOT EXISTS` of one table can
    /// fail in PostgreSQL's catalog.
    pub async fn create_offsets_table(&mut self) -> Result<(), PgError> {
        let ddl = offsets_table_ddl(&self.table)?;
        let client = connect(&self.config, "").await?;
        client.batch_execute(&ddl).await?;
        Ok(())
    }

    /// Drops the connection after an error a new one may fix.
    fn after<T>(&mut self, r: Result<T, PgError>) -> Result<T, PgError> {
        if r.as_ref().is_err_and(PgError::is_retriable) {
            self.conn = None;
        }
        r
    }
}

impl<H: PgHandler> Sink for PgSink<H> {
    type Error = PgError;

    async fn stored_offsets(
        &mut self,
        partitions: &[TopicPartition],
    ) -> Result<Vec<(TopicPartition, Option<i64>)>, PgError> {
        let r = async {
            let conn =
                ensure_conn(&mut self.conn, &self.config, &self.table, self.idle_timeout).await?;
            let name = &self.name;
            let mut topics: Vec<&str> = partitions.iter().map(|tp| tp.topic.as_str()).collect();
            topics.sort_unstable();
            topics.dedup();
            let rows = conn.client.query(&conn.select, &[&name, &topics]).await?;
            let mut found = Vec::with_capacity(rows.len());
            for row in rows {
                let topic: String = row.try_get(0)?;
                let partition: i32 = row.try_get(1)?;
                let next: i64 = row.try_get(2)?;
                found.push((TopicPartition::new(topic, partition), next));
            }
            Ok(partitions
                .iter()
                .map(|tp| {
                    let stored = found.iter().find(|(f, _)| f == tp).map(|(_, o)| *o);
                    (tp.clone(), stored)
                })
                .collect())
        }
        .await;
        self.after(r)
    }

    async fn apply(&mut self, batch: &SinkBatch) -> Result<Applied, PgError> {
        let r = async {
            let conn =
                ensure_conn(&mut self.conn, &self.config, &self.table, self.idle_timeout).await?;
            apply_batch(conn, &self.name, &mut self.handler, batch).await
        }
        .await;
        self.after(r)
    }
}

/// The DDL of an offsets table named `table` (`name` or `schema.name`).
pub fn offsets_table_ddl(table: &str) -> Result<String, PgError> {
    Ok(format!(
        "CREATE TABLE IF NOT EXISTS {} (\
           sink text NOT NULL, topic text NOT NULL, partition integer NOT NULL, \
           next_offset bigint NOT NULL CHECK (next_offset >= 0), \
           PRIMARY KEY (sink, topic, partition))",
        table_name(table)?
    ))
}

/// The connection in `slot`, (re)connected and with the statements
/// prepared if it is missing or closed.
async fn ensure_conn<'a>(
    slot: &'a mut Option<Conn>,
    config: &Config,
    t: &str,
    idle_timeout: Duration,
) -> Result<&'a mut Conn, PgError> {
    if slot.as_ref().is_some_and(|c| c.client.is_closed()) {
        *slot = None;
    }
    if let Some(conn) = slot {
        return Ok(conn);
    }
    let client = connect(config, &idle_timeout_setting(idle_timeout)).await?;
    let select = client
        .prepare(&format!(
            "SELECT topic, partition, next_offset FROM {t} \
             WHERE sink = $1 AND topic = ANY($2)"
        ))
        .await?;
    let update = client
        .prepare(&format!(
            "UPDATE {t} SET next_offset = $4 \
             WHERE sink = $1 AND topic = $2 AND partition = $3 AND next_offset = $5"
        ))
        .await?;
    let insert = client
        .prepare(&format!(
            "INSERT INTO {t} (sink, topic, partition, next_offset) \
             VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING"
        ))
        .await?;
    Ok(slot.insert(Conn {
        client,
        select,
        update,
        insert,
    }))
}

async fn apply_batch<H: PgHandler>(
    conn: &mut Conn,
    name: &str,
    handler: &mut H,
    batch: &SinkBatch,
) -> Result<Applied, PgError> {
    let tx = conn.client.transaction().await?;
    for pb in batch.partitions() {
        let tp = pb.partition();
        let next = pb.next_offset();
        let changed = match pb.stored() {
            Some(stored) => {
                tx.execute(
                    &conn.update,
                    &[&name, &tp.topic, &tp.partition, &next, &stored],
                )
                .await?
            }
            None => {
                tx.execute(&conn.insert, &[&name, &tp.topic, &tp.partition, &next])
                    .await?
            }
        };
        if changed != 1 {
            tx.rollback().await?;
            return Ok(Applied::Fenced(vec![tp.clone()]));
        }
    }
    handler.apply(&tx, batch).await?;
    tx.commit().await?;
    Ok(Applied::Committed)
}
