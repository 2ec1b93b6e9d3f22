//! `latchkey tokens …`

use anyhow::Context;
use clap::Subcommand;
use latchkey_core::context::Context as Actor;

use crate::config::Settings;
use crate::startup::{self, Schema};

use latchkey_core::token::parse_expiry;

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

pub async fn run(settings: &Settings, command: TokensCommand) -> anyhow::Result<()> {
    match command {
        TokensCommand::Create {
            user,
            name,
            scopes,
            expires_at,
        } => {
            let store = startup::open_store(settings, Schema::Migrate).await?;
            let services = startup::services(store, settings, None);
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
                .create_token(&Actor::command_line(), owner.id, &name, &scopes, expires)
                .await
                .context("cannot create the token")?;
            println!("{}", plaintext.expose());
            Ok(())
        }
    }
}
