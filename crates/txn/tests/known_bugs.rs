//! One test per known bug of other clients (PROTOCOL-NOTES.md), each showing
//! the core designs it out.

#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use common::*;
use exactly_txn::*;

/// KAFKA-9279: a commit succeeded after a failed send. Here a failed batch
/// makes the transaction abortable and the commit is refused; a failure that
/// lands while the commit waits fails the commit and EndTxn is never sent.
#[test]
fn kafka_9279_commit_refused_after_failed_send() {
    for fail_before_commit in [true, false] {
        let mut h = H::txn(BrokerInfo::v2());
        h.init(id(PID, 0));
        h.core.begin(h.now).unwrap();
        h.core.enqueue(h.now, tp(0), 1).unwrap();
        let (rid, _) = h.req();
        if fail_before_commit {
            h.produce_err(rid, 12, ErrorCode::RecordListTooLarge);
            assert!(matches!(
                h.core.commit(h.now),
                Err(UsageError::MustAbort(_))
            ));
        } else {
            h.core.commit(h.now).unwrap();
            h.produce_err(rid, 12, ErrorCode::RecordListTooLarge);
        }
        let mut sent = Vec::new();
        while let Some((_, _, r)) = h.poll() {
            sent.push(r);
        }
        assert!(!sent
            .iter()
            .any(|r| matches!(r, Request::EndTxn { commit: true, .. })));
        assert!(!h
            .events()
            .iter()
            .any(|e| matches!(e, Event::Committed { .. })));
        assert_eq!(h.state_name(), "AbortableError");
    }
}

/// KAFKA-15259: `flush` hid send errors. Here every batch gets exactly one
/// delivery event, and an error of a batch the user never looked at still
/// stops the commit.
#[test]
fn kafka_15259_send_errors_are_never_hidden() {
    let mut h = H::new(
        Config {
            delivery_timeout_ms: 500,
            ..Config::transactional("tx")
        },
        BrokerInfo::v2(),
    );
    h.init(id(PID, 0));
    h.core.begin(h.now).unwrap();
    let good = h.core.enqueue(h.now, tp(0), 1).unwrap();
    let bad = h.core.enqueue(h.now, tp(1), 1).unwrap();
    let (r0, _) = h.req();
    let (r1, _) = h.req();
    h.produce_ok(r0, 0);
    h.lost(r1);
    h.advance(500);
    let ev = h.events();
    assert_eq!(
        ev.iter()
            .filter(|e| matches!(e, Event::Delivered { batch, .. } if *batch == good))
            .count(),
        1
    );
    assert!(ev.iter().any(|e| matches!(
        e,
        Event::DeliveryFailed { batch, error } if *batch == bad && error.maybe_written
    )));
    assert!(ev.iter().any(|e| matches!(e, Event::AbortableError { .. })));
    match h.core.commit(h.now) {
        Err(UsageError::MustAbort(e)) => assert_eq!(e.reason, ErrorReason::DeliveryTimeout),
        other => panic!("{other:?}"),
    }
}

/// KAFKA-12152: after an epoch bump, idle partitions kept their old
/// sequences. Here a partition's sequences belong to an identity; a partition
/// idle during the bump restarts at 0 under the new epoch.
#[test]
fn kafka_12152_idle_partitions_restart_sequences_after_bump() {
    let mut h = H::idempotent();
    h.init(id(PID, 0));
    // Partition 1 gets some sequences, then goes idle.
    h.core.enqueue(h.now, tp(1), 5).unwrap();
    let (r, _) = h.req();
    h.produce_ok(r, 0);
    // Partition 0 forces a bump.
    h.core.enqueue(h.now, tp(0), 1).unwrap();
    let (r, _) = h.req();
    h.produce_err(r, 12, ErrorCode::OutOfOrderSequenceNumber);
    let (r, req) = h.req();
    assert_eq!(H::stamp_of(&req).epoch, 1);
    h.produce_ok(r, 0);
    // The idle partition's next batch: new epoch, sequence 0 (not 5).
    h.core.enqueue(h.now, tp(1), 1).unwrap();
    let (_, req) = h.req();
    let s = H::stamp_of(&req);
    assert_eq!((s.epoch, s.base_sequence), (1, 0));
}

