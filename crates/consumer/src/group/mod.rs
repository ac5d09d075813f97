//! Consumer groups, classic protocol (KIP-62 background heartbeats, KIP-345
//! static membership, KIP-394 member id on first join, KIP-447 group
//! metadata for transactional offset commits), eager rebalancing for
//! `range`/`roundrobin` and incremental cooperative rebalancing (KIP-429)
//! for `cooperative-sticky`.

pub mod assignor;
pub mod coordinator;
pub mod heartbeat;
pub mod join;
pub(crate) mod member;
pub mod protocol;
mod sticky;
