import { createHash } from 'node:crypto';
import { CLUSTER, CLUSTER_LOAD_ASSIGNMENT, LISTENER, PUSH_ORDER, ROUTE_CONFIGURATION, type XdsTypeUrl } from '../../xds/type-urls.js';
import { generateClusters } from './clusters.js';
import { clusterName } from './names.js';
import { generateEndpoints } from './endpoints.js';
import { generateGrpcClientListeners, generateOutboundListener, generateServerListener, generateTcpListeners } from './listeners.js';
import { PolicyIndex } from './policy/index.js';
import { filtersUsed } from './policy/route-policy.js';
import { attachRoutes, generateGrpcRouteConfigs, generateOutboundRouteConfig } from './routes.js';
import type { Resource } from '../../api/types.js';
import type { ServiceSpec } from '../../api/service/service.js';
import { inScope, isScoped, refOf, sortByName, WorkloadIndex, type MeshInput, type ProxyView } from './model.js';
import { generateInbound } from './inbound.js';
import { mtlsModeFor } from './security/inputs.js';
import { applyMeshTls, grpcDownstreamTlsSocket, serviceTlsOf, type ServiceTls } from './security/mesh-tls.js';

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
  /**
   * `serverListener` makes the listeners of gRPC servers (names carry their
   * address; default generateServerListener): a view whose server speaks
   * mTLS gets them with TLS (securedFor).
   */
  constructor(
    private readonly tables: ReadonlyMap<XdsTypeUrl, TypeTable>,
    private readonly serverListener: (name: string) => XdsResource | undefined = generateServerListener,
  ) {}

  get(type: XdsTypeUrl, name: string): SnapshotEntry | undefined {
    const t = this.tables.get(type);
    const hit = t?.byName.get(name);
    if (hit !== undefined || type !== LISTENER || t === undefined) return hit;
    t.dynamic ??= new Map();
    let dyn = t.dynamic.get(name);
    if (dyn === undefined) {
      const resource = this.serverListener(name);
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
    return new Snapshot(tables, this.serverListener);
  }

  /**
   * This snapshot plus some resources (wildcard ones: Weft's proxy receives
   * them), sharing every table it does not add to; `serverListener` replaces
   * how gRPC server listeners are made (the LDS table is then new, so its
   * dynamic listeners are not shared with this snapshot).
   */
  withAdded(add: ReadonlyMap<XdsTypeUrl, readonly XdsResource[]>, serverListener?: (name: string) => XdsResource | undefined): Snapshot {
    const tables = new Map(this.tables);
    const types = new Set(add.keys());
    if (serverListener !== undefined) types.add(LISTENER);
    for (const type of types) {
      const old = this.tables.get(type);
      const byName = new Map(old?.byName);
      const wildcard = [...(old?.wildcard ?? [])];
      for (const resource of add.get(type) ?? []) {
        const name = String(resource.name);
        if (!byName.has(name)) wildcard.push(name);
        byName.set(name, { name, resource, hash: contentHash(resource) });
      }
      tables.set(type, { byName, wildcard, version: versionOf([...byName.values()]) });
    }
    return new Snapshot(tables, serverListener ?? this.serverListener);
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

/** What clusters towards a Service need to know of its endpoints (security/mesh-tls.ts); the cache computes it once per rebuild. */
export type ServiceTlsSource = (service: Resource<ServiceSpec>) => ServiceTls;

/** ServiceTlsSource computed from the input alone (golden tests, callers without a cache). */
export function serviceTlsFromInput(input: MeshInput): ServiceTlsSource {
  let index: WorkloadIndex | undefined;
  return (svc) => serviceTlsOf(input, svc, (index ??= new WorkloadIndex(input.workloads)).membersOf(svc));
}

/**
 * Translate the mesh, as one view sees it, into xDS resources. Only the
 * Services in the view's scope are translated. `endpoints`, when given,
 * supplies the EDS entries of each Service instead of translating them here.
 * The view's own Service (`view.service`) is left to securedFor: this is the
 * part proxies of every Service of a view share.
 */
export function buildSnapshot(input: MeshInput, view: ProxyView, endpoints?: EndpointSource, tls?: ServiceTlsSource): Snapshot {
  const base = buildSharedSnapshot(input, view, endpoints, tls ?? serviceTlsFromInput(input));
  return view.service === undefined ? base : securedFor(base, input, view);
}

/**
 * The resources that depend on the proxy's own Service, over `base` (the
 * snapshot of the same view without `service`): a Weft sidecar gets its
 * inbound listener and clusters (inbound.ts); a proxyless gRPC server with
 * mesh certificates gets server listeners with mTLS unless its Service's mode
 * is DISABLE. `input` is the whole mesh (RBAC names Services of any namespace).
 */
export function securedFor(base: Snapshot, input: MeshInput, view: ProxyView): Snapshot {
  if (view.service === undefined) return base;
  const own = { namespace: view.namespace, name: view.service };
  if (view.client === 'grpc') {
    if (view.grpcMtls !== true || mtlsModeFor(input, own).mode === 'DISABLE') return base;
    const socket = grpcDownstreamTlsSocket();
    return base.withAdded(new Map(), (name) => {
      const l = generateServerListener(name);
      if (l === undefined) return undefined;
      return { ...l, default_filter_chain: { ...(l.default_filter_chain as Record<string, unknown>), transport_socket: socket } };
    });
  }
  const inbound = generateInbound(input, own, view.appHost);
  if (inbound === undefined) return base;
  return base.withAdded(new Map<XdsTypeUrl, XdsResource[]>([[LISTENER, [inbound.listener]], [CLUSTER, inbound.clusters]]));
}

function buildSharedSnapshot(input: MeshInput, view: ProxyView, endpoints: EndpointSource | undefined, tls: ServiceTlsSource): Snapshot {
  const whole = input;
  input = scopedInput(input, view);
  const attached = attachRoutes(input);
  const policies = new PolicyIndex(input);
  const grpcRoutes = generateGrpcRouteConfigs(input, view, attached, policies);
  const outboundRoutes = generateOutboundRouteConfig(input, view, attached, policies);
  const grpcUsed = new Map(grpcRoutes.map((r) => [r.name, filtersUsed(r)]));
  const listeners = [
    ...generateGrpcClientListeners(input, (name) => grpcUsed.get(name) ?? { fault: false, rateLimit: false }),
    generateOutboundListener(filtersUsed(outboundRoutes), input.mesh),
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
  // Proxyless gRPC gets clusters degraded to what it accepts (policy/cluster-policy.ts).
  const flavour = view.client === 'grpc' ? 'grpc' : 'envoy';
  const clusters = generateClusters(input, flavour);
  // mTLS towards endpoints that answer it; proxyless gRPC only when it has certificates.
  if (flavour === 'envoy' || view.grpcMtls === true) {
    const ports = new Map<string, { svc: Resource<ServiceSpec>; port: number }>();
    for (const svc of input.services) for (const p of svc.spec.ports) ports.set(clusterName(refOf(svc), p.port), { svc, port: p.port });
    for (const c of clusters) {
      const at = ports.get(c.name);
      if (at !== undefined) applyMeshTls(c, whole, at.svc, at.port, tls(at.svc), flavour);
    }
  }
  const tables = new Map<XdsTypeUrl, TypeTable>([
    [CLUSTER, table(clusters, byName, () => true)],
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
