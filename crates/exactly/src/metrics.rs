//! Counters, gauges and histograms of the producer, the consumer and the
//! exactly-once session, through the [`metrics`] facade (feature `metrics`).
//!
//! Why `metrics` and not OpenTelemetry: `metrics` is a facade in the way
//! `log` and `tracing` are — the library only emits, and the application
//! installs one recorder of its choice (Prometheus, StatsD, OpenTelemetry
//! through a bridge crate, or none, when every call is a no-op). The library
//! pulls in one small pure-Rust crate and no SDK, runtime or exporter
//! (OpenTelemetry's Rust SDK brings its own pipeline and, for its usual
//! exporters, gRPC/HTTP stacks). The `tracing` spans stay as they are.
//!
//! The clients keep their own atomic counters (they cost nothing when
//! nobody reads them; the producer counts per batch, never per record); the
//! functions here publish a snapshot of them: call them on a timer (every
//! few seconds) or before a scrape. Counters are set to their absolute
//! totals, so a missed tick loses no count.
//!
//! ## Every metric
//!
//! This table is the one list of the names (kept in step with the code by
//! the test at the bottom of this file, which renders each of them). Label
//! values: `client` and `session` are the names given to the `export_*`
//! functions; `transactional_id` is the producer's `transactional.id` (the
//! label is absent for a producer without one); `topic`/`partition` name a
//! partition; `code` is a Kafka error code's name; `cause` is an
//! [`IdentityCause`] name (`end_txn`, `abort`, `fence_late_requests`,
//! `missing_identity`, `epoch_exhausted`, `sequence_reset`).
//!
//! Connections (any client; [`export_net`]):
//!
//! | metric | kind | labels | meaning |
//! |---|---|---|---|
//! | `exactly_requests_total` | counter | `client` | requests written to a socket |
//! | `exactly_responses_total` | counter | `client` | responses read |
//! | `exactly_request_timeouts_total` | counter | `client` | requests past `request.timeout.ms` |
//! | `exactly_throttled_total` | counter | `client` | responses asking the client to hold back (KIP-219) |
//! | `exactly_bytes_sent_total`, `exactly_bytes_received_total` | counter | `client` | Kafka frame bytes on the wire (resends included) |
//! | `exactly_connects_total`, `exactly_reconnects_total`, `exactly_connect_failures_total`, `exactly_disconnects_total` | counter | `client` | connection life |
//! | `exactly_errors_total` | counter | `client`, `code` | Kafka error codes received |
//!
//! Producer ([`export_producer`], [`export_producer_stats`]):
//!
//! | metric | kind | labels | meaning |
//! |---|---|---|---|
//! | `exactly_producer_records_sent_total` | counter | `client`, `transactional_id` | records in acknowledged batches (transactional: visible only if committed) |
//! | `exactly_producer_batches_sent_total` | counter | `client`, `transactional_id` | acknowledged batches |
//! | `exactly_producer_bytes_sent_total` | counter | `client`, `transactional_id` | record-batch bytes (compressed, headers included) of acknowledged batches, each once |
//! | `exactly_producer_records_failed_total` | counter | `client`, `transactional_id` | records whose send failed, records of aborted transactions never sent included |
//! | `exactly_producer_batches_failed_total` | counter | `client`, `transactional_id` | batches that failed |
//! | `exactly_producer_retries_total` | counter | `client`, `transactional_id` | Produce requests for a batch after its first |
//! | `exactly_producer_epoch_bumps_total` | counter | `client`, `transactional_id`, `cause` | same producer id, new epoch (under KIP-890 every transaction ends with one: `end_txn`) |
//! | `exactly_producer_id_rotations_total` | counter | `client`, `transactional_id` | new identities with another producer id |
//! | `exactly_producer_transactions_committed_total`, `exactly_producer_transactions_aborted_total` | counter | `client`, `transactional_id` | transactions ended |
//! | `exactly_producer_commit_latency_seconds` | histogram | `client`, `transactional_id` | `commit_transaction` call to the coordinator's answer |
//!
//! Consumer ([`export_consumer`], [`export_consumer_stats`]):
//!
//! | metric | kind | labels | meaning |
//! |---|---|---|---|
//! | `exactly_consumer_fetches_total` | counter | `client` | fetch responses handled |
//! | `exactly_consumer_records_fetched_total` | counter | `client` | records decoded |
//! | `exactly_consumer_records_total` | counter | `client` | records delivered to the application |
//! | `exactly_consumer_batches_total`, `exactly_consumer_aborted_batches_total` | counter | `client` | batches decoded, and skipped as aborted (`read_committed`) |
//! | `exactly_consumer_control_batches_total` | counter | `client` | control batches (transaction markers) skipped |
//! | `exactly_consumer_fetch_errors_total` | counter | `client` | fetches that failed as a whole (connection lost, top-level error) |
//! | `exactly_consumer_partition_errors_total` | counter | `client` | partition-level errors in fetch responses |
//! | `exactly_consumer_unexpected_partitions_total` | counter | `client` | partitions in fetch responses not asked for, or answered twice (ignored) |
//! | `exactly_consumer_fetches_held_total` | counter | `client` | fetches not sent: every partition at its end while another of the broker's waited for buffer room |
//! | `exactly_consumer_fetch_session_resets_total` | counter | `client` | fetch sessions (KIP-227) started over with a full request |
//! | `exactly_consumer_decompression_budget_spent_total` | counter | `client` | partitions cut short because the response had decompressed `fetch.max.uncompressed.bytes` |
//! | `exactly_consumer_read_committed_anomalies_total` | counter | `client` | broker answers contradicting themselves under `read_committed` (marker vs aborted list, LSO -1, above the high watermark, or going backwards); should stay 0 |
//! | `exactly_consumer_rebalances_total` | counter | `client` | completed group joins |
//! | `exactly_consumer_commits_total` | counter | `client` | offset commits |
//! | `exactly_consumer_lag` | gauge | `client`, `topic`, `partition` | last stable offset under `read_committed` (else high watermark) minus the position |
//! | `exactly_consumer_lso_distance` | gauge | `client`, `topic`, `partition` | high watermark minus last stable offset: what open transactions hold back |
//!
//! Exactly-once session ([`SessionExporter`], [`export_session_stats`]):
//!
//! | metric | kind | labels | meaning |
//! |---|---|---|---|
//! | `exactly_session_records_in_total`, `exactly_session_records_out_total`, `exactly_session_records_committed_total` | counter | `session` | records read, written, and committed |
//! | `exactly_session_transactions_committed_total`, `exactly_session_transactions_aborted_total` | counter | `session` | transactions ended |
//! | `exactly_session_rebalances_total` | counter | `session` | rebalances seen |
//! | `exactly_session_commit_latency_seconds` | histogram | `session` | the latest commit's latency, one sample per export |
//!
//! A session's producer is an ordinary [`Producer`]: export it with
//! [`export_producer`] as well for the producer-level counters.
//!
//! Not exported: per-partition producer counters (the producer counts per
//! batch in one set of atomics; a per-partition map would cost a lookup per
//! batch and grow with the partitions written).
//!
//! `examples/prometheus_metrics.rs` serves them in the Prometheus text
//! format, against any broker (`--bootstrap`).

