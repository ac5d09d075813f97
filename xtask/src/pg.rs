//! PostgreSQL for the tests of `exactly-postgres`: Debian's server package,
//! installed when missing (CI runs as root on a fresh machine). The
//! harness (`protocol-tests/src/postgres.rs`) starts its own servers from
//! these binaries; no cluster of the package is created or started.

use std::process::Command;

use anyhow::{bail, Context, Result};
use exactly_protocol_tests::postgres::find_bin;

use crate::run;

/// Makes sure `initdb` and `postgres` are installed, installing Debian's
/// `postgresql` package (non-interactive) if they are not.
pub(crate) fn ensure() -> Result<()> {
    if let Ok(bin) = find_bin() {
        eprintln!("==> PostgreSQL: {}", bin.display());
        return Ok(());
    }
    let root = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false);
    if !root {
        bail!(
            "PostgreSQL server binaries are missing and this is not root: install Debian's \
             `postgresql` package (sudo apt-get install -y postgresql) or set EXACTLY_PG_BIN"
        );
    }
    // The package would create and start a `main` cluster; the tests start
    // their own servers, so ask postgresql-common not to (unless the admin
    // already wrote this file).
    let conf = std::path::Path::new("/etc/postgresql-common/createcluster.conf");
    if !conf.exists() {
        std::fs::create_dir_all("/etc/postgresql-common")
            .context("creating /etc/postgresql-common")?;
        std::fs::write(conf, "create_main_cluster = false\n")
            .with_context(|| format!("writing {}", conf.display()))?;
    }
    run(
        "apt-get update",
        Command::new("apt-get")
            .args(["update", "-q"])
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )?;
    run(
        "install PostgreSQL (Debian's postgresql package)",
        Command::new("apt-get")
            .args([
                "install",
                "-y",
                "-q",
                "--no-install-recommends",
                "postgresql",
            ])
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )?;
    let bin = find_bin().map_err(|e| anyhow::anyhow!("after installing: {e}"))?;
    eprintln!("==> PostgreSQL: {}", bin.display());
    Ok(())
}

/// PostgreSQL servers of the harness still running (their data directory
/// is under the temp dir's `exactly-pg/`): after the tests, there must be
/// none (they are tied to their test process, and stopped on drop).
pub(crate) fn stray_servers() -> Vec<u32> {
    let needle = std::env::temp_dir().join("exactly-pg");
    let needle = needle.to_string_lossy().into_owned();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|raw| {
                raw.split(|&b| b == 0)
                    .any(|a| String::from_utf8_lossy(a).starts_with(&needle))
            })
        })
        .collect()
}
