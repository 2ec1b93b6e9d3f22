//! `/api/v4/applications`: GitLab's instance-wide (admin) Applications API.

use axum::body::Body;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use futures::StreamExt;
use latchkey_core::application::ApplicationChanges;
use latchkey_core::application::{
    checked_grant_types, with_ropc, Application, ApplicationParams, Ownership,
};
use latchkey_core::error::Chain;
use latchkey_core::service::ServiceError;
use serde::Serialize;

use super::auth::{authenticate_admin, Need};
use super::errors::ApiError;
use super::params::{parse_id, BoolParam, Params, Value};
use super::{pagination, AppState};

/// GitLab's `Application` entity (and `ApplicationWithSecret` when
/// `secret` is set), fields in GitLab's order.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ApplicationEntity<'a> {
    pub id: i64,
    pub application_id: &'a str,
    pub application_name: &'a str,
    pub callback_url: &'a str,
    pub confidential: bool,
    pub scopes: &'a [String],
    /// An extension: shown only for trusted applications (which skip consent).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub trusted: bool,
    /// An extension: the grants the client may use at the token endpoint,
    /// shown only for an application limited to some (others may use all,
    /// and keep GitLab's entity exactly).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub grant_types: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub secret: Option<&'a str>,
}

impl<'a> ApplicationEntity<'a> {
    pub fn new(app: &'a Application, secret: Option<&'a str>) -> Self {
        Self {
            id: app.id,
            application_id: &app.application_id,
            application_name: &app.name,
            callback_url: &app.redirect_uri,
            confidential: app.confidential,
            scopes: app.scopes.as_slice(),
            trusted: app.trusted,
            grant_types: app.grant_types.as_deref(),
            secret,
        }
    }
}

/// Grape's checks of the create parameters, in declaration order.
pub fn create_params(params: &Params) -> Result<ApplicationParams, ApiError> {
    let mut errors: Vec<String> = Vec::new();
    let name = params.required_string("name", &mut errors);
    let redirect_uri = params.required_string("redirect_uri", &mut errors);
    let scopes = if params.contains("scopes") {
        params.optional_nonblank_string("scopes", &mut errors)
    } else {
        errors.push("scopes is missing".to_owned());
        errors.push("scopes is empty".to_owned());
        None
    };
    let confidential = match params.boolean("confidential") {
        BoolParam::Default => true,
        BoolParam::Value(b) => b,
        BoolParam::Invalid => {
            errors.push("confidential is invalid".to_owned());
            true
        }
    };
    let grant_types = grant_types_param(params, &mut errors);
    let ropc_enabled = params.optional_bool("ropc_enabled", &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::Params(errors));
    }
    Ok(ApplicationParams {
        name,
        redirect_uri,
        scopes,
        confidential,
        grant_types: with_ropc(grant_types, ropc_enabled, None),
    })
}

/// An extension: `grant_types`, an array (`grant_types[]=…`, JSON) or a
/// space- or comma-separated string of the grants the client may use
/// (see `application::GRANT_TYPES`); absent keeps what is.
pub fn grant_types_param(params: &Params, errors: &mut Vec<String>) -> Option<Vec<String>> {
    let given: Vec<String> = match params.get("grant_types")? {
        Value::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                match item {
                    Value::Str(s) => out.push(s.clone()),
                    _ => {
                        errors.push("grant_types is invalid".to_owned());
                        return None;
                    }
                }
            }
            out
        }
        Value::Str(s) => s
            .split([' ', ','])
            .filter(|g| !g.is_empty())
            .map(str::to_owned)
            .collect(),
        _ => {
            errors.push("grant_types is invalid".to_owned());
            return None;
        }
    };
    if given.is_empty() {
        // An application that may use no grant at all is a mistake.
        errors.push("grant_types is empty".to_owned());
        return None;
    }
    match checked_grant_types(given.iter().map(String::as_str)) {
        Ok(list) => Some(list),
        Err(_) => {
            errors.push("grant_types does not have a valid value".to_owned());
            None
        }
    }
}

/// What the user and group applications APIs change: `name` and `scopes`
/// only (`redirect_uri` and `confidential` are immutable there, and
/// ignored, as in GitLab).
pub fn name_and_scopes(params: &Params, errors: &mut Vec<String>) -> ApplicationChanges {
    ApplicationChanges {
        name: params.optional_string("name", errors),
        scopes: params.optional_nonblank_string("scopes", errors),
        ..Default::default()
    }
}

