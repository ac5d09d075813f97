//! The fetcher: one Fetch in flight per broker, each on a task of its own
//! so fetches to different brokers overlap and keep running while the user
//! processes records. Each broker's requests go through its KIP-227 fetch
//! session (`super::session`: after the first, a request names only the
//! partitions that changed), unless `enable.fetch.sessions` is false.
//!
//! Which partitions each fetch names, from where, and when a fetch is held
//! back: [`super::plan`]. The request asks what the Java client asks:
//! `fetch.min.bytes`, `fetch.max.wait.ms`, `fetch.max.bytes`,
//! `max.partition.fetch.bytes` and the isolation level.
//!
//! Each response is decoded on its fetch task (CRC, decompression, the
//! `read_committed` filter), off the task that polls, so decoding overlaps
//! the user's processing and other brokers' fetches. A response is checked
//! partition by partition against what was asked:
//! partitions that were not asked for, or that appear twice, are ignored
//! (counted); partitions the response leaves out are simply fetched again;
//! a partition whose position or version moved while the fetch was in flight
//! is dropped (the versioning invariant of the consumer's assignment state).
//!
//! Partition errors: stale-metadata codes (NOT_LEADER_OR_FOLLOWER,
//! FENCED_LEADER_EPOCH, UNKNOWN_LEADER_EPOCH, UNKNOWN_TOPIC_OR_PARTITION, ...)
//! go back to the cluster view through `on_partition_error`, which marks it
//! stale so the next route comes from a fresh Metadata; OFFSET_OUT_OF_RANGE
//! applies `auto.offset.reset`; anything else is reported to the user once
//! and the partition backs off.
//!
//! A fetch task that panics (a bug, never an answer we expect) does not
//! silently stop fetching from its broker: the join error becomes a failed
//! fetch, its partitions each report [`ConsumerError::FetchPanicked`] to
//! `poll` once, and fetching from that broker resumes after the backoff.
//!
//! `client.rack` goes out as the request's `rack_id` (KIP-392, Fetch v11+).
//!
//! Not done: log truncation detection after a leader change
//! (OffsetsForLeaderEpoch, KIP-320 `last_fetched_epoch`); following the
//! preferred read replica a KIP-392 broker names in its answer (every fetch
//! goes to the leader, so `client.rack` only informs the broker).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use exactly_codec::messages::fetch_request::{FetchPartition, FetchTopic, ForgottenTopic};
use exactly_codec::messages::{ApiKey, FetchRequest, FetchResponse, TopicName};
use exactly_codec::protocol::StrBytes;
use exactly_codec::record::{DecodeOptions, RecordError};
use exactly_codec::ErrorCode;
use exactly_net::metadata::is_stale_metadata;
use exactly_net::{Client, NetError, SendOptions};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::parse::{parse_partition, PartitionData};
use super::plan::{plan, Asked};
use super::read_committed::AbortedTxn;
use super::session::{Answer, FetchSession, Sent, SessionRequest};
use crate::config::{ConsumerConfig, IsolationLevel, OffsetReset};
use crate::error::ConsumerError;
use crate::metrics::ConsumerMetrics;
use crate::state::{Assignment, Buffered, Pending};

/// One partition's answer, parsed on the fetch task.
#[derive(Debug)]
enum Outcome {
    /// Records (or skipped batches, or a fault) to buffer, and the size of
    /// the records section as fetched.
    Data(super::parse::Parsed, usize),
    /// A partition error code.
    Error(ErrorCode),
    /// Nothing new.
    Empty,
}

#[derive(Debug)]
struct PartitionResult {
    asked: Asked,
    high_watermark: i64,
    last_stable_offset: i64,
    outcome: Outcome,
}

#[derive(Debug)]
enum Failure {
    Net(NetError),
    TopLevel(ErrorCode),
    /// The fetch task panicked; the message of the panic.
    Panicked(String),
}

/// A finished fetch.
#[derive(Debug)]
pub struct FetchDone {
    broker: i32,
    asked: Vec<Asked>,
    /// The response's `session_id` (0 without a response).
    session_id: i32,
    /// The request named only what changed in its session.
    incremental: bool,
    result: Result<Vec<PartitionResult>, Failure>,
}

