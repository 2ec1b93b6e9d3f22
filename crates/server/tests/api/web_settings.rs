//! User Settings in the browser beyond making things: a token rotated, the
//! token form filled in from a link, and the active sessions (revoke one,
//! sign out everywhere else).

use serde_json::Value;

use crate::helpers::{RequestAs, TestApp};
use crate::oauth::{hidden, input_value, user_with_password, Browser, PASSWORD};

const TOKENS: &str = "/-/user_settings/personal_access_tokens";
const SESSIONS: &str = "/-/user_settings/active_sessions";

async fn user_status(app: &TestApp, token: &str) -> u16 {
    app.client
        .get(app.url("/api/v4/user"))
        .private_token(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn a_token_is_rotated_and_the_form_is_filled_in_from_a_link() {
    let app = TestApp::spawn().await;
    user_with_password(&app, "alice").await;
    user_with_password(&app, "bob").await;
    let mut alice = Browser::new();
    alice.sign_in(&app, "alice", PASSWORD).await;

    // GitLab's prefill link: the name and the scopes ticked; a scope the
    // user may not choose is not.
    let res = alice
        .get(&app.url(&format!("{TOKENS}?name=CI+bot&scopes=api,read_user,sudo")))
        .await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(html.contains(r#"value="CI bot""#), "{html}");
    for (scope, ticked) in [("api", true), ("read_user", true), ("read_api", false)] {
        let checked = format!(r#"value="{scope}" checked"#);
        assert_eq!(html.contains(&checked), ticked, "{scope}: {html}");
    }
    assert!(!html.contains(r#"value="sudo""#), "{html}");
    // Signed out, the link comes back after signing in.
    let res = Browser::new()
        .get(&app.url(&format!("{TOKENS}?name=CI&scopes=api")))
        .await;
    assert_eq!(res.status(), 302);
    let location = crate::oauth::location(&res);
    assert!(
        location.contains("return_to=") && location.contains("scopes"),
        "{location}"
    );

    // Made, then rotated: the old value stops, the new one (same name and
    // scopes, a week to live) is shown once.
    let csrf = hidden(&html, "authenticity_token").unwrap();
    let res = alice
        .post(
            &app.url(TOKENS),
            &[
                ("authenticity_token", csrf.as_str()),
                ("personal_access_token[name]", "CI bot"),
                ("personal_access_token[scopes][]", "read_user"),
            ],
        )
        .await;
    assert_eq!(res.status(), 200);
    let old = input_value(&res.text().await.unwrap(), "new_token").unwrap();
    assert_eq!(user_status(&app, &old).await, 200);
    let mine: Value = app
        .client
        .get(app.url("/api/v4/personal_access_tokens?search=CI+bot"))
        .private_token(&app.root_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = mine[0]["id"].as_i64().unwrap();
    let rotate = format!("{TOKENS}/{id}/rotate");
    assert_eq!(
        alice.post(&app.url(&rotate), &[]).await.status(),
        422,
        "no CSRF token"
    );
    assert_eq!(user_status(&app, &old).await, 200);
    // Not bob's to rotate.
    let mut bob = Browser::new();
    bob.sign_in(&app, "bob", PASSWORD).await;
    let bob_csrf = hidden(
        &bob.get(&app.url(TOKENS)).await.text().await.unwrap(),
        "authenticity_token",
    )
    .unwrap();
    let res = bob
        .post(&app.url(&rotate), &[("authenticity_token", &bob_csrf)])
        .await;
    assert_eq!(res.status(), 404);
    assert_eq!(user_status(&app, &old).await, 200);

    let res = alice
        .post(&app.url(&rotate), &[("authenticity_token", &csrf)])
        .await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    let new = input_value(&html, "new_token").unwrap();
    assert_ne!(new, old);
    assert!(html.contains("Token CI bot was rotated"), "{html}");
    assert_eq!(user_status(&app, &old).await, 401);
    assert_eq!(user_status(&app, &new).await, 200);
    let me: Value = app
        .client
        .get(app.url("/api/v4/personal_access_tokens?search=CI+bot&state=active"))
        .private_token(&app.root_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me.as_array().map(Vec::len), Some(1), "{me}");
    assert_eq!(me[0]["name"], "CI bot");
    assert_eq!(me[0]["scopes"], serde_json::json!(["read_user"]));
    assert!(me[0]["expires_at"].is_string(), "{me}");
    // Rotated once: the old one cannot be rotated again.
    let res = alice
        .post(&app.url(&rotate), &[("authenticity_token", &csrf)])
        .await;
    assert_eq!(res.status(), 422);
}

#[tokio::test]
async fn a_user_sees_their_sessions_and_signs_out_the_others() {
    let app = TestApp::spawn().await;
    user_with_password(&app, "alice").await;
    user_with_password(&app, "bob").await;
    let (mut laptop, mut phone, mut tablet) = (Browser::new(), Browser::new(), Browser::new());
    for b in [&mut laptop, &mut phone, &mut tablet] {
        assert_eq!(b.sign_in(&app, "alice", PASSWORD).await.status(), 302);
    }
    let mut bob = Browser::new();
    bob.sign_in(&app, "bob", PASSWORD).await;

    // Signed out: sign in first.
    assert_eq!(Browser::new().get(&app.url(SESSIONS)).await.status(), 302);
    let res = laptop.get(&app.url(SESSIONS)).await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert_eq!(
        html.matches("This is your current session").count(),
        1,
        "{html}"
    );
    assert!(html.contains("127.0.0.1"), "{html}");
    let revoke: Vec<String> = html
        .split("action=\"/-/user_settings/active_sessions/")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .filter(|p| p.ends_with("/revoke"))
        .map(|p| format!("{SESSIONS}/{p}"))
        .collect();
    // The two other browsers of alice's; bob's session is not hers.
    assert_eq!(revoke.len(), 2, "{html}");
    let csrf = hidden(&html, "authenticity_token").unwrap();

    // Revoke one: exactly one other browser is signed out.
    assert_eq!(laptop.post(&app.url(&revoke[0]), &[]).await.status(), 422);
    let res = laptop
        .post(&app.url(&revoke[0]), &[("authenticity_token", &csrf)])
        .await;
    assert_eq!(res.status(), 302);
    let phone_in = phone.get(&app.url(SESSIONS)).await.status() == 200;
    let tablet_in = tablet.get(&app.url(SESSIONS)).await.status() == 200;
    assert!(phone_in ^ tablet_in, "one of the two was signed out");
    assert_eq!(laptop.get(&app.url(SESSIONS)).await.status(), 200);
    // The same again: gone.
    let res = laptop
        .post(&app.url(&revoke[0]), &[("authenticity_token", &csrf)])
        .await;
    assert_eq!(res.status(), 404);
    // Bob cannot revoke alice's.
    let bob_csrf = hidden(
        &bob.get(&app.url(SESSIONS)).await.text().await.unwrap(),
        "authenticity_token",
    )
    .unwrap();
    let res = bob
        .post(&app.url(&revoke[1]), &[("authenticity_token", &bob_csrf)])
        .await;
    assert_eq!(res.status(), 404);

    // Everywhere else: the rest are signed out, this one and bob stay.
    let res = laptop
        .post(
            &app.url(&format!("{SESSIONS}/revoke_others")),
            &[("authenticity_token", &csrf)],
        )
        .await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(html.contains("1 other session was signed out."), "{html}");
    assert_eq!(phone.get(&app.url(SESSIONS)).await.status(), 302);
    assert_eq!(tablet.get(&app.url(SESSIONS)).await.status(), 302);
    assert_eq!(laptop.get(&app.url(SESSIONS)).await.status(), 200);
    assert_eq!(bob.get(&app.url(SESSIONS)).await.status(), 200);
    let events: Value = app
        .client
        .get(app.url("/api/v4/audit_events?entity_type=User"))
        .private_token(&app.root_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["event_name"].as_str())
        .collect();
    assert!(names.contains(&"user_session_revoked"), "{names:?}");
    assert!(names.contains(&"user_sessions_revoked"), "{names:?}");
}
