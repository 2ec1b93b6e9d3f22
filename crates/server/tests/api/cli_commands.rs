//! The command line's day-to-day commands (issue 23): lists in text and
//! JSON, changes with clear errors, and, on SQLite, changes that a running
//! server (which caches token lookups and the count of applications) sees
//! at once.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::helpers::RequestAs;
use crate::process::{cli, start_with, wait_ready, BIN};

const ROOT: &str = "glpat-cli-commands-root-0123456789";

fn ok(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn refused(out: &std::process::Output, says: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert!(stderr.contains(says), "expected {says:?} in: {stderr}");
}

fn json(out: &std::process::Output) -> Value {
    serde_json::from_str(&ok(out)).unwrap()
}

async fn status_of_user(base: &str, token: &str) -> u16 {
    reqwest::Client::new()
        .get(format!("{base}/api/v4/user"))
        .private_token(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn applications_total(base: &str) -> String {
    let res = reqwest::Client::new()
        .get(format!("{base}/api/v4/applications?page=1&per_page=5"))
        .private_token(ROOT)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.headers()["x-total"].to_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_running_sqlite_server_sees_command_line_changes_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}?mode=rwc", dir.path().join("l.db").display());
    // A long cache, so that only the stored generation can explain a change seen.
    let mut server = start_with(&db, ROOT, &[("LATCHKEY_TOKEN_CACHE_SECONDS", "3600")]);
    wait_ready(&mut server).await;
    let base = server.base.clone();

    ok(&cli(
        &db,
        &[
            "users",
            "create",
            "--username",
            "alice",
            "--email",
            "alice@example.com",
        ],
    ));
    let token = ok(&cli(
        &db,
        &["tokens", "create", "--user", "alice", "--name", "ci"],
    ));
    let token = token.trim();
    // Looked up, then answered from the cache.
    assert_eq!(status_of_user(&base, token).await, 200);
    assert_eq!(status_of_user(&base, token).await, 200);

    ok(&cli(&db, &["users", "block", "alice"]));
    assert_eq!(status_of_user(&base, token).await, 403, "blocked at once");
    ok(&cli(&db, &["users", "unblock", "alice"]));
    assert_eq!(status_of_user(&base, token).await, 200, "unblocked at once");
    assert_eq!(status_of_user(&base, token).await, 200);

    let listed = json(&cli(
        &db,
        &["tokens", "list", "--user", "alice", "--format", "json"],
    ));
    let id = listed[0]["id"].as_i64().unwrap().to_string();
    let out = ok(&cli(&db, &["tokens", "revoke", &id]));
    assert!(out.contains("revoked token"), "{out}");
    assert_eq!(status_of_user(&base, token).await, 401, "revoked at once");

    // The count of applications the server remembers between pages.
    assert_eq!(applications_total(&base).await, "0");
    assert_eq!(applications_total(&base).await, "0");
    let created = json(&cli(
        &db,
        &[
            "applications",
            "create",
            "--name",
            "Grafana",
            "--redirect-uri",
            "https://grafana.example/login",
            "--scopes",
            "openid,email",
            "--format",
            "json",
        ],
    ));
    assert_eq!(applications_total(&base).await, "1", "counted at once");
    let client_id = created["application_id"].as_str().unwrap();
    assert!(created["secret"].as_str().unwrap().starts_with("gloas-"));
    ok(&cli(&db, &["applications", "delete", client_id]));
    assert_eq!(applications_total(&base).await, "0", "uncounted at once");

    // The server's own writes still work with the cache afterwards.
    assert_eq!(status_of_user(&base, ROOT).await, 200);
    assert_eq!(status_of_user(&base, ROOT).await, 200);
}

#[test]
fn a_mistyped_database_is_named_not_created() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("typo.db");
    let db = format!("sqlite://{}?mode=rwc", path.display());
    for args in [
        &["users", "list"][..],
        &[
            "users",
            "create",
            "--username",
            "z",
            "--email",
            "z@example.com",
        ],
        &["tokens", "create", "--user", "z", "--name", "x"],
        &["keys", "rotate"],
    ] {
        refused(&cli(&db, args), "there is no SQLite database at");
        assert!(!path.exists(), "{args:?} created the database");
    }
    // A weak chosen root password stops `serve` before a database exists.
    let out = Command::new(BIN)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--root-password",
            "short",
        ])
        .env("LATCHKEY_DATABASE_URL", &db)
        .output()
        .unwrap();
    refused(&out, "--root-password refused: the password is too short");
    assert!(!path.exists(), "serve created the database");
}

