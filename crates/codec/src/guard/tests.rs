//! Tests of the guard against `kafka-protocol`, the ground truth of what its
//! decoder reads.
//!
//! The main test generates random, well-formed bodies from our own schemas
//! (non-empty arrays, nulls where allowed, multi-byte UTF-8, known and
//! unknown tagged fields, and "minimal" messages whose arrays end exactly at
//! the end of the frame), then demands that
//!
//! 1. `kafka-protocol` decodes each one and consumes every byte (so the
//!    schema's layout is the decoder's layout: a missing, extra or
//!    wrongly-versioned field shifts everything after it and fails here);
//! 2. `kafka-protocol` re-encodes the decoded value to the very same bytes
//!    whenever no known tagged field was generated (it drops known tagged
//!    fields equal to their default, so those messages are compared by
//!    value instead);
//! 3. the guard accepts both the generated and the re-encoded frame, and the
//!    public decoders return the same value.
//!
//! Together: the guard accepts everything `kafka-protocol` writes for these
//! versions, and reads lengths where the decoder reads them.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestKind, ResponseKind};

use super::schema::{f, message, Field, Message, Ty};
use super::tables::{lookup, SCHEMAS};
use super::{check_request, check_response, Direction, Fault};
use crate::{client_versions, decode_request, decode_response_kind, CodecError, CLIENT_APIS};

/// xorshift64*: deterministic, dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn one_in(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }
}

/// Writes random well-formed values of a schema.
struct Gen<'r> {
    rng: &'r mut Rng,
    version: i16,
    flexible: bool,
    /// Empty strings and bytes, no tagged fields, arrays of two minimal
    /// elements: every array is as small as it can be.
    minimal: bool,
    /// Whether a known tagged field was written.
    known_tags: bool,
    depth: u32,
}

const TEXT: &[&str] = &["", "a", "topic-1", "é", "ünï", "日本", "x.y_z", "🦀"];

fn put_uvarint(out: &mut BytesMut, mut v: u32) {
    while v >= 0x80 {
        out.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    out.put_u8(v as u8);
}

impl Gen<'_> {
    fn length(&mut self, out: &mut BytesMut, len: Option<usize>, classic16: bool) {
        match (self.flexible, len) {
            (true, None) => out.put_u8(0),
            (true, Some(n)) => put_uvarint(out, n as u32 + 1),
            (false, None) if classic16 => out.put_i16(-1),
            (false, None) => out.put_i32(-1),
            (false, Some(n)) if classic16 => out.put_i16(n as i16),
            (false, Some(n)) => out.put_i32(n as i32),
        }
    }

    fn is_null(&mut self, nullable: bool) -> bool {
        nullable && !self.minimal && self.rng.one_in(4)
    }

    fn count(&mut self) -> usize {
        if self.minimal {
            2
        } else if self.depth > 3 {
            self.rng.below(2) as usize
        } else {
            self.rng.below(4) as usize
        }
    }

    fn value(&mut self, ty: &Ty, nullable: bool, out: &mut BytesMut) {
        let r = self.rng.next();
        match ty {
            Ty::Int8 => out.put_i8(r as i8),
            Ty::Bool => out.put_u8((r & 1) as u8),
            Ty::Int16 | Ty::Uint16 => out.put_u16(r as u16),
            Ty::Int32 => out.put_u32(r as u32),
            Ty::Int64 | Ty::Float64 => out.put_u64(r),
            Ty::Uuid => {
                out.put_u64(r);
                out.put_u64(self.rng.next());
            }
            Ty::Str => {
                if self.is_null(nullable) {
                    return self.length(out, None, true);
                }
                let s = if self.minimal {
                    ""
                } else {
                    TEXT[self.rng.below(TEXT.len() as u64) as usize]
                };
                self.length(out, Some(s.len()), true);
                out.put_slice(s.as_bytes());
            }
            Ty::Bytes | Ty::Records => {
                if self.is_null(nullable) {
                    return self.length(out, None, false);
                }
                let n = if self.minimal {
                    0
                } else {
                    self.rng.below(40) as usize
                };
                self.length(out, Some(n), false);
                for _ in 0..n {
                    out.put_u8(self.rng.next() as u8);
                }
            }
            Ty::Array(elem) => {
                if self.is_null(nullable) {
                    return self.length(out, None, false);
                }
                let n = self.count();
                self.length(out, Some(n), false);
                for _ in 0..n {
                    self.value(elem, false, out);
                }
            }
            Ty::Structs(fields) => {
                if self.is_null(nullable) {
                    return self.length(out, None, false);
                }
                let n = self.count();
                self.length(out, Some(n), false);
                self.depth += 1;
                for _ in 0..n {
                    self.fields(fields, out);
                }
                self.depth -= 1;
            }
            Ty::Struct(fields) => self.fields(fields, out),
        }
    }

    fn fields(&mut self, fields: &'static [Field], out: &mut BytesMut) {
        for fld in fields {
            if fld.tag.is_none() && fld.versions.contains(self.version) {
                self.value(&fld.ty, fld.nullable.contains(self.version), out);
            }
        }
        if self.flexible {
            self.tags(fields, out);
        }
    }

    fn tags(&mut self, fields: &'static [Field], out: &mut BytesMut) {
        let mut entries: Vec<(u32, BytesMut)> = Vec::new();
        if !self.minimal {
            for fld in fields {
                let Some(tag) = fld.tag else { continue };
                if fld.versions.contains(self.version) && self.rng.one_in(2) {
                    let mut v = BytesMut::new();
                    self.value(&fld.ty, fld.nullable.contains(self.version), &mut v);
                    entries.push((tag, v));
                    self.known_tags = true;
                }
            }
            // unknown tags above every tag the schema knows
            let first_free = fields
                .iter()
                .filter_map(|f| f.tag)
                .max()
                .map_or(0, |t| t + 1);
            if self.rng.one_in(3) {
                let tag = first_free + self.rng.below(200) as u32;
                let n = self.rng.below(6) as usize;
                let v: Vec<u8> = (0..n).map(|_| self.rng.next() as u8).collect();
                entries.push((tag, BytesMut::from(&v[..])));
            }
        }
        put_uvarint(out, entries.len() as u32);
        for (tag, v) in entries {
            put_uvarint(out, tag);
            put_uvarint(out, v.len() as u32);
            out.put_slice(&v);
        }
    }
}

