import type { ResourceKey } from '../../api/types.js';
import { WeftError } from '../../lib/errors.js';
import { assertStorableKey } from '../file/layout.js';
import type { ListOptions } from '../types.js';

/**
 * Where objects live in etcd: `<prefix>resources/<Kind>/<namespace>/<name>`,
 * with cluster-scoped objects under `_cluster` (no namespace can start with
 * '_'). Keys obey the same rules as the file store's paths, so an object one
 * backend accepts the other accepts too.
 */
export const CLUSTER_SEGMENT = '_cluster';
export const RESOURCES = 'resources/';
export const DEFAULT_PREFIX = '/weft/';

export function normalizePrefix(prefix: string | undefined): string {
  const p = prefix ?? DEFAULT_PREFIX;
  if (p === '') throw new WeftError('WEFT_ERR_USAGE', 'the etcd key prefix must not be empty (default /weft/)');
  // Without the trailing slash, '/weft' would also cover '/weft-staging/...'.
  return p.endsWith('/') ? p : `${p}/`;
}

export function objectKey(prefix: string, key: ResourceKey): string {
  assertStorableKey(key);
  return `${prefix}${RESOURCES}${key.kind}/${key.namespace === '' ? CLUSTER_SEGMENT : key.namespace}/${key.name}`;
}

/**
 * The narrowest key prefix covering what `opts` selects. A namespace without a
 * kind spans every kind, so it is filtered after reading instead.
 */
export function rangePrefix(prefix: string, opts: ListOptions = {}): string {
  const base = `${prefix}${RESOURCES}`;
  if (opts.kind === undefined) return base;
  assertSegment('kind', opts.kind);
  if (opts.namespace === undefined || opts.namespace === '') return `${base}${opts.kind}/`;
  assertSegment('namespace', opts.namespace);
  return `${base}${opts.kind}/${opts.namespace}/`;
}

/** The key an etcd key names, or undefined for anything that is not an object key. */
export function parseObjectKey(prefix: string, etcdKey: string): ResourceKey | undefined {
  const base = `${prefix}${RESOURCES}`;
  if (!etcdKey.startsWith(base)) return undefined;
  const parts = etcdKey.slice(base.length).split('/');
  if (parts.length !== 3) return undefined;
  const [kind, ns, name] = parts as [string, string, string];
  if (kind === '' || ns === '' || name === '') return undefined;
  return { kind, namespace: ns === CLUSTER_SEGMENT ? '' : ns, name };
}

/** The exclusive end of the range of keys starting with `p` (etcd's "prefix" range). */
export function prefixEnd(p: string): Buffer {
  const b = Buffer.from(p);
  for (let i = b.length - 1; i >= 0; i--) {
    if ((b[i] as number) < 0xff) {
      const end = b.subarray(0, i + 1);
      end[i] = (end[i] as number) + 1;
      return end;
    }
  }
  // Every byte 0xff: the range runs to the end of the keyspace.
  return Buffer.from([0]);
}

export function matchesFilter(key: ResourceKey, f: ListOptions): boolean {
  if (f.kind !== undefined && key.kind !== f.kind) return false;
  if (f.namespace !== undefined && f.namespace !== '' && key.namespace !== f.namespace) return false;
  return true;
}

function assertSegment(what: string, v: string): void {
  if (v.includes('/')) throw new WeftError('WEFT_ERR_INVALID', `${what} ${JSON.stringify(v)} cannot contain '/'`);
}
