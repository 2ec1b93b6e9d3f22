//! Configuration: command-line flags, then `LATCHKEY_*` environment
//! variables, then an optional TOML file (`--config`), then defaults.

use secrecy::SecretString;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use ipnet::IpNet;

use crate::http::client_ip::{parse_nets, TrustedProxies};
use crate::http::limits::{self, LimitSettings};
use crate::http::metrics::MetricsAccess;
use crate::http::observe::ObserveSettings;
use clap::{Args, ValueEnum};
use latchkey_core::scopes::ScopeSet;
use serde::Deserialize;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_DATABASE_URL: &str = "sqlite://latchkey.db?mode=rwc";
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

/// Options every subcommand takes.
#[derive(Debug, Clone, Default, Args)]
pub struct GlobalArgs {
    /// TOML configuration file; flags and environment variables win over it.
    #[arg(long, global = true, env = "LATCHKEY_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Database URL: sqlite://PATH?mode=rwc (default sqlite://latchkey.db?mode=rwc).
    #[arg(long, global = true, env = "LATCHKEY_DATABASE_URL", value_name = "URL")]
    pub database_url: Option<String>,
    /// Database connections per instance (default 10 on PostgreSQL; on SQLite
    /// 4 readers, plus one writer and the inline point-read connections).
    #[arg(
        long,
        global = true,
        env = "LATCHKEY_DATABASE_POOL_SIZE",
        value_name = "N"
    )]
    pub database_pool_size: Option<u32>,
    /// Seconds a request waits for a database connection before failing with 503 (default 5).
    #[arg(
        long,
        global = true,
        env = "LATCHKEY_DATABASE_TIMEOUT",
        value_name = "SECONDS"
    )]
    pub database_timeout: Option<u64>,
    /// Longest lifetime of a personal access token in days: an `expires_at`
    /// further away is refused on create and rotate (default 365, as GitLab).
    #[arg(
        long,
        global = true,
        env = "LATCHKEY_MAX_TOKEN_LIFETIME_DAYS",
        value_name = "DAYS"
    )]
    pub max_token_lifetime_days: Option<i64>,
    /// Log filter, in tracing's EnvFilter syntax (default "info").
    #[arg(long, global = true, env = "LATCHKEY_LOG", value_name = "FILTER")]
    pub log: Option<String>,
    /// Log format (default pretty).
    #[arg(
        long,
        global = true,
        env = "LATCHKEY_LOG_FORMAT",
        value_name = "FORMAT"
    )]
    pub log_format: Option<LogFormat>,
}

