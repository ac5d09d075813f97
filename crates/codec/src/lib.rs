//! # exactly-codec
//!
//! The pure wire codec of `exactly`: size-prefixed framing, request/response
//! headers chosen per API and version, version negotiation from ApiVersions,
//! and Kafka's error codes as a typed enum.
//!
//! It does no I/O and depends on no runtime: decoders are incremental
//! (`Ok(None)` means "need more bytes") and encoders write into the caller's
//! buffer, so the same code serves a tokio connection, a fuzzer and a test.
//!
//! Message structs come from the [`kafka_protocol`] crate (re-exported as
//! [`messages`] and [`protocol`]); its `anyhow` errors are converted to
//! [`CodecError`] at this boundary.
//!
//! Record batches (magic v2) are our own: [`record::BatchBuilder`] appends
//! records into an open buffer and [`record::ClosedBatch::stamp`] writes the
//! producer fields and CRC last; [`record::RecordBatch`] and
//! [`record::Batches`] decode zero-copy. [`compression`] is pure Rust, with
//! decompression capped against bombs.
//!
//! [`apis`] lists the version range this client implements per API
//! ([`client_versions`]) and offers the broker side of the wire
//! ([`decode_request`], [`encode_response`]) for fake brokers in tests.
//!
//! What it does not do: no sockets, no timers, no retries, no correlation-id
//! bookkeeping (that is `exactly-net`), no transaction decisions (that is
//! `exactly-txn`; this crate only writes the producer fields it is given).
//!
//! Message bodies are decoded by `kafka-protocol` 0.18, whose array
//! decoders reserve capacity from the element count on the wire before
//! reading any element. So every frame first passes [`guard`]: a
//! schema-driven walk of the header and body (every API and version the
//! client speaks) that checks each length, count, null, varint and tagged
//! field against the bytes that remain, allocating nothing; a failure is a
//! [`CodecError::Decode`] whose [`guard::Malformed`] names the field path and
//! the declared and available lengths. Only
//! then does `kafka-protocol` decode. Record batches, frames and compression
//! are ours and bound their own allocations.

// Unsafe code is denied (the workspace forbids it) except in one measured hot
// spot, `record::writer`, which allows it for itself; see its module doc.
#![deny(unsafe_code)]

pub mod apis;
pub mod compression;
mod coordinator;
mod error;
mod error_code;
pub mod frame;
#[cfg(fuzzing)]
#[doc(hidden)]
pub mod fuzz;
pub mod guard;
pub mod message;
pub mod record;
pub mod versions;

pub use apis::{
    client_versions, decode_request, decode_response_kind, default_request, default_response,
    encode_response, CLIENT_APIS,
};
pub use compression::Compression;
pub use coordinator::CoordinatorType;
pub use error::CodecError;
pub use error_code::ErrorCode;
pub use frame::{FrameDecoder, DEFAULT_MAX_FRAME_SIZE};
pub use message::{decode_response, encode_request, peek_correlation_id};
pub use record::{BatchBuilder, Batches, ClosedBatch, ProducerStamp, RecordBatch, RecordError};
pub use versions::VersionTable;

/// The generated Kafka message structs (requests, responses, headers).
pub use kafka_protocol::messages;
/// Low-level protocol traits and types (`Request`, `StrBytes`, `VersionRange`).
pub use kafka_protocol::protocol;
