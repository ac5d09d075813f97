//! The exactly-once oracle of the reliability tests (RELIABILITY.md): an
//! output topic must hold the values `0..n`, each exactly once, read
//! `read_committed` both by our consumer (`exactly::check::verify_numbered`)
//! and by the reference Java `VerifiableConsumer`, so that a bug shared by
//! our producer and our consumer cannot hide.

use std::time::Duration;

use exactly::check;

use crate::{unique_topic, Broker};

/// Panics (naming `label`) unless both judges read each of `0..n` exactly
/// once from `output` (`partitions` partitions). Runs our consumer on `rt`.
pub fn exactly_once(
    broker: &Broker,
    rt: &tokio::runtime::Runtime,
    output: &str,
    partitions: i32,
    n: u64,
    label: &str,
) {
    let v = rt
        .block_on(check::verify_numbered(
            &broker.bootstrap(),
            output,
            partitions,
            n,
            Duration::from_secs(60),
            |_| {},
        ))
        .unwrap_or_else(|e| panic!("{label}: our consumer failed: {e}"));
    println!("{label}: ours {v:?}");
    assert!(
        v.is_exactly_once(),
        "{label}: not exactly once by our consumer: {v:?}"
    );
    let java = broker
        .java()
        .verifiable_consumer(
            output,
            &unique_topic("judge"),
            n as usize,
            &[("isolation.level", "read_committed")],
            Duration::from_secs(180),
        )
        .unwrap_or_else(|e| panic!("{label}: VerifiableConsumer: {e}"));
    let mut values: Vec<u64> = java
        .iter()
        .map(|r| {
            r.value
                .as_deref()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{label}: Java read a non-numeric value {:?}", r.value))
        })
        .collect();
    values.sort_unstable();
    let total = values.len();
    values.dedup();
    println!("{label}: Java read {total}, {} distinct", values.len());
    assert_eq!(total as u64, n, "{label}: Java count");
    assert_eq!(values, (0..n).collect::<Vec<_>>(), "{label}: Java values");
}
