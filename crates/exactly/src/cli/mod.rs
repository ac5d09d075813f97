//! The `exactly` command line (feature `cli`): one module per group of
//! subcommands. Not a library API: the `exactly` binary (and the test
//! harness's copy of it) call [`main`].

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

mod admin;
mod check;
mod consume;
mod produce;
mod props;
mod txn;

pub(crate) use props::Props;

/// Exit codes, shown in `--help`.
pub(crate) const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  a check failed (verify found duplicates, missing or foreign records)
  2  bad usage (unknown flag or property, malformed value)
  3  Kafka or I/O error (unreachable cluster, refused request, unreadable input)

Properties: -X key=value (repeatable) and -F FILE (Java properties) take any
Kafka client property (security.protocol, sasl.*, ssl.*, isolation.level,
acks, ...). A value @env:NAME or @file:PATH is read from the environment or a
file, so secrets need not be on the command line. Prefix a key with
consumer. or producer. to aim at one client.";

#[derive(Parser)]
#[command(
    name = "exactly",
    version,
    about = "Exactly-once Kafka tools (pure Rust): consume, produce, inspect and repair transactions",
    after_help = EXIT_CODES
)]
pub(crate) struct Cli {
    /// `bootstrap.servers`.
    #[arg(long, short = 'b', global = true, default_value = "127.0.0.1:9092")]
    pub(crate) bootstrap_servers: String,
    /// A Kafka property, `key=value` (repeatable; any client property).
    #[arg(short = 'X', value_name = "KEY=VALUE", global = true)]
    pub(crate) property: Vec<String>,
    /// A properties file (repeatable; `-X` wins).
    #[arg(short = 'F', value_name = "FILE", global = true)]
    pub(crate) properties_file: Vec<PathBuf>,
    #[command(subcommand)]
    pub(crate) cmd: Cmd,
}

#[derive(Subcommand)]
pub(crate) enum Cmd {
    /// Read records (read_committed by default) and print them.
    #[command(after_help = consume::HELP)]
    Consume(consume::Args),
    /// Write records from stdin or files (or the numbers 0..N with --count).
    #[command(after_help = produce::HELP)]
    Produce(produce::Args),
    /// Brokers, topics, partitions, leaders and ISR.
    #[command(after_help = admin::METADATA_HELP)]
    Metadata(admin::MetadataArgs),
    /// Per partition: earliest, latest, last stable offset, and by timestamp.
    #[command(after_help = admin::OFFSETS_HELP)]
    Offsets(admin::OffsetsArgs),
    /// Create, delete, describe and list topics.
    #[command(subcommand, after_help = admin::TOPICS_HELP)]
    Topics(admin::TopicsCmd),
    /// List and describe consumer groups (with lag); delete group offsets.
    #[command(subcommand, after_help = admin::GROUPS_HELP)]
    Groups(admin::GroupsCmd),
    /// Transactions: list, describe, producers, find-hanging, abort.
    #[command(subcommand, after_help = txn::HELP)]
    Txn(txn::TxnCmd),
    /// Copy a topic to another exactly once (transactions + group offsets).
    #[command(after_help = check::COPY_HELP)]
    Copy(check::CopyArgs),
    /// Read a topic read_committed and judge it (counts, duplicates, missing).
    #[command(after_help = check::VERIFY_HELP)]
    Verify(check::VerifyArgs),
}

/// Why a command failed, for the exit code.
#[derive(Debug)]
pub(crate) enum Failure {
    /// A check found a problem (exit 1).
    Check(String),
    /// Bad usage (exit 2).
    Usage(anyhow::Error),
    /// Anything else (exit 3).
    Error(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Error(e)
    }
}

/// Parses the command line, runs the command and maps the outcome to the
/// documented exit codes.
pub fn main() -> std::process::ExitCode {
    use std::process::ExitCode;
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let parsed = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting the runtime: {e}");
            return ExitCode::from(3);
        }
    };
    match rt.block_on(run(parsed)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Check(msg)) => {
            eprintln!("check failed: {msg}");
            ExitCode::from(1)
        }
        Err(Failure::Usage(e)) => {
            eprintln!("usage: {e:#}");
            ExitCode::from(2)
        }
        Err(Failure::Error(e)) => {
            eprintln!("error: {e:#}");
            ExitCode::from(3)
        }
    }
}

/// Runs the parsed command.
pub(crate) async fn run(cli: Cli) -> Result<(), Failure> {
    let props = Props::load(&cli.bootstrap_servers, &cli.properties_file, &cli.property)
        .map_err(Failure::Usage)?;
    match cli.cmd {
        Cmd::Consume(a) => consume::run(&props, a).await,
        Cmd::Produce(a) => produce::run(&props, a).await,
        Cmd::Metadata(a) => admin::metadata(&props, a).await,
        Cmd::Offsets(a) => admin::offsets(&props, a).await,
        Cmd::Topics(c) => admin::topics(&props, c).await,
        Cmd::Groups(c) => admin::groups(&props, c).await,
        Cmd::Txn(c) => txn::run(&props, c).await,
        Cmd::Copy(a) => check::copy(&props, a).await,
        Cmd::Verify(a) => check::verify(&props, a).await,
    }
}

/// A progress bar on stderr (drawn only when stderr is a terminal).
pub(crate) fn bar(len: u64, what: &str) -> ProgressBar {
    let pb = ProgressBar::new(len);
    let template = if len == 0 {
        "{msg:>10} {spinner} {pos} ({per_sec}, {elapsed_precise})"
    } else {
        "{msg:>10} [{bar:40}] {pos}/{len} ({per_sec}, {elapsed_precise})"
    };
    pb.set_style(
        ProgressStyle::with_template(template)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    pb.set_message(what.to_owned());
    pb
}

/// An admin client from the net properties.
pub(crate) async fn admin(props: &Props) -> Result<crate::admin::Admin> {
    Ok(crate::admin::Admin::connect_with(props.net()).await?)
}
