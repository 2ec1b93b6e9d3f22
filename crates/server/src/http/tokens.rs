//! Personal access tokens: GitLab's `/users/:id/personal_access_tokens`
//! and `/personal_access_tokens` APIs.

use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use latchkey_core::application::{scope_error_message, ValidationErrors};
use latchkey_core::clock::gitlab_timestamp;
use latchkey_core::scopes::{ScopeError, Scopes};
use latchkey_core::service::ServiceError;
use latchkey_core::store::StoreError;
use latchkey_core::token::{parse_expiry, PersonalAccessToken, TokenFilter};
use serde::Serialize;
use time::Date;

use super::auth::{authenticate, authenticate_admin, is_admin, may_manage, Caller, Need};
use super::errors::ApiError;
use super::params::{parse_id, Params, StrParam, Value};
use super::{pagination, AppState};

/// GitLab's `PersonalAccessToken` entity (`token` only when just made).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenEntity<'a> {
    pub id: i64,
    pub name: &'a str,
    pub revoked: bool,
    pub created_at: String,
    #[schema(required = true)]
    pub description: Option<&'a str>,
    pub scopes: &'a [String],
    pub user_id: i64,
    #[schema(required = true)]
    pub last_used_at: Option<String>,
    pub active: bool,
    #[schema(required = true)]
    pub expires_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub token: Option<&'a str>,
}

impl<'a> TokenEntity<'a> {
    pub fn new(t: &'a PersonalAccessToken, today: Date, token: Option<&'a str>) -> Self {
        Self {
            id: t.id,
            name: &t.name,
            revoked: t.revoked,
            created_at: gitlab_timestamp(t.created_at),
            description: None,
            scopes: t.scopes.as_slice(),
            user_id: t.user_id,
            last_used_at: t.last_used_at.map(gitlab_timestamp),
            active: !t.revoked && !t.is_expired(today),
            expires_at: t.expires_at.map(|d| d.to_string()),
            token,
        }
    }
}

fn token_not_found(e: ServiceError) -> ApiError {
    match e {
        ServiceError::NotFound => ApiError::NotFound("Personal Access Token"),
        other => other.into(),
    }
}

/// `expires_at`, a Grape `Date`: absent or empty is none.
fn expiry_param(params: &Params, errors: &mut Vec<String>) -> Option<Date> {
    match params.string("expires_at") {
        StrParam::Missing | StrParam::Null => None,
        StrParam::Value(v) if v.is_empty() => None,
        StrParam::Value(v) => parse_expiry(&v)
            .map_err(|_| errors.push("expires_at is invalid".to_owned()))
            .ok(),
        StrParam::Invalid => {
            errors.push("expires_at is invalid".to_owned());
            None
        }
    }
}

