//! The storage conformance suite: every scenario runs against SQLite (a
//! fresh file per test) and, when `LATCHKEY_TEST_POSTGRES_URL` is set,
//! against PostgreSQL (a fresh database per test, created through that
//! URL and dropped afterwards). An unreachable server named by the
//! variable fails the PostgreSQL variants; an unset (or empty) variable
//! skips them with a note.
//!
//! Scenarios see the backend only as `Arc<dyn Store>`; the few that need
//! more (bulk rows, the stored form of a value, a second instance on the
//! same database) also get an [`Env`].
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::panic::{resume_unwind, AssertUnwindSafe};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt, TryStreamExt};
use latchkey_core::application::{
    Application, ApplicationUpdate, NewApplication, NewSecret, Ownership, Retire, SecretInfo,
};
use latchkey_core::oauth::{NewGrant, NewOAuthToken, NewSession, OAuthToken, PkceMethod};
use latchkey_core::pagination::PageRequest;
use latchkey_core::scopes::Scopes;
use latchkey_core::store::in_transaction;
use latchkey_core::store::{Store, StoreError, STREAM_BATCH};
use latchkey_core::token::NewToken;
use latchkey_core::user::{NewUser, User, UserFilter, UserState, UserUpdate};
use latchkey_postgres::PgStore;
use latchkey_sqlite::SqliteStore;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use sqlx::{Connection, Executor, PgConnection, Row};
use time::macros::date;

const POSTGRES_URL_VAR: &str = "LATCHKEY_TEST_POSTGRES_URL";

// --- the harness ------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Sqlite,
    Postgres,
}

/// Direct SQL on the database under test, beside the store.
#[derive(Clone)]
enum Raw {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl Raw {
    fn kind(&self) -> Kind {
        match self {
            Raw::Sqlite(_) => Kind::Sqlite,
            Raw::Postgres(_) => Kind::Postgres,
        }
    }

    async fn execute(&self, sql: &str) -> u64 {
        let done = match self {
            Raw::Sqlite(p) => p.execute(sql).await.map(|d| d.rows_affected()),
            Raw::Postgres(p) => p.execute(sql).await.map(|d| d.rows_affected()),
        };
        done.unwrap_or_else(|e| panic!("raw SQL failed: {e}\n{sql}"))
    }

    /// The first column of every row, which must be text (or NULL).
    async fn strings(&self, sql: &str) -> Vec<Option<String>> {
        let rows = match self {
            Raw::Sqlite(p) => sqlx::query(sql).fetch_all(p).await.and_then(|rows| {
                rows.iter()
                    .map(|r| r.try_get::<Option<String>, _>(0))
                    .collect()
            }),
            Raw::Postgres(p) => sqlx::query(sql).fetch_all(p).await.and_then(|rows| {
                rows.iter()
                    .map(|r| r.try_get::<Option<String>, _>(0))
                    .collect()
            }),
        };
        rows.unwrap_or_else(|e| panic!("raw SQL failed: {e}\n{sql}"))
    }

    async fn close(&self) {
        match self {
            Raw::Sqlite(p) => p.close().await,
            Raw::Postgres(p) => p.close().await,
        }
    }
}

/// A store instance the harness must close.
#[derive(Clone)]
enum Instance {
    Sqlite(Arc<SqliteStore>),
    Postgres(Arc<PgStore>),
}

impl Instance {
    fn store(&self) -> Arc<dyn Store> {
        match self {
            Instance::Sqlite(s) => s.clone(),
            Instance::Postgres(s) => s.clone(),
        }
    }

    async fn close(&self) {
        match self {
            Instance::Sqlite(s) => s.close().await,
            Instance::Postgres(s) => s.close().await,
        }
    }
}

async fn open_sqlite(url: &str) -> Arc<SqliteStore> {
    let opts = latchkey_sqlite::Options::new(url);
    Arc::new(
        SqliteStore::connect(&opts)
            .await
            .unwrap_or_else(|e| panic!("cannot open {url}: {e}")),
    )
}

async fn open_postgres(url: &str) -> Arc<PgStore> {
    let mut opts = latchkey_postgres::Options::new(url);
    // Several tests run at once, each with its own database and pool.
    opts.max_connections = 4;
    opts.acquire_timeout = Duration::from_secs(30);
    Arc::new(
        PgStore::connect(&opts)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to the test database: {e}")),
    )
}

/// A transaction holding locks (see [`Env::hold`]).
struct Held(PgConnection);

impl Held {
    /// Roll back, letting what waits for its locks go.
    async fn release(mut self) {
        self.0.execute("ROLLBACK").await.expect("roll back");
        let _ = self.0.close().await;
    }
}

/// PostgreSQL: both of a store's batch runners of one kind (token inserts,
/// application creates: latchkey-sql's `batch`) busy, each with a write
/// that waits at a row another transaction holds, so that the writes
/// submitted next queue, and run as one batch once
/// [`BusyRunners::release`] lets the runners go.
struct BusyRunners<T> {
    held: Held,
    runners: [tokio::task::JoinHandle<Result<T, StoreError>>; 2],
}

impl<T> BusyRunners<T> {
    /// Hold a row with `hold` (its `FOR UPDATE`) and submit two writes
    /// that wait for it (`submit`, given each a name of its own).
    async fn start(
        env: &Env,
        hold: &str,
        mut submit: impl FnMut(&str) -> tokio::task::JoinHandle<Result<T, StoreError>>,
    ) -> Self {
        let held = env.hold(hold).await;
        let first = submit("runner-1");
        env.wait_for_waiting_locks(1).await;
        let second = submit("runner-2");
        env.wait_for_waiting_locks(2).await;
        Self {
            held,
            runners: [first, second],
        }
    }

    /// Give the writes submitted since a moment to queue, let the runners
    /// go, and wait for their own writes: the queued ones then run as one
    /// batch.
    async fn release(self) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        self.held.release().await;
        for runner in self.runners {
            if let Err(e) = runner.await.expect("the runner's task") {
                panic!("the runner's write: {e}");
            }
        }
    }
}

/// What a scenario may use besides its store.
#[derive(Clone)]
struct Env {
    raw: Raw,
    url: String,
    opened: Arc<Mutex<Vec<Instance>>>,
}

impl Env {
    fn new(raw: Raw, url: String) -> Self {
        Self {
            raw,
            url,
            opened: Arc::new(Mutex::new(Vec::new())),
        }
    }

    fn kind(&self) -> Kind {
        self.raw.kind()
    }

    /// PostgreSQL: how many transactions committed the rows of `from` (a
    /// table and its filter): rows committed by one share its id (`xmin`).
    async fn committing_transactions(&self, from: &str) -> u64 {
        let n = self
            .raw
            .strings(&format!(
                "SELECT CAST(COUNT(DISTINCT CAST(xmin AS TEXT)) AS TEXT) FROM {from}"
            ))
            .await;
        n[0].as_deref().unwrap_or("0").parse().unwrap()
    }

    /// PostgreSQL: a transaction on a connection of its own (the raw pool
    /// is small) that has run `sql` (a row's or a table's lock) and holds
    /// what it took until [`Held::release`].
    async fn hold(&self, sql: &str) -> Held {
        let mut conn = PgConnection::connect(&self.url).await.expect("connect");
        conn.execute("BEGIN").await.expect("begin");
        conn.execute(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        Held(conn)
    }

    /// PostgreSQL: until at least `n` lock requests of this database's
    /// sessions wait (other tests' databases, on the same server, are not
    /// counted).
    async fn wait_for_waiting_locks(&self, n: u64) {
        for _ in 0..1000 {
            let waiting = self
                .raw
                .strings(
                    "SELECT CAST(COUNT(*) AS TEXT) FROM pg_locks l
                     JOIN pg_stat_activity a ON a.pid = l.pid
                     WHERE NOT l.granted AND a.datname = current_database()",
                )
                .await;
            if waiting[0].as_deref().unwrap_or("0").parse::<u64>().unwrap() >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("fewer than {n} lock requests ever waited");
    }

    /// Another instance on the same (already migrated) database, as a
    /// second server process would have.
    async fn open_instance(&self) -> Instance {
        let instance = match self.kind() {
            Kind::Sqlite => Instance::Sqlite(open_sqlite(&self.url).await),
            Kind::Postgres => Instance::Postgres(open_postgres(&self.url).await),
        };
        self.opened
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(instance.clone());
        instance
    }

    async fn close(&self) {
        let opened: Vec<Instance> =
            std::mem::take(&mut *self.opened.lock().unwrap_or_else(|p| p.into_inner()));
        for i in opened {
            i.close().await;
        }
        self.raw.close().await;
    }
}

type Scenario = Box<dyn FnOnce(Arc<dyn Store>, Env) -> BoxFuture<'static, ()> + Send>;

fn latest_migration() -> i64 {
    latchkey_sqlite::MIGRATOR
        .iter()
        .map(|m| m.version)
        .max()
        .expect("at least one migration")
}

async fn run_sqlite(scenario: Scenario) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("store.db");
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let store = open_sqlite(&url).await;
    assert_eq!(store.schema_version().await.expect("schema_version"), None);
    store.migrate().await.expect("migrate");
    // Migrating again is a no-op.
    store.migrate().await.expect("second migrate");
    assert_eq!(
        store.schema_version().await.expect("schema_version"),
        Some(latest_migration())
    );
    let raw_opts = SqliteConnectOptions::from_str(&url)
        .expect("sqlite url")
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(10));
    let raw = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(raw_opts)
        .await
        .expect("raw sqlite pool");
    let env = Env::new(Raw::Sqlite(raw), url);
    let outcome = AssertUnwindSafe(scenario(store.clone() as Arc<dyn Store>, env.clone()))
        .catch_unwind()
        .await;
    env.close().await;
    store.close().await;
    drop(dir);
    if let Err(panic) = outcome {
        resume_unwind(panic);
    }
}

/// The admin URL, or `None` (with a note) when PostgreSQL is not asked for.
fn postgres_admin_url() -> Option<String> {
    match std::env::var(POSTGRES_URL_VAR) {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            eprintln!("note: {POSTGRES_URL_VAR} is not set; skipping the PostgreSQL variant");
            None
        }
    }
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).expect("random bytes");
    hex::encode(buf)
}

/// `admin_url` with its database replaced by `database`.
fn database_url(admin_url: &str, database: &str) -> String {
    let mut url = url::Url::parse(admin_url)
        .unwrap_or_else(|e| panic!("{POSTGRES_URL_VAR} is not a URL: {e}"));
    url.set_path(&format!("/{database}"));
    url.to_string()
}

/// What a PostgreSQL run opened, for the cleanup to close.
type OpenedPostgres = Arc<Mutex<Option<(Arc<PgStore>, Env)>>>;

async fn run_postgres(scenario: Scenario) {
    let Some(admin_url) = postgres_admin_url() else {
        return;
    };
    let mut admin = PgConnection::connect(&admin_url)
        .await
        .unwrap_or_else(|e| panic!("{POSTGRES_URL_VAR} is set but the server is unreachable: {e}"));
    let database = format!("latchkey_test_{}", random_hex(8));
    admin
        .execute(format!("CREATE DATABASE {database}").as_str())
        .await
        .unwrap_or_else(|e| panic!("cannot create database {database}: {e}"));
    let url = database_url(&admin_url, &database);

    let instances: OpenedPostgres = Arc::new(Mutex::new(None));
    let slot = instances.clone();
    let outcome = AssertUnwindSafe(async move {
        let store = open_postgres(&url).await;
        let raw = PgPoolOptions::new()
            .max_connections(2)
            .connect(&url)
            .await
            .expect("raw postgres pool");
        let env = Env::new(Raw::Postgres(raw), url);
        *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some((store.clone(), env.clone()));
        assert_eq!(store.schema_version().await.expect("schema_version"), None);
        store.migrate().await.expect("migrate");
        store.migrate().await.expect("second migrate");
        assert_eq!(
            store.schema_version().await.expect("schema_version"),
            Some(latest_migration())
        );
        scenario(store as Arc<dyn Store>, env).await;
    })
    .catch_unwind()
    .await;

    let opened = instances.lock().unwrap_or_else(|p| p.into_inner()).take();
    if let Some((store, env)) = opened {
        env.close().await;
        store.close().await;
    }
    let dropped = admin
        .execute(format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)").as_str())
        .await;
    let _ = admin.close().await;
    if let Err(panic) = outcome {
        resume_unwind(panic);
    }
    if let Err(e) = dropped {
        panic!("cannot drop database {database}: {e}");
    }
}

