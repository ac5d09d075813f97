//! The KIP-848 member against scripted heartbeat replies.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

const T: TopicId = uuid::Uuid::from_bytes([7; 16]);
const U: TopicId = uuid::Uuid::from_bytes([9; 16]);

fn settings(instance: Option<&str>) -> Settings {
    Settings {
        member_id: "m-1".into(),
        instance_id: instance.map(str::to_owned),
        rebalance_timeout: Duration::from_secs(30),
        server_assignor: Some("range"),
        rack: Some("az-1".into()),
        retry_backoff: Duration::from_millis(100),
    }
}

fn member(instance: Option<&str>) -> (Machine, Instant) {
    let now = Instant::now();
    let mut m = Machine::new(settings(instance), now);
    m.subscribe(&["t".to_owned(), "u".to_owned()], None, now);
    m.learn_names([(T, "t".to_owned()), (U, "u".to_owned())]);
    (m, now)
}

fn ok(epoch: i32, assignment: Option<Vec<(TopicId, Vec<i32>)>>) -> Reply {
    Reply {
        member_epoch: epoch,
        heartbeat_interval_ms: 500,
        assignment,
        ..Reply::default()
    }
}

fn err(code: ErrorCode) -> Reply {
    Reply {
        error: Some(code),
        ..Reply::default()
    }
}

fn tps(topic: &str, parts: &[i32]) -> Vec<TopicPartition> {
    parts
        .iter()
        .map(|p| TopicPartition::new(topic, *p))
        .collect()
}

/// Joins and takes an assignment of t-0, t-1, t-2 at epoch 1.
fn joined() -> (Machine, Instant) {
    let (mut m, now) = member(None);
    let b = m.beat(now).expect("joining beat");
    assert_eq!(b.member_epoch, 0);
    m.on_reply(now, ok(1, Some(vec![(T, vec![0, 1, 2])])));
    assert_eq!(
        m.step(now).unwrap(),
        Turn::Event(Rebalance::Assigned(tps("t", &[0, 1, 2])))
    );
    (m, now)
}

#[test]
fn join_with_epoch_zero_then_heartbeat_at_the_broker_interval() {
    let (mut m, now) = member(None);
    let b = m.beat(now).unwrap();
    assert_eq!(b.member_epoch, 0);
    assert_eq!(b.member_id, "m-1");
    assert_eq!(b.topics, vec!["t".to_owned(), "u".to_owned()]);
    assert_eq!(b.server_assignor, Some("range"));
    assert_eq!(b.rebalance_timeout_ms, 30_000);
    assert_eq!(b.owned, Some(vec![]));
    assert_eq!(b.rack.as_deref(), Some("az-1"));
    let req = crate::group::consumer_protocol::driver::request("g", &b, 1);
    assert_eq!(req.rack_id.as_ref().map(|r| r.as_str()), Some("az-1"));
    // Nothing more until the reply sets the interval.
    m.on_reply(now, ok(3, None));
    assert!(m.beat(now).is_none());
    assert!(m.beat(now + Duration::from_millis(499)).is_none());
    let b = m.beat(now + Duration::from_millis(500)).unwrap();
    assert_eq!(b.member_epoch, 3);
    assert_eq!(m.epoch(), 3);
}

#[test]
fn assignment_is_reported_and_acknowledged_with_the_epoch() {
    let (mut m, now) = joined();
    assert_eq!(m.step(now).unwrap(), Turn::Quiet);
    // The ack goes out at once, with the owned partitions.
    let b = m.beat(now).unwrap();
    assert_eq!(b.member_epoch, 1);
    assert_eq!(b.owned, Some(vec![(T, vec![0, 1, 2])]));
}

#[test]
fn revoke_first_then_ack_then_assign() {
    let (mut m, now) = joined();
    let _ = m.beat(now);
    // The coordinator moves t-2 away and, in the same epoch, gives u-0
    // (free already).
    m.on_reply(now, ok(2, Some(vec![(T, vec![0, 1]), (U, vec![0])])));
    assert!(m.revoke_coming());
    assert_eq!(
        m.step(now).unwrap(),
        Turn::Event(Rebalance::Revoked(tps("t", &[2])))
    );
    assert!(m.is_revoking());
    // Until the user comes back, the heartbeat still reports t-2 as owned.
    let later = now + Duration::from_millis(500);
    let b = m.beat(later).unwrap();
    assert_eq!(b.owned, Some(vec![(T, vec![0, 1, 2])]));
    m.on_reply(later, ok(2, None));
    // The user came back: t-2 is dropped, the ack is due now.
    assert_eq!(m.step(later).unwrap(), Turn::Drop(tps("t", &[2])));
    let b = m.beat(later).unwrap();
    assert_eq!(b.member_epoch, 2);
    assert_eq!(b.owned, Some(vec![(T, vec![0, 1])]));
    // Then the new partition.
    assert_eq!(
        m.step(later).unwrap(),
        Turn::Event(Rebalance::Assigned(tps("u", &[0])))
    );
    let b = m.beat(later).unwrap();
    assert_eq!(b.owned, Some(vec![(T, vec![0, 1]), (U, vec![0])]));
    assert_eq!(m.step(later).unwrap(), Turn::Quiet);
}

