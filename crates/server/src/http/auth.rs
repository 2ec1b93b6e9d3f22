//! Authentication for `/api/v4`, in GitLab's order: find the credential,
//! check the token, its scopes, then the user's state; admin checks after.

use axum::http::{header, HeaderMap, Method};
use latchkey_core::access::Actor;
use latchkey_core::context::{Context, Via};
use latchkey_core::scopes::Scopes;
use latchkey_core::token::{TokenActor, TokenRejection};
use latchkey_core::user::User;

use super::errors::ApiError;
use super::limits::TokenKey;
use super::params::Params;
use super::AppState;

/// The authenticated caller of an API request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user: User,
    pub scopes: Scopes,
    /// The personal access token the request was authenticated with
    /// (`None` for an OAuth access token).
    pub token_id: Option<i64>,
}

impl Caller {
    /// Who makes a change on this request (see `latchkey_core::context`).
    pub fn context(&self) -> Context {
        let via = match self.token_id {
            Some(id) => Via::PersonalAccessToken(id),
            None => Via::OAuthToken,
        };
        super::request_id::context(Some(self.user.id), via)
    }

    /// The caller as the authorization rules see it.
    pub fn actor(&self) -> Actor<'_> {
        Actor {
            user: &self.user,
            scopes: &self.scopes,
        }
    }

    /// The caller as the token rules see it (rotating and making tokens).
    pub fn token_actor(&self) -> TokenActor<'_> {
        TokenActor {
            scopes: &self.scopes,
            personal_token_id: self.token_id,
        }
    }
}

/// What a route needs from a token: GitLab lets `read_api` read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    Read,
    Write,
    /// `GET /user` and `/version`: `read_user` is enough too.
    ReadUser,
    /// Rotating the token itself: `api` or `self_rotate`.
    SelfRotate,
    /// Any valid token (reading or revoking the token itself).
    AnyScope,
}

impl Need {
    pub fn for_method(m: &Method) -> Self {
        if m == Method::GET || m == Method::HEAD {
            Self::Read
        } else {
            Self::Write
        }
    }

    fn allowed(self) -> &'static [&'static str] {
        match self {
            Self::Read => &["api", "read_api"],
            Self::Write => &["api"],
            Self::ReadUser => &["api", "read_api", "read_user"],
            Self::SelfRotate => &["api", "self_rotate"],
            Self::AnyScope => &[],
        }
    }

    fn advertised(self) -> &'static str {
        match self {
            Self::Read => "api read_api",
            Self::Write => "api",
            Self::ReadUser => "api read_api read_user",
            Self::SelfRotate => "api self_rotate",
            Self::AnyScope => "",
        }
    }
}

/// The token of an `Authorization: Bearer` header, if any.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| rest.trim())
        .filter(|t| !t.is_empty())
}

/// The tokens a request presents: the OAuth candidate and the personal
/// access token candidate, from GitLab's sources in GitLab's order.
fn presented_tokens<'a>(
    headers: &'a HeaderMap,
    params: &'a Params,
) -> Result<(Option<&'a str>, Option<&'a str>), ApiError> {
    let header_bearer = bearer(headers);
    if header_bearer.is_some() && params.get_str("access_token").is_some() {
        return Err(ApiError::BothTokens);
    }
    let oauth = params
        .get_str("access_token")
        .or(header_bearer)
        .or(params.get_str("bearer_token"));
    // The personal access token lookup prefers its own sources.
    let private = params.get_str("private_token").or_else(|| {
        headers
            .get("private-token")
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty())
    });
    Ok((oauth, private.or(oauth)))
}

fn rejection(r: TokenRejection) -> ApiError {
    match r {
        TokenRejection::Unknown => ApiError::Unauthorized,
        TokenRejection::Expired => ApiError::InvalidToken(
            "Token is expired. You can either do re-authorization or token refresh.",
        ),
        TokenRejection::Revoked => {
            ApiError::InvalidToken("Token was revoked. You have to re-authorize from the user.")
        }
    }
}

