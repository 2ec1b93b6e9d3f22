//! OAuth applications: the domain type and Doorkeeper's model validation.

mod secrets;
mod service;

pub use secrets::Renewal;

pub(crate) use service::{application_created_event, application_event};

use serde::ser::{Serialize, SerializeMap, Serializer};

use crate::error::StoreError;
use crate::pagination::PageRequest;
use crate::redirect_uri;
use crate::scopes::{ScopeError, ScopeSet, Scopes, MAX_SCOPES, MAX_SCOPE_BYTES};

/// The longest application name accepted (GitLab's column has none; an
/// unbounded name is an easy way to bloat the database).
pub const MAX_NAME_CHARS: usize = 255;
/// The most redirect URIs one application may register.
pub const MAX_REDIRECT_URIS: usize = 100;

/// A registered OAuth application. `application_id` is the OAuth
/// `client_id` (GitLab's `uid` column).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Application {
    pub id: i64,
    pub application_id: String,
    pub name: String,
    pub redirect_uri: String,
    pub scopes: Scopes,
    pub confidential: bool,
    pub trusted: bool,
    /// The user who owns it; `None` for group and instance-wide applications.
    pub owner_id: Option<i64>,
    /// The group that owns it (GitLab's group applications).
    pub group_id: Option<i64>,
    pub created_at: i64,
    /// Registered through dynamic client registration (RFC 7591).
    pub dynamic: bool,
    /// The grants the client may use at the token endpoint (RFC 7591's
    /// `grant_types`); `None` allows every grant the server offers.
    pub grant_types: Option<Vec<String>>,
    /// Never stored: the secret this client proved, on the value client
    /// authentication returns. A token issued for it is stored only while
    /// that secret is still live, so that a renewal or `revoke-all`
    /// committed meanwhile leaves no token behind.
    pub client_secret_id: Option<i64>,
}

impl Application {
    /// May this client use `grant` (a canonical `grant_type` value)?
    pub fn allows_grant(&self, grant: &str) -> bool {
        self.grant_types
            .as_ref()
            .is_none_or(|list| list.iter().any(|g| g == grant))
    }
}

/// Every grant the token endpoint offers, in their canonical order: what
/// an application without a list of its own may use.
pub const GRANT_TYPES: [&str; 5] = [
    "authorization_code",
    "refresh_token",
    "client_credentials",
    "password",
    "urn:ietf:params:oauth:grant-type:device_code",
];

/// A list of grant types checked and put in canonical order (each once);
/// the first unknown one is the error.
pub fn checked_grant_types<'a>(
    given: impl IntoIterator<Item = &'a str>,
) -> Result<Vec<String>, String> {
    let given: Vec<&str> = given.into_iter().collect();
    if let Some(bad) = given.iter().find(|g| !GRANT_TYPES.contains(g)) {
        return Err((*bad).to_owned());
    }
    Ok(GRANT_TYPES
        .iter()
        .filter(|g| given.contains(g))
        .map(|g| (*g).to_owned())
        .collect())
}

impl Application {
    /// The grants this client may use (all, unless it has a list).
    pub fn effective_grant_types(&self) -> Vec<&str> {
        match &self.grant_types {
            Some(list) => list.iter().map(String::as_str).collect(),
            None => GRANT_TYPES.to_vec(),
        }
    }
}

/// GitLab's per-application `ropc_enabled` (the resource owner password
/// grant), onto a list of grant types: `grants` if given, else what the
/// application has now (`current`, `None` for all), with `password` added
/// or taken out.
pub fn with_ropc(
    grants: Option<Vec<String>>,
    ropc_enabled: Option<bool>,
    current: Option<&Application>,
) -> Option<Vec<String>> {
    let Some(enabled) = ropc_enabled else {
        return grants;
    };
    let base: Vec<String> = match grants {
        Some(list) => list,
        None => current
            .map(|a| a.effective_grant_types())
            .unwrap_or_else(|| GRANT_TYPES.to_vec())
            .into_iter()
            .map(str::to_owned)
            .collect(),
    };
    let mut names: Vec<&str> = base.iter().map(String::as_str).collect();
    names.retain(|g| *g != "password");
    if enabled {
        names.push("password");
    }
    // Every grant is no limit at all (and stays so as grants are added).
    checked_grant_types(names)
        .ok()
        .filter(|list| list.len() < GRANT_TYPES.len())
}

