//! Every wire-guard table (`exactly_codec::guard`) against Apache Kafka's own
//! message specs, at every (API, direction, version) the guard covers.
//!
//! The tables were written by hand from the specs and are checked against
//! `kafka-protocol`'s encoder by the codec's own tests; that cannot see a
//! mistake in something `kafka-protocol` encodes the same wrong way, nor a
//! spec change in the Kafka we test against. Here the specs come from the
//! `kafka-clients` jar of the Kafka version the broker harness runs
//! ([`jars::KAFKA_VERSION`]): the JSON files under `common/message/` are
//! extracted at test time (with `unzip`, else the JDK's `jar`), never copied
//! into the repository, and flattened exactly as
//! [`exactly_codec::guard::describe`] flattens a table: one entry per field
//! present at the version, with its path, wire type, nullability and tag,
//! plus whether the version is flexible. Every difference is collected and
//! reported at once.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;

use exactly_codec::guard::{describe, described, Direction, FieldShape, MessageShape};
use exactly_protocol_tests::jars;
use serde_json::Value;

/// An inclusive version range as the specs write it (`"3+"`, `"0-7"`, `"2"`,
/// `"none"`).
#[derive(Debug, Clone, Copy)]
struct Versions {
    min: i16,
    max: i16,
}

impl Versions {
    fn parse(spec: &str) -> Versions {
        let spec = spec.trim();
        if spec == "none" {
            return Versions { min: 1, max: 0 };
        }
        let number = |s: &str| -> i16 {
            s.parse()
                .unwrap_or_else(|_| panic!("bad version spec {spec:?}"))
        };
        if let Some(min) = spec.strip_suffix('+') {
            Versions {
                min: number(min),
                max: i16::MAX,
            }
        } else if let Some((min, max)) = spec.split_once('-') {
            Versions {
                min: number(min),
                max: number(max),
            }
        } else {
            let v = number(spec);
            Versions { min: v, max: v }
        }
    }

    fn contains(self, version: i16) -> bool {
        self.min <= version && version <= self.max
    }
}

/// A field attribute holding versions; absent means none.
fn versions_of(field: &Value, key: &str) -> Versions {
    match field.get(key) {
        None => Versions::parse("none"),
        Some(Value::String(s)) => Versions::parse(s),
        Some(other) => panic!("{key} is not a string: {other}"),
    }
}

/// One `<Name>Request.json` or `<Name>Response.json`.
struct Spec {
    name: String,
    valid: Versions,
    flexible: Versions,
    fields: Vec<Value>,
    /// `commonStructs`, by type name.
    common: HashMap<String, Vec<Value>>,
}

const PRIMITIVES: &[&str] = &[
    "int8", "int16", "uint16", "int32", "int64", "float64", "bool", "uuid", "string", "bytes",
    "records",
];