impl FetchDone {
    /// How the fetch ended for its broker's session.
    fn answer(&self) -> Answer {
        match &self.result {
            Ok(_) => Answer::Ok {
                session_id: self.session_id,
            },
            Err(Failure::TopLevel(code)) => Answer::Error(*code),
            Err(Failure::Net(_) | Failure::Panicked(_)) => Answer::Failed,
        }
    }
}

/// See the module docs.
#[derive(Debug, Default)]
pub struct Fetcher {
    tasks: JoinSet<FetchDone>,
    /// What each task in flight was sent for, to answer for a task that
    /// panicked.
    running: HashMap<tokio::task::Id, (i32, Vec<Asked>)>,
    busy: HashSet<i32>,
    rotation: usize,
    /// Each broker's fetch session (KIP-227).
    sessions: HashMap<i32, FetchSession>,
}

/// What absorbing a response asks of the caller.
#[derive(Debug, Default, Clone, Copy)]
pub struct Absorbed {
    /// The cluster view should be refreshed.
    pub refresh_metadata: bool,
}

/// Matches a response to what was asked and parses each partition's data
/// (on the fetch task, off the caller's). Partitions not asked for, or
/// answered twice, are counted and dropped.
fn split(
    resp: FetchResponse,
    asked: &[Asked],
    isolation: IsolationLevel,
    opts: DecodeOptions,
    max_uncompressed: usize,
    metrics: &ConsumerMetrics,
) -> Vec<PartitionResult> {
    // What the response may still decompress to (`fetch.max.uncompressed.bytes`).
    let mut left = max_uncompressed;
    let mut index: HashMap<&str, HashMap<i32, usize>> = HashMap::new();
    for (i, a) in asked.iter().enumerate() {
        index
            .entry(a.tp.topic.as_str())
            .or_default()
            .insert(a.tp.partition, i);
    }
    let mut out = Vec::with_capacity(asked.len());
    for topic in resp.responses {
        let name = topic.topic.0.as_str();
        for p in topic.partitions {
            let found = index
                .get_mut(name)
                .and_then(|ps| ps.remove(&p.partition_index));
            let Some(i) = found else {
                // Not asked for, or a duplicate.
                metrics.unexpected_partition();
                continue;
            };
            let a = &asked[i];
            let outcome = match ErrorCode::from_code(p.error_code) {
                Some(code) => Outcome::Error(code),
                None => match p.records.filter(|r| !r.is_empty()) {
                    None => Outcome::Empty,
                    Some(records) => {
                        let fetched_bytes = records.len();
                        let aborted = match isolation {
                            IsolationLevel::ReadUncommitted => None,
                            IsolationLevel::ReadCommitted => Some(
                                p.aborted_transactions
                                    .unwrap_or_default()
                                    .into_iter()
                                    .map(|t| AbortedTxn {
                                        first_offset: t.first_offset,
                                        producer_id: t.producer_id.0,
                                    })
                                    .collect(),
                            ),
                        };
                        // An LSO above the high watermark cannot be: the
                        // high watermark bounds what is stable.
                        let mut last_stable_offset = p.last_stable_offset;
                        if isolation == IsolationLevel::ReadCommitted
                            && p.high_watermark >= 0
                            && last_stable_offset > p.high_watermark
                        {
                            last_stable_offset = p.high_watermark;
                            metrics.read_committed_anomaly();
                        }
                        let cap = opts.max_decompressed_size.min(max_uncompressed);
                        let mut parsed = parse_partition(
                            &a.topic,
                            a.tp.partition,
                            PartitionData {
                                fetch_offset: a.fetch_offset,
                                records,
                                aborted,
                                last_stable_offset,
                            },
                            DecodeOptions {
                                max_decompressed_size: cap.min(left),
                                ..opts
                            },
                        );
                        left = left.saturating_sub(parsed.stats.decompressed_bytes);
                        // A batch over what is left of the response's budget
                        // (but within the full cap) is no fault: it ends this
                        // partition's data here and is fetched again, first
                        // in a later response (partitions rotate).
                        if let Some(f) = &parsed.fault {
                            if matches!(f.error, RecordError::DecompressedTooLarge { max, .. } if max < cap)
                            {
                                parsed.fault = None;
                                metrics.decompression_budget_spent();
                            }
                        }
                        metrics.parsed(&parsed.stats, parsed.records.len());
                        Outcome::Data(parsed, fetched_bytes)
                    }
                },
            };
            out.push(PartitionResult {
                asked: a.clone(),
                high_watermark: p.high_watermark,
                last_stable_offset: p.last_stable_offset,
                outcome,
            });
        }
    }
    out
}

