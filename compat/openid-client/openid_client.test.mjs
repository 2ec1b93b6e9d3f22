// Compatibility suite: openid-client (panva's certified OpenID Connect
// relying party, from npm) against latchkey's provider.
//
// Everything the relying party does is openid-client's own code: discovery,
// the authorization URL (PKCE S256, state, nonce), the code exchange with
// the ID token validated (claims by oauth4webapi; the RS256 signature
// against the provider's JWKS through enableNonRepudiationChecks), userinfo
// with the expected subject, refresh, revocation, introspection, client
// credentials, the device authorization grant (RFC 8628) and dynamic client
// registration (RFC 7591). The user's part, signing in and answering the
// consent or device pages, is played by fetch with a cookie jar kept here,
// posting the pages' forms as a browser would; the final redirect to the
// client (https://client.example/cb, which need not exist) is caught, never
// followed.
//
// compat/run.sh starts the server (with LATCHKEY_DYNAMIC_REGISTRATION=true)
// and sets LATCHKEY_URL and LATCHKEY_TOKEN (root's personal access token).
//
//   node --test compat/openid-client/openid_client.test.mjs

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';

import * as client from 'openid-client';

const BASE = (process.env.LATCHKEY_URL ?? '').replace(/\/+$/, '');
const ROOT_TOKEN = process.env.LATCHKEY_TOKEN ?? '';
const REDIRECT_URI = 'https://client.example/cb';
const PASSWORD = 'correct horse battery';
const DEVICE_CODE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

assert.ok(BASE && ROOT_TOKEN, 'LATCHKEY_URL and LATCHKEY_TOKEN must be set: run through compat/run.sh');

// Plain http on loopback: openid-client refuses it unless told; the ID
// token's signature is checked against the JWKS (not only its claims).
const EXECUTE = [client.allowInsecureRequests, client.enableNonRepudiationChecks];

const unique = (prefix) => `compat-${prefix}-${randomBytes(4).toString('hex')}`;

// --- the administrator's side: users and applications -----------------------

async function admin(method, path, body) {
  const res = await fetch(`${BASE}/api/v4${path}`, {
    method,
    headers: { 'PRIVATE-TOKEN': ROOT_TOKEN, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : null, text };
}

async function makeUser() {
  const username = unique('oidc');
  const res = await admin('POST', '/users', {
    username,
    email: `${username}@example.com`,
    name: `OIDC ${username.slice(-8)}`,
    password: PASSWORD,
  });
  assert.equal(res.status, 201, res.text);
  return res.json;
}

async function makeApp(t, { scopes = 'openid profile email read_user', confidential = true } = {}) {
  const res = await admin('POST', '/applications', {
    name: unique('oidc-app'),
    redirect_uri: REDIRECT_URI,
    scopes,
    confidential,
  });
  assert.equal(res.status, 201, res.text);
  t.after(async () => {
    const del = await admin('DELETE', `/applications/${res.json.id}`);
    assert.ok([204, 404].includes(del.status), del.text);
  });
  return res.json;
}

/** openid-client's Configuration for `app`, found by discovery. */
async function discover(app, auth) {
  const secret = app.confidential ? app.secret : undefined;
  return client.discovery(
    new URL(BASE),
    app.application_id,
    secret,
    auth ?? (app.confidential ? client.ClientSecretBasic(secret) : client.None()),
    { execute: EXECUTE },
  );
}

// --- the user's browser: fetch, a cookie jar, and the pages' forms ----------

const ENTITIES = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };
function decode(s) {
  return s.replace(/&(#x[0-9a-f]+|#[0-9]+|[a-z]+);/gi, (all, e) => {
    if (e[0] === '#') {
      return String.fromCodePoint(e[1].toLowerCase() === 'x' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10));
    }
    return ENTITIES[e.toLowerCase()] ?? all;
  });
}

