//! Group commit of application creates on PostgreSQL: the creates waiting
//! at the same moment go in one statement, one transaction.
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
//! that each gets its own answer (a taken client id or a deleted owner
//! fails that create only). When the database is unavailable, every
//! create of the batch gets that error at once, without a retry each.
//!
//! SQLite needs none of this: its writer already commits whatever is
//! queued in one transaction, and its statements cost microseconds.

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};

use latchkey_core::application::{Application, NewApplication};
use latchkey_core::audit::{AuditEvent, NewAuditEvent};
use latchkey_core::store::StoreError;
use tokio::sync::oneshot;

/// How many batches of creates run at once, each on its own connection.
/// Two: while one batch is in the database the next one gathers, and a
/// create on a quiet server never waits. Four made smaller batches for
/// the same work: with two instances on one database, 1.8k/s against
/// 2.4-2.6k/s at 16 connections and 3.2-3.3k/s against 3.9-4.4k/s at 64;
/// one instance at 64, the same or better with less CPU per create
/// (alternated runs).
pub(crate) const MAX_RUNNING: usize = 2;

/// The most creates in one statement. A create's row is under a
/// kilobyte of JSON; the statement stays short (milliseconds).
pub(crate) const MAX_BATCH: usize = 64;

/// What a create gives back.
pub(crate) type Created = Result<(Application, AuditEvent), StoreError>;

/// One create waiting for its batch.
pub(crate) struct Job {
    pub(crate) app: NewApplication,
    pub(crate) event: NewAuditEvent,
    pub(crate) reply: oneshot::Sender<Created>,
}

/// The queue of creates and how many runners work on it.
#[derive(Default)]
pub(crate) struct Batches {
    state: Mutex<Queue>,
}

#[derive(Default)]
struct Queue {
    jobs: VecDeque<Job>,
    running: usize,
}

impl std::fmt::Debug for Batches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let q = self.lock();
        f.debug_struct("Batches")
            .field("queued", &q.jobs.len())
            .field("running", &q.running)
            .finish()
    }
}

impl Batches {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        // The queue's state is consistent between statements: a panic
        // elsewhere cannot leave it half-changed.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queue `job`. True when the caller must start a runner: fewer than
    /// [`MAX_RUNNING`] are at work, and this one now counts as running.
    pub(crate) fn push(&self, job: Job) -> bool {
        let mut q = self.lock();
        q.jobs.push_back(job);
        if q.running < MAX_RUNNING {
            q.running += 1;
            true
        } else {
            false
        }
    }

    /// The next batch for a runner: up to [`MAX_BATCH`] creates, oldest
    /// first. Empty when nothing is queued, and then the runner has
    /// stopped (counted out under the same lock as [`Self::push`] counts
    /// runners in, so a create queued meanwhile starts one).
    pub(crate) fn take(&self) -> Vec<Job> {
        let mut q = self.lock();
        if q.jobs.is_empty() {
            q.running = q.running.saturating_sub(1);
            return Vec::new();
        }
        let n = q.jobs.len().min(MAX_BATCH);
        q.jobs.drain(..n).collect()
    }
}

/// The answer for every create of a batch when the database is
/// unavailable: `e`, cause and all, without a retry each.
pub(crate) fn unavailable_for_all(jobs: Vec<Job>, e: &StoreError) {
    for job in jobs {
        let _ = job.reply.send(Err(e.clone()));
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use latchkey_core::audit::Entity;
    use latchkey_core::context::{Context, Via};
    use latchkey_core::scopes::Scopes;

    /// An instance application to create, and its event.
    pub(crate) fn new_create() -> (NewApplication, NewAuditEvent) {
        let app = NewApplication {
            application_id: "uid".to_owned(),
            secret_digest: "d".to_owned(),
            secret_hint: "h".to_owned(),
            name: "n".to_owned(),
            redirect_uri: "https://a.example/cb".to_owned(),
            scopes: Scopes::from_stored("api"),
            confidential: true,
            owner_id: None,
            group_id: None,
            created_at: 0,
            dynamic: false,
            registration_token_digest: None,
            grant_types: None,
        };
        let ctx = Context {
            user_id: None,
            via: Via::Session,
            address: None,
            request_id: None,
        };
        let event = NewAuditEvent::new(&ctx, 0, "e", Entity::instance(), "m");
        (app, event)
    }

    fn job() -> (Job, oneshot::Receiver<Created>) {
        let (reply, rx) = oneshot::channel();
        let (app, event) = new_create();
        (Job { app, event, reply }, rx)
    }

    #[test]
    fn runners_start_up_to_the_limit_and_stop_when_the_queue_is_empty() {
        let b = Batches::default();
        let mut receivers = Vec::new();
        let mut started = 0;
        for _ in 0..MAX_RUNNING + 3 {
            let (j, rx) = job();
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
        // With every runner stopped, the next create starts one.
        let (j, _rx) = job();
        assert!(b.push(j));
    }

    #[test]
    fn a_batch_holds_at_most_max_batch_creates_oldest_first() {
        let b = Batches::default();
        for i in 0..MAX_BATCH + 5 {
            let (mut j, _rx) = job();
            j.app.name = i.to_string();
            b.push(j);
        }
        let first = b.take();
        assert_eq!(first.len(), MAX_BATCH);
        assert_eq!(first[0].app.name, "0");
        let second = b.take();
        assert_eq!(second.len(), 5);
        assert_eq!(second[0].app.name, MAX_BATCH.to_string());
    }

    #[test]
    fn unavailable_reaches_every_create_of_the_batch() {
        let (a, ra) = job();
        let (b, rb) = job();
        unavailable_for_all(vec![a, b], &StoreError::unavailable("connection refused"));
        for mut rx in [ra, rb] {
            match rx.try_recv() {
                Ok(Err(StoreError::Unavailable(_))) => {}
                other => panic!("expected unavailable, got {other:?}"),
            }
        }
    }
}
