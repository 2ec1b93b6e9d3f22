//! The storage interface. One implementation per backend; every method
//! that must be atomic is one method here, so a backend can make it one
//! statement or one transaction.

use async_trait::async_trait;
use futures::stream::BoxStream;

use crate::application::{Application, ApplicationUpdate, NewApplication, Ownership};
use crate::dump::{Cell, TableSpec};
use crate::oauth::{
    DeviceGrant, Grant, NewDeviceGrant, NewGrant, NewOAuthToken, NewSession, OAuthToken,
    OAuthTokenFound,
};
use crate::oidc::{NewSigningKey, SigningKey};
use crate::pagination::PageRequest;
use crate::token::{NewToken, PersonalAccessToken};
use crate::user::{NewUser, User, UserFilter, UserState, UserUpdate};

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule was broken; the text names what was taken.
    #[error("{0} has already been taken")]
    Conflict(String),
    /// What the write hangs on (its application or user) was deleted, by a
    /// write that won a race with it: the answer is what the caller would
    /// get a moment later (the parent is not found).
    #[error("the application or user this belongs to is gone")]
    Gone,
    /// The write would leave the instance without an active administrator.
    #[error("the last active administrator cannot be blocked, demoted or deleted")]
    LastAdministrator,
    /// The database could not be reached or did not answer in time.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    /// Anything else: a bug or a corrupt database.
    #[error("database error: {0}")]
    Other(String),
}

/// A token found by its digest, with its owner.
#[derive(Debug, Clone)]
pub struct TokenWithOwner {
    pub token: PersonalAccessToken,
    pub user: User,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// A cheap round trip, for readiness checks.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Is the database known to refuse connections right now? Then every
    /// request can fail at once instead of waiting for a connection that
    /// cannot come. `false` when unknown (and for embedded databases).
    fn known_down(&self) -> bool {
        false
    }

    // --- applications ---------------------------------------------------

    async fn insert_application(&self, app: NewApplication) -> Result<Application, StoreError>;

