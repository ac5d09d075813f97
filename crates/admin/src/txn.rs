//! Transaction tools (KIP-664, the jobs of `kafka-transactions.sh`):
//!
//! - list transactions on every coordinator (ListTransactions, state and
//!   producer-id filters);
//! - describe one transaction at its coordinator (DescribeTransactions);
//! - describe the producers of a partition at its leader
//!   (DescribeProducers): each active producer's id, epoch, last sequence,
//!   coordinator epoch and the first offset of its open transaction;
//! - find hanging transactions: a partition's open transaction (a producer
//!   with a current transaction start offset) that is at least
//!   `max_transaction_timeout` old and that its coordinator does not hold
//!   open on that partition — no coordinator knows its producer id, the
//!   coordinator's transaction for it is another one (other producer id or
//!   epoch, a state other than Ongoing, or without this partition) — or that
//!   its coordinator holds open past the transaction's own timeout;
//! - abort a hanging transaction the way `kafka-transactions.sh abort` does:
//!   the producer whose open transaction starts at the given offset is looked
//!   up with DescribeProducers, then WriteTxnMarkers (abort) goes to the
//!   partition leader with that producer id, epoch and coordinator epoch.
//!   WriteTxnMarkers is the coordinator's own request (KIP-98): the leader
//!   writes the abort marker, which ends the transaction on that partition
//!   and lets the last stable offset pass it. It needs CLUSTER_ACTION on a
//!   cluster with ACLs.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use exactly_codec::messages::describe_producers_request::TopicRequest;
use exactly_codec::messages::write_txn_markers_request::{
    WritableTxnMarker, WritableTxnMarkerTopic,
};
use exactly_codec::messages::{
    ApiKey, DescribeProducersRequest, DescribeTransactionsRequest, ListTransactionsRequest,
    ProducerId, TopicName, TransactionalId, WriteTxnMarkersRequest,
};
use exactly_codec::protocol::StrBytes;
use exactly_net::CoordinatorType;
use futures_util::future::join_all;

use crate::send::send;
use crate::{Admin, AdminError};

/// A transaction as ListTransactions reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionListing {
    /// The transactional id.
    pub transactional_id: String,
    /// Its current producer id.
    pub producer_id: i64,
    /// `Empty`, `Ongoing`, `PrepareCommit`, `PrepareAbort`,
    /// `CompleteCommit`, `CompleteAbort`, `Dead`, `PrepareEpochFence`.
    pub state: String,
    /// The coordinator that listed it.
    pub coordinator: i32,
}

/// A transaction as DescribeTransactions reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionDescription {
    /// The transactional id.
    pub transactional_id: String,
    /// The coordinator's broker id.
    pub coordinator: i32,
    /// State (see [`TransactionListing::state`]).
    pub state: String,
    /// Producer id.
    pub producer_id: i64,
    /// Producer epoch.
    pub producer_epoch: i16,
    /// The transaction timeout.
    pub timeout_ms: i32,
    /// When the open transaction started (ms since the epoch), -1 when none
    /// is open.
    pub start_time_ms: i64,
    /// The partitions in the open transaction.
    pub partitions: Vec<(String, i32)>,
}

/// An active producer of a partition (DescribeProducers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerState {
    /// Producer id.
    pub producer_id: i64,
    /// Producer epoch.
    pub producer_epoch: i32,
    /// The last sequence number written.
    pub last_sequence: i32,
    /// The timestamp of its last write (ms since the epoch).
    pub last_timestamp: i64,
    /// The coordinator epoch of its last transaction marker (-1 if none).
    pub coordinator_epoch: i32,
    /// The first offset of its open transaction, -1 if none is open.
    pub current_txn_start_offset: i64,
}

/// Where to look for hanging transactions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HangingScope {
    /// The partitions `broker` leads.
    Broker(i32),
    /// One partition of a topic, or all of them.
    Topic(String, Option<i32>),
}

/// Why a transaction is judged hanging.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HangingReason {
    /// No coordinator lists a transactional id with this producer id.
    UnknownProducer,
    /// The coordinator's transaction for this producer's transactional id
    /// does not hold this partition open (other producer id or epoch,
    /// another state, or the partition is not in it).
    NotInCoordinatorTransaction {
        /// What the coordinator describes.
        coordinator: TransactionDescription,
    },
    /// The coordinator holds it open past its own timeout.
    PastTimeout {
        /// What the coordinator describes.
        coordinator: TransactionDescription,
    },
}

/// A hanging transaction on one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HangingTransaction {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// The producer holding it open.
    pub producer: ProducerState,
    /// Its transactional id, if a coordinator knows the producer id.
    pub transactional_id: Option<String>,
    /// Why it is hanging.
    pub reason: HangingReason,
}

