//! Transactions on the real broker, under transaction.version 2 and 1:
//! visibility of committed and aborted records to a `read_committed` Java
//! consumer, offsets committed only with their transaction, zombie fencing,
//! a transaction left open past `transaction.timeout.ms`, and the metrics
//! of a transactional producer and a read_committed consumer as
//! `crates/exactly/examples/prometheus_metrics.rs` serves them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod producer_support;
mod txn_metrics;

use std::net::TcpListener;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use exactly_producer::{Producer, ProducerRecord};
use exactly_protocol_tests::{
    unique_topic, Broker, BrokerConfig, ExtraListener, TransactionVersion,
};
use producer_support::*;

/// The broker of this binary for `tv` (one per transaction version, started
/// on first use, shared by every test here like `Broker::shared`): besides
/// PLAINTEXT it has the listener ZOMBIE, advertised at a port reserved for
/// the frozen zombie's chaos proxy (taken by that test, see
/// [`frozen_zombie`]), and it looks for timed-out transactions every second
/// instead of every 10 s, so that [`timeout`] does not wait out the default
/// interval. Neither changes anything for the other tests: they connect to
/// PLAINTEXT and keep their transactions far below their timeout.
struct TxnBroker {
    broker: Broker,
    /// The reserved port of ZOMBIE's advertised address, until the frozen
    /// zombie's proxy takes it.
    zombie_port: Mutex<Option<TcpListener>>,
}

fn txn_broker(tv: TransactionVersion) -> &'static TxnBroker {
    static V1: OnceLock<Result<TxnBroker, String>> = OnceLock::new();
    static V2: OnceLock<Result<TxnBroker, String>> = OnceLock::new();
    let cell = match tv {
        TransactionVersion::V1 => &V1,
        TransactionVersion::V2 => &V2,
    };
    let started = cell.get_or_init(|| {
        let reserved = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        let proxy_port = reserved.local_addr().map_err(|e| e.to_string())?.port();
        let mut config = BrokerConfig::with_transaction_version(tv).property(
            "transaction.abort.timed.out.transaction.cleanup.interval.ms",
            "1000",
        );
        config
            .extra_listeners
            .push(ExtraListener::new("ZOMBIE", "PLAINTEXT").advertised_at(proxy_port));
        let broker = Broker::start(config).map_err(|e| format!("{tv:?} broker: {e}"))?;
        Ok(TxnBroker {
            broker,
            zombie_port: Mutex::new(Some(reserved)),
        })
    });
    started.as_ref().unwrap_or_else(|e| panic!("{e}"))
}

async fn send_values(p: &Producer, topic: &str, tag: &str, range: std::ops::Range<u32>) {
    let mut futures = Vec::new();
    for i in range {
        let v = format!("{tag}-{i}");
        futures.push(
            p.send(ProducerRecord::new(topic).with_value(v.as_bytes()))
                .await
                .unwrap(),
        );
    }
    p.flush().await.unwrap();
    for f in futures {
        f.await.unwrap();
    }
}

fn visibility(tv: TransactionVersion) {
    let broker = &txn_broker(tv).broker;
    let topic = unique_topic("txn-vis");
    broker.create_topic(&topic, 3).unwrap();
    let txn_id = unique_topic("txn-vis-id");
    runtime().block_on(async {
        let p = producer(&broker.bootstrap(), &[("transactional.id", &txn_id)]).await;
        p.init_transactions().await.unwrap();
        for round in 0..6u32 {
            p.begin_transaction().await.unwrap();
            let tag = if round % 2 == 0 { "commit" } else { "abort" };
            send_values(&p, &topic, &format!("{tag}{round}"), 0..500).await;
            if round % 2 == 0 {
                p.commit_transaction().await.unwrap();
            } else {
                p.abort_transaction().await.unwrap();
            }
        }
        p.close(Duration::from_secs(10)).await.unwrap();
    });
    let got = read_committed(broker, &topic, 1500, Duration::from_secs(120));
    let values: Vec<String> = got.iter().map(|r| r.value.clone().unwrap()).collect();
    assert_eq!(values.len(), 1500, "{tv:?}");
    assert!(
        values.iter().all(|v| v.starts_with("commit")),
        "{tv:?}: aborted record visible"
    );
    let mut sorted = values.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 1500, "{tv:?}: duplicates");
    assert_no_hanging(broker, &[&topic]);
}