fn generate(msg: &Message, version: i16, rng: &mut Rng, minimal: bool) -> (Bytes, bool) {
    let mut g = Gen {
        rng,
        version,
        flexible: msg.flexible.contains(version),
        minimal,
        known_tags: false,
        depth: 0,
    };
    let mut out = BytesMut::new();
    g.fields(msg.fields, &mut out);
    (out.freeze(), g.known_tags)
}

/// A frame: a header for `api` at `version` (as a client or broker writes
/// it), then `body`.
fn frame(api: ApiKey, version: i16, direction: Direction, body: &[u8]) -> Bytes {
    let mut out = BytesMut::new();
    match direction {
        Direction::Request => {
            out.put_i16(api as i16);
            out.put_i16(version);
            out.put_i32(77);
            out.put_i16(7);
            out.put_slice(b"exactly");
            if api.request_header_version(version) >= 2 {
                out.put_u8(0);
            }
        }
        Direction::Response => {
            out.put_i32(77);
            if api.response_header_version(version) >= 1 {
                out.put_u8(0);
            }
        }
    }
    out.put_slice(body);
    out.freeze()
}

fn check(api: ApiKey, version: i16, direction: Direction, frame: &[u8]) -> Result<(), CodecError> {
    match direction {
        Direction::Request => check_request(api, version, frame),
        Direction::Response => check_response(api, version, frame),
    }
}

enum Kind {
    Request(RequestKind),
    Response(ResponseKind),
}

fn kp_decode(api: ApiKey, version: i16, direction: Direction, body: &Bytes) -> (Kind, usize) {
    let mut b = body.clone();
    let kind = match direction {
        Direction::Request => RequestKind::decode(api, &mut b, version).map(Kind::Request),
        Direction::Response => ResponseKind::decode(api, &mut b, version).map(Kind::Response),
    };
    match kind {
        Ok(k) => (k, b.len()),
        Err(e) => panic!(
            "{api:?} v{version} {direction:?}: kafka-protocol rejects our bytes {body:02x?}: {e}"
        ),
    }
}

fn kp_encode(kind: &Kind, version: i16) -> Bytes {
    let mut out = BytesMut::new();
    match kind {
        Kind::Request(k) => k.encode(&mut out, version),
        Kind::Response(k) => k.encode(&mut out, version),
    }
    .expect("kafka-protocol re-encodes what it decoded");
    out.freeze()
}

