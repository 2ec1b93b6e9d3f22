//! OpenID Connect, the device grant, dynamic client registration, CORS.

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use latchkey_core::registration::RegistrationMode;
use serde_json::{json, Value};

use crate::helpers::{status_json, Options, RequestAs, TestApp};
use crate::oauth::{
    hidden, location, query_param, register, token_request, urlencode, user_with_password, Browser,
    CB, CHALLENGE, PASSWORD, VERIFIER,
};

async fn get_json(app: &TestApp, path: &str) -> (u16, Value) {
    status_json(app.client.get(app.url(path)).send().await.unwrap()).await
}

/// Verify an ID token against the published JWKS.
async fn verify(app: &TestApp, id_token: &str, audience: &str) -> Value {
    let header = jsonwebtoken::decode_header(id_token).unwrap();
    assert_eq!(header.alg, Algorithm::RS256);
    let (_, jwks) = get_json(app, "/oauth/discovery/keys").await;
    let kid = header.kid.unwrap();
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .expect("signing key published");
    let key =
        DecodingKey::from_rsa_components(jwk["n"].as_str().unwrap(), jwk["e"].as_str().unwrap())
            .unwrap();
    let mut v = Validation::new(Algorithm::RS256);
    v.set_audience(&[audience]);
    v.set_issuer(&[app.base.as_str()]);
    jsonwebtoken::decode::<Value>(id_token, &key, &v)
        .unwrap()
        .claims
}

