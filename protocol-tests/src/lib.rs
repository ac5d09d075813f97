//! # exactly-protocol-tests
//!
//! The harness that gives every integration test a real Apache Kafka broker
//! (4.3.1, or the release `EXACTLY_KAFKA_VERSION` selects: 3.9.2 to 4.4.0 are
//! the compatibility matrix, see [`jars`]), started by the test itself from
//! Maven Central jars (JDK 17+ and Maven needed; the library needs neither),
//! and the reference Java tools to judge our client with.
//!
//! ```no_run
//! use exactly_protocol_tests::{Broker, TransactionVersion};
//!
//! // One broker per test binary and transaction protocol, started on first use.
//! let broker = Broker::shared(TransactionVersion::V2).unwrap();
//! broker.create_topic("orders", 3).unwrap();
//! let report = broker
//!     .java()
//!     .verifiable_producer("orders", 100, &[("acks", "all")], std::time::Duration::from_secs(60))
//!     .unwrap();
//! assert_eq!(report.acked, 100);
//! ```
//!
//! A test that cannot start its broker fails with the reason (missing Java or
//! Maven, a port clash, the broker's own log tail); it never skips.
//! No JVM outlives the test process: see [`process`].

pub mod broker;
pub mod child;
pub mod cluster_proxies;
pub mod config;
pub mod error;
pub mod jars;
pub mod java;
pub mod java_member;
pub mod judge;
pub mod postgres;
pub mod probe;
pub mod process;
pub mod proxy;
pub mod rng;
pub mod rotation;
pub mod security;

pub use broker::{Broker, DetachedState};
pub use cluster_proxies::{ClusterProxies, ListenerKind};
pub use config::{BrokerConfig, ExtraListener, TransactionVersion};
pub use error::{HarnessError, Result};
pub use java::{
    AckedRecord, ConsumedRecord, CopierOptions, DumpedBatch, JavaTools, ProducerReport,
};
pub use java_member::JavaMember;
pub use postgres::Postgres;
pub use probe::ProbeClient;

/// A topic name unique within this process, for tests sharing a broker.
pub fn unique_topic(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}
