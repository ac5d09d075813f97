//! Partitioner parity with the Java client on a real broker: for 10,000 keys
//! the Java producer's built-in partitioner and `exactly`'s choose the same
//! partition.

use std::time::Duration;

use exactly_producer::partition_for_key;
use exactly_protocol_tests::{unique_topic, Broker, TransactionVersion};

#[test]
fn keyed_partitioning_matches_the_java_client_on_10000_keys() {
    let broker = Broker::shared(TransactionVersion::V2).unwrap_or_else(|e| panic!("{e}"));
    let topic = unique_topic("partitioner");
    let partitions = 7;
    broker
        .create_topic(&topic, partitions)
        .expect("create topic");
    let n = 10_000u64;
    let report = broker
        .java()
        .verifiable_producer_with(
            &topic,
            n,
            &["--repeating-keys", "10000"],
            &[("acks", "1"), ("linger.ms", "20"), ("batch.size", "262144")],
            Duration::from_secs(180),
        )
        .expect("VerifiableProducer");
    assert_eq!(report.acks.len(), n as usize);
    let mut keys = std::collections::BTreeSet::new();
    let mut per_partition = [0u32; 7];
    for ack in &report.acks {
        let key = ack.key.as_deref().expect("keyed records");
        keys.insert(key.to_owned());
        assert_eq!(
            partition_for_key(key.as_bytes(), partitions as u32),
            ack.partition,
            "key {key:?}"
        );
        per_partition[ack.partition as usize] += 1;
    }
    assert_eq!(keys.len(), n as usize, "10,000 distinct keys");
    assert!(per_partition.iter().all(|&c| c > 1000), "{per_partition:?}");
}
