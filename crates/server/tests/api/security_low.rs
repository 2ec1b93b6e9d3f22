//! Regression tests for the security audit's Low findings (issue 12), and
//! OpenID Connect's `prompt`, `max_age` and RFC 9207's `iss`.

use base64::Engine as _;
use serde_json::{json, Value};

use crate::helpers::{status_json, Options, RequestAs, TestApp};
use crate::oauth::{
    exchange, hidden, location, query_param, register, token_request, urlencode,
    user_with_password, Browser, Client2, CB, CHALLENGE, PASSWORD,
};

fn claims(id_token: &str) -> Value {
    let payload = id_token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

fn authorize_query(client: &Client2, scope: &str, extra: &str) -> String {
    format!(
        "client_id={}&redirect_uri={}&response_type=code&state=st&scope={}&code_challenge={CHALLENGE}&code_challenge_method=S256{extra}",
        client.client_id,
        urlencode(CB),
        urlencode(scope)
    )
}

async fn refresh(
    app: &TestApp,
    client: &Client2,
    token: &str,
    scope: Option<&str>,
) -> (u16, Value) {
    let mut form = vec![
        ("grant_type", "refresh_token"),
        ("refresh_token", token),
        ("client_id", client.client_id.as_str()),
        ("client_secret", client.secret.as_str()),
    ];
    if let Some(s) = scope {
        form.push(("scope", s));
    }
    let (s, b, _) = token_request(app, &form).await;
    (s, b)
}

async fn token_info(app: &TestApp, access: &str) -> u16 {
    app.client
        .get(app.url("/oauth/token/info"))
        .bearer(access)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Sign `username` in (a fresh user) and authorize `scope` for `client`.
async fn tokens_for(app: &TestApp, client: &Client2, username: &str, scope: &str) -> Value {
    user_with_password(app, username).await;
    let mut b = Browser::new();
    assert_eq!(b.sign_in(app, username, PASSWORD).await.status(), 302);
    let res = b
        .authorize(app, &authorize_query(client, scope, ""), "authorize")
        .await;
    let code = query_param(&location(&res), "code").unwrap();
    let (status, tokens) = exchange(app, client, &code).await;
    assert_eq!(status, 200, "{tokens}");
    tokens
}

// --- 8. narrowing an application narrows its refresh chains ------------------------------

#[tokio::test]
async fn refresh_yields_at_most_the_applications_scopes_now() {
    let app = TestApp::spawn().await;
    let client = register(&app, true, "api read_user openid").await;
    let tokens = tokens_for(&app, &client, "alice", "api read_user").await;
    let res = app
        .client
        .put(app.url(&format!("/api/v4/applications/{}", client.id)))
        .private_token(&app.root_token)
        .form(&[("scopes", "read_user openid")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let (status, body) = refresh(
        &app,
        &client,
        tokens["refresh_token"].as_str().unwrap(),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["scope"], "read_user");
    // Asking for a scope the application lost is refused.
    let (status, body) = refresh(
        &app,
        &client,
        body["refresh_token"].as_str().unwrap(),
        Some("api"),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_scope"))
    );
}

// --- 9. revoking the current refresh token revokes the family ---------------------------

#[tokio::test]
async fn revoking_a_refresh_token_kills_the_previous_access_token_too() {
    let app = TestApp::spawn().await;
    let client = register(&app, true, "read_user").await;
    let first = tokens_for(&app, &client, "alice", "read_user").await;
    let (status, second) = refresh(
        &app,
        &client,
        first["refresh_token"].as_str().unwrap(),
        None,
    )
    .await;
    assert_eq!(status, 200, "{second}");
    // Until the new access token is used, the previous one still works.
    assert_eq!(
        token_info(&app, first["access_token"].as_str().unwrap()).await,
        200
    );
    let res = app
        .client
        .post(app.url("/oauth/revoke"))
        .basic_auth(&client.client_id, Some(&client.secret))
        .form(&[("token", second["refresh_token"].as_str().unwrap())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        token_info(&app, first["access_token"].as_str().unwrap()).await,
        401
    );
    assert_eq!(
        token_info(&app, second["access_token"].as_str().unwrap()).await,
        401
    );
}

// --- 10. lockout is per account, whatever name is typed ----------------------------------

#[tokio::test]
async fn a_locked_account_stays_locked_by_email_too() {
    let app = TestApp::spawn().await;
    user_with_password(&app, "alice").await;
    for _ in 0..5 {
        let res = Browser::new()
            .sign_in(&app, "alice", "wrong password!")
            .await;
        assert_ne!(res.status(), 302);
    }
    // Locked, whatever name is typed; "locked" is said only to whoever typed
    // the public username (to someone who typed an email, it would say whose
    // email it is).
    let res = Browser::new().sign_in(&app, "alice", PASSWORD).await;
    assert_eq!(res.status(), 429);
    for login in ["alice@example.com", "ALICE@EXAMPLE.COM"] {
        let res = Browser::new().sign_in(&app, login, PASSWORD).await;
        assert_eq!(res.status(), 401, "{login}");
    }
    let (status, body, _) = {
        let client = register(&app, true, "api").await;
        token_request(
            &app,
            &[
                ("grant_type", "password"),
                ("username", "alice@example.com"),
                ("password", PASSWORD),
                ("client_id", &client.client_id),
                ("client_secret", &client.secret),
            ],
        )
        .await
    };
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    // Failures under the email count against the same account.
    user_with_password(&app, "bob").await;
    for i in 0..5 {
        let login = if i % 2 == 0 { "bob" } else { "bob@example.com" };
        Browser::new().sign_in(&app, login, "wrong password!").await;
    }
    let res = Browser::new().sign_in(&app, "bob", PASSWORD).await;
    assert_eq!(res.status(), 429);
}

// --- 11. dynamic registration: grant types and scopes -----------------------------------

async fn register_dynamic(app: &TestApp, body: Value) -> (u16, Value) {
    let res = app
        .client
        .post(app.url("/oauth/register"))
        .json(&body)
        .send()
        .await
        .unwrap();
    status_json(res).await
}

#[tokio::test]
async fn registered_grant_types_and_scopes_are_enforced() {
    let app = TestApp::spawn_with(Options {
        dynamic_registration: latchkey_core::registration::RegistrationMode::Standard,
        ..Default::default()
    })
    .await;
    let (status, reg) = register_dynamic(
        &app,
        json!({"client_name": "Code only", "redirect_uris": [CB], "grant_types": ["authorization_code"]}),
    )
    .await;
    assert_eq!(status, 201, "{reg}");
    // No scope named: openid, never the API.
    assert_eq!(reg["scope"], "openid");
    let id = reg["client_id"].as_str().unwrap();
    let secret = reg["client_secret"].as_str().unwrap();
    user_with_password(&app, "alice").await;
    for form in [
        vec![("grant_type", "client_credentials")],
        vec![
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", PASSWORD),
        ],
    ] {
        let mut form = form;
        form.push(("client_id", id));
        form.push(("client_secret", secret));
        let (status, body, _) = token_request(&app, &form).await;
        assert_eq!(
            body["error"], "unauthorized_client",
            "{form:?}: {status} {body}"
        );
    }
    // The device endpoint too.
    let res = app
        .client
        .post(app.url("/oauth/authorize_device"))
        .form(&[("client_id", id), ("client_secret", secret)])
        .send()
        .await
        .unwrap();
    assert_eq!(status_json(res).await.1["error"], "unauthorized_client");

    // Registrable scopes: openid profile email read_user by default.
    for scope in ["api", "admin_mode", "sudo", "openid read_user api"] {
        let (status, body) = register_dynamic(
            &app,
            json!({"client_name": "Greedy", "redirect_uris": [CB], "scope": scope}),
        )
        .await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_client_metadata")),
            "{scope}: {body}"
        );
    }
    let (status, body) = register_dynamic(
        &app,
        json!({"client_name": "Modest", "redirect_uris": [CB], "scope": "openid email read_user"}),
    )
    .await;
    assert_eq!(
        (status, body["scope"].as_str()),
        (201, Some("openid email read_user"))
    );
}

// --- 12. the consent page's CSP cannot be rewritten -------------------------------------

#[tokio::test]
async fn redirect_uri_hosts_cannot_inject_into_the_csp() {
    let app = TestApp::spawn().await;
    for uri in [
        "https://a.example;script-src*/cb",
        "https://a.example,*/cb",
        "https://*/cb",
        "https://a'b.example/cb",
    ] {
        let res = app
            .create_app_form(
                &app.root_token,
                &[
                    ("name", "Injector"),
                    ("redirect_uri", uri),
                    ("scopes", "api"),
                ],
            )
            .await;
        let (status, body) = status_json(res).await;
        assert_eq!(status, 400, "{uri}: {body}");
        assert!(body["message"]["redirect_uri"].is_array(), "{uri}: {body}");
    }
    // A good one is named exactly, from its parsed origin.
    let client = register(&app, true, "read_user").await;
    user_with_password(&app, "alice").await;
    let mut b = Browser::new();
    b.sign_in(&app, "alice", PASSWORD).await;
    let res = b
        .get(&app.url(&format!(
            "/oauth/authorize?{}",
            authorize_query(&client, "read_user", "")
        )))
        .await;
    assert_eq!(res.status(), 200);
    let csp = res.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("form-action 'self' https://client.example;"),
        "{csp}"
    );
}

// --- 13. no secrets in the query string ---------------------------------------------------

#[tokio::test]
async fn secrets_in_the_token_endpoints_query_are_refused() {
    let app = TestApp::spawn().await;
    let client = register(&app, true, "api").await;
    user_with_password(&app, "alice").await;
    for query in [
        format!("client_secret={}", client.secret),
        format!("password={}", urlencode(PASSWORD)),
    ] {
        let res = app
            .client
            .post(app.url(&format!("/oauth/token?{query}")))
            .form(&[
                ("grant_type", "password"),
                ("username", "alice"),
                ("password", PASSWORD),
                ("client_id", client.client_id.as_str()),
                ("client_secret", client.secret.as_str()),
            ])
            .send()
            .await
            .unwrap();
        let (status, body) = status_json(res).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_request")),
            "{body}"
        );
    }
    // In the body, the same request works.
    let (status, body, _) = token_request(
        &app,
        &[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", PASSWORD),
            ("client_id", &client.client_id),
            ("client_secret", &client.secret),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

// --- 14. prompt, max_age, iss ---------------------------------------------------------------

#[tokio::test]
async fn prompt_none_answers_without_a_page() {
    let app = TestApp::spawn().await;
    let client = register(&app, true, "read_user openid").await;
    let issuer = app.base.clone();
    // Signed out: login_required, with state and iss.
    let mut b = Browser::new();
    let res = b
        .get(&app.url(&format!(
            "/oauth/authorize?{}",
            authorize_query(&client, "openid", "&prompt=none")
        )))
        .await;
    assert_eq!(res.status(), 302);
    let loc = location(&res);
    assert!(loc.starts_with(CB), "{loc}");
    assert_eq!(
        query_param(&loc, "error").as_deref(),
        Some("login_required")
    );
    assert_eq!(query_param(&loc, "state").as_deref(), Some("st"));
    assert_eq!(query_param(&loc, "iss").as_deref(), Some(issuer.as_str()));

    // Signed in, an application that needs consent: consent_required.
    user_with_password(&app, "alice").await;
    b.sign_in(&app, "alice", PASSWORD).await;
    let res = b
        .get(&app.url(&format!(
            "/oauth/authorize?{}",
            authorize_query(&client, "openid", "&prompt=none")
        )))
        .await;
    assert_eq!(
        query_param(&location(&res), "error").as_deref(),
        Some("consent_required")
    );

    // A trusted application: a code, no page.
    app.client
        .put(app.url(&format!("/api/v4/applications/{}", client.id)))
        .private_token(&app.root_token)
        .form(&[("trusted", "true")])
        .send()
        .await
        .unwrap();
    let res = b
        .get(&app.url(&format!(
            "/oauth/authorize?{}",
            authorize_query(&client, "openid", "&prompt=none")
        )))
        .await;
    let loc = location(&res);
    assert!(query_param(&loc, "code").is_some(), "{loc}");
    assert_eq!(query_param(&loc, "iss").as_deref(), Some(issuer.as_str()));

    // prompt=none with anything else, or an unknown value: invalid_request.
    for prompt in ["none%20login", "sometimes"] {
        let res = b
            .get(&app.url(&format!(
                "/oauth/authorize?{}",
                authorize_query(&client, "openid", &format!("&prompt={prompt}"))
            )))
            .await;
        assert_eq!(
            query_param(&location(&res), "error").as_deref(),
            Some("invalid_request"),
            "{prompt}"
        );
    }
    // Discovery says iss is sent.
    let doc: Value = app
        .client
        .get(app.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["authorization_response_iss_parameter_supported"], true);
}

#[tokio::test]
async fn prompt_login_and_max_age_ask_for_a_fresh_sign_in() {
    let app = TestApp::spawn().await;
    let client = register(&app, true, "read_user openid").await;
    user_with_password(&app, "alice").await;
    let mut b = Browser::new();
    b.sign_in(&app, "alice", PASSWORD).await;
    for extra in ["&prompt=login", "&max_age=1"] {
        let first_session = b.session();
        tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
        let query = authorize_query(&client, "openid", extra);
        let res = b.get(&app.url(&format!("/oauth/authorize?{query}"))).await;
        assert_eq!(res.status(), 302, "{extra}");
        let loc = location(&res);
        assert!(loc.starts_with("/users/sign_in?"), "{extra}: {loc}");
        // The sign-in form is shown although a session exists.
        let page = b.get(&app.url(&loc)).await.text().await.unwrap();
        let token = hidden(&page, "authenticity_token").unwrap();
        let return_to = hidden(&page, "return_to").unwrap();
        assert!(
            !return_to.contains("prompt=login") && !return_to.contains("max_age"),
            "{return_to}"
        );
        let res = b
            .post(
                &app.url("/users/sign_in"),
                &[
                    ("authenticity_token", &token),
                    ("user[login]", "alice"),
                    ("user[password]", PASSWORD),
                    ("return_to", &return_to),
                ],
            )
            .await;
        assert_eq!(res.status(), 302);
        // A new session replaced the old one.
        assert_ne!(b.session(), first_session);
        let res = b
            .authorize(
                &app,
                &return_to.replacen("/oauth/authorize?", "", 1),
                "authorize",
            )
            .await;
        let code = query_param(&location(&res), "code").unwrap();
        let (status, tokens) = exchange(&app, &client, &code).await;
        assert_eq!(status, 200, "{tokens}");
        let auth_time = claims(tokens["id_token"].as_str().unwrap())["auth_time"]
            .as_i64()
            .unwrap();
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        assert!(
            now - auth_time <= 1,
            "{extra}: a fresh auth_time {auth_time}, now {now}"
        );
    }
    // A recent enough sign-in is not asked again.
    let query = authorize_query(&client, "openid", "&max_age=3600");
    let res = b.get(&app.url(&format!("/oauth/authorize?{query}"))).await;
    assert_eq!(res.status(), 200);
    // max_age must be a number.
    let query = authorize_query(&client, "openid", "&max_age=soon");
    let res = b.get(&app.url(&format!("/oauth/authorize?{query}"))).await;
    assert_eq!(
        query_param(&location(&res), "error").as_deref(),
        Some("invalid_request")
    );
}

// --- 15. auth_time after a refresh and in the device grant --------------------------------

#[tokio::test]
async fn auth_time_is_the_sign_in_not_the_refresh() {
    let app = TestApp::spawn().await;
    let client = register(&app, true, "read_user openid").await;
    let tokens = tokens_for(&app, &client, "alice", "openid read_user").await;
    let signed_in = claims(tokens["id_token"].as_str().unwrap())["auth_time"].clone();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (status, first) = refresh(
        &app,
        &client,
        tokens["refresh_token"].as_str().unwrap(),
        None,
    )
    .await;
    assert_eq!(status, 200, "{first}");
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (status, second) = refresh(
        &app,
        &client,
        first["refresh_token"].as_str().unwrap(),
        None,
    )
    .await;
    assert_eq!(status, 200, "{second}");
    for t in [&first, &second] {
        let c = claims(t["id_token"].as_str().unwrap());
        assert_eq!(c["auth_time"], signed_in, "{c}");
        assert!(c["iat"].as_i64().unwrap() > signed_in.as_i64().unwrap());
    }
}

#[tokio::test]
async fn the_device_grants_auth_time_is_the_approvers_sign_in() {
    let app = TestApp::spawn().await;
    let client = register(&app, true, "read_user openid").await;
    user_with_password(&app, "alice").await;
    let mut b = Browser::new();
    b.sign_in(&app, "alice", PASSWORD).await;
    let signed_in_at = time::OffsetDateTime::now_utc().unix_timestamp();
    let start = crate::oidc::device_start_with(&app, &client, "openid read_user").await;
    let user_code = start["user_code"].as_str().unwrap();
    let html = b.get(&app.url("/oauth/device")).await.text().await.unwrap();
    let csrf = hidden(&html, "authenticity_token").unwrap();
    let res = b
        .post(
            &app.url("/oauth/device/confirm"),
            &[
                ("authenticity_token", &csrf),
                ("user_code", user_code),
                ("decision", "authorize"),
            ],
        )
        .await;
    assert_eq!(res.status(), 200);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let (status, tokens, _) = token_request(
        &app,
        &[
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("device_code", start["device_code"].as_str().unwrap()),
            ("client_id", &client.client_id),
            ("client_secret", &client.secret),
        ],
    )
    .await;
    assert_eq!(status, 200, "{tokens}");
    let c = claims(tokens["id_token"].as_str().unwrap());
    let auth_time = c["auth_time"].as_i64().unwrap();
    assert!(
        (auth_time - signed_in_at).abs() <= 1,
        "{c}, signed in at {signed_in_at}"
    );
    assert!(c["iat"].as_i64().unwrap() >= auth_time + 2, "{c}");
}

// --- 19. a new password ends the user's sessions ---------------------------------------------

#[tokio::test]
async fn a_new_password_ends_the_users_sessions() {
    let app = TestApp::spawn().await;
    user_with_password(&app, "alice").await;
    let mut b = Browser::new();
    b.sign_in(&app, "alice", PASSWORD).await;
    let home = b.get(&app.url("/")).await.text().await.unwrap();
    assert!(home.contains("alice"), "{home}");
    let alice = app
        .services
        .find_user_by_username("alice")
        .await
        .unwrap()
        .unwrap();
    let res = app
        .client
        .put(app.url(&format!("/api/v4/users/{}", alice.id)))
        .private_token(&app.root_token)
        .form(&[("password", "a different battery staple")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let home = b.get(&app.url("/")).await.text().await.unwrap();
    assert!(!home.contains("alice"), "still signed in: {home}");
    // A name change alone ends nothing.
    let mut b = Browser::new();
    b.sign_in(&app, "alice", "a different battery staple").await;
    app.client
        .put(app.url(&format!("/api/v4/users/{}", alice.id)))
        .private_token(&app.root_token)
        .form(&[("name", "Alice L.")])
        .send()
        .await
        .unwrap();
    let home = b.get(&app.url("/")).await.text().await.unwrap();
    assert!(home.contains("alice"), "{home}");
}

// --- the independent review's follow-ups ------------------------------------------------

#[tokio::test]
async fn minting_privileged_tokens_needs_the_privilege() {
    let app = TestApp::spawn().await;
    let (admin_id, api_only) = app.user_with_token("admin2", true, "api").await;
    let url = app.url(&format!("/api/v4/users/{admin_id}/personal_access_tokens"));
    for scopes in [json!(["api", "sudo"]), json!(["admin_mode"])] {
        let res = app
            .client
            .post(&url)
            .private_token(&api_only)
            .json(&json!({"name": "escalate", "scopes": scopes}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 403, "{scopes}");
    }
    // Ordinary scopes are fine, and root (which has sudo) may grant sudo.
    let res = app
        .client
        .post(&url)
        .private_token(&api_only)
        .json(&json!({"name": "plain", "scopes": ["read_api", "self_rotate"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let res = app
        .client
        .post(&url)
        .private_token(&app.root_token)
        .json(&json!({"name": "sudo", "scopes": ["api", "sudo"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    // An administrator's OAuth access token mints nothing.
    let client = register(&app, true, "api").await;
    app.services
        .update_user(
            &latchkey_core::context::Context::system(),
            admin_id,
            &latchkey_core::user::UserChanges {
                password: Some(PASSWORD.into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let (status, tokens, _) = token_request(
        &app,
        &[
            ("grant_type", "password"),
            ("username", "admin2"),
            ("password", PASSWORD),
            ("client_id", &client.client_id),
            ("client_secret", &client.secret),
        ],
    )
    .await;
    assert_eq!(status, 200, "{tokens}");
    let res = app
        .client
        .post(&url)
        .bearer(tokens["access_token"].as_str().unwrap())
        .json(&json!({"name": "lasting", "scopes": ["api"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
}

#[tokio::test]
async fn no_endpoint_takes_client_secrets_from_the_query() {
    let app = TestApp::spawn().await;
    let client = register(&app, true, "api").await;
    let q = format!(
        "client_id={}&client_secret={}",
        client.client_id, client.secret
    );
    for path in [
        "/oauth/revoke",
        "/oauth/introspect",
        "/oauth/authorize_device",
    ] {
        let res = app
            .client
            .post(app.url(&format!("{path}?{q}")))
            .form(&[("token", "whatever")])
            .send()
            .await
            .unwrap();
        let (status, body) = status_json(res).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_request")),
            "{path}: {body}"
        );
    }
    let res = app
        .client
        .post(app.url("/oauth/token?refresh_token=abc"))
        .form(&[("grant_type", "refresh_token")])
        .send()
        .await
        .unwrap();
    assert_eq!(status_json(res).await.1["error"], "invalid_request");
}

#[tokio::test]
async fn a_planted_cookie_cannot_switch_a_signed_in_browsers_account() {
    let app = TestApp::spawn().await;
    user_with_password(&app, "alice").await;
    user_with_password(&app, "mallory").await;
    let mut b = Browser::new();
    b.sign_in(&app, "alice", PASSWORD).await;
    let before = b.session();
    b.set_cookie("_latchkey_csrf", "planted-by-an-attacker");
    let res = b
        .post(
            &app.url("/users/sign_in"),
            &[
                ("authenticity_token", "planted-by-an-attacker"),
                ("user[login]", "mallory"),
                ("user[password]", PASSWORD),
            ],
        )
        .await;
    assert_eq!(res.status(), 422);
    assert_eq!(b.session(), before);
}

#[tokio::test]
async fn absurdly_long_logins_are_just_wrong() {
    let app = TestApp::spawn().await;
    let login = "a".repeat(20_000);
    for _ in 0..2 {
        let res = Browser::new().sign_in(&app, &login, PASSWORD).await;
        assert_eq!(res.status(), 401);
    }
}
