//! # exactly-testkit
//!
//! Test exactly-once Kafka code without a broker. This crate holds the
//! pieces `exactly` tests itself with, public so that a service built on
//! `exactly` can run its own code against them:
//!
//! - [`broker`]: the simulated broker: partitions with producer state and
//!   sequence checks (KIP-98), the transaction coordinator under both
//!   transaction versions (KIP-98/447 and KIP-890), transaction timeouts
//!   (KIP-588), epoch exhaustion (KIP-360), and the group offsets a
//!   transaction commits. Sans-IO: `now` is an argument, so it runs on a
//!   virtual clock.
//! - [`sim`]: seeded schedules of the real producer core
//!   ([`exactly_txn::ProducerCore`]) against that broker, with the fault
//!   knobs of [`sim::Faults`] (lost, delayed, duplicated and reordered
//!   responses, connection cuts, coordinator moves, leader changes,
//!   fencing), each checked for exactly-once. Deterministic per seed.
//! - [`oracle`]: the exactly-once checker over a `read_committed` read of
//!   an output (intent headers written by a copy: aborted-visible, torn,
//!   duplicate and out-of-order records), the one `exactly verify` and the
//!   reliability suite use.
//! - `cluster` (feature `net`): the simulated broker on the wire, served
//!   over in-memory connections through `exactly_net::Dialer`, so the real
//!   clients run against it in-process on tokio's virtual clock.
//! - [`rng`]: the seedable RNG the schedules draw from.
//! - `strategies` (feature `proptest`, on by default): proptest strategies
//!   for valid record batches, markers and frames, near-valid hostile
//!   batches (one field corrupted at a time), and fault knobs.
//! - feature `arbitrary` (off by default): `arbitrary::Arbitrary` for the
//!   same specs (`BatchSpec`, `RecordSpec`, `MarkerSpec`, `HostileBatch`,
//!   `Faults`), so a `cargo fuzz` target takes a valid or near-valid record
//!   batch as its input (docs/TESTKIT.md, "Fuzzing with the testkit's
//!   generators").
//!
//! No C, no runtime, no broker: the sans-IO core, plus the codec and
//! proptest with the `proptest` feature.
//!
//! ```
//! use exactly_testkit::sim::Sim;
//!
//! // 200 seeded schedules; a failure names its seed, which replays alone.
//! for seed in 0..200 {
//!     Sim::new(seed).run().unwrap_or_else(|e| panic!("seed {seed}: {e}"));
//! }
//! ```

pub mod broker;
#[cfg(feature = "net")]
pub mod cluster;
pub mod oracle;
pub mod rng;
pub mod sim;
#[cfg(feature = "proptest")]
pub mod strategies;
