//! The classifier's table: every error code each API the core uses can
//! return, with its class, per context. Then totality over every known code.

#![allow(clippy::unwrap_used, clippy::expect_used)]
use exactly_txn::{classify, ApiKey, ClassifyContext, ErrorClass, ErrorCode};

use ErrorClass::*;
use ErrorCode as E;

fn txn() -> ClassifyContext {
    ClassifyContext {
        transactional: true,
        head_batch: true,
        can_bump_epoch: true,
        ..ClassifyContext::default()
    }
}

fn idem() -> ClassifyContext {
    ClassifyContext {
        transactional: false,
        head_batch: true,
        can_bump_epoch: true,
        ..ClassifyContext::default()
    }
}

fn check(api: ApiKey, version: i16, ctx: ClassifyContext, rows: &[(ErrorCode, ErrorClass)]) {
    for &(code, class) in rows {
        assert_eq!(
            classify(api, version, code, &ctx),
            class,
            "{api:?} v{version} {code} in {ctx:?}"
        );
    }
}

#[test]
fn produce_table() {
    // (code, idempotent-only, transactional)
    let rows: &[(ErrorCode, ErrorClass, ErrorClass)] = &[
        (E::DuplicateSequenceNumber, Success, Success),
        (E::NotLeaderOrFollower, RefreshMetadata, RefreshMetadata),
        (E::UnknownTopicOrPartition, RefreshMetadata, RefreshMetadata),
        (E::LeaderNotAvailable, RefreshMetadata, RefreshMetadata),
        (E::FencedLeaderEpoch, RefreshMetadata, RefreshMetadata),
        (E::UnknownLeaderEpoch, RefreshMetadata, RefreshMetadata),
        (E::UnknownTopicId, RefreshMetadata, RefreshMetadata),
        (E::NotEnoughReplicas, Retriable, Retriable),
        (E::CorruptMessage, Retriable, Retriable),
        (E::ThrottlingQuotaExceeded, Retriable, Retriable),
        (E::RequestTimedOut, OutcomeUnknown, OutcomeUnknown),
        (
            E::NotEnoughReplicasAfterAppend,
            OutcomeUnknown,
            OutcomeUnknown,
        ),
        (E::NetworkException, OutcomeUnknown, OutcomeUnknown),
        (E::KafkaStorageError, OutcomeUnknown, OutcomeUnknown),
        (E::OutOfOrderSequenceNumber, BumpEpoch, Abortable),
        (E::UnknownProducerId, BumpEpoch, Abortable),
        (E::InvalidProducerEpoch, BumpEpoch, AbortableRecoverEpoch),
        (E::ProducerFenced, Fatal, Fatal),
        (E::TransactionalIdAuthorizationFailed, Fatal, Fatal),
        (E::ClusterAuthorizationFailed, Fatal, Fatal),
        (E::InvalidProducerIdMapping, Fatal, Fatal),
        (E::UnsupportedForMessageFormat, Fatal, Fatal),
        (E::UnsupportedVersion, Fatal, Fatal),
        (E::TransactionAbortable, Rejected, Abortable),
        (E::InvalidTxnState, Rejected, Abortable),
        (E::MessageTooLarge, Rejected, Abortable),
        (E::RecordListTooLarge, Rejected, Abortable),
        (E::InvalidRecord, Rejected, Abortable),
        (E::InvalidTimestamp, Rejected, Abortable),
        (E::TopicAuthorizationFailed, Rejected, Abortable),
        (E::InvalidRequiredAcks, Rejected, Abortable),
        (E::InvalidTopicException, Rejected, Abortable),
        (E::PolicyViolation, Rejected, Abortable),
        (E::UnsupportedCompressionType, Rejected, Abortable),
        (E::InvalidRequest, Rejected, Abortable),
        (E::UnknownServerError, OutcomeUnknown, Abortable),
        (E::Unknown(9999), OutcomeUnknown, Abortable),
    ];
    for &(code, i, t) in rows {
        check(ApiKey::Produce, 12, idem(), &[(code, i)]);
        check(ApiKey::Produce, 12, txn(), &[(code, t)]);
    }
    // CONCURRENT_TRANSACTIONS is a normal answer only with the implicit add.
    check(
        ApiKey::Produce,
        12,
        txn(),
        &[(E::ConcurrentTransactions, Retriable)],
    );
    check(
        ApiKey::Produce,
        11,
        txn(),
        &[(E::ConcurrentTransactions, Abortable)],
    );
    // An out-of-order answer to a later batch only means an earlier one has
    // not landed: retry.
    let later = ClassifyContext {
        head_batch: false,
        ..txn()
    };
    check(
        ApiKey::Produce,
        12,
        later,
        &[
            (E::OutOfOrderSequenceNumber, Retriable),
            (E::UnknownProducerId, Retriable),
        ],
    );
    // Without KIP-360 the epoch cannot be recovered.
    let old = ClassifyContext {
        can_bump_epoch: false,
        ..txn()
    };
    check(ApiKey::Produce, 8, old, &[(E::InvalidProducerEpoch, Fatal)]);
}

