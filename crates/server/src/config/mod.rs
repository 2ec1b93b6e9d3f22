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
use clap::Args;
use latchkey_core::scopes::ScopeSet;
use serde::Deserialize;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_DATABASE_URL: &str = "sqlite://latchkey.db?mode=rwc";
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;

pub use crate::telemetry::LogFormat;

/// Options every subcommand takes.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Global options")]
pub struct GlobalArgs {
    /// TOML configuration file; flags and environment variables win over it.
    #[arg(long, global = true, env = "LATCHKEY_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Database URL: sqlite://PATH?mode=rwc or postgres://USER:PASSWORD@HOST:PORT/DATABASE
    /// (default sqlite://latchkey.db?mode=rwc).
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
    /// Address and port to listen on, or a host name and port (default 127.0.0.1:8080).
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
    /// Users without an uploaded avatar get a Gravatar URL as their
    /// avatar_url, as in GitLab (default true; false: null).
    #[arg(long, env = "LATCHKEY_GRAVATAR", value_name = "BOOL",
          value_parser = clap::builder::BoolishValueParser::new())]
    pub gravatar: Option<bool>,
    /// The visibility of a new group whose creator names none: private,
    /// internal or public (default private, as GitLab's).
    #[arg(
        long,
        env = "LATCHKEY_DEFAULT_GROUP_VISIBILITY",
        value_name = "VISIBILITY"
    )]
    pub default_group_visibility: Option<String>,
    /// Audit events older than this many days are deleted in the background
    /// (default 0: kept forever).
    #[arg(long, env = "LATCHKEY_AUDIT_RETENTION_DAYS", value_name = "DAYS")]
    pub audit_retention_days: Option<i64>,
    /// Also write every audit event, as one JSON object a line, to "stdout"
    /// or to this file (appended to; default: the database only).
    #[arg(long, env = "LATCHKEY_AUDIT_LOG", value_name = "stdout|PATH")]
    pub audit_log: Option<String>,
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
    /// GitLab's db_key_base (from gitlab-secrets.json), to accept personal access tokens
    /// imported from GitLab until each is first used; then it is no longer needed.
    #[arg(
        long,
        env = "LATCHKEY_GITLAB_DB_KEY_BASE",
        value_name = "KEY",
        hide_env_values = true
    )]
    pub gitlab_db_key_base: Option<SecretString>,
    /// A state file (TOML) applied at every start, before the server answers:
    /// users, tokens, groups and applications (see `latchkey apply`).
    #[arg(long, env = "LATCHKEY_SEED", value_name = "FILE")]
    pub seed: Option<std::path::PathBuf>,
}

/// What only the configuration file can set (lists, and settings too
/// rarely changed for a flag).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct FileOnly {
    /// The scopes applications and tokens may use (default: GitLab's list).
    pub scopes: Option<Vec<String>>,
    /// Prefix of application secrets (default "gloas-").
    pub secret_prefix: Option<String>,
}

const FILE_ONLY: [&str; 2] = ["scopes", "secret_prefix"];

/// Options that name no setting: never read from the file.
const NOT_SETTINGS: [&str; 4] = ["help", "version", "config", "no_migrate"];

