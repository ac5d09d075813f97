//! The consumer's offsets API: commits (OffsetCommit with the member's
//! generation, KIP-447), committed offsets (OffsetFetch, `require_stable`),
//! the rewind after an aborted transaction, and log end/start offsets.

use std::collections::BTreeMap;

use tokio::time::Instant;
use tracing::Instrument;

use super::{Consumer, Mode};
use crate::config::{IsolationLevel, OffsetReset};
use crate::error::ConsumerError;
use crate::offsets::{self, CommitIdentity, OffsetAndMetadata};
use crate::state::{Pending, Position};
use crate::{OffsetCommit, TopicPartition};

impl Consumer {
    /// Moves `partitions` back (or forward) to the group's committed offsets,
    /// waiting for pending transactional commits (`require_stable`). This is
    /// the rewind a transactional pipeline needs after an aborted transaction
    /// (KAFKA-17582): the positions must not stay past records whose
    /// processing was just rolled back. Partitions without a committed offset
    /// follow `auto.offset.reset`.
    pub async fn seek_to_committed(
        &mut self,
        partitions: &[TopicPartition],
    ) -> Result<(), ConsumerError> {
        self.check_open()?;
        for tp in partitions {
            self.partition_mut(tp)?;
        }
        let committed = self.committed(partitions).await?;
        for (tp, c) in committed {
            let v = self.asg.bump();
            let reset = self.cfg.auto_offset_reset;
            let st = self.partition_mut(&tp)?;
            match c {
                Some(c) => st.seek(
                    Some(Position {
                        offset: c.offset,
                        leader_epoch: c.leader_epoch,
                    }),
                    Pending::Committed,
                    v,
                ),
                None if reset == OffsetReset::None => {
                    return Err(ConsumerError::NoOffset { partition: tp })
                }
                None => st.seek(None, Pending::Reset(reset), v),
            }
        }
        Ok(())
    }

    /// The consumer's half of an aborted transaction (KAFKA-17582): given
    /// the groups and partitions whose offsets the aborted transaction
    /// carried (the producer's `Aborted { rewind }` event), moves this
    /// consumer's assigned partitions of its own group back to the committed
    /// offsets. Returns the partitions rewound.
    pub async fn rewind_after_abort(
        &mut self,
        rewind: &[(String, Vec<TopicPartition>)],
    ) -> Result<Vec<TopicPartition>, ConsumerError> {
        let Some(group) = self.cfg.group_id.clone() else {
            return Ok(Vec::new());
        };
        let mut parts: Vec<TopicPartition> = rewind
            .iter()
            .filter(|(g, _)| *g == group)
            .flat_map(|(_, ps)| ps.iter().cloned())
            .filter(|tp| self.asg.partitions.contains_key(tp))
            .collect();
        parts.sort();
        parts.dedup();
        if !parts.is_empty() {
            self.seek_to_committed(&parts).await?;
        }
        Ok(parts)
    }

    fn commit_identity(&self) -> Result<Option<CommitIdentity>, ConsumerError> {
        match (&self.mode, &self.group) {
            (Mode::Subscribed(_) | Mode::Pattern(_), Some(g)) if g.can_commit() => {
                Ok(Some(CommitIdentity {
                    generation: g.generation(),
                    member_id: g.member_id(),
                    instance_id: self.cfg.group_instance_id.clone(),
                }))
            }
            (Mode::Subscribed(_) | Mode::Pattern(_), Some(_)) => Err(ConsumerError::CommitFailed {
                code: exactly_codec::ErrorCode::RebalanceInProgress,
            }),
            _ => Ok(None),
        }
    }

    /// Commits the positions of every assigned partition.
    pub async fn commit(&mut self) -> Result<(), ConsumerError> {
        let offsets = self.offsets_to_commit();
        self.commit_offsets(&offsets).await
    }