#[test]
fn find_coordinator_table() {
    let common = [
        (E::CoordinatorNotAvailable, Retriable),
        (E::NotCoordinator, Retriable),
        (E::CoordinatorLoadInProgress, Retriable),
        (E::RequestTimedOut, Retriable),
        (E::NetworkException, Retriable),
        (E::TransactionalIdAuthorizationFailed, Fatal),
        (E::UnsupportedVersion, Fatal),
    ];
    check(ApiKey::FindCoordinator, 4, txn(), &common);
    check(
        ApiKey::FindCoordinator,
        4,
        txn(),
        &[
            (E::GroupAuthorizationFailed, Fatal),
            (E::InvalidRequest, Fatal),
            (E::UnknownServerError, Fatal),
        ],
    );
    let group = ClassifyContext {
        group: true,
        ..txn()
    };
    check(ApiKey::FindCoordinator, 4, group, &common);
    check(
        ApiKey::FindCoordinator,
        4,
        group,
        &[
            (E::GroupAuthorizationFailed, Abortable),
            (E::InvalidRequest, Abortable),
            (E::UnknownServerError, Abortable),
        ],
    );
}

#[test]
fn init_producer_id_table() {
    check(
        ApiKey::InitProducerId,
        5,
        txn(),
        &[
            (E::NotCoordinator, FindCoordinator),
            (E::CoordinatorNotAvailable, FindCoordinator),
            (E::CoordinatorLoadInProgress, Retriable),
            (E::ConcurrentTransactions, Retriable),
            (E::RequestTimedOut, Retriable),
            (E::NetworkException, Retriable),
            (E::TransactionAbortable, Retriable),
            (E::TransactionalIdAuthorizationFailed, Fatal),
            (E::ClusterAuthorizationFailed, Fatal),
            (E::InvalidTransactionTimeout, Fatal),
            (E::InvalidProducerEpoch, Fatal),
            (E::ProducerFenced, Fatal),
            (E::InvalidProducerIdMapping, Fatal),
            (E::UnsupportedVersion, Fatal),
            (E::UnknownServerError, Fatal),
            (E::Unknown(-77), Fatal),
        ],
    );
    // Idempotent-only: no coordinator to look up.
    check(
        ApiKey::InitProducerId,
        4,
        idem(),
        &[
            (E::NotCoordinator, Retriable),
            (E::CoordinatorNotAvailable, Retriable),
        ],
    );
}

#[test]
fn add_partitions_to_txn_table() {
    let rows = [
        (E::NotCoordinator, FindCoordinator),
        (E::CoordinatorNotAvailable, FindCoordinator),
        (E::CoordinatorLoadInProgress, Retriable),
        (E::ConcurrentTransactions, Retriable),
        (E::RequestTimedOut, Retriable),
        (E::UnknownTopicOrPartition, Retriable),
        (E::NetworkException, Retriable),
        (E::InvalidProducerEpoch, AbortableRecoverEpoch),
        (E::ProducerFenced, Fatal),
        (E::InvalidProducerIdMapping, Fatal),
        (E::InvalidTxnState, Fatal),
        (E::TransactionalIdAuthorizationFailed, Fatal),
        (E::ClusterAuthorizationFailed, Abortable),
        (E::TopicAuthorizationFailed, Abortable),
        (E::GroupAuthorizationFailed, Abortable),
        (E::OperationNotAttempted, Abortable),
        (E::UnknownProducerId, Abortable),
        (E::TransactionAbortable, Abortable),
        (E::UnknownServerError, Abortable),
    ];
    check(ApiKey::AddPartitionsToTxn, 3, txn(), &rows);
    let old = ClassifyContext {
        can_bump_epoch: false,
        ..txn()
    };
    check(
        ApiKey::AddPartitionsToTxn,
        3,
        old,
        &[
            (E::UnknownProducerId, Fatal),
            (E::InvalidProducerEpoch, Fatal),
        ],
    );
}

