//! exactly-net's SASL and TLS against a broker with SASL_SSL and
//! SASL_PLAINTEXT listeners (certificates from keytool, SCRAM users created at
//! format time): SCRAM-SHA-256 and -512 over TLS, PLAIN, a wrong password
//! (a clear authentication error, no retry loop), an untrusted certificate
//! (refused).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use exactly_net::{Client, Connector, Metrics, NetConfig, NetError};
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
        for mech in ["SCRAM-SHA-256", "SCRAM-SHA-512"] {
            works(props(SASL_SSL, mech, &s.sec.password, Some(&s.sec.ca_pem))).await;
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
        for (listener, mech) in [
            (SASL_SSL, "SCRAM-SHA-512"),
            (SASL_PLAINTEXT, "SCRAM-SHA-256"),
            (SASL_PLAINTEXT, "PLAIN"),
        ] {
            let started = Instant::now();
            let e = Client::connect(props(
                listener,
                mech,
                "not-the-password",
                Some(&s.sec.ca_pem),
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
        let e = Client::connect(props(
            SASL_SSL,
            "SCRAM-SHA-256",
            &s.sec.password,
            Some(&s.sec.other_ca_pem),
        ))
        .await
        .unwrap_err();
        match &e {
            NetError::Tls { message, .. } => assert!(message.contains("certificate"), "{message}"),
            other => panic!("{other:?}"),
        }
        assert!(!e.is_retriable());
        // The public web roots do not trust a test CA either.
        let e = Client::connect(props(SASL_SSL, "SCRAM-SHA-256", &s.sec.password, None))
            .await
            .unwrap_err();
        assert!(matches!(e, NetError::Tls { .. }), "{e:?}");
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
    let connector = |host: &str, ca: &std::path::Path, verify: bool| {
        let mut b = NetConfig::builder();
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
        let ip = format!("127.0.0.1:{port}");
        let e = connector("127.0.0.1", &sec.ca_pem, true)
            .connect(&ip, None)
            .await
            .unwrap_err();
        match &e {
            NetError::Tls { message, .. } => {
                assert!(message.contains("not valid for name"), "{message}")
            }
            other => panic!("{other:?}"),
        }
        connector("127.0.0.1", &sec.ca_pem, false)
            .connect(&ip, None)
            .await
            .unwrap();
        let e = connector("127.0.0.1", &sec.other_ca_pem, false)
            .connect(&ip, None)
            .await
            .unwrap_err();
        assert!(matches!(e, NetError::Tls { .. }), "{e:?}");
        let local = format!("localhost:{port}");
        connector("localhost", &sec.ca_pem, true)
            .connect(&local, None)
            .await
            .unwrap();
    });
}

/// The broker ends SASL sessions after 5 s (KIP-368). The pool replaces each
/// connection before its session runs out, so 13 s of steady traffic see no
/// failure at all, and several fresh connections.
#[test]
fn sasl_session_expiry_rotates_connections_without_failures() {
    let s = secured();
    runtime().block_on(async {
        let client = Client::connect(props(
            SASL_SSL,
            "SCRAM-SHA-512",
            &s.sec.password,
            Some(&s.sec.ca_pem),
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
    let s = secured();
    let addr = s.broker.listener_address(1, listener).unwrap();
    let mut b = NetConfig::builder();
    b.set("bootstrap.servers", &addr).unwrap();
    b.set("security.protocol", listener).unwrap();
    b.set("ssl.ca.location", s.sec.ca_pem.to_str().unwrap())
        .unwrap();
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
        for listener in [SASL_PLAINTEXT, SASL_SSL] {
            works(oauth_config(listener, 3600)).await;
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
