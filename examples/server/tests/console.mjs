// Drives the web console in headless Chromium (Debian's /usr/bin/chromium, through playwright-core)
// on a server running the real model: list → detail → copy the curl example and run it → the
// trial streams an answer → bad deploys show their errors next to their fields → deploy → scale
// 1 → 2 → delete with confirmation. Saves screenshots of the list and detail pages at desktop and
// phone widths. Reads MODELSERVICE_URL, MODELSERVICE_API_KEY, MODELSERVICE_ADMIN_KEY,
// MODELSERVICE_MODEL, MODELSERVICE_MODEL_PATH, MODELSERVICE_SCREENSHOTS; prints one JSON object
// for tests/console.rs. Exits non-zero on any failure.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const base = process.env.MODELSERVICE_URL;
const apiKey = process.env.MODELSERVICE_API_KEY;
const adminKey = process.env.MODELSERVICE_ADMIN_KEY;
const model = process.env.MODELSERVICE_MODEL;
const modelPath = process.env.MODELSERVICE_MODEL_PATH;
const shots = process.env.MODELSERVICE_SCREENSHOTS;
const second = { name: 'second', access: 'u-8105f7322477/second' };
const DESKTOP = { width: 1280, height: 900 };
const PHONE = { width: 390, height: 844 };
mkdirSync(shots, { recursive: true });