#[tokio::test]
async fn discovery_and_cors() {
    let app = TestApp::spawn().await;
    for path in [
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
    ] {
        let (status, doc) = get_json(&app, path).await;
        assert_eq!(status, 200);
        assert_eq!(doc["issuer"], app.base.as_str());
        assert_eq!(doc["authorization_endpoint"], app.url("/oauth/authorize"));
        assert_eq!(doc["token_endpoint"], app.url("/oauth/token"));
        assert_eq!(doc["jwks_uri"], app.url("/oauth/discovery/keys"));
        assert_eq!(doc["userinfo_endpoint"], app.url("/oauth/userinfo"));
        assert_eq!(
            doc["device_authorization_endpoint"],
            app.url("/oauth/authorize_device")
        );
        assert_eq!(
            doc["id_token_signing_alg_values_supported"],
            json!(["RS256"])
        );
        assert_eq!(
            doc["code_challenge_methods_supported"],
            json!(["plain", "S256"])
        );
        assert!(doc["scopes_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("openid")));
        assert!(
            doc.get("registration_endpoint").is_none(),
            "registration is off by default"
        );
    }
    let res = app
        .client
        .request(reqwest::Method::OPTIONS, app.url("/oauth/token"))
        .header("Origin", "https://spa.example")
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", "authorization")
        .send()
        .await
        .unwrap();
    assert!(
        res.status().is_success(),
        "{} {:?}",
        res.status(),
        res.headers()
    );
    assert_eq!(res.headers()["access-control-allow-origin"], "*");
    let res = app
        .client
        .get(app.url("/oauth/discovery/keys"))
        .header("Origin", "https://spa.example")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["access-control-allow-origin"], "*");
    // Not on the API or the pages.
    let res = app
        .client
        .get(app.url("/users/sign_in"))
        .header("Origin", "https://spa.example")
        .send()
        .await
        .unwrap();
    assert!(res.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn id_tokens_userinfo_and_key_rotation() {
    let app = TestApp::spawn().await;
    let client = register(&app, true, "openid email profile read_user").await;
    user_with_password(&app, "alice").await;
    let mut b = Browser::new();
    b.sign_in(&app, "alice", PASSWORD).await;
    let q = format!(
        "client_id={}&redirect_uri={}&response_type=code&state=s&scope={}&nonce=n-0S6&code_challenge={CHALLENGE}&code_challenge_method=S256",
        client.client_id,
        urlencode(CB),
        urlencode("openid email read_user")
    );
    let code = query_param(&location(&b.authorize(&app, &q, "authorize").await), "code").unwrap();
    let (status, body, _) = token_request(
        &app,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", CB),
            ("client_id", &client.client_id),
            ("client_secret", &client.secret),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let claims = verify(&app, body["id_token"].as_str().unwrap(), &client.client_id).await;
    assert_eq!(claims["nonce"], "n-0S6");
    assert_eq!(claims["preferred_username"], "alice");
    assert_eq!(claims["nickname"], "alice");
    assert_eq!(claims["email"], "alice@example.com");
    assert_eq!(claims["email_verified"], true);
    // GitLab puts the direct groups in the ID token, every group in UserInfo.
    assert_eq!(claims["groups_direct"], json!([]));
    assert!(claims.get("groups").is_none(), "{claims}");
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        120
    );
    assert!(claims["auth_time"].as_i64().unwrap() <= claims["iat"].as_i64().unwrap());
    let sub = claims["sub"].as_str().unwrap().to_owned();

    // UserInfo, GET and POST, says the same about the user.
    let access = body["access_token"].as_str().unwrap();
    for req in [
        app.client.get(app.url("/oauth/userinfo")),
        app.client.post(app.url("/oauth/userinfo")),
    ] {
        let (status, info) = status_json(req.bearer(access).send().await.unwrap()).await;
        assert_eq!(status, 200);
        assert_eq!(info["sub"], sub.as_str());
        assert_eq!(info["email"], "alice@example.com");
    }
    let (status, body) = status_json(
        app.client
            .get(app.url("/oauth/userinfo"))
            .bearer("nope")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body["error"].clone()),
        (401, json!("invalid_token"))
    );

    // Refreshing returns a fresh ID token too.
    let (_, refreshed, _) = token_request(
        &app,
        &[
            ("grant_type", "refresh_token"),
            (
                "refresh_token",
                body_refresh(&app, &client, &mut b).await.as_str(),
            ),
            ("client_id", &client.client_id),
            ("client_secret", &client.secret),
        ],
    )
    .await;
    assert!(refreshed["id_token"].is_string(), "{refreshed}");

    // Rotation: the new key signs, the old one stays published.
    let (_, before) = get_json(&app, "/oauth/discovery/keys").await;
    let old_kid = before["keys"][0]["kid"].as_str().unwrap().to_owned();
    let new_kid = app
        .services
        .rotate_signing_key(&latchkey_core::context::Context::system())
        .await
        .unwrap();
    let (_, after) = get_json(&app, "/oauth/discovery/keys").await;
    let kids: Vec<&str> = after["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids, vec![new_kid.as_str(), old_kid.as_str()]);
    let code = query_param(&location(&b.authorize(&app, &q, "authorize").await), "code").unwrap();
    let (_, body, _) = token_request(
        &app,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", CB),
            ("client_id", &client.client_id),
            ("client_secret", &client.secret),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    let token = body["id_token"].as_str().unwrap();
    assert_eq!(
        jsonwebtoken::decode_header(token).unwrap().kid.as_deref(),
        Some(new_kid.as_str())
    );
    verify(&app, token, &client.client_id).await;

    // Without openid: no ID token, and UserInfo refuses.
    let plain = register(&app, true, "read_user").await;
    let (_, cc, _) = token_request(
        &app,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &plain.client_id),
            ("client_secret", &plain.secret),
            ("scope", "read_user"),
        ],
    )
    .await;
    assert!(cc.get("id_token").is_none());
    let res = app
        .client
        .get(app.url("/oauth/userinfo"))
        .bearer(cc["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(status_json(res).await.1["error"], "insufficient_scope");
}

/// A refresh token from a fresh code flow with openid.
async fn body_refresh(app: &TestApp, client: &crate::oauth::Client2, b: &mut Browser) -> String {
    let q = format!(
        "client_id={}&redirect_uri={}&response_type=code&scope=openid&code_challenge={CHALLENGE}&code_challenge_method=S256",
        client.client_id,
        urlencode(CB)
    );
    let code = query_param(&location(&b.authorize(app, &q, "authorize").await), "code").unwrap();
    let (_, body, _) = token_request(
        app,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", CB),
            ("client_id", &client.client_id),
            ("client_secret", &client.secret),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    body["refresh_token"].as_str().unwrap().to_owned()
}

async fn device_start(app: &TestApp, client: &crate::oauth::Client2) -> Value {
    device_start_with(app, client, "read_user openid").await
}

/// Start a device authorization for `client` with `scope`.
pub async fn device_start_with(
    app: &TestApp,
    client: &crate::oauth::Client2,
    scope: &str,
) -> Value {
    let res = app
        .client
        .post(app.url("/oauth/authorize_device"))
        .form(&[
            ("client_id", client.client_id.as_str()),
            ("client_secret", client.secret.as_str()),
            ("scope", scope),
        ])
        .send()
        .await
        .unwrap();
    let (status, body) = status_json(res).await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn poll(app: &TestApp, client: &crate::oauth::Client2, device_code: &str) -> (u16, Value) {
    let (s, b, _) = token_request(
        app,
        &[
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("device_code", device_code),
            ("client_id", &client.client_id),
            ("client_secret", &client.secret),
        ],
    )
    .await;
    (s, b)
}

#[tokio::test]
async fn the_device_grant() {
    let app = TestApp::spawn().await;
    let client = register(&app, true, "read_user openid").await;
    let start = device_start(&app, &client).await;
    let user_code = start["user_code"].as_str().unwrap().to_owned();
    assert_eq!(user_code.len(), 8);
    assert!(user_code
        .bytes()
        .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase()));
    assert_eq!(start["expires_in"], 300);
    assert_eq!(start["interval"], 5);
    assert_eq!(start["verification_uri"], app.url("/oauth/device"));
    assert_eq!(
        start["verification_uri_complete"],
        app.url(&format!("/oauth/device?user_code={user_code}"))
    );
    let device_code = start["device_code"].as_str().unwrap().to_owned();

    assert_eq!(
        poll(&app, &client, &device_code).await.1["error"],
        "authorization_pending"
    );
    assert_eq!(
        poll(&app, &client, &device_code).await.1["error"],
        "slow_down"
    );
    let other = register(&app, true, "read_user").await;
    assert_eq!(
        poll(&app, &other, &device_code).await.1["error"],
        "invalid_grant"
    );
    assert_eq!(
        poll(&app, &client, "unknown").await.1["error"],
        "invalid_grant"
    );

    // The person signs in, types the code (any case, with a dash), approves.
    user_with_password(&app, "alice").await;
    let mut b = Browser::new();
    let res = b
        .get(start["verification_uri_complete"].as_str().unwrap())
        .await;
    assert!(location(&res).starts_with("/users/sign_in?return_to="));
    b.sign_in(&app, "alice", PASSWORD).await;
    let html = b.get(&app.url("/oauth/device")).await.text().await.unwrap();
    let csrf = hidden(&html, "authenticity_token").unwrap();
    let typed = format!("{}-{}", &user_code[..4].to_lowercase(), &user_code[4..]);
    let res = b
        .post(
            &app.url("/oauth/device"),
            &[("authenticity_token", &csrf), ("user_code", &typed)],
        )
        .await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(html.contains("Authorize Client on your device?"), "{html}");
    let res = b
        .post(
            &app.url("/oauth/device"),
            &[("authenticity_token", "forged"), ("user_code", &typed)],
        )
        .await;
    assert_eq!(res.status(), 422);
    let res = b
        .post(
            &app.url("/oauth/device"),
            &[("authenticity_token", &csrf), ("user_code", "WRONG000")],
        )
        .await;
    assert_eq!(res.status(), 404);
    let res = b
        .post(
            &app.url("/oauth/device/confirm"),
            &[
                ("authenticity_token", &csrf),
                ("user_code", &user_code),
                ("decision", "authorize"),
            ],
        )
        .await;
    assert!(res.text().await.unwrap().contains("Device connected"));

    let (status, tokens) = poll(&app, &client, &device_code).await;
    assert_eq!(status, 200, "{tokens}");
    assert!(tokens["refresh_token"].is_string() && tokens["id_token"].is_string());
    let me = app
        .client
        .get(app.url("/api/v4/user"))
        .bearer(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(status_json(me).await.1["username"], "alice");
    // Used once.
    assert_eq!(
        poll(&app, &client, &device_code).await.1["error"],
        "invalid_grant"
    );

    // Denied.
    let start = device_start(&app, &client).await;
    let res = b
        .post(
            &app.url("/oauth/device/confirm"),
            &[
                ("authenticity_token", &csrf),
                ("user_code", start["user_code"].as_str().unwrap()),
                ("decision", "deny"),
            ],
        )
        .await;
    assert!(res.text().await.unwrap().contains("Request denied"));
    assert_eq!(
        poll(&app, &client, start["device_code"].as_str().unwrap())
            .await
            .1["error"],
        "access_denied"
    );

    // Expired: an old request is refused and removed.
    let start = device_start(&app, &client).await;
    let digest = latchkey_core::secret::digest(start["device_code"].as_str().unwrap());
    let grant = app
        .services
        .store()
        .find_device_grant(&digest)
        .await
        .unwrap()
        .unwrap();
    app.services
        .store()
        .delete_device_grant(grant.id)
        .await
        .unwrap();
    app.services
        .store()
        .insert_device_grant(latchkey_core::oauth::NewDeviceGrant {
            application_id: grant.application_id,
            device_code_digest: digest.clone(),
            user_code: grant.user_code.clone(),
            scopes: grant.scopes.clone(),
            created_at: 0,
            expires_at: 1,
        })
        .await
        .unwrap();
    assert_eq!(
        poll(&app, &client, start["device_code"].as_str().unwrap())
            .await
            .1["error"],
        "expired_token"
    );
    assert!(app
        .services
        .store()
        .find_device_grant(&digest)
        .await
        .unwrap()
        .is_none());
}

async fn register_client(app: &TestApp, body: Value) -> (u16, Value) {
    status_json(
        app.client
            .post(app.url("/oauth/register"))
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await
}

#[tokio::test]
async fn dynamic_registration_is_off_by_default() {
    let app = TestApp::spawn().await;
    let (status, body) =
        register_client(&app, json!({"client_name": "x", "redirect_uris": [CB]})).await;
    assert_eq!((status, body), (404, json!({"error": "404 Not Found"})));
}

#[tokio::test]
async fn dynamic_registration_and_management() {
    let app = TestApp::spawn_with(Options {
        dynamic_registration: RegistrationMode::Standard,
        ..Default::default()
    })
    .await;
    let (_, doc) = get_json(&app, "/.well-known/openid-configuration").await;
    assert_eq!(doc["registration_endpoint"], app.url("/oauth/register"));
    let (status, reg) = register_client(&app, json!({"client_name": "CLI", "redirect_uris": [CB, "http://127.0.0.1/cb"], "scope": "read_user", "grant_types": ["authorization_code", "refresh_token", "client_credentials"]})).await;
    assert_eq!(status, 201, "{reg}");
    assert_eq!(reg["client_name"], "CLI");
    assert_eq!(reg["redirect_uris"], json!([CB, "http://127.0.0.1/cb"]));
    assert_eq!(reg["token_endpoint_auth_method"], "client_secret_basic");
    assert_eq!(reg["client_secret_expires_at"], 0);
    let id = reg["client_id"].as_str().unwrap();
    let secret = reg["client_secret"].as_str().unwrap();
    let token = reg["registration_access_token"].as_str().unwrap();
    assert_eq!(
        reg["registration_client_uri"],
        app.url(&format!("/oauth/register/{id}"))
    );
    let (status, _, _) = token_request(
        &app,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", id),
            ("client_secret", secret),
            ("scope", "read_user"),
        ],
    )
    .await;
    assert_eq!(status, 200);

    let uri = app.url(&format!("/oauth/register/{id}"));
    let (status, read) =
        status_json(app.client.get(&uri).bearer(token).send().await.unwrap()).await;
    assert_eq!((status, read["client_id"].as_str()), (200, Some(id)));
    assert!(read.get("client_secret").is_none() && read.get("registration_access_token").is_none());
    let (status, body) =
        status_json(app.client.get(&uri).bearer("wrong").send().await.unwrap()).await;
    assert_eq!(
        (status, body["error"].clone()),
        (401, json!("invalid_token"))
    );
    let (status, updated) = status_json(
        app.client
            .put(&uri)
            .bearer(token)
            .json(&json!({"client_name": "CLI 2", "redirect_uris": [CB], "scope": "read_user"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (
            status,
            updated["client_name"].clone(),
            updated["redirect_uris"].clone()
        ),
        (200, json!("CLI 2"), json!([CB]))
    );
    // An admin sees it; an admin-created application cannot be managed this way.
    let admin_app = register(&app, true, "read_user").await;
    let res = app
        .client
        .get(app.url(&format!("/oauth/register/{}", admin_app.client_id)))
        .bearer(token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let res = app.client.delete(&uri).bearer(token).send().await.unwrap();
    assert_eq!(res.status(), 204);
    let (status, _, _) = token_request(
        &app,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", id),
            ("client_secret", secret),
            ("scope", "read_user"),
        ],
    )
    .await;
    assert_eq!(status, 401);

    // Public clients; bad metadata.
    let (status, public) = register_client(&app, json!({"client_name": "SPA", "redirect_uris": [CB], "token_endpoint_auth_method": "none", "scope": "read_user"})).await;
    assert_eq!(status, 201);
    assert!(public.get("client_secret").is_none());
    assert_eq!(public["token_endpoint_auth_method"], "none");
    let cases = [
        (json!({"redirect_uris": [CB]}), "invalid_client_metadata"),
        (
            json!({"client_name": "x".repeat(200), "redirect_uris": [CB]}),
            "invalid_client_metadata",
        ),
        (
            json!({"client_name": "x", "redirect_uris": []}),
            "invalid_redirect_uri",
        ),
        (
            json!({"client_name": "x", "redirect_uris": ["javascript://x"]}),
            "invalid_redirect_uri",
        ),
        (
            json!({"client_name": "x", "redirect_uris": [CB], "grant_types": ["implicit"]}),
            "invalid_client_metadata",
        ),
        (
            json!({"client_name": "x", "redirect_uris": [CB], "scope": "bogus"}),
            "invalid_client_metadata",
        ),
    ];
    for (body, error) in cases {
        let (status, got) = register_client(&app, body.clone()).await;
        assert_eq!(
            (status, got["error"].as_str().unwrap()),
            (400, error),
            "{body}"
        );
    }
    // Rate limit per address: 20 an hour (2 used above).
    let mut last = 0;
    for i in 0..20 {
        last = register_client(
            &app,
            json!({"client_name": format!("n{i}"), "redirect_uris": [CB], "scope": "read_user"}),
        )
        .await
        .0;
    }
    assert_eq!(last, 429);
}

#[tokio::test]
async fn gitlab_mcp_flavour_of_registration() {
    let app = TestApp::spawn_with(Options {
        dynamic_registration: RegistrationMode::GitLabMcp,
        ..Default::default()
    })
    .await;
    let (status, reg) = register_client(&app, json!({"client_name": "Agent", "redirect_uris": [CB], "scope": "api", "token_endpoint_auth_method": "client_secret_basic"})).await;
    assert_eq!(status, 201, "{reg}");
    assert_eq!(reg["client_name"], "[Unverified Dynamic Application] Agent");
    assert_eq!(reg["scope"], "mcp");
    assert_eq!(reg["token_endpoint_auth_method"], "none");
    assert_eq!(reg["require_pkce"], true);
    assert!(reg.get("client_secret").is_none());
    // PKCE is required of it.
    user_with_password(&app, "alice").await;
    let mut b = Browser::new();
    b.sign_in(&app, "alice", PASSWORD).await;
    let q = format!(
        "client_id={}&redirect_uri={}&response_type=code&scope=mcp",
        reg["client_id"].as_str().unwrap(),
        urlencode(CB)
    );
    let res = b.authorize(&app, &q, "authorize").await;
    assert_eq!(
        query_param(&location(&res), "error").as_deref(),
        Some("invalid_request")
    );
}
