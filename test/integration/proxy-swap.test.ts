// Atomic config swaps: routes, clusters and endpoints change under load without a
// failed request; a request keeps the snapshot it started with; a refused update
// changes nothing.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startProxy, type Proxy } from '../../src/proxy/proxy.js';
import { isWeftError } from '../../src/lib/errors.js';
import { call, cla, edsCluster, keepAliveAgent, listener, routeConfig, staticCluster, startUpstream, waitFor, type Upstream } from '../fixtures/proxy/helpers.js';

let a: Upstream;
let b: Upstream;
let slow: Upstream;
let proxy: Proxy;
let port: number;
let releaseSlow: (() => void) | undefined;

const routesTo = (cluster: string): Record<string, unknown> => routeConfig('main', [{
  name: 'svc', domains: ['svc'], routes: [
    { match: { prefix: '/slow' }, route: { cluster: 'slow' } },
    { match: { prefix: '/' }, route: { cluster } },
  ],
}]);

before(async () => {
  a = await startUpstream('a');
  b = await startUpstream('b');
  slow = await startUpstream('slow', (_req, res) => {
    releaseSlow = () => { res.writeHead(200); res.end('slow-done'); };
  });
  proxy = await startProxy({
    adminAddr: '127.0.0.1:0',
    logLevel: 'silent',
    bootstrap: {
      static_resources: {
        listeners: [listener('out', { rds: { route_config_name: 'main', config_source: { ads: {} } } })],
        clusters: [staticCluster('a', [a.port]), staticCluster('b', [b.port])],
      },
    },
  });
  port = proxy.listenerPort('out')!;
  await proxy.applyResources('cluster', [edsCluster('slow'), edsCluster('ab')], 'c1');
  await proxy.applyResources('endpoint', [cla('slow', [slow.port]), cla('ab', [a.port])], 'e1');
  await proxy.applyResources('route', [routesTo('a')], 'r1');
});

after(async () => {
  await proxy?.close();
  keepAliveAgent.destroy();
  await Promise.all([a, b, slow].map((u) => u?.close()));
});

describe('config swaps', () => {
  test('2,000 keep-alive requests while routes swap 10 times → zero failures', async () => {
    const total = 2000;
    let sent = 0;
    let failures = 0;
    const seen = new Map<string, number>();
    const worker = async (): Promise<void> => {
      while (sent < total) {
        sent++;
        try {
          const r = await call(port, '/x', { headers: { host: 'svc' }, agent: keepAliveAgent });
          if (r.status !== 200) failures++;
          else { const n = r.json<{ name: string }>().name; seen.set(n, (seen.get(n) ?? 0) + 1); }
        } catch {
          failures++;
        }
      }
    };
    const swapper = async (): Promise<void> => {
      for (let i = 1; i <= 10; i++) {
        await waitFor('progress', () => sent >= (i * total) / 12);
        // Alternate route targets, and move the EDS cluster's endpoint too.
        await proxy.applyResources('route', [routesTo(i % 2 === 0 ? 'a' : i % 3 === 0 ? 'ab' : 'b')], `r${i + 1}`);
        await proxy.applyResources('endpoint', [cla('slow', [slow.port]), cla('ab', [i % 2 === 0 ? a.port : b.port])], `e${i + 1}`);
      }
    };
    await Promise.all([swapper(), ...Array.from({ length: 8 }, worker)]);
    assert.equal(failures, 0);
    assert.ok((seen.get('a') ?? 0) > 0 && (seen.get('b') ?? 0) > 0, JSON.stringify([...seen]));
    assert.equal(proxy.snapshot().versions.route, 'r11');
  });

  test('an in-flight request finishes on the snapshot it started with', async () => {
    const pending = call(port, '/slow', { headers: { host: 'svc' } });
    await waitFor('slow upstream got the request', () => releaseSlow !== undefined);
    // Remove the cluster and the route it used while the request is in flight.
    await proxy.applyResources('cluster', [edsCluster('ab')], 'c2');
    await proxy.applyResources('route', [routesTo('a')], 'r-final');
    assert.equal(proxy.snapshot().clusters.has('slow'), false);
    releaseSlow!();
    const r = await pending;
    assert.equal(r.status, 200);
    assert.equal(r.text, 'slow-done');
    // New requests see the new config.
    const now = await call(port, '/slow', { headers: { host: 'svc' } });
    assert.equal(now.status, 503);
    assert.equal(now.headers['x-weft-response-flags'], 'NC');
  });

  test('a refused update (NACK) leaves the last good config in force', async () => {
    const before = proxy.snapshot();
    const bad = routeConfig('main', [{ name: 'svc', domains: ['svc'], routes: [{ match: { safe_regex: { regex: '(' } }, route: { cluster: 'b' } }] }]);
    await assert.rejects(proxy.applyResources('route', [bad], 'r-bad'), (e: unknown) => {
      assert.ok(isWeftError(e, 'WEFT_ERR_INVALID'));
      assert.match((e as Error).message, /RouteConfiguration "main": virtual_hosts\[0\]\.routes\[0\]\.match\.safe_regex\.regex: invalid regex/);
      return true;
    });
    assert.equal(proxy.snapshot(), before);
    assert.equal((await call(port, '/x', { headers: { host: 'svc' } })).json<{ name: string }>().name, 'a');
  });
});
