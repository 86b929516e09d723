// bench_console_client.mjs: the HTTP client of bench/bench_console.sh (node,
// no dependencies). Logs in to the review console once, then:
//
//   latency URL NAME PASSWORD N PATH...
//       for each PATH, N GET requests one after the other on one keep-alive
//       connection (after 5 untimed ones); prints one JSON line per PATH:
//       {"path", "n", "p50_ms", "p99_ms", "max_ms", "bytes"}. A response
//       other than 200 is an error (exit 1).
//   pages URL NAME PASSWORD K
//       follows the worklist's "next" link (the keyset cursor) K-1 times
//       from /?status=all and prints the path of page K (and of every page
//       on stderr).
//   hammer LOGFILE NAME PASSWORD CLIENTS PID OUT
//       waits for "console listening on http://HOST:PORT/" in LOGFILE (the
//       log of the 'pvwatch run' that bench_mllp starts), then CLIENTS
//       loops, each on its own keep-alive connection, GET the worklist
//       (default, filtered, grouped by patient, page 2) and an alert page
//       round robin (BENCH_CONSOLE_MIX=all: also the worklist grouped by
//       rule and the rules page, which read every live alert), until
//       process PID is gone or the console refuses connections (each at
//       most BENCH_CONSOLE_RATE requests a second when set); then
//       appends one JSON line to OUT: requests, errors (by kind), seconds,
//       p50/p99 in ms.
import http from 'node:http';
import fs from 'node:fs';

const [mode, ...args] = process.argv.slice(2);

function request(agent, base, method, path, cookie, body) {
  return new Promise((resolve, reject) => {
    const u = new URL(path, base);
    const headers = {};
    if (cookie) headers.Cookie = cookie;
    if (body) {
      headers['Content-Type'] = 'application/x-www-form-urlencoded';
      headers['Content-Length'] = Buffer.byteLength(body);
    }
    const rq = http.request({ host: u.hostname, port: u.port, path: u.pathname + u.search,
      method, headers, agent }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers,
        body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    rq.on('error', reject);
    if (body) rq.write(body);
    rq.end();
  });
}

async function login(base, name, pw) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const body = `name=${encodeURIComponent(name)}&password=${encodeURIComponent(pw)}`;
  const r = await request(agent, base, 'POST', '/login', null, body);
  agent.destroy();
  const sc = [].concat(r.headers['set-cookie'] || []).find((c) => c.startsWith('pvwatch_session='));
  if (r.status !== 303 || !sc) throw new Error(`login as ${name} failed: HTTP ${r.status}`);
  return sc.split(';')[0];
}

function pct(sorted, p) {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)];
}

function unesc(s) {
  return s.replace(/&amp;/g, '&').replace(/&quot;/g, '"').replace(/&#39;/g, "'")
    .replace(/&lt;/g, '<').replace(/&gt;/g, '>');
}

function nextHref(html) {
  const m = /<a class="next" rel="next" href="([^"]*)"/.exec(html);
  return m ? unesc(m[1]) : null;
}

async function latency(base, name, pw, n, paths) {
  const cookie = await login(base, name, pw);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  for (const p of paths) {
    const t = [];
    let bytes = 0;
    for (let i = 0; i < n + 5; i++) {
      const t0 = process.hrtime.bigint();
      const r = await request(agent, base, 'GET', p, cookie);
      const dt = Number(process.hrtime.bigint() - t0) / 1e6;
      if (r.status !== 200) throw new Error(`GET ${p}: HTTP ${r.status}`);
      bytes = r.body.length;
      if (i >= 5) t.push(dt);
    }
    t.sort((a, b) => a - b);
    console.log(JSON.stringify({ path: p, n, p50_ms: pct(t, 0.5), p99_ms: pct(t, 0.99),
      max_ms: t[t.length - 1], bytes }));
  }
  agent.destroy();
}

