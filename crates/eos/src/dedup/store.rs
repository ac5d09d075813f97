//! Where a partition's seen-set is kept: the [`SeenStore`] trait, the
//! in-memory [`MemorySeenStore`] and [`StateSeenStore`], which keeps it in
//! the session's per-partition [`State`] (so in the state's compacted
//! changelog topic, written in the same transaction as the output and the
//! input offsets).

use std::collections::HashMap;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::state::State;

/// When an id was first seen: its place in the partition's insertion order
/// and the timestamp of the record that carried it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeenMark {
    /// Insertion order within the partition (the oldest is forgotten first).
    pub seq: u64,
    /// The record's timestamp (ms since the epoch).
    pub timestamp: i64,
}

impl SeenMark {
    /// 16 bytes: `seq`, then `timestamp`, both big-endian.
    pub fn encode(&self) -> Bytes {
        let mut b = BytesMut::with_capacity(16);
        b.put_u64(self.seq);
        b.put_i64(self.timestamp);
        b.freeze()
    }

    /// The inverse of [`encode`](SeenMark::encode); `None` unless exactly 16
    /// bytes.
    pub fn decode(mut b: &[u8]) -> Option<Self> {
        if b.len() != 16 {
            return None;
        }
        Some(Self {
            seq: b.get_u64(),
            timestamp: b.get_i64(),
        })
    }
}

/// The persisted seen-set of one input partition. The deduplicator keeps
/// its bounded index in memory and mirrors every change here; after a
/// restart (or an abort, for a transactional store) it reloads from here.
pub trait SeenStore {
    /// Every id held, with its mark, in no particular order.
    fn load(&self) -> Vec<(Bytes, SeenMark)>;
    /// Records `id` as seen.
    fn put(&mut self, id: Bytes, mark: SeenMark);
    /// Forgets `id` (it fell out of the bounds).
    fn remove(&mut self, id: &Bytes);
}

/// A seen-set in memory: survives nothing but is the right store when the
/// duplicates to catch are close together (a producer's retries) and the
/// offsets are committed after processing, so a restart re-reads from the
/// last commit anyway.
#[derive(Debug, Default, Clone)]
pub struct MemorySeenStore {
    map: HashMap<Bytes, SeenMark>,
}

impl SeenStore for MemorySeenStore {
    fn load(&self) -> Vec<(Bytes, SeenMark)> {
        self.map.iter().map(|(k, v)| (k.clone(), *v)).collect()
    }
    fn put(&mut self, id: Bytes, mark: SeenMark) {
        self.map.insert(id, mark);
    }
    fn remove(&mut self, id: &Bytes) {
        self.map.remove(id);
    }
}

/// The prefix of the seen-set's keys in a session's [`State`]: a NUL byte,
/// so it sorts before and cannot be mistaken for printable user keys.
pub const STATE_KEY_PREFIX: &[u8] = b"\0dedup\0";

/// A seen-set kept in the session's [`State`] of the partition, under keys
/// [`STATE_KEY_PREFIX`]` + id`: written to the changelog in the same
/// transaction as the output and the input offsets, rolled back with an
/// abort, restored when the partition is assigned.
#[derive(Debug)]
pub struct StateSeenStore<'s, 'a> {
    state: &'s mut State<'a>,
}

impl<'s, 'a> StateSeenStore<'s, 'a> {
    /// The seen-set inside `state`.
    pub fn new(state: &'s mut State<'a>) -> Self {
        Self { state }
    }

    fn key(id: &[u8]) -> Bytes {
        let mut k = BytesMut::with_capacity(STATE_KEY_PREFIX.len() + id.len());
        k.put_slice(STATE_KEY_PREFIX);
        k.put_slice(id);
        k.freeze()
    }
}

impl SeenStore for StateSeenStore<'_, '_> {
    fn load(&self) -> Vec<(Bytes, SeenMark)> {
        self.state
            .entries()
            .into_iter()
            .filter(|(k, _)| k.starts_with(STATE_KEY_PREFIX))
            // A value that is not a mark was not written by us: skipped.
            .filter_map(|(k, v)| {
                SeenMark::decode(&v).map(|m| (k.slice(STATE_KEY_PREFIX.len()..), m))
            })
            .collect()
    }
    fn put(&mut self, id: Bytes, mark: SeenMark) {
        self.state.put(Self::key(&id), mark.encode());
    }
    fn remove(&mut self, id: &Bytes) {
        self.state.delete(Self::key(id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mark_round_trips_and_garbage_is_refused() {
        let m = SeenMark {
            seq: 7,
            timestamp: -3,
        };
        assert_eq!(SeenMark::decode(&m.encode()), Some(m));
        assert_eq!(SeenMark::decode(b"short"), None);
        assert_eq!(SeenMark::decode(&[0; 17]), None);
    }
}
