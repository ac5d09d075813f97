//! Client properties from the command line: `-X key=value` (repeatable) and
//! `-F FILE` (a Java properties file: `key=value` or `key: value` lines, `#`
//! and `!` comments). A value `@env:NAME` is read from the environment and
//! `@file:PATH` from a file (its trailing newline dropped), so secrets such
//! as `sasl.jaas.config` or `ssl.key.password` never have to be on the
//! command line. `-X` wins over `-F`.
//!
//! Routing: a key prefixed `consumer.` or `producer.` goes to that client
//! only; any other key goes to every client that knows it (the net layer's
//! keys to all of them).

use std::path::PathBuf;

use crate::consumer::ConsumerConfigBuilder;
use crate::net::NetConfigBuilder;
use crate::producer::ProducerConfigBuilder;
use anyhow::{bail, Context, Result};

/// Properties for the clients of one command. `Debug` prints secret
/// values (`sasl.password`, ...) as `<redacted>`.
#[derive(Clone, Default)]
pub(crate) struct Props {
    pairs: Vec<(String, String)>,
}

impl std::fmt::Debug for Props {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use exactly_net::config::props::shown;
        f.debug_map()
            .entries(self.pairs.iter().map(|(k, v)| (k, shown(k, v))))
            .finish()
    }
}

fn resolve(key: &str, value: &str) -> Result<String> {
    if let Some(name) = value.strip_prefix("@env:") {
        return std::env::var(name).with_context(|| format!("{key}: environment variable {name}"));
    }
    if let Some(path) = value.strip_prefix("@file:") {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("{key}: reading {path}"))?;
        return Ok(text.trim_end_matches(['\n', '\r']).to_owned());
    }
    Ok(value.to_owned())
}

fn parse_line(line: &str) -> Option<(&str, &str)> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
        return None;
    }
    let i = line.find(['=', ':'])?;
    Some((line[..i].trim(), line[i + 1..].trim()))
}

fn consumer_only(k: &str) -> bool {
    ConsumerConfigBuilder::is_known(k) && !NetConfigBuilder::is_known(k)
}

impl Props {
    /// `bootstrap`, then `files` in order, then `x` (`key=value`).
    pub(crate) fn load(bootstrap: &str, files: &[PathBuf], x: &[String]) -> Result<Props> {
        let mut p = Props::default();
        p.set("bootstrap.servers", bootstrap);
        for f in files {
            let text =
                std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
            for (n, line) in text.lines().enumerate() {
                if line.trim().is_empty() || line.trim_start().starts_with(['#', '!']) {
                    continue;
                }
                let Some((k, v)) = parse_line(line) else {
                    bail!("{}:{}: not key=value", f.display(), n + 1);
                };
                p.set(k, &resolve(k, v)?);
            }
        }
        for kv in x {
            let Some((k, v)) = kv.split_once('=') else {
                bail!("-X {kv}: not key=value");
            };
            p.set(k.trim(), &resolve(k, v.trim())?);
        }
        for (k, v) in &p.pairs {
            let bare = k
                .strip_prefix("consumer.")
                .or_else(|| k.strip_prefix("producer."))
                .unwrap_or(k);
            let known = NetConfigBuilder::is_known(bare)
                || ConsumerConfigBuilder::is_known(bare)
                || ProducerConfigBuilder::default().set(bare, v).is_ok();
            if !known {
                bail!("unknown or invalid property {k}={v}");
            }
        }
        Ok(p)
    }

    /// Sets (or replaces) one property.
    pub(crate) fn set(&mut self, key: &str, value: &str) {
        self.pairs.retain(|(k, _)| k != key);
        self.pairs.push((key.to_owned(), value.to_owned()));
    }

