//! SASL authentication over Kafka frames: SaslHandshake v1 names the
//! mechanism (KIP-43), then SaslAuthenticate carries each token (KIP-152).
//! Mechanisms: PLAIN (RFC 4616), SCRAM-SHA-256/512 (RFC 5802/7677, KIP-84),
//! OAUTHBEARER with a user token callback (RFC 7628, KIP-255, KIP-342).
//!
//! A refused authentication is [`NetError::Authentication`], which is not
//! retriable: a wrong password never turns into a reconnect loop.
//! Not done: re-authentication before `session_lifetime_ms` ends (KIP-368);
//! a broker that enforces it closes the connection and we reconnect.

mod scram;

use std::time::Duration;

use bytes::Bytes;
use exactly_codec::messages::{
    SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest,
};
use exactly_codec::protocol::StrBytes;
use exactly_codec::ErrorCode;

use crate::config::{OAuthToken, SaslConfig, SaslCredentials, SaslMechanism};
use crate::conn::Connection;
use crate::error::NetError;
use scram::{ScramClient, ScramHash};

/// Authenticates a freshly handshaken connection. Returns the session
/// lifetime the broker announced (KIP-368), if any.
pub(crate) async fn authenticate(
    conn: &mut Connection,
    sasl: &SaslConfig,
) -> Result<Option<Duration>, NetError> {
    let mut lifetime = 0i64;
    exchange(conn, sasl, &mut lifetime).await?;
    Ok((lifetime > 0).then(|| Duration::from_millis(lifetime.unsigned_abs())))
}

async fn exchange(
    conn: &mut Connection,
    sasl: &SaslConfig,
    lifetime: &mut i64,
) -> Result<(), NetError> {
    let mech = sasl.mechanism.name();
    let fail = |m: String| NetError::Authentication {
        mechanism: mech.into(),
        message: m.into(),
    };
    let hs = conn
        .send_at(
            &SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str(mech)),
            1,
        )
        .await?;
    if let Some(code) = ErrorCode::from_code(hs.error_code) {
        conn.metrics().record_error(code);
        let enabled: Vec<&str> = hs.mechanisms.iter().map(|m| m.as_str()).collect();
        return Err(fail(format!(
            "broker refused the mechanism ({code}); it enables {enabled:?}"
        )));
    }
    match (&sasl.mechanism, &sasl.credentials) {
        (SaslMechanism::Plain, SaslCredentials::Password { username, password }) => {
            let mut tok = Vec::with_capacity(username.len() + password.len() + 2);
            tok.push(0);
            tok.extend_from_slice(username.as_bytes());
            tok.push(0);
            tok.extend_from_slice(password.as_bytes());
            step(conn, mech, lifetime, tok).await?;
            Ok(())
        }
        (
            m @ (SaslMechanism::ScramSha256 | SaslMechanism::ScramSha512),
            SaslCredentials::Password { username, password },
        ) => {
            let hash = if *m == SaslMechanism::ScramSha256 {
                ScramHash::Sha256
            } else {
                ScramHash::Sha512
            };
            let mut client = ScramClient::new(
                hash,
                username,
                password,
                ScramClient::random_nonce().map_err(fail)?,
            );
            let server_first = step(conn, mech, lifetime, client.client_first()).await?;
            let client_final = client.server_first(&server_first).map_err(fail)?;
            let server_final = step(conn, mech, lifetime, client_final).await?;
            client.server_final(&server_final).map_err(fail)
        }
        (SaslMechanism::OAuthBearer, SaslCredentials::Token(provider)) => {
            let token = provider()
                .await
                .map_err(|e| fail(format!("token callback failed: {e}")))?;
            let challenge = step(conn, mech, lifetime, oauth_initial(&token)).await?;
            if challenge.is_empty() {
                return Ok(());
            }
            // RFC 7628 §3.2.3: the server sent an error; acknowledge it with
            // a lone separator and report what it said.
            let detail = String::from_utf8_lossy(&challenge).into_owned();
            let _ = step(conn, mech, lifetime, vec![0x01]).await;
            Err(fail(format!("token refused: {detail}")))
        }
        _ => Err(fail("credentials do not fit the mechanism".into())),
    }
}

/// The OAUTHBEARER client's initial response (RFC 7628 §3.1; extensions per
/// KIP-342).
fn oauth_initial(token: &OAuthToken) -> Vec<u8> {
    let mut s = format!("n,,\x01auth=Bearer {}\x01", token.token);
    for (k, v) in &token.extensions {
        s.push_str(&format!("{k}={v}\x01"));
    }
    s.push('\x01');
    s.into_bytes()
}

/// One SaslAuthenticate round trip; returns the server's bytes.
async fn step(
    conn: &Connection,
    mech: &str,
    lifetime: &mut i64,
    token: Vec<u8>,
) -> Result<Bytes, NetError> {
    let req = SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(token));
    let resp: SaslAuthenticateResponse = conn.send(&req).await?;
    if let Some(code) = ErrorCode::from_code(resp.error_code) {
        conn.metrics().record_error(code);
        let msg = resp
            .error_message
            .as_ref()
            .map(|m| m.to_string())
            .unwrap_or_default();
        return Err(NetError::Authentication {
            mechanism: mech.into(),
            message: format!("{code}: {msg}").into(),
        });
    }
    *lifetime = resp.session_lifetime_ms;
    Ok(resp.auth_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oauth_initial_response_shape() {
        let t = OAuthToken {
            token: "abc.def.ghi".into(),
            extensions: vec![("traceId".into(), "42".into())],
        };
        assert_eq!(
            oauth_initial(&t),
            b"n,,\x01auth=Bearer abc.def.ghi\x01traceId=42\x01\x01"
        );
    }
}
