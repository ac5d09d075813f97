//! The wire guard: a schema-driven check of every request and response
//! body, run before `kafka-protocol` decodes it.
//!
//! Why: `kafka-protocol` 0.18's array decoders reserve capacity for the
//! element count read from the wire before reading any element, so a frame of
//! a few bytes can ask for tens of gigabytes (see
//! `fuzz/regressions/kafka-protocol-oom/`). The guard walks the bytes along
//! a schema of the message (KIP-482 flexible versions and tagged fields
//! included), allocating nothing, and checks that
//!
//! - every fixed-size field, string, bytes and record set fits in the bytes
//!   that remain;
//! - every array's count fits too, given the fewest bytes one element can
//!   take (at least one), so no decoder can be made to reserve more elements
//!   than the frame could hold;
//! - null (-1, or 0 in compact form) appears only where the spec allows it,
//!   and no other negative length appears;
//! - unsigned varints are at most five bytes and fit 32 bits;
//! - tagged fields come in strictly increasing tag order (no duplicates),
//!   each fits in what remains, and a known tagged field's value fills
//!   exactly its declared size (the decoder reads known tags by type);
//! - the header and body are consumed exactly.
//!
//! Only then is the message handed to the decoder, whose allocations are now
//! bounded by what the frame really contains: every element counted is
//! present. (Decoding still expands bytes into structs: an element of a few
//! wire bytes becomes a struct of 32-232 bytes, so a frame of N bytes of
//! minimal elements decodes into up to ~30 N bytes; the frame size limit,
//! [`crate::FrameDecoder::new`], is what caps that.) A failure is a
//! [`CodecError::Decode`] naming the API and version and carrying a
//! [`Malformed`]: the direction, the path to the field (e.g. `Brokers` or
//! `Responses[0].Partitions[2].Records`) and a [`Fault`] with the declared and
//! available lengths. (It is a `Decode` error rather than a variant of its
//! own so that every caller's existing handling of undecodable responses,
//! such as `exactly-net` judging the request delivered, applies unchanged.)
//!
//! Coverage: every API in [`crate::CLIENT_APIS`], both directions, at every
//! version `kafka-protocol` 0.18 decodes for it (a superset of the client's
//! range). Any other (API, version, direction) is refused with
//! [`CodecError::NoWireSchema`] rather than decoded unchecked.

mod describe;
mod schema;
mod tables;
mod walk;

#[doc(hidden)]
pub use describe::{describe, described, FieldShape, MessageShape};

use kafka_protocol::messages::ApiKey;

use crate::CodecError;
use walk::{Failure, Seg, Walker};

/// Which side of the exchange a message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Client to broker.
    Request,
    /// Broker to client.
    Response,
}

/// The wire guard's verdict on a message it refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{direction:?} at {path}: {fault}")]
pub struct Malformed {
    /// Request or response.
    pub direction: Direction,
    /// Where: `header.ClientId`, `Brokers`, `Responses[0].Partitions[3].Records`,
    /// `<tagged fields>`, `Topics[0].<tag 7>`.
    pub path: String,
    /// What.
    pub fault: Fault,
}

/// What was wrong with the bytes at one place of a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Fault {
    /// A fixed-size field, string, bytes, record set or tagged field needs
    /// more bytes than remain.
    #[error("declares {declared} bytes, {available} available")]
    LengthPastEnd {
        /// Bytes the field declares (or, for a fixed-size field, needs).
        declared: u64,
        /// Bytes left in the message (or in the enclosing tagged field).
        available: usize,
    },
    /// An array (or tagged-field section) counts more elements than the
    /// remaining bytes could hold.
    #[error(
        "declares {declared} elements of at least {min_element} bytes, {available} bytes available"
    )]
    CountPastEnd {
        /// The element count on the wire.
        declared: u64,
        /// Bytes left in the message (or in the enclosing tagged field).
        available: usize,
        /// The fewest bytes one element takes.
        min_element: usize,
    },
    /// Null in a field that is not nullable at this version.
    #[error("null where the field is not nullable")]
    UnexpectedNull,
    /// A negative length or count other than -1.
    #[error("negative length {0}")]
    NegativeLength(i32),
    /// An unsigned varint whose fifth byte still has the continuation bit.
    #[error("varint longer than 5 bytes")]
    VarintTooLong,
    /// An unsigned varint that does not fit 32 bits.
    #[error("varint overflows 32 bits")]
    VarintOverflow,
    /// A tag not greater than the one before it (duplicates included).
    #[error("tag {tag} after tag {previous}")]
    TagOutOfOrder {
        /// This tag.
        tag: u32,
        /// The tag before it.
        previous: u32,
    },
    /// A known tagged field whose value does not fill its declared size.
    #[error("tag {tag} declares {declared} bytes, its value takes {used}")]
    TagSizeMismatch {
        /// The tag.
        tag: u32,
        /// The size on the wire.
        declared: u32,
        /// The bytes its value took.
        used: usize,
    },
    /// A tag this message defines, but not at this version.
    #[error("tag {0} is not valid at this version")]
    TagNotInVersion(u32),
}

/// Checks a response frame (header and body, without the size prefix) of
/// `api` at `version`.
pub fn check_response(api: ApiKey, version: i16, frame: &[u8]) -> Result<(), CodecError> {
    let header_version = api.response_header_version(version);
    check(api, version, Direction::Response, frame, |w| {
        w.take(4)?; // correlation id
        if header_version >= 1 {
            w.tagged(&[])?;
        }
        Ok(())
    })
}

/// Checks a request frame (header and body, without the size prefix) of
/// `api` at `version`.
pub fn check_request(api: ApiKey, version: i16, frame: &[u8]) -> Result<(), CodecError> {
    let header_version = api.request_header_version(version);
    check(api, version, Direction::Request, frame, |w| {
        w.take(8)?; // api key, api version, correlation id
        if header_version >= 1 {
            w.classic_nullable_string()
                .map_err(|e| e.at(Seg::Field("ClientId")))?;
        }
        if header_version >= 2 {
            w.tagged(&[])?;
        }
        Ok(())
    })
}

fn check(
    api: ApiKey,
    version: i16,
    direction: Direction,
    frame: &[u8],
    header: impl FnOnce(&mut Walker<'_>) -> walk::Step,
) -> Result<(), CodecError> {
    let Some(message) = tables::lookup(api, version, direction) else {
        return Err(CodecError::NoWireSchema { api, version });
    };
    let malformed = |e: Box<Failure>| {
        let m = Malformed {
            direction,
            path: e.path(),
            fault: e.fault.clone(),
        };
        CodecError::Decode {
            api,
            version,
            reason: m.to_string(),
            malformed: Some(Box::new(m)),
        }
    };
    // The header is never flexible in the sense of compact strings.
    let mut w = Walker::new(frame, version, false);
    header(&mut w).map_err(|e| malformed(e.at(Seg::Field("header"))))?;
    let body = &frame[w.position()..];
    let mut w = Walker::new(body, version, message.flexible.contains(version));
    w.fields(message.fields).map_err(malformed)?;
    if w.position() != body.len() {
        return Err(CodecError::TrailingBytes {
            api,
            version,
            extra: body.len() - w.position(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
