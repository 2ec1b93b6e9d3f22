//! Who may use a page: the signed-in browser (or the answer that sends it
//! to sign in), the one whose form carries its session's CSRF token, and
//! the Admin Area's one gate, administrators (through Admin Mode when the
//! server's `admin_mode` is on).

use axum::http::HeaderMap;
use axum::response::Response;
use latchkey_core::user::UserState;

use super::super::params::Params;
use super::super::AppState;
use super::{csrf_failure, csrf_ok, current, internal_page, not_found_page, redirect, SignedIn};

/// Where the Admin Area sends a session that is not in Admin Mode.
pub(super) const ENTER_PATH: &str = "/admin/session/new";

/// The signed-in browser, or the answer that sends it to sign in first.
pub(super) async fn signed_in(
    state: &AppState,
    headers: &HeaderMap,
    back: &str,
) -> Result<SignedIn, Response> {
    match current(state, headers).await {
        Ok(Some(s)) => Ok(s),
        Ok(None) => Err(redirect(
            &super::append_query("/users/sign_in", &[("return_to", back)]),
            &[],
        )),
        Err(e) => Err(internal_page(e)),
    }
}

/// The signed-in browser whose form carries its session's CSRF token, or
/// the answer: to sign in (coming back to `back`), or the expired-form page.
pub(super) async fn posting(
    state: &AppState,
    headers: &HeaderMap,
    params: &Params,
    back: &str,
) -> Result<SignedIn, Response> {
    let s = signed_in(state, headers, back).await?;
    if !csrf_ok(state, headers, Some(&s.session), params) {
        return Err(csrf_failure());
    }
    Ok(s)
}

/// A signed-in administrator (in Admin Mode, when the server's
/// `admin_mode` is on), or the answer: to sign in, to re-enter the
/// password (`/admin/session/new`, coming back to `back`), or 404.
pub(super) async fn administrator(
    state: &AppState,
    headers: &HeaderMap,
    back: &str,
) -> Result<SignedIn, Response> {
    let s = signed_in(state, headers, back).await?;
    if !(s.user.admin && s.user.state == UserState::Active) {
        return Err(not_found_page());
    }
    // `current` asked whether the session is in Admin Mode (always, with
    // the setting off).
    if s.admin_mode || !state.services.config().admin_mode {
        Ok(s)
    } else {
        Err(redirect(
            &super::append_query(ENTER_PATH, &[("return_to", back)]),
            &[],
        ))
    }
}
