//! latchkey's shared storage: PostgreSQL through sqlx.
//!
//! The same schema and the same semantics as the SQLite backend, so any
//! number of latchkey instances can serve from one database:
//!
//! - usernames and emails are unique ignoring ASCII case, as SQLite's
//!   `COLLATE NOCASE` makes them (a unique index on
//!   `lower(column COLLATE "C")`, and lookups through the same expression);
//! - a broken uniqueness rule is [`StoreError::Conflict`] naming the column;
//! - an unreachable server, a pool timeout, a cancelled statement or a
//!   serialization failure is [`StoreError::Unavailable`];
//! - [`Store::bootstrap_first_user`] locks the users table against writers
//!   for its transaction, so it creates at most one first user however many
//!   instances race for it;
//! - single-use transitions (redeeming a code, refreshing or rotating a
//!   token) are a conditional `UPDATE` in a transaction: concurrent callers
//!   queue on the row lock and only the first finds the row still usable;
//! - a page and its total come from one snapshot (`REPEATABLE READ`), as a
//!   SQLite read transaction gives.
//!
//! One difference remains: a failed insert consumes a sequence value, so
//! ids can have gaps where SQLite's `AUTOINCREMENT` would have none.

mod outage;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use latchkey_core::application::{
    join_grant_types, Application, ApplicationUpdate, NewApplication, Ownership,
};
use latchkey_core::dump::{Cell, Kind, TableSpec};
use latchkey_core::oauth::{
    DeviceGrant, DeviceStatus, Grant, NewDeviceGrant, NewGrant, NewOAuthToken, NewSession,
    OAuthToken, OAuthTokenFound, PkceMethod,
};
use latchkey_core::oidc::{NewSigningKey, SigningKey};
use latchkey_core::pagination::PageRequest;
use latchkey_core::store::{Store, StoreError, TokenWithOwner};
use latchkey_core::token::{NewToken, PersonalAccessToken};
use latchkey_core::user::{NewUser, User, UserFilter, UserState, UserUpdate};
use latchkey_sql_rows::{
    app_from_row, cells, device_from_row, grant_from_row, key_from_row, oauth_token_from_row,
    token_from_row, user_from_row,
};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Row};

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// How to connect to the database.
#[derive(Clone)]
pub struct Options {
    /// `postgres://user:password@host:port/database?...`
    pub url: String,
    /// The most connections this instance opens.
    pub max_connections: u32,
    /// Connections kept open even when idle.
    pub min_connections: u32,
    /// How long a request waits for a free connection (including opening
    /// a new one).
    pub acquire_timeout: Duration,
    /// The server cancels any statement running longer than this (the
    /// request then fails as unavailable). Sent as a startup option, which
    /// some poolers (PgBouncer without `ignore_startup_parameters`) refuse:
    /// `None` sends nothing and leaves the server's setting alone.
    pub statement_timeout: Option<Duration>,
    /// Watch for an outage (see [`outage`]): while the server refuses
    /// connections, requests fail at once instead of waiting
    /// `acquire_timeout` each. Off for one-shot commands.
    pub watch_outages: bool,
}

impl Options {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            max_connections: 10,
            min_connections: 0,
            acquire_timeout: Duration::from_secs(5),
            statement_timeout: Some(Duration::from_secs(30)),
            watch_outages: false,
        }
    }
}

/// The URL's password, if any, replaced by `***`: options get logged.
fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

impl fmt::Debug for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Options")
            .field("url", &redact_url(&self.url))
            .field("max_connections", &self.max_connections)
            .field("min_connections", &self.min_connections)
            .field("acquire_timeout", &self.acquire_timeout)
            .field("statement_timeout", &self.statement_timeout)
            .finish()
    }
}

#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    /// Set while the server is known to refuse connections.
    outage: Option<std::sync::Arc<outage::Outage>>,
}

/// The column a unique constraint or index guards. Every one in the schema
/// is named `<table>_<column>_key`, as PostgreSQL names `UNIQUE (column)`.
fn conflict_column(table: Option<&str>, constraint: Option<&str>) -> String {
    let Some(constraint) = constraint else {
        return "value".to_owned();
    };
    let column = table
        .and_then(|t| constraint.strip_prefix(t))
        .and_then(|c| c.strip_prefix('_'))
        .unwrap_or(constraint);
    column.strip_suffix("_key").unwrap_or(column).to_owned()
}

/// SQLSTATEs meaning "not now" rather than "never": the connection broke,
/// the server is short of resources or shutting down, a statement was
/// cancelled (statement_timeout), a lock was not granted, a transaction
/// lost a serialization race or a deadlock, or a new connection was
/// refused (database closed to connections, dropped, credentials changed).
fn is_unavailable_code(code: &str) -> bool {
    code.starts_with("08")
        || code.starts_with("53")
        || matches!(
            code,
            "57014" | "57P01" | "57P02" | "57P03" | "55P03" | "40001" | "40P01"
            // at connect time: the database does not accept connections
            // (ALLOW_CONNECTIONS false), is gone, or refuses our credentials
            | "55000" | "3D000" | "28000" | "28P01"
        )
}

fn map_err(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Conflict(conflict_column(db.table(), db.constraint()))
        }
        // Raised only by latchkey_keep_an_administrator() (migration 0004).
        sqlx::Error::Database(db) if db.code().as_deref() == Some("LK001") => {
            StoreError::LastAdministrator
        }
        // 23503: the parent row was deleted first.
        sqlx::Error::Database(db) if db.is_foreign_key_violation() => StoreError::Gone,
        sqlx::Error::PoolTimedOut
        | sqlx::Error::Io(_)
        | sqlx::Error::PoolClosed
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => StoreError::Unavailable(e.to_string()),
        sqlx::Error::Database(db) if db.code().is_some_and(|c| is_unavailable_code(&c)) => {
            StoreError::Unavailable(e.to_string())
        }
        _ => StoreError::Other(e.to_string()),
    }
}

fn migrate_err(e: sqlx::migrate::MigrateError) -> StoreError {
    match e {
        sqlx::migrate::MigrateError::Execute(inner) => match map_err(inner) {
            StoreError::Unavailable(m) => StoreError::Unavailable(format!("migration failed: {m}")),
            other => StoreError::Other(format!("migration failed: {other}")),
        },
        e => StoreError::Other(format!("migration failed: {e}")),
    }
}

