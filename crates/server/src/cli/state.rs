//! `latchkey apply` and `latchkey export`: the database's users, tokens,
//! groups and applications as a TOML state file (see `core::state`).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use latchkey_core::context::Context as Actor;
use latchkey_core::state::{Applied, ApplyOptions, StateFile};
use latchkey_core::Services;

use crate::config::Settings;
use crate::startup::{self, Schema};

#[derive(Debug, clap::Args)]
pub struct ApplyArgs {
    /// The state file (TOML): [[users]] (with [[users.tokens]]), [[groups]]
    /// and [[applications]]; see the README.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Print what would change, and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Also delete what the file does not list, for each kind it lists
    /// (users, groups, applications; the tokens of listed users that list
    /// tokens; the members of listed groups that list members). Never root,
    /// nor the last active administrator.
    #[arg(long)]
    pub prune: bool,
}

#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// Write the state file here (readable by its owner only) instead of
    /// standard output.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// Read and parse a state file; errors name the file.
pub fn read_state_file(path: &Path) -> anyhow::Result<StateFile> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the state file {}", path.display()))?;
    StateFile::parse(&text).map_err(|e| anyhow::anyhow!("{}: {}", path.display(), e.trim_end()))
}

/// Apply the state file at `path`; errors name the file.
pub async fn apply_file(
    services: &Services,
    path: &Path,
    options: ApplyOptions,
) -> anyhow::Result<Applied> {
    let file = read_state_file(path)?;
    services
        .apply_state(&Actor::command_line(), file, options)
        .await
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// What an apply did (or would do), for a person.
pub fn report(path: &Path, applied: &Applied, dry_run: bool) -> String {
    let mut out = String::new();
    let verb = if dry_run { "would " } else { "" };
    for change in &applied.changes {
        out.push_str(&format!("{verb}{change}\n"));
    }
    for kept in &applied.kept {
        out.push_str(&format!("{kept}\n"));
    }
    let n = applied.changes.len();
    let file = path.display();
    out.push_str(&match (n, dry_run) {
        (0, _) => format!("nothing to change: the database already holds what {file} says\n"),
        (_, true) => {
            format!("{n} change(s) planned from {file}; nothing was changed (--dry-run)\n")
        }
        (_, false) => format!("applied {n} change(s) from {file}\n"),
    });
    if !applied.generated.is_empty() {
        out.push_str("generated (shown only now; latchkey stores digests, never the values):\n");
        for (what, value) in &applied.generated {
            out.push_str(&format!("  {what}: {}\n", value.expose()));
        }
    }
    out
}

pub async fn apply(settings: &Settings, args: ApplyArgs) -> anyhow::Result<()> {
    // A file that does not parse fails before the database is touched; a
    // dry run changes nothing, not even the schema.
    read_state_file(&args.file)?;
    let store = startup::open_store(settings, Schema::for_changes(args.dry_run)).await?;
    let services = startup::services(store, settings, None);
    let options = ApplyOptions {
        dry_run: args.dry_run,
        prune: args.prune,
        seeding: false,
    };
    let applied = apply_file(&services, &args.file, options).await?;
    print!("{}", report(&args.file, &applied, args.dry_run));
    Ok(())
}

pub async fn export(settings: &Settings, args: ExportArgs) -> anyhow::Result<()> {
    let store = startup::open_store(settings, Schema::RequireCurrent).await?;
    let services = startup::services(store, settings, None);
    let state = services
        .export_state()
        .await
        .context("cannot read the database")?;
    let text = state.to_toml().map_err(anyhow::Error::msg)?;
    let text = format!(
        "# latchkey state: `latchkey apply FILE` makes a database hold it.\n\
         # Passwords, tokens and secrets are digests only; keep this file private.\n\n{text}"
    );
    match &args.output {
        None => print!("{text}"),
        Some(path) => {
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(path)
                .with_context(|| format!("cannot write {}", path.display()))?;
            // An existing file keeps its mode when opened: make it private.
            use std::os::unix::fs::PermissionsExt;
            f.set_permissions(std::fs::Permissions::from_mode(0o600))
                .with_context(|| format!("cannot make {} private", path.display()))?;
            f.write_all(text.as_bytes())
                .with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!("latchkey: exported the state to {}", path.display());
        }
    }
    Ok(())
}
