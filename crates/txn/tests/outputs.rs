//! What a driver learns from the core instead of reading its state
//! (issue 17): offsets committed by handle, `begin` refused while the core
//! re-initializes between transactions, what the application may send,
//! whether a transaction is ending, the abort of a transaction left open on
//! close.

#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use common::*;
use exactly_txn::*;

#[test]
fn offsets_committed_names_the_add_offsets_call() {
    for broker in [BrokerInfo::v2(), BrokerInfo::v1()] {
        let mut h = H::txn(broker);
        h.init(id(PID, 0));
        h.core.begin(h.now).unwrap();
        let first = h.core.add_offsets(h.now, group(), offsets()).unwrap();
        let second = h.core.add_offsets(h.now, group(), offsets()).unwrap();
        assert_ne!(first, second);
        for expected in [first, second] {
            let rid = loop {
                let (rid, r) = h.req();
                match r {
                    Request::AddOffsetsToTxn { .. } => {
                        h.answer(rid, 3, Response::AddOffsetsToTxn { error: None });
                        assert!(h.events().is_empty(), "not committed by AddOffsetsToTxn");
                    }
                    Request::FindCoordinator { .. } => h.answer(
                        rid,
                        4,
                        Response::FindCoordinator {
                            error: None,
                            node: 8,
                        },
                    ),
                    Request::TxnOffsetCommit { .. } => break rid,
                    other => panic!("unexpected {other:?}"),
                }
            };
            h.answer(
                rid,
                3,
                Response::TxnOffsetCommit {
                    results: vec![(TopicPartition::new("in", 0), None)],
                },
            );
            assert_eq!(h.events(), vec![Event::OffsetsCommitted { id: expected }]);
        }
    }
}

#[test]
fn begin_while_reinitializing_is_refused_as_such() {
    // Flow v1: an abort ends with an epoch bump; begin meanwhile must wait.
    let mut h = H::txn(BrokerInfo::v1());
    assert!(matches!(
        h.core.begin(h.now),
        Err(UsageError::InvalidState { .. })
    ));
    h.init(id(PID, 0));
    h.core.begin(h.now).unwrap();
    h.core.enqueue(h.now, tp(0), 1).unwrap();
    h.add_partitions_ok();
    let (rid, _) = h.req();
    h.produce_ok(rid, 0);
    h.core.abort(h.now).unwrap();
    let (rid, r) = h.req();
    assert!(matches!(r, Request::EndTxn { commit: false, .. }), "{r:?}");
    h.answer(
        rid,
        4,
        Response::EndTxn {
            error: None,
            identity: None,
        },
    );
    assert_eq!(h.state_name(), "Initializing");
    assert_eq!(
        h.core.begin(h.now),
        Err(UsageError::Reinitializing { command: "begin" })
    );
    assert!(!h.core.ending_transaction());
    h.answer_init(id(PID, 1));
    assert!(h.events().contains(&Event::IdentityChanged {
        identity: id(PID, 1),
        cause: IdentityCause::Abort,
    }));
    h.core.begin(h.now).unwrap();
}

#[test]
fn acceptance_follows_the_transaction() {
    let mut h = H::txn(BrokerInfo::v2());
    assert_eq!(h.core.acceptance(), Acceptance::NoTransaction);
    h.init(id(PID, 0));
    assert_eq!(h.core.acceptance(), Acceptance::NoTransaction);
    h.core.begin(h.now).unwrap();
    assert_eq!(h.core.acceptance(), Acceptance::Accepting);
    assert!(!h.core.ending_transaction());
    h.core.enqueue(h.now, tp(0), 1).unwrap();
    h.core.commit(h.now).unwrap();
    assert_eq!(h.core.acceptance(), Acceptance::Completing);
    assert!(h.core.ending_transaction());
    // A refusal in the core's words while the commit runs.
    assert_eq!(
        h.core.refusal("abort"),
        UsageError::InvalidState {
            command: "abort",
            state: "Committing"
        }
    );
    let (rid, _) = h.req();
    h.produce_err(rid, 12, ErrorCode::InvalidTxnState);
    assert!(matches!(h.core.acceptance(), Acceptance::Failed(_)));
    assert!(!h.core.ending_transaction());

    let idempotent = H::idempotent();
    assert_eq!(idempotent.core.acceptance(), Acceptance::Accepting);
}

#[test]
fn close_aborts_only_a_transaction_left_open() {
    let mut h = H::txn(BrokerInfo::v2());
    h.init(id(PID, 0));
    assert!(!h.core.abort_left_open(h.now), "nothing open");
    h.core.begin(h.now).unwrap();
    assert!(h.core.abort_left_open(h.now));
    h.none();
    assert_eq!(
        h.state_name(),
        "Ready",
        "an empty transaction aborts locally"
    );
    h.events();

    h.core.begin(h.now).unwrap();
    h.core.enqueue(h.now, tp(0), 1).unwrap();
    h.core.commit(h.now).unwrap();
    assert!(!h.core.abort_left_open(h.now), "a commit is not undone");
    assert_eq!(h.state_name(), "Committing");
}

/// The core owns every backoff (the driver reports outcomes at once and
/// waits for `poll_timeout`): a Produce that never left is resent at once
/// the first time, then after `retry.backoff.ms`.
#[test]
fn not_sent_backoff_is_the_cores() {
    let mut h = H::idempotent();
    h.init(id(PID, 0));
    h.core.enqueue(h.now, tp(0), 1).unwrap();
    let (first, r1) = h.req();
    h.not_sent(first);
    let (second, r2) = h.req();
    assert_eq!(r1, r2, "the same stamp");
    h.not_sent(second);
    h.none();
    assert_eq!(h.core.poll_timeout(), Some(h.now.plus(100)));
    h.advance(100);
    let (_, r3) = h.req();
    assert_eq!(r1, r3);
}
