//! Stateful exactly-once: a key-value state per input partition, kept in a
//! compacted changelog topic written in the same transaction as the outputs
//! and the input offsets (the model of Kafka Streams' state stores, KIP-98
//! transactions making the three move together).
//!
//! - The handler reads and writes the state of the partition it processes
//!   through [`Context::state`](crate::Context::state). Writes go to an
//!   overlay of the open transaction; at commit each key written is sent
//!   once, with its last value (a null value for a delete), to the
//!   changelog partition numbered like the input partition, then the
//!   overlay is applied to the [`Store`].
//! - On abort the overlay is dropped: the store still holds the committed
//!   state, which matches the committed offsets the input is rewound to.
//! - When a partition is assigned, its store is rebuilt from the changelog,
//!   read `read_committed` from the beginning up to its end, before any of
//!   its records is processed. The restore first waits until no
//!   transaction is open on the changelog partition (last stable offset =
//!   high watermark): the previous owner's last commit may still have its
//!   changelog marker on the way while its input offsets are already
//!   stable. A crash anywhere therefore restores exactly the state of the
//!   last committed transaction, which is the one whose offsets the input
//!   resumes from.
//! - The changelog topic, `<group>-<state>-<input topic>-changelog`, is
//!   created (compacted, with the input's partition count) when first
//!   needed; an existing one with another partition count is an error.

//!
//! A running count per key:
//!
//! ```no_run
//! use exactly_eos::{Context, Handler, HandlerError, Session, StateConfig};
//! use exactly_consumer::ConsumerRecord;
//! use exactly_producer::ProducerRecord;
//!
//! struct Count;
//!
//! impl Handler for Count {
//!     async fn process(
//!         &mut self,
//!         ctx: &mut Context<'_>,
//!         records: &[ConsumerRecord],
//!     ) -> Result<(), HandlerError> {
//!         for r in records {
//!             let key = r.key().ok_or("a record without a key")?.clone();
//!             let state = ctx.state().ok_or("no state configured")?;
//!             let n = match state.get(&key) {
//!                 Some(c) => std::str::from_utf8(&c)?.parse::<u64>()? + 1,
//!                 None => 1,
//!             };
//!             state.put(key.clone(), n.to_string());
//!             ctx.send(ProducerRecord::new("counts").with_key(&key).with_value(n.to_string().as_bytes()))
//!                 .await?;
//!         }
//!         Ok(())
//!     }
//! }
//!
//! # async fn demo() -> Result<(), exactly_eos::SessionError> {
//! let mut b = Session::builder();
//! b.bootstrap_servers("127.0.0.1:9092")?;
//! b.group_id("counter")
//!     .transactional_id("counter-1")
//!     .input_topics(&["events"])
//!     .state(StateConfig::new("counts")); // changelog: counter-counts-events-changelog
//! b.build().await?.run(Count).await?;
//! # Ok(()) }
//! ```

mod restore;
mod store;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use bytes::Bytes;
use exactly_producer::TopicPartition;

pub use store::{MemoryStore, MemoryStores, Store, StoreFactory};

pub(crate) use restore::{ensure_changelogs, restore};

/// Settings of a session's state.
#[derive(Debug, Clone)]
pub struct StateConfig {
    pub(crate) name: String,
    pub(crate) factory: Arc<dyn StoreFactory>,
    pub(crate) replication_factor: i16,
}

impl StateConfig {
    /// State named `name` (part of the changelog topic's name) in
    /// [`MemoryStore`]s, changelog with the broker's default replication.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            factory: Arc::new(MemoryStores),
            replication_factor: -1,
        }
    }

    /// Stores made by `factory` instead of in memory.
    pub fn with_stores(mut self, factory: impl StoreFactory + 'static) -> Self {
        self.factory = Arc::new(factory);
        self
    }

    /// The changelog topic's replication factor (-1: the broker's default).
    pub fn with_replication_factor(mut self, replicas: i16) -> Self {
        self.replication_factor = replicas;
        self
    }

    /// The changelog topic of `input_topic` in group `group`.
    pub fn changelog_topic(&self, group: &str, input_topic: &str) -> String {
        format!("{group}-{}-{input_topic}-changelog", self.name)
    }
}

/// One input partition's state: the committed store and the open
/// transaction's writes over it.
#[derive(Debug)]
pub(crate) struct PartitionState {
    store: Box<dyn Store>,
    /// Writes of the open transaction: key -> new value (`None`: deleted).
    pending: BTreeMap<Bytes, Option<Bytes>>,
}

impl PartitionState {
    pub(crate) fn new(store: Box<dyn Store>) -> Self {
        Self {
            store,
            pending: BTreeMap::new(),
        }
    }

    /// Applies one changelog record (restore).
    pub(crate) fn restore(&mut self, key: Bytes, value: Option<Bytes>) {
        match value {
            Some(v) => self.store.put(key, v),
            None => self.store.delete(&key),
        }
    }
}

/// The state of the input partition being processed, as the handler sees
/// it: reads see this transaction's own writes; writes become visible to
/// others (and durable) only if the transaction commits.
#[derive(Debug)]
pub struct State<'a> {
    inner: &'a mut PartitionState,
}

