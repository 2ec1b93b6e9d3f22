//! The HTTP integration suite: the real router on a real socket, a fresh
//! SQLite database per test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod helpers;

mod applications;
mod auth;
mod auth_cache;
mod bad_input;
mod cluster;
mod faults;
mod meta;
mod oauth;
mod oidc;
mod process;
mod process_resilience;
mod races;
mod security;
mod security_low;
mod tokens;
mod user_applications;
mod users;
