//! Compatibility suite: a Rust relying party built on the `openidconnect`
//! crate signs a user in through latchkey.
//!
//! openidconnect does the relying party's part, none of it written here:
//! discovery (with the JWKS), the authorization URL (PKCE S256, state,
//! nonce), the code exchange, the ID token's verification (RS256 signature
//! against the JWKS, issuer, audience, expiry, nonce), userinfo for the
//! expected subject, refresh, and the device authorization grant (RFC 8628)
//! polled by its own loop. The user's browser (sign-in, consent and device
//! pages) is reqwest with a cookie store posting the pages' forms; the final
//! redirect to the client (https://client.example/cb) is read, never
//! followed.
//!
//! compat/run.sh starts the server and sets LATCHKEY_URL and LATCHKEY_TOKEN
//! (root's personal access token). Prints `ok - NAME` or `not ok - NAME:
//! WHY` per check, then `rust-rp: N passed, N failed`; exits 1 when any
//! failed.

use std::error::Error;
use std::future::Future;
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use openidconnect::core::{
    CoreAuthDisplay, CoreClaimName, CoreClaimType, CoreClient, CoreClientAuthMethod,
    CoreDeviceAuthorizationResponse, CoreGenderClaim, CoreGrantType, CoreIdToken,
    CoreIdTokenClaims, CoreIdTokenVerifier, CoreJsonWebKey, CoreJsonWebKeyType,
    CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm, CoreJwsSigningAlgorithm,
    CoreResponseMode, CoreResponseType, CoreSubjectIdentifierType, CoreTokenResponse,
};
use openidconnect::reqwest;
use openidconnect::{
    AccessTokenHash, AdditionalClaims, AdditionalProviderMetadata, AsyncHttpClient,
    AuthenticationFlow, AuthorizationCode, ClientId, ClientSecret, CsrfToken,
    DeviceAuthorizationUrl, EndpointMaybeSet, EndpointNotSet, EndpointSet, HttpRequest,
    IdTokenVerifier, IssuerUrl, JsonWebKey, Nonce, OAuth2TokenResponse, PkceCodeChallenge,
    ProviderMetadata, RedirectUrl, Scope, SubjectIdentifier, TokenResponse, UserInfoClaims,
};
use serde_json::{json, Value};
use url::Url;

const REDIRECT_URI: &str = "https://client.example/cb";
const PASSWORD: &str = "correct horse battery";

type Res<T> = Result<T, String>;

/// `what: error: cause: cause...`
fn fail<E: Error>(what: &str) -> impl FnOnce(E) -> String + '_ {
    move |e| {
        let mut s = format!("{what}: {e}");
        let mut cause = e.source();
        while let Some(c) = cause {
            s.push_str(&format!(": {c}"));
            cause = c.source();
        }
        s
    }
}

fn ensure(ok: bool, what: impl FnOnce() -> String) -> Res<()> {
    if ok {
        Ok(())
    } else {
        Err(what())
    }
}

fn ensure_eq<T: PartialEq + std::fmt::Debug>(got: T, want: T, what: &str) -> Res<()> {
    ensure(got == want, || {
        format!("{what}: got {got:?}, want {want:?}")
    })
}

// --- provider metadata with the device endpoint --------------------------------

/// The discovery document's device_authorization_endpoint (RFC 8628 §4),
/// which openidconnect's core metadata leaves to the application.
#[derive(Clone, Debug, serde::Deserialize, serde::Serialize)]
struct DeviceMetadata {
    device_authorization_endpoint: DeviceAuthorizationUrl,
}
impl AdditionalProviderMetadata for DeviceMetadata {}

type Metadata = ProviderMetadata<
    DeviceMetadata,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

/// A client from discovery, with the device endpoint set.
type Rp = openidconnect::Client<
    openidconnect::EmptyAdditionalClaims,
    CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    openidconnect::core::CoreAuthPrompt,
    openidconnect::StandardErrorResponse<openidconnect::core::CoreErrorResponseType>,
    CoreTokenResponse,
    openidconnect::core::CoreTokenIntrospectionResponse,
    openidconnect::core::CoreRevocableToken,
    openidconnect::core::CoreRevocationErrorResponse,
    EndpointSet,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// GitLab's extra userinfo claim.
