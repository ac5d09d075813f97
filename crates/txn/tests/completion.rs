//! The completion probe (`ProducerCore` module docs): after an EndTxn, the
//! first request that opens the next transaction waits until the
//! coordinator says the previous one finished writing its markers. Sent at
//! once instead, it met CONCURRENT_TRANSACTIONS and a 20 ms backoff on most
//! transactions of a begin/send/commit loop (issue 15: about 60
//! transactions/s under transaction.version 2 against the Java client's
//! 90-250 on the same broker). These tests pin what goes out, when.

#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use common::*;
use exactly_txn::*;

fn probe(h: &mut H) -> RequestId {
    let (id, target, r) = h.poll().expect("a request");
    assert!(
        matches!(&r, Request::DescribeTransactions { transactional_id } if transactional_id == "tx"),
        "expected the completion probe, got {r:?}"
    );
    assert_eq!(target, Target::TransactionCoordinator(7));
    id
}

fn answer_probe(h: &mut H, id: RequestId, completing: bool) {
    h.answer(
        id,
        0,
        Response::DescribeTransactions {
            error: None,
            completing,
        },
    );
}

/// A tv2 producer that committed one transaction at `h.now` (EndTxn v5
/// answered with epoch 1), then began the next and enqueued a batch.
fn v2_after_commit() -> H {
    let mut h = H::txn(BrokerInfo::v2());
    h.init(id(PID, 0));
    h.core.begin(h.now).unwrap();
    h.core.enqueue(h.now, tp(0), 1).unwrap();
    // The first transaction's first produce goes at once: nothing to wait for.
    let (rid, _, r) = h.poll().expect("produce");
    assert!(matches!(r, Request::Produce { .. }), "{r:?}");
    h.produce_ok(rid, 0);
    h.core.commit(h.now).unwrap();
    let (rid, _, r) = h.poll().expect("EndTxn");
    assert!(matches!(r, Request::EndTxn { commit: true, .. }), "{r:?}");
    h.end_ok(rid, Some(id(PID, 1)));
    let events = h.events();
    assert_eq!(
        events[events.len().saturating_sub(2)..],
        [
            Event::Committed {
                identity: id(PID, 0)
            },
            Event::IdentityChanged {
                identity: id(PID, 1),
                cause: IdentityCause::EndTxn,
            },
        ],
        "EndTxn v5's new epoch is reported as such"
    );
    // Idle after the commit: nothing waits, so nothing is asked.
    h.none();
    h.core.begin(h.now).unwrap();
    h.core.enqueue(h.now, tp(0), 1).unwrap();
    h
}

#[test]
fn v2_first_produce_after_a_commit_waits_for_the_markers() {
    let mut h = v2_after_commit();
    let p = probe(&mut h);
    // Nothing of the new transaction goes while the probe is out.
    h.none();
    answer_probe(&mut h, p, true);
    // Still completing: asked again at once (the markers take well under a
    // millisecond on an idle broker), the produce still held.
    let p = probe(&mut h);
    h.none();
    answer_probe(&mut h, p, false);
    let (_, target, r) = h.poll().expect("the held produce");
    assert_eq!(target, Target::Leader(tp(0)));
    let stamp = H::stamp_of(&r);
    assert_eq!((stamp.epoch, stamp.base_sequence), (1, 0));
}

#[test]
fn v2_probe_paces_itself_and_gives_up_after_the_window() {
    let mut h = v2_after_commit();
    let start = h.now;
    // Four "still completing" answers at once, then one probe a millisecond.
    for _ in 0..4 {
        let p = probe(&mut h);
        answer_probe(&mut h, p, true);
    }
    h.none();
    assert_eq!(h.core.poll_timeout(), Some(start.plus(1)));
    h.advance(1);
    let p = probe(&mut h);
    answer_probe(&mut h, p, true);
    // The window is concurrent_transactions_backoff_ms (20 ms) from the
    // EndTxn answer: after it the produce goes without asking (the broker
    // then holds it as before, which is no worse than not asking).
    h.advance(19);
    let (_, _, r) = h.poll().expect("the produce");
    assert!(matches!(r, Request::Produce { .. }), "{r:?}");
}

