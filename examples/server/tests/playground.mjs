// Loads the trial page in headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core),
// enters the API key, picks the service, sends a message, and records how the answer grows.
// Reads MODELSERVICE_URL, MODELSERVICE_API_KEY, MODELSERVICE_MODEL and MODELSERVICE_SCREENSHOT;
// prints one JSON object for tests/http.rs to check. Exits non-zero on any failure.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const url = process.env.MODELSERVICE_URL;
const profile = mkdtempSync(join(tmpdir(), 'modelservice-chromium-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: [
    '--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync',
  ],
  viewport: { width: 1000, height: 720 },
});
try {
  const page = context.pages()[0] ?? (await context.newPage());
  const consoleErrors = [];
  page.on('pageerror', (e) => consoleErrors.push(String(e)));
  await page.goto(url);
  const title = await page.title();
  await page.fill('#key', process.env.MODELSERVICE_API_KEY);
  await page.click('#load');
  await page.waitForFunction(
    (model) => [...document.querySelectorAll('#model option')].some((o) => o.value === model),
    process.env.MODELSERVICE_MODEL,
  );
  const services = await page.$$eval('#model option', (options) => options.map((o) => o.value));
  await page.selectOption('#model', process.env.MODELSERVICE_MODEL);
  await page.fill('#temperature', '0');
  await page.fill('#max_tokens', '32');

  // Every text the answer shows while it streams in, in order.
  await page.evaluate(() => {
    window.__seen = [];
    new MutationObserver(() => {
      const answers = document.querySelectorAll('.msg.assistant span');
      const last = answers[answers.length - 1];
      if (last && window.__seen[window.__seen.length - 1] !== last.textContent) window.__seen.push(last.textContent);
    }).observe(document.getElementById('log'), { subtree: true, childList: true, characterData: true });
  });
  await page.fill('#prompt', 'Say this is a test!');
  await page.click('#send');
  await page.waitForSelector('.msg[data-state="done"]', { timeout: 120_000 });
  const answer = await page.textContent('.msg.assistant span');
  const seen = await page.evaluate(() => window.__seen);
  const status = await page.textContent('#status');
  await page.screenshot({ path: process.env.MODELSERVICE_SCREENSHOT, fullPage: true });
  console.log(JSON.stringify({ title, services, answer, seen, status, consoleErrors }));
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
