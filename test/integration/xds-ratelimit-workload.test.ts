// BackendPolicy rateLimit with scope workload (issue 5 item 7, "per workload"), with
// the built binary: `weft control` (mTLS xDS), three `weft proxy` sidecars with
// join tokens — web and mobile call catalog — and the policy applied with `weft
// apply`. The bucket lives in catalog's inbound listener, so web and mobile share
// it: once its budget is spent, both get 429 (flag RL, retry-after) from catalog's
// sidecar and the app sees exactly the budget. Readiness is printed lines and
// polled state; no sleeps.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, request, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { killAll, runWeft, startWeft, stderrTails, until } from '../e2e/helpers/procs.js';

const CONTROL_READY = /^weft control ready: api=(\S+) xds=(\S+) data=(\S+)$/;
const PROXY_READY = /^weft proxy ready: admin=(\S+) outbound=(\S+) node=(\S+)$/m;
const INBOUND_LINE = /^weft proxy inbound: \S+:(\d+) /;
const BUDGET = 6;

let tmp: string;
let dataDir: string;
let apiUrl: string;
let xdsTls: string;
let failed = false;
const apps: Server[] = [];
let catalogHits = 0;
const appPorts = new Map<string, number>();

function startApp(name: string, onRequest?: () => void): Promise<number> {
  const server = createServer((req, res) => {
    onRequest?.();
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(`${name} ${req.url ?? ''}`);
  });
  apps.push(server);
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
}

const mesh = (catalog: number, web: number, mobile: number): string => `
apiVersion: weft.dev/v1alpha1
kind: Service
metadata: { name: catalog, namespace: shop }
spec:
  ports: [{ name: http, port: 80, targetPort: ${catalog}, protocol: http }]
---
apiVersion: weft.dev/v1alpha1
kind: Service
metadata: { name: web, namespace: shop }
spec:
  ports: [{ name: http, port: 80, targetPort: ${web}, protocol: http }]
---
apiVersion: weft.dev/v1alpha1
kind: Service
metadata: { name: mobile, namespace: shop }
spec:
  ports: [{ name: http, port: 80, targetPort: ${mobile}, protocol: http }]
`;

// An hour per fill: no token comes back while the test runs.
const POLICY = `
apiVersion: weft.dev/v1alpha1
kind: BackendPolicy
metadata: { name: catalog-per-workload, namespace: shop }
spec:
  targetRefs: [{ kind: Service, name: catalog }]
  rateLimit: { scope: workload, requests: ${BUDGET}, per: 1h }
`;

async function weft(args: readonly string[], input?: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return runWeft([...args, '--server', apiUrl, '--data-dir', dataDir], { home: tmp, ...(input !== undefined ? { input } : {}) });
}

interface Sidecar {
  nodeId: string;
  /** Admin URL (http://host:port). */
  admin: string;
  outbound: string;
}

async function startSidecar(service: string): Promise<Sidecar> {
  const port = appPorts.get(service)!;
  const token = await weft(['token', 'create', '--namespace', 'shop', '--service-account', service, '--ttl', '1h']);
  assert.equal(token.code, 0, token.stderr);
  const nodeId = `sidecar~127.0.0.1~${service}.shop`;
  const p = await startWeft(`weft proxy ${service}`, [
    'proxy', '--xds', xdsTls, '--xds-tls', '--token', token.stdout.trim(), '--api', apiUrl, '--service', service, '--namespace', 'shop',
    '--workload-port', String(port), '--node-id', nodeId, '--admin-addr', '127.0.0.1:0', '--outbound-addr', '127.0.0.1:0', '--inbound-addr', '127.0.0.1:0',
    '--concurrency', '1', '--log-level', 'warn',
  ], INBOUND_LINE, { home: tmp, timeoutMs: 30_000 });
  const ready = PROXY_READY.exec(p.run.stdout());
  assert.ok(ready, `no ready line in:\n${p.run.stdout()}`);
  return { nodeId, admin: ready[1]!, outbound: ready[2]! };
}

interface Reply { status: number; headers: IncomingHttpHeaders; body: string }

