//! User Settings at GitLab's paths (issue 24, first steps): personal access
//! tokens at `/-/user_settings/personal_access_tokens`: make one (shown
//! once), list the active ones, revoke. Signed-in browsers only; every form
//! carries the session's CSRF token.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use latchkey_core::context::Via;
use latchkey_core::pagination::PageRequest;
use latchkey_core::service::ServiceError;
use latchkey_core::token::{parse_expiry, TokenFilter};

use super::super::pages::{page, Nav};
use super::super::params::Params;
use super::super::{request_id, AppState};
use super::forms::{chosen_scopes, offered, scope_choices, Choice};
use super::gate::{posting, signed_in};
use super::{day, internal_page, redirect, session_csrf, SignedIn};

const TOKENS_PATH: &str = "/-/user_settings/personal_access_tokens";

struct Row {
    id: i64,
    name: String,
    scopes: String,
    created: String,
    last_used: String,
    expires: String,
}

#[derive(Template)]
#[template(path = "settings_tokens.html")]
struct TokensPage<'a> {
    nav: Nav,
    csrf: &'a str,
    new_token: Option<&'a str>,
    made: &'a str,
    error: Option<&'a str>,
    name: &'a str,
    expires_at: &'a str,
    max_expiry: String,
    scopes: Vec<Choice>,
    tokens: Vec<Row>,
}

struct Form<'a> {
    new_token: Option<&'a str>,
    /// What the new token is (made, or rotated).
    made: &'a str,
    error: Option<&'a str>,
    name: &'a str,
    expires_at: &'a str,
    scopes: &'a [String],
}

impl Form<'_> {
    fn blank() -> Self {
        Form {
            new_token: None,
            made: "",
            error: None,
            name: "",
            expires_at: "",
            scopes: &[],
        }
    }
}

async fn render(state: &AppState, s: &SignedIn, status: StatusCode, form: Form<'_>) -> Response {
    let filter = TokenFilter {
        user_id: Some(s.user.id),
        active: Some(true),
        ..Default::default()
    };
    let tokens = match state
        .services
        .list_tokens(
            &filter,
            PageRequest {
                page: 1,
                per_page: 100,
            },
        )
        .await
    {
        Ok((tokens, _)) => tokens,
        Err(e) => return internal_page(e),
    };
    let rows = tokens
        .iter()
        .map(|t| Row {
            id: t.id,
            name: t.name.clone(),
            scopes: t.scopes.as_slice().join(", "),
            created: day(t.created_at),
            last_used: t
                .last_used_at
                .map(day)
                .unwrap_or_else(|| "Never".to_owned()),
            expires: t
                .expires_at
                .map(|d| d.to_string())
                .unwrap_or_else(|| "Never".to_owned()),
        })
        .collect();
    let csrf = session_csrf(&s.session);
    page(
        status,
        TokensPage {
            nav: s.nav(),
            csrf: &csrf,
            new_token: form.new_token,
            made: form.made,
            error: form.error,
            name: form.name,
            expires_at: form.expires_at,
            max_expiry: state.services.max_token_expiry().to_string(),
            scopes: scope_choices(&offered(state, s.user.admin), form.scopes),
            tokens: rows,
        }
        .render(),
        "",
    )
}

/// `GET /-/user_settings/personal_access_tokens[?name=…&scopes=api,read_user]`:
/// the form filled in as the link asks (GitLab's prefill, for tools that
/// send their users to make a token).
pub async fn tokens_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Params,
) -> Response {
    let back = match (params.get_str("name"), params.get_str("scopes")) {
        (None, None) => TOKENS_PATH.to_owned(),
        (name, scopes) => super::append_query(
            TOKENS_PATH,
            &[
                ("name", name.unwrap_or("")),
                ("scopes", scopes.unwrap_or("")),
            ],
        ),
    };
    let s = match signed_in(&state, &headers, &back).await {
        Ok(s) => s,
        Err(answer) => return answer,
    };
    let name: String = params
        .get_str("name")
        .unwrap_or("")
        .trim()
        .chars()
        .take(255)
        .collect();
    // Only what the form offers this user is ticked.
    let offered = offered(&state, s.user.admin);
    let mut scopes = chosen_scopes(&params);
    scopes.retain(|c| offered.iter().any(|(o, _)| o == c));
    let form = Form {
        name: &name,
        scopes: &scopes,
        ..Form::blank()
    };
    render(&state, &s, StatusCode::OK, form).await
}