#[test]
fn committed_visible_aborted_never_tv2() {
    visibility(TransactionVersion::V2);
}

#[test]
fn committed_visible_aborted_never_tv1() {
    visibility(TransactionVersion::V1);
}

/// Offsets sent to a transaction become the group's committed offsets only
/// when it commits: invisible (and "unstable" to a require_stable reader)
/// while it is open, discarded when it aborts.
fn offsets_with_transaction(tv: TransactionVersion) {
    use exactly_producer::{ConsumerGroupMetadata, OffsetCommit, TopicPartition};
    let broker = &txn_broker(tv).broker;
    let input = unique_topic("txn-off-in");
    let output = unique_topic("txn-off-out");
    broker.create_topic(&input, 2).unwrap();
    broker.create_topic(&output, 1).unwrap();
    let group = unique_topic("txn-off-group");
    let txn_id = unique_topic("txn-off-id");
    runtime().block_on(async {
        let check = net_client(&broker.bootstrap()).await;
        let p = producer(&broker.bootstrap(), &[("transactional.id", &txn_id)]).await;
        let meta = ConsumerGroupMetadata::new(&group);
        let offsets = |a: i64, b: i64| {
            [(0, a), (1, b)].map(|(p, offset)| OffsetCommit {
                partition: TopicPartition::new(&input, p),
                offset,
                leader_epoch: None,
                metadata: None,
            })
        };
        p.init_transactions().await.unwrap();
        // 1: commit offsets 10 and 20.
        p.begin_transaction().await.unwrap();
        send_values(&p, &output, "t1", 0..10).await;
        p.send_offsets_to_transaction(offsets(10, 20), &meta)
            .await
            .unwrap();
        assert_eq!(
            committed_offsets(&check, &group, &input, &[0, 1], false).await,
            vec![Ok(-1), Ok(-1)],
            "{tv:?}: offsets of an open transaction are not committed"
        );
        let unstable = committed_offsets(&check, &group, &input, &[0, 1], true).await;
        assert_eq!(
            unstable,
            vec![Err(88), Err(88)],
            "{tv:?}: a require_stable reader sees UNSTABLE_OFFSET_COMMIT"
        );
        p.commit_transaction().await.unwrap();
        assert_eq!(
            stable_offsets(&check, &group, &input, &[0, 1]).await,
            vec![Ok(10), Ok(20)],
            "{tv:?}"
        );
        // 2: abort offsets 30 and 40: nothing changes.
        p.begin_transaction().await.unwrap();
        send_values(&p, &output, "t2", 0..10).await;
        p.send_offsets_to_transaction(offsets(30, 40), &meta)
            .await
            .unwrap();
        p.abort_transaction().await.unwrap();
        assert_eq!(
            stable_offsets(&check, &group, &input, &[0, 1]).await,
            vec![Ok(10), Ok(20)],
            "{tv:?}: aborted offsets discarded"
        );
        // 3: offsets alone (no records) in a transaction, committed.
        p.begin_transaction().await.unwrap();
        p.send_offsets_to_transaction(offsets(50, 60), &meta)
            .await
            .unwrap();
        p.commit_transaction().await.unwrap();
        assert_eq!(
            stable_offsets(&check, &group, &input, &[0, 1]).await,
            vec![Ok(50), Ok(60)],
            "{tv:?}"
        );
        // 4: a zombie group member (a generation the group never had) is
        // fenced by the group coordinator (KIP-447): the transaction must
        // abort, the producer lives on, the offsets stay.
        p.begin_transaction().await.unwrap();
        send_values(&p, &output, "t4", 0..10).await;
        let zombie = ConsumerGroupMetadata {
            generation_id: 7,
            member_id: "gone-member".into(),
            ..ConsumerGroupMetadata::new(&group)
        };
        let e = p
            .send_offsets_to_transaction(offsets(70, 80), &zombie)
            .await
            .unwrap_err();
        eprintln!("{tv:?}: stale generation: {e}");
        assert!(e.is_abortable(), "{tv:?}: {e:?}");
        assert!(p.commit_transaction().await.unwrap_err().is_abortable());
        p.abort_transaction().await.unwrap();
        assert_eq!(
            stable_offsets(&check, &group, &input, &[0, 1]).await,
            vec![Ok(50), Ok(60)],
            "{tv:?}"
        );
        p.begin_transaction().await.unwrap();
        send_values(&p, &output, "t5", 0..10).await;
        p.commit_transaction().await.unwrap();
        p.close(Duration::from_secs(10)).await.unwrap();
    });
    assert_no_hanging(broker, &[&output]);
}