/// Options of `latchkey serve`.
#[derive(Debug, Clone, Default, Args)]
pub struct ServeArgs {
    /// Address to listen on (default 127.0.0.1:8080).
    #[arg(long, env = "LATCHKEY_LISTEN", value_name = "ADDR")]
    pub listen: Option<String>,
    /// Public base URL used in links (default derived from --listen).
    #[arg(long, env = "LATCHKEY_EXTERNAL_URL", value_name = "URL")]
    pub external_url: Option<String>,
    /// GitLab's Admin Mode: an admin's token also needs the admin_mode scope (default false).
    #[arg(long, env = "LATCHKEY_ADMIN_MODE", value_name = "BOOL", num_args = 0..=1,
          default_missing_value = "true", value_parser = clap::builder::BoolishValueParser::new())]
    pub admin_mode: Option<bool>,
    /// Lifetime of OAuth access tokens in seconds (default 7200).
    #[arg(long, env = "LATCHKEY_ACCESS_TOKEN_LIFETIME", value_name = "SECONDS")]
    pub access_token_lifetime: Option<i64>,
    /// Require PKCE from public (non-confidential) OAuth clients (default true).
    #[arg(long, env = "LATCHKEY_PKCE_REQUIRED_FOR_PUBLIC_CLIENTS", value_name = "BOOL",
          value_parser = clap::builder::BoolishValueParser::new())]
    pub pkce_required_for_public_clients: Option<bool>,
    /// Allow the OAuth password grant (GitLab's ROPC; default true).
    #[arg(long, env = "LATCHKEY_PASSWORD_GRANT", value_name = "BOOL",
          value_parser = clap::builder::BoolishValueParser::new())]
    pub password_grant: Option<bool>,
    /// Do not apply migrations at start; refuse to start unless the schema is current
    /// (for deployments that run `latchkey migrate` as a separate step).
    #[arg(long)]
    pub no_migrate: bool,
    /// Apply migrations at start (default true); `false` is the same as --no-migrate.
    #[arg(long, env = "LATCHKEY_MIGRATE", value_name = "BOOL",
          value_parser = clap::builder::BoolishValueParser::new())]
    pub migrate: Option<bool>,
    /// Dynamic client registration (RFC 7591): false (default), true, or mcp
    /// (GitLab's flavour: public clients, PKCE, the mcp scope).
    #[arg(long, env = "LATCHKEY_DYNAMIC_REGISTRATION", value_name = "MODE")]
    pub dynamic_registration: Option<String>,
    /// Scopes a dynamically registered client may ask for, space- or
    /// comma-separated (default "openid profile email read_user").
    #[arg(long, env = "LATCHKEY_REGISTRATION_SCOPES", value_name = "SCOPES")]
    pub registration_scopes: Option<String>,
    /// Dynamically registered clients never used are deleted after this many days (default 30).
    #[arg(long, env = "LATCHKEY_DYNAMIC_CLIENT_TTL_DAYS", value_name = "DAYS")]
    pub dynamic_client_ttl_days: Option<i64>,
    /// Seconds an authenticated token is remembered in this process (0 = off;
    /// default 10 on SQLite, 0 on PostgreSQL, where another instance's
    /// revocation would be seen here only after this long).
    #[arg(long, env = "LATCHKEY_TOKEN_CACHE_SECONDS", value_name = "SECONDS")]
    pub token_cache_seconds: Option<u64>,
    /// Largest accepted request body in bytes (default 1048576); larger ones get 413.
    #[arg(long, env = "LATCHKEY_MAX_BODY_SIZE", value_name = "BYTES")]
    pub max_body_size: Option<usize>,
    /// Seconds a client has to send a request's headers, from connecting or
    /// from the first byte of its next request (default 10).
    #[arg(long, env = "LATCHKEY_HTTP_HEADER_TIMEOUT", value_name = "SECONDS")]
    pub http_header_timeout: Option<u64>,
    /// Seconds a client has to send a request's body once the handler waits
    /// for it; a stalled body gets 408 and the connection is closed (default 30).
    #[arg(long, env = "LATCHKEY_HTTP_BODY_TIMEOUT", value_name = "SECONDS")]
    pub http_body_timeout: Option<u64>,
    /// Seconds a keep-alive connection may sit with no request before it is
    /// closed (default 60).
    #[arg(long, env = "LATCHKEY_HTTP_IDLE_TIMEOUT", value_name = "SECONDS")]
    pub http_idle_timeout: Option<u64>,
    /// Seconds a response may wait for a client that reads nothing before
    /// the connection is closed (default 60).
    #[arg(long, env = "LATCHKEY_HTTP_WRITE_TIMEOUT", value_name = "SECONDS")]
    pub http_write_timeout: Option<u64>,
    /// Seconds requests in flight get to finish on SIGTERM or SIGINT before
    /// the remaining connections are closed (default 30).
    #[arg(long, env = "LATCHKEY_SHUTDOWN_TIMEOUT", value_name = "SECONDS")]
    pub shutdown_timeout: Option<u64>,
    /// Connections served at once; more wait in the listen backlog
    /// (default: the open files limit less the database pool and a reserve).
    #[arg(long, env = "LATCHKEY_MAX_CONNECTIONS", value_name = "N")]
    pub max_connections: Option<usize>,
    /// Unpaginated GET /api/v4/applications responses streamed at once;
    /// more get 503 with Retry-After (default 16).
    #[arg(long, env = "LATCHKEY_MAX_STREAMED_LISTS", value_name = "N")]
    pub max_streamed_lists: Option<usize>,
    /// Proxies whose X-Forwarded-For / Forwarded headers are believed, as
    /// addresses or CIDRs separated by commas (default: none; the
    /// connection's peer is the client).
    #[arg(long, env = "LATCHKEY_TRUSTED_PROXIES", value_name = "CIDRS")]
    pub trusted_proxies: Option<String>,
    /// Serve /-/metrics only on this address (e.g. 127.0.0.1:9090), not on
    /// --listen (default: on --listen, to LATCHKEY_METRICS_ALLOW).
    #[arg(long, env = "LATCHKEY_METRICS_LISTEN", value_name = "ADDR")]
    pub metrics_listen: Option<String>,
    /// Clients that may read /-/metrics on --listen, as addresses or CIDRs
    /// (default "127.0.0.0/8,::1"; others get 404).
    #[arg(long, env = "LATCHKEY_METRICS_ALLOW", value_name = "CIDRS")]
    pub metrics_allow: Option<String>,
    /// Requests without credentials per client address and second; 0 turns
    /// the limit off (default 1000).
    #[arg(long, env = "LATCHKEY_RATE_LIMIT_UNAUTHENTICATED", value_name = "N")]
    pub rate_limit_unauthenticated: Option<u32>,
    /// POST /oauth/token requests per client application and second; 0
    /// turns the limit off (default 20000).
    #[arg(long, env = "LATCHKEY_RATE_LIMIT_TOKEN", value_name = "N")]
    pub rate_limit_token: Option<u32>,
    /// Authenticated /api/v4 requests per token and second (default 0: off).
    #[arg(long, env = "LATCHKEY_RATE_LIMIT_API", value_name = "N")]
    pub rate_limit_api: Option<u32>,
    /// Password for the root user created on first start (else one is generated and printed).
    #[arg(
        long,
        env = "LATCHKEY_ROOT_PASSWORD",
        value_name = "PASSWORD",
        hide_env_values = true
    )]
    pub root_password: Option<SecretString>,
    /// Personal access token value for root on first start (else one is generated and printed).
    #[arg(
        long,
        env = "LATCHKEY_ROOT_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub root_token: Option<SecretString>,
}

