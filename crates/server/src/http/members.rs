//! `/api/v4/groups/:id/members`: GitLab's Members API for groups. Anyone
//! who may see a group may list its members; its Owners (and
//! administrators) add, change and remove them; members may leave.

use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use latchkey_core::application::ValidationErrors;
use latchkey_core::group::{
    check_expires_at, expired, level, Group, GroupRole, Member, MemberFilter, MemberRefusal,
    MembershipUpdate,
};

use super::auth::{authenticate, Caller, Need};
use super::errors::ApiError;
use super::group_entities::MemberEntity;
use super::groups::visible_group;
use super::params::Params;
use super::{pagination, AppState};

fn refused(r: MemberRefusal) -> ApiError {
    match r {
        MemberRefusal::Exists => ApiError::Conflict("Member already exists".to_owned()),
        MemberRefusal::OwnersOnly | MemberRefusal::LastOwner => ApiError::Forbidden(None),
        MemberRefusal::BelowInherited(level_name, group_name) => {
            let mut errors = ValidationErrors::default();
            errors.add(
                "access_level",
                format!(
                    "should be greater than or equal to {level_name} inherited membership from group {group_name}"
                ),
            );
            ApiError::Validation(errors)
        }
    }
}

fn entity_json(state: &AppState, member: &Member) -> Response {
    Json(MemberEntity::new(member, &state.links())).into_response()
}

/// The group of a members route, read by a caller who may see it.
async fn group_of(
    state: &AppState,
    caller: &Caller,
    raw: &str,
) -> Result<(Group, GroupRole), ApiError> {
    visible_group(state, Some(caller), raw).await
}

async fn list_members(
    state: AppState,
    id: String,
    method: Method,
    headers: HeaderMap,
    uri: axum::http::Uri,
    params: Params,
    inherited: bool,
) -> Result<Response, ApiError> {
    let caller = authenticate(&state, &headers, &params, Need::for_method(&method)).await?;
    let mut errors = Vec::new();
    let query = params.optional_string("query", &mut errors);
    let user_ids = params.int_list("user_ids", &mut errors);
    let skip_users = params.int_list("skip_users", &mut errors);
    params.optional_bool("show_seat_info", &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::Params(errors));
    }
    let (group, _) = group_of(&state, &caller, &id).await?;
    let filter = MemberFilter {
        inherited,
        query,
        user_ids,
        // GitLab skips users in the direct list only.
        skip_users: if inherited { Vec::new() } else { skip_users },
        today: state.services.today_text(),
    };
    let req = pagination::request(&params);
    let (members, total) = state.services.list_members(group.id, &filter, req).await?;
    let links = state.links();
    let items: Vec<MemberEntity<'_>> = members
        .iter()
        .map(|m| MemberEntity::new(m, &links))
        .collect();
    Ok(pagination::respond(
        &items,
        req,
        total,
        &state.external_url,
        &uri,
    ))
}

#[utoipa::path(
    get,
    path = "/api/v4/groups/{id}/members",
    tag = "members",
    summary = "A group's direct members",
    params(("id" = String, Path, description = "The group's id or URL-encoded full path"), crate::http::openapi::schemas::Pagination, ("query" = Option<String>, Query, description = "In name and username"), ("user_ids" = Option<Vec<i64>>, Query, description = "Only these users"), ("skip_users" = Option<Vec<i64>>, Query, description = "Not these users"), ("show_seat_info" = Option<bool>, Query, description = "Accepted, ignored")),
    responses(
        (status = 200, description = "The members", body = Vec<MemberEntity>)
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
    list_members(state, id, method, headers, uri, params, false).await
}

#[utoipa::path(
    get,
    path = "/api/v4/groups/{id}/members/all",
    tag = "members",
    summary = "A group's members, inherited ones too",
    params(("id" = String, Path, description = "The group's id or URL-encoded full path"), crate::http::openapi::schemas::Pagination, ("query" = Option<String>, Query, description = "In name and username"), ("user_ids" = Option<Vec<i64>>, Query, description = "Only these users"), ("skip_users" = Option<Vec<i64>>, Query, description = "Not these users"), ("show_seat_info" = Option<bool>, Query, description = "Accepted, ignored")),
    responses(
        (status = 200, description = "The members", body = Vec<MemberEntity>)
    )
)]
pub async fn list_all(
    State(state): State<AppState>,
    Path(id): Path<String>,
    method: Method,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    params: Params,
) -> Result<Response, ApiError> {
    list_members(state, id, method, headers, uri, params, true).await
}

fn user_id_of(raw: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>()
        .map_err(|_| ApiError::Params(vec!["user_id is invalid".to_owned()]))
}

