//! The group member's state machine (classic protocol):
//!
//! ```text
//!            subscribe / lost / rejoin
//!   Idle ───────────────────────────────▶ Joining (join task)
//!    ▲                                        │ SyncGroup done
//!    │ revoke acknowledged (next poll)        ▼
//!    └──────────── Stable { revoking } ◀── Stable (heartbeat task)
//!                         ▲                   │ heartbeat: REBALANCE_IN_PROGRESS
//!                         └───────────────────┘ poll returns Revoked
//! ```
//!
//! Eager (`range`, `roundrobin`): a rebalance shows up in `poll` twice:
//! [`Rebalance::Revoked`] with every partition first, while the member still
//! holds its generation and positions (commit now, or abort an open
//! transaction), and the rejoin starts on the *next* poll; then
//! [`Rebalance::Assigned`] once SyncGroup completed.
//!
//! Cooperative (`cooperative-sticky`, KIP-429): the member rejoins at once
//! and keeps fetching and committing its partitions meanwhile (its
//! generation stays valid while the group prepares the rebalance). When
//! SyncGroup completes, partitions it lost are reported as
//! [`Rebalance::Revoked`] (only those), the ones it gained as
//! [`Rebalance::Assigned`] (only those); after a revoke it rejoins once more
//! so the group can hand the revoked partitions to their new owner.
//!
//! A membership the coordinator forgot (expired session, ILLEGAL_GENERATION,
//! poll timeout) is reported as [`Rebalance::Lost`]: the partitions may
//! already belong to someone else, so nothing may be committed for them.
//!
//! As leader, the member remembers the partition counts it assigned over and
//! rejoins when the cluster view shows another count (a topic grew, or was
//! created or deleted), as the reference client does.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::Instrument;

use crate::client::background::{Background, Gone};
use crate::config::{AssignmentStrategy, ConsumerConfig};
use crate::error::ConsumerError;
use crate::group::coordinator::CoordinatorLink;
use crate::group::heartbeat::{self, GroupShared, LostReason, Signal, Timing};
use crate::group::join::{join, JoinParams, Joined};
use crate::TopicPartition;

/// A change of the group's assignment, as `poll` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rebalance {
    /// These partitions are being taken away (the group is rebalancing). The
    /// member still holds its generation: commit the offsets of what was
    /// processed, or abort the open transaction, before the next poll.
    /// Eager assignors revoke every partition; a cooperative one only those
    /// that move; the others stay assigned, positions untouched.
    Revoked(Vec<TopicPartition>),
    /// Partitions added to the assignment (eager: the whole new assignment,
    /// since everything was revoked first; cooperative: only the new ones).
    Assigned(Vec<TopicPartition>),
    /// The membership was lost (session expired, fenced generation, or no
    /// poll within `max.poll.interval.ms`): these partitions may already be
    /// another member's. Do not commit for them; abort an open transaction.
    Lost(Vec<TopicPartition>),
}

/// Where the member is.
#[derive(Debug)]
pub(crate) enum Phase {
    /// Not in a generation; a join starts at the next poll (after
    /// `retry_at`).
    Idle,
    /// A join task is running.
    Joining(Background<Result<Joined, ConsumerError>>),
    /// In a generation, heartbeating. `revoking`: the Revoked event was
    /// handed out; the rejoin starts at the next poll.
    Stable {
        heartbeat: JoinHandle<()>,
        revoking: bool,
    },
}

/// The group side of the consumer.
#[derive(Debug)]
pub(crate) struct Group {
    pub(crate) link: Arc<CoordinatorLink>,
    pub(crate) phase: Phase,
    /// The member id (kept across rejoins; empty before the first join).
    pub(crate) member_id: String,
    /// The current generation (-1 outside one).
    pub(crate) generation: i32,
    pub(crate) retry_at: Option<Instant>,
    pub(crate) reason: &'static str,
    /// Whether the current generation rebalances cooperatively (KIP-429).
    pub(crate) cooperative: bool,
    /// A cooperative revoke handed out: (revoked, added).
    after_revoke: Option<(Vec<TopicPartition>, Vec<TopicPartition>)>,
    /// An Assigned event still to report.
    pending_assigned: Option<Vec<TopicPartition>>,
    /// As leader: the partition counts the assignment was computed over.
    assigned_counts: Option<BTreeMap<String, i32>>,
}

