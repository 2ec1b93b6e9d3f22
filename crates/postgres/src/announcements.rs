//! The changes the database announces (schema 15), and the barrier that
//! makes answering from memory safe on a database several instances share.
//!
//! Triggers `NOTIFY latchkey_changes` when a token, its user or its
//! application changes or goes. One connection per instance listens.
//! Before an answer from memory (a cached token lookup),
//! [`Announcements::barrier`] runs `SELECT 1` on that
//! connection: PostgreSQL sends a listening session the notifications of
//! every transaction that committed before, ahead of the query's
//! `ReadyForQuery`, so once the round trip returns, every change committed
//! before the barrier began has been counted. A client that saw a
//! revocation succeed on one instance is therefore refused by every other
//! instance on its next request, not "soon".
//!
//! Requests that arrive while a barrier is in flight share the next one:
//! the cost is one trivial round trip per batch, not a lookup per request.
//! While the listening connection cannot be had (the database is down, the
//! connection was lost, a barrier timed out) the barrier fails and callers
//! do not answer from memory; when it comes back, the generation moves,
//! since anything may have happened unheard.

use std::sync::OnceLock;
use std::time::Duration;

use latchkey_core::store::StoreError;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use tokio::sync::{mpsc, oneshot};

/// The channel the triggers notify.
pub const CHANNEL: &str = "latchkey_changes";

/// How long a barrier (connecting included) may take before callers give
/// up on memory for this request.
const TIMEOUT: Duration = Duration::from_secs(2);

type Reply = oneshot::Sender<Result<i64, String>>;

/// The listening side of one instance; the listener is started by the
/// first barrier, on the runtime that asks for it.
pub(crate) struct Announcements {
    connect: PgConnectOptions,
    queue: OnceLock<mpsc::UnboundedSender<Reply>>,
}

impl std::fmt::Debug for Announcements {
    // Never the connect options: they hold the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Announcements")
            .field("started", &self.queue.get().is_some())
            .finish()
    }
}

impl Announcements {
    pub(crate) fn new(connect: PgConnectOptions) -> Self {
        Self {
            connect,
            queue: OnceLock::new(),
        }
    }

    /// The generation once every change committed before this call has
    /// been heard; an error while that cannot be known.
    pub(crate) async fn barrier(&self) -> Result<i64, StoreError> {
        let queue = self.queue.get_or_init(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(serve(self.connect.clone(), rx));
            tx
        });
        let (tx, rx) = oneshot::channel();
        queue
            .send(tx)
            .map_err(|_| unavailable("the change listener stopped".to_owned()))?;
        match rx.await {
            Ok(Ok(seen)) => Ok(seen),
            Ok(Err(why)) => Err(unavailable(why)),
            Err(_) => Err(unavailable("the change listener stopped".to_owned())),
        }
    }
}

fn unavailable(why: String) -> StoreError {
    StoreError::unavailable(format!(
        "cannot hear the database's announced changes: {why}"
    ))
}

/// Answer barriers in batches: all the requests waiting when one starts
/// share it.
async fn serve(connect: PgConnectOptions, mut queue: mpsc::UnboundedReceiver<Reply>) {
    let mut listening = Listening {
        connect,
        listener: None,
        seen: 0,
    };
    while let Some(first) = queue.recv().await {
        let mut waiting = vec![first];
        while let Ok(more) = queue.try_recv() {
            waiting.push(more);
        }
        let outcome = listening.barrier().await;
        for reply in waiting {
            // A caller that went away no longer needs the answer.
            let _ = reply.send(outcome.clone());
        }
    }
}

struct Listening {
    connect: PgConnectOptions,
    listener: Option<PgListener>,
    /// Notifications heard, and connections made (each may have missed
    /// some).
    seen: i64,
}

impl Listening {
    async fn barrier(&mut self) -> Result<i64, String> {
        match tokio::time::timeout(TIMEOUT, self.sync()).await {
            Ok(Ok(())) => Ok(self.seen),
            Ok(Err(e)) => {
                self.lost();
                Err(e.to_string())
            }
            Err(_) => {
                self.lost();
                Err(format!("no answer within {TIMEOUT:?}"))
            }
        }
    }

    async fn sync(&mut self) -> Result<(), sqlx::Error> {
        if self.listener.is_none() {
            // A pool of its own, of one connection, so that listening never
            // takes one from the requests' pool.
            let pool = PgPoolOptions::new()
                .max_connections(1)
                .acquire_timeout(TIMEOUT)
                .connect_lazy_with(self.connect.clone());
            let mut listener = PgListener::connect_with(&pool).await?;
            listener.listen(CHANNEL).await?;
            // Nobody listened until now: whatever was remembered may be out
            // of date.
            self.moved();
            self.listener = Some(listener);
        }
        let Some(listener) = self.listener.as_mut() else {
            return Ok(());
        };
        sqlx::query("SELECT 1").execute(&mut *listener).await?;
        let mut heard = 0i64;
        while listener.next_buffered().is_some() {
            heard = heard.wrapping_add(1);
        }
        self.seen = self.seen.wrapping_add(heard);
        Ok(())
    }

    /// The connection is gone or stuck: drop it (the next barrier makes a
    /// new one) and forget what was heard.
    fn lost(&mut self) {
        self.listener = None;
        self.moved();
    }

    fn moved(&mut self) {
        self.seen = self.seen.wrapping_add(1);
    }
}
