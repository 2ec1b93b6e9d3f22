//! OpenID Connect and friends: discovery (OIDC and RFC 8414), the JWKS,
//! UserInfo, the device authorization endpoint (RFC 8628) and dynamic
//! client registration (RFC 7591, RFC 7592).

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use latchkey_core::oauth::{ErrorCode, OAuthError};
use latchkey_core::oauth_flows::FlowError;
use latchkey_core::registration::{ClientMetadata, Registered, RegistrationMode};
use latchkey_core::scopes::GITLAB_SCOPES;
use serde_json::{json, Value};

use latchkey_core::context::{Context, Via};

use super::errors::OAuthResponse;
use super::oauth::{
    authenticated_client, bearer_or_param, flow_error, internal, live_token, NoSecretsInQuery,
    DEVICE_GRANT,
};
use super::params::{Params, Value as ParamValue};
use super::AppState;

fn url(state: &AppState, path: &str) -> String {
    format!("{}{path}", state.external_url)
}

/// `/.well-known/openid-configuration` and `/.well-known/oauth-authorization-server`.
pub async fn discovery(State(state): State<AppState>) -> Response {
    let scopes: Vec<&str> = state
        .services
        .config()
        .scopes
        .names()
        .iter()
        .map(String::as_str)
        .collect();
    let mut doc = json!({
        "issuer": state.external_url.as_ref(),
        "authorization_endpoint": url(&state, "/oauth/authorize"),
        "token_endpoint": url(&state, "/oauth/token"),
        "revocation_endpoint": url(&state, "/oauth/revoke"),
        "introspection_endpoint": url(&state, "/oauth/introspect"),
        "userinfo_endpoint": url(&state, "/oauth/userinfo"),
        "jwks_uri": url(&state, "/oauth/discovery/keys"),
        "device_authorization_endpoint": url(&state, "/oauth/authorize_device"),
        "scopes_supported": if scopes.is_empty() { GITLAB_SCOPES.to_vec() } else { scopes },
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "password", "client_credentials", "device_code", DEVICE_GRANT, "refresh_token"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "claim_types_supported": ["normal"],
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "name", "nickname",
            "preferred_username", "email", "email_verified", "website", "profile", "groups",
            "groups_direct", "https://gitlab.org/claims/groups/owner",
            "https://gitlab.org/claims/groups/maintainer",
            "https://gitlab.org/claims/groups/developer"],
        "code_challenge_methods_supported": ["plain", "S256"],
        "authorization_response_iss_parameter_supported": true,
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
    });
    if state.services.config().dynamic_registration != RegistrationMode::Off {
        if let Some(obj) = doc.as_object_mut() {
            obj.insert(
                "registration_endpoint".into(),
                json!(url(&state, "/oauth/register")),
            );
        }
    }
    let mut res = Json(doc).into_response();
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    res
}

/// The JWKS: every active key and keys retired within a day.
#[utoipa::path(
    get,
    path = "/oauth/discovery/keys",
    tag = "oidc",
    summary = "The JSON Web Key Set",
    security(()),
    responses(
        (status = 200, description = "The signing keys", body = crate::http::openapi::schemas::Jwks)
    )
)]
pub async fn jwks(State(state): State<AppState>) -> Response {
    match state.services.published_keys().await {
        Ok(keys) => {
            let mut res = Json(latchkey_core::oidc::jwks(&keys)).into_response();
            res.headers_mut().insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=300"),
            );
            res
        }
        Err(e) => internal(e),
    }
}

/// OpenID Connect UserInfo (GET and POST), for tokens with `openid`.
#[utoipa::path(
    method(get, post),
    path = "/oauth/userinfo",
    tag = "oidc",
    summary = "OpenID Connect UserInfo",
    params(("access_token" = Option<String>, Query, description = "The token, instead of `Authorization: Bearer`")),
    responses(
        (status = 200, description = "The claims", body = crate::http::openapi::schemas::UserInfo),
        (status = 403, description = "insufficient_scope: the token has no openid", body = crate::http::openapi::schemas::OAuthErrorBody)
    )
)]
pub async fn userinfo(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Params,
) -> Response {
    let found = match live_token(&state, bearer_or_param(&headers, &params)).await {
        Ok(f) => f,
        Err(answer) => return answer,
    };
    match state.services.userinfo(&found).await {
        Ok(Some(claims)) => Json(Value::Object(claims)).into_response(),
        Ok(None) => OAuthResponse(OAuthError::new(ErrorCode::InsufficientScope)).into_response(),
        Err(e) => super::oauth::internal(e),
    }
}

