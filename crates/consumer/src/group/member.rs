//! The group member's state machine (classic protocol, eager rebalancing):
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
//! A rebalance shows up in `poll` twice: [`Rebalance::Revoked`] first, while
//! the member still holds its generation and positions (commit now, or abort
//! an open transaction), and the rejoin starts on the *next* poll; then
//! [`Rebalance::Assigned`] once SyncGroup completed. A membership the
//! coordinator forgot (expired session, ILLEGAL_GENERATION, poll timeout) is
//! reported as [`Rebalance::Lost`]: the partitions may already belong to
//! someone else, so nothing may be committed for them.

use std::sync::Arc;

use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::Instrument;

use crate::client::background::{Background, Gone};
use crate::config::ConsumerConfig;
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
    Revoked(Vec<TopicPartition>),
    /// The new assignment.
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
}

/// What one step of the group machine did.
#[derive(Debug)]
pub(crate) enum Step {
    /// Nothing for the user.
    Quiet,
    /// Report this.
    Event(Rebalance),
    /// The assignment must be dropped (revoke acknowledged, or lost).
    DropAssignment,
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

    fn go_idle(&mut self) {
        self.stop_heartbeat();
        self.phase = Phase::Idle;
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
    }

    /// Advances the machine once. `holds_partitions`: whether the consumer
    /// has an assignment to revoke.
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
                // The user saw Revoked and came back: rejoin now.
                self.go_idle();
                self.reason = "the group is rebalancing";
                Ok(Step::DropAssignment)
            }
            Phase::Stable { revoking, .. } => match shared.take(self.generation) {
                None => Ok(Step::Quiet),
                Some(Signal::Rejoin) => {
                    if assigned.is_empty() {
                        self.go_idle();
                        self.reason = "the group is rebalancing";
                        return Ok(Step::Quiet);
                    }
                    *revoking = true;
                    Ok(Step::Event(Rebalance::Revoked(assigned.to_vec())))
                }
                Some(Signal::Lost(reason)) => {
                    self.go_idle();
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
                        Ok(Step::DropAssignment)
                    } else {
                        Ok(Step::Event(Rebalance::Lost(assigned.to_vec())))
                    }
                }
                Some(Signal::Fatal(e)) => {
                    self.go_idle();
                    self.generation = -1;
                    Err(e)
                }
            },
            Phase::Idle => {
                if self.retry_at.is_some_and(|t| Instant::now() < t) {
                    return Ok(Step::Quiet);
                }
                self.retry_at = None;
                let params = JoinParams {
                    instance_id: cfg.group_instance_id.clone(),
                    member_id: self.member_id.clone(),
                    session_timeout: cfg.session_timeout,
                    rebalance_timeout: cfg.rebalance_timeout,
                    strategies: cfg.strategies.clone(),
                    topics: topics.to_vec(),
                    retry_backoff: client.config().retry_backoff(),
                    reason: self.reason,
                };
                let link = self.link.clone();
                let client = client.clone();
                let wake = shared.clone();
                self.generation = -1;
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
                Ok(Step::Quiet)
            }
            Phase::Joining(join) => {
                let Some(r) = join.try_take() else {
                    return Ok(Step::Quiet);
                };
                self.phase = Phase::Idle;
                match r {
                    Ok(Ok(joined)) => {
                        self.generation = joined.generation;
                        self.member_id.clone_from(&joined.member_id);
                        tracing::info!(
                            group = self.link.group_id(),
                            member = %joined.member_id,
                            generation = joined.generation,
                            leader = joined.leader,
                            protocol = %joined.protocol,
                            partitions = joined.assignment.len(),
                            "joined the group"
                        );
                        let me = heartbeat::Member {
                            generation: joined.generation,
                            member_id: joined.member_id.clone(),
                            instance_id: cfg.group_instance_id.clone(),
                        };
                        let timing = Timing {
                            interval: cfg.heartbeat_interval,
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
                            heartbeat::run(self.link.clone(), shared.clone(), me, timing)
                                .instrument(span),
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
                        Ok(Step::Event(Rebalance::Assigned(joined.assignment)))
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
}

/// Sends LeaveGroup for the member (used by [`Group::leave`]).
async fn leave_group(link: &CoordinatorLink, member_id: &str, instance: Option<&str>) {
    crate::group::heartbeat::leave(link, member_id, instance, "the consumer is closing").await;
}
