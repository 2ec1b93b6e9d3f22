//! Knowing when the PostgreSQL server refuses connections.
//!
//! sqlx retries a refused connection until the pool's acquire timeout, so
//! while the server is down every request waited the full
//! `LATCHKEY_DATABASE_TIMEOUT` before its 503. A watcher pings through the
//! pool every [`INTERVAL`]; when a ping fails and the pool is not simply
//! busy, it opens one connection of its own: if that is refused (a network
//! or TLS error, or no answer in time), the database is down until a
//! later check connects again. Requests ask [`Outage::is_down`] and answer
//! 503 at once; a busy pool is never taken for an outage, so those requests
//! keep waiting for a connection as before.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool};
use sqlx::{ConnectOptions, Connection};

/// How often the watcher checks.
pub const INTERVAL: Duration = Duration::from_millis(250);
/// How long one check may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(1);

#[derive(Debug)]
pub struct Outage {
    down: Arc<AtomicBool>,
    task: tokio::task::AbortHandle,
}

impl Drop for Outage {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Outage {
    /// Start watching; the watcher stops when the `Outage` is dropped.
    pub fn watch(pool: PgPool, connect: PgConnectOptions, max_connections: u32) -> Arc<Self> {
        let down = Arc::new(AtomicBool::new(false));
        let flag = down.clone();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(INTERVAL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let now_down = check(&pool, &connect, max_connections).await;
                if flag.swap(now_down, Ordering::Relaxed) != now_down {
                    if now_down {
                        tracing::warn!(
                            "the database refuses connections: requests fail at once until it is back"
                        );
                    } else {
                        tracing::info!("the database accepts connections again");
                    }
                }
            }
        })
        .abort_handle();
        Arc::new(Self { down, task })
    }

    pub fn is_down(&self) -> bool {
        self.down.load(Ordering::Relaxed)
    }
}

/// One check: `true` when the server refuses connections.
async fn check(pool: &PgPool, connect: &PgConnectOptions, max_connections: u32) -> bool {
    let ping = tokio::time::timeout(CHECK_TIMEOUT, async {
        let mut conn = pool.acquire().await?;
        conn.ping().await
    })
    .await;
    if matches!(ping, Ok(Ok(()))) {
        return false;
    }
    // Every connection busy: a busy pool, not an outage.
    if pool.size() >= max_connections && pool.num_idle() == 0 {
        return false;
    }
    match tokio::time::timeout(CHECK_TIMEOUT, connect.connect()).await {
        Ok(Ok(conn)) => {
            let _ = conn.close().await;
            false
        }
        Ok(Err(sqlx::Error::Io(_) | sqlx::Error::Tls(_))) | Err(_) => true,
        // The server answered, but will not let us in: shutting down or
        // starting up (57P0x), the database closed to connections (55000)
        // or gone (3D000), our credentials refused (28xxx), a connection
        // failure (08xxx). "Too many clients" (53300) is a busy server:
        // requests keep waiting for it.
        Ok(Err(sqlx::Error::Database(db))) => db.code().is_some_and(|c| {
            c.starts_with("08")
                || c.starts_with("57P0")
                || c.starts_with("28")
                || c == "55000"
                || c == "3D000"
        }),
        Ok(Err(_)) => false,
    }
}
