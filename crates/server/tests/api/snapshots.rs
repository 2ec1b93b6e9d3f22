//! The JSON bodies of `/api/v4`, pinned in `tests/api/snapshots/`: a wire
//! change shows as a diff of a snapshot file to review (and, once it is
//! meant, to accept). Values that differ between runs (secrets, client
//! ids, timestamps, the server's address) are redacted; ids are not, as a
//! fresh database numbers them alike on both backends.

use insta::assert_json_snapshot;
use serde_json::Value;

use crate::helpers::{RequestAs, TestApp};

async fn json(res: reqwest::Response) -> (u16, Value) {
    let status = res.status().as_u16();
    (status, res.json().await.unwrap())
}

#[tokio::test]
async fn api_v4_bodies() {
    let app = TestApp::spawn().await;
    let root = app.root_token.clone();
    let get = |path: &str| app.client.get(app.url(path)).private_token(&root).send();

    let (status, created) = json(
        app.client
            .post(app.url("/api/v4/applications"))
            .private_token(&root)
            .form(&[
                ("name", "Snapshot"),
                ("redirect_uri", "https://snap.example/cb"),
                ("scopes", "api read_user"),
                ("confidential", "true"),
            ])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201);
    assert_json_snapshot!("application_created", created, {
        ".application_id" => "[client id]",
        ".secret" => "[secret]",
    });

    let (_, list) = json(get("/api/v4/applications").await.unwrap()).await;
    assert_json_snapshot!("applications_listed", list, {
        "[].application_id" => "[client id]",
    });

    let (_, me) = json(get("/api/v4/user").await.unwrap()).await;
    assert_json_snapshot!("current_user", me, {
        ".created_at" => "[timestamp]",
        ".web_url" => "[url]",
        ".last_sign_in_at" => "[timestamp]",
        ".current_sign_in_at" => "[timestamp]",
        ".confirmed_at" => "[timestamp]",
        ".last_activity_on" => "[date]",
    });

    let (status, token) = json(
        app.client
            .post(app.url("/api/v4/users/1/personal_access_tokens"))
            .private_token(&root)
            .form(&[("name", "snap"), ("scopes[]", "read_api")])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201);
    assert_json_snapshot!("personal_access_token_created", token, {
        ".token" => "[token]",
        ".created_at" => "[timestamp]",
        ".expires_at" => "[date]",
    });

    // Errors, in GitLab's shapes.
    let (_, not_found) = json(get("/api/v4/applications/999/renew-secret").await.unwrap()).await;
    assert_json_snapshot!("no_such_route", not_found);
    let (_, validation) = json(
        app.client
            .post(app.url("/api/v4/applications"))
            .private_token(&root)
            .form(&[
                ("name", "Bad"),
                ("redirect_uri", "not a uri"),
                ("scopes", "api"),
            ])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_json_snapshot!("validation_error", validation);
    let (_, missing) = json(
        app.client
            .post(app.url("/api/v4/applications"))
            .private_token(&root)
            .form(&[("name", "Bad")])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_json_snapshot!("missing_parameters", missing);
    let (_, unauthorized) = json(
        app.client
            .get(app.url("/api/v4/user"))
            .private_token("glpat-not-a-token-of-this-server")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_json_snapshot!("unauthorized", unauthorized);
}