fn assert_same_value(a: &Kind, b: &Kind, ctx: &str) {
    match (a, b) {
        (Kind::Request(a), Kind::Request(b)) => assert_eq!(a, b, "{ctx}"),
        (Kind::Response(a), Kind::Response(b)) => assert_eq!(a, b, "{ctx}"),
        _ => panic!("{ctx}: kinds differ"),
    }
}

/// Every (API, version, direction) the client implements.
fn every_message() -> Vec<(ApiKey, i16, Direction)> {
    let mut all = Vec::new();
    for &(api, range) in CLIENT_APIS {
        for version in range.min..=range.max {
            for direction in [Direction::Request, Direction::Response] {
                all.push((api, version, direction));
            }
        }
    }
    all
}

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

// ------------------------------------------------------------ hand-made faults

fn malformed(r: Result<(), CodecError>) -> (String, Fault) {
    match r {
        Err(CodecError::Malformed { path, fault, .. }) => (path, fault),
        other => panic!("expected Malformed, got {other:?}"),
    }
}

/// Metadata v12 response (flexible) with `body` after the header.
fn metadata_v12(body: &[u8]) -> Result<(), CodecError> {
    check_response(
        ApiKey::Metadata,
        12,
        &frame(ApiKey::Metadata, 12, Direction::Response, body),
    )
}

#[test]
fn array_count_beyond_the_bytes() {
    // throttle, then a broker count of 2^28 in four varint bytes
    let (path, fault) = malformed(metadata_v12(&[
        0, 0, 0, 0, 0x81, 0x80, 0x80, 0x80, 0x01, 0, 0,
    ]));
    assert_eq!(path, "Brokers");
    assert_eq!(
        fault,
        Fault::CountPastEnd {
            declared: (1 << 28),
            available: 2,
            min_element: 4 + 1 + 4 + 1 + 1, // id, host, port, rack, tags
        }
    );
}

#[test]
fn deep_paths_name_the_element() {
    // Metadata v12: no brokers, null cluster id, controller, one topic whose
    // partition 0 declares 1000 replica nodes
    let mut b = BytesMut::new();
    b.put_i32(0);
    b.put_u8(1); // brokers: empty
    b.put_u8(0); // cluster id: null
    b.put_i32(1);
    b.put_u8(2); // topics: one
    b.put_i16(0);
    b.put_u8(2);
    b.put_slice(b"t");
    b.put_slice(&[0; 16]);
    b.put_u8(0); // not internal
    b.put_u8(2); // partitions: one
    b.put_i16(0);
    b.put_i32(0);
    b.put_i32(1);
    b.put_i32(0);
    put_uvarint(&mut b, 1001); // replica nodes: 1000
    b.put_i32(1);
    let (path, fault) = malformed(metadata_v12(&b));
    assert_eq!(path, "Topics[0].Partitions[0].ReplicaNodes");
    assert_eq!(
        fault,
        Fault::CountPastEnd {
            declared: 1000,
            available: 4,
            min_element: 4
        }
    );
}

#[test]
fn null_only_where_the_spec_allows() {
    // Metadata v12 brokers: null is not allowed
    let (path, fault) = malformed(metadata_v12(&[0, 0, 0, 0, 0]));
    assert_eq!((path.as_str(), fault), ("Brokers", Fault::UnexpectedNull));
    // FindCoordinator v2 host: -1 not allowed, -2 never
    for (len, fault) in [(-1, Fault::UnexpectedNull), (-2, Fault::NegativeLength(-2))] {
        let mut b = BytesMut::new();
        b.put_i32(0);
        b.put_i16(0);
        b.put_i16(-1); // error message: null is fine
        b.put_i32(1);
        b.put_i16(len);
        b.put_i32(9092);
        let r = check_response(
            ApiKey::FindCoordinator,
            2,
            &frame(ApiKey::FindCoordinator, 2, Direction::Response, &b),
        );
        assert_eq!(malformed(r), ("Host".to_owned(), fault));
    }
}

/// EndTxn v5 response (flexible) ending in `tail` (the tagged section).
fn end_txn_v5(tail: &[u8]) -> Result<(), CodecError> {
    let mut b = BytesMut::new();
    b.put_i32(0);
    b.put_i16(0);
    b.put_i64(42);
    b.put_i16(1);
    b.put_slice(tail);
    check_response(
        ApiKey::EndTxn,
        5,
        &frame(ApiKey::EndTxn, 5, Direction::Response, &b),
    )
}

