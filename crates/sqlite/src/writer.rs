//! The writer: one connection on a thread of its own runs every write, with
//! group commit.
//!
//! Concurrent writes share one transaction, and so one fsync: the thread
//! drains its queue into a transaction, commits, and only then answers each
//! writer. A write of one statement runs as it is (SQLite undoes a failing
//! statement without touching the rest of the transaction); a write of
//! several runs inside a savepoint, which a failure rolls back. So one
//! failing write (a unique conflict, say) fails only its writer, and
//! nothing is acknowledged before it is durable. Under light load a batch
//! is one write and costs what a plain transaction does. A batch costs one
//! handoff to the thread and one back, however many writes it holds.
//!
//! Work that must run alone (migrations) runs between batches.

use latchkey_core::error::Chain;
use std::path::Path;
use std::time::{Duration, Instant};

use latchkey_core::metrics::prometheus_client::metrics::histogram::Histogram;
use latchkey_core::metrics::DatabaseMetrics;

use latchkey_core::store::StoreError;
use latchkey_sql::{Conn, Work};
use rusqlite::{Connection, OpenFlags};
use tokio::sync::{mpsc, oneshot};

use crate::conn::{map_err, LiteConn};

/// Writes in one transaction at most.
const MAX_BATCH: usize = 256;
/// Writes waiting for the writer at most (then writers wait to enqueue).
const QUEUE: usize = 4096;
/// The writer's page cache, in KiB (SQLite's default is 2,000).
const WRITER_CACHE_KIB: u32 = 16 * 1024;

/// Where SQLite keeps its temporary files while batches run: in memory.
/// A write of several statements runs in a savepoint, and SQLite keeps the
/// pages a savepoint changes, as they were, in a statement journal; past
/// 64 KiB that journal goes to a temporary file, which it did in nearly
/// every batch (measured: six times as many `pwrite` calls to it as to the
/// WAL, and a quarter of the writer's time). Each write's savepoint is
/// released before the next begins, so the journal holds one write's pages.
const BATCH_TEMP_STORE: &str = "PRAGMA temp_store = MEMORY;";
/// Where work run alone (migrations, which may build an index over every
/// row) keeps its temporary files: on disk, as SQLite does by default, so
/// that a large sort spills to a file instead of to memory.
const ALONE_TEMP_STORE: &str = "PRAGMA temp_store = DEFAULT;";

/// After how many pages in the WAL a commit also checkpoints it: SQLite's
/// default, 1,000. The checkpoint thread copies the WAL into the database
/// every `CHECKPOINT_EVERY` beside the writer; the writer's own checkpoint
/// is what lets the WAL start over under constant writes, and the batch
/// whose commit runs it waits for it. At 4,000 pages creates at 64
/// connections ran 7-12 % faster, but each such checkpoint was a longer
/// stall, and p99 at 16 connections went from 6.2-7.2 ms to 9.7-11.0 ms
/// (measured alternating, fresh databases, `bench/DIAGNOSIS.md`).
const WAL_AUTOCHECKPOINT_PAGES: u32 = 1_000;

/// Tells a writer how its write ended, once the batch's commit is known.
type Completer = Box<dyn FnOnce(Result<(), StoreError>) + Send>;
/// One write: runs (given the connection; `None` when the batch could not
/// start) and hands back what answers the writer after the commit.
type Batched = Box<dyn FnOnce(Option<&mut Connection>) -> Completer + Send>;

enum Job {
    Batched(Batched),
    /// Runs outside any transaction, between batches.
    Alone(Box<dyn FnOnce(&mut Connection) + Send>),
}

#[derive(Debug, Clone)]
pub(crate) struct Writer {
    jobs: mpsc::Sender<Job>,
    /// How long a write waits for room in the queue.
    enqueue_timeout: Duration,
    /// Seconds from asking to running, per write.
    wait: Histogram,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Job::Batched(_) => "Batched",
            Job::Alone(_) => "Alone",
        })
    }
}

fn stopped() -> StoreError {
    StoreError::unavailable("the database writer has stopped")
}