async fn get_member(
    state: AppState,
    id: String,
    user_id: String,
    method: Method,
    headers: HeaderMap,
    params: Params,
    inherited: bool,
) -> Result<Response, ApiError> {
    let caller = authenticate(&state, &headers, &params, Need::for_method(&method)).await?;
    let user_id = user_id_of(&user_id)?;
    let (group, _) = group_of(&state, &caller, &id).await?;
    let member = state
        .services
        .find_member(group.id, user_id, inherited)
        .await?
        .ok_or(ApiError::RecordNotFound)?;
    Ok(entity_json(&state, &member))
}

#[utoipa::path(
    get,
    path = "/api/v4/groups/{id}/members/{user_id}",
    tag = "members",
    summary = "A direct member",
    params(("id" = String, Path, description = "The group's id or URL-encoded full path"), ("user_id" = i64, Path, description = "The member's user id")),
    responses(
        (status = 200, description = "The member", body = MemberEntity)
    )
)]
pub async fn get(
    State(state): State<AppState>,
    Path((id, user_id)): Path<(String, String)>,
    method: Method,
    headers: HeaderMap,
    params: Params,
) -> Result<Response, ApiError> {
    get_member(state, id, user_id, method, headers, params, false).await
}

#[utoipa::path(
    get,
    path = "/api/v4/groups/{id}/members/all/{user_id}",
    tag = "members",
    summary = "A member, direct or inherited",
    params(("id" = String, Path, description = "The group's id or URL-encoded full path"), ("user_id" = i64, Path, description = "The member's user id")),
    responses(
        (status = 200, description = "The member", body = MemberEntity)
    )
)]
pub async fn get_all(
    State(state): State<AppState>,
    Path((id, user_id)): Path<(String, String)>,
    method: Method,
    headers: HeaderMap,
    params: Params,
) -> Result<Response, ApiError> {
    get_member(state, id, user_id, method, headers, params, true).await
}

/// A membership's attributes as given: Grape has checked their types;
/// the model checks their values ([`Self::checked`]) once the caller is
/// known to be allowed, as GitLab orders it.
struct MemberInput {
    access_level: Option<i64>,
    /// `Some(None)`: given empty (no expiry).
    expires_at: Option<Option<String>>,
}

impl MemberInput {
    /// `access_level` (required) and `expires_at` (a date, or empty).
    fn read(params: &Params, errors: &mut Vec<String>) -> Self {
        let access_level = params.optional_int("access_level", errors);
        if access_level.is_none() && !params.contains("access_level") {
            errors.push("access_level is missing".to_owned());
        }
        let expires_at = match params.get_str("expires_at") {
            None if params.contains("expires_at") => Some(None),
            None => None,
            Some(raw) if latchkey_core::token::parse_expiry(raw).is_err() => {
                errors.push("expires_at is invalid".to_owned());
                None
            }
            Some(raw) => Some(Some(raw.to_owned())),
        };
        Self {
            access_level,
            expires_at,
        }
    }

    /// The model's checks: a level GitLab has, an expiry after today.
    fn checked(self, state: &AppState) -> Result<(Option<i32>, Option<Option<String>>), ApiError> {
        let mut v = ValidationErrors::default();
        let access_level = match self.access_level {
            None => None,
            Some(n) => {
                let n = i32::try_from(n).unwrap_or(-1);
                if !level::ALL.contains(&n) {
                    v.add("access_level", "is not included in the list");
                }
                Some(n)
            }
        };
        let expires_at = match self.expires_at {
            Some(Some(raw)) => match check_expires_at(&raw, state.services.today()) {
                Ok(day) => Some(Some(day)),
                Err(message) => {
                    v.add("expires_at", message);
                    None
                }
            },
            other => other,
        };
        if v.is_empty() {
            Ok((access_level, expires_at))
        } else {
            Err(ApiError::Validation(v))
        }
    }
}

