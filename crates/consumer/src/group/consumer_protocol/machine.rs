//! The KIP-848 member, sans-IO: what the next ConsumerGroupHeartbeat says,
//! what a response changes, and what `poll` must tell the user.
//!
//! ```text
//!   Joining (epoch 0) ── response ──▶ Member (epoch n)
//!        ▲                              │ new assignment A
//!        │                              ▼
//!        │                 revoke = owned − A  non-empty?
//!        │                   yes: Revoked(revoke) to the user; on the next
//!        │                        poll the user is done: owned −= revoke,
//!        │                        heartbeat now (the ack)
//!        │                   then: Assigned(A − owned), owned = A,
//!        │                        heartbeat now (the ack, same epoch)
//!        │ FENCED_MEMBER_EPOCH / UNKNOWN_MEMBER_ID / poll timeout:
//!        └── Lost(owned) handed to the user first, then epoch 0 again
//! ```
//!
//! The coordinator only puts in an assignment partitions that no other
//! member still owns, so the newly assigned ones may be read at once; every
//! heartbeat reports what the member owns, which is how it acknowledges a
//! revocation. Every heartbeat carries the full member state (subscription,
//! assignor, rebalance timeout, owned partitions): KIP-848 allows sending
//! only what changed, but the full form is accepted always and survives a
//! lost response without a special case.
//!
//! Time comes in as an argument (ARCHITECTURE.md principle 1); the driver
//! (`driver.rs`) sends what [`Machine::beat`] builds and feeds back what
//! came.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use exactly_codec::messages::ApiKey;
use exactly_codec::ErrorCode;
use tokio::time::Instant;

use crate::error::ConsumerError;
use crate::group::member::Rebalance;
use crate::TopicPartition;

/// A topic id (KIP-516), as the heartbeat carries topics.
pub(crate) type TopicId = uuid::Uuid;

/// The member epoch to leave with: -1, or -2 for a static member that
/// will come back (KIP-848).
pub(crate) const LEAVE_EPOCH: i32 = -1;
/// See [`LEAVE_EPOCH`].
pub(crate) const STATIC_LEAVE_EPOCH: i32 = -2;

/// One ConsumerGroupHeartbeat to send (version-independent fields).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Beat {
    pub member_id: String,
    pub member_epoch: i32,
    pub instance_id: Option<String>,
    pub rebalance_timeout_ms: i32,
    pub topics: Vec<String>,
    /// `SubscribedTopicRegex` (heartbeat v1+): the coordinator matches it
    /// against the cluster's topics itself (RE2J syntax).
    pub regex: Option<String>,
    pub server_assignor: Option<&'static str>,
    /// `client.rack` (sent with the subscription; `None` when leaving).
    pub rack: Option<String>,
    /// Owned partitions by topic id (`None` when leaving).
    pub owned: Option<Vec<(TopicId, Vec<i32>)>>,
}

/// A ConsumerGroupHeartbeat response (version-independent fields).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Reply {
    pub error: Option<ErrorCode>,
    pub message: Option<String>,
    pub member_id: Option<String>,
    pub member_epoch: i32,
    pub heartbeat_interval_ms: i32,
    pub assignment: Option<Vec<(TopicId, Vec<i32>)>>,
}

/// What a reply asks of the driver besides waiting for the next beat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Follow {
    /// Nothing.
    None,
    /// The coordinator moved: look it up again, then retry after the backoff.
    FindCoordinator,
}

/// What the user must be told, in order.
#[derive(Debug)]
enum Note {
    Event(Rebalance),
    Fatal(ConsumerError),
}

/// One step of the member for `poll`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Turn {
    /// Nothing to do.
    Quiet,
    /// Report this to the user.
    Event(Rebalance),
    /// The user is done with these revoked partitions: drop them.
    Drop(Vec<TopicPartition>),
}

/// Settings the member heartbeats with.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub rebalance_timeout: Duration,
    pub server_assignor: Option<&'static str>,
    /// `client.rack`.
    pub rack: Option<String>,
    pub retry_backoff: Duration,
}

