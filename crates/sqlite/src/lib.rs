//! latchkey's embedded storage: SQLite through sqlx, with rusqlite where
//! a thread handoff per statement would cost more than the statement.
//!
//! WAL journal, `synchronous = FULL` (an acknowledged write survives a
//! crash of the process or the machine), foreign keys on, a busy timeout.
//! Writes go through one sqlx connection, except the hot inserts
//! (applications, personal access tokens, OAuth tokens), which group commit
//! runs on a rusqlite connection of its own thread; the two take turns (a
//! batch holds the sqlx writer), so they never contend for the database
//! lock inside one process. Reads use a separate pool, and the hot point
//! reads and shallow pages run inline (module `inline`); a fourth connection
//! checkpoints the WAL in the background.

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
    token_from_row, user_from_row, Columns,
};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

mod app_count;
mod group_commit;
mod inline;

use inline::InlineReader;

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// How to open the database.
#[derive(Debug, Clone)]
pub struct Options {
    pub url: String,
    /// Connections for reads (writes always use one).
    pub read_connections: u32,
    /// How long a statement waits for a lock held by another process.
    pub busy_timeout: Duration,
    /// How long a request waits for a free connection.
    pub acquire_timeout: Duration,
}

impl Options {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            read_connections: 4,
            busy_timeout: Duration::from_secs(5),
            acquire_timeout: Duration::from_secs(5),
        }
    }
}

/// Does this `sqlite:` URL name an in-memory database?
fn is_in_memory(url: &str) -> bool {
    let query = url.split_once('?').map_or("", |(_, q)| q);
    url.contains(":memory:") || query.split('&').any(|kv| kv == "mode=memory")
}

/// The file a `sqlite:` URL opens, read as sqlx reads it; `None` for an
/// in-memory database or a URL that is not a valid SQLite one.
pub fn database_file(url: &str) -> Option<std::path::PathBuf> {
    if !url.starts_with("sqlite:") {
        return None;
    }
    let opts = SqliteConnectOptions::from_str(url).ok()?;
    (!is_in_memory(url)).then(|| opts.get_filename().to_path_buf())
}

/// Create the database file readable by its owner only (0600) when it
/// does not exist yet: it holds the OpenID Connect private keys and every
/// digest. SQLite gives the WAL and shared-memory files the database
/// file's permissions. An existing file is left as it is, with a warning
/// when others may read it.
fn create_private(path: &std::path::Path) -> Result<(), StoreError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            if let Ok(meta) = std::fs::metadata(path) {
                if meta.permissions().mode() & 0o077 != 0 {
                    tracing::warn!(
                        path = %path.display(),
                        mode = format!("{:o}", meta.permissions().mode() & 0o777),
                        "the database file may be read by other users; it holds signing keys \
                         and token digests: chmod 600 it (and its -wal and -shm files)"
                    );
                }
            }
            Ok(())
        }
        Err(e) => Err(StoreError::Unavailable(format!(
            "cannot create the database file {}: {e}",
            path.display()
        ))),
    }
}

#[derive(Clone)]
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
    /// Only for background WAL checkpoints (see `spawn_checkpoints`).
    checkpointer: SqlitePool,
    group: group_commit::GroupCommit,
    /// Hot point reads without a thread hop (file databases only).
    inline: Option<std::sync::Arc<InlineReader>>,
    /// The capped count of instance applications (see `app_count`).
    app_count: std::sync::Arc<app_count::AppCount>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("reader", &self.reader)
            .field("inline_reads", &self.inline.is_some())
            .finish_non_exhaustive()
    }
}

fn map_err(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            let msg = db.message();
            // "UNIQUE constraint failed: users.username"
            let what = msg.rsplit('.').next().unwrap_or("value").to_owned();
            StoreError::Conflict(what)
        }
        // SQLITE_CONSTRAINT_TRIGGER: only the keep-an-administrator
        // triggers raise it (migration 0004).
        sqlx::Error::Database(db) if db.code().as_deref() == Some("1811") => {
            StoreError::LastAdministrator
        }
        // SQLITE_CONSTRAINT_FOREIGNKEY: the parent row was deleted first.
        sqlx::Error::Database(db) if db.is_foreign_key_violation() => StoreError::Gone,
        sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
            StoreError::Unavailable(e.to_string())
        }
        sqlx::Error::Database(db)
            if db
                .code()
                .and_then(|c| c.parse::<i32>().ok())
                .is_some_and(|c| {
                    // The primary result code, under any extended code:
                    // SQLITE_BUSY, SQLITE_LOCKED, SQLITE_IOERR, SQLITE_FULL, SQLITE_CANTOPEN.
                    matches!(c & 0xff, 5 | 6 | 10 | 13 | 14)
                }) =>
        {
            StoreError::Unavailable(e.to_string())
        }
        _ => StoreError::Other(e.to_string()),
    }
}

fn migrate_err(e: sqlx::migrate::MigrateError) -> StoreError {
    StoreError::Other(format!("migration failed: {e}"))
}

impl SqliteStore {
    /// A point read on the calling thread (see [`inline`]); `None` when it
    /// must go through the pool instead.
    fn inline_row<T>(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        decode: impl FnOnce(&inline::Lite<'_, '_>) -> rusqlite::Result<T>,
    ) -> Option<Option<T>> {
        self.inline.as_ref()?.query_row(sql, params, decode)
    }

    /// An offset page of instance applications and the capped total, inline
    /// when the page is shallow enough (see `INLINE_MAX_OFFSET`).
    fn list_inline(&self, page: PageRequest) -> Option<(Vec<Application>, i64)> {
        if page.offset() > INLINE_MAX_OFFSET || page.limit() > INLINE_MAX_ROWS {
            return None;
        }
        let known = self.app_count.get();
        let ticket = self.app_count.ticket();
        let (apps, total) = self.inline.as_ref()?.read(|conn| {
            // One read transaction: a total counted here agrees with the
            // page; a remembered one may lag a create or delete that lands
            // between reading it and this snapshot (as totals do elsewhere).
            inline::in_snapshot(conn, |conn| {
                let total: i64 = match known {
                    Some(n) => n,
                    None => conn
                        .prepare_cached(&LIST_COUNT_SQL)?
                        .query_row([], |r| r.get(0))?,
                };
                let apps =
                    inline::rows(conn, &LIST_PAGE_SQL, [page.limit(), page.offset()], |row| {
                        app_from_row(row)
                    })?;
                Ok((apps, total))
            })
        })?;
        if known.is_none() {
            self.app_count.put(ticket, total);
        }
        Some((apps, total))
    }