#[derive(Debug, serde::Deserialize, serde::Serialize)]
struct GitLabClaims {
    groups: Vec<String>,
}
impl AdditionalClaims for GitLabClaims {}

// --- the administrator: users and applications ----------------------------------

struct Admin {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Admin {
    async fn post(&self, path: &str, body: Value) -> Res<Value> {
        let res = self
            .http
            .post(format!("{}/api/v4{path}", self.base))
            .header("PRIVATE-TOKEN", &self.token)
            .json(&body)
            .send()
            .await
            .map_err(fail(path))?;
        let status = res.status();
        let text = res.text().await.map_err(fail(path))?;
        ensure(status.as_u16() == 201, || {
            format!("POST {path}: {status} {text}")
        })?;
        serde_json::from_str(&text).map_err(fail(path))
    }

    async fn delete(&self, path: &str) -> Res<()> {
        let res = self
            .http
            .delete(format!("{}/api/v4{path}", self.base))
            .header("PRIVATE-TOKEN", &self.token)
            .send()
            .await
            .map_err(fail(path))?;
        ensure_eq(res.status().as_u16(), 204, &format!("DELETE {path}"))
    }
}

struct User {
    id: u64,
    username: String,
    email: String,
    name: String,
}

struct App {
    id: u64,
    name: String,
    client_id: String,
    secret: String,
}

fn unique(prefix: &str) -> String {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!(
        "compat-{prefix}-{:08x}",
        (n as u64 ^ u64::from(std::process::id())) & 0xffff_ffff
    )
}

fn string(v: &Value, key: &str) -> Res<String> {
    v.get(key)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| format!("no string {key} in {v}"))
}

fn number(v: &Value, key: &str) -> Res<u64> {
    v.get(key)
        .and_then(Value::as_u64)
        .ok_or_else(|| format!("no number {key} in {v}"))
}

async fn make_user(admin: &Admin) -> Res<User> {
    let username = unique("rust-rp");
    let v = admin
        .post(
            "/users",
            json!({
                "username": username,
                "email": format!("{username}@example.com"),
                "name": format!("Rust RP {}", &username[username.len() - 8..]),
                "password": PASSWORD,
            }),
        )
        .await?;
    Ok(User {
        id: number(&v, "id")?,
        username: string(&v, "username")?,
        email: string(&v, "email")?,
        name: string(&v, "name")?,
    })
}

async fn make_app(admin: &Admin) -> Res<App> {
    let v = admin
        .post(
            "/applications",
            json!({
                "name": unique("rust-rp-app"),
                "redirect_uri": REDIRECT_URI,
                "scopes": "openid profile email read_user",
                "confidential": true,
            }),
        )
        .await?;
    Ok(App {
        id: number(&v, "id")?,
        name: string(&v, "application_name")?,
        client_id: string(&v, "application_id")?,
        secret: string(&v, "secret")?,
    })
}

// --- the user's browser ----------------------------------------------------------

struct Form {
    action: String,
    inputs: Vec<(String, String)>,
    /// (name, value, label)
    buttons: Vec<(String, String, String)>,
}

fn decode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let Some(end) = rest.find(';') else { break };
        let entity = &rest[1..end];
        let ch = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .or_else(|| entity.strip_prefix("#X"))
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match ch {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The attributes of a start tag's inside (after the tag name).
fn attrs(tag: &str) -> Vec<(String, String)> {
    let b = tag.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && (b[i].is_ascii_whitespace() || b[i] == b'/') {
            i += 1;
        }
        let start = i;
        while i < b.len() && !b[i].is_ascii_whitespace() && b[i] != b'=' && b[i] != b'/' {
            i += 1;
        }
        if start == i {
            break;
        }
        let name = tag[start..i].to_ascii_lowercase();
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        let mut value = String::new();
        if i < b.len() && b[i] == b'=' {
            i += 1;
            while i < b.len() && b[i].is_ascii_whitespace() {
                i += 1;
            }
            if i < b.len() && (b[i] == b'"' || b[i] == b'\'') {
                let q = b[i];
                let vs = i + 1;
                i = vs;
                while i < b.len() && b[i] != q {
                    i += 1;
                }
                value = decode(&tag[vs..i.min(b.len())]);
                i += 1;
            } else {
                let vs = i;
                while i < b.len() && !b[i].is_ascii_whitespace() {
                    i += 1;
                }
                value = decode(&tag[vs..i]);
            }
        }
        out.push((name, value));
    }
    out
}

