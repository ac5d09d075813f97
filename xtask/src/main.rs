//! Project automation: `cargo xtask <command>`.
//!
//! - `kafka fetch|up|down|status`: the test broker (Apache Kafka 4.3.1, or
//!   the release `EXACTLY_KAFKA_VERSION` names, from Maven Central jars,
//!   cached after the first run).
//! - `demo`: the main job, an exactly-once copy on a local broker it starts.
//! - `test`: everything CI runs (fmt, clippy, the no-C check, all tests
//!   including the real-broker and real-PostgreSQL ones (Debian's
//!   `postgresql` is installed if missing; the real-broker test binaries
//!   run two at a time, `EXACTLY_TEST_JOBS` to change it), a check that no
//!   JVM is left behind, and the codec fuzz smoke).
//! - `no-c`: the library builds with no C compiler and its tree has no C.
//! - `bench txn`: small transactions against the Java client, paired on one
//!   broker per transaction version (BENCHMARKS.md; not in CI).
//! - `bench producer|consumer|copy|cpu|all`: ours against rust-rdkafka
//!   (`benches/peers`), franz-go (`benches/go`) and the Java client, paired
//!   and alternating, one ratio table (BENCHMARKS.md; not in CI).
//! - `soak`: the soak tier of RELIABILITY.md (minutes of random faults
//!   during a group of transactional copiers; not in CI).
//! - `package`: every library crate is publishable (manifest, docs, MSRV,
//!   `cargo publish --dry-run` in dependency order); `fresh-crate`: a crate
//!   outside the workspace builds with `exactly` and runs against a broker.
//! - `compat [--versions 3.9.2,4.4.0]`: the broker compatibility suite
//!   (`protocol-tests/tests/compat.rs`) on each Kafka version of the matrix
//!   (default: all of `jars::COMPAT_VERSIONS`); `test` runs it on the oldest
//!   and the newest.
//! - `doc-links`: every design document the code and docs cite exists in
//!   the repository.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use exactly_protocol_tests::{
    jars, process, Broker, BrokerConfig, DetachedState, TransactionVersion,
};

mod bench;
mod bench_peers;
mod bench_session;
mod bench_suites;
mod compat;
mod demo;
mod doclinks;
mod noc;
mod pg;
mod publish;
mod soak;
mod testrun;

