//! One OAuth application's pages, the same for its owner in User Settings
//! (`/-/user_settings/applications/:id`) and for administrators in the
//! Admin Area (`/admin/applications/:id`, instance applications): the
//! application (never its secret again) with its live secrets, the edit
//! form, renewing the secret (at once, as GitLab does, or with a grace
//! period for the previous one), deleting one secret, and deleting the
//! application after a confirmation page. Each [`Realm`] says who may, and
//! what the edit form offers: the owner changes the name, redirect URIs,
//! confidentiality and scopes; an administrator also trusted and the grant
//! types.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use latchkey_core::application::{
    Application, ApplicationChanges, Ownership, Renewal, SecretDeletion, SecretInfo, GRANT_TYPES,
};
use latchkey_core::context::Via;
use latchkey_core::service::ServiceError;

use super::super::pages::{page, Nav};
use super::super::params::Params;
use super::super::{request_id, AppState};
use super::forms::{
    checked, chosen_scopes, offered, scope_choices, ticked, ApplicationForm, Choice,
};
use super::gate::{administrator, signed_in};
use super::{
    csrf_failure, csrf_ok, day, internal_page, moment, not_found_page, redirect, session_csrf,
    SignedIn,
};

/// Where an application's pages live, and who may use them.
#[async_trait::async_trait]
pub trait Realm: Send + Sync + 'static {
    /// The list the pages belong to; an application's are under
    /// `{BASE}/:id`.
    const BASE: &'static str;
    /// The Admin Area's (its bar; trusted and grant types on the form).
    const ADMIN: bool;
    /// The browser, when it may use these pages; else the answer (sign
    /// in, Admin Mode, or 404).
    async fn who(state: &AppState, headers: &HeaderMap, back: &str) -> Result<SignedIn, Response>;
    /// Which applications it may touch.
    fn scope() -> Ownership;
    /// Whether `app` (found in [`Realm::scope`]) is this browser's to see.
    fn owns(s: &SignedIn, app: &Application) -> bool;
}

/// User Settings: the signed-in user's own applications.
pub struct Settings;
/// The Admin Area: instance applications, administrators only.
pub struct Admin;

#[async_trait::async_trait]
impl Realm for Settings {
    const BASE: &'static str = "/-/user_settings/applications";
    const ADMIN: bool = false;
    async fn who(state: &AppState, headers: &HeaderMap, back: &str) -> Result<SignedIn, Response> {
        signed_in(state, headers, back).await
    }
    fn scope() -> Ownership {
        Ownership::Any
    }
    fn owns(s: &SignedIn, app: &Application) -> bool {
        app.owner_id == Some(s.user.id)
    }
}

#[async_trait::async_trait]
impl Realm for Admin {
    const BASE: &'static str = "/admin/applications";
    const ADMIN: bool = true;
    async fn who(state: &AppState, headers: &HeaderMap, back: &str) -> Result<SignedIn, Response> {
        administrator(state, headers, back).await
    }
    fn scope() -> Ownership {
        Ownership::Instance
    }
    fn owns(_: &SignedIn, _: &Application) -> bool {
        true
    }
}

/// The browser and the application `id` names, if it may see it; else the
/// answer (sign in, 404, or the expired-form page for a POST whose CSRF
/// token does not match).
async fn found<R: Realm>(
    state: &AppState,
    headers: &HeaderMap,
    id: &str,
    posted: Option<&Params>,
) -> Result<(SignedIn, Application), Response> {
    let back = format!("{}/{id}", R::BASE);
    let s = R::who(state, headers, &back).await?;
    if let Some(params) = posted {
        if !csrf_ok(state, headers, Some(&s.session), params) {
            return Err(csrf_failure());
        }
    }
    let Ok(id) = id.parse::<i64>() else {
        return Err(not_found_page());
    };
    match state.services.find_application(id, R::scope()).await {
        Ok(app) if R::owns(&s, &app) => Ok((s, app)),
        Ok(_) | Err(ServiceError::NotFound) => Err(not_found_page()),
        Err(e) => Err(internal_page(e)),
    }
}

