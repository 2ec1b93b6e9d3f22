//! Users and their passwords.

mod avatar;
mod profile;
mod service;

pub use avatar::{Avatar, ImageKind, MAX_AVATAR_BYTES};
pub use profile::{Profile, ProfileChanges, DEFAULT_PROJECTS_LIMIT};

pub(crate) use service::user_event;

use std::cell::RefCell;

use crate::error::StoreError;
use crate::pagination::PageRequest;
use crate::secret::Plaintext;
use argon2::password_hash::{Output, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use secrecy::SecretString;

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
    /// GitLab's external users (a flag administrators set; filterable).
    pub external: bool,
    /// When the account or profile last changed (ms).
    pub updated_at: i64,
    pub profile: Profile,
    /// The file name their uploaded avatar is served under, if any.
    pub avatar: Option<String>,
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
    pub external: bool,
    pub profile: Profile,
    pub avatar: Option<Avatar>,
}

/// What users are listed by (GitLab's `order_by`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum UserOrder {
    #[default]
    Id,
    Name,
    Username,
    CreatedAt,
    UpdatedAt,
}

impl UserOrder {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "id" => Self::Id,
            "name" => Self::Name,
            "username" => Self::Username,
            "created_at" => Self::CreatedAt,
            "updated_at" => Self::UpdatedAt,
            _ => return None,
        })
    }

    /// The column it sorts by.
    pub fn column(self) -> &'static str {
        match self {
            Self::Id => "id",
            Self::Name => "name",
            Self::Username => "username",
            Self::CreatedAt => "created_at",
            Self::UpdatedAt => "updated_at",
        }
    }
}

/// Which users a listing shows, in which order (GitLab's filters).
#[derive(Debug, Clone, Default)]
pub struct UserFilter {
    /// Exactly this username (case-insensitive).
    pub username: Option<String>,
    /// A substring of username or name (case-insensitive), and of email
    /// when `search_emails` (administrators only, as in GitLab).
    pub search: Option<String>,
    pub search_emails: bool,
    /// Only blocked users (`blocked=true`).
    pub blocked: bool,
    /// Only active users (`active=true`).
    pub active: bool,
    /// Only administrators (`admins=true`, for administrators).
    pub admins: bool,
    /// Only external users (`external=true`).
    pub external: bool,
    /// No external users (`exclude_external=true`); with `external`,
    /// nobody, as GitLab answers both.
    pub exclude_external: bool,
    /// Created at or after / at or before (ms).
    pub created_after: Option<i64>,
    pub created_before: Option<i64>,
    pub order: UserOrder,
    /// GitLab's default is descending.
    pub ascending: bool,
}

