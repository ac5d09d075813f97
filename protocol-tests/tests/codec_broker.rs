//! Our encoded batches against the real broker and the reference client: for
//! every codec, idempotent batches built by `exactly-codec` (headers, null
//! keys and values) are accepted by the broker, stored byte for byte (only
//! the broker-owned base offset and leader epoch differ), judged valid by
//! `DumpLogSegments`, and read back exactly by the Java `VerifiableConsumer`.

use std::time::Duration;

use bytes::Bytes;
use exactly_codec::messages::fetch_request::{FetchPartition, FetchTopic};
use exactly_codec::messages::produce_request::{PartitionProduceData, TopicProduceData};
use exactly_codec::messages::{
    ApiKey, BrokerId, FetchRequest, InitProducerIdRequest, ProduceRequest, TopicName,
};
use exactly_codec::protocol::StrBytes;
use exactly_codec::record::RecordHeader;
use exactly_codec::{BatchBuilder, Batches, Compression, ProducerStamp};
use exactly_protocol_tests::{unique_topic, Broker, TransactionVersion};

fn key(i: usize) -> Option<String> {
    (i % 7 != 3).then(|| format!("key-{i}"))
}

fn value(i: usize) -> Option<String> {
    (i % 11 != 5).then(|| format!("value-{i}-") + &"xyz".repeat(i % 20))
}

fn batch(range: std::ops::Range<usize>, codec: Compression, stamp: ProducerStamp) -> Bytes {
    let mut b = BatchBuilder::new(codec);
    for i in range {
        let h = format!("h{i}");
        let headers = [
            RecordHeader {
                key: "n",
                value: Some(h.as_bytes()),
            },
            RecordHeader {
                key: "null",
                value: None,
            },
        ];
        let hs: &[RecordHeader<'_>] = if i % 2 == 0 { &headers } else { &[] };
        b.append(
            1_700_000_000_000 + i as i64,
            key(i).as_deref().map(str::as_bytes),
            value(i).as_deref().map(str::as_bytes),
            hs,
        )
        .expect("append");
    }
    b.close().expect("close").stamp(stamp)
}

#[test]
fn our_batches_are_accepted_stored_and_read_back_by_the_java_consumer() {
    let broker = Broker::shared(TransactionVersion::V2).unwrap_or_else(|e| panic!("{e}"));
    let mut client = broker.client().expect("client");
    let produce_version = client
        .versions()
        .pick_client(ApiKey::Produce)
        .expect("produce version");
    let fetch_version = client.versions().pick_client(ApiKey::Fetch).expect("fetch");
    // a fresh broker may still be loading its coordinators: retry briefly
    let mut init = None;
    for _ in 0..60 {
        let resp = client
            .call(
                &InitProducerIdRequest::default()
                    .with_transactional_id(None)
                    .with_transaction_timeout_ms(60_000),
            )
            .expect("InitProducerId");
        let retriable = exactly_codec::ErrorCode::from_code(resp.error_code)
            .is_some_and(exactly_codec::ErrorCode::is_retriable);
        init = Some(resp);
        if !retriable {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let init = init.expect("InitProducerId answered");
    assert_eq!(init.error_code, 0);

    for codec in Compression::ALL {
        let topic = unique_topic(&format!("codec-{codec}"));
        broker.create_topic(&topic, 1).expect("create topic");
        let mut sent = Vec::new();
        let mut sequence = 0;
        for range in [0..50, 50..80] {
            let stamp = ProducerStamp {
                producer_id: init.producer_id.0,
                producer_epoch: init.producer_epoch,
                base_sequence: sequence,
                transactional: false,
            };
            sequence += range.len() as i32;
            let records = batch(range.clone(), codec, stamp);
            sent.push(records.clone());
            let req = ProduceRequest::default()
                .with_acks(-1)
                .with_timeout_ms(30_000)
                .with_topic_data(vec![TopicProduceData::default()
                    .with_name(TopicName(StrBytes::from_string(topic.clone())))
                    .with_partition_data(vec![PartitionProduceData::default()
                        .with_index(0)
                        .with_records(Some(records))])]);
            // The same bytes may be sent again: the broker deduplicates by
            // sequence. A new topic's leader can still be settling on a
            // loaded machine (NOT_LEADER_OR_FOLLOWER right after creation).
            let mut attempt = 0;
            let p = loop {
                let resp = client.call_at(&req, produce_version).expect("produce");
                let p = resp.responses[0].partition_responses[0].clone();
                let error = exactly_codec::ErrorCode::from_code(p.error_code);
                match error {
                    Some(e) if e.is_retriable() && attempt < 60 => {
                        attempt += 1;
                        std::thread::sleep(Duration::from_millis(500));
                    }
                    None => break p,
                    Some(e) => panic!("{codec}: produce error {e}"),
                }
            };
            assert_eq!(p.base_offset, range.start as i64, "{codec}");
        }

        // stored byte for byte
        let fetch = FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_wait_ms(100)
            .with_max_bytes(1 << 20)
            .with_session_epoch(-1)
            .with_topics(vec![FetchTopic::default()
                .with_topic(TopicName(StrBytes::from_string(topic.clone())))
                .with_partitions(vec![FetchPartition::default()
                    .with_partition(0)
                    .with_partition_max_bytes(1 << 20)])]);
        let resp = client.call_at(&fetch, fetch_version).expect("fetch");
        let part = &resp.responses[0].partitions[0];
        assert_eq!(part.error_code, 0);
        let got: Vec<_> = Batches::new(part.records.clone().expect("records"))
            .collect::<Result<_, _>>()
            .expect("decode what the broker returned");
        assert_eq!(got.len(), 2, "{codec}");
        for (g, s) in got.iter().zip(&sent) {
            let g = g.raw();
            assert_eq!(&g[8..12], &s[8..12], "{codec}: length");
            assert_eq!(&g[16..], &s[16..], "{codec}: stored as sent");
        }

        // the broker's own verdict
        let files = broker
            .segment_files(broker.node_ids()[0], &topic, 0)
            .expect("segments");
        let dumped = broker.java().dump_log_segments(&files).expect("dump");
        assert_eq!(dumped.len(), 2, "{codec}");
        assert_eq!(dumped[0].compression, codec.name());
        assert_eq!((dumped[1].base_sequence, dumped[1].last_sequence), (50, 79));
        assert_eq!(dumped[0].producer_id, init.producer_id.0);

        // and the reference consumer reads exactly what was written
        let read = broker
            .java()
            .verifiable_consumer(
                &topic,
                &format!("{topic}-g"),
                80,
                &[],
                Duration::from_secs(120),
            )
            .expect("VerifiableConsumer");
        assert_eq!(read.len(), 80, "{codec}");
        for (i, r) in read.iter().enumerate() {
            assert_eq!(r.offset, i as i64, "{codec}");
            assert_eq!(r.key, key(i), "{codec} key {i}");
            assert_eq!(r.value, value(i), "{codec} value {i}");
        }
    }
}
