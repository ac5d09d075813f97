//! Batches written by the reference Java client (kafka-clients 4.3.1) into a
//! real broker and captured from Fetch responses: they must decode exactly.
//! See tests/golden/README.md for how they were produced.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use exactly_codec::record::{ControlRecordKind, RecordBatch};
use exactly_codec::{Batches, Compression};

const T0: i64 = 1_700_000_000_000;

fn load(name: &str) -> Bytes {
    let path = format!("{}/tests/golden/{name}.bin", env!("CARGO_MANIFEST_DIR"));
    Bytes::from(std::fs::read(path).unwrap())
}

fn batches(name: &str) -> Vec<RecordBatch> {
    let data = load(name);
    let mut it = Batches::new(data);
    let v: Vec<_> = it.by_ref().collect::<Result<_, _>>().unwrap();
    assert_eq!(it.remaining(), 0, "{name}: trailing bytes");
    v
}

fn filler(i: usize) -> String {
    format!("value-{i:02}-") + &"abcdefgh".repeat(8)
}

/// The 20 records GoldenProducer.java writes to each `golden-<codec>` topic.
fn check_plain(name: &str, codec: Compression, producer_id: i64) {
    let bs = batches(name);
    assert_eq!(bs.len(), 1, "{name}: one batch");
    let b = &bs[0];
    let h = b.header();
    assert_eq!(h.attributes.compression, codec);
    assert!(!h.attributes.transactional && !h.attributes.control);
    assert_eq!(
        (h.base_offset, h.last_offset_delta, h.record_count),
        (0, 19, 20)
    );
    assert_eq!(
        (h.producer_id, h.producer_epoch, h.base_sequence),
        (producer_id, 0, 0)
    );
    assert_eq!((h.base_timestamp, h.max_timestamp), (T0, T0 + 19));
    assert_eq!(h.partition_leader_epoch, 0);
    assert_eq!(b.control_record().unwrap(), None);
    let mut n = 0;
    for (i, r) in b.records().enumerate() {
        let r = r.unwrap();
        n += 1;
        assert_eq!(r.offset(), i as i64);
        assert_eq!(r.timestamp(), T0 + i as i64);
        let key = (i != 3).then(|| format!("key-{i:02}"));
        assert_eq!(r.key(), key.as_deref().map(str::as_bytes), "{name} key {i}");
        let value = (i != 5).then(|| filler(i));
        assert_eq!(
            r.value(),
            value.as_deref().map(str::as_bytes),
            "{name} value {i}"
        );
        if let Some(v) = r.value_bytes() {
            assert_eq!(v.as_ref(), value.unwrap().as_bytes());
        }
        let headers: Vec<_> = r.headers().collect::<Result<_, _>>().unwrap();
        if i % 4 == 0 {
            assert_eq!(r.header_count(), 2);
            assert_eq!(headers[0].key_str().unwrap(), "h1");
            assert_eq!(headers[0].value(), Some(format!("x{i}").as_bytes()));
            assert_eq!(headers[1].key_str().unwrap(), "h2");
            assert_eq!(headers[1].value(), None);
        } else {
            assert!(headers.is_empty());
        }
    }
    assert_eq!(n, 20);
}

#[test]
fn java_uncompressed() {
    check_plain("none", Compression::None, 0);
}

#[test]
fn java_gzip() {
    check_plain("gzip", Compression::Gzip, 1);
}

#[test]
fn java_snappy_xerial_framed() {
    // the Java client writes snappy in the xerial stream framing
    assert_eq!(&load("snappy")[61..69], b"\x82SNAPPY\x00");
    check_plain("snappy", Compression::Snappy, 2);
}

#[test]
fn java_lz4() {
    check_plain("lz4", Compression::Lz4, 3);
}

#[test]
fn java_zstd() {
    check_plain("zstd", Compression::Zstd, 4);
}