/// `scenario_fn => sqlite_test, postgres_test;` for scenarios taking a
/// store; `#[env] scenario_fn => ...` for those also taking an [`Env`].
macro_rules! conformance {
    (@wrap env $scenario:ident) => {
        Box::new(|store: Arc<dyn Store>, env: Env| $scenario(store, env).boxed())
    };
    (@wrap $scenario:ident) => {
        Box::new(|store: Arc<dyn Store>, _env: Env| $scenario(store).boxed())
    };
    ($( $(#[$env:ident])? $scenario:ident => $sqlite:ident, $postgres:ident; )*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $sqlite() {
            run_sqlite(conformance!(@wrap $($env)? $scenario)).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $postgres() {
            run_postgres(conformance!(@wrap $($env)? $scenario)).await;
        }
    )*};
}

conformance! {
    scenario_ping => ping_sqlite, ping_postgres;
    #[env] scenario_schema => schema_sqlite, schema_postgres;
    #[env] scenario_closed_store_is_unavailable => closed_store_is_unavailable_sqlite, closed_store_is_unavailable_postgres;
    scenario_insert_and_find_application => insert_and_find_application_sqlite, insert_and_find_application_postgres;
    scenario_application_uid_conflict => application_uid_conflict_sqlite, application_uid_conflict_postgres;
    scenario_list_instance_applications => list_instance_applications_sqlite, list_instance_applications_postgres;
    #[env] scenario_stream_instance_applications => stream_instance_applications_sqlite, stream_instance_applications_postgres;
    scenario_delete_application => delete_application_sqlite, delete_application_postgres;
    scenario_renew_application_secret => renew_application_secret_sqlite, renew_application_secret_postgres;
    scenario_find_application_by_uid => find_application_by_uid_sqlite, find_application_by_uid_postgres;
    scenario_list_owned_applications => list_owned_applications_sqlite, list_owned_applications_postgres;
    scenario_update_application => update_application_sqlite, update_application_postgres;
    scenario_insert_and_find_users => insert_and_find_users_sqlite, insert_and_find_users_postgres;
    scenario_user_conflicts => user_conflicts_sqlite, user_conflicts_postgres;
    scenario_set_user_state => set_user_state_sqlite, set_user_state_postgres;
    scenario_list_users => list_users_sqlite, list_users_postgres;
    scenario_update_user => update_user_sqlite, update_user_postgres;
    scenario_delete_user_cascades => delete_user_cascades_sqlite, delete_user_cascades_postgres;
    scenario_keep_an_administrator => keep_an_administrator_sqlite, keep_an_administrator_postgres;
    scenario_writes_racing_a_parents_delete => writes_racing_a_parents_delete_sqlite, writes_racing_a_parents_delete_postgres;
    scenario_tokens => tokens_sqlite, tokens_postgres;
    scenario_revoke_token => revoke_token_sqlite, revoke_token_postgres;
    #[env] scenario_expires_at_round_trip => expires_at_round_trip_sqlite, expires_at_round_trip_postgres;
    scenario_find_and_list_tokens => find_and_list_tokens_sqlite, find_and_list_tokens_postgres;
    scenario_rotate_token => rotate_token_sqlite, rotate_token_postgres;
    #[env] scenario_rotate_token_concurrently => rotate_token_concurrently_sqlite, rotate_token_concurrently_postgres;
    scenario_bootstrap_first_user => bootstrap_first_user_sqlite, bootstrap_first_user_postgres;
    #[env] scenario_bootstrap_concurrently => bootstrap_concurrently_sqlite, bootstrap_concurrently_postgres;
    scenario_find_user_for_login => find_user_for_login_sqlite, find_user_for_login_postgres;
    scenario_login_throttle => login_throttle_sqlite, login_throttle_postgres;
    #[env] scenario_login_throttle_concurrently => login_throttle_concurrently_sqlite, login_throttle_concurrently_postgres;
    scenario_sessions => sessions_sqlite, sessions_postgres;
    scenario_grants => grants_sqlite, grants_postgres;
    #[env] scenario_redeem_grant_concurrently => redeem_grant_concurrently_sqlite, redeem_grant_concurrently_postgres;
    scenario_oauth_tokens => oauth_tokens_sqlite, oauth_tokens_postgres;
    scenario_refresh_oauth_token => refresh_oauth_token_sqlite, refresh_oauth_token_postgres;
    #[env] scenario_refresh_oauth_token_concurrently => refresh_oauth_token_concurrently_sqlite, refresh_oauth_token_concurrently_postgres;
    scenario_oauth_revocation => oauth_revocation_sqlite, oauth_revocation_postgres;
    scenario_delete_expired => delete_expired_sqlite, delete_expired_postgres;
    scenario_oauth_cascades => oauth_cascades_sqlite, oauth_cascades_postgres;
}

// --- fixtures -----------------------------------------------------------------

const T0: i64 = 1_700_000_000_123;

fn new_app(uid: &str, owner_id: Option<i64>) -> NewApplication {
    NewApplication {
        application_id: uid.to_owned(),
        secret_digest: format!("digest-of-{uid}"),
        secret_hint: "-uid".to_owned(),
        name: format!("App {uid}"),
        redirect_uri: "https://app.example/callback\nhttps://app.example/other".to_owned(),
        scopes: Scopes::from_stored("api read_user"),
        confidential: true,
        owner_id,
        group_id: None,
        created_at: T0,
        dynamic: false,
        registration_token_digest: None,
        grant_types: None,
    }
}

/// The tokens of one user (`None`: everyone's).
fn tokens_of(user_id: Option<i64>) -> latchkey_core::token::TokenFilter {
    latchkey_core::token::TokenFilter {
        user_id,
        ..Default::default()
    }
}

fn new_user(username: &str) -> NewUser {
    NewUser {
        username: username.to_owned(),
        email: format!("{username}@example.com"),
        name: format!("The {username}"),
        password_digest: Some("$argon2id$not-a-real-hash".to_owned()),
        admin: false,
        created_at: T0,
        external: false,
        profile: Default::default(),
        avatar: None,
    }
}

fn new_token(user_id: i64, digest: &str) -> NewToken {
    NewToken {
        user_id,
        name: format!("token {digest}"),
        digest: digest.to_owned(),
        scopes: Scopes::from_stored("api read_user"),
        expires_at: None,
        created_at: T0 + 1,
    }
}

fn page(page: u64, per_page: u64) -> PageRequest {
    PageRequest { page, per_page }
}

async fn user(store: &Arc<dyn Store>, username: &str) -> User {
    store
        .insert_user(new_user(username))
        .await
        .expect("insert_user")
}

async fn app(store: &Arc<dyn Store>, uid: &str, owner_id: Option<i64>) -> Application {
    store
        .insert_application(new_app(uid, owner_id))
        .await
        .expect("insert_application")
}

fn ids(apps: &[Application]) -> Vec<i64> {
    apps.iter().map(|a| a.id).collect()
}

fn assert_conflict<T: std::fmt::Debug>(result: Result<T, StoreError>, column: &str) {
    match result {
        Err(StoreError::Conflict(c)) => assert_eq!(c, column),
        other => panic!("expected a conflict on {column}, got {other:?}"),
    }
}

/// A write whose parent row does not exist (any more).
fn assert_gone<T: std::fmt::Debug>(result: Result<T, StoreError>) {
    match result {
        Err(StoreError::Gone) => {}
        other => panic!("expected StoreError::Gone, got {other:?}"),
    }
}

/// Insert `count` applications in one statement: `prefix1`, `prefix2`, ...;
/// every `owned_every`-th one owned by `owner` (when both are given).
async fn bulk_insert_apps(raw: &Raw, prefix: &str, count: u32, owner: Option<(i64, u32)>) -> u64 {
    let owner_expr = match owner {
        Some((id, every)) => {
            format!(
                "CASE WHEN i % {every} = 0 THEN CAST({id} AS BIGINT) ELSE CAST(NULL AS BIGINT) END"
            )
        }
        None => "CAST(NULL AS BIGINT)".to_owned(),
    };
    raw.execute(&format!(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {count})
         INSERT INTO oauth_applications
           (uid, name, secret_digest, redirect_uri, scopes, confidential, trusted, owner_id, created_at, updated_at)
         SELECT '{prefix}' || i, 'Bulk ' || i, 'digest', 'https://app.example/cb', 'api',
                TRUE, FALSE, {owner_expr}, {T0} + i, {T0} + i
         FROM n"
    ))
    .await
}

// --- scenarios: basics -----------------------------------------------------------

async fn scenario_ping(store: Arc<dyn Store>) {
    store.ping().await.expect("ping");
}

/// Both schemas have the same tables and columns.
async fn scenario_schema(_store: Arc<dyn Store>, env: Env) {
    let sql = match env.kind() {
        Kind::Sqlite => {
            "SELECT m.name || '.' || p.name FROM sqlite_master m, pragma_table_info(m.name) p
             WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name <> '_sqlx_migrations'"
        }
        Kind::Postgres => {
            "SELECT (table_name || '.' || column_name)::text FROM information_schema.columns
             WHERE table_schema = current_schema() AND table_name <> '_sqlx_migrations'"
        }
    };
    let mut columns: Vec<String> = env.raw.strings(sql).await.into_iter().flatten().collect();
    columns.sort();
    // The schema is exactly what `latchkey db copy` moves (every column of
    // every table, on both backends), and the tables it leaves out.
    let mut want: Vec<String> = latchkey_core::dump::TABLES
        .iter()
        .flat_map(|t| {
            t.columns
                .iter()
                .map(move |(c, _)| format!("{}.{c}", t.name))
        })
        .chain(
            latchkey_core::dump::NOT_COPIED
                .iter()
                .flat_map(|(t, cs)| cs.iter().map(move |c| format!("{t}.{c}"))),
        )
        .collect();
    want.sort();
    assert_eq!(columns, want);
}

async fn scenario_closed_store_is_unavailable(_store: Arc<dyn Store>, env: Env) {
    let instance = env.open_instance().await;
    let store = instance.store();
    store.ping().await.expect("ping before close");
    instance.close().await;
    match store.ping().await {
        Err(StoreError::Unavailable(_)) => {}
        other => panic!("expected Unavailable from a closed store, got {other:?}"),
    }
    match store.find_user(1).await {
        Err(StoreError::Unavailable(_)) => {}
        other => panic!("expected Unavailable from a closed store, got {other:?}"),
    }
}

// --- scenarios: applications -------------------------------------------------------

async fn scenario_insert_and_find_application(store: Arc<dyn Store>) {
    let owner = user(&store, "owner").await;
    let mut input = new_app("instance-uid", None);
    input.confidential = false;
    input.scopes = Scopes::from_stored("read_user  api read_user");
    let instance = store
        .insert_application(input.clone())
        .await
        .expect("insert");
    assert!(instance.id > 0);
    assert_eq!(instance.application_id, "instance-uid");
    assert_eq!(instance.name, input.name);
    assert_eq!(instance.redirect_uri, input.redirect_uri);
    assert_eq!(instance.scopes.joined(), "read_user api");
    assert!(!instance.confidential);
    assert!(!instance.trusted);
    assert_eq!(instance.owner_id, None);
    assert_eq!(instance.created_at, T0);

    assert_eq!(instance.grant_types, None);
    // Its first secret came with it (one statement on PostgreSQL).
    let secrets = store
        .application_secrets(instance.id, T0)
        .await
        .expect("secrets");
    assert_eq!(secrets.len(), 1);
    assert_eq!(
        (secrets[0].hint.as_deref(), secrets[0].created_at),
        (Some("-uid"), T0)
    );
    assert_eq!(
        (secrets[0].expires_at, secrets[0].last_used_at),
        (None, None)
    );

    // Grant types round-trip, through every read.
    let mut limited = new_app("limited-uid", None);
    limited.grant_types = Some(vec![
        "authorization_code".to_owned(),
        "refresh_token".to_owned(),
    ]);
    let limited = store.insert_application(limited).await.expect("insert");
    let want = Some(vec![
        "authorization_code".to_owned(),
        "refresh_token".to_owned(),
    ]);
    assert_eq!(limited.grant_types, want);
    let by_uid = store
        .find_application_by_uid("limited-uid")
        .await
        .expect("find")
        .expect("limited");
    assert_eq!(by_uid.0.grant_types, want);
    let by_id = store
        .find_application(limited.id, Ownership::Any)
        .await
        .expect("find")
        .expect("limited");
    assert_eq!(by_id.grant_types, want);
    let narrowed = store
        .update_application(
            limited.id,
            ApplicationUpdate {
                grant_types: Some(vec!["authorization_code".to_owned()]),
                ..ApplicationUpdate::default()
            },
            T0 + 1,
        )
        .await
        .expect("update")
        .expect("limited");
    assert_eq!(
        narrowed.grant_types,
        Some(vec!["authorization_code".to_owned()])
    );
    assert!(store
        .delete_application(limited.id, Ownership::Any)
        .await
        .expect("delete"));

    let owned = app(&store, "owned-uid", Some(owner.id)).await;
    assert!(owned.id > instance.id);
    assert_eq!(owned.owner_id, Some(owner.id));
    assert!(owned.confidential);

    let found = store
        .find_application(instance.id, Ownership::Instance)
        .await
        .expect("find");
    assert_eq!(found.as_ref(), Some(&instance));
    let found = store
        .find_application(instance.id, Ownership::Any)
        .await
        .expect("find");
    assert_eq!(found.as_ref(), Some(&instance));

    // An owned application is invisible to the instance scope.
    let found = store
        .find_application(owned.id, Ownership::Instance)
        .await
        .expect("find");
    assert_eq!(found, None);
    let found = store
        .find_application(owned.id, Ownership::Any)
        .await
        .expect("find");
    assert_eq!(found.as_ref(), Some(&owned));

    for missing in [owned.id + 1000, 0, -1] {
        for scope in [Ownership::Instance, Ownership::Any] {
            let found = store.find_application(missing, scope).await.expect("find");
            assert_eq!(found, None, "id {missing}");
        }
    }

    // An owner that does not exist breaks a foreign key: not a conflict.
    assert_gone(
        store
            .insert_application(new_app("orphan", Some(owner.id + 1000)))
            .await,
    );
}

async fn scenario_application_uid_conflict(store: Arc<dyn Store>) {
    let first = app(&store, "same-uid", None).await;
    assert_conflict(
        store.insert_application(new_app("same-uid", None)).await,
        "uid",
    );
    let owner = user(&store, "owner").await;
    assert_conflict(
        store
            .insert_application(new_app("same-uid", Some(owner.id)))
            .await,
        "uid",
    );
    // client_ids are case-sensitive.
    let upper = app(&store, "SAME-UID", None).await;
    assert!(upper.id > first.id);
    // Nothing was written by the failed inserts.
    let (apps, total) = store
        .list_instance_applications(page(1, 100))
        .await
        .expect("list");
    assert_eq!(total, 2);
    assert_eq!(ids(&apps), vec![first.id, upper.id]);
}

