//! Joining the group (classic protocol): JoinGroup until
//! the coordinator completes the generation (KIP-394: a first JoinGroup
//! without a member id is answered MEMBER_ID_REQUIRED with one to use), the
//! leader runs the assignor over every member's subscription, and SyncGroup
//! hands each member its partitions. Under a cooperative assignor (KIP-429)
//! the member keeps its partitions while it rejoins and names them, with
//! its generation, in its subscription.
//!
//! The join runs as a task of its own so that `poll` can return on its
//! timeout while the coordinator waits for the rest of the group; the task's
//! result carries the generation it was issued under.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use exactly_codec::messages::join_group_request::JoinGroupRequestProtocol;
use exactly_codec::messages::sync_group_request::SyncGroupRequestAssignment;
use exactly_codec::messages::{ApiKey, GroupId, JoinGroupRequest, SyncGroupRequest};
use exactly_codec::protocol::StrBytes;
use exactly_codec::ErrorCode;
use exactly_net::Client;
use tracing::Instrument;

use super::assignor::{assign, Member};
use super::coordinator::CoordinatorLink;
use super::protocol::{Assignment, Subscription};
use crate::config::AssignmentStrategy;
use crate::error::{is_coordinator_moved, ConsumerError};
use crate::TopicPartition;

/// What a join needs.
#[derive(Debug, Clone)]
pub struct JoinParams {
    /// `group.instance.id`.
    pub instance_id: Option<String>,
    /// The member id from an earlier join (empty for a new member).
    pub member_id: String,
    /// `session.timeout.ms`.
    pub session_timeout: Duration,
    /// `rebalance.timeout.ms`.
    pub rebalance_timeout: Duration,
    /// `partition.assignment.strategy`.
    pub strategies: Vec<AssignmentStrategy>,
    /// The subscribed topics (sorted).
    pub topics: Vec<String>,
    /// `retry.backoff.ms`.
    pub retry_backoff: Duration,
    /// Why we (re)join, for the broker's log (JoinGroup v8+, KIP-800).
    pub reason: &'static str,
    /// The partitions we own while rejoining (cooperative; empty when
    /// eager, since everything was revoked first).
    pub owned: Vec<TopicPartition>,
    /// The generation we owned them in (-1 when none).
    pub generation: i32,
    /// `client.rack` (subscription v3, KIP-881: rack-aware assignors).
    pub rack: Option<String>,
}

/// The member metadata a join sends: the topics, what is owned of them, the
/// generation and the rack.
fn subscription(p: &JoinParams) -> Subscription {
    let mut owned: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    for tp in &p.owned {
        if p.topics.contains(&tp.topic) {
            owned
                .entry(tp.topic.clone())
                .or_default()
                .push(tp.partition);
        }
    }
    Subscription {
        topics: p.topics.clone(),
        user_data: None,
        owned,
        generation: p.generation,
        rack: p.rack.clone(),
    }
}

/// A completed join.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Joined {
    /// The generation.
    pub generation: i32,
    /// Our member id.
    pub member_id: String,
    /// Whether we led this generation.
    pub leader: bool,
    /// The assignor the coordinator chose.
    pub protocol: String,
    /// Our partitions (only of subscribed topics).
    pub assignment: Vec<TopicPartition>,
    /// The subscription this join was made with.
    pub topics: Vec<String>,
    /// As leader: the partition count of each subscribed topic the
    /// assignment was computed over (a change means a new assignment).
    pub assigned_counts: Option<BTreeMap<String, i32>>,
    /// The coordinator forgot us during the join: the partitions we owned
    /// are lost (another member may have them), not ours to revoke.
    pub owned_lost: bool,
}

fn group_error(api: ApiKey, code: ErrorCode, message: Option<String>) -> ConsumerError {
    ConsumerError::Kafka {
        api,
        code,
        partition: None,
        message,
    }
}

