//! Property tests: any batch we encode decodes to exactly what went in, under
//! every codec and stamp; frames survive any chunking; damaged batches give
//! typed errors. The generators are the public ones of
//! `exactly_testkit::strategies`, which users test their own code with.
//! Failing cases are persisted in `tests/roundtrip.proptest-regressions`
//! (committed when they occur).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::{Bytes, BytesMut};
use exactly_codec::frame::write_frame;
use exactly_codec::record::RecordHeader;
use exactly_codec::{BatchBuilder, Batches, Compression, FrameDecoder, ProducerStamp, RecordBatch};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;

use exactly_testkit::strategies::{
    compression as codec, hostile, marker, record as rec, stamp, Corruption, RecordSpec as Rec,
};

fn encode(recs: &[Rec], codec: Compression, s: ProducerStamp) -> Bytes {
    let mut b = BatchBuilder::new(codec);
    for r in recs {
        let hs: Vec<_> = r
            .headers
            .iter()
            .map(|(k, v)| RecordHeader {
                key: k,
                value: v.as_deref(),
            })
            .collect();
        b.append(r.timestamp, r.key.as_deref(), r.value.as_deref(), &hs)
            .unwrap();
    }
    assert_eq!(b.record_count() as usize, recs.len());
    let mut closed = b.close().unwrap();
    closed.stamp(s)
}

fn check(batch: &RecordBatch, recs: &[Rec], codec: Compression, s: ProducerStamp) {
    let h = batch.header();
    assert_eq!(h.attributes.compression, codec);
    assert_eq!(h.attributes.transactional, s.transactional);
    assert!(!h.attributes.control);
    assert_eq!(
        (h.producer_id, h.producer_epoch, h.base_sequence),
        (s.producer_id, s.producer_epoch, s.base_sequence)
    );
    assert_eq!(h.record_count as usize, recs.len());
    assert_eq!(h.last_offset_delta as usize, recs.len() - 1);
    assert_eq!(h.base_timestamp, recs[0].timestamp);
    assert_eq!(
        h.max_timestamp,
        recs.iter().map(|r| r.timestamp).max().unwrap()
    );
    let mut n = 0;
    for (i, (got, want)) in batch.records().zip(recs).enumerate() {
        let got = got.unwrap();
        assert_eq!(got.offset(), h.base_offset + i as i64);
        assert_eq!(got.timestamp(), want.timestamp);
        assert_eq!(got.key(), want.key.as_deref());
        assert_eq!(got.value(), want.value.as_deref());
        assert_eq!(got.key_bytes().as_deref(), want.key.as_deref());
        let hs: Vec<_> = got.headers().collect::<Result<_, _>>().unwrap();
        assert_eq!(hs.len(), want.headers.len());
        for (g, (k, v)) in hs.iter().zip(&want.headers) {
            assert_eq!(g.key_str().unwrap(), k);
            assert_eq!(g.value(), v.as_deref());
            assert_eq!(g.value_bytes().as_deref(), v.as_deref());
        }
        n += 1;
    }
    assert_eq!(n, recs.len());
    assert!(batch.records().all(|r| r.is_ok()));
}

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn batch_roundtrip(
        recs in proptest::collection::vec(rec(), 1..60),
        codec in codec(),
        s1 in stamp(),
        s2 in stamp(),
    ) {
        let bytes = encode(&recs, codec, s1);
        let batch = RecordBatch::decode(bytes.clone()).unwrap();
        check(&batch, &recs, codec, s1);

        // re-stamp (epoch bump): only the header and CRC change
        let mut b = BatchBuilder::new(codec);
        for r in &recs {
            let hs: Vec<_> = r.headers.iter().map(|(k, v)| RecordHeader { key: k, value: v.as_deref() }).collect();
            b.append(r.timestamp, r.key.as_deref(), r.value.as_deref(), &hs).unwrap();
        }
        let mut closed = b.close().unwrap();
        let first = closed.stamp(s1);
        prop_assert_eq!(&first, &bytes, "encoding is deterministic");
        let second = closed.stamp(s2);
        prop_assert_eq!(&first[61..], &second[61..]);
        check(&RecordBatch::decode(second.clone()).unwrap(), &recs, codec, s2);

        // a records set of both plus a partial third
        let mut set = BytesMut::new();
        set.extend_from_slice(&first);
        set.extend_from_slice(&second);
        set.extend_from_slice(&first[..first.len() / 2]);
        let got: Vec<_> = Batches::new(set.freeze()).collect::<Result<_, _>>().unwrap();
        prop_assert_eq!(got.len(), 2);
        check(&got[1], &recs, codec, s2);
    }

    #[test]
    fn damaged_batches_give_typed_errors(
        recs in proptest::collection::vec(rec(), 1..10),
        codec in codec(),
        s in stamp(),
        at in any::<prop::sample::Index>(),
        xor in 1u8..,
        cut in any::<prop::sample::Index>(),
    ) {
        let bytes = encode(&recs, codec, s);
        // one flipped bit/byte anywhere in the CRC-covered part
        let i = 21 + at.index(bytes.len() - 21);
        let mut m = bytes.to_vec();
        m[i] ^= xor;
        prop_assert!(RecordBatch::decode(Bytes::from(m)).is_err());
        // any truncation
        let c = cut.index(bytes.len());
        prop_assert!(RecordBatch::decode(bytes.slice(..c)).is_err());
        prop_assert!(Batches::new(bytes.slice(..c)).next().is_none());
    }

    #[test]
    fn frames_roundtrip_in_any_chunks(
        bodies in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 0..10),
        chunk in 1usize..64,
    ) {
        let mut wire = BytesMut::new();
        for b in &bodies {
            let n = write_frame::<()>(&mut wire, |d| { d.extend_from_slice(b); Ok(()) }).unwrap();
            prop_assert_eq!(n, b.len());
        }
        let dec = FrameDecoder::new(200);
        let mut inbuf = BytesMut::new();
        let mut got = Vec::new();
        for piece in wire.chunks(chunk) {
            inbuf.extend_from_slice(piece);
            while let Some(f) = dec.decode(&mut inbuf).unwrap() {
                got.push(f.to_vec());
            }
        }
        prop_assert!(inbuf.is_empty());
        prop_assert_eq!(got, bodies);
    }

    #[test]
    fn hostile_batches_give_typed_errors(h in hostile()) {
        let decoded = RecordBatch::decode(h.bytes.clone()).and_then(|b| {
            for r in b.records() {
                for header in r?.headers() {
                    header?;
                }
            }
            Ok(())
        });
        prop_assert!(decoded.is_err(), "{:?} decoded", h.corruption);
        if let Corruption::Truncated(_) = h.corruption {
            // As the tail of a records set: a partial batch, skipped.
            prop_assert!(Batches::new(h.bytes.clone()).next().is_none());
        }
        prop_assert!(RecordBatch::decode(h.valid.clone()).is_ok());
    }

    #[test]
    fn markers_decode_as_control_batches(m in marker()) {
        let bytes = m.encode().unwrap();
        let batch = RecordBatch::decode(bytes).unwrap();
        let h = batch.header();
        prop_assert!(h.attributes.control && h.attributes.transactional);
        prop_assert_eq!((h.base_offset, h.producer_id, h.producer_epoch), (m.base_offset, m.producer_id, m.producer_epoch));
    }
}
