//! latchkey's embedded storage: SQLite through rusqlite.
//!
//! WAL journal, `synchronous = FULL` (an acknowledged write survives a
//! crash of the process or the machine), foreign keys on, a busy timeout.
//! One connection on a thread of its own runs every write, with group
//! commit (module `writer`); reads use read-only connections, on the asking
//! worker when they are bounded work (module `readers`); one more
//! connection checkpoints the WAL in the background. The statements are
//! latchkey's shared SQL (`latchkey-sql`).

use latchkey_core::metrics::prometheus_client::registry::Registry;
use latchkey_core::metrics::{DatabaseMetrics, PoolGauge};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use latchkey_core::store::StoreError;
use latchkey_sql::{query_opt_as, Access, Backend, Conn, Decode, Dialect, SqlStore, Value, Work};

mod conn;
mod migrate;
mod readers;
mod writer;

pub use migrate::MIGRATOR;

use readers::Readers;
use writer::Writer;

/// How to open the database.
#[derive(Debug, Clone)]
pub struct Options {
    pub url: String,
    /// Read connections kept open for reuse.
    pub read_connections: u32,
    /// How long a statement waits for a lock held by another process.
    pub busy_timeout: Duration,
    /// How long a write waits for room in the writer's queue.
    pub acquire_timeout: Duration,
}

impl Options {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            read_connections: 4,
            busy_timeout: Duration::from_secs(5),
            acquire_timeout: Duration::from_secs(5),
        }
    }
}

/// What a `sqlite:` URL names.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Location {
    File(PathBuf),
    Memory,
}

/// Read a `sqlite:` URL as sqlx read them (`sqlite://path?mode=rwc`,
/// `sqlite:path`, `sqlite::memory:`); `None` if it is not one.
fn location(url: &str) -> Option<Location> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if path == ":memory:" || query.split('&').any(|kv| kv == "mode=memory") {
        return Some(Location::Memory);
    }
    if path.is_empty() {
        return None;
    }
    let decoded = percent_decode(path)?;
    Some(Location::File(PathBuf::from(decoded)))
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The file a `sqlite:` URL opens; `None` for an in-memory database or a
/// URL that is not a valid SQLite one.
pub fn database_file(url: &str) -> Option<PathBuf> {
    match location(url)? {
        Location::File(path) => Some(path),
        Location::Memory => None,
    }
}

/// Create the database file readable by its owner only (0600) when it
/// does not exist yet: it holds the OpenID Connect private keys and every
/// digest. SQLite gives the WAL and shared-memory files the database
/// file's permissions. An existing file is left as it is, with a warning
/// when others may read it.
fn create_private(path: &std::path::Path) -> Result<(), StoreError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            if let Ok(meta) = std::fs::metadata(path) {
                if meta.permissions().mode() & 0o077 != 0 {
                    tracing::warn!(
                        path = %path.display(),
                        mode = format!("{:o}", meta.permissions().mode() & 0o777),
                        "the database file may be read by other users; it holds signing keys \
                         and token digests: chmod 600 it (and its -wal and -shm files)"
                    );
                }
            }
            Ok(())
        }
        Err(e) => {
            let missing = path.parent().filter(|d| {
                !d.as_os_str().is_empty()
                    && matches!(std::fs::metadata(d), Err(e) if e.kind() == std::io::ErrorKind::NotFound)
            });
            let what = match missing {
                Some(dir) => format!(
                    "cannot create the database file {}: the directory {} does not exist",
                    path.display(),
                    dir.display()
                ),
                None => format!("cannot create the database file {}", path.display()),
            };
            Err(StoreError::Unavailable(latchkey_core::error::context(
                what, e,
            )))
        }
    }
}

/// The SQLite backend (see [`Backend`]).
#[derive(Clone)]
pub struct Sqlite {
    writer: Writer,
    metrics: DatabaseMetrics,
    /// `None` for an in-memory database: its reads go to the writer.
    readers: Option<Arc<Readers>>,
    /// Alive while any clone of this backend is; the checkpoint thread
    /// stops when it is gone or closed.
    lifeline: Arc<AtomicBool>,
    /// `PATH-changes` beside a database file (see [`Backend::doorbell`]).
    doorbell: Option<PathBuf>,
}