/// The member. See the module docs.
#[derive(Debug)]
pub(crate) struct Machine {
    s: Settings,
    epoch: i32,
    topics: Vec<String>,
    /// The subscription's regex, resolved by the coordinator.
    regex: Option<String>,
    /// What the consumer holds (acknowledged with every heartbeat).
    owned: BTreeSet<TopicPartition>,
    /// The latest assignment not yet reconciled.
    target: Option<Vec<(TopicId, Vec<i32>)>>,
    /// Handed to the user as Revoked; dropped on the next poll.
    revoking: Option<Vec<TopicPartition>>,
    notes: VecDeque<Note>,
    /// A Lost event is waiting for the user: no rejoin before it is taken.
    lost_pending: bool,
    /// Topic names by id, learnt from metadata.
    names: BTreeMap<TopicId, String>,
    interval: Duration,
    next_beat: Instant,
    /// Joined at least once and not left.
    active: bool,
    failed: bool,
}

impl Machine {
    pub(crate) fn new(s: Settings, now: Instant) -> Self {
        Self {
            s,
            epoch: 0,
            topics: Vec::new(),
            regex: None,
            owned: BTreeSet::new(),
            target: None,
            revoking: None,
            notes: VecDeque::new(),
            lost_pending: false,
            names: BTreeMap::new(),
            interval: Duration::from_secs(5),
            next_beat: now,
            active: false,
            failed: false,
        }
    }

    /// The member id (KIP-1082: chosen by the member).
    pub(crate) fn member_id(&self) -> &str {
        &self.s.member_id
    }

    /// The member epoch (0 before the coordinator accepted the member).
    pub(crate) fn epoch(&self) -> i32 {
        self.epoch
    }

    /// Whether the member is in the group with an epoch.
    pub(crate) fn is_member(&self) -> bool {
        self.epoch > 0
    }

    /// A revocation was handed to the user and not yet finished.
    pub(crate) fn is_revoking(&self) -> bool {
        self.revoking.is_some()
    }

    /// A reconciliation would revoke partitions on the next step.
    pub(crate) fn revoke_coming(&self) -> bool {
        self.revoking.is_none() && !self.to_revoke().is_empty()
    }

    /// The subscription (topic names, or a regex the coordinator
    /// resolves); a change is sent at once.
    pub(crate) fn subscribe(&mut self, topics: &[String], regex: Option<&str>, now: Instant) {
        if self.topics != topics || self.regex.as_deref() != regex {
            self.topics = topics.to_vec();
            self.regex = regex.map(str::to_owned);
            self.next_beat = now;
        }
    }

    /// Names learnt from metadata.
    pub(crate) fn learn_names(&mut self, names: impl IntoIterator<Item = (TopicId, String)>) {
        self.names.extend(names);
    }

    /// Topic ids of the pending assignment without a known name.
    pub(crate) fn unresolved(&self) -> Vec<TopicId> {
        self.target
            .iter()
            .flatten()
            .map(|(id, _)| *id)
            .filter(|id| !self.names.contains_key(id))
            .collect()
    }

    /// When the next heartbeat is due (`None`: none is, the member is
    /// waiting for the user or failed).
    pub(crate) fn next_beat(&self) -> Option<Instant> {
        let subscribed = !self.topics.is_empty() || self.regex.is_some();
        (!self.failed && !self.lost_pending && subscribed).then_some(self.next_beat)
    }

