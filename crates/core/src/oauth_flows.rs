//! The OAuth 2 flows: client authentication, the authorization request,
//! every grant of the token endpoint, revocation, introspection, browser
//! sign-in with throttling, and sessions.

use crate::application::Application;
use crate::audit::{target, Entity, NewAuditEvent};
use crate::context::Context;
use crate::error::StoreError;
use crate::oauth::{
    pkce_verify, ErrorCode, Grant, IssuedToken, NewOAuthToken, OAuthError, OAuthTokenFound,
    PkceMethod,
};
use crate::scopes::{ScopeError, ScopeSet, Scopes};
use crate::secret;
use crate::service::{ServiceError, Services};
use crate::session::service::SignInError;
use crate::token::TokenRejection;

/// A flow failed: an RFC 6749 error for the client, or a server fault.
#[derive(Debug)]
pub enum FlowError {
    OAuth(OAuthError),
    Internal(ServiceError),
}

impl From<OAuthError> for FlowError {
    fn from(e: OAuthError) -> Self {
        Self::OAuth(e)
    }
}

impl From<ServiceError> for FlowError {
    fn from(e: ServiceError) -> Self {
        Self::Internal(e)
    }
}

impl From<StoreError> for FlowError {
    fn from(e: StoreError) -> Self {
        match e {
            // A grant's client or user deleted while the request ran: the
            // grant is worth nothing now.
            StoreError::Gone => Self::OAuth(OAuthError::new(ErrorCode::InvalidGrant)),
            e => Self::Internal(e.into()),
        }
    }
}

impl From<secret::RandomError> for FlowError {
    fn from(e: secret::RandomError) -> Self {
        Self::Internal(e.into())
    }
}

fn err(code: ErrorCode) -> FlowError {
    FlowError::OAuth(OAuthError::new(code))
}

/// The grant types of the token endpoint, as registered (RFC 7591).
pub const GRANT_AUTHORIZATION_CODE: &str = "authorization_code";
pub const GRANT_REFRESH_TOKEN: &str = "refresh_token";
pub const GRANT_CLIENT_CREDENTIALS: &str = "client_credentials";
pub const GRANT_PASSWORD: &str = "password";
pub const GRANT_DEVICE_CODE: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// `unauthorized_client` unless the client registered `grant`.
pub(crate) fn require_grant(client: &Application, grant: &str) -> Result<(), OAuthError> {
    if client.allows_grant(grant) {
        Ok(())
    } else {
        Err(OAuthError {
            bad_request: true,
            ..OAuthError::with(
                ErrorCode::UnauthorizedClient,
                format!("The client is not authorized to use the {grant} grant."),
            )
        })
    }
}

pub(crate) fn present(v: &Option<String>) -> Option<&str> {
    v.as_deref().filter(|s| !s.is_empty())
}

/// Scopes a client asks for, checked against what the application was
/// registered with and what the server knows. No scope means `api` when
/// the application has it (GitLab's default).
pub(crate) fn resolve_scopes(
    app: &Application,
    requested: Option<&str>,
    server: &ScopeSet,
) -> Result<Scopes, OAuthError> {
    let raw = requested.filter(|s| !s.trim().is_empty()).unwrap_or("api");
    let scopes = Scopes::checked(raw, server).map_err(|e| match e {
        ScopeError::TooMany | ScopeError::TooLong => {
            OAuthError::with(ErrorCode::InvalidScope, e.to_string())
        }
        _ => OAuthError::new(ErrorCode::InvalidScope),
    })?;
    let app_set = ScopeSet::of(&app.scopes);
    if !scopes.as_slice().iter().all(|s| app_set.allows(s)) {
        return Err(OAuthError::new(ErrorCode::InvalidScope));
    }
    Ok(scopes)
}

/// A new refresh chain's family: the time, then 80 random bits. Families
/// are only ever compared, never secret; leading with the time makes a new
/// family's index entry land at the end of the index (one page written per
/// group commit, not one random page per token, on SQLite and PostgreSQL
/// alike), and the random part keeps families of the same millisecond apart.
fn new_family(now_ms: i64) -> Result<String, secret::RandomError> {
    Ok(format!("{:012x}{}", now_ms.max(0), secret::random_hex(10)?))
}

impl Services {
    // --- clients -----------------------------------------------------------------

    /// Identify the client: confidential clients must present their secret;
    /// public ones may omit it, but a wrong one is still refused.
    pub async fn authenticate_client(
        &self,
        client_id: &str,
        secret_value: Option<&str>,
    ) -> Result<Application, FlowError> {
        match secret_value.filter(|s| !s.is_empty()) {
            Some(s) => self
                .verify_client_secret(client_id, s)
                .await?
                .ok_or_else(|| err(ErrorCode::InvalidClient)),
            None => match self.store.find_application_by_uid(client_id).await? {
                Some((app, _)) if !app.confidential => Ok(app),
                _ => Err(err(ErrorCode::InvalidClient)),
            },
        }
    }

