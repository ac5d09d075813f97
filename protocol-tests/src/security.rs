//! Security listeners for the test broker: a throwaway CA and a broker
//! certificate made with the JDK's `keytool`, and SASL_SSL plus SASL_PLAINTEXT
//! listeners with SCRAM-SHA-256, SCRAM-SHA-512 and PLAIN users (SCRAM
//! credentials are written at format time with `StorageTool format
//! --add-scram`, so they exist before the broker serves).
//!
//! ```no_run
//! use exactly_protocol_tests::{security::Security, Broker, BrokerConfig};
//! let sec = Security::generate().unwrap();
//! let broker = Broker::start(sec.apply(BrokerConfig::default())).unwrap();
//! let addr = broker.listener_address(1, exactly_protocol_tests::security::SASL_SSL);
//! ```

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::config::{BrokerConfig, ExtraListener};
use crate::error::{HarnessError, IoContext, Result};

/// Name of the SASL over TLS listener.
pub const SASL_SSL: &str = "SASL_SSL";
/// Name of the SASL without TLS listener.
pub const SASL_PLAINTEXT: &str = "SASL_PLAINTEXT";

const STORE_PASSWORD: &str = "exactly-test";

/// Keys, certificates and users for one secured broker.
#[derive(Debug, Clone)]
pub struct Security {
    /// Directory holding the files (removed with the process's temp dir).
    pub dir: PathBuf,
    /// PEM of the CA that signed the broker certificate: trust this.
    pub ca_pem: PathBuf,
    /// PEM of an unrelated CA: a client trusting only this must refuse the
    /// broker.
    pub other_ca_pem: PathBuf,
    /// The broker's PKCS12 keystore.
    pub keystore: PathBuf,
    /// The SCRAM and PLAIN user.
    pub user: String,
    /// Its password.
    pub password: String,
}

fn keytool(dir: &Path, args: &[&str]) -> Result<()> {
    let out = Command::new("keytool")
        .args(args)
        .current_dir(dir)
        .output()
        .map_err(|e| HarnessError::MissingTool {
            program: "keytool",
            why: e.to_string(),
        })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(HarnessError::JavaTool {
            class: format!("keytool {}", args.first().copied().unwrap_or_default()),
            why: format!("exit {}", out.status),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned()
                + &String::from_utf8_lossy(&out.stdout),
        })
    }
}

fn make_ca(dir: &Path, name: &str) -> Result<()> {
    let store = format!("{name}.p12");
    keytool(
        dir,
        &[
            "-genkeypair",
            "-alias",
            name,
            "-keyalg",
            "RSA",
            "-keysize",
            "2048",
            "-validity",
            "3650",
            "-dname",
            &format!("CN={name}"),
            "-ext",
            "bc:c",
            "-keystore",
            &store,
            "-storetype",
            "PKCS12",
            "-storepass",
            STORE_PASSWORD,
            "-keypass",
            STORE_PASSWORD,
        ],
    )?;
    keytool(
        dir,
        &[
            "-exportcert",
            "-alias",
            name,
            "-keystore",
            &store,
            "-storepass",
            STORE_PASSWORD,
            "-rfc",
            "-file",
            &format!("{name}.pem"),
        ],
    )
}

impl Security {
    /// Makes a CA, a broker certificate for `127.0.0.1`/`localhost` signed by
    /// it, and an unrelated CA, in a fresh directory.
    pub fn generate() -> Result<Security> {
        Self::generate_with_san("IP:127.0.0.1,DNS:localhost")
    }