function parseAttrs(s) {
  const attrs = {};
  for (const m of s.matchAll(/([^\s"'=<>/]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+)))?/g)) {
    attrs[m[1].toLowerCase()] = decode(m[2] ?? m[3] ?? m[4] ?? '');
  }
  return attrs;
}

const text = (html) => decode(html.replace(/<[^>]*>/g, '')).replace(/\s+/g, ' ').trim();

/** Every <form> of a page: action, method, inputs and buttons; and its <h1>. */
function parsePage(html) {
  const forms = [];
  for (const m of html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)) {
    const a = parseAttrs(m[1]);
    forms.push({
      action: a.action ?? '',
      method: (a.method ?? 'get').toLowerCase(),
      inputs: [...m[2].matchAll(/<input\b([^>]*)>/gi)].map((i) => parseAttrs(i[1])),
      buttons: [...m[2].matchAll(/<button\b([^>]*)>([\s\S]*?)<\/button>/gi)]
        .map((b) => ({ ...parseAttrs(b[1]), text: text(b[2]) })),
    });
  }
  const h1 = html.match(/<h1\b[^>]*>([\s\S]*?)<\/h1>/i);
  return { forms, h1: h1 ? text(h1[1]) : '' };
}

/** What a browser posts for `form` when the button labelled `button` is clicked. */
function submit(form, button, fill = {}) {
  const data = new URLSearchParams();
  const names = new Set();
  for (const i of form.inputs) {
    if (!i.name) continue;
    names.add(i.name);
    data.append(i.name, Object.hasOwn(fill, i.name) ? fill[i.name] : (i.value ?? ''));
  }
  const missing = Object.keys(fill).filter((k) => !names.has(k));
  assert.deepEqual(missing, [], `the form has no inputs named ${missing}: ${JSON.stringify(form)}`);
  const buttons = form.buttons.filter((b) => b.text === button);
  assert.equal(buttons.length, 1, `no single button "${button}" in ${JSON.stringify(form.buttons)}`);
  if (buttons[0].name) data.append(buttons[0].name, buttons[0].value ?? '');
  return data;
}

function onlyForm(page, action) {
  const forms = page.forms.filter((f) => f.action === action && f.method === 'post');
  assert.equal(forms.length, 1, `one form posting to ${action}: ${JSON.stringify(page.forms)}`);
  return forms[0];
}

class Browser {
  /** name -> value; latchkey's cookies only (every request goes to BASE). */
  cookies = new Map();

  async request(method, url, form) {
    const target = new URL(url, `${BASE}/`);
    assert.equal(target.origin, BASE, `the browser only talks to latchkey here: ${target}`);
    const headers = {};
    if (this.cookies.size) {
      headers.cookie = [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    }
    const res = await fetch(target, { method, headers, body: form, redirect: 'manual' });
    for (const line of res.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const gone = attrs.some((a) => /^\s*max-age\s*=\s*0\s*$/i.test(a)) || value === '';
      if (gone) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
    return { status: res.status, location: res.headers.get('location'), headers: res.headers, body: await res.text() };
  }

  get(url) {
    return this.request('GET', url);
  }

  post(url, form) {
    return this.request('POST', url, form);
  }

  /** At the sign-in page (`signInUrl`): sign in; return where latchkey sends the browser back. */
  async signIn(signInUrl, user) {
    const u = new URL(signInUrl, `${BASE}/`);
    assert.equal(u.pathname, '/users/sign_in', `sent to sign in: ${signInUrl}`);
    const res = await this.get(u);
    assert.equal(res.status, 200, res.body.slice(0, 500));
    const form = onlyForm(parsePage(res.body), '/users/sign_in');
    const data = submit(form, 'Sign in', { 'user[login]': user.username, 'user[password]': PASSWORD });
    assert.ok(data.get('authenticity_token'), 'the sign-in form carries a CSRF token');
    const back = await this.post(form.action, data);
    assert.ok([302, 303].includes(back.status), `${back.status} ${back.body.slice(0, 500)}`);
    assert.ok(this.cookies.size > 0, 'signed in: a session cookie');
    return back.location;
  }

  /**
   * Open `authorizationUrl` signed out, sign in as `user`, check the consent
   * page names `appName`, answer it; return the redirect to the client (not
   * followed).
   */
  async authorize(authorizationUrl, { user, appName, decision = 'authorize', scopes = [] }) {
    let res = await this.get(authorizationUrl);
    assert.equal(res.status, 302, res.body.slice(0, 500));
    const back = await this.signIn(res.location, user);
    assert.equal(new URL(back, `${BASE}/`).pathname, '/oauth/authorize', back);
    res = await this.get(back);
    assert.equal(res.status, 200, res.body.slice(0, 500));
    const page = parsePage(res.body);
    assert.equal(page.h1, `Authorize ${appName} to use your account?`);
    for (const scope of scopes) assert.ok(res.body.includes(`<strong>${scope}</strong>`), `scope ${scope} shown`);
    const form = onlyForm(page, '/oauth/authorize');
    res = await this.post(form.action, submit(form, decision === 'authorize' ? `Authorize ${appName}` : 'Deny'));
    assert.ok([302, 303].includes(res.status), `${res.status} ${res.body.slice(0, 500)}`);
    assert.ok(res.location?.startsWith(`${REDIRECT_URI}?`), `redirected to the client: ${res.location}`);
    return new URL(res.location);
  }

  /** Enter `userCode` on the device page (signing in first) and answer it. */
  async answerDevice(verificationUriComplete, userCode, { user, appName, decision }) {
    let res = await this.get(verificationUriComplete);
    if (res.status === 302) {
      const back = await this.signIn(res.location, user);
      res = await this.get(back);
    }
    assert.equal(res.status, 200, res.body.slice(0, 500));
    let page = parsePage(res.body);
    let form = onlyForm(page, '/oauth/device');
    const filled = form.inputs.find((i) => i.name === 'user_code');
    assert.equal(filled?.value, userCode, 'verification_uri_complete fills the code in');
    res = await this.post(form.action, submit(form, 'Continue'));
    assert.equal(res.status, 200, res.body.slice(0, 500));
    page = parsePage(res.body);
    assert.equal(page.h1, `Authorize ${appName} on your device?`);
    assert.ok(res.body.includes(userCode), 'the confirm page shows the code');
    form = onlyForm(page, '/oauth/device/confirm');
    res = await this.post(form.action, submit(form, decision === 'authorize' ? `Authorize ${appName}` : 'Deny'));
    assert.ok([200, 302, 303].includes(res.status), `${res.status} ${res.body.slice(0, 500)}`);
    return res;
  }
}

// --- checks ---------------------------------------------------------------------

function decodeJwt(jwt) {
  const [header, payload, signature] = jwt.split('.');
  assert.ok(signature, 'a signed JWT');
  return {
    header: JSON.parse(Buffer.from(header, 'base64url')),
    payload: JSON.parse(Buffer.from(payload, 'base64url')),
  };
}

/** The ID token openid-client validated, checked against what latchkey promises. */
function checkIdToken(tokens, { app, user, nonce, email }) {
  assert.equal(typeof tokens.id_token, 'string', 'an id_token');
  const claims = tokens.claims();
  assert.ok(claims, 'openid-client validated an ID token');
  assert.equal(claims.iss, BASE);
  assert.equal(claims.aud, app.application_id);
  assert.equal(claims.sub, String(user.id));
  assert.equal(claims.exp - claims.iat, 120, JSON.stringify(claims));
  assert.ok(Math.abs(claims.iat - Date.now() / 1000) < 60, `iat ${claims.iat}`);
  assert.equal(typeof claims.auth_time, 'number');
  assert.ok(claims.auth_time <= claims.iat, JSON.stringify(claims));
  if (nonce !== undefined) assert.equal(claims.nonce, nonce);
  assert.equal(claims.preferred_username, user.username);
  assert.equal(claims.nickname, user.username);
  assert.equal(claims.name, user.name);
  // GitLab puts `groups` in UserInfo only; ID tokens carry the direct
  // groups as `groups_direct` ([] for a user in none).
  assert.equal(claims.groups, undefined, 'groups is a UserInfo claim');
  assert.deepEqual(claims.groups_direct, []);
  if (email) {
    assert.equal(claims.email, user.email);
    assert.equal(typeof claims.email_verified, 'boolean');
  } else {
    assert.equal(claims.email, undefined, 'no email without the email scope');
  }
  const { header } = decodeJwt(tokens.id_token);
  assert.equal(header.alg, 'RS256');
  return claims;
}

/** A full code flow: authorization URL, browser, code exchange. */
async function codeFlow(config, { app, user, appName = app.application_name, scope }) {
  const verifier = client.randomPKCECodeVerifier();
  const challenge = await client.calculatePKCECodeChallenge(verifier);
  const state = client.randomState();
  const nonce = client.randomNonce();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT_URI,
    scope,
    code_challenge: challenge,
    code_challenge_method: 'S256',
    state,
    nonce,
  });
  assert.equal(`${url.origin}${url.pathname}`, `${BASE}/oauth/authorize`);
  assert.equal(url.searchParams.get('response_type'), 'code');
  const callback = await new Browser().authorize(url, { user, appName, scopes: scope.split(' ') });
  assert.equal(callback.searchParams.get('state'), state);
  // With openid, openid-client requires an ID token and checks its nonce.
  const openid = scope.split(' ').includes('openid');
  const tokens = await client.authorizationCodeGrant(config, callback, {
    pkceCodeVerifier: verifier,
    expectedState: state,
    ...(openid ? { expectedNonce: nonce, idTokenExpected: true } : {}),
  });
  return { tokens, nonce };
}

function tokenEndpointPath(url) {
  return new URL(url).pathname === '/oauth/token';
}

async function rejectsWith(promise, check) {
  let error;
  try {
    await promise;
  } catch (e) {
    error = e;
  }
  assert.ok(error, 'expected a rejection');
  check(error);
  return error;
}

function isOAuthError(code, status) {
  return (e) => {
    assert.ok(e instanceof client.ResponseBodyError,
      `an OAuth error response (ResponseBodyError ${code}), got ${e?.name}: ${e?.message} ${JSON.stringify(e?.cause ?? null)}`);
    assert.equal(e.error, code);
    if (status !== undefined) assert.equal(e.status, status);
  };
}

// --- the tests --------------------------------------------------------------------

test('discovery: openid-client accepts the provider metadata', async (t) => {
  const app = await makeApp(t);
  const config = await discover(app);
  const meta = config.serverMetadata();
  assert.equal(meta.issuer, BASE);
  assert.equal(meta.authorization_endpoint, `${BASE}/oauth/authorize`);
  assert.equal(meta.token_endpoint, `${BASE}/oauth/token`);
  assert.equal(meta.userinfo_endpoint, `${BASE}/oauth/userinfo`);
  assert.equal(meta.revocation_endpoint, `${BASE}/oauth/revoke`);
  assert.equal(meta.introspection_endpoint, `${BASE}/oauth/introspect`);
  assert.equal(meta.jwks_uri, `${BASE}/oauth/discovery/keys`);
  assert.equal(meta.device_authorization_endpoint, `${BASE}/oauth/authorize_device`);
  assert.equal(meta.registration_endpoint, `${BASE}/oauth/register`);
  assert.ok(meta.supportsPKCE('S256'), 'S256 PKCE is advertised');
  assert.deepEqual(meta.id_token_signing_alg_values_supported, ['RS256']);
  assert.ok(meta.response_types_supported.includes('code'));
  for (const s of ['openid', 'profile', 'email']) assert.ok(meta.scopes_supported.includes(s), s);
  for (const m of ['client_secret_basic', 'client_secret_post', 'none']) {
    assert.ok(meta.token_endpoint_auth_methods_supported.includes(m), m);
  }
  assert.equal(config.clientMetadata().client_id, app.application_id);

  // The JWKS the signatures are checked against: RSA signing keys with ids.
  const res = await fetch(meta.jwks_uri);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /^application\/(jwk-set\+)?json/);
  const { keys } = await res.json();
  assert.ok(keys.length >= 1);
  for (const k of keys) {
    assert.equal(k.kty, 'RSA');
    assert.ok(k.kid && k.n && k.e, JSON.stringify(k));
    assert.equal(k.d, undefined, 'no private parts in the JWKS');
  }
});

test('code flow, confidential client: PKCE S256, state, nonce; ID token, userinfo, refresh', async (t) => {
  const user = await makeUser();
  const app = await makeApp(t);
  const config = await discover(app);
  const scope = 'openid profile email';
  const { tokens, nonce } = await codeFlow(config, { app, user, scope });
  assert.equal(tokens.token_type, 'bearer');
  assert.equal(tokens.expires_in, 7200);
  assert.equal(tokens.scope, scope);
  assert.ok(tokens.refresh_token);
  const claims = checkIdToken(tokens, { app, user, nonce, email: true });

  // The key that signed it is in the JWKS (openid-client found it by kid).
  const { header } = decodeJwt(tokens.id_token);
  const jwks = await (await fetch(`${BASE}/oauth/discovery/keys`)).json();
  assert.ok(jwks.keys.some((k) => k.kid === header.kid), `kid ${header.kid} in the JWKS`);

  // userinfo, for the subject of the ID token.
  const info = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
  assert.equal(info.sub, String(user.id));
  assert.equal(info.preferred_username, user.username);
  assert.equal(info.nickname, user.username);
  assert.equal(info.name, user.name);
  assert.equal(info.email, user.email);
  // Someone else's subject is refused by the client.
  await rejectsWith(client.fetchUserInfo(config, tokens.access_token, String(user.id + 1000)), (e) => {
    assert.equal(e.code, 'OAUTH_JSON_ATTRIBUTE_COMPARISON_FAILED', `${e.code}: ${e.message}`);
    assert.equal(e.cause?.cause?.attribute, 'sub');
  });

  // Refresh: new tokens, a new ID token validated the same way, for the
  // same user and the same authentication (OIDC Core 12.2).
  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
  assert.notEqual(refreshed.access_token, tokens.access_token);
  assert.ok(refreshed.refresh_token && refreshed.refresh_token !== tokens.refresh_token);
  assert.notEqual(refreshed.id_token, tokens.id_token);
  const again = checkIdToken(refreshed, { app, user, email: true });
  assert.equal(again.sub, claims.sub);
  assert.equal(again.auth_time, claims.auth_time);
  if (again.nonce !== undefined) assert.equal(again.nonce, nonce);
  const info2 = await client.fetchUserInfo(config, refreshed.access_token, claims.sub);
  assert.equal(info2.preferred_username, user.username);
});

test('code flow, public client (none): PKCE S256 and an ID token without email', async (t) => {
  const user = await makeUser();
  const app = await makeApp(t, { scopes: 'openid read_user', confidential: false });
  const config = await discover(app);
  const scope = 'openid read_user';
  const { tokens, nonce } = await codeFlow(config, { app, user, scope });
  assert.equal(tokens.scope, scope);
  const claims = checkIdToken(tokens, { app, user, nonce, email: false });
  const info = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
  assert.equal(info.sub, claims.sub);
  assert.equal(info.email, undefined, 'no email without the email scope');

  // A public client refreshes with its client_id alone.
  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
  checkIdToken(refreshed, { app, user, email: false });
});

test('a tampered ID token signature is refused (the JWKS check is real)', async (t) => {
  const user = await makeUser();
  const app = await makeApp(t);
  const config = await discover(app);
  // Flip a byte of the ID token's signature in the token response.
  config[client.customFetch] = async (url, options) => {
    const res = await fetch(url, options);
    if (!tokenEndpointPath(url) || res.status !== 200) return res;
    const body = await res.json();
    const [h, p, s] = body.id_token.split('.');
    const sig = Buffer.from(s, 'base64url');
    sig[10] ^= 0x01;
    body.id_token = [h, p, sig.toString('base64url')].join('.');
    return new Response(JSON.stringify(body), { status: 200, headers: res.headers });
  };
  await rejectsWith(codeFlow(config, { app, user, scope: 'openid' }), (e) => {
    assert.equal(e.cause?.message, 'JWT signature verification failed', `${e.code}: ${e.message}: ${e.cause}`);
  });
});

test('userinfo needs the openid scope: 403 insufficient_scope', async (t) => {
  const user = await makeUser();
  const app = await makeApp(t);
  const config = await discover(app);
  const { tokens } = await codeFlow(config, { app, user, scope: 'read_user' });
  assert.equal(tokens.id_token, undefined, 'no ID token without openid');
  await rejectsWith(client.fetchUserInfo(config, tokens.access_token, client.skipSubjectCheck), (e) => {
    assert.ok(e instanceof client.WWWAuthenticateChallengeError, `${e.name}: ${e.message}`);
    assert.equal(e.status, 403);
    const bearer = e.cause.find((c) => c.scheme === 'bearer');
    assert.equal(bearer?.parameters.error, 'insufficient_scope', JSON.stringify(e.cause));
  });
});

test('introspection and revocation', async (t) => {
  const user = await makeUser();
  const app = await makeApp(t);
  const config = await discover(app);
  const { tokens } = await codeFlow(config, { app, user, scope: 'openid read_user' });

  const intro = await client.tokenIntrospection(config, tokens.access_token);
  assert.equal(intro.active, true);
  assert.equal(intro.client_id, app.application_id);
  assert.equal(intro.sub, String(user.id));
  assert.equal(intro.username, user.username);
  assert.equal(intro.scope, 'openid read_user');
  assert.equal(intro.token_type, 'Bearer');
  assert.equal(intro.exp - intro.iat, 7200);
  const introRefresh = await client.tokenIntrospection(config, tokens.refresh_token, { token_type_hint: 'refresh_token' });
  assert.equal(introRefresh.active, true);

  // Revoke the access token: introspection says inactive, userinfo refuses it.
  await client.tokenRevocation(config, tokens.access_token, { token_type_hint: 'access_token' });
  assert.deepEqual(await client.tokenIntrospection(config, tokens.access_token), { active: false });
  await rejectsWith(client.fetchUserInfo(config, tokens.access_token, String(user.id)), (e) => {
    assert.ok(e instanceof client.WWWAuthenticateChallengeError, `${e.name}: ${e.message}`);
    assert.equal(e.status, 401);
    assert.equal(e.cause.find((c) => c.scheme === 'bearer')?.parameters.error, 'invalid_token', JSON.stringify(e.cause));
  });
  // RFC 7009 §2.2: an unknown token is not an error.
  await client.tokenRevocation(config, 'not-a-token');

  // Revoke the refresh token: refreshing is refused with invalid_grant.
  await client.tokenRevocation(config, tokens.refresh_token, { token_type_hint: 'refresh_token' });
  assert.deepEqual(await client.tokenIntrospection(config, tokens.refresh_token), { active: false });
  await rejectsWith(client.refreshTokenGrant(config, tokens.refresh_token), isOAuthError('invalid_grant', 400));
});

test('client credentials, with client_secret_basic and client_secret_post', async (t) => {
  const app = await makeApp(t);
  for (const auth of [client.ClientSecretBasic(app.secret), client.ClientSecretPost(app.secret)]) {
    const config = await discover(app, auth);
    const tokens = await client.clientCredentialsGrant(config, { scope: 'read_user' });
    assert.equal(tokens.token_type, 'bearer');
    assert.equal(tokens.scope, 'read_user');
    assert.equal(tokens.expires_in, 7200);
    assert.equal(tokens.refresh_token, undefined);
    assert.equal(tokens.id_token, undefined);
    const intro = await client.tokenIntrospection(config, tokens.access_token);
    assert.equal(intro.active, true);
    assert.equal(intro.client_id, app.application_id);
    assert.equal(intro.scope, 'read_user');
    assert.equal(intro.sub ?? null, null, 'no user behind the token');
  }
  // A wrong secret: 401 invalid_client.
  const bad = await discover(app, client.ClientSecretBasic(`gloas-${'0'.repeat(64)}`));
  await rejectsWith(client.clientCredentialsGrant(bad, { scope: 'read_user' }), (e) => {
    assert.equal(e.status, 401, `${e.name}: ${e.message}`);
  });
});

// The device grant polls every `interval` (5) seconds: these run side by side.
describe('device authorization grant (RFC 8628)', { concurrency: true }, () => {
  async function start(t, scope) {
    const user = await makeUser();
    const app = await makeApp(t, { scopes: 'openid profile read_user' });
    const config = await discover(app);
    const da = await client.initiateDeviceAuthorization(config, { scope });
    assert.equal(da.verification_uri, `${BASE}/oauth/device`);
    assert.equal(da.verification_uri_complete, `${BASE}/oauth/device?user_code=${encodeURIComponent(da.user_code)}`);
    assert.equal(da.expires_in, 300);
    assert.equal(da.interval, 5);
    assert.ok(da.device_code.length >= 32 && da.user_code.length >= 8, JSON.stringify(da));
    return { user, app, config, da };
  }

  test('the user approves while the device polls: authorization_pending, then tokens', { timeout: 60_000 }, async (t) => {
    const { user, app, config, da } = await start(t, 'openid read_user');
    // The device polls as openid-client does; the user approves after the
    // first poll was answered (as authorization_pending).
    const polls = [];
    config[client.customFetch] = async (url, options) => {
      const res = await fetch(url, options);
      if (tokenEndpointPath(url)) {
        polls.push(res.status);
        if (polls.length === 1) {
          await new Browser().answerDevice(da.verification_uri_complete, da.user_code, {
            user, appName: app.application_name, decision: 'authorize',
          });
        }
      }
      return res;
    };
    const tokens = await client.pollDeviceAuthorizationGrant(config, da);
    assert.deepEqual(polls, [400, 200]);
    assert.equal(tokens.scope, 'openid read_user');
    checkIdToken(tokens, { app, user, email: false });
    const info = await client.fetchUserInfo(config, tokens.access_token, String(user.id));
    assert.equal(info.preferred_username, user.username);
  });

  test('the user approves before the first poll: tokens and a validated ID token', { timeout: 60_000 }, async (t) => {
    const { user, app, config, da } = await start(t, 'openid profile');
    // Too early: the grant is pending (asked by hand, as openid-client waits
    // `interval` before its first poll).
    const early = await fetch(`${BASE}/oauth/token`, {
      method: 'POST',
      body: new URLSearchParams({
        grant_type: DEVICE_CODE_GRANT, device_code: da.device_code,
        client_id: app.application_id, client_secret: app.secret,
      }),
    });
    assert.equal(early.status, 400);
    assert.equal((await early.json()).error, 'authorization_pending');
    await new Browser().answerDevice(da.verification_uri_complete, da.user_code, {
      user, appName: app.application_name, decision: 'authorize',
    });
    const tokens = await client.pollDeviceAuthorizationGrant(config, da);
    assert.equal(tokens.scope, 'openid profile');
    assert.ok(tokens.refresh_token);
    checkIdToken(tokens, { app, user, email: false });
    // The device code is spent.
    await rejectsWith(client.genericGrantRequest(config, DEVICE_CODE_GRANT, { device_code: da.device_code }), (e) => {
      assert.equal(e.status, 400, `${e.name}: ${e.message}`);
    });
  });

  test('the user denies: the device gets access_denied', { timeout: 60_000 }, async (t) => {
    const { user, app, config, da } = await start(t, 'openid read_user');
    await new Browser().answerDevice(da.verification_uri_complete, da.user_code, {
      user, appName: app.application_name, decision: 'deny',
    });
    await rejectsWith(client.pollDeviceAuthorizationGrant(config, da), isOAuthError('access_denied', 400));
  });
});

describe('OpenID Connect prompt and max_age, RFC 9207 iss', () => {
  async function pkceParams(config, extra) {
    const verifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const nonce = client.randomNonce();
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: REDIRECT_URI,
      scope: 'openid',
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
      nonce,
      ...extra,
    });
    return { url, checks: { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce, idTokenExpected: true } };
  }

  test('prompt=none: login_required signed out, consent_required untrusted, a code when trusted', async (t) => {
    const user = await makeUser();
    const app = await makeApp(t);
    const config = await discover(app);
    assert.equal(config.serverMetadata().authorization_response_iss_parameter_supported, true);
    const browser = new Browser();

    let { url, checks } = await pkceParams(config, { prompt: 'none' });
    let res = await browser.get(url);
    assert.equal(res.status, 302, res.body.slice(0, 300));
    let callback = new URL(res.location);
    assert.equal(callback.searchParams.get('iss'), BASE, 'RFC 9207 iss on an error response');
    // openid-client (oauth4webapi) checks iss, then reports the error.
    await rejectsWith(client.authorizationCodeGrant(config, callback, checks), (e) => {
      assert.ok(e instanceof client.AuthorizationResponseError, `${e.name}: ${e.message}`);
      assert.equal(e.error, 'login_required');
    });

    await browser.signIn('/users/sign_in', user);
    ({ url, checks } = await pkceParams(config, { prompt: 'none' }));
    res = await browser.get(url);
    await rejectsWith(client.authorizationCodeGrant(config, new URL(res.location), checks), (e) => {
      assert.equal(e.error, 'consent_required', `${e.name}: ${e.message}`);
    });

    const put = await admin('PUT', `/applications/${app.id}`, { trusted: true });
    assert.equal(put.status, 200, put.text);
    ({ url, checks } = await pkceParams(config, { prompt: 'none' }));
    res = await browser.get(url);
    assert.equal(res.status, 302, res.body.slice(0, 300));
    const tokens = await client.authorizationCodeGrant(config, new URL(res.location), checks);
    checkIdToken(tokens, { app, user, nonce: checks.expectedNonce, email: false });
  });

  test('max_age and prompt=login ask for a fresh sign-in; openid-client checks auth_time', async (t) => {
    const user = await makeUser();
    const app = await makeApp(t);
    const config = await discover(app);
    const browser = new Browser();
    await browser.signIn('/users/sign_in', user);
    for (const extra of [{ max_age: '1' }, { prompt: 'login' }]) {
      await new Promise((r) => setTimeout(r, 2100));
      const { url, checks } = await pkceParams(config, extra);
      let res = await browser.get(url);
      assert.equal(res.status, 302, res.body.slice(0, 300));
      assert.equal(new URL(res.location, `${BASE}/`).pathname, '/users/sign_in', `${JSON.stringify(extra)}: ${res.location}`);
      const back = await browser.signIn(res.location, user);
      res = await browser.get(back);
      assert.equal(res.status, 200, res.body.slice(0, 300));
      const form = onlyForm(parsePage(res.body), '/oauth/authorize');
      res = await browser.post(form.action, submit(form, `Authorize ${app.application_name}`));
      const callback = new URL(res.location);
      assert.equal(callback.searchParams.get('iss'), BASE);
      const tokens = await client.authorizationCodeGrant(config, callback, { ...checks, maxAge: 1 });
      const claims = checkIdToken(tokens, { app, user, nonce: checks.expectedNonce, email: false });
      assert.ok(Date.now() / 1000 - claims.auth_time < 2, `a fresh auth_time: ${claims.auth_time}`);
    }
  });
});

