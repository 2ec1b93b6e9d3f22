//! The OAuth 2 provider end to end: browser sign-in and consent, the token
//! endpoint's grants, and the attacks RFC 9700 warns about.

use latchkey_core::user::UserInput;
use reqwest::redirect::Policy;
use reqwest::{Client, Response};
use serde_json::{json, Value};

use crate::helpers::{status_json, RequestAs, TestApp};

pub const CB: &str = "https://client.example/cb";
pub const PASSWORD: &str = "correct horse battery";
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// A browser: no automatic redirects, cookies kept by hand.
pub struct Browser {
    client: Client,
    cookies: Vec<(String, String)>,
}

pub fn hidden(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(
        html[start..end]
            .replace("&#x2f;", "/")
            .replace("&#38;", "&")
            .replace("&amp;", "&")
            .replace("&#43;", "+"),
    )
}

/// The value of the input whose id is `id` (a secret shown once).
pub fn input_value(html: &str, id: &str) -> Option<String> {
    let at = html.find(&format!("id=\"{id}\""))?;
    let rest = &html[at..];
    let v = rest.find("value=\"")? + 7;
    let end = rest[v..].find('"')?;
    Some(rest[v..v + end].to_owned())
}

pub fn location(res: &Response) -> String {
    res.headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

pub fn query_param(url: &str, key: &str) -> Option<String> {
    let q = url.split_once('?')?.1;
    form_urlencoded::parse(q.as_bytes())
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

impl Browser {
    pub fn new() -> Self {
        Self {
            client: Client::builder().redirect(Policy::none()).build().unwrap(),
            cookies: Vec::new(),
        }
    }

    /// Set a cookie by hand (as an attacker on a sibling host could).
    pub fn set_cookie(&mut self, name: &str, value: &str) {
        self.cookies.retain(|(n, _)| n != name);
        self.cookies.push((name.to_owned(), value.to_owned()));
    }

    /// The session cookie's value, if signed in.
    pub fn session(&self) -> Option<String> {
        self.cookies
            .iter()
            .find(|(n, _)| n == "_latchkey_session")
            .map(|(_, v)| v.clone())
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep(&mut self, res: &Response) {
        for v in res.headers().get_all("set-cookie") {
            let pair = v.to_str().unwrap().split(';').next().unwrap().to_owned();
            let (k, val) = pair.split_once('=').unwrap();
            self.cookies.retain(|(n, _)| n != k);
            if !val.is_empty() {
                self.cookies.push((k.to_owned(), val.to_owned()));
            }
        }
    }

    pub async fn get(&mut self, url: &str) -> Response {
        let res = self
            .client
            .get(url)
            .header("Cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        self.keep(&res);
        res
    }

    pub async fn post(&mut self, url: &str, form: &[(&str, &str)]) -> Response {
        let res = self
            .client
            .post(url)
            .header("Cookie", self.cookie_header())
            .form(form)
            .send()
            .await
            .unwrap();
        self.keep(&res);
        res
    }

    pub async fn sign_in(&mut self, app: &TestApp, login: &str, password: &str) -> Response {
        let page = self
            .get(&app.url("/users/sign_in"))
            .await
            .text()
            .await
            .unwrap();
        let token = hidden(&page, "authenticity_token").unwrap();
        self.post(
            &app.url("/users/sign_in"),
            &[
                ("authenticity_token", &token),
                ("user[login]", login),
                ("user[password]", password),
                ("return_to", "/"),
            ],
        )
        .await
    }

    /// GET the authorize URL; on a consent page, press `decision`.
    pub async fn authorize(&mut self, app: &TestApp, query: &str, decision: &str) -> Response {
        let res = self
            .get(&app.url(&format!("/oauth/authorize?{query}")))
            .await;
        if res.status() != 200 {
            return res;
        }
        let html = res.text().await.unwrap();
        assert!(html.contains("Authorize"), "{html}");
        let mut form: Vec<(String, String)> = Vec::new();
        for name in [
            "authenticity_token",
            "client_id",
            "redirect_uri",
            "response_type",
            "state",
            "scope",
            "code_challenge",
            "code_challenge_method",
            "nonce",
        ] {
            if let Some(v) = hidden(&html, name) {
                form.push((name.to_owned(), v));
            }
        }
        form.push(("decision".to_owned(), decision.to_owned()));
        let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        self.post(&app.url("/oauth/authorize"), &pairs).await
    }
}

pub struct Client2 {
    pub id: i64,
    pub client_id: String,
    pub secret: String,
}

pub async fn register(app: &TestApp, confidential: bool, scopes: &str) -> Client2 {
    let conf = if confidential { "true" } else { "false" };
    let res = app
        .create_app_form(
            &app.root_token,
            &[
                ("name", "Client"),
                ("redirect_uri", CB),
                ("scopes", scopes),
                ("confidential", conf),
            ],
        )
        .await;
    let (status, body) = status_json(res).await;
    assert_eq!(status, 201, "{body}");
    Client2 {
        id: body["id"].as_i64().unwrap(),
        client_id: body["application_id"].as_str().unwrap().to_owned(),
        secret: body["secret"].as_str().unwrap().to_owned(),
    }
}

pub async fn user_with_password(app: &TestApp, username: &str) {
    app.services
        .create_user(
            &latchkey_core::context::Context::system(),
            &UserInput {
                username: username.into(),
                email: format!("{username}@example.com"),
                name: username.into(),
                password: Some(PASSWORD.into()),
                admin: false,
                ..Default::default()
            },
        )
        .await
        .unwrap();
}

fn authorize_query(client_id: &str, extra: &str) -> String {
    format!(
        "client_id={client_id}&redirect_uri={}&response_type=code&state=xyz&scope=read_user{extra}",
        urlencode(CB)
    )
}

pub fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Sign in as a fresh user and get a code for `client` (with PKCE S256).
pub async fn code_for(app: &TestApp, client: &Client2, username: &str) -> String {
    user_with_password(app, username).await;
    let mut b = Browser::new();
    assert_eq!(b.sign_in(app, username, PASSWORD).await.status(), 302);
    let query = authorize_query(
        &client.client_id,
        &format!("&code_challenge={CHALLENGE}&code_challenge_method=S256"),
    );
    let res = b.authorize(app, &query, "authorize").await;
    assert_eq!(res.status(), 302);
    let loc = location(&res);
    assert!(loc.starts_with(CB), "{loc}");
    assert_eq!(query_param(&loc, "state").as_deref(), Some("xyz"));
    query_param(&loc, "code").unwrap()
}

pub async fn token_request(
    app: &TestApp,
    form: &[(&str, &str)],
) -> (u16, Value, reqwest::header::HeaderMap) {
    let res = app
        .client
        .post(app.url("/oauth/token"))
        .form(form)
        .send()
        .await
        .unwrap();
    let headers = res.headers().clone();
    let (status, body) = status_json(res).await;
    (status, body, headers)
}

pub async fn exchange(app: &TestApp, client: &Client2, code: &str) -> (u16, Value) {
    let (s, b, _) = token_request(
        app,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", CB),
            ("client_id", &client.client_id),
            ("client_secret", &client.secret),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    (s, b)
}

pub async fn api_user(app: &TestApp, access: &str) -> (u16, Value) {
    let res = app
        .client
        .get(app.url("/api/v4/user"))
        .header("Authorization", format!("Bearer {access}"))
        .send()
        .await
        .unwrap();
    status_json(res).await
}

#[tokio::test]
async fn authorization_code_with_pkce_signs_a_user_in() {
    let app = TestApp::spawn().await;
    let client = register(&app, true, "api read_user openid").await;
    let code = code_for(&app, &client, "alice").await;
    let (status, body, headers) = token_request(
        &app,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", CB),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].clone()),
        (401, json!("invalid_client")),
        "no client authentication"
    );
    assert!(headers.contains_key("www-authenticate"));
    // HTTP Basic client authentication.
    let res = app
        .client
        .post(app.url("/oauth/token"))
        .basic_auth(&client.client_id, Some(&client.secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", CB),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["cache-control"], "no-store, no-cache");
    assert_eq!(res.headers()["pragma"], "no-cache");
    let (status, body) = status_json(res).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 7200);
    assert_eq!(body["scope"], "read_user");
    assert!(body["created_at"].as_i64().unwrap() > 1_700_000_000);
    let access = body["access_token"].as_str().unwrap();
    assert_eq!(access.len(), 64);
    assert!(body["refresh_token"].as_str().unwrap().len() == 64);
    // "Sign in with GitLab": the token reads the user, and nothing more.
    let (status, me) = api_user(&app, access).await;
    assert_eq!((status, me["username"].clone()), (200, json!("alice")));
    let res = app
        .client
        .get(app.url(&format!("/api/v4/user?access_token={access}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = app
        .client
        .get(app.url("/api/v4/user/applications"))
        .bearer(access)
        .send()
        .await
        .unwrap();
    assert_eq!(status_json(res).await.1["error"], "insufficient_scope");
}

#[tokio::test]
async fn a_replayed_code_fails_and_revokes_what_it_issued() {
    let app = TestApp::spawn().await;
    let client = register(&app, true, "read_user").await;
    let code = code_for(&app, &client, "alice").await;
    let (status, first) = exchange(&app, &client, &code).await;
    assert_eq!(status, 200);
    let (status, again) = exchange(&app, &client, &code).await;
    assert_eq!(
        (status, again["error"].clone()),
        (400, json!("invalid_grant"))
    );
    let (status, body) = api_user(&app, first["access_token"].as_str().unwrap()).await;
    assert_eq!(
        (status, body["error_description"].clone()),
        (
            401,
            json!("Token was revoked. You have to re-authorize from the user.")
        )
    );
    let (status, body, _) = token_request(
        &app,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", first["refresh_token"].as_str().unwrap()),
            ("client_id", &client.client_id),
            ("client_secret", &client.secret),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].clone()),
        (400, json!("invalid_grant"))
    );
}

#[tokio::test]
async fn pkce_is_enforced_and_cannot_be_downgraded() {
    let app = TestApp::spawn().await;
    let public = register(&app, false, "read_user").await;
    let confidential = register(&app, true, "read_user").await;
    user_with_password(&app, "alice").await;
    let mut b = Browser::new();
    b.sign_in(&app, "alice", PASSWORD).await;

    // A public client must use PKCE.
    let res = b
        .authorize(&app, &authorize_query(&public.client_id, ""), "authorize")
        .await;
    assert_eq!(res.status(), 302);
    let loc = location(&res);
    assert_eq!(
        query_param(&loc, "error").as_deref(),
        Some("invalid_request")
    );
    assert_eq!(
        query_param(&loc, "error_description").as_deref(),
        Some("Code challenge is required.")
    );
    assert_eq!(query_param(&loc, "state").as_deref(), Some("xyz"));
    // An unsupported method.
    let res = b
        .authorize(
            &app,
            &authorize_query(
                &public.client_id,
                &format!("&code_challenge={CHALLENGE}&code_challenge_method=S512"),
            ),
            "authorize",
        )
        .await;
    assert_eq!(
        query_param(&location(&res), "error").as_deref(),
        Some("invalid_request")
    );

    // With a challenge: the verifier is required and must match.
    let q = authorize_query(
        &public.client_id,
        &format!("&code_challenge={CHALLENGE}&code_challenge_method=S256"),
    );
    let code = query_param(&location(&b.authorize(&app, &q, "authorize").await), "code").unwrap();
    let base = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", CB),
        ("client_id", public.client_id.as_str()),
    ];
    let (status, body, _) = token_request(&app, &base).await;
    assert_eq!(
        (status, body),
        (
            400,
            json!({"error": "invalid_request", "error_description": "Missing required parameter: code_verifier."})
        )
    );
    let mut wrong = base.to_vec();
    wrong.push((
        "code_verifier",
        "wrong-verifier-wrong-verifier-wrong-verifier-00",
    ));
    assert_eq!(
        token_request(&app, &wrong).await.1["error"],
        "invalid_grant"
    );
    let mut right = base.to_vec();
    right.push(("code_verifier", VERIFIER));
    let (status, body, _) = token_request(&app, &right).await;
    assert_eq!(status, 200, "{body}");

    // A confidential client without PKCE; a verifier for that code is a downgrade.
    let q = authorize_query(&confidential.client_id, "");
    let code = query_param(&location(&b.authorize(&app, &q, "authorize").await), "code").unwrap();
    let (status, body, _) = token_request(
        &app,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", CB),
            ("client_id", &confidential.client_id),
            ("client_secret", &confidential.secret),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].clone()),
        (400, json!("invalid_grant"))
    );
}

#[tokio::test]
async fn codes_are_bound_to_their_client_and_redirect_uri() {
    let app = TestApp::spawn().await;
    let client = register(&app, true, "read_user").await;
    let other = register(&app, true, "read_user").await;
    let code = code_for(&app, &client, "alice").await;
    // Another client cannot redeem it.
    let (status, body) = exchange(&app, &other, &code).await;
    assert_eq!(
        (status, body["error"].clone()),
        (400, json!("invalid_grant"))
    );
    // A different redirect_uri is refused, and a missing one too.
    let form = |uri: &'static str| {
        vec![
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", uri),
            ("client_id", client.client_id.as_str()),
            ("client_secret", client.secret.as_str()),
            ("code_verifier", VERIFIER),
        ]
    };
    assert_eq!(
        token_request(&app, &form("https://client.example/other"))
            .await
            .1["error"],
        "invalid_grant"
    );
    assert_eq!(
        token_request(&app, &form("")).await.1["error"],
        "invalid_request"
    );
    // The failures did not burn it: the rightful exchange still works.
    let (status, _) = exchange(&app, &client, &code).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn untrusted_redirects_are_never_followed() {
    let app = TestApp::spawn().await;
    let client = register(&app, true, "read_user").await;
    user_with_password(&app, "alice").await;
    let mut b = Browser::new();
    b.sign_in(&app, "alice", PASSWORD).await;
    let cases = [
        format!(
            "client_id={}&redirect_uri={}&response_type=code",
            client.client_id,
            urlencode("https://evil.example/cb")
        ),
        format!(
            "client_id={}&redirect_uri={}&response_type=code",
            client.client_id,
            urlencode("https://client.example/cb/../evil")
        ),
        format!(
            "client_id={}&redirect_uri={}&response_type=code",
            client.client_id,
            urlencode("https://client.example.evil.example/cb")
        ),
        format!("client_id={}&response_type=code", client.client_id),
        format!(
            "client_id=unknown&redirect_uri={}&response_type=code",
            urlencode(CB)
        ),
        format!("redirect_uri={}&response_type=code", urlencode(CB)),
    ];
    for q in cases {
        let res = b.get(&app.url(&format!("/oauth/authorize?{q}"))).await;
        assert_eq!(res.status(), 400, "{q}");
        assert!(res.headers().get("location").is_none(), "{q}");
        assert_eq!(res.headers()["x-frame-options"], "DENY");
        let html = res.text().await.unwrap();
        assert!(html.contains("An error has occurred"), "{html}");
    }
    // Later errors go back to the (trusted) redirect URI with the state.
    let res = b
        .get(&app.url(&format!(
            "/oauth/authorize?client_id={}&redirect_uri={}&response_type=token&state=s1",
            client.client_id,
            urlencode(CB)
        )))
        .await;
    let loc = location(&res);
    assert!(loc.starts_with(CB));
    assert_eq!(
        query_param(&loc, "error").as_deref(),
        Some("unsupported_response_type")
    );
    assert_eq!(query_param(&loc, "state").as_deref(), Some("s1"));
    let res = b
        .get(&app.url(&format!(
            "/oauth/authorize?client_id={}&redirect_uri={}&response_type=code&scope=api&state=s2",
            client.client_id,
            urlencode(CB)
        )))
        .await;
    assert_eq!(
        query_param(&location(&res), "error").as_deref(),
        Some("invalid_scope")
    );
    // Open redirects after sign-in are refused.
    for target in [
        "https://evil.example/",
        "//evil.example/",
        "/\\evil.example",
    ] {
        let mut b2 = Browser::new();
        let page = b2
            .get(&app.url("/users/sign_in"))
            .await
            .text()
            .await
            .unwrap();
        let token = hidden(&page, "authenticity_token").unwrap();
        let res = b2
            .post(
                &app.url("/users/sign_in"),
                &[
                    ("authenticity_token", &token),
                    ("user[login]", "alice"),
                    ("user[password]", PASSWORD),
                    ("return_to", target),
                ],
            )
            .await;
        assert_eq!(
            (res.status().as_u16(), location(&res)),
            (302, "/".to_owned()),
            "{target}"
        );
    }
}

#[tokio::test]
async fn sign_in_then_consent_or_deny() {
    let app = TestApp::spawn().await;
    let client = register(&app, true, "read_user").await;
    user_with_password(&app, "alice").await;
    let mut b = Browser::new();
    // Not signed in: sent to sign in and back.
    let q = authorize_query(&client.client_id, "");
    let res = b.get(&app.url(&format!("/oauth/authorize?{q}"))).await;
    assert_eq!(res.status(), 302);
    let loc = location(&res);
    assert!(loc.starts_with("/users/sign_in?return_to="), "{loc}");
    let return_to = query_param(&loc, "return_to").unwrap();
    assert!(return_to.starts_with("/oauth/authorize?"));
    // The sign-in page, and a wrong password.
    let res = b.get(&app.url(&loc)).await;
    assert_eq!(res.headers()["cache-control"], "no-store");
    let csp = res.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    let set = res.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Lax") && !set.contains("Secure"),
        "{set}"
    );
    let html = res.text().await.unwrap();
    let token = hidden(&html, "authenticity_token").unwrap();
    assert_eq!(hidden(&html, "return_to").unwrap(), return_to);
    let res = b
        .post(
            &app.url("/users/sign_in"),
            &[
                ("authenticity_token", &token),
                ("user[login]", "alice"),
                ("user[password]", "wrong password!"),
                ("return_to", &return_to),
            ],
        )
        .await;
    assert_eq!(res.status(), 401);
    assert!(res
        .text()
        .await
        .unwrap()
        .contains("Invalid login or password."));
    // Email works as the login too; then back to the authorization.
    let res = b
        .post(
            &app.url("/users/sign_in"),
            &[
                ("authenticity_token", &token),
                ("user[login]", "alice@example.com"),
                ("user[password]", PASSWORD),
                ("return_to", &return_to),
            ],
        )
        .await;
    assert_eq!(
        (res.status().as_u16(), location(&res)),
        (302, return_to.clone())
    );
    let res = b.get(&app.url(&return_to)).await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(
        html.contains("Authorize Client") && html.contains("Read your profile"),
        "{html}"
    );
    // Deny.
    let res = b.authorize(&app, &q, "deny").await;
    let loc = location(&res);
    assert!(loc.starts_with(CB));
    assert_eq!(query_param(&loc, "error").as_deref(), Some("access_denied"));
    assert_eq!(query_param(&loc, "state").as_deref(), Some("xyz"));
    assert!(query_param(&loc, "code").is_none());
    // Sign out: the authorization asks for sign-in again.
    let home = b.get(&app.url("/")).await.text().await.unwrap();
    assert!(home.contains("Signed in as alice"));
    let token = hidden(&home, "authenticity_token").unwrap();
    let res = b
        .post(
            &app.url("/users/sign_out"),
            &[("authenticity_token", &token)],
        )
        .await;
    assert_eq!(location(&res), "/users/sign_in");
    let res = b.get(&app.url(&format!("/oauth/authorize?{q}"))).await;
    assert!(location(&res).starts_with("/users/sign_in"));
}

#[tokio::test]
async fn the_consent_form_resists_csrf() {
    let app = TestApp::spawn().await;
    let client = register(&app, true, "read_user").await;
    user_with_password(&app, "alice").await;
    let mut b = Browser::new();
    b.sign_in(&app, "alice", PASSWORD).await;
    let fields = [
        ("client_id", client.client_id.as_str()),
        ("redirect_uri", CB),
        ("response_type", "code"),
        ("scope", "read_user"),
        ("decision", "authorize"),
    ];
    let mut forged = fields.to_vec();
    forged.push(("authenticity_token", "forged"));
    for form in [fields.to_vec(), forged] {
        let res = b.post(&app.url("/oauth/authorize"), &form).await;
        assert_eq!(res.status(), 422);
        assert!(res.headers().get("location").is_none());
    }
    // The sign-in form needs its token too.
    let res = Browser::new()
        .post(
            &app.url("/users/sign_in"),
            &[("user[login]", "alice"), ("user[password]", PASSWORD)],
        )
        .await;
    assert_eq!(res.status(), 422);
}

#[tokio::test]
async fn trusted_applications_skip_consent() {
    let app = TestApp::spawn().await;
    let client = register(&app, true, "read_user").await;
    let res = app
        .client
        .put(app.url(&format!("/api/v4/applications/{}", client.id)))
        .private_token(&app.root_token)
        .form(&[("trusted", "true")])
        .send()
        .await
        .unwrap();
    let (status, body) = status_json(res).await;
    assert_eq!((status, body["trusted"].clone()), (200, json!(true)));
    user_with_password(&app, "alice").await;
    let mut b = Browser::new();
    b.sign_in(&app, "alice", PASSWORD).await;
    let res = b
        .get(&app.url(&format!(
            "/oauth/authorize?{}",
            authorize_query(&client.client_id, "")
        )))
        .await;
    assert_eq!(res.status(), 302);
    assert!(query_param(&location(&res), "code").is_some());
}

#[tokio::test]
async fn refresh_rotates_and_detects_reuse() {
    let app = TestApp::spawn().await;
    let client = register(&app, true, "read_user").await;
    let code = code_for(&app, &client, "alice").await;
    let (_, first) = exchange(&app, &client, &code).await;
    let refresh = |token: String| {
        let form = [
            ("grant_type".to_owned(), "refresh_token".to_owned()),
            ("refresh_token".to_owned(), token),
            ("client_id".to_owned(), client.client_id.clone()),
            ("client_secret".to_owned(), client.secret.clone()),
        ];
        let app = &app;
        async move {
            let pairs: Vec<(&str, &str)> =
                form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let (s, b, _) = token_request(app, &pairs).await;
            (s, b)
        }
    };
    let (status, second) = refresh(first["refresh_token"].as_str().unwrap().to_owned()).await;
    assert_eq!(status, 200, "{second}");
    assert_ne!(second["access_token"], first["access_token"]);
    assert_ne!(second["refresh_token"], first["refresh_token"]);
    // The old access token works until the new one is used.
    assert_eq!(
        api_user(&app, first["access_token"].as_str().unwrap())
            .await
            .0,
        200
    );
    assert_eq!(
        api_user(&app, second["access_token"].as_str().unwrap())
            .await
            .0,
        200
    );
    assert_eq!(
        api_user(&app, first["access_token"].as_str().unwrap())
            .await
            .0,
        401
    );
    // Reusing the rotated refresh token revokes the whole family.
    let (status, body) = refresh(first["refresh_token"].as_str().unwrap().to_owned()).await;
    assert_eq!(
        (status, body["error"].clone()),
        (400, json!("invalid_grant"))
    );
    assert_eq!(
        api_user(&app, second["access_token"].as_str().unwrap())
            .await
            .0,
        401
    );
    let (status, _) = refresh(second["refresh_token"].as_str().unwrap().to_owned()).await;
    assert_eq!(status, 400);
    // Another client cannot use a refresh token; a narrower scope is fine, a wider one not.
    let code = code_for(&app, &client, "bob").await;
    let (_, fresh) = exchange(&app, &client, &code).await;
    let other = register(&app, true, "read_user").await;
    let (status, body, _) = token_request(
        &app,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", fresh["refresh_token"].as_str().unwrap()),
            ("client_id", &other.client_id),
            ("client_secret", &other.secret),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].clone()),
        (400, json!("invalid_grant"))
    );
    let (status, body, _) = token_request(
        &app,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", fresh["refresh_token"].as_str().unwrap()),
            ("client_id", &client.client_id),
            ("client_secret", &client.secret),
            ("scope", "api"),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].clone()),
        (400, json!("invalid_scope"))
    );
}

