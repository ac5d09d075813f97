//! `cargo xtask bench txn`: small transactions against the Java client
//! (issue 15), paired and alternating on one broker per transaction version.
//!
//! For each `transaction.version` (2, then 1) a one-node broker is started
//! (Kafka 4.3.1, the harness's jars) with a one-partition topic; for each K
//! (records per transaction) the two programs run in turn, `--pairs` times,
//! the order flipped every pair (A B, B A, ...):
//! - ours: `benches/examples/txn_loop.rs` (built `--release`);
//! - Java: `benches/java/TxnLoop.java` compiled with `javac` against the
//!   harness's kafka-clients, run with the JVM's defaults.
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

/// `cargo xtask bench txn`.
pub(crate) fn txn(opts: &TxnBenchOptions) -> Result<()> {
    let (ours, classes, libs) = build()?;
    let secs = format!("{}", opts.seconds);
    let timeout = Duration::from_secs_f64(opts.seconds + 60.0);
    let mut rows = Vec::new();
    for &tv in &opts.tvs {
        let broker = Broker::start(BrokerConfig::with_transaction_version(tv))?;
        broker.create_topic(TOPIC, 1)?;
        let bootstrap = broker.bootstrap();
        // A fresh broker is slow for its first seconds (JIT, first segments):
        // one discarded run of each program first.
        for program in ["txn_loop", "TxnLoop.java"] {
            let mut c = if program == "txn_loop" {
                Command::new(&ours)
            } else {
                java_cmd(&libs, &classes)
            };
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
            let mut a = Vec::new();
            let mut b = Vec::new();
            for pair in 0..opts.pairs {
                let run_ours = || -> Result<Figures> {
                    let mut c = Command::new(&ours);
                    c.args(common);
                    run_one("txn_loop", c, timeout)
                };
                let run_java = || -> Result<Figures> {
                    let mut c = java_cmd(&libs, &classes);
                    c.args(common);
                    run_one("TxnLoop.java", c, timeout)
                };
                let (x, y) = if pair % 2 == 0 {
                    let x = run_ours()?;
                    (x, run_java()?)
                } else {
                    let y = run_java()?;
                    (run_ours()?, y)
                };
                eprintln!(
                    "{tv:?} K={k} pair {pair}: exactly {:.1}/s p50 {:.2} ms, java {:.1}/s p50 {:.2} ms",
                    x.tps, x.p50, y.tps, y.p50
                );
                a.push(x);
                b.push(y);
            }
            let ratio_tps = median(a.iter().zip(&b).map(|(x, y)| x.tps / y.tps).collect());
            let ratio_p50 = median(a.iter().zip(&b).map(|(x, y)| x.p50 / y.p50).collect());
            let med = |v: &[Figures], f: fn(&Figures) -> f64| median(v.iter().map(f).collect());
            rows.push(format!(
                "| {} | {k} | {:.0} ({:.2} / {:.2}) | {:.0} ({:.2} / {:.2}) | {:.2}x | {:.2}x |",
                match tv {
                    TransactionVersion::V1 => 1,
                    _ => 2,
                },
                med(&a, |f| f.tps),
                med(&a, |f| f.p50),
                med(&a, |f| f.p99),
                med(&b, |f| f.tps),
                med(&b, |f| f.p50),
                med(&b, |f| f.p99),
                ratio_tps,
                ratio_p50,
            ));
        }
        drop(broker);
    }
    println!(
        "\n| transaction.version | K | exactly transactions/s (commit p50 / p99 ms) | Java transactions/s (commit p50 / p99 ms) | transactions/s exactly/Java | commit p50 exactly/Java |"
    );
    println!("|---|---|---|---|---|---|");
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
