import type { Resource } from '../../api/types.js';
import type { WorkloadSpec } from '../../api/workload/workload.js';
import { CLUSTER_LOAD_ASSIGNMENT } from '../../xds/type-urls.js';
import { clusterName } from './names.js';
import type { ServiceSpec } from '../../api/service/service.js';
import { refOf, sortByName, WorkloadIndex, type MeshInput } from './model.js';

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
 * lists its ports, one that does not list targetPort is left out.
 */
export function generateEndpoints(input: MeshInput, index = new WorkloadIndex(input.workloads)): ClusterLoadAssignment[] {
  const out: ClusterLoadAssignment[] = [];
  for (const svc of sortByName(input.services)) out.push(...endpointsOf(svc, index.membersOf(svc)));
  return out;
}

/** The ClusterLoadAssignments of one Service (one per port), given its member workloads in name order. */
export function endpointsOf(svc: Resource<ServiceSpec>, members: readonly Resource<WorkloadSpec>[]): ClusterLoadAssignment[] {
  const out: ClusterLoadAssignment[] = [];
  for (const p of svc.spec.ports) {
    const target = p.targetPort ?? p.port;
    const groups = new Map<string, LocalityGroup>();
    for (const w of members) {
      if (w.spec.ports.length > 0 && !w.spec.ports.some((wp) => wp.port === target)) continue;
      const g = groupFor(groups, w);
      const weight = w.spec.weight ?? 1;
      g.weight += weight;
      g.endpoints.push({
        endpoint: { address: { socket_address: { address: w.spec.address, port_value: target } } },
        health_status: w.spec.health ?? 'HEALTHY',
        load_balancing_weight: { value: weight },
      });
    }
    out.push({
      '@type': CLUSTER_LOAD_ASSIGNMENT,
      cluster_name: clusterName(refOf(svc), p.port),
      endpoints: [...groups.values()].map((g) => ({
        locality: g.locality,
        load_balancing_weight: { value: g.weight },
        priority: 0,
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