#[tokio::test]
async fn client_credentials_and_password_grants() {
    let app = TestApp::spawn().await;
    let confidential = register(&app, true, "api read_user").await;
    let public = register(&app, false, "api read_user").await;
    let (status, body, _) = token_request(
        &app,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &confidential.client_id),
            ("client_secret", &confidential.secret),
            ("scope", "read_user"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("refresh_token").is_none());
    assert_eq!(body["scope"], "read_user");
    // An application token acts as no user.
    assert_eq!(
        api_user(&app, body["access_token"].as_str().unwrap()).await,
        (401, json!({"message": "401 Unauthorized"}))
    );
    let (status, body, _) = token_request(
        &app,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &public.client_id),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].clone()),
        (401, json!("unauthorized_client"))
    );
    let (status, body, _) = token_request(
        &app,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &confidential.client_id),
            ("client_secret", "gloas-wrong"),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].clone()),
        (401, json!("invalid_client"))
    );

    user_with_password(&app, "alice").await;
    let pw = |password: &'static str| {
        let id = confidential.client_id.clone();
        let secret = confidential.secret.clone();
        let app = &app;
        async move {
            token_request(
                app,
                &[
                    ("grant_type", "password"),
                    ("username", "alice"),
                    ("password", password),
                    ("client_id", &id),
                    ("client_secret", &secret),
                ],
            )
            .await
        }
    };
    let (status, body, _) = pw(PASSWORD).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["scope"], "api");
    assert!(body["refresh_token"].is_string());
    assert_eq!(
        api_user(&app, body["access_token"].as_str().unwrap())
            .await
            .1["username"],
        "alice"
    );
    let (status, body, _) = pw("wrong password").await;
    assert_eq!(
        (status, body["error"].clone()),
        (400, json!("invalid_grant"))
    );
}

