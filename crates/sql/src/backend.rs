//! What each SQL backend provides (connections, transactions, its dialect's
//! few differences), and [`SqlStore`], the store written once on top.

use std::future::Future;

use futures::future::BoxFuture;
use latchkey_core::store::StoreError;

use crate::app_count::{AppCount, FoldedCount};
use crate::conn::{count, query_as, query_one, query_opt_as, Conn, Row, Value};
use latchkey_core::pagination::PageRequest;

/// Whether the count of instance applications has anything to fold: a
/// delta not yet folded, or a block with two rows (two instances folded
/// at once).
macro_rules! fold_due {
    () => {
        "(EXISTS (SELECT 1 FROM instance_application_counts WHERE NOT folded)
          OR (SELECT COUNT(*) FROM instance_application_counts)
             > (SELECT COUNT(DISTINCT block_start) FROM instance_application_counts))"
    };
}

/// Decodes a row into what a store method returns.
pub type Decode<T> = fn(&mut Row) -> Result<T, StoreError>;

/// A unit of work on a connection, as the shared store hands it to a backend.
pub type Work<'c, T> = BoxFuture<'c, Result<T, StoreError>>;

/// How a unit of work uses the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Reads. `bounded`: a point read or a short page, cheap enough to run
    /// on an async worker (SQLite runs others on a blocking thread).
    /// `snapshot`: every statement sees the same snapshot (a page and its
    /// total agree). `ordered`: the reads walk an index in order where the
    /// backend's planner could choose otherwise (on PostgreSQL, a
    /// transaction that turns sequential and bitmap scans off, see
    /// `BEGIN_ORDERED` there); one statement on SQLite needs nothing.
    Read {
        bounded: bool,
        snapshot: bool,
        ordered: bool,
    },
    /// Writes. `atomic`: several statements that commit together or not at
    /// all; otherwise exactly one statement.
    Write { atomic: bool },
}

impl Access {
    /// A point read.
    pub const POINT: Access = Access::Read {
        bounded: true,
        snapshot: false,
        ordered: false,
    };
    /// A read of unbounded work (a batch, a deep page, a table count).
    pub const SCAN: Access = Access::Read {
        bounded: false,
        snapshot: false,
        ordered: false,
    };
    /// One write statement (or several that need not commit together).
    pub const WRITE: Access = Access::Write { atomic: false };
    /// Several write statements in one transaction.
    pub const TRANSACTION: Access = Access::Write { atomic: true };
}

