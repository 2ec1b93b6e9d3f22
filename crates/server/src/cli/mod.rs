//! The `latchkey` command line. Every subcommand calls the same core
//! services as the HTTP API.

use clap::{Parser, Subcommand};

use crate::config::{GlobalArgs, ServeArgs, ServeSettings, Settings};
use crate::startup::Schema;
use crate::{startup, telemetry};

/// `println!` for the commands' output: a reader that went away (`| head`)
/// ends the command quietly instead of a panic.
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::cli::output::say(format_args!($($arg)*))
    };
}

mod applications;
mod db;
mod import;
mod keys;
mod output;
mod serve;
mod state;
mod tokens;
mod users;

pub use applications::ApplicationsCommand;
pub use db::DbCommand;
pub use keys::KeysCommand;
pub use state::{apply_file, read_state_file, report};
pub use tokens::TokensCommand;
pub use users::UsersCommand;

#[derive(Debug, Parser)]
#[command(
    name = "latchkey",
    version,
    about = "GitLab-compatible OAuth application registry and OAuth 2 / OpenID Connect provider, \
             on SQLite or PostgreSQL",
    after_help = "Start with `latchkey serve` (SQLite file latchkey.db, 127.0.0.1:8080; root's \
                  credentials are printed once). `latchkey COMMAND --help` shows a command's own \
                  options apart from the global ones.",
    long_about = "latchkey serves GitLab's Applications API (/api/v4/applications) and is an OAuth 2 \
                  / OpenID Connect provider for the applications it registers, on an embedded SQLite \
                  database or on PostgreSQL (any number of instances). Configure with flags, LATCHKEY_* environment variables or a TOML \
                  file (--config) whose keys are the options' names (http_idle_timeout for \
                  --http-idle-timeout); flags win over the environment, which wins over the file."
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
    /// Manage OAuth applications.
    #[command(subcommand)]
    Applications(ApplicationsCommand),
    /// Database operations.
    #[command(subcommand)]
    Db(DbCommand),
    /// OpenID Connect signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Make the database hold what a state file says: users and their
    /// tokens, groups and their members, applications (one transaction;
    /// applying it again changes nothing).
    Apply(state::ApplyArgs),
    /// Write the users, tokens, groups and applications as a state file
    /// (digests only, never a secret), for `latchkey apply`.
    Export(state::ExportArgs),
    /// Move in from another system, every credential intact.
    #[command(subcommand)]
    Import(import::ImportCommand),
}

pub async fn run() -> anyhow::Result<()> {
    let (cli, file): (Cli, _) = crate::config::parse_command_line(std::env::args_os())?;
    let mut settings = Settings::resolve(&cli.global, &file)?;
    // A command prints what it did itself: its log says only what went
    // wrong, unless a filter was given (the server's default is `info`).
    if cli.global.log.is_none() && !matches!(cli.command, Command::Serve(_)) {
        settings.log = "warn".to_owned();
    }
    let _log = telemetry::init(&settings.log, settings.log_format)?;
    match cli.command {
        Command::Serve(args) => serve::run(&settings, &ServeSettings::resolve(&args)?).await,
        Command::Migrate => {
            startup::open_store(&settings, Schema::Migrate).await?;
            eprintln!("latchkey: the database is up to date");
            Ok(())
        }
        Command::Users(command) => users::run(&settings, command).await,
        Command::Tokens(command) => tokens::run(&settings, command).await,
        Command::Applications(command) => applications::run(&settings, command).await,
        Command::Db(command) => db::run(&settings, command).await,
        Command::Keys(command) => keys::run(&settings, command).await,
        Command::Apply(args) => state::apply(&settings, args).await,
        Command::Export(args) => state::export(&settings, args).await,
        Command::Import(command) => import::run(&settings, command).await,
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        // clap's own consistency checks (duplicate flags, bad defaults, …).
        super::Cli::command().debug_assert();
    }

    /// Every command and every option says what it is in `--help`.
    #[test]
    fn every_command_and_option_is_described() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if id != "help" && id != "version" && arg.get_help().is_none() {
                    missing.push(format!("{path} {id}"));
                }
            }
            for sub in cmd.get_subcommands() {
                let path = format!("{path} {}", sub.get_name());
                if sub.get_about().is_none() && sub.get_name() != "help" {
                    missing.push(path.clone());
                }
                walk(sub, &path, missing);
            }
        }
        let mut missing = Vec::new();
        walk(&super::Cli::command(), "latchkey", &mut missing);
        assert!(missing.is_empty(), "without help: {missing:#?}");
    }
}
