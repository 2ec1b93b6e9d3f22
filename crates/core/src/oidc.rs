//! OpenID Connect: RS256 signing keys (kept in the database so every
//! instance signs with the same key and publishes all live ones), ID
//! tokens, the claims GitLab puts in them, and the JWKS document.

use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rsa::pkcs8::{EncodePrivateKey, LineEnding};
use rsa::traits::PublicKeyParts;
use rsa::RsaPrivateKey;
use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::error::StoreError;
use crate::group::{level, GroupAccess};
use crate::scopes::Scopes;
use crate::user::User;

/// ID tokens live two minutes (doorkeeper-openid_connect's default).
pub const ID_TOKEN_LIFETIME_S: i64 = 120;
/// A retired key stays published this long, so tokens it signed verify.
pub const RETIRED_KEY_PUBLISHED_MS: i64 = 24 * 3600 * 1000;
const RSA_BITS: usize = 2048;

/// A signing key as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningKey {
    pub id: i64,
    pub kid: String,
    pub algorithm: String,
    pub private_pem: String,
    /// The modulus and exponent, base64url without padding (JWK `n`, `e`).
    pub public_n: String,
    pub public_e: String,
    pub created_at: i64,
    pub retired_at: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct NewSigningKey {
    pub kid: String,
    pub algorithm: String,
    pub private_pem: String,
    pub public_n: String,
    pub public_e: String,
    pub created_at: i64,
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A fresh 2048-bit RSA key from the OS's random source. Slow (tens to
/// hundreds of milliseconds: the prime search varies): call it off the
/// async workers.
pub fn generate_signing_key(created_at: i64) -> Result<NewSigningKey, String> {
    signing_key_from(&generate_rsa_key()?, created_at)
}

fn signing_key_from(key: &RsaPrivateKey, created_at: i64) -> Result<NewSigningKey, String> {
    let pem = key
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| format!("cannot encode the RSA key: {e}"))?;
    let kid = crate::secret::random_hex(16).map_err(|e| e.to_string())?;
    Ok(NewSigningKey {
        kid,
        algorithm: "RS256".to_owned(),
        private_pem: pem.to_string(),
        public_n: b64(&key.n().to_bytes_be()),
        public_e: b64(&key.e().to_bytes_be()),
        created_at,
    })
}

/// The key itself. A first start is not ready before its key exists, and
/// the rsa crate's generation took 133 ms at the median on the benchmark's
/// machine; graviola's (s2n-bignum's arithmetic, primes from `getrandom`)
/// 31 ms. Graviola runs on x86_64 and aarch64 CPUs with the features it
/// needs (most since about 2014); elsewhere the rsa crate makes the key.
/// Either way the rsa crate reads it back (checking it) for the PEM and
/// the public parts.
fn generate_rsa_key() -> Result<RsaPrivateKey, String> {
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    if graviola_runs_here() {
        return generate_rsa_key_graviola();
    }
    generate_rsa_key_portable()
}

fn generate_rsa_key_portable() -> Result<RsaPrivateKey, String> {
    RsaPrivateKey::new(&mut rand::rngs::OsRng, RSA_BITS)
        .map_err(|e| format!("RSA key generation failed: {e}"))
}

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
fn generate_rsa_key_graviola() -> Result<RsaPrivateKey, String> {
    use graviola::signing::rsa::{KeySize, SigningKey};
    use rsa::pkcs8::DecodePrivateKey as _;
    let key = SigningKey::generate(KeySize::Rsa2048)
        .map_err(|e| format!("RSA key generation failed: {e:?}"))?;
    let mut buf = zeroize::Zeroizing::new([0u8; 4096]);
    let der = key
        .to_pkcs8_der(&mut buf[..])
        .map_err(|e| format!("cannot encode the RSA key: {e:?}"))?;
    let key = RsaPrivateKey::from_pkcs8_der(der)
        .map_err(|e| format!("cannot read the generated RSA key: {e}"))?;
    if key.size() * 8 != RSA_BITS {
        return Err(format!(
            "RSA key generation made a {}-bit key",
            key.size() * 8
        ));
    }
    Ok(key)
}