/// A change to a user: `None` keeps the current value.
#[derive(Debug, Clone, Default)]
pub struct UserUpdate {
    pub username: Option<String>,
    pub email: Option<String>,
    pub name: Option<String>,
    pub password_digest: Option<String>,
    pub admin: Option<bool>,
    pub external: Option<bool>,
    /// The whole new profile, when any of it changes.
    pub profile: Option<Profile>,
    /// A new avatar.
    pub avatar: Option<Avatar>,
    /// When the change is made (ms); `None` keeps the time of the last one.
    pub updated_at: Option<i64>,
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

/// Argon2id with OWASP's m=7 MiB, t=5, p=1: one of the configurations the
/// OWASP Password Storage Cheat Sheet lists as equally strong as its first
/// one (m=19 MiB, t=2), trading memory for passes at about the same CPU
/// time. The working memory is held for reuse by each hashing thread while
/// it is busy (see `crate::hashing`), so less of it matters. Hashes made with other
/// parameters (the argon2 crate's default, before) keep verifying: the
/// parameters are read from each PHC string.
fn new_hash_params() -> Result<Params, argon2::Error> {
    Params::new(7 * 1024, 5, 1, Some(Params::DEFAULT_OUTPUT_LEN))
}

thread_local! {
    /// Argon2's working memory, kept per thread and reused while the thread
    /// is busy: allocating and freeing it per hash left freed blocks in
    /// glibc's per-thread arenas, so resident memory grew with every sign-in
    /// (see `bench/DIAGNOSIS.md`).
    static ARGON2_MEMORY: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// The least working memory reserved at once, in Argon2 blocks (1 KiB):
/// 33 MiB, above glibc's largest threshold for serving an allocation from
/// its heaps, so the memory is a mapping of its own, given back to the
/// operating system when freed (and never left in an arena). Only the
/// blocks a hash uses (7 MiB with [`new_hash_params`]) are ever touched;
/// the rest is address space.
const OWN_MAPPING_BLOCKS: usize = 33 * 1024;

/// Does this thread hold Argon2 working memory?
pub(crate) fn holds_hashing_memory() -> bool {
    ARGON2_MEMORY.with(|memory| memory.borrow().capacity() > 0)
}

/// Give this thread's Argon2 working memory back.
pub(crate) fn release_hashing_memory() {
    ARGON2_MEMORY.with(|memory| *memory.borrow_mut() = Vec::new());
}

/// Argon2 into `out`, with this thread's reused working memory.
fn argon2_into(
    argon2: &Argon2<'_>,
    params: &Params,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> Result<(), argon2::Error> {
    ARGON2_MEMORY.with(|memory| {
        let mut memory = memory.borrow_mut();
        let blocks = params.block_count();
        if memory.len() < blocks {
            let mut fresh = Vec::new();
            fresh
                .try_reserve_exact(blocks.max(OWN_MAPPING_BLOCKS))
                .map_err(|_| argon2::Error::MemoryTooMuch)?;
            fresh.resize(blocks, Block::default());
            *memory = fresh;
        }
        argon2.hash_password_into_with_memory(password, salt, out, &mut memory[..blocks])
    })
}

/// Argon2id (see [`new_hash_params`]), as a PHC string. Slow on purpose:
/// call it off the async workers.
pub fn hash_password(password: &str) -> Result<String, String> {
    let mut salt_bytes = [0u8; 16];
    getrandom::fill(&mut salt_bytes).map_err(|e| format!("random source failed: {e}"))?;
    let salt =
        SaltString::encode_b64(&salt_bytes).map_err(|e| format!("salt encoding failed: {e}"))?;
    let params = new_hash_params().map_err(|e| format!("password hashing failed: {e}"))?;
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    argon2_into(&argon2, &params, password.as_bytes(), &salt_bytes, &mut out)
        .map_err(|e| format!("password hashing failed: {e}"))?;
    let hash = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: (&params)
            .try_into()
            .map_err(|e| format!("password hashing failed: {e}"))?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(|e| format!("password hashing failed: {e}"))?),
    };
    Ok(hash.to_string())
}

/// Is `digest` a bcrypt hash (`$2a$`, `$2b$`, `$2x$` or `$2y$`, a cost,
/// 53 characters of salt and hash), as GitLab and others store passwords?
pub fn is_bcrypt_hash(digest: &str) -> bool {
    let b = digest.as_bytes();
    b.len() == 60
        && b.starts_with(b"$2")
        && matches!(b[2], b'a' | b'b' | b'x' | b'y')
        && b[3] == b'$'
        && b[4].is_ascii_digit()
        && b[5].is_ascii_digit()
        && b[6] == b'$'
        && b[7..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'/'))
}

/// The most work factor a bcrypt hash may have to be verified (each step
/// doubles the time; GitLab uses 10).
pub const MAX_BCRYPT_COST: u32 = 15;

fn bcrypt_cost(digest: &str) -> Option<u32> {
    digest.get(4..6)?.parse().ok()
}

/// Should a hash verified at sign-in be replaced with a new Argon2id one
/// (it is another algorithm's, as imported from elsewhere)?
pub fn needs_rehash(digest: &str) -> bool {
    !digest.starts_with("$argon2")
}

