//! The test step of `cargo xtask test`: everything but the real-broker
//! suite through one `cargo test`, then the real-broker suite's test
//! binaries (`protocol-tests/tests/*.rs`) run `EXACTLY_TEST_JOBS` at a time
//! (default 2).
//!
//! Why not one `cargo test --workspace`: cargo runs test binaries one after
//! another, and a real-broker binary spends most of its time waiting on a
//! JVM (start-up, group rebalances, transaction timeouts), so one core
//! idles. Every harness resource is already per process (free ports, data
//! roots named by pid, JVMs tagged with the run), so two binaries at once
//! share nothing but the machine.
//!
//! Each binary's output goes to `target/xtask-tests/<name>.log`; a failing
//! binary's log tail is printed, the binaries already running finish, none
//! starts after it, and the step fails naming every failed binary.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::{cargo, root, run};

const SUITE: &str = "exactly-protocol-tests";

/// Binaries known to take longest start first, so the two lanes end
/// together (the rest follow in name order). Order from the CI run of
/// 2026-12-07 (two lanes): producer_rotation 313 s, eos_faults 288 s,
/// harness 165 s, eos_session_count 147 s, eos_session_fanout 143 s,
/// producer_txn 138 s. After the CI trim of the same evening (eos_copy's
/// T2/T3 at 40k/20k records, producer_txn on one broker per transaction
/// version, short-lived JVMs on C1, a cluster's formats at once), measured
/// on the shared machine (load 4-20, two binaries at a time): eos_copy
/// 254.8 -> 85.7 s, which takes it out of this list; producer_txn 155 ->
/// 141 s, which keeps its place. producer_rotation's full 32,767-transaction
/// rotation (~250 s of its 313) left CI then (`#[ignore]`d); its short forms
/// stay, about a minute.
const LONGEST_FIRST: &[&str] = &[
    "eos_faults",
    "harness",
    "eos_session_count",
    "eos_session_fanout",
    "producer_txn",
    "eos_session",
    "consumer_broker",
    "producer_chaos",
    "producer_rotation",
];

/// One test binary of the real-broker suite.
struct Binary {
    name: String,
    exe: PathBuf,
}

/// Runs the test step; `run_tag` tags every JVM the tests start.
pub(crate) fn run_tests(run_tag: &str) -> Result<Duration> {
    let t = Instant::now();
    run(
        "tests (unit, property, simulation, doc)",
        cargo()
            .args(["test", "--workspace", "--all-features", "--exclude", SUITE])
            .env(exactly_protocol_tests::process::RUN_TAG_ENV, run_tag),
    )?;
    run(
        "real-broker suite: doc tests",
        cargo().args(["test", "-p", SUITE, "--all-features", "--doc"]),
    )?;
    let binaries = build_suite()?;
    run_parallel(binaries, jobs(), run_tag)?;
    Ok(t.elapsed())
}

/// `cargo xtask test --suite [NAME...]`: the real-broker suite alone (the
/// binaries named, or all), jars fetched first, JVMs left behind killed
/// and reported.
pub(crate) fn run_suite(names: &[String]) -> Result<()> {
    exactly_protocol_tests::jars::ensure_jars()?;
    let run_tag = std::env::var(exactly_protocol_tests::process::RUN_TAG_ENV)
        .unwrap_or_else(|_| format!("xtask-{}", std::process::id()));
    let mut binaries = build_suite()?;
    if !names.is_empty() {
        binaries.retain(|b| names.contains(&b.name));
        if binaries.len() != names.len() {
            bail!("no such test binary among {names:?} in protocol-tests/tests");
        }
    }
    let result = run_parallel(binaries, jobs(), &run_tag);
    let strays = crate::stray_jvms(&run_tag);
    for &pid in &strays {
        exactly_protocol_tests::process::signal(pid, exactly_protocol_tests::process::Signal::Kill);
    }
    result?;
    if !strays.is_empty() {
        bail!("the suite left harness JVMs running (pids {strays:?}); they were killed now");
    }
    Ok(())
}

/// `EXACTLY_TEST_JOBS`, default 2.
fn jobs() -> usize {
    std::env::var("EXACTLY_TEST_JOBS")
        .ok()
        .and_then(|j| j.parse::<usize>().ok())
        .filter(|&j| j > 0)
        .unwrap_or(2)
}

