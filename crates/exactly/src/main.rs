//! `exactly`: the command-line tool of the exactly Kafka client — kcat's and
//! `kafka-transactions.sh`'s jobs without a JVM.
//!
//! ```text
//! exactly produce -t in --count 100000
//! exactly consume in -e -J
//! exactly txn find-hanging --topic in
//! exactly copy --input in --output out --group copier --transactional-id copier-1
//! exactly verify --topic out --partitions 3 --count 100000
//! ```
//!
//! `exactly --help` lists the subcommands and exit codes; each subcommand's
//! `--help` has an example. `RUST_LOG=exactly=debug` (or any `tracing`
//! filter) shows the clients' spans.

use std::process::ExitCode;

use clap::Parser;

mod cli;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let parsed = cli::Cli::parse();
    match cli::run(parsed).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(cli::Failure::Check(msg)) => {
            eprintln!("check failed: {msg}");
            ExitCode::from(1)
        }
        Err(cli::Failure::Usage(e)) => {
            eprintln!("usage: {e:#}");
            ExitCode::from(2)
        }
        Err(cli::Failure::Error(e)) => {
            eprintln!("error: {e:#}");
            ExitCode::from(3)
        }
    }
}
