//! The OAuth 2 endpoints that clients call directly, in RFC 6749's
//! dialect: the token endpoint (every grant), revocation (RFC 7009),
//! token info (Doorkeeper) and introspection (RFC 7662).

use super::limits::{too_many_requests, Limited};
use super::request_id::Fault;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine as _;
use latchkey_core::application::Application;
use latchkey_core::context::Via;
use latchkey_core::metrics::Grant;
use latchkey_core::oauth::{ErrorCode, IssuedToken, OAuthError, OAuthTokenFound};
use latchkey_core::oauth_flows::FlowError;
use latchkey_core::service::ServiceError;
use latchkey_core::StoreError;
use serde::Serialize;
use serde_json::json;

use super::errors::OAuthResponse;
use super::params::Params;
use super::AppState;

pub const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

pub(crate) fn flow_error(e: FlowError) -> Response {
    match e {
        FlowError::OAuth(e) => OAuthResponse(e).into_response(),
        FlowError::Internal(e) => internal(e),
    }
}

pub(crate) fn internal(e: ServiceError) -> Response {
    match e {
        // A parent deleted while this request ran: what the next request
        // would be told (its grant or client is no more).
        ServiceError::Store(StoreError::Gone) => {
            OAuthResponse(OAuthError::new(ErrorCode::InvalidGrant)).into_response()
        }
        e @ (ServiceError::Store(StoreError::Unavailable(_)) | ServiceError::Unavailable(_)) => {
            Fault {
                cause: latchkey_core::error::cause(e),
                unavailable: true,
            }
            .attach(
                OAuthResponse(OAuthError::new(ErrorCode::TemporarilyUnavailable)).into_response(),
            )
        }
        other => Fault {
            cause: latchkey_core::error::cause(other),
            unavailable: false,
        }
        .attach(OAuthResponse(OAuthError::new(ErrorCode::ServerError)).into_response()),
    }
}

/// Client credentials: HTTP Basic first (RFC 6749 2.3.1, each part
/// form-urlencoded), then `client_id`/`client_secret` parameters.
/// `Err` for a malformed Basic header.
fn client_credentials(
    headers: &HeaderMap,
    params: &Params,
) -> Result<Option<(String, Option<String>)>, OAuthError> {
    if let Some(v) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        if let Some((scheme, rest)) = v.split_once(' ') {
            if scheme.eq_ignore_ascii_case("basic") {
                let bad = || OAuthError::new(ErrorCode::InvalidClient);
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(rest.trim())
                    .map_err(|_| bad())?;
                let text = String::from_utf8(decoded).map_err(|_| bad())?;
                let (id, secret) = text.split_once(':').ok_or_else(bad)?;
                let dec = |s: &str| {
                    percent_encoding::percent_decode_str(&s.replace('+', " "))
                        .decode_utf8()
                        .map(|c| c.into_owned())
                        .map_err(|_| bad())
                };
                let secret = dec(secret)?;
                return Ok(Some((dec(id)?, Some(secret).filter(|s| !s.is_empty()))));
            }
        }
    }
    Ok(params.get_str("client_id").map(|id| {
        (
            id.to_owned(),
            params.get_str("client_secret").map(str::to_owned),
        )
    }))
}

pub(crate) async fn authenticated_client(
    state: &AppState,
    headers: &HeaderMap,
    params: &Params,
) -> Result<Option<Application>, FlowError> {
    match client_credentials(headers, params)? {
        None => Ok(None),
        Some((id, secret)) => Ok(Some(
            state
                .services
                .authenticate_client(&id, secret.as_deref())
                .await?,
        )),
    }
}

/// RFC 6749 section 5.1's answer, with Doorkeeper's `created_at`.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct TokenBody<'a> {
    access_token: &'a str,
    token_type: &'static str,
    expires_in: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    refresh_token: Option<&'a str>,
    scope: String,
    created_at: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    id_token: Option<&'a str>,
}

fn token_success(t: &IssuedToken) -> Response {
    let body = TokenBody {
        access_token: &t.access_token,
        token_type: "Bearer",
        expires_in: t.expires_in,
        refresh_token: t.refresh_token.as_deref(),
        scope: t.scopes.joined(),
        created_at: t.created_at_seconds,
        id_token: t.id_token.as_deref(),
    };
    Json(body).into_response()
}

