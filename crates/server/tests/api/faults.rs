//! Server faults: 5xx in the route's dialect, naming the request id, never
//! the cause (which goes to the log).

use crate::helpers::{RequestAs, TestApp};

#[tokio::test]
async fn every_response_names_its_request() {
    let app = TestApp::spawn().await;
    let mut ids = Vec::new();
    for path in ["/api/v4/user", "/api/v4/nope", "/-/liveness"] {
        let res = app
            .client
            .get(app.url(path))
            .private_token(&app.root_token)
            .send()
            .await
            .unwrap();
        let id = res.headers()["x-request-id"].to_str().unwrap().to_owned();
        assert!(!id.is_empty(), "{path}");
        ids.push(id);
    }
    ids.dedup();
    assert_eq!(ids.len(), 3, "a new id for every request");
}

#[tokio::test]
async fn a_corrupt_row_is_a_500_with_a_request_id_not_a_400_with_the_reason() {
    let app = TestApp::spawn().await;
    let (_, token) = app.user_with_token("alice", false, "api").await;
    // A stored value latchkey cannot read: a fault of the server, not of
    // the request.
    app.raw_sql("UPDATE personal_access_tokens SET expires_at = 'not-a-date-7f3a'")
        .await;
    let res = app
        .client
        .get(app.url("/api/v4/user"))
        .private_token(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 500);
    let id = res.headers()["x-request-id"].to_str().unwrap().to_owned();
    let body = res.text().await.unwrap();
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"message": "500 Internal Server Error"})
    );
    assert_eq!(id.len(), 20);
    for leak in ["not-a-date", "expires_at", "column", "database"] {
        assert!(!body.contains(leak), "the cause leaked ({leak}): {body}");
    }
}
