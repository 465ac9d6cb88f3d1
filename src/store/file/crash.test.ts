import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { pino } from 'pino';
import { keyString } from '../../api/types.js';
import { openFileStore } from './file-store.js';
import { mulberry32 } from './seeded-random.js';

/*
 * Kill a writer with SIGKILL at seeded moments and check that what it was
 * told is durable really is: no torn file, every acknowledged put present at
 * exactly its revision (or replaced by the one operation in flight), no
 * acknowledged delete undone, and the revision not behind any acknowledgement.
 * WEFT_CRASH_SEED replays a failing run.
 */

const SEED = Number(process.env.WEFT_CRASH_SEED ?? 0x5eed);
const ROUNDS = 5;
const WRITER = fileURLToPath(new URL('./crash-writer.js', import.meta.url));
const quiet = pino({ level: 'silent' });

interface Entry {
  rv: number;
  seq: number | undefined;
}
type Model = Map<string, Entry>;

interface RoundResult {
  lines: string[];
  stderr: string;
}

async function runWriterUntilKilled(dir: string, seed: number, killAfterMs: number): Promise<RoundResult> {
  const child = spawn(process.execPath, [WRITER, dir, String(seed)], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, WEFT_LOG_LEVEL: 'silent' } });
  let out = '';
  let stderr = '';
  let timer: NodeJS.Timeout | undefined;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const ready = new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (b: Buffer) => {
      out += b.toString();
      if (out.includes('\n')) resolve();
    });
    child.once('exit', (code, signal) => reject(new Error(`writer exited before it was ready (code ${code}, signal ${signal}): ${stderr}`)));
  });
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  try {
    // Readiness is the writer saying so, never a guessed sleep.
    await ready;
    await new Promise<void>((resolve) => (timer = setTimeout(resolve, killAfterMs)));
  } finally {
    clearTimeout(timer);
    child.kill('SIGKILL');
    // Reaped before anyone reads LOCK: a zombie's pid still looks alive.
    await exited;
  }
  assert.equal(child.signalCode, 'SIGKILL', `writer died on its own: ${stderr}`);
  // Only whole lines: the last one may have been cut by the kill.
  const lines = out.split('\n');
  lines.pop();
  return { lines, stderr };
}

async function assertNoTornFiles(dir: string): Promise<number> {
  let n = 0;
  for (const kind of await readdir(dir, { withFileTypes: true })) {
    if (!kind.isDirectory()) continue;
    for (const ns of await readdir(join(dir, kind.name))) {
      for (const f of await readdir(join(dir, kind.name, ns))) {
        if (f.startsWith('.') && f.endsWith('.tmp')) continue; // unfinished writes: removed on open
        const text = await readFile(join(dir, kind.name, ns, f), 'utf8');
        assert.doesNotThrow(() => JSON.parse(text), `torn file ${kind.name}/${ns}/${f}: ${text.slice(-80)}`);
        n++;
      }
    }
  }
  const rev = await readFile(join(dir, 'revision'), 'utf8').catch(() => undefined);
  if (rev !== undefined) assert.match(rev, /^[0-9]+\n$/, 'torn revision file');
  return n;
}

test('the file store keeps every acknowledged write across SIGKILL', { timeout: 60_000 }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'weft-crash-'));
  const rand = mulberry32(SEED);
  let model: Model = new Map();
  let startRevision = 0;
  let totalAcks = 0;
  try {
    for (let round = 0; round < ROUNDS; round++) {
      const killAfter = 40 + Math.floor(rand() * 400);
      const { lines } = await runWriterUntilKilled(dir, Math.floor(rand() * 2 ** 31), killAfter);
      const expected: Model = new Map(model);
      let inFlight: { op: string; keys: Set<string> } | undefined;
      let lastAckedRevision = startRevision;
      for (const line of lines.slice(1)) {
        const [what, ...rest] = line.split(' ');
        if (what === 'begin') {
          inFlight = { op: rest[0] ?? '', keys: new Set(rest.slice(1)) };
        } else if (what === 'put') {
          const [k = '', rv = '', seq = ''] = rest;
          expected.set(k, { rv: Number(rv), seq: Number(seq) });
          lastAckedRevision = Math.max(lastAckedRevision, Number(rv));
          inFlight?.keys.delete(k);
          totalAcks++;
        } else if (what === 'del') {
          const [k = '', rv = ''] = rest;
          expected.delete(k);
          if (rv !== '-') lastAckedRevision = Math.max(lastAckedRevision, Number(rv));
          inFlight?.keys.delete(k);
          totalAcks++;
        } else {
          assert.fail(`unexpected writer line: ${line}`);
        }
      }

      const files = await assertNoTornFiles(dir);
      const store = await openFileStore(dir, { logger: quiet });
      try {
        const revision = await store.revision();
        assert.ok(revision >= lastAckedRevision, `round ${round}: revision ${revision} < last acknowledged ${lastAckedRevision}`);
        const actual: Model = new Map();
        for (const o of (await store.list()).items) {
          actual.set(keyString({ kind: o.kind, namespace: o.metadata.namespace ?? '', name: o.metadata.name }), {
            rv: Number(o.metadata.resourceVersion),
            seq: (o.spec as { seq?: number }).seq,
          });
        }
        assert.equal(actual.size, files, 'every file on disk loaded');
        for (const k of new Set([...expected.keys(), ...actual.keys()])) {
          const want = expected.get(k);
          const got = actual.get(k);
          if (inFlight?.keys.has(k)) {
            // The one unacknowledged operation may or may not have landed.
            const unchanged = JSON.stringify(want) === JSON.stringify(got);
            const landed = inFlight.op === 'del' ? got === undefined : got !== undefined && got.rv > lastAckedRevision;
            assert.ok(unchanged || landed, `round ${round}: ${k} in flight (${inFlight.op}): expected ${JSON.stringify(want)} or its outcome, found ${JSON.stringify(got)}`);
          } else if (want === undefined) {
            assert.equal(got, undefined, `round ${round}: ${k} was deleted (acknowledged) but is back: ${JSON.stringify(got)}`);
          } else {
            assert.deepEqual(got, want, `round ${round}: acknowledged write of ${k} lost`);
          }
        }
        t.diagnostic(`round ${round}: killed after ${killAfter} ms, ${lines.length - 1} lines, ${actual.size} objects, revision ${revision}`);
        model = actual;
        startRevision = revision;
      } finally {
        await store.close();
      }
    }
    assert.ok(totalAcks >= ROUNDS * 5, `the writer should have done real work before each kill (acks: ${totalAcks})`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
