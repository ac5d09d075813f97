//! Fetch sessions (KIP-227) against a fake broker that keeps one the way a
//! broker does: a full request (epoch 0) opens it, an incremental one
//! updates it (named partitions from their new offsets, forgotten ones
//! dropped) and must carry the next epoch, and the answer to an incremental
//! request leaves out every partition with nothing new. The broker fetches
//! each partition of the session from the offset it was last named with, so
//! a consumer that forgot to name a partition again after reading from it
//! would see its records twice; one that took a left-out partition for an
//! error or for "empty" would stop reading it.
//!
//! No timing is asserted: the checks are on the requests and the records.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use exactly_codec::messages::FetchResponse;
use exactly_consumer::{Consumer, Polled, TopicPartition};
use support::*;

/// One partition's log as whole batches: (base offset, end offset, bytes).
#[derive(Default)]
struct Batches(Vec<(i64, i64, Bytes)>);

impl Batches {
    fn end(&self) -> i64 {
        self.0.last().map_or(0, |b| b.1)
    }

    /// Appends a batch of `values`.
    fn append(&mut self, values: &[String]) {
        let mut log = Log::at(self.end());
        let v: Vec<&str> = values.iter().map(String::as_str).collect();
        let r = log.data(-1, &v);
        let bytes = Bytes::copy_from_slice(&log.buf[r]);
        self.0
            .push((log.next - values.len() as i64, log.next, bytes));
    }

    /// Whole batches from `offset`, at least one, up to `max` bytes.
    fn read(&self, offset: i64, max: i32) -> Option<Bytes> {
        let mut out = Vec::new();
        for (_, end, bytes) in &self.0 {
            if *end <= offset {
                continue;
            }
            if !out.is_empty() && out.len() + bytes.len() > max as usize {
                break;
            }
            out.extend_from_slice(bytes);
        }
        (!out.is_empty()).then(|| Bytes::from(out))
    }
}

/// The fake's session: (id, next epoch, partition -> (fetch offset, max
/// bytes), partition -> high watermark last answered).
type Session = (i32, i32, BTreeMap<i32, (i64, i32)>, HashMap<i32, i64>);

/// The fake's side of the session.
#[derive(Default)]
struct Side {
    logs: Vec<Batches>,
    session: Option<Session>,
    last_id: i32,
    /// Answer the next incremental request with this top-level error.
    fail_next: Option<i16>,
    /// Drop the session before the next request (as an evicting broker).
    evict: bool,
    /// What the consumer did that a broker would refuse or that loses data.
    violations: Vec<String>,
}

const FETCH_SESSION_ID_NOT_FOUND: i16 = 70;
const INVALID_FETCH_SESSION_EPOCH: i16 = 71;

fn answer(side: &mut Side, seen: &FetchSeen) -> FetchResponse {
    if std::mem::take(&mut side.evict) {
        side.session = None;
    }
    let named: Vec<(i32, i64, i32)> = seen
        .partitions
        .iter()
        .zip(&seen.partition_max_bytes)
        .map(|((_, p, o, _), m)| (*p, *o, *m))
        .collect();
    let (id, full) = match seen.session_epoch {
        -1 => {
            // No session: answer what is named.
            let parts = named
                .iter()
                .map(|&(p, o, m)| {
                    let log = &side.logs[p as usize];
                    part(p, 0, log.read(o, m), log.end())
                })
                .collect();
            return FetchResponse::default().with_responses(vec![topic("t", parts)]);
        }
        0 => {
            if !seen.forgotten.is_empty() {
                side.violations
                    .push(format!("fetch {}: full with forgotten", seen.n));
            }
            side.last_id += 1;
            let parts = named.iter().map(|&(p, o, m)| (p, (o, m))).collect();
            side.session = Some((side.last_id, 1, parts, HashMap::new()));
            (side.last_id, true)
        }
        epoch => {
            if let Some(code) = side.fail_next.take() {
                return FetchResponse::default().with_error_code(code);
            }
            let Some((id, next, parts, _)) = side.session.as_mut() else {
                return FetchResponse::default().with_error_code(FETCH_SESSION_ID_NOT_FOUND);
            };
            if *id != seen.session_id {
                return FetchResponse::default().with_error_code(FETCH_SESSION_ID_NOT_FOUND);
            }
            if *next != epoch {
                side.violations
                    .push(format!("fetch {}: epoch {epoch}, not {next}", seen.n));
                return FetchResponse::default().with_error_code(INVALID_FETCH_SESSION_EPOCH);
            }
            *next += 1;
            for (_, p) in &seen.forgotten {
                if parts.remove(p).is_none() {
                    side.violations
                        .push(format!("fetch {}: forgot {p}, not in the session", seen.n));
                }
            }
            for &(p, o, m) in &named {
                parts.insert(p, (o, m));
            }
            (*id, false)
        }
    };
    let Some((_, _, parts, answered_hw)) = side.session.as_mut() else {
        return FetchResponse::default();
    };
    let mut out = Vec::new();
    for (&p, &(offset, max)) in parts.iter() {
        let log = &side.logs[p as usize];
        let data = log.read(offset, max);
        let hw = log.end();
        // An incremental answer leaves out what has nothing new.
        if !full && data.is_none() && answered_hw.get(&p) == Some(&hw) {
            continue;
        }
        answered_hw.insert(p, hw);
        out.push(part(p, 0, data, hw));
    }
    FetchResponse::default()
        .with_session_id(id)
        .with_responses(vec![topic("t", out)])
}