/// `POST /-/user_settings/personal_access_tokens`: the new token is shown
/// on the page it answers with, once.
pub async fn create_token(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Params,
) -> Response {
    // GitLab's pages name the fields `personal_access_token[…]`.
    let params = params.unnest("personal_access_token");
    let s = match posting(&state, &headers, &params, TOKENS_PATH).await {
        Ok(s) => s,
        Err(answer) => return answer,
    };
    let name = params.get_str("name").unwrap_or("").trim().to_owned();
    let expires_raw = params.get_str("expires_at").unwrap_or("").trim().to_owned();
    let scopes = chosen_scopes(&params);
    let refuse = |message: String| {
        let (state, s, name, expires_raw, scopes) = (&state, &s, &name, &expires_raw, &scopes);
        async move {
            let form = Form {
                error: Some(&message),
                name,
                expires_at: expires_raw,
                scopes,
                ..Form::blank()
            };
            render(state, s, StatusCode::UNPROCESSABLE_ENTITY, form).await
        }
    };
    if name.is_empty() {
        return refuse("Give the token a name.".to_owned()).await;
    }
    if scopes.is_empty() {
        return refuse("Select at least one scope.".to_owned()).await;
    }
    let offered = offered(&state, s.user.admin);
    if let Some(bad) = scopes
        .iter()
        .find(|c| !offered.iter().any(|(o, _)| o == *c))
    {
        return refuse(format!("The scope {bad} cannot be chosen here.")).await;
    }
    let expires = if expires_raw.is_empty() {
        // As GitLab since 16.0: the longest lifetime allowed.
        state.services.max_token_expiry()
    } else {
        match parse_expiry(&expires_raw) {
            Ok(d) => d,
            Err(e) => return refuse(e).await,
        }
    };
    let ctx = request_id::context(Some(s.user.id), Via::Session);
    match state
        .services
        .create_token(&ctx, s.user.id, &name, &scopes.join(" "), Some(expires))
        .await
    {
        Ok((_, plaintext)) => {
            let form = Form {
                new_token: Some(plaintext.expose()),
                made: "Your new personal access token",
                ..Form::blank()
            };
            render(&state, &s, StatusCode::OK, form).await
        }
        Err(ServiceError::Validation(v)) => refuse(v.to_string()).await,
        Err(ServiceError::Invalid(m)) => refuse(m).await,
        Err(e) => internal_page(e),
    }
}

/// `POST /-/user_settings/personal_access_tokens/:id/revoke`: one of the
/// user's own tokens; another's is not found.
pub async fn revoke_token(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    params: Params,
) -> Response {
    let s = match posting(&state, &headers, &params, TOKENS_PATH).await {
        Ok(s) => s,
        Err(answer) => return answer,
    };
    let Ok(id) = id.parse::<i64>() else {
        return super::not_found_page();
    };
    match state.services.find_token(id).await {
        Ok(Some(t)) if t.user_id == s.user.id => {}
        Ok(_) => return super::not_found_page(),
        Err(e) => return internal_page(e),
    }
    let ctx = request_id::context(Some(s.user.id), Via::Session);
    match state.services.revoke_token(&ctx, id).await {
        Ok(()) | Err(ServiceError::NotFound) => redirect(TOKENS_PATH, &[]),
        Err(e) => internal_page(e),
    }
}

/// `POST /-/user_settings/personal_access_tokens/:id/rotate`: GitLab's
/// rotation of one of the user's own tokens: it stops at once, and a new
/// one with the same name and scopes, expiring in a week, is shown once.
pub async fn rotate_token(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    params: Params,
) -> Response {
    let s = match posting(&state, &headers, &params, TOKENS_PATH).await {
        Ok(s) => s,
        Err(answer) => return answer,
    };
    let Ok(id) = id.parse::<i64>() else {
        return super::not_found_page();
    };
    let old = match state.services.find_token(id).await {
        Ok(Some(t)) => t,
        Ok(None) => return super::not_found_page(),
        Err(e) => return internal_page(e),
    };
    let ctx = request_id::context(Some(s.user.id), Via::Session);
    match state.services.rotate_own_token(&ctx, s.user.id, &old).await {
        Ok((new, plaintext)) => {
            let made = format!(
                "Token {} was rotated; the new one expires on {}",
                new.name,
                new.expires_at
                    .map_or_else(|| "no date".to_owned(), |d| d.to_string())
            );
            let form = Form {
                new_token: Some(plaintext.expose()),
                made: &made,
                ..Form::blank()
            };
            render(&state, &s, StatusCode::OK, form).await
        }
        Err(ServiceError::NotFound) => super::not_found_page(),
        Err(ServiceError::Invalid(m)) => {
            let form = Form {
                error: Some(&m),
                ..Form::blank()
            };
            render(&state, &s, StatusCode::UNPROCESSABLE_ENTITY, form).await
        }
        Err(e) => internal_page(e),
    }
}
