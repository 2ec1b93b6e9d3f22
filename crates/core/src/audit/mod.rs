//! The audit trail, in the shape of GitLab's audit events: who (the
//! author) changed what (a target, within an entity: a user, a group, or
//! the instance), when, from which address, on which request.
//!
//! Every change is recorded in the same transaction as the change itself
//! (see [`crate::store::Transaction::record_audit`]): a change that commits
//! has its event, and an event never describes a change that rolled back.
//! Never a secret or a token value: `details` holds what changed (`from`
//! and `to`) and facts about the target.

mod service;

use serde_json::{Map, Value};

use crate::context::{Context, Via};
use crate::error::StoreError;
use crate::pagination::PageRequest;

pub use service::ListedEvents;

/// Where committed events also go, as they happen (a JSON-lines stream for
/// log shippers). Called after the commit, never inside a transaction; it
/// must not block.
pub trait AuditSink: Send + Sync {
    fn publish(&self, event: &AuditEvent);
}

/// GitLab's name for the instance as an entity.
pub const INSTANCE_SCOPE: &str = "Gitlab::Audit::InstanceScope";
/// The author of what nobody signed in did (failed sign-ins,
/// registrations), of what latchkey did itself, and of the command line:
/// GitLab's id for an unauthenticated author.
pub const NO_AUTHOR: i64 = -1;

/// What an event is about, as GitLab scopes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntityType {
    User,
    Group,
    Project,
    /// The instance as a whole (entity id 1).
    Instance,
}

impl EntityType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "User",
            Self::Group => "Group",
            Self::Project => "Project",
            Self::Instance => INSTANCE_SCOPE,
        }
    }

    /// GitLab's accepted `entity_type` values, exactly.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "User" => Self::User,
            "Group" => Self::Group,
            "Project" => Self::Project,
            INSTANCE_SCOPE => Self::Instance,
            _ => return None,
        })
    }
}

/// The entity an event is recorded under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entity {
    pub kind: EntityType,
    pub id: i64,
    /// GitLab's `entity_path` (a username, a group's full path); for a user
    /// left `None`, the store fills in the username it finds.
    pub path: Option<String>,
}

impl Entity {
    pub fn user(id: i64) -> Self {
        Self {
            kind: EntityType::User,
            id,
            path: None,
        }
    }

    pub fn instance() -> Self {
        Self {
            kind: EntityType::Instance,
            id: 1,
            path: Some("gitlab_instance".to_owned()),
        }
    }

    /// Where a change to something owned by `owner` is recorded: under its
    /// owner; else under the acting user (GitLab: `owner || current_user`);
    /// else under the instance.
    pub fn owner_or_actor(owner: Option<i64>, ctx: &Context) -> Self {
        match owner.or(ctx.user_id) {
            Some(id) => Self::user(id),
            None => Self::instance(),
        }
    }
}

/// What an event's target is (GitLab's class names where GitLab has one).
pub mod target {
    pub const USER: &str = "User";
    pub const GROUP: &str = "Group";
    pub const APPLICATION: &str = "Authn::OauthApplication";
    pub const PERSONAL_ACCESS_TOKEN: &str = "PersonalAccessToken";
    pub const OAUTH_TOKEN: &str = "Authn::OauthAccessToken";
    pub const DEVICE_GRANT: &str = "DeviceAuthorization";
    pub const SIGNING_KEY: &str = "SigningKey";
}

/// An event to record. Built with [`NewAuditEvent::new`] and its setters.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAuditEvent {
    pub created_at: i64,
    pub author_id: i64,
    /// The author's name if the store finds no user `author_id` (the
    /// store prefers the user's current name).
    pub author_name: String,
    pub entity: Entity,
    pub event_name: &'static str,
    pub target_type: Option<&'static str>,
    pub target_id: Option<i64>,
    pub target_details: Option<String>,
    pub ip_address: Option<String>,
    pub request_id: Option<String>,
    /// The event's own details: `custom_message`, `change`, `from`, `to`,
    /// and facts about the target. Never a secret.
    pub details: Map<String, Value>,
}

