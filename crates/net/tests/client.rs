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

/// A `Dialer` replaces TCP for every connection (bootstrap and the broker
/// Metadata names): the client works over in-memory streams, which is how
/// exactly-testkit runs the real clients against a simulated broker.
#[tokio::test]
async fn a_dialer_replaces_tcp_for_every_connection() {
    let fb = FakeBroker::start(Mode::Normal).await;
    let dialed = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut b = NetConfig::builder();
    // Nothing listens there: only the dialer can reach the fake.
    b.bootstrap_servers(["sim.invalid:9092"])
        .dialer(fb.dialer(dialed.clone()));
    let c = Client::connect(b.build().unwrap()).await.unwrap();
    let r = c.leader("orders", 3).await.unwrap();
    assert_eq!(r.leader, 1);
    let conn = c.connection(1).await.unwrap();
    assert!(conn.addr().starts_with("127.0.0.1:"));
    let dialed = dialed.lock().unwrap().clone();
    assert_eq!(dialed.first().map(String::as_str), Some("sim.invalid:9092"));
    assert!(
        dialed.iter().any(|a| a.starts_with("127.0.0.1:")),
        "the broker Metadata names is dialed too: {dialed:?}"
    );
    assert_eq!(fb.state.connections.load(Ordering::SeqCst), dialed.len());
}

#[test]
fn a_dialer_cannot_be_combined_with_tls() {
    let mut b = NetConfig::builder();
    b.bootstrap_servers(["sim:9092"])
        .security_protocol(exactly_net::config::SecurityProtocol::Ssl)
        .dialer(exactly_net::Dialer::new(|_| {
            Box::pin(async { Err(std::io::Error::other("unused")) })
        }));
    assert!(b.build().is_err());
}
