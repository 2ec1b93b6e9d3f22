//! Regression tests for the independent security audit's High and Medium
//! findings (issue 11), each on the backend the suite runs on.

use serde_json::{json, Value};

use crate::helpers::{in_days, status_json, Options, RequestAs, TestApp};
use crate::oauth::{
    api_user, code_for, exchange, hidden, location, query_param, register, token_request,
    urlencode, user_with_password, Browser, CB, CHALLENGE, PASSWORD,
};

/// `n` distinct `k<i>[]=1` pairs: the shape that was quadratic.
fn bracket_pairs(n: usize) -> String {
    (0..n)
        .map(|i| format!("k{i}[]=1"))
        .collect::<Vec<_>>()
        .join("&")
}

async fn post_raw(
    app: &TestApp,
    path: &str,
    content_type: &str,
    body: String,
) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .header("Content-Type", content_type)
        .private_token(&app.root_token)
        .body(body)
        .send()
        .await
        .unwrap()
}

// --- 1. parameters: linear, and at most 1,000 ----------------------------------------

#[tokio::test]
async fn too_many_parameters_are_refused_in_each_dialect() {
    let app = TestApp::spawn().await;
    let form = "application/x-www-form-urlencoded";

    // The audit's body: 40,000 distinct array keys, before authentication.
    let res = post_raw(&app, "/oauth/revoke", form, bracket_pairs(40_000)).await;
    let (status, body) = status_json(res).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_request", "{body}");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("too many parameters"),
        "{body}"
    );

    // GitLab's dialect under /api/v4.
    let res = post_raw(&app, "/api/v4/applications", form, bracket_pairs(1001)).await;
    let (status, body) = status_json(res).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body["message"],
        "400 Bad request - too many parameters (at most 1000)"
    );

    // A JSON body counts every value, nested ones too.
    let many: serde_json::Map<String, Value> =
        (0..1001).map(|i| (format!("k{i}"), json!(1))).collect();
    let res = post_raw(
        &app,
        "/api/v4/applications",
        "application/json",
        Value::Object(many).to_string(),
    )
    .await;
    assert_eq!(res.status(), 400);
    let nested = json!({"a": (0..1001).collect::<Vec<_>>()});
    let res = post_raw(
        &app,
        "/api/v4/applications",
        "application/json",
        nested.to_string(),
    )
    .await;
    assert_eq!(res.status(), 400);

    // The query string counts too, and a browser gets a page.
    let res = app
        .client
        .get(app.url(&format!("/users/sign_in?{}", bracket_pairs(1001))))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert!(res
        .headers()
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("text/html"));

    // Multipart fields count like the rest.
    let mut multipart = reqwest::multipart::Form::new();
    for i in 0..1001 {
        multipart = multipart.text(format!("k{i}"), "1");
    }
    let res = app
        .client
        .post(app.url("/oauth/token"))
        .multipart(multipart)
        .send()
        .await
        .unwrap();
    let (status, body) = status_json(res).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );
}

#[tokio::test]
async fn a_thousand_parameters_and_long_arrays_still_work() {
    let app = TestApp::spawn().await;
    // 999 values of one array and a name: 1,000 parameters, accepted.
    let mut body = (0..996)
        .map(|i| format!("pad[]={i}"))
        .collect::<Vec<_>>()
        .join("&");
    body.push_str("&name=Arrays&redirect_uri=https%3A%2F%2Fa.example%2Fcb&scopes=api");
    let res = post_raw(
        &app,
        "/api/v4/applications",
        "application/x-www-form-urlencoded",
        body,
    )
    .await;
    let (status, created) = status_json(res).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["application_name"], "Arrays");
}

#[tokio::test]
async fn bodies_in_other_charsets_get_415() {
    let app = TestApp::spawn().await;
    let res = post_raw(
        &app,
        "/api/v4/applications",
        "application/x-www-form-urlencoded; charset=ISO-8859-1",
        "name=App&redirect_uri=https%3A%2F%2Fa.example%2Fcb&scopes=api".to_owned(),
    )
    .await;
    let (status, body) = status_json(res).await;
    assert_eq!(status, 415, "{body}");
    let res = post_raw(
        &app,
        "/oauth/token",
        "application/json; charset=utf-16",
        "{}".to_owned(),
    )
    .await;
    let (status, body) = status_json(res).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (415, Some("invalid_request"))
    );
    // UTF-8 and US-ASCII, in any case, are fine.
    for charset in ["UTF-8", "utf-8", "us-ascii"] {
        let res = post_raw(
            &app,
            "/api/v4/applications",
            &format!("application/x-www-form-urlencoded; charset={charset}"),
            format!("name=App&redirect_uri=https%3A%2F%2Fa.example%2Fcb&scopes=api&x={charset}"),
        )
        .await;
        assert_eq!(res.status(), 201, "{charset}");
    }
}

