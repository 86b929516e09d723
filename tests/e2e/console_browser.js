// console_browser.js: the review console in a real browser (issue 16,
// "Tests"), driven by test_console_browser.sh, which seeds the database
// through pvwatch, starts 'pvwatch run' with the console on and creates the
// users. Debian's chromium, headless, through playwright-core from the
// committed lock file (tests/e2e/npm/console/): no browser download.
//
// Environment (all set by test_console_browser.sh):
//   PV_URL      http://127.0.0.1:PORT of the console
//   PV_DB       the database file (read with the sqlite3 CLI, to check what
//               the pages show and what the actions wrote)
//   PV_SHOTS    directory for the screenshots (worklist.png, alert.png,
//               patient.png, ...)
//   PV_REVIEWER NAME:PASSWORD of a reviewer; PV_VIEWER the same of a viewer
//   PV_XSS_PID  a patient id that is an XSS payload (its alerts exist)
//
// Prints 'ok - ...' / 'not ok - ...' lines and a tally; exits 1 when any
// assertion failed. Nothing waits for luck: every wait is on a condition
// (a navigation, a selector) with a deadline.
'use strict';
const path = require('node:path');
const fs = require('node:fs');
const { execFileSync } = require('node:child_process');
const { chromium } = require(path.join(__dirname, 'npm/console/node_modules/playwright-core'));
const { pngStats } = require('./console_png.js');

const URL_ = process.env.PV_URL;
const DB = process.env.PV_DB;
const SHOTS = process.env.PV_SHOTS;
const [REV, REV_PW] = (process.env.PV_REVIEWER || '').split(':');
const [VIEW, VIEW_PW] = (process.env.PV_VIEWER || '').split(':');
const XSS_PID = process.env.PV_XSS_PID || '';
const STEP_MS = 20000; // the deadline of each navigation or wait

let passed = 0, failed = 0;
let section = '';
function sec(name) { section = name; console.log(`== ${name}`); }
function ok(cond, msg, extra) {
  if (cond) { passed++; console.log(`ok - ${msg}`); }
  else {
    failed++;
    console.log(`not ok - [${section}] ${msg}${extra !== undefined ? ': ' + JSON.stringify(extra) : ''}`);
  }
  return cond;
}
function eq(want, got, msg) {
  return ok(String(want) === String(got), msg, { want, got });
}
function near(want, got, msg, tol = 1.0) {
  return ok(Number.isFinite(got) && Math.abs(want - got) <= tol, msg, { want, got, tol });
}

// sqlite3 DB SQL: rows as arrays of strings ('|' separated by the CLI).
function sql(q) {
  const out = execFileSync('sqlite3', ['-batch', '-bail', '-cmd', '.timeout 10000', DB, q],
    { encoding: 'utf8' });
  return out.split('\n').filter((l) => l !== '').map((l) => l.split('|'));
}
function sql1(q) {
  const r = sql(q);
  return r.length ? r[0][0] : '';
}
function lit(s) { return `'${String(s).replace(/'/g, "''")}'`; }
function ms(iso) { return Date.parse(iso); }

// What the browser said: console errors, page errors, CSP violations,
// dialogs (an XSS that ran), failed requests.
const problems = [];
const dialogs = [];
function watch(page, who) {
  page.on('console', (m) => {
    if (m.type() === 'error' || (m.type() === 'warning' && /Content Security Policy/i.test(m.text()))) {
      problems.push(`${who} console ${m.type()}: ${m.text()} (${(m.location() && m.location().url) || page.url()})`);
    }
  });
  page.on('pageerror', (e) => problems.push(`${who} page error: ${e.message} (${page.url()})`));
  page.on('dialog', async (d) => {
    dialogs.push(`${who} ${d.type()}: ${d.message()} (${page.url()})`);
    await d.dismiss().catch(() => {});
  });
  page.on('requestfailed', (r) => problems.push(`${who} request failed: ${r.url()} ${r.failure() && r.failure().errorText}`));
}
const INIT = () => {
  window.__pvCsp = [];
  document.addEventListener('securitypolicyviolation', (e) => {
    window.__pvCsp.push(`${e.violatedDirective} ${e.blockedURI}`);
  });
};

