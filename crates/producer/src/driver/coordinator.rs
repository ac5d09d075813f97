//! The transaction coordinator's and group coordinator's requests
//! (FindCoordinator, InitProducerId, AddPartitionsToTxn, AddOffsetsToTxn,
//! TxnOffsetCommit, EndTxn, DescribeTransactions) mapped to kafka-protocol
//! structs and back; versions as `wire.rs` says.

use exactly_codec::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use exactly_codec::messages::txn_offset_commit_request::{
    TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use exactly_codec::messages::{
    AddOffsetsToTxnRequest, AddPartitionsToTxnRequest, ApiKey, DescribeTransactionsRequest,
    EndTxnRequest, GroupId, InitProducerIdRequest, ProducerId, TopicName, TransactionalId,
    TxnOffsetCommitRequest,
};
use exactly_codec::{CodecError, ErrorCode};
use exactly_net::{Client, Connection, NetError};
use exactly_txn::{
    BrokerInfo, OffsetCommit, Outcome, ProducerIdentity, Request, RequestId, Response, Target,
    TopicPartition,
};

use super::wire::{broker_info, flow_version, is_unsupported, lost, str_bytes};

/// What a coordinator request came to: the outcome for the core, and what
/// the connection said about the broker's versions (with the features epoch,
/// newer wins).
#[derive(Debug)]
pub(crate) struct CoordinatorDone {
    pub(crate) id: RequestId,
    pub(crate) outcome: Outcome,
    pub(crate) info: Option<(i64, BrokerInfo)>,
}

fn error(code: i16) -> Option<ErrorCode> {
    ErrorCode::from_code(code)
}

/// The response the broker would give with `code` for `req` (used when a
/// request cannot be sent at any version the broker takes).
fn refused(req: &Request, code: ErrorCode) -> Response {
    let e = Some(code);
    match req {
        Request::FindCoordinator { .. } => Response::FindCoordinator { error: e, node: -1 },
        Request::InitProducerId { .. } => Response::InitProducerId {
            error: e,
            identity: ProducerIdentity::new(-1, -1),
        },
        Request::AddPartitionsToTxn { partitions, .. } => Response::AddPartitionsToTxn {
            results: partitions.iter().map(|p| (p.clone(), e)).collect(),
        },
        Request::AddOffsetsToTxn { .. } => Response::AddOffsetsToTxn { error: e },
        Request::TxnOffsetCommit { offsets, .. } => Response::TxnOffsetCommit {
            results: offsets.iter().map(|o| (o.partition.clone(), e)).collect(),
        },
        Request::EndTxn { .. } => Response::EndTxn {
            error: e,
            identity: None,
        },
        Request::DescribeTransactions { .. } => Response::DescribeTransactions {
            error: e,
            completing: false,
        },
        Request::Produce { .. } => Response::Produce {
            error: e,
            base_offset: -1,
            log_start_offset: -1,
        },
    }
}

/// Sends one coordinator request (anything but Produce) and maps the answer.
pub(crate) async fn coordinator(
    client: Client,
    id: RequestId,
    target: Target,
    req: Request,
) -> CoordinatorDone {
    let done = |outcome, info| CoordinatorDone { id, outcome, info };
    if let Request::FindCoordinator { key_type, key } = &req {
        // One lookup, no retry (the core retries, with its backoff); net
        // records the coordinator's address for `connection(node)`.
        let outcome = match client
            .find_coordinators_once(*key_type, &[key.as_str()])
            .await
        {
            Ok(mut all) => match all.remove(key.as_str()) {
                Some(Ok(c)) => received(
                    0,
                    Response::FindCoordinator {
                        error: None,
                        node: c.broker_id,
                    },
                ),
                Some(Err(NetError::Kafka { code, .. })) => received(
                    0,
                    Response::FindCoordinator {
                        error: Some(code),
                        node: -1,
                    },
                ),
                Some(Err(e)) => lost(&e),
                None => received(
                    0,
                    Response::FindCoordinator {
                        error: Some(ErrorCode::CoordinatorNotAvailable),
                        node: -1,
                    },
                ),
            },
            Err(e) => lost(&e),
        };
        return done(outcome, None);
    }
    let conn = match &target {
        Target::TransactionCoordinator(node) | Target::GroupCoordinator { node, .. } => {
            client.connection(*node).await
        }
        Target::AnyBroker | Target::Leader(_) => client.any_connection().await,
    };
    let conn = match conn {
        Ok(c) => c,
        Err(e) => return done(lost(&e), None),
    };
    let info = Some((
        conn.versions().finalized_features_epoch(),
        broker_info(conn.versions()),
    ));
    let outcome = match send_coordinator(&conn, &req).await {
        Ok((version, response)) => received(version, response),
        Err(e) if is_unsupported(&e) => received(-1, refused(&req, ErrorCode::UnsupportedVersion)),
        Err(e) => lost(&e),
    };
    done(outcome, info)
}

fn received(version: i16, response: Response) -> Outcome {
    Outcome::Received { version, response }
}

async fn send_coordinator(conn: &Connection, req: &Request) -> Result<(i16, Response), NetError> {
    match req {
        Request::InitProducerId {
            transactional_id,
            transaction_timeout_ms,
            current,
        } => {
            let v = conn.versions().pick_client(ApiKey::InitProducerId)?;
            let (pid, epoch) = match current {
                Some(c) if v >= 3 => (c.producer_id, c.epoch),
                _ => (-1, -1),
            };
            let r = InitProducerIdRequest::default()
                .with_transactional_id(
                    transactional_id
                        .as_deref()
                        .map(|t| TransactionalId(str_bytes(t))),
                )
                .with_transaction_timeout_ms(*transaction_timeout_ms)
                .with_producer_id(ProducerId(pid))
                .with_producer_epoch(epoch);
            let resp = conn.send_at(&r, v).await?;
            Ok((
                v,
                Response::InitProducerId {
                    error: error(resp.error_code),
                    identity: ProducerIdentity::new(resp.producer_id.0, resp.producer_epoch),
                },
            ))
        }
        Request::AddPartitionsToTxn {
            transactional_id,
            identity,
            partitions,
        } => {
            let v = conn.versions().pick_client(ApiKey::AddPartitionsToTxn)?;
            let mut topics: Vec<AddPartitionsToTxnTopic> = Vec::new();
            for tp in partitions {
                match topics.iter_mut().find(|t| &*t.name.0 == tp.topic.as_str()) {
                    Some(t) => t.partitions.push(tp.partition),
                    None => topics.push(
                        AddPartitionsToTxnTopic::default()
                            .with_name(TopicName(str_bytes(&tp.topic)))
                            .with_partitions(vec![tp.partition]),
                    ),
                }
            }
            let r = AddPartitionsToTxnRequest::default()
                .with_v3_and_below_transactional_id(TransactionalId(str_bytes(transactional_id)))
                .with_v3_and_below_producer_id(ProducerId(identity.producer_id))
                .with_v3_and_below_producer_epoch(identity.epoch)
                .with_v3_and_below_topics(topics);
            let resp = conn.send_at(&r, v).await?;
            let results = resp
                .results_by_topic_v3_and_below
                .iter()
                .flat_map(|t| {
                    t.results_by_partition.iter().map(move |p| {
                        (
                            TopicPartition::new(t.name.0.to_string(), p.partition_index),
                            error(p.partition_error_code),
                        )
                    })
                })
                .collect();
            Ok((v, Response::AddPartitionsToTxn { results }))
        }
        Request::AddOffsetsToTxn {
            transactional_id,
            identity,
            group_id,
        } => {
            let v = conn.versions().pick_client(ApiKey::AddOffsetsToTxn)?;
            let r = AddOffsetsToTxnRequest::default()
                .with_transactional_id(TransactionalId(str_bytes(transactional_id)))
                .with_producer_id(ProducerId(identity.producer_id))
                .with_producer_epoch(identity.epoch)
                .with_group_id(GroupId(str_bytes(group_id)));
            let resp = conn.send_at(&r, v).await?;
            Ok((
                v,
                Response::AddOffsetsToTxn {
                    error: error(resp.error_code),
                },
            ))
        }
        Request::TxnOffsetCommit {
            transactional_id,
            identity,
            group,
            offsets,
            flow,
        } => {
            let v = flow_version(conn.versions(), ApiKey::TxnOffsetCommit, Some(*flow), 4, 5)?;
            let r = TxnOffsetCommitRequest::default()
                .with_transactional_id(TransactionalId(str_bytes(transactional_id)))
                .with_group_id(GroupId(str_bytes(&group.group_id)))
                .with_producer_id(ProducerId(identity.producer_id))
                .with_producer_epoch(identity.epoch)
                .with_generation_id(group.generation_id)
                .with_member_id(str_bytes(&group.member_id))
                .with_group_instance_id(group.group_instance_id.as_deref().map(str_bytes))
                .with_topics(offset_topics(offsets));
            let resp = conn.send_at(&r, v).await?;
            let results = resp
                .topics
                .iter()
                .flat_map(|t| {
                    t.partitions.iter().map(move |p| {
                        (
                            TopicPartition::new(t.name.0.to_string(), p.partition_index),
                            error(p.error_code),
                        )
                    })
                })
                .collect();
            Ok((v, Response::TxnOffsetCommit { results }))
        }
        Request::EndTxn {
            transactional_id,
            identity,
            commit,
            flow,
        } => {
            let v = flow_version(conn.versions(), ApiKey::EndTxn, Some(*flow), 4, 5)?;
            let r = EndTxnRequest::default()
                .with_transactional_id(TransactionalId(str_bytes(transactional_id)))
                .with_producer_id(ProducerId(identity.producer_id))
                .with_producer_epoch(identity.epoch)
                .with_committed(*commit);
            let resp = conn.send_at(&r, v).await?;
            let next = (v >= 5 && resp.producer_id.0 >= 0 && resp.producer_epoch >= 0)
                .then(|| ProducerIdentity::new(resp.producer_id.0, resp.producer_epoch));
            Ok((
                v,
                Response::EndTxn {
                    error: error(resp.error_code),
                    identity: next,
                },
            ))
        }
        Request::DescribeTransactions { transactional_id } => {
            let v = conn.versions().pick_client(ApiKey::DescribeTransactions)?;
            let r = DescribeTransactionsRequest::default()
                .with_transactional_ids(vec![TransactionalId(str_bytes(transactional_id))]);
            let resp = conn.send_at(&r, v).await?;
            let state = resp
                .transaction_states
                .iter()
                .find(|s| &*s.transactional_id.0 == transactional_id.as_str());
            let response = match state {
                Some(s) => Response::DescribeTransactions {
                    error: error(s.error_code),
                    completing: is_completing(&s.transaction_state),
                },
                None => Response::DescribeTransactions {
                    error: Some(ErrorCode::TransactionalIdNotFound),
                    completing: false,
                },
            };
            Ok((v, response))
        }
        Request::FindCoordinator { .. } | Request::Produce { .. } => {
            Err(NetError::Codec(CodecError::Encode {
                api: req.api(),
                version: -1,
                reason: "not a coordinator request".into(),
            }))
        }
    }
}

/// Whether a DescribeTransactions state (the coordinator's
/// `TransactionState` names) is one in which the coordinator is still
/// writing the markers of a transaction that ended.
fn is_completing(state: &str) -> bool {
    matches!(
        state,
        "PrepareCommit" | "PrepareAbort" | "PrepareEpochFence"
    )
}

fn offset_topics(offsets: &[OffsetCommit]) -> Vec<TxnOffsetCommitRequestTopic> {
    let mut topics: Vec<TxnOffsetCommitRequestTopic> = Vec::new();
    for o in offsets {
        let p = TxnOffsetCommitRequestPartition::default()
            .with_partition_index(o.partition.partition)
            .with_committed_offset(o.offset)
            .with_committed_leader_epoch(o.leader_epoch.unwrap_or(-1))
            .with_committed_metadata(o.metadata.as_deref().map(str_bytes));
        match topics
            .iter_mut()
            .find(|t| &*t.name.0 == o.partition.topic.as_str())
        {
            Some(t) => t.partitions.push(p),
            None => topics.push(
                TxnOffsetCommitRequestTopic::default()
                    .with_name(TopicName(str_bytes(&o.partition.topic)))
                    .with_partitions(vec![p]),
            ),
        }
    }
    topics
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use exactly_txn::Flow;

    #[test]
    fn refused_answers_every_partition() {
        let req = Request::TxnOffsetCommit {
            transactional_id: "t".into(),
            identity: ProducerIdentity::new(1, 0),
            group: exactly_txn::GroupMetadata {
                group_id: "g".into(),
                generation_id: -1,
                member_id: String::new(),
                group_instance_id: None,
            },
            offsets: vec![OffsetCommit {
                partition: TopicPartition::new("in", 3),
                offset: 5,
                leader_epoch: None,
                metadata: None,
            }],
            flow: Flow::V2,
        };
        assert_eq!(
            refused(&req, ErrorCode::UnsupportedVersion),
            Response::TxnOffsetCommit {
                results: vec![(
                    TopicPartition::new("in", 3),
                    Some(ErrorCode::UnsupportedVersion)
                )]
            }
        );
    }

    #[test]
    fn describe_transactions_states_that_hold_the_next_transaction() {
        for s in ["PrepareCommit", "PrepareAbort", "PrepareEpochFence"] {
            assert!(is_completing(s), "{s}");
        }
        for s in [
            "Empty",
            "Ongoing",
            "CompleteCommit",
            "CompleteAbort",
            "Dead",
        ] {
            assert!(!is_completing(s), "{s}");
        }
    }
}