// --- 2. scopes: at most 100, each at most 255 bytes ----------------------------------

#[tokio::test]
async fn scope_lists_are_capped() {
    let app = TestApp::spawn().await;
    let many: String = (0..101)
        .map(|i| format!("user:{i}"))
        .collect::<Vec<_>>()
        .join(" ");
    for path in ["/api/v4/applications", "/api/v4/user/applications"] {
        let res = app
            .client
            .post(app.url(path))
            .private_token(&app.root_token)
            .form(&[("name", "Many"), ("redirect_uri", CB), ("scopes", &many)])
            .send()
            .await
            .unwrap();
        let (status, body) = status_json(res).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(
            body,
            json!({"message": {"scopes": ["is too long (maximum is 100 scopes)"]}})
        );
    }
    let long = format!("user:{}", "x".repeat(251));
    let res = app
        .create_app_form(
            &app.root_token,
            &[("name", "Long"), ("redirect_uri", CB), ("scopes", &long)],
        )
        .await;
    let (status, body) = status_json(res).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["message"]["scopes"][0]
        .as_str()
        .unwrap()
        .contains("255"));
    // Exactly 100, and a 255-byte scope, are fine.
    let hundred: String = (0..100)
        .map(|i| format!("user:{i}"))
        .collect::<Vec<_>>()
        .join(" ");
    let res = app
        .create_app_form(
            &app.root_token,
            &[
                ("name", "Hundred"),
                ("redirect_uri", CB),
                ("scopes", &hundred),
            ],
        )
        .await;
    assert_eq!(res.status(), 201);
    let res = app
        .create_app_form(
            &app.root_token,
            &[
                ("name", "Edge"),
                ("redirect_uri", CB),
                ("scopes", &format!("user:{}", "x".repeat(250))),
            ],
        )
        .await;
    assert_eq!(res.status(), 201);

    // Tokens.
    let scopes: Vec<String> = (0..101).map(|i| format!("user:{i}")).collect();
    let res = app
        .client
        .post(app.url(&format!(
            "/api/v4/users/{}/personal_access_tokens",
            app.root_id
        )))
        .private_token(&app.root_token)
        .json(&json!({"name": "many", "scopes": scopes}))
        .send()
        .await
        .unwrap();
    let (status, body) = status_json(res).await;
    assert_eq!(status, 400, "{body}");

    // Requests: the authorization endpoint and the token endpoint.
    let client = register(&app, true, "api read_user user:*").await;
    user_with_password(&app, "alice").await;
    let mut b = Browser::new();
    b.sign_in(&app, "alice", PASSWORD).await;
    let res = b
        .get(&app.url(&format!(
            "/oauth/authorize?client_id={}&redirect_uri={}&response_type=code&scope={}",
            client.client_id,
            urlencode(CB),
            urlencode(&many)
        )))
        .await;
    assert_eq!(res.status(), 302);
    assert_eq!(
        query_param(&location(&res), "error").as_deref(),
        Some("invalid_scope")
    );
    let (status, body, _) = token_request(
        &app,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &client.client_id),
            ("client_secret", &client.secret),
            ("scope", &many),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_scope"))
    );
}

// --- 3. rotating personal access tokens --------------------------------------------------

async fn create_token(app: &TestApp, user_id: i64, scopes: &[&str]) -> (i64, String) {
    let res = app
        .client
        .post(app.url(&format!("/api/v4/users/{user_id}/personal_access_tokens")))
        .private_token(&app.root_token)
        .json(&json!({"name": "t", "scopes": scopes}))
        .send()
        .await
        .unwrap();
    let (status, body) = status_json(res).await;
    assert_eq!(status, 201, "{body}");
    (
        body["id"].as_i64().unwrap(),
        body["token"].as_str().unwrap().to_owned(),
    )
}

async fn rotate(app: &TestApp, with: &str, id: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let res = app
        .client
        .post(app.url(&format!("/api/v4/personal_access_tokens/{id}/rotate")))
        .private_token(with)
        .form(form)
        .send()
        .await
        .unwrap();
    status_json(res).await
}

