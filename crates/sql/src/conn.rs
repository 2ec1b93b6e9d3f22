//! What a backend gives the shared SQL: a connection that runs a statement
//! with parameters and hands back rows of plain values.

use std::sync::Arc;

use async_trait::async_trait;
use latchkey_core::dump::{Cell, Kind};
use latchkey_core::store::StoreError;

/// A statement parameter. NULLs keep their type: PostgreSQL needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Int(Option<i64>),
    Text(Option<String>),
    Bool(Option<bool>),
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(Some(v))
    }
}
impl From<Option<i64>> for Value {
    fn from(v: Option<i64>) -> Self {
        Value::Int(v)
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Bool(Some(v))
    }
}
impl From<Option<bool>> for Value {
    fn from(v: Option<bool>) -> Self {
        Value::Bool(v)
    }
}
impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(Some(v))
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(Some(v.to_owned()))
    }
}
impl From<&String> for Value {
    fn from(v: &String) -> Self {
        Value::Text(Some(v.clone()))
    }
}
impl From<Option<String>> for Value {
    fn from(v: Option<String>) -> Self {
        Value::Text(v)
    }
}
impl From<Option<&str>> for Value {
    fn from(v: Option<&str>) -> Self {
        Value::Text(v.map(str::to_owned))
    }
}
impl From<&Option<String>> for Value {
    fn from(v: &Option<String>) -> Self {
        Value::Text(v.clone())
    }
}

impl Value {
    /// A cell of `kind` as a parameter (NULL typed by the column).
    pub fn from_cell(cell: &Cell, kind: Kind) -> Self {
        match (cell, kind) {
            (Cell::Int(v), _) => Value::Int(Some(*v)),
            (Cell::Text(v), _) => Value::Text(Some(v.clone())),
            (Cell::Bool(v), _) => Value::Bool(Some(*v)),
            (Cell::Null, Kind::Int) => Value::Int(None),
            (Cell::Null, Kind::Text) => Value::Text(None),
            (Cell::Null, Kind::Bool) => Value::Bool(None),
        }
    }
}

/// Parameters `$1`, `$2`, … in order: `params![id, name]`.
#[macro_export]
macro_rules! params {
    ($($v:expr),* $(,)?) => {
        [$($crate::Value::from($v)),*]
    };
}

/// One row: its statement's column names (shared by every row of a
/// result) and its values.
#[derive(Debug, Clone)]
pub struct Row {
    names: Arc<[Box<str>]>,
    values: Vec<Cell>,
}

/// A stored value latchkey cannot read: a bug or a corrupt database.
pub fn invalid(message: String) -> StoreError {
    StoreError::internal(message)
}

impl Row {
    /// A row of `values` named by `names` (in the same order).
    pub fn new(names: Arc<[Box<str>]>, values: Vec<Cell>) -> Self {
        Self { names, values }
    }

    fn index(&self, col: &str) -> Result<usize, StoreError> {
        self.names
            .iter()
            .position(|n| &**n == col)
            .filter(|i| *i < self.values.len())
            .ok_or_else(|| invalid(format!("no column {col} in the result")))
    }

    fn cell(&self, col: &str) -> Result<&Cell, StoreError> {
        let i = self.index(col)?;
        self.values
            .get(i)
            .ok_or_else(|| invalid(format!("no column {col} in the result")))
    }

    pub fn opt_int(&self, col: &str) -> Result<Option<i64>, StoreError> {
        match self.cell(col)? {
            Cell::Null => Ok(None),
            Cell::Int(v) => Ok(Some(*v)),
            Cell::Bool(b) => Ok(Some(i64::from(*b))),
            Cell::Text(_) => Err(invalid(format!(
                "column {col}: text where a number was expected"
            ))),
        }
    }

    pub fn int(&self, col: &str) -> Result<i64, StoreError> {
        self.opt_int(col)?
            .ok_or_else(|| invalid(format!("column {col} is NULL")))
    }

    /// Text is taken out of the row, leaving NULL: each column is decoded
    /// once, so no string is copied twice (and a second read of the same
    /// column cannot pass for a value).
    pub fn opt_text(&mut self, col: &str) -> Result<Option<String>, StoreError> {
        let i = self.index(col)?;
        match self.values.get_mut(i) {
            Some(Cell::Null) => Ok(None),
            Some(cell @ Cell::Text(_)) => match std::mem::replace(cell, Cell::Null) {
                Cell::Text(v) => Ok(Some(v)),
                _ => Ok(None),
            },
            _ => Err(invalid(format!(
                "column {col}: a number where text was expected"
            ))),
        }
    }

    pub fn text(&mut self, col: &str) -> Result<String, StoreError> {
        self.opt_text(col)?
            .ok_or_else(|| invalid(format!("column {col} is NULL")))
    }

