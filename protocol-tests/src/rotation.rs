//! Producer id rotation at epoch exhaustion (KIP-360, KIP-890 part 2) on the
//! real broker: the pieces of `tests/producer_rotation.rs` and of
//! [`full_rotation`], the long run where our producer makes every one of the
//! 32,767 epoch bumps itself.
//!
//! A 4.3.1 coordinator counts an epoch of `i16::MAX - 1` as exhausted: under
//! `transaction.version` 2 the EndTxn that ends a transaction at that epoch
//! writes its markers under the old id at `i16::MAX` and answers with a new
//! producer id at epoch 0; under version 1 an InitProducerId that finds the
//! epoch exhausted answers with a new producer id.
//!
//! Our producer's identity is read from its driver's `identity` tracing
//! event (one per identity it adopts), through [`IdentityLog`]: the producer
//! has no public accessor for it, and none is needed.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use exactly::{Producer, ProducerRecord};
use exactly_codec::messages::produce_request::{PartitionProduceData, TopicProduceData};
use exactly_codec::messages::{
    ApiKey, EndTxnRequest, InitProducerIdRequest, ProduceRequest, ProducerId, TopicName,
    TransactionalId,
};
use exactly_codec::protocol::StrBytes;
use exactly_codec::{BatchBuilder, Compression, ErrorCode, ProducerStamp};
use tracing_subscriber::layer::SubscriberExt;

use crate::{unique_topic, Broker, BrokerConfig, DumpedBatch, ProbeClient, TransactionVersion};

/// The first epoch the coordinator counts as exhausted.
pub const EXHAUSTED_EPOCH: i16 = i16::MAX - 1;

/// The identities (producer id, epoch) our producers announced, in order.
#[derive(Debug, Clone, Default)]
pub struct IdentityLog(Arc<Mutex<Vec<(i64, i16)>>>);

impl IdentityLog {
    /// Every identity announced so far.
    pub fn identities(&self) -> Vec<(i64, i16)> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The last identity announced.
    pub fn last(&self) -> Option<(i64, i16)> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .last()
            .copied()
    }

    fn push(&self, id: (i64, i16)) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(id);
    }
}

/// Fields of one event.
#[derive(Default)]
struct IdentityFields {
    message: String,
    producer_id: Option<i64>,
    epoch: Option<i64>,
}

impl tracing::field::Visit for IdentityFields {
    fn record_i64(&mut self, field: &tracing::field::Field, value: i64) {
        match field.name() {
            "producer_id" => self.producer_id = Some(value),
            "epoch" => self.epoch = Some(value),
            _ => {}
        }
    }

    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "message" {
            value.clone_into(&mut self.message);
        }
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.message = format!("{value:?}");
        }
    }
}

struct IdentityLayer(IdentityLog);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for IdentityLayer {
    fn on_event(
        &self,
        event: &tracing::Event<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let mut f = IdentityFields::default();
        event.record(&mut f);
        if f.message == "identity" {
            if let (Some(pid), Some(epoch)) = (f.producer_id, f.epoch) {
                let epoch = i16::try_from(epoch)
                    .unwrap_or_else(|_| panic!("identity event with epoch {epoch}"));
                self.0.push((pid, epoch));
            }
        }
    }
}

/// A current-thread runtime whose tasks (our producers' drivers among them)
/// report their `identity` events to `log` while the guard lives. Only the
/// producer's identity events are enabled, so the subscriber costs nothing
/// elsewhere.
pub fn current_thread_runtime(
    log: &IdentityLog,
) -> (tokio::runtime::Runtime, tracing::subscriber::DefaultGuard) {
    use tracing_subscriber::Layer;
    let layer =
        IdentityLayer(log.clone()).with_filter(tracing_subscriber::filter::filter_fn(|m| {
            m.is_event()
                && m.target().starts_with("exactly_producer")
                && m.fields().field("producer_id").is_some()
                && m.fields().field("epoch").is_some()
        }));
    let guard = tracing::subscriber::set_default(tracing_subscriber::registry().with(layer));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"));
    (rt, guard)
}

