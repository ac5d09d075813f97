//! rust-rdkafka (librdkafka) peer programs of `cargo xtask bench` (issue 15).
//! Each mode prints one result line on success and exits non-zero on any
//! failed delivery or error:
//!
//! - `produce --bootstrap B --topic T --records N --linger-ms L --compression C`:
//!   idempotent, acks=all, 100-byte values, no key; every delivery report
//!   is checked. Prints `client=rdkafka mode=produce records= secs= rate=`,
//!   the rate over the time from the first send to the last report.
//! - `consume --bootstrap B --topic T --records N`: a fresh group,
//!   read_committed, earliest; `rate=` over the time from the first record
//!   to the N-th.
//! - `txn --bootstrap B --topic T --k K --seconds S`: begin, K sends,
//!   commit, in a loop after a one-second warm-up, as
//!   `benches/examples/txn_loop.rs` does. Prints `client=rdkafka k= txns=
//!   secs= tps= commit_p50_ms= commit_p99_ms=`.
//! - `cpu --bootstrap B --records N`: the producer CPU workload of
//!   `benches/examples/producer_cpu.rs` against the external null broker
//!   (`null_broker` example): 16-byte keys, 100-byte values, 3 partitions,
//!   idempotent, acks=all, 5 in flight, linger 5 ms, batch 1 MB. Prints
//!   `client=rdkafka mode=cpu records= secs= rate= cpu_us_per_msg=`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::ClientContext;

#[derive(Default)]
struct Counting {
    ok: AtomicU64,
    failed: AtomicU64,
}

impl ClientContext for Counting {}

impl ProducerContext for Counting {
    type DeliveryOpaque = ();
    fn delivery(&self, r: &DeliveryResult<'_>, _: ()) {
        match r {
            Ok(_) => self.ok.fetch_add(1, Ordering::Relaxed),
            Err((e, _)) => {
                if self.failed.fetch_add(1, Ordering::Relaxed) == 0 {
                    eprintln!("delivery failed: {e}");
                }
                0
            }
        };
    }
}

struct Args {
    mode: String,
    bootstrap: String,
    topic: String,
    records: u64,
    linger_ms: u64,
    compression: String,
    k: usize,
    seconds: f64,
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
        k: 1,
        seconds: 5.0,
    };
    while let Some(flag) = it.next() {
        let v = it
            .next()
            .unwrap_or_else(|| die(&format!("{flag} needs a value")));
        let num = |v: &str| -> u64 { v.parse().unwrap_or_else(|_| die(&format!("{flag} {v}"))) };
        match flag.as_str() {
            "--bootstrap" => a.bootstrap = v,
            "--topic" => a.topic = v,
            "--records" => a.records = num(&v),
            "--linger-ms" => a.linger_ms = num(&v),
            "--compression" => a.compression = v,
            "--k" => a.k = num(&v) as usize,
            "--seconds" => a.seconds = v.parse().unwrap_or_else(|_| die("--seconds")),
            other => die(&format!("unknown flag {other}")),
        }
    }
    a
}

fn die(msg: &str) -> ! {
    eprintln!("{msg}");
    std::process::exit(1)
}

fn ok<T>(r: Result<T, KafkaError>, what: &str) -> T {
    r.unwrap_or_else(|e| die(&format!("{what}: {e}")))
}

fn process_cpu() -> Duration {
    // SAFETY: getrusage fills the struct given.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Sends one record, polling while the local queue is full.
fn send(p: &BaseProducer<Counting>, mut rec: BaseRecord<'_, [u8], [u8]>) {
    loop {
        match p.send(rec) {
            Ok(()) => return,
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                rec = r;
                p.poll(Duration::from_millis(1));
            }
            Err((e, _)) => die(&format!("send: {e}")),
        }
    }
}

fn wait_all(p: &BaseProducer<Counting>, n: u64) {
    let c = p.context();
    while c.ok.load(Ordering::Relaxed) + c.failed.load(Ordering::Relaxed) < n {
        p.poll(Duration::from_millis(100));
    }
    let failed = c.failed.load(Ordering::Relaxed);
    if failed > 0 {
        die(&format!("{failed} deliveries failed"));
    }
}

fn produce(a: &Args) {
    let p: BaseProducer<Counting> = ok(
        ClientConfig::new()
            .set("bootstrap.servers", &a.bootstrap)
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .set("linger.ms", a.linger_ms.to_string())
            .set("compression.type", &a.compression)
            .create_with_context(Counting::default()),
        "producer",
    );
    let value = [0x5au8; 100];
    send(&p, BaseRecord::to(&a.topic).payload(&value[..]));
    wait_all(&p, 1);
    let start = Instant::now();
    for _ in 0..a.records {
        send(&p, BaseRecord::to(&a.topic).payload(&value[..]));
        p.poll(Duration::ZERO);
    }
    wait_all(&p, a.records + 1);
    let secs = start.elapsed().as_secs_f64();
    println!(
        "client=rdkafka mode=produce records={} secs={secs:.3} rate={:.1}",
        a.records,
        a.records as f64 / secs
    );
}

