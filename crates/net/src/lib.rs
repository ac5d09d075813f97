//! # exactly-net
//!
//! Tokio connections to Kafka brokers for `exactly`.
//!
//! What it does:
//! - one task per connection owns the socket and pipelines up to
//!   `max.in.flight.requests.per.connection` requests; responses are matched
//!   to requests by a FIFO checked against the correlation id, and a mismatch
//!   fails the connection ([`conn`]);
//! - every failed request says whether it may have reached the broker
//!   ([`Delivery::NotSent`] or [`Delivery::MaybeDelivered`]);
//! - the handshake: ApiVersions (KIP-35, KIP-511), SASL PLAIN, SCRAM and
//!   OAUTHBEARER (KIP-43, KIP-152, KIP-84, KIP-255), TLS with rustls and a
//!   pure-Rust crypto provider (no C): graviola where the CPU runs it, else
//!   RustCrypto, or one of the user's own ([`TlsCryptoProvider`]);
//! - the cluster view: bootstrap, Metadata with topic ids and leader epochs
//!   (KIP-320, KIP-516), FindCoordinator (KIP-699 batching), a connection pool
//!   per broker with reconnect backoff, and throttling (KIP-219);
//! - counters ([`Metrics`]) and `tracing` spans per request.
//!
//! ```no_run
//! # async fn demo() -> Result<(), exactly_net::NetError> {
//! use exactly_codec::messages::MetadataRequest;
//! use exactly_net::{Client, NetConfig, SendOptions};
//!
//! let config = NetConfig::from_properties([
//!     ("bootstrap.servers", "127.0.0.1:9092"),
//!     ("request.timeout.ms", "30000"),
//! ])?;
//! let client = Client::connect(config).await?;
//! // Route by partition leader; the route carries the cache generation.
//! let route = client.leader("orders", 0).await?;
//! let conn = client.connection(route.leader).await?;
//! // Typed request at the negotiated version...
//! let md = conn.send(&MetadataRequest::default()).await?;
//! // ...or at a version the caller caps.
//! let md9 = conn
//!     .send_with(&MetadataRequest::default(), SendOptions { version: Some(9), timeout: None })
//!     .await?;
//! # let _ = (md, md9);
//! // On a failure, `delivery()` tells NotSent from MaybeDelivered, and a
//! // stale-metadata error code goes back with its route:
//! // client.on_partition_error(code, &route);
//! # Ok(()) }
//! ```
//!
//! What it retries, and nothing else (each with `retry.backoff.ms` doubling
//! up to `retry.backoff.max.ms`, for at most `request.timeout.ms`):
//! - [`Client::find_coordinators`] and [`Client::coordinator`]: the lookup
//!   codes COORDINATOR_NOT_AVAILABLE, COORDINATOR_LOAD_IN_PROGRESS,
//!   NOT_COORDINATOR and REQUEST_TIMED_OUT
//!   ([`Client::find_coordinators_once`] is the same lookup with no retry);
//! - [`Client::leader`] and [`Client::wait_for_leaders`]: a Metadata refresh
//!   while a partition has no leader yet;
//! - connecting: a broker whose connection attempts keep failing is tried
//!   again after `reconnect.backoff.ms` (doubling up to
//!   `reconnect.backoff.max.ms`), not before.
//!
//! What it does not: decide what to do about Kafka error codes in produce or
//! fetch responses (that is `exactly-txn`'s classifier), or retry any other
//! request (a sent request is sent once; callers own their retry policy, and
//! the net layer tells them what happened).

pub mod admin;
mod backoff;
pub mod cluster;
pub mod config;
pub mod conn;
mod error;
pub mod metadata;
mod metrics;
mod response;
mod sasl;
mod tls;

pub use cluster::{Client, Coordinator, CoordinatorType};
pub use config::{ConfigError, DialFuture, Dialer, NetConfig, NetConfigBuilder};
pub use conn::{Connection, Connector, SendOptions};
pub use error::{Delivery, Disconnect, NetError};
pub use metrics::{Metrics, MetricsSnapshot};
pub use response::ResponseMeta;
pub use tls::{crypto_provider, graviola_supported, TlsCryptoProvider};