    /// A keyset page of instance applications, inline when it is a page
    /// (not a streaming batch).
    fn after_inline(&self, after_id: i64, limit: i64) -> Option<Vec<Application>> {
        if limit > INLINE_MAX_ROWS {
            return None;
        }
        self.inline.as_ref()?.read(|conn| {
            inline::rows(conn, &APPS_AFTER_SQL, [after_id, limit], |row| {
                app_from_row(row)
            })
        })
    }

    /// Open (creating the file if needed) without migrating.
    pub async fn connect(opts: &Options) -> Result<Self, StoreError> {
        if let Some(path) = database_file(&opts.url) {
            create_private(&path)?;
        }
        let base = SqliteConnectOptions::from_str(&opts.url)
            .map_err(|e| StoreError::Other(format!("invalid SQLite URL {:?}: {e}", opts.url)))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(opts.busy_timeout);
        // No ping before each acquire: these are local file handles that
        // cannot go stale like network connections, and the ping is a
        // thread round trip on every request.
        // SQLite's auto-checkpoint runs inside a group commit's COMMIT
        // (copying the WAL into the database file and fsyncing it while every
        // writer of the batch waits). A separate connection checkpoints in
        // the background (`spawn_checkpoints`), so by then there is little
        // or nothing left to copy; the writer's own checkpoint stays on
        // because only a checkpoint that completes lets the WAL restart
        // (with it off the WAL grew without bound under constant writes).
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .test_before_acquire(false)
            .acquire_timeout(opts.acquire_timeout)
            .connect_with(base.clone())
            .await
            .map_err(map_err)?;
        let checkpointer = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .acquire_timeout(opts.acquire_timeout)
            .connect_with(base.clone())
            .await
            .map_err(map_err)?;
        let reader = SqlitePoolOptions::new()
            .max_connections(opts.read_connections.max(1))
            .test_before_acquire(false)
            .acquire_timeout(opts.acquire_timeout)
            .connect_with(base.clone().read_only(true))
            .await
            .map_err(map_err)?;
        let path = base.get_filename().to_path_buf();
        let in_memory = is_in_memory(&opts.url);
        let group =
            group_commit::GroupCommit::start(&path, in_memory, opts.busy_timeout, writer.clone())?;
        spawn_checkpoints(checkpointer.clone());
        let inline = (!in_memory)
            .then(|| std::sync::Arc::new(InlineReader::new(path, opts.read_connections as usize)));
        Ok(Self {
            writer,
            reader,
            checkpointer,
            group,
            inline,
            app_count: std::sync::Arc::default(),
        })
    }

    /// Apply every pending migration.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR.run(&self.writer).await.map_err(migrate_err)
    }

    /// The newest migration version applied, if any.
    pub async fn schema_version(&self) -> Result<Option<i64>, StoreError> {
        let exists: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations')",
        )
        .fetch_one(&self.reader)
        .await
        .map_err(map_err)?;
        if !exists {
            return Ok(None);
        }
        sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success")
            .fetch_one(&self.reader)
            .await
            .map_err(map_err)
    }

    pub async fn close(&self) {
        self.writer.close().await;
        self.reader.close().await;
        self.checkpointer.close().await;
    }
}

/// How often the WAL is checkpointed in the background (a checkpoint with
/// nothing to copy costs next to nothing; often enough that the writer's
/// own auto-checkpoint, every 1000 pages, finds the work done).
const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);

/// Checkpoint the WAL in the background, on a connection of its own, so the
/// copying and the database file's fsync happen beside the writer rather
/// than inside a commit. (SQLite's auto-checkpoint also runs only when a
/// statement is stepped to its end, which `RETURNING` writes read with
/// `fetch_one` never do.) PASSIVE never blocks readers or the writer:
/// writes go on appending to the WAL while it copies.
fn spawn_checkpoints(writer: SqlitePool) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
        tick.tick().await;
        loop {
            tick.tick().await;
            if writer.is_closed() {
                break;
            }
            if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                .execute(&writer)
                .await
            {
                tracing::debug!(error = %e, "WAL checkpoint failed");
            }
        }
    });
}

const APP_COLUMNS: &str =
    "id, uid, name, redirect_uri, scopes, confidential, trusted, owner_id, created_at, dynamic, \
     grant_types";
const USER_COLUMNS: &str = "id, username, email, name, admin, state, created_at";
const TOKEN_COLUMNS: &str = "id, user_id, name, scopes, expires_at, revoked, created_at";

const GRANT_COLUMNS: &str = "id, application_id, user_id, redirect_uri, scopes, code_challenge, \
     code_challenge_method, nonce, created_at, expires_at, redeemed_at, auth_time";
const OAUTH_TOKEN_COLUMNS: &str =
    "id, application_id, user_id, refresh_digest IS NOT NULL AS has_refresh, scopes, \
     created_at, expires_at, revoked_at, refreshed_at, family, previous_token_id, grant_id, auth_time";

