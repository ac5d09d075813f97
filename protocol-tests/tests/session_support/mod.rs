//! The kill schedule of the session's acceptance tests (issue 11), shared
//! by `eos_session_fanout.rs` and `eos_session_count.rs`: three processes
//! of `src/bin/eos_app.rs` in one group, each killed -9 and restarted at
//! random moments and made to kill itself between TxnOffsetCommit and
//! EndTxn, then one SIGTERMed mid-stream, then all drained.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use exactly::{Producer, ProducerRecord};
use exactly_protocol_tests::judge::{find_hanging, transaction_state};
use exactly_protocol_tests::process::{signal, Signal};
use exactly_protocol_tests::rng::Rng;
use exactly_protocol_tests::{Broker, TransactionVersion};

/// The transaction versions to run (`EXACTLY_EOS_TV=1|2` picks one).
pub fn versions() -> Vec<TransactionVersion> {
    match std::env::var("EXACTLY_EOS_TV").as_deref() {
        Ok("1") => vec![TransactionVersion::V1],
        Ok("2") => vec![TransactionVersion::V2],
        _ => TransactionVersion::ALL.to_vec(),
    }
}

/// `EXACTLY_SESSION_LONG` asks for the long variant.
pub fn long() -> bool {
    std::env::var_os("EXACTLY_SESSION_LONG").is_some()
}

/// How an instance's current life ends.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Plan {
    /// `kill -9` at this moment.
    KillAt(Instant),
    /// The process kills itself at its k-th TxnOffsetCommit/EndTxn window.
    CrashAtOffsets(u64),
    /// Runs until stopped (SIGTERM) or idle.
    Run,
}

pub struct Instance {
    pub id: String,
    pub child: Child,
    lines: mpsc::Receiver<String>,
    pub seen: Vec<String>,
    plan: Plan,
    pub kills: u32,
    pub window_crashes: u32,
}

pub struct App<'a> {
    pub mode: &'static str,
    pub broker: &'a Broker,
    pub input: String,
    pub a: String,
    pub b: String,
    pub group: String,
    pub idle_secs: u64,
}

impl App<'_> {
    fn spawn(&self, id: &str, plan: Plan) -> (Child, mpsc::Receiver<String>) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_eos_app"));
        cmd.args([
            self.mode,
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
            cmd.env("EXACTLY_APP_CRASH_AT_OFFSETS", k.to_string());
        }
        let mut child = cmd.spawn().expect("start eos_app");
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
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
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

/// Writes `"0".."n-1"` as values to `topic` at about `rate` records/s, so
/// the instances always have work while they are killed; the key of value
/// `v` is `key(v)`.
pub fn produce_paced(
    bootstrap: String,
    topic: String,
    n: u64,
    rate: u64,
    key: fn(u64) -> String,
    done: Arc<AtomicBool>,
) {
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
                let (k, s) = (key(v), v.to_string());
                pending.push(
                    p.send(
                        ProducerRecord::new(&topic)
                            .with_key(k.as_bytes())
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

/// What the kill schedule did.
#[derive(Debug)]
pub struct KillReport {
    /// Per instance: (kills, of which self-inflicted in the window).
    pub kills: Vec<(u32, u32)>,
    /// Processes started.
    pub lives: u64,
    /// Deaths of processes that had committed at least once, or that died
    /// in the middle of a commit.
    pub killed_working: u32,
    /// How long the kill phase took.
    pub kill_phase: Duration,
    /// How long the SIGTERMed instance took to stop.
    pub stop_took: Duration,
}

/// Starts 3 instances, kills each `kills_each` times (every third death,
/// from the 2nd, self-inflicted in the TxnOffsetCommit/EndTxn window), then
/// SIGTERMs instance 0 while `produced` is still false and checks it left
/// no open transaction, restarts it, and waits until every instance went
/// idle and exited cleanly.
pub fn kill_schedule(
    app: &App<'_>,
    tv: TransactionVersion,
    kills_each: u32,
    deadline: Instant,
    produced: &AtomicBool,
    producer: std::thread::JoinHandle<()>,
) -> KillReport {
    let broker = app.broker;
    let t = Instant::now();
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
    // Deaths of processes that had committed at least once, or mid-commit.
    let mut killed_working = 0u32;

    // Kill phase: every instance dies `kills_each` times; every third death
    // from the second is self-inflicted in the TxnOffsetCommit/EndTxn window.
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
                // A window crash is mid-commit by construction.
                if inst
                    .seen
                    .iter()
                    .any(|l| l.starts_with("committed") || l.starts_with("crash offsets_sent"))
                {
                    killed_working += 1;
                }
                let plan = if inst.kills >= kills_each {
                    Plan::Run
                } else if inst.kills % 3 == 1 {
                    Plan::CrashAtOffsets(1 + rng.below(3))
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
    // It may have been restarted a moment ago: a SIGTERM before its handler
    // is installed would be the default death, not a graceful stop.
    let ready_by = Instant::now() + Duration::from_secs(30);
    loop {
        stopped.drain();
        if stopped.seen.iter().any(|l| l == "ready") {
            break;
        }
        assert!(
            Instant::now() < ready_by,
            "{tv:?}: {} did not say ready in 30 s: {:?}",
            stopped.id,
            stopped.seen
        );
        std::thread::sleep(Duration::from_millis(20));
    }
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
    let report = KillReport {
        kills: insts.iter().map(|i| (i.kills, i.window_crashes)).collect(),
        lives,
        killed_working,
        kill_phase,
        stop_took,
    };
    assert!(
        report.kills.iter().all(|&(k, w)| k >= kills_each && w >= 2),
        "{tv:?}: {report:?}"
    );
    // Besides the window crashes (6 of the deaths), most random kills must
    // land mid-work too, or the schedule tests start-ups only.
    assert!(
        killed_working >= 3 * kills_each * 2 / 3,
        "{tv:?}: only {killed_working} deaths came after a commit"
    );
    report
}