async fn scenario_list_instance_applications(store: Arc<dyn Store>) {
    let owner = user(&store, "owner").await;
    // Empty first.
    let (apps, total) = store
        .list_instance_applications(PageRequest::default())
        .await
        .expect("list");
    assert!(apps.is_empty());
    assert_eq!(total, 0);

    let mut instance = Vec::new();
    for i in 0..7 {
        instance.push(app(&store, &format!("instance-{i}"), None).await);
        if i % 2 == 0 {
            app(&store, &format!("owned-{i}"), Some(owner.id)).await;
        }
    }
    let all_ids = ids(&instance);

    let (apps, total) = store
        .list_instance_applications(PageRequest::default())
        .await
        .expect("list");
    assert_eq!(total, 7);
    assert_eq!(apps, instance);

    let mut seen = Vec::new();
    for (n, want_len) in [(1, 3), (2, 3), (3, 1)] {
        let (apps, total) = store
            .list_instance_applications(page(n, 3))
            .await
            .expect("list");
        assert_eq!(total, 7, "page {n}");
        assert_eq!(apps.len(), want_len, "page {n}");
        assert!(apps.iter().all(|a| a.owner_id.is_none()));
        seen.extend(ids(&apps));
    }
    assert_eq!(seen, all_ids);
    assert!(seen.windows(2).all(|w| w[0] < w[1]));

    // Past the end: an empty page, the total still right.
    for n in [4, 1 << 40] {
        let (apps, total) = store
            .list_instance_applications(page(n, 3))
            .await
            .expect("list");
        assert!(apps.is_empty(), "page {n}");
        assert_eq!(total, 7, "page {n}");
    }

    // Folding whatever the backend keeps as deltas changes no total; a
    // delete and a move out of the instance's count are counted.
    store.fold_counts().await.expect("fold");
    store.fold_counts().await.expect("fold again");
    let (_, total) = store
        .list_instance_applications(PageRequest::default())
        .await
        .expect("list");
    assert_eq!(total, 7);
    let extra = app(&store, "instance-extra", None).await;
    assert!(store
        .delete_application(extra.id, Ownership::Instance)
        .await
        .expect("delete"));
    let (_, total) = store
        .list_instance_applications(PageRequest::default())
        .await
        .expect("list");
    assert_eq!(total, 7);

    // Searched: by name (any case, its own wildcards literal) or by the
    // exact client id; owned applications never.
    let (apps, total) = store
        .search_instance_applications("INSTANCE-1", PageRequest::default())
        .await
        .expect("search");
    assert_eq!((ids(&apps), total), (vec![instance[1].id], 1));
    let (apps, total) = store
        .search_instance_applications("nce-", page(2, 2))
        .await
        .expect("search");
    assert_eq!((ids(&apps), total), (ids(&instance[2..4]), 7));
    let (apps, total) = store
        .search_instance_applications("owned", PageRequest::default())
        .await
        .expect("search");
    assert_eq!((apps.len(), total), (0, 0));
    for literal in ["%", "_", "instance\\"] {
        let (apps, total) = store
            .search_instance_applications(literal, PageRequest::default())
            .await
            .expect("search");
        assert_eq!((apps.len(), total), (0, 0), "{literal}");
    }
    let uid = instance[5].application_id.clone();
    let (apps, total) = store
        .search_instance_applications(&uid, PageRequest::default())
        .await
        .expect("search");
    assert_eq!((ids(&apps), total), (vec![instance[5].id], 1));
}

async fn collect_stream(store: &Arc<dyn Store>) -> Vec<Application> {
    latchkey_core::store::stream_instance_applications(store.clone())
        .try_collect()
        .await
        .expect("stream")
}

async fn scenario_stream_instance_applications(store: Arc<dyn Store>, env: Env) {
    assert!(collect_stream(&store).await.is_empty());
    let owner = user(&store, "owner").await;

    // Exactly two full batches of instance applications, with owned ones
    // interleaved: the last batch is full, so the stream must ask once
    // more and find nothing.
    let batch = u32::try_from(STREAM_BATCH).expect("batch size");
    let instance_rows = 2 * batch;
    let owned_every = 4;
    let total_rows = instance_rows + instance_rows / (owned_every - 1);
    let inserted =
        bulk_insert_apps(&env.raw, "bulk-", total_rows, Some((owner.id, owned_every))).await;
    assert_eq!(inserted, u64::from(total_rows));
    let want_instance = u64::from(total_rows - total_rows / owned_every);
    assert_eq!(want_instance, u64::from(instance_rows));

    let streamed = collect_stream(&store).await;
    assert_eq!(streamed.len() as u64, want_instance);
    assert!(streamed.iter().all(|a| a.owner_id.is_none()));
    assert!(streamed.windows(2).all(|w| w[0].id < w[1].id));
    let mut want_ids: Vec<i64> = env
        .raw
        .strings("SELECT CAST(id AS TEXT) FROM oauth_applications WHERE owner_id IS NULL")
        .await
        .into_iter()
        .map(|s| s.and_then(|s| s.parse().ok()).expect("an id"))
        .collect();
    want_ids.sort_unstable();
    assert_eq!(ids(&streamed), want_ids);
    // The stream and the listing agree on what an application looks like.
    let (first_page, total) = store
        .list_instance_applications(page(1, 100))
        .await
        .expect("list");
    assert_eq!(total, want_instance);
    assert_eq!(&streamed[..100], &first_page[..]);

    // One more row: a partial third batch.
    let extra = app(&store, "extra", None).await;
    let streamed = collect_stream(&store).await;
    assert_eq!(streamed.len() as u64, want_instance + 1);
    assert_eq!(streamed.last(), Some(&extra));

    // Dropping a stream half-way is fine, and streams are independent.
    let partial: Vec<_> = latchkey_core::store::stream_instance_applications(store.clone())
        .take(3)
        .collect()
        .await;
    assert_eq!(partial.len(), 3);
}

async fn scenario_delete_application(store: Arc<dyn Store>) {
    let owner = user(&store, "owner").await;
    let instance = app(&store, "instance", None).await;
    let owned = app(&store, "owned", Some(owner.id)).await;

    // The instance scope refuses owned applications.
    assert!(!store
        .delete_application(owned.id, Ownership::Instance)
        .await
        .expect("delete"));
    assert!(store
        .find_application(owned.id, Ownership::Any)
        .await
        .expect("find")
        .is_some());
    assert!(store
        .delete_application(owned.id, Ownership::Any)
        .await
        .expect("delete"));
    assert!(store
        .find_application(owned.id, Ownership::Any)
        .await
        .expect("find")
        .is_none());
    assert!(!store
        .delete_application(owned.id, Ownership::Any)
        .await
        .expect("delete"));

    assert!(store
        .delete_application(instance.id, Ownership::Instance)
        .await
        .expect("delete"));
    assert!(!store
        .delete_application(instance.id, Ownership::Instance)
        .await
        .expect("delete"));
    assert!(store
        .find_application_by_uid("instance")
        .await
        .expect("find")
        .is_none());
    assert!(!store
        .delete_application(12345, Ownership::Any)
        .await
        .expect("delete"));
    // The owner is untouched.
    assert!(store.find_user(owner.id).await.expect("find").is_some());
    // The uid is free again.
    app(&store, "instance", None).await;
}

/// The digests of the application's secrets that are live at `now`.
async fn live_digests(store: &Arc<dyn Store>, uid: &str, now: i64) -> Vec<String> {
    let (_, secrets) = store
        .find_application_by_uid(uid)
        .await
        .expect("find")
        .expect("the application");
    secrets
        .into_iter()
        .filter(|s| s.is_live(now))
        .map(|s| s.digest)
        .collect()
}

fn new_secret(digest: &str, at: i64, expires_at: Option<i64>) -> NewSecret {
    NewSecret {
        digest: digest.to_owned(),
        hint: "hint".to_owned(),
        created_at: at,
        expires_at,
    }
}

async fn renew(
    store: &Arc<dyn Store>,
    id: i64,
    scope: Ownership,
    secret: NewSecret,
    retire: Retire,
) -> Option<(Application, SecretInfo)> {
    in_transaction(&**store, move |tx| {
        Box::pin(async move { tx.renew_application_secret(id, scope, secret, retire).await })
    })
    .await
    .expect("renew")
}

async fn scenario_renew_application_secret(store: Arc<dyn Store>) {
    let owner = user(&store, "owner").await;
    let instance = app(&store, "instance", None).await;
    let owned = app(&store, "owned", Some(owner.id)).await;
    assert_eq!(
        live_digests(&store, "instance", T0).await,
        ["digest-of-instance"]
    );

    // As GitLab: the previous secret dies at once.
    let (renewed, info) = renew(
        &store,
        instance.id,
        Ownership::Instance,
        new_secret("new-digest", T0 + 1, None),
        Retire::Now,
    )
    .await
    .expect("renewed");
    assert_eq!(renewed, instance);
    assert_eq!(
        (info.hint.as_deref(), info.expires_at),
        (Some("hint"), None)
    );
    assert_eq!(
        live_digests(&store, "instance", T0 + 1).await,
        ["new-digest"]
    );

    // Owned: refused in the instance scope, secrets unchanged.
    let refused = renew(
        &store,
        owned.id,
        Ownership::Instance,
        new_secret("nope", T0, None),
        Retire::Now,
    )
    .await;
    assert_eq!(refused, None);
    assert_eq!(live_digests(&store, "owned", T0).await, ["digest-of-owned"]);

    // With a grace period: the old one lives until then, the new one
    // (which expires itself) from now.
    let (_, info) = renew(
        &store,
        owned.id,
        Ownership::Any,
        new_secret("owned-new", T0 + 10, Some(T0 + 5_000)),
        Retire::At(T0 + 1_000),
    )
    .await
    .expect("renewed");
    assert_eq!(info.expires_at, Some(T0 + 5_000));
    assert_eq!(
        live_digests(&store, "owned", T0 + 999).await,
        ["digest-of-owned", "owned-new"]
    );
    assert_eq!(
        live_digests(&store, "owned", T0 + 1_000).await,
        ["owned-new"]
    );
    // A later grace never lengthens an earlier expiry.
    renew(
        &store,
        owned.id,
        Ownership::Any,
        new_secret("third", T0 + 20, None),
        Retire::At(T0 + 9_000),
    )
    .await
    .expect("renewed");
    assert_eq!(
        live_digests(&store, "owned", T0 + 4_999).await,
        ["owned-new", "third"]
    );
    assert_eq!(live_digests(&store, "owned", T0 + 5_000).await, ["third"]);
    let listed = store
        .application_secrets(owned.id, T0 + 500)
        .await
        .expect("list");
    assert_eq!(listed.len(), 3);
    assert!(listed.windows(2).all(|w| w[0].id < w[1].id));

    assert_eq!(
        renew(
            &store,
            owned.id + 100,
            Ownership::Any,
            new_secret("x", T0, None),
            Retire::Now
        )
        .await,
        None
    );
}

async fn scenario_find_application_by_uid(store: Arc<dyn Store>) {
    let owner = user(&store, "owner").await;
    let instance = app(&store, "the-client-id", None).await;
    let owned = app(&store, "owned-client-id", Some(owner.id)).await;

    let (found, digest) = store
        .find_application_by_uid("the-client-id")
        .await
        .expect("find")
        .expect("the application");
    assert_eq!(found, instance);
    assert_eq!(digest.len(), 1);
    assert_eq!(digest[0].digest, "digest-of-the-client-id");
    assert_eq!(digest[0].expires_at, None);
    // Any owner.
    let (found, _) = store
        .find_application_by_uid("owned-client-id")
        .await
        .expect("find")
        .expect("the application");
    assert_eq!(found, owned);
    for missing in ["THE-CLIENT-ID", "the-client", "", "the-client-id "] {
        assert!(
            store
                .find_application_by_uid(missing)
                .await
                .expect("find")
                .is_none(),
            "{missing:?}"
        );
    }
}

async fn scenario_list_owned_applications(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    let mut alices = Vec::new();
    for i in 0..5 {
        alices.push(app(&store, &format!("alice-{i}"), Some(alice.id)).await);
        app(&store, &format!("bob-{i}"), Some(bob.id)).await;
        app(&store, &format!("instance-{i}"), None).await;
    }
    let (apps, total) = store
        .list_owned_applications(alice.id, PageRequest::default())
        .await
        .expect("list");
    assert_eq!(total, 5);
    assert_eq!(apps, alices);
    let (apps, total) = store
        .list_owned_applications(alice.id, page(2, 2))
        .await
        .expect("list");
    assert_eq!(total, 5);
    assert_eq!(ids(&apps), ids(&alices[2..4]));
    let (apps, total) = store
        .list_owned_applications(alice.id, page(4, 2))
        .await
        .expect("list");
    assert!(apps.is_empty());
    assert_eq!(total, 5);
    let (apps, total) = store
        .list_owned_applications(bob.id + 100, PageRequest::default())
        .await
        .expect("list");
    assert!(apps.is_empty());
    assert_eq!(total, 0);
}

async fn scenario_update_application(store: Arc<dyn Store>) {
    let owner = user(&store, "owner").await;
    let a = app(&store, "a", None).await;
    let owned = app(&store, "owned", Some(owner.id)).await;

    let updated = store
        .update_application(
            a.id,
            ApplicationUpdate {
                name: Some("Renamed".to_owned()),
                ..ApplicationUpdate::default()
            },
            T0 + 10,
        )
        .await
        .expect("update")
        .expect("the application");
    assert_eq!(updated.name, "Renamed");
    assert_eq!(updated.scopes, a.scopes);
    assert_eq!(updated.created_at, a.created_at);
    assert_eq!(updated.id, a.id);

    let updated = store
        .update_application(
            a.id,
            ApplicationUpdate {
                scopes: Some(Scopes::from_stored("email openid")),
                ..ApplicationUpdate::default()
            },
            T0 + 20,
        )
        .await
        .expect("update")
        .expect("the application");
    assert_eq!(updated.name, "Renamed");
    assert_eq!(updated.scopes.joined(), "email openid");
    assert_eq!(updated.redirect_uri, a.redirect_uri);
    assert!(updated.confidential);
    assert!(!updated.trusted);

    let updated = store
        .update_application(
            a.id,
            ApplicationUpdate {
                redirect_uri: Some("https://new.example/cb".to_owned()),
                confidential: Some(false),
                trusted: Some(true),
                ..ApplicationUpdate::default()
            },
            T0 + 25,
        )
        .await
        .expect("update")
        .expect("the application");
    assert_eq!(updated.name, "Renamed");
    assert_eq!(updated.scopes.joined(), "email openid");
    assert_eq!(updated.redirect_uri, "https://new.example/cb");
    assert!(!updated.confidential);
    assert!(updated.trusted);
    let found = store
        .find_application(a.id, Ownership::Instance)
        .await
        .expect("find");
    assert_eq!(found.as_ref(), Some(&updated));
    // The secret is untouched.
    let (_, digest) = store
        .find_application_by_uid("a")
        .await
        .expect("find")
        .expect("the application");
    assert_eq!(digest[0].digest, "digest-of-a");

    // No change at all still answers with the application.
    let same = store
        .update_application(a.id, ApplicationUpdate::default(), T0 + 30)
        .await
        .expect("update");
    assert_eq!(same.as_ref(), Some(&updated));
    // Owned applications too.
    let updated_owned = store
        .update_application(
            owned.id,
            ApplicationUpdate {
                name: Some("Mine".to_owned()),
                ..ApplicationUpdate::default()
            },
            T0 + 40,
        )
        .await
        .expect("update")
        .expect("the application");
    assert_eq!(updated_owned.owner_id, Some(owner.id));
    assert_eq!(updated_owned.name, "Mine");

    let missing = store
        .update_application(owned.id + 100, ApplicationUpdate::default(), T0)
        .await
        .expect("update");
    assert_eq!(missing, None);
}

