//! `/api/v4/audit_events`: GitLab's instance Audit Events API, for
//! administrators.

use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use latchkey_core::audit::{AuditEvent, AuditFilter, EntityType, Keyset};
use latchkey_core::clock::gitlab_timestamp;
use latchkey_core::pagination::PageRequest;
use latchkey_core::service::ServiceError;
use serde::Serialize;
use serde_json::{Map, Value};

use super::auth::{authenticate_admin, Need};
use super::errors::ApiError;
use super::params::{parse_id, Params};
use super::{pagination, AppState};

/// GitLab's `AuditEvent` entity (with `event_name`, as GitLab's newer
/// entity has it).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuditEventEntity {
    pub id: i64,
    pub author_id: i64,
    pub entity_id: i64,
    pub entity_type: String,
    pub event_name: String,
    #[schema(value_type = Object)]
    pub details: Map<String, Value>,
    pub created_at: String,
}

impl From<&AuditEvent> for AuditEventEntity {
    fn from(e: &AuditEvent) -> Self {
        Self {
            id: e.id,
            author_id: e.author_id,
            entity_id: e.entity_id,
            entity_type: e.entity_type.clone(),
            event_name: e.event_name.clone(),
            details: e.formatted_details(),
            created_at: gitlab_timestamp(e.created_at),
        }
    }
}

/// GitLab's parameter checks, in declaration order.
fn filter(params: &Params) -> Result<AuditFilter, ApiError> {
    let mut errors = Vec::new();
    let entity_type = match params.get_str("entity_type") {
        None => None,
        Some(raw) => {
            let parsed = EntityType::parse(raw);
            if parsed.is_none() {
                errors.push("entity_type does not have a valid value".to_owned());
            }
            parsed
        }
    };
    let entity_id = match params.get_str("entity_id") {
        None => None,
        Some(raw) => match raw.trim().parse::<i64>() {
            Ok(id) => Some(id),
            Err(_) => {
                errors.push("entity_id is invalid".to_owned());
                None
            }
        },
    };
    let created_after = params.optional_time("created_after", &mut errors);
    let created_before = params.optional_time("created_before", &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::Params(errors));
    }
    Ok(AuditFilter {
        created_after,
        created_before,
        // As GitLab's finder: an entity id counts only with its type.
        entity_id: entity_type.and(entity_id),
        entity_type,
    })
}

#[utoipa::path(
    get,
    path = "/api/v4/audit_events",
    tag = "audit_events",
    summary = "List audit events (administrators)",
    params(crate::http::openapi::schemas::Pagination, ("entity_type" = Option<String>, Query, description = "`User`, `Group`, …"), ("entity_id" = Option<i64>, Query, description = "With entity_type"), ("created_after" = Option<String>, Query, description = "ISO 8601 time"), ("created_before" = Option<String>, Query, description = "ISO 8601 time"), ("pagination" = Option<String>, Query, description = "`keyset`"), ("order_by" = Option<String>, Query, description = "Keyset: `id`"), ("sort" = Option<crate::http::openapi::schemas::Sort>, Query, description = "The order")),
    responses(
        (status = 200, description = "Audit events", body = Vec<AuditEventEntity>)
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
    let filter = filter(&params)?;
    if params.get_str("pagination") == Some("keyset") {
        return keyset_page(&state, &params, &uri, &filter).await;
    }
    let req = pagination::request(&params);
    let (events, total) = state.services.list_audit_events(&filter, req).await?;
    let entities: Vec<AuditEventEntity> = events.iter().map(AuditEventEntity::from).collect();
    Ok(pagination::respond(
        &entities,
        req,
        total,
        &state.external_url,
        &uri,
    ))
}

/// Keyset pages by id: newest first (`sort=desc`, the default, continuing
/// with `id_before`) or oldest first (`sort=asc`, with `id_after`).
async fn keyset_page(
    state: &AppState,
    params: &Params,
    uri: &Uri,
    filter: &AuditFilter,
) -> Result<Response, ApiError> {
    let mut errors = Vec::new();
    if params.get_str("order_by").is_some_and(|o| o != "id") {
        errors.push("order_by does not have a valid value".to_owned());
    }
    let ascending = params.ascending(false, &mut errors);
    let key = if ascending { "id_after" } else { "id_before" };
    let from = match params.get_str(key) {
        None => None,
        // An id of 0 or less: nothing is before it, everything after it.
        Some(raw) => match parse_id(raw) {
            Ok(id) => Some(id.unwrap_or(0)),
            Err(_) => {
                errors.push(format!("{key} is invalid"));
                None
            }
        },
    };
    if !errors.is_empty() {
        return Err(ApiError::Params(errors));
    }
    let per_page = PageRequest::parse(None, params.get_str("per_page")).per_page;
    let keyset = Keyset {
        ascending,
        from,
        limit: per_page as i64 + 1,
    };
    let mut events = state.services.audit_events_keyset(filter, keyset).await?;
    let next = pagination::keyset_next(&mut events, per_page, |e| e.id);
    let entities: Vec<AuditEventEntity> = events.iter().map(AuditEventEntity::from).collect();
    Ok(pagination::respond_keyset_by(
        &entities,
        per_page,
        (key, next),
        &state.external_url,
        uri,
    ))
}

#[utoipa::path(
    get,
    path = "/api/v4/audit_events/{id}",
    tag = "audit_events",
    summary = "An audit event (administrators)",
    params(("id" = i64, Path, description = "The event's id")),
    responses(
        (status = 200, description = "The event", body = AuditEventEntity)
    )
)]
pub async fn get(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    Path(id): Path<String>,
    params: Params,
) -> Result<Response, ApiError> {
    authenticate_admin(&state, &headers, &params, Need::for_method(&method)).await?;
    let not_found = ApiError::NotFound("Audit Event");
    let Some(id) = parse_id(&id)? else {
        return Err(not_found);
    };
    match state.services.find_audit_event(id).await {
        Ok(event) => Ok(Json(AuditEventEntity::from(&event)).into_response()),
        Err(ServiceError::NotFound) => Err(not_found),
        Err(e) => Err(e.into()),
    }
}
