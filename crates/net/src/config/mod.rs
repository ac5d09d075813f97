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

pub use crate::tls::TlsCryptoProvider;

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

/// The future a [`Dialer`] returns: an open byte stream to the broker.
pub type DialFuture =
    Pin<Box<dyn Future<Output = std::io::Result<Box<dyn crate::conn::Stream>>> + Send>>;

/// Opens the byte stream of a new connection instead of TCP: called with
/// the broker's `host:port` for every connection the client opens. The
/// handshake (ApiVersions, SASL) and everything after it run over the
/// stream as over a socket; TLS cannot be combined with a dialer.
///
/// This is how a test runs the real clients in-process against a simulated
/// broker (an in-memory `tokio::io::duplex` per connection, served by the
/// simulation; see `docs/TESTKIT.md`), and how an application could tunnel
/// its connections.
#[derive(Clone)]
pub struct Dialer(Arc<dyn Fn(&str) -> DialFuture + Send + Sync>);

impl Dialer {
    /// A dialer from a function of the address.
    pub fn new(f: impl Fn(&str) -> DialFuture + Send + Sync + 'static) -> Self {
        Self(Arc::new(f))
    }

    /// Opens a stream to `addr`.
    pub fn dial(&self, addr: &str) -> DialFuture {
        (self.0)(addr)
    }
}

impl fmt::Debug for Dialer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Dialer(<callback>)")
    }
}

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
    /// The rustls crypto provider: by default graviola where the CPU runs
    /// it, else the portable RustCrypto one; or the user's own.
    pub crypto_provider: TlsCryptoProvider,
}

impl Default for TlsConfig {
    fn default() -> Self {
        Self {
            ca_location: None,
            certificate_location: None,
            key_location: None,
            verify_hostname: true,
            crypto_provider: TlsCryptoProvider::default(),
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
    pub(crate) dialer: Option<Dialer>,
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
    /// The [`Dialer`] that replaces TCP, if one is set.
    pub fn dialer(&self) -> Option<&Dialer> {
        self.dialer.as_ref()
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

mod builder;
pub mod props;
pub use builder::{NetConfigBuilder, PROPERTY_NAMES};

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 16 item 5: no `Debug` output or error message of a net config
    /// type prints a secret.
    #[test]
    fn no_debug_output_or_error_prints_a_secret() {
        const SECRET: &str = "NET-SECRET-42";
        let mut b = NetConfig::builder();
        b.set("bootstrap.servers", "h:1")
            .unwrap()
            .set("security.protocol", "SASL_SSL")
            .unwrap()
            .set("sasl.mechanism", "SCRAM-SHA-256")
            .unwrap()
            .set("sasl.username", "alice")
            .unwrap()
            .set("sasl.password", SECRET)
            .unwrap();
        let c = b.build().unwrap();
        let sasl = c.sasl().unwrap().clone();
        let token = OAuthToken {
            token: SECRET.into(),
            extensions: vec![("k".into(), "v".into())],
        };
        let shown = [
            format!("{b:?}"),
            format!("{b:#?}"),
            format!("{c:?}"),
            format!("{sasl:?}"),
            format!("{:?}", sasl.credentials),
            format!("{token:?}"),
        ];
        for s in &shown {
            assert!(!s.contains(SECRET), "{s}");
        }
        assert!(shown[2].contains("alice"), "{}", shown[2]);
        // A config error about a secret property never repeats its value.
        let e = props::invalid("sasl.password", SECRET, "bad");
        assert!(!e.to_string().contains(SECRET) && !format!("{e:?}").contains(SECRET));
        let e = props::invalid("ssl.key.password", SECRET, "bad");
        assert!(!e.to_string().contains(SECRET));
        assert!(props::invalid("acks", "7", "bad").to_string().contains('7'));
        // The password without a user name: an error without the password.
        let mut b = NetConfig::builder();
        b.set("bootstrap.servers", "h:1")
            .unwrap()
            .set("security.protocol", "SASL_PLAINTEXT")
            .unwrap()
            .set("sasl.mechanism", "PLAIN")
            .unwrap()
            .set("sasl.password", SECRET)
            .unwrap();
        let e = b.build().unwrap_err();
        assert!(!e.to_string().contains(SECRET), "{e}");
    }

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
