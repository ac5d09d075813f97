//! Choosing a partition for a record (KIP-480 sticky, KIP-794 uniform
//! sticky).
//!
//! Keyed records go where the Java client sends them: Kafka's murmur2 of the
//! key bytes, made positive by masking the sign bit, modulo the partition
//! count. That compatibility matters: records with one key written by Java
//! and by `exactly` land in one partition, so per-key order holds across
//! clients. Unkeyed records stick to one partition until about `batch.size`
//! bytes went there, then move to another chosen uniformly at random, which
//! fills batches instead of spraying tiny ones.

/// Kafka's murmur2 (the 32-bit MurmurHash2 variant with Kafka's seed), over
/// the key bytes exactly as the Java client's `Utils.murmur2` computes it.
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let len = data.len();
    let mut h: u32 = SEED ^ (len as u32);
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let rest = chunks.remainder();
    if rest.len() >= 3 {
        h ^= u32::from(rest[2]) << 16;
    }
    if rest.len() >= 2 {
        h ^= u32::from(rest[1]) << 8;
    }
    if !rest.is_empty() {
        h ^= u32::from(rest[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The partition of a keyed record among `num_partitions` (> 0), as the
/// Java client's built-in partitioner computes it.
pub fn partition_for_key(key: &[u8], num_partitions: u32) -> i32 {
    let positive = (murmur2(key) & 0x7fff_ffff) as u32;
    (positive % num_partitions.max(1)) as i32
}

/// How records without an explicit partition are spread (`partitioner`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PartitionerKind {
    /// Keyed: murmur2 like the Java client. Unkeyed: uniform sticky.
    #[default]
    Default,
    /// Ignore keys: every record is placed uniform-sticky
    /// (`partitioner.ignore.keys=true`).
    UniformSticky,
    /// Ignore keys: each record to the next partition in turn.
    RoundRobin,
}

impl std::str::FromStr for PartitionerKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "default" | "murmur2" | "consistent_random" => Ok(Self::Default),
            "uniform_sticky" | "sticky" => Ok(Self::UniformSticky),
            "round_robin" => Ok(Self::RoundRobin),
            other => Err(format!(
                "unknown partitioner `{other}` (expected default, uniform_sticky or round_robin)"
            )),
        }
    }
}

/// Per-topic state of the sticky and round-robin strategies.
#[derive(Debug, Clone, Default)]
struct TopicState {
    sticky: Option<i32>,
    bytes_in_sticky: usize,
    next_round_robin: u32,
}

/// Chooses partitions. One per producer; not shared across threads.
#[derive(Debug, Clone)]
pub struct Partitioner {
    kind: PartitionerKind,
    batch_size: usize,
    rng: XorShift64,
    topics: std::collections::HashMap<String, TopicState>,
}

impl Partitioner {
    /// A partitioner switching sticky partitions after `batch_size` bytes;
    /// `seed` feeds its random choices (any value; tests fix it).
    pub fn new(kind: PartitionerKind, batch_size: usize, seed: u64) -> Self {
        Self {
            kind,
            batch_size: batch_size.max(1),
            rng: XorShift64::new(seed),
            topics: std::collections::HashMap::new(),
        }
    }

    /// The partition for a record of `size` encoded bytes with `key`, on a
    /// topic of `num_partitions` partitions (> 0).
    pub fn partition(
        &mut self,
        topic: &str,
        key: Option<&[u8]>,
        size: usize,
        num_partitions: u32,
    ) -> i32 {
        let n = num_partitions.max(1);
        if let (PartitionerKind::Default, Some(key)) = (self.kind, key) {
            return partition_for_key(key, n);
        }
        let state = match self.topics.get_mut(topic) {
            Some(s) => s,
            None => self.topics.entry(topic.to_owned()).or_default(),
        };
        if self.kind == PartitionerKind::RoundRobin {
            let p = state.next_round_robin % n;
            state.next_round_robin = state.next_round_robin.wrapping_add(1);
            return p as i32;
        }
        let current = match state.sticky {
            Some(p) if (p as u32) < n && state.bytes_in_sticky < self.batch_size => p,
            previous => {
                let mut p = (self.rng.next() % u64::from(n)) as i32;
                // Move away from the partition we just filled, if there is a choice.
                if n > 1 && Some(p) == previous {
                    p = (p + 1 + (self.rng.next() % u64::from(n - 1)) as i32) % n as i32;
                }
                state.sticky = Some(p);
                state.bytes_in_sticky = 0;
                p
            }
        };
        state.bytes_in_sticky += size;
        current
    }
}

