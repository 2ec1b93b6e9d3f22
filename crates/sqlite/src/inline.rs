//! Point reads on the calling thread.
//!
//! sqlx runs every SQLite connection on a thread of its own: a statement is
//! a message to that thread and one back, and returning the connection to
//! the pool costs another round trip (a ping sqlx cannot skip). For a lookup
//! by primary key or unique digest SQLite itself needs a few microseconds,
//! so those handoffs were most of the cost of an authenticated GET
//! (`bench/DIAGNOSIS.md`). The hot point reads therefore run here, through
//! rusqlite, directly on the async worker that asks: no thread switch.
//!
//! This never waits: the connections have no busy timeout, and any failure
//! (busy, locked, cannot open, unexpected error) answers `None`, and the
//! caller runs the same query through the sqlx reader pool, which waits and
//! reports errors as every other read does. So the inline path can make a
//! read faster but never changes its answer.

use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use latchkey_sql_rows::Columns;
use rusqlite::{Connection, OpenFlags, Params};

/// A rusqlite row with the column access the shared decoders use. Column
/// names are read once per statement: rusqlite's lookup by name asks SQLite
/// for every column's name on every access, which was a sixth of a page's
/// cost.
pub(crate) struct Lite<'a, 'stmt> {
    row: &'a rusqlite::Row<'stmt>,
    names: &'a [String],
}

impl Lite<'_, '_> {
    fn idx(&self, col: &str) -> rusqlite::Result<usize> {
        self.names
            .iter()
            .position(|n| n == col)
            .ok_or_else(|| rusqlite::Error::InvalidColumnName(col.to_owned()))
    }
}

fn column_names(stmt: &rusqlite::Statement<'_>) -> Vec<String> {
    stmt.column_names().into_iter().map(str::to_owned).collect()
}

impl Columns for Lite<'_, '_> {
    type Error = rusqlite::Error;

    fn get_i64(&self, col: &str) -> rusqlite::Result<i64> {
        self.row.get(self.idx(col)?)
    }

    fn get_opt_i64(&self, col: &str) -> rusqlite::Result<Option<i64>> {
        self.row.get(self.idx(col)?)
    }

    fn get_text(&self, col: &str) -> rusqlite::Result<String> {
        self.row.get(self.idx(col)?)
    }

    fn get_opt_text(&self, col: &str) -> rusqlite::Result<Option<String>> {
        self.row.get(self.idx(col)?)
    }

    fn get_bool(&self, col: &str) -> rusqlite::Result<bool> {
        self.row.get(self.idx(col)?)
    }

    fn invalid(message: String) -> rusqlite::Error {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, message.into())
    }
}

/// Read-only connections to one database file, opened on demand and kept
/// for reuse (at most `max_idle`).
pub(crate) struct InlineReader {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    max_idle: usize,
}

impl InlineReader {
    pub(crate) fn new(path: PathBuf, max_idle: usize) -> Self {
        Self {
            path,
            idle: Mutex::new(Vec::new()),
            max_idle: max_idle.max(1),
        }
    }

    fn open(&self) -> rusqlite::Result<Connection> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        // Never wait on a worker thread: busy means "ask the pool".
        conn.busy_timeout(Duration::ZERO)?;
        conn.set_prepared_statement_cache_capacity(32);
        Ok(conn)
    }

    fn take(&self) -> Option<Connection> {
        let reused = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        match reused {
            Some(conn) => Some(conn),
            None => match self.open() {
                Ok(conn) => Some(conn),
                Err(e) => {
                    tracing::debug!(error = %e, "inline SQLite reader cannot open; using the pool");
                    None
                }
            },
        }
    }

    fn give_back(&self, conn: Connection) {
        // Never reuse a connection left inside a transaction: its next user
        // would read an old snapshot.
        if !conn.is_autocommit() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < self.max_idle {
            idle.push(conn);
        }
    }

    /// Run `read` on a connection of this reader; `None` when the caller
    /// should ask the pool instead. Keep the work bounded: it runs on an
    /// async worker.
    pub(crate) fn read<T>(
        &self,
        read: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Option<T> {
        let conn = self.take()?;
        let result = read(&conn);
        self.give_back(conn);
        match result {
            Ok(value) => Some(value),
            Err(e) => {
                // Busy or locked is expected now and then; anything else is
                // answered by the pool, which reports it properly.
                tracing::debug!(error = %e, "inline SQLite read failed; using the pool");
                None
            }
        }
    }

    /// The first row of `sql` decoded, or `Some(None)` when there is none;
    /// `None` when the caller should ask the pool instead.
    pub(crate) fn query_row<T>(
        &self,
        sql: &str,
        params: impl Params,
        decode: impl FnOnce(&Lite<'_, '_>) -> rusqlite::Result<T>,
    ) -> Option<Option<T>> {
        self.read(|conn| first_row(conn, sql, params, decode))
    }
}

