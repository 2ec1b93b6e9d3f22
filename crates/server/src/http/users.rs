//! `/api/v4/users`: GitLab's Users API (the parts latchkey needs to be
//! scriptable). Administrators see and change everything; other users see
//! the basic entity of users.

use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use latchkey_core::secret;
use latchkey_core::service::ServiceError;
use latchkey_core::store::StoreError;
use latchkey_core::user::{User, UserFilter, UserState};
use latchkey_core::user::{UserChanges, UserInput};
use serde::Serialize;
use serde_json::json;

use super::auth::{authenticate, authenticate_admin, is_admin, may_manage, Need};
use super::errors::ApiError;
use super::meta::UserEntity;
use super::params::{parse_id, Params, StrParam};
use super::{pagination, AppState};

/// GitLab's `UserBasic`: what anyone signed in may see of a user.
#[derive(Debug, Serialize)]
pub struct UserBasicEntity<'a> {
    pub id: i64,
    pub username: &'a str,
    pub public_email: Option<&'a str>,
    pub name: &'a str,
    pub state: &'static str,
    pub locked: bool,
    pub avatar_url: Option<&'a str>,
    pub web_url: String,
}

impl<'a> UserBasicEntity<'a> {
    fn new(u: &'a User, external_url: &str) -> Self {
        Self {
            id: u.id,
            username: &u.username,
            public_email: None,
            name: &u.name,
            state: u.state.as_str(),
            locked: false,
            avatar_url: None,
            web_url: format!("{}/{}", external_url.trim_end_matches('/'), u.username),
        }
    }
}

fn user_not_found(e: ServiceError) -> ApiError {
    match e {
        ServiceError::NotFound => ApiError::NotFound("User"),
        // GitLab answers a taken username or email with 409.
        ServiceError::Store(StoreError::Conflict(what)) => ApiError::Conflict(conflict_text(&what)),
        other => other.into(),
    }
}

fn conflict_text(column: &str) -> String {
    let field = match column {
        "email" => "Email",
        "username" => "Username",
        other => other,
    };
    format!("{field} has already been taken")
}

pub async fn list(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    params: Params,
) -> Result<Response, ApiError> {
    let caller = authenticate(&state, &headers, &params, Need::for_method(&method)).await?;
    // As GitLab: only administrators find users by their (private) email.
    let filter = UserFilter {
        username: params.get_str("username").map(str::to_owned),
        search: params.get_str("search").map(str::to_owned),
        search_emails: is_admin(&state, &caller),
    };
    let req = pagination::request(&params);
    let (users, total) = state.services.list_users(&filter, req).await?;
    let url = &state.external_url;
    if is_admin(&state, &caller) {
        let items: Vec<UserEntity<'_>> = users.iter().map(|u| UserEntity::new(u, url)).collect();
        Ok(pagination::respond(&items, req, total, url, &uri))
    } else {
        let items: Vec<UserBasicEntity<'_>> =
            users.iter().map(|u| UserBasicEntity::new(u, url)).collect();
        Ok(pagination::respond(&items, req, total, url, &uri))
    }
}

pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
    method: Method,
    headers: HeaderMap,
    params: Params,
) -> Result<Response, ApiError> {
    let caller = authenticate(&state, &headers, &params, Need::for_method(&method)).await?;
    let id = parse_id(&id)?.ok_or(ApiError::NotFound("User"))?;
    let user = state
        .services
        .find_user(id)
        .await?
        .ok_or(ApiError::NotFound("User"))?;
    let url = &state.external_url;
    if may_manage(&state, &caller, Some(user.id)) {
        Ok(Json(UserEntity::new(&user, url)).into_response())
    } else {
        Ok(Json(UserBasicEntity::new(&user, url)).into_response())
    }
}