/// The CPU features graviola requires (its README); it stops the thread
/// that calls it without them.
#[cfg(target_arch = "x86_64")]
fn graviola_runs_here() -> bool {
    std::arch::is_x86_feature_detected!("aes")
        && std::arch::is_x86_feature_detected!("pclmulqdq")
        && std::arch::is_x86_feature_detected!("ssse3")
        && std::arch::is_x86_feature_detected!("avx")
        && std::arch::is_x86_feature_detected!("avx2")
        && std::arch::is_x86_feature_detected!("adx")
        && std::arch::is_x86_feature_detected!("bmi1")
        && std::arch::is_x86_feature_detected!("bmi2")
}

#[cfg(target_arch = "aarch64")]
fn graviola_runs_here() -> bool {
    std::arch::is_aarch64_feature_detected!("aes")
        && std::arch::is_aarch64_feature_detected!("sha2")
        && std::arch::is_aarch64_feature_detected!("pmull")
        && std::arch::is_aarch64_feature_detected!("neon")
}

/// The JWKS document for `keys`.
pub fn jwks(keys: &[SigningKey]) -> Value {
    let keys: Vec<Value> = keys
        .iter()
        .map(|k| json!({"kty": "RSA", "kid": k.kid, "use": "sig", "alg": k.algorithm, "n": k.public_n, "e": k.public_e}))
        .collect();
    json!({ "keys": keys })
}

/// The claims about a user that GitLab's OpenID Connect provider gives.
/// `email` only with the `email` scope (there are no public emails here).
pub fn user_claims(user: &User, scopes: &Scopes, issuer: &str) -> Map<String, Value> {
    let profile = format!("{}/{}", issuer.trim_end_matches('/'), user.username);
    let mut m = Map::new();
    m.insert("sub".into(), json!(user.id.to_string()));
    m.insert("name".into(), json!(user.name));
    m.insert("nickname".into(), json!(user.username));
    m.insert("preferred_username".into(), json!(user.username));
    if scopes.contains("email") {
        m.insert("email".into(), json!(user.email));
        m.insert("email_verified".into(), json!(true));
    }
    m.insert("website".into(), json!(profile));
    m.insert("profile".into(), json!(profile));
    m
}

/// GitLab's group claims, in UserInfo: `groups` (the full paths of the
/// groups the user is a member of, and of every group below them), and
/// per role the groups the user is a direct member of at exactly that
/// level (left out when there are none).
pub fn userinfo_group_claims(groups: &[GroupAccess], m: &mut Map<String, Value>) {
    let paths: Vec<&str> = groups.iter().map(|g| g.full_path.as_str()).collect();
    m.insert("groups".into(), json!(paths));
    for (level, claim) in [
        (level::OWNER, "https://gitlab.org/claims/groups/owner"),
        (
            level::MAINTAINER,
            "https://gitlab.org/claims/groups/maintainer",
        ),
        (
            level::DEVELOPER,
            "https://gitlab.org/claims/groups/developer",
        ),
    ] {
        let direct: Vec<&str> = groups
            .iter()
            .filter(|g| g.direct_level == Some(level))
            .map(|g| g.full_path.as_str())
            .collect();
        if !direct.is_empty() {
            m.insert(claim.into(), json!(direct));
        }
    }
}

/// GitLab's group claim in ID tokens: `groups_direct`, the full paths of
/// the groups the user is a direct member of (and nothing more, to keep
/// ID tokens small).
pub fn id_token_group_claims(groups: &[GroupAccess], m: &mut Map<String, Value>) {
    let direct: Vec<&str> = groups
        .iter()
        .filter(|g| g.direct_level.is_some())
        .map(|g| g.full_path.as_str())
        .collect();
    m.insert("groups_direct".into(), json!(direct));
}

/// What goes into an ID token besides the user claims.
#[derive(Debug, Clone, Serialize)]
pub struct IdTokenBase<'a> {
    pub iss: &'a str,
    pub aud: &'a str,
    pub exp: i64,
    pub iat: i64,
    pub auth_time: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nonce: Option<&'a str>,
}

