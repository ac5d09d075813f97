//! The hostile-input table of RELIABILITY.md, for the parts the codec owns:
//! every item gets a typed error (never a panic). Allocation bounds for the
//! same inputs are checked with a measuring allocator in
//! `benches/tests/alloc.rs` (this crate forbids the unsafe code a global
//! allocator needs).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::{BufMut, Bytes, BytesMut};
use exactly_codec::guard::Fault;
use exactly_codec::messages::{EndTxnRequest, FetchRequest, FindCoordinatorRequest};
use exactly_codec::record::{
    encode_control_batch, ControlRecord, ControlRecordKind, DecodeOptions, RecordHeader,
};
use exactly_codec::{
    decode_response, peek_correlation_id, BatchBuilder, Batches, CodecError, Compression,
    ErrorCode, FrameDecoder, ProducerStamp, RecordBatch, RecordError,
};

// ---------------------------------------------------------------- frames

#[test]
fn frame_negative_size() {
    let mut b = BytesMut::from(&[0x80, 0, 0, 0, 1, 2][..]);
    assert_eq!(
        FrameDecoder::default().decode(&mut b),
        Err(CodecError::NegativeFrameSize(i32::MIN))
    );
}

#[test]
fn frame_oversized_http_get() {
    let mut b = BytesMut::from(&b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..]);
    assert!(matches!(
        FrameDecoder::new(1 << 20).decode(&mut b),
        Err(CodecError::FrameTooLarge {
            size: 1_195_725_856,
            ..
        })
    ));
}

#[test]
fn frame_truncated_at_every_byte() {
    let mut whole = BytesMut::new();
    whole.put_i32(10);
    whole.put_slice(b"0123456789");
    let d = FrameDecoder::new(64);
    for cut in 0..whole.len() {
        let mut b = BytesMut::from(&whole[..cut]);
        assert_eq!(d.decode(&mut b), Ok(None), "cut at {cut}");
        assert_eq!(&b[..], &whole[..cut], "buffer untouched at {cut}");
        assert!(b.capacity() <= 64 + 4 + 64, "reserved at most the frame");
    }
    let mut b = whole.clone();
    assert_eq!(d.decode(&mut b).unwrap().unwrap().as_ref(), b"0123456789");
}

#[test]
fn correlation_id_needs_four_bytes() {
    // Matching ids against the in-flight queue is the net layer's job; the
    // codec gives it the id or a typed error.
    assert_eq!(peek_correlation_id(&[0, 0, 1, 2, 9]), Ok(258));
    assert!(matches!(
        peek_correlation_id(&[0, 0, 1]),
        Err(CodecError::Header(_))
    ));
}

// ---------------------------------------------------------------- fields

/// FindCoordinator v2 (not flexible): throttle, error, message, node, host, port.
fn find_coordinator_v2(host_len: i16, host: &[u8]) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i32(7); // correlation id (header v0)
    b.put_i32(0);
    b.put_i16(0);
    b.put_i16(-1); // null error message
    b.put_i32(1);
    b.put_i16(host_len);
    b.put_slice(host);
    b.put_i32(9092);
    b.freeze()
}

#[test]
fn field_well_formed_control_case() {
    let (cid, r) =
        decode_response::<FindCoordinatorRequest>(find_coordinator_v2(4, b"host"), 2).unwrap();
    assert_eq!((cid, r.host.as_str(), r.port), (7, "host", 9092));
}

/// The guard's verdict on a response: (path, fault).
fn malformed<T: std::fmt::Debug>(r: Result<T, CodecError>) -> (String, Fault) {
    match r {
        Err(e) => match e.malformed() {
            Some(m) => (m.path.clone(), m.fault.clone()),
            None => panic!("expected the guard's verdict, got {e:?}"),
        },
        Ok(_) => panic!("expected the guard's verdict, got Ok"),
    }
}

#[test]
fn field_minus_one_on_non_nullable_string() {
    assert_eq!(
        malformed(decode_response::<FindCoordinatorRequest>(
            find_coordinator_v2(-1, b""),
            2
        )),
        ("Host".to_owned(), Fault::UnexpectedNull)
    );
}

