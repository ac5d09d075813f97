//! The no-C promise: with every feature on, the workspace's normal and build
//! dependency tree contains no C build machinery or bindings, for every
//! target in [`TARGETS`] (so target-specific dependencies count: graviola on
//! x86_64/aarch64, the RustCrypto TLS fallback everywhere), and the whole
//! workspace builds with `CC=false CXX=false` (any attempt to run a C or C++
//! compiler fails the build). The build is a `cargo check`: C is compiled
//! only by build scripts, which check compiles and runs just as build does,
//! so code generation would add minutes and nothing to the proof. It uses
//! its own target directory so a
//! cached artifact compiled earlier with a real compiler cannot hide anything.
//! The build runs for the host only (no other target's standard library is
//! installed here); the tree check covers the others.

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

/// The targets whose dependency trees are checked: Linux on the 64-bit and
/// 32-bit architectures Rust ships std for, musl, and macOS. Windows is left
/// out on purpose: tokio's tree there has `windows-sys` (declarations of the
/// system API, nothing compiled), which the `-sys` rule would flag.
pub(crate) const TARGETS: &[&str] = &[
    "x86_64-unknown-linux-gnu",
    "x86_64-unknown-linux-musl",
    "aarch64-unknown-linux-gnu",
    "aarch64-unknown-linux-musl",
    "i686-unknown-linux-gnu",
    "armv7-unknown-linux-gnueabihf",
    "riscv64gc-unknown-linux-gnu",
    "powerpc64le-unknown-linux-gnu",
    "s390x-unknown-linux-gnu",
    "loongarch64-unknown-linux-gnu",
    "x86_64-apple-darwin",
    "aarch64-apple-darwin",
];

/// Runs both halves of the check.
pub(crate) fn check() -> Result<()> {
    eprintln!("\n==> no-C check: dependency tree");
    let mut tree_cmd = cargo();
    tree_cmd.args([
        "tree",
        "--workspace",
        "--all-features",
        "-e",
        "normal,build",
        "--prefix",
        "none",
        "--format",
        "{p}",
    ]);
    for t in TARGETS {
        tree_cmd.args(["--target", t]);
    }
    let out = tree_cmd
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
    let mut crates: Vec<&str> = tree.lines().collect();
    crates.sort();
    crates.dedup();
    for needed in ["rustls-rustcrypto", "rustls-graviola"] {
        if !crates
            .iter()
            .any(|c| c.split_whitespace().next() == Some(needed))
        {
            bail!(
                "{needed} is not in the checked tree: the TLS providers moved, update this check"
            );
        }
    }
    eprintln!(
        "==> no-C check: {} crates over {} targets (both TLS providers included), none builds C",
        crates.len(),
        TARGETS.len()
    );
    let target = root().join("target").join("no-c");
    run(
        "no-C build check (CC=false CXX=false)",
        Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
            .args(["check", "--workspace", "--all-features", "--target-dir"])
            .arg(&target)
            .env("CC", "false")
            .env("CXX", "false")
            .env("HOST_CC", "false")
            .env("TARGET_CC", "false"),
    )?;
    Ok(())
}