#[test]
fn fenced_epoch_loses_the_partitions_then_rejoins_with_epoch_zero() {
    for code in [ErrorCode::FencedMemberEpoch, ErrorCode::UnknownMemberId] {
        let (mut m, now) = joined();
        let _ = m.beat(now);
        m.on_reply(now, err(code));
        assert_eq!(m.epoch(), 0);
        // No rejoin before the user saw the loss.
        assert!(m.beat(now + Duration::from_secs(10)).is_none(), "{code}");
        assert_eq!(
            m.step(now).unwrap(),
            Turn::Event(Rebalance::Lost(tps("t", &[0, 1, 2])))
        );
        let b = m.beat(now).unwrap();
        assert_eq!(b.member_epoch, 0);
        assert_eq!(b.member_id, "m-1", "same member id");
        assert_eq!(b.owned, Some(vec![]));
    }
}

#[test]
fn leave_is_epoch_minus_one_or_minus_two_for_a_static_member() {
    let (mut m, now) = joined();
    let b = m.leave().unwrap();
    assert_eq!(b.member_epoch, LEAVE_EPOCH);
    assert!(m.leave().is_none(), "left once");
    assert!(
        m.beat(now + Duration::from_secs(60)).is_none(),
        "no beat after leaving"
    );

    let (mut s, now) = member(Some("i-1"));
    let b = s.beat(now).unwrap();
    assert_eq!(b.instance_id.as_deref(), Some("i-1"));
    s.on_reply(now, ok(1, None));
    let b = s.leave().unwrap();
    assert_eq!(b.member_epoch, STATIC_LEAVE_EPOCH);
    assert_eq!(b.instance_id.as_deref(), Some("i-1"));
}

#[test]
fn unreleased_instance_id_is_fatal() {
    let (mut m, now) = member(Some("i-1"));
    let _ = m.beat(now);
    m.on_reply(now, err(ErrorCode::UnreleasedInstanceId));
    match m.step(now) {
        Err(ConsumerError::Kafka { code, api, .. }) => {
            assert_eq!(code, ErrorCode::UnreleasedInstanceId);
            assert_eq!(api, ApiKey::ConsumerGroupHeartbeat);
        }
        other => panic!("{other:?}"),
    }
    assert!(m.beat(now + Duration::from_secs(60)).is_none());
}

#[test]
fn coordinator_errors_retry_after_the_backoff() {
    let (mut m, now) = joined();
    let _ = m.beat(now);
    assert_eq!(
        m.on_reply(now, err(ErrorCode::NotCoordinator)),
        Follow::FindCoordinator
    );
    assert!(m.beat(now + Duration::from_millis(99)).is_none());
    let b = m.beat(now + Duration::from_millis(100)).unwrap();
    assert_eq!(b.member_epoch, 1, "the same epoch");
    m.on_failure(now);
    assert!(m.beat(now + Duration::from_millis(100)).is_some());
}

#[test]
fn unknown_topic_ids_wait_for_metadata() {
    let now = Instant::now();
    let mut m = Machine::new(settings(None), now);
    m.subscribe(&["t".to_owned()], None, now);
    let _ = m.beat(now);
    m.on_reply(now, ok(1, Some(vec![(T, vec![0])])));
    assert_eq!(m.unresolved(), vec![T]);
    assert_eq!(m.step(now).unwrap(), Turn::Quiet);
    m.learn_names([(T, "t".to_owned())]);
    assert!(m.unresolved().is_empty());
    assert_eq!(
        m.step(now).unwrap(),
        Turn::Event(Rebalance::Assigned(tps("t", &[0])))
    );
}

#[test]
fn poll_timeout_leaves_and_loses_then_rejoins_on_the_next_poll() {
    let (mut m, now) = joined();
    let b = m.on_poll_timeout().unwrap();
    assert_eq!(b.member_epoch, LEAVE_EPOCH);
    assert!(m.beat(now + Duration::from_secs(60)).is_none());
    assert_eq!(
        m.step(now).unwrap(),
        Turn::Event(Rebalance::Lost(tps("t", &[0, 1, 2])))
    );
    assert_eq!(m.beat(now).unwrap().member_epoch, 0);
}

#[test]
fn subscription_change_is_sent_at_once_and_unsubscribed_topics_are_revoked() {
    let (mut m, now) = joined();
    let _ = m.beat(now);
    m.on_reply(now, ok(1, None));
    m.subscribe(&["u".to_owned()], None, now);
    let b = m.beat(now).unwrap();
    assert_eq!(b.topics, vec!["u".to_owned()]);
    m.on_reply(now, ok(2, Some(vec![(U, vec![0])])));
    assert_eq!(
        m.step(now).unwrap(),
        Turn::Event(Rebalance::Revoked(tps("t", &[0, 1, 2])))
    );
}
