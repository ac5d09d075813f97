//! Issue 11's acceptance for the processing session: the fan-out
//! application (`src/bin/eos_app.rs fanout`: every input value to topic A,
//! each even one to topic B too) runs as 3 processes in one group over 6
//! input partitions while input keeps arriving; each process is killed -9
//! and restarted at least 5 times at random moments, and at every third death it kills
//! itself between TxnOffsetCommit and EndTxn (the window a random kill
//! rarely hits); one is stopped with SIGTERM mid-stream and must exit
//! cleanly leaving no open transaction. Then A must hold every input value
//! exactly once and B every even one exactly once, read `read_committed` by
//! our consumer and by the Java `VerifiableConsumer`, and
//! `TransactionsCommand find-hanging` must find nothing.
//!
//! `EXACTLY_SESSION_LONG=1` runs the long variant (10x the input, 15 kills
//! per process); `EXACTLY_EOS_TV=1|2` runs one transaction version.

mod session_support;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use exactly_protocol_tests::judge;
use exactly_protocol_tests::{unique_topic, Broker, TransactionVersion};
use session_support::{kill_schedule, long, produce_paced, versions, App};

fn fanout(tv: TransactionVersion) {
    let broker = Broker::shared(tv).unwrap_or_else(|e| panic!("{e}"));
    let (n, kills_each, rate) = if long() {
        (300_000, 15, 3_000)
    } else {
        (30_000, 5, 1_000)
    };
    let app = App {
        mode: "fanout",
        broker,
        input: unique_topic("fan-in"),
        a: unique_topic("fan-a"),
        b: unique_topic("fan-b"),
        group: unique_topic("fan-group"),
        idle_secs: 8,
    };
    broker.create_topic(&app.input, 6).expect("input topic");
    broker.create_topic(&app.a, 3).expect("topic A");
    broker.create_topic(&app.b, 3).expect("topic B");
    let t = Instant::now();
    let deadline = t + Duration::from_secs(if long() { 1800 } else { 420 });
    let produced = Arc::new(AtomicBool::new(false));
    let producer = {
        let (bootstrap, topic, done) = (broker.bootstrap(), app.input.clone(), produced.clone());
        std::thread::spawn(move || {
            produce_paced(bootstrap, topic, n, rate, |v| v.to_string(), done)
        })
    };
    let report = kill_schedule(&app, tv, kills_each, deadline, &produced, producer);
    println!(
        "fan-out {tv:?}: {n} inputs, 3 instances, {report:?}, total {:.1} s",
        t.elapsed().as_secs_f64()
    );
    judge::assert_no_hanging(broker, &[&app.a, &app.b]);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    judge::exactly_once(broker, &rt, &app.a, 3, n, &format!("fan-out A {tv:?}"));
    judge::exactly_once_selected(
        broker,
        &rt,
        &app.b,
        3,
        n,
        |v| v.is_multiple_of(2),
        &format!("fan-out B {tv:?}"),
    );
}

#[test]
fn fanout_three_instances_killed_restarted_and_sigterm() {
    for tv in versions() {
        fanout(tv);
    }
}
