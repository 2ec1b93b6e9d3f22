//! Checking a state file: every value validated by the rules the API
//! applies, and each error naming its entry and field.

use std::collections::HashSet;

use secrecy::{ExposeSecret, SecretString};
use time::Date;

use crate::application::{self, checked_grant_types, ApplicationParams, ValidationErrors};
use crate::group::{level, Visibility};
use crate::scopes::{ScopeSet, Scopes};
use crate::secret;
use crate::token;
use crate::user;

use super::{ApplicationEntry, DateValue, GroupEntry, StateFile, TokenEntry, UserEntry};

/// The longest fixed application secret or client_id accepted.
const MAX_FIXED_CHARS: usize = 255;

/// A state file, checked: what the database should hold.
#[derive(Debug, Default)]
pub struct Desired {
    pub users: Option<Vec<DesiredUser>>,
    /// Parents before their subgroups.
    pub groups: Option<Vec<DesiredGroup>>,
    pub applications: Option<Vec<DesiredApplication>>,
}

#[derive(Debug)]
pub struct DesiredUser {
    /// `users[0] (alice)`: how errors and the plan name it.
    pub label: String,
    pub username: String,
    pub email: Option<String>,
    pub name: Option<String>,
    pub password: Option<Password>,
    pub admin: Option<bool>,
    pub external: Option<bool>,
    pub blocked: Option<bool>,
    pub tokens: Option<Vec<DesiredToken>>,
}

/// A password as the file gives it. `Debug` shows neither.
#[derive(Clone)]
pub enum Password {
    /// To be hashed.
    Plain(SecretString),
    /// Stored as it is (Argon2 or bcrypt).
    Hash(String),
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Plain(_) => "Password::Plain([REDACTED])",
            Self::Hash(_) => "Password::Hash([REDACTED])",
        })
    }
}

#[derive(Debug)]
pub struct DesiredToken {
    pub label: String,
    pub name: String,
    pub scopes: Scopes,
    /// The digest of a fixed value; `None`: generated when created.
    pub digest: Option<String>,
    pub expires_at: Option<Date>,
}

#[derive(Debug)]
pub struct DesiredGroup {
    pub label: String,
    pub full_path: String,
    pub parent: Option<String>,
    pub path: String,
    /// Left out: the path, for a new group.
    pub name: Option<String>,
    pub description: Option<String>,
    pub visibility: Option<Visibility>,
    pub members: Option<Vec<DesiredMember>>,
}

#[derive(Debug)]
pub struct DesiredMember {
    pub label: String,
    pub username: String,
    pub access_level: i32,
    pub expires_at: Option<String>,
}

/// Who owns an application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    Instance,
    User(String),
    /// A group's full path.
    Group(String),
}

#[derive(Debug)]
pub struct DesiredApplication {
    pub label: String,
    pub name: String,
    /// One per line.
    pub redirect_uri: String,
    pub scopes: Scopes,
    pub confidential: Option<bool>,
    pub trusted: Option<bool>,
    pub grant_types: Option<Vec<String>>,
    pub owner: Owner,
    pub application_id: Option<String>,
    /// `None`: keep what it has (a new one gets a generated secret).
    pub secrets: Option<Vec<DesiredSecret>>,
}

#[derive(Clone, PartialEq, Eq)]
pub struct DesiredSecret {
    pub digest: String,
    /// The last characters of the value, when the file gives the value.
    pub hint: Option<String>,
    /// When it stops working (ms).
    pub expires_at: Option<i64>,
}

impl std::fmt::Debug for DesiredSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DesiredSecret(expires {:?})", self.expires_at)
    }
}

/// What is wrong with a state file, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateError {
    /// `users[1] (bob)`, `applications[0] (Grafana)`.
    pub entry: String,
    pub field: String,
    pub message: String,
}

impl std::fmt::Display for StateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}: {}", self.entry, self.field, self.message)
    }
}

impl std::error::Error for StateError {}

fn fail<T>(entry: &str, field: &str, message: impl Into<String>) -> Result<T, StateError> {
    Err(StateError {
        entry: entry.to_owned(),
        field: field.to_owned(),
        message: message.into(),
    })
}

/// Why scopes are refused, naming the scope and what the server offers.
fn scope_message(e: &crate::scopes::ScopeError, set: &ScopeSet) -> String {
    match e {
        crate::scopes::ScopeError::Unknown(name) => format!(
            "{name:?} is not a scope this server offers (it offers: {})",
            set.names().join(", ")
        ),
        other => application::scope_error_message(other),
    }
}