/// The optional TOML file. Unknown keys are an error, so typos surface.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<String>,
    pub database_url: Option<String>,
    pub database_pool_size: Option<u32>,
    pub database_timeout: Option<u64>,
    pub migrate: Option<bool>,
    pub external_url: Option<String>,
    pub admin_mode: Option<bool>,
    pub max_body_size: Option<usize>,
    pub access_token_lifetime: Option<i64>,
    pub pkce_required_for_public_clients: Option<bool>,
    pub password_grant: Option<bool>,
    pub dynamic_registration: Option<String>,
    pub dynamic_client_ttl_days: Option<i64>,
    pub registration_scopes: Option<String>,
    pub token_cache_seconds: Option<u64>,
    pub max_token_lifetime_days: Option<i64>,
    pub http_header_timeout: Option<u64>,
    pub http_body_timeout: Option<u64>,
    pub http_idle_timeout: Option<u64>,
    pub http_write_timeout: Option<u64>,
    pub shutdown_timeout: Option<u64>,
    pub max_connections: Option<usize>,
    pub max_streamed_lists: Option<usize>,
    pub root_password: Option<SecretString>,
    pub root_token: Option<SecretString>,
    pub trusted_proxies: Option<String>,
    pub metrics_listen: Option<String>,
    pub metrics_allow: Option<String>,
    pub rate_limit_unauthenticated: Option<u32>,
    pub rate_limit_token: Option<u32>,
    pub rate_limit_api: Option<u32>,
    pub log: Option<String>,
    pub log_format: Option<LogFormat>,
    /// The scopes applications and tokens may use (default: GitLab's list).
    pub scopes: Option<Vec<String>>,
    /// Prefix of application secrets (default "gloas-").
    pub secret_prefix: Option<String>,
}

impl FileConfig {
    pub fn load(path: Option<&Path>) -> anyhow::Result<Self> {
        let Some(path) = path else {
            return Ok(Self::default());
        };
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the configuration file {}", path.display()))?;
        toml::from_str(&text)
            .with_context(|| format!("invalid configuration file {}", path.display()))
    }
}

