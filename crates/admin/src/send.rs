//! One send path for every admin request: the version is the highest both
//! the codec's client range (`exactly_codec::CLIENT_APIS`) and the broker
//! offer, so an API the codec cannot decode at what the broker speaks is
//! refused before anything is written.

use exactly_codec::protocol::Request;
use exactly_net::{Connection, ResponseMeta, SendOptions};

use crate::AdminError;

/// Sends `req` on `conn` at the negotiated version and waits for the answer.
pub(crate) async fn send<R>(conn: &Connection, req: &R) -> Result<R::Response, AdminError>
where
    R: Request,
    R::Response: ResponseMeta,
{
    let api = exactly_codec::message::api_key_of::<R>()?;
    let version = conn.versions().pick_client(api)?;
    Ok(conn
        .send_with(
            req,
            SendOptions {
                version: Some(version),
                timeout: None,
            },
        )
        .await?)
}

/// `timeout` in milliseconds as the wire's i32.
pub(crate) fn millis(d: std::time::Duration) -> i32 {
    i32::try_from(d.as_millis()).unwrap_or(i32::MAX)
}