/// Joins the group; retries what can be retried, returns what cannot.
pub async fn join(
    link: Arc<CoordinatorLink>,
    client: Client,
    mut p: JoinParams,
) -> Result<Joined, ConsumerError> {
    let group = link.group_id().to_owned();
    let join_timeout = p.rebalance_timeout + Duration::from_secs(5);
    let mut failures = 0u32;
    let mut owned_lost = false;
    loop {
        if failures > 0 {
            tokio::time::sleep(p.retry_backoff * failures.min(10)).await;
        }
        let metadata = Bytes::from(subscription(&p).encode());
        let protocols: Vec<JoinGroupRequestProtocol> = p
            .strategies
            .iter()
            .map(|s| {
                JoinGroupRequestProtocol::default()
                    .with_name(StrBytes::from_static_str(s.name()))
                    .with_metadata(metadata.clone())
            })
            .collect();
        let req = |v: i16| {
            let mut r = JoinGroupRequest::default()
                .with_group_id(GroupId(StrBytes::from_string(group.clone())))
                .with_session_timeout_ms(millis(p.session_timeout))
                .with_rebalance_timeout_ms(millis(p.rebalance_timeout))
                .with_member_id(StrBytes::from_string(p.member_id.clone()))
                .with_protocol_type(StrBytes::from_static_str("consumer"))
                .with_protocols(protocols);
            if v >= 5 {
                r.group_instance_id = p.instance_id.clone().map(StrBytes::from_string);
            }
            if v >= 8 {
                r.reason = Some(StrBytes::from_static_str(p.reason));
            }
            r
        };
        let (resp, coordinator) = match link.call(req, Some(join_timeout)).await {
            Ok(r) => r,
            Err(e) if e.is_retriable() => {
                tracing::debug!(error = %e, "JoinGroup failed; retrying");
                failures += 1;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        if let Some(code) = ErrorCode::from_code(resp.error_code) {
            match code {
                ErrorCode::MemberIdRequired => {
                    p.member_id = resp.member_id.to_string();
                    continue;
                }
                ErrorCode::UnknownMemberId => {
                    p.member_id.clear();
                    owned_lost |= forget_owned(&mut p);
                    failures += 1;
                    continue;
                }
                c if is_coordinator_moved(c) => {
                    link.on_error(c, &coordinator).await;
                    failures += 1;
                    continue;
                }
                ErrorCode::CoordinatorLoadInProgress
                | ErrorCode::RebalanceInProgress
                | ErrorCode::IllegalGeneration
                | ErrorCode::RequestTimedOut => {
                    failures += 1;
                    continue;
                }
                c => return Err(group_error(ApiKey::JoinGroup, c, None)),
            }
        }
        let generation = resp.generation_id;
        let member_id = resp.member_id.to_string();
        let leader = !member_id.is_empty() && resp.leader.as_str() == member_id;
        let protocol = resp
            .protocol_name
            .as_ref()
            .map(|s| s.to_string())
            .unwrap_or_default();
        tracing::debug!(generation, %member_id, leader, %protocol, members = resp.members.len(), "joined");
        p.member_id.clone_from(&member_id);
        // KIP-814: a static leader that rejoined without a rebalance is told
        // to keep the current assignment rather than compute a new one.
        let mut assigned_counts = None;
        let assignments = if leader && !resp.skip_assignment {
            let strategy = AssignmentStrategy::parse(&protocol).ok_or_else(|| {
                group_error(
                    ApiKey::JoinGroup,
                    ErrorCode::InconsistentGroupProtocol,
                    Some(format!(
                        "the coordinator chose `{protocol}`, which we do not offer"
                    )),
                )
            })?;
            let (a, counts) = lead(&client, strategy, &resp.members)
                .instrument(tracing::debug_span!("assign", %protocol))
                .await?;
            assigned_counts = Some(counts);
            a
        } else {
            Vec::new()
        };
        let sync = |v: i16| {
            let mut r = SyncGroupRequest::default()
                .with_group_id(GroupId(StrBytes::from_string(group.clone())))
                .with_generation_id(generation)
                .with_member_id(StrBytes::from_string(member_id.clone()))
                .with_assignments(assignments);
            if v >= 3 {
                r.group_instance_id = p.instance_id.clone().map(StrBytes::from_string);
            }
            if v >= 5 {
                r.protocol_type = Some(StrBytes::from_static_str("consumer"));
                r.protocol_name = Some(StrBytes::from_string(protocol.clone()));
            }
            r
        };
        let (resp, coordinator) = match link.call(sync, Some(join_timeout)).await {
            Ok(r) => r,
            Err(e) if e.is_retriable() => {
                failures += 1;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        if let Some(code) = ErrorCode::from_code(resp.error_code) {
            match code {
                ErrorCode::RebalanceInProgress | ErrorCode::IllegalGeneration => continue,
                ErrorCode::UnknownMemberId => {
                    p.member_id.clear();
                    owned_lost |= forget_owned(&mut p);
                    continue;
                }
                c if is_coordinator_moved(c) => {
                    link.on_error(c, &coordinator).await;
                    failures += 1;
                    continue;
                }
                ErrorCode::CoordinatorLoadInProgress | ErrorCode::RequestTimedOut => {
                    failures += 1;
                    continue;
                }
                c => return Err(group_error(ApiKey::SyncGroup, c, None)),
            }
        }
        let mine = Assignment::decode(&resp.assignment).map_err(|e| {
            group_error(
                ApiKey::SyncGroup,
                ErrorCode::InconsistentGroupProtocol,
                Some(e.to_string()),
            )
        })?;
        let mut assignment = Vec::new();
        for (topic, parts) in mine.partitions {
            if !p.topics.contains(&topic) {
                tracing::warn!(%topic, "assigned a topic we did not subscribe to; ignored");
                continue;
            }
            let mut parts = parts;
            parts.sort_unstable();
            parts.dedup();
            assignment.extend(
                parts
                    .into_iter()
                    .map(|n| TopicPartition::new(topic.clone(), n)),
            );
        }
        return Ok(Joined {
            generation,
            member_id,
            leader,
            protocol,
            assignment,
            topics: p.topics,
            assigned_counts,
            owned_lost,
        });
    }
}

/// Stops claiming owned partitions (our membership is gone); whether there
/// were any.
fn forget_owned(p: &mut JoinParams) -> bool {
    p.generation = -1;
    !std::mem::take(&mut p.owned).is_empty()
}

fn millis(d: Duration) -> i32 {
    i32::try_from(d.as_millis()).unwrap_or(i32::MAX)
}

/// The leader's part: read every member's subscription, look the topics up,
/// run the assignor, and encode each member's assignment. Also returns the
/// partition counts the assignment was made over.
async fn lead(
    client: &Client,
    strategy: AssignmentStrategy,
    members: &[exactly_codec::messages::join_group_response::JoinGroupResponseMember],
) -> Result<(Vec<SyncGroupRequestAssignment>, BTreeMap<String, i32>), ConsumerError> {
    let mut ms = Vec::with_capacity(members.len());
    let mut topics = BTreeSet::new();
    for m in members {
        let sub = match Subscription::decode(&m.metadata) {
            Ok(s) => s,
            Err(e) => {
                // A member whose metadata we cannot read gets nothing rather
                // than breaking the whole group.
                tracing::warn!(member = %m.member_id.as_str(), error = %e, "unreadable subscription");
                Subscription::default()
            }
        };
        topics.extend(sub.topics.iter().cloned());
        ms.push(Member {
            member_id: m.member_id.to_string(),
            instance_id: m.group_instance_id.as_ref().map(|s| s.to_string()),
            topics: sub.topics,
            owned: sub.owned,
            generation: sub.generation,
        });
    }
    let names: Vec<&str> = topics.iter().map(String::as_str).collect();
    let view = client.refresh_metadata(&names).await?;
    let mut counts = BTreeMap::new();
    for t in &topics {
        match view.topic(t) {
            Some(info) if !info.partitions.is_empty() => {
                let n = i32::try_from(info.partitions.len()).unwrap_or(i32::MAX);
                counts.insert(t.clone(), n);
            }
            _ => tracing::debug!(topic = %t, "subscribed topic has no metadata; not assigned"),
        }
    }
    let plan = assign(strategy, &ms, &counts);
    let assignments = plan
        .into_iter()
        .map(|(member_id, partitions)| {
            SyncGroupRequestAssignment::default()
                .with_member_id(StrBytes::from_string(member_id))
                .with_assignment(Bytes::from(
                    Assignment {
                        partitions,
                        user_data: None,
                    }
                    .encode(),
                ))
        })
        .collect();
    Ok((assignments, counts))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// `client.rack` goes in the subscription (v3, KIP-881), and owned
    /// partitions of topics no longer subscribed are left out.
    #[test]
    fn the_subscription_carries_the_rack() {
        let p = JoinParams {
            instance_id: None,
            member_id: String::new(),
            session_timeout: Duration::from_secs(45),
            rebalance_timeout: Duration::from_secs(60),
            strategies: vec![AssignmentStrategy::Range],
            topics: vec!["t".into()],
            retry_backoff: Duration::from_millis(100),
            reason: "test",
            owned: vec![TopicPartition::new("t", 1), TopicPartition::new("gone", 0)],
            generation: 4,
            rack: Some("az-3".into()),
        };
        let decoded = Subscription::decode(&subscription(&p).encode()).unwrap();
        assert_eq!(decoded.rack.as_deref(), Some("az-3"));
        assert_eq!(decoded.generation, 4);
        assert_eq!(decoded.owned, BTreeMap::from([("t".to_owned(), vec![1])]));
        let none = JoinParams { rack: None, ..p };
        assert_eq!(
            Subscription::decode(&subscription(&none).encode())
                .unwrap()
                .rack,
            None
        );
    }
}
