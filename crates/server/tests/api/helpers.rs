use std::sync::Arc;

use latchkey::http::AppState;
use latchkey_core::application::ApplicationParams;
use latchkey_core::service::UserInput;
use latchkey_core::{Services, SystemClock};
use latchkey_sqlite::SqliteStore;
use reqwest::{Client, Response};
use serde_json::Value;
use tempfile::TempDir;

pub struct TestApp {
    pub base: String,
    pub client: Client,
    pub services: Services,
    /// A token of the admin `root`, scopes `api read_api read_user sudo admin_mode`.
    pub root_token: String,
    pub root_id: i64,
    _dir: TempDir,
}

#[derive(Clone, Copy)]
pub struct Options {
    pub admin_mode: bool,
    pub max_body_bytes: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            admin_mode: false,
            max_body_bytes: 1024 * 1024,
        }
    }
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(Options::default()).await
    }

    pub async fn spawn_with(opts: Options) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let db_url = format!("sqlite://{}?mode=rwc", dir.path().join("test.db").display());
        let store = SqliteStore::connect(&latchkey_sqlite::Options::new(&db_url))
            .await
            .unwrap();
        store.migrate().await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let base = format!("http://{addr}");
        let services = Services::new(
            Arc::new(store),
            Arc::new(SystemClock),
            latchkey_core::Config {
                admin_mode: opts.admin_mode,
                ..Default::default()
            },
        );
        let state = AppState {
            services: services.clone(),
            external_url: Arc::from(base.as_str()),
            max_body_bytes: opts.max_body_bytes,
        };
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
            .create_user(&UserInput {
                username: "root".into(),
                email: "root@example.com".into(),
                name: "Administrator".into(),
                password: None,
                admin: true,
            })
            .await
            .unwrap();
        let (_, token) = services
            .create_token(
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
            root_token: token.0,
            root_id: root.id,
            _dir: dir,
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
            .create_user(&UserInput {
                username: username.into(),
                email: format!("{username}@example.com"),
                name: username.into(),
                password: None,
                admin,
            })
            .await
            .unwrap();
        let (_, token) = self
            .services
            .create_token(user.id, "test", scopes, None)
            .await
            .unwrap();
        (user.id, token.0)
    }

    pub async fn create_app_form(&self, token: &str, form: &[(&str, &str)]) -> Response {
        self.client
            .post(self.url("/api/v4/applications"))
            .header("PRIVATE-TOKEN", token)
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
                Some(owner),
                &ApplicationParams {
                    name: Some(name.into()),
                    redirect_uri: Some("https://example.com/cb".into()),
                    scopes: Some("api".into()),
                    confidential: true,
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
            .header("PRIVATE-TOKEN", &self.root_token)
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
