import type { Resource } from '../../api/types.js';
import type { ServiceSpec } from '../../api/service/service.js';
import type { WorkloadSpec } from '../../api/workload/workload.js';
import type { HTTPRouteSpec } from '../../api/httproute/httproute.js';
import type { TCPRouteSpec } from '../../api/tcproute/tcproute.js';
import type { BackendPolicySpec } from '../../api/backendpolicy/backendpolicy.js';
import type { MeshSpec } from '../../api/mesh/mesh.js';
import type { SecurityPolicySpec } from '../../api/securitypolicy/securitypolicy.js';
import type { ServiceRef } from './names.js';

/**
 * What the generators read: the resources of the mesh (from the store, plus
 * workloads registered by connected proxies), already validated at the boundary.
 */
export interface MeshInput {
  services: readonly Resource<ServiceSpec>[];
  workloads: readonly Resource<WorkloadSpec>[];
  httpRoutes: readonly Resource<HTTPRouteSpec>[];
  grpcRoutes: readonly Resource<GrpcRouteSpecLike>[];
  tcpRoutes?: readonly Resource<TCPRouteSpec>[];
  backendPolicies?: readonly Resource<BackendPolicySpec>[];
  /** The Mesh named `default` (trust domain, default mTLS mode); absent: defaults (security/inputs.ts). */
  mesh?: Resource<MeshSpec>;
  securityPolicies?: readonly Resource<SecurityPolicySpec>[];
}

/**
 * The slice of GRPCRoute (Gateway API v1) the generators use. Structural, so it
 * holds whether or not `api/grpcroute` is loaded.
 */
export interface GrpcRouteSpecLike {
  parentRefs?: { group?: string; kind?: string; namespace?: string; name: string; port?: number; sectionName?: string }[];
  hostnames?: string[];
  rules?: {
    name?: string;
    matches?: {
      method?: { type?: 'Exact' | 'RegularExpression'; service?: string; method?: string };
      headers?: { type?: 'Exact' | 'RegularExpression'; name: string; value: string }[];
    }[];
    filters?: {
      type: string;
      requestHeaderModifier?: HeaderModifier;
      responseHeaderModifier?: HeaderModifier;
      requestMirror?: { backendRef: BackendRefLike; percent?: number; fraction?: { numerator: number; denominator?: number } };
    }[];
    backendRefs?: (BackendRefLike & { weight?: number })[];
  }[];
}

export interface HeaderModifier {
  set?: { name: string; value: string }[];
  add?: { name: string; value: string }[];
  remove?: string[];
}

export interface BackendRefLike {
  group?: string;
  kind?: string;
  name: string;
  namespace?: string;
  port?: number;
}

/** Whom a snapshot is for. Proxies with equal views share snapshots. */
export interface ProxyView {
  /** Namespace of the proxy: bare Service names resolve in it. */
  namespace: string;
  /**
   * Who consumes it. `grpc`: proxyless gRPC (node.user_agent_name starts with
   * "gRPC"), which NACKs some Cluster settings Envoy and Weft's proxy accept, so
   * its clusters are degraded (see policy/cluster-policy.ts). Default `proxy`.
   */
  client?: 'proxy' | 'grpc';
  /**
   * Scope (node metadata WEFT_NAMESPACES / WEFT_DEPENDENCIES, see
   * registry/node-metadata.ts): the proxy sees the Services of its own
   * namespace, of these namespaces, and these hosts (`name.namespace`).
   * Neither given: every namespace (Istio's default without a Sidecar), which
   * is what Weft did before scoping existed. Kept sorted and deduplicated
   * (scopeOf) so that equal scopes give equal keys and share snapshots.
   */
  namespaces?: readonly string[];
  dependencies?: readonly string[];
  /**
   * Where the proxy runs (`node.locality`, see localityOf). Given: EDS
   * priorities are relative to it (endpoints.ts); absent: every locality at
   * priority 0, and the endpoint lists are shared with every other such view.
   */
  locality?: ViewLocality;
  /**
   * The Service a Weft sidecar serves (node metadata WEFT_SERVICE): its
   * snapshot adds the inbound listener and clusters of that Service
   * (inbound.ts). Proxies of one Service share a snapshot; everything but LDS
   * and CDS is shared with the view without `service` (snapshot-cache.ts).
   */
  service?: string;
  /**
   * Where the sidecar's inbound clusters deliver (the application's host), when
   * not 127.0.0.1: a workload registered on another loopback address
   * (127.0.0.2, …) — several instances of one Service on one machine, as
   * `weft up` runs them — is reached there, not at its neighbour's app. Any
   * other workload address keeps 127.0.0.1, so apps that listen on loopback
   * only (inside a network namespace, say) still get their traffic.
   */
  appHost?: string;
  /**
   * Proxyless gRPC that has certificate providers in its bootstrap (node
   * metadata WEFT_GRPC_MTLS, written by `weft bootstrap grpc --cert-dir`): its
   * clusters and server listeners carry TLS in the shape gRPC understands
   * (security/grpc-tls.ts). Without it gRPC's snapshots stay plaintext.
   */
  grpcMtls?: boolean;
}