pub(crate) fn require<'a>(params: &'a Params, key: &str) -> Result<&'a str, FlowError> {
    params
        .get_str(key)
        .ok_or_else(|| FlowError::OAuth(OAuthError::missing(key)))
}

/// Why a token request failed: the flow's answer, or the client's rate
/// limit.
enum TokenFailure {
    Flow(FlowError),
    Limited(Limited),
}

impl From<FlowError> for TokenFailure {
    fn from(e: FlowError) -> Self {
        Self::Flow(e)
    }
}

/// The authenticated client of a token request, counted against its rate
/// limit before any token is made.
async fn token_client(
    state: &AppState,
    headers: &HeaderMap,
    params: &Params,
) -> Result<Option<Application>, TokenFailure> {
    let client = authenticated_client(state, headers, params).await?;
    if let Some(c) = &client {
        let verdict = state.observer.limits.check_token(c.id);
        state
            .observer
            .counted(verdict)
            .map_err(TokenFailure::Limited)?;
    }
    Ok(client)
}

async fn token_inner(
    state: &AppState,
    headers: &HeaderMap,
    params: &Params,
) -> Result<IssuedToken, TokenFailure> {
    let grant_type = require(params, "grant_type")?;
    let services = &state.services;
    let need_client = |c: Option<Application>| {
        c.ok_or(FlowError::OAuth(OAuthError::new(ErrorCode::InvalidClient)))
    };
    let (grant, issued) = match grant_type {
        "authorization_code" => (Grant::AuthorizationCode, {
            let code = require(params, "code")?;
            let client = need_client(token_client(state, headers, params).await?)?;
            let (issued, _) = services
                .exchange_code(
                    &client,
                    code,
                    params.get_str("redirect_uri"),
                    params.get_str("code_verifier"),
                )
                .await?;
            issued
        }),
        "refresh_token" => (Grant::RefreshToken, {
            let refresh = require(params, "refresh_token")?;
            let client = token_client(state, headers, params).await?;
            services
                .exchange_refresh(client.as_ref(), refresh, params.get_str("scope"))
                .await?
        }),
        "client_credentials" => (Grant::ClientCredentials, {
            let client = need_client(token_client(state, headers, params).await?)?;
            services
                .client_credentials(&client, params.get_str("scope"))
                .await?
        }),
        "password" if services.config().password_grant_enabled => (Grant::Password, {
            let username = require(params, "username")?;
            let password = require(params, "password")?;
            let client = need_client(token_client(state, headers, params).await?)?;
            let ctx = super::request_id::context(None, Via::Client);
            services
                .password_grant(&ctx, &client, username, password, params.get_str("scope"))
                .await?
        }),
        // RFC 8628's URN, and GitLab's short name from its discovery document.
        DEVICE_GRANT | "device_code" => (Grant::DeviceCode, {
            let device_code = require(params, "device_code")?;
            let client = need_client(token_client(state, headers, params).await?)?;
            services.exchange_device_code(&client, device_code).await?
        }),
        _ => return Err(FlowError::OAuth(OAuthError::new(ErrorCode::UnsupportedGrantType)).into()),
    };
    services.metrics().token_issued(grant);
    Ok(issued)
}

/// Parameters that are secrets and must come in the body (RFC 6749 section
/// 2.3.1 and 3.2): a query string ends up in access logs and histories.
const BODY_ONLY: &[&str] = &[
    "client_secret",
    "password",
    "refresh_token",
    "code",
    "code_verifier",
    "device_code",
    "token",
];

/// The endpoints clients authenticate to refuse secrets in their query
/// string (`invalid_request`), stricter than Doorkeeper, which takes them
/// from the query too. Extract it first in every such handler.
pub struct NoSecretsInQuery;

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for NoSecretsInQuery {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        let Some(q) = parts.uri.query() else {
            return Ok(Self);
        };
        match form_urlencoded::parse(q.as_bytes()).find(|(k, _)| BODY_ONLY.contains(&k.as_ref())) {
            None => Ok(Self),
            Some((k, _)) => Err(OAuthResponse(OAuthError::with(
                ErrorCode::InvalidRequest,
                format!("The {k} parameter must be sent in the request body, never in the query string."),
            ))
            .into_response()),
        }
    }
}

