//! Model-based test of the `read_committed` path: random interleavings of
//! transactional producers (committed and aborted, with duplicate abort
//! markers), plain producers and compressed batches are written into a log;
//! a simulated consumer fetches it in random windows (some ending in a
//! partial batch) with the aborted-transactions list a broker would send, in
//! random order, sometimes a superset. What it reads must equal the model:
//! every committed and plain record once, in offset order, nothing aborted.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::Arc;

use exactly_codec::record::DecodeOptions;
use exactly_codec::Compression;
use proptest::prelude::*;

use super::parse::tests::LogBuilder;
use super::parse::*;
use super::read_committed::AbortedTxn;

#[derive(Debug, Clone)]
enum Op {
    /// A transactional batch of `n` records by producer `p`.
    Txn { p: usize, n: usize, lz4: bool },
    /// A plain batch.
    Plain { n: usize },
    /// Producer `p` ends its transaction.
    End {
        p: usize,
        commit: bool,
        double: bool,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..3usize, 1..4usize, any::<bool>()).prop_map(|(p, n, lz4)| Op::Txn { p, n, lz4 }),
        1 => (1..3usize).prop_map(|n| Op::Plain { n }),
        2 => (0..3usize, any::<bool>(), any::<bool>())
            .prop_map(|(p, commit, double)| Op::End { p, commit, double }),
    ]
}

/// An aborted transaction as the broker indexes it.
#[derive(Debug, Clone, Copy)]
struct Aborted {
    pid: i64,
    first: i64,
    last: i64,
}

struct Built {
    log: LogBuilder,
    expected: Vec<(i64, String)>,
    aborted: Vec<Aborted>,
}

fn build(ops: &[Op], final_commit: &[bool; 3]) -> Built {
    let mut log = LogBuilder::new();
    let mut open: [Option<(usize, i64)>; 3] = [None; 3];
    let mut txn_ids = 0usize;
    let mut outcome: HashMap<usize, bool> = HashMap::new();
    // (offset, value, owning transaction)
    let mut entries: Vec<(i64, String, Option<usize>)> = Vec::new();
    let mut aborted = Vec::new();
    let mut counter = 0u32;
    let pid = |p: usize| 100 + p as i64;
    let mut end = |log: &mut LogBuilder,
                   open: &mut [Option<(usize, i64)>; 3],
                   p: usize,
                   commit: bool,
                   double: bool| {
        if let Some((id, first)) = open[p].take() {
            let at = log.marker(pid(p), commit);
            outcome.insert(id, commit);
            if !commit {
                aborted.push(Aborted {
                    pid: pid(p),
                    first,
                    last: at,
                });
                if double {
                    log.marker(pid(p), false);
                }
            }
        } else if double {
            // A stray abort marker outside any transaction.
            log.marker(pid(p), false);
        }
    };
    for op in ops {
        match *op {
            Op::Txn { p, n, lz4 } => {
                let id = match open[p] {
                    Some((id, _)) => id,
                    None => {
                        txn_ids += 1;
                        open[p] = Some((txn_ids, log.next));
                        txn_ids
                    }
                };
                let vals: Vec<String> = (0..n)
                    .map(|_| {
                        counter += 1;
                        format!("v{counter}")
                    })
                    .collect();
                let codec = if lz4 {
                    Compression::Lz4
                } else {
                    Compression::None
                };
                let base = log.data_with(pid(p), true, codec, &vals);
                for (i, v) in vals.into_iter().enumerate() {
                    entries.push((base + i as i64, v, Some(id)));
                }
            }
            Op::Plain { n } => {
                let vals: Vec<String> = (0..n)
                    .map(|_| {
                        counter += 1;
                        format!("v{counter}")
                    })
                    .collect();
                let base = log.data_with(-1, false, Compression::None, &vals);
                for (i, v) in vals.into_iter().enumerate() {
                    entries.push((base + i as i64, v, None));
                }
            }
            Op::End { p, commit, double } => end(&mut log, &mut open, p, commit, double),
        }
    }
    for (p, &commit) in final_commit.iter().enumerate() {
        end(&mut log, &mut open, p, commit, false);
    }
    let expected = entries
        .into_iter()
        .filter(|(_, _, owner)| owner.is_none_or(|id| outcome[&id]))
        .map(|(o, v, _)| (o, v))
        .collect();
    Built {
        log,
        expected,
        aborted,
    }
}

/// One fetch: `k` whole batches from the position, then maybe a partial one.
#[derive(Debug, Clone, Copy)]
struct Step {
    k: usize,
    partial: bool,
    superset: bool,
    order: u8,
}

fn step() -> impl Strategy<Value = Step> {
    (1..5usize, any::<bool>(), any::<bool>(), 0..3u8).prop_map(|(k, partial, superset, order)| {
        Step {
            k,
            partial,
            superset,
            order,
        }
    })
}

fn consume(b: &Built, steps: &[Step]) -> Vec<(i64, String)> {
    let topic: Arc<str> = Arc::from("t");
    let end = b.log.next;
    let mut pos = 0i64;
    let mut out = Vec::new();
    let mut i = 0usize;
    while pos < end {
        let s = steps[i % steps.len()];
        i += 1;
        let first = b
            .log
            .batches
            .iter()
            .position(|(base, _)| *base >= pos)
            .unwrap();
        let upto = (first + s.k).min(b.log.batches.len());
        let window_end = b.log.batches.get(upto).map_or(end, |(base, _)| *base);
        let mut bytes = b.log.window(pos, window_end).to_vec();
        if s.partial {
            if let Some((_, r)) = b.log.batches.get(upto) {
                let cut = r.start + (r.end - r.start) / 2;
                bytes.extend_from_slice(&b.log.buf[r.start..cut]);
            }
        }
        // The broker lists aborted transactions overlapping [pos, window_end).
        let mut list: Vec<AbortedTxn> = b
            .aborted
            .iter()
            .filter(|t| t.last >= pos && (s.superset || t.first < window_end))
            .map(|t| AbortedTxn {
                first_offset: t.first,
                producer_id: t.pid,
            })
            .collect();
        match s.order {
            0 => {}
            1 => list.reverse(),
            _ => {
                let half = list.len() / 2;
                list.rotate_left(half);
                if let Some(&t) = list.first() {
                    list.push(t);
                }
            }
        }
        let p = parse_partition(
            &topic,
            0,
            PartitionData {
                fetch_offset: pos,
                records: bytes.into(),
                aborted: Some(list),
                last_stable_offset: end,
            },
            DecodeOptions::default(),
        );
        assert!(p.fault.is_none(), "{:?}", p.fault);
        assert!(p.next_offset > pos, "no progress at {pos}");
        for r in &p.records {
            assert!(r.offset() >= pos && r.offset() < p.next_offset);
            out.push((
                r.offset(),
                String::from_utf8(r.value().unwrap().to_vec()).unwrap(),
            ));
        }
        pos = p.next_offset;
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("EXACTLY_MODEL_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256)
    ))]

    #[test]
    fn read_committed_reads_exactly_the_committed_records(
        ops in proptest::collection::vec(op(), 1..60),
        final_commit in any::<[bool; 3]>(),
        steps in proptest::collection::vec(step(), 1..8),
    ) {
        let built = build(&ops, &final_commit);
        let got = consume(&built, &steps);
        prop_assert_eq!(got, built.expected);
    }
}
