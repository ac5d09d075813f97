//! The no-C promise: with every feature on, the workspace's normal and build
//! dependency tree contains no C build machinery or bindings, and the whole
//! workspace builds with `CC=false CXX=false` (any attempt to run a C or C++
//! compiler fails the build). The build uses its own target directory so a
//! cached artifact compiled earlier with a real compiler cannot hide anything.

use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::{cargo, root, run};

/// Crates whose presence means C is compiled or linked.
fn is_c_machinery(name: &str) -> bool {
    matches!(
        name,
        "cc" | "cmake" | "pkg-config" | "bindgen" | "ring" | "openssl" | "vcpkg" | "autocfg-c"
    ) || name.ends_with("-sys")
        || name.starts_with("aws-lc")
        || name.starts_with("openssl-src")
}

/// Runs both halves of the check.
pub(crate) fn check() -> Result<()> {
    eprintln!("\n==> no-C check: dependency tree");
    let out = cargo()
        .args([
            "tree",
            "--workspace",
            "--all-features",
            "-e",
            "normal,build",
            "--prefix",
            "none",
            "--format",
            "{p}",
        ])
        .current_dir(root())
        .output()
        .context("running cargo tree")?;
    if !out.status.success() {
        bail!(
            "cargo tree failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let tree = String::from_utf8_lossy(&out.stdout);
    let mut offenders: Vec<&str> = tree
        .lines()
        .filter(|l| l.split_whitespace().next().is_some_and(is_c_machinery))
        .collect();
    offenders.sort();
    offenders.dedup();
    if !offenders.is_empty() {
        bail!(
            "C build machinery in the dependency tree (see `cargo tree -i <crate> --all-features`):\n  {}",
            offenders.join("\n  ")
        );
    }
    eprintln!(
        "==> no-C check: {} crates, none builds C",
        tree.lines().count()
    );
    let target = root().join("target").join("no-c");
    run(
        "no-C build (CC=false CXX=false)",
        Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
            .args(["build", "--workspace", "--all-features", "--target-dir"])
            .arg(&target)
            .env("CC", "false")
            .env("CXX", "false")
            .env("HOST_CC", "false")
            .env("TARGET_CC", "false"),
    )?;
    Ok(())
}
