//! The workspace is publishable (`cargo xtask package`), and usable from
//! outside it (`cargo xtask fresh-crate`).
//!
//! The library crates are found, never listed: every workspace member whose
//! manifest does not say `publish = false`. For each, [`package`] checks:
//!
//! - the manifest fields crates.io and docs.rs read: description, license,
//!   repository, readme (the file exists), 1-5 keywords, categories,
//!   `[package.metadata.docs.rs]`, and the workspace's `rust-version`;
//! - a LICENSE file in the crate's directory (so the package carries it);
//! - every feature flag except `default` is named in the crate-level docs
//!   (`src/lib.rs`), and a crate with `#[doc(hidden)]` items says in its
//!   README that they are not public API;
//! - the MSRV: no crate in the library crates' normal and build dependency
//!   tree (every target) declares a `rust-version` above ours. What the
//!   toolchain we have cannot check, an older compiler would: a language
//!   feature newer than the MSRV in our own code (clippy's
//!   `incompatible_msrv`, run by `cargo xtask test`, catches standard
//!   library APIs newer than the MSRV, not syntax);
//! - `cargo publish --dry-run` of all of them at once, which packages each
//!   in dependency order against a local overlay of the ones before it
//!   (`--verify` also builds every package from its tarball, as crates.io
//!   users would: several minutes, so not in CI).
//!
//! [`fresh_crate`] writes a crate outside the workspace whose only link to it
//! is a path dependency on `exactly` (default features off), builds it, and
//! runs it against a broker the harness starts: transactions written, read
//! back `read_committed`, exactly once.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use exactly_protocol_tests::{Broker, BrokerConfig};
use serde_json::Value;

use crate::{cargo, root, run};

/// A library crate of the workspace, as `cargo metadata` describes it.
struct Crate {
    name: String,
    dir: PathBuf,
    manifest: Value,
}