#[utoipa::path(
    post,
    path = "/api/v4/users/{id}/personal_access_tokens",
    tag = "personal_access_tokens",
    summary = "Create a personal access token for a user (administrators)",
    params(("id" = i64, Path, description = "The user's id")),
    request_body(content((crate::http::openapi::schemas::TokenCreate = "application/json"), (crate::http::openapi::schemas::TokenCreate = "application/x-www-form-urlencoded"))),
    responses(
        (status = 201, description = "The token, with its value (shown once)", body = TokenEntity)
    )
)]
pub async fn create_for_user(
    State(state): State<AppState>,
    Path(user_id): Path<String>,
    headers: HeaderMap,
    params: Params,
) -> Result<Response, ApiError> {
    let caller = authenticate_admin(&state, &headers, &params, Need::Write).await?;
    let user_id = parse_id(&user_id);
    let mut errors = Vec::new();
    if let Err(ApiError::Params(e)) = &user_id {
        errors.extend(e.iter().cloned());
    }
    let name = match params.string("name") {
        StrParam::Missing => {
            errors.push("name is missing".to_owned());
            None
        }
        StrParam::Invalid => {
            errors.push("name is invalid".to_owned());
            None
        }
        StrParam::Null => Some(String::new()),
        StrParam::Value(v) => Some(v),
    };
    // `scopes` is an Array[String]; a plain string of scopes is accepted too.
    let scopes: Option<Vec<String>> = match params.get("scopes") {
        None => {
            errors.push("scopes is missing".to_owned());
            None
        }
        Some(Value::Array(items)) => {
            let strs: Option<Vec<&str>> = items
                .iter()
                .map(|v| match v {
                    Value::Str(s) => Some(s.as_str()),
                    _ => None,
                })
                .collect();
            if strs.is_none() {
                errors.push("scopes is invalid".to_owned());
            }
            strs.map(Scopes::normalise_all)
        }
        Some(Value::Str(s)) => Some(Scopes::normalise(&s.replace(',', " "))),
        Some(_) => {
            errors.push("scopes is invalid".to_owned());
            None
        }
    };
    let mut too_long = None;
    if let Some(list) = &scopes {
        match Scopes::check(list.clone(), &state.services.config().scopes) {
            Ok(_) => {}
            Err(e @ (ScopeError::TooMany | ScopeError::TooLong)) => too_long = Some(e),
            Err(_) => errors.push("scopes does not have a valid value".to_owned()),
        }
    }
    let expires_at = expiry_param(&params, &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::Params(errors));
    }
    if let Some(e) = too_long {
        let mut v = ValidationErrors::default();
        v.add("scopes", scope_error_message(&e));
        return Err(ApiError::Validation(v));
    }
    let (Ok(user_id), Some(name), Some(scopes)) = (user_id, name, scopes) else {
        return Err(ApiError::Params(vec!["id is invalid".to_owned()]));
    };
    let user_id = user_id.ok_or(ApiError::NotFound("User"))?;
    state
        .services
        .check_token_grant(caller.token_actor(), &scopes)?;
    state
        .services
        .find_user(user_id)
        .await?
        .ok_or(ApiError::NotFound("User"))?;
    // As GitLab since 16.0: a token made without an expiry date gets the
    // longest lifetime allowed.
    let expires_at = expires_at.or(Some(state.services.max_token_expiry()));
    let (token, plaintext) = state
        .services
        .create_token(
            &caller.context(),
            user_id,
            &name,
            &scopes.join(" "),
            expires_at,
        )
        .await
        .map_err(|e| match e {
            // Deleted since it was found: as a moment later, 404.
            ServiceError::Store(StoreError::Gone) => ApiError::NotFound("User"),
            other => other.into(),
        })?;
    let today = state.services.today();
    Ok((
        StatusCode::CREATED,
        Json(TokenEntity::new(&token, today, Some(plaintext.expose()))),
    )
        .into_response())
}

#[utoipa::path(
    get,
    path = "/api/v4/personal_access_tokens",
    tag = "personal_access_tokens",
    summary = "List personal access tokens",
    params(crate::http::openapi::schemas::Pagination, ("user_id" = Option<i64>, Query, description = "Administrators: this user's tokens"), ("revoked" = Option<bool>, Query, description = "Revoked or not"), ("state" = Option<String>, Query, description = "`active` or `inactive`"), ("created_after" = Option<String>, Query, description = "ISO 8601 time"), ("created_before" = Option<String>, Query, description = "ISO 8601 time"), ("last_used_after" = Option<String>, Query, description = "ISO 8601 time"), ("last_used_before" = Option<String>, Query, description = "ISO 8601 time"), ("search" = Option<String>, Query, description = "In the name")),
    responses(
        (status = 200, description = "Tokens (never their values)", body = Vec<TokenEntity>)
    )
)]
pub async fn list(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    params: Params,
) -> Result<Response, ApiError> {
    let caller = authenticate(&state, &headers, &params, Need::for_method(&method)).await?;
    let user_filter = if is_admin(&state, &caller) {
        match params.get_str("user_id") {
            Some(raw) => Some(
                parse_id(raw)
                    .map_err(|_| ApiError::Params(vec!["user_id is invalid".to_owned()]))?
                    .unwrap_or(0),
            ),
            None => None,
        }
    } else {
        Some(caller.user.id)
    };
    let filter = token_filter(&params, user_filter)?;
    let req = pagination::request(&params);
    let (tokens, total) = state.services.list_tokens(&filter, req).await?;
    let today = state.services.today();
    let items: Vec<TokenEntity<'_>> = tokens
        .iter()
        .map(|t| TokenEntity::new(t, today, None))
        .collect();
    Ok(pagination::respond(
        &items,
        req,
        total,
        &state.external_url,
        &uri,
    ))
}

