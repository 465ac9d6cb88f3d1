import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startXdsServer, type XdsServerHandle } from '../../src/control/xds/xds-server.js';
import type { ConfigStore } from '../../src/store/types.js';
import { CLUSTER, CLUSTER_LOAD_ASSIGNMENT, LISTENER, ROUTE_CONFIGURATION } from '../../src/xds/type-urls.js';
import { eventually, RawAdsClient, service, silent, tempStore, workload } from './xds-helpers.js';

let store: ConfigStore;
let cleanup: () => Promise<void>;
let xds: XdsServerHandle;
const clients: RawAdsClient[] = [];

function client(nodeId: string, meta: Record<string, unknown> = {}): RawAdsClient {
  const c = new RawAdsClient(xds.address, nodeId, meta);
  clients.push(c);
  return c;
}

before(async () => {
  ({ store, cleanup } = await tempStore());
  await store.put(service('catalog', [{ port: 8080 }], { app: 'catalog' }));
  await store.put(workload('catalog-1', '127.0.0.1', { app: 'catalog' }));
  xds = await startXdsServer({ store, addr: '127.0.0.1:0', log: silent, debounceMs: 20, workloadGraceMs: 300 });
});

after(async () => {
  for (const c of clients) c.close();
  await xds.close();
  await cleanup();
});

test('wildcard CDS, ACK, then a NACK is recorded and visible in listClients(); the ACKed version stays', async () => {
  const c = client('nack-node');
  c.send({ type_url: CLUSTER });
  const r1 = await c.next(CLUSTER);
  assert.ok(r1.resources.some((r) => r.name === 'outbound|8080||catalog.default.svc.cluster.local'));
  c.ack(r1);
  await eventually(() => xds.ads.listClients().find((x) => x.nodeId === 'nack-node')?.types.CDS?.ackedVersion === r1.version_info, 'ACK recorded');

  await store.put(service('nacked', [{ port: 1 }]));
  const r2 = await c.next(CLUSTER);
  assert.notEqual(r2.version_info, r1.version_info);
  c.send({ type_url: CLUSTER, version_info: r1.version_info, response_nonce: r2.nonce, error_detail: { code: 3, message: 'cluster nacked: bad lb_policy' } });
  const st = await eventually(() => xds.ads.listClients().find((x) => x.nodeId === 'nack-node' && x.types.CDS?.lastNack), 'NACK recorded');
  assert.equal(st.types.CDS?.lastNack?.message, 'cluster nacked: bad lb_policy');
  assert.equal(st.types.CDS?.lastNack?.version, r2.version_info);
  assert.equal(st.types.CDS?.ackedVersion, r1.version_info, 'the last ACKed version stays in force');
  assert.equal(st.types.CDS?.sentVersion, r2.version_info);
  assert.ok(Date.parse(st.types.CDS?.lastNack?.at ?? '') > 0);
  // The NACKed content is not pushed again; a change is.
  await store.put(service('after-nack', [{ port: 2 }]));
  const r3 = await c.next(CLUSTER);
  assert.ok(r3.resources.some((r) => r.name === 'outbound|2||after-nack.default.svc.cluster.local'));
  const dump = xds.ads.configOf('nack-node');
  assert.equal(dump?.CDS?.length, r3.resources.length);
});

test('a request with a stale nonce is ignored', async () => {
  const c = client('stale-node');
  c.send({ type_url: CLUSTER_LOAD_ASSIGNMENT, resource_names: ['outbound|8080||catalog.default.svc.cluster.local'] });
  const r1 = await c.next(CLUSTER_LOAD_ASSIGNMENT);
  c.ack(r1, ['outbound|8080||catalog.default.svc.cluster.local']);
  const staleBefore = xds.ads.counters.stale;
  // A stale request asking for another name: were it answered, that answer would come first.
  c.send({ type_url: CLUSTER_LOAD_ASSIGNMENT, resource_names: ['outbound|1||nacked.default.svc.cluster.local'], version_info: r1.version_info, response_nonce: 'not-the-latest' });
  await eventually(() => xds.ads.counters.stale > staleBefore, 'stale request counted');
  c.send({ type_url: CLUSTER_LOAD_ASSIGNMENT, resource_names: ['outbound|2||after-nack.default.svc.cluster.local'], version_info: r1.version_info, response_nonce: r1.nonce });
  const r2 = await c.next(CLUSTER_LOAD_ASSIGNMENT);
  assert.deepEqual(
    r2.resources.map((r) => r.cluster_name),
    ['outbound|2||after-nack.default.svc.cluster.local'],
  );
  assert.notEqual(r2.nonce, r1.nonce, 'every response has a fresh nonce');
});