impl PgStore {
    /// Connect without migrating. Fails when the server cannot be reached
    /// within `acquire_timeout`.
    pub async fn connect(opts: &Options) -> Result<Self, StoreError> {
        let mut connect = PgConnectOptions::from_str(&opts.url).map_err(|e| {
            StoreError::Other(format!(
                "invalid PostgreSQL URL {:?}: {e}",
                redact_url(&opts.url)
            ))
        })?;
        connect = connect.application_name("latchkey");
        if let Some(t) = opts.statement_timeout {
            connect = connect.options([("statement_timeout", t.as_millis().max(1))]);
        }
        let pool = PgPoolOptions::new()
            .max_connections(opts.max_connections.max(1))
            .min_connections(opts.min_connections.min(opts.max_connections.max(1)))
            .acquire_timeout(opts.acquire_timeout)
            .connect_with(connect.clone())
            .await
            .map_err(map_err)?;
        let outage = opts
            .watch_outages
            .then(|| outage::Outage::watch(pool.clone(), connect, opts.max_connections.max(1)));
        Ok(Self { pool, outage })
    }

    /// Apply every pending migration. Safe to run from several instances
    /// at once: the migrator holds an advisory lock while it works.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR.run(&self.pool).await.map_err(migrate_err)
    }

    /// The newest migration version applied, if any.
    pub async fn schema_version(&self) -> Result<Option<i64>, StoreError> {
        let exists: bool = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
            .fetch_one(&self.pool)
            .await
            .map_err(map_err)?;
        if !exists {
            return Ok(None);
        }
        sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success")
            .fetch_one(&self.pool)
            .await
            .map_err(map_err)
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

const APP_COLUMNS: &str =
    "id, uid, name, redirect_uri, scopes, confidential, trusted, owner_id, created_at, dynamic, \
     grant_types";
const USER_COLUMNS: &str = "id, username, email, name, admin, state, created_at";
const TOKEN_COLUMNS: &str = "id, user_id, name, scopes, expires_at, revoked, created_at";

/// A read-only transaction whose statements all see one snapshot, as a
/// SQLite read transaction does (READ COMMITTED takes one per statement):
/// a page and its total agree.
const BEGIN_SNAPSHOT: &str = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY";

/// SQLite's `COLLATE NOCASE` equality: ASCII letters fold, nothing else.
/// The left side is the expression of the unique indexes on users.
fn nocase_eq(column: &str, param: &str) -> String {
    format!(r#"lower({column} COLLATE "C") = lower({param}::text COLLATE "C")"#)
}

/// SQLite's default `LIKE`: ASCII letters fold, nothing else.
fn nocase_like(column: &str, param: &str) -> String {
    format!(r#"lower({column} COLLATE "C") LIKE lower({param}::text COLLATE "C") ESCAPE '\'"#)
}

const GRANT_COLUMNS: &str = "id, application_id, user_id, redirect_uri, scopes, code_challenge, \
     code_challenge_method, nonce, created_at, expires_at, redeemed_at, auth_time";
const OAUTH_TOKEN_COLUMNS: &str =
    "id, application_id, user_id, refresh_digest IS NOT NULL AS has_refresh, scopes, \
     created_at, expires_at, revoked_at, refreshed_at, family, previous_token_id, grant_id, auth_time";

/// Keep revoked and spent tokens this long (for refresh-reuse detection).
const SPENT_TOKEN_RETENTION_MS: i64 = 7 * 24 * 3600 * 1000;
/// Forget sign-in counters this long after their window started.
const THROTTLE_RETENTION_MS: i64 = 3600 * 1000;

async fn insert_oauth_token_on(
    conn: &mut sqlx::PgConnection,
    t: &NewOAuthToken,
) -> Result<OAuthToken, sqlx::Error> {
    let row = sqlx::query(&format!(
        "INSERT INTO oauth_access_tokens
           (application_id, user_id, token_digest, refresh_digest, scopes, created_at, expires_at,
            family, previous_token_id, grant_id, auth_time)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING {OAUTH_TOKEN_COLUMNS}"
    ))
    .bind(t.application_id)
    .bind(t.user_id)
    .bind(&t.token_digest)
    .bind(&t.refresh_digest)
    .bind(t.scopes.joined())
    .bind(t.created_at)
    .bind(t.expires_at)
    .bind(&t.family)
    .bind(t.previous_token_id)
    .bind(t.grant_id)
    .bind(t.auth_time)
    .fetch_one(&mut *conn)
    .await?;
    oauth_token_from_row(&row, "")
}

/// The digest columns of oauth_access_tokens a token is found by.
#[derive(Debug, Clone, Copy)]
enum OAuthDigest {
    Access,
    Refresh,
}

impl OAuthDigest {
    fn column(self) -> &'static str {
        match self {
            Self::Access => "token_digest",
            Self::Refresh => "refresh_digest",
        }
    }
}

/// A token with its application and (optional) user, by one digest column.
async fn find_oauth_token_by(
    pool: &PgPool,
    by: OAuthDigest,
    digest: &str,
) -> Result<Option<OAuthTokenFound>, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT t.id AS t_id, t.application_id AS t_application_id, t.user_id AS t_user_id,
                t.refresh_digest IS NOT NULL AS t_has_refresh, t.scopes AS t_scopes,
                t.created_at AS t_created_at, t.expires_at AS t_expires_at, t.revoked_at AS t_revoked_at,
                t.refreshed_at AS t_refreshed_at, t.family AS t_family,
                t.previous_token_id AS t_previous_token_id, t.grant_id AS t_grant_id,
                t.auth_time AS t_auth_time,
                a.id, a.uid, a.name, a.redirect_uri, a.scopes, a.confidential, a.trusted, a.owner_id, a.created_at, a.dynamic, a.grant_types,
                u.id AS u_id, u.username AS u_username, u.email AS u_email, u.name AS u_name,
                u.admin AS u_admin, u.state AS u_state, u.created_at AS u_created_at
         FROM oauth_access_tokens t
         JOIN oauth_applications a ON a.id = t.application_id
         LEFT JOIN users u ON u.id = t.user_id
         WHERE t.{} = $1",
        by.column()
    ))
    .bind(digest)
    .fetch_optional(pool)
    .await
    .map_err(map_err)?;
    let Some(row) = row else { return Ok(None) };
    let token = oauth_token_from_row(&row, "t_").map_err(map_err)?;
    let application = app_from_row(&row).map_err(map_err)?;
    let user_id: Option<i64> = row.try_get("u_id").map_err(map_err)?;
    let user = match user_id {
        Some(_) => Some(user_from_row(&row, "u_").map_err(map_err)?),
        None => None,
    };
    Ok(Some(OAuthTokenFound {
        token,
        application,
        user,
    }))
}

