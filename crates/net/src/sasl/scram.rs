//! SCRAM-SHA-256 and SCRAM-SHA-512 client (RFC 5802, RFC 7677; Kafka KIP-84).
//!
//! Sans-IO: [`ScramClient::client_first`] gives the first message,
//! [`ScramClient::server_first`] takes the server's challenge and gives the
//! final message, [`ScramClient::server_final`] checks the server's signature,
//! which proves the server knew the password's salted form too.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256, Sha512};

/// The hash of a SCRAM mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ScramHash {
    Sha256,
    Sha512,
}

/// Kafka's brokers use 4096..=16384 iterations; more than this is refused so a
/// hostile server cannot make us burn CPU.
const MAX_ITERATIONS: u32 = 65_536;

/// Fewer iterations than this are refused, as the Java client does
/// (`ScramMechanism.minIterations`): a server (or a man in the middle)
/// asking for a cheap hash would make the proof we send easy to brute-force.
const MIN_ITERATIONS: u32 = 4_096;

impl ScramHash {
    fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        match self {
            ScramHash::Sha256 => match Hmac::<Sha256>::new_from_slice(key) {
                Ok(mut m) => {
                    m.update(data);
                    m.finalize().into_bytes().to_vec()
                }
                Err(_) => Vec::new(), // HMAC takes keys of any length
            },
            ScramHash::Sha512 => match Hmac::<Sha512>::new_from_slice(key) {
                Ok(mut m) => {
                    m.update(data);
                    m.finalize().into_bytes().to_vec()
                }
                Err(_) => Vec::new(),
            },
        }
    }

    fn hash(self, data: &[u8]) -> Vec<u8> {
        match self {
            ScramHash::Sha256 => Sha256::digest(data).to_vec(),
            ScramHash::Sha512 => Sha512::digest(data).to_vec(),
        }
    }

    fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        match self {
            ScramHash::Sha256 => {
                let mut out = [0u8; 32];
                pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut out);
                out.to_vec()
            }
            ScramHash::Sha512 => {
                let mut out = [0u8; 64];
                pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, iterations, &mut out);
                out.to_vec()
            }
        }
    }
}

/// Where the exchange stands.
#[derive(Debug)]
enum State {
    /// Client-first sent; expecting the server-first message.
    AwaitingServerFirst,
    /// Client-final sent; expecting the server signature.
    AwaitingServerFinal {
        server_signature: Vec<u8>,
    },
    Done,
}

/// One SCRAM exchange. Its `Debug` output leaves the password out.
pub(crate) struct ScramClient {
    hash: ScramHash,
    password: String,
    client_nonce: String,
    client_first_bare: String,
    state: State,
}

impl std::fmt::Debug for ScramClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramClient")
            .field("hash", &self.hash)
            .field("password", &crate::config::props::REDACTED)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

/// Escapes a user name for SCRAM (`=` as `=3D`, `,` as `=2C`).
fn saslname(user: &str) -> String {
    user.replace('=', "=3D").replace(',', "=2C")
}

impl ScramClient {
    /// Starts an exchange with a given client nonce (printable, no comma).
    pub(crate) fn new(
        hash: ScramHash,
        username: &str,
        password: &str,
        client_nonce: String,
    ) -> Self {
        let client_first_bare = format!("n={},r={}", saslname(username), client_nonce);
        Self {
            hash,
            password: password.to_owned(),
            client_nonce,
            client_first_bare,
            state: State::AwaitingServerFirst,
        }
    }

    /// A fresh random nonce (24 bytes from the OS, base64).
    pub(crate) fn random_nonce() -> Result<String, String> {
        let mut b = [0u8; 24];
        getrandom::fill(&mut b).map_err(|e| format!("no randomness for the SCRAM nonce: {e}"))?;
        Ok(B64.encode(b))
    }

    /// The client-first message (no channel binding, no authzid).
    pub(crate) fn client_first(&self) -> Vec<u8> {
        format!("n,,{}", self.client_first_bare).into_bytes()
    }

