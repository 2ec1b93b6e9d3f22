//! The authorization endpoint (`/oauth/authorize`): checking a request,
//! deciding whether the user must sign in or consent (OpenID Connect's
//! `prompt` and `max_age`), and issuing the code.

use crate::application::Application;
use crate::audit::{Entity, NewAuditEvent};
use crate::context::Context;
use crate::oauth::{ErrorCode, NewGrant, OAuthError, PkceMethod, CODE_LIFETIME_MS};
use crate::oauth_flows::{present, require_grant, resolve_scopes, GRANT_AUTHORIZATION_CODE};
use crate::redirect_uri;
use crate::scopes::Scopes;
use crate::secret;
use crate::service::{ServiceError, Services};
use crate::user::User;

/// The parameters of `GET /oauth/authorize`, as sent.
#[derive(Debug, Clone, Default)]
pub struct AuthorizeRequest {
    pub client_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub response_type: Option<String>,
    pub response_mode: Option<String>,
    pub state: Option<String>,
    pub scope: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub nonce: Option<String>,
    /// OpenID Connect's `prompt`: space-separated `none`, `login`,
    /// `consent`, `select_account`.
    pub prompt: Option<String>,
    /// OpenID Connect's `max_age`, in seconds.
    pub max_age: Option<String>,
}

/// OpenID Connect's `prompt` values, as a set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Prompt {
    pub none: bool,
    pub login: bool,
    pub consent: bool,
    pub select_account: bool,
}

impl Prompt {
    /// Parse a `prompt` parameter; `none` with anything else, or an unknown
    /// value, is `invalid_request` (OpenID Connect Core 3.1.2.1).
    pub fn parse(raw: Option<&str>) -> Result<Self, OAuthError> {
        let mut p = Self::default();
        let mut count = 0;
        for v in raw.unwrap_or("").split_whitespace() {
            count += 1;
            match v {
                "none" => p.none = true,
                "login" => p.login = true,
                "consent" => p.consent = true,
                "select_account" => p.select_account = true,
                other => {
                    return Err(OAuthError::with(
                        ErrorCode::InvalidRequest,
                        format!("The prompt value {other:?} is not supported."),
                    ))
                }
            }
        }
        if p.none && count > 1 {
            return Err(OAuthError::with(
                ErrorCode::InvalidRequest,
                "prompt=none cannot be combined with other prompt values.",
            ));
        }
        Ok(p)
    }
}

/// What the authorization endpoint does next with a validated request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interaction {
    /// Issue the code now.
    Approve,
    /// Show the consent page.
    Consent,
    /// Send the person to sign in (again): no session, `prompt=login` or
    /// `select_account`, or a sign-in older than `max_age`.
    SignIn,
    /// `prompt=none` cannot be honoured: redirect back with this error.
    Fail(ErrorCode),
}

/// A validated authorization request.
#[derive(Debug, Clone)]
pub struct PreAuthorized {
    pub application: Application,
    pub redirect_uri: String,
    pub scopes: Scopes,
    pub state: Option<String>,
    pub code_challenge: Option<(String, PkceMethod)>,
    pub nonce: Option<String>,
    pub prompt: Prompt,
    /// `max_age` in seconds: a sign-in older than this must be repeated.
    pub max_age: Option<i64>,
}

impl PreAuthorized {
    /// OpenID Connect's prompt and max_age rules: given the browser's
    /// sign-in time (`auth_time`, ms; `None` when not signed in) and the
    /// time now, what happens next.
    pub fn interaction(&self, auth_time: Option<i64>, now: i64) -> Interaction {
        let too_old = |t: i64| {
            self.max_age
                .is_some_and(|max| now.saturating_sub(t) / 1000 > max)
        };
        let must_sign_in = match auth_time {
            None => true,
            Some(t) => self.prompt.login || self.prompt.select_account || too_old(t),
        };
        if self.prompt.none {
            if must_sign_in {
                return Interaction::Fail(ErrorCode::LoginRequired);
            }
            if !self.application.trusted {
                return Interaction::Fail(ErrorCode::ConsentRequired);
            }
            return Interaction::Approve;
        }
        if must_sign_in {
            return Interaction::SignIn;
        }
        if self.application.trusted && !self.prompt.consent {
            Interaction::Approve
        } else {
            Interaction::Consent
        }
    }
}

/// Why an authorization request failed, and where the answer goes.
#[derive(Debug)]
pub enum AuthorizeError {
    /// Before the redirect URI is trusted: shown as a page, never redirected.
    Page(OAuthError),
    /// After: sent back to the client's redirect URI.
    Redirect {
        redirect_uri: String,
        error: OAuthError,
        state: Option<String>,
    },
    Internal(ServiceError),
}

