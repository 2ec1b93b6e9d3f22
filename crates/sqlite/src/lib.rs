//! latchkey's embedded storage: SQLite through sqlx.
//!
//! WAL journal, `synchronous = FULL` (an acknowledged write survives a
//! crash of the process or the machine), foreign keys on, a busy timeout.
//! All writes go through one connection, so they never contend for the
//! database lock inside one process; reads use a separate pool.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use futures::stream::BoxStream;
use latchkey_core::application::{Application, ApplicationUpdate, NewApplication, Ownership};
use latchkey_core::pagination::PageRequest;
use latchkey_core::scopes::Scopes;
use latchkey_core::store::{Store, StoreError, TokenWithOwner};
use latchkey_core::token::{NewToken, PersonalAccessToken};
use latchkey_core::user::{NewUser, User, UserFilter, UserState, UserUpdate};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{Row, SqlitePool};

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

#[derive(Debug, Clone)]
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
}

fn map_err(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            let msg = db.message();
            // "UNIQUE constraint failed: users.username"
            let what = msg.rsplit('.').next().unwrap_or("value").to_owned();
            StoreError::Conflict(what)
        }
        sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
            StoreError::Unavailable(e.to_string())
        }
        sqlx::Error::Database(db) if matches!(db.code().as_deref(), Some("5" | "6" | "517")) => {
            // SQLITE_BUSY, SQLITE_LOCKED, SQLITE_BUSY_SNAPSHOT
            StoreError::Unavailable(e.to_string())
        }
        _ => StoreError::Other(e.to_string()),
    }
}

fn migrate_err(e: sqlx::migrate::MigrateError) -> StoreError {
    StoreError::Other(format!("migration failed: {e}"))
}

impl SqliteStore {
    /// Open (creating the file if needed) without migrating.
    pub async fn connect(opts: &Options) -> Result<Self, StoreError> {
        let base = SqliteConnectOptions::from_str(&opts.url)
            .map_err(|e| StoreError::Other(format!("invalid SQLite URL {:?}: {e}", opts.url)))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(opts.busy_timeout);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .acquire_timeout(opts.acquire_timeout)
            .connect_with(base.clone())
            .await
            .map_err(map_err)?;
        let reader = SqlitePoolOptions::new()
            .max_connections(opts.read_connections.max(1))
            .acquire_timeout(opts.acquire_timeout)
            .connect_with(base.read_only(true))
            .await
            .map_err(map_err)?;
        Ok(Self { writer, reader })
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
    }
}

const APP_COLUMNS: &str =
    "id, uid, name, redirect_uri, scopes, confidential, trusted, owner_id, created_at";
const USER_COLUMNS: &str = "id, username, email, name, admin, state, created_at";
const TOKEN_COLUMNS: &str = "id, user_id, name, scopes, expires_at, revoked, created_at";

fn app_from_row(row: &SqliteRow) -> Result<Application, sqlx::Error> {
    Ok(Application {
        id: row.try_get("id")?,
        application_id: row.try_get("uid")?,
        name: row.try_get("name")?,
        redirect_uri: row.try_get("redirect_uri")?,
        scopes: Scopes::from_stored(row.try_get::<&str, _>("scopes")?),
        confidential: row.try_get("confidential")?,
        trusted: row.try_get("trusted")?,
        owner_id: row.try_get("owner_id")?,
        created_at: row.try_get("created_at")?,
    })
}

fn user_from_row(row: &SqliteRow, prefix: &str) -> Result<User, sqlx::Error> {
    let col = |c: &str| format!("{prefix}{c}");
    Ok(User {
        id: row.try_get(col("id").as_str())?,
        username: row.try_get(col("username").as_str())?,
        email: row.try_get(col("email").as_str())?,
        name: row.try_get(col("name").as_str())?,
        admin: row.try_get(col("admin").as_str())?,
        state: UserState::parse(row.try_get::<&str, _>(col("state").as_str())?),
        created_at: row.try_get(col("created_at").as_str())?,
    })
}

