//! Groups in the Admin Area, at GitLab's paths: the list
//! (`/admin/groups`, searched by name or path), new, and one group at
//! `/admin/groups/:full_path` (its details, subgroups, members and
//! applications) with `…/-/edit` and `…/-/delete` (after typing its
//! path). A full path has slashes, so one wildcard route serves a group's
//! pages and they are told apart by their `/-/…` suffix. The rules are the
//! Groups API's: the service checks names, paths and visibility.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use latchkey_core::context::Via;
use latchkey_core::group::{
    level, Group, GroupFilter, GroupOrder, GroupParams, GroupUpdate, MemberFilter, Viewer,
    Visibility,
};
use latchkey_core::pagination::PageRequest;
use latchkey_core::service::ServiceError;

use super::super::pages::Nav;
use super::super::params::Params;
use super::super::{request_id, AppState};
use super::admin::{page_number, page_of, pager, PER_PAGE};
use super::gate::administrator;
use super::{
    csrf_failure, csrf_ok, day, internal_page, not_found_page, redirect, session_csrf, SignedIn,
};

/// How many members and applications a group's page lists.
const SHOWN: u64 = 100;

/// Where a group's pages are.
fn group_path(full_path: &str) -> String {
    format!("/admin/groups/{full_path}")
}

struct GroupRow {
    full_name: String,
    full_path: String,
    visibility: &'static str,
    created: String,
}

fn row(g: &Group) -> GroupRow {
    GroupRow {
        full_name: g.full_name.clone(),
        full_path: g.full_path.clone(),
        visibility: g.visibility.as_str(),
        created: day(g.created_at),
    }
}

/// Every group an administrator sees, by full path.
fn all_groups(state: &AppState, s: &SignedIn) -> GroupFilter {
    GroupFilter {
        viewer: Viewer::Admin { id: s.user.id },
        all_available: true,
        owned: false,
        min_access_level: None,
        search: None,
        parent_id: None,
        descendants_of: None,
        top_level_only: false,
        skip_groups: Vec::new(),
        visibility: None,
        order: GroupOrder::Path,
        ascending: true,
        today: state.services.today_text(),
    }
}

#[derive(Template)]
#[template(path = "admin_groups.html")]
struct ListPage<'a> {
    nav: Nav,
    section: &'a str,
    search: &'a str,
    total: u64,
    groups: Vec<GroupRow>,
    prev: Option<String>,
    next: Option<String>,
    page_number: u64,
}

/// `GET /admin/groups[?search=…&page=N]`
pub async fn groups(State(state): State<AppState>, headers: HeaderMap, params: Params) -> Response {
    let s = match administrator(&state, &headers, "/admin/groups").await {
        Ok(s) => s,
        Err(answer) => return answer,
    };
    let search = params.get_str("search").unwrap_or("").trim().to_owned();
    let page = page_number(&params);
    let mut filter = all_groups(&state, &s);
    filter.search = (!search.is_empty()).then(|| search.clone());
    let request = PageRequest {
        page,
        per_page: PER_PAGE,
    };
    let (found, total) = match state.services.list_groups(&filter, request).await {
        Ok(r) => r,
        Err(e) => return internal_page(e),
    };
    let base = if search.is_empty() {
        "/admin/groups".to_owned()
    } else {
        super::append_query("/admin/groups", &[("search", &search)])
    };
    let (prev, next) = pager(&base, page, total);
    page_of(
        StatusCode::OK,
        ListPage {
            nav: s.nav(),
            section: "groups",
            search: &search,
            total,
            groups: found.iter().map(row).collect(),
            prev,
            next,
            page_number: page,
        }
        .render(),
    )
}

/// What the group form shows.
struct GroupForm {
    name: String,
    path: String,
    description: String,
    visibility: String,
}

impl GroupForm {
    fn read(params: &Params) -> Self {
        let text = |key: &str| params.get_str(key).unwrap_or("").trim().to_owned();
        Self {
            name: text("name"),
            path: text("path"),
            description: text("description"),
            visibility: text("visibility"),
        }
    }

    fn of(g: &Group) -> Self {
        Self {
            name: g.name.clone(),
            path: g.path.clone(),
            description: g.description.clone(),
            visibility: g.visibility.as_str().to_owned(),
        }
    }

    /// The visibility chosen: one of the form's, or why not.
    fn visibility(&self) -> Result<Visibility, &'static str> {
        Visibility::parse(&self.visibility).ok_or("Choose a visibility from the list.")
    }
}

#[derive(Template)]
#[template(path = "admin_group_form.html")]
struct FormPage<'a> {
    nav: Nav,
    section: &'a str,
    csrf: &'a str,
    error: Option<&'a str>,
    /// `None` for a new group; else the group's page.
    editing: Option<String>,
    form: &'a GroupForm,
    visibilities: [&'static str; 3],
}

fn form_page(
    s: &SignedIn,
    status: StatusCode,
    editing: Option<String>,
    form: &GroupForm,
    error: Option<&str>,
) -> Response {
    let csrf = session_csrf(&s.session);
    page_of(
        status,
        FormPage {
            nav: s.nav(),
            section: "groups",
            csrf: &csrf,
            error,
            editing,
            form,
            visibilities: Visibility::ALL.map(Visibility::as_str),
        }
        .render(),
    )
}

