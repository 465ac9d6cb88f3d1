import { randomBytes } from 'node:crypto';
import { open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { OBJECT_SUFFIX, TMP_SUFFIX } from './layout.js';

/** Files the store writes are readable by the owner only: config may name secrets' locations and policies. */
export const FILE_MODE = 0o600;
export const DIR_MODE = 0o700;

/** `.<name>.<random>.tmp` beside the target, so the rename never crosses a file system. */
export function tempPathFor(target: string): string {
  const base = basename(target, OBJECT_SUFFIX);
  return join(dirname(target), `.${base}.${randomBytes(6).toString('hex')}${TMP_SUFFIX}`);
}

/**
 * Replace `target` so that a reader (or a reopen after a crash) sees either
 * the old content or the new, never a mix: write a temp file, fsync it,
 * rename it over the target, fsync the directory so the rename is durable.
 *
 * `renamed` is called right after the rename: from then on the new content is
 * what the file system shows, even if the directory fsync fails.
 */
export async function writeFileAtomic(target: string, data: string, renamed?: () => void): Promise<void> {
  const tmp = tempPathFor(target);
  try {
    const fh = await open(tmp, 'wx', FILE_MODE);
    try {
      await fh.writeFile(data, 'utf8');
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, target);
  } catch (e) {
    await unlink(tmp).catch(() => {});
    throw e;
  }
  renamed?.();
  await fsyncDir(dirname(target));
}

/** Make a directory's entries (created, renamed or removed files) durable. */
export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export function errnoCode(e: unknown): string | undefined {
  return typeof e === 'object' && e !== null && 'code' in e && typeof e.code === 'string' ? e.code : undefined;
}