/// Make `changes` to application `id` for `caller`; the application as
/// it is now, in GitLab's entity.
pub async fn apply_changes(
    state: &AppState,
    caller: &super::auth::Caller,
    id: i64,
    changes: &ApplicationChanges,
) -> Result<Response, ApiError> {
    let updated = state
        .services
        .update_application(&caller.context(), id, changes)
        .await
        .map_err(not_found)?;
    Ok(Json(ApplicationEntity::new(&updated, None)).into_response())
}

pub fn not_found(e: ServiceError) -> ApiError {
    match e {
        ServiceError::NotFound => ApiError::NotFound("Application"),
        other => other.into(),
    }
}

pub fn created_with_secret(app: &Application, secret: &str) -> Response {
    (
        StatusCode::CREATED,
        Json(ApplicationEntity::new(app, Some(secret))),
    )
        .into_response()
}

#[utoipa::path(
    post,
    path = "/api/v4/applications",
    tag = "applications",
    summary = "Create an instance application",
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
    let caller = authenticate_admin(&state, &headers, &params, Need::Write).await?;
    let input = create_params(&params)?;
    let (app, secret) = state
        .services
        .create_application(&caller.context(), None, &input)
        .await?;
    Ok(created_with_secret(&app, secret.expose()))
}

#[utoipa::path(
    get,
    path = "/api/v4/applications",
    tag = "applications",
    summary = "List instance applications",
    params(crate::http::openapi::schemas::Pagination, ("pagination" = Option<String>, Query, description = "`keyset` for keyset pagination (by id)"), ("id_after" = Option<i64>, Query, description = "Keyset: the last id of the previous page"), ("order_by" = Option<String>, Query, description = "Keyset: `id`"), ("sort" = Option<crate::http::openapi::schemas::Sort>, Query, description = "Keyset: `asc`")),
    responses(
        (status = 200, description = "The applications (all of them without page or per_page)", body = Vec<ApplicationEntity>)
    )
)]
pub async fn list(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    params: Params,
) -> Result<Response, ApiError> {
    authenticate_admin(&state, &headers, &params, Need::for_method(&method)).await?;
    if params.get_str("pagination") == Some("keyset") {
        return keyset_page(&state, &params, &uri).await;
    }
    if params.contains("page") || params.contains("per_page") {
        let req = pagination::request(&params);
        let (apps, total) = state.services.list_instance_applications(req).await?;
        let entities: Vec<ApplicationEntity<'_>> = apps
            .iter()
            .map(|a| ApplicationEntity::new(a, None))
            .collect();
        return Ok(pagination::respond(
            &entities,
            req,
            total,
            &state.external_url,
            &uri,
        ));
    }
    stream_all(&state).await
}

/// GitLab's keyset pagination (`pagination=keyset`, ordered by id
/// ascending): each page costs the same however far into the table it is.
async fn keyset_page(
    state: &AppState,
    params: &Params,
    uri: &axum::http::Uri,
) -> Result<Response, ApiError> {
    let mut errors = Vec::new();
    if params.get_str("order_by").is_some_and(|o| o != "id") {
        errors.push("order_by does not have a valid value".to_owned());
    }
    if params.get_str("sort").is_some_and(|o| o != "asc") {
        errors.push("sort does not have a valid value".to_owned());
    }
    let after = match params.get_str("id_after") {
        None => 0,
        Some(raw) => match parse_id(raw) {
            Ok(id) => id.unwrap_or(0),
            Err(_) => {
                errors.push("id_after is invalid".to_owned());
                0
            }
        },
    };
    if !errors.is_empty() {
        return Err(ApiError::Params(errors));
    }
    let per_page =
        latchkey_core::pagination::PageRequest::parse(None, params.get_str("per_page")).per_page;
    let mut apps = state
        .services
        .instance_applications_after(after, per_page as i64 + 1)
        .await?;
    let next = pagination::keyset_next(&mut apps, per_page, |a| a.id);
    let entities: Vec<ApplicationEntity<'_>> = apps
        .iter()
        .map(|a| ApplicationEntity::new(a, None))
        .collect();
    Ok(pagination::respond_keyset(
        &entities,
        per_page,
        next,
        &state.external_url,
        uri,
    ))
}

/// Seconds a client refused by `LATCHKEY_MAX_STREAMED_LISTS` is told to wait.
const STREAMED_LIST_RETRY_AFTER: &str = "1";

