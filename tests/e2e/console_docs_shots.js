// console_docs_shots.js: the screenshots of docs/review.md, taken the way
// the browser test takes its own (console_browser.js), on the same seed but
// without its hostile records. Run by console_docs_shots.sh; not a test.
// Environment: PV_URL, PV_DB, PV_SHOTS, PV_REVIEWER (NAME:PASSWORD).
'use strict';
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const { chromium } = require(path.join(__dirname, 'npm/console/node_modules/playwright-core'));

const URL_ = process.env.PV_URL;
const DB = process.env.PV_DB;
const SHOTS = process.env.PV_SHOTS;
const [REV, REV_PW] = process.env.PV_REVIEWER.split(':');

function sql1(q) {
  return execFileSync('sqlite3', ['-batch', '-cmd', '.timeout 10000', DB, q], { encoding: 'utf8' }).trim().split('\n')[0];
}

async function act(page, id, form, fill) {
  await page.goto(`${URL_}/alerts/${id}`);
  if (fill) await fill(page);
  await Promise.all([page.waitForNavigation(), page.click(`form.${form} button[type=submit]`)]);
}

async function shot(page, name, clip) {
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true, clip });
  console.log(`wrote ${name}.png`);
}

(async () => {
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  const page = await ctx.newPage();
  page.setDefaultTimeout(20000);
  await page.goto(`${URL_}/login`);
  await shot(page, 'login', { x: 0, y: 0, width: 1280, height: 360 });
  await page.fill('form.login input[name=name]', REV);
  await page.fill('form.login input[name=password]', REV_PW);
  await Promise.all([page.waitForNavigation(), page.click('form.login button[type=submit]')]);

  // A morning's work, so the trail and the rule quality page have content:
  // two neutropenia alerts closed with outcomes, one acknowledged and
  // assigned, one closed as not clinically relevant.
  const ids = execFileSync('sqlite3', [DB, "SELECT id FROM alerts WHERE rule = 'baricitinib.neutropenia' AND status = 'open' ORDER BY grade DESC, id"], { encoding: 'utf8' })
    .trim().split('\n').map(Number);
  const [main, second, third] = ids;
  await act(page, main, 'act-ack');
  await act(page, main, 'act-comment', (p) => p.fill('form.act-comment textarea[name=note]', 'Called the rheumatology clinic: patient seen today, no fever.'));
  await act(page, main, 'act-close', async (p) => {
    await p.selectOption('form.act-close select[name=outcome]', 'intervention:dose_interrupted');
    await p.fill('form.act-close textarea[name=note]', 'ANC below 1000: baricitinib interrupted, CBC repeated in one week.');
  });
  await act(page, second, 'act-ack');
  await act(page, second, 'act-assign', (p) => p.fill('form.act-assign input[name=assignee]', 'dr.okafor'));
  await act(page, third, 'act-close', async (p) => {
    await p.selectOption('form.act-close select[name=outcome]', 'intervention:labs_repeated');
    await p.fill('form.act-close textarea[name=note]', 'Repeat CBC ordered; dose maintained (grade 2).');
  });
  const lipids = Number(sql1("SELECT id FROM alerts WHERE rule = 'baricitinib.lipids_overdue' AND status = 'open' ORDER BY id LIMIT 1"));
  await act(page, lipids, 'act-close', async (p) => {
    await p.selectOption('form.act-close select[name=outcome]', 'not_clinically_relevant');
    await p.fill('form.act-close textarea[name=note]', 'Lipid panel done at the GP, result on paper.');
  });

  await page.goto(`${URL_}/?sort=severity`);
  await shot(page, 'worklist', { x: 0, y: 0, width: 1280, height: 860 });
  await page.goto(`${URL_}/?group=rule`);
  await shot(page, 'worklist-grouped', { x: 0, y: 0, width: 1280, height: 720 });
  await page.goto(`${URL_}/alerts/${main}`);
  await shot(page, 'alert');
  const chart = await page.$('svg.pv-chart');
  if (chart) {
    await chart.screenshot({ path: path.join(SHOTS, 'chart.png') });
    console.log('wrote chart.png');
  }
  await page.goto(`${URL_}/alerts/${second}`);
  const forms = await page.$('form.act');
  const box = forms && await page.evaluate(() => {
    const h = [...document.querySelectorAll('h2')].find((e) => /Actions/.test(e.textContent));
    const t = [...document.querySelectorAll('h2')].find((e) => /Provenance/.test(e.textContent));
    return h && t ? { y: h.getBoundingClientRect().top + window.scrollY - 8,
      h: t.getBoundingClientRect().top - h.getBoundingClientRect().top } : null;
  });
  if (box) await shot(page, 'alert-actions', { x: 0, y: box.y, width: 1280, height: box.h });
  else console.log(`no actions box on alert ${second}: forms ${forms !== null}`);
  const pid = sql1(`SELECT patient_id FROM alerts WHERE id = ${main}`);
  await page.goto(`${URL_}/patients/${encodeURIComponent(pid)}`);
  await shot(page, 'patient', { x: 0, y: 0, width: 1280, height: 860 });
  await page.goto(`${URL_}/rules`);
  await shot(page, 'rules');
  await browser.close();
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
