// Failure mapping: each failure becomes one Envoy response flag, one local reply,
// and one count in /metrics. Also endpoint health filtering and the admin server.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startProxy, type AccessLogEntry, type Proxy } from '../../src/proxy/proxy.js';
import { call, endpoint, listener, routeConfig, staticCluster, startUpstream, waitFor, type Upstream } from '../fixtures/proxy/helpers.js';

let ok: Upstream;
let other: Upstream;
let hang: Upstream;
let slowBody: Upstream;
let reset: Upstream;
let deadPort: number;
let proxy: Proxy;
let port: number;
const log: AccessLogEntry[] = [];
let hangClosed = 0;

before(async () => {
  ok = await startUpstream('ok');
  other = await startUpstream('other');
  hang = await startUpstream('hang', (req) => { req.on('close', () => { hangClosed++; }); });
  slowBody = await startUpstream('slow-body', (_req, res) => { res.writeHead(200, { 'content-type': 'text/plain' }); res.write('partial'); });
  reset = await startUpstream('reset', (req) => { req.socket.destroy(); });
  const dead = createServer();
  await new Promise<void>((r) => dead.listen(0, '127.0.0.1', () => r()));
  deadPort = (dead.address() as AddressInfo).port;
  await new Promise<void>((r) => dead.close(() => r()));

  const route = (prefix: string, cluster: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({ match: { prefix }, route: { cluster, ...extra } });
  const rc = routeConfig('r', [{
    name: 'svc',
    domains: ['svc'],
    routes: [
      route('/uh', 'unhealthy'),
      route('/uf', 'dead'),
      route('/ut', 'hang', { timeout: '0.2s' }),
      route('/slow-body', 'slow-body', { timeout: '0.3s' }),
      route('/uc', 'reset'),
      route('/nc', 'no-such-cluster'),
      route('/health', 'mixed'),
      route('/dc', 'hang', { timeout: '0s' }),
      route('/', 'ok'),
    ],
  }]);
  const mixed = {
    name: 'mixed', type: 'STATIC', connect_timeout: '1s',
    load_assignment: {
      cluster_name: 'mixed',
      endpoints: [{ lb_endpoints: [
        endpoint(ok.port, { health_status: 'HEALTHY' }),
        endpoint(other.port, { health_status: 'UNHEALTHY' }),
        endpoint(deadPort, { health_status: 'DRAINING' }),
      ] }],
    },
  };
  const unhealthy = {
    name: 'unhealthy', type: 'STATIC',
    load_assignment: { cluster_name: 'unhealthy', endpoints: [{ lb_endpoints: [endpoint(ok.port, { health_status: 'UNHEALTHY' })] }] },
  };
  proxy = await startProxy({
    adminAddr: '127.0.0.1:0',
    logLevel: 'silent',
    onAccessLog: (e) => log.push(e),
    bootstrap: {
      static_resources: {
        listeners: [listener('out', { route_config: rc })],
        clusters: [
          staticCluster('ok', [ok.port]), staticCluster('dead', [deadPort]), staticCluster('hang', [hang.port]),
          staticCluster('slow-body', [slowBody.port]), staticCluster('reset', [reset.port]), mixed, unhealthy,
        ],
      },
    },
  });
  port = proxy.listenerPort('out')!;
});

after(async () => {
  await proxy?.close();
  await Promise.all([ok, other, hang, slowBody, reset].map((u) => u?.close()));
});

const get = (path: string, host = 'svc') => call(port, path, { headers: { host } });

describe('local replies carry Envoy response flags', () => {
  const cases: [string, string, number, string, RegExp][] = [
    ['NR', '/x', 404, 'nohost', /route not found/],
    ['UH', '/uh', 503, 'svc', /^no healthy upstream$/],
    ['UF', '/uf', 503, 'svc', /connection failure/],
    ['UT', '/ut', 504, 'svc', /^upstream request timeout$/],
    ['UC', '/uc', 503, 'svc', /connection termination/],
    ['NC', '/nc', 503, 'svc', /cluster not found/],
  ];
  for (const [flag, path, status, host, body] of cases) {
    test(`${flag}: ${status}`, async () => {
      const r = await get(path, host);
      assert.equal(r.status, status);
      assert.equal(r.headers['x-weft-response-flags'], flag);
      assert.match(r.text, body);
      const entry = await waitFor(`access log for ${path}`, () => log.find((e) => e.path === path));
      assert.equal(entry.flag, flag);
      assert.equal(entry.status, status);
    });
  }

  test('timeout after the response started resets the downstream stream', async () => {
    await assert.rejects(get('/slow-body'));
    const entry = await waitFor('access log for /slow-body', () => log.find((e) => e.path === '/slow-body'));
    assert.equal(entry.flag, 'UT');
  });

  test('DC: client gives up → upstream request is cancelled, no response counted', async () => {
    const before = hangClosed;
    const req = request({ host: '127.0.0.1', port, path: '/dc', headers: { host: 'svc' }, agent: false });
    req.on('error', () => {});
    req.end();
    await waitFor('upstream got the request', () => hang.seen.some((s) => s.url === '/dc'));
    req.destroy();
    const entry = await waitFor('access log for /dc', () => log.find((e) => e.path === '/dc'));
    assert.equal(entry.flag, 'DC');
    assert.equal(entry.status, 0);
    await waitFor('upstream request closed', () => hangClosed > before);
  });

  test('/metrics counts requests by code class and flag, and connect failures per cluster', async () => {
    const text = await (await fetch(`${proxy.adminUrl}/metrics`)).text();
    assert.match(text, /weft_downstream_rq_total\{response_code_class="5xx",response_flags="UH"\} [1-9]/);
    assert.match(text, /weft_downstream_rq_total\{response_code_class="4xx",response_flags="NR"\} [1-9]/);
    assert.match(text, /weft_upstream_cx_connect_fail_total\{cluster_name="dead"\} [1-9]/);
    assert.match(text, /weft_upstream_cx_total\{cluster_name="ok"\} \d+/);
    assert.match(text, /weft_downstream_cx_active \d+/);
  });
});

describe('endpoint health', () => {
  test('only HEALTHY and UNKNOWN endpoints get traffic', async () => {
    for (let i = 0; i < 20; i++) {
      const r = await get('/health');
      assert.equal(r.status, 200);
      assert.equal(r.json<{ name: string }>().name, 'ok');
    }
  });
});

describe('admin server', () => {
  test('/ready is 200 once listeners are bound', async () => {
    const r = await fetch(`${proxy.adminUrl}/ready`);
    assert.equal(r.status, 200);
  });

  test('/config_dump is Envoy-shaped', async () => {
    const dump = await (await fetch(`${proxy.adminUrl}/config_dump`)).json() as { configs: Record<string, unknown>[] };
    const types = dump.configs.map((c) => c['@type']);
    assert.ok(types.includes('type.googleapis.com/envoy.admin.v3.ListenersConfigDump'));
    const ls = dump.configs.find((c) => c['@type'] === 'type.googleapis.com/envoy.admin.v3.ListenersConfigDump') as { static_listeners: { listener: Record<string, unknown> }[] };
    assert.equal(ls.static_listeners[0]!.listener.name, 'out');
    assert.equal(ls.static_listeners[0]!.listener['@type'], 'type.googleapis.com/envoy.config.listener.v3.Listener');
    const cs = dump.configs.find((c) => c['@type'] === 'type.googleapis.com/envoy.admin.v3.ClustersConfigDump') as { static_clusters: unknown[] };
    assert.equal(cs.static_clusters.length, 7);
  });

  test('/clusters lists hosts with health and counters', async () => {
    const text = await (await fetch(`${proxy.adminUrl}/clusters`)).text();
    assert.match(text, new RegExp(`mixed::127\\.0\\.0\\.1:${other.port}::health_flags::/eds_health_status=UNHEALTHY`));
    assert.match(text, new RegExp(`mixed::127\\.0\\.0\\.1:${ok.port}::rq_total::[1-9]`));
    const json = await (await fetch(`${proxy.adminUrl}/clusters?format=json`)).json() as { cluster_statuses: { name: string }[] };
    assert.ok(json.cluster_statuses.some((c) => c.name === 'mixed'));
  });

  test('/stats in Envoy text form', async () => {
    const text = await (await fetch(`${proxy.adminUrl}/stats`)).text();
    assert.match(text, /cluster\.dead\.upstream_cx_connect_fail: [1-9]/);
  });
});
