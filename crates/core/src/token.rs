//! Personal access tokens.

use time::Date;

use crate::application::{self, ValidationErrors};
use crate::pagination::PageRequest;
use crate::scopes::Scopes;
use crate::secret;
use crate::service::{Plaintext, ServiceError, Services};
use crate::store::StoreError;
use crate::token;
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
}

impl PersonalAccessToken {
    pub fn is_expired(&self, today: Date) -> bool {
        self.expires_at.is_some_and(|d| d < today)
    }
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
    async fn insert_token(&self, token: NewToken) -> Result<PersonalAccessToken, StoreError>;

    async fn find_token_by_digest(
        &self,
        digest: &str,
    ) -> Result<Option<TokenWithOwner>, StoreError>;

    /// Mark a token revoked. `false` if no such token.
    async fn revoke_token(&self, id: i64) -> Result<bool, StoreError>;

    async fn find_token(&self, id: i64) -> Result<Option<PersonalAccessToken>, StoreError>;

    /// One page of tokens ordered by id (all users' when `user_id` is None).
    async fn list_tokens(
        &self,
        user_id: Option<i64>,
        page: PageRequest,
    ) -> Result<(Vec<PersonalAccessToken>, u64), StoreError>;

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

// --- the service -------------------------------------------------------

impl Services {
    /// Who does this token belong to, and may it be used now?
    pub async fn authenticate_token(
        &self,
        presented: &str,
    ) -> Result<Result<TokenWithOwner, TokenRejection>, StoreError> {
        let digest = secret::digest(presented);
        let found = match self.auth_cache.get_personal(&digest, self.now_ms()) {
            Some(found) => found,
            None => {
                let ticket = self.auth_cache.ticket();
                let Some(found) = self.store.find_token_by_digest(&digest).await? else {
                    return Ok(Err(TokenRejection::Unknown));
                };
                if !found.token.revoked {
                    self.auth_cache
                        .put_personal(ticket, &digest, &found, self.now_ms());
                }
                found
            }
        };
        if found.token.revoked {
            return Ok(Err(TokenRejection::Revoked));
        }
        if found.token.is_expired(self.today()) {
            return Ok(Err(TokenRejection::Expired));
        }
        Ok(Ok(found))
    }

    /// The latest expiry date a token may have today.
    pub fn max_token_expiry(&self) -> Date {
        self.today() + time::Duration::days(self.config.max_token_lifetime_days)
    }

    pub(crate) fn new_token(
        &self,
        user_id: i64,
        name: &str,
        scopes: &Scopes,
        expires_at: Option<Date>,
        value: Option<&str>,
    ) -> Result<(NewToken, Plaintext), ServiceError> {
        if name.trim().is_empty() || name.chars().count() > 255 {
            return Err(ServiceError::Invalid(
                "token name must be 1 to 255 characters".to_owned(),
            ));
        }
        if let Some(d) = expires_at {
            if d < self.today() {
                return Err(ServiceError::Invalid(
                    "expires_at is in the past".to_owned(),
                ));
            }
            let max = self.max_token_expiry();
            if d > max {
                let mut errors = ValidationErrors::default();
                errors.add("expires_at", format!("must be before {max}"));
                return Err(ServiceError::Validation(errors));
            }
        }
        let plaintext = match value {
            Some(v) => {
                token::check_token_value(v).map_err(ServiceError::Invalid)?;
                v.to_owned()
            }
            None => format!("{PAT_PREFIX}{}", secret::random_hex(32)?),
        };
        Ok((
            NewToken {
                user_id,
                name: name.to_owned(),
                digest: secret::digest(&plaintext),
                scopes: scopes.clone(),
                expires_at,
                created_at: self.now_ms(),
            },
            Plaintext::new(plaintext),
        ))
    }

    /// Scopes for a new token, checked against the server's set.
    pub fn token_scopes(&self, raw: &str) -> Result<Scopes, ServiceError> {
        Scopes::checked(raw, &self.config.scopes).map_err(|e| {
            let mut errors = ValidationErrors::default();
            errors.add("scopes", application::scope_error_message(&e));
            ServiceError::Validation(errors)
        })
    }

