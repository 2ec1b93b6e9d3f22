use latchkey::config::{FileOnly, GlobalArgs, ServeArgs, ServeSettings, Settings};
use latchkey::startup::{self, Schema};
use latchkey_core::application::ApplicationParams;
use latchkey_core::user::UserInput;
use latchkey_core::Services;
use reqwest::{Client, Response};
use serde_json::Value;
use tempfile::TempDir;

/// Who a request is made as, instead of spelling out headers.
pub trait RequestAs {
    /// Authenticated with a personal access token, as GitLab's clients send
    /// it (`PRIVATE-TOKEN`).
    fn private_token(self, token: impl AsRef<str>) -> Self;

    /// Authenticated with an OAuth access token (`Authorization: Bearer`).
    fn bearer(self, token: impl AsRef<str>) -> Self;
}

impl RequestAs for reqwest::RequestBuilder {
    fn private_token(self, token: impl AsRef<str>) -> Self {
        self.header("PRIVATE-TOKEN", token.as_ref())
    }

    fn bearer(self, token: impl AsRef<str>) -> Self {
        self.bearer_auth(token.as_ref())
    }
}

pub struct TestApp {
    pub base: String,
    pub client: Client,
    pub services: Services,
    /// A token of the admin `root`, scopes `api read_api read_user sudo admin_mode`.
    pub root_token: String,
    pub root_id: i64,
    _dir: TempDir,
    _postgres: Option<PostgresDb>,
}

enum Backend {
    Sqlite,
    Postgres(String),
}

/// `LATCHKEY_TEST_API_BACKEND=postgres` runs this suite on PostgreSQL (at
/// `LATCHKEY_TEST_POSTGRES_URL`), a fresh database per test.
fn backend() -> Backend {
    match std::env::var("LATCHKEY_TEST_API_BACKEND").as_deref() {
        Ok("postgres") => {
            let url = std::env::var("LATCHKEY_TEST_POSTGRES_URL")
                .expect("LATCHKEY_TEST_API_BACKEND=postgres needs LATCHKEY_TEST_POSTGRES_URL");
            Backend::Postgres(url)
        }
        Ok("sqlite") | Err(_) => Backend::Sqlite,
        Ok(other) => panic!("unknown LATCHKEY_TEST_API_BACKEND {other:?}"),
    }
}

/// A database of its own on the test PostgreSQL server, dropped afterwards.
pub struct PostgresDb {
    admin_url: String,
    pub name: String,
    pub url: String,
}

impl PostgresDb {
    pub async fn create(admin_url: &str) -> Self {
        use sqlx::{Connection, Executor};
        let name = format!(
            "latchkey_api_{}",
            latchkey_core::secret::random_hex(8).unwrap()
        );
        let mut admin = sqlx::PgConnection::connect(admin_url)
            .await
            .unwrap_or_else(|e| panic!("LATCHKEY_TEST_POSTGRES_URL is set but unreachable: {e}"));
        admin
            .execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .unwrap();
        let _ = admin.close().await;
        let mut url = url::Url::parse(admin_url).unwrap();
        url.set_path(&format!("/{name}"));
        Self {
            admin_url: admin_url.to_owned(),
            name,
            url: url.to_string(),
        }
    }
}

impl Drop for PostgresDb {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        // Drop runs inside the test's runtime; do the async work on a
        // thread of its own.
        let _ = std::thread::spawn(move || {
            use sqlx::{Connection, Executor};
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok(mut admin) = sqlx::PgConnection::connect(&admin_url).await {
                    let _ = admin
                        .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
                        .await;
                    let _ = admin.close().await;
                }
            });
        })
        .join();
    }
}

