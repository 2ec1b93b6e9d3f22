//! `latchkey tokens …`

use std::collections::HashMap;

use anyhow::Context;
use clap::Subcommand;
use latchkey_core::context::Context as Actor;
use latchkey_core::token::{parse_expiry, TokenFilter};
use latchkey_core::user::UserFilter;

use super::output::{self, failed, find_user, Format, FormatArg};
use crate::config::Settings;
use crate::http::tokens::TokenEntity;
use crate::startup::{self, Schema};

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
    /// List personal access tokens (never their values), ordered by id:
    /// every user's, or one user's with --user.
    List {
        /// Only this user's tokens (username or user id).
        #[arg(long)]
        user: Option<String>,
        /// Only tokens that work today (neither revoked nor expired).
        #[arg(long)]
        active: bool,
        #[command(flatten)]
        format: FormatArg,
    },
    /// Revoke a personal access token by its id.
    Revoke {
        /// The token's id (see `latchkey tokens list`).
        id: i64,
    },
}

pub async fn run(settings: &Settings, command: TokensCommand) -> anyhow::Result<()> {
    let store = match command {
        TokensCommand::Create { .. } => {
            startup::open_existing_store(settings, Schema::Migrate).await?
        }
        _ => startup::open_existing_store(settings, Schema::RequireCurrent).await?,
    };
    let services = startup::services(store, settings, None);
    let actor = Actor::command_line();
    match command {
        TokensCommand::Create {
            user,
            name,
            scopes,
            expires_at,
        } => {
            let owner = find_user(&services, &user).await?;
            let expires = expires_at
                .as_deref()
                .map(parse_expiry)
                .transpose()
                .map_err(anyhow::Error::msg)
                .context("--expires-at")?;
            let scopes = scopes.replace(',', " ");
            let (_, plaintext) = services
                .create_token(&actor, owner.id, &name, &scopes, expires)
                .await
                .map_err(|e| failed("create the token", e))?;
            say!("{}", plaintext.expose());
        }
        TokensCommand::List {
            user,
            active,
            format,
        } => {
            let owner = match &user {
                Some(name) => Some(find_user(&services, name).await?),
                None => None,
            };
            let filter = TokenFilter {
                user_id: owner.as_ref().map(|u| u.id),
                active: active.then_some(true),
                ..Default::default()
            };
            let mut tokens = output::every_page(|page| services.list_tokens(&filter, page)).await?;
            tokens.sort_by_key(|t| t.id);
            let today = services.today();
            match format.format {
                Format::Json => {
                    let entities: Vec<_> = tokens
                        .iter()
                        .map(|t| TokenEntity::new(t, today, None))
                        .collect();
                    output::json(&entities)?;
                }
                Format::Text => {
                    let names: HashMap<i64, String> = match owner {
                        Some(u) => HashMap::from([(u.id, u.username)]),
                        None => super::users::all_users(&services, &UserFilter::default())
                            .await?
                            .into_iter()
                            .map(|u| (u.id, u.username))
                            .collect(),
                    };
                    let rows: Vec<Vec<String>> = tokens
                        .iter()
                        .map(|t| {
                            let state = if t.revoked {
                                "revoked"
                            } else if t.is_expired(today) {
                                "expired"
                            } else {
                                "active"
                            };
                            vec![
                                t.id.to_string(),
                                names
                                    .get(&t.user_id)
                                    .cloned()
                                    .unwrap_or_else(|| t.user_id.to_string()),
                                t.name.clone(),
                                state.to_owned(),
                                t.scopes.as_slice().join(" "),
                                t.expires_at
                                    .map(|d| d.to_string())
                                    .unwrap_or_else(|| "never".to_owned()),
                                output::when(t.last_used_at),
                            ]
                        })
                        .collect();
                    output::table(
                        &[
                            "ID",
                            "USER",
                            "NAME",
                            "STATE",
                            "SCOPES",
                            "EXPIRES",
                            "LAST USED",
                        ],
                        &rows,
                    );
                }
            }
        }
        TokensCommand::Revoke { id } => {
            let token = services
                .find_token(id)
                .await?
                .ok_or_else(|| anyhow::anyhow!("no personal access token with id {id}"))?;
            services
                .revoke_token(&actor, id)
                .await
                .map_err(|e| failed(&format!("revoke token {id}"), e))?;
            if token.revoked {
                say!("token {id} ({:?}) was already revoked", token.name);
            } else {
                say!("revoked token {id} ({:?})", token.name);
            }
        }
    }
    Ok(())
}