describe('dynamic client registration (RFC 7591, 7592)', () => {
  test('a confidential client registers, gets tokens, is read, changed and deleted', async () => {
    const name = unique('dcr-confidential');
    const config = await client.dynamicClientRegistration(new URL(BASE), {
      client_name: name,
      redirect_uris: [REDIRECT_URI],
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: ['authorization_code', 'refresh_token', 'client_credentials'],
      scope: 'openid read_user',
    }, client.ClientSecretBasic(), { execute: EXECUTE });
    const reg = config.clientMetadata();
    assert.ok(reg.client_id && reg.client_secret, JSON.stringify(reg));
    assert.equal(reg.client_name, name);
    assert.deepEqual(reg.redirect_uris, [REDIRECT_URI]);
    assert.equal(reg.token_endpoint_auth_method, 'client_secret_basic');
    assert.ok(reg.registration_access_token, 'RFC 7592 registration_access_token');
    assert.ok(reg.registration_client_uri?.startsWith(`${BASE}/`), reg.registration_client_uri);

    const tokens = await client.clientCredentialsGrant(config, { scope: 'read_user' });
    assert.equal(tokens.scope, 'read_user');
    const intro = await client.tokenIntrospection(config, tokens.access_token);
    assert.equal(intro.active, true);
    assert.equal(intro.client_id, reg.client_id);

    // RFC 7592: read and update the registration with its access token.
    const auth = { Authorization: `Bearer ${reg.registration_access_token}` };
    let res = await fetch(reg.registration_client_uri, { headers: auth });
    let body = await res.text();
    assert.equal(res.status, 200, body);
    const read = JSON.parse(body);
    assert.equal(read.client_id, reg.client_id);
    assert.equal(read.client_name, name);
    res = await fetch(reg.registration_client_uri, {
      method: 'PUT',
      headers: { ...auth, 'Content-Type': 'application/json' },
      body: JSON.stringify({
        client_id: reg.client_id,
        client_name: `${name}-renamed`,
        redirect_uris: [REDIRECT_URI],
        token_endpoint_auth_method: 'client_secret_basic',
        grant_types: ['authorization_code', 'refresh_token', 'client_credentials'],
        scope: 'openid read_user',
      }),
    });
    body = await res.text();
    assert.equal(res.status, 200, body);
    assert.equal(JSON.parse(body).client_name, `${name}-renamed`);
    res = await fetch(reg.registration_client_uri, { headers: { Authorization: 'Bearer nope' } });
    assert.equal(res.status, 401, 'another token may not read the registration');

    // Delete: the client is gone, its credentials stop working.
    res = await fetch(reg.registration_client_uri, { method: 'DELETE', headers: auth });
    assert.equal(res.status, 204, await res.text());
    await rejectsWith(client.clientCredentialsGrant(config, { scope: 'read_user' }), (e) => {
      assert.equal(e.status, 401, `${e.name}: ${e.message}`);
    });
    await rejectsWith(client.tokenIntrospection(config, tokens.access_token), (e) => {
      assert.equal(e.status, 401, `${e.name}: ${e.message}`);
    });
  });

  test('a public client registers and signs a user in with the code flow', async () => {
    const user = await makeUser();
    const name = unique('dcr-public');
    const config = await client.dynamicClientRegistration(new URL(BASE), {
      client_name: name,
      redirect_uris: [REDIRECT_URI],
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code', 'refresh_token'],
      scope: 'openid profile email',
    }, client.None(), { execute: EXECUTE });
    const reg = config.clientMetadata();
    assert.equal(reg.client_secret, undefined, 'a public client gets no secret');
    assert.equal(reg.token_endpoint_auth_method, 'none');
    const app = { application_id: reg.client_id };
    const { tokens, nonce } = await codeFlow(config, { app, user, appName: name, scope: 'openid profile email' });
    const claims = checkIdToken(tokens, { app, user, nonce, email: true });
    const info = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
    assert.equal(info.email, user.email);

    const res = await fetch(reg.registration_client_uri, {
      method: 'DELETE', headers: { Authorization: `Bearer ${reg.registration_access_token}` },
    });
    assert.equal(res.status, 204, await res.text());
  });
});
