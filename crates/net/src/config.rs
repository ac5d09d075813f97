//! Configuration of the net layer: a typed builder, and Kafka's own property
//! names (`bootstrap.servers`, `security.protocol`, ...) for users who carry
//! Java or librdkafka style configs.
//!
//! Unknown or invalid properties are a [`ConfigError`], never silently
//! ignored. The producer and consumer configs embed a [`NetConfigBuilder`]:
//! they take their own keys and pass the rest to [`NetConfigBuilder::set`].

use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// A bad configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A property name that no layer knows.
    #[error("unknown property `{0}`")]
    UnknownProperty(String),
    /// A known property with a value that cannot be used.
    #[error("invalid value `{value}` for `{key}`: {reason}")]
    InvalidValue {
        /// The property.
        key: String,
        /// The value given.
        value: String,
        /// Why it is invalid.
        reason: String,
    },
    /// Properties that contradict each other, or a required one is missing.
    #[error("{0}")]
    Inconsistent(String),
}

/// `security.protocol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SecurityProtocol {
    /// `PLAINTEXT`: neither TLS nor SASL.
    #[default]
    Plaintext,
    /// `SSL`: TLS, no SASL.
    Ssl,
    /// `SASL_PLAINTEXT`: SASL without TLS.
    SaslPlaintext,
    /// `SASL_SSL`: SASL over TLS.
    SaslSsl,
}

impl SecurityProtocol {
    /// Whether the transport is TLS.
    pub fn uses_tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }
    /// Whether SASL authentication runs after connecting.
    pub fn uses_sasl(self) -> bool {
        matches!(
            self,
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
        )
    }
}

/// `sasl.mechanism`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaslMechanism {
    /// `PLAIN` (RFC 4616).
    Plain,
    /// `SCRAM-SHA-256` (RFC 5802, RFC 7677; KIP-84).
    ScramSha256,
    /// `SCRAM-SHA-512` (KIP-84).
    ScramSha512,
    /// `OAUTHBEARER` (RFC 7628; KIP-255) with a user token callback.
    OAuthBearer,
}

impl SaslMechanism {
    /// The name Kafka uses on the wire.
    pub fn name(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
            SaslMechanism::OAuthBearer => "OAUTHBEARER",
        }
    }
}

/// An OAUTHBEARER token with its SASL extensions (KIP-342).
#[derive(Clone, Default)]
pub struct OAuthToken {
    /// The bearer token (usually a JWT).
    pub token: String,
    /// Extensions sent with the token (`key=value`).
    pub extensions: Vec<(String, String)>,
}

impl fmt::Debug for OAuthToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthToken")
            .field("token", &"<redacted>")
            .field("extensions", &self.extensions)
            .finish()
    }
}

/// The future a token callback returns.
pub type TokenFuture = Pin<Box<dyn Future<Output = Result<OAuthToken, String>> + Send>>;

/// A user callback that supplies an OAUTHBEARER token for each new connection.
pub type TokenProvider = Arc<dyn Fn() -> TokenFuture + Send + Sync>;

/// SASL credentials.
#[derive(Clone)]
pub enum SaslCredentials {
    /// A user name and password (PLAIN, SCRAM).
    Password {
        /// The user name.
        username: String,
        /// The password.
        password: String,
    },
    /// A token callback (OAUTHBEARER).
    Token(TokenProvider),
}

impl fmt::Debug for SaslCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SaslCredentials::Password { username, .. } => f
                .debug_struct("Password")
                .field("username", username)
                .field("password", &"<redacted>")
                .finish(),
            SaslCredentials::Token(_) => f.write_str("Token(<callback>)"),
        }
    }
}

/// SASL settings.
#[derive(Debug, Clone)]
pub struct SaslConfig {
    /// The mechanism.
    pub mechanism: SaslMechanism,
    /// The credentials.
    pub credentials: SaslCredentials,
}