    /// As [`Security::generate`], with the broker certificate's subject
    /// alternative names given in keytool's syntax (e.g. `DNS:localhost`
    /// alone, to test host name verification against `127.0.0.1`).
    pub fn generate_with_san(san: &str) -> Result<Security> {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join("exactly-harness").join(format!(
            "security-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).ctx(|| format!("creating {}", dir.display()))?;
        make_ca(&dir, "test-ca")?;
        make_ca(&dir, "other-ca")?;
        let p = STORE_PASSWORD;
        keytool(
            &dir,
            &[
                "-genkeypair",
                "-alias",
                "broker",
                "-keyalg",
                "RSA",
                "-keysize",
                "2048",
                "-validity",
                "3650",
                "-dname",
                "CN=localhost",
                "-keystore",
                "broker.p12",
                "-storetype",
                "PKCS12",
                "-storepass",
                p,
                "-keypass",
                p,
            ],
        )?;
        keytool(
            &dir,
            &[
                "-certreq",
                "-alias",
                "broker",
                "-keystore",
                "broker.p12",
                "-storepass",
                p,
                "-file",
                "broker.csr",
            ],
        )?;
        keytool(
            &dir,
            &[
                "-gencert",
                "-alias",
                "test-ca",
                "-keystore",
                "test-ca.p12",
                "-storepass",
                p,
                "-infile",
                "broker.csr",
                "-outfile",
                "broker.pem",
                "-rfc",
                "-validity",
                "3650",
                "-ext",
                &format!("SAN={san}"),
                "-ext",
                "EKU=serverAuth",
                "-ext",
                "KU=digitalSignature,keyEncipherment",
            ],
        )?;
        keytool(
            &dir,
            &[
                "-importcert",
                "-alias",
                "test-ca",
                "-keystore",
                "broker.p12",
                "-storepass",
                p,
                "-file",
                "test-ca.pem",
                "-noprompt",
            ],
        )?;
        keytool(
            &dir,
            &[
                "-importcert",
                "-alias",
                "broker",
                "-keystore",
                "broker.p12",
                "-storepass",
                p,
                "-file",
                "broker.pem",
                "-noprompt",
            ],
        )?;
        Ok(Security {
            ca_pem: dir.join("test-ca.pem"),
            other_ca_pem: dir.join("other-ca.pem"),
            keystore: dir.join("broker.p12"),
            dir,
            user: "alice".into(),
            password: "alice-secret".into(),
        })
    }

    /// Adds SASL_SSL and SASL_PLAINTEXT listeners (SCRAM-SHA-256,
    /// SCRAM-SHA-512, PLAIN and unsecured OAUTHBEARER enabled, the user's credentials created at
    /// format time) to `cfg`.
    pub fn apply(&self, mut cfg: BrokerConfig) -> BrokerConfig {
        for name in [SASL_SSL, SASL_PLAINTEXT] {
            cfg.extra_listeners.push(ExtraListener::new(name, name));
            let l = name.to_ascii_lowercase();
            let scram = "org.apache.kafka.common.security.scram.ScramLoginModule required;";
            let plain = format!(
                "org.apache.kafka.common.security.plain.PlainLoginModule required user_{}=\"{}\";",
                self.user, self.password
            );
            cfg.server_properties.extend([
                (
                    format!("listener.name.{l}.sasl.enabled.mechanisms"),
                    "SCRAM-SHA-256,SCRAM-SHA-512,PLAIN,OAUTHBEARER".into(),
                ),
                (
                    format!("listener.name.{l}.scram-sha-256.sasl.jaas.config"),
                    scram.into(),
                ),
                (
                    format!("listener.name.{l}.scram-sha-512.sasl.jaas.config"),
                    scram.into(),
                ),
                (format!("listener.name.{l}.plain.sasl.jaas.config"), plain),
                // Kafka's unsecured OAUTHBEARER validator: accepts unsigned
                // (alg "none") JWTs with a `sub` claim and a future `exp`.
                (
                    format!("listener.name.{l}.oauthbearer.sasl.jaas.config"),
                    "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required;"
                        .into(),
                ),
            ]);
        }
        cfg.server_properties.extend([
            (
                "sasl.enabled.mechanisms".into(),
                "SCRAM-SHA-256,SCRAM-SHA-512,PLAIN,OAUTHBEARER".into(),
            ),
            (
                "ssl.keystore.location".into(),
                self.keystore.display().to_string(),
            ),
            ("ssl.keystore.type".into(), "PKCS12".into()),
            ("ssl.keystore.password".into(), STORE_PASSWORD.into()),
            ("ssl.key.password".into(), STORE_PASSWORD.into()),
        ]);
        for mech in ["SCRAM-SHA-256", "SCRAM-SHA-512"] {
            cfg.format_args.push("--add-scram".into());
            cfg.format_args.push(format!(
                "{mech}=[name={},password={}]",
                self.user, self.password
            ));
        }
        cfg
    }
}
