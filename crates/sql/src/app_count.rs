//! The count of instance applications, and where each block of ids
//! starts in their order, remembered between pages.
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
//! use); at most `TTL` in any case. A deep page read once also leaves the
//! sums per block (`Blocks`), so the next deep page seeks to its block
//! without summing them again. As in the token cache, a count read from a snapshot older than
//! the latest invalidation is never stored (the generation ticket).
//!
//! On PostgreSQL, where other instances write unheard, [`FoldedCount`]
//! remembers only the folded sums and checks them against every page's
//! snapshot instead (schema 20).

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

const TTL: Duration = Duration::from_secs(10);

/// How many instance applications there are, and, once a deep page has
/// read them, the sums per block of ids.
#[derive(Debug, Clone)]
pub(crate) struct Counted {
    pub total: i64,
    pub blocks: Option<Arc<Blocks>>,
}

/// The blocks of ids that hold instance applications, in order: the
/// block's first id and how many instance applications come before it.
#[derive(Debug, Default)]
pub(crate) struct Blocks {
    starts: Vec<(i64, i64)>,
    total: i64,
}

impl Blocks {
    /// From the sums per block, in the order of their first ids (blocks
    /// that sum to nothing left out).
    pub fn from_sums(sums: impl IntoIterator<Item = (i64, i64)>) -> Self {
        let mut total = 0i64;
        let starts = sums
            .into_iter()
            .map(|(start, n)| {
                let before = total;
                total = total.saturating_add(n);
                (start, before)
            })
            .collect();
        Self { starts, total }
    }

    pub fn total(&self) -> i64 {
        self.total
    }

    /// The block that holds the entry at `offset` in the order of ids:
    /// its first id and how many of its entries come before that one.
    /// `None` past the end.
    pub fn locate(&self, offset: i64) -> Option<(i64, i64)> {
        if offset < 0 || offset >= self.total {
            return None;
        }
        // The last block that starts at or before the offset.
        let after = self.starts.partition_point(|&(_, before)| before <= offset);
        let (start, before) = *self.starts.get(after.checked_sub(1)?)?;
        Some((start, offset - before))
    }
}

/// PostgreSQL's remembered count (schema 20): the sums per block of the
/// folded rows, and the generation of the folds they were read at (a
/// random number each fold sets, so a rewound database cannot repeat one
/// with other rows). The
/// folded rows change only with the generation, so a page whose own
/// statement reads the same generation and no unfolded delta may take
/// its total, and the block it starts in, from here: no other instance
/// need tell this one of its writes. Whether the last page seen had
/// unfolded deltas is kept too: while they are there (a burst of writes,
/// folded within a second), pages read the count themselves, in the
/// statement that reads them, and say when the deltas are gone.
#[derive(Debug, Default)]
pub(crate) struct FoldedCount {
    state: Mutex<FoldedState>,
}

#[derive(Debug, Default)]
struct FoldedState {
    folded: Option<Arc<Folded>>,
    unfolded_seen: bool,
}

/// The folded sums of one generation.
#[derive(Debug)]
pub(crate) struct Folded {
    pub generation: i64,
    pub blocks: Blocks,
}

/// What a page's statement said of the count (`fold_generation`,
/// `unfolded`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp {
    pub generation: i64,
    pub unfolded: bool,
}

impl FoldedCount {
    fn lock(&self) -> MutexGuard<'_, FoldedState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The remembered sums, unless the last page seen had unfolded deltas.
    pub fn usable(&self) -> Option<Arc<Folded>> {
        let state = self.lock();
        if state.unfolded_seen {
            return None;
        }
        state.folded.clone()
    }

    /// A page's statement said `stamp`: should the sums be read again
    /// (nothing unfolded, and a generation they are not of)?
    pub fn saw(&self, stamp: Stamp) -> bool {
        let mut state = self.lock();
        state.unfolded_seen = stamp.unfolded;
        !stamp.unfolded
            && state
                .folded
                .as_ref()
                .is_none_or(|f| f.generation != stamp.generation)
    }

    pub fn put(&self, folded: Folded) {
        self.lock().folded = Some(Arc::new(folded));
    }
}

/// The remembered sums are this snapshot's count when its statement says
/// so (`stamp`).
pub(crate) fn current(folded: &Folded, stamp: Stamp) -> bool {
    !stamp.unfolded && stamp.generation == folded.generation
}

#[derive(Debug, Default)]
struct State {
    generation: u64,
    value: Option<(Counted, Instant)>,
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
    pub fn get(&self) -> Option<Counted> {
        let state = self.lock();
        let (value, at) = state.value.as_ref()?;
        (at.elapsed() < TTL).then(|| value.clone())
    }

    /// Take before counting.
    pub fn ticket(&self) -> u64 {
        self.lock().generation
    }

    /// Remember `value`, counted after `ticket` was taken.
    pub fn put(&self, ticket: u64, value: Counted) {
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
    use super::{AppCount, Blocks, Counted};

    fn counted(total: i64) -> Counted {
        Counted {
            total,
            blocks: None,
        }
    }

    fn total(count: &AppCount) -> Option<i64> {
        count.get().map(|c| c.total)
    }

    #[test]
    fn remembered_until_invalidated_and_never_from_a_stale_count() {
        let count = AppCount::default();
        assert_eq!(total(&count), None);
        let t = count.ticket();
        count.put(t, counted(5));
        assert_eq!(total(&count), Some(5));
        let racing = count.ticket();
        count.invalidate();
        assert_eq!(total(&count), None);
        count.put(racing, counted(5));
        assert_eq!(total(&count), None, "a count from before the change");
        let t = count.ticket();
        count.put(t, counted(6));
        assert_eq!(total(&count), Some(6));
        count.outside_changes(1);
        assert_eq!(total(&count), None, "a change from another process");
    }

    #[test]
    fn an_offset_is_located_in_its_block() {
        // Blocks starting at ids 0, 1024 and 4096 with 3, 1,024 and 2
        // instance applications.
        let blocks = Blocks::from_sums([(0, 3), (1024, 1024), (4096, 2)]);
        assert_eq!(blocks.total(), 1029);
        assert_eq!(blocks.locate(0), Some((0, 0)));
        assert_eq!(blocks.locate(2), Some((0, 2)));
        assert_eq!(blocks.locate(3), Some((1024, 0)));
        assert_eq!(blocks.locate(1026), Some((1024, 1023)));
        assert_eq!(blocks.locate(1027), Some((4096, 0)));
        assert_eq!(blocks.locate(1028), Some((4096, 1)));
        assert_eq!(blocks.locate(1029), None, "past the end");
        assert_eq!(blocks.locate(-1), None);
        assert_eq!(Blocks::from_sums([]).locate(0), None);
    }
}
