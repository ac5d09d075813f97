//! The cluster client against the fake broker: bootstrap, metadata routing,
//! generations, reconnects.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::atomic::Ordering;

use exactly_net::{Client, NetConfig};
use support::{FakeBroker, Mode};

async fn client(fb: &FakeBroker) -> Client {
    let cfg = NetConfig::from_properties([
        (
            "bootstrap.servers",
            format!("127.0.0.1:1,{}", fb.addr).as_str(),
        ),
        ("reconnect.backoff.ms", "10"),
        ("reconnect.backoff.max.ms", "50"),
    ])
    .unwrap();
    Client::connect(cfg).await.unwrap()
}

#[tokio::test]
async fn bootstrap_skips_dead_server_and_routes_by_leader() {
    let fb = FakeBroker::start(Mode::Normal).await;
    let c = client(&fb).await;
    let r = c.leader("orders", 3).await.unwrap();
    assert_eq!((r.leader, r.leader_epoch), (1, 7));
    let view = c.view();
    assert_eq!(
        view.topic("orders").unwrap().partitions.len(),
        "orders".len()
    );
    assert!(view.route("orders", 99).is_none());
    // A partition error that is not about metadata does not invalidate.
    assert!(!c.on_partition_error(exactly_codec::ErrorCode::InvalidProducerEpoch, &r));
    // A stale-metadata error from an old route is counted but ignored once
    // the cache is newer; from the current route it marks the cache stale.
    // An invalidation from an older generation does nothing...
    assert!(!c.invalidate_metadata(r.generation - 1));
    // ...one from the current generation makes the next lookup refresh.
    assert!(c.invalidate_metadata(r.generation));
    let r2 = c.leader("orders", 3).await.unwrap();
    assert!(r2.generation > r.generation);
    assert!(c.on_partition_error(exactly_codec::ErrorCode::NotLeaderOrFollower, &r2));
    let r3 = c.leader("orders", 3).await.unwrap();
    assert!(r3.generation > r2.generation);
    // The same error reported late, from the old route, changes nothing.
    c.on_partition_error(exactly_codec::ErrorCode::NotLeaderOrFollower, &r2);
    assert_eq!(
        c.leader("orders", 3).await.unwrap().generation,
        r3.generation
    );
    let codes = c.metrics_snapshot().errors_by_code;
    assert!(
        codes.contains(&(exactly_codec::ErrorCode::NotLeaderOrFollower, 2)),
        "{codes:?}"
    );
    let m = c.metrics_snapshot();
    assert!(
        m.connect_failures >= 1,
        "the dead bootstrap server was tried: {m:?}"
    );
}

#[tokio::test]
async fn reconnects_after_the_connection_dies() {
    let fb = FakeBroker::start(Mode::Normal).await;
    let c = client(&fb).await;
    let conn = c.connection(1).await.unwrap();
    let before = fb.state.connections.load(Ordering::SeqCst);
    conn.close();
    // The pooled connection is dead; the next call opens a new one.
    let mut again = c.connection(1).await.unwrap();
    while again.is_closed() {
        again = c.connection(1).await.unwrap();
    }
    assert!(!again.is_closed());
    c.refresh_metadata(&["x"]).await.unwrap();
    assert_eq!(fb.state.connections.load(Ordering::SeqCst), before + 1);
    assert_eq!(c.metrics_snapshot().reconnects, 1);
}