fn consume(a: &Args) {
    let group = format!("rdkafka-consume-{}", std::process::id());
    let c: BaseConsumer = ok(
        ClientConfig::new()
            .set("bootstrap.servers", &a.bootstrap)
            .set("group.id", &group)
            .set("isolation.level", "read_committed")
            .set("auto.offset.reset", "earliest")
            .set("enable.auto.commit", "false")
            .create(),
        "consumer",
    );
    ok(c.subscribe(&[a.topic.as_str()]), "subscribe");
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut got = 0u64;
    let mut start = None;
    while got < a.records {
        if Instant::now() > deadline {
            die(&format!("read {got} of {} records", a.records));
        }
        match c.poll(Duration::from_millis(100)) {
            None => {}
            Some(Ok(m)) => {
                std::hint::black_box(m.payload());
                start.get_or_insert_with(Instant::now);
                got += 1;
            }
            Some(Err(e)) => die(&format!("poll: {e}")),
        }
    }
    let secs = start.map_or(0.0, |s| s.elapsed().as_secs_f64());
    println!(
        "client=rdkafka mode=consume records={got} secs={secs:.3} rate={:.1}",
        got as f64 / secs
    );
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize].as_secs_f64() * 1e3
}

fn txn(a: &Args) {
    let id = format!("rdkafka-txn-{}", std::process::id());
    let p: BaseProducer<Counting> = ok(
        ClientConfig::new()
            .set("bootstrap.servers", &a.bootstrap)
            .set("transactional.id", &id)
            .create_with_context(Counting::default()),
        "producer",
    );
    let t = Duration::from_secs(30);
    ok(p.init_transactions(t).map_err(KafkaError::from), "init");
    let value = [0x5au8; 100];
    let start = Instant::now();
    let warm_end = start + Duration::from_secs(1);
    let end = warm_end + Duration::from_secs_f64(a.seconds);
    let mut measured_from = None;
    let mut commits = Vec::new();
    let mut sent = 0u64;
    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        if now >= warm_end && measured_from.is_none() {
            measured_from = Some(now);
        }
        ok(p.begin_transaction().map_err(KafkaError::from), "begin");
        for _ in 0..a.k {
            send(&p, BaseRecord::to(&a.topic).payload(&value[..]));
        }
        sent += a.k as u64;
        let t1 = Instant::now();
        ok(p.commit_transaction(t).map_err(KafkaError::from), "commit");
        let t2 = Instant::now();
        // commit_transaction flushes: every report is in by now.
        p.poll(Duration::ZERO);
        wait_all(&p, sent);
        if measured_from.is_some() {
            commits.push(t2 - t1);
        }
    }
    let secs = measured_from.map_or(0.0, |m| m.elapsed().as_secs_f64());
    commits.sort_unstable();
    println!(
        "client=rdkafka k={} txns={} secs={secs:.3} tps={:.1} commit_p50_ms={:.2} commit_p99_ms={:.2}",
        a.k,
        commits.len(),
        commits.len() as f64 / secs,
        percentile(&commits, 0.5),
        percentile(&commits, 0.99)
    );
}

fn cpu(a: &Args) {
    let p: BaseProducer<Counting> = ok(
        ClientConfig::new()
            .set("bootstrap.servers", &a.bootstrap)
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .set("max.in.flight.requests.per.connection", "5")
            .set("linger.ms", "5")
            .set("batch.size", "1048576")
            .create_with_context(Counting::default()),
        "producer",
    );
    let value = [0x5au8; 100];
    send(&p, BaseRecord::to("bench").payload(&value[..]));
    wait_all(&p, 1);
    let cpu0 = process_cpu();
    let start = Instant::now();
    let mut key = *b"key-000000000000";
    for i in 0..a.records {
        let mut x = i;
        for b in key[4..].iter_mut().rev() {
            *b = b'0' + (x % 10) as u8;
            x /= 10;
        }
        send(
            &p,
            BaseRecord::to("bench").key(&key[..]).payload(&value[..]),
        );
        p.poll(Duration::ZERO);
    }
    wait_all(&p, a.records + 1);
    let secs = start.elapsed().as_secs_f64();
    let cpu = process_cpu() - cpu0;
    println!(
        "client=rdkafka mode=cpu records={} secs={secs:.3} rate={:.1} cpu_us_per_msg={:.3}",
        a.records,
        a.records as f64 / secs,
        cpu.as_secs_f64() * 1e6 / a.records as f64
    );
}

fn main() {
    let a = args();
    match a.mode.as_str() {
        "produce" => produce(&a),
        "consume" => consume(&a),
        "txn" => txn(&a),
        "cpu" => cpu(&a),
        m => die(&format!("unknown mode {m:?}: produce|consume|txn|cpu")),
    }
}
