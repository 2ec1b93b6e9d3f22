//! Opening the database, building the services and serving.

use latchkey_core::error::Chain;
use std::sync::Arc;

use anyhow::{bail, Context};
use latchkey_core::user::Bootstrapped;
use latchkey_core::{Config, Services, Store, SystemClock};
use latchkey_sql::{Backend, SqlStore};
use tokio::net::TcpListener;

use crate::config::{ServeSettings, Settings};
use crate::http::{self, AppState};

/// What opening the database does to its schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schema {
    /// Apply pending migrations (`serve` by default, `migrate`).
    Migrate,
    /// Require the schema to be exactly current (`serve --no-migrate`).
    RequireCurrent,
    /// A database's data must not change (`apply --dry-run`): require a
    /// current schema, but create it in an empty database.
    KeepData,
}

impl Schema {
    /// What a command that may only plan (`--dry-run`) or also change opens
    /// the database with.
    pub fn for_changes(dry_run: bool) -> Self {
        if dry_run {
            Schema::KeepData
        } else {
            Schema::Migrate
        }
    }
}

/// The newest schema version this build knows (both backends share the list).
pub fn known_schema_version() -> i64 {
    latchkey_sqlite::MIGRATOR
        .iter()
        .map(|m| m.version)
        .max()
        .unwrap_or(0)
}

fn check_version(found: Option<i64>, schema: Schema) -> anyhow::Result<()> {
    let known = known_schema_version();
    let found_v = found.unwrap_or(0);
    if found_v > known {
        bail!(
            "the database schema is at version {found_v}, newer than this latchkey knows ({known}); \
             run a newer latchkey (refusing to start rather than misread the data)"
        );
    }
    if schema == Schema::RequireCurrent && found_v < known {
        bail!("the database schema is at version {found_v} but this latchkey needs {known}; run `latchkey migrate` first");
    }
    if schema == Schema::KeepData && found_v != 0 && found_v < known {
        bail!("the database schema is at version {found_v} but this latchkey needs {known}; run `latchkey migrate` first (a dry run changes nothing)");
    }
    Ok(())
}

/// Only one `serve` process may use a SQLite database file: the token cache
/// (and SQLite's single writer) assume every write goes through it; several
/// instances belong on PostgreSQL. The lock is an exclusive `flock` on
/// `PATH-serve.lock` beside the database, released when the process exits
/// (also when it is killed). CLI commands (`users create`, `tokens create`,
/// `db copy`, ...) do not take it. Returns the open lock file to hold.
pub fn lock_sqlite_for_serving(url: &str) -> anyhow::Result<Option<std::fs::File>> {
    use std::os::unix::fs::OpenOptionsExt;
    let Some(path) = latchkey_sqlite::database_file(url) else {
        return Ok(None);
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if matches!(std::fs::metadata(dir), Err(e) if e.kind() == std::io::ErrorKind::NotFound) {
            bail!(
                "the directory {} of the SQLite database {} does not exist: create it, or correct {}",
                dir.display(),
                path.display(),
                crate::config::typed("database_url")
            );
        }
    }
    let path = path.display();
    let lock_path = format!("{path}-serve.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&lock_path)
        .with_context(|| format!("cannot open the lock file {lock_path}"))?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => Err(AlreadyServed {
            path: path.to_string(),
            lock_path,
        }
        .into()),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("cannot lock {lock_path}"))
        }
    }
}

/// Another process serves the SQLite database (holds its serve lock).
#[derive(Debug, thiserror::Error)]
#[error(
    "another latchkey server is already serving the SQLite database {path} (it holds \
     {lock_path}); run one server per SQLite file, or use PostgreSQL for several instances"
)]
pub struct AlreadyServed {
    pub path: String,
    pub lock_path: String,
}

/// Open the database named by `url` (SQLite or PostgreSQL, by scheme) and
/// migrate or check its schema.
pub async fn open_store(settings: &Settings, schema: Schema) -> anyhow::Result<Arc<dyn Store>> {
    open_store_with(settings, schema, false).await
}

/// For a command that works on what a database holds (`users list`,
/// `tokens create`, …): a SQLite file must exist (a mistyped path is named,
/// not created empty; `migrate`, `serve` and `apply` create one). Commands
/// that only read require a current schema (`Schema::RequireCurrent`).
pub async fn open_existing_store(
    settings: &Settings,
    schema: Schema,
) -> anyhow::Result<Arc<dyn Store>> {
    if let Some(path) = latchkey_sqlite::database_file(&settings.database_url) {
        if !path.exists() {
            bail!(
                "there is no SQLite database at {} (from {}): name the database the server uses, \
                 or make a new one with `latchkey migrate`",
                path.display(),
                crate::config::typed(settings.database_url_key)
            );
        }
    }
    open_store(settings, schema).await
}

/// [`open_store`] for `serve`: on PostgreSQL, also watch for outages so that
/// requests fail fast while the server refuses connections.
pub async fn open_store_for_serving(
    settings: &Settings,
    schema: Schema,
) -> anyhow::Result<Arc<dyn Store>> {
    open_store_with(settings, schema, true).await
}

