//! # exactly-admin
//!
//! Administration of a Kafka cluster, over `exactly-net`'s connections
//! ([`exactly_net::Client`]): everything an operator of an exactly-once
//! pipeline asks when it stalls, without a JVM.
//!
//! - topics: create (CreateTopics, KIP-590 forwarding), delete (DeleteTopics),
//!   add partitions (CreatePartitions, KIP-195), describe configs
//!   (DescribeConfigs, KIP-226) — [`topics`];
//! - the cluster: brokers and controller (DescribeCluster, KIP-700), all
//!   topics with leaders and ISR (Metadata) — [`cluster`];
//! - offsets per partition: earliest, latest, by timestamp (KIP-79) and the
//!   last stable offset (ListOffsets under read_committed, KIP-98) —
//!   [`offsets`];
//! - consumer groups: list (KIP-518 state filters), describe with members and
//!   assignments, committed offsets and lag, delete committed offsets
//!   (OffsetDelete, KIP-496) — [`groups`];
//! - transactions (KIP-664): list with state filters, describe, describe the
//!   producers of a partition, find hanging transactions, and abort one the
//!   way `kafka-transactions.sh abort` does (WriteTxnMarkers to the
//!   partition leader with the producer id, epoch and coordinator epoch that
//!   DescribeProducers reports) — [`txn`].
//!
//! Every request goes at the highest version both this client (the codec's
//! `CLIENT_APIS`) and the broker support; an API or version the codec cannot
//! decode is refused at negotiation ([`exactly_codec::CodecError::UnsupportedVersion`]),
//! never sent and misread. Nothing here retries a request: each call sends
//! once per broker it needs and reports what came back.
//!
//! ```no_run
//! # async fn demo() -> Result<(), exactly_admin::AdminError> {
//! use exactly_admin::{Admin, OffsetSpec};
//!
//! let admin = Admin::connect_with([("bootstrap.servers", "127.0.0.1:9092")]).await?;
//! // Which transaction holds the last stable offset of orders-0 back?
//! let lso = admin.list_offsets(&[("orders", 0)], OffsetSpec::LastStable).await?;
//! let hanging = admin
//!     .find_hanging(exactly_admin::HangingScope::Topic("orders".into(), None), None)
//!     .await?;
//! for h in &hanging {
//!     admin.abort_transaction(&h.topic, h.partition, h.producer.current_txn_start_offset).await?;
//! }
//! # let _ = lso; Ok(()) }
//! ```

mod error;
mod send;

pub mod cluster;
pub mod groups;
pub mod offsets;
pub mod topics;
pub mod txn;

pub use cluster::{ClusterDescription, TopicListing};
pub use error::AdminError;
pub use exactly_net::admin::NewTopic;
pub use groups::{GroupDescription, GroupListing, MemberDescription, PartitionLag};
pub use offsets::{ListedOffset, OffsetSpec};
pub use topics::ConfigEntry;
pub use txn::{
    HangingReason, HangingScope, HangingTransaction, ProducerState, TransactionDescription,
    TransactionListing,
};

use exactly_net::{Client, NetConfig};

/// An admin client: a thin layer of typed calls over one
/// [`exactly_net::Client`] (its connection pool, metadata cache and
/// coordinator cache).
#[derive(Clone)]
pub struct Admin {
    client: Client,
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin").finish_non_exhaustive()
    }
}

impl Admin {
    /// Connects with `config`.
    pub async fn connect(config: NetConfig) -> Result<Admin, AdminError> {
        Ok(Admin {
            client: Client::connect(config).await?,
        })
    }

    /// Connects with Kafka properties (`bootstrap.servers`,
    /// `security.protocol`, `sasl.*`, `ssl.*`, ...).
    pub async fn connect_with<K, V>(
        props: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Admin, AdminError>
    where
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let config = NetConfig::from_properties(props)?;
        Admin::connect(config).await
    }

    /// An admin over an existing client (sharing its connections).
    pub fn from_client(client: Client) -> Admin {
        Admin { client }
    }

    /// The underlying client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Closes every connection.
    pub fn close(&self) {
        self.client.close();
    }
}
