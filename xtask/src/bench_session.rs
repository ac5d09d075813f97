//! `cargo xtask bench-session`: the processing session's throughput beside
//! Apache Kafka's own `TransactionalMessageCopier` (issue 11), on one local
//! broker started for it.
//!
//! The input: `--records` records of 100 B values (the value is the record's
//! number, zero-padded to 100 digits; null keys) in a 3-partition topic.
//! Each run copies all of it exactly once to a fresh 3-partition output
//! topic with a fresh group and `transactional.id`, in transactions of
//! about 1,000 records, and is timed as a whole process, start-up included:
//!
//! - ours: the `exactly copy` command (`exactly::copy`, a thin user of the
//!   session), `--records-per-transaction 1000 --count <records>`,
//!   `linger.ms=5`, release build;
//! - Java: `TransactionalMessageCopier --group-mode --use-group-metadata
//!   --transaction-size 1000` (its polls of up to 1,000 records are its
//!   transactions; its producer has `batch.size=512` built in, and Kafka
//!   4's default `linger.ms=5`), with the JVM options `kafka-run-class.sh`
//!   gives tools (`-Xmx256M`, G1).
//!
//! Runs are paired and alternate (ours then Java, then Java then ours, ...);
//! the ratio of each pair (Java's seconds over ours) is taken, and the
//! median of the ratios reported. After every run the group's committed
//! offsets must cover the whole input, and the first pair's outputs are read
//! back `read_committed` and judged (each value exactly once).

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use exactly::{check, Consumer, Producer, ProducerRecord, TopicPartition};
use exactly_protocol_tests::{
    jars, process, unique_topic, Broker, BrokerConfig, TransactionVersion,
};

const PARTITIONS: i32 = 3;
const PER_TRANSACTION: u32 = 1_000;

/// Options of one benchmark.
#[derive(Debug, Clone)]
pub(crate) struct BenchOptions {
    pub(crate) records: u64,
    pub(crate) pairs: usize,
    /// Extra `-X key=value` properties for our side (e.g. `batch.size=512`,
    /// the Java copier's own batch size).
    pub(crate) ours_properties: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Ours,
    Java,
    /// franz-go's `GroupTransactSession` (`benches/go`, `franz copy`).
    Go,
}

fn build_cli() -> Result<PathBuf> {
    let status = crate::cargo()
        .args(["build", "--release", "-p", "exactly", "--bin", "exactly"])
        .status()
        .context("cargo build exactly")?;
    if !status.success() {
        bail!("building the exactly command failed");
    }
    let exe = crate::root().join("target/release/exactly");
    if !exe.exists() {
        bail!("{} missing after the build", exe.display());
    }
    Ok(exe)
}

/// Writes `n` records of 100-digit zero-padded numbers to `topic`.
async fn produce_input(bootstrap: &str, topic: &str, n: u64) -> Result<()> {
    let p = Producer::from_properties([
        ("bootstrap.servers", bootstrap),
        ("acks", "all"),
        ("linger.ms", "5"),
        ("batch.size", "65536"),
    ])
    .await?;
    let mut pending = Vec::with_capacity(4096);
    for i in 0..n {
        let v = format!("{i:0100}");
        pending.push(
            p.send(ProducerRecord::new(topic).with_value(v.as_bytes()))
                .await?,
        );
        if pending.len() == 4096 {
            for d in pending.drain(..) {
                d.await?;
            }
        }
    }
    for d in pending {
        d.await?;
    }
    p.close(Duration::from_secs(30)).await?;
    Ok(())
}

/// Sum of the group's committed offsets over the input's partitions.
async fn committed(bootstrap: &str, group: &str, input: &str) -> Result<i64> {
    let mut c = Consumer::from_properties([
        ("bootstrap.servers", bootstrap),
        ("group.id", group),
        ("isolation.level", "read_committed"),
    ])
    .await?;
    let tps: Vec<TopicPartition> = (0..PARTITIONS)
        .map(|p| TopicPartition::new(input, p))
        .collect();
    let offsets = c.committed(&tps).await?;
    let _ = c.close().await;
    Ok(offsets
        .values()
        .map(|o| o.as_ref().map_or(0, |o| o.offset))
        .sum())
}

struct Bench<'a> {
    broker: &'a Broker,
    cli: PathBuf,
    input: String,
    records: u64,
    log_dir: PathBuf,
    ours_properties: Vec<String>,
    /// The franz-go program (`cargo xtask bench copy` only).
    franz: Option<PathBuf>,
}

