//! Instances on one PostgreSQL database answer token lookups from memory,
//! yet every change any of them (or the
//! command line, or a hand-written statement) finished is seen by all of
//! them at once: the database announces it (schema 15) and each instance
//! hears everything committed before it answers from memory. Runs when
//! LATCHKEY_TEST_POSTGRES_URL is set (CI always sets it).

use serde_json::{json, Value};
use sqlx::{Connection, Executor};

use crate::cluster::admin_url;
use crate::helpers::{PostgresDb, RequestAs};
use crate::process::{cli, start_with, wait_ready, Server};

const ROOT: &str = "glpat-cluster-cache-root-0123456789";

async fn status_of(c: &reqwest::Client, s: &Server, token: &str) -> u16 {
    c.get(format!("{}/api/v4/user", s.base))
        .private_token(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Token lookups `s` answered from memory so far.
async fn hits(c: &reqwest::Client, s: &Server) -> u64 {
    let text = c
        .get(format!("{}/-/metrics", s.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find(|l| l.starts_with("latchkey_token_cache_lookups_total{result=\"hit\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

async fn new_user(c: &reqwest::Client, s: &Server, name: &str) -> (i64, String) {
    let res = c
        .post(format!("{}/api/v4/users", s.base))
        .private_token(ROOT)
        .json(&json!({
            "username": name, "name": name, "email": format!("{name}@example.com"),
            "password": "correct horse battery staple 1"
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let user: Value = res.json().await.unwrap();
    let id = user["id"].as_i64().unwrap();
    let token = new_token(c, s, id).await;
    (id, token)
}

async fn new_token(c: &reqwest::Client, s: &Server, user_id: i64) -> String {
    let res = c
        .post(format!(
            "{}/api/v4/users/{user_id}/personal_access_tokens",
            s.base
        ))
        .private_token(ROOT)
        .json(&json!({"name": "t", "scopes": ["api"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let body: Value = res.json().await.unwrap();
    body["token"].as_str().unwrap().to_owned()
}

async fn token_id(c: &reqwest::Client, s: &Server, token: &str) -> i64 {
    let me: Value = c
        .get(format!("{}/api/v4/personal_access_tokens/self", s.base))
        .private_token(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    me["id"].as_i64().unwrap()
}

#[tokio::test]
async fn instances_answer_from_memory_yet_see_every_change_at_once() {
    let Some(admin) = admin_url() else { return };
    let db = PostgresDb::create(&admin).await;
    let mut a = start_with(&db.url, ROOT, &[]);
    let mut b = start_with(&db.url, ROOT, &[]);
    wait_ready(&mut a).await;
    wait_ready(&mut b).await;
    let c = reqwest::Client::new();

    // Revoked on A, refused by B on its very next request, round after
    // round; B answered from memory before each revocation.
    let (alice, _) = new_user(&c, &a, "alice").await;
    for round in 0..15 {
        let token = new_token(&c, &a, alice).await;
        let id = token_id(&c, &b, &token).await;
        let before = hits(&c, &b).await;
        assert_eq!(status_of(&c, &b, &token).await, 200, "round {round}");
        assert_eq!(status_of(&c, &b, &token).await, 200, "round {round}");
        assert!(
            hits(&c, &b).await > before,
            "round {round}: B answered from memory"
        );
        let res = c
            .delete(format!("{}/api/v4/personal_access_tokens/{id}", a.base))
            .private_token(ROOT)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 204);
        assert_eq!(status_of(&c, &b, &token).await, 401, "round {round}");
    }

    // A user blocked on A: B refuses their token at once; unblocked, it
    // works again at once.
    let (bob, bob_token) = new_user(&c, &a, "bob").await;
    assert_eq!(status_of(&c, &b, &bob_token).await, 200);
    assert_eq!(status_of(&c, &b, &bob_token).await, 200);
    for (action, want) in [("block", 403), ("unblock", 200)] {
        let res = c
            .post(format!("{}/api/v4/users/{bob}/{action}", a.base))
            .private_token(ROOT)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201, "{action}");
        let got = status_of(&c, &b, &bob_token).await;
        assert!(
            (want == 200 && got == 200) || (want != 200 && got != 200),
            "{action}: {got}"
        );
    }

    // The command line (another process) revokes: B refuses at once.
    let (carol, carol_token) = new_user(&c, &a, "carol").await;
    let _ = carol;
    assert_eq!(status_of(&c, &b, &carol_token).await, 200);
    let carol_token_id = token_id(&c, &a, &carol_token).await;
    let out = cli(&db.url, &["tokens", "revoke", &carol_token_id.to_string()]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(status_of(&c, &b, &carol_token).await, 401);

    // A statement by hand (an operator's UPDATE) is announced too.
    let (_, dave_token) = new_user(&c, &a, "dave").await;
    assert_eq!(status_of(&c, &b, &dave_token).await, 200);
    let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
    conn.execute("UPDATE users SET state = 'blocked' WHERE username = 'dave'")
        .await
        .unwrap();
    assert_ne!(status_of(&c, &b, &dave_token).await, 200);

    // Writes that change nothing a token authenticates as are not
    // announced: recording when tokens were last used, making new tokens.
    let (_, erin_token) = new_user(&c, &a, "erin").await;
    assert_eq!(status_of(&c, &b, &erin_token).await, 200);
    let before = hits(&c, &b).await;
    conn.execute("UPDATE personal_access_tokens SET last_used_at = 1")
        .await
        .unwrap();
    new_token(&c, &a, alice).await;
    assert_eq!(status_of(&c, &b, &erin_token).await, 200);
    assert_eq!(
        hits(&c, &b).await,
        before + 1,
        "B still answers from memory"
    );

    // The count of applications follows every instance's creates and
    // deletes at once.
    let total = |s: &Server| {
        let c = c.clone();
        let url = format!("{}/api/v4/applications?per_page=1", s.base);
        async move {
            let res = c.get(url).private_token(ROOT).send().await.unwrap();
            res.headers()["x-total"].to_str().unwrap().to_owned()
        }
    };
    assert_eq!(total(&b).await, "0");
    let mut ids = Vec::new();
    for n in 1..=5 {
        let res = c
            .post(format!("{}/api/v4/applications", a.base))
            .private_token(ROOT)
            .form(&[
                ("name", "counted"),
                ("redirect_uri", "https://c.example/cb"),
                ("scopes", "api"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
        let app: Value = res.json().await.unwrap();
        ids.push(app["id"].as_i64().unwrap());
        assert_eq!(total(&b).await, n.to_string());
        assert_eq!(total(&b).await, n.to_string());
    }
    let res = c
        .delete(format!("{}/api/v4/applications/{}", a.base, ids[0]))
        .private_token(ROOT)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(total(&b).await, "4");
    conn.execute("DELETE FROM oauth_applications")
        .await
        .unwrap();
    assert_eq!(total(&b).await, "0");
}
