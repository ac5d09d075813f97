//! Issue 12 item 5: what Fetch costs a consumer of many partitions with and
//! without KIP-227 fetch sessions (`enable.fetch.sessions`; without, every
//! request lists every partition, with, only changed ones). One consumer
//! assigned 1,200 partitions on the real broker: bytes and requests per
//! second and CPU while idle at the log end, then the same while reading
//! ~6,000 records/s produced by the Java `VerifiableProducer` (another
//! process, so the CPU measured is the consumer's alone). Prints the figures; `#[ignore]`d (a measurement, not a check):
//! `cargo test -p exactly-protocol-tests --test consumer_groups fetch_cost -- --ignored --nocapture`
//! (`EXACTLY_FETCH_COST_PARTS=12,1200` picks the partition counts,
//! `EXACTLY_FETCH_COST_SESSIONS=true` one mode).

use std::time::{Duration, Instant};

use exactly_consumer::{Consumer, Polled, TopicPartition};
use exactly_producer::{Producer, ProducerRecord};
use exactly_protocol_tests::{unique_topic, Broker, TransactionVersion};

/// CPU time (user + system) of this process so far.
fn cpu() -> Duration {
    // SAFETY: getrusage only writes the struct we pass.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let t = |v: libc::timeval| Duration::new(v.tv_sec as u64, v.tv_usec as u32 * 1000);
    t(u.ru_utime) + t(u.ru_stime)
}

async fn window(c: &mut Consumer, secs: u64) -> (u64, u64, u64, Duration, u64) {
    let m0 = c.client().metrics_snapshot();
    let c0 = cpu();
    let end = Instant::now() + Duration::from_secs(secs);
    let mut records = 0u64;
    while Instant::now() < end {
        if let Polled::Records(r) = c.poll(Duration::from_millis(200)).await.unwrap() {
            records += r.len() as u64;
        }
    }
    let m1 = c.client().metrics_snapshot();
    (
        m1.requests - m0.requests,
        m1.bytes_out - m0.bytes_out,
        m1.bytes_in - m0.bytes_in,
        cpu() - c0,
        records,
    )
}

