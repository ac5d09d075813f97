//! ApiVersions, the first request on every connection (KIP-35), sent at the
//! newest version with the client software name and version (KIP-511). A
//! broker that does not know that version answers UNSUPPORTED_VERSION with a
//! v0-shaped body listing its ApiVersions range; we retry at the highest
//! version both support.

use std::time::Duration;

use bytes::BytesMut;
use exactly_codec::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};
use exactly_codec::protocol::{Message, StrBytes};
use exactly_codec::{decode_response, encode_request, ErrorCode, VersionTable};

use super::pipeline::Pipeline;
use crate::error::NetError;

/// The name sent as `client_software_name`.
pub(crate) const SOFTWARE_NAME: &str = "exactly";

fn request(version: i16) -> ApiVersionsRequest {
    let r = ApiVersionsRequest::default();
    if version >= 3 {
        r.with_client_software_name(StrBytes::from_static_str(SOFTWARE_NAME))
            .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")))
    } else {
        r
    }
}

/// Runs ApiVersions on a fresh pipeline and returns the version table.
pub(super) async fn api_versions(
    pipe: &Pipeline,
    client_id: &str,
    timeout: Duration,
) -> Result<VersionTable, NetError> {
    let mut version = ApiVersionsRequest::VERSIONS.max;
    // At most one downgrade is ever needed; a third answer is a broken broker.
    for _ in 0..3 {
        let mut frame = BytesMut::new();
        encode_request(&mut frame, 0, Some(client_id), version, &request(version))?;
        let reply = pipe
            .request(frame, ApiKey::ApiVersions as i16, version, timeout)
            .await?;
        // The body starts with error_code in every version (after the v0
        // response header, which is the correlation id alone).
        let code = reply
            .frame
            .get(4..6)
            .map(|b| i16::from_be_bytes([b[0], b[1]]))
            .unwrap_or(0);
        let decode_at = if code == ErrorCode::UnsupportedVersion.code() {
            0
        } else {
            version
        };
        let (_, resp) = decode_response::<ApiVersionsRequest>(reply.frame, decode_at)?;
        match VersionTable::from_response(&resp) {
            Ok(t) => return Ok(t),
            Err(ErrorCode::UnsupportedVersion) if version > 0 => {
                version = downgrade(&resp, version);
                tracing::debug!(version, "ApiVersions downgraded");
            }
            Err(code) => {
                return Err(NetError::Kafka {
                    api: ApiKey::ApiVersions,
                    code,
                    message: None,
                })
            }
        }
    }
    Err(NetError::Kafka {
        api: ApiKey::ApiVersions,
        code: ErrorCode::UnsupportedVersion,
        message: Some("broker kept refusing ApiVersions".into()),
    })
}

/// The version to retry at: the broker's highest ApiVersions version when it
/// listed one below ours, else v0.
fn downgrade(resp: &ApiVersionsResponse, tried: i16) -> i16 {
    resp.api_keys
        .iter()
        .find(|k| k.api_key == ApiKey::ApiVersions as i16)
        .map(|k| k.max_version)
        .filter(|&m| (0..tried).contains(&m))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use exactly_codec::messages::api_versions_response::ApiVersion;

    use super::*;

    #[test]
    fn downgrade_picks_broker_max_below_ours() {
        let resp = ApiVersionsResponse::default().with_api_keys(vec![ApiVersion::default()
            .with_api_key(ApiKey::ApiVersions as i16)
            .with_min_version(0)
            .with_max_version(2)]);
        assert_eq!(downgrade(&resp, 4), 2);
        assert_eq!(downgrade(&resp, 2), 0);
        assert_eq!(downgrade(&ApiVersionsResponse::default(), 4), 0);
    }

    #[test]
    fn software_name_only_from_v3() {
        assert_eq!(request(3).client_software_name.as_str(), "exactly");
        assert_eq!(request(2).client_software_name.as_str(), "");
    }
}