    /// The value of `key` as the consumer would see it.
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(k, _)| k == key || k.strip_prefix("consumer.") == Some(key))
            .map(|(_, v)| v.as_str())
    }

    /// The net layer's properties (for the admin client).
    pub(crate) fn net(&self) -> Vec<(String, String)> {
        self.pairs
            .iter()
            .filter(|(k, _)| NetConfigBuilder::is_known(k))
            .cloned()
            .collect()
    }

    /// The consumer's properties.
    pub(crate) fn consumer(&self) -> Vec<(String, String)> {
        self.pairs
            .iter()
            .filter_map(|(k, v)| match k.strip_prefix("consumer.") {
                Some(b) => Some((b.to_owned(), v.clone())),
                None if k.starts_with("producer.") => None,
                None if NetConfigBuilder::is_known(k) || ConsumerConfigBuilder::is_known(k) => {
                    Some((k.clone(), v.clone()))
                }
                None => None,
            })
            .collect()
    }

    /// The producer's properties.
    pub(crate) fn producer(&self) -> Vec<(String, String)> {
        self.pairs
            .iter()
            .filter_map(|(k, v)| match k.strip_prefix("producer.") {
                Some(b) => Some((b.to_owned(), v.clone())),
                None if k.starts_with("consumer.") || consumer_only(k) => None,
                None => Some((k.clone(), v.clone())),
            })
            .collect()
    }

    /// Every property, unrouted (for `copy`, whose session routes itself).
    pub(crate) fn all(&self) -> Vec<(String, String)> {
        self.pairs.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routing_and_secrets() {
        std::env::set_var("EXACTLY_TEST_SECRET", "s3cret");
        let p = Props::load(
            "h:1",
            &[],
            &[
                "isolation.level=read_uncommitted".into(),
                "acks=1".into(),
                "sasl.password=@env:EXACTLY_TEST_SECRET".into(),
                "producer.client.id=p".into(),
            ],
        );
        let p = match p {
            Ok(p) => p,
            Err(e) => panic!("{e:#}"),
        };
        let c = p.consumer();
        assert!(c.contains(&("isolation.level".into(), "read_uncommitted".into())));
        assert!(!c.iter().any(|(k, _)| k == "acks" || k == "client.id"));
        let pr = p.producer();
        assert!(pr.contains(&("acks".into(), "1".into())));
        assert!(pr.contains(&("client.id".into(), "p".into())));
        assert!(!pr.iter().any(|(k, _)| k == "isolation.level"));
        assert!(p.net().contains(&("sasl.password".into(), "s3cret".into())));
        assert!(!format!("{p:?}").contains("s3cret"), "{p:?}");
        assert!(Props::load("h:1", &[], &["no.such.thing=1".into()]).is_err());
    }

    #[test]
    fn secrets_from_a_file_and_from_a_properties_file() {
        let dir = std::env::temp_dir().join(format!("exactly-props-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let secret = dir.join("pw");
        std::fs::write(&secret, "file-s3cret\n").unwrap();
        let props = dir.join("client.properties");
        std::fs::write(
            &props,
            format!(
                "# a comment\nsasl.username: alice\nsasl.password=@file:{}\n",
                secret.display()
            ),
        )
        .unwrap();
        let p = match Props::load("h:1", std::slice::from_ref(&props), &[]) {
            Ok(p) => p,
            Err(e) => panic!("{e:#}"),
        };
        assert!(p
            .net()
            .contains(&("sasl.password".into(), "file-s3cret".into())));
        assert!(p.net().contains(&("sasl.username".into(), "alice".into())));
        // -X wins, and reads the file too.
        let p = match Props::load(
            "h:1",
            &[props],
            &[format!("sasl.password=@file:{}", secret.display())],
        ) {
            Ok(p) => p,
            Err(e) => panic!("{e:#}"),
        };
        assert!(p
            .net()
            .contains(&("sasl.password".into(), "file-s3cret".into())));
        // A missing file or variable is an error naming the key.
        let e = Props::load("h:1", &[], &["sasl.password=@file:/no/such/file".into()]);
        assert!(format!("{:#}", e.unwrap_err()).contains("sasl.password"));
        let e = Props::load(
            "h:1",
            &[],
            &["sasl.password=@env:EXACTLY_TEST_NO_SUCH_VAR".into()],
        );
        assert!(format!("{:#}", e.unwrap_err()).contains("sasl.password"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
