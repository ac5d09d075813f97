//! Numbered topics, for demos and checks: write the values `0..n` with the
//! idempotent producer, and judge a topic read back `read_committed` against
//! them (each value exactly once, per-partition order of offsets). The same
//! oracle RELIABILITY.md describes, in its smallest form, plus the intent
//! header checks of [`crate::oracle`] (aborted-visible, torn, input order)
//! over whatever records carry them.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use exactly_consumer::{Consumer, ConsumerError, Polled, TopicPartition};
use exactly_producer::{Producer, ProducerError, ProducerRecord};

use crate::oracle::{Oracle, OracleCounts, TxnLog};

/// Writes the decimal strings `"0".."n-1"` as values (and keys) to `topic`
/// with an idempotent producer (acks=all), calling `progress` with the count
/// acknowledged so far; returns when all are acknowledged.
pub async fn produce_numbered(
    bootstrap_servers: &str,
    topic: &str,
    n: u64,
    mut progress: impl FnMut(u64),
) -> Result<(), ProducerError> {
    let producer = Producer::from_properties([
        ("bootstrap.servers", bootstrap_servers),
        ("acks", "all"),
        ("enable.idempotence", "true"),
        ("linger.ms", "5"),
    ])
    .await?;
    let mut pending = Vec::with_capacity(1024);
    let mut acked = 0u64;
    for i in 0..n {
        let v = i.to_string();
        let delivery = producer
            .send(
                ProducerRecord::new(topic)
                    .with_key(v.as_bytes())
                    .with_value(v.as_bytes()),
            )
            .await?;
        pending.push(delivery);
        if pending.len() == 1024 || i + 1 == n {
            for d in pending.drain(..) {
                d.await?;
                acked += 1;
            }
            progress(acked);
        }
    }
    producer.close(Duration::from_secs(30)).await
}

/// What a `read_committed` read of a numbered topic found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verdict {
    /// Records read.
    pub read: u64,
    /// Distinct values among `0..expected` seen.
    pub distinct: u64,
    /// Records whose value was seen before.
    pub duplicates: u64,
    /// Values of `0..expected` never seen.
    pub missing: u64,
    /// Records whose value is not a number in `0..expected` (e.g. output of
    /// an aborted transaction would be a duplicate; garbage lands here).
    pub foreign: u64,
    /// Records whose offset did not increase within its partition.
    pub order_violations: u64,
    /// Records whose value is lower than the value before it in its
    /// partition. Meaningful for a topic one producer wrote in increasing
    /// order (an idempotent producer must not reorder a partition); a copy
    /// interleaves its input partitions, so it is not part of
    /// [`Verdict::is_exactly_once`].
    pub value_regressions: u64,
    /// The intent header checks ([`crate::oracle`]): aborted-visible, torn
    /// transactions, duplicate input records, input order. Records without
    /// intent headers count as `unlabeled` only.
    pub oracle: OracleCounts,
}

impl Verdict {
    /// Exactly once: everything present, nothing twice, nothing foreign, in order.
    pub fn is_exactly_once(&self) -> bool {
        self.duplicates == 0
            && self.missing == 0
            && self.foreign == 0
            && self.order_violations == 0
            && self.oracle.is_clean()
    }

    /// Exactly once, and every partition in increasing value order: what a
    /// topic written by [`produce_numbered`] (one idempotent producer) must
    /// show, whatever the broker went through.
    pub fn is_exactly_once_in_order(&self) -> bool {
        self.is_exactly_once() && self.value_regressions == 0
    }
}

/// Reads `topic` from the beginning with a fresh `read_committed` consumer
/// (manual assignment of all partitions) until `expected` records arrived
/// and nothing more came for up to 2 s, or nothing arrived for `idle`, and
/// judges what it read.
pub async fn verify_numbered(
    bootstrap_servers: &str,
    topic: &str,
    partitions: i32,
    expected: u64,
    idle: Duration,
    progress: impl FnMut(u64),
) -> Result<Verdict, ConsumerError> {
    verify_selected(
        bootstrap_servers,
        topic,
        partitions,
        expected,
        |_| true,
        idle,
        progress,
    )
    .await
}

