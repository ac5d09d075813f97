//! The exactly-once oracle of the reliability tests (RELIABILITY.md): an
//! output topic must hold the values `0..n`, each exactly once, read
//! `read_committed` both by our consumer (`exactly::check::verify_numbered`)
//! and by the reference Java `VerifiableConsumer`, so that a bug shared by
//! our producer and our consumer cannot hide.
//!
//! [`java_numbered`] returns the Java verdict (the soak and the demo report
//! it); [`exactly_once`] is the tests' assertion over both judges.

use std::time::Duration;

use exactly::check;
use exactly::oracle::{OracleCounts, TxnLog};

use crate::{unique_topic, Broker, Result};

/// What the Java `VerifiableConsumer` read from a topic of numbered records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JavaVerdict {
    /// The number of values `0..n` the topic should hold.
    pub expected: u64,
    /// Records read.
    pub read: u64,
    /// Distinct numbers among them.
    pub distinct: u64,
    /// Records read more than once (`read - distinct` over numeric values).
    pub duplicates: u64,
    /// Numbers of `0..n` never read.
    pub missing: u64,
    /// Records that are not a number of `0..n` (non-numeric, or `>= n`).
    pub foreign: u64,
}

impl JavaVerdict {
    /// Each of `0..n` read exactly once, nothing else read.
    pub fn is_exactly_once(&self) -> bool {
        self.read == self.expected
            && self.distinct == self.expected
            && self.duplicates == 0
            && self.missing == 0
            && self.foreign == 0
    }

    /// Judges the values of the records read (`None`: no value).
    pub fn of<'a>(expected: u64, values: impl IntoIterator<Item = Option<&'a str>>) -> Self {
        Self::of_selected(expected, |_| true, values)
    }

    /// Judges values that must be those of `0..n` that `select` keeps, each
    /// once (`expected` is then their count); others are foreign.
    pub fn of_selected<'a>(
        n: u64,
        select: impl Fn(u64) -> bool,
        values: impl IntoIterator<Item = Option<&'a str>>,
    ) -> Self {
        let expected = (0..n).filter(|&v| select(v)).count() as u64;
        let mut read = 0;
        let mut foreign = 0;
        let mut numbers: Vec<u64> = Vec::new();
        for v in values {
            read += 1;
            match v.and_then(|v| v.parse::<u64>().ok()) {
                Some(x) if x < n && select(x) => numbers.push(x),
                _ => foreign += 1,
            }
        }
        let in_range = numbers.len() as u64;
        numbers.sort_unstable();
        numbers.dedup();
        let distinct = numbers.len() as u64;
        JavaVerdict {
            expected,
            read,
            distinct,
            duplicates: in_range - distinct,
            missing: expected - distinct,
            foreign,
        }
    }
}

/// The topics of a numbered copy: `<label>-in` (2 partitions) holding the
/// values `0..n`, written by `check::produce_numbered`, and an empty
/// `<label>-out` (3 partitions), as RELIABILITY.md's T2-T4 copy them.
/// Returns (input, output); panics if the broker refuses.
pub fn numbered_copy_topics(
    broker: &Broker,
    rt: &tokio::runtime::Runtime,
    label: &str,
    n: u64,
) -> (String, String) {
    let input = unique_topic(&format!("{label}-in"));
    let output = unique_topic(&format!("{label}-out"));
    broker
        .create_topic(&input, 2)
        .unwrap_or_else(|e| panic!("{label}: input topic: {e}"));
    broker
        .create_topic(&output, 3)
        .unwrap_or_else(|e| panic!("{label}: output topic: {e}"));
    rt.block_on(check::produce_numbered(
        &broker.bootstrap(),
        &input,
        n,
        |_| {},
    ))
    .unwrap_or_else(|e| panic!("{label}: produce input: {e}"));
    (input, output)
}

/// Reads `output` `read_committed` with the Java `VerifiableConsumer` (a
/// fresh group) until `n` records arrived or `timeout`, and judges them.
pub fn java_numbered(
    broker: &Broker,
    output: &str,
    n: u64,
    timeout: Duration,
) -> Result<JavaVerdict> {
    java_selected(broker, output, n, |_| true, timeout)
}

