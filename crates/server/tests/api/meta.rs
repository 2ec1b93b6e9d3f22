use serde_json::json;

use crate::helpers::{status_json, RequestAs, TestApp};

#[tokio::test]
async fn health_endpoints_answer() {
    let app = TestApp::spawn().await;
    let res = app.client.get(app.url("/-/health")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), "latchkey OK");
    let (status, body) = status_json(
        app.client
            .get(app.url("/-/readiness"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, body["status"].clone()), (200, json!("ok")));
    let (status, body) =
        status_json(app.client.get(app.url("/-/liveness")).send().await.unwrap()).await;
    assert_eq!((status, body), (200, json!({"status": "ok"})));
}

#[tokio::test]
async fn metadata_in_gitlabs_shape() {
    let app = TestApp::spawn().await;
    let (_, token) = app.user_with_token("reader", false, "read_user").await;
    let res = app
        .client
        .get(app.url("/api/v4/metadata"))
        .private_token(&token)
        .send()
        .await
        .unwrap();
    let (status, body) = status_json(res).await;
    assert_eq!(status, 200);
    assert!(body["version"].as_str().unwrap().starts_with("18."));
    assert!(body["revision"].is_string());
    assert_eq!(body["enterprise"], false);
    assert_eq!(body["kas"]["enabled"], false);
    assert!(body["kas"]["externalUrl"].is_null());
    let res = app
        .client
        .get(app.url("/api/v4/metadata"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
}

#[tokio::test]
async fn version_and_current_user() {
    let app = TestApp::spawn().await;
    let res = app
        .client
        .get(app.url("/api/v4/version"))
        .private_token(&app.root_token)
        .send()
        .await
        .unwrap();
    let (status, body) = status_json(res).await;
    assert_eq!(status, 200);
    assert!(body["version"].as_str().unwrap().starts_with("18."));
    assert!(body["revision"].is_string());
    assert_eq!(
        app.client
            .get(app.url("/api/v4/version"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );

    let (_, token) = app.user_with_token("alice", false, "read_user").await;
    let res = app
        .client
        .get(app.url("/api/v4/user"))
        .private_token(&token)
        .send()
        .await
        .unwrap();
    let (status, body) = status_json(res).await;
    assert_eq!(status, 200);
    assert_eq!(body["username"], "alice");
    assert_eq!(body["name"], "alice");
    assert_eq!(body["email"], "alice@example.com");
    assert_eq!(body["state"], "active");
    assert_eq!(body["is_admin"], false);
    assert_eq!(body["web_url"], app.url("/alice"));
    assert!(body["avatar_url"]
        .as_str()
        .unwrap()
        .starts_with("https://www.gravatar.com/avatar/"));
    let created = body["created_at"].as_str().unwrap();
    assert!(created.len() == 24 && created.ends_with('Z'), "{created}");
    assert!(body["id"].as_i64().unwrap() > 0);
}
