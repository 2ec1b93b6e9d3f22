//! Credentials as GitLab stores them, for what is imported from it
//! (`latchkey import gitlab`, or a state file naming GitLab's hashes).
//! Each is verified here, and replaced with latchkey's own form at its
//! first successful use.
//!
//! - Application secrets: PBKDF2-HMAC-SHA512, 20 000 rounds, empty salt,
//!   passlib's `$pbkdf2-sha512$20000$$<checksum>` (GitLab's default), or
//!   hex SHA-512 (its `sha512_oauth` flag).
//! - Passwords: bcrypt (`$2a$…`, see [`crate::user`]) or, where GitLab runs
//!   in FIPS mode, `$pbkdf2-sha512$<rounds>$<salt>$<checksum>`.
//! - Personal access tokens: `base64(SHA-256(token + db_key_base[..32]))`
//!   (`Gitlab::CryptoHelper.sha256`), verifiable only with the instance's
//!   `db_key_base`.

use base64::Engine;
use sha2::{Digest, Sha256, Sha512};
use subtle::ConstantTimeEq;

/// The most PBKDF2 rounds a stored hash may ask for (GitLab uses 20 000):
/// each verification pays for them.
pub const MAX_PBKDF2_ROUNDS: u32 = 100_000;

const PBKDF2_SHA512: &str = "$pbkdf2-sha512$";

/// passlib's "adapted base64": standard alphabet with `.` for `+`, no padding.
fn ab64_decode(text: &str) -> Option<Vec<u8>> {
    let standard = text.replace('.', "+");
    base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(standard.trim_end_matches('='))
        .ok()
}

/// The parts of a `$pbkdf2-sha512$rounds$salt$checksum` hash.
fn pbkdf2_parts(stored: &str) -> Option<(u32, Vec<u8>, Vec<u8>)> {
    let rest = stored.strip_prefix(PBKDF2_SHA512)?;
    let mut parts = rest.split('$');
    let rounds: u32 = parts.next()?.parse().ok()?;
    let salt = ab64_decode(parts.next()?)?;
    let checksum = ab64_decode(parts.next()?)?;
    // SHA-512's full output: a shorter checksum would be easier to hit.
    if parts.next().is_some() || checksum.len() != 64 {
        return None;
    }
    Some((rounds, salt, checksum))
}

/// Is `stored` a PBKDF2-SHA512 hash latchkey will verify (well formed, at
/// most [`MAX_PBKDF2_ROUNDS`])?
pub fn is_pbkdf2_sha512(stored: &str) -> bool {
    pbkdf2_parts(stored).is_some_and(|(rounds, _, _)| (1..=MAX_PBKDF2_ROUNDS).contains(&rounds))
}

/// Does `presented` verify against a `$pbkdf2-sha512$…` hash? Constant
/// time in the checksum.
pub fn verify_pbkdf2_sha512(presented: &str, stored: &str) -> bool {
    let Some((rounds, salt, checksum)) = pbkdf2_parts(stored) else {
        return false;
    };
    if !(1..=MAX_PBKDF2_ROUNDS).contains(&rounds) {
        return false;
    }
    let mut out = vec![0u8; checksum.len()];
    pbkdf2::pbkdf2_hmac::<Sha512>(presented.as_bytes(), &salt, rounds, &mut out);
    out.ct_eq(&checksum).into()
}