#[test]
fn offsets_commit_only_with_the_transaction_tv2() {
    offsets_with_transaction(TransactionVersion::V2);
}

#[test]
fn offsets_commit_only_with_the_transaction_tv1() {
    offsets_with_transaction(TransactionVersion::V1);
}

/// Two producers with one transactional.id: the second's init fences the
/// first, whose open transaction is aborted; the first fails fatally and
/// none of its records (before or after the fence) is ever visible.
fn zombie(tv: TransactionVersion) {
    let broker = &txn_broker(tv).broker;
    let topic = unique_topic("txn-zombie");
    broker.create_topic(&topic, 2).unwrap();
    let txn_id = unique_topic("txn-zombie-id");
    runtime().block_on(async {
        let old = producer(&broker.bootstrap(), &[("transactional.id", &txn_id)]).await;
        old.init_transactions().await.unwrap();
        old.begin_transaction().await.unwrap();
        send_values(&old, &topic, "zombie-before", 0..50).await;

        let new = producer(&broker.bootstrap(), &[("transactional.id", &txn_id)]).await;
        new.init_transactions().await.unwrap();

        // The zombie keeps going: its later sends fail, its commit fails.
        let mut late = Vec::new();
        for i in 0..50u32 {
            let v = format!("zombie-after-{i}");
            match old
                .send(ProducerRecord::new(&topic).with_value(v.as_bytes()))
                .await
            {
                Ok(f) => late.push(f),
                Err(e) => {
                    assert!(e.is_fatal() || e.is_abortable(), "{e:?}");
                    break;
                }
            }
        }
        let commit = old.commit_transaction().await.unwrap_err();
        eprintln!("{tv:?}: zombie commit: {commit}");
        for f in late {
            assert!(f.await.is_err(), "{tv:?}: a zombie record was acknowledged");
        }
        if !commit.is_fatal() {
            assert!(commit.is_abortable(), "{commit:?}");
            let abort = old.abort_transaction().await.unwrap_err();
            eprintln!("{tv:?}: zombie abort: {abort}");
            assert!(abort.is_fatal(), "{tv:?}: {abort:?}");
        }
        let again = old.begin_transaction().await.unwrap_err();
        assert!(again.is_fatal(), "{tv:?}: fatal is sticky: {again:?}");
        assert!(old
            .send(ProducerRecord::new(&topic).with_value(b"x"))
            .await
            .unwrap_err()
            .is_fatal());

        new.begin_transaction().await.unwrap();
        send_values(&new, &topic, "fresh", 0..50).await;
        new.commit_transaction().await.unwrap();
        new.close(Duration::from_secs(10)).await.unwrap();
        let _ = old.close(Duration::from_secs(5)).await;
    });
    let got = read_committed(broker, &topic, 50, Duration::from_secs(60));
    assert_eq!(got.len(), 50);
    assert!(
        got.iter()
            .all(|r| r.value.as_deref().unwrap().starts_with("fresh")),
        "{tv:?}: a zombie record is visible"
    );
    assert_no_hanging(broker, &[&topic]);
}

#[test]
fn zombie_is_fenced_fatally_tv2() {
    zombie(TransactionVersion::V2);
}

#[test]
fn zombie_is_fenced_fatally_tv1() {
    zombie(TransactionVersion::V1);
}