/// KAFKA-17754: under v1 a delayed EndTxn decided a later transaction. Here,
/// once an EndTxn's outcome is unknown, the commit is only re-sent, and after
/// it the producer re-initializes (bumping the epoch) before any new
/// transaction: a late EndTxn carries a fenced epoch.
#[test]
fn kafka_17754_unknown_end_txn_forces_new_epoch_before_next_transaction() {
    let mut h = H::txn(BrokerInfo::v1());
    h.init(id(PID, 0));
    h.core.begin(h.now).unwrap();
    h.core.enqueue(h.now, tp(0), 1).unwrap();
    h.add_partitions_ok();
    let (r, _) = h.req();
    h.produce_ok(r, 0);
    h.core.commit(h.now).unwrap();
    let (r, end) = h.req();
    h.lost(r);
    assert!(h.core.begin(h.now).is_err());
    h.advance(100);
    let (r, find) = h.req();
    assert!(matches!(find, Request::FindCoordinator { .. }));
    h.answer(
        r,
        4,
        Response::FindCoordinator {
            error: None,
            node: 7,
        },
    );
    let (r, again) = h.req();
    assert_eq!(again, end, "only the same EndTxn may follow");
    h.answer(
        r,
        4,
        Response::EndTxn {
            error: None,
            identity: None,
        },
    );
    assert!(h.events().contains(&Event::Committed {
        identity: id(PID, 0)
    }));
    // Not Ready: the epoch must move first.
    assert!(matches!(
        h.core.state(),
        TxnState::Initializing {
            reason: InitReason::FenceLateRequests
        }
    ));
    assert!(h.core.begin(h.now).is_err());
    let init = h.answer_init(id(PID, 1));
    assert!(matches!(init, Request::InitProducerId { current: Some(c), .. } if c == id(PID, 0)));
    h.core.begin(h.now).unwrap();
    h.core.enqueue(h.now, tp(0), 1).unwrap();
    let (_, r) = h.req();
    assert!(matches!(r, Request::AddPartitionsToTxn { identity, .. } if identity == id(PID, 1)));
}

/// KAFKA-17582 (consumer side: the position was not rewound after an abort).
/// The rewind itself belongs to the consumer; the core's part is to say which
/// groups and partitions had offsets in the aborted transaction.
#[test]
fn kafka_17582_abort_names_the_partitions_to_rewind() {
    let mut h = H::txn(BrokerInfo::v2());
    h.init(id(PID, 0));
    h.core.begin(h.now).unwrap();
    h.core.add_offsets(h.now, group(), offsets()).unwrap();
    let (r, _) = h.req();
    h.answer(
        r,
        4,
        Response::FindCoordinator {
            error: None,
            node: 2,
        },
    );
    let (r, _) = h.req();
    h.answer(
        r,
        5,
        Response::TxnOffsetCommit {
            results: vec![(TopicPartition::new("in", 0), None)],
        },
    );
    h.core.abort(h.now).unwrap();
    let (r, _) = h.req();
    h.end_ok(r, Some(id(PID, 1)));
    assert!(h.events().contains(&Event::Aborted {
        identity: id(PID, 0),
        rewind: vec![("g".into(), vec![TopicPartition::new("in", 0)])]
    }));
}

/// librdkafka #3575: OUT_OF_ORDER_SEQUENCE_NUMBER inside a transaction bumped
/// the epoch mid-transaction. Here it is abortable; nothing changes the
/// identity until the user aborts.
#[test]
fn librdkafka_3575_out_of_order_in_transaction_does_not_bump_mid_transaction() {
    let mut h = H::txn(BrokerInfo::v1());
    h.init(id(PID, 0));
    h.core.begin(h.now).unwrap();
    h.core.enqueue(h.now, tp(0), 1).unwrap();
    h.add_partitions_ok();
    let (r, _) = h.req();
    h.produce_err(r, 11, ErrorCode::OutOfOrderSequenceNumber);
    assert_eq!(h.state_name(), "AbortableError");
    h.none();
    assert_eq!(h.core.identity(), Some(id(PID, 0)));
    assert!(!h
        .events()
        .iter()
        .any(|e| matches!(e, Event::IdentityChanged { .. })));
    h.core.abort(h.now).unwrap();
    h.answer_v1_abort(id(PID, 1));
    assert_eq!(h.core.identity(), Some(id(PID, 1)));
}

/// librdkafka #4438: a "possibly persisted" error desynchronised sequences.
/// Here such an answer keeps the stamp, the retry is identical, and the next
/// batch continues the sequence.
#[test]
fn librdkafka_4438_possibly_persisted_error_keeps_sequences() {
    for code in [
        ErrorCode::NotEnoughReplicasAfterAppend,
        ErrorCode::RequestTimedOut,
    ] {
        let mut h = H::idempotent();
        h.init(id(PID, 0));
        h.prime(tp(0), 1);
        let a = h.core.enqueue(h.now, tp(0), 4).unwrap();
        h.core.enqueue(h.now, tp(0), 2).unwrap();
        let (r0, first) = h.req();
        let (r1, second) = h.req();
        h.produce_err(r0, 12, code);
        h.produce_err(r1, 12, ErrorCode::OutOfOrderSequenceNumber);
        h.advance(1_000);
        let (r0, retry0) = h.req();
        assert_eq!(retry0, first);
        h.produce_err(r0, 12, ErrorCode::DuplicateSequenceNumber);
        let (r1, retry1) = h.req();
        assert_eq!(retry1, second);
        h.produce_ok(r1, 9);
        assert!(h.events().contains(&Event::Delivered {
            batch: a,
            partition: tp(0),
            base_offset: None
        }));
        h.core.enqueue(h.now, tp(0), 1).unwrap();
        let (_, next) = h.req();
        let s = H::stamp_of(&next);
        assert_eq!((s.epoch, s.base_sequence), (0, 7), "{code}");
    }
}