    /// The heartbeat to send at `now`, if one is due.
    pub(crate) fn beat(&mut self, now: Instant) -> Option<Beat> {
        if self.next_beat().is_none_or(|t| t > now) {
            return None;
        }
        // Until the response (or a failure) sets the next one.
        self.next_beat = now + self.interval;
        let ids: BTreeMap<&str, TopicId> =
            self.names.iter().map(|(id, n)| (n.as_str(), *id)).collect();
        let mut owned: BTreeMap<TopicId, Vec<i32>> = BTreeMap::new();
        for tp in &self.owned {
            if let Some(id) = ids.get(tp.topic.as_str()) {
                owned.entry(*id).or_default().push(tp.partition);
            }
        }
        Some(Beat {
            member_id: self.s.member_id.clone(),
            member_epoch: self.epoch,
            instance_id: self.s.instance_id.clone(),
            rebalance_timeout_ms: millis(self.s.rebalance_timeout),
            topics: self.topics.clone(),
            regex: self.regex.clone(),
            server_assignor: self.s.server_assignor,
            rack: self.s.rack.clone(),
            owned: Some(owned.into_iter().collect()),
        })
    }

    /// The heartbeat that leaves the group, if the member is in it; the
    /// member is then out (epoch 0, nothing owned).
    pub(crate) fn leave(&mut self) -> Option<Beat> {
        let leave = self.active.then(|| self.leave_beat());
        self.active = false;
        self.epoch = 0;
        self.owned.clear();
        self.target = None;
        self.revoking = None;
        self.topics.clear();
        self.regex = None;
        self.notes.clear();
        self.lost_pending = false;
        leave
    }

    /// The heartbeat could not be sent or answered: try again after the
    /// backoff (the same epoch; the coordinator accepts a repeat).
    pub(crate) fn on_failure(&mut self, now: Instant) {
        self.next_beat = now + self.s.retry_backoff;
    }

    /// `poll` was not called within `max.poll.interval.ms`: returns the
    /// heartbeat that leaves the group; the partitions are handed out as
    /// lost, and the member rejoins (epoch 0) once the user took them.
    pub(crate) fn on_poll_timeout(&mut self) -> Option<Beat> {
        let leave = self.active.then(|| self.leave_beat());
        self.active = false;
        self.fence();
        // No rejoin before the user polls again.
        self.lost_pending = true;
        leave
    }

    fn leave_beat(&self) -> Beat {
        Beat {
            member_id: self.s.member_id.clone(),
            member_epoch: if self.s.instance_id.is_some() {
                STATIC_LEAVE_EPOCH
            } else {
                LEAVE_EPOCH
            },
            instance_id: self.s.instance_id.clone(),
            rebalance_timeout_ms: -1,
            topics: Vec::new(),
            regex: None,
            server_assignor: None,
            rack: None,
            owned: None,
        }
    }

    /// A fatal error outside a reply (the connection refused for good).
    pub(crate) fn on_fatal(&mut self, e: ConsumerError) {
        self.failed = true;
        self.notes.push_back(Note::Fatal(e));
    }

    /// Applies a reply.
    pub(crate) fn on_reply(&mut self, now: Instant, r: Reply) -> Follow {
        let Some(code) = r.error else {
            self.active = true;
            if let Some(id) = r.member_id.filter(|m| !m.is_empty()) {
                self.s.member_id = id;
            }
            self.epoch = r.member_epoch;
            if r.heartbeat_interval_ms > 0 {
                self.interval = Duration::from_millis(r.heartbeat_interval_ms as u64);
            }
            self.next_beat = now + self.interval;
            if let Some(a) = r.assignment {
                self.target = Some(a);
            }
            return Follow::None;
        };
        match code {
            ErrorCode::FencedMemberEpoch | ErrorCode::UnknownMemberId => {
                tracing::info!(epoch = self.epoch, %code, "membership lost; rejoining");
                self.fence();
                Follow::None
            }
            ErrorCode::NotCoordinator | ErrorCode::CoordinatorNotAvailable => {
                self.next_beat = now + self.s.retry_backoff;
                Follow::FindCoordinator
            }
            ErrorCode::CoordinatorLoadInProgress
            | ErrorCode::RequestTimedOut
            | ErrorCode::NetworkException => {
                self.next_beat = now + self.s.retry_backoff;
                Follow::None
            }
            c => {
                // UNRELEASED_INSTANCE_ID (another member holds the static
                // id and has not left), FENCED_INSTANCE_ID, UNSUPPORTED_*,
                // GROUP_MAX_SIZE_REACHED, authorization, INVALID_REQUEST:
                // the Java client stops on these too.
                let message = r.message.or_else(|| {
                    (c == ErrorCode::UnsupportedVersion).then(|| {
                        "the broker does not offer the consumer group protocol \
                         (group.coordinator.rebalance.protocols)"
                            .to_owned()
                    })
                });
                self.failed = true;
                self.notes.push_back(Note::Fatal(ConsumerError::Kafka {
                    api: ApiKey::ConsumerGroupHeartbeat,
                    code: c,
                    partition: None,
                    message,
                }));
                Follow::None
            }
        }
    }

