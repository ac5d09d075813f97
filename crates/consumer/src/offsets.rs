//! Offsets: committed offsets (OffsetFetch, with `require_stable` under
//! `read_committed`, KIP-447), offset commits (OffsetCommit with the member's
//! generation, member id and instance id, KIP-345/KIP-447), and log offsets
//! for `auto.offset.reset` and `end_offsets` (ListOffsets, KIP-98 isolation).
//!
//! `require_stable` makes the coordinator answer UNSTABLE_OFFSET_COMMIT while
//! a transaction that commits offsets for the partition is pending; the
//! consumer waits (retrying) until the transaction ends, so a new owner of a
//! partition never starts from an offset an in-flight transaction is about
//! to replace.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use exactly_codec::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use exactly_codec::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use exactly_codec::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use exactly_codec::messages::{
    ApiKey, BrokerId, GroupId, ListOffsetsRequest, OffsetCommitRequest, OffsetFetchRequest,
    TopicName,
};
use exactly_codec::protocol::StrBytes;
use exactly_codec::ErrorCode;
use exactly_net::{Client, SendOptions};
use tokio::time::Instant;

use crate::config::IsolationLevel;
use crate::error::{is_coordinator_moved, is_group_fenced, ConsumerError};
use crate::group::coordinator::CoordinatorLink;
use crate::{OffsetCommit, TopicPartition};

/// A committed offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetAndMetadata {
    /// The next offset to consume.
    pub offset: i64,
    /// The leader epoch of the last consumed record, if it was committed.
    pub leader_epoch: Option<i32>,
    /// The metadata string committed with it.
    pub metadata: Option<String>,
}

/// The member fields an offset commit carries (KIP-447); `None` commits as
/// a simple consumer (generation -1), which only a group without active
/// members accepts.
#[derive(Debug, Clone)]
pub(crate) struct CommitIdentity {
    pub generation: i32,
    pub member_id: String,
    pub instance_id: Option<String>,
}

fn group_topics(parts: &[TopicPartition]) -> BTreeMap<&str, Vec<i32>> {
    let mut m: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for tp in parts {
        m.entry(tp.topic.as_str()).or_default().push(tp.partition);
    }
    m
}

fn timed_out(what: &'static str, started: Instant) -> ConsumerError {
    ConsumerError::Timeout {
        what,
        after: started.elapsed(),
    }
}

/// Sleeps `backoff` unless that passes `deadline`; false when out of time.
async fn backoff_until(backoff: Duration, deadline: Instant) -> bool {
    if Instant::now() + backoff >= deadline {
        return false;
    }
    tokio::time::sleep(backoff).await;
    true
}

type PartitionAnswer = (i32, i64, i32, Option<String>, i16);

