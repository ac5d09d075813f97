//! The harness is real: our codec talks to the broker it started, the Java
//! reference client agrees with it, and its fault primitives act on a real JVM.

use std::collections::BTreeMap;
use std::time::Duration;

use exactly_codec::messages::ApiKey;
use exactly_protocol_tests::{
    process, unique_topic, Broker, BrokerConfig, ProbeClient, TransactionVersion,
};

fn shared(tv: TransactionVersion) -> &'static Broker {
    Broker::shared(tv).unwrap_or_else(|e| panic!("{e}"))
}

/// ApiVersions + Metadata + CreateTopics through exactly-codec, under both
/// transaction protocols: the finalized `transaction.version` is the one the
/// harness formatted the cluster with.
#[test]
fn codec_handshake_and_metadata_against_real_broker() {
    for tv in TransactionVersion::ALL {
        let broker = shared(tv);
        let mut client = ProbeClient::connect(&broker.address(1), Duration::from_secs(10))
            .expect("connect + ApiVersions");
        let versions = client.versions().clone();
        assert_eq!(versions.transaction_version(), tv.level(), "{tv:?}");
        let produce = versions
            .broker_range(ApiKey::Produce)
            .expect("Produce listed");
        assert!(
            produce.max >= 12,
            "Kafka 4.x serves Produce v12+, got {produce}"
        );
        let end_txn = versions
            .broker_range(ApiKey::EndTxn)
            .expect("EndTxn listed");
        assert!(
            end_txn.max >= 5,
            "Kafka 4.x serves EndTxn v5, got {end_txn}"
        );

        let topic = unique_topic("handshake");
        broker.create_topic(&topic, 3).expect("create topic");
        let md = client.metadata(Some(&[&topic])).expect("metadata");
        assert_eq!(md.brokers.len(), 1);
        assert_eq!(md.brokers[0].node_id.0, 1);
        assert_eq!(md.brokers[0].port as u16, port_of(&broker.address(1)));
        let t = &md.topics[0];
        assert_eq!(t.error_code, 0);
        assert_eq!(t.name.as_ref().map(|n| n.as_str()), Some(topic.as_str()));
        let mut parts: Vec<i32> = t.partitions.iter().map(|p| p.partition_index).collect();
        parts.sort();
        assert_eq!(parts, vec![0, 1, 2]);
        assert!(t.partitions.iter().all(|p| p.leader_id.0 == 1));
        assert!(!t.topic_id.is_nil(), "Kafka 4.x assigns topic ids");
    }
}

/// The Java reference producer writes 1,000 idempotent records to 3
/// partitions; the Java reference consumer reads each exactly once, in
/// per-partition order; DumpLogSegments shows contiguous sequences.
#[test]
fn java_verifiable_producer_and_consumer_agree() {
    let broker = shared(TransactionVersion::V2);
    let topic = unique_topic("verifiable");
    broker.create_topic(&topic, 3).expect("create topic");
    let java = broker.java();
    let n = 1000u64;
    let report = java
        .verifiable_producer(
            &topic,
            n,
            &[
                ("acks", "all"),
                ("enable.idempotence", "true"),
                ("retries", "2147483647"),
                ("linger.ms", "5"),
            ],
            Duration::from_secs(120),
        )
        .expect("VerifiableProducer");
    assert_eq!((report.sent, report.acked), (n, n), "producer counts");

    let records = java
        .verifiable_consumer(
            &topic,
            &unique_topic("group"),
            n as usize,
            &[("isolation.level", "read_committed")],
            Duration::from_secs(120),
        )
        .expect("VerifiableConsumer");
    assert_eq!(records.len(), n as usize, "consumer count");
    let mut values: Vec<u64> = records
        .iter()
        .map(|r| {
            r.value
                .as_deref()
                .unwrap_or("x")
                .parse()
                .expect("numeric value")
        })
        .collect();
    values.sort();
    assert_eq!(
        values,
        (0..n).collect::<Vec<_>>(),
        "each value exactly once"
    );
    let mut last: BTreeMap<i32, i64> = BTreeMap::new();
    for r in &records {
        let prev = last.insert(r.partition, r.offset);
        assert!(
            prev.is_none_or(|p| p < r.offset),
            "offsets increase per partition"
        );
    }
    // The producer's acknowledgements and the consumer's view agree.
    let mut acked: Vec<(i32, i64, String)> = report
        .acks
        .iter()
        .map(|a| (a.partition, a.offset, a.value.clone()))
        .collect();
    acked.sort();
    let mut seen: Vec<(i32, i64, String)> = records
        .iter()
        .map(|r| (r.partition, r.offset, r.value.clone().unwrap_or_default()))
        .collect();
    seen.sort();
    assert_eq!(acked, seen);

    let mut total = 0;
    for p in 0..3 {
        let files = broker.segment_files(1, &topic, p).expect("segments");
        let batches = java.dump_log_segments(&files).expect("DumpLogSegments");
        let mut next_seq = 0;
        for b in &batches {
            assert!(b.producer_id >= 0, "idempotent batches carry a producer id");
            assert_eq!(b.base_sequence, next_seq, "contiguous sequences: {b:?}");
            assert_eq!(b.last_sequence as i64 - b.base_sequence as i64 + 1, b.count);
            next_seq = b.last_sequence + 1;
            total += b.count;
        }
    }
    assert_eq!(total, n as i64);
}

