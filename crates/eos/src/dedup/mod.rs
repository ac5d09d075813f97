//! The idempotent consumer: skipping records already processed, by a
//! message id, for inputs that may carry duplicates.
//!
//! ## When it is needed
//!
//! A [`Session`](crate::Session) reading `read_committed` and writing in
//! transactions (KIP-98, offsets with KIP-447) never processes one input
//! record twice *into its output*: the output, the state and the input
//! offsets commit together. That guarantee is about offsets, though. It
//! cannot tell that two records at *different offsets* are the same
//! message, which is what an at-least-once upstream produces:
//!
//! - a producer without idempotence (`enable.idempotence=false`, or a
//!   client that has none) retrying a send whose acknowledgement was lost;
//! - an application that re-sends after a timeout or a crash (the classic
//!   dual write: publish, crash before recording that it did, publish again
//!   on restart);
//! - a replication or CDC tool that replays a range after a failover;
//! - a consumer whose side effects are outside Kafka and not transactional
//!   (an HTTP call, an e-mail): offsets committed after the effect, a crash
//!   in between, the record comes again.
//!
//! For these, each message carries an id (a header such as `message-id`,
//! or something derivable from the key or value), and the consumer keeps
//! the ids it has processed: the "idempotent consumer" pattern.
//!
//! ## When transactions make it unnecessary
//!
//! If the input was written by an idempotent producer (the default in this
//! library and in Java since 3.0: the broker drops a retry's duplicate by
//! producer id and sequence) or inside transactions (our
//! [`Session`](crate::Session), the outbox relay of `exactly-postgres`,
//! Kafka Streams with `exactly_once_v2`), and is consumed by a session, no
//! duplicate can reach the output: do not pay for a seen-set. Equally, a
//! [`sink`](crate::sink) that stores the offsets in the database's own
//! transaction needs none for redeliveries of the *same* record.
//!
//! ## What this module gives
//!
//! - [`Dedup`]: the per-partition bounded seen-sets (at most
//!   [`SeenLimits::max_entries`] ids, none older than
//!   [`SeenLimits::max_age`] measured by record timestamps; the oldest id
//!   is forgotten first), keyed by a [`MessageId`] (a header or a
//!   function), persisted through a [`SeenStore`]. Use it from any loop:
//!   check a record with [`Dedup::check`], do the work, then
//!   [`Dedup::mark`] it (or [`Dedup::admit`], check-and-mark in one step,
//!   where the marking is transactional with the work).
//! - [`Deduplicate`]: a session [`Handler`](crate::Handler) wrapper that
//!   drops duplicates before the inner handler sees them and keeps the
//!   seen-set in the session's [`State`](crate::State), i.e. in the state's
//!   compacted changelog topic, written in the same transaction as the
//!   output and the offsets. A duplicate arriving after a crash, a restart
//!   or a rebalance is skipped; an aborted transaction forgets the ids it
//!   marked, so their records are processed on the retry.
//!
//! The bound is a trade-off the application makes: a duplicate arriving
//! after its id was forgotten is processed again. Size it to the longest
//! gap between a message and its duplicate that the upstream can produce
//! (a retry: seconds; a replay after failover: as far back as it replays).

mod handler;
mod seen;
mod store;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use exactly_consumer::ConsumerRecord;
use exactly_producer::TopicPartition;

pub use handler::{DedupCounters, Deduplicate};
pub use store::{MemorySeenStore, SeenMark, SeenStore, StateSeenStore, STATE_KEY_PREFIX};

use seen::SeenSet;

/// A function finding a record's message id.
pub type IdFn = Arc<dyn Fn(&ConsumerRecord) -> Option<Bytes> + Send + Sync>;

/// How a record's message id is found.
#[derive(Clone)]
pub enum MessageId {
    /// The value of the (last) header with this key.
    Header(String),
    /// A function of the record (`None`: the record has no id).
    Function(IdFn),
}

impl MessageId {
    /// The id in header `name`.
    pub fn header(name: impl Into<String>) -> Self {
        Self::Header(name.into())
    }

    /// The id computed by `f`.
    pub fn function(f: impl Fn(&ConsumerRecord) -> Option<Bytes> + Send + Sync + 'static) -> Self {
        Self::Function(Arc::new(f))
    }

    /// The record's id, if it has one.
    pub fn of(&self, record: &ConsumerRecord) -> Option<Bytes> {
        match self {
            Self::Header(name) => record
                .headers()
                .iter()
                .rev()
                .find(|h| h.key() == name.as_bytes())
                .and_then(|h| h.value().cloned()),
            Self::Function(f) => f(record),
        }
    }
}

