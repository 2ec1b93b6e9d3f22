//! `/api/v4/groups`: GitLab's Groups API (groups and subgroups). Reading
//! works without a token (public groups only); changes need `api`.

use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use latchkey_core::group::{
    level, Group, GroupFilter, GroupOrder, GroupParams, GroupRole, GroupUpdate, Viewer, Visibility,
};
use latchkey_core::service::ServiceError;
use latchkey_core::user::Avatar;
use serde_json::json;

use super::auth::{authenticate, authenticate_optional, Caller, Need};
use super::errors::ApiError;
use super::group_entities::{ruby_inspect, GroupDetail, GroupEntity};
use super::params::{Params, StrParam};
use super::{pagination, AppState};

/// A group named in a route by its id, or by its full path (URL-encoded:
/// `org%2Fplatform`), that the caller may see; else GitLab's 404, which
/// does not tell a hidden group from a missing one.
pub async fn visible_group(
    state: &AppState,
    caller: Option<&Caller>,
    raw: &str,
) -> Result<(Group, GroupRole), ApiError> {
    let services = &state.services;
    let found = if !raw.is_empty() && raw.bytes().all(|b| b.is_ascii_digit()) {
        match raw.parse::<i64>() {
            Ok(id) => services.find_group(id).await?,
            Err(_) => None,
        }
    } else {
        services.find_group_by_path(raw).await?
    };
    let group = found.ok_or(ApiError::NotFound("Group"))?;
    let role = services
        .group_role(caller.map(Caller::actor), &group)
        .await?;
    if role.may_read() {
        Ok((group, role))
    } else {
        Err(ApiError::NotFound("Group"))
    }
}

/// A group's `avatar`: an uploaded picture (checked by its bytes), or
/// an empty value to remove it (`Some(None)`), as GitLab takes it.
fn avatar_param(
    params: &Params,
    errors: &mut Vec<String>,
) -> Result<Option<Option<Avatar>>, ApiError> {
    match super::users::uploaded_avatar(params)? {
        Some(picture) => Ok(Some(Some(picture))),
        None => match params.string("avatar") {
            StrParam::Missing => Ok(None),
            StrParam::Null => Ok(Some(None)),
            StrParam::Value(v) if v.is_empty() => Ok(Some(None)),
            _ => {
                errors.push("avatar is invalid".to_owned());
                Ok(None)
            }
        },
    }
}

fn visibility_param(params: &Params, errors: &mut Vec<String>) -> Option<Visibility> {
    let raw = params.optional_string("visibility", errors)?;
    let v = Visibility::parse(&raw);
    if v.is_none() {
        errors.push("visibility does not have a valid value".to_owned());
    }
    v
}

/// The `min_access_level` values accepted: GitLab's levels, and Minimal
/// Access (5), which clients such as social-auth-core send to mean "any
/// membership".
const MIN_ACCESS_LEVELS: [i32; 7] = [
    level::MINIMAL_ACCESS,
    level::GUEST,
    level::PLANNER,
    level::REPORTER,
    level::DEVELOPER,
    level::MAINTAINER,
    level::OWNER,
];

/// GitLab's list parameters (`/groups`, `/subgroups`,
/// `/descendant_groups`), in declaration order.
fn group_filter(
    state: &AppState,
    caller: Option<&Caller>,
    params: &Params,
) -> Result<GroupFilter, ApiError> {
    let mut errors = Vec::new();
    params.optional_bool("statistics", &mut errors);
    let skip_groups = params.int_list("skip_groups", &mut errors);
    let all_available = params.optional_bool("all_available", &mut errors);
    let visibility = visibility_param(params, &mut errors);
    let search = params.optional_string("search", &mut errors);
    let owned = params.optional_bool("owned", &mut errors).unwrap_or(false);
    let order = match params.get_str("order_by") {
        None => Some(GroupOrder::Name),
        // Similarity only orders a search; names are its fallback.
        Some("similarity") => Some(GroupOrder::Name),
        Some(raw) => GroupOrder::parse(raw),
    };
    if order.is_none() {
        errors.push("order_by does not have a valid value".to_owned());
    }
    let ascending = params.ascending(true, &mut errors);
    let min_access_level = params
        .optional_int("min_access_level", &mut errors)
        .map(|n| i32::try_from(n).unwrap_or(-1));
    if min_access_level.is_some_and(|n| !MIN_ACCESS_LEVELS.contains(&n)) {
        errors.push("min_access_level does not have a valid value".to_owned());
    }
    let top_level_only = params
        .optional_bool("top_level_only", &mut errors)
        .unwrap_or(false);
    params.optional_bool("with_custom_attributes", &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::Params(errors));
    }
    let viewer = state.services.group_viewer(caller.map(Caller::actor));
    let admin = matches!(viewer, Viewer::Admin { .. });
    Ok(GroupFilter {
        viewer,
        // GitLab: false for users, true for administrators, unless given.
        all_available: all_available.unwrap_or(admin),
        owned,
        min_access_level,
        search,
        parent_id: None,
        descendants_of: None,
        top_level_only,
        skip_groups,
        visibility,
        order: order.unwrap_or_default(),
        ascending,
        today: state.services.today_text(),
    })
}