fn column_list(table: &TableSpec) -> String {
    table
        .columns
        .iter()
        .map(|(c, _)| *c)
        .collect::<Vec<_>>()
        .join(", ")
}

type PgQuery<'q> = sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>;

fn bind_cell<'q>(q: PgQuery<'q>, cell: &Cell, kind: Kind) -> PgQuery<'q> {
    match (cell, kind) {
        (Cell::Int(v), _) => q.bind(*v),
        (Cell::Text(v), _) => q.bind(v.clone()),
        (Cell::Bool(v), _) => q.bind(*v),
        (Cell::Null, Kind::Int) => q.bind(None::<i64>),
        (Cell::Null, Kind::Text) => q.bind(None::<String>),
        (Cell::Null, Kind::Bool) => q.bind(None::<bool>),
    }
}

const DEVICE_COLUMNS: &str =
    "id, application_id, user_code, scopes, created_at, expires_at, last_polled_at, user_id, status, auth_time";
const KEY_COLUMNS: &str =
    "id, kid, algorithm, private_pem, public_n, public_e, created_at, retired_at";

fn ownership_clause(scope: Ownership) -> &'static str {
    match scope {
        Ownership::Instance => " AND owner_id IS NULL",
        Ownership::Any => "",
    }
}

async fn insert_token_on(
    conn: &mut sqlx::PgConnection,
    user_id: i64,
    t: &NewToken,
) -> Result<PersonalAccessToken, sqlx::Error> {
    let row = sqlx::query(
        "INSERT INTO personal_access_tokens (user_id, name, token_digest, scopes, expires_at, revoked, created_at)
         VALUES ($1, $2, $3, $4, $5, FALSE, $6)
         RETURNING id, user_id, name, scopes, expires_at, revoked, created_at",
    )
    .bind(user_id)
    .bind(&t.name)
    .bind(&t.digest)
    .bind(t.scopes.joined())
    .bind(t.expires_at.map(|d| d.to_string()))
    .bind(t.created_at)
    .fetch_one(&mut *conn)
    .await?;
    token_from_row(&row)
}

async fn insert_user_on(conn: &mut sqlx::PgConnection, u: &NewUser) -> Result<User, sqlx::Error> {
    let row = sqlx::query(&format!(
        "INSERT INTO users (username, email, name, password_digest, admin, state, created_at)
         VALUES ($1, $2, $3, $4, $5, 'active', $6) RETURNING {USER_COLUMNS}"
    ))
    .bind(&u.username)
    .bind(&u.email)
    .bind(&u.name)
    .bind(&u.password_digest)
    .bind(u.admin)
    .bind(u.created_at)
    .fetch_one(&mut *conn)
    .await?;
    user_from_row(&row, "")
}

async fn any_users(conn: &mut sqlx::PgConnection) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM users)")
        .fetch_one(&mut *conn)
        .await
}

#[async_trait]
impl Store for PgStore {
    fn known_down(&self) -> bool {
        self.outage.as_ref().is_some_and(|o| o.is_down())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn insert_application(&self, a: NewApplication) -> Result<Application, StoreError> {
        let row = sqlx::query(&format!(
            "INSERT INTO oauth_applications
               (uid, name, secret_digest, redirect_uri, scopes, confidential, trusted, owner_id, created_at, updated_at,
                dynamic, registration_token_digest, grant_types)
             VALUES ($1, $2, $3, $4, $5, $6, FALSE, $7, $8, $9, $10, $11, $12) RETURNING {APP_COLUMNS}"
        ))
        .bind(&a.application_id)
        .bind(&a.name)
        .bind(&a.secret_digest)
        .bind(&a.redirect_uri)
        .bind(a.scopes.joined())
        .bind(a.confidential)
        .bind(a.owner_id)
        .bind(a.created_at)
        .bind(a.created_at)
        .bind(a.dynamic)
        .bind(&a.registration_token_digest)
        .bind(join_grant_types(&a.grant_types))
        .fetch_one(&self.pool)
        .await
        .map_err(map_err)?;
        app_from_row(&row).map_err(map_err)
    }

    async fn list_instance_applications(
        &self,
        page: PageRequest,
    ) -> Result<(Vec<Application>, u64), StoreError> {
        let mut tx = self
            .pool
            .begin_with(BEGIN_SNAPSHOT)
            .await
            .map_err(map_err)?;
        let total: i64 =
            sqlx::query_scalar(&format!(
                "SELECT COUNT(*) FROM (SELECT 1 FROM oauth_applications WHERE owner_id IS NULL LIMIT {}) AS capped",
                latchkey_core::store::COUNT_CAP + 1
            ))
                .fetch_one(&mut *tx)
                .await
                .map_err(map_err)?;
        let rows = sqlx::query(&format!(
            "SELECT {APP_COLUMNS} FROM oauth_applications WHERE id IN
               (SELECT id FROM oauth_applications WHERE owner_id IS NULL ORDER BY id LIMIT $1 OFFSET $2)
             ORDER BY id"
        ))
        .bind(page.limit())
        .bind(page.offset())
        .fetch_all(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        let apps = rows
            .iter()
            .map(app_from_row)
            .collect::<Result<Vec<_>, _>>()
            .map_err(map_err)?;
        Ok((apps, u64::try_from(total).unwrap_or(0)))
    }

    async fn instance_applications_after(
        &self,
        after_id: i64,
        limit: i64,
    ) -> Result<Vec<Application>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {APP_COLUMNS} FROM oauth_applications
             WHERE owner_id IS NULL AND id > $1 ORDER BY id LIMIT $2"
        ))
        .bind(after_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(app_from_row)
            .collect::<Result<Vec<_>, _>>()
            .map_err(map_err)
    }

