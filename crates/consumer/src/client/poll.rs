//! `poll`: one turn of the consumer's loop.
//!
//! Each turn, in order: the group machine (a rebalance is reported before
//! any record), errors left for the user, the position lookups, finished
//! fetches, records to hand out (up to `max.poll.records`; new fetches go
//! out before returning, so the next batch is already coming), new fetches,
//! then a wait for whichever comes first: a fetch, a signal from the
//! heartbeat or a lookup, a backoff ending, or the timeout.
//!
//! Cancel safety: every await either belongs to a task the consumer owns
//! (whose result waits for the next poll) or is a commit whose outcome is
//! then unknown, as any commit that times out; dropping the `poll` future
//! loses no record (records are taken from the buffers only right before
//! `poll` returns them).

use std::time::Duration;

use tokio::time::Instant;
use tracing::Instrument;

use super::{Consumer, Mode, Polled};
use crate::error::ConsumerError;
use crate::group::membership::Action;
use crate::record::Records;

impl Consumer {
    /// Waits up to `timeout` for records or a rebalance event.
    ///
    /// Retriable trouble (a lost connection, a leader moving, a coordinator
    /// moving, a transaction whose offsets are pending) is handled here and
    /// never returned; what is returned as an error is for the user to act
    /// on (a corrupt batch, authorization, an out-of-range offset with
    /// `auto.offset.reset=none`, a fatal group error). Call `poll` at least
    /// every `max.poll.interval.ms`, or the member leaves the group.
    pub async fn poll(&mut self, timeout: Duration) -> Result<Polled, ConsumerError> {
        self.check_open()?;
        if self.mode == Mode::None {
            return Err(ConsumerError::Usage(
                "poll before subscribe or assign".into(),
            ));
        }
        let span = match &self.group {
            Some(g) => tracing::debug_span!(
                "consumer.poll",
                group = g.link().group_id(),
                member = %g.member_id(),
                generation = g.generation()
            ),
            None => tracing::debug_span!("consumer.poll"),
        };
        let deadline = Instant::now() + timeout;
        self.poll_inner(deadline).instrument(span).await
    }

    async fn poll_inner(&mut self, deadline: Instant) -> Result<Polled, ConsumerError> {
        loop {
            // Waiting inside poll counts as polling (max.poll.interval.ms
            // is about the time the user spends between polls).
            self.shared.touch();
            if let Some(p) = self.group_turn().await? {
                return Ok(p);
            }
            if let Some(e) = self.asg.take_error() {
                return Err(e);
            }
            self.maybe_auto_commit().await;
            let revoking = self.group.as_ref().is_some_and(|g| g.is_revoking());
            if !revoking {
                let link = self.group.as_ref().map(|g| g.link().clone());
                self.tasks
                    .drive(
                        &self.client,
                        &self.cfg,
                        link.as_ref(),
                        &mut self.asg,
                        &self.shared,
                    )
                    .await?;
                while let Some(done) = self.fetcher.try_next() {
                    self.absorb(done);
                }
                let recs = self.asg.drain(self.cfg.max_poll_records);
                if !recs.is_empty() {
                    self.send_fetches();
                    self.metrics.delivered(recs.len());
                    return Ok(Polled::Records(Records::new(recs)));
                }
                if let Some(e) = self.asg.take_error() {
                    return Err(e);
                }
                self.send_fetches();
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(Polled::Records(Records::default()));
            }
            let mut wake = self.next_wake(now).map_or(deadline, |w| w.min(deadline));
            if self.group.is_some() {
                wake = wake.min(now + self.cfg.max_poll_interval / 2);
            }
            let fetching = !revoking && !self.fetcher.is_idle();
            tokio::select! {
                done = self.fetcher.next(), if fetching => self.absorb(done),
                _ = self.shared.notify.notified() => {}
                _ = tokio::time::sleep_until(wake) => {}
            }
        }
    }