/// Everything resolved, for any subcommand.
#[derive(Debug, Clone)]
pub struct Settings {
    pub database_url: String,
    pub pool_size: u32,
    pub database_timeout: std::time::Duration,
    pub log: String,
    pub log_format: LogFormat,
    pub scopes: ScopeSet,
    pub secret_prefix: String,
    pub max_token_lifetime_days: i64,
}

/// What `serve` needs on top.
#[derive(Debug, Clone)]
pub struct ServeSettings {
    pub listen: SocketAddr,
    pub external_url: String,
    pub admin_mode: bool,
    pub migrate: bool,
    pub max_body_bytes: usize,
    pub access_token_seconds: i64,
    pub pkce_required_for_public_clients: bool,
    pub password_grant_enabled: bool,
    pub dynamic_registration: latchkey_core::registration::RegistrationMode,
    pub dynamic_client_ttl_days: i64,
    pub registration_scopes: ScopeSet,
    /// `None`: the backend's default (see [`ServeSettings::token_cache_ms`]).
    pub token_cache_seconds: Option<u64>,
    pub root_password: Option<SecretString>,
    pub root_token: Option<SecretString>,
    pub http: HttpSettings,
    /// Trusted proxies, rate limits, who may read the metrics.
    pub observe: ObserveSettings,
    /// A listener of its own for `/-/metrics`.
    pub metrics_listen: Option<SocketAddr>,
}

/// Connection limits of `serve` (see `crate::server`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpSettings {
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub idle_timeout: Duration,
    pub write_timeout: Duration,
    pub shutdown_timeout: Duration,
    /// `None`: sized from the open files limit at start.
    pub max_connections: Option<usize>,
    pub max_streamed_lists: usize,
}

pub const DEFAULT_HTTP_HEADER_TIMEOUT: u64 = 10;
pub const DEFAULT_HTTP_BODY_TIMEOUT: u64 = 30;
pub const DEFAULT_HTTP_IDLE_TIMEOUT: u64 = 60;
pub const DEFAULT_HTTP_WRITE_TIMEOUT: u64 = 60;
pub const DEFAULT_SHUTDOWN_TIMEOUT: u64 = 30;
pub const DEFAULT_MAX_STREAMED_LISTS: usize = 16;

impl HttpSettings {
    pub fn resolve(args: &ServeArgs, file: &FileConfig) -> anyhow::Result<Self> {
        let seconds = |name: &str, flag: Option<u64>, key: Option<u64>, default: u64, min: u64| {
            let n = flag.or(key).unwrap_or(default);
            if !(min..=86_400).contains(&n) {
                bail!("{name} must be between {min} and 86400 seconds");
            }
            Ok(Duration::from_secs(n))
        };
        let max_connections = args.max_connections.or(file.max_connections);
        if max_connections == Some(0) {
            bail!("max_connections must be at least 1");
        }
        let max_streamed_lists = args
            .max_streamed_lists
            .or(file.max_streamed_lists)
            .unwrap_or(DEFAULT_MAX_STREAMED_LISTS);
        if max_streamed_lists == 0 {
            bail!("max_streamed_lists must be at least 1");
        }
        Ok(Self {
            header_timeout: seconds(
                "http_header_timeout",
                args.http_header_timeout,
                file.http_header_timeout,
                DEFAULT_HTTP_HEADER_TIMEOUT,
                1,
            )?,
            body_timeout: seconds(
                "http_body_timeout",
                args.http_body_timeout,
                file.http_body_timeout,
                DEFAULT_HTTP_BODY_TIMEOUT,
                1,
            )?,
            idle_timeout: seconds(
                "http_idle_timeout",
                args.http_idle_timeout,
                file.http_idle_timeout,
                DEFAULT_HTTP_IDLE_TIMEOUT,
                1,
            )?,
            write_timeout: seconds(
                "http_write_timeout",
                args.http_write_timeout,
                file.http_write_timeout,
                DEFAULT_HTTP_WRITE_TIMEOUT,
                1,
            )?,
            shutdown_timeout: seconds(
                "shutdown_timeout",
                args.shutdown_timeout,
                file.shutdown_timeout,
                DEFAULT_SHUTDOWN_TIMEOUT,
                0,
            )?,
            max_connections,
            max_streamed_lists,
        })
    }
}

