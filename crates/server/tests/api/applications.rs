use serde_json::{json, Value};

use crate::helpers::{status_json, RequestAs, TestApp};

fn is_hex64(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[tokio::test]
async fn create_returns_201_with_gitlabs_fields_in_order() {
    let app = TestApp::spawn().await;
    // The README's curl example: unencoded spaces in a form body.
    let res = app
        .client
        .post(app.url("/api/v4/applications"))
        .private_token(&app.root_token)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("name=MyApplication&redirect_uri=http://redirect.uri&scopes=api read_user email")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    assert_eq!(res.headers()["content-type"], "application/json");
    let text = res.text().await.unwrap();
    let keys: Vec<&str> = [
        "\"id\"",
        "\"application_id\"",
        "\"application_name\"",
        "\"callback_url\"",
        "\"confidential\"",
        "\"scopes\"",
        "\"secret\"",
    ]
    .to_vec();
    let positions: Vec<usize> = keys.iter().map(|k| text.find(k).unwrap()).collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "field order: {text}"
    );
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body.as_object().unwrap().len(), 7);
    assert!(body["id"].as_i64().unwrap() > 0);
    assert!(is_hex64(body["application_id"].as_str().unwrap()));
    assert_eq!(body["application_name"], "MyApplication");
    assert_eq!(body["callback_url"], "http://redirect.uri");
    assert_eq!(body["confidential"], true);
    assert_eq!(body["scopes"], json!(["api", "read_user", "email"]));
    let secret = body["secret"].as_str().unwrap();
    assert!(
        secret.starts_with("gloas-") && is_hex64(&secret[6..]),
        "{secret}"
    );
    // The secret is stored as a digest that the new secret matches.
    let found = app
        .services
        .verify_client_secret(body["application_id"].as_str().unwrap(), secret)
        .await
        .unwrap();
    assert_eq!(found.unwrap().id, body["id"].as_i64().unwrap());
}

#[tokio::test]
async fn parameters_come_from_json_multipart_and_query() {
    let app = TestApp::spawn().await;
    let res = app
        .client
        .post(app.url("/api/v4/applications"))
        .private_token(&app.root_token)
        .json(&json!({"name": "J", "redirect_uri": "https://j.example/cb", "scopes": "api  api read_api", "confidential": false}))
        .send()
        .await
        .unwrap();
    let (status, body) = status_json(res).await;
    assert_eq!(status, 201);
    assert_eq!(body["scopes"], json!(["api", "read_api"]));
    assert_eq!(body["confidential"], false);

    let form = reqwest::multipart::Form::new()
        .text("name", "M")
        .text("redirect_uri", "https://m.example/cb")
        .text("scopes", "read_user")
        .text("confidential", "no");
    let res = app
        .client
        .post(app.url("/api/v4/applications"))
        .private_token(&app.root_token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    let (status, body) = status_json(res).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["application_name"], "M");
    assert_eq!(body["confidential"], false);

    let res = app
        .client
        .post(app.url("/api/v4/applications?name=Q&redirect_uri=https%3A%2F%2Fq.example%2Fcb&scopes=api&private_token=") + &app.root_token)
        .send()
        .await
        .unwrap();
    let (status, body) = status_json(res).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["application_name"], "Q");
    assert_eq!(body["callback_url"], "https://q.example/cb");
}

#[tokio::test]
async fn confidential_accepts_grape_booleans_and_defaults_to_true() {
    let app = TestApp::spawn().await;
    let cases = [
        (json!(null), true),
        (json!(""), true),
        (json!(true), true),
        (json!(false), false),
        (json!("1"), true),
        (json!("0"), false),
        (json!("yes"), true),
        (json!("off"), false),
        (json!("T"), true),
        (json!("f"), false),
    ];
    for (value, want) in cases {
        let res = app
            .client
            .post(app.url("/api/v4/applications"))
            .private_token(&app.root_token)
            .json(&json!({"name": "c", "redirect_uri": "https://c.example/cb", "scopes": "api", "confidential": value}))
            .send()
            .await
            .unwrap();
        let (status, body) = status_json(res).await;
        assert_eq!(status, 201, "{value}: {body}");
        assert_eq!(body["confidential"], want, "{value}");
    }
    // Absent entirely.
    let body = app.create_app("absent").await;
    assert_eq!(body["confidential"], true);
}

