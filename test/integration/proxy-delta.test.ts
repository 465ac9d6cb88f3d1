// The proxy's delta (incremental) xDS client against the real control plane: initial
// config, a route change, a Service deleted (removed_resources leave CDS and EDS), a
// NACK that keeps the last good config and shows in /xds/clients, and a reconnect that
// resumes with initial_resource_versions (nothing the proxy holds is sent again);
// then an empty control plane (no CDS response at all) and a SotW-only server (fallback).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createConnection, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startControlPlane, type ControlPlane } from '../../src/control/control-plane.js';
import { startProxy, type Proxy } from '../../src/proxy/proxy.js';
import { createBackoff } from '../../src/proxy/xds-client/backoff.js';
import { CLUSTER, CLUSTER_LOAD_ASSIGNMENT, LISTENER, ROUTE_CONFIGURATION, SHORT_NAMES, type XdsTypeUrl } from '../../src/xds/type-urls.js';
import { call, cla, edsCluster, listener, routeConfig, staticCluster, startUpstream, waitFor, type Upstream } from '../fixtures/proxy/helpers.js';
import { startFakeAds } from '../fixtures/proxy/fake-ads.js';

const NODE_ID = 'sidecar~127.0.0.1~web.default';
const cluster = (svc: string): string => `outbound|80||${svc}.default.svc.cluster.local`;

interface ClientItem {
  id: string;
  nodeId: string;
  delta?: boolean;
  types: Partial<Record<string, { subscribed: string[]; ackedVersion?: string; sentVersion?: string; lastNack?: { message: string; version?: string } }>>;
}

/** A loopback TCP relay to the control plane's xDS port: cut() kills the proxy's connections (a network blip). */
interface Relay { readonly address: string; cut(): void; close(): Promise<void> }

async function startRelay(target: string): Promise<Relay> {
  const [host, port] = [target.slice(0, target.lastIndexOf(':')), Number(target.slice(target.lastIndexOf(':') + 1))];
  const sockets = new Set<Socket>();
  const track = (s: Socket): void => { sockets.add(s); s.on('close', () => sockets.delete(s)); s.on('error', () => s.destroy()); };
  const server: Server = createServer((down) => {
    const up = createConnection({ host, port });
    track(down);
    track(up);
    down.pipe(up).pipe(down);
    down.on('close', () => up.destroy());
    up.on('close', () => down.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    address: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    cut: () => { for (const s of sockets) s.destroy(); },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

let dir: string;
let cp: ControlPlane;
let relay: Relay;
let backend: Upstream;
let reviews: Upstream;
let web: Proxy;
let outPort: number;
const responses: { typeUrl: string; version: string; accepted: boolean; error?: string }[] = [];

async function api(path: string, init: RequestInit = {}): Promise<Response> {
  return fetch(`${cp.apiUrl}${path}`, { ...init, headers: { authorization: `Bearer ${cp.adminToken}`, ...(init.headers ?? {}) } });
}

async function apply(yaml: string): Promise<void> {
  const r = await api('/apply', { method: 'POST', headers: { 'content-type': 'application/yaml' }, body: yaml });
  assert.equal(r.status, 200, await r.text());
}

async function deleteService(name: string): Promise<void> {
  const r = await api(`/apis/weft.dev/v1alpha1/namespaces/default/services/${name}`, { method: 'DELETE' });
  assert.equal(r.status, 200, await r.text());
}

async function client(): Promise<ClientItem | undefined> {
  const body = await (await api('/xds/clients')).json() as { items: ClientItem[] };
  return body.items.find((c) => c.nodeId === NODE_ID);
}

const serviceYaml = (name: string, port: number, workloads: { name: string; port: number; address?: string }[]): string => `apiVersion: weft.dev/v1alpha1
kind: Service
metadata: {name: ${name}, namespace: default}
spec:
  selector: {app: ${name}}
  ports: [{name: http, port: 80, targetPort: ${port}, protocol: http}]
${workloads.map((w) => `---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: ${w.name}, namespace: default, labels: {app: ${name}}}
spec:
  address: ${w.address ?? '127.0.0.1'}
  ports: [{port: ${w.port}}]
`).join('')}`;

const get = (host: string, path = '/'): ReturnType<typeof call> => call(outPort, path, { headers: { host } });

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'weft-proxy-delta-'));
  backend = await startUpstream('backend');
  reviews = await startUpstream('reviews');
  cp = await startControlPlane({ dataDir: join(dir, 'data'), apiAddr: '127.0.0.1:0', logLevel: 'silent', xdsDebounceMs: 20 });
  await apply(`apiVersion: weft.dev/v1alpha1
kind: Mesh
metadata: {name: default}
spec:
  mtls: {mode: DISABLE}
---
${serviceYaml('backend', backend.port, [{ name: 'backend-0', port: backend.port }])}---
apiVersion: weft.dev/v1alpha1
kind: Service
metadata: {name: web, namespace: default}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 1, protocol: http}]
`);
  relay = await startRelay(cp.xdsAddress);
  web = await startProxy({
    adminAddr: '127.0.0.1:0',
    logLevel: 'silent',
    xdsProtocol: 'delta',
    xdsAddresses: [relay.address],
    xdsBackoff: createBackoff(20, 200),
    workload: { service: 'web', namespace: 'default', address: '127.0.0.1' },
    node: { id: NODE_ID },
    listenerAddresses: { outbound: '127.0.0.1:0' },
    telemetry: false,
    // A static cluster under the name the control plane gives Service "clash": a CDS update
    // bringing it is refused (dynamic resources never replace bootstrap ones) → NACK.
    bootstrap: { static_resources: { clusters: [staticCluster(cluster('clash'), [backend.port])] } },
    onXdsResponse: (e) => responses.push(e),
  });
});

