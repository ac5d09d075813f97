//! Apache Kafka jars from Maven Central, cached so a second run is offline.
//!
//! The machines reach Maven Central but not Apache's download site, so the
//! broker, the reference Java client and kafka-tools come from the Maven
//! project in `protocol-tests/kafka/pom.xml` (its `kafka.version` property
//! set per run), copied into one `libs/` folder per Kafka version.
//!
//! Which version: [`KafkaVersion::selected`], i.e. `$EXACTLY_KAFKA_VERSION`
//! if set (any release Maven Central serves, 3.9 or newer: the compatibility
//! matrix in docs/KAFKA-BROKER.md), else [`KAFKA_VERSION`]. The cache of the
//! selected version lives in `$EXACTLY_KAFKA_LIBS` if set, else
//! `$XDG_CACHE_HOME/exactly/kafka-<version>/libs` (default `~/.cache`); every
//! other version always in the latter, so jar sets never mix. A `.complete`
//! marker is written only after Maven succeeded, and the folder is filled
//! under a temporary name and renamed, so concurrent or interrupted runs never
//! see half a cache.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{tail_lines, HarnessError, IoContext, Result};

/// The default Kafka version (every `org.apache.kafka` artifact of one run
/// has one version): what the tests run against unless
/// `$EXACTLY_KAFKA_VERSION` says otherwise.
pub const KAFKA_VERSION: &str = "4.3.1";

/// The environment variable that selects the broker's Kafka version.
pub const VERSION_ENV: &str = "EXACTLY_KAFKA_VERSION";

/// The versions of the compatibility matrix (`cargo xtask compat`), oldest
/// first: the newest 3.x, the first and the default 4.x lines, the newest.
pub const COMPAT_VERSIONS: &[&str] = &["3.9.2", "4.0.2", "4.3.1", "4.4.0"];

const MARKER: &str = ".complete";

/// An Apache Kafka release, `major.minor.patch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KafkaVersion {
    /// Major version (3 or 4).
    pub major: u16,
    /// Minor version.
    pub minor: u16,
    /// Patch version.
    pub patch: u16,
}

impl KafkaVersion {
    /// Parses `4.3.1`. Only KRaft releases the harness can start are
    /// accepted: 3.9 (the first with `StorageTool format --standalone` and
    /// `controller.quorum.bootstrap.servers`, KIP-853) and newer.
    pub fn parse(text: &str) -> Result<Self> {
        let bad = |why: &str| HarnessError::Version {
            version: text.to_owned(),
            why: why.to_owned(),
        };
        let parts: Vec<u16> = text
            .trim()
            .split('.')
            .map(|p| p.parse::<u16>())
            .collect::<std::result::Result<_, _>>()
            .map_err(|_| bad("not major.minor.patch"))?;
        let [major, minor, patch] = parts[..] else {
            return Err(bad("not major.minor.patch"));
        };
        let v = Self {
            major,
            minor,
            patch,
        };
        if (major, minor) < (3, 9) {
            return Err(bad(
                "the harness starts KRaft brokers of Kafka 3.9 or newer (3.9 is the first with a standalone KRaft format, KIP-853)",
            ));
        }
        Ok(v)
    }

    /// The version selected for this process: `$EXACTLY_KAFKA_VERSION` if
    /// set, else [`KAFKA_VERSION`].
    pub fn selected() -> Result<Self> {
        match std::env::var(VERSION_ENV) {
            Ok(v) if !v.trim().is_empty() => Self::parse(&v),
            _ => Self::parse(KAFKA_VERSION),
        }
    }

    /// Whether the `transaction.version` feature can be finalized at 2
    /// (KIP-890 part 2; production-ready from Kafka 4.0). A 3.x cluster runs
    /// the older transaction protocol only.
    pub fn offers_transaction_v2(self) -> bool {
        self.major >= 4
    }

    /// The transaction versions a test can run on this release.
    pub fn transaction_versions(self) -> Vec<crate::TransactionVersion> {
        if self.offers_transaction_v2() {
            crate::TransactionVersion::ALL.to_vec()
        } else {
            vec![crate::TransactionVersion::V1]
        }
    }
}

impl std::fmt::Display for KafkaVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

fn cache_dir(version: KafkaVersion) -> PathBuf {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    cache
        .join("exactly")
        .join(format!("kafka-{version}"))
        .join("libs")
}

/// The directory holding the selected version's jars (it may not exist
/// yet). Falls back to the default version's if the selection is invalid
/// (starting a broker then reports why).
pub fn libs_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("EXACTLY_KAFKA_LIBS") {
        return PathBuf::from(dir);
    }
    let v = KafkaVersion::selected()
        .or_else(|_| KafkaVersion::parse(KAFKA_VERSION))
        .unwrap_or(KafkaVersion {
            major: 4,
            minor: 3,
            patch: 1,
        });
    cache_dir(v)
}

/// The directory holding the jars of `version` (it may not exist yet).
pub fn libs_dir_for(version: KafkaVersion) -> PathBuf {
    match KafkaVersion::selected() {
        Ok(selected) if selected == version => libs_dir(),
        _ => cache_dir(version),
    }
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

/// Returns the jar folder of the selected version ([`KafkaVersion::selected`]),
/// fetching the jars with Maven first if the cache is not complete. Fails
/// with a clear message if Java or Maven is missing.
pub fn ensure_jars() -> Result<PathBuf> {
    ensure_jars_for(KafkaVersion::selected()?)
}

/// [`ensure_jars`] for one Kafka version.
pub fn ensure_jars_for(version: KafkaVersion) -> Result<PathBuf> {
    // One fetch at a time within this process (tests start brokers from many
    // threads); across processes the atomic rename below decides.
    static FETCH: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = FETCH
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    require_tool("java", "-version")?;
    let libs = libs_dir_for(version);
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
        .arg(format!("-Dkafka.version={version}"))
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
            version: version.to_string(),
            status: out.status.to_string(),
            tail: tail_lines(&text, 30),
        });
    }
    std::fs::write(tmp.join(MARKER), version.to_string())
        .ctx(|| "writing jar cache marker".into())?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_order_and_features() {
        let v39 = KafkaVersion::parse("3.9.2").unwrap();
        let v40 = KafkaVersion::parse("4.0.2").unwrap();
        let v44 = KafkaVersion::parse(" 4.4.0 ").unwrap();
        assert!(v39 < v40 && v40 < v44);
        assert_eq!(v44.to_string(), "4.4.0");
        assert!(!v39.offers_transaction_v2());
        assert_eq!(
            v39.transaction_versions(),
            vec![crate::TransactionVersion::V1]
        );
        assert_eq!(v40.transaction_versions().len(), 2);
        assert!(KafkaVersion::parse("3.8.1").is_err(), "pre-3.9 refused");
        assert!(KafkaVersion::parse("4.3").is_err());
        assert!(KafkaVersion::parse("4.x.1").is_err());
        for v in COMPAT_VERSIONS {
            KafkaVersion::parse(v).unwrap();
        }
    }
}
