import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Resource } from '../../api/types.js';
import type { ConfigStore } from '../../store/types.js';
import { diffResolved, hashesOf } from './resolved-diff.js';
import { SnapshotCache, NOTIFY_CHUNK } from './snapshot-cache.js';
import { versionOf, type Resolved, type SnapshotEntry } from './snapshot.js';

const entry = (name: string, hash: string): SnapshotEntry => ({ name, hash, resource: { name } });
const resolved = (entries: SnapshotEntry[]): Resolved => ({ entries, version: versionOf(entries), resources: undefined });

test('the diff of two resolutions: changed and added entries, removed names; computed once per pair', () => {
  const a = resolved([entry('x', '1'), entry('y', '1'), entry('z', '1')]);
  const b = resolved([entry('x', '1'), entry('y', '2'), entry('w', '1')]);
  const d = diffResolved(a, b);
  assert.deepEqual(d.changed.map((e) => e.name), ['y', 'w']);
  assert.deepEqual(d.removed, ['z']);
  assert.equal(diffResolved(a, b), d, 'shared by every stream asking for the same pair');
  assert.deepEqual(diffResolved(a, a), { changed: [], removed: [] });
  const c = resolved([entry('x', '3')]);
  assert.deepEqual(diffResolved(a, c).changed.map((e) => e.name), ['x']);
  assert.deepEqual(diffResolved(a, c).removed, ['y', 'z']);
  assert.deepEqual([...hashesOf(b)], [['x', '1'], ['y', '2'], ['w', '1']]);
});

test('listeners of a view are told in chunks, each of the latest snapshot, once', async () => {
  const svc = (name: string): Resource => ({ apiVersion: 'weft.dev/v1alpha1', kind: 'Service', metadata: { name, namespace: 'default' }, spec: { ports: [{ port: 80, protocol: 'http' }] } });
  let emit: ((e: { type: 'ADDED'; object: Resource; revision: number }) => void) | undefined;
  const no = (): never => {
    throw new Error('not used');
  };
  const store: ConfigStore = {
    get: no, put: no, putMany: no, delete: no,
    revision: async () => 1,
    close: async () => {},
    list: async () => ({ items: [svc('a')], revision: 1 }),
    watch: (_o, cb) => {
      emit = cb as typeof emit;
      return { close: () => (emit = undefined) };
    },
  };
  const cache = await SnapshotCache.create({ store, debounceMs: 1 });
  const view = { namespace: 'default' };
  const n = NOTIFY_CHUNK * 2 + 7;
  const got: unknown[][] = Array.from({ length: n }, () => []);
  for (let i = 0; i < n; i++) cache.subscribe(view, (s) => got[i]?.push(s));
  emit?.({ type: 'ADDED', object: svc('b'), revision: 2 });
  cache.flush();
  assert.equal(got.filter((g) => g.length > 0).length, NOTIFY_CHUNK, 'first chunk at once');
  emit?.({ type: 'ADDED', object: svc('c'), revision: 3 });
  cache.flush();
  const latest = cache.snapshot(view);
  // The chunks go out one turn of the event loop apart: yield until they are all out
  // (bounded), not for a fixed time, which a loaded machine can outlast.
  for (let turns = 0; turns < 1000 && !got.every((g) => g.at(-1) === latest); turns++) await new Promise((r) => setImmediate(r));
  for (const g of got) assert.equal(g.at(-1), latest);
  assert.ok(got.every((g) => g.length >= 1 && g.length <= 2));
  assert.equal(got.filter((g) => g.length === 2).length, NOTIFY_CHUNK, 'those still pending got only the latest');
  cache.close();
});
