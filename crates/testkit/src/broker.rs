//! The simulated broker: a model that keeps Kafka's server-side rules an
//! exactly-once producer relies on: per (producer, partition) sequence checks
//! with a dedup window of 5 batches (KIP-98), epoch fencing, the transaction
//! coordinator's states under both transaction versions (v1: KIP-98/447; v2:
//! KIP-890), transaction markers, partition verification (KIP-890 part 1),
//! the implicit add of v2, transaction timeouts that bump the epoch
//! (KIP-588), InitProducerId with the current identity (KIP-360), epoch
//! exhaustion (a new producer id at `i16::MAX`), and group offsets committed
//! by a transaction.
//!
//! It speaks the sans-IO core's [`Request`]/[`Response`] (no wire bytes) and
//! never reads a clock: `now` (milliseconds) is an argument of every call, so
//! it runs on whatever virtual clock its driver keeps. It injects no faults by
//! itself; [`crate::sim`] puts them between the broker and the producer.
//!
//! ```
//! use exactly_testkit::broker::Broker;
//! use exactly_txn::*;
//!
//! let mut broker = Broker::new(true, 0, 60_000);
//! let r = broker.handle(0, &Request::FindCoordinator {
//!     key: "tx".into(),
//!     key_type: CoordinatorType::Transaction,
//! });
//! assert!(matches!(r, Response::FindCoordinator { error: None, node: 1 }));
//! ```

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use exactly_txn::*;

/// One entry of a partition's log.
#[derive(Debug, Clone)]
pub enum LogEntry {
    /// A record batch.
    Data {
        /// The producer id that wrote it.
        pid: i64,
        /// The core's id of the batch (the model holds no record bytes).
        batch: BatchId,
        /// Written inside a transaction.
        transactional: bool,
        /// The offset of its first record.
        base_offset: i64,
        /// How many records (offsets) it holds.
        records: u32,
    },
    /// A transaction marker (control batch).
    Marker {
        /// The producer id whose transaction it ends.
        pid: i64,
        /// Commit (true) or abort.
        commit: bool,
        /// The producer epoch the marker carries.
        epoch: i16,
        /// Its offset (a marker takes one, as in Kafka).
        offset: i64,
    },
}

impl LogEntry {
    /// The offset of the entry's first record (or of the marker).
    pub fn base_offset(&self) -> i64 {
        match self {
            LogEntry::Data { base_offset, .. } => *base_offset,
            LogEntry::Marker { offset, .. } => *offset,
        }
    }

    /// The offset after the entry's last record.
    pub fn next_offset(&self) -> i64 {
        match self {
            LogEntry::Data {
                base_offset,
                records,
                ..
            } => base_offset + i64::from((*records).max(1)),
            LogEntry::Marker { offset, .. } => offset + 1,
        }
    }
}

/// An aborted transaction of one partition, as a KIP-98 Fetch response lists
/// it: the producer id, the offset of its first record in the partition, and
/// the offset of its abort marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTxn {
    /// The producer id whose transaction was aborted.
    pub producer_id: i64,
    /// The offset of the transaction's first record in this partition.
    pub first_offset: i64,
    /// The offset of the abort marker.
    pub marker_offset: i64,
}

#[derive(Debug, Clone, Default)]
struct ProducerState {
    epoch: i16,
    /// (first seq, last seq, offset) of the last 5 batches of this epoch.
    batches: VecDeque<(i32, i32, i64)>,
}

/// One partition: its log and the producer state the broker keeps for it.
///
/// Offsets are Kafka's: each record of a batch takes one, each transaction
/// marker (control batch) one; the log end offset is the offset the next
/// record gets.
#[derive(Debug, Clone, Default)]
pub struct PartitionLog {
    /// The log, in offset order.
    pub entries: Vec<LogEntry>,
    /// The log end offset (also the high watermark: one replica).
    pub end_offset: i64,
    /// Open transactions: producer id -> offset of its first record here.
    pub open_txns: BTreeMap<i64, i64>,
    /// Aborted transactions, in marker order (KIP-98's aborted index).
    pub aborted: Vec<AbortedTxn>,
    producers: BTreeMap<i64, ProducerState>,
}

impl PartitionLog {
    /// The high watermark (one replica: the log end offset).
    pub fn high_watermark(&self) -> i64 {
        self.end_offset
    }

