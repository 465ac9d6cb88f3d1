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

test('the label index finds the same members as scanning every workload', async () => {
  const { WorkloadIndex, workloadsOf } = await import('./model.js');
  const wl = (name: string, ns: string, labels: Record<string, string>, meta?: Record<string, string>): Resource =>
    ({ apiVersion: 'weft.dev/v1alpha1', kind: 'Workload', metadata: { name, namespace: ns, ...(meta ? { labels: meta } : {}) }, spec: { labels, address: '10.0.0.1', ports: [] } }) as Resource;
  const workloads = [
    wl('w3', 'default', { app: 'a', tier: 'x' }),
    wl('w1', 'default', { app: 'a' }),
    wl('w2', 'other', { app: 'a' }),
    wl('w4', 'default', { 'weft.dev/service': 'b' }),
    wl('w5', 'default', { tier: 'x' }, { app: 'a' }),
    wl('w6', 'default', { app: 'z' }, { app: 'a' }),
  ] as never[];
  const services = [
    { ...svc('a', 80), spec: { selector: { app: 'a' }, ports: [{ port: 80 }] } },
    { ...svc('ax', 80), spec: { selector: { app: 'a', tier: 'x' }, ports: [{ port: 80 }] } },
    { ...svc('b', 80), spec: { ports: [{ port: 80 }] } },
    { ...svc('c', 80), spec: { selector: {}, ports: [{ port: 80 }] } },
  ] as never[];
  const index = new WorkloadIndex(workloads);
  for (const s of services) {
    const sorted = (l: { metadata: { name: string } }[]): string[] => l.map((w) => w.metadata.name).sort();
    assert.deepEqual(sorted(index.membersOf(s)), sorted(workloadsOf(s, workloads)), (s as Resource).metadata.name);
  }
});
