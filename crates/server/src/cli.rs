//! The `latchkey` command line. Every subcommand calls the same core
//! services as the HTTP API.

use anyhow::Context;
use clap::{Parser, Subcommand};
use latchkey_core::service::UserInput;
use latchkey_core::token::parse_expiry;

use crate::config::{FileConfig, GlobalArgs, ServeArgs, ServeSettings, Settings};
use crate::startup::Schema;
use crate::{startup, telemetry};

#[derive(Debug, Parser)]
#[command(
    name = "latchkey",
    version,
    about = "GitLab-compatible OAuth application registry and OAuth 2 provider",
    long_about = "latchkey serves GitLab's Applications API (/api/v4/applications) on an embedded \
                  SQLite database. Configure with flags, LATCHKEY_* environment variables or a TOML \
                  file (--config); flags win over the environment, which wins over the file."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (migrates the database and creates root on first start).
    Serve(Box<ServeArgs>),
    /// Apply database migrations and exit.
    Migrate,
    /// Manage users.
    #[command(subcommand)]
    Users(UsersCommand),
    /// Manage personal access tokens.
    #[command(subcommand)]
    Tokens(TokensCommand),
    /// Database operations.
    #[command(subcommand)]
    Db(DbCommand),
    /// OpenID Connect signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Make a new signing key; ID tokens are signed with it from now on (every
    /// instance switches within a minute). Older keys stay published for a
    /// day so the tokens they signed still verify.
    Rotate,
}

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Copy every row from one database to a new, empty one (SQLite to
    /// PostgreSQL or back), keeping ids, and verify the row counts.
    /// Stop the servers using the source first.
    Copy {
        /// Source database URL (its schema must be current).
        #[arg(long, value_name = "URL")]
        from: String,
        /// Target database URL (migrated here; must hold no rows).
        #[arg(long, value_name = "URL")]
        to: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Create a user.
    Create {
        #[arg(long)]
        username: String,
        #[arg(long)]
        email: String,
        /// Display name (default: the username).
        #[arg(long)]
        name: Option<String>,
        /// Password (at least 8 characters); without it the user cannot sign in with a password.
        #[arg(long, env = "LATCHKEY_USER_PASSWORD", hide_env_values = true)]
        password: Option<String>,
        /// Make the user an administrator.
        #[arg(long)]
        admin: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokensCommand {
    /// Create a personal access token and print it (once) on standard output.
    Create {
        /// Username of the token's owner.
        #[arg(long)]
        user: String,
        /// A name to recognise the token by.
        #[arg(long)]
        name: String,
        /// Space- or comma-separated scopes, e.g. "api read_api".
        #[arg(long, default_value = "api")]
        scopes: String,
        /// Last day the token works (YYYY-MM-DD, UTC); default: never expires.
        #[arg(long, value_name = "DATE")]
        expires_at: Option<String>,
    },
}

pub async fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let file = FileConfig::load(cli.global.config.as_deref())?;
    let settings = Settings::resolve(&cli.global, &file)?;
    telemetry::init(&settings.log, settings.log_format)?;
    match cli.command {
        Command::Serve(args) => serve(&settings, &ServeSettings::resolve(&args, &file)?).await,
        Command::Migrate => {
            startup::open_store(&settings, Schema::Migrate).await?;
            eprintln!("latchkey: the database is up to date");
            Ok(())
        }
        Command::Users(UsersCommand::Create {
            username,
            email,
            name,
            password,
            admin,
        }) => {
            let store = startup::open_store(&settings, Schema::Migrate).await?;
            let services = startup::services(store, &settings, None);
            let name = name.unwrap_or_else(|| username.clone());
            let user = services
                .create_user(&UserInput {
                    username: username.clone(),
                    email,
                    name,
                    password,
                    admin,
                })
                .await
                .context("cannot create the user")?;
            println!(
                "created user {} (id {}){}",
                user.username,
                user.id,
                if user.admin { ", administrator" } else { "" }
            );
            Ok(())
        }
        Command::Keys(KeysCommand::Rotate) => {
            let store = startup::open_store(&settings, Schema::Migrate).await?;
            let services = startup::services(store, &settings, None);
            let kid = services
                .rotate_signing_key()
                .await
                .context("cannot rotate the signing key")?;
            println!("{kid}");
            eprintln!("latchkey: new signing key {kid}; older keys stay published for a day");
            Ok(())
        }
        Command::Db(DbCommand::Copy { from, to }) => {
            let source = startup::open_store(
                &Settings {
                    database_url: from.clone(),
                    ..settings.clone()
                },
                Schema::RequireCurrent,
            )
            .await
            .context("cannot open the source database")?;
            let target = startup::open_store(
                &Settings {
                    database_url: to.clone(),
                    ..settings.clone()
                },
                Schema::Migrate,
            )
            .await
            .context("cannot open the target database")?;
            let counts = latchkey_core::dump::copy(source.as_ref(), target.as_ref(), |table, n| {
                if n % 100_000 == 0 {
                    eprintln!("latchkey: {table}: {n} rows…");
                }
            })
            .await
            .context("the copy failed; the target may hold a partial copy: drop and recreate it before retrying")?;
            for (table, n) in &counts {
                println!("{table}: {n} rows");
            }
            eprintln!("latchkey: copied and verified {} tables", counts.len());
            Ok(())
        }
        Command::Tokens(TokensCommand::Create {
            user,
            name,
            scopes,
            expires_at,
        }) => {
            let store = startup::open_store(&settings, Schema::Migrate).await?;
            let services = startup::services(store, &settings, None);
            let owner = services
                .find_user_by_username(&user)
                .await?
                .with_context(|| format!("no user named {user:?}"))?;
            let expires = expires_at
                .as_deref()
                .map(parse_expiry)
                .transpose()
                .map_err(anyhow::Error::msg)?;
            let scopes = scopes.replace(',', " ");
            let (_, plaintext) = services
                .create_token(owner.id, &name, &scopes, expires)
                .await
                .context("cannot create the token")?;
            println!("{}", plaintext.0);
            Ok(())
        }
    }
}

async fn serve(settings: &Settings, serve: &ServeSettings) -> anyhow::Result<()> {
    let schema = if serve.migrate {
        Schema::Migrate
    } else {
        Schema::RequireCurrent
    };
    // Held until the process ends: one serving process per SQLite file.
    let _serving = startup::lock_sqlite_for_serving(&settings.database_url)?;
    let store = startup::open_store_for_serving(settings, schema).await?;
    let services = startup::services(store, settings, Some(serve));
    if let Some(b) = services
        .bootstrap_root(serve.root_password.as_deref(), serve.root_token.as_deref())
        .await
        .context("cannot create the root user")?
    {
        startup::print_bootstrap(&b);
    }
    // The first signing key (RSA generation takes a while) is made in the
    // background, so a first start is ready at once; an ID token asked for
    // before it is ready makes one itself.
    let keys = services.clone();
    tokio::spawn(async move {
        if let Err(e) = keys.ensure_signing_key_once().await {
            tracing::warn!(error = %e, "cannot create the OpenID Connect signing key yet");
        }
    });
    let open_files = crate::server::raise_open_files_limit();
    let limits = crate::server::Limits {
        header_timeout: serve.http.header_timeout,
        body_timeout: serve.http.body_timeout,
        idle_timeout: serve.http.idle_timeout,
        write_timeout: serve.http.write_timeout,
        shutdown_timeout: serve.http.shutdown_timeout,
        max_connections: serve.http.max_connections.unwrap_or_else(|| {
            crate::server::default_max_connections(open_files, settings.pool_size)
        }),
    };
    let listener = tokio::net::TcpListener::bind(serve.listen)
        .await
        .with_context(|| format!("cannot listen on {}", serve.listen))?;
    let local = listener.local_addr().context("no local address")?;
    tracing::info!(
        listen = %local,
        external_url = %serve.external_url,
        open_files_limit = open_files,
        max_connections = limits.max_connections,
        "latchkey is serving"
    );
    startup::serve(listener, startup::state(services, serve), limits).await
}
