//! Group commit on PostgreSQL: the writes of one kind waiting at the same
//! moment go in one statement, one transaction. Application creates
//! (`applications.rs`) and OAuth token inserts (`oauth.rs`) use it.
//!
//! Measured on the benchmark's machine (PostgreSQL 15, two cores shared
//! with latchkey and the load): a create is one statement of three inserts
//! (the application, its first secret, its audit event) and a trigger's
//! fourth (the count's delta). PostgreSQL spends its time per statement
//! (executor start-up: every table's and index's relation opened; the
//! trigger; the protocol's round trip), not in the commit: eight creates
//! in one transaction as eight statements ran no faster than eight
//! transactions (6.4k/s either way), where eight creates as one
//! statement of eight rows ran 19-21k/s. latchkey's side of a statement
//! (the pool, the encoding, the round trip) is also paid once per batch.
//!
//! So a create on PostgreSQL is queued; up to [`MAX_RUNNING`] runners each
//! take what is queued (up to [`MAX_BATCH`] creates) and run it as one
//! statement. Alone (a quiet server) a create runs at once, as its own
//! statement, as before; under load the queue fills while the runners
//! are busy and the batches grow with it. A batch commits all its creates
//! or none: when it fails, each of its creates runs again on its own, so
//! that each gets its own answer (a taken client id fails that create
//! only). When the database is unavailable, every create of the batch
//! gets that error at once, without a retry each.
//!
//! A batch locks the rows its writes refer to (owners, applications,
//! secrets) `SKIP LOCKED`: a write whose row another transaction holds (a
//! delete, revoke-all, the flush of secrets' last use) is left out of the
//! batch and runs alone afterwards. A batch never waits for a row while it
//! holds others, so no order of its writes can close a cycle with a
//! writer that takes the same rows in another order (a user's or a
//! group's delete takes several applications, in its own order). The
//! same goes for a write whose row is gone: alone, it gets its own answer.
//! (Only tokens with neither user nor grant are batched: those foreign
//! keys are not locked `SKIP LOCKED`, and would wait.)
//!
//! An OAuth token's insert is one statement on its own (with the check
//! that the client secret it is issued on is live); its commit, not its
//! statement, was what PostgreSQL spent its time on: with
//! `client_credentials` at 16 and 64 connections three or four backends
//! were queued on the WAL's write lock at any moment (`LWLock:WALWrite`,
//! sampled in the benchmark), a flush for every grant or so. Batched, a
//! flush serves a batch.
//!
//! SQLite needs none of this: its writer already commits whatever is
//! queued in one transaction, and its statements cost microseconds.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use latchkey_core::store::StoreError;
use tokio::sync::oneshot;

use crate::conn::{Row, Value};

/// How many batches of one kind run at once, each on its own connection.
/// Two: while one batch is in the database the next one gathers, and a
/// write on a quiet server never waits. Four made smaller batches for
/// the same work: with two instances on one database, 1.8k/s against
/// 2.4-2.6k/s creates at 16 connections and 3.2-3.3k/s against
/// 3.9-4.4k/s at 64; one instance at 64, the same or better with less CPU
/// per create (alternated runs).
pub(crate) const MAX_RUNNING: usize = 2;

/// The most writes in one statement. A create's row is under a kilobyte
/// of JSON, a token's a few hundred bytes; the statement stays short
/// (milliseconds).
pub(crate) const MAX_BATCH: usize = 64;

/// One write waiting for its batch: what to write, and where its answer
/// goes.
pub(crate) struct Job<I, O> {
    pub(crate) input: I,
    pub(crate) reply: oneshot::Sender<Result<O, StoreError>>,
}

/// The queue of one kind of write and how many runners work on it.
pub(crate) struct Batches<I, O> {
    state: Mutex<Queue<I, O>>,
}

struct Queue<I, O> {
    jobs: VecDeque<Job<I, O>>,
    running: usize,
}

impl<I, O> Default for Batches<I, O> {
    fn default() -> Self {
        Self {
            state: Mutex::new(Queue {
                jobs: VecDeque::new(),
                running: 0,
            }),
        }
    }
}

impl<I, O> std::fmt::Debug for Batches<I, O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let q = self.lock();
        f.debug_struct("Batches")
            .field("queued", &q.jobs.len())
            .field("running", &q.running)
            .finish()
    }
}

