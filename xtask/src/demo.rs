//! `cargo xtask demo`: the main job on a local broker started for it.
//!
//! Today it shows what works end to end: a real Kafka 4.3.1 broker started
//! from Maven Central jars, our codec's ApiVersions/Metadata handshake with
//! it (including the finalized `transaction.version`), and topic creation.
//! The exactly-once copy itself needs the producer (issue "exactly-producer")
//! and the consumer, which have not landed; the demo says so instead of
//! pretending.

use std::time::Instant;

use anyhow::Result;
use exactly_codec::messages::ApiKey;
use exactly_protocol_tests::{Broker, BrokerConfig, TransactionVersion};

pub(crate) fn run(tv: TransactionVersion) -> Result<()> {
    let t = Instant::now();
    println!("starting a local Apache Kafka broker ({tv:?})...");
    let broker = Broker::start(BrokerConfig::with_transaction_version(tv))?;
    println!(
        "broker up in {:.1} s at {}",
        t.elapsed().as_secs_f64(),
        broker.bootstrap()
    );
    let mut client = broker.client()?;
    let v = client.versions();
    println!(
        "handshake (exactly-codec): transaction.version={}, Produce up to v{}, EndTxn up to v{}, InitProducerId up to v{}",
        v.transaction_version(),
        v.broker_range(ApiKey::Produce).map_or(-1, |r| r.max),
        v.broker_range(ApiKey::EndTxn).map_or(-1, |r| r.max),
        v.broker_range(ApiKey::InitProducerId).map_or(-1, |r| r.max),
    );
    broker.create_topic("exactly-demo-input", 3)?;
    broker.create_topic("exactly-demo-output", 3)?;
    let md = client.metadata(Some(&["exactly-demo-input", "exactly-demo-output"]))?;
    for t in &md.topics {
        println!(
            "topic {} ({} partitions, leader(s) {:?})",
            t.name.as_ref().map_or("?", |n| n.as_str()),
            t.partitions.len(),
            t.partitions
                .iter()
                .map(|p| p.leader_id.0)
                .collect::<Vec<_>>()
        );
    }
    println!(
        "\nexactly-once copy: NOT AVAILABLE YET. The transactional producer and the \
         read_committed consumer have not landed (see README status table); this demo \
         will copy exactly-demo-input to exactly-demo-output transactionally once they do."
    );
    drop(broker);
    println!("broker stopped; nothing left running");
    Ok(())
}