#[tokio::test]
async fn grape_parameter_errors() {
    let app = TestApp::spawn().await;
    let good_uri = ("redirect_uri", json!("https://x.example/cb"));
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"redirect_uri": "https://x.example/cb", "scopes": "api"}),
            "name is missing",
        ),
        (
            json!({"name": "a", "scopes": "api"}),
            "redirect_uri is missing",
        ),
        (
            json!({"name": "a", "redirect_uri": "https://x.example/cb"}),
            "scopes is missing, scopes is empty",
        ),
        (
            json!({"name": "a", "redirect_uri": "https://x.example/cb", "scopes": ""}),
            "scopes is empty",
        ),
        (
            json!({"name": "a", "redirect_uri": "https://x.example/cb", "scopes": " \t "}),
            "scopes is empty",
        ),
        (
            json!({}),
            "name is missing, redirect_uri is missing, scopes is missing, scopes is empty",
        ),
        (
            json!({"name": "a", "redirect_uri": "https://x.example/cb", "scopes": "api", "confidential": "maybe"}),
            "confidential is invalid",
        ),
        (
            json!({"name": ["a"], "redirect_uri": "https://x.example/cb", "scopes": "api"}),
            "name is invalid",
        ),
        (
            json!({"name": "a", "redirect_uri": "https://x.example/cb", "scopes": {"a": 1}}),
            "scopes is invalid",
        ),
        (
            json!({"name": "a", "redirect_uri": "https://x.example/cb", "scopes": ["api"]}),
            "scopes is invalid",
        ),
    ];
    let _ = good_uri;
    for (body, want) in cases {
        let res = app
            .client
            .post(app.url("/api/v4/applications"))
            .private_token(&app.root_token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let (status, got) = status_json(res).await;
        assert_eq!((status, got), (400, json!({ "error": want })), "{body}");
    }
    // Form arrays are Grape arrays, not strings.
    let res = app
        .create_app_form(
            &app.root_token,
            &[
                ("name", "a"),
                ("redirect_uri", "https://x.example/cb"),
                ("scopes[]", "api"),
            ],
        )
        .await;
    assert_eq!(
        status_json(res).await,
        (400, json!({"error": "scopes is invalid"}))
    );
    // A JSON number for name becomes a string.
    let res = app
        .client
        .post(app.url("/api/v4/applications"))
        .private_token(&app.root_token)
        .json(&json!({"name": 42, "redirect_uri": "https://x.example/cb", "scopes": "api"}))
        .send()
        .await
        .unwrap();
    let (status, body) = status_json(res).await;
    assert_eq!(
        (status, body["application_name"].clone()),
        (201, json!("42"))
    );
    assert!(
        app.list_apps().await.len() == 1,
        "nothing but the valid one was stored"
    );
}

#[tokio::test]
async fn model_validation_errors() {
    let app = TestApp::spawn().await;
    let long_name = "n".repeat(256);
    let cases: Vec<(&str, &str, &str, Value)> = vec![
        (
            "a",
            "http://",
            "api",
            json!({"redirect_uri": ["must be a valid URI."]}),
        ),
        (
            "a",
            "javascript://alert()",
            "api",
            json!({"redirect_uri": ["is forbidden by the server."]}),
        ),
        (
            "a",
            "https://x/cb#f",
            "api",
            json!({"redirect_uri": ["cannot contain a fragment."]}),
        ),
        (
            "a",
            "localhost:3000",
            "api",
            json!({"redirect_uri": ["must specify a scheme."]}),
        ),
        (
            "a",
            "data:text/html,x",
            "api",
            json!({"redirect_uri": ["is forbidden by the server.", "must specify a scheme."]}),
        ),
        (
            "a",
            "invalid url",
            "api",
            json!({"redirect_uri": ["must be an absolute URI.", "must be an absolute URI."]}),
        ),
        ("a", "", "api", json!({"redirect_uri": ["can't be blank"]})),
        (
            "a",
            "   ",
            "api",
            json!({"redirect_uri": ["can't be blank"]}),
        ),
        (
            "a",
            "https://x/cb",
            "non_existent_scope",
            json!({"scopes": ["doesn't match configured on the server."]}),
        ),
        (
            "a",
            "https://x/cb",
            "api non_existent_scope",
            json!({"scopes": ["doesn't match configured on the server."]}),
        ),
        (
            "",
            "https://x/cb",
            "api",
            json!({"name": ["can't be blank"]}),
        ),
        (
            &long_name,
            "https://x/cb",
            "api",
            json!({"name": ["is too long (maximum is 255 characters)"]}),
        ),
        (
            "",
            "https://x/cb",
            "nope",
            json!({"name": ["can't be blank"], "scopes": ["doesn't match configured on the server."]}),
        ),
    ];
    for (name, uri, scopes, want) in cases {
        let res = app
            .create_app_form(
                &app.root_token,
                &[("name", name), ("redirect_uri", uri), ("scopes", scopes)],
            )
            .await;
        let (status, body) = status_json(res).await;
        assert_eq!(
            (status, body),
            (400, json!({ "message": want })),
            "{name:?} {uri:?} {scopes:?}"
        );
    }
    assert!(app.list_apps().await.is_empty());
    // Several URIs, custom schemes, dynamic scopes and OOB are fine.
    let res = app
        .create_app_form(
            &app.root_token,
            &[
                ("name", "multi"),
                (
                    "redirect_uri",
                    "https://a.example/cb\nmyapp://callback urn:ietf:wg:oauth:2.0:oob",
                ),
                ("scopes", "api user:* openid"),
            ],
        )
        .await;
    let (status, body) = status_json(res).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        body["callback_url"],
        "https://a.example/cb\nmyapp://callback urn:ietf:wg:oauth:2.0:oob"
    );
    assert_eq!(body["scopes"], json!(["api", "user:*", "openid"]));
}

