//! The suites of `cargo xtask bench` beside `txn` (issue 15), each on one
//! broker (Kafka 4.3.1 from the harness, `transaction.version=2`), all of a
//! suite's contenders in one invocation, paired and alternating
//! (`bench_peers`):
//!
//! - `producer`: records/s delivered (every delivery checked; ours and
//!   rust-rdkafka/franz-go fail on one failed record, Java's
//!   `ProducerPerformance` counts them), idempotent, acks=all, 100-byte
//!   values, at linger 0 and 5 ms, 1 and 3 partitions, compression none,
//!   lz4, zstd; a fresh topic per configuration, deleted after it.
//! - `consumer`: read_committed records/s over one topic of N x 100 B in 3
//!   partitions, plain; and over a topic of N committed records with one
//!   aborted transaction after every three committed ones (10,000 records
//!   each). Every reader a process of its own, in a fresh group.
//! - `cpu`: the producer's CPU per message against the null broker
//!   (`benches/examples/null_broker.rs`, one external process, its thread
//!   on CPU 1), ours (`producer_cpu`) against rust-rdkafka (`taskset -c 0`),
//!   the process's user+sys over the sending window; the broker's counts
//!   are checked after every run.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use exactly::{Producer, ProducerRecord};
use exactly_protocol_tests::{process, Broker, BrokerConfig};

use crate::bench_peers::{field, run_measured, Contender, Programs, Reading, Table};

const TIMEOUT: Duration = Duration::from_secs(900);

/// Java tools' JVM options (`kafka-run-class.sh`'s for tools).
const JVM: &[&str] = &[
    "-Xmx512M",
    "-server",
    "-XX:+UseG1GC",
    "-Djava.awt.headless=true",
];

fn line_rate(what: &str, cmd: Command) -> Result<Reading> {
    let f = run_measured(what, cmd, TIMEOUT)?;
    let rate =
        field(&f.stdout, "rate").with_context(|| format!("{what}: no rate in {}", f.stdout))?;
    Ok(Reading { rate, cpu: f.cpu })
}

/// The last `N records/sec` of `ProducerPerformance`'s output.
fn java_producer_rate(out: &str) -> Option<f64> {
    let line = out.lines().rev().find(|l| l.contains("records sent"))?;
    let words: Vec<&str> = line.split_whitespace().collect();
    let i = words.iter().position(|w| *w == "records/sec")?;
    words.get(i.checked_sub(1)?)?.parse().ok()
}

/// `ConsumerPerformance`'s `fetch.nMsg.sec` (header line, then values).
fn java_consumer_rate(out: &str, n: u64) -> Option<f64> {
    let lines: Vec<&str> = out.lines().collect();
    let h = lines.iter().position(|l| l.contains("fetch.nMsg.sec"))?;
    let names: Vec<&str> = lines[h].split(',').map(str::trim).collect();
    let values: Vec<&str> = lines.get(h + 1)?.split(',').map(str::trim).collect();
    let get = |name: &str| -> Option<f64> {
        values
            .get(names.iter().position(|x| *x == name)?)?
            .parse()
            .ok()
    };
    if get("data.consumed.in.nMsg")? < n as f64 {
        return None;
    }
    get("fetch.nMsg.sec")
}

/// `cargo xtask bench producer`.
pub(crate) fn producer(p: &Programs, table: &mut Table, records: u64, rounds: usize) -> Result<()> {
    let broker = Broker::start(BrokerConfig::default())?;
    let b = broker.bootstrap();
    let n = records.to_string();
    let mut case_no = 0;
    for linger in ["0", "5"] {
        for partitions in [1, 3] {
            for compression in ["none", "lz4", "zstd"] {
                case_no += 1;
                let topic = format!("produce-{case_no}-p{partitions}-l{linger}-{compression}");
                broker.create_topic(&topic, partitions)?;
                let case = format!("linger {linger} ms, {partitions} partition(s), {compression}");
                let peer_args = |c: &mut Command| {
                    c.args(["produce", "--bootstrap", &b, "--topic", &topic])
                        .args(["--records", &n, "--linger-ms", linger])
                        .args(["--compression", compression]);
                };
                let mut contenders = vec![
                    Contender::new("exactly", || {
                        let mut c = Command::new(&p.e2e);
                        peer_args(&mut c);
                        line_rate("exactly produce", c)
                    }),
                    Contender::new("Java", || {
                        let args: Vec<String> = [
                            "--topic",
                            &topic,
                            "--num-records",
                            &n,
                            "--record-size",
                            "100",
                            "--throughput",
                            "-1",
                            "--producer-props",
                        ]
                        .iter()
                        .map(|s| (*s).to_owned())
                        .chain([
                            format!("bootstrap.servers={b}"),
                            "acks=all".into(),
                            "enable.idempotence=true".into(),
                            format!("linger.ms={linger}"),
                            format!("compression.type={compression}"),
                        ])
                        .collect();
                        let cmd = broker.java().tool_command(
                            "org.apache.kafka.tools.ProducerPerformance",
                            &args,
                            JVM,
                        )?;
                        let f = run_measured("ProducerPerformance", cmd, TIMEOUT)?;
                        let rate = java_producer_rate(&f.stdout)
                            .with_context(|| format!("ProducerPerformance said {}", f.stdout))?;
                        Ok(Reading { rate, cpu: f.cpu })
                    }),
                    Contender::new("rdkafka", || {
                        let mut c = Command::new(&p.rdk);
                        peer_args(&mut c);
                        line_rate("rdkafka produce", c)
                    }),
                    Contender::new("franz-go", || {
                        let mut c = Command::new(&p.franz);
                        peer_args(&mut c);
                        line_rate("franz-go produce", c)
                    }),
                ];
                table.case("producer", &case, rounds, &mut contenders)?;
                drop(contenders);
                broker.delete_topic(&topic)?;
            }
        }
    }
    Ok(())
}

