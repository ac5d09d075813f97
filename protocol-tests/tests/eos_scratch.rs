//! Scratch: commit then kill -9 at once; are offsets stable after restart?

use std::time::{Duration, Instant};

use exactly::{Consumer, ConsumerGroupMetadata, OffsetCommit, Producer, ProducerRecord, TopicPartition};
use exactly_protocol_tests::{unique_topic, Broker, BrokerConfig, TransactionVersion};

#[test]
fn scratch_commit_then_kill9() {
    let tv = match std::env::var("EXACTLY_EOS_TV").as_deref() {
        Ok("1") => TransactionVersion::V1,
        _ => TransactionVersion::V2,
    };
    let rounds: usize = std::env::var("ROUNDS").ok().and_then(|s| s.parse().ok()).unwrap_or(5);
    let broker = Broker::start(BrokerConfig::with_transaction_version(tv)).expect("broker");
    let out = unique_topic("s-out");
    let input = unique_topic("s-in");
    broker.create_topic(&out, 3).unwrap();
    broker.create_topic(&input, 2).unwrap();
    let group = unique_topic("s-group");
    let txn_id = unique_topic("s-txn");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let bootstrap = broker.bootstrap();
    let producer = rt.block_on(async {
        let p = Producer::from_properties([
            ("bootstrap.servers", bootstrap.as_str()),
            ("transactional.id", txn_id.as_str()),
            ("max.block.ms", "120000"),
        ])
        .await
        .unwrap();
        p.init_transactions().await.unwrap();
        p
    });
    let mut consumer = rt.block_on(async {
        Consumer::from_properties([
            ("bootstrap.servers", bootstrap.as_str()),
            ("group.id", group.as_str()),
            ("isolation.level", "read_committed"),
            ("default.api.timeout.ms", "30000"),
        ])
        .await
        .unwrap()
    });
    let parts = vec![TopicPartition::new(&input, 0), TopicPartition::new(&input, 1)];
    consumer.assign(&parts).unwrap();
    for round in 0..rounds {
        let r = rt.block_on(async {
            producer.begin_transaction().await?;
            for i in 0..30 {
                let v = format!("{round}-{i}");
                producer
                    .send(ProducerRecord::new(&out).with_value(v.as_bytes()))
                    .await?;
            }
            let offs: Vec<OffsetCommit> = parts
                .iter()
                .map(|tp| OffsetCommit {
                    partition: tp.clone(),
                    offset: (round as i64 + 1) * 10,
                    leader_epoch: None,
                    metadata: None,
                })
                .collect();
            producer
                .send_offsets_to_transaction(offs, &ConsumerGroupMetadata::new(&group))
                .await?;
            producer.commit_transaction().await
        });
        broker.kill9(1).unwrap();
        println!("round {round}: commit {r:?}; killed");
        std::thread::sleep(Duration::from_millis(500));
        broker.restart(1).unwrap();
        let t = Instant::now();
        let c = rt.block_on(consumer.committed(&parts));
        println!("round {round}: committed after {:?}: {c:?}", t.elapsed());
        if c.is_err() {
            for args in [vec!["describe", "--transactional-id", txn_id.as_str()], vec!["list"]] {
                let run = broker.java().transactions_command(&args).unwrap();
                println!("{args:?}:\n{}\n{}", run.stdout.join("\n"), run.stderr_tail);
            }
            let run = broker.java().transactions_command(&["find-hanging", "--broker-id", "1"]).unwrap();
            println!("find-hanging:\n{}\n{}", run.stdout.join("\n"), run.stderr_tail);
            println!("data dir {}", broker.data_dir(1).display());
            panic!("unstable after restart in round {round}");
        }
    }
}
