// The proxy with node:cluster workers (concurrency 2): one ADS stream for the proxy,
// connections served by both workers, a config change reaching both, admin stats
// summed over workers, and `weft proxy --concurrency 2` draining on SIGTERM.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ServerResponse } from 'node:http';
import { startProxy, type Proxy } from '../../src/proxy/proxy.js';
import { CLUSTER, CLUSTER_LOAD_ASSIGNMENT, LISTENER, ROUTE_CONFIGURATION } from '../../src/xds/type-urls.js';
import { createBackoff } from '../../src/proxy/xds-client/backoff.js';
import { call, cla, edsCluster, listener, routeConfig, startUpstream, waitFor, type Upstream } from '../fixtures/proxy/helpers.js';
import { startFakeAds, type FakeAds } from '../fixtures/proxy/fake-ads.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const CLI = join(HERE, '../../src/cli/main.js');

let up: Upstream;
let ads: FakeAds;
let proxy: Proxy;
const held: ServerResponse[] = [];

const routes = (body?: string): Record<string, unknown> => routeConfig('outbound-routes', [{
  name: 'svc', domains: ['*'],
  routes: [{ match: { prefix: '/' }, ...(body === undefined ? { route: { cluster: 'catalog', timeout: { seconds: 20 } } } : { direct_response: { status: 200, body: { inline_string: body } } }) }],
}]);

interface WorkerRow { index: number; pid: number; ready: boolean; downstream_rq_total: number }
const workers = async (adminUrl: string): Promise<WorkerRow[]> => ((await (await fetch(`${adminUrl}/workers`)).json()) as { workers: WorkerRow[] }).workers;
/** n requests, each on a new connection (node:cluster hands connections out round-robin). */
const burst = (port: number, n: number, path = '/'): Promise<{ status: number; text: string }[]> =>
  Promise.all(Array.from({ length: n }, () => call(port, path, { headers: { host: 'catalog.default' }, agent: false })));

before(async () => {
  up = await startUpstream('catalog', (req, res) => {
    if (req.url === '/slow') { held.push(res); return; }
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('from-upstream');
  });
  ads = await startFakeAds();
  ads.set(CLUSTER, [edsCluster('catalog')], 'c1');
  ads.set(CLUSTER_LOAD_ASSIGNMENT, [cla('catalog', [up.port])], 'e1');
  ads.set(LISTENER, [listener('outbound', { rds: { route_config_name: 'outbound-routes', config_source: { ads: {} } } })], 'l1');
  ads.set(ROUTE_CONFIGURATION, [routes()], 'r1');
  proxy = await startProxy({
    concurrency: 2,
    adminAddr: '127.0.0.1:0',
    logLevel: 'silent',
    xdsAddresses: [ads.address],
    xdsBackoff: createBackoff(20, 200),
    node: { id: 'sidecar~10.1.2.3~catalog-1.default' },
    drainMs: 5000,
  });
});

after(async () => {
  for (const r of held) r.destroy();
  await proxy?.close();
  await ads?.close();
  await up?.close();
});

