//! `cargo xtask bench txn`: small transactions against the Java client
//! (issue 15), paired and alternating on one broker per transaction version.
//!
//! For each `transaction.version` (2, then 1) a one-node broker is started
//! (Kafka 4.3.1, the harness's jars) with a one-partition topic; for each K
//! (records per transaction) the two programs run in turn, `--pairs` times,
//! the order rotating every round (A B C, B C A, ...):
//! - ours: `benches/examples/txn_loop.rs` (built `--release`);
//! - Java: `benches/java/TxnLoop.java` compiled with `javac` against the
//!   harness's kafka-clients, run with the JVM's defaults;
//! - rust-rdkafka: `rdk txn` (`benches/peers`, a project of its own).
//!
//! Each broker first gets one discarded run of each program (a fresh
//! broker is slow for its first seconds). Both run the same loop (begin, K sends of 100 B, commit, then check every
//! delivery) for `--seconds` after a one-second warm-up, each with its own
//! transactional id, and print transactions/s and commit p50/p99. The table
//! gives the medians, and the median of the per-pair ratios (ours / Java).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use exactly_protocol_tests::{jars, process, Broker, BrokerConfig, TransactionVersion};

use crate::{cargo, root, run};

/// Options of `cargo xtask bench txn`.
pub(crate) struct TxnBenchOptions {
    pub(crate) tvs: Vec<TransactionVersion>,
    pub(crate) ks: Vec<usize>,
    pub(crate) pairs: usize,
    pub(crate) seconds: f64,
}

const TOPIC: &str = "txn-bench";

/// One program run's figures.
#[derive(Debug, Clone, Copy)]
struct Figures {
    tps: f64,
    p50: f64,
    p99: f64,
}