    /// One page of instance-wide applications ordered by id, and their
    /// total, counted up to [`COUNT_CAP`] + 1 (so that a huge table does not
    /// make every page slow; GitLab likewise stops counting at 10,000).
    async fn list_instance_applications(
        &self,
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

    /// Replace an application's secret digest in one statement. `None` if
    /// no such application (within `scope`) exists.
    async fn renew_application_secret(
        &self,
        id: i64,
        scope: Ownership,
        secret_digest: &str,
    ) -> Result<Option<Application>, StoreError>;

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

    /// An application by its OAuth client_id, with its secret digest.
    async fn find_application_by_uid(
        &self,
        application_id: &str,
    ) -> Result<Option<(Application, String)>, StoreError>;

    // --- users ------------------------------------------------------------

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

    /// Create the first user and their token, but only while there are no
    /// users at all. `None` if someone got there first.
    async fn bootstrap_first_user(
        &self,
        user: NewUser,
        token: NewToken,
    ) -> Result<Option<(User, PersonalAccessToken)>, StoreError>;

    // --- personal access tokens -------------------------------------------

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

    // --- OAuth: users signing in ------------------------------------------

    /// A user by username or email (case-insensitive), with the password digest.
    async fn find_user_for_login(
        &self,
        login: &str,
    ) -> Result<Option<(User, Option<String>)>, StoreError>;

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

    // --- OAuth: grants and tokens -----------------------------------------

    async fn insert_grant(&self, grant: NewGrant) -> Result<Grant, StoreError>;

    async fn find_grant(&self, code_digest: &str) -> Result<Option<Grant>, StoreError>;

    /// Mark the grant redeemed and insert the token, in one transaction.
    /// `None` (nothing written) if the grant was already redeemed.
    async fn redeem_grant(
        &self,
        grant_id: i64,
        now: i64,
        token: NewOAuthToken,
    ) -> Result<Option<OAuthToken>, StoreError>;

    /// Revoke every token issued from a grant (code replay). Returns how many.
    async fn revoke_grant_tokens(&self, grant_id: i64, now: i64) -> Result<u64, StoreError>;

    async fn insert_oauth_token(&self, token: NewOAuthToken) -> Result<OAuthToken, StoreError>;

    async fn find_oauth_token_by_access(
        &self,
        digest: &str,
    ) -> Result<Option<OAuthTokenFound>, StoreError>;

    async fn find_oauth_token_by_refresh(
        &self,
        digest: &str,
    ) -> Result<Option<OAuthTokenFound>, StoreError>;

    /// Mark `old_id`'s refresh token used and insert `new`, in one
    /// transaction. `None` (nothing written) if it was already used or revoked.
    async fn refresh_oauth_token(
        &self,
        old_id: i64,
        now: i64,
        new: NewOAuthToken,
    ) -> Result<Option<OAuthToken>, StoreError>;

    /// Revoke every token of a refresh chain (refresh token reuse).
    async fn revoke_token_family(&self, family: &str, now: i64) -> Result<u64, StoreError>;

    /// Revoke one token. `false` if it was unknown or already revoked.
    async fn revoke_oauth_token(&self, id: i64, now: i64) -> Result<bool, StoreError>;

    /// The first use of a refreshed token: revoke the token it came from and
    /// forget the link, in one transaction.
    async fn finish_refresh(
        &self,
        token_id: i64,
        previous_id: i64,
        now: i64,
    ) -> Result<(), StoreError>;

    /// Delete what can never be used again: expired grants, sessions and
    /// sign-in counters, and tokens that are revoked or expired without a
    /// usable refresh token. Returns the rows deleted.
    async fn delete_expired(&self, now: i64) -> Result<u64, StoreError>;

    // --- moving between backends (`latchkey db copy`) -----------------------

    /// Up to `limit` rows of `table`, ordered by its first column, after `after`.
    async fn export_rows(
        &self,
        table: &TableSpec,
        after: Option<&Cell>,
        limit: i64,
    ) -> Result<Vec<Vec<Cell>>, StoreError>;

    /// Insert rows as they are (ids included), in one transaction.
    async fn import_rows(&self, table: &TableSpec, rows: &[Vec<Cell>]) -> Result<(), StoreError>;

    async fn count_rows(&self, table: &TableSpec) -> Result<u64, StoreError>;

    /// After an import: make new ids continue after the imported ones.
    async fn finish_import(&self) -> Result<(), StoreError>;

    // --- OpenID Connect signing keys --------------------------------------

    /// Store a key; with `only_if_none_active`, only when no key is active.
    /// `false` if nothing was stored.
    async fn insert_signing_key(
        &self,
        key: NewSigningKey,
        only_if_none_active: bool,
    ) -> Result<bool, StoreError>;

    /// Retire every active key but `except_kid`.
    async fn retire_signing_keys(&self, except_kid: &str, now: i64) -> Result<u64, StoreError>;

    /// Active keys and keys retired after `retired_after`, newest first.
    async fn signing_keys(&self, retired_after: i64) -> Result<Vec<SigningKey>, StoreError>;

    // --- the device authorization grant (RFC 8628) -------------------------

    async fn insert_device_grant(&self, grant: NewDeviceGrant) -> Result<DeviceGrant, StoreError>;

    async fn find_device_grant_by_user_code(
        &self,
        user_code: &str,
    ) -> Result<Option<DeviceGrant>, StoreError>;

    async fn find_device_grant(
        &self,
        device_code_digest: &str,
    ) -> Result<Option<DeviceGrant>, StoreError>;

    /// Approve or deny a pending, unexpired request. `false` if it was not.
    /// `auth_time` is when the approving user signed in (ms).
    async fn decide_device_grant(
        &self,
        id: i64,
        user_id: i64,
        approve: bool,
        now: i64,
        auth_time: i64,
    ) -> Result<bool, StoreError>;

    /// Record a poll; returns the previous poll's time, atomically.
    async fn poll_device_grant(&self, id: i64, now: i64) -> Result<Option<i64>, StoreError>;

    /// Consume an approved request and insert its token, in one
    /// transaction. `None` (nothing written) if it was not approved or is gone.
    async fn redeem_device_grant(
        &self,
        id: i64,
        token: NewOAuthToken,
    ) -> Result<Option<OAuthToken>, StoreError>;

    async fn delete_device_grant(&self, id: i64) -> Result<(), StoreError>;

    // --- dynamic client registration --------------------------------------

    /// An application with its registration access token digest.
    async fn find_registration(
        &self,
        client_id: &str,
    ) -> Result<Option<(Application, Option<String>)>, StoreError>;

    /// Delete dynamically registered applications created before
    /// `created_before` that never got a grant or a token.
    async fn delete_unused_dynamic_applications(
        &self,
        created_before: i64,
    ) -> Result<u64, StoreError>;
}

/// Totals of big listings are counted up to this many rows (GitLab's 10,000).
pub const COUNT_CAP: i64 = 10_000;

/// Every instance-wide application ordered by id, read in keyset batches.
pub fn stream_instance_applications(
    store: std::sync::Arc<dyn Store>,
) -> BoxStream<'static, Result<Application, StoreError>> {
    keyset_stream(move |after, limit| {
        let store = store.clone();
        async move { store.instance_applications_after(after, limit).await }
    })
}

/// How many rows one keyset batch reads.
pub const STREAM_BATCH: i64 = 500;

/// A stream over a table read in keyset batches (`id > last ORDER BY id
/// LIMIT n`): memory stays flat, and no database work waits on the
/// consumer. Each batch is read by a task of its own, to completion, and its
/// connection released before the batch is handed on: a consumer that stops
/// polling (an HTTP client that stops reading) would otherwise leave a
/// half-read batch pending, holding its pool connection and, on SQLite, an
/// open read transaction that keeps WAL checkpoints from completing.
pub fn keyset_stream<F, Fut>(fetch: F) -> BoxStream<'static, Result<Application, StoreError>>
where
    F: Fn(i64, i64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<Vec<Application>, StoreError>> + Send + 'static,
{
    use futures::StreamExt;
    // State: the last id seen, or None once exhausted or failed.
    let batches = futures::stream::unfold(Some(0i64), move |after| {
        let next = after.map(|a| tokio::spawn(fetch(a, STREAM_BATCH)));
        async move {
            let batch = match next?.await {
                Ok(result) => result,
                Err(e) => Err(StoreError::Other(format!("a list batch failed: {e}"))),
            };
            match batch {
                Ok(rows) if rows.is_empty() => None,
                Ok(rows) => {
                    let last = rows.last().map(|a| a.id);
                    let more = rows.len() as i64 == STREAM_BATCH;
                    let items: Vec<Result<Application, StoreError>> =
                        rows.into_iter().map(Ok).collect();
                    Some((futures::stream::iter(items), last.filter(|_| more)))
                }
                Err(e) => Some((futures::stream::iter(vec![Err(e)]), None)),
            }
        }
    });
    batches.flatten().boxed()
}
