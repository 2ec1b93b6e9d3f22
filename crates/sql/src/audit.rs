//! The audit trail: its statements and store methods. Events are written
//! only inside a unit of work (see `transaction`), with their change.

use async_trait::async_trait;
use latchkey_core::audit::{
    decode_details, encode_details, AuditEvent, AuditFilter, AuditStore, Keyset, NewAuditEvent,
};
use latchkey_core::pagination::{PageRequest, MAX_PER_PAGE};
use latchkey_core::store::{StoreError, COUNT_CAP};

use crate::backend::{Access, Backend, SqlStore};
use crate::conn::{count, invalid, query_as, query_one, Conn, Row, Value};
use crate::filter::Where;
use crate::params;

macro_rules! event_columns {
    () => {
        "id, created_at, author_id, author_name, author_email, entity_type, entity_id, \
         entity_path, event_name, target_type, target_id, target_details, ip_address, \
         request_id, details"
    };
}

/// The insert of an event, its values from a `SELECT` of the given
/// expressions (`$created` … `$path`, then `$rest`: event name to details)
/// and `$from` (a `FROM` clause, or nothing). The author's name and email
/// are theirs at the time, if they exist (else the name given); a user
/// entity's path is their username unless one is given, a group entity's
/// its full path.
macro_rules! insert_event {
    ($created:literal, $author:literal, $name:literal, $kind:literal, $entity:literal,
     $path:literal, $rest:literal, $from:literal) => {
        concat!(
            "INSERT INTO audit_events
               (created_at, author_id, author_name, author_email, entity_type, entity_id,
                entity_path, event_name, target_type, target_id, target_details, ip_address,
                request_id, details)
             SELECT ",
            $created,
            ", ",
            $author,
            ", COALESCE((SELECT name FROM users WHERE id = ",
            $author,
            "), ",
            $name,
            "),
             (SELECT email FROM users WHERE id = ",
            $author,
            "), ",
            $kind,
            ", ",
            $entity,
            ",
             COALESCE(",
            $path,
            ", (SELECT username FROM users WHERE id = ",
            $entity,
            " AND ",
            $kind,
            " = 'User'),
                      (SELECT full_path FROM groups WHERE id = ",
            $entity,
            " AND ",
            $kind,
            " = 'Group')), ",
            $rest,
            " ",
            $from
        )
    };
}
pub(crate) use insert_event;

const INSERT: &str = concat!(
    insert_event!(
        "$1",
        "$2",
        "$3",
        "$4",
        "$5",
        "$6",
        "$7, $8, $13, $9, $10, $11, $12",
        ""
    ),
    " RETURNING ",
    event_columns!()
);
const SELECT: &str = concat!("SELECT ", event_columns!(), " FROM audit_events e");
const FIND: &str = concat!(
    "SELECT ",
    event_columns!(),
    " FROM audit_events WHERE id = $1"
);
/// The oldest `$2` events before `$1`.
const PRUNE: &str = "DELETE FROM audit_events WHERE id IN
       (SELECT id FROM audit_events WHERE created_at < $1 ORDER BY id LIMIT $2)";

fn decode(row: &mut Row) -> Result<AuditEvent, StoreError> {
    let details = row.text("details")?;
    let Some(details) = decode_details(&details) else {
        return Err(invalid(
            "an audit event's details are not a JSON object".to_owned(),
        ));
    };
    Ok(AuditEvent {
        id: row.int("id")?,
        created_at: row.int("created_at")?,
        author_id: row.int("author_id")?,
        author_name: row.text("author_name")?,
        author_email: row.opt_text("author_email")?,
        entity_type: row.text("entity_type")?,
        entity_id: row.int("entity_id")?,
        entity_path: row.opt_text("entity_path")?,
        event_name: row.text("event_name")?,
        target_type: row.opt_text("target_type")?,
        target_id: row.opt_int("target_id")?,
        target_details: row.opt_text("target_details")?,
        ip_address: row.opt_text("ip_address")?,
        request_id: row.opt_text("request_id")?,
        details,
    })
}

/// Record `e`; the event as stored.
pub(crate) async fn insert(c: &mut dyn Conn, e: &NewAuditEvent) -> Result<AuditEvent, StoreError> {
    let mut params = event_params(e);
    params.push(Value::from(e.target_id));
    decode(&mut query_one(c, INSERT, &params).await?)
}

/// `e`'s values but its target id, in the order of [`insert_event`]'s
/// arguments: twelve parameters.
pub(crate) fn event_params(e: &NewAuditEvent) -> Vec<Value> {
    Vec::from(params![
        e.created_at,
        e.author_id,
        &e.author_name,
        e.entity.kind.as_str(),
        e.entity.id,
        &e.entity.path,
        e.event_name,
        e.target_type,
        &e.target_details,
        &e.ip_address,
        &e.request_id,
        encode_details(&e.details),
    ])
}

/// `e` as stored with `id` and `target_id`, and with what the database
/// filled in (see [`insert_event`]): the author's name and email, the
/// entity's path.
pub(crate) fn stored(
    e: NewAuditEvent,
    id: i64,
    target_id: Option<i64>,
    author_name: String,
    author_email: Option<String>,
    entity_path: Option<String>,
) -> AuditEvent {
    AuditEvent {
        id,
        created_at: e.created_at,
        author_id: e.author_id,
        author_name,
        author_email,
        entity_type: e.entity.kind.as_str().to_owned(),
        entity_id: e.entity.id,
        entity_path,
        event_name: e.event_name.to_owned(),
        target_type: e.target_type.map(str::to_owned),
        target_id,
        target_details: e.target_details,
        ip_address: e.ip_address,
        request_id: e.request_id,
        details: e.details,
    }
}

/// The WHERE clause of `filter` (with `extra` conditions), its parameters
/// numbered from 1.
fn filtered(filter: &AuditFilter, extra: &[(&str, Value)]) -> (String, Vec<Value>) {
    let mut w = Where::default();
    if let Some(after) = filter.created_after {
        w.add("e.created_at >= ?", after);
    }
    if let Some(before) = filter.created_before {
        w.add("e.created_at <= ?", before);
    }
    if let Some(kind) = filter.entity_type {
        w.add("e.entity_type = ?", kind.as_str());
    }
    if let Some(id) = filter.entity_id {
        w.add("e.entity_id = ?", id);
    }
    for (condition, value) in extra {
        w.add(condition, value.clone());
    }
    (w.clause(), w.params)
}

#[async_trait]
impl<B: Backend> AuditStore for SqlStore<B> {
    async fn list_audit_events(
        &self,
        filter: &AuditFilter,
        page: PageRequest,
    ) -> Result<(Vec<AuditEvent>, u64), StoreError> {
        let (clause, mut params) = filtered(filter, &[]);
        let count_sql = format!(
            "SELECT COUNT(*) FROM (SELECT 1 FROM audit_events e{clause} LIMIT {}) AS capped",
            COUNT_CAP + 1
        );
        let n = params.len();
        let page_sql = format!(
            "{SELECT}{clause} ORDER BY e.id DESC LIMIT ${} OFFSET ${}",
            n + 1,
            n + 2
        );
        let access = Access::Read {
            bounded: crate::applications::bounded(page),
            snapshot: true,
            ordered: false,
        };
        self.run(access, move |c| {
            Box::pin(async move {
                let total = count(c, &count_sql, &params).await?;
                params.extend(params![page.limit(), page.offset()]);
                Ok((query_as(c, &page_sql, &params, decode).await?, total))
            })
        })
        .await
    }

    async fn audit_events_keyset(
        &self,
        filter: &AuditFilter,
        keyset: Keyset,
    ) -> Result<Vec<AuditEvent>, StoreError> {
        let (bound, order) = if keyset.ascending {
            ("e.id > ?", "ASC")
        } else {
            ("e.id < ?", "DESC")
        };
        let extra: Vec<(&str, Value)> = keyset
            .from
            .map(|id| (bound, id.into()))
            .into_iter()
            .collect();
        let (clause, mut params) = filtered(filter, &extra);
        let sql = format!(
            "{SELECT}{clause} ORDER BY e.id {order} LIMIT ${}",
            params.len() + 1
        );
        params.push(keyset.limit.into());
        // A page and the one row that says whether another follows.
        let access = if keyset.limit <= MAX_PER_PAGE as i64 + 1 {
            Access::POINT
        } else {
            Access::SCAN
        };
        self.run(access, move |c| {
            Box::pin(async move { query_as(c, &sql, &params, decode).await })
        })
        .await
    }

    async fn find_audit_event(&self, id: i64) -> Result<Option<AuditEvent>, StoreError> {
        self.read_opt(FIND, params![id], decode).await
    }

    async fn delete_audit_events_before(&self, before: i64, limit: i64) -> Result<u64, StoreError> {
        self.write_one(PRUNE, params![before, limit]).await
    }
}
