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
