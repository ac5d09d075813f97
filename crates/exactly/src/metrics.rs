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
//! nobody reads them); the functions here publish a snapshot of them:
//! call them on a timer (every few seconds) or before a scrape. Counters are
//! set to their absolute totals, so a missed tick loses no count.
//!
//! | metric | kind | labels |
//! |---|---|---|
//! | `exactly_requests_total`, `exactly_responses_total`, `exactly_request_timeouts_total`, `exactly_throttled_total` | counter | `client` |
//! | `exactly_bytes_sent_total`, `exactly_bytes_received_total` | counter | `client` |
//! | `exactly_connects_total`, `exactly_reconnects_total`, `exactly_connect_failures_total`, `exactly_disconnects_total` | counter | `client` |
//! | `exactly_errors_total` | counter | `client`, `code` (Kafka error code name) |
//! | `exactly_consumer_fetches_total`, `exactly_consumer_records_fetched_total`, `exactly_consumer_records_total` (delivered), `exactly_consumer_batches_total`, `exactly_consumer_aborted_batches_total`, `exactly_consumer_rebalances_total`, `exactly_consumer_commits_total` | counter | `client` |
//! | `exactly_consumer_lag` (last stable offset under read_committed, else high watermark, minus the position) | gauge | `client`, `topic`, `partition` |
//! | `exactly_consumer_lso_distance` (high watermark minus last stable offset: what open transactions hold back) | gauge | `client`, `topic`, `partition` |
//! | `exactly_session_records_in_total`, `exactly_session_records_out_total`, `exactly_session_records_committed_total`, `exactly_session_transactions_committed_total`, `exactly_session_transactions_aborted_total`, `exactly_session_rebalances_total` | counter | `session` |
//! | `exactly_session_commit_latency_seconds` | histogram | `session` |
//!
//! Not yet exported (the producer does not count them apart today): records
//! and batches sent, retries, epoch bumps and producer id rotations.
//!
//! `examples/prometheus_metrics.rs` serves them in the Prometheus text format.

use exactly_consumer::{Consumer, ConsumerMetricsSnapshot};
use exactly_eos::session::{SessionMetrics, SessionStats};
use exactly_net::MetricsSnapshot;
use metrics::{counter, gauge, histogram};

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
}

/// Publishes everything of a consumer: its counters, its connections', and
/// the lag of each assigned partition.
pub fn export_consumer(client: &str, consumer: &Consumer) {
    export_consumer_stats(client, &consumer.metrics());
    export_net(client, &consumer.client().metrics_snapshot());
    for tp in consumer.assignment() {
        if let Some(lag) = consumer.lag(&tp) {
            gauge!(
                "exactly_consumer_lag",
                "client" => client.to_owned(),
                "topic" => tp.topic.clone(),
                "partition" => tp.partition.to_string()
            )
            .set(lag as f64);
        }
        if let Some(d) = consumer.lso_distance(&tp) {
            gauge!(
                "exactly_consumer_lso_distance",
                "client" => client.to_owned(),
                "topic" => tp.topic.clone(),
                "partition" => tp.partition.to_string()
            )
            .set(d as f64);
        }
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

    #[test]
    fn snapshots_render_as_prometheus_text() {
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
                ..ConsumerMetricsSnapshot::default()
            };
            export_consumer_stats("c1", &consumer);
            let net = MetricsSnapshot {
                requests: 7,
                bytes_out: 1234,
                ..MetricsSnapshot::default()
            };
            export_net("p1", &net);
        });
        let text = handle.render();
        for line in [
            "exactly_session_transactions_committed_total{session=\"copier\"} 3",
            "exactly_session_transactions_aborted_total{session=\"copier\"} 1",
            "exactly_session_records_in_total{session=\"copier\"} 10",
            "exactly_consumer_records_total{client=\"c1\"} 42",
            "exactly_consumer_rebalances_total{client=\"c1\"} 2",
            "exactly_requests_total{client=\"p1\"} 7",
            "exactly_bytes_sent_total{client=\"p1\"} 1234",
            "exactly_session_commit_latency_seconds_count{session=\"copier\"} 1",
        ] {
            assert!(text.contains(line), "missing {line:?} in:\n{text}");
        }
    }
}