    /// The last stable offset: the first offset of the oldest open
    /// transaction, or the high watermark when none is open (KIP-98).
    pub fn last_stable_offset(&self) -> i64 {
        self.open_txns
            .values()
            .copied()
            .min()
            .unwrap_or(self.end_offset)
            .min(self.end_offset)
    }

    /// The aborted transactions a read_committed Fetch of `[from, to)` must
    /// list: those whose records may lie in the range (the abort marker at
    /// or after `from`, the first record before `to`).
    pub fn aborted_between(&self, from: i64, to: i64) -> Vec<AbortedTxn> {
        self.aborted
            .iter()
            .filter(|a| a.marker_offset >= from && a.first_offset < to)
            .copied()
            .collect()
    }

    fn write_marker(&mut self, pid: i64, epoch: i16, commit: bool) {
        let offset = self.end_offset;
        self.entries.push(LogEntry::Marker {
            pid,
            commit,
            epoch,
            offset,
        });
        self.end_offset += 1;
        if let Some(first_offset) = self.open_txns.remove(&pid) {
            if !commit {
                self.aborted.push(AbortedTxn {
                    producer_id: pid,
                    first_offset,
                    marker_offset: offset,
                });
            }
        }
    }
}

/// A transactional id's state at the coordinator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CState {
    /// No transaction open.
    Empty,
    /// A transaction is open.
    Ongoing,
    /// EndTxn accepted; markers not yet written.
    Prepare {
        /// Committing (true) or aborting.
        commit: bool,
    },
    /// Markers written.
    Complete {
        /// Committed (true) or aborted.
        commit: bool,
    },
}

/// The coordinator's metadata of one transactional id.
#[derive(Debug, Clone)]
pub struct TxnMeta {
    /// Current producer id.
    pub pid: i64,
    /// Current epoch.
    pub epoch: i16,
    /// The identity before the last bump, even across a producer id rotation
    /// (KIP-360/588 retries and recovery).
    pub last: Option<ProducerIdentity>,
    /// The identity before the last EndTxn v2 bump, and that EndTxn's result.
    pub last_end: Option<(ProducerIdentity, bool)>,
    /// The coordinator state.
    pub state: CState,
    /// Partitions in the open transaction.
    pub partitions: BTreeSet<TopicPartition>,
    /// Consumer groups in the open transaction.
    pub groups: BTreeSet<String>,
    /// Offsets the open transaction commits: (group, partition, offset).
    pub pending_offsets: Vec<(String, TopicPartition, i64)>,
    /// When the open transaction started (its timeout counts from here).
    pub started_at: u64,
    /// Transaction version 2 (KIP-890 part 2).
    pub tv2: bool,
    /// Marker epoch of the pending completion.
    marker_epoch: i16,
    /// The producer id the open transaction's data uses.
    txn_pid: i64,
}

/// The simulated broker (one node, id 1, leader of every partition and
/// coordinator of every transactional id and group).
#[derive(Debug, Clone)]
pub struct Broker {
    /// Transaction version 2 (KIP-890 part 2) for new transactional ids.
    pub tv2: bool,
    /// The epoch a new producer id starts at (near `i16::MAX` to exercise
    /// epoch exhaustion).
    pub first_epoch: i16,
    /// The transaction timeout (ms) after which an open transaction is
    /// aborted with an epoch bump (KIP-588).
    pub timeout_ms: u64,
    /// Every partition's log.
    pub logs: BTreeMap<TopicPartition, PartitionLog>,
    /// The transaction coordinator's state per transactional id.
    pub txns: BTreeMap<String, TxnMeta>,
    /// The group coordinator's committed offsets: (group, partition) -> offset.
    pub committed_offsets: BTreeMap<(String, TopicPartition), i64>,
    /// The consumer group generation TxnOffsetCommit must carry.
    pub group_generation: i32,
    next_pid: i64,
    /// Transactions waiting for their markers: (due time, transactional id).
    pub completions: Vec<(u64, String)>,
    /// Transactions the coordinator aborted on timeout (KIP-588).
    pub expired: usize,
}

fn err(code: ErrorCode) -> Option<ErrorCode> {
    Some(code)
}

impl Broker {
    /// A broker with no topics data and no transactional ids yet.
    pub fn new(tv2: bool, first_epoch: i16, timeout_ms: u64) -> Self {
        Self {
            tv2,
            first_epoch,
            timeout_ms,
            logs: BTreeMap::new(),
            txns: BTreeMap::new(),
            committed_offsets: BTreeMap::new(),
            group_generation: 1,
            next_pid: 1000,
            completions: Vec::new(),
            expired: 0,
        }
    }

