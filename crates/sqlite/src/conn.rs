//! The shared SQL on a rusqlite connection, and SQLite's errors in the
//! store's terms.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use latchkey_core::dump::Cell;
use latchkey_core::error::cause;
use latchkey_core::store::StoreError;
use latchkey_sql::{Conn, Row, Value};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, Statement};

/// A connection the shared SQL runs on. Every statement runs at once, on
/// the calling thread: the futures are always ready.
pub(crate) struct LiteConn<'a>(pub(crate) &'a mut Connection);

/// Bind `$N` to `params[N - 1]` wherever it stands. SQLite numbers `$N`
/// parameters by first appearance (they are named, not positional), so
/// binding by position would swap `SET a = $2 WHERE id = $1`: bind by name.
fn bind(stmt: &mut Statement<'_>, params: &[Value]) -> rusqlite::Result<()> {
    for i in 1..=stmt.parameter_count() {
        let n = stmt
            .parameter_name(i)
            .and_then(|name| name.strip_prefix('$'))
            .and_then(|n| n.parse::<usize>().ok())
            .ok_or_else(|| {
                rusqlite::Error::InvalidParameterName(format!("parameter {i} is not $N"))
            })?;
        let value = params
            .get(n.wrapping_sub(1))
            .ok_or(rusqlite::Error::InvalidParameterCount(n, params.len()))?;
        match value {
            Value::Int(v) => stmt.raw_bind_parameter(i, v)?,
            Value::Text(v) => stmt.raw_bind_parameter(i, v.as_deref())?,
            Value::Bool(v) => stmt.raw_bind_parameter(i, v)?,
        }
    }
    Ok(())
}

fn cell(value: ValueRef<'_>, i: usize) -> rusqlite::Result<Cell> {
    Ok(match value {
        ValueRef::Null => Cell::Null,
        ValueRef::Integer(v) => Cell::Int(v),
        ValueRef::Text(t) => Cell::Text(
            std::str::from_utf8(t)
                .map_err(rusqlite::Error::Utf8Error)?
                .to_owned(),
        ),
        ValueRef::Real(_) | ValueRef::Blob(_) => {
            return Err(rusqlite::Error::InvalidColumnType(
                i,
                format!("column {i}"),
                value.data_type(),
            ))
        }
    })
}

thread_local! {
    /// Column names by statement text, read once per thread: a statement's
    /// names are fixed by its text (latchkey never selects `*`), and reading
    /// them cost an allocation per column on every query. Keyed by the
    /// text's address and length, and checked against the text itself.
    static NAMES: RefCell<NameCache> = RefCell::new(HashMap::new());
}

/// Statement text (by address and length) -> the text and its column names.
type NameCache = HashMap<(usize, usize), (Box<str>, Arc<[Box<str>]>)>;

/// Statements whose names are remembered per thread, at most.
const NAMES_KEPT: usize = 512;

fn column_names(stmt: &Statement<'_>, sql: &str) -> Arc<[Box<str>]> {
    let read = || -> Arc<[Box<str>]> { stmt.column_names().into_iter().map(Box::from).collect() };
    let key = (sql.as_ptr() as usize, sql.len());
    NAMES.with(|cache| {
        let Ok(mut cache) = cache.try_borrow_mut() else {
            return read();
        };
        if let Some((text, names)) = cache.get(&key) {
            if **text == *sql {
                return names.clone();
            }
        }
        let names = read();
        if cache.len() >= NAMES_KEPT {
            cache.clear();
        }
        cache.insert(key, (Box::from(sql), names.clone()));
        names
    })
}

/// The first row of `sql`, if any (the rest are not read).
pub(crate) fn query_first(
    conn: &Connection,
    sql: &str,
    params: &[Value],
) -> rusqlite::Result<Option<Row>> {
    let mut stmt = conn.prepare_cached(sql)?;
    bind(&mut stmt, params)?;
    let names = column_names(&stmt, sql);
    let mut rows = stmt.raw_query();
    let Some(row) = rows.next()? else {
        return Ok(None);
    };
    let values = (0..names.len())
        .map(|i| cell(row.get_ref(i)?, i))
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(Some(Row::new(names, values)))
}

