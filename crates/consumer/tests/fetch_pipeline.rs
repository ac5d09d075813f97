//! The consumer keeps the broker busy while it has records to give
//! (issue 15): a fake broker that knows what it holds counts every Fetch
//! that could only wait out `fetch.max.wait.ms` (each partition it names is
//! at its log end) while another partition still has records the consumer
//! never asked for — time the consumer leaves the broker idle with data
//! available. It also checks what the fetches ask for, and that the next
//! fetch of a partition goes out before the application has drained the
//! records already fetched for it.
//!
//! No timing is asserted: the counts come from the order of requests.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use exactly_codec::messages::FetchResponse;
use exactly_consumer::{Consumer, TopicPartition};
use support::*;

/// A partition's log as whole batches: (base offset, end offset, bytes).
#[derive(Clone, Default)]
struct Batches(Vec<(i64, i64, Bytes)>);

impl Batches {
    /// `batches` batches of `per_batch` records with 100-byte values.
    fn new(batches: usize, per_batch: usize) -> Batches {
        let mut log = Log::default();
        let value = "v".repeat(100);
        let values: Vec<&str> = (0..per_batch).map(|_| value.as_str()).collect();
        let mut out = Vec::new();
        for _ in 0..batches {
            let base = log.next;
            let range = log.data(-1, &values);
            out.push((
                base,
                log.next,
                Bytes::copy_from_slice(&log.buf[range.start..range.end]),
            ));
        }
        Batches(out)
    }

    fn end(&self) -> i64 {
        self.0.last().map_or(0, |b| b.1)
    }

    /// Whole batches from `offset` up to `max_bytes` (at least one, as a
    /// broker does, KIP-74); the end offset of what was returned.
    fn read(&self, offset: i64, max_bytes: i32) -> Option<(Bytes, i64)> {
        let mut out = Vec::new();
        let mut end = offset;
        for (_, last, bytes) in &self.0 {
            if *last <= offset {
                continue;
            }
            if !out.is_empty() && out.len() + bytes.len() > max_bytes as usize {
                break;
            }
            out.extend_from_slice(bytes);
            end = *last;
        }
        (!out.is_empty()).then(|| (Bytes::from(out), end))
    }
}

/// What the fake saw, beyond the fetches themselves.
#[derive(Default, Debug)]
struct Idle {
    /// Fetches where every partition named was at its log end while another
    /// partition had records past anything sent so far.
    with_data_waiting: Vec<(usize, Vec<(i32, i64)>)>,
    /// Per partition: the end of the data sent so far.
    sent_end: HashMap<i32, i64>,
}

fn fake(logs: Arc<Vec<Batches>>, idle: Arc<Mutex<Idle>>) -> Script {
    Box::new(move |seen, _| {
        let mut idle = idle.lock().unwrap();
        let mut parts = Vec::new();
        let mut any_data = false;
        for (i, (_, p, off, _)) in seen.partitions.iter().enumerate() {
            let log = &logs[*p as usize];
            let max = seen.partition_max_bytes[i];
            match log.read(*off, max) {
                Some((bytes, end)) => {
                    any_data = true;
                    let e = idle.sent_end.entry(*p).or_insert(0);
                    *e = (*e).max(end);
                    parts.push(part(*p, 0, Some(bytes), log.end()));
                }
                None => parts.push(part(*p, 0, None, log.end())),
            }
        }
        let waiting = (0..logs.len() as i32)
            .any(|p| idle.sent_end.get(&p).copied().unwrap_or(0) < logs[p as usize].end());
        if !any_data && waiting {
            let asked = seen
                .partitions
                .iter()
                .map(|(_, p, o, _)| (*p, *o))
                .collect();
            idle.with_data_waiting.push((seen.n, asked));
        }
        FetchResponse::default().with_responses(vec![topic("t", parts)])
    })
}

fn tp(p: i32) -> TopicPartition {
    TopicPartition::new("t", p)
}

