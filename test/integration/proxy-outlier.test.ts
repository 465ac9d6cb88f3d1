// Outlier detection through the proxy: a backend that starts failing is ejected and
// leaves the load balancer, then comes back after the ejection time.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startProxy, type AccessLogEntry, type Proxy } from '../../src/proxy/proxy.js';
import { call, listener, routeConfig, staticCluster, startUpstream, waitFor, type Upstream } from '../fixtures/proxy/helpers.js';

const ups: Upstream[] = [];
let proxy: Proxy;
let port: number;
const log: AccessLogEntry[] = [];
let badFailing = true;
let bad: Upstream; let okA: Upstream; let okB: Upstream; let down1: Upstream; let down2: Upstream;

before(async () => {
  const up = async (name: string, h?: Parameters<typeof startUpstream>[1]): Promise<Upstream> => { const u = await startUpstream(name, h); ups.push(u); return u; };
  bad = await up('bad', (_req, res) => {
    if (badFailing) { res.writeHead(503); res.end('bad'); return; }
    res.writeHead(200); res.end(JSON.stringify({ name: 'bad' }));
  });
  okA = await up('ok-a');
  okB = await up('ok-b');
  const fail = (_req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse): void => { res.writeHead(502); res.end(); };
  down1 = await up('down-1', fail);
  down2 = await up('down-2', fail);
  const outlier = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({
    outlier_detection: { consecutive_5xx: { value: 3 }, interval: '0.05s', base_ejection_time: '0.4s', max_ejection_percent: { value: 50 }, enforcing_success_rate: { value: 0 }, ...extra },
  });
  proxy = await startProxy({
    adminAddr: '127.0.0.1:0',
    logLevel: 'silent',
    onAccessLog: (e) => log.push(e),
    bootstrap: {
      static_resources: {
        listeners: [listener('out', { route_config: routeConfig('r', [{ name: 'svc', domains: ['svc'], routes: [
          { match: { prefix: '/mixed' }, route: { cluster: 'mixed' } },
          { match: { prefix: '/all-down' }, route: { cluster: 'all-down' } },
          { match: { prefix: '/no-panic' }, route: { cluster: 'no-panic' } },
        ] }]) })],
        clusters: [
          staticCluster('mixed', [bad.port, okA.port, okB.port], outlier()),
          staticCluster('all-down', [down1.port, down2.port], outlier({ consecutive_gateway_failure: { value: 2 }, enforcing_consecutive_gateway_failure: { value: 100 }, max_ejection_percent: { value: 100 }, base_ejection_time: '30s' })),
          staticCluster('no-panic', [down1.port, down2.port], { ...outlier({ consecutive_gateway_failure: { value: 2 }, enforcing_consecutive_gateway_failure: { value: 100 }, max_ejection_percent: { value: 100 }, base_ejection_time: '30s' }), common_lb_config: { healthy_panic_threshold: { value: 0 } } }),
        ],
      },
    },
  });
  port = proxy.listenerPort('out')!;
});

after(async () => {
  await proxy?.close();
  await Promise.all(ups.map((u) => u.close()));
});

const get = (path: string) => call(port, path, { headers: { host: 'svc' } });

describe('outlier detection', () => {
  test('consecutive 5xx eject the host; it leaves the LB, then comes back after base_ejection_time', async () => {
    // Round robin over 3 hosts: 9 requests give the bad host its 3 consecutive 5xx.
    for (let i = 0; i < 9; i++) await get('/mixed');
    const c = proxy.snapshot().clusters.get('mixed')!;
    assert.ok(c.resilience.health.isEjected(`127.0.0.1:${bad.port}`), 'bad host ejected');
    const seen = bad.seen.length;
    for (let i = 0; i < 12; i++) assert.equal((await get('/mixed')).status, 200);
    assert.equal(bad.seen.length, seen, 'an ejected host gets no traffic');
    const text = await (await fetch(`${proxy.adminUrl}/metrics`)).text();
    assert.match(text, /weft_outlier_ejections_total\{cluster_name="mixed"\} 1/);
    // Recovered backend: after the ejection time it is back in the LB.
    badFailing = false;
    await waitFor('bad host un-ejected', () => !c.resilience.health.isEjected(`127.0.0.1:${bad.port}`), 5000);
    for (let i = 0; i < 6; i++) await get('/mixed');
    assert.ok(bad.seen.length > seen, 'the host is back');
  });

  test('max_ejection_percent bounds ejections; at least one host may always be ejected', async () => {
    badFailing = true;
    const c = proxy.snapshot().clusters.get('mixed')!;
    // The second ejection would be 2/3 > 50%: only one host is ever ejected in this cluster.
    for (let i = 0; i < 30; i++) await get('/mixed');
    assert.ok(c.resilience.health.ejectedCount <= 1);
    badFailing = false;
  });

  test('every host ejected: panic mode spreads traffic over all hosts (healthy_panic_threshold 50%)', async () => {
    for (let i = 0; i < 8; i++) await get('/all-down');
    const c = proxy.snapshot().clusters.get('all-down')!;
    assert.equal(c.resilience.health.ejectedCount, 2);
    assert.equal(c.lb.panic(), true);
    const r = await get('/all-down');
    assert.equal(r.status, 502, 'still forwarded in panic');
  });

  test('with the panic threshold at 0 an all-ejected cluster has no healthy upstream (UH)', async () => {
    for (let i = 0; i < 8; i++) await get('/no-panic');
    const r = await get('/no-panic');
    assert.equal(r.status, 503);
    assert.equal(r.headers['x-weft-response-flags'], 'UH');
  });
});