#[test]
fn v2_begin_well_after_the_commit_sends_at_once() {
    let mut h = H::txn(BrokerInfo::v2());
    h.init(id(PID, 0));
    h.core.begin(h.now).unwrap();
    h.core.enqueue(h.now, tp(0), 1).unwrap();
    let (rid, r) = h.req();
    assert!(matches!(r, Request::Produce { .. }));
    h.produce_ok(rid, 0);
    h.core.commit(h.now).unwrap();
    let (rid, _) = h.req();
    h.end_ok(rid, Some(id(PID, 1)));
    h.advance(20);
    h.core.begin(h.now).unwrap();
    h.core.enqueue(h.now, tp(0), 1).unwrap();
    let (_, _, r) = h.poll().expect("produce");
    assert!(matches!(r, Request::Produce { .. }), "{r:?}");
}

#[test]
fn lost_or_refused_probe_lets_the_request_go_and_refusal_stops_probing() {
    // Lost: the produce goes at once, with no coordinator backoff either.
    let mut h = v2_after_commit();
    let p = probe(&mut h);
    h.lost(p);
    let (_, _, r) = h.poll().expect("produce");
    assert!(matches!(r, Request::Produce { .. }), "{r:?}");

    // Refused for good (authorization): the produce goes, and the next
    // transaction does not ask again.
    let mut h = v2_after_commit();
    let p = probe(&mut h);
    h.answer(
        p,
        0,
        Response::DescribeTransactions {
            error: Some(ErrorCode::TransactionalIdAuthorizationFailed),
            completing: false,
        },
    );
    let (rid, _, r) = h.poll().expect("produce");
    assert!(matches!(r, Request::Produce { .. }), "{r:?}");
    h.produce_ok(rid, 1);
    h.core.commit(h.now).unwrap();
    let (rid, _, r) = h.poll().expect("EndTxn");
    assert!(matches!(r, Request::EndTxn { .. }), "{r:?}");
    h.end_ok(rid, Some(id(PID, 2)));
    h.core.begin(h.now).unwrap();
    h.core.enqueue(h.now, tp(0), 1).unwrap();
    let (_, _, r) = h.poll().expect("produce");
    assert!(matches!(r, Request::Produce { .. }), "{r:?}");
}

#[test]
fn v1_add_partitions_after_a_commit_waits_for_the_markers() {
    let mut h = H::txn(BrokerInfo::v1());
    h.init(id(PID, 0));
    h.core.begin(h.now).unwrap();
    h.core.enqueue(h.now, tp(0), 1).unwrap();
    h.add_partitions_ok();
    let (rid, r) = h.req();
    assert!(matches!(r, Request::Produce { .. }));
    h.produce_ok(rid, 0);
    h.core.commit(h.now).unwrap();
    let (rid, _, r) = h.poll().expect("EndTxn");
    assert!(matches!(r, Request::EndTxn { commit: true, .. }), "{r:?}");
    h.answer(
        rid,
        4,
        Response::EndTxn {
            error: None,
            identity: None,
        },
    );
    h.core.begin(h.now).unwrap();
    h.core.enqueue(h.now, tp(0), 1).unwrap();
    let p = probe(&mut h);
    h.none();
    answer_probe(&mut h, p, false);
    let (_, _, r) = h.poll().expect("AddPartitionsToTxn");
    assert!(
        matches!(r, Request::AddPartitionsToTxn { identity, .. } if identity == id(PID, 0)),
        "{r:?}"
    );
}

#[test]
fn probe_off_sends_at_once() {
    let mut h = H::new(
        Config {
            probe_completion: false,
            ..Config::transactional("tx")
        },
        BrokerInfo::v2(),
    );
    h.init(id(PID, 0));
    h.core.begin(h.now).unwrap();
    h.core.enqueue(h.now, tp(0), 1).unwrap();
    let (rid, _, _) = h.poll().unwrap();
    h.produce_ok(rid, 0);
    h.core.commit(h.now).unwrap();
    let (rid, _, _) = h.poll().unwrap();
    h.end_ok(rid, Some(id(PID, 1)));
    h.core.begin(h.now).unwrap();
    h.core.enqueue(h.now, tp(0), 1).unwrap();
    let (_, _, r) = h.poll().expect("produce");
    assert!(matches!(r, Request::Produce { .. }), "{r:?}");
}
