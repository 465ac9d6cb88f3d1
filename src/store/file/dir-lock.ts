import { randomBytes } from 'node:crypto';
import { link, readFile, realpath, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../../lib/log.js';
import { WeftError } from '../../lib/errors.js';
import { errnoCode, fsyncDir } from './atomic-fs.js';
import { LOCK_FILE } from './layout.js';

export interface DirLock {
  release(): Promise<void>;
}

// Directories this process holds. The pid in LOCK cannot tell a second open
// in this process from a stale lock left by an earlier process that had the
// same pid (pid 1 in a restarted container): this set can.
const heldHere = new Set<string>();

/**
 * Exclusive use of a data directory by one process, so two control planes
 * cannot interleave writes. LOCK holds the owner's pid; a lock whose pid is
 * dead is taken over.
 *
 * Known limit: two processes taking over the same stale lock at the same
 * instant can both succeed (unlink-then-create is not one step). Starting two
 * control planes on one directory within the same millisecond after a crash
 * is the only way to get there.
 */
export async function acquireDirLock(dir: string, log: Logger): Promise<DirLock> {
  const real = await realpath(dir);
  if (heldHere.has(real)) {
    throw new WeftError('WEFT_ERR_STORE', `data directory ${dir} is already open in this process`);
  }
  const lockPath = join(real, LOCK_FILE);
  for (let attempt = 0; attempt < 5; attempt++) {
    if (await tryCreate(real, lockPath)) {
      heldHere.add(real);
      return { release: () => release(real, lockPath) };
    }
    const owner = await readOwner(lockPath);
    if (owner === 'missing') continue;
    if (owner !== 'unreadable' && owner !== process.pid && isAlive(owner)) {
      throw new WeftError('WEFT_ERR_STORE', `data directory ${dir} is in use by pid ${owner} (remove ${lockPath} if no Weft process is running)`);
    }
    log.warn({ dir, stalePid: owner }, 'taking over a stale store lock');
    await unlink(lockPath).catch((e: unknown) => {
      if (errnoCode(e) !== 'ENOENT') throw storeError(`cannot remove stale lock ${lockPath}`, e);
    });
  }
  throw new WeftError('WEFT_ERR_STORE', `could not lock data directory ${dir}: the lock kept changing hands`);
}

/**
 * The pid goes into a private temp file that is then hard-linked to LOCK:
 * link fails if LOCK exists, and a reader never sees a LOCK without its pid
 * (open('wx') then write would leave that window).
 */
async function tryCreate(dir: string, lockPath: string): Promise<boolean> {
  const tmp = join(dir, `.${LOCK_FILE}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    await writeFile(tmp, `${process.pid}\n`, { flag: 'wx', mode: 0o600 });
    await link(tmp, lockPath);
    await fsyncDir(dir);
    return true;
  } catch (e) {
    if (errnoCode(e) === 'EEXIST') return false;
    throw storeError(`cannot create lock ${lockPath}`, e);
  } finally {
    await unlink(tmp).catch(() => {});
  }
}

async function readOwner(lockPath: string): Promise<number | 'missing' | 'unreadable'> {
  let text: string;
  try {
    text = await readFile(lockPath, 'utf8');
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return 'missing';
    throw storeError(`cannot read lock ${lockPath}`, e);
  }
  const pid = Number(text.trim());
  return Number.isSafeInteger(pid) && pid > 0 ? pid : 'unreadable';
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: it exists but belongs to someone else, which still counts.
    return errnoCode(e) === 'EPERM';
  }
}

async function release(real: string, lockPath: string): Promise<void> {
  if (!heldHere.delete(real)) return;
  // Only remove a lock that is still ours: an operator may have removed it
  // and another process may hold it now.
  const owner = await readOwner(lockPath).catch(() => 'unreadable' as const);
  if (owner === process.pid) await unlink(lockPath).catch(() => {});
}

function storeError(message: string, cause: unknown): WeftError {
  return new WeftError('WEFT_ERR_STORE', `${message}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
}
