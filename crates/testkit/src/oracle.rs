//! The sharper exactly-once oracle (issue 16, item 1): intent headers written
//! by a copy, and the checker that reads them back.
//!
//! A set-of-values check cannot see an aborted transaction turned visible
//! when its input was copied again by a committed one (KAFKA-17754: a late
//! `EndTxn(abort)` becoming a commit), nor an output written out of order,
//! nor a transaction only partly visible. Every record a copy writes
//! therefore carries:
//!
//! | header | value |
//! |---|---|
//! | [`WRITER`] | the writer's identity: transactional id `@` a per-run nonce |
//! | [`SEQ`] | the writer's transaction sequence, decimal, from 1 |
//! | [`INTENT`] | `commit` or `abort`: the outcome rolled at the transaction's begin |
//! | [`INDEX`] | the record's index within its transaction, from 0 |
//! | [`SOURCE`] | `<input partition>:<input offset>` of the record it copies |
//!
//! The copy logs the outcome of each of its transactions ([`TxnLog`]:
//! committed ones with their record count). [`Oracle`] judges a
//! `read_committed` read of the output: a visible record whose intent is
//! `abort`, or whose transaction the log reports aborted, is
//! **aborted-visible**; a transaction whose visible records are not the
//! indices `0..k` of its logged count is **torn**; the same input record (or
//! numbered value) twice is a **duplicate**; per (input partition, output
//! partition) the input offsets must strictly increase (**order**); in the
//! 1→1 variant output partition `p` must hold input partition `p`'s
//! offsets one after another. Transactions and the read are described in
//! KIP-98; the headers are KIP-82 record headers.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// Header: the writer's transaction identity.
pub const WRITER: &str = "exactly.txn.writer";
/// Header: the writer's transaction sequence (decimal, from 1).
pub const SEQ: &str = "exactly.txn.seq";
/// Header: the intended outcome rolled at begin, [`COMMIT`] or [`ABORT`].
pub const INTENT: &str = "exactly.txn.intent";
/// Header: the record's index within its transaction (decimal, from 0).
pub const INDEX: &str = "exactly.txn.index";
/// Header: `<input partition>:<input offset>` the record was copied from.
pub const SOURCE: &str = "exactly.src";
/// [`INTENT`] value: meant to commit.
pub const COMMIT: &str = "commit";
/// [`INTENT`] value: meant to abort (a deliberate abort).
pub const ABORT: &str = "abort";

/// The intent headers of one output record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Intent {
    /// [`WRITER`].
    pub writer: String,
    /// [`SEQ`].
    pub seq: u64,
    /// [`INTENT`] is [`ABORT`].
    pub abort: bool,
    /// [`INDEX`].
    pub index: u64,
    /// [`SOURCE`]: (input partition, input offset).
    pub source: Option<(i32, i64)>,
}

impl Intent {
    /// The header (key, value) pairs to write.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        let mut h = vec![
            (WRITER, self.writer.clone()),
            (SEQ, self.seq.to_string()),
            (INTENT, if self.abort { ABORT } else { COMMIT }.to_owned()),
            (INDEX, self.index.to_string()),
        ];
        if let Some((p, o)) = self.source {
            h.push((SOURCE, format!("{p}:{o}")));
        }
        h
    }

    /// Reads the intent headers; `None` unless writer, sequence, intent and
    /// index are all present and well formed.
    pub fn parse<'a>(
        headers: impl IntoIterator<Item = (&'a [u8], Option<&'a [u8]>)>,
    ) -> Option<Self> {
        let (mut writer, mut seq, mut abort, mut index, mut source) =
            (None, None, None, None, None);
        for (k, v) in headers {
            let Some(v) = v.and_then(|v| std::str::from_utf8(v).ok()) else {
                continue;
            };
            match k {
                k if k == WRITER.as_bytes() => writer = Some(v.to_owned()),
                k if k == SEQ.as_bytes() => seq = v.parse().ok(),
                k if k == INTENT.as_bytes() => {
                    abort = match v {
                        ABORT => Some(true),
                        COMMIT => Some(false),
                        _ => None,
                    }
                }
                k if k == INDEX.as_bytes() => index = v.parse().ok(),
                k if k == SOURCE.as_bytes() => {
                    source = v
                        .split_once(':')
                        .and_then(|(p, o)| Some((p.parse().ok()?, o.parse().ok()?)))
                }
                _ => {}
            }
        }
        Some(Self {
            writer: writer?,
            seq: seq?,
            abort: abort?,
            index: index?,
            source,
        })
    }
}

/// The outcomes a writer saw for its transactions (what a copier logs).
/// `Debug` prints the counts only (a log holds every transaction).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct TxnLog {
    /// Committed (writer, sequence) → records it wrote.
    pub committed: BTreeMap<(String, u64), u64>,
    /// Aborted (writer, sequence), deliberately or after an error.
    pub aborted: BTreeSet<(String, u64)>,
}

