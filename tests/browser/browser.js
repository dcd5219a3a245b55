// What the browser tests share: Debian's chromium (CGS_CHROMIUM, default /usr/bin/chromium)
// launched headless through playwright-core in a throw-away profile, at 360 px wide, with
// every Content-Security-Policy report the page logs collected (a test asserts none).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

export async function openBrowser() {
  const profile = mkdtempSync(join(tmpdir(), 'cgs-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CGS_CHROMIUM || '/usr/bin/chromium',
    headless: true,
    viewport: { width: 360, height: 800 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const page = context.pages()[0] ?? await context.newPage();
  const cspViolations = [];
  page.on('console', (m) => {
    if (/Content Security Policy/i.test(m.text())) cspViolations.push(m.text());
  });
  const close = async () => {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  };
  return { context, page, cspViolations, close };
}
