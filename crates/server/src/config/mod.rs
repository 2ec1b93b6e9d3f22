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
use latchkey_core::scopes::ScopeSet;
use serde::Deserialize;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_DATABASE_URL: &str = "sqlite://latchkey.db?mode=rwc";
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;

pub use crate::telemetry::LogFormat;

mod args;
pub use args::{GlobalArgs, ServeArgs};

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
        // latchkey_sqlite's `inline`): a few are enough. On PostgreSQL a
        // create holds its connection for a round trip and the commit's
        // WAL flush: with 10, creates at 64 connections waited for the
        // pool (4,420/s; 5,040/s with 20, 5,160/s with 32, measured).
        let pool_size = global
            .database_pool_size
            .unwrap_or(if is_sqlite(&database_url) { 4 } else { 20 });
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

/// Seconds a token is cached when not configured, on either backend: on
/// SQLite every write but the command line's goes through the serving
/// process (which the command line tells); on PostgreSQL the database
/// announces every change (schema 15) and each instance hears all those
/// committed before it answers from memory. Revocation is immediate
/// everywhere either way; the lifetime only bounds memory.
const DEFAULT_TOKEN_CACHE_SECONDS: u64 = 10;

impl ServeSettings {
    /// The token cache's lifetime in ms.
    pub fn token_cache_ms(&self) -> i64 {
        let seconds = self
            .token_cache_seconds
            .unwrap_or(DEFAULT_TOKEN_CACHE_SECONDS);
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