/// GitLab's filters of `GET /personal_access_tokens`, in declaration order.
fn token_filter(params: &Params, user_id: Option<i64>) -> Result<TokenFilter, ApiError> {
    let mut errors = Vec::new();
    let revoked = params.optional_bool("revoked", &mut errors);
    let active = match params.get_str("state") {
        None => None,
        Some("active") => Some(true),
        Some("inactive") => Some(false),
        Some(_) => {
            errors.push("state does not have a valid value".to_owned());
            None
        }
    };
    let created_before = params.optional_time("created_before", &mut errors);
    let created_after = params.optional_time("created_after", &mut errors);
    let last_used_before = params.optional_time("last_used_before", &mut errors);
    let last_used_after = params.optional_time("last_used_after", &mut errors);
    let search = params.optional_string("search", &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::Params(errors));
    }
    Ok(TokenFilter {
        user_id,
        active,
        revoked,
        today: None,
        created_after,
        created_before,
        last_used_after,
        last_used_before,
        search: search.filter(|s| !s.is_empty()),
    })
}

/// The token `raw` names (`self` is the caller's own), if the caller may
/// see it: their own, or any token for an administrator. Others are 404.
async fn visible_token(
    state: &AppState,
    caller: &Caller,
    raw: &str,
) -> Result<PersonalAccessToken, ApiError> {
    let id = if raw == "self" {
        caller
            .token_id
            .ok_or(ApiError::NotFound("Personal Access Token"))?
    } else {
        parse_id(raw)?.ok_or(ApiError::NotFound("Personal Access Token"))?
    };
    let token = state
        .services
        .find_token(id)
        .await?
        .ok_or(ApiError::NotFound("Personal Access Token"))?;
    if may_manage(state, caller, Some(token.user_id)) {
        Ok(token)
    } else {
        Err(ApiError::NotFound("Personal Access Token"))
    }
}

fn need_for(raw: &str, otherwise: Need) -> Need {
    if raw == "self" {
        Need::AnyScope
    } else {
        otherwise
    }
}

#[utoipa::path(
    get,
    path = "/api/v4/personal_access_tokens/{id}",
    tag = "personal_access_tokens",
    summary = "A personal access token",
    params(("id" = String, Path, description = "The token's id, or `self` for the token used")),
    responses(
        (status = 200, description = "The token", body = TokenEntity)
    )
)]
pub async fn get(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    method: Method,
    headers: HeaderMap,
    params: Params,
) -> Result<Response, ApiError> {
    let caller = authenticate(
        &state,
        &headers,
        &params,
        need_for(&raw, Need::for_method(&method)),
    )
    .await?;
    let token = visible_token(&state, &caller, &raw).await?;
    Ok(Json(TokenEntity::new(&token, state.services.today(), None)).into_response())
}

#[utoipa::path(
    delete,
    path = "/api/v4/personal_access_tokens/{id}",
    tag = "personal_access_tokens",
    summary = "Revoke a personal access token",
    params(("id" = String, Path, description = "The token's id, or `self` for the token used")),
    responses(
        (status = 204, description = "Revoked")
    )
)]
pub async fn revoke(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    headers: HeaderMap,
    params: Params,
) -> Result<Response, ApiError> {
    let caller = authenticate(&state, &headers, &params, need_for(&raw, Need::Write)).await?;
    let token = visible_token(&state, &caller, &raw).await?;
    state
        .services
        .revoke_token(&caller.context(), token.id)
        .await
        .map_err(token_not_found)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[utoipa::path(
    post,
    path = "/api/v4/personal_access_tokens/{id}/rotate",
    tag = "personal_access_tokens",
    summary = "Rotate a personal access token",
    params(("id" = String, Path, description = "The token's id, or `self` for the token used")),
    request_body(content((crate::http::openapi::schemas::TokenRotate = "application/json"), (crate::http::openapi::schemas::TokenRotate = "application/x-www-form-urlencoded"))),
    responses(
        (status = 200, description = "The new token, with its value (shown once)", body = TokenEntity)
    )
)]
pub async fn rotate(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    headers: HeaderMap,
    params: Params,
) -> Result<Response, ApiError> {
    let need = if raw == "self" {
        Need::SelfRotate
    } else {
        Need::Write
    };
    let caller = authenticate(&state, &headers, &params, need).await?;
    let mut errors = Vec::new();
    let expires_at = expiry_param(&params, &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::Params(errors));
    }
    let old = visible_token(&state, &caller, &raw).await?;
    let (token, plaintext) = state
        .services
        .rotate_token(&caller.context(), caller.token_actor(), &old, expires_at)
        .await
        .map_err(token_not_found)?;
    Ok(Json(TokenEntity::new(
        &token,
        state.services.today(),
        Some(plaintext.expose()),
    ))
    .into_response())
}
