//! `copy` and `verify`.

use std::collections::{BTreeMap, HashSet};
use std::hash::{Hash, Hasher};
use std::time::Duration;

use crate::consumer::{ConsumerRecord, TopicPartition};
use crate::{check as numbered, copy as copy_topic, CopyConfig, Transformed};
use anyhow::Context;

use super::consume::{end_offsets, open_consumer};
use super::{bar, Failure, Props};

pub(crate) const COPY_HELP: &str = "\
Example:
  exactly copy --input in --output out --group copier --transactional-id copier-1 --count 1000";

pub(crate) const VERIFY_HELP: &str = "\
Examples:
  exactly verify --topic out                      # any topic: counts and duplicates
  exactly verify --topic out --partitions 3 --count 1000 --json
                                                  # values 0..1000 each exactly once

Exit status 1 when the topic fails the check.";

#[derive(clap::Args)]
pub(crate) struct CopyArgs {
    /// Input topic (read read_committed).
    #[arg(long)]
    input: String,
    /// Output topic (written transactionally).
    #[arg(long)]
    output: String,
    /// Consumer group.
    #[arg(long)]
    group: String,
    /// transactional.id of this copier.
    #[arg(long)]
    transactional_id: String,
    /// Stop after this many input records were committed (default: until idle).
    #[arg(long)]
    count: Option<u64>,
    /// Input records per transaction.
    #[arg(long, default_value_t = 500)]
    records_per_transaction: usize,
    /// Abort this fraction of transactions on purpose (0.0-1.0).
    #[arg(long, default_value_t = 0.0)]
    abort_fraction: f64,
    /// Label the output for `verify`'s aborted-visible / torn / order counts
    /// (intent headers on every record; see `exactly::oracle`).
    #[arg(long)]
    label: bool,
    /// Stop after this many seconds without input.
    #[arg(long, default_value_t = 10)]
    idle_secs: u64,
}

#[derive(clap::Args)]
pub(crate) struct VerifyArgs {
    /// Topic to read.
    #[arg(long, short = 't')]
    topic: String,
    /// Expected values 0..count (numbered topics; omit for any topic).
    #[arg(long)]
    count: Option<u64>,
    /// Partition count (numbered mode; default: from metadata).
    #[arg(long)]
    partitions: Option<i32>,
    /// Give up after this many seconds without records.
    #[arg(long, default_value_t = 30)]
    idle_secs: u64,
    /// Print the verdict as one JSON object.
    #[arg(long)]
    json: bool,
}

pub(crate) async fn copy(props: &Props, a: CopyArgs) -> Result<(), Failure> {
    let bootstrap = props
        .get("bootstrap.servers")
        .unwrap_or_default()
        .to_owned();
    let cfg = CopyConfig {
        records_per_transaction: a.records_per_transaction,
        abort_fraction: a.abort_fraction,
        label: a.label,
        stop_after: a.count,
        idle_timeout: Duration::from_secs(a.idle_secs),
        properties: props
            .all()
            .into_iter()
            .filter(|(k, _)| k != "bootstrap.servers")
            .collect(),
        ..CopyConfig::new(
            &bootstrap,
            &a.input,
            &a.output,
            &a.group,
            &a.transactional_id,
        )
    };
    let pb = bar(a.count.unwrap_or(0), "copy");
    let stats = copy_topic(&cfg, Transformed::identity, |s| {
        pb.set_position(s.committed_records)
    })
    .await
    .context("copy")?;
    pb.finish_and_clear();
    println!(
        "committed {} records in {} transactions ({} aborted on purpose, {} after errors)",
        stats.committed_records,
        stats.transactions_committed,
        stats.transactions_aborted,
        stats.aborted_on_error
    );
    Ok(())
}

pub(crate) async fn verify(props: &Props, a: VerifyArgs) -> Result<(), Failure> {
    match a.count {
        Some(count) => verify_numbered(props, &a, count).await,
        None => verify_any(props, &a).await,
    }
}

async fn verify_numbered(props: &Props, a: &VerifyArgs, count: u64) -> Result<(), Failure> {
    let bootstrap = props
        .get("bootstrap.servers")
        .unwrap_or_default()
        .to_owned();
    let partitions = match a.partitions {
        Some(p) => p,
        None => {
            let admin = super::admin(props).await?;
            let n = admin
                .partitions(&a.topic)
                .await
                .context("partitions")?
                .len();
            i32::try_from(n).unwrap_or(i32::MAX)
        }
    };
    let pb = bar(count, "verify");
    let v = numbered::verify_numbered(
        &bootstrap,
        &a.topic,
        partitions,
        count,
        Duration::from_secs(a.idle_secs),
        |n| pb.set_position(n),
    )
    .await
    .context("verify")?;
    pb.finish_and_clear();
    if a.json {
        println!(
            "{}",
            serde_json::json!({
                "topic": a.topic, "read": v.read, "distinct": v.distinct,
                "duplicates": v.duplicates, "missing": v.missing, "foreign": v.foreign,
                "order_violations": v.order_violations,
                "unlabeled": v.oracle.unlabeled, "aborted_visible": v.oracle.aborted_visible,
                "torn": v.oracle.torn, "duplicate_sources": v.oracle.duplicate_sources,
                "input_order_violations": v.oracle.input_order_violations,
                "exactly_once": v.is_exactly_once(),
            })
        );
    } else {
        println!("{v:?}");
    }
    if !v.is_exactly_once() {
        return Err(Failure::Check(format!(
            "{} is not exactly once: {v:?}",
            a.topic
        )));
    }
    if !a.json {
        println!("{}: {count} records, each exactly once, in order", a.topic);
    }
    Ok(())
}