#[tokio::test]
async fn token_endpoint_errors() {
    let app = TestApp::spawn().await;
    let client = register(&app, true, "read_user").await;
    type Case<'a> = (Vec<(&'a str, &'a str)>, u16, &'a str);
    let cases: Vec<Case> = vec![
        (vec![], 400, "invalid_request"),
        (
            vec![("grant_type", "implicit")],
            400,
            "unsupported_grant_type",
        ),
        (
            vec![("grant_type", "authorization_code")],
            400,
            "invalid_request",
        ),
        (
            vec![
                ("grant_type", "authorization_code"),
                ("code", "nope"),
                ("client_id", &client.client_id),
                ("client_secret", &client.secret),
            ],
            400,
            "invalid_grant",
        ),
        (
            vec![
                ("grant_type", "authorization_code"),
                ("code", "nope"),
                ("client_id", "unknown"),
            ],
            401,
            "invalid_client",
        ),
        (
            vec![
                ("grant_type", "refresh_token"),
                ("refresh_token", "nope"),
                ("client_id", &client.client_id),
                ("client_secret", &client.secret),
            ],
            400,
            "invalid_grant",
        ),
    ];
    for (form, status, error) in cases {
        let (s, body, headers) = token_request(&app, &form).await;
        assert_eq!(
            (s, body["error"].as_str().unwrap()),
            (status, error),
            "{form:?}"
        );
        assert!(body["error_description"].is_string());
        assert_eq!(headers["cache-control"], "no-store, no-cache");
        if status == 401 {
            assert!(headers["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Bearer realm=\"Doorkeeper\""));
        } else {
            assert!(
                headers.get("www-authenticate").is_none(),
                "no challenge on a 400: {form:?}"
            );
        }
    }
    let (_, body, _) = token_request(&app, &[]).await;
    assert_eq!(
        body["error_description"],
        "Missing required parameter: grant_type."
    );
    // A malformed Basic header.
    let res = app
        .client
        .post(app.url("/oauth/token"))
        .header("Authorization", "Basic !!!")
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(status_json(res).await.1["error"], "invalid_client");
}