    fn new_pid(&mut self) -> i64 {
        self.next_pid += 1;
        self.next_pid
    }

    /// Bumps the coordinator's epoch, rotating the producer id at exhaustion.
    fn bump(&mut self, id: &str) {
        let fresh = self.new_pid();
        let Some(m) = self.txns.get_mut(id) else {
            return;
        };
        m.last = Some(ProducerIdentity::new(m.pid, m.epoch));
        if m.epoch == i16::MAX {
            m.pid = fresh;
            m.epoch = 0;
        } else {
            m.epoch += 1;
        }
    }

    fn begin_completion(&mut self, id: &str, commit: bool, now: u64, delay: u64) {
        let Some(m) = self.txns.get_mut(id) else {
            return;
        };
        m.state = CState::Prepare { commit };
        m.marker_epoch = m.epoch;
        self.completions.push((now + delay, id.to_string()));
    }

    /// Writes the markers of transactions whose completion is due.
    pub fn complete_due(&mut self, now: u64) {
        let due: Vec<String> = self
            .completions
            .iter()
            .filter(|(t, _)| *t <= now)
            .map(|(_, id)| id.clone())
            .collect();
        self.completions.retain(|(t, _)| *t > now);
        for id in due {
            let Some(m) = self.txns.get_mut(&id) else {
                continue;
            };
            let CState::Prepare { commit } = m.state else {
                continue;
            };
            let (pid, epoch) = (m.pid, m.marker_epoch);
            // Markers go under the producer id the data used (a bump at
            // epoch exhaustion rotated the id).
            let data_pid = m.txn_pid;
            for tp in std::mem::take(&mut m.partitions) {
                let log = self.logs.entry(tp).or_default();
                log.write_marker(data_pid, epoch, commit);
                let st = log.producers.entry(data_pid).or_default();
                if data_pid == pid && epoch > st.epoch {
                    st.epoch = epoch;
                    st.batches.clear();
                }
            }
            if commit {
                for (g, tp, o) in std::mem::take(&mut m.pending_offsets) {
                    self.committed_offsets.insert((g, tp), o);
                }
            }
            m.pending_offsets.clear();
            m.groups.clear();
            m.state = CState::Complete { commit };
        }
    }

    /// Aborts transactions open for longer than their timeout, bumping the
    /// epoch (KIP-588).
    pub fn expire_transactions(&mut self, now: u64) {
        let ids: Vec<String> = self
            .txns
            .iter()
            .filter(|(_, m)| m.state == CState::Ongoing && now >= m.started_at + self.timeout_ms)
            .map(|(k, _)| k.clone())
            .collect();
        for id in ids {
            self.expired += 1;
            self.bump(&id);
            self.begin_completion(&id, false, now, 1);
        }
    }

    /// Another instance with the same transactional id calls
    /// InitProducerId: the running one is fenced.
    pub fn fence(&mut self, id: &str, now: u64) {
        let Some(m) = self.txns.get(id) else { return };
        let ongoing = m.state == CState::Ongoing;
        self.bump(id);
        if let Some(m) = self.txns.get_mut(id) {
            m.last = None;
        }
        if ongoing {
            self.begin_completion(id, false, now, 1);
        }
    }