/// Parse the command line of `P` (any subcommand) with the TOML file that
/// `--config` / `LATCHKEY_CONFIG` names.
///
/// Every setting is declared once, as an option (`GlobalArgs`,
/// `ServeArgs`: its flag, environment variable and help); its TOML key is
/// the option's name (`http_idle_timeout` for `--http-idle-timeout`). The
/// file's values become the options' defaults, so a flag wins over the
/// environment, which wins over the file, which wins over the built-in
/// default; and the file's values are read and checked by the same parsers
/// as the flags'. A key that names no option is an error, so typos surface.
pub fn parse_command_line<P, I, T>(args: I) -> anyhow::Result<(P, FileOnly)>
where
    P: clap::Parser,
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let args: Vec<std::ffi::OsString> = args.into_iter().map(Into::into).collect();
    let first = matches(P::command(), &args, None)?;
    let Some(path) = first.get_one::<PathBuf>("config").cloned() else {
        remember_spellings(&first, None);
        return Ok((P::from_arg_matches(&first)?, FileOnly::default()));
    };
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read the configuration file {}", path.display()))?;
    let table: toml::Table = toml::from_str(&text)
        .with_context(|| format!("invalid configuration file {}", path.display()))?;
    let invalid = |key: &str, why: String| {
        anyhow::anyhow!(
            "invalid configuration file {}: `{key}` {why}",
            path.display()
        )
    };
    let mut cmd = P::command();
    let mut file_only = toml::Table::new();
    for (key, value) in table {
        if FILE_ONLY.contains(&key.as_str()) {
            file_only.insert(key, value);
            continue;
        }
        let text = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(n) => n.to_string(),
            toml::Value::Float(n) => n.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            _ => {
                return Err(invalid(
                    &key,
                    "must be a string, a number or a boolean".to_owned(),
                ))
            }
        };
        let known = |c: &clap::Command| {
            !NOT_SETTINGS.contains(&key.as_str())
                && c.get_arguments().any(|a| a.get_id().as_str() == key)
        };
        if known(&cmd) {
            cmd = cmd.mut_arg(key.as_str(), |a| from_file(a, text));
        } else if cmd.find_subcommand("serve").is_some_and(known) {
            cmd = cmd.mut_subcommand("serve", |sc| {
                sc.mut_arg(key.as_str(), |a| from_file(a, text))
            });
        } else {
            return Err(invalid(&key, "is not a setting latchkey knows".to_owned()));
        }
    }
    let file_only: FileOnly = toml::Value::Table(file_only)
        .try_into()
        .with_context(|| format!("invalid configuration file {}", path.display()))?;
    let matches = matches(cmd, &args, Some(&path))?;
    remember_spellings(&matches, Some(&path));
    Ok((P::from_arg_matches(&matches)?, file_only))
}

/// The file's value as the option's default, never shown by `--help` (it
/// may be a password).
fn from_file(arg: clap::Arg, value: String) -> clap::Arg {
    arg.default_value(value).hide_default_value(true)
}

mod spelled;

use spelled::remember_spellings;
pub use spelled::typed;

/// `args` parsed by `cmd`. `--help`, `--version` and a mistake on the
/// command line end the process as clap ends it (usage, exit code 2); a
/// mistake that may be the file's is returned, naming the file.
fn matches(
    cmd: clap::Command,
    args: &[std::ffi::OsString],
    file: Option<&Path>,
) -> anyhow::Result<clap::ArgMatches> {
    match (cmd.try_get_matches_from(args), file) {
        (Ok(m), _) => Ok(m),
        (Err(e), Some(path)) if e.use_stderr() => {
            // clap's first line says what is wrong; the rest is usage.
            let text = e.render().to_string();
            let what = text.lines().next().unwrap_or_default();
            bail!(
                "{} (the configuration file {} gives these options their defaults)",
                what.trim_start_matches("error: "),
                path.display()
            )
        }
        (Err(e), _) => e.exit(),
    }
}

/// Everything resolved, for any subcommand.
#[derive(Debug, Clone)]
pub struct Settings {
    pub database_url: String,
    /// The setting `database_url` came from, for messages (`database_url`;
    /// `from` and `to` for `db copy`'s databases): see [`typed`].
    pub database_url_key: &'static str,
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
    /// 0 keeps audit events forever.
    pub audit_retention_days: i64,
    pub default_group_visibility: latchkey_core::group::Visibility,
    /// Gravatar URLs for users without an avatar.
    pub gravatar: bool,
    /// Where audit events are also written as JSON lines.
    pub audit_log: Option<AuditLog>,
    /// `None`: the backend's default (see [`ServeSettings::token_cache_ms`]).
    pub token_cache_seconds: Option<u64>,
    pub root_password: Option<SecretString>,
    pub root_token: Option<SecretString>,
    /// A state file applied at start (`--seed`).
    pub seed: Option<std::path::PathBuf>,
    pub gitlab_db_key_base: Option<SecretString>,
    pub http: HttpSettings,
    /// Trusted proxies, rate limits, who may read the metrics.
    pub observe: ObserveSettings,
    /// A listener of its own for `/-/metrics`.
    pub metrics_listen: Option<SocketAddr>,
}

