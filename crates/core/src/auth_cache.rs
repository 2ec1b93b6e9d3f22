//! A short-lived, in-process cache of what presented tokens authenticate as.
//!
//! Every API request starts by finding its token by digest; without a cache
//! that is a database read per request, which on SQLite costs several thread
//! switches (see `bench/DIAGNOSIS.md`). The cache keeps the rows found (token
//! and owner, keyed by the token's SHA-256 digest, which is what the database
//! stores too) for at most `ttl_ms`.
//!
//! Correctness rests on two rules, both enforced in [`crate::service`]:
//!
//! * every write that can change what a token authenticates as (revoking,
//!   rotating, blocking, editing or deleting users, applications and OAuth
//!   tokens) calls [`AuthCache::invalidate`] once the write has returned, so
//!   this process never answers from a row older than its own last write;
//! * a lookup that raced such a write cannot store its stale row afterwards:
//!   it takes a [`Ticket`] (the generation) before reading the database and
//!   [`AuthCache::put_personal`] / [`AuthCache::put_oauth`] drop the row if the
//!   generation moved meanwhile.
//!
//! A third rule covers writes made by other processes on SQLite (the command
//! line: `latchkey users block`, `tokens revoke`, `apply`): they move a
//! stored generation in the same transaction, and every lookup reads it
//! before looking in the cache ([`AuthCache::outside_changes`]); when it
//! moved, everything is forgotten.
//!
//! On PostgreSQL, where several instances write, the database announces
//! every change that can make an entry wrong (schema 15: triggers notify on
//! tokens, users and applications, whoever writes), and
//! [`crate::Store::outside_changes`] returns the generation of those heard
//! once every change committed before the call has arrived (a barrier on the
//! listening connection), so an instance never answers from an entry older
//! than a change any instance finished; while the announcements cannot be
//! heard it returns an error and nothing is answered from memory.
//!
//! Expiry and revocation flags are checked by the callers on every use, so an
//! entry never outlives its token's expiry.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::metrics::Metrics;
use crate::oauth::OAuthTokenFound;
use crate::token::TokenWithOwner;

/// At most this many tokens are kept per kind; when full, the kind's
/// entries are dropped at once (cheap, bounded, and refilled on demand).
const MAX_ENTRIES: usize = 10_000;

/// The generation a lookup started in.
#[derive(Debug, Clone, Copy)]
pub struct Ticket(u64);

struct Entry<T> {
    value: T,
    stored_at_ms: i64,
}

#[derive(Default)]
struct State {
    generation: u64,
    /// Nothing is remembered or answered before this time (ms): see
    /// [`AuthCache::suspend`].
    suspended_until_ms: i64,
    personal: HashMap<String, Entry<TokenWithOwner>>,
    oauth: HashMap<String, Entry<OAuthTokenFound>>,
    /// The stored generation of outside changes last seen (see
    /// [`AuthCache::outside_changes`]).
    outside: Option<i64>,
}

pub struct AuthCache {
    ttl_ms: i64,
    state: Mutex<State>,
    metrics: Metrics,
}

impl AuthCache {
    /// A cache keeping entries for `ttl_ms`; 0 (or less) turns it off.
    /// Lookups are counted in `metrics` while it is on.
    pub fn new(ttl_ms: i64, metrics: Metrics) -> Self {
        Self {
            ttl_ms,
            state: Mutex::new(State::default()),
            metrics,
        }
    }

