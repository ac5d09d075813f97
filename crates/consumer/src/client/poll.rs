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
            self.maybe_refresh_metadata();
            if let Some(e) = self.deleted_topic() {
                return Err(e);
            }
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
        let (topics, regex) = match &self.mode {
            Mode::Subscribed(t) => (t.clone(), None),
            Mode::Pattern(r) => (Vec::new(), Some(r.clone())),
            _ => return Ok(None),
        };
        let Some(g) = self.group.as_mut() else {
            return Ok(None);
        };
        // Commit before handing out Revoked when auto commit is on (eager:
        // the heartbeat asked for a rejoin; KIP-848: a reconciliation is
        // about to revoke).
        if self.cfg.enable_auto_commit && g.revoke_coming(&self.shared) {
            self.auto_commit_now().await;
        }
        let Some(g) = self.group.as_mut() else {
            return Ok(None);
        };
        let assigned = self.asg.list();
        match g
            .step(
                &self.shared,
                &self.cfg,
                &self.client,
                &topics,
                regex.as_deref(),
                &assigned,
            )
            .await?
        {
            Action::Quiet => Ok(None),
            Action::Drop(parts) => {
                self.fetcher.abort_all(&mut self.asg);
                self.tasks.abort_lookups();
                for tp in &parts {
                    self.asg.partitions.remove(tp);
                }
                let assigned = self.asg.list();
                // The join (eager) or the Assigned event (cooperative,
                // KIP-848) follows on the same turn.
                let Some(g) = self.group.as_mut() else {
                    return Ok(None);
                };
                match g
                    .step(
                        &self.shared,
                        &self.cfg,
                        &self.client,
                        &topics,
                        regex.as_deref(),
                        &assigned,
                    )
                    .await?
                {
                    Action::Event(ev) => self.rebalanced(ev),
                    _ => Ok(None),
                }
            }
            Action::Event(ev) => {
                let cooperative = self.group.as_ref().is_some_and(|g| g.is_cooperative());
                if cooperative
                    && self.cfg.enable_auto_commit
                    && matches!(ev, super::Rebalance::Revoked(_))
                {
                    self.auto_commit_now().await;
                }
                self.rebalanced(ev)
            }
        }
    }

    /// Applies a rebalance event to the assignment and hands it out.
    fn rebalanced(&mut self, ev: super::Rebalance) -> Result<Option<Polled>, ConsumerError> {
        use super::Rebalance;
        match &ev {
            Rebalance::Revoked(parts) => {
                // Stop fetching; what was fetched but not handed out for the
                // revoked partitions is dropped, positions stay for the
                // user's commit. Kept partitions keep their buffers.
                self.fetcher.abort_all(&mut self.asg);
                self.tasks.abort_lookups();
                for tp in parts {
                    if let Some(st) = self.asg.partitions.get_mut(tp) {
                        st.buffer = None;
                    }
                }
            }
            Rebalance::Lost(_) => {
                self.fetcher.abort_all(&mut self.asg);
                self.tasks.abort_lookups();
                self.asg.clear();
            }
            Rebalance::Assigned(parts) => {
                self.metrics.rebalanced();
                let pending = self.initial_pending();
                let mut all = self.asg.list();
                all.extend(parts.iter().cloned());
                self.asg.set(&all, pending);
            }
        }
        Ok(Some(Polled::Rebalance(ev)))
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

    /// The periodic refresh (`metadata.max.age.ms`, as the reference client
    /// does): new partitions, moved leaders and deleted topics are seen even
    /// when no request failed. Covers the subscribed topics (the group's
    /// leader compares their partition counts with its assignment's).
    fn maybe_refresh_metadata(&mut self) {
        let now = Instant::now();
        if now < self.next_metadata_refresh {
            return;
        }
        self.next_metadata_refresh = now + super::metadata_max_age(&self.client);
        let mut topics: Vec<String> = match &self.mode {
            Mode::Subscribed(t) => t.clone(),
            _ => Vec::new(),
        };
        topics.extend(self.asg.partitions.keys().map(|tp| tp.topic.clone()));
        topics.sort();
        topics.dedup();
        if topics.is_empty() {
            return;
        }
        tracing::debug!(?topics, "periodic metadata refresh (metadata.max.age.ms)");
        self.tasks
            .refresh_metadata(&self.client, topics, &self.shared);
    }

    /// A topic of assigned partitions the cluster no longer knows: reported
    /// once. Under manual assignment its partitions are dropped; in a group
    /// the leader's rejoin (it sees the partition count change) revokes
    /// them.
    fn deleted_topic(&mut self) -> Option<ConsumerError> {
        let view = self.client.view();
        let gone = self.asg.partitions.keys().find(|tp| {
            view.topic(&tp.topic).is_none()
                && view.topic_error(&tp.topic)
                    == Some(exactly_codec::ErrorCode::UnknownTopicOrPartition)
                && !self.deleted.contains(&tp.topic)
        })?;
        let topic = gone.topic.clone();
        tracing::warn!(%topic, "a topic of assigned partitions was deleted");
        self.deleted.insert(topic.clone());
        if matches!(self.mode, Mode::Assigned) {
            self.fetcher.abort_all(&mut self.asg);
            self.asg.partitions.retain(|tp, _| tp.topic != topic);
        }
        Some(ConsumerError::TopicDeleted { topic })
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
        let meta = Some(self.next_metadata_refresh);
        [partitions, group, auto, idle, meta]
            .into_iter()
            .flatten()
            .min()
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
