//! `/api/v4/users`: GitLab's Users API (the parts latchkey needs to be
//! scriptable). Administrators see and change everything; other users see
//! the basic entity of users.

use axum::extract::{OriginalUri, Path, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use latchkey_core::application::ValidationErrors;
use latchkey_core::secret;
use latchkey_core::service::ServiceError;
use latchkey_core::store::StoreError;
use latchkey_core::user::{Avatar, ImageKind, ProfileChanges, UserFilter, UserOrder, UserState};
use latchkey_core::user::{UserChanges, UserInput};
use serde_json::json;

use super::auth::{authenticate, authenticate_admin, is_admin, Need};
use super::errors::ApiError;
use super::params::{parse_id, Params, StrParam};
use super::user_entities::{UserBasic, UserProfile, UserWithAdmin};
use super::{pagination, AppState};

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

/// GitLab's `GET /users` parameters, in declaration order. Filters GitLab
/// keeps for administrators (`admins`, `external`, `created_after`,
/// `created_before`, `order_by`, `sort`) are ignored for others, as GitLab
/// drops them.
fn user_filter(params: &Params, admin: bool) -> Result<UserFilter, ApiError> {
    let mut errors = Vec::new();
    let username = params.optional_string("username", &mut errors);
    let search = params.optional_string("search", &mut errors);
    let active = params.optional_bool("active", &mut errors).unwrap_or(false);
    let blocked = params
        .optional_bool("blocked", &mut errors)
        .unwrap_or(false);
    let external = params
        .optional_bool("external", &mut errors)
        .unwrap_or(false);
    let exclude_external = params
        .optional_bool("exclude_external", &mut errors)
        .unwrap_or(false);
    // No project bots exist here: accepted, and nothing to leave out.
    params.optional_bool("without_project_bots", &mut errors);
    let admins = params.optional_bool("admins", &mut errors).unwrap_or(false);
    let created_after = params.optional_time("created_after", &mut errors);
    let created_before = params.optional_time("created_before", &mut errors);
    let order = match params.get_str("order_by") {
        None => Some(UserOrder::Id),
        Some(raw) => UserOrder::parse(raw),
    };
    if order.is_none() {
        errors.push("order_by does not have a valid value".to_owned());
    }
    // GitLab lists users newest first.
    let ascending = params.ascending(false, &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::Params(errors));
    }
    Ok(UserFilter {
        username,
        search,
        // As GitLab: only administrators find users by their (private) email.
        search_emails: admin,
        blocked,
        active,
        admins: admin && admins,
        // Who is external is for administrators to know: both filters are
        // theirs (either would tell others who is).
        external: external && admin,
        exclude_external: exclude_external && admin,
        created_after: created_after.filter(|_| admin),
        created_before: created_before.filter(|_| admin),
        order: if admin {
            order.unwrap_or_default()
        } else {
            UserOrder::Id
        },
        ascending: admin && ascending,
    })
}

#[utoipa::path(
    get,
    path = "/api/v4/users",
    tag = "users",
    summary = "List users",
    params(crate::http::openapi::schemas::Pagination, ("username" = Option<String>, Query, description = "Exactly this username"), ("search" = Option<String>, Query, description = "In name, username and email"), ("active" = Option<bool>, Query, description = "Only active users"), ("blocked" = Option<bool>, Query, description = "Only blocked users"), ("external" = Option<bool>, Query, description = "Only external users"), ("exclude_external" = Option<bool>, Query, description = "No external users"), ("without_project_bots" = Option<bool>, Query, description = "Accepted (there are none)"), ("admins" = Option<bool>, Query, description = "Only administrators"), ("created_after" = Option<String>, Query, description = "ISO 8601 time"), ("created_before" = Option<String>, Query, description = "ISO 8601 time"), ("order_by" = Option<String>, Query, description = "`id`, `name`, `username`, `created_at` or `updated_at` (administrators)"), ("sort" = Option<crate::http::openapi::schemas::Sort>, Query, description = "The order")),
    responses(
        (status = 200, description = "Users (administrators get the fields of UserWithAdmin)", body = Vec<UserBasic>)
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
    let admin = is_admin(&state, &caller);
    let filter = user_filter(&params, admin)?;
    let req = pagination::request(&params);
    let (users, total) = state.services.list_users(&filter, req).await?;
    let url = &state.links();
    if admin {
        let items: Vec<UserWithAdmin<'_>> =
            users.iter().map(|u| UserWithAdmin::new(u, url)).collect();
        Ok(pagination::respond(&items, req, total, url.base, &uri))
    } else {
        let items: Vec<UserBasic<'_>> = users.iter().map(|u| UserBasic::new(u, url)).collect();
        Ok(pagination::respond(&items, req, total, url.base, &uri))
    }
}