/// Is `stored` a hex SHA-512 digest (128 hex characters)?
pub fn is_sha512_hex(stored: &str) -> bool {
    stored.len() == 128 && stored.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Is `stored` latchkey's own digest (hex SHA-256)?
pub fn is_sha256_hex(stored: &str) -> bool {
    stored.len() == 64 && stored.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Is `stored` one of GitLab's forms of an application secret?
pub fn is_gitlab_secret_hash(stored: &str) -> bool {
    is_sha512_hex(stored) || is_pbkdf2_sha512(stored)
}

/// Does `presented` verify against an application secret's stored digest,
/// in any form latchkey knows (its own SHA-256, or GitLab's)? Constant
/// time in the digest.
pub fn verify_secret(presented: &str, stored: &str) -> bool {
    if is_sha256_hex(stored) {
        return crate::secret::verify(presented, stored);
    }
    if is_sha512_hex(stored) {
        let digest = hex::encode(Sha512::digest(presented.as_bytes()));
        return crate::secret::constant_time_eq(&digest, &stored.to_ascii_lowercase());
    }
    verify_pbkdf2_sha512(presented, stored)
}

/// GitLab's digest of a personal access token (`token_digest`), with the
/// instance's `db_key_base`.
pub fn gitlab_token_digest(token: &str, db_key_base: &str) -> String {
    let salt: String = db_key_base.chars().take(32).collect();
    let digest = Sha256::new()
        .chain_update(token.as_bytes())
        .chain_update(salt.as_bytes())
        .finalize();
    base64::engine::general_purpose::STANDARD.encode(digest)
}

/// Is `stored` shaped like GitLab's token digest (base64 of 32 bytes)?
pub fn is_gitlab_token_digest(stored: &str) -> bool {
    stored.len() == 44
        && stored.ends_with('=')
        && base64::engine::general_purpose::STANDARD
            .decode(stored)
            .is_ok_and(|b| b.len() == 32)
}

#[cfg(test)]
mod tests {
    use super::*;

    // The reference's test vector (section 5), and the PBKDF2 password
    // hash of devise-pbkdf2-encryptable's spec (password "password").
    const SECRET: &str = "gloas-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    const SECRET_PBKDF2: &str = "$pbkdf2-sha512$20000$$ozOtvsW1HzNJqjeaNwqcBO3TB51H9F7d8qh3OREHWDDPEVKseRVrW3YE1ef4Q2t58BgR924o0pV.bk452f5.mQ";
    const SECRET_SHA512: &str = "e98c793874c1ed84c87df291506556e4356698b6974ec7034a9defe7ac57ab81c10f5f7ae18a331abf80612166e889f6f1c0f61e817d3635b65cb0e0c26cd923";
    const PASSWORD_PBKDF2: &str = "$pbkdf2-sha512$20000$boHGAw0hEyI$DBA67J7zNZebyzLtLk2X9wRDbmj1LNKVGnZLYyz6PGrIDGIl45fl/BPH0y1TPZnV90A20i.fD9C3G9Bp8jzzOA";

    #[test]
    fn gitlab_application_secrets_verify_in_each_form() {
        assert!(is_gitlab_secret_hash(SECRET_PBKDF2) && is_gitlab_secret_hash(SECRET_SHA512));
        assert!(verify_secret(SECRET, SECRET_PBKDF2));
        assert!(verify_secret(SECRET, SECRET_SHA512));
        assert!(verify_secret(SECRET, &crate::secret::digest(SECRET)));
        let wrong = SECRET.replace("0123", "3210");
        assert!(!verify_secret(&wrong, SECRET_PBKDF2));
        assert!(!verify_secret(&wrong, SECRET_SHA512));
        assert!(!verify_secret(SECRET, "gloas-plain"));
    }

    #[test]
    fn pbkdf2_password_hashes_verify_and_bad_ones_do_not() {
        assert!(verify_pbkdf2_sha512("password", PASSWORD_PBKDF2));
        assert!(!verify_pbkdf2_sha512("Password", PASSWORD_PBKDF2));
        let costly = PASSWORD_PBKDF2.replace("$20000$", "$9000000$");
        assert!(!is_pbkdf2_sha512(&costly) && !verify_pbkdf2_sha512("password", &costly));
        assert!(!is_pbkdf2_sha512("$pbkdf2-sha512$20000$x"));
        assert!(!is_pbkdf2_sha512("$pbkdf2-sha512$x$$abc"));
    }

    #[test]
    fn gitlab_token_digests_salt_with_the_truncated_db_key_base() {
        let key = "0123456789abcdef0123456789abcdef-and-more-that-is-ignored";
        let d = gitlab_token_digest("glpat-example-token", key);
        assert!(is_gitlab_token_digest(&d), "{d}");
        let mut h = Sha256::new();
        h.update(b"glpat-example-token0123456789abcdef0123456789abcdef");
        assert_eq!(
            d,
            base64::engine::general_purpose::STANDARD.encode(h.finalize())
        );
        assert_ne!(d, gitlab_token_digest("glpat-example-token", "another key"));
    }
}