#[test]
fn add_offsets_to_txn_table() {
    check(
        ApiKey::AddOffsetsToTxn,
        3,
        txn(),
        &[
            (E::NotCoordinator, FindCoordinator),
            (E::CoordinatorNotAvailable, FindCoordinator),
            (E::CoordinatorLoadInProgress, Retriable),
            (E::ConcurrentTransactions, Retriable),
            (E::RequestTimedOut, Retriable),
            (E::NetworkException, Retriable),
            (E::InvalidProducerEpoch, AbortableRecoverEpoch),
            (E::ProducerFenced, Fatal),
            (E::InvalidProducerIdMapping, Fatal),
            (E::InvalidTxnState, Fatal),
            (E::TransactionalIdAuthorizationFailed, Fatal),
            (E::GroupAuthorizationFailed, Abortable),
            (E::UnknownProducerId, Abortable),
            (E::TransactionAbortable, Abortable),
            (E::UnknownServerError, Abortable),
        ],
    );
}

#[test]
fn txn_offset_commit_table() {
    check(
        ApiKey::TxnOffsetCommit,
        4,
        txn(),
        &[
            (E::NotCoordinator, FindCoordinator),
            (E::CoordinatorNotAvailable, FindCoordinator),
            (E::RequestTimedOut, FindCoordinator),
            (E::CoordinatorLoadInProgress, Retriable),
            (E::UnknownTopicOrPartition, Retriable),
            (E::UnstableOffsetCommit, Retriable),
            (E::ConcurrentTransactions, Retriable),
            (E::NetworkException, Retriable),
            (E::InvalidProducerEpoch, AbortableRecoverEpoch),
            (E::ProducerFenced, Fatal),
            (E::TransactionalIdAuthorizationFailed, Fatal),
            (E::UnsupportedForMessageFormat, Fatal),
            (E::InvalidProducerIdMapping, Fatal),
            (E::GroupAuthorizationFailed, Abortable),
            (E::TopicAuthorizationFailed, Abortable),
            (E::UnknownMemberId, Abortable),
            (E::IllegalGeneration, Abortable),
            (E::FencedInstanceId, Abortable),
            (E::RebalanceInProgress, Abortable),
            (E::InvalidCommitOffsetSize, Abortable),
            (E::OffsetMetadataTooLarge, Abortable),
            (E::TransactionAbortable, Abortable),
            (E::InvalidTxnState, Abortable),
            (E::UnknownServerError, Abortable),
        ],
    );
}

