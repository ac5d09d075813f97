//! The harness's error type: every failure says what to do about it.

use std::path::PathBuf;

/// Why the harness could not do what a test asked.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// A required program (java, mvn) is not installed.
    #[error(
        "`{program}` was not found on PATH ({why}). The test broker needs JDK 17+ and Maven \
         (Apache Kafka runs from Maven Central jars); the exactly library itself needs neither."
    )]
    MissingTool {
        /// The program looked for.
        program: &'static str,
        /// What went wrong running it.
        why: String,
    },
    /// Maven could not resolve the broker jars.
    #[error(
        "could not fetch the Kafka {version} jars with Maven (exit {status}); last output:\n{tail}"
    )]
    Maven {
        /// Kafka version requested.
        version: String,
        /// Maven's exit status.
        status: String,
        /// The end of Maven's output.
        tail: String,
    },
    /// A Kafka version the harness cannot use, or a feature it lacks.
    #[error("Kafka {version}: {why}")]
    Version {
        /// The version asked for.
        version: String,
        /// Why it cannot be used.
        why: String,
    },
    /// The broker did not become ready in time (or died while starting).
    #[error("broker node {node} did not become ready: {why}\n--- last lines of {log} ---\n{tail}")]
    NotReady {
        /// Node id.
        node: i32,
        /// What was seen.
        why: String,
        /// The broker's log file.
        log: PathBuf,
        /// Its last lines.
        tail: String,
    },
    /// PostgreSQL could not be found, initialized or started.
    #[error("PostgreSQL: {why}\n--- last lines of {log} ---\n{tail}")]
    Postgres {
        /// What went wrong.
        why: String,
        /// The server's (or initdb's) log file.
        log: PathBuf,
        /// Its last lines.
        tail: String,
    },
    /// A Java tool failed or timed out.
    #[error("java tool {class} failed: {why}\n--- stderr tail ---\n{stderr}")]
    JavaTool {
        /// The main class run.
        class: String,
        /// What went wrong.
        why: String,
        /// The end of its stderr.
        stderr: String,
    },
    /// A Kafka request made by the harness itself failed.
    #[error("harness request to {addr} failed: {why}")]
    Protocol {
        /// The broker address.
        addr: String,
        /// What went wrong.
        why: String,
    },
    /// An I/O error with context.
    #[error("{context}: {source}")]
    Io {
        /// What the harness was doing.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

/// Shorthand.
pub type Result<T, E = HarnessError> = std::result::Result<T, E>;

/// Adds context to an I/O error.
pub(crate) trait IoContext<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| HarnessError::Io {
            context: context(),
            source,
        })
    }
}

/// The last `n` lines of a file (best effort, for error messages).
pub(crate) fn tail_of(path: &std::path::Path, n: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) => tail_lines(&String::from_utf8_lossy(&bytes), n),
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}

/// The last `n` lines of a string.
pub(crate) fn tail_lines(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
