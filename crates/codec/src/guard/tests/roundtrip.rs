//! Our schemas against `kafka-protocol`'s decoder and encoder, for every
//! client API, version and direction; truncation at every byte.

use bytes::{BufMut, BytesMut};
use kafka_protocol::messages::ApiKey;

use super::generate::{generate, Rng};
use super::{assert_same_value, check, every_message, frame, kp_decode, kp_encode, Kind};
use crate::guard::tables::{lookup, SCHEMAS};
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
fn every_client_api_has_a_schema_for_its_whole_range() {
    for &(api, range) in CLIENT_APIS {
        assert!(SCHEMAS.iter().any(|(k, ..)| *k == api), "{api:?}");
        for v in range.min..=range.max {
            assert!(lookup(api, v, Direction::Request).is_some());
            assert!(lookup(api, v, Direction::Response).is_some());
        }
        assert!(lookup(api, range.max + 1, Direction::Response).is_none());
        assert!(lookup(api, range.min - 1, Direction::Request).is_none());
    }
    // no schema for an API the client does not use
    for (api, ..) in SCHEMAS {
        assert!(client_versions(*api).is_some(), "{api:?}");
    }
}

#[test]
fn outside_the_client_range_is_refused_not_decoded() {
    // Fetch v13 exists in kafka-protocol but is past our range (topic ids)
    let whole = frame(ApiKey::Fetch, 13, Direction::Response, &[0; 16]);
    assert_eq!(
        decode_response_kind(ApiKey::Fetch, 13, whole),
        Err(CodecError::NoWireSchema {
            api: ApiKey::Fetch,
            version: 13
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
                assert!(
                    matches!(r, Err(CodecError::Malformed { .. } | CodecError::Header(_))),
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