#[utoipa::path(
    post,
    path = "/oauth/token",
    tag = "oauth",
    summary = "The token endpoint (RFC 6749 section 3.2)",
    request_body(content((crate::http::openapi::schemas::TokenRequest = "application/x-www-form-urlencoded"), (crate::http::openapi::schemas::TokenRequest = "application/json"))),
    responses(
        (status = 200, description = "The tokens", body = TokenBody)
    )
)]
pub async fn token(
    State(state): State<AppState>,
    _: NoSecretsInQuery,
    headers: HeaderMap,
    params: Params,
) -> Response {
    match token_inner(&state, &headers, &params).await {
        Ok(t) => token_success(&t),
        Err(TokenFailure::Flow(e)) => flow_error(e),
        Err(TokenFailure::Limited(limited)) => too_many_requests("/oauth/token", limited),
    }
}

/// RFC 7009. Answers 200 `{}` for unknown tokens too.
#[utoipa::path(
    post,
    path = "/oauth/revoke",
    tag = "oauth",
    summary = "Revoke a token (RFC 7009)",
    request_body(content((crate::http::openapi::schemas::TokenHint = "application/x-www-form-urlencoded"), (crate::http::openapi::schemas::TokenHint = "application/json"))),
    responses(
        (status = 200, description = "Revoked, or unknown", body = crate::http::openapi::schemas::Empty),
        (status = 403, description = "unauthorized_client: no client authenticated", body = crate::http::openapi::schemas::OAuthErrorBody)
    )
)]
pub async fn revoke(
    State(state): State<AppState>,
    _: NoSecretsInQuery,
    headers: HeaderMap,
    params: Params,
) -> Response {
    let result = async {
        let client = authenticated_client(&state, &headers, &params).await?;
        let token = require(&params, "token")?;
        let Some(client) = client else {
            return Err(FlowError::OAuth(OAuthError::with(
                ErrorCode::UnauthorizedClient,
                "You are not authorized to revoke this token",
            )));
        };
        let ctx = super::request_id::context(None, Via::Client);
        state.services.revoke_oauth(&ctx, &client, token).await
    }
    .await;
    match result {
        Ok(()) => Json(json!({})).into_response(),
        Err(FlowError::OAuth(e)) if e.code == ErrorCode::UnauthorizedClient => (
            StatusCode::FORBIDDEN,
            Json(json!({"error": e.code.as_str(), "error_description": e.description})),
        )
            .into_response(),
        Err(e) => flow_error(e),
    }
}

pub(crate) fn bearer_or_param<'a>(headers: &'a HeaderMap, params: &'a Params) -> Option<&'a str> {
    super::auth::bearer(headers).or_else(|| params.get_str("access_token"))
}

/// The live OAuth access token `token`, or the `invalid_token` answer.
pub(crate) async fn live_token(
    state: &AppState,
    token: Option<&str>,
) -> Result<OAuthTokenFound, Response> {
    let invalid = || OAuthResponse(OAuthError::new(ErrorCode::InvalidToken)).into_response();
    let token = token.ok_or_else(invalid)?;
    match state.services.use_oauth_token(token).await {
        // A blocked user's tokens get nothing outside /api/v4 either.
        Ok(Some(Ok(found))) if found.owner_may_act() => Ok(found),
        Ok(_) => Err(invalid()),
        Err(e) => Err(internal(e.into())),
    }
}

/// Doorkeeper's token info, with GitLab's deprecated aliases.
#[utoipa::path(
    get,
    path = "/oauth/token/info",
    tag = "oauth",
    summary = "Doorkeeper's token info",
    params(("access_token" = Option<String>, Query, description = "The token, instead of `Authorization: Bearer`")),
    responses(
        (status = 200, description = "The token's info", body = crate::http::openapi::schemas::TokenInfo)
    )
)]
pub async fn token_info(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Params,
) -> Response {
    let found = match live_token(&state, bearer_or_param(&headers, &params)).await {
        Ok(f) => f,
        Err(answer) => return answer,
    };
    let now_s = state.services.now_ms() / 1000;
    let expires_in = (found.token.expires_at / 1000 - now_s).max(0);
    let scopes = found.token.scopes.as_slice();
    Json(json!({
        "resource_owner_id": found.token.user_id,
        "scope": scopes,
        "expires_in": expires_in,
        "application": {"uid": found.application.application_id},
        "created_at": found.token.created_at / 1000,
        "scopes": scopes,
        "expires_in_seconds": expires_in,
    }))
    .into_response()
}

