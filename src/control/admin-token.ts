import { randomBytes } from 'node:crypto';
import { link, open, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { WeftError } from '../lib/errors.js';

export const ADMIN_TOKEN_FILE = 'admin-token';

/**
 * The admin token: 32 random bytes, base64url, in `DATA_DIR/admin-token`.
 * Written to a private temp file first (O_EXCL, mode 0600 in the same call, so
 * never readable by others, not even briefly), then hard-linked into place:
 * link() fails rather than replace, so the file appears complete or not at all,
 * and of two processes starting at once the loser reads the winner's token.
 */
export async function loadOrCreateAdminToken(dataDir: string): Promise<string> {
  const path = join(dataDir, ADMIN_TOKEN_FILE);
  const existing = await readToken(path);
  if (existing !== undefined) return existing;
  const token = randomBytes(32).toString('base64url');
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    const fh = await open(tmp, 'wx', 0o600);
    try {
      await fh.writeFile(`${token}\n`, 'utf8');
      await fh.sync();
    } finally {
      await fh.close();
    }
    await link(tmp, path);
    return token;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') {
      const other = await readToken(path);
      if (other !== undefined) return other;
    }
    throw new WeftError('WEFT_ERR_STORE', `cannot create ${path}`, { cause: e });
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
}

async function readToken(path: string): Promise<string | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new WeftError('WEFT_ERR_STORE', `cannot read ${path}`, { cause: e });
  }
  const token = text.trim();
  // An empty file is a crash between create and write: refuse rather than guess.
  if (token === '') throw new WeftError('WEFT_ERR_STORE', `${path} is empty: delete it to have a new token made`);
  return token;
}
