//! Issue 16 item 4: broker answers that must not stall or balloon the
//! consumer. Each scripted answer below ends in a typed error within a
//! bounded number of fetches — never an endless refetch of the same bytes,
//! never a panic on the fetch task.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use exactly_codec::record::{set_base_offset, RecordError};
use exactly_consumer::{Consumer, ConsumerError, TopicPartition};
use support::*;

async fn consumer(fb: &FakeBroker) -> Consumer {
    Consumer::from_properties([
        ("bootstrap.servers", fb.addr.as_str()),
        ("auto.offset.reset", "earliest"),
        ("fetch.max.wait.ms", "10"),
        ("retry.backoff.ms", "20"),
        ("retry.backoff.max.ms", "50"),
    ])
    .await
    .unwrap()
}

fn tp() -> TopicPartition {
    TopicPartition::new("t", 0)
}

/// Polls until an error (or 5 s pass, which fails the test).
async fn first_error(c: &mut Consumer) -> ConsumerError {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        assert!(Instant::now() < deadline, "no error after 5 s: a stall");
        match c.poll(Duration::from_millis(100)).await {
            Err(e) => return e,
            Ok(rs) => assert!(
                rs.into_records().is_empty(),
                "records from a hostile answer"
            ),
        }
    }
}

/// A broker that answers every fetch of t-0 with `bytes`.
async fn always(bytes: Vec<u8>, end: i64) -> FakeBroker {
    FakeBroker::start(Box::new(move |_, _| {
        exactly_codec::messages::FetchResponse::default().with_responses(vec![topic(
            "t",
            vec![part(0, 0, Some(bytes.clone().into()), end)],
        )])
    }))
    .await
}