/// Where the SQL dialects disagree on something latchkey needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    pub const ALL: [Dialect; 2] = [Dialect::Sqlite, Dialect::Postgres];

    /// This dialect's text of a statement made for each (see [`Self::ALL`]).
    /// The statement of this dialect, of two written out (SQLite's first).
    pub fn choose(self, statements: [&'static str; 2]) -> &'static str {
        match self {
            Dialect::Sqlite => statements[0],
            Dialect::Postgres => statements[1],
        }
    }

    pub fn pick(self, statements: &[String; 2]) -> &str {
        match self {
            Dialect::Sqlite => &statements[0],
            Dialect::Postgres => &statements[1],
        }
    }

    /// Case-insensitive equality of a username or email column with a
    /// parameter: ASCII letters fold, nothing else (SQLite's `NOCASE`,
    /// declared on the columns; PostgreSQL's unique indexes are on
    /// `lower(column COLLATE "C")`, and lookups use the same expression).
    pub fn nocase_eq(self, column: &str, param: &str) -> String {
        match self {
            Dialect::Sqlite => format!("{column} = {param}"),
            Dialect::Postgres => {
                format!(r#"lower({column} COLLATE "C") = lower(CAST({param} AS TEXT) COLLATE "C")"#)
            }
        }
    }

    /// SQLite's default `LIKE` (ASCII letters fold), with `\` escaping.
    pub fn nocase_like(self, column: &str, param: &str) -> String {
        match self {
            Dialect::Sqlite => format!(r"{column} LIKE {param} ESCAPE '\'"),
            Dialect::Postgres => format!(
                r#"lower({column} COLLATE "C") LIKE lower(CAST({param} AS TEXT) COLLATE "C") ESCAPE '\'"#
            ),
        }
    }

    /// Statements, run in one transaction, that fold the deltas a trigger
    /// keeps of the count of instance applications (schema 16, per block
    /// of ids since 17) into one row per block, marked `folded`, and give
    /// the folds a new generation (schema 20): a random number, which a
    /// rewound database (a restore, a failover that lost commits) cannot
    /// bring back with other rows as it could a counter's next value. They
    /// write nothing when every row is a folded one and no block has two.
    /// On PostgreSQL, rows inserted meanwhile are not in the statement's
    /// snapshot and stay; two instances folding at once each fold what the
    /// other did not take, and each sets a generation. On SQLite the
    /// writer holds the database: the sums go in after every delta (so
    /// each block's newest row is its sum), then the older rows go, and
    /// the blocks that sum to nothing.
    pub fn fold_instance_count(self) -> &'static [&'static str] {
        match self {
            Dialect::Sqlite => &[
                concat!(
                    "UPDATE instance_application_count_folds SET generation = random()
                     WHERE id = 1 AND ",
                    fold_due!()
                ),
                concat!(
                    "INSERT INTO instance_application_counts (block_start, delta, folded)
                     SELECT block_start, SUM(delta), TRUE FROM instance_application_counts
                     WHERE ",
                    fold_due!(),
                    " GROUP BY block_start"
                ),
                "DELETE FROM instance_application_counts WHERE id NOT IN
                   (SELECT MAX(id) FROM instance_application_counts GROUP BY block_start)",
                "DELETE FROM instance_application_counts WHERE delta = 0",
            ],
            Dialect::Postgres => &[concat!(
                "WITH gone AS (
                   DELETE FROM instance_application_counts WHERE ",
                fold_due!(),
                " RETURNING block_start, delta),
                 folded AS (
                   INSERT INTO instance_application_counts (block_start, delta, folded)
                   SELECT block_start, SUM(delta), TRUE FROM gone GROUP BY block_start
                   HAVING SUM(delta) <> 0)
                 UPDATE instance_application_count_folds
                 SET generation = CAST(floor(random() * 9007199254740991) AS BIGINT)
                 WHERE id = 1 AND EXISTS (SELECT 1 FROM gone)"
            )],
        }
    }

    /// A statement run after a fold that changed rows, outside any
    /// transaction. PostgreSQL keeps a deleted row's tuple until a vacuum,
    /// so the count's table would grow by a row per create and delete until
    /// autovacuum came by (once a minute at best), and the sum every
    /// listing reads would scan them all (1.5 ms after 80,000 creates,
    /// measured, where the sum over the folded rows takes 0.02). And a
    /// deep offset page skips up to a block's entries of the index of
    /// instance applications, without visiting the rows only where the
    /// visibility map says their pages are all-visible: only a vacuum sets
    /// it, and autovacuum comes to a table for its inserts only after a
    /// fifth of its size (200,000 creates on a table of a million), so the
    /// newest pages of the list visited every skipped row (a deep page 1.9x
    /// the small table's first page after 76,000 creates, measured). The
    /// vacuum after a fold reads only the pages written since the last
    /// one. The generation's one row gets a new version at every fold,
    /// which every page reads: without a vacuum, a chain of up to a page of
    /// dead versions to walk. Without `TRUNCATE`: giving emptied pages back
    /// takes a lock that creates hold (a vacuum under a stream of creates
    /// waited 5 s for it); the tables keep their size and reuse them.
    /// `SKIP_LOCKED`: a table another instance is vacuuming is left to it.
    /// SQLite reuses a deleted row's space at once and reads no visibility
    /// map.
    pub fn after_fold(self) -> Option<&'static str> {
        match self {
            Dialect::Sqlite => None,
            Dialect::Postgres => Some(
                "VACUUM (TRUNCATE false, SKIP_LOCKED) instance_application_counts,
                   instance_application_count_folds, oauth_applications",
            ),
        }
    }

    /// Locks a row read in a write transaction until it commits (SQLite's
    /// writer holds the whole database already).
    pub fn for_update(self) -> &'static str {
        match self {
            Dialect::Sqlite => "",
            Dialect::Postgres => " FOR UPDATE",
        }
    }

    /// Locks a row that rows about to be written will reference, as their
    /// foreign keys' checks would (PostgreSQL `FOR KEY SHARE`): taken
    /// first, it orders the unit's locks, and it blocks only the row's
    /// delete or a change of its key.
    pub fn key_share(self) -> &'static str {
        match self {
            Dialect::Sqlite => "",
            Dialect::Postgres => " FOR KEY SHARE",
        }
    }

    /// A statement that holds one name of the namespace usernames and
    /// top-level group paths share (`$1`, any ASCII case) until the
    /// transaction ends, so that a user and a group created at once cannot
    /// both take it (SQLite: its single writer already orders them).
    pub fn lock_name(self) -> Option<&'static str> {
        match self {
            Dialect::Sqlite => None,
            Dialect::Postgres => Some(
                r#"SELECT pg_advisory_xact_lock(7458202, hashtext(lower(CAST($1 AS TEXT) COLLATE "C")))"#,
            ),
        }
    }

    /// A statement that lets one unit of work apply a state file at a time
    /// (instances started together with the same seed wait for each other;
    /// SQLite's single writer already orders them).
    /// PostgreSQL waits as long as the other apply takes (its statement
    /// timeout is lifted for this transaction: applying a large file may
    /// take longer than a request may).
    pub fn lock_state(self) -> &'static [&'static str] {
        match self {
            Dialect::Sqlite => &[],
            Dialect::Postgres => &[
                "SET LOCAL statement_timeout = 0",
                "SELECT pg_advisory_xact_lock(7458203, 0)",
            ],
        }
    }

    /// Locks a row a unit of work reads before it changes it, without
    /// blocking the inserts that merely reference it (PostgreSQL's foreign
    /// key checks take KEY SHARE locks, which FOR UPDATE would wait for).
    pub fn row_lock(self) -> &'static str {
        match self {
            Dialect::Sqlite => "",
            Dialect::Postgres => " FOR NO KEY UPDATE",
        }
    }

    /// A statement that keeps every other writer of `users` out until the
    /// transaction ends (SQLite: its single writer already does).
    /// SHARE ROW EXCLUSIVE conflicts with itself and with every writer
    /// (ROW EXCLUSIVE) but not with readers.
    pub fn lock_users(self) -> Option<&'static str> {
        match self {
            Dialect::Sqlite => None,
            Dialect::Postgres => Some("LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE"),
        }
    }

    /// After `db copy` inserted rows with their ids: what makes new ids
    /// continue after them, for a table with an `id` column. (SQLite's
    /// AUTOINCREMENT tables track the largest id inserted by themselves.)
    pub fn after_import(self, table: &str) -> Option<String> {
        match self {
            Dialect::Sqlite => None,
            Dialect::Postgres => Some(format!(
                "SELECT setval(pg_get_serial_sequence('{table}', 'id'), \
                 COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)"
            )),
        }
    }
}

