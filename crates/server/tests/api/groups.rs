//! GitLab's Groups, Members and Group Applications APIs, and the group
//! claims of OpenID Connect, as clients use them.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{in_days, status_json, RequestAs, TestApp};
use crate::oauth::{register, token_request, user_with_password, PASSWORD};

/// A request with a personal access token (or none), a form body, and
/// its status and JSON (`null` for an empty body).
async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    form: &[(&str, &str)],
) -> (u16, Value) {
    let mut req = app.client.request(method, app.url(path));
    if let Some(t) = token {
        req = req.private_token(t);
    }
    if !form.is_empty() {
        req = req.form(form);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    if text.is_empty() {
        return (status, Value::Null);
    }
    (status, serde_json::from_str(&text).unwrap())
}

async fn new_group(app: &TestApp, token: &str, form: &[(&str, &str)]) -> Value {
    let (status, body) = call(app, Method::POST, "/api/v4/groups", Some(token), form).await;
    assert_eq!(status, 201, "{body}");
    body
}

fn paths(body: &Value) -> Vec<String> {
    let mut out: Vec<String> = body
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {body}"))
        .iter()
        .map(|g| g["full_path"].as_str().unwrap().to_owned())
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn groups_subgroups_and_who_sees_them() {
    let app = TestApp::spawn().await;
    let (_, alice) = app.user_with_token("alice", false, "api").await;
    let (_, bob) = app.user_with_token("bob", false, "api").await;

    let org = new_group(&app, &alice, &[("name", "Org"), ("path", "org")]).await;
    assert_eq!(org["full_path"], "org");
    assert_eq!(org["full_name"], "Org");
    assert_eq!(org["visibility"], "private");
    assert_eq!(org["parent_id"], Value::Null);
    assert_eq!(org["web_url"], app.url("/groups/org").as_str());
    assert!(org.get("projects").is_none(), "POST shows no projects");
    assert_eq!(org["shared_with_groups"], json!([]));
    let org_id = org["id"].as_i64().unwrap().to_string();
    let team = new_group(
        &app,
        &alice,
        &[("name", "Team"), ("path", "team"), ("parent_id", &org_id)],
    )
    .await;
    assert_eq!(team["full_path"], "org/team");
    assert_eq!(team["full_name"], "Org / Team");
    assert_eq!(team["parent_id"].as_i64(), org["id"].as_i64());
    new_group(
        &app,
        &alice,
        &[("name", "Open"), ("path", "open"), ("visibility", "public")],
    )
    .await;

    // By id or by URL-encoded full path, any case; with GitLab's details.
    for path in ["/api/v4/groups/org%2Fteam", "/api/v4/groups/ORG%2Fteam"] {
        let (status, body) = call(&app, Method::GET, path, Some(&alice), &[]).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["id"], team["id"]);
        assert_eq!(body["projects"], json!([]));
    }
    // A private group is not there for others, nor for nobody.
    for token in [Some(bob.as_str()), None] {
        let (status, body) = call(&app, Method::GET, "/api/v4/groups/org", token, &[]).await;
        assert_eq!(status, 404);
        assert_eq!(body, json!({"message": "404 Group Not Found"}));
    }
    let (_, body) = call(&app, Method::GET, "/api/v4/groups", None, &[]).await;
    assert_eq!(paths(&body), ["open"]);
    let (_, body) = call(&app, Method::GET, "/api/v4/groups", Some(&bob), &[]).await;
    assert_eq!(
        paths(&body),
        Vec::<String>::new(),
        "only their own by default"
    );
    let (_, body) = call(
        &app,
        Method::GET,
        "/api/v4/groups?all_available=true",
        Some(&bob),
        &[],
    )
    .await;
    assert_eq!(paths(&body), ["open"]);
    let (_, body) = call(&app, Method::GET, "/api/v4/groups", Some(&alice), &[]).await;
    assert_eq!(paths(&body), ["open", "org", "org/team"]);
    let (_, body) = call(
        &app,
        Method::GET,
        "/api/v4/groups?top_level_only=true&search=OR",
        Some(&alice),
        &[],
    )
    .await;
    assert_eq!(paths(&body), ["org"]);
    let (_, body) = call(
        &app,
        Method::GET,
        &format!("/api/v4/groups?skip_groups[]={org_id}&order_by=path&sort=desc"),
        Some(&alice),
        &[],
    )
    .await;
    assert_eq!(
        body.as_array()
            .unwrap()
            .iter()
            .map(|g| g["path"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["team", "open"]
    );
    let (_, body) = call(
        &app,
        Method::GET,
        "/api/v4/groups",
        Some(&app.root_token),
        &[],
    )
    .await;
    assert_eq!(paths(&body).len(), 3, "administrators see every group");
    for path in [
        "/api/v4/groups/org/subgroups",
        &format!("/api/v4/groups/{org_id}/subgroups"),
    ] {
        let (status, body) = call(&app, Method::GET, path, Some(&alice), &[]).await;
        assert_eq!(status, 200);
        assert_eq!(paths(&body), ["org/team"]);
    }
    let (status, body) = call(
        &app,
        Method::GET,
        "/api/v4/groups/org/subgroups",
        Some(&bob),
        &[],
    )
    .await;
    assert_eq!(
        (status, body["message"].clone()),
        (404, json!("404 Group Not Found"))
    );

    // Renaming the parent renames what is below it.
    let (status, body) = call(
        &app,
        Method::PUT,
        &format!("/api/v4/groups/{org_id}"),
        Some(&alice),
        &[("path", "company"), ("name", "Company")],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["full_path"], "company");
    let (status, body) = call(
        &app,
        Method::GET,
        "/api/v4/groups/company%2Fteam",
        Some(&alice),
        &[],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["full_name"], "Company / Team");

    // Others may not change it; its owner deletes it with what is below.
    let (status, _) = call(
        &app,
        Method::PUT,
        "/api/v4/groups/open",
        Some(&bob),
        &[("name", "Mine")],
    )
    .await;
    assert_eq!(status, 403, "a public group is visible, not theirs");
    let (status, _) = call(&app, Method::DELETE, "/api/v4/groups/open", Some(&bob), &[]).await;
    assert_eq!(status, 403);
    let (status, body) = call(
        &app,
        Method::DELETE,
        &format!("/api/v4/groups/{org_id}"),
        Some(&alice),
        &[],
    )
    .await;
    assert_eq!((status, body), (202, json!({"message": "202 Accepted"})));
    let team_path = format!("/api/v4/groups/{}", team["id"]);
    let (status, _) = call(&app, Method::GET, &team_path, Some(&alice), &[]).await;
    assert_eq!(status, 404, "subgroups go with their parent");
    let (status, _) = call(&app, Method::POST, "/api/v4/groups", None, &[]).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn create_and_update_errors_in_gitlabs_words() {
    let app = TestApp::spawn().await;
    let (_, alice) = app.user_with_token("alice", false, "api").await;
    let (_, reader) = app.user_with_token("reader", false, "read_api").await;
    new_group(&app, &alice, &[("name", "Org"), ("path", "org")]).await;
    new_group(&app, &alice, &[("name", "Other"), ("path", "other")]).await;

    let post = |form: Vec<(&'static str, &'static str)>| {
        let app = &app;
        let alice = alice.clone();
        async move { call(app, Method::POST, "/api/v4/groups", Some(&alice), &form).await }
    };
    assert_eq!(
        post(vec![]).await,
        (400, json!({"error": "name is missing, path is missing"}))
    );
    assert_eq!(
        post(vec![("name", "X"), ("path", "x"), ("visibility", "secret")]).await,
        (
            400,
            json!({"error": "visibility does not have a valid value"})
        )
    );
    assert_eq!(
        post(vec![("name", "Again"), ("path", "ORG")]).await,
        (
            400,
            json!({"message": "Failed to save group {:path=>[\"has already been taken\"]}"})
        )
    );
    assert_eq!(
        post(vec![("name", "Admin"), ("path", "admin")]).await,
        (
            400,
            json!({"message": "Failed to save group {:path=>[\"admin is a reserved name\"]}"})
        )
    );
    assert_eq!(
        post(vec![("name", "Root"), ("path", "root")]).await.0,
        400,
        "top-level groups share their paths with usernames"
    );
    // … both ways: no user may take a top-level group's path.
    let (status, body) = call(
        &app,
        Method::POST,
        "/api/v4/users",
        Some(&app.root_token),
        &[
            ("username", "Org"),
            ("email", "org@example.com"),
            ("name", "Org"),
            ("password", "correct-horse-battery"),
        ],
    )
    .await;
    assert_eq!(
        (status, body),
        (409, json!({"message": "Username has already been taken"}))
    );
    let (status, body) = post(vec![("name", "Bad"), ("path", "-bad")]).await;
    assert_eq!(status, 400);
    assert!(
        body["message"].as_str().unwrap().contains(":path=>"),
        "{body}"
    );
    let (_, org) = call(&app, Method::GET, "/api/v4/groups/org", Some(&alice), &[]).await;
    let org_id = org["id"].as_i64().unwrap().to_string();
    let (status, body) = call(
        &app,
        Method::POST,
        "/api/v4/groups",
        Some(&alice),
        &[
            ("name", "Pub"),
            ("path", "pub"),
            ("parent_id", &org_id),
            ("visibility", "public"),
        ],
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        body["message"],
        "Failed to save group {:visibility_level=>[\"public is not allowed since the parent group has a private visibility.\"]}"
    );
    let (status, _) = call(
        &app,
        Method::POST,
        "/api/v4/groups",
        Some(&alice),
        &[("name", "Sub"), ("path", "sub"), ("parent_id", "999999")],
    )
    .await;
    assert_eq!(status, 404, "an unknown parent");
    let (status, body) = call(
        &app,
        Method::POST,
        "/api/v4/groups",
        Some(&reader),
        &[("name", "R"), ("path", "r")],
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(body["error"], "insufficient_scope");

    // An update's errors are an object, as GitLab renders them.
    let (status, body) = call(
        &app,
        Method::PUT,
        "/api/v4/groups/other",
        Some(&alice),
        &[("path", "org")],
    )
    .await;
    assert_eq!(
        (status, body),
        (
            400,
            json!({"message": {"path": ["has already been taken"]}})
        )
    );
}

async fn member_ids(app: &TestApp, token: &str, path: &str) -> Vec<(i64, i64)> {
    let (status, body) = call(app, Method::GET, path, Some(token), &[]).await;
    assert_eq!(status, 200, "{body}");
    body.as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["id"].as_i64().unwrap(),
                m["access_level"].as_i64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn members_levels_inheritance_and_the_last_owner() {
    let app = TestApp::spawn().await;
    let (alice_id, alice) = app.user_with_token("alice", false, "api").await;
    let (bob_id, bob) = app.user_with_token("bob", false, "api").await;
    let (carol_id, carol) = app.user_with_token("carol", false, "api").await;
    let org = new_group(&app, &alice, &[("name", "Org"), ("path", "org")]).await;
    let org_id = org["id"].as_i64().unwrap().to_string();
    let team = new_group(
        &app,
        &alice,
        &[("name", "Team"), ("path", "team"), ("parent_id", &org_id)],
    )
    .await;
    let members = format!("/api/v4/groups/{org_id}/members");
    let team_members = format!("/api/v4/groups/{}/members", team["id"]);

    // The creator is the Owner, added by nobody.
    let (status, body) = call(
        &app,
        Method::GET,
        &format!("{members}/{alice_id}"),
        Some(&alice),
        &[],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["username"], "alice");
    assert_eq!(body["access_level"], 50);
    assert!(body.get("created_by").is_none(), "{body}");

    let bob_s = bob_id.to_string();
    let expiry = in_days(30);
    let (status, body) = call(
        &app,
        Method::POST,
        &members,
        Some(&alice),
        &[
            ("user_id", &bob_s),
            ("access_level", "30"),
            ("expires_at", &expiry),
        ],
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["id"], bob_id);
    assert_eq!(body["access_level"], 30);
    assert_eq!(body["expires_at"], expiry.as_str());
    assert_eq!(body["created_by"]["username"], "alice");
    let (status, body) = call(
        &app,
        Method::POST,
        &members,
        Some(&alice),
        &[("user_id", &bob_s), ("access_level", "30")],
    )
    .await;
    assert_eq!(
        (status, body),
        (409, json!({"message": "Member already exists"}))
    );
    let carol_s = carol_id.to_string();
    for (form, want) in [
        (
            vec![("user_id", carol_s.as_str()), ("access_level", "35")],
            json!({"message": {"access_level": ["is not included in the list"]}}),
        ),
        (
            vec![("user_id", bob_s.as_str())],
            json!({"error": "access_level is missing"}),
        ),
        (
            vec![("access_level", "30")],
            json!({"error": "user_id, username are missing, at least one parameter must be provided"}),
        ),
    ] {
        let (status, body) = call(&app, Method::POST, &members, Some(&alice), &form).await;
        assert_eq!((status, body), (400, want));
    }
    let (status, body) = call(
        &app,
        Method::POST,
        &members,
        Some(&alice),
        &[
            ("user_id", &carol_s),
            ("access_level", "10"),
            ("expires_at", "2001-01-01"),
        ],
    )
    .await;
    assert_eq!(
        (status, body),
        (
            400,
            json!({"message": {"expires_at": ["cannot be a date in the past"]}})
        )
    );
    let (status, body) = call(
        &app,
        Method::POST,
        &members,
        Some(&alice),
        &[("user_id", "999999"), ("access_level", "10")],
    )
    .await;
    assert_eq!(
        (status, body),
        (404, json!({"message": "404 User Not Found"}))
    );
    // A Developer may not manage members (a member already there is
    // said first, as GitLab orders its checks).
    let (status, _) = call(
        &app,
        Method::POST,
        &members,
        Some(&bob),
        &[("user_id", &bob_s), ("access_level", "10")],
    )
    .await;
    assert_eq!(status, 409);
    let (status, _) = call(
        &app,
        Method::POST,
        &members,
        Some(&bob),
        &[("user_id", &carol_s), ("access_level", "10")],
    )
    .await;
    assert_eq!(status, 403);

    // Inherited below, direct only in /members.
    assert_eq!(
        member_ids(&app, &bob, &members).await,
        [(alice_id, 50), (bob_id, 30)]
    );
    assert_eq!(
        member_ids(&app, &bob, &team_members).await,
        [(alice_id, 50)]
    );
    let mut all = member_ids(&app, &bob, &format!("{team_members}/all")).await;
    all.sort();
    assert_eq!(all, [(alice_id, 50), (bob_id, 30)]);
    let (status, body) = call(
        &app,
        Method::GET,
        &format!("{team_members}/{bob_id}"),
        Some(&bob),
        &[],
    )
    .await;
    assert_eq!((status, body), (404, json!({"message": "404 Not found"})));
    let (status, body) = call(
        &app,
        Method::GET,
        &format!("{team_members}/all/{bob_id}"),
        Some(&bob),
        &[],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["access_level"], 30);
    // A direct membership may not be below an inherited one.
    let (status, body) = call(
        &app,
        Method::POST,
        &team_members,
        Some(&alice),
        &[("user_id", &bob_s), ("access_level", "20")],
    )
    .await;
    assert_eq!(
        (status, body),
        (
            400,
            json!({"message": {"access_level": ["should be greater than or equal to Developer inherited membership from group Org"]}})
        )
    );

    // What each sees by level; owned is direct Owner only.
    let list = |token: String, query: &'static str| {
        let app = &app;
        async move {
            let path = format!("/api/v4/groups?{query}");
            paths(&call(app, Method::GET, &path, Some(&token), &[]).await.1)
        }
    };
    assert_eq!(list(bob.clone(), "").await, ["org", "org/team"]);
    assert_eq!(
        list(bob.clone(), "min_access_level=30").await,
        ["org", "org/team"]
    );
    assert_eq!(
        list(bob.clone(), "min_access_level=40").await,
        Vec::<String>::new()
    );
    assert_eq!(
        list(bob.clone(), "min_access_level=5").await,
        ["org", "org/team"]
    );
    assert_eq!(list(alice.clone(), "owned=true").await, ["org", "org/team"]);
    assert_eq!(list(bob.clone(), "owned=true").await, Vec::<String>::new());
    assert_eq!(
        call(
            &app,
            Method::GET,
            "/api/v4/groups?min_access_level=7",
            Some(&bob),
            &[]
        )
        .await,
        (
            400,
            json!({"error": "min_access_level does not have a valid value"})
        )
    );
    // A Developer may not make subgroups; a Maintainer may.
    let sub = [
        ("name", "Sub"),
        ("path", "sub"),
        ("parent_id", org_id.as_str()),
    ];
    let (status, _) = call(&app, Method::POST, "/api/v4/groups", Some(&bob), &sub).await;
    assert_eq!(status, 403);
    let (status, body) = call(
        &app,
        Method::PUT,
        &format!("{members}/{bob_id}"),
        Some(&alice),
        &[("access_level", "40"), ("expires_at", "")],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["access_level"], 40);
    assert_eq!(body["expires_at"], Value::Null);
    let (status, _) = call(&app, Method::POST, "/api/v4/groups", Some(&bob), &sub).await;
    assert_eq!(status, 201);

    // The last Owner stays; members may leave.
    let alice_member = format!("{members}/{alice_id}");
    let (status, _) = call(
        &app,
        Method::PUT,
        &alice_member,
        Some(&alice),
        &[("access_level", "40")],
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = call(&app, Method::DELETE, &alice_member, Some(&alice), &[]).await;
    assert_eq!(status, 403);
    let (status, _) = call(&app, Method::DELETE, &alice_member, Some(&bob), &[]).await;
    assert_eq!(status, 403, "a Maintainer removes no Owner");
    let (status, body) = call(
        &app,
        Method::DELETE,
        &format!("{members}/{bob_id}"),
        Some(&bob),
        &[],
    )
    .await;
    assert_eq!((status, body), (204, Value::Null));
    assert_eq!(member_ids(&app, &alice, &members).await, [(alice_id, 50)]);
    // As GitLab: leaving a group ends the memberships below it too.
    let sub_members = "/api/v4/groups/org%2Fsub/members";
    assert_eq!(member_ids(&app, &alice, sub_members).await, []);
    assert_eq!(list(bob.clone(), "").await, Vec::<String>::new());
    let (status, _) = call(&app, Method::GET, &members, Some(&carol), &[]).await;
    assert_eq!(status, 404, "a private group's members are hidden");

    // Deleting a user ends their memberships.
    let (status, _) = call(
        &app,
        Method::POST,
        sub_members,
        Some(&alice),
        &[("user_id", &carol_s), ("access_level", "50")],
    )
    .await;
    assert_eq!(status, 201);
    let (status, _) = call(
        &app,
        Method::DELETE,
        &format!("/api/v4/users/{carol_id}"),
        Some(&app.root_token),
        &[],
    )
    .await;
    assert_eq!(status, 204);
    assert_eq!(
        member_ids(&app, &alice, &format!("{sub_members}/all")).await,
        [(alice_id, 50)]
    );
}

#[tokio::test]
async fn group_applications_belong_to_the_groups_owners() {
    let app = TestApp::spawn().await;
    let (_, alice) = app.user_with_token("alice", false, "api").await;
    let (bob_id, bob) = app.user_with_token("bob", false, "api").await;
    let org = new_group(&app, &alice, &[("name", "Org"), ("path", "org")]).await;
    let other = new_group(&app, &alice, &[("name", "Other"), ("path", "other")]).await;
    let apps = format!("/api/v4/groups/{}/applications", org["id"]);
    let form = [
        ("name", "Grafana"),
        ("redirect_uri", "https://grafana.example/login/gitlab"),
        ("scopes", "openid read_user"),
    ];
    let (status, created) = call(&app, Method::POST, &apps, Some(&alice), &form).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["application_name"], "Grafana");
    assert!(created["secret"].as_str().unwrap().starts_with("gloas-"));
    assert_eq!(created["confidential"], true);
    let id = created["id"].as_i64().unwrap();
    let one = format!("{apps}/{id}");

    let (status, body) = call(&app, Method::GET, &apps, Some(&alice), &[]).await;
    assert_eq!(status, 200);
    assert_eq!(body.as_array().unwrap().len(), 1);
    assert!(body[0].get("secret").is_none());
    let (status, body) = call(
        &app,
        Method::PUT,
        &one,
        Some(&alice),
        &[
            ("name", "Grafana EU"),
            ("redirect_uri", "https://evil.example/cb"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["application_name"], "Grafana EU");
    assert_eq!(
        body["callback_url"], "https://grafana.example/login/gitlab",
        "redirect_uri is immutable"
    );
    // Another group's path to it finds nothing; it is no instance app.
    let elsewhere = format!("/api/v4/groups/{}/applications/{id}", other["id"]);
    let (status, body) = call(&app, Method::GET, &elsewhere, Some(&alice), &[]).await;
    assert_eq!(
        (status, body),
        (404, json!({"message": "404 Application Not Found"}))
    );
    assert!(app.list_apps().await.is_empty());
    let (status, body) = call(&app, Method::POST, &apps, Some(&alice), &[]).await;
    assert_eq!(status, 400, "{body}");

    // Developers and Maintainers of the group may not; strangers see no group.
    let (status, _) = call(&app, Method::GET, &apps, Some(&bob), &[]).await;
    assert_eq!(status, 404);
    let bob_s = bob_id.to_string();
    call(
        &app,
        Method::POST,
        &format!("/api/v4/groups/{}/members", org["id"]),
        Some(&alice),
        &[("user_id", &bob_s), ("access_level", "40")],
    )
    .await;
    for (method, path) in [
        (Method::GET, apps.as_str()),
        (Method::GET, one.as_str()),
        (Method::DELETE, one.as_str()),
    ] {
        let (status, _) = call(&app, method, path, Some(&bob), &[]).await;
        assert_eq!(status, 403);
    }
    // Administrators may.
    let (status, _) = call(&app, Method::GET, &one, Some(&app.root_token), &[]).await;
    assert_eq!(status, 200);

    // The application works, and goes with its group.
    let secret = created["secret"].as_str().unwrap();
    let client_id = created["application_id"].as_str().unwrap();
    let (status, body, _) = token_request(
        &app,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            ("client_secret", secret),
            ("scope", "read_user"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = call(
        &app,
        Method::DELETE,
        &format!("/api/v4/groups/{}", org["id"]),
        Some(&alice),
        &[],
    )
    .await;
    assert_eq!(status, 202);
    let (status, _, _) = token_request(
        &app,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            ("client_secret", secret),
        ],
    )
    .await;
    assert_eq!(status, 401, "a deleted group's client is unknown");
}

#[tokio::test]
async fn openid_connect_claims_name_the_groups_as_gitlab_does() {
    let app = TestApp::spawn().await;
    user_with_password(&app, "dora").await;
    let (_, alice) = app.user_with_token("alice", false, "api").await;
    let dora = app
        .services
        .find_user_by_username("dora")
        .await
        .unwrap()
        .unwrap();
    let dora_s = dora.id.to_string();
    let org = new_group(&app, &alice, &[("name", "Org"), ("path", "org")]).await;
    let org_id = org["id"].as_i64().unwrap().to_string();
    new_group(
        &app,
        &alice,
        &[("name", "Team"), ("path", "team"), ("parent_id", &org_id)],
    )
    .await;
    let ops = new_group(&app, &alice, &[("name", "Ops"), ("path", "ops")]).await;
    for (group, level) in [(org["id"].clone(), "30"), (ops["id"].clone(), "40")] {
        let (status, body) = call(
            &app,
            Method::POST,
            &format!("/api/v4/groups/{group}/members"),
            Some(&alice),
            &[("user_id", &dora_s), ("access_level", level)],
        )
        .await;
        assert_eq!(status, 201, "{body}");
    }

    let client = register(&app, true, "openid read_user").await;
    let (status, body, _) = token_request(
        &app,
        &[
            ("grant_type", "password"),
            ("username", "dora"),
            ("password", PASSWORD),
            ("scope", "openid"),
            ("client_id", &client.client_id),
            ("client_secret", &client.secret),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let access = body["access_token"].as_str().unwrap().to_owned();
    let res = app
        .client
        .get(app.url("/oauth/userinfo"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    let (status, info) = status_json(res).await;
    assert_eq!(status, 200, "{info}");
    let mut groups: Vec<&str> = info["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g.as_str().unwrap())
        .collect();
    groups.sort();
    assert_eq!(groups, ["ops", "org", "org/team"], "{info}");
    assert_eq!(
        info["https://gitlab.org/claims/groups/developer"],
        json!(["org"])
    );
    assert_eq!(
        info["https://gitlab.org/claims/groups/maintainer"],
        json!(["ops"])
    );
    assert!(info.get("https://gitlab.org/claims/groups/owner").is_none());
    assert!(info.get("groups_direct").is_none(), "ID token only");

    // The ID token names the direct groups only.
    let refresh = body["refresh_token"].as_str().unwrap();
    let (status, body, _) = token_request(
        &app,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh),
            ("client_id", &client.client_id),
            ("client_secret", &client.secret),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let id_token = body["id_token"].as_str().unwrap();
    let payload = id_token.split('.').nth(1).unwrap();
    use base64::Engine as _;
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    let mut direct: Vec<&str> = claims["groups_direct"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g.as_str().unwrap())
        .collect();
    direct.sort();
    assert_eq!(direct, ["ops", "org"]);
    assert!(claims.get("groups").is_none());
}

#[tokio::test]
async fn group_changes_are_audited() {
    let app = TestApp::spawn().await;
    let (_, alice) = app.user_with_token("alice", false, "api").await;
    let (bob_id, _) = app.user_with_token("bob", false, "api").await;
    let org = new_group(&app, &alice, &[("name", "Org"), ("path", "org")]).await;
    let bob_s = bob_id.to_string();
    let members = format!("/api/v4/groups/{}/members", org["id"]);
    call(
        &app,
        Method::POST,
        &members,
        Some(&alice),
        &[("user_id", &bob_s), ("access_level", "20")],
    )
    .await;
    call(
        &app,
        Method::PUT,
        &format!("{members}/{bob_id}"),
        Some(&alice),
        &[("access_level", "30")],
    )
    .await;
    call(
        &app,
        Method::DELETE,
        &format!("{members}/{bob_id}"),
        Some(&alice),
        &[],
    )
    .await;
    let (status, events) = call(
        &app,
        Method::GET,
        &format!(
            "/api/v4/audit_events?entity_type=Group&entity_id={}",
            org["id"]
        ),
        Some(&app.root_token),
        &[],
    )
    .await;
    assert_eq!(status, 200, "{events}");
    let mut names: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "group_created",
            "member_created",
            "member_destroyed",
            "member_updated"
        ]
    );
    let updated = events
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event_name"] == "member_updated")
        .unwrap();
    assert_eq!(updated["details"]["entity_path"], "org");
    assert_eq!(updated["details"]["from"], "Reporter");
    assert_eq!(updated["details"]["to"], "Developer");
}

#[tokio::test]
async fn group_avatars_upload_serve_and_go() {
    use reqwest::multipart::{Form, Part};
    let app = TestApp::spawn().await;
    let (_, alice) = app.user_with_token("alice", false, "api").await;
    let org = new_group(&app, &alice, &[("name", "Org"), ("path", "org")]).await;
    assert_eq!(org["avatar_url"], Value::Null);
    let path = format!("/api/v4/groups/{}", org["id"]);
    let form = Form::new().part(
        "avatar",
        Part::bytes(crate::users_fidelity::PNG.to_vec())
            .file_name("a.png")
            .mime_str("image/png")
            .unwrap(),
    );
    let res = app
        .client
        .put(app.url(&path))
        .private_token(&alice)
        .multipart(form)
        .send()
        .await
        .unwrap();
    let (status, body) = status_json(res).await;
    assert_eq!(status, 200, "{body}");
    let url = body["avatar_url"].as_str().unwrap().to_owned();
    assert!(url.ends_with("/avatar.png"), "{url}");
    // A private group's picture is its members' to see.
    let res = app.client.get(&url).send().await.unwrap();
    assert_eq!(res.status(), 404);
    let res = app
        .client
        .get(&url)
        .private_token(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.bytes().await.unwrap().as_ref(),
        crate::users_fidelity::PNG
    );
    // Not a picture: refused by its bytes.
    let form = Form::new().part(
        "avatar",
        Part::bytes(b"<svg onload=alert(1)>".to_vec()).file_name("a.png"),
    );
    let res = app
        .client
        .put(app.url(&path))
        .private_token(&alice)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    // An empty value removes it, as GitLab (python-gitlab sends JSON).
    let res = app
        .client
        .put(app.url(&path))
        .private_token(&alice)
        .json(&json!({"avatar": ""}))
        .send()
        .await
        .unwrap();
    let (status, body) = status_json(res).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["avatar_url"], Value::Null);
    let res = app
        .client
        .get(&url)
        .private_token(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
}

#[tokio::test]
async fn what_the_review_found_stays_fixed() {
    let app = TestApp::spawn().await;
    let (alice_id, alice) = app.user_with_token("alice", false, "api").await;
    let (bob_id, bob) = app.user_with_token("bob", false, "api").await;
    let org = new_group(&app, &alice, &[("name", "Org"), ("path", "org")]).await;
    let org_id = org["id"].as_i64().unwrap().to_string();
    let members = format!("/api/v4/groups/{org_id}/members");

    // The only Owner may not give themselves an end.
    let (status, _) = call(
        &app,
        Method::PUT,
        &format!("{members}/{alice_id}"),
        Some(&alice),
        &[("access_level", "50"), ("expires_at", &in_days(3))],
    )
    .await;
    assert_eq!(status, 403);

    // An expired membership can be seen, removed, or replaced.
    let bob_s = bob_id.to_string();
    let (status, _) = call(
        &app,
        Method::POST,
        &members,
        Some(&alice),
        &[("user_id", &bob_s), ("access_level", "30")],
    )
    .await;
    assert_eq!(status, 201);
    app.raw_sql(&format!(
        "UPDATE group_members SET expires_at = '2001-01-01' WHERE user_id = {bob_id}"
    ))
    .await;
    let (status, body) = call(&app, Method::GET, "/api/v4/groups", Some(&bob), &[]).await;
    assert_eq!((status, paths(&body)), (200, Vec::<String>::new()), "over");
    let (status, body) = call(
        &app,
        Method::GET,
        &format!("{members}/{bob_id}"),
        Some(&alice),
        &[],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["expires_at"], "2001-01-01");
    let (status, body) = call(
        &app,
        Method::POST,
        &members,
        Some(&alice),
        &[("user_id", &bob_s), ("access_level", "20")],
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["expires_at"], Value::Null);
    assert_eq!(body["created_by"]["username"], "alice");

    // Subgroups' names are unique among their siblings.
    let sub = |name: &'static str, path: &'static str| {
        vec![
            ("name", name),
            ("path", path),
            ("parent_id", org_id.as_str()),
        ]
    };
    new_group(&app, &alice, &sub("Team", "team")).await;
    let (status, body) = call(
        &app,
        Method::POST,
        "/api/v4/groups",
        Some(&alice),
        &sub("Team", "team2"),
    )
    .await;
    assert_eq!(
        (status, body),
        (
            400,
            json!({"message": "Failed to save group {:name=>[\"has already been taken\"]}"})
        )
    );
    // Under descendant_groups, a search is of the groups' own names.
    new_group(&app, &alice, &sub("Ops", "ops")).await;
    let (_, body) = call(
        &app,
        Method::GET,
        &format!("/api/v4/groups/{org_id}/descendant_groups?search=org"),
        Some(&alice),
        &[],
    )
    .await;
    assert_eq!(paths(&body), Vec::<String>::new());
    let (_, body) = call(
        &app,
        Method::GET,
        &format!("/api/v4/groups/{org_id}/descendant_groups?search=op"),
        Some(&alice),
        &[],
    )
    .await;
    assert_eq!(paths(&body), ["org/ops"]);

    // Lists as filters are bounded.
    let many: Vec<String> = (1..=101).map(|i| i.to_string()).collect();
    let (status, body) = call(
        &app,
        Method::GET,
        &format!("/api/v4/groups?skip_groups={}", many.join(",")),
        Some(&alice),
        &[],
    )
    .await;
    assert_eq!(
        (status, body),
        (400, json!({"error": "skip_groups is invalid"}))
    );
    let (status, body) = call(
        &app,
        Method::GET,
        &format!("{members}?user_ids={bob_id},{alice_id}&skip_users={alice_id}"),
        Some(&alice),
        &[],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body.as_array().unwrap().len(), 1);

    // Nobody owns a group anonymously.
    new_group(
        &app,
        &alice,
        &[("name", "Open"), ("path", "open"), ("visibility", "public")],
    )
    .await;
    let (_, body) = call(&app, Method::GET, "/api/v4/groups?owned=true", None, &[]).await;
    assert_eq!(paths(&body), Vec::<String>::new());

    // A user who alone owns a group is deleted (as clients expect); the
    // group stays, for administrators, unless asked to go with them.
    new_group(&app, &bob, &[("name", "Bobs"), ("path", "bobs")]).await;
    let (status, _) = call(
        &app,
        Method::DELETE,
        &format!("/api/v4/users/{bob_id}"),
        Some(&app.root_token),
        &[],
    )
    .await;
    assert_eq!(status, 204);
    let (status, body) = call(
        &app,
        Method::GET,
        "/api/v4/groups/bobs",
        Some(&app.root_token),
        &[],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let carol = new_group(&app, &alice, &[("name", "Mine"), ("path", "mine")]).await;
    let (status, _) = call(
        &app,
        Method::DELETE,
        &format!("/api/v4/users/{alice_id}?hard_delete=true"),
        Some(&app.root_token),
        &[],
    )
    .await;
    assert_eq!(status, 204);
    for path in [
        "/api/v4/groups/org",
        "/api/v4/groups/open",
        &format!("/api/v4/groups/{}", carol["id"]),
    ] {
        let (status, _) = call(&app, Method::GET, path, Some(&app.root_token), &[]).await;
        assert_eq!(status, 404, "{path}: gone with its only Owner");
    }
}

#[tokio::test]
async fn two_owners_removed_at_once_leave_one() {
    let app = TestApp::spawn().await;
    let (alice_id, alice) = app.user_with_token("alice", false, "api").await;
    let (bob_id, bob) = app.user_with_token("bob", false, "api").await;
    for round in 0..5 {
        let path = format!("g{round}");
        let group = new_group(&app, &alice, &[("name", &path), ("path", &path)]).await;
        let members = format!("/api/v4/groups/{}/members", group["id"]);
        let bob_s = bob_id.to_string();
        let (status, _) = call(
            &app,
            Method::POST,
            &members,
            Some(&alice),
            &[("user_id", &bob_s), ("access_level", "50")],
        )
        .await;
        assert_eq!(status, 201);
        // Each Owner leaves at the same moment: one of them must stay.
        let alice_leaves = format!("{members}/{alice_id}");
        let bob_leaves = format!("{members}/{bob_id}");
        let (a, b) = tokio::join!(
            call(&app, Method::DELETE, &alice_leaves, Some(&alice), &[]),
            call(&app, Method::DELETE, &bob_leaves, Some(&bob), &[]),
        );
        let mut statuses = [a.0, b.0];
        statuses.sort();
        assert_eq!(statuses, [204, 403], "round {round}");
        let (status, body) = call(&app, Method::GET, &members, Some(&app.root_token), &[]).await;
        assert_eq!(status, 200);
        assert_eq!(body.as_array().unwrap().len(), 1, "{body}");
    }
}

#[tokio::test]
async fn a_user_and_a_group_taking_one_name_at_once_get_one_of_them() {
    let app = TestApp::spawn().await;
    let (_, alice) = app.user_with_token("alice", false, "api").await;
    for round in 0..5 {
        let name = format!("shared{round}");
        let email = format!("{name}@example.com");
        let user_form = [
            ("username", name.as_str()),
            ("email", email.as_str()),
            ("name", name.as_str()),
            ("password", "correct-horse-battery"),
        ];
        let group_form = [("name", name.as_str()), ("path", name.as_str())];
        let (user, group) = tokio::join!(
            call(
                &app,
                Method::POST,
                "/api/v4/users",
                Some(&app.root_token),
                &user_form
            ),
            call(
                &app,
                Method::POST,
                "/api/v4/groups",
                Some(&alice),
                &group_form
            ),
        );
        let made = [user.0 == 201, group.0 == 201];
        assert_eq!(
            made.iter().filter(|m| **m).count(),
            1,
            "round {round}: {user:?} {group:?}"
        );
    }
}

/// A user who alone owns a group is hard-deleted (the group goes with
/// them) while they add a member to it, or create a subgroup in it. The
/// delete locks the user, then deletes the group; the member's insert
/// locked the group (its foreign key) and then waited for the user who
/// added it, and the subgroup's creation locked the parent and then waited
/// for its Owner, the creator: each deadlocked with the delete (answered
/// 503, or the delete failed). Now each locks those users first.
///
/// On PostgreSQL the delete is held back at the group's delete (a `SHARE`
/// lock on the groups), the write starts and must wait at its first lock,
/// on the user, and then the delete goes on: the write finds its user
/// gone. On SQLite (one writer) the two run at once, and whichever goes
/// second sees the other's outcome.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writes_for_a_group_racing_its_only_owners_hard_delete() {
    let app = TestApp::spawn().await;
    let (charlie_id, charlie) = app.user_with_token("charlie", false, "api").await;
    let charlie_id = charlie_id.to_string();
    for (round, write) in ["add a member", "create a subgroup"]
        .into_iter()
        .enumerate()
    {
        let name = format!("alice{round}");
        let (alice_id, alice) = app.user_with_token(&name, false, "api").await;
        let path = format!("org{round}");
        let group = new_group(&app, &alice, &[("name", &path), ("path", &path)]).await;
        let group_id = group["id"].to_string();

        let holder = app.hold_table("groups").await;
        let deleting = tokio::spawn(
            app.client
                .delete(app.url(&format!("/api/v4/users/{alice_id}?hard_delete=true")))
                .private_token(&app.root_token)
                .send(),
        );
        if let Some(holder) = &holder {
            holder.wait_for("DELETE FROM groups").await;
        }
        let held = holder.is_some();
        let release = async {
            if let Some(holder) = holder {
                holder
                    .release_once("SELECT id FROM users WHERE id = $1 FOR KEY SHARE")
                    .await;
            }
        };
        let writing = async {
            if write == "add a member" {
                let members = format!("/api/v4/groups/{group_id}/members");
                let form = [("user_id", charlie_id.as_str()), ("access_level", "30")];
                call(&app, Method::POST, &members, Some(&alice), &form).await
            } else {
                let form = [("name", "Sub"), ("path", "sub"), ("parent_id", &group_id)];
                call(&app, Method::POST, "/api/v4/groups", Some(&alice), &form).await
            }
        };
        let ((status, body), ()) = tokio::join!(writing, release);
        let deleted = deleting.await.unwrap().unwrap();
        assert_eq!(deleted.status(), 204, "{write}: the user's delete");
        if held || status != 201 {
            // It waited for the delete, and found its user gone.
            assert!(
                status == 401 || status == 404,
                "{write} after the delete: {status} {body}"
            );
        }
        // Either way, nothing of it is left.
        for url in [
            format!("/api/v4/groups/{path}"),
            format!("/api/v4/groups/{path}%2Fsub"),
        ] {
            let (status, _) = call(&app, Method::GET, &url, Some(&app.root_token), &[]).await;
            assert_eq!(status, 404, "{write}: {url} went with its only Owner");
        }
        let (status, body) = call(&app, Method::GET, "/api/v4/groups", Some(&charlie), &[]).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body, json!([]), "{write}: charlie's groups");
    }
}

/// A member whose membership has expired is added again (the new
/// membership replaces the old) while the group is deleted. The add
/// locked the old membership (to replace it) and then the group (the new
/// one's foreign key); the group's delete locks the group and then its
/// memberships: they deadlocked (503). Now the add locks the group first.
///
/// On PostgreSQL the add is held back at the old membership's delete (a
/// `SHARE` lock on the memberships), the group's delete starts and waits,
/// and then both go on. On SQLite the two run at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn adding_an_expired_member_again_racing_the_groups_delete() {
    let app = TestApp::spawn().await;
    let (_, alice) = app.user_with_token("alice", false, "api").await;
    let (charlie_id, _) = app.user_with_token("charlie", false, "api").await;
    let charlie_id = charlie_id.to_string();
    let group = new_group(&app, &alice, &[("name", "Org"), ("path", "org")]).await;
    let members = format!("/api/v4/groups/{}/members", group["id"]);
    let form = [("user_id", charlie_id.as_str()), ("access_level", "30")];
    let (status, body) = call(&app, Method::POST, &members, Some(&alice), &form).await;
    assert_eq!(status, 201, "{body}");
    app.raw_sql(&format!(
        "UPDATE group_members SET expires_at = '2001-01-01' WHERE user_id = {charlie_id}"
    ))
    .await;

    let holder = app.hold_table("group_members").await;
    let adding = {
        let app_url = app.url(&members);
        let request = app
            .client
            .post(app_url)
            .private_token(&alice)
            .form(&form)
            .send();
        tokio::spawn(request)
    };
    if let Some(holder) = &holder {
        holder.wait_for("DELETE FROM group_members").await;
    }
    let held = holder.is_some();
    let deleting = app
        .client
        .delete(app.url(&format!("/api/v4/groups/{}", group["id"])))
        .private_token(&alice)
        .send();
    let release = async {
        if let Some(holder) = holder {
            // The add, and the delete behind it.
            holder.wait_for_waiters("", 2).await;
            holder.release().await;
        }
    };
    let (deleted, ()) = tokio::join!(deleting, release);
    let deleted = deleted.unwrap();
    assert!(
        deleted.status().is_success(),
        "the group's delete: {}",
        deleted.status()
    );
    let added = adding.await.unwrap().unwrap();
    let status = added.status().as_u16();
    if held {
        // It held the group: it went first.
        assert_eq!(status, 201, "the member added again");
    } else {
        assert!(status == 201 || status == 404, "the add: {status}");
    }
    let (status, _) = call(
        &app,
        Method::GET,
        "/api/v4/groups/org",
        Some(&app.root_token),
        &[],
    )
    .await;
    assert_eq!(status, 404, "the group is gone");
}
