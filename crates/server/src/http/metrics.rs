//! `/-/metrics`: Prometheus (OpenMetrics) text. HTTP requests by route
//! template, method and status with their durations; what the services
//! count (sign-ins, tokens issued, the token cache); the database's pool,
//! waits and group commits; requests refused by a rate limit.
//!
//! Served on the main listener to the addresses `LATCHKEY_METRICS_ALLOW`
//! lists (loopback by default; others get 404, as GitLab does), or, with
//! `LATCHKEY_METRICS_LISTEN`, only on a listener of its own.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use ipnet::IpNet;
use latchkey_core::metrics::SECONDS_BUCKETS;
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use super::errors::ApiError;
use super::limits::Limit;
use super::AppState;

/// A route template (`/api/v4/applications/{id}`), or `unmatched` for a
/// request no route took (never the raw path: that would be a series per
/// id).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RouteLabel(pub Option<Arc<str>>);

impl EncodeLabelValue for RouteLabel {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        EncodeLabelValue::encode(&self.0.as_deref().unwrap_or("unmatched"), encoder)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct HttpLabels {
    pub method: &'static str,
    pub route: RouteLabel,
    pub status: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct LimitLabel {
    limit: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn seconds_histogram() -> Histogram {
    Histogram::new(SECONDS_BUCKETS)
}

/// The HTTP layer's own series.
#[derive(Debug, Clone)]
pub struct HttpMetrics {
    requests: Family<HttpLabels, Counter>,
    durations: HistogramFamily<HttpLabels>,
    in_flight: Gauge,
    limited: Family<LimitLabel, Counter>,
}

impl Default for HttpMetrics {
    fn default() -> Self {
        Self {
            requests: Family::default(),
            durations: Family::new_with_constructor(seconds_histogram),
            in_flight: Gauge::default(),
            limited: Family::default(),
        }
    }
}

impl HttpMetrics {
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "http_requests",
            "HTTP requests answered, by route template, method and status",
            self.requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time to answer an HTTP request (to the end of the body), by route template, method and status",
            self.durations.clone(),
        );
        registry.register(
            "http_requests_in_flight",
            "HTTP requests being answered now",
            self.in_flight.clone(),
        );
        registry.register(
            "latchkey_rate_limited_requests",
            "Requests refused with 429 by a rate limit, by limit",
            self.limited.clone(),
        );
    }

    pub fn started(&self) {
        self.in_flight.inc();
    }

    pub fn answered(&self, labels: &HttpLabels, seconds: f64) {
        self.in_flight.dec();
        self.requests.get_or_create(labels).inc();
        self.durations.get_or_create(labels).observe(seconds);
    }

    /// A request whose answer never came (the service failed).
    pub fn abandoned(&self) {
        self.in_flight.dec();
    }

    pub fn limited(&self, limit: Limit) {
        self.limited
            .get_or_create(&LimitLabel {
                limit: limit.as_str(),
            })
            .inc();
    }
}

/// A method as a label: the standard ones by name, anything else `other`
/// (so a client cannot make series of its own).
pub fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Who may read `/-/metrics` on the main listener.
#[derive(Debug, Clone)]
pub enum MetricsAccess {
    /// Clients in these networks.
    Allow(Vec<IpNet>),
    /// Nobody: served on a listener of its own.
    Elsewhere,
}

impl Default for MetricsAccess {
    fn default() -> Self {
        Self::Allow(default_allow())
    }
}

/// Loopback only.
pub fn default_allow() -> Vec<IpNet> {
    ["127.0.0.0/8", "::1/128"]
        .iter()
        .filter_map(|s| s.parse().ok())
        .collect()
}

/// The registry, rendered.
pub fn render(registry: &Registry) -> Response {
    let mut text = String::with_capacity(16 * 1024);
    if let Err(e) = prometheus_client::encoding::text::encode(&mut text, registry) {
        return ApiError::Internal(latchkey_core::error::cause(e)).into_response();
    }
    let mut res = (StatusCode::OK, text).into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    res
}

/// `GET /-/metrics` on the main listener.
pub async fn metrics(State(state): State<AppState>, client: super::ClientIp) -> Response {
    let allowed = match &state.observer.metrics_access {
        MetricsAccess::Elsewhere => false,
        MetricsAccess::Allow(nets) => client
            .0
            .is_some_and(|ip| nets.iter().any(|n| n.contains(&ip))),
    };
    if !allowed {
        return ApiError::RouteNotFound.into_response();
    }
    render(&state.observer.registry)
}