/// TLS settings.
#[derive(Debug, Clone)]
pub struct TlsConfig {
    /// PEM file of the CA certificates to trust (`ssl.ca.location`); the
    /// webpki root set when absent.
    pub ca_location: Option<PathBuf>,
    /// PEM file of the client certificate chain (`ssl.certificate.location`).
    pub certificate_location: Option<PathBuf>,
    /// PEM file of the client private key (`ssl.key.location`).
    pub key_location: Option<PathBuf>,
    /// Whether the broker's certificate must name the host we connected to
    /// (`ssl.endpoint.identification.algorithm=https`, the default).
    pub verify_hostname: bool,
}

impl Default for TlsConfig {
    fn default() -> Self {
        Self {
            ca_location: None,
            certificate_location: None,
            key_location: None,
            verify_hostname: true,
        }
    }
}

/// The validated configuration of the net layer. Build it with
/// [`NetConfig::builder`] or [`NetConfig::from_properties`].
#[derive(Debug, Clone)]
pub struct NetConfig {
    pub(crate) bootstrap_servers: Vec<String>,
    pub(crate) client_id: String,
    pub(crate) security_protocol: SecurityProtocol,
    pub(crate) sasl: Option<SaslConfig>,
    pub(crate) tls: TlsConfig,
    pub(crate) request_timeout: Duration,
    pub(crate) max_in_flight: usize,
    pub(crate) reconnect_backoff: Duration,
    pub(crate) reconnect_backoff_max: Duration,
    pub(crate) retry_backoff: Duration,
    pub(crate) retry_backoff_max: Duration,
    pub(crate) metadata_max_age: Duration,
    pub(crate) connection_setup_timeout: Duration,
    pub(crate) max_response_size: usize,
    pub(crate) allow_auto_create_topics: bool,
}

impl NetConfig {
    /// A builder with Kafka's defaults.
    pub fn builder() -> NetConfigBuilder {
        NetConfigBuilder::default()
    }

    /// Builds a configuration from Kafka property names and values.
    pub fn from_properties<K, V>(
        props: impl IntoIterator<Item = (K, V)>,
    ) -> Result<NetConfig, ConfigError>
    where
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut b = NetConfigBuilder::default();
        for (k, v) in props {
            b.set(k.as_ref(), v.as_ref())?;
        }
        b.build()
    }

    /// `bootstrap.servers`.
    pub fn bootstrap_servers(&self) -> &[String] {
        &self.bootstrap_servers
    }
    /// `client.id`.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }
    /// `security.protocol`.
    pub fn security_protocol(&self) -> SecurityProtocol {
        self.security_protocol
    }
    /// SASL settings, when the protocol uses SASL.
    pub fn sasl(&self) -> Option<&SaslConfig> {
        self.sasl.as_ref()
    }
    /// TLS settings (used when the protocol uses TLS).
    pub fn tls(&self) -> &TlsConfig {
        &self.tls
    }
    /// `request.timeout.ms`.
    pub fn request_timeout(&self) -> Duration {
        self.request_timeout
    }
    /// `max.in.flight.requests.per.connection`.
    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight
    }
    /// `reconnect.backoff.ms`.
    pub fn reconnect_backoff(&self) -> Duration {
        self.reconnect_backoff
    }
    /// `reconnect.backoff.max.ms`.
    pub fn reconnect_backoff_max(&self) -> Duration {
        self.reconnect_backoff_max
    }
    /// `retry.backoff.ms`.
    pub fn retry_backoff(&self) -> Duration {
        self.retry_backoff
    }
    /// `retry.backoff.max.ms`.
    pub fn retry_backoff_max(&self) -> Duration {
        self.retry_backoff_max
    }
    /// `metadata.max.age.ms`.
    pub fn metadata_max_age(&self) -> Duration {
        self.metadata_max_age
    }
    /// `socket.connection.setup.timeout.ms`.
    pub fn connection_setup_timeout(&self) -> Duration {
        self.connection_setup_timeout
    }
    /// `allow.auto.create.topics`: whether Metadata requests for named
    /// topics let the broker create missing ones (when the broker allows it,
    /// `auto.create.topics.enable`). True by default, as the Java producer
    /// always asks and the Java consumer defaults to it.
    pub fn allow_auto_create_topics(&self) -> bool {
        self.allow_auto_create_topics
    }
}

