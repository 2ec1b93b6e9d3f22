//! Migrations, applied through rusqlite and recorded as sqlx records them.
//!
//! The migration files are embedded with `sqlx::migrate!` (which only reads
//! them at build time), and each applied migration is recorded in
//! `_sqlx_migrations` with the same columns and checksums as sqlx's
//! migrator writes: every database created by an earlier latchkey (which
//! migrated through sqlx) upgrades in place, and the history stays readable
//! by either. (A migration crate keyed on `PRAGMA user_version`, such as
//! rusqlite_migration, would see those databases as empty.)

use std::time::Instant;

use latchkey_core::store::StoreError;
use rusqlite::{params, Connection, OptionalExtension};

use crate::conn::map_err;

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

const HISTORY: &str = "CREATE TABLE IF NOT EXISTS _sqlx_migrations (
    version BIGINT PRIMARY KEY,
    description TEXT NOT NULL,
    installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    success BOOLEAN NOT NULL,
    checksum BLOB NOT NULL,
    execution_time BIGINT NOT NULL
)";

fn failed(what: String) -> StoreError {
    StoreError::internal(format!("migration failed: {what}"))
}

/// Apply every pending migration, each in a transaction of its own.
pub(crate) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    conn.execute_batch(HISTORY).map_err(map_err)?;
    let dirty: Option<i64> = conn
        .query_row(
            "SELECT version FROM _sqlx_migrations WHERE success = false ORDER BY version LIMIT 1",
            [],
            |r| r.get(0),
        )
        .optional()
        .map_err(map_err)?;
    if let Some(v) = dirty {
        return Err(failed(format!(
            "migration {v} was left partially applied; restore a backup"
        )));
    }
    let applied: Vec<(i64, Vec<u8>)> = {
        let mut stmt = conn
            .prepare("SELECT version, checksum FROM _sqlx_migrations ORDER BY version")
            .map_err(map_err)?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(map_err)?;
        rows.collect::<rusqlite::Result<_>>().map_err(map_err)?
    };
    for (version, checksum) in &applied {
        match MIGRATOR.iter().find(|m| m.version == *version) {
            Some(m) if *m.checksum != **checksum => {
                return Err(failed(format!(
                    "migration {version} was previously applied but has been modified"
                )))
            }
            Some(_) => {}
            None => {
                return Err(failed(format!(
                    "migration {version} was previously applied but is missing in the resolved migrations"
                )))
            }
        }
    }
    for m in MIGRATOR.iter() {
        if applied.iter().any(|(v, _)| *v == m.version) {
            continue;
        }
        let started = Instant::now();
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(map_err)?;
        tx.execute_batch(&m.sql)
            .map_err(|e| failed(format!("{}: {e}", m.version)))?;
        tx.execute(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
             VALUES (?1, ?2, TRUE, ?3, ?4)",
            params![
                m.version,
                &*m.description,
                &*m.checksum,
                i64::try_from(started.elapsed().as_nanos()).unwrap_or(i64::MAX)
            ],
        )
        .map_err(map_err)?;
        tx.commit().map_err(map_err)?;
    }
    Ok(())
}

/// The newest migration applied, if any.
pub(crate) fn schema_version(conn: &Connection) -> Result<Option<i64>, StoreError> {
    let exists: bool = conn
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations')",
            [],
            |r| r.get(0),
        )
        .map_err(map_err)?;
    if !exists {
        return Ok(None);
    }
    conn.query_row(
        "SELECT MAX(version) FROM _sqlx_migrations WHERE success",
        [],
        |r| r.get(0),
    )
    .map_err(map_err)
}
