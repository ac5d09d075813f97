//! TLS with rustls and a pure-Rust crypto provider (no ring, no aws-lc, no
//! C): graviola where the CPU runs it, else RustCrypto, or the user's own
//! ([`TlsCryptoProvider`], chosen in [`TlsConfig::crypto_provider`]). Trust
//! comes from `ssl.ca.location` (PEM) or, when absent, the webpki root set; a
//! client certificate is optional; the broker's host name is checked unless
//! `ssl.endpoint.identification.algorithm` is empty, in which case the chain
//! is still verified against the trusted CAs.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::config::{ConfigError, TlsConfig};
use crate::error::NetError;

mod provider;
pub(crate) use provider::ProviderKind;
pub use provider::{crypto_provider, graviola_supported, TlsCryptoProvider};

/// A prepared TLS client configuration.
#[derive(Clone)]
pub(crate) struct TlsConnector {
    inner: tokio_rustls::TlsConnector,
    /// Which crypto provider its handshakes use.
    pub(crate) provider: ProviderKind,
}

impl std::fmt::Debug for TlsConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsConnector")
    }
}

fn bad_file(key: &str, path: &std::path::Path, e: impl std::fmt::Display) -> NetError {
    NetError::Config(ConfigError::InvalidValue {
        key: key.to_owned(),
        value: path.display().to_string(),
        reason: e.to_string(),
    })
}

impl TlsConnector {
    pub(crate) fn new(cfg: &TlsConfig) -> Result<Self, NetError> {
        let (provider, kind) = cfg.crypto_provider.resolve().map_err(NetError::Config)?;
        tracing::debug!(provider = ?kind, "TLS crypto provider");
        let mut roots = RootCertStore::empty();
        match &cfg.ca_location {
            Some(path) => {
                let certs = CertificateDer::pem_file_iter(path)
                    .map_err(|e| bad_file("ssl.ca.location", path, e))?;
                for c in certs {
                    let c = c.map_err(|e| bad_file("ssl.ca.location", path, e))?;
                    roots
                        .add(c)
                        .map_err(|e| bad_file("ssl.ca.location", path, e))?;
                }
                if roots.is_empty() {
                    return Err(bad_file("ssl.ca.location", path, "no certificate in file"));
                }
            }
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| NetError::Config(ConfigError::Inconsistent(e.to_string())))?;
        let builder = if cfg.verify_hostname {
            builder.with_root_certificates(roots)
        } else {
            // Once per client: a connector is built once per `Client`.
            tracing::warn!(
                "ssl.endpoint.identification.algorithm is empty: broker host names are not \
                 verified, so any holder of a certificate from a trusted CA can pose as a broker"
            );
            let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| NetError::Config(ConfigError::Inconsistent(e.to_string())))?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoHostnameVerifier(webpki)))
        };
        let config = match (&cfg.certificate_location, &cfg.key_location) {
            (Some(cert), Some(key)) => {
                let chain = CertificateDer::pem_file_iter(cert)
                    .map_err(|e| bad_file("ssl.certificate.location", cert, e))?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| bad_file("ssl.certificate.location", cert, e))?;
                let key_der = PrivateKeyDer::from_pem_file(key)
                    .map_err(|e| bad_file("ssl.key.location", key, e))?;
                builder
                    .with_client_auth_cert(chain, key_der)
                    .map_err(|e| bad_file("ssl.key.location", key, e))?
            }
            _ => builder.with_no_client_auth(),
        };
        Ok(Self {
            inner: tokio_rustls::TlsConnector::from(Arc::new(config)),
            provider: kind,
        })
    }

    pub(crate) async fn connect(
        &self,
        host: &str,
        tcp: TcpStream,
        addr: &Arc<str>,
    ) -> Result<TlsStream<TcpStream>, NetError> {
        let name = ServerName::try_from(host.to_owned()).map_err(|e| NetError::Tls {
            addr: addr.clone(),
            message: format!("invalid server name {host:?}: {e}").into(),
        })?;
        let provider = self.provider;
        let stream = self.inner.connect(name, tcp).await.map_err(|e| {
            // A rustls error (certificate, alert) is final; a plain I/O error
            // during the handshake is a connection failure worth a retry.
            match e.get_ref().and_then(|r| r.downcast_ref::<rustls::Error>()) {
                Some(tls) => NetError::Tls {
                    addr: addr.clone(),
                    message: tls.to_string().into(),
                },
                None => NetError::Connect {
                    addr: addr.clone(),
                    message: format!("during TLS handshake: {e}").into(),
                },
            }
        })?;
        tracing::debug!(%addr, ?provider, "TLS handshake done");
        Ok(stream)
    }
}

/// Verifies the chain against the trusted roots but accepts any host name
/// (`ssl.endpoint.identification.algorithm=`).
#[derive(Debug)]
struct NoHostnameVerifier(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for NoHostnameVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_ca_file_is_a_config_error() {
        let cfg = TlsConfig {
            ca_location: Some("/nonexistent/ca.pem".into()),
            ..TlsConfig::default()
        };
        match TlsConnector::new(&cfg) {
            Err(NetError::Config(ConfigError::InvalidValue { key, .. })) => {
                assert_eq!(key, "ssl.ca.location")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_configured_provider_is_the_one_used() {
        for (choice, kind) in [
            (TlsCryptoProvider::RustCrypto, ProviderKind::RustCrypto),
            (
                TlsCryptoProvider::Custom(Arc::new(rustls_rustcrypto::provider())),
                ProviderKind::Custom,
            ),
        ] {
            let cfg = TlsConfig {
                crypto_provider: choice,
                ..TlsConfig::default()
            };
            assert_eq!(TlsConnector::new(&cfg).unwrap().provider, kind);
        }
        let auto = TlsConnector::new(&TlsConfig::default()).unwrap().provider;
        assert_eq!(
            auto,
            if graviola_supported() {
                ProviderKind::Graviola
            } else {
                ProviderKind::RustCrypto
            }
        );
    }

    /// Counts WARN events.
    struct CountWarnings(Arc<std::sync::atomic::AtomicUsize>);

    impl tracing::Subscriber for CountWarnings {
        fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
            tracing::span::Id::from_u64(1)
        }
        fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
        fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
        fn event(&self, e: &tracing::Event<'_>) {
            if *e.metadata().level() == tracing::Level::WARN {
                self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        }
        fn enter(&self, _: &tracing::span::Id) {}
        fn exit(&self, _: &tracing::span::Id) {}
    }

    #[test]
    fn hostname_verification_off_warns_once_per_connector() {
        let n = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let warnings = || n.load(std::sync::atomic::Ordering::SeqCst);
        tracing::subscriber::with_default(CountWarnings(n.clone()), || {
            TlsConnector::new(&TlsConfig::default()).unwrap();
            assert_eq!(warnings(), 0, "verification on: no warning");
            TlsConnector::new(&TlsConfig {
                verify_hostname: false,
                ..TlsConfig::default()
            })
            .unwrap();
            assert_eq!(warnings(), 1);
        });
    }

    #[test]
    fn default_roots_build() {
        TlsConnector::new(&TlsConfig::default()).unwrap();
        TlsConnector::new(&TlsConfig {
            verify_hostname: false,
            ..TlsConfig::default()
        })
        .unwrap();
    }
}