/// Builder of [`NetConfig`]; also accepts Kafka property names via
/// [`NetConfigBuilder::set`].
#[derive(Clone)]
pub struct NetConfigBuilder {
    cfg: NetConfig,
    mechanism: Option<SaslMechanism>,
    username: Option<String>,
    password: Option<String>,
    token: Option<TokenProvider>,
}

impl Default for NetConfigBuilder {
    fn default() -> Self {
        Self {
            cfg: NetConfig {
                bootstrap_servers: Vec::new(),
                client_id: "exactly".to_owned(),
                security_protocol: SecurityProtocol::Plaintext,
                sasl: None,
                tls: TlsConfig::default(),
                request_timeout: Duration::from_millis(30_000),
                max_in_flight: 5,
                reconnect_backoff: Duration::from_millis(50),
                reconnect_backoff_max: Duration::from_millis(1_000),
                retry_backoff: Duration::from_millis(100),
                retry_backoff_max: Duration::from_millis(1_000),
                metadata_max_age: Duration::from_millis(300_000),
                connection_setup_timeout: Duration::from_millis(10_000),
                max_response_size: exactly_codec::DEFAULT_MAX_FRAME_SIZE,
                allow_auto_create_topics: true,
            },
            mechanism: None,
            username: None,
            password: None,
            token: None,
        }
    }
}

impl fmt::Debug for NetConfigBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NetConfigBuilder")
            .field("cfg", &self.cfg)
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("token", &self.token.as_ref().map(|_| "<callback>"))
            .finish()
    }
}

/// Every property name [`NetConfigBuilder::set`] accepts.
pub const PROPERTY_NAMES: &[&str] = &[
    "bootstrap.servers",
    "client.id",
    "security.protocol",
    "sasl.mechanism",
    "sasl.mechanisms",
    "sasl.username",
    "sasl.password",
    "ssl.ca.location",
    "ssl.certificate.location",
    "ssl.key.location",
    "ssl.endpoint.identification.algorithm",
    "request.timeout.ms",
    "max.in.flight.requests.per.connection",
    "reconnect.backoff.ms",
    "reconnect.backoff.max.ms",
    "retry.backoff.ms",
    "retry.backoff.max.ms",
    "metadata.max.age.ms",
    "socket.connection.setup.timeout.ms",
    "receive.message.max.bytes",
    "allow.auto.create.topics",
];

fn invalid(key: &str, value: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::InvalidValue {
        key: key.to_owned(),
        value: value.to_owned(),
        reason: reason.into(),
    }
}

fn millis(key: &str, value: &str, min: u64) -> Result<Duration, ConfigError> {
    let ms: u64 = value
        .trim()
        .parse()
        .map_err(|_| invalid(key, value, "expected a whole number of milliseconds"))?;
    if ms < min {
        return Err(invalid(key, value, format!("must be at least {min}")));
    }
    Ok(Duration::from_millis(ms))
}

impl NetConfigBuilder {
    /// Whether `key` is a property of the net layer.
    pub fn is_known(key: &str) -> bool {
        PROPERTY_NAMES.contains(&key)
    }

