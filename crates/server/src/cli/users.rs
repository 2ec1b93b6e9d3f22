//! `latchkey users …`

use std::io::{BufRead, IsTerminal};

use anyhow::Context;
use clap::{ArgAction, Subcommand};
use latchkey_core::context::Context as Actor;
use latchkey_core::service::Services;
use latchkey_core::user::{User, UserChanges, UserFilter, UserInput, UserState};
use secrecy::SecretString;
use serde::Serialize;

use super::output::{self, failed, find_user, yes, Format, FormatArg};
use crate::config::Settings;
use crate::startup::{self, Schema};

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Create a user.
    Create {
        /// The username (letters, digits, `_`, `-`, `.`; GitLab's rules).
        #[arg(long)]
        username: String,
        /// The primary email address.
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
    /// List users, ordered by id.
    List {
        /// Only users whose username, name or email contains this.
        #[arg(long, value_name = "TEXT")]
        search: Option<String>,
        /// Only blocked users.
        #[arg(long, conflicts_with = "active")]
        blocked: bool,
        /// Only active users.
        #[arg(long)]
        active: bool,
        /// Only administrators.
        #[arg(long)]
        admins: bool,
        /// Only external users.
        #[arg(long)]
        external: bool,
        #[command(flatten)]
        format: FormatArg,
    },
    /// Show one user, with whether their sign-in is locked.
    Show {
        /// Username (or user id).
        user: String,
        #[command(flatten)]
        format: FormatArg,
    },
    /// Change a user's username, email, name, administrator or external flag.
    Update {
        /// Username (or user id).
        user: String,
        /// A new username.
        #[arg(long)]
        username: Option<String>,
        /// A new primary email address.
        #[arg(long)]
        email: Option<String>,
        /// Display name.
        #[arg(long)]
        name: Option<String>,
        /// Make the user an administrator (true) or not (false).
        #[arg(long, value_name = "BOOL", action = ArgAction::Set)]
        admin: Option<bool>,
        /// Make the user external (true) or not (false).
        #[arg(long, value_name = "BOOL", action = ArgAction::Set)]
        external: Option<bool>,
    },
    /// Block a user: their tokens, sessions and OAuth grants stop working.
    Block {
        /// Username (or user id).
        user: String,
    },
    /// Unblock a user.
    Unblock {
        /// Username (or user id).
        user: String,
    },
    /// Delete a user with their tokens, applications, sessions and memberships.
    Delete {
        /// Username (or user id).
        user: String,
        /// Also delete the groups they alone own, with everything in them
        /// (GitLab's hard_delete; otherwise those groups stay, without an Owner).
        #[arg(long)]
        hard_delete: bool,
    },
    /// Set a user's password (their browser sessions end). The password is
    /// read from LATCHKEY_USER_PASSWORD, else from the first line of standard
    /// input (e.g. `printf '%s\n' "$PW" | latchkey users set-password alice`).
    SetPassword {
        /// Username (or user id).
        user: String,
    },
    /// Lift a user's sign-in lockout (too many failed sign-ins) at once.
    Unlock {
        /// Username (or user id).
        user: String,
    },
}

/// A user as the command line shows it (`--format json`).
#[derive(Debug, Serialize)]
struct UserRecord<'a> {
    id: i64,
    username: &'a str,
    name: &'a str,
    email: &'a str,
    state: &'static str,
    is_admin: bool,
    external: bool,
    created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    locked: Option<bool>,
}

impl<'a> UserRecord<'a> {
    fn new(u: &'a User, locked: Option<bool>) -> Self {
        Self {
            id: u.id,
            username: &u.username,
            name: &u.name,
            email: &u.email,
            state: u.state.as_str(),
            is_admin: u.admin,
            external: u.external,
            created_at: output::when(Some(u.created_at)),
            locked,
        }
    }
}