    /// The membership is gone: hand the owned partitions out as lost, then
    /// rejoin with epoch 0 (the same member id).
    fn fence(&mut self) {
        self.epoch = 0;
        self.target = None;
        self.revoking = None;
        let lost: Vec<TopicPartition> = std::mem::take(&mut self.owned).into_iter().collect();
        if !lost.is_empty() {
            self.lost_pending = true;
            self.notes.push_back(Note::Event(Rebalance::Lost(lost)));
        }
    }

    fn target_set(&self) -> Option<BTreeSet<TopicPartition>> {
        let t = self.target.as_ref()?;
        let mut set = BTreeSet::new();
        for (id, parts) in t {
            // Ids without a name yet are reconciled once metadata knows them.
            if let Some(name) = self.names.get(id) {
                // Under a regex the coordinator chose the topics.
                if self.regex.is_none() && !self.topics.contains(name) {
                    tracing::warn!(topic = %name, "assigned a topic we did not subscribe to; ignored");
                    continue;
                }
                set.extend(parts.iter().map(|p| TopicPartition::new(name.clone(), *p)));
            }
        }
        Some(set)
    }

    fn to_revoke(&self) -> Vec<TopicPartition> {
        match self.target_set() {
            Some(t) => self
                .owned
                .iter()
                .filter(|tp| !t.contains(tp))
                .cloned()
                .collect(),
            None => Vec::new(),
        }
    }

    /// One step for `poll`: errors first, then a finished revocation, then
    /// reconciliation.
    pub(crate) fn step(&mut self, now: Instant) -> Result<Turn, ConsumerError> {
        if self.lost_pending && self.notes.is_empty() {
            self.lost_pending = false;
            self.next_beat = now;
        }
        if let Some(n) = self.notes.pop_front() {
            return match n {
                Note::Fatal(e) => Err(e),
                Note::Event(ev) => {
                    if matches!(ev, Rebalance::Lost(_)) {
                        self.lost_pending = false;
                        self.next_beat = now;
                    }
                    Ok(Turn::Event(ev))
                }
            };
        }
        if let Some(done) = self.revoking.take() {
            for tp in &done {
                self.owned.remove(tp);
            }
            self.next_beat = now;
            return Ok(Turn::Drop(done));
        }
        let Some(target) = self.target_set() else {
            return Ok(Turn::Quiet);
        };
        let revoke: Vec<TopicPartition> = self
            .owned
            .iter()
            .filter(|tp| !target.contains(tp))
            .cloned()
            .collect();
        if !revoke.is_empty() {
            self.revoking = Some(revoke.clone());
            return Ok(Turn::Event(Rebalance::Revoked(revoke)));
        }
        if self.unresolved().is_empty() {
            self.target = None;
        }
        let added: Vec<TopicPartition> = target
            .iter()
            .filter(|tp| !self.owned.contains(tp))
            .cloned()
            .collect();
        if added.is_empty() {
            return Ok(Turn::Quiet);
        }
        self.owned.extend(added.iter().cloned());
        self.next_beat = now;
        Ok(Turn::Event(Rebalance::Assigned(added)))
    }
}

fn millis(d: Duration) -> i32 {
    i32::try_from(d.as_millis()).unwrap_or(i32::MAX)
}

#[cfg(test)]
#[path = "machine_tests.rs"]
mod tests;
