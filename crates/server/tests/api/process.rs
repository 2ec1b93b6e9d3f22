//! Tests that run the real `latchkey` binary.

use crate::helpers::RequestAs;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_latchkey");
const ROOT_TOKEN: &str = "glpat-test-root-token-0123456789";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub struct Server {
    pub child: Child,
    pub base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(db_url: &str, root_token: &str) -> Server {
    start_with(db_url, root_token, &[])
}

/// Start `latchkey serve` on a free port with extra environment.
pub fn start_with(db_url: &str, root_token: &str, env: &[(&str, &str)]) -> Server {
    let port = free_port();
    let child = Command::new(BIN)
        .arg("serve")
        .env("LATCHKEY_LISTEN", format!("127.0.0.1:{port}"))
        .env("LATCHKEY_DATABASE_URL", db_url)
        .env("LATCHKEY_ROOT_TOKEN", root_token)
        .env("LATCHKEY_LOG", "warn")
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Server {
        child,
        base: format!("http://127.0.0.1:{port}"),
    }
}

/// Run a `latchkey` command (not `serve`) on the database `db`.
pub fn cli(db: &str, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .env("LATCHKEY_DATABASE_URL", db)
        .env("LATCHKEY_LOG", "warn")
        .output()
        .unwrap()
}

pub async fn wait_ready(server: &mut Server) {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = client
            .get(format!("{}/-/readiness", server.base))
            .send()
            .await
        {
            if r.status() == 200 {
                return;
            }
        }
        assert!(
            server.child.try_wait().unwrap().is_none(),
            "latchkey exited before it was ready"
        );
        assert!(Instant::now() < deadline, "latchkey was not ready in 30 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn db(dir: &tempfile::TempDir) -> String {
    format!("sqlite://{}?mode=rwc", dir.path().join("l.db").display())
}

#[tokio::test]
async fn acknowledged_writes_survive_kill_9_and_bootstrap_runs_once() {
    let dir = tempfile::tempdir().unwrap();
    let url = db(&dir);
    let client = reqwest::Client::new();
    let mut server = start(&url, ROOT_TOKEN);
    wait_ready(&mut server).await;
    let mut created = Vec::new();
    for i in 0..20 {
        let res = client
            .post(format!("{}/api/v4/applications", server.base))
            .private_token(ROOT_TOKEN)
            .form(&[
                ("name", format!("durable {i}").as_str()),
                ("redirect_uri", "https://d/cb"),
                ("scopes", "api"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
        created.push(res.json::<Value>().await.unwrap()["id"].as_i64().unwrap());
    }
    // A second server on the same SQLite file is refused, with the reason.
    let second = Command::new(BIN)
        .arg("serve")
        .env("LATCHKEY_LISTEN", format!("127.0.0.1:{}", free_port()))
        .env("LATCHKEY_DATABASE_URL", &url)
        .env("LATCHKEY_LOG", "warn")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(!second.status.success(), "{stderr}");
    assert!(
        stderr.contains("another latchkey server is already serving"),
        "{stderr}"
    );
    // SIGKILL: no graceful shutdown, no final checkpoint (and the lock is
    // released by the kernel, so the restart below may serve).
    server.child.kill().unwrap();
    server.child.wait().unwrap();

    // A different root token on the second start must not create a second root.
    let mut server = start(&url, "glpat-another-value-0123456789");
    wait_ready(&mut server).await;
    let list: Vec<Value> = client
        .get(format!("{}/api/v4/applications", server.base))
        .private_token(ROOT_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<i64> = list.iter().map(|a| a["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, created);
    let res = client
        .get(format!("{}/api/v4/user", server.base))
        .private_token("glpat-another-value-0123456789")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
}

#[test]
fn weak_root_token_is_refused_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .arg("serve")
        .env("LATCHKEY_LISTEN", format!("127.0.0.1:{}", free_port()))
        .env("LATCHKEY_DATABASE_URL", db(&dir))
        .env("LATCHKEY_ROOT_TOKEN", "short")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("LATCHKEY_ROOT_TOKEN refused") && err.contains("too short"),
        "{err}"
    );

    let out = Command::new(BIN)
        .arg("serve")
        .env("LATCHKEY_LISTEN", format!("127.0.0.1:{}", free_port()))
        .env("LATCHKEY_DATABASE_URL", db(&dir))
        .env("LATCHKEY_ROOT_PASSWORD", "password")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("LATCHKEY_ROOT_PASSWORD refused"), "{err}");
}

#[tokio::test]
async fn cli_creates_users_and_tokens_that_work() {
    let dir = tempfile::tempdir().unwrap();
    let url = db(&dir);
    let run = |args: &[&str]| {
        Command::new(BIN)
            .arg("--database-url")
            .arg(&url)
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&["migrate"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(&[
        "users",
        "create",
        "--username",
        "ops",
        "--email",
        "ops@example.com",
        "--name",
        "Ops",
        "--admin",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(&[
        "users",
        "create",
        "--username",
        "ops",
        "--email",
        "other@example.com",
    ]);
    assert!(!out.status.success(), "duplicate username must fail");
    let out = run(&[
        "tokens",
        "create",
        "--user",
        "ops",
        "--name",
        "ci",
        "--scopes",
        "api,read_api",
        "--expires-at",
        &crate::helpers::in_days(300),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(token.starts_with("glpat-") && token.len() == 70, "{token}");
    let out = run(&["tokens", "create", "--user", "nobody", "--name", "x"]);
    assert!(!out.status.success());
    let out = run(&[
        "tokens", "create", "--user", "ops", "--name", "x", "--scopes", "bogus",
    ]);
    assert!(!out.status.success());

    let mut server = start(&url, ROOT_TOKEN);
    wait_ready(&mut server).await;
    let res = reqwest::Client::new()
        .get(format!("{}/api/v4/user", server.base))
        .private_token(&token)
        .send()
        .await
        .unwrap();
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["username"], "ops");
    assert_eq!(body["is_admin"], true);
}

/// Issue 12, items 16 to 18: the database holds the signing keys, so its
/// files are the owner's alone; a chosen root token is never printed back;
/// once ready, the JWKS has a key.
#[tokio::test]
async fn first_start_keeps_secrets_private_and_is_ready_with_a_key() {
    use std::io::Read;
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let url = db(&dir);
    let port = free_port();
    let mut child = Command::new(BIN)
        .arg("serve")
        .env("LATCHKEY_LISTEN", format!("127.0.0.1:{port}"))
        .env("LATCHKEY_DATABASE_URL", &url)
        .env("LATCHKEY_ROOT_TOKEN", ROOT_TOKEN)
        .env("LATCHKEY_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    // The first 200 from readiness means a key is published: check at once.
    loop {
        if let Ok(r) = client.get(format!("{base}/-/readiness")).send().await {
            if r.status() == 200 {
                break;
            }
        }
        assert!(Instant::now() < deadline, "not ready in 30 s");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let jwks: Value = client
        .get(format!("{base}/oauth/discovery/keys"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        jwks["keys"].as_array().is_some_and(|k| !k.is_empty()),
        "{jwks}"
    );
    // Make the WAL exist, then look at every file beside the database.
    let res = client
        .post(format!("{base}/api/v4/applications"))
        .private_token(ROOT_TOKEN)
        .form(&[
            ("name", "x"),
            ("redirect_uri", "https://x/cb"),
            ("scopes", "api"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let mut checked = 0;
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let entry = entry.unwrap();
        let mode = entry.metadata().unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{:?} is {mode:o}", entry.file_name());
        checked += 1;
    }
    assert!(
        checked >= 3,
        "the database, its WAL and the lock: {checked} files"
    );
    let _ = child.kill();
    let _ = child.wait();
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert!(out.contains("created the administrator"), "{out}");
    assert!(
        !out.contains(ROOT_TOKEN),
        "the chosen token was printed: {out}"
    );
    assert!(out.contains("as set by LATCHKEY_ROOT_TOKEN"), "{out}");
}

/// `db copy` fails clean: never beside a server that holds the source,
/// never creating a mistyped source, and saying nothing was copied when
/// the target is not empty.
#[tokio::test]
async fn db_copy_refuses_a_served_source_a_missing_one_and_a_full_target() {
    let dir = tempfile::tempdir().unwrap();
    let source = db(&dir);
    let copy = |from: &str, to: &str| {
        Command::new(BIN)
            .args(["db", "copy", "--from", from, "--to", to])
            .env("LATCHKEY_LOG", "warn")
            .output()
            .unwrap()
    };
    let target_path = dir.path().join("copy.db");
    let target = format!("sqlite://{}?mode=rwc", target_path.display());

    let mut server = start(&source, ROOT_TOKEN);
    wait_ready(&mut server).await;
    let out = copy(&source, &target);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("a latchkey server is serving the source database")
            && err.contains("nothing was copied"),
        "{err}"
    );
    assert!(!target_path.exists(), "the target was not touched");
    drop(server);

    let missing = dir.path().join("typo.db");
    let out = copy(&format!("sqlite://{}?mode=rwc", missing.display()), &target);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("does not exist"), "{err}");
    assert!(!missing.exists(), "a mistyped source is not created");

    // With the server stopped: copied; then again into the full target.
    let out = copy(&source, &target);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = copy(&source, &target);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("nothing was copied") && !err.contains("partial copy"),
        "{err}"
    );
}

/// A busy port is found first: no database is created and no credentials
/// are printed for a server that cannot serve.
#[test]
fn a_busy_port_stops_the_start_before_anything_is_created() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .arg("serve")
        .env("LATCHKEY_LISTEN", format!("127.0.0.1:{port}"))
        .env("LATCHKEY_DATABASE_URL", db(&dir))
        .env("LATCHKEY_LOG", "warn")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("cannot listen on 127.0.0.1:{port}")),
        "{err}"
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(!said.contains("first start"), "{said}");
    assert!(!dir.path().join("l.db").exists(), "no database was created");
    drop(busy);
}
