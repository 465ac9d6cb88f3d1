import { randomBytes } from 'node:crypto';
import { chmod, link, mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/**
 * File helpers for the CA directory. Every file is created with mode 0600 in
 * the open() call itself (O_EXCL on a fresh temp name), so a key is never
 * readable by others, not even for the moment between create and chmod.
 */
export const PRIVATE_FILE_MODE = 0o600;
export const PRIVATE_DIR_MODE = 0o700;

/** Create `dir` (and parents) and make sure it is 0700 even if it existed or umask widened it. */
export async function ensurePrivateDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
  await chmod(dir, PRIVATE_DIR_MODE);
}

function tempPathFor(target: string): string {
  return join(dirname(target), `.${basename(target)}.${randomBytes(6).toString('hex')}.tmp`);
}

async function writeTemp(target: string, data: string | Uint8Array): Promise<string> {
  const tmp = tempPathFor(target);
  const fh = await open(tmp, 'wx', PRIVATE_FILE_MODE);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } catch (e) {
    await fh.close().catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
  await fh.close();
  return tmp;
}

/** Replace `target` atomically (temp, fsync, rename, fsync dir): a reader sees old or new, never a mix. */
export async function writeFileAtomic(target: string, data: string | Uint8Array): Promise<void> {
  const tmp = await writeTemp(target, data);
  try {
    await rename(tmp, target);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
  await fsyncDir(dirname(target));
}

/**
 * Create `target` complete or not at all, never replacing an existing file:
 * the temp file is hard-linked into place. Returns false when `target` existed.
 */
export async function createFileExclusive(target: string, data: string | Uint8Array): Promise<boolean> {
  const tmp = await writeTemp(target, data);
  try {
    await link(tmp, target);
  } catch (e) {
    if (errnoCode(e) === 'EEXIST') return false;
    throw e;
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
  await fsyncDir(dirname(target));
  return true;
}

export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** File contents, or undefined when the file does not exist. */
export async function readIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return undefined;
    throw e;
  }
}

export function errnoCode(e: unknown): string | undefined {
  return typeof e === 'object' && e !== null && 'code' in e && typeof e.code === 'string' ? e.code : undefined;
}