/// Where `LATCHKEY_AUDIT_LOG` sends audit events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditLog {
    Stdout,
    File(std::path::PathBuf),
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
    pub fn resolve(args: &ServeArgs) -> anyhow::Result<Self> {
        let seconds = |name: &str, flag: Option<u64>, default: u64, min: u64| {
            let n = flag.unwrap_or(default);
            if !(min..=86_400).contains(&n) {
                bail!("{} must be between {min} and 86400 seconds", typed(name));
            }
            Ok(Duration::from_secs(n))
        };
        let max_connections = args.max_connections;
        if max_connections == Some(0) {
            bail!("{} must be at least 1", typed("max_connections"));
        }
        let max_streamed_lists = args
            .max_streamed_lists
            .unwrap_or(DEFAULT_MAX_STREAMED_LISTS);
        if max_streamed_lists == 0 {
            bail!("{} must be at least 1", typed("max_streamed_lists"));
        }
        Ok(Self {
            header_timeout: seconds(
                "http_header_timeout",
                args.http_header_timeout,
                DEFAULT_HTTP_HEADER_TIMEOUT,
                1,
            )?,
            body_timeout: seconds(
                "http_body_timeout",
                args.http_body_timeout,
                DEFAULT_HTTP_BODY_TIMEOUT,
                1,
            )?,
            idle_timeout: seconds(
                "http_idle_timeout",
                args.http_idle_timeout,
                DEFAULT_HTTP_IDLE_TIMEOUT,
                1,
            )?,
            write_timeout: seconds(
                "http_write_timeout",
                args.http_write_timeout,
                DEFAULT_HTTP_WRITE_TIMEOUT,
                1,
            )?,
            shutdown_timeout: seconds(
                "shutdown_timeout",
                args.shutdown_timeout,
                DEFAULT_SHUTDOWN_TIMEOUT,
                0,
            )?,
            max_connections,
            max_streamed_lists,
        })
    }
}

impl Settings {
    pub fn resolve(global: &GlobalArgs, file: &FileOnly) -> anyhow::Result<Self> {
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
            bail!("`secret_prefix` must be at most 64 characters of letters, digits, '-' and '_'");
        }
        let database_url = global
            .database_url
            .clone()
            .unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned());
        // SQLite readers are threads with their own page cache and malloc
        // arena, and the hot point reads do not use them (see
        // latchkey_sqlite's `inline`): a few are enough.
        let pool_size = global
            .database_pool_size
            .unwrap_or(if is_sqlite(&database_url) { 4 } else { 10 });
        if !(1..=1000).contains(&pool_size) {
            bail!("{} must be between 1 and 1000", typed("database_pool_size"));
        }
        let timeout = global.database_timeout.unwrap_or(5);
        if !(1..=600).contains(&timeout) {
            bail!(
                "{} must be between 1 and 600 seconds",
                typed("database_timeout")
            );
        }
        let max_token_lifetime_days = global
            .max_token_lifetime_days
            .unwrap_or(latchkey_core::token::DEFAULT_MAX_TOKEN_LIFETIME_DAYS);
        if !(1..=36_500).contains(&max_token_lifetime_days) {
            bail!(
                "{} must be between 1 and 36500",
                typed("max_token_lifetime_days")
            );
        }
        Ok(Self {
            max_token_lifetime_days,
            pool_size,
            database_timeout: std::time::Duration::from_secs(timeout),
            database_url,
            database_url_key: "database_url",
            log: global.log.clone().unwrap_or_else(|| "info".to_owned()),
            log_format: global.log_format.unwrap_or(LogFormat::Pretty),
            scopes,
            secret_prefix,
        })
    }
}

