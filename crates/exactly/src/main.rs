//! `exactly`: the command-line tool of the exactly Kafka client.
//!
//! ```text
//! exactly produce --bootstrap-servers 127.0.0.1:9092 --topic in --count 100000
//! exactly copy    --bootstrap-servers 127.0.0.1:9092 --input in --output out \
//!                 --group copier --transactional-id copier-1 --count 100000
//! exactly verify  --bootstrap-servers 127.0.0.1:9092 --topic out --partitions 3 --count 100000
//! ```
//!
//! `RUST_LOG=exactly=debug` (or any `tracing` filter) shows the clients' spans.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use exactly::{check, copy, CopyConfig, Transformed};
use indicatif::{ProgressBar, ProgressStyle};

#[derive(Parser)]
#[command(
    name = "exactly",
    version,
    about = "Exactly-once Kafka tools (pure Rust)"
)]
struct Cli {
    /// `bootstrap.servers`.
    #[arg(long, short = 'b', global = true, default_value = "127.0.0.1:9092")]
    bootstrap_servers: String,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Write the values 0..count (idempotent producer, acks=all).
    Produce {
        /// Topic to write.
        #[arg(long)]
        topic: String,
        /// How many records.
        #[arg(long)]
        count: u64,
    },
    /// Copy a topic to another exactly once (transactions + group offsets).
    Copy {
        /// Input topic (read read_committed).
        #[arg(long)]
        input: String,
        /// Output topic (written transactionally).
        #[arg(long)]
        output: String,
        /// Consumer group.
        #[arg(long)]
        group: String,
        /// transactional.id of this copier.
        #[arg(long)]
        transactional_id: String,
        /// Stop after this many input records were committed (default: until idle).
        #[arg(long)]
        count: Option<u64>,
        /// Input records per transaction.
        #[arg(long, default_value_t = 500)]
        records_per_transaction: usize,
        /// Abort this fraction of transactions on purpose (0.0-1.0).
        #[arg(long, default_value_t = 0.0)]
        abort_fraction: f64,
        /// Stop after this many seconds without input.
        #[arg(long, default_value_t = 10)]
        idle_secs: u64,
        /// Extra property, `key=value` (repeatable): a session property, or
        /// a client property for each client that knows it (prefix with
        /// `producer.` or `consumer.` to aim at one).
        #[arg(short = 'X', value_name = "KEY=VALUE")]
        property: Vec<String>,
    },
    /// Read a numbered topic read_committed and judge it: each of 0..count
    /// exactly once, offsets in order. Exit status 1 if not.
    Verify {
        /// Topic to read.
        #[arg(long)]
        topic: String,
        /// Its partition count.
        #[arg(long)]
        partitions: i32,
        /// Expected records (values 0..count).
        #[arg(long)]
        count: u64,
        /// Give up after this many seconds without records.
        #[arg(long, default_value_t = 30)]
        idle_secs: u64,
    },
}

fn bar(len: u64, what: &str) -> ProgressBar {
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template(
            "{msg:>10} [{bar:40}] {pos}/{len} ({per_sec}, {elapsed_precise})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    pb.set_message(what.to_owned());
    pb
}

/// `-X key=value` properties as pairs.
fn parse_properties(props: &[String]) -> Result<Vec<(String, String)>> {
    props
        .iter()
        .map(|p| match p.split_once('=') {
            Some((k, v)) => Ok((k.to_owned(), v.to_owned())),
            None => bail!("property `{p}` is not key=value"),
        })
        .collect()
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let bootstrap = cli.bootstrap_servers;
    match cli.cmd {
        Cmd::Produce { topic, count } => {
            let pb = bar(count, "produce");
            let t = Instant::now();
            check::produce_numbered(&bootstrap, &topic, count, |n| pb.set_position(n))
                .await
                .context("produce")?;
            pb.finish();
            println!(
                "produced {count} records to {topic} in {:.1} s",
                t.elapsed().as_secs_f64()
            );
        }
        Cmd::Copy {
            input,
            output,
            group,
            transactional_id,
            count,
            records_per_transaction,
            abort_fraction,
            idle_secs,
            property,
        } => {
            let cfg = CopyConfig {
                records_per_transaction,
                abort_fraction,
                stop_after: count,
                idle_timeout: Duration::from_secs(idle_secs),
                properties: parse_properties(&property)?,
                ..CopyConfig::new(&bootstrap, &input, &output, &group, &transactional_id)
            };
            let pb = bar(count.unwrap_or(0), "copy");
            let stats = copy(&cfg, Transformed::identity, |s| {
                pb.set_position(s.committed_records)
            })
            .await
            .context("copy")?;
            pb.finish();
            println!(
                "committed {} records in {} transactions ({} aborted on purpose, {} after errors)",
                stats.committed_records,
                stats.transactions_committed,
                stats.transactions_aborted,
                stats.aborted_on_error
            );
        }
        Cmd::Verify {
            topic,
            partitions,
            count,
            idle_secs,
        } => {
            let pb = bar(count, "verify");
            let v = check::verify_numbered(
                &bootstrap,
                &topic,
                partitions,
                count,
                Duration::from_secs(idle_secs),
                |n| pb.set_position(n),
            )
            .await
            .context("verify")?;
            pb.finish();
            println!("{v:?}");
            if !v.is_exactly_once() {
                bail!("{topic} is not exactly once: {v:?}");
            }
            println!("{topic}: {count} records, each exactly once, in order");
        }
    }
    Ok(())
}