/// A transaction left open past `transaction.timeout.ms`: the coordinator
/// aborts it and bumps the epoch; the late commit fails and none of its
/// records is ever visible; the next transaction succeeds.
///
/// What a 4.3.1 broker allows (checked here): under transaction.version 2 the
/// late EndTxn(commit) gets INVALID_TXN_STATE and InitProducerId with the old
/// identity is accepted (KIP-588: it is the coordinator's last epoch), so the
/// *same* producer recovers by aborting. Under transaction.version 1 the
/// EndTxn gets PRODUCER_FENCED and so would that InitProducerId (the timeout
/// fence resets the coordinator's last epoch): the producer is fatally
/// failed and a new one with the same transactional.id carries on.
fn timeout(tv: TransactionVersion) {
    let broker = &txn_broker(tv).broker;
    let topic = unique_topic("txn-timeout");
    broker.create_topic(&topic, 1).unwrap();
    let txn_id = unique_topic("txn-timeout-id");
    runtime().block_on(async {
        let check = net_client(&broker.bootstrap()).await;
        let props = [
            ("transactional.id", txn_id.as_str()),
            ("transaction.timeout.ms", "2000"),
        ];
        let p = producer(&broker.bootstrap(), &props).await;
        p.init_transactions().await.unwrap();
        p.begin_transaction().await.unwrap();
        send_values(&p, &topic, "stalled", 0..20).await;
        let before = describe_transaction(&check, &txn_id).await;
        assert_eq!(before.0, "Ongoing");
        // This binary's broker looks for expired transactions every second
        // (10 s by default).
        let deadline = std::time::Instant::now() + Duration::from_secs(40);
        let after = loop {
            let d = describe_transaction(&check, &txn_id).await;
            if d.0 == "CompleteAbort" {
                break d;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "never timed out: {d:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        assert!(
            after.2 > before.2,
            "{tv:?}: the timeout bumps the epoch: {after:?}"
        );
        let late = p.commit_transaction().await.unwrap_err();
        eprintln!("{tv:?}: late commit: {late}");
        let next = match tv {
            TransactionVersion::V2 => {
                assert!(late.is_abortable(), "{late:?}");
                p.abort_transaction().await.unwrap();
                p
            }
            TransactionVersion::V1 => {
                assert!(late.is_fatal(), "{late:?}");
                assert!(p.begin_transaction().await.unwrap_err().is_fatal());
                let _ = p.close(Duration::from_secs(5)).await;
                let fresh = producer(&broker.bootstrap(), &props).await;
                fresh.init_transactions().await.unwrap();
                fresh
            }
        };
        next.begin_transaction().await.unwrap();
        send_values(&next, &topic, "next", 0..20).await;
        next.commit_transaction().await.unwrap();
        next.close(Duration::from_secs(10)).await.unwrap();
    });
    let got = read_committed(broker, &topic, 20, Duration::from_secs(60));
    assert_eq!(got.len(), 20);
    assert!(
        got.iter()
            .all(|r| r.value.as_deref().unwrap().starts_with("next")),
        "{tv:?}: a record of the timed-out transaction is visible"
    );
    assert_no_hanging(broker, &[&topic]);
}

#[test]
fn open_past_transaction_timeout_tv2() {
    timeout(TransactionVersion::V2);
}

#[test]
fn open_past_transaction_timeout_tv1() {
    timeout(TransactionVersion::V1);
}

/// T6 with a *frozen* zombie (issue 16 item 7): the old producer's Produce
/// is held in flight (by a chaos proxy on the listener only the zombie
/// uses) while a new producer with the same `transactional.id` initializes
/// and opens its own transaction; then the held Produce is released and
/// reaches the broker with the old epoch. Nothing of the zombie may be
/// visible (neither what it wrote before the fence nor the held request),
/// and the new transaction must be intact: both judges read exactly the
/// new producer's values `0..50`, ours until the topic is quiet.
fn frozen_zombie(tv: TransactionVersion) {
    use exactly_protocol_tests::judge::exactly_once;
    use exactly_protocol_tests::proxy::{ChaosProxy, Faults};

    // The zombie bootstraps through ZOMBIE, which the broker advertises at
    // the proxy's port; PLAINTEXT (the new producer's, and the broker's own
    // for transaction markers) stays direct.
    let shared = txn_broker(tv);
    let broker = &shared.broker;
    let reserved = shared
        .zombie_port
        .lock()
        .unwrap()
        .take()
        .expect("ZOMBIE's reserved port is for one frozen zombie per broker");
    let topic = unique_topic("txn-frozen");
    broker.create_topic(&topic, 1).unwrap();
    let txn_id = unique_topic("txn-frozen-id");
    let rt = runtime();
    let zombie_listener = broker.listener_address(1, "ZOMBIE").unwrap();
    rt.block_on(async {
        let proxy = ChaosProxy::start_on(reserved, &zombie_listener)
            .await
            .unwrap();
        let old = producer(&proxy.addr(), &[("transactional.id", &txn_id)]).await;
        old.init_transactions().await.unwrap();
        old.begin_transaction().await.unwrap();
        let mut before = Vec::new();
        for i in 0..50u32 {
            let v = (1_000 + i).to_string();
            before.push(
                old.send(ProducerRecord::new(&topic).with_value(v.as_bytes()))
                    .await
                    .unwrap(),
            );
        }
        old.flush().await.unwrap();
        for f in before {
            f.await.unwrap();
        }

        // Freeze: the zombie's next Produce stays in the proxy.
        let up_before = proxy.bytes().0;
        proxy.set_faults(Faults {
            hold: true,
            ..Faults::default()
        });
        let mut held = Vec::new();
        for i in 0..50u32 {
            let v = (2_000 + i).to_string();
            held.push(
                old.send(ProducerRecord::new(&topic).with_value(v.as_bytes()))
                    .await
                    .unwrap(),
            );
        }
        // Give the zombie's sender time to write the request (into the hold).
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(
            proxy.bytes().0,
            up_before,
            "{tv:?}: the held Produce must not have reached the broker"
        );

        // The new producer fences the zombie and opens its own transaction.
        let new = producer(&broker.bootstrap(), &[("transactional.id", &txn_id)]).await;
        new.init_transactions().await.unwrap();
        new.begin_transaction().await.unwrap();
        let send_new = |range: std::ops::Range<u32>| {
            let new = &new;
            let topic = &topic;
            async move {
                let mut fs = Vec::new();
                for i in range {
                    fs.push(
                        new.send(ProducerRecord::new(topic).with_value(i.to_string().as_bytes()))
                            .await
                            .unwrap(),
                    );
                }
                new.flush().await.unwrap();
                for f in fs {
                    f.await.unwrap();
                }
            }
        };
        send_new(0..25).await;

        // Thaw: the held Produce (old epoch) lands inside the new
        // transaction's lifetime.
        proxy.set_faults(Faults::default());
        proxy.release();
        for f in held {
            let r = tokio::time::timeout(Duration::from_secs(60), f)
                .await
                .expect("the zombie's held delivery never resolved");
            assert!(
                r.is_err(),
                "{tv:?}: the zombie's held Produce was acknowledged"
            );
        }
        assert!(
            proxy.bytes().0 > up_before,
            "{tv:?}: the held Produce was never delivered to the broker"
        );
        let commit = old.commit_transaction().await.unwrap_err();
        eprintln!("{tv:?}: frozen zombie's commit: {commit}");

        send_new(25..50).await;
        new.commit_transaction().await.unwrap();
        new.close(Duration::from_secs(10)).await.unwrap();
        let _ = old.close(Duration::from_secs(5)).await;
    });
    exactly_once(
        broker,
        &rt,
        &topic,
        1,
        50,
        &format!("T6 frozen zombie {tv:?}"),
    );
    assert_no_hanging(broker, &[&topic]);
}

#[test]
fn frozen_zombie_held_produce_released_after_fence_tv2() {
    frozen_zombie(TransactionVersion::V2);
}

#[test]
fn frozen_zombie_held_produce_released_after_fence_tv1() {
    frozen_zombie(TransactionVersion::V1);
}