/// [`verify_numbered`] for a topic that must hold the values of `0..n`
/// that `select` keeps (a filter's output), each exactly once; any other
/// value counts as foreign, and `missing` counts the selected values never
/// seen.
pub async fn verify_selected(
    bootstrap_servers: &str,
    topic: &str,
    partitions: i32,
    n: u64,
    select: impl Fn(u64) -> bool,
    idle: Duration,
    progress: impl FnMut(u64),
) -> Result<Verdict, ConsumerError> {
    verify_logged(
        bootstrap_servers,
        topic,
        partitions,
        n,
        select,
        None,
        idle,
        progress,
    )
    .await
}

/// [`verify_selected`], judging the intent headers against the writers'
/// transaction `log` too (a transaction logged aborted must not be visible,
/// one logged committed must be visible whole).
#[allow(clippy::too_many_arguments)]
pub async fn verify_logged(
    bootstrap_servers: &str,
    topic: &str,
    partitions: i32,
    n: u64,
    select: impl Fn(u64) -> bool,
    log: Option<&TxnLog>,
    idle: Duration,
    mut progress: impl FnMut(u64),
) -> Result<Verdict, ConsumerError> {
    let mut consumer = Consumer::from_properties([
        ("bootstrap.servers", bootstrap_servers),
        ("isolation.level", "read_committed"),
        ("auto.offset.reset", "earliest"),
    ])
    .await?;
    let tps: Vec<TopicPartition> = (0..partitions)
        .map(|p| TopicPartition::new(topic, p))
        .collect();
    consumer.assign(&tps)?;
    let expected = (0..n).filter(|&v| select(v)).count() as u64;
    let mut seen = vec![false; usize::try_from(n).unwrap_or(0)];
    let mut last_offset: HashMap<i32, i64> = HashMap::new();
    let mut last_value: HashMap<i32, u64> = HashMap::new();
    let mut v = Verdict::default();
    let mut oracle = Oracle::new();
    let mut last = Instant::now();
    // Once `expected` records are read, keep reading until the topic has
    // been quiet for a moment: a duplicate after the last expected value
    // (say a final transaction committed twice) must be counted too.
    let quiet = idle.min(Duration::from_secs(2));
    let mut all_read_at: Option<Instant> = None;
    loop {
        if v.read < expected {
            if last.elapsed() >= idle {
                break;
            }
        } else {
            let since = *all_read_at.get_or_insert_with(Instant::now);
            if since.max(last).elapsed() >= quiet {
                break;
            }
        }
        let Polled::Records(records) = consumer.poll(Duration::from_millis(200)).await? else {
            continue;
        };
        if records.is_empty() {
            continue;
        }
        last = Instant::now();
        for r in records.iter() {
            v.read += 1;
            oracle.observe_headers(
                r.partition(),
                r.headers()
                    .iter()
                    .map(|h| (h.key(), h.value().map(|b| &b[..]))),
            );
            if last_offset
                .insert(r.partition(), r.offset())
                .is_some_and(|o| o >= r.offset())
            {
                v.order_violations += 1;
            }
            let value = r
                .value()
                .and_then(|b| std::str::from_utf8(b).ok())
                .and_then(|s| s.parse::<u64>().ok())
                .filter(|&x| x < n && select(x));
            if let Some(x) = value {
                if last_value.insert(r.partition(), x).is_some_and(|p| p > x) {
                    v.value_regressions += 1;
                }
            }
            match value {
                Some(x) if seen[x as usize] => v.duplicates += 1,
                Some(x) => {
                    seen[x as usize] = true;
                    v.distinct += 1;
                }
                None => v.foreign += 1,
            }
        }
        progress(v.read);
    }
    v.missing = expected - v.distinct;
    v.oracle = oracle.finish(log);
    let _ = consumer.close().await;
    Ok(v)
}