/// Grant types in their stored form: space-separated.
pub fn join_grant_types(list: &Option<Vec<String>>) -> Option<String> {
    list.as_ref().map(|l| l.join(" "))
}

/// Grant types from their stored form.
pub fn split_grant_types(stored: Option<String>) -> Option<Vec<String>> {
    stored.map(|s| s.split_whitespace().map(str::to_owned).collect())
}

/// One of an application's secrets, as client authentication checks it.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientSecret {
    pub id: i64,
    pub digest: String,
    pub expires_at: Option<i64>,
}

impl std::fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ClientSecret({}, expires {:?})",
            self.id, self.expires_at
        )
    }
}

impl ClientSecret {
    /// Does it still authenticate at `now` (ms)?
    pub fn is_live(&self, now: i64) -> bool {
        self.expires_at.is_none_or(|at| at > now)
    }
}

/// What the secrets list shows of a secret: never its value, nor its
/// digest; the last characters of the value as a hint (none for secrets
/// made before hints were kept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretInfo {
    pub id: i64,
    pub hint: Option<String>,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub last_used_at: Option<i64>,
}

/// A new secret of an application.
#[derive(Clone)]
pub struct NewSecret {
    pub digest: String,
    pub hint: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
}

impl std::fmt::Debug for NewSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NewSecret(expires {:?})", self.expires_at)
    }
}

/// The most live secrets an application keeps (renewals with a grace
/// period add one each).
pub const MAX_LIVE_SECRETS: usize = 10;

/// The latest instant an expiry may name: the last moment of year 9999.
pub const LATEST_INSTANT_MS: i64 = 253_402_300_799_999;

/// What becomes of an application's live secrets when a new one is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retire {
    /// They die at once (GitLab's renewal).
    Now,
    /// Each expires at this instant (ms), or sooner if it already would.
    At(i64),
}

/// What deleting one secret did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretDeletion {
    Deleted,
    /// No such secret of that application.
    NotFound,
    /// It is the application's last live secret: kept.
    LastLive,
}

/// How many characters of a secret its hint shows.
pub const HINT_CHARS: usize = 4;

/// The hint of a secret's value: its last characters.
pub fn secret_hint(value: &str) -> String {
    let n = value.chars().count();
    value.chars().skip(n.saturating_sub(HINT_CHARS)).collect()
}

/// What the store needs to insert an application.
#[derive(Debug, Clone)]
pub struct NewApplication {
    pub application_id: String,
    pub secret_digest: String,
    /// The hint of its first secret (see [`secret_hint`]).
    pub secret_hint: String,
    pub name: String,
    pub redirect_uri: String,
    pub scopes: Scopes,
    pub confidential: bool,
    pub owner_id: Option<i64>,
    pub group_id: Option<i64>,
    pub created_at: i64,
    pub dynamic: bool,
    /// RFC 7592's registration access token, as a digest.
    pub registration_token_digest: Option<String>,
    pub grant_types: Option<Vec<String>>,
}

impl NewApplication {
    /// The application this becomes when stored with `id` (what the
    /// store's insert gives back), for what must be said about it before
    /// it is stored (its audit event, see
    /// [`ApplicationStore::insert_application_recorded`]).
    pub fn as_stored(&self, id: i64) -> Application {
        Application {
            id,
            application_id: self.application_id.clone(),
            name: self.name.clone(),
            redirect_uri: self.redirect_uri.clone(),
            scopes: self.scopes.clone(),
            confidential: self.confidential,
            trusted: false,
            owner_id: self.owner_id,
            group_id: self.group_id,
            created_at: self.created_at,
            dynamic: self.dynamic,
            grant_types: self.grant_types.clone(),
            client_secret_id: None,
        }
    }
}

