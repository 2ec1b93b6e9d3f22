//! User Settings → Applications, at GitLab's `/-/user_settings/applications`
//! (issue 24): the user's own OAuth applications (the new-application form
//! on the page, the secret shown once; renew, delete) and the applications
//! they have authorized (revoke: their tokens stop working at once).

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use latchkey_core::context::Via;
use latchkey_core::pagination::PageRequest;
use latchkey_core::service::ServiceError;

use super::super::pages::{page, Nav};
use super::super::params::Params;
use super::super::{request_id, AppState};
use super::forms::{offered, scope_choices, ApplicationForm, Choice};
use super::gate::{posting, signed_in};
use super::{day, internal_page, not_found_page, redirect, session_csrf, SignedIn};

const APPS_PATH: &str = "/-/user_settings/applications";

struct AppRow {
    id: i64,
    name: String,
    client_id: String,
    redirect_uri: String,
    scopes: String,
}

struct AuthorizedRow {
    id: i64,
    name: String,
    when: String,
    scopes: String,
}

/// A secret just made, shown once.
pub(super) struct Created {
    what: String,
    client_id: String,
    secret: String,
}

#[derive(Template)]
#[template(path = "settings_applications.html")]
struct AppsPage<'a> {
    nav: Nav,
    csrf: &'a str,
    created: Option<Created>,
    error: Option<&'a str>,
    name: &'a str,
    redirect_uri: &'a str,
    confidential: bool,
    scopes: Vec<Choice>,
    apps: Vec<AppRow>,
    authorized: Vec<AuthorizedRow>,
}

struct Form<'a> {
    created: Option<Created>,
    error: Option<&'a str>,
    name: &'a str,
    redirect_uri: &'a str,
    confidential: bool,
    scopes: &'a [String],
}

async fn render(state: &AppState, s: &SignedIn, status: StatusCode, form: Form<'_>) -> Response {
    let owned = match state
        .services
        .list_owned_applications(
            s.user.id,
            PageRequest {
                page: 1,
                per_page: 100,
            },
        )
        .await
    {
        Ok((apps, _)) => apps,
        Err(e) => return internal_page(e),
    };
    let authorized = match state.services.authorized_applications(s.user.id).await {
        Ok(a) => a,
        Err(e) => return internal_page(e),
    };
    let apps = owned
        .iter()
        .map(|a| AppRow {
            id: a.id,
            name: a.name.clone(),
            client_id: a.application_id.clone(),
            redirect_uri: a.redirect_uri.replace('\n', " "),
            scopes: a.scopes.as_slice().join(", "),
        })
        .collect();
    let authorized = authorized
        .iter()
        .map(|a| AuthorizedRow {
            id: a.application_id,
            name: a.application_name.clone(),
            when: day(a.last_granted_at),
            scopes: a.scopes.join(", "),
        })
        .collect();
    let csrf = session_csrf(&s.session);
    page(
        status,
        AppsPage {
            nav: s.nav(),
            csrf: &csrf,
            created: form.created,
            error: form.error,
            name: form.name,
            redirect_uri: form.redirect_uri,
            confidential: form.confidential,
            scopes: scope_choices(&offered(state, s.user.admin), form.scopes),
            apps,
            authorized,
        }
        .render(),
        "",
    )
}

fn blank<'a>() -> Form<'a> {
    Form {
        created: None,
        error: None,
        name: "",
        redirect_uri: "",
        confidential: true,
        scopes: &[],
    }
}

/// `GET /-/user_settings/applications`
pub async fn applications_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match signed_in(&state, &headers, APPS_PATH).await {
        Ok(s) => render(&state, &s, StatusCode::OK, blank()).await,
        Err(answer) => answer,
    }
}

/// `POST /-/user_settings/applications`: a new application of the user's,
/// its secret on the page that answers, once.
pub async fn create_application(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Params,
) -> Response {
    // GitLab's pages name the fields `doorkeeper_application[…]`.
    let params = params.unnest("doorkeeper_application");
    let s = match posting(&state, &headers, &params, APPS_PATH).await {
        Ok(s) => s,
        Err(answer) => return answer,
    };
    let sent = ApplicationForm::read(&params);
    let (name, redirect_uri, sent_scopes) = (&sent.name, &sent.redirect_uri, &sent.scopes);
    let confidential = sent.confidential;
    let refused = |message: String| {
        let (state, s) = (&state, &s);
        async move {
            let form = Form {
                created: None,
                error: Some(&message),
                name,
                redirect_uri,
                confidential,
                scopes: sent_scopes,
            };
            render(state, s, StatusCode::UNPROCESSABLE_ENTITY, form).await
        }
    };
    if let Some(message) = sent.unoffered(&offered(&state, s.user.admin)) {
        return refused(message).await;
    }
    let ctx = request_id::context(Some(s.user.id), Via::Session);
    match state
        .services
        .create_application(&ctx, Some(s.user.id), &sent.params())
        .await
    {
        Ok((app, secret)) => {
            let form = Form {
                created: Some(Created {
                    what: format!("Application {} was created.", app.name),
                    client_id: app.application_id.clone(),
                    secret: secret.expose().to_owned(),
                }),
                ..blank()
            };
            render(&state, &s, StatusCode::OK, form).await
        }
        Err(ServiceError::Validation(v)) => refused(v.to_string()).await,
        Err(ServiceError::Invalid(m)) => refused(m).await,
        Err(e) => internal_page(e),
    }
}

/// `POST /-/user_settings/applications/authorized/:id/revoke`: withdraw
/// what the user granted the application `:id`; its tokens stop at once.
pub async fn revoke_authorized(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    params: Params,
) -> Response {
    let s = match posting(&state, &headers, &params, APPS_PATH).await {
        Ok(s) => s,
        Err(answer) => return answer,
    };
    let Ok(id) = id.parse::<i64>() else {
        return not_found_page();
    };
    let ctx = request_id::context(Some(s.user.id), Via::Session);
    match state
        .services
        .revoke_authorization(&ctx, s.user.id, id)
        .await
    {
        Ok(()) => redirect(APPS_PATH, &[]),
        Err(ServiceError::NotFound) => not_found_page(),
        Err(e) => internal_page(e),
    }
}
