//! Users and their passwords.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

pub const MIN_PASSWORD_CHARS: usize = 8;
pub const MAX_PASSWORD_CHARS: usize = 128;
pub const MAX_USERNAME_CHARS: usize = 255;

/// Passwords too common to accept, whatever their length.
const WEAK_PASSWORDS: &[&str] = &[
    "password",
    "password1",
    "password123",
    "12345678",
    "123456789",
    "1234567890",
    "qwertyuiop",
    "qwerty123",
    "iloveyou",
    "11111111",
    "00000000",
    "abcdefgh",
    "letmein1",
    "changeme",
    "welcome1",
    "admin123",
    "rootroot",
    "gitlab123",
    "latchkey",
    "5iveL!fe",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserState {
    Active,
    Blocked,
}

impl UserState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Blocked => "blocked",
        }
    }

    pub fn parse(s: &str) -> Self {
        match s {
            "blocked" => Self::Blocked,
            _ => Self::Active,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub email: String,
    pub name: String,
    pub admin: bool,
    pub state: UserState,
    pub created_at: i64,
}

impl User {
    /// GitLab's reason text for a user who may not use the API, if any.
    pub fn access_denied_reason(&self) -> Option<&'static str> {
        match self.state {
            UserState::Active => None,
            UserState::Blocked => Some("Your account has been blocked."),
        }
    }
}

#[derive(Debug, Clone)]
pub struct NewUser {
    pub username: String,
    pub email: String,
    pub name: String,
    pub password_digest: Option<String>,
    pub admin: bool,
    pub created_at: i64,
}

/// Which users a listing shows.
#[derive(Debug, Clone, Default)]
pub struct UserFilter {
    /// Exactly this username (case-insensitive).
    pub username: Option<String>,
    /// A substring of username, name or email (case-insensitive).
    pub search: Option<String>,
}

/// A change to a user: `None` keeps the current value.
#[derive(Debug, Clone, Default)]
pub struct UserUpdate {
    pub username: Option<String>,
    pub email: Option<String>,
    pub name: Option<String>,
    pub password_digest: Option<String>,
    pub admin: Option<bool>,
}

/// Why a password is refused, in words a person can act on.
pub fn check_password_strength(password: &str) -> Result<(), String> {
    let n = password.chars().count();
    if n < MIN_PASSWORD_CHARS {
        return Err(format!(
            "is too short (minimum is {MIN_PASSWORD_CHARS} characters)"
        ));
    }
    if n > MAX_PASSWORD_CHARS {
        return Err(format!(
            "is too long (maximum is {MAX_PASSWORD_CHARS} characters)"
        ));
    }
    let lower = password.to_lowercase();
    if WEAK_PASSWORDS.iter().any(|w| w.to_lowercase() == lower) {
        return Err("must not contain commonly used combinations of words and letters".to_owned());
    }
    let mut chars = password.chars();
    if let Some(first) = chars.next() {
        if chars.all(|c| c == first) {
            return Err("must not be one character repeated".to_owned());
        }
    }
    Ok(())
}

/// Argon2id with the crate's recommended parameters. Slow on purpose:
/// call it off the async workers.
pub fn hash_password(password: &str) -> Result<String, String> {
    let mut salt_bytes = [0u8; 16];
    getrandom::fill(&mut salt_bytes).map_err(|e| format!("random source failed: {e}"))?;
    let salt =
        SaltString::encode_b64(&salt_bytes).map_err(|e| format!("salt encoding failed: {e}"))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| format!("password hashing failed: {e}"))
}

/// Constant-time verification of a password against its Argon2 hash.
pub fn verify_password(password: &str, digest: &str) -> bool {
    PasswordHash::new(digest)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// Usernames as GitLab allows them: letters, digits, `_`, `-`, `.`; not
/// starting with a special character, not ending in `.git` or `.atom`.
pub fn check_username(username: &str) -> Result<(), String> {
    if username.is_empty() || username.chars().count() > MAX_USERNAME_CHARS {
        return Err(format!("must be 1 to {MAX_USERNAME_CHARS} characters"));
    }
    let ok_chars = username
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    let starts_ok = username
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
    let ends_ok = !username.ends_with('.') && !username.ends_with('-');
    if !ok_chars
        || !starts_ok
        || !ends_ok
        || username.ends_with(".git")
        || username.ends_with(".atom")
    {
        return Err("can contain only letters, digits, '_', '-' and '.'. Cannot start with a special character or end in '.', '-', '.git' or '.atom'.".to_owned());
    }
    Ok(())
}

/// A light check of an email address: one `@`, something on each side,
/// no whitespace.
pub fn check_email(email: &str) -> Result<(), String> {
    let ok = email.len() <= 254
        && !email.chars().any(char::is_whitespace)
        && email
            .split_once('@')
            .is_some_and(|(l, d)| !l.is_empty() && !d.is_empty() && !d.contains('@'));
    if ok {
        Ok(())
    } else {
        Err("is invalid".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_rules() {
        assert!(check_password_strength("short").is_err());
        assert!(check_password_strength("password").is_err());
        assert!(check_password_strength("aaaaaaaaaaaa").is_err());
        assert!(check_password_strength(&"x1".repeat(65)).is_err());
        assert!(check_password_strength("correct horse battery").is_ok());
    }

    #[test]
    fn hash_and_verify() -> Result<(), String> {
        let h = hash_password("correct horse battery")?;
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", &h));
        assert!(!verify_password("wrong horse battery", &h));
        assert!(!verify_password("x", "not a hash"));
        Ok(())
    }

    #[test]
    fn usernames_and_emails() {
        for ok in ["root", "a", "jane.doe", "j_d-1"] {
            assert!(check_username(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".x", "-x", "x.", "a b", "x.git", "é"] {
            assert!(check_username(bad).is_err(), "{bad}");
        }
        assert!(check_email("a@b").is_ok());
        for bad in ["ab", "@b", "a@", "a b@c", "a@b@c"] {
            assert!(check_email(bad).is_err(), "{bad}");
        }
    }
}