    /// Sets one property by its Kafka name. Unknown names and bad values are
    /// errors.
    pub fn set(&mut self, key: &str, value: &str) -> Result<&mut Self, ConfigError> {
        let c = &mut self.cfg;
        match key {
            "bootstrap.servers" => {
                let servers: Vec<String> = value
                    .split(',')
                    .map(|s| s.trim().to_owned())
                    .filter(|s| !s.is_empty())
                    .collect();
                for s in &servers {
                    split_host_port(s).ok_or_else(|| invalid(key, value, "expected host:port"))?;
                }
                c.bootstrap_servers = servers;
            }
            "client.id" => c.client_id = value.to_owned(),
            "security.protocol" => {
                c.security_protocol = match value.trim().to_ascii_uppercase().as_str() {
                    "PLAINTEXT" => SecurityProtocol::Plaintext,
                    "SSL" => SecurityProtocol::Ssl,
                    "SASL_PLAINTEXT" => SecurityProtocol::SaslPlaintext,
                    "SASL_SSL" => SecurityProtocol::SaslSsl,
                    _ => {
                        return Err(invalid(
                            key,
                            value,
                            "expected PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL",
                        ))
                    }
                }
            }
            "sasl.mechanism" | "sasl.mechanisms" => {
                self.mechanism = Some(match value.trim().to_ascii_uppercase().as_str() {
                    "PLAIN" => SaslMechanism::Plain,
                    "SCRAM-SHA-256" => SaslMechanism::ScramSha256,
                    "SCRAM-SHA-512" => SaslMechanism::ScramSha512,
                    "OAUTHBEARER" => SaslMechanism::OAuthBearer,
                    _ => {
                        return Err(invalid(
                            key,
                            value,
                            "expected PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER",
                        ))
                    }
                })
            }
            "sasl.username" => self.username = Some(value.to_owned()),
            "sasl.password" => self.password = Some(value.to_owned()),
            "ssl.ca.location" => c.tls.ca_location = Some(value.into()),
            "ssl.certificate.location" => c.tls.certificate_location = Some(value.into()),
            "ssl.key.location" => c.tls.key_location = Some(value.into()),
            "ssl.endpoint.identification.algorithm" => {
                c.tls.verify_hostname = match value.trim().to_ascii_lowercase().as_str() {
                    "https" => true,
                    "" | "none" => false,
                    _ => return Err(invalid(key, value, "expected `https` or an empty value")),
                }
            }
            "request.timeout.ms" => c.request_timeout = millis(key, value, 1)?,
            "max.in.flight.requests.per.connection" => {
                let n: usize = value
                    .trim()
                    .parse()
                    .map_err(|_| invalid(key, value, "expected a positive integer"))?;
                if n == 0 {
                    return Err(invalid(key, value, "must be at least 1"));
                }
                c.max_in_flight = n;
            }
            "reconnect.backoff.ms" => c.reconnect_backoff = millis(key, value, 0)?,
            "reconnect.backoff.max.ms" => c.reconnect_backoff_max = millis(key, value, 0)?,
            "retry.backoff.ms" => c.retry_backoff = millis(key, value, 0)?,
            "retry.backoff.max.ms" => c.retry_backoff_max = millis(key, value, 0)?,
            "metadata.max.age.ms" => c.metadata_max_age = millis(key, value, 0)?,
            "socket.connection.setup.timeout.ms" => {
                c.connection_setup_timeout = millis(key, value, 1)?
            }
            "receive.message.max.bytes" => {
                let n: usize = value
                    .trim()
                    .parse()
                    .map_err(|_| invalid(key, value, "expected a byte count"))?;
                if n < 1024 {
                    return Err(invalid(key, value, "must be at least 1024"));
                }
                c.max_response_size = n;
            }
            "allow.auto.create.topics" => {
                c.allow_auto_create_topics = match value.trim().to_ascii_lowercase().as_str() {
                    "true" => true,
                    "false" => false,
                    _ => return Err(invalid(key, value, "expected true or false")),
                }
            }
            _ => return Err(ConfigError::UnknownProperty(key.to_owned())),
        }
        Ok(self)
    }

