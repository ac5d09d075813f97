//! Fetching: the `read_committed` filter, the partition parser, and the
//! fetcher that keeps one Fetch in flight per broker.

pub mod fetcher;
pub mod parse;
pub mod plan;
pub mod read_committed;
pub(crate) mod session;

#[cfg(test)]
mod parse_model;
