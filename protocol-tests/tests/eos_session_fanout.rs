//! Issue 11's acceptance for the processing session: the fan-out
//! application (`src/bin/fanout.rs`: every input value to topic A, each
//! even one to topic B too) runs as 3 processes in one group over 6 input
//! partitions while input keeps arriving; each process is killed -9 and
//! restarted at least 5 times at random moments, and at least once it kills
//! itself between TxnOffsetCommit and EndTxn (the window a random kill
//! rarely hits); one is stopped with SIGTERM mid-stream and must exit
//! cleanly leaving no open transaction. Then A must hold every input value
//! exactly once and B every even one exactly once, read `read_committed` by
//! our consumer and by the Java `VerifiableConsumer`, and
//! `TransactionsCommand find-hanging` must find nothing.
//!
//! `EXACTLY_SESSION_LONG=1` runs the long variant (10x the input, 15 kills
//! per process); `EXACTLY_EOS_TV=1|2` runs one transaction version.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use exactly::{Producer, ProducerRecord};
use exactly_protocol_tests::judge::{self, find_hanging, transaction_state};
use exactly_protocol_tests::process::{signal, Signal};
use exactly_protocol_tests::rng::Rng;
use exactly_protocol_tests::{unique_topic, Broker, TransactionVersion};

fn versions() -> Vec<TransactionVersion> {
    match std::env::var("EXACTLY_EOS_TV").as_deref() {
        Ok("1") => vec![TransactionVersion::V1],
        Ok("2") => vec![TransactionVersion::V2],
        _ => TransactionVersion::ALL.to_vec(),
    }
}

fn long() -> bool {
    std::env::var_os("EXACTLY_SESSION_LONG").is_some()
}

/// How an instance's current life ends.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Plan {
    /// `kill -9` at this moment.
    KillAt(Instant),
    /// The process kills itself at its k-th TxnOffsetCommit/EndTxn window.
    CrashAtOffsets(u64),
    /// Runs until stopped (SIGTERM) or idle.
    Run,
}

struct Instance {
    id: String,
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
    plan: Plan,
    kills: u32,
    window_crashes: u32,
}

struct App<'a> {
    broker: &'a Broker,
    input: String,
    a: String,
    b: String,
    group: String,
    idle_secs: u64,
}