impl Fetcher {
    /// Whether any fetch is in flight.
    pub fn is_idle(&self) -> bool {
        self.tasks.is_empty()
    }

    /// A finished fetch, if one is ready (no waiting).
    pub fn try_next(&mut self) -> Option<FetchDone> {
        loop {
            let joined = self.tasks.try_join_next_with_id()?;
            if let Some(d) = self.joined(joined) {
                return Some(d);
            }
        }
    }

    /// Waits for a finished fetch (cancel-safe). Pending forever when idle.
    pub async fn next(&mut self) -> FetchDone {
        loop {
            match self.tasks.join_next_with_id().await {
                Some(joined) => {
                    if let Some(d) = self.joined(joined) {
                        return d;
                    }
                }
                None => std::future::pending::<()>().await,
            }
        }
    }

    /// A joined task as a finished fetch: a panic becomes a failed fetch of
    /// what the task was sent for; a cancelled task (`abort_all`) is none.
    fn joined(
        &mut self,
        joined: Result<(tokio::task::Id, FetchDone), tokio::task::JoinError>,
    ) -> Option<FetchDone> {
        match joined {
            Ok((id, d)) => {
                self.running.remove(&id);
                Some(d)
            }
            Err(e) => {
                let sent = self.running.remove(&e.id());
                if !e.is_panic() {
                    tracing::debug!(error = %e, "fetch task cancelled");
                    return None;
                }
                let payload = e.into_panic();
                let message = payload
                    .downcast_ref::<&str>()
                    .map(|m| (*m).to_owned())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic without a message".to_owned());
                tracing::error!(%message, "fetch task panicked");
                let (broker, asked) = sent?;
                Some(FetchDone {
                    broker,
                    asked,
                    session_id: 0,
                    incremental: false,
                    result: Err(Failure::Panicked(message)),
                })
            }
        }
    }

    /// Abandons every fetch in flight (their partitions are fetched again).
    pub fn abort_all(&mut self, asg: &mut Assignment) {
        self.tasks.abort_all();
        self.running.clear();
        self.busy.clear();
        // Whether the broker applied what was in flight is unknown.
        for s in self.sessions.values_mut() {
            s.failed();
        }
        for st in asg.partitions.values_mut() {
            st.in_flight = false;
        }
    }

    /// Sends a fetch to every broker that leads a fetchable partition and
    /// has none in flight, unless it would name only partitions at their
    /// end while another of its partitions waits for buffer room (see the
    /// module docs). Returns whether some partition had no route (the
    /// cluster view should be refreshed).
    pub fn send(
        &mut self,
        client: &Client,
        cfg: &ConsumerConfig,
        asg: &mut Assignment,
        metrics: &Arc<ConsumerMetrics>,
    ) -> bool {
        let view = client.view();
        let planned = plan(
            asg,
            |tp| view.route(&tp.topic, tp.partition),
            &self.busy,
            Instant::now(),
            usize::try_from(cfg.fetch_max_bytes).unwrap_or(0),
            cfg.isolation_level == IsolationLevel::ReadCommitted,
        );
        for _ in 0..planned.held {
            metrics.fetch_held();
        }
        self.rotation = self.rotation.wrapping_add(1);
        for (broker, mut asked) in planned.fetches {
            // Rotate the order so every partition gets to be first (the one
            // the broker fills even past the size limits, KIP-74).
            let k = self.rotation % asked.len();
            asked.rotate_left(k);
            for a in &asked {
                if let Some(st) = asg.partitions.get_mut(&a.tp) {
                    st.in_flight = true;
                }
            }
            let session = if cfg.fetch_sessions {
                let wanted: Vec<(&crate::TopicPartition, Sent)> = asked
                    .iter()
                    .map(|a| {
                        (
                            &a.tp,
                            Sent {
                                fetch_offset: a.fetch_offset,
                                leader_epoch: a.route.leader_epoch,
                                max_bytes: cfg.max_partition_fetch_bytes,
                            },
                        )
                    })
                    .collect();
                self.sessions.entry(broker).or_default().request(&wanted)
            } else {
                SessionRequest::sessionless(asked.len())
            };
            let req = build_request(cfg, &asked, &session);
            let incremental = !session.is_full();
            let client = client.clone();
            let timeout = client.config().request_timeout() + cfg.fetch_max_wait;
            let isolation = cfg.isolation_level;
            let opts = DecodeOptions {
                verify_crc: cfg.check_crcs,
                ..DecodeOptions::default()
            };
            let max_uncompressed = cfg.fetch_max_uncompressed_bytes;
            let metrics = metrics.clone();
            self.busy.insert(broker);
            let sent_for = (broker, asked.clone());
            let handle = self.tasks.spawn(async move {
                let sent = async {
                    let conn = client.connection(broker).await?;
                    let v = conn.versions().pick_client(ApiKey::Fetch)?;
                    conn.send_with(
                        &req,
                        SendOptions {
                            version: Some(v),
                            timeout: Some(timeout),
                        },
                    )
                    .await
                }
                .await;
                metrics.fetch();
                let mut session_id = 0;
                let result = match sent {
                    Err(e) => Err(Failure::Net(e)),
                    Ok(resp) => match ErrorCode::from_code(resp.error_code) {
                        Some(code) => Err(Failure::TopLevel(code)),
                        None => Ok({
                            session_id = resp.session_id;
                            split(resp, &asked, isolation, opts, max_uncompressed, &metrics)
                        }),
                    },
                };
                FetchDone {
                    broker,
                    asked,
                    session_id,
                    incremental,
                    result,
                }
            });
            self.running.insert(handle.id(), sent_for);
        }
        planned.missing_route
    }