async fn respond_list(
    state: &AppState,
    filter: GroupFilter,
    params: &Params,
    uri: &axum::http::Uri,
) -> Result<Response, ApiError> {
    let req = pagination::request(params);
    let (groups, total) = state.services.list_groups(&filter, req).await?;
    let base = &state.external_url;
    let items: Vec<GroupEntity<'_>> = groups.iter().map(|g| GroupEntity::new(g, base)).collect();
    Ok(pagination::respond(&items, req, total, base, uri))
}

#[utoipa::path(
    get,
    path = "/api/v4/groups",
    tag = "groups",
    summary = "List groups",
    security(("private_token" = []), ("bearer" = []), ()),
    params(crate::http::openapi::schemas::Pagination, ("skip_groups" = Option<Vec<i64>>, Query, description = "Leave these out"), ("all_available" = Option<bool>, Query, description = "Every group you can see"), ("search" = Option<String>, Query, description = "In name and path"), ("owned" = Option<bool>, Query, description = "Only groups you own"), ("order_by" = Option<String>, Query, description = "`name`, `path`, `id` or `similarity`"), ("sort" = Option<crate::http::openapi::schemas::Sort>, Query, description = "The order"), ("min_access_level" = Option<i64>, Query, description = "Only groups where you have at least this level: 5, 10, 15, 20, 30, 40 or 50"), ("visibility" = Option<crate::http::openapi::schemas::Visibility>, Query, description = "Only groups of this visibility"), ("top_level_only" = Option<bool>, Query, description = "Only top-level groups"), ("statistics" = Option<bool>, Query, description = "Accepted, ignored"), ("with_custom_attributes" = Option<bool>, Query, description = "Accepted, ignored")),
    responses(
        (status = 200, description = "Groups", body = Vec<GroupEntity>)
    )
)]
pub async fn list(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    params: Params,
) -> Result<Response, ApiError> {
    let caller =
        authenticate_optional(&state, &headers, &params, Need::for_method(&method)).await?;
    let filter = group_filter(&state, caller.as_ref(), &params)?;
    respond_list(&state, filter, &params, &uri).await
}

/// `/groups/:id/subgroups` (`descendants: false`) and
/// `/groups/:id/descendant_groups`.
async fn below(
    state: AppState,
    id: String,
    method: Method,
    headers: HeaderMap,
    uri: axum::http::Uri,
    params: Params,
    descendants: bool,
) -> Result<Response, ApiError> {
    let caller =
        authenticate_optional(&state, &headers, &params, Need::for_method(&method)).await?;
    let mut filter = group_filter(&state, caller.as_ref(), &params)?;
    let (group, _) = visible_group(&state, caller.as_ref(), &id).await?;
    if descendants {
        filter.descendants_of = Some(group.id);
    } else {
        filter.parent_id = Some(group.id);
    }
    respond_list(&state, filter, &params, &uri).await
}

#[utoipa::path(
    get,
    path = "/api/v4/groups/{id}/subgroups",
    tag = "groups",
    summary = "A group's subgroups",
    security(("private_token" = []), ("bearer" = []), ()),
    params(("id" = String, Path, description = "The group's id or URL-encoded full path"), crate::http::openapi::schemas::Pagination, ("skip_groups" = Option<Vec<i64>>, Query, description = "Leave these out"), ("all_available" = Option<bool>, Query, description = "Every group you can see"), ("search" = Option<String>, Query, description = "In name and path"), ("owned" = Option<bool>, Query, description = "Only groups you own"), ("order_by" = Option<String>, Query, description = "`name`, `path`, `id` or `similarity`"), ("sort" = Option<crate::http::openapi::schemas::Sort>, Query, description = "The order"), ("min_access_level" = Option<i64>, Query, description = "Only groups where you have at least this level: 5, 10, 15, 20, 30, 40 or 50"), ("visibility" = Option<crate::http::openapi::schemas::Visibility>, Query, description = "Only groups of this visibility"), ("top_level_only" = Option<bool>, Query, description = "Only top-level groups"), ("statistics" = Option<bool>, Query, description = "Accepted, ignored"), ("with_custom_attributes" = Option<bool>, Query, description = "Accepted, ignored")),
    responses(
        (status = 200, description = "The subgroups", body = Vec<GroupEntity>)
    )
)]
pub async fn subgroups(
    State(state): State<AppState>,
    Path(id): Path<String>,
    method: Method,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    params: Params,
) -> Result<Response, ApiError> {
    below(state, id, method, headers, uri, params, false).await
}

