//! A fan-out application on the exactly-once session: every input value
//! goes to topic `all`, and the even ones to topic `even` as well; odd
//! values are filtered out of `even`. Exactly once through crashes,
//! restarts and rebalances; SIGTERM or Ctrl-C stops it gracefully (the open
//! transaction commits, the group is left, the producer closed).
//!
//! ```sh
//! cargo xtask kafka up          # a local broker (prints its address)
//! cargo run -p exactly -- -b 127.0.0.1:9092 produce --topic numbers --count 10000
//! cargo run -p exactly-eos --example fan_out -- 127.0.0.1:9092 numbers all even fan-out fan-out-1
//! ```
//!
//! Run more instances with other last arguments (`fan-out-2`, ...): each
//! instance needs its own fixed `transactional.id`, the same one every time
//! it restarts, so a restart fences what its previous incarnation left open.
//!
//! `even` must have at least as many partitions as the input: even values
//! keep their input partition number there (an explicit partition). If it
//! has fewer, the send fails, the transaction aborts and is retried, and
//! after 3 failures in a row the session ends with
//! `SessionError::HandlerFailed`.

use std::time::Duration;

use exactly_consumer::ConsumerRecord;
use exactly_eos::{Context, Handler, HandlerError, Session, SessionError};
use exactly_producer::ProducerRecord;
use tokio::signal::unix::{signal, Signal, SignalKind};

struct FanOut {
    all: String,
    even: String,
}

impl Handler for FanOut {
    async fn process(
        &mut self,
        ctx: &mut Context<'_>,
        records: &[ConsumerRecord],
    ) -> Result<(), HandlerError> {
        for r in records {
            let Some(v) = r.value() else { continue };
            let n: u64 = std::str::from_utf8(v)?.trim().parse()?;
            // Every value to `all`, with its key, its timestamp, and a
            // header naming where it came from.
            let source = format!("{}-{}@{}", r.topic(), r.partition(), r.offset());
            let mut all = ProducerRecord::new(&self.all)
                .with_value(v)
                .with_timestamp(r.timestamp())
                .with_header("source", Some(source.as_bytes()));
            if let Some(k) = r.key() {
                all = all.with_key(k);
            }
            ctx.send(all).await?;
            // Even values to `even` too, into the input's partition number.
            if n.is_multiple_of(2) {
                let even = ProducerRecord::new(&self.even)
                    .with_value(v)
                    .with_partition(r.partition());
                ctx.send(even).await?;
            }
        }
        Ok(())
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [bootstrap, input, all, even, group, instance] = &args[..] else {
        eprintln!("usage: fan_out <bootstrap> <input> <all> <even> <group> <instance>");
        std::process::exit(2);
    };
    // SIGTERM (a container stop) and Ctrl-C stop the session gracefully.
    let term = match signal(SignalKind::terminate()) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("cannot listen for SIGTERM: {e}");
            std::process::exit(1);
        }
    };
    match run(term, bootstrap, input, all, even, group, instance).await {
        Ok(()) => {}
        Err(e) if e.is_fenced() => {
            eprintln!("another process runs as {instance}: this one stops ({e})");
            std::process::exit(1);
        }
        Err(e) => {
            eprintln!("fan_out failed: {e}");
            std::process::exit(1);
        }
    }
}

async fn run(
    mut term: Signal,
    bootstrap: &str,
    input: &str,
    all: &str,
    even: &str,
    group: &str,
    instance: &str,
) -> Result<(), SessionError> {
    let mut b = Session::builder();
    b.bootstrap_servers(bootstrap)?
        .set("auto.offset.reset", "earliest")?
        .set("linger.ms", "5")?;
    b.group_id(group)
        .transactional_id(instance)
        .input_topics(&[input])
        .max_records_per_transaction(1000)
        .max_transaction_time(Duration::from_millis(100))
        .shutdown_timeout(Duration::from_secs(10))
        .handler_max_retries(3);
    let session = b.build().await?;

    let stop = session.shutdown_handle();
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        eprintln!("stopping: committing the open transaction");
        stop.shutdown();
    });

    // Progress, from the live counters.
    let metrics = session.metrics();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(5)).await;
            let s = metrics.snapshot();
            eprintln!(
                "in {} out {} committed {} transactions {} aborted {} last commit {:?}",
                s.records_in,
                s.records_out,
                s.records_committed,
                s.transactions_committed,
                s.transactions_aborted,
                s.last_commit_latency()
            );
        }
    });

    let stats = session
        .run(FanOut {
            all: all.to_owned(),
            even: even.to_owned(),
        })
        .await?;
    println!("stopped: {stats:?}");
    Ok(())
}