#[test]
fn field_length_past_the_end() {
    assert_eq!(
        malformed(decode_response::<FindCoordinatorRequest>(
            find_coordinator_v2(i16::MAX, b"host"),
            2
        )),
        (
            "Host".to_owned(),
            Fault::LengthPastEnd {
                declared: i16::MAX as u64,
                available: 8
            }
        )
    );
}

/// EndTxn v5 (flexible): header v1 (id + tagged fields), throttle, error,
/// producer id, epoch, tagged fields.
fn end_txn_v5(tail: &[u8]) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i32(3);
    b.put_u8(0); // no header tags
    b.put_i32(0);
    b.put_i16(0);
    b.put_i64(42);
    b.put_i16(1);
    b.put_slice(tail);
    b.freeze()
}

#[test]
fn field_varint_longer_than_five_bytes() {
    // Tagged field count as a 6-byte varint (kafka-protocol alone would
    // stop after 5 bytes without checking the fifth's continuation bit).
    let r = decode_response::<EndTxnRequest>(end_txn_v5(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x00]), 5);
    assert_eq!(
        malformed(r),
        ("<tagged fields>".to_owned(), Fault::VarintTooLong)
    );
}

#[test]
fn field_huge_tagged_field() {
    // one tagged field, tag 9, declared size 2^31-1, three bytes present
    let r = decode_response::<EndTxnRequest>(
        end_txn_v5(&[1, 9, 0xff, 0xff, 0xff, 0xff, 0x07, 1, 2, 3]),
        5,
    );
    assert_eq!(
        malformed(r),
        (
            "<tag 9>".to_owned(),
            Fault::LengthPastEnd {
                declared: i32::MAX as u64,
                available: 3
            }
        )
    );
}

#[test]
fn field_truncated_at_every_byte() {
    let whole = end_txn_v5(&[0]);
    assert!(decode_response::<EndTxnRequest>(whole.clone(), 5).is_ok());
    for cut in 0..whole.len() {
        let r = decode_response::<EndTxnRequest>(whole.slice(..cut), 5);
        let (path, fault) = malformed(r);
        assert!(
            matches!(fault, Fault::LengthPastEnd { .. }),
            "cut {cut}: {path} {fault:?}"
        );
        assert_eq!(path.starts_with("header"), cut < 5, "cut {cut}: {path}");
    }
}

#[test]
fn field_trailing_bytes() {
    assert!(matches!(
        decode_response::<EndTxnRequest>(end_txn_v5(&[0, 0xaa]), 5),
        Err(CodecError::TrailingBytes { extra: 1, .. })
    ));
}

#[test]
fn response_unknown_error_code_is_preserved() {
    let mut b = BytesMut::new();
    b.put_i32(3);
    b.put_u8(0);
    b.put_i32(0);
    b.put_i16(12345);
    b.put_i64(42);
    b.put_i16(1);
    b.put_u8(0);
    let (_, r) = decode_response::<EndTxnRequest>(b.freeze(), 5).unwrap();
    let e = ErrorCode::from_code(r.error_code).unwrap();
    assert_eq!(e, ErrorCode::Unknown(12345));
    assert!(!e.is_retriable());
}

// ---------------------------------------------------------------- record batches

fn valid_batch(codec: Compression) -> Bytes {
    let mut b = BatchBuilder::new(codec);
    for i in 0..5u8 {
        b.append(
            1000 + i64::from(i),
            Some(&[i; 3]),
            Some(&[i; 40]),
            &[RecordHeader {
                key: "h",
                value: Some(&[i]),
            }],
        )
        .unwrap();
    }
    b.close().unwrap().stamp(ProducerStamp {
        producer_id: 1,
        producer_epoch: 0,
        base_sequence: 0,
        transactional: true,
    })
}

/// Patches a header field and re-computes the CRC, so the check under test
/// is the one that fires.
fn patched(batch: &Bytes, at: usize, bytes: &[u8]) -> Bytes {
    let mut m = batch.to_vec();
    m[at..at + bytes.len()].copy_from_slice(bytes);
    let crc = crc32c::crc32c(&m[21..]);
    m[17..21].copy_from_slice(&crc.to_be_bytes());
    Bytes::from(m)
}

