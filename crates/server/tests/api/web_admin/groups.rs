//! The Admin Area's group pages and audit log, the public group page, and
//! the new pages under Admin Mode.

use super::{admin_browser, api_post, csrf_of, send, text};
use crate::helpers::TestApp;
use crate::oauth::{hidden, location, user_with_password, Browser, PASSWORD};

#[tokio::test]
async fn web_admin_creates_shows_edits_and_deletes_a_group() {
    let app = TestApp::spawn().await;
    let mut boss = admin_browser(&app).await;
    let html = text(boss.get(&app.url("/admin/groups/new")).await).await;
    assert!(html.contains(r#"name="group[path]""#), "{html}");
    let csrf = hidden(&html, "authenticity_token").unwrap();
    let form = |name: &'static str, path: &'static str, visibility: &'static str| {
        [
            ("authenticity_token", csrf.clone()),
            ("group[name]", name.to_owned()),
            ("group[path]", path.to_owned()),
            ("group[description]", "The platform team".to_owned()),
            ("group[visibility]", visibility.to_owned()),
        ]
    };

    let sent = form("Platform", "platform", "internal");
    let res = boss
        .post(&app.url("/admin/groups"), &send(&sent)[1..])
        .await;
    assert_eq!(res.status(), 422, "no CSRF token");
    assert!(app
        .services
        .find_group_by_path("platform")
        .await
        .unwrap()
        .is_none());
    // Refused: the form again, with why and what was typed.
    for (path, visibility, why) in [
        ("bad path!", "internal", "path"),
        ("platform", "secret", "Choose a visibility"),
        ("boss", "internal", "has already been taken"),
    ] {
        let sent = vec![
            ("authenticity_token", csrf.as_str()),
            ("group[name]", "Platform"),
            ("group[path]", path),
            ("group[visibility]", visibility),
        ];
        let res = boss.post(&app.url("/admin/groups"), &sent).await;
        assert_eq!(res.status(), 422, "{path} {visibility}");
        let html = text(res).await;
        assert!(
            html.contains("role=\"alert\"") && html.contains(why),
            "{html}"
        );
        assert!(html.contains(r#"value="Platform""#));
    }
    let res = boss.post(&app.url("/admin/groups"), &send(&sent)).await;
    assert_eq!(res.status(), 302);
    assert_eq!(location(&res), "/admin/groups/platform");
    let group = app
        .services
        .find_group_by_path("platform")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(group.description, "The platform team");
    assert_eq!(group.visibility.as_str(), "internal");

    // A subgroup and a group application, made through the API.
    api_post(
        &app,
        "/api/v4/groups",
        serde_json::json!({"name": "Infra", "path": "infra", "parent_id": group.id}),
    )
    .await;
    api_post(
        &app,
        &format!("/api/v4/groups/{}/applications", group.id),
        serde_json::json!({"name": "Dashboards", "redirect_uri": "https://dash.example/cb", "scopes": "read_user"}),
    )
    .await;
    let res = boss.get(&app.url("/admin/groups/platform")).await;
    assert_eq!(res.status(), 200);
    let html = text(res).await;
    assert!(html.contains("Group: Platform"), "{html}");
    assert!(html.contains(r#"href="/admin/groups/platform/infra""#));
    assert!(html.contains(r#"href="/admin/users/boss""#) && html.contains("Owner"));
    assert!(html.contains("Dashboards") && html.contains("https://dash.example/cb"));
    let res = boss.get(&app.url("/admin/groups/platform/infra")).await;
    assert_eq!(res.status(), 200);
    assert!(text(res).await.contains("Platform / Infra"));
    assert_eq!(
        boss.get(&app.url("/admin/groups/nowhere")).await.status(),
        404
    );
    assert_eq!(
        boss.get(&app.url("/admin/groups/nowhere/-/edit"))
            .await
            .status(),
        404
    );

    // The list and its search.
    let html = text(boss.get(&app.url("/admin/groups")).await).await;
    assert!(html.contains("2 groups") && html.contains(r#"href="/admin/groups/new""#));
    let html = text(boss.get(&app.url("/admin/groups?search=INFRA")).await).await;
    assert!(
        html.contains("1 group<") && html.contains("Platform / Infra"),
        "{html}"
    );

    // Edited: a new name, path and visibility; the subgroup moves along.
    let html = text(boss.get(&app.url("/admin/groups/platform/-/edit")).await).await;
    assert!(html.contains(r#"value="internal" checked"#), "{html}");
    let sent = form("Platform Team", "plat", "public");
    let res = boss
        .post(&app.url("/admin/groups/platform/-/edit"), &send(&sent)[1..])
        .await;
    assert_eq!(res.status(), 422, "no CSRF token");
    let res = boss
        .post(&app.url("/admin/groups/platform/-/edit"), &send(&sent))
        .await;
    assert_eq!(res.status(), 302);
    assert_eq!(location(&res), "/admin/groups/plat");
    let group = app.services.find_group(group.id).await.unwrap().unwrap();
    assert_eq!(
        (group.name.as_str(), group.full_path.as_str()),
        ("Platform Team", "plat")
    );
    assert_eq!(group.visibility.as_str(), "public");
    assert!(app
        .services
        .find_group_by_path("plat/infra")
        .await
        .unwrap()
        .is_some());
    // A bad name: the form again.
    let sent = form("", "plat", "public");
    let res = boss
        .post(&app.url("/admin/groups/plat/-/edit"), &send(&sent))
        .await;
    assert_eq!(res.status(), 422);
    assert!(text(res).await.contains("role=\"alert\""));
    // Saved only through `/-/edit`.
    let res = boss
        .post(&app.url("/admin/groups/plat"), &send(&sent))
        .await;
    assert_eq!(res.status(), 404);

    // Deleted once its path is typed, with its subgroup.
    let html = text(boss.get(&app.url("/admin/groups/plat/-/delete")).await).await;
    assert!(html.contains(r#"name="confirm_path""#));
    let res = boss
        .post(
            &app.url("/admin/groups/plat/-/delete"),
            &[
                ("authenticity_token", csrf.as_str()),
                ("confirm_path", "platform"),
            ],
        )
        .await;
    assert_eq!(res.status(), 422);
    assert!(text(res).await.contains("role=\"alert\""));
    let res = boss
        .post(
            &app.url("/admin/groups/plat/-/delete"),
            &[("confirm_path", "plat")],
        )
        .await;
    assert_eq!(res.status(), 422, "no CSRF token");
    assert!(app.services.find_group(group.id).await.unwrap().is_some());
    let res = boss
        .post(
            &app.url("/admin/groups/plat/-/delete"),
            &[
                ("authenticity_token", csrf.as_str()),
                ("confirm_path", "plat"),
            ],
        )
        .await;
    assert_eq!(res.status(), 302);
    assert_eq!(location(&res), "/admin/groups");
    assert!(app.services.find_group(group.id).await.unwrap().is_none());
    assert!(app
        .services
        .find_group_by_path("plat/infra")
        .await
        .unwrap()
        .is_none());
    assert_eq!(boss.get(&app.url("/admin/groups/plat")).await.status(), 404);
}

#[tokio::test]
async fn web_admin_audit_page_lists_the_events_just_made() {
    let app = TestApp::spawn().await;
    let mut boss = admin_browser(&app).await;
    let csrf = csrf_of(&mut boss, &app, "/admin/users/new").await;
    let res = boss
        .post(
            &app.url("/admin/users"),
            &[
                ("authenticity_token", csrf.as_str()),
                ("user[name]", "Gina"),
                ("user[username]", "gina"),
                ("user[email]", "gina@example.com"),
            ],
        )
        .await;
    assert_eq!(res.status(), 200);
    let res = boss
        .post(
            &app.url("/admin/groups"),
            &[
                ("authenticity_token", csrf.as_str()),
                ("group[name]", "Ops"),
                ("group[path]", "ops"),
                ("group[visibility]", "private"),
            ],
        )
        .await;
    assert_eq!(res.status(), 302);
    let res = boss
        .post(
            &app.url("/admin/users/gina/block"),
            &[("authenticity_token", csrf.as_str())],
        )
        .await;
    assert_eq!(res.status(), 302);

    let today = app.services.today_text();
    let res = boss.get(&app.url("/admin/audit_events")).await;
    assert_eq!(res.status(), 200);
    let html = text(res).await;
    // Newest first: the block, the group, the user.
    let at = |needle: &str| {
        html.find(needle)
            .unwrap_or_else(|| panic!("{needle} not on the page: {html}"))
    };
    assert!(at("<code>user_blocked</code>") < at("<code>group_created</code>"));
    assert!(at("<code>group_created</code>") < at("<code>user_created</code>"));
    assert!(html.contains("Boss"), "the author");

    // Filtered to groups: only theirs.
    let html = text(
        boss.get(&app.url("/admin/audit_events?entity_type=Group"))
            .await,
    )
    .await;
    assert!(html.contains("<code>group_created</code>"), "{html}");
    assert!(!html.contains("<code>user_created</code>"));
    assert!(!html.contains("<code>user_blocked</code>"));
    // One user's.
    let gina = app
        .services
        .find_user_by_username("gina")
        .await
        .unwrap()
        .unwrap();
    let path = format!("/admin/audit_events?entity_type=User&entity_id={}", gina.id);
    let html = text(boss.get(&app.url(&path)).await).await;
    assert!(
        html.contains("<code>user_created</code>") && html.contains("<code>user_blocked</code>")
    );
    assert!(!html.contains("<code>group_created</code>"));
    assert!(html.contains("2 events"), "{html}");
    // A filter that is no filter: said so.
    // By day: nothing before today, everything from today.
    let html = text(
        boss.get(&app.url(&format!("/admin/audit_events?created_before={today}")))
            .await,
    )
    .await;
    assert!(
        html.contains("0 events") && html.contains(&format!(r#"value="{today}""#)),
        "{html}"
    );
    let html = text(
        boss.get(&app.url(&format!("/admin/audit_events?created_after={today}")))
            .await,
    )
    .await;
    assert!(html.contains("<code>user_blocked</code>"), "{html}");
    for bad in [
        "created_after=yesterday",
        "entity_type=Nope",
        "entity_id=1",
        "entity_type=User&entity_id=x",
    ] {
        let res = boss
            .get(&app.url(&format!("/admin/audit_events?{bad}")))
            .await;
        assert_eq!(res.status(), 422, "{bad}");
        assert!(text(res).await.contains("role=\"alert\""));
    }
}

#[tokio::test]
async fn web_group_page_shows_what_the_visitor_may_see() {
    let app = TestApp::spawn().await;
    user_with_password(&app, "alice").await;
    let mut boss = admin_browser(&app).await;
    let top = api_post(
        &app,
        "/api/v4/groups",
        serde_json::json!({"name": "Public Org", "path": "pub", "visibility": "public", "description": "For everyone"}),
    )
    .await;
    let top_id = top["id"].as_i64().unwrap();
    assert_eq!(top["web_url"], app.url("/groups/pub"));
    for (name, path, visibility) in [
        ("Open", "open", "public"),
        ("Inside", "inside", "internal"),
        ("Secret", "secret", "private"),
    ] {
        api_post(
            &app,
            "/api/v4/groups",
            serde_json::json!({"name": name, "path": path, "visibility": visibility, "parent_id": top_id}),
        )
        .await;
    }

    // Anyone: the public group and its public subgroup only.
    let mut anonymous = Browser::new();
    let res = anonymous.get(&app.url("/groups/pub")).await;
    assert_eq!(res.status(), 200);
    let html = text(res).await;
    assert!(
        html.contains("<h1>Public Org</h1>") && html.contains("For everyone"),
        "{html}"
    );
    assert!(html.contains(r#"href="/groups/pub/open""#), "{html}");
    assert!(
        !html.contains("pub/inside") && !html.contains("pub/secret"),
        "{html}"
    );
    assert_eq!(
        anonymous.get(&app.url("/groups/pub/open")).await.status(),
        200
    );
    for hidden_path in [
        "/groups/pub/inside",
        "/groups/pub/secret",
        "/groups/nowhere",
    ] {
        let res = anonymous.get(&app.url(hidden_path)).await;
        assert_eq!(res.status(), 404, "{hidden_path}");
        assert!(res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
    }

    // A signed-in user: internal groups too; a private one once a member.
    let mut alice = Browser::new();
    alice.sign_in(&app, "alice", PASSWORD).await;
    let html = text(alice.get(&app.url("/groups/pub")).await).await;
    assert!(html.contains(r#"href="/groups/pub/inside""#) && !html.contains("pub/secret"));
    assert_eq!(
        alice.get(&app.url("/groups/pub/inside")).await.status(),
        200
    );
    assert_eq!(
        alice.get(&app.url("/groups/pub/secret")).await.status(),
        404
    );
    let alice_id = app
        .services
        .find_user_by_username("alice")
        .await
        .unwrap()
        .unwrap()
        .id;
    api_post(
        &app,
        "/api/v4/groups/pub%2Fsecret/members",
        serde_json::json!({"user_id": alice_id, "access_level": 30}),
    )
    .await;
    let res = alice.get(&app.url("/groups/pub/secret")).await;
    assert_eq!(res.status(), 200);
    assert!(text(res).await.contains("<h1>Secret</h1>"));
    let html = text(alice.get(&app.url("/groups/pub")).await).await;
    assert!(html.contains(r#"href="/groups/pub/secret""#), "{html}");

    // An administrator sees every group.
    let res = boss.get(&app.url("/groups/pub/secret")).await;
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn web_admin_pages_ask_for_admin_mode_when_it_is_on() {
    let app = TestApp::spawn_with(crate::helpers::Options {
        admin_mode: true,
        ..Default::default()
    })
    .await;
    let mut boss = admin_browser(&app).await;
    api_post(
        &app,
        "/api/v4/groups",
        serde_json::json!({"name": "Vault", "path": "vault", "visibility": "private"}),
    )
    .await;
    // Not in Admin Mode: every page sends the administrator to enter it.
    for (path, back) in [
        ("/admin/users/new", "%2Fadmin%2Fusers%2Fnew"),
        ("/admin/users/root", "%2Fadmin%2Fusers%2Froot"),
        ("/admin/groups", "%2Fadmin%2Fgroups"),
        (
            "/admin/groups/vault/-/edit",
            "%2Fadmin%2Fgroups%2Fvault%2F-%2Fedit",
        ),
        ("/admin/audit_events", "%2Fadmin%2Faudit_events"),
    ] {
        let res = boss.get(&app.url(path)).await;
        assert_eq!(res.status(), 302, "{path}");
        assert_eq!(
            location(&res),
            format!("/admin/session/new?return_to={back}")
        );
    }
    // Nor does a form work outside it.
    let csrf = csrf_of(&mut boss, &app, "/-/user_settings/applications").await;
    let res = boss
        .post(
            &app.url("/admin/users/root/block"),
            &[("authenticity_token", csrf.as_str())],
        )
        .await;
    assert_eq!(res.status(), 302);
    let root = app.services.find_user(app.root_id).await.unwrap().unwrap();
    assert_eq!(root.state.as_str(), "active");
    // The group page treats the administrator as a user outside it.
    assert_eq!(boss.get(&app.url("/groups/vault")).await.status(), 404);

    // In Admin Mode: the pages show, and so does the private group.
    let html = text(boss.get(&app.url("/admin/session/new")).await).await;
    let csrf = hidden(&html, "authenticity_token").unwrap();
    let res = boss
        .post(
            &app.url("/admin/session"),
            &[
                ("authenticity_token", csrf.as_str()),
                ("return_to", "/admin/groups"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(res.status(), 302);
    for path in [
        "/admin/users/new",
        "/admin/groups/vault/-/edit",
        "/groups/vault",
    ] {
        assert_eq!(boss.get(&app.url(path)).await.status(), 200, "{path}");
    }
}
