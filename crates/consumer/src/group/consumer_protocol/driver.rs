//! The task that carries the KIP-848 member's heartbeats: it sends what the
//! [`Machine`] builds on the coordinator link, looks assigned topic ids up in
//! metadata, feeds replies back and wakes `poll`. It decides nothing itself.
//!
//! It also enforces `max.poll.interval.ms` as the Java client does: a member
//! that has not polled for that long leaves the group (epoch -1, or -2 for a
//! static member) and its partitions are reported lost.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use exactly_codec::messages::consumer_group_heartbeat_request::TopicPartitions;
use exactly_codec::messages::{ConsumerGroupHeartbeatRequest, GroupId, MetadataRequest, TopicName};
use exactly_codec::protocol::StrBytes;
use exactly_codec::ErrorCode;
use exactly_net::{Client, NetError};
use tokio::sync::Notify;
use tokio::time::Instant;

use super::machine::{Beat, Follow, Machine, Reply};
use crate::group::coordinator::CoordinatorLink;
use crate::group::heartbeat::GroupShared;

/// Locks the machine (a poisoned lock still holds a consistent machine:
/// no method panics half-way).
pub(crate) fn lock(m: &Mutex<Machine>) -> std::sync::MutexGuard<'_, Machine> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Builds the request for `version` from a [`Beat`].
pub(crate) fn request(group: &str, b: &Beat, _version: i16) -> ConsumerGroupHeartbeatRequest {
    let mut r = ConsumerGroupHeartbeatRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.to_owned())))
        .with_member_id(StrBytes::from_string(b.member_id.clone()))
        .with_member_epoch(b.member_epoch)
        .with_instance_id(b.instance_id.clone().map(StrBytes::from_string))
        .with_rebalance_timeout_ms(b.rebalance_timeout_ms);
    if b.member_epoch >= 0 {
        r.subscribed_topic_names = Some(
            b.topics
                .iter()
                .map(|t| TopicName(StrBytes::from_string(t.clone())))
                .collect(),
        );
        // v0 has no regex field: encoding it there fails with a typed
        // error rather than silently subscribing to nothing.
        r.subscribed_topic_regex = b.regex.clone().map(StrBytes::from_string);
        r.server_assignor = b.server_assignor.map(StrBytes::from_static_str);
        r.rack_id = b.rack.clone().map(StrBytes::from_string);
    }
    r.topic_partitions = b.owned.as_ref().map(|o| {
        o.iter()
            .map(|(id, ps)| {
                TopicPartitions::default()
                    .with_topic_id(*id)
                    .with_partitions(ps.clone())
            })
            .collect()
    });
    r
}

/// The reply's fields.
pub(crate) fn reply(resp: &exactly_codec::messages::ConsumerGroupHeartbeatResponse) -> Reply {
    Reply {
        error: ErrorCode::from_code(resp.error_code),
        message: resp.error_message.as_ref().map(|m| m.to_string()),
        member_id: resp.member_id.as_ref().map(|m| m.to_string()),
        member_epoch: resp.member_epoch,
        heartbeat_interval_ms: resp.heartbeat_interval_ms,
        assignment: resp.assignment.as_ref().map(|a| {
            a.topic_partitions
                .iter()
                .map(|t| (t.topic_id, t.partitions.clone()))
                .collect()
        }),
    }
}

/// Runs the member's heartbeats until aborted (the consumer leaves or
/// closes) or a fatal error.
pub(crate) async fn run(
    link: Arc<CoordinatorLink>,
    client: Client,
    machine: Arc<Mutex<Machine>>,
    shared: Arc<GroupShared>,
    kick: Arc<Notify>,
    max_poll_interval: Duration,
) {
    let group = link.group_id().to_owned();
    loop {
        let now = Instant::now();
        let due = lock(&machine).next_beat();
        match due {
            Some(t) if t <= now => {}
            Some(t) => {
                let t = t.min(now + max_poll_interval / 2);
                tokio::select! {
                    _ = tokio::time::sleep_until(t) => {}
                    _ = kick.notified() => {}
                }
                if shared.since_poll() > max_poll_interval {
                    poll_timeout(&link, &group, &machine, &shared).await;
                }
                continue;
            }
            None => {
                kick.notified().await;
                continue;
            }
        }
        let Some(beat) = lock(&machine).beat(Instant::now()) else {
            continue;
        };
        let result = link.call(|v| request(&group, &beat, v), None).await;
        let now = Instant::now();
        match result {
            Ok((resp, coordinator)) => {
                let r = reply(&resp);
                let follow = lock(&machine).on_reply(now, r);
                if follow == Follow::FindCoordinator {
                    if let Some(c) = ErrorCode::from_code(resp.error_code) {
                        link.on_error(c, &coordinator).await;
                    }
                }
                resolve(&client, &machine, &beat.topics, beat.regex.is_some()).await;
            }
            Err(e) if e.is_retriable() => {
                tracing::debug!(error = %e, "heartbeat failed; retrying");
                lock(&machine).on_failure(now);
            }
            Err(e) => lock(&machine).on_fatal(e.into()),
        }
        shared.notify.notify_one();
    }
}

