//! A Java `VerifiableConsumer` running as a member of a group beside our
//! consumers (mixed groups: issue 12 item 3), until the test stops it.
//!
//! The tool commits synchronously after every batch (auto commit off) and
//! prints every record (`--verbose`) and every commit as JSON lines; a
//! reader thread collects them. [`JavaMember::stop`] sends SIGTERM, on
//! which the tool closes its consumer (committing and leaving the group),
//! and SIGKILLs it if it has not exited within 15 s.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use serde_json::Value;

use crate::error::Result;
use crate::java::{ConsumedRecord, JavaTools};
use crate::process;

/// A running Java group member.
#[derive(Debug)]
pub struct JavaMember {
    err_path: std::path::PathBuf,
    child: Child,
    records: Arc<Mutex<Vec<ConsumedRecord>>>,
    commits: Arc<Mutex<usize>>,
    reader: Option<JoinHandle<()>>,
}

impl JavaMember {
    /// Starts `VerifiableConsumer --group-protocol <protocol>` on `topic` in
    /// `group` (reset policy earliest), with `props` in `--command-config`.
    pub fn start(
        tools: &JavaTools,
        topic: &str,
        group: &str,
        protocol: &str,
        name: &str,
        props: &[(&str, &str)],
    ) -> Result<JavaMember> {
        let cfg = tools.config_file(&format!("vc-{group}-{name}.properties"), props)?;
        let class = "org.apache.kafka.tools.VerifiableConsumer";
        let args = vec![
            "--bootstrap-server".into(),
            tools.bootstrap().to_owned(),
            "--topic".into(),
            topic.into(),
            "--group-id".into(),
            group.into(),
            "--group-protocol".into(),
            protocol.into(),
            "--reset-policy".into(),
            "earliest".into(),
            "--verbose".into(),
            "--command-config".into(),
            cfg.display().to_string(),
        ];
        let options = [&["-Xms64m", "-Xmx256m"], crate::broker::SHORT_LIVED_JVM].concat();
        let mut cmd = tools.tool_command(class, &args, &options)?;
        let err_path = cfg.with_extension("stderr");
        let err = std::fs::File::create(&err_path).map_err(|e| crate::error::HarnessError::Io {
            context: format!("creating {}", err_path.display()),
            source: e,
        })?;
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(err));
        let mut child = process::spawn_tied(cmd, class)?;
        let records = Arc::new(Mutex::new(Vec::new()));
        let commits = Arc::new(Mutex::new(0));
        let out = child.stdout.take();
        let (r, c) = (records.clone(), commits.clone());
        let reader = std::thread::spawn(move || {
            let Some(out) = out else { return };
            for line in BufReader::new(out).lines().map_while(|l| l.ok()) {
                let Ok(v) = serde_json::from_str::<Value>(&line) else {
                    continue;
                };
                match v["name"].as_str() {
                    Some("record_data") => {
                        if let Ok(mut r) = r.lock() {
                            r.push(ConsumedRecord {
                                topic: v["topic"].as_str().unwrap_or_default().to_owned(),
                                partition: v["partition"].as_i64().unwrap_or(-1) as i32,
                                offset: v["offset"].as_i64().unwrap_or(-1),
                                key: v["key"].as_str().map(str::to_owned),
                                value: v["value"].as_str().map(str::to_owned),
                            });
                        }
                    }
                    Some("offsets_committed") if v["success"].as_bool() == Some(true) => {
                        if let Ok(mut c) = c.lock() {
                            *c += 1;
                        }
                    }
                    _ => {}
                }
            }
        });
        Ok(JavaMember {
            err_path,
            child,
            records,
            commits,
            reader: Some(reader),
        })
    }

    /// The records read so far.
    pub fn records(&self) -> Vec<ConsumedRecord> {
        self.records.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// The end of the tool's standard error (for a failure message).
    pub fn stderr_tail(&self) -> String {
        let s = std::fs::read_to_string(&self.err_path).unwrap_or_default();
        crate::error::tail_lines(&s, 20)
    }

    /// How many records were read so far.
    pub fn count(&self) -> usize {
        self.records.lock().map(|r| r.len()).unwrap_or(0)
    }

    /// Successful commits reported so far.
    pub fn commits(&self) -> usize {
        self.commits.lock().map(|c| *c).unwrap_or(0)
    }

    /// Stops the JVM (SIGTERM, SIGKILL after 15 s) and returns every
    /// record it read.
    pub fn stop(mut self) -> Vec<ConsumedRecord> {
        process::signal(self.child.id(), process::Signal::Term);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
        while std::time::Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        self.kill();
        self.records()
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
    }
}

impl Drop for JavaMember {
    fn drop(&mut self) {
        self.kill();
    }
}