/// Java's `--max-transaction-timeout` default (the broker's default
/// `transaction.max.timeout.ms`): an open transaction younger than this is
/// never called hanging.
pub const DEFAULT_MAX_TRANSACTION_TIMEOUT: Duration = Duration::from_secs(15 * 60);

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

type ProducersByPartition = BTreeMap<(String, i32), Result<Vec<ProducerState>, AdminError>>;

impl Admin {
    /// Every transaction on every coordinator, in `states` (all when empty)
    /// and of `producer_ids` (all when empty).
    pub async fn list_transactions(
        &self,
        states: &[&str],
        producer_ids: &[i64],
    ) -> Result<Vec<TransactionListing>, AdminError> {
        let view = self.client.refresh_metadata(&[]).await?;
        let ids: Vec<i32> = view.brokers().map(|b| b.id).collect();
        let req = ListTransactionsRequest::default()
            .with_state_filters(
                states
                    .iter()
                    .map(|s| StrBytes::from_string((*s).to_owned()))
                    .collect(),
            )
            .with_producer_id_filters(producer_ids.iter().map(|&p| ProducerId(p)).collect());
        let calls = ids.into_iter().map(|id| {
            let req = &req;
            async move {
                let conn = self.client.connection(id).await?;
                Ok::<_, AdminError>((id, send(&conn, req).await?))
            }
        });
        let mut out = Vec::new();
        for r in join_all(calls).await {
            let (id, resp) = r?;
            AdminError::check(
                ApiKey::ListTransactions,
                || format!("broker {id}"),
                resp.error_code,
                None,
            )?;
            out.extend(resp.transaction_states.iter().map(|t| TransactionListing {
                transactional_id: t.transactional_id.to_string(),
                producer_id: t.producer_id.0,
                state: t.transaction_state.to_string(),
                coordinator: id,
            }));
        }
        out.sort_by(|a, b| a.transactional_id.cmp(&b.transactional_id));
        Ok(out)
    }

