import { isDeepStrictEqual } from 'node:util';
import type { KindDescriptor } from '../../api/descriptor.js';
import { apiVersionOf } from '../../api/descriptor.js';
import type { KindRegistry } from '../../api/registry.js';
import { keyString, type Resource, type ResourceKey } from '../../api/types.js';
import { WeftError } from '../../lib/errors.js';
import type { ConfigStore } from '../../store/types.js';

/** How an object leaves the API: in its kind's first version, as docs/http-api.md promises. */
export function present(d: KindDescriptor | undefined, r: Resource): Resource {
  return d === undefined || r.apiVersion === apiVersionOf(d) ? r : { ...r, apiVersion: apiVersionOf(d) };
}

/** The input without the metadata the store owns, so a client cannot forge it. */
export function withoutStoreOwned(r: Resource): Resource {
  const { resourceVersion: _rv, generation: _g, creationTimestamp: _c, uid: _u, ...metadata } = r.metadata;
  return { ...r, metadata };
}

/**
 * Whether applying `next` over `current` changes anything a user wrote.
 * Store-owned metadata and status are not compared.
 */
export function sameContent(current: Resource, next: Resource): boolean {
  return (
    current.apiVersion === next.apiVersion &&
    isDeepStrictEqual(current.metadata.labels ?? {}, next.metadata.labels ?? {}) &&
    isDeepStrictEqual(current.metadata.annotations ?? {}, next.metadata.annotations ?? {}) &&
    isDeepStrictEqual(current.spec, next.spec)
  );
}

/**
 * A synchronous `exists` for validateDocuments, backed by a snapshot of the
 * store's keys. Only taken when some kind in the input has references at all.
 * (A full list per write is fine at mesh-config scale; a keys-only store call
 * would make it cheaper if that ever shows up in a profile.)
 */
export async function existsInStore(store: ConfigStore, registry: KindRegistry, kindsInInput: Iterable<string>): Promise<(k: ResourceKey) => boolean> {
  const needed = [...kindsInInput].some((k) => registry.byKindName(k)?.references !== undefined);
  if (!needed) return () => false;
  const { items } = await store.list();
  const keys = new Set(items.map((r) => keyString({ kind: r.kind, namespace: r.metadata.namespace ?? '', name: r.metadata.name })));
  return (k) => keys.has(keyString(k));
}

/** `dryRun=All` → true; absent → false; anything else is refused (as Kubernetes does). */
export function dryRunOf(query: URLSearchParams): boolean {
  const values = query.getAll('dryRun');
  if (values.length === 0) return false;
  if (values.every((v) => v === 'All')) return true;
  throw new WeftError('WEFT_ERR_BAD_REQUEST', `dryRun: the only accepted value is "All", got "${values.join(',')}"`);
}

/** A decimal revision from a query parameter, or undefined when absent. */
export function revisionParam(query: URLSearchParams, name: string): string | undefined {
  const v = query.get(name);
  if (v === null || v === '') return undefined;
  if (!/^\d{1,15}$/.test(v)) throw new WeftError('WEFT_ERR_BAD_REQUEST', `${name}: must be a decimal revision, got "${v.slice(0, 32)}"`);
  return v;
}
