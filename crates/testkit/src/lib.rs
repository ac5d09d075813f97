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
//! - [`rng`]: the seedable RNG the schedules draw from.
//!
//! No C, no runtime, no broker: the only dependency is the sans-IO core.
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
pub mod rng;
pub mod sim;