/// A change to an application: `None` keeps the current value.
#[derive(Debug, Clone, Default)]
pub struct ApplicationUpdate {
    pub name: Option<String>,
    pub scopes: Option<Scopes>,
    pub redirect_uri: Option<String>,
    pub confidential: Option<bool>,
    pub trusted: Option<bool>,
    pub grant_types: Option<Vec<String>>,
    /// A new owner: a user's id, or a group's, or neither (instance-wide).
    pub owner: Option<(Option<i64>, Option<i64>)>,
}

/// Which applications an operation may touch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ownership {
    /// Instance-wide applications only (the admin API).
    Instance,
    /// The applications of this group only.
    Group(i64),
    /// Any application, whoever owns it.
    Any,
}

/// Model validation errors, as `{"message": {"field": ["...", ...]}}`,
/// fields in the order the model validates them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ValidationErrors(Vec<(&'static str, Vec<String>)>);

impl ValidationErrors {
    pub fn add(&mut self, field: &'static str, message: impl Into<String>) {
        let message = message.into();
        match self.0.iter_mut().find(|(f, _)| *f == field) {
            Some((_, msgs)) => msgs.push(message),
            None => self.0.push((field, vec![message])),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn fields(&self) -> &[(&'static str, Vec<String>)] {
        &self.0
    }
}

impl std::fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut first = true;
        for (field, msgs) in &self.0 {
            for m in msgs {
                if !first {
                    f.write_str(", ")?;
                }
                first = false;
                write!(f, "{field} {m}")?;
            }
        }
        Ok(())
    }
}

impl Serialize for ValidationErrors {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (field, msgs) in &self.0 {
            map.serialize_entry(field, msgs)?;
        }
        map.end()
    }
}

/// Application attributes after the API layer's parameter checks. `None`
/// stands for an explicit `null`.
#[derive(Debug, Clone, Default)]
pub struct ApplicationParams {
    pub name: Option<String>,
    pub redirect_uri: Option<String>,
    pub scopes: Option<String>,
    pub confidential: bool,
    /// The grants it may use (`None`: all).
    pub grant_types: Option<Vec<String>>,
}

/// Validated attributes, ready to be stored.
#[derive(Debug, Clone)]
pub struct ValidApplication {
    pub name: String,
    pub redirect_uri: String,
    pub scopes: Scopes,
    pub confidential: bool,
}

pub fn validate_name(name: Option<&str>, errors: &mut ValidationErrors) {
    match name {
        None => errors.add("name", "can't be blank"),
        Some(n) if n.trim().is_empty() => errors.add("name", "can't be blank"),
        Some(n) if n.chars().count() > MAX_NAME_CHARS => errors.add(
            "name",
            format!("is too long (maximum is {MAX_NAME_CHARS} characters)"),
        ),
        Some(_) => {}
    }
}

pub fn validate_redirect_uri(value: Option<&str>, errors: &mut ValidationErrors) {
    let value = value.unwrap_or("");
    if value.split_whitespace().nth(MAX_REDIRECT_URIS).is_some() {
        errors.add(
            "redirect_uri",
            format!("is too long (maximum is {MAX_REDIRECT_URIS} URIs)"),
        );
        return;
    }
    for msg in redirect_uri::validate(value) {
        errors.add("redirect_uri", msg);
    }
}

/// Scopes as the model checks them; blank scopes are caught earlier by the
/// API layer, but the model refuses them too.
pub fn validate_scopes(
    value: Option<&str>,
    set: &ScopeSet,
    errors: &mut ValidationErrors,
) -> Option<Scopes> {
    let value = value.unwrap_or("");
    if value.trim().is_empty() {
        errors.add("scopes", "can't be blank");
        return None;
    }
    match Scopes::checked(value, set) {
        Ok(scopes) => Some(scopes),
        Err(e) => {
            errors.add("scopes", scope_error_message(&e));
            None
        }
    }
}

