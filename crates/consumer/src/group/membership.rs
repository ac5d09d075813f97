//! The dispatch between the two group protocols (`group.protocol`): the
//! consumer holds a [`Membership`] and asks it the same questions under
//! either; each protocol keeps its own machine (`member.rs` for classic,
//! `consumer_protocol/` for KIP-848).

use std::sync::Arc;

use tokio::time::Instant;

use crate::config::{ConsumerConfig, GroupProtocol};
use crate::error::ConsumerError;
use crate::group::consumer_protocol::machine::Turn;
use crate::group::consumer_protocol::ConsumerMember;
use crate::group::coordinator::CoordinatorLink;
use crate::group::heartbeat::GroupShared;
use crate::group::member::{Group, Phase, Rebalance, Step};
use crate::TopicPartition;

/// What one step of the membership asks of the consumer.
#[derive(Debug)]
pub(crate) enum Action {
    /// Nothing.
    Quiet,
    /// Report this to the user.
    Event(Rebalance),
    /// Drop these partitions (a revoke acknowledged); then step again.
    Drop(Vec<TopicPartition>),
}

/// The member under one of the two protocols.
#[derive(Debug)]
pub(crate) enum Membership {
    /// JoinGroup/SyncGroup.
    Classic(Group),
    /// KIP-848.
    Consumer(ConsumerMember),
}

impl Membership {
    pub(crate) fn new(
        link: Arc<CoordinatorLink>,
        cfg: &ConsumerConfig,
        client: &exactly_net::Client,
    ) -> Self {
        match cfg.group_protocol {
            GroupProtocol::Classic => Membership::Classic(Group::new(link)),
            GroupProtocol::Consumer => Membership::Consumer(ConsumerMember::new(
                link,
                cfg,
                client.config().retry_backoff(),
            )),
        }
    }

    pub(crate) fn link(&self) -> &Arc<CoordinatorLink> {
        match self {
            Membership::Classic(g) => &g.link,
            Membership::Consumer(m) => &m.link,
        }
    }

    /// The generation (classic) or member epoch (KIP-848).
    pub(crate) fn generation(&self) -> i32 {
        match self {
            Membership::Classic(g) => g.generation,
            Membership::Consumer(m) => m.epoch(),
        }
    }

    pub(crate) fn member_id(&self) -> String {
        match self {
            Membership::Classic(g) => g.member_id.clone(),
            Membership::Consumer(m) => m.member_id(),
        }
    }

    /// Whether offsets may be committed under the current generation/epoch.
    pub(crate) fn can_commit(&self) -> bool {
        match self {
            Membership::Classic(g) => matches!(g.phase, Phase::Stable { .. }),
            Membership::Consumer(m) => m.is_member(),
        }
    }

    pub(crate) fn request_rejoin(&mut self, shared: &GroupShared) {
        match self {
            Membership::Classic(g) => g.request_rejoin(shared),
            // The next step passes the new subscription on.
            Membership::Consumer(_) => {}
        }
    }

    pub(crate) fn is_revoking(&self) -> bool {
        match self {
            Membership::Classic(g) => g.is_revoking(),
            Membership::Consumer(m) => m.is_revoking(),
        }
    }

    /// Whether the next step will hand out Revoked (auto commit goes first).
    pub(crate) fn revoke_coming(&self, shared: &GroupShared) -> bool {
        match self {
            Membership::Classic(g) => g.is_stable() && shared.peek_rejoin(g.generation),
            Membership::Consumer(m) => m.revoke_coming(),
        }
    }

    /// Whether a join is under way (classic: the generation may change;
    /// KIP-848: no epoch yet, so nothing is owned).
    pub(crate) fn is_joining(&self) -> bool {
        match self {
            Membership::Classic(g) => g.is_joining(),
            Membership::Consumer(m) => !m.is_member(),
        }
    }

    /// Classic protocol with the cooperative-sticky assignor (KIP-429).
    pub(crate) fn is_cooperative(&self) -> bool {
        match self {
            Membership::Classic(g) => g.cooperative,
            Membership::Consumer(_) => false,
        }
    }

    pub(crate) fn retry_at(&self) -> Option<Instant> {
        match self {
            Membership::Classic(g) => g.retry_at,
            Membership::Consumer(_) => None,
        }
    }

    pub(crate) fn stop_heartbeat(&mut self) {
        match self {
            Membership::Classic(g) => g.stop_heartbeat(),
            Membership::Consumer(m) => m.stop(),
        }
    }

    pub(crate) async fn leave(&mut self, cfg: &ConsumerConfig) {
        match self {
            Membership::Classic(g) => g.leave(cfg).await,
            Membership::Consumer(m) => m.leave().await,
        }
    }

    pub(crate) async fn step(
        &mut self,
        shared: &Arc<GroupShared>,
        cfg: &ConsumerConfig,
        client: &exactly_net::Client,
        topics: &[String],
        regex: Option<&str>,
        assigned: &[TopicPartition],
    ) -> Result<Action, ConsumerError> {
        match self {
            Membership::Classic(_) if regex.is_some() => Err(ConsumerError::Usage(
                "a regex subscription needs group.protocol=consumer".into(),
            )),
            Membership::Classic(g) => {
                Ok(match g.step(shared, cfg, client, topics, assigned).await? {
                    Step::Quiet => Action::Quiet,
                    Step::Event(e) => Action::Event(e),
                    Step::Drop(parts) => Action::Drop(parts),
                })
            }
            Membership::Consumer(m) => Ok(match m.step(shared, cfg, client, topics, regex)? {
                Turn::Quiet => Action::Quiet,
                Turn::Event(e) => Action::Event(e),
                Turn::Drop(parts) => Action::Drop(parts),
            }),
        }
    }
}
