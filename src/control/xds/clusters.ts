import { CLUSTER, TYPE_PREFIX } from '../../xds/type-urls.js';
import { clusterName } from './names.js';
import { refOf, sortByName, type MeshInput } from './model.js';
import { resolveBackendPolicy } from './policy/attach.js';
import { applyClusterPolicy, type ClusterFlavour } from './policy/cluster-policy.js';

export type ClusterResource = Record<string, unknown> & { name: string };

const HTTP_PROTOCOL_OPTIONS = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';

/**
 * One EDS Cluster per Service port, endpoints over ADS. ROUND_ROBIN is one of
 * the two policies gRPC accepts (LEAST_REQUEST is NACKed). HTTP/2 ports say so
 * with Envoy's protocol options so that Envoy (and Weft's proxy) speak h2
 * upstream; gRPC ignores them.
 *
 * BackendPolicies that target the Service (or the port) set its endpoint
 * settings (policy/cluster-policy.ts); `grpc` clusters are degraded to what
 * proxyless gRPC accepts.
 *
 * `envoy` clusters (Weft's proxy, Envoy) carry
 * `common_lb_config.locality_weighted_lb_config`, so that the per-locality
 * `load_balancing_weight` of endpoints.ts is honoured as gRPC honours it.
 */
export function generateClusters(input: MeshInput, flavour: ClusterFlavour = 'envoy'): ClusterResource[] {
  const policies = input.backendPolicies ?? [];
  const out: ClusterResource[] = [];
  for (const svc of sortByName(input.services)) {
    for (const p of svc.spec.ports) {
      const name = clusterName(refOf(svc), p.port);
      const cluster: ClusterResource = {
        '@type': CLUSTER,
        name,
        type: 'EDS',
        eds_cluster_config: { eds_config: { ads: {}, resource_api_version: 'V3' }, service_name: name },
        connect_timeout: { seconds: 10 },
        lb_policy: 'ROUND_ROBIN',
      };
      // Weft's proxy and Envoy balance across localities by their EDS weights only
      // when asked; proxyless gRPC always does (weighted_target) and is not told.
      if (flavour === 'envoy') cluster.common_lb_config = { locality_weighted_lb_config: {} };
      if (p.protocol === 'grpc' || p.protocol === 'http2') {
        cluster.typed_extension_protocol_options = {
          [HTTP_PROTOCOL_OPTIONS]: { '@type': `${TYPE_PREFIX}${HTTP_PROTOCOL_OPTIONS}`, explicit_http_config: { http2_protocol_options: {} } },
        };
      }
      if (policies.length > 0) {
        const ref = refOf(svc);
        const eff = resolveBackendPolicy(policies, { service: { ...ref, port: p.port, ...(p.name !== undefined ? { portName: p.name } : {}) } });
        applyClusterPolicy(cluster, eff.settings, p.protocol, flavour);
      }
      out.push(cluster);
    }
  }
  return out;
}
