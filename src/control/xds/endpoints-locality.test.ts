import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Resource } from '../../api/types.js';
import type { ServiceSpec } from '../../api/service/service.js';
import type { WorkloadSpec } from '../../api/workload/workload.js';
import type { ConfigStore } from '../../store/types.js';
import { CLUSTER_LOAD_ASSIGNMENT } from '../../xds/type-urls.js';
import { endpointsOf, localityDistance } from './endpoints.js';
import { localityOf, viewKey, type ViewLocality } from './model.js';
import { SnapshotCache } from './snapshot-cache.js';

const svc: Resource<ServiceSpec> = {
  apiVersion: 'weft.dev/v1alpha1',
  kind: 'Service',
  metadata: { name: 'cart', namespace: 'default' },
  spec: { selector: { app: 'cart' }, ports: [{ port: 80, protocol: 'http' }] },
};

function wl(name: string, address: string, locality?: { region?: string; zone?: string; subzone?: string }): Resource<WorkloadSpec> {
  return {
    apiVersion: 'weft.dev/v1alpha1',
    kind: 'Workload',
    metadata: { name, namespace: 'default', labels: { app: 'cart' } },
    spec: { address, ports: [], serviceAccount: 'default', health: 'HEALTHY', labels: {}, ...(locality !== undefined ? { locality } : {}) },
  };
}

const members = [
  wl('a-same', '10.0.0.1', { region: 'r1', zone: 'z1', subzone: 's1' }),
  wl('b-subzone', '10.0.0.2', { region: 'r1', zone: 'z1', subzone: 's2' }),
  wl('c-zone', '10.0.0.3', { region: 'r1', zone: 'z2' }),
  wl('d-region', '10.0.0.4', { region: 'r2', zone: 'z1', subzone: 's1' }),
  wl('e-none', '10.0.0.5'),
];

/** `region/zone/subzone → priority` of each group of the single CLA. */
function prioritiesOf(locality: ViewLocality | undefined, list = members): Record<string, number> {
  const [cla] = endpointsOf(svc, list, locality);
  const out: Record<string, number> = {};
  for (const g of cla!.endpoints as { locality: { region?: string; zone?: string; sub_zone?: string }; priority: number }[]) {
    out[`${g.locality.region ?? ''}/${g.locality.zone ?? ''}/${g.locality.sub_zone ?? ''}`] = g.priority;
  }
  return out;
}

test('without a proxy locality every locality is at priority 0 (unchanged output)', () => {
  assert.deepEqual(prioritiesOf(undefined), { 'r1/z1/s1': 0, 'r1/z1/s2': 0, 'r1/z2/': 0, 'r2/z1/s1': 0, '//': 0 });
});

test('priorities follow the distance from the proxy: subzone 0, zone 1, region 2, other 3', () => {
  const here = { region: 'r1', zone: 'z1', subzone: 's1' };
  assert.deepEqual(prioritiesOf(here), { 'r1/z1/s1': 0, 'r1/z1/s2': 1, 'r1/z2/': 2, 'r2/z1/s1': 3, '//': 3 });
  assert.equal(localityDistance(here, { region: 'r1', zone: 'z1', sub_zone: 's1' }), 0);
  assert.equal(localityDistance(here, {}), 3);
});

