//! `produce`: records from stdin or files, one per delimiter (newline or
//! NUL), optionally with a key (split at the key delimiter), headers, a
//! fixed partition, compression, and transactions (one per N records, or
//! one for the whole input). Memory stays bounded whatever the input size:
//! input is read one record at a time and at most `MAX_PENDING` deliveries
//! are awaited at once (besides the producer's own `buffer.memory`).

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::check;
use crate::producer::{DeliveryFuture, Producer, ProducerRecord};
use anyhow::{bail, Context, Result};

use super::{bar, Failure, Props};

pub(crate) const HELP: &str = "\
Examples:
  printf 'a\\nb\\n' | exactly produce -t orders
  exactly produce -t orders -K : keys-and-values.txt     # key:value lines
  find . -print0 | exactly produce -t files -0 -H source=find
  exactly produce -t orders --transactional-id loader-1 --txn-records 1000 big.txt
  exactly produce -t numbers --count 100000              # the values 0..100000

Without -K the key is null. With -K, a line without the delimiter has a null
key and `:v` an empty key. -Z turns empty keys and values into null.
With --transactional-id the whole input is one transaction (all or nothing)
unless --txn-records N commits every N records.";

/// Deliveries awaited at most at once.
const MAX_PENDING: usize = 4096;

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Topic to write.
    #[arg(short = 't', long)]
    topic: String,
    /// Input files (default: stdin).
    files: Vec<PathBuf>,
    /// Record delimiter (one byte; `\n` by default).
    #[arg(short = 'D', long, default_value = "\\n")]
    delimiter: String,
    /// NUL-delimited input (same as -D '\0').
    #[arg(short = '0', long)]
    null: bool,
    /// Key delimiter: each record is the key, this byte, then the value.
    #[arg(short = 'K', long)]
    key_delimiter: Option<String>,
    /// Empty keys and values are produced as null.
    #[arg(short = 'Z', long)]
    empty_as_null: bool,
    /// A header `key=value` on every record (repeatable).
    #[arg(short = 'H', long = "header", value_name = "KEY=VALUE")]
    headers: Vec<String>,
    /// Write to this partition (default: the partitioner's choice).
    #[arg(short = 'p', long)]
    partition: Option<i32>,
    /// compression.type: none, gzip, snappy, lz4, zstd.
    #[arg(short = 'z', long)]
    compression: Option<String>,
    /// Produce transactionally with this transactional.id.
    #[arg(long)]
    transactional_id: Option<String>,
    /// With --transactional-id: commit every N records (default: one
    /// transaction for the whole input).
    #[arg(long)]
    txn_records: Option<u64>,
    /// Instead of reading input, write the decimal values 0..COUNT.
    #[arg(long, conflicts_with = "files")]
    count: Option<u64>,
}

fn one_byte(s: &str, what: &str) -> Result<u8> {
    let s = match s {
        "\\n" => "\n",
        "\\t" => "\t",
        "\\0" => "\0",
        other => other,
    };
    match s.as_bytes() {
        [b] => Ok(*b),
        _ => bail!("{what} must be one byte, got {s:?}"),
    }
}

pub(crate) async fn run(props: &Props, a: Args) -> Result<(), Failure> {
    if let Some(count) = a.count {
        let bootstrap = props
            .get("bootstrap.servers")
            .unwrap_or_default()
            .to_owned();
        let pb = bar(count, "produce");
        let t = Instant::now();
        check::produce_numbered(&bootstrap, &a.topic, count, |n| pb.set_position(n))
            .await
            .context("produce")?;
        pb.finish_and_clear();
        eprintln!(
            "produced {count} records to {} in {:.1} s",
            a.topic,
            t.elapsed().as_secs_f64()
        );
        return Ok(());
    }
    let delim = if a.null {
        0
    } else {
        one_byte(&a.delimiter, "-D").map_err(Failure::Usage)?
    };
    let key_delim = match &a.key_delimiter {
        Some(k) => Some(one_byte(k, "-K").map_err(Failure::Usage)?),
        None => None,
    };
    let headers: Vec<(String, String)> = a
        .headers
        .iter()
        .map(|h| match h.split_once('=') {
            Some((k, v)) => Ok((k.to_owned(), v.to_owned())),
            None => Err(Failure::Usage(anyhow::anyhow!("-H {h}: not key=value"))),
        })
        .collect::<Result<_, _>>()?;
    produce(props, &a, delim, key_delim, &headers)
        .await
        .map_err(Failure::Error)
}