// --- scenarios: users ------------------------------------------------------------------

async fn scenario_insert_and_find_users(store: Arc<dyn Store>) {
    let mut input = new_user("Jane.Doe");
    input.admin = true;
    input.password_digest = None;
    let jane = store.insert_user(input.clone()).await.expect("insert");
    assert!(jane.id > 0);
    assert_eq!(jane.username, "Jane.Doe");
    assert_eq!(jane.email, input.email);
    assert_eq!(jane.name, input.name);
    assert!(jane.admin);
    assert_eq!(jane.state, UserState::Active);
    assert_eq!(jane.created_at, T0);
    let bob = user(&store, "bob").await;
    assert!(!bob.admin);
    assert!(bob.id > jane.id);

    assert_eq!(
        store.find_user(jane.id).await.expect("find"),
        Some(jane.clone())
    );
    assert_eq!(
        store.find_user(bob.id).await.expect("find"),
        Some(bob.clone())
    );
    assert_eq!(store.find_user(bob.id + 100).await.expect("find"), None);

    // By username, ignoring case; the stored spelling is kept.
    for spelling in ["Jane.Doe", "jane.doe", "JANE.DOE", "jAnE.dOe"] {
        let found = store.find_user_by_username(spelling).await.expect("find");
        assert_eq!(found.as_ref(), Some(&jane), "{spelling}");
    }
    for missing in ["jane", "jane.doe ", "jane_doe", "", "%", "jane.do_"] {
        assert_eq!(
            store.find_user_by_username(missing).await.expect("find"),
            None,
            "{missing:?}"
        );
    }
}

async fn scenario_user_conflicts(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    let mut dup = new_user("alice");
    dup.email = "other@example.com".to_owned();
    assert_conflict(store.insert_user(dup.clone()).await, "username");
    dup.username = "ALICE".to_owned();
    assert_conflict(store.insert_user(dup).await, "username");

    let mut dup = new_user("bob");
    dup.email = "Alice@Example.COM".to_owned();
    assert_conflict(store.insert_user(dup).await, "email");

    // Both taken: SQLite reports the email (it checks the unique indexes
    // last-declared first); PostgreSQL is made to agree.
    let mut dup = new_user("Alice");
    dup.email = "ALICE@example.com".to_owned();
    assert_conflict(store.insert_user(dup).await, "email");

    // Only ASCII letters fold (SQLite's NOCASE): these are different emails.
    let mut e1 = new_user("e1");
    e1.email = "élan@example.com".to_owned();
    let mut e2 = new_user("e2");
    e2.email = "Élan@example.com".to_owned();
    store.insert_user(e1).await.expect("é");
    store.insert_user(e2).await.expect("É");

    // Nothing half-written, and the store still takes good rows.
    let bob = user(&store, "bob").await;
    assert!(bob.id > alice.id);
    let (users, total) = store
        .list_users(&UserFilter::default(), PageRequest::default())
        .await
        .expect("list");
    assert_eq!(total, 4);
    assert_eq!(users.len(), 4);
}

async fn scenario_set_user_state(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    assert!(store
        .set_user_state(alice.id, UserState::Blocked)
        .await
        .expect("set"));
    let found = store
        .find_user(alice.id)
        .await
        .expect("find")
        .expect("alice");
    assert_eq!(found.state, UserState::Blocked);
    assert_eq!(
        found.access_denied_reason(),
        Some("Your account has been blocked.")
    );
    // Others are untouched.
    let found = store.find_user(bob.id).await.expect("find").expect("bob");
    assert_eq!(found.state, UserState::Active);
    // Setting the same state again still finds the user.
    assert!(store
        .set_user_state(alice.id, UserState::Blocked)
        .await
        .expect("set"));
    assert!(store
        .set_user_state(alice.id, UserState::Active)
        .await
        .expect("set"));
    let found = store
        .find_user(alice.id)
        .await
        .expect("find")
        .expect("alice");
    assert_eq!(found, alice);
    assert!(!store
        .set_user_state(bob.id + 100, UserState::Blocked)
        .await
        .expect("set"));
}

async fn scenario_list_users(store: Arc<dyn Store>) {
    let mut names = Vec::new();
    for (username, name, email) in [
        ("alice", "Alice Liddell", "alice@wonder.example"),
        ("alice2", "Another Alice", "a2@example.com"),
        ("bob_b", "Bob 100% Builder", "bob@example.com"),
        ("carol", "Carol", "CAROL@Example.com"),
        ("dave", "Dave", "dave@example.com"),
    ] {
        let mut u = new_user(username);
        u.name = name.to_owned();
        u.email = email.to_owned();
        names.push(store.insert_user(u).await.expect("insert"));
    }
    let list = |filter: UserFilter, p: PageRequest| {
        let store = store.clone();
        async move {
            let (users, total) = store.list_users(&filter, p).await.expect("list");
            (
                users.into_iter().map(|u| u.username).collect::<Vec<_>>(),
                total,
            )
        }
    };
    let by_username = |u: &str| UserFilter {
        username: Some(u.to_owned()),
        search: None,
        search_emails: true,
        ..UserFilter::default()
    };
    let search = |s: &str| UserFilter {
        username: None,
        search: Some(s.to_owned()),
        search_emails: true,
        ..UserFilter::default()
    };
    // Without emails (what non-administrators get).
    let search_names = |s: &str| UserFilter {
        username: None,
        search: Some(s.to_owned()),
        search_emails: false,
        ..UserFilter::default()
    };

    let (all, total) = list(UserFilter::default(), PageRequest::default()).await;
    assert_eq!(total, 5);
    // Newest first.
    assert_eq!(all, ["dave", "carol", "bob_b", "alice2", "alice"]);
    let (page2, total) = list(UserFilter::default(), page(2, 2)).await;
    assert_eq!(total, 5);
    assert_eq!(page2, ["bob_b", "alice2"]);
    let (past, total) = list(UserFilter::default(), page(9, 2)).await;
    assert!(past.is_empty());
    assert_eq!(total, 5);

    // Exact username, any case.
    assert_eq!(
        list(by_username("ALICE"), PageRequest::default()).await,
        (vec!["alice".to_owned()], 1)
    );
    assert_eq!(
        list(by_username("alic"), PageRequest::default()).await,
        (vec![], 0)
    );

    // Substring of username, name or email, any case.
    let cases: &[(&str, &[&str])] = &[
        ("ALICE", &["alice2", "alice"]),
        ("liddell", &["alice"]),
        ("example.com", &["dave", "carol", "bob_b", "alice2"]),
        ("carol@example", &["carol"]),
        // Wildcards are literal.
        ("%", &["bob_b"]),
        ("_", &["bob_b"]),
        ("100%", &["bob_b"]),
        ("alic_", &[]),
        ("\\", &[]),
        ("nobody", &[]),
    ];
    for (s, want) in cases {
        let (got, total) = list(search(s), PageRequest::default()).await;
        assert_eq!(got, *want, "search {s:?}");
        assert_eq!(total, want.len() as u64, "search {s:?}");
    }
    // Emails are searched only when asked to.
    for (s, want) in [
        ("carol@example", &[][..]),
        ("example.com", &[][..]),
        ("ALICE", &["alice2", "alice"][..]),
        ("liddell", &["alice"][..]),
    ] {
        let (got, total) = list(search_names(s), PageRequest::default()).await;
        assert_eq!(got, want, "search without emails {s:?}");
        assert_eq!(total, want.len() as u64, "search without emails {s:?}");
    }
    // Both filters at once.
    let both = UserFilter {
        username: Some("Alice2".to_owned()),
        search: Some("another".to_owned()),
        search_emails: true,
        ..UserFilter::default()
    };
    assert_eq!(
        list(both, PageRequest::default()).await,
        (vec!["alice2".to_owned()], 1)
    );
    let (got, total) = list(search("a"), page(2, 2)).await;
    assert_eq!(total, 5);
    assert_eq!(got, ["bob_b", "alice2"]);
}

async fn scenario_update_user(store: Arc<dyn Store>) {
    // An administrator who stays, so that alice may be demoted again.
    let mut keeper = new_user("keeper");
    keeper.admin = true;
    store.insert_user(keeper).await.expect("insert_user");
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;

    let updated = store
        .update_user(
            alice.id,
            UserUpdate {
                name: Some("Alice L.".to_owned()),
                admin: Some(true),
                ..UserUpdate::default()
            },
        )
        .await
        .expect("update")
        .expect("alice");
    assert_eq!(updated.name, "Alice L.");
    assert!(updated.admin);
    assert_eq!(updated.username, alice.username);
    assert_eq!(updated.email, alice.email);
    assert_eq!(updated.created_at, alice.created_at);
    assert_eq!(
        store.find_user(alice.id).await.expect("find").as_ref(),
        Some(&updated)
    );

    // A change of case of one's own username is no conflict.
    let renamed = store
        .update_user(
            alice.id,
            UserUpdate {
                username: Some("Alice".to_owned()),
                email: Some("ALICE@example.com".to_owned()),
                ..UserUpdate::default()
            },
        )
        .await
        .expect("update")
        .expect("alice");
    assert_eq!(renamed.username, "Alice");
    assert_eq!(renamed.email, "ALICE@example.com");
    assert_eq!(
        store
            .find_user_by_username("alice")
            .await
            .expect("find")
            .as_ref(),
        Some(&renamed)
    );

    // Taking someone else's, in any case, is.
    assert_conflict(
        store
            .update_user(
                bob.id,
                UserUpdate {
                    username: Some("ALICE".to_owned()),
                    ..UserUpdate::default()
                },
            )
            .await,
        "username",
    );
    assert_conflict(
        store
            .update_user(
                bob.id,
                UserUpdate {
                    email: Some("alice@EXAMPLE.com".to_owned()),
                    ..UserUpdate::default()
                },
            )
            .await,
        "email",
    );
    assert_eq!(
        store.find_user(bob.id).await.expect("find"),
        Some(bob.clone())
    );

    // admin back off; nothing else changes.
    let demoted = store
        .update_user(
            alice.id,
            UserUpdate {
                admin: Some(false),
                password_digest: Some("$argon2id$other".to_owned()),
                ..UserUpdate::default()
            },
        )
        .await
        .expect("update")
        .expect("alice");
    assert!(!demoted.admin);
    assert_eq!(demoted.name, "Alice L.");

    let unchanged = store
        .update_user(bob.id, UserUpdate::default())
        .await
        .expect("update");
    assert_eq!(unchanged, Some(bob.clone()));
    let missing = store
        .update_user(bob.id + 100, UserUpdate::default())
        .await
        .expect("update");
    assert_eq!(missing, None);
}

fn is_last_administrator<T: std::fmt::Debug>(r: Result<T, StoreError>) {
    assert!(
        matches!(r, Err(StoreError::LastAdministrator)),
        "expected LastAdministrator, got {r:?}"
    );
}

async fn admin(store: &Arc<dyn Store>, username: &str) -> User {
    let mut u = new_user(username);
    u.admin = true;
    store.insert_user(u).await.expect("insert_user")
}

/// The last active administrator is never blocked, demoted or deleted, by
/// any path, also when two changes race.
async fn scenario_keep_an_administrator(store: Arc<dyn Store>) {
    let root = admin(&store, "root").await;
    let plain = user(&store, "plain").await;
    let demote = UserUpdate {
        admin: Some(false),
        ..UserUpdate::default()
    };
    is_last_administrator(store.set_user_state(root.id, UserState::Blocked).await);
    is_last_administrator(store.update_user(root.id, demote.clone()).await);
    is_last_administrator(store.delete_user(root.id).await);
    let found = store.find_user(root.id).await.expect("find").expect("root");
    assert!(found.admin && found.state == UserState::Active);
    // Others come and go as before; other changes to root are fine.
    assert!(store
        .set_user_state(plain.id, UserState::Blocked)
        .await
        .expect("block"));
    assert!(store.delete_user(plain.id).await.expect("delete"));
    let renamed = store
        .update_user(
            root.id,
            UserUpdate {
                name: Some("Root".to_owned()),
                admin: Some(true),
                ..UserUpdate::default()
            },
        )
        .await
        .expect("update")
        .expect("root");
    assert_eq!(renamed.name, "Root");

    // With a second one, either may go, but not both.
    let second = admin(&store, "second").await;
    assert!(store
        .set_user_state(root.id, UserState::Blocked)
        .await
        .expect("block"));
    is_last_administrator(store.update_user(second.id, demote.clone()).await);
    assert!(store
        .set_user_state(root.id, UserState::Active)
        .await
        .expect("unblock"));
    // A blocked administrator does not count, and may be deleted.
    let third = admin(&store, "third").await;
    assert!(store
        .set_user_state(third.id, UserState::Blocked)
        .await
        .expect("block"));
    assert!(store.delete_user(third.id).await.expect("delete"));

    // Demote the second one again: root is the only active administrator.
    assert!(store
        .set_user_state(second.id, UserState::Blocked)
        .await
        .expect("block"));

    // Two changes racing, each of which would leave only the other: exactly
    // one of them wins.
    let active_admins = |store: Arc<dyn Store>| async move {
        store
            .list_users(&UserFilter::default(), PageRequest::default())
            .await
            .expect("list")
            .0
            .into_iter()
            .filter(|u| u.admin && u.state == UserState::Active)
            .count()
    };
    for round in 0..5 {
        let x = admin(&store, &format!("racer{round}")).await;
        let (block_root, delete_x) = tokio::join!(
            store.set_user_state(root.id, UserState::Blocked),
            store.delete_user(x.id),
        );
        assert_eq!(active_admins(store.clone()).await, 1, "round {round}");
        assert!(
            block_root.is_ok() != delete_x.is_ok(),
            "round {round}: exactly one wins: {block_root:?} {delete_x:?}"
        );
        if block_root.is_ok() {
            is_last_administrator(delete_x);
            assert!(store
                .set_user_state(root.id, UserState::Active)
                .await
                .expect("unblock"));
            assert!(store.delete_user(x.id).await.expect("delete"));
        } else {
            is_last_administrator(block_root);
        }
    }
}