fn attr(a: &[(String, String)], name: &str) -> Option<String> {
    a.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone())
}

/// Each `<TAG ...>` start tag in `html`: (attributes, the text after it up to `</TAG>`).
fn elements<'h>(html: &'h str, tag: &str) -> Vec<(Vec<(String, String)>, &'h str)> {
    let lower = html.to_ascii_lowercase();
    let open = format!("<{tag}");
    let close = format!("</{tag}>");
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(i) = lower[from..].find(&open).map(|i| i + from) {
        let after = i + open.len();
        let boundary = lower.as_bytes().get(after).copied().unwrap_or(b'>');
        let Some(gt) = lower[after..].find('>').map(|g| g + after) else {
            break;
        };
        from = gt + 1;
        if !(boundary.is_ascii_whitespace() || boundary == b'>') {
            continue;
        }
        let inner_end = lower[from..].find(&close).map(|e| e + from).unwrap_or(from);
        out.push((attrs(&html[after..gt]), &html[from..inner_end]));
    }
    out
}

fn strip_tags(s: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in s.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    decode(&out)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn forms(html: &str) -> Vec<Form> {
    elements(html, "form")
        .into_iter()
        .map(|(a, inner)| Form {
            action: attr(&a, "action").unwrap_or_default(),
            inputs: elements(inner, "input")
                .into_iter()
                .filter_map(|(ia, _)| {
                    Some((attr(&ia, "name")?, attr(&ia, "value").unwrap_or_default()))
                })
                .collect(),
            buttons: elements(inner, "button")
                .into_iter()
                .map(|(ba, text)| {
                    (
                        attr(&ba, "name").unwrap_or_default(),
                        attr(&ba, "value").unwrap_or_default(),
                        strip_tags(text),
                    )
                })
                .collect(),
        })
        .collect()
}

fn h1(html: &str) -> String {
    elements(html, "h1")
        .first()
        .map(|(_, t)| strip_tags(t))
        .unwrap_or_default()
}

fn form_to<'f>(forms: &'f [Form], action: &str, html: &str) -> Res<&'f Form> {
    let found: Vec<_> = forms.iter().filter(|f| f.action == action).collect();
    match found.as_slice() {
        [one] => Ok(one),
        _ => Err(format!("not one form posting to {action} in: {html}")),
    }
}

/// The fields a browser posts for `form` when `button` is clicked.
fn submit(form: &Form, button: &str, fill: &[(&str, &str)]) -> Res<Vec<(String, String)>> {
    let mut data: Vec<(String, String)> = form.inputs.clone();
    for (name, value) in fill {
        let slot = data
            .iter_mut()
            .find(|(n, _)| n == name)
            .ok_or_else(|| format!("the form to {} has no input {name}", form.action))?;
        slot.1 = (*value).to_owned();
    }
    let buttons: Vec<_> = form
        .buttons
        .iter()
        .filter(|(_, _, t)| t == button)
        .collect();
    let [(name, value, _)] = buttons.as_slice() else {
        return Err(format!("no single button {button:?} in {:?}", form.buttons));
    };
    if !name.is_empty() {
        data.push((name.clone(), value.clone()));
    }
    Ok(data)
}

struct Page {
    status: u16,
    location: Option<String>,
    body: String,
}

struct Browser {
    base: Url,
    http: reqwest::Client,
}

impl Browser {
    fn new(base: &str) -> Res<Browser> {
        Ok(Browser {
            base: Url::parse(base).map_err(fail("base URL"))?,
            http: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .map_err(fail("browser"))?,
        })
    }

    fn url(&self, url: &str) -> Res<Url> {
        let u = self.base.join(url).map_err(fail(url))?;
        ensure(u.origin() == self.base.origin(), || {
            format!("the browser only goes to latchkey here: {u}")
        })?;
        Ok(u)
    }

