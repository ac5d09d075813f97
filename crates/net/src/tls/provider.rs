//! The choice of the rustls crypto provider, kept free of C on every target.
//!
//! Two pure-Rust providers are built in:
//!
//! - **graviola** (`rustls-graviola`): fast, formally verified assembly for
//!   x86_64 with AES-NI, PCLMULQDQ, BMI1, ADX, AVX and AVX2 (Haswell, 2013,
//!   and later) and aarch64 with AES, PMULL, SHA2 and NEON. It is compiled on
//!   x86_64 and aarch64 only.
//! - **RustCrypto** (`rustls-rustcrypto`): portable Rust (AES-GCM,
//!   ChaCha20-Poly1305, X25519, P-256/P-384 ECDH and ECDSA, RSA and Ed25519
//!   signatures) that builds wherever Rust does. Slower, and its crate is
//!   still an alpha release not audited by its authors; it is the fallback,
//!   not the default, wherever graviola runs.
//!
//! [`TlsCryptoProvider::Auto`] (the default) takes graviola when the CPU
//! supports it, checked at run time, and RustCrypto otherwise (always, on
//! other architectures). A user who wants another provider (a FIPS module,
//! their process-wide rustls default) passes it as
//! [`TlsCryptoProvider::Custom`]; the no-C promise then is theirs to keep.

use std::fmt;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;

use crate::config::ConfigError;

/// Which rustls [`CryptoProvider`] TLS connections use (see the module
/// docs of `exactly_net::tls` for what each one needs).
#[derive(Clone, Default)]
#[non_exhaustive]
pub enum TlsCryptoProvider {
    /// graviola where the CPU runs it, else RustCrypto (the default).
    #[default]
    Auto,
    /// graviola only: building a connection fails with a
    /// [`ConfigError::Inconsistent`] on a CPU or architecture it does not
    /// support (instead of graviola's own panic).
    Graviola,
    /// The portable RustCrypto provider, even where graviola would run.
    RustCrypto,
    /// A provider of the user's own (for example
    /// `rustls::crypto::CryptoProvider::get_default()`).
    Custom(Arc<CryptoProvider>),
}

impl fmt::Debug for TlsCryptoProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsCryptoProvider::Auto => f.write_str("Auto"),
            TlsCryptoProvider::Graviola => f.write_str("Graviola"),
            TlsCryptoProvider::RustCrypto => f.write_str("RustCrypto"),
            TlsCryptoProvider::Custom(_) => f.write_str("Custom(..)"),
        }
    }
}

/// The provider a [`TlsCryptoProvider`] resolved to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProviderKind {
    Graviola,
    RustCrypto,
    Custom,
}

impl TlsCryptoProvider {
    /// Resolves the choice on this machine: the provider, and which one it is.
    pub(crate) fn resolve(&self) -> Result<(Arc<CryptoProvider>, ProviderKind), ConfigError> {
        match self {
            TlsCryptoProvider::Auto => Ok(match graviola() {
                Ok(p) => (p, ProviderKind::Graviola),
                Err(_) => (rustcrypto(), ProviderKind::RustCrypto),
            }),
            TlsCryptoProvider::Graviola => graviola()
                .map(|p| (p, ProviderKind::Graviola))
                .map_err(ConfigError::Inconsistent),
            TlsCryptoProvider::RustCrypto => Ok((rustcrypto(), ProviderKind::RustCrypto)),
            TlsCryptoProvider::Custom(p) => Ok((p.clone(), ProviderKind::Custom)),
        }
    }
}

/// The provider [`TlsCryptoProvider::Auto`] picks on this machine: graviola
/// where the CPU supports it, else RustCrypto.
pub fn crypto_provider() -> Arc<CryptoProvider> {
    graviola().unwrap_or_else(|_| rustcrypto())
}

/// Whether graviola runs here (built for this architecture, and the CPU has
/// the features it needs).
pub fn graviola_supported() -> bool {
    graviola().is_ok()
}

fn rustcrypto() -> Arc<CryptoProvider> {
    Arc::new(rustls_rustcrypto::provider())
}

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
fn graviola() -> Result<Arc<CryptoProvider>, String> {
    if graviola::util::is_cpu_supported() {
        Ok(Arc::new(rustls_graviola::default_provider()))
    } else {
        Err(if cfg!(target_arch = "x86_64") {
            "the graviola TLS provider needs an x86_64 CPU with AES-NI, PCLMULQDQ, BMI1, ADX, AVX and AVX2"
        } else {
            "the graviola TLS provider needs an aarch64 CPU with AES, PMULL, SHA2 and NEON"
        }
        .to_owned())
    }
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn graviola() -> Result<Arc<CryptoProvider>, String> {
    Err("the graviola TLS provider is built for x86_64 and aarch64 only".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_is_graviola_where_it_runs_else_rustcrypto() {
        let (_, kind) = TlsCryptoProvider::Auto.resolve().unwrap();
        let expected = if graviola_supported() {
            ProviderKind::Graviola
        } else {
            ProviderKind::RustCrypto
        };
        assert_eq!(kind, expected);
        assert_eq!(
            TlsCryptoProvider::RustCrypto.resolve().unwrap().1,
            ProviderKind::RustCrypto
        );
        match TlsCryptoProvider::Graviola.resolve() {
            Ok((_, k)) => assert!(graviola_supported() && k == ProviderKind::Graviola),
            Err(ConfigError::Inconsistent(m)) => {
                assert!(!graviola_supported() && m.contains("graviola"), "{m}")
            }
            Err(e) => panic!("{e:?}"),
        }
    }

    #[test]
    fn custom_is_used_as_given() {
        let mine = Arc::new(rustls_rustcrypto::provider());
        let (got, kind) = TlsCryptoProvider::Custom(mine.clone()).resolve().unwrap();
        assert_eq!(kind, ProviderKind::Custom);
        assert!(Arc::ptr_eq(&got, &mine));
        assert_eq!(
            format!("{:?}", TlsCryptoProvider::Custom(mine)),
            "Custom(..)"
        );
    }

    /// Both built-in providers offer TLS 1.3 and 1.2 suites with AES-GCM and
    /// key exchange on X25519 and P-256 (what Java brokers negotiate).
    #[test]
    fn both_providers_cover_what_brokers_negotiate() {
        for p in [Some(rustcrypto()), graviola().ok()].into_iter().flatten() {
            let suites: Vec<_> = p.cipher_suites.iter().map(|s| s.suite()).collect();
            assert!(suites.contains(&rustls::CipherSuite::TLS13_AES_128_GCM_SHA256));
            assert!(suites.contains(&rustls::CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256));
            let groups: Vec<_> = p.kx_groups.iter().map(|g| g.name()).collect();
            assert!(groups.contains(&rustls::NamedGroup::X25519), "{groups:?}");
            assert!(
                groups.contains(&rustls::NamedGroup::secp256r1),
                "{groups:?}"
            );
        }
    }
}
