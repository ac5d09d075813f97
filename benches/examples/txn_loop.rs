//! Small transactions against a real broker: `begin`, K sends, `commit`,
//! in a loop, as a plain application writes it (the Java twin is
//! `benches/java/TxnLoop.java`; `cargo xtask bench txn` runs both in turn
//! against one broker and prints the ratios).
//!
//! ```sh
//! cargo run --release -p exactly-benches --example txn_loop -- \
//!     --bootstrap 127.0.0.1:9092 --topic txn-bench --k 1 --seconds 10
//! ```
//!
//! Prints one line: `client=exactly k=.. txns=.. secs=.. tps=..
//! commit_p50_ms=.. commit_p99_ms=..`. The first second (connections,
//! producer id, the JIT of the Java twin) is a warm-up and not counted.
//! Every delivery is awaited before the line is printed: a transaction that
//! commits while a record failed aborts the run.

use std::time::{Duration, Instant};

use exactly_producer::{Producer, ProducerRecord};

struct Args {
    bootstrap: String,
    topic: String,
    k: usize,
    seconds: f64,
    warmup: f64,
    value_bytes: usize,
    txn_id: String,
    trace: bool,
}

fn parse() -> Args {
    let mut a = Args {
        bootstrap: "127.0.0.1:9092".into(),
        topic: "txn-bench".into(),
        k: 1,
        seconds: 10.0,
        warmup: 1.0,
        value_bytes: 100,
        txn_id: format!("txn-loop-{}", std::process::id()),
        trace: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--bootstrap" => a.bootstrap = val(),
            "--topic" => a.topic = val(),
            "--k" => a.k = val().parse().expect("--k"),
            "--seconds" => a.seconds = val().parse().expect("--seconds"),
            "--warmup" => a.warmup = val().parse().expect("--warmup"),
            "--value-bytes" => a.value_bytes = val().parse().expect("--value-bytes"),
            "--transactional-id" => a.txn_id = val(),
            "--trace" => a.trace = true,
            other => panic!("unknown flag {other}"),
        }
    }
    a
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1e3
}

fn main() {
    let a = parse();
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let value = vec![0x5au8; a.value_bytes];
    rt.block_on(async {
        let producer = Producer::from_properties([
            ("bootstrap.servers", a.bootstrap.as_str()),
            ("transactional.id", a.txn_id.as_str()),
        ])
        .await
        .expect("producer");
        producer.init_transactions().await.expect("init");
        let start = Instant::now();
        let warm_end = start + Duration::from_secs_f64(a.warmup);
        let end = warm_end + Duration::from_secs_f64(a.seconds);
        let mut commits = Vec::new();
        let mut measured_from = None;
        let mut txns = 0u64;
        let mut pending = Vec::with_capacity(a.k);
        loop {
            let now = Instant::now();
            if now >= end {
                break;
            }
            if now >= warm_end && measured_from.is_none() {
                measured_from = Some(now);
            }
            let t0 = Instant::now();
            producer.begin_transaction().await.expect("begin");
            for _ in 0..a.k {
                let f = producer
                    .send(ProducerRecord::new(&a.topic).with_value(&value))
                    .await
                    .expect("send");
                pending.push(f);
            }
            let t1 = Instant::now();
            producer.commit_transaction().await.expect("commit");
            let t2 = Instant::now();
            for f in pending.drain(..) {
                f.await.expect("delivery");
            }
            if a.trace {
                eprintln!(
                    "txn begin+send {:.3} ms commit {:.3} ms",
                    (t1 - t0).as_secs_f64() * 1e3,
                    (t2 - t1).as_secs_f64() * 1e3
                );
            }
            if measured_from.is_some() {
                commits.push(t2 - t1);
                txns += 1;
            }
        }
        let secs = measured_from.map_or(0.0, |m| m.elapsed().as_secs_f64());
        commits.sort_unstable();
        println!(
            "client=exactly k={} txns={} secs={:.3} tps={:.1} commit_p50_ms={:.2} commit_p99_ms={:.2}",
            a.k,
            txns,
            secs,
            txns as f64 / secs,
            percentile(&commits, 0.5),
            percentile(&commits, 0.99)
        );
        producer.close(Duration::from_secs(10)).await.expect("close");
    });
}