    /// Answers one request at `now`, applying it.
    pub fn handle(&mut self, now: u64, req: &Request) -> Response {
        match req {
            Request::FindCoordinator { .. } => Response::FindCoordinator {
                error: None,
                node: 1,
            },
            Request::InitProducerId {
                transactional_id,
                current,
                ..
            } => self.init_producer_id(now, transactional_id.as_deref(), *current),
            Request::AddPartitionsToTxn {
                transactional_id,
                identity,
                partitions,
            } => {
                let e = self.check_coordinator(transactional_id, *identity);
                let e = e.or_else(|| {
                    let Some(m) = self.txns.get_mut(transactional_id.as_str()) else {
                        return err(ErrorCode::InvalidProducerIdMapping);
                    };
                    if m.state != CState::Ongoing {
                        m.state = CState::Ongoing;
                        m.started_at = now;
                        m.txn_pid = m.pid;
                    }
                    m.partitions.extend(partitions.iter().cloned());
                    None
                });
                Response::AddPartitionsToTxn {
                    results: partitions.iter().map(|p| (p.clone(), e)).collect(),
                }
            }
            Request::AddOffsetsToTxn {
                transactional_id,
                identity,
                group_id,
            } => {
                let e = self.check_coordinator(transactional_id, *identity);
                let e = e.or_else(|| {
                    let Some(m) = self.txns.get_mut(transactional_id.as_str()) else {
                        return err(ErrorCode::InvalidProducerIdMapping);
                    };
                    if m.state != CState::Ongoing {
                        m.state = CState::Ongoing;
                        m.started_at = now;
                        m.txn_pid = m.pid;
                    }
                    m.groups.insert(group_id.clone());
                    None
                });
                Response::AddOffsetsToTxn { error: e }
            }
            Request::TxnOffsetCommit {
                transactional_id,
                identity,
                group,
                offsets,
                flow,
            } => {
                let mut e = self.check_coordinator(transactional_id, *identity);
                if e.is_none() && group.generation_id != self.group_generation {
                    e = err(ErrorCode::IllegalGeneration);
                }
                let m = self.txns.get_mut(transactional_id.as_str());
                if let (None, Some(m)) = (e, m) {
                    match flow {
                        Flow::V2 => {
                            if m.state != CState::Ongoing {
                                m.state = CState::Ongoing;
                                m.started_at = now;
                                m.txn_pid = m.pid;
                            }
                            m.groups.insert(group.group_id.clone());
                        }
                        Flow::V1 => {
                            if m.state != CState::Ongoing || !m.groups.contains(&group.group_id) {
                                e = err(ErrorCode::InvalidTxnState);
                            }
                        }
                    }
                    if e.is_none() {
                        for o in offsets {
                            m.pending_offsets.push((
                                group.group_id.clone(),
                                o.partition.clone(),
                                o.offset,
                            ));
                        }
                    }
                }
                Response::TxnOffsetCommit {
                    results: offsets.iter().map(|o| (o.partition.clone(), e)).collect(),
                }
            }
            Request::EndTxn {
                transactional_id,
                identity,
                commit,
                ..
            } => self.end_txn(now, transactional_id, *identity, *commit),
            Request::DescribeTransactions { transactional_id } => {
                match self.txns.get(transactional_id.as_str()) {
                    Some(m) => Response::DescribeTransactions {
                        error: None,
                        completing: matches!(m.state, CState::Prepare { .. }),
                    },
                    None => Response::DescribeTransactions {
                        error: err(ErrorCode::TransactionalIdNotFound),
                        completing: false,
                    },
                }
            }
            Request::Produce {
                partition,
                batch,
                record_count,
                stamp,
                transactional_id,
                ..
            } => self.produce(
                now,
                partition,
                *batch,
                *record_count,
                *stamp,
                transactional_id.as_deref(),
            ),
        }
    }

    fn init_producer_id(
        &mut self,
        now: u64,
        id: Option<&str>,
        current: Option<ProducerIdentity>,
    ) -> Response {
        let resp = |error, pid, epoch| Response::InitProducerId {
            error,
            identity: ProducerIdentity::new(pid, epoch),
        };
        let Some(id) = id else {
            let pid = self.new_pid();
            return resp(None, pid, self.first_epoch);
        };
        if !self.txns.contains_key(id) {
            let pid = self.new_pid();
            self.txns.insert(
                id.to_string(),
                TxnMeta {
                    pid,
                    epoch: self.first_epoch,
                    last: None,
                    last_end: None,
                    state: CState::Empty,
                    partitions: BTreeSet::new(),
                    groups: BTreeSet::new(),
                    pending_offsets: Vec::new(),
                    started_at: now,
                    tv2: self.tv2,
                    marker_epoch: 0,
                    txn_pid: pid,
                },
            );
            return resp(None, pid, self.first_epoch);
        }
        let Some(m) = self.txns.get(id).cloned() else {
            return resp(err(ErrorCode::UnknownServerError), -1, -1);
        };
        if matches!(m.state, CState::Prepare { .. }) {
            return resp(err(ErrorCode::ConcurrentTransactions), -1, -1);
        }
        if let Some(cur) = current {
            if Some(cur) == m.last && m.state != CState::Ongoing {
                // A retry, or recovery after a timeout abort (KIP-588).
                return resp(None, m.pid, m.epoch);
            }
            if cur != ProducerIdentity::new(m.pid, m.epoch) {
                return resp(err(ErrorCode::ProducerFenced), -1, -1);
            }
        }
        if m.state == CState::Ongoing {
            // Abort the open transaction with a bumped epoch first; the
            // client retries and gets a second bump. As in the real
            // coordinator (Kafka 4.3.1 `prepareFenceProducerEpoch`), the
            // fencing bump does not record the previous epoch: a retry with
            // the old epoch is then fenced.
            let last = m.last;
            self.bump(id);
            if let Some(m) = self.txns.get_mut(id) {
                m.last = last;
            }
            self.begin_completion(id, false, now, 5);
            return resp(err(ErrorCode::ConcurrentTransactions), -1, -1);
        }
        self.bump(id);
        match self.identity_of(id) {
            Some(i) => resp(None, i.producer_id, i.epoch),
            None => resp(err(ErrorCode::UnknownServerError), -1, -1),
        }
    }

