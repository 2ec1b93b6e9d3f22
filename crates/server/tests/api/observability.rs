//! Metrics, request ids, trusted proxies, rate limits, the access log.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use latchkey::http::limits::LimitSettings;
use serde_json::Value;

use crate::helpers::{Options, RequestAs, TestApp};
use crate::oauth::{register, token_request};

async fn metrics(app: &TestApp) -> String {
    let res = app.client.get(app.url("/-/metrics")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/openmetrics-text"));
    res.text().await.unwrap()
}

/// The value of the series `line_start` (its name and labels, exactly).
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.split(' ').next()?.parse().ok())
}

#[tokio::test]
async fn requests_are_counted_by_route_template_method_and_status() {
    let app = TestApp::spawn().await;
    for _ in 0..3 {
        let res = app
            .client
            .get(app.url("/api/v4/user"))
            .private_token(&app.root_token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    }
    for id in [424_242, 424_243] {
        let res = app
            .client
            .get(app.url(&format!("/api/v4/user/applications/{id}")))
            .private_token(&app.root_token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 404);
    }
    let res = app
        .client
        .get(app.url("/no/such/page/12345"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let text = metrics(&app).await;
    assert_eq!(
        value(
            &text,
            r#"http_requests_total{method="GET",route="/api/v4/user",status="200"}"#
        ),
        Some(3.0),
        "{text}"
    );
    // One series for every id: the template, never the path.
    assert_eq!(
        value(
            &text,
            r#"http_requests_total{method="GET",route="/api/v4/user/applications/{id}",status="404"}"#
        ),
        Some(2.0),
        "{text}"
    );
    assert!(!text.contains("424242"), "{text}");
    assert!(!text.contains("12345"), "{text}");
    assert_eq!(
        value(
            &text,
            r#"http_requests_total{method="GET",route="unmatched",status="404"}"#
        ),
        Some(1.0)
    );
    // Durations, as a histogram with the same labels.
    assert_eq!(
        value(
            &text,
            r#"http_request_duration_seconds_bucket{le="+Inf",method="GET",route="/api/v4/user",status="200"}"#
        )
        .or_else(|| value(
            &text,
            r#"http_request_duration_seconds_bucket{method="GET",route="/api/v4/user",status="200",le="+Inf"}"#
        )),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            r#"http_request_duration_seconds_count{method="GET",route="/api/v4/user",status="200"}"#
        ),
        Some(3.0)
    );
    assert!(text.contains("# TYPE http_request_duration_seconds histogram"));
    // The database's own series.
    assert!(
        text.contains("latchkey_database_connections{state=\"idle\"}"),
        "{text}"
    );
    assert!(
        text.contains("latchkey_database_wait_seconds_count"),
        "{text}"
    );
    // The token cache is on in these tests: the second and third lookups hit.
    assert!(
        value(&text, r#"latchkey_token_cache_lookups_total{result="hit"}"#).unwrap_or(0.0) >= 2.0,
        "{text}"
    );
    // The scrape itself is counted from then on.
    let again = metrics(&app).await;
    assert!(again.contains(r#"route="/-/metrics",status="200""#));
}

#[tokio::test]
async fn grants_and_sign_ins_are_counted() {
    let app = TestApp::spawn().await;
    let client = register(&app, true, "api read_user").await;
    for _ in 0..2 {
        let (status, body, _) = token_request(
            &app,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &client.client_id),
                ("client_secret", &client.secret),
            ],
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, _, _) = token_request(
        &app,
        &[
            ("grant_type", "password"),
            ("client_id", &client.client_id),
            ("client_secret", &client.secret),
            ("username", "root"),
            ("password", "wrong-password-123"),
        ],
    )
    .await;
    assert_eq!(status, 400);
    let text = metrics(&app).await;
    assert_eq!(
        value(
            &text,
            r#"latchkey_oauth_tokens_issued_total{grant_type="client_credentials"}"#
        ),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        value(&text, r#"latchkey_sign_ins_total{outcome="failure"}"#),
        Some(1.0),
        "{text}"
    );
}

#[tokio::test]
async fn request_ids_are_echoed_or_made() {
    let app = TestApp::spawn().await;
    let res = app
        .client
        .get(app.url("/api/v4/user"))
        .header("X-Request-Id", "trace-abc_123@edge")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(res.headers()["x-request-id"], "trace-abc_123@edge");
    // Cleaned as GitLab cleans it.
    let res = app
        .client
        .get(app.url("/-/liveness"))
        .header("X-Request-Id", "a b;c<d>")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "abcd");
    // None sent: a fresh one each time.
    let ids: Vec<String> = futures::future::join_all((0..2).map(|_| async {
        let res = app.client.get(app.url("/nowhere")).send().await.unwrap();
        res.headers()["x-request-id"].to_str().unwrap().to_owned()
    }))
    .await;
    assert_eq!(ids[0].len(), 20);
    assert_ne!(ids[0], ids[1]);
}

#[tokio::test]
async fn forwarded_addresses_are_believed_only_from_trusted_proxies() {
    // Metrics are served to loopback only: a request forwarded for another
    // address is refused when, and only when, the proxy is trusted.
    let untrusted = TestApp::spawn().await;
    let res = untrusted
        .client
        .get(untrusted.url("/-/metrics"))
        .header("X-Forwarded-For", "203.0.113.9")
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        200,
        "headers from an untrusted peer are ignored"
    );
    let trusted = TestApp::spawn_with(Options {
        trusted_proxies: "127.0.0.1/32",
        ..Options::default()
    })
    .await;
    for (name, value) in [
        ("X-Forwarded-For", "127.0.0.5, 203.0.113.9"),
        ("Forwarded", "for=203.0.113.9;proto=https"),
    ] {
        let res = trusted
            .client
            .get(trusted.url("/-/metrics"))
            .header(name, value)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 404, "{name}");
    }
    // A forged entry left of the client's real address changes nothing.
    let res = trusted
        .client
        .get(trusted.url("/-/metrics"))
        .header("X-Forwarded-For", "203.0.113.9, 127.0.0.1")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let res = trusted
        .client
        .get(trusted.url("/-/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

/// `n` requests at once; their statuses, headers and bodies.
async fn burst(
    n: usize,
    make: impl Fn() -> reqwest::RequestBuilder,
) -> Vec<(u16, reqwest::header::HeaderMap, String)> {
    futures::future::join_all((0..n).map(|_| async {
        let res = make().send().await.unwrap();
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        (status, headers, res.text().await.unwrap())
    }))
    .await
}

/// The refusals among `answers`, each checked to carry `Retry-After`.
fn refusals(answers: &[(u16, reqwest::header::HeaderMap, String)]) -> Vec<&str> {
    answers
        .iter()
        .filter(|(s, _, _)| *s == 429)
        .map(|(_, h, body)| {
            let wait: u64 = h["retry-after"].to_str().unwrap().parse().unwrap();
            assert!(wait >= 1);
            body.as_str()
        })
        .collect()
}

// Limits of 2 a second, and bursts of 20 at once: however slow the
// machine, most of a burst finds its bucket empty.
#[tokio::test]
async fn limits_answer_429_in_the_route_dialect_and_are_counted() {
    let app = TestApp::spawn_with(Options {
        limits: Some(LimitSettings {
            unauthenticated: 2,
            token: 2,
            api: 2,
        }),
        trusted_proxies: "127.0.0.1/32",
        ..Options::default()
    })
    .await;
    let from = |path: &str, address: &'static str| {
        let url = app.url(path);
        let client = app.client.clone();
        move || client.get(&url).header("X-Forwarded-For", address)
    };
    // Unauthenticated, per address, in each route's dialect.
    let gitlab = burst(20, from("/api/v4/version", "198.51.100.1")).await;
    let refused = refusals(&gitlab);
    assert!(refused.len() >= 10, "{}", refused.len());
    assert!(refused.iter().all(|b| *b == "Retry later\n"));
    assert!(gitlab.iter().all(|(s, _, _)| *s == 401 || *s == 429));
    let oauth = burst(
        20,
        from("/.well-known/openid-configuration", "198.51.100.1"),
    )
    .await;
    let oauth_refused = refusals(&oauth);
    assert!(!oauth_refused.is_empty());
    for body in &oauth_refused {
        let body: Value = serde_json::from_str(body).unwrap();
        assert_eq!(body["error"], "too_many_requests");
    }
    let pages = burst(20, from("/users/sign_in", "198.51.100.1")).await;
    let pages_refused = refusals(&pages);
    assert!(!pages_refused.is_empty());
    assert!(pages_refused
        .iter()
        .all(|b| b.contains("Too many requests")));
    // Another address is not held back.
    let res = from("/oauth/discovery/keys", "198.51.100.2")()
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let unauthenticated = refused.len() + oauth_refused.len() + pages_refused.len();

    // (Made before the root token's own limit is spent.)
    let client = register(&app, true, "api").await;

    // Authenticated API requests, per token; not by the address's limit.
    let token = app.root_token.clone();
    let api = burst(20, || {
        from("/api/v4/user", "198.51.100.1")().private_token(&token)
    })
    .await;
    let api_refused = refusals(&api);
    assert!(api_refused.len() >= 10, "{}", api_refused.len());
    assert!(api_refused.iter().all(|b| *b == "Retry later\n"));
    assert!(api.iter().any(|(s, _, _)| *s == 200));

    // The token endpoint, per client.
    let tokens = burst(20, || {
        app.client.post(app.url("/oauth/token")).form(&[
            ("grant_type", "client_credentials"),
            ("client_id", client.client_id.as_str()),
            ("client_secret", client.secret.as_str()),
        ])
    })
    .await;
    let token_refused = refusals(&tokens);
    assert!(token_refused.len() >= 10, "{}", token_refused.len());
    for body in &token_refused {
        let body: Value = serde_json::from_str(body).unwrap();
        assert_eq!(body["error"], "too_many_requests");
    }
    assert!(tokens.iter().any(|(s, _, _)| *s == 200));

    // Every refusal counted, by limit and by route.
    let text = metrics(&app).await;
    let counted = |limit: &str| {
        value(
            &text,
            &format!(r#"latchkey_rate_limited_requests_total{{limit="{limit}"}}"#),
        )
    };
    assert_eq!(
        counted("unauthenticated"),
        Some(unauthenticated as f64),
        "{text}"
    );
    assert_eq!(counted("authenticated_api"), Some(api_refused.len() as f64));
    assert_eq!(counted("oauth_token"), Some(token_refused.len() as f64));
    assert_eq!(
        value(
            &text,
            r#"http_requests_total{method="GET",route="/api/v4/version",status="429"}"#
        ),
        Some(refused.len() as f64),
        "{text}"
    );
}

/// The real binary, logging JSON to a file: one access line per request,
/// with the request's id, and no secret anywhere.
#[tokio::test]
async fn the_access_log_is_json_lines_with_the_request_id_and_no_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("stderr.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let root_token = "glpat-observability-root-token-0123";
    let child = Command::new(crate::process::BIN)
        .arg("serve")
        .env("LATCHKEY_LISTEN", format!("127.0.0.1:{port}"))
        .env(
            "LATCHKEY_DATABASE_URL",
            format!("sqlite://{}?mode=rwc", dir.path().join("l.db").display()),
        )
        .env("LATCHKEY_ROOT_TOKEN", root_token)
        .env("LATCHKEY_ROOT_PASSWORD", "a-root-password-for-tests-42")
        .env("LATCHKEY_LOG", "info")
        .env("LATCHKEY_LOG_FORMAT", "json")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let mut server = crate::process::Server {
        child,
        base: format!("http://127.0.0.1:{port}"),
    };
    crate::process::wait_ready(&mut server).await;
    let client = reqwest::Client::new();
    let res = client
        .get(format!("{}/api/v4/user", server.base))
        .header("PRIVATE-TOKEN", root_token)
        .header("X-Request-Id", "access-log-test-1")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = client
        .post(format!("{}/oauth/token", server.base))
        .form(&[
            ("grant_type", "password"),
            ("username", "root"),
            ("password", "not-the-password-but-secret-looking"),
            ("client_id", "nobody"),
            ("client_secret", "a-client-secret-value-77"),
        ])
        .header("X-Request-Id", "access-log-test-2")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    // Stop as an operator does, so the writer flushes.
    let stopped = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(stopped.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    while server.child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "latchkey did not stop");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let text = std::fs::read_to_string(&log_path).unwrap();
    assert!(!text.contains('\u{1b}'), "no colours into a file");
    for secret in [
        root_token,
        "a-root-password-for-tests-42",
        "not-the-password-but-secret-looking",
        "a-client-secret-value-77",
    ] {
        assert!(!text.contains(secret), "{secret} in the log:\n{text}");
    }
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let access = |id: &str| {
        lines
            .iter()
            .find(|l| l["target"] == "latchkey::access" && l["request_id"] == id)
            .unwrap_or_else(|| panic!("no access line for {id}:\n{text}"))
            .clone()
    };
    let line = access("access-log-test-1");
    assert_eq!(line["level"], "INFO");
    assert_eq!(line["method"], "GET");
    assert_eq!(line["path"], "/api/v4/user");
    assert_eq!(line["route"], "/api/v4/user");
    assert_eq!(line["status"], 200);
    assert_eq!(line["client"], "127.0.0.1");
    assert_eq!(line["user_id"], 1);
    assert!(line["bytes"].as_u64().unwrap() > 10);
    assert!(line["duration_ms"].as_f64().unwrap() >= 0.0);
    assert!(line["timestamp"].is_string());
    let line = access("access-log-test-2");
    assert_eq!(line["status"], 401);
    assert_eq!(line["route"], "/oauth/token");
    assert!(line.get("user_id").is_none());
}

/// With `LATCHKEY_METRICS_LISTEN`, the metrics are served there and only
/// there.
#[tokio::test]
async fn metrics_can_have_a_listener_of_their_own() {
    let dir = tempfile::tempdir().unwrap();
    let free = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let metrics_port = free();
    let mut server = crate::process::start_with(
        &format!("sqlite://{}?mode=rwc", dir.path().join("l.db").display()),
        "glpat-observability-root-token-0456",
        &[(
            "LATCHKEY_METRICS_LISTEN",
            &format!("127.0.0.1:{metrics_port}"),
        )],
    );
    crate::process::wait_ready(&mut server).await;
    let client = reqwest::Client::new();
    let main = client
        .get(format!("{}/-/metrics", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(main.status(), 404);
    let own = client
        .get(format!("http://127.0.0.1:{metrics_port}/-/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(own.status(), 200);
    let text = own.text().await.unwrap();
    assert!(
        text.contains(r#"http_requests_total{method="GET",route="/-/metrics",status="404"} 1"#),
        "{text}"
    );
}