/** An absolute-form GET through a sidecar's outbound listener (explicit mode), as `curl -x` sends it. */
function viaProxy(proxy: string, url: string): Promise<Reply> {
  const i = proxy.lastIndexOf(':');
  return new Promise((resolve, reject) => {
    const req = request({ host: proxy.slice(0, i), port: Number(proxy.slice(i + 1)), path: url, headers: { host: new URL(url).host }, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.setTimeout(10_000, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

async function configDump(s: Sidecar): Promise<string> {
  const res = await fetch(new URL('/config_dump', s.admin));
  return res.status === 200 ? await res.text() : '';
}

before(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'weft-rl-workload-'));
  dataDir = join(tmp, 'data');
  const c = await startWeft('weft control', ['control', '--data-dir', dataDir, '--api-addr', '127.0.0.1:0', '--xds-addr', '127.0.0.1:0', '--xds-tls-addr', '127.0.0.1:0', '--log-level', 'warn'], CONTROL_READY, { home: tmp });
  apiUrl = c.match[1]!;
  const m = /^weft control xds-tls=(\S+)$/m.exec(c.run.stdout());
  assert.ok(m, `no xds-tls line in:\n${c.run.stdout()}`);
  xdsTls = m[1]!;
  appPorts.set('catalog', await startApp('catalog', () => catalogHits++));
  appPorts.set('web', await startApp('web'));
  appPorts.set('mobile', await startApp('mobile'));
  const applied = await weft(['apply', '-f', '-'], mesh(appPorts.get('catalog')!, appPorts.get('web')!, appPorts.get('mobile')!));
  assert.equal(applied.code, 0, applied.stderr);
});

after(async () => {
  const tails = failed ? stderrTails() : '';
  if (tails !== '') process.stdout.write(tails.replace(/^/gm, '# ') + '\n');
  await killAll();
  for (const a of apps) a.close();
  if (tmp !== undefined) await rm(tmp, { recursive: true, force: true });
});

describe('rateLimit scope workload: one bucket in the target sidecar, shared by its callers', { concurrency: false }, () => {
  let catalog: Sidecar;
  let web: Sidecar;
  let mobile: Sidecar;

  test('three sidecars; both callers reach catalog through its inbound listener', async () => {
    try {
      catalog = await startSidecar('catalog');
      web = await startSidecar('web');
      mobile = await startSidecar('mobile');
      for (const s of [web, mobile]) {
        const body = await until('a request through both proxies', 20_000, async () => {
          const r = await viaProxy(s.outbound, 'http://catalog.shop/items').catch(() => undefined);
          return r?.status === 200 ? r.body : undefined;
        }, 100);
        assert.equal(body, 'catalog /items');
      }
    } catch (e) {
      failed = true;
      throw e;
    }
  });

  test("the policy lands in catalog's inbound listener, not in the callers' routes", async () => {
    try {
      const applied = await weft(['apply', '-f', '-'], POLICY);
      assert.equal(applied.code, 0, applied.stderr);
      const dump = await until("the bucket in catalog's config in force", 20_000, async () => {
        const d = await configDump(catalog);
        return d.includes('"max_tokens"') ? d : undefined;
      });
      assert.match(dump, new RegExp(`"max_tokens": ${BUDGET}`));
      for (const s of [web, mobile]) assert.doesNotMatch(await configDump(s), /"max_tokens"/, `${s.nodeId} carries no bucket`);
    } catch (e) {
      failed = true;
      throw e;
    }
  });

  test(`web and mobile together get ${BUDGET} answers, then 429 RL with retry-after from catalog's sidecar`, async () => {
    try {
      const before = catalogHits;
      const replies: { who: string; r: Reply }[] = [];
      // Interleaved: 2 web, 2 mobile, ... — each caller alone stays under the budget.
      for (let i = 0; i < BUDGET + 4; i++) {
        const who = Math.floor(i / 2) % 2 === 0 ? 'web' : 'mobile';
        replies.push({ who, r: await viaProxy(who === 'web' ? web.outbound : mobile.outbound, `http://catalog.shop/items/${i}`) });
      }
      const statuses = replies.map((x) => `${x.who}:${x.r.status}`);
      assert.deepEqual(replies.map((x) => x.r.status), [...Array<number>(BUDGET).fill(200), 429, 429, 429, 429], statuses.join(' '));
      assert.ok(replies.filter((x) => x.r.status === 200).some((x) => x.who === 'web') && replies.filter((x) => x.r.status === 200).some((x) => x.who === 'mobile'));
      const refused = replies.filter((x) => x.r.status === 429);
      assert.deepEqual([...new Set(refused.map((x) => x.who))].sort(), ['mobile', 'web'], 'both callers are refused once the shared budget is spent');
      for (const { r } of refused) {
        assert.equal(r.headers['x-weft-response-flags'], 'RL');
        assert.ok(Number(r.headers['retry-after']) >= 1, `retry-after ${String(r.headers['retry-after'])}`);
        assert.equal(r.headers['x-ratelimit-limit'], String(BUDGET));
        assert.equal(r.headers['x-ratelimit-remaining'], '0');
      }
      assert.equal(catalogHits - before, BUDGET, 'the app saw exactly the budget');
      process.stdout.write(`# shared bucket of ${BUDGET}: ${statuses.join(' ')}\n`);
    } catch (e) {
      failed = true;
      throw e;
    }
  });

  test('`weft describe service catalog` shows the limit, its scope and the policy that set it', async () => {
    const r = await weft(['describe', 'service', 'catalog', '-n', 'shop']);
    assert.equal(r.code, 0, r.stderr);
    const line = r.stdout.split('\n').find((l) => l.trim().startsWith('rateLimit:'));
    assert.ok(line, r.stdout);
    assert.match(line, /"scope":"workload"/);
    assert.match(line, new RegExp(`"requests":${BUDGET}`));
    assert.match(line, /from backendpolicy\/shop\/catalog-per-workload via targetRefs\[0\] \(Service\)/);
  });
});
