//! The browser side: sign-in, sign-out, the consent page and the
//! authorization endpoint. Pages are server-rendered, script-free, and sent
//! with `X-Frame-Options: DENY`, a strict CSP and `Cache-Control: no-store`.
//!
//! CSRF: forms of a signed-in browser carry a token derived from the
//! session secret, and only that token is accepted while a session exists;
//! without one (the sign-in form) a double-submit cookie is used. Cookies
//! are `HttpOnly`, `SameSite=Lax`, and when the external URL is https
//! `Secure` with the `__Host-` prefix (so no subdomain can plant them).

use super::request_id::Fault;
use askama::Template;
use axum::extract::{OriginalUri, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::{Cookie, SameSite};
use latchkey_core::authorize::{AuthorizeError, AuthorizeRequest, Interaction, PreAuthorized};
use latchkey_core::oauth::{ErrorCode, OAuthError};
use latchkey_core::scopes::describe;
use latchkey_core::secret;
use latchkey_core::service::ServiceError;
use latchkey_core::session::service::SignInError;
use latchkey_core::user::User;
use latchkey_core::StoreError;
use sha2::{Digest, Sha256};

use super::params::Params;
use super::{request_id, AppState};
use latchkey_core::context::Via;

pub const SESSION_COOKIE: &str = "_latchkey_session";
pub const CSRF_COOKIE: &str = "_latchkey_csrf";

/// Is this server behind https (by its external URL)?
fn behind_https(state: &AppState) -> bool {
    state.external_url.starts_with("https://")
}

/// A cookie's name on this server: `__Host-` prefixed behind https.
fn cookie_name(state: &AppState, base: &'static str) -> String {
    if behind_https(state) {
        host_only_name(base)
    } else {
        base.to_owned()
    }
}

/// `base`'s name behind https.
fn host_only_name(base: &str) -> String {
    format!("__Host-{}", base.trim_start_matches('_'))
}

/// Does the request carry a session cookie, under either of its names?
/// (Whether the session is live is not looked up: the rate limits ask
/// this of every request before routing.)
pub(crate) fn presents_session_cookie(headers: &HeaderMap) -> bool {
    cookie(headers, SESSION_COOKIE).is_some()
        || cookie(headers, &host_only_name(SESSION_COOKIE)).is_some()
}
const OOB: &[&str] = &[
    "urn:ietf:wg:oauth:2.0:oob",
    "urn:ietf:wg:oauth:2.0:oob:auto",
];

mod admin;
mod admin_audit;
mod admin_groups;
mod admin_mode;
mod admin_users;
pub mod app_pages;
pub(crate) mod authorize;
pub(crate) mod device;
mod forms;
mod gate;
mod group_page;
mod password;
mod profile;
mod sessions;
mod settings;
mod settings_apps;
mod sign_in;

pub use authorize::{authorize, decide, native_code};
pub use device::{device_confirm, device_form, device_lookup};
pub use group_page::group_page;
pub mod admin_area {
    //! The Admin Area's handlers, for the router.
    pub use super::admin::{applications, create_application, new_application, users};
    pub use super::admin_audit::audit_events;
    pub use super::admin_groups::{create_group, group_action, group_page, groups, new_group};
    pub use super::admin_mode::{enter, enter_form, leave};
    pub use super::admin_users::{
        block_user, confirm_delete_user, create_user, delete_user, edit_user, new_user, show_user,
        unblock_user, unlock_user, update_user,
    };
}
pub use password::{change_password, password_page};
pub use profile::{not_found_for, not_found_page, profile};
pub use sessions::{revoke_other_sessions, revoke_session, sessions_page};
pub use settings::{create_token, revoke_token, rotate_token, tokens_page};
pub use settings_apps::{applications_page, create_application, revoke_authorized};
pub use sign_in::{sign_in, sign_in_form, sign_out};

// --- templates ---------------------------------------------------------------------

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage<'a> {
    nav: Nav,
    username: Option<&'a str>,
    admin: bool,
}

pub async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        include_str!("../../../assets/latchkey.css"),
    )
        .into_response()
}

/// Pages that moved, and where they are now: GitLab's earlier
/// `/-/profile/…` paths, the bare section paths, and the Admin Area's root.
const MOVED: &[(&str, &str)] = &[
    (
        "/-/profile/personal_access_tokens",
        "/-/user_settings/personal_access_tokens",
    ),
    ("/-/profile/applications", "/-/user_settings/applications"),
    ("/-/profile/password/edit", "/-/user_settings/password"),
    (
        "/-/user_settings/password/edit",
        "/-/user_settings/password",
    ),
    ("/-/profile", "/-/user_settings/applications"),
    ("/-/user_settings", "/-/user_settings/applications"),
    ("/admin", "/admin/applications"),
];

