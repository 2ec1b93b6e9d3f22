//! Applications' secrets: renewal with or without a grace period, the
//! list, deleting one, revoking everything, and client authentication
//! against every live secret.

use crate::audit::NewAuditEvent;
use crate::context::Context;
use crate::secret;
use crate::service::{Plaintext, ServiceError, Services};
use crate::usage::Credential;

use super::*;

/// How a renewal treats the secrets before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Renewal {
    /// Seconds the previous live secrets keep working (`None`: they die
    /// at once, as GitLab's renewal).
    pub grace_seconds: Option<i64>,
    /// Seconds the new secret works (`None`: until replaced).
    pub lifetime_seconds: Option<i64>,
}

/// `seconds` after `now` (ms), no later than [`LATEST_INSTANT_MS`].
fn after(now: i64, seconds: i64) -> i64 {
    now.saturating_add(seconds.saturating_mul(1000))
        .min(LATEST_INSTANT_MS)
}

/// The secret of `secrets` that `presented` is, if one is and is live.
/// Every live digest is compared, each in constant time (in latchkey's
/// form or, imported, in GitLab's).
fn matching(secrets: &[ClientSecret], presented: &str, now: i64) -> Option<i64> {
    let mut found = None;
    for s in secrets.iter().filter(|s| s.is_live(now)) {
        if crate::imported::verify_secret(presented, &s.digest) && found.is_none() {
            found = Some(s.id);
        }
    }
    found
}

impl Services {
    fn new_secret(
        &self,
        lifetime_seconds: Option<i64>,
    ) -> Result<(Plaintext, NewSecret), ServiceError> {
        let value = self.new_application_secret()?;
        let now = self.now_ms();
        let new = NewSecret {
            digest: secret::digest(value.expose()),
            hint: secret_hint(value.expose()),
            created_at: now,
            expires_at: lifetime_seconds.map(|s| after(now, s)),
        };
        Ok((value, new))
    }

    /// A new secret. As GitLab: every previous secret dies at once; with
    /// a grace period, each live one expires by then instead. The
    /// application's tokens are not touched.
    pub async fn renew_application_secret(
        &self,
        ctx: &Context,
        id: i64,
        scope: Ownership,
        renewal: Renewal,
    ) -> Result<(Application, Plaintext, SecretInfo), ServiceError> {
        let (value, new) = self.new_secret(renewal.lifetime_seconds)?;
        let (ctx, now) = (ctx.clone(), self.now_ms());
        let retire = match renewal.grace_seconds {
            None => Retire::Now,
            Some(s) => Retire::At(after(now, s)),
        };
        let (app, info) = self
            .unit(move |tx| {
                Box::pin(async move {
                    let renewed = tx.renew_application_secret(id, scope, new, retire).await?;
                    if let Some((app, info)) = &renewed {
                        let mut event = application_event(
                            &ctx,
                            now,
                            "oauth_application_secret_renewed",
                            app,
                            "OAuth application secret renewed",
                        )
                        .detail("secret_id", info.id);
                        if let Retire::At(at) = retire {
                            event = event.detail("previous_secrets_expire_at", at);
                        }
                        if let Some(at) = info.expires_at {
                            event = event.detail("expires_at", at);
                        }
                        tx.record_audit(event).await?;
                    }
                    Ok(renewed)
                })
            })
            .await
            .map_err(|e| match e {
                crate::error::StoreError::Conflict(_) => ServiceError::Invalid(format!(
                    "an application keeps at most {MAX_LIVE_SECRETS} live secrets: delete one, \
                     or renew without expires_in"
                )),
                other => other.into(),
            })?
            .ok_or(ServiceError::NotFound)?;
        Ok((app, value, info))
    }

    /// An application's live secrets (never a value).
    pub async fn application_secrets(&self, id: i64) -> Result<Vec<SecretInfo>, ServiceError> {
        Ok(self.store.application_secrets(id, self.now_ms()).await?)
    }