impl Settings {
    pub fn resolve(global: &GlobalArgs, file: &FileConfig) -> anyhow::Result<Self> {
        let scopes = match &file.scopes {
            Some(list) => ScopeSet::new(list)
                .map_err(|e| anyhow::anyhow!("invalid `scopes` in the configuration file: {e}"))?,
            None => ScopeSet::default(),
        };
        let secret_prefix = file
            .secret_prefix
            .clone()
            .unwrap_or_else(|| "gloas-".to_owned());
        if secret_prefix.len() > 64
            || !secret_prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            bail!("secret_prefix must be at most 64 characters of letters, digits, '-' and '_'");
        }
        let database_url = global
            .database_url
            .clone()
            .or_else(|| file.database_url.clone())
            .unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned());
        // SQLite readers are threads with their own page cache and malloc
        // arena, and the hot point reads do not use them (see
        // latchkey_sqlite's `inline`): a few are enough.
        let pool_size = global
            .database_pool_size
            .or(file.database_pool_size)
            .unwrap_or(if is_sqlite(&database_url) { 4 } else { 10 });
        if !(1..=1000).contains(&pool_size) {
            bail!("database_pool_size must be between 1 and 1000");
        }
        let timeout = global
            .database_timeout
            .or(file.database_timeout)
            .unwrap_or(5);
        if !(1..=600).contains(&timeout) {
            bail!("database_timeout must be between 1 and 600 seconds");
        }
        let max_token_lifetime_days = global
            .max_token_lifetime_days
            .or(file.max_token_lifetime_days)
            .unwrap_or(latchkey_core::token::DEFAULT_MAX_TOKEN_LIFETIME_DAYS);
        if !(1..=36_500).contains(&max_token_lifetime_days) {
            bail!("max_token_lifetime_days must be between 1 and 36500");
        }
        Ok(Self {
            max_token_lifetime_days,
            pool_size,
            database_timeout: std::time::Duration::from_secs(timeout),
            database_url,
            log: global
                .log
                .clone()
                .or_else(|| file.log.clone())
                .unwrap_or_else(|| "info".to_owned()),
            log_format: global
                .log_format
                .or(file.log_format)
                .unwrap_or(LogFormat::Pretty),
            scopes,
            secret_prefix,
        })
    }
}

