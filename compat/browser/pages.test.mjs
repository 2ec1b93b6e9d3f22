// Compatibility suite: a real browser through every latchkey page and form,
// used as a person would: typing into labelled fields, clicking buttons by
// their accessible name, following the links of the nav bars.
//
// Each state a walk reaches is checked by `Walk.check`:
//   - a full-page screenshot at desktop width (1280) and on a phone
//     (390x844), and no sideways scroll on the phone;
//   - axe-core on both: no violation of impact "serious" or "critical";
//   - the security headers of the HTML answer (X-Frame-Options DENY, a CSP
//     with frame-ancestors 'none', Cache-Control no-store, text/html);
//   - nothing in the console: no CSP violation, no script error.
//
// The walks are lists of steps (`steps.push(['name', async (w) => …])`), each
// one a subtest; to cover a new page, add a step where a person would reach
// it. Besides the steps, `walkBar` follows every link of a nav bar (User
// settings, Admin Area) and checks the page it leads to, so a page another
// branch adds to a bar is screenshotted and checked without a step of its
// own; pages that are not linked yet are not visited (nothing is faked).
//
// compat/run.sh starts the server (Admin Mode off) and sets LATCHKEY_URL,
// LATCHKEY_TOKEN (root's personal access token) and LATCHKEY_BIN; the admin
// walk runs there and again on a server of its own with Admin Mode on
// (skipped, and said so, without LATCHKEY_BIN). Screenshots go to
// $LATCHKEY_COMPAT_OUT/browser/pages, else compat/browser/out/pages, named
// <walk>-<step number>-<state>-<desktop|phone>.png.
//
//   node --test compat/browser/pages.test.mjs

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, open as openFile, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

const require = createRequire(import.meta.url);

const BASE = (process.env.LATCHKEY_URL ?? '').replace(/\/+$/, '');
const ROOT_TOKEN = process.env.LATCHKEY_TOKEN ?? '';
const CHROMIUM = process.env.LATCHKEY_CHROMIUM ?? '/usr/bin/chromium';
const OUT = join(
  process.env.LATCHKEY_COMPAT_OUT
    ? join(process.env.LATCHKEY_COMPAT_OUT, 'browser')
    : join(dirname(fileURLToPath(import.meta.url)), 'out'),
  'pages',
);
const REDIRECT_URI = 'https://client.example/cb';
const PASSWORD = 'correct horse battery';
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };

assert.ok(BASE && ROOT_TOKEN, 'LATCHKEY_URL and LATCHKEY_TOKEN must be set: run through compat/run.sh');

// axe-core is put into each page with page.evaluate, i.e. CDP's
// Runtime.evaluate, which the page's CSP does not govern. The obvious
// page.addScriptTag({ path }) inserts an inline <script> (Playwright reads
// the file and inlines it), which latchkey's `script-src 'self'` refuses:
// axe never loads and the refusal lands in the console as a CSP violation.
// bypassCSP: true would let it in, but then the walk would no longer see the
// pages under the CSP they are served with; evaluating the source keeps the
// CSP on for everything the pages do themselves.
const AXE_SOURCE = await readFile(require.resolve('axe-core/axe.min.js'), 'utf8');

const unique = (prefix) => `compat-${prefix}-${randomBytes(4).toString('hex')}`;

/** The server compat/run.sh started; `ownServer` starts others. */
const MAIN = { base: BASE, token: ROOT_TOKEN };

