// EtcdWatch against etcd3's real Watcher with a fake stream manager: the
// reconnect start revision, event translation, callback isolation and GONE,
// driven deterministically (the integration tests cover real etcd).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { WatchBuilder, type Etcd3, type IKeyValue, type IWatchResponse, type Watcher } from 'etcd3';
import { pino } from 'pino';
import type { WeftError } from '../../lib/errors.js';
import type { WatchEvent } from '../types.js';
import { encodeObject } from './codec.js';
import { EtcdWatch, type WatchContext } from './etcd-watch.js';

const P = '/w/';

function harness(opts: { compacted?: boolean } = {}) {
  const attached: Watcher[] = [];
  const manager = {
    attach: (w: Watcher) => attached.push(w),
    detach: async () => {},
  };
  const namespace = { applyToRequest: <T>(r: T) => r, unprefix: (k: Buffer) => k };
  const client = { watch: () => new WatchBuilder(manager as never, namespace as never) } as unknown as Etcd3;
  const watcherErrors: unknown[] = [];
  const gone: number[] = [];
  const ctx: WatchContext = {
    client,
    prefix: P,
    log: pino({ level: 'silent' }),
    isCompacted: async () => opts.compacted ?? false,
    noteGone: (r) => gone.push(r),
    observe: () => {},
    onWatcherError: (e) => watcherErrors.push(e),
    detach: () => {},
  };
  const etcdWatcher = () => {
    const w = attached[0];
    assert.ok(w);
    return w;
  };
  const startRevision = () => Number((etcdWatcher() as unknown as { request: { start_revision: number | string } }).request.start_revision);
  return { ctx, etcdWatcher, startRevision, watcherErrors, gone };
}

function header(revision: number) {
  return { cluster_id: '1', member_id: '2', revision: String(revision), raft_term: '1' };
}

function kv(name: string, create: number, mod: number, spec: unknown = {}): IKeyValue {
  const object = { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'default' }, spec };
  return { key: Buffer.from(`${P}resources/Service/default/${name}`), value: encodeObject(object), create_revision: String(create), mod_revision: String(mod), version: '1', lease: '0' };
}

function response(rev: number, events: IWatchResponse['events']): IWatchResponse {
  return { header: header(rev), watch_id: '1', created: false, canceled: false, compact_revision: '0', cancel_reason: '', fragment: false, events };
}

const tick = () => new Promise((r) => setTimeout(r, 5));

test('a reconnect starts after the last event received, not at a header revision that ran ahead', async () => {
  const h = harness();
  const seen: WatchEvent[] = [];
  new EtcdWatch(h.ctx, {}, 10, (e) => seen.push(e));
  assert.equal(h.startRevision(), 10);
  // Created while catching up: the header is the store's current revision (100).
  h.etcdWatcher().emit('connected', { ...response(100, []), created: true });
  assert.equal(h.startRevision(), 10, 'etcd3 would have moved it to 101');
  // A catch-up batch: events up to 12, header 100.
  h.etcdWatcher().emit('data', response(100, [{ type: 'Put', kv: kv('a', 11, 11) }, { type: 'Put', kv: kv('a', 11, 12, { v: 2 }) }] as never));
  assert.equal(h.startRevision(), 13);
  // A progress notification: everything through 105 has been sent.
  h.etcdWatcher().emit('data', response(105, []));
  assert.equal(h.startRevision(), 106);
  await tick();
  assert.deepEqual(seen.map((e) => [e.type, e.revision, e.object.metadata.resourceVersion]), [['ADDED', 11, '11'], ['MODIFIED', 12, '12']]);
});

test('DELETE carries the previous value stamped with the deleting revision; filters apply', async () => {
  const h = harness();
  const seen: WatchEvent[] = [];
  new EtcdWatch(h.ctx, { namespace: 'default' }, 1, (e) => seen.push(e));
  const other = { ...kv('x', 3, 3), key: Buffer.from(`${P}resources/Service/prod/x`) };
  h.etcdWatcher().emit('data', response(5, [
    { type: 'Put', kv: other },
    { type: 'Delete', kv: { ...kv('a', 0, 5), value: Buffer.alloc(0) }, prev_kv: kv('a', 2, 4, { v: 1 }) },
  ] as never));
  await tick();
  assert.equal(seen.length, 1);
  assert.equal(seen[0]?.type, 'DELETED');
  assert.equal(seen[0]?.revision, 5);
  assert.equal(seen[0]?.object.metadata.resourceVersion, '5');
  assert.deepEqual(seen[0]?.object.spec, { v: 1 });
});

test('callbacks that throw or reject are reported, and later events still arrive', async () => {
  const h = harness();
  let calls = 0;
  new EtcdWatch(h.ctx, {}, 1, () => {
    calls++;
    if (calls === 1) throw new Error('boom');
    return Promise.reject(new Error('async boom'));
  });
  h.etcdWatcher().emit('data', response(3, [{ type: 'Put', kv: kv('a', 2, 2) }, { type: 'Put', kv: kv('b', 3, 3) }] as never));
  await tick();
  assert.equal(calls, 2);
  assert.equal(h.watcherErrors.length, 2);
});

test('a server cancel over a compacted revision ends the watch with WEFT_ERR_GONE, after the events before it', async () => {
  const h = harness({ compacted: true });
  const seen: WatchEvent[] = [];
  const errors: WeftError[] = [];
  new EtcdWatch(h.ctx, { onError: (e) => errors.push(e) }, 1, (e) => seen.push(e));
  h.etcdWatcher().emit('data', response(2, [{ type: 'Put', kv: kv('a', 2, 2) }] as never));
  h.etcdWatcher().emit('error', new Error('Watcher canceled: '));
  await tick();
  assert.equal(seen.length, 1);
  assert.deepEqual(errors.map((e) => e.code), ['WEFT_ERR_GONE']);
  assert.deepEqual(h.gone, [3]);
  // Nothing after the end.
  h.etcdWatcher().emit('data', response(4, [{ type: 'Put', kv: kv('b', 4, 4) }] as never));
  await tick();
  assert.equal(seen.length, 1);
});

test('a cancel for another reason is WEFT_ERR_STORE; a closed watch delivers nothing', async () => {
  const h = harness({ compacted: false });
  const errors: WeftError[] = [];
  new EtcdWatch(h.ctx, { onError: (e) => errors.push(e) }, 1, () => {});
  h.etcdWatcher().emit('error', new Error('Watcher canceled: permission denied'));
  await tick();
  assert.deepEqual(errors.map((e) => e.code), ['WEFT_ERR_STORE']);

  const h2 = harness();
  const seen: WatchEvent[] = [];
  const w = new EtcdWatch(h2.ctx, {}, 1, (e) => seen.push(e));
  h2.etcdWatcher().emit('data', response(2, [{ type: 'Put', kv: kv('a', 2, 2) }] as never));
  w.close();
  w.close();
  await tick();
  assert.equal(seen.length, 0);
});
