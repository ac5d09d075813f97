//! Exactly-once copy of one topic to another, record by record: a thin
//! user of the exactly-once [`Session`] (crate `exactly-eos`), which keeps
//! the rules (one transaction for output and input offsets, KIP-447; abort
//! then rewind to the committed offsets, KAFKA-17582; commit on revoke,
//! abort on lost; stop on a fatal error). What is left here is the copy's
//! own: a one-to-one transform into one output topic, deliberate aborts for
//! demonstrations, and stopping after a count or when idle.
//!
//! With [`CopyConfig::label`] on (tests, the soak, the demo), every output
//! record carries the intent headers of [`crate::oracle`] (writer,
//! transaction sequence, intended outcome rolled when the transaction
//! begins, index, input partition and offset), and the copy logs each
//! transaction's outcome ([`CopyStats::log`]), so that
//! [`crate::oracle::Oracle`] can count aborted-visible records, torn
//! transactions and input order in the output.

use std::time::Duration;

use bytes::Bytes;
use exactly_consumer::{ConsumerError, ConsumerRecord};
use exactly_eos::{
    Context, Handler, HandlerError, Output, Session, SessionError, SessionStats, ShutdownHandle,
    TransactionEnd,
};
use exactly_net::ConfigError;
use exactly_producer::{ProducerError, ProducerRecord};

use crate::oracle::{Intent, TxnLog};

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
    /// Extra properties routed as [`exactly_eos::SessionBuilder::set`]
    /// routes them: session keys, `consumer.`/`producer.` prefixed keys, or
    /// client keys for each client that knows them.
    pub properties: Vec<(String, String)>,
    /// Label the output for [`crate::oracle::Oracle`]: intent headers on
    /// every record and each transaction's outcome kept in
    /// [`CopyStats::log`]. Off by default: a plain copy must not add
    /// headers to the user's records, and the log grows by one entry per
    /// transaction for as long as the copy runs.
    pub label: bool,
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
            properties: Vec::new(),
            label: false,
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
    /// The outcome of every transaction this copy wrote (intent headers'
    /// writer and sequence). In the stats [`copy()`] returns: all of them;
    /// in those handed to `progress`: the transaction just ended (so a
    /// process that may be killed can log as it goes, see
    /// [`TxnLog::line`]).
    pub log: TxnLog,
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
    /// Invalid settings (an unknown extra property, a bad value).
    #[error("configuration: {0}")]
    Config(#[from] ConfigError),
    /// The session ended otherwise (see [`SessionError`]).
    #[error("{0}")]
    Session(SessionError),
}

impl From<SessionError> for CopyError {
    fn from(e: SessionError) -> Self {
        match e {
            SessionError::Producer(e) => CopyError::Producer(e),
            SessionError::Consumer(e) => CopyError::Consumer(e),
            SessionError::Config(e) => CopyError::Config(e),
            e => CopyError::Session(e),
        }
    }
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
/// `transform`, calling `progress` after every transaction (committed or
/// aborted).
pub async fn copy(
    cfg: &CopyConfig,
    transform: impl FnMut(&ConsumerRecord) -> Transformed + Send,
    progress: impl FnMut(&CopyStats) + Send,
) -> Result<CopyStats, CopyError> {
    let mut b = Session::builder();
    b.bootstrap_servers(&cfg.bootstrap_servers)?
        .set("consumer.auto.offset.reset", "earliest")?;
    b.group_id(&cfg.group_id)
        .transactional_id(&cfg.transactional_id)
        .input_topics(&[&cfg.input])
        .max_records_per_transaction(cfg.records_per_transaction)
        // A partly filled transaction closes once the input pauses this
        // long, rather than hold its output back.
        .max_transaction_time(Duration::from_millis(200))
        .stop_when_idle(cfg.idle_timeout)
        // A deliberate abort is retried at once.
        .handler_retry_backoff(Duration::ZERO);
    // Explicit properties last: they win over the settings above.
    for (k, v) in &cfg.consumer_properties {
        b.set(&format!("consumer.{k}"), v)?;
    }
    for (k, v) in &cfg.producer_properties {
        b.set(&format!("producer.{k}"), v)?;
    }
    for (k, v) in &cfg.properties {
        b.set(k, v)?;
    }
    let session = b.build().await?;
    let mut log = TxnLog::default();
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let handler = CopyHandler {
        writer: format!("{}@{nonce:x}", cfg.transactional_id),
        seq: 0,
        current: None,
        index: 0,
        label: cfg.label,
        log: &mut log,
        output: &cfg.output,
        transform,
        progress,
        abort_fraction: cfg.abort_fraction,
        rng: cfg.seed | 1,
        stop_after: cfg.stop_after,
        stop: session.shutdown_handle(),
    };
    let stats = session.run(handler).await?;
    Ok(CopyStats {
        log,
        ..copy_stats(&stats)
    })
}

/// The copy's view of the session's counters: its only handler error is
/// the deliberate abort.
fn copy_stats(s: &SessionStats) -> CopyStats {
    CopyStats {
        consumed: s.records_in,
        committed_records: s.records_committed,
        transactions_committed: s.transactions_committed,
        transactions_aborted: s.aborted_by_handler,
        aborted_on_error: s.aborted_on_error + s.aborted_on_lost,
        rebalances: s.rebalances,
        log: TxnLog::default(),
    }
}

/// The copy as a session handler.
struct CopyHandler<'a, T, P> {
    /// Intent header: this run's writer identity.
    writer: String,
    /// The last transaction sequence begun.
    seq: u64,
    /// The open transaction's intended outcome (`Some(true)`: abort), rolled
    /// at its first record; `None` between transactions.
    current: Option<bool>,
    /// The next record's index within the open transaction.
    index: u64,
    /// [`CopyConfig::label`].
    label: bool,
    log: &'a mut TxnLog,
    output: &'a str,
    transform: T,
    progress: P,
    abort_fraction: f64,
    rng: u64,
    stop_after: Option<u64>,
    stop: ShutdownHandle,
}

