//! The consumer against a scripted broker that misbehaves on purpose:
//! duplicate, missing and unrequested partitions; stale leader epochs;
//! offsets out of range; unknown error codes; corrupt batches; an unsorted
//! aborted-transactions list (as Redpanda sends); records past the last
//! stable offset. Each must end in a typed error or a safe skip, never a
//! panic, a hang or a wrong record.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use exactly_codec::messages::FetchResponse;
use exactly_codec::ErrorCode;
use exactly_consumer::{Consumer, ConsumerError, TopicPartition};
use support::*;

async fn consumer(fb: &FakeBroker, extra: &[(&str, &str)]) -> Consumer {
    let mut props = vec![
        ("bootstrap.servers", fb.addr.as_str()),
        ("auto.offset.reset", "earliest"),
        ("fetch.max.wait.ms", "10"),
        ("retry.backoff.ms", "20"),
        ("retry.backoff.max.ms", "50"),
    ];
    props.extend_from_slice(extra);
    Consumer::from_properties(props).await.unwrap()
}

fn tp(p: i32) -> TopicPartition {
    TopicPartition::new("t", p)
}

/// Polls until `n` records came (or 10 s passed), returning them as
/// (partition, offset, value); errors end the wait and are returned.
async fn read(c: &mut Consumer, n: usize) -> Result<Vec<(i32, i64, String)>, ConsumerError> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut out = Vec::new();
    while out.len() < n {
        assert!(Instant::now() < deadline, "only {out:?} after 10 s");
        let rs = c.poll(Duration::from_millis(100)).await?.into_records();
        for (r, v) in rs.iter().zip(values(&rs)) {
            out.push((r.partition(), r.offset(), v));
        }
    }
    Ok(out)
}

