//! Personal access tokens.

mod service;

pub(crate) use service::token_event;

use time::Date;

use crate::error::StoreError;
use crate::pagination::PageRequest;
use crate::scopes::Scopes;
use crate::user::User;

/// The prefix of the tokens latchkey generates (GitLab's).
pub const PAT_PREFIX: &str = "glpat-";
pub const MIN_TOKEN_CHARS: usize = 20;
pub const MAX_TOKEN_CHARS: usize = 255;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonalAccessToken {
    pub id: i64,
    pub user_id: i64,
    pub name: String,
    pub scopes: Scopes,
    /// The token works through the end of this day (UTC), as in GitLab.
    pub expires_at: Option<Date>,
    pub revoked: bool,
    pub created_at: i64,
    /// When it last authenticated a request (ms), to within a minute.
    pub last_used_at: Option<i64>,
}

impl PersonalAccessToken {
    pub fn is_expired(&self, today: Date) -> bool {
        self.expires_at.is_some_and(|d| d < today)
    }
}

/// Which personal access tokens a listing shows (GitLab's filters).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenFilter {
    /// One user's (`None`: everyone's, for administrators).
    pub user_id: Option<i64>,
    /// `Some(true)`: active (neither revoked nor expired today);
    /// `Some(false)`: inactive.
    pub active: Option<bool>,
    pub revoked: Option<bool>,
    /// Today, for what "expired" means.
    pub today: Option<Date>,
    pub created_after: Option<i64>,
    pub created_before: Option<i64>,
    pub last_used_after: Option<i64>,
    pub last_used_before: Option<i64>,
    /// A substring of the name (case-insensitive).
    pub search: Option<String>,
}

#[derive(Debug, Clone)]
pub struct NewToken {
    pub user_id: i64,
    pub name: String,
    pub digest: String,
    pub scopes: Scopes,
    pub expires_at: Option<Date>,
    pub created_at: i64,
}

/// Is a caller-chosen token value acceptable? Long enough to resist
/// guessing, printable ASCII, no whitespace.
pub fn check_token_value(value: &str) -> Result<(), String> {
    if value.len() < MIN_TOKEN_CHARS {
        return Err(format!(
            "the token is too short (minimum is {MIN_TOKEN_CHARS} characters)"
        ));
    }
    if value.len() > MAX_TOKEN_CHARS {
        return Err(format!(
            "the token is too long (maximum is {MAX_TOKEN_CHARS} characters)"
        ));
    }
    if !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("the token may contain only printable ASCII characters, no spaces".to_owned());
    }
    let distinct = {
        let mut seen = [false; 128];
        value
            .bytes()
            .filter(|b| !std::mem::replace(&mut seen[usize::from(*b & 0x7f)], true))
            .count()
    };
    if distinct < 8 {
        return Err(
            "the token is too easy to guess (use at least 8 different characters)".to_owned(),
        );
    }
    Ok(())
}

/// Parse an `expires_at` date (`YYYY-MM-DD`).
pub fn parse_expiry(raw: &str) -> Result<Date, String> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(raw.trim(), &format)
        .map_err(|_| format!("expires_at {raw:?} is not a date (YYYY-MM-DD)"))
}

/// A token found by its digest, with its owner.
#[derive(Debug, Clone)]
pub struct TokenWithOwner {
    pub token: PersonalAccessToken,
    pub user: User,
}

/// Personal access tokens. What the storage backends implement (see
/// [`crate::store::Store`]).
#[async_trait::async_trait]
pub trait TokenStore: Send + Sync {
    /// Replace an imported token's digest (GitLab's form) with latchkey's,
    /// if it is still `old`, remembering the SHA-256 of `old`; whether it was.
    async fn rehash_token(&self, id: i64, old: &str, new: &str) -> Result<bool, StoreError>;

    async fn insert_token(&self, token: NewToken) -> Result<PersonalAccessToken, StoreError>;

    async fn find_token_by_digest(
        &self,
        digest: &str,
    ) -> Result<Option<TokenWithOwner>, StoreError>;

    /// Mark a token revoked. `false` if no such token.
    async fn revoke_token(&self, id: i64) -> Result<bool, StoreError>;

    async fn find_token(&self, id: i64) -> Result<Option<PersonalAccessToken>, StoreError>;

    /// One page of tokens ordered by id, filtered.
    async fn list_tokens(
        &self,
        filter: &TokenFilter,
        page: PageRequest,
    ) -> Result<(Vec<PersonalAccessToken>, u64), StoreError>;

    /// Record when tokens were last used: `(id, at)` pairs, in one write;
    /// a time earlier than the one stored is ignored. How many changed.
    async fn record_token_usage(&self, used: Vec<(i64, i64)>) -> Result<u64, StoreError>;

    /// Revoke token `id` and insert `new` in one transaction. `None` if the
    /// token does not exist or was already revoked (nothing is written).
    async fn rotate_token(
        &self,
        id: i64,
        new: NewToken,
    ) -> Result<Option<PersonalAccessToken>, StoreError>;
}

/// Scopes that give more than the API as the user: only a token that has
/// one may hand it to a new token.
pub const PRIVILEGED_SCOPES: &[&str] = &["sudo", "admin_mode"];

/// GitLab's maximum personal access token lifetime.
pub const DEFAULT_MAX_TOKEN_LIFETIME_DAYS: i64 = 365;

/// Why a presented token does not authenticate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenRejection {
    Unknown,
    Expired,
    Revoked,
}

/// Who is rotating a personal access token: the authenticated user, the
/// scopes of the credential they used, and which personal access token
/// that was (`None` for an OAuth access token).
#[derive(Debug, Clone, Copy)]
pub struct TokenActor<'a> {
    pub scopes: &'a Scopes,
    pub personal_token_id: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_values() {
        assert!(check_token_value("glpat-abcdefghijklmnopqrst").is_ok());
        assert!(check_token_value("short").is_err());
        assert!(check_token_value("aaaaaaaaaaaaaaaaaaaaaaaa").is_err());
        assert!(check_token_value("abcdefghij klmnopqrstuv").is_err());
        assert!(check_token_value(&"ab".repeat(200)).is_err());
    }

    #[test]
    fn expiry() -> Result<(), String> {
        let d = parse_expiry("2030-01-31")?;
        let t = PersonalAccessToken {
            id: 1,
            user_id: 1,
            name: "t".into(),
            scopes: Scopes::from_stored("api"),
            expires_at: Some(d),
            revoked: false,
            created_at: 0,
            last_used_at: None,
        };
        assert!(!t.is_expired(d));
        assert!(t.is_expired(d.next_day().unwrap_or(d)));
        assert!(parse_expiry("2030-13-01").is_err());
        Ok(())
    }
}
