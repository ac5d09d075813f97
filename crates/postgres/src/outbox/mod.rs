//! The transactional outbox, relayed to Kafka exactly once: the standard
//! answer to dual writes. An application inserts, in the same database
//! transaction as its business change, a row describing the message
//! ([`Outbox::insert`]); the [`OutboxRelay`] publishes each committed row
//! to Kafka once, in insert order per key, and never a row of a rolled-back
//! transaction.
//!
//! # Trap 1: the relay's progress must commit with what it published
//!
//! A relay that publishes rows and then records "done up to row N" in the
//! database has two commits: a crash between them republishes the rows (or,
//! the other way round, skips them). This relay keeps its position **in
//! Kafka**: every Kafka transaction carries the published rows *and* a
//! record of the new position (key = the relay's id) in a compacted topic,
//! one partition (`exactly-outbox-progress` by default). Both become visible
//! together or not at all (KIP-98). At start the relay first calls
//! `init_transactions` with its fixed `transactional.id` (the relay's id),
//! which fences any older instance and aborts its open transaction, and
//! only then reads the progress partition `read_committed` up to its last
//! stable offset: the last committed position is exactly where the
//! published rows end. Deleting published rows (optional) happens after the
//! Kafka commit and is only housekeeping: rows at or below the committed
//! position are never read again.
//!
//! # Trap 2: ids are assigned at insert, rows appear at commit
//!
//! `bigserial` ids (and `now()`) are taken when a row is inserted, but the
//! row becomes visible when its transaction commits. A relay that remembers
//! "the highest id published" skips a row whose transaction took id 41,
//! then committed after the one that took id 42 was already published. So
//! the outbox table stores, for each row, the id of the transaction that
//! inserted it (`txid xid8 DEFAULT pg_current_xact_id()`, the 64-bit
//! top-level transaction id), and the relay reads, in one `REPEATABLE READ`
//! snapshot:
//!
//! ```sql
//! SELECT pg_snapshot_xmin(pg_current_snapshot());   -- X
//! SELECT .. FROM outbox
//!  WHERE (txid, id) > ($position_txid, $position_id) AND txid < X
//!  ORDER BY txid, id LIMIT $n;
//! ```
//!
//! Every transaction with an id below the snapshot's `xmin` has ended (it
//! committed, and is visible in this snapshot, or it aborted), and a
//! transaction that ended can insert nothing more: the set of rows with
//! `txid < X` is final. The relay publishes rows in `(txid, id)` order, and
//! its position is the last `(txid, id)` published; every row at or below
//! it is final and published, every row above it is not. No row can slip in
//! behind the position, whatever order writers commit in.
//!
//! Order: rows of one transaction go out in insert (id) order; rows of
//! transaction A before those of transaction B whenever A was given its
//! transaction id first, in particular whenever A committed before B wrote
//! anything. So per key, a writer that inserts a key's rows in successive
//! transactions (or in one) sees them published in insert order, each to
//! the partition its key hashes to (the Java client's murmur2). Two
//! *concurrent* transactions writing the same key have no order to keep;
//! lock the key's parent row if one matters.
//!
//! Costs and limits: a transaction left open anywhere on the server holds
//! `xmin` back and so delays the relay (never its correctness); keep writer
//! transactions short. Never set `txid` by hand. Read the outbox on the
//! primary (a standby's snapshots differ).
//!
//! Each published record carries the row's id in the header
//! `exactly.outbox.id` (decimal), for consumers that want to check or
//! deduplicate.

mod progress;
mod relay;

use tokio_postgres::GenericClient;

use crate::error::{table_name, PgError};

pub use progress::OutboxPosition;
pub use relay::{OutboxError, OutboxRelay, RelayConfig, RelayStats};

/// The header naming the outbox row of a published record.
pub const OUTBOX_ID_HEADER: &str = "exactly.outbox.id";

/// An outbox table: its DDL and the writer's insert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outbox {
    table: String,
}

impl Outbox {
    /// The outbox in `table` (`name` or `schema.name`).
    pub fn new(table: &str) -> Result<Self, PgError> {
        Ok(Self {
            table: table_name(table)?,
        })
    }

    /// The table's name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The table's DDL (and the index the relay reads through).
    pub fn ddl(&self) -> String {
        let t = &self.table;
        let index = t.rsplit('.').next().unwrap_or(t);
        format!(
            "CREATE TABLE IF NOT EXISTS {t} (\
               id bigserial PRIMARY KEY, \
               txid xid8 NOT NULL DEFAULT pg_current_xact_id(), \
               topic text NOT NULL, \
               key bytea, \
               value bytea, \
               created_at timestamptz NOT NULL DEFAULT now()); \
             CREATE INDEX IF NOT EXISTS {index}_relay_order ON {t} (txid, id)"
        )
    }

    /// Creates the table and its index unless they exist.
    pub async fn create<C: GenericClient>(&self, client: &C) -> Result<(), PgError> {
        client.batch_execute(&self.ddl()).await?;
        Ok(())
    }

    /// Inserts a message for `topic`; call it with the transaction of the
    /// business change it describes. Returns the row's id.
    pub async fn insert<C: GenericClient>(
        &self,
        client: &C,
        topic: &str,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
    ) -> Result<i64, PgError> {
        let row = client
            .query_one(
                &format!(
                    "INSERT INTO {} (topic, key, value) VALUES ($1, $2, $3) RETURNING id",
                    self.table
                ),
                &[&topic, &key, &value],
            )
            .await?;
        Ok(row.try_get(0)?)
    }
}