    /// `bootstrap.servers`, as `host:port` strings.
    pub fn bootstrap_servers<S: Into<String>>(
        &mut self,
        servers: impl IntoIterator<Item = S>,
    ) -> &mut Self {
        self.cfg.bootstrap_servers = servers.into_iter().map(Into::into).collect();
        self
    }
    /// `client.id`.
    pub fn client_id(&mut self, id: impl Into<String>) -> &mut Self {
        self.cfg.client_id = id.into();
        self
    }
    /// `security.protocol`.
    pub fn security_protocol(&mut self, p: SecurityProtocol) -> &mut Self {
        self.cfg.security_protocol = p;
        self
    }
    /// SASL with a user name and password (PLAIN or SCRAM).
    pub fn sasl_password(
        &mut self,
        mechanism: SaslMechanism,
        username: impl Into<String>,
        password: impl Into<String>,
    ) -> &mut Self {
        self.mechanism = Some(mechanism);
        self.username = Some(username.into());
        self.password = Some(password.into());
        self
    }
    /// SASL/OAUTHBEARER with a token callback, called once per connection.
    pub fn sasl_oauthbearer(&mut self, provider: TokenProvider) -> &mut Self {
        self.mechanism = Some(SaslMechanism::OAuthBearer);
        self.token = Some(provider);
        self
    }
    /// TLS settings.
    pub fn tls(&mut self, tls: TlsConfig) -> &mut Self {
        self.cfg.tls = tls;
        self
    }
    /// `request.timeout.ms`.
    pub fn request_timeout(&mut self, t: Duration) -> &mut Self {
        self.cfg.request_timeout = t;
        self
    }
    /// `max.in.flight.requests.per.connection`.
    pub fn max_in_flight(&mut self, n: usize) -> &mut Self {
        self.cfg.max_in_flight = n;
        self
    }
    /// `reconnect.backoff.ms` and `reconnect.backoff.max.ms`.
    pub fn reconnect_backoff(&mut self, base: Duration, max: Duration) -> &mut Self {
        self.cfg.reconnect_backoff = base;
        self.cfg.reconnect_backoff_max = max;
        self
    }
    /// `retry.backoff.ms` and `retry.backoff.max.ms`.
    pub fn retry_backoff(&mut self, base: Duration, max: Duration) -> &mut Self {
        self.cfg.retry_backoff = base;
        self.cfg.retry_backoff_max = max;
        self
    }
    /// `metadata.max.age.ms`.
    pub fn metadata_max_age(&mut self, t: Duration) -> &mut Self {
        self.cfg.metadata_max_age = t;
        self
    }
    /// `socket.connection.setup.timeout.ms`.
    pub fn connection_setup_timeout(&mut self, t: Duration) -> &mut Self {
        self.cfg.connection_setup_timeout = t;
        self
    }
    /// `allow.auto.create.topics`.
    pub fn allow_auto_create_topics(&mut self, allow: bool) -> &mut Self {
        self.cfg.allow_auto_create_topics = allow;
        self
    }

    /// Checks the settings against each other and returns the configuration.
    pub fn build(&self) -> Result<NetConfig, ConfigError> {
        let mut cfg = self.cfg.clone();
        if cfg.bootstrap_servers.is_empty() {
            return Err(ConfigError::Inconsistent(
                "`bootstrap.servers` is required".into(),
            ));
        }
        for s in &cfg.bootstrap_servers {
            if split_host_port(s).is_none() {
                return Err(invalid("bootstrap.servers", s, "expected host:port"));
            }
        }
        if cfg.max_in_flight == 0 {
            return Err(ConfigError::Inconsistent(
                "`max.in.flight.requests.per.connection` must be at least 1".into(),
            ));
        }
        if cfg.request_timeout.is_zero() {
            return Err(ConfigError::Inconsistent(
                "`request.timeout.ms` must be positive".into(),
            ));
        }
        if cfg.reconnect_backoff_max < cfg.reconnect_backoff {
            cfg.reconnect_backoff_max = cfg.reconnect_backoff;
        }
        if cfg.retry_backoff_max < cfg.retry_backoff {
            cfg.retry_backoff_max = cfg.retry_backoff;
        }
        if cfg.tls.key_location.is_some() != cfg.tls.certificate_location.is_some() {
            return Err(ConfigError::Inconsistent(
                "`ssl.certificate.location` and `ssl.key.location` go together".into(),
            ));
        }
        cfg.sasl = if cfg.security_protocol.uses_sasl() {
            let mechanism = self.mechanism.unwrap_or(SaslMechanism::Plain);
            let credentials = match mechanism {
                SaslMechanism::OAuthBearer => match &self.token {
                    Some(t) => SaslCredentials::Token(t.clone()),
                    None => return Err(ConfigError::Inconsistent(
                        "OAUTHBEARER needs a token callback (NetConfigBuilder::sasl_oauthbearer)"
                            .into(),
                    )),
                },
                _ => match (&self.username, &self.password) {
                    (Some(u), Some(p)) => SaslCredentials::Password {
                        username: u.clone(),
                        password: p.clone(),
                    },
                    _ => {
                        return Err(ConfigError::Inconsistent(format!(
                            "SASL {} needs `sasl.username` and `sasl.password`",
                            mechanism.name()
                        )))
                    }
                },
            };
            Some(SaslConfig {
                mechanism,
                credentials,
            })
        } else {
            if self.mechanism.is_some() || self.username.is_some() {
                return Err(ConfigError::Inconsistent(format!(
                    "SASL settings given but `security.protocol` is {:?}",
                    cfg.security_protocol
                )));
            }
            None
        };
        Ok(cfg)
    }
}