    async fn send(&self, req: reqwest::RequestBuilder, what: &str) -> Res<Page> {
        let res = req.send().await.map_err(fail(what))?;
        let status = res.status().as_u16();
        let location = res
            .headers()
            .get("location")
            .and_then(|l| l.to_str().ok())
            .map(str::to_owned);
        let body = res.text().await.map_err(fail(what))?;
        Ok(Page {
            status,
            location,
            body,
        })
    }

    async fn get(&self, url: &str) -> Res<Page> {
        let u = self.url(url)?;
        self.send(self.http.get(u), url).await
    }

    async fn post(&self, url: &str, form: &[(String, String)]) -> Res<Page> {
        let u = self.url(url)?;
        self.send(self.http.post(u).form(form), url).await
    }

    fn redirect(page: &Page, what: &str) -> Res<String> {
        ensure(matches!(page.status, 302 | 303), || {
            format!("{what}: want a redirect, got {} {}", page.status, page.body)
        })?;
        page.location
            .clone()
            .ok_or_else(|| format!("{what}: a redirect without Location"))
    }

    /// At the sign-in page `url`: sign in; where latchkey sends the browser back.
    async fn sign_in(&self, url: &str, user: &User) -> Res<String> {
        ensure(self.url(url)?.path() == "/users/sign_in", || {
            format!("sent to sign in: {url}")
        })?;
        let page = self.get(url).await?;
        ensure_eq(page.status, 200, "the sign-in page")?;
        let all = forms(&page.body);
        let form = form_to(&all, "/users/sign_in", &page.body)?;
        let data = submit(
            form,
            "Sign in",
            &[
                ("user[login]", &user.username),
                ("user[password]", PASSWORD),
            ],
        )?;
        let back = self.post(&form.action, &data).await?;
        Self::redirect(&back, "signing in")
    }

    /// Open the authorization URL signed out, sign in, authorize on the
    /// consent page; the redirect to the client, not followed.
    async fn authorize(&self, url: &Url, user: &User, app: &App) -> Res<Url> {
        let page = self.get(url.as_str()).await?;
        let sign_in = Self::redirect(&page, "signed out, /oauth/authorize")?;
        let back = self.sign_in(&sign_in, user).await?;
        ensure_eq(
            self.url(&back)?.path(),
            "/oauth/authorize",
            "back after signing in",
        )?;
        let page = self.get(&back).await?;
        ensure_eq(page.status, 200, "the consent page")?;
        ensure_eq(
            h1(&page.body),
            format!("Authorize {} to use your account?", app.name),
            "consent <h1>",
        )?;
        let all = forms(&page.body);
        let form = form_to(&all, "/oauth/authorize", &page.body)?;
        let data = submit(form, &format!("Authorize {}", app.name), &[])?;
        let res = self.post(&form.action, &data).await?;
        let to = Self::redirect(&res, "the consent answer")?;
        ensure(to.starts_with(&format!("{REDIRECT_URI}?")), || {
            format!("redirected to the client: {to}")
        })?;
        Url::parse(&to).map_err(fail("the client redirect"))
    }

    /// The device pages: enter the code (from verification_uri_complete) and authorize.
    async fn approve_device(
        &self,
        complete: &str,
        user_code: &str,
        user: &User,
        app: &App,
    ) -> Res<()> {
        let mut page = self.get(complete).await?;
        if matches!(page.status, 302 | 303) {
            let back = self
                .sign_in(&Self::redirect(&page, "device page")?, user)
                .await?;
            page = self.get(&back).await?;
        }
        ensure_eq(page.status, 200, "the device page")?;
        let all = forms(&page.body);
        let form = form_to(&all, "/oauth/device", &page.body)?;
        let shown = form
            .inputs
            .iter()
            .find(|(n, _)| n == "user_code")
            .map(|(_, v)| v.as_str());
        ensure_eq(
            shown,
            Some(user_code),
            "the code filled in from verification_uri_complete",
        )?;
        let page = self
            .post(&form.action, &submit(form, "Continue", &[])?)
            .await?;
        ensure_eq(page.status, 200, "the device confirm page")?;
        ensure_eq(
            h1(&page.body),
            format!("Authorize {} on your device?", app.name),
            "device <h1>",
        )?;
        let all = forms(&page.body);
        let form = form_to(&all, "/oauth/device/confirm", &page.body)?;
        let res = self
            .post(
                &form.action,
                &submit(form, &format!("Authorize {}", app.name), &[])?,
            )
            .await?;
        ensure(matches!(res.status, 200 | 302 | 303), || {
            format!("the device confirm answer: {} {}", res.status, res.body)
        })
    }
}