async function newUser(browser, who) {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  await ctx.addInitScript(INIT);
  const page = await ctx.newPage();
  page.setDefaultTimeout(STEP_MS);
  page.setDefaultNavigationTimeout(STEP_MS);
  watch(page, who);
  return { ctx, page };
}

async function login(page, name, pw) {
  await page.goto(`${URL_}/`);
  // Not logged in: the console sends us to the login page.
  ok(/\/login/.test(page.url()), `${name}: GET / without a session goes to /login`, page.url());
  await page.fill('form.login input[name=name]', name);
  await page.fill('form.login input[name=password]', pw);
  await Promise.all([page.waitForNavigation(), page.click('form.login button[type=submit]')]);
  ok(!/\/login/.test(new URL(page.url()).pathname), `${name}: logged in, left /login`, page.url());
  const cookies = await page.context().cookies();
  const c = cookies.find((k) => k.name === 'pvwatch_session');
  ok(c && c.httpOnly && c.sameSite === 'Strict', `${name}: session cookie HttpOnly, SameSite=Strict`, c);
}

// The screenshot SHOTS/NAME.png, and a failure if it is blank.
async function shot(page, name) {
  const file = path.join(SHOTS, `${name}.png`);
  const png = await page.screenshot({ path: file, fullPage: true });
  const s = pngStats(png);
  ok(s.stddev > 5 && s.nonBg > 0.003 && s.distinct > 8,
    `${name}.png is not blank (luma stddev ${s.stddev.toFixed(1)}, ${(s.nonBg * 100).toFixed(1)} % non-background, ${s.distinct} colours)`,
    s);
  return s;
}

async function pageCsp(page) {
  return page.evaluate(() => window.__pvCsp || []);
}

// The worklist's alert ids as the page shows them.
async function rowIds(page) {
  return page.$$eval('tr.alert-row', (rs) => rs.map((r) => Number(r.dataset.id)));
}

async function main() {
  fs.mkdirSync(SHOTS, { recursive: true });
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
  try {
    await run(browser);
  } finally {
    await browser.close();
  }
}