describe('proxy workers (node:cluster, concurrency 2)', () => {
  test('one ADS stream for the whole proxy; ready once both workers run the config', async () => {
    await waitFor('ready', async () => (await fetch(`${proxy.adminUrl}/ready`)).status === 200);
    assert.equal(ads.streamCount(), 1);
    const ids = new Set(ads.requests.map((r) => r.node?.id).filter((x) => x !== undefined));
    assert.deepEqual([...ids], ['sidecar~10.1.2.3~catalog-1.default']);
    const ws = await workers(proxy.adminUrl);
    assert.equal(ws.length, 2);
    assert.ok(ws.every((w) => w.ready && w.pid !== process.pid));
    assert.notEqual(ws[0]!.pid, ws[1]!.pid);
    // The primary holds the stream: /status and the gauge come from it.
    const st = await (await fetch(`${proxy.adminUrl}/status`)).json() as { xds: { connected: boolean; address: string } | null; servingLastGoodConfig: boolean };
    assert.equal(st.xds?.connected, true);
    assert.equal(st.xds?.address, ads.address);
    assert.equal(st.servingLastGoodConfig, false);
    assert.match(await (await fetch(`${proxy.adminUrl}/metrics`)).text(), /^weft_proxy_xds_connected 1$/m);
  });

  test('connections are served by both workers; /stats and /metrics sum over them', async () => {
    const port = await waitFor('outbound port', () => proxy.listenerPort('outbound'));
    const before = await workers(proxy.adminUrl);
    const replies = await burst(port, 20);
    assert.ok(replies.every((r) => r.status === 200 && r.text === 'from-upstream'), JSON.stringify(replies.slice(0, 3)));
    const after = await workers(proxy.adminUrl);
    const served = after.map((w, i) => w.downstream_rq_total - before[i]!.downstream_rq_total);
    assert.ok(served.every((n) => n > 0), `requests per worker: ${served.join(', ')}`);
    assert.equal(served[0]! + served[1]!, 20);
    const total = after.reduce((s, w) => s + w.downstream_rq_total, 0);
    const metrics = await (await fetch(`${proxy.adminUrl}/metrics`)).text();
    const sum = [...metrics.matchAll(/^weft_requests_total\{[^}]*\} (\d+)$/gm)].reduce((s, m) => s + Number(m[1]), 0);
    assert.equal(sum, total);
    const stats = await (await fetch(`${proxy.adminUrl}/stats`)).text();
    assert.match(stats, new RegExp(`^http\\.downstream_rq_2xx: ${total}$`, 'm'));
    assert.match(stats, new RegExp(`^cluster\\.catalog\\.upstream_rq_total: ${up.seen.length}$`, 'm'));
    // /clusters: per-host counters summed over the workers too.
    const cl = await (await fetch(`${proxy.adminUrl}/clusters?format=json`)).json() as { cluster_statuses: { name: string; host_statuses: { stats: { rq_total: number } }[] }[] };
    assert.equal(cl.cluster_statuses.find((c) => c.name === 'catalog')?.host_statuses[0]?.stats.rq_total, up.seen.length);
  });

  test('a config change from the control plane reaches both workers', async () => {
    const port = proxy.listenerPort('outbound')!;
    ads.set(ROUTE_CONFIGURATION, [routes('v2')], 'r2');
    await waitFor('v2 in force', async () => proxy.snapshot().versions.route === 'r2' && (await burst(port, 4)).every((r) => r.text === 'v2'));
    const before = await workers(proxy.adminUrl);
    const replies = await burst(port, 20);
    assert.ok(replies.every((r) => r.status === 200 && r.text === 'v2'), JSON.stringify(replies.map((r) => r.text)));
    const after = await workers(proxy.adminUrl);
    assert.ok(after.every((w, i) => w.downstream_rq_total > before[i]!.downstream_rq_total), 'both workers served the new config');
    const dump = JSON.stringify(await (await fetch(`${proxy.adminUrl}/config_dump`)).json());
    assert.ok(dump.includes('"version_info":"r2"'));
    ads.set(ROUTE_CONFIGURATION, [routes()], 'r3');
    await waitFor('r3 in force', async () => proxy.snapshot().versions.route === 'r3' && (await burst(port, 4)).every((r) => r.text === 'from-upstream'));
  });

  test('a worker that dies is replaced and gets the config in force', async () => {
    const [w0] = await workers(proxy.adminUrl);
    process.kill(w0!.pid, 'SIGKILL');
    await waitFor('replacement worker ready', async () => {
      const ws = await workers(proxy.adminUrl);
      return ws.length === 2 && ws.every((w) => w.ready) && !ws.some((w) => w.pid === w0!.pid);
    });
    const replies = await burst(proxy.listenerPort('outbound')!, 10);
    assert.ok(replies.every((r) => r.status === 200 && r.text === 'from-upstream'));
  });
});

describe('a primary killed with SIGKILL', () => {
  test('leaves no workers behind', async () => {
    const proxyUrl = new URL('../../src/proxy/proxy.js', import.meta.url).href;
    const script = `
      const { startProxy } = await import(${JSON.stringify(proxyUrl)});
      const p = await startProxy({ concurrency: 2, adminAddr: '127.0.0.1:0', logLevel: 'silent', bootstrap: { static_resources: { listeners: [], clusters: [] } } });
      const w = await (await fetch(p.adminUrl + '/workers')).json();
      process.stdout.write(JSON.stringify(w.workers.map((x) => x.pid)) + '\\n');
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    const pids = await waitFor('worker pids', () => (out.includes('\n') ? JSON.parse(out) as number[] : undefined), 20_000);
    assert.equal(pids.length, 2);
    child.kill('SIGKILL');
    const alive = (pid: number): boolean => { try { process.kill(pid, 0); return true; } catch { return false; } };
    try {
      await waitFor('workers gone', () => pids.every((p) => !alive(p)));
    } finally {
      for (const p of pids) if (alive(p)) process.kill(p, 'SIGKILL');
    }
  });
});

describe('weft proxy --concurrency 2', () => {
  test('SIGTERM drains every worker: requests in flight finish, then exit 0', async () => {
    const child = spawn(process.execPath, [CLI, 'proxy', '--xds', ads.address, '--service', 'web', '--concurrency', '2',
      '--admin-addr', '127.0.0.1:0', '--outbound-addr', '127.0.0.1:0', '--drain-timeout', '10000', '--log-level', 'silent'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    try {
      const line = await waitFor('ready line', () => /weft proxy ready: admin=(\S+) outbound=127\.0\.0\.1:(\d+)/.exec(out), 20_000);
      const [adminUrl, port] = [line[1]!, Number(line[2])];
      const ws = await workers(adminUrl);
      assert.equal(ws.length, 2);
      // Slow requests on separate connections: both workers hold some.
      held.length = 0;
      const slow = Array.from({ length: 6 }, () => call(port, '/slow', { headers: { host: 'catalog.default' }, agent: false, timeoutMs: 20_000 }));
      await waitFor('slow requests at the upstream', () => held.length === 6);
      const busy = await workers(adminUrl);
      assert.ok(busy.every((w) => w.downstream_rq_total === 0), 'in flight, not finished yet');
      child.kill('SIGTERM');
      // Draining: new connections are refused once every worker stopped accepting.
      await waitFor('listener closed', async () => {
        try { await call(port, '/', { headers: { host: 'catalog.default' }, timeoutMs: 1000 }); return false; } catch { return true; }
      });
      for (const r of held.splice(0)) { r.writeHead(200); r.end('slow-done'); }
      const replies = await Promise.all(slow);
      assert.ok(replies.every((r) => r.status === 200 && r.text === 'slow-done'), JSON.stringify(replies));
      assert.equal(await exited, 0, err);
    } finally {
      child.kill('SIGKILL');
    }
  });
});