pub async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Params,
) -> Result<Response, ApiError> {
    let caller = authenticate_admin(&state, &headers, &params, Need::Write).await?;
    let mut errors = Vec::new();
    let required = |key: &str, errors: &mut Vec<String>| match params.string(key) {
        StrParam::Missing => {
            errors.push(format!("{key} is missing"));
            None
        }
        StrParam::Invalid => {
            errors.push(format!("{key} is invalid"));
            None
        }
        StrParam::Null => Some(String::new()),
        StrParam::Value(v) => Some(v),
    };
    let email = required("email", &mut errors);
    let password = params.optional_string("password", &mut errors);
    let reset = params
        .optional_bool("reset_password", &mut errors)
        .unwrap_or(false);
    let random = params
        .optional_bool("force_random_password", &mut errors)
        .unwrap_or(false);
    if password.is_none() && !reset && !random {
        errors.push("password, reset_password, force_random_password are missing, at least one parameter must be provided".to_owned());
    }
    let name = required("name", &mut errors);
    let username = required("username", &mut errors);
    let admin = params.optional_bool("admin", &mut errors).unwrap_or(false);
    let (Some(email), Some(name), Some(username)) = (email, name, username) else {
        return Err(ApiError::Params(errors));
    };
    if !errors.is_empty() {
        return Err(ApiError::Params(errors));
    }
    // reset_password / force_random_password: a random password nobody
    // knows (latchkey sends no mail); an admin can set one later.
    let password = match password {
        Some(p) => p,
        None => secret::random_hex(24)
            .map_err(|e| ApiError::Internal(latchkey_core::error::cause(e)))?,
    };
    let input = UserInput {
        username,
        email,
        name,
        password: Some(password.into()),
        admin,
    };
    let user = state
        .services
        .create_user(&caller.context(), &input)
        .await
        .map_err(user_not_found)?;
    Ok((
        StatusCode::CREATED,
        Json(UserEntity::new(&user, &state.external_url)),
    )
        .into_response())
}

pub async fn update(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    params: Params,
) -> Result<Response, ApiError> {
    let caller = authenticate_admin(&state, &headers, &params, Need::Write).await?;
    let id = parse_id(&id)?.ok_or(ApiError::NotFound("User"))?;
    let mut errors = Vec::new();
    let changes = UserChanges {
        email: params.optional_string("email", &mut errors),
        name: params.optional_string("name", &mut errors),
        username: params.optional_string("username", &mut errors),
        password: params
            .optional_string("password", &mut errors)
            .map(Into::into),
        admin: params.optional_bool("admin", &mut errors),
    };
    if !errors.is_empty() {
        return Err(ApiError::Params(errors));
    }
    let user = state
        .services
        .update_user(&caller.context(), id, &changes)
        .await
        .map_err(user_not_found)?;
    Ok(Json(UserEntity::new(&user, &state.external_url)).into_response())
}

pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    params: Params,
) -> Result<Response, ApiError> {
    let caller = authenticate_admin(&state, &headers, &params, Need::Write).await?;
    let id = parse_id(&id)?.ok_or(ApiError::NotFound("User"))?;
    state
        .services
        .delete_user(&caller.context(), id)
        .await
        .map_err(user_not_found)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn set_state(
    state: AppState,
    id: String,
    headers: HeaderMap,
    params: Params,
    to: UserState,
) -> Result<Response, ApiError> {
    let caller = authenticate_admin(&state, &headers, &params, Need::Write).await?;
    let id = parse_id(&id)?.ok_or(ApiError::NotFound("User"))?;
    let changed = state
        .services
        .set_user_state(&caller.context(), id, to)
        .await
        .map_err(user_not_found)?;
    // GitLab: blocking a blocked user answers `null` (its `break if
    // user.blocked?`), unblocking an active one `false` (its state machine
    // refuses the transition); a change answers `true`.
    let body = match (changed, to) {
        (true, _) => json!(true),
        (false, UserState::Blocked) => serde_json::Value::Null,
        (false, UserState::Active) => json!(false),
    };
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

pub async fn block(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    params: Params,
) -> Result<Response, ApiError> {
    set_state(state, id, headers, params, UserState::Blocked).await
}

pub async fn unblock(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    params: Params,
) -> Result<Response, ApiError> {
    set_state(state, id, headers, params, UserState::Active).await
}
