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
//! - `bootstrap_first_user` locks the users table against writers
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

mod announcements;
mod outage;
use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant};

use latchkey_core::metrics::prometheus_client::registry::Registry;
use latchkey_core::metrics::{DatabaseMetrics, PoolGauge, PoolState};

use async_trait::async_trait;
use futures::TryStreamExt;
use latchkey_core::dump::Cell;
use latchkey_core::error::{cause, context};
use latchkey_core::store::StoreError;
use latchkey_sql::{Access, Backend, Conn, Dialect, Row, SqlStore, Value, Work};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Column, PgPool, TypeInfo, ValueRef};

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

/// The PostgreSQL backend: a pool of connections (see [`Backend`]).
#[derive(Debug, Clone)]
pub struct Postgres {
    pool: PgPool,
    /// Connections for the reads that must walk an index in order
    /// (`Access::Read { ordered: true, .. }`), with the planner settings
    /// that make sure of it set once for the session (see
    /// [`ORDERED_SETTINGS`]): a page is then one statement, without the
    /// transaction that set them for each page. A share of the pool size
    /// (see [`ordered_share`]); `None` with a pool of one.
    ordered: Option<PgPool>,
    /// What the database announces (schema 15), heard on a connection of
    /// its own once something asks.
    announcements: std::sync::Arc<announcements::Announcements>,
    metrics: DatabaseMetrics,
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
    let unavailable = match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            return StoreError::Conflict(conflict_column(db.table(), db.constraint()));
        }
        // Raised only by latchkey_keep_an_administrator() (migration 0004).
        sqlx::Error::Database(db) if db.code().as_deref() == Some("LK001") => {
            return StoreError::LastAdministrator;
        }
        // 23503: the parent row was deleted first.
        sqlx::Error::Database(db) if db.is_foreign_key_violation() => return StoreError::Gone,
        sqlx::Error::PoolTimedOut
        | sqlx::Error::Io(_)
        | sqlx::Error::PoolClosed
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|c| is_unavailable_code(&c)),
        _ => false,
    };
    if unavailable {
        StoreError::Unavailable(cause(e))
    } else {
        StoreError::Internal(cause(e))
    }
}

fn migrate_err(e: sqlx::migrate::MigrateError) -> StoreError {
    match e {
        sqlx::migrate::MigrateError::Execute(inner) => match map_err(inner) {
            StoreError::Unavailable(c) => StoreError::Unavailable(context("migration failed", c)),
            other => StoreError::Internal(context("migration failed", other)),
        },
        e => StoreError::Internal(context("migration failed", e)),
    }
}

impl Backend for Postgres {
    type Options = Options;

    const DIALECT: Dialect = Dialect::Postgres;

    /// Several instances may share the database: the command line does not
    /// move a generation of its own (the triggers announce every writer).
    const REMEMBER_COUNTS: bool = false;

    /// Triggers announce every change to tokens, users and applications
    /// (schema 15), in the writing transaction: heard once it commits.
    const ANNOUNCES_CHANGES: bool = true;
    async fn announced_changes(&self) -> Option<Result<i64, StoreError>> {
        if self.known_down() {
            return Some(Err(StoreError::unavailable("the database is down")));
        }
        Some(self.announcements.barrier().await)
    }

    /// Connect without migrating. Fails when the server cannot be reached
    /// within `acquire_timeout`.
    async fn connect(opts: &Options) -> Result<Self, StoreError> {
        let mut connect = PgConnectOptions::from_str(&opts.url).map_err(|e| {
            StoreError::Internal(context(
                format!("invalid PostgreSQL URL {:?}", redact_url(&opts.url)),
                e,
            ))
        })?;
        connect = connect.application_name("latchkey");
        if let Some(t) = opts.statement_timeout {
            connect = connect.options([("statement_timeout", t.as_millis().max(1))]);
        }
        let size = opts.max_connections.max(1);
        let ordered_size = ordered_share(size);
        let main_size = size - ordered_size;
        let pool = PgPoolOptions::new()
            .max_connections(main_size)
            .min_connections(opts.min_connections.min(main_size))
            .acquire_timeout(opts.acquire_timeout)
            .connect_with(connect.clone())
            .await
            .map_err(map_err)?;
        // Opened as pages are read; a connection that cannot take the
        // settings is not handed out.
        let ordered = (ordered_size > 0).then(|| {
            PgPoolOptions::new()
                .max_connections(ordered_size)
                .acquire_timeout(opts.acquire_timeout)
                .after_connect(|conn, _| {
                    Box::pin(async move {
                        // No parameters: a simple query, several statements.
                        sqlx::Executor::execute(conn, ORDERED_SETTINGS)
                            .await
                            .map(drop)
                    })
                })
                .connect_lazy_with(connect.clone())
        });
        let announcements = std::sync::Arc::new(announcements::Announcements::new(connect.clone()));
        let outage = opts
            .watch_outages
            .then(|| outage::Outage::watch(pool.clone(), connect, main_size));
        Ok(Self {
            pool,
            ordered,
            announcements,
            outage,
            metrics: DatabaseMetrics::default(),
        })
    }

