//! The metrics of a transactional producer and a read_committed consumer
//! on the real broker, as `crates/exactly/examples/prometheus_metrics.rs`
//! serves them (part of the `producer_txn` test binary, on its shared
//! brokers).

use exactly_protocol_tests::{unique_topic, TransactionVersion};

use crate::producer_support::runtime;

/// The Prometheus example itself (its `main` unused here).
#[path = "../../../crates/exactly/examples/prometheus_metrics.rs"]
mod prometheus_example;

/// The Prometheus recorder of this test binary (one global recorder per
/// process; each test labels its clients apart).
fn prometheus() -> metrics_exporter_prometheus::PrometheusHandle {
    static HANDLE: std::sync::OnceLock<metrics_exporter_prometheus::PrometheusHandle> =
        std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| prometheus_example::install().unwrap())
        .clone()
}

/// Scrapes `addr` as Prometheus would: an HTTP GET, the body back.
async fn scrape(addr: std::net::SocketAddr) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nhost: test\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    s.read_to_string(&mut response).await.unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    body.to_owned()
}

/// The value of the sample `name{labels}` in Prometheus text.
fn sample(text: &str, name: &str, labels: &str) -> Option<f64> {
    let key = format!("{name}{{{labels}}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&key))
        .map(|v| v.trim().parse().unwrap())
}

/// The example's demo (5 transactions of 100 records, the third aborted
/// after its records were acknowledged) against the real broker, its
/// metrics scraped over HTTP from the example's listener: the producer's
/// and the consumer's counters are what the demo did.
fn metrics_example(tv: TransactionVersion) {
    let broker = &super::txn_broker(tv).broker;
    let topic = unique_topic("txn-metrics");
    broker.create_topic(&topic, 1).unwrap();
    let client = unique_topic("metrics");
    let demo = prometheus_example::Demo {
        bootstrap: broker.bootstrap(),
        topic: topic.clone(),
        transactional_id: unique_topic("txn-metrics-id"),
        client: client.clone(),
        transactions: 5,
        records: 100,
        abort_every: 3,
    };
    let handle = prometheus();
    let started = std::time::Instant::now();
    let text = runtime().block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(prometheus_example::serve(listener, handle));
        let (consumer, done) = prometheus_example::run_demo(&demo).await.unwrap();
        assert_eq!(
            (
                done.committed,
                done.aborted,
                done.records_sent,
                done.consumed
            ),
            (4, 1, 500, 400),
            "{tv:?}"
        );
        drop(consumer);
        scrape(addr).await
    });
    eprintln!("{tv:?}: demo and scrape in {:?}", started.elapsed());
    let p = format!(
        "client=\"{client}-producer\",transactional_id=\"{}\"",
        demo.transactional_id
    );
    let c = format!("client=\"{client}-consumer\"");
    let get = |name: &str, labels: &str| {
        sample(&text, name, labels)
            .unwrap_or_else(|| panic!("{tv:?}: no {name}{{{labels}}} in:\n{text}"))
    };
    // Exact: what the demo did.
    for (name, want) in [
        ("exactly_producer_records_sent_total", 500.0),
        ("exactly_producer_records_failed_total", 0.0),
        ("exactly_producer_batches_failed_total", 0.0),
        ("exactly_producer_transactions_committed_total", 4.0),
        ("exactly_producer_transactions_aborted_total", 1.0),
        ("exactly_producer_id_rotations_total", 0.0),
        ("exactly_producer_commit_latency_seconds_count", 4.0),
    ] {
        assert_eq!(get(name, &p), want, "{tv:?}: {name}");
    }
    // Epoch bumps: under KIP-890 every ended transaction bumps (EndTxn v5);
    // under v1 this producer bumps once after its abort, to fence it.
    let (cause, bumps) = match tv {
        TransactionVersion::V2 => ("end_txn", 5.0),
        TransactionVersion::V1 => ("abort", 1.0),
    };
    let bump_labels = format!("{p},cause=\"{cause}\"");
    assert_eq!(
        get("exactly_producer_epoch_bumps_total", &bump_labels),
        bumps,
        "{tv:?}"
    );
    let causes = text
        .lines()
        .filter(|l| l.starts_with("exactly_producer_epoch_bumps_total{") && l.contains(&p))
        .count();
    assert_eq!(causes, 1, "{tv:?}: bumps of another cause:\n{text}");
    // A batch never spans transactions: at least one per transaction.
    let batches = get("exactly_producer_batches_sent_total", &p);
    assert!(
        (5.0..=500.0).contains(&batches),
        "{tv:?}: {batches} batches"
    );
    // Values of 4 to 6 bytes, each record at least its value, the batch
    // headers on top; uncompressed, far below 100 bytes a record.
    let bytes = get("exactly_producer_bytes_sent_total", &p);
    assert!(
        (2_000.0..50_000.0).contains(&bytes),
        "{tv:?}: {bytes} bytes"
    );
    assert!(get("exactly_producer_retries_total", &p) >= 0.0);
    let sum = get("exactly_producer_commit_latency_seconds_sum", &p);
    assert!(sum > 0.0 && sum < 60.0, "{tv:?}: commit latency sum {sum}");
    let producer_client = format!("client=\"{client}-producer\"");
    assert!(get("exactly_requests_total", &producer_client) > 0.0);
    // The consumer: every committed record, the aborted ones skipped, and
    // nothing left to read.
    assert_eq!(get("exactly_consumer_records_total", &c), 400.0, "{tv:?}");
    assert!(
        get("exactly_consumer_aborted_batches_total", &c) >= 1.0,
        "{tv:?}"
    );
    let tp = format!("{c},topic=\"{topic}\",partition=\"0\"");
    assert_eq!(get("exactly_consumer_lag", &tp), 0.0, "{tv:?}");
    assert_eq!(get("exactly_consumer_lso_distance", &tp), 0.0, "{tv:?}");
}

#[test]
fn metrics_of_the_prometheus_example_tv2() {
    metrics_example(TransactionVersion::V2);
}

#[test]
fn metrics_of_the_prometheus_example_tv1() {
    metrics_example(TransactionVersion::V1);
}
