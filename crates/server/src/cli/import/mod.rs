//! `latchkey import gitlab`: users, groups, memberships, applications (and,
//! with GitLab's `db_key_base`, personal access tokens) from GitLab's own
//! database, with every credential as GitLab stored it, applied as one
//! state file (one transaction; importing again changes nothing).

mod gitlab;

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;
use latchkey_core::context::Context as Actor;
use latchkey_core::state::ApplyOptions;

use crate::config::Settings;
use crate::startup::{self, Schema};

#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// From GitLab's PostgreSQL database: users (with their passwords), groups and their
    /// members, OAuth applications (with their client_ids and secrets), and personal access
    /// tokens when --gitlab-secrets is given. Reads GitLab's database only.
    Gitlab(GitlabArgs),
}

#[derive(Debug, clap::Args)]
pub struct GitlabArgs {
    /// GitLab's database, e.g. postgres://gitlab@db.example/gitlabhq_production (read only).
    #[arg(long, value_name = "URL")]
    pub from: String,
    /// GitLab's secrets file (/etc/gitlab/gitlab-secrets.json). Its db_key_base is what GitLab
    /// salted personal access tokens' digests with: with it, tokens are imported too (serve
    /// with LATCHKEY_GITLAB_DB_KEY_BASE set to it until every token has been used once).
    #[arg(long, value_name = "FILE")]
    pub gitlab_secrets: Option<PathBuf>,
    /// Print what would change, and change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// `db_key_base` from GitLab's secrets file.
fn db_key_base(path: &PathBuf) -> anyhow::Result<String> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let json: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    json.pointer("/gitlab_rails/db_key_base")
        .and_then(|v| v.as_str())
        .filter(|k| !k.is_empty())
        .map(str::to_owned)
        .with_context(|| format!("{} has no gitlab_rails.db_key_base", path.display()))
}

/// `url` without its user, password and parameters, to print.
fn shown(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "GitLab's database".to_owned();
    };
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let host = authority.rsplit('@').next().unwrap_or_default();
    format!("{scheme}://{host}{path}")
}

/// How many entries a kind of the file has.
fn n<T>(list: &Option<Vec<T>>) -> usize {
    list.as_ref().map_or(0, Vec::len)
}

pub async fn run(settings: &Settings, command: ImportCommand) -> anyhow::Result<()> {
    let ImportCommand::Gitlab(args) = command;
    // The key is only needed to know tokens can be imported: their digests
    // are copied as GitLab stored them.
    let key = args.gitlab_secrets.as_ref().map(db_key_base).transpose()?;
    let data = gitlab::read(&args.from, key.is_some(), settings.database_timeout).await?;
    let store = startup::open_store(settings, Schema::for_changes(args.dry_run)).await?;
    let services = startup::services(store, settings, None);
    let mapped = gitlab::map(&data, &services.config().scopes);
    let file = &mapped.file;
    let members: usize = file.groups.iter().flatten().map(|g| n(&g.members)).sum();
    let tokens: usize = file.users.iter().flatten().map(|u| n(&u.tokens)).sum();
    println!(
        "read from {}: {} users ({} bots and ghost users left out), {} groups, {} memberships, \
         {} applications, {}",
        shown(&args.from),
        n(&file.users),
        mapped.bots,
        n(&file.groups),
        members,
        n(&file.applications),
        if key.is_some() {
            format!("{tokens} personal access tokens")
        } else {
            "no personal access tokens (give --gitlab-secrets: GitLab's db_key_base is needed to \
             verify them)"
                .to_owned()
        }
    );
    if !mapped.skipped.is_empty() {
        println!("not imported ({}):", mapped.skipped.len());
        for s in &mapped.skipped {
            println!("  {s}");
        }
    }
    let options = ApplyOptions {
        dry_run: args.dry_run,
        prune: false,
        seeding: false,
    };
    let applied = services
        .apply_state(&Actor::command_line(), mapped.file, options)
        .await
        .context("cannot import: nothing was changed")?;
    let origin = std::path::Path::new("GitLab");
    print!("{}", super::report(origin, &applied, args.dry_run));
    if key.is_some() && tokens > 0 && !args.dry_run {
        println!(
            "personal access tokens keep working while latchkey serves with \
             LATCHKEY_GITLAB_DB_KEY_BASE set to GitLab's db_key_base; each is rewritten to \
             latchkey's own digest at its first use"
        );
    }
    Ok(())
}
