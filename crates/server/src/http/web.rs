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
use latchkey_core::oauth::{ErrorCode, OAuthError};
use latchkey_core::oauth_flows::{
    AuthorizeError, AuthorizeRequest, Interaction, PreAuthorized, SignInError,
};
use latchkey_core::scopes::describe;
use latchkey_core::secret;
use latchkey_core::service::ServiceError;
use latchkey_core::user::User;
use latchkey_core::StoreError;
use sha2::{Digest, Sha256};

use super::params::Params;
use super::{AppState, ClientAddr};

pub const SESSION_COOKIE: &str = "_latchkey_session";
pub const CSRF_COOKIE: &str = "_latchkey_csrf";

/// Is this server behind https (by its external URL)?
fn behind_https(state: &AppState) -> bool {
    state.external_url.starts_with("https://")
}

/// A cookie's name on this server: `__Host-` prefixed behind https.
fn cookie_name(state: &AppState, base: &'static str) -> String {
    if behind_https(state) {
        format!("__Host-{}", base.trim_start_matches('_'))
    } else {
        base.to_owned()
    }
}
const OOB: &[&str] = &[
    "urn:ietf:wg:oauth:2.0:oob",
    "urn:ietf:wg:oauth:2.0:oob:auto",
];

// --- templates ---------------------------------------------------------------------

#[derive(Template)]
#[template(path = "sign_in.html")]
struct SignInPage<'a> {
    csrf: &'a str,
    return_to: &'a str,
    login: &'a str,
    error: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "authorize.html")]
struct AuthorizePage<'a> {
    app_name: &'a str,
    username: &'a str,
    scopes: Vec<(String, String)>,
    redirect_host: String,
    csrf: &'a str,
    fields: Vec<(&'static str, String)>,
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    description: &'a str,
    code: Option<&'a str>,
    request_id: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "code.html")]
struct CodePage<'a> {
    code: &'a str,
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage<'a> {
    username: Option<&'a str>,
    csrf: &'a str,
}

pub async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        include_str!("../../assets/latchkey.css"),
    )
        .into_response()
}

// --- responses ---------------------------------------------------------------------

/// An HTML page with the security headers. `form_targets` extends the
/// CSP's `form-action` (the consent form's redirect target).
fn page(status: StatusCode, body: Result<String, askama::Error>, form_targets: &str) -> Response {
    let html = match body {
        Ok(h) => h,
        Err(e) => {
            tracing::error!(error = %e, "template rendering failed");
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                "500 Internal Server Error",
            )
                .into_response();
        }
    };
    let csp = format!(
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'{form_targets}; \
         frame-ancestors 'none'; base-uri 'none'"
    );
    let mut res = (status, html).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if let Ok(v) = HeaderValue::from_str(&csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    res
}

pub(crate) fn error_page(
    status: StatusCode,
    title: &str,
    description: &str,
    code: Option<&str>,
) -> Response {
    // A fault's page names the request, to quote in a report.
    let request_id = status
        .is_server_error()
        .then(super::request_id::current)
        .flatten();
    page(
        status,
        ErrorPage {
            title,
            description,
            code,
            request_id: request_id.as_deref(),
        }
        .render(),
        "",
    )
}

fn oauth_error_page(e: &OAuthError) -> Response {
    error_page(
        StatusCode::BAD_REQUEST,
        "An error has occurred",
        &e.description,
        Some(e.code.as_str()),
    )
}

pub(crate) fn internal_page(e: ServiceError) -> Response {
    match e {
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

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
}

fn set_cookie(state: &AppState, base: &'static str, value: &str, max_age: i64) -> String {
    let name = cookie_name(state, base);
    let secure = if behind_https(state) { "; Secure" } else { "" };
    format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}")
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
}

