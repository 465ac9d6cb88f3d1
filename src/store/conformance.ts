import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, test } from 'node:test';
import type { Resource, ResourceKey } from '../api/types.js';
import { isWeftError, type ErrorCode } from '../lib/errors.js';
import type { ConfigStore, Watch, WatchEvent, WatchOptions } from './types.js';

export interface OpenedStore {
  store: ConfigStore;
  cleanup(): Promise<void>;
}

/**
 * The behaviour every ConfigStore backend must share. Each test gets a fresh,
 * empty store from `open`; `cleanup` must close it and remove its data.
 */
export function describeStoreConformance(name: string, open: () => Promise<OpenedStore>): void {
  describe(`ConfigStore conformance: ${name}`, () => {
    let opened: OpenedStore | undefined;
    let store: ConfigStore;

    beforeEach(async () => {
      opened = await open();
      store = opened.store;
    });
    afterEach(async () => {
      await opened?.cleanup();
      opened = undefined;
    });

    test('put then get returns the object with store-owned metadata', async () => {
      const put = await store.put(svc('a', 'default', { port: 80 }));
      assert.match(put.metadata.resourceVersion ?? '', /^[1-9][0-9]*$/);
      assert.equal(put.metadata.generation, 1);
      assert.match(put.metadata.uid ?? '', /^[0-9a-f-]{36}$/);
      assert.ok(!Number.isNaN(Date.parse(put.metadata.creationTimestamp ?? '')), 'creationTimestamp is RFC 3339');
      assert.deepEqual(put.spec, { port: 80 });
      assert.deepEqual(await store.get(key('Service', 'default', 'a')), put);
      assert.equal(await store.get(key('Service', 'default', 'missing')), undefined);
      assert.equal(await store.get(key('Service', 'other', 'a')), undefined);
    });

    test('client-supplied store metadata is ignored', async () => {
      const r = svc('a', 'default', {});
      r.metadata = { ...r.metadata, resourceVersion: '999', generation: 7, uid: 'mine', creationTimestamp: '2001-01-01T00:00:00Z' };
      const put = await store.put(r);
      assert.notEqual(put.metadata.resourceVersion, '999');
      assert.equal(put.metadata.generation, 1);
      assert.notEqual(put.metadata.uid, 'mine');
      assert.notEqual(put.metadata.creationTimestamp, '2001-01-01T00:00:00Z');
    });

    test('list by kind, by namespace, and everything, sorted', async () => {
      await store.put(svc('b', 'default', {}));
      await store.put(svc('a', 'default', {}));
      await store.put(svc('a', 'prod', {}));
      await store.put(route('r', 'default'));
      await store.put(mesh('default'));
      const names = (rs: Resource[]) => rs.map((r) => `${r.kind}/${r.metadata.namespace ?? ''}/${r.metadata.name}`);

      const all = await store.list();
      assert.deepEqual(names(all.items), ['HTTPRoute/default/r', 'Mesh//default', 'Service/default/a', 'Service/default/b', 'Service/prod/a']);
      assert.equal(all.revision, await store.revision());
      assert.deepEqual(names((await store.list({ kind: 'Service' })).items), ['Service/default/a', 'Service/default/b', 'Service/prod/a']);
      assert.deepEqual(names((await store.list({ namespace: 'default' })).items), ['HTTPRoute/default/r', 'Service/default/a', 'Service/default/b']);
      assert.deepEqual(names((await store.list({ kind: 'Service', namespace: 'prod' })).items), ['Service/prod/a']);
      assert.deepEqual(names((await store.list({ kind: 'Service', namespace: '' })).items).length, 3);
      assert.deepEqual((await store.list({ kind: 'Nope' })).items, []);
    });

    test('cluster-scoped objects have no namespace', async () => {
      const put = await store.put(mesh('default'));
      assert.equal(put.metadata.namespace, undefined);
      assert.deepEqual(await store.get(key('Mesh', '', 'default')), put);
      assert.deepEqual(await store.delete(key('Mesh', '', 'default')).then((r) => r?.metadata.name), 'default');
    });

    test('generation: +1 when spec changes, not for labels or annotations; uid and creationTimestamp kept', async () => {
      const v1 = await store.put(svc('a', 'default', { port: 80 }));
      const v2 = await store.put(svc('a', 'default', { port: 81 }));
      assert.equal(v2.metadata.generation, 2);
      assert.ok(Number(v2.metadata.resourceVersion) > Number(v1.metadata.resourceVersion));
      assert.equal(v2.metadata.uid, v1.metadata.uid);
      assert.equal(v2.metadata.creationTimestamp, v1.metadata.creationTimestamp);

      const labelled = svc('a', 'default', { port: 81 });
      labelled.metadata.labels = { team: 'x' };
      const v3 = await store.put(labelled);
      assert.equal(v3.metadata.generation, 2);
      assert.ok(Number(v3.metadata.resourceVersion) > Number(v2.metadata.resourceVersion));
      assert.deepEqual(v3.metadata.labels, { team: 'x' });

      labelled.metadata.annotations = { note: 'y' };
      const v4 = await store.put(labelled);
      assert.equal(v4.metadata.generation, 2);
      assert.deepEqual(v4.metadata.annotations, { note: 'y' });
    });

    test('a put that changes nothing is a no-op: same object, no revision, no event', async () => {
      const r = svc('a', 'default', { port: 80, paths: ['/x'] });
      r.metadata.labels = { app: 'a' };
      const first = await store.put(r);
      const rev = await store.revision();
      const events = collect(store, {});
      const again = await store.put(structuredClone(r));
      assert.deepEqual(again, first);
      assert.equal(await store.revision(), rev);
      // A later real change proves the watch is live, and that nothing came before it.
      await store.put(svc('b', 'default', {}));
      const seen = await events.waitFor(1);
      assert.equal(seen[0]?.object.metadata.name, 'b');
      events.close();
    });

    test('create-only precondition (null or "0") fails when the object exists', async () => {
      const made = await store.put(svc('a', 'default', { v: 1 }), { expectedResourceVersion: null });
      assert.equal(made.metadata.generation, 1);
      await assertCode(store.put(svc('a', 'default', { v: 2 }), { expectedResourceVersion: null }), 'WEFT_ERR_CONFLICT');
      await assertCode(store.put(svc('a', 'default', { v: 2 }), { expectedResourceVersion: '0' }), 'WEFT_ERR_CONFLICT');
      await store.put(svc('b', 'default', {}), { expectedResourceVersion: '0' });
      assert.deepEqual((await store.get(key('Service', 'default', 'a')))?.spec, { v: 1 });
    });

    test('stale resourceVersion is a CONFLICT naming the key and both versions, and changes nothing', async () => {
      const v1 = await store.put(svc('a', 'default', { v: 1 }));
      const v2 = await store.put(svc('a', 'default', { v: 2 }), { expectedResourceVersion: v1.metadata.resourceVersion });
      const rev = await store.revision();
      const err = await assertCode(store.put(svc('a', 'default', { v: 3 }), { expectedResourceVersion: v1.metadata.resourceVersion }), 'WEFT_ERR_CONFLICT');
      assert.match(err.message, /Service\/default\/a/);
      assert.ok(err.message.includes(String(v1.metadata.resourceVersion)) && err.message.includes(String(v2.metadata.resourceVersion)), err.message);
      assert.deepEqual(await store.get(key('Service', 'default', 'a')), v2);
      assert.equal(await store.revision(), rev);
      // Expecting a version of an object that does not exist is a conflict too.
      await assertCode(store.put(svc('new', 'default', {}), { expectedResourceVersion: '1' }), 'WEFT_ERR_CONFLICT');
      assert.equal(await store.get(key('Service', 'default', 'new')), undefined);
    });

    test('putMany writes all, or nothing when any precondition fails', async () => {
      const a = await store.put(svc('a', 'default', { v: 1 }));
      const rev = await store.revision();
      await assertCode(
        store.putMany([svc('a', 'default', { v: 2 }), svc('b', 'default', {}), svc('c', 'default', {})], {
          expectedResourceVersions: [a.metadata.resourceVersion, undefined, '12345'],
        }),
        'WEFT_ERR_CONFLICT',
      );
      assert.equal(await store.revision(), rev);
      assert.deepEqual((await store.get(key('Service', 'default', 'a')))?.spec, { v: 1 });
      assert.equal(await store.get(key('Service', 'default', 'b')), undefined);

      const out = await store.putMany([svc('a', 'default', { v: 2 }), svc('b', 'default', {})], {
        expectedResourceVersions: [a.metadata.resourceVersion, null],
      });
      assert.deepEqual(
        out.map((r) => [r.metadata.name, r.metadata.generation]),
        [['a', 2], ['b', 1]],
      );
      assert.deepEqual(await store.get(key('Service', 'default', 'b')), out[1]);
    });

    test('delete: returns the object; missing is undefined, or NOT_FOUND with a precondition; stale is CONFLICT', async () => {
      const a = await store.put(svc('a', 'default', {}));
      await assertCode(store.delete(key('Service', 'default', 'a'), { expectedResourceVersion: '999999' }), 'WEFT_ERR_CONFLICT');
      assert.ok(await store.get(key('Service', 'default', 'a')));

      const before = await store.revision();
      const gone = await store.delete(key('Service', 'default', 'a'), { expectedResourceVersion: a.metadata.resourceVersion });
      assert.equal(gone?.metadata.uid, a.metadata.uid);
      assert.ok((await store.revision()) > before, 'a delete is a change with its own revision');
      assert.equal(await store.get(key('Service', 'default', 'a')), undefined);

      assert.equal(await store.delete(key('Service', 'default', 'a')), undefined);
      await assertCode(store.delete(key('Service', 'default', 'a'), { expectedResourceVersion: '1' }), 'WEFT_ERR_NOT_FOUND');

      // Re-creating after a delete is a new object.
      const again = await store.put(svc('a', 'default', {}));
      assert.equal(again.metadata.generation, 1);
      assert.notEqual(again.metadata.uid, a.metadata.uid);
    });

    test('watch delivers live events in order with their revisions', async () => {
      const events = collect(store, {});
      const a1 = await store.put(svc('a', 'default', { v: 1 }));
      const a2 = await store.put(svc('a', 'default', { v: 2 }));
      await store.delete(key('Service', 'default', 'a'));
      const seen = await events.waitFor(3);
      assert.deepEqual(
        seen.map((e) => e.type),
        ['ADDED', 'MODIFIED', 'DELETED'],
      );
      assert.deepEqual(seen[0]?.object, a1);
      assert.deepEqual(seen[1]?.object, a2);
      assert.equal(seen[0]?.revision, Number(a1.metadata.resourceVersion));
      const del = seen[2];
      assert.equal(del?.revision, await store.revision());
      assert.equal(del?.object.metadata.resourceVersion, String(del?.revision), 'DELETED carries the deleting revision');
      assert.deepEqual(del?.object.spec, { v: 2 });
      events.close();
    });

    test('watch fromRevision replays exactly the missed events, then live ones', async () => {
      await store.put(svc('a', 'default', { v: 1 }));
      const listed = await store.list();
      await store.put(svc('a', 'default', { v: 2 }));
      await store.put(svc('b', 'default', {}));
      await store.delete(key('Service', 'default', 'a'));
      const events = collect(store, { fromRevision: listed.revision });
      await store.put(svc('c', 'default', {}));
      const seen = await events.waitFor(4);
      assert.deepEqual(
        seen.map((e) => `${e.type} ${e.object.metadata.name}`),
        ['MODIFIED a', 'ADDED b', 'DELETED a', 'ADDED c'],
      );
      assertIncreasing(seen.map((e) => e.revision));
      assert.ok((seen[0]?.revision ?? 0) > listed.revision);
      await settle();
      assert.equal(events.events.length, 4, 'nothing delivered twice');
      events.close();

      // From the current revision: nothing replayed.
      const now = collect(store, { fromRevision: await store.revision() });
      await store.put(svc('d', 'default', {}));
      assert.deepEqual((await now.waitFor(1)).map((e) => e.object.metadata.name), ['d']);
      now.close();
    });

    test('watch filtered by kind and namespace', async () => {
      const byKind = collect(store, { kind: 'HTTPRoute' });
      const byNs = collect(store, { namespace: 'prod' });
      const both = collect(store, { kind: 'Service', namespace: 'prod' });
      await store.put(svc('a', 'default', {}));
      await store.put(route('r', 'default'));
      await store.put(svc('p', 'prod', {}));
      await store.put(mesh('default'));
      await store.put(route('q', 'prod'));
      const tag = (es: WatchEvent[]) => es.map((e) => `${e.object.kind}/${e.object.metadata.namespace ?? ''}/${e.object.metadata.name}`);
      assert.deepEqual(tag(await byKind.waitFor(2)), ['HTTPRoute/default/r', 'HTTPRoute/prod/q']);
      assert.deepEqual(tag(await byNs.waitFor(2)), ['Service/prod/p', 'HTTPRoute/prod/q']);
      assert.deepEqual(tag(await both.waitFor(1)), ['Service/prod/p']);
      await settle();
      assert.equal(both.events.length, 1);
      for (const c of [byKind, byNs, both]) c.close();
    });

    test('a closed watch receives nothing more', async () => {
      const events = collect(store, {});
      await store.put(svc('a', 'default', {}));
      await events.waitFor(1);
      events.close();
      events.close();
      await store.put(svc('b', 'default', {}));
      await settle();
      assert.equal(events.events.length, 1);
    });

    test('a watcher that throws or rejects breaks neither writes nor other watchers', async () => {
      const bad: Watch = store.watch({}, () => {
        throw new Error('watcher bug');
      });
      const badAsync = store.watch({}, async () => {
        throw new Error('async watcher bug');
      });
      const good = collect(store, {});
      await store.put(svc('a', 'default', {}));
      await store.put(svc('b', 'default', {}));
      assert.deepEqual((await good.waitFor(2)).map((e) => e.object.metadata.name), ['a', 'b']);
      assert.ok(await store.get(key('Service', 'default', 'b')));
      bad.close();
      badAsync.close();
      good.close();
    });

    test('objects handed out are copies: editing them does not change the store', async () => {
      const input = svc('a', 'default', { ports: [80] });
      const put = await store.put(input);
      (input.spec as { ports: number[] }).ports.push(1);
      (put.spec as { ports: number[] }).ports.push(2);
      const got = await store.get(key('Service', 'default', 'a'));
      (got?.spec as { ports: number[] }).ports.push(3);
      (await store.list()).items.forEach((r) => (r.metadata.name = 'changed'));
      assert.deepEqual((await store.get(key('Service', 'default', 'a')))?.spec, { ports: [80] });
    });

    test('revision increases with every change and never otherwise', async () => {
      const revs = [await store.revision()];
      await store.put(svc('a', 'default', { v: 1 }));
      revs.push(await store.revision());
      await store.put(svc('a', 'default', { v: 2 }));
      revs.push(await store.revision());
      await store.putMany([svc('b', 'default', {}), svc('c', 'default', {})]);
      revs.push(await store.revision());
      await store.delete(key('Service', 'default', 'b'));
      revs.push(await store.revision());
      assertIncreasing(revs);
      await store.put(svc('a', 'default', { v: 2 }));
      await store.delete(key('Service', 'default', 'nope'));
      await store.put(svc('a', 'default', { v: 3 }), { expectedResourceVersion: '1' }).catch(() => {});
      assert.equal(await store.revision(), revs.at(-1));
    });

    test('concurrent optimistic read-modify-write on one key loses no update', async () => {
      await store.put(svc('counter', 'default', { n: 0 }));
      const k = key('Service', 'default', 'counter');
      let conflicts = 0;
      const increment = async (): Promise<void> => {
        for (;;) {
          const cur = await store.get(k);
          assert.ok(cur);
          const n = (cur.spec as { n: number }).n;
          try {
            await store.put(svc('counter', 'default', { n: n + 1 }), { expectedResourceVersion: cur.metadata.resourceVersion });
            return;
          } catch (e) {
            if (!isWeftError(e, 'WEFT_ERR_CONFLICT')) throw e;
            conflicts++;
          }
        }
      };
      const workers = 8;
      const each = 5;
      await Promise.all(Array.from({ length: workers }, async () => {
        for (let i = 0; i < each; i++) await increment();
      }));
      const final = await store.get(k);
      assert.deepEqual(final?.spec, { n: workers * each });
      assert.equal(final?.metadata.generation, workers * each + 1);
      assert.ok(conflicts > 0, 'the test should actually race');
    });

    test('last writer wins without a precondition', async () => {
      await Promise.all([store.put(svc('a', 'default', { v: 1 })), store.put(svc('a', 'default', { v: 2 }))]);
      const got = await store.get(key('Service', 'default', 'a'));
      assert.ok(got);
      assert.equal(got.metadata.generation, 2);
    });
  });
}

