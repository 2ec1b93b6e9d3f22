//! Moving a whole database between backends (`latchkey db copy`): the
//! canonical list of tables and columns, rows as backend-neutral cells,
//! and the copy itself, verified by row counts.

use crate::error::StoreError;

/// How a column's values are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Int,
    Text,
    Bool,
}

/// One table of the schema; the first column is its key (unique, ordered).
#[derive(Debug)]
pub struct TableSpec {
    pub name: &'static str,
    pub columns: &'static [(&'static str, Kind)],
}

/// One value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cell {
    Null,
    Int(i64),
    Text(String),
    Bool(bool),
}

use Kind::{Bool, Int, Text};

/// The tables that hold no data and are not copied, with their columns:
/// `outside_changes` is a generation the command line moves for a running
/// server's caches (schema 12); a copy starts it afresh.
pub const NOT_COPIED: &[(&str, &[&str])] = &[
    ("outside_changes", &["id", "generation"]),
    // Kept by a trigger from the applications themselves (schema 16, per
    // block of ids since 17), so the copy's inserts count themselves; and
    // the generation of its folds (schema 20), which a copy starts afresh.
    (
        "instance_application_counts",
        &["id", "delta", "block_start", "folded"],
    ),
    ("instance_application_count_folds", &["id", "generation"]),
];

/// Every table, parents before children.
pub const TABLES: &[TableSpec] = &[
    TableSpec {
        name: "users",
        columns: &[
            ("id", Int),
            ("username", Text),
            ("email", Text),
            ("name", Text),
            ("password_digest", Text),
            ("admin", Bool),
            ("state", Text),
            ("created_at", Int),
            ("external", Bool),
            ("updated_at", Int),
            ("profile", Text),
            ("avatar", Text),
            ("rehashed_from", Text),
        ],
    },
    TableSpec {
        name: "user_avatars",
        columns: &[("user_id", Int), ("content_type", Text), ("data", Text)],
    },
    TableSpec {
        name: "personal_access_tokens",
        columns: &[
            ("id", Int),
            ("user_id", Int),
            ("name", Text),
            ("token_digest", Text),
            ("scopes", Text),
            ("expires_at", Text),
            ("revoked", Bool),
            ("created_at", Int),
            ("last_used_at", Int),
            ("rehashed_from", Text),
        ],
    },
    // Parents before their subgroups: a parent's id is always smaller.
    TableSpec {
        name: "groups",
        columns: &[
            ("id", Int),
            ("parent_id", Int),
            ("name", Text),
            ("path", Text),
            ("full_path", Text),
            ("full_name", Text),
            ("description", Text),
            ("visibility", Text),
            ("created_at", Int),
            ("updated_at", Int),
            ("avatar", Text),
        ],
    },
    TableSpec {
        name: "group_avatars",
        columns: &[("group_id", Int), ("content_type", Text), ("data", Text)],
    },
    TableSpec {
        name: "group_members",
        columns: &[
            ("id", Int),
            ("group_id", Int),
            ("user_id", Int),
            ("access_level", Int),
            ("expires_at", Text),
            ("created_by", Int),
            ("created_at", Int),
            ("updated_at", Int),
        ],
    },
    TableSpec {
        name: "oauth_applications",
        columns: &[
            ("id", Int),
            ("uid", Text),
            ("name", Text),
            ("secret_digest", Text),
            ("redirect_uri", Text),
            ("scopes", Text),
            ("confidential", Bool),
            ("trusted", Bool),
            ("owner_id", Int),
            ("created_at", Int),
            ("updated_at", Int),
            ("dynamic", Bool),
            ("registration_token_digest", Text),
            ("grant_types", Text),
            ("group_id", Int),
        ],
    },
    TableSpec {
        name: "application_secrets",
        columns: &[
            ("id", Int),
            ("application_id", Int),
            ("digest", Text),
            ("hint", Text),
            ("created_at", Int),
            ("expires_at", Int),
            ("last_used_at", Int),
            ("rehashed_from", Text),
        ],
    },
    TableSpec {
        name: "oauth_access_grants",
        columns: &[
            ("id", Int),
            ("application_id", Int),
            ("user_id", Int),
            ("code_digest", Text),
            ("redirect_uri", Text),
            ("scopes", Text),
            ("code_challenge", Text),
            ("code_challenge_method", Text),
            ("nonce", Text),
            ("created_at", Int),
            ("expires_at", Int),
            ("redeemed_at", Int),
            ("auth_time", Int),
        ],
    },
    TableSpec {
        name: "oauth_access_tokens",
        columns: &[
            ("id", Int),
            ("application_id", Int),
            ("user_id", Int),
            ("token_digest", Text),
            ("refresh_digest", Text),
            ("scopes", Text),
            ("created_at", Int),
            ("expires_at", Int),
            ("revoked_at", Int),
            ("refreshed_at", Int),
            ("family", Text),
            ("previous_token_id", Int),
            ("grant_id", Int),
            ("auth_time", Int),
        ],
    },
    TableSpec {
        name: "sessions",
        columns: &[
            ("digest", Text),
            ("user_id", Int),
            ("created_at", Int),
            ("expires_at", Int),
            ("ip", Text),
            ("user_agent", Text),
        ],
    },
    TableSpec {
        name: "admin_mode_sessions",
        columns: &[("session_digest", Text), ("expires_at", Int)],
    },
    TableSpec {
        name: "login_throttles",
        columns: &[("key", Text), ("failures", Int), ("window_start", Int)],
    },
    TableSpec {
        name: "signing_keys",
        columns: &[
            ("id", Int),
            ("kid", Text),
            ("algorithm", Text),
            ("private_pem", Text),
            ("public_n", Text),
            ("public_e", Text),
            ("created_at", Int),
            ("retired_at", Int),
        ],
    },
    TableSpec {
        name: "device_grants",
        columns: &[
            ("id", Int),
            ("application_id", Int),
            ("device_code_digest", Text),
            ("user_code", Text),
            ("scopes", Text),
            ("created_at", Int),
            ("expires_at", Int),
            ("last_polled_at", Int),
            ("user_id", Int),
            ("status", Text),
            ("auth_time", Int),
            ("redeemed_at", Int),
        ],
    },
    TableSpec {
        name: "audit_events",
        columns: &[
            ("id", Int),
            ("created_at", Int),
            ("author_id", Int),
            ("author_name", Text),
            ("author_email", Text),
            ("entity_type", Text),
            ("entity_id", Int),
            ("entity_path", Text),
            ("event_name", Text),
            ("target_type", Text),
            ("target_id", Int),
            ("target_details", Text),
            ("ip_address", Text),
            ("request_id", Text),
            ("details", Text),
        ],
    },
];

