//! Issue 12 item 5, measured before building anything: what sessionless
//! Fetch (every request lists every partition; KIP-227 fetch sessions would
//! list only changed ones) costs a consumer of many partitions. One consumer
//! assigned 1,200 partitions on the real broker: bytes and requests per
//! second while idle at the log end, then the same while reading. Prints the
//! figures; `#[ignore]`d (a measurement, not a check):
//! `cargo test -p exactly-protocol-tests --test consumer_groups fetch_cost -- --ignored --nocapture`.

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
fn fetch_cost_of_many_partitions_without_sessions() {
    let _serial = crate::serial();
    let broker = Broker::shared(TransactionVersion::V2).unwrap_or_else(|e| panic!("{e}"));
    let bootstrap = broker.bootstrap();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    for parts in [12, 1_200] {
        let topic = unique_topic("fetchcost");
        broker.create_topic(&topic, parts).expect("topic");
        rt.block_on(async {
            let mut c = Consumer::from_properties([
                ("bootstrap.servers", bootstrap.as_str()),
                ("auto.offset.reset", "earliest"),
            ])
            .await
            .unwrap();
            let tps: Vec<TopicPartition> =
                (0..parts).map(|p| TopicPartition::new(&topic, p)).collect();
            c.assign(&tps).unwrap();
            let _ = window(&mut c, 3).await; // positions, connections
            let (req, out, inn, cpu_idle, _) = window(&mut c, 10).await;
            println!(
                "{parts} partitions, idle 10 s: {req} requests, {} B/s out, {} B/s in, {:.1} B out per partition per request, CPU {:?} ({:.2}% of a core)",
                out / 10,
                inn / 10,
                out as f64 / req.max(1) as f64 / parts as f64,
                cpu_idle,
                cpu_idle.as_secs_f64() * 10.0
            );
            let p = Producer::from_properties([("bootstrap.servers", bootstrap.as_str()), ("linger.ms", "5")])
                .await
                .unwrap();
            let n = 60_000u64;
            let feed = tokio::spawn(async move {
                let t0 = Instant::now();
                for v in 0..n {
                    let s = v.to_string();
                    p.send(ProducerRecord::new(&topic).with_key(s.as_bytes()).with_value(s.as_bytes()))
                        .await
                        .unwrap();
                    if v % 100 == 99 {
                        // ~6,000 records/s for 10 s.
                        tokio::time::sleep_until((t0 + Duration::from_millis((v + 1) / 6)).into()).await;
                    }
                }
                p.close(Duration::from_secs(10)).await.unwrap();
            });
            let (req, out, inn, cpu_busy, records) = window(&mut c, 10).await;
            feed.await.unwrap();
            println!(
                "{parts} partitions, reading ~6,000 records/s for 10 s: {records} records, {req} requests, {} B/s out, {} B/s in, CPU {:?} (test process: consumer and producer)",
                out / 10,
                inn / 10,
                cpu_busy
            );
            c.close().await.unwrap();
        });
    }
}
