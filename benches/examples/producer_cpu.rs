//! Client CPU per message of the exactly producer against the null broker
//! (PERFORMANCE.md): 1,000,000 records, 100-byte values, 16-byte keys, 3
//! partitions, idempotent, acks=all, 5 requests in flight, linger 5 ms,
//! batch 1 MB. The client runs on CPU 0 (one thread: the user's send loop
//! and the producer's driver share a current-thread runtime), the broker on
//! CPU 1. Reports the process's user+sys CPU minus the broker thread's.
//!
//! ```sh
//! cargo run --release -p exactly-benches --example producer_cpu -- [records] [MODE] [--bootstrap=ADDR]
//! ```
//! `--partitions=N` gives the in-process null broker N partitions (default
//! 3): the producer core's cost per partition (1,200 partitions, see
//! BENCHMARKS.md).
//! With `--bootstrap=ADDR` the client uses an external null broker (the
//! `null_broker` example, as `cargo xtask bench cpu` runs it for ours and
//! rust-rdkafka alike) and the process's CPU is all the client's; the
//! record counts are then the external broker's to check. A last line
//! `client=exactly mode=cpu records=.. secs=.. rate=.. cpu_us_per_msg=..`
//! is for xtask.
//! MODE says how the deliveries are awaited (by default the loop drops the
//! futures and `flush` waits for, and reports, every delivery):
//! - `--await`: every future kept, `flush`, then each awaited in order;
//! - `--in-order`: every future kept and awaited in order, no `flush`;
//! - `--unordered`: every future pushed into a `FuturesUnordered`, drained
//!   after the last send;
//! - `--join-all`: `futures::future::join_all` of every future;
//! - `--callback`: `DeliveryFuture::on_delivery` with a closure that counts
//!   the deliveries (an `Arc` captured, so boxed per record), then `flush`;
//! - `--unordered-floor`: futures dropped and `flush`, then a
//!   `FuturesUnordered` of as many ready futures: what that structure costs
//!   by itself.

use std::time::{Duration, Instant};

use exactly_benches::null_broker::{pin_to_cpu, NullBroker};
use exactly_producer::{Producer, ProducerRecord};