/// Reads the committed offsets of `partitions`, retrying (with `backoff`)
/// while the coordinator moves, loads, or a transaction holding offsets for
/// them is pending (`require_stable`), until `deadline`.
pub(crate) async fn fetch_committed(
    link: &CoordinatorLink,
    partitions: &[TopicPartition],
    require_stable: bool,
    deadline: Instant,
    backoff: Duration,
) -> Result<BTreeMap<TopicPartition, Option<OffsetAndMetadata>>, ConsumerError> {
    let started = Instant::now();
    let by_topic = group_topics(partitions);
    let group = link.group_id().to_owned();
    loop {
        let req = |v: i16| {
            let mut r = OffsetFetchRequest::default();
            if v >= 7 {
                r.require_stable = require_stable;
            }
            if v >= 8 {
                r.groups = vec![OffsetFetchRequestGroup::default()
                    .with_group_id(GroupId(StrBytes::from_string(group.clone())))
                    .with_member_id(None)
                    .with_member_epoch(-1)
                    .with_topics(Some(
                        by_topic
                            .iter()
                            .map(|(t, ps)| {
                                OffsetFetchRequestTopics::default()
                                    .with_name(TopicName(StrBytes::from_string((*t).to_owned())))
                                    .with_partition_indexes(ps.clone())
                            })
                            .collect(),
                    ))];
            } else {
                r.group_id = GroupId(StrBytes::from_string(group.clone()));
                r.topics = Some(
                    by_topic
                        .iter()
                        .map(|(t, ps)| {
                            OffsetFetchRequestTopic::default()
                                .with_name(TopicName(StrBytes::from_string((*t).to_owned())))
                                .with_partition_indexes(ps.clone())
                        })
                        .collect(),
                );
            }
            r
        };
        let (resp, coordinator) = match link.call(req, None).await {
            Ok(r) => r,
            Err(e) if e.is_retriable() => {
                if backoff_until(backoff, deadline).await {
                    continue;
                }
                return Err(e.into());
            }
            Err(e) => return Err(e.into()),
        };
        // Flatten both response shapes.
        let mut group_code = ErrorCode::from_code(resp.error_code);
        let mut answers: Vec<(String, PartitionAnswer)> = Vec::new();
        if resp.groups.is_empty() {
            for t in &resp.topics {
                for p in &t.partitions {
                    answers.push((
                        t.name.to_string(),
                        (
                            p.partition_index,
                            p.committed_offset,
                            p.committed_leader_epoch,
                            p.metadata.as_ref().map(|m| m.to_string()),
                            p.error_code,
                        ),
                    ));
                }
            }
        } else {
            for g in resp.groups.iter().filter(|g| g.group_id.as_str() == group) {
                group_code = group_code.or(ErrorCode::from_code(g.error_code));
                for t in &g.topics {
                    for p in &t.partitions {
                        answers.push((
                            t.name.to_string(),
                            (
                                p.partition_index,
                                p.committed_offset,
                                p.committed_leader_epoch,
                                p.metadata.as_ref().map(|m| m.to_string()),
                                p.error_code,
                            ),
                        ));
                    }
                }
            }
        }
        let retry = match group_code {
            None => false,
            Some(c) if is_coordinator_moved(c) => {
                link.on_error(c, &coordinator).await;
                true
            }
            Some(ErrorCode::CoordinatorLoadInProgress | ErrorCode::UnstableOffsetCommit) => true,
            Some(c) => return Err(ConsumerError::kafka(ApiKey::OffsetFetch, c, None)),
        };
        let mut out = BTreeMap::new();
        let mut unstable = false;
        if !retry {
            for (topic, (p, offset, epoch, metadata, code)) in answers {
                let tp = TopicPartition::new(topic, p);
                if !partitions.contains(&tp) {
                    continue;
                }
                match ErrorCode::from_code(code) {
                    None => {}
                    Some(ErrorCode::UnstableOffsetCommit) => {
                        unstable = true;
                        continue;
                    }
                    // As the reference client: no offset for an unknown partition.
                    Some(ErrorCode::UnknownTopicOrPartition) => {
                        out.insert(tp, None);
                        continue;
                    }
                    Some(c) => return Err(ConsumerError::kafka(ApiKey::OffsetFetch, c, Some(tp))),
                }
                let v = (offset >= 0).then(|| OffsetAndMetadata {
                    offset,
                    leader_epoch: (epoch >= 0).then_some(epoch),
                    metadata,
                });
                out.insert(tp, v);
            }
        }
        if !retry && !unstable {
            // Partitions the coordinator did not mention have no offset.
            for tp in partitions {
                out.entry(tp.clone()).or_insert(None);
            }
            return Ok(out);
        }
        if unstable {
            tracing::debug!(%group, "committed offsets pending in a transaction; waiting");
        }
        if !backoff_until(backoff, deadline).await {
            return Err(timed_out(
                if unstable {
                    // Say why: a transaction holding offsets of these
                    // partitions never ended (see RELIABILITY.md, T4).
                    "OffsetFetch (the group's offsets stayed pending in an open transaction: \
                     UNSTABLE_OFFSET_COMMIT)"
                } else {
                    "OffsetFetch"
                },
                started,
            ));
        }
    }
}

