// `weft stat`, `weft top` and `weft tap` against real processes: `weft control`, two
// `weft proxy` sidecars (web, the caller, with the default 2 workers; backend, with
// its workload), a backend app that fails every 5th request, requests through web's
// outbound listener. Readiness is a printed line or a polled condition, never a sleep.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Agent, createServer, type Server } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { many, viaProxy, type Reply } from './helpers/http.js';
import { killAll, runWeft, startWeft, stderrTails, stop, until, type Running } from './helpers/procs.js';

const CONTROL_READY = /^weft control ready: api=(\S+) xds=(\S+) data=(\S+)$/;
const PROXY_READY = /^weft proxy ready: admin=(\S+) outbound=(\S+) node=(\S+)$/;

let tmp: string;
let dataDir: string;
let apiUrl: string;
let xdsAddr: string;
let outbound: string;
let app: Server;
let appPort: number;
let served = 0;
let failed = false;
const agent = new Agent({ keepAlive: true, maxSockets: 8 });

async function weft(args: readonly string[], input?: string): Promise<string> {
  const r = await runWeft([...args, '--server', apiUrl, '--data-dir', dataDir], { home: tmp, ...(input !== undefined ? { input } : {}) });
  assert.equal(r.code, 0, `weft ${args.join(' ')} failed:\n${r.stderr}`);
  return r.stdout;
}

/** A sidecar with its workload certificate (join token) and its inbound (mTLS) listener on a free port. */
async function startProxy(service: string, extra: readonly string[] = []): Promise<{ run: Running; match: RegExpExecArray }> {
  const token = (await weft(['token', 'create', '--namespace', 'default', '--service-account', 'default'])).trim();
  return startWeft(`weft proxy ${service}`, [
    'proxy', '--xds', xdsAddr, '--service', service, '--namespace', 'default', '--token', token, '--api', apiUrl,
    '--admin-addr', '127.0.0.1:0', '--outbound-addr', '127.0.0.1:0', '--inbound-addr', '127.0.0.1:0', '--log-level', 'warn', ...extra,
  ], PROXY_READY, { home: tmp });
}

const get = (path: string): Promise<Reply> => viaProxy(outbound, `http://backend.default${path}`, agent);

interface ProxyRow { id: string; activeTaps: number; service: { name: string } }
async function tapCounts(): Promise<Record<string, number>> {
  const r = (await (await fetch(`${apiUrl}/apis/telemetry/v1/proxies`)).json()) as { items: ProxyRow[] };
  return Object.fromEntries(r.items.map((p) => [p.service.name, p.activeTaps]));
}

interface StatJson { services: { name: string; requests: number; successRate: number | null; rps: number; p99Ms: number | null; proxies: number }[] }

before(async () => {
  failed = true;
  tmp = await mkdtemp(join(tmpdir(), 'weft-tap-e2e-'));
  dataDir = join(tmp, 'data');
  app = createServer((req, res) => {
    served++;
    const fail = served % 5 === 0;
    res.writeHead(fail ? 500 : 200, { 'content-type': 'text/plain' });
    res.end(fail ? 'boom' : `ok ${req.url}`);
  });
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', () => r()));
  appPort = (app.address() as { port: number }).port;
  const c = await startWeft('weft control', ['control', '--data-dir', dataDir, '--api-addr', '127.0.0.1:0', '--xds-addr', '127.0.0.1:0', '--log-level', 'warn'], CONTROL_READY, { home: tmp });
  apiUrl = c.match[1]!;
  xdsAddr = c.match[2]!;
  await weft(['apply', '-f', '-'], `apiVersion: weft.dev/v1alpha1
kind: Service
metadata: {name: backend, namespace: default}
spec:
  selector: {app: backend}
  ports: [{name: http, port: 80, targetPort: ${appPort}, protocol: http}]
---
apiVersion: weft.dev/v1alpha1
kind: Service
metadata: {name: web, namespace: default}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080, protocol: http}]
`);
  await startProxy('backend', ['--workload-port', String(appPort)]);
  const w = await startProxy('web');
  outbound = w.match[2]!;
  await until('backend reachable through the web sidecar', 15_000, async () => ((await get('/warm')).status !== 503 ? true : undefined), 200);
  await until('both proxies on the telemetry channel', 15_000, async () => {
    const t = await tapCounts();
    return t.web === 0 && t.backend === 0 ? true : undefined;
  });
  failed = false;
});

after(async () => {
  agent.destroy();
  const tails = failed ? stderrTails() : '';
  if (tails !== '') process.stdout.write(tails.replace(/^/gm, '# ') + '\n');
  await killAll();
  await new Promise<void>((r) => { app?.close(() => r()); app?.closeAllConnections(); });
  if (tmp !== undefined) await rm(tmp, { recursive: true, force: true });
});

function step(name: string, fn: () => Promise<void>): void {
  test(name, async () => {
    try { await fn(); } catch (e) { failed = true; throw e; }
  });
}