#[tokio::test]
async fn list_is_ordered_has_no_secrets_and_excludes_user_applications() {
    let app = TestApp::spawn().await;
    assert!(app.list_apps().await.is_empty());
    let a = app.create_app("first").await;
    let (alice, _) = app.user_with_token("alice", false, "api").await;
    let user_app = app.create_user_app(alice, "alice's").await;
    let b = app.create_app("second").await;
    let list = app.list_apps().await;
    let ids: Vec<i64> = list.iter().map(|v| v["id"].as_i64().unwrap()).collect();
    assert_eq!(
        ids,
        vec![a["id"].as_i64().unwrap(), b["id"].as_i64().unwrap()]
    );
    assert!(!ids.contains(&user_app));
    for item in &list {
        assert!(item.get("secret").is_none());
        assert_eq!(item.as_object().unwrap().len(), 6);
    }
    // read_api is enough to list.
    let (_, reader) = app.user_with_token("reader", true, "read_api").await;
    let res = app
        .client
        .get(app.url("/api/v4/applications"))
        .private_token(reader)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn unpaginated_list_streams_every_application() {
    let app = TestApp::spawn().await;
    // More than one keyset batch (500) to cross batch boundaries.
    for i in 0..1203 {
        app.services
            .create_application(
                &latchkey_core::context::Context::system(),
                None,
                &latchkey_core::application::ApplicationParams {
                    name: Some(format!("bulk {i}")),
                    redirect_uri: Some("https://bulk.example/cb".into()),
                    scopes: Some("api".into()),
                    confidential: true,
                    grant_types: None,
                },
            )
            .await
            .unwrap();
    }
    let list = app.list_apps().await;
    assert_eq!(list.len(), 1203);
    assert_eq!(list[0]["application_name"], "bulk 0");
    assert_eq!(list[1202]["application_name"], "bulk 1202");
    assert!(list
        .windows(2)
        .all(|w| w[0]["id"].as_i64() < w[1]["id"].as_i64()));
}

#[tokio::test]
async fn list_paginates_when_asked() {
    let app = TestApp::spawn().await;
    for i in 0..5 {
        app.create_app(&format!("p{i}")).await;
    }
    let get = |q: &'static str| {
        let app = &app;
        async move {
            app.client
                .get(app.url(&format!("/api/v4/applications{q}")))
                .private_token(&app.root_token)
                .send()
                .await
                .unwrap()
        }
    };
    let res = get("?per_page=2&page=2").await;
    assert_eq!(res.status(), 200);
    let h = res.headers().clone();
    assert_eq!(h["x-total"], "5");
    assert_eq!(h["x-total-pages"], "3");
    assert_eq!(h["x-per-page"], "2");
    assert_eq!(h["x-page"], "2");
    assert_eq!(h["x-next-page"], "3");
    assert_eq!(h["x-prev-page"], "1");
    let link = h["link"].to_str().unwrap();
    let base = app.url("/api/v4/applications");
    assert!(
        link.contains(&format!("<{base}?per_page=2&page=1>; rel=\"prev\"")),
        "{link}"
    );
    assert!(
        link.contains(&format!("<{base}?per_page=2&page=3>; rel=\"next\"")),
        "{link}"
    );
    assert!(
        link.contains(&format!("<{base}?per_page=2&page=1>; rel=\"first\"")),
        "{link}"
    );
    assert!(
        link.contains(&format!("<{base}?per_page=2&page=3>; rel=\"last\"")),
        "{link}"
    );
    let body: Vec<Value> = res.json().await.unwrap();
    assert_eq!(
        body.iter()
            .map(|v| v["application_name"].as_str().unwrap())
            .collect::<Vec<_>>(),
        vec!["p2", "p3"]
    );

    let res = get("?page=9&per_page=2").await;
    assert_eq!(res.headers()["x-next-page"], "");
    assert_eq!(res.headers()["x-prev-page"], "");
    assert!(!res.headers()["link"]
        .to_str()
        .unwrap()
        .contains("rel=\"next\""));
    assert_eq!(res.json::<Vec<Value>>().await.unwrap().len(), 0);

    for junk in ["?per_page=abc", "?per_page=0", "?per_page=-4"] {
        let res = get(junk).await;
        assert_eq!(res.headers()["x-per-page"], "20", "{junk}");
        assert_eq!(res.json::<Vec<Value>>().await.unwrap().len(), 5);
    }
    let res = get("?per_page=101").await;
    assert_eq!(res.headers()["x-per-page"], "100");
    // Without page or per_page: every application, no pagination headers.
    let res = get("").await;
    assert!(res.headers().get("x-total").is_none());
}