/// Commits `offsets` for the group, retrying what can be retried until
/// `deadline`. A refusal by the group (the generation moved on) is
/// [`ConsumerError::CommitFailed`].
pub(crate) async fn commit(
    link: &CoordinatorLink,
    who: Option<&CommitIdentity>,
    offsets: &[OffsetCommit],
    deadline: Instant,
    backoff: Duration,
) -> Result<(), ConsumerError> {
    if offsets.is_empty() {
        return Ok(());
    }
    let started = Instant::now();
    let group = link.group_id().to_owned();
    let mut by_topic: BTreeMap<&str, Vec<&OffsetCommit>> = BTreeMap::new();
    for o in offsets {
        by_topic
            .entry(o.partition.topic.as_str())
            .or_default()
            .push(o);
    }
    loop {
        let req = |v: i16| {
            let mut r = OffsetCommitRequest::default()
                .with_group_id(GroupId(StrBytes::from_string(group.clone())))
                .with_generation_id_or_member_epoch(who.map_or(-1, |w| w.generation))
                .with_member_id(StrBytes::from_string(
                    who.map(|w| w.member_id.clone()).unwrap_or_default(),
                ))
                .with_topics(
                    by_topic
                        .iter()
                        .map(|(t, os)| {
                            OffsetCommitRequestTopic::default()
                                .with_name(TopicName(StrBytes::from_string((*t).to_owned())))
                                .with_partitions(
                                    os.iter()
                                        .map(|o| {
                                            OffsetCommitRequestPartition::default()
                                                .with_partition_index(o.partition.partition)
                                                .with_committed_offset(o.offset)
                                                .with_committed_leader_epoch(
                                                    o.leader_epoch.unwrap_or(-1),
                                                )
                                                .with_committed_metadata(Some(
                                                    StrBytes::from_string(
                                                        o.metadata.clone().unwrap_or_default(),
                                                    ),
                                                ))
                                        })
                                        .collect(),
                                )
                        })
                        .collect(),
                );
            if v >= 7 {
                r.group_instance_id = who
                    .and_then(|w| w.instance_id.clone())
                    .map(StrBytes::from_string);
            }
            r
        };
        let (resp, coordinator) = match link.call(req, None).await {
            Ok(r) => r,
            Err(e) if e.is_retriable() => {
                if backoff_until(backoff, deadline).await {
                    continue;
                }
                return Err(e.into());
            }
            Err(e) => return Err(e.into()),
        };
        let mut retry = false;
        let mut answered = 0usize;
        for t in &resp.topics {
            for p in &t.partitions {
                answered += 1;
                let Some(code) = ErrorCode::from_code(p.error_code) else {
                    continue;
                };
                if is_coordinator_moved(code) {
                    link.on_error(code, &coordinator).await;
                    retry = true;
                } else if matches!(
                    code,
                    ErrorCode::CoordinatorLoadInProgress | ErrorCode::RequestTimedOut
                ) {
                    retry = true;
                } else if is_group_fenced(code) {
                    return Err(ConsumerError::CommitFailed { code });
                } else {
                    return Err(ConsumerError::kafka(
                        ApiKey::OffsetCommit,
                        code,
                        Some(TopicPartition::new(t.name.to_string(), p.partition_index)),
                    ));
                }
            }
        }
        if !retry {
            if answered < offsets.len() {
                tracing::debug!(
                    answered,
                    asked = offsets.len(),
                    "OffsetCommit answered fewer partitions than asked"
                );
            }
            tracing::debug!(%group, partitions = offsets.len(), "offsets committed");
            return Ok(());
        }
        if !backoff_until(backoff, deadline).await {
            return Err(timed_out("OffsetCommit", started));
        }
    }
}

/// What ListOffsets said for one partition.
pub(crate) type ListedOffset = Result<(i64, Option<i32>), ErrorCode>;

