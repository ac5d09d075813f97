//! exactly-net recovers from broker crashes without user action: after a
//! single broker is killed with -9 and restarted, the same client serves
//! again; in a 3-node cluster, after the partition leader is killed, a
//! metadata refresh finds the new leader, and coordinators are found (in one
//! batched FindCoordinator) and re-found.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use exactly_net::admin::NewTopic;
use exactly_net::{Client, CoordinatorType, NetConfig};
use exactly_protocol_tests::{unique_topic, Broker, BrokerConfig};

/// These tests start their own brokers (1 and 3 JVMs): one at a time on a
/// 2-core machine.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn config(bootstrap: &str) -> NetConfig {
    NetConfig::from_properties([
        ("bootstrap.servers", bootstrap),
        ("request.timeout.ms", "5000"),
        ("reconnect.backoff.ms", "50"),
        ("reconnect.backoff.max.ms", "1000"),
        ("retry.backoff.ms", "100"),
    ])
    .unwrap()
}

#[test]
fn single_broker_kill9_and_restart_recovers_without_user_action() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let broker = Broker::start(BrokerConfig::default()).unwrap_or_else(|e| panic!("{e}"));
    let topic = unique_topic("recover");
    let rt = runtime();
    let client = rt.block_on(async {
        let client = Client::connect(config(&broker.bootstrap())).await.unwrap();
        client
            .ensure_topics(&[NewTopic::new(&topic, 2, 1)], Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(client.leader(&topic, 1).await.unwrap().leader, 1);
        client
    });
    broker.kill9(1).unwrap();
    rt.block_on(async {
        // In flight or new: a prompt, retriable failure, never a hang.
        let started = Instant::now();
        let e = client.refresh_metadata(&[&topic]).await.unwrap_err();
        assert!(e.is_retriable(), "{e:?}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
    });
    broker.restart(1).unwrap();
    rt.block_on(async {
        // The same client, no user action but asking again.
        let deadline = Instant::now() + Duration::from_secs(60);
        let route = loop {
            match client.leader(&topic, 1).await {
                Ok(r) => break r,
                Err(e) => {
                    assert!(e.is_retriable(), "{e:?}");
                    assert!(Instant::now() < deadline, "no recovery: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        };
        assert_eq!(route.leader, 1);
        let conn = client.connection(1).await.unwrap();
        assert!(!conn.is_closed());
        let m = client.metrics_snapshot();
        assert!(m.reconnects >= 1, "{m:?}");
        assert!(m.disconnects >= 1, "{m:?}");
    });
}

#[test]
fn three_nodes_leader_killed_metadata_finds_new_leader() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let broker = Broker::start(BrokerConfig::three_nodes()).unwrap_or_else(|e| panic!("{e}"));
    let topic = unique_topic("failover");
    let rt = runtime();
    let (client, old) = rt.block_on(async {
        let client = Client::connect(config(&broker.bootstrap())).await.unwrap();
        client
            .ensure_topics(
                &[NewTopic::new(&topic, 1, 3).with_config("min.insync.replicas", "2")],
                Duration::from_secs(60),
            )
            .await
            .unwrap();
        let route = client.leader(&topic, 0).await.unwrap();
        // Coordinators: two transactional ids and a group, one batched lookup
        // per key type where the broker supports FindCoordinator v4+.
        let found = client
            .find_coordinators(CoordinatorType::Transaction, &["txn-a", "txn-b"])
            .await
            .unwrap();
        assert_eq!(found.len(), 2);
        for (k, c) in &found {
            let c = c.as_ref().unwrap_or_else(|e| panic!("{k}: {e}"));
            assert!((1..=3).contains(&c.broker_id));
        }
        let g = client
            .coordinator(CoordinatorType::Group, "group-a")
            .await
            .unwrap();
        assert_eq!(
            client.cached_coordinator(CoordinatorType::Group, "group-a"),
            Some(g.clone())
        );
        // A stale invalidation (older generation) keeps the entry; the right
        // one drops it.
        assert!(!client.invalidate_coordinator(
            CoordinatorType::Group,
            "group-a",
            g.generation - 1
        ));
        assert!(client.invalidate_coordinator(CoordinatorType::Group, "group-a", g.generation));
        assert_eq!(
            client.cached_coordinator(CoordinatorType::Group, "group-a"),
            None
        );
        (client, route)
    });
    broker.kill9(old.leader).unwrap();
    rt.block_on(async {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut gen = old.generation;
        let new = loop {
            client.invalidate_metadata(gen);
            match client.leader(&topic, 0).await {
                Ok(r) if r.leader != old.leader => break r,
                Ok(r) => gen = r.generation,
                Err(e) => assert!(e.is_retriable(), "{e:?}"),
            }
            assert!(Instant::now() < deadline, "no new leader found");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert!(new.leader_epoch > old.leader_epoch, "{old:?} -> {new:?}");
        assert!(new.generation > old.generation);
        // The new leader answers.
        let conn = client.connection(new.leader).await.unwrap();
        assert_eq!(conn.broker_id(), Some(new.leader));
        // The group coordinator can be found again on a live broker.
        let g = client
            .coordinator(CoordinatorType::Group, "group-a")
            .await
            .unwrap();
        assert_ne!(g.broker_id, old.leader);
    });
}