#[utoipa::path(
    get,
    path = "/api/v4/users/{id}",
    tag = "users",
    summary = "A user",
    params(("id" = i64, Path, description = "The user's id")),
    responses(
        (status = 200, description = "The user: UserBasic, UserProfile for a public profile, UserWithAdmin for administrators", body = UserBasic)
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
    let id = parse_id(&id)?.ok_or(ApiError::NotFound("User"))?;
    let user = state
        .services
        .find_user(id)
        .await?
        .ok_or(ApiError::NotFound("User"))?;
    let url = &state.links();
    // GitLab: administrators see every detail; everyone else (the user
    // themselves too: their own details are at /user) the public profile.
    if is_admin(&state, &caller) {
        Ok(Json(UserWithAdmin::new(&user, url)).into_response())
    } else if user.profile.private_profile && caller.user.id != user.id {
        // GitLab: a private profile shows only the basics to others.
        Ok(Json(UserBasic::new(&user, url)).into_response())
    } else {
        Ok(Json(UserProfile::new(&user, url)).into_response())
    }
}

#[utoipa::path(
    post,
    path = "/api/v4/users",
    tag = "users",
    summary = "Create a user (administrators)",
    request_body(content((crate::http::openapi::schemas::UserCreate = "application/json"), (crate::http::openapi::schemas::UserCreate = "application/x-www-form-urlencoded"), (crate::http::openapi::schemas::UserCreate = "multipart/form-data"))),
    responses(
        (status = 201, description = "The user", body = UserWithAdmin),
        (status = 409, description = "Already taken", body = crate::http::openapi::schemas::GitLabError)
    )
)]
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
    let external = params
        .optional_bool("external", &mut errors)
        .unwrap_or(false);
    refuse_identities(&params)?;
    let profile = profile_changes(&params, &mut errors);
    let avatar = avatar_param(&params, &mut errors)?;
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
        external,
        profile,
        avatar,
    };
    let user = state
        .services
        .create_user(&caller.context(), &input)
        .await
        .map_err(user_not_found)?;
    Ok((
        StatusCode::CREATED,
        Json(UserWithAdmin::new(&user, &state.links())),
    )
        .into_response())
}