/// One round of ListOffsets: asks each partition's leader once for the
/// offset at `timestamp` (-2 earliest, -1 latest). Partitions whose leader
/// is unknown or unreachable come back as a retriable error code.
pub(crate) async fn list_offsets(
    client: &Client,
    partitions: &[(TopicPartition, i64)],
    isolation: IsolationLevel,
) -> HashMap<TopicPartition, ListedOffset> {
    let view = client.view();
    let mut out = HashMap::new();
    let mut by_leader: BTreeMap<i32, Vec<(&TopicPartition, i64, exactly_net::metadata::Route)>> =
        BTreeMap::new();
    for (tp, ts) in partitions {
        match view.route(&tp.topic, tp.partition) {
            Some(r) => by_leader.entry(r.leader).or_default().push((tp, *ts, r)),
            None => {
                out.insert(tp.clone(), Err(ErrorCode::LeaderNotAvailable));
            }
        }
    }
    let timeout = client.config().request_timeout();
    let calls = by_leader.into_iter().map(|(leader, parts)| async move {
        let mut topics: BTreeMap<&str, Vec<ListOffsetsPartition>> = BTreeMap::new();
        for (tp, ts, r) in &parts {
            topics.entry(tp.topic.as_str()).or_default().push(
                ListOffsetsPartition::default()
                    .with_partition_index(tp.partition)
                    .with_current_leader_epoch(r.leader_epoch)
                    .with_timestamp(*ts),
            );
        }
        let req = ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_isolation_level(isolation.wire())
            .with_timeout_ms(i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX))
            .with_topics(
                topics
                    .into_iter()
                    .map(|(t, ps)| {
                        ListOffsetsTopic::default()
                            .with_name(TopicName(StrBytes::from_string(t.to_owned())))
                            .with_partitions(ps)
                    })
                    .collect(),
            );
        let resp = async {
            let conn = client.connection(leader).await?;
            let v = conn.versions().pick_client(ApiKey::ListOffsets)?;
            conn.send_with(
                &req,
                SendOptions {
                    version: Some(v),
                    timeout: None,
                },
            )
            .await
        }
        .await;
        (parts, resp)
    });
    for (parts, resp) in futures_join_all(calls).await {
        match resp {
            Err(e) => {
                tracing::debug!(error = %e, "ListOffsets failed");
                for (tp, _, r) in parts {
                    if e.needs_metadata_refresh() {
                        client.invalidate_metadata(r.generation);
                    }
                    out.insert(tp.clone(), Err(ErrorCode::NetworkException));
                }
            }
            Ok(resp) => {
                let mut answers: HashMap<(&str, i32), ListedOffset> = HashMap::new();
                for t in &resp.topics {
                    for p in &t.partitions {
                        let v = match ErrorCode::from_code(p.error_code) {
                            None => Ok((p.offset, (p.leader_epoch >= 0).then_some(p.leader_epoch))),
                            Some(c) => Err(c),
                        };
                        answers
                            .entry((t.name.as_str(), p.partition_index))
                            .or_insert(v);
                    }
                }
                for (tp, _, r) in parts {
                    let v = answers
                        .remove(&(tp.topic.as_str(), tp.partition))
                        .unwrap_or(Err(ErrorCode::UnknownTopicOrPartition));
                    if let Err(c) = v {
                        client.on_partition_error(c, &r);
                    }
                    out.insert(tp.clone(), v);
                }
            }
        }
    }
    out
}

/// Runs futures concurrently and collects their outputs (no extra crate).
async fn futures_join_all<F: std::future::Future>(
    futs: impl IntoIterator<Item = F>,
) -> Vec<F::Output> {
    let mut set = Vec::new();
    for f in futs {
        set.push(Box::pin(f));
    }
    let mut out: Vec<Option<F::Output>> = set.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in set.iter_mut().enumerate() {
            if out[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => out[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().flatten().collect()
}

/// Whether a ListOffsets error is worth another round.
pub(crate) fn list_retriable(code: ErrorCode) -> bool {
    exactly_net::metadata::is_stale_metadata(code)
        || matches!(
            code,
            ErrorCode::OffsetNotAvailable
                | ErrorCode::LeaderNotAvailable
                | ErrorCode::NetworkException
                | ErrorCode::RequestTimedOut
                | ErrorCode::UnknownServerError
        )
}
