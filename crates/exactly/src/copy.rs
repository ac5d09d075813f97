//! Exactly-once consume-transform-produce: the loop around a
//! [`Consumer`] and a transactional [`Producer`] that most users would
//! otherwise write by hand (KIP-98 transactions, KIP-447 offsets with group
//! metadata, KIP-890 on brokers that finalize `transaction.version=2`).
//!
//! The rules it keeps, and why each one matters:
//!
//! - Records consumed by one `poll` are all produced inside one transaction,
//!   and the consumed positions go into that same transaction
//!   (`send_offsets_to_transaction` with the group's generation and member
//!   id), so output and input offsets commit or vanish together.
//! - After any abort — deliberate, or forced by an abortable error — the
//!   consumer is moved back to the group's committed offsets
//!   (`seek_to_committed`, KAFKA-17582): otherwise the aborted records would
//!   never be copied again.
//! - A revoked partition (rebalance, member still in its generation) ends the
//!   open transaction with a commit first; a *lost* one (session expired,
//!   fenced) aborts it, because another member may already own the input.
//! - A fatal error (fenced by a newer instance of the same
//!   `transactional.id`) stops the loop: a zombie must not write.

use std::time::{Duration, Instant};

use bytes::Bytes;
use exactly_consumer::{Consumer, ConsumerError, ConsumerRecord, Polled, Rebalance};
use exactly_producer::{Producer, ProducerError, ProducerRecord};

/// What to copy, and how.
#[derive(Debug, Clone)]
pub struct CopyConfig {
    /// `bootstrap.servers`.
    pub bootstrap_servers: String,
    /// Topic to read (`read_committed`).
    pub input: String,
    /// Topic to write, transactionally.
    pub output: String,
    /// Consumer group whose offsets travel with the transactions.
    pub group_id: String,
    /// `transactional.id` of the producer (one per copier instance).
    pub transactional_id: String,
    /// Input records per transaction (a transaction closes after the poll
    /// that reaches this many).
    pub records_per_transaction: usize,
    /// Deliberately abort this fraction of transactions (0.0 = none), to
    /// show that aborted output stays invisible and is copied again.
    pub abort_fraction: f64,
    /// Seed of the deliberate aborts, so a run can be repeated.
    pub seed: u64,
    /// Stop once this many input records were committed (`None`: run until
    /// idle).
    pub stop_after: Option<u64>,
    /// Stop when no record arrived for this long and no transaction is open.
    pub idle_timeout: Duration,
    /// Extra consumer properties (Kafka names; unknown keys are errors).
    pub consumer_properties: Vec<(String, String)>,
    /// Extra producer properties (Kafka names; unknown keys are errors).
    pub producer_properties: Vec<(String, String)>,
}

impl CopyConfig {
    /// A copy from `input` to `output` with sensible defaults: 500 records
    /// per transaction, no deliberate aborts, stop after 10 s idle.
    pub fn new(
        bootstrap_servers: impl Into<String>,
        input: impl Into<String>,
        output: impl Into<String>,
        group_id: impl Into<String>,
        transactional_id: impl Into<String>,
    ) -> Self {
        Self {
            bootstrap_servers: bootstrap_servers.into(),
            input: input.into(),
            output: output.into(),
            group_id: group_id.into(),
            transactional_id: transactional_id.into(),
            records_per_transaction: 500,
            abort_fraction: 0.0,
            seed: 1,
            stop_after: None,
            idle_timeout: Duration::from_secs(10),
            consumer_properties: Vec::new(),
            producer_properties: Vec::new(),
        }
    }
}

/// What the copy did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CopyStats {
    /// Input records polled (records of aborted transactions count again
    /// when re-read).
    pub consumed: u64,
    /// Input records whose copy was committed.
    pub committed_records: u64,
    /// Transactions committed.
    pub transactions_committed: u64,
    /// Transactions aborted on purpose (`abort_fraction`).
    pub transactions_aborted: u64,
    /// Transactions aborted because of an abortable error.
    pub aborted_on_error: u64,
    /// Rebalance events seen.
    pub rebalances: u64,
}

/// Why a copy stopped early.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// The producer failed fatally (e.g. fenced by a newer instance).
    #[error("producer: {0}")]
    Producer(#[from] ProducerError),
    /// The consumer failed.
    #[error("consumer: {0}")]
    Consumer(#[from] ConsumerError),
}

/// One output record made from one input record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Transformed {
    /// Output key (None = null).
    pub key: Option<Bytes>,
    /// Output value (None = null).
    pub value: Option<Bytes>,
}

impl Transformed {
    /// The input's key and value, unchanged.
    pub fn identity(record: &ConsumerRecord) -> Self {
        Self {
            key: record.key().cloned(),
            value: record.value().cloned(),
        }
    }
}

/// Copies `cfg.input` to `cfg.output` exactly once, record by record through
/// `transform`, calling `progress` after every transaction.
pub async fn copy(
    cfg: &CopyConfig,
    mut transform: impl FnMut(&ConsumerRecord) -> Transformed,
    mut progress: impl FnMut(&CopyStats),
) -> Result<CopyStats, CopyError> {
    let mut consumer_props: Vec<(String, String)> = vec![
        ("bootstrap.servers".into(), cfg.bootstrap_servers.clone()),
        ("group.id".into(), cfg.group_id.clone()),
        ("auto.offset.reset".into(), "earliest".into()),
        ("isolation.level".into(), "read_committed".into()),
    ];
    consumer_props.extend(cfg.consumer_properties.iter().cloned());
    let mut consumer = Consumer::from_properties(consumer_props).await?;
    consumer.subscribe(&[cfg.input.as_str()])?;

    let mut producer_props: Vec<(String, String)> = vec![
        ("bootstrap.servers".into(), cfg.bootstrap_servers.clone()),
        ("transactional.id".into(), cfg.transactional_id.clone()),
        ("acks".into(), "all".into()),
    ];
    producer_props.extend(cfg.producer_properties.iter().cloned());
    let producer = Producer::from_properties(producer_props).await?;
    producer.init_transactions().await?;

    let mut run = Run {
        cfg,
        stats: CopyStats::default(),
        open: None,
        rng: cfg.seed | 1,
    };
    let result = run
        .pump(&mut consumer, &producer, &mut transform, &mut progress)
        .await;
    // Whatever happened, leave nothing open: an unfinished transaction is
    // aborted by close, and the group is left cleanly.
    let _ = producer.close(Duration::from_secs(10)).await;
    let _ = consumer.close().await;
    result.map(|()| run.stats)
}