/// The first model error of `errors`, as a [`StateError`].
fn first_error(entry: &str, errors: &ValidationErrors) -> StateError {
    let json = serde_json::to_value(errors).unwrap_or_default();
    let (field, message) = json
        .as_object()
        .and_then(|m| m.iter().next())
        .map(|(field, msgs)| {
            let text = msgs
                .as_array()
                .and_then(|a| a.first())
                .and_then(|m| m.as_str())
                .unwrap_or("is invalid")
                .to_owned();
            (field.clone(), text)
        })
        .unwrap_or_else(|| ("?".to_owned(), "is invalid".to_owned()));
    StateError {
        entry: entry.to_owned(),
        field,
        message,
    }
}

fn label(kind: &str, i: usize, name: &str) -> String {
    format!("{kind}[{i}] ({name})")
}

/// A lowercase hex SHA-256 digest.
fn sha256_hex(entry: &str, field: &str, raw: &str) -> Result<String, StateError> {
    let d = raw.trim().to_ascii_lowercase();
    if d.len() != 64 || !d.bytes().all(|b| b.is_ascii_hexdigit()) {
        return fail(entry, field, "must be 64 hexadecimal characters (SHA-256)");
    }
    Ok(d)
}

/// An application secret as GitLab stores it: `$pbkdf2-sha512$…` or hex
/// SHA-512.
fn gitlab_secret_hash(entry: &str, field: &str, raw: &str) -> Result<String, StateError> {
    let h = raw.trim();
    if crate::imported::is_gitlab_secret_hash(h) {
        Ok(h.to_owned())
    } else {
        fail(
            entry,
            field,
            "is neither GitLab's PBKDF2 form ($pbkdf2-sha512$20000$$…) nor a hex SHA-512 digest",
        )
    }
}

fn date(entry: &str, field: &str, value: &DateValue) -> Result<Date, StateError> {
    token::parse_expiry(&value.text()).or_else(|_| fail(entry, field, "is not a date (YYYY-MM-DD)"))
}

/// An instant (RFC 3339, or a date: its start, UTC) in ms.
fn instant(entry: &str, field: &str, value: &DateValue) -> Result<i64, StateError> {
    let text = value.text();
    let rfc3339 = &time::format_description::well_known::Rfc3339;
    let at = match time::OffsetDateTime::parse(&text, rfc3339) {
        Ok(t) => t,
        Err(_) => match token::parse_expiry(&text) {
            Ok(d) => d.midnight().assume_utc(),
            Err(_) => return fail(entry, field, "is not a time (RFC 3339) or a date"),
        },
    };
    Ok((at.unix_timestamp_nanos() / 1_000_000) as i64)
}

/// Printable ASCII, no spaces, 1 to [`MAX_FIXED_CHARS`].
fn fixed_value(entry: &str, field: &str, value: &str) -> Result<(), StateError> {
    if value.is_empty() || value.len() > MAX_FIXED_CHARS {
        return fail(
            entry,
            field,
            format!("must be 1 to {MAX_FIXED_CHARS} characters"),
        );
    }
    if !value.bytes().all(|b| b.is_ascii_graphic()) {
        return fail(
            entry,
            field,
            "may contain only printable ASCII characters, no spaces",
        );
    }
    Ok(())
}

/// Is `hash` a password hash latchkey can verify, at a cost a sign-in
/// can afford (an attacker who may sign in as that user would otherwise
/// choose how long each attempt takes)?
fn known_password_hash(hash: &str) -> Result<(), &'static str> {
    if hash.starts_with("$argon2") {
        let parsed = argon2::password_hash::PasswordHash::new(hash)
            .map_err(|_| "is not a valid Argon2 hash")?;
        let params =
            argon2::Params::try_from(&parsed).map_err(|_| "has invalid Argon2 parameters")?;
        if params.m_cost() > MAX_ARGON2_KIB
            || params.t_cost() > MAX_ARGON2_PASSES
            || params.p_cost() > 8
        {
            return Err("costs too much to verify (at most m=262144, t=16, p=8)");
        }
        return Ok(());
    }
    if hash.starts_with("$pbkdf2-sha512$") {
        return if crate::imported::is_pbkdf2_sha512(hash) {
            Ok(())
        } else {
            Err("is not a valid PBKDF2-SHA512 hash of at most 100000 rounds")
        };
    }
    if !user::is_bcrypt_hash(hash) {
        return Err(
            "is neither an Argon2 ($argon2id$…), a bcrypt ($2a$…) nor a PBKDF2-SHA512 \
             ($pbkdf2-sha512$…) hash",
        );
    }
    match hash.get(4..6).and_then(|c| c.parse::<u32>().ok()) {
        Some(cost) if (4..=user::MAX_BCRYPT_COST).contains(&cost) => Ok(()),
        _ => Err("has a bcrypt cost outside 4 to 15"),
    }
}

