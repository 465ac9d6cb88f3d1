/** Type URLs of the xDS resources Weft serves and consumes. */
export const TYPE_PREFIX = 'type.googleapis.com/';
export const LISTENER = 'type.googleapis.com/envoy.config.listener.v3.Listener';
export const ROUTE_CONFIGURATION = 'type.googleapis.com/envoy.config.route.v3.RouteConfiguration';
export const CLUSTER = 'type.googleapis.com/envoy.config.cluster.v3.Cluster';
export const CLUSTER_LOAD_ASSIGNMENT = 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment';
export const SECRET = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret';

/** Make-before-break push order (CDS → EDS → LDS → RDS), then secrets. */
export const PUSH_ORDER = [CLUSTER, CLUSTER_LOAD_ASSIGNMENT, LISTENER, ROUTE_CONFIGURATION, SECRET] as const;
export type XdsTypeUrl = (typeof PUSH_ORDER)[number];

export const SHORT_NAMES: Record<XdsTypeUrl, string> = {
  [LISTENER]: 'LDS',
  [ROUTE_CONFIGURATION]: 'RDS',
  [CLUSTER]: 'CDS',
  [CLUSTER_LOAD_ASSIGNMENT]: 'EDS',
  [SECRET]: 'SDS',
};
