//! The reference Java tools, run from the same jars as the broker, so tests
//! can use the reference client as a judge: `VerifiableProducer`,
//! `VerifiableConsumer`, `TransactionalMessageCopier`, `TransactionsCommand`
//! and `DumpLogSegments` (all in kafka-tools in 4.3; `DumpLogSegments` moved there from kafka_2.13).
//!
//! Every run has a deadline; a tool still running at its deadline is killed
//! and reported as timed out (never waited on forever). JVMs are tied to the
//! test process like the broker's.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::broker::JVM_MARKER;
use crate::error::{tail_lines, HarnessError, IoContext, Result};
use crate::jars::classpath;
use crate::process;

/// Runs reference tools against one broker.
#[derive(Debug, Clone)]
pub struct JavaTools {
    libs: PathBuf,
    bootstrap: String,
    work_dir: PathBuf,
}

/// What a tool run printed.
#[derive(Debug, Clone)]
pub struct ToolRun {
    /// Standard output, line by line.
    pub stdout: Vec<String>,
    /// The end of standard error.
    pub stderr_tail: String,
    /// Exit status (None when the harness killed it).
    pub status: Option<ExitStatus>,
    /// Whether the deadline passed and the tool was killed.
    pub timed_out: bool,
}

/// One record as the Java `VerifiableConsumer` saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumedRecord {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Key (None = null).
    pub key: Option<String>,
    /// Value (None = null).
    pub value: Option<String>,
}

/// What the Java `VerifiableProducer` reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerReport {
    /// Records the tool sent.
    pub sent: u64,
    /// Records the broker acknowledged.
    pub acked: u64,
    /// Every acknowledged record.
    pub acks: Vec<AckedRecord>,
}

/// One record the Java `VerifiableProducer` saw acknowledged.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct AckedRecord {
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Key (None = null).
    pub key: Option<String>,
    /// Value.
    pub value: String,
}

/// Options of [`JavaTools::transactional_message_copier`].
#[derive(Debug, Clone)]
pub struct CopierOptions<'a> {
    /// Input topic.
    pub input_topic: &'a str,
    /// The one input partition this copier reads.
    pub input_partition: i32,
    /// Output topic.
    pub output_topic: &'a str,
    /// Records to copy before exiting.
    pub max_messages: u64,
    /// Records per transaction.
    pub transaction_size: u32,
    /// `transactional.id`.
    pub transactional_id: &'a str,
    /// Consumer group (offsets are committed through the transaction).
    pub group: &'a str,
    /// Abort about a third of the transactions at random.
    pub random_aborts: bool,
}

/// One batch as `DumpLogSegments` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DumpedBatch {
    /// First offset.
    pub base_offset: i64,
    /// Last offset.
    pub last_offset: i64,
    /// Record count.
    pub count: i64,
    /// Base sequence (-1 when not idempotent).
    pub base_sequence: i32,
    /// Last sequence.
    pub last_sequence: i32,
    /// Producer id (-1 when not idempotent).
    pub producer_id: i64,
    /// Producer epoch.
    pub producer_epoch: i16,
    /// Transactional flag.
    pub is_transactional: bool,
    /// Control batch (transaction marker).
    pub is_control: bool,
    /// Compression codec name.
    pub compression: String,
}

impl JavaTools {
    /// Tools bound to `bootstrap`, with scratch files under `work_dir`.
    pub fn new(libs: PathBuf, bootstrap: String, work_dir: PathBuf) -> Self {
        Self {
            libs,
            bootstrap,
            work_dir,
        }
    }

    /// The bootstrap servers the tools use.
    pub fn bootstrap(&self) -> &str {
        &self.bootstrap
    }

    /// Writes a properties file for `--command-config`.
    pub fn config_file(&self, name: &str, props: &[(&str, &str)]) -> Result<PathBuf> {
        std::fs::create_dir_all(&self.work_dir)
            .ctx(|| format!("creating {}", self.work_dir.display()))?;
        let path = self.work_dir.join(name);
        let text: String = props.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
        std::fs::write(&path, text).ctx(|| format!("writing {}", path.display()))?;
        Ok(path)
    }

