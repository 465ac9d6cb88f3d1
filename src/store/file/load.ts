import { readdir, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Resource } from '../../api/types.js';
import type { Logger } from '../../lib/log.js';
import { WeftError } from '../../lib/errors.js';
import { errnoCode } from './atomic-fs.js';
import { LOCK_FILE, namespaceOfDir, OBJECT_SUFFIX, REVISION_FILE, TMP_SUFFIX } from './layout.js';

export interface LoadedDir {
  objects: Resource[];
  /** max(revision file, highest resourceVersion on disk). */
  revision: number;
}

// Bounded so a directory of many thousand objects does not run out of descriptors.
const READ_PARALLELISM = 32;

/**
 * Read every object under `root`. Temp files are leftovers of writes that
 * never reached their rename, so they are removed. A file that cannot be used
 * is logged and skipped: one bad file must not keep the control plane down.
 */
export async function loadDir(root: string, log: Logger): Promise<LoadedDir> {
  const objects: Resource[] = [];
  let revision = await readRevisionFile(root, log);
  await removeTemps(root, await readdir(root, { withFileTypes: true }), log, (name) => name.startsWith(`.${REVISION_FILE}.`) || name.startsWith(`.${LOCK_FILE}.`));

  for (const kindEnt of await readdir(root, { withFileTypes: true })) {
    if (!kindEnt.isDirectory() || kindEnt.name.startsWith('.')) continue;
    const kindDir = join(root, kindEnt.name);
    for (const nsEnt of await readdir(kindDir, { withFileTypes: true })) {
      if (!nsEnt.isDirectory()) continue;
      const nsDir = join(kindDir, nsEnt.name);
      const entries = await readdir(nsDir, { withFileTypes: true });
      await removeTemps(nsDir, entries, log, () => true);
      const files = entries.filter((e) => e.isFile() && e.name.endsWith(OBJECT_SUFFIX) && !e.name.startsWith('.'));
      for (let i = 0; i < files.length; i += READ_PARALLELISM) {
        const chunk = files.slice(i, i + READ_PARALLELISM);
        const read = await Promise.all(
          chunk.map((f) => readObject(join(nsDir, f.name), kindEnt.name, namespaceOfDir(nsEnt.name), f.name.slice(0, -OBJECT_SUFFIX.length), log)),
        );
        for (const o of read) {
          if (o === undefined) continue;
          objects.push(o);
          revision = Math.max(revision, Number(o.metadata.resourceVersion));
        }
      }
    }
  }
  return { objects, revision };
}

async function removeTemps(dir: string, entries: { name: string; isFile(): boolean }[], log: Logger, ours: (name: string) => boolean): Promise<void> {
  for (const e of entries) {
    if (!e.isFile() || !e.name.startsWith('.') || !e.name.endsWith(TMP_SUFFIX) || !ours(e.name)) continue;
    log.info({ file: join(dir, e.name) }, 'removing temp file of an interrupted write');
    await unlink(join(dir, e.name)).catch((err: unknown) => {
      if (errnoCode(err) !== 'ENOENT') throw err;
    });
  }
}

async function readRevisionFile(root: string, log: Logger): Promise<number> {
  const path = join(root, REVISION_FILE);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return 0;
    throw new WeftError('WEFT_ERR_STORE', `cannot read ${path}`, { cause: e });
  }
  const n = Number(text.trim());
  if (!Number.isSafeInteger(n) || n < 0) {
    log.error({ file: path, content: text.slice(0, 100) }, 'revision file is not a number; using the highest resourceVersion on disk');
    return 0;
  }
  return n;
}

async function readObject(path: string, kind: string, namespace: string, name: string, log: Logger): Promise<Resource | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    log.error({ file: path, err: e }, 'cannot read stored object; skipping it');
    return undefined;
  }
  let o: unknown;
  try {
    o = JSON.parse(text);
  } catch (e) {
    log.error({ file: path, err: e }, 'stored object is not valid JSON; skipping it');
    return undefined;
  }
  const problem = checkShape(o, kind, namespace, name);
  if (problem !== undefined) {
    log.error({ file: path, problem }, 'stored object is not usable; skipping it');
    return undefined;
  }
  return o as Resource;
}

/** Only what the store relies on: where it belongs and its revision. */
function checkShape(o: unknown, kind: string, namespace: string, name: string): string | undefined {
  if (typeof o !== 'object' || o === null || Array.isArray(o)) return 'not an object';
  const r = o as Partial<Resource>;
  if (typeof r.apiVersion !== 'string') return 'apiVersion missing';
  if (r.kind !== kind) return `kind ${JSON.stringify(r.kind)} does not match its directory ${kind}`;
  const m = r.metadata;
  if (typeof m !== 'object' || m === null) return 'metadata missing';
  if (m.name !== name) return `metadata.name ${JSON.stringify(m.name)} does not match its file name`;
  if ((m.namespace ?? '') !== namespace) return `metadata.namespace ${JSON.stringify(m.namespace)} does not match its directory`;
  if (typeof m.resourceVersion !== 'string' || !/^[1-9][0-9]*$/.test(m.resourceVersion) || !Number.isSafeInteger(Number(m.resourceVersion))) {
    return `metadata.resourceVersion ${JSON.stringify(m.resourceVersion)} is not a revision`;
  }
  return undefined;
}