#[test]
fn varints() {
    assert_eq!(
        malformed(end_txn_v5(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x00])),
        ("<tagged fields>".to_owned(), Fault::VarintTooLong)
    );
    assert_eq!(
        malformed(end_txn_v5(&[0x80, 0x80, 0x80, 0x80, 0x10])),
        ("<tagged fields>".to_owned(), Fault::VarintOverflow)
    );
    // the largest five-byte value is fine as a varint (then too many tags)
    assert!(matches!(
        malformed(end_txn_v5(&[0xff, 0xff, 0xff, 0xff, 0x0f])).1,
        Fault::CountPastEnd { .. }
    ));
    // a padded (non-minimal) zero is still zero, as the decoder reads it
    assert_eq!(end_txn_v5(&[0x80, 0x00]), Ok(()));
}

#[test]
fn tagged_fields() {
    // in order: fine, and unknown tags are skipped
    assert_eq!(end_txn_v5(&[2, 3, 1, 0xaa, 7, 0]), Ok(()));
    // duplicates and disorder
    assert_eq!(
        malformed(end_txn_v5(&[2, 3, 0, 3, 0])),
        (
            "<tag 3>".to_owned(),
            Fault::TagOutOfOrder {
                tag: 3,
                previous: 3
            }
        )
    );
    assert_eq!(
        malformed(end_txn_v5(&[2, 5, 0, 4, 0])),
        (
            "<tag 4>".to_owned(),
            Fault::TagOutOfOrder {
                tag: 4,
                previous: 5
            }
        )
    );
    // a huge size
    assert_eq!(
        malformed(end_txn_v5(&[1, 9, 0xff, 0xff, 0xff, 0xff, 0x07, 1, 2, 3])),
        (
            "<tag 9>".to_owned(),
            Fault::LengthPastEnd {
                declared: i32::MAX as u64,
                available: 3
            }
        )
    );
    // more tags than bytes
    assert!(matches!(
        malformed(end_txn_v5(&[100, 0, 0])).1,
        Fault::CountPastEnd {
            declared: 100,
            available: 2,
            min_element: 2
        }
    ));
}

/// ApiVersions v3 response with no api keys and `tags` as its tagged section.
fn api_versions_v3(tags: &[u8]) -> Result<(), CodecError> {
    let mut b = BytesMut::new();
    b.put_i16(0);
    b.put_u8(1);
    b.put_i32(0);
    b.put_slice(tags);
    check_response(
        ApiKey::ApiVersions,
        3,
        &frame(ApiKey::ApiVersions, 3, Direction::Response, &b),
    )
}

#[test]
fn known_tags_are_walked_by_type() {
    // SupportedFeatures (tag 0) of five bytes, holding a count of 2^32-2:
    // the decoder reads known tags by type, so this must not pass as five
    // opaque bytes
    let (path, fault) = malformed(api_versions_v3(&[1, 0, 5, 0xff, 0xff, 0xff, 0xff, 0x0f]));
    assert_eq!(path, "SupportedFeatures");
    assert!(matches!(
        fault,
        Fault::CountPastEnd {
            declared: 0xffff_fffe,
            available: 0,
            ..
        }
    ));
    // a value shorter than its declared size
    assert_eq!(
        malformed(api_versions_v3(&[1, 3, 2, 1, 0])),
        (
            "ZkMigrationReady".to_owned(),
            Fault::TagSizeMismatch {
                tag: 3,
                declared: 2,
                used: 1
            }
        )
    );
    // FinalizedFeaturesEpoch (tag 1) is an int64: 8 bytes, not 4
    assert!(matches!(
        malformed(api_versions_v3(&[1, 1, 4, 0, 0, 0, 1])).1,
        Fault::LengthPastEnd {
            declared: 8,
            available: 4
        }
    ));
    // well-formed: epoch 7 and zk flag
    assert_eq!(
        api_versions_v3(&[2, 1, 8, 0, 0, 0, 0, 0, 0, 0, 7, 3, 1, 1]),
        Ok(())
    );
}

