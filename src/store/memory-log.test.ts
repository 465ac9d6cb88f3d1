import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Resource } from '../api/types.js';
import { MemoryLog } from './memory-log.js';
import type { WatchEvent } from './types.js';

function obj(name: string, rv: number): Resource {
  return { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'default', resourceVersion: String(rv) }, spec: {} };
}

async function flush(): Promise<void> {
  await new Promise((r) => setImmediate(r));
}

test('the ring keeps the newest events across wrap-around; older revisions are GONE', async () => {
  const log = new MemoryLog({ historySize: 4 });
  for (let rev = 1; rev <= 10; rev++) log.commit(rev === 1 ? 'ADDED' : 'MODIFIED', obj('a', rev), rev);
  assert.throws(() => log.watch({ fromRevision: 5 }, () => {}), { code: 'WEFT_ERR_GONE' });
  for (const from of [6, 8, 10, 12]) {
    const got: number[] = [];
    const w = log.watch({ fromRevision: from }, (e) => got.push(e.revision));
    await flush();
    assert.deepEqual(got, [7, 8, 9, 10].filter((r) => r > from), `from ${from}`);
    w.close();
  }
});

test('reset forgets history: only the loaded revision onwards can be watched', () => {
  const log = new MemoryLog();
  log.reset([obj('a', 3), obj('b', 7)], 9);
  assert.equal(log.revision, 9);
  assert.deepEqual(log.list().map((o) => o.metadata.name), ['a', 'b']);
  assert.throws(() => log.watch({ fromRevision: 8 }, () => {}), { code: 'WEFT_ERR_GONE' });
  log.watch({ fromRevision: 9 }, () => {}).close();
  assert.throws(() => log.commit('ADDED', obj('c', 9), 9), { code: 'WEFT_ERR_INTERNAL' });
});

test('watcher failures, sync or async, go to onWatcherError and not to the writer', async () => {
  const errors: unknown[] = [];
  const log = new MemoryLog({ onWatcherError: (e) => errors.push(e) });
  log.watch({}, () => {
    throw new Error('sync');
  });
  log.watch({}, async () => {
    throw new Error('async');
  });
  const seen: WatchEvent[] = [];
  log.watch({}, (e) => seen.push(e));
  log.commit('ADDED', obj('a', 1), 1);
  log.commit('DELETED', obj('a', 2), 2);
  await flush();
  assert.deepEqual(seen.map((e) => e.type), ['ADDED', 'DELETED']);
  assert.deepEqual(errors.map((e) => (e as Error).message).sort(), ['async', 'async', 'sync', 'sync']);
  assert.equal(log.get({ kind: 'Service', namespace: 'default', name: 'a' }), undefined);
});

test('a watcher may use its own handle from its first callback', async () => {
  const log = new MemoryLog();
  log.commit('ADDED', obj('a', 1), 1);
  let calls = 0;
  const w = log.watch({ fromRevision: 0 }, () => {
    calls++;
    w.close();
  });
  log.commit('ADDED', obj('b', 2), 2);
  await flush();
  assert.equal(calls, 1);
});