/// The most memory (KiB) and passes an imported Argon2 hash may ask for.
const MAX_ARGON2_KIB: u32 = 262_144;
const MAX_ARGON2_PASSES: u32 = 16;

impl StateFile {
    /// Check every entry; the first error found, naming entry and field.
    pub fn check(self, scopes: &ScopeSet) -> Result<Desired, StateError> {
        let users = self
            .users
            .map(|list| check_users(list, scopes))
            .transpose()?;
        let groups = self.groups.map(check_groups).transpose()?;
        let applications = self
            .applications
            .map(|list| check_applications(list, scopes))
            .transpose()?;
        Ok(Desired {
            users,
            groups,
            applications,
        })
    }
}

fn check_users(list: Vec<UserEntry>, scopes: &ScopeSet) -> Result<Vec<DesiredUser>, StateError> {
    let mut usernames = HashSet::new();
    let mut emails = HashSet::new();
    let mut digests = HashSet::new();
    let mut out = Vec::with_capacity(list.len());
    for (i, e) in list.into_iter().enumerate() {
        let l = label("users", i, &e.username);
        if let Err(m) = user::check_username(&e.username) {
            return fail(&l, "username", m);
        }
        if !usernames.insert(e.username.to_ascii_lowercase()) {
            return fail(&l, "username", "is listed twice");
        }
        if let Some(email) = &e.email {
            if let Err(m) = user::check_email(email) {
                return fail(&l, "email", m);
            }
            if !emails.insert(email.to_ascii_lowercase()) {
                return fail(&l, "email", "is listed twice");
            }
        }
        if let Some(n) = &e.name {
            if n.trim().is_empty() || n.chars().count() > 255 {
                return fail(&l, "name", "must be 1 to 255 characters");
            }
        }
        let password = match (e.password, e.password_hash) {
            (Some(_), Some(_)) => {
                return fail(&l, "password", "give password or password_hash, not both")
            }
            (Some(p), None) => {
                let n = p.expose_secret().chars().count();
                if n == 0 || n > user::MAX_PASSWORD_CHARS {
                    return fail(
                        &l,
                        "password",
                        format!("must be 1 to {} characters", user::MAX_PASSWORD_CHARS),
                    );
                }
                Some(Password::Plain(p))
            }
            (None, Some(h)) => {
                if let Err(m) = known_password_hash(&h) {
                    return fail(&l, "password_hash", m);
                }
                Some(Password::Hash(h))
            }
            (None, None) => None,
        };
        let tokens = match e.tokens {
            None => None,
            Some(tokens) => Some(check_tokens(&l, tokens, scopes, &mut digests)?),
        };
        out.push(DesiredUser {
            label: l,
            username: e.username,
            email: e.email,
            name: e.name,
            password,
            admin: e.admin,
            external: e.external,
            blocked: e.blocked,
            tokens,
        });
    }
    Ok(out)
}