    // --- the authorization request -------------------------------------------------

    // --- tokens ------------------------------------------------------------------

    /// Does user `id` exist and may act (not blocked)?
    pub(crate) async fn user_may_act(&self, id: i64) -> Result<bool, StoreError> {
        Ok(self
            .store
            .find_user(id)
            .await?
            .is_some_and(|u| u.access_denied_reason().is_none()))
    }

    pub(crate) fn new_oauth_token(
        &self,
        app: &Application,
        user_id: Option<i64>,
        scopes: &Scopes,
        with_refresh: bool,
        family: Option<&str>,
        grant_id: Option<i64>,
    ) -> Result<(NewOAuthToken, IssuedToken), FlowError> {
        let access = secret::random_hex(32)?;
        // A client that may not refresh gets no refresh token to hold.
        let refresh = if with_refresh && app.allows_grant(GRANT_REFRESH_TOKEN) {
            Some(secret::random_hex(32)?)
        } else {
            None
        };
        let now = self.now_ms();
        let lifetime = self.config().access_token_seconds;
        let family = match family {
            Some(f) => f.to_owned(),
            None => new_family(now)?,
        };
        Ok((
            NewOAuthToken {
                application_id: app.id,
                user_id,
                token_digest: secret::digest(&access),
                refresh_digest: refresh.as_deref().map(secret::digest),
                scopes: scopes.clone(),
                created_at: now,
                expires_at: now + lifetime * 1000,
                family,
                previous_token_id: None,
                grant_id,
                auth_time: None,
                client_secret_id: app.client_secret_id,
            },
            IssuedToken {
                access_token: access,
                refresh_token: refresh,
                expires_in: lifetime,
                scopes: scopes.clone(),
                created_at_seconds: now / 1000,
                id_token: None,
            },
        ))
    }

    /// `grant_type=authorization_code`. A replayed code revokes every token
    /// issued from it.
    pub async fn exchange_code(
        &self,
        client: &Application,
        code: &str,
        redirect: Option<&str>,
        verifier: Option<&str>,
    ) -> Result<(IssuedToken, Grant), FlowError> {
        require_grant(client, GRANT_AUTHORIZATION_CODE)?;
        let Some(grant) = self.store.find_grant(&secret::digest(code)).await? else {
            return Err(err(ErrorCode::InvalidGrant));
        };
        let now = self.now_ms();
        if grant.redeemed_at.is_some() {
            self.changing_auth(self.store.revoke_grant_tokens(grant.id, now))
                .await?;
            return Err(err(ErrorCode::InvalidGrant));
        }
        if grant.application_id != client.id || now >= grant.expires_at {
            return Err(err(ErrorCode::InvalidGrant));
        }
        // A code issued before its user was blocked is worth nothing now.
        if !self.user_may_act(grant.user_id).await? {
            return Err(err(ErrorCode::InvalidGrant));
        }
        let Some(redirect) = redirect.filter(|r| !r.is_empty()) else {
            return Err(FlowError::OAuth(OAuthError::missing("redirect_uri")));
        };
        if redirect != grant.redirect_uri {
            return Err(err(ErrorCode::InvalidGrant));
        }
        match (
            &grant.code_challenge,
            grant.code_challenge_method,
            verifier.filter(|v| !v.is_empty()),
        ) {
            (Some(_), _, None) => {
                return Err(FlowError::OAuth(OAuthError::missing("code_verifier")))
            }
            (Some(challenge), method, Some(v)) => {
                if !pkce_verify(method.unwrap_or(PkceMethod::Plain), challenge, v) {
                    return Err(err(ErrorCode::InvalidGrant));
                }
            }
            // A verifier for a code that had no challenge: a downgrade attempt.
            (None, _, Some(_)) => return Err(err(ErrorCode::InvalidGrant)),
            (None, _, None) => {}
        }
        let (mut new, issued) = self.new_oauth_token(
            client,
            Some(grant.user_id),
            &grant.scopes,
            true,
            None,
            Some(grant.id),
        )?;
        new.auth_time = Some(grant.auth_time.unwrap_or(grant.created_at));
        match self.store.redeem_grant(grant.id, now, new).await? {
            Some(_) => {
                let mut issued = issued;
                if grant.scopes.contains("openid") {
                    let auth_time = grant.auth_time.unwrap_or(grant.created_at);
                    issued.id_token = Some(
                        self.id_token(
                            client,
                            grant.user_id,
                            &grant.scopes,
                            auth_time,
                            grant.nonce.as_deref(),
                        )
                        .await?,
                    );
                }
                Ok((issued, grant))
            }
            None => {
                // Lost a race with another redemption of the same code.
                self.changing_auth(self.store.revoke_grant_tokens(grant.id, now))
                    .await?;
                Err(err(ErrorCode::InvalidGrant))
            }
        }
    }

