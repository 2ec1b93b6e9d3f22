//! Issue 13, item 1: a write racing the delete of its parent answers what
//! it would have answered a moment later, never 5xx (on both backends).

use futures::future::join_all;

use crate::helpers::{RequestAs, TestApp};
use crate::oauth::register;

const ROUNDS: usize = 8;
const WRITERS: usize = 8;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_credentials_racing_the_applications_delete() {
    let app = TestApp::spawn().await;
    for round in 0..ROUNDS {
        let client = register(&app, true, "api").await;
        let grants = (0..WRITERS).map(|_| {
            app.client
                .post(app.url("/oauth/token"))
                .basic_auth(&client.client_id, Some(&client.secret))
                .form(&[("grant_type", "client_credentials")])
                .send()
        });
        let delete = app
            .client
            .delete(app.url(&format!("/api/v4/applications/{}", client.id)))
            .private_token(&app.root_token)
            .send();
        let (answers, deleted) = tokio::join!(join_all(grants), delete);
        assert_eq!(deleted.unwrap().status(), 204);
        let mut refused = 0;
        for a in answers {
            let a = a.unwrap();
            refused += usize::from(a.status() == 401);
            let status = a.status().as_u16();
            let body = a.text().await.unwrap();
            assert!(
                status == 200 || (status == 401 && body.contains("invalid_client")),
                "round {round}: {status} {body}"
            );
        }
        eprintln!("round {round}: {refused} of {WRITERS} grants came after the delete");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_and_applications_racing_the_users_delete() {
    let app = TestApp::spawn().await;
    for round in 0..ROUNDS {
        let (user_id, token) = app
            .user_with_token(&format!("racer{round}"), false, "api")
            .await;
        let pats = (0..WRITERS).map(|i| {
            app.client
                .post(app.url(&format!("/api/v4/users/{user_id}/personal_access_tokens")))
                .private_token(&app.root_token)
                .form(&[("name", format!("t{i}").as_str()), ("scopes", "api")])
                .send()
        });
        let apps = (0..WRITERS).map(|i| {
            app.client
                .post(app.url("/api/v4/user/applications"))
                .private_token(&token)
                .form(&[
                    ("name", format!("a{i}").as_str()),
                    ("redirect_uri", "https://r.example/cb"),
                    ("scopes", "api"),
                ])
                .send()
        });
        let delete = app
            .client
            .delete(app.url(&format!("/api/v4/users/{user_id}")))
            .private_token(&app.root_token)
            .send();
        let (pats, apps, deleted) = tokio::join!(join_all(pats), join_all(apps), delete);
        assert_eq!(deleted.unwrap().status(), 204);
        for a in pats {
            let status = a.unwrap().status().as_u16();
            assert!(matches!(status, 201 | 404), "round {round}: token {status}");
        }
        for a in apps {
            let status = a.unwrap().status().as_u16();
            assert!(
                matches!(status, 201 | 401),
                "round {round}: application {status}"
            );
        }
    }
}
