//! Serves the clients' metrics in the Prometheus text format, without an
//! HTTP library, against a real broker: a transactional producer writes a
//! few transactions to a topic (one of them aborted on purpose), a
//! read_committed consumer reads them back, and a tiny listener answers
//! every connection with the current text (the metric names are listed in
//! `exactly::metrics`).
//!
//! Run it against a broker (any Kafka 3.x/4.x on `--bootstrap`, or the
//! `EXACTLY_BOOTSTRAP` environment variable; `127.0.0.1:9092` by default;
//! `cargo xtask broker up` starts one):
//!
//! ```text
//! cargo run -p exactly --features metrics --example prometheus_metrics -- \
//!     --bootstrap 127.0.0.1:9092 --topic metrics-demo --listen 127.0.0.1:9464
//! curl -s 127.0.0.1:9464/metrics
//! ```
//!
//! Options: `--topic T` (created by the broker on first use, if it allows
//! that; partition 0 is written and read), `--transactions N` (default 5),
//! `--records N` per transaction (default 100), `--abort-every K` (every
//! K-th transaction is aborted; default 3, 0 for none), `--listen ADDR`,
//! `--once` (print the text to stdout after the demo and exit instead of
//! serving; the consumer keeps polling and exporting every 5 s otherwise).
//!
//! The recorder is `metrics-exporter-prometheus` built without its HTTP
//! server (`default-features = false`): the example renders the text itself.
//! protocol-tests' `producer_txn` includes this file and runs [`run_demo`]
//! and [`serve`] against its broker, so what is shown here is tested.

#![allow(dead_code)] // protocol-tests includes this file and uses a part

use std::time::Duration;

use exactly::consumer::{Consumer, Polled, TopicPartition};
use exactly::producer::{Producer, ProducerRecord};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

type Error = Box<dyn std::error::Error + Send + Sync>;

/// What the demo does.
#[derive(Debug, Clone)]
pub struct Demo {
    /// `bootstrap.servers`.
    pub bootstrap: String,
    /// The topic (partition 0 is used).
    pub topic: String,
    /// The producer's `transactional.id`.
    pub transactional_id: String,
    /// The `client` label (and `client.id`) of the producer is
    /// `{client}-producer`, of the consumer `{client}-consumer`.
    pub client: String,
    /// Transactions to run.
    pub transactions: u32,
    /// Records per transaction.
    pub records: u32,
    /// Every `abort_every`-th transaction is aborted (0: none).
    pub abort_every: u32,
}

/// What the demo did, for comparing with the exported numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Done {
    /// Transactions committed.
    pub committed: u64,
    /// Transactions aborted.
    pub aborted: u64,
    /// Records sent (acknowledged) in all transactions.
    pub records_sent: u64,
    /// Records of the committed transactions.
    pub records_committed: u64,
    /// Records the read_committed consumer received.
    pub consumed: u64,
}

/// Installs the Prometheus recorder as the global `metrics` recorder.
pub fn install() -> Result<PrometheusHandle, Error> {
    Ok(PrometheusBuilder::new().install_recorder()?)
}

/// Answers every connection on `listener` with the current text (any
/// request, any path: this is a scrape target, not a web server).
pub async fn serve(listener: tokio::net::TcpListener, handle: PrometheusHandle) {
    while let Ok((mut socket, _)) = listener.accept().await {
        let text = handle.render();
        tokio::spawn(async move {
            let mut request = [0u8; 1024];
            let _ = socket.read(&mut request).await;
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                text.len()
            );
            let _ = socket.write_all(head.as_bytes()).await;
            let _ = socket.write_all(text.as_bytes()).await;
        });
    }
}

