//! GitLab's Users API as real clients use it: the list filters and
//! orders, every profile field, and who sees which entity.

use serde_json::{json, Value};

use crate::helpers::{status_json, RequestAs, TestApp};

async fn create(app: &TestApp, username: &str, extra: &[(&str, &str)]) -> Value {
    let email = format!("{username}@example.com");
    let mut form = vec![
        ("username", username),
        ("email", email.as_str()),
        ("name", username),
        ("password", "correct-horse-battery"),
    ];
    form.extend_from_slice(extra);
    let res = app
        .client
        .post(app.url("/api/v4/users"))
        .private_token(&app.root_token)
        .form(&form)
        .send()
        .await
        .unwrap();
    let (status, body) = status_json(res).await;
    assert_eq!(status, 201, "{body}");
    body
}

async fn list(app: &TestApp, token: &str, query: &str) -> (u16, Value) {
    let res = app
        .client
        .get(app.url(&format!("/api/v4/users?per_page=100&{query}")))
        .private_token(token)
        .send()
        .await
        .unwrap();
    status_json(res).await
}

fn usernames(body: &Value) -> Vec<String> {
    body.as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn the_list_filters_and_orders_as_gitlab_does() {
    let app = TestApp::spawn().await;
    create(&app, "carol", &[("external", "true")]).await;
    let bob = create(&app, "bob", &[]).await;
    create(&app, "alice", &[("admin", "true")]).await;
    let res = app
        .client
        .post(app.url(&format!("/api/v4/users/{}/block", bob["id"])))
        .private_token(&app.root_token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let root = app.root_token.clone();

    let (_, all) = list(&app, &root, "").await;
    assert_eq!(
        usernames(&all),
        ["alice", "bob", "carol", "root"],
        "id, descending"
    );
    let (_, blocked) = list(&app, &root, "blocked=true").await;
    assert_eq!(usernames(&blocked), ["bob"]);
    let (_, active) = list(&app, &root, "active=true").await;
    assert_eq!(usernames(&active), ["alice", "carol", "root"]);
    let (_, admins) = list(&app, &root, "admins=true").await;
    assert_eq!(usernames(&admins), ["alice", "root"]);
    let (_, external) = list(&app, &root, "external=true").await;
    assert_eq!(usernames(&external), ["carol"]);
    let (_, internal) = list(&app, &root, "exclude_external=true").await;
    assert_eq!(usernames(&internal), ["alice", "bob", "root"]);
    let (_, both) = list(&app, &root, "external=true&exclude_external=true").await;
    assert!(usernames(&both).is_empty(), "both apply, as in GitLab");
    let (_, none) = list(&app, &root, "without_project_bots=true&blocked=false").await;
    assert_eq!(usernames(&none).len(), 4);
    let (_, by_name) = list(&app, &root, "order_by=username&sort=asc").await;
    assert_eq!(usernames(&by_name), ["alice", "bob", "carol", "root"]);
    let (_, by_name_desc) = list(&app, &root, "order_by=name").await;
    // root is "Administrator": capitals sort before small letters.
    assert_eq!(usernames(&by_name_desc), ["carol", "bob", "alice", "root"]);
    let (_, oldest) = list(&app, &root, "order_by=created_at&sort=asc").await;
    assert_eq!(usernames(&oldest)[0], "root");
    let (_, updated) = list(&app, &root, "order_by=updated_at&sort=desc").await;
    assert_eq!(usernames(&updated)[0], "bob", "blocked last");
    let (_, future) = list(&app, &root, "created_after=2999-01-01T00:00:00Z").await;
    assert_eq!(usernames(&future).len(), 0);
    let (_, past) = list(&app, &root, "created_before=2000-01-01").await;
    assert_eq!(usernames(&past).len(), 0);
    let (_, now) = list(
        &app,
        &root,
        "created_after=2000-01-01&created_before=2999-01-01",
    )
    .await;
    assert_eq!(usernames(&now).len(), 4);

    for (query, error) in [
        ("order_by=email", "order_by does not have a valid value"),
        ("sort=up", "sort does not have a valid value"),
        ("blocked=maybe", "blocked is invalid"),
        ("created_after=soon", "created_after is invalid"),
    ] {
        let (status, body) = list(&app, &root, query).await;
        assert_eq!(
            (status, &body),
            (400, &json!({ "error": error })),
            "{query}"
        );
    }

    // Others: the basic entity, and the filters GitLab keeps for
    // administrators are ignored.
    let (_, token) = app.user_with_token("dave", false, "read_api").await;
    let (status, seen) = list(&app, &token, "admins=true&external=true").await;
    assert_eq!(status, 200);
    assert_eq!(usernames(&seen).len(), 5, "ignored for non-administrators");
    let (_, seen) = list(&app, &token, "exclude_external=true").await;
    assert_eq!(
        usernames(&seen).len(),
        5,
        "who is external is not for others to learn"
    );
    assert!(seen[0].get("email").is_none(), "{seen}");
    assert!(seen[0].get("is_admin").is_none(), "{seen}");
    let (_, blocked) = list(&app, &token, "blocked=true").await;
    assert_eq!(usernames(&blocked), ["bob"]);
}

#[tokio::test]
async fn every_profile_field_is_stored_returned_and_audited() {
    let app = TestApp::spawn().await;
    let alice = create(&app, "alice", &[("bio", "Hello")]).await;
    assert_eq!(alice["bio"], "Hello");
    let id = alice["id"].as_i64().unwrap();
    let fields = [
        ("bio", "I build things"),
        ("location", "Berlin"),
        ("website_url", "https://alice.example"),
        ("organization", "ACME"),
        ("job_title", "Engineer"),
        ("pronouns", "she/her"),
        ("public_email", "alice@example.com"),
        ("linkedin", "alice-l"),
        ("twitter", "alice_t"),
        ("discord", "123456789012345678"),
        ("skype", "alice.s"),
        ("note", "met at the conference"),
    ];
    let mut form: Vec<(&str, &str)> = fields.to_vec();
    form.extend([
        ("private_profile", "false"),
        ("external", "true"),
        ("can_create_group", "false"),
        ("projects_limit", "42"),
        ("theme_id", "11"),
        ("color_scheme_id", "2"),
        ("commit_email", "alice@example.com"),
    ]);
    let res = app
        .client
        .put(app.url(&format!("/api/v4/users/{id}")))
        .private_token(&app.root_token)
        .form(&form)
        .send()
        .await
        .unwrap();
    let (status, updated) = status_json(res).await;
    assert_eq!(status, 200, "{updated}");
    for (key, value) in fields {
        assert_eq!(updated[key], value, "{key}");
    }
    assert_eq!(updated["external"], true);
    assert_eq!(updated["can_create_group"], false);
    assert_eq!(updated["projects_limit"], 42);
    assert_eq!(updated["theme_id"], 11);
    assert_eq!(updated["color_scheme_id"], 2);
    assert_eq!(updated["commit_email"], "alice@example.com");
    assert_eq!(updated["work_information"], "Engineer at ACME");

    // The same values again change nothing (nothing written, nothing on
    // the record).
    let count = || async {
        let res = app
            .client
            .get(app.url(&format!(
                "/api/v4/audit_events?entity_type=User&entity_id={id}"
            )))
            .private_token(&app.root_token)
            .send()
            .await
            .unwrap();
        res.headers()["x-total"].to_str().unwrap().to_owned()
    };
    let events_before = count().await;
    let res = app
        .client
        .put(app.url(&format!("/api/v4/users/{id}")))
        .private_token(&app.root_token)
        .form(&[("bio", "I build things"), ("location", "Berlin")])
        .send()
        .await
        .unwrap();
    let (status, same) = status_json(res).await;
    assert_eq!(status, 200);
    assert_eq!(same, updated);
    assert_eq!(count().await, events_before);

    // Read back: as stored, by the administrator.
    let res = app
        .client
        .get(app.url(&format!("/api/v4/users/{id}")))
        .private_token(&app.root_token)
        .send()
        .await
        .unwrap();
    let (_, read) = status_json(res).await;
    assert_eq!(read, updated);

    // Another user sees the public profile, never the note or the email.
    let (_, token) = app.user_with_token("bob", false, "read_api").await;
    let res = app
        .client
        .get(app.url(&format!("/api/v4/users/{id}")))
        .private_token(&token)
        .send()
        .await
        .unwrap();
    let (_, public) = status_json(res).await;
    assert_eq!(public["bio"], "I build things");
    assert_eq!(public["public_email"], "alice@example.com");
    assert!(public.get("note").is_none(), "{public}");
    assert!(public.get("email").is_none(), "{public}");
    assert!(public.get("is_admin").is_none(), "{public}");

    // A private profile shows others only the basics.
    let res = app
        .client
        .put(app.url(&format!("/api/v4/users/{id}")))
        .private_token(&app.root_token)
        .form(&[("private_profile", "true")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = app
        .client
        .get(app.url(&format!("/api/v4/users/{id}")))
        .private_token(&token)
        .send()
        .await
        .unwrap();
    let (_, private) = status_json(res).await;
    assert!(private.get("bio").is_none(), "{private}");
    assert_eq!(private["username"], "alice");

    // A new email: a public email that named the old one is cleared.
    let res = app
        .client
        .put(app.url(&format!("/api/v4/users/{id}")))
        .private_token(&app.root_token)
        .form(&[("email", "alice@moved.example")])
        .send()
        .await
        .unwrap();
    let (status, moved) = status_json(res).await;
    assert_eq!(status, 200, "{moved}");
    assert!(moved["public_email"].is_null(), "{moved}");
    assert_eq!(moved["commit_email"], "alice@moved.example");
    let res = app
        .client
        .put(app.url(&format!("/api/v4/users/{id}")))
        .private_token(&app.root_token)
        .form(&[
            ("email", "alice@example.com"),
            ("public_email", "alice@example.com"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    // Refused values: nothing stored, GitLab's validation errors.
    for (key, value, message) in [
        ("website_url", "javascript:alert(1)", "is not a valid URL"),
        (
            "public_email",
            "someone@else.example",
            "is not an email you own",
        ),
        ("discord", "alice#1", "must contain only a discord user ID."),
        (
            "commit_email",
            "else@where.example",
            "is not an email you own",
        ),
        ("theme_id", "99", "is not included in the list"),
    ] {
        let res = app
            .client
            .put(app.url(&format!("/api/v4/users/{id}")))
            .private_token(&app.root_token)
            .form(&[(key, value)])
            .send()
            .await
            .unwrap();
        let (status, body) = status_json(res).await;
        assert_eq!(status, 400, "{key}");
        assert_eq!(body["message"][key][0], message, "{body}");
    }
    // No external identities here: said, not ignored.
    let res = app
        .client
        .put(app.url(&format!("/api/v4/users/{id}")))
        .private_token(&app.root_token)
        .form(&[("provider", "github"), ("extern_uid", "1")])
        .send()
        .await
        .unwrap();
    let (status, body) = status_json(res).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["message"].as_str().unwrap().contains("not supported"));
    let bio = "x".repeat(256);
    let res = app
        .client
        .put(app.url(&format!("/api/v4/users/{id}")))
        .private_token(&app.root_token)
        .form(&[("bio", bio.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);

    // Each changed field is on the record with from and to.
    let res = app
        .client
        .get(app.url(&format!(
            "/api/v4/audit_events?entity_type=User&entity_id={id}&per_page=100"
        )))
        .private_token(&app.root_token)
        .send()
        .await
        .unwrap();
    let events: Vec<Value> = res.json().await.unwrap();
    let change = |what: &str| {
        events
            .iter()
            .find(|e| e["details"]["change"] == what)
            .map(|e| (e["details"]["from"].clone(), e["details"]["to"].clone()))
    };
    assert_eq!(
        change("bio"),
        Some((json!("Hello"), json!("I build things")))
    );
    assert_eq!(change("external"), Some((json!("false"), json!("true"))));
    assert_eq!(
        change("projects_limit"),
        Some((json!("100000"), json!("42")))
    );
}

#[tokio::test]
async fn a_user_sees_their_own_profile_and_the_current_user_endpoint_too() {
    let app = TestApp::spawn().await;
    let (id, token) = app.user_with_token("erin", false, "api").await;
    let res = app
        .client
        .put(app.url(&format!("/api/v4/users/{id}")))
        .private_token(&app.root_token)
        .form(&[("location", "Lisbon"), ("note", "admins only")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = app
        .client
        .get(app.url("/api/v4/user"))
        .private_token(&token)
        .send()
        .await
        .unwrap();
    let (status, me) = status_json(res).await;
    assert_eq!(status, 200);
    assert_eq!(me["location"], "Lisbon");
    assert_eq!(me["email"], "erin@example.com");
    assert!(me.get("note").is_none(), "{me}");
    // GitLab: /users/:id is the public profile, for the user themselves too.
    let res = app
        .client
        .get(app.url(&format!("/api/v4/users/{id}")))
        .private_token(&token)
        .send()
        .await
        .unwrap();
    let (status, public) = status_json(res).await;
    assert_eq!(status, 200);
    assert_eq!(public["location"], "Lisbon");
    assert!(public.get("email").is_none(), "{public}");
    assert!(public.get("note").is_none(), "{public}");
}

#[tokio::test]
async fn a_users_projects_and_events_are_empty_lists() {
    let app = TestApp::spawn().await;
    let (id, token) = app.user_with_token("grace", false, "read_api").await;
    for what in ["projects", "events"] {
        let res = app
            .client
            .get(app.url(&format!("/api/v4/users/{id}/{what}")))
            .private_token(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.headers()["x-total"], "0");
        assert_eq!(status_json(res).await, (200, json!([])), "{what}");
        let res = app
            .client
            .get(app.url(&format!("/api/v4/users/999999/{what}")))
            .private_token(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(
            status_json(res).await,
            (404, json!({"message": "404 User Not Found"}))
        );
    }
}

#[tokio::test]
async fn gitlabs_reserved_names_are_refused() {
    let app = TestApp::spawn().await;
    for name in ["admin", "API", "users", "groups", "oauth", "-", "help"] {
        let res = app
            .client
            .post(app.url("/api/v4/users"))
            .private_token(&app.root_token)
            .form(&[
                ("username", name),
                ("email", "reserved@example.com"),
                ("name", "Reserved"),
                ("password", "correct-horse-battery"),
            ])
            .send()
            .await
            .unwrap();
        let (status, body) = status_json(res).await;
        assert_eq!(status, 400, "{name}: {body}");
        assert!(
            body["message"]["username"][0]
                .as_str()
                .unwrap()
                .ends_with("is a reserved name"),
            "{body}"
        );
    }
    let (id, _) = app.user_with_token("renamed", false, "api").await;
    let res = app
        .client
        .put(app.url(&format!("/api/v4/users/{id}")))
        .private_token(&app.root_token)
        .form(&[("username", "dashboard")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    // A user who had the name before the rule keeps it, and can be updated
    // with it repeated.
    app.raw_sql(&format!(
        "UPDATE users SET username = 'help' WHERE id = {id}"
    ))
    .await;
    let res = app
        .client
        .put(app.url(&format!("/api/v4/users/{id}")))
        .private_token(&app.root_token)
        .form(&[("username", "help"), ("name", "Helpful")])
        .send()
        .await
        .unwrap();
    let (status, body) = status_json(res).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["name"], "Helpful");
}

#[tokio::test]
async fn personal_access_tokens_filter_and_record_their_last_use() {
    let app = TestApp::spawn().await;
    let (id, used) = app.user_with_token("frank", false, "api").await;
    let make = |name: &'static str| {
        let req = app
            .client
            .post(app.url(&format!("/api/v4/users/{id}/personal_access_tokens")))
            .private_token(&app.root_token)
            .form(&[("name", name), ("scopes[]", "read_api")]);
        async move {
            let (status, body) = status_json(req.send().await.unwrap()).await;
            assert_eq!(status, 201, "{body}");
            body
        }
    };
    let ci = make("CI deploy").await;
    let laptop = make("laptop").await;
    let res = app
        .client
        .delete(app.url(&format!("/api/v4/personal_access_tokens/{}", laptop["id"])))
        .private_token(&app.root_token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);

    // A use is noted, and written by the next flush (the server flushes in
    // the background and at shutdown); never on the request path.
    let res = app
        .client
        .get(app.url("/api/v4/user"))
        .private_token(&used)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // A request the token may not make is no use of it.
    let (reader_id, reader) = app.user_with_token("reader", false, "read_user").await;
    let res = app
        .client
        .post(app.url("/api/v4/user/applications"))
        .private_token(&reader)
        .form(&[
            ("name", "x"),
            ("redirect_uri", "https://x.example/cb"),
            ("scopes", "api"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert!(app.services.flush_usage().await.unwrap() >= 1);
    let res = app
        .client
        .get(app.url(&format!(
            "/api/v4/personal_access_tokens?user_id={reader_id}"
        )))
        .private_token(&app.root_token)
        .send()
        .await
        .unwrap();
    let (_, readers) = status_json(res).await;
    assert!(readers[0]["last_used_at"].is_null(), "{readers}");

    let names = |query: &str| {
        let req = app
            .client
            .get(app.url(&format!(
                "/api/v4/personal_access_tokens?user_id={id}&{query}"
            )))
            .private_token(&app.root_token);
        async move {
            let (status, body) = status_json(req.send().await.unwrap()).await;
            assert_eq!(status, 200, "{body}");
            let mut names: Vec<String> = body
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["name"].as_str().unwrap().to_owned())
                .collect();
            names.sort();
            (names, body)
        }
    };
    let (all, body) = names("").await;
    assert_eq!(all, ["CI deploy", "laptop", "test"]);
    let test = body
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "test")
        .unwrap();
    assert!(
        test["last_used_at"].as_str().unwrap().ends_with('Z'),
        "{test}"
    );
    assert!(body
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["name"] != "test")
        .all(|t| t["last_used_at"].is_null()));
    assert_eq!(names("state=active").await.0, ["CI deploy", "test"]);
    assert_eq!(names("state=inactive").await.0, ["laptop"]);
    assert_eq!(names("revoked=true").await.0, ["laptop"]);
    assert_eq!(names("revoked=false").await.0, ["CI deploy", "test"]);
    assert_eq!(names("search=DEPLOY").await.0, ["CI deploy"]);
    assert_eq!(names("last_used_after=2000-01-01").await.0, ["test"]);
    assert!(names("last_used_before=2000-01-01").await.0.is_empty());
    assert!(names("created_after=2999-01-01").await.0.is_empty());
    assert_eq!(names("created_before=2999-01-01").await.0.len(), 3);
    let _ = ci;

    for (query, error) in [
        ("state=expired", "state does not have a valid value"),
        ("revoked=perhaps", "revoked is invalid"),
        ("last_used_after=later", "last_used_after is invalid"),
    ] {
        let res = app
            .client
            .get(app.url(&format!("/api/v4/personal_access_tokens?{query}")))
            .private_token(&app.root_token)
            .send()
            .await
            .unwrap();
        let (status, body) = status_json(res).await;
        assert_eq!((status, body), (400, json!({ "error": error })), "{query}");
    }
}

#[tokio::test]
async fn token_uses_noted_before_a_shutdown_are_written_by_it() {
    use crate::process::{start_with, wait_ready};
    use std::time::{Duration, Instant};
    const ROOT: &str = "glpat-last-used-root-token-0123456789";
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}?mode=rwc", dir.path().join("l.db").display());
    let client = reqwest::Client::new();
    let mut server = start_with(&db, ROOT, &[]);
    wait_ready(&mut server).await;
    let res = client
        .get(format!("{}/api/v4/user", server.base))
        .private_token(ROOT)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // Well within the background flush's 10 s: only the shutdown writes it.
    let status = std::process::Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    while server.child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "latchkey did not exit");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(server);
    let mut again = start_with(&db, ROOT, &[]);
    wait_ready(&mut again).await;
    let res = client
        .get(format!("{}/api/v4/personal_access_tokens/self", again.base))
        .private_token(ROOT)
        .send()
        .await
        .unwrap();
    let (status, me) = status_json(res).await;
    assert_eq!(status, 200);
    assert!(me["last_used_at"].is_string(), "{me}");
}

/// A small PNG (1×1, transparent), as an upload would send it.
pub const PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
    0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0x00, 0x01, 0x00, 0x00,
    0x05, 0x00, 0x01, 0x0d, 0x0a, 0x2d, 0xb4, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae,
    0x42, 0x60, 0x82,
];

#[tokio::test]
async fn avatars_are_uploaded_served_unchanged_and_gravatar_otherwise() {
    use reqwest::multipart::{Form, Part};
    let app = TestApp::spawn().await;
    let res = app
        .client
        .get(app.url("/api/v4/user"))
        .private_token(&app.root_token)
        .send()
        .await
        .unwrap();
    let (_, me) = status_json(res).await;
    let gravatar = me["avatar_url"].as_str().unwrap();
    assert!(
        gravatar.starts_with("https://www.gravatar.com/avatar/"),
        "{gravatar}"
    );
    assert!(
        !gravatar.contains("root@"),
        "the email is hashed: {gravatar}"
    );

    let form = Form::new()
        .text("username", "pictured")
        .text("email", "pictured@example.com")
        .text("name", "Pictured")
        .text("password", "correct-horse-battery")
        .part(
            "avatar",
            Part::bytes(PNG.to_vec())
                .file_name("me.png")
                .mime_str("application/octet-stream")
                .unwrap(),
        );
    let res = app
        .client
        .post(app.url("/api/v4/users"))
        .private_token(&app.root_token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    let (status, user) = status_json(res).await;
    assert_eq!(status, 201, "{user}");
    let url = user["avatar_url"].as_str().unwrap().to_owned();
    assert_eq!(
        url,
        app.url(&format!(
            "/uploads/-/system/user/avatar/{}/avatar.png",
            user["id"]
        ))
    );
    // Public, and the bytes as uploaded, typed by what they are.
    let res = app.client.get(&url).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "image/png");
    assert_eq!(res.bytes().await.unwrap().as_ref(), PNG);
    for wrong in ["avatar.jpg", "other.png"] {
        let res = app
            .client
            .get(app.url(&format!(
                "/uploads/-/system/user/avatar/{}/{wrong}",
                user["id"]
            )))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 404, "{wrong}");
    }

    // Not an image (whatever its name says): GitLab's error, nothing changed.
    let form = Form::new().part(
        "avatar",
        Part::bytes(b"<svg onload=alert(1)/>".to_vec()).file_name("evil.png"),
    );
    let res = app
        .client
        .put(app.url(&format!("/api/v4/users/{}", user["id"])))
        .private_token(&app.root_token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    let (status, body) = status_json(res).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["message"]["avatar"][0]
        .as_str()
        .unwrap()
        .contains("not supported"));
    let res = app.client.get(&url).send().await.unwrap();
    assert_eq!(res.bytes().await.unwrap().as_ref(), PNG);

    // Without Gravatar, no avatar is null.
    let quiet = TestApp::spawn_with(crate::helpers::Options {
        gravatar: false,
        ..Default::default()
    })
    .await;
    let res = quiet
        .client
        .get(quiet.url("/api/v4/user"))
        .private_token(&quiet.root_token)
        .send()
        .await
        .unwrap();
    let (_, me) = status_json(res).await;
    assert!(me["avatar_url"].is_null(), "{me}");
}
