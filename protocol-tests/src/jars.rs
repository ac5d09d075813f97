//! Apache Kafka jars from Maven Central, cached so a second run is offline.
//!
//! The machines reach Maven Central but not Apache's download site, so the
//! broker, the reference Java client and kafka-tools come from the Maven
//! project in `protocol-tests/kafka/pom.xml`, copied into one `libs/` folder.
//! The cache lives in `$EXACTLY_KAFKA_LIBS` if set, else
//! `$XDG_CACHE_HOME/exactly/kafka-<version>/libs` (default `~/.cache`). A
//! `.complete` marker is written only after Maven succeeded, and the folder is
//! filled under a temporary name and renamed, so concurrent or interrupted
//! runs never see half a cache.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{tail_lines, HarnessError, IoContext, Result};

/// The one Kafka version used for every `org.apache.kafka` artifact.
pub const KAFKA_VERSION: &str = "4.3.1";

const MARKER: &str = ".complete";

/// The directory holding the jars (it may not exist yet).
pub fn libs_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("EXACTLY_KAFKA_LIBS") {
        return PathBuf::from(dir);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    cache
        .join("exactly")
        .join(format!("kafka-{KAFKA_VERSION}"))
        .join("libs")
}

/// The pom that lists the jars.
pub fn pom_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("kafka")
        .join("pom.xml")
}

/// Checks that `program` runs at all (`<program> -version`).
pub(crate) fn require_tool(program: &'static str, version_flag: &str) -> Result<()> {
    match Command::new(program).arg(version_flag).output() {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(HarnessError::MissingTool {
            program,
            why: format!("`{program} {version_flag}` exited with {}", out.status),
        }),
        Err(e) => Err(HarnessError::MissingTool {
            program,
            why: e.to_string(),
        }),
    }
}

/// Returns the jar folder, fetching the jars with Maven first if the cache is
/// not complete. Fails with a clear message if Java or Maven is missing.
pub fn ensure_jars() -> Result<PathBuf> {
    // One fetch at a time within this process (tests start brokers from many
    // threads); across processes the atomic rename below decides.
    static FETCH: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = FETCH
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    require_tool("java", "-version")?;
    let libs = libs_dir();
    if libs.join(MARKER).exists() {
        return Ok(libs);
    }
    require_tool("mvn", "-v")?;
    let parent = libs.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).ctx(|| format!("creating {}", parent.display()))?;
    let tmp = parent.join(format!("libs.tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let out = Command::new("mvn")
        .args(["-B", "-q", "-f"])
        .arg(pom_path())
        .arg(format!("-Dlibs.dir={}", tmp.display()))
        .arg("package")
        .output()
        .ctx(|| "running mvn".to_owned())?;
    if !out.status.success() {
        let _ = std::fs::remove_dir_all(&tmp);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        return Err(HarnessError::Maven {
            version: KAFKA_VERSION,
            status: out.status.to_string(),
            tail: tail_lines(&text, 30),
        });
    }
    std::fs::write(tmp.join(MARKER), KAFKA_VERSION).ctx(|| "writing jar cache marker".into())?;
    match std::fs::rename(&tmp, &libs) {
        Ok(()) => {}
        // Another process completed the cache first: use theirs.
        Err(_) if libs.join(MARKER).exists() => {
            let _ = std::fs::remove_dir_all(&tmp);
        }
        Err(e) => {
            return Err(HarnessError::Io {
                context: format!("moving jars into {}", libs.display()),
                source: e,
            })
        }
    }
    Ok(libs)
}

/// The classpath argument for `java -cp`.
pub fn classpath(libs: &Path) -> String {
    format!("{}/*", libs.display())
}
