//! The real exactly-once `Session` (crate `exactly-eos`), one instance,
//! against the simulated broker on tokio's virtual clock: a copy with
//! deliberate aborts, its output judged by the exactly-once oracle (intent
//! headers, KIP-98 transactions, KIP-447 offsets in the transaction).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use exactly_consumer::ConsumerRecord;
use exactly_eos::{Context, Handler, HandlerError, Output, Session, SessionStats, TransactionEnd};
use exactly_producer::{Producer, ProducerConfig, ProducerRecord};
use exactly_testkit::cluster::SimCluster;
use exactly_testkit::oracle::{Intent, Oracle, TxnLog};

/// Copies each input record to `out` with intent headers; every
/// `abort_every`-th transaction is aborted on purpose (its input comes
/// again in the next one).
struct Copy {
    writer: String,
    seq: u64,
    index: u64,
    open: bool,
    abort_every: u64,
    log: Arc<Mutex<TxnLog>>,
}

impl Copy {
    fn doomed(&self) -> bool {
        self.seq.is_multiple_of(self.abort_every)
    }
}

#[derive(Debug)]
struct Deliberate;
impl std::fmt::Display for Deliberate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("deliberate abort")
    }
}
impl std::error::Error for Deliberate {}

impl Handler for Copy {
    async fn process(
        &mut self,
        ctx: &mut Context<'_>,
        records: &[ConsumerRecord],
    ) -> Result<(), HandlerError> {
        if !self.open {
            self.open = true;
            self.seq += 1;
            self.index = 0;
        }
        for r in records {
            let intent = Intent {
                writer: self.writer.clone(),
                seq: self.seq,
                abort: self.doomed(),
                index: self.index,
                source: Some((r.partition(), r.offset())),
            };
            self.index += 1;
            let mut out = ProducerRecord::new("out");
            let headers = intent.headers();
            for (k, v) in &headers {
                out = out.with_header(k, Some(v.as_bytes()));
            }
            if let Some(v) = r.value() {
                out = out.with_value(v);
            }
            ctx.send(out).await?;
        }
        Ok(())
    }

    async fn before_commit(&mut self, _out: &mut Output<'_>) -> Result<(), HandlerError> {
        if self.open && self.doomed() {
            return Err(Deliberate.into());
        }
        Ok(())
    }

    fn transaction_ended(&mut self, end: &TransactionEnd, _stats: &SessionStats) {
        if !std::mem::take(&mut self.open) {
            return;
        }
        let key = (self.writer.clone(), self.seq);
        let mut log = self.log.lock().unwrap();
        match end {
            TransactionEnd::Committed { records_out, .. } => {
                log.committed.insert(key, *records_out);
            }
            TransactionEnd::Aborted { .. } => {
                log.aborted.insert(key);
            }
        }
    }
}

/// Input: 25 committed, 10 aborted, 25 committed records over the
/// partitions, written by a transactional producer.
async fn write_input(sim: &SimCluster) {
    let mut b = ProducerConfig::builder();
    b.bootstrap_servers("sim:9092").unwrap();
    b.transactional_id("input-writer");
    b.net().dialer(sim.dialer());
    let p = Producer::new(b.build().unwrap()).await.unwrap();
    p.init_transactions().await.unwrap();
    for (t, n, commit) in [(0u8, 25u8, true), (1, 10, false), (2, 25, true)] {
        p.begin_transaction().await.unwrap();
        for i in 0..n {
            p.send(ProducerRecord::new("in").with_value(&[t, i]))
                .await
                .unwrap();
        }
        if commit {
            p.commit_transaction().await.unwrap();
        } else {
            p.abort_transaction().await.unwrap();
        }
    }
    p.close(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn the_session_copies_exactly_once_through_aborts_and_cut_connections() {
    let sim = SimCluster::new(2);
    write_input(&sim).await;
    // Later Produce requests (the session's) lose their answers: the
    // producer retries, the broker's sequence checks deduplicate.
    let already = sim.produces();
    sim.cut_after_produce([already + 2, already + 5, already + 9]);

    let mut b = Session::builder();
    b.bootstrap_servers("sim:9092")
        .unwrap()
        .set("consumer.auto.offset.reset", "earliest")
        .unwrap()
        .set("consumer.fetch.max.wait.ms", "100")
        .unwrap();
    b.group_id("copy")
        .transactional_id("copy-1")
        .input_topics(&["in"])
        .max_records_per_transaction(7)
        .max_transaction_time(Duration::from_millis(200))
        .stop_when_idle(Duration::from_secs(2))
        .handler_retry_backoff(Duration::ZERO);
    b.consumer().net().dialer(sim.dialer());
    b.producer()
        .net()
        .dialer(sim.dialer())
        .request_timeout(Duration::from_secs(2));
    let session = b.build().await.unwrap();
    let log = Arc::new(Mutex::new(TxnLog::default()));
    let handler = Copy {
        writer: "copy-1@test".into(),
        seq: 0,
        index: 0,
        open: false,
        abort_every: 3,
        log: log.clone(),
    };
    let real = std::time::Instant::now();
    let stats = session.run(handler).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    sim.settle();

    // The oracle over the output, read_committed.
    let out = sim.read_committed("out");
    let mut oracle = Oracle::new();
    for r in &out {
        oracle.observe_headers(r.partition, r.header_pairs());
    }
    let log = log.lock().unwrap().clone();
    let counts = oracle.finish(Some(&log));
    assert!(counts.is_clean(), "{counts:?}");
    assert_eq!(counts.unlabeled, 0);
    assert!(stats.aborted_by_handler >= 2, "{stats:?}");
    assert!(
        sim.duplicates() >= 1,
        "a cut produce was retried and deduplicated"
    );

    // Every committed input record is in the output once, nothing else.
    let input: BTreeSet<(i32, i64)> = sim
        .read_committed("in")
        .iter()
        .map(|r| (r.partition, r.offset))
        .collect();
    let sources: BTreeSet<(i32, i64)> = out
        .iter()
        .filter_map(|r| Intent::parse(r.header_pairs())?.source)
        .collect();
    assert_eq!(input.len(), 50);
    assert_eq!(out.len(), 50);
    assert_eq!(sources, input);
    // The group's offsets were committed with the output.
    for p in 0..2 {
        let tp = exactly_testkit::cluster::TopicPartition::new("in", p);
        let last = input.iter().filter(|(q, _)| *q == p).map(|(_, o)| *o).max();
        if let Some(last) = last {
            assert!(sim.committed_offset("copy", &tp) > Some(last));
        }
    }
    assert!(
        real.elapsed() < Duration::from_secs(10),
        "{:?}",
        real.elapsed()
    );
}
