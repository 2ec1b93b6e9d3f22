//! `/api/v4/groups/:id/applications`: GitLab's Group Applications API
//! (GitLab 19.6). Its source was not available to read; it mirrors the
//! user applications API, as GitLab's documentation describes it: the
//! group's Owners (and administrators) only; `PUT` changes `name` and
//! `scopes` only; the same entities and errors.

use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use latchkey_core::application::{Application, Ownership};
use latchkey_core::group::Group;

use super::applications::{
    apply_changes, create_params, created_with_secret, name_and_scopes, not_found,
    ApplicationEntity,
};
use super::auth::{authenticate, Caller, Need};
use super::errors::ApiError;
use super::groups::visible_group;
use super::params::{parse_id, Params};
use super::secrets;
use super::{pagination, AppState};

/// The group, if the caller may see it (else 404) and administer it
/// (else 403).
async fn administered(state: &AppState, caller: &Caller, raw: &str) -> Result<Group, ApiError> {
    let (group, role) = visible_group(state, Some(caller), raw).await?;
    if role.may_administer() {
        Ok(group)
    } else {
        Err(ApiError::Forbidden(None))
    }
}

/// One of the group's applications (404 for another's).
async fn application(
    state: &AppState,
    group: &Group,
    raw_id: &str,
) -> Result<Application, ApiError> {
    let id = parse_id(raw_id)?.ok_or(ApiError::NotFound("Application"))?;
    state
        .services
        .find_application(id, Ownership::Group(group.id))
        .await
        .map_err(not_found)
}

#[utoipa::path(
    post,
    path = "/api/v4/groups/{id}/applications",
    tag = "group_applications",
    summary = "Create a group application",
    params(("id" = String, Path, description = "The group's id or URL-encoded full path")),
    request_body(content((crate::http::openapi::schemas::ApplicationCreate = "application/json"), (crate::http::openapi::schemas::ApplicationCreate = "application/x-www-form-urlencoded"))),
    responses(
        (status = 201, description = "The application, with its secret (shown once)", body = ApplicationEntity)
    )
)]
pub async fn create(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    params: Params,
) -> Result<Response, ApiError> {
    let caller = authenticate(&state, &headers, &params, Need::Write).await?;
    let input = create_params(&params)?;
    let group = administered(&state, &caller, &id).await?;
    let (app, secret) = state
        .services
        .create_group_application(&caller.context(), group.id, &input)
        .await
        .map_err(|e| match e {
            // The group was deleted meanwhile.
            latchkey_core::service::ServiceError::Store(latchkey_core::StoreError::Gone) => {
                ApiError::NotFound("Group")
            }
            other => other.into(),
        })?;
    Ok(created_with_secret(&app, secret.expose()))
}

#[utoipa::path(
    get,
    path = "/api/v4/groups/{id}/applications",
    tag = "group_applications",
    summary = "List a group's applications",
    params(("id" = String, Path, description = "The group's id or URL-encoded full path"), crate::http::openapi::schemas::Pagination),
    responses(
        (status = 200, description = "The applications", body = Vec<ApplicationEntity>)
    )
)]
pub async fn list(
    State(state): State<AppState>,
    Path(id): Path<String>,
    method: Method,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    params: Params,
) -> Result<Response, ApiError> {
    let caller = authenticate(&state, &headers, &params, Need::for_method(&method)).await?;
    let group = administered(&state, &caller, &id).await?;
    let req = pagination::request(&params);
    let (apps, total) = state
        .services
        .list_group_applications(group.id, req)
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

#[utoipa::path(
    get,
    path = "/api/v4/groups/{id}/applications/{application_id}",
    tag = "group_applications",
    summary = "A group application",
    params(("id" = String, Path, description = "The group's id or URL-encoded full path"), ("application_id" = i64, Path, description = "The application's id")),
    responses(
        (status = 200, description = "The application", body = ApplicationEntity)
    )
)]
pub async fn get(
    State(state): State<AppState>,
    Path((id, application_id)): Path<(String, String)>,
    method: Method,
    headers: HeaderMap,
    params: Params,
) -> Result<Response, ApiError> {
    let caller = authenticate(&state, &headers, &params, Need::for_method(&method)).await?;
    let group = administered(&state, &caller, &id).await?;
    let app = application(&state, &group, &application_id).await?;
    Ok(Json(ApplicationEntity::new(&app, None)).into_response())
}

/// Only `name` and `scopes` change; `redirect_uri` and `confidential` are
/// immutable and ignored, as in the user applications API.
#[utoipa::path(
    put,
    path = "/api/v4/groups/{id}/applications/{application_id}",
    tag = "group_applications",
    summary = "Change a group application",
    params(("id" = String, Path, description = "The group's id or URL-encoded full path"), ("application_id" = i64, Path, description = "The application's id")),
    request_body(content((crate::http::openapi::schemas::OwnedApplicationUpdate = "application/json"), (crate::http::openapi::schemas::OwnedApplicationUpdate = "application/x-www-form-urlencoded"))),
    responses(
        (status = 200, description = "The application", body = ApplicationEntity)
    )
)]
pub async fn update(
    State(state): State<AppState>,
    Path((id, application_id)): Path<(String, String)>,
    headers: HeaderMap,
    params: Params,
) -> Result<Response, ApiError> {
    let caller = authenticate(&state, &headers, &params, Need::Write).await?;
    let mut errors = Vec::new();
    let changes = name_and_scopes(&params, &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::Params(errors));
    }
    let group = administered(&state, &caller, &id).await?;
    let app = application(&state, &group, &application_id).await?;
    apply_changes(&state, &caller, app.id, &changes).await
}

#[utoipa::path(
    delete,
    path = "/api/v4/groups/{id}/applications/{application_id}",
    tag = "group_applications",
    summary = "Delete a group application",
    params(("id" = String, Path, description = "The group's id or URL-encoded full path"), ("application_id" = i64, Path, description = "The application's id")),
    responses(
        (status = 204, description = "Deleted")
    )
)]
pub async fn delete(
    State(state): State<AppState>,
    Path((id, application_id)): Path<(String, String)>,
    headers: HeaderMap,
    params: Params,
) -> Result<Response, ApiError> {
    let caller = authenticate(&state, &headers, &params, Need::Write).await?;
    let group = administered(&state, &caller, &id).await?;
    let app = application(&state, &group, &application_id).await?;
    state
        .services
        .delete_application(&caller.context(), app.id, Ownership::Group(group.id))
        .await
        .map_err(not_found)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// A group's applications, for the group's Owners.
#[async_trait::async_trait]
impl secrets::Finder for secrets::GroupApps {
    async fn find(
        state: &AppState,
        headers: &HeaderMap,
        params: &Params,
        ids: &[String],
        need: Need,
    ) -> Result<(Caller, secrets::Found), ApiError> {
        let caller = authenticate(state, headers, params, need).await?;
        let group = administered(state, &caller, secrets::nth(ids, 0)).await?;
        let app = application(state, &group, secrets::nth(ids, 1)).await?;
        let found = secrets::Found {
            app,
            scope: Ownership::Group(group.id),
        };
        Ok((caller, found))
    }
}
