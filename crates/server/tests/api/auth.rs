use latchkey_core::scopes::Scopes;
use latchkey_core::secret;
use latchkey_core::token::NewToken;
use latchkey_core::user::UserState;
use serde_json::json;

use crate::helpers::{status_json, Options, RequestAs, TestApp};

#[tokio::test]
async fn every_credential_source_works() {
    let app = TestApp::spawn().await;
    let t = &app.root_token;
    let url = app.url("/api/v4/applications");
    let reqs = vec![
        app.client.get(&url).private_token(t),
        app.client.get(format!("{url}?private_token={t}")),
        app.client
            .get(&url)
            .header("Authorization", format!("Bearer {t}")),
        app.client
            .get(&url)
            .header("Authorization", format!("bearer {t}")),
        app.client.get(format!("{url}?access_token={t}")),
    ];
    for req in reqs {
        assert_eq!(req.send().await.unwrap().status(), 200);
    }
}

#[tokio::test]
async fn missing_or_unknown_credentials_are_401() {
    let app = TestApp::spawn().await;
    let url = app.url("/api/v4/applications");
    for req in [
        app.client.get(&url),
        app.client
            .get(&url)
            .private_token("glpat-nope-nope-nope-nope"),
        app.client.get(&url).header("Authorization", "Bearer nope"),
        app.client
            .get(&url)
            .header("Authorization", "Basic cm9vdDpyb290"),
        app.client.post(&url).form(&[("scopes", "")]),
    ] {
        assert_eq!(
            status_json(req.send().await.unwrap()).await,
            (401, json!({"message": "401 Unauthorized"}))
        );
    }
}

#[tokio::test]
async fn bearer_header_and_access_token_param_together_are_refused() {
    let app = TestApp::spawn().await;
    let t = &app.root_token;
    let res = app
        .client
        .get(app.url(&format!("/api/v4/applications?access_token={t}")))
        .header("Authorization", format!("Bearer {t}"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        status_json(res).await,
        (
            400,
            json!({"error": "invalid_request", "error_description": "Both Authorization header and payload includes access token."})
        )
    );
}

async fn insert_token(
    app: &TestApp,
    user_id: i64,
    value: &str,
    expires: Option<time::Date>,
) -> i64 {
    app.services
        .store()
        .insert_token(NewToken {
            user_id,
            name: "t".into(),
            digest: secret::digest(value),
            scopes: Scopes::from_stored("api"),
            expires_at: expires,
            created_at: 0,
        })
        .await
        .unwrap()
        .id
}

#[tokio::test]
async fn expired_and_revoked_tokens_get_invalid_token() {
    let app = TestApp::spawn().await;
    let yesterday = time::OffsetDateTime::now_utc()
        .date()
        .previous_day()
        .unwrap();
    let today = time::OffsetDateTime::now_utc().date();
    insert_token(
        &app,
        app.root_id,
        "glpat-expired-expired-expired",
        Some(yesterday),
    )
    .await;
    insert_token(
        &app,
        app.root_id,
        "glpat-lastday-lastday-lastday",
        Some(today),
    )
    .await;
    let revoked = insert_token(&app, app.root_id, "glpat-revoked-revoked-revoked", None).await;
    assert!(app.services.store().revoke_token(revoked).await.unwrap());

    let get = |t: &'static str| {
        app.client
            .get(app.url("/api/v4/applications"))
            .private_token(t)
            .send()
    };
    let res = get("glpat-expired-expired-expired").await.unwrap();
    let challenge = res.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    let desc = "Token is expired. You can either do re-authorization or token refresh.";
    assert_eq!(
        status_json(res).await,
        (
            401,
            json!({"error": "invalid_token", "error_description": desc})
        )
    );
    assert_eq!(
        challenge,
        format!("Bearer realm=\"Protected by OAuth 2.0\", error=\"invalid_token\", error_description=\"{desc}\"")
    );
    // A token works through its expiry day.
    assert_eq!(
        get("glpat-lastday-lastday-lastday").await.unwrap().status(),
        200
    );
    let res = get("glpat-revoked-revoked-revoked").await.unwrap();
    assert!(res.headers().contains_key("www-authenticate"));
    assert_eq!(
        status_json(res).await,
        (
            401,
            json!({"error": "invalid_token", "error_description": "Token was revoked. You have to re-authorize from the user."})
        )
    );
}

