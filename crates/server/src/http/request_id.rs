//! Request ids, and what the rest of the code knows of the request being
//! answered.
//!
//! Every response carries `X-Request-Id` (as GitLab's do): the client's
//! own, when it sent a usable one (as GitLab's Rails keeps it: letters,
//! digits, `_`, `-` and `@`, at most 255), else a new one. Every log line
//! of the request carries it (a span the observe layer opens), and so does
//! each change's [`Context`]. An HTML page for a server fault shows it,
//! for a person to quote. A response for a server fault (500, 503) carries
//! the fault itself as a [`Fault`] extension, which the observe layer logs
//! once and takes off the response: the error types only render, and JSON
//! bodies stay exactly GitLab's and RFC 6749's.

use std::cell::Cell;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::response::Response;
use bytes::Bytes;
use latchkey_core::context::{Context, Via};
use latchkey_core::error::Cause;

pub static HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// The request being answered: its id (as sent in `X-Request-Id`), the
/// client's address, and what routing and authentication learn of it.
pub(crate) struct Current {
    pub(crate) id: HeaderValue,
    pub(crate) client: Option<IpAddr>,
    /// The route template that took the request.
    pub(crate) route: Cell<Option<Arc<str>>>,
    /// The user the request authenticated as.
    pub(crate) user: Cell<Option<i64>>,
}

impl Current {
    pub(crate) fn new(id: HeaderValue, client: Option<IpAddr>) -> Self {
        Self {
            id,
            client,
            route: Cell::new(None),
            user: Cell::new(None),
        }
    }
}

tokio::task_local! {
    pub(crate) static CURRENT: Current;
}

/// The id of the request being answered, if any.
pub fn current() -> Option<String> {
    CURRENT
        .try_with(|c| c.id.to_str().ok().map(str::to_owned))
        .ok()
        .flatten()
}

/// Note who the request authenticated as (for the access log).
pub(crate) fn set_user(user_id: i64) {
    let _ = CURRENT.try_with(|c| c.user.set(Some(user_id)));
}

/// Note the route template that took the request (for the metrics).
pub(crate) fn set_route(route: Arc<str>) {
    let _ = CURRENT.try_with(|c| c.route.set(Some(route)));
}

/// Who makes a change on the request being answered: `user_id` acting
/// through `via`, with the request's id and the client's address.
pub fn context(user_id: Option<i64>, via: Via) -> Context {
    let (request_id, address) = CURRENT
        .try_with(|c| {
            (
                c.id.to_str().ok().map(str::to_owned),
                c.client.map(|ip| ip.to_string()),
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

/// The longest request id kept from a client (as Rails).
const MAX_ID_LEN: usize = 255;

/// The client's `X-Request-Id`, cleaned as GitLab (Rails) cleans it: only
/// letters, digits, `_`, `-` and `@`, at most 255 of them; `None` when
/// nothing is left.
pub(crate) fn from_request(headers: &HeaderMap) -> Option<HeaderValue> {
    let raw = headers.get(&HEADER)?.as_bytes();
    let ok = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'@');
    if raw.len() <= MAX_ID_LEN && !raw.is_empty() && raw.iter().all(ok) {
        return headers.get(&HEADER).cloned();
    }
    let kept: Vec<u8> = raw.iter().copied().filter(ok).take(MAX_ID_LEN).collect();
    if kept.is_empty() {
        return None;
    }
    HeaderValue::from_maybe_shared(Bytes::from(kept)).ok()
}

/// A process-wide random prefix and a counter, 20 hex digits: unique
/// across restarts without a system call per request, and one allocation
/// (`format!` cost a request 2,000 instructions; this, about 100).
pub(crate) fn next_id() -> HeaderValue {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    static PREFIX: LazyLock<[u8; 8]> = LazyLock::new(|| {
        // Without randomness ids only repeat across restarts.
        let hex = latchkey_core::secret::random_hex(4).unwrap_or_default();
        let mut prefix = *b"00000000";
        for (to, from) in prefix.iter_mut().zip(hex.bytes()) {
            *to = from;
        }
        prefix
    });
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut id = [0u8; 20];
    id[..8].copy_from_slice(&*PREFIX);
    for (i, digit) in id[8..].iter_mut().enumerate() {
        let shift = 4 * (11 - i);
        *digit = HEX[usize::try_from((n >> shift) & 0xf).unwrap_or(0)];
    }
    // Hex digits are always a valid header value.
    HeaderValue::from_bytes(&id).unwrap_or_else(|_| HeaderValue::from_static("0"))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique() {
        let a = next_id();
        let b = next_id();
        assert_ne!(a, b);
        assert_eq!(a.len(), 20);
        let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()), "{a}");
        assert_eq!(a[..8], b[..8], "one prefix per process");
        let (x, y) = (
            u64::from_str_radix(&a[8..], 16).unwrap(),
            u64::from_str_radix(&b[8..], 16).unwrap(),
        );
        assert!(y > x, "a counter: {a} then {b}");
    }

    #[test]
    fn client_ids_are_kept_clean() {
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(&HEADER, HeaderValue::from_str(v).unwrap());
            from_request(&h).map(|v| v.to_str().unwrap().to_owned())
        };
        assert_eq!(with("abc-123_x@y").as_deref(), Some("abc-123_x@y"));
        assert_eq!(with("a b<script>").as_deref(), Some("abscript"));
        assert_eq!(with("  ;;  "), None);
        assert_eq!(with(&"x".repeat(300)).map(|s| s.len()), Some(255));
        assert_eq!(from_request(&HeaderMap::new()), None);
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

    use super::Fault;
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
            .layer(crate::http::observe::ObserveLayer::for_tests())
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
