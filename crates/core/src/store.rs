//! The storage interface: one trait per aggregate, [`Store`] over them all,
//! and the errors every backend answers with.

use std::any::Any;

use async_trait::async_trait;
use futures::future::BoxFuture;
use futures::stream::BoxStream;

use crate::application::{Application, NewApplication, Ownership};
use crate::token::{NewToken, PersonalAccessToken};
use crate::user::{NewUser, User};

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
    + TransferStore
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

    /// Delete what can never be used again: expired grants, sessions and
    /// sign-in counters, and tokens that are revoked or expired without a
    /// usable refresh token. Returns the rows deleted.
    async fn delete_expired(&self, now: i64) -> Result<u64, StoreError>;

    /// Create the first user and their token (users and tokens at once), but only while there are no
    /// users at all. `None` if someone got there first.
    async fn bootstrap_first_user(
        &self,
        user: NewUser,
        token: NewToken,
    ) -> Result<Option<(User, PersonalAccessToken)>, StoreError>;

    /// Run `work` as one unit across aggregates: every change it makes
    /// through its [`Transaction`] commits together, or none does (an error
    /// from `work` rolls everything back). Use [`in_transaction`] for a
    /// typed result.
    async fn transaction(&self, work: TransactionWork) -> Result<Box<dyn Any + Send>, StoreError>;
}

/// The changes of several aggregates, made in one transaction (see
/// [`Store::transaction`]). Each method does what the store method of the
/// same name does.
#[async_trait]
pub trait Transaction: Send {
    async fn insert_application(&mut self, app: NewApplication) -> Result<Application, StoreError>;

    async fn delete_application(&mut self, id: i64, scope: Ownership) -> Result<bool, StoreError>;

    /// Revoke every OAuth token of an application; how many.
    async fn revoke_application_tokens(
        &mut self,
        application_id: i64,
        now: i64,
    ) -> Result<u64, StoreError>;

    async fn insert_user(&mut self, user: NewUser) -> Result<User, StoreError>;

    async fn insert_token(&mut self, token: NewToken) -> Result<PersonalAccessToken, StoreError>;

    async fn revoke_token(&mut self, id: i64) -> Result<bool, StoreError>;
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
    let out = store
        .transaction(Box::new(move |tx| {
            Box::pin(async move {
                let value = work(tx).await?;
                Ok(Box::new(value) as Box<dyn Any + Send>)
            })
        }))
        .await?;
    out.downcast::<T>()
        .map(|value| *value)
        .map_err(|_| StoreError::internal("a transaction's result has another type"))
}

/// Every store trait, for `use latchkey_core::store::prelude::*`.
pub mod prelude {
    pub use super::Store;
    pub use crate::application::ApplicationStore;
    pub use crate::device::DeviceGrantStore;
    pub use crate::dump::TransferStore;
    pub use crate::oauth::OAuthStore;
    pub use crate::oidc::SigningKeyStore;
    pub use crate::registration::RegistrationStore;
    pub use crate::session::SessionStore;
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