#[tokio::test]
async fn lists_show_and_changes_in_text_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}?mode=rwc", dir.path().join("l.db").display());
    ok(&cli(&db, &["migrate"]));
    assert_eq!(ok(&cli(&db, &["users", "list"])).trim(), "(none)");
    assert_eq!(
        json(&cli(&db, &["users", "list", "--format", "json"])),
        serde_json::json!([])
    );
    for (name, admin) in [("ops", true), ("bob", false), ("carol", false)] {
        let mut args = vec!["users", "create", "--username", name];
        let email = format!("{name}@example.com");
        args.extend(["--email", &email]);
        if admin {
            args.push("--admin");
        }
        ok(&cli(&db, &args));
    }

    // Users: every one in id order, filters, text columns, one record.
    let users = json(&cli(&db, &["users", "list", "--format", "json"]));
    let names: Vec<&str> = users
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["ops", "bob", "carol"]);
    assert_eq!(users[0]["is_admin"], true);
    assert_eq!(users[1]["email"], "bob@example.com");
    let admins = json(&cli(
        &db,
        &["users", "list", "--admins", "--format", "json"],
    ));
    assert_eq!(admins.as_array().unwrap().len(), 1);
    let text = ok(&cli(&db, &["users", "list", "--search", "car"]));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines[0].starts_with("ID") && lines[0].contains("USERNAME"),
        "{text}"
    );
    assert!(
        lines[1].contains("carol") && lines[1].contains("carol@example.com"),
        "{text}"
    );
    let shown = json(&cli(&db, &["users", "show", "bob", "--format", "json"]));
    assert_eq!(
        (shown["username"].as_str(), shown["locked"].as_bool()),
        (Some("bob"), Some(false))
    );
    let by_id = json(&cli(&db, &["users", "show", "3", "--format", "json"]));
    assert_eq!(by_id["username"], "carol");

    // Changes, and refusals that say why.
    ok(&cli(
        &db,
        &[
            "users",
            "update",
            "bob",
            "--name",
            "Bob B",
            "--external",
            "true",
        ],
    ));
    let bob = json(&cli(&db, &["users", "show", "bob", "--format", "json"]));
    assert_eq!(
        (bob["name"].as_str(), bob["external"].as_bool()),
        (Some("Bob B"), Some(true))
    );
    refused(&cli(&db, &["users", "update", "bob"]), "nothing to change");
    refused(
        &cli(&db, &["users", "show", "nobody"]),
        "no user named \"nobody\"",
    );
    refused(
        &cli(&db, &["users", "update", "bob", "--email", "not-an-email"]),
        "cannot update user bob",
    );
    refused(&cli(&db, &["users", "block", "ops"]), "cannot block ops");
    refused(
        &cli(&db, &["users", "delete", "ops"]),
        "cannot delete user ops",
    );
    let mut child = Command::new(BIN)
        .args(["users", "set-password", "carol"])
        .env("LATCHKEY_DATABASE_URL", &db)
        .env("LATCHKEY_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"Correct-Horse-Battery-9\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(ok(&out).contains("set the password of carol"));
    let out = ok(&cli(&db, &["users", "unlock", "carol"]));
    assert!(out.contains("was not locked"), "{out}");
    ok(&cli(&db, &["users", "delete", "carol"]));
    refused(&cli(&db, &["users", "show", "carol"]), "no user named");

    // Tokens: everyone's without --user, one user's with it.
    for (user, name) in [("ops", "deploy"), ("bob", "laptop"), ("bob", "ci")] {
        ok(&cli(
            &db,
            &["tokens", "create", "--user", user, "--name", name],
        ));
    }
    let all = json(&cli(&db, &["tokens", "list", "--format", "json"]));
    let names: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["deploy", "laptop", "ci"]);
    assert!(all[0].get("token").is_none(), "never a value");
    let bobs = json(&cli(
        &db,
        &["tokens", "list", "--user", "bob", "--format", "json"],
    ));
    assert_eq!(bobs.as_array().unwrap().len(), 2);
    let text = ok(&cli(&db, &["tokens", "list"]));
    assert!(
        text.lines()
            .any(|l| l.contains("ops") && l.contains("deploy") && l.contains("active")),
        "{text}"
    );
    let laptop = bobs
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "laptop")
        .unwrap();
    ok(&cli(&db, &["tokens", "revoke", &laptop["id"].to_string()]));
    let active = json(&cli(
        &db,
        &[
            "tokens", "list", "--user", "bob", "--active", "--format", "json",
        ],
    ));
    assert_eq!(active.as_array().unwrap().len(), 1);
    refused(
        &cli(&db, &["tokens", "revoke", "999"]),
        "no personal access token with id 999",
    );

    // Applications: create shows the secret once; list and show never do.
    let out = ok(&cli(
        &db,
        &[
            "applications",
            "create",
            "--name",
            "Wiki",
            "--redirect-uri",
            "https://wiki.example/cb",
            "--scopes",
            "read_user",
        ],
    ));
    assert!(out.contains("secret:") && out.contains("gloas-"), "{out}");
    let apps = json(&cli(&db, &["applications", "list", "--format", "json"]));
    assert_eq!(apps.as_array().unwrap().len(), 1);
    assert_eq!(apps[0]["application_name"], "Wiki");
    assert!(apps[0].get("secret").is_none());
    let id = apps[0]["id"].to_string();
    let renewed = json(&cli(
        &db,
        &["applications", "renew-secret", &id, "--format", "json"],
    ));
    assert!(renewed["secret"].as_str().unwrap().starts_with("gloas-"));
    let shown = json(&cli(
        &db,
        &["applications", "show", &id, "--format", "json"],
    ));
    assert_eq!(
        (
            shown["owner"].as_str(),
            shown["secrets"].as_array().map(Vec::len)
        ),
        (Some("instance"), Some(1))
    );
    assert!(shown.get("secret").is_none());
    refused(
        &cli(
            &db,
            &[
                "applications",
                "create",
                "--name",
                "Bad",
                "--redirect-uri",
                "not a uri",
                "--scopes",
                "api",
            ],
        ),
        "cannot create the application",
    );
    refused(
        &cli(&db, &["applications", "show", "nope"]),
        "no application \"nope\"",
    );

    // Keys: none until a server (or a rotation) makes one.
    assert_eq!(
        json(&cli(&db, &["keys", "list", "--format", "json"])),
        serde_json::json!([])
    );
    let kid = ok(&cli(&db, &["keys", "rotate"]));
    let keys = json(&cli(&db, &["keys", "list", "--format", "json"]));
    assert_eq!(keys[0]["kid"].as_str(), Some(kid.trim()));
    assert_eq!(keys[0]["state"], "signing");
}
