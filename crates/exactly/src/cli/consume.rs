//! `consume`: records to stdout, as a format string (kcat's `-f` tokens) or
//! JSON lines.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

use crate::admin::{Admin, OffsetSpec};
use crate::consumer::{Consumer, ConsumerRecord, Polled, TopicPartition};
use anyhow::{bail, Context, Result};
use base64::Engine;

use super::{bar, Failure, Props};

pub(crate) const HELP: &str = "\
Examples:
  exactly consume orders -e                        # all committed records, then exit
  exactly consume orders -o -10 -e -J              # the last 10 per partition, JSON lines
  exactly consume orders -p 0 -o 42 -c 5 -f '%p %o %k=%s\\n'
  exactly consume -G audit orders                  # as group `audit` (commits on exit)

Format tokens: %t topic, %p partition, %o offset, %k key, %s value,
%h headers (k=v,...), %T timestamp, %K key length, %S value length, \\n \\t \\0.
JSON lines: {topic, partition, offset, timestamp, key, value, headers}; a key,
value or header value that is not UTF-8 comes as base64 with
key_encoding/value_encoding/encoding = \"base64\"; null stays null.
read_committed unless -X isolation.level=read_uncommitted.";

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Topics to read.
    #[arg(required = true)]
    topics: Vec<String>,
    /// Consume as this group (subscribe; commits on exit). Without it, every
    /// partition is assigned.
    #[arg(short = 'G', long)]
    group: Option<String>,
    /// Only this partition (without a group).
    #[arg(short = 'p', long)]
    partition: Option<i32>,
    /// Start: beginning, end, stored (the group's), N (absolute), -N (N
    /// before the end), s@TIMESTAMP_MS.
    #[arg(
        short = 'o',
        long,
        default_value = "beginning",
        allow_hyphen_values = true
    )]
    offset: String,
    /// Exit at the end of every partition (its last stable offset under
    /// read_committed, when the command started).
    #[arg(short = 'e', long)]
    exit_at_end: bool,
    /// Exit after this many records.
    #[arg(short = 'c', long)]
    count: Option<u64>,
    /// Output format string (see below).
    #[arg(short = 'f', long, default_value = "%s\\n")]
    format: String,
    /// JSON lines instead of the format string.
    #[arg(short = 'J', long)]
    json: bool,
    /// Exit after this many seconds without a record (with -e: give up).
    #[arg(long)]
    idle_secs: Option<u64>,
}

/// A consumer with `props` (read_committed unless overridden), in `group`.
pub(crate) async fn open_consumer(props: &Props, group: Option<&str>) -> Result<Consumer> {
    let mut b = Consumer::builder();
    b.set("isolation.level", "read_committed")?;
    b.set("auto.offset.reset", "earliest")?;
    for (k, v) in props.consumer() {
        b.set(&k, &v).with_context(|| format!("property {k}"))?;
    }
    if let Some(g) = group {
        b.set("group.id", g)?;
    }
    Ok(b.build().await?)
}

/// The end of each partition: its last stable offset (read_committed) or
/// high watermark.
pub(crate) async fn end_offsets(
    admin: &Admin,
    tps: &[TopicPartition],
    committed: bool,
) -> Result<BTreeMap<TopicPartition, i64>> {
    offsets_at(
        admin,
        tps,
        if committed {
            OffsetSpec::LastStable
        } else {
            OffsetSpec::Latest
        },
    )
    .await
}

async fn offsets_at(
    admin: &Admin,
    tps: &[TopicPartition],
    spec: OffsetSpec,
) -> Result<BTreeMap<TopicPartition, i64>> {
    let asked: Vec<(&str, i32)> = tps
        .iter()
        .map(|tp| (tp.topic.as_str(), tp.partition))
        .collect();
    let got = admin.list_offsets(&asked, spec).await?;
    let mut out = BTreeMap::new();
    for ((t, p), r) in got {
        let o = r.with_context(|| format!("offset of {t}-{p}"))?;
        out.insert(TopicPartition::new(&t, p), o.offset.unwrap_or(-1));
    }
    Ok(out)
}