    /// Applies a finished fetch to the assignment.
    pub fn absorb(
        &mut self,
        done: FetchDone,
        client: &Client,
        cfg: &ConsumerConfig,
        asg: &mut Assignment,
        metrics: &ConsumerMetrics,
    ) -> Absorbed {
        self.busy.remove(&done.broker);
        if cfg.fetch_sessions {
            let s = self.sessions.entry(done.broker).or_default();
            let resets = s.resets();
            s.answered(done.answer());
            if s.resets() != resets {
                metrics.fetch_session_reset();
            }
        }
        let now = Instant::now();
        let backoff = client.config().retry_backoff();
        let mut out = Absorbed::default();
        // Whether the partition still waits for this very fetch: same
        // version, and still to be fetched from where it was asked (the
        // application may have drained records meanwhile; a seek changes
        // the version).
        let current = |asg: &Assignment, a: &Asked| {
            asg.partitions.get(&a.tp).is_some_and(|st| {
                st.version == a.version && st.fetch_offset() == Some(a.fetch_offset)
            })
        };
        for a in &done.asked {
            if let Some(st) = asg.partitions.get_mut(&a.tp) {
                st.in_flight = false;
            }
        }
        let results = match done.result {
            Ok(r) => r,
            Err(failure) => {
                metrics.fetch_error();
                let still: Vec<&Asked> = done.asked.iter().filter(|a| current(asg, a)).collect();
                for a in still {
                    let Some(st) = asg.partitions.get_mut(&a.tp) else {
                        continue;
                    };
                    st.retry_at = Some(now + backoff);
                    match &failure {
                        Failure::Net(e) => {
                            if e.needs_metadata_refresh() {
                                client.invalidate_metadata(a.route.generation);
                                out.refresh_metadata = true;
                            }
                            // What retrying cannot fix (an unsupported
                            // version, a response we cannot decode) is the
                            // user's to see.
                            if !e.is_retriable() && st.error.is_none() {
                                st.error = Some(ConsumerError::Net(e.clone()));
                            }
                        }
                        Failure::TopLevel(code) if is_session_error(*code) => {
                            // The session starts over with the next
                            // request, a full one: no reason to wait
                            // (after a full one, the broker is odd: wait).
                            if done.incremental {
                                st.retry_at = None;
                            }
                        }
                        Failure::TopLevel(code) => {
                            out.refresh_metadata |= client.on_partition_error(*code, &a.route);
                        }
                        Failure::Panicked(message) => {
                            if st.error.is_none() {
                                st.error = Some(ConsumerError::FetchPanicked {
                                    broker: done.broker,
                                    message: message.clone(),
                                });
                            }
                        }
                    }
                }
                if let Failure::Net(e) = &failure {
                    tracing::debug!(broker = done.broker, error = %e, "fetch failed");
                }
                return out;
            }
        };
        for r in results {
            if !current(asg, &r.asked) {
                continue;
            }
            let a = r.asked;
            let Some(st) = asg.partitions.get_mut(&a.tp) else {
                continue;
            };
            // An LSO going backwards on one leader (see `LsoWatch`): counted,
            // reading continues. The LSO compared is the one parsing used
            // (bounded by the high watermark).
            if cfg.isolation_level == IsolationLevel::ReadCommitted
                && !matches!(r.outcome, Outcome::Error(_))
            {
                let lso = if r.high_watermark >= 0 {
                    r.last_stable_offset.min(r.high_watermark)
                } else {
                    r.last_stable_offset
                };
                if st.lso_watch.observe(a.route.leader_epoch, lso) {
                    tracing::warn!(partition = %a.tp, lso, "last stable offset went backwards");
                    metrics.read_committed_anomaly();
                }
            }
            st.high_watermark = r.high_watermark;
            st.last_stable_offset = r.last_stable_offset;
            match r.outcome {
                Outcome::Empty => {}
                Outcome::Data(parsed, bytes) => {
                    if parsed.records.is_empty() && parsed.fault.is_none() {
                        // Nothing to show (skipped aborted or control
                        // batches, or nothing new): the next fetch starts
                        // past what was skipped.
                        match (&mut st.buffer, &mut st.position) {
                            (Some(b), _) => b.next_offset = b.next_offset.max(parsed.next_offset),
                            (None, Some(p)) => p.offset = p.offset.max(parsed.next_offset),
                            (None, None) => {}
                        }
                        continue;
                    }
                    match &mut st.buffer {
                        Some(b) => {
                            b.append(parsed.records, parsed.next_offset, parsed.fault, bytes)
                        }
                        None => {
                            st.buffer = Some(Buffered::new(
                                parsed.records,
                                parsed.next_offset,
                                parsed.fault,
                                bytes,
                            ))
                        }
                    }
                }
                Outcome::Error(code) => {
                    metrics.partition_error();
                    out.refresh_metadata |=
                        partition_error(code, &a, st, client, cfg, now, backoff);
                }
            }
        }
        out
    }
}

