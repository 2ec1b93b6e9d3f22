//! The layer every request passes first: it names the request (its id and
//! its client's address, behind trusted proxies), opens the span every log
//! line of the request carries, and once the answer is out counts it in
//! the metrics and writes the access log line (target `latchkey::access`,
//! `info`). It also logs, once, a server fault a response carries.
//!
//! [`AdmitLayer`], on every route, notes the route template for the
//! metrics and turns away unauthenticated floods (see `limits`).
//!
//! Both are plain tower services with plain futures: nothing boxed per
//! request, and a body is wrapped only when its length is not known in
//! advance (a streamed list), to count its bytes.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Poll};
use std::time::Instant;

use axum::body::Body;
use axum::extract::{ConnectInfo, MatchedPath};
use axum::http::{HeaderValue, Method, Request, StatusCode, Uri};
use axum::response::Response;
use bytes::Bytes;
use latchkey_core::error::Chain;
use latchkey_core::Services;
use prometheus_client::registry::Registry;
use tokio::task::futures::TaskLocalFuture;
use tracing::instrument::Instrumented;
use tracing::Instrument as _;

use super::client_ip::TrustedProxies;
use super::limits::{self, LimitSettings, Limited, RateLimits};
use super::metrics::{method_label, HttpLabels, HttpMetrics, MetricsAccess, RouteLabel};
use super::request_id::{self, Current, Fault, CURRENT, HEADER};
use super::ClientIp;

/// What `serve` configures here.
#[derive(Debug, Clone, Default)]
pub struct ObserveSettings {
    pub trusted_proxies: TrustedProxies,
    pub limits: LimitSettings,
    pub metrics_access: MetricsAccess,
}

/// The metrics, the proxies believed, and the rate limits, shared by
/// every request.
#[derive(Debug, Default)]
pub struct Observer {
    pub metrics: HttpMetrics,
    /// Every series `/-/metrics` shows.
    pub registry: Registry,
    pub proxies: TrustedProxies,
    pub limits: RateLimits,
    pub metrics_access: MetricsAccess,
}

impl Observer {
    pub fn new(services: &Services, settings: ObserveSettings) -> Self {
        let metrics = HttpMetrics::default();
        let mut registry = Registry::default();
        metrics.register(&mut registry);
        services.metrics().register(&mut registry);
        services.store().register_metrics(&mut registry);
        Self {
            metrics,
            registry,
            proxies: settings.trusted_proxies,
            limits: RateLimits::new(settings.limits),
            metrics_access: settings.metrics_access,
        }
    }
}

impl Observer {
    /// A rate limit's verdict, its refusal counted in the metrics.
    pub fn counted(&self, verdict: Result<(), Limited>) -> Result<(), Limited> {
        verdict.inspect_err(|limited| self.metrics.limited(limited.limit))
    }
}

#[derive(Clone)]
pub struct ObserveLayer(pub Arc<Observer>);

impl ObserveLayer {
    /// With no limits, proxies or registered series beyond its own.
    pub fn for_tests() -> Self {
        Self(Arc::new(Observer::default()))
    }
}

impl<S> tower::Layer<S> for ObserveLayer {
    type Service = Observe<S>;

