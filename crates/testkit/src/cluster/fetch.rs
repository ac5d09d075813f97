//! Reading the simulated log on the wire: Fetch (v4-12, topic names) with
//! both isolation levels, and ListOffsets (earliest and latest).
//!
//! `read_committed` (KIP-98) serves up to the last stable offset and lists
//! the aborted transactions whose records may lie in the served range, so
//! the consumer drops them; `read_uncommitted` serves up to the high
//! watermark and lists none. Transaction markers are served as the control
//! batches Kafka writes, so a consumer steps over their offsets. The sim
//! has no fetch sessions (KIP-227): it answers session id 0, which tells
//! the client to send full fetches.

use bytes::{Bytes, BytesMut};
use exactly_codec::messages::fetch_response::{
    AbortedTransaction, FetchableTopicResponse, PartitionData,
};
use exactly_codec::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use exactly_codec::messages::{
    FetchRequest, FetchResponse, ListOffsetsRequest, ListOffsetsResponse, ProducerId, ResponseKind,
};
use exactly_codec::record::encode_control_batch;
use exactly_codec::ErrorCode;
use exactly_txn::TopicPartition;

use super::{Inner, SimCluster};
use crate::broker::LogEntry;

/// Kafka's `isolation_level` for read_committed.
const READ_COMMITTED: i8 = 1;
/// ListOffsets' timestamp asking for the earliest offset.
const EARLIEST: i64 = -2;
/// ListOffsets' timestamp asking for the latest offset.
const LATEST: i64 = -1;
/// How often a Fetch that found nothing looks again while it waits (on the
/// virtual clock) for up to its `max_wait_ms`.
const LONG_POLL_STEP_MS: u64 = 5;

/// One partition's answer to a Fetch.
struct Served {
    error: Option<ErrorCode>,
    high_watermark: i64,
    last_stable: i64,
    aborted: Option<Vec<AbortedTransaction>>,
    records: Bytes,
}

impl Inner {
    /// Serves `[offset, HW or LSO)` of one partition, at most about
    /// `max_bytes` (always at least one whole batch, as Kafka does).
    fn serve_partition(
        &self,
        tp: &TopicPartition,
        offset: i64,
        max_bytes: i32,
        committed: bool,
    ) -> Served {
        let empty = |error, hw, lso| Served {
            error,
            high_watermark: hw,
            last_stable: lso,
            aborted: committed.then(Vec::new),
            records: Bytes::new(),
        };
        if tp.partition < 0 || tp.partition >= self.partitions {
            return empty(Some(ErrorCode::UnknownTopicOrPartition), -1, -1);
        }
        let Some(log) = self.broker.logs.get(tp) else {
            // A partition nothing was written to: empty, offsets 0.
            return match offset {
                0 => empty(None, 0, 0),
                _ => empty(Some(ErrorCode::OffsetOutOfRange), 0, 0),
            };
        };
        let (hw, lso) = (log.high_watermark(), log.last_stable_offset());
        if offset < 0 || offset > hw {
            return empty(Some(ErrorCode::OffsetOutOfRange), hw, lso);
        }
        let upper = if committed { lso } else { hw };
        let limit = usize::try_from(max_bytes.max(1)).unwrap_or(1);
        let mut out = BytesMut::new();
        let mut served_to = offset;
        for entry in &log.entries {
            if entry.next_offset() <= offset || entry.base_offset() >= upper {
                continue;
            }
            if !out.is_empty() && out.len() >= limit {
                break;
            }
            match entry {
                LogEntry::Data { batch, .. } => {
                    if let Some(bytes) = self.batches.get(batch) {
                        out.extend_from_slice(bytes);
                    }
                }
                LogEntry::Marker {
                    pid,
                    commit,
                    epoch,
                    offset: at,
                } => {
                    if let Ok(bytes) = encode_control_batch(*at, 0, *pid, *epoch, *commit, 0) {
                        out.extend_from_slice(&bytes);
                    }
                }
            }
            served_to = entry.next_offset();
        }
        let aborted = committed.then(|| {
            log.aborted_between(offset, served_to)
                .into_iter()
                .map(|a| {
                    AbortedTransaction::default()
                        .with_producer_id(ProducerId(a.producer_id))
                        .with_first_offset(a.first_offset)
                })
                .collect()
        });
        Served {
            error: None,
            high_watermark: hw,
            last_stable: lso,
            aborted,
            records: out.freeze(),
        }
    }
}