    /// Runs the group machine while it has something to do right away.
    async fn group_turn(&mut self) -> Result<Option<Polled>, ConsumerError> {
        let Mode::Subscribed(topics) = &self.mode else {
            return Ok(None);
        };
        let topics = topics.clone();
        let Some(g) = self.group.as_mut() else {
            return Ok(None);
        };
        // Commit before handing out Revoked when auto commit is on.
        if self.cfg.enable_auto_commit && g.revoke_coming(&self.shared) {
            self.auto_commit_now().await;
        }
        // A dropped assignment is followed by the next step on the same
        // turn (the rejoin, or the partitions that come in).
        for _ in 0..3 {
            let Some(g) = self.group.as_mut() else {
                return Ok(None);
            };
            let assigned = self.asg.list();
            match g
                .step(&self.shared, &self.cfg, &self.client, &topics, &assigned)
                .await?
            {
                Action::Quiet => return Ok(None),
                Action::DropAll => {
                    self.fetcher.abort_all(&mut self.asg);
                    self.tasks.abort_lookups();
                    self.asg.clear();
                }
                Action::Drop(parts) => {
                    let keep: Vec<_> = self
                        .asg
                        .list()
                        .into_iter()
                        .filter(|tp| !parts.contains(tp))
                        .collect();
                    self.fetcher.abort_all(&mut self.asg);
                    self.tasks.abort_lookups();
                    let pending = self.initial_pending();
                    self.asg.set(&keep, pending);
                }
                Action::Event(ev) => return Ok(Some(self.on_rebalance(ev))),
            }
        }
        Ok(None)
    }

    /// Applies a rebalance event to the assignment before the user sees it.
    fn on_rebalance(&mut self, ev: super::Rebalance) -> Polled {
        use super::Rebalance;
        match &ev {
            Rebalance::Revoked(_) => {
                // Stop fetching; what was fetched but not handed out is
                // dropped, positions stay for the user's commit (and, under
                // KIP-848, for the partitions kept).
                self.fetcher.abort_all(&mut self.asg);
                self.tasks.abort_lookups();
                for st in self.asg.partitions.values_mut() {
                    st.buffer = None;
                }
            }
            Rebalance::Lost(_) => {
                self.fetcher.abort_all(&mut self.asg);
                self.tasks.abort_lookups();
                self.asg.clear();
            }
            Rebalance::Assigned(parts) => {
                // The partitions added (under eager rebalancing the
                // assignment was empty: all of it); the kept ones keep
                // their positions.
                self.metrics.rebalanced();
                let pending = self.initial_pending();
                self.fetcher.abort_all(&mut self.asg);
                self.tasks.abort_lookups();
                let mut all = self.asg.list();
                all.extend(parts.iter().cloned());
                self.asg.set(&all, pending);
            }
        }
        Polled::Rebalance(ev)
    }

    fn absorb(&mut self, done: crate::fetch::fetcher::FetchDone) {
        let a = self
            .fetcher
            .absorb(done, &self.client, &self.cfg, &mut self.asg, &self.metrics);
        if a.refresh_metadata {
            self.refresh_metadata();
        }
    }

    fn send_fetches(&mut self) {
        let missing = self
            .fetcher
            .send(&self.client, &self.cfg, &mut self.asg, &self.metrics);
        if missing {
            self.refresh_metadata();
        }
    }

    fn refresh_metadata(&mut self) {
        let mut topics: Vec<String> = self
            .asg
            .partitions
            .keys()
            .map(|tp| tp.topic.clone())
            .collect();
        topics.dedup();
        self.tasks
            .refresh_metadata(&self.client, topics, &self.shared);
    }

    /// The earliest moment something waiting on a timer may proceed.
    fn next_wake(&self, now: Instant) -> Option<Instant> {
        let partitions = self
            .asg
            .partitions
            .values()
            .filter_map(|p| p.retry_at)
            .filter(|t| *t > now)
            .min();
        let group = self
            .group
            .as_ref()
            .and_then(|g| g.retry_at())
            .filter(|t| *t > now);
        let auto = (self.cfg.enable_auto_commit && self.next_auto_commit > now)
            .then_some(self.next_auto_commit);
        // Partitions with neither a route nor a backoff: look again soon.
        let idle =
            (!self.asg.partitions.is_empty() && self.fetcher.is_idle() && !self.tasks.busy())
                .then(|| now + self.client.config().retry_backoff());
        [partitions, group, auto, idle].into_iter().flatten().min()
    }

    async fn maybe_auto_commit(&mut self) {
        if !self.cfg.enable_auto_commit || Instant::now() < self.next_auto_commit {
            return;
        }
        self.auto_commit_now().await;
    }

    async fn auto_commit_now(&mut self) {
        self.next_auto_commit = Instant::now() + self.cfg.auto_commit_interval;
        if self.asg.partitions.is_empty() {
            return;
        }
        if let Err(e) = self.commit().await {
            tracing::warn!(error = %e, "auto commit failed");
        }
    }
}
