/**
 * Test helper for crash.test.ts, run as its own process so it can be
 * SIGKILLed: writes, updates and deletes objects as fast as it can and
 * reports on stdout.
 *
 *   node crash-writer.js DIR SEED
 *
 * Lines: `ready`; before each operation `begin <op> <key>...`; after it
 * resolved, one ack per key: `put <key> <resourceVersion> <seq>` or
 * `del <key> <revision or ->`. stdout is written synchronously, so an ack on
 * the pipe means the store had already acknowledged the write.
 */
import { writeSync } from 'node:fs';
import { pino } from 'pino';
import { keyString, type Resource, type ResourceKey } from '../../api/types.js';
import { openFileStore } from './file-store.js';
import { mulberry32 } from './seeded-random.js';

function say(line: string): void {
  writeSync(1, line + '\n');
}

async function main(dir: string, seed: number): Promise<void> {
  const rand = mulberry32(seed);
  const store = await openFileStore(dir, { logger: pino({ level: 'silent' }) });
  const pick = (): ResourceKey => ({ kind: 'Service', namespace: rand() < 0.5 ? 'default' : 'prod', name: `s${Math.floor(rand() * 12)}` });
  const object = (k: ResourceKey, seq: number): Resource => ({
    apiVersion: 'weft.dev/v1alpha1',
    kind: k.kind,
    metadata: { name: k.name, namespace: k.namespace },
    // Sizes vary so a torn write would show as truncated JSON.
    spec: { seq, pad: 'x'.repeat(Math.floor(rand() * 8000)) },
  });
  say('ready');
  for (let seq = 1; ; seq++) {
    const r = rand();
    if (r < 0.25) {
      const k = pick();
      say(`begin del ${keyString(k)}`);
      const gone = await store.delete(k);
      say(`del ${keyString(k)} ${gone?.metadata.resourceVersion ?? '-'}`);
    } else if (r < 0.35) {
      const a = pick();
      const b = pick();
      if (keyString(a) === keyString(b)) continue;
      say(`begin many ${keyString(a)} ${keyString(b)}`);
      const out = await store.putMany([object(a, seq), object(b, seq)]);
      for (const o of out) say(`put ${keyString({ ...a, name: o.metadata.name, namespace: o.metadata.namespace ?? '' })} ${o.metadata.resourceVersion} ${seq}`);
    } else {
      const k = pick();
      say(`begin put ${keyString(k)}`);
      const o = await store.put(object(k, seq));
      say(`put ${keyString(k)} ${o.metadata.resourceVersion} ${seq}`);
    }
  }
}

const [dir, seed] = process.argv.slice(2);
if (dir === undefined || seed === undefined) {
  process.stderr.write('usage: crash-writer DIR SEED\n');
  process.exit(2);
}
main(dir, Number(seed)).catch((e: unknown) => {
  process.stderr.write(`crash-writer: ${e instanceof Error ? e.stack : String(e)}\n`);
  process.exit(1);
});