#[tokio::test]
async fn delete_removes_and_answers_204_then_404() {
    let app = TestApp::spawn().await;
    let a = app.create_app("doomed").await;
    let keep = app.create_app("kept").await;
    let id = a["id"].as_i64().unwrap();
    // python-gitlab sends Content-Type: application/json with no body.
    let res = app
        .client
        .delete(app.url(&format!("/api/v4/applications/{id}")))
        .private_token(&app.root_token)
        .header("Content-Type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert!(res.bytes().await.unwrap().is_empty());
    let res = app
        .client
        .delete(app.url(&format!("/api/v4/applications/{id}")))
        .private_token(&app.root_token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        status_json(res).await,
        (404, json!({"message": "404 Application Not Found"}))
    );
    // gitbeaker sends `{}` with DELETE.
    let kid = keep["id"].as_i64().unwrap();
    let res = app
        .client
        .delete(app.url(&format!("/api/v4/applications/{kid}")))
        .private_token(&app.root_token)
        .header("Content-Type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert!(app.list_apps().await.is_empty());
    // The secret no longer opens anything.
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
async fn ids_that_are_not_integers_or_not_instance_apps() {
    let app = TestApp::spawn().await;
    let (alice, _) = app.user_with_token("alice", false, "api").await;
    let user_app = app.create_user_app(alice, "alice's").await;
    let cases: Vec<(String, u16, Value)> = vec![
        ("abc".into(), 400, json!({"error": "id is invalid"})),
        ("1.5".into(), 400, json!({"error": "id is invalid"})),
        (
            "99999999999999999999999999".into(),
            404,
            json!({"message": "404 Application Not Found"}),
        ),
        (
            "-1".into(),
            404,
            json!({"message": "404 Application Not Found"}),
        ),
        (
            "424242".into(),
            404,
            json!({"message": "404 Application Not Found"}),
        ),
        (
            user_app.to_string(),
            404,
            json!({"message": "404 Application Not Found"}),
        ),
    ];
    for (id, status, body) in cases {
        for path in [
            format!("/api/v4/applications/{id}"),
            format!("/api/v4/applications/{id}/renew-secret"),
        ] {
            let req = if path.ends_with("renew-secret") {
                app.client.post(app.url(&path))
            } else {
                app.client.delete(app.url(&path))
            };
            let res = req.private_token(&app.root_token).send().await.unwrap();
            assert_eq!(status_json(res).await, (status, body.clone()), "{path}");
        }
    }
    // The user's application is untouched.
    assert!(app
        .services
        .store()
        .find_application(user_app, latchkey_core::application::Ownership::Any)
        .await
        .unwrap()
        .is_some());
}

#[tokio::test]
async fn renew_secret_replaces_the_secret() {
    let app = TestApp::spawn().await;
    let a = app.create_app("renewable").await;
    let id = a["id"].as_i64().unwrap();
    let res = app
        .client
        .post(app.url(&format!("/api/v4/applications/{id}/renew-secret")))
        .private_token(&app.root_token)
        .send()
        .await
        .unwrap();
    let (status, body) = status_json(res).await;
    assert_eq!(status, 201);
    assert_eq!(body["id"], a["id"]);
    assert_eq!(body["application_id"], a["application_id"]);
    assert_eq!(body["application_name"], "renewable");
    let new_secret = body["secret"].as_str().unwrap();
    assert!(new_secret.starts_with("gloas-"));
    assert_ne!(new_secret, a["secret"].as_str().unwrap());
    let uid = a["application_id"].as_str().unwrap();
    assert!(app
        .services
        .verify_client_secret(uid, a["secret"].as_str().unwrap())
        .await
        .unwrap()
        .is_none());
    assert!(app
        .services
        .verify_client_secret(uid, new_secret)
        .await
        .unwrap()
        .is_some());
}

#[tokio::test]
async fn keyset_pagination_and_the_count_cap() {
    use latchkey_core::dump::{Cell, TABLES};
    let app = TestApp::spawn().await;
    // 10,050 instance applications in one transaction.
    let spec = TABLES
        .iter()
        .find(|t| t.name == "oauth_applications")
        .unwrap();
    let rows: Vec<Vec<Cell>> = (1..=10_050)
        .map(|i| {
            spec.columns
                .iter()
                .map(|(c, _)| match *c {
                    "id" => Cell::Int(i),
                    "uid" => Cell::Text(format!("{i:064x}")),
                    "name" => Cell::Text(format!("bulk {i}")),
                    "secret_digest" => Cell::Text("x".into()),
                    "redirect_uri" => Cell::Text("https://b.example/cb".into()),
                    "scopes" => Cell::Text("api".into()),
                    "confidential" | "trusted" | "dynamic" => Cell::Bool(false),
                    "created_at" | "updated_at" => Cell::Int(0),
                    _ => Cell::Null,
                })
                .collect()
        })
        .collect();
    app.services.store().import_rows(spec, &rows).await.unwrap();
    app.services.store().finish_import().await.unwrap();

    let get = |q: String| {
        let req = app
            .client
            .get(app.url(&format!("/api/v4/applications{q}")))
            .private_token(&app.root_token);
        async move { req.send().await.unwrap() }
    };
    // Offset pages past the cap: no totals, no last link, as GitLab.
    let res = get("?per_page=20&page=2".into()).await;
    assert!(res.headers().get("x-total").is_none() && res.headers().get("x-total-pages").is_none());
    let link = res.headers()["link"].to_str().unwrap().to_owned();
    assert!(
        link.contains("rel=\"next\"") && !link.contains("rel=\"last\""),
        "{link}"
    );
    assert_eq!(res.json::<Vec<Value>>().await.unwrap()[0]["id"], 21);
    let res = get("?per_page=20&page=503".into()).await;
    assert_eq!(res.headers()["x-next-page"], "");
    assert_eq!(res.json::<Vec<Value>>().await.unwrap().len(), 10);

    // Keyset pages, following Link rel="next" to the end.
    let mut url =
        app.url("/api/v4/applications?pagination=keyset&per_page=100&order_by=id&sort=asc");
    let mut seen = 0;
    let mut last_id = 0;
    let mut pages = 0;
    loop {
        let res = app
            .client
            .get(&url)
            .private_token(&app.root_token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.headers()["x-per-page"], "100");
        let next = res.headers().get("link").map(|l| {
            let l = l.to_str().unwrap();
            l[1..l.find('>').unwrap()].to_owned()
        });
        let page: Vec<Value> = res.json().await.unwrap();
        for a in &page {
            let id = a["id"].as_i64().unwrap();
            assert!(id > last_id);
            last_id = id;
        }
        seen += page.len();
        pages += 1;
        match next {
            Some(n) => url = n,
            None => break,
        }
    }
    assert_eq!((seen, last_id, pages), (10_050, 10_050, 101));
    let res = get("?pagination=keyset&order_by=name".into()).await;
    assert_eq!(
        status_json(res).await,
        (
            400,
            json!({"error": "order_by does not have a valid value"})
        )
    );
    // New rows get ids after the imported ones.
    let created = app.create_app("after import").await;
    assert_eq!(created["id"], 10_051);
}
