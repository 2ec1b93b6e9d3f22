//! Logging setup: one subscriber, to standard error, filter and format
//! configurable.
//!
//! Lines are written by a thread of their own (`tracing-appender`'s
//! non-blocking writer), in batches: a request never waits for standard
//! error. If
//! the writer falls behind by more than its buffer (128,000 lines), lines
//! are dropped rather than requests slowed. Colours only on a terminal.
//! JSON lines put every field at the top level (`request_id`, `status`,
//! …), with the request's span (its `request_id`) beside them.

use std::io::IsTerminal;

use anyhow::Context;
use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Keep the guard until the process ends: dropping it flushes the lines
/// still queued.
pub fn init(filter: &str, format: LogFormat) -> anyhow::Result<Option<WorkerGuard>> {
    let filter = EnvFilter::try_new(filter)
        .with_context(|| format!("invalid LATCHKEY_LOG filter {filter:?}"))?;
    // The writer thread takes every line queued, then writes them in one
    // go: one system call for a batch, not one per line.
    let (writer, guard) = tracing_appender::non_blocking(std::io::BufWriter::with_capacity(
        64 * 1024,
        std::io::stderr(),
    ));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(std::io::stderr().is_terminal());
    let result = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
    // A second init (tests) is harmless, and needs no guard.
    Ok(result.is_ok().then_some(guard))
}
