//! The profile page at a user's `web_url` (`/:username`, as GitLab), and the
//! HTML 404 a browser gets for a path that is not a page.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use latchkey_core::clock::gitlab_timestamp;
use latchkey_core::user::UserState;

use super::super::pages::{error_page, page, Nav};
use super::super::AppState;
use super::internal_page;

#[derive(Template)]
#[template(path = "profile.html")]
struct ProfilePage<'a> {
    nav: Nav,
    name: &'a str,
    username: &'a str,
    blocked: bool,
    private: bool,
    fields: Vec<(&'static str, &'a str)>,
    since: String,
    since_day: String,
}

/// `GET /:username`: the public profile, as GitLab shows it at the
/// `web_url` of its user entities. A private profile shows only the name.
pub async fn profile(
    State(state): State<AppState>,
    Path(username): Path<String>,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Response {
    // No user has a reserved name (`/favicon.ico`, `/robots.txt`, `/admin`…).
    if latchkey_core::user::is_reserved_name(&username) {
        return not_found_for(uri.path(), &headers);
    }
    let user = match state.services.find_user_by_username(&username).await {
        Ok(Some(u)) => u,
        Ok(None) => return not_found_for(uri.path(), &headers),
        Err(e) => return internal_page(e),
    };
    let nav = match super::current(&state, &headers).await {
        Ok(s) => super::nav_for(s.as_ref()),
        Err(e) => return internal_page(e),
    };
    let p = &user.profile;
    let fields: Vec<(&'static str, &str)> = [
        ("Bio", p.bio.as_str()),
        ("Pronouns", p.pronouns.as_str()),
        ("Job title", p.job_title.as_str()),
        ("Organization", p.organization.as_str()),
        ("Location", p.location.as_str()),
        ("Website", p.website_url.as_str()),
        ("Email", p.public_email.as_str()),
    ]
    .into_iter()
    .filter(|(_, v)| !v.is_empty())
    .collect();
    // A blocked user's page says so, and shows nothing else of theirs.
    let blocked = user.state == UserState::Blocked;
    let fields = if blocked { Vec::new() } else { fields };
    let since = gitlab_timestamp(user.created_at);
    let since_day = super::day(user.created_at);
    page(
        StatusCode::OK,
        ProfilePage {
            nav,
            name: if blocked { "Blocked user" } else { &user.name },
            username: &user.username,
            blocked,
            private: p.private_profile || blocked,
            fields,
            since,
            since_day,
        }
        .render(),
        "",
    )
}

/// GitLab's 404 page for a browser.
pub fn not_found_page() -> Response {
    error_page(
        StatusCode::NOT_FOUND,
        "Page not found",
        "The page you were looking for does not exist, or you may not see it.",
        None,
    )
}

/// Does a request for `path` get an HTML page when nothing answers it? Not
/// under the JSON endpoints (`/api`, `/oauth`, `/.well-known`, the health
/// and metrics endpoints under `/-/`), nor
/// for a client that asks for JSON rather than HTML.
pub fn wants_html(path: &str, headers: &HeaderMap) -> bool {
    let machine = ["/api/", "/oauth/", "/.well-known/"]
        .iter()
        .any(|p| path.starts_with(p))
        || path == "/api"
        || path == "/oauth"
        || super::super::params::is_operations_path(path);
    if machine {
        return false;
    }
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    !accept.contains("application/json") || accept.contains("text/html")
}

/// The 404 for `path`: the HTML page for a browser, GitLab's JSON otherwise
/// (see [`wants_html`]).
pub fn not_found_for(path: &str, headers: &HeaderMap) -> Response {
    if wants_html(path, headers) {
        not_found_page()
    } else {
        super::super::errors::ApiError::RouteNotFound.into_response()
    }
}
