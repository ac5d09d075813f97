//! A user's first program with `exactly`, built outside the workspace by
//! `cargo xtask fresh-crate` (xtask/src/publish.rs writes its Cargo.toml:
//! `exactly` by path, default features off, nothing else of the workspace).
//!
//! Writes three transactions of 100 records (commit, abort, commit) to a new
//! topic, then reads the topic back `read_committed` and exits non-zero
//! unless exactly the 200 committed values are there, each once.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use exactly::{Consumer, Polled, Producer, ProducerRecord, TopicPartition};

const PER_TXN: u32 = 100;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let bootstrap = args.next().ok_or("usage: fresh-user <bootstrap> <topic>")?;
    let topic = args.next().ok_or("usage: fresh-user <bootstrap> <topic>")?;

    let producer = Producer::from_properties([
        ("bootstrap.servers", bootstrap.as_str()),
        ("transactional.id", "fresh-user-writer"),
        ("linger.ms", "5"),
    ])
    .await?;
    producer.init_transactions().await?;
    for (t, commit) in [(0u32, true), (1, false), (2, true)] {
        producer.begin_transaction().await?;
        for i in 0..PER_TXN {
            let value = (t * PER_TXN + i).to_string();
            producer
                .send(ProducerRecord::new(&topic).with_value(value.as_bytes()))
                .await?;
        }
        if commit {
            producer.commit_transaction().await?;
        } else {
            producer.abort_transaction().await?;
        }
    }
    producer.close(Duration::from_secs(10)).await?;

    let mut consumer = Consumer::from_properties([
        ("bootstrap.servers", bootstrap.as_str()),
        ("isolation.level", "read_committed"),
        ("auto.offset.reset", "earliest"),
    ])
    .await?;
    consumer.assign(&[TopicPartition::new(topic.as_str(), 0)])?;
    let expected: BTreeSet<u32> = (0..PER_TXN).chain(2 * PER_TXN..3 * PER_TXN).collect();
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen.len() < expected.len() && Instant::now() < deadline {
        if let Polled::Records(records) = consumer.poll(Duration::from_millis(500)).await? {
            for r in &records {
                let v = r.value().ok_or("a record without a value")?;
                seen.push(std::str::from_utf8(v)?.parse::<u32>()?);
            }
        }
    }
    let distinct: BTreeSet<u32> = seen.iter().copied().collect();
    if distinct != expected || seen.len() != expected.len() {
        return Err(format!(
            "read {} records ({} distinct); expected exactly the {} committed values",
            seen.len(),
            distinct.len(),
            expected.len()
        )
        .into());
    }
    println!(
        "fresh-user: {} committed records read back exactly once, none of the aborted ones",
        seen.len()
    );
    Ok(())
}