async function api(method, path, body, token = undefined, server = MAIN) {
  const res = await fetch(`${server.base}/api/v4${path}`, {
    method,
    headers: { 'PRIVATE-TOKEN': token ?? server.token, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
  return { status: res.status, json, text };
}

async function makeUser(t, { admin = false, prefix = 'pages', server = MAIN } = {}) {
  const username = unique(prefix);
  const res = await api('POST', '/users', {
    username,
    email: `${username}@example.com`,
    name: `Pages ${username.slice(-8)}`,
    password: PASSWORD,
    admin,
    skip_confirmation: true,
  }, undefined, server);
  assert.equal(res.status, 201, res.text);
  // A server of the test's own goes with its database.
  if (server === MAIN) t.after(async () => {
    const del = await api('DELETE', `/users/${res.json.id}?hard_delete=true`, undefined, undefined, server);
    assert.ok([202, 204, 404].includes(del.status), del.text);
  });
  return { ...res.json, password: PASSWORD };
}

/**
 * A latchkey of this test's own (LATCHKEY_BIN, as compat/run.sh sets it) on
 * a free port with a database in a temporary directory and the given
 * settings; stopped and removed after the test. Null without LATCHKEY_BIN.
 */
async function ownServer(t, env) {
  const bin = process.env.LATCHKEY_BIN;
  if (!bin) return null;
  const port = await new Promise((resolve, reject) => {
    const probe = createServer();
    probe.on('error', reject);
    probe.listen(0, '127.0.0.1', () => { const { port: p } = probe.address(); probe.close(() => resolve(p)); });
  });
  const dir = await mkdtemp(join(tmpdir(), 'latchkey-pages-'));
  const base = `http://127.0.0.1:${port}`;
  const token = `glpat-${randomBytes(18).toString('base64url')}`;
  const log = await openFile(join(dir, 'server.log'), 'w');
  const child = spawn(bin, ['serve'], {
    env: {
      ...process.env,
      LATCHKEY_LISTEN: `127.0.0.1:${port}`,
      LATCHKEY_DATABASE_URL: `sqlite://${dir}/latchkey.db?mode=rwc`,
      LATCHKEY_EXTERNAL_URL: base,
      LATCHKEY_ROOT_TOKEN: token,
      LATCHKEY_LOG: 'warn',
      ...env,
    },
    stdio: ['ignore', log.fd, log.fd],
  });
  const exited = new Promise((resolve) => child.on('exit', resolve));
  t.after(async () => {
    if (child.exitCode === null) {
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
      if (child.exitCode === null) child.kill('SIGKILL');
    }
    await log.close();
    await rm(dir, { recursive: true, force: true });
  });
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) {
      assert.fail(`latchkey ${JSON.stringify(env)} exited: ${await readFile(join(dir, 'server.log'), 'utf8')}`);
    }
    try {
      if ((await fetch(`${base}/-/readiness`)).status === 200) break;
    } catch { /* not listening yet */ }
    assert.ok(Date.now() < deadline, `latchkey ${JSON.stringify(env)} was not ready in 30 s`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return { base, token };
}

/** One person at one browser: a fresh Chromium profile, one tab. */
class Walk {
  static async open(t, name, server = MAIN) {
    const profile = await mkdtemp(join(tmpdir(), 'latchkey-chromium-'));
    const w = new Walk(t, name, server.base);
    t.after(async () => {
      try {
        await w.context?.close();
      } finally {
        await rm(profile, { recursive: true, force: true });
      }
    });
    w.context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--no-sandbox', '--headless', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync',
        '--host-resolver-rules=MAP client.example ~NOTFOUND',
      ],
      viewport: DESKTOP,
      timeout: 60_000,
    });
    w.context.setDefaultTimeout(15_000);
    await w.context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: w.base });
    w.page = w.context.pages()[0] ?? (await w.context.newPage());
    w.page.on('console', (msg) => {
      if (!['error', 'warning'].includes(msg.type())) return;
      const where = msg.location().url;
      // The client's redirect URI does not resolve, on purpose.
      if (where?.startsWith(REDIRECT_URI) || /ERR_NAME_NOT_RESOLVED/.test(msg.text())) return;
      w.complaints.push(`${msg.type()}: ${msg.text()} (${where})`);
    });
    w.page.on('pageerror', (err) => w.complaints.push(`pageerror: ${err.message}`));
    // latchkey's own script asks before a form marked data-confirm is sent.
    w.page.on('dialog', (d) => { w.dialogs.push(d.message()); d.accept(); });
    w.page.on('response', (res) => {
      if (res.request().resourceType() !== 'document' || res.frame() !== w.page.mainFrame()) return;
      if (!res.url().startsWith(`${w.base}/`)) return;
      w.last = { url: res.url(), status: res.status(), headers: res.allHeaders().catch((e) => ({ error: String(e) })) };
    });
    return w;
  }

  constructor(t, name, base) {
    this.t = t;
    this.name = name;
    this.base = base;
    this.shots = 0;
    this.complaints = [];
    this.dialogs = [];
    this.last = null;
  }

  get path() { return new URL(this.page.url()).pathname; }
  nav(name) { return this.page.getByRole('navigation', { name }); }
  main() { return this.page.locator('main'); }
  h1() { return this.page.getByRole('heading', { level: 1 }); }

  async goto(path) {
    const res = await this.page.goto(`${this.base}${path}`);
    return res;
  }

  /** Click a control and wait for the page it leads to. */
  async clickTo(locator, urlCheck) {
    await Promise.all([
      this.page.waitForURL(urlCheck ?? (() => true), { waitUntil: 'load' }),
      this.page.waitForEvent('load'),
      locator.click(),
    ]);
  }

  /**
   * Check the state the page is in: screenshots at both widths, axe, the
   * answer's security headers, the console. `status` is the HTML answer's.
   */
  async check(state, { status = 200 } = {}) {
    const where = `${this.name}/${state} (${this.page.url()})`;
    await this.page.waitForLoadState('load');
    assert.ok(this.last, `${where}: an HTML answer from latchkey was seen`);
    assert.equal(this.last.url.split('#')[0], this.page.url().split('#')[0], `${where}: the answer seen is this page's`);
    assert.equal(this.last.status, status, `${where}: status`);
    await assertSecurityHeaders(this.last);
    // The stylesheet applied (the CSP let it in): the header is styled.
    const brand = await this.page.locator('a.brand').evaluate((el) => getComputedStyle(el).fontWeight);
    assert.equal(brand, '700', `${where}: latchkey.css is applied`);

    this.shots += 1;
    const base = `${this.name}-${String(this.shots).padStart(2, '0')}-${state}`;
    await mkdir(OUT, { recursive: true });
    for (const [label, size] of [['desktop', DESKTOP], ['phone', PHONE]]) {
      await this.page.setViewportSize(size);
      if (label === 'phone') {
        const { scrollWidth, innerWidth } = await this.page.evaluate(() => ({
          scrollWidth: document.scrollingElement.scrollWidth, innerWidth: window.innerWidth,
        }));
        const wide = scrollWidth > innerWidth ? await this.widest() : '';
        assert.ok(scrollWidth <= innerWidth, `${where}: the phone scrolls sideways (${scrollWidth} > ${innerWidth}): ${wide}`);
      }
      await this.page.screenshot({ path: join(OUT, `${base}-${label}.png`), fullPage: true });
      await this.axe(`${where} at ${label} width`);
    }
    await this.page.setViewportSize(DESKTOP);
    // Chromium logs every error answer to a navigation; an expected one
    // (a refused form, a 404) is no complaint.
    const expected = `error: Failed to load resource: the server responded with a status of ${status} `;
    this.complaints = this.complaints.filter((c) => !(status >= 400 && c.startsWith(expected) && c.endsWith(`(${this.last.url})`)));
    assert.deepEqual(this.complaints, [], `${where}: the console`);
    this.complaints = [];
  }

  /** The elements wider than the phone's viewport, for a failure message. */
  async widest() {
    // Not those inside a box that scrolls or clips them.
    return this.page.evaluate(() => [...document.querySelectorAll('main *, header *')]
      .filter((el) => {
        if (el.getBoundingClientRect().right <= window.innerWidth + 1) return false;
        for (let p = el.parentElement; p && p !== document.body; p = p.parentElement) {
          if (getComputedStyle(p).overflowX !== 'visible') return false;
        }
        return true;
      })
      .slice(0, 5)
      .map((el) => `${el.tagName.toLowerCase()}${el.id ? `#${el.id}` : ''}${el.className ? `.${String(el.className).replace(/ /g, '.')}` : ''} (right ${Math.round(el.getBoundingClientRect().right)})`)
      .join(', '));
  }

  async axe(where) {
    const injected = await this.page.evaluate(() => typeof window.axe === 'object');
    if (!injected) await this.page.evaluate(AXE_SOURCE);
    const results = await this.page.evaluate(async () => {
      const r = await window.axe.run(document, { resultTypes: ['violations'] });
      return r.violations.map((v) => ({
        id: v.id, impact: v.impact, help: v.help,
        targets: v.nodes.map((n) => n.target.join(' ')),
      }));
    });
    const bad = results.filter((v) => ['serious', 'critical'].includes(v.impact));
    assert.deepEqual(
      bad.map((v) => `${v.id} (${v.impact}): ${v.help}: ${v.targets.join(', ')}`),
      [],
      `${where}: axe-core`,
    );
  }

  async signIn(user, password = user.password) {
    await this.page.getByLabel('Username or email').fill(user.username);
    await this.page.getByLabel('Password', { exact: true }).fill(password);
    await this.clickTo(this.page.getByRole('button', { name: 'Sign in' }));
  }

  /** Follow every link of a nav bar and check where each leads. */
  async walkBar(barName, prefix) {
    const links = await this.nav(barName).getByRole('link').evaluateAll(
      (as) => as.map((a) => ({ name: a.textContent.trim(), href: a.getAttribute('href') })),
    );
    assert.ok(links.length > 0, `links in the ${barName} bar`);
    for (const { name, href } of links) {
      await this.clickTo(this.nav(barName).getByRole('link', { name, exact: true }), (u) => u.pathname === href);
      assert.equal(
        await this.nav(barName).getByRole('link', { name, exact: true }).getAttribute('aria-current'),
        'page',
        `${barName} bar marks ${name} as the current page`,
      );
      await this.check(`${prefix}-${href.split('/').pop().replace(/[^a-z0-9]+/gi, '-')}`);
    }
    return links;
  }
}