#[derive(Parser)]
#[command(name = "cargo xtask", about = "exactly project automation")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Manage the local test broker.
    Kafka {
        #[command(subcommand)]
        cmd: KafkaCmd,
    },
    /// The main job: an exactly-once copy on a local broker started for it.
    Demo {
        /// Transaction protocol of the demo broker.
        #[arg(long, value_enum, default_value_t = Tv::V2)]
        tv: Tv,
        /// Records to copy.
        #[arg(long, default_value_t = 20_000)]
        records: u64,
    },
    /// Everything CI runs: fmt, clippy, no-C check, all tests, no stray JVM,
    /// fuzz smoke.
    Test {
        /// Skip fmt, clippy and rustdoc (for a quick local run of the tests only).
        #[arg(long)]
        no_lint: bool,
        /// Only the real-broker suite's test binaries (`protocol-tests/tests`),
        /// two at a time as in CI; names (e.g. `eos_copy producer_txn`) pick
        /// some of them.
        #[arg(long, num_args = 0.., value_name = "BINARY")]
        suite: Option<Vec<String>>,
    },
    /// Check that the library's dependency tree compiles no C.
    NoC,
    /// Benchmarks against the peers (BENCHMARKS.md). Not in CI.
    Bench {
        #[command(subcommand)]
        cmd: BenchCmd,
    },
    /// Throughput of the exactly-once session (`exactly copy`) beside
    /// Kafka's `TransactionalMessageCopier`: paired, alternating runs on a
    /// local broker, median ratio (BENCHMARKS.md). Not in CI.
    BenchSession {
        /// Input records (100 B values) copied by each run.
        #[arg(long, default_value_t = 1_000_000)]
        records: u64,
        /// Pairs of runs (ours and Java's, alternating which goes first).
        #[arg(long, default_value_t = 5)]
        pairs: usize,
        /// One transaction version only (default: 2, then 1).
        #[arg(long, value_enum)]
        tv: Option<Tv>,
        /// Extra property for our side, `key=value` (repeatable), e.g.
        /// `batch.size=512` (the Java copier's built-in batch size).
        #[arg(long = "ours-property", value_name = "KEY=VALUE")]
        ours_property: Vec<String>,
    },
    /// Check that every library crate can be published: manifest metadata,
    /// documented features, MSRV against the dependency tree, then
    /// `cargo publish --dry-run` in dependency order (nothing is uploaded).
    Package {
        /// Also build every package from its tarball (slow: minutes).
        #[arg(long)]
        verify: bool,
    },
    /// Build a crate outside the workspace that depends on `exactly` by path
    /// and run it against a broker started for it.
    FreshCrate,
    /// The broker compatibility suite on each Kafka version of the matrix
    /// (protocol-tests/tests/compat.rs; jars from Maven Central, cached per
    /// version).
    Compat {
        /// Kafka versions, comma-separated (default: 3.9.2,4.0.2,4.3.1,4.4.0).
        #[arg(long, value_delimiter = ',')]
        versions: Vec<String>,
    },
    /// Check that every cited design document (an upper-case `.md` name)
    /// exists in the repository.
    DocLinks,
    /// The soak tier (RELIABILITY.md): random faults for `--minutes` while a
    /// group of transactional copiers copies a steadily fed topic, then an
    /// exactly-once verdict by our consumer and the Java one. Not in CI.
    Soak {
        /// Minutes of faults per transaction version.
        #[arg(long, default_value_t = 10.0)]
        minutes: f64,
        /// One transaction version only (default: 2, then 1).
        #[arg(long, value_enum)]
        tv: Option<Tv>,
        /// Copier processes in the group.
        #[arg(long, default_value_t = 3)]
        copiers: usize,
        /// Input records per second.
        #[arg(long, default_value_t = 2_000)]
        rate: u64,
        /// Longest gap between two faults, seconds (each gap is 1..this).
        #[arg(long, default_value_t = 60)]
        max_gap: u64,
        /// Seed of the fault schedule.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Broker nodes (1 or 3).
        #[arg(long, default_value_t = 3)]
        nodes: usize,
    },
}

#[derive(Subcommand)]
enum BenchCmd {
    /// Transactions of K records, ours against the Java client's
    /// (benches/java/TxnLoop.java), alternating on one broker per
    /// transaction version.
    Txn {
        /// One transaction version only (default: 2, then 1).
        #[arg(long, value_enum)]
        tv: Option<Tv>,
        /// Records per transaction, comma-separated.
        #[arg(long, value_delimiter = ',', default_values_t = [1usize, 10, 100, 1000])]
        k: Vec<usize>,
        /// Pairs of runs per K (the order flips every pair).
        #[arg(long, default_value_t = 3)]
        pairs: usize,
        /// Measured seconds per run (after a one-second warm-up).
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
    },
    /// Producer end to end: ours vs Java ProducerPerformance, rust-rdkafka,
    /// franz-go, at linger 0/5 ms, 1/3 partitions, none/lz4/zstd.
    Producer(PeerArgs),
    /// Consumer read_committed: ours vs Java ConsumerPerformance,
    /// rust-rdkafka, franz-go, with and without aborted transactions.
    Consumer(PeerArgs),
    /// Exactly-once copy: `exactly copy` vs Java TransactionalMessageCopier
    /// vs franz-go GroupTransactSession.
    Copy(PeerArgs),
    /// Producer CPU against the null broker: ours vs rust-rdkafka.
    Cpu(PeerArgs),
    /// producer, consumer, copy and cpu in turn, one table.
    All(PeerArgs),
}