struct Run<'a> {
    cfg: &'a CopyConfig,
    stats: CopyStats,
    /// Input records in the open transaction, if one is open.
    open: Option<u64>,
    rng: u64,
}

impl Run<'_> {
    async fn pump(
        &mut self,
        consumer: &mut Consumer,
        producer: &Producer,
        transform: &mut impl FnMut(&ConsumerRecord) -> Transformed,
        progress: &mut impl FnMut(&CopyStats),
    ) -> Result<(), CopyError> {
        let mut last_record = Instant::now();
        loop {
            if self.open.is_none() {
                if let Some(n) = self.cfg.stop_after {
                    if self.stats.committed_records >= n {
                        return Ok(());
                    }
                }
                if last_record.elapsed() >= self.cfg.idle_timeout {
                    return Ok(());
                }
            }
            match consumer.poll(Duration::from_millis(200)).await? {
                Polled::Rebalance(event) => {
                    self.stats.rebalances += 1;
                    match event {
                        Rebalance::Revoked(_) => {
                            self.finish(consumer, producer, false).await?;
                        }
                        Rebalance::Lost(_) => {
                            self.finish(consumer, producer, true).await?;
                        }
                        Rebalance::Assigned(_) => {}
                    }
                }
                Polled::Records(records) if records.is_empty() => {
                    // Nothing new: close a partly filled transaction rather
                    // than hold its output back.
                    if self.open.is_some() {
                        let abort = self.roll_abort();
                        self.finish(consumer, producer, abort).await?;
                        progress(&self.stats);
                    }
                }
                Polled::Records(records) => {
                    last_record = Instant::now();
                    if self.open.is_none() {
                        producer.begin_transaction().await?;
                        self.open = Some(0);
                    }
                    let mut failed = None;
                    for r in records.iter() {
                        let t = transform(r);
                        let mut out = ProducerRecord::new(&self.cfg.output);
                        if let Some(k) = t.key.as_deref() {
                            out = out.with_key(k);
                        }
                        if let Some(v) = t.value.as_deref() {
                            out = out.with_value(v);
                        }
                        if let Err(e) = producer.send(out).await {
                            failed = Some(e);
                            break;
                        }
                    }
                    let n = records.len() as u64;
                    self.stats.consumed += n;
                    self.open = self.open.map(|c| c + n);
                    if let Some(e) = failed {
                        self.on_error(consumer, producer, e).await?;
                        progress(&self.stats);
                        continue;
                    }
                    if self.open.unwrap_or(0) >= self.cfg.records_per_transaction as u64 {
                        let abort = self.roll_abort();
                        self.finish(consumer, producer, abort).await?;
                        progress(&self.stats);
                    }
                }
            }
        }
    }

    /// Ends the open transaction (if any): commit with the consumed offsets,
    /// or abort and rewind.
    async fn finish(
        &mut self,
        consumer: &mut Consumer,
        producer: &Producer,
        abort: bool,
    ) -> Result<(), CopyError> {
        let Some(count) = self.open else {
            return Ok(());
        };
        if abort {
            self.abort(consumer, producer).await?;
            self.stats.transactions_aborted += 1;
            return Ok(());
        }
        let committed = async {
            producer
                .send_offsets_to_transaction(
                    consumer.offsets_to_commit(),
                    &consumer.group_metadata(),
                )
                .await?;
            producer.commit_transaction().await
        }
        .await;
        match committed {
            Ok(()) => {
                self.open = None;
                self.stats.transactions_committed += 1;
                self.stats.committed_records += count;
                Ok(())
            }
            Err(e) => self.on_error(consumer, producer, e).await,
        }
    }

    /// An abortable error aborts and rewinds; anything else stops the copy.
    async fn on_error(
        &mut self,
        consumer: &mut Consumer,
        producer: &Producer,
        error: ProducerError,
    ) -> Result<(), CopyError> {
        if !error.is_abortable() {
            return Err(error.into());
        }
        tracing::warn!(%error, "aborting the transaction after an abortable error");
        self.abort(consumer, producer).await?;
        self.stats.aborted_on_error += 1;
        Ok(())
    }

    async fn abort(
        &mut self,
        consumer: &mut Consumer,
        producer: &Producer,
    ) -> Result<(), CopyError> {
        producer.abort_transaction().await?;
        self.open = None;
        // KAFKA-17582: the positions must go back to what the group has
        // committed, or the aborted input would never be copied.
        let assigned = consumer.assignment();
        consumer.seek_to_committed(&assigned).await?;
        Ok(())
    }

    /// Whether to abort this transaction on purpose (xorshift64).
    fn roll_abort(&mut self) -> bool {
        if self.cfg.abort_fraction <= 0.0 {
            return false;
        }
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        (x >> 11) as f64 / (1u64 << 53) as f64 <= self.cfg.abort_fraction
    }
}
