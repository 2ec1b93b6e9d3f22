// Compatibility suite: a real browser through latchkey's OAuth pages.
//
// Debian's headless Chromium (/usr/bin/chromium), driven by playwright-core,
// opens an authorization URL signed out, is sent to the sign-in page, signs
// in by typing into the form and clicking "Sign in", reads the consent page
// and clicks "Authorize <app>" or "Deny". The redirect to the client
// (https://client.example/cb, which does not exist and is made not to
// resolve) is caught as the request the browser makes; the code is then
// exchanged at /oauth/token with fetch, as the client's backend would.
//
// compat/run.sh starts the server and sets LATCHKEY_URL and LATCHKEY_TOKEN
// (root's personal access token). Screenshots go to $LATCHKEY_COMPAT_OUT,
// else compat/browser/out.
//
//   node --test compat/browser/oauth_consent.test.mjs

import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

const BASE = (process.env.LATCHKEY_URL ?? '').replace(/\/+$/, '');
const ROOT_TOKEN = process.env.LATCHKEY_TOKEN ?? '';
const CHROMIUM = process.env.LATCHKEY_CHROMIUM ?? '/usr/bin/chromium';
const OUT = process.env.LATCHKEY_COMPAT_OUT
  ? join(process.env.LATCHKEY_COMPAT_OUT, 'browser')
  : join(dirname(fileURLToPath(import.meta.url)), 'out');
const REDIRECT_URI = 'https://client.example/cb';
const PASSWORD = 'correct horse battery';
const SCOPES = ['read_user', 'api'];

assert.ok(BASE && ROOT_TOKEN, 'LATCHKEY_URL and LATCHKEY_TOKEN must be set: run through compat/run.sh');

const unique = (prefix) => `compat-${prefix}-${randomBytes(4).toString('hex')}`;

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
  const username = unique('browser');
  const res = await admin('POST', '/users', {
    username,
    email: `${username}@example.com`,
    name: `Browser ${username.slice(-8)}`,
    password: PASSWORD,
  });
  assert.equal(res.status, 201, res.text);
  return res.json;
}

async function makeApp(t) {
  const res = await admin('POST', '/applications', {
    name: unique('browser-app'),
    redirect_uri: REDIRECT_URI,
    scopes: SCOPES.join(' '),
    confidential: true,
  });
  assert.equal(res.status, 201, res.text);
  t.after(async () => {
    const del = await admin('DELETE', `/applications/${res.json.id}`);
    assert.ok([204, 404].includes(del.status), del.text);
  });
  return res.json;
}

function pkce() {
  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  return { verifier, challenge };
}

/** A fresh Chromium with its own profile; closed and removed after the test. */
async function openBrowser(t) {
  const profile = await mkdtemp(join(tmpdir(), 'latchkey-chromium-'));
  let context;
  t.after(async () => {
    try {
      await context?.close();
    } finally {
      await rm(profile, { recursive: true, force: true });
    }
  });
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox', '--headless', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      // Nothing leaves this machine: the client's host resolves nowhere.
      '--host-resolver-rules=MAP client.example ~NOTFOUND',
    ],
    viewport: { width: 900, height: 700 },
    timeout: 60_000,
  });
  context.setDefaultTimeout(15_000);

  // The client's redirect URI does not exist (and the host resolver is told
  // so, above). Playwright's routes do not see a redirect's later hops, so
  // the redirect is caught as the request the browser makes, which also
  // shows that the consent page's CSP (form-action) let the browser go there.
  const callbacks = [];
  context.on('request', (req) => {
    if (req.url().startsWith(`${REDIRECT_URI}?`)) callbacks.push(req);
  });

  // Every HTML page latchkey serves (headers: a promise), and its stylesheets.
  const pages = [];
  const stylesheets = [];
  context.on('response', (res) => {
    if (!res.url().startsWith(`${BASE}/`)) return;
    const kind = res.request().resourceType();
    if (kind === 'stylesheet') stylesheets.push({ url: res.url(), status: res.status() });
    if (kind !== 'document') return;
    pages.push({ url: res.url(), status: res.status(), headers: res.allHeaders().catch((e) => ({ error: String(e) })) });
  });

  const page = context.pages()[0] ?? (await context.newPage());
  // What the browser complains about on latchkey's pages (a CSP violation,
  // a stylesheet that did not load, ...).
  const complaints = [];
  page.on('console', (msg) => {
    if (!['error', 'warning'].includes(msg.type())) return;
    const where = msg.location().url;
    if (where && new URL(where).pathname === '/favicon.ico') return; // there is none; fine
    complaints.push(`${msg.type()}: ${msg.text()} (${where})`);
  });
  page.on('pageerror', (err) => complaints.push(`pageerror: ${err.message}`));
  return { context, page, callbacks, pages, stylesheets, complaints };
}