use exactly_consumer::{Consumer, ConsumerMetricsSnapshot};
use exactly_eos::session::{SessionMetrics, SessionStats};
use exactly_net::MetricsSnapshot;
use exactly_producer::metrics::IDENTITY_CAUSES;
use exactly_producer::{IdentityCause, Producer, ProducerMetricsSnapshot};
use metrics::{counter, gauge, histogram, Label};

/// Publishes a connection-level snapshot (a producer's
/// [`exactly_producer::Producer::metrics`], a client's
/// [`exactly_net::Client::metrics_snapshot`]) under `client`.
pub fn export_net(client: &str, s: &MetricsSnapshot) {
    let c = || client.to_owned();
    counter!("exactly_requests_total", "client" => c()).absolute(s.requests);
    counter!("exactly_responses_total", "client" => c()).absolute(s.responses);
    counter!("exactly_bytes_sent_total", "client" => c()).absolute(s.bytes_out);
    counter!("exactly_bytes_received_total", "client" => c()).absolute(s.bytes_in);
    counter!("exactly_connects_total", "client" => c()).absolute(s.connects);
    counter!("exactly_reconnects_total", "client" => c()).absolute(s.reconnects);
    counter!("exactly_connect_failures_total", "client" => c()).absolute(s.connect_failures);
    counter!("exactly_disconnects_total", "client" => c()).absolute(s.disconnects);
    counter!("exactly_request_timeouts_total", "client" => c()).absolute(s.timeouts);
    counter!("exactly_throttled_total", "client" => c()).absolute(s.throttled);
    for (code, n) in &s.errors_by_code {
        counter!("exactly_errors_total", "client" => c(), "code" => format!("{code:?}"))
            .absolute(*n);
    }
}

