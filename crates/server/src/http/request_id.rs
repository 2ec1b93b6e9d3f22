//! Request ids, and the one place faults are logged.
//!
//! Every response carries `X-Request-Id` (as GitLab's do); an HTML page
//! for a server fault shows it too, for a person to quote. A response for
//! a server fault (500, 503) carries the fault itself as a [`Fault`]
//! extension: this layer logs it, once, with the id, the method and the
//! path (never the query, which can hold tokens), and takes it off the
//! response. The error types only render: JSON bodies stay exactly
//! GitLab's and RFC 6749's.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::LazyLock;
use std::task::{ready, Poll};

use axum::http::{HeaderName, HeaderValue, Method, Request, Uri};
use axum::response::Response;
use bytes::Bytes;
use latchkey_core::context::{Context, Via};
use latchkey_core::error::{Cause, Chain};
use tokio::task::futures::TaskLocalFuture;

pub static HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// The request being answered: its id (as sent in `X-Request-Id`) and the
/// client's address (formatted only when a change asks for it).
#[derive(Clone)]
struct Current {
    id: HeaderValue,
    peer: Option<std::net::SocketAddr>,
}

tokio::task_local! {
    static CURRENT: Current;
}

/// The id of the request being answered, if any.
pub fn current() -> Option<String> {
    CURRENT
        .try_with(|c| c.id.to_str().ok().map(str::to_owned))
        .ok()
        .flatten()
}

/// Who makes a change on the request being answered: `user_id` acting
/// through `via`, with the request's id and the client's address.
pub fn context(user_id: Option<i64>, via: Via) -> Context {
    let (request_id, address) = CURRENT
        .try_with(|c| {
            (
                c.id.to_str().ok().map(str::to_owned),
                c.peer.map(|p| p.ip().to_string()),
            )
        })
        .unwrap_or_default();
    Context {
        user_id,
        via,
        address,
        request_id,
    }
}

/// A process-wide random prefix and a counter: unique across restarts
/// without a system call per request, and one allocation.
fn next_id() -> HeaderValue {
    static PREFIX: LazyLock<String> = LazyLock::new(|| {
        // Without randomness ids only repeat across restarts.
        latchkey_core::secret::random_hex(4).unwrap_or_else(|_| "00000000".to_owned())
    });
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let id = Bytes::from(format!("{}{n:012x}", *PREFIX));
    // Hex digits are always a valid header value.
    HeaderValue::from_maybe_shared(id).unwrap_or_else(|_| HeaderValue::from_static("0"))
}

/// A server fault behind a response, for the log.
#[derive(Clone)]
pub struct Fault {
    pub cause: Cause,
    /// The database (or the server) cannot answer now: a warning, not an error.
    pub unavailable: bool,
}

impl Fault {
    /// Attach to `res`.
    pub fn attach(self, mut res: Response) -> Response {
        res.extensions_mut().insert(self);
        res
    }
}

#[derive(Clone, Copy, Default)]
pub struct RequestIdLayer;

impl<S> tower::Layer<S> for RequestIdLayer {
    type Service = RequestIds<S>;

    fn layer(&self, inner: S) -> RequestIds<S> {
        RequestIds { inner }
    }
}

/// A plain tower service, its future a plain struct: nothing boxed or
/// formatted per request beyond the id itself.
#[derive(Clone)]
pub struct RequestIds<S> {
    inner: S,
}

impl<S, B> tower::Service<Request<B>> for RequestIds<S>
where
    S: tower::Service<Request<B>, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Answer<S::Future>;

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let id = next_id();
        let method = req.method().clone();
        let uri = req.uri().clone();
        let peer = req
            .extensions()
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0);
        let current = Current {
            id: id.clone(),
            peer,
        };
        Answer {
            inner: CURRENT.scope(current, self.inner.call(req)),
            id,
            method,
            uri,
        }
    }
}

pin_project_lite::pin_project! {
    /// The inner service's answer, with the request id set and any fault
    /// logged.
    pub struct Answer<F> {
        #[pin]
        inner: TaskLocalFuture<Current, F>,
        id: HeaderValue,
        method: Method,
        uri: Uri,
    }
}