/// Learns the names of assigned topic ids from metadata: of the subscribed
/// topics, or under a regex subscription of all topics (the coordinator
/// resolved the regex, so an assigned topic may be one created after the
/// subscription).
async fn resolve(client: &Client, machine: &Mutex<Machine>, topics: &[String], by_regex: bool) {
    if lock(machine).unresolved().is_empty() {
        return;
    }
    let learnt = if by_regex {
        all_topic_ids(client).await
    } else {
        let names: Vec<&str> = topics.iter().map(String::as_str).collect();
        client.refresh_metadata(&names).await.map(|view| {
            view.topic_names()
                .filter_map(|n| view.topic(n))
                .filter(|t| !t.id.is_zero())
                .map(|t| (uuid::Uuid::from(t.id), t.name.clone()))
                .collect()
        })
    };
    let learnt: Vec<(uuid::Uuid, String)> = match learnt {
        Ok(l) => l,
        Err(e) => {
            tracing::debug!(error = %e, "metadata for the assignment failed; retrying");
            return;
        }
    };
    if by_regex {
        // Bring the assigned topics into the client's metadata cache (the
        // fetcher finds their leaders there).
        let ids: Vec<uuid::Uuid> = lock(machine).unresolved();
        let names: Vec<&str> = learnt
            .iter()
            .filter(|(id, _)| ids.contains(id))
            .map(|(_, n)| n.as_str())
            .collect();
        if let Err(e) = client.refresh_metadata(&names).await {
            tracing::debug!(error = %e, "metadata for the assigned topics failed");
        }
    }
    let mut m = lock(machine);
    m.learn_names(learnt);
    let left = m.unresolved();
    if !left.is_empty() {
        tracing::debug!(?left, "assigned topic ids not in metadata yet");
        m.on_failure(Instant::now());
    }
}

/// Topic ids and names of every topic of the cluster (a Metadata request
/// for all topics).
async fn all_topic_ids(client: &Client) -> Result<Vec<(uuid::Uuid, String)>, NetError> {
    let req = MetadataRequest::default()
        .with_topics(None)
        .with_allow_auto_topic_creation(false);
    let resp = client.any_connection().await?.send(&req).await?;
    Ok(resp
        .topics
        .iter()
        .filter(|t| ErrorCode::from_code(t.error_code).is_none() && !t.topic_id.is_nil())
        .filter_map(|t| Some((t.topic_id, t.name.as_ref()?.0.to_string())))
        .collect())
}

async fn poll_timeout(
    link: &CoordinatorLink,
    group: &str,
    machine: &Mutex<Machine>,
    shared: &GroupShared,
) {
    tracing::warn!("poll not called within max.poll.interval.ms; leaving the group");
    let beat = lock(machine).on_poll_timeout();
    if let Some(b) = beat {
        send_leave(link, group, &b).await;
    }
    shared.notify.notify_one();
}

/// Sends a leave heartbeat (best effort).
pub(crate) async fn send_leave(link: &CoordinatorLink, group: &str, b: &Beat) {
    match link.call(|v| request(group, b, v), None).await {
        Ok((resp, _)) => match ErrorCode::from_code(resp.error_code) {
            None => tracing::debug!(epoch = b.member_epoch, "left the group"),
            Some(c) => tracing::debug!(code = %c, "leave heartbeat refused"),
        },
        Err(e) => tracing::debug!(error = %e, "leave heartbeat failed"),
    }
}
