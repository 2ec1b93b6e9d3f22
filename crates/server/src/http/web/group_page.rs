//! A group's page at its `web_url` (`/groups/:full_path`, as GitLab): its
//! name, path, description and the subgroups the visitor may see. A group
//! the visitor may not see (the Groups API's rule: public to anyone,
//! internal to signed-in users who are not external, private to members
//! and administrators) is the 404 page, as GitLab does not tell a hidden
//! group from a missing one.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use latchkey_core::access::Actor;
use latchkey_core::group::{Group, GroupFilter, GroupOrder};
use latchkey_core::pagination::PageRequest;
use latchkey_core::scopes::Scopes;
use latchkey_core::user::UserState;

use super::super::pages::{page, Nav};
use super::super::AppState;
use super::{current, day, internal_page, nav_for, not_found_page};

/// How many subgroups the page lists.
const SHOWN: u64 = 100;

struct SubgroupRow {
    name: String,
    full_path: String,
    description: String,
    visibility: &'static str,
}

#[derive(Template)]
#[template(path = "group.html")]
struct GroupPage<'a> {
    nav: Nav,
    group: &'a Group,
    parent: Option<String>,
    created: String,
    subgroups: Vec<SubgroupRow>,
    total: u64,
}

/// `GET /groups/:full_path`
pub async fn group_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(full_path): Path<String>,
) -> Response {
    let services = &state.services;
    let visitor = match current(&state, &headers).await {
        Ok(s) => s,
        Err(e) => return internal_page(e),
    };
    let group = match services.find_group_by_path(&full_path).await {
        Ok(Some(g)) => g,
        Ok(None) => return not_found_page(),
        Err(e) => return internal_page(e),
    };
    // A browser acts as its user would with a token for everything; as an
    // administrator only in Admin Mode (when the server asks for it), as
    // GitLab's pages.
    let scopes = Scopes::from_stored(match &visitor {
        Some(s) if s.admin_mode => "api admin_mode",
        _ => "api",
    });
    let user = visitor
        .as_ref()
        .map(|s| &s.user)
        .filter(|u| u.state == UserState::Active);
    let actor = user.map(|user| Actor {
        user,
        scopes: &scopes,
    });
    match services.group_role(actor, &group).await {
        Ok(role) if role.may_read() => {}
        Ok(_) => return not_found_page(),
        Err(e) => return internal_page(e),
    }
    let filter = GroupFilter {
        viewer: services.group_viewer(actor),
        all_available: true,
        owned: false,
        min_access_level: None,
        search: None,
        parent_id: Some(group.id),
        descendants_of: None,
        top_level_only: false,
        skip_groups: Vec::new(),
        visibility: None,
        order: GroupOrder::Name,
        ascending: true,
        today: services.today_text(),
    };
    let first = PageRequest {
        page: 1,
        per_page: SHOWN,
    };
    let (subgroups, total) = match services.list_groups(&filter, first).await {
        Ok(r) => r,
        Err(e) => return internal_page(e),
    };
    let parent = group
        .full_path
        .rsplit_once('/')
        .map(|(parent, _)| parent.to_owned());
    page(
        StatusCode::OK,
        GroupPage {
            nav: nav_for(visitor.as_ref()),
            group: &group,
            parent,
            created: day(group.created_at),
            subgroups: subgroups
                .iter()
                .map(|g| SubgroupRow {
                    name: g.name.clone(),
                    full_path: g.full_path.clone(),
                    description: g.description.clone(),
                    visibility: g.visibility.as_str(),
                })
                .collect(),
            total,
        }
        .render(),
        "",
    )
}