/// A probe connected to the transaction coordinator of `txn_id`.
fn coordinator_client(broker: &Broker, txn_id: &str) -> ProbeClient {
    // A fresh broker answers COORDINATOR_NOT_AVAILABLE until its
    // transaction state topic exists.
    let deadline = Instant::now() + Duration::from_secs(60);
    let node = loop {
        match broker.txn_coordinator(txn_id) {
            Ok(node) => break node,
            Err(e) if Instant::now() < deadline => {
                println!("FindCoordinator {txn_id}: {e}; retrying");
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(e) => panic!("FindCoordinator {txn_id}: {e}"),
        }
    };
    ProbeClient::connect(&broker.address(node), Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("connect to coordinator {node}: {e}"))
}

fn retriable(code: i16) -> bool {
    matches!(
        ErrorCode::from_code(code),
        Some(
            ErrorCode::CoordinatorLoadInProgress
                | ErrorCode::CoordinatorNotAvailable
                | ErrorCode::NotCoordinator
                | ErrorCode::ConcurrentTransactions
        )
    )
}

fn code_name(code: i16) -> String {
    match ErrorCode::from_code(code) {
        Some(c) => format!("{c:?} ({code})"),
        None => code.to_string(),
    }
}

/// Sends bare InitProducerId requests for `txn_id` (no producer id: what a
/// freshly started producer's `init_transactions` sends) until the
/// coordinator's epoch is `target`. Checks that each one bumps the epoch of
/// the same producer id by exactly one. Returns (producer id, epoch).
pub fn bump_epoch_with_bare_inits(broker: &Broker, txn_id: &str, target: i16) -> (i64, i16) {
    assert!(
        (0..EXHAUSTED_EPOCH).contains(&target),
        "target epoch {target}"
    );
    let mut client = coordinator_client(broker, txn_id);
    let req = InitProducerIdRequest::default()
        .with_transactional_id(Some(TransactionalId(StrBytes::from_string(
            txn_id.to_owned(),
        ))))
        .with_transaction_timeout_ms(60_000)
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    let mut last: Option<(i64, i16)> = None;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let resp = client
            .call(&req)
            .unwrap_or_else(|e| panic!("InitProducerId: {e}"));
        if resp.error_code != 0 {
            assert!(
                retriable(resp.error_code) && Instant::now() < deadline,
                "InitProducerId {txn_id}: {}",
                code_name(resp.error_code)
            );
            std::thread::sleep(Duration::from_millis(50));
            continue;
        }
        let got = (resp.producer_id.0, resp.producer_epoch);
        match last {
            None => assert_eq!(got.1, 0, "a new transactional id starts at epoch 0"),
            Some((pid, epoch)) => assert_eq!(got, (pid, epoch + 1), "one bump per InitProducerId"),
        }
        last = Some(got);
        if got.1 == target {
            return got;
        }
    }
}

/// Runs transactions on `p` (begin, one record with value `*next`, commit;
/// `*next` counts up) until `stop` is true of the last identity logged
/// (checked after each commit) or `max` transactions ran. Returns the
/// number run. Any failure panics.
pub async fn run_transactions(
    p: &Producer,
    topic: &str,
    next: &mut u64,
    log: &IdentityLog,
    max: u64,
    stop: impl Fn(Option<(i64, i16)>) -> bool,
) -> u64 {
    for ran in 1..=max {
        let v = next.to_string();
        p.begin_transaction()
            .await
            .unwrap_or_else(|e| panic!("begin (value {v}, {:?}): {e}", log.last()));
        let delivery = p
            .send(ProducerRecord::new(topic).with_value(v.as_bytes()))
            .await
            .unwrap_or_else(|e| panic!("send {v} ({:?}): {e}", log.last()));
        p.commit_transaction()
            .await
            .unwrap_or_else(|e| panic!("commit {v} ({:?}): {e}", log.last()));
        delivery
            .await
            .unwrap_or_else(|e| panic!("delivery of {v} ({:?}): {e}", log.last()));
        *next += 1;
        if stop(log.last()) {
            return ran;
        }
    }
    max
}