fn parse_line(line: &str) -> Option<Figures> {
    let field = |name: &str| -> Option<f64> {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(name)?.strip_prefix('='))
            .and_then(|v| v.parse().ok())
    };
    Some(Figures {
        tps: field("tps")?,
        p50: field("commit_p50_ms")?,
        p99: field("commit_p99_ms")?,
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// Runs one program to its end (a deadline kills it) and parses its line.
fn run_one(what: &str, mut cmd: Command, timeout: Duration) -> Result<Figures> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = process::spawn_tied(cmd, what)?;
    let deadline = std::time::Instant::now() + timeout;
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break s;
        }
        if std::time::Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("{what} did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut out = String::new();
    let mut err = String::new();
    if let Some(mut o) = child.stdout.take() {
        o.read_to_string(&mut out)?;
    }
    if let Some(mut e) = child.stderr.take() {
        e.read_to_string(&mut err)?;
    }
    if !status.success() {
        bail!("{what} failed ({status}):\n{out}\n{err}");
    }
    out.lines()
        .find_map(parse_line)
        .with_context(|| format!("{what} printed no result line:\n{out}\n{err}"))
}

/// Builds both programs; returns (ours, the Java class folder, the jars).
fn build() -> Result<(PathBuf, PathBuf, PathBuf)> {
    run(
        "build txn_loop",
        cargo().args([
            "build",
            "--release",
            "--quiet",
            "-p",
            "exactly-benches",
            "--example",
            "txn_loop",
        ]),
    )?;
    let ours = root().join("target/release/examples/txn_loop");
    let libs = jars::ensure_jars()?;
    let classes = root().join("target/java-bench");
    std::fs::create_dir_all(&classes)?;
    run(
        "javac TxnLoop",
        Command::new("javac")
            .arg("-cp")
            .arg(jars::classpath(&libs))
            .arg("-d")
            .arg(&classes)
            .arg(root().join("benches/java/TxnLoop.java")),
    )?;
    Ok((ours, classes, libs))
}

/// The Java program's command, without its arguments.
fn java_cmd(libs: &Path, classes: &Path) -> Command {
    let mut c = Command::new("java");
    c.arg(process::run_tag_property())
        .arg("-cp")
        .arg(format!("{}:{}", jars::classpath(libs), classes.display()))
        .arg("TxnLoop");
    c
}

/// Builds rust-rdkafka's `rdk` (benches/peers, its own project).
fn build_rdk() -> Result<PathBuf> {
    let peers = root().join("benches/peers");
    run(
        "build the rust-rdkafka peer (benches/peers)",
        cargo()
            .arg("build")
            .arg("--release")
            .arg("--quiet")
            .arg("--manifest-path")
            .arg(peers.join("Cargo.toml"))
            .arg("--target-dir")
            .arg(peers.join("target")),
    )?;
    Ok(peers.join("target/release/rdk"))
}

/// `cargo xtask bench txn`.
pub(crate) fn txn(opts: &TxnBenchOptions) -> Result<()> {
    let (ours, classes, libs) = build()?;
    let rdk = build_rdk()?;
    let secs = format!("{}", opts.seconds);
    let timeout = Duration::from_secs_f64(opts.seconds + 60.0);
    let names = ["txn_loop", "TxnLoop.java", "rdk txn"];
    let command = |i: usize| -> Command {
        match i {
            0 => Command::new(&ours),
            1 => java_cmd(&libs, &classes),
            _ => {
                let mut c = Command::new(&rdk);
                c.arg("txn");
                c
            }
        }
    };
    let mut rows = Vec::new();
    for &tv in &opts.tvs {
        let broker = Broker::start(BrokerConfig::with_transaction_version(tv))?;
        broker.create_topic(TOPIC, 1)?;
        let bootstrap = broker.bootstrap();
        // A fresh broker is slow for its first seconds (JIT, first segments):
        // one discarded run of each program first.
        for (i, program) in names.iter().enumerate() {
            let mut c = command(i);
            c.args(["--bootstrap", bootstrap.as_str(), "--topic", TOPIC])
                .args(["--k", "10", "--seconds", secs.as_str()]);
            run_one(program, c, timeout)?;
        }
        for &k in &opts.ks {
            let k_arg = k.to_string();
            let common = [
                "--bootstrap",
                bootstrap.as_str(),
                "--topic",
                TOPIC,
                "--k",
                k_arg.as_str(),
                "--seconds",
                secs.as_str(),
            ];
            let mut got: [Vec<Figures>; 3] = Default::default();
            for pair in 0..opts.pairs {
                // Round `pair` starts at program `pair` mod 3.
                for j in 0..3 {
                    let i = (pair + j) % 3;
                    let mut c = command(i);
                    c.args(common);
                    let f = run_one(names[i], c, timeout)?;
                    eprintln!(
                        "{tv:?} K={k} round {pair}: {} {:.1}/s p50 {:.2} ms",
                        names[i], f.tps, f.p50
                    );
                    got[i].push(f);
                }
            }
            let med = |v: &[Figures], f: fn(&Figures) -> f64| median(v.iter().map(f).collect());
            let ratio = |b: &[Figures], f: fn(&Figures) -> f64| {
                median(got[0].iter().zip(b).map(|(x, y)| f(x) / f(y)).collect())
            };
            let cell = |v: &[Figures]| {
                format!(
                    "{:.0} ({:.2} / {:.2})",
                    med(v, |f| f.tps),
                    med(v, |f| f.p50),
                    med(v, |f| f.p99)
                )
            };
            rows.push(format!(
                "| {} | {k} | {} | {} | {} | {:.2}x | {:.2}x | {:.2}x | {:.2}x |",
                match tv {
                    TransactionVersion::V1 => 1,
                    _ => 2,
                },
                cell(&got[0]),
                cell(&got[1]),
                cell(&got[2]),
                ratio(&got[1], |f| f.tps),
                ratio(&got[1], |f| f.p50),
                ratio(&got[2], |f| f.tps),
                ratio(&got[2], |f| f.p50),
            ));
        }
        drop(broker);
    }
    println!(
        "\n| transaction.version | K | exactly transactions/s (commit p50 / p99 ms) | Java | rust-rdkafka | transactions/s exactly/Java | commit p50 exactly/Java | transactions/s exactly/rdkafka | commit p50 exactly/rdkafka |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for r in rows {
        println!("{r}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_programs_lines() {
        let f = parse_line(
            "client=java k=1 txns=537 secs=5.019 tps=107.0 commit_p50_ms=3.19 commit_p99_ms=28.29",
        );
        let f = f.map(|f| (f.tps, f.p50, f.p99));
        assert_eq!(f, Some((107.0, 3.19, 28.29)));
        assert!(parse_line("SLF4J: no binding").is_none());
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
    }
}
