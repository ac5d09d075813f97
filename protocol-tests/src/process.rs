//! Child processes that cannot outlive the test process.
//!
//! Every JVM the harness starts is spawned from one long-lived "spawner"
//! thread with `PR_SET_PDEATHSIG = SIGKILL`. The kernel sends that signal when
//! the *thread* that forked the child exits, which is why a dedicated thread
//! (alive until the process ends) does the forking: test threads come and go,
//! the spawner stays. So even when a test binary panics past its `Drop`s, is
//! killed by a CI timeout, or keeps a broker in a `static`, its JVMs die with
//! it. `Drop` of every handle also kills and reaps its child explicitly.
//!
//! Detached processes (`cargo xtask kafka up`) are the one exception: they
//! get their own process group and no death signal, and are stopped by
//! `cargo xtask kafka down`.

use std::process::{Child, Command};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};

use crate::error::{HarnessError, Result};

type Job = (Command, mpsc::Sender<std::io::Result<Child>>);

fn spawner() -> &'static Mutex<mpsc::Sender<Job>> {
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<Job>>> = OnceLock::new();
    SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("exactly-harness-spawner".into())
            .spawn(move || {
                // Lives as long as the process: the sender sits in a static.
                for (mut cmd, reply) in rx {
                    let _ = reply.send(spawn_with_death_signal(&mut cmd));
                }
            })
            .map(|_| ())
            .unwrap_or_else(|e| panic!("cannot start the harness spawner thread: {e}"));
        Mutex::new(tx)
    })
}

#[allow(unsafe_code)]
fn spawn_with_death_signal(cmd: &mut Command) -> std::io::Result<Child> {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the forked child before exec and calls only
    // async-signal-safe functions (prctl, getppid), touching no allocator.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have died between fork and prctl.
            if libc::getppid() == 1 {
                return Err(std::io::Error::other("parent died before exec"));
            }
            Ok(())
        });
    }
    cmd.spawn()
}

/// Spawns `cmd` so that it is killed when this process exits.
pub fn spawn_tied(cmd: Command, what: &str) -> Result<Child> {
    let (tx, rx) = mpsc::channel();
    let sent = spawner()
        .lock()
        .map_err(|_| std::io::Error::other("spawner lock poisoned"))
        .and_then(|s| {
            s.send((cmd, tx))
                .map_err(|_| std::io::Error::other("spawner thread is gone"))
        });
    let child = sent.and_then(|()| {
        rx.recv()
            .map_err(|_| std::io::Error::other("spawner thread dropped the request"))?
    });
    child.map_err(|source| HarnessError::Io {
        context: format!("starting {what}"),
        source,
    })
}

/// Spawns `cmd` detached: its own process group, no death signal.
pub fn spawn_detached(mut cmd: Command, what: &str) -> Result<Child> {
    use std::os::unix::process::CommandExt;
    cmd.process_group(0);
    cmd.spawn().map_err(|source| HarnessError::Io {
        context: format!("starting {what}"),
        source,
    })
}

/// Environment variable naming the test run (set by `cargo xtask test`): every
/// harness JVM carries it on its command line, so the stray-JVM check after a
/// run looks only at that run's JVMs, never at another run's on this machine.
pub const RUN_TAG_ENV: &str = "EXACTLY_HARNESS_RUN";

/// The `-D` argument that tags a JVM with this process's run (see
/// [`RUN_TAG_ENV`]); `-Dexactly.harness.run=untagged` outside a tagged run.
pub fn run_tag_property() -> String {
    run_tag_arg(&std::env::var(RUN_TAG_ENV).unwrap_or_else(|_| "untagged".into()))
}

/// The `-D` argument of a given run tag.
pub fn run_tag_arg(tag: &str) -> String {
    format!("-Dexactly.harness.run={tag}")
}

/// Sends a signal to a process id. Returns false if it does not exist.
#[allow(unsafe_code)]
pub fn signal(pid: u32, sig: Signal) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe { libc::kill(pid, sig.raw()) == 0 }
}

/// The signals the fault-injection primitives use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// `kill -9`: no shutdown at all.
    Kill,
    /// Clean shutdown request.
    Term,
    /// SIGINT (PostgreSQL's "fast shutdown").
    Interrupt,
    /// Freeze the process (it keeps its sockets open).
    Stop,
    /// Resume a frozen process.
    Cont,
}

impl Signal {
    fn raw(self) -> libc::c_int {
        match self {
            Signal::Kill => libc::SIGKILL,
            Signal::Term => libc::SIGTERM,
            Signal::Interrupt => libc::SIGINT,
            Signal::Stop => libc::SIGSTOP,
            Signal::Cont => libc::SIGCONT,
        }
    }
}

/// Whether a pid is alive (not a zombie) and one of its command-line
/// arguments is exactly `arg`.
pub fn alive_with_arg(pid: u32, arg: &str) -> bool {
    match std::fs::read(format!("/proc/{pid}/cmdline")) {
        Ok(raw) => raw.split(|&b| b == 0).any(|a| a == arg.as_bytes()) && !is_zombie(pid),
        Err(_) => false,
    }
}

fn is_zombie(pid: u32) -> bool {
    state_of(&format!("/proc/{pid}/stat")) == Some('Z')
}

/// The state letter of a `/proc/.../stat` file (R, S, T, Z, ...).
fn state_of(stat_path: &str) -> Option<char> {
    let s = std::fs::read_to_string(stat_path).ok()?;
    s.rsplit_once(") ")?.1.chars().next()
}

/// Waits until every thread of `pid` is stopped (state `T`/`t`), up to
/// `limit`. kill(2) only queues SIGSTOP: a thread running on another core
/// can still answer a request for a moment after it returns. False if the
/// process is gone or some thread still runs at the deadline.
pub fn wait_stopped(pid: u32, limit: std::time::Duration) -> bool {
    let deadline = std::time::Instant::now() + limit;
    loop {
        let all_stopped = std::fs::read_dir(format!("/proc/{pid}/task")).is_ok_and(|dir| {
            dir.filter_map(Result::ok).all(|t| {
                let path = t.path().join("stat");
                matches!(state_of(&path.to_string_lossy()), Some('T' | 't') | None)
            })
        });
        if all_stopped {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// Process ids of live processes with the exact argument `arg`.
pub fn pids_with_arg(arg: &str) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != std::process::id() && alive_with_arg(pid, arg))
        .collect()
}