/** A proxy's locality (node.locality), normalized: absent fields are ''. */
export interface ViewLocality {
  region: string;
  zone: string;
  subzone: string;
}

/** The locality of an xDS node, or undefined when it has none (every field empty or missing). */
export function localityOf(l: { region?: string | null; zone?: string | null; sub_zone?: string | null } | null | undefined): ViewLocality | undefined {
  if (l === undefined || l === null) return undefined;
  const str = (v: unknown): string => (typeof v === 'string' ? v : '');
  const out = { region: str(l.region), zone: str(l.zone), subzone: str(l.sub_zone) };
  return out.region === '' && out.zone === '' && out.subzone === '' ? undefined : out;
}

/** A locality as one string (cache and view keys). */
export function localityKey(l: ViewLocality): string {
  return `${l.region}/${l.zone}/${l.subzone}`;
}

export function viewKey(v: ProxyView): string {
  let key = v.client === 'grpc' ? `ns=${v.namespace},client=grpc` : `ns=${v.namespace}`;
  if (v.locality !== undefined) key += `,locality=${localityKey(v.locality)}`;
  if (v.namespaces !== undefined) key += `,namespaces=${v.namespaces.join('|')}`;
  if (v.dependencies !== undefined) key += `,deps=${v.dependencies.join('|')}`;
  if (v.service !== undefined) key += `,svc=${v.service}`;
  if (v.appHost !== undefined) key += `,app=${v.appHost}`;
  if (v.grpcMtls === true) key += ',mtls';
  return key;
}

/** Whether a view has a scope (otherwise it sees every namespace). */
export function isScoped(v: ProxyView): boolean {
  return v.namespaces !== undefined || v.dependencies !== undefined;
}

/** Whether a Service (`namespace`, `name`) is in a view's scope. */
export function inScope(v: ProxyView, namespace: string, name: string): boolean {
  if (!isScoped(v)) return true;
  if (namespace === v.namespace) return true;
  if (v.namespaces?.includes(namespace) === true) return true;
  return v.dependencies?.includes(`${name}.${namespace}`) === true;
}

/**
 * A scope from the two metadata values (comma lists, or JSON arrays of
 * strings). `*` among the namespaces means all: no scope. Hosts may be written
 * `name.namespace` or `name.namespace.svc[.cluster.local]`; a bare `name` means
 * the proxy's own namespace.
 */
export function scopeOf(namespace: string, namespaces: unknown, dependencies: unknown): Pick<ProxyView, 'namespaces' | 'dependencies'> {
  const list = (v: unknown): string[] | undefined => {
    if (v === undefined || v === null) return undefined;
    let items: unknown[];
    if (Array.isArray(v)) items = v;
    else if (typeof v === 'string') {
      const t = v.trim();
      if (t === '') return undefined;
      try {
        items = t.startsWith('[') ? (JSON.parse(t) as unknown[]) : t.split(',');
      } catch {
        items = t.split(',');
      }
    } else return undefined;
    return items.filter((x): x is string => typeof x === 'string').map((x) => x.trim()).filter((x) => x !== '');
  };
  const out: Pick<ProxyView, 'namespaces' | 'dependencies'> = {};
  const ns = list(namespaces);
  const deps = list(dependencies);
  if (ns?.includes('*') === true) return out;
  if (ns !== undefined) out.namespaces = [...new Set(ns.filter((n) => n !== namespace))].sort();
  if (deps !== undefined) {
    const hosts = deps.map((h) => {
      const parts = h.replace(/\.svc(\.cluster\.local)?$/, '').split('.');
      return parts.length === 1 ? `${parts[0]}.${namespace}` : `${parts[0]}.${parts[1]}`;
    });
    out.dependencies = [...new Set(hosts)].sort();
  }
  return out;
}