// ---------------------------------------------------------------- helpers

export function svc(name: string, namespace: string, spec: unknown): Resource {
  return { apiVersion: 'weft.dev/v1alpha1', kind: 'Service', metadata: { name, namespace }, spec };
}

function route(name: string, namespace: string): Resource {
  return { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'HTTPRoute', metadata: { name, namespace }, spec: { parentRefs: [] } };
}

function mesh(name: string): Resource {
  return { apiVersion: 'weft.dev/v1alpha1', kind: 'Mesh', metadata: { name }, spec: { mtls: 'STRICT' } };
}

export function key(kind: string, namespace: string, name: string): ResourceKey {
  return { kind, namespace, name };
}

export async function assertCode(p: Promise<unknown>, code: ErrorCode): Promise<Error> {
  try {
    await p;
  } catch (e) {
    assert.ok(isWeftError(e, code), `expected ${code}, got ${String(e)}`);
    return e;
  }
  assert.fail(`expected ${code}, but it succeeded`);
}

function assertIncreasing(ns: number[]): void {
  for (let i = 1; i < ns.length; i++) assert.ok((ns[i] ?? 0) > (ns[i - 1] ?? 0), `not increasing: ${ns.join(', ')}`);
}

/** Let queued deliveries run, so "nothing more arrived" is a real observation. */
async function settle(): Promise<void> {
  await new Promise((r) => setTimeout(r, 20));
}

export interface Collector {
  events: WatchEvent[];
  waitFor(n: number, timeoutMs?: number): Promise<WatchEvent[]>;
  close(): void;
}

export function collect(store: ConfigStore, opts: WatchOptions): Collector {
  const events: WatchEvent[] = [];
  let wake: (() => void) | undefined;
  const w = store.watch(opts, (e) => {
    events.push(e);
    wake?.();
  });
  return {
    events,
    async waitFor(n, timeoutMs = 5000) {
      const deadline = Date.now() + timeoutMs;
      while (events.length < n) {
        const left = deadline - Date.now();
        if (left <= 0) assert.fail(`waited ${timeoutMs} ms for ${n} events, got ${events.length}: ${JSON.stringify(events.map((e) => [e.type, e.object.metadata.name]))}`);
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, left);
          wake = () => {
            clearTimeout(t);
            resolve();
          };
        });
        wake = undefined;
      }
      return events.slice(0, n);
    },
    close: () => w.close(),
  };
}
