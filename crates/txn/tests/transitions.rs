//! Table-driven tests of every command in every state, then the transitions
//! driven by responses, timeouts and outcomes.

#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use common::*;
use exactly_txn::*;

fn in_state(name: &str) -> H {
    let mut h = H::txn(BrokerInfo::v2());
    match name {
        "Uninitialized" => {}
        "Initializing" => h.core.init(h.now).unwrap(),
        "Ready" => h.init(id(PID, 0)),
        "InTransaction" => {
            h.init(id(PID, 0));
            h.core.begin(h.now).unwrap();
        }
        "Committing" => {
            h.init(id(PID, 0));
            h.core.begin(h.now).unwrap();
            h.core.enqueue(h.now, tp(0), 1).unwrap();
            h.core.commit(h.now).unwrap();
        }
        "Aborting" => {
            h.init(id(PID, 0));
            h.core.begin(h.now).unwrap();
            h.core.enqueue(h.now, tp(0), 1).unwrap();
            let _in_flight = h.req();
            h.core.abort(h.now).unwrap();
        }
        "AbortableError" => {
            h.init(id(PID, 0));
            h.core.begin(h.now).unwrap();
            h.core.enqueue(h.now, tp(0), 1).unwrap();
            let (rid, _) = h.req();
            h.produce_err(rid, 12, ErrorCode::TransactionAbortable);
        }
        "Fatal" => {
            h.core.init(h.now).unwrap();
            let (rid, _) = h.req();
            h.answer(
                rid,
                4,
                Response::FindCoordinator {
                    error: None,
                    node: 1,
                },
            );
            let (rid, _) = h.req();
            h.answer(
                rid,
                5,
                Response::InitProducerId {
                    error: Some(ErrorCode::TransactionalIdAuthorizationFailed),
                    identity: id(-1, -1),
                },
            );
        }
        other => panic!("no state {other}"),
    }
    assert_eq!(h.state_name(), name);
    h
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    /// Accepted; the state becomes this.
    Ok(&'static str),
    /// Refused, state unchanged.
    Invalid,
    MustAbort,
    Fatal,
}

fn run(h: &mut H, command: &str) -> Result<(), UsageError> {
    let now = h.now;
    match command {
        "init" => h.core.init(now),
        "begin" => h.core.begin(now),
        "enqueue" => h.core.enqueue(now, tp(1), 3).map(|_| ()),
        "add_offsets" => h.core.add_offsets(now, group(), offsets()).map(|_| ()),
        "commit" => h.core.commit(now),
        "abort" => h.core.abort(now),
        other => panic!("no command {other}"),
    }
}

#[test]
fn every_command_in_every_state() {
    use Expect::*;
    const COMMANDS: [&str; 6] = ["init", "begin", "enqueue", "add_offsets", "commit", "abort"];
    let table: [(&str, [Expect; 6]); 8] = [
        (
            "Uninitialized",
            [
                Ok("Initializing"),
                Invalid,
                Invalid,
                Invalid,
                Invalid,
                Invalid,
            ],
        ),
        (
            "Initializing",
            [Invalid, Invalid, Invalid, Invalid, Invalid, Invalid],
        ),
        (
            "Ready",
            [
                Invalid,
                Ok("InTransaction"),
                Invalid,
                Invalid,
                Invalid,
                Invalid,
            ],
        ),
        (
            "InTransaction",
            [
                Invalid,
                Invalid,
                Ok("InTransaction"),
                Ok("InTransaction"),
                Ok("Committing"),
                Ok("Aborting"),
            ],
        ),
        (
            "Committing",
            [Invalid, Invalid, Invalid, Invalid, Invalid, Ok("Aborting")],
        ),
        (
            "Aborting",
            [Invalid, Invalid, Invalid, Invalid, Invalid, Invalid],
        ),
        (
            "AbortableError",
            [
                MustAbort,
                MustAbort,
                MustAbort,
                MustAbort,
                MustAbort,
                Ok("Aborting"),
            ],
        ),
        ("Fatal", [Fatal, Fatal, Fatal, Fatal, Fatal, Fatal]),
    ];
    for (state, row) in table {
        for (command, expect) in COMMANDS.iter().zip(row) {
            let mut h = in_state(state);
            let r = run(&mut h, command);
            let what = format!("{command} in {state}: {r:?}");
            match expect {
                Ok(next) => {
                    assert!(r.is_ok(), "{what}");
                    assert_eq!(h.state_name(), next, "{what}");
                }
                Invalid => {
                    assert!(matches!(r, Err(UsageError::InvalidState { .. })), "{what}");
                    assert_eq!(h.state_name(), state, "{what}");
                }
                MustAbort => {
                    assert!(matches!(r, Err(UsageError::MustAbort(_))), "{what}");
                    assert_eq!(h.state_name(), state, "{what}");
                }
                Fatal => {
                    assert!(matches!(r, Err(UsageError::Fatal(_))), "{what}");
                    assert_eq!(h.state_name(), state, "{what}");
                }
            }
        }
    }
}

#[test]
fn idempotent_producer_refuses_transaction_commands() {
    let mut h = H::idempotent();
    for c in ["begin", "add_offsets", "commit", "abort"] {
        assert_eq!(run(&mut h, c), Err(UsageError::NotTransactional), "{c}");
    }
    assert_eq!(h.core.enqueue(h.now, tp(0), 0), Err(UsageError::EmptyBatch));
    // Batches wait for the identity.
    let b = h.core.enqueue(h.now, tp(0), 2).unwrap();
    h.core.init(h.now).unwrap();
    let (rid, r) = h.req();
    assert!(matches!(
        r,
        Request::InitProducerId {
            transactional_id: None,
            transaction_timeout_ms: i32::MAX,
            current: None
        }
    ));
    h.none();
    h.answer(
        rid,
        4,
        Response::InitProducerId {
            error: None,
            identity: id(9, 0),
        },
    );
    let (rid, r) = h.req();
    let s = H::stamp_of(&r);
    assert_eq!(
        (s.producer_id, s.epoch, s.base_sequence, s.transactional),
        (9, 0, 0, false)
    );
    assert!(matches!(
        r,
        Request::Produce {
            flow: None,
            transactional_id: None,
            ..
        }
    ));
    h.produce_ok(rid, 5);
    assert!(h.events().contains(&Event::Delivered {
        batch: b,
        partition: tp(0),
        base_offset: Some(5)
    }));
}

#[test]
fn initializing_to_ready_through_coordinator_lookup() {
    let mut h = H::txn(BrokerInfo::v2());
    h.core.init(h.now).unwrap();
    let (rid, _, r) = h.poll().unwrap();
    assert_eq!(
        r,
        Request::FindCoordinator {
            key_type: CoordinatorType::Transaction,
            key: "tx".into()
        }
    );
    // Retriable lookup error: backoff, then again.
    h.answer(
        rid,
        4,
        Response::FindCoordinator {
            error: Some(ErrorCode::CoordinatorNotAvailable),
            node: -1,
        },
    );
    h.none();
    assert_eq!(h.core.poll_timeout(), Some(Millis(100)));
    h.advance(100);
    let (rid, _) = h.req();
    h.answer(
        rid,
        4,
        Response::FindCoordinator {
            error: None,
            node: 3,
        },
    );
    let (rid, target, r) = h.poll().unwrap();
    assert_eq!(target, Target::TransactionCoordinator(3));
    assert_eq!(
        r,
        Request::InitProducerId {
            transactional_id: Some("tx".into()),
            transaction_timeout_ms: 60_000,
            current: None
        }
    );
    // CONCURRENT_TRANSACTIONS while a previous incarnation's transaction ends.
    h.answer(
        rid,
        5,
        Response::InitProducerId {
            error: Some(ErrorCode::ConcurrentTransactions),
            identity: id(-1, -1),
        },
    );
    assert_eq!(h.state_name(), "Initializing");
    h.advance(100);
    h.answer_init(id(PID, 4));
    assert_eq!(
        h.events(),
        vec![Event::Initialized {
            identity: id(PID, 4)
        }]
    );
    assert_eq!(h.core.identity(), Some(id(PID, 4)));
}

#[test]
fn not_coordinator_triggers_rediscovery() {
    let mut h = H::txn(BrokerInfo::v1());
    h.init(id(PID, 0));
    h.core.begin(h.now).unwrap();
    h.core.enqueue(h.now, tp(0), 1).unwrap();
    let (rid, r) = h.req();
    assert!(matches!(r, Request::AddPartitionsToTxn { .. }));
    h.answer(
        rid,
        3,
        Response::AddPartitionsToTxn {
            results: vec![(tp(0), Some(ErrorCode::NotCoordinator))],
        },
    );
    let (rid, r) = h.req();
    assert!(matches!(
        r,
        Request::FindCoordinator {
            key_type: CoordinatorType::Transaction,
            ..
        }
    ));
    h.answer(
        rid,
        4,
        Response::FindCoordinator {
            error: None,
            node: 9,
        },
    );
    let (_, target, r) = h.poll().unwrap();
    assert_eq!(target, Target::TransactionCoordinator(9));
    assert!(matches!(r, Request::AddPartitionsToTxn { .. }));
}

#[test]
fn v1_adds_each_partition_before_its_first_batch() {
    let mut h = H::txn(BrokerInfo::v1());
    h.init(id(PID, 0));
    h.core.begin(h.now).unwrap();
    h.core.enqueue(h.now, tp(0), 1).unwrap();
    h.core.enqueue(h.now, tp(1), 1).unwrap();
    // Only the AddPartitionsToTxn goes: batches wait for it.
    let (rid, r) = h.req();
    assert_eq!(
        r,
        Request::AddPartitionsToTxn {
            transactional_id: "tx".into(),
            identity: id(PID, 0),
            partitions: vec![tp(0), tp(1)]
        }
    );
    h.none();
    // CONCURRENT_TRANSACTIONS right after a commit: short backoff (20 ms).
    h.answer(
        rid,
        3,
        Response::AddPartitionsToTxn {
            results: vec![
                (tp(0), Some(ErrorCode::ConcurrentTransactions)),
                (tp(1), Some(ErrorCode::ConcurrentTransactions)),
            ],
        },
    );
    assert_eq!(h.core.poll_timeout(), Some(Millis(20)));
    h.advance(20);
    h.add_partitions_ok();
    let (q0, r0) = h.req();
    let (_, r1) = h.req();
    for r in [r0, r1] {
        assert!(
            matches!(
                r,
                Request::Produce {
                    flow: Some(Flow::V1),
                    ..
                }
            ),
            "{r:?}"
        );
    }
    // A partition already in the transaction needs no new add (and, its
    // first batch acknowledged, pipelines).
    h.produce_ok(q0, 0);
    h.core.enqueue(h.now, tp(0), 1).unwrap();
    let (_, r) = h.req();
    assert!(matches!(r, Request::Produce { .. }));
}

#[test]
fn v2_adds_partitions_implicitly_and_bumps_epoch_per_transaction() {
    let mut h = H::txn(BrokerInfo::v2());
    h.init(id(PID, 0));
    for epoch in 0..3 {
        h.core.begin(h.now).unwrap();
        h.core.enqueue(h.now, tp(0), 2).unwrap();
        let (rid, r) = h.req();
        let s = H::stamp_of(&r);
        assert_eq!(
            (s.epoch, s.base_sequence),
            (epoch, 0),
            "sequences restart with each epoch"
        );
        assert!(matches!(
            r,
            Request::Produce {
                flow: Some(Flow::V2),
                ..
            }
        ));
        h.produce_ok(rid, 0);
        h.core.commit(h.now).unwrap();
        let (rid, r) = h.req();
        assert_eq!(
            r,
            Request::EndTxn {
                transactional_id: "tx".into(),
                identity: id(PID, epoch),
                commit: true,
                flow: Flow::V2
            }
        );
        h.end_ok(rid, Some(id(PID, epoch + 1)));
        assert!(h.events().contains(&Event::Committed {
            identity: id(PID, epoch)
        }));
        assert_eq!(h.core.identity(), Some(id(PID, epoch + 1)));
    }
}

#[test]
fn flow_is_chosen_at_begin_never_mid_transaction() {
    let mut h = H::txn(BrokerInfo::v1());
    h.init(id(PID, 0));
    h.core.begin(h.now).unwrap();
    // The feature flips to v2 mid-transaction: this transaction stays v1.
    h.core.set_broker_info(BrokerInfo::v2());
    h.core.enqueue(h.now, tp(0), 1).unwrap();
    let parts = h.add_partitions_ok();
    assert_eq!(parts, vec![tp(0)]);
    let (rid, r) = h.req();
    assert!(matches!(
        r,
        Request::Produce {
            flow: Some(Flow::V1),
            ..
        }
    ));
    h.produce_ok(rid, 0);
    h.core.commit(h.now).unwrap();
    let (rid, r) = h.req();
    assert!(matches!(r, Request::EndTxn { flow: Flow::V1, .. }));
    h.end_ok(rid, None);
    assert_eq!(h.state_name(), "Ready");
    // The next transaction uses v2.
    h.core.begin(h.now).unwrap();
    assert_eq!(h.core.state().transaction().unwrap().flow, Flow::V2);
    // A broker capped below Produce v12 keeps v1 even with the feature on.
    let capped = BrokerInfo {
        produce: 11,
        ..BrokerInfo::v2()
    };
    assert_eq!(capped.flow(), Flow::V1);
}

#[test]
fn v1_offsets_go_add_offsets_then_txn_offset_commit_with_group_metadata() {
    let mut h = H::txn(BrokerInfo::v1());
    h.init(id(PID, 0));
    h.core.begin(h.now).unwrap();
    h.core.add_offsets(h.now, group(), offsets()).unwrap();
    let (rid, r) = h.req();
    assert_eq!(
        r,
        Request::AddOffsetsToTxn {
            transactional_id: "tx".into(),
            identity: id(PID, 0),
            group_id: "g".into()
        }
    );
    h.answer(rid, 3, Response::AddOffsetsToTxn { error: None });
    let (rid, r) = h.req();
    assert_eq!(
        r,
        Request::FindCoordinator {
            key_type: CoordinatorType::Group,
            key: "g".into()
        }
    );
    h.answer(
        rid,
        4,
        Response::FindCoordinator {
            error: None,
            node: 5,
        },
    );
    let (rid, target, r) = h.poll().unwrap();
    assert_eq!(
        target,
        Target::GroupCoordinator {
            group_id: "g".into(),
            node: 5
        }
    );
    assert_eq!(
        r,
        Request::TxnOffsetCommit {
            transactional_id: "tx".into(),
            identity: id(PID, 0),
            group: group(),
            offsets: offsets(),
            flow: Flow::V1
        }
    );
    // A rebalance: abortable, not fatal.
    h.answer(
        rid,
        3,
        Response::TxnOffsetCommit {
            results: vec![(
                TopicPartition::new("in", 0),
                Some(ErrorCode::IllegalGeneration),
            )],
        },
    );
    assert_eq!(h.state_name(), "AbortableError");
    assert!(matches!(
        h.core.commit(h.now),
        Err(UsageError::MustAbort(_))
    ));
}

#[test]
fn v2_offsets_skip_add_offsets() {
    let mut h = H::txn(BrokerInfo::v2());
    h.init(id(PID, 0));
    h.core.begin(h.now).unwrap();
    h.core.add_offsets(h.now, group(), offsets()).unwrap();
    let (rid, r) = h.req();
    assert!(matches!(
        r,
        Request::FindCoordinator {
            key_type: CoordinatorType::Group,
            ..
        }
    ));
    h.answer(
        rid,
        4,
        Response::FindCoordinator {
            error: None,
            node: 5,
        },
    );
    let (rid, r) = h.req();
    assert!(matches!(r, Request::TxnOffsetCommit { flow: Flow::V2, .. }));
    h.core.commit(h.now).unwrap();
    // EndTxn waits for the offset commit.
    h.none();
    h.answer(
        rid,
        5,
        Response::TxnOffsetCommit {
            results: vec![(TopicPartition::new("in", 0), None)],
        },
    );
    let (_, r) = h.req();
    assert!(matches!(r, Request::EndTxn { commit: true, .. }));
}

#[test]
fn empty_transaction_ends_locally() {
    let mut h = H::txn(BrokerInfo::v2());
    h.init(id(PID, 0));
    h.core.begin(h.now).unwrap();
    h.core.commit(h.now).unwrap();
    h.none();
    assert_eq!(
        h.events(),
        vec![Event::Committed {
            identity: id(PID, 0)
        }]
    );
    h.core.begin(h.now).unwrap();
    h.core.abort(h.now).unwrap();
    h.none();
    assert_eq!(
        h.events(),
        vec![Event::Aborted {
            identity: id(PID, 0),
            rewind: vec![]
        }]
    );
    assert_eq!(h.state_name(), "Ready");
}

#[test]
fn commit_waits_for_batches_then_end_txn() {
    let mut h = H::txn(BrokerInfo::v2());
    h.init(id(PID, 0));
    h.core.begin(h.now).unwrap();
    h.core.enqueue(h.now, tp(0), 1).unwrap();
    h.core.commit(h.now).unwrap();
    let (rid, r) = h.req();
    assert!(matches!(r, Request::Produce { .. }));
    h.none();
    h.produce_ok(rid, 0);
    let (_, r) = h.req();
    assert!(matches!(r, Request::EndTxn { commit: true, .. }));
}

#[test]
fn end_txn_outcome_unknown_is_a_state_with_only_a_resend() {
    let mut h = H::txn(BrokerInfo::v2());
    h.init(id(PID, 0));
    h.core.begin(h.now).unwrap();
    h.core.enqueue(h.now, tp(0), 1).unwrap();
    let (rid, _) = h.req();
    h.produce_ok(rid, 0);
    h.core.commit(h.now).unwrap();
    let (rid, first) = h.req();
    h.lost(rid);
    assert!(matches!(
        h.core.state(),
        TxnState::Committing {
            end: EndTxnStatus::OutcomeUnknown,
            ..
        }
    ));
    // Abort and begin are refused; only the same EndTxn follows.
    assert!(h.core.abort(h.now).is_err());
    assert!(h.core.begin(h.now).is_err());
    h.advance(100);
    let (rid, r) = h.req();
    assert!(
        matches!(r, Request::FindCoordinator { .. }),
        "the coordinator may have moved"
    );
    h.answer(
        rid,
        4,
        Response::FindCoordinator {
            error: None,
            node: 7,
        },
    );
    let (rid, again) = h.req();
    assert_eq!(again, first);
    // Once unknown, a definitive error cannot be reported as "aborted".
    h.answer(
        rid,
        5,
        Response::EndTxn {
            error: Some(ErrorCode::TransactionAbortable),
            identity: None,
        },
    );
    assert_eq!(h.state_name(), "Fatal");
}

#[test]
fn abortable_error_during_commit_fails_the_commit() {
    let mut h = H::txn(BrokerInfo::v2());
    h.init(id(PID, 0));
    h.core.begin(h.now).unwrap();
    h.core.enqueue(h.now, tp(0), 1).unwrap();
    let (rid, _) = h.req();
    h.core.commit(h.now).unwrap();
    h.produce_err(rid, 12, ErrorCode::MessageTooLarge);
    assert_eq!(h.state_name(), "AbortableError");
    h.none();
    let ev = h.events();
    assert!(ev.iter().any(|e| matches!(e, Event::AbortableError { .. })));
    assert!(!ev.iter().any(|e| matches!(e, Event::Committed { .. })));
    // v2 abort: EndTxn(abort) v5 bumps the epoch.
    h.core.abort(h.now).unwrap();
    let (rid, r) = h.req();
    assert!(matches!(r, Request::EndTxn { commit: false, .. }));
    h.end_ok(rid, Some(id(PID, 1)));
    assert!(h.events().contains(&Event::Aborted {
        identity: id(PID, 0),
        rewind: vec![]
    }));
    assert_eq!(h.state_name(), "Ready");
}

/// Flow v1 abort: EndTxn(abort) first, then InitProducerId with the current
/// identity. The real 4.3.1 coordinator answers an InitProducerId on an open
/// transaction by fencing the epoch (CONCURRENT_TRANSACTIONS) and the retry
/// with PRODUCER_FENCED, so aborting by InitProducerId alone made every v1
/// abort fatal (found by protocol-tests/tests/producer_txn.rs).
#[test]
fn v1_abort_ends_the_transaction_then_bumps_the_epoch() {
    let mut h = H::txn(BrokerInfo::v1());
    h.init(id(PID, 0));
    h.core.begin(h.now).unwrap();
    h.core.enqueue(h.now, tp(0), 1).unwrap();
    h.add_partitions_ok();
    let (rid, _) = h.req();
    h.produce_ok(rid, 0);
    h.core.add_offsets(h.now, group(), offsets()).unwrap();
    h.core.abort(h.now).unwrap();
    let r = h.answer_v1_abort(id(PID, 2));
    assert_eq!(
        r,
        Request::InitProducerId {
            transactional_id: Some("tx".into()),
            transaction_timeout_ms: 60_000,
            current: Some(id(PID, 0))
        }
    );
    let ev = h.events();
    assert!(ev.contains(&Event::Aborted {
        identity: id(PID, 0),
        rewind: vec![("g".into(), vec![TopicPartition::new("in", 0)])]
    }));
    assert_eq!(h.core.identity(), Some(id(PID, 2)));
    // Without KIP-360 support the re-init carries no identity (it still
    // bumps the epoch, fencing every late request).
    let mut h = H::txn(BrokerInfo {
        init_producer_id: 2,
        ..BrokerInfo::v1()
    });
    h.init(id(PID, 0));
    h.core.begin(h.now).unwrap();
    h.core.enqueue(h.now, tp(0), 1).unwrap();
    h.add_partitions_ok();
    let (rid, _) = h.req();
    h.core.abort(h.now).unwrap();
    h.none();
    h.produce_ok(rid, 0);
    let r = h.answer_v1_abort(id(PID, 1));
    assert!(matches!(r, Request::InitProducerId { current: None, .. }));
}

/// Found by T4 (broker kill -9 during an exactly-once copy, transaction.version
/// 1): a transaction is aborted right after its records were sent, while its
/// AddPartitionsToTxn is lost with the dying broker. The coordinator never
/// saw the transaction (it is Empty, or CompleteCommit after the previous
/// commit) and a 4.3.1 coordinator answers the EndTxn(abort) with
/// INVALID_TXN_STATE. That means "nothing to abort": the abort completes with
/// the usual epoch bump (which fences the lost request should it still
/// arrive), and the producer lives on. It used to be fatal.
#[test]
fn v1_abort_of_a_transaction_the_coordinator_never_saw_completes() {
    for lost in [Outcome::NotSent, Outcome::MaybeDelivered] {
        let mut h = H::txn(BrokerInfo::v1());
        h.init(id(PID, 0));
        // A committed transaction first: the coordinator is CompleteCommit.
        h.core.begin(h.now).unwrap();
        h.core.enqueue(h.now, tp(0), 1).unwrap();
        h.add_partitions_ok();
        let (rid, _) = h.req();
        h.produce_ok(rid, 0);
        h.core.commit(h.now).unwrap();
        let (rid, r) = h.req();
        assert!(matches!(r, Request::EndTxn { commit: true, .. }), "{r:?}");
        h.end_ok(rid, None);
        assert!(h.events().contains(&Event::Committed {
            identity: id(PID, 0)
        }));
        // The next one: its AddPartitionsToTxn dies with the broker.
        h.core.begin(h.now).unwrap();
        h.core.enqueue(h.now, tp(1), 1).unwrap();
        let (rid, r) = h.req();
        assert!(matches!(r, Request::AddPartitionsToTxn { .. }), "{r:?}");
        h.core.abort(h.now).unwrap();
        h.core.handle_outcome(h.now, rid, lost.clone());
        h.advance(1_000);
        // The coordinator is looked up again after the lost request.
        let (rid, r) = h.req();
        assert!(matches!(r, Request::FindCoordinator { .. }), "{r:?}");
        h.answer(
            rid,
            4,
            Response::FindCoordinator {
                error: None,
                node: 7,
            },
        );
        let (rid, r) = h.req();
        assert!(matches!(r, Request::EndTxn { commit: false, .. }), "{r:?}");
        h.answer(
            rid,
            4,
            Response::EndTxn {
                error: Some(ErrorCode::InvalidTxnState),
                identity: None,
            },
        );
        assert_eq!(h.state_name(), "Initializing", "{lost:?}");
        let r = h.answer_init(id(PID, 1));
        assert!(
            matches!(r, Request::InitProducerId { current: Some(c), .. } if c == id(PID, 0)),
            "{r:?}"
        );
        let ev = h.events();
        assert!(
            ev.iter().any(|e| matches!(e, Event::Aborted { .. })),
            "{lost:?}: {ev:?}"
        );
        assert!(
            !ev.iter().any(|e| matches!(e, Event::Fatal { .. })),
            "{ev:?}"
        );
        assert_eq!(*h.core.state(), TxnState::Ready);
        assert_eq!(h.core.identity(), Some(id(PID, 1)));
    }
}

/// Once the coordinator acknowledged the transaction (AddPartitionsToTxn
/// succeeded), an INVALID_TXN_STATE answering its abort is not explained by
/// a lost request: it stays fatal.
#[test]
fn v1_abort_of_an_acknowledged_transaction_answered_invalid_state_is_fatal() {
    let mut h = H::txn(BrokerInfo::v1());
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
            error: Some(ErrorCode::InvalidTxnState),
            identity: None,
        },
    );
    assert_eq!(h.state_name(), "Fatal");
}

