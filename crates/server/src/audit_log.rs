//! `LATCHKEY_AUDIT_LOG`: every committed audit event, also as one JSON
//! object a line (the API's entity), on stdout or appended to a file, for
//! log shippers. The database stays the record; this is a copy.

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use anyhow::Context;
use latchkey_core::audit::{AuditEvent, AuditSink};
use tracing_appender::non_blocking::{NonBlocking, NonBlockingBuilder, WorkerGuard};

use crate::config::AuditLog;
use crate::http::audit_events::AuditEventEntity;

/// Writes events from a thread of its own, so that a slow disk or a
/// reader of stdout that falls behind never holds a request. If 128,000
/// lines are waiting, further lines are dropped (and a warning says how
/// many): the database holds every event regardless.
struct JsonLines {
    writer: NonBlocking,
    /// Lines dropped so far, as last reported.
    reported: AtomicUsize,
}

impl AuditSink for JsonLines {
    fn publish(&self, event: &AuditEvent) {
        let Ok(mut line) = serde_json::to_vec(&AuditEventEntity::from(event)) else {
            return;
        };
        line.push(b'\n');
        let mut writer = self.writer.clone();
        if let Err(e) = writer.write_all(&line) {
            tracing::warn!(error = %e, audit_event_id = event.id, "cannot write to the audit log");
        }
        let dropped = self.writer.error_counter().dropped_lines();
        if dropped > self.reported.swap(dropped, Ordering::Relaxed) {
            tracing::warn!(
                dropped,
                "the audit log's reader falls behind: lines were dropped (the database has every event)"
            );
        }
    }
}

/// The sink for `target`, and the guard that flushes it when dropped.
pub fn open(target: &AuditLog) -> anyhow::Result<(Arc<dyn AuditSink>, WorkerGuard)> {
    let builder = NonBlockingBuilder::default()
        .lossy(true)
        .thread_name("latchkey-audit-log");
    let (writer, guard) = match target {
        AuditLog::Stdout => builder.finish(std::io::stdout()),
        AuditLog::File(path) => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("cannot open the audit log {}", path.display()))?;
            builder.finish(file)
        }
    };
    let sink = JsonLines {
        writer,
        reported: AtomicUsize::new(0),
    };
    Ok((Arc::new(sink), guard))
}
