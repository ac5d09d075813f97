//! The classic group protocol on the wire, for one member per group
//! (KIP-62's JoinGroup/SyncGroup/Heartbeat/LeaveGroup, KIP-394's
//! MEMBER_ID_REQUIRED), and the group's offsets: OffsetCommit, and
//! OffsetFetch with KIP-447's `require_stable` (UNSTABLE_OFFSET_COMMIT while
//! a transaction that commits offsets of the partition is open). Offsets a
//! transaction commits (TxnOffsetCommit) reach OffsetFetch only when its
//! commit markers are written; an abort drops them.
//!
//! One member per group: a JoinGroup by another member replaces the current
//! one (whose heartbeats then fail with UNKNOWN_MEMBER_ID) and starts a new
//! generation; the member is the leader and assigns to itself. Rebalances
//! among several members are a later step (docs/TESTKIT.md).

use bytes::Bytes;
use exactly_codec::messages::join_group_response::JoinGroupResponseMember;
use exactly_codec::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use exactly_codec::messages::offset_fetch_response::{
    OffsetFetchResponsePartition, OffsetFetchResponseTopic,
};
use exactly_codec::messages::{
    HeartbeatRequest, HeartbeatResponse, JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest,
    LeaveGroupResponse, OffsetCommitRequest, OffsetCommitResponse, OffsetFetchRequest,
    OffsetFetchResponse, ResponseKind, SyncGroupRequest, SyncGroupResponse, TopicName,
};
use exactly_codec::protocol::StrBytes;
use exactly_codec::ErrorCode;
use exactly_txn::TopicPartition;

use super::SimCluster;
use crate::broker::CState;

/// One group at the coordinator.
#[derive(Debug, Clone, Default)]
pub(super) struct Group {
    generation: i32,
    member: Option<String>,
    protocol_type: Option<String>,
    protocol: Option<String>,
    assignment: Bytes,
    next_member: u32,
}

impl Group {
    fn fresh_member(&mut self, group: &str) -> String {
        self.next_member += 1;
        format!("{group}-member-{}", self.next_member)
    }

    fn check(&self, generation: i32, member: &str) -> Option<ErrorCode> {
        if self.member.as_deref() != Some(member) {
            return Some(ErrorCode::UnknownMemberId);
        }
        if generation != self.generation {
            return Some(ErrorCode::IllegalGeneration);
        }
        None
    }
}

fn code(e: Option<ErrorCode>) -> i16 {
    e.map_or(0, ErrorCode::code)
}

impl SimCluster {
    pub(super) fn join_group(&self, r: JoinGroupRequest, version: i16) -> ResponseKind {
        let mut inner = self.lock();
        let name = r.group_id.0.to_string();
        let g = inner.groups.entry(name.clone()).or_default();
        let mut member = r.member_id.to_string();
        if member.is_empty() {
            member = g.fresh_member(&name);
            if version >= 4 {
                // KIP-394: the member must come back with its id.
                return ResponseKind::JoinGroup(
                    JoinGroupResponse::default()
                        .with_error_code(ErrorCode::MemberIdRequired.code())
                        .with_generation_id(-1)
                        .with_member_id(StrBytes::from_string(member)),
                );
            }
        }
        let Some(protocol) = r.protocols.first() else {
            return ResponseKind::JoinGroup(
                JoinGroupResponse::default()
                    .with_error_code(ErrorCode::InconsistentGroupProtocol.code())
                    .with_generation_id(-1),
            );
        };
        g.generation += 1;
        g.member = Some(member.clone());
        g.protocol_type = Some(r.protocol_type.to_string());
        g.protocol = Some(protocol.name.to_string());
        g.assignment = Bytes::new();
        let body = JoinGroupResponse::default()
            .with_generation_id(g.generation)
            .with_protocol_type(Some(r.protocol_type.clone()))
            .with_protocol_name(Some(protocol.name.clone()))
            .with_leader(StrBytes::from_string(member.clone()))
            .with_member_id(StrBytes::from_string(member.clone()))
            .with_members(vec![JoinGroupResponseMember::default()
                .with_member_id(StrBytes::from_string(member))
                .with_group_instance_id(r.group_instance_id.clone())
                .with_metadata(protocol.metadata.clone())]);
        let generation = g.generation;
        // The model checks TxnOffsetCommit's generation against this.
        inner.broker.group_generation = generation;
        ResponseKind::JoinGroup(body)
    }

    pub(super) fn sync_group(&self, r: SyncGroupRequest) -> ResponseKind {
        let mut inner = self.lock();
        let g = inner.groups.entry(r.group_id.0.to_string()).or_default();
        let member = r.member_id.to_string();
        let mut body = SyncGroupResponse::default();
        match g.check(r.generation_id, &member) {
            Some(e) => body = body.with_error_code(e.code()),
            None => {
                if let Some(a) = r.assignments.iter().find(|a| a.member_id == r.member_id) {
                    g.assignment = a.assignment.clone();
                }
                body = body
                    .with_protocol_type(g.protocol_type.clone().map(StrBytes::from_string))
                    .with_protocol_name(g.protocol.clone().map(StrBytes::from_string))
                    .with_assignment(g.assignment.clone());
            }
        }
        ResponseKind::SyncGroup(body)
    }

