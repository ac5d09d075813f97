//! Producer configuration and what the driver learned about the brokers.
//!
//! The transaction protocol is chosen per transaction, at `begin`, from the
//! broker's finalized `transaction.version` feature and the negotiated API
//! versions (KIP-890 part 2): the core never switches flow mid-transaction.

/// Settings the core needs. Durations are milliseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `transactional.id`; `None` makes an idempotent-only producer.
    pub transactional_id: Option<String>,
    /// `transaction.timeout.ms`, sent in InitProducerId.
    pub transaction_timeout_ms: i32,
    /// `delivery.timeout.ms`: how long a batch may wait for its outcome,
    /// from `enqueue` on. A batch whose request is in flight expires only
    /// once that request's outcome is reported (the driver's request timeout
    /// bounds the wait), so an expiry always knows whether the batch may have
    /// been written.
    pub delivery_timeout_ms: u64,
    /// `retry.backoff.ms`: the first backoff of a produce retry, and the fixed
    /// backoff of a coordinator request retry.
    pub retry_backoff_ms: u64,
    /// `retry.backoff.max.ms`: cap of the exponential produce backoff.
    pub retry_backoff_max_ms: u64,
    /// Backoff after CONCURRENT_TRANSACTIONS on AddPartitionsToTxn while no
    /// partition is in the transaction yet (the Java client uses 20 ms).
    pub concurrent_transactions_backoff_ms: u64,
    /// At most this many batches per partition carry a sequence without an
    /// acknowledgement (1..=5: the broker remembers the last 5 batches).
    pub max_in_flight_per_partition: usize,
    /// Before the first request that opens a transaction on the coordinator
    /// within `concurrent_transactions_backoff_ms` of the previous EndTxn's
    /// answer, ask the coordinator (DescribeTransactions) whether that
    /// transaction has finished writing its markers, and hold the request
    /// until it has. See `ProducerCore`'s module docs ("Completion probe").
    pub probe_completion: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            transactional_id: None,
            transaction_timeout_ms: 60_000,
            delivery_timeout_ms: 120_000,
            retry_backoff_ms: 100,
            retry_backoff_max_ms: 1_000,
            concurrent_transactions_backoff_ms: 20,
            max_in_flight_per_partition: 5,
            probe_completion: true,
        }
    }
}

impl Config {
    /// A transactional configuration with defaults for the rest.
    pub fn transactional(id: impl Into<String>) -> Self {
        Self {
            transactional_id: Some(id.into()),
            ..Self::default()
        }
    }

    /// The in-flight limit actually used (clamped to 1..=5).
    pub(crate) fn in_flight_limit(&self) -> usize {
        self.max_in_flight_per_partition.clamp(1, 5)
    }
}

/// What the driver learned from ApiVersions: the finalized
/// `transaction.version` and the highest version negotiated for each API the
/// core uses (the minimum of the client's and the broker's maximum).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BrokerInfo {
    /// Finalized `transaction.version` feature level (0 when absent).
    pub transaction_version: i16,
    /// Negotiated Produce version.
    pub produce: i16,
    /// Negotiated InitProducerId version (3+ lets the client bump its epoch,
    /// KIP-360; 4+ adds PRODUCER_FENCED and timeout recovery, KIP-588).
    pub init_producer_id: i16,
    /// Negotiated EndTxn version (5+ returns the bumped epoch, KIP-890).
    pub end_txn: i16,
    /// Negotiated TxnOffsetCommit version (3+ carries group metadata,
    /// KIP-447; 5+ adds the offsets partition implicitly, KIP-890).
    pub txn_offset_commit: i16,
}

impl BrokerInfo {
    /// A modern broker with `transaction.version` = 2 (Kafka 4.x defaults).
    pub const fn v2() -> Self {
        Self {
            transaction_version: 2,
            produce: 12,
            init_producer_id: 5,
            end_txn: 5,
            txn_offset_commit: 5,
        }
    }

    /// A broker with the v1 transaction protocol (`transaction.version` < 2)
    /// but KIP-360/588 epoch bumping.
    pub const fn v1() -> Self {
        Self {
            transaction_version: 1,
            produce: 11,
            init_producer_id: 4,
            end_txn: 4,
            txn_offset_commit: 4,
        }
    }

    /// The flow a transaction begun now would use: v2 only when the feature
    /// is finalized at 2+ *and* Produce v12, EndTxn v5 and TxnOffsetCommit v5
    /// were negotiated (a client capped below them keeps the explicit flow).
    pub fn flow(&self) -> Flow {
        if self.transaction_version >= 2
            && self.produce >= 12
            && self.end_txn >= 5
            && self.txn_offset_commit >= 5
        {
            Flow::V2
        } else {
            Flow::V1
        }
    }

    /// Whether InitProducerId accepts the current id and epoch (KIP-360).
    pub fn can_bump_epoch(&self) -> bool {
        self.init_producer_id >= 3
    }
}

impl Default for BrokerInfo {
    fn default() -> Self {
        Self::v2()
    }
}

/// The transaction protocol a transaction runs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Flow {
    /// Explicit AddPartitionsToTxn / AddOffsetsToTxn; the epoch changes only
    /// on a bump (KIP-98, KIP-360). Transactional Produce must use v11 or
    /// lower, EndTxn v4 or lower, TxnOffsetCommit v4 or lower.
    V1,
    /// Implicit partition add by Produce v12+ and TxnOffsetCommit v5+; EndTxn
    /// v5+ bumps the epoch of every transaction (KIP-890 part 2).
    V2,
}
