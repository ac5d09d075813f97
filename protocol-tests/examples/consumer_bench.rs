//! Consumer throughput against the Java client on one broker, in one run
//! (issue 15): `read_committed`, a topic of N records of 100 B over 3
//! partitions written once by our producer (no key: the sticky partitioner
//! fills the partitions about evenly), then rounds that each
//! read it whole with every variant, in an order that rotates each round:
//!
//! - our consumer with its defaults;
//! - ours with `fetch.max.wait.ms=10`, and ours with
//!   `max.partition.fetch.bytes=10485760` (the tunings that hid issue 15);
//! - the Java client's `ConsumerPerformance` (kafka-tools, same jars as the
//!   broker), `isolation.level=read_committed`, its other settings default;
//! - optionally `--before <binary>`: this program built from another commit,
//!   run as "ours" with defaults (a before/after in the same run).
//!
//! With `--skew`, partition p gets p + 1 shares of the records (1:2:3), so
//! some partitions are read to their end while others still have records,
//! as a consumer of partitions written at different rates always is.
//!
//! Every reader is a process of its own in a fresh consumer group
//! (subscribe, then read N records); its CPU is the process's user+system
//! time as the kernel accounts it (JVM start-up and JIT included for Java).
//! The rate is records over the time from the group assignment to the
//! N-th record (Java's `fetch.nMsg.sec`, which also leaves the join out).
//!
//! ```sh
//! cargo run --release -p exactly-protocol-tests --example consumer_bench -- --records 3000000 --rounds 5
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::process::Command;
use std::time::{Duration, Instant};

use exactly_consumer::{Consumer, Polled, Rebalance};
use exactly_producer::{Producer, ProducerRecord};
use exactly_protocol_tests::{process, Broker, BrokerConfig};

const TOPIC: &str = "bench";

struct Args {
    records: u64,
    rounds: usize,
    partitions: i32,
    skew: bool,
    before: Option<String>,
    /// `--also name=binary`: more builds of this program to run with
    /// defaults.
    also: Vec<(String, String)>,
}

fn args() -> Args {
    let mut a = Args {
        records: 3_000_000,
        rounds: 5,
        partitions: 3,
        skew: false,
        before: None,
        also: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut v = || it.next().unwrap_or_else(|| panic!("{k} needs a value"));
        match k.as_str() {
            "--records" => a.records = v().parse().unwrap(),
            "--rounds" => a.rounds = v().parse().unwrap(),
            "--partitions" => a.partitions = v().parse().unwrap(),
            "--before" => a.before = Some(v()),
            "--skew" => a.skew = true,
            "--also" => {
                let v = v();
                let (name, bin) = v.split_once('=').expect("--also name=binary");
                a.also.push((name.to_owned(), bin.to_owned()));
            }
            _ => panic!("unknown argument {k}"),
        }
    }
    a
}

/// The child: `--child <bootstrap> <records> <group> [key=value ...]`.
/// Prints `RESULT <records> <seconds from assignment> <seconds in all>`.
fn child(mut it: impl Iterator<Item = String>) {
    let bootstrap = it.next().unwrap();
    let n: u64 = it.next().unwrap().parse().unwrap();
    let group = it.next().unwrap();
    let extra: Vec<(String, String)> = it
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap();
            (k.to_owned(), v.to_owned())
        })
        .collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let started = Instant::now();
        let mut props = vec![
            ("bootstrap.servers".to_owned(), bootstrap),
            ("group.id".to_owned(), group),
            ("auto.offset.reset".to_owned(), "earliest".to_owned()),
            ("isolation.level".to_owned(), "read_committed".to_owned()),
        ];
        props.extend(extra);
        let mut c = Consumer::from_properties(props).await.unwrap();
        c.subscribe(&[TOPIC]).unwrap();
        let mut assigned = None;
        let mut got = 0u64;
        let mut bytes = 0usize;
        // The longest wait for records once reading started, and when.
        let mut last = None::<Instant>;
        let mut gap = (Duration::ZERO, 0u64);
        let deadline = Instant::now() + Duration::from_secs(300);
        while got < n {
            assert!(Instant::now() < deadline, "only {got} of {n} records");
            match c.poll(Duration::from_secs(1)).await.unwrap() {
                Polled::Rebalance(Rebalance::Assigned(_)) => {
                    assigned.get_or_insert_with(Instant::now);
                }
                Polled::Rebalance(_) => {}
                Polled::Records(rs) => {
                    if !rs.is_empty() {
                        let now = Instant::now();
                        if let Some(l) = last {
                            if now - l > gap.0 {
                                gap = (now - l, got);
                            }
                        }
                        last = Some(now);
                    }
                    for r in rs.iter() {
                        bytes += r.value().map_or(0, |v| v.len());
                        got += 1;
                    }
                }
            }
        }
        let end = Instant::now();
        let from = assigned.unwrap_or(started);
        assert!(bytes > 0);
        println!(
            "RESULT {got} {:.4} {:.4} fetches={} longest wait {:.3} s after {} records",
            (end - from).as_secs_f64(),
            (end - started).as_secs_f64(),
            c.metrics().fetches,
            gap.0.as_secs_f64(),
            gap.1,
        );
        c.close().await.unwrap();
    });
}