/// The unpaginated list, streamed in batches so memory stays flat. The
/// first batch is read before the status line is sent, so a database that
/// is down gives a 503, not a truncated 200. Each batch is read whole
/// before its bytes are written (see `keyset_stream`), so a client that
/// stops reading holds no database connection, only its permit, until the
/// write timeout closes its connection.
async fn stream_all(state: &AppState) -> Result<Response, ApiError> {
    let Ok(permit) = state.streamed_lists.clone().try_acquire_owned() else {
        tracing::warn!("too many unpaginated application lists at once; answering 503");
        return Ok((
            StatusCode::SERVICE_UNAVAILABLE,
            [(axum::http::header::RETRY_AFTER, STREAMED_LIST_RETRY_AFTER)],
            Json(serde_json::json!({"message": "503 Service Unavailable"})),
        )
            .into_response());
    };
    let mut rows = state
        .services
        .stream_instance_applications()
        .ready_chunks(256)
        .peekable();
    let first_failed = std::pin::Pin::new(&mut rows)
        .peek()
        .await
        .is_some_and(|batch| batch.iter().any(Result::is_err));
    if first_failed {
        if let Some(batch) = rows.next().await {
            for row in batch {
                row?;
            }
        }
    }
    let mut first = true;
    let items = rows.map(move |batch| {
        // Released when the body is done or dropped.
        let _permit = &permit;
        let mut buf = Vec::with_capacity(batch.len() * 256);
        for row in batch {
            let app = row.inspect_err(
                |e| tracing::error!(error = %Chain(e), "application list stream failed"),
            )?;
            if !first {
                buf.push(b',');
            }
            first = false;
            serde_json::to_writer(&mut buf, &ApplicationEntity::new(&app, None))?;
        }
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(Bytes::from(buf))
    });
    let open = futures::stream::once(futures::future::ready(Ok(Bytes::from_static(b"["))));
    let close = futures::stream::once(futures::future::ready(Ok(Bytes::from_static(b"]"))));
    let body = Body::from_stream(open.chain(items).chain(close));
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response())
}

#[utoipa::path(
    delete,
    path = "/api/v4/applications/{id}",
    tag = "applications",
    summary = "Delete an instance application",
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
    let caller = authenticate_admin(&state, &headers, &params, Need::Write).await?;
    let id = parse_id(&id)?.ok_or(ApiError::NotFound("Application"))?;
    state
        .services
        .delete_application(&caller.context(), id, Ownership::Instance)
        .await
        .map_err(not_found)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// An extension GitLab users asked for (gitlab-org/gitlab#359065,
/// #458617): change an instance application. Every field is optional and
/// validated as on creation; the secret is never touched.
#[utoipa::path(
    put,
    path = "/api/v4/applications/{id}",
    tag = "applications",
    summary = "Change an instance application",
    params(("id" = i64, Path, description = "The application's id")),
    request_body(content((crate::http::openapi::schemas::ApplicationUpdate = "application/json"), (crate::http::openapi::schemas::ApplicationUpdate = "application/x-www-form-urlencoded"))),
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
    let caller = authenticate_admin(&state, &headers, &params, Need::Write).await?;
    let id = parse_id(&id);
    let mut errors: Vec<String> = match &id {
        Err(ApiError::Params(e)) => e.clone(),
        _ => Vec::new(),
    };
    let name = params.optional_string("name", &mut errors);
    let redirect_uri = params.optional_string("redirect_uri", &mut errors);
    // Like create: blank scopes are Grape's "is empty".
    let scopes = params.optional_nonblank_string("scopes", &mut errors);
    let confidential = params.optional_bool("confidential", &mut errors);
    let trusted = params.optional_bool("trusted", &mut errors);
    let grant_types = grant_types_param(&params, &mut errors);
    let ropc_enabled = params.optional_bool("ropc_enabled", &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::Params(errors));
    }
    let id = id?.ok_or(ApiError::NotFound("Application"))?;
    let current = state
        .services
        .find_application(id, Ownership::Instance)
        .await
        .map_err(not_found)?;
    let changes = ApplicationChanges {
        name,
        scopes,
        redirect_uri,
        confidential,
        trusted,
        grant_types: with_ropc(grant_types, ropc_enabled, Some(&current)),
    };
    let app = state
        .services
        .update_application(&caller.context(), id, &changes)
        .await
        .map_err(not_found)?;
    Ok(Json(ApplicationEntity::new(&app, None)).into_response())
}
