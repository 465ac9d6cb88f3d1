import { test } from 'node:test';
import assert from 'node:assert/strict';
import { jsonToStruct, parseLabels, parsePorts, structToJson } from './node-metadata.js';
import { WorkloadRegistry } from './workload-registry.js';

const node = (id: string, meta: Record<string, unknown>) => ({ id, locality: { region: 'eu', zone: 'eu-1' }, metadata: jsonToStruct(meta) });

test('node metadata: ports and labels in every accepted spelling', () => {
  assert.deepEqual(parsePorts('8080, 9090'), [{ port: 8080 }, { port: 9090 }]);
  assert.deepEqual(parsePorts('[{"port":80,"name":"http","protocol":"http"}]'), [{ port: 80, name: 'http', protocol: 'http' }]);
  assert.deepEqual(parsePorts([7000]), [{ port: 7000 }]);
  assert.throws(() => parsePorts('http'), /not a port/);
  assert.deepEqual(parseLabels('app=catalog,version=v2'), { app: 'catalog', version: 'v2' });
  assert.deepEqual(parseLabels('{"app":"catalog"}'), { app: 'catalog' });
  assert.deepEqual(structToJson(jsonToStruct({ a: 'x', b: [1, true], c: { d: null } })), { a: 'x', b: [1, true], c: { d: null } });
});

test('a node describes its workload; a plain client describes none; a bad address is an error', () => {
  const w = WorkloadRegistry.workloadOf(node('n1', { WEFT_NAMESPACE: 'shop', WEFT_SERVICE: 'cart', WEFT_WORKLOAD_ADDRESS: '10.1.2.3', WEFT_WORKLOAD_PORTS: '8080', WEFT_LABELS: 'v=2', WEFT_SERVICE_ACCOUNT: 'cart-sa' }));
  assert.equal(w?.metadata.namespace, 'shop');
  assert.match(w?.metadata.name ?? '', /^cart-[0-9a-f]{10}$/);
  assert.deepEqual(w?.spec, { labels: { v: '2', 'weft.dev/service': 'cart' }, address: '10.1.2.3', ports: [{ port: 8080 }], serviceAccount: 'cart-sa', health: 'HEALTHY', locality: { region: 'eu', zone: 'eu-1' } });
  assert.equal(WorkloadRegistry.workloadOf(node('client', { WEFT_NAMESPACE: 'shop' })), undefined);
  assert.throws(() => WorkloadRegistry.workloadOf(node('bad', { WEFT_WORKLOAD_ADDRESS: 'example.com' })), /not an IP/);
});

test('grace period: a reconnect keeps the workload, silence removes it', async () => {
  const r = new WorkloadRegistry({ graceMs: 30 });
  let changes = 0;
  r.onChange(() => changes++);
  const n = node('p', { WEFT_SERVICE: 's', WEFT_WORKLOAD_ADDRESS: '10.0.0.1' });
  const h = r.connect(n);
  assert.ok(h);
  assert.equal(changes, 1);
  r.release(h);
  const h2 = r.connect(n);
  assert.ok(h2);
  assert.equal(changes, 1, 'a reconnect within grace changes nothing');
  await new Promise((res) => setTimeout(res, 60));
  assert.equal(r.list().length, 1);
  r.release(h2);
  const deadline = Date.now() + 2000;
  while (r.list().length > 0 && Date.now() < deadline) await new Promise((res) => setTimeout(res, 10));
  assert.equal(r.list().length, 0);
  assert.equal(changes, 2);
  r.close();
});
