//! The schema of every request and response of every API in
//! [`crate::CLIENT_APIS`], written from the Kafka message specs (the
//! `clients/src/main/resources/common/message/*.json` files of Apache Kafka)
//! and checked against `kafka-protocol`'s encoder by the tests in
//! `guard/tests.rs`.
//!
//! A table may describe versions beyond the client's range (where the spec
//! was at hand), but only the client's range is claimed: [`lookup`] answers
//! for nothing else.

use kafka_protocol::messages::ApiKey;

use super::schema::Message;
use super::Direction;
use crate::client_versions;

mod cluster;
mod group;
mod produce;
mod txn;

/// (API, request schema, response schema).
pub(super) const SCHEMAS: &[(ApiKey, Message, Message)] = &[
    (
        ApiKey::Produce,
        produce::PRODUCE_REQUEST,
        produce::PRODUCE_RESPONSE,
    ),
    (
        ApiKey::Fetch,
        produce::FETCH_REQUEST,
        produce::FETCH_RESPONSE,
    ),
    (
        ApiKey::ListOffsets,
        cluster::LIST_OFFSETS_REQUEST,
        cluster::LIST_OFFSETS_RESPONSE,
    ),
    (
        ApiKey::Metadata,
        cluster::METADATA_REQUEST,
        cluster::METADATA_RESPONSE,
    ),
    (
        ApiKey::OffsetCommit,
        group::OFFSET_COMMIT_REQUEST,
        group::OFFSET_COMMIT_RESPONSE,
    ),
    (
        ApiKey::OffsetFetch,
        group::OFFSET_FETCH_REQUEST,
        group::OFFSET_FETCH_RESPONSE,
    ),
    (
        ApiKey::FindCoordinator,
        cluster::FIND_COORDINATOR_REQUEST,
        cluster::FIND_COORDINATOR_RESPONSE,
    ),
    (
        ApiKey::JoinGroup,
        group::JOIN_GROUP_REQUEST,
        group::JOIN_GROUP_RESPONSE,
    ),
    (
        ApiKey::Heartbeat,
        group::HEARTBEAT_REQUEST,
        group::HEARTBEAT_RESPONSE,
    ),
    (
        ApiKey::LeaveGroup,
        group::LEAVE_GROUP_REQUEST,
        group::LEAVE_GROUP_RESPONSE,
    ),
    (
        ApiKey::SyncGroup,
        group::SYNC_GROUP_REQUEST,
        group::SYNC_GROUP_RESPONSE,
    ),
    (
        ApiKey::SaslHandshake,
        cluster::SASL_HANDSHAKE_REQUEST,
        cluster::SASL_HANDSHAKE_RESPONSE,
    ),
    (
        ApiKey::SaslAuthenticate,
        cluster::SASL_AUTHENTICATE_REQUEST,
        cluster::SASL_AUTHENTICATE_RESPONSE,
    ),
    (
        ApiKey::ApiVersions,
        cluster::API_VERSIONS_REQUEST,
        cluster::API_VERSIONS_RESPONSE,
    ),
    (
        ApiKey::CreateTopics,
        cluster::CREATE_TOPICS_REQUEST,
        cluster::CREATE_TOPICS_RESPONSE,
    ),
    (
        ApiKey::InitProducerId,
        txn::INIT_PRODUCER_ID_REQUEST,
        txn::INIT_PRODUCER_ID_RESPONSE,
    ),
    (
        ApiKey::AddPartitionsToTxn,
        txn::ADD_PARTITIONS_TO_TXN_REQUEST,
        txn::ADD_PARTITIONS_TO_TXN_RESPONSE,
    ),
    (
        ApiKey::AddOffsetsToTxn,
        txn::ADD_OFFSETS_TO_TXN_REQUEST,
        txn::ADD_OFFSETS_TO_TXN_RESPONSE,
    ),
    (ApiKey::EndTxn, txn::END_TXN_REQUEST, txn::END_TXN_RESPONSE),
    (
        ApiKey::TxnOffsetCommit,
        txn::TXN_OFFSET_COMMIT_REQUEST,
        txn::TXN_OFFSET_COMMIT_RESPONSE,
    ),
    (
        ApiKey::DescribeProducers,
        txn::DESCRIBE_PRODUCERS_REQUEST,
        txn::DESCRIBE_PRODUCERS_RESPONSE,
    ),
    (
        ApiKey::DescribeTransactions,
        txn::DESCRIBE_TRANSACTIONS_REQUEST,
        txn::DESCRIBE_TRANSACTIONS_RESPONSE,
    ),
];

/// The schema of `api` at `version` in `direction`, if `version` is in the
/// client's range for `api`.
pub(super) fn lookup(api: ApiKey, version: i16, direction: Direction) -> Option<&'static Message> {
    let range = client_versions(api)?;
    if version < range.min || version > range.max {
        return None;
    }
    let (_, request, response) = SCHEMAS.iter().find(|(key, ..)| *key == api)?;
    Some(match direction {
        Direction::Request => request,
        Direction::Response => response,
    })
}