/// Publishes a producer's own counters under `client` (and
/// `transactional_id`, when given); each of `commit_latencies` goes into the
/// commit-latency histogram.
pub fn export_producer_stats(
    client: &str,
    transactional_id: Option<&str>,
    s: &ProducerMetricsSnapshot,
    commit_latencies: &[std::time::Duration],
) {
    let labels = || {
        let mut l = vec![Label::new("client", client.to_owned())];
        if let Some(t) = transactional_id {
            l.push(Label::new("transactional_id", t.to_owned()));
        }
        l
    };
    counter!("exactly_producer_records_sent_total", labels()).absolute(s.records_sent);
    counter!("exactly_producer_batches_sent_total", labels()).absolute(s.batches_sent);
    counter!("exactly_producer_bytes_sent_total", labels()).absolute(s.bytes_sent);
    counter!("exactly_producer_records_failed_total", labels()).absolute(s.records_failed);
    counter!("exactly_producer_batches_failed_total", labels()).absolute(s.batches_failed);
    counter!("exactly_producer_retries_total", labels()).absolute(s.retries);
    for cause in IDENTITY_CAUSES {
        let n = s.epoch_bumps_of(cause);
        // A cause that never happened stays unrendered (most never do).
        if n > 0 {
            let mut l = labels();
            l.push(Label::new("cause", IdentityCause::as_str(cause)));
            counter!("exactly_producer_epoch_bumps_total", l).absolute(n);
        }
    }
    counter!("exactly_producer_id_rotations_total", labels()).absolute(s.producer_id_rotations);
    counter!("exactly_producer_transactions_committed_total", labels())
        .absolute(s.transactions_committed);
    counter!("exactly_producer_transactions_aborted_total", labels())
        .absolute(s.transactions_aborted);
    if !commit_latencies.is_empty() {
        let h = histogram!("exactly_producer_commit_latency_seconds", labels());
        for d in commit_latencies {
            h.record(d.as_secs_f64());
        }
    }
}

/// Publishes everything of a producer: its own counters (the commit
/// latencies since the last call go into the histogram; call this from one
/// exporter only, as each latency is handed out once) and its connections'.
pub fn export_producer(client: &str, producer: &Producer) {
    let transactional_id = producer.config().transactional_id();
    export_producer_stats(
        client,
        transactional_id,
        &producer.producer_metrics(),
        &producer.take_commit_latencies(),
    );
    export_net(client, &producer.metrics());
}

/// Publishes a consumer's fetch and group counters under `client`.
pub fn export_consumer_stats(client: &str, s: &ConsumerMetricsSnapshot) {
    let c = || client.to_owned();
    counter!("exactly_consumer_fetches_total", "client" => c()).absolute(s.fetches);
    counter!("exactly_consumer_records_fetched_total", "client" => c()).absolute(s.records_fetched);
    counter!("exactly_consumer_records_total", "client" => c()).absolute(s.records_delivered);
    counter!("exactly_consumer_batches_total", "client" => c()).absolute(s.batches);
    counter!("exactly_consumer_aborted_batches_total", "client" => c()).absolute(s.aborted_batches);
    counter!("exactly_consumer_rebalances_total", "client" => c()).absolute(s.rebalances);
    counter!("exactly_consumer_commits_total", "client" => c()).absolute(s.commits);
    counter!("exactly_consumer_control_batches_total", "client" => c()).absolute(s.control_batches);
    counter!("exactly_consumer_fetch_errors_total", "client" => c()).absolute(s.fetch_errors);
    counter!("exactly_consumer_partition_errors_total", "client" => c())
        .absolute(s.partition_errors);
    counter!("exactly_consumer_unexpected_partitions_total", "client" => c())
        .absolute(s.unexpected_partitions);
    counter!("exactly_consumer_fetches_held_total", "client" => c()).absolute(s.fetches_held);
    counter!("exactly_consumer_fetch_session_resets_total", "client" => c())
        .absolute(s.fetch_session_resets);
    counter!("exactly_consumer_decompression_budget_spent_total", "client" => c())
        .absolute(s.decompression_budget_spent);
    counter!("exactly_consumer_read_committed_anomalies_total", "client" => c())
        .absolute(s.read_committed_anomalies);
}

