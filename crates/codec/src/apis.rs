//! The APIs this client speaks, the version range it implements for each, and
//! the other side of the wire (request decoding, response encoding) for
//! building fake brokers in tests.
//!
//! The ranges follow KIP-35/KIP-511 negotiation: [`crate::VersionTable::pick`]
//! intersects them with the broker's. Where a newer version replaces topic
//! names by topic ids (KIP-516: Produce v13, Fetch v13+) the range stops
//! before it, because the client addresses partitions by name. AddPartitionsToTxn
//! stops at v3: v4+ is the broker-to-broker form (KIP-890).

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::messages::{
    self, ApiKey, RequestHeader, RequestKind, ResponseHeader, ResponseKind,
};
use kafka_protocol::protocol::{Decodable, Encodable, VersionRange};

use crate::frame::write_frame;
use crate::CodecError;

const fn range(min: i16, max: i16) -> VersionRange {
    VersionRange { min, max }
}

/// Every API the client uses, with the version range this client implements.
pub const CLIENT_APIS: &[(ApiKey, VersionRange)] = &[
    (ApiKey::Produce, range(3, 12)),
    (ApiKey::Fetch, range(4, 12)),
    (ApiKey::ListOffsets, range(1, 10)),
    (ApiKey::Metadata, range(0, 12)),
    (ApiKey::OffsetCommit, range(2, 9)),
    (ApiKey::OffsetFetch, range(1, 9)),
    (ApiKey::FindCoordinator, range(0, 6)),
    (ApiKey::JoinGroup, range(0, 9)),
    (ApiKey::Heartbeat, range(0, 4)),
    (ApiKey::LeaveGroup, range(0, 5)),
    (ApiKey::SyncGroup, range(0, 5)),
    (ApiKey::SaslHandshake, range(0, 1)),
    (ApiKey::SaslAuthenticate, range(0, 2)),
    (ApiKey::ApiVersions, range(0, 4)),
    (ApiKey::CreateTopics, range(2, 7)),
    (ApiKey::InitProducerId, range(0, 5)),
    (ApiKey::AddPartitionsToTxn, range(0, 3)),
    (ApiKey::AddOffsetsToTxn, range(0, 4)),
    (ApiKey::EndTxn, range(0, 5)),
    (ApiKey::TxnOffsetCommit, range(0, 5)),
    (ApiKey::DescribeProducers, range(0, 0)),
    (ApiKey::DescribeTransactions, range(0, 0)),
    (ApiKey::DeleteTopics, range(1, 6)),
    (ApiKey::CreatePartitions, range(0, 3)),
    (ApiKey::DescribeConfigs, range(1, 4)),
    (ApiKey::DescribeCluster, range(0, 2)),
    (ApiKey::ListGroups, range(0, 5)),
    (ApiKey::DescribeGroups, range(0, 6)),
    (ApiKey::OffsetDelete, range(0, 0)),
    (ApiKey::ListTransactions, range(0, 2)),
    (ApiKey::WriteTxnMarkers, range(1, 1)),
    (ApiKey::ConsumerGroupHeartbeat, range(0, 1)),
];

/// The version range this client implements for `api`, or `None` for an API
/// the client never sends.
pub fn client_versions(api: ApiKey) -> Option<VersionRange> {
    CLIENT_APIS
        .iter()
        .find(|(k, _)| *k == api)
        .map(|&(_, range)| range)
}

/// Writes [`default_request`] and [`default_response`] from one list of the
/// client's APIs and their message types.
macro_rules! default_messages {
    ($($api:ident => $req:ident, $resp:ident;)*) => {
        /// A default-valued request of a client API (see [`CLIENT_APIS`]), or
        /// `None` for any other API: the smallest valid message, for seeding
        /// fuzz corpora and scripting fake peers.
        pub fn default_request(api: ApiKey) -> Option<RequestKind> {
            match api {
                $(ApiKey::$api => Some(RequestKind::$api(messages::$req::default())),)*
                _ => None,
            }
        }

        /// A default-valued response of a client API (see [`CLIENT_APIS`]),
        /// or `None` for any other API.
        pub fn default_response(api: ApiKey) -> Option<ResponseKind> {
            match api {
                $(ApiKey::$api => Some(ResponseKind::$api(messages::$resp::default())),)*
                _ => None,
            }
        }
    };
}

