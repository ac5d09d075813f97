//! Hand-built record sets through the partition parser and its
//! `read_committed` filter; the model-based proptest is in `parse_model.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use exactly_codec::record::{
    encode_control_batch, set_base_offset, BatchBuilder, DecodeOptions, ProducerStamp, RecordError,
    RecordHeader as WireHeader,
};
use exactly_codec::Compression;

use super::*;

/// A partition log built batch by batch, as a broker would store it.
#[derive(Debug, Default, Clone)]
pub(crate) struct LogBuilder {
    pub(crate) buf: Vec<u8>,
    pub(crate) next: i64,
    /// (base offset, byte range) of every batch.
    pub(crate) batches: Vec<(i64, std::ops::Range<usize>)>,
    pub(crate) leader_epoch: i32,
}

impl LogBuilder {
    pub(crate) fn new() -> Self {
        Self {
            leader_epoch: 4,
            ..Self::default()
        }
    }

    fn push(&mut self, bytes: Bytes, count: i64) -> i64 {
        let base = self.next;
        let mut m = BytesMut::from(&bytes[..]);
        set_base_offset(&mut m, base).unwrap();
        m[12..16].copy_from_slice(&self.leader_epoch.to_be_bytes());
        let start = self.buf.len();
        self.buf.extend_from_slice(&m);
        self.batches.push((base, start..self.buf.len()));
        self.next += count;
        base
    }

    /// A data batch of `values`; `pid` -1 for a plain producer.
    pub(crate) fn data_with(
        &mut self,
        pid: i64,
        transactional: bool,
        codec: Compression,
        values: &[String],
    ) -> i64 {
        let mut b = BatchBuilder::new(codec);
        for v in values {
            b.append(1_000, Some(b"k"), Some(v.as_bytes()), &[])
                .unwrap();
        }
        let mut c = b.close().unwrap();
        let bytes = c.stamp(ProducerStamp {
            producer_id: pid,
            producer_epoch: if pid < 0 { -1 } else { 0 },
            base_sequence: if pid < 0 { -1 } else { 0 },
            transactional,
        });
        self.push(bytes, values.len() as i64)
    }

    pub(crate) fn data(&mut self, pid: i64, values: &[&str]) -> i64 {
        let v: Vec<String> = values.iter().map(|s| (*s).to_owned()).collect();
        self.data_with(pid, pid >= 0, Compression::None, &v)
    }

    pub(crate) fn marker(&mut self, pid: i64, commit: bool) -> i64 {
        let b = encode_control_batch(0, 1_000, pid, 0, commit, 1).unwrap();
        self.push(b, 1)
    }

    pub(crate) fn bytes(&self) -> Bytes {
        Bytes::from(self.buf.clone())
    }

    /// The bytes of the batches whose base offset is in `[from, to)`.
    pub(crate) fn window(&self, from: i64, to: i64) -> Bytes {
        let mut out = Vec::new();
        for (base, r) in &self.batches {
            if *base >= from && *base < to {
                out.extend_from_slice(&self.buf[r.clone()]);
            }
        }
        Bytes::from(out)
    }
}

fn topic() -> Arc<str> {
    Arc::from("t")
}

fn committed(records: Bytes, from: i64, aborted: &[(i64, i64)], lso: i64) -> Parsed {
    parse_partition(
        &topic(),
        0,
        PartitionData {
            fetch_offset: from,
            records,
            aborted: Some(
                aborted
                    .iter()
                    .map(|&(producer_id, first_offset)| AbortedTxn {
                        first_offset,
                        producer_id,
                    })
                    .collect(),
            ),
            last_stable_offset: lso,
        },
        DecodeOptions::default(),
    )
}

fn uncommitted(records: Bytes, from: i64) -> Parsed {
    parse_partition(
        &topic(),
        0,
        PartitionData {
            fetch_offset: from,
            records,
            aborted: None,
            last_stable_offset: -1,
        },
        DecodeOptions::default(),
    )
}

fn values(p: &Parsed) -> Vec<String> {
    p.records
        .iter()
        .map(|r| String::from_utf8(r.value().unwrap().to_vec()).unwrap())
        .collect()
}