/// Publishes everything of a consumer: its counters, its connections', and
/// the lag of each assigned partition.
pub fn export_consumer(client: &str, consumer: &Consumer) {
    export_consumer_stats(client, &consumer.metrics());
    export_net(client, &consumer.client().metrics_snapshot());
    for tp in consumer.assignment() {
        export_partition(client, &tp, consumer.lag(&tp), consumer.lso_distance(&tp));
    }
}

/// The per-partition gauges of a consumer.
fn export_partition(
    client: &str,
    tp: &exactly_consumer::TopicPartition,
    lag: Option<i64>,
    lso_distance: Option<i64>,
) {
    let labels = || {
        [
            Label::new("client", client.to_owned()),
            Label::new("topic", tp.topic.clone()),
            Label::new("partition", tp.partition.to_string()),
        ]
    };
    if let Some(lag) = lag {
        gauge!("exactly_consumer_lag", labels().to_vec()).set(lag as f64);
    }
    if let Some(d) = lso_distance {
        gauge!("exactly_consumer_lso_distance", labels().to_vec()).set(d as f64);
    }
}

/// Publishes a session snapshot under `session`; `commit_latency` (if any)
/// goes into the commit-latency histogram.
pub fn export_session_stats(
    session: &str,
    s: &SessionStats,
    commit_latency: Option<std::time::Duration>,
) {
    let l = || session.to_owned();
    counter!("exactly_session_records_in_total", "session" => l()).absolute(s.records_in);
    counter!("exactly_session_records_out_total", "session" => l()).absolute(s.records_out);
    counter!("exactly_session_records_committed_total", "session" => l())
        .absolute(s.records_committed);
    counter!("exactly_session_transactions_committed_total", "session" => l())
        .absolute(s.transactions_committed);
    counter!("exactly_session_transactions_aborted_total", "session" => l())
        .absolute(s.transactions_aborted);
    counter!("exactly_session_rebalances_total", "session" => l()).absolute(s.rebalances);
    if let Some(d) = commit_latency {
        histogram!("exactly_session_commit_latency_seconds", "session" => l())
            .record(d.as_secs_f64());
    }
}

/// Publishes a running session's counters on every [`SessionExporter::export`]
/// call, and its latest commit latency whenever commits happened since the
/// last call (one sample per call: the session keeps only the last latency).
#[derive(Debug, Clone)]
pub struct SessionExporter {
    name: String,
    metrics: SessionMetrics,
    seen_commits: u64,
}

impl SessionExporter {
    /// Exports `metrics` (from `Session::metrics`) as `name`.
    pub fn new(name: impl Into<String>, metrics: SessionMetrics) -> Self {
        Self {
            name: name.into(),
            metrics,
            seen_commits: 0,
        }
    }