/// Writes `n` records of 100 B, plain, or in transactions of `per_txn`
/// with one aborted after every three committed (then `n` are committed).
async fn fill(bootstrap: &str, topic: &str, n: u64, aborted: bool) -> Result<()> {
    let per_txn = 10_000u64;
    let value = [b'x'; 100];
    let mut props = vec![
        ("bootstrap.servers", bootstrap.to_owned()),
        ("acks", "all".to_owned()),
        ("linger.ms", "5".to_owned()),
    ];
    if aborted {
        props.push(("transactional.id", format!("bench-fill-{topic}")));
    }
    let p = Producer::from_properties(props).await?;
    if !aborted {
        for _ in 0..n {
            drop(
                p.send(ProducerRecord::new(topic).with_value(&value))
                    .await?,
            );
        }
        p.flush().await?;
    } else {
        p.init_transactions().await?;
        let mut committed = 0u64;
        let mut txn = 0u64;
        while committed < n {
            let abort = txn % 4 == 3;
            let k = if abort {
                per_txn
            } else {
                per_txn.min(n - committed)
            };
            p.begin_transaction().await?;
            for _ in 0..k {
                drop(
                    p.send(ProducerRecord::new(topic).with_value(&value))
                        .await?,
                );
            }
            if abort {
                p.abort_transaction().await?;
            } else {
                p.commit_transaction().await?;
                committed += k;
            }
            txn += 1;
        }
    }
    p.close(Duration::from_secs(30)).await?;
    Ok(())
}

/// `cargo xtask bench consumer`.
pub(crate) fn consumer(p: &Programs, table: &mut Table, records: u64, rounds: usize) -> Result<()> {
    let broker = Broker::start(BrokerConfig::default())?;
    let b = broker.bootstrap();
    let rt = tokio::runtime::Runtime::new()?;
    let n = records.to_string();
    let cfg = broker.java().config_file(
        "bench-read-committed.properties",
        &[("isolation.level", "read_committed")],
    )?;
    let mut group = 0u32;
    for aborted in [false, true] {
        let topic = if aborted {
            "consume-aborted"
        } else {
            "consume-plain"
        };
        broker.create_topic(topic, 3)?;
        let t = Instant::now();
        rt.block_on(fill(&b, topic, records, aborted))?;
        eprintln!(
            "==> {topic}: {records} committed records written in {:.1} s",
            t.elapsed().as_secs_f64()
        );
        let case = format!(
            "{records} x 100 B, 3 partitions{}",
            if aborted {
                ", 1 aborted txn per 3 committed"
            } else {
                ""
            }
        );
        let peer_args = |c: &mut Command| {
            c.args([
                "consume",
                "--bootstrap",
                &b,
                "--topic",
                topic,
                "--records",
                &n,
            ]);
        };
        // A first read warms the broker's page cache; not counted.
        let mut c = Command::new(&p.e2e);
        peer_args(&mut c);
        line_rate("warm-up read", c)?;
        let mut contenders = vec![
            Contender::new("exactly", || {
                let mut c = Command::new(&p.e2e);
                peer_args(&mut c);
                line_rate("exactly consume", c)
            }),
            Contender::new("Java", || {
                group += 1;
                let args: Vec<String> = [
                    "--bootstrap-server",
                    &b,
                    "--topic",
                    topic,
                    "--num-records",
                    &n,
                    "--group",
                    &format!("java-consume-{group}"),
                    "--timeout",
                    "60000",
                    "--command-config",
                ]
                .iter()
                .map(|s| (*s).to_owned())
                .chain([cfg.display().to_string()])
                .collect();
                let cmd = broker.java().tool_command(
                    "org.apache.kafka.tools.ConsumerPerformance",
                    &args,
                    JVM,
                )?;
                let f = run_measured("ConsumerPerformance", cmd, TIMEOUT)?;
                let rate = java_consumer_rate(&f.stdout, records)
                    .with_context(|| format!("ConsumerPerformance said {}", f.stdout))?;
                Ok(Reading { rate, cpu: f.cpu })
            }),
            Contender::new("rdkafka", || {
                let mut c = Command::new(&p.rdk);
                peer_args(&mut c);
                line_rate("rdkafka consume", c)
            }),
            Contender::new("franz-go", || {
                let mut c = Command::new(&p.franz);
                peer_args(&mut c);
                line_rate("franz-go consume", c)
            }),
        ];
        table.case("consumer", &case, rounds, &mut contenders)?;
    }
    Ok(())
}

