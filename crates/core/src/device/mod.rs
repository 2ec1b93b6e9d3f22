//! The device authorization grant (RFC 8628), as GitLab offers it: codes
//! live 300 seconds, clients poll every 5.

mod service;

use crate::error::StoreError;
use crate::oauth::{DeviceGrant, NewDeviceGrant, NewOAuthToken, OAuthToken};
use crate::secret;

pub const DEVICE_CODE_LIFETIME_MS: i64 = 300_000;
pub const POLL_INTERVAL_S: i64 = 5;
const USER_CODE_LEN: usize = 8;
const ALPHABET: &[u8; 36] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// What `POST /oauth/authorize_device` answers (the device code once).
#[derive(Debug, Clone)]
pub struct DeviceAuthorization {
    pub device_code: String,
    pub user_code: String,
    pub expires_in: i64,
    pub interval: i64,
}

/// Eight characters of base 36, uppercase, from the OS CSPRNG (rejection
/// sampling keeps every character equally likely).
fn user_code() -> Result<String, secret::RandomError> {
    let mut out = String::with_capacity(USER_CODE_LEN);
    while out.len() < USER_CODE_LEN {
        let bytes = hex::decode(secret::random_hex(16)?).unwrap_or_default();
        for b in bytes {
            if b < 252 && out.len() < USER_CODE_LEN {
                out.push(char::from(ALPHABET[usize::from(b % 36)]));
            }
        }
    }
    Ok(out)
}

/// What a person types: case and separators do not matter.
pub fn normalise_user_code(raw: &str) -> String {
    raw.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// The device authorization grant (RFC 8628). What the storage backends implement (see
/// [`crate::store::Store`]).
#[async_trait::async_trait]
pub trait DeviceGrantStore: Send + Sync {
    async fn insert_device_grant(&self, grant: NewDeviceGrant) -> Result<DeviceGrant, StoreError>;

    async fn find_device_grant_by_user_code(
        &self,
        user_code: &str,
    ) -> Result<Option<DeviceGrant>, StoreError>;

    async fn find_device_grant(
        &self,
        device_code_digest: &str,
    ) -> Result<Option<DeviceGrant>, StoreError>;

    /// Approve or deny a pending, unexpired request. `false` if it was not.
    /// `auth_time` is when the approving user signed in (ms).
    async fn decide_device_grant(
        &self,
        id: i64,
        user_id: i64,
        approve: bool,
        now: i64,
        auth_time: i64,
    ) -> Result<bool, StoreError>;

    /// Record a poll; returns the previous poll's time, atomically.
    async fn poll_device_grant(&self, id: i64, now: i64) -> Result<Option<i64>, StoreError>;

    /// Consume an approved request and insert its token, in one
    /// transaction. `None` (nothing written) if it was not approved or is gone.
    async fn redeem_device_grant(
        &self,
        id: i64,
        token: NewOAuthToken,
    ) -> Result<Option<OAuthToken>, StoreError>;

    async fn delete_device_grant(&self, id: i64) -> Result<(), StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_codes() {
        let c = user_code().unwrap();
        assert_eq!(c.len(), 8);
        assert!(c.bytes().all(|b| ALPHABET.contains(&b)));
        assert_eq!(normalise_user_code("ab12-cd34"), "AB12CD34");
    }
}
