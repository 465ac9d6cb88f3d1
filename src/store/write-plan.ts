import { randomUUID } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import { keyString, type ObjectMeta, type Resource, type ResourceKey } from '../api/types.js';
import { WeftError } from '../lib/errors.js';

/**
 * Rules every backend applies the same way: preconditions, store-owned
 * metadata, and when a put changes nothing.
 */

export type PutPlan =
  | { kind: 'unchanged'; object: Resource }
  | { kind: 'write'; type: 'ADDED' | 'MODIFIED'; object: Resource };

export function checkPutPrecondition(key: ResourceKey, existing: Resource | undefined, expected: string | null | undefined): void {
  if (expected === undefined) return;
  const k = keyString(key);
  if (expected === null || expected === '0') {
    if (existing !== undefined) {
      throw new WeftError('WEFT_ERR_CONFLICT', `${k} already exists at resourceVersion ${existing.metadata.resourceVersion}; expected it not to exist`);
    }
    return;
  }
  if (existing === undefined) {
    throw new WeftError('WEFT_ERR_CONFLICT', `${k}: expected resourceVersion ${expected}, but the object does not exist`);
  }
  if (existing.metadata.resourceVersion !== expected) {
    throw new WeftError('WEFT_ERR_CONFLICT', `${k}: expected resourceVersion ${expected}, found ${existing.metadata.resourceVersion}`);
  }
}

/** Returns false when the object is missing and nothing was demanded of it. */
export function checkDeletePrecondition(key: ResourceKey, existing: Resource | undefined, expected: string | undefined): existing is Resource {
  const k = keyString(key);
  if (existing === undefined) {
    if (expected !== undefined) throw new WeftError('WEFT_ERR_NOT_FOUND', `${k} not found (expected resourceVersion ${expected})`);
    return false;
  }
  if (expected !== undefined && existing.metadata.resourceVersion !== expected) {
    throw new WeftError('WEFT_ERR_CONFLICT', `${k}: expected resourceVersion ${expected}, found ${existing.metadata.resourceVersion}`);
  }
  return true;
}

/**
 * The object as the store will hold it at `revision`. Client-supplied
 * resourceVersion, generation, uid and creationTimestamp are ignored.
 *
 * "Unchanged" compares apiVersion, spec, labels, annotations and status:
 * re-applying the same file must not bump anything, but a status-only or
 * apiVersion-only write is a real change and must not be dropped silently.
 */
export function planPut(existing: Resource | undefined, incoming: Resource, revision: number, now: () => Date = () => new Date()): PutPlan {
  // One JSON round trip gives the canonical form the file backend reads back,
  // so comparisons and reads agree before and after a restart, and the caller
  // keeps no reference into the store.
  const spec = canonical(incoming.spec);
  const status = incoming.status === undefined ? undefined : canonical(incoming.status);
  const labels = nonEmpty(incoming.metadata.labels);
  const annotations = nonEmpty(incoming.metadata.annotations);

  const specSame = existing !== undefined && isDeepStrictEqual(existing.spec, spec);
  if (
    existing !== undefined &&
    specSame &&
    existing.apiVersion === incoming.apiVersion &&
    isDeepStrictEqual(existing.metadata.labels, labels) &&
    isDeepStrictEqual(existing.metadata.annotations, annotations) &&
    isDeepStrictEqual(existing.status, status)
  ) {
    return { kind: 'unchanged', object: existing };
  }

  const metadata: ObjectMeta = { name: incoming.metadata.name };
  const ns = incoming.metadata.namespace;
  if (ns !== undefined && ns !== '') metadata.namespace = ns;
  if (labels !== undefined) metadata.labels = labels;
  if (annotations !== undefined) metadata.annotations = annotations;
  metadata.resourceVersion = String(revision);
  metadata.generation = existing === undefined ? 1 : (existing.metadata.generation ?? 0) + (specSame ? 0 : 1);
  metadata.creationTimestamp = existing?.metadata.creationTimestamp ?? now().toISOString();
  metadata.uid = existing?.metadata.uid ?? randomUUID();

  const object: Resource = { apiVersion: incoming.apiVersion, kind: incoming.kind, metadata, spec };
  if (status !== undefined) object.status = status;
  return { kind: 'write', type: existing === undefined ? 'ADDED' : 'MODIFIED', object };
}

/** The last state of a deleted object, stamped with the deleting revision. */
export function tombstone(existing: Resource, revision: number): Resource {
  return { ...existing, metadata: { ...existing.metadata, resourceVersion: String(revision) } };
}

/** A deep copy for handing out: callers must not be able to edit held objects. */
export function copyOut(r: Resource): Resource {
  return structuredClone(r);
}

function canonical<T>(v: T): T {
  return v === undefined ? v : (JSON.parse(JSON.stringify(v)) as T);
}

function nonEmpty(m: Record<string, string> | undefined): Record<string, string> | undefined {
  return m === undefined || Object.keys(m).length === 0 ? undefined : canonical(m);
}
