// Locality-weighted balancing (common_lb_config.locality_weighted_lb_config) through
// the proxy, static bootstrap, real node:http upstreams in two localities: traffic
// per locality follows the EDS locality weights whatever the host counts; a
// locality without a healthy host gets none; priority failover across localities.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startProxy, type Proxy } from '../../src/proxy/proxy.js';
import { compileCluster } from '../../src/proxy/config/compile-cluster.js';
import { call, endpoint, keepAliveAgent, listener, routeConfig, startUpstream, type Upstream } from '../fixtures/proxy/helpers.js';

let a0: Upstream; // locality A (1 host)
let b: Upstream[] = []; // locality B (3 hosts)
let sick: Upstream; // a host failing its health checks
let sick2: Upstream; // another
let proxy: Proxy;
let port: number;

const LOC_A = { region: 'eu', zone: 'eu-a' };
const LOC_B = { region: 'eu', zone: 'eu-b' };

function cluster(name: string, localities: Record<string, unknown>[], extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name,
    type: 'STATIC',
    connect_timeout: '1s',
    lb_policy: 'ROUND_ROBIN',
    load_assignment: { cluster_name: name, endpoints: localities },
    ...extra,
    common_lb_config: { locality_weighted_lb_config: {}, ...(extra.common_lb_config as Record<string, unknown> | undefined) },
  };
}

const hc = {
  health_checks: [{ timeout: '0.5s', interval: '0.03s', unhealthy_threshold: { value: 1 }, healthy_threshold: { value: 1 }, http_health_check: { path: '/healthz' } }],
};

before(async () => {
  a0 = await startUpstream('a0');
  b = await Promise.all(['b0', 'b1', 'b2'].map((n) => startUpstream(n)));
  const failing = (name: string) => (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse): void => {
    res.writeHead(req.url === '/healthz' ? 503 : 200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ name }));
  };
  sick = await startUpstream('sick', failing('sick'));
  sick2 = await startUpstream('sick2', failing('sick2'));
  const bEndpoints = b.map((u) => endpoint(u.port));
  proxy = await startProxy({
    adminAddr: '127.0.0.1:0',
    logLevel: 'silent',
    bootstrap: {
      static_resources: {
        listeners: [listener('out', { route_config: routeConfig('r', [{ name: 'v', domains: ['*'], routes: [
          { match: { prefix: '/weighted' }, route: { cluster: 'weighted' } },
          { match: { prefix: '/down' }, route: { cluster: 'down' } },
          { match: { prefix: '/prio' }, route: { cluster: 'prio' } },
          { match: { prefix: '/scaled' }, route: { cluster: 'scaled' } },
        ] }]) })],
        clusters: [
          cluster('weighted', [
            { locality: LOC_A, load_balancing_weight: { value: 80 }, lb_endpoints: [endpoint(a0.port)] },
            { locality: LOC_B, load_balancing_weight: { value: 20 }, lb_endpoints: bEndpoints },
          ]),
          // A's only host fails its health checks: B takes everything despite A's weight 80.
          cluster('down', [
            { locality: LOC_A, load_balancing_weight: { value: 80 }, lb_endpoints: [endpoint(sick.port)] },
            { locality: LOC_B, load_balancing_weight: { value: 20 }, lb_endpoints: bEndpoints },
          ], { ...hc, common_lb_config: { healthy_panic_threshold: { value: 0 } } }),
          // Priority 0 (locality A) has no healthy host: priority 1 (locality B) takes over.
          cluster('prio', [
            { locality: LOC_A, load_balancing_weight: { value: 1 }, priority: 0, lb_endpoints: [endpoint(sick.port)] },
            { locality: LOC_B, load_balancing_weight: { value: 3 }, priority: 1, lb_endpoints: bEndpoints },
          ], { ...hc, common_lb_config: { healthy_panic_threshold: { value: 0 } } }),
          // 50/50, but 2 of B's 3 hosts fail their checks: B's weight × min(1, 1.4 × 1/3).
          cluster('scaled', [
            { locality: LOC_A, load_balancing_weight: { value: 50 }, lb_endpoints: [endpoint(a0.port)] },
            { locality: LOC_B, load_balancing_weight: { value: 50 }, lb_endpoints: [endpoint(b[0]!.port), endpoint(sick.port), endpoint(sick2.port)] },
          ], { ...hc, common_lb_config: { healthy_panic_threshold: { value: 0 } } }),
        ],
      },
    },
  });
  port = proxy.listenerPort('out')!;
});

after(async () => {
  await proxy?.close();
  keepAliveAgent.destroy();
  await Promise.all([a0, sick, sick2, ...b].map((u) => u?.close()));
});

