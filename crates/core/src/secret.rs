//! Random secrets and their digests.
//!
//! Every secret latchkey hands out (application secrets, personal access
//! tokens) carries 256 bits from the operating system's CSPRNG. Only the
//! SHA-256 digest is stored: for values of that entropy a fast hash is as
//! safe as a slow one, and it lets a token be found by its digest.

use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Errors from the operating system's random source.
#[derive(Debug, thiserror::Error)]
#[error("the operating system's random number generator failed: {0}")]
pub struct RandomError(String);

/// `n` random bytes from the OS CSPRNG, hex encoded (lowercase).
pub fn random_hex(n: usize) -> Result<String, RandomError> {
    let mut buf = vec![0u8; n];
    getrandom::fill(&mut buf).map_err(|e| RandomError(e.to_string()))?;
    Ok(hex::encode(buf))
}

/// The stored form of a secret: lowercase hex SHA-256.
pub fn digest(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Constant-time comparison of two digests (or any two strings).
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// Does `presented` hash to `stored_digest`? Constant time in the digest.
pub fn verify(presented: &str, stored_digest: &str) -> bool {
    constant_time_eq(&digest(presented), stored_digest)
}

/// A newly made secret, shown once and never stored. `Debug` shows
/// `[REDACTED]`: only [`Plaintext::expose`] gives the value.
#[derive(Debug, Clone)]
pub struct Plaintext(SecretString);

impl Plaintext {
    pub fn new(secret: String) -> Self {
        Self(SecretString::from(secret))
    }

    /// The value, to show once.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_hex_has_the_asked_length_and_alphabet() -> Result<(), RandomError> {
        let a = random_hex(32)?;
        let b = random_hex(32)?;
        assert_eq!(a.len(), 64);
        assert!(a
            .bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)));
        assert_ne!(a, b);
        Ok(())
    }

    #[test]
    fn digest_is_sha256_hex() {
        assert_eq!(
            digest("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(verify("abc", &digest("abc")));
        assert!(!verify("abd", &digest("abc")));
    }
}