/// An address to listen on: an IP address and port, or a host name and
/// port (`localhost:8080`, resolved once, an IPv4 address preferred).
/// `what` names where it came from, for the error.
fn listen_address(raw: &str, what: &str, example_port: u16) -> anyhow::Result<SocketAddr> {
    if let Ok(addr) = raw.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let example = format!("127.0.0.1:{example_port} or localhost:{example_port}");
    let (host, port) = raw
        .rsplit_once(':')
        .filter(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok())
        .with_context(|| format!("{what} {raw:?} is not an address like {example}"))?;
    let resolved: Vec<SocketAddr> = std::net::ToSocketAddrs::to_socket_addrs(&(host, 0))
        .with_context(|| format!("{what} {raw:?}: cannot resolve the host name {host:?}"))?
        .collect();
    let port: u16 = port.parse().unwrap_or(example_port);
    resolved
        .iter()
        .find(|a| a.is_ipv4())
        .or_else(|| resolved.first())
        .map(|a| SocketAddr::new(a.ip(), port))
        .with_context(|| format!("{what} {raw:?}: the host name {host:?} has no address"))
}

impl ServeSettings {
    pub fn resolve(args: &ServeArgs) -> anyhow::Result<Self> {
        let listen_raw = args
            .listen
            .clone()
            .unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
        let listen = listen_address(&listen_raw, &typed("listen"), 8080)?;
        let external_url = match args.external_url.clone() {
            Some(url) => normalise_external_url(&url)?,
            None => derived_external_url(listen),
        };
        let max_body_bytes = args.max_body_size.unwrap_or(DEFAULT_MAX_BODY_BYTES);
        if max_body_bytes < 1024 {
            bail!("{} must be at least 1024 bytes", typed("max_body_size"));
        }
        let dynamic_registration = match args
            .dynamic_registration
            .clone()
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
                bail!(
                    "{} {other:?} must be false, true or mcp",
                    typed("dynamic_registration")
                )
            }
        };
        let dynamic_client_ttl_days = args.dynamic_client_ttl_days.unwrap_or(30);
        if !(1..=3650).contains(&dynamic_client_ttl_days) {
            bail!(
                "{} must be between 1 and 3650",
                typed("dynamic_client_ttl_days")
            );
        }
        let audit_retention_days = args.audit_retention_days.unwrap_or(0);
        if !(0..=36_500).contains(&audit_retention_days) {
            bail!(
                "{} must be between 0 (keep forever) and 36500",
                typed("audit_retention_days")
            );
        }
        let default_group_visibility = match args.default_group_visibility.as_deref() {
            None | Some("") => latchkey_core::group::Visibility::Private,
            Some(raw) => latchkey_core::group::Visibility::parse(raw).with_context(|| {
                format!(
                    "{} {raw:?} must be private, internal or public",
                    typed("default_group_visibility")
                )
            })?,
        };
        let audit_log = match args.audit_log.as_deref().map(str::trim) {
            None | Some("") => None,
            Some("stdout" | "-") => Some(AuditLog::Stdout),
            Some(path) => Some(AuditLog::File(std::path::PathBuf::from(path))),
        };
        let registration_scopes = match args.registration_scopes.clone() {
            Some(raw) => ScopeSet::new([raw.replace(',', " ")])
                .map_err(|e| anyhow::anyhow!("{}: {e}", typed("registration_scopes")))?,
            None => latchkey_core::registration::default_registration_scopes(),
        };
        let token_cache_seconds = args.token_cache_seconds;
        if token_cache_seconds.is_some_and(|s| s > 3600) {
            bail!(
                "{} must be between 0 and 3600",
                typed("token_cache_seconds")
            );
        }
        let access_token_seconds = args
            .access_token_lifetime
            .unwrap_or(latchkey_core::oauth::DEFAULT_ACCESS_TOKEN_SECONDS);
        if !(60..=31_536_000).contains(&access_token_seconds) {
            bail!("access_token_lifetime must be between 60 and 31536000 seconds");
        }
        Ok(Self {
            listen,
            external_url,
            admin_mode: args.admin_mode.unwrap_or(false),
            migrate: !args.no_migrate && args.migrate.unwrap_or(true),
            access_token_seconds,
            pkce_required_for_public_clients: args.pkce_required_for_public_clients.unwrap_or(true),
            password_grant_enabled: args.password_grant.unwrap_or(true),
            dynamic_registration,
            dynamic_client_ttl_days,
            registration_scopes,
            audit_retention_days,
            default_group_visibility,
            audit_log,
            gravatar: args.gravatar.unwrap_or(true),
            token_cache_seconds,
            max_body_bytes,
            root_password: checked_root_password(args.root_password.as_ref())?,
            root_token: checked_root_token(args.root_token.as_ref())?,
            seed: args.seed.clone(),
            gitlab_db_key_base: args.gitlab_db_key_base.clone(),
            http: HttpSettings::resolve(args)?,
            observe: observe_settings(args)?,
            metrics_listen: match args.metrics_listen.clone() {
                None => None,
                Some(raw) => Some(listen_address(&raw, &typed("metrics_listen"), 9090)?),
            },
        })
    }
}

