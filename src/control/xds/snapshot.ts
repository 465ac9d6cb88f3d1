import { createHash } from 'node:crypto';
import { CLUSTER, CLUSTER_LOAD_ASSIGNMENT, LISTENER, PUSH_ORDER, ROUTE_CONFIGURATION, type XdsTypeUrl } from '../../xds/type-urls.js';
import { generateClusters } from './clusters.js';
import { generateEndpoints } from './endpoints.js';
import { generateGrpcClientListeners, generateOutboundListener, generateServerListener, generateTcpListeners } from './listeners.js';
import { PolicyIndex } from './policy/index.js';
import { filtersUsed } from './policy/route-policy.js';
import { attachRoutes, generateGrpcRouteConfigs, generateOutboundRouteConfig } from './routes.js';
import type { Resource } from '../../api/types.js';
import type { ServiceSpec } from '../../api/service/service.js';
import { inScope, isScoped, sortByName, type MeshInput, type ProxyView } from './model.js';

export type XdsResource = Record<string, unknown>;

export interface SnapshotEntry {
  name: string;
  resource: XdsResource;
  /** Hash of the resource's content: a response's version is made from these. */
  hash: string;
}

interface TypeTable {
  byName: Map<string, SnapshotEntry>;
  /** What a wildcard subscriber (Weft's proxy: LDS, CDS) receives. */
  wildcard: string[];
  version: string;
  /** LDS: listeners made on request (see Snapshot.get); kept with the table, so a snapshot that reuses the table reuses them. */
  dynamic?: Map<string, SnapshotEntry | null>;
}

export function contentHash(value: unknown): string {
  return createHash('sha256').update(JSON.stringify(value)).digest('hex').slice(0, 16);
}

/** The version of a set of entries: equal sets, equal versions. */
export function versionOf(entries: readonly SnapshotEntry[]): string {
  const h = createHash('sha256');
  for (const e of [...entries].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) h.update(`${e.name}\0${e.hash}\n`);
  return h.digest('hex').slice(0, 16);
}

/**
 * Everything one view of the mesh needs, per type. Immutable once built; shared
 * by every proxy with that view. Names that are computed on request (the
 * listeners of gRPC servers, whose names carry their address) are made on
 * first lookup.
 */
export class Snapshot {
  constructor(private readonly tables: ReadonlyMap<XdsTypeUrl, TypeTable>) {}

  get(type: XdsTypeUrl, name: string): SnapshotEntry | undefined {
    const t = this.tables.get(type);
    const hit = t?.byName.get(name);
    if (hit !== undefined || type !== LISTENER || t === undefined) return hit;
    t.dynamic ??= new Map();
    let dyn = t.dynamic.get(name);
    if (dyn === undefined) {
      const resource = generateServerListener(name);
      dyn = resource === undefined ? null : { name, resource, hash: contentHash(resource) };
      t.dynamic.set(name, dyn);
    }
    return dyn ?? undefined;
  }

  /**
   * The table of a type, as an opaque token: equal tokens, equal content (a
   * snapshot made by withEndpoints shares the tables it did not change), so
   * what is derived from a table can be cached by it.
   */
  token(type: XdsTypeUrl): object | undefined {
    return this.tables.get(type);
  }

  /**
   * This snapshot with some ClusterLoadAssignments replaced (`null`: removed)
   * and every other table shared. The incremental path of the cache: a
   * Workload change touches only the EDS of the Services it belongs to.
   */
  withEndpoints(changes: ReadonlyMap<string, SnapshotEntry | null>): Snapshot {
    const old = this.tables.get(CLUSTER_LOAD_ASSIGNMENT);
    const byName = new Map(old?.byName);
    for (const [name, e] of changes) {
      if (e === null) byName.delete(name);
      else byName.set(name, e);
    }
    const tables = new Map(this.tables);
    tables.set(CLUSTER_LOAD_ASSIGNMENT, { byName, wildcard: [], version: versionOf([...byName.values()]) });
    return new Snapshot(tables);
  }

  wildcard(type: XdsTypeUrl): SnapshotEntry[] {
    const t = this.tables.get(type);
    if (t === undefined) return [];
    return t.wildcard.map((n) => t.byName.get(n)).filter((e): e is SnapshotEntry => e !== undefined);
  }

  /** Version of the whole table (for diagnostics; responses carry the version of what they hold). */
  version(type: XdsTypeUrl): string {
    return this.tables.get(type)?.version ?? '';
  }

  names(type: XdsTypeUrl): string[] {
    return [...(this.tables.get(type)?.byName.keys() ?? [])];
  }

  /** Plain JSON of every static resource, by type (golden files, config dumps). */
  toJSON(): Record<string, XdsResource[]> {
    const out: Record<string, XdsResource[]> = {};
    for (const t of PUSH_ORDER) {
      const table = this.tables.get(t);
      if (table) out[t] = [...table.byName.values()].map((e) => e.resource);
    }
    return out;
  }
}

