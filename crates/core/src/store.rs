//! The storage interface: one trait per aggregate, [`Store`] over them all,
//! and the errors every backend answers with.

use std::any::Any;

use async_trait::async_trait;
use futures::future::BoxFuture;
use futures::stream::BoxStream;

use crate::application::{
    Application, ApplicationUpdate, NewApplication, NewSecret, Ownership, Retire, SecretDeletion,
    SecretInfo,
};
use crate::audit::{AuditEvent, NewAuditEvent};
use crate::group::{
    Group, GroupUpdate, Membership, MembershipUpdate, NewGroup, NewMembership, Visibility,
};
use crate::oauth::{Grant, NewGrant, NewOAuthToken, NewSession, OAuthToken};
use crate::oidc::NewSigningKey;
use crate::token::{NewToken, PersonalAccessToken};
use crate::user::{NewUser, User, UserState, UserUpdate};

pub use crate::error::StoreError;
pub use crate::token::TokenWithOwner;

/// Everything a storage backend offers: one trait per aggregate (each in
/// its aggregate's module), plus what spans them. Every method that must be
/// atomic is one method, so a backend can make it one statement or one
/// transaction.
#[async_trait]
pub trait Store:
    ApplicationStore
    + UserStore
    + TokenStore
    + SessionStore
    + OAuthStore
    + DeviceGrantStore
    + SigningKeyStore
    + RegistrationStore
    + GroupStore
    + crate::state::StateStore
    + TransferStore
    + crate::audit::AuditStore
    + Send
    + Sync
    + 'static
{
    /// A cheap round trip, for readiness checks.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Is the database known to refuse connections right now? Then every
    /// request can fail at once instead of waiting for a connection that
    /// cannot come. `false` when unknown (and for embedded databases).
    fn known_down(&self) -> bool {
        false
    }

    /// Add the database's own series (connections, waits, group commits)
    /// to `registry` (see [`crate::metrics::DatabaseMetrics`]).
    fn register_metrics(
        &self,
        _registry: &mut crate::metrics::prometheus_client::registry::Registry,
    ) {
    }

    /// Does [`Store::outside_changes`] count every committed change that can
    /// make a cached authentication wrong, this process's own included, at
    /// whatever time it commits (PostgreSQL's announcements)? Then a write
    /// abandoned in flight, which the database may still commit, is heard
    /// when it does, and the token cache need not stay off meanwhile.
    fn announces_own_changes(&self) -> bool {
        false
    }

    /// The generation of changes written by other processes, read before an
    /// answer from memory; a cache must be forgotten when it moved. SQLite:
    /// the stored generation the command line moves (`serve` sees every
    /// other write). PostgreSQL: the changes the database announced
    /// (schema 15), counted once all those committed before this call have
    /// been heard; an error while they cannot be. `None` where nothing else
    /// writes.
    async fn outside_changes(&self) -> Result<Option<i64>, StoreError> {
        Ok(None)
    }

    /// Fold what the database keeps as deltas (PostgreSQL: the count of
    /// instance applications, schema 16) into one row each; nothing where
    /// nothing is kept so. Called every second by a server.
    async fn fold_counts(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Delete what can never be used again: expired grants, sessions and
    /// sign-in counters, and tokens that are revoked or expired without a
    /// usable refresh token. Returns the rows deleted.
    async fn delete_expired(&self, now: i64) -> Result<u64, StoreError>;

    /// Run `work` as one unit across aggregates: every change it makes
    /// through its [`Transaction`], and every audit event it records,
    /// commit together, or none does (an error from `work` rolls everything
    /// back). Use [`in_transaction`] for a typed result.
    async fn transaction(&self, work: TransactionWork) -> Result<Committed, StoreError>;
}

/// What a committed unit of work produced: its value, and the audit
/// events it recorded, as stored.
pub struct Committed {
    pub value: Box<dyn Any + Send>,
    pub audit: Vec<AuditEvent>,
}

/// The changes of several aggregates, made in one transaction (see
/// [`Store::transaction`]). Each method does what the store method of the
/// same name does.
#[async_trait]
pub trait Transaction: Send {
    async fn insert_application(&mut self, app: NewApplication) -> Result<Application, StoreError>;

    async fn delete_application(&mut self, id: i64, scope: Ownership) -> Result<bool, StoreError>;

    /// Withdraw what a user granted an application: their unredeemed codes
    /// and device grants are deleted, their OAuth tokens for it revoked at
    /// `now`; how many rows changed.
    async fn revoke_user_authorization(
        &mut self,
        application_id: i64,
        user_id: i64,
        now: i64,
    ) -> Result<u64, StoreError>;

    /// Revoke every OAuth token of an application; how many.
    async fn revoke_application_tokens(
        &mut self,
        application_id: i64,
        now: i64,
    ) -> Result<u64, StoreError>;

    async fn insert_user(&mut self, user: NewUser) -> Result<User, StoreError>;

    async fn insert_token(&mut self, token: NewToken) -> Result<PersonalAccessToken, StoreError>;

    async fn revoke_token(&mut self, id: i64) -> Result<bool, StoreError>;

    /// Record an audit event, committed with the rest of the unit.
    async fn record_audit(&mut self, event: NewAuditEvent) -> Result<(), StoreError>;

    /// An application, locked until the unit ends (PostgreSQL), so that
    /// what it was and what it becomes are recorded truly.
    async fn find_application(
        &mut self,
        id: i64,
        scope: Ownership,
    ) -> Result<Option<Application>, StoreError>;

    async fn update_application(
        &mut self,
        id: i64,
        update: ApplicationUpdate,
        updated_at: i64,
    ) -> Result<Option<Application>, StoreError>;

    /// Give an application a new secret; its live secrets die at once or
    /// expire by `retire`. `None` if no such application (within `scope`).
    async fn renew_application_secret(
        &mut self,
        id: i64,
        scope: Ownership,
        secret: NewSecret,
        retire: Retire,
    ) -> Result<Option<(Application, SecretInfo)>, StoreError>;

    /// Delete one of an application's secrets, unless it is its last live
    /// one at `now`.
    async fn delete_application_secret(
        &mut self,
        application_id: i64,
        secret_id: i64,
        now: i64,
    ) -> Result<SecretDeletion, StoreError>;

    /// The leak response: every secret, grant, device grant and token of
    /// the application dies, and `secret` becomes its only secret.
    async fn revoke_all_of_application(
        &mut self,
        id: i64,
        scope: Ownership,
        secret: NewSecret,
        now: i64,
    ) -> Result<Option<(Application, SecretInfo)>, StoreError>;

    /// A user, locked until the unit ends (PostgreSQL).
    async fn find_user(&mut self, id: i64) -> Result<Option<User>, StoreError>;

    /// A user about to be deleted, locked against every other lock until
    /// the unit ends (PostgreSQL `FOR UPDATE`): before the delete takes
    /// anything else (the applications of groups it deletes first), so
    /// that a unit issuing the user a token, which locks the user before
    /// its application, cannot hold the user while it waits for one of
    /// those applications.
    async fn find_user_to_delete(&mut self, id: i64) -> Result<Option<User>, StoreError>;

    /// Lock the users a unit will write rows for (a member and who added
    /// them, a new group's creator), in id order and before the unit locks
    /// anything else, as the rows' foreign keys would (PostgreSQL
    /// `FOR KEY SHARE`). A user's delete locks the user first and then the
    /// groups it deletes; a unit that held a group while its foreign key
    /// waited for the user could deadlock with it. `Gone` if one of them is.
    async fn lock_users_referenced(&mut self, ids: &[i64]) -> Result<(), StoreError>;

    /// Lock a group a unit will write rows for (a membership), as their
    /// foreign key would (PostgreSQL `FOR KEY SHARE`), but before the unit
    /// touches its other rows (a membership it replaces): a group's delete
    /// locks the group, then its memberships. `Gone` if it is.
    async fn lock_group_referenced(&mut self, id: i64) -> Result<(), StoreError>;

    async fn update_user(
        &mut self,
        id: i64,
        update: UserUpdate,
    ) -> Result<Option<User>, StoreError>;

    async fn delete_user(&mut self, id: i64) -> Result<bool, StoreError>;

    /// Block or unblock a user, as changed at `at` (ms).
    async fn set_user_state(
        &mut self,
        id: i64,
        state: UserState,
        at: i64,
    ) -> Result<bool, StoreError>;

    /// Are there still no users? Taken under the lock that orders first
    /// starts (PostgreSQL: every instance's), so that one bootstrap wins.
    async fn no_users_yet(&mut self) -> Result<bool, StoreError>;

    async fn delete_user_sessions(
        &mut self,
        user_id: i64,
        keep: Option<&str>,
    ) -> Result<u64, StoreError>;

    async fn find_token(&mut self, id: i64) -> Result<Option<PersonalAccessToken>, StoreError>;

    async fn rotate_token(
        &mut self,
        id: i64,
        new: NewToken,
    ) -> Result<Option<PersonalAccessToken>, StoreError>;

    async fn record_login_failure(
        &mut self,
        key: &str,
        now: i64,
        window_ms: i64,
    ) -> Result<u32, StoreError>;

    async fn clear_login_failures(&mut self, key: &str) -> Result<(), StoreError>;

    /// End a session; the user it was theirs, if it existed.
    async fn delete_session(&mut self, digest: &str) -> Result<Option<i64>, StoreError>;

    async fn insert_session(&mut self, session: NewSession) -> Result<(), StoreError>;

    /// Put a live session in Admin Mode until `until` (ms), or take it out
    /// (`None`). Whether the session was there to change.
    async fn set_admin_mode(
        &mut self,
        digest: &str,
        until: Option<i64>,
    ) -> Result<bool, StoreError>;

    async fn insert_oauth_token(&mut self, token: NewOAuthToken) -> Result<OAuthToken, StoreError>;

    async fn insert_grant(&mut self, grant: NewGrant) -> Result<Grant, StoreError>;

    async fn decide_device_grant(
        &mut self,
        id: i64,
        user_id: i64,
        approve: bool,
        now: i64,
        auth_time: i64,
    ) -> Result<bool, StoreError>;

    async fn revoke_token_family(&mut self, family: &str, now: i64) -> Result<u64, StoreError>;

    async fn insert_signing_key(
        &mut self,
        key: NewSigningKey,
        only_if_none_active: bool,
    ) -> Result<bool, StoreError>;

    async fn retire_signing_keys(&mut self, except_kid: &str, now: i64) -> Result<u64, StoreError>;

    /// Is a username taken (ignoring ASCII case)? Top-level groups share
    /// their paths with usernames.
    async fn username_taken(&mut self, username: &str) -> Result<bool, StoreError>;

    /// Is a top-level group's path taken (ignoring ASCII case)?
    async fn top_level_group_taken(&mut self, path: &str) -> Result<bool, StoreError>;

    /// The top-level groups `user_id` is the only live Owner of.
    async fn solely_owned_groups(
        &mut self,
        user_id: i64,
        today: &str,
    ) -> Result<Vec<Group>, StoreError>;

    /// Has another subgroup of `parent_id` (than `except`) this name?
    async fn group_name_taken(
        &mut self,
        parent_id: i64,
        name: &str,
        except: Option<i64>,
    ) -> Result<bool, StoreError>;

    /// Insert a group; a taken full path is a conflict on `full_path`.
    async fn insert_group(&mut self, group: NewGroup) -> Result<Group, StoreError>;

    /// A group, locked until the unit ends (PostgreSQL).
    async fn find_group(&mut self, id: i64) -> Result<Option<Group>, StoreError>;

    /// Change a group, as changed at `at` (ms); a new name or path is
    /// carried into the full names and paths of its descendants.
    async fn update_group(
        &mut self,
        id: i64,
        update: GroupUpdate,
        at: i64,
    ) -> Result<Option<Group>, StoreError>;

    /// Delete a group with its subgroups, memberships and applications.
    async fn delete_group(&mut self, id: i64) -> Result<bool, StoreError>;

    /// The visibility of a group's most visible direct subgroup.
    async fn most_visible_subgroup(&mut self, id: i64) -> Result<Option<Visibility>, StoreError>;

    /// A user's direct membership of a group, locked until the unit ends.
    async fn find_membership(
        &mut self,
        group_id: i64,
        user_id: i64,
    ) -> Result<Option<Membership>, StoreError>;

    /// A taken (group, user) pair is a conflict on `user_id`.
    async fn insert_membership(&mut self, m: NewMembership) -> Result<Membership, StoreError>;

    async fn update_membership(
        &mut self,
        group_id: i64,
        user_id: i64,
        update: MembershipUpdate,
        at: i64,
    ) -> Result<Option<Membership>, StoreError>;

    /// Remove a user's direct membership of a group (and, with
    /// `with_subgroups`, of every group below it); whether it existed.
    async fn delete_membership(
        &mut self,
        group_id: i64,
        user_id: i64,
        with_subgroups: bool,
    ) -> Result<bool, StoreError>;

    /// How many live direct Owners a group has.
    async fn count_owners(&mut self, group_id: i64, today: &str) -> Result<u64, StoreError>;

    /// Everything a state file manages (see [`crate::state::Current`]).
    async fn read_state(&mut self) -> Result<crate::state::Current, StoreError>;

    /// Wait until no other unit of work is applying a state file, and keep
    /// them out until this one ends.
    async fn lock_state(&mut self) -> Result<(), StoreError>;

    /// Rename a token, or change its scopes or expiry.
    async fn update_token(
        &mut self,
        id: i64,
        name: &str,
        scopes: &crate::scopes::Scopes,
        expires_at: Option<time::Date>,
    ) -> Result<Option<PersonalAccessToken>, StoreError>;

    /// Make `secrets` an application's only secrets (the last one its
    /// newest).
    async fn replace_application_secrets(
        &mut self,
        application_id: i64,
        secrets: Vec<NewSecret>,
    ) -> Result<(), StoreError>;

    /// Delete up to `limit` of the dynamically registered applications
    /// created before `created_before` that never got a grant or a token;
    /// those deleted.
    async fn delete_unused_dynamic_applications(
        &mut self,
        created_before: i64,
        limit: i64,
    ) -> Result<Vec<Application>, StoreError>;
}

impl dyn Store {
    /// Create the first user and their token (users and tokens at once),
    /// with the audit events `audit` makes of them, but only while there
    /// are no users at all: `None` if someone got there first.
    pub async fn bootstrap_first_user<F>(
        &self,
        user: NewUser,
        token: NewToken,
        audit: F,
    ) -> Result<Option<Bootstrap>, StoreError>
    where
        F: FnOnce(&User, &PersonalAccessToken) -> Vec<NewAuditEvent> + Send + 'static,
    {
        let (made, events) = in_transaction_audited(self, move |tx| {
            Box::pin(async move {
                if !tx.no_users_yet().await? {
                    return Ok(None);
                }
                let user = tx.insert_user(user).await?;
                let token = tx
                    .insert_token(NewToken {
                        user_id: user.id,
                        ..token
                    })
                    .await?;
                for event in audit(&user, &token) {
                    tx.record_audit(event).await?;
                }
                Ok(Some((user, token)))
            })
        })
        .await?;
        Ok(made.map(|(user, token)| Bootstrap {
            user,
            token,
            audit: events,
        }))
    }
}

/// The first user, their token, and the audit events recorded with them.
pub struct Bootstrap {
    pub user: User,
    pub token: PersonalAccessToken,
    pub audit: Vec<AuditEvent>,
}

/// What [`Store::transaction`] runs.
pub type TransactionWork = Box<
    dyn for<'t> FnOnce(
            &'t mut dyn Transaction,
        ) -> BoxFuture<'t, Result<Box<dyn Any + Send>, StoreError>>
        + Send,