fn grant_choices(app: &Application) -> Vec<Choice> {
    GRANT_TYPES
        .iter()
        .map(|g| Choice {
            value: (*g).to_owned(),
            about: grant_label(g).to_owned(),
            checked: app.allows_grant(g),
        })
        .collect()
}

fn grant_label(grant: &str) -> &'static str {
    match grant {
        "authorization_code" => "Authorization code (users sign in through the browser)",
        "refresh_token" => "Refresh token",
        "client_credentials" => "Client credentials (the application as itself)",
        "password" => "Resource owner password (discouraged)",
        _ => "Device authorization (input-constrained devices)",
    }
}

struct SecretRow {
    id: i64,
    hint: String,
    created: String,
    expires: String,
    last_used: String,
}

/// The grace periods the renew form offers, in seconds ("" is none: the
/// previous secret stops at once, as GitLab's renewal).
const GRACE: [(&str, &str); 5] = [
    ("", "at once"),
    ("3600", "in 1 hour"),
    ("86400", "in 1 day"),
    ("604800", "in 7 days"),
    ("2592000", "in 30 days"),
];

#[derive(Template)]
#[template(path = "application_show.html")]
struct ShowPage<'a> {
    nav: Nav,
    admin: bool,
    section: &'a str,
    base: &'a str,
    csrf: &'a str,
    notice: Option<&'a str>,
    secret: Option<&'a str>,
    secret_expires: Option<String>,
    error: Option<&'a str>,
    app: &'a Application,
    redirect_uris: Vec<&'a str>,
    scopes: String,
    grants: String,
    created: String,
    secrets: Vec<SecretRow>,
    grace: [(&'static str, &'static str); 5],
}

/// What the show page says besides the application.
#[derive(Default)]
pub(super) struct Shown<'a> {
    /// A change just made.
    pub notice: Option<&'a str>,
    /// A secret just made: shown this once.
    pub secret: Option<(&'a str, Option<i64>)>,
    /// Why the last action was refused.
    pub error: Option<&'a str>,
}

/// The application's page (`status`: 200, or 422 with `shown.error`).
pub(super) async fn show_page<R: Realm>(
    state: &AppState,
    s: &SignedIn,
    status: StatusCode,
    app: &Application,
    shown: Shown<'_>,
) -> Response {
    let secrets = match state.services.application_secrets(app.id).await {
        Ok(list) => list,
        Err(e) => return internal_page(e),
    };
    let csrf = session_csrf(&s.session);
    let grants = match &app.grant_types {
        None => "all".to_owned(),
        Some(list) => list.join(", "),
    };
    page(
        status,
        ShowPage {
            nav: s.nav(),
            admin: R::ADMIN,
            section: "applications",
            base: R::BASE,
            csrf: &csrf,
            notice: shown.notice,
            secret: shown.secret.map(|(v, _)| v),
            secret_expires: shown.secret.and_then(|(_, e)| e).map(moment),
            error: shown.error,
            app,
            redirect_uris: app.redirect_uri.split_whitespace().collect(),
            scopes: app.scopes.as_slice().join(", "),
            grants,
            created: day(app.created_at),
            secrets: secrets.iter().map(secret_row).collect(),
            grace: GRACE,
        }
        .render(),
        "",
    )
}

fn secret_row(s: &SecretInfo) -> SecretRow {
    SecretRow {
        id: s.id,
        hint: s
            .hint
            .as_deref()
            .map_or_else(|| "(imported)".to_owned(), |h| format!("…{h}")),
        created: moment(s.created_at),
        expires: s.expires_at.map_or_else(|| "never".to_owned(), moment),
        last_used: s.last_used_at.map_or_else(|| "never".to_owned(), moment),
    }
}

/// `GET {BASE}/:id`: the application, never its secret.
pub async fn show<R: Realm>(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    match found::<R>(&state, &headers, &id, None).await {
        Ok((s, app)) => show_page::<R>(&state, &s, StatusCode::OK, &app, Shown::default()).await,
        Err(answer) => answer,
    }
}