/// One SQL backend: how it connects, runs units of work and manages its
/// schema. Everything else (the statements, decoding, the store's
/// methods) is written once, in this crate.
pub trait Backend: Clone + Send + Sync + 'static {
    type Options: Send + Sync;

    const DIALECT: Dialect;

    /// Remember the count of instance applications between pages (see
    /// `app_count`): only where every write goes through this process.
    const REMEMBER_COUNTS: bool;

    /// Does [`Backend::announced_changes`] count every committed change
    /// that can make a cached authentication wrong, whoever wrote it (see
    /// `latchkey_core::Store::announces_own_changes`)?
    const ANNOUNCES_CHANGES: bool = false;

    /// Open without migrating.
    fn connect(opts: &Self::Options) -> impl Future<Output = Result<Self, StoreError>> + Send
    where
        Self: Sized;

    /// Run `work` on a connection as `access` says: a write that fails is
    /// undone; an atomic one commits all its statements or none.
    fn run<T, F>(
        &self,
        access: Access,
        work: F,
    ) -> impl Future<Output = Result<T, StoreError>> + Send
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut dyn Conn) -> Work<'c, T> + Send + 'static;

    /// A point read: the first row of `sql` with `params`, decoded, if
    /// any. A backend whose connections answer synchronously (SQLite) runs
    /// it without a unit of work: the hottest reads pay for no boxed future
    /// and no list of rows.
    fn read_point<T: Send + 'static>(
        &self,
        sql: &'static str,
        params: Vec<Value>,
        decode: Decode<T>,
    ) -> impl Future<Output = Result<Option<T>, StoreError>> + Send {
        self.run(Access::POINT, move |c| {
            Box::pin(async move { query_opt_as(c, sql, &params, decode).await })
        })
    }

    /// A cheap round trip, for readiness checks.
    fn ping(&self) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// See [`latchkey_core::Store::known_down`].
    fn known_down(&self) -> bool {
        false
    }

    /// A file beside the database whose length the command line sets to
    /// the generation of outside changes after each change it commits, so
    /// that a server learns of them with one `stat` instead of a database
    /// read per cached lookup (see [`SqlStore::check_outside_changes`]);
    /// `None` where no other process can write (an in-memory database) or
    /// where nothing caches (PostgreSQL).
    fn doorbell(&self) -> Option<&std::path::Path> {
        None
    }

    /// The generation of the changes the database announced (it moves with
    /// each), once every change committed before this call has been heard
    /// (PostgreSQL: triggers notify, and a barrier on the listening
    /// connection); an error while that cannot be known; `None` where the
    /// database announces nothing (SQLite: the server sees every write but
    /// the command line's, which rings the doorbell).
    fn announced_changes(&self) -> impl Future<Output = Option<Result<i64, StoreError>>> + Send {
        async { None }
    }

    /// See [`latchkey_core::Store::register_metrics`].
    fn register_metrics(
        &self,
        _registry: &mut latchkey_core::metrics::prometheus_client::registry::Registry,
    ) {
    }

    /// Apply every pending migration.
    fn migrate(&self) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The newest migration applied, if any.
    fn schema_version(&self) -> impl Future<Output = Result<Option<i64>, StoreError>> + Send;

    fn close(&self) -> impl Future<Output = ()> + Send;
}

