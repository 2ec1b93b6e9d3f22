//! The browser's pages outside the OAuth flow (issue 24, first steps): a
//! user's profile at their `web_url`, and GitLab's HTML 404 for a browser
//! where the API and OAuth endpoints keep their JSON.

use serde_json::{json, Value};

use crate::helpers::{RequestAs, TestApp};

async fn page(app: &TestApp, path: &str) -> (u16, String, String) {
    let res = app
        .client
        .get(app.url(path))
        .header("accept", "text/html,application/xhtml+xml")
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let kind = res.headers()["content-type"].to_str().unwrap().to_owned();
    (status, kind, res.text().await.unwrap())
}

#[tokio::test]
async fn a_users_web_url_is_their_profile_page() {
    let app = TestApp::spawn().await;
    let (_, token) = app.user_with_token("alice", false, "api").await;
    // The web_url the API gives is the page.
    let me: Value = app
        .client
        .get(app.url("/api/v4/user"))
        .private_token(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let web_url = me["web_url"].as_str().unwrap();
    let path = web_url.strip_prefix(&app.base).unwrap();
    assert_eq!(path, "/alice");
    let (status, kind, html) = page(&app, path).await;
    assert_eq!(status, 200);
    assert!(kind.starts_with("text/html"), "{kind}");
    assert!(
        html.contains("<h1>alice</h1>") && html.contains("@alice"),
        "{html}"
    );
    assert!(html.contains("Member since"), "{html}");
    // Public profile fields are shown, escaped.
    let res = app
        .client
        .put(app.url("/api/v4/users/2"))
        .private_token(&app.root_token)
        .json(&json!({"bio": "<b>Builds</b> things", "location": "Lisbon"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let (_, _, html) = page(&app, "/alice").await;
    assert!(
        html.contains("Builds") && html.contains("things") && html.contains("Lisbon"),
        "{html}"
    );
    assert!(!html.contains("<b>Builds</b>"), "not escaped: {html}");
    // Usernames are case-insensitive, as in GitLab.
    assert_eq!(page(&app, "/ALICE").await.0, 200);
    // A blocked user's page says so, and shows nothing else of theirs.
    let res = app
        .client
        .post(app.url("/api/v4/users/2/block"))
        .private_token(&app.root_token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let (status, _, html) = page(&app, "/alice").await;
    assert_eq!(status, 200);
    assert!(html.contains("this user is blocked"), "{html}");
    assert!(
        !html.contains("Lisbon") && !html.contains("Builds"),
        "{html}"
    );
    // Reserved names are nobody's page.
    assert_eq!(page(&app, "/favicon.ico").await.0, 404);
}

#[tokio::test]
async fn browsers_get_an_html_404_and_the_api_keeps_its_json() {
    let app = TestApp::spawn().await;
    for path in ["/nobody-here", "/no/such/page", "/admin/nothing"] {
        let (status, kind, html) = page(&app, path).await;
        assert_eq!(status, 404, "{path}");
        assert!(kind.starts_with("text/html"), "{path}: {kind}");
        assert!(html.contains("Page not found"), "{path}: {html}");
    }
    // The API and OAuth endpoints answer in their own JSON, whatever the Accept.
    for path in ["/api/v4/nothing", "/oauth/nothing"] {
        let res = app
            .client
            .get(app.url(path))
            .header("accept", "text/html")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 404, "{path}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body, json!({"error": "404 Not Found"}), "{path}");
    }
    // A client asking for JSON elsewhere gets JSON too.
    let res = app
        .client
        .get(app.url("/no/such/page"))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"error": "404 Not Found"})
    );
}

const TOKENS: &str = "/-/user_settings/personal_access_tokens";

#[tokio::test]
async fn personal_access_tokens_are_made_once_listed_and_revoked_in_the_browser() {
    use crate::oauth::{hidden, user_with_password, Browser, PASSWORD};
    let app = TestApp::spawn().await;
    user_with_password(&app, "alice").await;
    // Signed out: to the sign-in page, coming back here.
    let mut browser = Browser::new();
    let res = browser.get(&app.url(TOKENS)).await;
    assert_eq!(res.status(), 302);
    let to = res.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        to.starts_with("/users/sign_in?return_to=%2F-%2Fuser_settings"),
        "{to}"
    );
    assert_eq!(browser.sign_in(&app, "alice", PASSWORD).await.status(), 302);

    let html = browser.get(&app.url(TOKENS)).await.text().await.unwrap();
    assert!(
        html.contains("You have no active personal access tokens"),
        "{html}"
    );
    assert!(html.contains("value=\"read_user\""), "{html}");
    assert!(
        !html.contains("value=\"sudo\""),
        "a user is not offered sudo: {html}"
    );
    let csrf = hidden(&html, "authenticity_token").unwrap();

    // Without the form's token: refused, nothing made.
    let res = browser
        .post(
            &app.url(TOKENS),
            &[("name", "ci"), ("scopes[]", "read_user")],
        )
        .await;
    assert_eq!(res.status(), 422);
    // Bad input: the page again, saying why.
    let res = browser
        .post(
            &app.url(TOKENS),
            &[("authenticity_token", &csrf), ("name", "ci")],
        )
        .await;
    assert_eq!(res.status(), 422);
    assert!(res
        .text()
        .await
        .unwrap()
        .contains("Select at least one scope"));
    let res = browser
        .post(
            &app.url(TOKENS),
            &[
                ("authenticity_token", &csrf),
                ("name", "ci"),
                ("scopes[]", "sudo"),
            ],
        )
        .await;
    assert_eq!(res.status(), 422);

    // Made: shown once, and it works.
    let res = browser
        .post(
            &app.url(TOKENS),
            &[
                // The names GitLab's form gives its fields.
                ("authenticity_token", &csrf),
                ("personal_access_token[name]", "ci"),
                ("personal_access_token[scopes][]", "read_user"),
                ("personal_access_token[scopes][]", "read_api"),
            ],
        )
        .await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    let token = crate::oauth::input_value(&html, "new_token").unwrap();
    assert!(token.starts_with("glpat-"), "{token}");
    let me = app
        .client
        .get(app.url("/api/v4/user"))
        .private_token(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    let html = browser.get(&app.url(TOKENS)).await.text().await.unwrap();
    assert!(!html.contains(&token), "shown again");
    assert!(
        html.contains("<td>ci</td>") && html.contains("read_user, read_api"),
        "{html}"
    );

    // Revoked from the list: it stops working.
    let listed: Value = app
        .client
        .get(app.url("/api/v4/personal_access_tokens"))
        .private_token(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = listed[0]["id"].as_i64().unwrap();
    let revoke = app.url(&format!("{TOKENS}/{id}/revoke"));
    assert_eq!(
        browser.post(&revoke, &[]).await.status(),
        422,
        "no CSRF token"
    );
    let res = browser
        .post(&revoke, &[("authenticity_token", &csrf)])
        .await;
    assert_eq!(res.status(), 302);
    let me = app
        .client
        .get(app.url("/api/v4/user"))
        .private_token(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 401);
    // Another user's token is not theirs to revoke.
    let root_tokens: Value = app
        .client
        .get(app.url("/api/v4/personal_access_tokens?user_id=1"))
        .private_token(&app.root_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let roots = root_tokens[0]["id"].as_i64().unwrap();
    let res = browser
        .post(
            &app.url(&format!("{TOKENS}/{roots}/revoke")),
            &[("authenticity_token", &csrf)],
        )
        .await;
    assert_eq!(res.status(), 404);
}

const APPS: &str = "/-/user_settings/applications";

async fn bearer_status(app: &TestApp, token: &str) -> u16 {
    app.client
        .get(app.url("/api/v4/user"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn applications_are_made_renewed_and_deleted_and_authorizations_revoked_in_the_browser() {
    use crate::oauth::{hidden, register, token_request, user_with_password, Browser, PASSWORD};
    let app = TestApp::spawn().await;
    user_with_password(&app, "alice").await;
    let mut browser = Browser::new();
    assert_eq!(
        browser.get(&app.url(APPS)).await.status(),
        302,
        "signed out"
    );
    assert_eq!(browser.sign_in(&app, "alice", PASSWORD).await.status(), 302);
    let html = browser.get(&app.url(APPS)).await.text().await.unwrap();
    assert!(html.contains("You have no applications"), "{html}");
    assert!(
        html.contains("You have not authorized any application"),
        "{html}"
    );
    let csrf = hidden(&html, "authenticity_token").unwrap();

    // Made on the page: the secret is shown once, and works.
    let form = [
        ("authenticity_token", csrf.as_str()),
        ("name", "Wiki"),
        ("redirect_uri", "https://wiki.example/cb"),
        ("confidential", "true"),
        ("scopes[]", "read_user"),
    ];
    assert_eq!(browser.post(&app.url(APPS), &form[1..]).await.status(), 422);
    let res = browser.post(&app.url(APPS), &form).await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    let client_id = crate::oauth::input_value(&html, "new_application_id").unwrap();
    let secret = crate::oauth::input_value(&html, "new_secret").unwrap();
    assert!(secret.starts_with("gloas-"), "{secret}");
    let (status, body, _) = token_request(
        &app,
        &[
            ("grant_type", "client_credentials"),
            ("scope", "read_user"),
            ("client_id", &client_id),
            ("client_secret", &secret),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let html = browser.get(&app.url(APPS)).await.text().await.unwrap();
    assert!(
        html.contains(">Wiki</a></td>") && html.contains(&client_id),
        "{html}"
    );
    assert!(!html.contains(&secret), "the secret shown again");
    // A bad redirect URI: the form again, saying why.
    let res = browser
        .post(
            &app.url(APPS),
            &[
                ("authenticity_token", &csrf),
                ("name", "Bad"),
                ("redirect_uri", "not a uri"),
                ("scopes[]", "read_user"),
            ],
        )
        .await;
    assert_eq!(res.status(), 422);

    // Renewed: a new secret, shown once; the old one stops.
    let listed: Value = app
        .client
        .get(app.url("/api/v4/applications"))
        .private_token(&app.root_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed, json!([]), "not an instance application");
    let id = app
        .services
        .store()
        .find_application_by_uid(&client_id)
        .await
        .unwrap()
        .unwrap()
        .0
        .id;
    let res = browser
        .post(
            &app.url(&format!("{APPS}/{id}/renew")),
            &[("authenticity_token", &csrf)],
        )
        .await;
    assert_eq!(res.status(), 200);
    let renewed = crate::oauth::input_value(&res.text().await.unwrap(), "new_secret").unwrap();
    assert_ne!(renewed, secret);

    // Authorized applications: a token alice granted, then revoked here.
    let other = register(&app, true, "api").await;
    let (status, body, _) = token_request(
        &app,
        &[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", PASSWORD),
            ("client_id", &other.client_id),
            ("client_secret", &other.secret),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let access = body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(bearer_status(&app, &access).await, 200);
    let html = browser.get(&app.url(APPS)).await.text().await.unwrap();
    let revoke = format!("{APPS}/authorized/{}/revoke", other.id);
    assert!(html.contains(&revoke), "{html}");
    assert_eq!(
        browser.post(&app.url(&revoke), &[]).await.status(),
        422,
        "no CSRF token"
    );
    let res = browser
        .post(&app.url(&revoke), &[("authenticity_token", &csrf)])
        .await;
    assert_eq!(res.status(), 302);
    assert_eq!(bearer_status(&app, &access).await, 401, "revoked at once");
    let html = browser.get(&app.url(APPS)).await.text().await.unwrap();
    assert!(!html.contains(&revoke), "{html}");
    // Nothing left to revoke: not found.
    let res = browser
        .post(&app.url(&revoke), &[("authenticity_token", &csrf)])
        .await;
    assert_eq!(res.status(), 404);

    // Another's application is not theirs to delete; their own goes.
    let res = browser
        .post(
            &app.url(&format!("{APPS}/{}/delete", other.id)),
            &[("authenticity_token", &csrf)],
        )
        .await;
    assert_eq!(res.status(), 404);
    let res = browser
        .post(
            &app.url(&format!("{APPS}/{id}/delete")),
            &[("authenticity_token", &csrf)],
        )
        .await;
    assert_eq!(res.status(), 302);
    let html = browser.get(&app.url(APPS)).await.text().await.unwrap();
    assert!(html.contains("You have no applications"), "{html}");
}

#[tokio::test]
async fn the_admin_area_lists_users_and_makes_applications_for_administrators_only() {
    use crate::oauth::{hidden, token_request, user_with_password, Browser, PASSWORD};
    let app = TestApp::spawn().await;
    user_with_password(&app, "alice").await;
    user_with_password(&app, "boss").await;
    let res = app
        .client
        .put(app.url("/api/v4/users/3"))
        .private_token(&app.root_token)
        .json(&json!({"admin": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    // Not an administrator: GitLab's 404, for every page.
    let mut alice = Browser::new();
    assert_eq!(
        alice.get(&app.url("/admin/users")).await.status(),
        302,
        "signed out"
    );
    alice.sign_in(&app, "alice", PASSWORD).await;
    for path in [
        "/admin/users",
        "/admin/applications",
        "/admin/applications/new",
    ] {
        assert_eq!(alice.get(&app.url(path)).await.status(), 404, "{path}");
    }
    let res = alice
        .post(&app.url("/admin/applications"), &[("name", "x")])
        .await;
    assert_eq!(res.status(), 404);

    let mut boss = Browser::new();
    boss.sign_in(&app, "boss", PASSWORD).await;
    let html = boss
        .get(&app.url("/admin/users"))
        .await
        .text()
        .await
        .unwrap();
    for name in ["root", "alice", "boss"] {
        assert!(html.contains(&format!("<td>{name}</td>")), "{name}: {html}");
    }
    assert!(html.contains("3 users"), "{html}");
    let html = boss
        .get(&app.url("/admin/users?search=ali"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("<td>alice</td>") && !html.contains("<td>boss</td>"),
        "{html}"
    );
    let html = boss
        .get(&app.url("/admin/users?filter=admins"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("<td>boss</td>") && !html.contains("<td>alice</td>"),
        "{html}"
    );

    // A new instance application: its secret once, then never again.
    let html = boss
        .get(&app.url("/admin/applications/new"))
        .await
        .text()
        .await
        .unwrap();
    let csrf = hidden(&html, "authenticity_token").unwrap();
    let form = [
        ("authenticity_token", csrf.as_str()),
        ("doorkeeper_application[name]", "Grafana"),
        (
            "doorkeeper_application[redirect_uri]",
            "https://grafana.example/login\nhttps://grafana.example/alt",
        ),
        ("doorkeeper_application[confidential]", "true"),
        ("doorkeeper_application[scopes][]", "openid"),
        ("doorkeeper_application[scopes][]", "email"),
    ];
    assert_eq!(
        boss.post(&app.url("/admin/applications"), &form[1..])
            .await
            .status(),
        422
    );
    let res = boss.post(&app.url("/admin/applications"), &form).await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    let secret = crate::oauth::input_value(&html, "new_secret").unwrap();
    let listed: Value = app
        .client
        .get(app.url("/api/v4/applications"))
        .private_token(&app.root_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed[0]["application_name"], "Grafana");
    let client_id = listed[0]["application_id"].as_str().unwrap().to_owned();
    let id = listed[0]["id"].as_i64().unwrap();
    let (status, body, _) = token_request(
        &app,
        &[
            ("grant_type", "client_credentials"),
            ("scope", "email"),
            ("client_id", &client_id),
            ("client_secret", &secret),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let page = format!("/admin/applications/{id}");
    let html = boss.get(&app.url(&page)).await.text().await.unwrap();
    assert!(
        html.contains(&client_id) && !html.contains(&secret),
        "{html}"
    );
    assert!(html.contains("https://grafana.example/alt"), "{html}");
    let html = boss
        .get(&app.url("/admin/applications"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("Grafana") && !html.contains(&secret),
        "{html}"
    );
    assert_eq!(alice.get(&app.url(&page)).await.status(), 404);
    let res = boss
        .post(
            &app.url(&format!("{page}/delete")),
            &[("authenticity_token", &csrf)],
        )
        .await;
    assert_eq!(res.status(), 302);
    assert_eq!(boss.get(&app.url(&page)).await.status(), 404);
}

/// Post the password form with `current`, the new password and its
/// confirmation, and the CSRF token `csrf`.
async fn change_password(
    app: &TestApp,
    b: &mut crate::oauth::Browser,
    fields: [&str; 4],
) -> reqwest::Response {
    let [current, new, confirmation, csrf] = fields;
    b.post(
        &app.url("/-/user_settings/password"),
        &[
            ("current_password", current),
            ("new_password", new),
            ("password_confirmation", confirmation),
            ("authenticity_token", csrf),
        ],
    )
    .await
}

#[tokio::test]
async fn a_password_is_changed_with_the_current_one_and_other_sessions_end() {
    use crate::oauth::{hidden, user_with_password, Browser, PASSWORD};
    const PAGE: &str = "/-/user_settings/password";
    let app = TestApp::spawn().await;
    user_with_password(&app, "alice").await;
    let mut here = Browser::new();
    let mut elsewhere = Browser::new();
    assert_eq!(here.get(&app.url(PAGE)).await.status(), 302, "signed out");
    here.sign_in(&app, "alice", PASSWORD).await;
    elsewhere.sign_in(&app, "alice", PASSWORD).await;
    let html = here.get(&app.url(PAGE)).await.text().await.unwrap();
    let csrf = hidden(&html, "authenticity_token").unwrap();
    let new = "a brand new password 42";
    // Without the form's token, with a wrong current password, with a
    // confirmation that differs: refused, nothing changed.
    let res = change_password(&app, &mut here, [PASSWORD, new, new, ""]).await;
    assert_eq!(res.status(), 422);
    let res = change_password(&app, &mut here, ["not it at all", new, new, &csrf]).await;
    assert_eq!(res.status(), 422);
    assert!(res
        .text()
        .await
        .unwrap()
        .contains("current password is not correct"));
    let res = change_password(&app, &mut here, [PASSWORD, new, "something else", &csrf]).await;
    assert_eq!(res.status(), 422);
    // Changed: this browser stays signed in, the other session ends.
    let res = change_password(&app, &mut here, [PASSWORD, new, new, &csrf]).await;
    assert_eq!(res.status(), 200);
    assert!(res
        .text()
        .await
        .unwrap()
        .contains("Your password was changed"));
    assert_eq!(
        here.get(&app.url(PAGE)).await.status(),
        200,
        "still signed in here"
    );
    assert_eq!(
        elsewhere.get(&app.url(PAGE)).await.status(),
        302,
        "signed out elsewhere"
    );
    let mut fresh = Browser::new();
    assert_eq!(fresh.sign_in(&app, "alice", PASSWORD).await.status(), 401);
    assert_eq!(fresh.sign_in(&app, "alice", new).await.status(), 302);
}

#[tokio::test]
async fn pages_carry_the_navigation_bar_and_the_consent_page_says_who_registered_the_app() {
    use crate::oauth::{hidden, user_with_password, Browser, PASSWORD};
    let app = TestApp::spawn().await;
    user_with_password(&app, "alice").await;
    let mut browser = Browser::new();
    const BAR: &str = r#"<nav aria-label="Main">"#;
    // Signed out, the bar offers to sign in.
    let html = browser.get(&app.url("/")).await.text().await.unwrap();
    assert!(
        html.contains(BAR) && html.contains(r#"href="/users/sign_in""#),
        "{html}"
    );
    assert_eq!(browser.sign_in(&app, "alice", PASSWORD).await.status(), 302);
    for path in ["/", "/alice", TOKENS, APPS, "/-/user_settings/password"] {
        let html = browser.get(&app.url(path)).await.text().await.unwrap();
        assert!(html.contains(BAR), "{path}: {html}");
        assert!(
            html.contains(r#"href="/alice""#)
                && html.contains(r#"action="/users/sign_out""#)
                && html.contains(r#"href="/-/user_settings/applications""#),
            "{path}: {html}"
        );
        assert!(!html.contains("Admin Area"), "{path}: {html}");
    }
    // The one script the pages use, allowed by their policy.
    let res = browser.get(&app.url("/-/assets/latchkey.js")).await;
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/javascript"));
    let res = browser.get(&app.url(APPS)).await;
    let csp = res.headers()["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("default-src 'none'"),
        "{csp}"
    );

    // An application alice registers herself, then authorizes.
    let html = res.text().await.unwrap();
    let csrf = hidden(&html, "authenticity_token").unwrap();
    let res = browser
        .post(
            &app.url(APPS),
            &[
                ("authenticity_token", csrf.as_str()),
                ("name", "Wiki"),
                ("redirect_uri", "https://wiki.example/cb"),
                ("confidential", "true"),
                ("scopes[]", "read_user"),
                ("scopes[]", "openid"),
                ("scopes[]", "api"),
            ],
        )
        .await;
    assert_eq!(res.status(), 200);
    let client_id =
        crate::oauth::input_value(&res.text().await.unwrap(), "new_application_id").unwrap();
    let query = format!(
        "client_id={client_id}&redirect_uri=https%3A%2F%2Fwiki.example%2Fcb\
         &response_type=code&state=s1&scope=openid+read_user+api"
    );
    let res = browser
        .get(&app.url(&format!("/oauth/authorize?{query}")))
        .await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(html.contains(BAR), "{html}");
    // Who registered it, when, where it sends the browser, and the scopes
    // grouped by what they allow, the most consequential first.
    assert!(
        html.contains("Registered by") && html.contains(r#"<a href="/alice">alice</a>"#),
        "{html}"
    );
    assert!(
        html.contains("Registered on") && html.contains("<strong>wiki.example</strong>"),
        "{html}"
    );
    let at = |needle: &str| {
        html.find(needle)
            .unwrap_or_else(|| panic!("{needle} in {html}"))
    };
    assert!(at("Read and change your data") < at("Read your data"));
    assert!(at("Read your data") < at("Know who you are"));
    assert!(at("<strong>api</strong>") < at("<strong>read_user</strong>"));
    // "Not you?" signs out and comes back to this request after the next
    // sign-in.
    let back = hidden(&html, "return_to").unwrap();
    assert!(back.starts_with("/oauth/authorize?client_id="), "{back}");
    let csrf = hidden(&html, "authenticity_token").unwrap();
    let res = browser
        .post(
            &app.url("/users/sign_out"),
            &[("authenticity_token", csrf.as_str()), ("return_to", &back)],
        )
        .await;
    assert_eq!(res.status(), 302);
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        location.starts_with("/users/sign_in?return_to=%2Foauth%2Fauthorize%3Fclient_id%3D"),
        "{location}"
    );
    assert_eq!(browser.session(), None);

    // An administrator's bar leads to the Admin Area.
    let res = app
        .client
        .put(app.url("/api/v4/users/2"))
        .private_token(&app.root_token)
        .json(&json!({"admin": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(browser.sign_in(&app, "alice", PASSWORD).await.status(), 302);
    let html = browser.get(&app.url("/alice")).await.text().await.unwrap();
    assert!(
        html.contains(r#"<a href="/admin/applications">Admin Area</a>"#),
        "{html}"
    );
}

#[tokio::test]
async fn gitlabs_earlier_paths_lead_to_the_pages_keeping_the_query() {
    let app = TestApp::spawn().await;
    let mut browser = crate::oauth::Browser::new();
    for (from, to) in [
        (
            "/-/profile/personal_access_tokens?name=ci&scopes=api,read_user",
            "/-/user_settings/personal_access_tokens?name=ci&scopes=api,read_user",
        ),
        ("/-/profile/applications", "/-/user_settings/applications"),
        ("/-/profile/password/edit", "/-/user_settings/password"),
        (
            "/-/user_settings/password/edit",
            "/-/user_settings/password",
        ),
        ("/admin", "/admin/applications"),
    ] {
        let res = browser.get(&app.url(from)).await;
        assert_eq!(res.status(), 301, "{from}");
        assert_eq!(res.headers()["location"], to, "{from}");
    }
}

#[tokio::test]
async fn revoking_an_authorization_that_does_not_exist_gets_the_404_page() {
    use crate::oauth::{hidden, user_with_password, Browser, PASSWORD};
    let app = TestApp::spawn().await;
    user_with_password(&app, "alice").await;
    let mut browser = Browser::new();
    assert_eq!(browser.sign_in(&app, "alice", PASSWORD).await.status(), 302);
    let html = browser.get(&app.url(APPS)).await.text().await.unwrap();
    let csrf = hidden(&html, "authenticity_token").unwrap();
    let res = browser
        .post(
            &app.url("/-/user_settings/applications/authorized/999999/revoke"),
            &[("authenticity_token", csrf.as_str())],
        )
        .await;
    assert_eq!(res.status(), 404);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
}

#[tokio::test]
async fn with_admin_mode_on_the_admin_area_asks_for_the_password_again() {
    use crate::helpers::Options;
    use crate::oauth::{hidden, user_with_password, Browser, PASSWORD};
    let app = TestApp::spawn_with(Options {
        admin_mode: true,
        ..Default::default()
    })
    .await;
    user_with_password(&app, "alice").await;
    let res = app
        .client
        .put(app.url("/api/v4/users/2"))
        .private_token(&app.root_token)
        .json(&json!({"admin": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let mut browser = Browser::new();
    assert_eq!(browser.sign_in(&app, "alice", PASSWORD).await.status(), 302);

    // Signed in is not enough: the Admin Area sends her to re-authenticate,
    // coming back to where she was going.
    let res = browser.get(&app.url("/admin/users?filter=admins")).await;
    assert_eq!(res.status(), 302);
    let to = res.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(to, "/admin/session/new?return_to=%2Fadmin%2Fusers");
    let html = browser.get(&app.url(&to)).await.text().await.unwrap();
    assert!(html.contains("Enter Admin Mode"), "{html}");
    let csrf = hidden(&html, "authenticity_token").unwrap();
    let back = hidden(&html, "return_to").unwrap();
    assert_eq!(back, "/admin/users");

    // A wrong password is refused (and counts as a failed sign-in); the
    // form without its CSRF token is refused.
    let res = browser
        .post(
            &app.url("/admin/session"),
            &[
                ("authenticity_token", csrf.as_str()),
                ("return_to", back.as_str()),
                ("password", "not it"),
            ],
        )
        .await;
    assert_eq!(res.status(), 401);
    assert!(res.text().await.unwrap().contains("Invalid password."));
    let res = browser
        .post(
            &app.url("/admin/session"),
            &[("return_to", back.as_str()), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(res.status(), 422);
    assert_eq!(
        browser.get(&app.url("/admin/users")).await.status(),
        302,
        "still not in Admin Mode"
    );

    // The right one: on to the page, which now shows.
    let res = browser
        .post(
            &app.url("/admin/session"),
            &[
                ("authenticity_token", csrf.as_str()),
                ("return_to", back.as_str()),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(res.status(), 302);
    assert_eq!(res.headers()["location"], "/admin/users");
    let res = browser.get(&app.url("/admin/users?filter=admins")).await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(html.contains("Leave Admin Mode"), "{html}");
    // Offered on every page while in it, as GitLab's bar does.
    for page in ["/", "/-/user_settings/applications"] {
        let html = browser.get(&app.url(page)).await.text().await.unwrap();
        assert!(html.contains("Leave Admin Mode"), "{page}: {html}");
    }

    // Leaving it (or signing out) ends it.
    let res = browser
        .post(
            &app.url("/admin/session/destroy"),
            &[("authenticity_token", csrf.as_str())],
        )
        .await;
    assert_eq!(res.status(), 302);
    assert_eq!(browser.get(&app.url("/admin/users")).await.status(), 302);
    let html = browser.get(&app.url("/")).await.text().await.unwrap();
    assert!(!html.contains("Leave Admin Mode"), "{html}");

    // A regular user still gets the 404 page, not the password form.
    user_with_password(&app, "bob").await;
    let mut other = Browser::new();
    assert_eq!(other.sign_in(&app, "bob", PASSWORD).await.status(), 302);
    assert_eq!(other.get(&app.url("/admin/users")).await.status(), 404);
    assert_eq!(
        other.get(&app.url("/admin/session/new")).await.status(),
        404
    );

    // The audit log has both.
    let res = app
        .client
        .get(app.url("/api/v4/audit_events?entity_type=User"))
        .private_token(&app.root_token)
        .send()
        .await
        .unwrap();
    let events = res.text().await.unwrap();
    assert!(
        events.contains("user_enabled_admin_mode") && events.contains("user_disabled_admin_mode"),
        "{events}"
    );
}

#[tokio::test]
async fn with_admin_mode_off_the_admin_area_needs_no_second_password() {
    use crate::oauth::{user_with_password, Browser, PASSWORD};
    let app = TestApp::spawn().await;
    user_with_password(&app, "alice").await;
    let res = app
        .client
        .put(app.url("/api/v4/users/2"))
        .private_token(&app.root_token)
        .json(&json!({"admin": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let mut browser = Browser::new();
    assert_eq!(browser.sign_in(&app, "alice", PASSWORD).await.status(), 302);
    let res = browser.get(&app.url("/admin/users")).await;
    assert_eq!(res.status(), 200);
    assert!(!res.text().await.unwrap().contains("Leave Admin Mode"));
    let res = browser
        .get(&app.url("/admin/session/new?return_to=/admin/users"))
        .await;
    assert_eq!(res.status(), 302);
    assert_eq!(res.headers()["location"], "/admin/users");
}
