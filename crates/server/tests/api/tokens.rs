use serde_json::{json, Value};

use crate::helpers::{in_days, status_json, RequestAs, TestApp};

#[tokio::test]
async fn admins_create_tokens_that_are_shown_once() {
    let app = TestApp::spawn().await;
    let (alice_id, alice) = app.user_with_token("alice", false, "read_api").await;
    let res = app
        .client
        .post(app.url(&format!("/api/v4/users/{alice_id}/personal_access_tokens")))
        .private_token(&app.root_token)
        .json(
            &json!({"name": "deploy", "scopes": ["api", "read_user"], "expires_at": in_days(300)}),
        )
        .send()
        .await
        .unwrap();
    let (status, body) = status_json(res).await;
    assert_eq!(status, 201, "{body}");
    let keys: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "id",
            "name",
            "revoked",
            "created_at",
            "description",
            "scopes",
            "user_id",
            "last_used_at",
            "active",
            "expires_at",
            "token"
        ]
    );
    assert_eq!(body["scopes"], json!(["api", "read_user"]));
    assert_eq!(body["expires_at"], in_days(300));
    assert_eq!(body["active"], true);
    let token = body["token"].as_str().unwrap().to_owned();
    let (_, me) = status_json(
        app.client
            .get(app.url("/api/v4/user"))
            .private_token(&token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(me["username"], "alice");
    // Never shown again.
    let id = body["id"].as_i64().unwrap();
    let (_, again) = status_json(
        app.client
            .get(app.url(&format!("/api/v4/personal_access_tokens/{id}")))
            .private_token(&token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(again.get("token").is_none());

    let post = |body: Value, user: i64, t: &str| {
        let req = app
            .client
            .post(app.url(&format!("/api/v4/users/{user}/personal_access_tokens")))
            .private_token(t)
            .json(&body);
        async move { status_json(req.send().await.unwrap()).await }
    };
    assert_eq!(
        post(json!({}), alice_id, &app.root_token).await,
        (400, json!({"error": "name is missing, scopes is missing"}))
    );
    assert_eq!(
        post(
            json!({"name": "x", "scopes": ["bogus"]}),
            alice_id,
            &app.root_token
        )
        .await,
        (400, json!({"error": "scopes does not have a valid value"}))
    );
    assert_eq!(
        post(
            json!({"name": "x", "scopes": ["api"], "expires_at": "tomorrow"}),
            alice_id,
            &app.root_token
        )
        .await,
        (400, json!({"error": "expires_at is invalid"}))
    );
    assert_eq!(
        post(
            json!({"name": "x", "scopes": ["api"]}),
            9999,
            &app.root_token
        )
        .await,
        (404, json!({"message": "404 User Not Found"}))
    );
    assert_eq!(
        post(json!({"name": "x", "scopes": ["api"]}), alice_id, &alice)
            .await
            .0,
        403
    );
}

#[tokio::test]
async fn listing_reading_and_revoking() {
    let app = TestApp::spawn().await;
    let (alice_id, alice) = app.user_with_token("alice", false, "api").await;
    let (_, bob) = app.user_with_token("bob", false, "api").await;
    let get = |path: &str, t: &str| {
        let req = app.client.get(app.url(path)).private_token(t);
        async move { status_json(req.send().await.unwrap()).await }
    };
    let (_, mine) = get("/api/v4/personal_access_tokens", &alice).await;
    assert_eq!(mine.as_array().unwrap().len(), 1);
    assert_eq!(mine[0]["user_id"], alice_id);
    let (_, all) = get("/api/v4/personal_access_tokens", &app.root_token).await;
    assert_eq!(all.as_array().unwrap().len(), 3);
    let (_, filtered) = get(
        &format!("/api/v4/personal_access_tokens?user_id={alice_id}"),
        &app.root_token,
    )
    .await;
    assert_eq!(filtered.as_array().unwrap().len(), 1);

    let (status, me) = get("/api/v4/personal_access_tokens/self", &alice).await;
    assert_eq!(status, 200);
    let alice_token_id = me["id"].as_i64().unwrap();
    // Someone else's token is invisible.
    let (status, body) = get(
        &format!("/api/v4/personal_access_tokens/{alice_token_id}"),
        &bob,
    )
    .await;
    assert_eq!(
        (status, body),
        (
            404,
            json!({"message": "404 Personal Access Token Not Found"})
        )
    );
    let res = app
        .client
        .delete(app.url(&format!("/api/v4/personal_access_tokens/{alice_token_id}")))
        .private_token(&bob)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    // The owner revokes it; it then fails as revoked.
    let res = app
        .client
        .delete(app.url("/api/v4/personal_access_tokens/self"))
        .private_token(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let (status, body) = get("/api/v4/user", &alice).await;
    assert_eq!(
        (status, body["error"].clone()),
        (401, json!("invalid_token"))
    );
    let (_, seen) = get(
        &format!("/api/v4/personal_access_tokens/{alice_token_id}"),
        &app.root_token,
    )
    .await;
    assert_eq!(
        (seen["revoked"].clone(), seen["active"].clone()),
        (json!(true), json!(false))
    );
    // An admin revokes anyone's.
    let (_, bob_self) = get("/api/v4/personal_access_tokens/self", &bob).await;
    let res = app
        .client
        .delete(app.url(&format!(
            "/api/v4/personal_access_tokens/{}",
            bob_self["id"]
        )))
        .private_token(&app.root_token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(get("/api/v4/user", &bob).await.0, 401);
}

#[tokio::test]
async fn rotation_revokes_the_old_token_and_returns_a_new_one() {
    let app = TestApp::spawn().await;
    let (_, alice) = app.user_with_token("alice", false, "api read_user").await;
    let res = app
        .client
        .post(app.url("/api/v4/personal_access_tokens/self/rotate"))
        .private_token(&alice)
        .send()
        .await
        .unwrap();
    let (status, body) = status_json(res).await;
    assert_eq!(status, 200, "{body}");
    let new = body["token"].as_str().unwrap().to_owned();
    assert_ne!(new, alice);
    assert_eq!(body["scopes"], json!(["api", "read_user"]));
    let in_a_week = (time::OffsetDateTime::now_utc().date() + time::Duration::days(7)).to_string();
    assert_eq!(body["expires_at"], in_a_week);
    let res = app
        .client
        .get(app.url("/api/v4/user"))
        .private_token(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let res = app
        .client
        .get(app.url("/api/v4/user"))
        .private_token(&new)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    // By id, with an expiry; rotating a revoked token is refused.
    let id = body["id"].as_i64().unwrap();
    let res = app
        .client
        .post(app.url(&format!("/api/v4/personal_access_tokens/{id}/rotate")))
        .private_token(&app.root_token)
        .form(&[("expires_at", in_days(200).as_str())])
        .send()
        .await
        .unwrap();
    let (status, rotated) = status_json(res).await;
    assert_eq!(
        (status, rotated["expires_at"].clone()),
        (200, json!(in_days(200)))
    );
    let res = app
        .client
        .post(app.url(&format!("/api/v4/personal_access_tokens/{id}/rotate")))
        .private_token(&app.root_token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        status_json(res).await,
        (
            400,
            json!({"message": "400 Bad request - Token already revoked"})
        )
    );

    // self_rotate alone may rotate itself but not read the API.
    let (_, narrow) = app.user_with_token("narrow", false, "self_rotate").await;
    let res = app
        .client
        .post(app.url("/api/v4/personal_access_tokens/self/rotate"))
        .private_token(&narrow)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let (_, reader) = app.user_with_token("reader", false, "read_user").await;
    let res = app
        .client
        .post(app.url("/api/v4/personal_access_tokens/self/rotate"))
        .private_token(&reader)
        .send()
        .await
        .unwrap();
    assert_eq!(status_json(res).await.1["error"], "insufficient_scope");
}