#[test]
fn known_tag_outside_its_versions() {
    // Produce v9 is flexible, but CurrentLeader (tag 0) exists from v10
    let mut b = BytesMut::new();
    b.put_u8(2); // one topic
    b.put_u8(2);
    b.put_slice(b"t");
    b.put_u8(2); // one partition
    b.put_i32(0);
    b.put_i16(0);
    b.put_i64(0);
    b.put_i64(0);
    b.put_i64(0);
    b.put_u8(1); // no record errors
    b.put_u8(0); // null error message
    b.put_slice(&[1, 0, 9, 0, 0, 0, 1, 0, 0, 0, 2, 0]); // tag 0: leader 1, epoch 2
    b.put_u8(0); // topic tags
    b.put_i32(0); // throttle
    b.put_u8(0);
    let r = check_response(
        ApiKey::Produce,
        9,
        &frame(ApiKey::Produce, 9, Direction::Response, &b),
    );
    assert_eq!(
        malformed(r),
        (
            "Responses[0].PartitionResponses[0].<tag 0>".to_owned(),
            Fault::TagNotInVersion(0)
        )
    );
    // the same bytes at v10 are a leader hint
    let r = check_response(
        ApiKey::Produce,
        10,
        &frame(ApiKey::Produce, 10, Direction::Response, &b),
    );
    assert_eq!(r, Ok(()));
}

#[test]
fn request_header_faults() {
    // client id longer than the frame
    let mut b = BytesMut::new();
    b.put_i16(ApiKey::EndTxn as i16);
    b.put_i16(3);
    b.put_i32(1);
    b.put_i16(300);
    b.put_slice(b"abc");
    let r = decode_request(b.freeze());
    assert!(
        matches!(
            r,
            Err(CodecError::Malformed {
                direction: Direction::Request,
                ref path,
                fault: Fault::LengthPastEnd { declared: 300, available: 3 },
                ..
            }) if path == "header.ClientId"
        ),
        "{r:?}"
    );
}

#[test]
fn primitive_widths_of_the_dsl() {
    // types no client API uses yet still have their widths
    const M: Message = message(
        "none",
        &[
            f("Port", Ty::Uint16, "0+"),
            f("Ratio", Ty::Float64, "0+"),
            f("Ports", Ty::Array(&Ty::Uint16), "0+"),
        ],
    );
    let mut ok = BytesMut::new();
    ok.put_u16(9092);
    ok.put_f64(0.5);
    ok.put_i32(2);
    ok.put_u16(1);
    ok.put_u16(2);
    let mut w = super::walk::Walker::new(&ok, 0, false);
    assert!(w.fields(M.fields).is_ok());
    assert_eq!(w.position(), ok.len());
    let mut w = super::walk::Walker::new(&ok[..ok.len() - 1], 0, false);
    let e = w.fields(M.fields).unwrap_err();
    assert_eq!(e.path(), "Ports");
    assert_eq!(
        e.fault,
        Fault::CountPastEnd {
            declared: 2,
            available: 3,
            min_element: 2
        }
    );
}

fn default_request(api: ApiKey) -> RequestKind {
    use kafka_protocol::messages::*;
    match api {
        ApiKey::Produce => RequestKind::Produce(ProduceRequest::default()),
        ApiKey::Fetch => RequestKind::Fetch(FetchRequest::default()),
        ApiKey::ListOffsets => RequestKind::ListOffsets(ListOffsetsRequest::default()),
        ApiKey::Metadata => RequestKind::Metadata(MetadataRequest::default()),
        ApiKey::OffsetCommit => RequestKind::OffsetCommit(OffsetCommitRequest::default()),
        ApiKey::OffsetFetch => RequestKind::OffsetFetch(OffsetFetchRequest::default()),
        ApiKey::FindCoordinator => RequestKind::FindCoordinator(FindCoordinatorRequest::default()),
        ApiKey::JoinGroup => RequestKind::JoinGroup(JoinGroupRequest::default()),
        ApiKey::Heartbeat => RequestKind::Heartbeat(HeartbeatRequest::default()),
        ApiKey::LeaveGroup => RequestKind::LeaveGroup(LeaveGroupRequest::default()),
        ApiKey::SyncGroup => RequestKind::SyncGroup(SyncGroupRequest::default()),
        ApiKey::SaslHandshake => RequestKind::SaslHandshake(SaslHandshakeRequest::default()),
        ApiKey::SaslAuthenticate => {
            RequestKind::SaslAuthenticate(SaslAuthenticateRequest::default())
        }
        ApiKey::ApiVersions => RequestKind::ApiVersions(ApiVersionsRequest::default()),
        ApiKey::CreateTopics => RequestKind::CreateTopics(CreateTopicsRequest::default()),
        ApiKey::InitProducerId => RequestKind::InitProducerId(InitProducerIdRequest::default()),
        ApiKey::AddPartitionsToTxn => {
            RequestKind::AddPartitionsToTxn(AddPartitionsToTxnRequest::default())
        }
        ApiKey::AddOffsetsToTxn => RequestKind::AddOffsetsToTxn(AddOffsetsToTxnRequest::default()),
        ApiKey::EndTxn => RequestKind::EndTxn(EndTxnRequest::default()),
        ApiKey::TxnOffsetCommit => RequestKind::TxnOffsetCommit(TxnOffsetCommitRequest::default()),
        ApiKey::DescribeProducers => {
            RequestKind::DescribeProducers(DescribeProducersRequest::default())
        }
        ApiKey::DescribeTransactions => {
            RequestKind::DescribeTransactions(DescribeTransactionsRequest::default())
        }
        other => panic!("not a client API: {other:?}"),
    }
}

