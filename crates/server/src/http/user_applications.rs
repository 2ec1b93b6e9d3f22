//! `/api/v4/user/applications`: applications owned by the caller.
//! The owner or an administrator may read, change and delete one (as the
//! issue and GitLab's API documentation say); anyone else gets 403.

use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use latchkey_core::application::{with_ropc, Application, Ownership};
use latchkey_core::service::ServiceError;
use latchkey_core::store::StoreError;

use super::applications::{
    apply_changes, create_params, created_with_secret, grant_types_param, name_and_scopes,
    not_found, ApplicationEntity,
};
use super::auth::{authenticate, may_manage, Caller, Need};
use super::errors::ApiError;
use super::params::{parse_id, Params};
use super::secrets;
use super::{pagination, AppState};

#[utoipa::path(
    post,
    path = "/api/v4/user/applications",
    tag = "user_applications",
    summary = "Create an application of your own",
    request_body(content((crate::http::openapi::schemas::ApplicationCreate = "application/json"), (crate::http::openapi::schemas::ApplicationCreate = "application/x-www-form-urlencoded"))),
    responses(
        (status = 201, description = "The application, with its secret (shown once)", body = ApplicationEntity)
    )
)]
pub async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Params,
) -> Result<Response, ApiError> {
    let caller = authenticate(&state, &headers, &params, Need::Write).await?;
    let input = create_params(&params)?;
    let (app, secret) = state
        .services
        .create_application(&caller.context(), Some(caller.user.id), &input)
        .await
        .map_err(|e| match e {
            // The caller was deleted meanwhile: a moment later their token
            // authenticates nobody.
            ServiceError::Store(StoreError::Gone) => ApiError::Unauthorized,
            other => other.into(),
        })?;
    Ok(created_with_secret(&app, secret.expose()))
}

#[utoipa::path(
    get,
    path = "/api/v4/user/applications",
    tag = "user_applications",
    summary = "List your applications",
    params(crate::http::openapi::schemas::Pagination),
    responses(
        (status = 200, description = "Your applications", body = Vec<ApplicationEntity>)
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
    let req = pagination::request(&params);
    let (apps, total) = state
        .services
        .list_owned_applications(caller.user.id, req)
        .await?;
    let entities: Vec<ApplicationEntity<'_>> = apps
        .iter()
        .map(|a| ApplicationEntity::new(a, None))
        .collect();
    Ok(pagination::respond(
        &entities,
        req,
        total,
        &state.external_url,
        &uri,
    ))
}

/// The application, if it exists (404) and the caller may manage it (403).
async fn authorized(
    state: &AppState,
    caller: &Caller,
    id: Option<i64>,
) -> Result<Application, ApiError> {
    let id = id.ok_or(ApiError::NotFound("Application"))?;
    let app = state
        .services
        .find_application(id, Ownership::Any)
        .await
        .map_err(not_found)?;
    if may_manage(state, caller, app.owner_id) {
        Ok(app)
    } else {
        Err(ApiError::Forbidden(None))
    }
}

#[utoipa::path(
    get,
    path = "/api/v4/user/applications/{id}",
    tag = "user_applications",
    summary = "One of your applications",
    params(("id" = i64, Path, description = "The application's id")),
    responses(
        (status = 200, description = "The application", body = ApplicationEntity)
    )
)]
pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
    method: Method,
    headers: HeaderMap,
    params: Params,
) -> Result<Response, ApiError> {
    let caller = authenticate(&state, &headers, &params, Need::for_method(&method)).await?;
    let id = parse_id(&id)?;
    let app = authorized(&state, &caller, id).await?;
    Ok(Json(ApplicationEntity::new(&app, None)).into_response())
}

/// Only `name` and `scopes` may change; `redirect_uri` and `confidential`
/// are immutable and ignored, as in GitLab.
#[utoipa::path(
    put,
    path = "/api/v4/user/applications/{id}",
    tag = "user_applications",
    summary = "Change one of your applications",
    params(("id" = i64, Path, description = "The application's id")),
    request_body(content((crate::http::openapi::schemas::OwnedApplicationUpdate = "application/json"), (crate::http::openapi::schemas::OwnedApplicationUpdate = "application/x-www-form-urlencoded"))),
    responses(
        (status = 200, description = "The application", body = ApplicationEntity)
    )
)]
pub async fn update(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    params: Params,
) -> Result<Response, ApiError> {
    let caller = authenticate(&state, &headers, &params, Need::Write).await?;
    let id = parse_id(&id);
    let mut errors = Vec::new();
    let mut changes = name_and_scopes(&params, &mut errors);
    // An extension of GitLab's user API: the grants the client may use.
    let grant_types = grant_types_param(&params, &mut errors);
    let ropc_enabled = params.optional_bool("ropc_enabled", &mut errors);
    let id = match id {
        Ok(id) => id,
        Err(ApiError::Params(mut id_errors)) => {
            id_errors.extend(errors);
            return Err(ApiError::Params(id_errors));
        }
        Err(other) => return Err(other),
    };
    if !errors.is_empty() {
        return Err(ApiError::Params(errors));
    }
    let app = authorized(&state, &caller, id).await?;
    changes.grant_types = with_ropc(grant_types, ropc_enabled, Some(&app));
    apply_changes(&state, &caller, app.id, &changes).await
}

#[utoipa::path(
    delete,
    path = "/api/v4/user/applications/{id}",
    tag = "user_applications",
    summary = "Delete one of your applications",
    params(("id" = i64, Path, description = "The application's id")),
    responses(
        (status = 204, description = "Deleted")
    )
)]
pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    params: Params,
) -> Result<Response, ApiError> {
    let caller = authenticate(&state, &headers, &params, Need::Write).await?;
    let id = parse_id(&id)?;
    let app = authorized(&state, &caller, id).await?;
    state
        .services
        .delete_application(&caller.context(), app.id, Ownership::Any)
        .await
        .map_err(not_found)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The caller's applications (or, for an administrator, anyone's).
#[async_trait::async_trait]
impl secrets::Finder for secrets::OwnApps {
    async fn find(
        state: &AppState,
        headers: &HeaderMap,
        params: &Params,
        ids: &[String],
        need: Need,
    ) -> Result<(Caller, secrets::Found), ApiError> {
        let caller = authenticate(state, headers, params, need).await?;
        let id = parse_id(secrets::nth(ids, 0))?;
        let app = authorized(state, &caller, id).await?;
        let found = secrets::Found {
            app,
            scope: Ownership::Any,
        };
        Ok((caller, found))
    }
}