fn check_tokens(
    user: &str,
    list: Vec<TokenEntry>,
    scopes: &ScopeSet,
    digests: &mut HashSet<String>,
) -> Result<Vec<DesiredToken>, StateError> {
    let mut names = HashSet::new();
    let mut out = Vec::with_capacity(list.len());
    for (i, t) in list.into_iter().enumerate() {
        let l = format!("{user} tokens[{i}] ({})", t.name);
        if t.name.trim().is_empty() || t.name.chars().count() > 255 {
            return fail(&l, "name", "must be 1 to 255 characters");
        }
        // Tokens without a value are found by name: theirs must be unique.
        let by_name =
            t.token.is_none() && t.token_sha256.is_none() && t.gitlab_token_digest.is_none();
        if !names.insert((t.name.clone(), by_name)) && by_name {
            return fail(
                &l,
                "name",
                "is listed twice for this user (give each a token or token_sha256)",
            );
        }
        let scopes = Scopes::checked(&t.scopes.words().join(" "), scopes)
            .or_else(|e| fail(&l, "scopes", scope_message(&e, scopes)))?;
        let digest = match (t.token, t.token_sha256, t.gitlab_token_digest) {
            (Some(v), None, None) => {
                // The operator's choice, as a password or a secret in the
                // file: no strength rule, only a usable value.
                fixed_value(&l, "token", v.expose_secret())?;
                Some(secret::digest(v.expose_secret()))
            }
            (None, Some(d), None) => Some(sha256_hex(&l, "token_sha256", &d)?),
            (None, None, Some(d)) => {
                if !crate::imported::is_gitlab_token_digest(&d) {
                    return fail(
                        &l,
                        "gitlab_token_digest",
                        "is not GitLab's token digest (base64 of 32 bytes)",
                    );
                }
                Some(d)
            }
            (None, None, None) => None,
            _ => {
                return fail(
                    &l,
                    "token",
                    "give one of token, token_sha256 and gitlab_token_digest",
                )
            }
        };
        if let Some(d) = &digest {
            if !digests.insert(d.clone()) {
                return fail(&l, "token", "is the same token as another entry's");
            }
        }
        let expires_at = t
            .expires_at
            .as_ref()
            .map(|d| date(&l, "expires_at", d))
            .transpose()?;
        out.push(DesiredToken {
            label: l,
            name: t.name,
            scopes,
            digest,
            expires_at,
        });
    }
    Ok(out)
}

fn check_groups(list: Vec<GroupEntry>) -> Result<Vec<DesiredGroup>, StateError> {
    let mut paths = HashSet::new();
    let mut out = Vec::with_capacity(list.len());
    for (i, g) in list.into_iter().enumerate() {
        let parent = g.parent.map(|p| p.trim_matches('/').to_owned());
        let full_path = match &parent {
            Some(p) => format!("{p}/{}", g.path),
            None => g.path.clone(),
        };
        let l = label("groups", i, &full_path);
        let mut errors = ValidationErrors::default();
        crate::group::check_group_path(&g.path, parent.is_none(), &mut errors);
        crate::group::check_group_name(g.name.as_deref().unwrap_or(&g.path), &mut errors);
        if let Some(d) = &g.description {
            crate::group::check_description(d, &mut errors);
        }
        if !errors.is_empty() {
            return Err(first_error(&l, &errors));
        }
        if parent.as_deref() == Some("") {
            return fail(&l, "parent", "can't be blank");
        }
        if !paths.insert(full_path.to_ascii_lowercase()) {
            return fail(&l, "path", "is listed twice");
        }
        let visibility = match &g.visibility {
            None => None,
            Some(v) => Some(Visibility::parse(v).map_or_else(
                || fail(&l, "visibility", "must be private, internal or public"),
                Ok,
            )?),
        };
        let members = match g.members {
            None => None,
            Some(list) => {
                let mut seen = HashSet::new();
                let mut members = Vec::with_capacity(list.len());
                for (j, m) in list.into_iter().enumerate() {
                    let ml = format!("{l} members[{j}] ({})", m.username);
                    if !seen.insert(m.username.to_ascii_lowercase()) {
                        return fail(&ml, "username", "is listed twice in this group");
                    }
                    if !level::ALL.contains(&m.access_level) {
                        return fail(&ml, "access_level", "must be 10, 15, 20, 30, 40 or 50");
                    }
                    let expires_at = m
                        .expires_at
                        .as_ref()
                        .map(|d| date(&ml, "expires_at", d).map(crate::group::day_text))
                        .transpose()?;
                    members.push(DesiredMember {
                        label: ml,
                        username: m.username,
                        access_level: m.access_level,
                        expires_at,
                    });
                }
                Some(members)
            }
        };
        out.push(DesiredGroup {
            label: l,
            full_path,
            parent,
            path: g.path,
            name: g.name,
            description: g.description,
            visibility,
            members,
        });
    }
    // Parents first: a parent's full path has fewer segments.
    out.sort_by_key(|g| g.full_path.matches('/').count());
    Ok(out)
}

