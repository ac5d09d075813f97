//! The builder of [`NetConfig`] and the Kafka property names it accepts.

use std::fmt;
use std::time::Duration;

use super::props::{boolean, count, invalid, millis};
use super::{
    split_host_port, ConfigError, Dialer, NetConfig, SaslConfig, SaslCredentials, SaslMechanism,
    SecurityProtocol, TlsConfig, TlsCryptoProvider, TokenProvider,
};

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
                dialer: None,
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
            "max.in.flight.requests.per.connection" => c.max_in_flight = count(key, value, 1)?,
            "reconnect.backoff.ms" => c.reconnect_backoff = millis(key, value, 0)?,
            "reconnect.backoff.max.ms" => c.reconnect_backoff_max = millis(key, value, 0)?,
            "retry.backoff.ms" => c.retry_backoff = millis(key, value, 0)?,
            "retry.backoff.max.ms" => c.retry_backoff_max = millis(key, value, 0)?,
            "metadata.max.age.ms" => c.metadata_max_age = millis(key, value, 0)?,
            "socket.connection.setup.timeout.ms" => {
                c.connection_setup_timeout = millis(key, value, 1)?
            }
            "receive.message.max.bytes" => c.max_response_size = count(key, value, 1024)?,
            "allow.auto.create.topics" => c.allow_auto_create_topics = boolean(key, value)?,
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
    /// The rustls crypto provider of TLS connections (default
    /// [`TlsCryptoProvider::Auto`]: graviola where the CPU runs it, else
    /// RustCrypto). Keeps the other TLS settings.
    pub fn tls_crypto_provider(&mut self, provider: TlsCryptoProvider) -> &mut Self {
        self.cfg.tls.crypto_provider = provider;
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

    /// Open connections with `dialer` instead of TCP (in-process tests
    /// against a simulated broker). Not a Kafka property.
    pub fn dialer(&mut self, dialer: Dialer) -> &mut Self {
        self.cfg.dialer = Some(dialer);
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
        if cfg.dialer.is_some() && cfg.security_protocol.uses_tls() {
            return Err(ConfigError::Inconsistent(
                "a dialer cannot be combined with TLS (`security.protocol` SSL or SASL_SSL)".into(),
            ));
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
