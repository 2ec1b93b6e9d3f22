//! Declarative state through the binary: `serve --seed` on an in-memory
//! database (the CI stand-in), a seed that does not check, `latchkey apply`
//! and `export` with their exit codes and output, and two PostgreSQL
//! instances starting at once with one seed.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use serde_json::Value;

use crate::helpers::{PostgresDb, RequestAs};
use crate::process::{cli, start_with, wait_ready, BIN};

const ROOT: &str = "glpat-state-cli-root-token-0123";
const TOKEN: &str = "glpat-seeded-ci-token-000000001";
const SECRET: &str = "seeded-client-secret-value";

fn seed() -> String {
    // The password comes as a hash: a seeded start costs no Argon2 work.
    let hash = bcrypt::hash("seeded password 1", 4).unwrap();
    format!(
        r#"
[[users]]
username = "alice"
email = "alice@example.com"
password_hash = "{hash}"
admin = true

[[users.tokens]]
name = "ci"
scopes = ["api", "read_user"]
token = "{TOKEN}"

[[groups]]
path = "platform"
members = [{{ username = "alice", access_level = 50 }}]

[[applications]]
name = "CI client"
redirect_uris = ["http://localhost:9999/callback"]
scopes = ["read_user", "openid"]
application_id = "ci-client-id"
secret = "{SECRET}"
trusted = true
"#
    )
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

async fn check_seeded(base: &str) {
    let c = reqwest::Client::new();
    let me: Value = c
        .get(format!("{base}/api/v4/user"))
        .private_token(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["username"], "alice", "{me}");
    let res = c
        .post(format!("{base}/oauth/token"))
        .form(&[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", "seeded password 1"),
            ("client_id", "ci-client-id"),
            ("client_secret", SECRET),
            ("scope", "read_user"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn serve_seeds_an_in_memory_database_before_it_is_ready() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("seed.toml");
    std::fs::write(&file, seed()).unwrap();
    let mut server = start_with(
        "sqlite::memory:",
        ROOT,
        &[("LATCHKEY_SEED", file.to_str().unwrap())],
    );
    wait_ready(&mut server).await;
    check_seeded(&server.base).await;
}

#[tokio::test]
async fn a_seed_that_does_not_check_stops_the_start_and_says_where() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("seed.toml");
    std::fs::write(
        &file,
        "[[users]]\nusername = \"alice\"\nemail = \"alice@example.com\"\nadmin = \"yes\"\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--seed", file.to_str().unwrap()])
        .env("LATCHKEY_DATABASE_URL", "sqlite::memory:")
        .env("LATCHKEY_LISTEN", "127.0.0.1:0")
        .env("LATCHKEY_LOG", "warn")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("seed.toml") && err.contains("admin"), "{err}");
}

#[test]
fn apply_and_export_at_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}?mode=rwc", dir.path().join("a.db").display());
    let file = dir.path().join("state.toml");
    std::fs::write(&file, seed()).unwrap();
    let path = file.to_str().unwrap();

    let dry = cli(&db, &["apply", "--dry-run", path]);
    assert!(dry.status.success(), "{}", text(&dry.stderr));
    let out = text(&dry.stdout);
    assert!(out.contains("would create user alice"), "{out}");
    assert!(out.contains("nothing was changed (--dry-run)"), "{out}");

    let applied = cli(&db, &["apply", path]);
    assert!(applied.status.success(), "{}", text(&applied.stderr));
    let out = text(&applied.stdout);
    assert!(
        out.contains("create user alice") && out.contains("applied 5 change(s)"),
        "{out}"
    );

    let again = cli(&db, &["apply", path]);
    assert!(again.status.success());
    assert!(
        text(&again.stdout).contains("nothing to change"),
        "{}",
        text(&again.stdout)
    );

    // Users but no administrator on a database without users: applied,
    // with a note that `serve` will then create no root either.
    let fresh = format!("sqlite://{}?mode=rwc", dir.path().join("n.db").display());
    let lonely = dir.path().join("lonely.toml");
    std::fs::write(
        &lonely,
        "[[users]]\nusername = \"bob\"\nemail = \"bob@example.com\"\n",
    )
    .unwrap();
    let noted = cli(&fresh, &["apply", lonely.to_str().unwrap()]);
    assert!(noted.status.success(), "{}", text(&noted.stderr));
    let out = text(&noted.stdout);
    assert!(
        out.contains("none of the file's users is an administrator"),
        "{out}"
    );

    // A bad file: non-zero, naming file, entry and field; nothing changes.
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[[users]]\nusername = \"bob\"\nemail = \"bob@example.com\"\n\
         [[applications]]\nname = \"x\"\nredirect_uris = [\"not a uri\"]\nscopes = [\"api\"]\n",
    )
    .unwrap();
    let refused = cli(&db, &["apply", bad.to_str().unwrap()]);
    assert!(!refused.status.success());
    let err = text(&refused.stderr);
    assert!(
        err.contains("bad.toml") && err.contains("applications[0] (x): redirect_uris"),
        "{err}"
    );

    // Export (private to its owner), then restore into an empty database.
    let exported = dir.path().join("export.toml");
    let out = cli(&db, &["export", "--output", exported.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let mode = std::fs::metadata(&exported).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let body = std::fs::read_to_string(&exported).unwrap();
    assert!(!body.contains(TOKEN) && !body.contains(SECRET), "{body}");
    assert!(
        !body.contains("bob"),
        "the refused file changed nothing: {body}"
    );
    let copy = format!("sqlite://{}?mode=rwc", dir.path().join("b.db").display());
    let restored = cli(&copy, &["apply", exported.to_str().unwrap()]);
    assert!(restored.status.success(), "{}", text(&restored.stderr));
    let again = cli(&copy, &["export"]);
    assert!(again.status.success());
    assert_eq!(text(&again.stdout), body);
}

#[tokio::test]
async fn two_postgres_instances_started_with_one_seed_apply_it_once() {
    let Ok(admin) = std::env::var("LATCHKEY_TEST_POSTGRES_URL") else {
        eprintln!("LATCHKEY_TEST_POSTGRES_URL is not set: skipping");
        return;
    };
    if admin.is_empty() {
        return;
    }
    let db = PostgresDb::create(&admin).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("seed.toml");
    std::fs::write(&file, seed()).unwrap();
    let env = [("LATCHKEY_SEED", file.to_str().unwrap())];
    let mut a = start_with(&db.url, ROOT, &env);
    let mut b = start_with(&db.url, ROOT, &env);
    wait_ready(&mut a).await;
    wait_ready(&mut b).await;
    check_seeded(&a.base).await;
    check_seeded(&b.base).await;
    let users: Value = reqwest::Client::new()
        .get(format!("{}/api/v4/users?username=alice", b.base))
        .private_token(ROOT)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(users.as_array().map(Vec::len), Some(1), "{users}");
    // The seed applied once: one token, one application.
    let out = cli(&db.url, &["export"]);
    let body = text(&out.stdout);
    assert_eq!(body.matches("name = \"ci\"").count(), 1, "{body}");
    assert_eq!(body.matches("application_id = \"ci-client-id\"").count(), 1);
}
