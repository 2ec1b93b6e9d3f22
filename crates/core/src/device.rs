//! The device authorization grant (RFC 8628), as GitLab offers it: codes
//! live 300 seconds, clients poll every 5.

use crate::application::Application;
use crate::oauth::{
    DeviceGrant, DeviceStatus, ErrorCode, IssuedToken, NewDeviceGrant, NewOAuthToken, OAuthError,
    OAuthToken,
};
use crate::oauth_flows::{require_grant, resolve_scopes, FlowError, GRANT_DEVICE_CODE};
use crate::secret;
use crate::service::{ServiceError, Services};
use crate::store::StoreError;
use crate::user::User;

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

impl Services {
    /// Start a device authorization for `client`.
    pub async fn authorize_device(
        &self,
        client: &Application,
        scope: Option<&str>,
    ) -> Result<DeviceAuthorization, FlowError> {
        require_grant(client, GRANT_DEVICE_CODE)?;
        let scopes =
            resolve_scopes(client, scope, &self.config().scopes).map_err(FlowError::OAuth)?;
        let device_code = secret::random_hex(32)?;
        let now = self.now_ms();
        // A user code collision is unlikely (36^8); try a few times.
        for _ in 0..5 {
            let code = user_code()?;
            let new = NewDeviceGrant {
                application_id: client.id,
                device_code_digest: secret::digest(&device_code),
                user_code: code.clone(),
                scopes: scopes.clone(),
                created_at: now,
                expires_at: now + DEVICE_CODE_LIFETIME_MS,
            };
            match self.store.insert_device_grant(new).await {
                Ok(_) => {
                    return Ok(DeviceAuthorization {
                        device_code,
                        user_code: code,
                        expires_in: DEVICE_CODE_LIFETIME_MS / 1000,
                        interval: POLL_INTERVAL_S,
                    })
                }
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(FlowError::Internal(ServiceError::internal(
            "could not allocate a user code",
        )))
    }

    /// The pending, unexpired request a person typed the code of, with its
    /// application.
    pub async fn pending_device_request(
        &self,
        raw_code: &str,
    ) -> Result<Option<(DeviceGrant, Application)>, ServiceError> {
        let code = normalise_user_code(raw_code);
        let Some(grant) = self.store.find_device_grant_by_user_code(&code).await? else {
            return Ok(None);
        };
        if grant.status != DeviceStatus::Pending || self.now_ms() >= grant.expires_at {
            return Ok(None);
        }
        let app = self
            .store
            .find_application(grant.application_id, crate::application::Ownership::Any)
            .await?;
        Ok(app.map(|a| (grant, a)))
    }

    /// The signed-in `user` (who signed in at `auth_time`, ms) approves or
    /// denies the request. `false` when it is no longer pending.
    pub async fn decide_device_request(
        &self,
        raw_code: &str,
        user: &User,
        approve: bool,
        auth_time: i64,
    ) -> Result<bool, ServiceError> {
        let Some((grant, _)) = self.pending_device_request(raw_code).await? else {
            return Ok(false);
        };
        Ok(self
            .store
            .decide_device_grant(grant.id, user.id, approve, self.now_ms(), auth_time)
            .await?)
    }

    /// `grant_type=urn:ietf:params:oauth:grant-type:device_code`.
    pub async fn exchange_device_code(
        &self,
        client: &Application,
        device_code: &str,
    ) -> Result<IssuedToken, FlowError> {
        require_grant(client, GRANT_DEVICE_CODE)?;
        let Some(grant) = self
            .store
            .find_device_grant(&secret::digest(device_code))
            .await?
        else {
            return Err(FlowError::OAuth(OAuthError::new(ErrorCode::InvalidGrant)));
        };
        if grant.application_id != client.id {
            return Err(FlowError::OAuth(OAuthError::new(ErrorCode::InvalidGrant)));
        }
        let now = self.now_ms();
        if now >= grant.expires_at {
            self.store.delete_device_grant(grant.id).await?;
            return Err(FlowError::OAuth(OAuthError::new(ErrorCode::ExpiredToken)));
        }
        match grant.status {
            DeviceStatus::Denied => {
                self.store.delete_device_grant(grant.id).await?;
                Err(FlowError::OAuth(OAuthError::new(ErrorCode::AccessDenied)))
            }
            DeviceStatus::Pending => {
                let previous = self.store.poll_device_grant(grant.id, now).await?;
                if previous.is_some_and(|p| now - p < POLL_INTERVAL_S * 1000) {
                    return Err(FlowError::OAuth(OAuthError::new(ErrorCode::SlowDown)));
                }
                Err(FlowError::OAuth(OAuthError::new(
                    ErrorCode::AuthorizationPending,
                )))
            }
            DeviceStatus::Approved => {
                let user_id = grant.user_id.ok_or_else(|| {
                    FlowError::Internal(ServiceError::internal("approved without a user"))
                })?;
                // Approved before its user was blocked: refused, and gone.
                if !self.user_may_act(user_id).await? {
                    self.store.delete_device_grant(grant.id).await?;
                    return Err(FlowError::OAuth(OAuthError::new(ErrorCode::AccessDenied)));
                }
                let (mut new, mut issued) =
                    self.new_oauth_token(client, Some(user_id), &grant.scopes, true, None, None)?;
                // When the approving user signed in, not when the device polled.
                let auth_time = grant.auth_time.unwrap_or(now);
                new.auth_time = Some(auth_time);
                match self.store.redeem_device_grant(grant.id, new).await? {
                    Some(_) => {
                        if grant.scopes.contains("openid") {
                            issued.id_token = Some(
                                self.id_token(client, user_id, &grant.scopes, auth_time, None)
                                    .await?,
                            );
                        }
                        Ok(issued)
                    }
                    None => Err(FlowError::OAuth(OAuthError::new(ErrorCode::InvalidGrant))),
                }
            }
        }
    }
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
