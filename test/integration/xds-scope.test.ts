import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startXdsServer, type XdsServerHandle } from '../../src/control/xds/xds-server.js';
import type { ConfigStore } from '../../src/store/types.js';
import { CLUSTER, CLUSTER_LOAD_ASSIGNMENT } from '../../src/xds/type-urls.js';
import { RawAdsClient, service, silent, tempStore, workload } from './xds-helpers.js';

let store: ConfigStore;
let cleanup: () => Promise<void>;
let xds: XdsServerHandle;
const clients: RawAdsClient[] = [];

const cluster = (name: string, ns: string): string => `outbound|80||${name}.${ns}.svc.cluster.local`;

before(async () => {
  ({ store, cleanup } = await tempStore());
  await store.putMany([
    service('web', [{ port: 80, protocol: 'http' }], { app: 'web' }, 'front'),
    service('cart', [{ port: 80, protocol: 'http' }], { app: 'cart' }, 'shop'),
    service('pay', [{ port: 80, protocol: 'http' }], { app: 'pay' }, 'shop'),
    service('ledger', [{ port: 80, protocol: 'http' }], { app: 'ledger' }, 'bank'),
    workload('cart-1', '10.1.0.1', { app: 'cart' }, [], 'shop'),
    workload('ledger-1', '10.2.0.1', { app: 'ledger' }, [], 'bank'),
  ]);
  xds = await startXdsServer({ store, addr: '127.0.0.1:0', log: silent, debounceMs: 10 });
});

after(async () => {
  for (const c of clients) c.close();
  await xds.close();
  await cleanup();
});

async function clustersOf(nodeId: string, meta: Record<string, unknown>): Promise<string[]> {
  const c = new RawAdsClient(xds.address, nodeId, meta);
  clients.push(c);
  c.send({ type_url: CLUSTER });
  const r = await c.next(CLUSTER);
  c.ack(r);
  return r.resources.map((x) => String(x.name)).sort();
}

test('scope: no WEFT_NAMESPACES / WEFT_DEPENDENCIES sees every namespace (the default)', async () => {
  assert.deepEqual(await clustersOf('all', { WEFT_NAMESPACE: 'front' }), [cluster('ledger', 'bank'), cluster('web', 'front'), cluster('cart', 'shop'), cluster('pay', 'shop')].sort());
});

test('scope: own namespace + WEFT_NAMESPACES', async () => {
  assert.deepEqual(await clustersOf('ns', { WEFT_NAMESPACE: 'front', WEFT_NAMESPACES: 'shop' }), [cluster('web', 'front'), cluster('cart', 'shop'), cluster('pay', 'shop')].sort());
});

test('scope: own namespace + WEFT_DEPENDENCIES hosts; equal scopes share one snapshot', async () => {
  const want = [cluster('ledger', 'bank'), cluster('web', 'front'), cluster('cart', 'shop')].sort();
  assert.deepEqual(await clustersOf('deps', { WEFT_NAMESPACE: 'front', WEFT_DEPENDENCIES: 'cart.shop,ledger.bank' }), want);
  assert.deepEqual(await clustersOf('deps2', { WEFT_NAMESPACE: 'front', WEFT_DEPENDENCIES: '["ledger.bank.svc.cluster.local","cart.shop"]' }), want);
  const a = xds.cache.snapshot({ namespace: 'front', dependencies: ['cart.shop', 'ledger.bank'] });
  assert.deepEqual(a.names(CLUSTER).sort(), want);
});

test('scope: a workload change outside a view does not touch it; inside, only EDS changes', async () => {
  const narrow = { namespace: 'front', namespaces: ['shop'] };
  const before = xds.cache.snapshot(narrow);
  const wide = xds.cache.snapshot({ namespace: 'front' });
  const seen: string[] = [];
  const offN = xds.cache.subscribe(narrow, () => seen.push('narrow'));
  const wideNext = new Promise<void>((resolve) => {
    const off = xds.cache.subscribe({ namespace: 'front' }, () => {
      off();
      resolve();
    });
  });
  await store.put(workload('ledger-2', '10.2.0.2', { app: 'ledger' }, [], 'bank'));
  await wideNext;
  assert.deepEqual(seen, [], 'the view without bank was not rebuilt');
  assert.equal(xds.cache.snapshot(narrow), before);
  const after = xds.cache.snapshot({ namespace: 'front' });
  assert.equal(after.token(CLUSTER), wide.token(CLUSTER), 'CDS table reused');
  assert.notEqual(after.token(CLUSTER_LOAD_ASSIGNMENT), wide.token(CLUSTER_LOAD_ASSIGNMENT));
  offN();
});