impl Services {
    /// Doorkeeper's pre-authorization, in its order.
    pub async fn pre_authorize(
        &self,
        req: &AuthorizeRequest,
    ) -> Result<PreAuthorized, AuthorizeError> {
        let Some(client_id) = present(&req.client_id) else {
            return Err(AuthorizeError::Page(OAuthError::missing("client_id")));
        };
        let app = match self.store.find_application_by_uid(client_id).await {
            Ok(Some((app, _))) => app,
            Ok(None) => {
                return Err(AuthorizeError::Page(OAuthError::new(
                    ErrorCode::InvalidClient,
                )))
            }
            Err(e) => return Err(AuthorizeError::Internal(e.into())),
        };
        let Some(redirect) = present(&req.redirect_uri) else {
            return Err(AuthorizeError::Page(OAuthError::new(
                ErrorCode::InvalidRedirectUri,
            )));
        };
        if !redirect_uri::matches(&app.redirect_uri, redirect) {
            return Err(AuthorizeError::Page(OAuthError::new(
                ErrorCode::InvalidRedirectUri,
            )));
        }
        let back = |error: OAuthError| AuthorizeError::Redirect {
            redirect_uri: redirect.to_owned(),
            error,
            state: req.state.clone(),
        };
        match present(&req.response_type) {
            None => return Err(back(OAuthError::missing("response_type"))),
            Some("code") => {}
            Some(_) => return Err(back(OAuthError::new(ErrorCode::UnsupportedResponseType))),
        }
        require_grant(&app, GRANT_AUTHORIZATION_CODE).map_err(back)?;
        if let Some(mode) = present(&req.response_mode) {
            if mode != "query" {
                return Err(back(OAuthError::with(
                    ErrorCode::InvalidRequest,
                    "The authorization server does not support this response mode.",
                )));
            }
        }
        let scopes =
            resolve_scopes(&app, req.scope.as_deref(), &self.config().scopes).map_err(back)?;
        let code_challenge = match present(&req.code_challenge) {
            None => None,
            Some(challenge) => {
                let method = match present(&req.code_challenge_method) {
                    None => PkceMethod::Plain,
                    Some(m) => PkceMethod::parse(m).ok_or_else(|| {
                        back(OAuthError::with(
                            ErrorCode::InvalidRequest,
                            "The code_challenge_method must be one of plain, S256.",
                        ))
                    })?,
                };
                if !crate::oauth::is_valid_pkce_value(challenge) {
                    return Err(back(OAuthError::with(
                        ErrorCode::InvalidRequest,
                        "The code_challenge is malformed.",
                    )));
                }
                Some((challenge.to_owned(), method))
            }
        };
        if code_challenge.is_none()
            && !app.confidential
            && self.config().pkce_required_for_public_clients
        {
            return Err(back(OAuthError::with(
                ErrorCode::InvalidRequest,
                "Code challenge is required.",
            )));
        }
        let prompt = Prompt::parse(present(&req.prompt)).map_err(back)?;
        let max_age = match present(&req.max_age) {
            None => None,
            Some(raw) => Some(raw.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
                back(OAuthError::with(
                    ErrorCode::InvalidRequest,
                    "max_age must be a non-negative number of seconds.",
                ))
            })?),
        };
        Ok(PreAuthorized {
            application: app,
            redirect_uri: redirect.to_owned(),
            scopes,
            state: req.state.clone(),
            code_challenge,
            nonce: req.nonce.clone(),
            prompt,
            max_age,
        })
    }

    /// The user approved: make a single-use code (returned once).
    pub async fn issue_code(
        &self,
        ctx: &Context,
        pre: &PreAuthorized,
        user: &User,
        auth_time: i64,
    ) -> Result<String, ServiceError> {
        let code = secret::random_hex(32)?;
        let now = self.now_ms();
        let grant = NewGrant {
            application_id: pre.application.id,
            user_id: user.id,
            code_digest: secret::digest(&code),
            redirect_uri: pre.redirect_uri.clone(),
            scopes: pre.scopes.clone(),
            code_challenge: pre.code_challenge.as_ref().map(|(c, _)| c.clone()),
            code_challenge_method: pre.code_challenge.as_ref().map(|(_, m)| *m),
            nonce: pre.nonce.clone(),
            created_at: now,
            expires_at: now + CODE_LIFETIME_MS,
            auth_time: Some(auth_time),
        };
        let by_user = Context {
            user_id: Some(user.id),
            ..ctx.clone()
        };
        let event = crate::application::application_event(
            &by_user,
            now,
            "oauth_application_authorized",
            &pre.application,
            "Authorized OAuth application",
        )
        .detail("scopes", pre.scopes.joined())
        .detail(
            "consent",
            if pre.application.trusted {
                "trusted"
            } else {
                "given"
            },
        );
        let event = NewAuditEvent {
            entity: Entity::user(user.id),
            ..event
        };
        self.unit(move |tx| {
            Box::pin(async move {
                tx.insert_grant(grant).await?;
                tx.record_audit(event).await
            })
        })
        .await?;
        Ok(code)
    }
}
