//! The audit trail: reading it, pruning it, and publishing each event once
//! its change has committed.

use std::sync::Arc;

use futures::future::BoxFuture;

use super::{AuditEvent, AuditFilter, AuditSink, Keyset};
use crate::error::StoreError;
use crate::pagination::PageRequest;
use crate::service::{ServiceError, Services};
use crate::store::Transaction;

/// A page of events and, for offset pages, the (capped) total.
pub type ListedEvents = (Vec<AuditEvent>, u64);

/// Events deleted per statement when pruning, so that no transaction
/// grows with the backlog.
const PRUNE_BATCH: i64 = 5_000;

impl Services {
    /// Run `work` as one unit of work: its changes and the audit events it
    /// records commit together or not at all. The events are then logged
    /// (`latchkey::changes`, at info) and handed to the audit sink, if any.
    /// The unit runs as a task of its own: a caller that goes away (a
    /// client that disconnects) cannot leave a committed change whose
    /// events were never published.
    pub(crate) async fn unit<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: for<'t> FnOnce(&'t mut dyn Transaction) -> BoxFuture<'t, Result<T, StoreError>>
            + Send
            + 'static,
    {
        let store = self.store.clone();
        self.recorded(async move { crate::store::in_transaction_audited(&*store, work).await })
            .await
    }

    /// A change and the events it recorded, made by `call` (a unit of work,
    /// or a single store call such as
    /// [`crate::application::ApplicationStore::insert_application_recorded`]),
    /// in a task of its own; the events are published once committed.
    pub(crate) async fn recorded<T, F>(&self, call: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: std::future::Future<Output = Result<(T, Vec<AuditEvent>), StoreError>> + Send + 'static,
    {
        let services = self.clone();
        let task = tokio::spawn(async move {
            let (value, events) = call.await?;
            services.published(&events);
            Ok(value)
        });
        match task.await {
            Ok(done) => done,
            Err(e) => Err(StoreError::Internal(crate::error::cause(e))),
        }
    }

    /// Log committed events and hand them to the sink.
    pub(crate) fn published(&self, events: &[AuditEvent]) {
        for e in events {
            tracing::info!(
                target: "latchkey::changes",
                event = e.event_name.as_str(),
                audit_event_id = e.id,
                entity = %format_args!("{}:{}", e.entity_type, e.entity_id),
                target = e.target_id,
                author_id = e.author_id,
                address = e.ip_address.as_deref(),
                request_id = e.request_id.as_deref(),
                "changed"
            );
            if let Some(sink) = &self.audit_sink {
                sink.publish(e);
            }
        }
    }

    /// Also send every committed event to `sink`.
    pub fn with_audit_sink(mut self, sink: Arc<dyn AuditSink>) -> Self {
        self.audit_sink = Some(sink);
        self
    }

    /// One offset page of the audit trail, newest first, with its total.
    /// Callers check that the reader is an administrator.
    pub async fn list_audit_events(
        &self,
        filter: &AuditFilter,
        page: PageRequest,
    ) -> Result<ListedEvents, ServiceError> {
        Ok(self.store.list_audit_events(filter, page).await?)
    }

    /// One keyset page of the audit trail.
    pub async fn audit_events_keyset(
        &self,
        filter: &AuditFilter,
        keyset: Keyset,
    ) -> Result<Vec<AuditEvent>, ServiceError> {
        Ok(self.store.audit_events_keyset(filter, keyset).await?)
    }

    pub async fn find_audit_event(&self, id: i64) -> Result<AuditEvent, ServiceError> {
        self.store
            .find_audit_event(id)
            .await?
            .ok_or(ServiceError::NotFound)
    }

    /// Delete the events older than the retention period
    /// ([`crate::Config::audit_retention_days`]; 0 keeps them forever), in
    /// batches. How many were deleted.
    pub async fn prune_audit_events(&self) -> Result<u64, ServiceError> {
        let days = self.config.audit_retention_days;
        if days <= 0 {
            return Ok(0);
        }
        let before = self
            .now_ms()
            .saturating_sub(days.saturating_mul(86_400_000));
        let mut total = 0;
        loop {
            let n = self
                .store
                .delete_audit_events_before(before, PRUNE_BATCH)
                .await?;
            total += n;
            if n < PRUNE_BATCH as u64 {
                return Ok(total);
            }
        }
    }
}