/// KIP-588 on a real 4.3.1 broker (transaction.version 2): the coordinator
/// aborted the transaction on timeout and bumped the epoch; the late
/// EndTxn(commit) is answered INVALID_TXN_STATE. The commit fails (abortable)
/// and the abort recovers the same producer by InitProducerId with the
/// current identity, which the coordinator answers with the bumped epoch.
#[test]
fn commit_after_coordinator_timeout_fails_and_the_abort_recovers() {
    let mut h = H::txn(BrokerInfo::v2());
    h.init(id(PID, 0));
    h.core.begin(h.now).unwrap();
    h.core.enqueue(h.now, tp(0), 1).unwrap();
    let (rid, _) = h.req();
    h.produce_ok(rid, 0);
    h.core.commit(h.now).unwrap();
    let (rid, r) = h.req();
    assert!(matches!(r, Request::EndTxn { commit: true, .. }));
    h.answer(
        rid,
        5,
        Response::EndTxn {
            error: Some(ErrorCode::InvalidTxnState),
            identity: None,
        },
    );
    assert_eq!(h.state_name(), "AbortableError");
    let ev = h.events();
    assert!(!ev.iter().any(|e| matches!(e, Event::Committed { .. })));
    assert!(ev.iter().any(|e| matches!(e, Event::AbortableError { .. })));
    h.core.abort(h.now).unwrap();
    let r = h.answer_init(id(PID, 1));
    assert!(matches!(
        r,
        Request::InitProducerId {
            current: Some(c),
            ..
        } if c == id(PID, 0)
    ));
    assert!(h.events().contains(&Event::Aborted {
        identity: id(PID, 0),
        rewind: vec![]
    }));
    assert_eq!(h.state_name(), "Ready");
    assert_eq!(h.core.identity(), Some(id(PID, 1)));
}