    /// The current (producer id, epoch) of a transactional id.
    pub fn identity_of(&self, id: &str) -> Option<ProducerIdentity> {
        self.txns
            .get(id)
            .map(|m| ProducerIdentity::new(m.pid, m.epoch))
    }

    fn check_coordinator(&self, id: &str, identity: ProducerIdentity) -> Option<ErrorCode> {
        let Some(m) = self.txns.get(id) else {
            return err(ErrorCode::InvalidProducerIdMapping);
        };
        if m.pid != identity.producer_id {
            return err(ErrorCode::InvalidProducerIdMapping);
        }
        if m.epoch != identity.epoch {
            return err(ErrorCode::ProducerFenced);
        }
        if matches!(m.state, CState::Prepare { .. }) {
            return err(ErrorCode::ConcurrentTransactions);
        }
        None
    }

    fn end_txn(
        &mut self,
        now: u64,
        id: &str,
        identity: ProducerIdentity,
        commit: bool,
    ) -> Response {
        let resp = |error, identity| Response::EndTxn { error, identity };
        let Some(m) = self.txns.get(id).cloned() else {
            return resp(err(ErrorCode::InvalidProducerIdMapping), None);
        };
        let current = Some(ProducerIdentity::new(m.pid, m.epoch));
        if m.tv2 {
            if m.last_end == Some((identity, commit)) {
                return match m.state {
                    CState::Prepare { .. } => resp(err(ErrorCode::ConcurrentTransactions), None),
                    _ => resp(None, current),
                };
            }
            if identity != ProducerIdentity::new(m.pid, m.epoch) {
                return resp(err(ErrorCode::ProducerFenced), None);
            }
            match m.state {
                CState::Prepare { .. } => resp(err(ErrorCode::ConcurrentTransactions), None),
                CState::Ongoing => {
                    self.bump(id);
                    if let Some(mm) = self.txns.get_mut(id) {
                        mm.last_end = Some((identity, commit));
                    }
                    self.begin_completion(id, commit, now, 3);
                    resp(None, self.identity_of(id))
                }
                _ if !commit => {
                    self.bump(id);
                    if let Some(mm) = self.txns.get_mut(id) {
                        mm.last_end = Some((identity, commit));
                        mm.state = CState::Complete { commit: false };
                    }
                    resp(None, self.identity_of(id))
                }
                _ => resp(err(ErrorCode::InvalidTxnState), None),
            }
        } else {
            if m.pid != identity.producer_id {
                return resp(err(ErrorCode::InvalidProducerIdMapping), None);
            }
            if m.epoch != identity.epoch {
                return resp(err(ErrorCode::ProducerFenced), None);
            }
            match m.state {
                CState::Ongoing => {
                    self.begin_completion(id, commit, now, 3);
                    resp(None, None)
                }
                CState::Prepare { commit: c } if c == commit => {
                    resp(err(ErrorCode::ConcurrentTransactions), None)
                }
                CState::Complete { commit: c } if c == commit => resp(None, None),
                _ => resp(err(ErrorCode::InvalidTxnState), None),
            }
        }
    }

