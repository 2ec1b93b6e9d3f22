//! Rate limits: floods stopped in this process, before they reach the
//! database. Token buckets (GCRA, `governor`): a limit of N per second
//! lets N requests through at once and N per second after that.
//!
//! - **Unauthenticated requests, per client address** (on by default):
//!   requests that present no credential at all (no `Authorization`,
//!   `PRIVATE-TOKEN`, session cookie, `private_token` or `access_token`
//!   parameter). IPv6 clients are counted per /64, which one subscriber
//!   usually has whole. `/-/` (probes, metrics) and `/oauth/token`
//!   (limited per client) are not counted.
//! - **`/oauth/token`, per client** (on by default): counted once the
//!   client is known, before any token is made.
//! - **Authenticated API requests, per token** (off by default): counted
//!   once the token is known, before the route's work.
//!
//! Counters live in process: with several instances on PostgreSQL the
//! effective limit is the configured one per instance. The sign-in and
//! registration throttles, which must hold across instances, stay in the
//! database. The defaults stop floods, not customers: one client may ask
//! for 10,000 tokens a second and one token make 50,000 API requests a
//! second without meeting them.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use axum::http::{header, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde_json::json;

use super::errors::{ApiError, RateLimited};
use super::params::Dialect;

/// The default for unauthenticated requests per address and second.
pub const DEFAULT_UNAUTHENTICATED_PER_SECOND: u32 = 1_000;
/// The default for `/oauth/token` per client and second.
pub const DEFAULT_TOKEN_PER_SECOND: u32 = 20_000;

/// Which limit a request met.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Limit {
    Unauthenticated,
    TokenEndpoint,
    AuthenticatedApi,
}

impl Limit {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unauthenticated => "unauthenticated",
            Self::TokenEndpoint => "oauth_token",
            Self::AuthenticatedApi => "authenticated_api",
        }
    }
}

/// A request refused by a limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    pub limit: Limit,
    pub per_second: u32,
    /// Whole seconds until a request would pass (at least 1).
    pub retry_after: u64,
}

/// The limits, per second; 0 turns one off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitSettings {
    pub unauthenticated: u32,
    pub token: u32,
    pub api: u32,
}

impl Default for LimitSettings {
    fn default() -> Self {
        Self {
            unauthenticated: DEFAULT_UNAUTHENTICATED_PER_SECOND,
            token: DEFAULT_TOKEN_PER_SECOND,
            api: 0,
        }
    }
}

/// A token the API limit counts by (personal and OAuth tokens have ids
/// of their own).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenKey {
    Personal(i64),
    OAuth(i64),
}

struct Bucket<K: std::hash::Hash + Eq + Clone> {
    per_second: u32,
    limiter: DefaultKeyedRateLimiter<K>,
}

impl<K: std::hash::Hash + Eq + Clone> Bucket<K> {
    fn new(per_second: u32) -> Option<Self> {
        let n = NonZeroU32::new(per_second)?;
        Some(Self {
            per_second,
            limiter: RateLimiter::dashmap(Quota::per_second(n)),
        })
    }

    fn check(&self, limit: Limit, key: &K) -> Result<(), Limited> {
        self.limiter.check_key(key).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.limiter.clock().now());
            Limited {
                limit,
                per_second: self.per_second,
                retry_after: whole_seconds(wait),
            }
        })
    }

    fn forget_idle(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }
}

fn whole_seconds(d: Duration) -> u64 {
    let s = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    s.max(1)
}

/// Every limit of this process.
#[derive(Default)]
pub struct RateLimits {
    unauthenticated: Option<Bucket<IpAddr>>,
    token: Option<Bucket<i64>>,
    api: Option<Bucket<TokenKey>>,
}

impl std::fmt::Debug for RateLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimits")
            .field(
                "unauthenticated",
                &self.unauthenticated.as_ref().map(|b| b.per_second),
            )
            .field("token", &self.token.as_ref().map(|b| b.per_second))
            .field("api", &self.api.as_ref().map(|b| b.per_second))
            .finish()
    }
}