/// Sizes of a peer suite run (records per run: `--records`, else each
/// suite's default).
#[derive(clap::Args, Clone, Copy)]
struct PeerArgs {
    /// Records per run (default: producer 1M, consumer 2M, copy 200k, cpu 1M).
    #[arg(long)]
    records: Option<u64>,
    /// Rounds (each contender once per round, the order rotating).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
}

#[derive(Subcommand)]
enum KafkaCmd {
    /// Download (or verify the cache of) the broker and tool jars.
    Fetch,
    /// Start a broker in the background and print its bootstrap address.
    Up {
        /// Transaction protocol (`transaction.version` feature level).
        #[arg(long, value_enum, default_value_t = Tv::V2)]
        tv: Tv,
        /// Number of nodes (1 or 3).
        #[arg(long, default_value_t = 1)]
        nodes: usize,
    },
    /// Stop the background broker and delete its data.
    Down,
    /// Say whether the background broker is running, and where.
    Status,
}

#[derive(Clone, Copy, ValueEnum)]
enum Tv {
    #[value(name = "1")]
    V1,
    #[value(name = "2")]
    V2,
}

impl From<Tv> for TransactionVersion {
    fn from(tv: Tv) -> Self {
        match tv {
            Tv::V1 => TransactionVersion::V1,
            Tv::V2 => TransactionVersion::V2,
        }
    }
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Kafka { cmd } => kafka(cmd),
        Cmd::Demo { tv, records } => demo::run(tv.into(), records),
        Cmd::Test {
            suite: Some(names), ..
        } => testrun::run_suite(&names),
        Cmd::Test { no_lint, .. } => test(no_lint),
        Cmd::NoC => noc::check(),
        Cmd::Bench {
            cmd:
                BenchCmd::Txn {
                    tv,
                    k,
                    pairs,
                    seconds,
                },
        } => bench::txn(&bench::TxnBenchOptions {
            tvs: match tv {
                Some(tv) => vec![tv.into()],
                None => TransactionVersion::ALL.to_vec(),
            },
            ks: k,
            pairs,
            seconds,
        }),
        Cmd::Bench { cmd } => bench_peers_cmd(cmd),
        Cmd::BenchSession {
            records,
            pairs,
            tv,
            ours_property,
        } => {
            let opts = bench_session::BenchOptions {
                records,
                pairs,
                ours_properties: ours_property,
            };
            let tvs = match tv {
                Some(tv) => vec![tv.into()],
                None => TransactionVersion::ALL.to_vec(),
            };
            for tv in tvs {
                bench_session::run(tv, &opts)?;
            }
            Ok(())
        }
        Cmd::Package { verify } => publish::package(verify),
        Cmd::FreshCrate => publish::fresh_crate(),
        Cmd::DocLinks => doclinks::check(),
        Cmd::Compat { versions } => compat::run(&versions, None).map(|_| ()),
        Cmd::Soak {
            minutes,
            tv,
            copiers,
            rate,
            max_gap,
            seed,
            nodes,
        } => {
            let opts = soak::SoakOptions {
                minutes,
                copiers,
                rate,
                max_gap,
                seed,
                nodes,
            };
            let tvs = match tv {
                Some(tv) => vec![tv.into()],
                None => TransactionVersion::ALL.to_vec(),
            };
            for tv in tvs {
                soak::run(tv, &opts)?;
            }
            Ok(())
        }
    }
}

