//! Mapping the core's requests to kafka-protocol structs and back: the
//! versions and Produce here, the coordinators' requests in `coordinator.rs`.
//!
//! Versions: the highest both sides support (net's negotiation), bounded by
//! the transaction flow the core chose (JAVA-CLIENT-RULES §1): under flow v1
//! a transactional Produce goes at v11 or lower, EndTxn and TxnOffsetCommit
//! at v4 or lower; under flow v2 they need Produce v12+ (implicit partition
//! add), EndTxn v5+ (the bumped epoch comes back) and TxnOffsetCommit v5+.
//!
//! Failures: a request that certainly never left is `Outcome::NotSent`; one
//! that may have reached the broker is `Outcome::MaybeDelivered`. Either is
//! reported at once: when to try again is the core's decision (its backoff
//! comes back as `poll_timeout`), so nothing here waits or retries. A
//! version the broker cannot take is answered as the broker would
//! (UNSUPPORTED_VERSION), which the core treats as fatal.

use std::time::Duration;

use bytes::Bytes;
use exactly_codec::messages::produce_request::{PartitionProduceData, TopicProduceData};
use exactly_codec::messages::produce_response::PartitionProduceResponse;
use exactly_codec::messages::{
    ApiKey, ProduceRequest, ProduceResponse, TopicName, TransactionalId,
};
use exactly_codec::protocol::StrBytes;
use exactly_codec::{CodecError, ErrorCode, VersionTable};
use exactly_net::{Client, NetError, SendOptions};
use exactly_txn::{BatchId, BrokerInfo, Flow, Outcome, RequestId, TopicPartition};

/// One batch on its way to a partition leader.
#[derive(Debug, Clone)]
pub(crate) struct ProduceItem {
    pub(crate) id: RequestId,
    pub(crate) tp: TopicPartition,
    pub(crate) batch: BatchId,
    pub(crate) bytes: Bytes,
    pub(crate) flow: Option<Flow>,
    pub(crate) transactional_id: Option<String>,
    /// The metadata generation the leader was looked up in.
    pub(crate) generation: u64,
}

/// What became of one Produce wire request.
#[derive(Debug)]
pub(crate) enum ProduceResult {
    /// The broker answered.
    Answered {
        version: i16,
        response: ProduceResponse,
        leader: i32,
    },
    /// `acks=0`: written, no answer will come.
    Written { version: i16 },
    /// The request failed in transport.
    Failed { outcome: Outcome, refresh: bool },
    /// Answered locally as the broker would have (a version it cannot take).
    Refused(ErrorCode),
}

/// The versions and `transaction.version` a connection negotiated.
pub(crate) fn broker_info(v: &VersionTable) -> BrokerInfo {
    let pick = |api| v.pick_client(api).unwrap_or(-1);
    BrokerInfo {
        transaction_version: v.transaction_version(),
        produce: pick(ApiKey::Produce),
        init_producer_id: pick(ApiKey::InitProducerId),
        end_txn: pick(ApiKey::EndTxn),
        txn_offset_commit: pick(ApiKey::TxnOffsetCommit),
    }
}

fn unsupported(api: ApiKey, v: &VersionTable, client_min: i16, client_max: i16) -> NetError {
    let (broker_min, broker_max) = v.broker_range(api).map_or((-1, -1), |r| (r.min, r.max));
    NetError::Codec(CodecError::UnsupportedVersion {
        api,
        broker_min,
        broker_max,
        client_min,
        client_max,
    })
}

/// The version for `api` under `flow`: at most `v1_max` under flow v1, at
/// least `v2_min` under flow v2.
pub(super) fn flow_version(
    v: &VersionTable,
    api: ApiKey,
    flow: Option<Flow>,
    v1_max: i16,
    v2_min: i16,
) -> Result<i16, NetError> {
    let negotiated = v.pick_client(api)?;
    match flow {
        Some(Flow::V1) => {
            let capped = negotiated.min(v1_max);
            match v.broker_range(api) {
                Some(r) if r.min <= capped => Ok(capped),
                _ => Err(unsupported(api, v, 0, v1_max)),
            }
        }
        Some(Flow::V2) if negotiated < v2_min => Err(unsupported(api, v, v2_min, i16::MAX)),
        _ => Ok(negotiated),
    }
}

