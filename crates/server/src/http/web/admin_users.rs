//! One user in the Admin Area, at GitLab's paths: new (`/admin/users/new`,
//! a generated password shown once when none is given), the user's page
//! (`/admin/users/:username`), edit, block, unblock, unlock (the sign-in
//! lockout) and delete after typing the username. The rules are the
//! service's, as the Users API calls them: a refusal (blocking yourself,
//! demoting or deleting the last administrator) is shown in its words.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use latchkey_core::context::Via;
use latchkey_core::secret;
use latchkey_core::service::ServiceError;
use latchkey_core::user::{User, UserChanges, UserInput, UserState};
use latchkey_core::StoreError;

use super::super::pages::{page, Nav};
use super::super::params::Params;
use super::super::{request_id, AppState};
use super::gate::administrator;
use super::{
    csrf_failure, csrf_ok, day, internal_page, not_found_page, redirect, session_csrf, SignedIn,
};

/// Where a user's pages are.
fn user_path(username: &str) -> String {
    let segment: String = form_urlencoded::byte_serialize(username.as_bytes()).collect();
    format!("/admin/users/{}", segment.replace('+', "%20"))
}

/// Is the checkbox `key` ticked (`1` or `true`; a hidden `0` before it
/// says it was shown and left unticked)?
fn ticked(params: &Params, key: &str) -> bool {
    params.get_str(key).is_some_and(|v| v == "1" || v == "true")
}

/// A refusal's words for the page: the service's reasons, and a taken
/// username or email as GitLab says it; `None` for a fault.
fn refusal(e: &ServiceError) -> Option<String> {
    match e {
        ServiceError::Validation(v) => Some(v.to_string()),
        ServiceError::Invalid(m) => Some(m.clone()),
        ServiceError::Forbidden(Some(why)) => Some((*why).to_owned()),
        ServiceError::Store(StoreError::Conflict(what)) => Some(match what.as_str() {
            "email" => "Email has already been taken".to_owned(),
            "username" => "Username has already been taken".to_owned(),
            other => format!("{other} has already been taken"),
        }),
        _ => None,
    }
}

/// The administrator and the user `username` names; else the answer
/// (sign in, Admin Mode, 404, or the expired-form page for a POST whose
/// CSRF token does not match).
async fn found(
    state: &AppState,
    headers: &HeaderMap,
    username: &str,
    posted: Option<&Params>,
) -> Result<(SignedIn, User), Response> {
    let s = administrator(state, headers, &user_path(username)).await?;
    if let Some(params) = posted {
        if !csrf_ok(state, headers, Some(&s.session), params) {
            return Err(csrf_failure());
        }
    }
    match state.services.find_user_by_username(username).await {
        Ok(Some(user)) => Ok((s, user)),
        Ok(None) => Err(not_found_page()),
        Err(e) => Err(internal_page(e)),
    }
}

/// What the user form shows.
#[derive(Default)]
struct UserForm {
    name: String,
    username: String,
    email: String,
    admin: bool,
    external: bool,
}

impl UserForm {
    fn read(params: &Params) -> Self {
        let text = |key: &str| params.get_str(key).unwrap_or("").trim().to_owned();
        Self {
            name: text("name"),
            username: text("username"),
            email: text("email"),
            admin: ticked(params, "admin"),
            external: ticked(params, "external"),
        }
    }

    fn of(user: &User) -> Self {
        Self {
            name: user.name.clone(),
            username: user.username.clone(),
            email: user.email.clone(),
            admin: user.admin,
            external: user.external,
        }
    }
}

#[derive(Template)]
#[template(path = "admin_user_form.html")]
struct FormPage<'a> {
    nav: Nav,
    section: &'a str,
    csrf: &'a str,
    error: Option<&'a str>,
    /// `None` for a new user; else the user's page.
    editing: Option<String>,
    form: &'a UserForm,
}

fn form_page(
    s: &SignedIn,
    status: StatusCode,
    editing: Option<String>,
    form: &UserForm,
    error: Option<&str>,
) -> Response {
    let csrf = session_csrf(&s.session);
    page(
        status,
        FormPage {
            nav: s.nav(),
            section: "users",
            csrf: &csrf,
            error,
            editing,
            form,
        }
        .render(),
        "",
    )
}

/// `GET /admin/users/new`
pub async fn new_user(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match administrator(&state, &headers, "/admin/users/new").await {
        Ok(s) => form_page(&s, StatusCode::OK, None, &UserForm::default(), None),
        Err(answer) => answer,
    }
}