async function assertSecurityHeaders(entry) {
  const h = await entry.headers;
  assert.equal(h['x-frame-options'], 'DENY', `X-Frame-Options on ${entry.url}`);
  assert.ok(h['content-security-policy'], `Content-Security-Policy on ${entry.url}`);
  assert.match(h['content-security-policy'], /frame-ancestors 'none'/, `CSP on ${entry.url}`);
  assert.match(h['content-security-policy'], /script-src 'self'/, `CSP on ${entry.url}`);
  // Every page here is per-user or shows a secret once: none may be cached.
  assert.match(h['cache-control'] ?? '', /\bno-store\b/, `Cache-Control on ${entry.url}`);
  assert.match(h['content-type'] ?? '', /^text\/html/, `Content-Type on ${entry.url}`);
}

/** Run named steps as subtests, in order; after a failure the rest are skipped. */
async function walkSteps(t, w, steps) {
  let broken = null;
  for (const [name, step] of steps) {
    await t.test(name, { skip: broken ? `an earlier step failed (${broken})` : false }, async () => {
      try {
        await step(w);
      } catch (e) {
        broken = name;
        throw e;
      }
    });
  }
}

/** The value of a read-only field shown once (a secret, a token). */
async function shownOnce(w, label) {
  const field = w.page.getByLabel(label, { exact: true });
  await field.waitFor();
  assert.equal(await field.getAttribute('readonly'), '');
  return field.inputValue();
}

/** Click the Copy button next to a field; the clipboard then holds its value. */
async function copies(w, buttonName, value) {
  const button = w.page.getByRole('button', { name: buttonName, exact: true });
  assert.ok(await button.isVisible(), `${buttonName} is shown (latchkey.js ran)`);
  await button.click();
  // It says so, in its text and in its name, then goes back to Copy.
  const copied = buttonName.replace(/^Copy\b/, 'Copied');
  await w.page.getByRole('button', { name: copied, exact: true }).filter({ hasText: /^Copied$/ }).waitFor();
  await button.filter({ hasText: /^Copy$/ }).waitFor();
  const clipboard = await w.page.evaluate(() => navigator.clipboard.readText());
  assert.equal(clipboard, value, `${buttonName}: the clipboard`);
}

async function tableRows(w, headingName) {
  // The table right after the h2, as lists of cell texts.
  const section = w.page.getByRole('heading', { level: 2, name: headingName });
  return section.evaluate((h) => {
    let el = h.nextElementSibling;
    while (el && !['TABLE', 'H2'].includes(el.tagName)) el = el.nextElementSibling;
    if (!el || el.tagName !== 'TABLE') return [];
    return [...el.querySelectorAll('tbody tr')].map((tr) => [...tr.cells].map((c) => c.innerText.trim()));
  });
}