/// How the writer opens its connection.
pub(crate) struct Open<'a> {
    pub path: &'a Path,
    pub in_memory: bool,
    pub busy_timeout: Duration,
    pub enqueue_timeout: Duration,
    pub metrics: DatabaseMetrics,
}

impl Writer {
    /// Open the writer's connection and start its thread.
    pub(crate) fn start(open: &Open<'_>) -> Result<Self, StoreError> {
        let mut conn = connect(open).map_err(map_err)?;
        let (tx, rx) = mpsc::channel::<Job>(QUEUE);
        let batch_size = open.metrics.batch_size.clone();
        std::thread::Builder::new()
            .name("latchkey-writer".to_owned())
            .spawn(move || run(&mut conn, rx, &batch_size))
            .map_err(|e| {
                StoreError::Internal(latchkey_core::error::context(
                    "cannot start the database writer",
                    e,
                ))
            })?;
        Ok(Self {
            jobs: tx,
            enqueue_timeout: open.enqueue_timeout,
            wait: open.metrics.wait.clone(),
        })
    }

    /// An error if the writer thread has stopped.
    pub(crate) fn check(&self) -> Result<(), StoreError> {
        if self.jobs.is_closed() {
            Err(stopped())
        } else {
            Ok(())
        }
    }

    async fn send(&self, job: Job) -> Result<(), StoreError> {
        match tokio::time::timeout(self.enqueue_timeout, self.jobs.send(job)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(stopped()),
            Err(_) => Err(StoreError::unavailable("the database writer is overloaded")),
        }
    }

    /// Run `work` in the next batch (inside a savepoint when `atomic`); its
    /// result is returned once the batch is committed (or the commit's
    /// error if it is not).
    pub(crate) async fn write<T, F>(&self, atomic: bool, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut dyn Conn) -> Work<'c, T> + Send + 'static,
    {
        let (answer, answered) = oneshot::channel::<Result<T, StoreError>>();
        let (wait, asked) = (self.wait.clone(), Instant::now());
        let job: Batched = Box::new(move |conn| {
            wait.observe(asked.elapsed().as_secs_f64());
            let result = conn.map(|conn| run_write(conn, atomic, work));
            Box::new(move |commit| {
                let outcome = match (result, commit) {
                    (Some(Err(e)), _) => Err(e),
                    (_, Err(e)) => Err(e),
                    (Some(Ok(v)), Ok(())) => Ok(v),
                    (None, Ok(())) => Err(StoreError::internal("the write was not run")),
                };
                let _ = answer.send(outcome);
            })
        });
        self.send(Job::Batched(job)).await?;
        answered.await.map_err(|_| stopped())?
    }

    /// Run `work` on the writer's connection alone, outside any transaction.
    pub(crate) async fn alone<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (answer, answered) = oneshot::channel::<Result<T, StoreError>>();
        self.send(Job::Alone(Box::new(move |conn| {
            let _ = answer.send(work(conn));
        })))
        .await?;
        answered.await.map_err(|_| stopped())?
    }
}

fn run_write<T, F>(conn: &mut Connection, atomic: bool, work: F) -> Result<T, StoreError>
where
    F: for<'c> FnOnce(&'c mut dyn Conn) -> Work<'c, T>,
{
    if !atomic {
        return futures::executor::block_on(work(&mut LiteConn(conn)));
    }
    crate::conn::execute(conn, "SAVEPOINT write", &[]).map_err(map_err)?;
    let out = futures::executor::block_on(work(&mut LiteConn(conn)));
    let end = if out.is_ok() {
        "RELEASE write"
    } else {
        "ROLLBACK TO write"
    };
    let ended = crate::conn::execute(conn, end, &[]).and_then(|_| {
        if out.is_err() {
            crate::conn::execute(conn, "RELEASE write", &[])?;
        }
        Ok(())
    });
    match (out, ended) {
        (Ok(_), Err(e)) => Err(map_err(e)),
        (out, _) => out,
    }
}

