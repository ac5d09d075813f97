//! Reads a topic and prints its records.
//!
//! ```text
//! cargo run -p exactly-consumer --example consume -- <bootstrap> <topic> [group] [key=value ...]
//! ```
//!
//! With a group, the consumer joins it (subscribe) and commits after each
//! poll; without one it reads every partition from the start (assign).
//! Extra `key=value` arguments are consumer properties (for example
//! `isolation.level=read_uncommitted`). Stops after 10 s without records.

use std::time::{Duration, Instant};

use exactly_consumer::{Consumer, ConsumerError, Polled, TopicPartition};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), ConsumerError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(bootstrap), Some(topic)) = (args.first(), args.get(1)) else {
        eprintln!("usage: consume <bootstrap> <topic> [group] [key=value ...]");
        std::process::exit(2);
    };
    let group = args.get(2).filter(|g| !g.contains('='));
    let mut props = vec![
        ("bootstrap.servers".to_owned(), bootstrap.clone()),
        ("auto.offset.reset".to_owned(), "earliest".to_owned()),
    ];
    if let Some(g) = group {
        props.push(("group.id".to_owned(), g.clone()));
    }
    for kv in args.iter().skip(2).filter(|a| a.contains('=')) {
        if let Some((k, v)) = kv.split_once('=') {
            props.push((k.to_owned(), v.to_owned()));
        }
    }
    let mut consumer = Consumer::from_properties(props).await?;
    if group.is_some() {
        consumer.subscribe(&[topic])?;
    } else {
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
    }
    let mut last = Instant::now();
    let mut total = 0usize;
    while last.elapsed() < Duration::from_secs(10) {
        match consumer.poll(Duration::from_millis(500)).await? {
            Polled::Records(records) if records.is_empty() => {}
            Polled::Records(records) => {
                last = Instant::now();
                for r in &records {
                    total += 1;
                    println!(
                        "{}-{}@{} key={:?} value={:?}",
                        r.topic(),
                        r.partition(),
                        r.offset(),
                        r.key().map(|k| String::from_utf8_lossy(k).into_owned()),
                        r.value().map(|v| String::from_utf8_lossy(v).into_owned()),
                    );
                }
                if group.is_some() {
                    consumer.commit().await?;
                }
            }
            Polled::Rebalance(e) => {
                eprintln!("rebalance: {e:?}");
                if let exactly_consumer::Rebalance::Revoked(_) = e {
                    consumer.commit().await?;
                }
            }
        }
    }
    eprintln!("{total} records; {:?}", consumer.metrics());
    consumer.close().await
}
