//! Declarative state: users (with their personal access tokens), groups
//! (with their members) and applications, as a TOML file that `latchkey
//! apply` (and `serve --seed`) makes the database hold, and that `latchkey
//! export` writes from a database.
//!
//! [`StateFile`] is the file as written; [`StateFile::check`] turns it into
//! a [`Desired`] state, every value validated, or names the entry and field
//! that is wrong; [`plan`] compares it with what is stored ([`Current`])
//! and lists the [`Step`]s that make the two agree; the service
//! ([`crate::Services::apply_state`]) runs them as one unit of work.

mod check;
mod export;
mod plan;
mod run;
mod service;

pub use check::Desired;
pub use plan::{plan, PasswordCheck, Plan, Step};
pub use service::{Applied, ApplyOptions};

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::application::{Application, ClientSecret};
use crate::error::StoreError;
use crate::group::{Group, Membership};
use crate::token::PersonalAccessToken;
use crate::user::User;

/// The state file, as written. A kind left out (no `users` at all) is not
/// managed: neither changed nor pruned.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateFile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub users: Option<Vec<UserEntry>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<GroupEntry>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applications: Option<Vec<ApplicationEntry>>,
}

/// A user. Attributes left out keep what is stored (a new user gets the
/// defaults: no password, not an administrator, active).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserEntry {
    pub username: String,
    /// Required for a new user; left out, an existing user's is kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A password in plain text: hashed (Argon2id) when applied.
    #[serde(default, skip_serializing)]
    pub password: Option<SecretString>,
    /// A stored password hash: Argon2 (`$argon2id$…`) or bcrypt (`$2a$…`,
    /// as GitLab stores them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<Vec<TokenEntry>>,
}

/// A personal access token of a user.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenEntry {
    pub name: String,
    pub scopes: Words,
    /// A fixed value (for CI); else `token_sha256`; else one is generated
    /// and printed once.
    #[serde(default, skip_serializing)]
    pub token: Option<SecretString>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_sha256: Option<String>,
    /// GitLab's stored `token_digest` (imported; verified with GitLab's
    /// `db_key_base` until first used).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gitlab_token_digest: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateValue>,
}

/// A group; `parent` is its parent's full path.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupEntry {
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visibility: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub members: Option<Vec<MemberEntry>>,
}

/// A direct membership of a group.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberEntry {
    pub username: String,
    pub access_level: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateValue>,
}

/// An OAuth application: instance-wide, or of a user (`owner`) or a
/// group (`group`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApplicationEntry {
    pub name: String,
    pub redirect_uris: Words,
    pub scopes: Words,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidential: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trusted: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_types: Option<Words>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// The OAuth client_id; generated when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_id: Option<String>,
    /// A fixed secret in plain text.
    #[serde(default, skip_serializing)]
    pub secret: Option<SecretString>,
    /// A secret as its SHA-256 digest (hex), as latchkey stores it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_sha256: Option<String>,
    /// A secret as GitLab stores it: `$pbkdf2-sha512$20000$$…` or hex
    /// SHA-512 (replaced with latchkey's form at its first use).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_hash: Option<String>,
    /// Several secrets (an application moving to a new one), as digests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets: Option<Vec<SecretEntry>>,
}

/// One of an application's secrets, as its digest.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretEntry {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// GitLab's stored form, instead of `sha256`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
    /// When it stops working (RFC 3339); never when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateValue>,
}

/// A list written as an array of strings or as one string (words separated
/// by spaces or new lines).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Words {
    One(String),
    Many(Vec<String>),
}

impl Default for Words {
    fn default() -> Self {
        Self::Many(Vec::new())
    }
}

impl Words {
    /// Every word, in order.
    pub fn words(&self) -> Vec<&str> {
        match self {
            Self::One(s) => s.split_whitespace().collect(),
            Self::Many(list) => list.iter().flat_map(|s| s.split_whitespace()).collect(),
        }
    }
}

/// A date or a time, as a TOML string (`"2027-12-31"`) or a TOML date
/// (`2027-12-31`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum DateValue {
    Text(String),
    Toml(toml::value::Datetime),
}

impl DateValue {
    fn text(&self) -> String {
        match self {
            Self::Text(s) => s.trim().to_owned(),
            Self::Toml(d) => d.to_string(),
        }
    }
}

impl StateFile {
    /// Parse a state file; the error says where (line and column) and what.
    pub fn parse(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// The file's text, as `latchkey export` writes it.
    pub fn to_toml(&self) -> Result<String, String> {
        toml::to_string(self).map_err(|e| e.to_string())
    }
}

/// What is stored of the kinds a state file manages, read in one go (in
/// the unit of work that applies a file, or as one snapshot).
#[derive(Debug, Clone, Default)]
pub struct Current {
    pub users: Vec<StoredUser>,
    /// Every token, revoked ones too (their values may not be used again).
    pub tokens: Vec<StoredToken>,
    pub groups: Vec<Group>,
    pub members: Vec<Membership>,
    /// Applications not registered dynamically, with every secret.
    pub applications: Vec<StoredApplication>,
    /// Whether a dynamically registered client has this client_id (they are
    /// not managed, but their client_ids are taken).
    pub dynamic_client_ids: Vec<String>,
    /// Application secrets rehashed at their first use: secret id → the
    /// SHA-256 of the imported form each replaced.
    pub secrets_rehashed_from: std::collections::HashMap<i64, String>,
}

#[derive(Clone)]
pub struct StoredUser {
    pub user: User,
    pub password_digest: Option<String>,
    /// The SHA-256 of the imported hash (bcrypt) the password digest
    /// replaced at a sign-in, if it did (and nothing changed it since).
    pub rehashed_from: Option<String>,
}

impl std::fmt::Debug for StoredUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StoredUser({:?})", self.user.username)
    }
}

#[derive(Clone)]
pub struct StoredToken {
    pub token: PersonalAccessToken,
    pub digest: String,
    /// The SHA-256 of the imported digest (GitLab's) this one replaced.
    pub rehashed_from: Option<String>,
}

impl std::fmt::Debug for StoredToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StoredToken({}, {:?})", self.token.id, self.token.name)
    }
}

#[derive(Debug, Clone)]
pub struct StoredApplication {
    pub app: Application,
    pub secrets: Vec<ClientSecret>,
}

/// Reading what a state file manages. What the storage backends implement
/// (see [`crate::store::Store`]); inside a unit of work,
/// [`crate::store::Transaction::read_state`].
#[async_trait::async_trait]
pub trait StateStore: Send + Sync {
    /// Everything [`Current`] holds, from one snapshot.
    async fn read_state(&self) -> Result<Current, StoreError>;
}
