//! A child process of the test (a sink, a relay) whose stdout lines are
//! collected as they come, so a test can watch its progress, kill it at a
//! chosen moment, and read everything it said afterwards.

use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};

use crate::process::{self, Signal};

/// A running child with its stdout collected. Dropping it kills (SIGKILL)
/// and reaps it.
#[derive(Debug)]
pub struct ReportingChild {
    name: String,
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    status: Option<ExitStatus>,
}

impl ReportingChild {
    /// Starts `cmd` (stdout piped and collected, stderr inherited), tied to
    /// this process: it gets SIGKILL if the test process dies first (see
    /// [`crate::process`]).
    pub fn start(name: impl Into<String>, mut cmd: Command) -> crate::Result<Self> {
        let name = name.into();
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = process::spawn_tied(cmd, &name)?;
        let lines = Arc::new(Mutex::new(Vec::new()));
        if let Some(out) = child.stdout.take() {
            let sink = lines.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    if let Ok(mut l) = sink.lock() {
                        l.push(line);
                    }
                }
            });
        }
        Ok(Self {
            name,
            child,
            lines,
            status: None,
        })
    }

    /// Its name (for messages).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Every line it printed so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// The last line starting with `prefix`.
    pub fn last_line(&self, prefix: &str) -> Option<String> {
        self.lines()
            .into_iter()
            .rev()
            .find(|l| l.starts_with(prefix))
    }

    /// Its exit status, if it has exited (reaped once, remembered).
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().ok().flatten();
        }
        self.status
    }

    /// Whether it ended because of SIGKILL (its own or ours).
    pub fn was_killed(&mut self) -> bool {
        self.exit_status().and_then(|s| s.signal()) == Some(libc::SIGKILL)
    }

    /// Sends a signal (nothing if it already exited).
    pub fn signal(&mut self, sig: Signal) {
        if self.exit_status().is_none() {
            process::signal(self.child.id(), sig);
        }
    }

    /// Waits up to `limit` for it to exit.
    pub fn wait_exit(&mut self, limit: std::time::Duration) -> Option<ExitStatus> {
        let deadline = std::time::Instant::now() + limit;
        loop {
            if let Some(s) = self.exit_status() {
                return Some(s);
            }
            if std::time::Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// `kill -9` and reap.
    pub fn kill9(&mut self) {
        if self.exit_status().is_none() {
            let _ = self.child.kill();
            self.status = self.child.wait().ok();
        }
    }
}

impl Drop for ReportingChild {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// The child's side: what the fault-test processes (`src/bin/pg_sink.rs`,
/// `src/bin/outbox_relay.rs`) share.
pub mod side {
    use std::io::Write;

    /// Prints one line on stdout and flushes it (the parent reads lines as
    /// they come).
    pub fn say(line: &str) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }

    /// Logs to stderr when `RUST_LOG` is set (the parent reads stdout).
    pub fn init_tracing_from_env() {
        if std::env::var_os("RUST_LOG").is_some() {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
                .with_writer(std::io::stderr)
                .try_init();
        }
    }

    /// `EXACTLY_CRASH_AFTER_COMMITS=k`: the process kills itself right after
    /// its k-th commit.
    pub fn crash_after_commits() -> Option<u64> {
        std::env::var("EXACTLY_CRASH_AFTER_COMMITS")
            .ok()
            .and_then(|v| v.parse().ok())
    }

    /// SIGKILL to this very process: nothing after it runs.
    pub fn kill_self() {
        crate::process::signal(std::process::id(), crate::process::Signal::Kill);
    }

    /// Calls `stop` on SIGTERM (spawned on the current tokio runtime).
    pub fn on_sigterm(stop: impl FnOnce() + Send + 'static) {
        tokio::spawn(async move {
            if let Ok(mut term) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            {
                term.recv().await;
                stop();
            }
        });
    }

    /// A multi-threaded runtime, or exit 1 saying why.
    pub fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Runtime::new().unwrap_or_else(|e| {
            eprintln!("tokio: {e}");
            std::process::exit(1)
        })
    }
}