async fn produce(
    props: &Props,
    a: &Args,
    delim: u8,
    key_delim: Option<u8>,
    headers: &[(String, String)],
) -> Result<()> {
    let mut b = Producer::builder();
    b.set("acks", "all")?;
    b.set("enable.idempotence", "true")?;
    b.set("linger.ms", "5")?;
    for (k, v) in props.producer() {
        b.set(&k, &v).with_context(|| format!("property {k}"))?;
    }
    if let Some(c) = &a.compression {
        b.set("compression.type", c)?;
    }
    if let Some(id) = &a.transactional_id {
        b.set("transactional.id", id)?;
    }
    let producer = b.build().await?;
    let txn = a.transactional_id.is_some();
    if txn {
        producer.init_transactions().await?;
        producer.begin_transaction().await?;
    }
    let (inputs, total): (Vec<Box<dyn Read>>, u64) = if a.files.is_empty() {
        (vec![Box::new(std::io::stdin())], 0)
    } else {
        let mut v: Vec<Box<dyn Read>> = Vec::new();
        let mut total = 0;
        for f in &a.files {
            let file =
                std::fs::File::open(f).with_context(|| format!("opening {}", f.display()))?;
            total += file.metadata().map(|m| m.len()).unwrap_or(0);
            v.push(Box::new(file));
        }
        (v, total)
    };
    let pb = bar(total, "bytes");
    let started = Instant::now();
    let mut pending: VecDeque<DeliveryFuture> = VecDeque::new();
    let (mut records, mut bytes, mut in_txn, mut txns) = (0u64, 0u64, 0u64, 0u64);
    let mut buf = Vec::new();
    let result: Result<()> = async {
        for input in inputs {
            let mut r = BufReader::with_capacity(1 << 16, input);
            loop {
                buf.clear();
                let n = r.read_until(delim, &mut buf)?;
                if n == 0 {
                    break;
                }
                bytes += n as u64;
                if buf.last() == Some(&delim) {
                    buf.pop();
                }
                let (key, value): (Option<&[u8]>, &[u8]) = match key_delim {
                    Some(k) => match buf.iter().position(|&c| c == k) {
                        Some(i) => (Some(&buf[..i]), &buf[i + 1..]),
                        None => (None, &buf[..]),
                    },
                    None => (None, &buf[..]),
                };
                let mut rec = ProducerRecord::new(&a.topic);
                match key {
                    Some(k) if !(a.empty_as_null && k.is_empty()) => rec = rec.with_key(k),
                    _ => {}
                }
                if !(a.empty_as_null && value.is_empty()) {
                    rec = rec.with_value(value);
                }
                for (hk, hv) in headers {
                    rec = rec.with_header(hk, Some(hv.as_bytes()));
                }
                if let Some(p) = a.partition {
                    rec = rec.with_partition(p);
                }
                pending.push_back(producer.send(rec).await?);
                records += 1;
                in_txn += 1;
                while pending.len() > MAX_PENDING {
                    if let Some(d) = pending.pop_front() {
                        d.await?;
                    }
                }
                if txn && a.txn_records.is_some_and(|n| in_txn >= n) {
                    for d in pending.drain(..) {
                        d.await?;
                    }
                    producer.commit_transaction().await?;
                    producer.begin_transaction().await?;
                    txns += 1;
                    in_txn = 0;
                }
                if records % 1024 == 0 {
                    pb.set_position(bytes);
                }
            }
        }
        for d in pending.drain(..) {
            d.await?;
        }
        if txn {
            producer.commit_transaction().await?;
            txns += 1;
        }
        Ok(())
    }
    .await;
    pb.finish_and_clear();
    if let Err(e) = result {
        if txn {
            let _ = producer.abort_transaction().await;
            eprintln!("aborted the open transaction");
        }
        let _ = producer.close(Duration::from_secs(5)).await;
        return Err(e);
    }
    producer.close(Duration::from_secs(30)).await?;
    eprintln!(
        "produced {records} records ({bytes} bytes) to {}{} in {:.1} s",
        a.topic,
        if txn {
            format!(" in {txns} transactions")
        } else {
            String::new()
        },
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
