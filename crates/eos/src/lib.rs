//! # exactly-eos
//!
//! Exactly-once applications over `exactly`'s transactional producer and
//! `read_committed` consumer (KIP-98 transactions, KIP-447 offsets with
//! group metadata, KIP-890 where the broker finalizes
//! `transaction.version=2`).
//!
//! This crate is being built (issue 11); its modules land one by one.

pub mod sink;