/// A refusal's words for the form; `None` for a fault.
fn refusal(e: &ServiceError) -> Option<String> {
    match e {
        ServiceError::Validation(v) => Some(v.to_string()),
        ServiceError::Invalid(m) => Some(m.clone()),
        ServiceError::Forbidden(Some(why)) => Some((*why).to_owned()),
        _ => None,
    }
}

/// `GET /admin/groups/new`
pub async fn new_group(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match administrator(&state, &headers, "/admin/groups/new").await {
        Ok(s) => {
            let blank = GroupForm {
                name: String::new(),
                path: String::new(),
                description: String::new(),
                visibility: state
                    .services
                    .config()
                    .default_group_visibility
                    .as_str()
                    .to_owned(),
            };
            form_page(&s, StatusCode::OK, None, &blank, None)
        }
        Err(answer) => answer,
    }
}

/// `POST /admin/groups`: a new top-level group (its creator its Owner, as
/// the Groups API makes it); to its page.
pub async fn create_group(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Params,
) -> Response {
    let params = params.unnest("group");
    let s = match administrator(&state, &headers, "/admin/groups/new").await {
        Ok(s) => s,
        Err(answer) => return answer,
    };
    if !csrf_ok(&state, &headers, Some(&s.session), &params) {
        return csrf_failure();
    }
    let form = GroupForm::read(&params);
    let refused =
        |why: &str| form_page(&s, StatusCode::UNPROCESSABLE_ENTITY, None, &form, Some(why));
    let visibility = match form.visibility() {
        Ok(v) => v,
        Err(why) => return refused(why),
    };
    let input = GroupParams {
        name: form.name.clone(),
        path: form.path.clone(),
        parent_id: None,
        description: Some(form.description.clone()),
        visibility: Some(visibility),
        avatar: None,
    };
    let ctx = request_id::context(Some(s.user.id), Via::Session);
    match state
        .services
        .create_group(&ctx, &s.user, input, None)
        .await
    {
        Ok(group) => redirect(&group_path(&group.full_path), &[]),
        Err(e) => match refusal(&e) {
            Some(why) => refused(&why),
            None => internal_page(e),
        },
    }
}

/// Which of a group's pages a wildcard path names.
enum Part<'a> {
    Show(&'a str),
    Edit(&'a str),
    Delete(&'a str),
}

fn part(full_path: &str) -> Part<'_> {
    if let Some(p) = full_path.strip_suffix("/-/edit") {
        Part::Edit(p)
    } else if let Some(p) = full_path.strip_suffix("/-/delete") {
        Part::Delete(p)
    } else {
        Part::Show(full_path)
    }
}

/// The administrator and the group at `full_path`; else the answer.
async fn found(
    state: &AppState,
    headers: &HeaderMap,
    back: &str,
    full_path: &str,
    posted: Option<&Params>,
) -> Result<(SignedIn, Group), Response> {
    let s = administrator(state, headers, back).await?;
    if let Some(params) = posted {
        if !csrf_ok(state, headers, Some(&s.session), params) {
            return Err(csrf_failure());
        }
    }
    match state.services.find_group_by_path(full_path).await {
        Ok(Some(group)) => Ok((s, group)),
        Ok(None) => Err(not_found_page()),
        Err(e) => Err(internal_page(e)),
    }
}

/// `GET /admin/groups/:full_path[/-/edit|/-/delete]`
pub async fn group_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(full_path): Path<String>,
) -> Response {
    let back = group_path(&full_path);
    match part(&full_path) {
        Part::Show(p) => match found(&state, &headers, &back, p, None).await {
            Ok((s, group)) => show_page(&state, &s, &group).await,
            Err(answer) => answer,
        },
        Part::Edit(p) => match found(&state, &headers, &back, p, None).await {
            Ok((s, group)) => {
                let editing = Some(group_path(&group.full_path));
                form_page(&s, StatusCode::OK, editing, &GroupForm::of(&group), None)
            }
            Err(answer) => answer,
        },
        Part::Delete(p) => match found(&state, &headers, &back, p, None).await {
            Ok((s, group)) => delete_page(&s, StatusCode::OK, &group, None),
            Err(answer) => answer,
        },
    }
}

/// `POST /admin/groups/:full_path/-/edit` (save) and `…/-/delete`.
pub async fn group_action(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(full_path): Path<String>,
    params: Params,
) -> Response {
    let params = params.unnest("group");
    let back = group_path(&full_path);
    match part(&full_path) {
        Part::Show(_) => match administrator(&state, &headers, &back).await {
            Ok(_) => not_found_page(),
            Err(answer) => answer,
        },
        Part::Edit(p) => match found(&state, &headers, &back, p, Some(&params)).await {
            Ok((s, group)) => update(&state, &s, &group, &params).await,
            Err(answer) => answer,
        },
        Part::Delete(p) => match found(&state, &headers, &back, p, Some(&params)).await {
            Ok((s, group)) => delete(&state, &s, &group, &params).await,
            Err(answer) => answer,
        },
    }
}