    fn layer(&self, inner: S) -> Observe<S> {
        Observe {
            inner,
            observer: self.0.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Observe<S> {
    inner: S,
    observer: Arc<Observer>,
}

impl<S, B> tower::Service<Request<B>> for Observe<S>
where
    S: tower::Service<Request<B>, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Answer<S::Future>;

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let started = Instant::now();
        let id = request_id::from_request(req.headers()).unwrap_or_else(request_id::next_id);
        let peer = req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        let client = self.observer.proxies.client(peer, req.headers());
        req.extensions_mut().insert(ClientIp(client));
        let span = tracing::info_span!("request", request_id = id.to_str().unwrap_or_default());
        self.observer.metrics.started();
        let pending = Pending {
            observer: self.observer.clone(),
            method: req.method().clone(),
            uri: req.uri().clone(),
            client,
            id: id.clone(),
            started,
        };
        Answer {
            inner: CURRENT
                .scope(Current::new(id, client), self.inner.call(req))
                .instrument(span),
            pending: Some(pending),
        }
    }
}

/// What the access log line and the metrics need, kept while the request
/// is answered.
struct Pending {
    observer: Arc<Observer>,
    method: Method,
    uri: Uri,
    client: Option<IpAddr>,
    id: HeaderValue,
    started: Instant,
}

/// A request answered, waiting for its body's length.
struct Record {
    pending: Pending,
    status: StatusCode,
    route: Option<Arc<str>>,
    user: Option<i64>,
}

impl Record {
    fn finish(self, bytes: u64) {
        let Record {
            pending: p,
            status,
            route,
            user,
        } = self;
        let seconds = p.started.elapsed().as_secs_f64();
        crate::telemetry::access(&crate::telemetry::Access {
            method: p.method.as_str(),
            path: p.uri.path(),
            route: route.as_deref(),
            status: status.as_u16(),
            // Microseconds are enough, and keep the line short.
            duration_ms: (seconds * 1e6).round() / 1000.0,
            bytes,
            request_id: p.id.to_str().unwrap_or_default(),
            client: p.client,
            user_id: user,
        });
        let labels = HttpLabels {
            method: method_label(&p.method),
            route: RouteLabel(route),
            status: status.as_u16(),
        };
        p.observer.metrics.answered(&labels, seconds);
    }
}

/// The status logged and counted for a request whose client went away
/// before it was answered (as nginx logs it).
const CLIENT_CLOSED: u16 = 499;

impl Record {
    fn new(pending: Pending, status: StatusCode, current: Option<Current>) -> Self {
        let (route, user) = current.map_or((None, None), |c| (c.route.take(), c.user.get()));
        Self {
            pending,
            status,
            route,
            user,
        }
    }
}

pin_project_lite::pin_project! {
    /// The inner service's answer, observed.
    pub struct Answer<F> {
        #[pin]
        inner: Instrumented<TaskLocalFuture<Current, F>>,
        pending: Option<Pending>,
    }

    impl<F> PinnedDrop for Answer<F> {
        // Dropped unanswered: the client went away (or the server is
        // stopping). Still one access line and one count.
        fn drop(this: Pin<&mut Self>) {
            let mut this = this.project();
            if let Some(pending) = this.pending.take() {
                let current = this.inner.as_mut().inner_pin_mut().take_value();
                let status = StatusCode::from_u16(CLIENT_CLOSED).unwrap_or(StatusCode::BAD_REQUEST);
                Record::new(pending, status, current).finish(0);
            }
        }
    }
}

impl<F, E> Future for Answer<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let out = ready!(this.inner.as_mut().poll(cx));
        let current = this.inner.as_mut().inner_pin_mut().take_value();
        let Some(pending) = this.pending.take() else {
            return Poll::Ready(out);
        };
        let mut res = match out {
            Ok(res) => res,
            Err(e) => {
                pending.observer.metrics.abandoned();
                return Poll::Ready(Err(e));
            }
        };
        if let Some(fault) = res.extensions_mut().remove::<Fault>() {
            let error = Chain(&*fault.cause);
            let _in = this.inner.span().enter();
            let (method, path) = (&pending.method, pending.uri.path());
            if fault.unavailable {
                tracing::warn!(%method, path, %error, "unavailable");
            } else {
                tracing::error!(%method, path, %error, "internal error");
            }
        }
        res.headers_mut().insert(HEADER.clone(), pending.id.clone());
        let record = Record::new(pending, res.status(), current);
        if let Some(n) = http_body::Body::size_hint(res.body()).exact() {
            record.finish(n);
            return Poll::Ready(Ok(res));
        }
        Poll::Ready(Ok(res.map(|body| {
            Body::new(Counted {
                inner: body,
                bytes: 0,
                record: Some(record),
            })
        })))
    }
}

/// A body of unknown length, counted; the request is recorded when it
/// ends (or is dropped unfinished: the client went away).
struct Counted {
    inner: Body,
    bytes: u64,
    record: Option<Record>,
}

impl Counted {
    fn finish(&mut self) {
        if let Some(record) = self.record.take() {
            record.finish(self.bytes);
        }
    }
}

impl http_body::Body for Counted {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        let frame = ready!(Pin::new(&mut self.inner).poll_frame(cx));
        match &frame {
            Some(Ok(f)) => {
                if let Some(data) = f.data_ref() {
                    self.bytes += data.len() as u64;
                }
            }
            Some(Err(_)) | None => self.finish(),
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.finish();
    }
}

/// On every route: note its template, and refuse an unauthenticated
/// request over its address's limit.
#[derive(Clone)]
pub struct AdmitLayer(pub Arc<Observer>);

impl<S> tower::Layer<S> for AdmitLayer {
    type Service = Admit<S>;

    fn layer(&self, inner: S) -> Admit<S> {
        Admit {
            inner,
            observer: self.0.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Admit<S> {
    inner: S,
    observer: Arc<Observer>,
}

impl<S, B> tower::Service<Request<B>> for Admit<S>
where
    S: tower::Service<Request<B>, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future =
        futures::future::Either<std::future::Ready<Result<Response, S::Error>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        if let Some(route) = req.extensions().get::<MatchedPath>() {
            request_id::set_route(Arc::from(route.as_str()));
        }
        let path = req.uri().path();
        if !limits::exempt(path) && !limits::presents_credentials(&req) {
            let client = req.extensions().get::<ClientIp>().and_then(|c| c.0);
            let verdict = self.observer.limits.check_unauthenticated(client);
            if let Err(limited) = self.observer.counted(verdict) {
                return futures::future::Either::Left(std::future::ready(Ok(
                    limits::too_many_requests(path, limited),
                )));
            }
        }
        futures::future::Either::Right(self.inner.call(req))
    }
}
