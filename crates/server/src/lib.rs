//! The `latchkey` server: configuration, HTTP, CLI.

pub mod audit_log;
pub mod cli;
pub mod config;
pub mod http;
pub mod server;
pub mod startup;
pub mod telemetry;
