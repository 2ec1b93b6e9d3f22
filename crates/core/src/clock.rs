//! Time is passed in, so that expiry rules can be tested without sleeping.

use std::sync::atomic::{AtomicI64, Ordering};

use time::OffsetDateTime;

/// A source of the current time.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> OffsetDateTime;
}

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    // The one wall-clock read (clippy.toml disallows the others).
    #[allow(clippy::disallowed_methods)]
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// A clock that tests move by hand.
#[derive(Debug)]
pub struct FixedClock(AtomicI64);

impl FixedClock {
    pub fn new(at: OffsetDateTime) -> Self {
        Self(AtomicI64::new(unix_millis(at)))
    }

    pub fn advance(&self, by: time::Duration) {
        self.0
            .fetch_add(by.whole_milliseconds() as i64, Ordering::SeqCst);
    }
}

impl Clock for FixedClock {
    fn now(&self) -> OffsetDateTime {
        from_unix_millis(self.0.load(Ordering::SeqCst))
    }
}

/// Milliseconds since the Unix epoch: how instants are stored.
pub fn unix_millis(at: OffsetDateTime) -> i64 {
    (at.unix_timestamp_nanos() / 1_000_000) as i64
}

/// The inverse of [`unix_millis`]; out-of-range values clamp to the epoch.
pub fn from_unix_millis(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// GitLab's timestamp format: `2012-05-23T08:00:58.000Z`.
pub fn gitlab_timestamp(ms: i64) -> String {
    let t = from_unix_millis(ms);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_gitlab() {
        assert_eq!(
            gitlab_timestamp(1_337_760_058_000),
            "2012-05-23T08:00:58.000Z"
        );
        assert_eq!(
            gitlab_timestamp(1_337_760_058_123),
            "2012-05-23T08:00:58.123Z"
        );
    }

    #[test]
    fn fixed_clock_advances() {
        let c = FixedClock::new(from_unix_millis(1_000));
        c.advance(time::Duration::seconds(2));
        assert_eq!(unix_millis(c.now()), 3_000);
    }
}