/// Handles one partition's error code; returns whether metadata should be
/// refreshed.
fn partition_error(
    code: ErrorCode,
    a: &Asked,
    st: &mut crate::state::PartitionState,
    client: &Client,
    cfg: &ConsumerConfig,
    now: Instant,
    backoff: Duration,
) -> bool {
    tracing::debug!(partition = %a.tp, code = %code, "fetch partition error");
    if code == ErrorCode::OffsetOutOfRange {
        match cfg.auto_offset_reset {
            OffsetReset::None => {
                st.error = Some(ConsumerError::OffsetOutOfRange {
                    partition: a.tp.clone(),
                    offset: a.fetch_offset,
                });
            }
            policy => {
                tracing::info!(partition = %a.tp, offset = a.fetch_offset, ?policy, "offset out of range; resetting");
                st.position = None;
                st.pending = Pending::Reset(policy);
                st.buffer = None;
                st.lso_watch.forget();
            }
        }
        return false;
    }
    st.retry_at = Some(now + backoff);
    if client.on_partition_error(code, &a.route) || is_stale_metadata(code) {
        return true;
    }
    match code {
        // Transient on the broker's side: try again after the backoff.
        ErrorCode::OffsetNotAvailable
        | ErrorCode::UnknownServerError
        | ErrorCode::RequestTimedOut
        | ErrorCode::NotEnoughReplicas => {}
        // Anything else (authorization, a corrupt log, a code we do not
        // know) is the user's to see, once per occurrence.
        _ => {
            st.error = Some(ConsumerError::kafka(
                ApiKey::Fetch,
                code,
                Some(a.tp.clone()),
            ))
        }
    }
    false
}

/// A top-level error about the fetch session itself (KIP-227).
fn is_session_error(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::FetchSessionIdNotFound
            | ErrorCode::InvalidFetchSessionEpoch
            | ErrorCode::FetchSessionTopicIdError
    )
}

