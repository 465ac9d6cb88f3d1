import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, describe, test } from 'node:test';
import { pino } from 'pino';
import { assertCode, collect, describeStoreConformance, key, svc } from '../conformance.js';
import { openFileStore, type FileStoreOptions } from './file-store.js';

const quiet = pino({ level: 'silent' });
const dirs: string[] = [];

async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'weft-store-'));
  dirs.push(d);
  return d;
}

after(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

describeStoreConformance('file', async () => {
  const dir = await tempDir();
  const store = await openFileStore(dir, { logger: quiet });
  return {
    store,
    cleanup: async () => {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});

/** A logger whose error/warn lines the test can read. */
function capturingLogger(): { logger: FileStoreOptions['logger']; lines: () => Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n')) if (l.trim() !== '') lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { logger: pino({ level: 'info' }, stream), lines: () => lines };
}

describe('file store on disk', () => {
  test('one pretty JSON file per object at DIR/<kind>/<namespace or _cluster>/<name>.json', async () => {
    const dir = await tempDir();
    const store = await openFileStore(dir, { logger: quiet });
    const a = await store.put(svc('a', 'default', { port: 80 }));
    await store.put({ apiVersion: 'weft.dev/v1alpha1', kind: 'Mesh', metadata: { name: 'default' }, spec: {} });
    assert.deepEqual(JSON.parse(await readFile(join(dir, 'Service', 'default', 'a.json'), 'utf8')), a);
    assert.ok((await readFile(join(dir, 'Mesh', '_cluster', 'default.json'), 'utf8')).endsWith('}\n'));
    await store.close();
  });

  test('reopen keeps every object and the revision', async () => {
    const dir = await tempDir();
    let store = await openFileStore(dir, { logger: quiet });
    await store.put(svc('a', 'default', { v: 1 }));
    await store.put(svc('a', 'default', { v: 2 }));
    await store.put(svc('b', 'prod', {}));
    await store.delete(key('Service', 'prod', 'b'));
    await store.put(svc('c', 'prod', {}));
    const before = await store.list();
    await store.close();

    store = await openFileStore(dir, { logger: quiet });
    assert.deepEqual(await store.list(), before);
    const next = await store.put(svc('d', 'default', {}));
    assert.equal(Number(next.metadata.resourceVersion), before.revision + 1);
    // Re-applying after a restart is still a no-op.
    await store.put(svc('a', 'default', { v: 2 }));
    assert.equal(await store.revision(), before.revision + 1);
    await store.close();
  });

  test('the revision never goes back, even after deleting the newest object', async () => {
    const dir = await tempDir();
    let store = await openFileStore(dir, { logger: quiet });
    await store.put(svc('a', 'default', {}));
    await store.put(svc('b', 'default', {}));
    await store.delete(key('Service', 'default', 'b'));
    const rev = await store.revision();
    await store.close();

    store = await openFileStore(dir, { logger: quiet });
    assert.equal(await store.revision(), rev);
    const c = await store.put(svc('c', 'default', {}));
    assert.equal(c.metadata.resourceVersion, String(rev + 1));
    await store.close();
  });

  test('watch from before a reopen is GONE; from the reopened revision it works', async () => {
    const dir = await tempDir();
    let store = await openFileStore(dir, { logger: quiet });
    await store.put(svc('a', 'default', {}));
    await store.put(svc('b', 'default', {}));
    await store.close();
    store = await openFileStore(dir, { logger: quiet });
    const rev = await store.revision();
    assert.throws(() => store.watch({ fromRevision: rev - 1 }, () => {}), { code: 'WEFT_ERR_GONE' });
    const events = collect(store, { fromRevision: rev });
    await store.put(svc('c', 'default', {}));
    assert.equal((await events.waitFor(1))[0]?.object.metadata.name, 'c');
    events.close();
    await store.close();
  });

  test('watch history is bounded: older revisions are GONE', async () => {
    const dir = await tempDir();
    const store = await openFileStore(dir, { logger: quiet, historySize: 3 });
    for (let i = 0; i < 6; i++) await store.put(svc(`s${i}`, 'default', {}));
    assert.throws(() => store.watch({ fromRevision: 2 }, () => {}), { code: 'WEFT_ERR_GONE' });
    const events = collect(store, { fromRevision: 3 });
    assert.deepEqual((await events.waitFor(3)).map((e) => e.object.metadata.name), ['s3', 's4', 's5']);
    events.close();
    await store.close();
  });

  test('stale temp files are removed on open and never loaded', async () => {
    const dir = await tempDir();
    let store = await openFileStore(dir, { logger: quiet });
    await store.put(svc('a', 'default', { v: 1 }));
    await store.close();
    const nsDir = join(dir, 'Service', 'default');
    await writeFile(join(nsDir, '.a.0123456789ab.tmp'), '{"torn": ');
    await writeFile(join(nsDir, '.b.0123456789ab.tmp'), JSON.stringify(svc('b', 'default', {})));
    await writeFile(join(dir, '.revision.0123456789ab.tmp'), '99');

    store = await openFileStore(dir, { logger: quiet });
    assert.deepEqual((await readdir(nsDir)).sort(), ['a.json']);
    assert.ok(!(await readdir(dir)).some((f) => f.endsWith('.tmp')));
    assert.deepEqual((await store.list()).items.map((r) => r.metadata.name), ['a']);
    assert.equal(await store.revision(), 1);
    await store.close();
  });

  test('a corrupt or misplaced file is logged and skipped; the rest loads', async () => {
    const dir = await tempDir();
    let store = await openFileStore(dir, { logger: quiet });
    await store.put(svc('good', 'default', {}));
    await store.close();
    const nsDir = join(dir, 'Service', 'default');
    await writeFile(join(nsDir, 'torn.json'), '{"apiVersion": "weft.dev/v1alpha1", "kind": "Serv');
    await writeFile(join(nsDir, 'moved.json'), JSON.stringify({ ...svc('elsewhere', 'default', {}), metadata: { name: 'elsewhere', namespace: 'default', resourceVersion: '5' } }));
    await writeFile(join(nsDir, 'norev.json'), JSON.stringify(svc('norev', 'default', {})));

    const cap = capturingLogger();
    store = await openFileStore(dir, { logger: cap.logger });
    assert.deepEqual((await store.list()).items.map((r) => r.metadata.name), ['good']);
    const skipped = cap.lines().filter((l) => l.level === 50).map((l) => String(l.file));
    assert.deepEqual(skipped.sort(), ['moved.json', 'norev.json', 'torn.json'].map((f) => join(nsDir, f)));
    await store.close();
  });

  test('names that could escape the directory are refused', async () => {
    const dir = await tempDir();
    const store = await openFileStore(dir, { logger: quiet });
    await assertCode(store.put(svc('../../etc', 'default', {})), 'WEFT_ERR_INVALID');
    await assertCode(store.put(svc('.hidden', 'default', {})), 'WEFT_ERR_INVALID');
    await assertCode(store.put(svc('a', '../x', {})), 'WEFT_ERR_INVALID');
    await assertCode(store.putMany([svc('ok', 'default', {}), svc('a/b', 'default', {})]), 'WEFT_ERR_INVALID');
    assert.equal(await store.revision(), 0);
    await store.close();
  });

  test('a second open in the same process is refused until the first closes', async () => {
    const dir = await tempDir();
    const store = await openFileStore(dir, { logger: quiet });
    await assertCode(openFileStore(dir, { logger: quiet }), 'WEFT_ERR_STORE');
    await store.close();
    const again = await openFileStore(dir, { logger: quiet });
    await again.close();
    await assertCode(again.get(key('Service', 'default', 'a')), 'WEFT_ERR_STORE');
  });

  test('a lock held by a live process refuses the open, naming its pid', async () => {
    const dir = await tempDir();
    const holder = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
    try {
      assert.ok(holder.pid);
      await writeFile(join(dir, 'LOCK'), `${holder.pid}\n`);
      const err = await assertCode(openFileStore(dir, { logger: quiet }), 'WEFT_ERR_STORE');
      assert.match(err.message, new RegExp(`in use by pid ${holder.pid}`));
    } finally {
      holder.kill('SIGKILL');
      await new Promise((r) => holder.once('exit', r));
    }
    // Now that pid is dead: the lock is stale and is taken over.
    const store = await openFileStore(dir, { logger: quiet });
    assert.equal((await readFile(join(dir, 'LOCK'), 'utf8')).trim(), String(process.pid));
    await store.close();
    assert.ok(!(await readdir(dir)).includes('LOCK'), 'close releases the lock');
  });

  test('close waits for accepted writes and refuses new ones', async () => {
    const dir = await tempDir();
    const store = await openFileStore(dir, { logger: quiet });
    const writes = Array.from({ length: 5 }, (_, i) => store.put(svc(`s${i}`, 'default', {})));
    await store.close();
    assert.equal((await Promise.all(writes)).length, 5);
    await assertCode(store.put(svc('late', 'default', {})), 'WEFT_ERR_STORE');
    const reopened = await openFileStore(dir, { logger: quiet });
    assert.equal((await reopened.list()).items.length, 5);
    await reopened.close();
  });
});