default_messages! {
    Produce => ProduceRequest, ProduceResponse;
    Fetch => FetchRequest, FetchResponse;
    ListOffsets => ListOffsetsRequest, ListOffsetsResponse;
    Metadata => MetadataRequest, MetadataResponse;
    OffsetCommit => OffsetCommitRequest, OffsetCommitResponse;
    OffsetFetch => OffsetFetchRequest, OffsetFetchResponse;
    FindCoordinator => FindCoordinatorRequest, FindCoordinatorResponse;
    JoinGroup => JoinGroupRequest, JoinGroupResponse;
    Heartbeat => HeartbeatRequest, HeartbeatResponse;
    LeaveGroup => LeaveGroupRequest, LeaveGroupResponse;
    SyncGroup => SyncGroupRequest, SyncGroupResponse;
    SaslHandshake => SaslHandshakeRequest, SaslHandshakeResponse;
    SaslAuthenticate => SaslAuthenticateRequest, SaslAuthenticateResponse;
    ApiVersions => ApiVersionsRequest, ApiVersionsResponse;
    CreateTopics => CreateTopicsRequest, CreateTopicsResponse;
    InitProducerId => InitProducerIdRequest, InitProducerIdResponse;
    AddPartitionsToTxn => AddPartitionsToTxnRequest, AddPartitionsToTxnResponse;
    AddOffsetsToTxn => AddOffsetsToTxnRequest, AddOffsetsToTxnResponse;
    EndTxn => EndTxnRequest, EndTxnResponse;
    TxnOffsetCommit => TxnOffsetCommitRequest, TxnOffsetCommitResponse;
    DescribeProducers => DescribeProducersRequest, DescribeProducersResponse;
    DescribeTransactions => DescribeTransactionsRequest, DescribeTransactionsResponse;
    DeleteTopics => DeleteTopicsRequest, DeleteTopicsResponse;
    CreatePartitions => CreatePartitionsRequest, CreatePartitionsResponse;
    DescribeConfigs => DescribeConfigsRequest, DescribeConfigsResponse;
    DescribeCluster => DescribeClusterRequest, DescribeClusterResponse;
    ListGroups => ListGroupsRequest, ListGroupsResponse;
    DescribeGroups => DescribeGroupsRequest, DescribeGroupsResponse;
    OffsetDelete => OffsetDeleteRequest, OffsetDeleteResponse;
    ListTransactions => ListTransactionsRequest, ListTransactionsResponse;
    WriteTxnMarkers => WriteTxnMarkersRequest, WriteTxnMarkersResponse;
    ConsumerGroupHeartbeat => ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse;
}

fn check_version(api: ApiKey, version: i16) -> Result<(), CodecError> {
    let valid = api.valid_versions();
    if version < valid.min || version > valid.max {
        return Err(CodecError::Decode {
            api,
            version,
            reason: format!(
                "version outside the supported range v{}..=v{}",
                valid.min, valid.max
            ),
            malformed: None,
        });
    }
    Ok(())
}

/// Decodes a response frame (without its size prefix) of any API at
/// `version`, returning the correlation id and the body. The whole frame must
/// be consumed.
///
/// This is the dynamic twin of [`crate::decode_response`], for code that holds
/// the API key as a value (a connection's in-flight queue, a fuzzer). It
/// passes the same wire guard first.
pub fn decode_response_kind(
    api: ApiKey,
    version: i16,
    mut frame: Bytes,
) -> Result<(i32, ResponseKind), CodecError> {
    check_version(api, version)?;
    crate::guard::check_response(api, version, &frame)?;
    let header_version = api.response_header_version(version);
    let header = ResponseHeader::decode(&mut frame, header_version)
        .map_err(|e| CodecError::Header(format!("{e:#}")))?;
    let body = ResponseKind::decode(api, &mut frame, version).map_err(|e| CodecError::Decode {
        api,
        version,
        reason: format!("{e:#}"),
        malformed: None,
    })?;
    if frame.has_remaining() {
        return Err(CodecError::TrailingBytes {
            api,
            version,
            extra: frame.remaining(),
        });
    }
    Ok((header.correlation_id, body))
}

/// Decodes a request frame (without its size prefix), as a broker would:
/// the API key and version are read from the header, which is decoded at the
/// header version they imply. The frame passes the wire guard first
/// ([`crate::guard::check_request`]); only the client's APIs and versions are
/// accepted.
pub fn decode_request(mut frame: Bytes) -> Result<(RequestHeader, RequestKind), CodecError> {
    let Some(b) = frame.get(..4) else {
        return Err(CodecError::Header(format!(
            "request frame of {} bytes has no api key and version",
            frame.len()
        )));
    };
    let raw_key = i16::from_be_bytes([b[0], b[1]]);
    let version = i16::from_be_bytes([b[2], b[3]]);
    let api = ApiKey::try_from(raw_key).map_err(|()| CodecError::UnknownApiKey(raw_key))?;
    check_version(api, version)?;
    crate::guard::check_request(api, version, &frame)?;
    let header_version = api.request_header_version(version);
    let header = RequestHeader::decode(&mut frame, header_version)
        .map_err(|e| CodecError::Header(format!("{e:#}")))?;
    let body = RequestKind::decode(api, &mut frame, version).map_err(|e| CodecError::Decode {
        api,
        version,
        reason: format!("{e:#}"),
        malformed: None,
    })?;
    if frame.has_remaining() {
        return Err(CodecError::TrailingBytes {
            api,
            version,
            extra: frame.remaining(),
        });
    }
    Ok((header, body))
}