impl SimCluster {
    /// Answers a Fetch, waiting on the virtual clock up to its `max_wait_ms`
    /// while no partition has anything to serve.
    pub(super) async fn fetch(&self, r: FetchRequest) -> ResponseKind {
        let committed = r.isolation_level == READ_COMMITTED;
        let wait = u64::try_from(r.max_wait_ms.max(0)).unwrap_or(0);
        let started = tokio::time::Instant::now();
        loop {
            let (body, any) = self.fetch_once(&r, committed);
            let waited = started.elapsed().as_millis() as u64;
            if any || waited >= wait {
                return ResponseKind::Fetch(body);
            }
            let step = LONG_POLL_STEP_MS.min(wait - waited);
            tokio::time::sleep(std::time::Duration::from_millis(step)).await;
        }
    }

    fn fetch_once(&self, r: &FetchRequest, committed: bool) -> (FetchResponse, bool) {
        let mut inner = self.lock();
        let now = Self::now(&inner);
        inner.broker.complete_due(now);
        inner.broker.expire_transactions(now);
        let mut any = false;
        let topics = r
            .topics
            .iter()
            .map(|t| {
                let partitions = t
                    .partitions
                    .iter()
                    .map(|p| {
                        let tp = TopicPartition::new(t.topic.0.as_str(), p.partition);
                        let s = inner.serve_partition(
                            &tp,
                            p.fetch_offset,
                            p.partition_max_bytes,
                            committed,
                        );
                        any |= s.error.is_some() || !s.records.is_empty();
                        PartitionData::default()
                            .with_partition_index(p.partition)
                            .with_error_code(s.error.map_or(0, ErrorCode::code))
                            .with_high_watermark(s.high_watermark)
                            .with_last_stable_offset(s.last_stable)
                            .with_log_start_offset(0)
                            .with_aborted_transactions(s.aborted)
                            .with_records(Some(s.records))
                    })
                    .collect();
                FetchableTopicResponse::default()
                    .with_topic(t.topic.clone())
                    .with_partitions(partitions)
            })
            .collect();
        inner.fetches += 1;
        (
            FetchResponse::default()
                .with_session_id(0)
                .with_responses(topics),
            any,
        )
    }

    /// Answers ListOffsets: earliest (0: the sim never deletes) and latest
    /// (the high watermark, or the last stable offset for read_committed);
    /// a timestamp lookup answers -1, "no such offset", which the sim does
    /// not index.
    pub(super) fn list_offsets(&self, r: ListOffsetsRequest) -> ResponseKind {
        let mut inner = self.lock();
        let now = Self::now(&inner);
        inner.broker.complete_due(now);
        let committed = r.isolation_level == READ_COMMITTED;
        let topics = r
            .topics
            .iter()
            .map(|t| {
                let partitions = t
                    .partitions
                    .iter()
                    .map(|p| {
                        let tp = TopicPartition::new(t.name.0.as_str(), p.partition_index);
                        let log = inner.broker.logs.get(&tp);
                        let latest = log.map_or(0, |l| match committed {
                            true => l.last_stable_offset(),
                            false => l.high_watermark(),
                        });
                        let (error, offset) =
                            if p.partition_index < 0 || p.partition_index >= inner.partitions {
                                (ErrorCode::UnknownTopicOrPartition.code(), -1)
                            } else {
                                match p.timestamp {
                                    EARLIEST => (0, 0),
                                    LATEST => (0, latest),
                                    _ => (0, -1),
                                }
                            };
                        ListOffsetsPartitionResponse::default()
                            .with_partition_index(p.partition_index)
                            .with_error_code(error)
                            .with_timestamp(-1)
                            .with_offset(offset)
                            .with_leader_epoch(0)
                    })
                    .collect();
                ListOffsetsTopicResponse::default()
                    .with_name(t.name.clone())
                    .with_partitions(partitions)
            })
            .collect();
        ResponseKind::ListOffsets(ListOffsetsResponse::default().with_topics(topics))
    }
}
