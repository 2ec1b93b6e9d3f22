//! Personal access tokens: the services.

use crate::application::{self, ValidationErrors};
use crate::error::StoreError;
use crate::pagination::PageRequest;
use crate::scopes::Scopes;
use crate::secret;
use crate::service::{Plaintext, ServiceError, Services};
use crate::token;
use time::Date;

use super::*;
use crate::audit::{target, Entity, NewAuditEvent};
use crate::context::Context;

/// An event about `token`: under its user, the token as its target (its
/// name and scopes; never its value).
pub(crate) fn token_event(
    ctx: &Context,
    now: i64,
    event: &'static str,
    token: &PersonalAccessToken,
    message: &str,
) -> NewAuditEvent {
    NewAuditEvent::new(ctx, now, event, Entity::user(token.user_id), message)
        .target(target::PERSONAL_ACCESS_TOKEN, Some(token.id), &token.name)
        .detail("scopes", token.scopes.joined())
        .detail(
            "expires_at",
            token
                .expires_at
                .map_or(serde_json::Value::Null, |d| d.to_string().into()),
        )
}

// --- the service -------------------------------------------------------

impl Services {
    /// Who does this token belong to, and may it be used now?
    pub async fn authenticate_token(
        &self,
        presented: &str,
    ) -> Result<Result<TokenWithOwner, TokenRejection>, StoreError> {
        let digest = secret::digest(presented);
        let cached = if self.cache_still_holds().await {
            self.auth_cache.get_personal(&digest, self.now_ms())
        } else {
            None
        };
        let found = match cached {
            Some(found) => found,
            None => {
                let ticket = self.auth_cache.ticket();
                let found = match self.store.find_token_by_digest(&digest).await? {
                    Some(found) => found,
                    None => match self.imported_token(presented, &digest).await? {
                        Some(found) => found,
                        None => return Ok(Err(TokenRejection::Unknown)),
                    },
                };
                if !found.token.revoked {
                    self.auth_cache
                        .put_personal(ticket, &digest, &found, self.now_ms());
                }
                found
            }
        };
        if found.token.revoked {
            return Ok(Err(TokenRejection::Revoked));
        }
        if found.token.is_expired(self.today()) {
            return Ok(Err(TokenRejection::Expired));
        }
        Ok(Ok(found))
    }

    /// A token imported from GitLab, still stored as GitLab's digest (only
    /// with GitLab's `db_key_base` configured): found, its digest becomes
    /// latchkey's (`digest`), so each imported token is looked up this way
    /// once.
    async fn imported_token(
        &self,
        presented: &str,
        digest: &str,
    ) -> Result<Option<TokenWithOwner>, StoreError> {
        let Some(key) = &self.config.gitlab_db_key_base else {
            return Ok(None);
        };
        use secrecy::ExposeSecret;
        let theirs = crate::imported::gitlab_token_digest(presented, key.expose_secret());
        let Some(found) = self.store.find_token_by_digest(&theirs).await? else {
            return Ok(None);
        };
        if let Err(e) = self
            .store
            .rehash_token(found.token.id, &theirs, digest)
            .await
        {
            tracing::warn!(error = %crate::error::Chain(&e), "cannot rewrite an imported token's digest");
        }
        Ok(Some(found))
    }

    /// The latest expiry date a token may have today.
    pub fn max_token_expiry(&self) -> Date {
        self.today() + time::Duration::days(self.config.max_token_lifetime_days)
    }

    pub(crate) fn new_token(
        &self,
        user_id: i64,
        name: &str,
        scopes: &Scopes,
        expires_at: Option<Date>,
        value: Option<&str>,
    ) -> Result<(NewToken, Plaintext), ServiceError> {
        if name.trim().is_empty() || name.chars().count() > 255 {
            return Err(ServiceError::Invalid(
                "token name must be 1 to 255 characters".to_owned(),
            ));
        }
        if let Some(d) = expires_at {
            if d < self.today() {
                return Err(ServiceError::Invalid(
                    "expires_at is in the past".to_owned(),
                ));
            }
            let max = self.max_token_expiry();
            if d > max {
                let mut errors = ValidationErrors::default();
                errors.add("expires_at", format!("must be before {max}"));
                return Err(ServiceError::Validation(errors));
            }
        }
        let plaintext = match value {
            Some(v) => {
                token::check_token_value(v).map_err(ServiceError::Invalid)?;
                v.to_owned()
            }
            None => format!("{PAT_PREFIX}{}", secret::random_hex(32)?),
        };
        Ok((
            NewToken {
                user_id,
                name: name.to_owned(),
                digest: secret::digest(&plaintext),
                scopes: scopes.clone(),
                expires_at,
                created_at: self.now_ms(),
            },
            Plaintext::new(plaintext),
        ))
    }

    /// Scopes for a new token, checked against the server's set.
    pub fn token_scopes(&self, raw: &str) -> Result<Scopes, ServiceError> {
        Scopes::checked(raw, &self.config.scopes).map_err(|e| {
            let mut errors = ValidationErrors::default();
            errors.add("scopes", application::scope_error_message(&e));
            ServiceError::Validation(errors)
        })
    }