after(async () => {
  await web?.close();
  await relay?.close();
  await cp?.close();
  await Promise.all([backend?.close(), reviews?.close()]);
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

describe('delta xDS proxy client', () => {
  test('initial config over DeltaAggregatedResources: ready, routes to the backend, ACKed', async () => {
    await waitFor('/ready', async () => (await fetch(`${web.adminUrl}/ready`)).status === 200, 15_000);
    outPort = await waitFor('outbound listener', () => web.listenerPort('outbound'));
    const r = await get('backend.default', '/items');
    assert.equal(r.status, 200);
    assert.equal(r.json<{ name: string }>().name, 'backend');
    const c = await waitFor('every type ACKed', async () => {
      const x = await client();
      return x !== undefined && ['CDS', 'EDS', 'LDS', 'RDS'].every((t) => x.types[t]?.ackedVersion !== undefined && x.types[t]?.ackedVersion === x.types[t]?.sentVersion) ? x : undefined;
    });
    assert.equal(c.delta, true, 'the control plane sees a delta stream');
    assert.deepEqual(c.types.CDS?.subscribed, ['*'], 'CDS wildcard');
    assert.deepEqual(c.types.LDS?.subscribed, ['*'], 'LDS wildcard');
    assert.ok(c.types.EDS?.subscribed.includes(cluster('backend')), 'EDS by name');
    assert.ok(!c.types.EDS?.subscribed.includes('*'));
    const status = await (await fetch(`${web.adminUrl}/status`)).json() as { xds: { connected: boolean; versions: Record<string, string> } };
    assert.equal(status.xds.connected, true);
    assert.deepEqual(Object.keys(status.xds.versions).sort(), ['CDS', 'EDS', 'LDS', 'RDS']);
    assert.ok(responses.every((e) => e.accepted), JSON.stringify(responses));
  });

  test('a new Service: its route, cluster and endpoints arrive and are used (EDS subscribe follows CDS)', async () => {
    await apply(serviceYaml('reviews', reviews.port, [{ name: 'reviews-0', port: reviews.port }]));
    const r = await waitFor('reviews routed', async () => {
      const x = await get('reviews.default');
      return x.status === 200 ? x : undefined;
    });
    assert.equal(r.json<{ name: string }>().name, 'reviews');
    assert.ok(web.snapshot().tables.endpoint.has(cluster('reviews')));
    const c = await client();
    assert.ok(c?.types.EDS?.subscribed.includes(cluster('reviews')), 'EDS subscription added');
  });

  test('deleting a Service: removed_resources take its cluster out of CDS and EDS, and its route out of RDS', async () => {
    await deleteService('reviews');
    await waitFor('reviews cluster removed', () => !web.snapshot().tables.cluster.has(cluster('reviews')));
    await waitFor('reviews endpoints removed', () => !web.snapshot().tables.endpoint.has(cluster('reviews')));
    await waitFor('reviews not routed', async () => (await get('reviews.default')).status !== 200);
    const c = await waitFor('EDS unsubscribed', async () => {
      const x = await client();
      return x?.types.EDS !== undefined && !x.types.EDS.subscribed.includes(cluster('reviews')) ? x : undefined;
    });
    assert.ok(c.types.EDS?.subscribed.includes(cluster('backend')));
    assert.equal((await get('backend.default')).status, 200, 'the rest stays');
  });

  test('a refused update is NACKed with error_detail, visible in /xds/clients, and the last good config stays', async () => {
    const before = responses.length;
    await apply(serviceYaml('clash', backend.port, []));
    const nack = await waitFor('CDS NACK', () => responses.slice(before).find((e) => e.typeUrl === CLUSTER && !e.accepted));
    assert.match(nack.error ?? '', /static resource of that name exists in the bootstrap/);
    const c = await waitFor('NACK in /xds/clients', async () => (await client())?.types.CDS?.lastNack);
    assert.match(c.message, /static resource of that name exists/);
    // Still the bootstrap's cluster, and everything else in force.
    assert.equal(web.snapshot().tables.cluster.get(cluster('clash'))?.isStatic, true);
    assert.equal((await get('backend.default')).status, 200);
    const held = (await client())!;
    await deleteService('clash');
    // Settled: the removal reached the proxy and was ACKed (CDS and RDS both change).
    await waitFor('clash removal ACKed', async () => {
      const x = await client();
      return ['CDS', 'RDS'].every((t) => x?.types[t]?.sentVersion !== held.types[t]?.sentVersion && x?.types[t]?.ackedVersion === x?.types[t]?.sentVersion);
    });
    assert.equal((await client())?.types.CDS?.lastNack?.message, c.message, 'the NACK stays on record');
  });

  test('a reconnect resumes with initial_resource_versions: nothing held is resent, the next change arrives alone', async () => {
    const old = (await client())!;
    const oldPushes = await pushes();
    const heldBefore = responses.length;
    relay.cut();
    // Each type's first answer on the new stream is an empty "up to date", and it is ACKed.
    const resumed = await waitFor('a new stream in sync on every type', async () => {
      const x = await client();
      return x !== undefined && x.id !== old.id && ['CDS', 'EDS', 'LDS', 'RDS'].every((t) => x.types[t]?.sentVersion !== undefined && x.types[t]?.ackedVersion === x.types[t]?.sentVersion) ? x : undefined;
    }, 15_000);
    assert.equal(resumed.delta, true);
    const since = responses.length;
    const pushesAfterResume = await pushes();
    for (const t of ['CDS', 'EDS', 'LDS', 'RDS']) assert.equal((pushesAfterResume[t] ?? 0) - (oldPushes[t] ?? 0), 1, `${t}: one (empty) first answer`);
    // Nothing the proxy held was sent again: the snapshot kept every compiled resource it had.
    assert.ok(responses.slice(heldBefore).every((e) => e.accepted), 'the resumed answers were accepted');
    // A change after the resume: the only response the resumed stream gets is that one ClusterLoadAssignment.
    await apply(serviceYaml('backend', backend.port, [{ name: 'backend-0', port: backend.port }, { name: 'backend-1', port: backend.port, address: '127.0.0.2' }]));
    const eds = await waitFor('second endpoint applied', () => {
      const e = web.snapshot().tables.endpoint.get(cluster('backend'));
      return e !== undefined && e.compiled.endpoints.length === 2 ? e : undefined;
    });
    assert.deepEqual(eds.compiled.endpoints.map((x) => x.address).sort(), ['127.0.0.1', '127.0.0.2']);
    const got = responses.slice(since).map((e) => `${SHORT_NAMES[e.typeUrl as XdsTypeUrl]}:${String(e.accepted)}`);
    assert.deepEqual(got, ['EDS:true'], 'only the changed EDS resource travelled');
    assert.equal(responses.slice(since)[0]!.typeUrl, CLUSTER_LOAD_ASSIGNMENT);
  });
});

/** The control plane's push counters by type (weft_control_xds_pushes_total), from its /metrics. */
async function pushes(): Promise<Record<string, number>> {
  const text = await (await api('/metrics')).text();
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^weft_control_xds_pushes_total\{[^}]*type="(\w+)"[^}]*\} (\d+)/gm)) out[m[1]!] = Number(m[2]);
  return out;
}

