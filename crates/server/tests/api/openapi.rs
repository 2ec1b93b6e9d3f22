//! The OpenAPI document at `/api/v4/openapi.json` describes every route
//! the router serves under `/api/v4`, `/oauth` and `/.well-known`: the
//! expected routes are read from `router.rs` itself, so a route added
//! there without a `#[utoipa::path]` annotation fails here.

use std::collections::BTreeSet;

use crate::helpers::{status_json, TestApp};

const ROUTER: &str = include_str!("../../src/http/router.rs");

/// The HTTP methods a route's method router names (`get(…)`,
/// `.post(…)`, …), OPTIONS left out: it only answers CORS preflights.
fn methods(route: &str) -> Vec<&'static str> {
    let mut found = Vec::new();
    for (name, method) in [
        ("get", "GET"),
        ("post", "POST"),
        ("put", "PUT"),
        ("delete", "DELETE"),
        ("patch", "PATCH"),
    ] {
        let call = format!("{name}(");
        let mut rest = route;
        while let Some(i) = rest.find(&call) {
            // A method router call, not `users::delete(` or `x.get_foo(`.
            let before = rest[..i].chars().next_back();
            if !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                found.push(method);
                break;
            }
            rest = &rest[i + call.len()..];
        }
    }
    found
}

/// Every `(METHOD, path)` `router.rs` routes, `/api/v4` prefixed to the
/// routes of the nested API router.
fn routed() -> BTreeSet<(String, String)> {
    let (api, app) = ROUTER
        .split_once("let app = Router::new()")
        .expect("router.rs builds `app` after `api`");
    let mut out = BTreeSet::new();
    for (prefix, part) in [("/api/v4", api), ("", app)] {
        for chunk in part.split(".route(").skip(1) {
            let chunk = chunk.trim_start();
            let Some(rest) = chunk.strip_prefix('"') else {
                continue;
            };
            let (path, body) = rest.split_once('"').unwrap();
            // A route's method router ends where the next builder call
            // (`.route`, `.merge`, `.nest`, `.layer` of the whole router)
            // starts; `split` already stopped at the next `.route(`.
            let body = body.split(".nest(").next().unwrap();
            let methods = methods(body);
            assert!(!methods.is_empty(), "no method found for {path}");
            for m in methods {
                out.insert((m.to_owned(), format!("{prefix}{path}")));
            }
        }
    }
    out
}

fn documented_here(path: &str) -> bool {
    path.starts_with("/api/v4/") || path.starts_with("/oauth/") || path.starts_with("/.well-known/")
}

#[test]
fn the_router_parse_finds_known_routes() {
    let routes = routed();
    for want in [
        ("GET", "/api/v4/version"),
        ("POST", "/api/v4/applications"),
        (
            "DELETE",
            "/api/v4/groups/{id}/applications/{application_id}/secrets/{secret_id}",
        ),
        ("PUT", "/api/v4/user/applications/{id}"),
        ("POST", "/oauth/token"),
        ("DELETE", "/oauth/authorize"),
        ("GET", "/.well-known/openid-configuration"),
        ("GET", "/api/v4/openapi.json"),
    ] {
        assert!(
            routes.contains(&(want.0.to_owned(), want.1.to_owned())),
            "{want:?} not found in router.rs: {routes:?}"
        );
    }
    assert!(!routes.contains(&("OPTIONS".to_owned(), "/oauth/token".to_owned())));
    assert!(!routes.contains(&("GET".to_owned(), "/users/{id}".to_owned())));
    assert!(routes.len() > 80, "{}", routes.len());
}

#[tokio::test]
async fn openapi_covers_every_route() {
    let app = TestApp::spawn().await;
    // Unauthenticated.
    let res = app
        .client
        .get(app.url("/api/v4/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.headers()["content-type"].to_str().unwrap(),
        "application/json"
    );
    let (status, doc) = status_json(res).await;
    assert_eq!(status, 200);
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(doc["servers"][0]["url"], app.url(""));

    let paths = doc["paths"].as_object().unwrap();
    let mut documented = BTreeSet::new();
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            if ["get", "post", "put", "delete", "patch"].contains(&method.as_str()) {
                documented.insert((method.to_uppercase(), path.clone()));
                assert!(
                    op["responses"].as_object().is_some_and(|r| !r.is_empty()),
                    "{method} {path} documents no response"
                );
                assert!(op["security"].is_array(), "{method} {path} has no security");
            }
        }
    }
    let expected: BTreeSet<_> = routed()
        .into_iter()
        .filter(|(_, path)| documented_here(path))
        .collect();
    let missing: Vec<_> = expected.difference(&documented).collect();
    assert!(
        missing.is_empty(),
        "routes without an OpenAPI annotation: {missing:?}"
    );
    // And nothing documented that is not routed (a stale annotation).
    let stale: Vec<_> = documented.difference(&expected).collect();
    assert!(stale.is_empty(), "documented but not routed: {stale:?}");

    // The error bodies are in their dialects.
    let get_user = &paths["/api/v4/users/{id}"]["get"]["responses"];
    assert_eq!(
        get_user["404"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/GitLabError"
    );
    let token = &paths["/oauth/token"]["post"];
    assert_eq!(
        token["responses"]["400"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/OAuthErrorBody"
    );
    let body = token["requestBody"]["content"].as_object().unwrap();
    assert!(body.contains_key("application/x-www-form-urlencoded"));
    assert!(body.contains_key("application/json"));
    let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
    assert_eq!(schemes["private_token"]["name"], "PRIVATE-TOKEN");
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    assert_eq!(schemes["client_basic"]["scheme"], "basic");
}

/// Found by schemathesis: inside the router nested at `/api/v4`, the
/// parameter extractor saw `/users/…` and answered `/api/v4/users/…`'s
/// bad parameters with the browser's HTML error page.
#[tokio::test]
async fn bad_parameters_under_api_v4_users_are_answered_in_json() {
    let app = TestApp::spawn().await;
    let (_, token) = app.user_with_token("boss", true, "api").await;
    for (method, path) in [
        (reqwest::Method::PUT, "/api/v4/users/1?x=%00"),
        (reqwest::Method::DELETE, "/api/v4/users/1?x=%00"),
        (
            reqwest::Method::POST,
            "/api/v4/users/1/personal_access_tokens?x=%00",
        ),
    ] {
        let res = app
            .client
            .request(method, app.url(path))
            .header("PRIVATE-TOKEN", &token)
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.headers()["content-type"].to_str().unwrap(),
            "application/json",
            "{path}"
        );
        let (status, body) = status_json(res).await;
        assert_eq!(status, 400, "{path}");
        assert_eq!(
            body["message"], "400 Bad request - parameters must not contain NUL bytes",
            "{path}"
        );
    }
}