fn default_response(api: ApiKey) -> ResponseKind {
    use kafka_protocol::messages::*;
    match api {
        ApiKey::Produce => ResponseKind::Produce(ProduceResponse::default()),
        ApiKey::Fetch => ResponseKind::Fetch(FetchResponse::default()),
        ApiKey::ListOffsets => ResponseKind::ListOffsets(ListOffsetsResponse::default()),
        ApiKey::Metadata => ResponseKind::Metadata(MetadataResponse::default()),
        ApiKey::OffsetCommit => ResponseKind::OffsetCommit(OffsetCommitResponse::default()),
        ApiKey::OffsetFetch => ResponseKind::OffsetFetch(OffsetFetchResponse::default()),
        ApiKey::FindCoordinator => {
            ResponseKind::FindCoordinator(FindCoordinatorResponse::default())
        }
        ApiKey::JoinGroup => ResponseKind::JoinGroup(JoinGroupResponse::default()),
        ApiKey::Heartbeat => ResponseKind::Heartbeat(HeartbeatResponse::default()),
        ApiKey::LeaveGroup => ResponseKind::LeaveGroup(LeaveGroupResponse::default()),
        ApiKey::SyncGroup => ResponseKind::SyncGroup(SyncGroupResponse::default()),
        ApiKey::SaslHandshake => ResponseKind::SaslHandshake(SaslHandshakeResponse::default()),
        ApiKey::SaslAuthenticate => {
            ResponseKind::SaslAuthenticate(SaslAuthenticateResponse::default())
        }
        ApiKey::ApiVersions => ResponseKind::ApiVersions(ApiVersionsResponse::default()),
        ApiKey::CreateTopics => ResponseKind::CreateTopics(CreateTopicsResponse::default()),
        ApiKey::InitProducerId => ResponseKind::InitProducerId(InitProducerIdResponse::default()),
        ApiKey::AddPartitionsToTxn => {
            ResponseKind::AddPartitionsToTxn(AddPartitionsToTxnResponse::default())
        }
        ApiKey::AddOffsetsToTxn => {
            ResponseKind::AddOffsetsToTxn(AddOffsetsToTxnResponse::default())
        }
        ApiKey::EndTxn => ResponseKind::EndTxn(EndTxnResponse::default()),
        ApiKey::TxnOffsetCommit => {
            ResponseKind::TxnOffsetCommit(TxnOffsetCommitResponse::default())
        }
        ApiKey::DescribeProducers => {
            ResponseKind::DescribeProducers(DescribeProducersResponse::default())
        }
        ApiKey::DescribeTransactions => {
            ResponseKind::DescribeTransactions(DescribeTransactionsResponse::default())
        }
        other => panic!("not a client API: {other:?}"),
    }
}

#[test]
fn default_messages_encoded_by_kafka_protocol_pass() {
    for (api, version, direction) in every_message() {
        let kind = match direction {
            Direction::Request => Kind::Request(default_request(api)),
            Direction::Response => Kind::Response(default_response(api)),
        };
        let body = kp_encode(&kind, version);
        let whole = frame(api, version, direction, &body);
        if let Err(e) = check(api, version, direction, &whole) {
            panic!("{api:?} v{version} {direction:?}: {e}");
        }
    }
}
