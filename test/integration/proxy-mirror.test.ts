// Request mirroring: a copy goes to the mirror cluster (Host with -shadow), bodies
// included; a failing or hanging mirror never affects the primary response.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startProxy, type Proxy } from '../../src/proxy/proxy.js';
import { call, listener, routeConfig, staticCluster, startUpstream, waitFor, type Upstream } from '../fixtures/proxy/helpers.js';

let primary: Upstream; let shadow: Upstream; let broken: Upstream; let hanging: Upstream;
let proxy: Proxy;
let port: number;
const shadowBodies: string[] = [];

before(async () => {
  primary = await startUpstream('primary');
  shadow = await startUpstream('shadow', (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => { shadowBodies.push(Buffer.concat(chunks).toString()); res.writeHead(500); res.end('mirror says no'); });
  });
  broken = await startUpstream('broken', (req) => { req.socket.destroy(); });
  hanging = await startUpstream('hanging', () => { /* never answers */ });
  const mirror = (cluster: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({ cluster, ...extra });
  const rc = routeConfig('r', [{ name: 'svc', domains: ['svc', 'svc:80'], routes: [
    { match: { prefix: '/m' }, route: { cluster: 'primary', request_mirror_policies: [mirror('shadow')] } },
    { match: { prefix: '/none' }, route: { cluster: 'primary', request_mirror_policies: [mirror('shadow', { runtime_fraction: { default_value: { numerator: 0, denominator: 'HUNDRED' } } })] } },
    { match: { prefix: '/bad-mirrors' }, route: { cluster: 'primary', timeout: '5s', request_mirror_policies: [mirror('broken'), mirror('hanging')] } },
  ] }]);
  proxy = await startProxy({
    adminAddr: '127.0.0.1:0',
    logLevel: 'silent',
    bootstrap: { static_resources: { listeners: [listener('out', { route_config: rc })], clusters: [
      staticCluster('primary', [primary.port]), staticCluster('shadow', [shadow.port]), staticCluster('broken', [broken.port]), staticCluster('hanging', [hanging.port]),
    ] } },
  });
  port = proxy.listenerPort('out')!;
});

after(async () => {
  await proxy?.close();
  await Promise.all([primary, shadow, broken, hanging].map((u) => u?.close()));
});

describe('request mirroring', () => {
  test('a copy reaches the mirror with a -shadow host and the body; the primary answer is the client\'s', async () => {
    const r = await call(port, '/m/x', { method: 'POST', headers: { host: 'svc:80', 'content-type': 'text/plain' }, body: 'payload' });
    assert.equal(r.status, 200);
    assert.equal(r.json<{ name: string; body: string }>().name, 'primary');
    assert.equal(r.json<{ body: string }>().body, 'payload');
    await waitFor('mirror got the copy', () => shadowBodies.length === 1);
    assert.equal(shadow.seen[0]!.headers.host, 'svc-shadow:80');
    assert.equal(shadow.seen[0]!.url, '/m/x');
    assert.equal(shadowBodies[0], 'payload');
  });

  test('runtime_fraction 0%: nothing is mirrored', async () => {
    const before = shadow.seen.length;
    for (let i = 0; i < 5; i++) assert.equal((await call(port, '/none', { headers: { host: 'svc' } })).status, 200);
    assert.equal(shadow.seen.length, before);
  });

  test('mirrors that reset or hang never affect the primary response', async () => {
    const t0 = performance.now();
    for (let i = 0; i < 3; i++) {
      const r = await call(port, '/bad-mirrors', { headers: { host: 'svc' } });
      assert.equal(r.status, 200);
      assert.equal(r.json<{ name: string }>().name, 'primary');
    }
    assert.ok(performance.now() - t0 < 3000);
    await waitFor('mirrors were tried', () => broken.seen.length >= 1 && hanging.seen.length >= 1);
  });
});
