//! Orders from Kafka into PostgreSQL, exactly once.
//!
//! Each record of the `orders` topic is an order, `order_id,customer,cents`
//! in its value. The sink inserts one row per order and moves the consumed
//! offsets in the same database transaction (`exactly_offsets`), with a
//! compare-and-set that fences any other writer of a partition: kill this
//! program at any moment, start it again (or start several in the same
//! group) and every order is in the table once. Ctrl-C stops it gracefully.
//!
//! ```text
//! cargo run -p exactly --features postgres --example orders_into_postgres -- \
//!     127.0.0.1:9092 orders "host=127.0.0.1 user=postgres dbname=shop"
//! ```

use exactly::eos::sink::{SinkBatch, SinkRunner};
use exactly::postgres::tokio_postgres::{self, NoTls, Transaction};
use exactly::postgres::{PgError, PgHandler, PgSink};

/// One row per order. Plain `INSERT`s: a record is never applied twice, so
/// a duplicate key would be a bug worth stopping for, not something to hide
/// with `ON CONFLICT DO NOTHING`.
struct Orders;

impl PgHandler for Orders {
    async fn apply(&mut self, tx: &Transaction<'_>, batch: &SinkBatch) -> Result<(), PgError> {
        let insert = tx
            .prepare(
                "INSERT INTO orders (order_id, customer, cents, kafka_partition, kafka_offset) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .await?;
        for r in batch.records() {
            let text = r
                .value()
                .and_then(|v| std::str::from_utf8(v).ok())
                .unwrap_or_default();
            let mut fields = text.split(',');
            let (Some(id), Some(customer), Some(cents), None) =
                (fields.next(), fields.next(), fields.next(), fields.next())
            else {
                // A record the application cannot read stops the sink (it
                // would fail the same way after every restart).
                return Err(PgError::handler(format!(
                    "not an order at {}-{}@{}: {text:?}",
                    r.topic(),
                    r.partition(),
                    r.offset()
                )));
            };
            let cents: i64 = cents.trim().parse().map_err(PgError::handler)?;
            tx.execute(
                &insert,
                &[&id, &customer, &cents, &r.partition(), &r.offset()],
            )
            .await?;
        }
        Ok(())
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [bootstrap, topic, postgres] = args.as_slice() else {
        eprintln!("usage: orders_into_postgres <bootstrap> <topic> <postgres connection string>");
        std::process::exit(2);
    };
    // The application's table (the sink's own offsets table is created by
    // `create_offsets_table`).
    let (client, conn) = tokio_postgres::connect(postgres, NoTls).await?;
    tokio::spawn(conn);
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS orders (order_id text PRIMARY KEY, customer text NOT NULL, \
             cents bigint NOT NULL, kafka_partition integer NOT NULL, kafka_offset bigint NOT NULL)",
        )
        .await?;

    let group = "orders-into-postgres";
    let mut sink = PgSink::new(postgres, group, Orders)?;
    sink.create_offsets_table().await?;
    let runner = SinkRunner::from_properties(
        [
            ("bootstrap.servers", bootstrap.as_str()),
            ("group.id", group),
        ],
        &[topic.as_str()],
        sink,
    )
    .await?;
    let shutdown = runner.shutdown_handle();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        shutdown.shutdown();
    });
    let stats = runner
        .run(|s| {
            if s.batches_committed % 100 == 1 {
                println!("{} orders applied", s.records_applied);
            }
        })
        .await?;
    println!(
        "stopped: {} orders in {} transactions ({} fenced, {} retried)",
        stats.records_applied, stats.batches_committed, stats.batches_fenced, stats.retries
    );
    Ok(())
}