/// Builds the suite's test binaries and lists them, longest first.
fn build_suite() -> Result<Vec<Binary>> {
    eprintln!("\n==> real-broker suite: build");
    let out = cargo()
        .args([
            "test",
            "-p",
            SUITE,
            "--all-features",
            "--no-run",
            "--message-format=json-render-diagnostics",
        ])
        .current_dir(root())
        .stderr(Stdio::inherit())
        .output()
        .context("cannot run cargo test --no-run")?;
    if !out.status.success() {
        bail!("building the real-broker suite failed ({})", out.status);
    }
    let mut binaries = Vec::new();
    for line in out.stdout.as_slice().lines() {
        let line = line.context("reading cargo's output")?;
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        let is_test = msg["reason"] == "compiler-artifact" && msg["profile"]["test"] == true;
        let (Some(exe), Some(name)) = (msg["executable"].as_str(), msg["target"]["name"].as_str())
        else {
            continue;
        };
        if is_test {
            binaries.push(Binary {
                name: name.to_owned(),
                exe: PathBuf::from(exe),
            });
        }
    }
    if binaries.is_empty() {
        bail!("cargo listed no test binaries of {SUITE}");
    }
    let rank = |n: &str| {
        LONGEST_FIRST
            .iter()
            .position(|l| *l == n)
            .unwrap_or(LONGEST_FIRST.len())
    };
    binaries.sort_by(|a, b| (rank(&a.name), &a.name).cmp(&(rank(&b.name), &b.name)));
    Ok(binaries)
}

/// Runs `binaries` `jobs` at a time; fails after the running ones end if any
/// failed.
fn run_parallel(binaries: Vec<Binary>, jobs: usize, run_tag: &str) -> Result<()> {
    let logs = root().join("target").join("xtask-tests");
    std::fs::create_dir_all(&logs).with_context(|| format!("creating {}", logs.display()))?;
    let manifest_dir = root().join("protocol-tests");
    eprintln!(
        "\n==> real-broker suite: {} binaries, {jobs} at a time (logs in {})",
        binaries.len(),
        logs.display()
    );
    let queue = Mutex::new(binaries.into_iter().collect::<VecDeque<_>>());
    let failed = Mutex::new(Vec::<String>::new());
    std::thread::scope(|s| {
        for _ in 0..jobs {
            s.spawn(|| loop {
                let next = {
                    let stop = failed.lock().map(|f| !f.is_empty()).unwrap_or(true);
                    if stop {
                        return;
                    }
                    match queue.lock() {
                        Ok(mut q) => q.pop_front(),
                        Err(_) => None,
                    }
                };
                let Some(bin) = next else { return };
                let log = logs.join(format!("{}.log", bin.name));
                match run_one(&bin, &log, &manifest_dir, run_tag) {
                    Ok(took) => eprintln!("    {:<28} ok  {:>7.1} s", bin.name, took.as_secs_f64()),
                    Err(e) => {
                        eprintln!("    {:<28} FAILED: {e:#}", bin.name);
                        print_tail(&log, 300);
                        if let Ok(mut f) = failed.lock() {
                            f.push(bin.name.clone());
                        }
                    }
                }
            });
        }
    });
    let failed = failed.into_inner().unwrap_or_default();
    if !failed.is_empty() {
        bail!("real-broker suite failed: {}", failed.join(", "));
    }
    Ok(())
}

/// Runs one test binary as `cargo test` would (working directory and
/// manifest variables of its package), output to `log`.
fn run_one(bin: &Binary, log: &Path, manifest_dir: &Path, run_tag: &str) -> Result<Duration> {
    let t = Instant::now();
    let out = File::create(log).with_context(|| format!("creating {}", log.display()))?;
    let err = out.try_clone().context("cloning the log handle")?;
    let status = Command::new(&bin.exe)
        .current_dir(manifest_dir)
        .env("CARGO_MANIFEST_DIR", manifest_dir)
        .env("CARGO_PKG_NAME", SUITE)
        .env(exactly_protocol_tests::process::RUN_TAG_ENV, run_tag)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .status()
        .with_context(|| format!("cannot run {}", bin.exe.display()))?;
    if !status.success() {
        bail!("{status} after {:.1} s", t.elapsed().as_secs_f64());
    }
    Ok(t.elapsed())
}

/// Prints the last `lines` lines of `log` to stderr.
fn print_tail(log: &Path, lines: usize) {
    let Ok(mut f) = File::open(log) else { return };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    // The tail of a test log fits in the last 256 KiB.
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(256 * 1024)));
    let mut text = String::new();
    if f.read_to_string(&mut text).is_err() {
        let mut bytes = Vec::new();
        let _ = f.seek(SeekFrom::Start(len.saturating_sub(256 * 1024)));
        let _ = f.read_to_end(&mut bytes);
        text = String::from_utf8_lossy(&bytes).into_owned();
    }
    let all: Vec<&str> = text.lines().collect();
    eprintln!("----- {} (last {lines} lines) -----", log.display());
    for l in &all[all.len().saturating_sub(lines)..] {
        eprintln!("{l}");
    }
    eprintln!("----- end of {} -----", log.display());
}
