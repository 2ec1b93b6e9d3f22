//! `latchkey users …`

use anyhow::Context;
use clap::Subcommand;
use latchkey_core::context::Context as Actor;

use crate::config::Settings;
use crate::startup::{self, Schema};

use latchkey_core::user::UserInput;
use secrecy::SecretString;

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
        password: Option<SecretString>,
        /// Make the user an administrator.
        #[arg(long)]
        admin: bool,
    },
}

pub async fn run(settings: &Settings, command: UsersCommand) -> anyhow::Result<()> {
    match command {
        UsersCommand::Create {
            username,
            email,
            name,
            password,
            admin,
        } => {
            let store = startup::open_store(settings, Schema::Migrate).await?;
            let services = startup::services(store, settings, None);
            let name = name.unwrap_or_else(|| username.clone());
            let user = services
                .create_user(
                    &Actor::command_line(),
                    &UserInput {
                        username: username.clone(),
                        email,
                        name,
                        password,
                        admin,
                        ..Default::default()
                    },
                )
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
    }
}
