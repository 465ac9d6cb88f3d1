import { mkdir, unlink } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { keyOf, keyString, type Resource, type ResourceKey } from '../../api/types.js';
import { isWeftError, WeftError } from '../../lib/errors.js';
import { createLogger, type Logger } from '../../lib/log.js';
import { MemoryLog } from '../memory-log.js';
import { createSerialQueue } from '../serial-queue.js';
import type { ConfigStore, DeleteOptions, ListOptions, ListResult, PutOptions, Watch, WatchEvent, WatchOptions } from '../types.js';
import { checkDeletePrecondition, checkPutPrecondition, copyOut, planPut, tombstone } from '../write-plan.js';
import { DIR_MODE, errnoCode, fsyncDir, writeFileAtomic } from './atomic-fs.js';
import { acquireDirLock, type DirLock } from './dir-lock.js';
import { assertStorableKey, namespaceDir, objectPath, REVISION_FILE } from './layout.js';
import { loadDir } from './load.js';

export interface FileStoreOptions {
  logger?: Logger;
  /** Events kept for watch({fromRevision}); default 10,000. */
  historySize?: number;
  /** Clock for creationTimestamp. */
  now?: () => Date;
}

/**
 * The embedded store: one JSON file per object under `dir`, which the store
 * owns entirely (give it its own directory, e.g. `<data-dir>/store`). Every
 * acknowledged write is durable (fsync'd) and survives a crash at any moment.
 *
 * Revisions: each object file carries the revision of its last write; the
 * `revision` file is written only before a delete, the one change that could
 * otherwise lower the maximum on disk. On open the revision is the larger of
 * the two, so it never goes back.
 */
export async function openFileStore(dir: string, opts: FileStoreOptions = {}): Promise<ConfigStore> {
  const log = opts.logger ?? createLogger('store');
  const root = resolve(dir);
  try {
    await mkdir(root, { recursive: true, mode: DIR_MODE });
  } catch (e) {
    throw ioError(`cannot create data directory ${root}`, e);
  }
  const lock = await acquireDirLock(root, log);
  try {
    const loaded = await loadDir(root, log).catch((e: unknown) => {
      throw isWeftError(e) ? e : ioError(`cannot load ${root}`, e);
    });
    const memory = new MemoryLog({
      historySize: opts.historySize,
      onWatcherError: (err) => log.error({ err }, 'store watcher failed; the write it was told about is unaffected'),
    });
    memory.reset(loaded.objects, loaded.revision);
    log.debug({ dir: root, objects: loaded.objects.length, revision: loaded.revision }, 'file store opened');
    return new FileStore(root, memory, lock, log, opts.now ?? (() => new Date()));
  } catch (e) {
    await lock.release();
    throw e;
  }
}

class FileStore implements ConfigStore {
  // One writer at a time: revisions are handed out in commit order and a
  // precondition checked at the start of a write still holds at its end.
  private readonly queue = createSerialQueue();
  private readonly knownDirs = new Set<string>();
  private closed = false;
  /** Set when a write's outcome on disk is unknown; later writes refuse. */
  private broken: WeftError | undefined;

  constructor(
    private readonly root: string,
    private readonly memory: MemoryLog,
    private readonly lock: DirLock,
    private readonly log: Logger,
    private readonly now: () => Date,
  ) {}

  async get(key: ResourceKey): Promise<Resource | undefined> {
    this.assertOpen();
    const o = this.memory.get(key);
    return o === undefined ? undefined : copyOut(o);
  }

  async list(opts: ListOptions = {}): Promise<ListResult> {
    this.assertOpen();
    return { items: this.memory.list(opts).map(copyOut), revision: this.memory.revision };
  }

  async put(resource: Resource, opts: PutOptions = {}): Promise<Resource> {
    this.assertOpen();
    const key = keyOf(resource);
    assertStorableKey(key);
    return this.queue.run(async () => {
      this.assertWritable();
      checkPutPrecondition(key, this.memory.get(key), opts.expectedResourceVersion);
      return copyOut(await this.write(key, resource));
    });
  }