/// Asserts that `ids` (one producer's identities, in order) start at
/// `(old_pid, first_epoch)`, bump the epoch by one per step when
/// `bump_per_step`, and switch exactly once to `(new_pid, 0)`, from the
/// exhausted epoch. Returns the last epoch of the old id.
pub fn assert_identities_step_through_rotation(
    ids: &[(i64, i16)],
    old_pid: i64,
    first_epoch: i16,
    new_pid: i64,
    bump_per_step: bool,
) -> i16 {
    assert_eq!(ids.first(), Some(&(old_pid, first_epoch)), "{ids:?}");
    assert_ne!(old_pid, new_pid);
    let mut rotated_from = None;
    for w in ids.windows(2) {
        let ((p0, e0), (p1, e1)) = (w[0], w[1]);
        if p0 == p1 {
            if bump_per_step {
                assert_eq!(e1, e0 + 1, "epoch steps by one: {w:?}");
            }
        } else {
            assert_eq!((p0, p1, e1), (old_pid, new_pid, 0), "rotation: {w:?}");
            assert!(rotated_from.is_none(), "rotated twice: {ids:?}");
            rotated_from = Some(e0);
        }
    }
    let from = rotated_from.unwrap_or_else(|| panic!("no rotation in {ids:?}"));
    assert_eq!(from, EXHAUSTED_EPOCH, "rotated from epoch {from}");
    from
}

/// After the rotation, the old producer id at each of `epochs` is refused
/// by the coordinator (EndTxn) and by the partition leader (a transactional
/// Produce of one record with value `value`, for partition 0 of `topic`).
/// Pick `value` among values already committed, so that if the record were
/// ever visible the judges would count a duplicate.
pub fn old_id_is_refused(
    broker: &Broker,
    txn_id: &str,
    topic: &str,
    old_pid: i64,
    epochs: &[i16],
    value: &str,
) {
    let mut coordinator = coordinator_client(broker, txn_id);
    let leader = broker
        .leader_of(topic, 0)
        .unwrap_or_else(|e| panic!("leader of {topic}-0: {e}"));
    let mut partition = ProbeClient::connect(&broker.address(leader), Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("connect to leader {leader}: {e}"));
    let produce_version = partition
        .versions()
        .pick_client(ApiKey::Produce)
        .unwrap_or_else(|e| panic!("produce version: {e}"));
    for &epoch in epochs {
        let end = EndTxnRequest::default()
            .with_transactional_id(TransactionalId(StrBytes::from_string(txn_id.to_owned())))
            .with_producer_id(ProducerId(old_pid))
            .with_producer_epoch(epoch)
            .with_committed(true);
        let resp = coordinator
            .call(&end)
            .unwrap_or_else(|e| panic!("EndTxn: {e}"));
        println!(
            "EndTxn(commit) with old pid {old_pid} epoch {epoch}: {}",
            code_name(resp.error_code)
        );
        assert_ne!(
            resp.error_code, 0,
            "EndTxn with the old id {old_pid} epoch {epoch} accepted: {resp:?}"
        );

        let mut b = BatchBuilder::new(Compression::None);
        b.append(0, None, Some(value.as_bytes()), &[])
            .unwrap_or_else(|e| panic!("append: {e}"));
        let records = b
            .close()
            .unwrap_or_else(|e| panic!("close: {e}"))
            .stamp(ProducerStamp {
                producer_id: old_pid,
                producer_epoch: epoch,
                base_sequence: 0,
                transactional: true,
            });
        let req = ProduceRequest::default()
            .with_transactional_id(Some(TransactionalId(StrBytes::from_string(
                txn_id.to_owned(),
            ))))
            .with_acks(-1)
            .with_timeout_ms(30_000)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_string(topic.to_owned())))
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(0)
                    .with_records(Some(records))])]);
        let resp = partition
            .call_at(&req, produce_version)
            .unwrap_or_else(|e| panic!("Produce: {e}"));
        let code = resp.responses[0].partition_responses[0].error_code;
        println!(
            "Produce v{produce_version} with old pid {old_pid} epoch {epoch}: {}",
            code_name(code)
        );
        assert_ne!(
            code, 0,
            "a transactional batch of the old id {old_pid} epoch {epoch} was written"
        );
    }
}

/// What `DumpLogSegments` shows of a rotation on partition 0 of `topic`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSummary {
    /// Data batches of the old producer id.
    pub old_data_batches: usize,
    /// Data batches of the new producer id.
    pub new_data_batches: usize,
    /// The new producer id.
    pub new_pid: i64,
    /// Epochs of the old id's data batches: (first, last).
    pub old_data_epochs: (i16, i16),
    /// Highest epoch of the old id's transaction markers.
    pub old_last_marker_epoch: i16,
    /// Epochs of the new id's data batches: (first, last).
    pub new_data_epochs: (i16, i16),
}

