// The first whole mesh, all real processes: `weft control` (store, HTTP API, xDS),
// `weft proxy` sidecars, two app versions, and requests through the client
// sidecar's outbound listener in explicit-proxy mode. Readiness is always a line a
// process prints or a condition polled with a deadline; never a sleep.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Agent, request } from 'node:http';
import { connect } from 'node:net';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { curl, many, startApp, tally, viaProxy, type App, type Reply } from './helpers/http.js';
import { killAll, runWeft, startWeft, stderrTails, stop, until, type Running } from './helpers/procs.js';
import { route, services } from './helpers/catalog-yaml.js';

const CONTROL_READY = /^weft control ready: api=(\S+) xds=(\S+) data=(\S+)$/;
const PROXY_READY = /^weft proxy ready: admin=(\S+) outbound=(\S+) node=(\S+)$/;

let tmp: string;
let dataDir: string;
let control: Running;
let apiUrl: string;
let xdsAddr: string;
let v1: App;
let v2: App;
let v1Proxy: Running;
let v1Node: string;
let web: Running;
let webAdmin: string;
let outbound: string;
let webNode: string;
const agent = new Agent({ keepAlive: true, maxSockets: 8 });
let failed = false;

/** A test whose failure also prints every process's stderr (in `after`). */
function step(name: string, fn: () => Promise<void> | void): void {
  test(name, async () => {
    try {
      await fn();
    } catch (e) {
      failed = true;
      throw e;
    }
  });
}

async function weft(args: readonly string[], input?: string): Promise<string> {
  const r = await runWeft([...args, '--server', apiUrl, '--data-dir', dataDir], { home: tmp, ...(input !== undefined ? { input } : {}) });
  assert.equal(r.code, 0, `weft ${args.join(' ')} failed:\n${r.stderr}`);
  return r.stdout;
}

async function apply(yaml: string): Promise<void> {
  await weft(['apply', '-f', '-'], yaml);
}

/**
 * The same change straight to the HTTP API (`POST /apply`), so that a propagation
 * time measured from here holds no CLI start-up. Returns when the API answered.
 */