    pub fn enabled(&self) -> bool {
        self.ttl_ms > 0
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding the lock; if something ever did, the
        // maps are still consistent (each operation is a single map call).
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Take before reading the database.
    pub fn ticket(&self) -> Ticket {
        Ticket(self.lock().generation)
    }

    /// Forget everything: call after any write that can change what a token
    /// authenticates as.
    pub fn invalidate(&self) {
        if self.enabled() {
            forget(&mut self.lock());
        }
    }

    /// Forget everything and stay off until `until_ms`: for a write that was
    /// abandoned while in flight (its request went away), which the database
    /// may still commit after this; `until_ms` must lie past any time it can.
    pub fn suspend(&self, until_ms: i64) {
        if self.enabled() {
            let mut state = self.lock();
            forget(&mut state);
            state.suspended_until_ms = state.suspended_until_ms.max(until_ms);
        }
    }

    /// The stored generation of outside changes (the command line's
    /// writes, see [`crate::Store::outside_changes`]), read before looking
    /// in the cache: whether it was the one last seen. When it moved,
    /// everything is forgotten (and racing lookups cannot store what they
    /// read).
    pub fn outside_changes(&self, generation: i64) -> bool {
        let mut state = self.lock();
        if state.outside == Some(generation) {
            return true;
        }
        state.outside = Some(generation);
        forget(&mut state);
        false
    }

    pub fn get_personal(&self, digest: &str, now_ms: i64) -> Option<TokenWithOwner> {
        self.get(|s| &s.personal, digest, now_ms)
    }

    pub fn put_personal(&self, ticket: Ticket, digest: &str, value: &TokenWithOwner, now_ms: i64) {
        self.put(|s| &mut s.personal, ticket, digest, value, now_ms);
    }

    pub fn get_oauth(&self, digest: &str, now_ms: i64) -> Option<OAuthTokenFound> {
        self.get(|s| &s.oauth, digest, now_ms)
    }

    pub fn put_oauth(&self, ticket: Ticket, digest: &str, value: &OAuthTokenFound, now_ms: i64) {
        self.put(|s| &mut s.oauth, ticket, digest, value, now_ms);
    }

    /// A fresh entry of the map `kind` picks, unless off or suspended.
    fn get<T: Clone>(
        &self,
        kind: fn(&State) -> &HashMap<String, Entry<T>>,
        digest: &str,
        now_ms: i64,
    ) -> Option<T> {
        if !self.enabled() {
            return None;
        }
        let state = self.lock();
        let found = if now_ms < state.suspended_until_ms {
            None
        } else {
            fresh(kind(&state).get(digest), now_ms, self.ttl_ms)
        };
        drop(state);
        self.metrics.token_cache(found.is_some());
        found
    }

    /// Store into the map `kind` picks, unless off, suspended, or the
    /// generation moved since `ticket`.
    fn put<T: Clone>(
        &self,
        kind: fn(&mut State) -> &mut HashMap<String, Entry<T>>,
        ticket: Ticket,
        digest: &str,
        value: &T,
        now_ms: i64,
    ) {
        if !self.enabled() {
            return;
        }
        let mut state = self.lock();
        if state.generation == ticket.0 && now_ms >= state.suspended_until_ms {
            insert(kind(&mut state), digest, value, now_ms);
        }
    }
}

fn forget(state: &mut State) {
    state.generation = state.generation.wrapping_add(1);
    state.personal.clear();
    state.oauth.clear();
}

fn fresh<T: Clone>(entry: Option<&Entry<T>>, now_ms: i64, ttl_ms: i64) -> Option<T> {
    let entry = entry?;
    // A clock that went backwards also counts as stale.
    let age = now_ms.checked_sub(entry.stored_at_ms)?;
    (0..ttl_ms).contains(&age).then(|| entry.value.clone())
}

fn insert<T: Clone>(map: &mut HashMap<String, Entry<T>>, digest: &str, value: &T, now_ms: i64) {
    if map.len() >= MAX_ENTRIES && !map.contains_key(digest) {
        map.clear();
    }
    map.insert(
        digest.to_owned(),
        Entry {
            value: value.clone(),
            stored_at_ms: now_ms,
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scopes::Scopes;
    use crate::token::PersonalAccessToken;
    use crate::user::{User, UserState};

    fn found(id: i64) -> TokenWithOwner {
        TokenWithOwner {
            token: PersonalAccessToken {
                id,
                user_id: 1,
                name: "t".to_owned(),
                scopes: Scopes::from_stored("api"),
                expires_at: None,
                revoked: false,
                created_at: 0,
                last_used_at: None,
            },
            user: User {
                id: 1,
                username: "root".to_owned(),
                email: "root@example.com".to_owned(),
                name: "Root".to_owned(),
                admin: true,
                state: UserState::Active,
                created_at: 0,
                external: false,
                updated_at: 0,
                profile: Default::default(),
                avatar: None,
            },
        }
    }

    #[test]
    fn hit_within_ttl_miss_after() {
        let cache = AuthCache::new(1_000, Metrics::default());
        let t = cache.ticket();
        cache.put_personal(t, "d", &found(7), 10_000);
        assert_eq!(cache.get_personal("d", 10_999).map(|f| f.token.id), Some(7));
        assert!(cache.get_personal("d", 11_000).is_none());
        assert!(cache.get_personal("d", 9_999).is_none(), "clock went back");
        assert!(cache.get_personal("other", 10_001).is_none());
    }

    #[test]
    fn invalidate_forgets_and_refuses_racing_puts() {
        let cache = AuthCache::new(60_000, Metrics::default());
        let before = cache.ticket();
        cache.put_personal(before, "a", &found(1), 0);
        // A lookup starts, a revocation lands, then the lookup tries to store.
        let racing = cache.ticket();
        cache.invalidate();
        assert!(cache.get_personal("a", 1).is_none());
        cache.put_personal(racing, "b", &found(2), 1);
        assert!(cache.get_personal("b", 2).is_none(), "stale row stored");
        let after = cache.ticket();
        cache.put_personal(after, "b", &found(3), 2);
        assert_eq!(cache.get_personal("b", 3).map(|f| f.token.id), Some(3));
    }

    #[test]
    fn suspended_means_off_until_the_deadline() {
        let cache = AuthCache::new(60_000, Metrics::default());
        let t = cache.ticket();
        cache.put_personal(t, "a", &found(1), 0);
        cache.suspend(1_000);
        assert!(cache.get_personal("a", 10).is_none());
        let t = cache.ticket();
        cache.put_personal(t, "a", &found(1), 10);
        assert!(
            cache.get_personal("a", 999).is_none(),
            "nothing stored while suspended"
        );
        let t = cache.ticket();
        cache.put_personal(t, "a", &found(1), 1_000);
        assert!(cache.get_personal("a", 1_001).is_some());
    }

    #[test]
    fn outside_changes_forget_everything_once() {
        let cache = AuthCache::new(60_000, Metrics::default());
        let t = cache.ticket();
        cache.put_personal(t, "a", &found(1), 0);
        // The first generation seen: whatever was stored before is forgotten.
        assert!(!cache.outside_changes(4));
        assert!(cache.get_personal("a", 1).is_none());
        let t = cache.ticket();
        cache.put_personal(t, "a", &found(1), 1);
        assert!(cache.outside_changes(4), "unchanged generation");
        assert!(cache.get_personal("a", 2).is_some());
        // A lookup in flight while the command line writes cannot store.
        let racing = cache.ticket();
        assert!(!cache.outside_changes(5));
        assert!(cache.get_personal("a", 3).is_none());
        cache.put_personal(racing, "a", &found(1), 3);
        assert!(cache.get_personal("a", 4).is_none(), "stale row stored");
    }

    #[test]
    fn off_when_ttl_is_zero() {
        let cache = AuthCache::new(0, Metrics::default());
        let t = cache.ticket();
        cache.put_personal(t, "a", &found(1), 0);
        assert!(cache.get_personal("a", 0).is_none());
    }

    #[test]
    fn bounded() {
        let cache = AuthCache::new(60_000, Metrics::default());
        let t = cache.ticket();
        for i in 0..(MAX_ENTRIES as i64 + 5) {
            cache.put_personal(t, &format!("d{i}"), &found(i), 0);
        }
        assert!(cache.lock().personal.len() <= MAX_ENTRIES);
        let last = format!("d{}", MAX_ENTRIES + 4);
        assert!(cache.get_personal(&last, 1).is_some());
    }
}