/// The request for `asked`: the partitions `session` names (all of them
/// outside a session or in a full request), and what it forgets.
fn build_request(cfg: &ConsumerConfig, asked: &[Asked], session: &SessionRequest) -> FetchRequest {
    // Topics in first-appearance order, partitions in the rotated order.
    let mut topics: Vec<FetchTopic> = Vec::new();
    for (a, _) in asked.iter().zip(&session.named).filter(|(_, n)| **n) {
        let part = FetchPartition::default()
            .with_partition(a.tp.partition)
            .with_current_leader_epoch(a.route.leader_epoch)
            .with_fetch_offset(a.fetch_offset)
            .with_log_start_offset(-1)
            .with_partition_max_bytes(cfg.max_partition_fetch_bytes);
        match topics.iter_mut().find(|t| t.topic.0.as_str() == a.tp.topic) {
            Some(t) => t.partitions.push(part),
            None => topics.push(
                FetchTopic::default()
                    .with_topic(TopicName(StrBytes::from_string(a.tp.topic.clone())))
                    .with_partitions(vec![part]),
            ),
        }
    }
    FetchRequest::default()
        .with_max_wait_ms(i32::try_from(cfg.fetch_max_wait.as_millis()).unwrap_or(i32::MAX))
        .with_min_bytes(cfg.fetch_min_bytes)
        .with_max_bytes(cfg.fetch_max_bytes)
        .with_isolation_level(cfg.isolation_level.wire())
        // KIP-392 (v11+; an older version leaves it out): "" is no rack.
        .with_rack_id(StrBytes::from_string(
            cfg.client_rack.clone().unwrap_or_default(),
        ))
        .with_session_id(session.session_id)
        .with_session_epoch(session.epoch)
        .with_topics(topics)
        .with_forgotten_topics_data(forgotten(&session.forgotten))
}

/// `forgotten_topics_data` for `parts` (sorted, so grouped by topic).
fn forgotten(parts: &[crate::TopicPartition]) -> Vec<ForgottenTopic> {
    let mut out: Vec<ForgottenTopic> = Vec::new();
    for tp in parts {
        match out.last_mut() {
            Some(t) if t.topic.0.as_str() == tp.topic => t.partitions.push(tp.partition),
            _ => out.push(
                ForgottenTopic::default()
                    .with_topic(TopicName(StrBytes::from_string(tp.topic.clone())))
                    .with_partitions(vec![tp.partition]),
            ),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    /// `client.rack` is the request's `rack_id` (KIP-392); none is "".
    #[test]
    fn the_request_carries_client_rack() {
        let cfg = |rack: Option<&str>| {
            let mut b = ConsumerConfig::builder();
            b.bootstrap_servers("127.0.0.1:9092").unwrap();
            if let Some(r) = rack {
                b.set("client.rack", r).unwrap();
            }
            b.build().unwrap()
        };
        let req = build_request(&cfg(Some("az-2")), &[], &SessionRequest::sessionless(0));
        assert_eq!(req.rack_id.as_str(), "az-2");
        let req = build_request(&cfg(None), &[], &SessionRequest::sessionless(0));
        assert_eq!(req.rack_id.as_str(), "");
    }

    /// A fetch task that panics is answered as a failed fetch of what it
    /// was sent for (before: logged at debug and dropped, which left its
    /// broker busy and its partitions in flight forever).
    #[tokio::test]
    async fn a_panicking_fetch_task_becomes_a_failed_fetch() {
        let mut f = Fetcher::default();
        let handle = f.tasks.spawn(async {
            if std::hint::black_box(true) {
                panic!("boom in the fetch task");
            }
            FetchDone {
                broker: 0,
                asked: Vec::new(),
                session_id: 0,
                incremental: false,
                result: Ok(Vec::new()),
            }
        });
        f.running.insert(handle.id(), (3, Vec::new()));
        f.busy.insert(3);
        let done = tokio::time::timeout(Duration::from_secs(5), f.next())
            .await
            .expect("the panic is reported, not swallowed");
        assert_eq!(done.broker, 3);
        match done.result {
            Err(Failure::Panicked(m)) => assert_eq!(m, "boom in the fetch task"),
            other => panic!("{other:?}"),
        }
        assert!(f.running.is_empty());
        // A cancelled task is no fetch.
        let handle = f.tasks.spawn(std::future::pending::<FetchDone>());
        f.running.insert(handle.id(), (4, Vec::new()));
        handle.abort();
        let r = tokio::time::timeout(Duration::from_millis(300), f.next()).await;
        assert!(r.is_err(), "a cancelled task must not come back as a fetch");
        assert!(f.running.is_empty());
    }
}
