//! The in-process token cache (on in every TestApp, with a 10-minute TTL)
//! must never answer from a row older than the last change made through
//! this process: each test warms the cache, changes something, and expects
//! the very next request to see it.

use serde_json::Value;

use crate::helpers::{status_json, RequestAs, TestApp};
use crate::oauth::{register, token_request, user_with_password, PASSWORD};

async fn me(app: &TestApp, header: (&str, String)) -> (u16, Value) {
    let res = app
        .client
        .get(app.url("/api/v4/user"))
        .header(header.0, header.1)
        .send()
        .await
        .unwrap();
    status_json(res).await
}

async fn pat(app: &TestApp, token: &str) -> (u16, Value) {
    me(app, ("PRIVATE-TOKEN", token.to_owned())).await
}

async fn bearer(app: &TestApp, token: &str) -> (u16, Value) {
    me(app, ("Authorization", format!("Bearer {token}"))).await
}

/// Root sends `method path`; returns the status.
async fn as_root(app: &TestApp, method: reqwest::Method, path: &str, form: &[(&str, &str)]) -> u16 {
    app.client
        .request(method, app.url(path))
        .private_token(&app.root_token)
        .form(form)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn warm(app: &TestApp, token: &str) -> Value {
    let (status, first) = pat(app, token).await;
    assert_eq!(status, 200, "{first}");
    let (_, second) = pat(app, token).await;
    assert_eq!(first, second);
    second
}

#[tokio::test]
async fn personal_access_tokens_follow_every_change_at_once() {
    use reqwest::Method;
    let app = TestApp::spawn().await;
    let (alice_id, alice) = app.user_with_token("alice", false, "read_user").await;

    // Edits show in the cached owner at once.
    warm(&app, &alice).await;
    let path = format!("/api/v4/users/{alice_id}");
    assert_eq!(
        as_root(&app, Method::PUT, &path, &[("name", "Alice B")]).await,
        200
    );
    assert_eq!(pat(&app, &alice).await.1["name"], "Alice B");

    // Blocked, then unblocked.
    warm(&app, &alice).await;
    assert_eq!(
        as_root(&app, Method::POST, &format!("{path}/block"), &[]).await,
        201
    );
    assert_eq!(pat(&app, &alice).await.0, 403);
    assert_eq!(
        as_root(&app, Method::POST, &format!("{path}/unblock"), &[]).await,
        201
    );
    assert_eq!(pat(&app, &alice).await.0, 200);

    // Revoked by an admin.
    let token_id = {
        let res = app
            .client
            .get(app.url("/api/v4/personal_access_tokens/self"))
            .private_token(&alice)
            .send()
            .await
            .unwrap();
        status_json(res).await.1["id"].as_i64().unwrap()
    };
    warm(&app, &alice).await;
    assert_eq!(
        as_root(
            &app,
            Method::DELETE,
            &format!("/api/v4/personal_access_tokens/{token_id}"),
            &[]
        )
        .await,
        204
    );
    assert_eq!(pat(&app, &alice).await.0, 401);

    // Rotated by its owner: the old value stops, the new one works.
    let (_, bob) = app.user_with_token("bob", false, "api").await;
    warm(&app, &bob).await;
    let res = app
        .client
        .post(app.url("/api/v4/personal_access_tokens/self/rotate"))
        .private_token(&bob)
        .send()
        .await
        .unwrap();
    let (status, rotated) = status_json(res).await;
    assert_eq!(status, 200, "{rotated}");
    assert_eq!(pat(&app, &bob).await.0, 401);
    assert_eq!(pat(&app, rotated["token"].as_str().unwrap()).await.0, 200);

    // The owner deleted.
    let (carol_id, carol) = app.user_with_token("carol", false, "read_user").await;
    warm(&app, &carol).await;
    assert_eq!(
        as_root(
            &app,
            Method::DELETE,
            &format!("/api/v4/users/{carol_id}"),
            &[]
        )
        .await,
        204
    );
    assert_eq!(pat(&app, &carol).await.0, 401);
}

#[tokio::test]
async fn oauth_access_tokens_follow_revocation_and_deletion_at_once() {
    let app = TestApp::spawn().await;
    let client = register(&app, true, "api").await;
    user_with_password(&app, "dora").await;
    let password_token = || async {
        let (status, body, _) = token_request(
            &app,
            &[
                ("grant_type", "password"),
                ("username", "dora"),
                ("password", PASSWORD),
                ("client_id", &client.client_id),
                ("client_secret", &client.secret),
            ],
        )
        .await;
        assert_eq!(status, 200, "{body}");
        body["access_token"].as_str().unwrap().to_owned()
    };

    // Revoked through RFC 7009.
    let access = password_token().await;
    assert_eq!(bearer(&app, &access).await.0, 200);
    assert_eq!(bearer(&app, &access).await.0, 200);
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
    assert_eq!(bearer(&app, &access).await.0, 401);

    // The application deleted, with its tokens.
    let access = password_token().await;
    assert_eq!(bearer(&app, &access).await.0, 200);
    assert_eq!(bearer(&app, &access).await.0, 200);
    assert_eq!(
        as_root(
            &app,
            reqwest::Method::DELETE,
            &format!("/api/v4/applications/{}", client.id),
            &[]
        )
        .await,
        204
    );
    assert_eq!(bearer(&app, &access).await.0, 401);
}