/// Runs the transactions, then reads partition 0 read_committed from the
/// start until every committed record arrived and the consumer's lag is 0
/// (or 30 s passed). Exports both clients' metrics on the way and at the
/// end. Returns the consumer (still assigned) with what was done.
pub async fn run_demo(demo: &Demo) -> Result<(Consumer, Done), Error> {
    let producer_client = format!("{}-producer", demo.client);
    let consumer_client = format!("{}-consumer", demo.client);
    let producer = Producer::from_properties([
        ("bootstrap.servers", demo.bootstrap.as_str()),
        ("transactional.id", demo.transactional_id.as_str()),
        ("client.id", producer_client.as_str()),
        ("linger.ms", "5"),
    ])
    .await?;
    producer.init_transactions().await?;
    let mut done = Done::default();
    for t in 1..=demo.transactions {
        producer.begin_transaction().await?;
        for i in 0..demo.records {
            let value = format!("t{t}-{i}");
            // The delivery futures are dropped: the commit (or the flush
            // before an abort) waits for every record.
            let delivery = producer
                .send(
                    ProducerRecord::new(&demo.topic)
                        .with_partition(0)
                        .with_value(value.as_bytes()),
                )
                .await?;
            drop(delivery);
        }
        done.records_sent += u64::from(demo.records);
        if demo.abort_every > 0 && t % demo.abort_every == 0 {
            // Sent and acknowledged, then aborted: read_committed readers
            // never see these records.
            producer.flush().await?;
            producer.abort_transaction().await?;
            done.aborted += 1;
        } else {
            producer.commit_transaction().await?;
            done.committed += 1;
            done.records_committed += u64::from(demo.records);
        }
        exactly::metrics::export_producer(&producer_client, &producer);
    }
    producer.close(Duration::from_secs(10)).await?;
    exactly::metrics::export_producer(&producer_client, &producer);

    let mut consumer = Consumer::from_properties([
        ("bootstrap.servers", demo.bootstrap.as_str()),
        ("client.id", consumer_client.as_str()),
        ("isolation.level", "read_committed"),
        ("auto.offset.reset", "earliest"),
    ])
    .await?;
    let tp = TopicPartition::new(&demo.topic, 0);
    consumer.assign(std::slice::from_ref(&tp))?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while done.consumed < done.records_committed || consumer.lag(&tp) != Some(0) {
        if tokio::time::Instant::now() > deadline {
            return Err(format!(
                "read {} of {} committed records (lag {:?}) in 30 s",
                done.consumed,
                done.records_committed,
                consumer.lag(&tp)
            )
            .into());
        }
        if let Polled::Records(records) = consumer.poll(Duration::from_millis(200)).await? {
            done.consumed += records.len() as u64;
        }
    }
    exactly::metrics::export_consumer(&consumer_client, &consumer);
    Ok((consumer, done))
}

/// `--name value` or the default.
fn arg(args: &[String], name: &str) -> Option<String> {
    let i = args.iter().position(|a| a == name)?;
    args.get(i + 1).cloned()
}

fn number(args: &[String], name: &str, default: u32) -> Result<u32, Error> {
    match arg(args, name) {
        Some(v) => Ok(v.parse().map_err(|e| format!("{name} {v}: {e}"))?),
        None => Ok(default),
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let bootstrap = arg(&args, "--bootstrap")
        .or_else(|| std::env::var("EXACTLY_BOOTSTRAP").ok())
        .unwrap_or_else(|| "127.0.0.1:9092".into());
    let topic = arg(&args, "--topic").unwrap_or_else(|| "metrics-demo".into());
    let demo = Demo {
        bootstrap,
        transactional_id: format!("{topic}-metrics-example"),
        topic,
        client: "example".into(),
        transactions: number(&args, "--transactions", 5)?,
        records: number(&args, "--records", 100)?,
        abort_every: number(&args, "--abort-every", 3)?,
    };
    let once = args.iter().any(|a| a == "--once");

    let handle = install()?;
    if !once {
        let listen = arg(&args, "--listen").unwrap_or_else(|| "127.0.0.1:9464".into());
        let listener = tokio::net::TcpListener::bind(&listen).await?;
        eprintln!("serving metrics on http://{listen}/metrics");
        tokio::spawn(serve(listener, handle.clone()));
    }
    let (mut consumer, done) = run_demo(&demo).await?;
    eprintln!("{done:?}");
    if once {
        print!("{}", handle.render());
        return Ok(());
    }
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tokio::select! {
            _ = tick.tick() => exactly::metrics::export_consumer("example-consumer", &consumer),
            polled = consumer.poll(Duration::from_millis(500)) => {
                if let Polled::Records(records) = polled? {
                    if !records.is_empty() {
                        eprintln!("{} records", records.len());
                    }
                }
            }
        }
    }
}
