//! The device authorization grant: the services.

use crate::application::Application;
use crate::audit::{Entity, NewAuditEvent};
use crate::context::Context;
use crate::error::StoreError;
use crate::oauth::{DeviceGrant, DeviceStatus, ErrorCode, IssuedToken, NewDeviceGrant, OAuthError};
use crate::oauth_flows::{require_grant, resolve_scopes, FlowError, GRANT_DEVICE_CODE};
use crate::secret;
use crate::service::{ServiceError, Services};
use crate::user::User;

use super::*;

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
        ctx: &Context,
        raw_code: &str,
        user: &User,
        approve: bool,
        auth_time: i64,
    ) -> Result<bool, ServiceError> {
        let Some((grant, app)) = self.pending_device_request(raw_code).await? else {
            return Ok(false);
        };
        let now = self.now_ms();
        let by_user = Context {
            user_id: Some(user.id),
            ..ctx.clone()
        };
        let (name, message) = if approve {
            (
                "device_authorization_approved",
                "Approved a device's access",
            )
        } else {
            ("device_authorization_denied", "Denied a device's access")
        };
        let event = crate::application::application_event(&by_user, now, name, &app, message)
            .detail("scopes", grant.scopes.joined())
            .detail("device_grant_id", grant.id);
        let event = NewAuditEvent {
            entity: Entity::user(user.id),
            ..event
        };
        let user_id = user.id;
        Ok(self
            .unit(move |tx| {
                Box::pin(async move {
                    let decided = tx
                        .decide_device_grant(grant.id, user_id, approve, now, auth_time)
                        .await?;
                    if decided {
                        tx.record_audit(event).await?;
                    }
                    Ok(decided)
                })
            })
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
            // Spent: a code is exchanged once (it goes with the expired).
            DeviceStatus::Redeemed => {
                Err(FlowError::OAuth(OAuthError::new(ErrorCode::InvalidGrant)))
            }
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
