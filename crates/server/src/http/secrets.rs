//! An application's secrets (an extension, for every applications API):
//! renewal with a grace period, the list, deleting one, and revoking
//! everything. Each API finds the application its own way (its
//! [`Finder`]); the routes and what they do are the same for all.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use latchkey_core::application::{Application, Ownership, Renewal, SecretDeletion, SecretInfo};
use latchkey_core::clock::gitlab_timestamp;
use serde::Serialize;

use super::applications::{not_found, ApplicationEntity};
use super::auth::{authenticate_admin, Caller, Need};
use super::errors::ApiError;
use super::params::{parse_id, Params};
use super::AppState;

/// An application an API route named, found and authorized by that API,
/// with the scope its changes are made in.
pub struct Found {
    pub app: Application,
    pub scope: Ownership,
}

/// How an applications API finds, and authorizes, the application its
/// route names; `ids` are the route's parameters before a secret's id.
#[async_trait::async_trait]
pub trait Finder: Send + Sync + 'static {
    async fn find(
        state: &AppState,
        headers: &HeaderMap,
        params: &Params,
        ids: &[String],
        need: Need,
    ) -> Result<(Caller, Found), ApiError>;
}

/// `/api/v4/applications/:id` (administrators).
pub struct InstanceApps;

#[async_trait::async_trait]
impl Finder for InstanceApps {
    async fn find(
        state: &AppState,
        headers: &HeaderMap,
        params: &Params,
        ids: &[String],
        need: Need,
    ) -> Result<(Caller, Found), ApiError> {
        let caller = authenticate_admin(state, headers, params, need).await?;
        let id = parse_id(nth(ids, 0))?.ok_or(ApiError::NotFound("Application"))?;
        let app = state
            .services
            .find_application(id, Ownership::Instance)
            .await
            .map_err(not_found)?;
        let found = Found {
            app,
            scope: Ownership::Instance,
        };
        Ok((caller, found))
    }
}

/// `/api/v4/user/applications/:id` (the owner, administrators).
pub struct OwnApps;
/// `/api/v4/groups/:id/applications/:application_id` (the group's Owners).
pub struct GroupApps;

/// The `n`th route parameter ("" if the route has fewer).
pub fn nth(ids: &[String], n: usize) -> &str {
    ids.get(n).map(String::as_str).unwrap_or("")
}

/// `POST …/renew-secret`.
pub async fn renew_route<F: Finder>(
    State(state): State<AppState>,
    Path(ids): Path<Vec<String>>,
    headers: HeaderMap,
    params: Params,
) -> Result<Response, ApiError> {
    let (caller, found) = F::find(&state, &headers, &params, &ids, Need::Write).await?;
    let renewal = renewal(&params)?;
    renew(&state, &caller, found, renewal).await
}

/// `GET …/secrets`.
pub async fn list_route<F: Finder>(
    State(state): State<AppState>,
    Path(ids): Path<Vec<String>>,
    method: Method,
    headers: HeaderMap,
    params: Params,
) -> Result<Response, ApiError> {
    let need = Need::for_method(&method);
    let (_, found) = F::find(&state, &headers, &params, &ids, need).await?;
    list(&state, found).await
}

/// `DELETE …/secrets/:secret_id`.
pub async fn delete_route<F: Finder>(
    State(state): State<AppState>,
    Path(ids): Path<Vec<String>>,
    headers: HeaderMap,
    params: Params,
) -> Result<Response, ApiError> {
    let Some((secret_id, owner_ids)) = ids.split_last() else {
        return Err(ApiError::RouteNotFound);
    };
    let (caller, found) = F::find(&state, &headers, &params, owner_ids, Need::Write).await?;
    delete(&state, &caller, found, secret_id).await
}

/// `POST …/revoke-all`.
pub async fn revoke_all_route<F: Finder>(
    State(state): State<AppState>,
    Path(ids): Path<Vec<String>>,
    headers: HeaderMap,
    params: Params,
) -> Result<Response, ApiError> {
    let (caller, found) = F::find(&state, &headers, &params, &ids, Need::Write).await?;
    revoke_all(&state, &caller, found).await
}

/// A secret as the list shows it: never its value.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SecretEntity<'a> {
    pub id: i64,
    pub created_at: String,
    #[schema(required = true)]
    pub expires_at: Option<String>,
    #[schema(required = true)]
    pub last_used_at: Option<String>,
    /// The value's last characters, to tell secrets apart.
    #[schema(required = true)]
    pub hint: Option<&'a str>,
}

