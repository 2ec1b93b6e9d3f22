//! The HTTP integration suite: the real router on a real socket, a fresh
//! SQLite database per test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// The server under test runs on the wall clock; so do the expectations.
#![allow(clippy::disallowed_methods)]

mod helpers;

mod app_lifecycle;
mod applications;
mod audit;
mod auth;
mod auth_cache;
mod bad_input;
mod cli_commands;
mod cluster;
mod cluster_cache;
mod faults;
mod gitlab_import;
mod groups;
mod meta;
mod oauth;
mod observability;
mod oidc;
mod openapi;
mod process;
mod process_resilience;
mod races;
mod security;
mod security_low;
mod snapshots;
mod state;
mod state_cli;
mod tokens;
mod user_applications;
mod users;
mod users_fidelity;
mod web_admin;
mod web_applications;
mod web_pages;
mod web_settings;
