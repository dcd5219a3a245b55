// The pages in a real browser (issue 13): Debian's chromium driven by playwright-core,
// against the local server on the Google sandbox. infra/scripts/test.sh starts the server and
// runs this file with:
//   CGS_BROWSER_API        the local server, e.g. http://127.0.0.1:18080
//   CGS_BROWSER_ADMIN_KEY  the demo tenant's admin key
//   CGS_CHROMIUM           the browser (default /usr/bin/chromium)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { openBrowser } from './browser.js';

const API = process.env.CGS_BROWSER_API;
const ADMIN = process.env.CGS_BROWSER_ADMIN_KEY;
const CLIENT_ID = 'demo-client.apps.googleusercontent.com';
const CLIENT_SECRET = 'demo-secret';
if (!API || !ADMIN) throw new Error('run through infra/scripts/test.sh (CGS_BROWSER_API, CGS_BROWSER_ADMIN_KEY)');

let browser, context, page, cspViolations;

before(async () => {
  browser = await openBrowser();
  ({ context, page, cspViolations } = browser);
});

after(async () => {
  await browser?.close();
});

async function api(method, path, key, body) {
  const r = await fetch(API + path, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : null };
}

/// The page's stylesheet applied (the CSP allowed it by its hash) and nothing was blocked.
async function assertStyled() {
  const width = await page.evaluate(() => getComputedStyle(document.querySelector('main')).maxWidth);
  assert.notEqual(width, 'none', 'the inline stylesheet applies');
  assert.deepEqual(cspViolations, []);
}

test('an admin signs in and sets the Google client by uploading client_secret.json', async () => {
  await page.goto(`${API}/admin`);
  assert.match(page.url(), /\/admin\/sign-in$/);
  await page.getByLabel('Admin API key of your tenant').fill(ADMIN);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(/\/admin\/accounts/);
  await assertStyled();

  await page.getByRole('link', { name: 'Google client' }).click();
  const callback = `${API}/oauth/callback`;
  assert.equal(await page.textContent('#redirect-uri'), callback);
  assert.equal(await page.textContent('#js-origin'), API);

  // A file for another redirect URI: refused, in words that name what to register.
  const upload = async (redirects) => {
    const file = { web: { client_id: CLIENT_ID, client_secret: CLIENT_SECRET, redirect_uris: redirects,
      auth_uri: 'https://accounts.google.com/o/oauth2/auth', token_uri: 'https://oauth2.googleapis.com/token' } };
    await page.setInputFiles('#file', { name: 'client_secret.json', mimeType: 'application/json',
      buffer: Buffer.from(JSON.stringify(file)) });
    // The page's script reads the file into the form.
    await page.waitForFunction(() => document.getElementById('json').value.includes('client_id'));
    await page.getByRole('button', { name: 'Save the Google client' }).click();
  };
  await upload(['https://elsewhere.example/cb']);
  const error = await page.textContent('#error');
  assert.ok(error.includes(callback), error);
  assert.ok(!(await page.content()).includes(CLIENT_SECRET), 'the secret is not shown back');

  await upload(['https://elsewhere.example/cb', callback]);
  await page.waitForURL(/done=saved/);
  assert.match(await page.textContent('#notice'), /Google client saved/);
  assert.equal(await page.textContent('#client-id'), CLIENT_ID);
  assert.equal(await page.textContent('#client-status'), 'working');
  assert.ok(!(await page.content()).includes(CLIENT_SECRET));
  const { status, body } = await api('GET', '/v1/admin/google-client', ADMIN);
  assert.equal(status, 200);
  assert.equal(body.client_id, CLIENT_ID);
  await assertStyled();
});