fn process_cpu() -> (Duration, Duration, i64) {
    // SAFETY: getrusage fills the struct given.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    (tv(ru.ru_utime), tv(ru.ru_stime), ru.ru_maxrss)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n: u64 = args
        .iter()
        .find_map(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let external = args
        .iter()
        .find_map(|a| a.strip_prefix("--bootstrap="))
        .map(str::to_owned);
    let partitions: i32 = args
        .iter()
        .find_map(|a| a.strip_prefix("--partitions="))
        .map_or(3, |p| p.parse().expect("--partitions=N"));
    let mode = args
        .iter()
        .find(|a| a.starts_with("--") && !a.contains('='))
        .map_or("drop", |a| &a[2..])
        .to_owned();
    assert!(
        [
            "drop",
            "await",
            "in-order",
            "unordered",
            "join-all",
            "unordered-floor",
            "callback"
        ]
        .contains(&mode.as_str()),
        "unknown mode --{mode}"
    );
    let keep = !["drop", "unordered-floor", "callback"].contains(&mode.as_str());
    let delivered = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let broker = match &external {
        Some(_) => None,
        None => Some(NullBroker::start(partitions, Some(1)).expect("null broker")),
    };
    let addr = external
        .clone()
        .or_else(|| broker.as_ref().map(|b| b.addr().to_owned()))
        .unwrap_or_default();
    let broker_cpu = || broker.as_ref().map_or(Duration::ZERO, NullBroker::cpu);
    let pinned = pin_to_cpu(0);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let value = [0x5au8; 100];
    let (wall, user, sys, maxrss, client_broker_cpu) = rt.block_on(async {
        let producer = Producer::from_properties([
            ("bootstrap.servers", addr.as_str()),
            ("acks", "all"),
            ("enable.idempotence", "true"),
            ("max.in.flight.requests.per.connection", "5"),
            ("linger.ms", "5"),
            ("batch.size", "1048576"),
        ])
        .await
        .expect("producer");
        // Warm up: connections, metadata, producer id.
        producer
            .send(ProducerRecord::new("bench").with_value(&value))
            .await
            .expect("send")
            .await
            .expect("delivery");
        let broker_before = broker_cpu();
        let (u0, s0, _) = process_cpu();
        let started = Instant::now();
        let mut key = *b"key-000000000000";
        let mut pending = Vec::new();
        for i in 0..n {
            // 16-byte keys, all distinct: the last 12 bytes are i in decimal.
            let mut x = i;
            for b in key[4..].iter_mut().rev() {
                *b = b'0' + (x % 10) as u8;
                x /= 10;
            }
            let f = producer
                .send(
                    ProducerRecord::new("bench")
                        .with_key(&key)
                        .with_value(&value),
                )
                .await
                .expect("send");
            if keep {
                pending.push(f);
            } else if mode == "callback" {
                let delivered = delivered.clone();
                f.on_delivery(move |r| {
                    if r.is_ok() {
                        delivered.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                });
            }
        }
        match mode.as_str() {
            "drop" => producer.flush().await.expect("flush"),
            "callback" => {
                producer.flush().await.expect("flush");
                assert_eq!(
                    delivered.load(std::sync::atomic::Ordering::Relaxed),
                    n,
                    "every callback ran"
                );
            }
            "unordered-floor" => {
                // What a FuturesUnordered of n ready futures costs by itself.
                use futures_util::StreamExt;
                producer.flush().await.expect("flush");
                let mut all: futures_util::stream::FuturesUnordered<_> =
                    (0..n).map(std::future::ready).collect();
                while let Some(r) = all.next().await {
                    std::hint::black_box(r);
                }
            }
            "await" => {
                producer.flush().await.expect("flush");
                for f in pending {
                    f.await.expect("delivery");
                }
            }
            "in-order" => {
                for f in pending {
                    f.await.expect("delivery");
                }
            }
            "unordered" => {
                use futures_util::StreamExt;
                let mut all: futures_util::stream::FuturesUnordered<_> =
                    pending.into_iter().collect();
                while let Some(r) = all.next().await {
                    r.expect("delivery");
                }
            }
            "join-all" => {
                for r in futures_util::future::join_all(pending).await {
                    r.expect("delivery");
                }
            }
            _ => unreachable!(),
        }
        let wall = started.elapsed();
        let (u1, s1, rss) = process_cpu();
        let broker_cpu = broker_cpu().saturating_sub(broker_before);
        producer.close(Duration::from_secs(5)).await.expect("close");
        (wall, u1 - u0, s1 - s0, rss, broker_cpu)
    });
    let mut requests = 0;
    if let Some(broker) = broker {
        let records = broker.records();
        let ends = broker.end_offsets_total();
        requests = broker.produce_requests();
        let _ = broker.stop();
        assert_eq!(records, n + 1, "the broker must have every record");
        assert_eq!(ends as u64, n + 1);
    }
    let total = user + sys;
    let client = total.saturating_sub(client_broker_cpu);
    let per = |d: Duration| d.as_secs_f64() * 1e6 / n as f64;
    println!(
        "exactly producer vs null broker: {n} records (100 B values, 16 B keys, {partitions} partitions, idempotent, acks=all, in-flight 5, linger 5 ms, batch 1 MB), deliveries: {mode}"
    );
    println!("pinned: {pinned}; produce requests: {requests}");
    println!(
        "process user {:.3} s + sys {:.3} s = {:.3} s; null broker thread {:.3} s",
        user.as_secs_f64(),
        sys.as_secs_f64(),
        total.as_secs_f64(),
        client_broker_cpu.as_secs_f64()
    );
    println!(
        "client CPU {:.3} us/message (process {:.3} us/message); wall {:.3} s; max RSS {} MB",
        per(client),
        per(total),
        wall.as_secs_f64(),
        maxrss / 1024
    );
    println!(
        "client=exactly mode=cpu records={n} secs={:.3} rate={:.1} cpu_us_per_msg={:.3}",
        wall.as_secs_f64(),
        n as f64 / wall.as_secs_f64(),
        per(client)
    );
}