async function spread(path: string, n: number): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const r = await call(port, path, { headers: { host: 'x' }, agent: keepAliveAgent });
    assert.equal(r.status, 200);
    const name = r.json<{ name: string }>().name;
    out.set(name, (out.get(name) ?? 0) + 1);
  }
  return out;
}

async function waitUntilOnlyB(path: string): Promise<void> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const c = await spread(path, 20);
    if (!c.has('sick') && !c.has('sick2')) return;
    if (Date.now() > deadline) assert.fail(`${path}: the sick host still gets traffic: ${JSON.stringify([...c])}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('locality-weighted balancing through the proxy', () => {
  test('weights 80/20 over 1 vs 3 hosts: traffic per locality ~80/20 over 1,000 requests', async () => {
    const c = await spread('/weighted', 1000);
    const a = c.get('a0') ?? 0;
    const bs = b.map((u) => c.get(u.name) ?? 0);
    const bTotal = bs.reduce((s, x) => s + x, 0);
    assert.equal(a + bTotal, 1000);
    assert.ok(Math.abs(a / 1000 - 0.8) <= 0.05, `locality A got ${a}/1000`);
    assert.ok(Math.abs(bTotal / 1000 - 0.2) <= 0.05, `locality B got ${bTotal}/1000`);
    // Inside B the cluster's algorithm (round robin) spreads evenly.
    for (const x of bs) assert.ok(Math.abs(x - bTotal / 3) <= 2, JSON.stringify(bs));
    console.log(`# locality split: A=${a} B=${bTotal} (${bs.join('/')})`);
  });

  test('a locality with no healthy host gets no traffic: the other takes all', async () => {
    await waitUntilOnlyB('/down');
    const c = await spread('/down', 200);
    assert.equal(c.get('sick') ?? 0, 0);
    assert.equal(b.reduce((s, u) => s + (c.get(u.name) ?? 0), 0), 200);
  });

  test('priority failover: priority 1 locality takes over when priority 0 has no healthy host', async () => {
    await waitUntilOnlyB('/prio');
    const c = await spread('/prio', 90);
    assert.equal(c.get('sick') ?? 0, 0);
    for (const u of b) assert.equal(c.get(u.name), 30, JSON.stringify([...c]));
  });
});

describe('locality weight scaled by available hosts (Envoy overprovisioning 1.4)', () => {
  test('50/50 with 2 of 3 hosts down in B: A ~68%, B ~32%', async () => {
    await waitUntilOnlyB('/scaled');
    const c = await spread('/scaled', 1000);
    const a = c.get('a0') ?? 0;
    assert.equal(c.get('sick') ?? 0, 0);
    assert.equal(c.get('sick2') ?? 0, 0);
    // 50 / (50 + 50 × 1.4 / 3) = 0.682
    assert.ok(Math.abs(a / 1000 - 0.682) <= 0.03, `locality A got ${a}/1000`);
    console.log(`# scaled split: A=${a} B=${1000 - a}`);
  });
});

describe('common_lb_config compile', () => {
  const base = { name: 'c', type: 'STATIC', load_assignment: { cluster_name: 'c', endpoints: [] } };
  test('locality_weighted_lb_config and healthy_panic_threshold are accepted', () => {
    const c = compileCluster({ ...base, common_lb_config: { locality_weighted_lb_config: {}, healthy_panic_threshold: { value: 10 }, locality_config_specifier: 'locality_weighted_lb_config' } });
    assert.equal(c.localityWeighted, true);
    assert.equal(c.panicThresholdPercent, 10);
    assert.equal(compileCluster(base).localityWeighted, false);
  });
  test('other common_lb_config fields are refused, not ignored', () => {
    for (const k of ['zone_aware_lb_config', 'update_merge_window', 'consistent_hashing_lb_config', 'ignore_new_hosts_until_first_hc']) {
      assert.throws(() => compileCluster({ ...base, common_lb_config: { [k]: k === 'ignore_new_hosts_until_first_hc' ? true : {} } }), new RegExp(`common_lb_config\\.${k}`));
    }
  });
  test('a locality without a load_balancing_weight gets no traffic under locality weighting (Envoy)', () => {
    const c = compileCluster({ ...base, load_assignment: { cluster_name: 'c', endpoints: [{ lb_endpoints: [endpoint(1)] }, { load_balancing_weight: { value: 2 }, lb_endpoints: [endpoint(2)] }] } });
    assert.deepEqual(c.loadAssignment?.endpoints.map((e) => e.localityWeight), [undefined, 2]);
  });
});
