// The hosted user settings page in a real browser (issue 13, item 2): Debian's chromium
// driven by playwright-core, against the local server on the Google sandbox, as
// pages.test.js is. infra/scripts/test.sh runs this file with:
//   CGS_BROWSER_API        the local server, e.g. http://127.0.0.1:18080
//   CGS_BROWSER_ADMIN_KEY  the demo tenant's admin key
//   CGS_BROWSER_SANDBOX    the Google sandbox (its control API adds a user and a calendar)
//   CGS_CHROMIUM           the browser (default /usr/bin/chromium)
//   CGS_BROWSER_SCREENSHOTS  optional: a folder to save the settings page's screenshot in
//                          (docs/settings-page.png is one)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { openBrowser } from './browser.js';

const API = process.env.CGS_BROWSER_API;
const ADMIN = process.env.CGS_BROWSER_ADMIN_KEY;
const SANDBOX = process.env.CGS_BROWSER_SANDBOX;
if (!API || !ADMIN || !SANDBOX) {
  throw new Error('run through infra/scripts/test.sh (CGS_BROWSER_API, CGS_BROWSER_ADMIN_KEY, CGS_BROWSER_SANDBOX)');
}
const USER = 'browser-carol';
const CAROL = 'carol@example.com';
const RETURN = `${API}/crm/settings`;

let browser, context, page, cspViolations, sync, team;