/// A small deterministic PRNG (xorshift64*), enough to spread partitions.
#[derive(Debug, Clone)]
struct XorShift64(u64);

impl XorShift64 {
    fn new(seed: u64) -> Self {
        Self(seed | 1)
    }
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values printed by the Java client's `Utils.murmur2` and its built-in
    /// partitioner (Kafka 4.3.1, 7 partitions) for the same UTF-8 keys.
    #[test]
    fn murmur2_matches_the_java_client() {
        let cases: [(&str, i32, i32); 9] = [
            ("", 275_646_681, 2),
            ("a", -1_563_381_124, 5),
            ("21", -973_932_308, 3),
            ("foobar", -790_332_482, 0),
            ("abc", 479_470_107, 4),
            ("a-little-bit-long-string", -985_981_536, 1),
            ("0", 971_027_396, 3),
            ("9999", -289_709_352, 0),
            ("key-12345", -952_703_915, 0),
        ];
        for (key, hash, partition) in cases {
            assert_eq!(murmur2(key.as_bytes()), hash, "murmur2({key:?})");
            assert_eq!(partition_for_key(key.as_bytes(), 7), partition, "{key:?}");
        }
    }

    #[test]
    fn keyed_records_ignore_stickiness() {
        let mut p = Partitioner::new(PartitionerKind::Default, 100, 1);
        for _ in 0..10 {
            assert_eq!(p.partition("t", Some(b"abc"), 1000, 7), 4);
        }
    }

    #[test]
    fn unkeyed_records_stick_until_batch_size_then_move() {
        let mut p = Partitioner::new(PartitionerKind::Default, 100, 42);
        let first = p.partition("t", None, 60, 5);
        assert_eq!(
            p.partition("t", None, 30, 5),
            first,
            "90 < 100 bytes: same partition"
        );
        assert_eq!(
            p.partition("t", None, 30, 5),
            first,
            "the record that crosses still goes"
        );
        let next = p.partition("t", None, 10, 5);
        assert_ne!(next, first, "after batch.size bytes the partition changes");
    }

    #[test]
    fn sticky_spreads_uniformly_over_time() {
        let mut p = Partitioner::new(PartitionerKind::UniformSticky, 10, 7);
        let mut counts = [0u32; 4];
        for _ in 0..40_000 {
            counts[p.partition("t", Some(b"ignored"), 10, 4) as usize] += 1;
        }
        for c in counts {
            assert!((8_000..12_000).contains(&c), "uneven spread {counts:?}");
        }
    }

    #[test]
    fn round_robin_cycles() {
        let mut p = Partitioner::new(PartitionerKind::RoundRobin, 10, 7);
        let got: Vec<i32> = (0..6).map(|_| p.partition("t", None, 1, 3)).collect();
        assert_eq!(got, vec![0, 1, 2, 0, 1, 2]);
    }

    #[test]
    fn partition_count_shrink_is_handled() {
        let mut p = Partitioner::new(PartitionerKind::Default, 1000, 3);
        for _ in 0..50 {
            let _ = p.partition("t", None, 1, 8);
        }
        for _ in 0..50 {
            assert!(p.partition("t", None, 1, 2) < 2);
        }
    }
}