// --- the checks -------------------------------------------------------------------

/// What latchkey promises in an ID token, on claims openidconnect verified.
fn check_claims(
    claims: &CoreIdTokenClaims,
    base: &str,
    user: &User,
    app: &App,
    email: bool,
) -> Res<()> {
    ensure_eq(claims.issuer().as_str(), base, "iss")?;
    ensure_eq(
        claims
            .audiences()
            .iter()
            .map(|a| a.as_str())
            .collect::<Vec<_>>(),
        vec![app.client_id.as_str()],
        "aud",
    )?;
    ensure_eq(
        claims.subject().as_str(),
        user.id.to_string().as_str(),
        "sub",
    )?;
    ensure_eq(
        (claims.expiration() - claims.issue_time()).num_seconds(),
        120,
        "exp - iat",
    )?;
    let auth_time = claims.auth_time().ok_or("no auth_time")?;
    ensure(auth_time <= claims.issue_time(), || {
        format!("auth_time {auth_time} after iat")
    })?;
    ensure_eq(
        claims.preferred_username().map(|u| u.as_str()),
        Some(user.username.as_str()),
        "preferred_username",
    )?;
    ensure_eq(
        claims
            .nickname()
            .and_then(|n| n.get(None))
            .map(|n| n.as_str()),
        Some(user.username.as_str()),
        "nickname",
    )?;
    ensure_eq(
        claims.name().and_then(|n| n.get(None)).map(|n| n.as_str()),
        Some(user.name.as_str()),
        "name",
    )?;
    if email {
        ensure_eq(
            claims.email().map(|e| e.as_str()),
            Some(user.email.as_str()),
            "email",
        )?;
        ensure(claims.email_verified().is_some(), || {
            "no email_verified".into()
        })?;
    } else {
        ensure_eq(
            claims.email().map(|e| e.as_str()),
            None,
            "email without the email scope",
        )?;
    }
    Ok(())
}

/// Verify the ID token of `tokens` (openidconnect: signature by the JWKS,
/// issuer, audience, expiry, nonce) and its at_hash if present.
fn verify_id_token<'t>(
    tokens: &'t CoreTokenResponse,
    verifier: &CoreIdTokenVerifier,
    nonce: impl openidconnect::NonceVerifier,
) -> Res<&'t CoreIdTokenClaims> {
    let id_token = tokens
        .id_token()
        .ok_or("the token response has no id_token")?;
    ensure_eq(
        id_token.signing_alg().map_err(fail("alg"))?,
        &CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
        "alg",
    )?;
    let claims = id_token
        .claims(verifier, nonce)
        .map_err(fail("ID token verification"))?;
    if let Some(expected) = claims.access_token_hash() {
        let actual = AccessTokenHash::from_token(
            tokens.access_token(),
            id_token.signing_alg().map_err(fail("alg"))?,
            id_token
                .signing_key(verifier)
                .map_err(fail("signing key"))?,
        )
        .map_err(fail("at_hash"))?;
        ensure_eq(&actual, expected, "at_hash")?;
    }
    Ok(claims)
}

struct Report {
    passed: u32,
    failed: u32,
}

impl Report {
    fn record<T>(&mut self, name: &str, result: Res<T>) -> Option<T> {
        match result {
            Ok(v) => {
                self.passed += 1;
                println!("ok - {name}");
                Some(v)
            }
            Err(why) => {
                self.failed += 1;
                println!("not ok - {name}: {why}");
                None
            }
        }
    }

    fn not_run(&mut self, name: &str, because: &str) {
        self.record::<()>(name, Err(format!("not run: {because}")));
    }
}

struct Ctx {
    base: String,
    http: reqwest::Client,
    user: User,
    app: App,
}

