//! The capped count of instance applications, remembered between pages.
//!
//! Every offset page carries totals (`X-Total`, capped at `COUNT_CAP` as
//! GitLab does). Triggers keep the count as deltas per block of ids
//! (schema 16 and 17), so summing it is a walk over a few rows, not over
//! the applications; remembering it saves even that on the pages that do
//! not seek to a block (see `list_instance_applications`). The count changes only when an application is created
//! or deleted, and on SQLite every such write goes through this process
//! (`serve` holds the database's lock), so it is kept until the next such
//! write (`invalidate`, called after the write returns), and until the
//! command line, which writes behind the server's back, moves the stored
//! generation of outside changes (`outside_changes`, checked before each
//! use); at most `TTL` in any case. As in the token cache, a count read from a snapshot older than
//! the latest invalidation is never stored (the generation ticket).

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

const TTL: Duration = Duration::from_secs(10);

#[derive(Debug, Default)]
struct State {
    generation: u64,
    value: Option<(i64, Instant)>,
    /// The stored generation of outside changes last seen.
    outside: Option<i64>,
}

#[derive(Debug, Default)]
pub(crate) struct AppCount {
    state: Mutex<State>,
}

impl AppCount {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The remembered count, if fresh.
    pub fn get(&self) -> Option<i64> {
        let state = self.lock();
        let (value, at) = state.value?;
        (at.elapsed() < TTL).then_some(value)
    }

    /// Take before counting.
    pub fn ticket(&self) -> u64 {
        self.lock().generation
    }

    /// Remember `value`, counted after `ticket` was taken.
    pub fn put(&self, ticket: u64, value: i64) {
        let mut state = self.lock();
        if state.generation == ticket {
            state.value = Some((value, Instant::now()));
        }
    }

    /// An application was created or deleted (or may have been).
    pub fn invalidate(&self) {
        forget(&mut self.lock());
    }

    /// The stored generation of outside changes, read before using the
    /// count: a change written by another process (the command line)
    /// forgets it.
    pub fn outside_changes(&self, generation: i64) {
        let mut state = self.lock();
        if state.outside != Some(generation) {
            state.outside = Some(generation);
            forget(&mut state);
        }
    }
}

fn forget(state: &mut State) {
    state.generation = state.generation.wrapping_add(1);
    state.value = None;
}

#[cfg(test)]
mod tests {
    use super::AppCount;

    #[test]
    fn remembered_until_invalidated_and_never_from_a_stale_count() {
        let count = AppCount::default();
        assert_eq!(count.get(), None);
        let t = count.ticket();
        count.put(t, 5);
        assert_eq!(count.get(), Some(5));
        let racing = count.ticket();
        count.invalidate();
        assert_eq!(count.get(), None);
        count.put(racing, 5);
        assert_eq!(count.get(), None, "a count from before the change");
        let t = count.ticket();
        count.put(t, 6);
        assert_eq!(count.get(), Some(6));
    }
}