pub async fn run(settings: &Settings, command: UsersCommand) -> anyhow::Result<()> {
    let store = match command {
        UsersCommand::Create { .. } => {
            startup::open_existing_store(settings, Schema::Migrate).await?
        }
        _ => startup::open_existing_store(settings, Schema::RequireCurrent).await?,
    };
    let services = startup::services(store, settings, None);
    let actor = Actor::command_line();
    match command {
        UsersCommand::Create {
            username,
            email,
            name,
            password,
            admin,
        } => {
            let name = name.unwrap_or_else(|| username.clone());
            let user = services
                .create_user(
                    &actor,
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
                .map_err(|e| failed("create the user", e))?;
            say!(
                "created user {} (id {}){}",
                user.username,
                user.id,
                if user.admin { ", administrator" } else { "" }
            );
        }
        UsersCommand::List {
            search,
            blocked,
            active,
            admins,
            external,
            format,
        } => {
            let filter = UserFilter {
                search,
                search_emails: true,
                blocked,
                active,
                admins,
                external,
                ascending: true,
                ..Default::default()
            };
            let users = all_users(&services, &filter).await?;
            match format.format {
                Format::Json => {
                    let records: Vec<_> = users.iter().map(|u| UserRecord::new(u, None)).collect();
                    output::json(&records)?;
                }
                Format::Text => {
                    let rows: Vec<Vec<String>> = users
                        .iter()
                        .map(|u| {
                            vec![
                                u.id.to_string(),
                                u.username.clone(),
                                u.email.clone(),
                                u.state.as_str().to_owned(),
                                yes(u.admin),
                                yes(u.external),
                                u.name.clone(),
                            ]
                        })
                        .collect();
                    output::table(
                        &[
                            "ID", "USERNAME", "EMAIL", "STATE", "ADMIN", "EXTERNAL", "NAME",
                        ],
                        &rows,
                    );
                }
            }
        }
        UsersCommand::Show { user, format } => {
            let user = find_user(&services, &user).await?;
            let locked = services.sign_in_locked(user.id).await?;
            match format.format {
                Format::Json => output::json(&UserRecord::new(&user, Some(locked)))?,
                Format::Text => output::record(&[
                    ("id", user.id.to_string()),
                    ("username", user.username.clone()),
                    ("name", user.name.clone()),
                    ("email", user.email.clone()),
                    ("state", user.state.as_str().to_owned()),
                    ("admin", yes(user.admin)),
                    ("external", yes(user.external)),
                    ("created_at", output::when(Some(user.created_at))),
                    (
                        "sign-in",
                        if locked {
                            "locked (too many failed sign-ins; `latchkey users unlock`)"
                        } else {
                            "not locked"
                        }
                        .to_owned(),
                    ),
                ]),
            }
        }
        UsersCommand::Update {
            user,
            username,
            email,
            name,
            admin,
            external,
        } => {
            let found = find_user(&services, &user).await?;
            if username.is_none()
                && email.is_none()
                && name.is_none()
                && admin.is_none()
                && external.is_none()
            {
                anyhow::bail!(
                    "nothing to change: give --username, --email, --name, --admin or --external"
                );
            }
            let changes = UserChanges {
                username,
                email,
                name,
                admin,
                external,
                ..Default::default()
            };
            let updated = services
                .update_user(&actor, found.id, &changes)
                .await
                .map_err(|e| failed(&format!("update user {}", found.username), e))?;
            say!("updated user {} (id {})", updated.username, updated.id);
        }
        UsersCommand::Block { user } => {
            set_state(&services, &actor, &user, UserState::Blocked).await?;
        }
        UsersCommand::Unblock { user } => {
            set_state(&services, &actor, &user, UserState::Active).await?;
        }
        UsersCommand::Delete { user, hard_delete } => {
            let found = find_user(&services, &user).await?;
            services
                .delete_user(&actor, found.id, hard_delete)
                .await
                .map_err(|e| failed(&format!("delete user {}", found.username), e))?;
            say!("deleted user {} (id {})", found.username, found.id);
        }
        UsersCommand::SetPassword { user } => {
            let found = find_user(&services, &user).await?;
            let password = read_password()?;
            let changes = UserChanges {
                password: Some(password),
                ..Default::default()
            };
            services
                .update_user(&actor, found.id, &changes)
                .await
                .map_err(|e| failed(&format!("set the password of {}", found.username), e))?;
            say!(
                "set the password of {}; their browser sessions have ended",
                found.username
            );
        }
        UsersCommand::Unlock { user } => {
            let found = find_user(&services, &user).await?;
            let was = services
                .unlock_user(&actor, &found)
                .await
                .map_err(|e| failed(&format!("unlock {}", found.username), e))?;
            if was {
                say!("unlocked {}: they can sign in again", found.username);
            } else {
                say!(
                    "{} was not locked (their failed sign-ins are forgotten)",
                    found.username
                );
            }
        }
    }
    Ok(())
}

/// Every user `filter` admits, page by page.
pub async fn all_users(services: &Services, filter: &UserFilter) -> anyhow::Result<Vec<User>> {
    output::every_page(|page| services.list_users(filter, page)).await
}

async fn set_state(
    services: &Services,
    actor: &Actor,
    name: &str,
    state: UserState,
) -> anyhow::Result<()> {
    let user = find_user(services, name).await?;
    let (verb, done) = match state {
        UserState::Blocked => ("block", "blocked"),
        UserState::Active => ("unblock", "unblocked"),
    };
    let changed = services
        .set_user_state(actor, user.id, state)
        .await
        .map_err(|e| failed(&format!("{verb} {}", user.username), e))?;
    if changed {
        say!("{done} {}", user.username);
    } else {
        say!("{} was already {done}", user.username);
    }
    Ok(())
}

/// The new password: LATCHKEY_USER_PASSWORD, else one line of standard
/// input (never an echoing prompt on a terminal).
fn read_password() -> anyhow::Result<SecretString> {
    if let Some(p) = std::env::var_os("LATCHKEY_USER_PASSWORD") {
        let p = p
            .into_string()
            .map_err(|_| anyhow::anyhow!("LATCHKEY_USER_PASSWORD is not valid UTF-8"))?;
        return Ok(SecretString::from(p));
    }
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        anyhow::bail!(
            "give the password in LATCHKEY_USER_PASSWORD or on standard input \
             (printf '%s\\n' \"$PASSWORD\" | latchkey users set-password USER); \
             it is not read from a terminal, which would show it"
        );
    }
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .context("cannot read the password from standard input")?;
    let password = line.trim_end_matches(['\n', '\r']).to_owned();
    if password.is_empty() {
        anyhow::bail!("no password on standard input");
    }
    Ok(SecretString::from(password))
}