async fn discover(ctx: &Ctx) -> Res<(Metadata, Rp)> {
    let issuer = IssuerUrl::new(ctx.base.clone()).map_err(fail("issuer"))?;
    let metadata = Metadata::discover_async(issuer.clone(), &ctx.http)
        .await
        .map_err(fail("discovery"))?;
    ensure_eq(metadata.issuer(), &issuer, "issuer")?;
    ensure(!metadata.jwks().keys().is_empty(), || {
        "an empty JWKS".into()
    })?;
    for key in metadata.jwks().keys() {
        ensure_eq(key.key_type(), &CoreJsonWebKeyType::RSA, "JWK kty")?;
        ensure(key.key_id().is_some(), || "a JWK without kid".into())?;
    }
    ensure(
        metadata
            .id_token_signing_alg_values_supported()
            .contains(&CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256),
        || "RS256 not advertised".into(),
    )?;
    let device = metadata
        .additional_metadata()
        .device_authorization_endpoint
        .clone();
    ensure_eq(
        device.as_str(),
        format!("{}/oauth/authorize_device", ctx.base).as_str(),
        "device endpoint",
    )?;
    let client: Rp = CoreClient::from_provider_metadata(
        metadata.clone(),
        ClientId::new(ctx.app.client_id.clone()),
        Some(ClientSecret::new(ctx.app.secret.clone())),
    )
    .set_redirect_uri(RedirectUrl::new(REDIRECT_URI.into()).map_err(fail("redirect URI"))?)
    .set_device_authorization_url(device);
    Ok((metadata, client))
}

async fn code_flow(ctx: &Ctx, client: &Rp) -> Res<(CoreTokenResponse, Nonce)> {
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state, nonce) = client
        .authorize_url(
            AuthenticationFlow::<CoreResponseType>::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("email".into()))
        .set_pkce_challenge(challenge)
        .url();
    let q = |u: &Url, k: &str| {
        u.query_pairs()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.into_owned())
    };
    ensure_eq(
        q(&url, "code_challenge_method").as_deref(),
        Some("S256"),
        "code_challenge_method",
    )?;
    let callback = Browser::new(&ctx.base)?
        .authorize(&url, &ctx.user, &ctx.app)
        .await?;
    ensure_eq(
        q(&callback, "state").as_deref(),
        Some(state.secret().as_str()),
        "state",
    )?;
    let code = q(&callback, "code").ok_or_else(|| format!("no code in {callback}"))?;
    let tokens = client
        .exchange_code(AuthorizationCode::new(code))
        .map_err(fail("exchange_code"))?
        .set_pkce_verifier(verifier)
        .request_async(&ctx.http)
        .await
        .map_err(fail("token endpoint"))?;
    ensure_eq(
        tokens
            .scopes()
            .map(|s| s.iter().map(|s| s.as_str()).collect::<Vec<_>>()),
        Some(vec!["openid", "profile", "email"]),
        "granted scopes",
    )?;
    Ok((tokens, nonce))
}

/// The verifier must refuse the same ID token with a broken signature, the
/// wrong nonce, or for another audience.
fn refusals(
    metadata: &Metadata,
    client: &Rp,
    tokens: &CoreTokenResponse,
    nonce: &Nonce,
) -> Res<()> {
    let verifier = client.id_token_verifier();
    let id_token = tokens.id_token().ok_or("no id_token")?;
    let jwt = id_token.to_string();
    let (head, sig) = jwt.rsplit_once('.').ok_or("not a JWS")?;
    let mut chars: Vec<char> = sig.chars().collect();
    let mid = chars.len() / 2;
    chars[mid] = if chars[mid] == 'A' { 'B' } else { 'A' };
    let tampered =
        CoreIdToken::from_str(&format!("{head}.{}", chars.into_iter().collect::<String>()))
            .map_err(fail("tampered token"))?;
    ensure(tampered.claims(&verifier, nonce).is_err(), || {
        "a tampered signature was accepted".into()
    })?;
    ensure(
        id_token
            .claims(&verifier, &Nonce::new("another nonce".into()))
            .is_err(),
        || "the wrong nonce was accepted".into(),
    )?;
    let other: CoreIdTokenVerifier = IdTokenVerifier::new_public_client(
        ClientId::new("someone-else".into()),
        metadata.issuer().clone(),
        metadata.jwks().clone(),
    );
    ensure(id_token.claims(&other, nonce).is_err(), || {
        "another audience was accepted".into()
    })?;
    Ok(())
}