/// A refused list of scopes, in the model's words.
pub fn scope_error_message(e: &ScopeError) -> String {
    match e {
        ScopeError::Empty => "can't be blank".to_owned(),
        ScopeError::Unknown(_) => "doesn't match configured on the server.".to_owned(),
        ScopeError::TooMany => format!("is too long (maximum is {MAX_SCOPES} scopes)"),
        ScopeError::TooLong => {
            format!("is too long (maximum is {MAX_SCOPE_BYTES} characters per scope)")
        }
    }
}

/// Doorkeeper's model validation, in its order: name, redirect_uri, scopes.
pub fn validate(
    params: &ApplicationParams,
    set: &ScopeSet,
) -> Result<ValidApplication, ValidationErrors> {
    let mut errors = ValidationErrors::default();
    validate_name(params.name.as_deref(), &mut errors);
    validate_redirect_uri(params.redirect_uri.as_deref(), &mut errors);
    let scopes = validate_scopes(params.scopes.as_deref(), set, &mut errors);
    match scopes {
        Some(scopes) if errors.is_empty() => Ok(ValidApplication {
            name: params.name.clone().unwrap_or_default(),
            redirect_uri: params.redirect_uri.clone().unwrap_or_default(),
            scopes,
            confidential: params.confidential,
        }),
        _ => Err(errors),
    }
}

/// Applications: OAuth clients, instance-wide and user-owned. What the storage backends implement (see
/// [`crate::store::Store`]).
#[async_trait::async_trait]
pub trait ApplicationStore: Send + Sync {
    /// Replace a secret's digest (in GitLab's form) with latchkey's, if it
    /// is still `old`, remembering the SHA-256 of `old`; whether it was.
    async fn rehash_secret(&self, secret_id: i64, old: &str, new: &str)
        -> Result<bool, StoreError>;

    /// Insert `app` and record `event` about it, as one unit of work
    /// (what [`crate::store::Store::transaction`] with `insert_application` and
    /// `record_audit` does): `event`'s target is the new application, and
    /// its `target_id` becomes the id the application is given. One
    /// statement where the database allows (PostgreSQL: no `BEGIN` and
    /// `COMMIT` round trips, no separate insert of the event).
    async fn insert_application_recorded(
        &self,
        app: NewApplication,
        event: crate::audit::NewAuditEvent,
    ) -> Result<(Application, crate::audit::AuditEvent), StoreError>;

    async fn insert_application(&self, app: NewApplication) -> Result<Application, StoreError>;

    /// One page of instance-wide applications ordered by id, and their
    /// total, counted up to [`COUNT_CAP`] + 1 (so that a huge table does not
    /// make every page slow; GitLab likewise stops counting at 10,000).
    async fn list_instance_applications(
        &self,
        page: PageRequest,
    ) -> Result<(Vec<Application>, u64), StoreError>;

    /// One page of the instance-wide applications whose name contains
    /// `search` (ignoring ASCII case) or whose client id is `search`,
    /// ordered by id, and their total counted as
    /// [`Self::list_instance_applications`] counts.
    async fn search_instance_applications(
        &self,
        search: &str,
        page: PageRequest,
    ) -> Result<(Vec<Application>, u64), StoreError>;

    /// Up to `limit` instance-wide applications with ids above `after_id`,
    /// ordered by id (keyset pagination: as fast on the last page as the first).
    async fn instance_applications_after(
        &self,
        after_id: i64,
        limit: i64,
    ) -> Result<Vec<Application>, StoreError>;

    async fn find_application(
        &self,
        id: i64,
        scope: Ownership,
    ) -> Result<Option<Application>, StoreError>;

    /// Delete an application with its grants and tokens. `false` if no such
    /// application (within `scope`) existed.
    async fn delete_application(&self, id: i64, scope: Ownership) -> Result<bool, StoreError>;

    /// An application's live secrets at `now`, oldest first.
    async fn application_secrets(
        &self,
        application_id: i64,
        now: i64,
    ) -> Result<Vec<SecretInfo>, StoreError>;