async function call(base, method, path, key, body) {
  const r = await fetch(base + path, {
    method,
    headers: { ...(key ? { authorization: `Bearer ${key}` } : {}), ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : null };
}
const api = (method, path, key, body) => call(API, method, path, key, body);

before(async () => {
  // A Google user of her own with a second calendar, and the CRM's return URL allowed.
  assert.equal((await call(SANDBOX, 'POST', '/_sandbox/users', null, { email: CAROL, name: 'Carol Example' })).status, 201);
  const cal = await call(SANDBOX, 'POST', '/_sandbox/calendars', null, { owner: CAROL, summary: 'Team' });
  assert.equal(cal.status, 201);
  team = cal.body.id;
  const keys = await api('POST', '/v1/admin/api-keys', ADMIN, { name: 'browser settings', scope: 'sync' });
  assert.equal(keys.status, 201);
  sync = keys.body.key_secret;
  const settings = await api('GET', '/v1/admin/settings', ADMIN);
  const urls = [...new Set([...settings.body.allowed_return_urls, RETURN])];
  assert.equal((await api('PATCH', '/v1/admin/settings', ADMIN, { allowed_return_urls: urls })).status, 200);

  browser = await openBrowser();
  ({ context, page, cspViolations } = browser);
});

after(async () => {
  await browser?.close();
});

/// The stylesheet applied, nothing was blocked, and nothing is wider than the 360 px screen.
async function assertFits() {
  const width = await page.evaluate(() => getComputedStyle(document.querySelector('main')).maxWidth);
  assert.notEqual(width, 'none', 'the inline stylesheet applies');
  assert.deepEqual(cspViolations, []);
  const scroll = await page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(scroll <= 360, `the page is ${scroll} px wide`);
}

async function settingsLink() {
  const link = await api('POST', `/v1/users/${USER}/settings-link`, sync, { return_url: RETURN, login_hint: CAROL });
  assert.equal(link.status, 201, JSON.stringify(link.body));
  return link.body.url;
}

test('a user opens a settings link, connects through the consent page, picks a calendar and a field mapping, saves; the API shows the same', async () => {
  await page.goto(await settingsLink());
  // The page's script took the link out of the address bar (so CSP let it run).
  await page.waitForURL(`${API}/settings`);
  assert.equal(await page.getAttribute('main', 'data-state'), 'not_connected');
  await assertFits();

  await page.getByLabel('Calendar').check();
  await page.getByLabel('Contacts').check();
  await page.getByLabel('Gmail').uncheck();
  await page.getByRole('button', { name: 'Connect Google account' }).click();
  // Google's (the sandbox's) consent page, with the CRM's account preselected.
  await page.waitForURL(/\/o\/oauth2\/v2\/auth/);
  assert.equal(await page.getByLabel(/carol@example\.com/).isChecked(), true);
  await page.getByRole('button', { name: 'Allow' }).click();
  // Back on the settings page, signed in again by the fresh link the callback returned to.
  await page.waitForURL(`${API}/settings`);
  assert.equal(await page.getAttribute('main', 'data-state'), 'active');
  assert.match(await page.textContent('#notice'), /Google account connected/);
  assert.equal(await page.textContent('#google-email'), CAROL);
  await assertFits();

  // The tenant's defaults are preselected.
  const defaults = (await api('GET', '/v1/admin/settings', ADMIN)).body.defaults;
  assert.equal(await page.getByLabel('Sync direction').inputValue(), defaults.direction);

  // Pick with the keyboard: the monitored calendar, then the mapping with the mouse.
  await page.getByLabel('Team').focus();
  await page.keyboard.press('Space');
  assert.equal(await page.getByLabel('Team').isChecked(), true);
  await page.getByLabel('Postal addresses: CRM → Google').check();
  await page.getByLabel('Phone numbers: Google → CRM').check();
  await page.getByLabel('Sync events from this date').fill('2026-03-01');
  await page.getByRole('button', { name: 'Save' }).focus();
  await page.keyboard.press('Enter');
  await page.waitForURL(/\/settings\?done=saved$/);
  assert.match(await page.textContent('#notice'), /Your settings are saved/);
  const back = new URL(await page.getAttribute('#back', 'href'));
  assert.equal(back.origin + back.pathname, RETURN);
  assert.equal(back.searchParams.get('google_settings'), 'saved');
  assert.equal(back.searchParams.get('user'), USER);

  const { status, body } = await api('GET', `/v1/users/${USER}/google`, sync);
  assert.equal(status, 200);
  assert.equal(body.google_email, CAROL);
  assert.deepEqual(body.products, ['calendar', 'contacts']);
  assert.deepEqual(body.settings.monitored_calendars, [team]);
  assert.equal(body.settings.main_calendar, 'primary');
  assert.equal(body.settings.sync_since, '2026-03-01T00:00:00Z');
  assert.equal(body.settings.direction, defaults.direction, 'the default, saved as the user\'s choice');
  assert.equal(body.settings.contact_fields.addresses, 'crm_to_google');
  assert.equal(body.settings.contact_fields.phones, 'google_to_crm');
  assert.equal(body.settings.contact_fields.names, defaults.contact_fields.names);
  assert.equal(body.settings.contact_fields.notes, defaults.contact_fields.notes);

  // A reload keeps the session (the cookie is sent) and shows what is stored.
  await page.goto(`${API}/settings`);
  assert.equal(await page.getAttribute('main', 'data-state'), 'active');
  assert.equal(await page.getByLabel('Team').isChecked(), true);
  assert.equal(await page.getByLabel('Postal addresses: CRM → Google').isChecked(), true);
  await assertFits();
  if (process.env.CGS_BROWSER_SCREENSHOTS) {
    await page.screenshot({ path: join(process.env.CGS_BROWSER_SCREENSHOTS, 'settings-page.png'), fullPage: true });
  }
});

test('a post without the CSRF token is refused and changes nothing', async () => {
  const before = (await api('GET', `/v1/users/${USER}/google`, sync)).body;
  await page.goto(`${API}/settings`);
  await page.getByLabel('Team').uncheck();
  await page.evaluate(() => {
    document.querySelector('#settings input[name=csrf]').remove();
    document.getElementById('settings').submit();
  });
  await page.waitForSelector('main[data-outcome]');
  assert.equal(await page.getAttribute('main', 'data-outcome'), 'refused');
  assert.equal(await page.textContent('h1'), 'This form was refused');
  const afterRefusal = (await api('GET', `/v1/users/${USER}/google`, sync)).body;
  assert.deepEqual(afterRefusal.settings, before.settings);
  await assertFits();
});

test('a refused save says why in plain words and keeps the choices; the user then disconnects', async () => {
  await page.setExtraHTTPHeaders({ 'Accept-Language': 'ja,en;q=0.5' });
  await page.goto(await settingsLink());
  await page.waitForURL(`${API}/settings`);
  assert.equal(await page.getAttribute('html', 'lang'), 'ja');
  const before = (await api('GET', `/v1/users/${USER}/google`, sync)).body;
  const notes = before.settings.contact_fields.notes === 'crm_to_google' ? ['google_to_crm', 'Google → CRM'] : ['crm_to_google', 'CRM → Google'];
  await page.getByLabel(`メモ: ${notes[1]}`).check();
  // A date the API refuses, typed where the browser's date picker allows no such thing.
  await page.evaluate(() => {
    const input = document.getElementById('sync_since');
    input.type = 'text';
    input.value = '31/01/2026';
  });
  await page.getByRole('button', { name: '保存' }).click();
  await page.waitForSelector('#error');
  const error = await page.textContent('#error');
  assert.match(error, /何も保存されていません/);
  assert.match(error, /sync_since must be a date/);
  assert.equal(await page.getByLabel(`メモ: ${notes[1]}`).isChecked(), true, 'the choice is kept');
  const stored = (await api('GET', `/v1/users/${USER}/google`, sync)).body;
  assert.deepEqual(stored.settings, before.settings, 'nothing saved');
  assert.notEqual(stored.settings.contact_fields.notes, notes[0]);

  await page.getByRole('button', { name: 'Google アカウントの接続を解除' }).click();
  await page.waitForURL(/done=disconnected/);
  assert.equal(await page.getAttribute('main', 'data-state'), 'not_connected');
  assert.equal((await api('GET', `/v1/users/${USER}/google`, sync)).body.status, 'disconnected');
  await assertFits();
  await page.setExtraHTTPHeaders({});
});
