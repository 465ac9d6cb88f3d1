// Route hash_policy with a generated cookie (cookie ttl, what the control plane emits
// for a RingHash BackendPolicy hashing on a cookie): the first response sets it, and
// requests carrying it stick to one host.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startProxy, type Proxy } from '../../src/proxy/proxy.js';
import { call, listener, routeConfig, staticCluster, startUpstream, type Upstream } from '../fixtures/proxy/helpers.js';

let ups: Upstream[] = [];
let proxy: Proxy;
let port: number;

before(async () => {
  ups = await Promise.all(['a', 'b', 'c', 'd'].map((n) => startUpstream(n)));
  const rc = routeConfig('r', [{ name: 'svc', domains: ['svc'], routes: [
    { match: { prefix: '/' }, route: { cluster: 'ring', hash_policy: [{ cookie: { name: 'session', ttl: { seconds: 3600 }, path: '/' } }] } },
  ] }]);
  proxy = await startProxy({
    adminAddr: '127.0.0.1:0',
    logLevel: 'silent',
    bootstrap: { static_resources: { listeners: [listener('out', { route_config: rc })], clusters: [staticCluster('ring', ups.map((u) => u.port), { lb_policy: 'RING_HASH' })] } },
  });
  port = proxy.listenerPort('out')!;
});

after(async () => {
  await proxy?.close();
  await Promise.all(ups.map((u) => u.close()));
});

describe('generated hash cookie', () => {
  test('a request without the cookie gets Set-Cookie; with it, every request goes to the same host', async () => {
    const first = await call(port, '/', { headers: { host: 'svc' } });
    const set = first.headers['set-cookie']?.[0] ?? '';
    assert.match(set, /^session="[0-9a-f]+"; Max-Age=3600; Path=\/; HttpOnly$/);
    const cookie = set.split(';')[0]!;
    const hosts = new Set<string>();
    for (let i = 0; i < 10; i++) {
      const r = await call(port, '/', { headers: { host: 'svc', cookie } });
      assert.equal(r.headers['set-cookie'], undefined);
      hosts.add(r.json<{ name: string }>().name);
    }
    assert.equal(hosts.size, 1);
  });
});