#[test]
fn interleaved_producers_only_committed_and_plain_records_show() {
    let mut log = LogBuilder::new();
    log.data(1, &["a1", "a2"]); // pid 1: aborted
    log.data(2, &["b1"]); // pid 2: committed
    log.data(-1, &["plain1"]);
    log.data(1, &["a3"]);
    log.data(2, &["b2", "b3"]);
    log.marker(1, false);
    log.data(3, &["c1"]); // pid 3: committed
    log.marker(2, true);
    log.data(1, &["a4"]); // pid 1 again, committed this time
    log.marker(3, true);
    log.marker(1, true);
    let end = log.next;
    let p = committed(log.bytes(), 0, &[(1, 0)], end);
    assert_eq!(values(&p), ["b1", "plain1", "b2", "b3", "c1", "a4"]);
    assert_eq!(p.next_offset, end);
    assert_eq!(p.stats.aborted_batches, 2);
    assert_eq!(p.stats.control_batches, 4);
    assert!(p.fault.is_none());
    // Offsets are the log's, in order.
    let offsets: Vec<i64> = p.records.iter().map(|r| r.offset()).collect();
    assert_eq!(offsets, [2, 3, 5, 6, 8, 10]);
    assert!(p.records.iter().all(|r| r.leader_epoch() == Some(4)));

    // read_uncommitted shows the aborted records too, never the markers.
    let u = uncommitted(log.bytes(), 0);
    assert_eq!(
        values(&u),
        ["a1", "a2", "b1", "plain1", "a3", "b2", "b3", "c1", "a4"]
    );
    assert_eq!(u.stats.control_batches, 4);
    assert_eq!(u.next_offset, end);
}

#[test]
fn unsorted_aborted_list_is_sorted() {
    let mut log = LogBuilder::new();
    log.data(1, &["x1"]);
    log.marker(1, false);
    log.data(2, &["y1"]);
    log.data(1, &["x2"]);
    log.marker(2, false);
    log.marker(1, true);
    log.data(2, &["y2"]);
    log.marker(2, false);
    let end = log.next;
    // Broker order would be [(1,0),(2,2),(2,6)]; Redpanda may send any.
    let p = committed(log.bytes(), 0, &[(2, 6), (1, 0), (2, 2)], end);
    assert_eq!(values(&p), ["x2"]);
    assert_eq!(p.stats.aborted_batches, 3);
}

#[test]
fn double_abort_markers_do_not_disturb_later_transactions() {
    let mut log = LogBuilder::new();
    log.data(5, &["a"]);
    log.marker(5, false);
    log.marker(5, false); // duplicate marker
    log.data(5, &["b"]); // committed transaction
    log.marker(5, true);
    log.marker(5, false); // stray abort after a commit
    log.data(5, &["c"]); // aborted transaction
    log.marker(5, false);
    log.marker(5, false);
    log.data(5, &["d"]);
    log.marker(5, true);
    let end = log.next;
    let p = committed(log.bytes(), 0, &[(5, 0), (5, 6)], end);
    assert_eq!(values(&p), ["b", "d"]);
    assert_eq!(p.next_offset, end);
}

#[test]
fn aborted_transaction_spanning_fetches_is_skipped_in_each() {
    let mut log = LogBuilder::new();
    log.data(7, &["t1"]); // 0: aborted txn starts
    log.data(-1, &["p1"]); // 1
    log.data(7, &["t2"]); // 2
    log.data(8, &["u1"]); // 3: committed
    log.data(7, &["t3"]); // 4
    log.marker(7, false); // 5
    log.marker(8, true); // 6
    log.data(7, &["t4"]); // 7 committed
    log.marker(7, true); // 8
    let end = log.next;
    // Fetch 1 covers [0, 3); the broker lists the aborted txn (7, 0).
    let f1 = committed(log.window(0, 3), 0, &[(7, 0)], end);
    assert_eq!(values(&f1), ["p1"]);
    assert_eq!(f1.next_offset, 3);
    // Fetch 2 covers [3, end); the txn still overlaps, listed again.
    let f2 = committed(log.window(3, end), f1.next_offset, &[(7, 0)], end);
    assert_eq!(values(&f2), ["u1", "t4"]);
    assert_eq!(f2.next_offset, end);
}

#[test]
fn nothing_at_or_past_the_last_stable_offset_is_returned() {
    let mut log = LogBuilder::new();
    log.data(1, &["a"]); // 0
    log.marker(1, true); // 1
    let open = log.data(2, &["open"]); // 2: still open, LSO = 2
    log.data(-1, &["late"]); // 3
    let p = committed(log.bytes(), 0, &[], open);
    assert_eq!(values(&p), ["a"]);
    assert_eq!(p.next_offset, open);
    assert!(p.stats.cut_at_lso);
    // read_uncommitted has no such limit.
    assert_eq!(values(&uncommitted(log.bytes(), 0)), ["a", "open", "late"]);
}