impl<I, O> Batches<I, O> {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queue<I, O>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<I: Send + 'static, O: Send + 'static> Batches<I, O> {
    /// Queue `job`; true if the caller must start a runner (fewer than
    /// [`MAX_RUNNING`] were running; this one now counts).
    fn push(&self, job: Job<I, O>) -> bool {
        let mut q = self.lock();
        q.jobs.push_back(job);
        if q.running < MAX_RUNNING {
            q.running += 1;
            true
        } else {
            false
        }
    }

    /// The next batch for a runner: the oldest queued jobs, up to
    /// [`MAX_BATCH`]. Empty when nothing is queued: the runner stops, and
    /// no longer counts as running.
    fn take(&self) -> Vec<Job<I, O>> {
        let mut q = self.lock();
        if q.jobs.is_empty() {
            q.running = q.running.saturating_sub(1);
            return Vec::new();
        }
        let n = q.jobs.len().min(MAX_BATCH);
        q.jobs.drain(..n).collect()
    }

    /// Write `input` in a batch with whatever else is queued, and wait
    /// for its answer. If fewer than [`MAX_RUNNING`] runners are at work,
    /// one starts: a task that gives batches to `run`, with a copy of
    /// `store` each (`run` answers every job of its batch), until the
    /// queue is empty.
    pub(crate) async fn submit<S, F, Fut>(
        self: &Arc<Self>,
        input: I,
        what: &'static str,
        store: &S,
        run: F,
    ) -> Result<O, StoreError>
    where
        S: Clone + Send + 'static,
        F: Fn(S, Vec<Job<I, O>>) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send,
    {
        let (reply, answer) = oneshot::channel();
        if self.push(Job { input, reply }) {
            let batches = Arc::clone(self);
            let store = store.clone();
            tokio::spawn(async move {
                loop {
                    let jobs = batches.take();
                    if jobs.is_empty() {
                        break;
                    }
                    // A panic (a bug) would end this runner while it
                    // still counts as running: the jobs of that batch are
                    // answered with an error (their senders dropped), and
                    // the runner goes on with the queue.
                    let batch = std::panic::AssertUnwindSafe(run(store.clone(), jobs));
                    if futures::FutureExt::catch_unwind(batch).await.is_err() {
                        tracing::error!(what, "a batch panicked");
                    }
                }
            });
        }
        answer.await.unwrap_or_else(|_| {
            Err(StoreError::internal(format!(
                "a batch of {what} ended without answering"
            )))
        })
    }
}

/// Every job of a batch gets `e` (the database unavailable, a row that
/// cannot be read), without a retry each.
pub(crate) fn fail_all<I, O>(jobs: Vec<Job<I, O>>, e: &StoreError) {
    for job in jobs {
        let _ = job.reply.send(Err(e.clone()));
    }
}

/// Answer each job whose write a batch's statement stored, from its
/// `rows`: a row per write stored, matched to its job by a unique key
/// (`decode` gives a row's key and what it stored, `key` a job's), and
/// answered by `answer` from the job's input and that. The jobs with no
/// row, to run alone. A row latchkey cannot read fails every job (and
/// none is left to run alone).
pub(crate) fn answer_stored<I, O, R>(
    jobs: Vec<Job<I, O>>,
    rows: Vec<Row>,
    decode: impl Fn(&mut Row) -> Result<(String, R), StoreError>,
    key: impl Fn(&I) -> &str,
    answer: impl Fn(I, R) -> O,
) -> Vec<Job<I, O>> {
    let mut stored = HashMap::with_capacity(rows.len());
    for mut row in rows {
        match decode(&mut row) {
            Ok((k, r)) => {
                stored.insert(k, r);
            }
            Err(e) => {
                fail_all(jobs, &e);
                return Vec::new();
            }
        }
    }
    let mut alone = Vec::new();
    for job in jobs {
        match stored.remove(key(&job.input)) {
            Some(r) => {
                let _ = job.reply.send(Ok(answer(job.input, r)));
            }
            None => alone.push(job),
        }
    }
    alone
}

/// A batch statement's `$1`: a JSON array with an object per job, `n` its
/// place in the batch, then the single statement's parameters in order
/// (`p1` is `$1`), read back with `json_to_recordset`.
pub(crate) fn params_json(jobs: impl Iterator<Item = Vec<Value>>) -> String {
    let rows = jobs
        .enumerate()
        .map(|(n, params)| {
            let mut object = serde_json::Map::new();
            object.insert("n".to_owned(), serde_json::Value::from(n));
            for (i, value) in params.into_iter().enumerate() {
                let value = match value {
                    Value::Int(v) => serde_json::Value::from(v),
                    Value::Text(v) => serde_json::Value::from(v),
                    Value::Bool(v) => serde_json::Value::from(v),
                };
                object.insert(format!("p{}", i + 1), value);
            }
            serde_json::Value::Object(object)
        })
        .collect();
    serde_json::Value::Array(rows).to_string()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    type TestJob = Job<usize, ()>;

    fn job(input: usize) -> (TestJob, oneshot::Receiver<Result<(), StoreError>>) {
        let (reply, rx) = oneshot::channel();
        (Job { input, reply }, rx)
    }

    /// A batch statement's declared columns (`n BIGINT, p1 …`) are the
    /// single statement's parameters' kinds, in order: a drifted list
    /// would fail every batch (and each write would run alone, slower,
    /// without a word).
    pub(crate) fn assert_columns_match(columns: &str, params: &[Value], single: &str) {
        let kinds: Vec<String> = params
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let kind = match v {
                    Value::Int(_) => "BIGINT",
                    Value::Text(_) => "TEXT",
                    Value::Bool(_) => "BOOLEAN",
                };
                format!("p{} {kind}", i + 1)
            })
            .collect();
        let declared: Vec<String> = columns
            .split(',')
            .map(|c| c.split_whitespace().collect::<Vec<_>>().join(" "))
            .skip(1)
            .collect();
        assert_eq!(declared, kinds);
        // The highest parameter of the single statement is the last column.
        assert!(single.contains(&format!("${}", kinds.len())));
        assert!(!single.contains(&format!("${}", kinds.len() + 1)));
    }

    #[test]
    fn runners_start_up_to_the_limit_and_stop_when_the_queue_is_empty() {
        let b = Batches::default();
        let mut receivers = Vec::new();
        let mut started = 0;
        for i in 0..MAX_RUNNING + 3 {
            let (j, rx) = job(i);
            receivers.push(rx);
            started += usize::from(b.push(j));
        }
        assert_eq!(started, MAX_RUNNING, "no more runners than the limit");
        // One runner takes everything queued; the others find nothing and
        // stop; then the first stops too.
        assert_eq!(b.take().len(), MAX_RUNNING + 3);
        for _ in 0..MAX_RUNNING {
            assert!(b.take().is_empty());
        }
        assert_eq!(b.lock().running, 0);
        // With every runner stopped, the next write starts one.
        let (j, _rx) = job(0);
        assert!(b.push(j));
    }

    #[test]
    fn a_batch_holds_at_most_max_batch_jobs_oldest_first() {
        let b = Batches::default();
        for i in 0..MAX_BATCH + 5 {
            let (j, _rx) = job(i);
            b.push(j);
        }
        let first = b.take();
        assert_eq!(first.len(), MAX_BATCH);
        assert_eq!(first[0].input, 0);
        let second = b.take();
        assert_eq!(second.len(), 5);
        assert_eq!(second[0].input, MAX_BATCH);
    }

    #[test]
    fn a_failure_reaches_every_job_of_the_batch() {
        let (a, ra) = job(0);
        let (b, rb) = job(1);
        fail_all(vec![a, b], &StoreError::unavailable("connection refused"));
        for mut rx in [ra, rb] {
            match rx.try_recv() {
                Ok(Err(StoreError::Unavailable(_))) => {}
                other => panic!("expected unavailable, got {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn submitted_jobs_are_answered_by_their_runner() {
        let b: Arc<Batches<usize, usize>> = Arc::default();
        let run = |(), jobs: Vec<Job<usize, usize>>| async move {
            for job in jobs {
                let _ = job.reply.send(Ok(job.input * 2));
            }
        };
        let answers =
            futures::future::join_all((0..100).map(|i| b.submit(i, "doublings", &(), run))).await;
        for (i, answer) in answers.into_iter().enumerate() {
            assert_eq!(answer.expect("answered"), i * 2);
        }
    }

    #[tokio::test]
    async fn a_panicking_batch_answers_with_an_error_and_the_runner_goes_on() {
        let b: Arc<Batches<usize, usize>> = Arc::default();
        let run = |(), jobs: Vec<Job<usize, usize>>| async move {
            assert!(jobs.iter().all(|j| j.input != 7), "a bug");
            for job in jobs {
                let _ = job.reply.send(Ok(job.input));
            }
        };
        assert!(b.submit(7, "tests", &(), run).await.is_err());
        assert_eq!(b.submit(8, "tests", &(), run).await.expect("answered"), 8);
    }
}