/// Answers each asked partition from `logs` (whole log when the fetch
/// offset is before its end, nothing otherwise).
fn answer(seen: &FetchSeen, logs: &[(i32, Log)]) -> FetchResponse {
    let parts = seen
        .partitions
        .iter()
        .map(|(_, p, off, _)| {
            let log = logs.iter().find(|(q, _)| q == p).map(|(_, l)| l.clone());
            let (records, end) = match log {
                Some(l) if *off < l.next => (Some(l.bytes()), l.next),
                Some(l) => (None, l.next),
                None => (None, 0),
            };
            part(*p, 0, records, end)
        })
        .collect();
    FetchResponse::default().with_responses(vec![topic("t", parts)])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_missing_and_unrequested_partitions_are_ignored() {
    let mut a = Log::default();
    a.data(-1, &["a0", "a1", "a2"]);
    let mut dup = Log::default();
    dup.data(-1, &["d0", "d1", "d2", "d3"]);
    let mut b = Log::default();
    b.data(-1, &["b0", "b1"]);
    let (a2, b2) = (a.clone(), b.clone());
    let fb = FakeBroker::start(Box::new(move |seen, _| {
        if seen.n == 0 {
            // t-0 twice (the second copy differs), t-7 and `other` never
            // asked for, t-1 left out.
            FetchResponse::default().with_responses(vec![
                topic(
                    "t",
                    vec![
                        part(0, 0, Some(a2.bytes()), 3),
                        part(0, 0, Some(dup.bytes()), 4),
                        part(7, 0, Some(dup.bytes()), 4),
                    ],
                ),
                topic("other", vec![part(0, 0, Some(dup.bytes()), 4)]),
            ])
        } else {
            answer(seen, &[(0, a2.clone()), (1, b2.clone())])
        }
    }))
    .await;
    let mut c = consumer(&fb, &[]).await;
    c.assign(&[tp(0), tp(1)]).unwrap();
    let mut got = read(&mut c, 5).await.unwrap();
    got.sort();
    let vals: Vec<&str> = got.iter().map(|(_, _, v)| v.as_str()).collect();
    assert_eq!(vals, ["a0", "a1", "a2", "b0", "b1"]);
    assert_eq!(c.position(&tp(0)), Some(3));
    assert_eq!(c.position(&tp(1)), Some(2));
    let m = c.metrics();
    assert!(m.unexpected_partitions >= 3, "{m:?}");
    // Nothing more comes: the duplicate's fourth record is not there.
    let more = c
        .poll(Duration::from_millis(200))
        .await
        .unwrap()
        .into_records();
    assert!(more.is_empty(), "{more:?}");
    c.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_leader_errors_refresh_metadata_then_fetching_resumes() {
    let mut log = Log::default();
    log.data(-1, &["x0", "x1"]);
    let fb = FakeBroker::start(Box::new(move |seen, st| {
        let (_, p, _, epoch) = seen.partitions[0].clone();
        let current = st.leader_epoch.load(Ordering::SeqCst);
        let code = if epoch < current {
            ErrorCode::FencedLeaderEpoch.code()
        } else if current < 7 {
            // A leader change: the next Metadata shows a newer epoch.
            st.leader_epoch.fetch_add(1, Ordering::SeqCst);
            ErrorCode::NotLeaderOrFollower.code()
        } else {
            return answer(seen, &[(0, log.clone())]);
        };
        FetchResponse::default().with_responses(vec![topic("t", vec![part(p, code, None, 0)])])
    }))
    .await;
    let mut c = consumer(&fb, &[]).await;
    c.assign(&[tp(0)]).unwrap();
    let metadata_before = fb.state.metadata_requests.load(Ordering::SeqCst);
    let got = read(&mut c, 2).await.unwrap();
    assert_eq!(got, [(0, 0, "x0".into()), (0, 1, "x1".into())]);
    let epochs: Vec<i32> = fb.fetches().iter().map(|f| f.partitions[0].3).collect();
    assert_eq!(epochs.first(), Some(&5));
    assert_eq!(epochs.last(), Some(&7), "{epochs:?}");
    assert!(epochs.windows(2).all(|w| w[0] <= w[1]), "{epochs:?}");
    assert!(
        fb.state.metadata_requests.load(Ordering::SeqCst) >= metadata_before + 2,
        "no metadata refresh after NOT_LEADER_OR_FOLLOWER"
    );
    assert!(c.metrics().partition_errors >= 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offset_out_of_range_applies_auto_offset_reset() {
    let log = {
        let mut l = Log::at(8);
        l.data(-1, &["r8", "r9"]);
        l
    };
    let fb = FakeBroker::start(Box::new(move |seen, st| {
        let (_, p, off, _) = seen.partitions[0].clone();
        if !(8..100).contains(&off) {
            // Retention moved the log start to 8.
            st.list_offsets
                .lock()
                .unwrap()
                .insert(("t".into(), 0, -2), 8);
            return FetchResponse::default().with_responses(vec![topic(
                "t",
                vec![part(p, ErrorCode::OffsetOutOfRange.code(), None, 10)],
            )]);
        }
        answer(seen, &[(0, log.clone())])
    }))
    .await;
    fb.state
        .list_offsets
        .lock()
        .unwrap()
        .insert(("t".into(), 0, -2), 5);
    let mut c = consumer(&fb, &[]).await;
    c.assign(&[tp(0)]).unwrap();
    let got = read(&mut c, 2).await.unwrap();
    assert_eq!(got[0].1, 8);
    let offsets: Vec<i64> = fb.fetches().iter().map(|f| f.partitions[0].2).collect();
    assert_eq!(offsets.first(), Some(&5), "{offsets:?}");
    assert!(offsets.contains(&8));

    // With auto.offset.reset=none it is the user's error.
    let mut c = consumer(&fb, &[("auto.offset.reset", "none")]).await;
    c.assign(&[tp(0)]).unwrap();
    c.seek(&tp(0), 100).unwrap();
    let err = read(&mut c, 1).await.unwrap_err();
    assert!(
        matches!(err, ConsumerError::OffsetOutOfRange { offset: 100, .. }),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_error_code_is_reported_once_then_fetching_goes_on() {
    let mut log = Log::default();
    log.data(-1, &["u0"]);
    let fb = FakeBroker::start(Box::new(move |seen, _| {
        if seen.n == 0 {
            return FetchResponse::default()
                .with_responses(vec![topic("t", vec![part(0, 9999, None, 0)])]);
        }
        answer(seen, &[(0, log.clone())])
    }))
    .await;
    let mut c = consumer(&fb, &[]).await;
    c.assign(&[tp(0)]).unwrap();
    let err = read(&mut c, 1).await.unwrap_err();
    match err {
        ConsumerError::Kafka {
            code, partition, ..
        } => {
            assert_eq!(code, ErrorCode::Unknown(9999));
            assert_eq!(partition, Some(tp(0)));
        }
        e => panic!("{e:?}"),
    }
    assert!(!err_is_retriable_unknown());
    let got = read(&mut c, 1).await.unwrap();
    assert_eq!(got, [(0, 0, "u0".into())]);
}

fn err_is_retriable_unknown() -> bool {
    ConsumerError::Kafka {
        api: exactly_codec::messages::ApiKey::Fetch,
        code: ErrorCode::Unknown(9999),
        partition: None,
        message: None,
    }
    .is_retriable()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_batch_is_a_typed_error_and_seeking_past_it_goes_on() {
    let mut log = Log::default();
    log.data(-1, &["c0", "c1", "c2"]);
    let bad = log.data(-1, &["bad3", "bad4"]);
    log.data(-1, &["c5"]);
    let mut bytes = log.buf.clone();
    bytes[bad.end - 1] ^= 0x55;
    let corrupt = Log {
        buf: bytes,
        next: log.next,
    };
    let fb = FakeBroker::start(Box::new(move |seen, _| {
        let (_, p, off, _) = seen.partitions[0].clone();
        if off >= 5 {
            // From 5 on, only the last batch.
            let mut tail = Log::at(5);
            tail.data(-1, &["c5"]);
            return answer(seen, &[(p, tail)]);
        }
        answer(seen, &[(p, corrupt.clone())])
    }))
    .await;
    let mut c = consumer(&fb, &[]).await;
    c.assign(&[tp(0)]).unwrap();
    let got = read(&mut c, 3).await.unwrap();
    assert_eq!(got.len(), 3);
    let err = read(&mut c, 1).await.unwrap_err();
    match &err {
        ConsumerError::CorruptRecord {
            partition, offset, ..
        } => assert_eq!((partition, *offset), (&tp(0), 3)),
        e => panic!("{e:?}"),
    }
    assert_eq!(c.position(&tp(0)), Some(3));
    c.seek(&tp(0), 5).unwrap();
    let got = read(&mut c, 1).await.unwrap();
    assert_eq!(got, [(0, 5, "c5".into())]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsorted_aborted_list_and_records_past_the_lso() {
    // pid 1 aborts twice, pid 2 commits, then an open transaction of pid 3
    // past the LSO that a misbehaving broker sends anyway.
    let mut log = Log::default();
    log.data(1, &["A1"]); // 0
    log.data(2, &["ok1"]); // 1
    log.marker(1, false); // 2
    log.data(1, &["A2"]); // 3
    log.data(2, &["ok2"]); // 4
    log.marker(1, false); // 5
    log.marker(1, false); // 6 double abort marker
    log.marker(2, true); // 7
    log.data(-1, &["plain"]); // 8
    let lso = log.next; // 9
    log.data(3, &["open"]); // 9: not yet decided
    let bytes = log.bytes();
    let end = log.next;
    let fb = FakeBroker::start(Box::new(move |seen, _| {
        let (_, p, off, _) = seen.partitions[0].clone();
        if off >= lso {
            return FetchResponse::default()
                .with_responses(vec![topic("t", vec![part(p, 0, None, lso)])]);
        }
        let mut d = part(p, 0, Some(bytes.clone()), end);
        d.last_stable_offset = lso;
        // Newest first, as Redpanda may send it.
        let d = with_aborted(d, &[(1, 3), (1, 0)]);
        FetchResponse::default().with_responses(vec![topic("t", vec![d])])
    }))
    .await;
    let mut c = consumer(&fb, &[]).await;
    c.assign(&[tp(0)]).unwrap();
    let got = read(&mut c, 3).await.unwrap();
    let vals: Vec<&str> = got.iter().map(|(_, _, v)| v.as_str()).collect();
    assert_eq!(vals, ["ok1", "ok2", "plain"]);
    // Nothing past the LSO, and the next fetch starts at it.
    let more = c
        .poll(Duration::from_millis(200))
        .await
        .unwrap()
        .into_records();
    assert!(more.is_empty(), "{more:?}");
    assert_eq!(c.position(&tp(0)), Some(lso));
    let f = fb.fetches();
    assert!(f.iter().all(|f| f.isolation_level == 1));
    assert!(f.iter().any(|f| f.partitions[0].2 == lso));
    let m = c.metrics();
    assert_eq!(m.aborted_batches % 2, 0, "{m:?}");
    assert!(m.aborted_batches >= 2 && m.control_batches >= 4, "{m:?}");

    // read_uncommitted shows the aborted ones (and the open one).
    let mut u = consumer(&fb, &[("isolation.level", "read_uncommitted")]).await;
    u.assign(&[tp(0)]).unwrap();
    let got = read(&mut u, 6).await.unwrap();
    let vals: Vec<&str> = got.iter().map(|(_, _, v)| v.as_str()).collect();
    assert_eq!(vals, ["A1", "ok1", "A2", "ok2", "plain", "open"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_errors_are_typed() {
    let fb = FakeBroker::start(Box::new(|seen, _| answer(seen, &[]))).await;
    let mut c = consumer(&fb, &[]).await;
    assert!(matches!(
        c.poll(Duration::from_millis(10)).await,
        Err(ConsumerError::Usage(_))
    ));
    assert!(matches!(c.subscribe(&["t"]), Err(ConsumerError::Usage(_))));
    assert!(matches!(c.commit().await, Ok(())));
    assert!(matches!(
        c.committed(&[tp(0)]).await,
        Err(ConsumerError::Usage(_))
    ));
    c.assign(&[tp(0)]).unwrap();
    assert!(matches!(c.seek(&tp(1), 0), Err(ConsumerError::Usage(_))));
    assert!(matches!(c.seek(&tp(0), -1), Err(ConsumerError::Usage(_))));
    let meta = c.group_metadata();
    assert_eq!((meta.generation_id, meta.member_id.as_str()), (-1, ""));
    c.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_fetch_in_flight_per_broker_and_brokers_overlap() {
    // Partition 0 on node 1 (slow), partition 1 on node 2 (fast).
    let mut slow = Log::default();
    slow.data(-1, &["s0"]);
    let fast: Vec<Log> = (0..20)
        .map(|i| {
            let mut l = Log::at(i);
            l.data(-1, &[&format!("f{i}")]);
            l
        })
        .collect();
    let fb = FakeBroker::cluster(
        2,
        Box::new(move |seen, _| {
            let parts = seen
                .partitions
                .iter()
                .map(|(_, p, off, _)| match (*p, *off) {
                    (0, 0) => part(0, 0, Some(slow.bytes()), 1),
                    (1, o) if (o as usize) < fast.len() => {
                        part(1, 0, Some(fast[o as usize].bytes()), 20)
                    }
                    (p, o) => part(p, 0, None, o),
                })
                .collect();
            FetchResponse::default().with_responses(vec![topic("t", parts)])
        }),
    )
    .await;
    fb.state
        .delays
        .lock()
        .unwrap()
        .insert(1, Duration::from_millis(3000));
    let mut c = consumer(&fb, &[]).await;
    c.assign(&[tp(0), tp(1)]).unwrap();
    // Node 2's twenty records arrive while node 1's first answer is held.
    let started = Instant::now();
    let first = read(&mut c, 20).await.unwrap();
    // (read() gives up after 10 s; node 1 answers after 3 s.)
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "{:?}",
        started.elapsed()
    );
    assert!(first.iter().all(|(p, _, _)| *p == 1), "{first:?}");
    let rest = read(&mut c, 1).await.unwrap();
    assert_eq!(rest, [(0, 0, "s0".into())]);
    let f = fb.fetches();
    assert!(f.iter().filter(|f| f.node == 2).count() >= 20);
    for s in &f {
        for (_, p, _, _) in &s.partitions {
            assert_eq!(
                p % 2 + 1,
                s.node,
                "partition {p} fetched from node {}",
                s.node
            );
        }
    }
    let max: Vec<usize> = fb
        .state
        .in_flight
        .lock()
        .unwrap()
        .values()
        .map(|(_, m)| *m)
        .collect();
    assert_eq!(max, [1, 1], "more than one fetch in flight on a broker");
}

/// `client.rack` reaches the broker as Fetch's `rack_id` (KIP-392; the fake
/// speaks Fetch v12, past v11 where the field starts); none is "".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_rack_is_sent_in_fetch() {
    let mut log = Log::default();
    log.data(-1, &["r0"]);
    let logs = vec![(0, log)];
    for (rack, want) in [(Some("az-9"), "az-9"), (None, "")] {
        let logs = logs.clone();
        let fb = FakeBroker::start(Box::new(move |seen, _| answer(seen, &logs))).await;
        let extra: Vec<(&str, &str)> = rack.map(|r| ("client.rack", r)).into_iter().collect();
        let mut c = consumer(&fb, &extra).await;
        c.assign(&[tp(0)]).unwrap();
        assert_eq!(read(&mut c, 1).await.unwrap().len(), 1);
        let fetches = fb.fetches();
        assert!(!fetches.is_empty());
        assert!(fetches.iter().all(|f| f.rack_id == want), "{rack:?}");
    }
}