    /// Booleans are integers 0 and 1 on SQLite.
    pub fn opt_bool(&self, col: &str) -> Result<Option<bool>, StoreError> {
        match self.cell(col)? {
            Cell::Null => Ok(None),
            Cell::Bool(b) => Ok(Some(*b)),
            Cell::Int(v) => Ok(Some(*v != 0)),
            Cell::Text(_) => Err(invalid(format!(
                "column {col}: text where a boolean was expected"
            ))),
        }
    }

    pub fn bool(&self, col: &str) -> Result<bool, StoreError> {
        self.opt_bool(col)?
            .ok_or_else(|| invalid(format!("column {col} is NULL")))
    }

    /// The first column as a number (for `SELECT COUNT(*)` and the like).
    pub fn first_int(&self) -> Result<Option<i64>, StoreError> {
        match self.values.first() {
            Some(Cell::Int(v)) => Ok(Some(*v)),
            Some(Cell::Bool(b)) => Ok(Some(i64::from(*b))),
            Some(Cell::Null) => Ok(None),
            _ => Err(invalid("the first column is not a number".to_owned())),
        }
    }

    /// Every column as a cell of the kind `columns` gives it, in order (for
    /// `db copy`).
    pub fn cells(self, columns: &[(&str, Kind)]) -> Result<Vec<Cell>, StoreError> {
        if self.values.len() != columns.len() {
            return Err(invalid(
                "a copied row has the wrong number of columns".to_owned(),
            ));
        }
        self.values
            .into_iter()
            .zip(columns)
            .map(|(cell, (name, kind))| match (cell, kind) {
                (Cell::Int(v), Kind::Bool) => Ok(Cell::Bool(v != 0)),
                (c @ Cell::Null, _)
                | (c @ Cell::Int(_), Kind::Int)
                | (c @ Cell::Text(_), Kind::Text)
                | (c @ Cell::Bool(_), Kind::Bool) => Ok(c),
                (_, _) => Err(invalid(format!(
                    "column {name} holds a value of another kind"
                ))),
            })
            .collect()
    }
}

/// A connection (or a transaction on one) of some backend. Statements use
/// `$1`, `$2`, … for their parameters; each backend binds parameter `$N`
/// to `params[N - 1]` wherever it appears. Errors are mapped to
/// [`StoreError`] here, once, by the backend.
#[async_trait]
pub trait Conn: Send {
    /// Every row `sql` gives.
    async fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>, StoreError>;

    /// Run `sql`; how many rows it changed.
    async fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, StoreError>;
}

/// The first row of `sql`, if any.
pub async fn query_opt(
    c: &mut dyn Conn,
    sql: &str,
    params: &[Value],
) -> Result<Option<Row>, StoreError> {
    Ok(c.query(sql, params).await?.into_iter().next())
}

/// Lock row `id` of `table` as rows about to reference it would (`lock`:
/// the dialect's `key_share`), or `Gone` if it is not there.
pub async fn lock_referenced(
    c: &mut dyn Conn,
    table: &str,
    id: i64,
    lock: &str,
) -> Result<(), StoreError> {
    let sql = format!("SELECT id FROM {table} WHERE id = $1{lock}");
    match query_opt(c, &sql, &[Value::from(id)]).await? {
        Some(_) => Ok(()),
        None => Err(StoreError::Gone),
    }
}

/// The row `sql` must give (an `INSERT … RETURNING`, a `COUNT(*)`).
pub async fn query_one(c: &mut dyn Conn, sql: &str, params: &[Value]) -> Result<Row, StoreError> {
    query_opt(c, sql, params)
        .await?
        .ok_or_else(|| invalid(format!("no row from a statement that must give one: {sql}")))
}

/// Every row of `sql`, decoded.
pub async fn query_as<T>(
    c: &mut dyn Conn,
    sql: &str,
    params: &[Value],
    decode: impl Fn(&mut Row) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    c.query(sql, params)
        .await?
        .into_iter()
        .map(|mut row| decode(&mut row))
        .collect()
}

/// The first row of `sql` decoded, if any.
pub async fn query_opt_as<T>(
    c: &mut dyn Conn,
    sql: &str,
    params: &[Value],
    decode: impl Fn(&mut Row) -> Result<T, StoreError>,
) -> Result<Option<T>, StoreError> {
    query_opt(c, sql, params)
        .await?
        .map(|mut row| decode(&mut row))
        .transpose()
}

/// A count (`SELECT COUNT(*) …`) as an unsigned number.
pub async fn count(c: &mut dyn Conn, sql: &str, params: &[Value]) -> Result<u64, StoreError> {
    let n = query_one(c, sql, params).await?.first_int()?.unwrap_or(0);
    Ok(u64::try_from(n).unwrap_or(0))
}