#[tokio::test]
async fn rotation_never_hands_out_more_than_the_caller_holds() {
    let app = TestApp::spawn().await;
    let (admin_id, _) = app.user_with_token("admin2", true, "read_user").await;
    let (strong_id, _) = create_token(&app, admin_id, &["api", "sudo", "admin_mode"]).await;
    let (_, weak) = create_token(&app, admin_id, &["api"]).await;

    // An api token may not rotate the user's stronger token.
    let (status, body) = rotate(&app, &weak, &strong_id.to_string(), &[]).await;
    assert_eq!(
        (status, body.clone()),
        (403, json!({"message": "403 Forbidden"}))
    );
    // ... and the strong token is untouched.
    let (status, _) = rotate(&app, &app.root_token, &strong_id.to_string(), &[]).await;
    assert_eq!(status, 200);

    // A token whose scopes are covered may be rotated, and itself always.
    let (api_id, _) = create_token(&app, admin_id, &["api"]).await;
    let (status, body) = rotate(&app, &weak, &api_id.to_string(), &[]).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = rotate(&app, &weak, "self", &[]).await;
    assert_eq!(status, 200, "{body}");
    // Without expires_at: one week.
    assert_eq!(body["expires_at"], in_days(7));
}

#[tokio::test]
async fn oauth_access_tokens_cannot_rotate_personal_access_tokens() {
    let app = TestApp::spawn().await;
    let client = register(&app, true, "api").await;
    let code = {
        // code_for creates alice with a password and signs her in.
        let query = format!(
            "client_id={}&redirect_uri={}&response_type=code&state=s&scope=api&code_challenge={CHALLENGE}&code_challenge_method=S256",
            client.client_id,
            urlencode(CB)
        );
        user_with_password(&app, "alice").await;
        let mut b = Browser::new();
        b.sign_in(&app, "alice", PASSWORD).await;
        let res = b.authorize(&app, &query, "authorize").await;
        query_param(&location(&res), "code").unwrap()
    };
    let (status, tokens) = exchange(&app, &client, &code).await;
    assert_eq!(status, 200, "{tokens}");
    let access = tokens["access_token"].as_str().unwrap();
    let alice = app
        .services
        .find_user_by_username("alice")
        .await
        .unwrap()
        .unwrap();
    let (pat_id, _) = create_token(&app, alice.id, &["api"]).await;
    let res = app
        .client
        .post(app.url(&format!("/api/v4/personal_access_tokens/{pat_id}/rotate")))
        .bearer(access)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
}

#[tokio::test]
async fn token_lifetimes_are_capped() {
    let app = TestApp::spawn().await;
    let (alice_id, _) = app.user_with_token("alice", false, "read_api").await;
    let url = app.url(&format!("/api/v4/users/{alice_id}/personal_access_tokens"));
    let res = app
        .client
        .post(&url)
        .private_token(&app.root_token)
        .json(&json!({"name": "far", "scopes": ["api"], "expires_at": in_days(366)}))
        .send()
        .await
        .unwrap();
    let (status, body) = status_json(res).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body,
        json!({"message": {"expires_at": [format!("must be before {}", in_days(365))]}})
    );
    // 365 days is the limit, and no date means that limit (as GitLab).
    let res = app
        .client
        .post(&url)
        .private_token(&app.root_token)
        .json(&json!({"name": "edge", "scopes": ["api"], "expires_at": in_days(365)}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let res = app
        .client
        .post(&url)
        .private_token(&app.root_token)
        .json(&json!({"name": "default", "scopes": ["api"]}))
        .send()
        .await
        .unwrap();
    let (status, body) = status_json(res).await;
    assert_eq!(
        (status, body["expires_at"].clone()),
        (201, json!(in_days(365)))
    );
    let id = body["id"].as_i64().unwrap().to_string();
    // Rotation: the same cap.
    let far = in_days(400);
    let (status, body) = rotate(&app, &app.root_token, &id, &[("expires_at", &far)]).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["message"]["expires_at"].is_array(), "{body}");
}

// --- 4. blocked users get nothing anywhere -----------------------------------------------

