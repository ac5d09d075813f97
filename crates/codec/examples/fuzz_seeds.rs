//! Writes the seed corpus of the `response` and `request` fuzz targets:
//! default-valued messages of every API the client uses, at the lowest and
//! highest version it implements, plus a Fetch response carrying the golden
//! Java batches.
//!
//! ```text
//! cargo run -p exactly-codec --example fuzz_seeds -- fuzz/corpus
//! ```

use bytes::{Bytes, BytesMut};
use exactly_codec::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use exactly_codec::messages::{ApiKey, FetchResponse, RequestHeader, ResponseKind, TopicName};
use exactly_codec::protocol::Encodable;
use exactly_codec::{
    default_request, default_response, encode_response, FrameDecoder, CLIENT_APIS,
};

type Error = Box<dyn std::error::Error>;

fn frame_body(wire: &mut BytesMut) -> Result<Bytes, Error> {
    FrameDecoder::default()
        .decode(wire)?
        .ok_or_else(|| "incomplete frame".into())
}

fn main() -> Result<(), Error> {
    let dir = std::env::args()
        .nth(1)
        .ok_or("usage: fuzz_seeds CORPUS_DIR")?;
    let golden = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/txn.bin"))?;
    std::fs::create_dir_all(format!("{dir}/response"))?;
    std::fs::create_dir_all(format!("{dir}/request"))?;
    for (i, &(api, range)) in CLIENT_APIS.iter().enumerate() {
        for version in [range.min, range.max] {
            let Some(resp) = default_response(api) else {
                continue;
            };
            let resp = match (api, resp) {
                (ApiKey::Fetch, ResponseKind::Fetch(_)) => ResponseKind::Fetch(
                    FetchResponse::default().with_responses(vec![FetchableTopicResponse::default(
                    )
                    .with_topic(TopicName("golden-txn".into()))
                    .with_partitions(vec![PartitionData::default()
                        .with_high_watermark(9)
                        .with_records(Some(Bytes::from(golden.clone())))])]),
                ),
                (_, r) => r,
            };
            let mut wire = BytesMut::new();
            encode_response(&mut wire, api, 1, version, &resp)?;
            let body = frame_body(&mut wire)?;
            let mut seed = vec![i as u8, (version - range.min) as u8];
            seed.extend_from_slice(&body);
            std::fs::write(format!("{dir}/response/{api:?}-v{version}"), seed)?;

            // the matching request, default-valued, as a broker would read it
            let Some(req) = default_request(api) else {
                continue;
            };
            let mut wire = BytesMut::new();
            let header = RequestHeader::default()
                .with_request_api_key(api as i16)
                .with_request_api_version(version)
                .with_correlation_id(1);
            header.encode(&mut wire, api.request_header_version(version))?;
            req.encode(&mut wire, version)?;
            std::fs::write(format!("{dir}/request/{api:?}-v{version}"), &wire)?;
        }
    }
    Ok(())
}