/// Fault primitives act on the real JVM: SIGSTOP freezes it (requests time
/// out), SIGCONT resumes it, kill -9 drops it, restart brings it back on the
/// same address with its data, SIGTERM stops it cleanly, and dropping the
/// handle leaves no JVM behind.
#[test]
fn fault_primitives_on_a_private_broker() {
    let broker = Broker::start(BrokerConfig::default()).expect("start broker");
    let addr = broker.address(1);
    let topic = unique_topic("faults");
    broker.create_topic(&topic, 1).expect("create topic");
    let pid = broker.pid(1).expect("running");
    let marker = broker.jvm_marker();
    assert!(process::alive_with_arg(pid, &marker));

    broker.sigstop(1);
    let frozen = ProbeClient::connect(&addr, Duration::from_millis(1500));
    assert!(frozen.is_err(), "a frozen broker must not answer");
    broker.sigcont(1);
    ProbeClient::connect(&addr, Duration::from_secs(10)).expect("answers after SIGCONT");

    broker.kill9(1).expect("kill -9");
    assert!(!broker.is_running(1));
    assert!(!process::alive_with_arg(pid, &marker), "pid {pid} gone");
    assert!(ProbeClient::connect(&addr, Duration::from_secs(2)).is_err());

    broker.restart(1).expect("restart after kill -9");
    let mut c = ProbeClient::connect(&addr, Duration::from_secs(10)).expect("same address");
    let md = c.metadata(Some(&[&topic])).expect("metadata");
    assert_eq!(md.topics[0].error_code, 0, "the topic survived the crash");

    broker.sigterm(1).expect("SIGTERM");
    assert!(!broker.is_running(1));
    broker.restart(1).expect("restart after SIGTERM");
    let pid2 = broker.pid(1).expect("running again");
    assert_ne!(pid, pid2);
    drop(broker);
    assert!(
        !process::alive_with_arg(pid2, &marker),
        "no JVM survives the handle"
    );
}

/// A three-node KRaft cluster: every node serves; after the partition
/// leader is killed, metadata names a new leader among the survivors.
#[test]
fn three_node_cluster_moves_leadership() {
    let cluster = Broker::start(BrokerConfig::three_nodes()).expect("start 3 nodes");
    assert_eq!(cluster.node_ids(), vec![1, 2, 3]);
    let topic = unique_topic("leaders");
    cluster.create_topic(&topic, 1).expect("create topic");
    let leader = cluster.leader_of(&topic, 0).expect("leader");
    assert!((1..=3).contains(&leader));
    // The transaction coordinator is the leader of the id's partition of
    // __transaction_state (one partition in the harness). The topic is
    // created by the first lookup, which may answer "not available" first.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let coordinator = loop {
        match cluster.txn_coordinator("harness-coordinator") {
            Ok(node) => break node,
            Err(e) => assert!(std::time::Instant::now() < deadline, "{e}"),
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(
        Some(coordinator),
        cluster.leader_of("__transaction_state", 0).ok()
    );
    cluster.kill9(leader).expect("kill leader");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let new_leader = loop {
        if let Ok(l) = cluster.leader_of(&topic, 0) {
            if l >= 0 && l != leader {
                break l;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no new leader 60 s after killing node {leader}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_ne!(new_leader, leader);
    cluster.restart(leader).expect("restart old leader");
}

fn port_of(addr: &str) -> u16 {
    addr.rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port")
}

/// The harness's brokers run real transactions under both protocols: the
/// Java `TransactionalMessageCopier` copies with random aborts, and a
/// read_committed Java consumer sees every input value exactly once and no
/// aborted one; `TransactionsCommand find-hanging` reports nothing.
#[test]
fn java_transactional_copy_under_both_protocols() {
    for tv in TransactionVersion::ALL {
        let broker = shared(tv);
        let java = broker.java();
        let input = unique_topic("copy-in");
        let output = unique_topic("copy-out");
        broker.create_topic(&input, 1).expect("input topic");
        broker.create_topic(&output, 1).expect("output topic");
        let n = 600u64;
        let produced = java
            .verifiable_producer(
                &input,
                n,
                &[("acks", "all"), ("retries", "2147483647")],
                Duration::from_secs(120),
            )
            .expect("VerifiableProducer");
        assert_eq!(produced.acked, n);
        let status = java
            .transactional_message_copier(
                &exactly_protocol_tests::CopierOptions {
                    input_topic: &input,
                    input_partition: 0,
                    output_topic: &output,
                    max_messages: n,
                    transaction_size: 50,
                    transactional_id: &unique_topic("copier"),
                    group: &unique_topic("copier-group"),
                    random_aborts: true,
                },
                Duration::from_secs(180),
            )
            .expect("TransactionalMessageCopier");
        let last = status.last().expect("copier printed its progress");
        assert_eq!(last["remaining"], 0, "{tv:?}: copier finished: {last}");

        let records = java
            .verifiable_consumer(
                &output,
                &unique_topic("judge"),
                n as usize,
                &[("isolation.level", "read_committed")],
                Duration::from_secs(120),
            )
            .expect("VerifiableConsumer");
        let mut values: Vec<u64> = records
            .iter()
            .map(|r| r.value.as_deref().unwrap_or("x").parse().expect("numeric"))
            .collect();
        values.sort();
        assert_eq!(values, (0..n).collect::<Vec<_>>(), "{tv:?}: exactly once");

        let files = broker.segment_files(1, &output, 0).expect("segments");
        let batches = java.dump_log_segments(&files).expect("dump");
        let markers = batches.iter().filter(|b| b.is_control).count();
        assert!(
            markers >= (n / 50) as usize,
            "{tv:?}: one marker per transaction"
        );
        assert!(batches.iter().all(|b| b.is_transactional));

        let hanging = java
            .transactions_command(&["find-hanging", "--broker-id", "1"])
            .expect("TransactionsCommand");
        let rows: Vec<&String> = hanging
            .stdout
            .iter()
            .filter(|l| !l.trim().is_empty() && !l.starts_with("Topic"))
            .collect();
        assert!(rows.is_empty(), "{tv:?}: hanging transactions: {rows:?}");
    }
}