impl Spec {
    /// The spec in `text` (from `file`) with its api key and `"request"` or
    /// `"response"`; `None` for the other kinds (headers, data, records).
    fn from_json(text: &str, file: &str) -> Option<(i16, &'static str, Spec)> {
        // The specs carry `//` comment lines (and only whole-line comments).
        let json: String = text
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        let v: Value =
            serde_json::from_str(&json).unwrap_or_else(|e| panic!("{file}: not JSON: {e}"));
        let str_of = |key: &str| -> String {
            v[key]
                .as_str()
                .unwrap_or_else(|| panic!("{file}: no {key}"))
                .to_owned()
        };
        let kind = match str_of("type").as_str() {
            "request" => "request",
            "response" => "response",
            _ => return None,
        };
        let api_key = v["apiKey"]
            .as_i64()
            .unwrap_or_else(|| panic!("{file}: no apiKey"));
        let fields_of = |v: &Value| -> Vec<Value> {
            v.get("fields")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        };
        let common = v
            .get("commonStructs")
            .and_then(Value::as_array)
            .map(|structs| {
                structs
                    .iter()
                    .map(|s| {
                        let name = s["name"]
                            .as_str()
                            .unwrap_or_else(|| panic!("{file}: unnamed common struct"));
                        (name.to_owned(), fields_of(s))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let spec = Spec {
            name: str_of("name"),
            valid: Versions::parse(&str_of("validVersions")),
            // Absent only from the specs of removed APIs (`validVersions: none`).
            flexible: versions_of(&v, "flexibleVersions"),
            fields: fields_of(&v),
            common,
        };
        Some((i16::try_from(api_key).expect("apiKey fits i16"), kind, spec))
    }

    /// The message at `version`, flattened as the guard's `describe` does.
    fn shape(&self, version: i16) -> MessageShape {
        let mut fields = Vec::new();
        self.flatten(&self.fields, version, "", &mut fields);
        MessageShape {
            flexible: self.flexible.contains(version),
            fields,
        }
    }

    fn flatten(&self, fields: &[Value], version: i16, prefix: &str, out: &mut Vec<FieldShape>) {
        for field in fields {
            let name = field["name"]
                .as_str()
                .unwrap_or_else(|| panic!("{}: unnamed field", self.name));
            let path = format!("{prefix}{name}");
            if !versions_of(field, "versions").contains(version) {
                continue;
            }
            let ty = field["type"]
                .as_str()
                .unwrap_or_else(|| panic!("{}: {path} has no type", self.name));
            let (array, element) = match ty.strip_prefix("[]") {
                Some(element) => (true, element),
                None => (false, ty),
            };
            let primitive = PRIMITIVES.contains(&element);
            let ty = match (array, primitive) {
                (_, true) => ty.to_owned(),
                (true, false) => "[]struct".to_owned(),
                (false, false) => "struct".to_owned(),
            };
            let tag = versions_of(field, "taggedVersions")
                .contains(version)
                .then(|| {
                    let tag = field["tag"]
                        .as_u64()
                        .unwrap_or_else(|| panic!("{}: {path} is tagged without a tag", self.name));
                    u32::try_from(tag).expect("tag fits u32")
                });
            out.push(FieldShape {
                path: path.clone(),
                ty,
                nullable: versions_of(field, "nullableVersions").contains(version),
                tag,
            });
            if !primitive {
                let inner = match field.get("fields").and_then(Value::as_array) {
                    Some(inner) => inner.as_slice(),
                    None => self
                        .common
                        .get(element)
                        .map(Vec::as_slice)
                        .unwrap_or_else(|| {
                            panic!("{}: {path}: struct type {element} not found", self.name)
                        }),
                };
                self.flatten(inner, version, &format!("{path}."), out);
            }
        }
    }
}

/// Whether a command ran and exited 0; if not, why, for the failure message.
fn succeeded(run: std::io::Result<std::process::Output>) -> Result<(), String> {
    match run {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(format!(
            "exited with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )),
        Err(e) => Err(e.to_string()),
    }
}

/// Extracts `common/message/*.json` from `jar` into `into`, with `unzip` or
/// else the JDK's `jar`; panics naming both failures.
fn extract_specs(jar: &Path, into: &Path) -> PathBuf {
    let unzip = Command::new("unzip")
        .arg("-q")
        .arg("-o")
        .arg(jar)
        .arg("common/message/*.json")
        .arg("-d")
        .arg(into)
        .output();
    let Err(unzip_why) = succeeded(unzip) else {
        return into.join("common/message");
    };
    let jar_tool = Command::new("jar")
        .arg("xf")
        .arg(jar)
        .arg("common/message")
        .current_dir(into)
        .output();
    let Err(jar_why) = succeeded(jar_tool) else {
        return into.join("common/message");
    };
    panic!(
        "cannot extract the Kafka message specs from {}: `unzip` {unzip_why}; `jar xf` {jar_why}. \
         Install unzip or a JDK.",
        jar.display()
    );
}

/// Every request and response spec in the jar, by (api key, direction).
fn load_specs() -> HashMap<(i16, &'static str), Spec> {
    // The specs of the default version, whatever EXACTLY_KAFKA_VERSION says.
    let libs = jars::KafkaVersion::parse(jars::KAFKA_VERSION)
        .and_then(jars::ensure_jars_for)
        .expect("Kafka jars (see protocol-tests/src/jars.rs)");
    let jar = libs.join(format!("kafka-clients-{}.jar", jars::KAFKA_VERSION));
    assert!(jar.is_file(), "{} is missing", jar.display());
    let tmp = std::env::temp_dir().join(format!("exactly-guard-specs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).expect("temporary directory");
    let dir = extract_specs(&jar, &tmp);
    let mut specs = HashMap::new();
    for entry in std::fs::read_dir(&dir).expect("extracted specs") {
        let path = entry.expect("directory entry").path();
        let file = path.file_name().unwrap_or_default().to_string_lossy();
        if !file.ends_with(".json") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("spec file");
        let Some((api, kind, spec)) = Spec::from_json(&text, &file) else {
            continue;
        };
        assert!(
            specs.insert((api, kind), spec).is_none(),
            "two {kind} specs for api key {api}"
        );
    }
    let _ = std::fs::remove_dir_all(&tmp);
    assert!(
        specs.len() > 100,
        "only {} request/response specs in {}",
        specs.len(),
        jar.display()
    );
    specs
}

/// The differences between the guard's and the spec's view of one message.
fn compare(guard: &MessageShape, spec: &MessageShape, out: &mut Vec<String>) {
    if guard.flexible != spec.flexible {
        out.push(format!(
            "flexible: guard {} vs spec {}",
            guard.flexible, spec.flexible
        ));
    }
    let by_path = |s: &MessageShape| -> BTreeMap<String, FieldShape> {
        s.fields
            .iter()
            .map(|f| (f.path.clone(), f.clone()))
            .collect()
    };
    let (g, s) = (by_path(guard), by_path(spec));
    let same_but_case = |p: &str, other: &BTreeMap<String, FieldShape>| -> Option<String> {
        other.keys().find(|o| o.eq_ignore_ascii_case(p)).cloned()
    };
    for (path, gf) in &g {
        match s.get(path) {
            None => match same_but_case(path, &s) {
                Some(spelled) => out.push(format!(
                    "{path}: the spec spells it {spelled}{}",
                    if s[&spelled].ty == gf.ty
                        && s[&spelled].nullable == gf.nullable
                        && s[&spelled].tag == gf.tag
                    {
                        String::new()
                    } else {
                        format!(
                            ", and it is {} {} there vs {} {} in the guard",
                            s[&spelled].ty,
                            describe_extra(&s[&spelled]),
                            gf.ty,
                            describe_extra(gf)
                        )
                    }
                )),
                None => out.push(format!(
                    "{path}: guard has it ({} {}), spec does not",
                    gf.ty,
                    describe_extra(gf)
                )),
            },
            Some(sf) if sf != gf => out.push(format!(
                "{path}: guard {} {} vs spec {} {}",
                gf.ty,
                describe_extra(gf),
                sf.ty,
                describe_extra(sf)
            )),
            Some(_) => {}
        }
    }
    for (path, sf) in &s {
        if !g.contains_key(path) && same_but_case(path, &g).is_none() {
            out.push(format!(
                "{path}: spec has it ({} {}), guard does not",
                sf.ty,
                describe_extra(sf)
            ));
        }
    }
    // Untagged fields travel in declaration order: compare it (among the
    // fields both sides have, so a missing field is reported once, above).
    let order = |shape: &MessageShape, other: &BTreeMap<String, FieldShape>| -> Vec<String> {
        shape
            .fields
            .iter()
            .filter(|f| f.tag.is_none() && other.contains_key(&f.path))
            .map(|f| f.path.clone())
            .collect()
    };
    let (go, so) = (order(guard, &s), order(spec, &g));
    if let Some(i) = (0..go.len().min(so.len())).find(|&i| go[i] != so[i]) {
        out.push(format!(
            "wire order of untagged fields: at position {i} the guard has {} where the spec has {}",
            go[i], so[i]
        ));
    }
}

/// Differences, each with the versions it shows in, in the order first seen.
#[derive(Default)]
struct Differences {
    seen: Vec<(String, String, Vec<i16>)>,
}

impl Differences {
    fn note(&mut self, message: &str, version: i16, what: String) {
        match self
            .seen
            .iter_mut()
            .find(|(m, w, _)| m == message && *w == what)
        {
            Some((_, _, versions)) => versions.push(version),
            None => self.seen.push((message.to_owned(), what, vec![version])),
        }
    }

    /// One line per difference: `CreateTopicsRequest v2-4,7: path: what`.
    fn report(&self) -> String {
        let mut lines = Vec::new();
        for (message, what, versions) in &self.seen {
            let mut runs: Vec<(i16, i16)> = Vec::new();
            for &v in versions {
                match runs.last_mut() {
                    Some((_, end)) if *end + 1 == v => *end = v,
                    _ => runs.push((v, v)),
                }
            }
            let runs: Vec<String> = runs
                .iter()
                .map(|&(a, b)| {
                    if a == b {
                        format!("{a}")
                    } else {
                        format!("{a}-{b}")
                    }
                })
                .collect();
            lines.push(format!("{message} v{}: {what}", runs.join(",")));
        }
        lines.join("\n")
    }
}

fn describe_extra(f: &FieldShape) -> String {
    let null = if f.nullable { "nullable" } else { "non-null" };
    match f.tag {
        Some(tag) => format!("{null}, tag {tag}"),
        None => null.to_owned(),
    }
}

#[test]
fn guard_tables_match_the_kafka_message_specs() {
    let specs = load_specs();
    let mut differences = Differences::default();
    let (mut messages, mut shapes) = (0usize, 0usize);
    let covered = described();
    assert!(!covered.is_empty(), "the guard describes no API");
    for (api, direction, versions) in covered {
        let kind = match direction {
            Direction::Request => "request",
            Direction::Response => "response",
        };
        let Some(spec) = specs.get(&(api as i16, kind)) else {
            differences.note(
                &format!("{api:?} {kind}"),
                -1,
                format!("no spec in kafka-clients-{}", jars::KAFKA_VERSION),
            );
            continue;
        };
        for version in versions {
            let at = format!("{} v{version}", spec.name);
            if !spec.valid.contains(version) {
                differences.note(
                    &spec.name,
                    version,
                    format!(
                        "the guard covers it, the spec's validVersions are {}-{}",
                        spec.valid.min, spec.valid.max
                    ),
                );
                continue;
            }
            let guard = describe(api, version, direction)
                .unwrap_or_else(|| panic!("{at}: described() lists it, describe() has none"));
            let spec_shape = spec.shape(version);
            messages += 1;
            shapes += spec_shape.fields.len();
            let mut here = Vec::new();
            compare(&guard, &spec_shape, &mut here);
            for d in here {
                differences.note(&spec.name, version, d);
            }
        }
    }
    // For the record: spec versions the guard does not cover (it covers
    // what kafka-protocol decodes, and refuses the rest with NoWireSchema).
    for (api, direction, versions) in described() {
        let kind = match direction {
            Direction::Request => "request",
            Direction::Response => "response",
        };
        if let Some(spec) = specs.get(&(api as i16, kind)) {
            if spec.valid.min < *versions.start() || spec.valid.max > *versions.end() {
                eprintln!(
                    "{}: spec valid {}-{}, guard covers {}-{}",
                    spec.name,
                    spec.valid.min,
                    spec.valid.max,
                    versions.start(),
                    versions.end()
                );
            }
        }
    }
    eprintln!(
        "compared {messages} (api, direction, version) messages, {shapes} field shapes, \
         against Kafka {} specs",
        jars::KAFKA_VERSION
    );
    assert!(
        differences.seen.is_empty(),
        "{} differences between the guard tables and the Kafka {} message specs \
         (message, versions: path: what):\n{}",
        differences.seen.len(),
        jars::KAFKA_VERSION,
        differences.report()
    );
}
