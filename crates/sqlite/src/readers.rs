//! Read-only connections, kept for reuse.
//!
//! A read that is bounded work (a point read, a short page) runs right on
//! the async worker that asks: SQLite needs a few microseconds for it, and
//! a handoff to another thread and back cost more than the read
//! (`bench/DIAGNOSIS.md`). Other reads (deep pages, batches, whole-table
//! counts) run on a blocking thread. Readers never wait on the writer
//! (WAL); a busy timeout covers the rare moments SQLite makes them wait
//! (recovering the WAL index after a crash).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use latchkey_core::metrics::PoolState;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use latchkey_core::store::StoreError;
use latchkey_sql::{Conn, Decode, Value, Work};
use rusqlite::{Connection, OpenFlags};

use crate::conn::{map_err, LiteConn};

pub(crate) struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    /// Connections open, idle or in use.
    open: AtomicI64,
    max_idle: usize,
    busy_timeout: Duration,
    pub(crate) closed: AtomicBool,
}

impl Readers {
    pub(crate) fn new(path: PathBuf, max_idle: usize, busy_timeout: Duration) -> Self {
        Self {
            path,
            idle: Mutex::new(Vec::new()),
            open: AtomicI64::new(0),
            max_idle: max_idle.max(1),
            busy_timeout,
            closed: AtomicBool::new(false),
        }
    }

    fn open(&self) -> rusqlite::Result<Connection> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(self.busy_timeout)?;
        conn.set_prepared_statement_cache_capacity(32);
        Ok(conn)
    }

    fn take(&self) -> Result<Connection, StoreError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(crate::closed());
        }
        let reused = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        match reused {
            Some(conn) => Ok(conn),
            None => {
                let conn = self.open().map_err(map_err)?;
                self.open.fetch_add(1, Ordering::Relaxed);
                Ok(conn)
            }
        }
    }

    /// Connections idle and in use now, and how many are kept.
    pub(crate) fn state(&self) -> PoolState {
        let open = self.open.load(Ordering::Relaxed);
        let idle = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len();
        let idle = i64::try_from(idle).unwrap_or(i64::MAX);
        PoolState {
            idle,
            in_use: open.saturating_sub(idle).max(0),
            max: i64::try_from(self.max_idle).unwrap_or(i64::MAX),
        }
    }

    fn give_back(&self, conn: Connection) {
        // Never reuse a connection left inside a transaction: its next user
        // would read an old snapshot.
        if !conn.is_autocommit() || self.closed.load(Ordering::Acquire) {
            self.open.fetch_sub(1, Ordering::Relaxed);
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < self.max_idle {
            idle.push(conn);
        } else {
            self.open.fetch_sub(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        let n = i64::try_from(idle.len()).unwrap_or(0);
        idle.clear();
        self.open.fetch_sub(n, Ordering::Relaxed);
    }

    /// Run `work` here (bounded work only: this is an async worker).
    pub(crate) async fn read_here<T, F>(&self, snapshot: bool, work: F) -> Result<T, StoreError>
    where
        F: for<'c> FnOnce(&'c mut dyn Conn) -> Work<'c, T>,
    {
        let mut conn = self.take()?;
        let out = read_on(&mut conn, snapshot, work).await;
        self.give_back(conn);
        out
    }

    /// The first row of `sql`, decoded, on a connection taken and given
    /// back right here (no unit of work: see `Backend::read_point`).
    pub(crate) fn read_point<T>(
        &self,
        sql: &str,
        params: &[Value],
        decode: Decode<T>,
    ) -> Result<Option<T>, StoreError> {
        let conn = self.take()?;
        let row = crate::conn::query_first(&conn, sql, params).map_err(map_err);
        self.give_back(conn);
        row?.map(|mut row| decode(&mut row)).transpose()
    }

    /// Run `work` on a blocking thread.
    pub(crate) async fn read_aside<T, F>(
        self: &Arc<Self>,
        snapshot: bool,
        work: F,
    ) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut dyn Conn) -> Work<'c, T> + Send + 'static,
    {
        let readers = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = readers.take()?;
            let out = futures::executor::block_on(read_on(&mut conn, snapshot, work));
            readers.give_back(conn);
            out
        })
        .await
        .map_err(|e| StoreError::Internal(latchkey_core::error::cause(e)))?
    }
}

/// Run `work` on `conn`; with `snapshot`, in one read transaction, which an
/// error rolls back.
pub(crate) async fn read_on<T, F>(
    conn: &mut Connection,
    snapshot: bool,
    work: F,
) -> Result<T, StoreError>
where
    F: for<'c> FnOnce(&'c mut dyn Conn) -> Work<'c, T>,
{
    if !snapshot {
        return work(&mut LiteConn(conn)).await;
    }
    crate::conn::execute(conn, "BEGIN", &[]).map_err(map_err)?;
    let out = work(&mut LiteConn(conn)).await;
    let end = if out.is_ok() { "COMMIT" } else { "ROLLBACK" };
    if let Err(e) = crate::conn::execute(conn, end, &[]) {
        // give_back drops a connection left in a transaction.
        return out.and(Err(map_err(e)));
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn a_failed_snapshot_read_leaves_no_transaction_open() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (a INTEGER); INSERT INTO t VALUES (1);")
            .unwrap();
        let failed: Result<Vec<latchkey_sql::Row>, _> = read_on(&mut conn, true, |c| {
            Box::pin(async move { c.query("SELECT no_such_column FROM t", &[]).await })
        })
        .await;
        assert!(failed.is_err());
        assert!(conn.is_autocommit(), "rolled back");
        let ok = read_on(&mut conn, true, |c| {
            Box::pin(async move { c.query("SELECT a FROM t", &[]).await })
        })
        .await
        .unwrap();
        assert_eq!(ok[0].int("a").unwrap(), 1);
        assert!(conn.is_autocommit(), "committed");
    }

    #[tokio::test]
    async fn connections_inside_a_transaction_are_not_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.db");
        Connection::open(&path)
            .unwrap()
            .execute_batch("CREATE TABLE t (a INTEGER);")
            .unwrap();
        let readers = Readers::new(path, 4, Duration::from_secs(1));
        readers
            .read_here(false, |c| {
                Box::pin(async move { c.execute("BEGIN", &[]).await.map(drop) })
            })
            .await
            .unwrap();
        assert!(
            readers.idle.lock().unwrap().is_empty(),
            "dropped, not pooled"
        );
        let n = readers
            .read_here(false, |c| {
                Box::pin(async move { c.query("SELECT COUNT(*) FROM t", &[]).await })
            })
            .await
            .unwrap();
        assert_eq!(n[0].first_int().unwrap(), Some(0));
        assert_eq!(readers.idle.lock().unwrap().len(), 1);
    }
}