/// The external null broker: its process and its report line.
struct NullBrokerProcess {
    child: std::process::Child,
    out: BufReader<std::process::ChildStdout>,
    addr: String,
}

impl NullBrokerProcess {
    fn start(p: &Programs) -> Result<Self> {
        let mut cmd = Command::new(&p.null_broker);
        cmd.args(["3", "1"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = process::spawn_tied(cmd, "null broker")?;
        let mut out = BufReader::new(child.stdout.take().context("null broker stdout")?);
        let mut line = String::new();
        out.read_line(&mut line)?;
        let addr = line
            .trim()
            .strip_prefix("addr=")
            .with_context(|| format!("null broker said {line:?}"))?
            .to_owned();
        Ok(NullBrokerProcess { child, out, addr })
    }

    /// Records the broker has been given so far.
    fn records(&mut self) -> Result<u64> {
        let stdin = self.child.stdin.as_mut().context("null broker stdin")?;
        stdin.write_all(b"\n")?;
        stdin.flush()?;
        let mut line = String::new();
        self.out.read_line(&mut line)?;
        field(&line, "records")
            .map(|r| r as u64)
            .with_context(|| format!("null broker said {line:?}"))
    }
}

impl Drop for NullBrokerProcess {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

/// `cargo xtask bench cpu`.
pub(crate) fn cpu(p: &Programs, table: &mut Table, records: u64, rounds: usize) -> Result<()> {
    let nb = std::cell::RefCell::new(NullBrokerProcess::start(p)?);
    let addr = nb.borrow().addr.clone();
    let n = records.to_string();
    // Each run must have delivered its records (and one warm-up record).
    let checked = |what: &str, cmd: Command| -> Result<Reading> {
        let before = nb.borrow_mut().records()?;
        let f = run_measured(what, cmd, TIMEOUT)?;
        let after = nb.borrow_mut().records()?;
        if after - before != records + 1 {
            bail!(
                "{what}: the null broker got {} records, not {}",
                after - before,
                records + 1
            );
        }
        let rate = field(&f.stdout, "rate").context("no rate")?;
        let per = field(&f.stdout, "cpu_us_per_msg").context("no cpu_us_per_msg")?;
        Ok(Reading {
            rate,
            cpu: per * records as f64 / 1e6,
        })
    };
    let mut contenders = vec![
        Contender::new("exactly", || {
            let mut c = Command::new(&p.producer_cpu);
            c.arg(&n).arg(format!("--bootstrap={addr}"));
            checked("exactly producer_cpu", c)
        }),
        Contender::new("rdkafka", || {
            let mut c = Command::new("taskset");
            c.args(["-c", "0"]).arg(&p.rdk);
            c.args(["cpu", "--bootstrap", &addr, "--records", &n]);
            checked("rdkafka cpu", c)
        }),
    ];
    let case = format!("{records} x 100 B vs the null broker, CPU = user+sys while sending");
    table.case("cpu", &case, rounds, &mut contenders)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_java_tools() {
        let out = "100 records sent, 20.0 records/sec (0.00 MB/sec)\n\
                   1000 records sent, 1234.5 records/sec (0.12 MB/sec), 3.0 ms avg latency\n";
        assert_eq!(java_producer_rate(out), Some(1234.5));
        let out = "start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec\n\
                   2026-01-01 00:00:00:000, 2026-01-01 00:00:01:000, 9.5, 9.5, 100, 100.0, 10, 990, 9.6, 101.0\n";
        assert_eq!(java_consumer_rate(out, 100), Some(101.0));
        assert_eq!(java_consumer_rate(out, 101), None);
    }
}