    /// Delete one secret at once; never the last live one.
    pub async fn delete_application_secret(
        &self,
        ctx: &Context,
        app: &Application,
        secret_id: i64,
    ) -> Result<SecretDeletion, ServiceError> {
        let (ctx, now, app) = (ctx.clone(), self.now_ms(), app.clone());
        Ok(self
            .unit(move |tx| {
                Box::pin(async move {
                    let done = tx.delete_application_secret(app.id, secret_id, now).await?;
                    if done == SecretDeletion::Deleted {
                        let event: NewAuditEvent = application_event(
                            &ctx,
                            now,
                            "oauth_application_secret_deleted",
                            &app,
                            "OAuth application secret deleted",
                        )
                        .detail("secret_id", secret_id);
                        tx.record_audit(event).await?;
                    }
                    Ok(done)
                })
            })
            .await?)
    }

    /// The leak response: every secret, code, device grant and token of
    /// the application dies in one unit, and a fresh secret is returned.
    pub async fn revoke_all_of_application(
        &self,
        ctx: &Context,
        id: i64,
        scope: Ownership,
    ) -> Result<(Application, Plaintext, SecretInfo), ServiceError> {
        let (value, new) = self.new_secret(None)?;
        let (ctx, now) = (ctx.clone(), self.now_ms());
        let (app, info) = self
            .changing_auth(self.unit(move |tx| {
                Box::pin(async move {
                    let done = tx.revoke_all_of_application(id, scope, new, now).await?;
                    if let Some((app, info)) = &done {
                        let event = application_event(
                            &ctx,
                            now,
                            "oauth_application_revoked_all",
                            app,
                            "OAuth application secrets, grants and tokens revoked",
                        )
                        .detail("secret_id", info.id);
                        tx.record_audit(event).await?;
                    }
                    Ok(done)
                })
            }))
            .await?
            .ok_or(ServiceError::NotFound)?;
        Ok((app, value, info))
    }

    /// The application whose client_id and secret these are, if the
    /// secret is one of its live ones (each compared in constant time);
    /// its use is noted.
    pub async fn verify_client_secret(
        &self,
        application_id: &str,
        presented_secret: &str,
    ) -> Result<Option<Application>, ServiceError> {
        let Some((app, secrets)) = self.store.find_application_by_uid(application_id).await? else {
            return Ok(None);
        };
        let now = self.now_ms();
        // GitLab's PBKDF2 form costs milliseconds: off the async workers.
        let slow = secrets
            .iter()
            .any(|s| crate::imported::is_pbkdf2_sha512(&s.digest));
        let found = if slow {
            let (list, presented) = (secrets.clone(), presented_secret.to_owned());
            self.on_hashing_threads(move || matching(&list, &presented, now))
                .await?
        } else {
            matching(&secrets, presented_secret, now)
        };
        let Some(id) = found else {
            return Ok(None);
        };
        // A secret in GitLab's form becomes latchkey's at its first use.
        if let Some(s) = secrets
            .iter()
            .find(|s| s.id == id && !crate::imported::is_sha256_hex(&s.digest))
        {
            let new = secret::digest(presented_secret);
            if let Err(e) = self.store.rehash_secret(id, &s.digest, &new).await {
                tracing::warn!(error = %crate::error::Chain(&e), "cannot rewrite an imported application secret");
            }
        }
        self.usage.note(Credential::ApplicationSecret, id, now);
        Ok(Some(Application {
            client_secret_id: Some(id),
            ..app
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_live_secrets_match() {
        let s = |id: i64, value: &str, expires_at: Option<i64>| ClientSecret {
            id,
            digest: secret::digest(value),
            expires_at,
        };
        let secrets = [s(1, "old", Some(100)), s(2, "new", None)];
        assert_eq!(matching(&secrets, "new", 50), Some(2));
        assert_eq!(matching(&secrets, "old", 50), Some(1));
        assert_eq!(matching(&secrets, "old", 100), None, "expired at 100");
        assert_eq!(matching(&secrets, "nope", 50), None);
        assert_eq!(secret_hint("gloas-abcdef"), "cdef");
    }
}