export const SERVICE_LABEL = 'weft.dev/service';

export function refOf(r: Resource): ServiceRef {
  return { name: r.metadata.name, namespace: r.metadata.namespace ?? 'default' };
}

export function sortByName<T extends Resource>(list: readonly T[]): T[] {
  const keyed = list.map((r) => ({ r, k: `${r.metadata.namespace ?? ''}/${r.metadata.name}` }));
  keyed.sort((a, b) => (a.k < b.k ? -1 : a.k > b.k ? 1 : 0));
  return keyed.map((x) => x.r);
}

/** A workload's labels: metadata.labels overlaid with spec.labels. Computed once per object. */
const mergedCache = new WeakMap<Resource<WorkloadSpec>, Readonly<Record<string, string>>>();
export function labelsOf(w: Resource<WorkloadSpec>): Readonly<Record<string, string>> {
  let l = mergedCache.get(w);
  if (l === undefined) {
    const meta = w.metadata.labels;
    const spec = w.spec.labels;
    l = meta === undefined || Object.keys(meta).length === 0 ? (spec ?? {}) : spec === undefined ? meta : { ...meta, ...spec };
    mergedCache.set(w, l);
  }
  return l;
}

function selects(service: Resource<ServiceSpec>, labels: Readonly<Record<string, string>>): boolean {
  if (labels[SERVICE_LABEL] === service.metadata.name) return true;
  const selector = service.spec.selector;
  if (selector === undefined) return false;
  let any = false;
  for (const k in selector) {
    any = true;
    if (labels[k] !== selector[k]) return false;
  }
  return any;
}

/** Whether `w` is behind `service` (same rule as workloadsOf). */
export function isMember(service: Resource<ServiceSpec>, w: Resource<WorkloadSpec>): boolean {
  if ((w.metadata.namespace ?? 'default') !== (service.metadata.namespace ?? 'default')) return false;
  return selects(service, labelsOf(w));
}

/**
 * Workloads behind a Service: those in its namespace whose labels match its
 * selector, plus those registered for it by name (label `weft.dev/service`,
 * set by the workload registry from the proxy's WEFT_SERVICE). A Service
 * without a selector gets only the registered ones.
 */
export function workloadsOf(service: Resource<ServiceSpec>, workloads: readonly Resource<WorkloadSpec>[]): Resource<WorkloadSpec>[] {
  return workloads.filter((w) => isMember(service, w));
}

/**
 * Workloads indexed by namespace and label (`k=v`), built once per mesh input:
 * the members of a Service are found from its rarest selector label instead of
 * by scanning every workload for every Service.
 */
export class WorkloadIndex {
  private readonly byLabel = new Map<string, Resource<WorkloadSpec>[]>();

  constructor(workloads: readonly Resource<WorkloadSpec>[]) {
    for (const w of sortByName(workloads)) {
      const ns = w.metadata.namespace ?? 'default';
      const labels = labelsOf(w);
      for (const k in labels) {
        const key = `${ns}\0${k}\0${labels[k]}`;
        let list = this.byLabel.get(key);
        if (list === undefined) this.byLabel.set(key, (list = []));
        list.push(w);
      }
    }
  }

  /** workloadsOf(service, all workloads), in namespace/name order. */
  membersOf(service: Resource<ServiceSpec>): Resource<WorkloadSpec>[] {
    const ns = service.metadata.namespace ?? 'default';
    const registered = this.byLabel.get(`${ns}\0${SERVICE_LABEL}\0${service.metadata.name}`) ?? [];
    let smallest: Resource<WorkloadSpec>[] | undefined;
    for (const [k, v] of Object.entries(service.spec.selector ?? {})) {
      const list = this.byLabel.get(`${ns}\0${k}\0${v}`) ?? [];
      if (smallest === undefined || list.length < smallest.length) smallest = list;
    }
    if (smallest === undefined || smallest.length === 0) return registered;
    const selected = smallest.filter((w) => selects(service, labelsOf(w)));
    if (registered.length === 0) return selected;
    return sortByName([...new Set([...registered, ...selected])]);
  }
}

/** Durations as google.protobuf.Duration. */
export function protoDuration(ms: number): { seconds: number; nanos?: number } {
  const seconds = Math.floor(ms / 1000);
  const nanos = Math.round((ms - seconds * 1000) * 1e6);
  return nanos === 0 ? { seconds } : { seconds, nanos };
}