async function applyViaApi(yaml: string): Promise<void> {
  const token = (await readFile(join(dataDir, 'admin-token'), 'utf8')).trim();
  const r = await fetch(`${apiUrl}/apply`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/yaml' }, body: yaml });
  assert.equal(r.status, 200, await r.text());
}

function startControl(apiAddr: string, xds: string): Promise<{ run: Running; match: RegExpExecArray }> {
  return startWeft('weft control', ['control', '--data-dir', dataDir, '--api-addr', apiAddr, '--xds-addr', xds, '--log-level', 'warn'], CONTROL_READY, { home: tmp });
}

function startProxy(service: string, extra: readonly string[] = []): Promise<{ run: Running; match: RegExpExecArray }> {
  return startWeft(`weft proxy ${service}`, [
    'proxy', '--xds', xdsAddr, '--service', service, '--namespace', 'default',
    '--admin-addr', '127.0.0.1:0', '--outbound-addr', '127.0.0.1:0', '--log-level', 'warn', ...extra,
  ], PROXY_READY, { home: tmp });
}

const get = (url: string, headers?: Record<string, string>): Promise<Reply> => viaProxy(outbound, url, agent, headers);
const who = (r: Reply): string => (r.status === 200 ? r.body : `${r.status} ${String(r.headers['x-weft-response-flags'] ?? '')}`);

interface ProxyStatusItem {
  nodeId: string;
  sync: Record<string, { state: string }>;
}

/** `weft proxy-status -o json`: the node ids whose four types are SYNCED. */
async function syncedNodes(): Promise<Set<string>> {
  const out = JSON.parse(await weft(['proxy-status', '-o', 'json'])) as { items: ProxyStatusItem[] };
  return new Set(out.items.filter((i) => ['CDS', 'LDS', 'EDS', 'RDS'].every((t) => i.sync[t]?.state === 'SYNCED')).map((i) => i.nodeId));
}

/** Polls batches of `batch` requests to catalog until every one is answered by `app`; returns ms since `since`. */
async function convergeTo(app: string, since: number, deadlineMs: number, batch = 10): Promise<number> {
  return until(`every request to catalog.default answered by ${app}`, deadlineMs, async () => {
    const rs = await many(batch, 5, () => get('http://catalog.default/'));
    return rs.every((r) => who(r) === app) ? Date.now() - since : undefined;
  }, 0);
}

async function adminReady(): Promise<number> {
  return (await fetch(`${webAdmin}/ready`)).status;
}

before(async () => {
  failed = true; // until the mesh is up
  tmp = await mkdtemp(join(tmpdir(), 'weft-mesh-e2e-'));
  dataDir = join(tmp, 'data');
  const c = await startControl('127.0.0.1:0', '127.0.0.1:0');
  control = c.run;
  apiUrl = c.match[1]!;
  xdsAddr = c.match[2]!;
  [v1, v2] = await Promise.all([startApp('v1'), startApp('v2')]);
  await apply(services(v1.port, v2.port));
  await apply(route(80, 20));
  // v1 is registered by its sidecar (node metadata), v2 by the Workload above.
  const p1 = await startProxy('catalog-v1', ['--workload-port', String(v1.port)]);
  v1Proxy = p1.run;
  v1Node = p1.match[3]!;
  const w = await startProxy('web');
  web = w.run;
  webAdmin = w.match[1]!;
  outbound = w.match[2]!;
  webNode = w.match[3]!;
  // The web sidecar has both versions' endpoints once each answers directly.
  await until('catalog-v1 and catalog-v2 reachable through the web sidecar', 15_000, async () => {
    const [a, b] = await Promise.all([get('http://catalog-v1.default/'), get('http://catalog-v2.default/')]);
    return a.body === 'v1' && b.body === 'v2' ? true : undefined;
  });
  failed = false;
});

after(async () => {
  agent.destroy();
  // Warnings and errors of every process (they run at --log-level warn).
  const tails = failed ? stderrTails() : '';
  if (tails !== '') process.stdout.write(tails.replace(/^/gm, '# ') + '\n');
  await Promise.all([v1?.close(), v2?.close()]);
  await killAll();
  if (tmp !== undefined) await rm(tmp, { recursive: true, force: true });
});

describe('weft mesh: control plane, sidecars, apps', { concurrency: false }, () => {
  step('weft proxy without --xds: one error line, exit 2', async () => {
    const r = await runWeft(['proxy', '--service', 'web'], { home: tmp });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /^error: required option '--xds/m);
  });

  step('the ready lines name what was bound', () => {
    assert.match(outbound, /^127\.0\.0\.1:\d+$/);
    assert.match(webAdmin, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(webNode, 'sidecar~127.0.0.1~web.default');
    assert.equal(v1Node, `sidecar~127.0.0.1~catalog-v1.default~${v1.port}`);
  });

  step('curl -x and a Host header both reach catalog', async () => {
    const r = await curl(outbound, 'http://catalog.default/');
    assert.equal(r.status, 200);
    assert.match(r.body, /^v[12]$/);
    // Origin-form request routed by its Host header.
    const o = await new Promise<Reply>((resolve, reject) => {
      const i = outbound.lastIndexOf(':');
      request({ host: '127.0.0.1', port: Number(outbound.slice(i + 1)), path: '/', headers: { host: 'catalog-v2.default' }, agent }, (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (c: string) => (body += c)).on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      }).on('error', reject).end();
    });
    assert.equal(o.status, 200);
    assert.equal(o.body, 'v2');
  });

  step('(a) 1,000 requests split 80/20 (±5%)', async () => {
    const rs = await many(1000, 8, () => get('http://catalog.default/'));
    const t = tally(rs, who);
    assert.deepEqual(Object.keys(t).sort(), ['v1', 'v2'], JSON.stringify(t));
    const share = (t.v2 ?? 0) / 1000;
    process.stdout.write(`# split over 1000 requests: ${JSON.stringify(t)} (v2 ${(share * 100).toFixed(1)}%)\n`);
    assert.ok(share >= 0.15 && share <= 0.25, `v2 share ${share} is not 20% ± 5%: ${JSON.stringify(t)}`);
  });

  step('(b) a changed HTTPRoute (100% v2) applies within 1 s', async () => {
    const t0 = Date.now();
    await applyViaApi(route(0, 100));
    const ms = await convergeTo('v2', t0, 5000);
    process.stdout.write(`# route change (100% v2) in force ${ms} ms after POST /apply was sent\n`);
    assert.ok(ms <= 1000, `took ${ms} ms`);
    const t = tally(await many(100, 5, () => get('http://catalog.default/')), who);
    assert.deepEqual(t, { v2: 100 });
  });

  step('(c) with the control plane killed (-9), traffic keeps flowing and /ready stays 200', async () => {
    assert.ok((await syncedNodes()).has(webNode), 'web is SYNCED before the kill');
    assert.equal(await stop(control, 'SIGKILL'), 'SIGKILL');
    assert.equal(await adminReady(), 200);
    const rs = await many(200, 4, () => get('http://catalog.default/'));
    assert.deepEqual(tally(rs, who), { v2: 200 });
    // New connections too, not only the pooled ones.
    const fresh = new Agent({ keepAlive: false });
    try {
      assert.equal((await viaProxy(outbound, 'http://catalog-v1.default/', fresh)).body, 'v1');
    } finally {
      fresh.destroy();
    }
    assert.equal(await adminReady(), 200);
  });

  step('(d) a control plane restarted on the same data dir gets the proxies back, and route changes apply again', async () => {
    const apiAddr = new URL(apiUrl).host;
    const c = await startControl(apiAddr, xdsAddr);
    control = c.run;
    assert.equal(c.match[1], apiUrl);
    assert.equal(c.match[2], xdsAddr);
    const restarted = Date.now();
    // The ADS clients back off exponentially (0.5 s doubling, full jitter) while it was down.
    await until('web and catalog-v1 sidecars SYNCED in weft proxy-status', 40_000, async () => {
      const s = await syncedNodes();
      return s.has(webNode) && s.has(v1Node) ? true : undefined;
    }, 200);
    process.stdout.write(`# both sidecars SYNCED ${Date.now() - restarted} ms after the restart\n`);
    // v1's registration (in memory) is back once its sidecar reconnected.
    await until('catalog-v1 endpoints back in the web sidecar', 10_000, async () => ((await get('http://catalog-v1.default/')).body === 'v1' ? true : undefined));
    const t0 = Date.now();
    await applyViaApi(route(100, 0));
    const ms = await convergeTo('v1', t0, 5000);
    process.stdout.write(`# route change (100% v1) after the restart in force ${ms} ms after POST /apply was sent\n`);
    assert.ok(ms <= 1000, `took ${ms} ms`);
  });

  step('(e) an unknown host: 404 with response flag NR', async () => {
    const r = await curl(outbound, 'http://nope.default/');
    assert.equal(r.status, 404);
    assert.equal(r.headers['x-weft-response-flags'], 'NR');
  });

  step('(f) a stopped app: 503 UF; once its sidecar is gone and its registration lapses: 503 UH', async () => {
    await v1.close();
    const r = await get('http://catalog-v1.default/');
    assert.equal(r.status, 503);
    assert.equal(r.headers['x-weft-response-flags'], 'UF');
    // SIGTERM: the sidecar drains and exits 0; the control plane keeps its
    // registration for a grace period (10 s), then the endpoint goes.
    assert.equal(await stop(v1Proxy, 'SIGTERM'), 0);
    const gone = Date.now();
    const uh = await until('catalog-v1 answered 503 UH', 20_000, async () => {
      const x = await get('http://catalog-v1.default/');
      return x.headers['x-weft-response-flags'] === 'UH' ? x : undefined;
    }, 250);
    assert.equal(uh.status, 503);
    process.stdout.write(`# catalog-v1 UH ${Date.now() - gone} ms after its sidecar exited\n`);
  });

  step('SIGTERM on the client sidecar: the request in flight finishes, then it exits 0 and accepts no more', async () => {
    const before = v2.served;
    const slow = viaProxy(outbound, 'http://catalog-v2.default/slow?ms=700', new Agent({ keepAlive: false }));
    await until('the slow request reached v2', 5000, () => Promise.resolve(v2.served > before ? true : undefined), 10);
    web.proc.kill('SIGTERM');
    const r = await slow;
    assert.equal(r.status, 200);
    assert.equal(r.body, 'v2');
    assert.equal(await web.exited, 0);
    const i = outbound.lastIndexOf(':');
    await assert.rejects(new Promise<void>((resolve, reject) => {
      const s = connect(Number(outbound.slice(i + 1)), '127.0.0.1', () => { s.destroy(); resolve(); });
      s.on('error', reject);
    }), /ECONNREFUSED/);
  });
});