  async putMany(resources: readonly Resource[], opts: { expectedResourceVersions?: readonly (string | null | undefined)[] } = {}): Promise<Resource[]> {
    this.assertOpen();
    const keys = resources.map(keyOf);
    const seen = new Set<string>();
    for (const k of keys) {
      assertStorableKey(k);
      const s = keyString(k);
      // With one key twice, "check every precondition first" has no single answer.
      if (seen.has(s)) throw new WeftError('WEFT_ERR_INVALID', `${s} appears more than once in one putMany`);
      seen.add(s);
    }
    const expected = opts.expectedResourceVersions;
    if (expected !== undefined && expected.length !== resources.length) {
      throw new WeftError('WEFT_ERR_INTERNAL', `putMany: ${expected.length} expected resourceVersions for ${resources.length} resources`);
    }
    return this.queue.run(async () => {
      this.assertWritable();
      keys.forEach((k, i) => checkPutPrecondition(k, this.memory.get(k), expected?.[i]));
      const out: Resource[] = [];
      for (const [i, r] of resources.entries()) out.push(copyOut(await this.write(keys[i] as ResourceKey, r)));
      return out;
    });
  }

  async delete(key: ResourceKey, opts: DeleteOptions = {}): Promise<Resource | undefined> {
    this.assertOpen();
    return this.queue.run(async () => {
      this.assertWritable();
      const existing = this.memory.get(key);
      if (!checkDeletePrecondition(key, existing, opts.expectedResourceVersion)) return undefined;
      const revision = this.memory.revision + 1;
      const path = objectPath(this.root, key);
      try {
        // Recorded before the unlink: if this object held the highest
        // revision, the disk must still remember it once the file is gone.
        await writeFileAtomic(join(this.root, REVISION_FILE), `${revision}\n`);
        await unlink(path).catch((e: unknown) => {
          if (errnoCode(e) !== 'ENOENT') throw e;
        });
      } catch (e) {
        throw ioError(`cannot delete ${keyString(key)} (${path})`, e);
      }
      try {
        await fsyncDir(dirname(path));
      } catch (e) {
        throw this.breakOn(`deleting ${keyString(key)}`, e);
      }
      const gone = tombstone(existing, revision);
      this.memory.commit('DELETED', gone, revision);
      return copyOut(gone);
    });
  }

  watch(opts: WatchOptions, onEvent: (e: WatchEvent) => void): Watch {
    this.assertOpen();
    return this.memory.watch(opts, onEvent);
  }

  async revision(): Promise<number> {
    this.assertOpen();
    return this.memory.revision;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // Writes already accepted finish; only new calls are refused.
    await this.queue.idle();
    this.memory.closeWatchers();
    await this.lock.release();
  }

  /** Persist one put (already checked) and publish it; runs inside the queue. */
  private async write(key: ResourceKey, incoming: Resource): Promise<Resource> {
    const revision = this.memory.revision + 1;
    const plan = planPut(this.memory.get(key), incoming, revision, this.now);
    if (plan.kind === 'unchanged') return plan.object;
    const path = objectPath(this.root, key);
    let renamed = false;
    try {
      await this.ensureDir(key);
      await writeFileAtomic(path, JSON.stringify(plan.object, null, 2) + '\n', () => {
        renamed = true;
      });
    } catch (e) {
      // Before the rename nothing visible changed and the store stays usable.
      if (!renamed) throw ioError(`cannot write ${keyString(key)} (${path})`, e);
      throw this.breakOn(`writing ${keyString(key)}`, e);
    }
    this.memory.commit(plan.type, plan.object, revision);
    return plan.object;
  }

  private async ensureDir(key: ResourceKey): Promise<void> {
    const nsDir = namespaceDir(this.root, key);
    if (this.knownDirs.has(nsDir)) return;
    const created = await mkdir(nsDir, { recursive: true, mode: DIR_MODE });
    // New directory entries are durable only once their parents are synced.
    if (created !== undefined) {
      await fsyncDir(dirname(nsDir));
      await fsyncDir(this.root);
    }
    this.knownDirs.add(nsDir);
  }

  /**
   * A failed fsync after the rename or unlink leaves the disk's state unknown
   * (the kernel may have dropped the dirty pages), so memory can no longer be
   * trusted to match it. Refuse further writes until a restart reloads.
   */
  private breakOn(what: string, e: unknown): WeftError {
    this.broken = ioError(`the file store stopped accepting writes after an fsync failed while ${what}; restart to reload from disk`, e);
    this.log.error({ err: e }, this.broken.message);
    return this.broken;
  }

  private assertOpen(): void {
    if (this.closed) throw new WeftError('WEFT_ERR_STORE', 'the store is closed');
  }

  private assertWritable(): void {
    if (this.broken !== undefined) throw this.broken;
  }
}

function ioError(message: string, cause: unknown): WeftError {
  if (isWeftError(cause)) return cause;
  const detail = cause instanceof Error ? cause.message : String(cause);
  return new WeftError('WEFT_ERR_STORE', `${message}: ${detail}`, { cause });
}