fn tp(p: i32) -> TopicPartition {
    TopicPartition::new("t", p)
}

fn values(from: usize, n: usize) -> Vec<String> {
    (from..from + n).map(|i| format!("v{i}")).collect()
}

/// A fake with `parts` partitions, the first two holding 4 batches of 5
/// records, and a consumer of all of them reading small responses.
async fn setup(parts: i32, sessions: bool) -> (FakeBroker, Arc<Mutex<Side>>, Consumer) {
    let side = Arc::new(Mutex::new(Side::default()));
    {
        let mut s = side.lock().unwrap();
        for p in 0..parts {
            let mut b = Batches::default();
            if p < 2 {
                for k in 0..4 {
                    b.append(&values(k * 5, 5));
                }
            }
            s.logs.push(b);
        }
    }
    let s2 = side.clone();
    let fb = FakeBroker::start(Box::new(move |seen, _| {
        answer(&mut s2.lock().unwrap(), seen)
    }))
    .await;
    fb.state
        .partitions
        .store(parts, std::sync::atomic::Ordering::SeqCst);
    let mut c = Consumer::from_properties([
        ("bootstrap.servers", fb.addr.as_str()),
        ("auto.offset.reset", "earliest"),
        ("max.partition.fetch.bytes", "200"),
        ("fetch.max.wait.ms", "50"),
        (
            "enable.fetch.sessions",
            if sessions { "true" } else { "false" },
        ),
    ])
    .await
    .unwrap();
    let tps: Vec<TopicPartition> = (0..parts).map(tp).collect();
    c.assign(&tps).unwrap();
    (fb, side, c)
}

/// Polls until `want` records per partition arrived (in `got`), or 10 s.
async fn read(c: &mut Consumer, got: &mut BTreeMap<i32, Vec<String>>, want: &[(i32, usize)]) {
    let end = Instant::now() + Duration::from_secs(10);
    while want
        .iter()
        .any(|(p, n)| got.get(p).map_or(0, Vec::len) < *n)
    {
        assert!(Instant::now() < end, "timed out: {got:?}");
        if let Polled::Records(rs) = c.poll(Duration::from_millis(100)).await.unwrap() {
            for r in rs.iter() {
                let v = String::from_utf8(r.value().unwrap().to_vec()).unwrap();
                got.entry(r.partition()).or_default().push(v);
            }
        }
    }
}

/// Polls for a while, expecting nothing.
async fn idle_for(c: &mut Consumer, d: Duration) {
    let end = Instant::now() + d;
    while Instant::now() < end {
        if let Polled::Records(rs) = c.poll(Duration::from_millis(50)).await.unwrap() {
            assert_eq!(rs.len(), 0, "nothing new was written");
        }
    }
}