#[tokio::test]
async fn renewing_the_secret_or_deleting_the_application_cuts_clients_off() {
    let app = TestApp::spawn().await;
    let client = register(&app, true, "read_user").await;
    let code = code_for(&app, &client, "alice").await;
    let (_, tokens) = exchange(&app, &client, &code).await;
    let res = app
        .client
        .post(app.url(&format!("/api/v4/applications/{}/renew-secret", client.id)))
        .private_token(&app.root_token)
        .send()
        .await
        .unwrap();
    let new_secret = status_json(res).await.1["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, body, _) = token_request(
        &app,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &client.client_id),
            ("client_secret", &client.secret),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].clone()),
        (401, json!("invalid_client"))
    );
    // Without `scope` the default is `api` (GitLab's), which this client lacks.
    let (status, body, _) = token_request(
        &app,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &client.client_id),
            ("client_secret", &new_secret),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].clone()),
        (400, json!("invalid_scope"))
    );
    let (status, _, _) = token_request(
        &app,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &client.client_id),
            ("client_secret", &new_secret),
            ("scope", "read_user"),
        ],
    )
    .await;
    assert_eq!(status, 200);
    let res = app
        .client
        .delete(app.url(&format!("/api/v4/applications/{}", client.id)))
        .private_token(&app.root_token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(
        api_user(&app, tokens["access_token"].as_str().unwrap())
            .await
            .0,
        401
    );
}

