// The etcd store on a real 3-member cluster: watches survive the loss of the
// member they stream from, writes go on with 2 of 3 members, and a watch from
// a compacted revision ends with WEFT_ERR_GONE.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import type { WeftError } from '../../src/lib/errors.js';
import { collect, key, svc } from '../../src/store/conformance.js';
import { openEtcdStore } from '../../src/store/etcd/etcd-store.js';
import type { WatchEvent } from '../../src/store/types.js';
import { etcdSkipReason, startEtcdCluster, type EtcdCluster } from '../helpers/etcd.js';

const skip = etcdSkipReason();
let cluster: EtcdCluster | undefined;

function freshPrefix(): string {
  return `/weft-test/${randomBytes(6).toString('hex')}/`;
}

/** A debug-level logger whose lines the test can read. */
function capturingLogger(): { logger: pino.Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n')) if (l.trim() !== '') lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { logger: pino({ level: 'debug' }, stream), lines };
}

async function until<T>(what: string, f: () => T | undefined, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = f();
    if (v !== undefined) return v;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('etcd store on a 3-member cluster', { skip }, () => {
  before(async () => {
    if (skip !== undefined) return;
    cluster = await startEtcdCluster({ members: 3, dataDir: await mkdtemp(join(tmpdir(), 'weft-etcd3-')) });
  });
  after(async () => {
    await cluster?.stop();
  });

  test('a watch keeps delivering, in order and without gaps, after the member it streams from is killed', async () => {
    assert.ok(cluster);
    const { logger, lines } = capturingLogger();
    const store = await openEtcdStore({ endpoints: cluster.endpoints, prefix: freshPrefix(), logger, requestTimeoutMs: 5000 });
    try {
      const events = collect(store, { kind: 'Service' });
      await store.put(svc('a', 'default', { v: 1 }));
      await events.waitFor(1);

      const connected = () => lines.filter((l) => l.msg === 'etcd watch connected').map((l) => String(l.memberId));
      const first = connected()[0];
      const victim = cluster.members.findIndex((m) => m.memberId === first);
      assert.ok(victim >= 0, `the watch's member ${first} is one of ${cluster.members.map((m) => m.memberId).join(', ')}`);
      await cluster.killMember(victim);

      // Writes while the watch is cut off must be replayed when it resumes.
      const written = [];
      written.push(await store.put(svc('a', 'default', { v: 2 })));
      written.push(await store.put(svc('b', 'default', {})));
      written.push(await store.delete(key('Service', 'default', 'a')));
      written.push(await store.put(svc('c', 'default', {})));

      const seen = await events.waitFor(5, 30_000);
      assert.deepEqual(
        seen.map((e: WatchEvent) => `${e.type} ${e.object.metadata.name}`),
        ['ADDED a', 'MODIFIED a', 'ADDED b', 'DELETED a', 'ADDED c'],
      );
      assert.deepEqual(
        seen.slice(1).map((e) => e.revision),
        written.map((r) => Number(r?.metadata.resourceVersion)),
      );
      const resumed = await until('the watch to reconnect', () => connected().find((m) => m !== first));
      assert.notEqual(resumed, cluster.members[victim]?.memberId);

      // Still live afterwards, and nothing was delivered twice.
      await store.put(svc('d', 'default', {}));
      await events.waitFor(6);
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(events.events.length, 6);
      events.close();
    } finally {
      await store.close();
    }
  });

  test('a watch from a compacted revision ends with WEFT_ERR_GONE; from a recent one it works', async () => {
    assert.ok(cluster);
    const store = await openEtcdStore({ endpoints: cluster.endpoints, prefix: freshPrefix(), logger: pino({ level: 'silent' }) });
    try {
      await store.put(svc('a', 'default', { v: 1 }));
      const old = (await store.list()).revision;
      await store.put(svc('a', 'default', { v: 2 }));
      await store.put(svc('a', 'default', { v: 3 }));
      const now = await store.revision();
      cluster.etcdctl(['compact', String(now)]);

      const errors: WeftError[] = [];
      const delivered: WatchEvent[] = [];
      store.watch({ fromRevision: old, onError: (e) => errors.push(e) }, (e) => delivered.push(e));
      const err = await until('WEFT_ERR_GONE', () => errors[0]);
      assert.equal(err.code, 'WEFT_ERR_GONE');
      assert.equal(delivered.length, 0);

      // Known now: a second attempt fails at once, as with the file store.
      assert.throws(() => store.watch({ fromRevision: old }, () => {}), { code: 'WEFT_ERR_GONE' });

      // Right at the compaction point is still fine.
      const recent = collect(store, { fromRevision: now });
      await store.put(svc('a', 'default', { v: 4 }));
      assert.deepEqual((await recent.waitFor(1)).map((e) => e.type), ['MODIFIED']);
      recent.close();
    } finally {
      await store.close();
    }
  });
});