/// `GET` a page that moved (`MOVED`): a permanent redirect keeping the
/// query, so that bookmarks and links that prefill a form
/// (`?name=…&scopes=…`) still work.
pub async fn moved(OriginalUri(uri): OriginalUri) -> Response {
    let Some((_, to)) = MOVED.iter().find(|(from, _)| *from == uri.path()) else {
        return not_found_page();
    };
    let location = match uri.query() {
        Some(q) => format!("{to}?{q}"),
        None => (*to).to_owned(),
    };
    let mut res = StatusCode::MOVED_PERMANENTLY.into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    res
}

/// `GET /-/assets/latchkey.js`: the pages' one script (copy buttons,
/// confirmations); every page works without it.
pub async fn script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        include_str!("../../../assets/latchkey.js"),
    )
        .into_response()
}

use super::pages::{error_page, page, Nav};

/// The day (YYYY-MM-DD, UTC) of a time in ms, as the pages show dates.
fn day(ms: i64) -> String {
    let t = latchkey_core::clock::gitlab_timestamp(ms);
    t.get(..10).unwrap_or(&t).to_owned()
}

/// The browser's `User-Agent`, if it sent one that is text.
fn user_agent(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
}

/// A moment (YYYY-MM-DD HH:MM UTC) of a time in ms, where the hour matters
/// (a secret's grace period).
fn moment(ms: i64) -> String {
    let t = latchkey_core::clock::gitlab_timestamp(ms);
    match (t.get(..10), t.get(11..16)) {
        (Some(d), Some(hm)) => format!("{d} {hm} UTC"),
        _ => t,
    }
}

// --- responses ---------------------------------------------------------------------

fn oauth_error_page(e: &OAuthError) -> Response {
    error_page(
        StatusCode::BAD_REQUEST,
        "An error has occurred",
        &e.description,
        Some(e.code.as_str()),
    )
}

/// The page for a service's error: 403 with a rule's words, 404, 422 with
/// a refused change's reasons, 503 while the database is away, 500 (naming
/// the request) for a fault.
pub(crate) fn internal_page(e: ServiceError) -> Response {
    match e {
        // A rule said no: GitLab's 403 page, with the rule's words.
        ServiceError::Forbidden(why) => error_page(
            StatusCode::FORBIDDEN,
            "Access denied",
            why.unwrap_or("You are not allowed to do this."),
            None,
        ),
        ServiceError::NotFound => not_found_page(),
        ServiceError::Validation(v) => error_page(
            StatusCode::UNPROCESSABLE_ENTITY,
            "The change was refused",
            &v.to_string(),
            None,
        ),
        ServiceError::Invalid(why) => error_page(
            StatusCode::UNPROCESSABLE_ENTITY,
            "The change was refused",
            &why,
            None,
        ),
        // The application or account was deleted while this request ran.
        ServiceError::Store(StoreError::Gone) => error_page(
            StatusCode::NOT_FOUND,
            "Not found",
            "The application or the account this request is for no longer exists.",
            None,
        ),
        e @ (ServiceError::Store(StoreError::Unavailable(_)) | ServiceError::Unavailable(_)) => {
            Fault {
                cause: latchkey_core::error::cause(e),
                unavailable: true,
            }
            .attach(error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Try again soon",
                "The service is temporarily unavailable.",
                None,
            ))
        }
        other => Fault {
            cause: latchkey_core::error::cause(other),
            unavailable: false,
        }
        .attach(error_page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong",
            "The server could not complete the request.",
            None,
        )),
    }
}

fn csrf_failure() -> Response {
    error_page(
        StatusCode::UNPROCESSABLE_ENTITY,
        "The form has expired",
        "The form could not be verified. Go back, reload the page and try again.",
        None,
    )
}

