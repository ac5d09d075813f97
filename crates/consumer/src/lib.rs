//! exactly-consumer (work in progress).

pub mod fetch;
pub mod record;

pub use exactly_txn::TopicPartition;
