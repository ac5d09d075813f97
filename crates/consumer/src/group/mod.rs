//! Consumer groups, classic protocol (KIP-62 background heartbeats, KIP-345
//! static membership, KIP-394 member id on first join, KIP-447 group
//! metadata for transactional offset commits), eager rebalancing for
//! `range`/`roundrobin` and incremental cooperative rebalancing (KIP-429)
//! for `cooperative-sticky`.
//!
//! The KIP-848 `consumer` protocol is in `consumer_protocol`
//! (`group.protocol=consumer`); `membership.rs` dispatches between the two.

pub mod assignor;
pub(crate) mod consumer_protocol;
pub mod coordinator;
pub mod heartbeat;
pub mod join;
pub(crate) mod member;
pub(crate) mod membership;
pub mod protocol;
mod sticky;