impl ServeSettings {
    pub fn resolve(args: &ServeArgs, file: &FileConfig) -> anyhow::Result<Self> {
        let listen_raw = args
            .listen
            .clone()
            .or_else(|| file.listen.clone())
            .unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
        let listen: SocketAddr = listen_raw.parse().with_context(|| {
            format!("LATCHKEY_LISTEN {listen_raw:?} is not an address like 127.0.0.1:8080")
        })?;
        let external_url = match args
            .external_url
            .clone()
            .or_else(|| file.external_url.clone())
        {
            Some(url) => normalise_external_url(&url)?,
            None => derived_external_url(listen),
        };
        let max_body_bytes = args
            .max_body_size
            .or(file.max_body_size)
            .unwrap_or(DEFAULT_MAX_BODY_BYTES);
        if max_body_bytes < 1024 {
            bail!("max_body_size must be at least 1024 bytes");
        }
        let dynamic_registration = match args
            .dynamic_registration
            .clone()
            .or_else(|| file.dynamic_registration.clone())
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("false" | "off" | "0" | "no") => {
                latchkey_core::registration::RegistrationMode::Off
            }
            Some("true" | "on" | "1" | "yes") => {
                latchkey_core::registration::RegistrationMode::Standard
            }
            Some("mcp" | "gitlab") => latchkey_core::registration::RegistrationMode::GitLabMcp,
            Some(other) => {
                bail!("LATCHKEY_DYNAMIC_REGISTRATION {other:?} must be false, true or mcp")
            }
        };
        let dynamic_client_ttl_days = args
            .dynamic_client_ttl_days
            .or(file.dynamic_client_ttl_days)
            .unwrap_or(30);
        if !(1..=3650).contains(&dynamic_client_ttl_days) {
            bail!("dynamic_client_ttl_days must be between 1 and 3650");
        }
        let registration_scopes = match args
            .registration_scopes
            .clone()
            .or_else(|| file.registration_scopes.clone())
        {
            Some(raw) => ScopeSet::new([raw.replace(',', " ")])
                .map_err(|e| anyhow::anyhow!("LATCHKEY_REGISTRATION_SCOPES: {e}"))?,
            None => latchkey_core::registration::default_registration_scopes(),
        };
        let token_cache_seconds = args.token_cache_seconds.or(file.token_cache_seconds);
        if token_cache_seconds.is_some_and(|s| s > 3600) {
            bail!("token_cache_seconds must be between 0 and 3600");
        }
        let access_token_seconds = args
            .access_token_lifetime
            .or(file.access_token_lifetime)
            .unwrap_or(latchkey_core::oauth::DEFAULT_ACCESS_TOKEN_SECONDS);
        if !(60..=31_536_000).contains(&access_token_seconds) {
            bail!("access_token_lifetime must be between 60 and 31536000 seconds");
        }
        Ok(Self {
            listen,
            external_url,
            admin_mode: args.admin_mode.or(file.admin_mode).unwrap_or(false),
            migrate: !args.no_migrate && args.migrate.or(file.migrate).unwrap_or(true),
            access_token_seconds,
            pkce_required_for_public_clients: args
                .pkce_required_for_public_clients
                .or(file.pkce_required_for_public_clients)
                .unwrap_or(true),
            password_grant_enabled: args.password_grant.or(file.password_grant).unwrap_or(true),
            dynamic_registration,
            dynamic_client_ttl_days,
            registration_scopes,
            token_cache_seconds,
            max_body_bytes,
            root_password: args
                .root_password
                .clone()
                .or_else(|| file.root_password.clone()),
            root_token: args.root_token.clone().or_else(|| file.root_token.clone()),
            http: HttpSettings::resolve(args, file)?,
            observe: observe_settings(args, file)?,
            metrics_listen: match args
                .metrics_listen
                .clone()
                .or_else(|| file.metrics_listen.clone())
            {
                None => None,
                Some(raw) => Some(raw.parse().with_context(|| {
                    format!("LATCHKEY_METRICS_LISTEN {raw:?} is not an address like 127.0.0.1:9090")
                })?),
            },
        })
    }
}

fn observe_settings(args: &ServeArgs, file: &FileConfig) -> anyhow::Result<ObserveSettings> {
    let nets = |name: &str, raw: Option<String>| -> anyhow::Result<Option<Vec<IpNet>>> {
        raw.map(|r| parse_nets(&r).map_err(|e| anyhow::anyhow!("{name}: {e}")))
            .transpose()
    };
    let trusted = nets(
        "LATCHKEY_TRUSTED_PROXIES",
        args.trusted_proxies
            .clone()
            .or_else(|| file.trusted_proxies.clone()),
    )?
    .unwrap_or_default();
    let allow = nets(
        "LATCHKEY_METRICS_ALLOW",
        args.metrics_allow
            .clone()
            .or_else(|| file.metrics_allow.clone()),
    )?
    .unwrap_or_else(crate::http::metrics::default_allow);
    let metrics_elsewhere = args.metrics_listen.is_some() || file.metrics_listen.is_some();
    Ok(ObserveSettings {
        trusted_proxies: TrustedProxies::new(trusted),
        limits: LimitSettings {
            unauthenticated: args
                .rate_limit_unauthenticated
                .or(file.rate_limit_unauthenticated)
                .unwrap_or(limits::DEFAULT_UNAUTHENTICATED_PER_SECOND),
            token: args
                .rate_limit_token
                .or(file.rate_limit_token)
                .unwrap_or(limits::DEFAULT_TOKEN_PER_SECOND),
            api: args.rate_limit_api.or(file.rate_limit_api).unwrap_or(0),
        },
        metrics_access: if metrics_elsewhere {
            MetricsAccess::Elsewhere
        } else {
            MetricsAccess::Allow(allow)
        },
    })
}

