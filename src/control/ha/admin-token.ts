import { randomBytes } from 'node:crypto';
import { open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { WeftError } from '../../lib/errors.js';
import type { Logger } from '../../lib/log.js';
import type { EtcdStore } from '../../store/etcd/etcd-store.js';
import { ADMIN_TOKEN_FILE } from '../admin-token.js';

/**
 * The admin token when replicas share an etcd store: every replica must accept
 * the same one, whichever a client talks to.
 *
 * - `DATA_DIR/admin-token` present: that token is used (the operator
 *   distributed it). It is also stored in etcd if etcd has none yet.
 * - Otherwise the token stored in etcd at `<prefix>admin-token` is used,
 *   created (random, create-if-absent, so concurrent first starts agree) when
 *   missing, and written to `DATA_DIR/admin-token` (mode 0600) so that
 *   `weft --data-dir DIR` on this machine finds it.
 *
 * A file token that differs from etcd's is used, with a warning: that replica
 * then accepts another token than the others.
 */
export async function sharedAdminToken(store: EtcdStore, dataDir: string, log: Logger): Promise<string> {
  const path = join(dataDir, ADMIN_TOKEN_FILE);
  const local = await readLocal(path);
  const { client, prefix } = store.etcd;
  const key = Buffer.from(`${prefix}admin-token`);
  const candidate = local ?? randomBytes(32).toString('base64url');
  let res;
  try {
    res = await client.kv.txn({
      compare: [{ key, target: 'Create', result: 'Equal', create_revision: '0' }],
      success: [{ request_put: { key, value: Buffer.from(candidate) } }],
      failure: [{ request_range: { key } }],
    });
  } catch (e) {
    throw new WeftError('WEFT_ERR_STORE', `cannot read or store the shared admin token in etcd: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
  const shared = res.succeeded ? candidate : res.responses[0]?.response_range?.kvs[0]?.value.toString('utf8').trim();
  if (shared === undefined || shared === '') throw new WeftError('WEFT_ERR_STORE', `etcd key ${key.toString('utf8')} is empty: delete it to have a new admin token made`);
  if (local !== undefined) {
    if (local !== shared) log.warn({ file: path }, `${path} differs from the admin token the other replicas share (etcd ${key.toString('utf8')}): this replica accepts only its own`);
    return local;
  }
  await writeLocal(path, shared);
  return shared;
}

async function readLocal(path: string): Promise<string | undefined> {
  try {
    const t = (await readFile(path, 'utf8')).trim();
    if (t === '') throw new WeftError('WEFT_ERR_STORE', `${path} is empty: delete it to use the shared token`);
    return t;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

async function writeLocal(path: string, token: string): Promise<void> {
  try {
    const fh = await open(path, 'wx', 0o600);
    try {
      await fh.writeFile(`${token}\n`, 'utf8');
      await fh.sync();
    } finally {
      await fh.close();
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return;
    throw new WeftError('WEFT_ERR_STORE', `cannot write ${path}`, { cause: e });
  }
}
