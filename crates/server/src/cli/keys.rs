//! `latchkey keys …`

use anyhow::Context;
use clap::Subcommand;
use latchkey_core::context::Context as Actor;

use crate::config::Settings;
use crate::startup::{self, Schema};

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Make a new signing key; ID tokens are signed with it from now on (every
    /// instance switches within a minute). Older keys stay published for a
    /// day so the tokens they signed still verify.
    Rotate,
}

pub async fn run(settings: &Settings, command: KeysCommand) -> anyhow::Result<()> {
    match command {
        KeysCommand::Rotate => {
            let store = startup::open_store(settings, Schema::Migrate).await?;
            let services = startup::services(store, settings, None);
            let kid = services
                .rotate_signing_key(&Actor::command_line())
                .await
                .context("cannot rotate the signing key")?;
            println!("{kid}");
            eprintln!("latchkey: new signing key {kid}; older keys stay published for a day");
            Ok(())
        }
    }
}