test('resources subscribed before they exist arrive when created, in CDS → EDS → LDS → RDS order', async () => {
  const c = client('early-node');
  const names = { eds: 'outbound|9000||late.default.svc.cluster.local', lds: 'late.default:9000' };
  c.send({ type_url: CLUSTER });
  const cds = await c.next(CLUSTER);
  c.ack(cds);
  c.send({ type_url: LISTENER, resource_names: [names.lds] });
  const lds0 = await c.next(LISTENER);
  assert.deepEqual(lds0.resources ?? [], [], 'LDS answers at once that the listener does not exist');
  c.ack(lds0, [names.lds]);
  c.send({ type_url: CLUSTER_LOAD_ASSIGNMENT, resource_names: [names.eds] });
  c.send({ type_url: ROUTE_CONFIGURATION, resource_names: [names.lds] });
  await eventually(() => xds.ads.listClients().find((x) => x.nodeId === 'early-node')?.types.RDS, 'RDS subscription seen');
  assert.deepEqual(c.pending(), [], 'EDS and RDS stay silent about names that do not exist');

  await store.putMany([service('late', [{ port: 9000 }], { app: 'late' }), workload('late-1', '127.0.0.2', { app: 'late' })]);
  const order: string[] = [];
  for (let i = 0; i < 4; i++) order.push((await c.next()).type_url);
  assert.deepEqual(order, [CLUSTER, CLUSTER_LOAD_ASSIGNMENT, LISTENER, ROUTE_CONFIGURATION]);
});

test('a registered workload survives a reconnect within the grace period and goes after it', async () => {
  const eds = 'outbound|7000||reg.default.svc.cluster.local';
  await store.put(service('reg', [{ port: 7000 }]));
  const watcher = client('watcher');
  const proxy = client('proxy-1', { WEFT_NAMESPACE: 'default', WEFT_SERVICE: 'reg', WEFT_WORKLOAD_ADDRESS: '127.0.0.9', WEFT_WORKLOAD_PORTS: '7000' });
  proxy.send({ type_url: CLUSTER });
  await proxy.next(CLUSTER);
  const endpoints = async (): Promise<string[]> => {
    const dump = xds.cache.snapshot({ namespace: 'default' }).get(CLUSTER_LOAD_ASSIGNMENT, eds)?.resource as { endpoints?: { lb_endpoints: { endpoint: { address: { socket_address: { address: string } } } }[] }[] } | undefined;
    return (dump?.endpoints ?? []).flatMap((g) => g.lb_endpoints.map((e) => e.endpoint.address.socket_address.address));
  };
  watcher.send({ type_url: CLUSTER_LOAD_ASSIGNMENT, resource_names: [eds] });
  // The registration lands after the debounce window: read pushes until it shows.
  let w1 = await watcher.next(CLUSTER_LOAD_ASSIGNMENT);
  while (!JSON.stringify(w1.resources).includes('127.0.0.9')) w1 = await watcher.next(CLUSTER_LOAD_ASSIGNMENT);
  const st = xds.ads.listClients().find((x) => x.nodeId === 'proxy-1');
  assert.match(st?.workload ?? '', /^default\/reg-/);

  proxy.reconnect();
  proxy.send({ type_url: CLUSTER });
  await proxy.next(CLUSTER);
  await eventually(() => xds.ads.listClients().filter((x) => x.nodeId === 'proxy-1').length === 1, 'old stream gone');
  assert.deepEqual(await endpoints(), ['127.0.0.9'], 'kept across the reconnect');

  proxy.disconnect();
  const w2 = await watcher.next(CLUSTER_LOAD_ASSIGNMENT, 5000);
  assert.equal(JSON.stringify(w2.resources).includes('127.0.0.9'), false, 'removed after the grace period');
});

test('a burst of store writes reaches a wildcard subscriber as its final state', async () => {
  const c = client('burst-node');
  c.send({ type_url: CLUSTER });
  const r0 = await c.next(CLUSTER);
  c.ack(r0);
  await store.putMany(Array.from({ length: 20 }, (_, i) => service(`burst-${i}`, [{ port: 100 + i }])));
  let r = await c.next(CLUSTER);
  while (!r.resources.some((x) => x.name === 'outbound|119||burst-19.default.svc.cluster.local')) r = await c.next(CLUSTER);
  assert.equal(r.resources.filter((x) => String(x.name).includes('burst-')).length, 20);
});
