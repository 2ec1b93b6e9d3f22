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
use rusqlite::{Connection, OpenFlags, OptionalExtension, Params};

/// A rusqlite row with the column access the shared decoders use.
pub(crate) struct Lite<'a, 'stmt>(&'a rusqlite::Row<'stmt>);

impl Columns for Lite<'_, '_> {
    type Error = rusqlite::Error;

    fn get_i64(&self, col: &str) -> rusqlite::Result<i64> {
        self.0.get(col)
    }

    fn get_opt_i64(&self, col: &str) -> rusqlite::Result<Option<i64>> {
        self.0.get(col)
    }

    fn get_text(&self, col: &str) -> rusqlite::Result<String> {
        self.0.get(col)
    }

    fn get_opt_text(&self, col: &str) -> rusqlite::Result<Option<String>> {
        self.0.get(col)
    }

    fn get_bool(&self, col: &str) -> rusqlite::Result<bool> {
        self.0.get(col)
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
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < self.max_idle {
            idle.push(conn);
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
        let conn = self.take()?;
        let result = conn
            .prepare_cached(sql)
            .and_then(|mut stmt| stmt.query_row(params, |row| decode(&Lite(row))).optional());
        match result {
            Ok(found) => {
                self.give_back(conn);
                Some(found)
            }
            Err(e) => {
                // Busy or locked is expected now and then; anything else is
                // answered by the pool, which reports it properly.
                tracing::debug!(error = %e, "inline SQLite read failed; using the pool");
                self.give_back(conn);
                None
            }
        }
    }
}