/// `POST /admin/users`: a new user; their page, with the password shown
/// once when it was generated.
pub async fn create_user(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Params,
) -> Response {
    let params = params.unnest("user");
    let s = match administrator(&state, &headers, "/admin/users/new").await {
        Ok(s) => s,
        Err(answer) => return answer,
    };
    if !csrf_ok(&state, &headers, Some(&s.session), &params) {
        return csrf_failure();
    }
    let form = UserForm::read(&params);
    // No password given: a random one, as the Users API's
    // `force_random_password` makes, shown once on the next page.
    let (password, generated) = match params.get_str("password") {
        Some(p) => (p.to_owned(), false),
        None => match secret::random_hex(24) {
            Ok(p) => (p, true),
            Err(e) => return internal_page(ServiceError::from(e)),
        },
    };
    let input = UserInput {
        username: form.username.clone(),
        email: form.email.clone(),
        name: form.name.clone(),
        password: Some(password.clone().into()),
        admin: form.admin,
        external: form.external,
        ..Default::default()
    };
    let ctx = request_id::context(Some(s.user.id), Via::Session);
    match state.services.create_user(&ctx, &input).await {
        Ok(user) => {
            let shown = Shown {
                notice: Some("The user was created."),
                password: generated.then_some(password.as_str()),
                error: None,
            };
            show_page(&state, &s, StatusCode::OK, &user, shown).await
        }
        Err(e) => match refusal(&e) {
            Some(why) => form_page(
                &s,
                StatusCode::UNPROCESSABLE_ENTITY,
                None,
                &form,
                Some(&why),
            ),
            None => internal_page(e),
        },
    }
}

#[derive(Template)]
#[template(path = "admin_user_show.html")]
struct ShowPage<'a> {
    nav: Nav,
    section: &'a str,
    csrf: &'a str,
    base: String,
    notice: Option<&'a str>,
    password: Option<&'a str>,
    error: Option<&'a str>,
    user: &'a User,
    blocked: bool,
    locked: bool,
    role: &'a str,
    created: String,
    yourself: bool,
}

/// What the user's page says besides the user.
#[derive(Default)]
struct Shown<'a> {
    notice: Option<&'a str>,
    /// A generated password: shown this once.
    password: Option<&'a str>,
    error: Option<&'a str>,
}

async fn show_page(
    state: &AppState,
    s: &SignedIn,
    status: StatusCode,
    user: &User,
    shown: Shown<'_>,
) -> Response {
    let locked = match state.services.sign_in_locked(user.id).await {
        Ok(l) => l,
        Err(e) => return internal_page(e),
    };
    let csrf = session_csrf(&s.session);
    page(
        status,
        ShowPage {
            nav: s.nav(),
            section: "users",
            csrf: &csrf,
            base: user_path(&user.username),
            notice: shown.notice,
            password: shown.password,
            error: shown.error,
            user,
            blocked: user.state == UserState::Blocked,
            locked,
            role: if user.admin {
                "Administrator"
            } else {
                "Regular"
            },
            created: day(user.created_at),
            yourself: user.id == s.user.id,
        }
        .render(),
        "",
    )
}

/// `GET /admin/users/:username`
pub async fn show_user(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(username): Path<String>,
) -> Response {
    match found(&state, &headers, &username, None).await {
        Ok((s, user)) => show_page(&state, &s, StatusCode::OK, &user, Shown::default()).await,
        Err(answer) => answer,
    }
}

/// `GET /admin/users/:username/edit`
pub async fn edit_user(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(username): Path<String>,
) -> Response {
    match found(&state, &headers, &username, None).await {
        Ok((s, user)) => {
            let editing = Some(user_path(&user.username));
            form_page(&s, StatusCode::OK, editing, &UserForm::of(&user), None)
        }
        Err(answer) => answer,
    }
}

