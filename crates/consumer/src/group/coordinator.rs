//! The link to the group coordinator: FindCoordinator through the cluster
//! client, then a connection of its own.
//!
//! The coordinator gets a dedicated connection (as the Java client opens one
//! under a separate node id) because Kafka answers requests on a connection
//! in order: a heartbeat or an offset commit queued behind a Fetch that
//! long-polls for `fetch.max.wait.ms` would wait for it, and a JoinGroup that
//! waits for the rest of the group would hold up every fetch behind it.
//!
//! Invariant: the cached connection is the one to the coordinator of the
//! cache entry it was opened for; a NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE
//! or lost connection drops both, so the next call looks the coordinator up
//! again.

use std::sync::Arc;
use std::time::Duration;

use exactly_codec::message::api_key_of;
use exactly_codec::protocol::Request;
use exactly_codec::ErrorCode;
use exactly_net::{
    Client, Connection, Connector, Coordinator, CoordinatorType, NetError, ResponseMeta,
    SendOptions,
};

/// A cached coordinator and the connection to it.
type Linked = (Coordinator, Connection);

/// See the module docs. Shared (behind an `Arc`) by the consumer, its join
/// task and its heartbeat task.
#[derive(Debug)]
pub struct CoordinatorLink {
    client: Client,
    group_id: String,
    connector: Connector,
    linked: tokio::sync::Mutex<Option<Linked>>,
}

impl CoordinatorLink {
    /// A link for `group_id`; nothing is looked up yet.
    pub fn new(client: Client, group_id: String) -> Result<Self, NetError> {
        let connector =
            Connector::new(Arc::new(client.config().clone()), client.metrics().clone())?;
        Ok(Self {
            client,
            group_id,
            connector,
            linked: tokio::sync::Mutex::new(None),
        })
    }

    /// The group id.
    pub fn group_id(&self) -> &str {
        &self.group_id
    }

    async fn connection(&self) -> Result<Linked, NetError> {
        let mut linked = self.linked.lock().await;
        if let Some((c, conn)) = &*linked {
            if !conn.is_closed() {
                return Ok((c.clone(), conn.clone()));
            }
        }
        *linked = None;
        let c = self
            .client
            .coordinator(CoordinatorType::Group, &self.group_id)
            .await?;
        let addr = match self.client.view().broker(c.broker_id) {
            Some(b) => b.addr(),
            None => self
                .client
                .refresh_metadata(&[])
                .await?
                .broker(c.broker_id)
                .map(|b| b.addr())
                .ok_or(NetError::UnknownBroker(c.broker_id))?,
        };
        match self.connector.connect(&addr, Some(c.broker_id)).await {
            Ok(conn) => {
                tracing::debug!(group = %self.group_id, broker_id = c.broker_id, "group coordinator connected");
                *linked = Some((c.clone(), conn.clone()));
                Ok((c, conn))
            }
            Err(e) => {
                self.client.invalidate_coordinator(
                    CoordinatorType::Group,
                    &self.group_id,
                    c.generation,
                );
                Err(e)
            }
        }
    }

    /// Sends the request `build` makes for the version the coordinator
    /// supports (within the client's range). A failed request that may mean
    /// the coordinator is gone drops the link.
    pub async fn call<R, F>(
        &self,
        build: F,
        timeout: Option<Duration>,
    ) -> Result<(R::Response, Coordinator), NetError>
    where
        R: Request,
        R::Response: ResponseMeta,
        F: FnOnce(i16) -> R,
    {
        let (c, conn) = self.connection().await?;
        let api = api_key_of::<R>()?;
        let version = conn.versions().pick_client(api)?;
        let req = build(version);
        match conn
            .send_with(
                &req,
                SendOptions {
                    version: Some(version),
                    timeout,
                },
            )
            .await
        {
            Ok(resp) => Ok((resp, c)),
            Err(e) => {
                if e.needs_metadata_refresh() || e.is_retriable() {
                    self.reset(&c).await;
                }
                Err(e)
            }
        }
    }

    /// Reports a coordinator error code from a response; on NOT_COORDINATOR
    /// or COORDINATOR_NOT_AVAILABLE the link is dropped. Returns whether a
    /// new lookup is due.
    pub async fn on_error(&self, code: ErrorCode, c: &Coordinator) -> bool {
        let moved =
            self.client
                .on_coordinator_error(CoordinatorType::Group, &self.group_id, code, c);
        if moved {
            self.reset(c).await;
        }
        moved
    }

    /// Drops the link if it is still the one to `c`.
    async fn reset(&self, c: &Coordinator) {
        let mut linked = self.linked.lock().await;
        if linked.as_ref().is_some_and(|(cur, _)| cur == c) {
            if let Some((_, conn)) = linked.take() {
                conn.close();
            }
            self.client.invalidate_coordinator(
                CoordinatorType::Group,
                &self.group_id,
                c.generation,
            );
        }
    }

    /// Closes the connection.
    pub async fn close(&self) {
        if let Some((_, conn)) = self.linked.lock().await.take() {
            conn.close();
        }
    }
}
