//! The consumer's background lookups: committed offsets and ListOffsets for
//! partitions without a position, and metadata refreshes. At most one of
//! each kind runs at a time; each wakes `poll` when it ends, and its result
//! is applied only to partitions still waiting under the same version.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use exactly_net::Client;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::background::Background;
use crate::config::{ConsumerConfig, IsolationLevel, OffsetReset};
use crate::error::ConsumerError;
use crate::group::coordinator::CoordinatorLink;
use crate::group::heartbeat::GroupShared;
use crate::offsets::{self, ListedOffset, OffsetAndMetadata};
use crate::state::{Assignment, Pending, Position};
use crate::TopicPartition;

type Asked = Vec<(TopicPartition, u64)>;
type CommittedResult = Result<BTreeMap<TopicPartition, Option<OffsetAndMetadata>>, ConsumerError>;

/// The running lookups.
#[derive(Debug, Default)]
pub(crate) struct Tasks {
    committed: Option<(Asked, Background<CommittedResult>)>,
    reset: Option<(Asked, Background<HashMap<TopicPartition, ListedOffset>>)>,
    metadata: Option<JoinHandle<()>>,
}

impl Tasks {
    pub(crate) fn abort_all(&mut self) {
        if let Some((_, h)) = self.committed.take() {
            h.abort();
        }
        if let Some((_, h)) = self.reset.take() {
            h.abort();
        }
        if let Some(h) = self.metadata.take() {
            h.abort();
        }
    }

    /// Abandons the position lookups (the assignment changed under them).
    pub(crate) fn abort_lookups(&mut self) {
        if let Some((_, h)) = self.committed.take() {
            h.abort();
        }
        if let Some((_, h)) = self.reset.take() {
            h.abort();
        }
    }

    /// Starts a metadata refresh for `topics` unless one is running.
    pub(crate) fn refresh_metadata(
        &mut self,
        client: &Client,
        topics: Vec<String>,
        shared: &Arc<GroupShared>,
    ) {
        if self.metadata.as_ref().is_some_and(|h| !h.is_finished()) {
            return;
        }
        let client = client.clone();
        let wake = shared.clone();
        self.metadata = Some(tokio::spawn(async move {
            let names: Vec<&str> = topics.iter().map(String::as_str).collect();
            if let Err(e) = client.refresh_metadata(&names).await {
                tracing::debug!(error = %e, "metadata refresh failed");
                tokio::time::sleep(client.config().retry_backoff()).await;
            }
            wake.notify.notify_one();
        }));
    }

