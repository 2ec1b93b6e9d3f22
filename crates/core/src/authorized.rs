//! The applications a user has authorized (GitLab's "Authorized
//! applications" in User Settings): listing them, and withdrawing one, which
//! revokes its tokens at once.

use crate::context::Context;
use crate::oauth::Authorization;
use crate::service::{ServiceError, Services};
use crate::user::user_event;

impl Services {
    /// The applications holding live OAuth tokens of `user_id`, the most
    /// recently granted first.
    pub async fn authorized_applications(
        &self,
        user_id: i64,
    ) -> Result<Vec<Authorization>, ServiceError> {
        let tokens = self.store.authorized_tokens(user_id, self.now_ms()).await?;
        let mut out: Vec<Authorization> = Vec::new();
        // The rows come by application, then by age.
        for t in tokens {
            match out.last_mut() {
                Some(a) if a.application_id == t.application_id => {
                    for s in t.scopes.as_slice() {
                        if !a.scopes.contains(s) {
                            a.scopes.push(s.clone());
                        }
                    }
                    a.last_granted_at = a.last_granted_at.max(t.created_at);
                }
                _ => out.push(Authorization {
                    application_id: t.application_id,
                    client_id: t.client_id,
                    application_name: t.application_name,
                    scopes: t.scopes.as_slice().to_vec(),
                    first_granted_at: t.created_at,
                    last_granted_at: t.created_at,
                }),
            }
        }
        out.sort_by_key(|a| std::cmp::Reverse(a.last_granted_at));
        Ok(out)
    }

    /// Withdraw what `user_id` granted the application `application_id`:
    /// its tokens stop working at once, its pending codes and device grants
    /// go. `NotFound` when there was nothing to withdraw. Recorded as
    /// `user_revoked_oauth_authorization`.
    pub async fn revoke_authorization(
        &self,
        ctx: &Context,
        user_id: i64,
        application_id: i64,
    ) -> Result<(), ServiceError> {
        let (ctx, now) = (ctx.clone(), self.now_ms());
        let revoked = self
            .changing_auth(self.unit(move |tx| {
                Box::pin(async move {
                    let Some(user) = tx.find_user(user_id).await? else {
                        return Ok(0);
                    };
                    let app = tx
                        .find_application(application_id, crate::application::Ownership::Any)
                        .await?;
                    let n = tx
                        .revoke_user_authorization(application_id, user_id, now)
                        .await?;
                    if n > 0 {
                        let mut event = user_event(
                            &ctx,
                            now,
                            "user_revoked_oauth_authorization",
                            &user,
                            "Revoked an authorized OAuth application",
                        )
                        .detail("application_id", application_id);
                        if let Some(app) = &app {
                            event = event
                                .detail("client_id", app.application_id.as_str())
                                .detail("application_name", app.name.as_str());
                        }
                        tx.record_audit(event).await?;
                    }
                    Ok(n)
                })
            }))
            .await?;
        if revoked == 0 {
            return Err(ServiceError::NotFound);
        }
        Ok(())
    }
}
