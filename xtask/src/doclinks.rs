//! Every design document the repository cites is in the repository
//! (`cargo xtask doc-links`, run by `cargo xtask test`).
//!
//! A citation is an upper-case document name (`ARCHITECTURE.md`,
//! `crates/txn/README.md`, `JAVA-CLIENT-RULES §2`) in any tracked `.rs`,
//! `.md`, `.toml` or `.sh` file. A bare name resolves to a tracked file of
//! that name anywhere (the design documents live in `docs/`); a name with a
//! path resolves from the citing file's directory or from the root. A path
//! that leaves the repository (`../shared/...`) is refused outright: the
//! repository stands alone.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::root;

/// One cited document name, as written.
#[derive(Debug, PartialEq, Eq)]
struct Citation {
    /// The name with `.md` (added for the `NAME §n` form).
    target: String,
    line: usize,
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/')
}

/// Whether a file stem looks like a document's name (upper case).
fn is_doc_stem(stem: &str) -> bool {
    stem.len() >= 2
        && stem.chars().next().is_some_and(|c| c.is_ascii_uppercase())
        && stem
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// The token that ends at byte `end` of `line`.
fn token_before(line: &str, end: usize) -> &str {
    let start = line[..end]
        .char_indices()
        .rev()
        .take_while(|(_, c)| is_name_char(*c))
        .last()
        .map_or(end, |(i, _)| i);
    &line[start..end]
}

/// The document citations in a file's text.
fn citations(text: &str) -> Vec<Citation> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        for (i, _) in line.match_indices(".md") {
            let after = line[i + 3..].chars().next();
            if after.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
                continue; // `.mdx`, `.md_foo`: not a document name.
            }
            let token = token_before(line, i);
            let stem = token.rsplit('/').next().unwrap_or(token);
            if is_doc_stem(stem) {
                out.push(Citation {
                    target: format!("{token}.md"),
                    line: n + 1,
                });
            }
        }
        // `JAVA-CLIENT-RULES §3`: a document cited by its name and a section.
        for (i, _) in line.match_indices(" §") {
            let token = token_before(line, i);
            let letters = token.chars().all(|c| c.is_ascii_uppercase() || c == '-');
            if token.len() >= 6 && token.contains('-') && letters {
                out.push(Citation {
                    target: format!("{token}.md"),
                    line: n + 1,
                });
            }
        }
    }
    out
}

fn tracked_files() -> Result<Vec<String>> {
    let out = Command::new("git")
        .args(["ls-files", "--cached", "--others", "--exclude-standard"])
        .current_dir(root())
        .output()
        .context("running git ls-files")?;
    if !out.status.success() {
        bail!("git ls-files failed");
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect())
}

/// Whether `target`, cited in `from`, names a file of the repository.
fn resolves(target: &str, from: &str, files: &BTreeSet<String>) -> bool {
    if !target.contains('/') {
        return files
            .iter()
            .any(|f| f.rsplit('/').next() == Some(target) && Path::new(&root().join(f)).is_file());
    }
    // From the citing file's directory or any directory above it (a test
    // cites `tests/golden/README.md` from its crate's root), up to the root.
    let top = root().canonicalize().unwrap_or(root());
    Path::new(from).ancestors().skip(1).any(|dir| {
        root()
            .join(dir)
            .join(target)
            .canonicalize()
            .is_ok_and(|p| p.starts_with(&top) && p.is_file())
    })
}

/// Checks every citation of every tracked source and document.
pub(crate) fn check() -> Result<()> {
    let files = tracked_files()?;
    let set: BTreeSet<String> = files.iter().cloned().collect();
    let mut broken = Vec::new();
    let mut count = 0;
    for f in &files {
        let ext_ok = [".rs", ".md", ".toml", ".sh"]
            .iter()
            .any(|e| f.ends_with(e));
        // This file's tests cite missing documents on purpose.
        if !ext_ok || f == "xtask/src/doclinks.rs" {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(root().join(f)) else {
            continue;
        };
        for c in citations(&text) {
            count += 1;
            if c.target.contains("shared/") || c.target.starts_with("../shared") {
                broken.push(format!(
                    "{f}:{}: cites {} outside the repository",
                    c.line, c.target
                ));
            } else if !resolves(&c.target, f, &set) {
                broken.push(format!(
                    "{f}:{}: cites {}, which is not in the repository",
                    c.line, c.target
                ));
            }
        }
    }
    if !broken.is_empty() {
        bail!("cited documents missing:\n  {}", broken.join("\n  "));
    }
    eprintln!("==> doc links: {count} citations, all resolve in the repository");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_every_form_of_citation() {
        let text = "//! see ARCHITECTURE.md principle 3\n\
                    //! (JAVA-CLIENT-RULES §2, §3) and [b](BENCHMARKS.md)\n\
                    x `crates/txn/README.md` and ../shared/docs/RELIABILITY.md\n\
                    not: readme.md, KIP-360 §1, T4 §, foo.mdx, Cargo.toml\n";
        let got: Vec<String> = citations(text).into_iter().map(|c| c.target).collect();
        assert_eq!(
            got,
            [
                "ARCHITECTURE.md",
                "BENCHMARKS.md",
                "JAVA-CLIENT-RULES.md",
                "crates/txn/README.md",
                "../shared/docs/RELIABILITY.md",
            ]
        );
    }

    #[test]
    fn a_missing_document_does_not_resolve() {
        let files: BTreeSet<String> = ["README.md".to_owned()].into();
        assert!(resolves("README.md", "crates/x/src/lib.rs", &files));
        assert!(!resolves("NO-SUCH-DOC.md", "crates/x/src/lib.rs", &files));
        assert!(resolves(
            "../../README.md",
            "crates/exactly/Cargo.toml",
            &files
        ));
        assert!(!resolves(
            "../../../../etc/NOPE.md",
            "crates/exactly/Cargo.toml",
            &files
        ));
    }
}
