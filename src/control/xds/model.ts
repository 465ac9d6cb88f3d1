import type { Resource } from '../../api/types.js';
import type { ServiceSpec } from '../../api/service/service.js';
import type { WorkloadSpec } from '../../api/workload/workload.js';
import type { HTTPRouteSpec } from '../../api/httproute/httproute.js';
import type { TCPRouteSpec } from '../../api/tcproute/tcproute.js';
import type { BackendPolicySpec } from '../../api/backendpolicy/backendpolicy.js';
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
}

export function viewKey(v: ProxyView): string {
  return v.client === 'grpc' ? `ns=${v.namespace},client=grpc` : `ns=${v.namespace}`;
}

export const SERVICE_LABEL = 'weft.dev/service';

export function refOf(r: Resource): ServiceRef {
  return { name: r.metadata.name, namespace: r.metadata.namespace ?? 'default' };
}

export function sortByName<T extends Resource>(list: readonly T[]): T[] {
  return [...list].sort((a, b) => {
    const an = `${a.metadata.namespace ?? ''}/${a.metadata.name}`;
    const bn = `${b.metadata.namespace ?? ''}/${b.metadata.name}`;
    return an < bn ? -1 : an > bn ? 1 : 0;
  });
}

/**
 * Workloads behind a Service: those in its namespace whose labels match its
 * selector, plus those registered for it by name (label `weft.dev/service`,
 * set by the workload registry from the proxy's WEFT_SERVICE). A Service
 * without a selector gets only the registered ones.
 */
export function workloadsOf(service: Resource<ServiceSpec>, workloads: readonly Resource<WorkloadSpec>[]): Resource<WorkloadSpec>[] {
  const ns = service.metadata.namespace ?? 'default';
  const selector = service.spec.selector;
  return workloads.filter((w) => {
    if ((w.metadata.namespace ?? 'default') !== ns) return false;
    const labels = { ...(w.metadata.labels ?? {}), ...(w.spec.labels ?? {}) };
    if (labels[SERVICE_LABEL] === service.metadata.name) return true;
    if (selector === undefined || Object.keys(selector).length === 0) return false;
    return Object.entries(selector).every(([k, v]) => labels[k] === v);
  });
}

/** Durations as google.protobuf.Duration. */
export function protoDuration(ms: number): { seconds: number; nanos?: number } {
  const seconds = Math.floor(ms / 1000);
  const nanos = Math.round((ms - seconds * 1000) * 1e6);
  return nanos === 0 ? { seconds } : { seconds, nanos };
}
