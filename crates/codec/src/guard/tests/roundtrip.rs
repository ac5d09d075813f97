//! Our schemas against `kafka-protocol`'s decoder and encoder, for every
//! client API, version and direction; truncation at every byte.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestKind, ResponseKind};

use super::generate::{generate, Rng};
use super::{assert_same_value, check, every_message, frame, kp_decode, kp_encode, Kind};
use crate::guard::tables::{coverage, lookup, SCHEMAS};
use crate::guard::Direction;
use crate::{client_versions, decode_request, decode_response_kind, CodecError, CLIENT_APIS};

const ROUNDS: usize = 200;

#[test]
fn kafka_protocol_reads_what_the_schemas_describe_and_the_guard_accepts_its_bytes() {
    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    let mut messages = 0usize;
    let mut compared_bytes = 0usize;
    for (api, version, direction) in every_message() {
        let msg = lookup(api, version, direction).expect("a schema for every client version");
        for round in 0..ROUNDS {
            let ctx = format!("{api:?} v{version} {direction:?} round {round}");
            let minimal = round % 10 == 0;
            let (body, known_tags) = generate(msg, version, &mut rng, minimal);
            // 1. the decoder reads exactly these bytes
            let (kind, left) = kp_decode(api, version, direction, &body);
            assert_eq!(left, 0, "{ctx}: kafka-protocol left bytes of {body:02x?}");
            // 2. and writes them back
            let again = kp_encode(&kind, version);
            if !known_tags {
                assert_eq!(again, body, "{ctx}: re-encoding differs");
                compared_bytes += 1;
            }
            let (kind2, left) = kp_decode(api, version, direction, &again);
            assert_eq!(left, 0, "{ctx}");
            assert_same_value(&kind, &kind2, &ctx);
            // 3. the guard accepts both, and the public decoders agree
            for b in [&body, &again] {
                let whole = frame(api, version, direction, b);
                if let Err(e) = check(api, version, direction, &whole) {
                    panic!("{ctx}: guard rejects valid bytes {b:02x?}: {e}");
                }
                match direction {
                    Direction::Request => {
                        let (header, got) = decode_request(whole).expect(&ctx);
                        assert_eq!(header.correlation_id, 77);
                        assert_same_value(&Kind::Request(got), &kind, &ctx);
                    }
                    Direction::Response => {
                        let (cid, got) = decode_response_kind(api, version, whole).expect(&ctx);
                        assert_eq!(cid, 77);
                        assert_same_value(&Kind::Response(got), &kind, &ctx);
                    }
                }
            }
            messages += 1;
        }
    }
    // every client version of both directions, and most compared byte for byte
    eprintln!("{messages} messages, {compared_bytes} re-encoded byte for byte");
    assert!(messages >= 2 * 100 * ROUNDS, "{messages}");
    assert!(
        compared_bytes * 2 > messages,
        "{compared_bytes} of {messages}"
    );
}

#[test]
fn coverage_is_exactly_what_kafka_protocol_decodes() {
    let empty = Bytes::new();
    for &(api, client) in CLIENT_APIS {
        for direction in [Direction::Request, Direction::Response] {
            let covered = coverage(api, direction).expect("schemas");
            let ctx = format!("{api:?} {direction:?}");
            // a superset of the client's range
            assert!(
                covered.min <= client.min && client.max <= covered.max,
                "{ctx}"
            );
            for v in covered.min..=covered.max {
                assert!(lookup(api, v, direction).is_some(), "{ctx} v{v}");
            }
            // and just past either end, the decoder refuses the version
            for v in [covered.min - 1, covered.max + 1] {
                assert!(lookup(api, v, direction).is_none(), "{ctx} v{v}");
                let mut b = empty.clone();
                let e = match direction {
                    Direction::Request => RequestKind::decode(api, &mut b, v).err(),
                    Direction::Response => ResponseKind::decode(api, &mut b, v).err(),
                };
                let e = e.map(|e| format!("{e:#}")).unwrap_or_default();
                assert!(e.contains("version not supported"), "{ctx} v{v}: {e}");
            }
        }
    }
    // a response is covered whenever its request could be sent, so a client
    // never meets NoWireSchema on a response to its own request
    for &(api, _) in CLIENT_APIS {
        let (req, resp) = (
            coverage(api, Direction::Request).expect("schemas"),
            coverage(api, Direction::Response).expect("schemas"),
        );
        assert!(resp.min <= req.min && req.max <= resp.max, "{api:?}");
    }
    // schemas only for the client's APIs
    for entry in SCHEMAS {
        assert!(client_versions(entry.key).is_some(), "{:?}", entry.key);
    }
}

