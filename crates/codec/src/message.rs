//! Requests and responses: the `kafka-protocol` crate's generated message
//! structs, framed with the right header version for their API and version.
//!
//! Request headers are v1 (non-flexible) or v2 (flexible, tagged fields) and
//! response headers v0 or v1, chosen per API and version; the generated
//! `header_version` tables decide. `kafka-protocol`'s `anyhow` errors never
//! cross this boundary: they become [`CodecError`] variants.

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};

use crate::frame::write_frame;
use crate::CodecError;

/// The API key of a request type.
pub fn api_key_of<R: Request>() -> Result<ApiKey, CodecError> {
    ApiKey::try_from(R::KEY).map_err(|()| CodecError::UnknownApiKey(R::KEY))
}

/// Appends one whole size-prefixed request frame (header + body) to `dst`.
///
/// `version` must come from the negotiated [`crate::VersionTable`]; the
/// header version is derived from it.
pub fn encode_request<R: Request>(
    dst: &mut BytesMut,
    correlation_id: i32,
    client_id: Option<&str>,
    version: i16,
    request: &R,
) -> Result<usize, CodecError> {
    let api = api_key_of::<R>()?;
    let header = RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(client_id.map(|c| StrBytes::from_string(c.to_owned())));
    let header_version = <R as HeaderVersion>::header_version(version);
    let enc = |reason: &dyn std::fmt::Display| CodecError::Encode {
        api,
        version,
        reason: reason.to_string(),
    };
    write_frame(dst, |dst| {
        header.encode(dst, header_version).map_err(|e| enc(&e))?;
        request.encode(dst, version).map_err(|e| enc(&e))
    })
}

/// Reads the correlation id at the front of a response frame without
/// consuming it (every response header version starts with it).
pub fn peek_correlation_id(frame: &[u8]) -> Result<i32, CodecError> {
    match frame.get(..4) {
        Some(b) => Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]])),
        None => Err(CodecError::Header(format!(
            "frame of {} bytes has no correlation id",
            frame.len()
        ))),
    }
}

/// Decodes a response frame (without its size prefix) of request type `R` at
/// `version`: returns the correlation id and the body. The whole frame must be
/// consumed; trailing bytes are an error.
///
/// The frame first passes the wire guard ([`crate::guard::check_response`]),
/// so no length on the wire can make the decoder allocate beyond what the
/// frame holds; an (API, version) outside the client's range is refused.
pub fn decode_response<R: Request>(
    mut frame: Bytes,
    version: i16,
) -> Result<(i32, R::Response), CodecError> {
    let api = api_key_of::<R>()?;
    crate::guard::check_response(api, version, &frame)?;
    let header_version = <R::Response as HeaderVersion>::header_version(version);
    let header = ResponseHeader::decode(&mut frame, header_version)
        .map_err(|e| CodecError::Header(format!("{e:#}")))?;
    let body = R::Response::decode(&mut frame, version).map_err(|e| CodecError::Decode {
        api,
        version,
        reason: format!("{e:#}"),
        malformed: None,
    })?;
    if frame.has_remaining() {
        return Err(CodecError::TrailingBytes {
            api,
            version,
            extra: frame.remaining(),
        });
    }
    Ok((header.correlation_id, body))
}