async function pages(base, name, pw, k) {
  const cookie = await login(base, name, pw);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  let p = '/?status=all';
  for (let i = 1; i < k; i++) {
    const r = await request(agent, base, 'GET', p, cookie);
    if (r.status !== 200) throw new Error(`GET ${p}: HTTP ${r.status}`);
    const nx = nextHref(r.body);
    if (!nx) throw new Error(`page ${i} (${p}) has no next link`);
    p = nx;
    console.error(`page ${i + 1}: ${p}`);
  }
  agent.destroy();
  console.log(p);
}

function alive(pid) {
  try { process.kill(pid, 0); return true; } catch { return false; }
}

async function hammer(logfile, name, pw, clients, pid, out) {
  let base = null;
  const deadline = Date.now() + 60000;
  while (!base) {
    if (!alive(pid) || Date.now() > deadline) return;
    const text = fs.existsSync(logfile) ? fs.readFileSync(logfile, 'utf8') : '';
    const m = /console listening on (http:\/\/[^/\s]+)\//.exec(text);
    if (m) base = m[1];
    else await new Promise((r) => setTimeout(r, 50));
  }
  const cookie = await login(base, name, pw);
  // BENCH_CONSOLE_MIX=all adds the two pages that read every live alert
  // (the rule quality page and the worklist grouped by rule).
  const paths = ['/', '/?severity=critical', '/?status=all&rule=baricitinib.neutropenia',
    '/?group=patient'];
  if (process.env.BENCH_CONSOLE_MIX === 'all') paths.push('/?group=rule', '/rules');
  const first = await request(new http.Agent(), base, 'GET', '/?status=all', cookie);
  const nx = nextHref(first.body);
  if (nx) paths.push(nx);
  const m = /href="\/alerts\/(\d+)"/.exec(first.body);
  if (m) paths.push(`/alerts/${m[1]}`);
  const rate = Number(process.env.BENCH_CONSOLE_RATE || 0);
  let n = 0, errors = 0;
  const kinds = {};
  const lat = [];
  const t0 = Date.now();
  await Promise.all(Array.from({ length: clients }, async (_, c) => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    let i = c;
    let slot = Date.now();
    while (alive(pid)) {
      if (rate > 0) {
        // At most RATE requests a second from this client (a timer, not
        // a measurement: the figures are the MLLP ones).
        slot += 1000 / rate;
        const wait = slot - Date.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        else slot = Date.now();
      }
      const p = paths[i++ % paths.length];
      const s = process.hrtime.bigint();
      try {
        const r = await request(agent, base, 'GET', p, cookie);
        if (r.status !== 200) {
          errors++;
          kinds[`HTTP ${r.status} ${p}`] = (kinds[`HTTP ${r.status} ${p}`] || 0) + 1;
        }
        n++;
        lat.push(Number(process.hrtime.bigint() - s) / 1e6);
      } catch (e) {
        // Refused: the console stopped listening (pvwatch is stopping).
        if (!alive(pid) || e.code === 'ECONNREFUSED') break;
        errors++;
        kinds[`${e.code || e.message} ${p}`] = (kinds[`${e.code || e.message} ${p}`] || 0) + 1;
      }
    }
    agent.destroy();
  }));
  lat.sort((a, b) => a - b);
  const secs = (Date.now() - t0) / 1000;
  fs.appendFileSync(out, JSON.stringify({ clients, requests: n, errors, seconds: secs,
    per_s: n / secs, rate_per_client: rate, p50_ms: pct(lat, 0.5), p99_ms: pct(lat, 0.99), error_kinds: kinds }) + '\n');
}

try {
  if (mode === 'latency') await latency(args[0], args[1], args[2], Number(args[3]), args.slice(4));
  else if (mode === 'pages') await pages(args[0], args[1], args[2], Number(args[3]));
  else if (mode === 'hammer') await hammer(args[0], args[1], args[2], Number(args[3]), Number(args[4]), args[5]);
  else {
    console.error('usage: bench_console_client.mjs latency|pages|hammer ...');
    process.exit(2);
  }
} catch (e) {
  console.error(`bench_console_client: ${e.message}`);
  process.exit(1);
}