impl std::fmt::Debug for Sqlite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sqlite")
            .field("in_memory", &self.readers.is_none())
            .finish_non_exhaustive()
    }
}

/// latchkey's store on SQLite.
pub type SqliteStore = SqlStore<Sqlite>;

pub(crate) fn closed() -> StoreError {
    StoreError::unavailable("the database is closed")
}

/// How often the WAL is checkpointed in the background (a checkpoint with
/// nothing to copy costs next to nothing; often enough that the writer's
/// own auto-checkpoint, every `WAL_AUTOCHECKPOINT_PAGES`, finds most of
/// the work done).
const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);

/// Checkpoint the WAL in the background, on a connection of its own, so the
/// copying and the database file's fsync happen beside the writer rather
/// than inside a commit. PASSIVE never blocks readers or the writer: writes
/// go on appending to the WAL while it copies. (The writer's own
/// auto-checkpoint stays on: only a checkpoint that completes lets the WAL
/// restart, and with it off the WAL grew without bound under constant
/// writes.)
fn spawn_checkpoints(path: PathBuf, lifeline: Weak<AtomicBool>) {
    let spawned = std::thread::Builder::new()
        .name("latchkey-checkpoint".to_owned())
        .spawn(move || {
            let conn = match rusqlite::Connection::open(&path) {
                Ok(conn) => conn,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot open the WAL checkpoint connection");
                    return;
                }
            };
            loop {
                std::thread::sleep(CHECKPOINT_EVERY);
                match lifeline.upgrade() {
                    Some(closed) if !closed.load(Ordering::Acquire) => {}
                    _ => break,
                }
                if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                    tracing::debug!(error = %e, "WAL checkpoint failed");
                }
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start WAL checkpoints");
    }
}

/// A name for a new in-memory database, shared by this store's connections.
fn memory_name() -> PathBuf {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    PathBuf::from(format!(
        "file:latchkey-memory-{}-{n}?mode=memory&cache=shared",
        std::process::id()
    ))
}

impl Backend for Sqlite {
    type Options = Options;

    const DIALECT: Dialect = Dialect::Sqlite;

    /// `serve` holds the database file's lock: every write goes through
    /// this process.
    const REMEMBER_COUNTS: bool = true;

    async fn connect(opts: &Options) -> Result<Self, StoreError> {
        let location = location(&opts.url)
            .ok_or_else(|| StoreError::internal(format!("invalid SQLite URL {:?}", opts.url)))?;
        let (path, in_memory) = match location {
            Location::File(path) => {
                create_private(&path)?;
                (path, false)
            }
            Location::Memory => (memory_name(), true),
        };
        let metrics = DatabaseMetrics::default();
        let writer = Writer::start(&writer::Open {
            path: &path,
            in_memory,
            busy_timeout: opts.busy_timeout,
            enqueue_timeout: opts.acquire_timeout,
            metrics: metrics.clone(),
        })?;
        let lifeline = Arc::new(AtomicBool::new(false));
        let doorbell = (!in_memory).then(|| {
            let mut name = path.clone().into_os_string();
            name.push("-changes");
            PathBuf::from(name)
        });
        let readers = (!in_memory).then(|| {
            spawn_checkpoints(path.clone(), Arc::downgrade(&lifeline));
            Arc::new(Readers::new(
                path,
                opts.read_connections as usize,
                opts.busy_timeout,
            ))
        });
        Ok(Self {
            writer,
            metrics,
            readers,
            lifeline,
            doorbell,
        })
    }

    fn doorbell(&self) -> Option<&std::path::Path> {
        self.doorbell.as_deref()
    }

    async fn run<T, F>(&self, access: Access, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut dyn Conn) -> Work<'c, T> + Send + 'static,
    {
        if self.lifeline.load(Ordering::Acquire) {
            return Err(closed());
        }
        match (access, &self.readers) {
            (Access::Write { atomic }, _) => self.writer.write(atomic, work).await,
            // One connection holds an in-memory database: the writer's.
            (Access::Read { .. }, None) => self.writer.write(false, work).await,
            (
                Access::Read {
                    bounded, snapshot, ..
                },
                Some(readers),
            ) => {
                if bounded {
                    readers.read_here(snapshot, work).await
                } else {
                    readers.read_aside(snapshot, work).await
                }
            }
        }
    }