/// Root's chosen password, refused at once when weak (before a database is
/// opened or created), naming the setting as it was given.
fn checked_root_password(p: Option<&SecretString>) -> anyhow::Result<Option<SecretString>> {
    use secrecy::ExposeSecret;
    if let Some(p) = p {
        latchkey_core::user::check_password_strength(p.expose_secret())
            .map_err(|e| anyhow::anyhow!("{} refused: the password {e}", typed("root_password")))?;
    }
    Ok(p.cloned())
}

/// Root's chosen token, refused at once when weak (see above).
fn checked_root_token(t: Option<&SecretString>) -> anyhow::Result<Option<SecretString>> {
    use secrecy::ExposeSecret;
    if let Some(t) = t {
        latchkey_core::token::check_token_value(t.expose_secret())
            .map_err(|e| anyhow::anyhow!("{} refused: {e}", typed("root_token")))?;
    }
    Ok(t.cloned())
}

fn observe_settings(args: &ServeArgs) -> anyhow::Result<ObserveSettings> {
    let nets = |name: &str, raw: Option<String>| -> anyhow::Result<Option<Vec<IpNet>>> {
        raw.map(|r| parse_nets(&r).map_err(|e| anyhow::anyhow!("{name}: {e}")))
            .transpose()
    };
    let trusted =
        nets(&typed("trusted_proxies"), args.trusted_proxies.clone())?.unwrap_or_default();
    let allow = nets(&typed("metrics_allow"), args.metrics_allow.clone())?
        .unwrap_or_else(crate::http::metrics::default_allow);
    let metrics_elsewhere = args.metrics_listen.is_some();
    Ok(ObserveSettings {
        trusted_proxies: TrustedProxies::new(trusted),
        limits: LimitSettings {
            unauthenticated: args
                .rate_limit_unauthenticated
                .unwrap_or(limits::DEFAULT_UNAUTHENTICATED_PER_SECOND),
            token: args
                .rate_limit_token
                .unwrap_or(limits::DEFAULT_TOKEN_PER_SECOND),
            api: args.rate_limit_api.unwrap_or(0),
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
        bail!(
            "{} {raw:?} must be an http:// or https:// URL without query or fragment",
            typed("external_url")
        );
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
mod tests;