/// A transactional batch that expired after it was sent leaves a sequence
/// gap on its partition; the abort moves to a new epoch, where sequences
/// start again at 0, so the partition must take batches of the next
/// transaction (found on the real broker by producer_faults.rs: the
/// partition stayed blocked and the next transaction's batch expired too).
#[test]
fn next_transaction_sends_again_on_a_partition_whose_batch_expired() {
    for broker in [BrokerInfo::v2(), BrokerInfo::v1()] {
        let mut h = H::new(
            Config {
                delivery_timeout_ms: 1_000,
                ..Config::transactional("tx")
            },
            broker,
        );
        h.init(id(PID, 0));
        h.core.begin(h.now).unwrap();
        h.core.enqueue(h.now, tp(0), 1).unwrap();
        if broker.flow() == Flow::V1 {
            h.add_partitions_ok();
        }
        let (rid, _) = h.req();
        h.produce_ok(rid, 0);
        h.core.enqueue(h.now, tp(0), 1).unwrap();
        let (rid, _) = h.req();
        h.lost(rid);
        h.advance(1_000);
        assert_eq!(h.state_name(), "AbortableError");
        h.events();
        h.core.abort(h.now).unwrap();
        match broker.flow() {
            Flow::V2 => {
                let (rid, r) = h.req();
                assert!(matches!(r, Request::EndTxn { commit: false, .. }), "{r:?}");
                h.end_ok(rid, Some(id(PID, 1)));
            }
            Flow::V1 => {
                h.answer_v1_abort(id(PID, 1));
            }
        }
        assert_eq!(h.state_name(), "Ready");
        h.events();
        h.core.begin(h.now).unwrap();
        h.core.enqueue(h.now, tp(0), 1).unwrap();
        if broker.flow() == Flow::V1 {
            h.add_partitions_ok();
        }
        let (_, r) = h.req();
        let stamp = H::stamp_of(&r);
        assert_eq!(
            (stamp.producer_id, stamp.epoch, stamp.base_sequence),
            (PID, 1, 0),
            "{:?}",
            broker.flow()
        );
    }
}

