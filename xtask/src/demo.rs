//! `cargo xtask demo`: the main job. An exactly-once copy on a local Apache
//! Kafka broker started for it, judged by our consumer and by the Java
//! reference consumer.
//!
//! 1. start a broker (Kafka 4.3.1 from Maven jars; `transaction.version` 2
//!    by default, `--tv 1` for the pre-KIP-890 flow);
//! 2. write the values 0..N to a 2-partition input topic (idempotent producer);
//! 3. copy it to a 3-partition output topic with `exactly::copy`: transactions
//!    of 500 input records with their consumer offsets (KIP-447), a third of
//!    them aborted on purpose and copied again;
//! 4. read the output `read_committed` with our consumer and with the Java
//!    `VerifiableConsumer`: every value exactly once, nothing aborted visible;
//! 5. stop the broker.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use exactly::{check, copy, CopyConfig, Transformed};
use exactly_protocol_tests::{judge, Broker, BrokerConfig, TransactionVersion};
use indicatif::{ProgressBar, ProgressStyle};

const INPUT: &str = "exactly-demo-input";
const OUTPUT: &str = "exactly-demo-output";

fn bar(len: u64, what: &str) -> ProgressBar {
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template("{msg:>8} [{bar:40}] {pos}/{len} ({per_sec})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    pb.set_message(what.to_owned());
    pb
}

pub(crate) fn run(tv: TransactionVersion, records: u64) -> Result<()> {
    let t = Instant::now();
    println!("starting a local Apache Kafka 4.3.1 broker ({tv:?})...");
    let broker = Broker::start(BrokerConfig::with_transaction_version(tv))?;
    let bootstrap = broker.bootstrap();
    println!(
        "broker up in {:.1} s at {bootstrap}",
        t.elapsed().as_secs_f64()
    );
    broker.create_topic(INPUT, 2)?;
    broker.create_topic(OUTPUT, 3)?;
    let rt = tokio::runtime::Runtime::new().context("tokio runtime")?;
    let result = rt.block_on(demo(&bootstrap, records));
    let verdict = result?;

    // The reference Java client as an independent judge.
    let java = judge::java_numbered(&broker, OUTPUT, records, Duration::from_secs(120))?;
    println!(
        "Java VerifiableConsumer (read_committed): {} records, {} distinct values",
        java.read, java.distinct
    );
    drop(broker);
    println!("broker stopped; nothing left running");
    if !verdict.is_exactly_once() || !java.is_exactly_once() {
        bail!("the copy is NOT exactly once: ours {verdict:?}, Java {java:?}");
    }
    println!(
        "\nexactly once: {records} input records -> {records} output records, no duplicate, \
         none missing, nothing from an aborted transaction visible"
    );
    Ok(())
}

async fn demo(bootstrap: &str, records: u64) -> Result<check::Verdict> {
    let pb = bar(records, "produce");
    check::produce_numbered(bootstrap, INPUT, records, |n| pb.set_position(n)).await?;
    pb.finish();

    let cfg = CopyConfig {
        records_per_transaction: 500,
        abort_fraction: 1.0 / 3.0,
        label: true,
        stop_after: Some(records),
        idle_timeout: Duration::from_secs(30),
        ..CopyConfig::new(
            bootstrap,
            INPUT,
            OUTPUT,
            "exactly-demo-copier",
            "exactly-demo-copier-1",
        )
    };
    let pb = bar(records, "copy");
    let t = Instant::now();
    let stats = copy(&cfg, Transformed::identity, |s| {
        pb.set_position(s.committed_records)
    })
    .await?;
    pb.finish();
    println!(
        "copied in {:.1} s: {} transactions committed, {} aborted on purpose (their records \
         copied again), {} aborted after errors",
        t.elapsed().as_secs_f64(),
        stats.transactions_committed,
        stats.transactions_aborted,
        stats.aborted_on_error
    );

    let pb = bar(records, "verify");
    let verdict = check::verify_numbered(
        bootstrap,
        OUTPUT,
        3,
        records,
        Duration::from_secs(30),
        |n| pb.set_position(n),
    )
    .await?;
    pb.finish();
    println!(
        "our read_committed consumer: {} records, {} duplicates, {} missing, {} foreign, {} out of order",
        verdict.read, verdict.duplicates, verdict.missing, verdict.foreign, verdict.order_violations
    );
    Ok(verdict)
}