/// Splits `host:port` (IPv6 as `[::1]:9092`).
pub(crate) fn split_host_port(s: &str) -> Option<(&str, u16)> {
    let (host, port) = s.rsplit_once(':')?;
    let port = port.parse().ok()?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    (!host.is_empty()).then_some((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_roundtrip() {
        let c = NetConfig::from_properties([
            ("bootstrap.servers", "127.0.0.1:9092, b:9093"),
            ("security.protocol", "sasl_ssl"),
            ("sasl.mechanism", "SCRAM-SHA-512"),
            ("sasl.username", "alice"),
            ("sasl.password", "secret"),
            ("ssl.ca.location", "/tmp/ca.pem"),
            ("ssl.endpoint.identification.algorithm", ""),
            ("request.timeout.ms", "1500"),
            ("max.in.flight.requests.per.connection", "1"),
            ("allow.auto.create.topics", "false"),
        ])
        .unwrap();
        assert_eq!(c.bootstrap_servers(), ["127.0.0.1:9092", "b:9093"]);
        assert_eq!(c.security_protocol(), SecurityProtocol::SaslSsl);
        let sasl = c.sasl().unwrap();
        assert_eq!(sasl.mechanism, SaslMechanism::ScramSha512);
        assert!(!format!("{sasl:?}").contains("secret"));
        assert!(!c.tls().verify_hostname);
        assert_eq!(c.request_timeout(), Duration::from_millis(1500));
        assert_eq!(c.max_in_flight(), 1);
        assert!(!c.allow_auto_create_topics());
        assert!(NetConfig::from_properties([("bootstrap.servers", "h:1")])
            .unwrap()
            .allow_auto_create_topics());
    }

    #[test]
    fn unknown_and_invalid_are_errors() {
        let mut b = NetConfig::builder();
        assert_eq!(
            b.set("bootstrap.server", "x:1").unwrap_err(),
            ConfigError::UnknownProperty("bootstrap.server".into())
        );
        assert!(matches!(
            b.set("request.timeout.ms", "soon"),
            Err(ConfigError::InvalidValue { .. })
        ));
        assert!(matches!(
            b.set("max.in.flight.requests.per.connection", "0"),
            Err(ConfigError::InvalidValue { .. })
        ));
        assert!(matches!(
            b.set("security.protocol", "TLS"),
            Err(ConfigError::InvalidValue { .. })
        ));
        assert!(matches!(
            b.set("bootstrap.servers", "nohost"),
            Err(ConfigError::InvalidValue { .. })
        ));
    }

    #[test]
    fn consistency() {
        let mut b = NetConfig::builder();
        assert!(matches!(b.build(), Err(ConfigError::Inconsistent(_))));
        b.set("bootstrap.servers", "h:1").unwrap();
        b.set("security.protocol", "SASL_PLAINTEXT").unwrap();
        assert!(matches!(b.build(), Err(ConfigError::Inconsistent(_))));
        b.set("sasl.username", "u").unwrap();
        b.set("sasl.password", "p").unwrap();
        assert_eq!(
            b.build().unwrap().sasl().unwrap().mechanism,
            SaslMechanism::Plain
        );
        let mut b = NetConfig::builder();
        b.set("bootstrap.servers", "h:1").unwrap();
        b.set("sasl.mechanism", "PLAIN").unwrap();
        assert!(matches!(b.build(), Err(ConfigError::Inconsistent(_))));
        let mut b = NetConfig::builder();
        b.set("bootstrap.servers", "h:1").unwrap();
        b.set("ssl.key.location", "/k").unwrap();
        assert!(matches!(b.build(), Err(ConfigError::Inconsistent(_))));
    }

    #[test]
    fn host_port() {
        assert_eq!(split_host_port("a:1"), Some(("a", 1)));
        assert_eq!(split_host_port("[::1]:9092"), Some(("::1", 9092)));
        assert_eq!(split_host_port(":1"), None);
        assert_eq!(split_host_port("a"), None);
        assert_eq!(split_host_port("a:x"), None);
    }
}
