//! Argon2 runs on two long-lived threads of its own.
//!
//! Each thread keeps Argon2's working memory (7 MiB) for reuse while it is
//! busy (see `user::argon2_into`), and gives it back to the operating system
//! once no hash has come for [`IDLE_RELEASE`]: a server that is not signing
//! anyone in holds none of it. On tokio's blocking pool every new thread
//! allocated a block of its own and glibc kept the freed ones: resident
//! memory went from 12 MB to 71 MB over 72 sequential password grants. The
//! services let two hashes run at once anyway.

use std::panic::AssertUnwindSafe;
use std::sync::OnceLock;
use std::time::Duration;

use crossbeam_channel::RecvTimeoutError;

type Job = Box<dyn FnOnce() + Send>;

const THREADS: usize = 2;

/// How long a hashing thread keeps its working memory without work: hashes
/// that come closer together than this (a burst of sign-ins) reuse it.
pub const IDLE_RELEASE: Duration = Duration::from_millis(200);

fn pool() -> Option<&'static crossbeam_channel::Sender<Job>> {
    static POOL: OnceLock<Option<crossbeam_channel::Sender<Job>>> = OnceLock::new();
    POOL.get_or_init(|| {
        let (tx, rx) = crossbeam_channel::unbounded::<Job>();
        for i in 0..THREADS {
            let rx = rx.clone();
            let started = std::thread::Builder::new()
                .name(format!("latchkey-argon2-{i}"))
                .spawn(move || work(&rx));
            if started.is_err() {
                return None;
            }
        }
        Some(tx)
    })
    .as_ref()
}

/// A hashing thread's loop: jobs until the pool's sender is gone.
fn work(rx: &crossbeam_channel::Receiver<Job>) {
    let mut holding_memory = false;
    loop {
        let next = if holding_memory {
            match rx.recv_timeout(IDLE_RELEASE) {
                Ok(job) => job,
                Err(RecvTimeoutError::Timeout) => {
                    crate::user::release_hashing_memory();
                    holding_memory = false;
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => break,
            }
        } else {
            match rx.recv() {
                Ok(job) => job,
                Err(_) => break,
            }
        };
        // A panicking job must not take the thread with it; its caller sees
        // its answer channel closed.
        let _ = std::panic::catch_unwind(AssertUnwindSafe(next));
        holding_memory = crate::user::holds_hashing_memory();
    }
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

    #[tokio::test]
    async fn working_memory_is_kept_while_busy_and_given_back_when_idle() {
        let held = super::run(|| {
            crate::user::hash_password("correct horse").unwrap();
            crate::user::holds_hashing_memory()
        })
        .await
        .unwrap();
        assert!(held, "kept for the next hash");
        // Neither thread holds any once both have been idle a while.
        let mut released = false;
        for _ in 0..50 {
            tokio::time::sleep(super::IDLE_RELEASE).await;
            // One job on each thread: each waits for the other.
            let both = std::sync::Arc::new(std::sync::Barrier::new(super::THREADS));
            let holding = futures::future::join_all((0..super::THREADS).map(|_| {
                let both = both.clone();
                super::run(move || {
                    both.wait();
                    crate::user::holds_hashing_memory()
                })
            }))
            .await;
            if holding.into_iter().all(|h| !h.unwrap()) {
                released = true;
                break;
            }
        }
        assert!(released, "still held after {:?}", super::IDLE_RELEASE * 50);
    }
}