async fn insert_oauth_token_on(
    conn: &mut sqlx::SqliteConnection,
    t: &NewOAuthToken,
) -> Result<OAuthToken, sqlx::Error> {
    let row = sqlx::query(&INSERT_OAUTH_TOKEN_SQL)
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

/// A token with its application and (optional) user, by one digest column.
/// An OAuth token with its application and user, by one of its digests.
macro_rules! oauth_token_by {
    ($column:literal) => {
        concat!(
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
             WHERE t.",
            $column,
            " = ?"
        )
    };
}
const OAUTH_TOKEN_BY_ACCESS_SQL: &str = oauth_token_by!("token_digest");
const OAUTH_TOKEN_BY_REFRESH_SQL: &str = oauth_token_by!("refresh_digest");

fn oauth_found<R: Columns>(row: &R) -> Result<OAuthTokenFound, R::Error> {
    let user = match row.get_opt_i64("u_id")? {
        Some(_) => Some(user_from_row(row, "u_")?),
        None => None,
    };
    Ok(OAuthTokenFound {
        token: oauth_token_from_row(row, "t_")?,
        application: app_from_row(row)?,
        user,
    })
}

const TOKEN_WITH_OWNER_SQL: &str =
    "SELECT t.id, t.user_id, t.name, t.scopes, t.expires_at, t.revoked, t.created_at,
            u.id AS u_id, u.username AS u_username, u.email AS u_email, u.name AS u_name,
            u.admin AS u_admin, u.state AS u_state, u.created_at AS u_created_at
     FROM personal_access_tokens t JOIN users u ON u.id = t.user_id
     WHERE t.token_digest = ?";

fn token_with_owner<R: Columns>(row: &R) -> Result<TokenWithOwner, R::Error> {
    Ok(TokenWithOwner {
        token: token_from_row(row)?,
        user: user_from_row(row, "u_")?,
    })
}

/// Reads run inline only while their work is bounded (they run on an async
/// worker): pages of at most this many rows...
const INLINE_MAX_ROWS: i64 = latchkey_core::pagination::MAX_PER_PAGE as i64;
/// ...and offsets up to this (an offset walks that many index entries;
/// deeper pages go to the pool's threads).
const INLINE_MAX_OFFSET: i64 = 10_000;

/// Instance applications: the capped total (GitLab leaves `X-Total` out
/// above `COUNT_CAP`) and one offset page.
static LIST_COUNT_SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "SELECT COUNT(*) FROM (SELECT 1 FROM oauth_applications WHERE owner_id IS NULL LIMIT {}) AS capped",
        latchkey_core::store::COUNT_CAP + 1
    )
});
static LIST_PAGE_SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "SELECT {APP_COLUMNS} FROM oauth_applications WHERE id IN
           (SELECT id FROM oauth_applications WHERE owner_id IS NULL ORDER BY id LIMIT ? OFFSET ?)
         ORDER BY id"
    )
});
/// A new personal access token, returned as stored (group commit, and
/// inside rotations and the bootstrap).
const INSERT_TOKEN_SQL: &str =
    "INSERT INTO personal_access_tokens (user_id, name, token_digest, scopes, expires_at, revoked, created_at)
     VALUES (?, ?, ?, ?, ?, 0, ?)
     RETURNING id, user_id, name, scopes, expires_at, revoked, created_at";
/// A new OAuth token, returned as stored (group commit, and inside
/// refreshes and code redemptions).
static INSERT_OAUTH_TOKEN_SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "INSERT INTO oauth_access_tokens
           (application_id, user_id, token_digest, refresh_digest, scopes, created_at, expires_at,
            family, previous_token_id, grant_id, auth_time)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING {OAUTH_TOKEN_COLUMNS}"
    )
});
/// A new application, returned as stored.
static INSERT_APP_SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "INSERT INTO oauth_applications
           (uid, name, secret_digest, redirect_uri, scopes, confidential, trusted, owner_id,
            created_at, updated_at, dynamic, registration_token_digest, grant_types)
         VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?, ?) RETURNING {APP_COLUMNS}"
    )
});
/// An application by client_id, with its secret's digest.
static APP_BY_UID_SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!("SELECT {APP_COLUMNS}, secret_digest FROM oauth_applications WHERE uid = ?")
});

fn app_with_secret_digest<R: Columns>(row: &R) -> Result<(Application, String), R::Error> {
    Ok((app_from_row(row)?, row.get_text("secret_digest")?))
}

/// A keyset page of instance applications.
static APPS_AFTER_SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "SELECT {APP_COLUMNS} FROM oauth_applications
         WHERE owner_id IS NULL AND id > ? ORDER BY id LIMIT ?"
    )
});

/// `find_application`'s statements, one per [`Ownership`] (see `ownership_clause`).
macro_rules! find_app {
    ($clause:literal) => {
        concat!(
            "SELECT id, uid, name, redirect_uri, scopes, confidential, trusted, owner_id, \
             created_at, dynamic, grant_types FROM oauth_applications WHERE id = ?",
            $clause
        )
    };
}
const FIND_INSTANCE_APP_SQL: &str = find_app!(" AND owner_id IS NULL");
const FIND_ANY_APP_SQL: &str = find_app!("");

async fn find_oauth_token_by(
    pool: &SqlitePool,
    sql: &str,
    digest: &str,
) -> Result<Option<OAuthTokenFound>, StoreError> {
    let row = sqlx::query(sql)
        .bind(digest)
        .fetch_optional(pool)
        .await
        .map_err(map_err)?;
    row.as_ref().map(oauth_found).transpose().map_err(map_err)
}

/// Keep revoked and spent tokens this long (for refresh-reuse detection).
const SPENT_TOKEN_RETENTION_MS: i64 = 7 * 24 * 3600 * 1000;
/// Forget sign-in counters this long after their window started.
const THROTTLE_RETENTION_MS: i64 = 3600 * 1000;

fn column_list(table: &TableSpec) -> String {
    table
        .columns
        .iter()
        .map(|(c, _)| *c)
        .collect::<Vec<_>>()
        .join(", ")
}

type SqliteQuery<'q> = sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>>;

