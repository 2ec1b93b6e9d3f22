//! The Admin Area at GitLab's paths (issue 24, first steps): users
//! (`/admin/users`, search and filters) and instance applications
//! (`/admin/applications`: list, new with the secret shown once, show
//! without it, delete). Administrators only; anyone else gets the 404 page,
//! as GitLab answers.

use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use latchkey_core::context::Via;
use latchkey_core::pagination::PageRequest;
use latchkey_core::service::ServiceError;
use latchkey_core::user::UserFilter;

use super::super::pages::{page, Nav};
use super::super::params::Params;
use super::super::{request_id, AppState};
use super::app_pages::{show_page, Admin, Shown};
use super::forms::{offered, scope_choices, ApplicationForm, Choice};
pub(super) use super::gate::administrator;
use super::{csrf_failure, csrf_ok, day, internal_page, session_csrf, SignedIn};

pub(super) const PER_PAGE: u64 = 20;

/// The page number asked for (1 when absent or bad).
pub(super) fn page_number(params: &Params) -> u64 {
    params
        .get_str("page")
        .and_then(|p| p.parse::<u64>().ok())
        .filter(|p| (1..=100_000).contains(p))
        .unwrap_or(1)
}

/// Links to the previous and next pages of `base` (a path with a query).
pub(super) fn pager(base: &str, page: u64, total: u64) -> (Option<String>, Option<String>) {
    let sep = if base.contains('?') { '&' } else { '?' };
    let prev = (page > 1).then(|| format!("{base}{sep}page={}", page - 1));
    let next = (page * PER_PAGE < total).then(|| format!("{base}{sep}page={}", page + 1));
    (prev, next)
}

struct UserRow {
    name: String,
    username: String,
    email: String,
    state: &'static str,
    role: &'static str,
    created: String,
}

struct FilterLink {
    key: &'static str,
    label: &'static str,
    current: bool,
}

#[derive(Template)]
#[template(path = "admin_users.html")]
struct UsersPage<'a> {
    nav: Nav,
    section: &'a str,
    search: &'a str,
    filter: &'a str,
    filters: Vec<FilterLink>,
    total: u64,
    users: Vec<UserRow>,
    prev: Option<String>,
    next: Option<String>,
    page_number: u64,
}

/// `GET /admin/users[?search=…&filter=admins|blocked|external&page=N]`
pub async fn users(State(state): State<AppState>, headers: HeaderMap, params: Params) -> Response {
    let s = match administrator(&state, &headers, "/admin/users").await {
        Ok(s) => s,
        Err(answer) => return answer,
    };
    let search = params.get_str("search").unwrap_or("").trim().to_owned();
    let filter = params
        .get_str("filter")
        .filter(|f| ["admins", "blocked", "external"].contains(f))
        .unwrap_or("all");
    let page = page_number(&params);
    let query = UserFilter {
        search: (!search.is_empty()).then(|| search.clone()),
        search_emails: true,
        admins: filter == "admins",
        blocked: filter == "blocked",
        external: filter == "external",
        ascending: true,
        ..Default::default()
    };
    let (found, total) = match state
        .services
        .list_users(
            &query,
            PageRequest {
                page,
                per_page: PER_PAGE,
            },
        )
        .await
    {
        Ok(r) => r,
        Err(e) => return internal_page(e),
    };
    let rows = found
        .iter()
        .map(|u| UserRow {
            name: u.name.clone(),
            username: u.username.clone(),
            email: u.email.clone(),
            state: u.state.as_str(),
            role: if u.admin { "Administrator" } else { "Regular" },
            created: day(u.created_at),
        })
        .collect();
    let filters = [
        ("all", "All"),
        ("admins", "Admins"),
        ("blocked", "Blocked"),
        ("external", "External"),
    ]
    .into_iter()
    .map(|(key, label)| FilterLink {
        key,
        label,
        current: key == filter,
    })
    .collect();
    let base = super::append_query("/admin/users", &[("filter", filter), ("search", &search)]);
    let (prev, next) = pager(&base, page, total);
    page_of(
        StatusCode::OK,
        UsersPage {
            section: "users",
            nav: s.nav(),
            search: &search,
            filter,
            filters,
            total,
            users: rows,
            prev,
            next,
            page_number: page,
        }
        .render(),
    )
}

pub(super) fn page_of(status: StatusCode, body: Result<String, askama::Error>) -> Response {
    page(status, body, "")
}

struct AppRow {
    id: i64,
    name: String,
    client_id: String,
    redirect_uri: String,
    confidential: &'static str,
    trusted: &'static str,
}