    /// `grant_type=refresh_token`: a new pair every time. The old access
    /// token works until the new one is first used; the old refresh token
    /// never again. Presenting a used refresh token revokes its whole family.
    pub async fn exchange_refresh(
        &self,
        client: Option<&Application>,
        refresh: &str,
        scope: Option<&str>,
    ) -> Result<IssuedToken, FlowError> {
        let Some(found) = self
            .store
            .find_oauth_token_by_refresh(&secret::digest(refresh))
            .await?
        else {
            return Err(err(ErrorCode::InvalidGrant));
        };
        let now = self.now_ms();
        let token = &found.token;
        if client.is_none_or(|c| c.id != token.application_id) {
            return Err(err(ErrorCode::InvalidGrant));
        }
        require_grant(&found.application, GRANT_REFRESH_TOKEN)?;
        if token.refreshed_at.is_some() {
            self.changing_auth(self.store.revoke_token_family(&token.family, now))
                .await?;
            return Err(err(ErrorCode::InvalidGrant));
        }
        if token.revoked_at.is_some() {
            return Err(err(ErrorCode::InvalidGrant));
        }
        if !found.owner_may_act() {
            return Err(err(ErrorCode::InvalidGrant));
        }
        // At most what was granted and what the application may still have:
        // narrowing an application's scopes narrows its refresh chains.
        let granted = token
            .scopes
            .allowed_by(&ScopeSet::of(&found.application.scopes));
        let scopes = match scope.filter(|s| !s.trim().is_empty()) {
            None => granted,
            Some(raw) => {
                let asked = Scopes::checked(raw, &self.config().scopes)
                    .map_err(|_| err(ErrorCode::InvalidScope))?;
                if !asked.is_subset_of(&granted) {
                    return Err(err(ErrorCode::InvalidScope));
                }
                asked
            }
        };
        if scopes.as_slice().is_empty() {
            return Err(err(ErrorCode::InvalidScope));
        }
        let (mut new, issued) = self.new_oauth_token(
            &found.application,
            token.user_id,
            &scopes,
            true,
            Some(&token.family),
            token.grant_id,
        )?;
        new.previous_token_id = Some(token.id);
        // The sign-in behind the whole chain, not this refresh.
        let auth_time = token.auth_time.unwrap_or(token.created_at);
        new.auth_time = Some(auth_time);
        match self
            .changing_auth(self.store.refresh_oauth_token(token.id, now, new))
            .await?
        {
            Some(_) => {
                let mut issued = issued;
                if let (Some(user_id), true) = (token.user_id, scopes.contains("openid")) {
                    issued.id_token = Some(
                        self.id_token(&found.application, user_id, &scopes, auth_time, None)
                            .await?,
                    );
                }
                Ok(issued)
            }
            None => {
                self.changing_auth(self.store.revoke_token_family(&token.family, now))
                    .await?;
                Err(err(ErrorCode::InvalidGrant))
            }
        }
    }

    /// `grant_type=client_credentials`: confidential clients only, no
    /// refresh token, no user.
    pub async fn client_credentials(
        &self,
        client: &Application,
        scope: Option<&str>,
    ) -> Result<IssuedToken, FlowError> {
        if !client.confidential {
            return Err(err(ErrorCode::UnauthorizedClient));
        }
        require_grant(client, GRANT_CLIENT_CREDENTIALS)?;
        let scopes =
            resolve_scopes(client, scope, &self.config().scopes).map_err(FlowError::OAuth)?;
        let (new, issued) = self.new_oauth_token(client, None, &scopes, false, None, None)?;
        match self.store.insert_oauth_token(new).await {
            Ok(_) => Ok(issued),
            // The application was deleted meanwhile: a moment later its
            // credentials authenticate nobody.
            Err(StoreError::Gone) => Err(err(ErrorCode::InvalidClient)),
            Err(e) => Err(e.into()),
        }
    }

