//! A real PostgreSQL server started by the test itself, for the
//! exactly-once sink and the outbox relay (`exactly-postgres`).
//!
//! [`Postgres::start`] runs Debian's `initdb` into a fresh directory under
//! the temp dir and starts `postgres` on a free 127.0.0.1 port (no Unix
//! socket; `fsync`, `synchronous_commit` and `full_page_writes` off: these
//! tests kill clients, never the server, so durability across a server crash
//! is not what they measure), then returns only after a real query answered.
//! The binaries are looked for under `/usr/lib/postgresql/<version>/bin`
//! (the newest version wins) unless `EXACTLY_PG_BIN` names their
//! directory; `cargo xtask test` installs Debian's `postgresql` package when
//! none is there.
//!
//! PostgreSQL refuses to run as root: when the tests run as root (CI), the
//! data directory is given to the `postgres` system user (`nobody` if there
//! is none) and `initdb` and the server run under that user's ids (set by
//! `std`'s `CommandExt::uid`/`gid` in the child before exec, groups
//! dropped). The server is spawned like the harness's JVMs
//! ([`crate::process::spawn_tied`]): `PR_SET_PDEATHSIG` (set after the user
//! change, which would clear it) kills it with the test process, and its
//! backends exit when it dies. Dropping a [`Postgres`] stops it (fast
//! shutdown, SIGKILL after 10 s) and deletes its directory. A server that
//! cannot start fails the test with the reason and the log's tail; it never
//! skips.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::broker::free_port;
use crate::error::{tail_of, HarnessError, IoContext, Result};
use crate::process::{self, Signal};

/// Environment variable naming the directory of `initdb` and `postgres`.
pub const PG_BIN_ENV: &str = "EXACTLY_PG_BIN";

/// The user every connection logs in as (`initdb -U`, trust authentication
/// on 127.0.0.1 only).
pub const SUPERUSER: &str = "postgres";

/// A running PostgreSQL server. See the module docs.
#[derive(Debug)]
pub struct Postgres {
    root: PathBuf,
    port: u16,
    child: Mutex<Option<Child>>,
}

static SEQ: AtomicUsize = AtomicUsize::new(0);

/// Whose ids the server runs under (None: ours).
#[derive(Debug, Clone, Copy)]
struct RunAs {
    uid: u32,
    gid: u32,
}

