import { envoyPackageDefinition } from '../../xds/protos.js';
import { TYPE_PREFIX } from '../../xds/type-urls.js';
import type { SnapshotEntry, XdsResource } from './snapshot.js';

/**
 * An xDS resource as a `google.protobuf.Any` whose payload is already encoded.
 * proto-loader's serializer takes an Any in this form as is (no `@type` lookup,
 * no re-encoding), so a DiscoveryResponse built from these only encodes its
 * outer fields.
 */
export interface EncodedAny {
  type_url: string;
  value: Buffer;
}

type Serialize = (value: object) => Buffer;

/**
 * Encoded form of each resource object, computed once. Snapshots are immutable
 * and shared by every proxy with the same view, so one resource object is
 * encoded once however many streams send it; it goes when the snapshot does.
 */
const encoded = new WeakMap<XdsResource, EncodedAny>();
const serializers = new Map<string, Serialize | null>();

/**
 * By content hash, across snapshots: a rebuild makes new objects for every
 * resource, most of them unchanged; those are not encoded again. Two
 * generations, so what the last snapshots use stays and the rest ages out.
 */
const GENERATION_SIZE = 20_000;
let current = new Map<string, EncodedAny>();
let previous = new Map<string, EncodedAny>();

function byHash(key: string): EncodedAny | undefined {
  const hit = current.get(key);
  if (hit !== undefined) return hit;
  const old = previous.get(key);
  if (old !== undefined) remember(key, old);
  return old;
}

function remember(key: string, value: EncodedAny): void {
  if (current.size >= GENERATION_SIZE) {
    previous = current;
    current = new Map();
  }
  current.set(key, value);
}

function serializerFor(typeUrl: string): Serialize | undefined {
  let s = serializers.get(typeUrl);
  if (s === undefined) {
    const def = typeUrl.startsWith(TYPE_PREFIX) ? envoyPackageDefinition()[typeUrl.slice(TYPE_PREFIX.length)] : undefined;
    s = def !== undefined && 'serialize' in def ? (def.serialize as Serialize) : null;
    serializers.set(typeUrl, s);
  }
  return s ?? undefined;
}

/**
 * The resource as a pre-encoded Any. Its type is its own `@type`, else
 * `typeUrl`. A resource of a type that is not loaded is returned unchanged (the
 * response serializer then handles it as before: such a resource is a bug the
 * proto checker reports). The encoding is the one proto-loader's Any wrapper
 * would do (`Type.encode(Type.fromObject(resource))`: `@type` is not a field and
 * is ignored), so the bytes on the wire are the same.
 */
export function encodeResource(resource: XdsResource, typeUrl: string): EncodedAny | XdsResource {
  const hit = encoded.get(resource);
  if (hit !== undefined) return hit;
  const own = resource['@type'];
  const url = typeof own === 'string' ? own : typeUrl;
  const serialize = serializerFor(url);
  if (serialize === undefined) return resource;
  const out: EncodedAny = { type_url: url, value: serialize(resource) };
  encoded.set(resource, out);
  return out;
}

/**
 * encodeResource for a snapshot entry: also reuses the encoding of an earlier
 * resource with the same content hash (the entry's `hash` is that of the
 * resource's JSON, `@type` included).
 */
export function encodeEntry(entry: SnapshotEntry, typeUrl: string): EncodedAny | XdsResource {
  const hit = encoded.get(entry.resource);
  if (hit !== undefined) return hit;
  const key = `${typeUrl}\0${entry.hash}`;
  const same = byHash(key);
  if (same !== undefined) {
    encoded.set(entry.resource, same);
    return same;
  }
  const out = encodeResource(entry.resource, typeUrl);
  if (out !== entry.resource) remember(key, out as EncodedAny);
  return out;
}