    /// Runs `class` with `args` until it exits, `stop` returns true for a
    /// line of its stdout (then it is killed), or `timeout` passes.
    pub fn run_until(
        &self,
        class: &str,
        args: &[String],
        timeout: Duration,
        mut stop: impl FnMut(&str) -> bool,
    ) -> Result<ToolRun> {
        let options = [&["-Xms64m", "-Xmx512m"], crate::broker::SHORT_LIVED_JVM].concat();
        let mut cmd = self.tool_command(class, args, &options)?;
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = process::spawn_tied(cmd, class)?;
        let (tx, rx) = mpsc::channel::<String>();
        let stdout = child.stdout.take();
        let reader = std::thread::spawn(move || {
            if let Some(out) = stdout {
                for line in BufReader::new(out).lines().map_while(|l| l.ok()) {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            }
        });
        let mut stderr_pipe = child.stderr.take();
        let err_reader = std::thread::spawn(move || {
            let mut s = String::new();
            if let Some(e) = stderr_pipe.as_mut() {
                let _ = e.read_to_string(&mut s);
            }
            s
        });
        let deadline = Instant::now() + timeout;
        let mut lines = Vec::new();
        let mut timed_out = false;
        let mut stopped = false;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                timed_out = true;
                break;
            }
            match rx.recv_timeout(left) {
                Ok(line) => {
                    let done = stop(&line);
                    lines.push(line);
                    if done {
                        stopped = true;
                        break;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    timed_out = true;
                    break;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        let status = if timed_out || stopped {
            let _ = child.kill();
            let _ = child.wait();
            None
        } else {
            Some(child.wait().ctx(|| format!("waiting for {class}"))?)
        };
        let _ = reader.join();
        let stderr = err_reader.join().unwrap_or_default();
        Ok(ToolRun {
            stdout: lines,
            stderr_tail: tail_lines(&stderr, 30),
            status,
            timed_out,
        })
    }

    /// The `java` command running tool `class` with `args`: the harness's
    /// marker and run tag (so stray JVMs are found and killed), the tools'
    /// log4j configuration, the Kafka classpath, and `jvm_options` (heap,
    /// GC) first. Spawn it with [`process::spawn_tied`].
    pub fn tool_command(
        &self,
        class: &str,
        args: &[String],
        jvm_options: &[&str],
    ) -> Result<Command> {
        let mut cmd = Command::new("java");
        cmd.args(jvm_options)
            .arg(format!("-D{JVM_MARKER}=tool"))
            .arg(process::run_tag_property())
            .arg(format!(
                "-Dlog4j2.configurationFile={}",
                self.log4j_config()?.display()
            ))
            .arg("-cp")
            .arg(classpath(&self.libs))
            .arg(class)
            .args(args);
        Ok(cmd)
    }

    /// Runs `class` to completion (or its deadline).
    pub fn run(&self, class: &str, args: &[String], timeout: Duration) -> Result<ToolRun> {
        self.run_until(class, args, timeout, |_| false)
    }

    /// `VerifiableProducer`: sends `max_messages` values `0..max_messages`
    /// (as decimal strings) with `props` as producer config.
    pub fn verifiable_producer(
        &self,
        topic: &str,
        max_messages: u64,
        props: &[(&str, &str)],
        timeout: Duration,
    ) -> Result<ProducerReport> {
        self.verifiable_producer_with(topic, max_messages, &[], props, timeout)
    }

    /// [`JavaTools::verifiable_producer`] with extra tool arguments (e.g.
    /// `["--repeating-keys", "10000"]` for keys `"0".."9999"`).
    pub fn verifiable_producer_with(
        &self,
        topic: &str,
        max_messages: u64,
        extra_args: &[&str],
        props: &[(&str, &str)],
        timeout: Duration,
    ) -> Result<ProducerReport> {
        let cfg = self.config_file(&format!("vp-{topic}.properties"), props)?;
        let class = "org.apache.kafka.tools.VerifiableProducer";
        let mut args = vec![
            "--bootstrap-server".into(),
            self.bootstrap.clone(),
            "--topic".into(),
            topic.into(),
            "--max-messages".into(),
            max_messages.to_string(),
            "--command-config".into(),
            cfg.display().to_string(),
        ];
        args.extend(extra_args.iter().map(|a| (*a).to_owned()));
        let run = self.run(class, &args, timeout)?;
        let mut report = ProducerReport {
            sent: 0,
            acked: 0,
            acks: Vec::new(),
        };
        for v in json_lines(&run.stdout) {
            match v["name"].as_str() {
                Some("producer_send_success") => report.acks.push(AckedRecord {
                    partition: v["partition"].as_i64().unwrap_or(-1) as i32,
                    offset: v["offset"].as_i64().unwrap_or(-1),
                    key: v["key"].as_str().map(str::to_owned),
                    value: v["value"].as_str().unwrap_or_default().to_owned(),
                }),
                Some("tool_data") => {
                    report.sent = v["sent"].as_u64().unwrap_or(0);
                    report.acked = v["acked"].as_u64().unwrap_or(0);
                }
                _ => {}
            }
        }
        if run.timed_out || run.status.is_some_and(|s| !s.success()) {
            return Err(tool_error(class, &run, "did not finish cleanly"));
        }
        Ok(report)
    }

    /// `VerifiableConsumer --verbose`: reads from the beginning of `topic` in
    /// a fresh group until `expected` records arrived or `timeout` passed, and
    /// returns every record seen (fewer than expected if the deadline passed:
    /// the caller's assertions say what was missing). `props` go to
    /// `--command-config` (e.g. `isolation.level=read_committed`).
    pub fn verifiable_consumer(
        &self,
        topic: &str,
        group: &str,
        expected: usize,
        props: &[(&str, &str)],
        timeout: Duration,
    ) -> Result<Vec<ConsumedRecord>> {
        let cfg = self.config_file(&format!("vc-{group}.properties"), props)?;
        let class = "org.apache.kafka.tools.VerifiableConsumer";
        let args = vec![
            "--bootstrap-server".into(),
            self.bootstrap.clone(),
            "--topic".into(),
            topic.into(),
            "--group-id".into(),
            group.into(),
            "--reset-policy".into(),
            "earliest".into(),
            "--verbose".into(),
            "--command-config".into(),
            cfg.display().to_string(),
        ];
        let mut records = Vec::new();
        let run = self.run_until(class, &args, timeout, |line| {
            if let Ok(v) = serde_json::from_str::<Value>(line) {
                if v["name"] == "record_data" {
                    records.push(ConsumedRecord {
                        topic: v["topic"].as_str().unwrap_or_default().to_owned(),
                        partition: v["partition"].as_i64().unwrap_or(-1) as i32,
                        offset: v["offset"].as_i64().unwrap_or(-1),
                        key: v["key"].as_str().map(str::to_owned),
                        value: v["value"].as_str().map(str::to_owned),
                    });
                }
            }
            records.len() >= expected
        })?;
        if run.status.is_some_and(|s| !s.success()) {
            return Err(tool_error(class, &run, "exited with an error"));
        }
        if run.timed_out && records.len() < expected {
            // The caller judges what was read; say why it was short.
            eprintln!(
                "{class} on {topic}: {} of {expected} records before the deadline; stderr tail:\n{}\nlast stdout:\n{}",
                records.len(),
                run.stderr_tail,
                run.stdout.iter().rev().take(10).rev().cloned().collect::<Vec<_>>().join("\n")
            );
        }
        Ok(records)
    }

    /// `TransactionalMessageCopier`: copies `max_messages` records of one
    /// input partition to `output_topic` in transactions of
    /// `transaction_size` (a third aborted at random when `random_aborts`),
    /// reading `read_committed` and committing offsets with the transaction.
    /// Returns its JSON status lines.
    pub fn transactional_message_copier(
        &self,
        opts: &CopierOptions<'_>,
        timeout: Duration,
    ) -> Result<Vec<Value>> {
        let class = "org.apache.kafka.tools.TransactionalMessageCopier";
        let mut args: Vec<String> = [
            "--broker-list",
            &self.bootstrap,
            "--input-topic",
            opts.input_topic,
            "--input-partition",
            &opts.input_partition.to_string(),
            "--output-topic",
            opts.output_topic,
            "--max-messages",
            &opts.max_messages.to_string(),
            "--transaction-size",
            &opts.transaction_size.to_string(),
            "--transactional-id",
            opts.transactional_id,
            "--consumer-group",
            opts.group,
            "--use-group-metadata",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        if opts.random_aborts {
            args.push("--enable-random-aborts".into());
        }
        let run = self.run(class, &args, timeout)?;
        if run.timed_out || run.status.is_some_and(|s| !s.success()) {
            return Err(tool_error(class, &run, "did not finish cleanly"));
        }
        Ok(json_lines(&run.stdout).collect())
    }

    /// `DumpLogSegments` over segment files: one entry per batch.
    pub fn dump_log_segments(&self, files: &[PathBuf]) -> Result<Vec<DumpedBatch>> {
        let files_arg = files
            .iter()
            .map(|f| f.display().to_string())
            .collect::<Vec<_>>()
            .join(",");
        let args = vec!["--files".into(), files_arg];
        // In kafka-tools from 4.3; in kafka_2.13 as `kafka.tools.` before
        // (3.9, 4.0): try the new name, fall back on "no such class".
        let mut class = "org.apache.kafka.tools.DumpLogSegments";
        let mut run = self.run(class, &args, Duration::from_secs(120))?;
        if run
            .stderr_tail
            .contains("Could not find or load main class")
        {
            class = "kafka.tools.DumpLogSegments";
            run = self.run(class, &args, Duration::from_secs(120))?;
        }
        if run.timed_out || run.status.is_some_and(|s| !s.success()) {
            return Err(tool_error(class, &run, "did not finish cleanly"));
        }
        Ok(run
            .stdout
            .iter()
            .filter(|l| l.starts_with("baseOffset:"))
            .map(|l| parse_dumped_batch(l))
            .collect())
    }

    /// `TransactionsCommand` with `args` (e.g. `["find-hanging", "--broker-id", "1"]`).
    pub fn transactions_command(&self, args: &[&str]) -> Result<ToolRun> {
        let mut full = vec!["--bootstrap-server".to_owned(), self.bootstrap.clone()];
        full.extend(args.iter().map(|s| (*s).to_owned()));
        self.run(
            "org.apache.kafka.tools.TransactionsCommand",
            &full,
            Duration::from_secs(120),
        )
    }

    fn log4j_config(&self) -> Result<PathBuf> {
        std::fs::create_dir_all(&self.work_dir)
            .ctx(|| format!("creating {}", self.work_dir.display()))?;
        let path = self.work_dir.join("tools-log4j2.properties");
        if !path.exists() {
            std::fs::write(&path, TOOLS_LOG4J2).ctx(|| format!("writing {}", path.display()))?;
        }
        Ok(path)
    }

    /// The jar folder.
    pub fn libs(&self) -> &Path {
        &self.libs
    }
}

fn json_lines(lines: &[String]) -> impl Iterator<Item = Value> + '_ {
    lines
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
}

fn tool_error(class: &str, run: &ToolRun, what: &str) -> HarnessError {
    HarnessError::JavaTool {
        class: class.to_owned(),
        why: format!(
            "{what} (status {:?}, timed out: {}); last stdout: {}",
            run.status,
            run.timed_out,
            tail_lines(&run.stdout.join("\n"), 5)
        ),
        stderr: run.stderr_tail.clone(),
    }
}

/// Parses one `DumpLogSegments` batch line (`key: value` pairs).
pub fn parse_dumped_batch(line: &str) -> DumpedBatch {
    let mut b = DumpedBatch::default();
    let tokens: Vec<&str> = line.split_whitespace().collect();
    for pair in tokens.windows(2) {
        let (k, v) = (pair[0], pair[1]);
        match k {
            "baseOffset:" => b.base_offset = v.parse().unwrap_or(-1),
            "lastOffset:" => b.last_offset = v.parse().unwrap_or(-1),
            "count:" => b.count = v.parse().unwrap_or(-1),
            "baseSequence:" => b.base_sequence = v.parse().unwrap_or(-1),
            "lastSequence:" => b.last_sequence = v.parse().unwrap_or(-1),
            "producerId:" => b.producer_id = v.parse().unwrap_or(-1),
            "producerEpoch:" => b.producer_epoch = v.parse().unwrap_or(-1),
            "isTransactional:" => b.is_transactional = v == "true",
            "isControl:" => b.is_control = v == "true",
            "compresscodec:" => b.compression = v.to_owned(),
            _ => {}
        }
    }
    b
}

/// log4j 2 configuration in the properties format, which log4j-core reads
/// without extra jars (the YAML format needs Jackson's YAML module, which
/// Kafka 4.x brings and 3.x does not).
const TOOLS_LOG4J2: &str = "\
appender.stderr.type = Console
appender.stderr.name = STDERR
appender.stderr.target = SYSTEM_ERR
appender.stderr.layout.type = PatternLayout
appender.stderr.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.stderr.ref = STDERR
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_dump_line() {
        let line = "baseOffset: 0 lastOffset: 99 count: 100 baseSequence: 0 lastSequence: 99 \
                    producerId: 7 producerEpoch: 2 partitionLeaderEpoch: 0 isTransactional: true \
                    isControl: false deleteHorizonMs: OptionalLong.empty position: 0 \
                    CreateTime: 1 size: 1000 magic: 2 compresscodec: lz4 crc: 1 isvalid: true";
        let b = parse_dumped_batch(line);
        assert_eq!(
            b,
            DumpedBatch {
                base_offset: 0,
                last_offset: 99,
                count: 100,
                base_sequence: 0,
                last_sequence: 99,
                producer_id: 7,
                producer_epoch: 2,
                is_transactional: true,
                is_control: false,
                compression: "lz4".into(),
            }
        );
    }
}
