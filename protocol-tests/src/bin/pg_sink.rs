//! A PostgreSQL sink process for the tests that `kill -9` it
//! (`tests/pg_sink.rs`): an [`exactly::eos::sink::SinkRunner`] over a
//! [`exactly::postgres::PgSink`] that inserts each input value (a decimal
//! number) as one row of `<table> (value bigint PRIMARY KEY, ...)` with a
//! plain `INSERT`: no `ON CONFLICT`, so a value applied twice is a unique
//! violation, which ends the process with exit code 3.
//!
//! Usage: `pg_sink <bootstrap> <topic> <group> <postgres> <table>`.
//! Prints `committed <records> <batches> <fenced>` after every commit and
//! `done ...` after a graceful stop (SIGTERM). Fault hooks, from the
//! environment:
//! - `EXACTLY_CRASH_AFTER_COMMITS=k`: SIGKILL itself right after the k-th
//!   database commit, before anything else happens;
//! - `EXACTLY_STALL_BEFORE_APPLY=k:ms`: before the k-th batch, sleep `ms`
//!   (longer than `max.poll.interval.ms`, so the group moves its partitions
//!   to another member), then apply the batch it read before: a zombie
//!   write, which the offsets' compare-and-set must fence.

use std::time::Duration;

use exactly::eos::sink::{Applied, Sink, SinkBatch, SinkRunError, SinkRunner};
use exactly::postgres::tokio_postgres::Transaction;
use exactly::postgres::{PgError, PgHandler, PgSink};
use exactly::TopicPartition;
use exactly_protocol_tests::child::side::{
    crash_after_commits, init_tracing_from_env, kill_self, on_sigterm, runtime, say,
};

/// Inserts the values of a batch in one statement.
struct Values {
    insert: String,
}

impl PgHandler for Values {
    async fn apply(&mut self, tx: &Transaction<'_>, batch: &SinkBatch) -> Result<(), PgError> {
        let mut values = Vec::with_capacity(batch.len());
        let mut partitions = Vec::with_capacity(batch.len());
        let mut offsets = Vec::with_capacity(batch.len());
        for r in batch.records() {
            let v: i64 = r
                .value()
                .and_then(|v| std::str::from_utf8(v).ok())
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| {
                    PgError::handler(format!("not a number at offset {}", r.offset()))
                })?;
            values.push(v);
            partitions.push(r.partition());
            offsets.push(r.offset());
        }
        tx.execute(&self.insert, &[&values, &partitions, &offsets])
            .await?;
        Ok(())
    }
}

/// Delegates to the real sink; sleeps once before one chosen batch.
struct Stalling<S> {
    inner: S,
    batches: u64,
    stall: Option<(u64, Duration)>,
}

impl<S: Sink> Sink for Stalling<S> {
    type Error = S::Error;

    async fn stored_offsets(
        &mut self,
        partitions: &[TopicPartition],
    ) -> Result<Vec<(TopicPartition, Option<i64>)>, S::Error> {
        self.inner.stored_offsets(partitions).await
    }

    async fn apply(&mut self, batch: &SinkBatch) -> Result<Applied, S::Error> {
        self.batches += 1;
        if let Some((k, ms)) = self.stall {
            if k == self.batches {
                say(&format!("stalling {} ms before batch {k}", ms.as_millis()));
                tokio::time::sleep(ms).await;
            }
        }
        let r = self.inner.apply(batch).await;
        if let Ok(Applied::Fenced(parts)) = &r {
            say(&format!("fenced {parts:?}"));
        }
        r
    }
}

fn main() {
    // `RUST_LOG=exactly_postgres=debug,...` shows what the process did, on
    // stderr (the test reads stdout).
    init_tracing_from_env();
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() != 5 {
        eprintln!("usage: pg_sink <bootstrap> <topic> <group> <postgres> <table>");
        std::process::exit(2);
    }
    let crash_after = crash_after_commits();
    let stall = std::env::var("EXACTLY_STALL_BEFORE_APPLY")
        .ok()
        .and_then(|s| {
            let (k, ms) = s.split_once(':')?;
            Some((k.parse().ok()?, Duration::from_millis(ms.parse().ok()?)))
        });
    let rt = runtime();
    let code = rt.block_on(async {
        let handler = Values {
            insert: format!(
                "INSERT INTO {} (value, kafka_partition, kafka_offset) \
                 SELECT * FROM unnest($1::bigint[], $2::int[], $3::bigint[])",
                args[4]
            ),
        };
        let sink = match PgSink::new(&args[3], &args[2], handler) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("pg_sink: {e}");
                return 1;
            }
        };
        let sink = Stalling {
            inner: sink,
            batches: 0,
            stall,
        };
        let runner = SinkRunner::from_properties(
            [
                ("bootstrap.servers", args[0].as_str()),
                ("group.id", args[2].as_str()),
                ("session.timeout.ms", "6000"),
                ("heartbeat.interval.ms", "500"),
                ("max.poll.interval.ms", "5000"),
                ("max.poll.records", "100"),
            ],
            &[args[1].as_str()],
            sink,
        )
        .await;
        let runner = match runner {
            Ok(r) => r,
            Err(e) => {
                eprintln!("pg_sink: {e}");
                return 1;
            }
        };
        let shutdown = runner.shutdown_handle();
        on_sigterm(move || shutdown.shutdown());
        let result = runner
            .run(|s| {
                say(&format!(
                    "committed {} {} {}",
                    s.records_applied, s.batches_committed, s.batches_fenced
                ));
                if crash_after.is_some_and(|k| s.batches_committed >= k) {
                    // Right after the database commit, before anything else.
                    kill_self();
                }
            })
            .await;
        match result {
            Ok(s) => {
                say(&format!(
                    "done {} {} {}",
                    s.records_applied, s.batches_committed, s.batches_fenced
                ));
                0
            }
            Err(SinkRunError::Sink(e)) if e.is_unique_violation() => {
                say(&format!("UNIQUE VIOLATION: {e}"));
                3
            }
            Err(e) => {
                eprintln!("pg_sink failed: {e}");
                1
            }
        }
    });
    std::process::exit(code);
}
