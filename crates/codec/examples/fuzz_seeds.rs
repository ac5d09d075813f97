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
use exactly_codec::messages::{
    ApiKey, FetchResponse, RequestHeader, RequestKind, ResponseKind, TopicName,
};
use exactly_codec::protocol::Encodable;
use exactly_codec::{encode_response, FrameDecoder, CLIENT_APIS};

type Error = Box<dyn std::error::Error>;

fn default_response(api: ApiKey) -> Option<ResponseKind> {
    use exactly_codec::messages::*;
    Some(match api {
        ApiKey::Produce => ResponseKind::Produce(ProduceResponse::default()),
        ApiKey::Fetch => ResponseKind::Fetch(FetchResponse::default()),
        ApiKey::ListOffsets => ResponseKind::ListOffsets(ListOffsetsResponse::default()),
        ApiKey::Metadata => ResponseKind::Metadata(MetadataResponse::default()),
        ApiKey::OffsetCommit => ResponseKind::OffsetCommit(OffsetCommitResponse::default()),
        ApiKey::OffsetFetch => ResponseKind::OffsetFetch(OffsetFetchResponse::default()),
        ApiKey::FindCoordinator => {
            ResponseKind::FindCoordinator(FindCoordinatorResponse::default())
        }
        ApiKey::JoinGroup => ResponseKind::JoinGroup(JoinGroupResponse::default()),
        ApiKey::Heartbeat => ResponseKind::Heartbeat(HeartbeatResponse::default()),
        ApiKey::LeaveGroup => ResponseKind::LeaveGroup(LeaveGroupResponse::default()),
        ApiKey::SyncGroup => ResponseKind::SyncGroup(SyncGroupResponse::default()),
        ApiKey::SaslHandshake => ResponseKind::SaslHandshake(SaslHandshakeResponse::default()),
        ApiKey::SaslAuthenticate => {
            ResponseKind::SaslAuthenticate(SaslAuthenticateResponse::default())
        }
        ApiKey::ApiVersions => ResponseKind::ApiVersions(ApiVersionsResponse::default()),
        ApiKey::CreateTopics => ResponseKind::CreateTopics(CreateTopicsResponse::default()),
        ApiKey::InitProducerId => ResponseKind::InitProducerId(InitProducerIdResponse::default()),
        ApiKey::AddPartitionsToTxn => {
            ResponseKind::AddPartitionsToTxn(AddPartitionsToTxnResponse::default())
        }
        ApiKey::AddOffsetsToTxn => {
            ResponseKind::AddOffsetsToTxn(AddOffsetsToTxnResponse::default())
        }
        ApiKey::EndTxn => ResponseKind::EndTxn(EndTxnResponse::default()),
        ApiKey::TxnOffsetCommit => {
            ResponseKind::TxnOffsetCommit(TxnOffsetCommitResponse::default())
        }
        ApiKey::DescribeProducers => {
            ResponseKind::DescribeProducers(DescribeProducersResponse::default())
        }
        ApiKey::DescribeTransactions => {
            ResponseKind::DescribeTransactions(DescribeTransactionsResponse::default())
        }
        _ => return None,
    })
}

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
            let req = default_request(api);
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

fn default_request(api: ApiKey) -> RequestKind {
    use exactly_codec::messages::*;
    match api {
        ApiKey::Produce => RequestKind::Produce(ProduceRequest::default()),
        ApiKey::Fetch => RequestKind::Fetch(FetchRequest::default()),
        ApiKey::ListOffsets => RequestKind::ListOffsets(ListOffsetsRequest::default()),
        ApiKey::Metadata => RequestKind::Metadata(MetadataRequest::default()),
        ApiKey::OffsetCommit => RequestKind::OffsetCommit(OffsetCommitRequest::default()),
        ApiKey::OffsetFetch => RequestKind::OffsetFetch(OffsetFetchRequest::default()),
        ApiKey::FindCoordinator => RequestKind::FindCoordinator(FindCoordinatorRequest::default()),
        ApiKey::JoinGroup => RequestKind::JoinGroup(JoinGroupRequest::default()),
        ApiKey::Heartbeat => RequestKind::Heartbeat(HeartbeatRequest::default()),
        ApiKey::LeaveGroup => RequestKind::LeaveGroup(LeaveGroupRequest::default()),
        ApiKey::SyncGroup => RequestKind::SyncGroup(SyncGroupRequest::default()),
        ApiKey::SaslHandshake => RequestKind::SaslHandshake(SaslHandshakeRequest::default()),
        ApiKey::SaslAuthenticate => {
            RequestKind::SaslAuthenticate(SaslAuthenticateRequest::default())
        }
        ApiKey::CreateTopics => RequestKind::CreateTopics(CreateTopicsRequest::default()),
        ApiKey::InitProducerId => RequestKind::InitProducerId(InitProducerIdRequest::default()),
        ApiKey::AddPartitionsToTxn => {
            RequestKind::AddPartitionsToTxn(AddPartitionsToTxnRequest::default())
        }
        ApiKey::AddOffsetsToTxn => RequestKind::AddOffsetsToTxn(AddOffsetsToTxnRequest::default()),
        ApiKey::EndTxn => RequestKind::EndTxn(EndTxnRequest::default()),
        ApiKey::TxnOffsetCommit => RequestKind::TxnOffsetCommit(TxnOffsetCommitRequest::default()),
        ApiKey::DescribeProducers => {
            RequestKind::DescribeProducers(DescribeProducersRequest::default())
        }
        ApiKey::DescribeTransactions => {
            RequestKind::DescribeTransactions(DescribeTransactionsRequest::default())
        }
        _ => RequestKind::ApiVersions(ApiVersionsRequest::default()),
    }
}