    /// Applies finished lookups, then starts new ones for partitions still
    /// without a position. Returns an error a lookup met that the user must
    /// see (authorization, `auto.offset.reset=none`).
    pub(crate) async fn drive(
        &mut self,
        client: &Client,
        cfg: &ConsumerConfig,
        link: Option<&Arc<CoordinatorLink>>,
        asg: &mut Assignment,
        shared: &Arc<GroupShared>,
    ) -> Result<(), ConsumerError> {
        let now = Instant::now();
        let backoff = client.config().retry_backoff();
        let mut first_error = None;

        // Committed offsets.
        let done = self.committed.as_mut().and_then(|(_, h)| h.try_take());
        if let Some(result) = done {
            if let Some((asked, _)) = self.committed.take() {
                match result {
                    Ok(Ok(map)) => {
                        for (tp, v) in asked {
                            let Some(st) = asg.partitions.get_mut(&tp) else {
                                continue;
                            };
                            if st.version != v || st.position.is_some() {
                                continue;
                            }
                            match map.get(&tp).cloned().flatten() {
                                Some(c) => {
                                    tracing::debug!(partition = %tp, offset = c.offset, "starting from the committed offset");
                                    st.position = Some(Position {
                                        offset: c.offset,
                                        leader_epoch: c.leader_epoch,
                                    });
                                }
                                None => match cfg.auto_offset_reset {
                                    OffsetReset::None => {
                                        st.error = Some(ConsumerError::NoOffset { partition: tp });
                                        st.retry_at = Some(now + backoff);
                                    }
                                    p => st.pending = Pending::Reset(p),
                                },
                            }
                        }
                    }
                    Ok(Err(e)) => {
                        tracing::debug!(error = %e, "committed offset lookup failed");
                        for (tp, v) in asked {
                            if let Some(st) = asg.partitions.get_mut(&tp) {
                                if st.version == v {
                                    st.retry_at = Some(now + backoff);
                                }
                            }
                        }
                        if !e.is_retriable() && first_error.is_none() {
                            first_error = Some(e);
                        }
                    }
                    Err(_) => {}
                }
            }
        }
        if self.committed.is_none() {
            let want: Asked = asg
                .partitions
                .iter()
                .filter(|(_, st)| {
                    st.position.is_none()
                        && st.pending == Pending::Committed
                        && st.retry_at.is_none_or(|t| now >= t)
                })
                .map(|(tp, st)| (tp.clone(), st.version))
                .collect();
            if !want.is_empty() {
                match link {
                    None => {
                        for (tp, _) in &want {
                            if let Some(st) = asg.partitions.get_mut(tp) {
                                st.pending = Pending::Reset(cfg.auto_offset_reset);
                            }
                        }
                    }
                    Some(link) => {
                        let link = link.clone();
                        let parts: Vec<TopicPartition> =
                            want.iter().map(|(tp, _)| tp.clone()).collect();
                        let stable = cfg.isolation_level == IsolationLevel::ReadCommitted;
                        let deadline = now + cfg.default_api_timeout;
                        let h = Background::spawn(
                            async move {
                                offsets::fetch_committed(&link, &parts, stable, deadline, backoff)
                                    .await
                            },
                            shared.clone(),
                        );
                        self.committed = Some((want, h));
                    }
                }
            }
        }

        // Resets (ListOffsets).
        let done = self.reset.as_mut().and_then(|(_, h)| h.try_take());
        if let Some(result) = done {
            if let Some((asked, _)) = self.reset.take() {
                if let Ok(got) = result {
                    let mut refresh = false;
                    for (tp, v) in asked {
                        let Some(st) = asg.partitions.get_mut(&tp) else {
                            continue;
                        };
                        if st.version != v || st.position.is_some() {
                            continue;
                        }
                        match got.get(&tp) {
                            Some(Ok((offset, epoch))) => {
                                tracing::debug!(partition = %tp, offset, "position reset");
                                st.position = Some(Position {
                                    offset: *offset,
                                    leader_epoch: *epoch,
                                });
                            }
                            Some(Err(c)) if !offsets::list_retriable(*c) => {
                                st.error = Some(ConsumerError::kafka(
                                    exactly_codec::messages::ApiKey::ListOffsets,
                                    *c,
                                    Some(tp.clone()),
                                ));
                                st.retry_at = Some(now + backoff);
                            }
                            _ => {
                                refresh = true;
                                st.retry_at = Some(now + backoff);
                            }
                        }
                    }
                    if refresh {
                        let topics = asg.partitions.keys().map(|tp| tp.topic.clone()).collect();
                        self.refresh_metadata(client, topics, shared);
                    }
                }
            }
        }
        if self.reset.is_none() {
            let mut want: Asked = Vec::new();
            let mut ask = Vec::new();
            for (tp, st) in asg.partitions.iter_mut() {
                let Pending::Reset(policy) = st.pending else {
                    continue;
                };
                if st.position.is_some() || st.retry_at.is_some_and(|t| now < t) {
                    continue;
                }
                match policy.timestamp() {
                    Some(ts) => {
                        want.push((tp.clone(), st.version));
                        ask.push((tp.clone(), ts));
                    }
                    None => {
                        if st.error.is_none() {
                            st.error = Some(ConsumerError::NoOffset {
                                partition: tp.clone(),
                            });
                        }
                        st.retry_at = Some(now + backoff);
                    }
                }
            }
            if !ask.is_empty() {
                let client2 = client.clone();
                let isolation = cfg.isolation_level;
                let h = Background::spawn(
                    async move {
                        let topics: Vec<String> =
                            ask.iter().map(|(tp, _)| tp.topic.clone()).collect();
                        let names: Vec<&str> = topics.iter().map(String::as_str).collect();
                        let _ = client2.metadata_for(&names).await;
                        offsets::list_offsets(&client2, &ask, isolation).await
                    },
                    shared.clone(),
                );
                self.reset = Some((want, h));
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Whether a lookup is running (poll should wait for its wake-up).
    pub(crate) fn busy(&self) -> bool {
        self.committed.is_some() || self.reset.is_some()
    }
}
