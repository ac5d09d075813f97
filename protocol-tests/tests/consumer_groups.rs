//! Consumer groups on the real broker (one test binary, so one broker per
//! transaction version serves them all; the tests run one at a time):
//! - `cooperative`: cooperative rebalancing (KIP-429) under the
//!   exactly-once session, a second instance joining mid-stream;
//! - `follow`: following the cluster (`metadata.max.age.ms`): partitions
//!   added during a transactional copy, a deleted topic;
//! - `interop`: two Java `VerifiableConsumer`s and two of ours in one
//!   cooperative group;
//! - `fetch_cost` (`#[ignore]`d measurement, issue 12 item 5): what Fetch
//!   costs with 1,200 partitions, with and without KIP-227 fetch sessions.
//!
//! Measured on the 2-core CI machine (after the broker is up): cooperative
//! ~14-16 s per transaction version, partition growth ~14-16 s per version,
//! deleted topic ~1 s, interop ~12 s.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "consumer_groups/cooperative.rs"]
mod cooperative;
#[path = "consumer_groups/fetch_cost.rs"]
mod fetch_cost;
#[path = "consumer_groups/follow.rs"]
mod follow;
#[path = "consumer_groups/interop.rs"]
mod interop;

/// One test at a time: the machine has 2 cores and the judges run JVMs.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    // `RUST_LOG` shows the clients' logs when a run needs explaining.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}