fn decode_all(b: Bytes) -> Result<usize, RecordError> {
    let batch = RecordBatch::decode(b)?;
    let mut n = 0;
    for r in batch.records() {
        let r = r?;
        for h in r.headers() {
            h?;
        }
        n += 1;
    }
    Ok(n)
}

#[test]
fn batch_negative_length() {
    let b = patched(&valid_batch(Compression::None), 8, &(-5i32).to_be_bytes());
    assert_eq!(
        RecordBatch::decode(b.clone()).unwrap_err(),
        RecordError::InvalidBatchLength(-5)
    );
    let mut it = Batches::new(b);
    assert_eq!(
        it.next().unwrap().unwrap_err(),
        RecordError::InvalidBatchLength(-5)
    );
    assert!(it.next().is_none());
}

#[test]
fn batch_oversized_length() {
    let b = patched(&valid_batch(Compression::None), 8, &i32::MAX.to_be_bytes());
    assert_eq!(
        RecordBatch::decode(b.clone()).unwrap_err(),
        RecordError::Truncated("batch")
    );
    // in a records set it is an incomplete trailing batch: skipped, not an error
    let mut it = Batches::new(b);
    assert!(it.next().is_none());
}

#[test]
fn batch_crc_mismatch_on_every_covered_byte() {
    let good = valid_batch(Compression::None);
    for at in 21..good.len() {
        let mut m = good.to_vec();
        m[at] ^= 0x40;
        assert!(
            matches!(
                RecordBatch::decode(Bytes::from(m)),
                Err(RecordError::CrcMismatch { .. })
            ),
            "flip at {at}"
        );
    }
}

#[test]
fn batch_magic_not_two() {
    for magic in [0u8, 1, 3, 0xff] {
        let mut m = valid_batch(Compression::None).to_vec();
        m[16] = magic;
        assert_eq!(
            RecordBatch::decode(Bytes::from(m)).unwrap_err(),
            RecordError::UnsupportedMagic(magic as i8)
        );
    }
}

#[test]
fn legacy_message_set_is_named_as_such() {
    // a magic v1 message: offset, size 30, crc, magic 1, attributes, ...
    let mut m = vec![0u8; 12 + 30];
    m[8..12].copy_from_slice(&30i32.to_be_bytes());
    m[16] = 1;
    let b = Bytes::from(m);
    assert_eq!(
        RecordBatch::decode(b.clone()).unwrap_err(),
        RecordError::UnsupportedMagic(1)
    );
    assert_eq!(
        Batches::new(b).next().unwrap().unwrap_err(),
        RecordError::UnsupportedMagic(1)
    );
}

#[test]
fn batch_record_count_negative_or_too_large() {
    let good = valid_batch(Compression::None);
    for count in [-1i32, i32::MIN, 1_000_000, i32::MAX] {
        let b = patched(&good, 57, &count.to_be_bytes());
        assert!(
            matches!(
                RecordBatch::decode(b),
                Err(RecordError::InvalidRecordCount { .. })
            ),
            "{count}"
        );
    }
    // plausible but wrong counts: caught while iterating
    let b = patched(&good, 57, &6i32.to_be_bytes());
    assert_eq!(
        decode_all(b).unwrap_err(),
        RecordError::RecordCountMismatch {
            declared: 6,
            found: 5
        }
    );
    let b = patched(&good, 57, &4i32.to_be_bytes());
    assert!(matches!(
        decode_all(b).unwrap_err(),
        RecordError::BatchTrailingBytes(_)
    ));
}

#[test]
fn batch_truncated_at_every_byte() {
    for codec in Compression::ALL {
        let good = valid_batch(codec);
        for cut in 0..good.len() {
            assert!(decode_all(good.slice(..cut)).is_err(), "{codec} cut {cut}");
            // as the tail of a records set: a partial batch, skipped quietly
            assert!(Batches::new(good.slice(..cut)).next().is_none());
        }
    }
}

#[test]
fn batch_unknown_compression_id() {
    let b = patched(&valid_batch(Compression::None), 21, &[0, 0x15]);
    assert_eq!(
        RecordBatch::decode(b).unwrap_err(),
        RecordError::UnknownCompression(5)
    );
}

