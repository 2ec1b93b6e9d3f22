use serde_json::{json, Value};

use crate::helpers::{status_json, RequestAs, TestApp};

async fn post_user(app: &TestApp, body: Value) -> (u16, Value) {
    let res = app
        .client
        .post(app.url("/api/v4/users"))
        .private_token(&app.root_token)
        .json(&body)
        .send()
        .await
        .unwrap();
    status_json(res).await
}

#[tokio::test]
async fn admins_create_find_update_and_delete_users() {
    let app = TestApp::spawn().await;
    let (status, user) = post_user(
        &app,
        json!({"username": "jane", "email": "jane@example.com", "name": "Jane", "password": "correct horse battery"}),
    )
    .await;
    assert_eq!(status, 201, "{user}");
    assert_eq!(user["username"], "jane");
    assert_eq!(user["is_admin"], false);
    assert!(user.get("password").is_none() && !user.to_string().contains("correct horse"));
    let id = user["id"].as_i64().unwrap();

    let (status, body) = post_user(&app, json!({"username": "JANE", "email": "other@example.com", "name": "x", "password": "correct horse battery"})).await;
    assert_eq!(
        (status, body),
        (409, json!({"message": "Username has already been taken"}))
    );
    let (status, body) = post_user(&app, json!({"username": "jane2", "email": "Jane@Example.com", "name": "x", "force_random_password": true})).await;
    assert_eq!(
        (status, body),
        (409, json!({"message": "Email has already been taken"}))
    );
    let (status, body) = post_user(&app, json!({})).await;
    assert_eq!(
        (status, body),
        (
            400,
            json!({"error": "email is missing, password, reset_password, force_random_password are missing, at least one parameter must be provided, name is missing, username is missing"})
        )
    );
    let (status, body) = post_user(
        &app,
        json!({"username": "shorty", "email": "s@example.com", "name": "S", "password": "short"}),
    )
    .await;
    assert_eq!(
        (status, body),
        (
            400,
            json!({"message": {"password": ["is too short (minimum is 8 characters)"]}})
        )
    );
    let (status, body) = post_user(
        &app,
        json!({"username": "-bad", "email": "nope", "name": "S", "reset_password": true}),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        body["message"]["username"].is_array() && body["message"]["email"] == json!(["is invalid"]),
        "{body}"
    );

    let res = app
        .client
        .get(app.url(&format!("/api/v4/users/{id}")))
        .private_token(&app.root_token)
        .send()
        .await
        .unwrap();
    assert_eq!(status_json(res).await.1["email"], "jane@example.com");
    let res = app
        .client
        .get(app.url("/api/v4/users/9999"))
        .private_token(&app.root_token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        status_json(res).await,
        (404, json!({"message": "404 User Not Found"}))
    );

    let res = app
        .client
        .put(app.url(&format!("/api/v4/users/{id}")))
        .private_token(&app.root_token)
        .form(&[("name", "Jane Doe"), ("admin", "true")])
        .send()
        .await
        .unwrap();
    let (status, body) = status_json(res).await;
    assert_eq!(
        (status, body["name"].clone(), body["is_admin"].clone()),
        (200, json!("Jane Doe"), json!(true))
    );
    let res = app
        .client
        .put(app.url(&format!("/api/v4/users/{id}")))
        .private_token(&app.root_token)
        .form(&[("username", "root")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        status_json(res).await,
        (409, json!({"message": "Username has already been taken"}))
    );

    // Deleting a user removes their applications and tokens.
    let app_id = app.create_user_app(id, "jane's").await;
    let (_, token) = app
        .services
        .create_token(
            &latchkey_core::context::Context::system(),
            id,
            "t",
            "api",
            None,
        )
        .await
        .unwrap();
    let res = app
        .client
        .delete(app.url(&format!("/api/v4/users/{id}")))
        .private_token(&app.root_token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert!(app
        .services
        .store()
        .find_application(app_id, latchkey_core::application::Ownership::Any)
        .await
        .unwrap()
        .is_none());
    let res = app
        .client
        .get(app.url("/api/v4/user"))
        .private_token(token.expose())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let res = app
        .client
        .delete(app.url(&format!("/api/v4/users/{id}")))
        .private_token(&app.root_token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        status_json(res).await,
        (404, json!({"message": "404 User Not Found"}))
    );
}

#[tokio::test]
async fn listing_filters_and_non_admin_views() {
    let app = TestApp::spawn().await;
    let (_, alice) = app.user_with_token("alice", false, "read_api").await;
    app.user_with_token("bob", false, "api").await;
    app.user_with_token("bobby_tables", false, "api").await;
    let get = |q: &str, t: &str| {
        let req = app
            .client
            .get(app.url(&format!("/api/v4/users{q}")))
            .private_token(t);
        async move { status_json(req.send().await.unwrap()).await }
    };
    let (_, all) = get("", &app.root_token).await;
    assert_eq!(all.as_array().unwrap().len(), 4);
    assert!(all[0]["email"].is_string());
    let (_, one) = get("?username=BOB", &app.root_token).await;
    assert_eq!(
        one.as_array()
            .unwrap()
            .iter()
            .map(|u| u["username"].clone())
            .collect::<Vec<_>>(),
        vec![json!("bob")]
    );
    let (_, some) = get("?search=bob", &app.root_token).await;
    assert_eq!(some.as_array().unwrap().len(), 2);
    let (_, none) = get("?search=%25", &app.root_token).await;
    assert_eq!(
        none.as_array().unwrap().len(),
        0,
        "LIKE wildcards are literal"
    );
    // Non-admins see the basic entity: no email, no admin flag.
    let (status, basic) = get("", &alice).await;
    assert_eq!(status, 200);
    assert!(basic[0].get("email").is_none() && basic[0].get("is_admin").is_none());
    // Only admins write.
    let res = app
        .client
        .post(app.url("/api/v4/users"))
        .private_token(&alice)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
}

#[tokio::test]
async fn block_and_unblock() {
    let app = TestApp::spawn().await;
    let (id, token) = app.user_with_token("alice", false, "api").await;
    let post = |path: String| {
        let req = app
            .client
            .post(app.url(&path))
            .private_token(&app.root_token);
        async move { status_json(req.send().await.unwrap()).await }
    };
    assert_eq!(
        post(format!("/api/v4/users/{id}/block")).await,
        (201, json!(true))
    );
    let res = app
        .client
        .get(app.url("/api/v4/user"))
        .private_token(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        status_json(res).await,
        (
            403,
            json!({"message": "403 Forbidden - Your account has been blocked."})
        )
    );
    let (_, listed) = status_json(
        app.client
            .get(app.url(&format!("/api/v4/users/{id}")))
            .private_token(&app.root_token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(listed["state"], "blocked");
    // As GitLab (python-gitlab's test_block_user): blocking again answers
    // null, unblocking an active user false.
    assert_eq!(
        post(format!("/api/v4/users/{id}/block")).await,
        (201, serde_json::Value::Null)
    );
    assert_eq!(
        post(format!("/api/v4/users/{id}/unblock")).await,
        (201, json!(true))
    );
    assert_eq!(
        post(format!("/api/v4/users/{id}/unblock")).await,
        (201, json!(false))
    );
    let res = app
        .client
        .get(app.url("/api/v4/user"))
        .private_token(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        post("/api/v4/users/9999/block".into()).await,
        (404, json!({"message": "404 User Not Found"}))
    );
}