const profile = mkdtempSync(join(tmpdir(), 'modelservice-console-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: [
    '--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync',
  ],
  viewport: DESKTOP,
});
const out = {};
try {
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base });
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(60_000);
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  // Console errors other than the browser's own line for an HTTP error answer (a CSP violation would land here).
  page.on('console', (m) => {
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) pageErrors.push(m.text());
  });
  const text = (selector) => page.textContent(selector);
  const row = (access) => `tr[data-access-name="${access}"]`;
  const facts = (id) => page.$$eval(`#${id} dt`, (dts) => Object.fromEntries(dts.map((dt) => [dt.textContent, dt.nextElementSibling.textContent])));
  // Nothing sticks out of the screen, except inside the code blocks, which scroll by themselves.
  const sticksOut = () => page.evaluate(() => [...document.querySelectorAll('body *')]
    .filter((e) => !e.closest('pre') && e.getBoundingClientRect().right > window.innerWidth + 0.5)
    .map((e) => `${e.tagName.toLowerCase()}#${e.id}.${e.className}`)
    .concat(document.documentElement.scrollWidth > window.innerWidth ? ['(page scrolls sideways)'] : []));
  const unlabeled = () => page.$$eval('input, textarea, select, button', (els) => els
    .filter((e) => e.type !== 'hidden' && !e.closest('[aria-hidden="true"]'))
    .filter((e) => (e.tagName === 'BUTTON' ? !(e.getAttribute('aria-label') || e.textContent.trim()) : !(e.labels && e.labels.length) && !e.getAttribute('aria-label')))
    .map((e) => e.id || e.outerHTML.slice(0, 60)));

  // The list without a key says what to do, in words.
  await page.goto(`${base}/console`);
  await page.waitForFunction(() => /Enter a key/.test(document.getElementById('list-status').textContent));
  assert.deepEqual(await unlabeled(), [], 'list page: every control has a label');

  // Keys: masked, revealed on demand, saved with the keyboard, kept in sessionStorage only.
  await page.fill('#api-key', apiKey);
  await page.fill('#admin-key', adminKey);
  assert.equal(await page.getAttribute('#api-key', 'type'), 'password');
  await page.click('button.reveal[aria-controls="api-key"]');
  assert.equal(await page.getAttribute('#api-key', 'type'), 'text');
  assert.equal(await page.getAttribute('button.reveal[aria-controls="api-key"]', 'aria-pressed'), 'true');
  await page.click('button.reveal[aria-controls="api-key"]');
  assert.equal(await page.getAttribute('#api-key', 'type'), 'password');
  await page.press('#admin-key', 'Enter');
  await page.waitForSelector(`${row(model)} .status-running`);
  out.storage = await page.evaluate(() => ({
    session: [sessionStorage.getItem('modelservice-key'), sessionStorage.getItem('modelservice-admin-key')],
    local: localStorage.length,
  }));
  assert.deepEqual(out.storage, { session: [apiKey, adminKey], local: 0 });
  out.listRow = await page.$$eval(`${row(model)} > *`, (cells) => cells.map((c) => c.textContent.trim()));
  out.listNotServed = await text('#not-served');

  // Detail page, at a stable URL that holds the access name (with its `/`).
  await page.click(`${row(model)} a.service-link`);
  await page.waitForURL(`${base}/console/services/${model}`);
  await page.waitForFunction(() => document.querySelectorAll('#base-model dt').length > 0);
  assert.deepEqual(await unlabeled(), [], 'detail page: every control has a label');
  out.basic = await facts('basic');
  out.baseModel = await facts('base-model');
  out.detailNotServed = await text('#not-served');
  await page.click('#view-key');
  out.viewKey = { type: await page.getAttribute('#api-key', 'type'), value: await page.inputValue('#api-key'), label: await text('#view-key') };
  await page.click('#view-key');
  assert.equal(await page.getAttribute('#api-key', 'type'), 'password');

  // Copy the curl example and run it: the model answers.
  await page.click('#example-curl button.copy');
  await page.waitForFunction(() => document.querySelector('#example-curl .copy-status').textContent === 'Copied');
  out.curl = await page.evaluate(() => navigator.clipboard.readText());
  assert.equal(out.curl, await text('#code-curl'));
  const answered = JSON.parse(execFileSync('bash', ['-c', out.curl], {
    env: { ...process.env, MODELSERVICE_API_KEY: apiKey }, encoding: 'utf8', timeout: 240_000,
  }));
  out.curlAnswer = answered.choices[0].message.content;
  out.examples = await page.$$eval('#example-list pre code', (codes) => Object.fromEntries(codes.map((c) => [c.id, c.textContent])));

  // The Python and Node examples, copied the same way, run with the official `openai` packages.
  const copied = async (id) => {
    await page.click(`#example-${id} button.copy`);
    const code = await page.evaluate(() => navigator.clipboard.readText());
    assert.equal(code, out.examples[`code-${id}`]);
    return code;
  };
  const run = (program, args) => execFileSync(program, args, {
    env: { ...process.env, MODELSERVICE_API_KEY: apiKey }, encoding: 'utf8', timeout: 240_000,
  }).trim();
  out.pythonAnswer = run('.venv/bin/python', ['-c', await copied('python')]);
  out.nodeAnswer = run('node', ['--input-type=commonjs', '-e', await copied('node')]);

  // The trial streams an answer: record every text the answer shows while it grows.
  await page.fill('#trial-temperature', '0');
  await page.fill('#trial-max-tokens', '32');
  await page.evaluate(() => {
    window.__seen = [];
    new MutationObserver(() => {
      const answers = document.querySelectorAll('.msg.assistant .msg-text');
      const last = answers[answers.length - 1];
      if (last && window.__seen[window.__seen.length - 1] !== last.textContent) window.__seen.push(last.textContent);
    }).observe(document.getElementById('trial-log'), { subtree: true, childList: true, characterData: true });
  });
  await page.fill('#trial-prompt', 'Say this is a test!');
  await page.press('#trial-prompt', 'Enter');
  await page.waitForSelector('.msg.assistant[data-state="done"]', { timeout: 120_000 });
  out.trial = {
    answer: await text('.msg.assistant .msg-text'),
    seen: await page.evaluate(() => window.__seen),
    status: await text('#trial-status'),
  };
  // The live refresh picks up the two requests (curl and trial) in the usage counters.
  await page.waitForFunction(() => {
    const dt = [...document.querySelectorAll('#stats dt')].find((d) => d.textContent === 'Requests');
    return dt && Number(dt.nextElementSibling.textContent.replace(/,/g, '')) >= 2;
  });
  out.stats = await facts('stats');

  // Stop: a long answer is cut off once it has started, and the page says so.
  await page.fill('#trial-max-tokens', '400');
  await page.fill('#trial-prompt', 'Tell me a long story about a lighthouse keeper.');
  await page.click('#trial-send');
  await page.waitForFunction(() => {
    const answers = document.querySelectorAll('.msg.assistant .msg-text');
    return answers.length === 2 && answers[1].textContent.length > 0;
  });
  await page.click('#trial-stop');
  await page.waitForSelector('.msg.assistant[data-state="done"] ~ .msg.assistant[data-state="done"]');
  out.stopped = { status: await text('#trial-status'), stopDisabled: await page.isDisabled('#trial-stop') };

  // JSON mode: the schema box constrains the answer to JSON valid against it; a schema that is not
  // JSON, or that the server refuses, is shown next to the box, which gets focus.
  await page.click('#trial-clear');
  out.schemaHiddenAtFirst = await page.isHidden('#trial-schema');
  await page.check('#trial-json');
  await page.fill('#trial-max-tokens', '96');
  await page.fill('#trial-prompt', 'Describe a person as JSON.');
  await page.press('#trial-prompt', 'Enter');
  await page.waitForSelector('.msg.assistant[data-state="done"]', { timeout: 120_000 });
  out.json = {
    answer: await text('.msg.assistant .msg-text'),
    state: await page.getAttribute('.msg.assistant', 'data-json'),
    status: await text('#trial-status'),
  };
  await page.screenshot({ path: join(shots, 'detail-json-mode.png'), fullPage: true });
  await page.fill('#trial-schema', '{"type": "object", "properties": {"a": {"$ref": "#/$defs/missing"}}}');
  await page.fill('#trial-prompt', 'Again, as JSON.');
  await page.press('#trial-prompt', 'Enter');
  await page.waitForSelector('.msg.assistant.error[data-state="done"]');
  const schemaState = async () => ({
    error: await text('#trial-schema-error'),
    invalid: await page.getAttribute('#trial-schema', 'aria-invalid'),
    focused: await page.evaluate(() => document.activeElement && document.activeElement.id),
  });
  out.refusedSchema = await schemaState();
  await page.fill('#trial-schema', '{not json');
  await page.fill('#trial-prompt', 'Once more.');
  await page.press('#trial-prompt', 'Enter');
  out.brokenSchema = { ...(await schemaState()), messages: await page.$$eval('.msg', (m) => m.length) };
  await page.uncheck('#trial-json');
  out.schemaHiddenAgain = await page.isHidden('#trial-schema');

  // Tools: a required call shows in the answer as the function and its arguments.
  await page.click('#trial-clear');
  await page.click('#trial-tools-box summary');
  await page.fill('#trial-tools', JSON.stringify([{ type: 'function', function: { name: 'get_weather',
    parameters: { type: 'object', properties: { city: { type: 'string', maxLength: 20 } }, required: ['city'] } } }]));
  await page.selectOption('#trial-tool-choice', 'required');
  await page.fill('#trial-max-tokens', '60');
  await page.fill('#trial-prompt', 'What is the weather like in Paris today?');
  await page.click('#trial-send');
  await page.waitForSelector('.msg.assistant[data-state="done"]', { timeout: 120_000 });
  out.toolCall = { calls: await text('.msg.assistant .msg-calls'), status: await text('#trial-status') };
  await page.fill('#trial-tools', '');
  await page.screenshot({ path: join(shots, 'detail-desktop.png'), fullPage: true });
  await page.setViewportSize(PHONE);
  await page.waitForTimeout(300);
  out.detailPhoneSticksOut = await sticksOut();
  await page.screenshot({ path: join(shots, 'detail-phone.png'), fullPage: true });
  await page.setViewportSize(DESKTOP);

  // Bad deploys: each error shows next to the field the server names, which gets focus.
  await page.goto(`${base}/console`);
  await page.waitForSelector(`${row(model)} .status-running`);
  await page.fill('#f-name', 'bad');
  await page.fill('#f-access_name', 'u-8105f7322477/bad');
  await page.fill('#f-model', '/nonexistent/missing.gguf');
  await page.fill('#f-threads', '1');
  await page.click('#deploy');
  await page.waitForFunction(() => document.getElementById('e-model').textContent !== '');
  out.badModel = {
    error: await text('#e-model'),
    invalid: await page.getAttribute('#f-model', 'aria-invalid'),
    focused: await page.evaluate(() => document.activeElement.id),
    describedBy: await page.getAttribute('#f-model', 'aria-describedby'),
  };
  await page.fill('#f-model', modelPath);
  await page.fill('#f-instances', '0');
  await page.click('#deploy');
  await page.waitForFunction(() => document.getElementById('e-instances').textContent !== '');
  out.badInstances = {
    error: await text('#e-instances'),
    invalid: await page.getAttribute('#f-instances', 'aria-invalid'),
    modelErrorCleared: (await text('#e-model')) === '' && (await page.getAttribute('#f-model', 'aria-invalid')) === null,
  };
  out.listAfterBadDeploys = await page.$$eval('tbody tr', (rows) => rows.map((r) => r.dataset.accessName));

  // Watch the statuses the list shows for the second service while it is deployed and scaled.
  await page.evaluate((access) => {
    window.__statuses = [];
    const look = () => {
      const badge = document.querySelector(`tr[data-access-name="${access}"] .status-badge`);
      const s = badge && badge.textContent;
      if (s && window.__statuses[window.__statuses.length - 1] !== s) window.__statuses.push(s);
    };
    new MutationObserver(look).observe(document.querySelector('#services tbody'), { subtree: true, childList: true, characterData: true });
  }, second.access);

  // A good deploy, through the same form.
  await page.fill('#f-name', second.name);
  await page.fill('#f-access_name', second.access);
  await page.fill('#f-instances', '1');
  await page.fill('#f-slots', '1');
  await page.fill('#f-context_length', '512');
  await page.click('#deploy');
  await page.waitForFunction(() => /is running/.test(document.getElementById('deploy-status').textContent), null, { timeout: 120_000 });
  await page.waitForSelector(`${row(second.access)} .status-running`);
  out.deployStatus = await text('#deploy-status');

  // Scale 1 → 2 from the list: Escape first closes the dialog and gives focus back.
  const scaleButton = `${row(second.access)} button[aria-label="Scale ${second.name}"]`;
  await page.focus(scaleButton);
  await page.keyboard.press('Enter');
  await page.waitForSelector('dialog[open]');
  out.scaleDialogFocus = await page.evaluate(() => document.activeElement.id);
  await page.keyboard.press('Escape');
  await page.waitForSelector('dialog', { state: 'detached' });
  out.focusAfterEscape = await page.evaluate(() => document.activeElement.getAttribute('aria-label'));
  await page.click(scaleButton);
  await page.fill('#scale-instances', '2');
  await page.press('#scale-instances', 'Enter');
  await page.waitForFunction((sel) => document.querySelector(sel).children[4].textContent === '2', row(second.access));
  await page.waitForSelector('dialog', { state: 'detached' });
  await page.waitForSelector(`${row(second.access)} .status-running`);
  out.scaledRow = await page.$$eval(`${row(second.access)} > *`, (cells) => cells.map((c) => c.textContent.trim()));
  out.statusesSeen = await page.evaluate(() => window.__statuses);
  await page.screenshot({ path: join(shots, 'list-desktop.png'), fullPage: true });
  await page.setViewportSize(PHONE);
  await page.waitForTimeout(300);
  out.listPhoneSticksOut = await sticksOut();
  await page.screenshot({ path: join(shots, 'list-phone.png'), fullPage: true });
  await page.setViewportSize(DESKTOP);

  // Delete with confirmation: the button waits for the exact name; then the row disappears.
  await page.click(`${row(second.access)} button[aria-label="Delete ${second.name}"]`);
  await page.waitForSelector('dialog[open]');
  const confirm = 'dialog button[type="submit"]';
  out.deleteDisabled = [await page.isDisabled(confirm)];
  await page.fill('#delete-confirm', 'secon');
  out.deleteDisabled.push(await page.isDisabled(confirm));
  await page.fill('#delete-confirm', second.name);
  out.deleteDisabled.push(await page.isDisabled(confirm));
  await page.click(confirm);
  await page.waitForSelector(row(second.access), { state: 'detached', timeout: 120_000 });
  await page.waitForFunction(() => /was deleted/.test(document.getElementById('action-status').textContent));
  await page.waitForSelector('dialog', { state: 'detached' });
  out.actionStatus = await text('#action-status');
  out.focusAfterDelete = await page.evaluate(() => document.activeElement.id);
  out.listAfterDelete = await page.$$eval('tbody tr', (rows) => rows.map((r) => r.dataset.accessName));

  // The deleted service's page says so in words.
  await page.goto(`${base}/console/services/${second.access}`);
  await page.waitForFunction(() => document.getElementById('info-status').textContent !== '');
  out.goneStatus = await text('#info-status');
  out.pageErrors = pageErrors;
  console.log(JSON.stringify(out));
} catch (e) {
  console.error(JSON.stringify(out));
  throw e;
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