/// The store over any [`Backend`].
#[derive(Debug, Clone)]
pub struct SqlStore<B> {
    pub(crate) backend: B,
    pub(crate) app_count: Option<std::sync::Arc<AppCount>>,
    /// PostgreSQL's remembered count, checked by every page that uses it
    /// (see [`crate::app_count::FoldedCount`]).
    pub(crate) folded_count: Option<std::sync::Arc<FoldedCount>>,
    /// Move the stored generation of outside changes with every write (a
    /// process other than the server: see [`SqlStore::announcing_writes`]).
    announce_writes: bool,
    /// The doorbell's length and the stored generation read when it had
    /// that length (a server's view; see [`SqlStore::check_outside_changes`]).
    rung: std::sync::Arc<std::sync::Mutex<Option<Rung>>>,
    /// PostgreSQL's queues of application creates and of OAuth token
    /// inserts, run several to a statement (see [`crate::batch`]).
    pub(crate) create_batches: Option<std::sync::Arc<crate::applications::CreateBatches>>,
    pub(crate) token_batches: Option<std::sync::Arc<crate::oauth::TokenBatches>>,
}

/// The doorbell's length when the generation of outside changes was last
/// read (`None`: no doorbell yet), and that generation.
type Rung = (Option<u64>, i64);

/// Moves the generation of outside changes (schema 12), in the
/// transaction of the change.
const ANNOUNCE_WRITE: &str = "INSERT INTO outside_changes (id, generation) VALUES (1, 1)
    ON CONFLICT (id) DO UPDATE SET generation = outside_changes.generation + 1
    RETURNING generation";
const OUTSIDE_CHANGES: &str = "SELECT generation FROM outside_changes WHERE id = 1";

impl<B: Backend> SqlStore<B> {
    /// Open without migrating.
    pub async fn connect(opts: &B::Options) -> Result<Self, StoreError> {
        Ok(Self::new(B::connect(opts).await?))
    }