    pub(super) fn heartbeat(&self, r: HeartbeatRequest) -> ResponseKind {
        let mut inner = self.lock();
        let g = inner.groups.entry(r.group_id.0.to_string()).or_default();
        let e = g.check(r.generation_id, r.member_id.as_str());
        ResponseKind::Heartbeat(HeartbeatResponse::default().with_error_code(code(e)))
    }

    pub(super) fn leave_group(&self, r: LeaveGroupRequest) -> ResponseKind {
        let mut inner = self.lock();
        let g = inner.groups.entry(r.group_id.0.to_string()).or_default();
        // v0-2 name one member; v3+ a list.
        let mut leaving: Vec<String> = r.members.iter().map(|m| m.member_id.to_string()).collect();
        if leaving.is_empty() {
            leaving.push(r.member_id.to_string());
        }
        let mut body = LeaveGroupResponse::default();
        let mut results = Vec::new();
        for m in &leaving {
            let e = if g.member.as_deref() == Some(m.as_str()) {
                g.member = None;
                g.generation += 1;
                None
            } else {
                Some(ErrorCode::UnknownMemberId)
            };
            results.push(
                exactly_codec::messages::leave_group_response::MemberResponse::default()
                    .with_member_id(StrBytes::from_string(m.clone()))
                    .with_error_code(code(e)),
            );
            if r.members.is_empty() {
                body = body.with_error_code(code(e));
            }
        }
        ResponseKind::LeaveGroup(body.with_members(results))
    }

    pub(super) fn offset_commit(&self, r: OffsetCommitRequest) -> ResponseKind {
        let mut inner = self.lock();
        let name = r.group_id.0.to_string();
        let g = inner.groups.entry(name.clone()).or_default();
        // Generation -1: a commit from outside the group (simple consumer).
        let e = match r.generation_id_or_member_epoch {
            -1 if g.member.is_none() => None,
            gen => g.check(gen, r.member_id.as_str()),
        };
        let mut topics = Vec::new();
        for t in &r.topics {
            let mut parts = Vec::new();
            for p in &t.partitions {
                if e.is_none() {
                    let tp = TopicPartition::new(t.name.0.as_str(), p.partition_index);
                    inner
                        .broker
                        .committed_offsets
                        .insert((name.clone(), tp), p.committed_offset);
                }
                parts.push(
                    OffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(code(e)),
                );
            }
            topics.push(
                OffsetCommitResponseTopic::default()
                    .with_name(t.name.clone())
                    .with_partitions(parts),
            );
        }
        ResponseKind::OffsetCommit(OffsetCommitResponse::default().with_topics(topics))
    }

    pub(super) fn offset_fetch(&self, r: OffsetFetchRequest) -> ResponseKind {
        let mut inner = self.lock();
        let now = Self::now(&inner);
        inner.broker.complete_due(now);
        let group = r.group_id.0.to_string();
        let asked: Vec<(TopicName, Vec<i32>)> = match &r.topics {
            Some(ts) => ts
                .iter()
                .map(|t| (t.name.clone(), t.partition_indexes.clone()))
                .collect(),
            None => {
                // Every partition the group has an offset for.
                let mut all: Vec<(TopicName, Vec<i32>)> = Vec::new();
                for (g, tp) in inner.broker.committed_offsets.keys() {
                    if *g != group {
                        continue;
                    }
                    match all.iter_mut().find(|(n, _)| n.0.as_str() == tp.topic) {
                        Some((_, ps)) => ps.push(tp.partition),
                        None => all.push((
                            TopicName(StrBytes::from_string(tp.topic.clone())),
                            vec![tp.partition],
                        )),
                    }
                }
                all
            }
        };
        let broker = &inner.broker;
        let pending = |tp: &TopicPartition| {
            broker.txns.values().any(|m| {
                matches!(m.state, CState::Ongoing | CState::Prepare { .. })
                    && m.pending_offsets
                        .iter()
                        .any(|(g, p, _)| *g == group && p == tp)
            })
        };
        let topics = asked
            .into_iter()
            .map(|(name, parts)| {
                let partitions = parts
                    .into_iter()
                    .map(|p| {
                        let tp = TopicPartition::new(name.0.as_str(), p);
                        let base = OffsetFetchResponsePartition::default()
                            .with_partition_index(p)
                            .with_committed_leader_epoch(-1)
                            .with_metadata(Some(StrBytes::from_static_str("")));
                        if r.require_stable && pending(&tp) {
                            return base
                                .with_committed_offset(-1)
                                .with_error_code(ErrorCode::UnstableOffsetCommit.code());
                        }
                        let offset = broker
                            .committed_offsets
                            .get(&(group.clone(), tp))
                            .copied()
                            .unwrap_or(-1);
                        base.with_committed_offset(offset)
                    })
                    .collect();
                OffsetFetchResponseTopic::default()
                    .with_name(name)
                    .with_partitions(partitions)
            })
            .collect();
        ResponseKind::OffsetFetch(OffsetFetchResponse::default().with_topics(topics))
    }
}