/// The workspace root (xtask lives one level below it).
/// `cargo xtask bench producer|consumer|copy|cpu|all`.
fn bench_peers_cmd(cmd: BenchCmd) -> Result<()> {
    let (suites, a): (&[&str], PeerArgs) = match cmd {
        BenchCmd::Producer(a) => (&["producer"], a),
        BenchCmd::Consumer(a) => (&["consumer"], a),
        BenchCmd::Copy(a) => (&["copy"], a),
        BenchCmd::Cpu(a) => (&["cpu"], a),
        BenchCmd::All(a) => (&["producer", "consumer", "copy", "cpu"], a),
        BenchCmd::Txn { .. } => bail!("bench txn is handled above"),
    };
    let programs = bench_peers::build(suites.contains(&"copy"))?;
    let mut table = bench_peers::Table::default();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    for suite in suites {
        let r = |d: u64| a.records.unwrap_or(d);
        match *suite {
            "producer" => bench_suites::producer(&programs, &mut table, r(1_000_000), a.rounds)?,
            "consumer" => bench_suites::consumer(&programs, &mut table, r(2_000_000), a.rounds)?,
            "copy" => bench_session::copy_suite(&programs, &mut table, r(200_000), a.rounds)?,
            _ => bench_suites::cpu(&programs, &mut table, r(1_000_000), a.rounds)?,
        }
    }
    let load_end = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    table.print(&format!(
        "{} rounds, medians; ratios are medians of the per-round ratios. Load average at start: {}, at end: {}",
        a.rounds,
        load.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
        load_end.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
    ));
    Ok(())
}

pub(crate) fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn state_file() -> PathBuf {
    root().join("target").join("exactly-kafka.state")
}

fn read_state() -> Option<DetachedState> {
    std::fs::read_to_string(state_file())
        .ok()
        .and_then(|t| DetachedState::from_text(&t))
}

fn kafka(cmd: KafkaCmd) -> Result<()> {
    match cmd {
        KafkaCmd::Fetch => {
            let t = Instant::now();
            let libs = jars::ensure_jars()?;
            println!(
                "Kafka {} jars ready in {} ({:.1} s)",
                jars::KafkaVersion::selected()?,
                libs.display(),
                t.elapsed().as_secs_f64()
            );
        }
        KafkaCmd::Up { tv, nodes } => {
            if let Some(state) = read_state().filter(DetachedState::is_alive) {
                bail!(
                    "a broker is already running at {} (stop it with `cargo xtask kafka down`)",
                    state.bootstrap
                );
            }
            let t = Instant::now();
            let config = BrokerConfig {
                transaction_version: tv.into(),
                nodes,
                ..BrokerConfig::default()
            };
            let state = Broker::start_detached(config)?.into_detached_state();
            std::fs::create_dir_all(root().join("target"))?;
            std::fs::write(state_file(), state.to_text())
                .with_context(|| format!("writing {}", state_file().display()))?;
            println!(
                "Kafka {} up in {:.1} s: bootstrap.servers={} transaction.version={} (pids {:?})",
                jars::KafkaVersion::selected()?,
                t.elapsed().as_secs_f64(),
                state.bootstrap,
                state.transaction_version,
                state.pids
            );
        }
        KafkaCmd::Down => match read_state() {
            Some(state) => {
                Broker::stop_detached(&state);
                let _ = std::fs::remove_file(state_file());
                println!("broker at {} stopped", state.bootstrap);
            }
            None => println!("no broker recorded in {}", state_file().display()),
        },
        KafkaCmd::Status => match read_state() {
            Some(s) if s.is_alive() => println!(
                "running: bootstrap.servers={} transaction.version={} pids {:?}",
                s.bootstrap, s.transaction_version, s.pids
            ),
            Some(s) => println!("not running (stale record for {})", s.bootstrap),
            None => println!("not running"),
        },
    }
    Ok(())
}

/// Runs a command in the workspace root, echoing it, failing on non-zero exit.
pub(crate) fn run(step: &str, cmd: &mut Command) -> Result<Duration> {
    let t = Instant::now();
    eprintln!("\n==> {step}: {cmd:?}");
    let status = cmd
        .current_dir(root())
        .status()
        .with_context(|| format!("{step}: cannot run {cmd:?}"))?;
    if !status.success() {
        bail!("{step} failed ({status})");
    }
    let took = t.elapsed();
    eprintln!("==> {step}: ok in {:.1} s", took.as_secs_f64());
    Ok(took)
}

pub(crate) fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