#[utoipa::path(
    get,
    path = "/api/v4/groups/{id}/descendant_groups",
    tag = "groups",
    summary = "Every group below a group",
    security(("private_token" = []), ("bearer" = []), ()),
    params(("id" = String, Path, description = "The group's id or URL-encoded full path"), crate::http::openapi::schemas::Pagination, ("skip_groups" = Option<Vec<i64>>, Query, description = "Leave these out"), ("all_available" = Option<bool>, Query, description = "Every group you can see"), ("search" = Option<String>, Query, description = "In name and path"), ("owned" = Option<bool>, Query, description = "Only groups you own"), ("order_by" = Option<String>, Query, description = "`name`, `path`, `id` or `similarity`"), ("sort" = Option<crate::http::openapi::schemas::Sort>, Query, description = "The order"), ("min_access_level" = Option<i64>, Query, description = "Only groups where you have at least this level: 5, 10, 15, 20, 30, 40 or 50"), ("visibility" = Option<crate::http::openapi::schemas::Visibility>, Query, description = "Only groups of this visibility"), ("top_level_only" = Option<bool>, Query, description = "Only top-level groups"), ("statistics" = Option<bool>, Query, description = "Accepted, ignored"), ("with_custom_attributes" = Option<bool>, Query, description = "Accepted, ignored")),
    responses(
        (status = 200, description = "The groups below", body = Vec<GroupEntity>)
    )
)]
pub async fn descendant_groups(
    State(state): State<AppState>,
    Path(id): Path<String>,
    method: Method,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    params: Params,
) -> Result<Response, ApiError> {
    below(state, id, method, headers, uri, params, true).await
}

#[utoipa::path(
    get,
    path = "/api/v4/groups/{id}",
    tag = "groups",
    summary = "A group",
    security(("private_token" = []), ("bearer" = []), ()),
    params(("id" = String, Path, description = "The group's id or URL-encoded full path"), ("with_projects" = Option<bool>, Query, description = "Include `projects` (always empty)"), ("with_custom_attributes" = Option<bool>, Query, description = "Accepted, ignored")),
    responses(
        (status = 200, description = "The group", body = GroupDetail)
    )
)]
pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
    method: Method,
    headers: HeaderMap,
    params: Params,
) -> Result<Response, ApiError> {
    let caller =
        authenticate_optional(&state, &headers, &params, Need::for_method(&method)).await?;
    let mut errors = Vec::new();
    let with_projects = params
        .optional_bool("with_projects", &mut errors)
        .unwrap_or(true);
    params.optional_bool("with_custom_attributes", &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::Params(errors));
    }
    let (group, _) = visible_group(&state, caller.as_ref(), &id).await?;
    Ok(Json(GroupDetail::new(&group, &state.external_url, with_projects)).into_response())
}

#[utoipa::path(
    post,
    path = "/api/v4/groups",
    tag = "groups",
    summary = "Create a group",
    request_body(content((crate::http::openapi::schemas::GroupCreate = "application/json"), (crate::http::openapi::schemas::GroupCreate = "application/x-www-form-urlencoded"), (crate::http::openapi::schemas::GroupCreate = "multipart/form-data"))),
    responses(
        (status = 201, description = "The group", body = GroupDetail)
    )
)]
pub async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Params,
) -> Result<Response, ApiError> {
    let caller = authenticate(&state, &headers, &params, Need::Write).await?;
    let mut errors = Vec::new();
    let name = params.required_string("name", &mut errors);
    let path = params.required_string("path", &mut errors);
    let parent_id = params.optional_int("parent_id", &mut errors);
    let description = params.optional_string("description", &mut errors);
    let visibility = visibility_param(&params, &mut errors);
    let avatar = avatar_param(&params, &mut errors)?.flatten();
    if !errors.is_empty() {
        return Err(ApiError::Params(errors));
    }
    let services = &state.services;
    let parent = match parent_id {
        Some(id) => {
            let (parent, role) = visible_group(&state, Some(&caller), &id.to_string()).await?;
            if !role.may_create_subgroup() {
                return Err(ApiError::Forbidden(None));
            }
            Some(parent)
        }
        None => {
            // GitLab's `can_create_group`: everyone but external users.
            if caller.user.external && !services.acts_as_admin(caller.actor()) {
                return Err(ApiError::Forbidden(None));
            }
            None
        }
    };
    let input = GroupParams {
        name: name.unwrap_or_default(),
        path: path.unwrap_or_default(),
        parent_id,
        description,
        visibility,
        avatar,
    };
    let group = services
        .create_group(&caller.context(), &caller.user, input, parent)
        .await
        .map_err(|e| match e {
            // GitLab prints the model's errors into one string here.
            ServiceError::Validation(errors) => ApiError::BadRequestMessage(format!(
                "Failed to save group {}",
                ruby_inspect(&errors)
            )),
            other => other.into(),
        })?;
    Ok((
        StatusCode::CREATED,
        Json(GroupDetail::new(&group, &state.external_url, false)),
    )
        .into_response())
}

