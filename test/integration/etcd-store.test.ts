// The ConfigStore conformance suite against a real single-member etcd, plus the
// etcd-specific behaviour (key layout, revisions, transactions).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Etcd3 } from 'etcd3';
import { pino } from 'pino';
import { assertCode, collect, describeStoreConformance, key, svc } from '../../src/store/conformance.js';
import { openEtcdStore, type EtcdStore } from '../../src/store/etcd/etcd-store.js';
import { etcdSkipReason, startEtcdCluster, type EtcdCluster } from '../helpers/etcd.js';

const quiet = pino({ level: 'silent' });
const skip = etcdSkipReason();

let cluster: EtcdCluster | undefined;
let raw: Etcd3 | undefined;

function freshPrefix(): string {
  return `/weft-test/${randomBytes(6).toString('hex')}/`;
}

function etcd(): { cluster: EtcdCluster; raw: Etcd3 } {
  assert.ok(cluster && raw, 'etcd was not started');
  return { cluster, raw };
}

async function open(prefix = freshPrefix()): Promise<EtcdStore> {
  return openEtcdStore({ endpoints: etcd().cluster.endpoints, prefix, logger: quiet });
}

if (skip !== undefined) {
  test('etcd store', { skip }, () => {});
} else {
  before(async () => {
    cluster = await startEtcdCluster({ members: 1, dataDir: await mkdtemp(join(tmpdir(), 'weft-etcd-')) });
    raw = new Etcd3({ hosts: cluster.endpoints });
  });
  after(async () => {
    raw?.close();
    await cluster?.stop();
  });

  describeStoreConformance('etcd', async () => {
    const prefix = freshPrefix();
    const store = await open(prefix);
    return {
      store,
      cleanup: async () => {
        await store.close();
        await etcd().raw.delete().prefix(prefix);
      },
    };
  });

  describe('etcd store specifics', () => {
    test('one JSON value per object at <prefix>resources/<Kind>/<namespace|_cluster>/<name>; resourceVersion is its mod_revision', async () => {
      const prefix = freshPrefix();
      const store = await open(prefix);
      const a = await store.put(svc('a', 'default', { port: 80 }));
      await store.put({ apiVersion: 'weft.dev/v1alpha1', kind: 'Mesh', metadata: { name: 'default' }, spec: {} });
      const kv = (await etcd().raw.get(`${prefix}resources/Service/default/a`).exec()).kvs[0];
      assert.ok(kv);
      assert.equal(kv.mod_revision, a.metadata.resourceVersion);
      const stored = JSON.parse(kv.value.toString()) as { metadata: Record<string, unknown> };
      assert.equal(stored.metadata.resourceVersion, undefined, 'the version lives in etcd, not in the value');
      assert.deepEqual({ ...stored, metadata: { ...stored.metadata, resourceVersion: a.metadata.resourceVersion } }, a);
      assert.ok(await etcd().raw.get(`${prefix}resources/Mesh/_cluster/default`).string());
      await store.close();
    });

    test('revision is etcd\'s revision; a second store on the same prefix sees the same objects and versions', async () => {
      const prefix = freshPrefix();
      const s1 = await open(prefix);
      const s2 = await open(prefix);
      const a = await s1.put(svc('a', 'default', { v: 1 }));
      assert.deepEqual(await s2.get(key('Service', 'default', 'a')), a);
      const header = await etcd().raw.get('/nothing').exec();
      assert.equal(await s2.revision(), Number(header.header.revision));
      // Optimistic concurrency across replicas.
      const b = await s2.put(svc('a', 'default', { v: 2 }), { expectedResourceVersion: a.metadata.resourceVersion });
      await assertCode(s1.put(svc('a', 'default', { v: 3 }), { expectedResourceVersion: a.metadata.resourceVersion }), 'WEFT_ERR_CONFLICT');
      assert.equal(b.metadata.generation, 2);
      await s1.close();
      await s2.close();
    });

    test('putMany is one transaction: every object gets the same revision', async () => {
      const store = await open();
      const out = await store.putMany([svc('a', 'default', {}), svc('b', 'default', {}), svc('c', 'prod', {})]);
      assert.equal(new Set(out.map((r) => r.metadata.resourceVersion)).size, 1);
      assert.equal(await store.revision(), Number(out[0]?.metadata.resourceVersion));
      await assertCode(store.putMany([svc('a', 'default', {}), svc('a', 'default', {})]), 'WEFT_ERR_INVALID');
      await store.close();
    });

    test('list pages through etcd and still returns one sorted snapshot', async () => {
      const prefix = freshPrefix();
      const store = await openEtcdStore({ endpoints: etcd().cluster.endpoints, prefix, logger: quiet, listPageSize: 2 });
      const names = ['e', 'a', 'd', 'b', 'c'];
      await store.putMany(names.map((n) => svc(n, 'default', {})));
      await store.put({ apiVersion: 'weft.dev/v1alpha1', kind: 'Mesh', metadata: { name: 'm' }, spec: {} });
      const all = await store.list();
      assert.deepEqual(all.items.map((r) => r.metadata.name), ['m', 'a', 'b', 'c', 'd', 'e']);
      assert.equal(all.revision, await store.revision());
      assert.deepEqual((await store.list({ namespace: 'default' })).items.length, 5);
      await store.close();
    });

    test('a putMany larger than one etcd transaction allows fails whole, with a hint', async () => {
      const store = await open();
      const many = Array.from({ length: 129 }, (_, i) => svc(`s${i}`, 'default', {}));
      const err = await assertCode(store.putMany(many), 'WEFT_ERR_STORE');
      assert.match(err.message, /max-txn-ops/);
      assert.deepEqual((await store.list()).items, []);
      await store.close();
    });

    test('a live watch sees writes made by another replica', async () => {
      const prefix = freshPrefix();
      const s1 = await open(prefix);
      const s2 = await open(prefix);
      const events = collect(s1, { kind: 'Service' });
      await s2.put(svc('x', 'default', {}));
      await s2.delete(key('Service', 'default', 'x'));
      assert.deepEqual((await events.waitFor(2)).map((e) => e.type), ['ADDED', 'DELETED']);
      events.close();
      await s1.close();
      await s2.close();
    });

    test('keys that are not Weft objects are skipped by list and watch, and refused by writes', async () => {
      const prefix = freshPrefix();
      const store = await open(prefix);
      const events = collect(store, {});
      await etcd().raw.put(`${prefix}resources/Service/default/junk`).value('not json');
      await etcd().raw.put(`${prefix}other`).value('x');
      await store.put(svc('ok', 'default', {}));
      assert.deepEqual((await events.waitFor(1)).map((e) => e.object.metadata.name), ['ok']);
      assert.deepEqual((await store.list()).items.map((r) => r.metadata.name), ['ok']);
      await assertCode(store.put(svc('junk', 'default', {})), 'WEFT_ERR_STORE');
      events.close();
      await store.close();
    });

    test('opening against a dead endpoint fails with WEFT_ERR_STORE, not a hang', async () => {
      const err = await assertCode(
        openEtcdStore({ endpoints: ['http://127.0.0.1:1'], logger: quiet, requestTimeoutMs: 1500, dialTimeoutMs: 500 }),
        'WEFT_ERR_STORE',
      );
      assert.match(err.message, /etcd/);
    });

    test('a closed store refuses calls', async () => {
      const store = await open();
      await store.close();
      await store.close();
      await assertCode(store.get(key('Service', 'default', 'a')), 'WEFT_ERR_STORE');
    });
  });
}
