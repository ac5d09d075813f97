//! Metadata refreshes (one at a time, shared by concurrent askers) and leader
//! lookups that wait out elections.

use std::sync::Arc;
use std::time::Duration;

use exactly_codec::messages::metadata_request::MetadataRequestTopic;
use exactly_codec::messages::{ApiKey, MetadataRequest, TopicName};
use exactly_codec::ErrorCode;
use tokio::time::Instant;

use super::Client;
use crate::backoff::backoff;
use crate::error::NetError;
use crate::metadata::{is_stale_metadata, ClusterView, Route};

impl Client {
    /// Fetches metadata for `topics` (an empty slice asks for brokers only)
    /// and merges it into the cache. Concurrent callers share one request
    /// when the one in progress already covers their topics.
    pub async fn refresh_metadata(&self, topics: &[&str]) -> Result<Arc<ClusterView>, NetError> {
        let before = self.view().generation();
        let _guard = self.inner.refresh_lock.lock().await;
        let view = self.view();
        if view.generation() > before
            && !self.inner.metadata.is_stale()
            && topics
                .iter()
                .all(|t| view.topic(t).is_some() || view.topic_error(t).is_some())
        {
            return Ok(view);
        }
        // Ask for every topic already cached too, so one refresh serves all.
        let mut names: Vec<String> = view.topic_names().map(str::to_owned).collect();
        names.extend(topics.iter().map(|t| (*t).to_owned()));
        names.sort();
        names.dedup();
        let req = MetadataRequest::default()
            .with_topics(Some(
                names
                    .into_iter()
                    .map(|n| MetadataRequestTopic::default().with_name(Some(TopicName(n.into()))))
                    .collect(),
            ))
            .with_allow_auto_topic_creation(self.config().allow_auto_create_topics());
        let mut last = None;
        // Try a few brokers: the one picked may have just died.
        let attempts = view.brokers().count() + self.config().bootstrap_servers().len();
        for _ in 0..attempts.max(1) {
            let conn = match self.any_connection().await {
                Ok(c) => c,
                Err(e) => return Err(e),
            };
            match conn.send(&req).await {
                Ok(resp) => {
                    if let Some(code) = ErrorCode::from_code(resp.error_code) {
                        self.metrics().record_error(code);
                        return Err(NetError::Kafka {
                            api: ApiKey::Metadata,
                            code,
                            message: None,
                        });
                    }
                    for t in &resp.topics {
                        if let Some(code) = ErrorCode::from_code(t.error_code) {
                            self.metrics().record_error(code);
                        }
                    }
                    let view = self.inner.metadata.apply(&resp, Instant::now());
                    tracing::debug!(
                        generation = view.generation(),
                        brokers = view.brokers().count(),
                        topics = resp.topics.len(),
                        "metadata refreshed"
                    );
                    return Ok(view);
                }
                Err(e) if e.is_retriable() => {
                    tracing::debug!(error = %e, "metadata request failed; trying another broker");
                    last = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| NetError::Bootstrap("no broker answered Metadata".into())))
    }

    /// Marks the metadata stale because a request routed under `generation`
    /// failed with a stale-metadata error; the next lookup refreshes. A
    /// failure from before the latest refresh is ignored.
    pub fn invalidate_metadata(&self, generation: u64) -> bool {
        self.inner.metadata.invalidate(generation)
    }

    /// Reports a partition-level error code from a response to a request
    /// routed with `route`: counts it and, when it means stale metadata
    /// (NOT_LEADER_OR_FOLLOWER, UNKNOWN_TOPIC_OR_PARTITION,
    /// FENCED_LEADER_EPOCH, ...), marks the metadata stale unless it was
    /// refreshed since. Returns whether the caller should re-route.
    pub fn on_partition_error(&self, code: ErrorCode, route: &Route) -> bool {
        self.metrics().record_error(code);
        if is_stale_metadata(code) {
            self.invalidate_metadata(route.generation);
            true
        } else {
            false
        }
    }

    /// The view, refreshed first if it is stale, older than
    /// `metadata.max.age.ms`, or lacks `topics`.
    pub async fn metadata_for(&self, topics: &[&str]) -> Result<Arc<ClusterView>, NetError> {
        let view = self.view();
        let fresh = view
            .updated()
            .is_some_and(|u| u.elapsed() < self.config().metadata_max_age());
        if fresh
            && !self.inner.metadata.is_stale()
            && topics.iter().all(|t| view.topic(t).is_some())
        {
            return Ok(view);
        }
        self.refresh_metadata(topics).await
    }

    /// The leader of `topic`/`partition`, refreshing metadata and waiting
    /// (with `retry.backoff.ms`) while there is none, up to
    /// `request.timeout.ms`. An unknown topic is reported once the time is up.
    pub async fn leader(&self, topic: &str, partition: i32) -> Result<Route, NetError> {
        let deadline = Instant::now() + self.config().request_timeout();
        let mut failures = 0u32;
        loop {
            let view = self.metadata_for(&[topic]).await?;
            if let Some(r) = view.route(topic, partition) {
                return Ok(r);
            }
            let code = view
                .topic_error(topic)
                .unwrap_or(ErrorCode::LeaderNotAvailable);
            if !is_stale_metadata(code) && code != ErrorCode::LeaderNotAvailable {
                return Err(NetError::Kafka {
                    api: ApiKey::Metadata,
                    code,
                    message: Some(format!("topic {topic}").into()),
                });
            }
            failures += 1;
            let wait = backoff(
                self.config().retry_backoff(),
                self.config().retry_backoff_max(),
                failures,
            );
            if Instant::now() + wait > deadline {
                return Err(NetError::Kafka {
                    api: ApiKey::Metadata,
                    code,
                    message: Some(format!("no leader for {topic}-{partition}").into()),
                });
            }
            tokio::time::sleep(wait).await;
            self.invalidate_metadata(view.generation());
        }
    }

    /// Waits until every partition of `topic` has a leader (e.g. after
    /// creating it), up to `timeout`.
    pub async fn wait_for_leaders(
        &self,
        topic: &str,
        timeout: Duration,
    ) -> Result<Arc<ClusterView>, NetError> {
        let deadline = Instant::now() + timeout;
        let mut failures = 0u32;
        loop {
            let view = self.refresh_metadata(&[topic]).await?;
            let ready = view.topic(topic).is_some_and(|t| {
                !t.partitions.is_empty()
                    && t.partitions
                        .iter()
                        .all(|p| view.route(topic, p.partition).is_some())
            });
            if ready {
                return Ok(view);
            }
            failures += 1;
            let wait = backoff(
                self.config().retry_backoff(),
                self.config().retry_backoff_max(),
                failures,
            );
            if Instant::now() + wait > deadline {
                return Err(NetError::Kafka {
                    api: ApiKey::Metadata,
                    code: view
                        .topic_error(topic)
                        .unwrap_or(ErrorCode::LeaderNotAvailable),
                    message: Some(format!("{topic} has no leader for every partition yet").into()),
                });
            }
            tokio::time::sleep(wait).await;
            self.invalidate_metadata(view.generation());
        }
    }
}
