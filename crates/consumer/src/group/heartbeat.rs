//! The background heartbeat of one generation, and the signals it leaves for
//! `poll`.
//!
//! One task per generation sends Heartbeat every `heartbeat.interval.ms` on
//! the coordinator link. It never changes the consumer's state itself: it
//! leaves a [`Signal`] tagged with its generation and wakes `poll`, which
//! ignores signals of a generation it no longer holds (ARCHITECTURE.md
//! principle 4). It also enforces `max.poll.interval.ms`: a member that has
//! not polled for that long leaves the group (as the Java client does) so the
//! group does not wait on a stuck process.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use exactly_codec::messages::leave_group_request::MemberIdentity;
use exactly_codec::messages::{ApiKey, GroupId, HeartbeatRequest, LeaveGroupRequest};
use exactly_codec::protocol::StrBytes;
use exactly_codec::ErrorCode;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::coordinator::CoordinatorLink;
use crate::error::{is_coordinator_moved, ConsumerError};

/// What the heartbeat learnt.
#[derive(Debug, Clone)]
pub enum Signal {
    /// The group is rebalancing: revoke and rejoin.
    Rejoin,
    /// The membership is gone (ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID, or
    /// `max.poll.interval.ms` passed): the partitions are lost, not revoked.
    Lost(LostReason),
    /// An error the group cannot recover from.
    Fatal(ConsumerError),
}

/// Why the membership was lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LostReason {
    /// The coordinator answered with this code.
    Code(ErrorCode),
    /// `poll` was not called within `max.poll.interval.ms`.
    PollTimeout,
}

impl Signal {
    fn severity(&self) -> u8 {
        match self {
            Signal::Rejoin => 1,
            Signal::Lost(_) => 2,
            Signal::Fatal(_) => 3,
        }
    }
}

/// State shared by the consumer and its heartbeat task.
#[derive(Debug)]
pub struct GroupShared {
    signal: Mutex<Option<(i32, Signal)>>,
    /// Woken when a signal is left.
    pub notify: Notify,
    started: Instant,
    last_poll_ms: AtomicU64,
}

impl Default for GroupShared {
    fn default() -> Self {
        Self {
            signal: Mutex::new(None),
            notify: Notify::new(),
            started: Instant::now(),
            last_poll_ms: AtomicU64::new(0),
        }
    }
}

impl GroupShared {
    /// Notes a call to `poll`.
    pub fn touch(&self) {
        let ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_poll_ms.store(ms, Ordering::Relaxed);
    }

    pub(crate) fn since_poll(&self) -> Duration {
        let now = self.started.elapsed();
        now.saturating_sub(Duration::from_millis(
            self.last_poll_ms.load(Ordering::Relaxed),
        ))
    }

    /// Leaves a signal for `generation`, keeping a more severe one already
    /// there for the same generation.
    pub fn signal(&self, generation: i32, s: Signal) {
        if let Ok(mut cur) = self.signal.lock() {
            let keep = cur
                .as_ref()
                .is_some_and(|(g, old)| *g == generation && old.severity() >= s.severity());
            if !keep {
                *cur = Some((generation, s));
            }
        }
        self.notify.notify_one();
    }

    /// Takes the signal left for `generation`; signals of other generations
    /// are dropped.
    pub fn take(&self, generation: i32) -> Option<Signal> {
        let mut cur = self.signal.lock().ok()?;
        match cur.take() {
            Some((g, s)) if g == generation => Some(s),
            _ => None,
        }
    }

    /// Looks at the signal for `generation` without taking it.
    pub fn peek_rejoin(&self, generation: i32) -> bool {
        self.signal
            .lock()
            .ok()
            .is_some_and(|cur| cur.as_ref().is_some_and(|(g, _)| *g == generation))
    }
}

/// A member's identity in one generation.
#[derive(Debug, Clone)]
pub struct Member {
    /// The generation.
    pub generation: i32,
    /// The member id.
    pub member_id: String,
    /// `group.instance.id`.
    pub instance_id: Option<String>,
}

/// Timings of the heartbeat.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// `heartbeat.interval.ms`.
    pub interval: Duration,
    /// Beat every [`QUICK_START_DIVISOR`]th of the interval during the
    /// generation's first interval (cooperative generations, KIP-429).
    pub quick_start: bool,
    /// `max.poll.interval.ms`.
    pub max_poll_interval: Duration,
    /// `retry.backoff.ms`.
    pub retry_backoff: Duration,
}

/// How much faster a cooperative generation beats in its first interval.
///
/// Under KIP-429 a generation that took partitions from a member is
/// followed at once by a second one: that member rejoins as soon as it has
/// given them up, and every other member learns of the new round only from
/// its next heartbeat. The members' heartbeats are in phase (each
/// generation's start together), so that is a whole `heartbeat.interval.ms`
/// later (3 s by default), during which the rejoined member's processing
/// session holds its commits. Beating 6 times as often during the first
/// interval of a cooperative generation cuts that wait to half a second, at
/// the price of a few extra Heartbeat requests per rebalance.
pub const QUICK_START_DIVISOR: u32 = 6;