/// What one step of the group machine did.
#[derive(Debug)]
pub(crate) enum Step {
    /// Nothing for the user.
    Quiet,
    /// Report this.
    Event(Rebalance),
    /// These partitions must be dropped (revoke acknowledged); then step
    /// again.
    Drop(Vec<TopicPartition>),
}

impl Group {
    pub(crate) fn new(link: Arc<CoordinatorLink>) -> Self {
        Self {
            link,
            phase: Phase::Idle,
            member_id: String::new(),
            generation: -1,
            retry_at: None,
            reason: "joining the group",
            cooperative: false,
            after_revoke: None,
            pending_assigned: None,
            assigned_counts: None,
        }
    }

    /// Asks for a rejoin (the subscription changed). A join in progress
    /// notices the change when it completes.
    pub(crate) fn request_rejoin(&mut self, shared: &GroupShared) {
        if matches!(self.phase, Phase::Stable { .. }) {
            self.reason = "the subscription changed";
            shared.signal(self.generation, Signal::Rejoin);
        }
    }

    pub(crate) fn is_revoking(&self) -> bool {
        matches!(self.phase, Phase::Stable { revoking: true, .. })
    }

    pub(crate) fn is_stable(&self) -> bool {
        matches!(
            self.phase,
            Phase::Stable {
                revoking: false,
                ..
            }
        )
    }

    pub(crate) fn stop_heartbeat(&mut self) {
        match &self.phase {
            Phase::Stable { heartbeat, .. } => heartbeat.abort(),
            Phase::Joining(j) => j.abort(),
            Phase::Idle => {}
        }
    }

    /// Whether a join is under way (the generation may be about to change;
    /// a transactional offset commit now could be fenced).
    pub(crate) fn is_joining(&self) -> bool {
        matches!(self.phase, Phase::Joining(_))
    }

    fn go_idle(&mut self) {
        self.stop_heartbeat();
        self.phase = Phase::Idle;
    }

    fn forget_pending(&mut self) {
        self.after_revoke = None;
        self.pending_assigned = None;
        self.assigned_counts = None;
    }

    /// As leader: whether the cluster view shows another partition count
    /// for a subscribed topic than the assignment was computed over.
    fn metadata_changed(&self, client: &exactly_net::Client, topics: &[String]) -> bool {
        let Some(counts) = &self.assigned_counts else {
            return false;
        };
        let view = client.view();
        topics.iter().any(|t| {
            let known = view.topic(t).map(|i| i.partitions.len());
            let assigned = counts.get(t).copied().unwrap_or(0);
            match known {
                Some(n) => i32::try_from(n).unwrap_or(i32::MAX) != assigned,
                // Not in the view: deleted if the view reports the error,
                // else simply not looked up.
                None => assigned > 0 && view.topic_error(t).is_some(),
            }
        })
    }

    /// Leaves the group: LeaveGroup for a dynamic member, nothing for a
    /// static one (KIP-345).
    pub(crate) async fn leave(&mut self, cfg: &ConsumerConfig) {
        self.go_idle();
        if cfg.group_instance_id.is_none() && !self.member_id.is_empty() {
            leave_group(&self.link, &self.member_id, None).await;
        }
        self.member_id.clear();
        self.generation = -1;
        self.forget_pending();
    }