/// Children's user and system CPU seconds so far (waited-for children
/// only).
fn children_cpu() -> (f64, f64) {
    // SAFETY: getrusage only writes into the struct we pass.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru);
        ru
    };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    (t(ru.ru_utime), t(ru.ru_stime))
}

/// CPU seconds (user, system) spent by the children reaped during `f`.
fn measured<T>(f: impl FnOnce() -> T) -> (T, (f64, f64)) {
    let (u0, s0) = children_cpu();
    let r = f();
    let (u1, s1) = children_cpu();
    (r, (u1 - u0, s1 - s0))
}

/// One reading: records/s from assignment to the last record, and CPU s.
#[derive(Debug, Clone, Copy)]
struct Reading {
    rate: f64,
    /// User and system seconds.
    cpu: (f64, f64),
}

enum Variant {
    Ours {
        binary: String,
        props: Vec<(&'static str, &'static str)>,
    },
    Java,
}

fn run_ours(binary: &str, bootstrap: &str, n: u64, group: &str, props: &[(&str, &str)]) -> Reading {
    let mut cmd = Command::new(binary);
    cmd.arg("--child")
        .arg(bootstrap)
        .arg(n.to_string())
        .arg(group)
        .args(props.iter().map(|(k, v)| format!("{k}={v}")))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped());
    let (out, cpu) = measured(|| {
        let child = process::spawn_tied(cmd, "consumer_bench child").unwrap();
        child.wait_with_output().unwrap()
    });
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with("RESULT "))
        .unwrap_or_else(|| panic!("child failed: {:?} {text}", out.status));
    let f: Vec<&str> = line.split_whitespace().collect();
    let got: f64 = f[1].parse().unwrap();
    let secs: f64 = f[2].parse().unwrap();
    eprintln!("    {line}");
    Reading {
        rate: got / secs,
        cpu,
    }
}

