//! The command line's settings (clap): the options every command takes,
//! and `serve`'s. Each also reads its `LATCHKEY_*` variable; the
//! configuration file's keys are the same names (see `super::matches`).

use std::path::PathBuf;

use clap::Args;
use secrecy::SecretString;

use super::LogFormat;

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
    /// Database connections per instance (default 20 on PostgreSQL; on SQLite
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
    /// default 10). Revocation stays immediate: on PostgreSQL every instance
    /// hears the database's announced changes before answering from memory.
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