/// Reads partition 0 of `topic` with `DumpLogSegments` and asserts: every
/// data batch is transactional and of `old_pid` (the first
/// `old_data_batches`) or of one new producer id (the rest); per (producer
/// id, epoch) the sequences run from 0 without gap; under tv2 the epochs of
/// each id's data batches step by one per transaction, the old id's last
/// data epoch is the exhausted one and its last marker one more, the new
/// id's start at 0; under tv1 an id's epoch stays or steps by one.
pub fn check_log(
    broker: &Broker,
    topic: &str,
    old_pid: i64,
    old_data_batches: usize,
    tv: TransactionVersion,
) -> LogSummary {
    let node = broker
        .leader_of(topic, 0)
        .unwrap_or_else(|e| panic!("leader of {topic}-0: {e}"));
    let files = broker
        .segment_files(node, topic, 0)
        .unwrap_or_else(|e| panic!("segments: {e}"));
    let all = broker
        .java()
        .dump_log_segments(&files)
        .unwrap_or_else(|e| panic!("DumpLogSegments: {e}"));
    let data: Vec<&DumpedBatch> = all.iter().filter(|b| !b.is_control).collect();
    assert!(
        data.iter().all(|b| b.is_transactional && b.count == 1),
        "non-transactional or multi-record batch"
    );
    assert!(
        all.iter().all(|b| b.producer_epoch >= 0),
        "a batch with a negative (wrapped) epoch"
    );
    let (old, new): (Vec<&DumpedBatch>, Vec<&DumpedBatch>) =
        data.iter().partition(|b| b.producer_id == old_pid);
    assert_eq!(old.len(), old_data_batches, "data batches of the old id");
    assert!(
        data[..old.len()].iter().all(|b| b.producer_id == old_pid),
        "the old id's batches come first"
    );
    let new_pid = new
        .first()
        .unwrap_or_else(|| panic!("no batch of a new id"))
        .producer_id;
    assert!(
        new.iter().all(|b| b.producer_id == new_pid),
        "one new producer id"
    );
    let mut next_seq: BTreeMap<(i64, i16), i32> = BTreeMap::new();
    for b in &data {
        let want = next_seq
            .entry((b.producer_id, b.producer_epoch))
            .or_insert(0);
        assert_eq!(b.base_sequence, *want, "sequence gap: {b:?}");
        *want = b.last_sequence + 1;
    }
    let epochs = |bs: &[&DumpedBatch]| {
        let e: Vec<i16> = bs.iter().map(|b| b.producer_epoch).collect();
        match tv {
            TransactionVersion::V2 => assert!(
                e.windows(2).all(|w| w[1] == w[0] + 1),
                "tv2: one epoch per transaction: {e:?}"
            ),
            TransactionVersion::V1 => assert!(
                e.windows(2).all(|w| w[1] == w[0] || w[1] == w[0] + 1),
                "tv1: the epoch stays, or steps by one (an abort's bump): {e:?}"
            ),
        }
        (e[0], e[e.len() - 1])
    };
    let old_data_epochs = epochs(&old);
    let new_data_epochs = epochs(&new);
    let old_last_marker_epoch = all
        .iter()
        .filter(|b| b.is_control && b.producer_id == old_pid)
        .map(|b| b.producer_epoch)
        .max()
        .unwrap_or_else(|| panic!("no marker of the old id"));
    let summary = LogSummary {
        old_data_batches: old.len(),
        new_data_batches: new.len(),
        new_pid,
        old_data_epochs,
        old_last_marker_epoch,
        new_data_epochs,
    };
    println!("DumpLogSegments: {summary:?}");
    assert_eq!(old_data_epochs.1, EXHAUSTED_EPOCH, "{summary:?}");
    assert_eq!(new_data_epochs.0, 0, "{summary:?}");
    if tv == TransactionVersion::V2 {
        assert_eq!(old_last_marker_epoch, i16::MAX, "{summary:?}");
    }
    summary
}

/// What [`full_rotation`] saw.
#[derive(Debug, Clone)]
pub struct FullRotationReport {
    /// Transactions our producer ran under its first producer id.
    pub transactions_before: u64,
    /// Transactions it ran under the new one.
    pub transactions_after: u64,
    /// The first producer id.
    pub old_pid: i64,
    /// The producer id handed out at exhaustion.
    pub new_pid: i64,
    /// The old id's last epoch as our producer saw it.
    pub rotated_from_epoch: i16,
    /// Time of the transactions before the rotation.
    pub until_rotation: Duration,
    /// Transactions per second until the rotation.
    pub transactions_per_second: f64,
    /// What `DumpLogSegments` showed.
    pub log: LogSummary,
}