#[utoipa::path(
    put,
    path = "/api/v4/groups/{id}",
    tag = "groups",
    summary = "Change a group",
    params(("id" = String, Path, description = "The group's id or URL-encoded full path")),
    request_body(content((crate::http::openapi::schemas::GroupUpdate = "application/json"), (crate::http::openapi::schemas::GroupUpdate = "application/x-www-form-urlencoded"), (crate::http::openapi::schemas::GroupUpdate = "multipart/form-data"))),
    responses(
        (status = 200, description = "The group", body = GroupDetail)
    )
)]
pub async fn update(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    params: Params,
) -> Result<Response, ApiError> {
    let caller = authenticate(&state, &headers, &params, Need::Write).await?;
    let mut errors = Vec::new();
    let update = GroupUpdate {
        name: params.optional_string("name", &mut errors),
        path: params.optional_string("path", &mut errors),
        description: params.optional_string("description", &mut errors),
        visibility: visibility_param(&params, &mut errors),
        avatar: avatar_param(&params, &mut errors)?,
    };
    if !errors.is_empty() {
        return Err(ApiError::Params(errors));
    }
    let (group, role) = visible_group(&state, Some(&caller), &id).await?;
    if !role.may_administer() {
        return Err(ApiError::Forbidden(None));
    }
    let updated = state
        .services
        .update_group(&caller.context(), &group, update)
        .await
        .map_err(|e| match e {
            ServiceError::NotFound => ApiError::NotFound("Group"),
            other => other.into(),
        })?;
    Ok(Json(GroupDetail::new(&updated, &state.external_url, true)).into_response())
}

/// `GET /uploads/-/system/group/avatar/:id/:file`: a group's uploaded
/// avatar, to whoever may see the group (as GitLab's uploads: anyone for
/// a public group; with a token, a member for a private one).
pub async fn avatar(
    State(state): State<AppState>,
    Path((id, file)): Path<(String, String)>,
    headers: HeaderMap,
    params: Params,
) -> Result<Response, ApiError> {
    let Ok(id) = id.parse::<i64>() else {
        return Ok(super::users::picture(None, &file));
    };
    let caller = authenticate_optional(&state, &headers, &params, Need::Read).await?;
    let found = match visible_group(&state, caller.as_ref(), &id.to_string()).await {
        Ok(_) => state.services.find_group_avatar(id).await?,
        Err(ApiError::NotFound(_)) => None,
        Err(other) => return Err(other),
    };
    Ok(super::users::picture(found, &file))
}

/// GitLab answers 202 and deletes later; latchkey deletes at once (with
/// subgroups, memberships and group applications) and answers the same.
#[utoipa::path(
    delete,
    path = "/api/v4/groups/{id}",
    tag = "groups",
    summary = "Delete a group",
    params(("id" = String, Path, description = "The group's id or URL-encoded full path")),
    responses(
        (status = 202, description = "Deleted", body = crate::http::openapi::schemas::Accepted)
    )
)]
pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    params: Params,
) -> Result<Response, ApiError> {
    let caller = authenticate(&state, &headers, &params, Need::Write).await?;
    let (group, role) = visible_group(&state, Some(&caller), &id).await?;
    if !role.may_administer() {
        return Err(ApiError::Forbidden(None));
    }
    state
        .services
        .delete_group(&caller.context(), &group)
        .await
        .map_err(|e| match e {
            ServiceError::NotFound => ApiError::NotFound("Group"),
            other => other.into(),
        })?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"message": "202 Accepted"})),
    )
        .into_response())
}
