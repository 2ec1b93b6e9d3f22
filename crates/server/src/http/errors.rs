//! Errors in their dialects: GitLab's JSON under `/api/v4` ([`ApiError`]),
//! RFC 6749's under `/oauth` ([`OAuthResponse`]); browser pages render
//! theirs in `pages`. A 5xx never names its cause, which goes to the log
//! under the request id the response carries (see `request_id`).

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use latchkey_core::application::ValidationErrors;
use latchkey_core::error::{cause, message, Cause};
use latchkey_core::oauth::{ErrorCode, OAuthError};
use latchkey_core::service::ServiceError;
use latchkey_core::store::StoreError;
use serde_json::json;

use super::request_id::Fault;

pub const REALM: &str = "Protected by OAuth 2.0";

/// An `/api/v4` error, rendered as GitLab renders it.
#[derive(Debug)]
pub enum ApiError {
    /// 401 `{"message":"401 Unauthorized"}`
    Unauthorized,
    /// 403 `{"message":"403 Forbidden"}` or `403 Forbidden - <reason>`
    Forbidden(Option<&'static str>),
    /// 404 `{"message":"404 <what> Not Found"}`
    NotFound(&'static str),
    /// 404 `{"error":"404 Not Found"}`: no such route
    RouteNotFound,
    /// 404 `{"message":"404 Not found"}`: Rails' RecordNotFound (a member
    /// that is not one)
    RecordNotFound,
    /// 409 `{"message":"<what> has already been taken"}`
    Conflict(String),
    /// 400 `{"error":"a, b"}`: Grape parameter errors, in declaration order
    Params(Vec<String>),
    /// 400 `{"message":{"field":["..."]}}`
    Validation(ValidationErrors),
    /// 400 `{"message":"400 Bad request - <reason>"}`
    BadRequest(String),
    /// 400 `{"message":"<text>"}` (GitLab's `render_api_error!`)
    BadRequestMessage(String),
    /// 400 `{"error":"message body does not match declared format"}`
    MalformedBody,
    /// 401 `invalid_token`, with `WWW-Authenticate`
    InvalidToken(&'static str),
    /// 403 `insufficient_scope`; the scopes that would have been enough
    InsufficientScope(&'static str),
    /// 400 both an `Authorization: Bearer` header and an `access_token` parameter
    BothTokens,
    /// 413
    PayloadTooLarge,
    /// 415 `{"message":"415 Unsupported Media Type - <reason>"}`
    UnsupportedMediaType(String),
    /// 429 `Retry later`, as GitLab's Rack::Attack answers, with its
    /// `RateLimit-*` headers
    RateLimited(RateLimited),
    /// 503: the database (or the server) cannot answer now; the cause is
    /// logged, never sent
    Unavailable(Cause),
    /// 500: a fault; the cause is logged, never sent
    Internal(Cause),
}

impl ApiError {
    /// The HTTP status this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Unauthorized | Self::InvalidToken(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) | Self::InsufficientScope(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) | Self::RouteNotFound | Self::RecordNotFound => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Params(_)
            | Self::Validation(_)
            | Self::BadRequest(_)
            | Self::BadRequestMessage(_)
            | Self::MalformedBody
            | Self::BothTokens => StatusCode::BAD_REQUEST,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

fn json_response(status: StatusCode, body: serde_json::Value) -> Response {
    (status, axum::Json(body)).into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            Self::Unauthorized => json_response(
                StatusCode::UNAUTHORIZED,
                json!({"message": "401 Unauthorized"}),
            ),
            Self::Forbidden(None) => {
                json_response(StatusCode::FORBIDDEN, json!({"message": "403 Forbidden"}))
            }
            Self::Forbidden(Some(reason)) => json_response(
                StatusCode::FORBIDDEN,
                json!({ "message": format!("403 Forbidden - {reason}") }),
            ),
            Self::NotFound("") => {
                json_response(StatusCode::NOT_FOUND, json!({"message": "404 Not Found"}))
            }
            Self::NotFound(what) => json_response(
                StatusCode::NOT_FOUND,
                json!({ "message": format!("404 {what} Not Found") }),
            ),
            Self::RouteNotFound => {
                json_response(StatusCode::NOT_FOUND, json!({"error": "404 Not Found"}))
            }
            Self::RecordNotFound => {
                json_response(StatusCode::NOT_FOUND, json!({"message": "404 Not found"}))
            }
            Self::Conflict(message) => {
                json_response(StatusCode::CONFLICT, json!({ "message": message }))
            }
            Self::Params(errors) => json_response(
                StatusCode::BAD_REQUEST,
                json!({ "error": errors.join(", ") }),
            ),
            Self::Validation(errors) => {
                json_response(StatusCode::BAD_REQUEST, json!({ "message": errors }))
            }
            Self::BadRequest(reason) => json_response(
                StatusCode::BAD_REQUEST,
                json!({ "message": format!("400 Bad request - {reason}") }),
            ),
            Self::BadRequestMessage(text) => {
                json_response(StatusCode::BAD_REQUEST, json!({ "message": text }))
            }
            Self::MalformedBody => json_response(
                StatusCode::BAD_REQUEST,
                json!({"error": "message body does not match declared format"}),
            ),
            Self::InvalidToken(description) => {
                let mut res = json_response(
                    StatusCode::UNAUTHORIZED,
                    json!({"error": "invalid_token", "error_description": description}),
                );
                let challenge = format!(
                    "Bearer realm=\"{REALM}\", error=\"invalid_token\", error_description=\"{description}\""
                );
                if let Ok(v) = HeaderValue::from_str(&challenge) {
                    res.headers_mut().insert(header::WWW_AUTHENTICATE, v);
                }
                res
            }
            Self::InsufficientScope(scopes) => json_response(
                StatusCode::FORBIDDEN,
                json!({
                    "error": "insufficient_scope",
                    "error_description": "The request requires higher privileges than provided by the access token.",
                    "scope": scopes,
                }),
            ),
            Self::BothTokens => json_response(
                StatusCode::BAD_REQUEST,
                json!({
                    "error": "invalid_request",
                    "error_description": "Both Authorization header and payload includes access token.",
                }),
            ),
            Self::PayloadTooLarge => json_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                json!({"message": "413 Request Entity Too Large"}),
            ),
            Self::UnsupportedMediaType(reason) => json_response(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                json!({ "message": format!("415 Unsupported Media Type - {reason}") }),
            ),
            Self::RateLimited(limited) => {
                let mut res = (
                    StatusCode::TOO_MANY_REQUESTS,
                    [(header::CONTENT_TYPE, "text/plain")],
                    "Retry later\n",
                )
                    .into_response();
                limited.headers(res.headers_mut());
                res
            }
            Self::Unavailable(cause) => Fault {
                cause,
                unavailable: true,
            }
            .attach(fault_response(
                StatusCode::SERVICE_UNAVAILABLE,
                "503 Service Unavailable",
            )),
            Self::Internal(cause) => Fault {
                cause,
                unavailable: false,
            }
            .attach(fault_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "500 Internal Server Error",
            )),
        }
    }
}

/// A request a rate limit refused: which limit (GitLab's throttle name),
/// its rate, and when to come back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimited {
    pub name: &'static str,
    pub per_second: u32,
    /// Whole seconds until a request would pass (at least 1).
    pub retry_after: u64,
}