#[test]
fn producer_fenced_is_fatal_and_sticky() {
    let mut h = H::txn(BrokerInfo::v2());
    h.init(id(PID, 0));
    h.core.begin(h.now).unwrap();
    let b = h.core.enqueue(h.now, tp(0), 1).unwrap();
    let b2 = h.core.enqueue(h.now, tp(1), 1).unwrap();
    let (rid, _) = h.req();
    h.produce_err(rid, 12, ErrorCode::ProducerFenced);
    assert_eq!(h.state_name(), "Fatal");
    let ev = h.events();
    assert!(ev.iter().any(|e| matches!(e, Event::Fatal { .. })));
    for batch in [b, b2] {
        assert!(ev
            .iter()
            .any(|e| matches!(e, Event::DeliveryFailed { batch: x, .. } if *x == batch)));
    }
    h.none();
    assert_eq!(h.core.poll_timeout(), None);
    for c in ["init", "begin", "enqueue", "commit", "abort"] {
        assert!(matches!(run(&mut h, c), Err(UsageError::Fatal(_))));
    }
    h.advance(1_000_000);
    assert_eq!(h.state_name(), "Fatal");
}

#[test]
fn zombie_response_of_an_old_epoch_is_ignored() {
    let mut h = H::txn(BrokerInfo::v1());
    h.init(id(PID, 0));
    h.core.begin(h.now).unwrap();
    h.core.add_offsets(h.now, group(), offsets()).unwrap();
    let (add_offsets, _) = h.req();
    h.core.abort(h.now).unwrap();
    // The abort waits for the coordinator request in flight.
    h.none();
    h.answer(
        add_offsets,
        3,
        Response::AddOffsetsToTxn {
            error: Some(ErrorCode::UnknownServerError),
        },
    );
    h.answer_v1_abort(id(PID, 1));
    h.events();
    // A duplicated answer to the old request changes nothing.
    h.answer(
        add_offsets,
        3,
        Response::AddOffsetsToTxn {
            error: Some(ErrorCode::ProducerFenced),
        },
    );
    assert_eq!(h.state_name(), "Ready");
    assert!(h.events().is_empty());
}