fn connect(open: &Open<'_>) -> rusqlite::Result<Connection> {
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if open.in_memory {
        flags |= OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_MEMORY
            | OpenFlags::SQLITE_OPEN_SHARED_CACHE;
    }
    let conn = Connection::open_with_flags(open.path, flags)?;
    conn.busy_timeout(open.busy_timeout)?;
    // WAL: readers never wait for the writer. FULL: an acknowledged write
    // survives a crash of the process or the machine.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")?;
    conn.pragma_update(None, "wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES)?;
    // Every write goes through this connection, and the digest indexes
    // (tokens, codes, device codes) are written at random pages: with
    // SQLite's default 2 MB cache it read most of them back from the OS
    // for each group commit (measured: a third of its time in pread on a
    // table of 100,000 device codes). The cache fills only as used.
    conn.execute_batch(&format!("PRAGMA cache_size = -{WRITER_CACHE_KIB};"))?;
    conn.execute_batch(BATCH_TEMP_STORE)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

fn run(conn: &mut Connection, mut rx: mpsc::Receiver<Job>, batch_size: &Histogram) {
    let mut next = rx.blocking_recv();
    while let Some(job) = next.take() {
        let first = match job {
            Job::Alone(work) => {
                // If either switch fails, the work still runs: the store
                // only changes where temporary data is kept.
                let _ = conn.execute_batch(ALONE_TEMP_STORE);
                work(conn);
                let _ = conn.execute_batch(BATCH_TEMP_STORE);
                next = rx.blocking_recv();
                continue;
            }
            Job::Batched(first) => first,
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(Job::Batched(job)) => batch.push(job),
                Ok(alone) => {
                    // After this batch.
                    next = Some(alone);
                    break;
                }
                Err(_) => break,
            }
        }
        batch_size.observe(batch.len() as f64);
        let mut completers = Vec::with_capacity(batch.len());
        let outcome = run_batch(conn, batch, &mut completers).map_err(map_err);
        if let Err(e) = &outcome {
            tracing::warn!(error = %Chain(e), writes = completers.len(), "a group commit failed");
        }
        for complete in completers {
            complete(outcome.as_ref().map(|_| ()).map_err(StoreError::clone));
        }
        if next.is_none() {
            next = rx.blocking_recv();
        }
    }
}

fn run_batch(
    conn: &mut Connection,
    batch: Vec<Batched>,
    completers: &mut Vec<Completer>,
) -> rusqlite::Result<()> {
    if let Err(e) = crate::conn::execute(conn, "BEGIN IMMEDIATE", &[]) {
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
    match crate::conn::execute(conn, "COMMIT", &[]) {
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Batches keep their statement journals in memory (a write of several
    /// statements runs in a savepoint); work run alone keeps SQLite's
    /// default, so a migration's large sort may spill to a file.
    #[tokio::test]
    async fn batches_journal_in_memory_and_work_alone_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.db");
        let writer = Writer::start(&Open {
            path: &path,
            in_memory: false,
            busy_timeout: Duration::from_secs(5),
            enqueue_timeout: Duration::from_secs(5),
            metrics: DatabaseMetrics::default(),
        })
        .unwrap();
        let in_batch = |atomic| {
            writer.write(atomic, |c| {
                Box::pin(async move {
                    let rows = c.query("PRAGMA temp_store", &[]).await?;
                    rows.first()
                        .ok_or_else(|| StoreError::internal("no temp_store"))?
                        .int("temp_store")
                })
            })
        };
        // 2: MEMORY.
        assert_eq!(in_batch(true).await.unwrap(), 2);
        assert_eq!(in_batch(false).await.unwrap(), 2);
        let alone = writer
            .alone(|conn| {
                conn.query_row("PRAGMA temp_store", [], |r| r.get::<_, i64>(0))
                    .map_err(map_err)
            })
            .await
            .unwrap();
        // 0: DEFAULT (a file, as SQLite was built).
        assert_eq!(alone, 0);
        assert_eq!(
            in_batch(true).await.unwrap(),
            2,
            "batches after work alone are back in memory"
        );
    }
}