describe('weft stat / top / tap', { concurrency: false }, () => {
  step('weft stat: every request counted, success rate 0.8 ± 0.05', async () => {
    const before = served;
    const rs = await many(400, 8, () => get('/items'));
    // Nothing lost while no tap runs: every request got the app's own answer.
    assert.equal(rs.filter((r) => r.status === 200 || r.status === 500).length, 400);
    assert.equal(served - before, 400);
    const total = served;
    const row = await until('weft stat shows every request', 20_000, async () => {
      const j = JSON.parse(await weft(['stat', 'backend', '-o', 'json'])) as StatJson;
      const b = j.services.find((s) => s.name === 'backend');
      return b !== undefined && b.requests === total ? b : undefined;
    }, 250);
    process.stdout.write(`# weft stat backend: ${JSON.stringify(row)}\n`);
    assert.ok(Math.abs(row.successRate! - 0.8) <= 0.05, `success rate ${row.successRate}`);
    assert.ok(row.rps >= 1 && row.rps < 10_000, `rps ${row.rps}`);
    assert.equal(row.proxies, 1);
    const table = await weft(['stat']);
    assert.match(table, /^NAME\s+PROXIES\s+SUCCESS\s+RPS\s+LATENCY_P50\s+LATENCY_P95\s+LATENCY_P99$/m);
    assert.match(table, /^backend\s+1\s+(79|80|81)\.\d\d%\s+\d+(\.\d+)?rps\s+\S+ms\s+\S+ms\s+\S+ms$/m);
    assert.match(await weft(['stat', '-A']), /^NAMESPACE\s+NAME/m);
    assert.match(await weft(['stat', 'backend', '--routes']), /^SERVICE\s+ROUTE\s+SUCCESS/m);
  });

  step('weft certs: the certificate each proxy holds, as it reported it', async () => {
    // The first summary carries it (sent within the 5 s interval of connecting).
    const all = await until('both proxies reported a certificate', 15_000, async () => {
      const out = await weft(['certs', '-o', 'json']);
      const items = JSON.parse(out) as { id: string; certificate?: { spiffeId: string; serialNumber: string; notAfter: string } }[];
      return items.length === 2 && items.every((i) => i.certificate !== undefined) ? items : undefined;
    }, 250);
    for (const i of all) {
      assert.equal(i.certificate!.spiffeId, 'spiffe://cluster.local/ns/default/sa/default');
      assert.match(i.certificate!.serialNumber, /^[0-9a-f]+$/);
      assert.ok(Date.parse(i.certificate!.notAfter) > Date.now());
    }
    const table = await weft(['certs', 'web']);
    assert.match(table, /^PROXY +SPIFFE ID +SERIAL +EXPIRES IN +RENEWALS +NEXT RENEWAL +ROOTS$/m);
    assert.equal(table.trim().split('\n').length, 2, table);
    assert.match(table, /web.*spiffe:\/\/cluster\.local\/ns\/default\/sa\/default/);
    const missing = await runWeft(['certs', 'nobody', '--server', apiUrl, '--data-dir', dataDir], { home: tmp });
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^error: no proxy connected to this control plane matches "nobody"/m);
  });

  step('weft top --iterations 2: two snapshots when not a terminal', async () => {
    const out = await weft(['top', '--iterations', '2', '--interval', '200ms']);
    assert.equal(out.match(/^weft top — /gm)?.length, 2, out);
    assert.match(out, /^SOURCE\s+DESTINATION\s+RPS\s+SUCCESS\s+LATENCY_P99\s+MTLS$/m);
    // The sidecars talk mTLS (join tokens above): the edge says so.
    assert.match(out, /^web\.default\s+backend\.default\s.*\syes$/m);
    // Only real Services: the server side knows its callers' namespace, not their Service.
    assert.doesNotMatch(out, /^default\.default\s/m);
    process.stdout.write(out.split('\n').map((l) => `# ${l}`).join('\n') + '\n');
  });

  step('weft tap --max 2 prints the request made after it started (caller and server side), then the taps are gone', async () => {
    const started = startWeft('weft tap', ['tap', 'backend', '--path', '/tapped', '--max', '2', '--server', apiUrl, '--data-dir', dataDir], /\/tapped\/item /, { home: tmp });
    await until('the tap runs on the proxies', 15_000, async () => {
      const t = await tapCounts();
      return t.web === 1 && t.backend === 1 ? true : undefined;
    });
    await get('/other');
    const r = await get('/tapped/item');
    const { run } = await started;
    assert.equal(await run.exited, 0);
    const lines = run.stdout().trim().split('\n');
    assert.equal(lines.length, 2, run.stdout());
    // web's outbound side and backend's inbound side of the same request.
    const out = lines.find((l) => / out /.test(l));
    const inb = lines.find((l) => / in {2}/.test(l));
    assert.match(out ?? '', new RegExp(`^\\S+ out web\\.default -> backend\\.default GET backend\\.default/tapped/item ${r.status} \\d+\\.\\dms$`), run.stdout());
    assert.match(inb ?? '', new RegExp(` -> backend\\.default GET \\S*/tapped/item ${r.status} \\d+\\.\\dms$`), run.stdout());
    assert.ok(!run.stdout().includes('/other'));
    assert.match(run.stderr(), /^tapping service backend\.default on 2 proxies/m);
    await until('every proxy back to 0 taps', 10_000, async () => {
      const t = await tapCounts();
      return t.web === 0 && t.backend === 0 ? true : undefined;
    });
  });

  step('weft tap stopped with Ctrl-C (SIGINT): exits 0 and the proxies stop tapping', async () => {
    const started = startWeft('weft tap -o wide', ['tap', 'backend', '-o', 'wide', '--server', apiUrl, '--data-dir', dataDir], / proxy=sidecar~/, { home: tmp });
    await until('the tap runs on the proxies', 15_000, async () => ((await tapCounts()).web === 1 ? true : undefined));
    const before = served;
    const rs = await many(50, 5, () => get('/while-tapped'));
    assert.equal(served - before, 50);
    assert.equal(rs.filter((x) => x.status === 200 || x.status === 500).length, 50);
    const { run } = await started;
    assert.equal(await stop(run, 'SIGINT'), 0);
    await until('every proxy back to 0 taps', 10_000, async () => {
      const t = await tapCounts();
      return t.web === 0 && t.backend === 0 ? true : undefined;
    });
  });
});
