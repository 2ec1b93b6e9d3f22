use serde_json::json;

use crate::helpers::{status_json, Options, RequestAs, TestApp};

async fn still_serving(app: &TestApp) {
    assert_eq!(app.list_apps().await.len(), 0);
}

#[tokio::test]
async fn oversized_bodies_get_413() {
    let app = TestApp::spawn_with(Options {
        max_body_bytes: 4096,
        ..Default::default()
    })
    .await;
    let big = "n".repeat(5000);
    let res = app
        .create_app_form(
            &app.root_token,
            &[
                ("name", &big),
                ("redirect_uri", "https://x/cb"),
                ("scopes", "api"),
            ],
        )
        .await;
    assert_eq!(
        status_json(res).await,
        (413, json!({"message": "413 Request Entity Too Large"}))
    );
    // Without a Content-Length (chunked), the limit still holds.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..10).map(|_| Ok(vec![b'a'; 1000])).collect();
    let res = app
        .client
        .post(app.url("/api/v4/applications"))
        .private_token(&app.root_token)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
    still_serving(&app).await;
}

#[tokio::test]
async fn a_megabyte_name_within_a_larger_limit_is_a_validation_error() {
    let app = TestApp::spawn_with(Options {
        max_body_bytes: 4 * 1024 * 1024,
        ..Default::default()
    })
    .await;
    let big = "n".repeat(1024 * 1024);
    let res = app
        .create_app_form(
            &app.root_token,
            &[
                ("name", &big),
                ("redirect_uri", "https://x/cb"),
                ("scopes", "api"),
            ],
        )
        .await;
    assert_eq!(
        status_json(res).await,
        (
            400,
            json!({"message": {"name": ["is too long (maximum is 255 characters)"]}})
        )
    );
    still_serving(&app).await;
}

#[tokio::test]
async fn malformed_bodies_get_400() {
    let app = TestApp::spawn().await;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("application/json", b"{\"name\": ".to_vec()),
        ("application/json", b"[1,2]".to_vec()),
        ("application/json", b"\"just a string\"".to_vec()),
        ("application/json", b"{\"name\": \"\xff\"}".to_vec()),
        (
            "multipart/form-data; boundary=xyz",
            b"--xyz\r\nbroken".to_vec(),
        ),
    ];
    for (ct, body) in cases {
        let res = app
            .client
            .post(app.url("/api/v4/applications"))
            .private_token(&app.root_token)
            .header("Content-Type", ct)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        let (status, got) = status_json(res).await;
        assert_eq!(
            status,
            400,
            "{ct} {:?}: {got}",
            String::from_utf8_lossy(&body)
        );
    }
    still_serving(&app).await;
}

#[tokio::test]
async fn invalid_utf8_and_nul_bytes_get_400() {
    let app = TestApp::spawn().await;
    let bodies: Vec<(&str, &[u8])> = vec![
        (
            "application/x-www-form-urlencoded",
            b"name=%FF%FE&redirect_uri=https://x/cb&scopes=api",
        ),
        (
            "application/x-www-form-urlencoded",
            b"name=\xff&redirect_uri=https://x/cb&scopes=api",
        ),
        (
            "application/x-www-form-urlencoded",
            b"name=a%00b&redirect_uri=https://x/cb&scopes=api",
        ),
        (
            "application/json",
            b"{\"name\":\"a\\u0000b\",\"redirect_uri\":\"https://x/cb\",\"scopes\":\"api\"}",
        ),
    ];
    for (ct, body) in bodies {
        let res = app
            .client
            .post(app.url("/api/v4/applications"))
            .private_token(&app.root_token)
            .header("Content-Type", ct)
            .body(body.to_vec())
            .send()
            .await
            .unwrap();
        let (status, got) = status_json(res).await;
        assert_eq!(status, 400, "{:?}", String::from_utf8_lossy(body));
        assert!(
            got["message"]
                .as_str()
                .unwrap()
                .starts_with("400 Bad request - "),
            "{got}"
        );
    }
    still_serving(&app).await;
}

#[tokio::test]
async fn thousands_of_redirect_uris_are_refused() {
    let app = TestApp::spawn().await;
    let uris: Vec<String> = (0..5000)
        .map(|i| format!("https://h{i}.example/cb"))
        .collect();
    let res = app
        .create_app_form(
            &app.root_token,
            &[
                ("name", "many"),
                ("redirect_uri", &uris.join("\n")),
                ("scopes", "api"),
            ],
        )
        .await;
    assert_eq!(
        status_json(res).await,
        (
            400,
            json!({"message": {"redirect_uri": ["is too long (maximum is 100 URIs)"]}})
        )
    );
    still_serving(&app).await;
}

#[tokio::test]
async fn unknown_routes_and_wrong_methods_are_gitlab_404s() {
    let app = TestApp::spawn().await;
    let t = &app.root_token;
    let reqs = vec![
        app.client.get(app.url("/api/v4/nope")),
        // Outside the API a browser gets an HTML page (`web_pages`); a
        // client asking for JSON gets GitLab's JSON.
        app.client
            .get(app.url("/nope"))
            .header("accept", "application/json"),
        app.client
            .put(app.url("/api/v4/applications"))
            .private_token(t),
        app.client
            .get(app.url("/api/v4/applications/1"))
            .private_token(t),
        app.client
            .patch(app.url("/api/v4/applications/1"))
            .private_token(t),
        app.client
            .get(app.url("/api/v4/applications/1/renew-secret"))
            .private_token(t),
    ];
    for req in reqs {
        assert_eq!(
            status_json(req.send().await.unwrap()).await,
            (404, json!({"error": "404 Not Found"}))
        );
    }
}
