import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { WeftError } from '../../lib/errors.js';
import type { Logger } from '../../lib/log.js';
import type { EtcdStore } from '../../store/etcd/etcd-store.js';
import type { CaMaterial } from '../ca/root.js';
import { CA_SUBDIR } from '../ca/root.js';
import { JOIN_TOKEN_KEY_FILE } from '../ca/tokens.js';

/**
 * What replicas on one etcd share of the CA (docs/ha.md, "CA"):
 *
 * - the join-token HMAC key, at `<prefix>ca/join-token-key` (base64url),
 *   create-if-absent: the first replica to start stores its
 *   `DATA_DIR/ca/join-token-key` if it has one (so tokens it already handed
 *   out stay valid), else a random key; every replica then signs and verifies
 *   tokens with the key in etcd, so a token made through one is accepted by
 *   all. The local file is left alone (and no longer used).
 * - the SHA-256 fingerprint of the root the signer chains to, at
 *   `<prefix>ca/root-sha256`, so a replica whose root differs from the
 *   others' says so loudly at start (it does not refuse: during a rolling
 *   change of supplied CA files the roots legitimately differ for a while).
 *
 * The signing key itself is never put in etcd: replicas share it by being
 * given the same PEM files (`--ca-cert/--ca-key`, `--ca-intermediate-*`).
 */
export const JOIN_TOKEN_KEY_ETCD = 'ca/join-token-key';
export const ROOT_FINGERPRINT_ETCD = 'ca/root-sha256';

export async function sharedJoinTokenKey(store: EtcdStore, dataDir: string, log: Logger): Promise<Buffer> {
  const path = join(dataDir, CA_SUBDIR, JOIN_TOKEN_KEY_FILE);
  const local = await readLocalKey(path);
  const candidate = local ?? randomBytes(32).toString('base64url');
  const { value, created } = await createIfAbsent(store, JOIN_TOKEN_KEY_ETCD, candidate, 'the shared join-token key');
  const key = Buffer.from(value, 'base64url');
  if (key.length < 32) throw new WeftError('WEFT_ERR_STORE', `etcd key ${store.etcd.prefix}${JOIN_TOKEN_KEY_ETCD} does not hold a 32-byte key: delete it to have a new one made (outstanding join tokens stop working)`);
  if (created) log.info({ key: `${store.etcd.prefix}${JOIN_TOKEN_KEY_ETCD}`, from: local !== undefined ? path : 'random' }, 'ca: stored the join-token key in etcd for every replica');
  else if (local !== undefined && local !== value) log.warn({ file: path }, `ca: ${path} differs from the join-token key the replicas share in etcd; using etcd's (tokens made with the local key no longer verify)`);
  return key;
}

export interface RootCheck {
  fingerprint: string;
  /** What etcd held before this replica started; undefined when it held nothing. */
  recorded?: string;
  matches: boolean;
}

/**
 * Compares this replica's root (the one its signer chains to) with the one
 * recorded in etcd, and records it: create-if-absent for a generated root
 * (the first replica's stays the reference), overwritten for supplied files
 * (the operator's files are the reference). A mismatch is logged as an error:
 * certificates from this replica will not verify at proxies of the others.
 */
export async function checkSharedRoot(store: EtcdStore, material: CaMaterial, log: Logger): Promise<RootCheck> {
  const root = material.roots.find((r) => r.id === material.signer.rootId) ?? material.roots[0];
  if (root === undefined) throw new WeftError('WEFT_ERR_INTERNAL', 'the CA has no root');
  const fingerprint = createHash('sha256').update(Buffer.from(root.cert.rawData)).digest('hex');
  const { value, created } = await createIfAbsent(store, ROOT_FINGERPRINT_ETCD, fingerprint, 'the root fingerprint');
  const recorded = created ? undefined : value;
  const matches = recorded === undefined || recorded === fingerprint;
  if (!matches) {
    log.error({ thisRoot: fingerprint, recordedRoot: recorded, key: `${store.etcd.prefix}${ROOT_FINGERPRINT_ETCD}` },
      'ca: THIS REPLICA\'S ROOT DIFFERS FROM THE ONE RECORDED IN ETCD: certificates it issues will not verify at proxies that got their bundle from another replica; give every replica the same --ca-cert/--ca-key files');
    if (material.source === 'supplied') {
      try {
        await store.etcd.client.kv.put({ key: Buffer.from(`${store.etcd.prefix}${ROOT_FINGERPRINT_ETCD}`), value: Buffer.from(fingerprint) });
      } catch (e) {
        log.warn({ err: e }, 'ca: cannot record the root fingerprint in etcd');
      }
    }
  }
  return { fingerprint, ...(recorded !== undefined ? { recorded } : {}), matches };
}

async function createIfAbsent(store: EtcdStore, name: string, candidate: string, what: string): Promise<{ value: string; created: boolean }> {
  const { client, prefix } = store.etcd;
  const key = Buffer.from(`${prefix}${name}`);
  let res;
  try {
    res = await client.kv.txn({
      compare: [{ key, target: 'Create', result: 'Equal', create_revision: '0' }],
      success: [{ request_put: { key, value: Buffer.from(candidate) } }],
      failure: [{ request_range: { key } }],
    });
  } catch (e) {
    throw new WeftError('WEFT_ERR_STORE', `cannot read or store ${what} in etcd: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
  if (res.succeeded) return { value: candidate, created: true };
  const value = res.responses[0]?.response_range?.kvs[0]?.value.toString('utf8').trim();
  if (value === undefined || value === '') throw new WeftError('WEFT_ERR_STORE', `etcd key ${key.toString('utf8')} is empty: delete it to have ${what} recorded again`);
  return { value, created: false };
}

async function readLocalKey(path: string): Promise<string | undefined> {
  try {
    const t = (await readFile(path, 'utf8')).trim();
    return Buffer.from(t, 'base64url').length >= 32 ? t : undefined;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}