/// The whole rotation done by our producer (soak tier; minutes): on a
/// fresh single-node tv2 broker, one transactional producer runs
/// transactions of one record from epoch 0 until its producer id changes
/// (32,767 of them), then `after` more; the old id is refused afterwards,
/// both judges read every value once, and `DumpLogSegments` shows each
/// old-id transaction at its own epoch up to the exhausted one. Panics on any
/// failure.
///
/// The broker retries its check of a transaction's partition against the
/// coordinator (KIP-890) after `add.partitions.to.txn.retry.backoff.ms`,
/// 20 ms by default; a transaction that follows a commit whose markers are
/// still being written waits for that retry. The broker here retries after
/// 1 ms, which roughly doubles the transactions per second and changes
/// nothing else.
pub fn full_rotation(after: u64) -> FullRotationReport {
    let broker = Broker::start(
        BrokerConfig::with_transaction_version(TransactionVersion::V2)
            .property("add.partitions.to.txn.retry.backoff.ms", "1")
            .property("add.partitions.to.txn.retry.backoff.max.ms", "5"),
    )
    .unwrap_or_else(|e| panic!("broker: {e}"));
    let topic = unique_topic("full-rotation");
    broker
        .create_topic(&topic, 1)
        .unwrap_or_else(|e| panic!("topic: {e}"));
    let txn_id = unique_topic("full-rotation-id");
    let log = IdentityLog::default();
    let (rt, guard) = current_thread_runtime(&log);
    let (before, ran_after, until_rotation, n) = rt.block_on(async {
        let p = Producer::from_properties([
            ("bootstrap.servers", broker.bootstrap().as_str()),
            ("transactional.id", txn_id.as_str()),
        ])
        .await
        .unwrap_or_else(|e| panic!("producer: {e}"));
        p.init_transactions()
            .await
            .unwrap_or_else(|e| panic!("init: {e}"));
        let (old_pid, first_epoch) = log
            .last()
            .unwrap_or_else(|| panic!("no identity after init"));
        assert_eq!(first_epoch, 0, "a new transactional id starts at epoch 0");
        let mut next = 0u64;
        let t0 = Instant::now();
        let mut before = 0;
        // In rounds, to show progress; the rotation is due after 32,767.
        while log.last().is_some_and(|(pid, _)| pid == old_pid) {
            assert!(before < 40_000, "no rotation after {before} transactions");
            before += run_transactions(&p, &topic, &mut next, &log, 4096, |last| {
                last.is_some_and(|(pid, _)| pid != old_pid)
            })
            .await;
            println!(
                "{before} transactions, identity {:?}, {:.0}/s",
                log.last(),
                before as f64 / t0.elapsed().as_secs_f64()
            );
        }
        let until_rotation = t0.elapsed();
        let ran_after = run_transactions(&p, &topic, &mut next, &log, after, |_| false).await;
        old_id_is_refused(
            &broker,
            &txn_id,
            &topic,
            old_pid,
            &[EXHAUSTED_EPOCH, i16::MAX],
            "0",
        );
        p.close(Duration::from_secs(10))
            .await
            .unwrap_or_else(|e| panic!("close: {e}"));
        (before, ran_after, until_rotation, next)
    });
    drop(guard);
    let ids = log.identities();
    let (old_pid, _) = ids[0];
    let (new_pid, _) = ids[ids.len() - 1];
    let rotated_from_epoch =
        assert_identities_step_through_rotation(&ids, old_pid, 0, new_pid, true);
    crate::judge::exactly_once(&broker, &rt, &topic, 1, n, "full rotation");
    let log = check_log(
        &broker,
        &topic,
        old_pid,
        usize::try_from(before).unwrap_or(usize::MAX),
        TransactionVersion::V2,
    );
    assert_eq!(log.old_data_epochs, (0, EXHAUSTED_EPOCH), "{log:?}");
    FullRotationReport {
        transactions_before: before,
        transactions_after: ran_after,
        old_pid,
        new_pid,
        rotated_from_epoch,
        until_rotation,
        transactions_per_second: before as f64 / until_rotation.as_secs_f64(),
        log,
    }
}