/// A request that cannot be put on the wire at all (no version both sides
/// take, or it does not encode at the chosen one): retrying cannot help, so
/// it is answered as the broker would answer a version it does not take.
pub(super) fn is_unsupported(e: &NetError) -> bool {
    matches!(e, NetError::Codec(_)) && e.delivery() == exactly_net::Delivery::NotSent
}

/// The outcome of a transport failure.
pub(super) fn lost(e: &NetError) -> Outcome {
    match e.delivery() {
        exactly_net::Delivery::NotSent => Outcome::NotSent,
        exactly_net::Delivery::MaybeDelivered => Outcome::MaybeDelivered,
    }
}

pub(super) fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

/// Builds one Produce request from batches of distinct partitions.
pub(crate) fn produce_request(items: &[ProduceItem], acks: i16, timeout_ms: i32) -> ProduceRequest {
    let mut topics: Vec<TopicProduceData> = Vec::new();
    for it in items {
        let data = PartitionProduceData::default()
            .with_index(it.tp.partition)
            .with_records(Some(it.bytes.clone()));
        match topics
            .iter_mut()
            .find(|t| &*t.name.0 == it.tp.topic.as_str())
        {
            Some(t) => t.partition_data.push(data),
            None => topics.push(
                TopicProduceData::default()
                    .with_name(TopicName(str_bytes(&it.tp.topic)))
                    .with_partition_data(vec![data]),
            ),
        }
    }
    let txn = items
        .first()
        .and_then(|i| i.transactional_id.as_deref())
        .map(|t| TransactionalId(str_bytes(t)));
    ProduceRequest::default()
        .with_transactional_id(txn)
        .with_acks(acks)
        .with_timeout_ms(timeout_ms)
        .with_topic_data(topics)
}

/// The answer for one partition in a Produce response.
pub(crate) fn partition_response<'a>(
    resp: &'a ProduceResponse,
    tp: &TopicPartition,
) -> Option<&'a PartitionProduceResponse> {
    resp.responses
        .iter()
        .filter(|t| &*t.name.0 == tp.topic.as_str())
        .flat_map(|t| t.partition_responses.iter())
        .find(|p| p.index == tp.partition)
}

