//! Browser sessions and sign-in throttling: statements and store methods.

use async_trait::async_trait;
use latchkey_core::oauth::NewSession;
use latchkey_core::session::{SessionInfo, SessionStore, MAX_LISTED_SESSIONS};
use latchkey_core::store::StoreError;
use latchkey_core::user::User;

use crate::backend::{Access, Backend, SqlStore};
use crate::conn::{query_one, Conn};
use crate::params;
use crate::rows::user_from_row;

/// `$1` key, `$2` now, `$3` the window: a window that has passed starts over.
pub(crate) const RECORD_FAILURE: &str =
    "INSERT INTO login_throttles (key, failures, window_start) VALUES ($1, 1, $2)
     ON CONFLICT (key) DO UPDATE SET
       failures = CASE WHEN login_throttles.window_start <= $2 - $3 THEN 1
                       ELSE login_throttles.failures + 1 END,
       window_start = CASE WHEN login_throttles.window_start <= $2 - $3 THEN $2
                           ELSE login_throttles.window_start END
     RETURNING failures";
const FAILURES: &str = "SELECT failures FROM login_throttles WHERE key = $1 AND window_start > $2";
pub(crate) const CLEAR: &str = "DELETE FROM login_throttles WHERE key = $1";
pub(crate) const INSERT: &str =
    "INSERT INTO sessions (digest, user_id, created_at, expires_at, ip, user_agent)
     VALUES ($1, $2, $3, $4, $5, $6)";
/// `$1` the user, `$2` now, `$3` how many.
const USER_SESSIONS: &str = "SELECT digest, created_at, expires_at, ip, user_agent FROM sessions
     WHERE user_id = $1 AND expires_at > $2 ORDER BY created_at DESC, digest LIMIT $3";
const SESSION_USER: &str =
    "SELECT u.id, u.username, u.email, u.name, u.admin, u.state, u.created_at, u.external,
            u.updated_at, u.profile, u.avatar, s.created_at AS signed_in_at
     FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.digest = $1 AND s.expires_at > $2";
pub(crate) const DELETE: &str = "DELETE FROM sessions WHERE digest = $1";
/// Its user, if it was there.
pub(crate) const END: &str = "DELETE FROM sessions WHERE digest = $1 RETURNING user_id";
pub(crate) const DELETE_USERS: &str =
    "DELETE FROM sessions WHERE user_id = $1 AND (CAST($2 AS TEXT) IS NULL OR digest <> $2)";

/// `$1` the session's digest, `$2` until when.
pub(crate) const ENTER_ADMIN_MODE: &str =
    "INSERT INTO admin_mode_sessions (session_digest, expires_at)
     SELECT digest, $2 FROM sessions WHERE digest = $1
     ON CONFLICT (session_digest) DO UPDATE SET expires_at = excluded.expires_at";
pub(crate) const LEAVE_ADMIN_MODE: &str =
    "DELETE FROM admin_mode_sessions WHERE session_digest = $1";
const ADMIN_MODE_UNTIL: &str = "SELECT m.expires_at FROM admin_mode_sessions m
     JOIN sessions s ON s.digest = m.session_digest
     WHERE m.session_digest = $1 AND m.expires_at > $2 AND s.expires_at > $2";

fn failures(n: Option<i64>) -> u32 {
    n.map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX))
}

/// Count one more failure under `key`; the failures in its window now.
pub(crate) async fn record_failure(
    c: &mut dyn Conn,
    key: &str,
    now: i64,
    window_ms: i64,
) -> Result<u32, StoreError> {
    let row = query_one(c, RECORD_FAILURE, &params![key, now, window_ms]).await?;
    Ok(failures(row.first_int()?))
}

#[async_trait]
impl<B: Backend> SessionStore for SqlStore<B> {
    async fn record_login_failure(
        &self,
        key: &str,
        now: i64,
        window_ms: i64,
    ) -> Result<u32, StoreError> {
        let key = key.to_owned();
        self.run(Access::WRITE, move |c| {
            Box::pin(async move { record_failure(c, &key, now, window_ms).await })
        })
        .await
    }

    async fn login_failures(&self, key: &str, now: i64, window_ms: i64) -> Result<u32, StoreError> {
        let params = params![key, now - window_ms];
        let n = self.read_opt(FAILURES, params, |r| r.first_int()).await?;
        Ok(failures(n.flatten()))
    }

    async fn clear_login_failures(&self, key: &str) -> Result<(), StoreError> {
        self.write_one(CLEAR, params![key]).await.map(drop)
    }

    async fn insert_session(&self, s: NewSession) -> Result<(), StoreError> {
        let params = params![
            s.digest,
            s.user_id,
            s.created_at,
            s.expires_at,
            s.ip,
            s.user_agent
        ];
        self.write_one(INSERT, params).await.map(drop)
    }

    async fn find_session_user(
        &self,
        digest: &str,
        now: i64,
    ) -> Result<Option<(User, i64)>, StoreError> {
        self.read_opt(SESSION_USER, params![digest, now], |row| {
            Ok((user_from_row(row, "")?, row.int("signed_in_at")?))
        })
        .await
    }

    async fn delete_session(&self, digest: &str) -> Result<(), StoreError> {
        self.write_one(DELETE, params![digest]).await.map(drop)
    }

    async fn admin_mode_until(&self, digest: &str, now: i64) -> Result<Option<i64>, StoreError> {
        let found = self
            .read_opt(ADMIN_MODE_UNTIL, params![digest, now], |r| r.first_int())
            .await?;
        Ok(found.flatten())
    }

    async fn delete_user_sessions(
        &self,
        user_id: i64,
        keep: Option<&str>,
    ) -> Result<u64, StoreError> {
        self.write_one(DELETE_USERS, params![user_id, keep]).await
    }

    async fn user_sessions(&self, user_id: i64, now: i64) -> Result<Vec<SessionInfo>, StoreError> {
        let params = params![user_id, now, MAX_LISTED_SESSIONS];
        self.read_all(Access::SCAN, USER_SESSIONS, params, |row| {
            Ok(SessionInfo {
                digest: row.text("digest")?,
                created_at: row.int("created_at")?,
                expires_at: row.int("expires_at")?,
                ip: row.opt_text("ip")?,
                user_agent: row.opt_text("user_agent")?,
            })
        })
        .await
    }
}