fn gone_or_ok<T: std::fmt::Debug>(what: &str, r: &Result<T, StoreError>) {
    assert!(
        matches!(r, Ok(_) | Err(StoreError::Gone)),
        "{what}: expected success or Gone, got {r:?}"
    );
}

/// A write whose parent (application or user) is deleted first, or at the
/// same moment, fails with `Gone`, never another error: every parent/child
/// pair the API writes.
async fn scenario_writes_racing_a_parents_delete(store: Arc<dyn Store>) {
    // After the delete: always Gone.
    let owner = user(&store, "gone-owner").await;
    let a = app(&store, "gone-app", None).await;
    assert!(store
        .delete_application(a.id, Ownership::Any)
        .await
        .expect("delete"));
    assert!(store.delete_user(owner.id).await.expect("delete"));
    let r = store
        .insert_oauth_token(new_oauth_token(
            a.id,
            None,
            "gone-access",
            None,
            "gone-family",
        ))
        .await;
    assert!(matches!(r, Err(StoreError::Gone)), "{r:?}");
    let r = store.insert_token(new_token(owner.id, "gone-pat")).await;
    assert!(matches!(r, Err(StoreError::Gone)), "{r:?}");
    let r = store
        .insert_application(new_app("gone-owned", Some(owner.id)))
        .await;
    assert!(matches!(r, Err(StoreError::Gone)), "{r:?}");
    let r = store
        .insert_grant(new_grant(a.id, owner.id, "gone-code"))
        .await;
    assert!(matches!(r, Err(StoreError::Gone)), "{r:?}");

    // At the same moment: success or Gone, and nothing left behind.
    for round in 0..6 {
        let owner = user(&store, &format!("racing-owner-{round}")).await;
        let a = app(&store, &format!("racing-app-{round}"), None).await;
        let mut writes = Vec::new();
        for i in 0..6 {
            let s = store.clone();
            let (app_id, user_id) = (a.id, owner.id);
            writes.push(tokio::spawn(async move {
                let t = s
                    .insert_oauth_token(new_oauth_token(
                        app_id,
                        None,
                        &format!("race-{round}-{i}"),
                        None,
                        &format!("race-family-{round}-{i}"),
                    ))
                    .await
                    .map(|_| ());
                let p = s
                    .insert_token(new_token(user_id, &format!("race-pat-{round}-{i}")))
                    .await
                    .map(|_| ());
                let o = s
                    .insert_application(new_app(&format!("race-owned-{round}-{i}"), Some(user_id)))
                    .await
                    .map(|_| ());
                (t, p, o)
            }));
        }
        let (deleted_app, deleted_user) = tokio::join!(
            store.delete_application(a.id, Ownership::Any),
            store.delete_user(owner.id)
        );
        assert!(deleted_app.expect("delete app") && deleted_user.expect("delete user"));
        for w in writes {
            let (t, p, o) = w.await.expect("task");
            gone_or_ok("oauth token", &t);
            gone_or_ok("personal access token", &p);
            gone_or_ok("owned application", &o);
        }
        // Whatever got in before the delete went with it.
        let (owned, total) = store
            .list_owned_applications(owner.id, PageRequest::default())
            .await
            .expect("list");
        assert_eq!((owned.len(), total), (0, 0), "round {round}");
        let (tokens, _) = store
            .list_tokens(&tokens_of(Some(owner.id)), PageRequest::default())
            .await
            .expect("list");
        assert!(tokens.is_empty(), "round {round}");
    }
}

async fn scenario_delete_user_cascades(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    let a_token1 = store
        .insert_token(new_token(alice.id, "alice-1"))
        .await
        .expect("token");
    let a_token2 = store
        .insert_token(new_token(alice.id, "alice-2"))
        .await
        .expect("token");
    let a_app = app(&store, "alice-app", Some(alice.id)).await;
    let b_token = store
        .insert_token(new_token(bob.id, "bob-1"))
        .await
        .expect("token");
    let b_app = app(&store, "bob-app", Some(bob.id)).await;
    let instance = app(&store, "instance", None).await;

    assert!(store.delete_user(alice.id).await.expect("delete"));
    assert_eq!(store.find_user(alice.id).await.expect("find"), None);
    assert_eq!(
        store.find_user_by_username("alice").await.expect("find"),
        None
    );
    for digest in ["alice-1", "alice-2"] {
        assert!(store
            .find_token_by_digest(digest)
            .await
            .expect("find")
            .is_none());
    }
    assert_eq!(store.find_token(a_token1.id).await.expect("find"), None);
    assert_eq!(store.find_token(a_token2.id).await.expect("find"), None);
    assert_eq!(
        store
            .find_application(a_app.id, Ownership::Any)
            .await
            .expect("find"),
        None
    );
    assert!(store
        .find_application_by_uid("alice-app")
        .await
        .expect("find")
        .is_none());
    let (apps, total) = store
        .list_owned_applications(alice.id, PageRequest::default())
        .await
        .expect("list");
    assert!(apps.is_empty());
    assert_eq!(total, 0);

    // Others' rows are untouched.
    let found = store
        .find_token_by_digest("bob-1")
        .await
        .expect("find")
        .expect("bob's token");
    assert_eq!(found.token, b_token);
    assert_eq!(
        store
            .find_application(b_app.id, Ownership::Any)
            .await
            .expect("find"),
        Some(b_app)
    );
    assert_eq!(
        store
            .find_application(instance.id, Ownership::Instance)
            .await
            .expect("find"),
        Some(instance)
    );
    let (tokens, total) = store
        .list_tokens(&tokens_of(None), PageRequest::default())
        .await
        .expect("list");
    assert_eq!(total, 1);
    assert_eq!(tokens, vec![b_token]);

    assert!(!store.delete_user(alice.id).await.expect("delete"));
    // The username and email are free again.
    user(&store, "alice").await;
}

// --- scenarios: tokens ---------------------------------------------------------------

async fn scenario_tokens(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    let input = new_token(alice.id, "digest-1");
    let token = store.insert_token(input.clone()).await.expect("insert");
    assert!(token.id > 0);
    assert_eq!(token.user_id, alice.id);
    assert_eq!(token.name, input.name);
    assert_eq!(token.scopes.joined(), "api read_user");
    assert_eq!(token.expires_at, None);
    assert!(!token.revoked);
    assert_eq!(token.created_at, T0 + 1);

    let found = store
        .find_token_by_digest("digest-1")
        .await
        .expect("find")
        .expect("the token");
    assert_eq!(found.token, token);
    assert_eq!(found.user, alice);
    // The owner as they are now.
    store
        .set_user_state(alice.id, UserState::Blocked)
        .await
        .expect("block");
    let found = store
        .find_token_by_digest("digest-1")
        .await
        .expect("find")
        .expect("the token");
    assert_eq!(found.user.state, UserState::Blocked);

    for missing in ["DIGEST-1", "digest-", "digest-1 ", ""] {
        assert!(
            store
                .find_token_by_digest(missing)
                .await
                .expect("find")
                .is_none(),
            "{missing:?}"
        );
    }

    // Digests are unique, across users too.
    let bob = user(&store, "bob").await;
    assert_conflict(
        store.insert_token(new_token(bob.id, "digest-1")).await,
        "token_digest",
    );
    // A token for nobody breaks a foreign key: not a conflict.
    assert_gone(
        store
            .insert_token(new_token(bob.id + 100, "digest-2"))
            .await,
    );
    let second = store
        .insert_token(new_token(bob.id, "digest-2"))
        .await
        .expect("insert");
    assert!(second.id > token.id);
}

async fn scenario_revoke_token(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    let t1 = store
        .insert_token(new_token(alice.id, "d1"))
        .await
        .expect("insert");
    let t2 = store
        .insert_token(new_token(alice.id, "d2"))
        .await
        .expect("insert");
    assert!(store.revoke_token(t1.id).await.expect("revoke"));
    let found = store
        .find_token_by_digest("d1")
        .await
        .expect("find")
        .expect("t1");
    assert!(found.token.revoked);
    let found = store.find_token(t2.id).await.expect("find").expect("t2");
    assert!(!found.revoked);
    // Revoking again still finds the token.
    assert!(store.revoke_token(t1.id).await.expect("revoke"));
    assert!(!store.revoke_token(t2.id + 100).await.expect("revoke"));
}

async fn scenario_expires_at_round_trip(store: Arc<dyn Store>, env: Env) {
    let alice = user(&store, "alice").await;
    let dates = [
        date!(2030 - 01 - 31),
        date!(2024 - 02 - 29),
        date!(1999 - 12 - 31),
        date!(9999 - 12 - 31),
    ];
    for (i, d) in dates.iter().enumerate() {
        let mut t = new_token(alice.id, &format!("dated-{i}"));
        t.expires_at = Some(*d);
        let inserted = store.insert_token(t).await.expect("insert");
        assert_eq!(inserted.expires_at, Some(*d));
        let found = store
            .find_token_by_digest(&format!("dated-{i}"))
            .await
            .expect("find")
            .expect("the token");
        assert_eq!(found.token.expires_at, Some(*d));
        assert_eq!(
            store
                .find_token(inserted.id)
                .await
                .expect("find")
                .and_then(|t| t.expires_at),
            Some(*d)
        );
    }
    let undated = store
        .insert_token(new_token(alice.id, "undated"))
        .await
        .expect("insert");
    assert_eq!(undated.expires_at, None);
    let found = store
        .find_token_by_digest("undated")
        .await
        .expect("find")
        .expect("the token");
    assert_eq!(found.token.expires_at, None);

    // Stored the same way on every backend: "YYYY-MM-DD" text, or NULL.
    let stored = env
        .raw
        .strings("SELECT expires_at FROM personal_access_tokens ORDER BY id")
        .await;
    assert_eq!(
        stored,
        vec![
            Some("2030-01-31".to_owned()),
            Some("2024-02-29".to_owned()),
            Some("1999-12-31".to_owned()),
            Some("9999-12-31".to_owned()),
            None,
        ]
    );
}

async fn scenario_find_and_list_tokens(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    let mut alices = Vec::new();
    let mut all = Vec::new();
    for i in 0..4 {
        let a = store
            .insert_token(new_token(alice.id, &format!("a{i}")))
            .await
            .expect("insert");
        alices.push(a.clone());
        all.push(a);
        let b = store
            .insert_token(new_token(bob.id, &format!("b{i}")))
            .await
            .expect("insert");
        all.push(b);
    }
    assert_eq!(
        store.find_token(alices[1].id).await.expect("find").as_ref(),
        Some(&alices[1])
    );
    let last = all.last().map(|t| t.id).unwrap_or_default();
    assert_eq!(store.find_token(last + 100).await.expect("find"), None);

    let (tokens, total) = store
        .list_tokens(&tokens_of(None), PageRequest::default())
        .await
        .expect("list");
    assert_eq!(total, 8);
    assert_eq!(tokens, all);
    let (tokens, total) = store
        .list_tokens(&tokens_of(Some(alice.id)), PageRequest::default())
        .await
        .expect("list");
    assert_eq!(total, 4);
    assert_eq!(tokens, alices);
    let (tokens, total) = store
        .list_tokens(&tokens_of(Some(alice.id)), page(2, 3))
        .await
        .expect("list");
    assert_eq!(total, 4);
    assert_eq!(tokens, alices[3..].to_vec());
    let (tokens, total) = store
        .list_tokens(&tokens_of(None), page(3, 3))
        .await
        .expect("list");
    assert_eq!(total, 8);
    assert_eq!(tokens, all[6..].to_vec());
    let (tokens, total) = store
        .list_tokens(&tokens_of(Some(bob.id + 100)), PageRequest::default())
        .await
        .expect("list");
    assert!(tokens.is_empty());
    assert_eq!(total, 0);
    // Revoked tokens are listed too.
    store.revoke_token(alices[0].id).await.expect("revoke");
    let (tokens, _) = store
        .list_tokens(&tokens_of(Some(alice.id)), page(1, 1))
        .await
        .expect("list");
    assert!(tokens.first().is_some_and(|t| t.revoked));
}

async fn scenario_rotate_token(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    let old = store
        .insert_token(new_token(alice.id, "old"))
        .await
        .expect("insert");
    let mut replacement = new_token(alice.id, "new");
    replacement.expires_at = Some(date!(2031 - 06 - 30));
    let new = store
        .rotate_token(old.id, replacement.clone())
        .await
        .expect("rotate")
        .expect("a new token");
    assert!(new.id > old.id);
    assert!(!new.revoked);
    assert_eq!(new.user_id, alice.id);
    assert_eq!(new.expires_at, Some(date!(2031 - 06 - 30)));
    assert!(store
        .find_token(old.id)
        .await
        .expect("find")
        .is_some_and(|t| t.revoked));
    let found = store
        .find_token_by_digest("new")
        .await
        .expect("find")
        .expect("the new token");
    assert_eq!(found.token, new);

    // Already revoked: nothing is written.
    let again = store
        .rotate_token(old.id, new_token(alice.id, "newer"))
        .await
        .expect("rotate");
    assert_eq!(again, None);
    assert!(store
        .find_token_by_digest("newer")
        .await
        .expect("find")
        .is_none());
    let missing = store
        .rotate_token(new.id + 100, new_token(alice.id, "newest"))
        .await
        .expect("rotate");
    assert_eq!(missing, None);

    // A taken digest fails the whole rotation: the old token stays live.
    assert_conflict(
        store.rotate_token(new.id, new_token(alice.id, "old")).await,
        "token_digest",
    );
    assert!(store
        .find_token(new.id)
        .await
        .expect("find")
        .is_some_and(|t| !t.revoked));
    let (tokens, total) = store
        .list_tokens(&tokens_of(Some(alice.id)), PageRequest::default())
        .await
        .expect("list");
    assert_eq!(total, 2);
    assert_eq!(tokens.len(), 2);
}