#[test]
fn outside_coverage_is_refused_not_decoded() {
    // Fetch v19 does not exist (the typed path has no version check of its own)
    let whole = frame(ApiKey::Fetch, 19, Direction::Response, &[0; 16]);
    assert_eq!(
        crate::decode_response::<kafka_protocol::messages::FetchRequest>(whole, 19),
        Err(CodecError::NoWireSchema {
            api: ApiKey::Fetch,
            version: 19
        })
    );
    // OffsetCommit v10 is a valid API version, but only its response exists
    // in the message crate
    let whole = frame(ApiKey::OffsetCommit, 10, Direction::Request, &[0; 16]);
    assert_eq!(
        decode_request(whole),
        Err(CodecError::NoWireSchema {
            api: ApiKey::OffsetCommit,
            version: 10
        })
    );
    // a request of an API the client never sends
    let mut b = BytesMut::new();
    b.put_i16(ApiKey::AlterConfigs as i16);
    b.put_i16(0);
    b.put_i32(1);
    b.put_i16(-1);
    b.put_i32(0);
    b.put_u8(0);
    assert!(matches!(
        decode_request(b.freeze()),
        Err(CodecError::NoWireSchema {
            api: ApiKey::AlterConfigs,
            ..
        })
    ));
}

#[test]
fn truncation_at_every_byte_is_an_error() {
    let mut rng = Rng(0xc0ff_ee00_dead_beef);
    let mut cuts = 0usize;
    for (api, version, direction) in every_message() {
        let msg = lookup(api, version, direction).expect("schema");
        for round in 0..3 {
            let (body, _) = generate(msg, version, &mut rng, round == 0);
            let whole = frame(api, version, direction, &body);
            check(api, version, direction, &whole).expect("valid");
            for cut in 0..whole.len() {
                let part = whole.slice(..cut);
                let ctx = format!("{api:?} v{version} {direction:?} cut {cut}/{}", whole.len());
                let r = match direction {
                    Direction::Request => decode_request(part).map(|_| ()),
                    Direction::Response => decode_response_kind(api, version, part).map(|_| ()),
                };
                // a request shorter than api key + version never reaches the guard
                assert!(
                    matches!(&r, Err(e) if e.malformed().is_some())
                        || (cut < 4 && matches!(r, Err(CodecError::Header(_)))),
                    "{ctx}: {r:?}"
                );
                cuts += 1;
            }
            // one byte too many
            let mut long = BytesMut::from(&whole[..]);
            long.put_u8(0);
            assert!(matches!(
                check(api, version, direction, &long),
                Err(CodecError::TrailingBytes { extra: 1, .. })
            ));
        }
    }
    assert!(cuts > 10_000, "{cuts}");
}

/// Whether a result is one the guard explains: success, a refusal before or
/// by the guard, or what `kafka-protocol` may still reject after the guard
/// passed, text that is not UTF-8 (the guard checks lengths, not contents).
fn only_utf8(r: &Result<(), CodecError>) -> bool {
    match r {
        Err(e @ CodecError::Decode { reason, .. }) => {
            e.malformed().is_some()
                || reason.contains("utf-8")
                || reason.starts_with("version outside")
        }
        Err(CodecError::Header(reason)) => {
            reason.contains("utf-8") || reason.contains("no api key")
        }
        _ => true,
    }
}

#[test]
fn mutants_are_rejected_by_the_guard_or_decoded() {
    // Differential check of guard and decoder: flip, insert and delete bytes
    // of valid messages; whatever the guard lets through, the decoder reads
    // to the end (or rejects only for invalid UTF-8).
    let mut rng = Rng(0x0bad_cafe_f00d_0001);
    let (mut passed, mut total) = (0usize, 0usize);
    for (api, version, direction) in every_message() {
        let msg = lookup(api, version, direction).expect("schema");
        for _ in 0..20 {
            let (body, _) = generate(msg, version, &mut rng, false);
            let whole = frame(api, version, direction, &body);
            for _ in 0..10 {
                let mut m = whole.to_vec();
                let at = rng.below(m.len() as u64 + 1) as usize;
                match rng.below(3) {
                    0 if at < m.len() => m[at] ^= 1 << rng.below(8),
                    1 => m.insert(at, rng.next() as u8),
                    _ if at < m.len() => {
                        m.remove(at);
                    }
                    _ => m.push(0x80),
                }
                let m = Bytes::from(m);
                let r = match direction {
                    Direction::Request => decode_request(m).map(|_| ()),
                    Direction::Response => decode_response_kind(api, version, m).map(|_| ()),
                };
                assert!(
                    only_utf8(&r),
                    "{api:?} v{version} {direction:?}: guard passed, decoder failed: {r:?}"
                );
                passed += usize::from(r.is_ok());
                total += 1;
            }
        }
    }
    // a fair share of mutants are still valid messages (flipped values)
    assert!(passed * 10 > total, "{passed} of {total}");
    eprintln!("{passed} of {total} mutants decoded");
}
