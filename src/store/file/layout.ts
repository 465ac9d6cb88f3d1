import { join } from 'node:path';
import { keyString, type ResourceKey } from '../../api/types.js';
import { WeftError } from '../../lib/errors.js';

/**
 * Where each object lives: DIR/<kind>/<namespace>/<name>.json, with cluster-
 * scoped objects under `_cluster` (an underscore cannot start a namespace, so
 * it never collides with one).
 */
export const CLUSTER_DIR = '_cluster';
export const REVISION_FILE = 'revision';
export const LOCK_FILE = 'LOCK';
export const OBJECT_SUFFIX = '.json';
export const TMP_SUFFIX = '.tmp';

// Objects arrive validated, but a name that reached the file system unchecked
// could escape the data directory ('../x') or look like a temp file ('.x').
const SEGMENT = /^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$/;

export function assertStorableKey(key: ResourceKey): void {
  const bad = [
    ['kind', key.kind],
    ['name', key.name],
    ...(key.namespace === '' ? [] : [['namespace', key.namespace]]),
  ].filter(([, v]) => !SEGMENT.test(v ?? ''));
  if (bad.length > 0) {
    const what = bad.map(([f, v]) => `${f} ${JSON.stringify(v)}`).join(', ');
    throw new WeftError('WEFT_ERR_INVALID', `${keyString(key)}: ${what} cannot be stored: use letters, digits, '.', '_' or '-', not starting with '.', '_' or '-'`);
  }
}

export function namespaceDir(root: string, key: ResourceKey): string {
  return join(root, key.kind, key.namespace === '' ? CLUSTER_DIR : key.namespace);
}

export function objectPath(root: string, key: ResourceKey): string {
  return join(namespaceDir(root, key), key.name + OBJECT_SUFFIX);
}

/** The namespace a directory name stands for. */
export function namespaceOfDir(dirName: string): string {
  return dirName === CLUSTER_DIR ? '' : dirName;
}
