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
    let (status, body) = admin_app(&app, &[("grant_types", "")]).await;
    assert_eq!(
        (status, body),
        (400, json!({"error": "grant_types is empty"}))
    );
    let (status, body) = admin_app(&app, &[("ropc_enabled", "true")]).await;
    assert_eq!(status, 201);
    assert!(
        body.get("grant_types").is_none(),
        "every grant is no limit: {body}"
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
    let (status, body) = grant(&app, &narrow, "password").await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.get("refresh_token").is_none(),
        "no refresh_token grant, no refresh token: {body}"
    );
    let (_, body) = grant(&app, &open, "password").await;
    assert!(body["refresh_token"].is_string());
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

async fn post(app: &TestApp, path: &str, token: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let res = app
        .client
        .post(app.url(path))
        .private_token(token)
        .form(form)
        .send()
        .await
        .unwrap();
    status_json(res).await
}

async fn get(app: &TestApp, path: &str, token: &str) -> (u16, Value) {
    let res = app
        .client
        .get(app.url(path))
        .private_token(token)
        .send()
        .await
        .unwrap();
    status_json(res).await
}

async fn delete(app: &TestApp, path: &str, token: &str) -> u16 {
    app.client
        .delete(app.url(path))
        .private_token(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// client_credentials with this client_id and secret: the status.
async fn works(app: &TestApp, client_id: &str, secret: &str) -> u16 {
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", client_id),
        ("client_secret", secret),
    ];
    token_request(app, &form).await.0
}

#[tokio::test]
async fn secrets_rotate_with_and_without_grace_and_expire_on_the_clock() {
    let clock = std::sync::Arc::new(latchkey_core::clock::FixedClock::new(
        time::OffsetDateTime::now_utc(),
    ));
    let app = TestApp::spawn_with(crate::helpers::Options {
        clock: Some(clock.clone()),
        ..Default::default()
    })
    .await;
    let root = app.root_token.clone();
    let (status, client) = admin_app(&app, &[]).await;
    assert_eq!(status, 201);
    let base = format!("/api/v4/applications/{}", client["id"]);
    let id = client["application_id"].as_str().unwrap().to_owned();
    let first = client["secret"].as_str().unwrap().to_owned();

    // One live secret, shown without its value.
    let (status, list) = get(&app, &format!("{base}/secrets"), &root).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["hint"], first[first.len() - 4..].to_string());
    assert_eq!(list[0]["expires_at"], Value::Null);
    assert!(!list.to_string().contains(&first));

    // With a grace period, both work until it ends.
    let (status, renewed) = post(
        &app,
        &format!("{base}/renew-secret"),
        &root,
        &[("expires_in", "3600")],
    )
    .await;
    assert_eq!(status, 201, "{renewed}");
    let second = renewed["secret"].as_str().unwrap().to_owned();
    assert_eq!(works(&app, &id, &first).await, 200);
    assert_eq!(works(&app, &id, &second).await, 200);
    let (_, list) = get(&app, &format!("{base}/secrets"), &root).await;
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert_ne!(list[0]["expires_at"], Value::Null);
    assert_eq!(list[1]["expires_at"], Value::Null);
    clock.advance(time::Duration::seconds(3601));
    assert_eq!(
        works(&app, &id, &first).await,
        401,
        "the grace period is over"
    );
    assert_eq!(works(&app, &id, &second).await, 200);
    let (_, list) = get(&app, &format!("{base}/secrets"), &root).await;
    assert_eq!(list.as_array().unwrap().len(), 1);

    // As GitLab: without expires_in every previous secret dies at once;
    // the tokens issued before stay.
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", id.as_str()),
        ("client_secret", second.as_str()),
    ];
    let (_, token, _) = token_request(&app, &form).await;
    let access = token["access_token"].as_str().unwrap().to_owned();
    let (status, renewed) = post(&app, &format!("{base}/renew-secret"), &root, &[]).await;
    assert_eq!(status, 201);
    let third = renewed["secret"].as_str().unwrap().to_owned();
    assert!(renewed.get("secret_expires_at").is_none());
    assert_eq!(works(&app, &id, &second).await, 401);
    assert_eq!(works(&app, &id, &third).await, 200);
    let res = app
        .client
        .get(app.url("/oauth/token/info"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "a renewal does not touch tokens");

    // A secret that expires itself.
    let (status, renewed) = post(
        &app,
        &format!("{base}/renew-secret"),
        &root,
        &[("expires_in", "60"), ("secret_expires_in", "120")],
    )
    .await;
    assert_eq!(status, 201, "{renewed}");
    let fourth = renewed["secret"].as_str().unwrap().to_owned();
    assert!(renewed["secret_expires_at"].is_string());
    clock.advance(time::Duration::seconds(61));
    assert_eq!(works(&app, &id, &third).await, 401);
    assert_eq!(works(&app, &id, &fourth).await, 200);
    clock.advance(time::Duration::seconds(60));
    assert_eq!(works(&app, &id, &fourth).await, 401, "expired itself");
    for bad in ["0", "-5", "soon", ""] {
        let (status, body) = post(
            &app,
            &format!("{base}/renew-secret"),
            &root,
            &[("expires_in", bad)],
        )
        .await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
    let (_, list) = get(&app, &format!("{base}/secrets"), &root).await;
    assert_eq!(
        list.as_array().unwrap().len(),
        0,
        "expired, and no refusal renewed"
    );

    // Renewals with grace add secrets, up to a bound.
    let mut last = 0;
    for _ in 0..12 {
        let form = [("expires_in", "99999999999999")];
        last = post(&app, &format!("{base}/renew-secret"), &root, &form)
            .await
            .0;
        if last != 201 {
            break;
        }
    }
    assert_eq!(last, 400, "at most 10 live secrets");
    let (_, list) = get(&app, &format!("{base}/secrets"), &root).await;
    assert_eq!(list.as_array().unwrap().len(), 10);
    assert!(
        list[0]["expires_at"].as_str().unwrap().starts_with("9999-"),
        "{list}"
    );
}

#[tokio::test]
async fn one_secret_deleted_and_everything_revoked() {
    let app = TestApp::spawn().await;
    let root = app.root_token.clone();
    let (_, client) = admin_app(&app, &[]).await;
    let base = format!("/api/v4/applications/{}", client["id"]);
    let id = client["application_id"].as_str().unwrap().to_owned();
    let first = client["secret"].as_str().unwrap().to_owned();
    let (_, list) = get(&app, &format!("{base}/secrets"), &root).await;
    let first_id = list[0]["id"].as_i64().unwrap();

    // The last live secret cannot go.
    assert_eq!(
        delete(&app, &format!("{base}/secrets/{first_id}"), &root).await,
        409
    );
    let (_, renewed) = post(
        &app,
        &format!("{base}/renew-secret"),
        &root,
        &[("expires_in", "86400")],
    )
    .await;
    let second = renewed["secret"].as_str().unwrap().to_owned();
    assert_eq!(
        delete(&app, &format!("{base}/secrets/{first_id}"), &root).await,
        204
    );
    assert_eq!(works(&app, &id, &first).await, 401, "gone at once");
    assert_eq!(works(&app, &id, &second).await, 200);
    assert_eq!(
        delete(&app, &format!("{base}/secrets/{first_id}"), &root).await,
        404
    );

    // Last use is recorded (once flushed).
    app.services.flush_usage().await.unwrap();
    let (_, list) = get(&app, &format!("{base}/secrets"), &root).await;
    assert!(list[0]["last_used_at"].is_string(), "{list}");

    // The leak response: every secret and token dies, a fresh secret.
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", id.as_str()),
        ("client_secret", second.as_str()),
    ];
    let (_, token, _) = token_request(&app, &form).await;
    let access = token["access_token"].as_str().unwrap().to_owned();
    let (status, fresh) = post(&app, &format!("{base}/revoke-all"), &root, &[]).await;
    assert_eq!(status, 201, "{fresh}");
    let fresh_secret = fresh["secret"].as_str().unwrap();
    assert_eq!(works(&app, &id, &second).await, 401);
    assert_eq!(works(&app, &id, fresh_secret).await, 200);
    let res = app
        .client
        .get(app.url("/oauth/token/info"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401, "its tokens died too");

    // The same for one's own applications, and a group's.
    let (_, alice) = app.user_with_token("alice", false, "api").await;
    let (status, mine) = post(
        &app,
        "/api/v4/user/applications",
        &alice,
        &[("name", "Mine"), ("redirect_uri", CB), ("scopes", "api")],
    )
    .await;
    assert_eq!(status, 201);
    let own = format!("/api/v4/user/applications/{}", mine["id"]);
    let (status, body) = post(
        &app,
        &format!("{own}/renew-secret"),
        &alice,
        &[("expires_in", "60")],
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (_, list) = get(&app, &format!("{own}/secrets"), &alice).await;
    assert_eq!(list.as_array().unwrap().len(), 2);
    let (status, _) = post(&app, &format!("{own}/revoke-all"), &alice, &[]).await;
    assert_eq!(status, 201);
    let (_, bob) = app.user_with_token("bob", false, "api").await;
    assert_eq!(get(&app, &format!("{own}/secrets"), &bob).await.0, 403);

    let (status, group) = post(
        &app,
        "/api/v4/groups",
        &alice,
        &[("name", "Org"), ("path", "org")],
    )
    .await;
    assert_eq!(status, 201);
    let (status, gapp) = post(
        &app,
        &format!("/api/v4/groups/{}/applications", group["id"]),
        &alice,
        &[("name", "G"), ("redirect_uri", CB), ("scopes", "api")],
    )
    .await;
    assert_eq!(status, 201);
    let gbase = format!("/api/v4/groups/{}/applications/{}", group["id"], gapp["id"]);
    let (status, _) = post(&app, &format!("{gbase}/renew-secret"), &alice, &[]).await;
    assert_eq!(status, 201);
    let (_, list) = get(&app, &format!("{gbase}/secrets"), &alice).await;
    let only = list[0]["id"].as_i64().unwrap();
    assert_eq!(
        delete(&app, &format!("{gbase}/secrets/{only}"), &alice).await,
        409
    );
    assert_eq!(get(&app, &format!("{gbase}/secrets"), &bob).await.0, 404);

    // Audited.
    let (_, events) = get(&app, "/api/v4/audit_events?per_page=100", &root).await;
    let names: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_name"].as_str().unwrap())
        .collect();
    for name in [
        "oauth_application_secret_renewed",
        "oauth_application_secret_deleted",
        "oauth_application_revoked_all",
    ] {
        assert!(names.contains(&name), "{name}: {names:?}");
    }
}