describe('delta xDS proxy client: servers that send less', () => {
  test('no Service yet: the server\'s empty first CDS answer makes the proxy ready without waiting for its fetch timeout', async () => {
    const emptyDir = await mkdtemp(join(tmpdir(), 'weft-proxy-delta-empty-'));
    const empty = await startControlPlane({ dataDir: join(emptyDir, 'data'), apiAddr: '127.0.0.1:0', logLevel: 'silent', xdsDebounceMs: 20 });
    let p: Proxy | undefined;
    try {
      const seen: string[] = [];
      p = await startProxy({
        adminAddr: '127.0.0.1:0', logLevel: 'silent', xdsProtocol: 'delta', xdsAddresses: [empty.xdsAddress], xdsBackoff: createBackoff(20, 200),
        // Far longer than the test waits: ready must come from the answers, not the timeout.
        initialFetchTimeoutMs: 60_000, telemetry: false, listenerAddresses: { outbound: '127.0.0.1:0' },
        workload: { service: 'lonely', namespace: 'default', address: '127.0.0.1' },
        onXdsResponse: (e) => seen.push(SHORT_NAMES[e.typeUrl as XdsTypeUrl]),
      });
      const proxy = p;
      await waitFor('/ready', async () => (await fetch(`${proxy.adminUrl}/ready`)).status === 200, 15_000);
      assert.ok(seen.includes('LDS'), JSON.stringify(seen));
      assert.ok(seen.includes('CDS'), 'an empty CDS answer came');
      assert.ok(proxy.listenerPort('outbound') !== undefined);
    } finally {
      await p?.close();
      await empty.close();
      await rm(emptyDir, { recursive: true, force: true });
    }
  });

  test('a server without DeltaAggregatedResources (UNIMPLEMENTED): falls back to state of the world', async () => {
    const fake = await startFakeAds();
    const up = await startUpstream('sotw-only');
    let p: Proxy | undefined;
    try {
      fake.set(CLUSTER, [edsCluster('catalog')], 'c1');
      fake.set(CLUSTER_LOAD_ASSIGNMENT, [cla('catalog', [up.port])], 'e1');
      fake.set(LISTENER, [listener('outbound', { rds: { route_config_name: 'outbound-routes', config_source: { ads: {} } } })], 'l1');
      fake.set(ROUTE_CONFIGURATION, [routeConfig('outbound-routes', [{ name: 'svc', domains: ['catalog.default'], routes: [{ match: { prefix: '/' }, route: { cluster: 'catalog' } }] }])], 'r1');
      p = await startProxy({ adminAddr: '127.0.0.1:0', logLevel: 'silent', xdsProtocol: 'delta', xdsAddresses: [fake.address], xdsBackoff: createBackoff(20, 200), telemetry: false });
      const proxy = p;
      await waitFor('/ready', async () => (await fetch(`${proxy.adminUrl}/ready`)).status === 200, 15_000);
      const r = await call(proxy.listenerPort('outbound')!, '/', { headers: { host: 'catalog.default' } });
      assert.equal(r.json<{ name: string }>().name, 'sotw-only');
      assert.ok(fake.requests.some((q) => q.type_url === ROUTE_CONFIGURATION && q.version_info === 'r1'), 'SotW ACKs reached the server');
      const status = await (await fetch(`${proxy.adminUrl}/status`)).json() as { xds: { connected: boolean; versions: Record<string, string> } };
      assert.deepEqual(status.xds.versions, { CDS: 'c1', EDS: 'e1', LDS: 'l1', RDS: 'r1' });
    } finally {
      await p?.close();
      await fake.close();
      await up.close();
    }
  });
});