#[test]
#[ignore = "a measurement (issue 12 item 5), not a check"]
fn fetch_cost_of_many_partitions_with_and_without_sessions() {
    let _serial = crate::serial();
    let broker = Broker::shared(TransactionVersion::V2).unwrap_or_else(|e| panic!("{e}"));
    let bootstrap = broker.bootstrap();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let parts_list: Vec<i32> = std::env::var("EXACTLY_FETCH_COST_PARTS")
        .unwrap_or_else(|_| "1200".into())
        .split(',')
        .map(|s| s.trim().parse().expect("a partition count"))
        .collect();
    for parts in parts_list {
        let modes =
            std::env::var("EXACTLY_FETCH_COST_SESSIONS").unwrap_or_else(|_| "false,true".into());
        for sessions in modes.split(',') {
            let topic = unique_topic("fetchcost");
            broker.create_topic(&topic, parts).expect("topic");
            rt.block_on(async {
                // Warm-up, outside the measurement: a freshly created topic
                // of 1,200 partitions takes the broker tens of seconds on
                // this machine before every partition takes writes (Produce
                // meanwhile answers NOT_LEADER_OR_FOLLOWER, and Fetch errors
                // make the consumer refresh metadata every second). One
                // record to each partition, every one acknowledged, then
                // read by the consumer.
                let t = Instant::now();
                let p = Producer::from_properties([
                    ("bootstrap.servers", bootstrap.as_str()),
                    ("linger.ms", "5"),
                ])
                .await
                .unwrap();
                let mut warm = Vec::new();
                for part in 0..parts {
                    warm.push(
                        p.send(ProducerRecord::new(&topic).with_partition(part).with_value(b"w"))
                            .await
                            .unwrap(),
                    );
                }
                for f in warm {
                    f.await.unwrap();
                }
                let mut c = Consumer::from_properties([
                    ("bootstrap.servers", bootstrap.as_str()),
                    ("auto.offset.reset", "earliest"),
                    ("enable.fetch.sessions", sessions),
                ])
                .await
                .unwrap();
                let tps: Vec<TopicPartition> =
                    (0..parts).map(|p| TopicPartition::new(&topic, p)).collect();
                c.assign(&tps).unwrap();
                let mut warmed = 0;
                while warmed < parts as usize {
                    if let Polled::Records(r) = c.poll(Duration::from_millis(200)).await.unwrap() {
                        warmed += r.len();
                    }
                }
                println!("{parts} partitions, sessions {sessions}: warm-up (every partition written and read) {:?}", t.elapsed());
                let _ = window(&mut c, 2).await;
                let m0 = c.metrics();
                let (req, out, inn, cpu_idle, _) = window(&mut c, 10).await;
                let m1 = c.metrics();
                println!(
                    "{parts} partitions, sessions {sessions}, idle 10 s: {req} requests ({} fetches), {} B/s out, {} B/s in, {:.1} B out per partition per request, CPU {:?} ({:.2}% of a core), partition errors {}",
                    m1.fetches - m0.fetches,
                    out / 10,
                    inn / 10,
                    out as f64 / req.max(1) as f64 / parts as f64,
                    cpu_idle,
                    cpu_idle.as_secs_f64() * 10.0,
                    m1.partition_errors - m0.partition_errors,
                );
                // Load from another process (the Java VerifiableProducer,
                // ~6,000 keyed records/s over every partition), so this
                // process's CPU is the consumer's alone. (Our producer in
                // this process could not keep that rate over 1,200
                // partitions: see BENCHMARKS.md.)
                let produce = 60_000u64;
                let java = broker.java();
                let t2 = topic.clone();
                let feed = std::thread::spawn(move || {
                    java.verifiable_producer_with(
                        &t2,
                        produce,
                        &["--throughput", "6000", "--repeating-keys", "60000"],
                        &[("linger.ms", "5")],
                        Duration::from_secs(180),
                    )
                });
                // The window starts with the first record (the JVM's
                // start-up is not the consumer's).
                let mut first = 0u64;
                let wait = Instant::now();
                while first == 0 && wait.elapsed() < Duration::from_secs(120) {
                    if let Polled::Records(r) = c.poll(Duration::from_millis(50)).await.unwrap() {
                        first += r.len() as u64;
                    }
                }
                let m0 = c.metrics();
                let (req, out, inn, cpu_busy, records) = window(&mut c, 8).await;
                let m1 = c.metrics();
                println!(
                    "{parts} partitions, sessions {sessions}, reading ~6,000 records/s for 8 s: {records} records ({}/s), {req} requests ({} fetches, {} held), {} B/s out, {} B/s in, CPU {:?} ({:.1}% of a core), session resets {}, partition errors {}",
                    records / 8,
                    m1.fetches - m0.fetches,
                    m1.fetches_held - m0.fetches_held,
                    out / 8,
                    inn / 8,
                    cpu_busy,
                    cpu_busy.as_secs_f64() * 100.0 / 8.0,
                    m1.fetch_session_resets - m0.fetch_session_resets,
                    m1.partition_errors - m0.partition_errors,
                );
                // The rest, so nothing is left unread.
                let t = Instant::now();
                let mut total = first + records;
                while total < produce && t.elapsed() < Duration::from_secs(60) {
                    if let Polled::Records(r) = c.poll(Duration::from_millis(200)).await.unwrap() {
                        total += r.len() as u64;
                    }
                }
                let report = feed.join().unwrap().expect("VerifiableProducer");
                println!(
                    "{parts} partitions, sessions {sessions}: {} acknowledged to the producer, consumer read {total}, the last {:?} after the window",
                    report.acked,
                    t.elapsed()
                );
                c.close().await.unwrap();
            });
        }
    }
}
