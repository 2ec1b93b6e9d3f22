//! latchkey's domain: applications, users, personal access tokens, their
//! validation rules and the services that combine them.
//!
//! Nothing here knows about HTTP or SQL. Handlers and the CLI call the
//! services in [`service`]; storage backends implement [`store::Store`].

pub mod access;
pub mod application;
pub mod audit;
pub mod auth_cache;
pub mod authorize;
pub mod authorized;
pub mod clock;
pub mod context;
pub mod device;
pub mod dump;
pub mod error;
pub mod group;
pub mod hashing;
pub mod imported;
pub mod metrics;
pub mod oauth;
pub mod oauth_flows;
pub mod oidc;
pub mod oidc_flows;
pub mod pagination;
pub mod redirect_uri;
pub mod registration;
pub mod scopes;
pub mod secret;
pub mod service;
pub mod session;
pub mod state;
pub mod store;
pub mod token;
pub mod usage;
pub mod user;

pub use clock::{Clock, SystemClock};
pub use service::{Config, Services};
pub use store::{Store, StoreError};