async function run(browser) {
  const { ctx, page } = await newUser(browser, REV);

  // -------------------------------------------------------------------
  sec('log in');
  const head = await page.request.get(`${URL_}/login`);
  const csp = head.headers()['content-security-policy'] || '';
  ok(/default-src 'self'|default-src 'none'/.test(csp) && !/unsafe-inline/.test(csp.replace(/style-src[^;]*/, '')),
    'Content-Security-Policy forbids inline scripts and other origins', csp);
  await login(page, REV, REV_PW);

  // -------------------------------------------------------------------
  sec('worklist: default view');
  await page.goto(`${URL_}/`);
  const live = Number(sql1("SELECT count(*) FROM alerts WHERE status != 'closed'"));
  const ids = await rowIds(page);
  ok(live > 0, 'the seeded database has live alerts', live);
  eq(Math.min(live, 50), ids.length, 'default worklist shows the open and acknowledged alerts (one page)');
  const sqlNewest = sql("SELECT id FROM alerts WHERE status != 'closed' ORDER BY created_at DESC, id DESC LIMIT 50").map((r) => Number(r[0]));
  eq(JSON.stringify(sqlNewest), JSON.stringify(ids), 'rows newest first, as SQLite orders them');
  await shot(page, 'worklist');
  await page.goto(`${URL_}/?sort=severity`);
  const sevIds = await rowIds(page);
  const sqlSevere = sql(`SELECT id FROM alerts WHERE status != 'closed' ORDER BY (CASE severity WHEN 'critical' THEN 4
    WHEN 'high' THEN 3 WHEN 'medium' THEN 2 WHEN 'low' THEN 1 ELSE 0 END) DESC, created_at DESC, id DESC LIMIT 50`).map((r) => Number(r[0]));
  eq(JSON.stringify(sqlSevere), JSON.stringify(sevIds), 'sort=severity: most severe first, as SQLite orders them');
  await shot(page, 'worklist-severe');

  // -------------------------------------------------------------------
  sec('worklist: filters in the URL');
  await page.selectOption('form.filter select[name=severity]', 'critical');
  await Promise.all([page.waitForNavigation(), page.click('form.filter button[type=submit]')]);
  let u = new URL(page.url());
  eq('critical', u.searchParams.get('severity'), 'the URL holds the severity filter');
  const crit = Number(sql1("SELECT count(*) FROM alerts WHERE status != 'closed' AND severity = 'critical'"));
  let got = await rowIds(page);
  eq(crit, got.length, 'severity=critical: as many rows as SQLite counts');
  ok(crit > 0 && crit < live, 'the filter selects a proper subset', { crit, live });
  // The same URL in a fresh page (a bookmark, a mail) shows the same rows.
  const bookmark = page.url();
  const p2 = await ctx.newPage();
  watch(p2, `${REV} (bookmark)`);
  await p2.goto(bookmark);
  eq(JSON.stringify(got), JSON.stringify(await rowIds(p2)), 'the bookmarked URL shows the same rows');
  await p2.close();

  await page.goto(`${URL_}/?rule=${encodeURIComponent('baricitinib.neutropenia')}&status=open`);
  const neutOpen = Number(sql1("SELECT count(*) FROM alerts WHERE status = 'open' AND rule = 'baricitinib.neutropenia'"));
  eq(neutOpen, (await rowIds(page)).length, 'rule=baricitinib.neutropenia&status=open: SQLite\'s count');

  await page.goto(`${URL_}/?group=rule`);
  const groups = sql("SELECT rule, count(*) FROM alerts WHERE status != 'closed' GROUP BY rule ORDER BY rule");
  const shown = await page.$$eval('tr.group-row', (rs) => rs.map((r) => [r.dataset.key, r.dataset.count]));
  eq(JSON.stringify(groups), JSON.stringify(shown), 'group=rule: one row per rule with SQLite\'s counts');
  await shot(page, 'worklist-grouped');
  await page.goto(`${URL_}/?group=patient&severity=critical`);
  const pgroups = sql("SELECT patient_id, count(*) FROM alerts WHERE status != 'closed' AND severity = 'critical' GROUP BY patient_id ORDER BY patient_id LIMIT 50");
  const pshown = await page.$$eval('tr.group-row', (rs) => rs.map((r) => [r.dataset.key, r.dataset.count]));
  eq(JSON.stringify(pgroups), JSON.stringify(pshown), 'group=patient&severity=critical: SQLite\'s groups and counts');

  // Keyset paging: page 2 of all statuses follows page 1 with no overlap.
  const total = Number(sql1('SELECT count(*) FROM alerts'));
  await page.goto(`${URL_}/?status=all`);
  const pg1 = await rowIds(page);
  const next = await page.$('p.pager a[rel=next], p.pager a.next');
  if (total > pg1.length) {
    ok(next !== null, 'a next-page link when there are more rows', { total, page: pg1.length });
  }
  if (next) {
    const href = await next.getAttribute('href');
    ok(/after=/.test(href) && !/offset=/i.test(href), 'the next link is a keyset cursor (after=), not OFFSET', href);
    await Promise.all([page.waitForNavigation(), next.click()]);
    const pg2 = await rowIds(page);
    ok(pg2.length > 0 && pg2.every((id) => !pg1.includes(id)), 'page 2 has new rows only', { pg1, pg2 });
  }

  // -------------------------------------------------------------------
  sec('alert page: the chart');
  // The neutropenia alert of a generated patient of the highest grade, with
  // the most results (a chart worth reading).
  const alertId = Number(sql1(`
    SELECT a.id FROM alerts a
     WHERE a.rule = 'baricitinib.neutropenia' AND a.status = 'open'
       AND a.patient_id LIKE 'PV-1%'
     ORDER BY a.grade DESC, (SELECT count(*) FROM observations o WHERE o.patient_id = a.patient_id) DESC, a.id
     LIMIT 1`));
  ok(alertId > 0, 'a neutropenia alert to open', alertId);
  const alertPid = sql1(`SELECT patient_id FROM alerts WHERE id = ${alertId}`);
  await page.goto(`${URL_}/alerts/${alertId}`);
  const title = sql1(`SELECT title FROM alerts WHERE id = ${alertId}`);
  ok((await page.innerText('main')).includes(title), 'the alert page shows the alert\'s title', title);
  const svg = await page.$('svg.pv-chart');
  if (ok(svg !== null, 'the alert page has the chart (svg.pv-chart)')) {
    const ax = await svg.evaluate((s) => ({
      t0: s.dataset.t0, t1: s.dataset.t1, x0: Number(s.dataset.x0), x1: Number(s.dataset.x1),
    }));
    const t0 = ms(ax.t0), t1 = ms(ax.t1);
    ok(Number.isFinite(t0) && Number.isFinite(t1) && t1 > t0 && ax.x1 > ax.x0, 'the chart names its time axis', ax);
    const X = (iso) => ax.x0 + (ms(iso) - t0) / (t1 - t0) * (ax.x1 - ax.x0);
    const clip = (x) => Math.min(ax.x1, Math.max(ax.x0, x));

    // The label threshold (US RA: interrupt when ANC < 1000 cells/mm3,
    // scripts/label.lua), a horizontal line over the whole time axis.
    const th = await page.$$eval('svg.pv-chart line.threshold', (ls) => ls.map((l) => ({
      value: Number(l.dataset.value), x1: Number(l.getAttribute('x1')), x2: Number(l.getAttribute('x2')),
      y1: Number(l.getAttribute('y1')), y2: Number(l.getAttribute('y2')),
    })));
    if (ok(th.length >= 1, 'the chart has the label threshold line (line.threshold)', th)) {
      const unit = await svg.evaluate((s) => s.dataset.unit || '');
      const want = /cells|mm3|\/uL/i.test(unit) && !/10\*3/.test(unit) ? 1000 : 1.0;
      near(want, th[0].value, `the threshold is ANC 1000 cells/mm3 in the plotted unit (${unit})`, 1e-9);
      near(ax.x0, Math.min(th[0].x1, th[0].x2), 'the threshold line starts at x0');
      near(ax.x1, Math.max(th[0].x1, th[0].x2), 'the threshold line ends at x1');
      near(th[0].y1, th[0].y2, 'the threshold line is horizontal', 0.01);
    }
    // The exposure band(s): where SQLite says the baricitinib exposures are.
    const exps = sql(`SELECT start_at, coalesce(end_at, '') FROM exposures
                       WHERE patient_id = ${lit(alertPid)} ORDER BY start_at`);
    const rects = await page.$$eval('svg.pv-chart rect.exposure', (rs) => rs.map((r) => ({
      start: r.dataset.start, end: r.dataset.end,
      x: Number(r.getAttribute('x')), w: Number(r.getAttribute('width')),
    })));
    if (ok(rects.length >= 1, 'the chart shades the exposure window (rect.exposure)', rects)) {
      const r = rects[0];
      ok(exps.some(([s]) => ms(s) === ms(r.start)), 'the band starts at the exposure\'s start_at in SQLite', { r, exps });
      const e = exps.find(([s]) => ms(s) === ms(r.start));
      if (e) {
        eq(e[1] === '' ? '' : ms(e[1]), r.end === '' ? '' : ms(r.end), 'the band ends at the exposure\'s end_at (open: none)');
      }
      near(clip(X(r.start)), r.x, 'the band\'s x is the exposure start on the axis');
      const xEnd = r.end === '' ? ax.x1 : clip(X(r.end));
      near(xEnd, r.x + r.w, 'the band\'s right edge is the exposure end (or x1 when open)');
    }
    // The points: each result at its time; the alert's facts marked.
    const pts = await page.$$eval('svg.pv-chart circle.point', (cs) => cs.map((c) => ({
      at: c.dataset.at, v: Number(c.dataset.value), cx: Number(c.getAttribute('cx')),
      fact: c.classList.contains('fact'),
    })));
    const nAnc = Number(sql1(`SELECT count(*) FROM observations WHERE patient_id = ${lit(alertPid)}
                               AND code IN ('751-8', '26499-4', '753-4')`));
    eq(nAnc, pts.length, 'one point per ANC result of the patient in SQLite');
    ok(pts.length > 0 && pts.every((p) => Math.abs(X(p.at) - p.cx) <= 1.0), 'every point at x(t) of its result', pts.slice(0, 3));
    ok(pts.some((p) => p.fact), 'the alert\'s evidence is marked (circle.point.fact)');
  }
  await shot(page, 'alert');

  // -------------------------------------------------------------------
  sec('actions: acknowledge, comment (double submit), close with an outcome');
  const before = Number(sql1(`SELECT count(*) FROM alert_actions WHERE alert_id = ${alertId}`));
  await Promise.all([page.waitForNavigation(), page.click('form.act-ack button[type=submit]')]);
  eq(`/alerts/${alertId}`, new URL(page.url()).pathname, 'after acknowledge: back on the alert page (303)');
  eq('acknowledged', sql1(`SELECT status FROM alerts WHERE id = ${alertId}`), 'the alert is acknowledged in SQLite');
  eq(`${REV}|${REV}`, sql(`SELECT actor, entered_by FROM alert_actions WHERE alert_id = ${alertId}
                          AND action = 'acknowledged' ORDER BY id DESC LIMIT 1`).map((r) => r.join('|'))[0],
    'the acknowledged row has the logged-in user as actor and entered_by');

  // A double submit: the same form (same request_id) posted twice records once.
  const form = await page.$('form.act-comment');
  if (ok(form !== null, 'the alert page has the comment form')) {
    const csrf = await form.$eval('input[name=csrf]', (i) => i.value);
    const rid = await form.$eval('input[name=request_id]', (i) => i.value);
    const note = `double submit ${Date.now()}`;
    const action = await form.getAttribute('action');
    for (let i = 0; i < 2; i++) {
      const r = await page.request.post(`${URL_}${action}`, { form: { csrf, request_id: rid, note }, maxRedirects: 0 });
      eq(303, r.status(), `comment POST ${i + 1} answers 303`);
    }
    eq(1, sql1(`SELECT count(*) FROM alert_actions WHERE alert_id = ${alertId} AND note = ${lit(note)}`),
      'the same request_id twice: one comment row');

    // CSRF: no token, a wrong token: 403 and no row.
    const n0 = Number(sql1(`SELECT count(*) FROM alert_actions WHERE alert_id = ${alertId}`));
    let r = await page.request.post(`${URL_}${action}`, { form: { request_id: `${rid}x1`, note: 'no csrf' }, maxRedirects: 0 });
    eq(403, r.status(), 'a POST without the csrf token is refused (403)');
    r = await page.request.post(`${URL_}${action}`, { form: { csrf: '0'.repeat(64), request_id: `${rid}x2`, note: 'bad csrf' }, maxRedirects: 0 });
    eq(403, r.status(), 'a POST with a wrong csrf token is refused (403)');
    eq(n0, sql1(`SELECT count(*) FROM alert_actions WHERE alert_id = ${alertId}`), 'no row from the refused POSTs');
  }

  await page.goto(`${URL_}/alerts/${alertId}`);
  await page.selectOption('form.act-close select[name=outcome]', 'intervention:dose_interrupted');
  await page.fill('form.act-close textarea[name=note]', 'ANC below 1000: dose interrupted, CBC in one week');
  await Promise.all([page.waitForNavigation(), page.click('form.act-close button[type=submit]')]);
  eq(`/alerts/${alertId}`, new URL(page.url()).pathname, 'after close: back on the alert page (303)');
  eq('closed', sql1(`SELECT status FROM alerts WHERE id = ${alertId}`), 'the alert is closed in SQLite');
  eq(`${REV}|${REV}|intervention:dose_interrupted|ANC below 1000: dose interrupted, CBC in one week`,
    sql(`SELECT actor, entered_by, outcome, note FROM alert_actions WHERE alert_id = ${alertId}
          AND action = 'closed' ORDER BY id DESC LIMIT 1`).map((r) => r.join('|'))[0],
    'the closed row: actor, entered_by, outcome and note');
  ok(Number(sql1(`SELECT count(*) FROM alert_actions WHERE alert_id = ${alertId}`)) >= before + 3,
    'acknowledged, commented and closed rows added');
  ok((await page.innerText('main')).includes(REV), 'the audit trail on the page names the reviewer');
  await shot(page, 'alert-closed');

  // -------------------------------------------------------------------
  sec('patient page');
  await page.goto(`${URL_}/patients/${encodeURIComponent(alertPid)}`);
  ok((await page.innerText('main')).includes(alertPid), 'the patient page names the patient id', alertPid);
  ok((await page.$('svg')) !== null, 'the patient page has the timeline svg');
  await shot(page, 'patient');

  // -------------------------------------------------------------------
  sec('rules page');
  await page.goto(`${URL_}/rules`);
  const rulesText = await page.innerText('main');
  ok(rulesText.includes('baricitinib.neutropenia'), 'the rule quality page lists the neutropenia rule');
  await shot(page, 'rules');

  // -------------------------------------------------------------------
  sec('XSS payloads are inert');
  const xssAlerts = sql(`SELECT id FROM alerts WHERE patient_id = ${lit(XSS_PID)}
                          OR rule LIKE 'test.%' OR patient_id LIKE '%<script>%' ORDER BY id`).map((r) => Number(r[0]));
  ok(xssAlerts.length >= 3, 'the seeded hostile alerts exist', xssAlerts);
  const visits = [`${URL_}/?status=all`, `${URL_}/?group=patient`, `${URL_}/?group=rule`,
    `${URL_}/?patient=${encodeURIComponent(XSS_PID)}`, `${URL_}/rules`,
    `${URL_}/patients/${encodeURIComponent(XSS_PID)}`,
    ...xssAlerts.map((id) => `${URL_}/alerts/${id}`)];
  for (const v of visits) {
    await page.goto(v);
    const inj = await page.evaluate(() => ({
      scripts: [...document.scripts].filter((s) => !s.src).length,
      handlers: document.querySelectorAll('[onerror],[onload]').length,
      img: document.querySelectorAll('main img[src="x"]').length,
    }));
    ok(inj.scripts === 0 && inj.handlers === 0 && inj.img === 0, `no injected element on ${v.replace(URL_, '')}`, inj);
  }
  await page.goto(`${URL_}/alerts/${xssAlerts[0]}`);
  ok((await page.innerText('body')).includes(XSS_PID), 'the hostile patient id is shown as text', XSS_PID);
  const ruleAlert = sql1("SELECT id FROM alerts WHERE rule LIKE 'test.%' LIMIT 1");
  await page.goto(`${URL_}/alerts/${ruleAlert}`);
  ok((await page.innerText('body')).includes("<script>alert('rule title')</script>"), 'the hostile rule title is shown as text');
  await shot(page, 'xss');

  // -------------------------------------------------------------------
  sec('a viewer cannot act');
  const v = await newUser(browser, VIEW);
  await login(v.page, VIEW, VIEW_PW);
  const open2 = Number(sql1("SELECT id FROM alerts WHERE status = 'open' ORDER BY id LIMIT 1"));
  await v.page.goto(`${URL_}/alerts/${open2}`);
  eq(0, (await v.page.$$('form.act')).length, 'the viewer\'s alert page has no action forms');
  const vcsrf = await v.page.$eval('form.logout input[name=csrf]', (i) => i.value).catch(() => '');
  ok(vcsrf.length >= 32, 'the viewer has a session csrf token (logout form)');
  const n1 = Number(sql1(`SELECT count(*) FROM alert_actions WHERE alert_id = ${open2}`));
  for (const act of ['ack', 'comment', 'close', 'assign']) {
    const r = await v.page.request.post(`${URL_}/alerts/${open2}/${act}`, {
      form: { csrf: vcsrf, request_id: `viewer-${act}-${Date.now()}`, note: 'viewer', outcome: 'duplicate', assignee: VIEW },
      maxRedirects: 0,
    });
    eq(403, r.status(), `the viewer's POST /alerts/${open2}/${act} is refused (403)`);
  }
  eq(n1, sql1(`SELECT count(*) FROM alert_actions WHERE alert_id = ${open2}`), 'no row from the viewer');
  eq('open', sql1(`SELECT status FROM alerts WHERE id = ${open2}`), 'the alert is still open');
  await v.ctx.close();

  // -------------------------------------------------------------------
  sec('the browser saw no error');
  const cspSeen = await pageCsp(page);
  eq('[]', JSON.stringify(cspSeen), 'no CSP violation reported on the last page');
  eq('[]', JSON.stringify(dialogs), 'no dialog opened (no XSS ran)');
  eq('[]', JSON.stringify(problems), 'no console error, page error or failed request');
  await ctx.close();
}

main().then(() => {
  console.log(`${passed} passed, ${failed} failed (browser)`);
  process.exit(failed || !passed ? 1 : 0);
}, (e) => {
  console.log(`not ok - [${section}] ${e && e.stack || e}`);
  console.log(`${passed} passed, ${failed + 1} failed (browser)`);
  process.exit(1);
});