/// Sign an ID token with `key`.
pub fn sign_id_token(
    key: &SigningKey,
    base: &IdTokenBase<'_>,
    claims: Map<String, Value>,
) -> Result<String, String> {
    let mut body = match serde_json::to_value(base) {
        Ok(Value::Object(m)) => m,
        _ => return Err("cannot serialise ID token claims".to_owned()),
    };
    body.extend(claims);
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(key.kid.clone());
    let encoding = EncodingKey::from_rsa_pem(key.private_pem.as_bytes())
        .map_err(|e| format!("bad signing key {}: {e}", key.kid))?;
    jsonwebtoken::encode(&header, &Value::Object(body), &encoding)
        .map_err(|e| format!("cannot sign the ID token: {e}"))
}

/// OpenID Connect signing keys. What the storage backends implement (see
/// [`crate::store::Store`]).
#[async_trait::async_trait]
pub trait SigningKeyStore: Send + Sync {
    /// Store a key; with `only_if_none_active`, only when no key is active.
    /// `false` if nothing was stored.
    async fn insert_signing_key(
        &self,
        key: NewSigningKey,
        only_if_none_active: bool,
    ) -> Result<bool, StoreError>;

    /// Retire every active key but `except_kid`.
    async fn retire_signing_keys(&self, except_kid: &str, now: i64) -> Result<u64, StoreError>;

    /// Active keys and keys retired after `retired_after`, newest first.
    async fn signing_keys(&self, retired_after: i64) -> Result<Vec<SigningKey>, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{DecodingKey, Validation};

    #[test]
    fn signs_tokens_that_verify_against_the_jwks() {
        signs_and_verifies(generate_signing_key(0).unwrap());
    }

    /// Both generators, whichever this machine uses.
    #[test]
    fn either_generator_makes_a_2048_bit_key_that_signs() {
        let mut keys = vec![generate_rsa_key_portable().unwrap()];
        #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
        if graviola_runs_here() {
            keys.push(generate_rsa_key_graviola().unwrap());
        }
        for key in keys {
            assert_eq!(key.size() * 8, 2048);
            assert_eq!(key.e().to_bytes_be(), [1, 0, 1]);
            key.validate().unwrap();
            signs_and_verifies(signing_key_from(&key, 0).unwrap());
        }
    }

    fn signs_and_verifies(new: NewSigningKey) {
        let key = SigningKey {
            id: 1,
            kid: new.kid.clone(),
            algorithm: new.algorithm.clone(),
            private_pem: new.private_pem.clone(),
            public_n: new.public_n.clone(),
            public_e: new.public_e.clone(),
            created_at: 0,
            retired_at: None,
        };
        let user = User {
            id: 7,
            username: "alice".into(),
            email: "alice@example.com".into(),
            name: "Alice".into(),
            admin: false,
            state: crate::user::UserState::Active,
            created_at: 0,
            external: false,
            updated_at: 0,
            profile: Default::default(),
            avatar: None,
        };
        let now = 1_900_000_000;
        let base = IdTokenBase {
            iss: "https://id.example",
            aud: "client",
            exp: now + 120,
            iat: now,
            auth_time: now,
            nonce: Some("n-1"),
        };
        let scopes = Scopes::from_stored("openid email");
        let token = sign_id_token(
            &key,
            &base,
            user_claims(&user, &scopes, "https://id.example"),
        )
        .unwrap();
        let jwk = jwks(std::slice::from_ref(&key));
        let n = jwk["keys"][0]["n"].as_str().unwrap();
        let e = jwk["keys"][0]["e"].as_str().unwrap();
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_audience(&["client"]);
        validation.set_issuer(&["https://id.example"]);
        validation.validate_exp = false;
        let decoded = jsonwebtoken::decode::<Value>(
            &token,
            &DecodingKey::from_rsa_components(n, e).unwrap(),
            &validation,
        )
        .unwrap();
        assert_eq!(decoded.header.kid.as_deref(), Some(key.kid.as_str()));
        assert_eq!(decoded.claims["sub"], "7");
        assert_eq!(decoded.claims["nonce"], "n-1");
        assert_eq!(decoded.claims["email"], "alice@example.com");
        assert_eq!(decoded.claims["preferred_username"], "alice");
        assert!(decoded.claims.get("groups").is_none(), "UserInfo only");
        let without_email =
            user_claims(&user, &Scopes::from_stored("openid"), "https://id.example");
        assert!(!without_email.contains_key("email"));
    }
}