impl<'a> SecretEntity<'a> {
    pub fn new(s: &'a SecretInfo) -> Self {
        Self {
            id: s.id,
            created_at: gitlab_timestamp(s.created_at),
            expires_at: s.expires_at.map(gitlab_timestamp),
            last_used_at: s.last_used_at.map(gitlab_timestamp),
            hint: s.hint.as_deref(),
        }
    }
}

/// GitLab's `ApplicationWithSecret`, and when the new secret expires (an
/// extension, only when it does).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct WithSecret<'a> {
    #[serde(flatten)]
    app: ApplicationEntity<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    secret_expires_at: Option<String>,
}

fn with_secret(app: &Application, secret: &str, info: &SecretInfo) -> Response {
    let body = WithSecret {
        app: ApplicationEntity::new(app, Some(secret)),
        secret_expires_at: info.expires_at.map(gitlab_timestamp),
    };
    (StatusCode::CREATED, Json(body)).into_response()
}

/// A positive number of seconds (`expires_in`, `secret_expires_in`).
fn seconds(params: &Params, key: &str, errors: &mut Vec<String>) -> Option<i64> {
    // Given but blank is a mistake (an unset shell variable), never "none":
    // taken as absent, it would kill every previous secret at once.
    if params.contains(key) && params.get_str(key).is_none() {
        errors.push(format!("{key} is empty"));
        return None;
    }
    let n = params.optional_int(key, errors)?;
    if n <= 0 {
        errors.push(format!("{key} does not have a valid value"));
        return None;
    }
    Some(n)
}

/// The renewal a request asks for: as GitLab's (every previous secret
/// dies at once) unless `expires_in` gives them a grace period;
/// `secret_expires_in` makes the new secret expire.
pub fn renewal(params: &Params) -> Result<Renewal, ApiError> {
    let mut errors = Vec::new();
    let grace_seconds = seconds(params, "expires_in", &mut errors);
    let lifetime_seconds = seconds(params, "secret_expires_in", &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::Params(errors));
    }
    Ok(Renewal {
        grace_seconds,
        lifetime_seconds,
    })
}

/// `POST …/renew-secret`: 201 with the new secret.
pub async fn renew(
    state: &AppState,
    caller: &Caller,
    found: Found,
    renewal: Renewal,
) -> Result<Response, ApiError> {
    let (app, secret, info) = state
        .services
        .renew_application_secret(&caller.context(), found.app.id, found.scope, renewal)
        .await
        .map_err(not_found)?;
    Ok(with_secret(&app, secret.expose(), &info))
}

/// `GET …/secrets`: the live secrets, oldest first.
pub async fn list(state: &AppState, found: Found) -> Result<Response, ApiError> {
    let secrets = state.services.application_secrets(found.app.id).await?;
    let items: Vec<SecretEntity<'_>> = secrets.iter().map(SecretEntity::new).collect();
    Ok(Json(items).into_response())
}

/// `DELETE …/secrets/:secret_id`: 204; never the last live secret (409).
pub async fn delete(
    state: &AppState,
    caller: &Caller,
    found: Found,
    secret_id: &str,
) -> Result<Response, ApiError> {
    let secret_id = parse_id(secret_id)?.ok_or(ApiError::NotFound("Secret"))?;
    match state
        .services
        .delete_application_secret(&caller.context(), &found.app, secret_id)
        .await?
    {
        SecretDeletion::Deleted => Ok(StatusCode::NO_CONTENT.into_response()),
        SecretDeletion::NotFound => Err(ApiError::NotFound("Secret")),
        SecretDeletion::LastLive => Err(ApiError::Conflict(
            "This is the application's last live secret: renew it, or revoke all".to_owned(),
        )),
    }
}

/// `POST …/revoke-all`: every secret, grant and token dies; 201 with a
/// fresh secret.
pub async fn revoke_all(
    state: &AppState,
    caller: &Caller,
    found: Found,
) -> Result<Response, ApiError> {
    let (app, secret, info) = state
        .services
        .revoke_all_of_application(&caller.context(), found.app.id, found.scope)
        .await
        .map_err(not_found)?;
    Ok(with_secret(&app, secret.expose(), &info))
}