#[test]
fn kip_588_invalid_epoch_in_transaction_recovers_by_reinit() {
    let mut h = H::txn(BrokerInfo::v2());
    h.init(id(PID, 3));
    h.core.begin(h.now).unwrap();
    h.core.enqueue(h.now, tp(0), 1).unwrap();
    let (rid, _) = h.req();
    // The coordinator timed the transaction out and bumped the epoch.
    h.produce_err(rid, 12, ErrorCode::InvalidProducerEpoch);
    assert_eq!(h.state_name(), "AbortableError");
    h.core.abort(h.now).unwrap();
    let r = h.answer_init(id(PID, 4));
    assert!(matches!(r, Request::InitProducerId { current: Some(c), .. } if c == id(PID, 3)));
    assert_eq!(h.state_name(), "Ready");
    assert!(h
        .events()
        .iter()
        .any(|e| matches!(e, Event::Aborted { .. })));
}

#[test]
fn concurrent_transactions_on_end_txn_is_retried_with_backoff() {
    let mut h = H::txn(BrokerInfo::v2());
    h.init(id(PID, 0));
    h.core.begin(h.now).unwrap();
    h.core.enqueue(h.now, tp(0), 1).unwrap();
    let (rid, _) = h.req();
    h.produce_ok(rid, 0);
    h.core.commit(h.now).unwrap();
    let (rid, _) = h.req();
    h.answer(
        rid,
        5,
        Response::EndTxn {
            error: Some(ErrorCode::ConcurrentTransactions),
            identity: None,
        },
    );
    h.none();
    h.advance(99);
    h.none();
    h.advance(1);
    let (rid, r) = h.req();
    assert!(matches!(r, Request::EndTxn { .. }));
    h.end_ok(rid, Some(id(PID, 1)));
    assert!(h.events().contains(&Event::Committed {
        identity: id(PID, 0)
    }));
}