async fn scenario_rotate_token_concurrently(store: Arc<dyn Store>, env: Env) {
    let alice = user(&store, "alice").await;
    let old = store
        .insert_token(new_token(alice.id, "old"))
        .await
        .expect("insert");
    let other = env.open_instance().await.store();
    let mut tasks = Vec::new();
    let barrier = Arc::new(tokio::sync::Barrier::new(8));
    for i in 0..8 {
        let s = if i % 2 == 0 {
            store.clone()
        } else {
            other.clone()
        };
        let t = new_token(alice.id, &format!("rotated-{i}"));
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            s.rotate_token(old.id, t).await
        }));
    }
    let mut winners = 0;
    for task in tasks {
        if task.await.expect("task").expect("rotate").is_some() {
            winners += 1;
        }
    }
    assert_eq!(winners, 1);
    let (tokens, total) = store
        .list_tokens(&tokens_of(Some(alice.id)), PageRequest::default())
        .await
        .expect("list");
    assert_eq!(total, 2);
    assert_eq!(tokens.iter().filter(|t| !t.revoked).count(), 1);
}

// --- scenarios: bootstrap ----------------------------------------------------------

fn first_user(n: usize) -> (NewUser, NewToken) {
    let mut u = new_user(&format!("root{n}"));
    u.admin = true;
    // The token's user_id is whatever the store gives the new user.
    (u, new_token(0, &format!("root-token-{n}")))
}

async fn scenario_bootstrap_first_user(store: Arc<dyn Store>) {
    let (u, t) = first_user(0);
    let made = store
        .bootstrap_first_user(u, t, |user, _| {
            vec![latchkey_core::audit::NewAuditEvent::new(
                &latchkey_core::context::Context::system(),
                1_000,
                "user_created",
                latchkey_core::audit::Entity::user(user.id),
                "Added user",
            )]
        })
        .await
        .expect("bootstrap")
        .expect("the first user");
    let (root, token) = (made.user, made.token);
    // Its event committed with it, and is handed back as stored.
    assert_eq!(made.audit.len(), 1);
    assert_eq!(made.audit[0].entity_id, root.id);
    assert_eq!(made.audit[0].entity_path.as_deref(), Some("root0"));
    let stored = store
        .find_audit_event(made.audit[0].id)
        .await
        .expect("find")
        .expect("the event");
    assert_eq!(stored.event_name, "user_created");
    assert_eq!(root.username, "root0");
    assert!(root.admin);
    assert_eq!(root.state, UserState::Active);
    assert_eq!(token.user_id, root.id);
    assert!(!token.revoked);
    let found = store
        .find_token_by_digest("root-token-0")
        .await
        .expect("find")
        .expect("the token");
    assert_eq!(found.user, root);
    assert_eq!(found.token, token);

    let (u, t) = first_user(1);
    let second = store
        .bootstrap_first_user(u, t, |_, _| Vec::new())
        .await
        .expect("bootstrap");
    assert!(second.is_none());
    assert_eq!(
        store.find_user_by_username("root1").await.expect("find"),
        None
    );
    assert!(store
        .find_token_by_digest("root-token-1")
        .await
        .expect("find")
        .is_none());
}

async fn scenario_bootstrap_concurrently(store: Arc<dyn Store>, env: Env) {
    // Two more instances on the same database, as other servers would be.
    let stores = [
        store.clone(),
        env.open_instance().await.store(),
        env.open_instance().await.store(),
    ];
    const CALLERS: usize = 12;
    // Several rounds, emptying the table in between: the first round opens
    // the pools' connections, later ones race on warm connections.
    for round in 0..4 {
        let barrier = Arc::new(tokio::sync::Barrier::new(CALLERS));
        let mut tasks = Vec::new();
        for n in 0..CALLERS {
            let s = stores[n % stores.len()].clone();
            // Not an administrator: the round deletes it again, and the
            // last active administrator may not be deleted.
            let (mut u, t) = first_user(round * 100 + n);
            u.admin = false;
            let barrier = barrier.clone();
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                s.bootstrap_first_user(u, t, |_, _| Vec::new()).await
            }));
        }
        let mut created = Vec::new();
        for task in tasks {
            if let Some(made) = task.await.expect("task").expect("bootstrap") {
                created.push(made.user);
            }
        }
        assert_eq!(created.len(), 1, "round {round}: {created:?}");
        let (users, total) = store
            .list_users(&UserFilter::default(), PageRequest::default())
            .await
            .expect("list");
        assert_eq!(total, 1, "round {round}");
        assert_eq!(users, created, "round {round}");
        let (tokens, total) = store
            .list_tokens(&tokens_of(None), PageRequest::default())
            .await
            .expect("list");
        assert_eq!(total, 1, "round {round}");
        assert_eq!(tokens.first().map(|t| t.user_id), Some(created[0].id));
        assert!(store.delete_user(created[0].id).await.expect("delete"));
    }

    // Once there is a user, made any way, bootstrap does nothing.
    user(&store, "later").await;
    let (u, t) = first_user(99);
    assert!(store
        .bootstrap_first_user(u, t, |_, _| Vec::new())
        .await
        .expect("bootstrap")
        .is_none());
}

// --- scenarios: OAuth sign-in -------------------------------------------------------

async fn scenario_find_user_for_login(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    let mut nopass = new_user("nopass");
    nopass.password_digest = None;
    let nopass = store.insert_user(nopass).await.expect("insert");

    for login in ["alice", "ALICE", "alice@example.com", "Alice@EXAMPLE.com"] {
        let (found, digest) = store
            .find_user_for_login(login)
            .await
            .expect("find")
            .unwrap_or_else(|| panic!("no user for {login:?}"));
        assert_eq!(found, alice, "{login:?}");
        assert_eq!(digest.as_deref(), Some("$argon2id$not-a-real-hash"));
    }
    let (found, digest) = store
        .find_user_for_login("NoPass")
        .await
        .expect("find")
        .expect("nopass");
    assert_eq!(found, nopass);
    assert_eq!(digest, None);
    for missing in ["alic", "alice@example", "", "%", "alice@example.co_"] {
        assert!(
            store
                .find_user_for_login(missing)
                .await
                .expect("find")
                .is_none(),
            "{missing:?}"
        );
    }

    // One user's email is another's username: the username wins, whichever
    // was created first.
    let mut by_email = new_user("first");
    by_email.email = "SHARED".to_owned();
    let by_email = store.insert_user(by_email).await.expect("insert");
    let by_username = user(&store, "shared").await;
    let (found, _) = store
        .find_user_for_login("Shared")
        .await
        .expect("find")
        .expect("a user");
    assert_eq!(found, by_username);
    assert_ne!(found, by_email);
}

async fn scenario_login_throttle(store: Arc<dyn Store>) {
    let key = "ip:192.0.2.1";
    let window = 100;
    assert_eq!(
        store
            .login_failures(key, 1000, window)
            .await
            .expect("count"),
        0
    );
    assert_eq!(
        store
            .record_login_failure(key, 1000, window)
            .await
            .expect("record"),
        1
    );
    assert_eq!(
        store
            .record_login_failure(key, 1050, window)
            .await
            .expect("record"),
        2
    );
    assert_eq!(
        store
            .record_login_failure(key, 1099, window)
            .await
            .expect("record"),
        3
    );
    assert_eq!(
        store
            .login_failures(key, 1099, window)
            .await
            .expect("count"),
        3
    );
    // The window is over once now - window reaches its start.
    assert_eq!(
        store
            .login_failures(key, 1100, window)
            .await
            .expect("count"),
        0
    );
    // Another key is counted apart.
    assert_eq!(
        store
            .login_failures("user:alice", 1050, window)
            .await
            .expect("count"),
        0
    );
    assert_eq!(
        store
            .record_login_failure("user:alice", 1050, window)
            .await
            .expect("record"),
        1
    );
    // A failure after the window starts a new one.
    assert_eq!(
        store
            .record_login_failure(key, 1100, window)
            .await
            .expect("record"),
        1
    );
    assert_eq!(
        store
            .record_login_failure(key, 1150, window)
            .await
            .expect("record"),
        2
    );
    assert_eq!(
        store
            .login_failures(key, 1199, window)
            .await
            .expect("count"),
        2
    );
    assert_eq!(
        store
            .login_failures(key, 1200, window)
            .await
            .expect("count"),
        0
    );

    store.clear_login_failures(key).await.expect("clear");
    assert_eq!(
        store
            .login_failures(key, 1150, window)
            .await
            .expect("count"),
        0
    );
    // Clearing what is not there is fine.
    store.clear_login_failures(key).await.expect("clear");
    assert_eq!(
        store
            .record_login_failure(key, 1160, window)
            .await
            .expect("record"),
        1
    );
    assert_eq!(
        store
            .login_failures("user:alice", 1060, window)
            .await
            .expect("count"),
        1
    );
}

async fn scenario_login_throttle_concurrently(store: Arc<dyn Store>, env: Env) {
    let other = env.open_instance().await.store();
    const CALLERS: u32 = 16;
    let barrier = Arc::new(tokio::sync::Barrier::new(CALLERS as usize));
    let mut tasks = Vec::new();
    for i in 0..CALLERS {
        let s = if i % 2 == 0 {
            store.clone()
        } else {
            other.clone()
        };
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            s.record_login_failure("ip:198.51.100.7", 5000 + i64::from(i), 60_000)
                .await
        }));
    }
    let mut counts = Vec::new();
    for task in tasks {
        counts.push(task.await.expect("task").expect("record"));
    }
    counts.sort_unstable();
    // Every failure counted once: each caller saw a different count.
    assert_eq!(counts, (1..=CALLERS).collect::<Vec<_>>());
    assert_eq!(
        store
            .login_failures("ip:198.51.100.7", 6000, 60_000)
            .await
            .expect("count"),
        CALLERS
    );
}

async fn scenario_sessions(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    let session = NewSession {
        digest: "session-1".to_owned(),
        user_id: alice.id,
        created_at: 1000,
        expires_at: 2000,
        ip: None,
        user_agent: None,
    };
    store.insert_session(session.clone()).await.expect("insert");
    assert_eq!(
        store
            .find_session_user("session-1", 1999)
            .await
            .expect("find"),
        Some((alice.clone(), 1000))
    );
    assert_eq!(
        store
            .find_session_user("session-1", 2000)
            .await
            .expect("find"),
        None
    );
    assert_eq!(
        store
            .find_session_user("session-2", 1500)
            .await
            .expect("find"),
        None
    );
    assert_eq!(
        store
            .find_session_user("SESSION-1", 1500)
            .await
            .expect("find"),
        None
    );
    // A user's live sessions, newest first, with where they began.
    let bob = user(&store, "bob").await;
    for (digest, who, created_at, expires_at, ip, ua) in [
        (
            "session-a2",
            alice.id,
            1200,
            3000,
            Some("10.0.0.1"),
            Some("Firefox"),
        ),
        ("session-b1", bob.id, 1100, 3000, None, None),
    ] {
        let s = NewSession {
            digest: digest.to_owned(),
            user_id: who,
            created_at,
            expires_at,
            ip: ip.map(str::to_owned),
            user_agent: ua.map(str::to_owned),
        };
        store.insert_session(s).await.expect("insert");
    }
    let listed = store.user_sessions(alice.id, 1500).await.expect("list");
    let digests: Vec<&str> = listed.iter().map(|s| s.digest.as_str()).collect();
    assert_eq!(digests, ["session-a2", "session-1"]);
    assert_eq!(listed[0].ip.as_deref(), Some("10.0.0.1"));
    assert_eq!(listed[0].user_agent.as_deref(), Some("Firefox"));
    assert_eq!((listed[0].created_at, listed[0].expires_at), (1200, 3000));
    assert_eq!(
        (listed[1].ip.clone(), listed[1].user_agent.clone()),
        (None, None)
    );
    let listed = store.user_sessions(alice.id, 2000).await.expect("list");
    assert_eq!(listed.len(), 1, "an expired session is not listed");
    store.delete_session("session-a2").await.expect("delete");
    store.delete_session("session-b1").await.expect("delete");

    // The user as they are now.
    store
        .set_user_state(alice.id, UserState::Blocked)
        .await
        .expect("block");
    let found = store
        .find_session_user("session-1", 1500)
        .await
        .expect("find")
        .expect("alice");
    assert_eq!(found.0.state, UserState::Blocked);

    assert_conflict(store.insert_session(session.clone()).await, "digest");
    let mut orphan = session.clone();
    orphan.digest = "orphan".to_owned();
    orphan.user_id = alice.id + 100;
    assert_gone(store.insert_session(orphan).await);

    store.delete_session("session-1").await.expect("delete");
    assert_eq!(
        store
            .find_session_user("session-1", 1500)
            .await
            .expect("find"),
        None
    );
    store
        .delete_session("session-1")
        .await
        .expect("delete again");
    // The digest can be used again.
    store.insert_session(session).await.expect("insert");
}

fn new_grant(application_id: i64, user_id: i64, code: &str) -> NewGrant {
    NewGrant {
        application_id,
        user_id,
        code_digest: code.to_owned(),
        redirect_uri: "https://app.example/callback".to_owned(),
        scopes: Scopes::from_stored("openid read_user"),
        code_challenge: None,
        code_challenge_method: None,
        nonce: None,
        created_at: T0,
        expires_at: T0 + 600_000,
        auth_time: Some(T0 - 5_000),
    }
}

fn new_oauth_token(
    application_id: i64,
    user_id: Option<i64>,
    access: &str,
    refresh: Option<&str>,
    family: &str,
) -> NewOAuthToken {
    NewOAuthToken {
        application_id,
        user_id,
        token_digest: access.to_owned(),
        refresh_digest: refresh.map(str::to_owned),
        scopes: Scopes::from_stored("api"),
        created_at: T0,
        expires_at: T0 + 7_200_000,
        family: family.to_owned(),
        previous_token_id: None,
        grant_id: None,
        // A user's token remembers when they signed in.
        auth_time: user_id.map(|_| T0 - 5_000),
        client_secret_id: None,
    }
}

