//! One connection to one broker: a task owning the socket, pipelining up to
//! `max.in.flight.requests.per.connection` requests (one task owns the socket), the
//! handshake that opens it (TCP, TLS, ApiVersions per KIP-35/KIP-511, SASL per
//! KIP-43/KIP-152) and the typed request API on top.

mod handshake;
pub(crate) mod inflight;
pub(crate) mod pipeline;
#[cfg(test)]
mod pipeline_model;

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use exactly_codec::messages::ApiKey;
use exactly_codec::protocol::Request;
use exactly_codec::{decode_response, encode_request, CodecError, VersionTable};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tracing::Instrument;

use crate::config::{split_host_port, NetConfig};
use crate::error::NetError;
use crate::metrics::Metrics;
use crate::response::ResponseMeta;
use crate::tls::TlsConnector;
pub use pipeline::Stream;
use pipeline::{Pipeline, PipelineOptions};

/// Per-request options for [`Connection::send_with`].
#[derive(Debug, Clone, Copy, Default)]
pub struct SendOptions {
    /// Send at this version instead of the negotiated one (the transaction
    /// core caps some versions, e.g. Produce v11 under transaction protocol
    /// v1). It must lie in the broker's range.
    pub version: Option<i16>,
    /// Override `request.timeout.ms` for this request.
    pub timeout: Option<Duration>,
}

/// A handshaken connection to one broker. Cheap to clone; every clone talks
/// to the same socket. Dropping the last clone closes the socket once nothing
/// is in flight.
#[derive(Clone)]
pub struct Connection {
    pipe: Pipeline,
    versions: Arc<VersionTable>,
    client_id: Arc<str>,
    broker_id: Option<i32>,
    request_timeout: Duration,
    /// When the pool should replace this connection: before the SASL session
    /// lifetime the broker announced runs out (KIP-368).
    retire_at: Option<Instant>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("addr", &self.pipe.shared.addr)
            .field("broker_id", &self.broker_id)
            .field("closed", &self.pipe.is_closed())
            .finish_non_exhaustive()
    }
}

/// Opens connections with one configuration (shared TLS settings, counters).
#[derive(Debug, Clone)]
pub struct Connector {
    config: Arc<NetConfig>,
    tls: Option<TlsConnector>,
    metrics: Arc<Metrics>,
}