async fn userinfo(
    ctx: &Ctx,
    client: &Rp,
    tokens: &CoreTokenResponse,
    sub: &SubjectIdentifier,
) -> Res<()> {
    let info: UserInfoClaims<GitLabClaims, CoreGenderClaim> = client
        .user_info(tokens.access_token().clone(), Some(sub.clone()))
        .map_err(fail("user_info"))?
        .request_async(&ctx.http)
        .await
        .map_err(fail("userinfo endpoint"))?;
    ensure_eq(info.subject(), sub, "userinfo sub")?;
    ensure_eq(
        info.preferred_username().map(|u| u.as_str()),
        Some(ctx.user.username.as_str()),
        "userinfo preferred_username",
    )?;
    ensure_eq(
        info.email().map(|e| e.as_str()),
        Some(ctx.user.email.as_str()),
        "userinfo email",
    )?;
    ensure_eq(info.additional_claims().groups.len(), 0, "userinfo groups")?;
    // Another subject is refused by the client.
    let other = SubjectIdentifier::new(format!("{}0", sub.as_str()));
    let wrong: Result<UserInfoClaims<GitLabClaims, CoreGenderClaim>, _> = client
        .user_info(tokens.access_token().clone(), Some(other))
        .map_err(fail("user_info"))?
        .request_async(&ctx.http)
        .await;
    ensure(wrong.is_err(), || {
        "userinfo for another subject was accepted".into()
    })
}

async fn refresh(
    ctx: &Ctx,
    client: &Rp,
    tokens: &CoreTokenResponse,
    first: &CoreIdTokenClaims,
    nonce: &Nonce,
) -> Res<()> {
    let refresh_token = tokens.refresh_token().ok_or("no refresh_token")?;
    let new = client
        .exchange_refresh_token(refresh_token)
        .map_err(fail("exchange_refresh_token"))?
        .request_async(&ctx.http)
        .await
        .map_err(fail("token endpoint (refresh)"))?;
    ensure(
        new.access_token().secret() != tokens.access_token().secret(),
        || "the access token did not change".into(),
    )?;
    let verifier = client.id_token_verifier();
    // OIDC Core 12.2: a nonce, if any, is the original one.
    let claims = verify_id_token(&new, &verifier, |n: Option<&Nonce>| match n {
        Some(n) if n.secret() != nonce.secret() => Err("a different nonce".to_string()),
        _ => Ok(()),
    })?;
    check_claims(claims, &ctx.base, &ctx.user, &ctx.app, true)?;
    ensure_eq(claims.subject(), first.subject(), "sub after refresh")?;
    ensure_eq(
        claims.auth_time(),
        first.auth_time(),
        "auth_time after refresh",
    )
}

/// RFC 8628 with openidconnect's polling loop; the user approves after the
/// device's first poll was answered (authorization_pending).
async fn device(ctx: &Ctx, client: &Rp) -> Res<()> {
    let details: CoreDeviceAuthorizationResponse = client
        .exchange_device_code()
        .add_scope(Scope::new("read_user".into()))
        .request_async(&ctx.http)
        .await
        .map_err(fail("device authorization endpoint"))?;
    ensure_eq(
        details.verification_uri().as_str(),
        format!("{}/oauth/device", ctx.base).as_str(),
        "verification_uri",
    )?;
    ensure_eq(details.interval(), Duration::from_secs(5), "interval")?;
    let complete = details
        .verification_uri_complete()
        .ok_or("no verification_uri_complete")?;

    let polls = Arc::new(AtomicUsize::new(0));
    let answered = Arc::new(tokio::sync::Notify::new());
    let counting = {
        let (polls, answered, http) = (polls.clone(), answered.clone(), ctx.http.clone());
        move |req: HttpRequest| {
            let (polls, answered, http) = (polls.clone(), answered.clone(), http.clone());
            async move {
                let res = http.call(req).await;
                polls.fetch_add(1, Ordering::SeqCst);
                answered.notify_one();
                res
            }
        }
    };
    let poll = client
        .exchange_device_access_token(&details)
        .map_err(fail("exchange_device_access_token"))?
        .request_async(&counting, tokio::time::sleep, Some(Duration::from_secs(60)));
    let approve = async {
        answered.notified().await;
        Browser::new(&ctx.base)?
            .approve_device(
                complete.secret(),
                details.user_code().secret(),
                &ctx.user,
                &ctx.app,
            )
            .await
    };
    let (tokens, approved) = tokio::join!(poll, approve);
    approved?;
    let tokens = tokens.map_err(fail("device token polling"))?;
    ensure(polls.load(Ordering::SeqCst) >= 2, || {
        "the device never saw authorization_pending".into()
    })?;
    let verifier = client.id_token_verifier();
    let claims = verify_id_token(&tokens, &verifier, |n: Option<&Nonce>| match n {
        None => Ok(()),
        Some(_) => Err("a nonce nobody sent".to_string()),
    })?;
    check_claims(claims, &ctx.base, &ctx.user, &ctx.app, false)
}