/// Rows read and written per batch.
pub const COPY_BATCH: i64 = 1000;

#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("the target database is not empty: table {0} has {1} rows")]
    TargetNotEmpty(&'static str, u64),
    #[error("table {table}: copied {copied} rows but the target has {found}")]
    CountMismatch {
        table: &'static str,
        copied: u64,
        found: u64,
    },
    #[error("table {table}: the source has {source_rows} rows, {copied} were copied (did it change during the copy?)")]
    SourceChanged {
        table: &'static str,
        source_rows: u64,
        copied: u64,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Copy every row of every table from `from` to the empty `to`, keeping
/// ids, then check that each table holds as many rows on both sides.
/// Returns the row count of each table.
pub async fn copy<F, T>(
    from: &F,
    to: &T,
    mut progress: impl FnMut(&'static str, u64),
) -> Result<Vec<(&'static str, u64)>, CopyError>
where
    F: TransferStore + ?Sized,
    T: TransferStore + ?Sized,
{
    for table in TABLES {
        let n = to.count_rows(table).await?;
        if n > 0 {
            return Err(CopyError::TargetNotEmpty(table.name, n));
        }
    }
    let mut counts = Vec::new();
    for table in TABLES {
        let mut copied: u64 = 0;
        let mut after: Option<Cell> = None;
        loop {
            let rows = from.export_rows(table, after.as_ref(), COPY_BATCH).await?;
            if rows.is_empty() {
                break;
            }
            to.import_rows(table, &rows).await?;
            copied += rows.len() as u64;
            progress(table.name, copied);
            let full = rows.len() as i64 == COPY_BATCH;
            after = rows.last().and_then(|r| r.first().cloned());
            if !full {
                break;
            }
        }
        let source_rows = from.count_rows(table).await?;
        let found = to.count_rows(table).await?;
        if found != copied {
            return Err(CopyError::CountMismatch {
                table: table.name,
                copied,
                found,
            });
        }
        if source_rows != copied {
            return Err(CopyError::SourceChanged {
                table: table.name,
                source_rows,
                copied,
            });
        }
        counts.push((table.name, copied));
    }
    to.finish_import().await?;
    Ok(counts)
}

/// Moving every row between backends (`latchkey db copy`). What the storage backends implement (see
/// [`crate::store::Store`]).
#[async_trait::async_trait]
pub trait TransferStore: Send + Sync {
    /// Up to `limit` rows of `table`, ordered by its first column, after `after`.
    async fn export_rows(
        &self,
        table: &TableSpec,
        after: Option<&Cell>,
        limit: i64,
    ) -> Result<Vec<Vec<Cell>>, StoreError>;

    /// Insert rows as they are (ids included), in one transaction.
    async fn import_rows(&self, table: &TableSpec, rows: &[Vec<Cell>]) -> Result<(), StoreError>;

    async fn count_rows(&self, table: &TableSpec) -> Result<u64, StoreError>;

    /// After an import: make new ids continue after the imported ones.
    async fn finish_import(&self) -> Result<(), StoreError>;
}