fn run_java(broker: &Broker, n: u64, group: &str) -> Reading {
    let java = broker.java();
    let config = java
        .config_file(
            "bench-consumer.properties",
            &[("isolation.level", "read_committed")],
        )
        .unwrap();
    let args: Vec<String> = [
        "--bootstrap-server",
        &broker.bootstrap(),
        "--topic",
        TOPIC,
        "--num-records",
        &n.to_string(),
        "--group",
        group,
        "--command-config",
        config.to_str().unwrap(),
        "--timeout",
        "60000",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let (run, cpu) = measured(|| {
        java.run(
            "org.apache.kafka.tools.ConsumerPerformance",
            &args,
            Duration::from_secs(300),
        )
        .unwrap()
    });
    // The header, then one line of values.
    let header = run
        .stdout
        .iter()
        .position(|l| l.contains("fetch.nMsg.sec"))
        .unwrap_or_else(|| panic!("no header: {run:?}"));
    let names: Vec<&str> = run.stdout[header].split(',').map(str::trim).collect();
    let values: Vec<&str> = run.stdout[header + 1].split(',').map(str::trim).collect();
    let get = |name: &str| -> f64 {
        let i = names.iter().position(|n| *n == name).unwrap();
        values[i].parse().unwrap()
    };
    let consumed = get("data.consumed.in.nMsg");
    assert!(consumed >= n as f64, "Java read {consumed} of {n}");
    eprintln!("    {}", run.stdout[header + 1]);
    Reading {
        rate: get("fetch.nMsg.sec"),
        cpu,
    }
}

fn fill(broker: &Broker, n: u64, partitions: i32, skew: bool) {
    // Under --skew, partition p gets p + 1 shares of the records.
    let pattern: Vec<i32> = (0..partitions)
        .flat_map(|p| std::iter::repeat_n(p, p as usize + 1))
        .collect();
    broker.create_topic(TOPIC, partitions).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let p = Producer::from_properties([
            ("bootstrap.servers", broker.bootstrap().as_str()),
            ("acks", "all"),
            ("linger.ms", "5"),
        ])
        .await
        .unwrap();
        let value = [b'x'; 100];
        let started = Instant::now();
        for i in 0..n {
            let mut r = ProducerRecord::new(TOPIC).with_value(&value);
            if skew {
                r = r.with_partition(pattern[i as usize % pattern.len()]);
            }
            drop(p.send(r).await.unwrap());
        }
        p.flush().await.unwrap();
        eprintln!(
            "wrote {n} records in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        p.close(Duration::from_secs(10)).await.unwrap();
        let mut c = Consumer::from_properties([("bootstrap.servers", broker.bootstrap().as_str())])
            .await
            .unwrap();
        let tps: Vec<_> = (0..partitions)
            .map(|i| exactly_consumer::TopicPartition::new(TOPIC, i))
            .collect();
        let ends = c.end_offsets(&tps).await.unwrap();
        eprintln!("records per partition: {ends:?}");
    });
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

fn main() {
    let mut it = std::env::args().skip(1).peekable();
    if it.peek().map(String::as_str) == Some("--child") {
        it.next();
        return child(it);
    }
    let a = args();
    let me = std::env::current_exe()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let broker = Broker::start(BrokerConfig::default()).unwrap_or_else(|e| panic!("{e}"));
    fill(&broker, a.records, a.partitions, a.skew);
    let mut variants: Vec<(String, Variant)> = vec![
        (
            "exactly, defaults".into(),
            Variant::Ours {
                binary: me.clone(),
                props: vec![],
            },
        ),
        (
            "exactly, fetch.max.wait.ms=10".into(),
            Variant::Ours {
                binary: me.clone(),
                props: vec![("fetch.max.wait.ms", "10")],
            },
        ),
        (
            "exactly, max.partition.fetch.bytes=10485760".into(),
            Variant::Ours {
                binary: me.clone(),
                props: vec![("max.partition.fetch.bytes", "10485760")],
            },
        ),
        ("Java ConsumerPerformance".into(), Variant::Java),
    ];
    if let Some(b) = &a.before {
        variants.push((
            "exactly before the fix, defaults".into(),
            Variant::Ours {
                binary: b.clone(),
                props: vec![],
            },
        ));
    }
    for (name, bin) in &a.also {
        variants.push((
            format!("exactly {name}, defaults"),
            Variant::Ours {
                binary: bin.clone(),
                props: vec![],
            },
        ));
    }
    let java = variants
        .iter()
        .position(|(_, v)| matches!(v, Variant::Java))
        .unwrap();
    let mut readings: Vec<Vec<Reading>> = vec![Vec::new(); variants.len()];
    let mut group = 0;
    // A first read warms the broker's page cache and JIT; not counted.
    eprintln!("warm-up");
    run_ours(&me, &broker.bootstrap(), a.records, "warm", &[]);
    for round in 0..a.rounds {
        for k in 0..variants.len() {
            let i = (k + round) % variants.len();
            let (name, v) = &variants[i];
            group += 1;
            let g = format!("bench-{group}");
            eprintln!("round {round}: {name}");
            let r = match v {
                Variant::Ours { binary, props } => {
                    run_ours(binary, &broker.bootstrap(), a.records, &g, props)
                }
                Variant::Java => run_java(&broker, a.records, &g),
            };
            readings[i].push(r);
        }
    }
    println!(
        "\n{} records x 100 B, {} partitions{}, read_committed, {} rounds (median, min-max)\n",
        a.records,
        a.partitions,
        if a.skew { " (1:2:3)" } else { "" },
        a.rounds
    );
    println!("| reader | records/s | x Java (paired) | process CPU s (user + sys) |");
    println!("|---|---|---|---|");
    for (i, (name, _)) in variants.iter().enumerate() {
        let mut rates: Vec<f64> = readings[i].iter().map(|r| r.rate).collect();
        let mut user: Vec<f64> = readings[i].iter().map(|r| r.cpu.0).collect();
        let mut sys: Vec<f64> = readings[i].iter().map(|r| r.cpu.1).collect();
        let mut ratios: Vec<f64> = readings[i]
            .iter()
            .zip(&readings[java])
            .map(|(r, j)| r.rate / j.rate)
            .collect();
        let (lo, hi) = (
            rates.iter().copied().fold(f64::MAX, f64::min),
            rates.iter().copied().fold(0.0, f64::max),
        );
        let (rlo, rhi) = (
            ratios.iter().copied().fold(f64::MAX, f64::min),
            ratios.iter().copied().fold(0.0, f64::max),
        );
        println!(
            "| {name} | {:.2}M ({:.2}-{:.2}M) | {:.2} ({:.2}-{:.2}) | {:.2} + {:.2} |",
            median(&mut rates) / 1e6,
            lo / 1e6,
            hi / 1e6,
            median(&mut ratios),
            rlo,
            rhi,
            median(&mut user),
            median(&mut sys),
        );
    }
}