pub(super) fn yes(b: bool) -> &'static str {
    if b {
        "Yes"
    } else {
        "No"
    }
}

#[derive(Template)]
#[template(path = "admin_applications.html")]
struct ApplicationsPage<'a> {
    nav: Nav,
    section: &'a str,
    search: &'a str,
    total: u64,
    apps: Vec<AppRow>,
    prev: Option<String>,
    next: Option<String>,
    page_number: u64,
}

/// `GET /admin/applications[?search=…&page=N]`
pub async fn applications(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Params,
) -> Response {
    let s = match administrator(&state, &headers, "/admin/applications").await {
        Ok(s) => s,
        Err(answer) => return answer,
    };
    let page = page_number(&params);
    let search = params.get_str("search").unwrap_or("").trim().to_owned();
    let request = PageRequest {
        page,
        per_page: PER_PAGE,
    };
    let listed = if search.is_empty() {
        state.services.list_instance_applications(request).await
    } else {
        state
            .services
            .search_instance_applications(&search, request)
            .await
    };
    let (found, total) = match listed {
        Ok(r) => r,
        Err(e) => return internal_page(e),
    };
    let apps = found
        .iter()
        .map(|a| AppRow {
            id: a.id,
            name: a.name.clone(),
            client_id: a.application_id.clone(),
            redirect_uri: a.redirect_uri.replace('\n', " "),
            confidential: yes(a.confidential),
            trusted: yes(a.trusted),
        })
        .collect();
    let base = if search.is_empty() {
        "/admin/applications".to_owned()
    } else {
        super::append_query("/admin/applications", &[("search", &search)])
    };
    let (prev, next) = pager(&base, page, total);
    page_of(
        StatusCode::OK,
        ApplicationsPage {
            search: &search,
            section: "applications",
            nav: s.nav(),
            total,
            apps,
            prev,
            next,
            page_number: page,
        }
        .render(),
    )
}

#[derive(Template)]
#[template(path = "admin_application_new.html")]
struct NewApplicationPage<'a> {
    nav: Nav,
    section: &'a str,
    csrf: &'a str,
    error: Option<&'a str>,
    name: &'a str,
    redirect_uri: &'a str,
    confidential: bool,
    scopes: Vec<Choice>,
}

fn new_form(
    state: &AppState,
    s: &SignedIn,
    status: StatusCode,
    error: Option<&str>,
    sent: &ApplicationForm,
) -> Response {
    let csrf = session_csrf(&s.session);
    page_of(
        status,
        NewApplicationPage {
            section: "applications",
            nav: s.nav(),
            csrf: &csrf,
            error,
            name: &sent.name,
            redirect_uri: &sent.redirect_uri,
            confidential: sent.confidential,
            scopes: scope_choices(&offered(state, true), &sent.scopes),
        }
        .render(),
    )
}

/// `GET /admin/applications/new`
pub async fn new_application(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match administrator(&state, &headers, "/admin/applications/new").await {
        Ok(s) => {
            let blank = ApplicationForm {
                name: String::new(),
                redirect_uri: String::new(),
                scopes: Vec::new(),
                confidential: true,
            };
            new_form(&state, &s, StatusCode::OK, None, &blank)
        }
        Err(answer) => answer,
    }
}

/// `POST /admin/applications`: a new instance application, shown with its
/// secret once.
pub async fn create_application(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Params,
) -> Response {
    // GitLab's pages name the fields `doorkeeper_application[…]`.
    let params = params.unnest("doorkeeper_application");
    let s = match administrator(&state, &headers, "/admin/applications/new").await {
        Ok(s) => s,
        Err(answer) => return answer,
    };
    if !csrf_ok(&state, &headers, Some(&s.session), &params) {
        return csrf_failure();
    }
    let sent = ApplicationForm::read(&params);
    let refused = |message: &str| {
        new_form(
            &state,
            &s,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(message),
            &sent,
        )
    };
    if let Some(message) = sent.unoffered(&offered(&state, true)) {
        return refused(&message);
    }
    let ctx = request_id::context(Some(s.user.id), Via::Session);
    match state
        .services
        .create_application(&ctx, None, &sent.params())
        .await
    {
        Ok((app, secret)) => {
            let shown = Shown {
                notice: Some("The application was created."),
                secret: Some((secret.expose(), None)),
                error: None,
            };
            show_page::<Admin>(&state, &s, StatusCode::OK, &app, shown).await
        }
        Err(ServiceError::Validation(v)) => refused(&v.to_string()),
        Err(ServiceError::Invalid(m)) => refused(&m),
        Err(e) => internal_page(e),
    }
}