#[utoipa::path(
    post,
    path = "/api/v4/groups/{id}/members",
    tag = "members",
    summary = "Add a member",
    params(("id" = String, Path, description = "The group's id or URL-encoded full path")),
    request_body(content((crate::http::openapi::schemas::MemberCreate = "application/json"), (crate::http::openapi::schemas::MemberCreate = "application/x-www-form-urlencoded"))),
    responses(
        (status = 201, description = "The member", body = MemberEntity),
        (status = 409, description = "Already taken", body = crate::http::openapi::schemas::GitLabError)
    )
)]
pub async fn create(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    params: Params,
) -> Result<Response, ApiError> {
    let caller = authenticate(&state, &headers, &params, Need::Write).await?;
    let mut errors = Vec::new();
    let input = MemberInput::read(&params, &mut errors);
    let user_id = params.optional_int("user_id", &mut errors);
    let username = params.optional_string("username", &mut errors);
    match (user_id, &username) {
        (Some(_), Some(_)) => errors.push("user_id, username are mutually exclusive".to_owned()),
        (None, None) if errors.is_empty() => errors.push(
            "user_id, username are missing, at least one parameter must be provided".to_owned(),
        ),
        _ => {}
    }
    if !errors.is_empty() {
        return Err(ApiError::Params(errors));
    }
    // GitLab's order: the group, the user, a membership already there,
    // the caller's right, then the values.
    let (group, role) = group_of(&state, &caller, &id).await?;
    let services = &state.services;
    let user = match (user_id, username) {
        (Some(id), _) => services.find_user(id).await?,
        (None, Some(name)) => services.find_user_by_username(&name).await?,
        (None, None) => None,
    }
    .ok_or(ApiError::NotFound("User"))?;
    let today = services.today_text();
    let existing = services.find_member(group.id, user.id, false).await?;
    if existing.is_some_and(|m| !expired(m.membership.expires_at.as_deref(), &today)) {
        return Err(refused(MemberRefusal::Exists));
    }
    if !role.may_manage_members() {
        return Err(ApiError::Forbidden(None));
    }
    let (access_level, expires_at) = input.checked(&state)?;
    let member = services
        .add_member(
            &caller.context(),
            role,
            &group,
            &user,
            &caller.user,
            access_level.unwrap_or(level::GUEST),
            expires_at.flatten(),
        )
        .await?
        .map_err(refused)?;
    let mut res = entity_json(&state, &member);
    *res.status_mut() = StatusCode::CREATED;
    Ok(res)
}

#[utoipa::path(
    put,
    path = "/api/v4/groups/{id}/members/{user_id}",
    tag = "members",
    summary = "Change a membership",
    params(("id" = String, Path, description = "The group's id or URL-encoded full path"), ("user_id" = i64, Path, description = "The member's user id")),
    request_body(content((crate::http::openapi::schemas::MemberUpdate = "application/json"), (crate::http::openapi::schemas::MemberUpdate = "application/x-www-form-urlencoded"))),
    responses(
        (status = 200, description = "The member", body = MemberEntity)
    )
)]
pub async fn update(
    State(state): State<AppState>,
    Path((id, user_id)): Path<(String, String)>,
    headers: HeaderMap,
    params: Params,
) -> Result<Response, ApiError> {
    let caller = authenticate(&state, &headers, &params, Need::Write).await?;
    let mut errors = Vec::new();
    let user_id = user_id_of(&user_id)?;
    let input = MemberInput::read(&params, &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::Params(errors));
    }
    let (group, role) = group_of(&state, &caller, &id).await?;
    let services = &state.services;
    let member = services
        .find_member(group.id, user_id, false)
        .await?
        .ok_or(ApiError::RecordNotFound)?;
    if !role.may_manage_members() {
        return Err(ApiError::Forbidden(None));
    }
    let (access_level, expires_at) = input.checked(&state)?;
    let update = MembershipUpdate {
        access_level,
        expires_at,
    };
    let member = services
        .update_member(&caller.context(), role, &group, &member, update)
        .await
        .map_err(|e| match e {
            latchkey_core::service::ServiceError::NotFound => ApiError::RecordNotFound,
            other => other.into(),
        })?
        .map_err(refused)?;
    Ok(entity_json(&state, &member))
}

#[utoipa::path(
    delete,
    path = "/api/v4/groups/{id}/members/{user_id}",
    tag = "members",
    summary = "Remove a member",
    params(("id" = String, Path, description = "The group's id or URL-encoded full path"), ("user_id" = i64, Path, description = "The member's user id"), ("skip_subresources" = Option<bool>, Query, description = "Accepted"), ("unassign_issuables" = Option<bool>, Query, description = "Accepted, ignored")),
    responses(
        (status = 204, description = "Removed")
    )
)]
pub async fn delete(
    State(state): State<AppState>,
    Path((id, user_id)): Path<(String, String)>,
    headers: HeaderMap,
    params: Params,
) -> Result<Response, ApiError> {
    let caller = authenticate(&state, &headers, &params, Need::Write).await?;
    let mut errors = Vec::new();
    let user_id = user_id_of(&user_id)?;
    let skip_subresources = params
        .optional_bool("skip_subresources", &mut errors)
        .unwrap_or(false);
    params.optional_bool("unassign_issuables", &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::Params(errors));
    }
    let (group, role) = group_of(&state, &caller, &id).await?;
    let services = &state.services;
    let member = services
        .find_member(group.id, user_id, false)
        .await?
        .ok_or(ApiError::RecordNotFound)?;
    let leaving = member.user.id == caller.user.id;
    if !leaving && !role.may_manage_members() {
        return Err(ApiError::Forbidden(None));
    }
    services
        .remove_member(&caller.context(), role, &group, &member, !skip_subresources)
        .await
        .map_err(|e| match e {
            latchkey_core::service::ServiceError::NotFound => ApiError::RecordNotFound,
            other => other.into(),
        })?
        .map_err(refused)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
