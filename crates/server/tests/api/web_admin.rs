//! The Admin Area's pages for users, groups and the audit log, and the
//! public group page: every form's server side, CSRF, and the 404 anyone
//! but an administrator gets.

use latchkey_core::user::UserInput;
use reqwest::Response;

use crate::helpers::{RequestAs, TestApp};
use crate::oauth::{hidden, location, user_with_password, Browser, PASSWORD};

mod groups;

/// An administrator (`boss`, besides `root`) signed in.
async fn admin_browser(app: &TestApp) -> Browser {
    app.services
        .create_user(
            &latchkey_core::context::Context::system(),
            &UserInput {
                username: "boss".into(),
                email: "boss@example.com".into(),
                name: "Boss".into(),
                password: Some(PASSWORD.into()),
                admin: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let mut b = Browser::new();
    let res = b.sign_in(app, "boss", PASSWORD).await;
    assert_eq!(res.status(), 302);
    b
}

/// The page's CSRF token.
async fn csrf_of(b: &mut Browser, app: &TestApp, path: &str) -> String {
    let res = b.get(&app.url(path)).await;
    assert_eq!(res.status(), 200, "{path}");
    hidden(&res.text().await.unwrap(), "authenticity_token").unwrap()
}

/// The value of the input with id `id`.
fn input_value(html: &str, id: &str) -> Option<String> {
    let at = html.find(&format!("id=\"{id}\""))?;
    let rest = &html[at..];
    let v = rest.find("value=\"")? + 7;
    let end = rest[v..].find('"')?;
    Some(rest[v..v + end].to_owned())
}

/// A form's fields as sent.
fn send<'a>(f: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    f.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

async fn text(res: Response) -> String {
    res.text().await.unwrap()
}

async fn api_user_status(app: &TestApp, token: &str) -> u16 {
    app.client
        .get(app.url("/api/v4/user"))
        .private_token(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn web_admin_pages_are_404_to_anyone_but_an_administrator() {
    let app = TestApp::spawn().await;
    user_with_password(&app, "alice").await;
    let mut boss = admin_browser(&app).await;
    // A group to name.
    let csrf = csrf_of(&mut boss, &app, "/admin/groups/new").await;
    let res = boss
        .post(
            &app.url("/admin/groups"),
            &[
                ("authenticity_token", csrf.as_str()),
                ("group[name]", "Org"),
                ("group[path]", "org"),
                ("group[visibility]", "public"),
            ],
        )
        .await;
    assert_eq!(res.status(), 302, "{}", text(res).await);

    let mut alice = Browser::new();
    alice.sign_in(&app, "alice", PASSWORD).await;
    let gets = [
        "/admin/users",
        "/admin/users/new",
        "/admin/users/boss",
        "/admin/users/boss/edit",
        "/admin/users/boss/delete",
        "/admin/groups",
        "/admin/groups/new",
        "/admin/groups/org",
        "/admin/groups/org/-/edit",
        "/admin/groups/org/-/delete",
        "/admin/audit_events",
    ];
    for path in gets {
        let res = alice.get(&app.url(path)).await;
        assert_eq!(res.status(), 404, "{path}");
        assert!(res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
        // The administrator sees each of them.
        assert_eq!(boss.get(&app.url(path)).await.status(), 200, "{path}");
    }
    // Her forms' token does not open the admin's.
    let hers = csrf_of(&mut alice, &app, "/-/user_settings/applications").await;
    let posts = [
        "/admin/users",
        "/admin/users/boss",
        "/admin/users/boss/block",
        "/admin/users/boss/unblock",
        "/admin/users/boss/unlock",
        "/admin/users/boss/delete",
        "/admin/groups",
        "/admin/groups/new",
        "/admin/groups/org",
        "/admin/groups/org/-/edit",
        "/admin/groups/org/-/delete",
        "/admin/audit_events",
    ];
    for path in posts {
        let res = alice
            .post(
                &app.url(path),
                &[
                    ("authenticity_token", hers.as_str()),
                    ("confirm_username", "boss"),
                    ("confirm_path", "org"),
                ],
            )
            .await;
        assert_eq!(res.status(), 404, "{path}");
    }
    // Nothing changed.
    let boss_user = app
        .services
        .find_user_by_username("boss")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(boss_user.state.as_str(), "active");
    assert!(app
        .services
        .find_group_by_path("org")
        .await
        .unwrap()
        .is_some());
    // Signed out: to the sign-in page.
    let res = Browser::new().get(&app.url("/admin/users/new")).await;
    assert_eq!(res.status(), 302);
    assert!(location(&res).starts_with("/users/sign_in"));
}

#[tokio::test]
async fn web_admin_creates_a_user_with_a_password_shown_once() {
    let app = TestApp::spawn().await;
    let mut boss = admin_browser(&app).await;
    let html = text(boss.get(&app.url("/admin/users")).await).await;
    assert!(html.contains(r#"href="/admin/users/new""#), "{html}");
    assert!(html.contains(r#"href="/admin/users/boss""#), "{html}");
    let csrf = csrf_of(&mut boss, &app, "/admin/users/new").await;
    let form = |username: &'static str, email: &'static str| {
        vec![
            ("authenticity_token", csrf.clone()),
            ("user[name]", "Dana Scully".to_owned()),
            ("user[username]", username.to_owned()),
            ("user[email]", email.to_owned()),
            ("user[admin]", "0".to_owned()),
        ]
    };
    let sent = form("dana", "dana@example.com");
    let pairs: Vec<(&str, &str)> = sent.iter().map(|(k, v)| (*k, v.as_str())).collect();

    // No CSRF token: refused, nobody made.
    let res = boss.post(&app.url("/admin/users"), &pairs[1..]).await;
    assert_eq!(res.status(), 422);
    assert!(app
        .services
        .find_user_by_username("dana")
        .await
        .unwrap()
        .is_none());

    // No password: one is generated and shown this once.
    let res = boss.post(&app.url("/admin/users"), &pairs).await;
    assert_eq!(res.status(), 200);
    let html = text(res).await;
    let password = input_value(&html, "new_password").unwrap();
    assert!(password.len() >= 16, "{password}");
    assert!(html.contains("shown only this once"));
    let dana = app
        .services
        .find_user_by_username("dana")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(dana.name, "Dana Scully");
    assert!(!dana.admin);
    let html = text(boss.get(&app.url("/admin/users/dana")).await).await;
    assert!(html.contains("dana@example.com"));
    assert!(!html.contains(&password), "the password shown again");
    // It works for signing in.
    let mut b = Browser::new();
    let res = b.sign_in(&app, "dana", &password).await;
    assert_eq!(res.status(), 302);
    assert!(b.session().is_some());

    // A chosen password: not shown, and it works.
    let mut sent = form("eve", "eve@example.com");
    sent.push(("user[password]", "a quite long passphrase".to_owned()));
    sent.push(("user[admin]", "1".to_owned()));
    let pairs: Vec<(&str, &str)> = sent.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let res = boss.post(&app.url("/admin/users"), &pairs).await;
    assert_eq!(res.status(), 200);
    let html = text(res).await;
    assert!(input_value(&html, "new_password").is_none());
    assert!(html.contains("Administrator"));
    let eve = app
        .services
        .find_user_by_username("eve")
        .await
        .unwrap()
        .unwrap();
    assert!(eve.admin);
    let res = Browser::new()
        .sign_in(&app, "eve", "a quite long passphrase")
        .await;
    assert_eq!(res.status(), 302);

    // Refused: the form again with why, and what was typed.
    for (username, email, why) in [
        (
            "dana",
            "other@example.com",
            "Username has already been taken",
        ),
        ("frank", "not an email", "email"),
        ("", "frank@example.com", "username"),
    ] {
        let sent = vec![
            ("authenticity_token", csrf.as_str()),
            ("user[name]", "Frank"),
            ("user[username]", username),
            ("user[email]", email),
        ];
        let res = boss.post(&app.url("/admin/users"), &sent).await;
        assert_eq!(res.status(), 422, "{username} {email}");
        let html = text(res).await;
        assert!(
            html.contains("role=\"alert\"") && html.contains(why),
            "{html}"
        );
        assert!(html.contains(r#"value="Frank""#));
    }
    assert!(app
        .services
        .find_user_by_username("frank")
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn web_admin_edits_a_user_and_keeps_an_administrator() {
    let app = TestApp::spawn().await;
    user_with_password(&app, "alice").await;
    let mut boss = admin_browser(&app).await;
    let html = text(boss.get(&app.url("/admin/users/alice/edit")).await).await;
    assert!(html.contains(r#"value="alice@example.com""#), "{html}");
    let csrf = hidden(&html, "authenticity_token").unwrap();
    let form = [
        ("authenticity_token", csrf.as_str()),
        ("user[name]", "Alice Liddell"),
        ("user[email]", "alice@wonder.example"),
        ("user[admin]", "0"),
        ("user[admin]", "1"),
        ("user[external]", "0"),
    ];
    let res = boss.post(&app.url("/admin/users/alice"), &form[1..]).await;
    assert_eq!(res.status(), 422, "no CSRF token");
    let res = boss.post(&app.url("/admin/users/alice"), &form).await;
    assert_eq!(res.status(), 302);
    assert_eq!(location(&res), "/admin/users/alice");
    let alice = app
        .services
        .find_user_by_username("alice")
        .await
        .unwrap()
        .unwrap();
    assert!(alice.admin);
    assert_eq!(alice.name, "Alice Liddell");
    assert_eq!(alice.email, "alice@wonder.example");
    let html = text(boss.get(&app.url("/admin/users/alice")).await).await;
    assert!(html.contains("Administrator") && html.contains("alice@wonder.example"));

    // A bad email: the form again, as typed.
    let res = boss
        .post(
            &app.url("/admin/users/alice"),
            &[
                ("authenticity_token", csrf.as_str()),
                ("user[name]", "Alice L."),
                ("user[email]", "nope"),
            ],
        )
        .await;
    assert_eq!(res.status(), 422);
    let html = text(res).await;
    assert!(html.contains("role=\"alert\"") && html.contains(r#"value="Alice L.""#));

    // Unticked: no longer an administrator.
    let demote = |who: &'static str| {
        [
            ("authenticity_token", csrf.clone()),
            ("user[name]", who.to_owned()),
            ("user[email]", format!("{who}@example.com")),
            ("user[admin]", "0".to_owned()),
        ]
    };
    for who in ["alice", "root"] {
        let form = demote(who);
        let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let res = boss
            .post(&app.url(&format!("/admin/users/{who}")), &pairs)
            .await;
        assert_eq!(res.status(), 302, "{who}");
    }
    assert!(
        !app.services
            .find_user_by_username("alice")
            .await
            .unwrap()
            .unwrap()
            .admin
    );
    // The last administrator stays one: the service's words, 422.
    let form = demote("boss");
    let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let res = boss.post(&app.url("/admin/users/boss"), &pairs).await;
    assert_eq!(res.status(), 422);
    let html = text(res).await;
    assert!(
        html.contains("role=\"alert\"") && html.contains("last active administrator"),
        "{html}"
    );
    assert!(
        app.services
            .find_user_by_username("boss")
            .await
            .unwrap()
            .unwrap()
            .admin
    );
    // Unknown: 404.
    assert_eq!(
        boss.get(&app.url("/admin/users/nobody")).await.status(),
        404
    );
    assert_eq!(
        boss.get(&app.url("/admin/users/nobody/edit"))
            .await
            .status(),
        404
    );
}

#[tokio::test]
async fn web_admin_blocks_and_unblocks_a_user() {
    let app = TestApp::spawn().await;
    let (_, token) = app.user_with_token("carol", false, "api").await;
    let mut boss = admin_browser(&app).await;
    assert_eq!(api_user_status(&app, &token).await, 200);
    let html = text(boss.get(&app.url("/admin/users/carol")).await).await;
    assert!(
        html.contains(r#"action="/admin/users/carol/block""#),
        "{html}"
    );
    let csrf = hidden(&html, "authenticity_token").unwrap();

    for action in ["block", "unblock", "unlock"] {
        let path = format!("/admin/users/carol/{action}");
        let res = boss
            .post(&app.url(&path), &[("authenticity_token", "forged")])
            .await;
        assert_eq!(res.status(), 422, "{action}: a forged CSRF token");
        assert!(text(res).await.contains("The form has expired"));
    }
    assert_eq!(api_user_status(&app, &token).await, 200);

    let res = boss
        .post(
            &app.url("/admin/users/carol/block"),
            &[("authenticity_token", csrf.as_str())],
        )
        .await;
    assert_eq!(res.status(), 302);
    assert_eq!(location(&res), "/admin/users/carol");
    let html = text(boss.get(&app.url("/admin/users/carol")).await).await;
    assert!(html.contains(r#"<dd id="user_state">blocked"#), "{html}");
    assert!(html.contains(r#"action="/admin/users/carol/unblock""#));
    // Their token is refused by the API.
    assert_eq!(api_user_status(&app, &token).await, 403);

    let res = boss
        .post(
            &app.url("/admin/users/carol/unblock"),
            &[("authenticity_token", csrf.as_str())],
        )
        .await;
    assert_eq!(res.status(), 302);
    let html = text(boss.get(&app.url("/admin/users/carol")).await).await;
    assert!(html.contains(r#"<dd id="user_state">active"#), "{html}");
    assert_eq!(api_user_status(&app, &token).await, 200);

    // Nobody blocks themselves: the service's words.
    let res = boss
        .post(
            &app.url("/admin/users/boss/block"),
            &[("authenticity_token", csrf.as_str())],
        )
        .await;
    assert_eq!(res.status(), 422);
    assert!(text(res).await.contains("cannot be blocked"));

    // Locked out by failed sign-ins, then unlocked.
    user_with_password(&app, "dave").await;
    for _ in 0..latchkey_core::session::MAX_ACCOUNT_FAILURES {
        Browser::new()
            .sign_in(&app, "dave", "wrong password!")
            .await;
    }
    let dave = app
        .services
        .find_user_by_username("dave")
        .await
        .unwrap()
        .unwrap();
    assert!(app.services.sign_in_locked(dave.id).await.unwrap());
    let html = text(boss.get(&app.url("/admin/users/dave")).await).await;
    assert!(html.contains("sign-in locked"), "{html}");
    let res = boss
        .post(
            &app.url("/admin/users/dave/unlock"),
            &[("authenticity_token", csrf.as_str())],
        )
        .await;
    assert_eq!(res.status(), 302);
    assert!(!app.services.sign_in_locked(dave.id).await.unwrap());
    let res = Browser::new().sign_in(&app, "dave", PASSWORD).await;
    assert_eq!(res.status(), 302);
}

#[tokio::test]
async fn web_admin_deletes_a_user_after_the_username_is_typed() {
    let app = TestApp::spawn().await;
    let (_, token) = app.user_with_token("carol", false, "api").await;
    let mut boss = admin_browser(&app).await;
    let html = text(boss.get(&app.url("/admin/users/carol/delete")).await).await;
    assert!(html.contains(r#"name="confirm_username""#), "{html}");
    let csrf = hidden(&html, "authenticity_token").unwrap();

    let res = boss
        .post(
            &app.url("/admin/users/carol/delete"),
            &[("confirm_username", "carol")],
        )
        .await;
    assert_eq!(res.status(), 422, "no CSRF token");
    let res = boss
        .post(
            &app.url("/admin/users/carol/delete"),
            &[
                ("authenticity_token", csrf.as_str()),
                ("confirm_username", "carl"),
            ],
        )
        .await;
    assert_eq!(res.status(), 422);
    let html = text(res).await;
    assert!(html.contains("role=\"alert\"") && html.contains("Type the username"));
    assert_eq!(api_user_status(&app, &token).await, 200);

    let res = boss
        .post(
            &app.url("/admin/users/carol/delete"),
            &[
                ("authenticity_token", csrf.as_str()),
                ("confirm_username", "carol"),
            ],
        )
        .await;
    assert_eq!(res.status(), 302);
    assert_eq!(location(&res), "/admin/users");
    assert!(app
        .services
        .find_user_by_username("carol")
        .await
        .unwrap()
        .is_none());
    assert_eq!(api_user_status(&app, &token).await, 401);
    assert_eq!(boss.get(&app.url("/admin/users/carol")).await.status(), 404);

    // The service refuses deleting yourself: its words, 422.
    let res = boss
        .post(
            &app.url("/admin/users/boss/delete"),
            &[
                ("authenticity_token", csrf.as_str()),
                ("confirm_username", "boss"),
            ],
        )
        .await;
    assert_eq!(res.status(), 422);
    assert!(text(res).await.contains("cannot be deleted"));
    assert!(app
        .services
        .find_user_by_username("boss")
        .await
        .unwrap()
        .is_some());
}

async fn api_post(app: &TestApp, path: &str, body: serde_json::Value) -> serde_json::Value {
    let res = app
        .client
        .post(app.url(path))
        .private_token(&app.root_token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{path}: {}", res.status());
    res.json().await.unwrap()
}
