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

use super::tables::coverage;
use super::{check_request, check_response, Direction};
use crate::{CodecError, CLIENT_APIS};

mod defaults;
mod faults;
mod generate;
mod roundtrip;

/// A frame: a header for `api` at `version` (as a client or broker writes
/// it), then `body`.
pub(super) fn frame(api: ApiKey, version: i16, direction: Direction, body: &[u8]) -> Bytes {
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

pub(super) fn check(
    api: ApiKey,
    version: i16,
    direction: Direction,
    frame: &[u8],
) -> Result<(), CodecError> {
    match direction {
        Direction::Request => check_request(api, version, frame),
        Direction::Response => check_response(api, version, frame),
    }
}

pub(super) enum Kind {
    Request(RequestKind),
    Response(ResponseKind),
}

pub(super) fn kp_decode(
    api: ApiKey,
    version: i16,
    direction: Direction,
    body: &Bytes,
) -> (Kind, usize) {
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

pub(super) fn kp_encode(kind: &Kind, version: i16) -> Bytes {
    let mut out = BytesMut::new();
    match kind {
        Kind::Request(k) => k.encode(&mut out, version),
        Kind::Response(k) => k.encode(&mut out, version),
    }
    .expect("kafka-protocol re-encodes what it decoded");
    out.freeze()
}

pub(super) fn assert_same_value(a: &Kind, b: &Kind, ctx: &str) {
    match (a, b) {
        (Kind::Request(a), Kind::Request(b)) => assert_eq!(a, b, "{ctx}"),
        (Kind::Response(a), Kind::Response(b)) => assert_eq!(a, b, "{ctx}"),
        _ => panic!("{ctx}: kinds differ"),
    }
}

/// Every (API, version, direction) the guard covers.
pub(super) fn every_message() -> Vec<(ApiKey, i16, Direction)> {
    let mut all = Vec::new();
    for &(api, _) in CLIENT_APIS {
        for direction in [Direction::Request, Direction::Response] {
            let range = coverage(api, direction).expect("every client API has schemas");
            for version in range.min..=range.max {
                all.push((api, version, direction));
            }
        }
    }
    all
}
