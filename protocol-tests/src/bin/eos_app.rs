//! The applications of issue 11's acceptance, as processes the tests can
//! `kill -9` and `SIGTERM`, each an exactly-once [`Session`]:
//!
//! - `fanout`: reads numbered input (`"0"`, `"1"`, ...) and writes every
//!   value to topic A, and each even value to topic B as well;
//! - `count`: keeps a running count per input key in the session's state
//!   (changelog-backed) and writes `(key, count)` to topic A on every input
//!   (topic B unused).
//!
//! Usage: `eos_app <fanout|count> <bootstrap> <input> <topic-a> <topic-b>
//! <group> <instance> <records-per-transaction> <idle-secs>`. `<instance>` is both
//! the `transactional.id` and the static `group.instance.id` (KIP-345), so a
//! restarted instance fences its dead incarnation and takes its place in
//! the group at once.
//!
//! Prints `ready` once SIGTERM is handled, `committed <input records> <transactions>` after each commit,
//! `stopped ...` on a clean end (idle for `<idle-secs>`, or SIGTERM: the
//! open transaction is committed, the producer closed), `sigterm` when the
//! signal arrives.
//!
//! `EXACTLY_APP_PROTOCOL=<eager|cooperative|consumer>` (the rolling-restart
//! test, `tests/eos_session_roll.rs`): the instance joins as a *dynamic*
//! member (no `group.instance.id`, so a stop or a restart rebalances) with
//! the classic protocol and `range` (eager), the classic protocol and
//! `cooperative-sticky` (KIP-429), or `group.protocol=consumer` (KIP-848;
//! then no `session.timeout.ms`, which the broker decides for such groups and
//! the client refuses). In fanout mode it then also prints `commit <unix ms>
//! <input records> <p,p,...>` after each commit: the input partitions the
//! committed transaction carried offsets for.
//!
//! `EXACTLY_APP_CRASH_AT_OFFSETS=<k>`: the process kills itself
//! (SIGKILL) the `k`-th time the session has added the consumed offsets to
//! a transaction (TxnOffsetCommit answered) and not yet sent EndTxn — the
//! window a random kill rarely hits — printing `crash offsets_sent <k>`
//! first. It watches the session's `offsets_sent` tracing event.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use exactly::eos::{Context, Handler, HandlerError, StateConfig, TransactionEnd};
use exactly::{ConsumerRecord, ProducerRecord, Session, SessionStats};
use exactly_protocol_tests::process::{signal, Signal};

struct FanOut {
    a: String,
    b: String,
    /// With `EXACTLY_APP_PROTOCOL`: the input partitions of the open
    /// transaction, printed when it commits.
    parts: Option<std::collections::BTreeSet<i32>>,
}

impl Handler for FanOut {
    async fn process(
        &mut self,
        ctx: &mut Context<'_>,
        records: &[ConsumerRecord],
    ) -> Result<(), HandlerError> {
        if let Some(parts) = &mut self.parts {
            parts.insert(ctx.partition().partition);
        }
        for r in records {
            let Some(v) = r.value() else { continue };
            let n: u64 = std::str::from_utf8(v)?.parse()?;
            let mut out = ProducerRecord::new(&self.a).with_value(v);
            if let Some(k) = r.key() {
                out = out.with_key(k);
            }
            ctx.send(out).await?;
            if n.is_multiple_of(2) {
                let mut even = ProducerRecord::new(&self.b).with_value(v);
                if let Some(k) = r.key() {
                    even = even.with_key(k);
                }
                ctx.send(even).await?;
            }
        }
        Ok(())
    }

    fn transaction_ended(&mut self, end: &TransactionEnd, stats: &SessionStats) {
        if let Some(parts) = &mut self.parts {
            if let TransactionEnd::Committed { records_in, .. } = end {
                let ms = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_millis())
                    .unwrap_or(0);
                let list: Vec<String> = parts.iter().map(i32::to_string).collect();
                say(&format!("commit {ms} {records_in} {}", list.join(",")));
            }
            parts.clear();
        }
        progress(end, stats);
    }
}

/// A running count per input key, in the session's state.
struct Count {
    out: String,
}

impl Handler for Count {
    async fn process(
        &mut self,
        ctx: &mut Context<'_>,
        records: &[ConsumerRecord],
    ) -> Result<(), HandlerError> {
        for r in records {
            let key = r.key().ok_or("an input without a key")?.clone();
            let state = ctx.state().ok_or("no state")?;
            let count = match state.get(&key) {
                Some(c) => std::str::from_utf8(&c)?.parse::<u64>()? + 1,
                None => 1,
            };
            let value = count.to_string();
            state.put(key.clone(), value.clone());
            ctx.send(
                ProducerRecord::new(&self.out)
                    .with_key(&key)
                    .with_value(value.as_bytes()),
            )
            .await?;
        }
        Ok(())
    }