    fn register_metrics(&self, registry: &mut Registry) {
        // Both pools as one: together they are the configured pool size.
        let pools: Vec<PgPool> = std::iter::once(self.pool.clone())
            .chain(self.ordered.clone())
            .collect();
        let gauge = PoolGauge::new(move || {
            pools.iter().fold(
                PoolState {
                    idle: 0,
                    in_use: 0,
                    max: 0,
                },
                |sum, pool| {
                    let open = i64::from(pool.size());
                    let idle = i64::try_from(pool.num_idle()).unwrap_or(open);
                    PoolState {
                        idle: sum.idle + idle,
                        in_use: sum.in_use + open.saturating_sub(idle).max(0),
                        max: sum.max + i64::from(pool.options().get_max_connections()),
                    }
                },
            )
        });
        self.metrics.register(registry, gauge, false);
    }

    /// Apply every pending migration. Safe to run from several instances
    /// at once: the migrator holds an advisory lock while it works.
    async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR.run(&self.pool).await.map_err(migrate_err)
    }

    /// The newest migration version applied, if any.
    async fn schema_version(&self) -> Result<Option<i64>, StoreError> {
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

    async fn close(&self) {
        if let Some(ordered) = &self.ordered {
            ordered.close().await;
        }
        self.pool.close().await;
    }

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

    async fn run<T, F>(&self, access: Access, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut dyn Conn) -> Work<'c, T> + Send + 'static,
    {
        // An ordered read on a connection of its own needs a transaction
        // only for a snapshot of several statements: the connection has
        // the settings.
        let (pool, begin) = match (access, &self.ordered) {
            (
                Access::Read {
                    ordered: true,
                    snapshot,
                    ..
                },
                Some(ordered),
            ) => (ordered.clone(), snapshot.then_some(BEGIN_SNAPSHOT)),
            _ => (self.pool.clone(), begin(access)),
        };
        let wait = self.metrics.wait.clone();
        // A task of its own, so that a cancelled request (its client gone)
        // cannot stop a unit of work between two messages of the protocol:
        // sqlx's `begin` dropped while its `BEGIN` is in flight queues no
        // `ROLLBACK`, and the connection went back to the pool inside a
        // transaction ("there is already a transaction in progress" at the
        // next `BEGIN`; a later one-statement write ran uncommitted in it).
        // The unit runs to its end, bounded by the statement timeout.
        tokio::spawn(unit(pool, begin, wait, access, work))
            .await
            .map_err(|e| {
                StoreError::internal(format!("a unit of work on PostgreSQL failed: {e}"))
            })?
    }
}

/// How a unit of work of `access` begins on a connection of the main
/// pool: the transaction it asks for, if any.
fn begin(access: Access) -> Option<&'static str> {
    match access {
        Access::Read {
            snapshot: false,
            ordered: false,
            ..
        }
        | Access::Write { atomic: false } => None,
        Access::Read { ordered: true, .. } => Some(BEGIN_ORDERED),
        Access::Read { .. } => Some(BEGIN_SNAPSHOT),
        Access::Write { atomic: true } => Some("BEGIN"),
    }
}

