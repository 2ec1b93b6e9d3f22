//! latchkey's SQL, written once for every SQL backend.
//!
//! Both SQLite and PostgreSQL take the same statements (`$1`, `$2`, …
//! placeholders, `RETURNING`, `ON CONFLICT`, `TRUE`/`FALSE`); where they do
//! not agree, [`Dialect`] says how each spells it. One module per aggregate
//! holds its statements and implements its store trait for [`SqlStore`],
//! over any [`Backend`]. A backend provides only what really differs:
//! connections, how it runs a unit of work (a transaction, SQLite's group
//! commit), its error codes, its migrations.

mod app_count;
mod applications;
mod audit;
mod backend;
mod batch;
mod conn;
mod device_grants;
mod filter;
mod groups;
mod members;
mod oauth;
mod registrations;
mod rows;
mod secrets;
mod sessions;
mod signing_keys;
mod state;
mod tokens;
mod transaction;
mod transfer;
mod users;

use async_trait::async_trait;
use latchkey_core::store::{Committed, Store, StoreError, TransactionWork};

pub use backend::{Access, Backend, Decode, Dialect, SqlStore, Work};
pub use conn::{query_opt_as, Conn, Row, Value};

/// Keep revoked and spent tokens this long (for refresh-reuse detection).
const SPENT_TOKEN_RETENTION_MS: i64 = 7 * 24 * 3600 * 1000;
/// Forget sign-in counters this long after their window started.
const THROTTLE_RETENTION_MS: i64 = 3600 * 1000;

/// What can never be used again, each with its cut-off (`$1`).
const EXPIRED: [&str; 7] = [
    "DELETE FROM oauth_access_tokens WHERE revoked_at < $1
        OR (expires_at < $1 AND (refresh_digest IS NULL OR refreshed_at IS NOT NULL))",
    "DELETE FROM oauth_access_grants WHERE expires_at < $1",
    "DELETE FROM sessions WHERE expires_at < $1",
    "DELETE FROM login_throttles WHERE window_start < $1",
    "DELETE FROM device_grants WHERE expires_at < $1",
    "DELETE FROM signing_keys WHERE retired_at < $1",
    secrets::DELETE_EXPIRED,
];

#[async_trait]
impl<B: Backend> Store for SqlStore<B> {
    async fn ping(&self) -> Result<(), StoreError> {
        self.backend.ping().await
    }

    fn known_down(&self) -> bool {
        self.backend.known_down()
    }

    fn announces_own_changes(&self) -> bool {
        B::ANNOUNCES_CHANGES
    }

    fn register_metrics(
        &self,
        registry: &mut latchkey_core::metrics::prometheus_client::registry::Registry,
    ) {
        self.backend.register_metrics(registry);
    }

    async fn delete_expired(&self, now: i64) -> Result<u64, StoreError> {
        let cutoffs = [
            now - SPENT_TOKEN_RETENTION_MS,
            now,
            now,
            now - THROTTLE_RETENTION_MS,
            now,
            now - latchkey_core::oidc::RETIRED_KEY_PUBLISHED_MS,
            now,
        ];
        // Each statement on its own: nothing needs them together, and in
        // one transaction the sweep held what one statement deleted (expired
        // tokens) while a later one waited (for an expired secret), as
        // revoke-all holds them the other way round on PostgreSQL.
        let mut total = 0;
        for (sql, cutoff) in EXPIRED.iter().zip(cutoffs) {
            total += self.write_one(sql, params![cutoff]).await?;
        }
        Ok(total)
    }

    async fn outside_changes(&self) -> Result<Option<i64>, StoreError> {
        self.check_outside_changes().await
    }

    async fn fold_counts(&self) -> Result<(), StoreError> {
        let changed = self
            .run(Access::TRANSACTION, |c| {
                Box::pin(async move {
                    let mut changed = 0;
                    for statement in B::DIALECT.fold_instance_count() {
                        changed += c.execute(statement, &[]).await?;
                    }
                    Ok(changed)
                })
            })
            .await?;
        match B::DIALECT.after_fold() {
            Some(tidy) if changed > 0 => {
                self.run(Access::WRITE, move |c| {
                    Box::pin(async move { c.execute(tidy, &[]).await.map(drop) })
                })
                .await
            }
            _ => Ok(()),
        }
    }

    async fn transaction(&self, work: TransactionWork) -> Result<Committed, StoreError> {
        self.unit_of_work(work).await
    }
}

#[cfg(test)]
mod tests;
