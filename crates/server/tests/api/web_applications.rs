//! One application's pages in the browser, for its owner in User Settings
//! and for administrators in the Admin Area: shown without its secret,
//! edited, its secret renewed (at once or with a grace period), one secret
//! revoked, deleted after a confirmation page.

use serde_json::Value;

use crate::helpers::{RequestAs, TestApp};
use crate::oauth::{hidden, input_value, token_request, user_with_password, Browser, PASSWORD};

const APPS: &str = "/-/user_settings/applications";

/// The ids of the secrets the page offers to revoke.
fn revocable_secrets(html: &str) -> Vec<i64> {
    html.split("/secrets/")
        .skip(1)
        .filter_map(|rest| rest.split('/').next()?.parse().ok())
        .collect()
}

async fn client_credentials(app: &TestApp, client_id: &str, secret: &str) -> u16 {
    let (status, _, _) = token_request(
        app,
        &[
            ("grant_type", "client_credentials"),
            ("scope", "read_user"),
            ("client_id", client_id),
            ("client_secret", secret),
        ],
    )
    .await;
    status
}

#[tokio::test]
async fn an_owner_shows_edits_renews_and_deletes_their_application() {
    let app = TestApp::spawn().await;
    user_with_password(&app, "alice").await;
    user_with_password(&app, "bob").await;
    let mut alice = Browser::new();
    alice.sign_in(&app, "alice", PASSWORD).await;
    let html = alice.get(&app.url(APPS)).await.text().await.unwrap();
    let csrf = hidden(&html, "authenticity_token").unwrap();
    let res = alice
        .post(
            &app.url(APPS),
            &[
                ("authenticity_token", csrf.as_str()),
                ("doorkeeper_application[name]", "Wiki"),
                (
                    "doorkeeper_application[redirect_uri]",
                    "https://wiki.example/cb",
                ),
                ("doorkeeper_application[confidential]", "true"),
                ("doorkeeper_application[scopes][]", "read_user"),
            ],
        )
        .await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    let client_id = input_value(&html, "new_application_id").unwrap();
    let first = input_value(&html, "new_secret").unwrap();
    let id = app
        .services
        .store()
        .find_application_by_uid(&client_id)
        .await
        .unwrap()
        .unwrap()
        .0
        .id;
    let show = format!("{APPS}/{id}");

    // Shown: what it is, one live secret (its last characters only), never
    // the secret itself; nothing to revoke while it is the only one.
    let res = alice.get(&app.url(&show)).await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(html.contains("Application: Wiki") && html.contains(&client_id));
    assert!(!html.contains(&first), "the secret shown again");
    assert!(html.contains(&format!("…{}", &first[first.len() - 4..])));
    assert!(revocable_secrets(&html).is_empty(), "{html}");
    assert!(html.contains(&format!("{show}/edit")) && html.contains(&format!("{show}/delete")));

    // Another user's: not found, on every page.
    let mut bob = Browser::new();
    bob.sign_in(&app, "bob", PASSWORD).await;
    for path in [
        show.clone(),
        format!("{show}/edit"),
        format!("{show}/delete"),
    ] {
        assert_eq!(bob.get(&app.url(&path)).await.status(), 404, "{path}");
    }
    let bob_csrf = hidden(
        &bob.get(&app.url(APPS)).await.text().await.unwrap(),
        "authenticity_token",
    )
    .unwrap();
    let res = bob
        .post(
            &app.url(&format!("{show}/renew")),
            &[("authenticity_token", &bob_csrf)],
        )
        .await;
    assert_eq!(res.status(), 404);

    // Edited: the form shows what it is; the change is kept.
    let html = alice
        .get(&app.url(&format!("{show}/edit")))
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains(r#"value="Wiki""#), "{html}");
    assert!(
        html.contains(r#"name="doorkeeper_application[scopes][]" value="read_user" checked"#),
        "{html}"
    );
    assert!(!html.contains("grant_types"), "administrators only: {html}");
    let edit = |name: &'static str, uri: &'static str| {
        vec![
            ("authenticity_token", csrf.clone()),
            ("doorkeeper_application[name]", name.to_owned()),
            ("doorkeeper_application[redirect_uri]", uri.to_owned()),
            ("doorkeeper_application[confidential]", "true".to_owned()),
            ("doorkeeper_application[scopes][]", "read_user".to_owned()),
            ("doorkeeper_application[scopes][]", "openid".to_owned()),
        ]
    };
    let form = edit(
        "Wiki 2",
        "https://wiki.example/cb\nhttps://wiki.example/alt",
    );
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(
        alice.post(&app.url(&show), &form[1..]).await.status(),
        422,
        "no CSRF token"
    );
    let res = alice.post(&app.url(&show), &form).await;
    assert_eq!(res.status(), 302);
    assert_eq!(crate::oauth::location(&res), show);
    let stored = app
        .services
        .find_application(id, latchkey_core::application::Ownership::Any)
        .await
        .unwrap();
    assert_eq!(stored.name, "Wiki 2");
    assert_eq!(stored.scopes.as_slice(), ["read_user", "openid"]);
    assert_eq!(
        stored.redirect_uri,
        "https://wiki.example/cb\nhttps://wiki.example/alt"
    );
    // A bad redirect URI: the form again, with the name as sent and why.
    let form = edit("Wiki 3", "not a uri");
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let res = alice.post(&app.url(&show), &form).await;
    assert_eq!(res.status(), 422);
    let html = res.text().await.unwrap();
    assert!(html.contains(r#"value="Wiki 3""#) && html.contains("role=\"alert\""));
    // An administrator's scope is not the owner's to choose.
    let res = alice
        .post(
            &app.url(&show),
            &[
                ("authenticity_token", csrf.as_str()),
                ("doorkeeper_application[name]", "Wiki 2"),
                (
                    "doorkeeper_application[redirect_uri]",
                    "https://wiki.example/cb",
                ),
                ("doorkeeper_application[scopes][]", "sudo"),
            ],
        )
        .await;
    assert_eq!(res.status(), 422);

    // Renewed with a grace period: both secrets work until the old one is
    // revoked here.
    let res = alice
        .post(
            &app.url(&format!("{show}/renew")),
            &[("authenticity_token", csrf.as_str()), ("grace", "3600")],
        )
        .await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    let second = input_value(&html, "new_secret").unwrap();
    assert_ne!(second, first);
    assert!(html.contains("the previous one works for 1 hour"), "{html}");
    assert_eq!(client_credentials(&app, &client_id, &first).await, 200);
    assert_eq!(client_credentials(&app, &client_id, &second).await, 200);
    let html = alice.get(&app.url(&show)).await.text().await.unwrap();
    assert!(!html.contains(&second));
    let ids = revocable_secrets(&html);
    assert_eq!(ids.len(), 2, "{html}");
    let res = alice
        .post(
            &app.url(&format!("{show}/secrets/{}/delete", ids[0])),
            &[("authenticity_token", csrf.as_str())],
        )
        .await;
    assert_eq!(res.status(), 302);
    assert_eq!(client_credentials(&app, &client_id, &first).await, 401);
    assert_eq!(client_credentials(&app, &client_id, &second).await, 200);
    // The last live one stays: renew instead.
    let res = alice
        .post(
            &app.url(&format!("{show}/secrets/{}/delete", ids[1])),
            &[("authenticity_token", csrf.as_str())],
        )
        .await;
    assert_eq!(res.status(), 409);
    assert_eq!(client_credentials(&app, &client_id, &second).await, 200);
    // A grace period the form does not offer is refused; none at all is
    // GitLab's renewal: the previous secret stops at once.
    let res = alice
        .post(
            &app.url(&format!("{show}/renew")),
            &[("authenticity_token", csrf.as_str()), ("grace", "5")],
        )
        .await;
    assert_eq!(res.status(), 422);
    assert_eq!(client_credentials(&app, &client_id, &second).await, 200);
    let res = alice
        .post(
            &app.url(&format!("{show}/renew")),
            &[("authenticity_token", csrf.as_str()), ("grace", "")],
        )
        .await;
    assert_eq!(res.status(), 200);
    let third = input_value(&res.text().await.unwrap(), "new_secret").unwrap();
    assert_eq!(client_credentials(&app, &client_id, &second).await, 401);
    assert_eq!(client_credentials(&app, &client_id, &third).await, 200);

    // Deleted after a confirmation page.
    let res = alice.get(&app.url(&format!("{show}/delete"))).await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(html.contains("Delete Wiki 2?"), "{html}");
    assert_eq!(client_credentials(&app, &client_id, &third).await, 200);
    let res = alice
        .post(
            &app.url(&format!("{show}/delete")),
            &[("authenticity_token", csrf.as_str())],
        )
        .await;
    assert_eq!(res.status(), 302);
    assert_eq!(crate::oauth::location(&res), APPS);
    assert_eq!(client_credentials(&app, &client_id, &third).await, 401);
    assert_eq!(alice.get(&app.url(&show)).await.status(), 404);
}

#[tokio::test]
async fn an_administrator_edits_an_instance_application_fully() {
    let app = TestApp::spawn().await;
    user_with_password(&app, "alice").await;
    user_with_password(&app, "boss").await;
    let res = app
        .client
        .put(app.url("/api/v4/users/3"))
        .private_token(&app.root_token)
        .json(&serde_json::json!({"admin": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let created: Value = app
        .client
        .post(app.url("/api/v4/applications"))
        .private_token(&app.root_token)
        .json(&serde_json::json!({
            "name": "Grafana",
            "redirect_uri": "https://grafana.example/login",
            "scopes": "openid"
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_i64().unwrap();
    let show = format!("/admin/applications/{id}");

    // Not an administrator: 404 on every page of it.
    let mut alice = Browser::new();
    alice.sign_in(&app, "alice", PASSWORD).await;
    for path in [
        show.clone(),
        format!("{show}/edit"),
        format!("{show}/delete"),
    ] {
        assert_eq!(alice.get(&app.url(&path)).await.status(), 404, "{path}");
    }

    let mut boss = Browser::new();
    boss.sign_in(&app, "boss", PASSWORD).await;
    // The list's search: by name, any case.
    let html = boss
        .get(&app.url("/admin/applications?search=GRAF"))
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains(&format!("{show}\">Grafana</a>")), "{html}");
    let html = boss
        .get(&app.url("/admin/applications?search=wiki"))
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("No application matches"), "{html}");
    let html = boss
        .get(&app.url(&format!("{show}/edit")))
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("doorkeeper_application[trusted]"), "{html}");
    assert!(
        html.contains(r#"value="client_credentials" checked"#),
        "every grant, as the application has no list: {html}"
    );
    let csrf = hidden(&html, "authenticity_token").unwrap();
    let form = [
        ("authenticity_token", csrf.as_str()),
        ("doorkeeper_application[name]", "Grafana"),
        (
            "doorkeeper_application[redirect_uri]",
            "https://grafana.example/login",
        ),
        ("doorkeeper_application[confidential]", "true"),
        ("doorkeeper_application[trusted]", "true"),
        ("doorkeeper_application[scopes][]", "openid"),
        ("doorkeeper_application[scopes][]", "email"),
        (
            "doorkeeper_application[grant_types][]",
            "authorization_code",
        ),
        ("doorkeeper_application[grant_types][]", "refresh_token"),
    ];
    let res = boss.post(&app.url(&show), &form).await;
    assert_eq!(res.status(), 302);
    let stored = app
        .services
        .find_application(id, latchkey_core::application::Ownership::Instance)
        .await
        .unwrap();
    assert!(stored.trusted && stored.confidential);
    assert_eq!(stored.scopes.as_slice(), ["openid", "email"]);
    assert_eq!(
        stored.grant_types.as_deref(),
        Some(&["authorization_code".to_owned(), "refresh_token".to_owned()][..])
    );
    let html = boss.get(&app.url(&show)).await.text().await.unwrap();
    assert!(html.contains("authorization_code, refresh_token"), "{html}");
    // No grant at all is refused, and so is one that does not exist.
    let res = boss.post(&app.url(&show), &form[..7]).await;
    assert_eq!(res.status(), 422);
    let mut bad = form.to_vec();
    bad.push(("doorkeeper_application[grant_types][]", "implicit"));
    assert_eq!(boss.post(&app.url(&show), &bad).await.status(), 422);

    // Renewed from its page; deleted after the confirmation page.
    let res = boss
        .post(
            &app.url(&format!("{show}/renew")),
            &[("authenticity_token", csrf.as_str()), ("grace", "86400")],
        )
        .await;
    assert_eq!(res.status(), 200);
    assert!(input_value(&res.text().await.unwrap(), "new_secret").is_some());
    let html = boss
        .get(&app.url(&format!("{show}/delete")))
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("Delete Grafana?"), "{html}");
    let res = boss
        .post(
            &app.url(&format!("{show}/delete")),
            &[("authenticity_token", csrf.as_str())],
        )
        .await;
    assert_eq!(res.status(), 302);
    assert_eq!(crate::oauth::location(&res), "/admin/applications");
    let res = app
        .client
        .get(app.url("/api/v4/applications"))
        .private_token(&app.root_token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.json::<Value>().await.unwrap(), serde_json::json!([]));
}
