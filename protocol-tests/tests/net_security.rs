//! exactly-net's SASL and TLS against a broker with SASL_SSL and
//! SASL_PLAINTEXT listeners (certificates from keytool, SCRAM users created at
//! format time): SCRAM-SHA-256 and -512 over TLS, PLAIN, a wrong password
//! (a clear authentication error, no retry loop), an untrusted certificate
//! (refused).
//!
//! Every case over TLS runs once per crypto provider ([`providers`]): the
//! default choice (graviola on this CPU), the portable RustCrypto fallback
//! forced, and a provider of the user's own that counts its handshakes, so
//! the fallback a CPU without graviola's features gets is shown on the wire.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use exactly_net::{Client, Connector, Metrics, NetConfig, NetError, TlsCryptoProvider};
use exactly_protocol_tests::security::{Security, SASL_PLAINTEXT, SASL_SSL};
use exactly_protocol_tests::{Broker, BrokerConfig};

struct Secured {
    broker: Broker,
    sec: Security,
}

fn secured() -> &'static Secured {
    static S: OnceLock<Secured> = OnceLock::new();
    S.get_or_init(|| {
        let sec = Security::generate().unwrap_or_else(|e| panic!("{e}"));
        // KIP-368: sessions last 5 s; a client must re-authenticate or
        // reconnect before that, or the broker drops it.
        let cfg = BrokerConfig::default().property("connections.max.reauth.ms", "5000");
        let broker = Broker::start(sec.apply(cfg)).unwrap_or_else(|e| panic!("{e}"));
        Secured { broker, sec }
    })
}

