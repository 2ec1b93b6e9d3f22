//! Group commit: concurrent writes share one transaction, and so one
//! fsync. A thread of its own drains a queue of pending writes into a
//! transaction, commits, and only then answers each writer. Every write is
//! a single statement, and SQLite undoes a failing statement on its own
//! without touching the rest of the transaction, so one failing write (a
//! unique conflict, say) fails only its writer. Nothing is acknowledged
//! before it is durable; under light load a batch is one write and this
//! costs what a plain transaction does.
//!
//! The thread runs the statements through rusqlite, synchronously: a batch
//! costs one handoff to the thread and one back, however many writes it
//! holds (through sqlx every statement was a round trip to its connection
//! thread, which made thread switches the largest cost of a create).
//!
//! The thread's connection is a second writer beside the sqlx writer pool
//! (one connection) that every other write uses. To keep SQLite's write
//! lock uncontended inside the process, a batch holds that pool's
//! connection while it runs: the two take turns in the pool's FIFO order
//! instead of sleeping in SQLite's busy handler.

use std::path::Path;
use std::time::Duration;

use latchkey_core::store::StoreError;
use rusqlite::{Connection, OpenFlags};
use sqlx::SqlitePool;
use tokio::sync::{mpsc, oneshot};

/// Writes in one transaction at most.
const MAX_BATCH: usize = 256;
/// Writes waiting for the writer at most (then writers wait to enqueue).
const QUEUE: usize = 4096;

/// Tells a writer how its write ended, once the batch's commit is known.
type Completer = Box<dyn FnOnce(Result<(), StoreError>) + Send>;
/// One write: runs its statement (given a connection; `None` when the batch
/// could not start) and hands back what answers the writer after the commit.
type Job = Box<dyn FnOnce(Option<&Connection>) -> Completer + Send>;

#[derive(Debug, Clone)]
pub struct GroupCommit {
    jobs: mpsc::Sender<Job>,
}

fn closed() -> StoreError {
    StoreError::Unavailable("the database writer has stopped".to_owned())
}

impl GroupCommit {
    /// Open the group writer's connection to `path` and start its thread.
    /// `turns` is the sqlx writer pool, held during each batch. For an
    /// in-memory database `path` is sqlx's shared-cache name for it.
    pub fn start(
        path: &Path,
        in_memory: bool,
        busy_timeout: Duration,
        turns: SqlitePool,
    ) -> Result<Self, StoreError> {
        let conn = open(path, in_memory, busy_timeout).map_err(map_err)?;
        let runtime = tokio::runtime::Handle::current();
        let (tx, rx) = mpsc::channel::<Job>(QUEUE);
        std::thread::Builder::new()
            .name("latchkey-group-commit".to_owned())
            .spawn(move || run(&conn, rx, &runtime, &turns))
            .map_err(|e| StoreError::Other(format!("cannot start the database writer: {e}")))?;
        Ok(Self { jobs: tx })
    }

    /// An error if the writer thread has stopped.
    pub fn check(&self) -> Result<(), StoreError> {
        if self.jobs.is_closed() {
            Err(closed())
        } else {
            Ok(())
        }
    }

    /// Run `write`, one statement, in the next batch; its result is returned
    /// once the batch is committed (or the commit's error if it is not).
    pub async fn write<T, F>(&self, write: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let (answer, answered) = oneshot::channel::<Result<T, StoreError>>();
        let job: Job = Box::new(move |conn| {
            let result = conn.map(write);
            Box::new(move |commit| {
                let outcome = match (result, commit) {
                    (Some(Err(e)), _) => Err(map_err(e)),
                    (_, Err(e)) => Err(e),
                    (Some(Ok(v)), Ok(())) => Ok(v),
                    (None, Ok(())) => Err(StoreError::Other("the write was not run".to_owned())),
                };
                let _ = answer.send(outcome);
            })
        });
        self.jobs.send(job).await.map_err(|_| closed())?;
        answered.await.map_err(|_| closed())?
    }
}