    fn transaction_ended(&mut self, end: &TransactionEnd, stats: &SessionStats) {
        progress(end, stats);
    }
}

fn progress(end: &TransactionEnd, stats: &SessionStats) {
    if let TransactionEnd::Committed { .. } = end {
        say(&format!(
            "committed {} {}",
            stats.records_committed, stats.transactions_committed
        ));
    }
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Kills the process at the `k`-th `offsets_sent` event of the session.
struct CrashAt {
    k: u64,
    seen: AtomicU64,
}

#[derive(Default)]
struct StepField(bool);

impl tracing::field::Visit for StepField {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "step" && value == "offsets_sent" {
            self.0 = true;
        }
    }
    fn record_debug(&mut self, _: &tracing::field::Field, _: &dyn std::fmt::Debug) {}
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for CrashAt {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        let mut f = StepField::default();
        event.record(&mut f);
        if f.0 && self.seen.fetch_add(1, Ordering::SeqCst) + 1 == self.k {
            say(&format!("crash offsets_sent {}", self.k));
            signal(std::process::id(), Signal::Kill);
            // SIGKILL is not deliverable late; never go on past this point.
            std::process::abort();
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() != 9 || !matches!(args[0].as_str(), "fanout" | "count") {
        eprintln!("usage: eos_app <fanout|count> <bootstrap> <input> <topic-a> <topic-b> <group> <instance> <per-txn> <idle-secs>");
        std::process::exit(2);
    }
    let mode = args[0].clone();
    let args = &args[1..];
    let num = |i: usize| -> u64 {
        args[i].parse().unwrap_or_else(|_| {
            eprintln!("argument {i} is not a number: {}", args[i]);
            std::process::exit(2)
        })
    };
    if let Some(k) = std::env::var("EXACTLY_APP_CRASH_AT_OFFSETS")
        .ok()
        .and_then(|k| k.parse().ok())
    {
        use tracing_subscriber::layer::SubscriberExt;
        use tracing_subscriber::Layer;
        let layer = CrashAt {
            k,
            seen: AtomicU64::new(0),
        }
        .with_filter(tracing_subscriber::filter::filter_fn(|m| {
            m.is_event()
                && m.target().starts_with("exactly_eos")
                && m.fields().field("step").is_some()
        }));
        let _ = tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer));
    }
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tokio: {e}");
            std::process::exit(1)
        }
    };
    let result = rt.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(|e| format!("SIGTERM handler: {e}"))?;
        // From here on SIGTERM is a graceful stop, not the default death:
        // the test waits for this line before it signals.
        say("ready");
        let mut b = Session::builder();
        let protocol = std::env::var("EXACTLY_APP_PROTOCOL").ok();
        let set = |b: &mut exactly::SessionBuilder| -> Result<(), exactly::net::ConfigError> {
            b.bootstrap_servers(&args[0])?
                .set("auto.offset.reset", "earliest")?
                .set("linger.ms", "5")?;
            match protocol.as_deref() {
                None => {
                    b.set("group.instance.id", &args[5])?
                        .set("session.timeout.ms", "10000")?;
                }
                Some("consumer") => {
                    b.set("group.protocol", "consumer")?;
                }
                Some(classic) => {
                    let assignor = if classic == "cooperative" {
                        "cooperative-sticky"
                    } else {
                        "range"
                    };
                    b.set("session.timeout.ms", "10000")?
                        .set("partition.assignment.strategy", assignor)?;
                }
            }
            Ok(())
        };
        set(&mut b).map_err(|e| e.to_string())?;
        b.group_id(&args[4])
            .transactional_id(&args[5])
            .input_topics(&[&args[1]])
            .max_records_per_transaction(num(6) as usize)
            .stop_when_idle(Duration::from_secs(num(7)))
            .shutdown_timeout(Duration::from_secs(10));
        if mode == "count" {
            b.state(StateConfig::new("counts"));
        }
        let session = b.build().await.map_err(|e| e.to_string())?;
        let stop = session.shutdown_handle();
        tokio::spawn(async move {
            if term.recv().await.is_some() {
                say("sigterm");
                stop.shutdown();
            }
        });
        let result = if mode == "count" {
            session
                .run(Count {
                    out: args[2].clone(),
                })
                .await
        } else {
            let handler = FanOut {
                a: args[2].clone(),
                b: args[3].clone(),
                parts: protocol.is_some().then(Default::default),
            };
            session.run(handler).await
        };
        result.map_err(|e| e.to_string())
    });
    match result {
        Ok(s) => say(&format!(
            "stopped {} {} {}",
            s.records_committed, s.transactions_committed, s.transactions_aborted
        )),
        Err(e) => {
            eprintln!("eos_app failed: {e}");
            std::process::exit(1)
        }
    }
}