/// One unit of work on a connection of `pool`, in the transaction `begin`
/// starts, if any (see [`Backend::run`]).
async fn unit<T, F>(
    pool: PgPool,
    begin: Option<&'static str>,
    wait: latchkey_core::metrics::prometheus_client::metrics::histogram::Histogram,
    access: Access,
    work: F,
) -> Result<T, StoreError>
where
    T: Send + 'static,
    F: for<'c> FnOnce(&'c mut dyn Conn) -> Work<'c, T> + Send + 'static,
{
    let asked = Instant::now();
    let Some(begin) = begin else {
        let conn = pool.acquire().await;
        wait.observe(asked.elapsed().as_secs_f64());
        let mut conn = conn.map_err(map_err)?;
        return work(&mut PgConn(&mut conn)).await;
    };
    // Dropped unfinished (an error), the transaction rolls back. (The
    // wait includes BEGIN's round trip.)
    let tx = pool.begin_with(begin).await;
    wait.observe(asked.elapsed().as_secs_f64());
    let mut tx = tx.map_err(map_err)?;
    let out = work(&mut PgConn(&mut tx)).await?;
    if matches!(access, Access::Read { .. }) {
        // A read-only transaction has nothing to commit: dropped, its
        // ROLLBACK is queued on the connection and sent, with the pool's
        // check of every returned connection, after the answer has gone
        // (one round trip fewer on the request's path). The connection
        // is handed out again only once both have been answered.
        drop(tx);
    } else {
        tx.commit().await.map_err(map_err)?;
    }
    Ok(out)
}

/// A read-only transaction whose statements all see one snapshot, as a
/// SQLite read transaction does (READ COMMITTED takes one per statement):
/// a page and its total agree.
const BEGIN_SNAPSHOT: &str = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY";

/// The planner settings of the reads that must walk an index in order
/// rather than gather rows and sort them (`Access::Read { ordered: true,
/// .. }`), each `$set` (`SET` or `SET LOCAL`). PostgreSQL plans the first
/// page of instance applications as a bitmap scan and a sort of every row
/// when its statistics predate a fast growth of the table (tens of
/// milliseconds at 200,000 rows, where the index walk takes 0.3). JIT is
/// turned off with the scans: the costs the switches add would make every
/// statement pass `jit_above_cost` and compile (a quarter of a second per
/// page, measured). Joins are nested loops: a page's ids, from the index
/// alone, then their rows by key; with statistics that know the table's
/// size PostgreSQL merge-joined the ids with a walk of the key index from
/// its first entry, as long as the table before the page (deep pages a
/// third slower, measured). Plans are generic (made once per connection):
/// a custom plan for `LIMIT $2` is cheaper on paper than a generic one that
/// must guess the limit, so PostgreSQL planned every page again, reading
/// the ends of the index for the estimate (0.2-0.4 ms a page on 150,000
/// rows, more after `ANALYZE`).
macro_rules! ordered_settings {
    ($set:literal) => {
        concat!(
            $set,
            " enable_seqscan = off; ",
            $set,
            " enable_bitmapscan = off; ",
            $set,
            " jit = off; ",
            $set,
            " enable_mergejoin = off; ",
            $set,
            " enable_hashjoin = off; ",
            $set,
            " plan_cache_mode = force_generic_plan"
        )
    };
}

/// The settings for the session of each of the ordered reads' own
/// connections ([`Postgres::ordered`]), sent once when it opens: settings
/// that no other statement should have, on connections no other statement
/// uses, so that a page is one statement (a single statement is its own
/// snapshot), without a transaction around it to set them for it (two
/// round trips and the settings' statements fewer a page: the first page
/// 1.4x faster on PostgreSQL's side alone, measured with pgbench).
const ORDERED_SETTINGS: &str = ordered_settings!("SET");

/// An ordered read on a connection of the main pool (a pool of one has no
/// connection to spare for the ordered reads): a read-only transaction of
/// one snapshot that sets them for itself. One round trip: `BEGIN` goes as
/// a simple query, which may hold several statements.
const BEGIN_ORDERED: &str = concat!(
    "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; ",
    ordered_settings!("SET LOCAL")
);

/// How many of a pool of `size` connections serve the ordered reads: a
/// quarter (a page's statement is short), none in a pool of one.
fn ordered_share(size: u32) -> u32 {
    if size < 2 {
        0
    } else {
        (size / 4).max(1)
    }
}

/// latchkey's store on PostgreSQL.
pub type PgStore = SqlStore<Postgres>;

/// A connection, or a transaction on one.
struct PgConn<'a>(&'a mut sqlx::PgConnection);

type PgQuery<'q> = sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>;