    /// Publishes the current counters.
    pub fn export(&mut self) {
        let s = self.metrics.snapshot();
        let latency =
            (s.transactions_committed > self.seen_commits).then(|| s.last_commit_latency());
        self.seen_commits = s.transactions_committed;
        export_session_stats(&self.name, &s, latency);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use metrics_exporter_prometheus::PrometheusBuilder;
    use std::time::Duration;

    /// Renders a snapshot of every kind with non-zero values.
    fn render_all() -> String {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            let stats = SessionStats {
                records_in: 10,
                transactions_committed: 3,
                transactions_aborted: 1,
                last_commit_latency_us: 2_500,
                ..SessionStats::default()
            };
            export_session_stats("copier", &stats, Some(stats.last_commit_latency()));
            let consumer = ConsumerMetricsSnapshot {
                records_delivered: 42,
                rebalances: 2,
                fetch_session_resets: 4,
                fetches_held: 6,
                read_committed_anomalies: 1,
                ..ConsumerMetricsSnapshot::default()
            };
            export_consumer_stats("c1", &consumer);
            let tp = exactly_consumer::TopicPartition::new("orders", 3);
            export_partition("c1", &tp, Some(5), Some(2));
            let mut net = MetricsSnapshot {
                requests: 7,
                bytes_out: 1234,
                ..MetricsSnapshot::default()
            };
            net.errors_by_code
                .push((exactly_codec::ErrorCode::NotLeaderOrFollower, 2));
            export_net("p1", &net);
            let mut producer = ProducerMetricsSnapshot {
                records_sent: 100,
                batches_sent: 4,
                bytes_sent: 5_000,
                records_failed: 3,
                retries: 1,
                producer_id_rotations: 1,
                transactions_committed: 2,
                transactions_aborted: 1,
                ..ProducerMetricsSnapshot::default()
            };
            producer.epoch_bumps[0] = 3;
            export_producer_stats(
                "p1",
                Some("tx-1"),
                &producer,
                &[Duration::from_millis(4), Duration::from_millis(6)],
            );
        });
        handle.render()
    }

    #[test]
    fn snapshots_render_as_prometheus_text() {
        let text = render_all();
        let p = "client=\"p1\",transactional_id=\"tx-1\"";
        for line in [
            "exactly_session_transactions_committed_total{session=\"copier\"} 3".to_owned(),
            "exactly_session_transactions_aborted_total{session=\"copier\"} 1".to_owned(),
            "exactly_session_records_in_total{session=\"copier\"} 10".to_owned(),
            "exactly_consumer_records_total{client=\"c1\"} 42".to_owned(),
            "exactly_consumer_rebalances_total{client=\"c1\"} 2".to_owned(),
            "exactly_consumer_fetch_session_resets_total{client=\"c1\"} 4".to_owned(),
            "exactly_consumer_fetches_held_total{client=\"c1\"} 6".to_owned(),
            "exactly_consumer_read_committed_anomalies_total{client=\"c1\"} 1".to_owned(),
            "exactly_consumer_lag{client=\"c1\",topic=\"orders\",partition=\"3\"} 5".to_owned(),
            "exactly_requests_total{client=\"p1\"} 7".to_owned(),
            "exactly_bytes_sent_total{client=\"p1\"} 1234".to_owned(),
            "exactly_session_commit_latency_seconds_count{session=\"copier\"} 1".to_owned(),
            format!("exactly_producer_records_sent_total{{{p}}} 100"),
            format!("exactly_producer_batches_sent_total{{{p}}} 4"),
            format!("exactly_producer_bytes_sent_total{{{p}}} 5000"),
            format!("exactly_producer_records_failed_total{{{p}}} 3"),
            format!("exactly_producer_retries_total{{{p}}} 1"),
            format!("exactly_producer_epoch_bumps_total{{{p},cause=\"end_txn\"}} 3"),
            format!("exactly_producer_id_rotations_total{{{p}}} 1"),
            format!("exactly_producer_transactions_committed_total{{{p}}} 2"),
            format!("exactly_producer_transactions_aborted_total{{{p}}} 1"),
            format!("exactly_producer_commit_latency_seconds_count{{{p}}} 2"),
        ] {
            assert!(text.contains(&line), "missing {line:?} in:\n{text}");
        }
        assert!(
            !text.contains("cause=\"abort\""),
            "a cause that never happened is not rendered:\n{text}"
        );
    }

    /// Every name in the module docs' tables is rendered by the code, and
    /// every name the code renders is in the tables.
    #[test]
    fn the_docs_name_every_metric() {
        let source = include_str!("metrics.rs");
        let mut documented = std::collections::BTreeSet::new();
        for line in source.lines().filter(|l| l.starts_with("//! | `exactly_")) {
            let first_cell = line.split('|').nth(1).unwrap_or_default();
            for name in first_cell.split('`').filter(|n| n.starts_with("exactly_")) {
                documented.insert(name.to_owned());
            }
        }
        assert!(documented.len() > 30, "{documented:?}");
        let text = render_all();
        let mut rendered = std::collections::BTreeSet::new();
        for line in text.lines().filter(|l| l.starts_with("# TYPE ")) {
            if let Some(name) = line.split(' ').nth(2) {
                rendered.insert(name.to_owned());
            }
        }
        let undocumented: Vec<_> = rendered.difference(&documented).collect();
        let unrendered: Vec<_> = documented.difference(&rendered).collect();
        assert!(undocumented.is_empty(), "not in the docs: {undocumented:?}");
        // Zero counters render too, so every documented name shows up.
        assert!(
            unrendered.is_empty(),
            "documented, never rendered: {unrendered:?}"
        );
    }
}