/// Sends one Produce wire request to `broker` (or to the leader of the
/// single item's partition, looked up first, when `broker` is `None`).
pub(crate) async fn produce(
    client: Client,
    broker: Option<i32>,
    items: Vec<ProduceItem>,
    acks: i16,
    timeout: Duration,
) -> ProduceResult {
    let failed = |e: NetError| {
        if is_unsupported(&e) {
            return ProduceResult::Refused(ErrorCode::UnsupportedVersion);
        }
        ProduceResult::Failed {
            outcome: lost(&e),
            refresh: e.needs_metadata_refresh(),
        }
    };
    let leader = match broker {
        Some(b) => b,
        None => {
            let Some(first) = items.first() else {
                return ProduceResult::Failed {
                    outcome: Outcome::NotSent,
                    refresh: false,
                };
            };
            match client.leader(&first.tp.topic, first.tp.partition).await {
                Ok(route) => route.leader,
                Err(e) => return failed(e),
            }
        }
    };
    let conn = match client.connection(leader).await {
        Ok(c) => c,
        Err(e) => return failed(e),
    };
    let flow = items.first().and_then(|i| i.flow);
    let version = match flow_version(conn.versions(), ApiKey::Produce, flow, 11, 12) {
        Ok(v) => v,
        Err(e) => return failed(e),
    };
    let timeout_ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
    let req = produce_request(&items, acks, timeout_ms);
    let opts = SendOptions {
        version: Some(version),
        timeout: None,
    };
    if acks == 0 {
        return match conn.send_without_response(&req, opts).await {
            Ok(()) => ProduceResult::Written { version },
            Err(e) => failed(e),
        };
    }
    match conn.send_with(&req, opts).await {
        Ok(response) => ProduceResult::Answered {
            version,
            response,
            leader,
        },
        Err(e) => failed(e),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use exactly_codec::messages::api_versions_response::{ApiVersion, FinalizedFeatureKey};
    use exactly_codec::messages::ApiVersionsResponse;

    fn table(produce_max: i16, tv: i16) -> VersionTable {
        let api = |k: ApiKey, max: i16| {
            ApiVersion::default()
                .with_api_key(k as i16)
                .with_min_version(0)
                .with_max_version(max)
        };
        let resp = ApiVersionsResponse::default()
            .with_api_keys(vec![
                api(ApiKey::Produce, produce_max),
                api(ApiKey::EndTxn, 5),
                api(ApiKey::TxnOffsetCommit, 5),
                api(ApiKey::InitProducerId, 5),
            ])
            .with_finalized_features(vec![FinalizedFeatureKey::default()
                .with_name("transaction.version".into())
                .with_max_version_level(tv)
                .with_min_version_level(tv)]);
        VersionTable::from_response(&resp).unwrap()
    }

    /// Issue 16 item 4: a Produce response that omits a partition gives
    /// `None` (the driver then treats the batch as maybe written and
    /// resends it with its sequence, so idempotence dedups it); one that
    /// repeats a partition is read at its first answer only; a base offset
    /// of -1 passes through (delivered without an offset).
    #[test]
    fn produce_responses_that_omit_or_repeat_a_partition() {
        use exactly_codec::messages::produce_response::TopicProduceResponse;
        let p = |index: i32, base: i64| {
            PartitionProduceResponse::default()
                .with_index(index)
                .with_base_offset(base)
        };
        let resp = ProduceResponse::default().with_responses(vec![TopicProduceResponse::default()
            .with_name(TopicName(StrBytes::from_static_str("t")))
            .with_partition_responses(vec![p(0, 10), p(0, 99), p(2, -1)])]);
        let tp = |n: i32| TopicPartition::new("t", n);
        assert_eq!(partition_response(&resp, &tp(0)).unwrap().base_offset, 10);
        assert!(partition_response(&resp, &tp(1)).is_none());
        assert_eq!(partition_response(&resp, &tp(2)).unwrap().base_offset, -1);
        assert!(partition_response(&resp, &TopicPartition::new("u", 0)).is_none());
    }

    #[test]
    fn versions_follow_the_flow() {
        let t = table(13, 2);
        assert_eq!(flow_version(&t, ApiKey::Produce, None, 11, 12).unwrap(), 12);
        assert_eq!(
            flow_version(&t, ApiKey::Produce, Some(Flow::V1), 11, 12).unwrap(),
            11
        );
        assert_eq!(
            flow_version(&t, ApiKey::Produce, Some(Flow::V2), 11, 12).unwrap(),
            12
        );
        assert_eq!(
            flow_version(&t, ApiKey::EndTxn, Some(Flow::V1), 4, 5).unwrap(),
            4
        );
        assert_eq!(
            flow_version(&t, ApiKey::EndTxn, Some(Flow::V2), 4, 5).unwrap(),
            5
        );
        let old = table(9, 0);
        assert!(is_unsupported(
            &flow_version(&old, ApiKey::Produce, Some(Flow::V2), 11, 12).unwrap_err()
        ));
        let info = broker_info(&t);
        assert_eq!(info.transaction_version, 2);
        assert_eq!(info.produce, 12);
        assert_eq!(info.flow(), Flow::V2);
        assert_eq!(broker_info(&table(13, 1)).flow(), Flow::V1);
    }

    #[test]
    fn produce_request_groups_by_topic() {
        let item = |topic: &str, p: i32, id: u64| ProduceItem {
            id: RequestId(id),
            tp: TopicPartition::new(topic, p),
            batch: BatchId(id),
            bytes: Bytes::from_static(b"batch"),
            flow: None,
            transactional_id: Some("tx".into()),
            generation: 1,
        };
        let req = produce_request(
            &[item("a", 0, 1), item("b", 0, 2), item("a", 1, 3)],
            -1,
            30_000,
        );
        assert_eq!(req.acks, -1);
        assert_eq!(req.timeout_ms, 30_000);
        assert_eq!(
            req.transactional_id.as_ref().map(|t| t.0.to_string()),
            Some("tx".into())
        );
        let shape: Vec<(String, Vec<i32>)> = req
            .topic_data
            .iter()
            .map(|t| {
                (
                    t.name.0.to_string(),
                    t.partition_data.iter().map(|p| p.index).collect(),
                )
            })
            .collect();
        assert_eq!(shape, vec![("a".into(), vec![0, 1]), ("b".into(), vec![0])]);
    }
}
