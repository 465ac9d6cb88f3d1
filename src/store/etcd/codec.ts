import type { Resource, ResourceKey } from '../../api/types.js';

/**
 * Values are the object's JSON without metadata.resourceVersion: etcd assigns
 * the revision only when the transaction commits, so the version is the key's
 * mod_revision, added on every read.
 */
export function encodeObject(o: Resource): Buffer {
  const { resourceVersion: _rv, ...metadata } = o.metadata;
  return Buffer.from(JSON.stringify({ ...o, metadata }));
}

export type Decoded = { ok: true; object: Resource } | { ok: false; reason: string };

/** The object stored at `key`, stamped with `revision`; refuses values that are not one. */
export function decodeObject(key: ResourceKey, value: Buffer, revision: string): Decoded {
  let v: unknown;
  try {
    v = JSON.parse(value.toString('utf8'));
  } catch (e) {
    return { ok: false, reason: `value is not JSON: ${e instanceof Error ? e.message : String(e)}` };
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return { ok: false, reason: 'value is not a JSON object' };
  const o = v as Partial<Resource>;
  const md = o.metadata;
  if (typeof o.kind !== 'string' || typeof md !== 'object' || md === null || typeof md.name !== 'string') {
    return { ok: false, reason: 'value has no kind or metadata.name' };
  }
  // The key is the truth about identity; a value that disagrees was not written by Weft.
  if (o.kind !== key.kind || md.name !== key.name || (md.namespace ?? '') !== key.namespace) {
    return { ok: false, reason: `value names ${o.kind}/${md.namespace ?? ''}/${md.name}, not the key's object` };
  }
  md.resourceVersion = revision;
  return { ok: true, object: o as Resource };
}