    /// Advances the machine once. `assigned`: the consumer's assignment.
    pub(crate) async fn step(
        &mut self,
        shared: &Arc<GroupShared>,
        cfg: &ConsumerConfig,
        client: &exactly_net::Client,
        topics: &[String],
        assigned: &[TopicPartition],
    ) -> Result<Step, ConsumerError> {
        match &mut self.phase {
            Phase::Stable { revoking: true, .. } => {
                if let Some((revoked, added)) = self.after_revoke.take() {
                    // Cooperative: the revoked partitions go; the added ones
                    // are reported next, then we rejoin so the group can
                    // hand the revoked ones on.
                    if let Phase::Stable { revoking, .. } = &mut self.phase {
                        *revoking = false;
                    }
                    self.pending_assigned = Some(added);
                    self.reason = "partitions were revoked";
                    shared.signal(self.generation, Signal::Rejoin);
                    return Ok(Step::Drop(revoked));
                }
                // Eager: the user saw Revoked and came back: rejoin now.
                self.go_idle();
                self.reason = "the group is rebalancing";
                Ok(Step::Drop(assigned.to_vec()))
            }
            Phase::Stable { .. } => {
                if let Some(added) = self.pending_assigned.take() {
                    return Ok(Step::Event(Rebalance::Assigned(added)));
                }
                if self.metadata_changed(client, topics) {
                    tracing::info!(
                        group = self.link.group_id(),
                        "the partitions of a subscribed topic changed; rejoining"
                    );
                    self.assigned_counts = None;
                    self.reason = "the metadata of a subscribed topic changed";
                    shared.signal(self.generation, Signal::Rejoin);
                }
                match shared.take(self.generation) {
                    None => Ok(Step::Quiet),
                    Some(Signal::Rejoin) => {
                        if self.cooperative {
                            // Keep everything while rejoining.
                            self.go_idle();
                            if self.reason == "joining the group" {
                                self.reason = "the group is rebalancing";
                            }
                            self.start_join(shared, cfg, client, topics, assigned);
                            return Ok(Step::Quiet);
                        }
                        if assigned.is_empty() {
                            self.go_idle();
                            self.reason = "the group is rebalancing";
                            return Ok(Step::Quiet);
                        }
                        if let Phase::Stable { revoking, .. } = &mut self.phase {
                            *revoking = true;
                        }
                        Ok(Step::Event(Rebalance::Revoked(assigned.to_vec())))
                    }
                    Some(Signal::Lost(reason)) => {
                        self.go_idle();
                        self.forget_pending();
                        self.reason = "the membership was lost";
                        if matches!(
                            reason,
                            LostReason::PollTimeout
                                | LostReason::Code(exactly_codec::ErrorCode::UnknownMemberId)
                        ) {
                            self.member_id.clear();
                        }
                        self.generation = -1;
                        if assigned.is_empty() {
                            Ok(Step::Drop(Vec::new()))
                        } else {
                            Ok(Step::Event(Rebalance::Lost(assigned.to_vec())))
                        }
                    }
                    Some(Signal::Fatal(e)) => {
                        self.go_idle();
                        self.forget_pending();
                        self.generation = -1;
                        Err(e)
                    }
                }
            }
            Phase::Idle => {
                if self.retry_at.is_some_and(|t| Instant::now() < t) {
                    return Ok(Step::Quiet);
                }
                self.retry_at = None;
                self.start_join(shared, cfg, client, topics, assigned);
                Ok(Step::Quiet)
            }
            Phase::Joining(join) => {
                let Some(r) = join.try_take() else {
                    return Ok(Step::Quiet);
                };
                self.phase = Phase::Idle;
                match r {
                    Ok(Ok(joined)) => {
                        Ok(self.joined(joined, shared, cfg, client, topics, assigned))
                    }
                    Ok(Err(e)) => {
                        self.retry_at = Some(Instant::now() + client.config().retry_backoff());
                        Err(e)
                    }
                    Err(Gone) => {
                        self.retry_at = Some(Instant::now() + client.config().retry_backoff());
                        tracing::debug!("join task ended abnormally");
                        Ok(Step::Quiet)
                    }
                }
            }
        }
    }

