//! The KIP-848 member (`group.protocol=consumer`) end to end against a
//! scripted coordinator: the join with epoch 0 and a member id of our own,
//! the acknowledgement of an assignment, FENCED_MEMBER_EPOCH losing the
//! partitions and rejoining with epoch 0 under the same member id, the
//! leave with epoch -1, UNRELEASED_INSTANCE_ID reaching the user, and a
//! regex subscription (`SubscribedTopicRegex`) whose assigned topic ids are
//! named from metadata of all topics, including a topic created later.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use exactly_codec::messages::consumer_group_heartbeat_response::{Assignment, TopicPartitions};
use exactly_codec::messages::ConsumerGroupHeartbeatResponse;
use exactly_codec::ErrorCode;
use exactly_consumer::{Consumer, ConsumerError, Polled, Rebalance, TopicPartition};
use support::*;

fn ok(epoch: i32, parts: Option<&[i32]>) -> ConsumerGroupHeartbeatResponse {
    let mut r = ConsumerGroupHeartbeatResponse::default()
        .with_member_epoch(epoch)
        .with_heartbeat_interval_ms(50);
    r.assignment = parts.map(|ps| {
        Assignment::default().with_topic_partitions(vec![TopicPartitions::default()
            .with_topic_id(topic_id("t"))
            .with_partitions(ps.to_vec())])
    });
    r
}

async fn consumer(fb: &FakeBroker, extra: &[(&str, &str)]) -> Consumer {
    let mut props = vec![
        ("bootstrap.servers", fb.addr.as_str()),
        ("group.id", "g"),
        ("group.protocol", "consumer"),
        ("group.remote.assignor", "range"),
        ("auto.offset.reset", "earliest"),
        ("fetch.max.wait.ms", "10"),
        ("retry.backoff.ms", "20"),
        ("retry.backoff.max.ms", "50"),
    ];
    props.extend_from_slice(extra);
    Consumer::from_properties(props).await.unwrap()
}

/// Polls until a rebalance event (10 s at most).
async fn next_event(c: &mut Consumer) -> Result<Rebalance, ConsumerError> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        assert!(Instant::now() < deadline, "no rebalance event in 10 s");
        if let Polled::Rebalance(e) = c.poll(Duration::from_millis(50)).await? {
            return Ok(e);
        }
    }
}

