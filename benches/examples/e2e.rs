//! Our side of `cargo xtask bench producer|consumer` (issue 15): the same
//! workloads, and the same result line, as the peers' programs
//! (`benches/peers`, `benches/go`).
//!
//! ```sh
//! cargo run --release -p exactly-benches --example e2e -- produce \
//!     --bootstrap 127.0.0.1:9092 --topic bench --records 1000000 --linger-ms 5 --compression lz4
//! cargo run --release -p exactly-benches --example e2e -- consume \
//!     --bootstrap 127.0.0.1:9092 --topic bench --records 1000000
//! ```
//!
//! - `produce`: idempotent, acks=all, 100-byte values, no key, the other
//!   settings default; every delivery future is awaited (in order, in
//!   chunks of 65,536) and a failed one fails the run. The rate is records
//!   over the time from the first send to the last delivery.
//! - `consume`: a fresh group, `read_committed`, earliest, defaults; the
//!   rate is records over the time from the first record to the N-th.
//!
//! `--prop key=value` (repeatable) adds a client property (e.g.
//! `batch.size=1048576`, the batch size of rust-rdkafka and franz-go).
//!
//! Prints `client=exactly mode=.. records=.. secs=.. rate=..`.

use std::time::{Duration, Instant};

use exactly_consumer::{Consumer, Polled};
use exactly_producer::{Producer, ProducerRecord};

struct Args {
    mode: String,
    bootstrap: String,
    topic: String,
    records: u64,
    linger_ms: u64,
    compression: String,
    /// `--prop key=value`: more producer/consumer properties.
    props: Vec<(String, String)>,
}

fn args() -> Args {
    let mut it = std::env::args().skip(1);
    let mut a = Args {
        mode: it.next().unwrap_or_default(),
        bootstrap: "127.0.0.1:9092".into(),
        topic: "bench".into(),
        records: 1_000_000,
        linger_ms: 5,
        compression: "none".into(),
        props: Vec::new(),
    };
    while let Some(flag) = it.next() {
        let v = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--bootstrap" => a.bootstrap = v,
            "--topic" => a.topic = v,
            "--records" => a.records = v.parse().expect("--records"),
            "--linger-ms" => a.linger_ms = v.parse().expect("--linger-ms"),
            "--compression" => a.compression = v,
            "--prop" => {
                let (k, v) = v.split_once('=').expect("--prop key=value");
                a.props.push((k.to_owned(), v.to_owned()));
            }
            other => panic!("unknown flag {other}"),
        }
    }
    a
}

async fn produce(a: &Args) {
    let linger = a.linger_ms.to_string();
    let mut props: Vec<(&str, &str)> = vec![
        ("bootstrap.servers", a.bootstrap.as_str()),
        ("acks", "all"),
        ("enable.idempotence", "true"),
        ("linger.ms", linger.as_str()),
        ("compression.type", a.compression.as_str()),
    ];
    props.extend(a.props.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let p = Producer::from_properties(props).await.expect("producer");
    let value = [0x5au8; 100];
    // Warm-up: connections, metadata, producer id.
    p.send(ProducerRecord::new(&a.topic).with_value(&value))
        .await
        .expect("send")
        .await
        .expect("delivery");
    let start = Instant::now();
    let mut pending = Vec::with_capacity(65_536);
    for _ in 0..a.records {
        pending.push(
            p.send(ProducerRecord::new(&a.topic).with_value(&value))
                .await
                .expect("send"),
        );
        if pending.len() == 65_536 {
            for f in pending.drain(..) {
                f.await.expect("delivery");
            }
        }
    }
    for f in pending {
        f.await.expect("delivery");
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "client=exactly mode=produce records={} secs={secs:.3} rate={:.1}",
        a.records,
        a.records as f64 / secs
    );
    p.close(Duration::from_secs(10)).await.expect("close");
}

async fn consume(a: &Args) {
    let group = format!("exactly-consume-{}", std::process::id());
    let mut props: Vec<(&str, &str)> = vec![
        ("bootstrap.servers", a.bootstrap.as_str()),
        ("group.id", group.as_str()),
        ("auto.offset.reset", "earliest"),
        ("isolation.level", "read_committed"),
        ("enable.auto.commit", "false"),
    ];
    props.extend(a.props.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let mut c = Consumer::from_properties(props).await.expect("consumer");
    c.subscribe(&[a.topic.as_str()]).expect("subscribe");
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut got = 0u64;
    let mut start = None;
    while got < a.records {
        assert!(Instant::now() < deadline, "read {got} of {}", a.records);
        if let Polled::Records(rs) = c.poll(Duration::from_millis(100)).await.expect("poll") {
            if !rs.is_empty() {
                start.get_or_insert_with(Instant::now);
            }
            for r in rs.iter() {
                std::hint::black_box(r.value());
                got += 1;
            }
        }
    }
    let secs = start.map_or(0.0, |s| s.elapsed().as_secs_f64());
    println!(
        "client=exactly mode=consume records={got} secs={secs:.3} rate={:.1}",
        got as f64 / secs
    );
    let _ = c.close().await;
}

fn main() {
    let a = args();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    match a.mode.as_str() {
        "produce" => rt.block_on(produce(&a)),
        "consume" => rt.block_on(consume(&a)),
        m => panic!("unknown mode {m:?}: produce|consume"),
    }
}
