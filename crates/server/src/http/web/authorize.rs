//! The authorization endpoint: sign-in, consent, and the answer sent back
//! to the client.

use super::*;

#[derive(Template)]
#[template(path = "authorize.html")]
struct AuthorizePage<'a> {
    nav: Nav,
    app_name: &'a str,
    username: &'a str,
    /// The scopes asked for, grouped by the access they grant.
    groups: Vec<(&'static str, Vec<(String, String)>)>,
    redirect_host: String,
    owner: Owner,
    registered: String,
    registered_day: String,
    trusted: bool,
    csrf: &'a str,
    fields: Vec<(&'static str, String)>,
    /// This request again, to come back to after signing in as someone else.
    return_to: String,
}

/// Who registered an application, as the consent page names them.
struct Owner {
    /// "alice", "the group Platform", "this server's administrators"…
    label: String,
    /// Their page, when they have one.
    href: Option<String>,
}

/// Who registered `app`.
async fn owner_of(
    state: &AppState,
    app: &latchkey_core::application::Application,
) -> Result<Owner, ServiceError> {
    if let Some(id) = app.owner_id {
        return Ok(match state.services.find_user(id).await? {
            Some(u) => Owner {
                href: Some(format!("/{}", u.username)),
                label: u.username,
            },
            None => Owner {
                label: "a user who no longer exists".to_owned(),
                href: None,
            },
        });
    }
    if let Some(id) = app.group_id {
        return Ok(match state.services.find_group(id).await? {
            Some(g) => Owner {
                label: format!("the group {}", g.name),
                href: Some(format!("/groups/{}", g.full_path)),
            },
            None => Owner {
                label: "a group that no longer exists".to_owned(),
                href: None,
            },
        });
    }
    Ok(Owner {
        label: if app.dynamic {
            "itself, through dynamic client registration".to_owned()
        } else {
            "this server's administrators".to_owned()
        },
        href: None,
    })
}

#[derive(Template)]
#[template(path = "code.html")]
struct CodePage<'a> {
    nav: Nav,
    code: &'a str,
}

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
            return page(
                StatusCode::OK,
                CodePage {
                    nav: Nav::default(),
                    code,
                }
                .render(),
                "",
            );
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
    let ctx = request_id::context(Some(user.id), Via::Session);
    match state.services.issue_code(&ctx, pre, user, auth_time).await {
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

#[utoipa::path(
    get,
    path = "/oauth/authorize",
    tag = "browser",
    summary = "The authorization endpoint: the consent page",
    params(("client_id" = Option<String>, Query, description = "The client"), ("redirect_uri" = Option<String>, Query, description = "Where to send the answer"), ("response_type" = Option<String>, Query, description = "`code`"), ("scope" = Option<String>, Query, description = "Space-separated"), ("state" = Option<String>, Query, description = "Returned as given"), ("code_challenge" = Option<String>, Query, description = "PKCE"), ("code_challenge_method" = Option<String>, Query, description = "`S256` or `plain`"), ("nonce" = Option<String>, Query, description = "OpenID Connect"), ("prompt" = Option<String>, Query, description = "`none`, `login`, `consent`")),
    responses(
        (status = 200, description = "The consent page", content_type = "text/html; charset=utf-8"),
        (status = 302, description = "To the sign-in page, or back to the client with a code or an error", headers(("Location" = String)))
    )
)]
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
    let nav = signed_in.as_ref().map(SignedIn::nav).unwrap_or_default();
    // Approve and Consent are only ever answered for a signed-in browser.
    let Some(SignedIn {
        user,
        session,
        auth_time,
        ..
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
    let owner = match owner_of(&state, &pre.application).await {
        Ok(o) => o,
        Err(e) => return internal_page(e),
    };
    let app = &pre.application;
    let body = AuthorizePage {
        nav,
        app_name: &app.name,
        username: &user.username,
        groups: latchkey_core::scopes::grouped(pre.scopes.as_slice().iter().map(String::as_str))
            .into_iter()
            .map(|(access, list)| (access.heading(), list))
            .collect(),
        redirect_host,
        owner,
        registered: latchkey_core::clock::gitlab_timestamp(app.created_at),
        registered_day: day(app.created_at),
        trusted: app.trusted,
        csrf: &session_csrf(&session),
        fields: carried_fields(&req),
        return_to: authorize_url(&req),
    }
    .render();
    page(StatusCode::OK, body, &extra_target)
}

/// The consent form's answer: Authorize, or Deny (`decision=deny`, a
/// `_method=delete` override, or `DELETE /oauth/authorize`).
#[utoipa::path(
    method(post, delete),
    path = "/oauth/authorize",
    tag = "browser",
    summary = "Answer the consent page (DELETE or `decision=deny` denies)",
    request_body(content((crate::http::openapi::schemas::ConsentDecision = "application/x-www-form-urlencoded"))),
    responses(
        (status = 200, description = "A page (the code, for out-of-band redirect URIs)", content_type = "text/html; charset=utf-8"),
        (status = 302, description = "To the sign-in page, or back to the client with a code or an error", headers(("Location" = String)))
    )
)]
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
        ..
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
#[utoipa::path(
    get,
    path = "/oauth/authorize/native",
    tag = "browser",
    summary = "The page showing a code for out-of-band redirect URIs",
    params(("code" = Option<String>, Query, description = "The code")),
    responses(
        (status = 200, description = "The code", content_type = "text/html; charset=utf-8")
    )
)]
pub async fn native_code(params: Params) -> Response {
    match params.get_str("code") {
        Some(code) => page(
            StatusCode::OK,
            CodePage {
                nav: Nav::default(),
                code,
            }
            .render(),
            "",
        ),
        None => oauth_error_page(&OAuthError::missing("code")),
    }
}
