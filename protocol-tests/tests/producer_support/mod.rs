//! Helpers shared by the `producer_*` tests: runtime, producers, and the
//! oracles (the Java `VerifiableConsumer` and `DumpLogSegments`).

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use exactly_producer::{Producer, ProducerError};
use exactly_protocol_tests::{Broker, ConsumedRecord, DumpedBatch};

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A producer on `bootstrap` with `props` on top.
pub async fn producer(bootstrap: &str, props: &[(&str, &str)]) -> Producer {
    try_producer(bootstrap, props).await.unwrap()
}

pub async fn try_producer(
    bootstrap: &str,
    props: &[(&str, &str)],
) -> Result<Producer, ProducerError> {
    let mut all = vec![("bootstrap.servers", bootstrap)];
    all.extend_from_slice(props);
    Producer::from_properties(all).await
}

/// Every record of `topic` a `read_committed` Java consumer sees, reading
/// until `expected` arrived or `timeout` passed.
pub fn read_committed(
    broker: &Broker,
    topic: &str,
    expected: usize,
    timeout: Duration,
) -> Vec<ConsumedRecord> {
    broker
        .java()
        .verifiable_consumer(
            topic,
            &format!("{topic}-reader"),
            expected,
            &[("isolation.level", "read_committed")],
            timeout,
        )
        .unwrap()
}

/// The data batches (control batches left out) of one partition on node 1,
/// as `DumpLogSegments` prints them.
pub fn dumped_batches(broker: &Broker, topic: &str, partition: i32) -> Vec<DumpedBatch> {
    let files = broker.segment_files(1, topic, partition).unwrap();
    broker
        .java()
        .dump_log_segments(&files)
        .unwrap()
        .into_iter()
        .filter(|b| !b.is_control)
        .collect()
}

/// Checks that, per (producer id, epoch), the batches' sequences are
/// contiguous in offset order, starting at 0. Returns the number of
/// (producer id, epoch) runs seen.
pub fn assert_contiguous_sequences(batches: &[DumpedBatch], what: &str) -> usize {
    let mut runs: BTreeMap<(i64, i16), Vec<&DumpedBatch>> = BTreeMap::new();
    for b in batches {
        assert!(
            b.producer_id >= 0,
            "{what}: batch without producer id: {b:?}"
        );
        runs.entry((b.producer_id, b.producer_epoch))
            .or_default()
            .push(b);
    }
    for ((pid, epoch), bs) in &runs {
        let mut expect = 0i64;
        for b in bs {
            assert_eq!(
                i64::from(b.base_sequence),
                expect,
                "{what}: producer {pid} epoch {epoch}: gap or overlap at offset {} ({b:?})",
                b.base_offset
            );
            assert_eq!(
                i64::from(b.last_sequence) - i64::from(b.base_sequence) + 1,
                b.count,
                "{what}: {b:?}"
            );
            expect = i64::from(b.last_sequence) + 1;
        }
    }
    runs.len()
}

/// A net client for checks (OffsetFetch, DescribeTransactions).
pub async fn net_client(bootstrap: &str) -> exactly_net::Client {
    let cfg = exactly_net::NetConfig::from_properties([
        ("bootstrap.servers", bootstrap),
        ("allow.auto.create.topics", "false"),
    ])
    .unwrap();
    exactly_net::Client::connect(cfg).await.unwrap()
}

/// The group's committed offsets for `partitions` of `topic` (-1: none),
/// through OffsetFetch v7 to the group coordinator. With `require_stable`,
/// a partition with offsets pending in an open transaction reports
/// UNSTABLE_OFFSET_COMMIT (KIP-447) as `Err(code)`.
pub async fn committed_offsets(
    client: &exactly_net::Client,
    group: &str,
    topic: &str,
    partitions: &[i32],
    require_stable: bool,
) -> Vec<Result<i64, i16>> {
    use exactly_codec::messages::offset_fetch_request::OffsetFetchRequestTopic;
    use exactly_codec::messages::{GroupId, OffsetFetchRequest, TopicName};
    use exactly_net::CoordinatorType;
    let c = client
        .coordinator(CoordinatorType::Group, group)
        .await
        .unwrap();
    let conn = client.connection(c.broker_id).await.unwrap();
    let req = OffsetFetchRequest::default()
        .with_group_id(GroupId(group.to_owned().into()))
        .with_topics(Some(vec![OffsetFetchRequestTopic::default()
            .with_name(TopicName(topic.to_owned().into()))
            .with_partition_indexes(partitions.to_vec())]))
        .with_require_stable(require_stable);
    let resp = conn.send_at(&req, 7).await.unwrap();
    assert_eq!(resp.error_code, 0, "OffsetFetch: {resp:?}");
    partitions
        .iter()
        .map(|p| {
            let r = resp
                .topics
                .iter()
                .flat_map(|t| t.partitions.iter())
                .find(|x| x.partition_index == *p)
                .expect("partition in OffsetFetch response");
            if r.error_code == 0 {
                Ok(r.committed_offset)
            } else {
                Err(r.error_code)
            }
        })
        .collect()
}

