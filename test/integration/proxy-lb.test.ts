// Load balancing through the proxy: every lb_policy over three real upstreams, and
// ring hash / Maglev keyed by header, cookie and source IP hash policies.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startProxy, type Proxy } from '../../src/proxy/proxy.js';
import { call, keepAliveAgent, listener, routeConfig, staticCluster, startUpstream, type Upstream } from '../fixtures/proxy/helpers.js';

const POLICIES = ['ROUND_ROBIN', 'LEAST_REQUEST', 'RANDOM', 'RING_HASH', 'MAGLEV'] as const;
let ups: Upstream[] = [];
let proxy: Proxy;
let port: number;

before(async () => {
  ups = await Promise.all(['u0', 'u1', 'u2'].map((n) => startUpstream(n)));
  const ports = ups.map((u) => u.port);
  const routes: Record<string, unknown>[] = POLICIES.map((p) => ({ match: { prefix: `/${p.toLowerCase()}` }, route: { cluster: p.toLowerCase() } }));
  routes.push(
    { match: { prefix: '/by-header' }, route: { cluster: 'ring_hash', hash_policy: [{ header: { header_name: 'x-user' } }] } },
    { match: { prefix: '/by-cookie' }, route: { cluster: 'maglev', hash_policy: [{ cookie: { name: 'session' } }] } },
    { match: { prefix: '/by-ip' }, route: { cluster: 'ring_hash', hash_policy: [{ connection_properties: { source_ip: true } }] } },
  );
  proxy = await startProxy({
    adminAddr: '127.0.0.1:0',
    logLevel: 'silent',
    bootstrap: {
      static_resources: {
        listeners: [listener('out', { route_config: routeConfig('r', [{ name: 'v', domains: ['*'], routes }]) })],
        clusters: POLICIES.map((p) => staticCluster(p.toLowerCase(), ports, { lb_policy: p, ...(p === 'MAGLEV' ? { maglev_lb_config: { table_size: 251 } } : {}) })),
      },
    },
  });
  port = proxy.listenerPort('out')!;
});

after(async () => {
  await proxy?.close();
  keepAliveAgent.destroy();
  await Promise.all(ups.map((u) => u.close()));
});

async function spread(path: string, n: number, headers: Record<string, string> = {}): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const name = (await call(port, path, { headers: { host: 'x', ...headers }, agent: keepAliveAgent })).json<{ name: string }>().name;
    out.set(name, (out.get(name) ?? 0) + 1);
  }
  return out;
}

describe('lb_policy through the proxy', () => {
  test('ROUND_ROBIN visits each host equally', async () => {
    const c = await spread('/round_robin', 30);
    assert.deepEqual([...c.values()], [10, 10, 10]);
  });

  for (const p of ['LEAST_REQUEST', 'RANDOM'] as const) {
    test(`${p} uses every host`, async () => {
      const c = await spread(`/${p.toLowerCase()}`, 90);
      assert.equal(c.size, 3, JSON.stringify([...c]));
      for (const n of c.values()) assert.ok(n >= 10, JSON.stringify([...c]));
    });
  }

  test('RING_HASH / MAGLEV without a hash policy spread at random', async () => {
    assert.ok((await spread('/ring_hash', 60)).size >= 2);
    assert.ok((await spread('/maglev', 60)).size >= 2);
  });

  test('hash on a header: same key → same host; keys spread over hosts', async () => {
    const hostOf = new Map<string, string>();
    for (let i = 0; i < 30; i++) {
      const key = `user-${i}`;
      const c = await spread('/by-header', 3, { 'x-user': key });
      assert.equal(c.size, 1, `${key} went to ${JSON.stringify([...c])}`);
      hostOf.set(key, [...c.keys()][0]!);
    }
    assert.ok(new Set(hostOf.values()).size >= 2);
  });

  test('hash on a cookie (Maglev)', async () => {
    for (const s of ['a', 'b', 'c', 'd']) assert.equal((await spread('/by-cookie', 4, { cookie: `x=1; session=${s}` })).size, 1);
  });

  test('hash on the source IP', async () => {
    assert.equal((await spread('/by-ip', 10)).size, 1);
  });
});