impl<T, P> CopyHandler<'_, T, P> {
    /// Whether to abort this transaction on purpose (xorshift64).
    fn roll_abort(&mut self) -> bool {
        if self.abort_fraction <= 0.0 {
            return false;
        }
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        (x >> 11) as f64 / (1u64 << 53) as f64 <= self.abort_fraction
    }

    /// The open transaction's intent (abort?), rolled when it begins.
    fn begin(&mut self) -> bool {
        if let Some(abort) = self.current {
            return abort;
        }
        let abort = self.roll_abort();
        self.seq += 1;
        self.index = 0;
        self.current = Some(abort);
        abort
    }
}

/// The error a deliberate abort returns.
#[derive(Debug, thiserror::Error)]
#[error("deliberate abort (abort_fraction)")]
struct DeliberateAbort;

impl<T, P> Handler for CopyHandler<'_, T, P>
where
    T: FnMut(&ConsumerRecord) -> Transformed + Send,
    P: FnMut(&CopyStats) + Send,
{
    async fn process(
        &mut self,
        ctx: &mut Context<'_>,
        records: &[ConsumerRecord],
    ) -> Result<(), HandlerError> {
        let abort = self.begin();
        for r in records {
            let t = (self.transform)(r);
            let intent = if self.label {
                Intent {
                    writer: self.writer.clone(),
                    seq: self.seq,
                    abort,
                    index: self.index,
                    source: Some((r.partition(), r.offset())),
                }
                .headers()
            } else {
                Vec::new()
            };
            self.index += 1;
            let mut out = ProducerRecord::new(self.output);
            for (k, v) in &intent {
                out = out.with_header(k, Some(v.as_bytes()));
            }
            if let Some(k) = t.key.as_deref() {
                out = out.with_key(k);
            }
            if let Some(v) = t.value.as_deref() {
                out = out.with_value(v);
            }
            ctx.send(out).await?;
        }
        Ok(())
    }

    async fn before_commit(&mut self, _out: &mut Output<'_>) -> Result<(), HandlerError> {
        if self.begin() {
            return Err(DeliberateAbort.into());
        }
        Ok(())
    }

    fn transaction_ended(&mut self, end: &TransactionEnd, stats: &SessionStats) {
        let mut s = copy_stats(stats);
        if self.current.take().is_some() && self.label {
            let key = (self.writer.clone(), self.seq);
            match end {
                TransactionEnd::Committed { records_out, .. } => {
                    self.log.committed.insert(key.clone(), *records_out);
                    s.log.committed.insert(key, *records_out);
                }
                _ => {
                    self.log.aborted.insert(key.clone());
                    s.log.aborted.insert(key);
                }
            }
        }
        (self.progress)(&s);
        if self.stop_after.is_some_and(|n| s.committed_records >= n) {
            self.stop.shutdown();
        }
    }
}
