//! `LATCHKEY_AUDIT_LOG`: every committed audit event, also as one JSON
//! object a line (the API's entity), on stdout or appended to a file, for
//! log shippers. The database stays the record; this is a copy.

use std::io::Write;
use std::sync::Arc;

use anyhow::Context;
use latchkey_core::audit::{AuditEvent, AuditSink};
use tracing_appender::non_blocking::{NonBlocking, NonBlockingBuilder, WorkerGuard};

use crate::config::AuditLog;
use crate::http::audit_events::AuditEventEntity;

/// Writes events from a thread of its own. Never lossy: when its queue is
/// full, a writer waits rather than drop an event.
struct JsonLines {
    writer: NonBlocking,
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
    }
}

/// The sink for `target`, and the guard that flushes it when dropped.
pub fn open(target: &AuditLog) -> anyhow::Result<(Arc<dyn AuditSink>, WorkerGuard)> {
    let builder = NonBlockingBuilder::default()
        .lossy(false)
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
    Ok((Arc::new(JsonLines { writer }), guard))
}