#[utoipa::path(
    put,
    path = "/api/v4/users/{id}",
    tag = "users",
    summary = "Change a user (administrators)",
    params(("id" = i64, Path, description = "The user's id")),
    request_body(content((crate::http::openapi::schemas::UserUpdate = "application/json"), (crate::http::openapi::schemas::UserUpdate = "application/x-www-form-urlencoded"), (crate::http::openapi::schemas::UserUpdate = "multipart/form-data"))),
    responses(
        (status = 200, description = "The user", body = UserWithAdmin),
        (status = 409, description = "Already taken", body = crate::http::openapi::schemas::GitLabError)
    )
)]
pub async fn update(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    params: Params,
) -> Result<Response, ApiError> {
    let caller = authenticate_admin(&state, &headers, &params, Need::Write).await?;
    let id = parse_id(&id)?.ok_or(ApiError::NotFound("User"))?;
    refuse_identities(&params)?;
    let mut errors = Vec::new();
    let changes = UserChanges {
        email: params.optional_string("email", &mut errors),
        name: params.optional_string("name", &mut errors),
        username: params.optional_string("username", &mut errors),
        password: params
            .optional_string("password", &mut errors)
            .map(Into::into),
        admin: params.optional_bool("admin", &mut errors),
        external: params.optional_bool("external", &mut errors),
        profile: profile_changes(&params, &mut errors),
        avatar: avatar_param(&params, &mut errors)?,
    };
    if !errors.is_empty() {
        return Err(ApiError::Params(errors));
    }
    let user = state
        .services
        .update_user(&caller.context(), id, &changes)
        .await
        .map_err(user_not_found)?;
    Ok(Json(UserWithAdmin::new(&user, &state.links())).into_response())
}

/// `GET /users/:id/projects` and `/users/:id/events`: latchkey keeps no
/// projects and records no contribution events, so for a user who exists
/// these lists are empty (what clients that page through them expect); for
/// one who does not, GitLab's 404.
pub async fn nothing_of_theirs(
    State(state): State<AppState>,
    Path(id): Path<String>,
    method: Method,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    params: Params,
) -> Result<Response, ApiError> {
    authenticate(&state, &headers, &params, Need::for_method(&method)).await?;
    let id = parse_id(&id)?.ok_or(ApiError::NotFound("User"))?;
    state
        .services
        .find_user(id)
        .await?
        .ok_or(ApiError::NotFound("User"))?;
    let req = pagination::request(&params);
    let none: [(); 0] = [];
    Ok(pagination::respond(
        &none,
        req,
        0,
        &state.external_url,
        &uri,
    ))
}

/// The `avatar` uploaded as a multipart file, checked by its content (a
/// file that is no accepted image is GitLab's validation error); `None`
/// without a file. Users' and groups' alike.
pub(crate) fn uploaded_avatar(params: &Params) -> Result<Option<Avatar>, ApiError> {
    let refused = |message: &str| {
        let mut errors = ValidationErrors::default();
        errors.add("avatar", message);
        ApiError::Validation(errors)
    };
    match params.file("avatar") {
        // Too big: refused before it is copied.
        Some(bytes) if bytes.len() > latchkey_core::user::MAX_AVATAR_BYTES => {
            Err(refused("is too big (should be at most 200 KiB)"))
        }
        Some(bytes) => Avatar::check(bytes.to_vec())
            .map(Some)
            .map_err(|m| refused(&m)),
        None => Ok(None),
    }
}

/// A user's `avatar`: an uploaded file; given as anything else, Grape's
/// "avatar is invalid".
fn avatar_param(params: &Params, errors: &mut Vec<String>) -> Result<Option<Avatar>, ApiError> {
    let uploaded = uploaded_avatar(params)?;
    if uploaded.is_none() && params.contains("avatar") {
        errors.push("avatar is invalid".to_owned());
    }
    Ok(uploaded)
}

/// `GET /uploads/-/system/user/avatar/:id/:file`: an uploaded avatar, as
/// uploaded, to anyone (as GitLab serves them).
pub async fn avatar(
    State(state): State<AppState>,
    Path((id, file)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let found = match parse_id(&id) {
        Ok(Some(id)) => state.services.find_avatar(id).await?,
        _ => None,
    };
    Ok(picture(found, &file))
}

/// An uploaded avatar (its content type and bytes), if `file` is the name
/// it is served under; else 404.
pub fn picture(found: Option<(String, Vec<u8>)>, file: &str) -> Response {
    let not_found = || (StatusCode::NOT_FOUND, "Not Found").into_response();
    let Some((content_type, bytes)) = found else {
        return not_found();
    };
    let served_as = ImageKind::from_content_type(&content_type).map(ImageKind::file_name);
    if served_as != Some(file) {
        return not_found();
    }
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=60".to_owned()),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; sandbox".to_owned(),
            ),
        ],
        bytes,
    )
        .into_response()
}

