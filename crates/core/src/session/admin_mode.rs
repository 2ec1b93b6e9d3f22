//! Admin Mode, as GitLab has it: with the server's `admin_mode` setting on,
//! an administrator's browser enters its password again before the Admin
//! Area, and stays in Admin Mode for six hours or until the session ends
//! (sign-out, blocking, a new password: the mark goes with the session).
//! The API's side of the setting (the `admin_mode` scope) is in `access`.

use crate::audit::{Entity, NewAuditEvent};
use crate::context::Context;
use crate::secret;
use crate::service::{ServiceError, Services};
use crate::user::User;

use super::service::SignInError;

/// How long Admin Mode lasts (GitLab's six hours).
pub const ADMIN_MODE_MS: i64 = 6 * 60 * 60 * 1000;

impl Services {
    /// Does the Admin Area let this session in without re-authenticating?
    /// Always while the server's `admin_mode` is off.
    pub async fn in_admin_mode(&self, cookie: &str) -> Result<bool, ServiceError> {
        if !self.config().admin_mode {
            return Ok(true);
        }
        let until = self
            .store
            .admin_mode_until(&secret::digest(cookie), self.now_ms())
            .await?;
        Ok(until.is_some())
    }

    /// Put the session `cookie` of `user` in Admin Mode once `password` is
    /// theirs. Checked as a sign-in is: wrong passwords count towards the
    /// account's lockout and the address's throttling. Only active
    /// administrators enter it. Audit event `user_enabled_admin_mode`.
    pub async fn enter_admin_mode(
        &self,
        ctx: &Context,
        user: &User,
        cookie: &str,
        password: &str,
    ) -> Result<(), SignInError> {
        let checked = self.sign_in(ctx, &user.username, password).await?;
        if checked.id != user.id || !checked.admin {
            return Err(SignInError::Invalid);
        }
        let now = self.now_ms();
        let digest = secret::digest(cookie);
        let event = NewAuditEvent::new(
            ctx,
            now,
            "user_enabled_admin_mode",
            Entity::user(user.id),
            "Enabled Admin Mode",
        );
        self.unit(move |tx| {
            Box::pin(async move {
                if tx
                    .set_admin_mode(&digest, Some(now + ADMIN_MODE_MS))
                    .await?
                {
                    tx.record_audit(event).await?;
                }
                Ok(())
            })
        })
        .await
        .map_err(|e| SignInError::Internal(e.into()))
    }

    /// Take the session `cookie` out of Admin Mode (GitLab's "Leave Admin
    /// Mode"). Audit event `user_disabled_admin_mode` when it was in it.
    pub async fn leave_admin_mode(&self, ctx: &Context, cookie: &str) -> Result<(), ServiceError> {
        let digest = secret::digest(cookie);
        let Some(user_id) = ctx.user_id else {
            return Ok(());
        };
        let event = NewAuditEvent::new(
            ctx,
            self.now_ms(),
            "user_disabled_admin_mode",
            Entity::user(user_id),
            "Left Admin Mode",
        );
        self.unit(move |tx| {
            Box::pin(async move {
                if tx.set_admin_mode(&digest, None).await? {
                    tx.record_audit(event).await?;
                }
                Ok(())
            })
        })
        .await?;
        Ok(())
    }
}