/// What a read of any topic found. `observe` in [`read_all`] feeds the
/// intent-header oracle ([`crate::oracle`]: aborted-visible, torn, input
/// order).
#[derive(Debug, Default)]
struct AnyVerdict {
    read: u64,
    per_partition: BTreeMap<i32, u64>,
    duplicates: u64,
    order_violations: u64,
}

/// Reads every partition of `topic` read_committed from the beginning up to
/// the last stable offsets taken at the start, calling `observe` per record.
async fn read_all(
    props: &Props,
    topic: &str,
    idle: Duration,
    mut observe: impl FnMut(&ConsumerRecord),
) -> anyhow::Result<AnyVerdict> {
    let admin = super::admin(props).await?;
    let parts = admin.partitions(topic).await?;
    let tps: Vec<TopicPartition> = parts
        .iter()
        .map(|&p| TopicPartition::new(topic, p))
        .collect();
    let ends = end_offsets(&admin, &tps, true).await?;
    let total: i64 = ends.values().sum();
    let mut consumer = open_consumer(props, None).await?;
    consumer.assign(&tps)?;
    consumer.seek_to_beginning(&tps)?;
    let pb = bar(u64::try_from(total).unwrap_or(0), "verify");
    let mut v = AnyVerdict::default();
    let mut seen: HashSet<u64> = HashSet::new();
    let mut last: BTreeMap<i32, i64> = BTreeMap::new();
    let mut quiet_since = std::time::Instant::now();
    loop {
        let done = tps
            .iter()
            .all(|tp| consumer.position(tp).unwrap_or(0) >= ends.get(tp).copied().unwrap_or(0));
        if done || quiet_since.elapsed() > idle {
            break;
        }
        let crate::consumer::Polled::Records(records) =
            consumer.poll(Duration::from_millis(200)).await?
        else {
            continue;
        };
        if !records.is_empty() {
            quiet_since = std::time::Instant::now();
        }
        for r in records.iter() {
            v.read += 1;
            *v.per_partition.entry(r.partition()).or_default() += 1;
            if last
                .insert(r.partition(), r.offset())
                .is_some_and(|o| o >= r.offset())
            {
                v.order_violations += 1;
            }
            let mut h = std::collections::hash_map::DefaultHasher::new();
            r.key().map(|k| k.as_ref()).hash(&mut h);
            r.value().map(|k| k.as_ref()).hash(&mut h);
            for hd in r.headers() {
                hd.key().hash(&mut h);
                hd.value().map(|k| k.as_ref()).hash(&mut h);
            }
            if !seen.insert(h.finish()) {
                v.duplicates += 1;
            }
            observe(r);
        }
        pb.set_position(v.read);
    }
    pb.finish_and_clear();
    let _ = consumer.close().await;
    Ok(v)
}

async fn verify_any(props: &Props, a: &VerifyArgs) -> Result<(), Failure> {
    let mut oracle = crate::oracle::Oracle::new();
    let v = read_all(props, &a.topic, Duration::from_secs(a.idle_secs), |r| {
        oracle.observe_headers(
            r.partition(),
            r.headers()
                .iter()
                .map(|h| (h.key(), h.value().map(|b| &b[..]))),
        )
    })
    .await
    .context("verify")?;
    let o = oracle.finish(None);
    if a.json {
        println!(
            "{}",
            serde_json::json!({
                "topic": a.topic, "read": v.read, "per_partition": v.per_partition,
                "duplicates": v.duplicates, "order_violations": v.order_violations,
                "unlabeled": o.unlabeled, "aborted_visible": o.aborted_visible, "torn": o.torn,
                "duplicate_sources": o.duplicate_sources,
                "input_order_violations": o.input_order_violations,
            })
        );
    } else {
        println!(
            "{}: {} records {:?}, {} duplicates (same key, value and headers), {} order violations",
            a.topic, v.read, v.per_partition, v.duplicates, v.order_violations
        );
        println!("{}: intent headers: {o:?}", a.topic);
    }
    if v.duplicates > 0 || v.order_violations > 0 || !o.is_clean() {
        return Err(Failure::Check(format!(
            "{}: {} duplicates, {} order violations, intent headers {o:?}",
            a.topic, v.duplicates, v.order_violations
        )));
    }
    Ok(())
}