test('a setting changed on the page is what the API stores; bad input keeps the form', async () => {
  await page.getByRole('link', { name: 'Settings' }).click();
  await page.getByLabel('Sync direction').selectOption('google_to_crm');
  await page.getByLabel('Google contact group').fill('');
  await page.getByRole('button', { name: 'Save settings' }).click();
  assert.match(await page.textContent('#error'), /contact_group_name must be 1 to 100 characters/);
  assert.equal(await page.getByLabel('Sync direction').inputValue(), 'google_to_crm', 'the choice is kept');

  await page.getByLabel('Google contact group').fill('Browser CRM');
  await page.locator('input[name="color.meeting"][value="5"]').check();
  await page.getByLabel('Notes: Off').check();
  await page.getByRole('button', { name: 'Save settings' }).click();
  await page.waitForURL(/done=saved/);
  assert.match(await page.textContent('#notice'), /Settings saved/);
  const { body } = await api('GET', '/v1/admin/settings', ADMIN);
  assert.equal(body.defaults.direction, 'google_to_crm');
  assert.equal(body.defaults.contact_group_name, 'Browser CRM');
  assert.equal(body.defaults.event_colors.meeting, '5');
  assert.equal(body.defaults.contact_fields.notes, 'off');
  // Put the direction back for the connect below.
  await page.getByLabel('Sync direction').selectOption('two_way');
  await page.getByRole('button', { name: 'Save settings' }).click();
  await page.waitForURL(/done=saved/);
});

async function connectLink(user, hint) {
  const keys = await api('POST', '/v1/admin/api-keys', ADMIN, { name: `browser ${user}`, scope: 'sync' });
  assert.equal(keys.status, 201);
  const link = await api('POST', `/v1/users/${user}/google/connect`, keys.body.key_secret,
    { products: ['calendar'], login_hint: hint });
  assert.equal(link.status, 201, JSON.stringify(link.body));
  return link.body.authorization_url;
}

test('a user connects through the sandbox consent page; the Czech page says so and the console lists the account', async () => {
  const link = await connectLink('browser-alice', 'alice@example.com');
  await page.setExtraHTTPHeaders({ 'Accept-Language': 'cs-CZ,cs;q=0.9,en;q=0.5' });
  await page.goto(link);
  await page.getByRole('button', { name: 'Allow' }).click();
  await page.waitForURL(/\/oauth\/callback/);
  assert.equal(await page.getAttribute('main', 'data-outcome'), 'connected');
  assert.equal(await page.getAttribute('html', 'lang'), 'cs');
  assert.equal(await page.textContent('h1'), 'Účet Google je připojen');
  await assertStyled();

  await page.setExtraHTTPHeaders({});
  await page.goto(`${API}/admin/accounts`);
  const row = page.locator('tr[data-user="browser-alice"]');
  assert.match(await row.textContent(), /alice@example\.com/);
  assert.match(await row.textContent(), /active/);
});

test('a user who cancels sees it in Japanese, and the used link then says it expired', async () => {
  const link = await connectLink('browser-bob', 'bob@example.com');
  await page.setExtraHTTPHeaders({ 'Accept-Language': 'ja,en-US;q=0.8' });
  await page.goto(link);
  await page.getByRole('button', { name: 'Cancel' }).click();
  await page.waitForURL(/\/oauth\/callback/);
  assert.equal(await page.getAttribute('html', 'lang'), 'ja');
  assert.equal(await page.getAttribute('main', 'data-outcome'), 'denied');
  assert.equal(await page.textContent('h1'), '接続されていません');
  await page.reload();
  assert.equal(await page.getAttribute('main', 'data-outcome'), 'expired');
  assert.equal(await page.textContent('h1'), 'このサインイン リンクは期限切れです');
  await assertStyled();
  await page.setExtraHTTPHeaders({});
});

/// Polls `check` (an async predicate) every 200 ms for up to `seconds`; on timeout, fails
/// with what `seen` (an async function) then answers, to say where things stood.
async function eventually(what, check, seconds = 60, seen = async () => '') {
  const until = Date.now() + seconds * 1000;
  while (Date.now() < until) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.fail(`not within ${seconds} s: ${what}; ${await seen()}`);
}