/// RFC 7662. The caller authenticates as a client (or with a live access
/// token) and may introspect only its own application's tokens.
#[utoipa::path(
    post,
    path = "/oauth/introspect",
    tag = "oauth",
    summary = "Introspect a token (RFC 7662)",
    request_body(content((crate::http::openapi::schemas::TokenHint = "application/x-www-form-urlencoded"), (crate::http::openapi::schemas::TokenHint = "application/json"))),
    responses(
        (status = 200, description = "What the token is", body = crate::http::openapi::schemas::Introspection)
    )
)]
pub async fn introspect(
    State(state): State<AppState>,
    _: NoSecretsInQuery,
    headers: HeaderMap,
    params: Params,
) -> Response {
    let caller_app = match client_credentials(&headers, &params) {
        Err(e) => return OAuthResponse(e).into_response(),
        Ok(Some((id, secret))) => match state
            .services
            .authenticate_client(&id, secret.as_deref())
            .await
        {
            Ok(app) => app,
            Err(e) => return flow_error(e),
        },
        Ok(None) => match bearer_or_param(&headers, &params) {
            Some(t) => match live_token(&state, Some(t)).await {
                Ok(f) => f.application,
                Err(answer) => return answer,
            },
            None => {
                return OAuthResponse(OAuthError::new(ErrorCode::InvalidClient)).into_response()
            }
        },
    };
    let Some(token) = params.get_str("token") else {
        return OAuthResponse(OAuthError::missing("token")).into_response();
    };
    let found = match state.services.find_oauth_token(token).await {
        Ok(f) => f,
        Err(e) => return internal(e),
    };
    let now = state.services.now_ms();
    let body = match found {
        Some(f) if latchkey_core::access::introspection_shows(&f, &caller_app, now) => {
            let mut v = json!({
                "active": true,
                "scope": f.token.scopes.joined(),
                "client_id": f.application.application_id,
                "token_type": "Bearer",
                "exp": f.token.expires_at / 1000,
                "iat": f.token.created_at / 1000,
            });
            if let (Some(user), Some(obj)) = (&f.user, v.as_object_mut()) {
                obj.insert("sub".to_owned(), json!(user.id.to_string()));
                obj.insert("username".to_owned(), json!(user.username));
            }
            v
        }
        _ => json!({"active": false}),
    };
    Json(body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use proptest::prelude::*;

    fn basic(raw: &str) -> Result<Option<(String, Option<String>)>, OAuthError> {
        let mut h = HeaderMap::new();
        if let Ok(v) = HeaderValue::from_str(raw) {
            h.insert(header::AUTHORIZATION, v);
        }
        client_credentials(&h, &Params::default())
    }

    fn form_encode(s: &str) -> String {
        form_urlencoded::byte_serialize(s.as_bytes()).collect()
    }

    proptest! {
        /// RFC 6749 section 2.3.1: each part form-urlencoded, then base64.
        #[test]
        fn basic_credentials_round_trip(id in "[^\\x00]{1,40}", secret in "[^\\x00]{0,60}") {
            let encoded = base64::engine::general_purpose::STANDARD
                .encode(format!("{}:{}", form_encode(&id), form_encode(&secret)));
            let got = basic(&format!("Basic {encoded}")).unwrap();
            let want_secret = Some(secret).filter(|s| !s.is_empty());
            prop_assert_eq!(got, Some((id, want_secret)));
        }

        #[test]
        fn any_authorization_header_parses_or_fails_cleanly(raw in any::<String>()) {
            let _ = basic(&raw);
            let _ = basic(&format!("Basic {raw}"));
        }
    }
}