    async fn read_point<T: Send + 'static>(
        &self,
        sql: &'static str,
        params: Vec<Value>,
        decode: Decode<T>,
    ) -> Result<Option<T>, StoreError> {
        match &self.readers {
            Some(readers) if !self.lifeline.load(Ordering::Acquire) => {
                readers.read_point(sql, &params, decode)
            }
            // Closed, or in memory (read through the writer).
            _ => {
                self.run(Access::POINT, move |c| {
                    Box::pin(async move { query_opt_as(c, sql, &params, decode).await })
                })
                .await
            }
        }
    }

    fn register_metrics(&self, registry: &mut Registry) {
        let readers = self.readers.clone();
        let pool = PoolGauge::new(move || readers.as_ref().map(|r| r.state()).unwrap_or_default());
        self.metrics.register(registry, pool, true);
    }

    async fn ping(&self) -> Result<(), StoreError> {
        // Without the writer thread nothing can be written.
        self.writer.check()?;
        self.run(Access::POINT, |c| {
            Box::pin(async move { c.query("SELECT 1", &[]).await.map(drop) })
        })
        .await
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        self.writer.alone(migrate::migrate).await
    }

    async fn schema_version(&self) -> Result<Option<i64>, StoreError> {
        self.writer
            .alone(|conn| migrate::schema_version(conn))
            .await
    }

    async fn close(&self) {
        // Every write queued before this has finished when it answers.
        let _ = self.writer.alone(|_| Ok(())).await;
        self.lifeline.store(true, Ordering::Release);
        if let Some(readers) = &self.readers {
            readers.close();
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use latchkey_core::application::{Application, NewApplication, Ownership};
    use latchkey_core::pagination::PageRequest;
    use latchkey_core::scopes::Scopes;
    use latchkey_core::store::prelude::*;
    use latchkey_core::user::NewUser;

    /// Pages read on the asking worker (shallow) and on a blocking thread
    /// (deep, and keyset batches) give the same rows.
    #[tokio::test]
    async fn shallow_and_deep_reads_agree() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let store = SqliteStore::connect(&Options::new(&url)).await.unwrap();
        store.migrate().await.unwrap();
        let app = store
            .insert_application(new_app(&"a".repeat(64)))
            .await
            .unwrap();
        assert_eq!(
            store
                .find_application(app.id, Ownership::Any)
                .await
                .unwrap(),
            Some(app.clone())
        );
        assert_eq!(
            store
                .find_application(app.id + 1, Ownership::Instance)
                .await
                .unwrap(),
            None
        );
        let (found, secrets) = store
            .find_application_by_uid(&app.application_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found, app);
        assert_eq!(secrets.len(), 1);
        assert_eq!(secrets[0].digest, "d".repeat(64));
        let page = PageRequest {
            page: 1,
            per_page: 20,
        };
        assert_eq!(
            store.list_instance_applications(page).await.unwrap(),
            (vec![app.clone()], 1)
        );
        assert_eq!(
            store.instance_applications_after(0, 20).await.unwrap(),
            vec![app.clone()]
        );
        assert_eq!(
            store.instance_applications_after(0, 500).await.unwrap(),
            vec![app.clone()],
            "a streaming batch reads on a blocking thread"
        );
        let deep = PageRequest {
            page: 1_000,
            per_page: 20,
        };
        assert_eq!(
            store.list_instance_applications(deep).await.unwrap(),
            (vec![], 1)
        );
    }

    fn new_app(uid: &str) -> NewApplication {
        NewApplication {
            application_id: uid.to_owned(),
            secret_digest: "d".repeat(64),
            secret_hint: String::new(),
            name: uid.to_owned(),
            redirect_uri: "https://x/cb".to_owned(),
            scopes: Scopes::from_stored("api"),
            confidential: true,
            owner_id: None,
            group_id: None,
            created_at: 1,
            dynamic: false,
            registration_token_digest: None,
            grant_types: None,
        }
    }

    /// The remembered count follows every create and delete at once.
    #[tokio::test]
    async fn page_totals_follow_creates_and_deletes() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("c.db").display());
        let store = SqliteStore::connect(&Options::new(&url)).await.unwrap();
        store.migrate().await.unwrap();
        let page = PageRequest {
            page: 1,
            per_page: 20,
        };
        let deep = PageRequest {
            page: 1_000,
            per_page: 20,
        };
        let total = |s: &SqliteStore, p| {
            let s = s.clone();
            async move { s.list_instance_applications(p).await.unwrap().1 }
        };
        assert_eq!(total(&store, page).await, 0);
        let a = store.insert_application(new_app("a")).await.unwrap();
        assert_eq!(total(&store, page).await, 1);
        assert_eq!(total(&store, deep).await, 1, "the pool path agrees");
        store.insert_application(new_app("b")).await.unwrap();
        assert_eq!(total(&store, deep).await, 2);
        assert_eq!(total(&store, page).await, 2);
        assert!(store
            .delete_application(a.id, Ownership::Instance)
            .await
            .unwrap());
        assert_eq!(total(&store, page).await, 1);
        assert_eq!(total(&store, deep).await, 1);
    }

    /// Many concurrent creates share batches; a conflicting one fails alone,
    /// and other writes (here: users) interleave without busy errors.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn group_commit_fails_only_the_conflicting_write() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("g.db").display());
        let store = std::sync::Arc::new(SqliteStore::connect(&Options::new(&url)).await.unwrap());
        store.migrate().await.unwrap();
        let mut tasks = Vec::new();
        for i in 0..200 {
            let writer = store.clone();
            // uid-7 twice: exactly one of them must fail.
            let uid = if i == 100 {
                "uid-7".to_owned()
            } else {
                format!("uid-{i}")
            };
            tasks.push(tokio::spawn(async move {
                writer.insert_application(new_app(&uid)).await
            }));
            if i % 20 == 0 {
                let store = store.clone();
                tasks.push(tokio::spawn(async move {
                    store
                        .insert_user(NewUser {
                            username: format!("user{i}"),
                            email: format!("user{i}@example.com"),
                            name: "u".to_owned(),
                            password_digest: None,
                            admin: false,
                            created_at: 1,
                            external: false,
                            profile: Default::default(),
                            avatar: None,
                        })
                        .await
                        .map(|_| Application {
                            id: -1,
                            application_id: String::new(),
                            name: String::new(),
                            redirect_uri: String::new(),
                            scopes: Scopes::from_stored("api"),
                            confidential: false,
                            trusted: false,
                            owner_id: None,
                            group_id: None,
                            created_at: 0,
                            dynamic: false,
                            grant_types: None,
                            client_secret_id: None,
                        })
                }));
            }
        }
        let mut conflicts = 0;
        let mut created = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(app) if app.id > 0 => created += 1,
                Ok(_) => {}
                Err(StoreError::Conflict(c)) => {
                    assert_eq!(c, "uid");
                    conflicts += 1;
                }
                Err(e) => panic!("unexpected error: {e}"),
            }
        }
        assert_eq!((created, conflicts), (199, 1));
        let (apps, total) = store
            .list_instance_applications(PageRequest {
                page: 1,
                per_page: 100,
            })
            .await
            .unwrap();
        assert_eq!((apps.len(), total), (100, 199));
    }

    #[test]
    fn database_files() {
        use std::path::PathBuf;
        let file = |p: &str| Some(PathBuf::from(p));
        assert_eq!(
            database_file("sqlite://latchkey.db?mode=rwc"),
            file("latchkey.db")
        );
        assert_eq!(
            database_file("sqlite:///var/lib/l.db"),
            file("/var/lib/l.db")
        );
        assert_eq!(database_file("sqlite:l.db"), file("l.db"));
        assert_eq!(database_file("sqlite::memory:"), None);
        assert_eq!(database_file("sqlite://x?mode=memory&cache=shared"), None);
        assert_eq!(database_file("postgres://h/db"), None);
    }

    #[tokio::test]
    async fn in_memory_databases_read_through_the_pool() {
        let store = SqliteStore::connect(&Options::new("sqlite::memory:"))
            .await
            .unwrap();
        assert!(store.backend().readers.is_none());
        store.migrate().await.unwrap();
        let app = store
            .insert_application(new_app(&"m".repeat(64)))
            .await
            .unwrap();
        assert_eq!(
            store
                .find_application(app.id, Ownership::Any)
                .await
                .unwrap(),
            Some(app),
            "reads of an in-memory database go to its one connection"
        );
    }
}