async fn find_by_access(store: &Arc<dyn Store>, digest: &str) -> Option<OAuthToken> {
    store
        .find_oauth_token_by_access(digest)
        .await
        .expect("find")
        .map(|f| f.token)
}

async fn scenario_grants(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    let a = app(&store, "client", None).await;
    let mut input = new_grant(a.id, alice.id, "code-1");
    input.code_challenge = Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".to_owned());
    input.code_challenge_method = Some(PkceMethod::S256);
    input.nonce = Some("n-0S6_WzA2Mj".to_owned());
    let grant = store.insert_grant(input.clone()).await.expect("insert");
    assert!(grant.id > 0);
    assert_eq!(grant.application_id, a.id);
    assert_eq!(grant.user_id, alice.id);
    assert_eq!(grant.redirect_uri, input.redirect_uri);
    assert_eq!(grant.scopes.joined(), "openid read_user");
    assert_eq!(grant.code_challenge, input.code_challenge);
    assert_eq!(grant.code_challenge_method, Some(PkceMethod::S256));
    assert_eq!(grant.nonce, input.nonce);
    assert_eq!(grant.created_at, T0);
    assert_eq!(grant.expires_at, T0 + 600_000);
    assert_eq!(grant.redeemed_at, None);
    assert_eq!(
        store.find_grant("code-1").await.expect("find"),
        Some(grant.clone())
    );
    assert_eq!(store.find_grant("CODE-1").await.expect("find"), None);

    let mut plain = new_grant(a.id, alice.id, "code-2");
    plain.code_challenge = Some("verifier".to_owned());
    plain.code_challenge_method = Some(PkceMethod::Plain);
    let plain = store.insert_grant(plain).await.expect("insert");
    assert_eq!(plain.code_challenge_method, Some(PkceMethod::Plain));
    let bare = store
        .insert_grant(new_grant(a.id, alice.id, "code-3"))
        .await
        .expect("insert");
    assert_eq!(
        (bare.code_challenge, bare.code_challenge_method, bare.nonce),
        (None, None, None)
    );

    assert_conflict(
        store
            .insert_grant(new_grant(a.id, alice.id, "code-1"))
            .await,
        "code_digest",
    );
    assert_gone(
        store
            .insert_grant(new_grant(a.id + 100, alice.id, "code-4"))
            .await,
    );
    assert_gone(
        store
            .insert_grant(new_grant(a.id, alice.id + 100, "code-5"))
            .await,
    );

    // Redeeming: once.
    let mut t = new_oauth_token(
        a.id,
        Some(alice.id),
        "access-1",
        Some("refresh-1"),
        "family-1",
    );
    t.grant_id = Some(grant.id);
    let token = store
        .redeem_grant(grant.id, T0 + 5, t)
        .await
        .expect("redeem")
        .expect("a token");
    assert_eq!(token.grant_id, Some(grant.id));
    assert_eq!(token.user_id, Some(alice.id));
    assert_eq!(token.auth_time, Some(T0 - 5_000));
    assert_eq!(
        find_by_access(&store, "access-1")
            .await
            .and_then(|t| t.auth_time),
        Some(T0 - 5_000)
    );
    assert_eq!(
        store
            .find_grant("code-1")
            .await
            .expect("find")
            .and_then(|g| g.redeemed_at),
        Some(T0 + 5)
    );
    let again = store
        .redeem_grant(
            grant.id,
            T0 + 6,
            new_oauth_token(a.id, Some(alice.id), "access-2", None, "family-2"),
        )
        .await
        .expect("redeem");
    assert_eq!(again, None);
    assert_eq!(find_by_access(&store, "access-2").await, None);
    assert_eq!(
        store
            .find_grant("code-1")
            .await
            .expect("find")
            .and_then(|g| g.redeemed_at),
        Some(T0 + 5)
    );
    let missing = store
        .redeem_grant(
            bare.id + 100,
            T0,
            new_oauth_token(a.id, Some(alice.id), "access-3", None, "family-3"),
        )
        .await
        .expect("redeem");
    assert_eq!(missing, None);

    // A token that cannot be written leaves the grant unredeemed.
    assert_conflict(
        store
            .redeem_grant(
                bare.id,
                T0 + 7,
                new_oauth_token(a.id, Some(alice.id), "access-1", None, "family-4"),
            )
            .await,
        "token_digest",
    );
    assert_eq!(
        store
            .find_grant("code-3")
            .await
            .expect("find")
            .and_then(|g| g.redeemed_at),
        None
    );
}

async fn scenario_redeem_grant_concurrently(store: Arc<dyn Store>, env: Env) {
    let alice = user(&store, "alice").await;
    let a = app(&store, "client", None).await;
    let grant = store
        .insert_grant(new_grant(a.id, alice.id, "code"))
        .await
        .expect("insert");
    let other = env.open_instance().await.store();
    const CALLERS: usize = 8;
    let barrier = Arc::new(tokio::sync::Barrier::new(CALLERS));
    let mut tasks = Vec::new();
    for i in 0..CALLERS {
        let s = if i % 2 == 0 {
            store.clone()
        } else {
            other.clone()
        };
        let t = new_oauth_token(
            a.id,
            Some(alice.id),
            &format!("access-{i}"),
            None,
            &format!("f{i}"),
        );
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            s.redeem_grant(grant.id, T0 + 1, t).await
        }));
    }
    let mut issued = Vec::new();
    for task in tasks {
        if let Some(t) = task.await.expect("task").expect("redeem") {
            issued.push(t);
        }
    }
    assert_eq!(issued.len(), 1, "{issued:?}");
    let mut found = 0;
    for i in 0..CALLERS {
        if find_by_access(&store, &format!("access-{i}"))
            .await
            .is_some()
        {
            found += 1;
        }
    }
    assert_eq!(found, 1);
}

async fn scenario_oauth_tokens(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    let a = app(&store, "client", None).await;
    let owned = app(&store, "owned", Some(alice.id)).await;

    let input = new_oauth_token(
        a.id,
        Some(alice.id),
        "access-1",
        Some("refresh-1"),
        "family-1",
    );
    let token = store
        .insert_oauth_token(input.clone())
        .await
        .expect("insert");
    assert!(token.id > 0);
    assert_eq!(token.application_id, a.id);
    assert_eq!(token.user_id, Some(alice.id));
    assert_eq!(token.scopes.joined(), "api");
    assert_eq!(token.created_at, T0);
    assert_eq!(token.expires_at, T0 + 7_200_000);
    assert_eq!(token.revoked_at, None);
    assert_eq!(token.refreshed_at, None);
    assert!(token.has_refresh_token);
    assert_eq!(token.family, "family-1");
    assert_eq!(token.previous_token_id, None);
    assert_eq!(token.grant_id, None);
    assert!(token.is_active(T0 + 1));

    let found = store
        .find_oauth_token_by_access("access-1")
        .await
        .expect("find")
        .expect("the token");
    assert_eq!(found.token, token);
    assert_eq!(found.application, a);
    assert_eq!(found.user.as_ref(), Some(&alice));
    let found = store
        .find_oauth_token_by_refresh("refresh-1")
        .await
        .expect("find")
        .expect("the token");
    assert_eq!(found.token, token);
    assert_eq!(found.application, a);
    assert_eq!(found.user.as_ref(), Some(&alice));
    // The digests are not interchangeable.
    assert!(store
        .find_oauth_token_by_access("refresh-1")
        .await
        .expect("find")
        .is_none());
    assert!(store
        .find_oauth_token_by_refresh("access-1")
        .await
        .expect("find")
        .is_none());
    assert!(store
        .find_oauth_token_by_access("ACCESS-1")
        .await
        .expect("find")
        .is_none());

    // A client-credentials token: no user, no refresh token.
    let mut cc = new_oauth_token(owned.id, None, "access-cc", None, "family-cc");
    cc.previous_token_id = Some(token.id);
    let cc = store.insert_oauth_token(cc).await.expect("insert");
    assert!(!cc.has_refresh_token);
    assert_eq!(cc.user_id, None);
    assert_eq!(cc.previous_token_id, Some(token.id));
    let found = store
        .find_oauth_token_by_access("access-cc")
        .await
        .expect("find")
        .expect("the token");
    assert_eq!(found.token, cc);
    assert_eq!(found.application, owned);
    assert!(found.user.is_none());

    // Several tokens may lack a refresh token; digests are unique.
    store
        .insert_oauth_token(new_oauth_token(
            a.id,
            None,
            "access-cc2",
            None,
            "family-cc2",
        ))
        .await
        .expect("a second token without refresh");
    assert_conflict(
        store
            .insert_oauth_token(new_oauth_token(
                a.id,
                None,
                "access-1",
                Some("refresh-x"),
                "f",
            ))
            .await,
        "token_digest",
    );
    assert_conflict(
        store
            .insert_oauth_token(new_oauth_token(
                a.id,
                None,
                "access-x",
                Some("refresh-1"),
                "f",
            ))
            .await,
        "refresh_digest",
    );
    // Both taken: reported as SQLite checks them, last-declared first.
    assert_conflict(
        store
            .insert_oauth_token(new_oauth_token(
                a.id,
                None,
                "access-1",
                Some("refresh-1"),
                "f",
            ))
            .await,
        "refresh_digest",
    );
    assert_gone(
        store
            .insert_oauth_token(new_oauth_token(a.id + 100, None, "access-y", None, "f"))
            .await,
    );
}

async fn scenario_refresh_oauth_token(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    let a = app(&store, "client", None).await;
    let old = store
        .insert_oauth_token(new_oauth_token(
            a.id,
            Some(alice.id),
            "access-1",
            Some("refresh-1"),
            "fam",
        ))
        .await
        .expect("insert");
    let mut next = new_oauth_token(a.id, Some(alice.id), "access-2", Some("refresh-2"), "fam");
    next.previous_token_id = Some(old.id);
    next.created_at = T0 + 100;
    let new = store
        .refresh_oauth_token(old.id, T0 + 100, next)
        .await
        .expect("refresh")
        .expect("a new token");
    assert_eq!(new.previous_token_id, Some(old.id));
    assert_eq!(new.family, "fam");
    let old_now = find_by_access(&store, "access-1").await.expect("old token");
    assert_eq!(old_now.refreshed_at, Some(T0 + 100));
    // Refreshing does not revoke the old access token by itself.
    assert_eq!(old_now.revoked_at, None);

    // Only once.
    let again = store
        .refresh_oauth_token(
            old.id,
            T0 + 200,
            new_oauth_token(a.id, Some(alice.id), "access-3", Some("refresh-3"), "fam"),
        )
        .await
        .expect("refresh");
    assert_eq!(again, None);
    assert_eq!(find_by_access(&store, "access-3").await, None);

    // The first use of the new token retires the old one.
    store
        .finish_refresh(new.id, old.id, T0 + 300)
        .await
        .expect("finish");
    let old_now = find_by_access(&store, "access-1").await.expect("old token");
    assert_eq!(old_now.revoked_at, Some(T0 + 300));
    let new_now = find_by_access(&store, "access-2").await.expect("new token");
    assert_eq!(new_now.previous_token_id, None);
    assert_eq!(new_now.revoked_at, None);
    // Again: the old one stays revoked when it was, nothing fails.
    store
        .finish_refresh(new.id, old.id, T0 + 400)
        .await
        .expect("finish again");
    let old_now = find_by_access(&store, "access-1").await.expect("old token");
    assert_eq!(old_now.revoked_at, Some(T0 + 300));

    // No refresh token, or a revoked token: nothing to refresh.
    let cc = store
        .insert_oauth_token(new_oauth_token(a.id, None, "access-cc", None, "cc"))
        .await
        .expect("insert");
    let refreshed = store
        .refresh_oauth_token(
            cc.id,
            T0,
            new_oauth_token(a.id, None, "access-4", None, "cc"),
        )
        .await
        .expect("refresh");
    assert_eq!(refreshed, None);
    assert!(store
        .revoke_oauth_token(new.id, T0 + 500)
        .await
        .expect("revoke"));
    let refreshed = store
        .refresh_oauth_token(
            new.id,
            T0 + 600,
            new_oauth_token(a.id, None, "access-5", None, "fam"),
        )
        .await
        .expect("refresh");
    assert_eq!(refreshed, None);
    assert_eq!(find_by_access(&store, "access-4").await, None);
    assert_eq!(find_by_access(&store, "access-5").await, None);
    let missing = store
        .refresh_oauth_token(
            new.id + 100,
            T0,
            new_oauth_token(a.id, None, "access-6", None, "x"),
        )
        .await
        .expect("refresh");
    assert_eq!(missing, None);

    // A new token that cannot be written leaves the old one unspent.
    let live = store
        .insert_oauth_token(new_oauth_token(
            a.id,
            Some(alice.id),
            "access-7",
            Some("refresh-7"),
            "f7",
        ))
        .await
        .expect("insert");
    assert_conflict(
        store
            .refresh_oauth_token(
                live.id,
                T0 + 700,
                new_oauth_token(a.id, Some(alice.id), "access-1", Some("refresh-8"), "f7"),
            )
            .await,
        "token_digest",
    );
    assert_eq!(
        find_by_access(&store, "access-7")
            .await
            .and_then(|t| t.refreshed_at),
        None
    );

    // The code behind a chain is swept once it expires (its tokens keep no
    // grant). A refresh that read the token before the sweep still names
    // the grant: its new token is issued without one, not refused.
    let grant = store
        .insert_grant(new_grant(a.id, alice.id, "code-swept"))
        .await
        .expect("grant");
    let mut first = new_oauth_token(a.id, Some(alice.id), "access-9", Some("refresh-9"), "f9");
    first.grant_id = Some(grant.id);
    let first = store.insert_oauth_token(first).await.expect("insert");
    assert!(
        store
            .delete_expired(grant.expires_at + 1)
            .await
            .expect("sweep")
            >= 1
    );
    assert_eq!(
        find_by_access(&store, "access-9").await.map(|t| t.grant_id),
        Some(None),
        "the sweep forgot the chain's grant"
    );
    let mut next = new_oauth_token(a.id, Some(alice.id), "access-10", Some("refresh-10"), "f9");
    next.previous_token_id = Some(first.id);
    next.grant_id = Some(grant.id);
    let issued = store
        .refresh_oauth_token(first.id, T0 + 800, next)
        .await
        .expect("a refresh after its code was swept")
        .expect("a new token");
    assert_eq!(issued.grant_id, None);
    assert_eq!(issued.previous_token_id, Some(first.id));
}

