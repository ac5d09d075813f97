//! A transactional producer: batches of records that become visible to
//! `read_committed` consumers all together, or not at all.
//!
//! ```sh
//! cargo xtask kafka up
//! cargo run -p exactly-producer --example transactional -- 127.0.0.1:9092 orders 10
//! ```

use std::time::Duration;

use exactly_producer::{Producer, ProducerError, ProducerRecord};

#[tokio::main]
async fn main() -> Result<(), ProducerError> {
    let mut args = std::env::args().skip(1);
    let bootstrap = args.next().unwrap_or_else(|| "127.0.0.1:9092".into());
    let topic = args.next().unwrap_or_else(|| "orders".into());
    let transactions: u32 = args.next().and_then(|n| n.parse().ok()).unwrap_or(10);

    let producer = Producer::from_properties([
        ("bootstrap.servers", bootstrap.as_str()),
        // One id per logical writer: a restarted writer with the same id
        // fences its previous incarnation.
        ("transactional.id", "exactly-example-writer"),
        ("transaction.timeout.ms", "60000"),
    ])
    .await?;
    producer.init_transactions().await?;

    for t in 0..transactions {
        producer.begin_transaction().await?;
        for i in 0..100 {
            let value = format!("transaction {t} record {i}");
            producer
                .send(ProducerRecord::new(&topic).with_value(value.as_bytes()))
                .await?;
        }
        // Every third transaction is abandoned: none of its records is ever
        // visible to a read_committed consumer.
        let outcome = if t % 3 == 2 {
            producer.abort_transaction().await.map(|()| "aborted")
        } else {
            producer.commit_transaction().await.map(|()| "committed")
        };
        match outcome {
            Ok(what) => println!("transaction {t}: {what}"),
            // A failed send or a coordinator error: abort and go on.
            Err(e) if e.is_abortable() => {
                eprintln!("transaction {t} must be aborted: {e}");
                producer.abort_transaction().await?;
            }
            // Fenced by a newer writer with the same id, or worse: stop.
            Err(e) => return Err(e),
        }
    }
    producer.close(Duration::from_secs(10)).await
}