/// [`java_numbered`] for a topic that must hold the values of `0..n` that
/// `select` keeps.
pub fn java_selected(
    broker: &Broker,
    output: &str,
    n: u64,
    select: impl Fn(u64) -> bool,
    timeout: Duration,
) -> Result<JavaVerdict> {
    let expected = (0..n).filter(|&v| select(v)).count();
    let records = broker.java().verifiable_consumer(
        output,
        &unique_topic("judge"),
        expected,
        &[("isolation.level", "read_committed")],
        timeout,
    )?;
    Ok(JavaVerdict::of_selected(
        n,
        select,
        records.iter().map(|r| r.value.as_deref()),
    ))
}

/// Panics (naming `label`) unless both judges read each of `0..n` exactly
/// once from `output` (`partitions` partitions). Runs our consumer on `rt`.
pub fn exactly_once(
    broker: &Broker,
    rt: &tokio::runtime::Runtime,
    output: &str,
    partitions: i32,
    n: u64,
    label: &str,
) {
    exactly_once_selected(broker, rt, output, partitions, n, |_| true, label);
}

/// [`exactly_once`] for a topic that must hold the values of `0..n` that
/// `select` keeps (a filter's output), each exactly once, and nothing else.
pub fn exactly_once_selected(
    broker: &Broker,
    rt: &tokio::runtime::Runtime,
    output: &str,
    partitions: i32,
    n: u64,
    select: impl Fn(u64) -> bool + Copy,
    label: &str,
) {
    judge_both(broker, rt, output, partitions, n, select, None, label);
}

/// [`exactly_once`] for the output of `exactly::copy`, judged by its intent
/// headers and transaction `log` too (`exactly::oracle`): every record
/// labeled, and explicitly no record of an aborted transaction visible
/// (aborted-visible 0, the KAFKA-17754 check), no torn transaction, no
/// committed transaction missing, no input record twice, input order kept.
pub fn exactly_once_copied(
    broker: &Broker,
    rt: &tokio::runtime::Runtime,
    output: &str,
    partitions: i32,
    n: u64,
    log: &TxnLog,
    label: &str,
) {
    let o = judge_both(
        broker,
        rt,
        output,
        partitions,
        n,
        |_| true,
        Some(log),
        label,
    );
    assert_eq!(
        o.unlabeled, 0,
        "{label}: records without intent headers: {o:?}"
    );
    assert_eq!(
        o.aborted_visible, 0,
        "{label}: aborted records visible: {o:?}"
    );
    assert_eq!(o.torn, 0, "{label}: torn transactions: {o:?}");
    assert_eq!(
        o.committed_invisible, 0,
        "{label}: committed transactions not visible: {o:?}"
    );
    assert_eq!(
        o.duplicate_sources, 0,
        "{label}: input records twice: {o:?}"
    );
    assert_eq!(o.input_order_violations, 0, "{label}: input order: {o:?}");
}

/// Our judge (with the intent-header oracle) and the Java one; returns our
/// oracle's counts.
#[allow(clippy::too_many_arguments)]
fn judge_both(
    broker: &Broker,
    rt: &tokio::runtime::Runtime,
    output: &str,
    partitions: i32,
    n: u64,
    select: impl Fn(u64) -> bool + Copy,
    log: Option<&TxnLog>,
    label: &str,
) -> OracleCounts {
    let v = rt
        .block_on(check::verify_logged(
            &broker.bootstrap(),
            output,
            partitions,
            n,
            select,
            log,
            Duration::from_secs(60),
            |_| {},
        ))
        .unwrap_or_else(|e| panic!("{label}: our consumer failed: {e}"));
    println!("{label}: ours {v:?}");
    assert!(
        v.is_exactly_once(),
        "{label}: not exactly once by our consumer: {v:?}"
    );
    let java = java_selected(broker, output, n, select, Duration::from_secs(180))
        .unwrap_or_else(|e| panic!("{label}: VerifiableConsumer: {e}"));
    println!("{label}: Java {java:?}");
    assert!(
        java.is_exactly_once(),
        "{label}: not exactly once by the Java VerifiableConsumer: {java:?}"
    );
    v.oracle
}