impl Bench<'_> {
    /// One timed copy of the whole input; returns (seconds, output topic).
    fn run(&self, side: Side, rt: &tokio::runtime::Runtime) -> Result<(f64, String)> {
        self.run_cpu(side, rt).map(|(secs, _, out)| (secs, out))
    }

    /// One timed copy; returns (seconds, process CPU seconds, output topic).
    fn run_cpu(&self, side: Side, rt: &tokio::runtime::Runtime) -> Result<(f64, f64, String)> {
        let tag = match side {
            Side::Ours => "ours",
            Side::Java => "java",
            Side::Go => "franz-go",
        };
        let output = unique_topic(&format!("bench-{tag}-out"));
        let group = unique_topic(&format!("bench-{tag}-group"));
        let txn = unique_topic(&format!("bench-{tag}-txn"));
        self.broker
            .create_topic(&output, PARTITIONS)
            .context("output topic")?;
        let bootstrap = self.broker.bootstrap();
        let mut cmd = match side {
            Side::Ours => {
                let mut c = Command::new(&self.cli);
                c.args(["-b", &bootstrap, "copy", "--input", &self.input])
                    .args(["--output", &output, "--group", &group])
                    .args(["--transactional-id", &txn])
                    .args(["--records-per-transaction", &PER_TRANSACTION.to_string()])
                    .args(["--count", &self.records.to_string(), "--idle-secs", "60"])
                    .args(["-X", "linger.ms=5"]);
                for p in &self.ours_properties {
                    c.args(["-X", p]);
                }
                c
            }
            Side::Java => {
                let args: Vec<String> = [
                    "--broker-list",
                    &bootstrap,
                    "--input-topic",
                    &self.input,
                    "--input-partition",
                    "0",
                    "--output-topic",
                    &output,
                    "--transactional-id",
                    &txn,
                    "--consumer-group",
                    &group,
                    "--transaction-size",
                    &PER_TRANSACTION.to_string(),
                    "--group-mode",
                    "--use-group-metadata",
                ]
                .iter()
                .map(|s| (*s).to_owned())
                .collect();
                self.broker.java().tool_command(
                    "org.apache.kafka.tools.TransactionalMessageCopier",
                    &args,
                    &[
                        "-Xmx256M",
                        "-server",
                        "-XX:+UseG1GC",
                        "-XX:MaxGCPauseMillis=20",
                        "-XX:InitiatingHeapOccupancyPercent=35",
                        "-XX:+ExplicitGCInvokesConcurrent",
                        "-Djava.awt.headless=true",
                    ],
                )?
            }
            Side::Go => {
                let mut c = Command::new(self.franz.as_ref().context("no franz-go program")?);
                c.args(["copy", "--bootstrap", &bootstrap, "--input", &self.input])
                    .args(["--output", &output, "--group", &group, "--txn-id", &txn])
                    .args(["--records", &self.records.to_string()])
                    .args(["--txn-size", &PER_TRANSACTION.to_string()]);
                c
            }
        };
        let log = self.log_dir.join(format!("{output}.log"));
        let file = std::fs::File::create(&log).context("run log")?;
        cmd.stdin(Stdio::null())
            .stdout(file.try_clone().context("run log")?)
            .stderr(file);
        let cpu0 = crate::bench_peers::children_cpu();
        let started = Instant::now();
        let mut child = process::spawn_tied(cmd, tag)?;
        let status = child.wait().context("waiting for the copy")?;
        let secs = started.elapsed().as_secs_f64();
        let cpu = crate::bench_peers::children_cpu() - cpu0;
        if !status.success() {
            bail!("{tag} copy failed ({status}); see {}", log.display());
        }
        let done = rt.block_on(committed(&bootstrap, &group, &self.input))?;
        if done != self.records as i64 {
            bail!(
                "{tag}: the group committed {done} of {} records; see {}",
                self.records,
                log.display()
            );
        }
        Ok((secs, cpu, output))
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

pub(crate) fn run(tv: TransactionVersion, opts: &BenchOptions) -> Result<()> {
    let cli = build_cli()?;
    jars::ensure_jars()?;
    let broker = Broker::start(BrokerConfig::with_transaction_version(tv)).context("broker")?;
    let rt = tokio::runtime::Runtime::new()?;
    let input = unique_topic("bench-in");
    broker.create_topic(&input, PARTITIONS).context("input")?;
    let t = Instant::now();
    rt.block_on(produce_input(&broker.bootstrap(), &input, opts.records))?;
    eprintln!(
        "==> {tv:?}: {} input records of 100 B written in {:.1} s",
        opts.records,
        t.elapsed().as_secs_f64()
    );
    let log_dir = crate::root().join("target").join("bench-session");
    std::fs::create_dir_all(&log_dir)?;
    let bench = Bench {
        broker: &broker,
        cli,
        input,
        records: opts.records,
        log_dir,
        ours_properties: opts.ours_properties.clone(),
        franz: None,
    };
    let mut pairs = Vec::new();
    for i in 0..opts.pairs {
        let order = if i.is_multiple_of(2) {
            [Side::Ours, Side::Java]
        } else {
            [Side::Java, Side::Ours]
        };
        let mut ours = (0.0, String::new());
        let mut java = (0.0, String::new());
        for side in order {
            let r = bench.run(side, &rt)?;
            eprintln!(
                "    pair {i} {side:?}: {:.2} s ({:.0} records/s)",
                r.0,
                opts.records as f64 / r.0
            );
            match side {
                Side::Ours => ours = r,
                Side::Java => java = r,
                Side::Go => {}
            }
        }
        if i == 0 {
            for (side, out) in [("ours", &ours.1), ("Java", &java.1)] {
                let v = rt.block_on(check::verify_numbered(
                    &broker.bootstrap(),
                    out,
                    PARTITIONS,
                    opts.records,
                    Duration::from_secs(30),
                    |_| {},
                ))?;
                if !v.is_exactly_once() {
                    bail!("{side}'s copy is not exactly once: {v:?}");
                }
            }
            eprintln!("    pair 0: both outputs hold every input value exactly once");
        }
        pairs.push((ours.0, java.0));
    }
    let rate = |s: f64| opts.records as f64 / s;
    let mut ratios: Vec<f64> = pairs.iter().map(|(o, j)| j / o).collect();
    let mut ours: Vec<f64> = pairs.iter().map(|p| rate(p.0)).collect();
    let mut java: Vec<f64> = pairs.iter().map(|p| rate(p.1)).collect();
    println!("| pair | ours s | Java s | ours/Java records/s |");
    println!("|---|---|---|---|");
    for (i, (o, j)) in pairs.iter().enumerate() {
        println!("| {i} | {o:.2} | {j:.2} | {:.2} |", j / o);
    }
    println!(
        "{tv:?}: {} records x 100 B, ours with {:?}, {} pairs: ours median {:.0} records/s, Java median {:.0} \
         records/s, median ratio {:.2} (min {:.2}, max {:.2})",
        opts.records,
        opts.ours_properties,
        pairs.len(),
        median(&mut ours),
        median(&mut java),
        median(&mut ratios),
        ratios.first().copied().unwrap_or(0.0),
        ratios.last().copied().unwrap_or(0.0),
    );
    Ok(())
}

/// `cargo xtask bench copy`: ours (`exactly copy`), Java's
/// `TransactionalMessageCopier` and franz-go's `GroupTransactSession`
/// (`benches/go`) copy the same 3-partition input of `records` x 100 B in
/// transactions of 1,000 records, paired and alternating, on one broker
/// (tv2); the rate is records over the whole process's time, start-up
/// included. Every run's committed offsets must cover the input, and the
/// first round's outputs are judged exactly once.
pub(crate) fn copy_suite(
    p: &crate::bench_peers::Programs,
    table: &mut crate::bench_peers::Table,
    records: u64,
    rounds: usize,
) -> Result<()> {
    use crate::bench_peers::{Contender, Reading};
    let broker = Broker::start(BrokerConfig::with_transaction_version(
        TransactionVersion::V2,
    ))
    .context("broker")?;
    let rt = tokio::runtime::Runtime::new()?;
    let input = unique_topic("bench-in");
    broker.create_topic(&input, PARTITIONS).context("input")?;
    rt.block_on(produce_input(&broker.bootstrap(), &input, records))?;
    let log_dir = crate::root().join("target").join("bench-session");
    std::fs::create_dir_all(&log_dir)?;
    let bench = Bench {
        broker: &broker,
        cli: p.cli.clone(),
        input,
        records,
        log_dir,
        ours_properties: Vec::new(),
        franz: Some(p.franz.clone()),
    };
    let checked = std::cell::Cell::new(0u32);
    let run = |side: Side| -> Result<Reading> {
        let (secs, cpu, output) = bench.run_cpu(side, &rt)?;
        // The first run of each side: its output is judged exactly once.
        let bit = 1u32 << (side as u32);
        if checked.get() & bit == 0 {
            let v = rt.block_on(check::verify_numbered(
                &broker.bootstrap(),
                &output,
                PARTITIONS,
                records,
                Duration::from_secs(60),
                |_| {},
            ))?;
            if !v.is_exactly_once() {
                bail!("{side:?}'s copy is not exactly once: {v:?}");
            }
            checked.set(checked.get() | bit);
        }
        Ok(Reading {
            rate: records as f64 / secs,
            cpu,
        })
    };
    let mut contenders = vec![
        Contender::new("exactly", || run(Side::Ours)),
        Contender::new("Java", || run(Side::Java)),
        Contender::new("franz-go", || run(Side::Go)),
    ];
    let case =
        format!("{records} x 100 B, 3 partitions, {PER_TRANSACTION} records per transaction, tv2");
    table.case("copy", &case, rounds, &mut contenders)
}