/// The wait before the next heartbeat, `since_start` into the generation.
pub fn next_wait(t: &Timing, since_start: Duration) -> Duration {
    if t.quick_start && since_start < t.interval {
        t.interval / QUICK_START_DIVISOR
    } else {
        t.interval
    }
}

/// Runs the heartbeat of one generation until it learns something `poll`
/// must act on. Aborted by the consumer when the generation ends.
pub async fn run(link: Arc<CoordinatorLink>, shared: Arc<GroupShared>, me: Member, t: Timing) {
    let group = link.group_id().to_owned();
    let started = Instant::now();
    let mut wait = next_wait(&t, Duration::ZERO);
    loop {
        tokio::time::sleep(wait).await;
        wait = next_wait(&t, started.elapsed());
        if shared.since_poll() > t.max_poll_interval {
            tracing::warn!(
                generation = me.generation,
                "poll not called within max.poll.interval.ms; leaving the group"
            );
            if me.instance_id.is_none() {
                leave(&link, &me.member_id, None, "poll timeout").await;
            }
            shared.signal(me.generation, Signal::Lost(LostReason::PollTimeout));
            return;
        }
        let req = |v: i16| {
            let mut r = HeartbeatRequest::default()
                .with_group_id(GroupId(StrBytes::from_string(group.clone())))
                .with_generation_id(me.generation)
                .with_member_id(StrBytes::from_string(me.member_id.clone()));
            if v >= 3 {
                r.group_instance_id = me.instance_id.clone().map(StrBytes::from_string);
            }
            r
        };
        let (resp, coordinator) = match link.call(req, None).await {
            Ok(r) => r,
            Err(e) if e.is_retriable() => {
                tracing::debug!(error = %e, "heartbeat failed; retrying");
                wait = t.retry_backoff;
                continue;
            }
            Err(e) => {
                shared.signal(me.generation, Signal::Fatal(e.into()));
                return;
            }
        };
        match ErrorCode::from_code(resp.error_code) {
            None => {}
            Some(ErrorCode::RebalanceInProgress) => {
                tracing::debug!(generation = me.generation, "group is rebalancing");
                shared.signal(me.generation, Signal::Rejoin);
            }
            Some(
                c @ (ErrorCode::IllegalGeneration
                | ErrorCode::UnknownMemberId
                | ErrorCode::FencedInstanceId),
            ) => {
                tracing::info!(generation = me.generation, code = %c, "membership lost");
                let s = if c == ErrorCode::FencedInstanceId {
                    Signal::Fatal(ConsumerError::kafka(ApiKey::Heartbeat, c, None))
                } else {
                    Signal::Lost(LostReason::Code(c))
                };
                shared.signal(me.generation, s);
                return;
            }
            Some(c) if is_coordinator_moved(c) => {
                link.on_error(c, &coordinator).await;
                wait = t.retry_backoff;
            }
            Some(ErrorCode::CoordinatorLoadInProgress | ErrorCode::RequestTimedOut) => {
                wait = t.retry_backoff;
            }
            Some(c) => {
                shared.signal(
                    me.generation,
                    Signal::Fatal(ConsumerError::kafka(ApiKey::Heartbeat, c, None)),
                );
                return;
            }
        }
    }
}

/// Sends LeaveGroup for `member_id` (best effort: errors are logged).
pub async fn leave(
    link: &CoordinatorLink,
    member_id: &str,
    instance_id: Option<&str>,
    reason: &'static str,
) {
    let group = link.group_id().to_owned();
    let req = |v: i16| {
        let mut r =
            LeaveGroupRequest::default().with_group_id(GroupId(StrBytes::from_string(group)));
        if v >= 3 {
            r.members = vec![MemberIdentity::default()
                .with_member_id(StrBytes::from_string(member_id.to_owned()))
                .with_group_instance_id(instance_id.map(|s| StrBytes::from_string(s.to_owned())))
                .with_reason((v >= 5).then(|| StrBytes::from_static_str(reason)))];
        } else {
            r.member_id = StrBytes::from_string(member_id.to_owned());
        }
        r
    };
    match link.call(req, None).await {
        Ok((resp, _)) => match ErrorCode::from_code(resp.error_code) {
            None => tracing::debug!(%member_id, "left the group"),
            Some(c) => tracing::debug!(%member_id, code = %c, "LeaveGroup refused"),
        },
        Err(e) => tracing::debug!(%member_id, error = %e, "LeaveGroup failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cooperative_generation_beats_quickly_only_in_its_first_interval() {
        let mut t = Timing {
            interval: Duration::from_millis(3_000),
            quick_start: true,
            max_poll_interval: Duration::from_secs(300),
            retry_backoff: Duration::from_millis(100),
        };
        assert_eq!(next_wait(&t, Duration::ZERO), Duration::from_millis(500));
        assert_eq!(
            next_wait(&t, Duration::from_millis(2_999)),
            Duration::from_millis(500)
        );
        assert_eq!(
            next_wait(&t, Duration::from_millis(3_000)),
            Duration::from_millis(3_000)
        );
        t.quick_start = false;
        assert_eq!(next_wait(&t, Duration::ZERO), Duration::from_millis(3_000));
    }
}