    /// Takes the server-first message and returns the client-final message.
    pub(crate) fn server_first(&mut self, msg: &[u8]) -> Result<Vec<u8>, String> {
        if !matches!(self.state, State::AwaitingServerFirst) {
            return Err("unexpected server-first message".into());
        }
        let msg = std::str::from_utf8(msg).map_err(|_| "server-first is not UTF-8".to_string())?;
        let mut nonce = None;
        let mut salt = None;
        let mut iterations = None;
        for attr in msg.split(',') {
            match attr.split_once('=') {
                Some(("r", v)) => nonce = Some(v),
                Some(("s", v)) => salt = Some(v),
                Some(("i", v)) => iterations = Some(v),
                Some(("e", v)) => return Err(format!("server error: {v}")),
                Some(("m", _)) => return Err("server requires an unsupported extension".into()),
                _ => {}
            }
        }
        let (Some(nonce), Some(salt), Some(iterations)) = (nonce, salt, iterations) else {
            return Err(format!("malformed server-first message {msg:?}"));
        };
        if !nonce.starts_with(&self.client_nonce) || nonce.len() <= self.client_nonce.len() {
            return Err("server nonce does not extend the client nonce".into());
        }
        let salt = B64
            .decode(salt)
            .map_err(|_| "server salt is not base64".to_string())?;
        let iterations: u32 = iterations
            .parse()
            .map_err(|_| format!("bad iteration count {iterations:?}"))?;
        if iterations < MIN_ITERATIONS {
            return Err(format!(
                "iteration count {iterations} is below the minimum of {MIN_ITERATIONS}"
            ));
        }
        if iterations > MAX_ITERATIONS {
            return Err(format!("iteration count {iterations} out of range"));
        }
        let h = self.hash;
        let salted = h.salted_password(self.password.as_bytes(), &salt, iterations);
        let client_key = h.hmac(&salted, b"Client Key");
        let stored_key = h.hash(&client_key);
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{},{}", self.client_first_bare, msg, without_proof);
        let client_signature = h.hmac(&stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&client_signature)
            .map(|(a, b)| a ^ b)
            .collect();
        let server_key = h.hmac(&salted, b"Server Key");
        let server_signature = h.hmac(&server_key, auth_message.as_bytes());
        self.state = State::AwaitingServerFinal { server_signature };
        Ok(format!("{without_proof},p={}", B64.encode(proof)).into_bytes())
    }

    /// Checks the server-final message.
    pub(crate) fn server_final(&mut self, msg: &[u8]) -> Result<(), String> {
        let State::AwaitingServerFinal { server_signature } = &self.state else {
            return Err("unexpected server-final message".into());
        };
        let msg = std::str::from_utf8(msg).map_err(|_| "server-final is not UTF-8".to_string())?;
        if let Some(e) = msg.strip_prefix("e=") {
            return Err(format!("server error: {e}"));
        }
        let v = msg
            .split(',')
            .find_map(|a| a.strip_prefix("v="))
            .ok_or_else(|| format!("malformed server-final message {msg:?}"))?;
        let got = B64
            .decode(v)
            .map_err(|_| "server signature is not base64".to_string())?;
        if &got != server_signature {
            return Err(
                "server signature mismatch: the server does not know the credentials".into(),
            );
        }
        self.state = State::Done;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The SCRAM-SHA-256 example exchange of RFC 7677, section 3.
    #[test]
    fn rfc7677_example() {
        let mut c = ScramClient::new(
            ScramHash::Sha256,
            "user",
            "pencil",
            "rOprNGfwEbeRWgbNEkqO".into(),
        );
        assert_eq!(c.client_first(), b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let fin = c
            .server_first(
                b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
            )
            .unwrap();
        assert_eq!(
            String::from_utf8(fin).unwrap(),
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        c.server_final(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
            .unwrap();
        assert!(matches!(c.state, State::Done));
    }

    #[test]
    fn forged_server_signature_is_refused() {
        let mut c = ScramClient::new(ScramHash::Sha512, "u", "p", "abc".into());
        c.server_first(b"r=abcdef,s=c2FsdA==,i=4096").unwrap();
        assert!(c.server_final(b"v=AAAA").unwrap_err().contains("mismatch"));
    }

    #[test]
    fn hostile_server_first() {
        let mk = || ScramClient::new(ScramHash::Sha256, "u", "p", "abc".into());
        assert!(mk().server_first(b"r=xyz,s=c2FsdA==,i=4096").is_err());
        assert!(mk().server_first(b"r=abcd,s=c2FsdA==,i=999999999").is_err());
        // Below Java's minimum of 4096: refused before any hashing.
        for low in ["0", "1", "4095"] {
            let msg = format!("r=abcd,s=c2FsdA==,i={low}");
            let err = mk().server_first(msg.as_bytes()).unwrap_err();
            assert!(err.contains("below the minimum of 4096"), "{err}");
        }
        assert!(mk().server_first(b"r=abcd,s=c2FsdA==,i=4096").is_ok());
        assert!(mk().server_first(b"r=abcd,s=!!,i=4096").is_err());
        assert!(mk().server_first(b"e=invalid-proof").is_err());
        assert!(mk().server_first(b"garbage").is_err());
        assert!(mk().server_final(b"v=x").is_err());
    }

    #[test]
    fn debug_leaves_the_password_out() {
        let c = ScramClient::new(ScramHash::Sha256, "u", "pw-SECRET-1", "abc".into());
        let d = format!("{c:?}");
        assert!(
            !d.contains("pw-SECRET-1") && d.contains("<redacted>"),
            "{d}"
        );
    }

    #[test]
    fn username_escaping() {
        let c = ScramClient::new(ScramHash::Sha256, "a=b,c", "p", "n".into());
        assert_eq!(c.client_first(), b"n,,n=a=3Db=2Cc,r=n");
    }
}