/// `POST /admin/users/:username`: the edit form's name, email and flags;
/// back to the user's page, or the form again (422) with what was refused.
pub async fn update_user(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(username): Path<String>,
    params: Params,
) -> Response {
    let params = params.unnest("user");
    let (s, user) = match found(&state, &headers, &username, Some(&params)).await {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    let mut form = UserForm::read(&params);
    form.username.clone_from(&user.username);
    let changes = UserChanges {
        name: Some(form.name.clone()),
        email: Some(form.email.clone()),
        admin: Some(form.admin),
        external: Some(form.external),
        ..Default::default()
    };
    let ctx = request_id::context(Some(s.user.id), Via::Session);
    match state.services.update_user(&ctx, user.id, &changes).await {
        Ok(user) => redirect(&user_path(&user.username), &[]),
        Err(ServiceError::NotFound) => not_found_page(),
        Err(e) => match refusal(&e) {
            Some(why) => form_page(
                &s,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(user_path(&user.username)),
                &form,
                Some(&why),
            ),
            None => internal_page(e),
        },
    }
}

/// Block or unblock, then back to the user's page; a refusal (yourself,
/// the last administrator) is shown there with 422.
async fn set_state(
    state: AppState,
    headers: HeaderMap,
    username: String,
    params: Params,
    to: UserState,
) -> Response {
    let (s, user) = match found(&state, &headers, &username, Some(&params)).await {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    let ctx = request_id::context(Some(s.user.id), Via::Session);
    match state.services.set_user_state(&ctx, user.id, to).await {
        Ok(_) => redirect(&user_path(&user.username), &[]),
        Err(ServiceError::NotFound) => not_found_page(),
        Err(e) => match refusal(&e) {
            Some(why) => {
                let shown = Shown {
                    error: Some(&why),
                    ..Shown::default()
                };
                show_page(&state, &s, StatusCode::UNPROCESSABLE_ENTITY, &user, shown).await
            }
            None => internal_page(e),
        },
    }
}

/// `POST /admin/users/:username/block`
pub async fn block_user(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(username): Path<String>,
    params: Params,
) -> Response {
    set_state(state, headers, username, params, UserState::Blocked).await
}

/// `POST /admin/users/:username/unblock`
pub async fn unblock_user(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(username): Path<String>,
    params: Params,
) -> Response {
    set_state(state, headers, username, params, UserState::Active).await
}

/// `POST /admin/users/:username/unlock`: the sign-in lockout lifted.
pub async fn unlock_user(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(username): Path<String>,
    params: Params,
) -> Response {
    let (s, user) = match found(&state, &headers, &username, Some(&params)).await {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    let ctx = request_id::context(Some(s.user.id), Via::Session);
    match state.services.unlock_user(&ctx, &user).await {
        Ok(_) => redirect(&user_path(&user.username), &[]),
        Err(e) => internal_page(e),
    }
}

#[derive(Template)]
#[template(path = "admin_user_delete.html")]
struct DeletePage<'a> {
    nav: Nav,
    section: &'a str,
    csrf: &'a str,
    base: String,
    error: Option<&'a str>,
    user: &'a User,
}

fn delete_page(s: &SignedIn, status: StatusCode, user: &User, error: Option<&str>) -> Response {
    let csrf = session_csrf(&s.session);
    page(
        status,
        DeletePage {
            nav: s.nav(),
            section: "users",
            csrf: &csrf,
            base: user_path(&user.username),
            error,
            user,
        }
        .render(),
        "",
    )
}

/// `GET /admin/users/:username/delete`: type the username to confirm.
pub async fn confirm_delete_user(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(username): Path<String>,
) -> Response {
    match found(&state, &headers, &username, None).await {
        Ok((s, user)) => delete_page(&s, StatusCode::OK, &user, None),
        Err(answer) => answer,
    }
}

/// `POST /admin/users/:username/delete`: the user is gone (their tokens,
/// applications, sessions and memberships with them); back to the list.
pub async fn delete_user(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(username): Path<String>,
    params: Params,
) -> Response {
    let (s, user) = match found(&state, &headers, &username, Some(&params)).await {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    let typed = params.get_str("confirm_username").unwrap_or("").trim();
    if typed != user.username {
        let why = format!(
            "Type the username, {}, to confirm the deletion.",
            user.username
        );
        return delete_page(&s, StatusCode::UNPROCESSABLE_ENTITY, &user, Some(&why));
    }
    let ctx = request_id::context(Some(s.user.id), Via::Session);
    match state.services.delete_user(&ctx, user.id, false).await {
        Ok(()) | Err(ServiceError::NotFound) => redirect("/admin/users", &[]),
        Err(e) => match refusal(&e) {
            Some(why) => delete_page(&s, StatusCode::UNPROCESSABLE_ENTITY, &user, Some(&why)),
            None => internal_page(e),
        },
    }
}
