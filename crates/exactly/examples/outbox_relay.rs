//! The transactional outbox, relayed to Kafka exactly once.
//!
//! The application writes its business row and an outbox row in one
//! database transaction (no dual write); the relay publishes every committed
//! outbox row once, in insert order per key, keeping its position in a
//! compacted Kafka topic inside the same Kafka transactions. With
//! `--demo-orders N` this program first places N orders that way. Kill the
//! relay at any moment and start it again: nothing is skipped or repeated.
//! Ctrl-C stops it gracefully.
//!
//! ```text
//! cargo run -p exactly --features postgres --example outbox_relay -- \
//!     127.0.0.1:9092 "host=127.0.0.1 user=postgres dbname=shop" --demo-orders 100
//! ```

use exactly::postgres::tokio_postgres::{self, NoTls};
use exactly::postgres::{Outbox, OutboxRelay, RelayConfig};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (bootstrap, postgres, demo) = match args.as_slice() {
        [b, p] => (b, p, 0),
        [b, p, flag, n] if flag == "--demo-orders" => (b, p, n.parse()?),
        _ => {
            eprintln!("usage: outbox_relay <bootstrap> <postgres> [--demo-orders N]");
            std::process::exit(2);
        }
    };
    let outbox = Outbox::new("outbox")?;
    let (mut client, conn) = tokio_postgres::connect(postgres, NoTls).await?;
    tokio::spawn(conn);
    outbox.create(&client).await?;
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS placed_orders (id bigserial PRIMARY KEY, customer text NOT NULL)",
        )
        .await?;
    for i in 0..demo {
        // The business change and its message commit together, or neither.
        let tx = client.transaction().await?;
        let customer = format!("customer-{}", i % 10);
        let row = tx
            .query_one(
                "INSERT INTO placed_orders (customer) VALUES ($1) RETURNING id",
                &[&customer],
            )
            .await?;
        let id: i64 = row.get(0);
        let event = format!("{{\"order\":{id},\"customer\":\"{customer}\"}}");
        outbox
            .insert(
                &tx,
                "order-events",
                Some(customer.as_bytes()),
                Some(event.as_bytes()),
            )
            .await?;
        tx.commit().await?;
    }

    let mut cfg = RelayConfig::new(postgres, bootstrap, "outbox", "shop-outbox-relay");
    cfg.delete_published = true;
    let relay = OutboxRelay::new(cfg)?;
    let shutdown = relay.shutdown_handle();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        shutdown.shutdown();
    });
    let stats = relay
        .run(|s| println!("{} rows published, at {:?}", s.rows_published, s.position))
        .await?;
    println!(
        "stopped: {} rows in {} transactions",
        stats.rows_published, stats.transactions_committed
    );
    Ok(())
}