test("a user's pages: sign-in, home, settings, profile, 404, consent", { timeout: 300_000 }, async (t) => {
  const user = await makeUser(t);
  const w = await Walk.open(t, 'user');
  const appName = unique('app');
  let clientId;
  let secret;
  let tokenName;
  let token;
  const newPassword = `${PASSWORD} renewed`;
  const steps = [];

  steps.push(['home, signed out', async () => {
    await w.goto('/');
    await w.h1().filter({ hasText: 'Welcome' }).waitFor();
    await w.check('home-signed-out');
    await w.clickTo(w.nav('Main').getByRole('link', { name: 'Sign in' }), (u) => u.pathname === '/users/sign_in');
  }]);

  steps.push(['sign-in: a wrong password, then the right one', async () => {
    await w.check('sign-in');
    await w.signIn(user, 'not the password');
    assert.equal(w.path, '/users/sign_in');
    await w.page.getByRole('alert').waitFor();
    // The login typed stays in the field; the password does not.
    assert.equal(await w.page.getByLabel('Username or email').inputValue(), user.username);
    assert.equal(await w.page.getByLabel('Password', { exact: true }).inputValue(), '');
    await w.check('sign-in-refused', { status: w.last.status });
    assert.ok([401, 422].includes(w.last.status), `a refused sign-in answers ${w.last.status}`);
    await w.signIn(user);
    assert.equal(w.path, '/');
  }]);

  steps.push(['home and the nav bar, signed in', async () => {
    assert.equal((await w.h1().textContent()).trim(), `Signed in as ${user.username}`);
    const bar = w.nav('Main');
    await bar.getByRole('link', { name: 'Settings' }).waitFor();
    await bar.getByRole('link', { name: user.username }).waitFor();
    await bar.getByRole('button', { name: 'Sign out' }).waitFor();
    assert.equal(await bar.getByRole('link', { name: 'Admin Area' }).count(), 0, 'no Admin Area for a user');
    await w.check('home');
    // Every link of the account list on the home page leads somewhere real.
    const links = await w.nav('Account').getByRole('link').evaluateAll(
      (as) => as.map((a) => ({ name: a.textContent.trim(), href: a.getAttribute('href') })),
    );
    for (const { name, href } of links) {
      await w.clickTo(w.nav('Account').getByRole('link', { name, exact: true }), (u) => u.pathname === href);
      await w.h1().waitFor();
      await w.clickTo(w.page.getByRole('link', { name: 'latchkey' }), (u) => u.pathname === '/');
    }
  }]);

  steps.push(['the profile page, from the nav bar', async () => {
    await w.clickTo(w.nav('Main').getByRole('link', { name: user.username }), (u) => u.pathname === `/${user.username}`);
    assert.equal((await w.h1().textContent()).trim(), user.name);
    assert.match(await w.main().innerText(), new RegExp(`@${user.username}`));
    await w.check('profile');
  }]);

  steps.push(['the User settings bar: every link', async () => {
    await w.clickTo(w.nav('Main').getByRole('link', { name: 'Settings' }), (u) => u.pathname === '/-/user_settings/applications');
    const links = await w.walkBar('User settings', 'settings');
    const hrefs = links.map((l) => l.href);
    for (const want of ['/-/user_settings/applications', '/-/user_settings/personal_access_tokens', '/-/user_settings/password']) {
      assert.ok(hrefs.includes(want), `the User settings bar links ${want}: ${hrefs}`);
    }
  }]);

  steps.push(['applications: create one with the form, the secret shown once', async () => {
    await w.clickTo(w.nav('User settings').getByRole('link', { name: 'Applications' }), (u) => u.pathname === '/-/user_settings/applications');
    await w.page.getByLabel('Name', { exact: true }).fill(appName);
    await w.page.getByLabel('Redirect URI').fill(REDIRECT_URI);
    const confidential = w.page.getByRole('checkbox', { name: /^Confidential/ });
    assert.equal(await confidential.isChecked(), true, 'confidential by default');
    await w.page.getByRole('checkbox', { name: /^read_user\b/ }).check();
    await w.page.getByRole('checkbox', { name: /^openid\b/ }).check();
    await w.clickTo(w.page.getByRole('button', { name: 'Save application' }));
    await w.page.getByRole('status').waitFor();
    clientId = await shownOnce(w, 'Application ID');
    secret = await shownOnce(w, 'Secret');
    assert.match(clientId, /^[0-9a-f]{64}$/);
    assert.ok(secret.length >= 32, secret);
    await copies(w, 'Copy the secret', secret);
    await copies(w, 'Copy the application ID', clientId);
    const rows = await tableRows(w, 'Your applications');
    assert.ok(rows.some((r) => r[0] === appName && r[1] === clientId), JSON.stringify(rows));
    await w.check('applications-created');
  }]);

  steps.push(['applications: the secret is not shown again', async () => {
    await w.clickTo(w.nav('User settings').getByRole('link', { name: 'Applications' }), (u) => u.pathname === '/-/user_settings/applications');
    assert.equal(await w.page.getByRole('status').count(), 0);
    assert.ok(!(await w.page.content()).includes(secret), 'the secret is not on the page');
    await w.check('applications-list');
  }]);

  steps.push(['applications: an invalid redirect URI is refused with a message', async () => {
    await w.page.getByLabel('Name', { exact: true }).fill(unique('bad-app'));
    await w.page.getByLabel('Redirect URI').fill('not a url');
    await w.page.getByRole('checkbox', { name: /^read_user\b/ }).check();
    await w.clickTo(w.page.getByRole('button', { name: 'Save application' }));
    await w.page.getByRole('alert').waitFor();
    await w.check('applications-refused', { status: w.last.status });
    assert.ok(w.last.status >= 400 && w.last.status < 500, `status ${w.last.status}`);
  }]);

  steps.push(['applications: renew the secret', async () => {
    await w.clickTo(w.page.getByRole('button', { name: `Renew secret of ${appName}` }));
    await w.page.getByRole('status').waitFor();
    const renewed = await shownOnce(w, 'Secret');
    assert.notEqual(renewed, secret);
    assert.equal(await shownOnce(w, 'Application ID'), clientId);
    secret = renewed;
    await w.check('applications-renewed');
  }]);

  steps.push(['applications: its page, edited', async () => {
    await w.clickTo(w.nav('User settings').getByRole('link', { name: 'Applications' }), (u) => u.pathname === '/-/user_settings/applications');
    await w.clickTo(w.main().getByRole('link', { name: appName, exact: true }), (u) => /^\/-\/user_settings\/applications\/\d+$/.test(u.pathname));
    assert.equal((await w.h1().textContent()).trim(), `Application: ${appName}`);
    assert.ok(!(await w.page.content()).includes(secret), 'the secret is not on its page');
    await w.check('application-show');
    await w.clickTo(w.main().getByRole('link', { name: 'Edit', exact: true }), (u) => u.pathname.endsWith('/edit'));
    assert.equal(await w.page.getByRole('checkbox', { name: /^read_user\b/ }).isChecked(), true);
    await w.check('application-edit');
    await w.page.getByLabel('Redirect URI').fill(`${REDIRECT_URI}\nhttps://client.example/second`);
    await w.clickTo(w.page.getByRole('button', { name: 'Save application' }), (u) => /^\/-\/user_settings\/applications\/\d+$/.test(u.pathname));
    assert.ok((await w.main().innerText()).includes('https://client.example/second'));
  }]);

  steps.push(['applications: renewed with a grace period, the old secret revoked', async () => {
    await w.page.getByLabel('The current secret stops working').selectOption({ label: 'in 1 hour' });
    await w.clickTo(w.page.getByRole('button', { name: 'Renew secret', exact: true }));
    await w.page.getByRole('status').waitFor();
    const renewed = await shownOnce(w, 'Secret');
    assert.notEqual(renewed, secret);
    await w.check('application-renewed-with-grace');
    const revoke = w.main().getByRole('button', { name: `Revoke the secret ending …${secret.slice(-4)}` });
    await w.clickTo(revoke, (u) => /^\/-\/user_settings\/applications\/\d+$/.test(u.pathname));
    secret = renewed;
    assert.equal(await w.main().getByRole('button', { name: /^Revoke the secret ending/ }).count(), 0, 'one live secret left, which stays');
    await w.check('application-secret-revoked');
  }]);

  steps.push(['the consent page, then authorized applications: revoke', async () => {
    const authorize = new URL(`${BASE}/oauth/authorize`);
    authorize.search = new URLSearchParams({
      client_id: clientId, redirect_uri: REDIRECT_URI, response_type: 'code',
      state: 'pages', scope: 'openid read_user',
    }).toString();
    await w.page.goto(authorize.toString());
    assert.equal((await w.h1().textContent()).trim(), `Authorize ${appName} to use your account?`);
    const scopes = (await w.page.locator('ul.scopes li strong').allTextContents()).map((s) => s.trim());
    assert.deepEqual(scopes.sort(), ['openid', 'read_user']);
    await w.check('consent');
    const failed = w.page.waitForEvent('requestfailed', (r) => r.url().startsWith(`${REDIRECT_URI}?`));
    await w.page.getByRole('button', { name: `Authorize ${appName}` }).click();
    const req = await failed;
    const code = new URL(req.url()).searchParams.get('code');
    assert.ok(code, req.url());
    // The client does not exist: Chromium shows its error page.
    await w.page.waitForURL((u) => u.protocol === 'chrome-error:');
    // The client's backend exchanges the code (with the renewed secret):
    // the application now holds a token and is among the authorized ones.
    const tokenRes = await fetch(`${BASE}/oauth/token`, {
      method: 'POST',
      headers: { Authorization: `Basic ${Buffer.from(`${clientId}:${secret}`).toString('base64')}` },
      body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT_URI }),
    });
    const tokenText = await tokenRes.text();
    assert.equal(tokenRes.status, 200, tokenText);
    const accessToken = JSON.parse(tokenText).access_token;
    // Back at latchkey: the application is among the authorized ones.
    await w.goto('/');
    await w.clickTo(w.nav('Main').getByRole('link', { name: 'Settings' }), (u) => u.pathname === '/-/user_settings/applications');
    let rows = await tableRows(w, 'Authorized applications');
    assert.ok(rows.some((r) => r[0] === appName), JSON.stringify(rows));
    await w.check('applications-authorized');
    await w.clickTo(w.page.getByRole('button', { name: `Revoke ${appName}` }));
    rows = await tableRows(w, 'Authorized applications');
    assert.ok(!rows.some((r) => r[0] === appName), JSON.stringify(rows));
    await w.check('applications-authorization-revoked');
    const me = await fetch(`${BASE}/api/v4/user`, { headers: { Authorization: `Bearer ${accessToken}` } });
    assert.equal(me.status, 401, 'the revoked authorization took the token with it');
  }]);

  steps.push(['applications: delete', async () => {
    await w.clickTo(w.page.getByRole('link', { name: `Delete ${appName}` }), (u) => u.pathname.endsWith('/delete'));
    assert.equal((await w.h1().textContent()).trim(), `Delete ${appName}?`);
    await w.check('application-delete-confirm');
    await w.clickTo(w.page.getByRole('button', { name: 'Delete application' }), (u) => u.pathname === '/-/user_settings/applications');
    const rows = await tableRows(w, 'Your applications');
    assert.ok(!rows.some((r) => r[0] === appName), JSON.stringify(rows));
    await w.check('applications-deleted');
  }]);

  steps.push(['personal access tokens: no scope is refused', async () => {
    await w.clickTo(w.nav('User settings').getByRole('link', { name: 'Access tokens' }), (u) => u.pathname === '/-/user_settings/personal_access_tokens');
    await w.page.getByLabel('Token name').fill(unique('no-scope'));
    await w.clickTo(w.page.getByRole('button', { name: 'Create token' }));
    await w.page.getByRole('alert').waitFor();
    await w.check('tokens-refused', { status: w.last.status });
    assert.ok(w.last.status >= 400 && w.last.status < 500, `status ${w.last.status}`);
  }]);

  steps.push(['personal access tokens: create with scopes and an expiry, shown once', async () => {
    tokenName = unique('token');
    const expires = new Date(Date.now() + 30 * 86_400_000).toISOString().slice(0, 10);
    await w.page.getByLabel('Token name').fill(tokenName);
    await w.page.getByLabel('Expiration date').fill(expires);
    await w.page.getByRole('checkbox', { name: /^read_user\b/ }).check();
    await w.page.getByRole('checkbox', { name: /^read_api\b/ }).check();
    await w.clickTo(w.page.getByRole('button', { name: 'Create token' }));
    await w.page.getByRole('status').waitFor();
    token = await shownOnce(w, 'Token');
    assert.match(token, /^glpat-/);
    await copies(w, 'Copy the token', token);
    const rows = await tableRows(w, 'Active tokens');
    const row = rows.find((r) => r[0] === tokenName);
    assert.ok(row, JSON.stringify(rows));
    assert.match(row[1], /read_user/);
    assert.match(row[1], /read_api/);
    assert.ok(row.some((c) => c.includes(expires)), `the expiry ${expires} in ${row}`);
    await w.check('tokens-created');
    const me = await api('GET', '/user', undefined, token);
    assert.equal(me.status, 200, me.text);
    assert.equal(me.json.username, user.username);
  }]);

  steps.push(['personal access tokens: rotate', async () => {
    await w.clickTo(w.nav('User settings').getByRole('link', { name: 'Access tokens' }), (u) => u.pathname === '/-/user_settings/personal_access_tokens');
    await w.clickTo(w.page.getByRole('button', { name: `Rotate ${tokenName}` }));
    await w.page.getByRole('status').filter({ hasText: `Token ${tokenName} was rotated` }).waitFor();
    const rotated = await shownOnce(w, 'Token');
    assert.notEqual(rotated, token);
    await w.check('tokens-rotated');
    assert.equal((await api('GET', '/user', undefined, token)).status, 401, 'the old value stops');
    assert.equal((await api('GET', '/user', undefined, rotated)).status, 200, 'the new one works');
    token = rotated;
  }]);

  steps.push(['personal access tokens: the form filled in from a link', async () => {
    await w.goto('/-/user_settings/personal_access_tokens?name=From+a+link&scopes=read_api,read_user');
    assert.equal(await w.page.getByLabel('Token name').inputValue(), 'From a link');
    assert.equal(await w.page.getByRole('checkbox', { name: /^read_api\b/ }).isChecked(), true);
    assert.equal(await w.page.getByRole('checkbox', { name: /^api\b/ }).isChecked(), false);
    await w.check('tokens-prefilled');
  }]);

  steps.push(['personal access tokens: the token is not shown again; revoke', async () => {
    await w.clickTo(w.nav('User settings').getByRole('link', { name: 'Access tokens' }), (u) => u.pathname === '/-/user_settings/personal_access_tokens');
    assert.ok(!(await w.page.content()).includes(token), 'the token is not on the page');
    await w.clickTo(w.page.getByRole('button', { name: `Revoke ${tokenName}` }));
    const rows = await tableRows(w, 'Active tokens');
    assert.ok(!rows.some((r) => r[0] === tokenName), JSON.stringify(rows));
    await w.check('tokens-revoked');
    const me = await api('GET', '/user', undefined, token);
    assert.equal(me.status, 401, me.text);
  }]);

  steps.push(['password: a wrong current password is refused', async () => {
    await w.clickTo(w.nav('User settings').getByRole('link', { name: 'Password' }), (u) => u.pathname === '/-/user_settings/password');
    await w.page.getByLabel('Current password').fill('not the password');
    await w.page.getByLabel('New password').fill(newPassword);
    await w.page.getByLabel('Password confirmation').fill(newPassword);
    await w.clickTo(w.page.getByRole('button', { name: 'Save password' }));
    await w.page.getByRole('alert').waitFor();
    await w.check('password-refused', { status: w.last.status });
    assert.ok(w.last.status >= 400 && w.last.status < 500, `status ${w.last.status}`);
  }]);

  steps.push(['password: change it; the session elsewhere ends', async (ww) => {
    // The same person, signed in at another browser.
    const other = await Walk.open(t, 'user-elsewhere');
    await other.goto('/users/sign_in');
    await other.signIn(user);
    await other.goto('/-/user_settings/password');
    assert.equal(other.path, '/-/user_settings/password');

    await ww.page.getByLabel('Current password').fill(PASSWORD);
    await ww.page.getByLabel('New password').fill(newPassword);
    await ww.page.getByLabel('Password confirmation').fill(newPassword);
    await ww.clickTo(ww.page.getByRole('button', { name: 'Save password' }));
    await ww.page.getByRole('status').filter({ hasText: 'Your password was changed' }).waitFor();
    await ww.check('password-changed');

    // This session goes on; the other one is signed out.
    await ww.goto('/-/user_settings/password');
    assert.equal(ww.path, '/-/user_settings/password');
    await other.page.reload();
    assert.equal(other.path, '/users/sign_in');
    await other.check('signed-out-by-password-change');
    await other.signIn(user, newPassword);
    assert.notEqual(other.path, '/users/sign_in');
  }]);

  steps.push(['active sessions: sign out everywhere else', async () => {
    const other = await Walk.open(t, 'user-on-another-browser');
    await other.goto('/users/sign_in');
    await other.signIn(user, newPassword);
    await w.clickTo(w.nav('User settings').getByRole('link', { name: 'Active sessions' }), (u) => u.pathname === '/-/user_settings/active_sessions');
    const sessionRows = () => w.main().locator('table tbody tr')
      .evaluateAll((trs) => trs.map((tr) => [...tr.cells].map((c) => c.innerText.trim())));
    const rows = await sessionRows();
    assert.ok(rows.length >= 2, JSON.stringify(rows));
    assert.ok(rows.some((r) => r.some((c) => c.includes('This is your current session'))), JSON.stringify(rows));
    assert.ok(rows.some((r) => r[0].startsWith('Chrome')), `the browser is named: ${JSON.stringify(rows)}`);
    await w.check('sessions');
    await w.clickTo(w.page.getByRole('button', { name: 'Sign out everywhere else' }));
    await w.page.getByRole('status').filter({ hasText: /other sessions? (was|were) signed out/ }).waitFor();
    assert.equal((await sessionRows()).length, 1);
    await w.check('sessions-others-signed-out');
    await other.goto('/-/user_settings/active_sessions');
    assert.equal(other.path, '/users/sign_in', 'the other browser was signed out');
  }]);

  steps.push(['HTML 404 pages', async () => {
    for (const [path, state] of [['/-/nope', '404-path'], [`/no-such-user-${randomBytes(3).toString('hex')}`, '404-user']]) {
      await w.goto(path);
      await w.h1().waitFor();
      await w.check(state, { status: 404 });
    }
    // The Admin Area is not for a user: it is not found either.
    await w.goto('/admin/users');
    await w.check('404-admin-for-a-user', { status: 404 });
  }]);

  steps.push(['sign out from the nav bar', async () => {
    await w.goto('/');
    await w.clickTo(w.nav('Main').getByRole('button', { name: 'Sign out' }));
    await w.goto('/-/user_settings/applications');
    assert.equal(w.path, '/users/sign_in');
    assert.equal(new URL(w.page.url()).searchParams.get('return_to'), '/-/user_settings/applications');
    await w.check('signed-out');
  }]);

  await walkSteps(t, w, steps);
});