async fn open_store_with(
    settings: &Settings,
    schema: Schema,
    serving: bool,
) -> anyhow::Result<Arc<dyn Store>> {
    let url = settings.database_url.as_str();
    if crate::config::is_sqlite(url) {
        let mut opts = latchkey_sqlite::Options::new(url);
        opts.read_connections = settings.pool_size;
        opts.acquire_timeout = settings.database_timeout;
        let what = format!("cannot open the SQLite database {url:?}");
        return open::<latchkey_sqlite::Sqlite>(&opts, schema, what, serving).await;
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let mut opts = latchkey_postgres::Options::new(url);
        opts.max_connections = settings.pool_size;
        opts.acquire_timeout = settings.database_timeout;
        opts.watch_outages = serving;
        let what = "cannot connect to the PostgreSQL database".to_owned();
        return match open::<latchkey_postgres::Postgres>(&opts, schema, what, serving).await {
            Ok(store) => Ok(store),
            Err(e) => Err(
                match unreachable_postgres(url, settings.database_url_key).await {
                    Some(why) => why,
                    None => e,
                },
            ),
        };
    }
    bail!("unsupported database URL {url:?}: expected sqlite://PATH?mode=rwc or postgres://USER@HOST/DATABASE")
}

/// Why PostgreSQL at `url` cannot be reached, if a TCP connection to its
/// host and port fails (the pool says only that it timed out): refused,
/// no route, an unknown host, or no answer.
async fn unreachable_postgres(url: &str, key: &str) -> Option<anyhow::Error> {
    use std::str::FromStr;
    let opts = sqlx::postgres::PgConnectOptions::from_str(url).ok()?;
    let (host, port) = (opts.get_host().to_owned(), opts.get_port());
    if host.starts_with('/') {
        return None; // a Unix socket directory
    }
    let attempt = tokio::net::TcpStream::connect((host.as_str(), port));
    let why = match tokio::time::timeout(std::time::Duration::from_secs(3), attempt).await {
        Ok(Ok(_)) => return None,
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            "connection refused (is PostgreSQL running, and listening on that address?)".to_owned()
        }
        Ok(Err(e)) => e.to_string(),
        Err(_) => "no answer within 3 seconds".to_owned(),
    };
    Some(anyhow::anyhow!(
        "cannot connect to PostgreSQL at {host}:{port} (from {}): {why}",
        crate::config::typed(key)
    ))
}

/// Open a backend's store, then check or migrate its schema.
async fn open<B: Backend>(
    opts: &B::Options,
    schema: Schema,
    what: String,
    serving: bool,
) -> anyhow::Result<Arc<dyn Store>> {
    let store = SqlStore::<B>::connect(opts).await.context(what)?;
    // Every process but the server announces its writes (see
    // `SqlStore::announcing_writes`).
    let store = if serving {
        store
    } else {
        store.announcing_writes()
    };
    let found = store.schema_version().await?;
    check_version(found, schema)?;
    if schema == Schema::Migrate || (schema == Schema::KeepData && found.unwrap_or(0) == 0) {
        store
            .migrate()
            .await
            .context("cannot migrate the database")?;
    }
    Ok(Arc::new(store))
}

/// The services, configured for `serve` (OAuth settings) or for a CLI
/// command (defaults).
pub fn services(
    store: Arc<dyn Store>,
    settings: &Settings,
    serve: Option<&ServeSettings>,
) -> Services {
    services_on_clock(store, settings, serve, Arc::new(SystemClock))
}

/// [`services`] reading the time from `clock` (tests move it by hand).
pub fn services_on_clock(
    store: Arc<dyn Store>,
    settings: &Settings,
    serve: Option<&ServeSettings>,
    clock: Arc<dyn latchkey_core::Clock>,
) -> Services {
    let mut config = Config {
        scopes: settings.scopes.clone(),
        secret_prefix: settings.secret_prefix.clone(),
        max_token_lifetime_days: settings.max_token_lifetime_days,
        ..Config::default()
    };
    if let Some(serve) = serve {
        config.admin_mode = serve.admin_mode;
        config.access_token_seconds = serve.access_token_seconds;
        config.pkce_required_for_public_clients = serve.pkce_required_for_public_clients;
        config.password_grant_enabled = serve.password_grant_enabled;
        config.issuer = serve.external_url.clone();
        config.dynamic_registration = serve.dynamic_registration;
        config.dynamic_client_ttl_days = serve.dynamic_client_ttl_days;
        config.registration_scopes = serve.registration_scopes.clone();
        config.audit_retention_days = serve.audit_retention_days;
        config.default_group_visibility = serve.default_group_visibility;
        config.gitlab_db_key_base = serve.gitlab_db_key_base.clone();
        config.token_cache_ms = serve.token_cache_ms();
    }
    Services::new(store, clock, config)
}

