import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Resource } from '../../api/types.js';
import type { ConfigStore, WatchEvent } from '../../store/types.js';
import { CLUSTER } from '../../xds/type-urls.js';
import { SnapshotCache } from './snapshot-cache.js';

/** Just list and watch: enough to drive the cache by hand, synchronously. */
function fakeStore(initial: Resource[]): { store: ConfigStore; emit: (e: WatchEvent) => void } {
  let onEvent: ((e: WatchEvent) => void) | undefined;
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
    list: async () => ({ items: initial, revision: 1 }),
    watch: (_opts, cb) => {
      onEvent = cb;
      return { close: () => (onEvent = undefined) };
    },
  };
  return { store, emit: (e) => onEvent?.(e) };
}

const svc = (name: string, port: number): Resource => ({ apiVersion: 'weft.dev/v1alpha1', kind: 'Service', metadata: { name, namespace: 'default' }, spec: { ports: [{ port, protocol: 'http' }] } });

test('a burst of changes is translated once, after the debounce window', async () => {
  const { store, emit } = fakeStore([svc('a', 80)]);
  const cache = await SnapshotCache.create({ store, debounceMs: 30 });
  const view = { namespace: 'default' };
  const first = cache.snapshot(view);
  const builds = cache.buildCount;
  const seen = new Promise<void>((resolve) => cache.subscribe(view, () => resolve()));
  for (let i = 0; i < 50; i++) emit({ type: 'ADDED', object: svc(`s${i}`, 1000 + i), revision: 2 + i });
  await seen;
  assert.equal(cache.buildCount - builds, 1, 'one translation for fifty changes');
  const next = cache.snapshot(view);
  assert.equal(next.names(CLUSTER).length, 51);
  assert.notEqual(next.version(CLUSTER), first.version(CLUSTER));
  cache.close();
});

test('proxies with the same view share one snapshot; another namespace gets its own', async () => {
  const { store } = fakeStore([svc('a', 80)]);
  const cache = await SnapshotCache.create({ store, debounceMs: 1 });
  const s1 = cache.snapshot({ namespace: 'default' });
  assert.equal(cache.snapshot({ namespace: 'default' }), s1);
  const other = cache.snapshot({ namespace: 'shop' });
  assert.notEqual(other, s1);
  // Clusters do not depend on the view; only bare-name domains in routes do.
  assert.equal(other.version(CLUSTER), s1.version(CLUSTER));
  cache.close();
});