impl RateLimits {
    pub fn new(settings: LimitSettings) -> Self {
        Self {
            unauthenticated: Bucket::new(settings.unauthenticated),
            token: Bucket::new(settings.token),
            api: Bucket::new(settings.api),
        }
    }

    /// A request without credentials from `client`.
    pub fn check_unauthenticated(&self, client: Option<IpAddr>) -> Result<(), Limited> {
        match (&self.unauthenticated, client) {
            (Some(bucket), Some(ip)) => bucket.check(Limit::Unauthenticated, &address_key(ip)),
            _ => Ok(()),
        }
    }

    /// A token request of the application `application_id`.
    pub fn check_token(&self, application_id: i64) -> Result<(), Limited> {
        match &self.token {
            Some(bucket) => bucket.check(Limit::TokenEndpoint, &application_id),
            None => Ok(()),
        }
    }

    /// An API request authenticated with `token`.
    pub fn check_api(&self, token: TokenKey) -> Result<(), Limited> {
        match &self.api {
            Some(bucket) => bucket.check(Limit::AuthenticatedApi, &token),
            None => Ok(()),
        }
    }

    /// Drop the state of keys idle long enough to be full again (run now
    /// and then: every address ever seen would otherwise stay).
    pub fn forget_idle(&self) {
        if let Some(b) = &self.unauthenticated {
            b.forget_idle();
        }
        if let Some(b) = &self.token {
            b.forget_idle();
        }
        if let Some(b) = &self.api {
            b.forget_idle();
        }
    }
}

/// IPv4 addresses as they are; IPv6 ones by their /64.
fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

/// Does the request present any credential (valid or not)? Those without
/// one are what the unauthenticated limit counts.
pub fn presents_credentials<B>(req: &Request<B>) -> bool {
    let h = req.headers();
    if h.contains_key(header::AUTHORIZATION) || h.contains_key("private-token") {
        return true;
    }
    if super::web::presents_session_cookie(h) {
        return true;
    }
    req.uri().query().is_some_and(|q| {
        form_urlencoded::parse(q.as_bytes())
            .any(|(k, _)| k == "private_token" || k == "access_token")
    })
}

/// Paths the unauthenticated limit never counts.
pub fn exempt(path: &str) -> bool {
    path.starts_with("/-/") || path == "/oauth/token"
}

impl Limited {
    /// As GitLab names its throttles.
    pub fn rate_limited(&self) -> RateLimited {
        RateLimited {
            name: match self.limit {
                Limit::Unauthenticated => "throttle_unauthenticated",
                Limit::TokenEndpoint => "throttle_oauth_token",
                Limit::AuthenticatedApi => "throttle_authenticated_api",
            },
            per_second: self.per_second,
            retry_after: self.retry_after,
        }
    }
}

impl From<Limited> for ApiError {
    fn from(limited: Limited) -> Self {
        ApiError::RateLimited(limited.rate_limited())
    }
}