impl fmt::Debug for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Header(h) => f.debug_tuple("Header").field(h).finish(),
            Self::Function(_) => f.write_str("Function(..)"),
        }
    }
}

/// Bounds of each partition's seen-set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenLimits {
    /// At most this many ids per partition (the oldest goes first).
    pub max_entries: usize,
    /// Ids whose record is older than the partition's newest record by more
    /// than this are forgotten (`None`: no age bound).
    pub max_age: Option<Duration>,
}

impl Default for SeenLimits {
    /// 100,000 ids per partition, no age bound.
    fn default() -> Self {
        Self {
            max_entries: 100_000,
            max_age: None,
        }
    }
}

/// What [`Dedup::check`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Not seen (within the bounds): process it. Carries the id.
    New(Bytes),
    /// Seen before: skip it.
    Duplicate(Bytes),
    /// The record has no id: it cannot be deduplicated (processed).
    NoId,
}

/// Per-partition bounded seen-sets over [`SeenStore`]s.
///
/// ```
/// use exactly_eos::dedup::{Dedup, MemorySeenStore, MessageId, SeenLimits, Verdict};
/// use exactly_consumer::ConsumerRecord;
///
/// fn handle(dedup: &mut Dedup, store: &mut MemorySeenStore, r: &ConsumerRecord) {
///     let tp = r.topic_partition();
///     match dedup.check(&tp, store, r) {
///         Verdict::Duplicate(_) => {} // processed before: skip
///         Verdict::New(id) => {
///             // ... the side effect ...
///             dedup.mark(&tp, store, id, r.timestamp());
///         }
///         Verdict::NoId => { /* ... the side effect, undeduplicated ... */ }
///     }
/// }
/// let mut dedup = Dedup::new(MessageId::header("message-id"), SeenLimits::default());
/// # let _ = (&mut dedup, handle);
/// ```
#[derive(Debug)]
pub struct Dedup {
    id: MessageId,
    limits: SeenLimits,
    parts: HashMap<TopicPartition, SeenSet>,
}

impl Dedup {
    /// Seen-sets keyed by `id`, bounded by `limits`.
    pub fn new(id: MessageId, limits: SeenLimits) -> Self {
        Self {
            id,
            limits,
            parts: HashMap::new(),
        }
    }

    fn set(&mut self, partition: &TopicPartition, store: &mut dyn SeenStore) -> &mut SeenSet {
        let limits = &self.limits;
        self.parts
            .entry(partition.clone())
            .or_insert_with(|| SeenSet::load(store, limits))
    }

    /// Whether `record` (of `partition`, whose seen-set is in `store`) was
    /// seen. Loads the partition's set from `store` on first use.
    pub fn check(
        &mut self,
        partition: &TopicPartition,
        store: &mut dyn SeenStore,
        record: &ConsumerRecord,
    ) -> Verdict {
        let Some(id) = self.id.of(record) else {
            return Verdict::NoId;
        };
        if self.set(partition, store).contains(&id) {
            Verdict::Duplicate(id)
        } else {
            Verdict::New(id)
        }
    }

    /// Records `id` (from a record with `timestamp`) as processed.
    pub fn mark(
        &mut self,
        partition: &TopicPartition,
        store: &mut dyn SeenStore,
        id: Bytes,
        timestamp: i64,
    ) {
        let limits = self.limits.clone();
        self.set(partition, store)
            .insert(store, &limits, id, timestamp);
    }

    /// [`check`](Dedup::check), and [`mark`](Dedup::mark) a new id at once:
    /// for a store written in the same transaction as the work.
    pub fn admit(
        &mut self,
        partition: &TopicPartition,
        store: &mut dyn SeenStore,
        record: &ConsumerRecord,
    ) -> Verdict {
        let v = self.check(partition, store, record);
        if let Verdict::New(id) = &v {
            self.mark(partition, store, id.clone(), record.timestamp());
        }
        v
    }

    /// Drops the in-memory sets of `partitions`: the next use reloads from
    /// the store (after an abort rolled the store back, or a revoke).
    pub fn forget(&mut self, partitions: &[TopicPartition]) {
        for p in partitions {
            self.parts.remove(p);
        }
    }

    /// Ids held for `partition` (in memory; 0 if not loaded).
    pub fn len(&self, partition: &TopicPartition) -> usize {
        self.parts.get(partition).map_or(0, SeenSet::len)
    }
}

#[cfg(test)]
mod tests;