#[test]
fn batch_decompression_bomb() {
    for codec in Compression::ALL {
        let mut b = BatchBuilder::new(codec);
        let zeros = vec![0u8; 256 * 1024];
        for _ in 0..8 {
            b.append(0, None, Some(&zeros), &[]).unwrap();
        }
        let bytes = b.close().unwrap().stamp(ProducerStamp::NONE);
        let opts = DecodeOptions {
            max_decompressed_size: 1024 * 1024,
            ..DecodeOptions::default()
        };
        let r = RecordBatch::decode_with(bytes.clone(), &opts);
        if codec == Compression::None {
            assert!(r.is_ok());
        } else {
            assert_eq!(
                r.unwrap_err(),
                RecordError::DecompressedTooLarge {
                    codec,
                    max: 1024 * 1024
                },
                "{codec}"
            );
            assert!(
                RecordBatch::decode(bytes).is_ok(),
                "{codec} under the default cap"
            );
        }
    }
}

#[test]
fn batch_garbage_compressed_section() {
    for codec in [
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let good = valid_batch(codec);
        let mut m = good.to_vec();
        for x in &mut m[61..] {
            *x = x.wrapping_mul(31).wrapping_add(7);
        }
        let crc = crc32c::crc32c(&m[21..]);
        m[17..21].copy_from_slice(&crc.to_be_bytes());
        let r = decode_all(Bytes::from(m));
        assert!(r.is_err(), "{codec}: {r:?}");
    }
}

#[test]
fn batch_negative_offsets() {
    let good = valid_batch(Compression::None);
    let b = patched(&good, 0, &(-1i64).to_be_bytes());
    // the base offset is outside the CRC: patch without re-CRC works too
    assert!(matches!(
        RecordBatch::decode(b),
        Err(RecordError::InvalidOffset(_))
    ));
    let b = patched(&good, 23, &(-1i32).to_be_bytes());
    assert!(matches!(
        RecordBatch::decode(b),
        Err(RecordError::InvalidOffset(_))
    ));
    // last offset delta smaller than a record's delta
    let b = patched(&good, 23, &2i32.to_be_bytes());
    assert!(matches!(decode_all(b), Err(RecordError::InvalidOffset(_))));
}

/// Builds a one-record uncompressed batch whose record body is `body`.
fn batch_with_record(body: &[u8]) -> Bytes {
    let mut m = valid_batch(Compression::None)[..61].to_vec();
    let mut len = [0u8; 5];
    let n = zigzag(&mut len, body.len() as i64);
    m.extend_from_slice(&len[..n]);
    m.extend_from_slice(body);
    let total = (m.len() - 12) as i32;
    m[8..12].copy_from_slice(&total.to_be_bytes());
    m[57..61].copy_from_slice(&1i32.to_be_bytes());
    m[23..27].copy_from_slice(&0i32.to_be_bytes());
    let crc = crc32c::crc32c(&m[21..]);
    m[17..21].copy_from_slice(&crc.to_be_bytes());
    Bytes::from(m)
}

fn zigzag(out: &mut [u8], v: i64) -> usize {
    let mut u = ((v << 1) ^ (v >> 63)) as u64;
    let mut i = 0;
    while u >= 0x80 {
        out[i] = (u as u8) | 0x80;
        u >>= 7;
        i += 1;
    }
    out[i] = u as u8;
    i + 1
}