#[derive(Clone)]
pub struct Options {
    pub admin_mode: bool,
    pub max_body_bytes: usize,
    pub dynamic_registration: latchkey_core::registration::RegistrationMode,
    /// The public URL (default: the test server's own address).
    pub external_url: Option<&'static str>,
    /// Rate limits (default: `serve`'s defaults).
    pub limits: Option<latchkey::http::limits::LimitSettings>,
    /// Proxies believed (default: none).
    pub trusted_proxies: &'static str,
    /// Gravatar URLs for users without an avatar (default: on, as `serve`).
    pub gravatar: bool,
    /// `LATCHKEY_PASSWORD_GRANT` (default: on, as `serve`).
    pub password_grant: bool,
    /// The server's clock (default: the wall clock), for expiry without
    /// sleeping.
    pub clock: Option<std::sync::Arc<latchkey_core::clock::FixedClock>>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            admin_mode: false,
            max_body_bytes: 1024 * 1024,
            dynamic_registration: latchkey_core::registration::RegistrationMode::Off,
            external_url: None,
            limits: None,
            trusted_proxies: "",
            gravatar: true,
            password_grant: true,
            clock: None,
        }
    }
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(Options::default()).await
    }

    pub async fn spawn_with(opts: Options) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (db_url, postgres) = match backend() {
            Backend::Sqlite => (
                format!("sqlite://{}?mode=rwc", dir.path().join("test.db").display()),
                None,
            ),
            Backend::Postgres(admin_url) => {
                let db = PostgresDb::create(&admin_url).await;
                (db.url.clone(), Some(db))
            }
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let base = format!("http://{addr}");
        // Built as `serve` builds it: the same settings, start-up and router.
        let mut settings = Settings::resolve(&GlobalArgs::default(), &FileOnly::default()).unwrap();
        settings.database_url = db_url;
        let mut serve = ServeSettings::resolve(&ServeArgs::default()).unwrap();
        serve.external_url = opts.external_url.unwrap_or(base.as_str()).to_owned();
        serve.admin_mode = opts.admin_mode;
        serve.max_body_bytes = opts.max_body_bytes;
        serve.dynamic_registration = opts.dynamic_registration;
        serve.gravatar = opts.gravatar;
        serve.password_grant_enabled = opts.password_grant;
        // A long-lived token cache, so every test that revokes, blocks or
        // deletes also checks that the cache forgets.
        serve.token_cache_seconds = Some(600);
        serve.http.max_streamed_lists = 16;
        if let Some(limits) = opts.limits {
            serve.observe.limits = limits;
        }
        serve.observe.trusted_proxies = latchkey::http::client_ip::TrustedProxies::new(
            latchkey::http::client_ip::parse_nets(opts.trusted_proxies).unwrap(),
        );
        let store = startup::open_store(&settings, Schema::Migrate)
            .await
            .unwrap();
        let services = match opts.clock {
            Some(clock) => startup::services_on_clock(store, &settings, Some(&serve), clock),
            None => startup::services(store, &settings, Some(&serve)),
        };
        let state = startup::state(services.clone(), &serve);
        tokio::spawn(async move {
            axum::serve(
                listener,
                latchkey::http::router(state)
                    .into_make_service_with_connect_info::<std::net::SocketAddr>(),
            )
            .await
            .unwrap();
        });
        let root = services
            .create_user(
                &latchkey_core::context::Context::system(),
                &UserInput {
                    username: "root".into(),
                    email: "root@example.com".into(),
                    name: "Administrator".into(),
                    password: None,
                    admin: true,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let (_, token) = services
            .create_token(
                &latchkey_core::context::Context::system(),
                root.id,
                "root",
                "api read_api read_user sudo admin_mode",
                None,
            )
            .await
            .unwrap();
        Self {
            base,
            client: Client::new(),
            services,
            root_token: token.expose().to_owned(),
            root_id: root.id,
            _dir: dir,
            _postgres: postgres,
        }
    }

    /// The test's PostgreSQL database, if the suite runs on PostgreSQL.
    pub fn postgres_url(&self) -> Option<&str> {
        self._postgres.as_ref().map(|db| db.url.as_str())
    }

    /// Run `sql` on the test's database behind the server's back (to
    /// corrupt what it stores).
    pub async fn raw_sql(&self, sql: &str) {
        match &self._postgres {
            Some(db) => {
                use sqlx::{Connection, Executor};
                let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
                conn.execute(sql).await.unwrap();
                let _ = conn.close().await;
            }
            None => {
                let conn = rusqlite::Connection::open(self._dir.path().join("test.db")).unwrap();
                conn.execute_batch(sql).unwrap();
            }
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// A user (admin or not) and a token of theirs with `scopes`.
    pub async fn user_with_token(
        &self,
        username: &str,
        admin: bool,
        scopes: &str,
    ) -> (i64, String) {
        let user = self
            .services
            .create_user(
                &latchkey_core::context::Context::system(),
                &UserInput {
                    username: username.into(),
                    email: format!("{username}@example.com"),
                    name: username.into(),
                    password: None,
                    admin,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let (_, token) = self
            .services
            .create_token(
                &latchkey_core::context::Context::system(),
                user.id,
                "test",
                scopes,
                None,
            )
            .await
            .unwrap();
        (user.id, token.expose().to_owned())
    }

    pub async fn create_app_form(&self, token: &str, form: &[(&str, &str)]) -> Response {
        self.client
            .post(self.url("/api/v4/applications"))
            .private_token(token)
            .form(form)
            .send()
            .await
            .unwrap()
    }

    /// Create a valid instance application through the API; returns its JSON.
    pub async fn create_app(&self, name: &str) -> Value {
        let res = self
            .create_app_form(
                &self.root_token,
                &[
                    ("name", name),
                    ("redirect_uri", "https://example.com/cb"),
                    ("scopes", "api"),
                ],
            )
            .await;
        assert_eq!(res.status(), 201);
        res.json().await.unwrap()
    }

    /// An application owned by `owner` (there is no HTTP route for these yet).
    pub async fn create_user_app(&self, owner: i64, name: &str) -> i64 {
        let (app, _) = self
            .services
            .create_application(
                &latchkey_core::context::Context::system(),
                Some(owner),
                &ApplicationParams {
                    name: Some(name.into()),
                    redirect_uri: Some("https://example.com/cb".into()),
                    scopes: Some("api".into()),
                    confidential: true,
                    grant_types: None,
                },
            )
            .await
            .unwrap();
        app.id
    }

    pub async fn list_apps(&self) -> Vec<Value> {
        let res = self
            .client
            .get(self.url("/api/v4/applications"))
            .private_token(&self.root_token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        res.json().await.unwrap()
    }
}

/// Status and parsed body.
pub async fn status_json(res: Response) -> (u16, Value) {
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    let body =
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text:?}"));
    (status, body)
}

/// The date `days` from today (UTC), as `YYYY-MM-DD`.
pub fn in_days(days: i64) -> String {
    (time::OffsetDateTime::now_utc().date() + time::Duration::days(days)).to_string()
}

/// PostgreSQL: a transaction that holds a table `SHARE` locked, so that a
/// unit of work that writes to it waits at that statement, with what it
/// locked before (see [`TestApp::hold_table`]).
pub struct TableHold {
    conn: sqlx::PgConnection,
    url: String,
}

impl TestApp {
    /// On PostgreSQL, hold `table`'s writers back until the hold is
    /// released; on SQLite (one writer, no such interleaving), nothing.
    pub async fn hold_table(&self, table: &str) -> Option<TableHold> {
        use sqlx::{Connection, Executor};
        let url = self.postgres_url()?;
        let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
        conn.execute("BEGIN").await.unwrap();
        conn.execute(format!("LOCK TABLE {table} IN SHARE MODE").as_str())
            .await
            .unwrap();
        Some(TableHold {
            conn,
            url: url.to_owned(),
        })
    }
}

impl TableHold {
    /// Wait until a session waits for a lock in a statement that contains
    /// `statement` (only that one: other writers, such as the flush of last
    /// uses, may wait too).
    pub async fn wait_for(&self, statement: &str) {
        self.wait_for_waiters(statement, 1).await;
    }

    /// Wait until `n` sessions wait for a lock in statements that contain
    /// `statement` (any statement: "").
    pub async fn wait_for_waiters(&self, statement: &str, n: i64) {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&self.url).await.unwrap();
        for _ in 0..3000 {
            let waiting: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_stat_activity
                 WHERE datname = current_database() AND wait_event_type = 'Lock'
                   AND strpos(query, $1) > 0",
            )
            .bind(statement)
            .fetch_one(&mut conn)
            .await
            .unwrap();
            if waiting >= n {
                let _ = conn.close().await;
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("never {n} statements with {statement:?} waiting for a lock");
    }

    /// Once a statement that contains `statement` waits for a lock, let the
    /// held writers go.
    pub async fn release_once(self, statement: &str) {
        self.wait_for(statement).await;
        self.release().await;
    }

    /// Let the held writers go.
    pub async fn release(mut self) {
        use sqlx::{Connection, Executor};
        self.conn.execute("ROLLBACK").await.unwrap();
        let _ = self.conn.close().await;
    }
}