/// GitLab's identity parameters (a user's login at an external provider):
/// latchkey keeps no external identities, and says so rather than answer
/// 200 having ignored them.
fn refuse_identities(params: &Params) -> Result<(), ApiError> {
    if params.contains("provider") || params.contains("extern_uid") {
        return Err(ApiError::BadRequest(
            "external identities (provider, extern_uid) are not supported".to_owned(),
        ));
    }
    Ok(())
}

/// The profile fields GitLab's create and update take (`note` is for
/// administrators, who alone may call these). A field given as null
/// clears it.
fn profile_changes(params: &Params, errors: &mut Vec<String>) -> ProfileChanges {
    let text = |key: &str, errors: &mut Vec<String>| match params.string(key) {
        StrParam::Missing => None,
        StrParam::Invalid => {
            errors.push(format!("{key} is invalid"));
            None
        }
        StrParam::Null => Some(String::new()),
        StrParam::Value(v) => Some(v),
    };
    let integer = |key: &str, errors: &mut Vec<String>| match params.get_str(key) {
        None => None,
        Some(raw) => match raw.trim().parse::<i64>() {
            Ok(n) => Some(n),
            Err(_) => {
                errors.push(format!("{key} is invalid"));
                None
            }
        },
    };
    let projects_limit = integer("projects_limit", errors);
    ProfileChanges {
        bio: text("bio", errors),
        location: text("location", errors),
        website_url: text("website_url", errors),
        organization: text("organization", errors),
        job_title: text("job_title", errors),
        pronouns: text("pronouns", errors),
        public_email: text("public_email", errors),
        linkedin: text("linkedin", errors),
        twitter: text("twitter", errors),
        discord: text("discord", errors),
        skype: text("skype", errors),
        note: text("note", errors),
        private_profile: params.optional_bool("private_profile", errors),
        can_create_group: params.optional_bool("can_create_group", errors),
        projects_limit,
        theme_id: integer("theme_id", errors),
        color_scheme_id: integer("color_scheme_id", errors),
        commit_email: text("commit_email", errors),
    }
}

#[utoipa::path(
    delete,
    path = "/api/v4/users/{id}",
    tag = "users",
    summary = "Delete a user (administrators)",
    params(("id" = i64, Path, description = "The user's id"), ("hard_delete" = Option<bool>, Query, description = "Also what they own")),
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
    let mut errors = Vec::new();
    let hard_delete = params
        .optional_bool("hard_delete", &mut errors)
        .unwrap_or(false);
    if !errors.is_empty() {
        return Err(ApiError::Params(errors));
    }
    let id = parse_id(&id)?.ok_or(ApiError::NotFound("User"))?;
    state
        .services
        .delete_user(&caller.context(), id, hard_delete)
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

#[utoipa::path(
    post,
    path = "/api/v4/users/{id}/block",
    tag = "users",
    summary = "Block a user (administrators)",
    params(("id" = i64, Path, description = "The user's id")),
    responses(
        (status = 201, description = "`true` when blocked now; `null` when already blocked", body = Option<bool>)
    )
)]
pub async fn block(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    params: Params,
) -> Result<Response, ApiError> {
    set_state(state, id, headers, params, UserState::Blocked).await
}

#[utoipa::path(
    post,
    path = "/api/v4/users/{id}/unblock",
    tag = "users",
    summary = "Unblock a user (administrators)",
    params(("id" = i64, Path, description = "The user's id")),
    responses(
        (status = 201, description = "`true` when unblocked now; `false` when already active", body = Option<bool>)
    )
)]
pub async fn unblock(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    params: Params,
) -> Result<Response, ApiError> {
    set_state(state, id, headers, params, UserState::Active).await
}