    /// A personal access token for `user_id`; the plaintext is returned once.
    /// `expires_at` may be at most [`Config::max_token_lifetime_days`] away.
    pub async fn create_token(
        &self,
        user_id: i64,
        name: &str,
        scopes: &str,
        expires_at: Option<Date>,
    ) -> Result<(PersonalAccessToken, Plaintext), ServiceError> {
        let scopes = self.token_scopes(scopes)?;
        let (new, plaintext) = self.new_token(user_id, name, &scopes, expires_at, None)?;
        let token = self.store.insert_token(new).await?;
        Ok((token, plaintext))
    }

    pub async fn find_token(&self, id: i64) -> Result<Option<PersonalAccessToken>, ServiceError> {
        Ok(self.store.find_token(id).await?)
    }

    pub async fn list_tokens(
        &self,
        user_id: Option<i64>,
        page: PageRequest,
    ) -> Result<(Vec<PersonalAccessToken>, u64), ServiceError> {
        Ok(self.store.list_tokens(user_id, page).await?)
    }

    pub async fn revoke_token(&self, id: i64) -> Result<(), ServiceError> {
        if self.changing_auth(self.store.revoke_token(id)).await? {
            Ok(())
        } else {
            Err(ServiceError::NotFound)
        }
    }

    /// May `by` make a personal access token with `scopes` (for any user, as
    /// an administrator)? Not with an OAuth access token (an application
    /// holding an administrator's token must not mint lasting ones), and the
    /// privilege-bearing scopes (`sudo`, `admin_mode`) only by a token that
    /// has them itself. Stricter than GitLab; `Forbidden` otherwise.
    pub fn check_token_grant(
        &self,
        by: TokenActor<'_>,
        scopes: &[String],
    ) -> Result<(), ServiceError> {
        if by.personal_token_id.is_none() {
            return Err(ServiceError::Forbidden(None));
        }
        if PRIVILEGED_SCOPES
            .iter()
            .any(|p| scopes.iter().any(|s| s == p) && !by.scopes.contains(p))
        {
            return Err(ServiceError::Forbidden(None));
        }
        Ok(())
    }

    /// GitLab's rotation: the token is revoked and a new one with the same
    /// name and scopes is issued, expiring on `expires_at` or in a week.
    ///
    /// Stricter than GitLab: only a personal access token may rotate one (an
    /// OAuth access token held by an application may not), and a token other
    /// than the caller's own only when the caller's scopes cover all of its
    /// scopes, so that rotation never hands out more than the caller holds.
    /// `Forbidden` otherwise; `NotFound` if the token is missing; `Invalid`
    /// if already revoked.
    pub async fn rotate_token(
        &self,
        by: TokenActor<'_>,
        old: &PersonalAccessToken,
        expires_at: Option<Date>,
    ) -> Result<(PersonalAccessToken, Plaintext), ServiceError> {
        let Some(own) = by.personal_token_id else {
            return Err(ServiceError::Forbidden(None));
        };
        if own != old.id && !old.scopes.is_subset_of(by.scopes) {
            return Err(ServiceError::Forbidden(None));
        }
        let expires = expires_at.unwrap_or_else(|| {
            (self.today() + time::Duration::days(7)).min(self.max_token_expiry())
        });
        let (new, plaintext) =
            self.new_token(old.user_id, &old.name, &old.scopes, Some(expires), None)?;
        match self
            .changing_auth(self.store.rotate_token(old.id, new))
            .await?
        {
            Some(token) => Ok((token, plaintext)),
            None => Err(ServiceError::Invalid("Token already revoked".to_owned())),
        }
    }
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
        };
        assert!(!t.is_expired(d));
        assert!(t.is_expired(d.next_day().unwrap_or(d)));
        assert!(parse_expiry("2030-13-01").is_err());
        Ok(())
    }
}