/// Every row of `sql`.
pub(crate) fn query(conn: &Connection, sql: &str, params: &[Value]) -> rusqlite::Result<Vec<Row>> {
    let mut stmt = conn.prepare_cached(sql)?;
    bind(&mut stmt, params)?;
    let names = column_names(&stmt, sql);
    let mut rows = stmt.raw_query();
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let values = (0..names.len())
            .map(|i| cell(row.get_ref(i)?, i))
            .collect::<rusqlite::Result<Vec<_>>>()?;
        out.push(Row::new(names.clone(), values));
    }
    Ok(out)
}

/// Run `sql`; how many rows it changed.
pub(crate) fn execute(conn: &Connection, sql: &str, params: &[Value]) -> rusqlite::Result<u64> {
    let mut stmt = conn.prepare_cached(sql)?;
    bind(&mut stmt, params)?;
    Ok(stmt.raw_execute()? as u64)
}

#[async_trait]
impl Conn for LiteConn<'_> {
    async fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>, StoreError> {
        query(self.0, sql, params).map_err(map_err)
    }

    async fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, StoreError> {
        execute(self.0, sql, params).map_err(map_err)
    }
}

/// SQLite's errors in the store's terms.
pub(crate) fn map_err(e: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode;
    match &e {
        rusqlite::Error::SqliteFailure(f, msg) => match f.code {
            ErrorCode::ConstraintViolation
                if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                    || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY =>
            {
                // "UNIQUE constraint failed: oauth_applications.uid"
                let what = msg
                    .as_deref()
                    .and_then(|m| m.rsplit('.').next())
                    .unwrap_or("value");
                StoreError::Conflict(what.to_owned())
            }
            // The parent row was deleted first.
            ErrorCode::ConstraintViolation
                if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY =>
            {
                StoreError::Gone
            }
            // SQLITE_CONSTRAINT_TRIGGER: only the keep-an-administrator
            // triggers raise it (migration 0004).
            ErrorCode::ConstraintViolation if f.extended_code == 1811 => {
                StoreError::LastAdministrator
            }
            ErrorCode::DatabaseBusy
            | ErrorCode::DatabaseLocked
            | ErrorCode::SystemIoFailure
            | ErrorCode::DiskFull
            | ErrorCode::CannotOpen => StoreError::Unavailable(cause(e)),
            _ => StoreError::Internal(cause(e)),
        },
        _ => StoreError::Internal(cause(e)),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use latchkey_sql::params;

    #[test]
    fn parameters_bind_by_number_wherever_they_stand() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (id INTEGER, a TEXT);")
            .unwrap();
        execute(
            &conn,
            "INSERT INTO t (a, id) VALUES ($2, $1)",
            &params![1i64, "x"],
        )
        .unwrap();
        // $2 appears first: SQLite numbers it 1.
        let changed = execute(
            &conn,
            "UPDATE t SET a = $2 WHERE id = $1",
            &params![1i64, "y"],
        );
        assert_eq!(changed.unwrap(), 1);
        let mut rows = query(&conn, "SELECT a FROM t WHERE id = $1", &params![1i64]).unwrap();
        assert_eq!(rows[0].text("a").unwrap(), "y");
        assert!(execute(&conn, "UPDATE t SET a = $3", &params![1i64]).is_err());
        assert!(execute(&conn, "UPDATE t SET a = ?", &params!["z"]).is_err());
    }

    #[test]
    fn remembered_column_names_follow_the_statement_text() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (a INTEGER, b TEXT); INSERT INTO t VALUES (1, 'x');")
            .unwrap();
        // The same buffer holding two different statements in turn.
        let mut sql = String::from("SELECT a AS first FROM t");
        let rows = query(&conn, &sql, &[]).unwrap();
        assert_eq!(rows[0].int("first").unwrap(), 1);
        sql.clear();
        sql.push_str("SELECT b AS other FROM t");
        let mut rows = query(&conn, &sql, &[]).unwrap();
        assert_eq!(rows[0].text("other").unwrap(), "x");
        assert!(rows[0].int("first").is_err());
    }
}