/// The first row of `sql`, decoded, if any.
pub(crate) fn first_row<T>(
    conn: &Connection,
    sql: &str,
    params: impl Params,
    decode: impl FnOnce(&Lite<'_, '_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<Option<T>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let names = column_names(&stmt);
    let mut rows = stmt.query(params)?;
    match rows.next()? {
        Some(row) => decode(&Lite { row, names: &names }).map(Some),
        None => Ok(None),
    }
}

/// The row an `INSERT … RETURNING` gives back, decoded.
pub(crate) fn returned_row<T>(
    conn: &Connection,
    sql: &str,
    params: impl Params,
    decode: impl FnOnce(&Lite<'_, '_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    first_row(conn, sql, params, decode)?.ok_or(rusqlite::Error::QueryReturnedNoRows)
}

/// Every row of `sql`, decoded.
pub(crate) fn rows<T>(
    conn: &Connection,
    sql: &str,
    params: impl Params,
    mut decode: impl FnMut(&Lite<'_, '_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<Vec<T>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let names = column_names(&stmt);
    let mut rows = stmt.query(params)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(decode(&Lite { row, names: &names })?);
    }
    Ok(out)
}

/// Run `read` in one read transaction (its statements see one snapshot).
/// BEGIN and COMMIT are cached statements; on an error the transaction is
/// rolled back before the error is returned.
pub(crate) fn in_snapshot<T>(
    conn: &Connection,
    read: impl FnOnce(&Connection) -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    conn.prepare_cached("BEGIN")?.execute([])?;
    match read(conn).and_then(|v| conn.prepare_cached("COMMIT")?.execute([]).map(|_| v)) {
        Ok(v) => Ok(v),
        Err(e) => {
            if !conn.is_autocommit() {
                // If even this fails, give_back drops the connection.
                let _ = conn.execute_batch("ROLLBACK");
            }
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_failed_snapshot_read_leaves_no_transaction_open() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (a INTEGER); INSERT INTO t VALUES (1);")
            .unwrap();
        let failed: rusqlite::Result<i64> = in_snapshot(&conn, |c| {
            c.query_row("SELECT no_such_column FROM t", [], |r| r.get(0))
        });
        assert!(failed.is_err());
        assert!(conn.is_autocommit(), "rolled back");
        let ok: i64 =
            in_snapshot(&conn, |c| c.query_row("SELECT a FROM t", [], |r| r.get(0))).unwrap();
        assert_eq!(ok, 1);
        assert!(conn.is_autocommit(), "committed");
    }

    #[test]
    fn connections_inside_a_transaction_are_not_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.db");
        Connection::open(&path)
            .unwrap()
            .execute_batch("CREATE TABLE t (a INTEGER);")
            .unwrap();
        let reader = InlineReader::new(path, 4);
        let leaked = reader.read(|c| c.execute_batch("BEGIN"));
        assert_eq!(leaked, Some(()));
        assert!(
            reader.idle.lock().unwrap().is_empty(),
            "dropped, not pooled"
        );
        let fine =
            reader.read(|c| c.query_row("SELECT COUNT(*) FROM t", [], |r| r.get::<_, i64>(0)));
        assert_eq!(fine, Some(0));
        assert_eq!(reader.idle.lock().unwrap().len(), 1);
    }
}