/// Verification of a password against its Argon2 PHC string, with the
/// parameters, salt and algorithm it names; the outputs are compared in
/// constant time (`Output`'s equality). A bcrypt hash is verified too.
pub fn verify_password(password: &str, digest: &str) -> bool {
    if digest.starts_with("$pbkdf2-sha512$") {
        // GitLab in FIPS mode.
        return crate::imported::verify_pbkdf2_sha512(password, digest);
    }
    if is_bcrypt_hash(digest) {
        if bcrypt_cost(digest).is_none_or(|c| c > MAX_BCRYPT_COST) {
            return false;
        }
        // bcrypt compares its outputs in constant time itself.
        return bcrypt::verify(password, digest).unwrap_or(false);
    }
    let Ok(hash) = PasswordHash::new(digest) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (hash.salt, hash.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(hash.algorithm) else {
        return false;
    };
    let version = match hash.version.map(Version::try_from).transpose() {
        Ok(v) => v.unwrap_or_default(),
        Err(_) => return false,
    };
    let Ok(params) = Params::try_from(&hash) else {
        return false;
    };
    let mut salt_buf = [0u8; 64];
    let Ok(salt_bytes) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let mut out = vec![0u8; expected.len()];
    let argon2 = Argon2::new(algorithm, version, params.clone());
    if argon2_into(&argon2, &params, password.as_bytes(), salt_bytes, &mut out).is_err() {
        return false;
    }
    Output::new(&out).is_ok_and(|computed| computed == expected)
}

/// Names GitLab keeps for its own top-level routes
/// (`Gitlab::PathRegex::TOP_LEVEL_ROUTES`): no user (nor, later, group) may
/// take one, since profiles are served at `/:username`.
pub const RESERVED_NAMES: &[&str] = &[
    "-",
    ".well-known",
    "404.html",
    "422.html",
    "500.html",
    "502.html",
    "503.html",
    "admin",
    "api",
    "apple-touch-icon.png",
    "assets",
    "dashboard",
    "deploy.html",
    "explore",
    "favicon.ico",
    "favicon.png",
    "files",
    "groups",
    "health_check",
    "help",
    "import",
    "jwt",
    "login",
    "oauth",
    "profile",
    "projects",
    "public",
    "robots.txt",
    "s",
    "search",
    "sitemap",
    "sitemap.xml",
    "sitemap.xml.gz",
    "slash-command-logo.png",
    "snippets",
    "unsubscribes",
    "uploads",
    "users",
    "v2",
];

/// Is `name` one of GitLab's reserved top-level names (any case)?
pub fn is_reserved_name(name: &str) -> bool {
    RESERVED_NAMES.iter().any(|r| r.eq_ignore_ascii_case(name))
}

/// Usernames as GitLab allows them: letters, digits, `_`, `-`, `.`; not
/// starting with a special character, not ending in `.git` or `.atom`;
/// not one of GitLab's reserved names.
pub fn check_username(username: &str) -> Result<(), String> {
    if is_reserved_name(username) {
        return Err(format!("{username} is a reserved name"));
    }
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

/// Users, and the first user of a new instance. What the storage backends implement (see
/// [`crate::store::Store`]).
#[async_trait::async_trait]
pub trait UserStore: Send + Sync {
    async fn insert_user(&self, user: NewUser) -> Result<User, StoreError>;

    async fn find_user(&self, id: i64) -> Result<Option<User>, StoreError>;

    async fn find_user_by_username(&self, username: &str) -> Result<Option<User>, StoreError>;

    /// `false` if no such user.
    async fn set_user_state(&self, id: i64, state: UserState) -> Result<bool, StoreError>;

    /// One page of users ordered by id, filtered, and the total.
    async fn list_users(
        &self,
        filter: &UserFilter,
        page: PageRequest,
    ) -> Result<(Vec<User>, u64), StoreError>;

    /// Change some of a user's attributes. `None` if no such user.
    async fn update_user(&self, id: i64, update: UserUpdate) -> Result<Option<User>, StoreError>;

    /// Delete a user with their applications and tokens. `false` if absent.
    async fn delete_user(&self, id: i64) -> Result<bool, StoreError>;

    /// A user's uploaded avatar: its content type and bytes.
    async fn find_avatar(&self, user_id: i64) -> Result<Option<(String, Vec<u8>)>, StoreError>;

    /// Replace a user's password digest with a rehash of it, if it is still
    /// `old` (whose SHA-256 is kept, see [`crate::state::StoredUser`]);
    /// whether it was.
    async fn replace_password_digest(
        &self,
        id: i64,
        old: &str,
        new: &str,
    ) -> Result<bool, StoreError>;

    /// A user by username or email (case-insensitive), with the password digest.
    async fn find_user_for_login(
        &self,
        login: &str,
    ) -> Result<Option<(User, Option<String>)>, StoreError>;
}

/// The result of first-start bootstrap.
#[derive(Debug, Clone)]
pub struct Bootstrapped {
    pub user: User,
    /// The generated password; `None` when the operator chose it.
    pub password: Option<Plaintext>,
    /// The generated token; `None` when the operator chose it (a chosen
    /// secret is never printed back).
    pub token: Option<Plaintext>,
}

/// Input for creating a user.
#[derive(Debug, Clone, Default)]
pub struct UserInput {
    pub username: String,
    pub email: String,
    pub name: String,
    /// `Debug` shows `[REDACTED]`.
    pub password: Option<SecretString>,
    pub admin: bool,
    pub external: bool,
    pub profile: ProfileChanges,
    pub avatar: Option<Avatar>,
}

/// Input for changing a user: `None` keeps the current value.
#[derive(Debug, Clone, Default)]
pub struct UserChanges {
    pub username: Option<String>,
    pub email: Option<String>,
    pub name: Option<String>,
    /// `Debug` shows `[REDACTED]`.
    pub password: Option<SecretString>,
    pub admin: Option<bool>,
    pub external: Option<bool>,
    pub profile: ProfileChanges,
    pub avatar: Option<Avatar>,
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
        assert!(h.starts_with("$argon2id$v=19$m=7168,t=5,p=1$"), "{h}");
        assert!(verify_password("correct horse battery", &h));
        assert!(!verify_password("wrong horse battery", &h));
        assert!(!verify_password("x", "not a hash"));
        // Interchangeable with the argon2 crate's own PHC hashing and
        // verification, in both directions, also with other parameters.
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let parsed = PasswordHash::new(&h).unwrap();
        assert!(Argon2::default()
            .verify_password(b"correct horse battery", &parsed)
            .is_ok());
        // Hashes made before, with the crate's default parameters.
        let before = Argon2::default()
            .hash_password(
                b"correct horse battery",
                &SaltString::encode_b64(b"salt-salt-salt-1").unwrap(),
            )
            .unwrap()
            .to_string();
        assert!(
            before.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{before}"
        );
        assert!(verify_password("correct horse battery", &before));
        assert!(!verify_password("correct horse batterY", &before));
        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
        let other = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(8192, 3, 1, Some(24)).unwrap(),
        )
        .hash_password(b"correct horse battery", &salt)
        .unwrap()
        .to_string();
        assert!(verify_password("correct horse battery", &other));
        assert!(!verify_password("correct horse batter", &other));
        // A truncated hash value does not verify.
        assert!(!verify_password("correct horse battery", &h[..h.len() - 4]));
        Ok(())
    }

    #[test]
    fn usernames_and_emails() {
        for ok in ["root", "a", "jane.doe", "j_d-1"] {
            assert!(check_username(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", ".x", "-x", "x.", "a b", "x.git", "é", "admin", "Users", "-", "api",
        ] {
            assert!(check_username(bad).is_err(), "{bad}");
        }
        assert!(check_email("a@b").is_ok());
        for bad in ["ab", "@b", "a@", "a b@c", "a@b@c"] {
            assert!(check_email(bad).is_err(), "{bad}");
        }
    }
}