/// Seconds a token is cached when not configured: SQLite has one serving
/// process per file (`serve` locks it), so every revocation goes through the
/// process that caches and is exact; on PostgreSQL other instances write too.
const DEFAULT_SQLITE_TOKEN_CACHE_SECONDS: u64 = 10;

impl ServeSettings {
    /// The token cache's lifetime in ms for a database URL.
    pub fn token_cache_ms(&self, database_url: &str) -> i64 {
        let seconds = self
            .token_cache_seconds
            .unwrap_or(if is_sqlite(database_url) {
                DEFAULT_SQLITE_TOKEN_CACHE_SECONDS
            } else {
                0
            });
        // At most 3600 (checked in resolve), so this cannot overflow.
        i64::try_from(seconds).unwrap_or(0).saturating_mul(1000)
    }
}

pub fn is_sqlite(database_url: &str) -> bool {
    database_url.starts_with("sqlite:")
}

fn normalise_external_url(raw: &str) -> anyhow::Result<String> {
    let trimmed = raw.trim().trim_end_matches('/');
    let ok = (trimmed.starts_with("http://") || trimmed.starts_with("https://"))
        && trimmed
            .split_once("://")
            .is_some_and(|(_, rest)| !rest.is_empty())
        && !trimmed.contains(['?', '#', ' ']);
    if !ok {
        bail!("LATCHKEY_EXTERNAL_URL {raw:?} must be an http:// or https:// URL without query or fragment");
    }
    Ok(trimmed.to_owned())
}