fn metadata(no_deps: bool) -> Result<Value> {
    let mut cmd = cargo();
    cmd.args(["metadata", "--format-version", "1"]);
    if no_deps {
        cmd.arg("--no-deps");
    }
    let out = cmd
        .current_dir(root())
        .output()
        .context("running cargo metadata")?;
    if !out.status.success() {
        bail!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    serde_json::from_slice(&out.stdout).context("parsing cargo metadata")
}

/// Every workspace member that may be published.
fn library_crates(meta: &Value) -> Result<Vec<Crate>> {
    let members: Vec<&str> = meta["workspace_members"]
        .as_array()
        .context("workspace_members")?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let mut out = Vec::new();
    for p in meta["packages"].as_array().context("packages")? {
        let id = p["id"].as_str().unwrap_or_default();
        // `publish = false` is an empty registry list; absent is null.
        let publishable = p["publish"].as_array().is_none_or(|r| !r.is_empty());
        if !members.contains(&id) || !publishable {
            continue;
        }
        let manifest = PathBuf::from(p["manifest_path"].as_str().context("manifest_path")?);
        out.push(Crate {
            name: p["name"].as_str().context("name")?.to_owned(),
            dir: manifest.parent().context("manifest dir")?.to_path_buf(),
            manifest: p.clone(),
        });
    }
    if out.is_empty() {
        bail!("no publishable crate found in the workspace");
    }
    Ok(out)
}

/// A `rust-version` as comparable numbers (`1.89` = `1.89.0`).
fn version_key(v: &str) -> Vec<u64> {
    let mut k: Vec<u64> = v.split('.').map(|x| x.parse().unwrap_or(0)).collect();
    k.resize(3, 0);
    k
}

/// The workspace's `rust-version`, read from the root manifest.
fn workspace_msrv() -> Result<String> {
    let text = std::fs::read_to_string(root().join("Cargo.toml"))?;
    text.lines()
        .skip_while(|l| l.trim() != "[workspace.package]")
        .find_map(|l| {
            let (k, v) = l.split_once('=')?;
            (k.trim() == "rust-version").then(|| v.trim().trim_matches('"').to_owned())
        })
        .context("no rust-version in [workspace.package]")
}

/// The manifest and docs checks; returns every problem found.
fn check_manifests(crates: &[Crate], msrv: &str) -> Vec<String> {
    let mut problems = Vec::new();
    for c in crates {
        let m = &c.manifest;
        let mut bad = |what: String| problems.push(format!("{}: {what}", c.name));
        for field in ["description", "license", "repository", "readme"] {
            if m[field].as_str().is_none_or(str::is_empty) {
                bad(format!("no `{field}` in its manifest"));
            }
        }
        if let Some(readme) = m["readme"].as_str() {
            if !c.dir.join(readme).is_file() {
                bad(format!("readme `{readme}` does not exist"));
            }
        }
        let keywords = m["keywords"].as_array().map_or(0, Vec::len);
        if !(1..=5).contains(&keywords) {
            bad(format!("{keywords} keywords (crates.io takes 1 to 5)"));
        }
        if m["categories"].as_array().is_none_or(Vec::is_empty) {
            bad("no `categories`".into());
        }
        if m["metadata"]["docs"]["rs"].is_null() {
            bad("no [package.metadata.docs.rs]".into());
        }
        if m["rust_version"].as_str() != Some(msrv) {
            bad(format!(
                "rust-version {:?}, the workspace's is {msrv} (use `rust-version.workspace = true`)",
                m["rust_version"]
            ));
        }
        if !c.dir.join("LICENSE").is_file() {
            bad("no LICENSE file (`ln -s ../../LICENSE LICENSE` in its directory)".into());
        }
        let lib_docs = crate_docs(&c.dir);
        if let Some(features) = m["features"].as_object() {
            for f in features.keys().filter(|f| *f != "default") {
                if !lib_docs.contains(&format!("`{f}`")) {
                    bad(format!(
                        "feature `{f}` is not documented in src/lib.rs's crate docs"
                    ));
                }
            }
        }
        if sources_contain(&c.dir.join("src"), "#[doc(hidden)]") {
            let readme = m["readme"]
                .as_str()
                .and_then(|r| std::fs::read_to_string(c.dir.join(r)).ok())
                .unwrap_or_default();
            if !readme.contains("doc(hidden)") {
                bad(
                    "has #[doc(hidden)] items but its README does not say they are not public API"
                        .into(),
                );
            }
        }
    }
    problems
}

/// The `//!` lines of a crate's `src/lib.rs`.
fn crate_docs(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("src/lib.rs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("//!"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Whether a line of a `.rs` file under `dir` starts with `needle` (an
/// attribute, not a mention of it in a comment).
fn sources_contain(dir: &Path, needle: &str) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries.flatten().any(|e| {
        let p = e.path();
        if p.is_dir() {
            sources_contain(&p, needle)
        } else {
            p.extension().is_some_and(|x| x == "rs")
                && std::fs::read_to_string(&p)
                    .is_ok_and(|t| t.lines().any(|l| l.trim_start().starts_with(needle)))
        }
    })
}

/// Dependencies (normal and build, every target) of the library crates whose
/// `rust-version` is above ours.
fn check_msrv(crates: &[Crate], msrv: &str) -> Result<Vec<String>> {
    let meta = metadata(false)?;
    let packages: std::collections::HashMap<&str, &Value> = meta["packages"]
        .as_array()
        .context("packages")?
        .iter()
        .filter_map(|p| Some((p["id"].as_str()?, p)))
        .collect();
    let nodes: std::collections::HashMap<&str, &Value> = meta["resolve"]["nodes"]
        .as_array()
        .context("resolve")?
        .iter()
        .filter_map(|n| Some((n["id"].as_str()?, n)))
        .collect();
    let mut todo: Vec<&str> = packages
        .iter()
        .filter(|(_, p)| crates.iter().any(|c| p["name"].as_str() == Some(&c.name)))
        .map(|(id, _)| *id)
        .collect();
    let mut seen = std::collections::HashSet::new();
    let mut too_new = Vec::new();
    let ours = version_key(msrv);
    while let Some(id) = todo.pop() {
        if !seen.insert(id) {
            continue;
        }
        if let Some(rv) = packages.get(id).and_then(|p| p["rust_version"].as_str()) {
            if version_key(rv) > ours {
                too_new.push(format!(
                    "{} {} needs Rust {rv}; the workspace states {msrv}",
                    packages[id]["name"].as_str().unwrap_or(id),
                    packages[id]["version"].as_str().unwrap_or("?"),
                ));
            }
        }
        let Some(node) = nodes.get(id) else { continue };
        for dep in node["deps"].as_array().into_iter().flatten() {
            let normal_or_build = dep["dep_kinds"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|k| k["kind"].is_null() || k["kind"].as_str() == Some("build"));
            if normal_or_build {
                if let Some(d) = dep["pkg"].as_str() {
                    todo.push(d);
                }
            }
        }
    }
    too_new.sort();
    Ok(too_new)
}

/// `cargo xtask package`: the checks above, then `cargo publish --dry-run`.
pub(crate) fn package(verify: bool) -> Result<()> {
    let meta = metadata(true)?;
    let crates = library_crates(&meta)?;
    let msrv = workspace_msrv()?;
    let names: Vec<&str> = crates.iter().map(|c| c.name.as_str()).collect();
    eprintln!(
        "\n==> package: {} library crates: {}",
        names.len(),
        names.join(", ")
    );
    let mut problems = check_manifests(&crates, &msrv);
    let too_new = check_msrv(&crates, &msrv)?;
    problems.extend(too_new.iter().map(|p| format!("MSRV: {p}")));
    if !problems.is_empty() {
        bail!("not publishable:\n  {}", problems.join("\n  "));
    }
    eprintln!("==> package: manifests, docs and MSRV {msrv} (dependency tree) ok");
    let mut cmd = cargo();
    cmd.args(["publish", "--dry-run", "--allow-dirty"]);
    if !verify {
        cmd.arg("--no-verify");
    }
    for n in &names {
        cmd.args(["-p", n]);
    }
    run("cargo publish --dry-run (dependency order)", &mut cmd)?;
    Ok(())
}

/// `cargo xtask fresh-crate`: a new crate outside the workspace, `exactly`
/// by path, built and run against a broker started for it.
pub(crate) fn fresh_crate() -> Result<()> {
    let dir = root().join("target").join("fresh-crate");
    std::fs::create_dir_all(dir.join("src"))?;
    let exactly = root().join("crates").join("exactly");
    // The profile mirrors the workspace's (line tables only, none for
    // dependencies) so the build shares the workspace's target directory's
    // artifacts where it can; the lock file too, for the same versions.
    std::fs::write(
        dir.join("Cargo.toml"),
        format!(
            r#"[package]
name = "fresh-user"
version = "0.0.0"
edition = "2021"
publish = false

# Not a member of the exactly workspace.
[workspace]

[dependencies]
exactly = {{ path = {exactly:?}, default-features = false }}
tokio = {{ version = "1", features = ["rt-multi-thread", "macros"] }}

[profile.dev]
debug = "line-tables-only"

[profile.dev.package."*"]
debug = false
"#,
            exactly = exactly.display().to_string()
        ),
    )?;
    std::fs::copy(
        root().join("xtask/fresh-crate/main.rs"),
        dir.join("src/main.rs"),
    )?;
    std::fs::copy(root().join("Cargo.lock"), dir.join("Cargo.lock"))?;
    let target = root().join("target");
    run(
        "fresh crate: build (exactly by path, outside the workspace)",
        cargo()
            .args(["build", "--manifest-path"])
            .arg(dir.join("Cargo.toml"))
            .arg("--target-dir")
            .arg(&target),
    )?;
    let broker = Broker::start(BrokerConfig::default())?;
    let topic = "fresh-user";
    broker.create_topic(topic, 1)?;
    run(
        "fresh crate: run against the test broker",
        Command::new(target.join("debug").join("fresh-user"))
            .arg(broker.bootstrap())
            .arg(topic),
    )?;
    drop(broker);
    Ok(())
}
