//! Reads a topic from the start to its end offsets and reports the rate.
//!
//! ```text
//! cargo run --release -p exactly-consumer --example read_rate -- <bootstrap> <topic> [key=value ...]
//! ```
//!
//! Every partition is assigned (no group); the run ends when each position
//! reaches the end offset measured at the start (the last stable offset
//! under `read_committed`). Prints records, bytes of values, seconds and
//! records per second.

use std::time::{Duration, Instant};

use exactly_consumer::{Consumer, ConsumerError, TopicPartition};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), ConsumerError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(bootstrap), Some(topic)) = (args.first(), args.get(1)) else {
        eprintln!("usage: read_rate <bootstrap> <topic> [key=value ...]");
        std::process::exit(2);
    };
    let mut props = vec![
        ("bootstrap.servers".to_owned(), bootstrap.clone()),
        ("auto.offset.reset".to_owned(), "earliest".to_owned()),
    ];
    for kv in args.iter().skip(2) {
        if let Some((k, v)) = kv.split_once('=') {
            props.push((k.to_owned(), v.to_owned()));
        }
    }
    let mut consumer = Consumer::from_properties(props).await?;
    let view = consumer.client().metadata_for(&[topic]).await?;
    let Some(info) = view.topic(topic) else {
        eprintln!("no such topic: {topic}");
        std::process::exit(1);
    };
    let parts: Vec<TopicPartition> = info
        .partitions
        .iter()
        .map(|p| TopicPartition::new(topic.as_str(), p.partition))
        .collect();
    consumer.assign(&parts)?;
    let end = consumer.end_offsets(&parts).await?;
    let started = Instant::now();
    let (mut records, mut bytes) = (0u64, 0u64);
    while parts
        .iter()
        .any(|tp| consumer.position(tp).is_none_or(|p| p < end[tp]))
    {
        let rs = consumer
            .poll(Duration::from_millis(500))
            .await?
            .into_records();
        records += rs.len() as u64;
        bytes += rs
            .iter()
            .map(|r| r.value().map_or(0, |v| v.len() as u64))
            .sum::<u64>();
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{records} records, {bytes} value bytes in {secs:.3} s: {:.0} records/s",
        records as f64 / secs
    );
    consumer.close().await
}