impl Connector {
    /// Prepares a connector (reads the TLS files now, so a bad path fails
    /// here rather than on every connection).
    pub fn new(config: Arc<NetConfig>, metrics: Arc<Metrics>) -> Result<Self, NetError> {
        let tls = if config.security_protocol().uses_tls() {
            Some(TlsConnector::new(config.tls())?)
        } else {
            None
        };
        Ok(Self {
            config,
            tls,
            metrics,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &Arc<NetConfig> {
        &self.config
    }

    /// The counters shared by every connection of this connector.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Connects to `addr` (`host:port`), runs TLS and the handshake.
    /// `broker_id` is for logs and errors only.
    pub async fn connect(
        &self,
        addr: &str,
        broker_id: Option<i32>,
    ) -> Result<Connection, NetError> {
        let span = tracing::debug_span!("kafka.connect", %addr, broker_id);
        let r = self.connect_inner(addr, broker_id).instrument(span).await;
        match &r {
            Ok(_) => self.metrics.connected(),
            Err(e) => {
                self.metrics.connect_failed();
                tracing::debug!(%addr, broker_id, error = %e, "connect failed");
            }
        }
        r
    }

    async fn connect_inner(
        &self,
        addr: &str,
        broker_id: Option<i32>,
    ) -> Result<Connection, NetError> {
        let cfg = &self.config;
        let shared_addr: Arc<str> = addr.into();
        let connect_err = |m: String| NetError::Connect {
            addr: shared_addr.clone(),
            message: m.into(),
        };
        let (host, port) =
            split_host_port(addr).ok_or_else(|| connect_err("expected host:port".into()))?;
        let setup = cfg.connection_setup_timeout();
        let deadline = Instant::now() + setup;
        let opts = PipelineOptions {
            max_in_flight: cfg.max_in_flight(),
            max_response_size: cfg.max_response_size,
            first_correlation_id: 0,
        };
        if let Some(dialer) = cfg.dialer() {
            // An in-process stream instead of TCP (the build refuses TLS
            // with a dialer).
            let stream = tokio::time::timeout_at(deadline, dialer.dial(addr))
                .await
                .map_err(|_| connect_err(format!("timed out after {setup:?}")))?
                .map_err(|e| connect_err(e.to_string()))?;
            let pipe = Pipeline::spawn(stream, shared_addr.clone(), opts, self.metrics.clone());
            let conn = Connection::handshake(pipe, cfg, broker_id).await?;
            tracing::debug!(%addr, broker_id, "connected through the dialer");
            return Ok(conn);
        }
        let tcp = tokio::time::timeout_at(deadline, TcpStream::connect((host, port)))
            .await
            .map_err(|_| connect_err(format!("timed out after {setup:?}")))?
            .map_err(|e| connect_err(e.to_string()))?;
        let _ = tcp.set_nodelay(true);
        let pipe = match &self.tls {
            None => Pipeline::spawn(tcp, shared_addr.clone(), opts, self.metrics.clone()),
            Some(tls) => {
                let stream =
                    tokio::time::timeout_at(deadline, tls.connect(host, tcp, &shared_addr))
                        .await
                        .map_err(|_| {
                            connect_err(format!("TLS handshake timed out after {setup:?}"))
                        })??;
                Pipeline::spawn(stream, shared_addr.clone(), opts, self.metrics.clone())
            }
        };
        let conn = Connection::handshake(pipe, cfg, broker_id).await?;
        tracing::debug!(%addr, broker_id, "connected");
        Ok(conn)
    }
}

impl Connection {
    /// Runs the handshake over an already open stream (TLS done, if any):
    /// ApiVersions, then SASL when the configuration asks for it. Used by
    /// [`Connector::connect`], and by tests over in-memory streams.
    pub async fn over_stream(
        stream: impl Stream,
        addr: &str,
        config: &NetConfig,
        broker_id: Option<i32>,
        metrics: Arc<Metrics>,
    ) -> Result<Connection, NetError> {
        let opts = PipelineOptions {
            max_in_flight: config.max_in_flight(),
            max_response_size: config.max_response_size,
            first_correlation_id: 0,
        };
        let pipe = Pipeline::spawn(stream, addr.into(), opts, metrics);
        Connection::handshake(pipe, config, broker_id).await
    }

    async fn handshake(
        pipe: Pipeline,
        cfg: &NetConfig,
        broker_id: Option<i32>,
    ) -> Result<Connection, NetError> {
        let client_id: Arc<str> = cfg.client_id().into();
        let timeout = cfg.request_timeout();
        let result = async {
            let versions = handshake::api_versions(&pipe, &client_id, timeout).await?;
            let mut conn = Connection {
                pipe: pipe.clone(),
                versions: Arc::new(versions),
                client_id: client_id.clone(),
                broker_id,
                request_timeout: timeout,
                retire_at: None,
            };
            if let Some(sasl) = cfg.sasl() {
                let started = Instant::now();
                if let Some(lifetime) = crate::sasl::authenticate(&mut conn, sasl).await? {
                    // Leave room to drain in-flight requests: retire at 85%
                    // of the session, as the Java client re-authenticates
                    // between 85% and 95%.
                    conn.retire_at = Some(started + lifetime.mul_f64(0.85));
                    tracing::debug!(
                        lifetime_ms = lifetime.as_millis() as u64,
                        "SASL session lifetime"
                    );
                }
            }
            Ok(conn)
        }
        .await;
        if result.is_err() {
            pipe.close();
        }
        result
    }

    /// The broker's address.
    pub fn addr(&self) -> &str {
        &self.pipe.shared.addr
    }

    /// The broker id this connection was opened for, if known.
    pub fn broker_id(&self) -> Option<i32> {
        self.broker_id
    }

    /// What the broker said in ApiVersions (versions, finalized features
    /// such as `transaction.version`).
    pub fn versions(&self) -> &VersionTable {
        &self.versions
    }

    /// Whether the connection has ended (a new one is needed).
    pub fn is_closed(&self) -> bool {
        self.pipe.is_closed()
    }

    /// Whether the connection should be replaced soon: its SASL session
    /// (KIP-368 `session_lifetime_ms`) is near its end. The pool then
    /// [retires](Connection::retire) it and opens a new one.
    pub fn is_expiring(&self) -> bool {
        self.retire_at.is_some_and(|t| Instant::now() >= t)
    }

    /// Ends the connection gracefully: requests already queued or in flight
    /// are answered, new ones fail as [`crate::Delivery::NotSent`], then the
    /// socket closes.
    pub fn retire(&self) {
        self.pipe.retire();
    }

    /// Closes the connection: requests in flight fail with
    /// [`crate::Disconnect::Closed`].
    pub fn close(&self) {
        self.pipe.close();
    }

    /// The version `R` is sent at: the highest common to client and broker.
    pub fn version_of<R: Request>(&self) -> Result<i16, NetError> {
        let api = exactly_codec::message::api_key_of::<R>()?;
        Ok(self.versions.pick(api, R::VERSIONS)?)
    }

    /// Sends `req` at the negotiated version and waits for its response.
    ///
    /// Cancel-safe: dropping the future before it completes never disturbs
    /// other requests on the connection; the response, if one comes, is read
    /// and discarded.
    pub async fn send<R>(&self, req: &R) -> Result<R::Response, NetError>
    where
        R: Request,
        R::Response: ResponseMeta,
    {
        self.send_with(req, SendOptions::default()).await
    }

    /// Sends `req` at `version` (which must be in the broker's range).
    pub async fn send_at<R>(&self, req: &R, version: i16) -> Result<R::Response, NetError>
    where
        R: Request,
        R::Response: ResponseMeta,
    {
        self.send_with(
            req,
            SendOptions {
                version: Some(version),
                timeout: None,
            },
        )
        .await
    }

    /// Sends `req` with per-request options.
    pub async fn send_with<R>(&self, req: &R, opts: SendOptions) -> Result<R::Response, NetError>
    where
        R: Request,
        R::Response: ResponseMeta,
    {
        let api = exactly_codec::message::api_key_of::<R>()?;
        let version = self.pick_version::<R>(api, opts.version)?;
        let timeout = opts.timeout.unwrap_or(self.request_timeout);
        let span = tracing::debug_span!(
            "kafka.request",
            api = ?api,
            version,
            broker_id = self.broker_id,
            addr = %self.pipe.shared.addr,
            correlation_id = tracing::field::Empty,
            bytes_out = tracing::field::Empty,
            bytes_in = tracing::field::Empty,
            latency_us = tracing::field::Empty,
        );
        self.roundtrip(api, req, version, timeout)
            .instrument(span)
            .await
    }

    /// The negotiated version, or the caller's if both sides support it.
    fn pick_version<R: Request>(&self, api: ApiKey, chosen: Option<i16>) -> Result<i16, NetError> {
        let Some(v) = chosen else {
            return Ok(self.versions.pick(api, R::VERSIONS)?);
        };
        let broker = self.versions.broker_range(api);
        let ok = R::VERSIONS.min <= v
            && v <= R::VERSIONS.max
            && broker.is_some_and(|b| b.min <= v && v <= b.max);
        if ok {
            return Ok(v);
        }
        let (broker_min, broker_max) = broker.map_or((-1, -1), |b| (b.min, b.max));
        Err(NetError::Codec(CodecError::UnsupportedVersion {
            api,
            broker_min,
            broker_max,
            client_min: v,
            client_max: v,
        }))
    }

    /// Sends a request the broker does not answer: only Produce with
    /// `acks=0`. Completes once the whole frame is written to the socket;
    /// an error says whether it was ([`crate::Delivery`]). Any other
    /// request is refused (its response would be read as the next one's).
    pub async fn send_without_response<R>(&self, req: &R, opts: SendOptions) -> Result<(), NetError>
    where
        R: Request,
    {
        let api = exactly_codec::message::api_key_of::<R>()?;
        if api != ApiKey::Produce {
            return Err(NetError::Codec(CodecError::Encode {
                api,
                version: -1,
                reason: "only Produce with acks=0 goes without a response".into(),
            }));
        }
        let version = self.pick_version::<R>(api, opts.version)?;
        let timeout = opts.timeout.unwrap_or(self.request_timeout);
        let mut frame = BytesMut::new();
        let out = encode_request(&mut frame, 0, Some(&self.client_id), version, req)?;
        let reply = self
            .pipe
            .request_no_response(frame, api as i16, version, timeout)
            .instrument(tracing::debug_span!(
                "kafka.request",
                api = ?api,
                version,
                broker_id = self.broker_id,
                bytes_out = out + 4,
                acks = 0
            ))
            .await?;
        tracing::trace!(
            correlation_id = reply.correlation_id,
            "sent without response"
        );
        Ok(())
    }

    /// Encodes, sends and decodes one request; the current span gets the
    /// request's fields.
    pub(crate) async fn roundtrip<R>(
        &self,
        api: ApiKey,
        req: &R,
        version: i16,
        timeout: Duration,
    ) -> Result<R::Response, NetError>
    where
        R: Request,
        R::Response: ResponseMeta,
    {
        let span = tracing::Span::current();
        let started = Instant::now();
        let mut frame = BytesMut::new();
        let out = encode_request(&mut frame, 0, Some(&self.client_id), version, req)?;
        span.record("bytes_out", out + 4);
        let reply = match self.pipe.request(frame, api as i16, version, timeout).await {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(error = %e, delivery = ?e.delivery(), "request failed");
                return Err(e);
            }
        };
        let latency = started.elapsed();
        span.record("correlation_id", reply.correlation_id);
        span.record("bytes_in", reply.frame.len() + 4);
        span.record("latency_us", latency.as_micros() as u64);
        let (id, resp) = decode_response::<R>(reply.frame, version)?;
        debug_assert_eq!(id, reply.correlation_id);
        if let Some(ms) = resp.throttle_time_ms() {
            // KIP-219: hold back further requests on this connection.
            self.pipe.shared.metrics.throttle();
            let ms = u64::try_from(ms).unwrap_or(0);
            self.pipe
                .shared
                .throttle(Instant::now() + Duration::from_millis(ms));
            tracing::debug!(throttle_ms = ms, "broker throttled the client");
        }
        tracing::trace!("response");
        Ok(resp)
    }

    /// The counters shared with the connector.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.pipe.shared.metrics
    }
}