/// RFC 8628 device authorization.
#[utoipa::path(
    post,
    path = "/oauth/authorize_device",
    tag = "oauth",
    summary = "Device authorization (RFC 8628)",
    request_body(content((crate::http::openapi::schemas::DeviceAuthorizationRequest = "application/x-www-form-urlencoded"), (crate::http::openapi::schemas::DeviceAuthorizationRequest = "application/json"))),
    responses(
        (status = 200, description = "The codes", body = crate::http::openapi::schemas::DeviceAuthorization)
    )
)]
pub async fn authorize_device(
    State(state): State<AppState>,
    _: NoSecretsInQuery,
    headers: HeaderMap,
    params: Params,
) -> Response {
    let result = async {
        let client = authenticated_client(&state, &headers, &params)
            .await?
            .ok_or(FlowError::OAuth(OAuthError::new(ErrorCode::InvalidClient)))?;
        state
            .services
            .authorize_device(&client, params.get_str("scope"))
            .await
    }
    .await;
    match result {
        Ok(d) => {
            let verification_uri = url(&state, "/oauth/device");
            let complete = format!("{verification_uri}?user_code={}", d.user_code);
            Json(json!({
                "device_code": d.device_code,
                "user_code": d.user_code,
                "verification_uri": verification_uri,
                "verification_uri_complete": complete,
                "expires_in": d.expires_in,
                "interval": d.interval,
            }))
            .into_response()
        }
        Err(e) => flow_error(e),
    }
}

// --- dynamic client registration ------------------------------------------------------

fn strings(params: &Params, key: &str) -> Option<Vec<String>> {
    match params.get(key) {
        Some(ParamValue::Array(items)) => Some(
            items
                .iter()
                .filter_map(|v| match v {
                    ParamValue::Str(s) => Some(s.clone()),
                    _ => None,
                })
                .collect(),
        ),
        Some(ParamValue::Str(s)) => Some(vec![s.clone()]),
        _ => None,
    }
}

fn metadata(params: &Params) -> ClientMetadata {
    ClientMetadata {
        client_name: params.get_str("client_name").map(str::to_owned),
        redirect_uris: strings(params, "redirect_uris").unwrap_or_default(),
        token_endpoint_auth_method: params
            .get_str("token_endpoint_auth_method")
            .map(str::to_owned),
        grant_types: strings(params, "grant_types"),
        scope: params.get_str("scope").map(str::to_owned),
    }
}

fn registration_body(state: &AppState, r: &Registered) -> Value {
    let app = &r.application;
    let redirect_uris: Vec<&str> = app.redirect_uri.split_whitespace().collect();
    let mut body = json!({
        "client_id": app.application_id,
        "client_id_issued_at": app.created_at / 1000,
        "client_name": app.name,
        "redirect_uris": redirect_uris,
        "grant_types": r.grant_types,
        "response_types": ["code"],
        "token_endpoint_auth_method": if app.confidential { "client_secret_basic" } else { "none" },
        "scope": app.scopes.joined(),
        "registration_client_uri": url(state, &format!("/oauth/register/{}", app.application_id)),
        "require_pkce": !app.confidential,
        "dynamic": true,
    });
    if let Some(obj) = body.as_object_mut() {
        if let Some(secret) = &r.client_secret {
            obj.insert("client_secret".into(), json!(secret.expose()));
            obj.insert("client_secret_expires_at".into(), json!(0));
        }
        if let Some(token) = &r.registration_access_token {
            obj.insert("registration_access_token".into(), json!(token.expose()));
        }
    }
    body
}

fn registration_error(e: FlowError) -> Response {
    match e {
        FlowError::OAuth(e) => {
            let status = match e.code {
                ErrorCode::InvalidToken => StatusCode::UNAUTHORIZED,
                ErrorCode::TemporarilyUnavailable => StatusCode::TOO_MANY_REQUESTS,
                _ => StatusCode::BAD_REQUEST,
            };
            (
                status,
                Json(json!({"error": e.code.as_str(), "error_description": e.description})),
            )
                .into_response()
        }
        other => flow_error(other),
    }
}

fn registration_disabled(state: &AppState) -> Option<Response> {
    (state.services.config().dynamic_registration == RegistrationMode::Off)
        .then(|| super::errors::ApiError::RouteNotFound.into_response())
}