fn check_applications(
    list: Vec<ApplicationEntry>,
    scopes: &ScopeSet,
) -> Result<Vec<DesiredApplication>, StateError> {
    let mut ids = HashSet::new();
    let mut named = HashSet::new();
    let mut out = Vec::with_capacity(list.len());
    for (i, a) in list.into_iter().enumerate() {
        let l = label("applications", i, &a.name);
        let redirect_uri = a.redirect_uris.words().join("\n");
        let params = ApplicationParams {
            name: Some(a.name.clone()),
            redirect_uri: Some(redirect_uri.clone()),
            scopes: Some(a.scopes.words().join(" ")),
            confidential: a.confidential.unwrap_or(true),
            grant_types: None,
        };
        let valid = application::validate(&params, scopes).map_err(|errors| {
            let mut e = first_error(&l, &errors);
            if e.field == "scopes" {
                // Which scope, and what the server offers.
                if let Err(why) = Scopes::checked(&a.scopes.words().join(" "), scopes) {
                    e.message = scope_message(&why, scopes);
                }
            }
            // The file's key, not the API's parameter.
            if e.field == "redirect_uri" {
                e.field = "redirect_uris".to_owned();
            }
            e
        })?;
        let grant_types =
            match &a.grant_types {
                None => None,
                Some(words) => Some(checked_grant_types(words.words()).or_else(|bad| {
                    fail(&l, "grant_types", format!("{bad:?} is not a grant type"))
                })?),
            };
        if grant_types.as_ref().is_some_and(Vec::is_empty) {
            return fail(&l, "grant_types", "can't be empty");
        }
        let owner = match (a.owner, a.group) {
            (Some(_), Some(_)) => return fail(&l, "owner", "give owner or group, not both"),
            (Some(u), None) => Owner::User(u),
            (None, Some(g)) => Owner::Group(g.trim_matches('/').to_owned()),
            (None, None) => Owner::Instance,
        };
        if let Some(id) = &a.application_id {
            fixed_value(&l, "application_id", id)?;
            if !ids.insert(id.clone()) {
                return fail(&l, "application_id", "is listed twice");
            }
        } else if !named.insert((a.name.clone(), format!("{owner:?}").to_ascii_lowercase())) {
            // Found by name and owner: two such could never be told apart.
            return fail(
                &l,
                "name",
                "is listed twice for this owner: give each an application_id",
            );
        }
        let secrets = match (a.secret, a.secret_sha256, a.secret_hash, a.secrets) {
            (None, None, None, None) => None,
            (Some(s), None, None, None) => {
                fixed_value(&l, "secret", s.expose_secret())?;
                Some(vec![DesiredSecret {
                    digest: secret::digest(s.expose_secret()),
                    hint: Some(application::secret_hint(s.expose_secret())),
                    expires_at: None,
                }])
            }
            (None, Some(d), None, None) => Some(vec![DesiredSecret {
                digest: sha256_hex(&l, "secret_sha256", &d)?,
                hint: None,
                expires_at: None,
            }]),
            (None, None, Some(h), None) => Some(vec![DesiredSecret {
                digest: gitlab_secret_hash(&l, "secret_hash", &h)?,
                hint: None,
                expires_at: None,
            }]),
            (None, None, None, Some(list)) => {
                if list.is_empty() || list.len() > application::MAX_LIVE_SECRETS {
                    return fail(
                        &l,
                        "secrets",
                        format!("must list 1 to {} secrets", application::MAX_LIVE_SECRETS),
                    );
                }
                let mut secrets = Vec::with_capacity(list.len());
                for (j, s) in list.iter().enumerate() {
                    let field = format!("secrets[{j}]");
                    let digest = match (&s.sha256, &s.hash) {
                        (Some(d), None) => sha256_hex(&l, &format!("{field}.sha256"), d)?,
                        (None, Some(h)) => gitlab_secret_hash(&l, &format!("{field}.hash"), h)?,
                        _ => return fail(&l, &field, "give sha256 or hash, not both nor neither"),
                    };
                    secrets.push(DesiredSecret {
                        digest,
                        hint: None,
                        expires_at: s
                            .expires_at
                            .as_ref()
                            .map(|at| instant(&l, &format!("{field}.expires_at"), at))
                            .transpose()?,
                    });
                }
                Some(secrets)
            }
            _ => {
                return fail(
                    &l,
                    "secret",
                    "give one of secret, secret_sha256, secret_hash and secrets",
                )
            }
        };
        out.push(DesiredApplication {
            label: l,
            name: valid.name,
            redirect_uri: valid.redirect_uri,
            scopes: valid.scopes,
            confidential: a.confidential,
            trusted: a.trusted,
            grant_types,
            owner,
            application_id: a.application_id,
            secrets,
        });
    }
    Ok(out)
}
