//! `cargo xtask compat`: the broker compatibility suite
//! (`protocol-tests/tests/compat.rs`) against each Kafka version of the
//! matrix, one `cargo test` run per version with `EXACTLY_KAFKA_VERSION`
//! set. The jars of each version are fetched once into their own cache
//! folder (`protocol-tests/src/jars.rs`). Prints what each suite showed
//! (its `COMPAT` lines) and a summary; fails if any version failed.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use exactly_protocol_tests::jars::{self, KafkaVersion};
use exactly_protocol_tests::process;

/// What one version's run showed.
struct Outcome {
    version: KafkaVersion,
    passed: bool,
    jars: Duration,
    took: Duration,
    summaries: Vec<String>,
}

/// Runs the suite on `versions` (all of [`jars::COMPAT_VERSIONS`] when
/// empty), tagging the JVMs with `run_tag` when given.
pub fn run(versions: &[String], run_tag: Option<&str>) -> Result<Duration> {
    let started = Instant::now();
    let versions: Vec<KafkaVersion> = if versions.is_empty() {
        jars::COMPAT_VERSIONS
            .iter()
            .map(|v| KafkaVersion::parse(v))
            .collect::<Result<_, _>>()?
    } else {
        versions
            .iter()
            .map(|v| KafkaVersion::parse(v))
            .collect::<Result<_, _>>()?
    };
    let mut outcomes = Vec::new();
    for version in versions {
        let t = Instant::now();
        let libs = jars::ensure_jars_for(version)?;
        let jars_took = t.elapsed();
        eprintln!(
            "\n==> compat: Kafka {version} jars in {} ({:.1} s)",
            libs.display(),
            jars_took.as_secs_f64()
        );
        let t = Instant::now();
        let mut cmd = crate::cargo();
        cmd.args([
            "test",
            "--workspace",
            "--all-features",
            "--test",
            "compat",
            "--",
            "--ignored",
            "--nocapture",
        ])
        .env(jars::VERSION_ENV, version.to_string())
        .current_dir(crate::root())
        .stdout(Stdio::piped());
        if let Some(tag) = run_tag {
            cmd.env(process::RUN_TAG_ENV, tag);
        }
        eprintln!("==> compat: Kafka {version}: {cmd:?}");
        let mut child = cmd.spawn().context("running cargo test")?;
        let mut summaries = Vec::new();
        if let Some(out) = child.stdout.take() {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                println!("{line}");
                if line.contains("all steps passed") || line.contains(": not offered:") {
                    summaries.push(line);
                }
            }
        }
        let status = child.wait().context("waiting for cargo test")?;
        let took = t.elapsed();
        eprintln!(
            "==> compat: Kafka {version}: {} in {:.1} s",
            if status.success() { "ok" } else { "FAILED" },
            took.as_secs_f64()
        );
        outcomes.push(Outcome {
            version,
            passed: status.success(),
            jars: jars_took,
            took,
            summaries,
        });
    }
    eprintln!("\n==> compat summary");
    for o in &outcomes {
        eprintln!(
            "    Kafka {:<7} {:<6} suite {:>6.1} s (jars {:.1} s)",
            o.version.to_string(),
            if o.passed { "ok" } else { "FAILED" },
            o.took.as_secs_f64(),
            o.jars.as_secs_f64()
        );
        for s in &o.summaries {
            eprintln!("        {s}");
        }
    }
    let failed: Vec<String> = outcomes
        .iter()
        .filter(|o| !o.passed)
        .map(|o| o.version.to_string())
        .collect();
    if !failed.is_empty() {
        bail!("the compatibility suite failed on Kafka {failed:?}");
    }
    Ok(started.elapsed())
}