impl Postgres {
    /// Initializes a fresh cluster and starts it; returns once it answers
    /// queries.
    pub fn start() -> Result<Postgres> {
        let mut attempt = 1;
        loop {
            match Self::start_once() {
                // Another process took the free port before the server bound it.
                Err(HarnessError::Postgres { tail, .. })
                    if attempt < 3 && tail.contains("could not bind") =>
                {
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// One server per test binary, started on first use. A start failure is
    /// returned to every caller (tests fail with the reason; they never skip).
    pub fn shared() -> std::result::Result<&'static Postgres, String> {
        static PG: OnceLock<std::result::Result<Postgres, String>> = OnceLock::new();
        PG.get_or_init(|| Postgres::start().map_err(|e| e.to_string()))
            .as_ref()
            .map_err(|e| format!("the shared test PostgreSQL could not start: {e}"))
    }

    fn start_once() -> Result<Postgres> {
        let bin = find_bin()?;
        collect_garbage();
        let base = std::env::temp_dir().join("exactly-pg");
        std::fs::create_dir_all(&base).ctx(|| format!("creating {}", base.display()))?;
        let root = base.join(format!(
            "{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).ctx(|| format!("creating {}", root.display()))?;
        let run_as = run_as()?;
        if let Some(u) = run_as {
            std::os::unix::fs::chown(&root, Some(u.uid), Some(u.gid))
                .ctx(|| format!("giving {} to uid {}", root.display(), u.uid))?;
        }
        let pg = Postgres {
            port: free_port()?,
            root,
            child: Mutex::new(None),
        };
        pg.initdb(&bin, run_as)?;
        pg.spawn(&bin, run_as)?;
        pg.wait_ready()?;
        Ok(pg)
    }

    fn data_dir(&self) -> PathBuf {
        self.root.join("data")
    }

    /// The server's log (every error a client caused is in it: a test can
    /// look for, say, `duplicate key value violates unique constraint`).
    pub fn log_path(&self) -> PathBuf {
        self.root.join("server.log")
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read(self.log_path())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// The TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A libpq-style connection string for database `db`.
    pub fn connection_string(&self, db: &str) -> String {
        format!(
            "host=127.0.0.1 port={} user={SUPERUSER} dbname={db} connect_timeout=10",
            self.port
        )
    }

    /// The process id of the postmaster, if running.
    pub fn pid(&self) -> Option<u32> {
        self.child
            .lock()
            .ok()
            .and_then(|c| c.as_ref().map(Child::id))
    }

    /// Creates a database with a name unique in this process (from
    /// `prefix`: lowercase letters, digits, `_`) and returns its connection
    /// string, so tests sharing the server do not see each other's tables.
    pub fn create_database(&self, prefix: &str) -> Result<String> {
        static N: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "{prefix}_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        if !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            return Err(self.error(format!("bad database name {name:?}")));
        }
        self.execute("postgres", &format!("CREATE DATABASE {name}"))?;
        Ok(self.connection_string(&name))
    }

    /// Runs `sql` (one or more statements) on database `db`.
    pub fn execute(&self, db: &str, sql: &str) -> Result<()> {
        let conn = self.connection_string(db);
        block_on(async move {
            let client = connect(&conn).await.map_err(|e| e.to_string())?;
            client.batch_execute(sql).await.map_err(|e| e.to_string())
        })
        .map_err(|e| self.error(format!("{sql}: {e}")))
    }

    fn error(&self, why: String) -> HarnessError {
        HarnessError::Postgres {
            why,
            log: self.log_path(),
            tail: tail_of(&self.log_path(), 30),
        }
    }

    fn initdb(&self, bin: &Path, run_as: Option<RunAs>) -> Result<()> {
        let log = self.root.join("initdb.log");
        let out = std::fs::File::create(&log).ctx(|| format!("creating {}", log.display()))?;
        let err = out.try_clone().ctx(|| "cloning a log handle".into())?;
        let mut cmd = Command::new(bin.join("initdb"));
        cmd.arg("-D")
            .arg(self.data_dir())
            .args([
                "-U",
                SUPERUSER,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ])
            .current_dir(&self.root)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        as_user(&mut cmd, run_as);
        let status = cmd
            .status()
            .ctx(|| format!("running {}", bin.join("initdb").display()))?;
        if !status.success() {
            return Err(HarnessError::Postgres {
                why: format!("initdb exited with {status}"),
                tail: tail_of(&log, 30),
                log,
            });
        }
        Ok(())
    }

    fn spawn(&self, bin: &Path, run_as: Option<RunAs>) -> Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .ctx(|| format!("opening {}", self.log_path().display()))?;
        let log2 = log.try_clone().ctx(|| "cloning a log handle".into())?;
        let mut cmd = Command::new(bin.join("postgres"));
        cmd.arg("-D").arg(self.data_dir());
        for setting in [
            format!("port={}", self.port),
            "listen_addresses=127.0.0.1".into(),
            "unix_socket_directories=".into(),
            "fsync=off".into(),
            "synchronous_commit=off".into(),
            "full_page_writes=off".into(),
            "max_connections=200".into(),
            "shared_buffers=64MB".into(),
            // Every statement a client got an error for is logged with it.
            "log_min_error_statement=error".into(),
        ] {
            cmd.arg("-c").arg(setting);
        }
        cmd.current_dir(&self.root)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2));
        as_user(&mut cmd, run_as);
        let child = process::spawn_tied(cmd, "postgres")?;
        if let Ok(mut g) = self.child.lock() {
            *g = Some(child);
        }
        Ok(())
    }

    /// Waits until a real query answers (30 s at most).
    fn wait_ready(&self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let exited = self
                .child
                .lock()
                .ok()
                .and_then(|mut g| g.as_mut().and_then(|c| c.try_wait().ok().flatten()));
            if let Some(status) = exited {
                return Err(self.error(format!("the server exited with {status}")));
            }
            let last = match self.execute("postgres", "SELECT 1") {
                Ok(()) => return Ok(()),
                Err(e) => e.to_string(),
            };
            if Instant::now() > deadline {
                return Err(self.error(format!("not answering after 30 s: {last}")));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops the server: SIGINT (fast shutdown: open transactions roll back,
    /// clients are disconnected), SIGKILL after 10 s.
    pub fn stop(&self) {
        let Ok(mut guard) = self.child.lock() else {
            return;
        };
        let Some(mut child) = guard.take() else {
            return;
        };
        process::signal(child.id(), Signal::Cont);
        process::signal(child.id(), Signal::Interrupt);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if child.try_wait().ok().flatten().is_some() {
                return;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// Connects to `conn` (e.g. from [`Postgres::create_database`]) without
/// TLS; the connection's task runs on the current tokio runtime until the
/// client is dropped.
pub async fn connect(
    conn: &str,
) -> std::result::Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(conn, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

/// Runs a future on a small runtime of its own (the harness is blocking).
fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt.block_on(f),
        Err(e) => panic!("cannot build a tokio runtime for the PostgreSQL harness: {e}"),
    }
}

/// Sets the child's user and group when the server must not run as us.
fn as_user(cmd: &mut Command, run_as: Option<RunAs>) {
    use std::os::unix::process::CommandExt;
    if let Some(u) = run_as {
        // std drops the supplementary groups (setgroups(0)) when it changes
        // the uid as root, and does so before any pre_exec closure runs.
        cmd.uid(u.uid).gid(u.gid).env_remove("HOME");
    }
}

/// `None` when not root; else the ids of `postgres` (or `nobody`) from
/// /etc/passwd.
fn run_as() -> Result<Option<RunAs>> {
    #[allow(unsafe_code)]
    // SAFETY: geteuid(2) has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    if euid != 0 {
        return Ok(None);
    }
    let passwd = std::fs::read_to_string("/etc/passwd").ctx(|| "reading /etc/passwd".into())?;
    for user in ["postgres", "nobody"] {
        let found = passwd.lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() >= 4 && f[0] == user)
                .then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))
                .flatten()
        });
        if let Some((uid, gid)) = found {
            return Ok(Some(RunAs { uid, gid }));
        }
    }
    Err(HarnessError::Postgres {
        why: "running as root, and neither a `postgres` nor a `nobody` user exists to run \
              the server as (PostgreSQL refuses root)"
            .into(),
        log: PathBuf::from("/etc/passwd"),
        tail: String::new(),
    })
}

/// The directory holding `initdb` and `postgres`: `EXACTLY_PG_BIN`, else
/// the newest `/usr/lib/postgresql/<version>/bin`; an error saying how to
/// install them if there is none.
pub fn find_bin() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os(PG_BIN_ENV) {
        let dir = PathBuf::from(dir);
        if dir.join("postgres").is_file() && dir.join("initdb").is_file() {
            return Ok(dir);
        }
        return Err(HarnessError::Postgres {
            why: format!(
                "{PG_BIN_ENV}={} holds no initdb and postgres",
                dir.display()
            ),
            log: dir,
            tail: String::new(),
        });
    }
    let base = Path::new("/usr/lib/postgresql");
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir(base)
        .map(|d| {
            d.filter_map(|e| {
                let e = e.ok()?;
                let v: u32 = e.file_name().to_str()?.parse().ok()?;
                let bin = e.path().join("bin");
                (bin.join("postgres").is_file() && bin.join("initdb").is_file()).then_some((v, bin))
            })
            .collect()
        })
        .unwrap_or_default();
    versions.sort();
    versions
        .pop()
        .map(|(_, bin)| bin)
        .ok_or_else(|| HarnessError::Postgres {
            why: format!(
                "no PostgreSQL server binaries under {}/<version>/bin: install Debian's \
             `postgresql` package (`apt-get install -y postgresql`; `cargo xtask test` does it), \
             or set {PG_BIN_ENV}",
                base.display()
            ),
            log: base.to_path_buf(),
            tail: String::new(),
        })
}

/// Removes the directories of servers whose test process is gone.
fn collect_garbage() {
    let base = std::env::temp_dir().join("exactly-pg");
    let Ok(entries) = std::fs::read_dir(&base) else {
        return;
    };
    for e in entries.flatten() {
        let pid = e
            .file_name()
            .to_str()
            .and_then(|n| n.split('-').next())
            .and_then(|p| p.parse::<u32>().ok());
        if let Some(pid) = pid {
            if !Path::new(&format!("/proc/{pid}")).exists() {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
}