fn check(need: Need, scopes: &Scopes, user: &User) -> Result<(), ApiError> {
    let allowed = need.allowed();
    if !allowed.is_empty() && !allowed.iter().any(|s| scopes.contains(s)) {
        return Err(ApiError::InsufficientScope(need.advertised()));
    }
    if let Some(reason) = user.access_denied_reason() {
        return Err(ApiError::Forbidden(Some(reason)));
    }
    Ok(())
}

/// A token was found: note its user for the access log, and count the
/// request against the token's rate limit (off unless configured).
fn admit(state: &AppState, token: TokenKey, user_id: i64) -> Result<(), ApiError> {
    super::request_id::set_user(user_id);
    let verdict = state.observer.limits.check_api(token);
    state.observer.counted(verdict).map_err(ApiError::from)
}

/// Authenticate the request; `need` is what the route's method requires.
/// An OAuth access token is tried first, then a personal access token.
pub async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    params: &Params,
    need: Need,
) -> Result<Caller, ApiError> {
    let (oauth, private) = presented_tokens(headers, params)?;
    if let Some(candidate) = oauth {
        match state.services.use_oauth_token(candidate).await? {
            Some(Ok(found)) => {
                // Client-credentials tokens have no user to act as.
                let user = found.user.ok_or(ApiError::Unauthorized)?;
                admit(state, TokenKey::OAuth(found.token.id), user.id)?;
                check(need, &found.token.scopes, &user)?;
                return Ok(Caller {
                    user,
                    scopes: found.token.scopes,
                    token_id: None,
                });
            }
            Some(Err(r)) => return Err(rejection(r)),
            None => {}
        }
    }
    let Some(token) = private else {
        return Err(ApiError::Unauthorized);
    };
    let found = state
        .services
        .authenticate_token(token)
        .await?
        .map_err(rejection)?;
    admit(state, TokenKey::Personal(found.token.id), found.user.id)?;
    check(need, &found.token.scopes, &found.user)?;
    // Used only when the request is let through.
    state.services.token_used(found.token.id);
    Ok(Caller {
        user: found.user,
        scopes: found.token.scopes,
        token_id: Some(found.token.id),
    })
}

/// Authenticate a request that may also be made anonymously (GitLab's
/// `authenticate_non_get!` routes): no credential at all is `None`; a
/// credential that does not authenticate is refused as anywhere else.
pub async fn authenticate_optional(
    state: &AppState,
    headers: &HeaderMap,
    params: &Params,
    need: Need,
) -> Result<Option<Caller>, ApiError> {
    let (oauth, private) = presented_tokens(headers, params)?;
    if oauth.is_none() && private.is_none() {
        return Ok(None);
    }
    authenticate(state, headers, params, need).await.map(Some)
}

/// GitLab's `authenticated_as_admin!`: an admin, and with Admin Mode on, a
/// token that carries `admin_mode`.
pub fn require_admin(state: &AppState, caller: &Caller) -> Result<(), ApiError> {
    if is_admin(state, caller) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(None))
    }
}

/// Does the caller act as an administrator on this request? (The rule is
/// core's: `access`.)
pub fn is_admin(state: &AppState, caller: &Caller) -> bool {
    state.services.acts_as_admin(caller.actor())
}

/// May the caller manage what `owner_id` owns (the owner or an admin)?
pub fn may_manage(state: &AppState, caller: &Caller, owner_id: Option<i64>) -> bool {
    state.services.may_manage(caller.actor(), owner_id)
}

/// Authenticate and require an administrator.
pub async fn authenticate_admin(
    state: &AppState,
    headers: &HeaderMap,
    params: &Params,
    need: Need,
) -> Result<Caller, ApiError> {
    let caller = authenticate(state, headers, params, need).await?;
    require_admin(state, &caller)?;
    Ok(caller)
}