#[tokio::test]
async fn scopes_decide_what_a_token_may_do() {
    let app = TestApp::spawn().await;
    let (_, read_api) = app.user_with_token("reader", true, "read_api").await;
    let (_, read_user) = app
        .user_with_token("profile-reader", true, "read_user")
        .await;
    let url = app.url("/api/v4/applications");
    assert_eq!(
        app.client
            .get(&url)
            .private_token(&read_api)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let res = app
        .create_app_form(
            &read_api,
            &[
                ("name", "x"),
                ("redirect_uri", "https://x/cb"),
                ("scopes", "api"),
            ],
        )
        .await;
    assert!(res.headers().get("www-authenticate").is_none());
    let insufficient = |scope: &str| {
        json!({
            "error": "insufficient_scope",
            "error_description": "The request requires higher privileges than provided by the access token.",
            "scope": scope,
        })
    };
    assert_eq!(status_json(res).await, (403, insufficient("api")));
    let res = app
        .client
        .get(&url)
        .private_token(&read_user)
        .send()
        .await
        .unwrap();
    assert_eq!(status_json(res).await, (403, insufficient("api read_api")));
    // read_user is enough for /user.
    let res = app
        .client
        .get(app.url("/api/v4/user"))
        .private_token(&read_user)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(app.list_apps().await.is_empty());
}

#[tokio::test]
async fn non_admins_get_403_before_parameter_validation() {
    let app = TestApp::spawn().await;
    let (_, user) = app.user_with_token("alice", false, "api").await;
    let a = app.create_app("root's").await;
    let id = a["id"].as_i64().unwrap();
    let forbidden = (403, json!({"message": "403 Forbidden"}));
    let res = app.create_app_form(&user, &[("scopes", "")]).await;
    assert_eq!(status_json(res).await, forbidden);
    let res = app
        .client
        .get(app.url("/api/v4/applications"))
        .private_token(&user)
        .send()
        .await
        .unwrap();
    assert_eq!(status_json(res).await, forbidden);
    let res = app
        .client
        .delete(app.url(&format!("/api/v4/applications/{id}")))
        .private_token(&user)
        .send()
        .await
        .unwrap();
    assert_eq!(status_json(res).await, forbidden);
    let res = app
        .client
        .delete(app.url("/api/v4/applications/abc"))
        .private_token(&user)
        .send()
        .await
        .unwrap();
    assert_eq!(status_json(res).await, forbidden);
    let res = app
        .client
        .post(app.url(&format!("/api/v4/applications/{id}/renew-secret")))
        .private_token(&user)
        .send()
        .await
        .unwrap();
    assert_eq!(status_json(res).await, forbidden);
    // Unauthenticated with bad parameters: 401, not 400.
    let res = app
        .client
        .delete(app.url("/api/v4/applications/abc"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(app.list_apps().await.len(), 1, "nothing was deleted");
}

#[tokio::test]
async fn blocked_users_get_403_with_the_reason() {
    let app = TestApp::spawn().await;
    let (id, token) = app.user_with_token("blocked", true, "api").await;
    assert!(app
        .services
        .store()
        .set_user_state(id, UserState::Blocked)
        .await
        .unwrap());
    let res = app
        .client
        .get(app.url("/api/v4/applications"))
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
    let res = app
        .client
        .get(app.url("/api/v4/user"))
        .private_token(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
}

#[tokio::test]
async fn admin_mode_requires_the_admin_mode_scope() {
    let app = TestApp::spawn_with(Options {
        admin_mode: true,
        ..Default::default()
    })
    .await;
    let (_, plain_admin) = app.user_with_token("admin2", true, "api").await;
    let (_, moded_admin) = app.user_with_token("admin3", true, "api admin_mode").await;
    let (_, user_with_scope) = app.user_with_token("user", false, "api admin_mode").await;
    let form = [
        ("name", "x"),
        ("redirect_uri", "https://x/cb"),
        ("scopes", "api"),
    ];
    let res = app.create_app_form(&plain_admin, &form).await;
    assert_eq!(
        status_json(res).await,
        (403, json!({"message": "403 Forbidden"}))
    );
    assert_eq!(
        app.create_app_form(&user_with_scope, &form).await.status(),
        403
    );
    assert_eq!(app.create_app_form(&moded_admin, &form).await.status(), 201);
    // root's token carries admin_mode.
    assert_eq!(
        app.create_app_form(&app.root_token, &form).await.status(),
        201
    );
}