/// The fetches made so far must be few: the error came from the first
/// answer, not after the consumer gave up on an endless loop.
fn assert_bounded(fb: &FakeBroker) {
    let n = fb.fetches().len();
    assert!(n <= 3, "{n} fetches before the error");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetch_holding_only_a_partial_batch_is_a_typed_error() {
    let mut log = Log::default();
    log.data(-1, &["p0", "p1", "p2"]);
    let cut = log.buf[..log.buf.len() - 5].to_vec();
    let fb = always(cut.clone(), log.next).await;
    let mut c = consumer(&fb).await;
    c.assign(&[tp()]).unwrap();
    let err = first_error(&mut c).await;
    match &err {
        ConsumerError::CorruptRecord {
            offset: 0,
            source: RecordError::NoCompleteBatch(n),
            ..
        } => assert_eq!(*n, cut.len()),
        e => panic!("{e:?}"),
    }
    assert_bounded(&fb);
    assert_eq!(c.position(&tp()), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_whose_length_lies_is_a_typed_error() {
    let mut log = Log::default();
    log.data(-1, &["l0", "l1"]);
    // The length field (bytes 8..12) claims 1 000 bytes more than follow.
    let mut bytes = log.buf.clone();
    let len = i32::from_be_bytes(bytes[8..12].try_into().unwrap()) + 1_000;
    bytes[8..12].copy_from_slice(&len.to_be_bytes());
    let fb = always(bytes, log.next).await;
    let mut c = consumer(&fb).await;
    c.assign(&[tp()]).unwrap();
    let err = first_error(&mut c).await;
    assert!(
        matches!(
            err,
            ConsumerError::CorruptRecord {
                offset: 0,
                source: RecordError::NoCompleteBatch(_),
                ..
            }
        ),
        "{err:?}"
    );
    assert_bounded(&fb);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_ending_at_i64_max_is_a_typed_error_not_a_panic() {
    let mut log = Log::default();
    log.data(-1, &["m0", "m1"]);
    // base + last offset delta = i64::MAX: the offset after it overflows.
    let mut bytes = log.buf.clone();
    set_base_offset(&mut bytes, i64::MAX - 1).unwrap();
    let fb = always(bytes, 2).await;
    let mut c = consumer(&fb).await;
    c.assign(&[tp()]).unwrap();
    let err = first_error(&mut c).await;
    assert!(
        matches!(
            err,
            ConsumerError::CorruptRecord {
                offset: 0,
                source: RecordError::InvalidOffset(_),
                ..
            }
        ),
        "{err:?}"
    );
    assert_bounded(&fb);
}

/// One LZ4 batch at `base` of `n` records, each `size` zero bytes: a few
/// hundred bytes on the wire, `n * size` decompressed.
fn lz4_batch(base: i64, n: usize, size: usize) -> Vec<u8> {
    use exactly_codec::record::{BatchBuilder, ProducerStamp};
    let mut b = BatchBuilder::new(exactly_codec::Compression::Lz4);
    let value = vec![0u8; size];
    for _ in 0..n {
        b.append(1, None, Some(&value), &[]).unwrap();
    }
    let mut c = b.close().unwrap();
    let mut raw = c
        .stamp(ProducerStamp {
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            transactional: false,
        })
        .to_vec();
    set_base_offset(&mut raw, base).unwrap();
    raw
}

async fn capped_consumer(fb: &FakeBroker, cap: &str) -> Consumer {
    Consumer::from_properties([
        ("bootstrap.servers", fb.addr.as_str()),
        ("auto.offset.reset", "earliest"),
        ("fetch.max.wait.ms", "10"),
        ("retry.backoff.ms", "20"),
        ("retry.backoff.max.ms", "50"),
        ("fetch.max.uncompressed.bytes", cap),
    ])
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_over_the_uncompressed_cap_is_an_error_naming_the_setting() {
    // 2 MiB decompressed, a few KiB on the wire; the cap is 1 MiB.
    let batch = lz4_batch(0, 2, 1 << 20);
    assert!(batch.len() < 64 << 10, "{}", batch.len());
    let fb = always(batch, 2).await;
    let mut c = capped_consumer(&fb, "1048576").await;
    c.assign(&[tp()]).unwrap();
    let err = first_error(&mut c).await;
    assert!(
        matches!(
            err,
            ConsumerError::DecompressedTooLarge {
                offset: 0,
                max: 1_048_576,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("fetch.max.uncompressed.bytes"),
        "{err}"
    );
    assert_bounded(&fb);
    assert_eq!(c.position(&tp()), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_uncompressed_cap_is_per_response_and_partitions_take_turns() {
    // Two partitions, each a batch of 600 KiB decompressed; the response's
    // total is capped at 1 MiB, so one response holds only one of them.
    // Both are read in the end (the cut partition goes first next time).
    let batch = lz4_batch(0, 3, 200 << 10);
    let fb = FakeBroker::start(Box::new(move |seen, _| {
        let parts = seen
            .partitions
            .iter()
            .map(|(_, p, off, _)| {
                let records = (*off == 0).then(|| batch.clone().into());
                part(*p, 0, records, 3)
            })
            .collect();
        exactly_codec::messages::FetchResponse::default().with_responses(vec![topic("t", parts)])
    }))
    .await;
    let mut c = capped_consumer(&fb, "1048576").await;
    c.assign(&[TopicPartition::new("t", 0), TopicPartition::new("t", 1)])
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut got = Vec::new();
    while got.len() < 6 {
        assert!(Instant::now() < deadline, "only {got:?} after 10 s");
        for r in c
            .poll(Duration::from_millis(100))
            .await
            .unwrap()
            .into_records()
            .iter()
        {
            got.push((r.partition(), r.offset()));
        }
    }
    got.sort();
    assert_eq!(got, [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]);
    let m = c.metrics();
    assert!(m.decompression_budget_spent >= 1, "{m:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_lso_above_the_high_watermark_is_bounded_by_it_and_counted() {
    let mut log = Log::default();
    log.data(-1, &["h0", "h1"]);
    log.data(-1, &["h2", "h3"]);
    let bytes = log.bytes();
    let fb = FakeBroker::start(Box::new(move |seen, _| {
        let off = seen.partitions[0].2;
        // High watermark 2, LSO 100: nothing past 2 is stable.
        let mut p = part(0, 0, (off < 2).then(|| bytes.clone()), 2);
        p.last_stable_offset = 100;
        exactly_codec::messages::FetchResponse::default().with_responses(vec![topic("t", vec![p])])
    }))
    .await;
    let mut c = consumer(&fb).await;
    c.assign(&[tp()]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut got = Vec::new();
    while got.len() < 2 {
        assert!(Instant::now() < deadline, "only {got:?}");
        got.extend(values(
            &c.poll(Duration::from_millis(100))
                .await
                .unwrap()
                .into_records(),
        ));
    }
    // A little longer: h2 and h3 (past the high watermark) never come.
    for _ in 0..3 {
        got.extend(values(
            &c.poll(Duration::from_millis(50))
                .await
                .unwrap()
                .into_records(),
        ));
    }
    assert_eq!(got, ["h0", "h1"]);
    assert!(
        c.metrics().read_committed_anomalies >= 1,
        "{:?}",
        c.metrics()
    );
}

/// An LSO going backwards on one leader is counted and reading continues
/// (before: not counted at all).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_lso_going_backwards_is_counted_and_reading_continues() {
    let mut first = Log::default();
    first.data(-1, &["b0", "b1", "b2", "b3"]);
    let first = first.bytes();
    let mut later = Log::at(4);
    later.data(-1, &["b4", "b5"]);
    let later = later.bytes();
    let answers_at_4 = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let fb = FakeBroker::start(Box::new(move |seen, _| {
        let off = seen.partitions[0].2;
        let p = if off < 4 {
            part(0, 0, Some(first.clone()), 4)
        } else if off < 6 {
            let n = answers_at_4.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            if n == 0 {
                // LSO 4 then 2 on the same leader: backwards, no data.
                let mut p = part(0, 0, None, 4);
                p.last_stable_offset = 2;
                p
            } else {
                part(0, 0, Some(later.clone()), 6)
            }
        } else {
            part(0, 0, None, 6)
        };
        exactly_codec::messages::FetchResponse::default().with_responses(vec![topic("t", vec![p])])
    }))
    .await;
    let mut c = consumer(&fb).await;
    c.assign(&[tp()]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut got = Vec::new();
    while got.len() < 6 {
        assert!(Instant::now() < deadline, "only {got:?}");
        got.extend(values(
            &c.poll(Duration::from_millis(100))
                .await
                .unwrap()
                .into_records(),
        ));
    }
    assert_eq!(got, ["b0", "b1", "b2", "b3", "b4", "b5"]);
    assert_eq!(c.metrics().read_committed_anomalies, 1, "{:?}", c.metrics());
}