impl std::fmt::Debug for TxnLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TxnLog")
            .field("committed", &self.committed.len())
            .field("aborted", &self.aborted.len())
            .finish()
    }
}

impl TxnLog {
    /// The log as text lines, `committed <writer> <seq> <records>` or
    /// `aborted <writer> <seq>` (what a copier process writes).
    pub fn lines(&self) -> Vec<String> {
        let c = self
            .committed
            .iter()
            .map(|((w, q), n)| format!("committed {w} {q} {n}"));
        let a = self.aborted.iter().map(|(w, q)| format!("aborted {w} {q}"));
        c.chain(a).collect()
    }

    /// Adds one line of [`TxnLog::lines`]; false (and nothing added) if it
    /// is not one.
    pub fn line(&mut self, line: &str) -> bool {
        let w: Vec<&str> = line.split_whitespace().collect();
        match w.as_slice() {
            ["committed", writer, seq, n] => match (seq.parse(), n.parse()) {
                (Ok(seq), Ok(n)) => {
                    self.committed.insert(((*writer).to_owned(), seq), n);
                    true
                }
                _ => false,
            },
            ["aborted", writer, seq] => match seq.parse() {
                Ok(seq) => {
                    self.aborted.insert(((*writer).to_owned(), seq));
                    true
                }
                _ => false,
            },
            _ => false,
        }
    }

    /// Adds another writer's log (a copier restarted, a group's members).
    pub fn extend(&mut self, other: TxnLog) {
        self.committed.extend(other.committed);
        self.aborted.extend(other.aborted);
    }
}

/// What the oracle found; every anomaly count must be 0.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OracleCounts {
    /// Records without intent headers (not judged for the counts below).
    pub unlabeled: u64,
    /// Visible records of a transaction meant to abort or logged aborted.
    pub aborted_visible: u64,
    /// Transactions whose visible records are not all of them (an index
    /// missing within, or fewer than the logged count).
    pub torn: u64,
    /// Transactions the log says committed of which nothing is visible.
    pub committed_invisible: u64,
    /// Records whose input record was seen before.
    pub duplicate_sources: u64,
    /// Records whose input offset did not increase over the previous record
    /// of the same (input partition, output partition).
    pub input_order_violations: u64,
    /// 1→1 variant only: records not the next offset of the input partition
    /// of the same number as the output partition.
    pub one_to_one_violations: u64,
}

impl OracleCounts {
    /// No anomaly (unlabeled records are not an anomaly by themselves).
    pub fn is_clean(&self) -> bool {
        self.aborted_visible == 0
            && self.torn == 0
            && self.committed_invisible == 0
            && self.duplicate_sources == 0
            && self.input_order_violations == 0
            && self.one_to_one_violations == 0
    }
}

/// Per transaction: visible records and the highest index seen.
#[derive(Default)]
struct TxnSeen {
    visible: u64,
    meant_to_abort: u64,
    max_index: u64,
    indices: HashSet<u64>,
}

/// The streaming checker: feed it every record of a `read_committed` read
/// in partition order ([`Oracle::observe`]), then [`Oracle::finish`].
#[derive(Default)]
pub struct Oracle {
    one_to_one: bool,
    counts: OracleCounts,
    writers: HashMap<String, u32>,
    txns: HashMap<(u32, u64), TxnSeen>,
    sources: HashSet<(i32, i64)>,
    last_input: HashMap<(i32, i32), i64>,
    last_one_to_one: HashMap<i32, i64>,
}

impl Oracle {
    /// An oracle for any copy.
    pub fn new() -> Self {
        Self::default()
    }

    /// An oracle for a 1→1 copy: output partition `p` holds input partition
    /// `p` in order, without gaps between the records it saw (for an input
    /// without transaction markers, such as one `produce_numbered` wrote).
    pub fn one_to_one() -> Self {
        Self {
            one_to_one: true,
            ..Self::default()
        }
    }

    /// Judges one visible record of output partition `partition`.
    pub fn observe(&mut self, partition: i32, intent: Option<Intent>) {
        let Some(i) = intent else {
            self.counts.unlabeled += 1;
            return;
        };
        if i.abort {
            self.counts.aborted_visible += 1;
        }
        let next = u32::try_from(self.writers.len()).unwrap_or(u32::MAX);
        let w = *self.writers.entry(i.writer).or_insert(next);
        let t = self.txns.entry((w, i.seq)).or_default();
        t.visible += 1;
        t.meant_to_abort += u64::from(i.abort);
        t.max_index = t.max_index.max(i.index);
        t.indices.insert(i.index);
        if let Some((ip, io)) = i.source {
            if !self.sources.insert((ip, io)) {
                self.counts.duplicate_sources += 1;
            }
            if self
                .last_input
                .insert((ip, partition), io)
                .is_some_and(|prev| prev >= io)
            {
                self.counts.input_order_violations += 1;
            }
            if self.one_to_one {
                let prev = self.last_one_to_one.insert(partition, io);
                if ip != partition || prev.is_some_and(|p| p.checked_add(1) != Some(io)) {
                    self.counts.one_to_one_violations += 1;
                }
            }
        } else if self.one_to_one {
            self.counts.one_to_one_violations += 1;
        }
    }