async function screenshot(page, name) {
  await mkdir(OUT, { recursive: true });
  const path = join(OUT, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

async function assertSecurityHeaders(entry) {
  const h = await entry.headers;
  assert.equal(h['x-frame-options'], 'DENY', `X-Frame-Options on ${entry.url}`);
  assert.ok(h['content-security-policy'], `Content-Security-Policy on ${entry.url}`);
  assert.match(h['content-security-policy'], /frame-ancestors 'none'/);
  assert.match(h['cache-control'] ?? '', /\bno-store\b/, `Cache-Control on ${entry.url}`);
  assert.match(h['content-type'] ?? '', /^text\/html/, `Content-Type on ${entry.url}`);
}

/** Open the authorize URL signed out, sign in, and stop at the consent page. */
async function signInToConsent(t, shotPrefix) {
  const user = await makeUser();
  const app = await makeApp(t);
  const b = await openBrowser(t);
  const { verifier, challenge } = pkce();
  const state = randomBytes(12).toString('base64url');
  const authorize = new URL(`${BASE}/oauth/authorize`);
  authorize.search = new URLSearchParams({
    client_id: app.application_id,
    redirect_uri: REDIRECT_URI,
    response_type: 'code',
    state,
    scope: SCOPES.join(' '),
    code_challenge: challenge,
    code_challenge_method: 'S256',
  }).toString();

  // Signed out: the authorize URL sends the browser to sign in.
  await b.page.goto(authorize.toString());
  const signIn = new URL(b.page.url());
  assert.equal(signIn.origin, BASE);
  assert.equal(signIn.pathname, '/users/sign_in');
  const returnTo = signIn.searchParams.get('return_to');
  assert.ok(returnTo?.startsWith('/oauth/authorize?'), `return_to=${returnTo}`);
  await b.page.getByRole('heading', { name: 'Sign in' }).waitFor();
  assert.match(await b.page.title(), /Sign in/);
  await screenshot(b.page, `${shotPrefix}-1-sign-in`);
  const signInPage = b.pages.find((p) => new URL(p.url).pathname === '/users/sign_in' && p.status === 200);
  assert.ok(signInPage, 'the sign-in page response was seen');
  await assertSecurityHeaders(signInPage);

  // Type the credentials and click "Sign in": back to the authorize URL.
  await b.page.getByLabel('Username or email').fill(user.username);
  await b.page.getByLabel('Password', { exact: true }).fill(PASSWORD);
  await Promise.all([
    b.page.waitForURL((u) => u.pathname === '/oauth/authorize'),
    b.page.getByRole('button', { name: 'Sign in' }).click(),
  ]);

  // The consent page names the application, the user and the scopes.
  const heading = b.page.getByRole('heading', { level: 1 });
  assert.equal((await heading.textContent()).trim(), `Authorize ${app.application_name} to use your account?`);
  const body = await b.page.locator('main').innerText();
  assert.ok(body.includes(user.username), body);
  const scopes = (await b.page.locator('ul.scopes li strong').allTextContents()).map((s) => s.trim());
  assert.deepEqual(scopes.sort(), [...SCOPES].sort());
  assert.ok(body.includes('client.example'), `the consent page says where the browser will go: ${body}`);
  await b.page.getByRole('button', { name: `Authorize ${app.application_name}` }).waitFor();
  await b.page.getByRole('button', { name: 'Deny' }).waitFor();
  await screenshot(b.page, `${shotPrefix}-2-consent`);
  const consentPage = b.pages.find((p) => new URL(p.url).pathname === '/oauth/authorize' && p.status === 200);
  assert.ok(consentPage, 'the consent page response was seen');
  await assertSecurityHeaders(consentPage);
  // The consent form may post to latchkey and be redirected to the client only.
  assert.match((await consentPage.headers)['content-security-policy'], /form-action 'self' https:\/\/client\.example(;|\s|$)/);
  // Both pages loaded their stylesheet and nothing broke the CSP.
  assert.deepEqual(b.complaints, []);
  assert.ok(b.stylesheets.some((s) => s.status === 200), `stylesheets: ${JSON.stringify(b.stylesheets)}`);
  const [authorizeBg, denyBg] = await Promise.all(
    [`Authorize ${app.application_name}`, 'Deny'].map((name) => b.page.getByRole('button', { name })
      .evaluate((el) => getComputedStyle(el).backgroundColor)),
  );
  assert.notEqual(authorizeBg, denyBg, 'the stylesheet sets the primary button apart');

  return { user, app, b, state, verifier };
}

/** Click a consent button; return the URL latchkey redirected the browser to. */
async function followToClient(b, button) {
  const failed = b.page.waitForEvent('requestfailed', (r) => r.url().startsWith(`${REDIRECT_URI}?`));
  await b.page.getByRole('button', { name: button }).click();
  // The client's host does not resolve, so the navigation ends there; any
  // other failure (ERR_BLOCKED_BY_CSP, say) means the browser refused to go.
  const failure = (await failed).failure()?.errorText;
  assert.equal(failure, 'net::ERR_NAME_NOT_RESOLVED');
  assert.equal(b.callbacks.length, 1, `requests to the client: ${b.callbacks.map((r) => r.url())}`);
  const req = b.callbacks[0];
  assert.equal(req.isNavigationRequest(), true);
  const from = req.redirectedFrom();
  assert.ok(from, 'the browser reached the client by a redirect');
  assert.equal(from.method(), 'POST');
  assert.equal(new URL(from.url()).pathname, '/oauth/authorize');
  const res = await from.response();
  assert.ok([302, 303].includes(res.status()), `consent answer status ${res.status()}`);
  return new URL(req.url());
}

test('sign in, authorize, exchange the code, call the API', { timeout: 120_000 }, async (t) => {
  const { user, app, b, state, verifier } = await signInToConsent(t, 'authorize');

  const callback = await followToClient(b, `Authorize ${app.application_name}`);
  assert.equal(`${callback.origin}${callback.pathname}`, REDIRECT_URI);
  assert.equal(callback.searchParams.get('state'), state);
  const code = callback.searchParams.get('code');
  assert.ok(code && code.length >= 32, `code=${code}`);
  assert.equal(callback.searchParams.get('error'), null);

  // The client's backend: code + PKCE verifier + HTTP Basic client auth.
  const basic = Buffer.from(`${app.application_id}:${app.secret}`).toString('base64');
  const tokenRes = await fetch(`${BASE}/oauth/token`, {
    method: 'POST',
    headers: { Authorization: `Basic ${basic}`, Accept: 'application/json' },
    body: new URLSearchParams({
      grant_type: 'authorization_code',
      code,
      redirect_uri: REDIRECT_URI,
      code_verifier: verifier,
    }),
  });
  const tokenText = await tokenRes.text();
  assert.equal(tokenRes.status, 200, tokenText);
  const token = JSON.parse(tokenText);
  assert.equal(token.token_type, 'Bearer');
  assert.equal(token.expires_in, 7200);
  assert.deepEqual(token.scope.split(' ').sort(), [...SCOPES].sort());
  assert.ok(token.access_token && token.refresh_token);

  const me = await fetch(`${BASE}/api/v4/user`, {
    headers: { Authorization: `Bearer ${token.access_token}` },
  });
  const meText = await me.text();
  assert.equal(me.status, 200, meText);
  const meJson = JSON.parse(meText);
  assert.equal(meJson.id, user.id);
  assert.equal(meJson.username, user.username);
  assert.equal(meJson.email, user.email);

  // The code was for one use only.
  const again = await fetch(`${BASE}/oauth/token`, {
    method: 'POST',
    headers: { Authorization: `Basic ${basic}` },
    body: new URLSearchParams({
      grant_type: 'authorization_code', code, redirect_uri: REDIRECT_URI, code_verifier: verifier,
    }),
  });
  assert.equal(again.status, 400);
  assert.equal((await again.json()).error, 'invalid_grant');
});

test('sign in, deny: the client gets error=access_denied', { timeout: 120_000 }, async (t) => {
  const { b, state } = await signInToConsent(t, 'deny');

  const callback = await followToClient(b, 'Deny');
  assert.equal(`${callback.origin}${callback.pathname}`, REDIRECT_URI);
  assert.equal(callback.searchParams.get('error'), 'access_denied');
  assert.equal(callback.searchParams.get('state'), state);
  assert.equal(callback.searchParams.get('code'), null);
});
