//! Offsets of partitions (ListOffsets to each partition's leader):
//! earliest (-2), latest (-1, the high watermark), by timestamp (KIP-79: the
//! first offset whose timestamp is at or after it), and the last stable
//! offset (latest under read_committed isolation, KIP-98: the first offset
//! of the oldest open transaction, or the high watermark when none is open).

use std::collections::BTreeMap;

use exactly_codec::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use exactly_codec::messages::{ApiKey, BrokerId, ListOffsetsRequest, TopicName};
use exactly_codec::protocol::StrBytes;
use futures_util::future::join_all;

use crate::send::{millis, send};
use crate::{Admin, AdminError};

/// Which offset of a partition to ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetSpec {
    /// The log start offset.
    Earliest,
    /// The high watermark (read_uncommitted end).
    Latest,
    /// The last stable offset (read_committed end): where a read_committed
    /// consumer stops while a transaction is open.
    LastStable,
    /// The first offset whose timestamp is at or after this (ms since the
    /// epoch); the latest offset when none is (offset -1 from the broker is
    /// reported as `None`).
    Timestamp(i64),
}

impl OffsetSpec {
    fn wire(self) -> (i64, i8) {
        match self {
            OffsetSpec::Earliest => (-2, 0),
            OffsetSpec::Latest => (-1, 0),
            OffsetSpec::LastStable => (-1, 1),
            OffsetSpec::Timestamp(ts) => (ts, 0),
        }
    }
}

/// One partition's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListedOffset {
    /// The offset; `None` when no record has a timestamp at or after the
    /// one asked for.
    pub offset: Option<i64>,
    /// The record's timestamp (for [`OffsetSpec::Timestamp`]), else -1.
    pub timestamp: i64,
    /// The leader epoch of the offset, -1 when unknown.
    pub leader_epoch: i32,
}

/// Partitions (with their leader epochs) of each topic, for one leader.
type ByTopic<'a> = BTreeMap<&'a str, Vec<(i32, i32)>>;

/// Answers keyed by (topic, partition).
pub type Offsets = BTreeMap<(String, i32), Result<ListedOffset, AdminError>>;

impl Admin {
    /// The offsets of `partitions` at `spec`, one ListOffsets per leader.
    pub async fn list_offsets(
        &self,
        partitions: &[(&str, i32)],
        spec: OffsetSpec,
    ) -> Result<Offsets, AdminError> {
        let mut topics: Vec<&str> = partitions.iter().map(|(t, _)| *t).collect();
        topics.sort_unstable();
        topics.dedup();
        let view = self.client.refresh_metadata(&topics).await?;
        let mut out = Offsets::new();
        let mut by_leader: BTreeMap<i32, ByTopic<'_>> = BTreeMap::new();
        for &(t, p) in partitions {
            match view.route(t, p) {
                Some(r) => by_leader
                    .entry(r.leader)
                    .or_default()
                    .entry(t)
                    .or_default()
                    .push((p, r.leader_epoch)),
                None => {
                    out.insert(
                        (t.to_owned(), p),
                        Err(AdminError::NotFound(format!("a leader for {t}-{p}"))),
                    );
                }
            }
        }
        let (timestamp, isolation) = spec.wire();
        let timeout = millis(self.client.config().request_timeout());
        let calls = by_leader.into_iter().map(|(leader, topics)| {
            let req = ListOffsetsRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_isolation_level(isolation)
                .with_timeout_ms(timeout)
                .with_topics(
                    topics
                        .iter()
                        .map(|(t, ps)| {
                            ListOffsetsTopic::default()
                                .with_name(TopicName(StrBytes::from_string((*t).to_owned())))
                                .with_partitions(
                                    ps.iter()
                                        .map(|&(p, epoch)| {
                                            ListOffsetsPartition::default()
                                                .with_partition_index(p)
                                                .with_current_leader_epoch(epoch)
                                                .with_timestamp(timestamp)
                                        })
                                        .collect(),
                                )
                        })
                        .collect(),
                );
            async move {
                let r = async {
                    let conn = self.client.connection(leader).await?;
                    send(&conn, &req).await
                }
                .await;
                (topics, r)
            }
        });
        for (asked, resp) in join_all(calls).await {
            let resp = match resp {
                Ok(r) => r,
                Err(e) => {
                    for (t, ps) in asked {
                        for (p, _) in ps {
                            out.insert((t.to_owned(), p), Err(e.clone()));
                        }
                    }
                    continue;
                }
            };
            for t in &resp.topics {
                for p in &t.partitions {
                    let key = (t.name.0.to_string(), p.partition_index);
                    let r = AdminError::check(
                        ApiKey::ListOffsets,
                        || format!("{}-{}", key.0, key.1),
                        p.error_code,
                        None,
                    )
                    .map(|()| ListedOffset {
                        offset: (p.offset >= 0).then_some(p.offset),
                        timestamp: p.timestamp,
                        leader_epoch: p.leader_epoch,
                    });
                    out.insert(key, r);
                }
            }
            for (t, ps) in asked {
                for (p, _) in ps {
                    out.entry((t.to_owned(), p)).or_insert_with(|| {
                        Err(AdminError::Unexpected(format!(
                            "ListOffsets did not answer for {t}-{p}"
                        )))
                    });
                }
            }
        }
        Ok(out)
    }

    /// The offsets of every partition of `topic` at `spec`.
    pub async fn topic_offsets(
        &self,
        topic: &str,
        spec: OffsetSpec,
    ) -> Result<Offsets, AdminError> {
        let parts = self.partitions(topic).await?;
        let asked: Vec<(&str, i32)> = parts.iter().map(|&p| (topic, p)).collect();
        self.list_offsets(&asked, spec).await
    }
}