    /// Starts the join task. Partitions still assigned (cooperative) are
    /// named as owned, with the generation they were owned in, which stays
    /// ours until the join completes.
    fn start_join(
        &mut self,
        shared: &Arc<GroupShared>,
        cfg: &ConsumerConfig,
        client: &exactly_net::Client,
        topics: &[String],
        assigned: &[TopicPartition],
    ) {
        let keep = self.cooperative && !assigned.is_empty() && self.generation >= 0;
        let params = JoinParams {
            instance_id: cfg.group_instance_id.clone(),
            member_id: self.member_id.clone(),
            session_timeout: cfg.session_timeout,
            rebalance_timeout: cfg.rebalance_timeout,
            strategies: cfg.strategies.clone(),
            topics: topics.to_vec(),
            retry_backoff: client.config().retry_backoff(),
            reason: self.reason,
            owned: if keep { assigned.to_vec() } else { Vec::new() },
            generation: if keep { self.generation } else { -1 },
            rack: cfg.client_rack.clone(),
        };
        let link = self.link.clone();
        let client = client.clone();
        let wake = shared.clone();
        if !keep {
            self.generation = -1;
        }
        self.assigned_counts = None;
        let span = tracing::info_span!(
            "consumer.join",
            group = self.link.group_id(),
            member = %self.member_id,
            reason = self.reason
        );
        self.phase = Phase::Joining(Background::spawn(
            join(link, client, params).instrument(span),
            wake,
        ));
    }

    /// A join completed: start the generation's heartbeat and report what
    /// changed.
    fn joined(
        &mut self,
        joined: Joined,
        shared: &Arc<GroupShared>,
        cfg: &ConsumerConfig,
        client: &exactly_net::Client,
        topics: &[String],
        assigned: &[TopicPartition],
    ) -> Step {
        self.generation = joined.generation;
        self.member_id.clone_from(&joined.member_id);
        self.cooperative =
            AssignmentStrategy::parse(&joined.protocol).is_some_and(|s| s.is_cooperative());
        self.assigned_counts = joined.assigned_counts.clone();
        let before: BTreeSet<&TopicPartition> = assigned.iter().collect();
        let after: BTreeSet<&TopicPartition> = joined.assignment.iter().collect();
        let revoked: Vec<TopicPartition> =
            before.difference(&after).map(|tp| (*tp).clone()).collect();
        let added: Vec<TopicPartition> =
            after.difference(&before).map(|tp| (*tp).clone()).collect();
        tracing::info!(
            group = self.link.group_id(),
            member = %joined.member_id,
            generation = joined.generation,
            leader = joined.leader,
            protocol = %joined.protocol,
            partitions = joined.assignment.len(),
            added = added.len(),
            revoked = revoked.len(),
            "joined the group"
        );
        let me = heartbeat::Member {
            generation: joined.generation,
            member_id: joined.member_id.clone(),
            instance_id: cfg.group_instance_id.clone(),
        };
        let timing = Timing {
            interval: cfg.heartbeat_interval,
            quick_start: self.cooperative,
            max_poll_interval: cfg.max_poll_interval,
            retry_backoff: client.config().retry_backoff(),
        };
        let span = tracing::debug_span!(
            "consumer.heartbeat",
            group = self.link.group_id(),
            member = %joined.member_id,
            generation = joined.generation
        );
        let hb = tokio::spawn(
            heartbeat::run(self.link.clone(), shared.clone(), me, timing).instrument(span),
        );
        self.phase = Phase::Stable {
            heartbeat: hb,
            revoking: false,
        };
        if joined.topics != topics {
            // The subscription changed while we joined.
            self.reason = "the subscription changed";
            shared.signal(joined.generation, Signal::Rejoin);
        }
        if joined.owned_lost && !assigned.is_empty() {
            // The coordinator had forgotten us: what we held is lost, not
            // revoked; the new assignment follows.
            self.pending_assigned = Some(joined.assignment);
            return Step::Event(Rebalance::Lost(assigned.to_vec()));
        }
        if revoked.is_empty() {
            return Step::Event(Rebalance::Assigned(added));
        }
        if let Phase::Stable { revoking, .. } = &mut self.phase {
            *revoking = true;
        }
        self.after_revoke = Some((revoked.clone(), added));
        Step::Event(Rebalance::Revoked(revoked))
    }
}

/// Sends LeaveGroup for the member (used by [`Group::leave`]).
async fn leave_group(link: &CoordinatorLink, member_id: &str, instance: Option<&str>) {
    crate::group::heartbeat::leave(link, member_id, instance, "the consumer is closing").await;
}