/** The Admin Area, as an administrator of `server`. */
async function adminWalk(t, server, name) {
  const admin = await makeUser(t, { admin: true, prefix: 'pages-admin', server });
  const someone = await makeUser(t, { prefix: 'pages-someone', server });
  const blocked = await makeUser(t, { prefix: 'pages-blocked', server });
  const block = await api('POST', `/users/${blocked.id}/block`, undefined, undefined, server);
  assert.ok([200, 201].includes(block.status), block.text);
  const w = await Walk.open(t, name, server);
  const appName = unique('instance-app');
  let adminMode = false;
  const steps = [];

  steps.push(['sign in; the nav bar has the Admin Area', async () => {
    await w.goto('/users/sign_in');
    await w.signIn(admin);
    await w.nav('Main').getByRole('link', { name: 'Admin Area' }).waitFor();
    await w.check('home');
  }]);

  steps.push(['the Admin Area, through Admin Mode when it is on', async () => {
    await w.clickTo(w.nav('Main').getByRole('link', { name: 'Admin Area' }), (u) => u.pathname !== '/');
    if (w.path === '/admin/session/new') {
      adminMode = true;
      await w.check('admin-mode');
      await w.page.getByLabel('Password', { exact: true }).fill('not the password');
      await w.clickTo(w.page.getByRole('button', { name: 'Enter Admin Mode' }));
      await w.page.getByRole('alert').waitFor();
      await w.check('admin-mode-refused', { status: w.last.status });
      await w.page.getByLabel('Password', { exact: true }).fill(admin.password);
      await w.clickTo(w.page.getByRole('button', { name: 'Enter Admin Mode' }), (u) => u.pathname === '/admin/applications');
      await w.nav('Main').getByRole('button', { name: 'Leave Admin Mode' }).waitFor();
    }
    assert.equal(w.path, '/admin/applications');
    t.diagnostic(`Admin Mode is ${adminMode ? 'on' : 'off'} on this server`);
  }]);

  steps.push(['the Admin Area bar: every link', async () => {
    const links = await w.walkBar('Admin Area', 'admin');
    const hrefs = links.map((l) => l.href);
    for (const want of ['/admin/applications', '/admin/users']) {
      assert.ok(hrefs.includes(want), `the Admin Area bar links ${want}: ${hrefs}`);
    }
  }]);

  steps.push(['applications: new, the secret shown once', async () => {
    await w.clickTo(w.nav('Admin Area').getByRole('link', { name: 'Applications' }), (u) => u.pathname === '/admin/applications');
    await w.clickTo(w.page.getByRole('link', { name: 'New application' }), (u) => u.pathname === '/admin/applications/new');
    await w.check('applications-new');
    await w.page.getByLabel('Name', { exact: true }).fill(appName);
    await w.page.getByLabel('Redirect URI').fill(`${REDIRECT_URI}\nhttps://client.example/other`);
    await w.page.getByRole('checkbox', { name: /^openid\b/ }).check();
    await w.page.getByRole('checkbox', { name: /^api\b/ }).check();
    await w.clickTo(w.page.getByRole('button', { name: 'Save application' }));
    // The new application's page, rendered in answer to the form (GitLab's
    // render :show) or redirected to.
    assert.match(w.path, /^\/admin\/applications(\/\d+)?$/);
    assert.equal((await w.h1().textContent()).trim(), `Application: ${appName}`);
    const secret = await shownOnce(w, 'Secret');
    await copies(w, 'Copy the secret', secret);
    const main = await w.main().innerText();
    assert.ok(main.includes('https://client.example/other'), main);
    await w.check('applications-created');
  }]);

  steps.push(['applications: the list, show, delete', async () => {
    await w.clickTo(w.page.getByRole('link', { name: 'Back to the list' }), (u) => u.pathname === '/admin/applications');
    const link = w.main().getByRole('link', { name: appName, exact: true });
    await link.waitFor();
    await w.check('applications-list');
    await w.clickTo(link, (u) => /^\/admin\/applications\/\d+$/.test(u.pathname));
    assert.equal(await w.page.getByRole('status').count(), 0, 'the secret is not shown again');
    assert.equal(await w.page.getByLabel('Secret', { exact: true }).count(), 0);
    await w.check('application-show');
    await w.clickTo(w.main().getByRole('link', { name: 'Edit', exact: true }), (u) => u.pathname.endsWith('/edit'));
    await w.page.getByRole('checkbox', { name: /^Trusted\b/ }).check();
    await w.page.getByRole('checkbox', { name: /^Resource owner password\b/ }).uncheck();
    await w.check('application-edit');
    await w.clickTo(w.page.getByRole('button', { name: 'Save application' }), (u) => /^\/admin\/applications\/\d+$/.test(u.pathname));
    const facts = await w.main().innerText();
    assert.match(facts, /Trusted\s+Yes/);
    assert.ok(!facts.includes('password'), facts);
    await w.clickTo(w.main().getByRole('link', { name: 'Delete', exact: true }), (u) => u.pathname.endsWith('/delete'));
    await w.check('application-delete-confirm');
    await w.clickTo(w.page.getByRole('button', { name: 'Delete application' }), (u) => u.pathname === '/admin/applications');
    assert.equal(await w.main().getByRole('link', { name: appName, exact: true }).count(), 0);
    await w.check('applications-deleted');
  }]);

  steps.push(['users: search', async () => {
    await w.clickTo(w.nav('Admin Area').getByRole('link', { name: 'Users' }), (u) => u.pathname === '/admin/users');
    await w.page.getByRole('search').getByLabel('Search by username, name or email').fill(someone.username);
    await w.clickTo(w.page.getByRole('search').getByRole('button', { name: 'Search' }));
    assert.equal(new URL(w.page.url()).searchParams.get('search'), someone.username);
    const rows = await w.main().locator('table tbody tr').allInnerTexts();
    assert.equal(rows.length, 1, JSON.stringify(rows));
    assert.ok(rows[0].includes(someone.username));
    await w.check('users-search');
    await w.page.getByRole('search').getByLabel('Search by username, name or email').fill('no such person anywhere');
    await w.clickTo(w.page.getByRole('search').getByRole('button', { name: 'Search' }));
    await w.main().getByText('No users found.').waitFor();
    await w.check('users-search-nothing');
  }]);

  steps.push(['users: the filters', async () => {
    const usernames = async () => w.main().locator('table tbody tr td:nth-child(2)').allTextContents();
    const filters = w.main().locator('p.bar');
    for (const [label, key, present, absent] of [
      ['Admins', 'admins', [admin.username], [someone.username, blocked.username]],
      ['Blocked', 'blocked', [blocked.username], [someone.username, admin.username]],
      ['External', 'external', [], [someone.username, admin.username, blocked.username]],
      ['All', 'all', [], []],
    ]) {
      await w.clickTo(filters.getByRole('link', { name: label, exact: true }), (u) => u.pathname === '/admin/users');
      assert.equal(new URL(w.page.url()).searchParams.get('filter'), key);
      assert.equal(await filters.getByRole('link', { name: label, exact: true }).getAttribute('aria-current'), 'page');
      const names = await usernames();
      for (const p of present) assert.ok(names.includes(p), `${label}: ${p} in ${names}`);
      for (const a of absent) assert.ok(!names.includes(a), `${label}: ${a} not in ${names}`);
      await w.check(`users-filter-${key}`);
    }
    // A user's name leads to their page in the Admin Area.
    await w.page.getByRole('search').getByLabel('Search by username, name or email').fill(someone.username);
    await w.clickTo(w.page.getByRole('search').getByRole('button', { name: 'Search' }));
    await w.clickTo(w.main().getByRole('link', { name: someone.name }), (u) => u.pathname === `/admin/users/${someone.username}`);
    await w.check('user-show');
  }]);

  steps.push(['users: new (a password generated, shown once), edit, block, unblock, delete', async () => {
    const username = unique('pages-made');
    await w.clickTo(w.nav('Admin Area').getByRole('link', { name: 'Users' }), (u) => u.pathname === '/admin/users');
    await w.clickTo(w.main().getByRole('link', { name: 'New user' }), (u) => u.pathname === '/admin/users/new');
    await w.check('user-new');
    await w.page.getByLabel('Name', { exact: true }).fill('Made Here');
    await w.page.getByLabel('Username').fill(username);
    await w.page.getByLabel('Email').fill(`${username}@example.com`);
    await w.clickTo(w.page.getByRole('button', { name: 'Create user' }));
    const password = await shownOnce(w, 'Password');
    assert.ok(password.length >= 16, password);
    await w.check('user-created');
    await w.clickTo(w.main().getByRole('link', { name: 'Edit', exact: true }), (u) => u.pathname.endsWith('/edit'));
    await w.page.getByLabel('Name', { exact: true }).fill('Made Here Again');
    await w.check('user-edit');
    await w.clickTo(w.page.getByRole('button', { name: 'Save changes' }), (u) => u.pathname === `/admin/users/${username}`);
    assert.equal((await w.h1().textContent()).trim(), 'User: Made Here Again');
    await w.clickTo(w.main().getByRole('button', { name: 'Block', exact: true }), (u) => u.pathname === `/admin/users/${username}`);
    await w.main().getByRole('button', { name: 'Unblock', exact: true }).waitFor();
    await w.check('user-blocked');
    await w.clickTo(w.main().getByRole('button', { name: 'Unblock', exact: true }), (u) => u.pathname === `/admin/users/${username}`);
    await w.clickTo(w.main().getByRole('link', { name: 'Delete', exact: true }), (u) => u.pathname.endsWith('/delete'));
    await w.check('user-delete-confirm');
    await w.page.getByLabel(`Type ${username} to confirm`).fill(username);
    await w.clickTo(w.page.getByRole('button', { name: 'Delete user' }), (u) => u.pathname === '/admin/users');
    await w.goto(`/admin/users/${username}`);
    await w.check('user-gone', { status: 404 });
  }]);

  steps.push(['groups: new, show, delete', async () => {
    const path = unique('pages-group');
    await w.goto('/admin/applications');
    await w.clickTo(w.nav('Admin Area').getByRole('link', { name: 'Groups' }), (u) => u.pathname === '/admin/groups');
    await w.clickTo(w.main().getByRole('link', { name: 'New group' }), (u) => u.pathname === '/admin/groups/new');
    await w.check('group-new');
    await w.page.getByLabel('Name', { exact: true }).fill(`Group ${path}`);
    await w.page.getByLabel(/^Path/).fill(path);
    await w.clickTo(w.page.getByRole('button', { name: 'Create group' }), (u) => u.pathname === `/admin/groups/${path}`);
    assert.equal((await w.h1().textContent()).trim(), `Group: Group ${path}`);
    await w.check('group-show');
    await w.clickTo(w.main().getByRole('link', { name: 'Delete', exact: true }), (u) => u.pathname.endsWith('/-/delete'));
    await w.check('group-delete-confirm');
    await w.page.getByLabel(`Type ${path} to confirm`).fill(path);
    await w.clickTo(w.page.getByRole('button', { name: 'Delete group' }), (u) => u.pathname === '/admin/groups');
    await w.check('groups-after-delete');
  }]);

  steps.push(['leave Admin Mode (when it is on)', async () => {
    if (!adminMode) {
      assert.equal(await w.nav('Main').getByRole('button', { name: 'Leave Admin Mode' }).count(), 0);
      return;
    }
    // The bar offers it on the Admin Area's pages (not on the profile the
    // last step ended on).
    await w.clickTo(w.nav('Main').getByRole('link', { name: 'Admin Area' }), (u) => u.pathname === '/admin/applications');
    await w.clickTo(w.nav('Main').getByRole('button', { name: 'Leave Admin Mode' }), (u) => u.pathname === '/');
    assert.equal(await w.nav('Main').getByRole('button', { name: 'Leave Admin Mode' }).count(), 0);
    await w.check('admin-mode-left');
    await w.goto('/admin/users');
    assert.equal(w.path, '/admin/session/new');
  }]);

  await walkSteps(t, w, steps);
  return adminMode;
}

test("an administrator's pages: the Admin Area, users, applications", { timeout: 300_000 }, async (t) => {
  await adminWalk(t, MAIN, 'admin');
});

// compat/run.sh's server runs with Admin Mode off (GitLab's default); the
// same walk on a server of its own with it on goes through the password
// form and "Leave Admin Mode".
test("an administrator's pages with Admin Mode on", { timeout: 300_000 }, async (t) => {
  const server = await ownServer(t, { LATCHKEY_ADMIN_MODE: 'true' });
  if (!server) {
    t.skip('LATCHKEY_BIN is not set: no server of its own (run through compat/run.sh)');
    return;
  }
  assert.equal(await adminWalk(t, server, 'admin-mode'), true, 'the Admin Area asked for the password');
});
