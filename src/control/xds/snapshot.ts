import { createHash } from 'node:crypto';
import { CLUSTER, CLUSTER_LOAD_ASSIGNMENT, LISTENER, PUSH_ORDER, ROUTE_CONFIGURATION, type XdsTypeUrl } from '../../xds/type-urls.js';
import { generateClusters } from './clusters.js';
import { generateEndpoints } from './endpoints.js';
import { generateGrpcClientListeners, generateOutboundListener, generateServerListener, generateTcpListeners } from './listeners.js';
import { PolicyIndex } from './policy/index.js';
import { filtersUsed } from './policy/route-policy.js';
import { attachRoutes, generateGrpcRouteConfigs, generateOutboundRouteConfig } from './routes.js';
import type { MeshInput, ProxyView } from './model.js';

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
  private readonly dynamic = new Map<string, SnapshotEntry | null>();

  constructor(private readonly tables: ReadonlyMap<XdsTypeUrl, TypeTable>) {}

  get(type: XdsTypeUrl, name: string): SnapshotEntry | undefined {
    const hit = this.tables.get(type)?.byName.get(name);
    if (hit !== undefined || type !== LISTENER) return hit;
    let dyn = this.dynamic.get(name);
    if (dyn === undefined) {
      const resource = generateServerListener(name);
      dyn = resource === undefined ? null : { name, resource, hash: contentHash(resource) };
      this.dynamic.set(name, dyn);
    }
    return dyn ?? undefined;
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

/** Translate the mesh, as one view sees it, into xDS resources. */
export function buildSnapshot(input: MeshInput, view: ProxyView): Snapshot {
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
  const tables = new Map<XdsTypeUrl, TypeTable>([
    // Proxyless gRPC gets clusters degraded to what it accepts (policy/cluster-policy.ts).
    [CLUSTER, table(generateClusters(input, view.client === 'grpc' ? 'grpc' : 'envoy'), byName, () => true)],
    [CLUSTER_LOAD_ASSIGNMENT, table(generateEndpoints(input), (r) => String(r.cluster_name), () => false)],
    // Wildcard LDS is Weft's proxy: it gets its own listeners, not gRPC's api_listeners.
    [LISTENER, table(listeners, byName, (r) => r.api_listener === undefined)],
    [ROUTE_CONFIGURATION, table(routes, byName, () => false)],
  ]);
  return new Snapshot(tables);
}
