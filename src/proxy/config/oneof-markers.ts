/**
 * proto-loader with `oneofs: true` adds a marker field per set oneof, named after the
 * oneof group, whose value names the member that is set (`rule: 'any'` beside
 * `any: true`). Compilers read the members, never the markers, and must not mistake a
 * marker for a second member ("sets any, rule: exactly one is allowed"), so typed
 * configs and dumps drop them.
 *
 * The proxy's own ADS client decodes with protobufjs and emits no markers
 * (src/xds/proxy-protos.ts), so in a running proxy nothing is registered and stripping
 * returns its input unchanged. It remains for objects decoded by proto-loader
 * (tests and tools that reuse the control plane's package definition).
 */
import { isObject } from './proto-values.js';
import type { ProtoJson } from './types.js';

/**
 * Filled by registerOneofNames from a proto-loader package definition. Until then
 * nothing is a marker: static bootstraps, the proxy's xDS decoder and the resources a
 * worker gets from its primary carry none.
 */
let names: ReadonlySet<string> = new Set();

/** The oneof group names of every message of a proto-loader package definition. */
export function registerOneofNames(def: Record<string, unknown>): void {
  const s = new Set<string>();
  // Nested messages (MetadataKey.PathSegment's `segment`, …) are in their parent's descriptor.
  const visit = (t: Descriptor | undefined): void => {
    for (const o of t?.oneofDecl ?? []) if (typeof o.name === 'string') s.add(o.name);
    for (const n of t?.nestedType ?? []) visit(n);
  };
  for (const d of Object.values(def)) visit((d as { type?: Descriptor } | undefined)?.type);
  names = s;
}

interface Descriptor { readonly oneofDecl?: readonly { name?: string }[]; readonly nestedType?: readonly Descriptor[] }

/** A marker is a oneof group name whose string value names a sibling field that is set. */
export function stripOneofMarkers(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(stripOneofMarkers);
  if (!isObject(v)) return v;
  const groups = names;
  if (groups.size === 0) return v;
  const out: ProtoJson = {};
  for (const [k, val] of Object.entries(v)) {
    if (typeof val === 'string' && groups.has(k) && val !== k && Object.prototype.hasOwnProperty.call(v, val)) continue;
    out[k] = stripOneofMarkers(val);
  }
  return out;
}