>;

/// [`Store::transaction`] with a typed result.
pub async fn in_transaction<T, F>(store: &dyn Store, work: F) -> Result<T, StoreError>
where
    T: Send + 'static,
    F: for<'t> FnOnce(&'t mut dyn Transaction) -> BoxFuture<'t, Result<T, StoreError>>
        + Send
        + 'static,
{
    in_transaction_audited(store, work)
        .await
        .map(|(value, _)| value)
}

/// [`Store::transaction`] with a typed result, and the audit events the
/// unit recorded.
pub async fn in_transaction_audited<T, F>(
    store: &dyn Store,
    work: F,
) -> Result<(T, Vec<AuditEvent>), StoreError>
where
    T: Send + 'static,
    F: for<'t> FnOnce(&'t mut dyn Transaction) -> BoxFuture<'t, Result<T, StoreError>>
        + Send
        + 'static,
{
    let out = store
        .transaction(Box::new(move |tx| {
            Box::pin(async move {
                let value = work(tx).await?;
                Ok(Box::new(value) as Box<dyn Any + Send>)
            })
        }))
        .await?;
    let value = out
        .value
        .downcast::<T>()
        .map(|value| *value)
        .map_err(|_| StoreError::internal("a transaction's result has another type"))?;
    Ok((value, out.audit))
}

/// Every store trait, for `use latchkey_core::store::prelude::*`.
pub mod prelude {
    pub use super::Store;
    pub use crate::application::ApplicationStore;
    pub use crate::audit::AuditStore;
    pub use crate::device::DeviceGrantStore;
    pub use crate::dump::TransferStore;
    pub use crate::group::GroupStore;
    pub use crate::oauth::OAuthStore;
    pub use crate::oidc::SigningKeyStore;
    pub use crate::registration::RegistrationStore;
    pub use crate::session::SessionStore;
    pub use crate::state::StateStore;
    pub use crate::token::TokenStore;
    pub use crate::user::UserStore;
}
use prelude::*;

pub use crate::pagination::COUNT_CAP;

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
                Err(e) => Err(StoreError::Internal(crate::error::cause(e))),
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
