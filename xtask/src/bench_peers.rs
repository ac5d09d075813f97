//! The framework of `cargo xtask bench producer|consumer|copy|cpu|all`
//! (issue 15): builds our programs and the peers', runs each case's
//! contenders in turn, paired and alternating (round r starts at contender
//! r mod n), and gives one ratio table: for each peer, the median of the
//! per-round ratios ours/peer of records/s and of process CPU.
//!
//! The peers live outside the workspace (no C enters the library's tree):
//! - rust-rdkafka: `benches/peers` (its own Cargo project and lock, its own
//!   target folder), binary `rdk`;
//! - franz-go: `benches/go` (its own Go module), binary `franz`;
//! - the Java client: the harness's jars (`ProducerPerformance`,
//!   `ConsumerPerformance`, `TransactionalMessageCopier`, and
//!   `benches/java/TxnLoop.java` compiled against them).
//!
//! A run's CPU is the process's user + system time as the kernel accounts
//! it for a reaped child (`RUSAGE_CHILDREN` before and after), JVM start-up
//! and JIT included for Java.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use exactly_protocol_tests::{jars, process};

use crate::{cargo, root, run};

/// Every program the suites run.
pub(crate) struct Programs {
    /// `benches/examples/e2e.rs`.
    pub(crate) e2e: PathBuf,
    /// `benches/examples/producer_cpu.rs`.
    pub(crate) producer_cpu: PathBuf,
    /// `benches/examples/null_broker.rs`.
    pub(crate) null_broker: PathBuf,
    /// The `exactly` command (`exactly copy`).
    pub(crate) cli: PathBuf,
    /// rust-rdkafka's programs (`benches/peers`).
    pub(crate) rdk: PathBuf,
    /// franz-go's programs (`benches/go`).
    pub(crate) franz: PathBuf,
}

/// Builds ours (release; the `exactly` command only `with_cli`, for the
/// copy suite) and the peers.
pub(crate) fn build(with_cli: bool) -> Result<Programs> {
    run(
        "build our bench programs",
        cargo().args([
            "build",
            "--release",
            "-p",
            "exactly-benches",
            "--example",
            "e2e",
            "--example",
            "producer_cpu",
            "--example",
            "null_broker",
        ]),
    )?;
    if with_cli {
        run(
            "build the exactly command",
            cargo().args(["build", "--release", "-p", "exactly", "--bin", "exactly"]),
        )?;
    }
    let peers = root().join("benches/peers");
    run(
        "build the rust-rdkafka peer (benches/peers, builds librdkafka)",
        cargo()
            .arg("build")
            .arg("--release")
            .arg("--manifest-path")
            .arg(peers.join("Cargo.toml"))
            .arg("--target-dir")
            .arg(peers.join("target")),
    )?;
    let franz = root().join("target/peers-go/franz");
    run(
        "build the franz-go peer (benches/go)",
        Command::new("go")
            .arg("-C")
            .arg(root().join("benches/go"))
            .args(["build", "-o"])
            .arg(&franz)
            .arg("."),
    )?;
    jars::ensure_jars()?;
    let release = root().join("target/release");
    Ok(Programs {
        e2e: release.join("examples/e2e"),
        producer_cpu: release.join("examples/producer_cpu"),
        null_broker: release.join("examples/null_broker"),
        cli: release.join("exactly"),
        rdk: peers.join("target/release/rdk"),
        franz,
    })
}

/// Children's user + system CPU seconds so far (reaped children only).
pub(crate) fn children_cpu() -> f64 {
    // SAFETY: getrusage only writes into the struct given.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru);
        ru
    };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(ru.ru_utime) + t(ru.ru_stime)
}

/// One finished run: its standard output and CPU seconds.
pub(crate) struct Finished {
    pub(crate) stdout: String,
    pub(crate) cpu: f64,
}

