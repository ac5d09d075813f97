//! Cost of the wire guard (`exactly_codec::guard`) next to the decode it
//! protects: a large Fetch response (100 partitions x 1 MiB of records, v12)
//! and a small InitProducerId response (v5).
//!
//! - `guard`: `guard::check_response` alone (header and body walked).
//! - `kafka-protocol decode`: header + body decoded by `kafka-protocol`
//!   without the guard (what the codec did before).
//! - `decode_response_kind`: the codec's public path (guard, then decode).
//!
//! cargo bench -p exactly-benches --bench guard -- --warm-up-time 1 --measurement-time 2

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use exactly_codec::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use exactly_codec::messages::{
    ApiKey, FetchResponse, InitProducerIdResponse, ProducerId, ResponseHeader, ResponseKind,
    TopicName,
};
use exactly_codec::protocol::{Decodable, StrBytes};
use exactly_codec::{decode_response_kind, encode_response, guard, FrameDecoder};

fn frame_of(api: ApiKey, version: i16, resp: &ResponseKind) -> Bytes {
    let mut wire = BytesMut::new();
    encode_response(&mut wire, api, 7, version, resp).unwrap_or_else(|e| panic!("{e}"));
    FrameDecoder::new(1 << 30)
        .decode(&mut wire)
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("whole frame"))
}

fn fetch_frame() -> Bytes {
    let records = Bytes::from(vec![0xabu8; 1 << 20]);
    let partitions = (0..100)
        .map(|i| {
            PartitionData::default()
                .with_partition_index(i)
                .with_high_watermark(1_000_000)
                .with_last_stable_offset(1_000_000)
                .with_aborted_transactions(Some(vec![]))
                .with_records(Some(records.clone()))
        })
        .collect();
    let resp = FetchResponse::default().with_responses(vec![FetchableTopicResponse::default()
        .with_topic(TopicName(StrBytes::from_static_str("bench-topic")))
        .with_partitions(partitions)]);
    frame_of(ApiKey::Fetch, 12, &ResponseKind::Fetch(resp))
}

fn init_producer_id_frame() -> Bytes {
    let resp = InitProducerIdResponse::default()
        .with_producer_id(ProducerId(123_456))
        .with_producer_epoch(7);
    frame_of(
        ApiKey::InitProducerId,
        5,
        &ResponseKind::InitProducerId(resp),
    )
}

fn kp_decode(api: ApiKey, version: i16, mut frame: Bytes) -> ResponseKind {
    let hv = api.response_header_version(version);
    ResponseHeader::decode(&mut frame, hv).unwrap_or_else(|e| panic!("{e}"));
    ResponseKind::decode(api, &mut frame, version).unwrap_or_else(|e| panic!("{e}"))
}

fn bench_one(c: &mut Criterion, name: &str, api: ApiKey, version: i16, frame: Bytes) {
    let mut g = c.benchmark_group(format!("guard/{name}"));
    g.throughput(Throughput::Bytes(frame.len() as u64));
    g.bench_function("guard", |b| {
        b.iter(|| guard::check_response(api, version, black_box(&frame)))
    });
    g.bench_function("kafka-protocol decode", |b| {
        b.iter(|| black_box(kp_decode(api, version, black_box(frame.clone()))))
    });
    g.bench_function("decode_response_kind", |b| {
        b.iter(|| {
            black_box(
                decode_response_kind(api, version, black_box(frame.clone()))
                    .unwrap_or_else(|e| panic!("{e}")),
            )
        })
    });
    g.finish();
}

fn guard_cost(c: &mut Criterion) {
    let fetch = fetch_frame();
    println!("fetch frame: {} bytes", fetch.len());
    bench_one(c, "fetch-100x1MiB-v12", ApiKey::Fetch, 12, fetch);
    let ipid = init_producer_id_frame();
    println!("init_producer_id frame: {} bytes", ipid.len());
    bench_one(c, "init_producer_id-v5", ApiKey::InitProducerId, 5, ipid);
}

criterion_group!(benches, guard_cost);
criterion_main!(benches);
