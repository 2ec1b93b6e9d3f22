//! User Settings → Password at GitLab's `/-/user_settings/password`: the
//! current password, then the new one twice. Every session of the user
//! ends; this browser gets a fresh one.

use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use latchkey_core::context::Via;
use latchkey_core::service::ServiceError;
use latchkey_core::session::service::SignInError;
use latchkey_core::user::UserChanges;
use secrecy::SecretString;

use super::super::pages::{page, Nav};
use super::super::params::Params;
use super::super::{request_id, AppState};
use super::gate::{posting, signed_in};
use super::{internal_page, session_csrf, set_cookie, with_cookies, SignedIn, SESSION_COOKIE};

const PASSWORD_PATH: &str = "/-/user_settings/password";

#[derive(Template)]
#[template(path = "settings_password.html")]
struct PasswordPage<'a> {
    nav: Nav,
    csrf: &'a str,
    changed: bool,
    error: Option<&'a str>,
}

fn render(
    s: &SignedIn,
    session: &str,
    status: StatusCode,
    changed: bool,
    error: Option<&str>,
) -> Response {
    let csrf = session_csrf(session);
    page(
        status,
        PasswordPage {
            nav: s.nav(),
            csrf: &csrf,
            changed,
            error,
        }
        .render(),
        "",
    )
}

/// `GET /-/user_settings/password`
pub async fn password_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match signed_in(&state, &headers, PASSWORD_PATH).await {
        Ok(s) => render(&s, &s.session, StatusCode::OK, false, None),
        Err(answer) => answer,
    }
}

/// `POST /-/user_settings/password`
pub async fn change_password(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Params,
) -> Response {
    let s = match posting(&state, &headers, &params, PASSWORD_PATH).await {
        Ok(s) => s,
        Err(answer) => return answer,
    };
    let refuse =
        |status: StatusCode, message: &str| render(&s, &s.session, status, false, Some(message));
    let current = params.get_str("current_password").unwrap_or("");
    let new = params.get_str("new_password").unwrap_or("");
    if new != params.get_str("password_confirmation").unwrap_or("") {
        return refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            "The password confirmation does not match the new password.",
        );
    }
    // The current password is checked as a sign-in is: failures count
    // towards the account's lockout.
    let ctx = request_id::context(Some(s.user.id), Via::Session);
    match state
        .services
        .sign_in(&ctx, &s.user.username, current)
        .await
    {
        Ok(_) => {}
        Err(SignInError::Invalid) => {
            return refuse(
                StatusCode::UNPROCESSABLE_ENTITY,
                "The current password is not correct.",
            )
        }
        Err(SignInError::Locked | SignInError::Throttled) => {
            return refuse(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many failed attempts. Try again in 15 minutes.",
            )
        }
        Err(SignInError::Blocked(reason)) => return refuse(StatusCode::FORBIDDEN, reason),
        Err(SignInError::Internal(e)) => return internal_page(e),
    }
    let changes = UserChanges {
        password: Some(SecretString::from(new.to_owned())),
        ..Default::default()
    };
    match state.services.update_user(&ctx, s.user.id, &changes).await {
        Ok(_) => {}
        Err(ServiceError::Validation(v)) => {
            return refuse(StatusCode::UNPROCESSABLE_ENTITY, &v.to_string())
        }
        Err(e) => return internal_page(e),
    }
    // The change ended every session of the user's; this browser stays
    // signed in with a new one.
    let user_agent = super::user_agent(&headers);
    match state
        .services
        .create_session(&ctx, s.user.id, user_agent)
        .await
    {
        Ok(fresh) => with_cookies(
            render(&s, &fresh, StatusCode::OK, true, None),
            &[set_cookie(&state, SESSION_COOKIE, &fresh, 86_400)],
        ),
        Err(e) => internal_page(e),
    }
}