/// Three partitions on one broker: 0 holds one small batch (so it is soon
/// at its end), 1 and 2 many batches, each fetched in several responses.
async fn setup() -> (FakeBroker, Arc<Vec<Batches>>, Arc<Mutex<Idle>>, Consumer) {
    let logs = Arc::new(vec![
        Batches::new(1, 5),
        Batches::new(40, 50),
        Batches::new(40, 50),
    ]);
    let idle = Arc::new(Mutex::new(Idle::default()));
    let fb = FakeBroker::start(fake(logs.clone(), idle.clone())).await;
    fb.state
        .partitions
        .store(3, std::sync::atomic::Ordering::SeqCst);
    // Defaults otherwise: read_committed, fetch.min.bytes 1,
    // fetch.max.wait.ms 500.
    let c = Consumer::from_properties([
        ("bootstrap.servers", fb.addr.as_str()),
        ("auto.offset.reset", "earliest"),
        ("max.poll.records", "50"),
        ("max.partition.fetch.bytes", "16384"),
    ])
    .await
    .unwrap();
    (fb, logs, idle, c)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_fetch_waits_at_the_log_end_while_records_wait_elsewhere() {
    let (fb, logs, idle, mut c) = setup().await;
    c.assign(&[tp(0), tp(1), tp(2)]).unwrap();
    let total: i64 = logs.iter().map(Batches::end).sum();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut got: HashMap<i32, Vec<i64>> = HashMap::new();
    let mut n = 0;
    while n < total {
        assert!(Instant::now() < deadline, "only {n} of {total} records");
        let rs = c
            .poll(Duration::from_millis(100))
            .await
            .unwrap()
            .into_records();
        for r in rs.iter() {
            got.entry(r.partition()).or_default().push(r.offset());
            n += 1;
        }
    }
    // Every record once, in order.
    for (p, log) in logs.iter().enumerate() {
        let offsets = got.remove(&(p as i32)).unwrap_or_default();
        assert_eq!(offsets, (0..log.end()).collect::<Vec<_>>(), "partition {p}");
    }
    let fetches = fb.fetches();
    for f in &fetches {
        assert_eq!(
            (f.min_bytes, f.max_wait_ms, f.isolation_level),
            (1, 500, 1),
            "{f:?}"
        );
        assert!(f.partition_max_bytes.iter().all(|b| *b == 16384), "{f:?}");
    }
    let idle = idle.lock().unwrap();
    assert!(
        idle.with_data_waiting.is_empty(),
        "{} of {} fetches could only wait out fetch.max.wait.ms while records \
         waited on the broker (fetch number, [(partition, offset)]): {:?}",
        idle.with_data_waiting.len(),
        fetches.len(),
        idle.with_data_waiting
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_next_fetch_goes_out_before_the_application_drains_the_last() {
    let (fb, _logs, _idle, mut c) = setup().await;
    c.assign(&[tp(0), tp(1), tp(2)]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let first = loop {
        assert!(Instant::now() < deadline, "no records");
        let rs = c
            .poll(Duration::from_millis(100))
            .await
            .unwrap()
            .into_records();
        if !rs.is_empty() {
            break rs;
        }
    };
    assert_eq!(first.len(), 50);
    // The application holds these 50 records and does not poll for a while.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let positions: Vec<i64> = (0..3).map(|p| c.position(&tp(p)).unwrap()).collect();
    let fetches = fb.fetches();
    // The first response gave partitions 1 and 2 several batches each (16
    // KiB); fewer than 50 of them are handed out, and yet each was asked for
    // again from the end of that response.
    let first_end = |p: i32| {
        fetches
            .iter()
            .flat_map(|f| f.partitions.iter())
            .filter(|(_, q, _, _)| *q == p)
            .map(|(_, _, o, _)| *o)
            .max()
            .unwrap()
    };
    for p in [1, 2] {
        assert!(
            first_end(p) > positions[p as usize] && first_end(p) > 50,
            "partition {p} not fetched ahead of position {}: {fetches:?}",
            positions[p as usize]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_fetch_waits_at_the_end_while_its_records_are_buffered() {
    // One partition whose whole log comes in the first response: fetching
    // ahead from its end could only wait out fetch.max.wait.ms, and a seek
    // (the rewind after an aborted transaction) would wait behind it.
    let logs = Arc::new(vec![Batches::new(10, 10)]);
    let idle = Arc::new(Mutex::new(Idle::default()));
    let fb = FakeBroker::start(fake(logs.clone(), idle)).await;
    fb.state
        .partitions
        .store(1, std::sync::atomic::Ordering::SeqCst);
    let mut c = Consumer::from_properties([
        ("bootstrap.servers", fb.addr.as_str()),
        ("auto.offset.reset", "earliest"),
        ("max.poll.records", "10"),
    ])
    .await
    .unwrap();
    c.assign(&[tp(0)]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut first = Vec::new();
    while first.is_empty() {
        assert!(Instant::now() < deadline, "no records");
        first = values(
            &c.poll(Duration::from_millis(100))
                .await
                .unwrap()
                .into_records(),
        );
    }
    assert_eq!(first.len(), 10);
    // The application holds 90 more and does not poll for a while.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let at_end: Vec<_> = fb
        .fetches()
        .into_iter()
        .filter(|f| f.partitions.iter().any(|(_, _, o, _)| *o >= logs[0].end()))
        .collect();
    assert!(
        at_end.is_empty(),
        "fetched at the end with records buffered: {at_end:?}"
    );
    // A rewind is fetched at once (no fetch in flight to wait for).
    c.seek(&tp(0), 0).unwrap();
    let fetches_before = fb.fetches().len();
    let again = c
        .poll(Duration::from_millis(100))
        .await
        .unwrap()
        .into_records();
    assert_eq!(again.iter().next().map(|r| r.offset()), Some(0));
    assert_eq!(fb.fetches().len(), fetches_before + 1);
}