    async fn find_application(
        &self,
        id: i64,
        scope: Ownership,
    ) -> Result<Option<Application>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {APP_COLUMNS} FROM oauth_applications WHERE id = $1{}",
            ownership_clause(scope)
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        row.as_ref().map(app_from_row).transpose().map_err(map_err)
    }

    async fn delete_application(&self, id: i64, scope: Ownership) -> Result<bool, StoreError> {
        let done = sqlx::query(&format!(
            "DELETE FROM oauth_applications WHERE id = $1{}",
            ownership_clause(scope)
        ))
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn renew_application_secret(
        &self,
        id: i64,
        scope: Ownership,
        secret_digest: &str,
    ) -> Result<Option<Application>, StoreError> {
        let row = sqlx::query(&format!(
            "UPDATE oauth_applications SET secret_digest = $1 WHERE id = $2{} RETURNING {APP_COLUMNS}",
            ownership_clause(scope)
        ))
        .bind(secret_digest)
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        row.as_ref().map(app_from_row).transpose().map_err(map_err)
    }

    async fn list_owned_applications(
        &self,
        owner_id: i64,
        page: PageRequest,
    ) -> Result<(Vec<Application>, u64), StoreError> {
        let mut tx = self
            .pool
            .begin_with(BEGIN_SNAPSHOT)
            .await
            .map_err(map_err)?;
        let total: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM oauth_applications WHERE owner_id = $1")
                .bind(owner_id)
                .fetch_one(&mut *tx)
                .await
                .map_err(map_err)?;
        let rows = sqlx::query(&format!(
            "SELECT {APP_COLUMNS} FROM oauth_applications WHERE owner_id = $1 ORDER BY id LIMIT $2 OFFSET $3"
        ))
        .bind(owner_id)
        .bind(page.limit())
        .bind(page.offset())
        .fetch_all(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        let apps = rows
            .iter()
            .map(app_from_row)
            .collect::<Result<Vec<_>, _>>()
            .map_err(map_err)?;
        Ok((apps, u64::try_from(total).unwrap_or(0)))
    }

    async fn update_application(
        &self,
        id: i64,
        update: ApplicationUpdate,
        updated_at: i64,
    ) -> Result<Option<Application>, StoreError> {
        // Destructured so that a new field fails to compile here.
        let ApplicationUpdate {
            name,
            scopes,
            redirect_uri,
            confidential,
            trusted,
            grant_types,
        } = update;
        let row = sqlx::query(&format!(
            "UPDATE oauth_applications
             SET name = COALESCE($1, name), scopes = COALESCE($2, scopes),
                 redirect_uri = COALESCE($3, redirect_uri), confidential = COALESCE($4, confidential),
                 trusted = COALESCE($5, trusted), updated_at = $6,
                 grant_types = COALESCE($8, grant_types)
             WHERE id = $7 RETURNING {APP_COLUMNS}"
        ))
        .bind(name)
        .bind(scopes.map(|s| s.joined()))
        .bind(redirect_uri)
        .bind(confidential)
        .bind(trusted)
        .bind(updated_at)
        .bind(id)
        .bind(join_grant_types(&grant_types))
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        row.as_ref().map(app_from_row).transpose().map_err(map_err)
    }

    async fn find_application_by_uid(
        &self,
        application_id: &str,
    ) -> Result<Option<(Application, String)>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {APP_COLUMNS}, secret_digest FROM oauth_applications WHERE uid = $1"
        ))
        .bind(application_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        let Some(row) = row else { return Ok(None) };
        let app = app_from_row(&row).map_err(map_err)?;
        let digest: String = row.try_get("secret_digest").map_err(map_err)?;
        Ok(Some((app, digest)))
    }

    async fn insert_user(&self, user: NewUser) -> Result<User, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(map_err)?;
        insert_user_on(&mut conn, &user).await.map_err(map_err)
    }

    async fn find_user(&self, id: i64) -> Result<Option<User>, StoreError> {
        let row = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        row.as_ref()
            .map(|r| user_from_row(r, ""))
            .transpose()
            .map_err(map_err)
    }

    async fn find_user_by_username(&self, username: &str) -> Result<Option<User>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE {}",
            nocase_eq("username", "$1")
        ))
        .bind(username)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        row.as_ref()
            .map(|r| user_from_row(r, ""))
            .transpose()
            .map_err(map_err)
    }

    async fn set_user_state(&self, id: i64, state: UserState) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE users SET state = $1 WHERE id = $2")
            .bind(state.as_str())
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn list_users(
        &self,
        filter: &UserFilter,
        page: PageRequest,
    ) -> Result<(Vec<User>, u64), StoreError> {
        // LIKE patterns escape their own wildcards.
        let search = filter.search.as_ref().map(|s| {
            let escaped = s
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            format!("%{escaped}%")
        });
        let clause = format!(
            "WHERE ($1::text IS NULL OR {})
               AND ($2::text IS NULL OR {} OR {} OR ($3::boolean AND {}))",
            nocase_eq("username", "$1"),
            nocase_like("username", "$2"),
            nocase_like("name", "$2"),
            nocase_like("email", "$2"),
        );
        let mut tx = self
            .pool
            .begin_with(BEGIN_SNAPSHOT)
            .await
            .map_err(map_err)?;
        let total: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM users {clause}"))
            .bind(&filter.username)
            .bind(&search)
            .bind(filter.search_emails)
            .fetch_one(&mut *tx)
            .await
            .map_err(map_err)?;
        let rows = sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM users {clause} ORDER BY id DESC LIMIT $4 OFFSET $5"
        ))
        .bind(&filter.username)
        .bind(&search)
        .bind(filter.search_emails)
        .bind(page.limit())
        .bind(page.offset())
        .fetch_all(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        let users = rows
            .iter()
            .map(|r| user_from_row(r, ""))
            .collect::<Result<Vec<_>, _>>()
            .map_err(map_err)?;
        Ok((users, u64::try_from(total).unwrap_or(0)))
    }

    async fn update_user(&self, id: i64, u: UserUpdate) -> Result<Option<User>, StoreError> {
        // Destructured so that a new field fails to compile here.
        let UserUpdate {
            username,
            email,
            name,
            password_digest,
            admin,
        } = u;
        let row = sqlx::query(&format!(
            "UPDATE users SET username = COALESCE($1, username), email = COALESCE($2, email),
                    name = COALESCE($3, name), password_digest = COALESCE($4, password_digest),
                    admin = COALESCE($5, admin)
             WHERE id = $6 RETURNING {USER_COLUMNS}"
        ))
        .bind(username)
        .bind(email)
        .bind(name)
        .bind(password_digest)
        .bind(admin)
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        row.as_ref()
            .map(|r| user_from_row(r, ""))
            .transpose()
            .map_err(map_err)
    }

    async fn delete_user(&self, id: i64) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM users WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn bootstrap_first_user(
        &self,
        user: NewUser,
        token: NewToken,
    ) -> Result<Option<(User, PersonalAccessToken)>, StoreError> {
        // Once there are users there always are: answer without locking.
        let mut conn = self.pool.acquire().await.map_err(map_err)?;
        if any_users(&mut conn).await.map_err(map_err)? {
            return Ok(None);
        }
        drop(conn);
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        // SHARE ROW EXCLUSIVE conflicts with itself and with every writer
        // (ROW EXCLUSIVE) but not with readers: concurrent bootstraps, on
        // any instance, run one after another, and no plain insert slips
        // in between the check and the insert (as SQLite's BEGIN IMMEDIATE
        // ensures). Under READ COMMITTED the check below sees every user
        // committed before the lock was granted.
        sqlx::query("LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE")
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        if any_users(&mut tx).await.map_err(map_err)? {
            tx.rollback().await.map_err(map_err)?;
            return Ok(None);
        }
        let user = insert_user_on(&mut tx, &user).await.map_err(map_err)?;
        let token = insert_token_on(&mut tx, user.id, &token)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(Some((user, token)))
    }

    async fn insert_token(&self, token: NewToken) -> Result<PersonalAccessToken, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(map_err)?;
        insert_token_on(&mut conn, token.user_id, &token)
            .await
            .map_err(map_err)
    }

    async fn find_token_by_digest(
        &self,
        digest: &str,
    ) -> Result<Option<TokenWithOwner>, StoreError> {
        let row = sqlx::query(
            "SELECT t.id, t.user_id, t.name, t.scopes, t.expires_at, t.revoked, t.created_at,
                    u.id AS u_id, u.username AS u_username, u.email AS u_email, u.name AS u_name,
                    u.admin AS u_admin, u.state AS u_state, u.created_at AS u_created_at
             FROM personal_access_tokens t JOIN users u ON u.id = t.user_id
             WHERE t.token_digest = $1",
        )
        .bind(digest)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        let Some(row) = row else { return Ok(None) };
        let token = token_from_row(&row).map_err(map_err)?;
        let user = user_from_row(&row, "u_").map_err(map_err)?;
        Ok(Some(TokenWithOwner { token, user }))
    }

    async fn revoke_token(&self, id: i64) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE personal_access_tokens SET revoked = TRUE WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn find_token(&self, id: i64) -> Result<Option<PersonalAccessToken>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {TOKEN_COLUMNS} FROM personal_access_tokens WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        row.as_ref()
            .map(token_from_row)
            .transpose()
            .map_err(map_err)
    }

    async fn list_tokens(
        &self,
        user_id: Option<i64>,
        page: PageRequest,
    ) -> Result<(Vec<PersonalAccessToken>, u64), StoreError> {
        const CLAUSE: &str = "WHERE ($1::bigint IS NULL OR user_id = $1)";
        let mut tx = self
            .pool
            .begin_with(BEGIN_SNAPSHOT)
            .await
            .map_err(map_err)?;
        let total: i64 = sqlx::query_scalar(&format!(
            "SELECT COUNT(*) FROM personal_access_tokens {CLAUSE}"
        ))
        .bind(user_id)
        .fetch_one(&mut *tx)
        .await
        .map_err(map_err)?;
        let rows = sqlx::query(&format!(
            "SELECT {TOKEN_COLUMNS} FROM personal_access_tokens {CLAUSE}
             ORDER BY id LIMIT $2 OFFSET $3"
        ))
        .bind(user_id)
        .bind(page.limit())
        .bind(page.offset())
        .fetch_all(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        let tokens = rows
            .iter()
            .map(token_from_row)
            .collect::<Result<Vec<_>, _>>()
            .map_err(map_err)?;
        Ok((tokens, u64::try_from(total).unwrap_or(0)))
    }

    async fn rotate_token(
        &self,
        id: i64,
        new: NewToken,
    ) -> Result<Option<PersonalAccessToken>, StoreError> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        // The row lock this takes makes a concurrent rotation of the same
        // token wait, then find it revoked (READ COMMITTED re-checks the
        // WHERE clause against the committed row): exactly one succeeds.
        let done = sqlx::query(
            "UPDATE personal_access_tokens SET revoked = TRUE WHERE id = $1 AND NOT revoked",
        )
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        if done.rows_affected() == 0 {
            tx.rollback().await.map_err(map_err)?;
            return Ok(None);
        }
        let token = insert_token_on(&mut tx, new.user_id, &new)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(Some(token))
    }

    async fn find_user_for_login(
        &self,
        login: &str,
    ) -> Result<Option<(User, Option<String>)>, StoreError> {
        let by_username = nocase_eq("username", "$1");
        let row = sqlx::query(&format!(
            "SELECT {USER_COLUMNS}, password_digest FROM users
             WHERE {by_username} OR {}
             ORDER BY ({by_username}) DESC LIMIT 1",
            nocase_eq("email", "$1"),
        ))
        .bind(login)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        let Some(row) = row else { return Ok(None) };
        let user = user_from_row(&row, "").map_err(map_err)?;
        let digest: Option<String> = row.try_get("password_digest").map_err(map_err)?;
        Ok(Some((user, digest)))
    }

    async fn record_login_failure(
        &self,
        key: &str,
        now: i64,
        window_ms: i64,
    ) -> Result<u32, StoreError> {
        // One statement: concurrent failures on any instance each count.
        let n: i64 = sqlx::query_scalar(
            "INSERT INTO login_throttles (key, failures, window_start) VALUES ($1, 1, $2)
             ON CONFLICT (key) DO UPDATE SET
               failures = CASE WHEN login_throttles.window_start <= $2 - $3 THEN 1 ELSE login_throttles.failures + 1 END,
               window_start = CASE WHEN login_throttles.window_start <= $2 - $3 THEN $2 ELSE login_throttles.window_start END
             RETURNING failures",
        )
        .bind(key)
        .bind(now)
        .bind(window_ms)
        .fetch_one(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    async fn login_failures(&self, key: &str, now: i64, window_ms: i64) -> Result<u32, StoreError> {
        let n: Option<i64> = sqlx::query_scalar(
            "SELECT failures FROM login_throttles WHERE key = $1 AND window_start > $2",
        )
        .bind(key)
        .bind(now.saturating_sub(window_ms))
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(n.map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX)))
    }

    async fn clear_login_failures(&self, key: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM login_throttles WHERE key = $1")
            .bind(key)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn insert_session(&self, s: NewSession) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sessions (digest, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(&s.digest)
        .bind(s.user_id)
        .bind(s.created_at)
        .bind(s.expires_at)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn find_session_user(
        &self,
        digest: &str,
        now: i64,
    ) -> Result<Option<(User, i64)>, StoreError> {
        let row = sqlx::query(
            "SELECT u.id, u.username, u.email, u.name, u.admin, u.state, u.created_at, s.created_at AS signed_in_at
             FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.digest = $1 AND s.expires_at > $2",
        )
        .bind(digest)
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        let Some(row) = row else { return Ok(None) };
        let user = user_from_row(&row, "").map_err(map_err)?;
        let at: i64 = row.try_get("signed_in_at").map_err(map_err)?;
        Ok(Some((user, at)))
    }

    async fn delete_session(&self, digest: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM sessions WHERE digest = $1")
            .bind(digest)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn delete_user_sessions(
        &self,
        user_id: i64,
        keep: Option<&str>,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "DELETE FROM sessions WHERE user_id = $1 AND ($2::text IS NULL OR digest <> $2::text)",
        )
        .bind(user_id)
        .bind(keep)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(done.rows_affected())
    }

    async fn insert_grant(&self, g: NewGrant) -> Result<Grant, StoreError> {
        let row = sqlx::query(&format!(
            "INSERT INTO oauth_access_grants
               (application_id, user_id, code_digest, redirect_uri, scopes, code_challenge,
                code_challenge_method, nonce, created_at, expires_at, auth_time)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING {GRANT_COLUMNS}"
        ))
        .bind(g.application_id)
        .bind(g.user_id)
        .bind(&g.code_digest)
        .bind(&g.redirect_uri)
        .bind(g.scopes.joined())
        .bind(&g.code_challenge)
        .bind(g.code_challenge_method.map(PkceMethod::as_str))
        .bind(&g.nonce)
        .bind(g.created_at)
        .bind(g.expires_at)
        .bind(g.auth_time)
        .fetch_one(&self.pool)
        .await
        .map_err(map_err)?;
        grant_from_row(&row).map_err(map_err)
    }

    async fn find_grant(&self, code_digest: &str) -> Result<Option<Grant>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {GRANT_COLUMNS} FROM oauth_access_grants WHERE code_digest = $1"
        ))
        .bind(code_digest)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        row.as_ref()
            .map(grant_from_row)
            .transpose()
            .map_err(map_err)
    }

    async fn redeem_grant(
        &self,
        grant_id: i64,
        now: i64,
        token: NewOAuthToken,
    ) -> Result<Option<OAuthToken>, StoreError> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        // A concurrent redemption waits for this row lock, then finds the
        // grant redeemed: one code, one token.
        let done = sqlx::query(
            "UPDATE oauth_access_grants SET redeemed_at = $1 WHERE id = $2 AND redeemed_at IS NULL",
        )
        .bind(now)
        .bind(grant_id)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        if done.rows_affected() == 0 {
            tx.rollback().await.map_err(map_err)?;
            return Ok(None);
        }
        let token = insert_oauth_token_on(&mut tx, &token)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(Some(token))
    }

    async fn revoke_grant_tokens(&self, grant_id: i64, now: i64) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE oauth_access_tokens SET revoked_at = $1
             WHERE revoked_at IS NULL AND family IN (SELECT family FROM oauth_access_tokens WHERE grant_id = $2)",
        )
        .bind(now)
        .bind(grant_id)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(done.rows_affected())
    }

    async fn insert_oauth_token(&self, token: NewOAuthToken) -> Result<OAuthToken, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(map_err)?;
        insert_oauth_token_on(&mut conn, &token)
            .await
            .map_err(map_err)
    }

    async fn find_oauth_token_by_access(
        &self,
        digest: &str,
    ) -> Result<Option<OAuthTokenFound>, StoreError> {
        find_oauth_token_by(&self.pool, OAuthDigest::Access, digest).await
    }

    async fn find_oauth_token_by_refresh(
        &self,
        digest: &str,
    ) -> Result<Option<OAuthTokenFound>, StoreError> {
        find_oauth_token_by(&self.pool, OAuthDigest::Refresh, digest).await
    }

    async fn refresh_oauth_token(
        &self,
        old_id: i64,
        now: i64,
        new: NewOAuthToken,
    ) -> Result<Option<OAuthToken>, StoreError> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        // As in redeem_grant: concurrent refreshes of one token serialise
        // on its row, and only the first finds it unused.
        let done = sqlx::query(
            "UPDATE oauth_access_tokens SET refreshed_at = $1
             WHERE id = $2 AND refreshed_at IS NULL AND revoked_at IS NULL AND refresh_digest IS NOT NULL",
        )
        .bind(now)
        .bind(old_id)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        if done.rows_affected() == 0 {
            tx.rollback().await.map_err(map_err)?;
            return Ok(None);
        }
        let token = insert_oauth_token_on(&mut tx, &new)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(Some(token))
    }

    async fn revoke_token_family(&self, family: &str, now: i64) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE oauth_access_tokens SET revoked_at = $1 WHERE family = $2 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(family)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(done.rows_affected())
    }

    async fn revoke_oauth_token(&self, id: i64, now: i64) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE oauth_access_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn finish_refresh(
        &self,
        token_id: i64,
        previous_id: i64,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        sqlx::query(
            "UPDATE oauth_access_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(previous_id)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        sqlx::query("UPDATE oauth_access_tokens SET previous_token_id = NULL WHERE id = $1")
            .bind(token_id)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)
    }

    async fn delete_expired(&self, now: i64) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        let mut total = 0;
        let statements: [(&str, i64); 6] = [
            (
                "DELETE FROM oauth_access_tokens WHERE revoked_at < $1
                    OR (expires_at < $1 AND (refresh_digest IS NULL OR refreshed_at IS NOT NULL))",
                now.saturating_sub(SPENT_TOKEN_RETENTION_MS),
            ),
            ("DELETE FROM oauth_access_grants WHERE expires_at < $1", now),
            ("DELETE FROM sessions WHERE expires_at < $1", now),
            (
                "DELETE FROM login_throttles WHERE window_start < $1",
                now.saturating_sub(THROTTLE_RETENTION_MS),
            ),
            ("DELETE FROM device_grants WHERE expires_at < $1", now),
            (
                "DELETE FROM signing_keys WHERE retired_at < $1",
                now.saturating_sub(latchkey_core::oidc::RETIRED_KEY_PUBLISHED_MS),
            ),
        ];
        for (sql, cutoff) in statements {
            total += sqlx::query(sql)
                .bind(cutoff)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?
                .rows_affected();
        }
        tx.commit().await.map_err(map_err)?;
        Ok(total)
    }

    async fn export_rows(
        &self,
        table: &TableSpec,
        after: Option<&Cell>,
        limit: i64,
    ) -> Result<Vec<Vec<Cell>>, StoreError> {
        let (key, key_kind) = table.columns.first().copied().unwrap_or(("id", Kind::Int));
        let sql = match after {
            Some(_) => format!(
                "SELECT {} FROM {} WHERE {key} > $1 ORDER BY {key} LIMIT $2",
                column_list(table),
                table.name
            ),
            None => format!(
                "SELECT {} FROM {} ORDER BY {key} LIMIT $1",
                column_list(table),
                table.name
            ),
        };
        let mut q = sqlx::query(&sql);
        if let Some(c) = after {
            q = bind_cell(q, c, key_kind);
        }
        let rows = q.bind(limit).fetch_all(&self.pool).await.map_err(map_err)?;
        rows.iter()
            .map(|r| cells(r, table.columns))
            .collect::<Result<Vec<_>, _>>()
            .map_err(map_err)
    }

    async fn import_rows(&self, table: &TableSpec, rows: &[Vec<Cell>]) -> Result<(), StoreError> {
        let placeholders = (1..=table.columns.len())
            .map(|i| format!("${i}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "INSERT INTO {} ({}) VALUES ({placeholders})",
            table.name,
            column_list(table)
        );
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        for row in rows {
            let mut q = sqlx::query(&sql);
            for (cell, (_, kind)) in row.iter().zip(table.columns) {
                q = bind_cell(q, cell, *kind);
            }
            q.execute(&mut *tx).await.map_err(map_err)?;
        }
        tx.commit().await.map_err(map_err)
    }

    async fn count_rows(&self, table: &TableSpec) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {}", table.name))
            .fetch_one(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn finish_import(&self) -> Result<(), StoreError> {
        // Imported rows carry their ids; move each sequence past them.
        for table in latchkey_core::dump::TABLES {
            if table.columns.first().map(|(c, _)| *c) != Some("id") {
                continue;
            }
            let sql = format!(
                "SELECT setval(pg_get_serial_sequence('{0}', 'id'), COALESCE((SELECT MAX(id) FROM {0}), 0) + 1, false)",
                table.name
            );
            sqlx::query(&sql)
                .execute(&self.pool)
                .await
                .map_err(map_err)?;
        }
        Ok(())
    }
    async fn insert_signing_key(
        &self,
        k: NewSigningKey,
        only_if_none_active: bool,
    ) -> Result<bool, StoreError> {
        let guard = if only_if_none_active {
            "WHERE NOT EXISTS (SELECT 1 FROM signing_keys WHERE retired_at IS NULL)"
        } else {
            ""
        };
        let done = sqlx::query(&format!(
            "INSERT INTO signing_keys (kid, algorithm, private_pem, public_n, public_e, created_at)
             SELECT $1, $2, $3, $4, $5, $6 {guard}"
        ))
        .bind(&k.kid)
        .bind(&k.algorithm)
        .bind(&k.private_pem)
        .bind(&k.public_n)
        .bind(&k.public_e)
        .bind(k.created_at)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn retire_signing_keys(&self, except_kid: &str, now: i64) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE signing_keys SET retired_at = $1 WHERE retired_at IS NULL AND kid <> $2",
        )
        .bind(now)
        .bind(except_kid)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(done.rows_affected())
    }

    async fn signing_keys(&self, retired_after: i64) -> Result<Vec<SigningKey>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {KEY_COLUMNS} FROM signing_keys WHERE retired_at IS NULL OR retired_at > $1 ORDER BY id DESC"
        ))
        .bind(retired_after)
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(key_from_row)
            .collect::<Result<Vec<_>, _>>()
            .map_err(map_err)
    }

    async fn insert_device_grant(&self, g: NewDeviceGrant) -> Result<DeviceGrant, StoreError> {
        let row = sqlx::query(&format!(
            "INSERT INTO device_grants (application_id, device_code_digest, user_code, scopes, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING {DEVICE_COLUMNS}"
        ))
        .bind(g.application_id)
        .bind(&g.device_code_digest)
        .bind(&g.user_code)
        .bind(g.scopes.joined())
        .bind(g.created_at)
        .bind(g.expires_at)
        .fetch_one(&self.pool)
        .await
        .map_err(map_err)?;
        device_from_row(&row).map_err(map_err)
    }

    async fn find_device_grant_by_user_code(
        &self,
        user_code: &str,
    ) -> Result<Option<DeviceGrant>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {DEVICE_COLUMNS} FROM device_grants WHERE user_code = $1"
        ))
        .bind(user_code)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        row.as_ref()
            .map(device_from_row)
            .transpose()
            .map_err(map_err)
    }

    async fn find_device_grant(
        &self,
        device_code_digest: &str,
    ) -> Result<Option<DeviceGrant>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {DEVICE_COLUMNS} FROM device_grants WHERE device_code_digest = $1"
        ))
        .bind(device_code_digest)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        row.as_ref()
            .map(device_from_row)
            .transpose()
            .map_err(map_err)
    }

    async fn decide_device_grant(
        &self,
        id: i64,
        user_id: i64,
        approve: bool,
        now: i64,
        auth_time: i64,
    ) -> Result<bool, StoreError> {
        let status = if approve {
            DeviceStatus::Approved
        } else {
            DeviceStatus::Denied
        };
        let done = sqlx::query(
            "UPDATE device_grants SET status = $1, user_id = $2, auth_time = $5
             WHERE id = $3 AND status = 'pending' AND expires_at > $4",
        )
        .bind(status.as_str())
        .bind(user_id)
        .bind(id)
        .bind(now)
        .bind(auth_time)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn poll_device_grant(&self, id: i64, now: i64) -> Result<Option<i64>, StoreError> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        let previous: Option<Option<i64>> =
            sqlx::query_scalar("SELECT last_polled_at FROM device_grants WHERE id = $1 FOR UPDATE")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(map_err)?;
        sqlx::query("UPDATE device_grants SET last_polled_at = $1 WHERE id = $2")
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(previous.flatten())
    }

    async fn redeem_device_grant(
        &self,
        id: i64,
        token: NewOAuthToken,
    ) -> Result<Option<OAuthToken>, StoreError> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        let done = sqlx::query("DELETE FROM device_grants WHERE id = $1 AND status = 'approved'")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        let token = insert_oauth_token_on(&mut tx, &token)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(Some(token))
    }

    async fn delete_device_grant(&self, id: i64) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM device_grants WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn find_registration(
        &self,
        client_id: &str,
    ) -> Result<Option<(Application, Option<String>)>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {APP_COLUMNS}, registration_token_digest FROM oauth_applications WHERE uid = $1 AND dynamic"
        ))
        .bind(client_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        let Some(row) = row else { return Ok(None) };
        let app = app_from_row(&row).map_err(map_err)?;
        let digest: Option<String> = row.try_get("registration_token_digest").map_err(map_err)?;
        Ok(Some((app, digest)))
    }

    async fn delete_unused_dynamic_applications(
        &self,
        created_before: i64,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "DELETE FROM oauth_applications a WHERE a.dynamic AND a.created_at < $1
               AND NOT EXISTS (SELECT 1 FROM oauth_access_tokens t WHERE t.application_id = a.id)
               AND NOT EXISTS (SELECT 1 FROM oauth_access_grants g WHERE g.application_id = a.id)",
        )
        .bind(created_before)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(done.rows_affected())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migration_versions_match_sqlite() {
        let versions = |m: &sqlx::migrate::Migrator| -> Vec<(i64, String)> {
            m.iter()
                .map(|m| (m.version, m.description.to_string()))
                .collect()
        };
        let pg = versions(&MIGRATOR);
        let sqlite = versions(&latchkey_sqlite::MIGRATOR);
        assert!(!pg.is_empty());
        assert_eq!(pg, sqlite);
    }

    #[test]
    fn conflicts_name_the_column() {
        let cases = [
            (Some("users"), Some("users_username_key"), "username"),
            (Some("users"), Some("users_email_key"), "email"),
            (
                Some("oauth_applications"),
                Some("oauth_applications_uid_key"),
                "uid",
            ),
            (
                Some("personal_access_tokens"),
                Some("personal_access_tokens_token_digest_key"),
                "token_digest",
            ),
            (None, Some("something_key"), "something"),
            (Some("users"), None, "value"),
        ];
        for (table, constraint, want) in cases {
            assert_eq!(conflict_column(table, constraint), want, "{constraint:?}");
        }
    }

    #[test]
    fn unavailable_codes() {
        for code in [
            "08006", "08001", "53300", "57P01", "57014", "40001", "40P01",
        ] {
            assert!(is_unavailable_code(code), "{code}");
        }
        for code in ["23505", "23503", "42P01", "22P02"] {
            assert!(!is_unavailable_code(code), "{code}");
        }
    }

    #[test]
    fn urls_are_redacted() {
        let cases = [
            (
                "postgres://u:secret@h:5432/db?sslmode=require",
                "postgres://u:***@h:5432/db?sslmode=require",
            ),
            ("postgres://u@h/db", "postgres://u@h/db"),
            ("postgres://h/db", "postgres://h/db"),
            ("postgres://u:p@ss@h/db", "postgres://u:***@h/db"),
            ("not a url", "not a url"),
        ];
        for (url, want) in cases {
            assert_eq!(redact_url(url), want);
        }
        let debug = format!("{:?}", Options::new("postgres://u:secret@h/db"));
        assert!(!debug.contains("secret"), "{debug}");
    }

    #[tokio::test]
    async fn unreachable_server_is_unavailable() {
        // Port 1 on the loopback: nothing listens there.
        let mut opts = Options::new("postgres://postgres@127.0.0.1:1/latchkey");
        opts.acquire_timeout = Duration::from_secs(2);
        match PgStore::connect(&opts).await {
            Err(StoreError::Unavailable(_)) => {}
            other => panic!("expected Unavailable, got {other:?}"),
        }
    }

    #[test]
    fn invalid_url_is_refused() {
        let opts = Options::new("postgres://h:notaport/db");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        match rt.block_on(PgStore::connect(&opts)) {
            Err(StoreError::Other(m)) => assert!(m.contains("invalid PostgreSQL URL"), "{m}"),
            other => panic!("expected Other, got {other:?}"),
        }
    }
}
