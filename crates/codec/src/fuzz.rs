//! Entry points for the cargo-fuzz targets in `fuzz/` (compiled only with
//! `--cfg fuzzing`). Each target is a one-liner into a function here, so the
//! harness logic lives beside the code it exercises. Every hook asserts the
//! contract: typed errors, no panics, and decode-after-encode equality where
//! the input can be encoded.

use bytes::{Bytes, BytesMut};

use crate::compression::{decompress as decompress_with, Compression};
use crate::record::{Batches, DecodeOptions, RecordBatch, RecordHeader};
use crate::{BatchBuilder, CodecError, FrameDecoder, ProducerStamp};

/// Frames: the input is fed to a decoder with a small maximum, in chunks
/// whose sizes come from the first byte.
pub fn frames(data: &[u8]) {
    let Some((&chunk, rest)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(chunk).max(1);
    let dec = FrameDecoder::new(4096);
    let mut buf = BytesMut::new();
    for piece in rest.chunks(chunk) {
        buf.extend_from_slice(piece);
        loop {
            match dec.decode(&mut buf) {
                Ok(Some(frame)) => {
                    assert!(frame.len() <= 4096);
                    let _ = crate::peek_correlation_id(&frame);
                }
                Ok(None) => {
                    assert!(buf.capacity() <= 4 * 4096 + rest.len() + 64);
                    break;
                }
                Err(_) => return,
            }
        }
    }
}

/// Responses: byte 0 picks one of the client's APIs, byte 1 a version in
/// this client's range; the rest is the response frame (without size).
pub fn response(data: &[u8]) {
    let [a, v, frame @ ..] = data else {
        return;
    };
    let (api, range) = crate::CLIENT_APIS[usize::from(*a) % crate::CLIENT_APIS.len()];
    let span = (range.max - range.min + 1) as u8;
    let version = range.min + i16::from(*v % span);
    let r = crate::decode_response_kind(api, version, Bytes::copy_from_slice(frame));
    guard_explains(r.as_ref().map(|_| ()));
}

/// Requests (the fake-broker side): the input is a request frame.
pub fn request(data: &[u8]) {
    let r = crate::decode_request(Bytes::copy_from_slice(data));
    guard_explains(r.as_ref().map(|_| ()));
}

/// Differential check of the wire guard and `kafka-protocol`: once the guard
/// let a frame through, the decoder must read it, or reject it only for text
/// that is not UTF-8 (the guard checks lengths, not contents). Anything else
/// means the two read the bytes differently.
fn guard_explains(r: Result<(), &CodecError>) {
    match r {
        Err(e @ CodecError::Decode { reason, .. }) => assert!(
            e.malformed().is_some()
                || reason.contains("utf-8")
                || reason.starts_with("version outside"),
            "guard passed, decoder failed: {reason}"
        ),
        Err(CodecError::Header(reason)) => assert!(
            reason.contains("utf-8") || reason.contains("no api key"),
            "guard passed, header decoder failed: {reason}"
        ),
        _ => {}
    }
}

fn touch(batch: &RecordBatch) {
    let _ = batch.control_record();
    for r in batch.records() {
        let Ok(r) = r else { break };
        let _ = (r.key_bytes(), r.value_bytes(), r.offset(), r.timestamp());
        for h in r.headers() {
            let Ok(h) = h else { break };
            let _ = (h.key_str(), h.value_bytes());
        }
    }
}

/// Record batches: the input is a records set (as in a Fetch response),
/// decoded with the CRC checked, then again with it skipped so the fuzzer
/// reaches the record parser.
pub fn record_batches(data: &[u8]) {
    let bytes = Bytes::copy_from_slice(data);
    for verify_crc in [true, false] {
        let opts = DecodeOptions {
            max_decompressed_size: 1 << 20,
            verify_crc,
        };
        for batch in Batches::with_options(bytes.clone(), opts) {
            match batch {
                Ok(b) => touch(&b),
                Err(_) => break,
            }
        }
    }
}

/// Encode then decode: the input drives the records, codec and stamp of a
/// batch; decoding must give them back exactly.
pub fn batch_roundtrip(data: &[u8]) {
    let Some((&sel, mut rest)) = data.split_first() else {
        return;
    };
    let codec = Compression::ALL[usize::from(sel) % 5];
    let stamp = ProducerStamp {
        producer_id: i64::from(sel),
        producer_epoch: 3,
        base_sequence: 7,
        transactional: sel & 0x80 != 0,
    };
    let mut b = BatchBuilder::new(codec);
    let mut expected = Vec::new();
    while let [klen, vlen, more @ ..] = rest {
        let k = usize::from(*klen % 32).min(more.len());
        let (key, more) = more.split_at(k);
        let v = usize::from(*vlen).min(more.len());
        let (value, more) = more.split_at(v);
        let key = (*klen != 0xff).then_some(key);
        let value = (*vlen != 0xff).then_some(value);
        let headers = [RecordHeader {
            key: "h",
            value: key,
        }];
        let hs: &[RecordHeader<'_>] = if klen & 0x40 != 0 { &headers } else { &[] };
        assert!(b.append(i64::from(*klen), key, value, hs).is_ok());
        expected.push((key, value, hs.len()));
        rest = more;
    }
    let Ok(mut closed) = b.close() else {
        assert!(expected.is_empty());
        return;
    };
    let bytes = closed.stamp(stamp);
    let batch = match RecordBatch::decode(bytes) {
        Ok(b) => b,
        Err(e) => panic!("our own batch failed to decode: {e}"),
    };
    assert_eq!(batch.header().producer_id, stamp.producer_id);
    let mut n = 0;
    for (r, (key, value, hs)) in batch.records().zip(&expected) {
        let r = match r {
            Ok(r) => r,
            Err(e) => panic!("our own record failed to decode: {e}"),
        };
        assert_eq!((r.key(), r.value()), (*key, *value));
        assert_eq!(r.headers().count(), *hs);
        n += 1;
    }
    assert_eq!(n, expected.len());
}

/// One decompressor on arbitrary input, capped at 1 MiB.
pub fn decompress(codec: Compression, data: &[u8]) {
    if let Ok(out) = decompress_with(codec, data, 1 << 20) {
        assert!(out.len() <= 1 << 20);
    }
}
