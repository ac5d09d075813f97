//! # exactly-producer
//!
//! The async idempotent and transactional producer of `exactly`.
//!
//! Status: only the partitioner (Java-compatible murmur2 for keyed records,
//! KIP-794 uniform sticky for unkeyed ones) has landed. The accumulator and
//! the driver of the `exactly-txn` core over `exactly-net` connections are
//! not written yet; there is no `Producer` type to use.

pub mod partitioner;

pub use partitioner::{murmur2, partition_for_key, Partitioner, PartitionerKind};
