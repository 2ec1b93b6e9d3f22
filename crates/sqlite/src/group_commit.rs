//! Group commit: concurrent writes share one transaction, and so one
//! fsync. One task drains a queue of pending writes into a transaction,
//! commits, and only then answers each writer. Every write is a single
//! statement, and SQLite undoes a failing statement on its own without
//! touching the rest of the transaction, so one failing write (a unique
//! conflict, say) fails only its writer. Nothing is
//! acknowledged before it is durable; under light load a batch is one
//! write and this costs what a plain transaction does.

use futures::future::BoxFuture;
use latchkey_core::store::StoreError;
use sqlx::{Connection, SqliteConnection, SqlitePool};
use tokio::sync::{mpsc, oneshot};

/// Writes in one transaction at most.
const MAX_BATCH: usize = 256;
/// Writes waiting for the writer at most (then writers wait to enqueue).
const QUEUE: usize = 4096;

/// Tells a writer how its write ended, once the batch's commit is known.
type Completer = Box<dyn FnOnce(Result<(), StoreError>) + Send>;
/// One write: runs its statement and hands back what answers the writer
/// after the commit.
type Job = Box<dyn for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Completer> + Send>;

#[derive(Debug, Clone)]
pub struct GroupCommit {
    jobs: mpsc::Sender<Job>,
}

fn closed() -> StoreError {
    StoreError::Unavailable("the database writer has stopped".to_owned())
}

impl GroupCommit {
    /// Start the writer task on `pool` (the single writer connection).
    pub fn start(pool: SqlitePool, map_err: fn(sqlx::Error) -> StoreError) -> Self {
        let (tx, rx) = mpsc::channel::<Job>(QUEUE);
        tokio::spawn(run(pool, rx, map_err));
        Self { jobs: tx }
    }

    /// Run `write`, one statement, in the next batch; its result is returned
    /// once the batch is committed (or the commit's error if it is not).
    pub async fn write<T, F>(
        &self,
        map_err: fn(sqlx::Error) -> StoreError,
        write: F,
    ) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<T, sqlx::Error>>
            + Send
            + 'static,
    {
        let (answer, answered) = oneshot::channel::<Result<T, StoreError>>();
        let job: Job = Box::new(move |conn| {
            Box::pin(async move {
                let result = write(conn).await;
                let complete: Completer = Box::new(move |commit| {
                    let outcome = match (result, commit) {
                        (Err(e), _) => Err(map_err(e)),
                        (Ok(_), Err(e)) => Err(e),
                        (Ok(v), Ok(())) => Ok(v),
                    };
                    let _ = answer.send(outcome);
                });
                complete
            })
        });
        self.jobs.send(job).await.map_err(|_| closed())?;
        answered.await.map_err(|_| closed())?
    }
}

async fn run(
    pool: SqlitePool,
    mut rx: mpsc::Receiver<Job>,
    map_err: fn(sqlx::Error) -> StoreError,
) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let mut completers = Vec::with_capacity(batch.len());
        let outcome = run_batch(&pool, batch, &mut completers)
            .await
            .map_err(map_err);
        if let Err(e) = &outcome {
            tracing::warn!(error = %e, writes = completers.len(), "a group commit failed");
        }
        for complete in completers {
            complete(outcome.as_ref().map(|_| ()).map_err(|e| match e {
                StoreError::Conflict(c) => StoreError::Conflict(c.clone()),
                StoreError::Unavailable(c) => StoreError::Unavailable(c.clone()),
                StoreError::Other(c) => StoreError::Other(c.clone()),
            }));
        }
    }
}

async fn run_batch(
    pool: &SqlitePool,
    batch: Vec<Job>,
    completers: &mut Vec<Completer>,
) -> Result<(), sqlx::Error> {
    let mut conn = match pool.acquire().await {
        Ok(c) => c,
        Err(e) => {
            // Nothing ran: every writer gets the error.
            for job in batch {
                completers.push(Box::new(move |_| drop(job)));
            }
            return Err(e);
        }
    };
    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
    for job in batch {
        let complete = job(&mut tx).await;
        completers.push(complete);
    }
    tx.commit().await
}
