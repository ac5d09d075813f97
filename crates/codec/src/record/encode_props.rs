//! Property tests of [`BatchBuilder`] against an independent reference: a
//! plain encoder of the v2 batch layout (KIP-98) written with `Vec::push`
//! only, byte by byte, sizing each record by encoding its body first. The
//! builder (which writes into spare capacity, see `writer`) must emit the
//! very same bytes, header and CRC included.
//!
//! The inputs aim at the writer's edges: varint widths at their 1/2/3/4-byte
//! boundaries (lengths near 64, 8192 and 2^20 bytes; timestamp deltas at
//! every width up to 10 bytes; offset deltas past 64 and 8192), null keys
//! and values, empty values, lengths where the body-first path declines
//! (the length prefix's bounds straddle a width), every short-copy length,
//! headers (the sized path), and buffers that grow record after record.

#![allow(clippy::unwrap_used)]

use proptest::prelude::*;

use super::encode::{BatchBuilder, ProducerStamp, RecordHeader};
use crate::Compression;

#[derive(Debug, Clone)]
struct Rec {
    ts_delta: i64,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Vec<(String, Option<Vec<u8>>)>,
}

fn varint(out: &mut Vec<u8>, mut u: u64) {
    while u >= 0x80 {
        out.push((u as u8) | 0x80);
        u >>= 7;
    }
    out.push(u as u8);
}

fn zz32(out: &mut Vec<u8>, v: i32) {
    varint(out, ((v << 1) ^ (v >> 31)) as u32 as u64);
}

fn zz64(out: &mut Vec<u8>, v: i64) {
    varint(out, ((v << 1) ^ (v >> 63)) as u64);
}

fn nullable(out: &mut Vec<u8>, f: Option<&[u8]>) {
    match f {
        None => zz32(out, -1),
        Some(f) => {
            zz32(out, f.len() as i32);
            out.extend_from_slice(f);
        }
    }
}

/// The reference encoder: uncompressed batch, base offset 0, create time.
fn reference(base_ts: i64, recs: &[Rec], s: ProducerStamp) -> Vec<u8> {
    let mut records = Vec::new();
    let mut max_ts = base_ts;
    for (i, r) in recs.iter().enumerate() {
        let ts = base_ts.wrapping_add(r.ts_delta);
        max_ts = max_ts.max(ts);
        let mut body = vec![0u8]; // attributes
        zz64(&mut body, ts.wrapping_sub(base_ts));
        zz32(&mut body, i as i32);
        nullable(&mut body, r.key.as_deref());
        nullable(&mut body, r.value.as_deref());
        zz32(&mut body, r.headers.len() as i32);
        for (k, v) in &r.headers {
            nullable(&mut body, Some(k.as_bytes()));
            nullable(&mut body, v.as_deref());
        }
        zz32(&mut records, body.len() as i32);
        records.extend_from_slice(&body);
    }
    let mut b = Vec::new();
    b.extend_from_slice(&0i64.to_be_bytes()); // base offset
    b.extend_from_slice(&((49 + records.len()) as i32).to_be_bytes());
    b.extend_from_slice(&(-1i32).to_be_bytes()); // partition leader epoch
    b.push(2); // magic
    b.extend_from_slice(&[0; 4]); // crc, below
    let attributes: i16 = if s.transactional { 1 << 4 } else { 0 };
    b.extend_from_slice(&attributes.to_be_bytes());
    b.extend_from_slice(&(recs.len() as i32 - 1).to_be_bytes());
    b.extend_from_slice(&base_ts.to_be_bytes());
    b.extend_from_slice(&max_ts.to_be_bytes());
    b.extend_from_slice(&s.producer_id.to_be_bytes());
    b.extend_from_slice(&s.producer_epoch.to_be_bytes());
    b.extend_from_slice(&s.base_sequence.to_be_bytes());
    b.extend_from_slice(&(recs.len() as i32).to_be_bytes());
    b.extend_from_slice(&records);
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b
}

fn built(base_ts: i64, recs: &[Rec], s: ProducerStamp, capacity: usize) -> Vec<u8> {
    let mut b = BatchBuilder::with_capacity(Compression::None, capacity);
    for r in recs {
        let hs: Vec<_> = r
            .headers
            .iter()
            .map(|(k, v)| RecordHeader {
                key: k,
                value: v.as_deref(),
            })
            .collect();
        b.append(
            base_ts.wrapping_add(r.ts_delta),
            r.key.as_deref(),
            r.value.as_deref(),
            &hs,
        )
        .unwrap();
    }
    let size = b.size_in_bytes();
    let out = b.close().unwrap().stamp(s).to_vec();
    assert_eq!(out.len(), size, "size_in_bytes is the batch's size");
    out
}

/// A field of a length at one of the writer's edges, with position-dependent
/// content (a copy at a wrong offset shows).
fn field() -> impl Strategy<Value = Option<Vec<u8>>> {
    let len = prop_oneof![
        8 => 0usize..=20,          // empty, every short-copy branch
        4 => 30usize..=70,         // prefix bounds straddle 64; 1/2-byte lengths
        2 => 8150usize..=8200,     // 2/3-byte lengths and prefixes
        1 => (1usize << 20) - 40..=(1 << 20) + 8, // 3/4-byte lengths and prefixes
    ];
    prop_oneof![
        1 => Just(None),
        6 => len.prop_map(|n| Some((0..n).map(|i| (i * 7 + n) as u8).collect())),
    ]
}

