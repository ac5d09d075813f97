//! Helpers shared by the `producer_*` tests: runtime, producers, and the
//! oracles (the Java `VerifiableConsumer` and `DumpLogSegments`).

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use exactly_producer::{Producer, ProducerError};
use exactly_protocol_tests::{Broker, ConsumedRecord, DumpedBatch};

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A producer on `bootstrap` with `props` on top.
pub async fn producer(bootstrap: &str, props: &[(&str, &str)]) -> Producer {
    try_producer(bootstrap, props).await.unwrap()
}

pub async fn try_producer(
    bootstrap: &str,
    props: &[(&str, &str)],
) -> Result<Producer, ProducerError> {
    let mut all = vec![("bootstrap.servers", bootstrap)];
    all.extend_from_slice(props);
    Producer::from_properties(all).await
}

/// Every record of `topic` a `read_committed` Java consumer sees, reading
/// until `expected` arrived or `timeout` passed.
pub fn read_committed(
    broker: &Broker,
    topic: &str,
    expected: usize,
    timeout: Duration,
) -> Vec<ConsumedRecord> {
    broker
        .java()
        .verifiable_consumer(
            topic,
            &format!("{topic}-reader"),
            expected,
            &[("isolation.level", "read_committed")],
            timeout,
        )
        .unwrap()
}

/// The data batches (control batches left out) of one partition on node 1,
/// as `DumpLogSegments` prints them.
pub fn dumped_batches(broker: &Broker, topic: &str, partition: i32) -> Vec<DumpedBatch> {
    let files = broker.segment_files(1, topic, partition).unwrap();
    broker
        .java()
        .dump_log_segments(&files)
        .unwrap()
        .into_iter()
        .filter(|b| !b.is_control)
        .collect()
}

/// Checks that, per (producer id, epoch), the batches' sequences are
/// contiguous in offset order, starting at 0. Returns the number of
/// (producer id, epoch) runs seen.
pub fn assert_contiguous_sequences(batches: &[DumpedBatch], what: &str) -> usize {
    let mut runs: BTreeMap<(i64, i16), Vec<&DumpedBatch>> = BTreeMap::new();
    for b in batches {
        assert!(
            b.producer_id >= 0,
            "{what}: batch without producer id: {b:?}"
        );
        runs.entry((b.producer_id, b.producer_epoch))
            .or_default()
            .push(b);
    }
    for ((pid, epoch), bs) in &runs {
        let mut expect = 0i64;
        for b in bs {
            assert_eq!(
                i64::from(b.base_sequence),
                expect,
                "{what}: producer {pid} epoch {epoch}: gap or overlap at offset {} ({b:?})",
                b.base_offset
            );
            assert_eq!(
                i64::from(b.last_sequence) - i64::from(b.base_sequence) + 1,
                b.count,
                "{what}: {b:?}"
            );
            expect = i64::from(b.last_sequence) + 1;
        }
    }
    runs.len()
}
