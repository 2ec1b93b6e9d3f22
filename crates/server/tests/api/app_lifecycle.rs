//! Applications' lifecycle extensions: the grants each may use, and
//! secrets that rotate without downtime.

use serde_json::{json, Value};

use crate::helpers::{status_json, RequestAs, TestApp};
use crate::oauth::{token_request, user_with_password, CB, PASSWORD};

async fn admin_app(app: &TestApp, form: &[(&str, &str)]) -> (u16, Value) {
    let mut all = vec![
        ("name", "Client"),
        ("redirect_uri", CB),
        ("scopes", "api read_user"),
    ];
    all.extend_from_slice(form);
    status_json(app.create_app_form(&app.root_token, &all).await).await
}

async fn grant(app: &TestApp, client: &Value, grant: &str) -> (u16, Value) {
    let id = client["application_id"].as_str().unwrap();
    let secret = client["secret"].as_str().unwrap();
    let mut form = vec![
        ("grant_type", grant),
        ("client_id", id),
        ("client_secret", secret),
    ];
    if grant == "password" {
        form.extend([("username", "dora"), ("password", PASSWORD)]);
    }
    let (status, body, _) = token_request(app, &form).await;
    (status, body)
}

#[tokio::test]
async fn each_application_uses_only_its_grants() {
    let app = TestApp::spawn().await;
    user_with_password(&app, "dora").await;

    // Today's behaviour by default: every grant, and GitLab's entity.
    let (status, open) = admin_app(&app, &[]).await;
    assert_eq!(status, 201, "{open}");
    assert!(open.get("grant_types").is_none());
    assert_eq!(grant(&app, &open, "client_credentials").await.0, 200);
    assert_eq!(grant(&app, &open, "password").await.0, 200);

    // A list of its own, as a string or an array; shown in the entity.
    let (status, narrow) = admin_app(&app, &[("grant_types", "client_credentials")]).await;
    assert_eq!(status, 201, "{narrow}");
    assert_eq!(narrow["grant_types"], json!(["client_credentials"]));
    assert_eq!(grant(&app, &narrow, "client_credentials").await.0, 200);
    let (status, body) = grant(&app, &narrow, "password").await;
    assert_eq!(
        (status, body["error"].clone()),
        (400, json!("unauthorized_client"))
    );
    let res = app
        .client
        .post(app.url("/oauth/authorize_device"))
        .form(&[
            ("client_id", narrow["application_id"].as_str().unwrap()),
            ("client_secret", narrow["secret"].as_str().unwrap()),
        ])
        .send()
        .await
        .unwrap();
    let (status, body) = status_json(res).await;
    assert_eq!(
        (status, body["error"].clone()),
        (400, json!("unauthorized_client"))
    );
    let res = app
        .client
        .post(app.url("/api/v4/applications"))
        .private_token(&app.root_token)
        .json(&json!({
            "name": "Array", "redirect_uri": CB, "scopes": "api",
            "grant_types": ["password", "authorization_code"]
        }))
        .send()
        .await
        .unwrap();
    let (status, body) = status_json(res).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        body["grant_types"],
        json!(["authorization_code", "password"])
    );
    let (status, body) = admin_app(&app, &[("grant_types", "implicit")]).await;
    assert_eq!(
        (status, body),
        (
            400,
            json!({"error": "grant_types does not have a valid value"})
        )
    );

    // GitLab's ropc_enabled maps onto password.
    let (status, no_ropc) = admin_app(&app, &[("ropc_enabled", "false")]).await;
    assert_eq!(status, 201);
    assert_eq!(
        no_ropc["grant_types"],
        json!([
            "authorization_code",
            "refresh_token",
            "client_credentials",
            "urn:ietf:params:oauth:grant-type:device_code"
        ])
    );
    assert_eq!(grant(&app, &no_ropc, "password").await.0, 400);
    assert_eq!(grant(&app, &no_ropc, "client_credentials").await.0, 200);

    // Changed by the admin API, and by the user API for one's own.
    let res = app
        .client
        .put(app.url(&format!("/api/v4/applications/{}", narrow["id"])))
        .private_token(&app.root_token)
        .form(&[("grant_types", "password client_credentials")])
        .send()
        .await
        .unwrap();
    let (status, body) = status_json(res).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["grant_types"],
        json!(["client_credentials", "password"])
    );
    assert_eq!(grant(&app, &narrow, "password").await.0, 200);
    let res = app
        .client
        .put(app.url(&format!("/api/v4/applications/{}", narrow["id"])))
        .private_token(&app.root_token)
        .form(&[("ropc_enabled", "false")])
        .send()
        .await
        .unwrap();
    let (_, body) = status_json(res).await;
    assert_eq!(body["grant_types"], json!(["client_credentials"]));

    let (_, alice) = app.user_with_token("alice", false, "api").await;
    let res = app
        .client
        .post(app.url("/api/v4/user/applications"))
        .private_token(&alice)
        .form(&[
            ("name", "Mine"),
            ("redirect_uri", CB),
            ("scopes", "api read_user"),
            ("grant_types", "authorization_code,refresh_token"),
        ])
        .send()
        .await
        .unwrap();
    let (status, mine) = status_json(res).await;
    assert_eq!(status, 201, "{mine}");
    assert_eq!(
        mine["grant_types"],
        json!(["authorization_code", "refresh_token"])
    );
    assert_eq!(grant(&app, &mine, "client_credentials").await.0, 400);
    let res = app
        .client
        .put(app.url(&format!("/api/v4/user/applications/{}", mine["id"])))
        .private_token(&alice)
        .form(&[("grant_types", "client_credentials")])
        .send()
        .await
        .unwrap();
    let (status, body) = status_json(res).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = grant(&app, &mine, "client_credentials").await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn the_instance_switch_stays_a_ceiling() {
    let app = TestApp::spawn_with(crate::helpers::Options {
        password_grant: false,
        ..Default::default()
    })
    .await;
    user_with_password(&app, "dora").await;
    let (_, client) = admin_app(&app, &[("grant_types", "password")]).await;
    let (status, body) = grant(&app, &client, "password").await;
    assert_ne!(status, 200, "{body}");
}