/// 429 in the dialect of `path`, with `Retry-After` (and GitLab's
/// `RateLimit-*` headers).
pub fn too_many_requests(path: &str, limited: Limited) -> Response {
    let mut res = match Dialect::of(path) {
        // GitLab's Rack::Attack answer: plain text.
        Dialect::GitLab => return ApiError::from(limited).into_response(),
        Dialect::OAuth => {
            let mut res = (
                StatusCode::TOO_MANY_REQUESTS,
                axum::Json(json!({
                    "error": "too_many_requests",
                    "error_description": format!(
                        "Too many requests. Retry later (in {} s).",
                        limited.retry_after
                    ),
                })),
            )
                .into_response();
            super::errors::no_store(res.headers_mut());
            res
        }
        Dialect::Browser => super::pages::error_page(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many requests",
            &format!(
                "Too many requests from your address. Try again in {} seconds.",
                limited.retry_after
            ),
            None,
        ),
    };
    limited.rate_limited().headers(res.headers_mut());
    res
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_limit_lets_its_rate_through_then_refuses_with_a_wait() {
        let limits = RateLimits::new(LimitSettings {
            unauthenticated: 5,
            token: 0,
            api: 3,
        });
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..5 {
            limits.check_unauthenticated(Some(ip)).unwrap();
        }
        let refused = limits.check_unauthenticated(Some(ip)).unwrap_err();
        assert_eq!(refused.limit, Limit::Unauthenticated);
        assert_eq!(refused.retry_after, 1);
        // Another address has its own bucket; an unknown one is not counted.
        limits
            .check_unauthenticated(Some("192.0.2.2".parse().unwrap()))
            .unwrap();
        for _ in 0..100 {
            limits.check_unauthenticated(None).unwrap();
        }
        // Off: never refuses.
        for _ in 0..100 {
            limits.check_token(7).unwrap();
        }
        for _ in 0..3 {
            limits.check_api(TokenKey::Personal(1)).unwrap();
        }
        assert!(limits.check_api(TokenKey::Personal(1)).is_err());
        limits.check_api(TokenKey::OAuth(1)).unwrap();
    }

    #[test]
    fn ipv6_clients_share_their_64() {
        let limits = RateLimits::new(LimitSettings {
            unauthenticated: 1,
            token: 0,
            api: 0,
        });
        limits
            .check_unauthenticated(Some("2001:db8:1:2::1".parse().unwrap()))
            .unwrap();
        assert!(limits
            .check_unauthenticated(Some("2001:db8:1:2:ffff::9".parse().unwrap()))
            .is_err());
        limits
            .check_unauthenticated(Some("2001:db8:1:3::1".parse().unwrap()))
            .unwrap();
    }

    #[test]
    fn credentials_in_any_of_their_places() {
        let req = |uri: &str, h: &[(&str, &str)]| {
            let mut b = Request::get(uri);
            for (k, v) in h {
                b = b.header(*k, *v);
            }
            b.body(()).unwrap()
        };
        assert!(!presents_credentials(&req("/api/v4/version", &[])));
        assert!(presents_credentials(&req(
            "/x",
            &[("authorization", "Bearer a")]
        )));
        assert!(presents_credentials(&req("/x", &[("PRIVATE-TOKEN", "a")])));
        assert!(presents_credentials(&req("/x?private_token=a", &[])));
        assert!(presents_credentials(&req("/x?a=1&access_token=a", &[])));
        assert!(presents_credentials(&req(
            "/",
            &[("cookie", "a=b; _latchkey_session=x")]
        )));
        // Behind https the session cookie has its __Host- name.
        assert!(presents_credentials(&req(
            "/",
            &[("cookie", "__Host-latchkey_session=x")]
        )));
        assert!(!presents_credentials(&req("/", &[("cookie", "a=b")])));
        assert!(!presents_credentials(&req(
            "/",
            &[("cookie", "x_latchkey_session_old=1")]
        )));
        assert!(exempt("/-/readiness") && exempt("/oauth/token"));
        assert!(!exempt("/oauth/userinfo"));
    }

    #[test]
    fn refusals_speak_the_route_dialect() {
        let limited = Limited {
            limit: Limit::Unauthenticated,
            per_second: 10,
            retry_after: 2,
        };
        let res = too_many_requests("/api/v4/projects", limited);
        assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(res.headers()["retry-after"], "2");
        assert_eq!(res.headers()["content-type"], "text/plain");
        assert_eq!(res.headers()["ratelimit-limit"], "600");
        let res = too_many_requests("/oauth/token", limited);
        assert_eq!(res.headers()["content-type"], "application/json");
        let res = too_many_requests("/users/sign_in", limited);
        assert!(res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
    }
}