/// librdkafka #4736: a retried batch was not byte-identical. Here a retry
/// carries the very same stamp (producer id, epoch, base sequence,
/// transactional flag) and batch handle, so the driver resends the same
/// bytes.
#[test]
fn librdkafka_4736_retry_is_identical() {
    let outcomes = [
        Outcome::MaybeDelivered,
        Outcome::NotSent,
        Outcome::Received {
            version: 12,
            response: Response::Produce {
                error: Some(ErrorCode::NotLeaderOrFollower),
                base_offset: -1,
                log_start_offset: -1,
            },
        },
    ];
    for outcome in outcomes {
        let mut h = H::txn(BrokerInfo::v2());
        h.init(id(PID, 7));
        h.core.begin(h.now).unwrap();
        h.core.enqueue(h.now, tp(0), 3).unwrap();
        let (r, first) = h.req();
        h.core.handle_outcome(h.now, r, outcome.clone());
        h.advance(1_000);
        let (r, again) = h.req();
        assert_eq!(again, first, "after {outcome:?}");
        h.core.handle_outcome(h.now, r, Outcome::MaybeDelivered);
        h.advance(1_000);
        let (r, again) = h.req();
        assert_eq!(again, first, "after {outcome:?} then a lost answer");
        h.produce_ok(r, 0);
        assert_eq!(h.state_name(), "InTransaction");
    }
}

/// librdkafka #3720: epoch exhaustion was not checked. Here the epoch never
/// wraps: the idempotent producer asks for a new producer id at i16::MAX, and
/// under v2 the id EndTxn returns on overflow is adopted.
#[test]
fn librdkafka_3720_epoch_exhaustion_rotates_producer_id() {
    let mut h = H::idempotent();
    h.init(id(PID, i16::MAX));
    h.core.enqueue(h.now, tp(0), 1).unwrap();
    let (r, _) = h.req();
    h.produce_err(r, 12, ErrorCode::OutOfOrderSequenceNumber);
    let (r, req) = h.req();
    assert_eq!(
        req,
        Request::InitProducerId {
            transactional_id: None,
            transaction_timeout_ms: i32::MAX,
            current: None
        }
    );
    h.answer(
        r,
        4,
        Response::InitProducerId {
            error: None,
            identity: id(PID + 1, 0),
        },
    );
    let (_, req) = h.req();
    let s = H::stamp_of(&req);
    assert_eq!((s.producer_id, s.epoch, s.base_sequence), (PID + 1, 0, 0));
    assert!(id(PID, i16::MAX).bumped().is_none());

    let mut h = H::txn(BrokerInfo::v2());
    h.init(id(PID, i16::MAX - 1));
    h.core.begin(h.now).unwrap();
    h.core.enqueue(h.now, tp(0), 1).unwrap();
    let (r, _) = h.req();
    h.produce_ok(r, 0);
    h.core.commit(h.now).unwrap();
    let (r, _) = h.req();
    h.end_ok(r, Some(id(PID + 5, 0)));
    assert_eq!(h.core.identity(), Some(id(PID + 5, 0)));
    h.core.begin(h.now).unwrap();
    h.core.enqueue(h.now, tp(0), 1).unwrap();
    let (_, req) = h.req();
    let s = H::stamp_of(&req);
    assert_eq!((s.producer_id, s.epoch, s.base_sequence), (PID + 5, 0, 0));
}

/// franz-go #1217: a batch that timed out after being sent was treated as
/// unwritten and deduplicated away / re-sent. Here it stays "maybe written":
/// it is retried with the same stamp while time allows, and if it expires it
/// is reported with `maybe_written`, never re-sent under a new epoch.
#[test]
fn franz_go_1217_timed_out_batch_is_never_treated_as_unwritten() {
    let mut h = H::new(
        Config {
            delivery_timeout_ms: 2_000,
            ..Config::default()
        },
        BrokerInfo::v2(),
    );
    h.init(id(PID, 0));
    let a = h.core.enqueue(h.now, tp(0), 1).unwrap();
    let (r, first) = h.req();
    h.lost(r);
    h.advance(100);
    let (r, again) = h.req();
    assert_eq!(again, first);
    h.lost(r);
    h.advance(2_000);
    let ev = h.events();
    assert_eq!(
        ev,
        vec![Event::DeliveryFailed {
            batch: a,
            error: DeliveryError {
                failure: DeliveryFailure::Expired,
                partition: tp(0),
                maybe_written: true
            }
        }]
    );
    // The batch is gone: nothing re-sends it under any stamp.
    h.none();
}