#[derive(Template)]
#[template(path = "application_edit.html")]
struct EditPage<'a> {
    nav: Nav,
    admin: bool,
    section: &'a str,
    base: &'a str,
    csrf: &'a str,
    error: Option<&'a str>,
    id: i64,
    title: &'a str,
    name: &'a str,
    redirect_uri: &'a str,
    confidential: bool,
    trusted: bool,
    scopes: Vec<Choice>,
    grants: Vec<Choice>,
}

fn edit_page<R: Realm>(
    state: &AppState,
    s: &SignedIn,
    status: StatusCode,
    app: &Application,
    error: Option<&str>,
) -> Response {
    let csrf = session_csrf(&s.session);
    let current: Vec<String> = app.scopes.as_slice().to_vec();
    page(
        status,
        EditPage {
            nav: s.nav(),
            admin: R::ADMIN,
            section: "applications",
            base: R::BASE,
            csrf: &csrf,
            error,
            id: app.id,
            title: &app.name,
            name: &app.name,
            redirect_uri: &app.redirect_uri,
            confidential: app.confidential,
            trusted: app.trusted,
            scopes: scope_choices(&offered(state, s.user.admin), &current),
            grants: grant_choices(app),
        }
        .render(),
        "",
    )
}

/// `GET {BASE}/:id/edit`
pub async fn edit<R: Realm>(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    match found::<R>(&state, &headers, &id, None).await {
        Ok((s, app)) => edit_page::<R>(&state, &s, StatusCode::OK, &app, None),
        Err(answer) => answer,
    }
}