fn token_from_row(row: &SqliteRow) -> Result<PersonalAccessToken, sqlx::Error> {
    let expires: Option<String> = row.try_get("expires_at")?;
    Ok(PersonalAccessToken {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        name: row.try_get("name")?,
        scopes: Scopes::from_stored(row.try_get::<&str, _>("scopes")?),
        expires_at: match expires {
            Some(d) => Some(
                latchkey_core::token::parse_expiry(&d)
                    .map_err(|e| sqlx::Error::Decode(e.into()))?,
            ),
            None => None,
        },
        revoked: row.try_get("revoked")?,
        created_at: row.try_get("created_at")?,
    })
}

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
    let row = sqlx::query(
        "INSERT INTO personal_access_tokens (user_id, name, token_digest, scopes, expires_at, revoked, created_at)
         VALUES (?, ?, ?, ?, ?, 0, ?)
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
        sqlx::query("SELECT 1")
            .execute(&self.reader)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn insert_application(&self, a: NewApplication) -> Result<Application, StoreError> {
        let row = sqlx::query(&format!(
            "INSERT INTO oauth_applications
               (uid, name, secret_digest, redirect_uri, scopes, confidential, trusted, owner_id, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?, ?) RETURNING {APP_COLUMNS}"
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
        .fetch_one(&self.writer)
        .await
        .map_err(map_err)?;
        app_from_row(&row).map_err(map_err)
    }

    async fn list_instance_applications(
        &self,
        page: PageRequest,
    ) -> Result<(Vec<Application>, u64), StoreError> {
        let mut tx = self.reader.begin().await.map_err(map_err)?;
        let total: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM oauth_applications WHERE owner_id IS NULL")
                .fetch_one(&mut *tx)
                .await
                .map_err(map_err)?;
        let rows = sqlx::query(&format!(
            "SELECT {APP_COLUMNS} FROM oauth_applications WHERE owner_id IS NULL ORDER BY id LIMIT ? OFFSET ?"
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

    fn stream_instance_applications(&self) -> BoxStream<'static, Result<Application, StoreError>> {
        let pool = self.reader.clone();
        latchkey_core::store::keyset_stream(move |after, limit| {
            let pool = pool.clone();
            async move {
                let rows = sqlx::query(&format!(
                    "SELECT {APP_COLUMNS} FROM oauth_applications
                     WHERE owner_id IS NULL AND id > ? ORDER BY id LIMIT ?"
                ))
                .bind(after)
                .bind(limit)
                .fetch_all(&pool)
                .await
                .map_err(map_err)?;
                rows.iter()
                    .map(app_from_row)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(map_err)
            }
        })
    }

    async fn find_application(
        &self,
        id: i64,
        scope: Ownership,
    ) -> Result<Option<Application>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {APP_COLUMNS} FROM oauth_applications WHERE id = ?{}",
            ownership_clause(scope)
        ))
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
             SET name = COALESCE(?, name), scopes = COALESCE(?, scopes), updated_at = ?
             WHERE id = ? RETURNING {APP_COLUMNS}"
        ))
        .bind(update.name)
        .bind(update.scopes.map(|s| s.joined()))
        .bind(updated_at)
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
        let row = sqlx::query(&format!(
            "SELECT {APP_COLUMNS}, secret_digest FROM oauth_applications WHERE uid = ?"
        ))
        .bind(application_id)
        .fetch_optional(&self.reader)
        .await
        .map_err(map_err)?;
        let Some(row) = row else { return Ok(None) };
        let app = app_from_row(&row).map_err(map_err)?;
        let digest: String = row.try_get("secret_digest").map_err(map_err)?;
        Ok(Some((app, digest)))
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
                        AND (?2 IS NULL OR username LIKE ?2 ESCAPE '\\' OR name LIKE ?2 ESCAPE '\\' OR email LIKE ?2 ESCAPE '\\')";
        let mut tx = self.reader.begin().await.map_err(map_err)?;
        let total: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM users {clause}"))
            .bind(&filter.username)
            .bind(&search)
            .fetch_one(&mut *tx)
            .await
            .map_err(map_err)?;
        let rows = sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM users {clause} ORDER BY id LIMIT ?3 OFFSET ?4"
        ))
        .bind(&filter.username)
        .bind(&search)
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
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() > 0)
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
        let mut conn = self.writer.acquire().await.map_err(map_err)?;
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
             WHERE t.token_digest = ?",
        )
        .bind(digest)
        .fetch_optional(&self.reader)
        .await
        .map_err(map_err)?;
        let Some(row) = row else { return Ok(None) };
        let token = token_from_row(&row).map_err(map_err)?;
        let user = user_from_row(&row, "u_").map_err(map_err)?;
        Ok(Some(TokenWithOwner { token, user }))
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
}