impl NewAuditEvent {
    /// `event_name` happened at `now` (ms) under `entity`, done on `ctx`'s
    /// behalf, described by `message` (GitLab's `custom_message`).
    pub fn new(
        ctx: &Context,
        now: i64,
        event_name: &'static str,
        entity: Entity,
        message: &str,
    ) -> Self {
        let (author_id, author_name) = match (ctx.user_id, ctx.via) {
            (Some(id), _) => (id, "A deleted user"),
            (None, Via::CommandLine) => (NO_AUTHOR, "latchkey (command line)"),
            (None, Via::System) => (NO_AUTHOR, "latchkey"),
            (None, _) => (NO_AUTHOR, "An unauthenticated user"),
        };
        let mut details = Map::new();
        details.insert("custom_message".to_owned(), Value::from(message));
        if author_id == NO_AUTHOR {
            details.insert("author_class".to_owned(), Value::from(author_class(ctx)));
        }
        Self {
            created_at: now,
            author_id,
            author_name: author_name.to_owned(),
            entity,
            event_name,
            target_type: None,
            target_id: None,
            target_details: None,
            ip_address: ctx.address.clone(),
            request_id: ctx.request_id.clone(),
            details,
        }
    }

    /// What the event acted on.
    pub fn target(mut self, kind: &'static str, id: Option<i64>, details: &str) -> Self {
        self.target_type = Some(kind);
        self.target_id = id;
        self.target_details = Some(details.to_owned());
        self
    }

    /// One more fact (never a secret).
    pub fn detail(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.details.insert(key.to_owned(), value.into());
        self
    }

    /// GitLab's record of one changed attribute: `change`, `from`, `to`.
    pub fn change(self, what: &str, from: impl Into<Value>, to: impl Into<Value>) -> Self {
        self.detail("change", what)
            .detail("from", from)
            .detail("to", to)
    }

    /// Named author who is not a user (an OAuth client acting on its own).
    pub fn by(mut self, name: &str, class: &str) -> Self {
        self.author_id = NO_AUTHOR;
        self.author_name = name.to_owned();
        self.details
            .insert("author_class".to_owned(), Value::from(class));
        self
    }
}

/// `details` as stored: a JSON object's text.
pub fn encode_details(details: &Map<String, Value>) -> String {
    Value::Object(details.clone()).to_string()
}

/// Stored `details` read back; `None` unless a JSON object.
pub fn decode_details(text: &str) -> Option<Map<String, Value>> {
    match serde_json::from_str(text) {
        Ok(Value::Object(map)) => Some(map),
        _ => None,
    }
}

fn author_class(ctx: &Context) -> &'static str {
    match ctx.via {
        Via::System | Via::CommandLine => "System",
        Via::Client => "Authn::OauthApplication",
        _ => "Gitlab::Audit::UnauthenticatedAuthor",
    }
}

/// A recorded event, as the Audit Events API shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEvent {
    pub id: i64,
    pub created_at: i64,
    pub author_id: i64,
    pub author_name: String,
    /// The author's email when the event was recorded, if the author was a user.
    pub author_email: Option<String>,
    pub entity_type: String,
    pub entity_id: i64,
    pub entity_path: Option<String>,
    pub event_name: String,
    pub target_type: Option<String>,
    pub target_id: Option<i64>,
    pub target_details: Option<String>,
    pub ip_address: Option<String>,
    pub request_id: Option<String>,
    pub details: Map<String, Value>,
}

impl AuditEvent {
    /// GitLab's `details`: the event's own details with the author, target,
    /// address and entity path merged in (`from` and `to` as strings).
    pub fn formatted_details(&self) -> Map<String, Value> {
        let mut out = self.details.clone();
        for key in ["from", "to"] {
            if let Some(v) = out.get_mut(key) {
                if !v.is_string() {
                    let text = match &*v {
                        Value::Null => String::new(),
                        other => other.to_string(),
                    };
                    *v = Value::from(text);
                }
            }
        }
        out.insert(
            "event_name".to_owned(),
            Value::from(self.event_name.clone()),
        );
        out.insert(
            "author_name".to_owned(),
            Value::from(self.author_name.clone()),
        );
        out.insert(
            "author_email".to_owned(),
            self.author_email.clone().map_or(Value::Null, Value::from),
        );
        let opt = |v: &Option<String>| v.clone().map_or(Value::Null, Value::from);
        out.insert(
            "target_id".to_owned(),
            self.target_id.map_or(Value::Null, Value::from),
        );
        out.insert("target_type".to_owned(), opt(&self.target_type));
        out.insert("target_details".to_owned(), opt(&self.target_details));
        out.insert("ip_address".to_owned(), opt(&self.ip_address));
        out.insert("entity_path".to_owned(), opt(&self.entity_path));
        out.insert("request_id".to_owned(), opt(&self.request_id));
        out
    }
}