struct MemberRow {
    username: String,
    name: String,
    role: &'static str,
    expires: String,
}

struct AppRow {
    name: String,
    client_id: String,
    redirect_uri: String,
}

#[derive(Template)]
#[template(path = "admin_group_show.html")]
struct ShowPage<'a> {
    nav: Nav,
    section: &'a str,
    base: String,
    group: &'a Group,
    parent: Option<String>,
    created: String,
    subgroups: Vec<GroupRow>,
    members: Vec<MemberRow>,
    members_total: u64,
    apps: Vec<AppRow>,
    apps_total: u64,
}

async fn show_page(state: &AppState, s: &SignedIn, group: &Group) -> Response {
    let services = &state.services;
    let first = PageRequest {
        page: 1,
        per_page: SHOWN,
    };
    let mut below = all_groups(state, s);
    below.parent_id = Some(group.id);
    let members = MemberFilter {
        today: services.today_text(),
        ..MemberFilter::default()
    };
    let ((subgroups, _), (members, members_total), (apps, apps_total)) = match futures::try_join!(
        services.list_groups(&below, first),
        services.list_members(group.id, &members, first),
        services.list_group_applications(group.id, first),
    ) {
        Ok(r) => r,
        Err(e) => return internal_page(e),
    };
    let parent = group
        .full_path
        .rsplit_once('/')
        .map(|(parent, _)| parent.to_owned());
    page_of(
        StatusCode::OK,
        ShowPage {
            nav: s.nav(),
            section: "groups",
            base: group_path(&group.full_path),
            group,
            parent,
            created: day(group.created_at),
            subgroups: subgroups.iter().map(row).collect(),
            members: members
                .iter()
                .map(|m| MemberRow {
                    username: m.user.username.clone(),
                    name: m.user.name.clone(),
                    role: level::name(m.membership.access_level),
                    expires: m.membership.expires_at.clone().unwrap_or_default(),
                })
                .collect(),
            members_total,
            apps: apps
                .iter()
                .map(|a| AppRow {
                    name: a.name.clone(),
                    client_id: a.application_id.clone(),
                    redirect_uri: a.redirect_uri.replace('\n', " "),
                })
                .collect(),
            apps_total,
        }
        .render(),
    )
}

/// The edit form's changes; to the group's page (at its new path), or
/// the form again (422) with what was refused.
async fn update(state: &AppState, s: &SignedIn, group: &Group, params: &Params) -> Response {
    let form = GroupForm::read(params);
    let editing = Some(group_path(&group.full_path));
    let refused = |why: &str| {
        form_page(
            s,
            StatusCode::UNPROCESSABLE_ENTITY,
            editing.clone(),
            &form,
            Some(why),
        )
    };
    let visibility = match form.visibility() {
        Ok(v) => v,
        Err(why) => return refused(why),
    };
    let update = GroupUpdate {
        name: Some(form.name.clone()),
        path: Some(form.path.clone()),
        description: Some(form.description.clone()),
        visibility: Some(visibility),
        avatar: None,
    };
    let ctx = request_id::context(Some(s.user.id), Via::Session);
    match state.services.update_group(&ctx, group, update).await {
        Ok(group) => redirect(&group_path(&group.full_path), &[]),
        Err(ServiceError::NotFound) => not_found_page(),
        Err(e) => match refusal(&e) {
            Some(why) => refused(&why),
            None => internal_page(e),
        },
    }
}

#[derive(Template)]
#[template(path = "admin_group_delete.html")]
struct DeletePage<'a> {
    nav: Nav,
    section: &'a str,
    csrf: &'a str,
    base: String,
    error: Option<&'a str>,
    group: &'a Group,
}

fn delete_page(s: &SignedIn, status: StatusCode, group: &Group, error: Option<&str>) -> Response {
    let csrf = session_csrf(&s.session);
    page_of(
        status,
        DeletePage {
            nav: s.nav(),
            section: "groups",
            csrf: &csrf,
            base: group_path(&group.full_path),
            error,
            group,
        }
        .render(),
    )
}

/// The group is gone, with its subgroups, memberships and applications,
/// once its full path is typed; back to the list.
async fn delete(state: &AppState, s: &SignedIn, group: &Group, params: &Params) -> Response {
    let typed = params.get_str("confirm_path").unwrap_or("").trim();
    if typed != group.full_path {
        let why = format!(
            "Type the group's path, {}, to confirm the deletion.",
            group.full_path
        );
        return delete_page(s, StatusCode::UNPROCESSABLE_ENTITY, group, Some(&why));
    }
    let ctx = request_id::context(Some(s.user.id), Via::Session);
    match state.services.delete_group(&ctx, group).await {
        Ok(()) | Err(ServiceError::NotFound) => redirect("/admin/groups", &[]),
        Err(e) => match refusal(&e) {
            Some(why) => delete_page(s, StatusCode::UNPROCESSABLE_ENTITY, group, Some(&why)),
            None => internal_page(e),
        },
    }
}