async fn scenario_refresh_oauth_token_concurrently(store: Arc<dyn Store>, env: Env) {
    let alice = user(&store, "alice").await;
    let a = app(&store, "client", None).await;
    let old = store
        .insert_oauth_token(new_oauth_token(
            a.id,
            Some(alice.id),
            "access",
            Some("refresh"),
            "fam",
        ))
        .await
        .expect("insert");
    let other = env.open_instance().await.store();
    const CALLERS: usize = 8;
    let barrier = Arc::new(tokio::sync::Barrier::new(CALLERS));
    let mut tasks = Vec::new();
    for i in 0..CALLERS {
        let s = if i % 2 == 0 {
            store.clone()
        } else {
            other.clone()
        };
        let t = new_oauth_token(
            a.id,
            Some(alice.id),
            &format!("access-{i}"),
            Some(&format!("refresh-{i}")),
            "fam",
        );
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            s.refresh_oauth_token(old.id, T0 + 1, t).await
        }));
    }
    let mut issued = 0;
    for task in tasks {
        if task.await.expect("task").expect("refresh").is_some() {
            issued += 1;
        }
    }
    assert_eq!(issued, 1);
}

async fn scenario_oauth_revocation(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    let a = app(&store, "client", None).await;
    let grant = store
        .insert_grant(new_grant(a.id, alice.id, "code"))
        .await
        .expect("insert");
    let grant2 = store
        .insert_grant(new_grant(a.id, alice.id, "code-2"))
        .await
        .expect("insert");
    // Family F: from the grant, then refreshed twice (later tokens do not
    // carry the grant); family G: another chain; H: from grant2.
    let mut f1 = new_oauth_token(a.id, Some(alice.id), "f1", Some("rf1"), "F");
    f1.grant_id = Some(grant.id);
    let f1 = store.insert_oauth_token(f1).await.expect("insert");
    let f2 = store
        .insert_oauth_token(new_oauth_token(
            a.id,
            Some(alice.id),
            "f2",
            Some("rf2"),
            "F",
        ))
        .await
        .expect("insert");
    let f3 = store
        .insert_oauth_token(new_oauth_token(
            a.id,
            Some(alice.id),
            "f3",
            Some("rf3"),
            "F",
        ))
        .await
        .expect("insert");
    let g1 = store
        .insert_oauth_token(new_oauth_token(a.id, Some(alice.id), "g1", None, "G"))
        .await
        .expect("insert");
    let mut h1 = new_oauth_token(a.id, Some(alice.id), "h1", None, "H");
    h1.grant_id = Some(grant2.id);
    let h1 = store.insert_oauth_token(h1).await.expect("insert");

    assert!(store
        .revoke_oauth_token(f2.id, T0 + 1)
        .await
        .expect("revoke"));
    assert!(!store
        .revoke_oauth_token(f2.id, T0 + 2)
        .await
        .expect("revoke again"));
    assert!(!store
        .revoke_oauth_token(h1.id + 100, T0)
        .await
        .expect("revoke missing"));
    assert_eq!(
        find_by_access(&store, "f2")
            .await
            .and_then(|t| t.revoked_at),
        Some(T0 + 1)
    );

    // Code replay: the whole family the grant started, not yet revoked.
    assert_eq!(
        store
            .revoke_grant_tokens(grant.id, T0 + 10)
            .await
            .expect("revoke"),
        2
    );
    assert_eq!(
        find_by_access(&store, "f1")
            .await
            .and_then(|t| t.revoked_at),
        Some(T0 + 10)
    );
    assert_eq!(
        find_by_access(&store, "f2")
            .await
            .and_then(|t| t.revoked_at),
        Some(T0 + 1)
    );
    assert_eq!(
        find_by_access(&store, "f3")
            .await
            .and_then(|t| t.revoked_at),
        Some(T0 + 10)
    );
    assert_eq!(
        find_by_access(&store, "g1")
            .await
            .and_then(|t| t.revoked_at),
        None
    );
    assert_eq!(
        find_by_access(&store, "h1")
            .await
            .and_then(|t| t.revoked_at),
        None
    );
    assert_eq!(
        store
            .revoke_grant_tokens(grant.id, T0 + 11)
            .await
            .expect("revoke"),
        0
    );
    assert_eq!(
        store
            .revoke_grant_tokens(grant2.id + 100, T0)
            .await
            .expect("revoke"),
        0
    );

    // Refresh-token reuse: the whole chain.
    assert_eq!(
        store
            .revoke_token_family("G", T0 + 20)
            .await
            .expect("revoke"),
        1
    );
    assert_eq!(
        store
            .revoke_token_family("G", T0 + 21)
            .await
            .expect("revoke"),
        0
    );
    assert_eq!(
        store.revoke_token_family("nope", T0).await.expect("revoke"),
        0
    );
    assert_eq!(
        find_by_access(&store, "g1")
            .await
            .and_then(|t| t.revoked_at),
        Some(T0 + 20)
    );
    assert_eq!(
        find_by_access(&store, "h1")
            .await
            .and_then(|t| t.revoked_at),
        None
    );
    let _ = (f1, f3, g1);
}

async fn scenario_delete_expired(store: Arc<dyn Store>) {
    const DAY: i64 = 24 * 3600 * 1000;
    let now = T0 + 30 * DAY;
    let alice = user(&store, "alice").await;
    let a = app(&store, "client", None).await;
    let token = |access: &str, refresh: Option<&str>, expires_at: i64| {
        let mut t = new_oauth_token(a.id, Some(alice.id), access, refresh, access);
        t.expires_at = expires_at;
        t
    };
    let insert = |t: NewOAuthToken| {
        let store = store.clone();
        async move { store.insert_oauth_token(t).await.expect("insert") }
    };

    // Tokens: revoked or spent ones are kept a week (to detect reuse).
    let old_revoked = insert(token("old-revoked", None, now + DAY)).await;
    store
        .revoke_oauth_token(old_revoked.id, now - 8 * DAY)
        .await
        .expect("revoke");
    let recent_revoked = insert(token("recent-revoked", None, now + DAY)).await;
    store
        .revoke_oauth_token(recent_revoked.id, now - 6 * DAY)
        .await
        .expect("revoke");
    insert(token("expired-no-refresh", None, now - 8 * DAY)).await;
    insert(token("recently-expired-no-refresh", None, now - 1)).await;
    insert(token("expired-refreshable", Some("r1"), now - 8 * DAY)).await;
    let spent = insert(token("expired-spent", Some("r2"), now - 8 * DAY)).await;
    store
        .refresh_oauth_token(
            spent.id,
            now - 9 * DAY,
            token("successor", Some("r3"), now + DAY),
        )
        .await
        .expect("refresh")
        .expect("a successor");
    insert(token("live", None, now + DAY)).await;

    // Grants, one with a token.
    let mut expired_grant = new_grant(a.id, alice.id, "expired-code");
    expired_grant.expires_at = now - 1;
    let expired_grant = store.insert_grant(expired_grant).await.expect("insert");
    let mut from_grant = token("from-grant", Some("r4"), now + DAY);
    from_grant.grant_id = Some(expired_grant.id);
    insert(from_grant).await;
    let mut live_grant = new_grant(a.id, alice.id, "live-code");
    live_grant.expires_at = now;
    store.insert_grant(live_grant).await.expect("insert");

    // Sessions.
    for (digest, expires_at) in [("expired-session", now - 1), ("live-session", now)] {
        store
            .insert_session(NewSession {
                digest: digest.to_owned(),
                user_id: alice.id,
                created_at: T0,
                expires_at,
                ip: None,
                user_agent: None,
            })
            .await
            .expect("insert");
    }

    // Sign-in counters.
    store
        .record_login_failure("old", now - 3600 * 1000 - 1, 60_000)
        .await
        .expect("record");
    store
        .record_login_failure("recent", now - 3600 * 1000, 3_600_001)
        .await
        .expect("record");

    // 3 tokens + 1 grant + 1 session + 1 counter.
    assert_eq!(store.delete_expired(now).await.expect("delete"), 6);

    for gone in ["old-revoked", "expired-no-refresh", "expired-spent"] {
        assert_eq!(find_by_access(&store, gone).await, None, "{gone}");
    }
    for kept in [
        "recent-revoked",
        "recently-expired-no-refresh",
        "expired-refreshable",
        "successor",
        "live",
        "from-grant",
    ] {
        assert!(find_by_access(&store, kept).await.is_some(), "{kept}");
    }
    // The token outlives its grant, without the link.
    assert_eq!(
        find_by_access(&store, "from-grant")
            .await
            .and_then(|t| t.grant_id),
        None
    );
    assert_eq!(store.find_grant("expired-code").await.expect("find"), None);
    assert!(store.find_grant("live-code").await.expect("find").is_some());
    assert_eq!(
        store
            .find_session_user("expired-session", now - 2)
            .await
            .expect("find"),
        None
    );
    assert!(store
        .find_session_user("live-session", now - 2)
        .await
        .expect("find")
        .is_some());
    assert_eq!(
        store
            .login_failures("recent", now, 3_600_001)
            .await
            .expect("count"),
        1
    );
    // The old counter is gone: a new failure starts from one, even inside
    // the window it would have had.
    assert_eq!(
        store
            .record_login_failure("old", now - 3600 * 1000, 10 * 3600 * 1000)
            .await
            .expect("record"),
        1
    );

    // Nothing more to do.
    assert_eq!(store.delete_expired(now).await.expect("delete"), 0);
}

async fn scenario_oauth_cascades(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    let a = app(&store, "client", None).await;
    let alices_app = app(&store, "alices", Some(alice.id)).await;

    store
        .insert_grant(new_grant(a.id, alice.id, "alice-code"))
        .await
        .expect("grant");
    store
        .insert_grant(new_grant(a.id, bob.id, "bob-code"))
        .await
        .expect("grant");
    store
        .insert_grant(new_grant(alices_app.id, bob.id, "bob-code-2"))
        .await
        .expect("grant");
    for (app_id, user_id, access) in [
        (a.id, Some(alice.id), "alice-token"),
        (a.id, Some(bob.id), "bob-token"),
        (alices_app.id, Some(bob.id), "bob-token-2"),
        (alices_app.id, None, "cc-token"),
        (a.id, None, "cc-token-2"),
    ] {
        store
            .insert_oauth_token(new_oauth_token(app_id, user_id, access, None, access))
            .await
            .expect("token");
    }
    for (digest, user_id) in [("alice-session", alice.id), ("bob-session", bob.id)] {
        store
            .insert_session(NewSession {
                digest: digest.to_owned(),
                user_id,
                created_at: T0,
                expires_at: T0 + 1000,
                ip: None,
                user_agent: None,
            })
            .await
            .expect("session");
    }

    // Deleting Alice takes her grants, tokens, sessions and her
    // application with everything issued for it.
    assert!(store.delete_user(alice.id).await.expect("delete"));
    assert_eq!(store.find_grant("alice-code").await.expect("find"), None);
    assert_eq!(store.find_grant("bob-code-2").await.expect("find"), None);
    assert!(store.find_grant("bob-code").await.expect("find").is_some());
    for gone in ["alice-token", "bob-token-2", "cc-token"] {
        assert_eq!(find_by_access(&store, gone).await, None, "{gone}");
    }
    for kept in ["bob-token", "cc-token-2"] {
        assert!(find_by_access(&store, kept).await.is_some(), "{kept}");
    }
    assert_eq!(
        store
            .find_session_user("alice-session", T0)
            .await
            .expect("find"),
        None
    );
    assert!(store
        .find_session_user("bob-session", T0)
        .await
        .expect("find")
        .is_some());

    // Deleting an application takes its grants and tokens.
    assert!(store
        .delete_application(a.id, Ownership::Instance)
        .await
        .expect("delete"));
    assert_eq!(store.find_grant("bob-code").await.expect("find"), None);
    assert_eq!(find_by_access(&store, "bob-token").await, None);
    assert_eq!(find_by_access(&store, "cc-token-2").await, None);
    // Bob and his session remain.
    assert!(store
        .find_session_user("bob-session", T0)
        .await
        .expect("find")
        .is_some());
}

// --- tests that are not scenarios ---------------------------------------------------

#[test]
fn migration_versions_match() {
    let versions =
        |m: &sqlx::migrate::Migrator| -> Vec<i64> { m.iter().map(|m| m.version).collect() };
    let sqlite = versions(&latchkey_sqlite::MIGRATOR);
    assert!(!sqlite.is_empty());
    assert_eq!(sqlite, versions(&latchkey_postgres::MIGRATOR));
}

#[test]
fn database_urls() {
    assert_eq!(
        database_url("postgres://postgres@127.0.0.1:5432/postgres", "x"),
        "postgres://postgres@127.0.0.1:5432/x"
    );
    assert_eq!(
        database_url("postgres://u:p@h/postgres?sslmode=disable", "x"),
        "postgres://u:p@h/x?sslmode=disable"
    );
    assert_eq!(
        database_url("postgres://h:5432", "x"),
        "postgres://h:5432/x"
    );
}

#[path = "conformance/more.rs"]
mod more;

#[path = "conformance/audit.rs"]
mod audit;

#[path = "conformance/profiles.rs"]
mod profiles;

#[path = "conformance/groups.rs"]
mod groups;

#[path = "conformance/listing.rs"]
mod listing;

#[path = "conformance/announcements.rs"]
mod announcements;
#[path = "conformance/redemptions.rs"]
mod redemptions;
#[path = "conformance/secrets.rs"]
mod secrets;
#[path = "conformance/state.rs"]
mod state;