#[test]
fn record_fields_hostile() {
    // attributes, ts delta 0, offset delta 0, key len, ..., value len, headers
    let ok = [0u8, 0, 0, 2, b'k', 2, b'v', 0];
    assert_eq!(decode_all(batch_with_record(&ok)), Ok(1));
    let cases: &[(&[u8], &str)] = &[
        (
            &[
                0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0, 0, 0, 0, 0,
            ],
            "ts varlong too long",
        ),
        (
            &[0, 0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01, 0, 0, 0],
            "offset delta varint too long",
        ),
        (&[0, 0, 0, 3, 0, 0, 0], "key -2"),
        (
            &[0, 0, 0, 0xfe, 0xff, 0xff, 0xff, 0x0f, 0, 0],
            "key i32::MAX past end",
        ),
        (&[0, 0, 0, 1, 0x7e, 0], "value past end"),
        (&[0, 0, 0, 1, 1, 1], "header count -1"),
        (
            &[0, 0, 0, 1, 1, 0xfe, 0xff, 0xff, 0xff, 0x0f],
            "header count huge",
        ),
        (&[0, 0, 0, 1, 1, 2, 1, 0], "header key null"),
        (&[0, 0, 0, 1, 1, 2, 0x7e, 0], "header key past end"),
        (&[0, 0, 0, 1, 1, 2, 0, 0x7e], "header value past end"),
        (&[0, 0, 0, 1, 1, 0, 9, 9], "bytes after the fields"),
        (&[0, 0, 1, 1, 1, 0], "negative offset delta"),
        (&[0, 0], "record shorter than its fields"),
    ];
    for (body, what) in cases {
        let r = decode_all(batch_with_record(body));
        assert!(r.is_err(), "{what}: {r:?}");
    }
}

#[test]
fn control_records_malformed() {
    let marker = encode_control_batch(0, 0, 1, 0, false, 5).unwrap();
    let b = RecordBatch::decode(marker.clone()).unwrap();
    assert_eq!(
        b.control_record().unwrap().unwrap().kind,
        ControlRecordKind::Abort
    );
    // control flag on a batch whose record is data
    let data_as_control = patched(&valid_batch(Compression::None), 21, &[0, 0x30]);
    let b = RecordBatch::decode(data_as_control).unwrap();
    assert!(matches!(
        b.control_record(),
        Err(RecordError::MalformedControl(_))
    ));
    assert!(ControlRecord::decode(Some(&[0, 0, 0, 1]), Some(&[0, 0])).is_err());
}

#[test]
fn double_abort_markers_decode_as_two_markers() {
    // Two abort markers in a row are the consumer's filter to survive; the
    // codec reports both faithfully.
    let mut set = BytesMut::new();
    set.extend_from_slice(&encode_control_batch(10, 0, 1, 0, false, 5).unwrap());
    set.extend_from_slice(&encode_control_batch(11, 0, 1, 0, false, 5).unwrap());
    let kinds: Vec<_> = Batches::new(set.freeze())
        .map(|b| b.unwrap().control_record().unwrap().unwrap())
        .map(|c| (c.kind, c.coordinator_epoch))
        .collect();
    assert_eq!(kinds, vec![(ControlRecordKind::Abort, Some(5)); 2]);
}

#[test]
fn fetch_response_with_unsorted_aborted_transactions_decodes_as_sent() {
    // Sorting is the read_committed filter's job; the codec must not reorder
    // or reject.
    use exactly_codec::messages::fetch_response::{
        AbortedTransaction, FetchableTopicResponse, PartitionData,
    };
    use exactly_codec::messages::ResponseKind;
    use exactly_codec::messages::{FetchResponse, ProducerId, TopicName};
    let aborted = vec![
        AbortedTransaction::default()
            .with_producer_id(ProducerId(2))
            .with_first_offset(50),
        AbortedTransaction::default()
            .with_producer_id(ProducerId(1))
            .with_first_offset(10),
    ];
    let resp = FetchResponse::default().with_responses(vec![FetchableTopicResponse::default()
        .with_topic(TopicName("t".into()))
        .with_partitions(vec![PartitionData::default()
            .with_aborted_transactions(Some(aborted.clone()))
            .with_records(Some(valid_batch(Compression::None)))])]);
    let mut wire = BytesMut::new();
    exactly_codec::encode_response(
        &mut wire,
        exactly_codec::messages::ApiKey::Fetch,
        9,
        12,
        &ResponseKind::Fetch(resp),
    )
    .unwrap();
    let frame = FrameDecoder::default().decode(&mut wire).unwrap().unwrap();
    let (_, r) = decode_response::<FetchRequest>(frame, 12).unwrap();
    let p = &r.responses[0].partitions[0];
    assert_eq!(p.aborted_transactions.as_ref(), Some(&aborted));
    let n = Batches::new(p.records.clone().unwrap()).count();
    assert_eq!(n, 1);
}