async fn run(report: &mut Report) -> Res<()> {
    let base = std::env::var("LATCHKEY_URL")
        .map_err(|_| "LATCHKEY_URL is not set: run through compat/run.sh")?;
    let base = base.trim_end_matches('/').to_owned();
    let token = std::env::var("LATCHKEY_TOKEN").map_err(|_| "LATCHKEY_TOKEN is not set")?;
    let http = reqwest::Client::builder()
        // Following redirects opens a relying party to SSRF.
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(fail("HTTP client"))?;
    let admin = Admin {
        base: base.clone(),
        token,
        http: http.clone(),
    };
    let user = make_user(&admin).await?;
    let app = make_app(&admin).await?;
    let ctx = Ctx {
        base,
        http,
        user,
        app,
    };

    const DISCOVERY: &str = "discovery: provider metadata, JWKS, device endpoint";
    const CODE: &str =
        "code flow: PKCE S256, state, nonce; ID token verified (JWKS signature, iss, aud, nonce)";
    const REFUSALS: &str =
        "the verifier refuses a tampered signature, a wrong nonce, another audience";
    const USERINFO: &str = "userinfo for the ID token's subject";
    const REFRESH: &str = "refresh: a new ID token, verified, same sub and auth_time";
    const DEVICE: &str = "device grant: polled through authorization_pending; ID token verified";

    let Some((metadata, client)) = report.record(DISCOVERY, discover(&ctx).await) else {
        for name in [CODE, REFUSALS, USERINFO, REFRESH, DEVICE] {
            report.not_run(name, "discovery failed");
        }
        return Ok(());
    };
    let verifier = client.id_token_verifier();
    let flow = async {
        let (tokens, nonce) = code_flow(&ctx, &client).await?;
        let claims = verify_id_token(&tokens, &verifier, &nonce)?.clone();
        ensure_eq(
            claims.nonce().map(|n| n.secret()),
            Some(nonce.secret()),
            "nonce",
        )?;
        check_claims(&claims, &ctx.base, &ctx.user, &ctx.app, true)?;
        Ok((tokens, nonce, claims))
    };
    match report.record(CODE, flow.await) {
        Some((tokens, nonce, claims)) => {
            report.record(REFUSALS, refusals(&metadata, &client, &tokens, &nonce));
            report.record(
                USERINFO,
                userinfo(&ctx, &client, &tokens, claims.subject()).await,
            );
            report.record(
                REFRESH,
                refresh(&ctx, &client, &tokens, &claims, &nonce).await,
            );
        }
        None => {
            for name in [REFUSALS, USERINFO, REFRESH] {
                report.not_run(name, "the code flow failed");
            }
        }
    }
    report.record(DEVICE, device(&ctx, &client).await);
    admin.delete(&format!("/applications/{}", ctx.app.id)).await
}

fn block_on<F: Future>(f: F) -> Res<F::Output> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(fail("tokio runtime"))?;
    Ok(rt.block_on(f))
}

fn main() -> std::process::ExitCode {
    let mut report = Report {
        passed: 0,
        failed: 0,
    };
    match block_on(run(&mut report)) {
        Ok(Ok(())) => {}
        Ok(Err(why)) | Err(why) => report
            .record::<()>("setup and cleanup", Err(why))
            .unwrap_or(()),
    }
    println!(
        "rust-rp: {} passed, {} failed",
        report.passed, report.failed
    );
    if report.failed == 0 && report.passed > 0 {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}