/// `http://<listen>`, with a wildcard address replaced by localhost.
pub fn derived_external_url(listen: SocketAddr) -> String {
    match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => format!("http://localhost:{}", listen.port()),
        IpAddr::V6(ip) if ip.is_unspecified() => format!("http://localhost:{}", listen.port()),
        IpAddr::V4(ip) => format!("http://{ip}:{}", listen.port()),
        IpAddr::V6(ip) => format!("http://[{ip}]:{}", listen.port()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_win_over_file() {
        let file: FileConfig = toml::from_str(
            "listen = \"127.0.0.1:9000\"\nadmin_mode = true\nexternal_url = \"https://id.example.com/\"\n",
        )
        .unwrap();
        let args = ServeArgs {
            listen: Some("127.0.0.1:9001".into()),
            ..Default::default()
        };
        let s = ServeSettings::resolve(&args, &file).unwrap();
        assert_eq!(s.listen.port(), 9001);
        assert!(s.admin_mode);
        assert_eq!(s.external_url, "https://id.example.com");
    }

    #[test]
    fn backend_dependent_defaults() {
        let serve = ServeSettings::resolve(&ServeArgs::default(), &FileConfig::default()).unwrap();
        let sqlite = Settings::resolve(&GlobalArgs::default(), &FileConfig::default()).unwrap();
        assert_eq!(sqlite.pool_size, 4);
        assert_eq!(serve.token_cache_ms(&sqlite.database_url), 10_000);
        let pg_args = GlobalArgs {
            database_url: Some("postgres://h/db".into()),
            ..Default::default()
        };
        let pg = Settings::resolve(&pg_args, &FileConfig::default()).unwrap();
        assert_eq!(pg.pool_size, 10);
        assert_eq!(serve.token_cache_ms(&pg.database_url), 0);
        let set = ServeArgs {
            token_cache_seconds: Some(3),
            ..Default::default()
        };
        let serve = ServeSettings::resolve(&set, &FileConfig::default()).unwrap();
        assert_eq!(serve.token_cache_ms(&pg.database_url), 3_000);
        let too_long = ServeArgs {
            token_cache_seconds: Some(3601),
            ..Default::default()
        };
        assert!(ServeSettings::resolve(&too_long, &FileConfig::default()).is_err());
    }

    #[test]
    fn http_limits() {
        let s = ServeSettings::resolve(&ServeArgs::default(), &FileConfig::default()).unwrap();
        assert_eq!(s.http.header_timeout, Duration::from_secs(10));
        assert_eq!(s.http.body_timeout, Duration::from_secs(30));
        assert_eq!(s.http.idle_timeout, Duration::from_secs(60));
        assert_eq!(s.http.write_timeout, Duration::from_secs(60));
        assert_eq!(s.http.shutdown_timeout, Duration::from_secs(30));
        assert_eq!(s.http.max_connections, None);
        assert_eq!(s.http.max_streamed_lists, 16);
        let file: FileConfig =
            toml::from_str("http_idle_timeout = 5\nmax_connections = 100\nshutdown_timeout = 0\n")
                .unwrap();
        let args = ServeArgs {
            http_idle_timeout: Some(7),
            ..Default::default()
        };
        let s = ServeSettings::resolve(&args, &file).unwrap();
        assert_eq!(s.http.idle_timeout, Duration::from_secs(7));
        assert_eq!(s.http.max_connections, Some(100));
        assert_eq!(s.http.shutdown_timeout, Duration::ZERO);
        for bad in [
            "http_header_timeout = 0",
            "max_connections = 0",
            "max_streamed_lists = 0",
        ] {
            let file: FileConfig = toml::from_str(bad).unwrap();
            assert!(
                ServeSettings::resolve(&ServeArgs::default(), &file).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn proxies_limits_and_metrics() {
        let s = ServeSettings::resolve(&ServeArgs::default(), &FileConfig::default()).unwrap();
        assert!(s.observe.trusted_proxies.is_empty());
        assert_eq!(s.observe.limits, LimitSettings::default());
        assert_eq!(s.observe.limits.api, 0);
        assert!(matches!(&s.observe.metrics_access, MetricsAccess::Allow(n) if n.len() == 2));
        assert_eq!(s.metrics_listen, None);
        let file: FileConfig = toml::from_str(
            "trusted_proxies = \"10.0.0.0/8\"\nrate_limit_api = 50\nmetrics_listen = \"127.0.0.1:9100\"\n",
        )
        .unwrap();
        let args = ServeArgs {
            rate_limit_unauthenticated: Some(0),
            ..Default::default()
        };
        let s = ServeSettings::resolve(&args, &file).unwrap();
        assert!(!s.observe.trusted_proxies.is_empty());
        assert_eq!(s.observe.limits.api, 50);
        assert_eq!(s.observe.limits.unauthenticated, 0);
        assert!(matches!(s.observe.metrics_access, MetricsAccess::Elsewhere));
        assert_eq!(s.metrics_listen.map(|a| a.port()), Some(9100));
        for bad in [
            "trusted_proxies = \"10.0.0.0/40\"",
            "metrics_allow = \"everyone\"",
            "metrics_listen = \"nope\"",
        ] {
            let file: FileConfig = toml::from_str(bad).unwrap();
            assert!(
                ServeSettings::resolve(&ServeArgs::default(), &file).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn defaults_and_errors() {
        let s = ServeSettings::resolve(&ServeArgs::default(), &FileConfig::default()).unwrap();
        assert_eq!(s.external_url, "http://127.0.0.1:8080");
        assert_eq!(s.max_body_bytes, DEFAULT_MAX_BODY_BYTES);
        assert_eq!(
            derived_external_url("0.0.0.0:80".parse().unwrap()),
            "http://localhost:80"
        );
        assert!(toml::from_str::<FileConfig>("lisen = \"x\"").is_err());
        let bad = ServeArgs {
            listen: Some("nope".into()),
            ..Default::default()
        };
        assert!(ServeSettings::resolve(&bad, &FileConfig::default()).is_err());
        let bad = ServeArgs {
            external_url: Some("ftp://x".into()),
            ..Default::default()
        };
        assert!(ServeSettings::resolve(&bad, &FileConfig::default()).is_err());
    }
}
