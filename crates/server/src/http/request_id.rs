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
use std::sync::{Arc, LazyLock};
use std::task::{Context, Poll};

use axum::http::{HeaderName, HeaderValue, Request};
use axum::response::Response;
use latchkey_core::error::{Cause, Chain};

pub static HEADER: HeaderName = HeaderName::from_static("x-request-id");

tokio::task_local! {
    static CURRENT: Arc<str>;
}

/// The id of the request being answered, if any.
pub fn current() -> Option<Arc<str>> {
    CURRENT.try_with(Arc::clone).ok()
}

/// A process-wide random prefix and a counter: unique across restarts
/// without a system call per request.
fn next_id() -> Arc<str> {
    static PREFIX: LazyLock<String> = LazyLock::new(|| {
        // Without randomness ids only repeat across restarts.
        latchkey_core::secret::random_hex(4).unwrap_or_else(|_| "00000000".to_owned())
    });
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    Arc::from(format!("{}{n:012x}", *PREFIX))
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

#[derive(Clone)]
pub struct RequestIds<S> {
    inner: S,
}

impl<S, B> tower::Service<Request<B>> for RequestIds<S>
where
    S: tower::Service<Request<B>, Response = Response>,
    S::Future: Send + 'static,
    S::Error: 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let id = next_id();
        let method = req.method().clone();
        let path = req.uri().path().to_owned();
        let answer = CURRENT.scope(id.clone(), self.inner.call(req));
        Box::pin(async move {
            let mut res = answer.await?;
            if let Some(fault) = res.extensions_mut().remove::<Fault>() {
                let error = Chain(&*fault.cause);
                if fault.unavailable {
                    tracing::warn!(request_id = %id, %method, %path, %error, "unavailable");
                } else {
                    tracing::error!(request_id = %id, %method, %path, %error, "internal error");
                }
            }
            if let Ok(v) = HeaderValue::from_str(&id) {
                res.headers_mut().insert(HEADER.clone(), v);
            }
            Ok(res)
        })
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
    }
}
