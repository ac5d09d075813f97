//! Where a partition's committed state lives: the [`Store`] trait, and the
//! default [`MemoryStore`].
//!
//! The store holds only *committed* state: writes of the open transaction
//! wait in the session's overlay and reach the store when the transaction
//! commits, so an abort never has to undo anything here. The changelog
//! topic, not the store, is the source of truth: a store is filled from it
//! when its partition is assigned.
//!
//! Only an in-memory store ships so far. A persistent one (a pure-Rust
//! embedded database such as redb) pays off once it can skip most of the
//! restore, which needs a checkpoint of the changelog offset it holds
//! (Kafka Streams' `.checkpoint` file, written after each commit and trusted
//! only after a clean shutdown); that is not built yet, so a persistent
//! store would be re-read from the changelog anyway.

use std::collections::HashMap;

use bytes::Bytes;
use exactly_producer::TopicPartition;

/// Committed key-value state of one input partition.
pub trait Store: Send + Sync + std::fmt::Debug {
    /// The value of `key`.
    fn get(&self, key: &[u8]) -> Option<Bytes>;
    /// Sets `key` to `value`.
    fn put(&mut self, key: Bytes, value: Bytes);
    /// Removes `key`.
    fn delete(&mut self, key: &[u8]);
    /// Every entry, in no particular order.
    fn entries(&self) -> Vec<(Bytes, Bytes)>;
}

/// The default store: a hash map.
#[derive(Debug, Default, Clone)]
pub struct MemoryStore {
    map: HashMap<Bytes, Bytes>,
}

impl Store for MemoryStore {
    fn get(&self, key: &[u8]) -> Option<Bytes> {
        self.map.get(key).cloned()
    }
    fn put(&mut self, key: Bytes, value: Bytes) {
        self.map.insert(key, value);
    }
    fn delete(&mut self, key: &[u8]) {
        self.map.remove(key);
    }
    fn entries(&self) -> Vec<(Bytes, Bytes)> {
        self.map
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

/// Opens the store of an input partition (when it is assigned, before its
/// restore).
pub trait StoreFactory: Send + Sync + std::fmt::Debug {
    /// A store for `partition`, empty (it is filled from the changelog).
    fn open(&self, partition: &TopicPartition) -> Box<dyn Store>;
}

/// Makes [`MemoryStore`]s.
#[derive(Debug, Default, Clone, Copy)]
pub struct MemoryStores;

impl StoreFactory for MemoryStores {
    fn open(&self, _: &TopicPartition) -> Box<dyn Store> {
        Box::<MemoryStore>::default()
    }
}
