//! The audit trail: `/api/v4/audit_events`, what is recorded, and what never is.

use serde_json::Value;

use crate::helpers::{status_json, RequestAs, TestApp};
use crate::oauth::Browser;

const PASSWORD: &str = "correct-horse-battery";

/// Every event the admin API shows, newest first (all pages).
async fn all_events(app: &TestApp, query: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for page in 1.. {
        let res = app
            .client
            .get(app.url(&format!(
                "/api/v4/audit_events?per_page=100&page={page}&{query}"
            )))
            .private_token(&app.root_token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let next = res.headers()["x-next-page"].to_str().unwrap().to_owned();
        let events: Vec<Value> = res.json().await.unwrap();
        out.extend(events);
        if next.is_empty() {
            break;
        }
    }
    out
}

fn named<'a>(events: &'a [Value], name: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["event_name"] == name).collect()
}

async fn create_user(app: &TestApp, username: &str) -> i64 {
    let res = app
        .client
        .post(app.url("/api/v4/users"))
        .private_token(&app.root_token)
        .form(&[
            ("username", username),
            ("email", &format!("{username}@example.com")),
            ("name", username),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    let (status, body) = status_json(res).await;
    assert_eq!(status, 201, "{body}");
    body["id"].as_i64().unwrap()
}

#[tokio::test]
async fn changes_are_recorded_with_author_target_address_and_request() {
    let app = TestApp::spawn().await;
    let res = app
        .client
        .post(app.url("/api/v4/applications"))
        .private_token(&app.root_token)
        .header("X-Request-Id", "create-app-1")
        .form(&[
            ("name", "Grafana"),
            ("redirect_uri", "https://grafana.example/cb"),
            ("scopes", "read_user openid"),
        ])
        .send()
        .await
        .unwrap();
    let (status, created) = status_json(res).await;
    assert_eq!(status, 201);
    let app_id = created["id"].as_i64().unwrap();
    let first_secret = created["secret"].as_str().unwrap().to_owned();
    let res = app
        .client
        .post(app.url(&format!("/api/v4/applications/{app_id}/renew-secret")))
        .private_token(&app.root_token)
        .send()
        .await
        .unwrap();
    let (status, renewed) = status_json(res).await;
    assert_eq!(status, 201);
    let second_secret = renewed["secret"].as_str().unwrap().to_owned();

    let alice = create_user(&app, "alice").await;
    let res = app
        .client
        .put(app.url(&format!("/api/v4/users/{alice}")))
        .private_token(&app.root_token)
        .form(&[
            ("email", "alice@new.example"),
            ("password", "another-long-secret"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    for action in ["block", "unblock"] {
        let res = app
            .client
            .post(app.url(&format!("/api/v4/users/{alice}/{action}")))
            .private_token(&app.root_token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
    }
    let res = app
        .client
        .post(app.url(&format!("/api/v4/users/{alice}/personal_access_tokens")))
        .private_token(&app.root_token)
        .form(&[("name", "ci"), ("scopes[]", "read_api")])
        .send()
        .await
        .unwrap();
    let (status, pat) = status_json(res).await;
    assert_eq!(status, 201, "{pat}");
    let pat_value = pat["token"].as_str().unwrap().to_owned();
    let res = app
        .client
        .delete(app.url(&format!("/api/v4/personal_access_tokens/{}", pat["id"])))
        .private_token(&app.root_token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let res = app
        .client
        .delete(app.url(&format!("/api/v4/applications/{app_id}")))
        .private_token(&app.root_token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);

    let res = app
        .client
        .get(app.url("/api/v4/audit_events?per_page=100"))
        .private_token(&app.root_token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let raw = res.text().await.unwrap();
    for secret in [
        first_secret.as_str(),
        second_secret.as_str(),
        pat_value.as_str(),
        PASSWORD,
        "another-long-secret",
        &app.root_token,
    ] {
        assert!(!raw.contains(secret), "a secret in the audit trail: {raw}");
    }
    let events: Vec<Value> = serde_json::from_str(&raw).unwrap();
    let ids: Vec<i64> = events.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(ids, sorted, "newest first");

    let created = named(&events, "oauth_application_created");
    assert_eq!(created.len(), 1, "{raw}");
    let e = created[0];
    // GitLab: an instance application is recorded under the admin who made it.
    assert_eq!(e["author_id"], app.root_id);
    assert_eq!(e["entity_type"], "User");
    assert_eq!(e["entity_id"], app.root_id);
    let d = &e["details"];
    assert_eq!(d["author_name"], "Administrator");
    let res = app
        .client
        .get(app.url("/api/v4/user"))
        .private_token(&app.root_token)
        .send()
        .await
        .unwrap();
    let me: Value = res.json().await.unwrap();
    assert_eq!(d["author_email"], me["email"]);
    assert_eq!(d["target_type"], "Authn::OauthApplication");
    assert_eq!(d["target_id"], app_id);
    assert_eq!(d["target_details"], "Grafana");
    assert_eq!(d["ip_address"], "127.0.0.1");
    assert_eq!(d["request_id"], "create-app-1");
    assert_eq!(d["entity_path"], "root");
    assert_eq!(d["custom_message"], "OAuth application added");
    assert!(e["created_at"].as_str().unwrap().ends_with('Z'));

    assert_eq!(named(&events, "oauth_application_secret_renewed").len(), 1);
    assert_eq!(named(&events, "oauth_application_deleted").len(), 1);
    // root, made at first start by latchkey itself, and alice.
    let created_users = named(&events, "user_created");
    assert_eq!(created_users.len(), 2, "{raw}");
    assert_eq!(created_users[1]["author_id"], -1);
    assert_eq!(created_users[1]["details"]["author_name"], "latchkey");
    assert_eq!(created_users[0]["details"]["target_details"], "alice");
    assert_eq!(named(&events, "user_blocked").len(), 1);
    assert_eq!(named(&events, "user_unblocked").len(), 1);
    assert_eq!(
        named(&events, "personal_access_token_created").len(),
        2,
        "root's and alice's"
    );
    assert_eq!(named(&events, "personal_access_token_revoked").len(), 1);
    assert_eq!(named(&events, "user_password_changed").len(), 1);

    let updated = named(&events, "user_updated");
    assert_eq!(updated.len(), 1, "only the email changed: {raw}");
    let d = &updated[0]["details"];
    assert_eq!(d["change"], "email");
    assert_eq!(d["from"], "alice@example.com");
    assert_eq!(d["to"], "alice@new.example");
    assert_eq!(updated[0]["entity_type"], "User");
    assert_eq!(updated[0]["entity_id"], alice);
    assert_eq!(d["target_details"], "alice");

    // One event, read on its own.
    let res = app
        .client
        .get(app.url(&format!("/api/v4/audit_events/{}", e["id"])))
        .private_token(&app.root_token)
        .send()
        .await
        .unwrap();
    let (status, one) = status_json(res).await;
    assert_eq!(status, 200);
    assert_eq!(&one, e);
}

#[tokio::test]
async fn failed_sign_ins_are_recorded_once_per_account_and_address_and_the_lockout_too() {
    let app = TestApp::spawn().await;
    let alice = create_user(&app, "alice").await;
    let mut browser = Browser::new();
    for _ in 0..5 {
        let res = browser.sign_in(&app, "alice", "wrong-password-1").await;
        assert_ne!(res.status(), 302, "a wrong password never signs in");
    }
    // Logins that name nobody: recorded without what was typed (it may be
    // a password typed in the wrong field), once per address however many
    // logins are made up.
    for n in 0..3 {
        browser
            .sign_in(&app, &format!("hunter2-typed-as-login-{n}"), "x-password-x")
            .await;
    }
    let mut bob_browser = Browser::new();
    create_user(&app, "bob").await;
    let res = bob_browser.sign_in(&app, "bob", PASSWORD).await;
    assert_eq!(res.status(), 302, "bob signs in");

    let events = all_events(&app, "").await;
    let raw = serde_json::to_string(&events).unwrap();
    assert!(!raw.contains("hunter2-typed-as-login"), "{raw}");
    assert!(!raw.contains("wrong-password-1"), "{raw}");

    let failures = named(&events, "login_failed_with_standard_authentication");
    let for_alice: Vec<_> = failures
        .iter()
        .filter(|e| e["entity_type"] == "User" && e["entity_id"] == alice)
        .collect();
    assert_eq!(for_alice.len(), 1, "one per account and address: {raw}");
    assert_eq!(for_alice[0]["author_id"], -1);
    assert_eq!(
        for_alice[0]["details"]["author_name"],
        "An unauthenticated user"
    );
    assert_eq!(for_alice[0]["details"]["ip_address"], "127.0.0.1");
    let for_nobody: Vec<_> = failures
        .iter()
        .filter(|e| e["entity_type"] == "Gitlab::Audit::InstanceScope")
        .collect();
    assert_eq!(for_nobody.len(), 1, "{raw}");

    let locked = named(&events, "user_access_locked");
    assert_eq!(locked.len(), 1, "{raw}");
    assert_eq!(locked[0]["entity_id"], alice);

    let signed_in = named(&events, "user_signed_in");
    assert_eq!(signed_in.len(), 1, "{raw}");
    let bob = signed_in[0]["entity_id"].as_i64().unwrap();
    assert_eq!(
        signed_in[0]["author_id"], bob,
        "the user signed themselves in"
    );
    assert_eq!(signed_in[0]["details"]["with"], "web");
    assert_eq!(signed_in[0]["details"]["entity_path"], "bob");

    // Ending the session is recorded once, as its user's, however often it
    // is ended and whoever asks.
    let cookie = bob_browser.session().unwrap();
    for _ in 0..2 {
        let nobody = latchkey_core::context::Context::default();
        app.services.end_session(&nobody, &cookie).await.unwrap();
    }
    let events = all_events(&app, "").await;
    let out = named(&events, "user_signed_out");
    assert_eq!(out.len(), 1, "{events:?}");
    assert_eq!(out[0]["author_id"], bob);
    assert_eq!(out[0]["entity_id"], bob);
}

#[tokio::test]
async fn an_oauth_token_revoked_twice_is_recorded_once() {
    let app = TestApp::spawn().await;
    let client = crate::oauth::register(&app, true, "api read_user").await;
    let (status, body, _) = crate::oauth::token_request(
        &app,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &client.client_id),
            ("client_secret", &client.secret),
            ("scope", "read_user"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let access = body["access_token"].as_str().unwrap().to_owned();
    for _ in 0..3 {
        let res = app
            .client
            .post(app.url("/oauth/revoke"))
            .form(&[
                ("token", access.as_str()),
                ("client_id", &client.client_id),
                ("client_secret", &client.secret),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    }
    let events = all_events(&app, "").await;
    let revoked = named(&events, "oauth_token_revoked");
    assert_eq!(revoked.len(), 1, "{events:?}");
    let raw = serde_json::to_string(&events).unwrap();
    assert!(!raw.contains(&access) && !raw.contains(&client.secret));
    assert_eq!(revoked[0]["author_id"], -1);
    assert_eq!(
        revoked[0]["details"]["author_class"],
        "Authn::OauthApplication"
    );
    assert_eq!(
        revoked[0]["entity_type"], "Gitlab::Audit::InstanceScope",
        "a client's own token concerns no user"
    );
}

#[tokio::test]
async fn filters_pagination_and_gitlabs_parameter_errors() {
    let app = TestApp::spawn().await;
    let alice = create_user(&app, "alice").await;
    let bob = create_user(&app, "bob").await;
    for user in [alice, alice, bob] {
        let res = app
            .client
            .post(app.url(&format!("/api/v4/users/{user}/personal_access_tokens")))
            .private_token(&app.root_token)
            .form(&[("name", "t"), ("scopes[]", "read_api")])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
    }

    let for_alice = all_events(&app, &format!("entity_type=User&entity_id={alice}")).await;
    assert_eq!(for_alice.len(), 3, "created, and two tokens: {for_alice:?}");
    assert!(for_alice.iter().all(|e| e["entity_id"] == alice));
    let users = all_events(&app, "entity_type=User").await;
    assert!(users.len() >= 6);
    // GitLab's finder: an entity id without its type filters nothing.
    let everything = all_events(&app, "").await;
    assert_eq!(
        all_events(&app, &format!("entity_id={alice}")).await.len(),
        everything.len()
    );
    assert!(all_events(&app, "entity_type=Group").await.is_empty());

    assert!(all_events(&app, "created_after=2999-01-01T00:00:00Z")
        .await
        .is_empty());
    assert!(all_events(&app, "created_before=2000-01-01")
        .await
        .is_empty());
    assert_eq!(
        all_events(
            &app,
            "created_after=2000-01-01&created_before=2999-01-01T00:00:00Z"
        )
        .await
        .len(),
        everything.len()
    );

    // Offset pages with GitLab's headers.
    let res = app
        .client
        .get(app.url("/api/v4/audit_events?per_page=2&page=2"))
        .private_token(&app.root_token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["x-page"], "2");
    assert_eq!(res.headers()["x-per-page"], "2");
    assert_eq!(
        res.headers()["x-total"].to_str().unwrap(),
        everything.len().to_string()
    );
    let page: Vec<Value> = res.json().await.unwrap();
    assert_eq!(page, everything[2..4].to_vec());

    // Keyset pages: newest first, following the Link header.
    let mut url = app.url("/api/v4/audit_events?pagination=keyset&per_page=2");
    let mut seen = Vec::new();
    loop {
        let res = app
            .client
            .get(&url)
            .private_token(&app.root_token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let link = res
            .headers()
            .get("link")
            .map(|l| l.to_str().unwrap().to_owned());
        let page: Vec<Value> = res.json().await.unwrap();
        seen.extend(page);
        match link {
            Some(l) => {
                assert!(l.contains("id_before="), "{l}");
                url = l
                    .trim_start_matches('<')
                    .split('>')
                    .next()
                    .unwrap()
                    .to_owned();
            }
            None => break,
        }
    }
    assert_eq!(seen, everything);

    for (query, error) in [
        (
            "entity_type=Application",
            "entity_type does not have a valid value",
        ),
        (
            "entity_type=user",
            "entity_type does not have a valid value",
        ),
        ("entity_id=abc&entity_type=User", "entity_id is invalid"),
        ("created_after=yesterday", "created_after is invalid"),
        ("created_before=2026-13-45", "created_before is invalid"),
        (
            "pagination=keyset&sort=sideways",
            "sort does not have a valid value",
        ),
    ] {
        let res = app
            .client
            .get(app.url(&format!("/api/v4/audit_events?{query}")))
            .private_token(&app.root_token)
            .send()
            .await
            .unwrap();
        let (status, body) = status_json(res).await;
        assert_eq!(status, 400, "{query}");
        assert_eq!(body["error"], error, "{query}");
    }
}

#[tokio::test]
async fn only_administrators_read_the_trail() {
    let app = TestApp::spawn().await;
    let (_, token) = app.user_with_token("mallory", false, "api").await;
    for path in ["/api/v4/audit_events", "/api/v4/audit_events/1"] {
        let res = app
            .client
            .get(app.url(path))
            .private_token(&token)
            .send()
            .await
            .unwrap();
        let (status, body) = status_json(res).await;
        assert_eq!(status, 403, "{path}");
        assert_eq!(body["message"], "403 Forbidden");
        let res = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(res.status(), 401, "{path}");
    }
    for id in ["999999", "0", "abc"] {
        let res = app
            .client
            .get(app.url(&format!("/api/v4/audit_events/{id}")))
            .private_token(&app.root_token)
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        assert!(status == 404 || status == 400, "{id}: {status}");
    }
}

#[tokio::test]
async fn a_refused_change_records_nothing() {
    let app = TestApp::spawn().await;
    let (second, _) = app.user_with_token("second", true, "api").await;
    let before = all_events(&app, "").await.len();
    // The last active administrator is never demoted: the refusal rolls
    // back the whole unit, its event with it.
    let res = app
        .client
        .put(app.url(&format!("/api/v4/users/{second}")))
        .private_token(&app.root_token)
        .form(&[("admin", "false")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "demoting one of two admins is fine");
    let res = app
        .client
        .put(app.url(&format!("/api/v4/users/{}", app.root_id)))
        .private_token(&app.root_token)
        .form(&[("admin", "false")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let res = app
        .client
        .post(app.url("/api/v4/users"))
        .private_token(&app.root_token)
        .form(&[
            ("username", "root"),
            ("email", "someone@example.com"),
            ("name", "Taken"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 409);
    let after = all_events(&app, "").await;
    assert_eq!(
        after.len(),
        before + 1,
        "only the first demotion: {after:?}"
    );
    assert_eq!(after[0]["details"]["change"], "admin");
    assert_eq!(after[0]["details"]["from"], "true");
    assert_eq!(after[0]["details"]["to"], "false");
}

#[tokio::test]
async fn the_audit_log_streams_each_committed_event_as_a_json_line() {
    use crate::process::{start_with, wait_ready};
    const ROOT: &str = "glpat-audit-log-root-token-0123456789";
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}?mode=rwc", dir.path().join("l.db").display());
    let log = dir.path().join("audit.jsonl");
    let mut server = start_with(
        &db,
        ROOT,
        &[
            ("LATCHKEY_AUDIT_LOG", log.to_str().unwrap()),
            ("LATCHKEY_AUDIT_RETENTION_DAYS", "90"),
        ],
    );
    wait_ready(&mut server).await;
    let client = reqwest::Client::new();
    let res = client
        .post(format!("{}/api/v4/applications", server.base))
        .private_token(ROOT)
        .form(&[
            ("name", "Streamed"),
            ("redirect_uri", "https://example.com/cb"),
            ("scopes", "api"),
        ])
        .send()
        .await
        .unwrap();
    let (status, created) = status_json(res).await;
    assert_eq!(status, 201);
    let secret = created["secret"].as_str().unwrap().to_owned();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let lines: Vec<Value> = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("every line is JSON"))
            .collect();
        if lines
            .iter()
            .any(|e| e["event_name"] == "oauth_application_created")
        {
            assert!(!text.contains(&secret), "{text}");
            assert!(!text.contains(ROOT), "{text}");
            break lines;
        }
        assert!(std::time::Instant::now() < deadline, "not logged: {text}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    // The first start's own events come first, then the application's,
    // each as the API shows it.
    assert_eq!(lines[0]["event_name"], "user_created");
    let streamed = lines
        .iter()
        .find(|e| e["event_name"] == "oauth_application_created")
        .unwrap();
    let res = client
        .get(format!(
            "{}/api/v4/audit_events/{}",
            server.base, streamed["id"]
        ))
        .private_token(ROOT)
        .send()
        .await
        .unwrap();
    let (status, stored) = status_json(res).await;
    assert_eq!(status, 200);
    assert_eq!(stored["details"]["target_details"], "Streamed");
    assert_eq!(stored["created_at"], streamed["created_at"]);
    assert_eq!(stored["entity_id"], streamed["entity_id"]);
}