#[test]
fn duplicate_sequence_number_is_success() {
    let mut h = H::idempotent();
    h.init(id(PID, 0));
    let b = h.core.enqueue(h.now, tp(0), 3).unwrap();
    let (rid, _) = h.req();
    h.produce_err(rid, 12, ErrorCode::DuplicateSequenceNumber);
    assert_eq!(
        h.events(),
        vec![Event::Delivered {
            batch: b,
            partition: tp(0),
            base_offset: None
        }]
    );
    // The next batch continues the sequence.
    h.core.enqueue(h.now, tp(0), 1).unwrap();
    let (_, r) = h.req();
    assert_eq!(H::stamp_of(&r).base_sequence, 3);
}

#[test]
fn at_most_five_batches_in_flight_per_partition_in_order() {
    let mut h = H::idempotent();
    h.init(id(PID, 0));
    h.prime(tp(0), 2);
    for _ in 0..7 {
        h.core.enqueue(h.now, tp(0), 2).unwrap();
    }
    let sent: Vec<(RequestId, Request)> =
        std::iter::from_fn(|| h.poll().map(|(i, _, r)| (i, r))).collect();
    assert_eq!(sent.len(), 5);
    let seqs: Vec<i32> = sent
        .iter()
        .map(|(_, r)| H::stamp_of(r).base_sequence)
        .collect();
    assert_eq!(seqs, vec![2, 4, 6, 8, 10]);
    // The first fails retriably, the others come back out of order: the
    // retries go one at a time, lowest sequence first, with the same stamps.
    h.produce_err(sent[0].0, 12, ErrorCode::NotLeaderOrFollower);
    for (rid, _) in &sent[1..] {
        h.produce_err(*rid, 12, ErrorCode::OutOfOrderSequenceNumber);
    }
    assert!(h
        .events()
        .contains(&Event::RefreshMetadata { partition: tp(0) }));
    assert_eq!(
        h.core.identity(),
        Some(id(PID, 0)),
        "non-head out-of-order answers bump nothing"
    );
    h.advance(1_000);
    for (i, (_, original)) in sent.iter().enumerate() {
        let (rid, r) = h.req();
        assert_eq!(&r, original, "retry {i} is identical");
        if i < 4 {
            h.none();
        }
        h.produce_ok(rid, i as i64);
    }
    // The two queued batches went after the last retry, pipelined.
    let (_, a) = sent_after_retries(&mut h);
    let (_, b) = h.req();
    assert_eq!(
        (H::stamp_of(&a).base_sequence, H::stamp_of(&b).base_sequence),
        (12, 14)
    );
}

fn sent_after_retries(h: &mut H) -> (RequestId, Request) {
    h.req()
}

#[test]
fn sequence_wraps_at_i32_max() {
    assert_eq!(advance_sequence(i32::MAX - 1, 2), 0);
    assert_eq!(advance_sequence(i32::MAX, 10), 9);
}

#[test]
fn delivery_timeout_classifies_unsent_and_maybe_written() {
    let mut h = H::new(
        Config {
            delivery_timeout_ms: 1_000,
            ..Config::default()
        },
        BrokerInfo::v2(),
    );
    h.init(id(PID, 0));
    let sent = h.core.enqueue(h.now, tp(0), 1).unwrap();
    let (rid, _) = h.req();
    // A batch that never got a sequence (partition 1 never polled: the
    // driver lost it? no: a queued batch behind a full window).
    h.lost(rid);
    h.advance(999);
    assert!(h.events().is_empty());
    h.advance(1);
    let ev = h.events();
    assert_eq!(
        ev,
        vec![Event::DeliveryFailed {
            batch: sent,
            error: DeliveryError {
                failure: DeliveryFailure::Expired,
                partition: tp(0),
                maybe_written: true
            }
        }]
    );
    // The partition is unresolved: it resets under a new epoch before the
    // next batch, which starts at sequence 0.
    h.core.enqueue(h.now, tp(0), 1).unwrap();
    let (_, r) = h.req();
    let s = H::stamp_of(&r);
    assert_eq!((s.epoch, s.base_sequence), (1, 0));
    // A batch that never left fails as certainly unwritten.
    let mut h = H::new(
        Config {
            delivery_timeout_ms: 1_000,
            max_in_flight_per_partition: 1,
            ..Config::default()
        },
        BrokerInfo::v2(),
    );
    h.init(id(PID, 0));
    h.core.enqueue(h.now, tp(0), 1).unwrap();
    let queued = h.core.enqueue(h.now, tp(0), 1).unwrap();
    let _in_flight = h.req();
    h.advance(1_000);
    assert_eq!(
        h.events(),
        vec![Event::DeliveryFailed {
            batch: queued,
            error: DeliveryError {
                failure: DeliveryFailure::Expired,
                partition: tp(0),
                maybe_written: false
            }
        }]
    );
}

#[test]
fn expired_batch_that_landed_resolves_without_a_bump() {
    let mut h = H::new(
        Config {
            delivery_timeout_ms: 1_000,
            ..Config::default()
        },
        BrokerInfo::v2(),
    );
    h.init(id(PID, 0));
    h.prime(tp(0), 1);
    h.core.enqueue(h.now, tp(0), 1).unwrap();
    h.core.enqueue(h.now.plus(10), tp(0), 1).unwrap();
    let (r0, _) = h.req();
    let (r1, _) = h.req();
    h.lost(r0);
    h.advance(1_000);
    // Batch 0 expired with an unknown outcome; batch 1 is acknowledged, so
    // batch 0 was written: the sequence state is consistent again.
    h.produce_ok(r1, 1);
    h.events();
    h.core.enqueue(h.now, tp(0), 1).unwrap();
    let (_, r) = h.req();
    let s = H::stamp_of(&r);
    assert_eq!((s.epoch, s.base_sequence), (0, 3));
}