fn unescape(f: &str) -> String {
    f.replace("\\n", "\n")
        .replace("\\t", "\t")
        .replace("\\0", "\0")
}

fn write_format(out: &mut impl Write, fmt: &[u8], r: &ConsumerRecord) -> std::io::Result<()> {
    let mut i = 0;
    while i < fmt.len() {
        if fmt[i] == b'%' && i + 1 < fmt.len() {
            match fmt[i + 1] {
                b't' => out.write_all(r.topic().as_bytes())?,
                b'p' => write!(out, "{}", r.partition())?,
                b'o' => write!(out, "{}", r.offset())?,
                b'T' => write!(out, "{}", r.timestamp())?,
                b'k' => out.write_all(r.key().map(|k| k.as_ref()).unwrap_or_default())?,
                b's' => out.write_all(r.value().map(|v| v.as_ref()).unwrap_or_default())?,
                b'K' => write!(out, "{}", r.key().map_or(-1, |k| k.len() as i64))?,
                b'S' => write!(out, "{}", r.value().map_or(-1, |v| v.len() as i64))?,
                b'h' => {
                    for (n, h) in r.headers().iter().enumerate() {
                        if n > 0 {
                            out.write_all(b",")?;
                        }
                        out.write_all(h.key())?;
                        out.write_all(b"=")?;
                        out.write_all(h.value().map(|v| v.as_ref()).unwrap_or_default())?;
                    }
                }
                b'%' => out.write_all(b"%")?,
                other => out.write_all(&[b'%', other])?,
            }
            i += 2;
        } else {
            out.write_all(&fmt[i..=i])?;
            i += 1;
        }
    }
    Ok(())
}

/// A byte string as JSON: text when UTF-8, else base64 (and says so).
fn text_or_base64(b: Option<&[u8]>) -> (serde_json::Value, Option<&'static str>) {
    match b {
        None => (serde_json::Value::Null, None),
        Some(b) => match std::str::from_utf8(b) {
            Ok(s) => (serde_json::Value::String(s.to_owned()), None),
            Err(_) => (
                serde_json::Value::String(base64::engine::general_purpose::STANDARD.encode(b)),
                Some("base64"),
            ),
        },
    }
}

pub(crate) fn record_json(r: &ConsumerRecord) -> serde_json::Value {
    let (key, key_enc) = text_or_base64(r.key().map(|k| k.as_ref()));
    let (value, value_enc) = text_or_base64(r.value().map(|v| v.as_ref()));
    let headers: Vec<serde_json::Value> = r
        .headers()
        .iter()
        .map(|h| {
            let (v, enc) = text_or_base64(h.value().map(|v| v.as_ref()));
            let mut o = serde_json::json!({"key": String::from_utf8_lossy(h.key()), "value": v});
            if let Some(e) = enc {
                o["encoding"] = e.into();
            }
            o
        })
        .collect();
    let mut o = serde_json::json!({
        "topic": r.topic(), "partition": r.partition(), "offset": r.offset(),
        "timestamp": r.timestamp(), "key": key, "value": value, "headers": headers,
    });
    if let Some(e) = key_enc {
        o["key_encoding"] = e.into();
    }
    if let Some(e) = value_enc {
        o["value_encoding"] = e.into();
    }
    o
}

pub(crate) async fn run(props: &Props, a: Args) -> Result<(), Failure> {
    consume(props, a).await.map_err(Failure::Error)
}