test('an admin sees an account in error on its page and confirms a held-back mass deletion', async () => {
  const USER = 'browser-alice';
  const sync = (await api('POST', '/v1/admin/api-keys', ADMIN, { name: 'browser crm', scope: 'sync' })).body.key_secret;
  const was = (await api('GET', '/v1/admin/settings', ADMIN)).body.defaults.deletion_policy;
  assert.equal((await api('PATCH', '/v1/admin/settings', ADMIN, { defaults: { deletion_policy: 'propagate' } })).status, 200);
  const ids = Array.from({ length: 30 }, (_, i) => `BRW-${i}`);
  for (const [i, id] of ids.entries()) {
    const day = String(1 + (i % 28)).padStart(2, '0');
    const r = await api('PUT', `/v1/users/${USER}/events/${id}`, sync, {
      type: 'meeting', title: `Browser meeting ${i}`, time_zone: 'UTC',
      start: { date_time: `2027-04-${day}T09:00:00Z` }, end: { date_time: `2027-04-${day}T09:30:00Z` },
    });
    assert.equal(r.status, 202, JSON.stringify(r.body));
  }
  const state = async (id) => (await api('GET', `/v1/users/${USER}/events/${id}`, sync)).body?.state;
  await eventually('the 30 meetings synced', async () => (await Promise.all(ids.map(state))).every((s) => s === 'synced'));

  // A CRM bug deletes them all at once: the guard holds the deletions back.
  for (const id of ids) assert.equal((await api('DELETE', `/v1/users/${USER}/events/${id}`, sync)).status, 202);
  const account = async () => (await api('GET', `/v1/admin/accounts/${USER}`, ADMIN)).body;
  const states = async () => JSON.stringify(await Promise.all(ids.map(state)));
  await eventually('the deletions held back', async () => (await account()).health.held_deletions.length > 0,
    60, async () => `the account: ${JSON.stringify(await account())}; the meetings: ${await states()}`);

  await page.goto(`${API}/admin/accounts`);
  await page.locator(`tr[data-user="${USER}"]`).getByRole('link', { name: USER }).click();
  await page.waitForURL(new RegExp(`/admin/accounts/${USER}$`));
  assert.match(await page.textContent('#last-error'), /deletions held back/);
  assert.match(await page.textContent('#held'), /holds back deletions/);
  await assertStyled();
  await page.getByRole('button', { name: 'Confirm the held-back deletions' }).click();
  await page.waitForURL(/done=confirm-deletions/);
  assert.match(await page.textContent('#notice'), /Deletions confirmed/);
  await eventually('the deletions carried out', async () => (await Promise.all(ids.map(state))).every((s) => s === 'deleted'));
  await page.reload();
  assert.equal(await page.locator('#held-none').count(), 1);
  assert.equal((await api('PATCH', '/v1/admin/settings', ADMIN, { defaults: { deletion_policy: was } })).status, 200);
});

test('an admin creates a key (shown once) and revokes it', async () => {
  await page.goto(`${API}/admin/keys`);
  await page.getByLabel('Name').fill('made in the browser');
  await page.getByLabel('Scope').selectOption('sync');
  await page.getByRole('button', { name: 'Create key' }).click();
  const key = (await page.textContent('#new-key')).trim();
  assert.match(key, /^cgs_/);
  assert.equal((await api('GET', '/v1/changes', key)).status, 200);

  await page.goto(`${API}/admin/keys`);
  assert.ok(!(await page.content()).includes(key), 'shown once only');
  const row = page.locator('tr', { hasText: 'made in the browser' });
  await row.getByRole('button', { name: 'Revoke' }).click();
  await page.waitForURL(/done=revoked/);
  assert.equal(await page.locator('tr', { hasText: 'made in the browser' }).count(), 0);
  assert.equal((await api('GET', '/v1/changes', key)).status, 401);

  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.waitForURL(/why=signed-out/);
  await page.goto(`${API}/admin/keys`);
  assert.match(page.url(), /\/admin\/sign-in$/);
  await assertStyled();
});