    fn produce(
        &mut self,
        now: u64,
        tp: &TopicPartition,
        batch: BatchId,
        count: u32,
        stamp: Stamp,
        txn_id: Option<&str>,
    ) -> Response {
        let resp = |error, base_offset| Response::Produce {
            error,
            base_offset,
            log_start_offset: 0,
        };
        let pid = stamp.producer_id;
        let epoch = stamp.epoch;
        let first = stamp.base_sequence;
        let last = advance_sequence(first, count.saturating_sub(1));
        let log = self.logs.entry(tp.clone()).or_default();
        let state = log.producers.get(&pid).cloned();
        if let Some(s) = &state {
            if epoch < s.epoch {
                return resp(err(ErrorCode::InvalidProducerEpoch), -1);
            }
            if epoch == s.epoch && s.batches.iter().any(|&(f, l, _)| f == first && l == last) {
                return resp(err(ErrorCode::DuplicateSequenceNumber), -1);
            }
        }
        // Transaction verification (KIP-890 part 1) / implicit add (part 2).
        if stamp.transactional {
            let Some(id) = txn_id else {
                return resp(err(ErrorCode::InvalidRequest), -1);
            };
            let Some(m) = self.txns.get_mut(id) else {
                return resp(err(ErrorCode::InvalidProducerIdMapping), -1);
            };
            if m.pid != pid || m.epoch != epoch {
                return resp(err(ErrorCode::InvalidProducerEpoch), -1);
            }
            if m.tv2 {
                match m.state {
                    CState::Prepare { .. } => {
                        return resp(err(ErrorCode::ConcurrentTransactions), -1)
                    }
                    CState::Ongoing => {}
                    _ => {
                        m.state = CState::Ongoing;
                        m.started_at = now;
                        m.txn_pid = m.pid;
                    }
                }
                m.partitions.insert(tp.clone());
            } else if m.state != CState::Ongoing || !m.partitions.contains(tp) {
                return resp(err(ErrorCode::InvalidTxnState), -1);
            }
        }
        // KIP-890: a transaction.version 2 transaction must start at 0.
        let tv2_txn = stamp.transactional
            && txn_id
                .and_then(|id| self.txns.get(id))
                .is_some_and(|m| m.tv2);
        let log = self.logs.entry(tp.clone()).or_default();
        let expected_ok = match &state {
            Some(s) if s.epoch == epoch => match s.batches.back() {
                Some(&(_, l, _)) => first == advance_sequence(l, 1),
                None => first == 0,
            },
            // A new epoch starts at 0.
            Some(_) => first == 0,
            // As Kafka does: a producer this partition holds no state for
            // (never seen, or its state expired) is accepted at any sequence,
            // except in a transaction.version 2 transaction.
            None => first == 0 || !tv2_txn,
        };
        if !expected_ok {
            return resp(err(ErrorCode::OutOfOrderSequenceNumber), -1);
        }
        let offset = log.end_offset;
        log.entries.push(LogEntry::Data {
            pid,
            batch,
            transactional: stamp.transactional,
            base_offset: offset,
            records: count,
        });
        log.end_offset += i64::from(count.max(1));
        if stamp.transactional {
            log.open_txns.entry(pid).or_insert(offset);
        }
        let s = log.producers.entry(pid).or_default();
        if s.epoch != epoch {
            s.epoch = epoch;
            s.batches.clear();
        }
        s.batches.push_back((first, last, offset));
        if s.batches.len() > 5 {
            s.batches.pop_front();
        }
        resp(None, offset)
    }

    /// The read_committed view: (partition, batch) visible, in log order,
    /// plus batches of transactions still open.
    pub fn read_committed(&self) -> (Vec<(TopicPartition, BatchId)>, usize) {
        let mut visible = Vec::new();
        let mut open = 0;
        for (tp, log) in &self.logs {
            let mut pending: BTreeMap<i64, Vec<BatchId>> = BTreeMap::new();
            for e in &log.entries {
                match e {
                    LogEntry::Data {
                        pid,
                        batch,
                        transactional,
                        ..
                    } => {
                        if *transactional {
                            pending.entry(*pid).or_default().push(*batch);
                        } else {
                            visible.push((tp.clone(), *batch));
                        }
                    }
                    LogEntry::Marker { pid, commit, .. } => {
                        let b = pending.remove(pid).unwrap_or_default();
                        if *commit {
                            visible.extend(b.into_iter().map(|b| (tp.clone(), b)));
                        }
                    }
                }
            }
            open += pending.values().map(Vec::len).sum::<usize>();
        }
        (visible, open)
    }

    /// Every batch id present in any log, committed or not.
    pub fn all_written(&self) -> BTreeSet<BatchId> {
        self.logs
            .values()
            .flat_map(|l| l.entries.iter())
            .filter_map(|e| match e {
                LogEntry::Data { batch, .. } => Some(*batch),
                _ => None,
            })
            .collect()
    }
}