/// `TransactionsCommand find-hanging` on node 1 for `topic`, counting every
/// open transaction (`--max-transaction-timeout 0`, not the default 15
/// minutes) that the coordinator does not know: the lines naming a hanging
/// transaction (none expected once the topic's writers are done; a writer
/// still running can show up if its transaction ends while the tool looks).
pub fn find_hanging(broker: &Broker, topic: &str) -> Vec<String> {
    let run = broker
        .java()
        .transactions_command(&[
            "find-hanging",
            "--broker-id",
            "1",
            "--max-transaction-timeout",
            "0",
            "--topic",
            topic,
        ])
        .unwrap_or_else(|e| panic!("find-hanging: {e}"));
    assert!(
        run.status.is_some_and(|s| s.success()),
        "find-hanging failed: {}",
        run.stderr_tail
    );
    assert!(
        run.stdout.first().is_some_and(|l| l.starts_with("Topic")),
        "find-hanging printed no table: {:?}",
        run.stdout
    );
    run.stdout
        .into_iter()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .collect()
}

/// Asserts that `find_hanging` reports nothing for each of `topics`.
pub fn assert_no_hanging(broker: &Broker, topics: &[&str]) {
    for t in topics {
        let hanging = find_hanging(broker, t);
        assert!(
            hanging.is_empty(),
            "hanging transactions on {t}: {hanging:?}"
        );
    }
}

/// The coordinator's state of `transactional_id` (`TransactionsCommand
/// describe`: `Empty`, `Ongoing`, `PrepareCommit`, `CompleteCommit`, ...),
/// with its producer id.
pub fn transaction_state(broker: &Broker, transactional_id: &str) -> Result<(String, i64)> {
    let run = broker.java().transactions_command(&[
        "describe",
        "--transactional-id",
        transactional_id,
    ])?;
    let mut lines = run.stdout.iter().filter(|l| !l.trim().is_empty());
    let missing = || crate::HarnessError::JavaTool {
        class: "org.apache.kafka.tools.TransactionsCommand".into(),
        why: format!("describe printed no state: {:?}", run.stdout),
        stderr: run.stderr_tail.clone(),
    };
    let header: Vec<&str> = lines
        .next()
        .ok_or_else(missing)?
        .split_whitespace()
        .collect();
    let row: Vec<&str> = lines
        .next()
        .ok_or_else(missing)?
        .split_whitespace()
        .collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .and_then(|i| row.get(i))
            .map(|s| (*s).to_owned())
    };
    let state = col("TransactionState").ok_or_else(missing)?;
    let pid = col("ProducerId")
        .and_then(|p| p.parse().ok())
        .ok_or_else(missing)?;
    Ok((state, pid))
}

#[cfg(test)]
mod tests {
    use super::JavaVerdict;

    #[test]
    fn java_verdict_counts_duplicates_missing_and_foreign() {
        let ok = JavaVerdict::of(3, [Some("2"), Some("0"), Some("1")]);
        assert!(ok.is_exactly_once(), "{ok:?}");

        let v = JavaVerdict::of(
            4,
            [Some("0"), Some("0"), Some("1"), Some("9"), Some("x"), None],
        );
        assert_eq!(
            v,
            JavaVerdict {
                expected: 4,
                read: 6,
                distinct: 2,
                duplicates: 1,
                missing: 2,
                foreign: 3,
            }
        );
        assert!(!v.is_exactly_once());
        // A duplicate standing in for a missing value keeps the count right:
        // the count alone must not pass it.
        let swapped = JavaVerdict::of(2, [Some("0"), Some("0")]);
        assert_eq!(swapped.read, 2);
        assert!(!swapped.is_exactly_once());
    }
}