impl<F, E> Future for Answer<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut res = ready!(this.inner.poll(cx))?;
        if let Some(fault) = res.extensions_mut().remove::<Fault>() {
            let error = Chain(&*fault.cause);
            let id = this.id.to_str().unwrap_or_default();
            let (method, path) = (&*this.method, this.uri.path());
            if fault.unavailable {
                tracing::warn!(request_id = id, %method, path, %error, "unavailable");
            } else {
                tracing::error!(request_id = id, %method, path, %error, "internal error");
            }
        }
        res.headers_mut().insert(HEADER.clone(), this.id.clone());
        Poll::Ready(Ok(res))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique() {
        let a = next_id();
        let b = next_id();
        assert_ne!(a, b);
        assert_eq!(a.len(), 20);
    }
}

#[cfg(test)]
mod dialect_tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use axum::response::{IntoResponse, Response};
    use axum::routing::get;
    use axum::Router;
    use latchkey_core::error::message;
    use latchkey_core::service::ServiceError;
    use latchkey_core::store::StoreError;
    use tower::ServiceExt;

    use super::{Fault, RequestIdLayer};
    use crate::http::errors::ApiError;

    const SECRET: &str = "disk-on-fire-at-/var/lib/secret";

    fn app() -> Router {
        Router::new()
            .route(
                "/api",
                get(|| async { ApiError::Internal(message(SECRET)).into_response() }),
            )
            .route(
                "/api-down",
                get(|| async {
                    ApiError::from(StoreError::Unavailable(message(SECRET))).into_response()
                }),
            )
            .route(
                "/oauth",
                get(|| async {
                    crate::http::oauth::internal(ServiceError::internal_from(
                        "signing failed",
                        message(SECRET),
                    ))
                }),
            )
            .route(
                "/page",
                get(|| async {
                    crate::http::web::internal_page(ServiceError::Unavailable("shutting down"))
                }),
            )
            .route("/fine", get(|| async { "fine" }))
            .route(
                "/who",
                get(|| async {
                    let ctx = super::context(Some(7), latchkey_core::context::Via::Session);
                    format!("{:?} {:?} {:?}", ctx.user_id, ctx.via, ctx.request_id)
                }),
            )
            .layer(RequestIdLayer)
    }

    async fn call(path: &str) -> (StatusCode, String, String, bool) {
        let res: Response = app()
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = res.status();
        let id = res
            .headers()
            .get("x-request-id")
            .expect("every response names its request")
            .to_str()
            .unwrap()
            .to_owned();
        let logged_and_removed = res.extensions().get::<Fault>().is_none();
        let body = axum::body::to_bytes(res.into_body(), 1 << 20)
            .await
            .unwrap();
        (
            status,
            id,
            String::from_utf8(body.to_vec()).unwrap(),
            logged_and_removed,
        )
    }

    #[tokio::test]
    async fn faults_answer_5xx_in_their_dialect_with_the_request_id_and_never_the_cause() {
        for (path, status, needle) in [
            ("/api", 500, r#""message":"500 Internal Server Error""#),
            ("/api-down", 503, r#""message":"503 Service Unavailable""#),
            ("/oauth", 500, r#""error":"server_error""#),
            ("/page", 503, "Try again soon"),
        ] {
            let (got, id, body, removed) = call(path).await;
            assert_eq!(got.as_u16(), status, "{path}");
            assert!(body.contains(needle), "{path}: {body}");
            if path == "/page" {
                assert!(body.contains(&id), "{path}: the page names {id}: {body}");
            }
            assert!(!body.contains("disk-on-fire"), "{path}: {body}");
            assert!(removed, "{path}: the fault is logged and taken off");
        }
        let (status, id, body, _) = call("/fine").await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "fine"));
        assert_eq!(id.len(), 20);
        let (_, other, _, _) = call("/fine").await;
        assert_ne!(id, other);
        // A change made on this request names it.
        let (_, id, body, _) = call("/who").await;
        assert_eq!(body, format!("Some(7) Session Some({id:?})"));
    }
}
