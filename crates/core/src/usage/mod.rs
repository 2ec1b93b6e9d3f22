//! When credentials were last used. A use is noted in memory as it happens
//! (no write on the request path), and the notes are written in batches by
//! a background flush, at most once a minute per credential; the server
//! flushes once more when it shuts down. Personal access tokens use it
//! today; other credentials (application secrets) can join with a kind of
//! their own.

use std::collections::HashMap;
use std::sync::Mutex;

mod service;

/// A credential is written at most this often (ms).
pub const MIN_INTERVAL_MS: i64 = 60_000;

/// What kind of credential a use is of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Credential {
    PersonalAccessToken,
    ApplicationSecret,
}

pub(crate) type Key = (Credential, i64);

#[derive(Debug, Default)]
struct Notes {
    /// Uses not written yet: the latest time of each.
    pending: HashMap<Key, i64>,
    /// When each credential was last handed to a write (recent ones only).
    written: HashMap<Key, i64>,
}

/// Uses noted since the last flush.
#[derive(Debug, Default)]
pub struct UsageRecorder {
    notes: Mutex<Notes>,
}

impl UsageRecorder {
    /// Note that `id` was used at `now` (ms). Cheap: one short lock, and
    /// nothing at all within a minute of the last write of this credential.
    pub fn note(&self, kind: Credential, id: i64, now: i64) {
        let Ok(mut notes) = self.notes.lock() else {
            return;
        };
        let key = (kind, id);
        if notes
            .written
            .get(&key)
            .is_some_and(|at| now - at < MIN_INTERVAL_MS)
        {
            return;
        }
        let at = notes.pending.entry(key).or_insert(now);
        *at = (*at).max(now);
    }

    /// Take the uses to write now, and forget writes older than a minute.
    pub(crate) fn take(&self, now: i64) -> Vec<(Key, i64)> {
        let Ok(mut notes) = self.notes.lock() else {
            return Vec::new();
        };
        let taken: Vec<(Key, i64)> = notes.pending.drain().collect();
        notes.written.retain(|_, at| now - *at < MIN_INTERVAL_MS);
        for (key, at) in &taken {
            notes.written.insert(*key, *at);
        }
        taken
    }

    /// A batch whose write failed: noted again (keeping the later time of
    /// each), and no longer counted as written.
    pub(crate) fn restore(&self, batch: Vec<(Key, i64)>) {
        let Ok(mut notes) = self.notes.lock() else {
            return;
        };
        for (key, at) in batch {
            notes.written.remove(&key);
            let pending = notes.pending.entry(key).or_insert(at);
            *pending = (*pending).max(at);
        }
    }

    /// Uses waiting to be written.
    pub fn pending(&self) -> usize {
        self.notes.lock().map_or(0, |n| n.pending.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_credential_is_written_at_most_once_a_minute() {
        let r = UsageRecorder::default();
        let pat = Credential::PersonalAccessToken;
        r.note(pat, 1, 1_000);
        r.note(pat, 1, 2_000);
        r.note(pat, 2, 1_500);
        let mut first = r.take(2_000);
        first.sort();
        assert_eq!(first, [((pat, 1), 2_000), ((pat, 2), 1_500)]);
        // Within the minute: nothing more to write for 1.
        r.note(pat, 1, 30_000);
        assert_eq!(r.pending(), 0);
        assert!(r.take(30_000).is_empty());
        // A minute after its write, it is noted again.
        r.note(pat, 1, 62_000);
        let batch = r.take(62_000);
        assert_eq!(batch, [((pat, 1), 62_000)]);
        // A write that failed: noted again, and written by the next flush.
        r.restore(batch);
        r.note(pat, 1, 63_000);
        assert_eq!(r.take(64_000), [((pat, 1), 63_000)]);
    }
}