/// Timestamp deltas whose zig-zag takes every width from 1 to 10 bytes, at
/// and around each boundary, and any delta at all.
fn ts_delta() -> impl Strategy<Value = i64> {
    prop_oneof![
        4 => -5i64..100,
        4 => (1u32..=9, -2i64..=1, any::<bool>()).prop_map(|(k, d, neg)| {
            // |delta| = 2^(7k-1): the first zig-zag needing k + 1 bytes
            let m = (1i64 << (7 * k - 1)).saturating_add(d);
            if neg { -m } else { m }
        }),
        1 => any::<i64>(),
    ]
}

fn rec() -> impl Strategy<Value = Rec> {
    (
        ts_delta(),
        field(),
        field(),
        prop_oneof![
            4 => Just(Vec::new()),
            1 => proptest::collection::vec(
                ("[a-z]{0,70}", proptest::option::of(proptest::collection::vec(any::<u8>(), 0..70))),
                1..3,
            ),
        ],
    )
        .prop_map(|(ts_delta, key, value, headers)| Rec {
            ts_delta,
            key,
            value,
            headers,
        })
}

fn stamp() -> impl Strategy<Value = ProducerStamp> {
    (any::<i64>(), any::<i16>(), any::<i32>(), any::<bool>()).prop_map(|(p, e, s, t)| {
        ProducerStamp {
            producer_id: p,
            producer_epoch: e,
            base_sequence: s,
            transactional: t,
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    /// Records at the writer's edges, into a buffer that starts small and
    /// grows (capacity 0..200) or one sized ahead: byte-identical to the
    /// reference.
    #[test]
    fn builder_matches_reference(
        base_ts in any::<i64>(),
        recs in proptest::collection::vec(rec(), 1..12),
        s in stamp(),
        capacity in prop_oneof![0usize..200, Just(4 << 20)],
    ) {
        // the first record's delta is 0 by definition
        let mut recs = recs;
        recs[0].ts_delta = 0;
        prop_assert_eq!(built(base_ts, &recs, s, capacity), reference(base_ts, &recs, s));
    }

    /// Many small records: offset deltas past the one-byte zig-zag (64).
    #[test]
    fn many_small_records_match_reference(
        base_ts in any::<i64>(),
        n in 60usize..200,
        key in field().prop_filter("small", |f| f.as_ref().is_none_or(|f| f.len() <= 20)),
        s in stamp(),
    ) {
        let recs: Vec<Rec> = (0..n)
            .map(|i| Rec {
                ts_delta: i as i64 * 3 - 50,
                key: key.clone(),
                value: (i % 5 != 0).then(|| vec![i as u8; i % 19]),
                headers: Vec::new(),
            })
            .collect();
        let mut recs = recs;
        recs[0].ts_delta = 0;
        prop_assert_eq!(built(base_ts, &recs, s, 16), reference(base_ts, &recs, s));
    }
}

/// Offset deltas past 8192 (three-byte zig-zag), from an empty buffer.
#[test]
fn ten_thousand_records_match_reference() {
    let recs: Vec<Rec> = (0..10_000)
        .map(|i| Rec {
            ts_delta: i64::from(i) * 1000,
            key: (i % 3 != 0).then(|| vec![i as u8; 12]),
            value: Some(vec![(i >> 8) as u8; (i % 23) as usize]),
            headers: Vec::new(),
        })
        .collect();
    let s = ProducerStamp::NONE;
    assert_eq!(built(7, &recs, s, 0), reference(7, &recs, s));
}

/// Every key + value length around the body-first path's prefix thresholds
/// (bodies of 64 and 8192 bytes, the one- to two- and two- to three-byte
/// length prefixes; 2^20, three to four), each with timestamp deltas of one,
/// two, five and ten bytes: exhaustive where the sampled tests are sparse.
#[test]
fn lengths_around_prefix_thresholds_match_reference() {
    let around = |c: usize, below: usize, above: usize| c - below..=c + above;
    let kvs = around(64, 64, 8)
        .chain(around(8192, 40, 8))
        .chain(around(1 << 20, 30, 2));
    for kv in kvs {
        let deltas: &[i64] = if kv > 1 << 16 {
            &[0, i64::MIN]
        } else {
            &[0, -3000, 1 << 30, i64::MAX, i64::MIN]
        };
        for &ts_delta in deltas {
            let key = kv.min(12);
            let recs = [
                Rec {
                    ts_delta: 0,
                    key: Some(vec![1; key]),
                    value: Some(vec![2; kv - key]),
                    headers: Vec::new(),
                },
                Rec {
                    ts_delta,
                    key: None,
                    value: Some((0..kv).map(|i| i as u8).collect()),
                    headers: Vec::new(),
                },
            ];
            let s = ProducerStamp::NONE;
            assert_eq!(
                built(1, &recs, s, 0),
                reference(1, &recs, s),
                "kv = {kv}, ts_delta = {ts_delta}"
            );
        }
    }
}
