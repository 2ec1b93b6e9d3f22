use serde_json::{json, Value};

use crate::helpers::{status_json, RequestAs, TestApp};

async fn create(app: &TestApp, token: &str, name: &str) -> Value {
    let res = app
        .client
        .post(app.url("/api/v4/user/applications"))
        .private_token(token)
        .form(&[
            ("name", name),
            ("redirect_uri", "https://u.example/cb"),
            ("scopes", "read_user openid"),
        ])
        .send()
        .await
        .unwrap();
    let (status, body) = status_json(res).await;
    assert_eq!(status, 201, "{body}");
    body
}

#[tokio::test]
async fn users_create_and_list_their_own_applications() {
    let app = TestApp::spawn().await;
    let (_, alice) = app.user_with_token("alice", false, "api").await;
    let (_, bob) = app.user_with_token("bob", false, "api").await;
    let a = create(&app, &alice, "alice app").await;
    assert!(a["secret"].as_str().unwrap().starts_with("gloas-"));
    assert_eq!(a["scopes"], json!(["read_user", "openid"]));
    create(&app, &bob, "bob app").await;
    let instance = app.create_app("instance").await;

    let res = app
        .client
        .get(app.url("/api/v4/user/applications"))
        .private_token(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-total"], "1");
    let (status, list) = status_json(res).await;
    assert_eq!(status, 200);
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["application_name"], "alice app");
    assert!(list[0].get("secret").is_none());
    // The admin API neither lists nor touches user applications, and the
    // user API does not show instance applications to their non-owners.
    let ids: Vec<i64> = app
        .list_apps()
        .await
        .iter()
        .map(|v| v["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, vec![instance["id"].as_i64().unwrap()]);
    let res = app
        .client
        .get(app.url(&format!("/api/v4/user/applications/{}", instance["id"])))
        .private_token(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(
        status_json(res).await,
        (403, json!({"message": "403 Forbidden"}))
    );
    // read_api can read, not write.
    let (_, reader) = app.user_with_token("reader", false, "read_api").await;
    assert_eq!(
        app.client
            .get(app.url("/api/v4/user/applications"))
            .private_token(&reader)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let res = app
        .client
        .post(app.url("/api/v4/user/applications"))
        .private_token(&reader)
        .form(&[
            ("name", "x"),
            ("redirect_uri", "https://x/cb"),
            ("scopes", "api"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    // Same parameter and validation errors as the admin API.
    let res = app
        .client
        .post(app.url("/api/v4/user/applications"))
        .private_token(&alice)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        status_json(res).await,
        (
            400,
            json!({"error": "name is missing, redirect_uri is missing, scopes is missing, scopes is empty"})
        )
    );
    let res = app
        .client
        .post(app.url("/api/v4/user/applications"))
        .private_token(&alice)
        .form(&[
            ("name", "x"),
            ("redirect_uri", "http://"),
            ("scopes", "api"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        status_json(res).await,
        (
            400,
            json!({"message": {"redirect_uri": ["must be a valid URI."]}})
        )
    );
    assert_eq!(
        app.client
            .get(app.url("/api/v4/user/applications"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
}

#[tokio::test]
async fn owner_and_admin_may_read_update_delete_others_may_not() {
    let app = TestApp::spawn().await;
    let (_, alice) = app.user_with_token("alice", false, "api").await;
    let (_, mallory) = app.user_with_token("mallory", false, "api").await;
    let a = create(&app, &alice, "alice app").await;
    let id = a["id"].as_i64().unwrap();
    let path = format!("/api/v4/user/applications/{id}");

    for token in [&alice, &app.root_token] {
        let (status, body) = status_json(
            app.client
                .get(app.url(&path))
                .private_token(token)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(body["application_id"], a["application_id"]);
        assert!(body.get("secret").is_none());
    }
    let forbidden = (403, json!({"message": "403 Forbidden"}));
    let res = app
        .client
        .get(app.url(&path))
        .private_token(&mallory)
        .send()
        .await
        .unwrap();
    assert_eq!(status_json(res).await, forbidden);
    let res = app
        .client
        .put(app.url(&path))
        .private_token(&mallory)
        .form(&[("name", "pwned")])
        .send()
        .await
        .unwrap();
    assert_eq!(status_json(res).await, forbidden);
    let res = app
        .client
        .delete(app.url(&path))
        .private_token(&mallory)
        .send()
        .await
        .unwrap();
    assert_eq!(status_json(res).await, forbidden);

    // Update: name and scopes change; redirect_uri and confidential are ignored.
    let res = app
        .client
        .put(app.url(&path))
        .private_token(&alice)
        .form(&[
            ("name", "renamed"),
            ("scopes", "api api read_api"),
            ("redirect_uri", "https://evil/cb"),
            ("confidential", "false"),
        ])
        .send()
        .await
        .unwrap();
    let (status, body) = status_json(res).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["application_name"], "renamed");
    assert_eq!(body["scopes"], json!(["api", "read_api"]));
    assert_eq!(body["callback_url"], "https://u.example/cb");
    assert_eq!(body["confidential"], true);
    assert!(body.get("secret").is_none());
    // A PUT with nothing to change answers the unchanged application.
    let (status, same) = status_json(
        app.client
            .put(app.url(&path))
            .private_token(&alice)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, &same), (200, &body));
    // Admin may update too.
    let res = app
        .client
        .put(app.url(&path))
        .private_token(&app.root_token)
        .json(&json!({"name": "by admin"}))
        .send()
        .await
        .unwrap();
    assert_eq!(status_json(res).await.1["application_name"], "by admin");

    let cases: Vec<(Value, u16, Value)> = vec![
        (
            json!({"scopes": ""}),
            400,
            json!({"error": "scopes is empty"}),
        ),
        (
            json!({"scopes": "  "}),
            400,
            json!({"error": "scopes is empty"}),
        ),
        (
            json!({"scopes": null}),
            400,
            json!({"error": "scopes is empty"}),
        ),
        (
            json!({"scopes": ["api"]}),
            400,
            json!({"error": "scopes is invalid"}),
        ),
        (
            json!({"scopes": "bogus"}),
            400,
            json!({"message": {"scopes": ["doesn't match configured on the server."]}}),
        ),
        (
            json!({"name": ""}),
            400,
            json!({"message": {"name": ["can't be blank"]}}),
        ),
    ];
    for (body, status, want) in cases {
        let res = app
            .client
            .put(app.url(&path))
            .private_token(&alice)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(status_json(res).await, (status, want), "{body}");
    }
    // Parameter errors come before ownership checks, as in Grape.
    let res = app
        .client
        .put(app.url(&path))
        .private_token(&mallory)
        .form(&[("scopes", "")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        status_json(res).await,
        (400, json!({"error": "scopes is empty"}))
    );

    let res = app
        .client
        .delete(app.url(&path))
        .private_token(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert!(res.bytes().await.unwrap().is_empty());
    let not_found = (404, json!({"message": "404 Application Not Found"}));
    for req in [
        app.client.get(app.url(&path)),
        app.client.delete(app.url(&path)),
        app.client.put(app.url(&path)),
    ] {
        assert_eq!(
            status_json(req.private_token(&alice).send().await.unwrap()).await,
            not_found
        );
    }
    let res = app
        .client
        .get(app.url("/api/v4/user/applications/abc"))
        .private_token(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(
        status_json(res).await,
        (400, json!({"error": "id is invalid"}))
    );
    // The secret died with the application.
    assert!(app
        .services
        .verify_client_secret(
            a["application_id"].as_str().unwrap(),
            a["secret"].as_str().unwrap()
        )
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn pagination_edges() {
    let app = TestApp::spawn().await;
    let (alice_id, alice) = app.user_with_token("alice", false, "api").await;
    for i in 0..45 {
        app.create_user_app(alice_id, &format!("a{i:02}")).await;
    }
    let get = |q: &str| {
        let url = app.url(&format!("/api/v4/user/applications{q}"));
        let req = app.client.get(url).private_token(&alice);
        async move { req.send().await.unwrap() }
    };
    let res = get("").await;
    let h = res.headers().clone();
    assert_eq!(
        (
            h["x-total"].to_str().unwrap(),
            h["x-total-pages"].to_str().unwrap()
        ),
        ("45", "3")
    );
    assert_eq!(
        (
            h["x-page"].to_str().unwrap(),
            h["x-per-page"].to_str().unwrap()
        ),
        ("1", "20")
    );
    assert_eq!(
        (
            h["x-next-page"].to_str().unwrap(),
            h["x-prev-page"].to_str().unwrap()
        ),
        ("2", "")
    );
    let list: Vec<Value> = res.json().await.unwrap();
    assert_eq!(list.len(), 20);
    assert_eq!(list[0]["application_name"], "a00");

    let res = get("?page=3").await;
    assert_eq!(res.headers()["x-next-page"], "");
    assert_eq!(res.headers()["x-prev-page"], "2");
    assert_eq!(res.json::<Vec<Value>>().await.unwrap().len(), 5);

    let res = get("?page=4").await;
    assert_eq!(res.headers()["x-total"], "45");
    assert_eq!(res.headers()["x-prev-page"], "");
    assert!(res.json::<Vec<Value>>().await.unwrap().is_empty());

    for (q, per) in [
        ("?per_page=0", "20"),
        ("?per_page=101", "100"),
        ("?per_page=abc", "20"),
        ("?per_page=-5", "20"),
        ("?per_page=7", "7"),
    ] {
        let res = get(q).await;
        assert_eq!(res.headers()["x-per-page"], per, "{q}");
    }
    // Follow Link rel="next" as python-gitlab does, collecting every page.
    let mut url = app.url("/api/v4/user/applications?per_page=10");
    let mut names = Vec::new();
    loop {
        let res = app
            .client
            .get(&url)
            .private_token(&alice)
            .send()
            .await
            .unwrap();
        let link = res
            .headers()
            .get("link")
            .map(|v| v.to_str().unwrap().to_owned());
        let page: Vec<Value> = res.json().await.unwrap();
        names.extend(
            page.iter()
                .map(|v| v["application_name"].as_str().unwrap().to_owned()),
        );
        let next = link.and_then(|l| {
            l.split(", ")
                .find(|p| p.ends_with("rel=\"next\""))
                .map(|p| p[1..p.find('>').unwrap()].to_owned())
        });
        match next {
            Some(n) => url = n,
            None => break,
        }
    }
    assert_eq!(names.len(), 45);
    assert_eq!(names.last().unwrap(), "a44");
}
