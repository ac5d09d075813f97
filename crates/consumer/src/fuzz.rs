//! Fuzz entry points (issue 16 item 4), shared by the cargo-fuzz targets in
//! `fuzz/consumer/` and a proptest here that runs them in every test run.
//! Each takes arbitrary bytes and checks invariants, panicking on a breach:
//!
//! - [`fetch_partition`]: one partition of a Fetch response through the
//!   parser with a random last stable offset (including -1, 0 and
//!   `i64::MAX`) and a random aborted-transactions list, under both
//!   isolation levels (KIP-98): records come in strictly increasing offset
//!   order, at or after the fetch offset and before the next fetch offset,
//!   never at or past a non-negative LSO under `read_committed`; the next
//!   fetch offset never goes backwards;
//! - [`group_protocol`]: a member's metadata and assignment (the consumer
//!   protocol of KIP-429) decode to an error or to a value that encodes and
//!   decodes back to itself.

use std::sync::Arc;

use bytes::Bytes;
use exactly_codec::record::DecodeOptions;

use crate::fetch::parse::{parse_partition, PartitionData};
use crate::fetch::read_committed::AbortedTxn;
use crate::group::protocol::{Assignment, Subscription};

fn take<const N: usize>(data: &mut &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    let n = N.min(data.len());
    out[..n].copy_from_slice(&data[..n]);
    *data = &data[n..];
    out
}

/// See the module docs. Input: a selector byte, the fetch offset, the LSO,
/// the aborted list (count, then producer id and first offset per entry),
/// then the records section.
pub fn fetch_partition(mut data: &[u8]) {
    let [sel] = take::<1>(&mut data);
    let fetch_offset = i64::from(u16::from_be_bytes(take::<2>(&mut data)));
    let raw_lso = i64::from_be_bytes(take::<8>(&mut data));
    let last_stable_offset = match sel & 3 {
        0 => -1,
        1 => raw_lso.rem_euclid(64),
        2 => i64::MAX,
        _ => raw_lso,
    };
    let [n] = take::<1>(&mut data);
    let aborted: Vec<AbortedTxn> = (0..n % 8)
        .map(|_| {
            let [pid, first] = take::<2>(&mut data);
            AbortedTxn {
                producer_id: i64::from(pid % 4) - 1,
                first_offset: i64::from(first % 64),
            }
        })
        .collect();
    let records = Bytes::copy_from_slice(data);
    let topic: Arc<str> = Arc::from("t");
    let opts = DecodeOptions {
        max_decompressed_size: 1 << 20,
        verify_crc: sel & 4 != 0,
    };
    for read_committed in [true, false] {
        let p = parse_partition(
            &topic,
            0,
            PartitionData {
                fetch_offset,
                records: records.clone(),
                aborted: read_committed.then(|| aborted.clone()),
                last_stable_offset,
            },
            opts,
        );
        assert!(p.next_offset >= fetch_offset, "the position went back");
        let mut last = fetch_offset - 1;
        for r in &p.records {
            assert!(r.offset() > last, "offsets not increasing");
            assert!(r.offset() < p.next_offset, "a record past the next offset");
            if read_committed && last_stable_offset >= 0 {
                assert!(r.offset() < last_stable_offset, "a record past the LSO");
            }
            last = r.offset();
        }
        if let Some(f) = &p.fault {
            assert!(f.offset >= fetch_offset && f.offset <= p.next_offset);
        }
    }
}

/// See the module docs. The first byte picks metadata or assignment.
pub fn group_protocol(data: &[u8]) {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    if sel & 1 == 0 {
        if let Ok(s) = Subscription::decode(rest) {
            assert_eq!(Subscription::decode(&s.encode()).ok(), Some(s));
        }
    } else if let Ok(a) = Assignment::decode(rest) {
        assert_eq!(Assignment::decode(&a.encode()).ok(), Some(a));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use proptest::prelude::*;

    use super::*;
    use crate::fetch::parse::tests::LogBuilder;

    /// A real log (data, markers, LZ4) behind a random header, cut at a
    /// random length, sometimes with a flipped byte: most inputs reach the
    /// batch and read_committed logic rather than failing at the first
    /// length.
    fn seed_log(pids: &[u8]) -> Vec<u8> {
        let mut log = LogBuilder::new();
        for &p in pids {
            let pid = i64::from(p % 3);
            match p % 5 {
                0 => {
                    log.marker(pid, p & 8 != 0);
                }
                1 => {
                    log.data_with(
                        -1,
                        false,
                        exactly_codec::Compression::Lz4,
                        &["a".into(), "b".into()],
                    );
                }
                _ => {
                    log.data(pid, &["x", "y"]);
                }
            }
        }
        log.bytes().to_vec()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn fetch_partition_holds_its_invariants(
            header in proptest::collection::vec(any::<u8>(), 0..40),
            pids in proptest::collection::vec(any::<u8>(), 0..12),
            cut in any::<prop::sample::Index>(),
            flip in proptest::option::of((any::<prop::sample::Index>(), 1..=255u8)),
        ) {
            let mut log = seed_log(&pids);
            if let Some((i, x)) = flip {
                if !log.is_empty() {
                    let i = i.index(log.len());
                    log[i] ^= x;
                }
            }
            let keep = cut.index(log.len() + 1);
            let mut input = header;
            input.resize(12, 0);
            // A fetch offset within the log, and 4 aborted transactions.
            input[1] = 0;
            input[2] %= 16;
            input[11] = 4;
            input.extend_from_slice(&[1, 0, 2, 3, 0, 9, 1, 20]);
            input.extend_from_slice(&log[..keep]);
            fetch_partition(&input);
        }

        #[test]
        fn group_protocol_decodes_or_refuses(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            group_protocol(&data);
        }
    }

    /// The committed seeds of both cargo-fuzz targets pass here too.
    #[test]
    fn committed_fuzz_seeds_pass() {
        let root =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/consumer/corpus");
        let mut n = 0;
        for (dir, run) in [
            ("fetch_partition", fetch_partition as fn(&[u8])),
            ("group_protocol", group_protocol),
        ] {
            for e in std::fs::read_dir(root.join(dir)).unwrap() {
                run(&std::fs::read(e.unwrap().path()).unwrap());
                n += 1;
            }
        }
        assert!(n >= 30, "{n} seeds");
    }

    #[test]
    fn group_protocol_seeds() {
        let mut s = Subscription {
            topics: vec!["t".into(), "u".into()],
            ..Subscription::default()
        };
        s.owned.insert("t".into(), vec![0, 1]);
        let a = Assignment {
            partitions: s.owned.clone(),
            ..Assignment::default()
        };
        for (sel, body) in [(0u8, s.encode()), (1, a.encode())] {
            let mut input = vec![sel];
            input.extend_from_slice(&body);
            group_protocol(&input);
            for cut in 0..input.len() {
                group_protocol(&input[..cut]);
            }
        }
    }
}