#[test]
fn partial_trailing_batch_ends_quietly_and_is_fetched_again() {
    let mut log = LogBuilder::new();
    log.data(-1, &["a", "b"]);
    let second = log.data(-1, &["c"]);
    let bytes = log.bytes();
    let cut = bytes.slice(..bytes.len() - 3);
    let p = uncommitted(cut, 0);
    assert_eq!(values(&p), ["a", "b"]);
    assert_eq!(p.next_offset, second);
    assert!(p.stats.partial_tail_bytes > 0);
    assert!(p.fault.is_none());
    // Only a partial batch: a broker (KIP-74) never answers that, so it is a
    // fault at the position rather than an endless refetch.
    let only = log.window(second, second + 1);
    let p = uncommitted(only.slice(..only.len() - 1), second);
    assert!(p.records.is_empty());
    assert_eq!(p.next_offset, second);
    let f = p.fault.expect("a partial-only answer is a fault");
    assert_eq!(f.offset, second);
    assert_eq!(f.error, RecordError::NoCompleteBatch(only.len() - 1));
}

#[test]
fn a_batch_ending_at_i64_max_is_a_fault_not_an_overflow() {
    // base + last offset delta = i64::MAX: `next_offset()` would overflow.
    let mut log = LogBuilder::new();
    log.data(-1, &["a", "b"]);
    let mut raw = log.bytes().to_vec();
    set_base_offset(&mut raw, i64::MAX - 1).unwrap();
    let p = uncommitted(Bytes::from(raw), 0);
    assert!(p.records.is_empty());
    let f = p.fault.expect("overflowing offsets are a fault");
    assert_eq!(f.offset, 0);
    assert!(matches!(f.error, RecordError::InvalidOffset(_)), "{f:?}");
}

#[test]
fn records_before_the_position_are_dropped_from_a_whole_batch() {
    let mut log = LogBuilder::new();
    let vals: Vec<String> = (0..10).map(|i| format!("v{i}")).collect();
    log.data_with(-1, false, Compression::Lz4, &vals);
    let p = uncommitted(log.bytes(), 6);
    assert_eq!(values(&p), ["v6", "v7", "v8", "v9"]);
    assert_eq!(p.stats.records_before_position, 6);
    assert_eq!(p.next_offset, 10);
}

#[test]
fn corrupt_batch_is_a_fault_after_the_good_ones() {
    let mut log = LogBuilder::new();
    log.data(-1, &["good"]);
    let bad = log.data(-1, &["bad1", "bad2"]);
    log.data(-1, &["after"]);
    let mut raw = log.buf.clone();
    let (_, r) = log.batches[1].clone();
    raw[r.end - 1] ^= 0xff; // flip a value byte: CRC mismatch
    let p = committed(Bytes::from(raw), 0, &[], log.next);
    assert_eq!(values(&p), ["good"]);
    let fault = p.fault.unwrap();
    assert_eq!(fault.offset, bad);
    assert!(matches!(fault.error, RecordError::CrcMismatch { .. }));
    assert_eq!(p.next_offset, bad);
}

#[test]
fn malformed_control_record_is_a_fault_not_a_silent_skip() {
    let mut log = LogBuilder::new();
    log.data(1, &["a"]);
    // A control batch whose key is too short to be a marker.
    let mut b = BatchBuilder::new(Compression::None);
    b.append(0, Some(&[0, 0]), Some(&[0; 6]), &[]).unwrap();
    let mut c = b.close().unwrap();
    let bytes = c.stamp(ProducerStamp {
        producer_id: 1,
        producer_epoch: 0,
        base_sequence: -1,
        transactional: true,
    });
    // Set the control attribute and write the CRC again.
    let mut m = BytesMut::from(&bytes[..]);
    m[22] |= 1 << 5;
    let crc = crc32c::crc32c(&m[21..]);
    m[17..21].copy_from_slice(&crc.to_be_bytes());
    let at = log.push(m.freeze(), 1);
    let p = committed(log.bytes(), 0, &[(1, 0)], log.next);
    assert!(p.records.is_empty());
    let fault = p.fault.unwrap();
    assert_eq!(fault.offset, at);
    assert!(matches!(fault.error, RecordError::MalformedControl(_)));
}

#[test]
fn negative_batch_length_is_a_typed_fault() {
    let mut log = LogBuilder::new();
    log.data(-1, &["a"]);
    let mut raw = log.buf.clone();
    raw[8..12].copy_from_slice(&(-5i32).to_be_bytes());
    let p = uncommitted(Bytes::from(raw), 0);
    assert!(p.records.is_empty());
    assert!(matches!(
        p.fault.unwrap().error,
        RecordError::InvalidBatchLength(-5)
    ));
}

