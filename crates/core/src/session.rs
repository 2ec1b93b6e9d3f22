//! Browser sessions and sign-in throttling: their storage. The rules
//! (lifetimes, lockout) live with the sign-in flows in [`crate::oauth_flows`].

use crate::oauth::NewSession;
use crate::store::StoreError;
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

    /// End every session of `user_id` but the one whose digest is `keep`.
    /// Returns how many ended.
    async fn delete_user_sessions(
        &self,
        user_id: i64,
        keep: Option<&str>,
    ) -> Result<u64, StoreError>;
}
