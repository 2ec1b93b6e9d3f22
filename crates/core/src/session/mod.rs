//! Browser sessions and sign-in throttling: signing in (with lockout per
//! account and throttling per address), sessions, and their storage.

pub mod admin_mode;
pub mod service;

use crate::error::StoreError;
use crate::oauth::NewSession;
use crate::user::User;

/// Browser sessions and sign-in throttling. What the storage backends implement (see
/// [`crate::store::Store`]).
#[async_trait::async_trait]
pub trait SessionStore: Send + Sync {
    /// Count one failed sign-in for `key` in a window of `window_ms` that
    /// starts at the first failure; returns the failures in the window.
    async fn record_login_failure(
        &self,
        key: &str,
        now: i64,
        window_ms: i64,
    ) -> Result<u32, StoreError>;

    /// Failures counted for `key` in its current window (0 once it passed).
    async fn login_failures(&self, key: &str, now: i64, window_ms: i64) -> Result<u32, StoreError>;

    async fn clear_login_failures(&self, key: &str) -> Result<(), StoreError>;

    async fn insert_session(&self, session: NewSession) -> Result<(), StoreError>;

    /// The signed-in user of a live session.
    /// The signed-in user of a live session, and when the session began.
    async fn find_session_user(
        &self,
        digest: &str,
        now: i64,
    ) -> Result<Option<(User, i64)>, StoreError>;

    async fn delete_session(&self, digest: &str) -> Result<(), StoreError>;

    /// Until when (ms) a live session is in Admin Mode, if it is now.
    async fn admin_mode_until(&self, digest: &str, now: i64) -> Result<Option<i64>, StoreError>;

    /// End every session of `user_id` but the one whose digest is `keep`.
    /// Returns how many ended.
    async fn delete_user_sessions(
        &self,
        user_id: i64,
        keep: Option<&str>,
    ) -> Result<u64, StoreError>;

    /// The live sessions of `user_id`, newest first (at most
    /// [`MAX_LISTED_SESSIONS`]).
    async fn user_sessions(&self, user_id: i64, now: i64) -> Result<Vec<SessionInfo>, StoreError>;
}

/// The most sessions a user's list shows.
pub const MAX_LISTED_SESSIONS: i64 = 100;
/// The longest `User-Agent` kept with a session.
pub const USER_AGENT_MAX: usize = 512;

/// A live session as its user sees it (User Settings → Active sessions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    pub digest: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

impl SessionInfo {
    /// What names the session on its user's pages: derived from the
    /// digest, never the digest itself.
    pub fn public_id(&self) -> String {
        use sha2::{Digest, Sha256};
        let d = Sha256::digest(format!("latchkey-session-id:{}", self.digest).as_bytes());
        hex::encode(d).chars().take(20).collect()
    }
}

/// Failed sign-ins allowed per account in [`THROTTLE_WINDOW_MS`].
pub const MAX_ACCOUNT_FAILURES: u32 = 5;

/// Failed sign-ins allowed per client address in [`THROTTLE_WINDOW_MS`].
pub const MAX_ADDRESS_FAILURES: u32 = 30;

/// The longest login (username or email) looked up.
const MAX_LOGIN_BYTES: usize = 255;

/// Lockouts expire with the window that started at the first failure.
pub const THROTTLE_WINDOW_MS: i64 = 15 * 60 * 1000;
