//! The bounded seen-set of one input partition: which message ids were
//! already processed, at most `max_entries` of them and none older than
//! `max_age` (by record timestamp), the oldest forgotten first. Pure data:
//! every change is mirrored into a [`SeenStore`] by the caller's store
//! handle, so the set can be rebuilt from the store after a restart.

use std::collections::{HashMap, VecDeque};

use bytes::Bytes;

use super::store::{SeenMark, SeenStore};
use super::SeenLimits;

/// The seen ids of one partition, in the order they were first seen.
#[derive(Debug, Default)]
pub(crate) struct SeenSet {
    by_id: HashMap<Bytes, SeenMark>,
    /// Ids in insertion order (`seq` ascending).
    order: VecDeque<Bytes>,
    next_seq: u64,
    /// The newest timestamp seen: ages are measured from it, so replaying
    /// old input ages the set the same way the first run did.
    newest: i64,
}

impl SeenSet {
    /// Rebuilds the set from what `store` holds (in `seq` order), trimming
    /// it to `limits` (the store gets the trims).
    pub(crate) fn load(store: &mut dyn SeenStore, limits: &SeenLimits) -> Self {
        let mut marks = store.load();
        marks.sort_by_key(|(_, m)| m.seq);
        let mut set = SeenSet::default();
        for (id, mark) in marks {
            set.next_seq = set.next_seq.max(mark.seq.saturating_add(1));
            set.newest = set.newest.max(mark.timestamp);
            set.order.push_back(id.clone());
            set.by_id.insert(id, mark);
        }
        set.trim(store, limits);
        set
    }

    pub(crate) fn len(&self) -> usize {
        self.by_id.len()
    }

    pub(crate) fn contains(&self, id: &[u8]) -> bool {
        self.by_id.contains_key(id)
    }

    /// Marks `id` seen at `timestamp` (a no-op if it already is), then
    /// forgets what the limits no longer allow. Returns how many ids were
    /// forgotten.
    pub(crate) fn insert(
        &mut self,
        store: &mut dyn SeenStore,
        limits: &SeenLimits,
        id: Bytes,
        timestamp: i64,
    ) -> usize {
        if self.by_id.contains_key(&id[..]) {
            return 0;
        }
        let mark = SeenMark {
            seq: self.next_seq,
            timestamp,
        };
        self.next_seq += 1;
        self.newest = self.newest.max(timestamp);
        store.put(id.clone(), mark);
        self.order.push_back(id.clone());
        self.by_id.insert(id, mark);
        self.trim(store, limits)
    }

    fn trim(&mut self, store: &mut dyn SeenStore, limits: &SeenLimits) -> usize {
        let mut forgotten = 0;
        while let Some(front) = self.order.front() {
            let too_many = self.by_id.len() > limits.max_entries;
            let too_old = match (limits.max_age, self.by_id.get(&front[..])) {
                (Some(age), Some(m)) => {
                    let age_ms = i64::try_from(age.as_millis()).unwrap_or(i64::MAX);
                    m.timestamp < self.newest.saturating_sub(age_ms)
                }
                _ => false,
            };
            if !too_many && !too_old {
                break;
            }
            if let Some(id) = self.order.pop_front() {
                self.by_id.remove(&id[..]);
                store.remove(&id);
                forgotten += 1;
            }
        }
        forgotten
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dedup::MemorySeenStore;
    use std::time::Duration;

    fn limits(max_entries: usize, max_age_ms: Option<u64>) -> SeenLimits {
        SeenLimits {
            max_entries,
            max_age: max_age_ms.map(Duration::from_millis),
        }
    }

    #[test]
    fn the_oldest_id_goes_first_when_full_and_the_store_follows() {
        let l = limits(3, None);
        let mut store = MemorySeenStore::default();
        let mut s = SeenSet::default();
        for (i, id) in ["a", "b", "c"].iter().enumerate() {
            assert_eq!(s.insert(&mut store, &l, Bytes::from(*id), i as i64), 0);
        }
        // A repeat changes nothing (it does not refresh its place).
        assert_eq!(s.insert(&mut store, &l, Bytes::from("a"), 10), 0);
        assert_eq!(s.insert(&mut store, &l, Bytes::from("d"), 11), 1);
        assert!(!s.contains(b"a"));
        assert!(s.contains(b"b") && s.contains(b"c") && s.contains(b"d"));
        assert_eq!(s.len(), 3);
        let mut ids: Vec<_> = store.load().into_iter().map(|(id, _)| id).collect();
        ids.sort();
        assert_eq!(ids, [Bytes::from("b"), Bytes::from("c"), Bytes::from("d")]);
    }

    #[test]
    fn ids_older_than_the_age_bound_are_forgotten() {
        let l = limits(100, Some(1_000));
        let mut store = MemorySeenStore::default();
        let mut s = SeenSet::default();
        s.insert(&mut store, &l, Bytes::from("t0"), 0);
        s.insert(&mut store, &l, Bytes::from("t500"), 500);
        assert_eq!(s.insert(&mut store, &l, Bytes::from("t1000"), 1_000), 0);
        // 1 ms past the bound for t0 only.
        assert_eq!(s.insert(&mut store, &l, Bytes::from("t1001"), 1_001), 1);
        assert!(!s.contains(b"t0"));
        assert!(s.contains(b"t500"));
        assert_eq!(store.load().len(), 3);
    }

    #[test]
    fn a_reload_keeps_the_order_and_continues_the_sequence() {
        let l = limits(3, None);
        let mut store = MemorySeenStore::default();
        let mut s = SeenSet::default();
        for (i, id) in ["a", "b", "c"].iter().enumerate() {
            s.insert(&mut store, &l, Bytes::from(*id), i as i64);
        }
        let mut again = SeenSet::load(&mut store, &l);
        assert_eq!(again.len(), 3);
        // "a" is still the oldest after the reload.
        assert_eq!(again.insert(&mut store, &l, Bytes::from("d"), 3), 1);
        assert!(!again.contains(b"a") && again.contains(b"d"));
        // A reload under tighter limits trims the store too.
        let small = SeenSet::load(&mut store, &limits(1, None));
        assert_eq!(small.len(), 1);
        assert!(small.contains(b"d"));
        assert_eq!(store.load().len(), 1);
    }
}