#[test]
fn idempotent_out_of_order_head_bumps_epoch_and_restamps_unwritten_batches() {
    let mut h = H::idempotent();
    h.init(id(PID, 0));
    h.prime(tp(0), 1);
    let a = h.core.enqueue(h.now, tp(0), 2).unwrap();
    let b = h.core.enqueue(h.now, tp(0), 2).unwrap();
    let (ra, _) = h.req();
    let (rb, _) = h.req();
    // Broker lost our state (KIP-360): the head answers out of order.
    h.produce_err(ra, 12, ErrorCode::OutOfOrderSequenceNumber);
    h.none();
    h.produce_err(rb, 12, ErrorCode::OutOfOrderSequenceNumber);
    let (ra2, r) = h.req();
    let s = H::stamp_of(&r);
    assert_eq!(
        (s.epoch, s.base_sequence),
        (1, 0),
        "re-stamped from 0 under the bumped epoch"
    );
    assert!(h.events().contains(&Event::IdentityChanged {
        identity: id(PID, 1),
        cause: IdentityCause::SequenceReset,
    }));
    // A new epoch: one batch at a time until the first is acknowledged.
    h.none();
    h.produce_ok(ra2, 0);
    let (rb2, r) = h.req();
    assert_eq!(H::stamp_of(&r).base_sequence, 2);
    h.produce_ok(rb2, 1);
    let ev = h.events();
    assert!(ev.contains(&Event::Delivered {
        batch: a,
        partition: tp(0),
        base_offset: Some(0)
    }));
    assert!(ev.contains(&Event::Delivered {
        batch: b,
        partition: tp(0),
        base_offset: Some(1)
    }));
}

#[test]
fn idempotent_out_of_order_never_restamps_a_maybe_written_batch() {
    let mut h = H::idempotent();
    h.init(id(PID, 0));
    let a = h.core.enqueue(h.now, tp(0), 1).unwrap();
    let (ra, _) = h.req();
    h.produce_err(ra, 12, ErrorCode::RequestTimedOut);
    h.advance(100);
    let (ra, _) = h.req();
    h.produce_err(ra, 12, ErrorCode::UnknownProducerId);
    h.none();
    let ev = h.events();
    assert!(ev.contains(&Event::DeliveryFailed {
        batch: a,
        error: DeliveryError {
            failure: DeliveryFailure::SequenceReset,
            partition: tp(0),
            maybe_written: true
        }
    }));
}

#[test]
fn rejected_batch_of_idempotent_producer_fails_and_bumps() {
    let mut h = H::idempotent();
    h.init(id(PID, 0));
    let a = h.core.enqueue(h.now, tp(0), 1).unwrap();
    let (ra, _) = h.req();
    h.produce_err(ra, 12, ErrorCode::MessageTooLarge);
    assert!(h.events().contains(&Event::DeliveryFailed {
        batch: a,
        error: DeliveryError {
            failure: DeliveryFailure::Rejected(ErrorCode::MessageTooLarge),
            partition: tp(0),
            maybe_written: false
        }
    }));
    assert_eq!(h.state_name(), "Ready", "an idempotent producer survives");
    h.core.enqueue(h.now, tp(0), 1).unwrap();
    let (_, r) = h.req();
    assert_eq!(H::stamp_of(&r).epoch, 1);
}

#[test]
fn not_sent_outcome_retries_without_marking_maybe_written() {
    let mut h = H::new(
        Config {
            delivery_timeout_ms: 500,
            ..Config::default()
        },
        BrokerInfo::v2(),
    );
    h.init(id(PID, 0));
    let a = h.core.enqueue(h.now, tp(0), 1).unwrap();
    let (ra, first) = h.req();
    h.not_sent(ra);
    let (_, again) = h.req();
    assert_eq!(first, again);
    let mut h2 = H::new(
        Config {
            delivery_timeout_ms: 500,
            ..Config::default()
        },
        BrokerInfo::v2(),
    );
    h2.init(id(PID, 0));
    let b = h2.core.enqueue(h2.now, tp(0), 1).unwrap();
    let (rb, _) = h2.req();
    h2.not_sent(rb);
    h2.advance(500);
    assert!(h2.events().contains(&Event::DeliveryFailed {
        batch: b,
        error: DeliveryError {
            failure: DeliveryFailure::Expired,
            partition: tp(0),
            maybe_written: false
        }
    }));
    let _ = a;
}

#[test]
fn wrong_response_kind_is_a_protocol_violation() {
    let mut h = H::idempotent();
    h.init(id(PID, 0));
    h.core.enqueue(h.now, tp(0), 1).unwrap();
    let (rid, _) = h.req();
    h.answer(rid, 3, Response::AddOffsetsToTxn { error: None });
    match h.core.state() {
        TxnState::Fatal { error } => assert_eq!(error.reason, ErrorReason::ProtocolViolation),
        s => panic!("{s:?}"),
    }
}

#[test]
fn invalid_identity_from_broker_is_fatal() {
    let mut h = H::idempotent();
    h.core.init(h.now).unwrap();
    let (rid, _) = h.req();
    h.answer(
        rid,
        4,
        Response::InitProducerId {
            error: None,
            identity: id(5, -3),
        },
    );
    assert_eq!(h.state_name(), "Fatal");
}

#[test]
fn v2_end_txn_without_identity_reinitializes() {
    let mut h = H::txn(BrokerInfo::v2());
    h.init(id(PID, 0));
    h.core.begin(h.now).unwrap();
    h.core.enqueue(h.now, tp(0), 1).unwrap();
    let (r, _) = h.req();
    h.produce_ok(r, 0);
    h.core.commit(h.now).unwrap();
    let (r, _) = h.req();
    h.end_ok(r, None);
    assert!(h.events().contains(&Event::Committed {
        identity: id(PID, 0)
    }));
    assert!(matches!(
        h.core.state(),
        TxnState::Initializing {
            reason: InitReason::MissingIdentity
        }
    ));
    let init = h.answer_init(id(PID, 1));
    assert!(matches!(init, Request::InitProducerId { current: Some(c), .. } if c == id(PID, 0)));
    assert_eq!(h.state_name(), "Ready");
}

#[test]
fn coordinator_answer_of_the_wrong_kind_is_fatal() {
    let mut h = H::txn(BrokerInfo::v2());
    h.core.init(h.now).unwrap();
    let (r, _) = h.req();
    h.answer(
        r,
        4,
        Response::EndTxn {
            error: None,
            identity: None,
        },
    );
    match h.core.state() {
        TxnState::Fatal { error } => {
            assert_eq!(error.reason, ErrorReason::ProtocolViolation);
            assert_eq!(error.api, Some(ApiKey::FindCoordinator));
            assert!(error.is_fatal() && !error.is_abortable() && !error.is_retriable());
        }
        s => panic!("{s:?}"),
    }
}