    /// The transaction of `transactional_id`, at its coordinator.
    pub async fn describe_transaction(
        &self,
        transactional_id: &str,
    ) -> Result<TransactionDescription, AdminError> {
        let c = self
            .client
            .coordinator(CoordinatorType::Transaction, transactional_id)
            .await?;
        let conn = self.client.connection(c.broker_id).await?;
        let req =
            DescribeTransactionsRequest::default().with_transactional_ids(vec![TransactionalId(
                StrBytes::from_string(transactional_id.to_owned()),
            )]);
        let resp = send(&conn, &req).await?;
        let s = resp
            .transaction_states
            .iter()
            .find(|s| s.transactional_id.as_str() == transactional_id)
            .ok_or_else(|| {
                AdminError::Unexpected(format!(
                    "no DescribeTransactions entry for {transactional_id}"
                ))
            })?;
        if let Some(code) = exactly_codec::ErrorCode::from_code(s.error_code) {
            self.client.on_coordinator_error(
                CoordinatorType::Transaction,
                transactional_id,
                code,
                &c,
            );
        }
        AdminError::check(
            ApiKey::DescribeTransactions,
            || transactional_id.to_owned(),
            s.error_code,
            None,
        )?;
        let mut partitions: Vec<(String, i32)> = s
            .topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(|&p| (t.topic.to_string(), p)))
            .collect();
        partitions.sort();
        Ok(TransactionDescription {
            transactional_id: transactional_id.to_owned(),
            coordinator: c.broker_id,
            state: s.transaction_state.to_string(),
            producer_id: s.producer_id.0,
            producer_epoch: s.producer_epoch,
            timeout_ms: s.transaction_timeout_ms,
            start_time_ms: s.transaction_start_time_ms,
            partitions,
        })
    }

    /// The active producers of `topic`/`partition`, at its leader.
    pub async fn describe_producers(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<Vec<ProducerState>, AdminError> {
        let mut all = self
            .describe_producers_of(&[(topic.to_owned(), partition)])
            .await?;
        all.remove(&(topic.to_owned(), partition))
            .unwrap_or_else(|| Err(AdminError::NotFound(format!("{topic}-{partition}"))))
    }

    /// The active producers of many partitions, one DescribeProducers per
    /// leader.
    pub async fn describe_producers_of(
        &self,
        partitions: &[(String, i32)],
    ) -> Result<ProducersByPartition, AdminError> {
        let mut topics: Vec<&str> = partitions.iter().map(|(t, _)| t.as_str()).collect();
        topics.sort_unstable();
        topics.dedup();
        let view = self.client.refresh_metadata(&topics).await?;
        let mut out = ProducersByPartition::new();
        let mut by_leader: BTreeMap<i32, BTreeMap<&str, Vec<i32>>> = BTreeMap::new();
        for (t, p) in partitions {
            match view.route(t, *p) {
                Some(r) => by_leader
                    .entry(r.leader)
                    .or_default()
                    .entry(t.as_str())
                    .or_default()
                    .push(*p),
                None => {
                    out.insert(
                        (t.clone(), *p),
                        Err(AdminError::NotFound(format!("a leader for {t}-{p}"))),
                    );
                }
            }
        }
        let calls = by_leader.into_iter().map(|(leader, topics)| async move {
            let req = DescribeProducersRequest::default().with_topics(
                topics
                    .iter()
                    .map(|(t, ps)| {
                        TopicRequest::default()
                            .with_name(TopicName(StrBytes::from_string((*t).to_owned())))
                            .with_partition_indexes(ps.clone())
                    })
                    .collect(),
            );
            let r = async {
                let conn = self.client.connection(leader).await?;
                send(&conn, &req).await
            }
            .await;
            (topics, r)
        });
        for (asked, resp) in join_all(calls).await {
            match resp {
                Err(e) => {
                    for (t, ps) in asked {
                        for p in ps {
                            out.insert((t.to_owned(), p), Err(e.clone()));
                        }
                    }
                }
                Ok(resp) => {
                    for t in &resp.topics {
                        for p in &t.partitions {
                            let key = (t.name.0.to_string(), p.partition_index);
                            let r = AdminError::check(
                                ApiKey::DescribeProducers,
                                || format!("{}-{}", key.0, key.1),
                                p.error_code,
                                p.error_message.as_deref(),
                            )
                            .map(|()| {
                                p.active_producers
                                    .iter()
                                    .map(|a| ProducerState {
                                        producer_id: a.producer_id.0,
                                        producer_epoch: a.producer_epoch,
                                        last_sequence: a.last_sequence,
                                        last_timestamp: a.last_timestamp,
                                        coordinator_epoch: a.coordinator_epoch,
                                        current_txn_start_offset: a.current_txn_start_offset,
                                    })
                                    .collect()
                            });
                            out.insert(key, r);
                        }
                    }
                    for (t, ps) in asked {
                        for p in ps {
                            out.entry((t.to_owned(), p)).or_insert_with(|| {
                                Err(AdminError::Unexpected(format!(
                                    "DescribeProducers did not answer for {t}-{p}"
                                )))
                            });
                        }
                    }
                }
            }
        }
        Ok(out)
    }

    /// Hanging transactions in `scope` (see the module docs), considering
    /// only transactions open at least `max_transaction_timeout` (default
    /// [`DEFAULT_MAX_TRANSACTION_TIMEOUT`]; `Duration::ZERO` considers all).
    pub async fn find_hanging(
        &self,
        scope: HangingScope,
        max_transaction_timeout: Option<Duration>,
    ) -> Result<Vec<HangingTransaction>, AdminError> {
        let min_age = i64::try_from(
            max_transaction_timeout
                .unwrap_or(DEFAULT_MAX_TRANSACTION_TIMEOUT)
                .as_millis(),
        )
        .unwrap_or(i64::MAX);
        let partitions = self.scope_partitions(&scope).await?;
        let producers = self.describe_producers_of(&partitions).await?;
        let now = now_ms();
        let mut open: Vec<(String, i32, ProducerState)> = Vec::new();
        for ((t, p), r) in producers {
            for s in r? {
                if s.current_txn_start_offset >= 0
                    && now.saturating_sub(s.last_timestamp) >= min_age
                {
                    open.push((t.clone(), p, s));
                }
            }
        }
        if open.is_empty() {
            return Ok(Vec::new());
        }
        let pids: BTreeSet<i64> = open.iter().map(|(_, _, s)| s.producer_id).collect();
        let pids: Vec<i64> = pids.into_iter().collect();
        let listed = self.list_transactions(&[], &pids).await?;
        let by_pid: BTreeMap<i64, String> = listed
            .into_iter()
            .map(|l| (l.producer_id, l.transactional_id))
            .collect();
        let mut described: BTreeMap<String, TransactionDescription> = BTreeMap::new();
        let mut out = Vec::new();
        for (topic, partition, producer) in open {
            let Some(id) = by_pid.get(&producer.producer_id) else {
                out.push(HangingTransaction {
                    topic,
                    partition,
                    producer,
                    transactional_id: None,
                    reason: HangingReason::UnknownProducer,
                });
                continue;
            };
            let d = match described.get(id) {
                Some(d) => d.clone(),
                None => {
                    let d = self.describe_transaction(id).await?;
                    described.insert(id.clone(), d.clone());
                    d
                }
            };
            let holds = d.producer_id == producer.producer_id
                && i32::from(d.producer_epoch) == producer.producer_epoch
                && d.state == "Ongoing"
                && d.partitions
                    .iter()
                    .any(|(t, p)| *t == topic && *p == partition);
            let reason = if !holds {
                Some(HangingReason::NotInCoordinatorTransaction { coordinator: d })
            } else if d.start_time_ms >= 0
                && now.saturating_sub(d.start_time_ms)
                    > i64::from(d.timeout_ms).max(0) + min_age.min(60_000)
            {
                Some(HangingReason::PastTimeout { coordinator: d })
            } else {
                None
            };
            if let Some(reason) = reason {
                out.push(HangingTransaction {
                    topic,
                    partition,
                    producer,
                    transactional_id: Some(id.clone()),
                    reason,
                });
            }
        }
        Ok(out)
    }

    async fn scope_partitions(
        &self,
        scope: &HangingScope,
    ) -> Result<Vec<(String, i32)>, AdminError> {
        Ok(match scope {
            HangingScope::Topic(t, Some(p)) => vec![(t.clone(), *p)],
            HangingScope::Topic(t, None) => self
                .partitions(t)
                .await?
                .into_iter()
                .map(|p| (t.clone(), p))
                .collect(),
            HangingScope::Broker(id) => {
                let view = self.metadata(&[]).await?;
                let mut out = Vec::new();
                for name in view.topic_names() {
                    if let Some(info) = view.topic(name) {
                        out.extend(
                            info.partitions
                                .iter()
                                .filter(|p| p.leader == *id)
                                .map(|p| (name.to_owned(), p.partition)),
                        );
                    }
                }
                out.sort();
                out
            }
        })
    }

    /// Aborts the open transaction of `topic`/`partition` that starts at
    /// `start_offset` (as `kafka-transactions.sh abort --start-offset`): its
    /// producer is found with DescribeProducers, then an abort marker is
    /// written by the leader (WriteTxnMarkers). Returns the producer it
    /// aborted.
    pub async fn abort_transaction(
        &self,
        topic: &str,
        partition: i32,
        start_offset: i64,
    ) -> Result<ProducerState, AdminError> {
        let producers = self.describe_producers(topic, partition).await?;
        let producer = producers
            .into_iter()
            .find(|p| p.current_txn_start_offset == start_offset)
            .ok_or_else(|| {
                AdminError::NotFound(format!(
                    "an open transaction starting at offset {start_offset} of {topic}-{partition}"
                ))
            })?;
        let epoch = i16::try_from(producer.producer_epoch).map_err(|_| {
            AdminError::Unexpected(format!(
                "producer epoch {} out of range",
                producer.producer_epoch
            ))
        })?;
        self.write_abort_marker(
            topic,
            partition,
            producer.producer_id,
            epoch,
            producer.coordinator_epoch,
        )
        .await?;
        Ok(producer)
    }

    /// Writes an abort marker for `producer_id`/`producer_epoch` on
    /// `topic`/`partition` (WriteTxnMarkers to the leader), with the
    /// coordinator epoch the leader last saw for that producer.
    pub async fn write_abort_marker(
        &self,
        topic: &str,
        partition: i32,
        producer_id: i64,
        producer_epoch: i16,
        coordinator_epoch: i32,
    ) -> Result<(), AdminError> {
        let route = self.client.leader(topic, partition).await?;
        let conn = self.client.connection(route.leader).await?;
        let req =
            WriteTxnMarkersRequest::default().with_markers(vec![WritableTxnMarker::default()
                .with_producer_id(ProducerId(producer_id))
                .with_producer_epoch(producer_epoch)
                .with_transaction_result(false)
                .with_coordinator_epoch(coordinator_epoch)
                .with_topics(vec![WritableTxnMarkerTopic::default()
                    .with_name(TopicName(StrBytes::from_string(topic.to_owned())))
                    .with_partition_indexes(vec![partition])])]);
        let resp = send(&conn, &req).await?;
        let code = resp
            .markers
            .iter()
            .filter(|m| m.producer_id.0 == producer_id)
            .flat_map(|m| m.topics.iter())
            .filter(|t| t.name.as_str() == topic)
            .flat_map(|t| t.partitions.iter())
            .find(|p| p.partition_index == partition)
            .map(|p| p.error_code)
            .ok_or_else(|| {
                AdminError::Unexpected(format!("no WriteTxnMarkers result for {topic}-{partition}"))
            })?;
        AdminError::check(
            ApiKey::WriteTxnMarkers,
            || format!("{topic}-{partition} producer {producer_id}"),
            code,
            None,
        )
    }
}
