//! Group and transaction coordinators (FindCoordinator; KIP-699 batches many
//! keys in one request from v4), cached per (key type, key) with a
//! generation so that a NOT_COORDINATOR seen on an old lookup cannot evict a
//! newer one.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use exactly_codec::messages::{ApiKey, FindCoordinatorRequest};
use exactly_codec::protocol::StrBytes;
use exactly_codec::ErrorCode;
use tokio::time::Instant;

use super::Client;
use crate::backoff::backoff;
use crate::error::NetError;

/// The coordinator key type (defined once, in exactly-codec).
pub use exactly_codec::CoordinatorType;

/// A cached coordinator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coordinator {
    /// The coordinator's broker id.
    pub broker_id: i32,
    /// The generation of this cache entry: pass it to
    /// [`Client::invalidate_coordinator`].
    pub generation: u64,
}

/// One key's answer: key, node id, host, port, error, error message.
type Answer = (String, i32, String, i32, Option<ErrorCode>, Option<String>);

fn retriable_lookup(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::CoordinatorNotAvailable
            | ErrorCode::CoordinatorLoadInProgress
            | ErrorCode::NotCoordinator
            | ErrorCode::RequestTimedOut
    )
}

impl Client {
    /// The coordinator for `key`, from the cache or looked up.
    pub async fn coordinator(
        &self,
        ty: CoordinatorType,
        key: &str,
    ) -> Result<Coordinator, NetError> {
        if let Some(c) = self.cached_coordinator(ty, key) {
            return Ok(c);
        }
        let mut all = self.find_coordinators(ty, &[key]).await?;
        all.remove(key).unwrap_or_else(|| {
            Err(NetError::Kafka {
                api: ApiKey::FindCoordinator,
                code: ErrorCode::CoordinatorNotAvailable,
                message: Some("key missing from the response".into()),
            })
        })
    }

    /// The cached coordinator for `key`, if any (no I/O).
    pub fn cached_coordinator(&self, ty: CoordinatorType, key: &str) -> Option<Coordinator> {
        self.inner
            .coordinators
            .lock()
            .ok()?
            .get(&(ty, key.to_owned()))
            .cloned()
    }

    /// Forgets the coordinator of `key` after NOT_COORDINATOR (or a lost
    /// connection to it), if the entry is still the one of `generation`.
    pub fn invalidate_coordinator(&self, ty: CoordinatorType, key: &str, generation: u64) -> bool {
        let Ok(mut m) = self.inner.coordinators.lock() else {
            return false;
        };
        let k = (ty, key.to_owned());
        if m.get(&k).is_some_and(|c| c.generation == generation) {
            m.remove(&k);
            true
        } else {
            false
        }
    }

    /// Reports an error code from a coordinator's response: counts it and,
    /// on NOT_COORDINATOR or COORDINATOR_NOT_AVAILABLE, forgets the entry of
    /// `coordinator` (if still current). Returns whether a new lookup is due.
    pub fn on_coordinator_error(
        &self,
        ty: CoordinatorType,
        key: &str,
        code: ErrorCode,
        coordinator: &Coordinator,
    ) -> bool {
        self.metrics().record_error(code);
        if matches!(
            code,
            ErrorCode::NotCoordinator | ErrorCode::CoordinatorNotAvailable
        ) {
            self.invalidate_coordinator(ty, key, coordinator.generation);
            true
        } else {
            false
        }
    }

