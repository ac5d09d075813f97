//! The transaction coordinator's APIs on the wire (KIP-98, KIP-447,
//! transaction version 1): FindCoordinator, AddPartitionsToTxn (v0-3),
//! AddOffsetsToTxn, TxnOffsetCommit and EndTxn, translated to the model's
//! requests and back.

use exactly_codec::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnTopicResult,
};
use exactly_codec::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use exactly_codec::messages::{
    AddOffsetsToTxnRequest, AddOffsetsToTxnResponse, AddPartitionsToTxnRequest,
    AddPartitionsToTxnResponse, BrokerId, EndTxnRequest, EndTxnResponse, FindCoordinatorRequest,
    FindCoordinatorResponse, ProducerId, ResponseKind, TopicName, TxnOffsetCommitRequest,
    TxnOffsetCommitResponse,
};
use exactly_codec::protocol::StrBytes;
use exactly_codec::ErrorCode;
use exactly_txn::{
    Flow, GroupMetadata, OffsetCommit, ProducerIdentity, Request, Response, TopicPartition,
};

use super::SimCluster;

fn code(e: Option<ErrorCode>) -> i16 {
    e.map_or(0, ErrorCode::code)
}

/// The partitions of `results`, grouped by topic in first-seen order.
fn by_topic(results: &[(TopicPartition, Option<ErrorCode>)]) -> Vec<(String, Vec<(i32, i16)>)> {
    let mut out: Vec<(String, Vec<(i32, i16)>)> = Vec::new();
    for (tp, e) in results {
        match out.iter_mut().find(|(t, _)| *t == tp.topic) {
            Some((_, ps)) => ps.push((tp.partition, code(*e))),
            None => out.push((tp.topic.clone(), vec![(tp.partition, code(*e))])),
        }
    }
    out
}

impl SimCluster {
    pub(super) fn find_coordinator(&self, _r: FindCoordinatorRequest) -> ResponseKind {
        ResponseKind::FindCoordinator(
            FindCoordinatorResponse::default()
                .with_node_id(BrokerId(1))
                .with_host(StrBytes::from_static_str("sim-1"))
                .with_port(9092),
        )
    }

    pub(super) fn add_partitions(&self, r: AddPartitionsToTxnRequest) -> ResponseKind {
        let partitions = r
            .v3_and_below_topics
            .iter()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .map(move |p| TopicPartition::new(t.name.0.as_str(), *p))
            })
            .collect();
        let resp = self.apply(&Request::AddPartitionsToTxn {
            transactional_id: r.v3_and_below_transactional_id.0.to_string(),
            identity: ProducerIdentity::new(
                r.v3_and_below_producer_id.0,
                r.v3_and_below_producer_epoch,
            ),
            partitions,
        });
        let results = match resp {
            Response::AddPartitionsToTxn { results } => results,
            _ => Vec::new(),
        };
        let topics = by_topic(&results)
            .into_iter()
            .map(|(t, ps)| {
                AddPartitionsToTxnTopicResult::default()
                    .with_name(TopicName(StrBytes::from_string(t)))
                    .with_results_by_partition(
                        ps.into_iter()
                            .map(|(p, c)| {
                                AddPartitionsToTxnPartitionResult::default()
                                    .with_partition_index(p)
                                    .with_partition_error_code(c)
                            })
                            .collect(),
                    )
            })
            .collect();
        ResponseKind::AddPartitionsToTxn(
            AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(topics),
        )
    }

    pub(super) fn add_offsets(&self, r: AddOffsetsToTxnRequest) -> ResponseKind {
        let resp = self.apply(&Request::AddOffsetsToTxn {
            transactional_id: r.transactional_id.0.to_string(),
            identity: ProducerIdentity::new(r.producer_id.0, r.producer_epoch),
            group_id: r.group_id.0.to_string(),
        });
        let error = match resp {
            Response::AddOffsetsToTxn { error } => error,
            _ => Some(ErrorCode::UnknownServerError),
        };
        ResponseKind::AddOffsetsToTxn(
            AddOffsetsToTxnResponse::default().with_error_code(code(error)),
        )
    }

    pub(super) fn txn_offset_commit(&self, r: TxnOffsetCommitRequest) -> ResponseKind {
        let offsets = r
            .topics
            .iter()
            .flat_map(|t| {
                t.partitions.iter().map(move |p| OffsetCommit {
                    partition: TopicPartition::new(t.name.0.as_str(), p.partition_index),
                    offset: p.committed_offset,
                    leader_epoch: (p.committed_leader_epoch >= 0)
                        .then_some(p.committed_leader_epoch),
                    metadata: p.committed_metadata.as_ref().map(|m| m.to_string()),
                })
            })
            .collect();
        let resp = self.apply(&Request::TxnOffsetCommit {
            transactional_id: r.transactional_id.0.to_string(),
            identity: ProducerIdentity::new(r.producer_id.0, r.producer_epoch),
            group: GroupMetadata {
                group_id: r.group_id.0.to_string(),
                generation_id: r.generation_id,
                member_id: r.member_id.to_string(),
                group_instance_id: r.group_instance_id.map(|g| g.to_string()),
            },
            offsets,
            flow: Flow::V1,
        });
        let results = match resp {
            Response::TxnOffsetCommit { results } => results,
            _ => Vec::new(),
        };
        let topics = by_topic(&results)
            .into_iter()
            .map(|(t, ps)| {
                TxnOffsetCommitResponseTopic::default()
                    .with_name(TopicName(StrBytes::from_string(t)))
                    .with_partitions(
                        ps.into_iter()
                            .map(|(p, c)| {
                                TxnOffsetCommitResponsePartition::default()
                                    .with_partition_index(p)
                                    .with_error_code(c)
                            })
                            .collect(),
                    )
            })
            .collect();
        ResponseKind::TxnOffsetCommit(TxnOffsetCommitResponse::default().with_topics(topics))
    }

    pub(super) fn end_txn(&self, r: EndTxnRequest) -> ResponseKind {
        let resp = self.apply(&Request::EndTxn {
            transactional_id: r.transactional_id.0.to_string(),
            identity: ProducerIdentity::new(r.producer_id.0, r.producer_epoch),
            commit: r.committed,
            flow: Flow::V1,
        });
        let body = match resp {
            Response::EndTxn { error, identity } => {
                let mut b = EndTxnResponse::default().with_error_code(code(error));
                if let Some(i) = identity {
                    b = b
                        .with_producer_id(ProducerId(i.producer_id))
                        .with_producer_epoch(i.epoch);
                }
                b
            }
            _ => EndTxnResponse::default().with_error_code(ErrorCode::UnknownServerError.code()),
        };
        ResponseKind::EndTxn(body)
    }
}