#[tokio::test]
async fn incremental_fetches_name_what_changed_and_read_everything_once() {
    let (fb, side, mut c) = setup(4, true).await;
    let mut got = BTreeMap::new();
    read(&mut c, &mut got, &[(0, 20), (1, 20)]).await;
    idle_for(&mut c, Duration::from_millis(400)).await;
    let idle_from = fb.fetches().len();
    idle_for(&mut c, Duration::from_millis(300)).await;
    // New records on partition 3, left out of every answer so far but
    // the first.
    let idle_to = fb.fetches().len();
    side.lock().unwrap().logs[3].append(&values(0, 3));
    read(&mut c, &mut got, &[(3, 3)]).await;
    assert_eq!(got[&0], values(0, 20));
    assert_eq!(got[&1], values(0, 20));
    assert_eq!(got[&3], values(0, 3));
    assert!(!got.contains_key(&2));

    let fetches = fb.fetches();
    assert_eq!(side.lock().unwrap().violations, Vec::<String>::new());
    let first = &fetches[0];
    assert_eq!((first.session_id, first.session_epoch), (0, 0));
    assert_eq!(first.partitions.len(), 4);
    // Every later request is incremental in the one session, epochs in turn.
    for (i, f) in fetches.iter().enumerate().skip(1) {
        assert_eq!(
            (f.session_id, f.session_epoch),
            (1, i as i32),
            "fetch {i}: {f:?}"
        );
    }
    // Idle, the requests name nothing.
    assert!(idle_to > idle_from + 2, "{idle_from}..{idle_to}");
    for f in &fetches[idle_from..idle_to] {
        assert!(
            f.partitions.is_empty() && f.forgotten.is_empty(),
            "idle fetch {}: {:?}",
            f.n,
            f.partitions
        );
    }
    assert_eq!(c.metrics().fetch_session_resets, 0);
}

/// Polls (keeping the records) until the fake saw `n` full fetches.
async fn until_full_fetches(
    c: &mut Consumer,
    fb: &FakeBroker,
    got: &mut BTreeMap<i32, Vec<String>>,
    n: usize,
) {
    let end = Instant::now() + Duration::from_secs(10);
    while fb.fetches().iter().filter(|f| f.session_epoch == 0).count() < n {
        assert!(Instant::now() < end, "timed out: {:?}", fb.fetches());
        if let Polled::Records(rs) = c.poll(Duration::from_millis(50)).await.unwrap() {
            for r in rs.iter() {
                let v = String::from_utf8(r.value().unwrap().to_vec()).unwrap();
                got.entry(r.partition()).or_default().push(v);
            }
        }
    }
}

#[tokio::test]
async fn a_lost_or_refused_session_starts_over_with_a_full_fetch() {
    let (fb, side, mut c) = setup(3, true).await;
    let mut got = BTreeMap::new();
    read(&mut c, &mut got, &[(0, 5)]).await;
    // The broker evicts the session: FETCH_SESSION_ID_NOT_FOUND, then a
    // new session (id 0, epoch 0).
    let n1 = fb.fetches().len();
    side.lock().unwrap().evict = true;
    until_full_fetches(&mut c, &fb, &mut got, 2).await;
    // The broker refuses the epoch: the old session is closed and a new
    // one opened (its id, epoch 0).
    let n2 = fb.fetches().len();
    side.lock().unwrap().fail_next = Some(INVALID_FETCH_SESSION_EPOCH);
    until_full_fetches(&mut c, &fb, &mut got, 3).await;
    read(&mut c, &mut got, &[(0, 20), (1, 20)]).await;
    assert_eq!(got[&0], values(0, 20));
    assert_eq!(got[&1], values(0, 20));
    assert_eq!(side.lock().unwrap().violations, Vec::<String>::new());

    let fetches = fb.fetches();
    let full: Vec<(usize, i32)> = fetches
        .iter()
        .filter(|f| f.session_epoch == 0)
        .map(|f| (f.n, f.session_id))
        .collect();
    assert_eq!(full.len(), 3, "{full:?}");
    assert!(full[1].0 >= n1 && full[1].1 == 0, "{full:?} after {n1}");
    assert!(full[2].0 >= n2 && full[2].1 == 2, "{full:?} after {n2}");
    for (n, _) in &full {
        // A full request names every partition wanted then.
        let f = &fetches[*n];
        assert!(f.forgotten.is_empty());
    }
    assert_eq!(c.metrics().fetch_session_resets, 2);
}

#[tokio::test]
async fn sessions_off_every_request_names_every_partition() {
    let (fb, _side, mut c) = setup(3, false).await;
    let mut got = BTreeMap::new();
    read(&mut c, &mut got, &[(0, 20), (1, 20)]).await;
    idle_for(&mut c, Duration::from_millis(200)).await;
    let fetches = fb.fetches();
    assert!(fetches.len() > 3);
    for f in &fetches {
        assert_eq!((f.session_id, f.session_epoch), (0, -1), "{f:?}");
        assert!(f.forgotten.is_empty());
    }
    assert_eq!(got[&0], values(0, 20));
}