/// The signed-in user and their session cookie, if any.
pub async fn current(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<SignedIn>, ServiceError> {
    let Some(value) = cookie(headers, &cookie_name(state, SESSION_COOKIE)) else {
        return Ok(None);
    };
    Ok(state
        .services
        .session_user(value)
        .await?
        .map(|(user, auth_time)| SignedIn {
            user,
            session: value.to_owned(),
            auth_time,
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
        return Ok((c.to_owned(), Vec::new()));
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
            .is_some_and(|c| secret::constant_time_eq(c, sent)),
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
    let (csrf, cookies) = match csrf_for(
        &state,
        &headers,
        signed_in.as_ref().map(|s| s.session.as_str()),
    ) {
        Ok(c) => c,
        Err(e) => return internal_page(e),
    };
    let username = signed_in.as_ref().map(|s| s.user.username.as_str());
    with_cookies(
        page(
            StatusCode::OK,
            HomePage {
                username,
                csrf: &csrf,
            }
            .render(),
            "",
        ),
        &cookies,
    )
}

pub async fn sign_in_form(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Params,
) -> Response {
    let return_to = safe_return_to(params.get_str("return_to"));
    // `reauthenticate`: the authorization endpoint asks for a fresh sign-in
    // (OpenID Connect's prompt=login or max_age), so the form is shown even
    // to a signed-in browser.
    let reauthenticate = params.get_str("reauthenticate").is_some();
    let signed_in = match current(&state, &headers).await {
        Ok(Some(_)) if !reauthenticate => return redirect(return_to, &[]),
        Ok(s) => s,
        Err(e) => return internal_page(e),
    };
    let session = signed_in.as_ref().map(|s| s.session.as_str());
    let (csrf, cookies) = match csrf_for(&state, &headers, session) {
        Ok(c) => c,
        Err(e) => return internal_page(e),
    };
    let body = SignInPage {
        csrf: &csrf,
        return_to,
        login: "",
        error: None,
    }
    .render();
    with_cookies(page(StatusCode::OK, body, ""), &cookies)
}

pub async fn sign_in(
    State(state): State<AppState>,
    ClientAddr(address): ClientAddr,
    headers: HeaderMap,
    params: Params,
) -> Response {
    let signed_in = match current(&state, &headers).await {
        Ok(s) => s,
        Err(e) => return internal_page(e),
    };
    // With a session, only its own token: a planted cookie must not sign
    // the browser into another account (login CSRF). A stale sign-in form
    // from before the session began gets "the form has expired".
    let session = signed_in.as_ref().map(|s| s.session.as_str());
    if !csrf_ok(&state, &headers, session, &params) {
        return csrf_failure();
    }
    let return_to = safe_return_to(params.get_str("return_to")).to_owned();
    let login = params.get_str("user[login]").unwrap_or("").to_owned();
    let password = params.get_str("user[password]").unwrap_or("");
    let failure = |status: StatusCode, message: &str| {
        let (csrf, cookies) = match csrf_for(&state, &headers, session) {
            Ok(c) => c,
            Err(e) => return internal_page(e),
        };
        let body = SignInPage {
            csrf: &csrf,
            return_to: &return_to,
            login: &login,
            error: Some(message),
        }
        .render();
        with_cookies(page(status, body, ""), &cookies)
    };
    match state.services.sign_in(&login, password, &address).await {
        Ok(user) => match state.services.create_session(user.id).await {
            Ok(value) => {
                // Signing in again (a fresh sign-in the client asked for, or
                // another account) replaces the browser's old session.
                if let Some(old) = session {
                    if let Err(e) = state.services.end_session(old).await {
                        return internal_page(e);
                    }
                }
                tracing::info!(user = %user.username, "signed in");
                redirect(&return_to, &[set_cookie(&state, SESSION_COOKIE, &value, 86_400)])
            }
            Err(e) => internal_page(e),
        },
        Err(SignInError::Invalid) => failure(StatusCode::UNAUTHORIZED, "Invalid login or password."),
        Err(SignInError::Locked) => failure(
            StatusCode::TOO_MANY_REQUESTS,
            "Your account is locked after too many failed sign-in attempts. Try again in 15 minutes.",
        ),
        Err(SignInError::Throttled) => failure(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many failed sign-in attempts from your address. Try again in 15 minutes.",
        ),
        Err(SignInError::Blocked(reason)) => failure(StatusCode::FORBIDDEN, reason),
        Err(SignInError::Internal(e)) => internal_page(e),
    }
}

pub async fn sign_out(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Params,
) -> Response {
    let signed_in = match current(&state, &headers).await {
        Ok(s) => s,
        Err(e) => return internal_page(e),
    };
    let session = signed_in.as_ref().map(|s| s.session.as_str());
    if !csrf_ok(&state, &headers, session, &params) {
        return csrf_failure();
    }
    if let Some(s) = session {
        if let Err(e) = state.services.end_session(s).await {
            return internal_page(e);
        }
    }
    redirect(
        "/users/sign_in",
        &[set_cookie(&state, SESSION_COOKIE, "", 0)],
    )
}

// --- the authorization endpoint ---------------------------------------------------------

fn authorize_request(params: &Params) -> AuthorizeRequest {
    let get = |k: &str| params.get_str(k).map(str::to_owned);
    AuthorizeRequest {
        client_id: get("client_id"),
        redirect_uri: get("redirect_uri"),
        response_type: get("response_type"),
        response_mode: get("response_mode"),
        state: get("state"),
        scope: get("scope"),
        code_challenge: get("code_challenge"),
        code_challenge_method: get("code_challenge_method"),
        nonce: get("nonce"),
        prompt: get("prompt"),
        max_age: get("max_age"),
    }
}

/// The request's parameters, to carry through the consent form (which
/// decides; `prompt` and `max_age` were dealt with before it was shown).
fn carried_fields(req: &AuthorizeRequest) -> Vec<(&'static str, String)> {
    [
        ("client_id", &req.client_id),
        ("redirect_uri", &req.redirect_uri),
        ("response_type", &req.response_type),
        ("response_mode", &req.response_mode),
        ("state", &req.state),
        ("scope", &req.scope),
        ("code_challenge", &req.code_challenge),
        ("code_challenge_method", &req.code_challenge_method),
        ("nonce", &req.nonce),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.clone().map(|v| (k, v)))
    .collect()
}

/// Where to come back to after signing in: the same request, less what the
/// sign-in itself satisfies (`prompt=login`/`select_account`, `max_age`:
/// the new sign-in is fresh), so that it cannot loop.
fn authorize_url(req: &AuthorizeRequest) -> String {
    let mut fields = carried_fields(req);
    if req
        .prompt
        .as_deref()
        .is_some_and(|p| p.split_whitespace().any(|v| v == "consent"))
    {
        fields.push(("prompt", "consent".to_owned()));
    }
    let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    append_query("/oauth/authorize", &pairs)
}

/// Where an error or a code goes: back to the client (with RFC 9207's
/// `iss`), or shown for OOB.
fn send_back(issuer: &str, redirect_uri: &str, pairs: &[(&str, &str)]) -> Response {
    if OOB.contains(&redirect_uri) {
        if let Some((_, code)) = pairs.iter().find(|(k, _)| *k == "code") {
            return page(StatusCode::OK, CodePage { code }.render(), "");
        }
        let description = pairs
            .iter()
            .find(|(k, _)| *k == "error_description")
            .map_or("", |(_, v)| *v);
        let code = pairs.iter().find(|(k, _)| *k == "error").map(|(_, v)| *v);
        return error_page(
            StatusCode::BAD_REQUEST,
            "An error has occurred",
            description,
            code,
        );
    }
    let mut all = pairs.to_vec();
    all.push(("iss", issuer));
    redirect(&append_query(redirect_uri, &all), &[])
}

fn authorize_failure(issuer: &str, e: AuthorizeError) -> Response {
    match e {
        AuthorizeError::Page(e) => oauth_error_page(&e),
        AuthorizeError::Redirect {
            redirect_uri,
            error,
            state,
        } => {
            let mut pairs = vec![
                ("error", error.code.as_str()),
                ("error_description", error.description.as_str()),
            ];
            if let Some(s) = state.as_deref() {
                pairs.push(("state", s));
            }
            send_back(issuer, &redirect_uri, &pairs)
        }
        AuthorizeError::Internal(e) => internal_page(e),
    }
}

async fn approve(state: &AppState, pre: &PreAuthorized, user: &User, auth_time: i64) -> Response {
    match state.services.issue_code(pre, user, auth_time).await {
        Ok(code) => {
            let mut pairs = vec![("code", code.as_str())];
            if let Some(s) = pre.state.as_deref() {
                pairs.push(("state", s));
            }
            send_back(&state.external_url, &pre.redirect_uri, &pairs)
        }
        Err(e) => internal_page(e),
    }
}

fn deny(issuer: &str, pre: &PreAuthorized, code: ErrorCode) -> Response {
    let e = OAuthError::new(code);
    let mut pairs = vec![
        ("error", e.code.as_str()),
        ("error_description", e.description.as_str()),
    ];
    if let Some(s) = pre.state.as_deref() {
        pairs.push(("state", s));
    }
    send_back(issuer, &pre.redirect_uri, &pairs)
}

/// The origin a form may post to after consent (for the CSP).
fn form_target(redirect_uri: &str) -> (String, String) {
    if OOB.contains(&redirect_uri) {
        return (String::new(), "this page".to_owned());
    }
    // From the parsed URI only; anything unsafe adds no source at all.
    match latchkey_core::redirect_uri::origin(redirect_uri) {
        Some((origin, host)) => (format!(" {origin}"), host),
        None => (String::new(), "the application".to_owned()),
    }
}

pub async fn authorize(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Params,
) -> Response {
    let issuer = state.external_url.clone();
    let req = authorize_request(&params);
    let pre = match state.services.pre_authorize(&req).await {
        Ok(p) => p,
        Err(e) => return authorize_failure(&issuer, e),
    };
    let signed_in = match current(&state, &headers).await {
        Ok(s) => s,
        Err(e) => return internal_page(e),
    };
    let now = state.services.now_ms();
    let interaction = pre.interaction(signed_in.as_ref().map(|s| s.auth_time), now);
    match interaction {
        Interaction::Fail(code) => return deny(&issuer, &pre, code),
        Interaction::SignIn => {
            let mut query = vec![("return_to", authorize_url(&req))];
            if signed_in.is_some() {
                // Signed in already, but the client asked for a fresh sign-in.
                query.push(("reauthenticate", "true".to_owned()));
            }
            let pairs: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
            return redirect(&append_query("/users/sign_in", &pairs), &[]);
        }
        Interaction::Approve | Interaction::Consent => {}
    }
    // Approve and Consent are only ever answered for a signed-in browser.
    let Some(SignedIn {
        user,
        session,
        auth_time,
    }) = signed_in
    else {
        return internal_page(ServiceError::internal(
            "an approved authorization without a session",
        ));
    };
    if interaction == Interaction::Approve {
        return approve(&state, &pre, &user, auth_time).await;
    }
    let (extra_target, redirect_host) = form_target(&pre.redirect_uri);
    let body = AuthorizePage {
        app_name: &pre.application.name,
        username: &user.username,
        scopes: pre
            .scopes
            .as_slice()
            .iter()
            .map(|s| (s.clone(), describe(s)))
            .collect(),
        redirect_host,
        csrf: &session_csrf(&session),
        fields: carried_fields(&req),
    }
    .render();
    page(StatusCode::OK, body, &extra_target)
}

/// The consent form's answer: Authorize, or Deny (`decision=deny`, a
/// `_method=delete` override, or `DELETE /oauth/authorize`).
pub async fn decide(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    params: Params,
) -> Response {
    let req = authorize_request(&params);
    let SignedIn {
        user,
        session,
        auth_time,
    } = match current(&state, &headers).await {
        Ok(Some(s)) => s,
        Ok(None) => {
            return redirect(
                &append_query("/users/sign_in", &[("return_to", &authorize_url(&req))]),
                &[],
            )
        }
        Err(e) => return internal_page(e),
    };
    if !csrf_ok(&state, &headers, Some(&session), &params) {
        return csrf_failure();
    }
    let pre = match state.services.pre_authorize(&req).await {
        Ok(p) => p,
        Err(e) => return authorize_failure(&state.external_url, e),
    };
    let denied = method == Method::DELETE
        || params.get_str("decision") == Some("deny")
        || params
            .get_str("_method")
            .is_some_and(|m| m.eq_ignore_ascii_case("delete"));
    if denied {
        deny(&state.external_url, &pre, ErrorCode::AccessDenied)
    } else {
        approve(&state, &pre, &user, auth_time).await
    }
}

/// GitLab's page for out-of-band redirect URIs.
pub async fn native_code(params: Params) -> Response {
    match params.get_str("code") {
        Some(code) => page(StatusCode::OK, CodePage { code }.render(), ""),
        None => oauth_error_page(&OAuthError::missing("code")),
    }
}

// --- the device verification pages (RFC 8628) -------------------------------------------

#[derive(Template)]
#[template(path = "device.html")]
struct DevicePage<'a> {
    csrf: &'a str,
    user_code: &'a str,
    error: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "device_confirm.html")]
struct DeviceConfirmPage<'a> {
    app_name: &'a str,
    username: &'a str,
    user_code: &'a str,
    scopes: Vec<(String, String)>,
    csrf: &'a str,
}

#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage<'a> {
    title: &'a str,
    description: &'a str,
}