function table(resources: readonly XdsResource[], nameOf: (r: XdsResource) => string, wildcard: (r: XdsResource) => boolean): TypeTable {
  const byName = new Map<string, SnapshotEntry>();
  const wild: string[] = [];
  for (const resource of resources) {
    const name = nameOf(resource);
    byName.set(name, { name, resource, hash: contentHash(resource) });
    if (wildcard(resource)) wild.push(name);
  }
  return { byName, wildcard: wild, version: versionOf([...byName.values()]) };
}

const byName = (r: XdsResource): string => String(r.name);

/** The input with only the Services the view may talk to (model.ts: inScope). */
export function scopedInput(input: MeshInput, view: ProxyView): MeshInput {
  if (!isScoped(view)) return input;
  return { ...input, services: input.services.filter((s) => inScope(view, s.metadata.namespace ?? 'default', s.metadata.name)) };
}

/** EDS entries of a Service, given by the caller (the cache shares them across views and rebuilds). */
export type EndpointSource = (service: Resource<ServiceSpec>) => readonly SnapshotEntry[];

/** A SnapshotEntry for a ClusterLoadAssignment. */
export function endpointEntry(cla: XdsResource): SnapshotEntry {
  return { name: String(cla.cluster_name), resource: cla, hash: contentHash(cla) };
}

/**
 * Translate the mesh, as one view sees it, into xDS resources. Only the
 * Services in the view's scope are translated. `endpoints`, when given,
 * supplies the EDS entries of each Service instead of translating them here.
 */
export function buildSnapshot(input: MeshInput, view: ProxyView, endpoints?: EndpointSource): Snapshot {
  input = scopedInput(input, view);
  const attached = attachRoutes(input);
  const policies = new PolicyIndex(input);
  const grpcRoutes = generateGrpcRouteConfigs(input, view, attached, policies);
  const outboundRoutes = generateOutboundRouteConfig(input, view, attached, policies);
  const grpcUsed = new Map(grpcRoutes.map((r) => [r.name, filtersUsed(r)]));
  const listeners = [
    ...generateGrpcClientListeners(input, (name) => grpcUsed.get(name) ?? { fault: false, rateLimit: false }),
    generateOutboundListener(filtersUsed(outboundRoutes)),
    ...generateTcpListeners(input, view),
  ];
  const routes = [...grpcRoutes, outboundRoutes];
  let eds: TypeTable;
  if (endpoints === undefined) eds = table(generateEndpoints(input, undefined, view.locality), (r) => String(r.cluster_name), () => false);
  else {
    const byName = new Map<string, SnapshotEntry>();
    for (const svc of sortByName(input.services)) for (const e of endpoints(svc)) byName.set(e.name, e);
    eds = { byName, wildcard: [], version: versionOf([...byName.values()]) };
  }
  const tables = new Map<XdsTypeUrl, TypeTable>([
    // Proxyless gRPC gets clusters degraded to what it accepts (policy/cluster-policy.ts).
    [CLUSTER, table(generateClusters(input, view.client === 'grpc' ? 'grpc' : 'envoy'), byName, () => true)],
    [CLUSTER_LOAD_ASSIGNMENT, eds],
    // Wildcard LDS is Weft's proxy: it gets its own listeners, not gRPC's api_listeners.
    [LISTENER, table(listeners, byName, (r) => r.api_listener === undefined)],
    [ROUTE_CONFIGURATION, table(routes, byName, () => false)],
  ]);
  return new Snapshot(tables);
}

/** A subscription to one type: wildcard flag and names, and `key`, their canonical string. */
export interface Subscription {
  wildcard: boolean;
  names: ReadonlySet<string>;
  key: string;
}

export function subscriptionKey(wildcard: boolean, names: Iterable<string>): string {
  return `${wildcard ? '*' : ''}\n${[...names].join('\n')}`;
}

/** What one subscription receives of one type from one snapshot. */
export interface Resolved {
  entries: SnapshotEntry[];
  version: string;
  /** Encoded on first send (SotW). */
  resources: unknown[] | undefined;
}

/**
 * Per table (Snapshot.token: shared by snapshots that did not change that
 * type), per subscription key. Dropped with the table.
 */
const resolvedCache = new WeakMap<object, Map<string, Resolved>>();

/**
 * What a subscription receives of `type` from `snap`, with its version.
 * Computed once per table and subscription and shared by every stream
 * subscribed alike (SotW and delta), so a new snapshot costs one hash per
 * distinct subscription, not per proxy; a type whose table a snapshot reused
 * costs nothing.
 */
export function resolveSubscription(snap: Snapshot, type: XdsTypeUrl, sub: Subscription): Resolved {
  const token = snap.token(type);
  let byKey = token === undefined ? undefined : resolvedCache.get(token);
  if (byKey === undefined) {
    byKey = new Map();
    if (token !== undefined) resolvedCache.set(token, byKey);
  }
  let r = byKey.get(sub.key);
  if (r === undefined) {
    const out = new Map<string, SnapshotEntry>();
    if (sub.wildcard) for (const e of snap.wildcard(type)) out.set(e.name, e);
    for (const n of sub.names) {
      const e = snap.get(type, n);
      if (e) out.set(n, e);
    }
    const entries = [...out.values()];
    r = { entries, version: versionOf(entries), resources: undefined };
    byKey.set(sub.key, r);
  }
  return r;
}