fn redirect(location: &str, cookies: &[String]) -> Response {
    let mut res = StatusCode::FOUND.into_response();
    let h = res.headers_mut();
    if let Ok(v) = HeaderValue::from_str(location) {
        h.insert(header::LOCATION, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    for c in cookies {
        if let Ok(v) = HeaderValue::from_str(c) {
            h.append(header::SET_COOKIE, v);
        }
    }
    res
}

fn with_cookies(mut res: Response, cookies: &[String]) -> Response {
    for c in cookies {
        if let Ok(v) = HeaderValue::from_str(c) {
            res.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    res
}

/// `uri` with `pairs` added to its query.
pub fn append_query(uri: &str, pairs: &[(&str, &str)]) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        q.append_pair(k, v);
    }
    let sep = if uri.contains('?') { '&' } else { '?' };
    format!("{uri}{sep}{}", q.finish())
}

// --- cookies, sessions, CSRF -------------------------------------------------------

/// The value of the cookie `name`, parsed by the `cookie` crate (through
/// axum-extra). The first of several with one name wins, as browsers send
/// the most specific first; `CookieJar` would keep the last.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_owned())
        .filter(|v| !v.is_empty())
}

/// A `Set-Cookie` value: host-only, HttpOnly, SameSite=Lax, Secure behind
/// https; `max_age` 0 deletes.
fn set_cookie(state: &AppState, base: &'static str, value: &str, max_age: i64) -> String {
    Cookie::build((cookie_name(state, base), value.to_owned()))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .max_age(time::Duration::seconds(max_age))
        .secure(behind_https(state))
        .build()
        .to_string()
}

fn session_csrf(session: &str) -> String {
    hex::encode(Sha256::digest(
        format!("latchkey-csrf:{session}").as_bytes(),
    ))
}

/// A signed-in browser.
pub struct SignedIn {
    pub user: User,
    /// The session cookie's value.
    pub session: String,
    /// When the user signed in (ms), OpenID Connect's `auth_time`.
    pub auth_time: i64,
    /// In Admin Mode, with the server's `admin_mode` on.
    pub admin_mode: bool,
}

impl SignedIn {
    /// The navigation bar of this browser's pages.
    pub(crate) fn nav(&self) -> Nav {
        Nav {
            user: Some(self.user.username.clone()),
            admin: self.user.admin && self.user.state == latchkey_core::user::UserState::Active,
            csrf: session_csrf(&self.session),
            sign_in_link: false,
            leave_admin_mode: self.admin_mode,
        }
    }
}

/// The navigation bar of a page for this browser, signed in or not.
fn nav_for(signed_in: Option<&SignedIn>) -> Nav {
    signed_in.map_or_else(Nav::signed_out, SignedIn::nav)
}

/// The signed-in user and their session cookie, if any.
pub async fn current(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<SignedIn>, ServiceError> {
    let Some(value) = cookie(headers, &cookie_name(state, SESSION_COOKIE)) else {
        return Ok(None);
    };
    let Some((user, auth_time)) = state.services.session_user(&value).await? else {
        return Ok(None);
    };
    request_id::set_user(user.id);
    // With Admin Mode on, an administrator's bar offers to leave it on
    // every page while the session is in it, as GitLab's does.
    let admin_mode = state.services.config().admin_mode
        && user.admin
        && state.services.in_admin_mode(&value).await?;
    Ok(Some(SignedIn {
        user,
        session: value,
        auth_time,
        admin_mode,
    }))
}

/// The CSRF token for a form, and a cookie to set when one had to be made.
fn csrf_for(
    state: &AppState,
    headers: &HeaderMap,
    session: Option<&str>,
) -> Result<(String, Vec<String>), ServiceError> {
    if let Some(s) = session {
        return Ok((session_csrf(s), Vec::new()));
    }
    if let Some(c) = cookie(headers, &cookie_name(state, CSRF_COOKIE)) {
        return Ok((c, Vec::new()));
    }
    let fresh = secret::random_hex(32)?;
    let set = set_cookie(state, CSRF_COOKIE, &fresh, 86_400);
    Ok((fresh, vec![set]))
}

/// Does the form's token match? With a live session (`session`) only the
/// session-bound token counts: a double-submit cookie can be planted by
/// anyone who can set a cookie for this host. Without one, the cookie's.
fn csrf_ok(state: &AppState, headers: &HeaderMap, session: Option<&str>, params: &Params) -> bool {
    let Some(sent) = params.get_str("authenticity_token") else {
        return false;
    };
    match session {
        Some(s) => secret::constant_time_eq(&session_csrf(s), sent),
        None => cookie(headers, &cookie_name(state, CSRF_COOKIE))
            .is_some_and(|c| secret::constant_time_eq(&c, sent)),
    }
}

/// Only local paths are followed after sign-in (no open redirects).
fn safe_return_to(raw: Option<&str>) -> &str {
    match raw {
        Some(p)
            if p.starts_with('/')
                && !p.starts_with("//")
                && !p.starts_with("/\\")
                && !p.chars().any(|c| c.is_control() || c == '\\') =>
        {
            p
        }
        _ => "/",
    }
}

// --- home, sign-in, sign-out ------------------------------------------------------------

pub async fn home(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let signed_in = match current(&state, &headers).await {
        Ok(s) => s,
        Err(e) => return internal_page(e),
    };
    page(
        StatusCode::OK,
        HomePage {
            nav: nav_for(signed_in.as_ref()),
            username: signed_in.as_ref().map(|s| s.user.username.as_str()),
            admin: signed_in.as_ref().is_some_and(|s| s.user.admin),
        }
        .render(),
        "",
    )
}