    /// A personal access token for `user_id`; the plaintext is returned once.
    /// `expires_at` may be at most [`Config::max_token_lifetime_days`] away.
    pub async fn create_token(
        &self,
        ctx: &Context,
        user_id: i64,
        name: &str,
        scopes: &str,
        expires_at: Option<Date>,
    ) -> Result<(PersonalAccessToken, Plaintext), ServiceError> {
        let scopes = self.token_scopes(scopes)?;
        let (new, plaintext) = self.new_token(user_id, name, &scopes, expires_at, None)?;
        let (ctx, now) = (ctx.clone(), self.now_ms());
        let token = self
            .unit(move |tx| {
                Box::pin(async move {
                    let token = tx.insert_token(new).await?;
                    let event = token_event(
                        &ctx,
                        now,
                        "personal_access_token_created",
                        &token,
                        "Created personal access token",
                    );
                    tx.record_audit(event).await?;
                    Ok(token)
                })
            })
            .await?;
        Ok((token, plaintext))
    }

    pub async fn find_token(&self, id: i64) -> Result<Option<PersonalAccessToken>, ServiceError> {
        Ok(self.store.find_token(id).await?)
    }

    pub async fn list_tokens(
        &self,
        filter: &TokenFilter,
        page: PageRequest,
    ) -> Result<(Vec<PersonalAccessToken>, u64), ServiceError> {
        let filter = TokenFilter {
            today: Some(self.today()),
            ..filter.clone()
        };
        Ok(self.store.list_tokens(&filter, page).await?)
    }

    pub async fn revoke_token(&self, ctx: &Context, id: i64) -> Result<(), ServiceError> {
        let (ctx, now) = (ctx.clone(), self.now_ms());
        let found = self
            .changing_auth(self.unit(move |tx| {
                Box::pin(async move {
                    let Some(token) = tx.find_token(id).await? else {
                        return Ok(false);
                    };
                    if !tx.revoke_token(id).await? {
                        return Ok(false);
                    }
                    if !token.revoked {
                        let event = token_event(
                            &ctx,
                            now,
                            "personal_access_token_revoked",
                            &token,
                            "Revoked personal access token",
                        );
                        tx.record_audit(event).await?;
                    }
                    Ok(true)
                })
            }))
            .await?;
        if found {
            Ok(())
        } else {
            Err(ServiceError::NotFound)
        }
    }

    /// May `by` make a personal access token with `scopes` (for any user, as
    /// an administrator)? Not with an OAuth access token (an application
    /// holding an administrator's token must not mint lasting ones), and the
    /// privilege-bearing scopes (`sudo`, `admin_mode`) only by a token that
    /// has them itself. Stricter than GitLab; `Forbidden` otherwise.
    pub fn check_token_grant(
        &self,
        by: TokenActor<'_>,
        scopes: &[String],
    ) -> Result<(), ServiceError> {
        if by.personal_token_id.is_none() {
            return Err(ServiceError::Forbidden(None));
        }
        if PRIVILEGED_SCOPES
            .iter()
            .any(|p| scopes.iter().any(|s| s == p) && !by.scopes.contains(p))
        {
            return Err(ServiceError::Forbidden(None));
        }
        Ok(())
    }

    /// GitLab's rotation: the token is revoked and a new one with the same
    /// name and scopes is issued, expiring on `expires_at` or in a week.
    ///
    /// Stricter than GitLab: only a personal access token may rotate one (an
    /// OAuth access token held by an application may not), and a token other
    /// than the caller's own only when the caller's scopes cover all of its
    /// scopes, so that rotation never hands out more than the caller holds.
    /// `Forbidden` otherwise; `NotFound` if the token is missing; `Invalid`
    /// if already revoked.
    pub async fn rotate_token(
        &self,
        ctx: &Context,
        by: TokenActor<'_>,
        old: &PersonalAccessToken,
        expires_at: Option<Date>,
    ) -> Result<(PersonalAccessToken, Plaintext), ServiceError> {
        let Some(own) = by.personal_token_id else {
            return Err(ServiceError::Forbidden(None));
        };
        if own != old.id && !old.scopes.is_subset_of(by.scopes) {
            return Err(ServiceError::Forbidden(None));
        }
        self.rotate(ctx, old, expires_at).await
    }

    /// The owner's rotation from a signed-in session (User Settings), as
    /// [`Self::rotate_token`] rotates: their own token only (another's is
    /// `NotFound`), the new one expiring in a week.
    pub async fn rotate_own_token(
        &self,
        ctx: &Context,
        user_id: i64,
        old: &PersonalAccessToken,
    ) -> Result<(PersonalAccessToken, Plaintext), ServiceError> {
        if old.user_id != user_id {
            return Err(ServiceError::NotFound);
        }
        self.rotate(ctx, old, None).await
    }

    async fn rotate(
        &self,
        ctx: &Context,
        old: &PersonalAccessToken,
        expires_at: Option<Date>,
    ) -> Result<(PersonalAccessToken, Plaintext), ServiceError> {
        let expires = expires_at.unwrap_or_else(|| {
            (self.today() + time::Duration::days(7)).min(self.max_token_expiry())
        });
        let (new, plaintext) =
            self.new_token(old.user_id, &old.name, &old.scopes, Some(expires), None)?;
        let (ctx, now, old) = (ctx.clone(), self.now_ms(), old.clone());
        let rotated = self
            .changing_auth(self.unit(move |tx| {
                Box::pin(async move {
                    let Some(token) = tx.rotate_token(old.id, new).await? else {
                        return Ok(None);
                    };
                    let event = token_event(
                        &ctx,
                        now,
                        "personal_access_token_rotated",
                        &old,
                        "Rotated personal access token",
                    )
                    .detail("new_token_id", token.id)
                    .detail("new_expires_at", token.expires_at.map(|d| d.to_string()));
                    tx.record_audit(event).await?;
                    Ok(Some(token))
                })
            }))
            .await?;
        match rotated {
            Some(token) => Ok((token, plaintext)),
            None => Err(ServiceError::Invalid("Token already revoked".to_owned())),
        }
    }
}