pub fn state(services: Services, serve: &ServeSettings) -> AppState {
    let observer = http::observe::Observer::new(&services, serve.observe.clone());
    AppState {
        observer: Arc::new(observer),
        services,
        external_url: Arc::from(serve.external_url.as_str()),
        max_body_bytes: serve.max_body_bytes,
        streamed_lists: Arc::new(tokio::sync::Semaphore::new(serve.http.max_streamed_lists)),
        gravatar: serve.gravatar,
    }
}

/// Tell the operator, once, how to get in.
pub fn print_bootstrap(b: &Bootstrapped) {
    println!(
        "latchkey: first start: created the administrator \"{}\".",
        b.user.username
    );
    match &b.password {
        Some(p) => println!("  password:              {}", p.expose()),
        None => println!("  password:              (as set by LATCHKEY_ROOT_PASSWORD)"),
    }
    match &b.token {
        Some(t) => println!("  personal access token: {}", t.expose()),
        None => println!("  personal access token: (as set by LATCHKEY_ROOT_TOKEN)"),
    }
    println!("These are shown only now; latchkey stores digests, never the values.");
    println!("To make another token later:");
    println!("  latchkey tokens create --user root --name NAME --scopes \"api read_api\"");
}

/// Serve until SIGINT or SIGTERM, then finish the requests in flight
/// within the shutdown timeout (see [`crate::server`]).
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    limits: crate::server::Limits,
) -> anyhow::Result<()> {
    spawn_cleanup(state.services.clone());
    spawn_forget_idle_limits(state.observer.clone());
    spawn_usage_flush(state.services.clone());
    spawn_fold_counts(state.services.clone());
    let services = state.services.clone();
    let app = http::router(state);
    crate::server::run(listener, app, limits, shutdown_signal()).await;
    // The uses noted since the last flush, so that a restart loses none;
    // bounded, so that a database that is down cannot hold the exit.
    if tokio::time::timeout(FINAL_FLUSH_TIMEOUT, flush_usage(&services))
        .await
        .is_err()
    {
        tracing::warn!("token uses not written at shutdown: the database did not answer in time");
    }
    Ok(())
}

/// How often noted credential uses are written (each credential at most
/// once a minute whatever this is; see `latchkey_core::usage`).
const USAGE_FLUSH_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);
/// How long the last flush at shutdown may take.
const FINAL_FLUSH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Run `work` every `period`, for as long as the runtime runs.
fn spawn_every<F, Fut>(period: std::time::Duration, mut work: F)
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        loop {
            tick.tick().await;
            work().await;
        }
    });
}

fn spawn_usage_flush(services: Services) {
    spawn_every(USAGE_FLUSH_INTERVAL, move || {
        let services = services.clone();
        async move { flush_usage(&services).await }
    });
}

async fn flush_usage(services: &Services) {
    match services.flush_usage().await {
        Ok(n) => tracing::debug!(written = n, "token uses written"),
        Err(e) => {
            tracing::warn!(error = %Chain(&e), "writing token uses failed (later uses are noted again)")
        }
    }
}

/// Serve `/-/metrics` alone on `listener` (`LATCHKEY_METRICS_LISTEN`).
pub fn spawn_metrics_listener(listener: TcpListener, observer: Arc<http::observe::Observer>) {
    let app = axum::Router::new().route(
        "/-/metrics",
        axum::routing::get(move || {
            let observer = observer.clone();
            async move { http::metrics::render(&observer.registry) }
        }),
    );
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "the metrics listener stopped");
        }
    });
}

/// How often the rate limits forget idle clients.
const FORGET_IDLE_LIMITS: std::time::Duration = std::time::Duration::from_secs(60);

fn spawn_forget_idle_limits(observer: Arc<http::observe::Observer>) {
    spawn_every(FORGET_IDLE_LIMITS, move || {
        observer.limits.forget_idle();
        std::future::ready(())
    });
}

/// How often the counts the database keeps as deltas are folded (see
/// `Store::fold_counts`): the sum a listing reads stays a few rows long.
const FOLD_COUNTS_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

fn spawn_fold_counts(services: Services) {
    spawn_every(FOLD_COUNTS_INTERVAL, move || {
        let services = services.clone();
        async move {
            if let Err(e) = services.store().fold_counts().await {
                tracing::debug!(error = %Chain(&e), "folding the counts failed (tried again next second)");
            }
        }
    });
}

/// How often expired codes, tokens, sessions and counters are removed.
const CLEANUP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(600);

/// Remove expired rows in the background, off the request path.
fn spawn_cleanup(services: Services) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(CLEANUP_INTERVAL);
        loop {
            tick.tick().await;
            match services.delete_expired().await {
                Ok(n) => tracing::debug!(deleted = n, "expired rows removed"),
                Err(e) => tracing::warn!(error = %Chain(&e), "cleanup of expired rows failed"),
            }
            match services.prune_audit_events().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(deleted = n, "audit events past their retention removed"),
                Err(e) => tracing::warn!(error = %Chain(&e), "pruning the audit events failed"),
            }
            match services.delete_unused_dynamic_clients().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(deleted = n, "unused dynamic clients removed"),
                Err(e) => tracing::warn!(error = %Chain(&e), "cleanup of dynamic clients failed"),
            }
        }
    });
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down");
}
