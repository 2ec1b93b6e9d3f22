//! Admin Mode's pages (GitLab's paths): with the server's `admin_mode` on,
//! the Admin Area sends an administrator here to enter the password again
//! (`/admin/session/new`), and "Leave Admin Mode" ends it
//! (`/admin/session/destroy`). The rule and its storage are the core's
//! (`session::admin_mode`).

use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use latchkey_core::context::Via;
use latchkey_core::session::service::SignInError;
use latchkey_core::user::UserState;

use super::super::pages::{page, Nav};
use super::super::params::Params;
use super::super::{request_id, AppState};
use super::gate::{posting, signed_in, ENTER_PATH};
use super::{internal_page, not_found_page, redirect, safe_return_to, session_csrf, SignedIn};

#[derive(Template)]
#[template(path = "admin_mode.html")]
struct EnterPage<'a> {
    nav: Nav,
    csrf: &'a str,
    return_to: &'a str,
    error: Option<&'a str>,
}

/// Where to go once in Admin Mode: a local Admin Area path, else its start.
fn back_to(params: &Params) -> &str {
    match safe_return_to(params.get_str("return_to")) {
        p if p.starts_with("/admin/") => p,
        _ => "/admin/applications",
    }
}

fn form(s: &SignedIn, status: StatusCode, return_to: &str, error: Option<&str>) -> Response {
    page(
        status,
        EnterPage {
            nav: s.nav(),
            csrf: &session_csrf(&s.session),
            return_to,
            error,
        }
        .render(),
        "",
    )
}

/// A signed-in active administrator, or the answer (to sign in, or 404).
async fn administrator(
    state: &AppState,
    headers: &HeaderMap,
    params: Option<&Params>,
) -> Result<SignedIn, Response> {
    let s = match params {
        Some(p) => posting(state, headers, p, ENTER_PATH).await?,
        None => signed_in(state, headers, ENTER_PATH).await?,
    };
    if s.user.admin && s.user.state == UserState::Active {
        Ok(s)
    } else {
        Err(not_found_page())
    }
}

/// `GET /admin/session/new[?return_to=…]`: the password form. Straight on
/// when there is nothing to enter (the setting is off, or the session is
/// in Admin Mode already).
pub async fn enter_form(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Params,
) -> Response {
    let s = match administrator(&state, &headers, None).await {
        Ok(s) => s,
        Err(answer) => return answer,
    };
    let back = back_to(&params);
    match state.services.in_admin_mode(&s.session).await {
        Ok(true) => redirect(back, &[]),
        Ok(false) => form(&s, StatusCode::OK, back, None),
        Err(e) => internal_page(e),
    }
}

/// `POST /admin/session`: the password again, then on to `return_to`.
pub async fn enter(State(state): State<AppState>, headers: HeaderMap, params: Params) -> Response {
    let s = match administrator(&state, &headers, Some(&params)).await {
        Ok(s) => s,
        Err(answer) => return answer,
    };
    let back = back_to(&params);
    let password = params.get_str("password").unwrap_or("");
    let ctx = request_id::context(Some(s.user.id), Via::Session);
    let refused = |status, message: &str| form(&s, status, back, Some(message));
    match state
        .services
        .enter_admin_mode(&ctx, &s.user, &s.session, password)
        .await
    {
        Ok(()) => redirect(back, &[]),
        Err(SignInError::Invalid) => refused(StatusCode::UNAUTHORIZED, "Invalid password."),
        Err(SignInError::Locked) => refused(
            StatusCode::TOO_MANY_REQUESTS,
            "Your account is locked after too many failed attempts. Try again in 15 minutes.",
        ),
        Err(SignInError::Throttled) => refused(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many failed attempts from your address. Try again in 15 minutes.",
        ),
        Err(SignInError::Blocked(reason)) => refused(StatusCode::FORBIDDEN, reason),
        Err(SignInError::Internal(e)) => internal_page(e),
    }
}

/// `POST /admin/session/destroy`: leave Admin Mode.
pub async fn leave(State(state): State<AppState>, headers: HeaderMap, params: Params) -> Response {
    let s = match posting(&state, &headers, &params, "/").await {
        Ok(s) => s,
        Err(answer) => return answer,
    };
    let ctx = request_id::context(Some(s.user.id), Via::Session);
    match state.services.leave_admin_mode(&ctx, &s.session).await {
        Ok(()) => redirect("/", &[]),
        Err(e) => internal_page(e),
    }
}