fn tps(parts: &[i32]) -> Vec<TopicPartition> {
    parts.iter().map(|p| TopicPartition::new("t", *p)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fenced_epoch_loses_then_rejoins_with_epoch_zero_and_the_same_member_id() {
    let fb = FakeBroker::start(Box::new(|_, _| idle())).await;
    let calls = Arc::new(AtomicUsize::new(0));
    let c2 = calls.clone();
    *fb.state.heartbeat.lock().unwrap() = Some(Box::new(move |r| {
        let n = c2.fetch_add(1, Ordering::SeqCst);
        match (n, r.member_epoch) {
            (0, 0) => ok(1, Some(&[0, 1])),
            // Acks, then the coordinator fences the member.
            (1..=3, 1) => ok(1, None),
            (_, 1) => ConsumerGroupHeartbeatResponse::default()
                .with_error_code(ErrorCode::FencedMemberEpoch.code()),
            (_, 0) => ok(5, Some(&[1])),
            (_, e) => ok(e, None),
        }
    }));
    let mut c = consumer(&fb, &[("client.rack", "az-5")]).await;
    c.subscribe(&["t"]).unwrap();
    assert_eq!(
        next_event(&mut c).await.unwrap(),
        Rebalance::Assigned(tps(&[0, 1]))
    );
    assert_eq!(c.group_metadata().generation_id, 1, "the member epoch");
    assert_eq!(
        next_event(&mut c).await.unwrap(),
        Rebalance::Lost(tps(&[0, 1]))
    );
    assert!(c.assignment().is_empty());
    assert_eq!(
        next_event(&mut c).await.unwrap(),
        Rebalance::Assigned(tps(&[1]))
    );
    assert_eq!(c.group_metadata().generation_id, 5);
    let member = c.group_metadata().member_id;
    c.close().await.unwrap();

    let hbs = fb.state.heartbeats.lock().unwrap().clone();
    let first = &hbs[0];
    assert_eq!(first.member_epoch, 0);
    assert!(
        !first.member_id.is_empty(),
        "KIP-1082: the member picks its id"
    );
    assert_eq!(first.member_id.as_str(), member);
    assert_eq!(
        first.server_assignor.as_ref().map(|s| s.as_str()),
        Some("range")
    );
    assert_eq!(
        first.subscribed_topic_names.as_ref().map(|t| t.len()),
        Some(1)
    );
    // `client.rack` goes with the subscription (KIP-848 RackId).
    let rack = |r: &exactly_codec::messages::ConsumerGroupHeartbeatRequest| {
        r.rack_id.as_ref().map(|s| s.to_string())
    };
    assert_eq!(rack(first).as_deref(), Some("az-5"));
    // The assignment was acknowledged: a heartbeat owning t-0 and t-1.
    let owned = |r: &exactly_codec::messages::ConsumerGroupHeartbeatRequest| -> Vec<i32> {
        r.topic_partitions
            .iter()
            .flatten()
            .flat_map(|t| t.partitions.clone())
            .collect()
    };
    assert!(hbs
        .iter()
        .any(|r| r.member_epoch == 1 && owned(r) == [0, 1]));
    // The rejoin: epoch 0, same member id, nothing owned.
    let rejoin = hbs
        .iter()
        .skip(1)
        .find(|r| r.member_epoch == 0)
        .expect("a rejoin");
    assert_eq!(rejoin.member_id, first.member_id);
    assert!(owned(rejoin).is_empty());
    assert_eq!(rack(rejoin).as_deref(), Some("az-5"));
    // The leave.
    let last = hbs.last().unwrap();
    assert_eq!(last.member_epoch, -1, "{hbs:?}");
    assert_eq!(rack(last), None);
    assert_eq!(last.member_id, first.member_id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreleased_instance_id_is_an_error_for_the_user_and_a_static_leave_is_minus_two() {
    let fb = FakeBroker::start(Box::new(|_, _| idle())).await;
    let calls = Arc::new(AtomicUsize::new(0));
    let c2 = calls.clone();
    *fb.state.heartbeat.lock().unwrap() = Some(Box::new(move |r| {
        if r.member_epoch < 0 {
            return ok(r.member_epoch, None);
        }
        match c2.fetch_add(1, Ordering::SeqCst) {
            0 => ConsumerGroupHeartbeatResponse::default()
                .with_error_code(ErrorCode::UnreleasedInstanceId.code()),
            _ => ok(1, Some(&[0])),
        }
    }));
    let mut c = consumer(&fb, &[("group.instance.id", "i-1")]).await;
    c.subscribe(&["t"]).unwrap();
    match next_event(&mut c).await {
        Err(ConsumerError::Kafka { code, .. }) => assert_eq!(code, ErrorCode::UnreleasedInstanceId),
        other => panic!("{other:?}"),
    }
    // A second consumer under the same instance id, once released.
    let mut c = consumer(&fb, &[("group.instance.id", "i-1")]).await;
    c.subscribe(&["t"]).unwrap();
    assert_eq!(
        next_event(&mut c).await.unwrap(),
        Rebalance::Assigned(tps(&[0]))
    );
    c.close().await.unwrap();
    let hbs = fb.state.heartbeats.lock().unwrap().clone();
    assert!(hbs
        .iter()
        .all(|r| r.instance_id.as_ref().map(|s| s.as_str()) == Some("i-1")));
    assert_eq!(
        hbs.last().unwrap().member_epoch,
        -2,
        "a static member leaves with -2"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regex_subscription_goes_as_subscribed_topic_regex_and_names_a_later_topic() {
    let fb = FakeBroker::start(Box::new(|_, _| idle())).await;
    // The cluster has `orders-a` (matched) and `other`; `orders-b` is
    // created after the subscription, and the coordinator assigns it.
    *fb.state.all_topics.lock().unwrap() = vec!["orders-a".into(), "other".into()];
    let calls = Arc::new(AtomicUsize::new(0));
    let c2 = calls.clone();
    let st = fb.state.clone();
    *fb.state.heartbeat.lock().unwrap() = Some(Box::new(move |r| {
        if r.member_epoch < 0 {
            return ok(r.member_epoch, None);
        }
        let n = c2.fetch_add(1, Ordering::SeqCst);
        let assign = |topics: &[&str]| {
            let mut resp = ConsumerGroupHeartbeatResponse::default()
                .with_member_epoch(if topics.len() > 1 { 2 } else { 1 })
                .with_heartbeat_interval_ms(50);
            resp.assignment = Some(
                Assignment::default().with_topic_partitions(
                    topics
                        .iter()
                        .map(|t| {
                            TopicPartitions::default()
                                .with_topic_id(topic_id(t))
                                .with_partitions(vec![0])
                        })
                        .collect(),
                ),
            );
            resp
        };
        match n {
            0 => assign(&["orders-a"]),
            1..=3 => ok(1, None),
            4 => {
                st.all_topics.lock().unwrap().push("orders-b".into());
                assign(&["orders-a", "orders-b"])
            }
            _ => ok(2, None),
        }
    }));
    let mut c = consumer(&fb, &[]).await;
    c.subscribe_pattern("orders-.*").unwrap();
    let first = next_event(&mut c).await.unwrap();
    assert_eq!(
        first,
        Rebalance::Assigned(vec![TopicPartition::new("orders-a", 0)])
    );
    assert_eq!(
        next_event(&mut c).await.unwrap(),
        Rebalance::Assigned(vec![TopicPartition::new("orders-b", 0)])
    );
    let mut now = c.assignment();
    now.sort();
    assert_eq!(
        now,
        vec![
            TopicPartition::new("orders-a", 0),
            TopicPartition::new("orders-b", 0)
        ]
    );
    // Both topics are acknowledged by id.
    let acked =
        |st: &FakeState| {
            st.heartbeats.lock().unwrap().iter().any(|r| {
                r.member_epoch == 2 && r.topic_partitions.as_ref().map(|t| t.len()) == Some(2)
            })
        };
    let deadline = Instant::now() + Duration::from_secs(5);
    while !acked(&fb.state) {
        assert!(Instant::now() < deadline, "orders-b never acknowledged");
        c.poll(Duration::from_millis(50)).await.unwrap();
    }
    c.close().await.unwrap();
    let hbs = fb.state.heartbeats.lock().unwrap().clone();
    let join = &hbs[0];
    assert_eq!(join.member_epoch, 0);
    assert_eq!(
        join.subscribed_topic_regex.as_ref().map(|s| s.as_str()),
        Some("orders-.*")
    );
    assert_eq!(
        join.subscribed_topic_names.as_ref().map(|t| t.len()),
        Some(0),
        "no names besides the regex"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regex_subscription_is_refused_under_the_classic_protocol() {
    let fb = FakeBroker::start(Box::new(|_, _| idle())).await;
    let mut c =
        Consumer::from_properties([("bootstrap.servers", fb.addr.as_str()), ("group.id", "g")])
            .await
            .unwrap();
    assert!(matches!(
        c.subscribe_pattern("orders-.*"),
        Err(ConsumerError::Usage(_))
    ));
    let mut c = consumer(&fb, &[]).await;
    assert!(matches!(
        c.subscribe_pattern(""),
        Err(ConsumerError::Usage(_))
    ));
}