test('used priority levels are compacted: they start at 0 and have no gaps', () => {
  const here = { region: 'r1', zone: 'z1', subzone: 's1' };
  // No same-subzone or same-region endpoints: levels 1 and 3 become 0 and 1.
  assert.deepEqual(prioritiesOf(here, [members[1]!, members[3]!]), { 'r1/z1/s2': 0, 'r2/z1/s1': 1 });
  // Only remote endpoints: all at 0.
  assert.deepEqual(prioritiesOf(here, [members[3]!, members[4]!]), { 'r2/z1/s1': 0, '//': 0 });
  // Proxy without subzone: endpoints of its zone that have one are at distance 1, but
  // nothing is at distance 0, so they are compacted to priority 0.
  assert.deepEqual(prioritiesOf({ region: 'r1', zone: 'z1', subzone: '' }), { 'r1/z1/s1': 0, 'r1/z1/s2': 0, 'r1/z2/': 1, 'r2/z1/s1': 2, '//': 2 });
  assert.deepEqual(prioritiesOf({ region: 'r1', zone: 'z1', subzone: '' }, [...members, wl('f-zone', '10.0.0.6', { region: 'r1', zone: 'z1' })]), { 'r1/z1/s1': 1, 'r1/z1/s2': 1, 'r1/z1/': 0, 'r1/z2/': 2, 'r2/z1/s1': 3, '//': 3 });
  assert.deepEqual(prioritiesOf({ region: 'r1', zone: 'z2', subzone: '' }), { 'r1/z1/s1': 1, 'r1/z1/s2': 1, 'r1/z2/': 0, 'r2/z1/s1': 2, '//': 2 });
});

test('localityOf: an empty node.locality (what every client sends by default) is no locality', () => {
  assert.equal(localityOf(undefined), undefined);
  assert.equal(localityOf(null), undefined);
  assert.equal(localityOf({}), undefined);
  assert.equal(localityOf({ region: '', zone: '', sub_zone: '' }), undefined);
  assert.deepEqual(localityOf({ region: 'r1', zone: 'z1' }), { region: 'r1', zone: 'z1', subzone: '' });
  assert.equal(viewKey({ namespace: 'default' }), 'ns=default');
  assert.equal(viewKey({ namespace: 'default', locality: { region: 'r1', zone: 'z1', subzone: '' } }), 'ns=default,locality=r1/z1/');
});

test('snapshot cache: views without locality share EDS entries; views with one get their own, per locality', async () => {
  const objects: Resource[] = [svc, ...members];
  const no = (): never => {
    throw new Error('not used by the cache');
  };
  const store: ConfigStore = {
    get: no,
    put: no,
    putMany: no,
    delete: no,
    revision: async () => 1,
    close: async () => {},
    list: async () => ({ items: objects, revision: 1 }),
    watch: () => ({ close: () => {} }),
  };
  const cache = await SnapshotCache.create({ store, debounceMs: 1 });
  const name = 'outbound|80||cart.default.svc.cluster.local';
  const cla = (s: ReturnType<SnapshotCache['snapshot']>) => s.get(CLUSTER_LOAD_ASSIGNMENT, name);
  const plain = cla(cache.snapshot({ namespace: 'default' }));
  const grpc = cla(cache.snapshot({ namespace: 'default', client: 'grpc' }));
  assert.ok(plain !== undefined, `${name} in the snapshot`);
  assert.equal(grpc, plain, 'no locality: one shared entry (gRPC included)');
  const z1 = cla(cache.snapshot({ namespace: 'default', locality: { region: 'r1', zone: 'z1', subzone: 's1' } }));
  const z1grpc = cla(cache.snapshot({ namespace: 'default', client: 'grpc', locality: { region: 'r1', zone: 'z1', subzone: 's1' } }));
  const z2 = cla(cache.snapshot({ namespace: 'default', locality: { region: 'r1', zone: 'z2', subzone: '' } }));
  assert.equal(z1grpc, z1, 'same locality: shared entry');
  assert.notEqual(z1?.hash, plain.hash);
  assert.notEqual(z2?.hash, z1?.hash);
  const prio = (e: typeof z1) => (e!.resource.endpoints as { priority: number }[]).map((g) => g.priority);
  assert.deepEqual(prio(plain), [0, 0, 0, 0, 0]);
  assert.deepEqual(prio(z1), [0, 1, 2, 3, 3]);
  assert.deepEqual(prio(z2), [1, 1, 0, 2, 2]);
  cache.close();
});