/// The coordinator's view of a transactional id: (state, producer id, epoch).
pub async fn describe_transaction(
    client: &exactly_net::Client,
    transactional_id: &str,
) -> (String, i64, i16) {
    use exactly_codec::messages::{DescribeTransactionsRequest, TransactionalId};
    use exactly_net::CoordinatorType;
    let c = client
        .coordinator(CoordinatorType::Transaction, transactional_id)
        .await
        .unwrap();
    let conn = client.connection(c.broker_id).await.unwrap();
    let req = DescribeTransactionsRequest::default()
        .with_transactional_ids(vec![TransactionalId(transactional_id.to_owned().into())]);
    let resp = conn.send_at(&req, 0).await.unwrap();
    let s = &resp.transaction_states[0];
    assert_eq!(s.error_code, 0, "DescribeTransactions: {s:?}");
    (
        s.transaction_state.to_string(),
        s.producer_id.0,
        s.producer_epoch,
    )
}

#[allow(unused_imports)]
pub use exactly_protocol_tests::judge::assert_no_hanging;

/// [`committed_offsets`] with `require_stable`, polled until no partition is
/// UNSTABLE_OFFSET_COMMIT: EndTxn is answered once the decision is logged,
/// the markers that make the offsets stable follow.
pub async fn stable_offsets(
    client: &exactly_net::Client,
    group: &str,
    topic: &str,
    partitions: &[i32],
) -> Vec<Result<i64, i16>> {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let got = committed_offsets(client, group, topic, partitions, true).await;
        if !got.contains(&Err(88)) || std::time::Instant::now() > deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One record as our own decoder reads it back from the broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    pub offset: i64,
    pub timestamp: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    pub producer_id: i64,
    pub compression: exactly_codec::Compression,
}

/// Every record of one partition (read_uncommitted), fetched with Fetch v12
/// through exactly-net and decoded with exactly-codec.
pub async fn fetch_all(client: &exactly_net::Client, topic: &str, partition: i32) -> Vec<Fetched> {
    use exactly_codec::messages::fetch_request::{FetchPartition, FetchTopic};
    use exactly_codec::messages::{BrokerId, FetchRequest, TopicName};
    use exactly_codec::{Batches, RecordBatch};
    let route = client.leader(topic, partition).await.unwrap();
    let conn = client.connection(route.leader).await.unwrap();
    let mut out = Vec::new();
    let mut next = 0i64;
    loop {
        let req = FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_wait_ms(100)
            .with_min_bytes(1)
            .with_max_bytes(8 << 20)
            .with_topics(vec![FetchTopic::default()
                .with_topic(TopicName(topic.to_owned().into()))
                .with_partitions(vec![FetchPartition::default()
                    .with_partition(partition)
                    .with_fetch_offset(next)
                    .with_partition_max_bytes(8 << 20)])]);
        let resp = conn.send_at(&req, 12).await.unwrap();
        let p = &resp.responses[0].partitions[0];
        assert_eq!(p.error_code, 0, "fetch {topic}-{partition}");
        let before = next;
        if let Some(records) = p.records.clone() {
            for batch in Batches::new(records) {
                let batch: RecordBatch = batch.unwrap();
                let h = *batch.header();
                next = next.max(h.next_offset());
                if h.attributes.control {
                    continue;
                }
                for r in batch.records() {
                    let r = r.unwrap();
                    out.push(Fetched {
                        offset: r.offset(),
                        timestamp: r.timestamp(),
                        key: r.key().map(<[u8]>::to_vec),
                        value: r.value().map(<[u8]>::to_vec),
                        headers: r
                            .headers()
                            .map(|hd| {
                                let hd = hd.unwrap();
                                (
                                    hd.key_str().unwrap().to_owned(),
                                    hd.value().map(<[u8]>::to_vec),
                                )
                            })
                            .collect(),
                        producer_id: h.producer_id,
                        compression: h.attributes.compression,
                    });
                }
            }
        }
        if next >= p.high_watermark || next == before {
            return out;
        }
    }
}