/// `POST {BASE}/:id`: the edit form's changes; back to the application's
/// page, or the form again (422) with what was refused.
pub async fn update<R: Realm>(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    params: Params,
) -> Response {
    let params = params.unnest("doorkeeper_application");
    let (s, app) = match found::<R>(&state, &headers, &id, Some(&params)).await {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    let sent = ApplicationForm::read(&params);
    // What the form showed: the offered scopes and those the application
    // already had.
    let current: Vec<String> = app.scopes.as_slice().to_vec();
    let allowed: Vec<(String, String)> = scope_choices(&offered(&state, s.user.admin), &current)
        .into_iter()
        .map(|c| (c.value, c.about))
        .collect();
    // The form as sent, shown again when refused.
    let mut sent_app = app.clone();
    sent_app.name.clone_from(&sent.name);
    sent_app.redirect_uri.clone_from(&sent.redirect_uri);
    sent_app.confidential = sent.confidential;
    let refused = |message: &str, sent_app: &Application| {
        edit_page::<R>(
            &state,
            &s,
            StatusCode::UNPROCESSABLE_ENTITY,
            sent_app,
            Some(message),
        )
    };
    if let Some(message) = sent.unoffered(&allowed) {
        return refused(&message, &sent_app);
    }
    let scopes = chosen_scopes(&params);
    if scopes.is_empty() {
        return refused("Choose at least one scope.", &sent_app);
    }
    let mut changes = ApplicationChanges {
        name: Some(sent.name.clone()),
        redirect_uri: Some(sent.redirect_uri.clone()),
        scopes: Some(scopes.join(" ")),
        confidential: Some(sent.confidential),
        ..Default::default()
    };
    if R::ADMIN {
        changes.trusted = Some(checked(&params, "trusted"));
        let grants = ticked(&params, "grant_types");
        match latchkey_core::application::checked_grant_types(grants.iter().map(String::as_str)) {
            Ok(list) if !list.is_empty() => changes.grant_types = Some(list),
            Ok(_) => return refused("Choose at least one grant type.", &sent_app),
            Err(bad) => return refused(&format!("Unknown grant type: {bad}"), &sent_app),
        }
    }
    let ctx = request_id::context(Some(s.user.id), Via::Session);
    match state
        .services
        .update_application(&ctx, app.id, &changes)
        .await
    {
        Ok(app) => redirect(&format!("{}/{}", R::BASE, app.id), &[]),
        Err(ServiceError::Validation(v)) => refused(&v.to_string(), &sent_app),
        Err(ServiceError::Invalid(m)) => refused(&m, &sent_app),
        Err(e) => internal_page(e),
    }
}

/// `POST {BASE}/:id/renew`: a new secret, shown once on the application's
/// page; the previous ones stop at once, or after the grace period chosen
/// (`grace`, seconds, one of the form's).
pub async fn renew<R: Realm>(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    params: Params,
) -> Response {
    let (s, app) = match found::<R>(&state, &headers, &id, Some(&params)).await {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    let grace = params.get_str("grace").unwrap_or("");
    let grace_seconds = match GRACE.iter().find(|(v, _)| *v == grace) {
        Some(_) => grace.parse::<i64>().ok(),
        None => {
            let why = "Choose when the previous secret stops working from the list.";
            let shown = Shown {
                error: Some(why),
                ..Shown::default()
            };
            return show_page::<R>(&state, &s, StatusCode::UNPROCESSABLE_ENTITY, &app, shown).await;
        }
    };
    let renewal = Renewal {
        grace_seconds,
        lifetime_seconds: None,
    };
    let ctx = request_id::context(Some(s.user.id), Via::Session);
    match state
        .services
        .renew_application_secret(&ctx, app.id, R::scope(), renewal)
        .await
    {
        Ok((app, secret, info)) => {
            let notice = match grace_seconds {
                None => "The secret was renewed; the previous one no longer works.".to_owned(),
                Some(_) => format!(
                    "The secret was renewed; the previous one works {}.",
                    GRACE
                        .iter()
                        .find(|(v, _)| *v == grace)
                        .map_or("", |(_, label)| label)
                        .replacen("in ", "for ", 1)
                ),
            };
            let shown = Shown {
                notice: Some(&notice),
                secret: Some((secret.expose(), info.expires_at)),
                error: None,
            };
            show_page::<R>(&state, &s, StatusCode::OK, &app, shown).await
        }
        Err(ServiceError::NotFound) => not_found_page(),
        Err(e) => internal_page(e),
    }
}

/// `POST {BASE}/:id/secrets/:secret_id/delete`: that secret stops at once;
/// never the last live one (renew instead).
pub async fn delete_secret<R: Realm>(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((id, secret_id)): Path<(String, String)>,
    params: Params,
) -> Response {
    let (s, app) = match found::<R>(&state, &headers, &id, Some(&params)).await {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    let Ok(secret_id) = secret_id.parse::<i64>() else {
        return not_found_page();
    };
    let ctx = request_id::context(Some(s.user.id), Via::Session);
    match state
        .services
        .delete_application_secret(&ctx, &app, secret_id)
        .await
    {
        Ok(SecretDeletion::Deleted) => redirect(&format!("{}/{}", R::BASE, app.id), &[]),
        Ok(SecretDeletion::NotFound) => not_found_page(),
        Ok(SecretDeletion::LastLive) => {
            let shown = Shown {
                error: Some("This is the application's last live secret: renew it instead."),
                ..Shown::default()
            };
            show_page::<R>(&state, &s, StatusCode::CONFLICT, &app, shown).await
        }
        Err(e) => internal_page(e),
    }
}

#[derive(Template)]
#[template(path = "application_delete.html")]
struct DeletePage<'a> {
    nav: Nav,
    admin: bool,
    section: &'a str,
    base: &'a str,
    csrf: &'a str,
    app: &'a Application,
}

/// `GET {BASE}/:id/delete`: are you sure?
pub async fn confirm_delete<R: Realm>(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let (s, app) = match found::<R>(&state, &headers, &id, None).await {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    let csrf = session_csrf(&s.session);
    page(
        StatusCode::OK,
        DeletePage {
            nav: s.nav(),
            admin: R::ADMIN,
            section: "applications",
            base: R::BASE,
            csrf: &csrf,
            app: &app,
        }
        .render(),
        "",
    )
}

/// `POST {BASE}/:id/delete`: the application, its secrets, grants and
/// tokens are gone; back to the list.
pub async fn delete<R: Realm>(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    params: Params,
) -> Response {
    let (s, app) = match found::<R>(&state, &headers, &id, Some(&params)).await {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    let ctx = request_id::context(Some(s.user.id), Via::Session);
    match state
        .services
        .delete_application(&ctx, app.id, R::scope())
        .await
    {
        Ok(()) | Err(ServiceError::NotFound) => redirect(R::BASE, &[]),
        Err(e) => internal_page(e),
    }
}
