//! The HTTP face of latchkey. [`router::router`] lists every route.

pub mod applications;
pub mod audit_events;
pub mod auth;
pub mod client_ip;
pub mod errors;
pub mod group_applications;
pub mod group_entities;
pub mod groups;
pub mod limits;
pub mod members;
pub mod meta;
pub mod metrics;
pub mod oauth;
pub mod observe;
pub mod oidc;
pub mod openapi;
pub mod pages;
pub mod pagination;
pub mod params;
pub mod request_id;
pub mod router;
pub mod secrets;
pub mod tokens;
pub mod user_applications;
pub mod user_entities;
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
    /// Metrics, trusted proxies and rate limits (see `observe`).
    pub observer: Arc<observe::Observer>,
    /// Users without an avatar get a Gravatar URL (`LATCHKEY_GRAVATAR`).
    pub gravatar: bool,
}

impl AppState {
    /// What user entities link to.
    pub fn links(&self) -> user_entities::Links<'_> {
        user_entities::Links {
            base: &self.external_url,
            gravatar: self.gravatar,
        }
    }
}

pub use router::router;

/// The client's address (see `client_ip`: the peer, or behind trusted
/// proxies the address they forwarded), as the observe layer found it;
/// `None` when the server was not started with connect info.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub Option<std::net::IpAddr>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        if let Some(found) = parts.extensions.get::<ClientIp>() {
            return Ok(*found);
        }
        Ok(Self(
            parts
                .extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|c| c.0.ip()),
        ))
    }
}

/// [`ClientIp`] as text (for sign-in throttling), or "unknown".
#[derive(Debug, Clone)]
pub struct ClientAddr(pub String);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        let ClientIp(ip) = ClientIp::from_request_parts(parts, state).await?;
        Ok(Self(
            ip.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string()),
        ))
    }
}