    /// Write when secrets were last used: `(secret id, ms)`, never moving
    /// a time backwards; how many changed.
    async fn record_secret_usage(&self, used: Vec<(i64, i64)>) -> Result<u64, StoreError>;

    /// One page of a group's applications, ordered by id, and the total.
    async fn list_group_applications(
        &self,
        group_id: i64,
        page: PageRequest,
    ) -> Result<(Vec<Application>, u64), StoreError>;

    /// One page of the applications `owner_id` owns, ordered by id, and the total.
    async fn list_owned_applications(
        &self,
        owner_id: i64,
        page: PageRequest,
    ) -> Result<(Vec<Application>, u64), StoreError>;

    /// Change an application's name and/or scopes. `None` if it does not exist.
    async fn update_application(
        &self,
        id: i64,
        update: ApplicationUpdate,
        updated_at: i64,
    ) -> Result<Option<Application>, StoreError>;

    /// An application by its OAuth client_id, with its secrets (expired
    /// ones too, until the background sweep removes them).
    async fn find_application_by_uid(
        &self,
        application_id: &str,
    ) -> Result<Option<(Application, Vec<ClientSecret>)>, StoreError>;
}

/// Input for changing an application: `None` keeps the current value.
#[derive(Debug, Clone, Default)]
pub struct ApplicationChanges {
    pub name: Option<String>,
    pub scopes: Option<String>,
    pub redirect_uri: Option<String>,
    pub confidential: Option<bool>,
    pub trusted: Option<bool>,
    /// The grants the client may use (`None` keeps them).
    pub grant_types: Option<Vec<String>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(name: &str, redirect_uri: &str, scopes: &str) -> ApplicationParams {
        ApplicationParams {
            name: Some(name.to_owned()),
            redirect_uri: Some(redirect_uri.to_owned()),
            scopes: Some(scopes.to_owned()),
            confidential: true,
            grant_types: None,
        }
    }

    fn errors_json(p: &ApplicationParams) -> String {
        match validate(p, &ScopeSet::default()) {
            Ok(_) => "ok".to_owned(),
            Err(e) => serde_json::to_string(&e).unwrap_or_default(),
        }
    }

    #[test]
    fn validation_table() {
        let long = "x".repeat(256);
        let max = "é".repeat(255);
        let many = vec!["https://a.example/cb"; 101].join("\n");
        let cases: Vec<(ApplicationParams, &str)> = vec![
            (
                params("App", "http://redirect.uri", "api read_user email"),
                "ok",
            ),
            (params(&max, "http://redirect.uri", "api"), "ok"),
            (
                params("", "http://redirect.uri", "api"),
                r#"{"name":["can't be blank"]}"#,
            ),
            (
                params("  ", "http://redirect.uri", "api"),
                r#"{"name":["can't be blank"]}"#,
            ),
            (
                params(&long, "http://redirect.uri", "api"),
                r#"{"name":["is too long (maximum is 255 characters)"]}"#,
            ),
            (
                params("App", "http://", "api"),
                r#"{"redirect_uri":["must be a valid URI."]}"#,
            ),
            (
                params("App", &many, "api"),
                r#"{"redirect_uri":["is too long (maximum is 100 URIs)"]}"#,
            ),
            (
                params("App", "http://redirect.uri", "api nope"),
                r#"{"scopes":["doesn't match configured on the server."]}"#,
            ),
            (
                params("", "javascript://alert()", "nope"),
                r#"{"name":["can't be blank"],"redirect_uri":["is forbidden by the server."],"scopes":["doesn't match configured on the server."]}"#,
            ),
        ];
        for (p, want) in cases {
            assert_eq!(errors_json(&p), want, "{p:?}");
        }
    }

    #[test]
    fn scopes_are_normalised() -> Result<(), String> {
        let v = validate(
            &params("a", "http://x", "api  api read_user"),
            &ScopeSet::default(),
        )
        .map_err(|e| format!("{e:?}"))?;
        assert_eq!(v.scopes.joined(), "api read_user");
        Ok(())
    }
}