#[test]
fn getters_and_error_predicates() {
    let mut h = H::idempotent();
    assert_eq!(h.core.config(), &Config::default());
    assert!(!h.core.is_transactional());
    h.init(id(PID, 0));
    h.core.enqueue(h.now, tp(0), 1).unwrap();
    h.core.enqueue(h.now, tp(1), 1).unwrap();
    assert_eq!(h.core.unresolved_batches(), 2);
    let (r, req) = h.req();
    assert_eq!(req.api(), ApiKey::Produce);
    assert_eq!(h.core.requests_in_flight(), 1);
    h.produce_err(r, 12, ErrorCode::InvalidRecord);
    let ev = h.events();
    let Some(Event::DeliveryFailed { error, .. }) = ev.first() else {
        panic!("{ev:?}")
    };
    assert!(!error.is_retriable());
    assert_eq!(h.core.unresolved_batches(), 1);
    assert_eq!(BrokerInfo::default(), BrokerInfo::v2());
    assert_eq!(format!("{}", id(3, 4)), "pid 3 epoch 4");
    assert_eq!(format!("{}", tp(2)), "t-2");
    assert_eq!(format!("{}", Millis(5)), "5ms");
}

/// Found by the producer chaos test under transaction.version 1 (and then
/// by the simulation once its broker model accepted any sequence from a
/// producer it holds no state for, as Kafka does): with two batches in
/// flight on a fresh partition, the first refused (NOT_LEADER_OR_FOLLOWER
/// right after topic creation, or lost with a connection) and the second
/// written at sequence 2 by a broker that knew nothing of the producer, the
/// second's success "proved" the first written: 518 acknowledged records
/// were missing from the log. Now the second batch is not sent before the
/// first is acknowledged.
#[test]
fn fresh_partition_sends_one_batch_until_the_first_acknowledgement() {
    let mut h = H::idempotent();
    h.init(id(PID, 0));
    let a = h.core.enqueue(h.now, tp(0), 2).unwrap();
    let b = h.core.enqueue(h.now, tp(0), 2).unwrap();
    let (ra, first) = h.req();
    assert_eq!(H::stamp_of(&first).base_sequence, 0);
    h.none();
    h.produce_err(ra, 12, ErrorCode::NotLeaderOrFollower);
    h.events();
    h.advance(1_000);
    let (ra, retry) = h.req();
    assert_eq!(retry, first);
    h.none();
    h.produce_ok(ra, 0);
    let (rb, second) = h.req();
    assert_eq!(H::stamp_of(&second).base_sequence, 2);
    h.produce_ok(rb, 2);
    let ev = h.events();
    for (batch, offset) in [(a, 0), (b, 2)] {
        assert!(
            ev.contains(&Event::Delivered {
                batch,
                partition: tp(0),
                base_offset: Some(offset)
            }),
            "{ev:?}"
        );
    }
    // Acknowledged once: the partition pipelines again.
    for _ in 0..3 {
        h.core.enqueue(h.now, tp(0), 1).unwrap();
    }
    assert_eq!(std::iter::from_fn(|| h.poll()).count(), 3);
}

/// Commits one transaction under transaction version 2 (the coordinator is
/// CompleteCommit at `(PID, 1)`), then opens the next one whose only Produce
/// is lost, aborts it, and answers the EndTxn(abort) PRODUCER_FENCED, as a
/// 4.3.1 v2 coordinator that never saw the transaction does.
fn v2_abort_of_an_unseen_transaction_answered_fenced() -> H {
    let mut h = H::txn(BrokerInfo::v2());
    h.init(id(PID, 0));
    h.core.begin(h.now).unwrap();
    h.core.enqueue(h.now, tp(0), 1).unwrap();
    let (rid, _) = h.req();
    h.produce_ok(rid, 0);
    h.core.commit(h.now).unwrap();
    let (rid, r) = h.req();
    assert!(matches!(r, Request::EndTxn { commit: true, .. }), "{r:?}");
    h.end_ok(rid, Some(id(PID, 1)));
    assert_eq!(h.core.identity(), Some(id(PID, 1)));
    h.events();
    h.core.begin(h.now).unwrap();
    h.core.enqueue(h.now, tp(1), 1).unwrap();
    let (rid, r) = h.req();
    assert!(matches!(r, Request::Produce { .. }), "{r:?}");
    h.lost(rid);
    h.core.abort(h.now).unwrap();
    h.advance(1_000);
    let (rid, r) = loop {
        let (rid, r) = h.req();
        match r {
            Request::EndTxn { .. } => break (rid, r),
            Request::FindCoordinator { .. } => h.answer(
                rid,
                4,
                Response::FindCoordinator {
                    error: None,
                    node: 7,
                },
            ),
            other => panic!("before the abort's EndTxn: {other:?}"),
        }
    };
    assert!(matches!(r, Request::EndTxn { commit: false, .. }), "{r:?}");
    h.answer(
        rid,
        5,
        Response::EndTxn {
            error: Some(ErrorCode::ProducerFenced),
            identity: None,
        },
    );
    h
}

/// Found by T4 (SIGTERM of the coordinator's node during a copy,
/// transaction.version 2): the abort of a transaction the coordinator never
/// saw is answered PRODUCER_FENCED, which is no proof of a fence under v2.
/// InitProducerId with the current identity settles it: the coordinator
/// bumps the epoch, the abort completes and the producer lives on. It used
/// to be fatal and ended the session.
#[test]
fn v2_abort_answered_fenced_recovers_by_init_with_the_current_identity() {
    let mut h = v2_abort_of_an_unseen_transaction_answered_fenced();
    assert_eq!(h.state_name(), "Initializing");
    let r = h.answer_init(id(PID, 2));
    assert!(
        matches!(r, Request::InitProducerId { current: Some(c), .. } if c == id(PID, 1)),
        "{r:?}"
    );
    let ev = h.events();
    assert!(
        ev.iter().any(|e| matches!(e, Event::Aborted { .. })),
        "{ev:?}"
    );
    assert!(
        !ev.iter().any(|e| matches!(e, Event::Fatal { .. })),
        "{ev:?}"
    );
    assert_eq!(*h.core.state(), TxnState::Ready);
    assert_eq!(h.core.identity(), Some(id(PID, 2)));
}

/// The same, when another producer did take over: InitProducerId with the
/// current identity is answered PRODUCER_FENCED, and that is fatal.
#[test]
fn v2_abort_answered_fenced_stays_fatal_when_the_init_is_fenced_too() {
    let mut h = v2_abort_of_an_unseen_transaction_answered_fenced();
    let (rid, r) = h.req();
    assert!(matches!(r, Request::InitProducerId { .. }), "{r:?}");
    h.answer(
        rid,
        5,
        Response::InitProducerId {
            error: Some(ErrorCode::ProducerFenced),
            identity: id(-1, -1),
        },
    );
    assert_eq!(h.state_name(), "Fatal");
}