/// Runs `cmd` to its end (killed at `timeout`), measuring its CPU.
pub(crate) fn run_measured(what: &str, mut cmd: Command, timeout: Duration) -> Result<Finished> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let cpu0 = children_cpu();
    let started = Instant::now();
    let mut child = process::spawn_tied(cmd, what)?;
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_string(&mut s);
            }
            s
        })
    };
    let out = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let err = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let deadline = started + timeout;
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break s;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("{what} did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let cpu = children_cpu() - cpu0;
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    if !status.success() {
        let tail: String = stderr.lines().rev().take(30).collect::<Vec<_>>().join("\n");
        bail!("{what} failed ({status}):\n{stdout}\n{tail}");
    }
    Ok(Finished { stdout, cpu })
}

/// `name=value` from a result line such as `... rate=123.4 ...`.
pub(crate) fn field(text: &str, name: &str) -> Option<f64> {
    text.lines().rev().find_map(|line| {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(name)?.strip_prefix('='))
            .and_then(|v| v.parse().ok())
    })
}

/// One contender's figures in one round.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reading {
    pub(crate) rate: f64,
    pub(crate) cpu: f64,
}

/// A program in a case: a name, and a run that gives one reading.
pub(crate) struct Contender<'a> {
    pub(crate) name: String,
    pub(crate) run: Box<dyn FnMut() -> Result<Reading> + 'a>,
}

impl<'a> Contender<'a> {
    pub(crate) fn new(name: &str, run: impl FnMut() -> Result<Reading> + 'a) -> Self {
        Contender {
            name: name.to_owned(),
            run: Box::new(run),
        }
    }
}

pub(crate) fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// The rows of the ratio table so far.
#[derive(Default)]
pub(crate) struct Table {
    rows: Vec<String>,
}

impl Table {
    /// Runs a case: `rounds` rounds, contender 0 is ours; round r starts at
    /// contender r mod n. Adds one row per peer.
    pub(crate) fn case(
        &mut self,
        suite: &str,
        case: &str,
        rounds: usize,
        contenders: &mut [Contender<'_>],
    ) -> Result<()> {
        let n = contenders.len();
        let mut readings: Vec<Vec<Reading>> = vec![Vec::new(); n];
        for round in 0..rounds {
            for k in 0..n {
                let i = (round + k) % n;
                let c = &mut contenders[i];
                let r = (c.run)().with_context(|| format!("{suite} {case}: {}", c.name))?;
                eprintln!(
                    "    {suite} {case} round {round}: {:<10} {:>12.0} records/s  CPU {:.2} s",
                    c.name, r.rate, r.cpu
                );
                readings[i].push(r);
            }
        }
        let ours = &readings[0];
        for (j, c) in contenders.iter().enumerate().skip(1) {
            let peer = &readings[j];
            let ratio = |f: fn(&Reading) -> f64| {
                median(ours.iter().zip(peer).map(|(a, b)| f(a) / f(b)).collect())
            };
            let med = |v: &[Reading], f: fn(&Reading) -> f64| median(v.iter().map(f).collect());
            let row = format!(
                "| {suite} | {case} | {} | {:.0} | {:.0} | **{:.2}x** | {:.2} | {:.2} | **{:.2}x** |",
                c.name,
                med(ours, |r| r.rate),
                med(peer, |r| r.rate),
                ratio(|r| r.rate),
                med(ours, |r| r.cpu),
                med(peer, |r| r.cpu),
                ratio(|r| r.cpu),
            );
            eprintln!("{row}");
            self.rows.push(row);
        }
        Ok(())
    }

    /// Prints the table (markdown).
    pub(crate) fn print(&self, header: &str) {
        println!("\n{header}\n");
        println!(
            "| suite | case | peer | exactly records/s | peer records/s | records/s exactly/peer | exactly CPU s | peer CPU s | CPU exactly/peer |"
        );
        println!("|---|---|---|---|---|---|---|---|---|");
        for r in &self.rows {
            println!("{r}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_and_medians() {
        let out = "noise\nclient=rdkafka mode=produce records=10 secs=0.5 rate=20.0\n";
        assert_eq!(field(out, "rate"), Some(20.0));
        assert_eq!(field(out, "secs"), Some(0.5));
        assert_eq!(field(out, "cpu"), None);
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
    }
}
