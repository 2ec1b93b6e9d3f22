//! User Settings → Active sessions at GitLab's
//! `/-/user_settings/active_sessions`: the user's signed-in browsers (where
//! and with what each signed in, when, until when), this one marked; revoke
//! one, or sign out everywhere else.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use latchkey_core::context::Via;
use latchkey_core::secret;
use latchkey_core::service::ServiceError;
use latchkey_core::session::SessionInfo;

use super::super::pages::{page, Nav};
use super::super::params::Params;
use super::super::{request_id, AppState};
use super::gate::{posting, signed_in};
use super::{internal_page, moment, not_found_page, redirect, session_csrf, SignedIn};

const SESSIONS_PATH: &str = "/-/user_settings/active_sessions";

struct Row {
    id: String,
    browser: String,
    user_agent: String,
    ip: String,
    signed_in: String,
    expires: String,
    current: bool,
}

#[derive(Template)]
#[template(path = "settings_sessions.html")]
struct SessionsPage<'a> {
    nav: Nav,
    csrf: &'a str,
    notice: Option<&'a str>,
    sessions: Vec<Row>,
}

/// A browser and system named from a `User-Agent`, as a person says it
/// ("Firefox on Linux"); "Unknown browser" when nothing is recognised.
fn browser_of(user_agent: &str) -> String {
    const BROWSERS: [(&str, &str); 8] = [
        ("Edg/", "Edge"),
        ("OPR/", "Opera"),
        ("Firefox/", "Firefox"),
        ("Chromium/", "Chromium"),
        ("Chrome/", "Chrome"),
        ("Safari/", "Safari"),
        ("curl/", "curl"),
        ("python-requests/", "Python requests"),
    ];
    const SYSTEMS: [(&str, &str); 7] = [
        ("Android", "Android"),
        ("iPhone", "iOS"),
        ("iPad", "iPadOS"),
        ("Windows", "Windows"),
        ("Mac OS X", "macOS"),
        ("CrOS", "ChromeOS"),
        ("Linux", "Linux"),
    ];
    let browser = BROWSERS
        .iter()
        .find(|(needle, _)| user_agent.contains(needle))
        .map(|(_, name)| *name);
    let system = SYSTEMS
        .iter()
        .find(|(needle, _)| user_agent.contains(needle))
        .map(|(_, name)| *name);
    match (browser, system) {
        (Some(b), Some(s)) => format!("{b} on {s}"),
        (Some(b), None) => b.to_owned(),
        (None, Some(s)) => format!("A browser on {s}"),
        (None, None) => "Unknown browser".to_owned(),
    }
}

fn row(s: &SessionInfo, current_digest: &str) -> Row {
    let user_agent = s.user_agent.clone().unwrap_or_default();
    Row {
        id: s.public_id(),
        browser: browser_of(&user_agent),
        user_agent,
        ip: s.ip.clone().unwrap_or_else(|| "unknown".to_owned()),
        signed_in: moment(s.created_at),
        expires: moment(s.expires_at),
        current: secret::constant_time_eq(&s.digest, current_digest),
    }
}

async fn render(
    state: &AppState,
    s: &SignedIn,
    status: StatusCode,
    notice: Option<&str>,
) -> Response {
    let sessions = match state.services.user_sessions(s.user.id).await {
        Ok(list) => list,
        Err(e) => return internal_page(e),
    };
    let mine = secret::digest(&s.session);
    let mut rows: Vec<Row> = sessions.iter().map(|x| row(x, &mine)).collect();
    // This browser's first.
    rows.sort_by_key(|r| !r.current);
    let csrf = session_csrf(&s.session);
    page(
        status,
        SessionsPage {
            nav: s.nav(),
            csrf: &csrf,
            notice,
            sessions: rows,
        }
        .render(),
        "",
    )
}

/// `GET /-/user_settings/active_sessions`
pub async fn sessions_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match signed_in(&state, &headers, SESSIONS_PATH).await {
        Ok(s) => render(&state, &s, StatusCode::OK, None).await,
        Err(answer) => answer,
    }
}

/// `POST /-/user_settings/active_sessions/:id/revoke`: that browser is
/// signed out at once (this one too, if it is the one named).
pub async fn revoke_session(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    params: Params,
) -> Response {
    let s = match posting(&state, &headers, &params, SESSIONS_PATH).await {
        Ok(s) => s,
        Err(answer) => return answer,
    };
    let ctx = request_id::context(Some(s.user.id), Via::Session);
    match state.services.end_user_session(&ctx, s.user.id, &id).await {
        Ok(()) => redirect(SESSIONS_PATH, &[]),
        Err(ServiceError::NotFound) => not_found_page(),
        Err(e) => internal_page(e),
    }
}

/// `POST /-/user_settings/active_sessions/revoke_others`: every other
/// browser of the user's is signed out; this one stays.
pub async fn revoke_other_sessions(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Params,
) -> Response {
    let s = match posting(&state, &headers, &params, SESSIONS_PATH).await {
        Ok(s) => s,
        Err(answer) => return answer,
    };
    let ctx = request_id::context(Some(s.user.id), Via::Session);
    match state
        .services
        .end_other_sessions(&ctx, s.user.id, &s.session)
        .await
    {
        Ok(0) => {
            render(
                &state,
                &s,
                StatusCode::OK,
                Some("No other session was signed in."),
            )
            .await
        }
        Ok(n) => {
            let notice = if n == 1 {
                "1 other session was signed out.".to_owned()
            } else {
                format!("{n} other sessions were signed out.")
            };
            render(&state, &s, StatusCode::OK, Some(&notice)).await
        }
        Err(e) => internal_page(e),
    }
}

#[cfg(test)]
mod tests {
    use super::browser_of;

    #[test]
    fn browsers_are_named_as_people_say_them() {
        let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
        assert_eq!(browser_of(firefox), "Firefox on Linux");
        let chrome = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 \
                      (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
        assert_eq!(browser_of(chrome), "Chrome on Windows");
        let edge = "Mozilla/5.0 (Windows NT 10.0) AppleWebKit/537.36 (KHTML, like Gecko) \
                    Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0";
        assert_eq!(browser_of(edge), "Edge on Windows");
        let iphone = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 \
                      (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1";
        assert_eq!(browser_of(iphone), "Safari on iOS");
        assert_eq!(browser_of("curl/8.5.0"), "curl");
        assert_eq!(browser_of(""), "Unknown browser");
    }
}