/// GitLab's filters of `GET /audit_events`. Instants are ms; both ends
/// are inclusive.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    pub created_after: Option<i64>,
    pub created_before: Option<i64>,
    pub entity_type: Option<EntityType>,
    pub entity_id: Option<i64>,
}

/// A keyset page: newest first from before `id` (GitLab's default order,
/// `sort=desc`), or oldest first from after it (`sort=asc`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keyset {
    pub ascending: bool,
    /// The last id of the previous page, if any.
    pub from: Option<i64>,
    pub limit: i64,
}

/// The audit trail's storage. Events are written through a
/// [`crate::store::Transaction`], with the change they describe.
#[async_trait::async_trait]
pub trait AuditStore: Send + Sync {
    /// One offset page, newest first, and the total (capped at
    /// [`crate::store::COUNT_CAP`] + 1).
    async fn list_audit_events(
        &self,
        filter: &AuditFilter,
        page: PageRequest,
    ) -> Result<(Vec<AuditEvent>, u64), StoreError>;

    /// One keyset page.
    async fn audit_events_keyset(
        &self,
        filter: &AuditFilter,
        keyset: Keyset,
    ) -> Result<Vec<AuditEvent>, StoreError>;

    async fn find_audit_event(&self, id: i64) -> Result<Option<AuditEvent>, StoreError>;

    /// Delete up to `limit` of the oldest events created before `before`
    /// (ms); how many.
    async fn delete_audit_events_before(&self, before: i64, limit: i64) -> Result<u64, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entity_types_are_gitlabs() {
        for t in [
            EntityType::User,
            EntityType::Group,
            EntityType::Project,
            EntityType::Instance,
        ] {
            assert_eq!(EntityType::parse(t.as_str()), Some(t));
        }
        assert_eq!(EntityType::parse("user"), None, "GitLab's values are exact");
        assert_eq!(EntityType::parse("Application"), None);
    }

    #[test]
    fn authors_who_are_not_users_are_named_for_what_they_are() {
        let cli = NewAuditEvent::new(&Context::command_line(), 5, "x", Entity::instance(), "m");
        assert_eq!(cli.author_id, NO_AUTHOR);
        assert_eq!(cli.details["author_class"], "System");
        let anonymous = Context {
            via: Via::Session,
            address: Some("192.0.2.1".to_owned()),
            ..Context::default()
        };
        let e = NewAuditEvent::new(&anonymous, 5, "x", Entity::user(3), "m");
        assert_eq!(e.author_name, "An unauthenticated user");
        assert_eq!(e.ip_address.as_deref(), Some("192.0.2.1"));
        let user = Context {
            user_id: Some(7),
            ..Context::default()
        };
        let e = NewAuditEvent::new(&user, 5, "x", Entity::user(3), "m");
        assert_eq!(e.author_id, 7);
        assert!(!e.details.contains_key("author_class"));
    }

    #[test]
    fn formatted_details_merge_the_columns_and_stringify_from_and_to() {
        let e = AuditEvent {
            id: 1,
            created_at: 0,
            author_id: 2,
            author_name: "Alice".to_owned(),
            author_email: Some("a@example.com".to_owned()),
            entity_type: "User".to_owned(),
            entity_id: 3,
            entity_path: Some("bob".to_owned()),
            event_name: "user_updated".to_owned(),
            target_type: Some("User".to_owned()),
            target_id: Some(3),
            target_details: Some("bob".to_owned()),
            ip_address: Some("192.0.2.1".to_owned()),
            request_id: Some("r1".to_owned()),
            details: serde_json::json!({"change": "admin", "from": false, "to": true})
                .as_object()
                .cloned()
                .unwrap_or_default(),
        };
        let d = e.formatted_details();
        assert_eq!(d["from"], "false");
        assert_eq!(d["to"], "true");
        assert_eq!(d["author_name"], "Alice");
        assert_eq!(d["target_id"], 3);
        assert_eq!(d["ip_address"], "192.0.2.1");
        assert_eq!(d["entity_path"], "bob");
        assert_eq!(d["event_name"], "user_updated");
    }
}