async fn consume(props: &Props, a: Args) -> Result<()> {
    let admin = super::admin(props).await?;
    let committed = props.get("isolation.level").unwrap_or("read_committed") != "read_uncommitted";
    let mut consumer = open_consumer(props, a.group.as_deref()).await?;
    let mut tps = Vec::new();
    for t in &a.topics {
        for p in admin
            .partitions(t)
            .await
            .with_context(|| format!("topic {t}"))?
        {
            if a.partition.is_none_or(|x| x == p) {
                tps.push(TopicPartition::new(t, p));
            }
        }
    }
    if tps.is_empty() {
        bail!("no partitions to read");
    }
    if let Some(_g) = &a.group {
        if a.partition.is_some() {
            bail!("-p cannot be combined with -G");
        }
        consumer.subscribe(&a.topics)?;
    } else {
        consumer.assign(&tps)?;
        let off = a.offset.as_str();
        match off {
            "beginning" => consumer.seek_to_beginning(&tps)?,
            "end" => consumer.seek_to_end(&tps)?,
            "stored" => bail!("-o stored needs -G"),
            _ => {
                let targets: BTreeMap<TopicPartition, i64> =
                    if let Some(ts) = off.strip_prefix("s@") {
                        let ts: i64 = ts.parse().context("-o s@TIMESTAMP_MS")?;
                        let at = offsets_at(&admin, &tps, OffsetSpec::Timestamp(ts)).await?;
                        let ends = end_offsets(&admin, &tps, false).await?;
                        at.into_iter()
                            .map(|(tp, o)| {
                                let e = ends.get(&tp).copied().unwrap_or(0);
                                (tp, if o < 0 { e } else { o })
                            })
                            .collect()
                    } else if let Some(n) = off.strip_prefix('-') {
                        let n: i64 = n.parse().context("-o -N")?;
                        let ends = end_offsets(&admin, &tps, committed).await?;
                        let starts = offsets_at(&admin, &tps, OffsetSpec::Earliest).await?;
                        ends.into_iter()
                            .map(|(tp, e)| {
                                let s = starts.get(&tp).copied().unwrap_or(0);
                                (tp, (e - n).max(s))
                            })
                            .collect()
                    } else {
                        let n: i64 = off
                            .parse()
                            .context("-o: beginning, end, stored, N, -N or s@TS")?;
                        tps.iter().map(|tp| (tp.clone(), n)).collect()
                    };
                for (tp, o) in targets {
                    consumer.seek(&tp, o)?;
                }
            }
        }
    }
    let ends = if a.exit_at_end {
        Some(end_offsets(&admin, &tps, committed).await?)
    } else {
        None
    };
    let fmt = unescape(&a.format).into_bytes();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let pb = bar(a.count.unwrap_or(0), "consume");
    let idle = a.idle_secs.map(Duration::from_secs);
    let mut n = 0u64;
    let mut quiet_since = std::time::Instant::now();
    let done = |c: &Consumer| -> bool {
        ends.as_ref().is_some_and(|ends| {
            ends.iter()
                .all(|(tp, &e)| c.position(tp).is_some_and(|p| p >= e) || e <= 0)
                && (a.group.is_none() || !c.assignment().is_empty())
        })
    };
    'outer: loop {
        if a.count.is_some_and(|c| n >= c) || done(&consumer) {
            break;
        }
        if idle.is_some_and(|i| quiet_since.elapsed() > i) {
            break;
        }
        let Polled::Records(records) = consumer.poll(Duration::from_millis(200)).await? else {
            continue;
        };
        if !records.is_empty() {
            quiet_since = std::time::Instant::now();
        }
        for r in records.iter() {
            if a.json {
                serde_json::to_writer(&mut out, &record_json(r))?;
                out.write_all(b"\n")?;
            } else {
                write_format(&mut out, &fmt, r)?;
            }
            n += 1;
            if a.count.is_some_and(|c| n >= c) {
                break 'outer;
            }
        }
        pb.set_position(n);
    }
    out.flush()?;
    drop(out);
    pb.finish_and_clear();
    if a.group.is_some() {
        consumer.commit().await.context("commit")?;
    }
    let _ = consumer.close().await;
    eprintln!("consumed {n} records");
    Ok(())
}