fn bind_cell<'q>(q: SqliteQuery<'q>, cell: &Cell, kind: Kind) -> SqliteQuery<'q> {
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
    conn: &mut sqlx::SqliteConnection,
    user_id: i64,
    t: &NewToken,
) -> Result<PersonalAccessToken, sqlx::Error> {
    let row = sqlx::query(INSERT_TOKEN_SQL)
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

async fn insert_user_on(
    conn: &mut sqlx::SqliteConnection,
    u: &NewUser,
) -> Result<User, sqlx::Error> {
    let row = sqlx::query(&format!(
        "INSERT INTO users (username, email, name, password_digest, admin, state, created_at)
         VALUES (?, ?, ?, ?, ?, 'active', ?) RETURNING {USER_COLUMNS}"
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

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> Result<(), StoreError> {
        // Readiness also covers the group-commit thread: without it no
        // application or token can be created.
        self.group.check()?;
        sqlx::query("SELECT 1")
            .execute(&self.reader)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn insert_application(&self, a: NewApplication) -> Result<Application, StoreError> {
        let owned = a.owner_id.is_some();
        // The hot durable write: it goes through group commit.
        let created = self
            .group
            .write(move |conn| {
                inline::returned_row(
                    conn,
                    &INSERT_APP_SQL,
                    rusqlite::params![
                        a.application_id,
                        a.name,
                        a.secret_digest,
                        a.redirect_uri,
                        a.scopes.joined(),
                        a.confidential,
                        a.owner_id,
                        a.created_at,
                        a.created_at,
                        a.dynamic,
                        a.registration_token_digest,
                        join_grant_types(&a.grant_types),
                    ],
                    |row| app_from_row(row),
                )
            })
            .await;
        if !owned {
            self.app_count.invalidate();
        }
        created
    }

    async fn list_instance_applications(
        &self,
        page: PageRequest,
    ) -> Result<(Vec<Application>, u64), StoreError> {
        if let Some((apps, total)) = self.list_inline(page) {
            return Ok((apps, u64::try_from(total).unwrap_or(0)));
        }
        let (count_sql, page_sql) = (&*LIST_COUNT_SQL, &*LIST_PAGE_SQL);
        let total: i64 = match self.app_count.get() {
            Some(n) => n,
            None => {
                let ticket = self.app_count.ticket();
                let n = sqlx::query_scalar(count_sql)
                    .fetch_one(&self.reader)
                    .await
                    .map_err(map_err)?;
                self.app_count.put(ticket, n);
                n
            }
        };
        let rows = sqlx::query(page_sql)
            .bind(page.limit())
            .bind(page.offset())
            .fetch_all(&self.reader)
            .await
            .map_err(map_err)?;
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
        if let Some(apps) = self.after_inline(after_id, limit) {
            return Ok(apps);
        }
        let sql = &*APPS_AFTER_SQL;
        let rows = sqlx::query(sql)
            .bind(after_id)
            .bind(limit)
            .fetch_all(&self.reader)
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
        let sql = match scope {
            Ownership::Instance => FIND_INSTANCE_APP_SQL,
            Ownership::Any => FIND_ANY_APP_SQL,
        };
        if let Some(found) = self.inline_row(sql, [id], |row| app_from_row(row)) {
            return Ok(found);
        }
        let row = sqlx::query(sql)
            .bind(id)
            .fetch_optional(&self.reader)
            .await
            .map_err(map_err)?;
        row.as_ref().map(app_from_row).transpose().map_err(map_err)
    }

    async fn delete_application(&self, id: i64, scope: Ownership) -> Result<bool, StoreError> {
        let done = sqlx::query(&format!(
            "DELETE FROM oauth_applications WHERE id = ?{}",
            ownership_clause(scope)
        ))
        .bind(id)
        .execute(&self.writer)
        .await;
        self.app_count.invalidate();
        Ok(done.map_err(map_err)?.rows_affected() > 0)
    }

    async fn renew_application_secret(
        &self,
        id: i64,
        scope: Ownership,
        secret_digest: &str,
    ) -> Result<Option<Application>, StoreError> {
        let row = sqlx::query(&format!(
            "UPDATE oauth_applications SET secret_digest = ? WHERE id = ?{} RETURNING {APP_COLUMNS}",
            ownership_clause(scope)
        ))
        .bind(secret_digest)
        .bind(id)
        .fetch_optional(&self.writer)
        .await
        .map_err(map_err)?;
        row.as_ref().map(app_from_row).transpose().map_err(map_err)
    }

    async fn list_owned_applications(
        &self,
        owner_id: i64,
        page: PageRequest,
    ) -> Result<(Vec<Application>, u64), StoreError> {
        let mut tx = self.reader.begin().await.map_err(map_err)?;
        let total: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM oauth_applications WHERE owner_id = ?")
                .bind(owner_id)
                .fetch_one(&mut *tx)
                .await
                .map_err(map_err)?;
        let rows = sqlx::query(&format!(
            "SELECT {APP_COLUMNS} FROM oauth_applications WHERE owner_id = ? ORDER BY id LIMIT ? OFFSET ?"
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
        let row = sqlx::query(&format!(
            "UPDATE oauth_applications
             SET name = COALESCE(?, name), scopes = COALESCE(?, scopes),
                 redirect_uri = COALESCE(?, redirect_uri), confidential = COALESCE(?, confidential),
                 trusted = COALESCE(?, trusted), updated_at = ?,
                 grant_types = COALESCE(?, grant_types)
             WHERE id = ? RETURNING {APP_COLUMNS}"
        ))
        .bind(update.name)
        .bind(update.scopes.map(|s| s.joined()))
        .bind(update.redirect_uri)
        .bind(update.confidential)
        .bind(update.trusted)
        .bind(updated_at)
        .bind(join_grant_types(&update.grant_types))
        .bind(id)
        .fetch_optional(&self.writer)
        .await
        .map_err(map_err)?;
        row.as_ref().map(app_from_row).transpose().map_err(map_err)
    }

    async fn find_application_by_uid(
        &self,
        application_id: &str,
    ) -> Result<Option<(Application, String)>, StoreError> {
        // Every client authentication at /oauth/token starts here.
        if let Some(found) = self.inline_row(&APP_BY_UID_SQL, [application_id], |row| {
            app_with_secret_digest(row)
        }) {
            return Ok(found);
        }
        let row = sqlx::query(&APP_BY_UID_SQL)
            .bind(application_id)
            .fetch_optional(&self.reader)
            .await
            .map_err(map_err)?;
        row.as_ref()
            .map(app_with_secret_digest)
            .transpose()
            .map_err(map_err)
    }

    async fn insert_user(&self, user: NewUser) -> Result<User, StoreError> {
        let mut conn = self.writer.acquire().await.map_err(map_err)?;
        insert_user_on(&mut conn, &user).await.map_err(map_err)
    }

    async fn find_user(&self, id: i64) -> Result<Option<User>, StoreError> {
        let row = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?"))
            .bind(id)
            .fetch_optional(&self.reader)
            .await
            .map_err(map_err)?;
        row.as_ref()
            .map(|r| user_from_row(r, ""))
            .transpose()
            .map_err(map_err)
    }

    async fn find_user_by_username(&self, username: &str) -> Result<Option<User>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE username = ?"
        ))
        .bind(username)
        .fetch_optional(&self.reader)
        .await
        .map_err(map_err)?;
        row.as_ref()
            .map(|r| user_from_row(r, ""))
            .transpose()
            .map_err(map_err)
    }

    async fn set_user_state(&self, id: i64, state: UserState) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE users SET state = ? WHERE id = ?")
            .bind(state.as_str())
            .bind(id)
            .execute(&self.writer)
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
        let clause = "WHERE (?1 IS NULL OR username = ?1)
                        AND (?2 IS NULL OR username LIKE ?2 ESCAPE '\\' OR name LIKE ?2 ESCAPE '\\'
                             OR (?3 AND email LIKE ?2 ESCAPE '\\'))";
        let mut tx = self.reader.begin().await.map_err(map_err)?;
        let total: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM users {clause}"))
            .bind(&filter.username)
            .bind(&search)
            .bind(filter.search_emails)
            .fetch_one(&mut *tx)
            .await
            .map_err(map_err)?;
        let rows = sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM users {clause} ORDER BY id DESC LIMIT ?4 OFFSET ?5"
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
        let row = sqlx::query(&format!(
            "UPDATE users SET username = COALESCE(?, username), email = COALESCE(?, email),
                    name = COALESCE(?, name), password_digest = COALESCE(?, password_digest),
                    admin = COALESCE(?, admin)
             WHERE id = ? RETURNING {USER_COLUMNS}"
        ))
        .bind(u.username)
        .bind(u.email)
        .bind(u.name)
        .bind(u.password_digest)
        .bind(u.admin)
        .bind(id)
        .fetch_optional(&self.writer)
        .await
        .map_err(map_err)?;
        row.as_ref()
            .map(|r| user_from_row(r, ""))
            .transpose()
            .map_err(map_err)
    }

    async fn delete_user(&self, id: i64) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM users WHERE id = ?")
            .bind(id)
            .execute(&self.writer)
            .await;
        self.app_count.invalidate();
        Ok(done.map_err(map_err)?.rows_affected() > 0)
    }

    async fn bootstrap_first_user(
        &self,
        user: NewUser,
        token: NewToken,
    ) -> Result<Option<(User, PersonalAccessToken)>, StoreError> {
        let mut tx = self
            .writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(map_err)?;
        let any: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM users)")
            .fetch_one(&mut *tx)
            .await
            .map_err(map_err)?;
        if any {
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
        self.group
            .write(move |conn| {
                inline::returned_row(
                    conn,
                    INSERT_TOKEN_SQL,
                    rusqlite::params![
                        token.user_id,
                        token.name,
                        token.digest,
                        token.scopes.joined(),
                        token.expires_at.map(|d| d.to_string()),
                        token.created_at,
                    ],
                    |row| token_from_row(row),
                )
            })
            .await
    }

    async fn find_token_by_digest(
        &self,
        digest: &str,
    ) -> Result<Option<TokenWithOwner>, StoreError> {
        if let Some(found) =
            self.inline_row(TOKEN_WITH_OWNER_SQL, [digest], |row| token_with_owner(row))
        {
            return Ok(found);
        }
        let row = sqlx::query(TOKEN_WITH_OWNER_SQL)
            .bind(digest)
            .fetch_optional(&self.reader)
            .await
            .map_err(map_err)?;
        row.as_ref()
            .map(token_with_owner)
            .transpose()
            .map_err(map_err)
    }

    async fn revoke_token(&self, id: i64) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE personal_access_tokens SET revoked = 1 WHERE id = ?")
            .bind(id)
            .execute(&self.writer)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn find_token(&self, id: i64) -> Result<Option<PersonalAccessToken>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {TOKEN_COLUMNS} FROM personal_access_tokens WHERE id = ?"
        ))
        .bind(id)
        .fetch_optional(&self.reader)
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
        let mut tx = self.reader.begin().await.map_err(map_err)?;
        let total: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM personal_access_tokens WHERE (?1 IS NULL OR user_id = ?1)",
        )
        .bind(user_id)
        .fetch_one(&mut *tx)
        .await
        .map_err(map_err)?;
        let rows = sqlx::query(&format!(
            "SELECT {TOKEN_COLUMNS} FROM personal_access_tokens WHERE (?1 IS NULL OR user_id = ?1)
             ORDER BY id LIMIT ?2 OFFSET ?3"
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
        let mut tx = self
            .writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(map_err)?;
        let done = sqlx::query(
            "UPDATE personal_access_tokens SET revoked = 1 WHERE id = ? AND revoked = 0",
        )
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        if done.rows_affected() == 0 {
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
        let row = sqlx::query(&format!(
            "SELECT {USER_COLUMNS}, password_digest FROM users WHERE username = ?1 OR email = ?1 ORDER BY username = ?1 DESC LIMIT 1"
        ))
        .bind(login)
        .fetch_optional(&self.reader)
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
        let n: i64 = sqlx::query_scalar(
            "INSERT INTO login_throttles (key, failures, window_start) VALUES (?1, 1, ?2)
             ON CONFLICT (key) DO UPDATE SET
               failures = CASE WHEN login_throttles.window_start <= ?2 - ?3 THEN 1 ELSE login_throttles.failures + 1 END,
               window_start = CASE WHEN login_throttles.window_start <= ?2 - ?3 THEN ?2 ELSE login_throttles.window_start END
             RETURNING failures",
        )
        .bind(key)
        .bind(now)
        .bind(window_ms)
        .fetch_one(&self.writer)
        .await
        .map_err(map_err)?;
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    async fn login_failures(&self, key: &str, now: i64, window_ms: i64) -> Result<u32, StoreError> {
        let n: Option<i64> = sqlx::query_scalar(
            "SELECT failures FROM login_throttles WHERE key = ? AND window_start > ?",
        )
        .bind(key)
        .bind(now - window_ms)
        .fetch_optional(&self.reader)
        .await
        .map_err(map_err)?;
        Ok(n.map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX)))
    }

    async fn clear_login_failures(&self, key: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM login_throttles WHERE key = ?")
            .bind(key)
            .execute(&self.writer)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn insert_session(&self, s: NewSession) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sessions (digest, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)",
        )
        .bind(&s.digest)
        .bind(s.user_id)
        .bind(s.created_at)
        .bind(s.expires_at)
        .execute(&self.writer)
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
             FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.digest = ? AND s.expires_at > ?",
        )
        .bind(digest)
        .bind(now)
        .fetch_optional(&self.reader)
        .await
        .map_err(map_err)?;
        let Some(row) = row else { return Ok(None) };
        let user = user_from_row(&row, "").map_err(map_err)?;
        let at: i64 = row.try_get("signed_in_at").map_err(map_err)?;
        Ok(Some((user, at)))
    }

    async fn delete_session(&self, digest: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM sessions WHERE digest = ?")
            .bind(digest)
            .execute(&self.writer)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn delete_user_sessions(
        &self,
        user_id: i64,
        keep: Option<&str>,
    ) -> Result<u64, StoreError> {
        let done =
            sqlx::query("DELETE FROM sessions WHERE user_id = ?1 AND (?2 IS NULL OR digest <> ?2)")
                .bind(user_id)
                .bind(keep)
                .execute(&self.writer)
                .await
                .map_err(map_err)?;
        Ok(done.rows_affected())
    }

    async fn insert_grant(&self, g: NewGrant) -> Result<Grant, StoreError> {
        let row = sqlx::query(&format!(
            "INSERT INTO oauth_access_grants
               (application_id, user_id, code_digest, redirect_uri, scopes, code_challenge,
                code_challenge_method, nonce, created_at, expires_at, auth_time)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING {GRANT_COLUMNS}"
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
        .fetch_one(&self.writer)
        .await
        .map_err(map_err)?;
        grant_from_row(&row).map_err(map_err)
    }

    async fn find_grant(&self, code_digest: &str) -> Result<Option<Grant>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {GRANT_COLUMNS} FROM oauth_access_grants WHERE code_digest = ?"
        ))
        .bind(code_digest)
        .fetch_optional(&self.reader)
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
        let mut tx = self
            .writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(map_err)?;
        let done = sqlx::query(
            "UPDATE oauth_access_grants SET redeemed_at = ? WHERE id = ? AND redeemed_at IS NULL",
        )
        .bind(now)
        .bind(grant_id)
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

    async fn revoke_grant_tokens(&self, grant_id: i64, now: i64) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE oauth_access_tokens SET revoked_at = ?
             WHERE revoked_at IS NULL AND family IN (SELECT family FROM oauth_access_tokens WHERE grant_id = ?)",
        )
        .bind(now)
        .bind(grant_id)
        .execute(&self.writer)
        .await
        .map_err(map_err)?;
        Ok(done.rows_affected())
    }

    async fn insert_oauth_token(&self, token: NewOAuthToken) -> Result<OAuthToken, StoreError> {
        self.group
            .write(move |conn| {
                inline::returned_row(
                    conn,
                    &INSERT_OAUTH_TOKEN_SQL,
                    rusqlite::params![
                        token.application_id,
                        token.user_id,
                        token.token_digest,
                        token.refresh_digest,
                        token.scopes.joined(),
                        token.created_at,
                        token.expires_at,
                        token.family,
                        token.previous_token_id,
                        token.grant_id,
                        token.auth_time,
                    ],
                    |row| oauth_token_from_row(row, ""),
                )
            })
            .await
    }

    async fn find_oauth_token_by_access(
        &self,
        digest: &str,
    ) -> Result<Option<OAuthTokenFound>, StoreError> {
        if let Some(found) =
            self.inline_row(OAUTH_TOKEN_BY_ACCESS_SQL, [digest], |row| oauth_found(row))
        {
            return Ok(found);
        }
        find_oauth_token_by(&self.reader, OAUTH_TOKEN_BY_ACCESS_SQL, digest).await
    }

    async fn find_oauth_token_by_refresh(
        &self,
        digest: &str,
    ) -> Result<Option<OAuthTokenFound>, StoreError> {
        find_oauth_token_by(&self.reader, OAUTH_TOKEN_BY_REFRESH_SQL, digest).await
    }

    async fn refresh_oauth_token(
        &self,
        old_id: i64,
        now: i64,
        new: NewOAuthToken,
    ) -> Result<Option<OAuthToken>, StoreError> {
        let mut tx = self
            .writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(map_err)?;
        let done = sqlx::query(
            "UPDATE oauth_access_tokens SET refreshed_at = ?
             WHERE id = ? AND refreshed_at IS NULL AND revoked_at IS NULL AND refresh_digest IS NOT NULL",
        )
        .bind(now)
        .bind(old_id)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        if done.rows_affected() == 0 {
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
            "UPDATE oauth_access_tokens SET revoked_at = ? WHERE family = ? AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(family)
        .execute(&self.writer)
        .await
        .map_err(map_err)?;
        Ok(done.rows_affected())
    }

    async fn revoke_oauth_token(&self, id: i64, now: i64) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE oauth_access_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(id)
        .execute(&self.writer)
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
        let mut tx = self
            .writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(map_err)?;
        sqlx::query(
            "UPDATE oauth_access_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(previous_id)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        sqlx::query("UPDATE oauth_access_tokens SET previous_token_id = NULL WHERE id = ?")
            .bind(token_id)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)
    }

    async fn delete_expired(&self, now: i64) -> Result<u64, StoreError> {
        let mut tx = self
            .writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(map_err)?;
        let mut total = 0;
        let statements: [(&str, i64); 6] = [
            (
                "DELETE FROM oauth_access_tokens WHERE revoked_at < ?1
                    OR (expires_at < ?1 AND (refresh_digest IS NULL OR refreshed_at IS NOT NULL))",
                now - SPENT_TOKEN_RETENTION_MS,
            ),
            ("DELETE FROM oauth_access_grants WHERE expires_at < ?1", now),
            ("DELETE FROM sessions WHERE expires_at < ?1", now),
            (
                "DELETE FROM login_throttles WHERE window_start < ?1",
                now - THROTTLE_RETENTION_MS,
            ),
            ("DELETE FROM device_grants WHERE expires_at < ?1", now),
            (
                "DELETE FROM signing_keys WHERE retired_at < ?1",
                now - latchkey_core::oidc::RETIRED_KEY_PUBLISHED_MS,
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
        let key = table.columns.first().map_or("rowid", |(c, _)| *c);
        let sql = format!(
            "SELECT {} FROM {} WHERE ?1 IS NULL OR {key} > ?1 ORDER BY {key} LIMIT ?2",
            column_list(table),
            table.name
        );
        let mut q = sqlx::query(&sql);
        q = match after {
            Some(c) => bind_cell(q, c, table.columns.first().map_or(Kind::Int, |(_, k)| *k)),
            None => q.bind(None::<i64>),
        };
        let rows = q
            .bind(limit)
            .fetch_all(&self.reader)
            .await
            .map_err(map_err)?;
        rows.iter()
            .map(|r| cells(r, table.columns))
            .collect::<Result<Vec<_>, _>>()
            .map_err(map_err)
    }

    async fn import_rows(&self, table: &TableSpec, rows: &[Vec<Cell>]) -> Result<(), StoreError> {
        let placeholders = vec!["?"; table.columns.len()].join(", ");
        let sql = format!(
            "INSERT INTO {} ({}) VALUES ({placeholders})",
            table.name,
            column_list(table)
        );
        let mut tx = self
            .writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(map_err)?;
        for row in rows {
            let mut q = sqlx::query(&sql);
            for (cell, (_, kind)) in row.iter().zip(table.columns) {
                q = bind_cell(q, cell, *kind);
            }
            q.execute(&mut *tx).await.map_err(map_err)?;
        }
        let committed = tx.commit().await.map_err(map_err);
        self.app_count.invalidate();
        committed
    }

    async fn count_rows(&self, table: &TableSpec) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {}", table.name))
            .fetch_one(&self.reader)
            .await
            .map_err(map_err)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn finish_import(&self) -> Result<(), StoreError> {
        // AUTOINCREMENT tables track the largest id inserted by themselves.
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
             SELECT ?, ?, ?, ?, ?, ? {guard}"
        ))
        .bind(&k.kid)
        .bind(&k.algorithm)
        .bind(&k.private_pem)
        .bind(&k.public_n)
        .bind(&k.public_e)
        .bind(k.created_at)
        .execute(&self.writer)
        .await
        .map_err(map_err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn retire_signing_keys(&self, except_kid: &str, now: i64) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE signing_keys SET retired_at = ? WHERE retired_at IS NULL AND kid <> ?",
        )
        .bind(now)
        .bind(except_kid)
        .execute(&self.writer)
        .await
        .map_err(map_err)?;
        Ok(done.rows_affected())
    }

    async fn signing_keys(&self, retired_after: i64) -> Result<Vec<SigningKey>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {KEY_COLUMNS} FROM signing_keys WHERE retired_at IS NULL OR retired_at > ? ORDER BY id DESC"
        ))
        .bind(retired_after)
        .fetch_all(&self.reader)
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
             VALUES (?, ?, ?, ?, ?, ?) RETURNING {DEVICE_COLUMNS}"
        ))
        .bind(g.application_id)
        .bind(&g.device_code_digest)
        .bind(&g.user_code)
        .bind(g.scopes.joined())
        .bind(g.created_at)
        .bind(g.expires_at)
        .fetch_one(&self.writer)
        .await
        .map_err(map_err)?;
        device_from_row(&row).map_err(map_err)
    }

    async fn find_device_grant_by_user_code(
        &self,
        user_code: &str,
    ) -> Result<Option<DeviceGrant>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {DEVICE_COLUMNS} FROM device_grants WHERE user_code = ?"
        ))
        .bind(user_code)
        .fetch_optional(&self.reader)
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
            "SELECT {DEVICE_COLUMNS} FROM device_grants WHERE device_code_digest = ?"
        ))
        .bind(device_code_digest)
        .fetch_optional(&self.reader)
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
            "UPDATE device_grants SET status = ?, user_id = ?, auth_time = ?
             WHERE id = ? AND status = 'pending' AND expires_at > ?",
        )
        .bind(status.as_str())
        .bind(user_id)
        .bind(auth_time)
        .bind(id)
        .bind(now)
        .execute(&self.writer)
        .await
        .map_err(map_err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn poll_device_grant(&self, id: i64, now: i64) -> Result<Option<i64>, StoreError> {
        let mut tx = self
            .writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(map_err)?;
        let previous: Option<Option<i64>> =
            sqlx::query_scalar("SELECT last_polled_at FROM device_grants WHERE id = ?")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(map_err)?;
        sqlx::query("UPDATE device_grants SET last_polled_at = ? WHERE id = ?")
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
        let mut tx = self
            .writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(map_err)?;
        let done = sqlx::query("DELETE FROM device_grants WHERE id = ? AND status = 'approved'")
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
        sqlx::query("DELETE FROM device_grants WHERE id = ?")
            .bind(id)
            .execute(&self.writer)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn find_registration(
        &self,
        client_id: &str,
    ) -> Result<Option<(Application, Option<String>)>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {APP_COLUMNS}, registration_token_digest FROM oauth_applications WHERE uid = ? AND dynamic = 1"
        ))
        .bind(client_id)
        .fetch_optional(&self.reader)
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
            "DELETE FROM oauth_applications WHERE dynamic = 1 AND created_at < ?
               AND NOT EXISTS (SELECT 1 FROM oauth_access_tokens t WHERE t.application_id = oauth_applications.id)
               AND NOT EXISTS (SELECT 1 FROM oauth_access_grants g WHERE g.application_id = oauth_applications.id)",
        )
        .bind(created_before)
        .execute(&self.writer)
        .await;
        self.app_count.invalidate();
        Ok(done.map_err(map_err)?.rows_affected())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use latchkey_core::scopes::Scopes;

    /// The inline path must answer by itself (the pool fallback would hide
    /// a broken one), with the same rows the pool gives.
    #[tokio::test]
    async fn point_reads_are_answered_inline_with_the_pools_answer() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let store = SqliteStore::connect(&Options::new(&url)).await.unwrap();
        store.migrate().await.unwrap();
        let app = store
            .insert_application(new_app(&"a".repeat(64)))
            .await
            .unwrap();
        let inline = store
            .inline_row(FIND_ANY_APP_SQL, [app.id], |row| app_from_row(row))
            .expect("answered inline");
        assert_eq!(inline.as_ref(), Some(&app));
        let missing = store
            .inline_row(FIND_INSTANCE_APP_SQL, [app.id + 1], |row| app_from_row(row))
            .expect("answered inline");
        assert_eq!(missing, None);
        assert_eq!(
            store
                .find_application(app.id, Ownership::Instance)
                .await
                .unwrap(),
            Some(app.clone())
        );
        let by_uid = store
            .inline_row(&APP_BY_UID_SQL, [app.application_id.as_str()], |row| {
                app_with_secret_digest(row)
            })
            .expect("answered inline");
        assert_eq!(by_uid, Some((app.clone(), "d".repeat(64))));
        // No token yet: answered inline as "none".
        let none = store
            .inline_row(TOKEN_WITH_OWNER_SQL, ["0".repeat(64)], |row| {
                token_with_owner(row)
            })
            .expect("answered inline");
        assert!(none.is_none());
        let none = store
            .inline_row(OAUTH_TOKEN_BY_ACCESS_SQL, ["0".repeat(64)], |row| {
                oauth_found(row)
            })
            .expect("answered inline");
        assert!(none.is_none());

        // Pages: inline while shallow, the pool's otherwise, same rows.
        let page = PageRequest {
            page: 1,
            per_page: 20,
        };
        let (apps, total) = store.list_inline(page).expect("answered inline");
        assert_eq!((apps.len(), total), (1, 1));
        assert_eq!(apps[0], app);
        assert_eq!(
            store.after_inline(0, 20).expect("answered inline"),
            vec![app.clone()]
        );
        assert_eq!(
            store.after_inline(app.id, 20).expect("answered inline"),
            vec![]
        );
        assert!(
            store.after_inline(0, 500).is_none(),
            "streaming batches use the pool"
        );
        let deep = PageRequest {
            page: 1_000,
            per_page: 20,
        };
        assert!(store.list_inline(deep).is_none(), "deep pages use the pool");
        assert_eq!(
            store.list_instance_applications(deep).await.unwrap(),
            (vec![], 1)
        );
    }

    fn new_app(uid: &str) -> NewApplication {
        NewApplication {
            application_id: uid.to_owned(),
            secret_digest: "d".repeat(64),
            name: uid.to_owned(),
            redirect_uri: "https://x/cb".to_owned(),
            scopes: Scopes::from_stored("api"),
            confidential: true,
            owner_id: None,
            created_at: 1,
            dynamic: false,
            registration_token_digest: None,
            grant_types: None,
        }
    }

    /// The remembered count follows every create and delete at once.
    #[tokio::test]
    async fn page_totals_follow_creates_and_deletes() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("c.db").display());
        let store = SqliteStore::connect(&Options::new(&url)).await.unwrap();
        store.migrate().await.unwrap();
        let page = PageRequest {
            page: 1,
            per_page: 20,
        };
        let deep = PageRequest {
            page: 1_000,
            per_page: 20,
        };
        let total = |s: &SqliteStore, p| {
            let s = s.clone();
            async move { s.list_instance_applications(p).await.unwrap().1 }
        };
        assert_eq!(total(&store, page).await, 0);
        let a = store.insert_application(new_app("a")).await.unwrap();
        assert_eq!(total(&store, page).await, 1);
        assert_eq!(total(&store, deep).await, 1, "the pool path agrees");
        store.insert_application(new_app("b")).await.unwrap();
        assert_eq!(total(&store, deep).await, 2);
        assert_eq!(total(&store, page).await, 2);
        assert!(store
            .delete_application(a.id, Ownership::Instance)
            .await
            .unwrap());
        assert_eq!(total(&store, page).await, 1);
        assert_eq!(total(&store, deep).await, 1);
    }

    /// Many concurrent creates share batches; a conflicting one fails alone,
    /// and writes through the sqlx writer (here: users) interleave without
    /// busy errors.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn group_commit_fails_only_the_conflicting_write() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("g.db").display());
        let store = std::sync::Arc::new(SqliteStore::connect(&Options::new(&url)).await.unwrap());
        store.migrate().await.unwrap();
        let mut tasks = Vec::new();
        for i in 0..200 {
            let writer = store.clone();
            // uid-7 twice: exactly one of them must fail.
            let uid = if i == 100 {
                "uid-7".to_owned()
            } else {
                format!("uid-{i}")
            };
            tasks.push(tokio::spawn(async move {
                writer.insert_application(new_app(&uid)).await
            }));
            if i % 20 == 0 {
                let store = store.clone();
                tasks.push(tokio::spawn(async move {
                    store
                        .insert_user(NewUser {
                            username: format!("user{i}"),
                            email: format!("user{i}@example.com"),
                            name: "u".to_owned(),
                            password_digest: None,
                            admin: false,
                            created_at: 1,
                        })
                        .await
                        .map(|_| Application {
                            id: -1,
                            application_id: String::new(),
                            name: String::new(),
                            redirect_uri: String::new(),
                            scopes: Scopes::from_stored("api"),
                            confidential: false,
                            trusted: false,
                            owner_id: None,
                            created_at: 0,
                            dynamic: false,
                            grant_types: None,
                        })
                }));
            }
        }
        let mut conflicts = 0;
        let mut created = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(app) if app.id > 0 => created += 1,
                Ok(_) => {}
                Err(StoreError::Conflict(c)) => {
                    assert_eq!(c, "uid");
                    conflicts += 1;
                }
                Err(e) => panic!("unexpected error: {e}"),
            }
        }
        assert_eq!((created, conflicts), (199, 1));
        let (apps, total) = store
            .list_instance_applications(PageRequest {
                page: 1,
                per_page: 100,
            })
            .await
            .unwrap();
        assert_eq!((apps.len(), total), (100, 199));
    }

    #[test]
    fn database_files() {
        use std::path::PathBuf;
        let file = |p: &str| Some(PathBuf::from(p));
        assert_eq!(
            database_file("sqlite://latchkey.db?mode=rwc"),
            file("latchkey.db")
        );
        assert_eq!(
            database_file("sqlite:///var/lib/l.db"),
            file("/var/lib/l.db")
        );
        assert_eq!(database_file("sqlite:l.db"), file("l.db"));
        assert_eq!(database_file("sqlite::memory:"), None);
        assert_eq!(database_file("sqlite://x?mode=memory&cache=shared"), None);
        assert_eq!(database_file("postgres://h/db"), None);
    }

    #[tokio::test]
    async fn in_memory_databases_read_through_the_pool() {
        let store = SqliteStore::connect(&Options::new("sqlite::memory:"))
            .await
            .unwrap();
        assert!(store.inline.is_none());
        store.migrate().await.unwrap();
        let app = store
            .insert_application(new_app(&"m".repeat(64)))
            .await
            .unwrap();
        assert_eq!(
            store
                .find_application(app.id, Ownership::Any)
                .await
                .unwrap(),
            Some(app),
            "the group writer and the pool share the in-memory database"
        );
    }
}
