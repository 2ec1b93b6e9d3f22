//! Which dialect a path answers in (GitLab's JSON, RFC 6749's JSON, or
//! HTML pages), and a request whose parameters could not be read, answered
//! in it.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use latchkey_core::oauth::{ErrorCode, OAuthError};

use super::super::errors::ApiError;

/// Whose error shapes a route answers in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// `/api/v4`: GitLab's JSON.
    GitLab,
    /// The OAuth endpoints clients call: RFC 6749's JSON.
    OAuth,
    /// Pages a person's browser shows: HTML.
    Browser,
}

impl Dialect {
    /// The dialect of a request path.
    pub fn of(path: &str) -> Self {
        if path.starts_with("/api/") {
            return Self::GitLab;
        }
        // A single segment is a profile page (`/USERNAME`).
        let profile = path.len() > 1 && !path[1..].contains('/') && path != "/-";
        let browser = path == "/"
            || profile
            || path.starts_with("/users/")
            || path.starts_with("/-/user_settings")
            || path.starts_with("/-/profile")
            || path.starts_with("/groups/")
            || path.starts_with("/admin/")
            || path == "/admin"
            || path == "/oauth/authorize"
            || path.starts_with("/oauth/authorize/")
            || path == "/oauth/device"
            || path.starts_with("/oauth/device/");
        if browser {
            Self::Browser
        } else if path.starts_with("/oauth/") || path.starts_with("/.well-known/") {
            Self::OAuth
        } else {
            Self::GitLab
        }
    }
}

/// The endpoints for operators and machines under `/-/` (health,
/// readiness, metrics, the stylesheet): they answer while the database is
/// down and never with an HTML page of errors.
pub fn is_operations_path(path: &str) -> bool {
    [
        "/-/health",
        "/-/liveness",
        "/-/readiness",
        "/-/metrics",
        "/-/assets/",
    ]
    .iter()
    .any(|p| path.starts_with(p))
}

/// A request whose parameters could not be read, answered in its route's
/// dialect.
#[derive(Debug)]
pub struct ParamsRejection {
    pub dialect: Dialect,
    pub error: ApiError,
}

impl ParamsRejection {
    fn description(&self) -> String {
        match &self.error {
            ApiError::BadRequest(reason) => reason.clone(),
            ApiError::MalformedBody => {
                "The request body does not match its declared format.".to_owned()
            }
            ApiError::PayloadTooLarge => "The request body is too large.".to_owned(),
            ApiError::UnsupportedMediaType(reason) => reason.clone(),
            ApiError::Unavailable(_) => {
                "The service is unavailable for a moment; try again soon.".to_owned()
            }
            _ => "The request is malformed.".to_owned(),
        }
    }
}

impl IntoResponse for ParamsRejection {
    fn into_response(self) -> Response {
        match self.dialect {
            Dialect::GitLab => self.error.into_response(),
            Dialect::OAuth => {
                let status = self.error.status();
                let code = if status == StatusCode::SERVICE_UNAVAILABLE {
                    ErrorCode::TemporarilyUnavailable
                } else {
                    ErrorCode::InvalidRequest
                };
                let mut res =
                    super::super::errors::OAuthResponse(OAuthError::with(code, self.description()))
                        .into_response();
                *res.status_mut() = status;
                res
            }
            Dialect::Browser => {
                let status = self.error.status();
                let title = match status {
                    StatusCode::PAYLOAD_TOO_LARGE => "Request too large",
                    StatusCode::UNSUPPORTED_MEDIA_TYPE => "Unsupported form encoding",
                    StatusCode::SERVICE_UNAVAILABLE => "Try again soon",
                    _ => "Bad request",
                };
                super::super::pages::error_page(status, title, &self.description(), None)
            }
        }
    }
}