/// The signed-in browser, or a redirect to sign in and come back to `back`.
async fn require_sign_in(
    state: &AppState,
    headers: &HeaderMap,
    back: &str,
) -> Result<SignedIn, Response> {
    match current(state, headers).await {
        Ok(Some(s)) => Ok(s),
        Ok(None) => Err(redirect(
            &append_query("/users/sign_in", &[("return_to", back)]),
            &[],
        )),
        Err(e) => Err(internal_page(e)),
    }
}

/// `GET /oauth/device[?user_code=…]`: the form to type the code into.
pub async fn device_form(
    State(state): State<AppState>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    params: Params,
) -> Response {
    let back = uri
        .path_and_query()
        .map_or("/oauth/device", |p| p.as_str())
        .to_owned();
    let signed = match require_sign_in(&state, &headers, &back).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let csrf = session_csrf(&signed.session);
    let code = params.get_str("user_code").unwrap_or("");
    page(
        StatusCode::OK,
        DevicePage {
            csrf: &csrf,
            user_code: code,
            error: None,
        }
        .render(),
        "",
    )
}

/// `POST /oauth/device`: the code was typed; show what it asks for.
pub async fn device_lookup(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Params,
) -> Response {
    let signed = match require_sign_in(&state, &headers, "/oauth/device").await {
        Ok(s) => s,
        Err(r) => return r,
    };
    if !csrf_ok(&state, &headers, Some(&signed.session), &params) {
        return csrf_failure();
    }
    let csrf = session_csrf(&signed.session);
    let typed = params.get_str("user_code").unwrap_or("");
    match state.services.pending_device_request(typed).await {
        Ok(Some((grant, app))) => {
            let body = DeviceConfirmPage {
                app_name: &app.name,
                username: &signed.user.username,
                user_code: &grant.user_code,
                scopes: grant
                    .scopes
                    .as_slice()
                    .iter()
                    .map(|s| (s.clone(), describe(s)))
                    .collect(),
                csrf: &csrf,
            }
            .render();
            page(StatusCode::OK, body, "")
        }
        Ok(None) => {
            let body = DevicePage {
                csrf: &csrf,
                user_code: typed,
                error: Some("That code is not valid or has expired."),
            }
            .render();
            page(StatusCode::NOT_FOUND, body, "")
        }
        Err(e) => internal_page(e),
    }
}

/// `POST /oauth/device/confirm`: Authorize or Deny.
pub async fn device_confirm(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Params,
) -> Response {
    let signed = match require_sign_in(&state, &headers, "/oauth/device").await {
        Ok(s) => s,
        Err(r) => return r,
    };
    if !csrf_ok(&state, &headers, Some(&signed.session), &params) {
        return csrf_failure();
    }
    let approve = params.get_str("decision") != Some("deny");
    let code = params.get_str("user_code").unwrap_or("");
    match state
        .services
        .decide_device_request(code, &signed.user, approve, signed.auth_time)
        .await
    {
        Ok(true) if approve => page(
            StatusCode::OK,
            MessagePage {
                title: "Device connected",
                description: "You can return to your device now.",
            }
            .render(),
            "",
        ),
        Ok(true) => page(
            StatusCode::OK,
            MessagePage {
                title: "Request denied",
                description: "The device was not given access.",
            }
            .render(),
            "",
        ),
        Ok(false) => error_page(
            StatusCode::NOT_FOUND,
            "Code not valid",
            "That code is not valid or has expired.",
            None,
        ),
        Err(e) => internal_page(e),
    }
}
