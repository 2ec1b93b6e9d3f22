//! The audit log in the Admin Area (`/admin/audit_events`): every event,
//! newest first, 20 a page, filtered as the Audit Events API filters
//! (by the kind of entity, with it one entity's id, and by when: from a
//! day, before a day, UTC).

use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use latchkey_core::audit::{AuditEvent, AuditFilter, EntityType};
use latchkey_core::pagination::PageRequest;

use super::super::pages::Nav;
use super::super::params::Params;
use super::super::AppState;
use super::admin::{page_number, page_of, pager, PER_PAGE};
use super::gate::administrator;
use super::{internal_page, moment};

/// The entity types the filter offers: the value, and what it says.
const TYPES: [(&str, &str); 4] = [
    ("User", "Users"),
    ("Group", "Groups"),
    ("Project", "Projects"),
    (latchkey_core::audit::INSTANCE_SCOPE, "The instance"),
];

struct EventRow {
    id: i64,
    when: String,
    author: String,
    event: String,
    entity: String,
    target: String,
    message: String,
    address: String,
}

fn row(e: &AuditEvent) -> EventRow {
    let entity = match &e.entity_path {
        Some(path) if !path.is_empty() => format!("{} {path}", e.entity_type),
        _ => format!("{} {}", e.entity_type, e.entity_id),
    };
    EventRow {
        id: e.id,
        when: moment(e.created_at),
        author: e.author_name.clone(),
        event: e.event_name.clone(),
        entity,
        target: e.target_details.clone().unwrap_or_default(),
        message: e
            .details
            .get("custom_message")
            .and_then(|m| m.as_str())
            .unwrap_or("")
            .to_owned(),
        address: e.ip_address.clone().unwrap_or_default(),
    }
}

#[derive(Template)]
#[template(path = "admin_audit_events.html")]
struct EventsPage<'a> {
    nav: Nav,
    section: &'a str,
    types: [(&'static str, &'static str); 4],
    entity_type: &'a str,
    entity_id: &'a str,
    after: &'a str,
    before: &'a str,
    error: Option<&'a str>,
    total: u64,
    events: Vec<EventRow>,
    prev: Option<String>,
    next: Option<String>,
    page_number: u64,
}

/// `GET /admin/audit_events[?entity_type=…&entity_id=…&page=N]`
pub async fn audit_events(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Params,
) -> Response {
    let s = match administrator(&state, &headers, "/admin/audit_events").await {
        Ok(s) => s,
        Err(answer) => return answer,
    };
    let page = page_number(&params);
    let raw_type = params.get_str("entity_type").unwrap_or("").trim();
    let raw_id = params.get_str("entity_id").unwrap_or("").trim();
    let after = params.get_str("created_after").unwrap_or("").trim();
    let before = params.get_str("created_before").unwrap_or("").trim();
    let mut error = None;
    // Days (or times), read as the Audit Events API reads them.
    let mut bad_times = Vec::new();
    let created_after = params.optional_time("created_after", &mut bad_times);
    let created_before = params.optional_time("created_before", &mut bad_times);
    if !bad_times.is_empty() {
        error = Some("Give days as YYYY-MM-DD.");
    }
    let entity_type = if raw_type.is_empty() {
        None
    } else {
        let parsed = EntityType::parse(raw_type);
        if parsed.is_none() {
            error = Some("Choose the kind of entity from the list.");
        }
        parsed
    };
    let entity_id = if raw_id.is_empty() {
        None
    } else {
        match raw_id.parse::<i64>() {
            Ok(id) if entity_type.is_some() => Some(id),
            Ok(_) => {
                error = Some("An entity ID needs the kind of entity.");
                None
            }
            Err(_) => {
                error = Some("The entity ID is a number.");
                None
            }
        }
    };
    if let Some(why) = error {
        return page_of(
            StatusCode::UNPROCESSABLE_ENTITY,
            EventsPage {
                nav: s.nav(),
                section: "audit_events",
                types: TYPES,
                entity_type: raw_type,
                entity_id: raw_id,
                after,
                before,
                error: Some(why),
                total: 0,
                events: Vec::new(),
                prev: None,
                next: None,
                page_number: page,
            }
            .render(),
        );
    }
    let filter = AuditFilter {
        created_after,
        created_before,
        entity_type,
        entity_id,
    };
    let request = PageRequest {
        page,
        per_page: PER_PAGE,
    };
    let (events, total) = match state.services.list_audit_events(&filter, request).await {
        Ok(r) => r,
        Err(e) => return internal_page(e),
    };
    let mut query = Vec::new();
    if !raw_type.is_empty() {
        query.push(("entity_type", raw_type));
    }
    if !raw_id.is_empty() {
        query.push(("entity_id", raw_id));
    }
    if !after.is_empty() {
        query.push(("created_after", after));
    }
    if !before.is_empty() {
        query.push(("created_before", before));
    }
    let base = if query.is_empty() {
        "/admin/audit_events".to_owned()
    } else {
        super::append_query("/admin/audit_events", &query)
    };
    let (prev, next) = pager(&base, page, total);
    page_of(
        StatusCode::OK,
        EventsPage {
            nav: s.nav(),
            section: "audit_events",
            types: TYPES,
            entity_type: raw_type,
            entity_id: raw_id,
            after,
            before,
            error: None,
            total,
            events: events.iter().map(row).collect(),
            prev,
            next,
            page_number: page,
        }
        .render(),
    )
}
