//! The HTTP face of latchkey. [`router::router`] lists every route.

pub mod applications;
pub mod auth;
pub mod errors;
pub mod meta;
pub mod pagination;
pub mod params;
pub mod router;
pub mod tokens;
pub mod user_applications;
pub mod users;

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
}

pub use router::router;
