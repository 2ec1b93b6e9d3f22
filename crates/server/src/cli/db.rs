//! `latchkey db …`

use anyhow::Context;
use clap::Subcommand;

use crate::config::Settings;
use crate::startup::{self, Schema};

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

pub async fn run(settings: &Settings, command: DbCommand) -> anyhow::Result<()> {
    match command {
        DbCommand::Copy { from, to } => {
            // A SQLite source must exist (opening it would create it), and
            // no server may write to it during the copy: its serve lock is
            // held until the copy ends.
            let _source_lock = match latchkey_sqlite::database_file(&from) {
                None => None,
                Some(path) => {
                    if !path.exists() {
                        anyhow::bail!(
                            "the source database {} does not exist (check --from)",
                            path.display()
                        );
                    }
                    Some(startup::lock_sqlite_for_serving(&from).map_err(|e| {
                        if e.is::<startup::AlreadyServed>() {
                            anyhow::anyhow!(
                                "a latchkey server is serving the source database {}: stop it \
                                 first, so that the copy is consistent (nothing was copied)",
                                path.display()
                            )
                        } else {
                            e
                        }
                    })?)
                }
            };
            let source = startup::open_store(
                &Settings {
                    database_url: from.clone(),
                    database_url_key: "from",
                    ..settings.clone()
                },
                Schema::RequireCurrent,
            )
            .await
            .context("cannot open the source database")?;
            let target = startup::open_store(
                &Settings {
                    database_url: to.clone(),
                    database_url_key: "to",
                    ..settings.clone()
                },
                Schema::Migrate,
            )
            .await
            .context("cannot open the target database")?;
            let copied = latchkey_core::dump::copy(source.as_ref(), target.as_ref(), |table, n| {
                if n % 100_000 == 0 {
                    eprintln!("latchkey: {table}: {n} rows…");
                }
            })
            .await;
            let counts = match copied {
                Ok(counts) => counts,
                Err(e @ latchkey_core::dump::CopyError::TargetNotEmpty(..)) => {
                    return Err(anyhow::Error::new(e)
                        .context("nothing was copied: db copy needs an empty target database"))
                }
                Err(e) => {
                    return Err(anyhow::Error::new(e).context(
                        "the copy failed; the target may hold a partial copy: drop and \
                         recreate it before retrying",
                    ))
                }
            };
            for (table, n) in &counts {
                println!("{table}: {n} rows");
            }
            eprintln!("latchkey: copied and verified {} tables", counts.len());
            Ok(())
        }
    }
}