/// RFC 7591 registration (when enabled).
#[utoipa::path(
    post,
    path = "/oauth/register",
    tag = "registration",
    summary = "Register a client (RFC 7591)",
    request_body(content((crate::http::openapi::schemas::ClientMetadata = "application/json"), (crate::http::openapi::schemas::ClientMetadata = "application/x-www-form-urlencoded"))),
    security(()),
    responses(
        (status = 201, description = "The client", body = crate::http::openapi::schemas::Registration),
        (status = 404, description = "Dynamic registration is off: `{\"error\": \"404 Not Found\"}`", body = crate::http::openapi::schemas::GitLabError),
        (status = 429, description = "temporarily_unavailable: too many registrations", body = crate::http::openapi::schemas::OAuthErrorBody)
    )
)]
pub async fn register(State(state): State<AppState>, params: Params) -> Response {
    if let Some(off) = registration_disabled(&state) {
        return off;
    }
    match state
        .services
        .register_client(
            &super::request_id::context(None, Via::Client),
            &metadata(&params),
        )
        .await
    {
        Ok(r) => (StatusCode::CREATED, Json(registration_body(&state, &r))).into_response(),
        Err(e) => registration_error(e),
    }
}

fn registration_token<'a>(
    headers: &'a HeaderMap,
    params: &'a Params,
) -> Result<&'a str, FlowError> {
    bearer_or_param(headers, params)
        .ok_or(FlowError::OAuth(OAuthError::new(ErrorCode::InvalidToken)))
}

/// RFC 7592: read, update or delete a registration with its access token.
#[utoipa::path(
    get,
    path = "/oauth/register/{client_id}",
    tag = "registration",
    summary = "Read a registration (RFC 7592)",
    params(("client_id" = String, Path, description = "The client's id")),
    responses(
        (status = 200, description = "The client", body = crate::http::openapi::schemas::Registration),
        (status = 404, description = "Dynamic registration is off: `{\"error\": \"404 Not Found\"}`", body = crate::http::openapi::schemas::GitLabError)
    )
)]
pub async fn read_registration(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
    headers: HeaderMap,
    params: Params,
) -> Response {
    if let Some(off) = registration_disabled(&state) {
        return off;
    }
    let result = async {
        let token = registration_token(&headers, &params)?;
        state.services.registered_client(&client_id, token).await
    }
    .await;
    match result {
        Ok(app) => {
            let r = Registered {
                grant_types: vec!["authorization_code".to_owned(), "refresh_token".to_owned()],
                application: app,
                client_secret: None,
                registration_access_token: None,
            };
            Json(registration_body(&state, &r)).into_response()
        }
        Err(e) => registration_error(e),
    }
}

#[utoipa::path(
    put,
    path = "/oauth/register/{client_id}",
    tag = "registration",
    summary = "Change a registration (RFC 7592)",
    params(("client_id" = String, Path, description = "The client's id")),
    request_body(content((crate::http::openapi::schemas::ClientMetadata = "application/json"), (crate::http::openapi::schemas::ClientMetadata = "application/x-www-form-urlencoded"))),
    responses(
        (status = 200, description = "The client", body = crate::http::openapi::schemas::Registration),
        (status = 404, description = "Dynamic registration is off: `{\"error\": \"404 Not Found\"}`", body = crate::http::openapi::schemas::GitLabError),
        (status = 429, description = "temporarily_unavailable: too many registrations", body = crate::http::openapi::schemas::OAuthErrorBody)
    )
)]
pub async fn update_registration(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
    headers: HeaderMap,
    params: Params,
) -> Response {
    if let Some(off) = registration_disabled(&state) {
        return off;
    }
    let result = async {
        let token = registration_token(&headers, &params)?;
        state
            .services
            .update_registration(&client_context(), &client_id, token, &metadata(&params))
            .await
    }
    .await;
    match result {
        Ok(r) => Json(registration_body(&state, &r)).into_response(),
        Err(e) => registration_error(e),
    }
}

#[utoipa::path(
    delete,
    path = "/oauth/register/{client_id}",
    tag = "registration",
    summary = "Delete a registration (RFC 7592)",
    params(("client_id" = String, Path, description = "The client's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "Dynamic registration is off: `{\"error\": \"404 Not Found\"}`", body = crate::http::openapi::schemas::GitLabError)
    )
)]
pub async fn delete_registration(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
    headers: HeaderMap,
    params: Params,
) -> Response {
    if let Some(off) = registration_disabled(&state) {
        return off;
    }
    let result = async {
        let token = registration_token(&headers, &params)?;
        state
            .services
            .delete_registration(&client_context(), &client_id, token)
            .await
    }
    .await;
    match result {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => registration_error(e),
    }
}

/// A client managing its own registration (RFC 7592), on this request.
fn client_context() -> Context {
    super::request_id::context(None, Via::Client)
}