#[test]
fn end_txn_table() {
    let commit = ClassifyContext {
        commit: true,
        ..txn()
    };
    let abort = ClassifyContext {
        commit: false,
        ..txn()
    };
    let both = [
        (E::NotCoordinator, FindCoordinator),
        (E::CoordinatorNotAvailable, FindCoordinator),
        (E::CoordinatorLoadInProgress, Retriable),
        (E::ConcurrentTransactions, Retriable),
        (E::NetworkException, Retriable),
        (E::RequestTimedOut, OutcomeUnknown),
        (E::InvalidProducerEpoch, AbortableRecoverEpoch),
        (E::UnknownProducerId, Abortable),
        (E::InvalidProducerIdMapping, Fatal),
        (E::TransactionalIdAuthorizationFailed, Fatal),
        (E::ClusterAuthorizationFailed, Fatal),
        (E::UnknownServerError, Fatal),
        (E::Unknown(4242), Fatal),
    ];
    check(ApiKey::EndTxn, 5, commit, &both);
    check(ApiKey::EndTxn, 5, abort, &both);
    check(
        ApiKey::EndTxn,
        5,
        commit,
        &[
            (E::ProducerFenced, Fatal),
            (E::TransactionAbortable, Abortable),
            // The coordinator aborted the transaction on timeout (KIP-588).
            (E::InvalidTxnState, AbortableRecoverEpoch),
        ],
    );
    // An abort of a transaction the coordinator acknowledged: fatal. Of one
    // it may never have seen (every opening request lost): nothing to
    // abort, the abort completes with an epoch bump.
    let abort_acknowledged = ClassifyContext {
        acknowledged: true,
        ..abort
    };
    check(
        ApiKey::EndTxn,
        5,
        abort_acknowledged,
        &[(E::InvalidTxnState, Fatal)],
    );
    check(ApiKey::EndTxn, 5, abort, &[(E::InvalidTxnState, Abortable)]);
    // Transaction version 2: a coordinator that completed the previous
    // transaction and never saw this one answers PRODUCER_FENCED to its
    // abort; InitProducerId with the current identity tells a real fence
    // apart. Acknowledged, a commit, tv1 (v4) or no KIP-360: a real fence.
    check(
        ApiKey::EndTxn,
        5,
        abort,
        &[(E::ProducerFenced, AbortableRecoverEpoch)],
    );
    check(
        ApiKey::EndTxn,
        5,
        abort_acknowledged,
        &[(E::ProducerFenced, Fatal)],
    );
    check(ApiKey::EndTxn, 4, abort, &[(E::ProducerFenced, Fatal)]);
    check(
        ApiKey::EndTxn,
        5,
        ClassifyContext {
            can_bump_epoch: false,
            ..abort
        },
        &[(E::ProducerFenced, Fatal)],
    );
    // KAFKA-19250: an abort answered TRANSACTION_ABORTABLE would loop.
    check(
        ApiKey::EndTxn,
        5,
        abort,
        &[(E::TransactionAbortable, Fatal)],
    );
}

#[test]
fn every_code_has_a_class_and_only_duplicate_sequence_is_success() {
    let apis = [
        ApiKey::Produce,
        ApiKey::FindCoordinator,
        ApiKey::InitProducerId,
        ApiKey::AddPartitionsToTxn,
        ApiKey::AddOffsetsToTxn,
        ApiKey::TxnOffsetCommit,
        ApiKey::EndTxn,
    ];
    let mut codes: Vec<ErrorCode> = ErrorCode::ALL.to_vec();
    codes.extend([E::Unknown(-2), E::Unknown(i16::MAX)]);
    for api in apis {
        for &code in &codes {
            for transactional in [false, true] {
                for head_batch in [false, true] {
                    for commit in [false, true] {
                        let ctx = ClassifyContext {
                            transactional,
                            head_batch,
                            can_bump_epoch: true,
                            commit,
                            group: false,
                            acknowledged: false,
                        };
                        let class = classify(api, 12, code, &ctx);
                        if class == Success {
                            assert_eq!((api, code), (ApiKey::Produce, E::DuplicateSequenceNumber));
                        }
                        // An unknown code is never silently retried as if
                        // nothing was applied.
                        if matches!(code, E::Unknown(_)) {
                            assert!(
                                !matches!(class, Retriable | RefreshMetadata | FindCoordinator),
                                "{api:?} {code} {ctx:?} -> {class:?}"
                            );
                        }
                    }
                }
            }
        }
    }
    // An API the core never sends has no business here: fatal.
    assert_eq!(
        classify(ApiKey::Fetch, 16, E::NotLeaderOrFollower, &txn()),
        Fatal
    );
}

#[test]
fn class_predicates() {
    assert!(OutcomeUnknown.is_retriable() && !OutcomeUnknown.is_abortable());
    assert!(AbortableRecoverEpoch.is_abortable() && !AbortableRecoverEpoch.is_fatal());
    assert!(Fatal.is_fatal() && !Fatal.is_retriable());
    assert!(!BumpEpoch.is_retriable() && !Rejected.is_abortable());
}