/// Random bytes from the RustCrypto provider, counted: every handshake
/// through the custom provider draws from it (client random, key shares).
#[derive(Debug)]
struct CountingRandom(&'static AtomicUsize);

impl rustls::crypto::SecureRandom for CountingRandom {
    fn fill(&self, buf: &mut [u8]) -> Result<(), rustls::crypto::GetRandomFailed> {
        self.0.fetch_add(1, Ordering::Relaxed);
        rustls_rustcrypto::provider().secure_random.fill(buf)
    }
}

/// A crypto provider run under one name in a test.
struct Provider {
    name: &'static str,
    provider: TlsCryptoProvider,
    /// For the custom provider: how often it was asked for random bytes.
    draws: Option<&'static AtomicUsize>,
}

impl Provider {
    /// Runs `case` with this provider; for the custom one, checks its
    /// handshakes really went through it (its own counter: tests run side by
    /// side).
    async fn check<F: std::future::Future<Output = ()>>(&self, case: F) {
        let before = self.draws.map(|d| d.load(Ordering::Relaxed));
        case.await;
        if let (Some(d), Some(before)) = (self.draws, before) {
            assert!(
                d.load(Ordering::Relaxed) > before,
                "the custom provider was not used"
            );
        }
    }
}

/// The providers every TLS case runs with: the default (graviola where the
/// CPU runs it, as here), RustCrypto forced, and a custom one.
fn providers() -> Vec<Provider> {
    // Leaked once per test: rustls wants `&'static` randomness.
    let draws: &'static AtomicUsize = Box::leak(Box::new(AtomicUsize::new(0)));
    let random: &'static CountingRandom = Box::leak(Box::new(CountingRandom(draws)));
    let custom = rustls::crypto::CryptoProvider {
        secure_random: random,
        ..rustls_rustcrypto::provider()
    };
    vec![
        Provider {
            name: "auto",
            provider: TlsCryptoProvider::Auto,
            draws: None,
        },
        Provider {
            name: "rustcrypto",
            provider: TlsCryptoProvider::RustCrypto,
            draws: None,
        },
        Provider {
            name: "custom",
            provider: TlsCryptoProvider::Custom(Arc::new(custom)),
            draws: Some(draws),
        },
    ]
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn props(
    listener: &str,
    mechanism: &str,
    password: &str,
    ca: Option<&std::path::Path>,
) -> NetConfig {
    props_with(listener, mechanism, password, ca, TlsCryptoProvider::Auto)
}

fn props_with(
    listener: &str,
    mechanism: &str,
    password: &str,
    ca: Option<&std::path::Path>,
    provider: TlsCryptoProvider,
) -> NetConfig {
    let s = secured();
    let addr = s.broker.listener_address(1, listener).unwrap();
    let mut b = NetConfig::builder();
    b.set("bootstrap.servers", &addr).unwrap();
    b.set("security.protocol", listener).unwrap();
    b.set("sasl.mechanism", mechanism).unwrap();
    b.set("sasl.username", &s.sec.user).unwrap();
    b.set("sasl.password", password).unwrap();
    b.set("request.timeout.ms", "10000").unwrap();
    if let Some(ca) = ca {
        b.set("ssl.ca.location", ca.to_str().unwrap()).unwrap();
    }
    b.tls_crypto_provider(provider);
    b.build().unwrap()
}

/// Connects, then checks the connection works: metadata lists the broker and
/// the client learnt the broker's advertised SASL listener address is not
/// needed (broker ids resolve through Metadata of the same listener).
async fn works(cfg: NetConfig) {
    let client = Client::connect(cfg).await.unwrap();
    let view = client.refresh_metadata(&[]).await.unwrap();
    assert_eq!(view.brokers().count(), 1);
    let conn = client.connection(1).await.unwrap();
    assert!(conn
        .versions()
        .broker_range(exactly_codec::messages::ApiKey::Produce)
        .is_some());
    client.close();
}

#[test]
fn scram_sha_256_and_512_over_tls() {
    let s = secured();
    runtime().block_on(async {
        for p in providers() {
            p.check(async {
                for mech in ["SCRAM-SHA-256", "SCRAM-SHA-512"] {
                    let cfg = props_with(
                        SASL_SSL,
                        mech,
                        &s.sec.password,
                        Some(&s.sec.ca_pem),
                        p.provider.clone(),
                    );
                    works(cfg).await;
                }
            })
            .await;
            eprintln!("{}: SCRAM over TLS ok", p.name);
        }
    });
}

#[test]
fn scram_and_plain_without_tls() {
    let s = secured();
    runtime().block_on(async {
        for mech in ["SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN"] {
            works(props(SASL_PLAINTEXT, mech, &s.sec.password, None)).await;
        }
    });
}

#[test]
fn wrong_password_is_a_clear_authentication_error() {
    let s = secured();
    runtime().block_on(async {
        let over_tls = providers()
            .into_iter()
            .map(|p| (SASL_SSL, "SCRAM-SHA-512", p.provider));
        let plain = [
            (SASL_PLAINTEXT, "SCRAM-SHA-256", TlsCryptoProvider::Auto),
            (SASL_PLAINTEXT, "PLAIN", TlsCryptoProvider::Auto),
        ];
        for (listener, mech, provider) in over_tls.chain(plain) {
            let started = Instant::now();
            let e = Client::connect(props_with(
                listener,
                mech,
                "not-the-password",
                Some(&s.sec.ca_pem),
                provider,
            ))
            .await
            .unwrap_err();
            match &e {
                NetError::Authentication { mechanism, message } => {
                    assert_eq!(&**mechanism, mech);
                    assert!(message.contains("SASL_AUTHENTICATION_FAILED"), "{message}");
                }
                other => panic!("{listener} {mech}: {other:?}"),
            }
            assert!(!e.is_retriable());
            // One attempt, not a retry loop.
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "{:?}",
                started.elapsed()
            );
        }
    });
}

#[test]
fn untrusted_certificate_is_refused() {
    let s = secured();
    runtime().block_on(async {
        for Provider { name, provider, .. } in providers() {
            let e = Client::connect(props_with(
                SASL_SSL,
                "SCRAM-SHA-256",
                &s.sec.password,
                Some(&s.sec.other_ca_pem),
                provider.clone(),
            ))
            .await
            .unwrap_err();
            match &e {
                NetError::Tls { message, .. } => {
                    assert!(message.contains("certificate"), "{name}: {message}")
                }
                other => panic!("{name}: {other:?}"),
            }
            assert!(!e.is_retriable());
            // The public web roots do not trust a test CA either.
            let e = Client::connect(props_with(
                SASL_SSL,
                "SCRAM-SHA-256",
                &s.sec.password,
                None,
                provider,
            ))
            .await
            .unwrap_err();
            assert!(matches!(e, NetError::Tls { .. }), "{name}: {e:?}");
        }
    });
}

/// A broker whose certificate names only `localhost`: reaching it as
/// 127.0.0.1 is refused while host name verification is on (the default),
/// accepted with `ssl.endpoint.identification.algorithm=` (the chain is still
/// verified: an untrusted CA is still refused), and fine as `localhost`.
#[test]
fn hostname_verification_is_on_by_default() {
    let sec = Security::generate_with_san("DNS:localhost").unwrap_or_else(|e| panic!("{e}"));
    let broker =
        Broker::start(sec.apply(BrokerConfig::default())).unwrap_or_else(|e| panic!("{e}"));
    let addr = broker.listener_address(1, SASL_SSL).unwrap();
    let port = addr.rsplit_once(':').unwrap().1.to_owned();
    let connector = |host: &str, ca: &std::path::Path, verify: bool, p: &TlsCryptoProvider| {
        let mut b = NetConfig::builder();
        b.tls_crypto_provider(p.clone());
        for (k, v) in [
            ("bootstrap.servers", format!("{host}:{port}")),
            ("security.protocol", "SASL_SSL".into()),
            ("sasl.mechanism", "SCRAM-SHA-256".into()),
            ("sasl.username", sec.user.clone()),
            ("sasl.password", sec.password.clone()),
            ("ssl.ca.location", ca.display().to_string()),
            (
                "ssl.endpoint.identification.algorithm",
                if verify { "https" } else { "" }.into(),
            ),
        ] {
            b.set(k, &v).unwrap();
        }
        Connector::new(Arc::new(b.build().unwrap()), Arc::new(Metrics::default())).unwrap()
    };
    runtime().block_on(async {
        for Provider { name, provider, .. } in providers() {
            let p = &provider;
            let ip = format!("127.0.0.1:{port}");
            let e = connector("127.0.0.1", &sec.ca_pem, true, p)
                .connect(&ip, None)
                .await
                .unwrap_err();
            match &e {
                NetError::Tls { message, .. } => {
                    assert!(message.contains("not valid for name"), "{name}: {message}")
                }
                other => panic!("{name}: {other:?}"),
            }
            connector("127.0.0.1", &sec.ca_pem, false, p)
                .connect(&ip, None)
                .await
                .unwrap();
            let e = connector("127.0.0.1", &sec.other_ca_pem, false, p)
                .connect(&ip, None)
                .await
                .unwrap_err();
            assert!(matches!(e, NetError::Tls { .. }), "{name}: {e:?}");
            let local = format!("localhost:{port}");
            connector("localhost", &sec.ca_pem, true, p)
                .connect(&local, None)
                .await
                .unwrap();
        }
    });
}

/// The broker ends SASL sessions after 5 s (KIP-368). The pool replaces each
/// connection before its session runs out, so 13 s of steady traffic see no
/// failure at all, and several fresh connections.
#[test]
fn sasl_session_expiry_rotates_connections_without_failures() {
    session_expiry(TlsCryptoProvider::Auto);
}

/// The same through the RustCrypto fallback (a test of its own: the two run
/// side by side).
#[test]
fn sasl_session_expiry_through_the_rustcrypto_fallback() {
    session_expiry(TlsCryptoProvider::RustCrypto);
}

fn session_expiry(provider: TlsCryptoProvider) {
    let s = secured();
    runtime().block_on(async {
        let client = Client::connect(props_with(
            SASL_SSL,
            "SCRAM-SHA-512",
            &s.sec.password,
            Some(&s.sec.ca_pem),
            provider,
        ))
        .await
        .unwrap();
        let first = client.connection(1).await.unwrap();
        let until = Instant::now() + Duration::from_secs(13);
        let mut n = 0;
        while Instant::now() < until {
            let conn = client.connection(1).await.unwrap();
            conn.send(&exactly_codec::messages::MetadataRequest::default())
                .await
                .unwrap_or_else(|e| panic!("request {n}: {e}"));
            n += 1;
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let m = client.metrics_snapshot();
        eprintln!("{n} requests, first closed: {}, {m:?}", first.is_closed());
        assert!(first.is_closed(), "the first connection was retired");
        assert!(m.connects >= 3, "{m:?}");
        assert_eq!(m.disconnects, 0, "{m:?}");
        eprintln!("{n} requests over {} connections", m.connects);
    });
}

/// An unsigned JWT (Kafka's unsecured OAUTHBEARER validator accepts these)
/// for `sub`, expiring `exp_offset` seconds from now.
fn unsecured_jwt(sub: &str, exp_offset: i64) -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#);
    let payload = URL_SAFE_NO_PAD.encode(
        format!(
            r#"{{"sub":"{sub}","iat":{now},"exp":{}}}"#,
            now + exp_offset
        )
        .as_bytes(),
    );
    format!("{header}.{payload}.")
}

fn oauth_config(listener: &str, exp_offset: i64) -> NetConfig {
    oauth_config_with(listener, exp_offset, TlsCryptoProvider::Auto)
}

fn oauth_config_with(listener: &str, exp_offset: i64, provider: TlsCryptoProvider) -> NetConfig {
    let s = secured();
    let addr = s.broker.listener_address(1, listener).unwrap();
    let mut b = NetConfig::builder();
    b.set("bootstrap.servers", &addr).unwrap();
    b.set("security.protocol", listener).unwrap();
    b.set("ssl.ca.location", s.sec.ca_pem.to_str().unwrap())
        .unwrap();
    b.tls_crypto_provider(provider);
    b.sasl_oauthbearer(Arc::new(move || {
        let token = unsecured_jwt("alice", exp_offset);
        Box::pin(async move {
            Ok(exactly_net::config::OAuthToken {
                token,
                extensions: Vec::new(),
            })
        })
    }));
    b.build().unwrap()
}

#[test]
fn oauthbearer_with_a_token_callback() {
    runtime().block_on(async {
        works(oauth_config(SASL_PLAINTEXT, 3600)).await;
        for p in providers() {
            p.check(works(oauth_config_with(SASL_SSL, 3600, p.provider.clone())))
                .await;
        }
        // An expired token: the broker's error challenge is reported, once.
        let e = Client::connect(oauth_config(SASL_PLAINTEXT, -3600))
            .await
            .unwrap_err();
        match &e {
            NetError::Authentication { mechanism, message } => {
                assert_eq!(&**mechanism, "OAUTHBEARER");
                assert!(message.contains("invalid_token"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        assert!(!e.is_retriable());
    });
}