    /// `grant_type=password` (GitLab's ROPC), if enabled.
    pub async fn password_grant(
        &self,
        ctx: &Context,
        client: &Application,
        login: &str,
        password: &str,
        scope: Option<&str>,
    ) -> Result<IssuedToken, FlowError> {
        if !self.config().password_grant_enabled {
            return Err(err(ErrorCode::UnsupportedGrantType));
        }
        require_grant(client, GRANT_PASSWORD)?;
        let scopes =
            resolve_scopes(client, scope, &self.config().scopes).map_err(FlowError::OAuth)?;
        let user = match self.sign_in(ctx, login, password).await {
            Ok(u) => u,
            Err(SignInError::Internal(e)) => return Err(FlowError::Internal(e)),
            Err(_) => return Err(err(ErrorCode::InvalidGrant)),
        };
        let (mut new, issued) =
            self.new_oauth_token(client, Some(user.id), &scopes, true, None, None)?;
        let now = self.now_ms();
        new.auth_time = Some(now);
        let event = crate::session::service::signed_in_event(ctx, now, user.id, "password_grant")
            .detail("application_id", client.application_id.as_str())
            .detail("application_name", client.name.as_str());
        self.unit(move |tx| {
            Box::pin(async move {
                tx.insert_oauth_token(new).await?;
                tx.record_audit(event).await
            })
        })
        .await?;
        Ok(issued)
    }

    /// RFC 7009: revoke an access or refresh token of this client. Unknown
    /// tokens are not an error. `Err(UnauthorizedClient)` for another
    /// client's token.
    pub async fn revoke_oauth(
        &self,
        ctx: &Context,
        client: &Application,
        token: &str,
    ) -> Result<(), FlowError> {
        let Some(found) = self.find_oauth_token(token).await? else {
            return Ok(());
        };
        if found.token.application_id != client.id {
            return Err(FlowError::OAuth(OAuthError::with(
                ErrorCode::UnauthorizedClient,
                "You are not authorized to revoke this token",
            )));
        }
        // The whole family: after a refresh, the previous access token lives
        // until the new one is first used, and must die with it.
        let now = self.now_ms();
        let entity = found
            .token
            .user_id
            .map_or_else(Entity::instance, Entity::user);
        let event = NewAuditEvent::new(
            ctx,
            now,
            "oauth_token_revoked",
            entity,
            "Revoked OAuth token",
        )
        .by(&client.name, target::APPLICATION)
        .target(target::OAUTH_TOKEN, Some(found.token.id), &client.name)
        .detail("application_id", client.application_id.as_str())
        .detail("scopes", found.token.scopes.joined());
        let family = found.token.family.clone();
        self.changing_auth(self.unit(move |tx| {
            Box::pin(async move {
                // Recorded only when something was live to revoke.
                if tx.revoke_token_family(&family, now).await? > 0 {
                    tx.record_audit(event).await?;
                }
                Ok(())
            })
        }))
        .await?;
        Ok(())
    }

    /// Look up a token for introspection (by access or refresh token).
    pub async fn find_oauth_token(
        &self,
        token: &str,
    ) -> Result<Option<OAuthTokenFound>, ServiceError> {
        let digest = secret::digest(token);
        if let Some(f) = self.store.find_oauth_token_by_access(&digest).await? {
            return Ok(Some(f));
        }
        Ok(self.store.find_oauth_token_by_refresh(&digest).await?)
    }

    /// An OAuth access token being used. On the first use of a refreshed
    /// token the token it replaced is revoked (GitLab's behaviour).
    pub async fn use_oauth_token(
        &self,
        access: &str,
    ) -> Result<Option<Result<OAuthTokenFound, TokenRejection>>, StoreError> {
        let digest = secret::digest(access);
        let now = self.now_ms();
        let cached = if self.cache_still_holds().await {
            self.auth_cache.get_oauth(&digest, now)
        } else {
            None
        };
        if let Some(found) = cached {
            // Cached only while unrevoked and with no refresh to finish;
            // expiry is checked on every use.
            if found.token.is_expired(now) {
                return Ok(Some(Err(TokenRejection::Expired)));
            }
            return Ok(Some(Ok(found)));
        }
        let ticket = self.auth_cache.ticket();
        let Some(mut found) = self.store.find_oauth_token_by_access(&digest).await? else {
            return Ok(None);
        };
        if found.token.revoked_at.is_some() {
            return Ok(Some(Err(TokenRejection::Revoked)));
        }
        if found.token.is_expired(now) {
            return Ok(Some(Err(TokenRejection::Expired)));
        }
        if let Some(previous) = found.token.previous_token_id {
            self.changing_auth(self.store.finish_refresh(found.token.id, previous, now))
                .await?;
            found.token.previous_token_id = None;
        } else {
            // (After finishing a refresh the ticket is stale anyway.)
            self.auth_cache.put_oauth(ticket, &digest, &found, now);
        }
        Ok(Some(Ok(found)))
    }

    // --- browser sign-in ------------------------------------------------------------

    /// Remove expired grants, tokens, sessions and counters.
    pub async fn delete_expired(&self) -> Result<u64, ServiceError> {
        Ok(self
            .changing_auth(self.store.delete_expired(self.now_ms()))
            .await?)
    }
}