impl App<'_> {
    fn spawn(&self, id: &str, plan: Plan) -> (Child, mpsc::Receiver<String>) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_fanout"));
        cmd.args([
            &self.broker.bootstrap(),
            &self.input,
            &self.a,
            &self.b,
            &self.group,
            id,
            "500",
            &self.idle_secs.to_string(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
        if let Plan::CrashAtOffsets(k) = plan {
            cmd.env("EXACTLY_FANOUT_CRASH_AT_OFFSETS", k.to_string());
        }
        let mut child = cmd.spawn().expect("start fanout");
        let out = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        (child, rx)
    }

    fn start(&self, id: String, plan: Plan) -> Instance {
        let (child, lines) = self.spawn(&id, plan);
        Instance {
            id,
            child,
            lines,
            seen: Vec::new(),
            plan,
            kills: 0,
            window_crashes: 0,
        }
    }

    fn restart(&self, inst: &mut Instance, plan: Plan) {
        let (child, lines) = self.spawn(&inst.id, plan);
        inst.child = child;
        inst.lines = lines;
        inst.seen.clear();
        inst.plan = plan;
    }
}

impl Instance {
    fn drain(&mut self) {
        while let Ok(l) = self.lines.try_recv() {
            self.seen.push(l);
        }
    }

    /// Waits for the process to exit (up to `limit`), then reads the rest
    /// of its output.
    fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let t = Instant::now();
        loop {
            if let Some(s) = self.child.try_wait().expect("try_wait") {
                // The reader thread ends with the pipe.
                while let Ok(l) = self.lines.recv_timeout(Duration::from_secs(2)) {
                    self.seen.push(l);
                }
                return Some(s);
            }
            if t.elapsed() >= limit {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes `"0".."n-1"` (key = value) to `topic` at about `rate` records/s,
/// so the instances always have work while they are killed.
fn produce_paced(bootstrap: String, topic: String, n: u64, rate: u64, done: Arc<AtomicBool>) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let p = Producer::from_properties([
            ("bootstrap.servers", bootstrap.as_str()),
            ("acks", "all"),
            ("enable.idempotence", "true"),
            ("linger.ms", "5"),
        ])
        .await
        .expect("producer");
        let start = Instant::now();
        let chunk = (rate / 10).max(1);
        let mut i = 0;
        while i < n {
            let mut pending = Vec::new();
            for v in i..(i + chunk).min(n) {
                let s = v.to_string();
                pending.push(
                    p.send(
                        ProducerRecord::new(&topic)
                            .with_key(s.as_bytes())
                            .with_value(s.as_bytes()),
                    )
                    .await
                    .expect("send input"),
                );
            }
            for d in pending {
                d.await.expect("input delivered");
            }
            i = (i + chunk).min(n);
            let due = start + Duration::from_secs_f64(i as f64 / rate as f64);
            tokio::time::sleep_until(due.into()).await;
        }
        p.close(Duration::from_secs(30)).await.expect("close");
    });
    done.store(true, Ordering::SeqCst);
}

fn fanout(tv: TransactionVersion) {
    let broker = Broker::shared(tv).unwrap_or_else(|e| panic!("{e}"));
    let (n, kills_each, rate) = if long() {
        (300_000, 15, 3_000)
    } else {
        (30_000, 5, 1_000)
    };
    let app = App {
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
        std::thread::spawn(move || produce_paced(bootstrap, topic, n, rate, done))
    };
    let mut rng = Rng::seeded();
    // A random moment within a life: the start-up (fencing, joining) and
    // the steady state both get kills.
    let kill_plan = |rng: &mut Rng| {
        Plan::KillAt(Instant::now() + Duration::from_millis(300 + rng.below(3_700)))
    };
    let mut insts: Vec<Instance> = (0..3)
        .map(|i| app.start(format!("{}-i{i}", app.group), kill_plan(&mut rng)))
        .collect();
    let mut lives = 3u64;
    // Deaths of processes that had committed at least once.
    let mut killed_working = 0u32;

    // Kill phase: every instance dies `kills_each` times; its second and
    // fourth deaths are self-inflicted in the TxnOffsetCommit/EndTxn window.
    while insts.iter().any(|i| i.kills < kills_each) {
        assert!(Instant::now() < deadline, "{tv:?}: kill phase timed out");
        for inst in insts.iter_mut() {
            inst.drain();
            if inst.kills >= kills_each {
                if inst.plan != Plan::Run {
                    inst.plan = Plan::Run;
                }
                if let Some(status) = inst.child.try_wait().expect("try_wait") {
                    panic!(
                        "{tv:?}: {} exited ({status}) after its kills: {:?}",
                        inst.id, inst.seen
                    );
                }
                continue;
            }
            let died = match inst.plan {
                Plan::KillAt(at) if Instant::now() >= at => {
                    if let Some(status) = inst.child.try_wait().expect("try_wait") {
                        panic!(
                            "{tv:?}: {} exited ({status}) on its own: {:?}",
                            inst.id, inst.seen
                        );
                    }
                    signal(inst.child.id(), Signal::Kill);
                    inst.child.wait().expect("reap");
                    true
                }
                Plan::CrashAtOffsets(_) => match inst.child.try_wait().expect("try_wait") {
                    Some(_) => {
                        inst.wait_exit(Duration::from_secs(1));
                        assert!(
                            inst.seen
                                .iter()
                                .any(|l| l.starts_with("crash offsets_sent")),
                            "{tv:?}: {} ended without crashing in the window: {:?}",
                            inst.id,
                            inst.seen
                        );
                        inst.window_crashes += 1;
                        true
                    }
                    None => false,
                },
                _ => {
                    if let Some(status) = inst.child.try_wait().expect("try_wait") {
                        panic!(
                            "{tv:?}: {} exited ({status}) on its own: {:?}",
                            inst.id, inst.seen
                        );
                    }
                    false
                }
            };
            if died {
                inst.kills += 1;
                if inst.seen.iter().any(|l| l.starts_with("committed")) {
                    killed_working += 1;
                }
                let plan = if inst.kills == 1 || inst.kills == 3 {
                    Plan::CrashAtOffsets(1 + rng.below(3))
                } else if inst.kills >= kills_each {
                    Plan::Run
                } else {
                    kill_plan(&mut rng)
                };
                app.restart(inst, plan);
                lives += 1;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let kill_phase = t.elapsed();
    assert!(
        !produced.load(Ordering::SeqCst),
        "{tv:?}: the input ended before the kills did; the SIGTERM must come mid-stream"
    );

    // Graceful stop of instance 0, mid-stream.
    let stopped = &mut insts[0];
    let term_at = Instant::now();
    assert!(signal(stopped.child.id(), Signal::Term), "SIGTERM");
    let status = stopped
        .wait_exit(Duration::from_secs(40))
        .unwrap_or_else(|| panic!("{tv:?}: SIGTERM did not stop {} in 40 s", stopped.id));
    let stop_took = term_at.elapsed();
    assert!(
        status.success() && stopped.seen.iter().any(|l| l.starts_with("stopped")),
        "{tv:?}: SIGTERM: {status}, {:?}",
        stopped.seen
    );
    let (state, pid) = transaction_state(broker, &stopped.id).expect("describe");
    assert!(
        matches!(state.as_str(), "Empty" | "CompleteCommit" | "CompleteAbort"),
        "{tv:?}: {} left its transaction {state} after SIGTERM",
        stopped.id
    );
    // Others still run: only rows of the stopped producer count.
    for topic in [&app.a, &app.b] {
        let mine: Vec<String> = find_hanging(broker, topic)
            .into_iter()
            .filter(|row| row.split_whitespace().nth(2) == Some(&pid.to_string()))
            .collect();
        assert!(
            mine.is_empty(),
            "{tv:?}: hanging after SIGTERM on {topic}: {mine:?}"
        );
    }
    app.restart(stopped, Plan::Run);

    // Drain: the input ends, every instance stops once idle.
    producer.join().expect("input producer");
    for inst in insts.iter_mut() {
        let left = deadline.saturating_duration_since(Instant::now());
        let status = inst
            .wait_exit(left)
            .unwrap_or_else(|| panic!("{tv:?}: {} did not go idle", inst.id));
        assert!(
            status.success(),
            "{tv:?}: {} ended {status}: {:?}",
            inst.id,
            inst.seen
        );
    }
    let kills: Vec<(u32, u32)> = insts.iter().map(|i| (i.kills, i.window_crashes)).collect();
    println!(
        "{tv:?}: {n} inputs, 3 instances, (kills, of which in the offsets/EndTxn window) {kills:?}, \
         {} process lives ({killed_working} deaths after commits), kill phase {:.1} s, SIGTERM stop took {stop_took:?}, total {:.1} s",
        lives,
        kill_phase.as_secs_f64(),
        t.elapsed().as_secs_f64()
    );
    assert!(insts
        .iter()
        .all(|i| i.kills >= kills_each && i.window_crashes >= 2));
    // Window crashes always follow commits-in-progress; most random kills
    // must land mid-work too, or the schedule tests start-ups only.
    assert!(
        killed_working >= 3 * kills_each / 2,
        "{tv:?}: only {killed_working} deaths came after a commit"
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
        |v| v % 2 == 0,
        &format!("fan-out B {tv:?}"),
    );
}

#[test]
fn fanout_three_instances_killed_restarted_and_sigterm() {
    for tv in versions() {
        fanout(tv);
    }
}
