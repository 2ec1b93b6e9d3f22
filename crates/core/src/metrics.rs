//! What the services count for `/-/metrics`: sign-ins by outcome, OAuth
//! tokens issued by grant, and the token cache's hits and misses. Counted
//! where the outcome is decided (here, in core), exposed by the server.
//!
//! Counters are shared handles: cloning [`Metrics`] counts into the same
//! series. Each [`crate::Services`] has its own set, so that several servers
//! in one process (the tests) do not count into each other.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

pub use prometheus_client;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GrantLabel {
    grant_type: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

/// How a sign-in ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignInOutcome {
    Success,
    /// Wrong login or password.
    Failure,
    /// Too many failures for the account.
    Locked,
    /// Too many failures from the address.
    Throttled,
    /// The account is blocked or may not sign in.
    Blocked,
}

impl SignInOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
            Self::Locked => "locked",
            Self::Throttled => "throttled",
            Self::Blocked => "blocked",
        }
    }
}

/// An OAuth grant that issues tokens (the label of `tokens issued`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    AuthorizationCode,
    RefreshToken,
    ClientCredentials,
    Password,
    DeviceCode,
}

impl Grant {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AuthorizationCode => "authorization_code",
            Self::RefreshToken => "refresh_token",
            Self::ClientCredentials => "client_credentials",
            Self::Password => "password",
            Self::DeviceCode => "device_code",
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Metrics {
    sign_ins: Family<OutcomeLabel, Counter>,
    tokens_issued: Family<GrantLabel, Counter>,
    token_cache: Family<ResultLabel, Counter>,
}

impl Metrics {
    pub fn sign_in(&self, outcome: SignInOutcome) {
        self.sign_ins
            .get_or_create(&OutcomeLabel {
                outcome: outcome.as_str(),
            })
            .inc();
    }

    pub fn token_issued(&self, grant: Grant) {
        self.tokens_issued
            .get_or_create(&GrantLabel {
                grant_type: grant.as_str(),
            })
            .inc();
    }

    /// A lookup in the token cache (only counted while the cache is on).
    pub fn token_cache(&self, hit: bool) {
        let result = if hit { "hit" } else { "miss" };
        self.token_cache
            .get_or_create(&ResultLabel { result })
            .inc();
    }

    /// Add these series to `registry`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "latchkey_sign_ins",
            "Password sign-ins (web form and the OAuth password grant), by outcome",
            self.sign_ins.clone(),
        );
        registry.register(
            "latchkey_oauth_tokens_issued",
            "OAuth access tokens issued, by grant type",
            self.tokens_issued.clone(),
        );
        registry.register(
            "latchkey_token_cache_lookups",
            "Token lookups answered from the in-process cache (hit) or the database (miss)",
            self.token_cache.clone(),
        );
    }
}

/// Bucket bounds (seconds) for waits and durations: from 0.1 ms to 10 s.
pub const SECONDS_BUCKETS: [f64; 15] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    10.0,
];

/// What a database backend reports: how long units of work wait for a
/// connection (PostgreSQL's pool) or for the writer (SQLite's group
/// commit), how many writes each group commit holds, and its connections.
#[derive(Debug, Clone)]
pub struct DatabaseMetrics {
    /// Seconds from asking to starting: for a pool connection, or for the
    /// SQLite writer to take a write into a batch.
    pub wait: Histogram,
    /// Writes per group commit (SQLite).
    pub batch_size: Histogram,
}

impl Default for DatabaseMetrics {
    fn default() -> Self {
        Self {
            wait: Histogram::new(SECONDS_BUCKETS),
            batch_size: Histogram::new([1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0]),
        }
    }
}

impl DatabaseMetrics {
    /// Add the wait and batch histograms and `pool` (read at each scrape)
    /// to `registry`; `batches`: the backend has group commit.
    pub fn register(&self, registry: &mut Registry, pool: PoolGauge, batches: bool) {
        registry.register(
            "latchkey_database_wait_seconds",
            "Time a unit of work waited for a database connection (PostgreSQL) or for the writer (SQLite writes)",
            self.wait.clone(),
        );
        if batches {
            registry.register(
                "latchkey_database_group_commit_batch_size",
                "Writes committed together in one SQLite transaction (group commit)",
                self.batch_size.clone(),
            );
        }
        registry.register_collector(Box::new(pool));
    }
}

/// A pool's connections at this moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolState {
    pub idle: i64,
    pub in_use: i64,
    pub max: i64,
}

/// `latchkey_database_connections{state}` and `…_max`, read when scraped.
pub struct PoolGauge(Box<dyn Fn() -> PoolState + Send + Sync>);

impl PoolGauge {
    pub fn new(read: impl Fn() -> PoolState + Send + Sync + 'static) -> Self {
        Self(Box::new(read))
    }
}

impl std::fmt::Debug for PoolGauge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PoolGauge")
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: &'static str,
}

impl Collector for PoolGauge {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let now = (self.0)();
        let mut family = encoder.encode_descriptor(
            "latchkey_database_connections",
            "Open database connections, idle or in use (SQLite: read connections)",
            None,
            MetricType::Gauge,
        )?;
        for (state, n) in [("idle", now.idle), ("in_use", now.in_use)] {
            ConstGauge::new(n).encode(family.encode_family(&StateLabel { state })?)?;
        }
        let max = ConstGauge::new(now.max);
        max.encode(encoder.encode_descriptor(
            "latchkey_database_connections_max",
            "Database connections this instance may open (SQLite: read connections kept)",
            None,
            max.metric_type(),
        )?)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn counts_render_with_their_labels() {
        let m = Metrics::default();
        m.sign_in(SignInOutcome::Locked);
        m.sign_in(SignInOutcome::Locked);
        m.token_issued(Grant::DeviceCode);
        m.token_cache(true);
        let mut registry = Registry::default();
        m.register(&mut registry);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(
            text.contains("latchkey_sign_ins_total{outcome=\"locked\"} 2"),
            "{text}"
        );
        assert!(text.contains("latchkey_oauth_tokens_issued_total{grant_type=\"device_code\"} 1"));
        assert!(text.contains("latchkey_token_cache_lookups_total{result=\"hit\"} 1"));
    }

    #[test]
    fn pool_gauges_are_read_when_scraped() {
        let db = DatabaseMetrics::default();
        db.batch_size.observe(3.0);
        let mut registry = Registry::default();
        let pool = PoolGauge::new(|| PoolState {
            idle: 2,
            in_use: 5,
            max: 10,
        });
        db.register(&mut registry, pool, true);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(
            text.contains("latchkey_database_connections{state=\"in_use\"} 5"),
            "{text}"
        );
        assert!(
            text.contains("latchkey_database_connections_max 10"),
            "{text}"
        );
        assert!(
            text.contains("latchkey_database_group_commit_batch_size_count 1"),
            "{text}"
        );
        assert!(
            text.contains("latchkey_database_wait_seconds_bucket{le=\"0.0001\"} 0"),
            "{text}"
        );
    }
}