    /// [`Oracle::observe`] from raw headers.
    pub fn observe_headers<'a>(
        &mut self,
        partition: i32,
        headers: impl IntoIterator<Item = (&'a [u8], Option<&'a [u8]>)>,
    ) {
        self.observe(partition, Intent::parse(headers));
    }

    /// The counts, judged against the writers' `log` if there is one.
    pub fn finish(mut self, log: Option<&TxnLog>) -> OracleCounts {
        let ids: HashMap<u32, String> = self.writers.iter().map(|(k, &v)| (v, k.clone())).collect();
        let mut seen_committed = HashSet::new();
        for ((w, seq), t) in &self.txns {
            let name = ids.get(w).cloned().unwrap_or_default();
            let key = (name, *seq);
            // Indices 0..=max all present, once each.
            let mut torn = t.indices.len() as u64 != t.max_index + 1;
            if let Some(log) = log {
                if log.aborted.contains(&key) {
                    // Records meant to commit in a transaction that aborted
                    // (those meant to abort are counted already).
                    self.counts.aborted_visible += t.visible - t.meant_to_abort;
                }
                if let Some(&n) = log.committed.get(&key) {
                    torn |= (t.indices.len() as u64) < n;
                    seen_committed.insert(key);
                }
            }
            if torn {
                self.counts.torn += 1;
            }
        }
        if let Some(log) = log {
            self.counts.committed_invisible = log
                .committed
                .iter()
                .filter(|(k, &n)| n > 0 && !seen_committed.contains(*k))
                .count() as u64;
        }
        self.counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fault a simulated copier plants.
    #[derive(Clone, Copy, PartialEq)]
    enum Fault {
        None,
        /// Commits the transaction of this sequence it meant to abort.
        CommitMeantAbort(u64),
        /// Swaps the first two records of this transaction's output.
        Reorder(u64),
        /// Makes only the first record of this transaction visible.
        PartlyVisible(u64),
    }

    /// What a read_committed read of the output shows: (output partition,
    /// intent) in partition order, and the copier's log.
    type Run = (Vec<(i32, Intent)>, TxnLog);

    /// Copies 2 input partitions of `per_partition` records each to the
    /// output partition of the same number in transactions of 4 records per
    /// partition, every third transaction meant to abort (then copied again
    /// by the next), with `fault` planted; returns what a read_committed
    /// read shows.
    fn copier(per_partition: i64, fault: Fault) -> Run {
        let writer = "copier@1".to_owned();
        let mut log = TxnLog::default();
        let mut visible: Vec<(i32, Intent)> = Vec::new();
        let mut next = [0i64; 2];
        let mut seq = 0;
        while next.iter().any(|&n| n < per_partition) {
            seq += 1;
            let abort = seq % 3 == 0;
            let mut out = Vec::new();
            for p in 0..2i32 {
                let from = next[p as usize];
                let to = (from + 4).min(per_partition);
                for o in from..to {
                    let index = out.len() as u64;
                    out.push((
                        p,
                        Intent {
                            writer: writer.clone(),
                            seq,
                            abort,
                            index,
                            source: Some((p, o)),
                        },
                    ));
                }
            }
            let commits = !abort || fault == Fault::CommitMeantAbort(seq);
            if !commits {
                log.aborted.insert((writer.clone(), seq));
                continue;
            }
            for p in 0..2i32 {
                next[p as usize] = (next[p as usize] + 4).min(per_partition);
            }
            log.committed
                .insert((writer.clone(), seq), out.len() as u64);
            if fault == Fault::Reorder(seq) {
                out.swap(0, 1);
            }
            if fault == Fault::PartlyVisible(seq) {
                out.truncate(1);
            }
            visible.extend(out);
        }
        // A reader sees each partition in offset order.
        visible.sort_by_key(|(p, _)| *p);
        (visible, log)
    }

    fn judge(run: &Run, one_to_one: bool, with_log: bool) -> OracleCounts {
        let mut o = if one_to_one {
            Oracle::one_to_one()
        } else {
            Oracle::new()
        };
        for (p, i) in &run.0 {
            // Through the headers, as a reader sees them.
            let h = i.headers();
            o.observe_headers(
                *p,
                h.iter().map(|(k, v)| (k.as_bytes(), Some(v.as_bytes()))),
            );
        }
        o.finish(with_log.then_some(&run.1))
    }

    #[test]
    fn headers_round_trip() {
        let i = Intent {
            writer: "t@ab".into(),
            seq: 7,
            abort: true,
            index: 3,
            source: Some((1, 42)),
        };
        let h = i.headers();
        let back = Intent::parse(h.iter().map(|(k, v)| (k.as_bytes(), Some(v.as_bytes()))));
        assert_eq!(back, Some(i));
        assert_eq!(Intent::parse([(&b"other"[..], Some(&b"x"[..]))]), None);
    }

    #[test]
    fn a_clean_copy_passes() {
        let run = copier(20, Fault::None);
        assert_eq!(run.0.len(), 40);
        for one_to_one in [false, true] {
            let c = judge(&run, one_to_one, true);
            assert!(c.is_clean(), "{c:?}");
            assert_eq!(c, OracleCounts::default());
        }
    }

    #[test]
    fn a_commit_of_a_transaction_meant_to_abort_is_aborted_visible() {
        // Transaction 3 (8 records) commits although meant to abort: its
        // records are visible with intent abort; the set of values is
        // intact (the copy goes on from where it committed).
        let run = copier(20, Fault::CommitMeantAbort(3));
        assert_eq!(run.0.len(), 40);
        let c = judge(&run, false, false);
        assert_eq!(c.aborted_visible, 8, "{c:?}");
        assert!(!c.is_clean());
        assert_eq!(
            OracleCounts {
                aborted_visible: 0,
                ..c
            },
            OracleCounts::default()
        );
    }

    #[test]
    fn a_visible_transaction_the_log_says_aborted_is_aborted_visible() {
        // KAFKA-17754's shape: a transaction meant to commit, reported
        // aborted to its writer, visible anyway (and its input copied again
        // by the next transaction: duplicates too).
        let mut run = copier(20, Fault::None);
        let (_, mut intent) = run.0[0].clone();
        intent.seq = 1000;
        intent.index = 0;
        run.0.insert(1, (0, intent.clone()));
        run.1.aborted.insert((intent.writer.clone(), 1000));
        let c = judge(&run, false, true);
        assert_eq!(c.aborted_visible, 1, "{c:?}");
        assert_eq!(c.duplicate_sources, 1, "{c:?}");
    }

    #[test]
    fn two_reordered_records_are_order_violations() {
        // Transaction 1's first two records (input 0:0 and 0:1) swapped.
        let run = copier(20, Fault::Reorder(1));
        let c = judge(&run, false, true);
        assert_eq!(c.input_order_violations, 1, "{c:?}");
        assert_eq!(
            OracleCounts {
                input_order_violations: 0,
                ..c.clone()
            },
            OracleCounts::default()
        );
        // The 1→1 variant sees the out-of-sequence records: 0:1 first is
        // fine, 0:0 after it and 0:2 after 0:0 are not the next offset.
        let c = judge(&run, true, true);
        assert_eq!(c.one_to_one_violations, 2, "{c:?}");
    }

    #[test]
    fn a_partly_visible_transaction_is_torn() {
        // Only the first of transaction 2's 8 records visible: the log's
        // count catches it (the indices seen, just 0, look whole).
        let run = copier(20, Fault::PartlyVisible(2));
        let c = judge(&run, false, true);
        assert_eq!(c.torn, 1, "{c:?}");
        assert_eq!(OracleCounts { torn: 0, ..c }, OracleCounts::default());
        // A hole in the middle is torn even without the log.
        let mut run = copier(20, Fault::None);
        let at = run.0.iter().position(|(_, i)| i.seq == 2 && i.index == 1);
        run.0.remove(at.expect("record 1 of transaction 2"));
        let c = judge(&run, false, false);
        assert_eq!(c.torn, 1, "{c:?}");
    }

    #[test]
    fn a_committed_transaction_not_visible_is_counted() {
        let mut run = copier(20, Fault::None);
        run.0.retain(|(_, i)| i.seq != 1);
        let c = judge(&run, false, true);
        assert_eq!(c.committed_invisible, 1, "{c:?}");
        assert_eq!(c.torn, 0, "{c:?}");
    }

    #[test]
    fn the_log_round_trips_as_lines() {
        let (_, log) = copier(20, Fault::None);
        let mut back = TxnLog::default();
        for l in log.lines() {
            assert!(back.line(&l), "{l}");
        }
        assert_eq!(back, log);
        assert!(!back.line("committed w x 3"));
        assert!(!back.line("done 1 2 3 4"));
    }

    #[test]
    fn records_without_headers_are_unlabeled_only() {
        let mut o = Oracle::new();
        o.observe_headers(0, []);
        let c = o.finish(None);
        assert_eq!(c.unlabeled, 1);
        assert!(c.is_clean());
    }
}
