/**
 * The mesh the xDS benchmark serves: M Services (one HTTP port each) and E
 * Workloads spread round-robin over them (workload j belongs to service j % M),
 * plus the HTTPRoute the convergence phase rewrites and the endpoint changes of
 * the churn phase. Addresses: seeded workloads 10.0.x.y, churned ones
 * 10.100+.x.y, so every churned address is new and unique in the mesh.
 */
import type { Resource } from '../../src/api/types.js';

export const NAMESPACE = 'default';
export const SERVICE_PORT = 8080;

export function serviceName(i: number): string {
  return `svc-${String(i).padStart(4, '0')}`;
}

export function workloadName(j: number): string {
  return `wl-${String(j).padStart(5, '0')}`;
}

/** The CDS/EDS name the control plane gives service i's port (names.ts: clusterName). */
export function clusterNameOf(i: number): string {
  return `outbound|${SERVICE_PORT}||${serviceName(i)}.${NAMESPACE}.svc.cluster.local`;
}

export function service(i: number): Resource {
  return {
    apiVersion: 'weft.dev/v1alpha1',
    kind: 'Service',
    metadata: { name: serviceName(i), namespace: NAMESPACE },
    spec: { selector: { app: serviceName(i) }, ports: [{ name: 'http', protocol: 'http', port: SERVICE_PORT, targetPort: SERVICE_PORT }] },
  };
}

function seededAddress(j: number): string {
  return `10.0.${(j >> 8) & 255}.${j & 255}`;
}

/** Address of churn change k: never used by a seeded workload nor by another change. */
export function churnAddress(k: number): string {
  return `10.${100 + ((k >> 16) & 127)}.${(k >> 8) & 255}.${k & 255}`;
}

export function workload(j: number, services: number, address = seededAddress(j)): Resource {
  return {
    apiVersion: 'weft.dev/v1alpha1',
    kind: 'Workload',
    metadata: { name: workloadName(j), namespace: NAMESPACE },
    spec: { labels: { app: serviceName(j % services) }, address, ports: [{ port: SERVICE_PORT }], serviceAccount: 'default', health: 'HEALTHY' },
  };
}

/** Churn change k rewrites workload k % E (distinct workloads while k < E) with a new address. */
export function churnChange(k: number, services: number, endpoints: number): { resource: Resource; address: string; cluster: string } {
  const j = k % endpoints;
  const address = churnAddress(k);
  return { resource: workload(j, services, address), address, cluster: clusterNameOf(j % services) };
}

/**
 * An HTTPRoute on service 0: requests with header `x-bench: <marker>` go to
 * service 1, the rest to service 0. The marker is what the convergence phase
 * changes and looks for in the RDS responses.
 */
export function httpRoute(marker: string, services: number): Resource {
  const other = services > 1 ? serviceName(1) : serviceName(0);
  return {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'HTTPRoute',
    metadata: { name: 'bench-route', namespace: NAMESPACE },
    spec: {
      parentRefs: [{ group: '', kind: 'Service', name: serviceName(0), port: SERVICE_PORT }],
      rules: [
        {
          matches: [{ path: { type: 'PathPrefix', value: '/' }, headers: [{ type: 'Exact', name: 'x-bench', value: marker }] }],
          backendRefs: [{ group: '', kind: 'Service', name: other, port: SERVICE_PORT, weight: 1 }],
        },
        {
          matches: [{ path: { type: 'PathPrefix', value: '/' } }],
          backendRefs: [{ group: '', kind: 'Service', name: serviceName(0), port: SERVICE_PORT, weight: 1 }],
        },
      ],
    },
  };
}

/** Everything the store starts with. */
export function seed(services: number, endpoints: number): Resource[] {
  const out: Resource[] = [];
  for (let i = 0; i < services; i++) out.push(service(i));
  for (let j = 0; j < endpoints; j++) out.push(workload(j, services));
  out.push(httpRoute('initial', services));
  return out;
}