    /// Commits `offsets` (each the next offset to read) for the group.
    pub async fn commit_offsets(&mut self, offsets: &[OffsetCommit]) -> Result<(), ConsumerError> {
        self.check_open()?;
        if offsets.is_empty() {
            return Ok(());
        }
        let link = self.link()?.clone();
        let deadline = Instant::now() + self.cfg.default_api_timeout;
        let mut attempts = 0;
        loop {
            let who = self.commit_identity()?;
            let span = tracing::debug_span!(
                "consumer.commit",
                group = link.group_id(),
                member = who.as_ref().map(|w| w.member_id.as_str()).unwrap_or(""),
                generation = who.as_ref().map_or(-1, |w| w.generation),
                partitions = offsets.len()
            );
            let r = offsets::commit(
                &link,
                who.as_ref(),
                offsets,
                deadline,
                self.client.config().retry_backoff(),
            )
            .instrument(span)
            .await;
            match r {
                // KIP-848: the coordinator moved the member to a new epoch
                // whose heartbeat answer is still on its way; the partitions
                // are still ours (a revocation would say otherwise), so the
                // commit goes again under the new epoch, as the Java client
                // does for a synchronous commit.
                Err(ConsumerError::CommitFailed {
                    code: exactly_codec::ErrorCode::StaleMemberEpoch,
                }) if attempts < 10 && Instant::now() < deadline => {
                    attempts += 1;
                    tokio::time::sleep(self.client.config().retry_backoff()).await;
                }
                r => {
                    r?;
                    break;
                }
            }
        }
        self.metrics.committed();
        Ok(())
    }

    /// The group's committed offsets for `partitions` (OffsetFetch;
    /// `require_stable` under `read_committed`, so this waits while a
    /// transaction that commits offsets for them is pending, KIP-447).
    pub async fn committed(
        &mut self,
        partitions: &[TopicPartition],
    ) -> Result<BTreeMap<TopicPartition, Option<OffsetAndMetadata>>, ConsumerError> {
        self.check_open()?;
        let link = self.link()?.clone();
        offsets::fetch_committed(
            &link,
            partitions,
            self.cfg.isolation_level == IsolationLevel::ReadCommitted,
            Instant::now() + self.cfg.default_api_timeout,
            self.client.config().retry_backoff(),
        )
        .await
    }

    /// The end offsets of `partitions`: the last stable offset under
    /// `read_committed`, else the high watermark.
    pub async fn end_offsets(
        &mut self,
        partitions: &[TopicPartition],
    ) -> Result<BTreeMap<TopicPartition, i64>, ConsumerError> {
        self.list_offsets(partitions, -1).await
    }

    /// The log start offsets of `partitions`.
    pub async fn beginning_offsets(
        &mut self,
        partitions: &[TopicPartition],
    ) -> Result<BTreeMap<TopicPartition, i64>, ConsumerError> {
        self.list_offsets(partitions, -2).await
    }

    async fn list_offsets(
        &mut self,
        partitions: &[TopicPartition],
        timestamp: i64,
    ) -> Result<BTreeMap<TopicPartition, i64>, ConsumerError> {
        self.check_open()?;
        let started = Instant::now();
        let deadline = started + self.cfg.default_api_timeout;
        let mut out = BTreeMap::new();
        let mut left: Vec<TopicPartition> = partitions.to_vec();
        loop {
            let topics: Vec<&str> = left.iter().map(|tp| tp.topic.as_str()).collect();
            if let Err(e) = self.client.metadata_for(&topics).await {
                if !e.is_retriable() {
                    return Err(e.into());
                }
            }
            let ask: Vec<(TopicPartition, i64)> =
                left.iter().map(|tp| (tp.clone(), timestamp)).collect();
            let got = offsets::list_offsets(&self.client, &ask, self.cfg.isolation_level).await;
            let mut retry = Vec::new();
            for tp in left {
                match got.get(&tp) {
                    Some(Ok((o, _))) => {
                        out.insert(tp, *o);
                    }
                    Some(Err(c)) if !offsets::list_retriable(*c) => {
                        return Err(ConsumerError::kafka(
                            exactly_codec::messages::ApiKey::ListOffsets,
                            *c,
                            Some(tp),
                        ))
                    }
                    _ => retry.push(tp),
                }
            }
            if retry.is_empty() {
                return Ok(out);
            }
            let backoff = self.client.config().retry_backoff();
            if Instant::now() + backoff >= deadline {
                return Err(ConsumerError::Timeout {
                    what: "ListOffsets",
                    after: started.elapsed(),
                });
            }
            tokio::time::sleep(backoff).await;
            left = retry;
        }
    }
}
