//! `latchkey keys …`

use anyhow::Context;
use clap::Subcommand;
use latchkey_core::context::Context as Actor;
use serde::Serialize;

use super::output::{self, Format, FormatArg};
use crate::config::Settings;
use crate::startup::{self, Schema};

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Make a new signing key; ID tokens are signed with it from now on (every
    /// instance switches within a minute). Older keys stay published for a
    /// day so the tokens they signed still verify.
    Rotate,
    /// List the published signing keys (never a private key): the one ID
    /// tokens are signed with, and retired ones still published.
    List {
        #[command(flatten)]
        format: FormatArg,
    },
}

/// A signing key as the command line shows it (`--format json`).
#[derive(Debug, Serialize)]
struct KeyRecord<'a> {
    kid: &'a str,
    algorithm: &'a str,
    state: &'static str,
    created_at: String,
    retired_at: Option<String>,
}

pub async fn run(settings: &Settings, command: KeysCommand) -> anyhow::Result<()> {
    let store = match command {
        KeysCommand::Rotate => startup::open_existing_store(settings, Schema::Migrate).await?,
        _ => startup::open_existing_store(settings, Schema::RequireCurrent).await?,
    };
    let services = startup::services(store, settings, None);
    match command {
        KeysCommand::Rotate => {
            let kid = services
                .rotate_signing_key(&Actor::command_line())
                .await
                .context("cannot rotate the signing key")?;
            say!("{kid}");
            eprintln!("latchkey: new signing key {kid}; older keys stay published for a day");
        }
        KeysCommand::List { format } => {
            // (A database without keys yet shows none: the server makes
            // the first at start.)
            let since = services.now_ms() - latchkey_core::oidc::RETIRED_KEY_PUBLISHED_MS;
            let keys = services.store().signing_keys(since).await?;
            let records: Vec<KeyRecord<'_>> = keys
                .iter()
                .map(|k| KeyRecord {
                    kid: &k.kid,
                    algorithm: &k.algorithm,
                    state: if k.retired_at.is_none() {
                        "signing"
                    } else {
                        "retired"
                    },
                    created_at: output::when(Some(k.created_at)),
                    retired_at: k.retired_at.map(|t| output::when(Some(t))),
                })
                .collect();
            match format.format {
                Format::Json => output::json(&records)?,
                Format::Text => {
                    let rows: Vec<Vec<String>> = records
                        .iter()
                        .map(|k| {
                            vec![
                                k.kid.to_owned(),
                                k.algorithm.to_owned(),
                                k.state.to_owned(),
                                k.created_at.clone(),
                                k.retired_at.clone().unwrap_or_else(|| "-".to_owned()),
                            ]
                        })
                        .collect();
                    output::table(&["KID", "ALGORITHM", "STATE", "CREATED", "RETIRED"], &rows);
                }
            }
        }
    }
    Ok(())
}