#[tokio::test]
async fn blocked_users_are_refused_by_every_oauth_endpoint() {
    let app = TestApp::spawn().await;
    let client = register(&app, true, "read_user openid").await;
    let code = code_for(&app, &client, "alice").await;
    let (status, tokens) = exchange(&app, &client, &code).await;
    assert_eq!(status, 200, "{tokens}");
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    // A second code, issued before the block and not yet exchanged.
    let mut b = Browser::new();
    b.sign_in(&app, "alice", PASSWORD).await;
    let query = format!(
        "client_id={}&redirect_uri={}&response_type=code&scope=read_user&code_challenge={CHALLENGE}&code_challenge_method=S256",
        client.client_id,
        urlencode(CB)
    );
    let res = b.authorize(&app, &query, "authorize").await;
    let pending_code = query_param(&location(&res), "code").unwrap();

    let alice = app
        .services
        .find_user_by_username("alice")
        .await
        .unwrap()
        .unwrap();
    let res = app
        .client
        .post(app.url(&format!("/api/v4/users/{}/block", alice.id)))
        .private_token(&app.root_token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);

    for path in ["/oauth/userinfo", "/oauth/token/info"] {
        let res = app
            .client
            .get(app.url(path))
            .bearer(&access)
            .send()
            .await
            .unwrap();
        let (status, body) = status_json(res).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (401, Some("invalid_token")),
            "{path}"
        );
    }
    let res = app
        .client
        .post(app.url("/oauth/introspect"))
        .basic_auth(&client.client_id, Some(&client.secret))
        .form(&[("token", access.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(status_json(res).await.1, json!({"active": false}));
    let (status, _) = api_user(&app, &access).await;
    assert_eq!(status, 403);

    let (status, body, _) = token_request(
        &app,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("client_id", &client.client_id),
            ("client_secret", &client.secret),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let (status, body) = exchange(&app, &client, &pending_code).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
}

#[tokio::test]
async fn a_device_grant_approved_before_a_block_is_refused() {
    let app = TestApp::spawn().await;
    let client = register(&app, true, "read_user").await;
    let start = crate::oidc::device_start_with(&app, &client, "read_user").await;
    user_with_password(&app, "alice").await;
    let alice = app
        .services
        .find_user_by_username("alice")
        .await
        .unwrap()
        .unwrap();
    assert!(app
        .services
        .decide_device_request(
            &latchkey_core::context::Context::system(),
            start["user_code"].as_str().unwrap(),
            &alice,
            true,
            0,
        )
        .await
        .unwrap());
    app.services
        .set_user_state(
            &latchkey_core::context::Context::system(),
            alice.id,
            latchkey_core::user::UserState::Blocked,
        )
        .await
        .unwrap();
    let (status, body, _) = token_request(
        &app,
        &[
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("device_code", start["device_code"].as_str().unwrap()),
            ("client_id", &client.client_id),
            ("client_secret", &client.secret),
        ],
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "access_denied", "{body}");
    assert!(body.get("access_token").is_none());
}

// --- 5. CSRF: with a session, only the session's token ---------------------------------

#[tokio::test]
async fn a_planted_csrf_cookie_does_not_pass_for_a_signed_in_browser() {
    let app = TestApp::spawn().await;
    let client = register(&app, true, "read_user").await;
    user_with_password(&app, "alice").await;
    let mut b = Browser::new();
    assert_eq!(b.sign_in(&app, "alice", PASSWORD).await.status(), 302);
    // The attacker plants a cookie token and submits forms with it.
    b.set_cookie("_latchkey_csrf", "planted-by-an-attacker");
    let consent = [
        ("authenticity_token", "planted-by-an-attacker"),
        ("client_id", client.client_id.as_str()),
        ("redirect_uri", CB),
        ("response_type", "code"),
        ("scope", "read_user"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
        ("decision", "authorize"),
    ];
    let res = b.post(&app.url("/oauth/authorize"), &consent).await;
    assert_eq!(res.status(), 422);
    let res = b
        .post(
            &app.url("/users/sign_out"),
            &[("authenticity_token", "planted-by-an-attacker")],
        )
        .await;
    assert_eq!(res.status(), 422);
    let res = b
        .post(
            &app.url("/oauth/device/confirm"),
            &[
                ("authenticity_token", "planted-by-an-attacker"),
                ("user_code", "ABCD1234"),
                ("decision", "authorize"),
            ],
        )
        .await;
    assert_eq!(res.status(), 422);
    // Still signed in; the page's own token signs out.
    let html = b.get(&app.url("/")).await.text().await.unwrap();
    let token = hidden(&html, "authenticity_token").unwrap();
    let res = b
        .post(
            &app.url("/users/sign_out"),
            &[("authenticity_token", &token)],
        )
        .await;
    assert_eq!(res.status(), 302);
}

#[tokio::test]
async fn cookies_get_the_host_prefix_behind_https() {
    let app = TestApp::spawn_with(Options {
        external_url: Some("https://id.example"),
        ..Default::default()
    })
    .await;
    let res = app
        .client
        .get(app.url("/users/sign_in"))
        .send()
        .await
        .unwrap();
    let set = res
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(set.starts_with("__Host-latchkey_csrf="), "{set}");
    assert!(set.contains("; Secure") && set.contains("Path=/"), "{set}");
    assert!(!set.contains("Domain"), "{set}");
}

// --- 6. private emails ----------------------------------------------------------------------

#[tokio::test]
async fn only_administrators_find_users_by_email() {
    let app = TestApp::spawn().await;
    let (_, bob) = app.user_with_token("bob", false, "read_api").await;
    app.user_with_token("carol", false, "read_api").await;
    let search = |token: String, q: &'static str| {
        let app = &app;
        async move {
            let res = app
                .client
                .get(app.url(&format!("/api/v4/users?search={}", urlencode(q))))
                .private_token(token)
                .send()
                .await
                .unwrap();
            let (status, body) = status_json(res).await;
            assert_eq!(status, 200, "{body}");
            body.as_array()
                .unwrap()
                .iter()
                .map(|u| u["username"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert!(search(bob.clone(), "carol@example.com").await.is_empty());
    assert!(search(bob.clone(), "@example").await.is_empty());
    assert_eq!(search(bob, "caro").await, ["carol"]);
    assert_eq!(
        search(app.root_token.clone(), "carol@example.com").await,
        ["carol"]
    );
}

// --- 7. administrators cannot lock the instance out --------------------------------------

#[tokio::test]
async fn administrators_cannot_block_or_delete_themselves() {
    let app = TestApp::spawn().await;
    let call = |method: reqwest::Method, path: String, token: String| {
        let app = &app;
        async move {
            let res = app
                .client
                .request(method, app.url(&path))
                .private_token(token)
                .send()
                .await
                .unwrap();
            status_json(res).await
        }
    };
    let root = app.root_id;
    let (status, body) = call(
        reqwest::Method::POST,
        format!("/api/v4/users/{root}/block"),
        app.root_token.clone(),
    )
    .await;
    assert_eq!(
        (status, body),
        (
            403,
            json!({"message": "403 Forbidden - The API initiating user cannot be blocked by the API"})
        )
    );
    let (status, _) = call(
        reqwest::Method::DELETE,
        format!("/api/v4/users/{root}"),
        app.root_token.clone(),
    )
    .await;
    assert_eq!(status, 403);
    // The last active administrator cannot demote itself either.
    let res = app
        .client
        .put(app.url(&format!("/api/v4/users/{root}")))
        .private_token(&app.root_token)
        .form(&[("admin", "false")])
        .send()
        .await
        .unwrap();
    let (status, body) = status_json(res).await;
    assert_eq!(status, 403, "{body}");
    // Root still works.
    let (status, _) = call(
        reqwest::Method::GET,
        "/api/v4/user".to_owned(),
        app.root_token.clone(),
    )
    .await;
    assert_eq!(status, 200);

    // With a second administrator, one may block the other, but never the
    // last one left, whichever path it takes.
    let (admin2, admin2_token) = app.user_with_token("admin2", true, "api").await;
    let (status, _) = call(
        reqwest::Method::POST,
        format!("/api/v4/users/{admin2}/block"),
        app.root_token.clone(),
    )
    .await;
    assert_eq!(status, 201);
    let err = app
        .services
        .set_user_state(
            &latchkey_core::context::Context::system(),
            root,
            latchkey_core::user::UserState::Blocked,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, latchkey_core::service::ServiceError::Forbidden(_)),
        "{err:?}"
    );
    assert!(app
        .services
        .delete_user(&latchkey_core::context::Context::system(), root, false)
        .await
        .is_err());
    // Unblocked, the second administrator may demote root, and root may then
    // not demote admin2.
    app.services
        .set_user_state(
            &latchkey_core::context::Context::system(),
            admin2,
            latchkey_core::user::UserState::Active,
        )
        .await
        .unwrap();
    let res = app
        .client
        .put(app.url(&format!("/api/v4/users/{root}")))
        .private_token(&admin2_token)
        .form(&[("admin", "false")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = app
        .client
        .put(app.url(&format!("/api/v4/users/{admin2}")))
        .private_token(&admin2_token)
        .form(&[("admin", "false")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
}

#[tokio::test]
async fn overlong_redirect_uris_are_refused() {
    let app = TestApp::spawn().await;
    let long = format!("https://a.example/{}", "x".repeat(1990));
    let res = app
        .create_app_form(
            &app.root_token,
            &[("name", "Long"), ("redirect_uri", &long), ("scopes", "api")],
        )
        .await;
    let (status, body) = status_json(res).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body,
        json!({"message": {"redirect_uri": ["is too long (maximum is 2000 characters per URI)"]}})
    );
    let edge = format!("https://a.example/{}", "x".repeat(2000 - 18));
    let res = app
        .create_app_form(
            &app.root_token,
            &[("name", "Edge"), ("redirect_uri", &edge), ("scopes", "api")],
        )
        .await;
    assert_eq!(res.status(), 201);
}
