//! The HTTP face of latchkey. [`router::router`] lists every route.

pub mod applications;
pub mod auth;
pub mod errors;
pub mod meta;
pub mod oauth;
pub mod oidc;
pub mod pages;
pub mod pagination;
pub mod params;
pub mod request_id;
pub mod router;
pub mod tokens;
pub mod user_applications;
pub mod users;
pub mod web;

use std::sync::Arc;

use latchkey_core::Services;

/// What every handler gets.
#[derive(Clone)]
pub struct AppState {
    pub services: Services,
    /// The public base URL, without a trailing slash.
    pub external_url: Arc<str>,
    /// Request bodies larger than this get 413.
    pub max_body_bytes: usize,
    /// One permit per unpaginated application list being streamed
    /// (`LATCHKEY_MAX_STREAMED_LISTS`); without one the list gets 503.
    pub streamed_lists: Arc<tokio::sync::Semaphore>,
}

pub use router::router;

/// The peer address of the connection (for sign-in throttling), or
/// "unknown" when the server was not started with connect info.
#[derive(Debug, Clone)]
pub struct ClientAddr(pub String);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        let addr = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map_or_else(|| "unknown".to_owned(), |c| c.0.ip().to_string());
        Ok(Self(addr))
    }
}