#[test]
fn keys_values_and_headers_are_slices_of_the_fetched_buffer() {
    let mut b = BatchBuilder::new(Compression::None);
    b.append(
        5,
        Some(b"key"),
        Some(b"value"),
        &[
            WireHeader {
                key: "h1",
                value: Some(b"x"),
            },
            WireHeader {
                key: "h2",
                value: None,
            },
        ],
    )
    .unwrap();
    let mut c = b.close().unwrap();
    let batch = c.stamp(ProducerStamp::NONE);
    let mut log = LogBuilder::new();
    log.push(batch, 1);
    let buf = log.bytes();
    let range = buf.as_ptr() as usize..buf.as_ptr() as usize + buf.len();
    let p = uncommitted(buf.clone(), 0);
    let r = &p.records[0];
    assert_eq!(r.key().unwrap().as_ref(), b"key");
    assert_eq!(r.value().unwrap().as_ref(), b"value");
    assert!(range.contains(&(r.key().unwrap().as_ptr() as usize)));
    assert!(range.contains(&(r.value().unwrap().as_ptr() as usize)));
    let hs = r.headers();
    assert_eq!(hs.len(), 2);
    assert_eq!(hs[0].key_str().unwrap(), "h1");
    assert_eq!(hs[0].value().unwrap().as_ref(), b"x");
    assert!(range.contains(&(hs[0].key().as_ptr() as usize)));
    assert_eq!((hs[1].key(), hs[1].value()), (&b"h2"[..], None));
    assert_eq!(r.timestamp(), 5);
}

// Issue 16 item 4: hostile read_committed answers, each with its outcome.

#[test]
fn an_unknown_lso_under_read_committed_delivers_nothing_and_is_counted() {
    let mut log = LogBuilder::new();
    log.data(-1, &["a", "b"]);
    log.data(3, &["open"]);
    let p = committed(log.bytes(), 0, &[], -1);
    assert!(p.records.is_empty(), "{:?}", values(&p));
    assert!(p.fault.is_none());
    assert_eq!(p.next_offset, 0);
    assert_eq!(p.stats.read_committed_anomalies, 1);
    // read_uncommitted ignores the LSO.
    assert_eq!(values(&uncommitted(log.bytes(), 0)), ["a", "b", "open"]);
}

#[test]
fn an_lso_gone_backwards_never_moves_the_position_back() {
    let mut log = LogBuilder::new();
    log.data(-1, &["a", "b", "c", "d"]);
    // Position 3, LSO now 1: nothing delivered, the position stays.
    let p = committed(log.bytes(), 3, &[], 1);
    assert!(p.records.is_empty());
    assert!(p.fault.is_none());
    assert_eq!(p.next_offset, 3);
}

#[test]
fn an_aborted_list_naming_a_committed_producer_is_counted() {
    let mut log = LogBuilder::new();
    log.data(5, &["c1"]);
    log.marker(5, true);
    log.data(5, &["c2"]);
    log.marker(5, true);
    let end = log.next;
    // The list claims producer 5 aborted at offset 0: the broker lies.
    let p = committed(log.bytes(), 0, &[(5, 0)], end);
    assert_eq!(p.stats.read_committed_anomalies, 1);
    // Skipping ends at the COMMIT marker: the second transaction is shown.
    assert_eq!(values(&p), ["c2"]);
    assert_eq!(p.next_offset, end);
}

#[test]
fn an_aborted_list_missing_an_aborted_transaction_is_counted() {
    let mut log = LogBuilder::new();
    log.data(6, &["x1", "x2"]);
    log.marker(6, false);
    let end = log.next;
    let p = committed(log.bytes(), 0, &[], end);
    // Delivered (the consumer cannot know before the marker), but counted.
    assert_eq!(values(&p), ["x1", "x2"]);
    assert_eq!(p.stats.read_committed_anomalies, 1);
    // With the list right: skipped, no anomaly.
    let p = committed(log.bytes(), 0, &[(6, 0)], end);
    assert!(p.records.is_empty());
    assert_eq!(p.stats.read_committed_anomalies, 0);
}

#[test]
fn a_marker_of_a_producer_never_seen_is_skipped_quietly() {
    let mut log = LogBuilder::new();
    log.marker(9, true);
    log.marker(10, false);
    log.data(-1, &["p"]);
    let end = log.next;
    let p = committed(log.bytes(), 0, &[], end);
    assert_eq!(values(&p), ["p"]);
    assert_eq!(p.stats.control_batches, 2);
    assert_eq!(p.stats.read_committed_anomalies, 0);
    assert_eq!(p.next_offset, end);
}

#[test]
fn offsets_going_backwards_across_batches_deliver_nothing_twice() {
    let mut log = LogBuilder::new();
    log.data(-1, &["a0", "a1", "a2"]);
    let first = log.bytes();
    // A second copy of the same batch after it: offsets 0..2 again.
    let mut raw = first.to_vec();
    raw.extend_from_slice(&first);
    let p = uncommitted(Bytes::from(raw.clone()), 0);
    assert_eq!(values(&p), ["a0", "a1", "a2"]);
    assert_eq!(p.next_offset, 3);
    assert_eq!(p.stats.records_before_position, 3);
    let p = committed(Bytes::from(raw), 0, &[], 3);
    assert_eq!(values(&p), ["a0", "a1", "a2"]);
}
