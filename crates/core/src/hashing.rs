//! Argon2 runs on two long-lived threads of its own.
//!
//! Each thread keeps Argon2's working memory (19 MiB) for reuse (see
//! `user::argon2_into`), so password hashing holds at most two such blocks
//! for the life of the process. On tokio's blocking pool every new thread
//! allocated a block of its own and glibc kept the freed ones: resident
//! memory went from 12 MB to 71 MB over 72 sequential password grants. The
//! services let two hashes run at once anyway.

use std::panic::AssertUnwindSafe;
use std::sync::{mpsc, Arc, Mutex, OnceLock, PoisonError};

type Job = Box<dyn FnOnce() + Send>;

const THREADS: usize = 2;

fn pool() -> Option<&'static mpsc::Sender<Job>> {
    static POOL: OnceLock<Option<mpsc::Sender<Job>>> = OnceLock::new();
    POOL.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..THREADS {
            let rx = rx.clone();
            let started = std::thread::Builder::new()
                .name(format!("latchkey-argon2-{i}"))
                .spawn(move || loop {
                    let next = rx.lock().unwrap_or_else(PoisonError::into_inner).recv();
                    let Ok(job) = next else { break };
                    // A panicking job must not take the thread with it; its
                    // caller sees its answer channel closed.
                    let _ = std::panic::catch_unwind(AssertUnwindSafe(job));
                });
            if started.is_err() {
                return None;
            }
        }
        Some(tx)
    })
    .as_ref()
}

/// Run `hash` (an Argon2 hash or verification) on the hashing threads.
pub async fn run<T: Send + 'static>(
    hash: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    let (answer, answered) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        let _ = answer.send(hash());
    });
    pool()
        .ok_or_else(|| "cannot start the password hashing threads".to_owned())?
        .send(job)
        .map_err(|_| "the password hashing threads have stopped".to_owned())?;
    answered
        .await
        .map_err(|_| "password hashing failed".to_owned())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    #[tokio::test]
    async fn runs_jobs_on_its_threads_and_survives_a_panicking_one() {
        assert_eq!(super::run(|| 2 + 2).await.unwrap(), 4);
        assert!(super::run(|| -> u8 { panic!("a job panicked on purpose") })
            .await
            .is_err());
        let names: Vec<String> = futures::future::join_all(
            (0..8).map(|_| super::run(|| std::thread::current().name().map(str::to_owned))),
        )
        .await
        .into_iter()
        .map(|r| r.unwrap().unwrap())
        .collect();
        assert!(
            names.iter().all(|n| n.starts_with("latchkey-argon2-")),
            "{names:?}"
        );
    }
}