/// Three transactions by one transactional producer under transaction
/// protocol v2 (KIP-890: the epoch is bumped at every commit or abort, and the
/// marker carries the bumped epoch): commit {t0,t1,t2}, abort {t3,t4},
/// commit {t5}.
#[test]
fn java_transactions_with_markers() {
    #[derive(Debug, PartialEq)]
    enum Entry {
        Data(i64, i16, i32, &'static str, &'static str),
        Marker(i64, i16, ControlRecordKind, i32),
    }
    use Entry::*;
    let expected = [
        Data(0, 0, 0, "k0", "t0"),
        Data(1, 0, 1, "k1", "t1"),
        Data(2, 0, 2, "k2", "t2"),
        Marker(3, 1, ControlRecordKind::Commit, 0),
        Data(4, 1, 0, "k3", "t3"),
        Data(5, 1, 1, "k4", "t4"),
        Marker(6, 2, ControlRecordKind::Abort, 0),
        Data(7, 2, 0, "k5", "t5"),
        Marker(8, 3, ControlRecordKind::Commit, 0),
    ];
    let bs = batches("txn");
    assert_eq!(bs.len(), expected.len());
    for (b, want) in bs.iter().zip(expected) {
        let h = b.header();
        assert_eq!(h.producer_id, 5);
        assert!(h.attributes.transactional);
        assert_eq!(h.record_count, 1);
        let got = match b.control_record().unwrap() {
            Some(c) => {
                assert_eq!(h.base_sequence, -1);
                assert_eq!(c.version, 0);
                Marker(
                    h.base_offset,
                    h.producer_epoch,
                    c.kind,
                    c.coordinator_epoch.unwrap(),
                )
            }
            None => {
                let r = b.records().next().unwrap().unwrap();
                let k = std::str::from_utf8(r.key().unwrap()).unwrap();
                let v = std::str::from_utf8(r.value().unwrap()).unwrap();
                assert_eq!(r.offset(), h.base_offset);
                assert_eq!(
                    r.timestamp(),
                    T0 + k[1..].parse::<i64>().unwrap(),
                    "record timestamp"
                );
                let k: &'static str = Box::leak(k.to_owned().into_boxed_str());
                let v: &'static str = Box::leak(v.to_owned().into_boxed_str());
                Data(h.base_offset, h.producer_epoch, h.base_sequence, k, v)
            }
        };
        assert_eq!(got, want);
    }
}

/// Each golden batch, re-encoded by our builder with the same records and
/// stamp, is byte-identical to the Java client's (uncompressed case; the
/// compressed bytes depend on the compressor implementation).
#[test]
fn our_encoder_matches_java_bytes() {
    use exactly_codec::record::RecordHeader;
    use exactly_codec::{BatchBuilder, ProducerStamp};
    for name in ["none", "txn"] {
        for java in batches(name) {
            if java.header().attributes.control {
                continue;
            }
            let mut b = BatchBuilder::new(Compression::None);
            for r in java.records() {
                let r = r.unwrap();
                let hs: Vec<_> = r.headers().map(|h| h.unwrap()).collect();
                let hs: Vec<_> = hs
                    .iter()
                    .map(|h| RecordHeader {
                        key: h.key_str().unwrap(),
                        value: h.value(),
                    })
                    .collect();
                b.append(r.timestamp(), r.key(), r.value(), &hs).unwrap();
            }
            let h = java.header();
            let mut closed = b.close().unwrap();
            let ours = closed.stamp(ProducerStamp {
                producer_id: h.producer_id,
                producer_epoch: h.producer_epoch,
                base_sequence: h.base_sequence,
                transactional: h.attributes.transactional,
            });
            let mut ours = ours.to_vec();
            // the broker assigned the base offset and leader epoch (outside the CRC)
            ours[..8].copy_from_slice(&java.raw()[..8]);
            ours[12..16].copy_from_slice(&java.raw()[12..16]);
            assert_eq!(&ours[..], &java.raw()[..], "{name} @{}", h.base_offset);
        }
    }
}
