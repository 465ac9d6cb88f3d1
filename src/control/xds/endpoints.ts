import type { Resource } from '../../api/types.js';
import type { WorkloadSpec } from '../../api/workload/workload.js';
import { CLUSTER_LOAD_ASSIGNMENT } from '../../xds/type-urls.js';
import { clusterName } from './names.js';
import type { ServiceSpec } from '../../api/service/service.js';
import { refOf, sortByName, WorkloadIndex, type MeshInput, type ViewLocality } from './model.js';
import { inboundPortOf, TLS_ENDPOINT_METADATA, tlsCapable } from './security/mesh-tls.js';

export type ClusterLoadAssignment = Record<string, unknown> & { cluster_name: string };

interface LocalityGroup {
  locality: { region?: string; zone?: string; sub_zone?: string };
  weight: number;
  endpoints: Record<string, unknown>[];
}

/**
 * One ClusterLoadAssignment per Service port. Endpoints are grouped by
 * locality; every group carries a `locality` (gRPC NACKs without one) and a
 * `load_balancing_weight` (gRPC silently drops a group without one). A group's
 * weight is the sum of its endpoints' weights, so each endpoint gets the same
 * share whichever locality it sits in.
 *
 * A workload serves a Service port at `address:targetPort`. When the workload
 * lists its ports, one that does not list targetPort is left out. A workload
 * with a Weft sidecar (annotation `weft.dev/inbound-port`) is reached at
 * `address:<inbound port>` instead, every Service port alike (the SNI or Host
 * names the port there: inbound.ts). Endpoints that answer mTLS carry
 * `envoy.transport_socket_match: {tlsMode: weft}` (security/mesh-tls.ts).
 *
 * Priorities (locality failover, as Istio does): without `locality` (the
 * proxy's, from its xDS node) every group is at priority 0. With it, a group's
 * priority is how far it is from the proxy: same region, zone and subzone → 0,
 * same region and zone → 1, same region → 2, other → 3; then the levels used
 * are compacted to 0, 1, ... (Envoy wants contiguous priorities), so the
 * nearest group present is always priority 0.
 */
export function generateEndpoints(input: MeshInput, index = new WorkloadIndex(input.workloads), locality?: ViewLocality): ClusterLoadAssignment[] {
  const out: ClusterLoadAssignment[] = [];
  for (const svc of sortByName(input.services)) out.push(...endpointsOf(svc, index.membersOf(svc), locality));
  return out;
}

/** How far a group's locality is from the proxy's: 0 (same subzone) to 3 (other region). */
export function localityDistance(proxy: ViewLocality, l: LocalityGroup['locality']): number {
  if ((l.region ?? '') !== proxy.region) return 3;
  if ((l.zone ?? '') !== proxy.zone) return 2;
  if ((l.sub_zone ?? '') !== proxy.subzone) return 1;
  return 0;
}

/** The ClusterLoadAssignments of one Service (one per port), given its member workloads in name order. */
export function endpointsOf(svc: Resource<ServiceSpec>, members: readonly Resource<WorkloadSpec>[], locality?: ViewLocality): ClusterLoadAssignment[] {
  const out: ClusterLoadAssignment[] = [];
  for (const p of svc.spec.ports) {
    const target = p.targetPort ?? p.port;
    const groups = new Map<string, LocalityGroup>();
    for (const w of members) {
      if (w.spec.ports.length > 0 && !w.spec.ports.some((wp) => wp.port === target)) continue;
      const g = groupFor(groups, w);
      const weight = w.spec.weight ?? 1;
      g.weight += weight;
      const e: Record<string, unknown> = {
        endpoint: { address: { socket_address: { address: w.spec.address, port_value: inboundPortOf(w) ?? target } } },
        health_status: w.spec.health ?? 'HEALTHY',
        load_balancing_weight: { value: weight },
      };
      if (tlsCapable(w)) e.metadata = TLS_ENDPOINT_METADATA;
      g.endpoints.push(e);
    }
    const list = [...groups.values()];
    const priorityOf = priorities(list, locality);
    out.push({
      '@type': CLUSTER_LOAD_ASSIGNMENT,
      cluster_name: clusterName(refOf(svc), p.port),
      endpoints: list.map((g, i) => ({
        locality: g.locality,
        load_balancing_weight: { value: g.weight },
        priority: priorityOf[i]!,
        lb_endpoints: g.endpoints,
      })),
    });
  }
  return out;
}

function groupFor(groups: Map<string, LocalityGroup>, w: Resource<WorkloadSpec>): LocalityGroup {
  const l = w.spec.locality ?? {};
  const key = `${l.region ?? ''}/${l.zone ?? ''}/${l.subzone ?? ''}`;
  let g = groups.get(key);
  if (g === undefined) {
    const locality: LocalityGroup['locality'] = {};
    if (l.region !== undefined) locality.region = l.region;
    if (l.zone !== undefined) locality.zone = l.zone;
    if (l.subzone !== undefined) locality.sub_zone = l.subzone;
    g = { locality, weight: 0, endpoints: [] };
    groups.set(key, g);
  }
  return g;
}

/** The priority of each group: 0 without a proxy locality, else its distance with the used levels compacted. */
function priorities(groups: readonly LocalityGroup[], locality: ViewLocality | undefined): number[] {
  if (locality === undefined) return groups.map(() => 0);
  const distance = groups.map((g) => localityDistance(locality, g.locality));
  const levels = [...new Set(distance)].sort((a, b) => a - b);
  return distance.map((d) => levels.indexOf(d));
}