impl State<'_> {
    /// The value of `key`.
    pub fn get(&self, key: &[u8]) -> Option<Bytes> {
        match self.inner.pending.get(key) {
            Some(v) => v.clone(),
            None => self.inner.store.get(key),
        }
    }

    /// Sets `key` to `value` (in the open transaction).
    pub fn put(&mut self, key: impl Into<Bytes>, value: impl Into<Bytes>) {
        self.inner.pending.insert(key.into(), Some(value.into()));
    }

    /// Removes `key` (in the open transaction).
    pub fn delete(&mut self, key: impl Into<Bytes>) {
        self.inner.pending.insert(key.into(), None);
    }

    /// Every committed entry with this transaction's writes over it, sorted
    /// by key.
    pub fn entries(&self) -> Vec<(Bytes, Bytes)> {
        let mut all: BTreeMap<Bytes, Bytes> = self.inner.store.entries().into_iter().collect();
        for (k, v) in &self.inner.pending {
            match v {
                Some(v) => all.insert(k.clone(), v.clone()),
                None => all.remove(k),
            };
        }
        all.into_iter().collect()
    }
}

/// A changelog record to send with the transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ChangelogRecord {
    pub(crate) topic: String,
    pub(crate) partition: i32,
    pub(crate) key: Bytes,
    pub(crate) value: Option<Bytes>,
}

/// The session's states, per assigned input partition.
#[derive(Debug)]
pub(crate) struct States {
    pub(crate) cfg: StateConfig,
    pub(crate) group: String,
    parts: HashMap<TopicPartition, PartitionState>,
}

impl States {
    pub(crate) fn new(cfg: StateConfig, group: String) -> Self {
        Self {
            cfg,
            group,
            parts: HashMap::new(),
        }
    }

    /// The handler's view of `partition`'s state (`None` if the partition
    /// has none: not assigned, or not restored).
    pub(crate) fn view(&mut self, partition: &TopicPartition) -> Option<State<'_>> {
        self.parts.get_mut(partition).map(|inner| State { inner })
    }

    /// Installs restored state.
    pub(crate) fn insert(&mut self, partition: TopicPartition, state: PartitionState) {
        self.parts.insert(partition, state);
    }

    /// The partitions left: their state goes (it is rebuilt from the
    /// changelog by their next owner).
    pub(crate) fn remove(&mut self, partitions: &[TopicPartition]) {
        for p in partitions {
            self.parts.remove(p);
        }
    }

    /// What the open transaction must write to the changelogs, one record
    /// per key written (its last value).
    pub(crate) fn changelog_records(&self) -> Vec<ChangelogRecord> {
        let mut out = Vec::new();
        for (tp, st) in &self.parts {
            let topic = self.cfg.changelog_topic(&self.group, &tp.topic);
            out.extend(st.pending.iter().map(|(k, v)| ChangelogRecord {
                topic: topic.clone(),
                partition: tp.partition,
                key: k.clone(),
                value: v.clone(),
            }));
        }
        out
    }

    /// The transaction committed: its writes join the stores.
    pub(crate) fn committed(&mut self) {
        for st in self.parts.values_mut() {
            for (k, v) in std::mem::take(&mut st.pending) {
                st.restore(k, v);
            }
        }
    }

    /// The transaction aborted: its writes are forgotten.
    pub(crate) fn rolled_back(&mut self) {
        for st in self.parts.values_mut() {
            st.pending.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn states() -> (States, TopicPartition) {
        let mut s = States::new(StateConfig::new("counts"), "app".into());
        let tp = TopicPartition::new("in", 2);
        s.insert(
            tp.clone(),
            PartitionState::new(Box::<MemoryStore>::default()),
        );
        (s, tp)
    }

    #[test]
    fn writes_stay_in_the_transaction_until_it_commits() {
        let (mut s, tp) = states();
        let mut v = s.view(&tp).unwrap();
        v.put("a", "1");
        v.put("b", "2");
        v.put("a", "3");
        v.delete("b");
        assert_eq!(v.get(b"a").as_deref(), Some(&b"3"[..]));
        assert_eq!(v.get(b"b"), None);
        // One changelog record per key, its last value; a delete is a
        // tombstone; the partition is the input's.
        let mut recs = s.changelog_records();
        recs.sort_by(|a, b| a.key.cmp(&b.key));
        assert_eq!(
            recs,
            [
                ChangelogRecord {
                    topic: "app-counts-in-changelog".into(),
                    partition: 2,
                    key: Bytes::from("a"),
                    value: Some(Bytes::from("3")),
                },
                ChangelogRecord {
                    topic: "app-counts-in-changelog".into(),
                    partition: 2,
                    key: Bytes::from("b"),
                    value: None,
                },
            ]
        );
        s.committed();
        assert!(s.changelog_records().is_empty());
        let v = s.view(&tp).unwrap();
        assert_eq!(v.entries(), [(Bytes::from("a"), Bytes::from("3"))]);
    }

    #[test]
    fn an_abort_forgets_the_transaction_s_writes() {
        let (mut s, tp) = states();
        s.view(&tp).unwrap().put("k", "1");
        s.committed();
        let mut v = s.view(&tp).unwrap();
        v.put("k", "2");
        v.put("x", "9");
        s.rolled_back();
        let v = s.view(&tp).unwrap();
        assert_eq!(v.get(b"k").as_deref(), Some(&b"1"[..]));
        assert_eq!(v.get(b"x"), None);
        assert!(s.changelog_records().is_empty());
        s.remove(std::slice::from_ref(&tp));
        assert!(s.view(&tp).is_none());
    }
}
