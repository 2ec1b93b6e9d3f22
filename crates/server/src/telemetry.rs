//! Logging setup: one subscriber, to standard error, filter and format
//! configurable.
//!
//! Lines are written by a thread of their own (`tracing-appender`'s
//! non-blocking writer), in batches: a request never waits for standard
//! error. If the writer falls behind by more than its queue (32,768
//! lines), lines are dropped rather than requests slowed. Colours only on a
//! terminal. JSON lines put every field at the top level (`request_id`,
//! `status`, …), with the request's span (its `request_id`) beside them.
//!
//! The access log (target `latchkey::access`, one line per request) is
//! filtered like every other target but formatted here, in the same
//! layout as the subscriber's lines: tracing's general formatter cost a
//! request about a fifth of `GET /api/v4/user`'s instructions
//! (`bench/DIAGNOSIS.md`).

/// Log lines queued for the writer thread before new ones are dropped:
/// about a second of access log at the benchmark's highest rates.
const LOG_QUEUE_LINES: usize = 32 * 1024;

use std::io::{IsTerminal, Write as _};
use std::net::IpAddr;
use std::sync::OnceLock;

use anyhow::Context;
use latchkey_core::clock::{Clock, SystemClock};
use serde::Serialize;
use tracing_appender::non_blocking::{NonBlocking, WorkerGuard};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Pretty,
    Json,
}

/// Where access lines go once logging is set up (else they go through
/// tracing, as in tests).
static ACCESS: OnceLock<AccessLog> = OnceLock::new();

struct AccessLog {
    writer: NonBlocking,
    json: bool,
}

/// Keep the guard until the process ends: dropping it flushes the lines
/// still queued.
pub fn init(filter: &str, format: LogFormat) -> anyhow::Result<Option<WorkerGuard>> {
    // The parser's message already holds its cause: said once, not twice.
    let mut filter = EnvFilter::try_new(filter).map_err(|e| {
        anyhow::anyhow!("invalid log filter {filter:?} (--log or LATCHKEY_LOG): {e}")
    })?;
    // PostgreSQL's notices ("relation _sqlx_migrations already exists" at
    // every start) say nothing to an operator, unless asked for by name.
    if !filter.to_string().contains("sqlx") {
        filter = filter.add_directive(
            "sqlx::postgres::notice=warn"
                .parse()
                .context("a built-in log directive")?,
        );
    }
    // The writer thread takes every line queued, then writes them in one
    // go: one system call for a batch, not one per line.
    // Its queue is allocated, and every slot written, up front: the
    // default 128,000 lines held 4 MB from the start.
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .buffered_lines_limit(LOG_QUEUE_LINES)
        .lossy(true)
        .finish(std::io::BufWriter::with_capacity(
            64 * 1024,
            std::io::stderr(),
        ));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer.clone())
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
    if result.is_err() {
        return Ok(None);
    }
    let _ = ACCESS.set(AccessLog {
        writer,
        json: format == LogFormat::Json,
    });
    Ok(Some(guard))
}

/// One access log line's fields.
#[derive(Serialize)]
pub struct Access<'a> {
    pub method: &'a str,
    pub path: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route: Option<&'a str>,
    pub status: u16,
    pub duration_ms: f64,
    pub bytes: u64,
    pub request_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client: Option<IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<i64>,
}

#[derive(Serialize)]
struct JsonLine<'a> {
    timestamp: &'a str,
    level: &'static str,
    message: &'static str,
    #[serde(flatten)]
    access: &'a Access<'a>,
    target: &'static str,
}

/// Log `a` at `info` under `latchkey::access`, if that target is on.
pub fn access(a: &Access<'_>) {
    if !tracing::enabled!(target: "latchkey::access", tracing::Level::INFO) {
        return;
    }
    let Some(log) = ACCESS.get() else {
        tracing::info!(
            target: "latchkey::access",
            method = a.method,
            path = a.path,
            route = a.route,
            status = a.status,
            duration_ms = a.duration_ms,
            bytes = a.bytes,
            request_id = a.request_id,
            client = a.client.map(tracing::field::display),
            user_id = a.user_id,
            "request"
        );
        return;
    };
    let line = if log.json {
        json_line(a)
    } else {
        pretty_line(a)
    };
    // Queued for the writer thread; dropped only if it is far behind.
    let _ = log.writer.make_writer().write_all(line.as_bytes());
}

fn timestamp() -> String {
    let now = SystemClock.now();
    now.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn json_line(a: &Access<'_>) -> String {
    let line = JsonLine {
        timestamp: &timestamp(),
        level: "INFO",
        message: "request",
        access: a,
        target: "latchkey::access",
    };
    let mut out = serde_json::to_string(&line).unwrap_or_default();
    out.push('\n');
    out
}

/// The subscriber's own layout: `TIME  INFO target: message key=value …`.
fn pretty_line(a: &Access<'_>) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(256);
    let _ = write!(
        out,
        "{}  INFO latchkey::access: request method={} path={:?}",
        timestamp(),
        a.method,
        a.path
    );
    if let Some(route) = a.route {
        let _ = write!(out, " route={route:?}");
    }
    let _ = write!(
        out,
        " status={} duration_ms={} bytes={} request_id={:?}",
        a.status, a.duration_ms, a.bytes, a.request_id
    );
    if let Some(client) = a.client {
        let _ = write!(out, " client={client}");
    }
    if let Some(user) = a.user_id {
        let _ = write!(out, " user_id={user}");
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_bad_filter_is_named_once_with_where_it_came_from() {
        let Err(e) = init("a=b=c[", LogFormat::Pretty) else {
            panic!("a bad filter was taken");
        };
        let text = format!("{e:#}");
        assert_eq!(
            text.matches("error parsing level filter").count(),
            1,
            "{text}"
        );
        assert!(text.contains("--log or LATCHKEY_LOG"), "{text}");
    }

    fn sample() -> Access<'static> {
        Access {
            method: "GET",
            path: "/api/v4/user",
            route: Some("/api/v4/user"),
            status: 200,
            duration_ms: 0.412,
            bytes: 334,
            request_id: "abc\"def",
            client: "203.0.113.7".parse().ok(),
            user_id: Some(1),
        }
    }

    #[test]
    fn json_lines_are_one_object_with_every_field_at_the_top() {
        let line = json_line(&sample());
        assert!(line.ends_with("}\n"));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["target"], "latchkey::access");
        assert_eq!(v["level"], "INFO");
        assert_eq!(v["request_id"], "abc\"def");
        assert_eq!(v["client"], "203.0.113.7");
        assert_eq!(v["status"], 200);
        assert_eq!(v["user_id"], 1);
        assert!(v["timestamp"].as_str().unwrap().ends_with('Z'));
        let anonymous = Access {
            user_id: None,
            route: None,
            ..sample()
        };
        let v: serde_json::Value = serde_json::from_str(&json_line(&anonymous)).unwrap();
        assert!(v.get("user_id").is_none() && v.get("route").is_none());
    }

    #[test]
    fn pretty_lines_read_like_the_others() {
        let line = pretty_line(&sample());
        assert!(line.contains(
            "  INFO latchkey::access: request method=GET path=\"/api/v4/user\" route=\"/api/v4/user\" status=200 duration_ms=0.412 bytes=334 request_id=\"abc\\\"def\" client=203.0.113.7 user_id=1\n"
        ), "{line}");
    }
}