#[tokio::test]
async fn revoke_token_info_and_introspection() {
    let app = TestApp::spawn().await;
    let client = register(&app, true, "read_user").await;
    let other = register(&app, true, "read_user").await;
    let code = code_for(&app, &client, "alice").await;
    let (_, tokens) = exchange(&app, &client, &code).await;
    let access = tokens["access_token"].as_str().unwrap();

    let res = app
        .client
        .get(app.url("/oauth/token/info"))
        .bearer(access)
        .send()
        .await
        .unwrap();
    let (status, info) = status_json(res).await;
    assert_eq!(status, 200);
    assert_eq!(info["scope"], json!(["read_user"]));
    assert_eq!(info["scopes"], json!(["read_user"]));
    assert_eq!(info["application"]["uid"], client.client_id.as_str());
    assert!(info["expires_in"].as_i64().unwrap() > 7000);
    assert_eq!(info["expires_in"], info["expires_in_seconds"]);
    let res = app
        .client
        .get(app.url("/oauth/token/info?access_token=nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        status_json(res).await,
        (
            401,
            json!({"error": "invalid_token", "error_description": "The access token is invalid"})
        )
    );

    let introspect = |as_client: &Client2, token: &str| {
        let req = app
            .client
            .post(app.url("/oauth/introspect"))
            .basic_auth(&as_client.client_id, Some(&as_client.secret))
            .form(&[("token", token)]);
        async move { status_json(req.send().await.unwrap()).await }
    };
    let (status, body) = introspect(&client, access).await;
    assert_eq!(status, 200);
    assert_eq!(body["active"], true);
    assert_eq!(body["client_id"], client.client_id.as_str());
    assert_eq!(body["scope"], "read_user");
    assert_eq!(body["username"], "alice");
    assert_eq!(introspect(&other, access).await.1, json!({"active": false}));
    assert_eq!(
        introspect(&client, "unknown").await.1,
        json!({"active": false})
    );
    let res = app
        .client
        .post(app.url("/oauth/introspect"))
        .form(&[("token", access)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);

    // Revocation: only by the owning client; unknown tokens are fine.
    let revoke = |as_client: &Client2, token: &str| {
        let req = app.client.post(app.url("/oauth/revoke")).form(&[
            ("token", token),
            ("client_id", &as_client.client_id),
            ("client_secret", &as_client.secret),
        ]);
        async move { status_json(req.send().await.unwrap()).await }
    };
    assert_eq!(
        revoke(&other, access).await,
        (
            403,
            json!({"error": "unauthorized_client", "error_description": "You are not authorized to revoke this token"})
        )
    );
    assert_eq!(revoke(&client, "unknown").await, (200, json!({})));
    assert_eq!(revoke(&client, access).await, (200, json!({})));
    assert_eq!(api_user(&app, access).await.0, 401);
    assert_eq!(
        introspect(&client, access).await.1,
        json!({"active": false})
    );
    let res = app
        .client
        .post(app.url("/oauth/revoke"))
        .form(&[("token", access)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
}

#[tokio::test]
async fn failed_sign_ins_lock_the_account_for_a_while() {
    let app = TestApp::spawn().await;
    user_with_password(&app, "alice").await;
    let mut b = Browser::new();
    for _ in 0..4 {
        assert_eq!(
            b.sign_in(&app, "alice", "wrong password").await.status(),
            401
        );
    }
    let res = b.sign_in(&app, "alice", "wrong password").await;
    assert_eq!(res.status(), 429);
    // Even the right password is refused while locked.
    let res = b.sign_in(&app, "alice", PASSWORD).await;
    assert_eq!(res.status(), 429);
    assert!(res.text().await.unwrap().contains("locked"));
    // Another account is unaffected.
    user_with_password(&app, "bob").await;
    assert_eq!(
        Browser::new().sign_in(&app, "bob", PASSWORD).await.status(),
        302
    );
}

#[tokio::test]
async fn admin_update_validates_like_create() {
    let app = TestApp::spawn().await;
    let client = register(&app, true, "read_user").await;
    let put = |body: Value| {
        let req = app
            .client
            .put(app.url(&format!("/api/v4/applications/{}", client.id)))
            .private_token(&app.root_token)
            .json(&body);
        async move { status_json(req.send().await.unwrap()).await }
    };
    assert_eq!(
        put(json!({"redirect_uri": "http://"})).await,
        (
            400,
            json!({"message": {"redirect_uri": ["must be a valid URI."]}})
        )
    );
    assert_eq!(
        put(json!({"scopes": ""})).await,
        (400, json!({"error": "scopes is empty"}))
    );
    assert_eq!(
        put(json!({"confidential": "maybe"})).await,
        (400, json!({"error": "confidential is invalid"}))
    );
    let (status, body) = put(json!({"name": "Renamed", "redirect_uri": "https://new.example/cb", "scopes": "api", "confidential": false})).await;
    assert_eq!(status, 200);
    assert_eq!(body["application_name"], "Renamed");
    assert_eq!(body["callback_url"], "https://new.example/cb");
    assert_eq!(body["confidential"], false);
    assert!(body.get("trusted").is_none() && body.get("secret").is_none());
    // The secret is untouched.
    assert!(app
        .services
        .verify_client_secret(&client.client_id, &client.secret)
        .await
        .unwrap()
        .is_some());
    let res = app
        .client
        .put(app.url("/api/v4/applications/9999"))
        .private_token(&app.root_token)
        .form(&[("name", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        status_json(res).await,
        (404, json!({"message": "404 Application Not Found"}))
    );
}