    pub fn new(backend: B) -> Self {
        Self {
            backend,
            app_count: B::REMEMBER_COUNTS.then(std::sync::Arc::default),
            folded_count: matches!(B::DIALECT, Dialect::Postgres).then(std::sync::Arc::default),
            announce_writes: false,
            rung: std::sync::Arc::default(),
            create_batches: matches!(B::DIALECT, Dialect::Postgres).then(std::sync::Arc::default),
            token_batches: matches!(B::DIALECT, Dialect::Postgres).then(std::sync::Arc::default),
        }
    }

    /// For every process but the server (the command line): each write also
    /// moves the stored generation of outside changes, in its own
    /// transaction, so that a server caching what passes through it (on
    /// SQLite) sees the change at once (see [`latchkey_core::Store::outside_changes`]).
    /// Only where a server reads it (`REMEMBER_COUNTS`: SQLite); on
    /// PostgreSQL every instance's writes are expected, and one row moved by
    /// every write would serialise them.
    pub fn announcing_writes(mut self) -> Self {
        self.announce_writes = B::REMEMBER_COUNTS;
        self
    }

    /// The stored generation of outside changes where this process caches
    /// (`REMEMBER_COUNTS`: it counts on every write going through it); the
    /// count of applications is forgotten when it moved.
    ///
    /// The doorbell's length is read first (one `stat`): while it has the
    /// length it had at the last database read, that read's generation still
    /// holds, since the command line rings after each commit and before it
    /// returns. Any other length (or a missing doorbell) reads the database.
    pub(crate) async fn check_outside_changes(&self) -> Result<Option<i64>, StoreError> {
        if let Some(announced) = self.backend.announced_changes().await {
            // The count of applications is not remembered there: creates
            // are not announced (see the migration of schema 15).
            return announced.map(Some);
        }
        let (Some(count), Some(doorbell)) = (&self.app_count, self.backend.doorbell()) else {
            return Ok(None);
        };
        let length = std::fs::metadata(doorbell).ok().map(|m| m.len());
        let known = *self
            .rung
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let generation = match known {
            Some((l, generation)) if l == length => generation,
            _ => {
                let generation = match self
                    .read_opt(OUTSIDE_CHANGES, Vec::new(), |r| r.int("generation"))
                    .await
                {
                    Ok(found) => found.unwrap_or(0),
                    Err(e) => {
                        count.invalidate();
                        return Err(e);
                    }
                };
                *self
                    .rung
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) =
                    Some((length, generation));
                generation
            }
        };
        count.outside_changes(generation);
        Ok(Some(generation))
    }

    /// Ring the doorbell with `generation`: its length becomes it, unless a
    /// later change already made it longer. A failure is only logged: a
    /// running server then sees the change when its cache entries expire.
    fn ring(&self, generation: i64) {
        let Some(path) = self.backend.doorbell() else {
            return;
        };
        let rung = || -> std::io::Result<()> {
            use std::os::unix::fs::OpenOptionsExt;
            let file = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .mode(0o600)
                .open(path)?;
            let length = u64::try_from(generation).unwrap_or(0);
            if file.metadata()?.len() < length {
                file.set_len(length)?;
            }
            Ok(())
        };
        if let Err(e) = rung() {
            tracing::warn!(
                path = %path.display(),
                error = %e,
                "cannot ring the doorbell of outside changes: a running server sees this change \
                 only when its token cache's entries expire"
            );
        }
    }

    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// Apply every pending migration.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        self.backend.migrate().await
    }

    /// The newest migration applied, if any.
    pub async fn schema_version(&self) -> Result<Option<i64>, StoreError> {
        self.backend.schema_version().await
    }

    pub async fn close(&self) {
        self.backend.close().await;
    }

    /// Run `work` as `access` says (see [`Backend::run`]).
    pub(crate) async fn run<T, F>(&self, access: Access, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut dyn Conn) -> Work<'c, T> + Send + 'static,
    {
        if !(self.announce_writes && matches!(access, Access::Write { .. })) {
            return self.backend.run(access, work).await;
        }
        // After the work, on its connection: in its transaction when it is
        // atomic (SQLite's group commit holds a single statement's too);
        // the doorbell once it is committed.
        let (out, generation) = self
            .backend
            .run(access, move |c| {
                Box::pin(async move {
                    let out = work(&mut *c).await?;
                    let generation = query_one(c, ANNOUNCE_WRITE, &[]).await?.int("generation")?;
                    Ok((out, generation))
                })
            })
            .await?;
        self.ring(generation);
        Ok(out)
    }

    /// One write statement; how many rows it changed.
    pub(crate) async fn write_one(
        &self,
        sql: &'static str,
        params: impl Into<Vec<Value>>,
    ) -> Result<u64, StoreError> {
        let params = params.into();
        self.run(Access::WRITE, move |c| {
            Box::pin(async move { c.execute(sql, &params).await })
        })
        .await
    }

    /// A point read: the first row of `sql`, decoded, if any.
    pub(crate) async fn read_opt<T: Send + 'static>(
        &self,
        sql: &'static str,
        params: impl Into<Vec<Value>>,
        decode: Decode<T>,
    ) -> Result<Option<T>, StoreError> {
        self.backend.read_point(sql, params.into(), decode).await
    }

    /// Every row of `sql`, decoded.
    pub(crate) async fn read_all<T: Send + 'static>(
        &self,
        access: Access,
        sql: &'static str,
        params: impl Into<Vec<Value>>,
        decode: Decode<T>,
    ) -> Result<Vec<T>, StoreError> {
        let params = params.into();
        self.run(access, move |c| {
            Box::pin(async move { query_as(c, sql, &params, decode).await })
        })
        .await
    }

    /// The row a write gives back (`INSERT … RETURNING`), decoded.
    /// Write when credentials were last used: `touch` (`$1` the id, `$2`
    /// when) for each of `used`, in one transaction; how many changed.
    pub(crate) async fn record_uses(
        &self,
        touch: &'static str,
        mut used: Vec<(i64, i64)>,
    ) -> Result<u64, StoreError> {
        if used.is_empty() {
            return Ok(0);
        }
        // In id order: two instances writing the same credentials lock
        // their rows in the same order, and so never deadlock.
        used.sort_unstable();
        self.run(Access::TRANSACTION, move |c| {
            Box::pin(async move {
                let mut changed = 0;
                for (id, at) in used {
                    changed += c
                        .execute(touch, &[Value::from(id), Value::from(at)])
                        .await?;
                }
                Ok(changed)
            })
        })
        .await
    }

    /// A credential's stored form replaced by latchkey's own (`sql`: `$1`
    /// the id, `$2` the old form, `$3` the new, `$4` the SHA-256 of the old),
    /// if it is still the old one; whether it was.
    pub(crate) async fn rehash(
        &self,
        sql: &'static str,
        id: i64,
        old: &str,
        new: &str,
    ) -> Result<bool, StoreError> {
        let replaced = latchkey_core::secret::digest(old);
        Ok(self
            .write_one(sql, crate::params![id, old, new, replaced])
            .await?
            > 0)
    }

    /// One page of a filtered listing and the listing's total, read in one
    /// snapshot: `count_sql` and `page_sql` take `params`, and `page_sql`
    /// takes the page's LIMIT and OFFSET after them.
    pub(crate) async fn read_counted_page<T: Send + 'static>(
        &self,
        count_sql: String,
        page_sql: String,
        mut params: Vec<Value>,
        page: PageRequest,
        decode: Decode<T>,
    ) -> Result<(Vec<T>, u64), StoreError> {
        let access = Access::Read {
            bounded: false,
            snapshot: true,
            ordered: false,
        };
        self.run(access, move |c| {
            Box::pin(async move {
                let n = count(c, &count_sql, &params).await?;
                params.extend([Value::from(page.limit()), Value::from(page.offset())]);
                Ok((query_as(c, &page_sql, &params, decode).await?, n))
            })
        })
        .await
    }

    pub(crate) async fn write_row<T: Send + 'static>(
        &self,
        sql: &'static str,
        params: impl Into<Vec<Value>>,
        decode: Decode<T>,
    ) -> Result<T, StoreError> {
        let params = params.into();
        self.run(Access::WRITE, move |c| {
            Box::pin(async move { decode(&mut query_one(c, sql, &params).await?) })
        })
        .await
    }

    /// Instance applications were (or may have been) created or deleted.
    pub(crate) fn applications_changed(&self) {
        if let Some(count) = &self.app_count {
            count.invalidate();
        }
    }
}
