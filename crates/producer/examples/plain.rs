//! An idempotent producer: sends records and waits for every delivery.
//!
//! ```sh
//! cargo xtask kafka up          # a local test broker; prints bootstrap.servers
//! cargo run -p exactly-producer --example plain -- 127.0.0.1:9092 events 1000
//! ```

use std::time::Duration;

use exactly_producer::{Producer, ProducerError, ProducerRecord};

#[tokio::main]
async fn main() -> Result<(), ProducerError> {
    let mut args = std::env::args().skip(1);
    let bootstrap = args.next().unwrap_or_else(|| "127.0.0.1:9092".into());
    let topic = args.next().unwrap_or_else(|| "events".into());
    let count: u32 = args.next().and_then(|n| n.parse().ok()).unwrap_or(1000);

    // Idempotent by default: retries never duplicate or reorder a record.
    let producer = Producer::builder()
        .set("bootstrap.servers", &bootstrap)?
        .set("linger.ms", "5")?
        .set("compression.type", "lz4")?
        .build()
        .await?;

    let mut deliveries = Vec::with_capacity(count as usize);
    for i in 0..count {
        let key = format!("user-{}", i % 10);
        let value = format!("event {i}");
        // `send` only waits for buffer space; the returned future resolves
        // when the broker has the record.
        let delivery = producer
            .send(
                ProducerRecord::new(&topic)
                    .with_key(key.as_bytes())
                    .with_value(value.as_bytes())
                    .with_header("source", Some(b"example")),
            )
            .await?;
        deliveries.push(delivery);
    }
    let mut last = None;
    for d in deliveries {
        match d.await {
            Ok(meta) => last = Some(meta),
            Err(e) => {
                // The record may still have been written: never assume it lost.
                eprintln!("not delivered (maybe written: {}): {e}", e.maybe_written());
            }
        }
    }
    if let Some(m) = last {
        println!(
            "{count} records sent; the last one is at {topic}-{} offset {:?}",
            m.partition, m.offset
        );
    }
    producer.close(Duration::from_secs(10)).await
}