fn open(path: &Path, in_memory: bool, busy_timeout: Duration) -> rusqlite::Result<Connection> {
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if in_memory {
        // The same database the sqlx connections share (as sqlx opens it).
        flags |= OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_MEMORY
            | OpenFlags::SQLITE_OPEN_SHARED_CACHE;
    }
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(busy_timeout)?;
    // Per connection, as the sqlx connections have them (the WAL journal
    // mode is a property of the file, set by the sqlx connections).
    conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")?;
    conn.set_prepared_statement_cache_capacity(16);
    Ok(conn)
}

/// SQLite's errors in the store's terms (as `map_err` does for sqlx's).
pub(crate) fn map_err(e: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode;
    match &e {
        rusqlite::Error::SqliteFailure(f, msg) => match f.code {
            ErrorCode::ConstraintViolation
                if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE =>
            {
                // "UNIQUE constraint failed: oauth_applications.uid"
                let what = msg
                    .as_deref()
                    .and_then(|m| m.rsplit('.').next())
                    .unwrap_or("value");
                StoreError::Conflict(what.to_owned())
            }
            ErrorCode::ConstraintViolation
                if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY =>
            {
                StoreError::Gone
            }
            ErrorCode::ConstraintViolation if f.extended_code == 1811 => {
                StoreError::LastAdministrator
            }
            ErrorCode::DatabaseBusy
            | ErrorCode::DatabaseLocked
            | ErrorCode::SystemIoFailure
            | ErrorCode::DiskFull
            | ErrorCode::CannotOpen => StoreError::Unavailable(e.to_string()),
            _ => StoreError::Other(e.to_string()),
        },
        _ => StoreError::Other(e.to_string()),
    }
}

fn run(
    conn: &Connection,
    mut rx: mpsc::Receiver<Job>,
    runtime: &tokio::runtime::Handle,
    turns: &SqlitePool,
) {
    // Returning the pool's connection spawns onto the runtime.
    let _context = runtime.enter();
    while let Some(first) = rx.blocking_recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let mut completers = Vec::with_capacity(batch.len());
        // Our turn at SQLite's write lock (see the module documentation).
        let outcome = match runtime.block_on(turns.acquire()) {
            Ok(turn) => {
                let outcome = run_batch(conn, batch, &mut completers).map_err(map_err);
                drop(turn);
                outcome
            }
            Err(e) => {
                // Nothing ran: every writer gets the error.
                completers.extend(batch.into_iter().map(|job| job(None)));
                Err(crate::map_err(e))
            }
        };
        if let Err(e) = &outcome {
            tracing::warn!(error = %e, writes = completers.len(), "a group commit failed");
        }
        for complete in completers {
            complete(outcome.as_ref().map(|_| ()).map_err(StoreError::clone));
        }
    }
}

fn run_batch(
    conn: &Connection,
    batch: Vec<Job>,
    completers: &mut Vec<Completer>,
) -> rusqlite::Result<()> {
    if let Err(e) = conn
        .prepare_cached("BEGIN IMMEDIATE")
        .and_then(|mut s| s.execute([]))
    {
        // Nothing ran: every writer gets the error.
        completers.extend(batch.into_iter().map(|job| job(None)));
        return Err(e);
    }
    let mut jobs = batch.into_iter();
    for job in jobs.by_ref() {
        completers.push(job(Some(conn)));
        if conn.is_autocommit() {
            // Some failures (disk full, I/O error, out of memory) make SQLite
            // roll the whole transaction back: the writes so far are undone,
            // and the rest must not run outside a transaction, where each
            // would commit on its own while its writer is told it failed.
            completers.extend(jobs.map(|job| job(None)));
            return Err(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ABORT),
                Some("SQLite rolled the batch back after a failed write".to_owned()),
            ));
        }
    }
    match conn
        .prepare_cached("COMMIT")
        .and_then(|mut s| s.execute([]))
    {
        Ok(_) => Ok(()),
        Err(e) => {
            if !conn.is_autocommit() {
                // Undo the batch; if even that fails, the next BEGIN fails
                // and reports it.
                let _ = conn.execute_batch("ROLLBACK");
            }
            Err(e)
        }
    }
}
