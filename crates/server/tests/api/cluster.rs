//! Several latchkey processes on one PostgreSQL database, and what happens
//! when that database goes away. Runs when LATCHKEY_TEST_POSTGRES_URL is
//! set (CI always sets it).

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sqlx::{Connection, Executor};

use crate::helpers::{PostgresDb, RequestAs};
use crate::process::{start_with, wait_ready, Server, BIN};

const ROOT: &str = "glpat-cluster-root-token-0123456789";

pub(crate) fn admin_url() -> Option<String> {
    let url = std::env::var("LATCHKEY_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty());
    if url.is_none() {
        eprintln!("LATCHKEY_TEST_POSTGRES_URL is not set: skipping the PostgreSQL cluster test");
    }
    url
}

async fn json_of(res: reqwest::Response) -> (u16, Value) {
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn create_app(c: &reqwest::Client, s: &Server, name: &str) -> Value {
    let res = c
        .post(format!("{}/api/v4/applications", s.base))
        .private_token(ROOT)
        .form(&[
            ("name", name),
            ("redirect_uri", "https://c.example/cb"),
            ("scopes", "api read_user"),
        ])
        .send()
        .await
        .unwrap();
    let (status, body) = json_of(res).await;
    assert_eq!(status, 201, "{body}");
    body
}

async fn client_credentials(c: &reqwest::Client, s: &Server, id: &str, secret: &str) -> u16 {
    c.post(format!("{}/oauth/token", s.base))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", id),
            ("client_secret", secret),
            ("scope", "read_user"),
        ])
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn two_instances_on_one_database_share_everything() {
    let Some(admin) = admin_url() else { return };
    let db = PostgresDb::create(&admin).await;
    // Both start at once: exactly one of them creates root.
    let mut a = start_with(&db.url, ROOT, &[]);
    let mut b = start_with(&db.url, ROOT, &[]);
    wait_ready(&mut a).await;
    wait_ready(&mut b).await;
    let c = reqwest::Client::new();
    let (_, users) = json_of(
        c.get(format!("{}/api/v4/users?username=root", b.base))
            .private_token(ROOT)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(users.as_array().unwrap().len(), 1, "{users}");

    // Created on A, listed by B.
    let app = create_app(&c, &a, "shared").await;
    let (_, list) = json_of(
        c.get(format!("{}/api/v4/applications", b.base))
            .private_token(ROOT)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(list
        .as_array()
        .unwrap()
        .iter()
        .any(|x| x["id"] == app["id"]));

    // Renewed on A: the old secret fails on B at once, the new one works.
    let id = app["application_id"].as_str().unwrap();
    let old = app["secret"].as_str().unwrap();
    assert_eq!(client_credentials(&c, &b, id, old).await, 200);
    let (_, renewed) = json_of(
        c.post(format!(
            "{}/api/v4/applications/{}/renew-secret",
            a.base, app["id"]
        ))
        .private_token(ROOT)
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(client_credentials(&c, &b, id, old).await, 401);
    assert_eq!(
        client_credentials(&c, &b, id, renewed["secret"].as_str().unwrap()).await,
        200
    );

    // A token made on A works on B; revoked on A, refused by B at once.
    let (_, root) = json_of(
        c.get(format!("{}/api/v4/user", a.base))
            .private_token(ROOT)
            .send()
            .await
            .unwrap(),
    )
    .await;
    let (status, pat) = json_of(
        c.post(format!(
            "{}/api/v4/users/{}/personal_access_tokens",
            a.base, root["id"]
        ))
        .private_token(ROOT)
        .json(&json!({"name": "shared", "scopes": ["api"]}))
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 201);
    let token = pat["token"].as_str().unwrap();
    assert_eq!(
        c.get(format!("{}/api/v4/user", b.base))
            .private_token(token)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let res = c
        .delete(format!(
            "{}/api/v4/personal_access_tokens/{}",
            a.base, pat["id"]
        ))
        .private_token(ROOT)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let (status, body) = json_of(
        c.get(format!("{}/api/v4/user", b.base))
            .private_token(token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body["error"].clone()),
        (401, json!("invalid_token"))
    );

    // Concurrent renewals and a delete of one application through both
    // instances: every answer is a success or a 404, never a 500, and
    // the application ends deleted everywhere.
    let racer = create_app(&c, &a, "racer").await;
    let rid = racer["id"].clone();
    let mut tasks = Vec::new();
    for i in 0..24 {
        let c = c.clone();
        let base = if i % 2 == 0 {
            a.base.clone()
        } else {
            b.base.clone()
        };
        let rid = rid.clone();
        tasks.push(tokio::spawn(async move {
            let req = if i == 11 {
                c.delete(format!("{base}/api/v4/applications/{rid}"))
            } else {
                c.post(format!("{base}/api/v4/applications/{rid}/renew-secret"))
            };
            req.private_token(ROOT)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    assert!(
        statuses.iter().all(|s| [201, 204, 404].contains(s)),
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 204).count(),
        1,
        "{statuses:?}"
    );
    for s in [&a, &b] {
        let res = c
            .post(format!("{}/api/v4/applications/{rid}/renew-secret", s.base))
            .private_token(ROOT)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 404);
    }
    assert_eq!(
        client_credentials(
            &c,
            &b,
            racer["application_id"].as_str().unwrap(),
            racer["secret"].as_str().unwrap()
        )
        .await,
        401
    );
}

async fn set_connections(admin: &str, db: &PostgresDb, allow: bool) {
    let mut conn = sqlx::PgConnection::connect(admin).await.unwrap();
    conn.execute(format!("ALTER DATABASE {} ALLOW_CONNECTIONS {allow}", db.name).as_str())
        .await
        .unwrap();
    if !allow {
        conn.execute(
            format!(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{}'",
                db.name
            )
            .as_str(),
        )
        .await
        .unwrap();
    }
    let _ = conn.close().await;
}

#[tokio::test]
async fn a_database_outage_gives_503_and_service_resumes_by_itself() {
    let Some(admin) = admin_url() else { return };
    let db = PostgresDb::create(&admin).await;
    let mut s = start_with(&db.url, ROOT, &[("LATCHKEY_DATABASE_TIMEOUT", "1")]);
    wait_ready(&mut s).await;
    let c = reqwest::Client::new();
    let app = create_app(&c, &s, "survivor").await;

    set_connections(&admin, &db, false).await;
    let started = Instant::now();
    let (status, body) = json_of(
        c.get(format!("{}/api/v4/applications?per_page=5", s.base))
            .private_token(ROOT)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body),
        (503, json!({"message": "503 Service Unavailable"}))
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "an outage must not hang requests"
    );
    assert_eq!(
        c.get(format!("{}/-/readiness", s.base))
            .send()
            .await
            .unwrap()
            .status(),
        503
    );
    assert_eq!(
        c.get(format!("{}/-/liveness", s.base))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let (status, body) = json_of(
        c.post(format!("{}/oauth/token", s.base))
            .form(&[("grant_type", "client_credentials"), ("client_id", "x")])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body["error"].clone()),
        (503, json!("temporarily_unavailable"))
    );
    assert!(
        s.child.try_wait().unwrap().is_none(),
        "the server must keep running"
    );

    set_connections(&admin, &db, true).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = c
            .get(format!("{}/-/readiness", s.base))
            .send()
            .await
            .unwrap();
        if r.status() == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "latchkey did not recover after the database came back"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (status, list) = json_of(
        c.get(format!("{}/api/v4/applications", s.base))
            .private_token(ROOT)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(list[0]["id"], app["id"]);
}

/// A TCP proxy to PostgreSQL that can be cut (listener closed, every
/// connection dropped: new connections are refused) and restored.
struct Proxy {
    port: u16,
    target: std::net::SocketAddr,
    tasks: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Proxy {
    async fn start(target: std::net::SocketAddr) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let p = Self {
            port,
            target,
            tasks: Default::default(),
        };
        p.serve(listener);
        p
    }

    fn serve(&self, listener: tokio::net::TcpListener) {
        let tasks = self.tasks.clone();
        let target = self.target;
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let conn = tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                tasks.lock().unwrap().push(conn);
            }
        });
        self.tasks.lock().unwrap().push(accept);
    }

    fn cut(&self) {
        for t in self.tasks.lock().unwrap().drain(..) {
            t.abort();
        }
    }

    async fn restore(&self) {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port))
            .await
            .unwrap();
        self.serve(listener);
    }
}

/// Issue 13, item 4: while the database refuses connections (the server
/// is gone: connections refused), requests answer 503 at once with
/// `Retry-After` instead of each waiting LATCHKEY_DATABASE_TIMEOUT (10 s
/// here) for a connection; service resumes by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_fail_fast_while_the_database_refuses_connections() {
    let Some(admin) = admin_url() else { return };
    let db = PostgresDb::create(&admin).await;
    let mut url = url::Url::parse(&db.url).unwrap();
    let target = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap_or(5432));
    let target = tokio::net::lookup_host(target)
        .await
        .unwrap()
        .next()
        .unwrap();
    let proxy = Proxy::start(target).await;
    url.set_port(Some(proxy.port)).unwrap();
    let mut s = start_with(url.as_str(), ROOT, &[("LATCHKEY_DATABASE_TIMEOUT", "10")]);
    wait_ready(&mut s).await;
    let c = reqwest::Client::new();
    create_app(&c, &s, "before").await;

    proxy.cut();
    // The instance notices within a few checks; from then on, every
    // request is answered at once.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let res = c
            .get(format!("{}/api/v4/applications?per_page=5", s.base))
            .private_token(ROOT)
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .unwrap();
        if res.headers().contains_key("retry-after") {
            assert_eq!(res.status(), 503);
            break;
        }
        assert!(Instant::now() < deadline, "the outage was never noticed");
    }
    for _ in 0..5 {
        let started = Instant::now();
        let res = c
            .get(format!("{}/api/v4/applications?per_page=5", s.base))
            .private_token(ROOT)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 503);
        let (status, body) = json_of(
            c.post(format!("{}/oauth/token", s.base))
                .form(&[("grant_type", "client_credentials"), ("client_id", "x")])
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(
            (status, body["error"].clone()),
            (503, json!("temporarily_unavailable"))
        );
        // Far below the 10 s a request would wait for a connection.
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "{:?}",
            started.elapsed()
        );
    }
    assert_eq!(
        c.get(format!("{}/-/readiness", s.base))
            .send()
            .await
            .unwrap()
            .status(),
        503
    );

    proxy.restore().await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let res = c
            .get(format!("{}/api/v4/applications?per_page=5", s.base))
            .private_token(ROOT)
            .send()
            .await
            .unwrap();
        if res.status() == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no recovery after the database came back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn no_migrate_refuses_an_old_schema_and_db_copy_moves_everything() {
    let Some(admin) = admin_url() else { return };
    let db = PostgresDb::create(&admin).await;
    // --no-migrate on an empty database refuses to start.
    let out = std::process::Command::new(BIN)
        .args(["serve", "--no-migrate"])
        .env("LATCHKEY_DATABASE_URL", &db.url)
        .env("LATCHKEY_LISTEN", "127.0.0.1:0")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("run `latchkey migrate` first"));

    // Fill a SQLite database through a real server, then copy it over.
    let dir = tempfile::tempdir().unwrap();
    let sqlite = format!("sqlite://{}?mode=rwc", dir.path().join("src.db").display());
    let c = reqwest::Client::new();
    let mut s = start_with(&sqlite, ROOT, &[]);
    wait_ready(&mut s).await;
    let app = create_app(&c, &s, "moving").await;
    let post = |path: &str, form: Vec<(&'static str, String)>| {
        c.post(format!("{}/api/v4{path}", s.base))
            .private_token(ROOT)
            .form(&form)
            .send()
    };
    let (status, org) = json_of(
        post(
            "/groups",
            vec![("name", "Org".into()), ("path", "org".into())],
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 201, "{org}");
    let sub = vec![
        ("name", "Team".into()),
        ("path", "team".into()),
        ("parent_id", org["id"].to_string()),
    ];
    assert_eq!(post("/groups", sub).await.unwrap().status(), 201);
    let group_app = vec![
        ("name", "Grafana".into()),
        ("redirect_uri", "https://grafana.example/cb".into()),
        ("scopes", "openid".into()),
    ];
    let res = post("/groups/org%2Fteam/applications", group_app)
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    drop(s);
    let out = std::process::Command::new(BIN)
        .args(["db", "copy", "--from", &sqlite, "--to", &db.url])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        report.contains("oauth_applications: 2 rows")
            && report.contains("users: 1 rows")
            && report.contains("groups: 2 rows")
            && report.contains("group_members: 2 rows"),
        "{report}"
    );
    // A second copy into the now non-empty target is refused.
    let out = std::process::Command::new(BIN)
        .args(["db", "copy", "--from", &sqlite, "--to", &db.url])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not empty"));

    // The same token, application and secret work on PostgreSQL; new rows get new ids.
    let mut p = start_with(
        &db.url,
        "glpat-not-used-because-root-exists",
        &[("LATCHKEY_MIGRATE", "false")],
    );
    wait_ready(&mut p).await;
    let (_, list) = json_of(
        c.get(format!("{}/api/v4/applications", p.base))
            .private_token(ROOT)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(list[0]["application_id"], app["application_id"]);
    assert_eq!(
        client_credentials(
            &c,
            &p,
            app["application_id"].as_str().unwrap(),
            app["secret"].as_str().unwrap()
        )
        .await,
        200
    );
    let newer = create_app(&c, &p, "after the move").await;
    assert!(newer["id"].as_i64().unwrap() > app["id"].as_i64().unwrap());
    // Groups, their members and applications came along.
    let (status, apps) = json_of(
        c.get(format!("{}/api/v4/groups/org%2Fteam/applications", p.base))
            .private_token(ROOT)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{apps}");
    assert_eq!(apps[0]["application_name"], "Grafana");
    let (status, members) = json_of(
        c.get(format!("{}/api/v4/groups/org%2Fteam/members/all", p.base))
            .private_token(ROOT)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(members[0]["access_level"], 50);
    let (status, newer_group) = json_of(
        c.post(format!("{}/api/v4/groups", p.base))
            .private_token(ROOT)
            .form(&[("name", "New"), ("path", "new")])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201, "{newer_group}");
    assert!(newer_group["id"].as_i64().unwrap() > org["id"].as_i64().unwrap() + 1);
}