fn bind<'q>(sql: &'q str, params: &'q [Value]) -> PgQuery<'q> {
    params.iter().fold(sqlx::query(sql), |q, p| match p {
        Value::Int(v) => q.bind(*v),
        Value::Text(v) => q.bind(v.as_deref()),
        Value::Bool(v) => q.bind(*v),
    })
}

/// A row of plain values, by each column's type.
fn plain(
    names: &std::sync::Arc<[Box<str>]>,
    row: &sqlx::postgres::PgRow,
) -> Result<Row, sqlx::Error> {
    use sqlx::Row as _;
    let mut values = Vec::with_capacity(names.len());
    for i in 0..names.len() {
        let raw = row.try_get_raw(i)?;
        if raw.is_null() {
            values.push(Cell::Null);
            continue;
        }
        let info = raw.type_info();
        values.push(match info.name() {
            "INT8" => Cell::Int(row.try_get::<i64, _>(i)?),
            "INT4" => Cell::Int(i64::from(row.try_get::<i32, _>(i)?)),
            "INT2" => Cell::Int(i64::from(row.try_get::<i16, _>(i)?)),
            "BOOL" => Cell::Bool(row.try_get::<bool, _>(i)?),
            "TEXT" | "VARCHAR" | "BPCHAR" | "NAME" => Cell::Text(row.try_get::<String, _>(i)?),
            other => {
                return Err(sqlx::Error::Decode(
                    format!("column {i} has type {other}, which latchkey does not store").into(),
                ))
            }
        });
    }
    Ok(Row::new(names.clone(), values))
}

#[async_trait]
impl Conn for PgConn<'_> {
    async fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>, StoreError> {
        use sqlx::Row as _;
        let rows = bind(sql, params)
            .fetch(&mut *self.0)
            .try_collect::<Vec<_>>()
            .await
            .map_err(map_err)?;
        let Some(first) = rows.first() else {
            return Ok(Vec::new());
        };
        let names: std::sync::Arc<[Box<str>]> = first
            .columns()
            .iter()
            .map(|c| Box::from(c.name()))
            .collect();
        rows.iter()
            .map(|r| plain(&names, r))
            .collect::<Result<_, _>>()
            .map_err(map_err)
    }

    async fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, StoreError> {
        Ok(bind(sql, params)
            .execute(&mut *self.0)
            .await
            .map_err(map_err)?
            .rows_affected())
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
    async fn ordered_reads_run_with_their_settings_and_no_other_does() {
        let Some(url) = std::env::var("LATCHKEY_TEST_POSTGRES_URL")
            .ok()
            .filter(|u| !u.trim().is_empty())
        else {
            eprintln!("note: LATCHKEY_TEST_POSTGRES_URL is not set; skipping");
            return;
        };
        let ordered = Access::Read {
            bounded: true,
            snapshot: false,
            ordered: true,
        };
        let in_snapshot = Access::Read {
            bounded: true,
            snapshot: true,
            ordered: true,
        };
        // A pool of 4: a connection of their own for the ordered reads; a
        // pool of 1: the ordered reads set them in their transaction.
        for size in [4, 1] {
            let mut opts = Options::new(url.clone());
            opts.max_connections = size;
            let backend = Postgres::connect(&opts).await.expect("connect");
            for (access, ordered) in [
                (ordered, true),
                (in_snapshot, true),
                (Access::POINT, false),
                (Access::SCAN, false),
                (Access::Write { atomic: true }, false),
                (Access::Write { atomic: false }, false),
            ] {
                for (setting, theirs, default) in [
                    ("enable_seqscan", "off", "on"),
                    ("enable_hashjoin", "off", "on"),
                    ("plan_cache_mode", "force_generic_plan", "auto"),
                ] {
                    let sql = format!("SELECT current_setting('{setting}') AS v");
                    let got = backend
                        .run(access, move |c| {
                            Box::pin(async move {
                                let mut rows = c.query(&sql, &[]).await?;
                                rows[0].text("v")
                            })
                        })
                        .await
                        .expect("read the setting");
                    let want = if ordered { theirs } else { default };
                    assert_eq!(got, want, "{setting} in {access:?} with a pool of {size}");
                }
            }
            backend.close().await;
        }
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
            Err(e @ StoreError::Internal(_)) => {
                let m = latchkey_core::error::Chain(&e).to_string();
                assert!(m.contains("invalid PostgreSQL URL"), "{m}");
            }
            other => panic!("expected Other, got {other:?}"),
        }
    }
}