fn test(no_lint: bool) -> Result<()> {
    let mut times = Vec::new();
    if !no_lint {
        times.push((
            "fmt",
            run("fmt", cargo().args(["fmt", "--all", "--check"]))?,
        ));
        times.push((
            "clippy",
            run(
                "clippy",
                cargo().args([
                    "clippy",
                    "--workspace",
                    "--all-targets",
                    "--",
                    "-D",
                    "warnings",
                ]),
            )?,
        ));
        // Rustdoc: broken or private intra-doc links fail too.
        times.push((
            "doc",
            run(
                "doc",
                cargo()
                    .args(["doc", "--workspace", "--no-deps"])
                    .env("RUSTDOCFLAGS", "-D warnings"),
            )?,
        ));
    }
    let t = Instant::now();
    noc::check()?;
    times.push(("no-c", t.elapsed()));
    let t = Instant::now();
    doclinks::check()?;
    publish::package(false)?;
    times.push(("package", t.elapsed()));
    // Fail early and clearly if the broker cannot be had (Java/Maven missing).
    let t = Instant::now();
    let libs = jars::ensure_jars()?;
    // Tag this run's JVMs so the stray check below sees only ours.
    let run_tag = std::env::var(process::RUN_TAG_ENV)
        .unwrap_or_else(|_| format!("xtask-{}", std::process::id()));
    eprintln!(
        "==> broker jars: {} ({:.1} s)",
        libs.display(),
        t.elapsed().as_secs_f64()
    );
    // The PostgreSQL sink and outbox tests start their own servers from
    // Debian's binaries: install them when missing.
    let t = Instant::now();
    pg::ensure()?;
    times.push(("postgres", t.elapsed()));
    times.push(("tests", testrun::run_tests(&run_tag)?));
    // The broker compatibility suite on the oldest and the newest Kafka of
    // the matrix (the default version is what the tests above ran on);
    // `cargo xtask compat` runs the whole matrix.
    let ends = [jars::COMPAT_VERSIONS.first(), jars::COMPAT_VERSIONS.last()]
        .into_iter()
        .flatten()
        .map(|v| (*v).to_owned())
        .collect::<Vec<_>>();
    times.push(("compat", compat::run(&ends, Some(&run_tag))?));
    let strays = stray_jvms(&run_tag);
    if !strays.is_empty() {
        for &pid in &strays {
            process::signal(pid, process::Signal::Kill);
        }
        bail!("tests left harness JVMs running (pids {strays:?}); they were killed now");
    }
    let servers = pg::stray_servers();
    if !servers.is_empty() {
        for &pid in &servers {
            process::signal(pid, process::Signal::Kill);
        }
        bail!("tests left PostgreSQL servers running (pids {servers:?}); they were killed now");
    }
    let t = Instant::now();
    publish::fresh_crate()?;
    times.push(("fresh", t.elapsed()));
    times.push(("fuzz", fuzz_smoke()?));
    eprintln!("\n==> all green");
    for (step, took) in times {
        eprintln!("    {step:<8} {:>7.1} s", took.as_secs_f64());
    }
    Ok(())
}

/// The codec fuzz smoke (RELIABILITY.md T1): every target for 15 s on its
/// committed corpus (`fuzz/smoke.sh`, two targets at a time: about 75 s of
/// runs after a cold build of ~140 s), installing cargo-fuzz if it is
/// missing. It replays the corpus and looks a little further; the long runs
/// are `fuzz/smoke.sh 600` (fuzz/README.md).
fn fuzz_smoke() -> Result<Duration> {
    let have = cargo()
        .args(["fuzz", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !have {
        run(
            "install cargo-fuzz",
            cargo().args(["install", "cargo-fuzz", "--locked"]),
        )?;
    }
    run(
        "fuzz smoke (15 s per target, two at a time)",
        Command::new("bash")
            .args(["fuzz/smoke.sh", "15"])
            .env("FUZZ_JOBS", "2"),
    )
}

/// JVMs of this test run still alive after the tests returned.
fn stray_jvms(run_tag: &str) -> Vec<u32> {
    process::pids_with_arg(&process::run_tag_arg(run_tag))
}
