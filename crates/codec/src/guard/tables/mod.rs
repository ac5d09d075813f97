//! The schema of every request and response of every API in
//! [`crate::CLIENT_APIS`], written from the Kafka message specs (the
//! `clients/src/main/resources/common/message/*.json` files of Apache Kafka)
//! and checked against `kafka-protocol`'s encoder by the tests in
//! `guard/tests/`, and field by field (path, type, nullability, tag,
//! flexibility, wire order) against the specs in the `kafka-clients` jar of
//! the Kafka the broker harness runs, by `protocol-tests/tests/guard_specs.rs`
//! (through [`super::describe`]).
//!
//! Each schema covers every version `kafka-protocol` can decode for it (a
//! superset of the client's range, so tools and tests that speak newer
//! versions through the codec stay guarded); [`lookup`] answers for nothing
//! else, and the tests check every covered version against the decoder.

use kafka_protocol::messages::ApiKey;

use super::schema::{Message, Versions};
use super::Direction;

mod admin;
mod cluster;
mod group;
mod produce;
mod txn;

/// Every API of [`crate::CLIENT_APIS`]: its request and response schemas, each
/// with the versions it covers (exactly those `kafka-protocol` 0.18 decodes,
/// a superset of the client's range).
pub(super) const SCHEMAS: &[Api] = &[
    api(
        ApiKey::Produce,
        "3-13",
        produce::PRODUCE_REQUEST,
        "3-13",
        produce::PRODUCE_RESPONSE,
    ),
    api(
        ApiKey::Fetch,
        "4-18",
        produce::FETCH_REQUEST,
        "4-18",
        produce::FETCH_RESPONSE,
    ),
    api(
        ApiKey::ListOffsets,
        "1-10",
        cluster::LIST_OFFSETS_REQUEST,
        "1-10",
        cluster::LIST_OFFSETS_RESPONSE,
    ),
    api(
        ApiKey::Metadata,
        "0-13",
        cluster::METADATA_REQUEST,
        "0-13",
        cluster::METADATA_RESPONSE,
    ),
    api(
        ApiKey::OffsetCommit,
        "2-9",
        group::OFFSET_COMMIT_REQUEST,
        "2-10",
        group::OFFSET_COMMIT_RESPONSE,
    ),
    api(
        ApiKey::OffsetFetch,
        "1-9",
        group::OFFSET_FETCH_REQUEST,
        "1-10",
        group::OFFSET_FETCH_RESPONSE,
    ),
    api(
        ApiKey::FindCoordinator,
        "0-6",
        cluster::FIND_COORDINATOR_REQUEST,
        "0-6",
        cluster::FIND_COORDINATOR_RESPONSE,
    ),
    api(
        ApiKey::JoinGroup,
        "0-9",
        group::JOIN_GROUP_REQUEST,
        "0-9",
        group::JOIN_GROUP_RESPONSE,
    ),
    api(
        ApiKey::Heartbeat,
        "0-4",
        group::HEARTBEAT_REQUEST,
        "0-4",
        group::HEARTBEAT_RESPONSE,
    ),
    api(
        ApiKey::LeaveGroup,
        "0-5",
        group::LEAVE_GROUP_REQUEST,
        "0-5",
        group::LEAVE_GROUP_RESPONSE,
    ),
    api(
        ApiKey::SyncGroup,
        "0-5",
        group::SYNC_GROUP_REQUEST,
        "0-5",
        group::SYNC_GROUP_RESPONSE,
    ),
    api(
        ApiKey::SaslHandshake,
        "0-1",
        cluster::SASL_HANDSHAKE_REQUEST,
        "0-1",
        cluster::SASL_HANDSHAKE_RESPONSE,
    ),
    api(
        ApiKey::SaslAuthenticate,
        "0-2",
        cluster::SASL_AUTHENTICATE_REQUEST,
        "0-2",
        cluster::SASL_AUTHENTICATE_RESPONSE,
    ),
    api(
        ApiKey::ApiVersions,
        "0-4",
        cluster::API_VERSIONS_REQUEST,
        "0-4",
        cluster::API_VERSIONS_RESPONSE,
    ),
    api(
        ApiKey::CreateTopics,
        "2-7",
        cluster::CREATE_TOPICS_REQUEST,
        "2-7",
        cluster::CREATE_TOPICS_RESPONSE,
    ),
    api(
        ApiKey::InitProducerId,
        "0-5",
        txn::INIT_PRODUCER_ID_REQUEST,
        "0-6",
        txn::INIT_PRODUCER_ID_RESPONSE,
    ),
    api(
        ApiKey::AddPartitionsToTxn,
        "0-5",
        txn::ADD_PARTITIONS_TO_TXN_REQUEST,
        "0-5",
        txn::ADD_PARTITIONS_TO_TXN_RESPONSE,
    ),
    api(
        ApiKey::AddOffsetsToTxn,
        "0-4",
        txn::ADD_OFFSETS_TO_TXN_REQUEST,
        "0-4",
        txn::ADD_OFFSETS_TO_TXN_RESPONSE,
    ),
    api(
        ApiKey::EndTxn,
        "0-5",
        txn::END_TXN_REQUEST,
        "0-5",
        txn::END_TXN_RESPONSE,
    ),
    api(
        ApiKey::TxnOffsetCommit,
        "0-5",
        txn::TXN_OFFSET_COMMIT_REQUEST,
        "0-5",
        txn::TXN_OFFSET_COMMIT_RESPONSE,
    ),
    api(
        ApiKey::DescribeProducers,
        "0",
        txn::DESCRIBE_PRODUCERS_REQUEST,
        "0",
        txn::DESCRIBE_PRODUCERS_RESPONSE,
    ),
    api(
        ApiKey::DescribeTransactions,
        "0",
        txn::DESCRIBE_TRANSACTIONS_REQUEST,
        "0",
        txn::DESCRIBE_TRANSACTIONS_RESPONSE,
    ),
    api(
        ApiKey::DeleteTopics,
        "1-6",
        admin::DELETE_TOPICS_REQUEST,
        "1-6",
        admin::DELETE_TOPICS_RESPONSE,
    ),
    api(
        ApiKey::CreatePartitions,
        "0-3",
        admin::CREATE_PARTITIONS_REQUEST,
        "0-3",
        admin::CREATE_PARTITIONS_RESPONSE,
    ),
    api(
        ApiKey::DescribeConfigs,
        "1-4",
        admin::DESCRIBE_CONFIGS_REQUEST,
        "1-4",
        admin::DESCRIBE_CONFIGS_RESPONSE,
    ),
    api(
        ApiKey::DescribeCluster,
        "0-2",
        admin::DESCRIBE_CLUSTER_REQUEST,
        "0-2",
        admin::DESCRIBE_CLUSTER_RESPONSE,
    ),
    api(
        ApiKey::ListGroups,
        "0-5",
        admin::LIST_GROUPS_REQUEST,
        "0-5",
        admin::LIST_GROUPS_RESPONSE,
    ),
    api(
        ApiKey::DescribeGroups,
        "0-6",
        admin::DESCRIBE_GROUPS_REQUEST,
        "0-6",
        admin::DESCRIBE_GROUPS_RESPONSE,
    ),
    api(
        ApiKey::OffsetDelete,
        "0",
        admin::OFFSET_DELETE_REQUEST,
        "0",
        admin::OFFSET_DELETE_RESPONSE,
    ),
    api(
        ApiKey::ListTransactions,
        "0-2",
        admin::LIST_TRANSACTIONS_REQUEST,
        "0-2",
        admin::LIST_TRANSACTIONS_RESPONSE,
    ),
    api(
        ApiKey::WriteTxnMarkers,
        "1",
        admin::WRITE_TXN_MARKERS_REQUEST,
        "1",
        admin::WRITE_TXN_MARKERS_RESPONSE,
    ),
    api(
        ApiKey::ConsumerGroupHeartbeat,
        "0-1",
        group::CONSUMER_GROUP_HEARTBEAT_REQUEST,
        "0-1",
        group::CONSUMER_GROUP_HEARTBEAT_RESPONSE,
    ),
];

/// One API's schemas.
#[derive(Debug)]
pub(super) struct Api {
    pub(super) key: ApiKey,
    pub(super) request: (Versions, Message),
    pub(super) response: (Versions, Message),
}

const fn api(
    key: ApiKey,
    request_versions: &str,
    request: Message,
    response_versions: &str,
    response: Message,
) -> Api {
    Api {
        key,
        request: (Versions::parse(request_versions), request),
        response: (Versions::parse(response_versions), response),
    }
}

/// The versions covered for `api` in `direction`, if `api` has schemas.
#[cfg(test)]
pub(super) fn coverage(api: ApiKey, direction: Direction) -> Option<Versions> {
    let entry = SCHEMAS.iter().find(|a| a.key == api)?;
    Some(match direction {
        Direction::Request => entry.request.0,
        Direction::Response => entry.response.0,
    })
}

/// The schema of `api` at `version` in `direction`, if covered.
pub(super) fn lookup(api: ApiKey, version: i16, direction: Direction) -> Option<&'static Message> {
    let entry = SCHEMAS.iter().find(|a| a.key == api)?;
    let (versions, message) = match direction {
        Direction::Request => &entry.request,
        Direction::Response => &entry.response,
    };
    versions.contains(version).then_some(message)
}