    /// Looks up the coordinators of `keys`, in one request from v4 on, one
    /// per key before. Retriable lookup errors are retried with
    /// `retry.backoff.ms` until `request.timeout.ms`; each key gets its own
    /// result. (A caller that owns its retry policy, as the producer's
    /// transaction core does, calls [`Client::find_coordinators_once`].)
    pub async fn find_coordinators(
        &self,
        ty: CoordinatorType,
        keys: &[&str],
    ) -> Result<HashMap<String, Result<Coordinator, NetError>>, NetError> {
        let deadline = Instant::now() + self.config().request_timeout();
        let mut pending: Vec<String> = keys.iter().map(|k| (*k).to_owned()).collect();
        let mut out = HashMap::new();
        let mut failures = 0u32;
        while !pending.is_empty() {
            let keys: Vec<&str> = pending.iter().map(String::as_str).collect();
            for (key, result) in self.find_coordinators_once(ty, &keys).await? {
                match result {
                    Err(NetError::Kafka { code, .. }) if retriable_lookup(code) => {}
                    result => {
                        out.insert(key, result);
                    }
                }
            }
            // Keys with a retriable error, or missing from the answer, stay.
            pending.retain(|k| !out.contains_key(k));
            if pending.is_empty() {
                break;
            }
            failures += 1;
            let wait = backoff(
                self.config().retry_backoff(),
                self.config().retry_backoff_max(),
                failures,
            );
            if Instant::now() + wait > deadline {
                for k in pending.drain(..) {
                    out.insert(
                        k,
                        Err(NetError::Kafka {
                            api: ApiKey::FindCoordinator,
                            code: ErrorCode::CoordinatorNotAvailable,
                            message: Some("no coordinator before request.timeout.ms".into()),
                        }),
                    );
                }
                break;
            }
            tokio::time::sleep(wait).await;
        }
        Ok(out)
    }

    /// One FindCoordinator round for `keys` (one request from v4 on, one per
    /// key before), with no retry: every key the broker answered gets its
    /// result, a retriable error code included (as [`NetError::Kafka`]); a
    /// key missing from the answer is left out. Found coordinators are
    /// cached and their addresses recorded for [`Client::connection`].
    pub async fn find_coordinators_once(
        &self,
        ty: CoordinatorType,
        keys: &[&str],
    ) -> Result<HashMap<String, Result<Coordinator, NetError>>, NetError> {
        let conn = self.any_connection().await?;
        let version = conn.version_of::<FindCoordinatorRequest>()?;
        let mut answers: Vec<Answer> = Vec::new();
        if version >= 4 {
            let req = FindCoordinatorRequest::default()
                .with_key_type(ty.key_type())
                .with_coordinator_keys(
                    keys.iter()
                        .map(|k| StrBytes::from_string((*k).to_owned()))
                        .collect(),
                );
            let resp = conn.send_at(&req, version).await?;
            for c in resp.coordinators {
                answers.push((
                    c.key.to_string(),
                    c.node_id.0,
                    c.host.to_string(),
                    c.port,
                    ErrorCode::from_code(c.error_code),
                    c.error_message.map(|m| m.to_string()),
                ));
            }
        } else {
            for k in keys {
                let req = FindCoordinatorRequest::default()
                    .with_key(StrBytes::from_string((*k).to_owned()))
                    .with_key_type(if version >= 1 { ty.key_type() } else { 0 });
                let resp = conn.send_at(&req, version).await?;
                answers.push((
                    (*k).to_owned(),
                    resp.node_id.0,
                    resp.host.to_string(),
                    resp.port,
                    ErrorCode::from_code(resp.error_code),
                    resp.error_message.map(|m| m.to_string()),
                ));
            }
        }
        let mut out = HashMap::new();
        for (key, node, host, port, err, msg) in answers {
            if !keys.contains(&key.as_str()) || out.contains_key(&key) {
                continue;
            }
            match err {
                None => {
                    let generation = self
                        .inner
                        .coordinator_generation
                        .fetch_add(1, Ordering::Relaxed)
                        + 1;
                    let c = Coordinator {
                        broker_id: node,
                        generation,
                    };
                    if let Ok(mut m) = self.inner.extra_addrs.lock() {
                        let addr = if host.contains(':') {
                            format!("[{host}]:{port}")
                        } else {
                            format!("{host}:{port}")
                        };
                        m.insert(node, addr);
                    }
                    if let Ok(mut m) = self.inner.coordinators.lock() {
                        m.insert((ty, key.clone()), c.clone());
                    }
                    tracing::debug!(?ty, %key, broker_id = node, "coordinator found");
                    out.insert(key, Ok(c));
                }
                Some(code) => {
                    self.metrics().record_error(code);
                    out.insert(
                        key,
                        Err(NetError::Kafka {
                            api: ApiKey::FindCoordinator,
                            code,
                            message: msg.map(Into::into),
                        }),
                    );
                }
            }
        }
        Ok(out)
    }
}