/// Appends one whole size-prefixed response frame (header + body), as a
/// broker would answer a request with `correlation_id` at `version`.
pub fn encode_response(
    dst: &mut BytesMut,
    api: ApiKey,
    correlation_id: i32,
    version: i16,
    response: &ResponseKind,
) -> Result<usize, CodecError> {
    let header_version = api.response_header_version(version);
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    let enc = |reason: &dyn std::fmt::Display| CodecError::Encode {
        api,
        version,
        reason: reason.to_string(),
    };
    write_frame(dst, |dst| {
        header.encode(dst, header_version).map_err(|e| enc(&e))?;
        response.encode(dst, version).map_err(|e| enc(&e))
    })
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::{
        EndTxnRequest, EndTxnResponse, InitProducerIdRequest, ProducerId, TransactionalId,
    };
    use kafka_protocol::protocol::StrBytes;

    use super::*;
    use crate::frame::FrameDecoder;
    use crate::{decode_response, encode_request};

    #[test]
    fn every_client_range_is_within_the_message_crate() {
        for &(api, r) in CLIENT_APIS {
            let valid = api.valid_versions();
            assert!(r.min >= valid.min && r.max <= valid.max, "{api:?}");
            assert!(r.min <= r.max, "{api:?}");
        }
        assert_eq!(client_versions(ApiKey::Produce), Some(range(3, 12)));
        assert_eq!(client_versions(ApiKey::AddPartitionsToTxn).unwrap().max, 3);
        assert_eq!(client_versions(ApiKey::AlterConfigs), None);
    }

    #[test]
    fn every_client_api_has_default_messages_of_its_own_kind() {
        for &(api, _) in CLIENT_APIS {
            let req = default_request(api).unwrap();
            let resp = default_response(api).unwrap();
            // The variant is the API's own (its Debug form starts with it).
            assert!(
                format!("{req:?}").starts_with(&format!("{api:?}(")),
                "{req:?}"
            );
            assert!(
                format!("{resp:?}").starts_with(&format!("{api:?}(")),
                "{resp:?}"
            );
        }
        assert!(default_request(ApiKey::AlterConfigs).is_none());
        assert!(default_response(ApiKey::AlterConfigs).is_none());
    }

    #[test]
    fn fake_broker_roundtrip() {
        // client encodes, broker decodes
        let req = InitProducerIdRequest::default()
            .with_transactional_id(Some(TransactionalId(StrBytes::from_static_str("t1"))))
            .with_transaction_timeout_ms(60_000);
        let mut wire = BytesMut::new();
        encode_request(&mut wire, 42, Some("exactly"), 5, &req).unwrap();
        let frame = FrameDecoder::default().decode(&mut wire).unwrap().unwrap();
        let (header, body) = decode_request(frame).unwrap();
        assert_eq!(header.correlation_id, 42);
        assert_eq!(header.request_api_version, 5);
        assert_eq!(header.client_id.as_deref(), Some("exactly"));
        assert_eq!(body, RequestKind::InitProducerId(req));

        // broker answers, client decodes
        let resp = ResponseKind::EndTxn(
            EndTxnResponse::default()
                .with_producer_id(ProducerId(7))
                .with_producer_epoch(3),
        );
        encode_response(&mut wire, ApiKey::EndTxn, 43, 5, &resp).unwrap();
        let frame = FrameDecoder::default().decode(&mut wire).unwrap().unwrap();
        let (cid, body) = decode_response::<EndTxnRequest>(frame.clone(), 5).unwrap();
        assert_eq!((cid, body.producer_epoch, body.producer_id.0), (43, 3, 7));
        let (cid, kind) = decode_response_kind(ApiKey::EndTxn, 5, frame).unwrap();
        assert_eq!((cid, kind), (43, resp));
    }

    #[test]
    fn bad_requests_are_typed_errors() {
        assert!(matches!(
            decode_request(Bytes::from_static(&[0, 1])),
            Err(CodecError::Header(_))
        ));
        assert_eq!(
            decode_request(Bytes::from_static(&[0x7f, 0, 0, 0, 0, 0, 0, 1])),
            Err(CodecError::UnknownApiKey(0x7f00))
        );
        assert!(matches!(
            decode_request(Bytes::from_static(&[0, 26, 0, 99, 0, 0, 0, 1])),
            Err(CodecError::Decode {
                api: ApiKey::EndTxn,
                version: 99,
                ..
            })
        ));
        // header, then a body cut short at the throttle time
        let e = decode_response_kind(ApiKey::EndTxn, 5, Bytes::from_static(&[0, 0, 0, 1, 0]))
            .unwrap_err();
        assert!(matches!(
            e,
            CodecError::Decode {
                api: ApiKey::EndTxn,
                version: 5,
                ..
            }
        ));
        assert_eq!(
            e.malformed().map(|m| &m.fault),
            Some(&crate::guard::Fault::LengthPastEnd {
                declared: 4,
                available: 0
            })
        );
    }
}
