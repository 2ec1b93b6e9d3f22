//! Moving every row between backends (`latchkey db copy`).

use async_trait::async_trait;
use latchkey_core::dump::{Cell, Kind, TableSpec, TransferStore, TABLES};
use latchkey_core::store::StoreError;

use crate::backend::{Access, Backend, SqlStore};
use crate::conn::{count, Value};

fn column_list(table: &TableSpec) -> String {
    table
        .columns
        .iter()
        .map(|(c, _)| *c)
        .collect::<Vec<_>>()
        .join(", ")
}

#[async_trait]
impl<B: Backend> TransferStore for SqlStore<B> {
    async fn export_rows(
        &self,
        table: &TableSpec,
        after: Option<&Cell>,
        limit: i64,
    ) -> Result<Vec<Vec<Cell>>, StoreError> {
        let (key, key_kind) = table.columns.first().copied().unwrap_or(("id", Kind::Int));
        let (columns, name) = (column_list(table), table.name);
        let (sql, params) = match after {
            Some(after) => (
                format!("SELECT {columns} FROM {name} WHERE {key} > $1 ORDER BY {key} LIMIT $2"),
                vec![Value::from_cell(after, key_kind), Value::from(limit)],
            ),
            None => (
                format!("SELECT {columns} FROM {name} ORDER BY {key} LIMIT $1"),
                vec![Value::from(limit)],
            ),
        };
        let kinds = table.columns;
        self.run(Access::SCAN, move |c| {
            Box::pin(async move {
                c.query(&sql, &params)
                    .await?
                    .into_iter()
                    .map(|row| row.cells(kinds))
                    .collect()
            })
        })
        .await
    }

    async fn import_rows(&self, table: &TableSpec, rows: &[Vec<Cell>]) -> Result<(), StoreError> {
        let placeholders = (1..=table.columns.len())
            .map(|i| format!("${i}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "INSERT INTO {} ({}) VALUES ({placeholders})",
            table.name,
            column_list(table)
        );
        let rows: Vec<Vec<Value>> = rows
            .iter()
            .map(|row| {
                row.iter()
                    .zip(table.columns)
                    .map(|(cell, (_, kind))| Value::from_cell(cell, *kind))
                    .collect()
            })
            .collect();
        let done = self
            .run(Access::TRANSACTION, move |c| {
                Box::pin(async move {
                    for row in &rows {
                        c.execute(&sql, row).await?;
                    }
                    Ok(())
                })
            })
            .await;
        self.applications_changed();
        done
    }

    async fn count_rows(&self, table: &TableSpec) -> Result<u64, StoreError> {
        let sql = format!("SELECT COUNT(*) FROM {}", table.name);
        self.run(Access::SCAN, move |c| {
            Box::pin(async move { count(c, &sql, &[]).await })
        })
        .await
    }

    async fn finish_import(&self) -> Result<(), StoreError> {
        // Imported rows carry their ids: new ids must continue after them.
        let statements: Vec<String> = TABLES
            .iter()
            .filter(|t| t.columns.first().map(|(c, _)| *c) == Some("id"))
            .filter_map(|t| B::DIALECT.after_import(t.name))
            .collect();
        if statements.is_empty() {
            return Ok(());
        }
        self.run(Access::TRANSACTION, move |c| {
            Box::pin(async move {
                for sql in &statements {
                    c.query(sql, &[]).await?;
                }
                Ok(())
            })
        })
        .await
    }
}