impl RateLimited {
    /// `Retry-After`, and GitLab's `RateLimit-*` headers (it states its
    /// quota per minute).
    pub fn headers(&self, h: &mut HeaderMap) {
        h.insert(header::RETRY_AFTER, HeaderValue::from(self.retry_after));
        h.insert("ratelimit-name", HeaderValue::from_static(self.name));
        h.insert(
            "ratelimit-limit",
            HeaderValue::from(u64::from(self.per_second) * 60),
        );
        h.insert("ratelimit-remaining", HeaderValue::from_static("0"));
    }
}

/// GitLab's body for a 5xx, exactly (clients match it); the request id
/// to quote in a report is in `X-Request-Id`, as GitLab sends it.
fn fault_response(status: StatusCode, text: &str) -> Response {
    json_response(status, json!({ "message": text }))
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(_) => Self::Unavailable(cause(e)),
            // The parent of what was written was deleted meanwhile.
            StoreError::Gone => Self::NotFound(""),
            other => Self::Internal(cause(other)),
        }
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Validation(v) => Self::Validation(v),
            ServiceError::NotFound => Self::NotFound(""),
            ServiceError::Forbidden(reason) => Self::Forbidden(reason),
            ServiceError::Invalid(reason) => Self::BadRequest(reason),
            ServiceError::Store(s) => s.into(),
            ServiceError::Unavailable(why) => Self::Unavailable(message(why)),
            e @ ServiceError::Internal { .. } => Self::Internal(cause(e)),
        }
    }
}

/// An RFC 6749 error response.
pub struct OAuthResponse(pub OAuthError);

pub(crate) fn no_store(h: &mut HeaderMap) {
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-store, no-cache"),
    );
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

impl IntoResponse for OAuthResponse {
    fn into_response(self) -> Response {
        let e = self.0;
        let status = match e.code {
            _ if e.bad_request => StatusCode::BAD_REQUEST,
            ErrorCode::InvalidClient | ErrorCode::UnauthorizedClient | ErrorCode::InvalidToken => {
                StatusCode::UNAUTHORIZED
            }
            ErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::InsufficientScope => StatusCode::FORBIDDEN,
            _ => StatusCode::BAD_REQUEST,
        };
        let mut res = (
            status,
            Json(json!({"error": e.code.as_str(), "error_description": e.description})),
        )
            .into_response();
        let h = res.headers_mut();
        no_store(h);
        // A challenge only where RFC 6749 section 5.2 (401) and RFC 6750
        // section 3 (a resource's 401 or 403) ask for one: on a token
        // endpoint 400, clients such as openid-client read a challenge
        // header before the body and lose the error code.
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            let challenge = format!(
                "Bearer realm=\"Doorkeeper\", error=\"{}\", error_description=\"{}\"",
                e.code.as_str(),
                e.description.replace('"', "'")
            );
            if let Ok(v) = HeaderValue::from_str(&challenge) {
                h.insert(header::WWW_AUTHENTICATE, v);
            }
        }
        res
    }
}
