import type { Resource } from '../../api/types.js';
import type { ServiceSpec } from '../../api/service/service.js';
import type { TCPRouteSpec } from '../../api/tcproute/tcproute.js';
import { LISTENER, TYPE_PREFIX } from '../../xds/type-urls.js';
import { clusterName, grpcClientListenerName, OUTBOUND_LISTENER, OUTBOUND_PORT, OUTBOUND_ROUTE, parseServerListenerName, TCP_LISTENER_HOST, tcpListenerName, type ServiceRef } from './names.js';
import { refOf, sortByName, type MeshInput, type ProxyView } from './model.js';
import { faultFilter, localRateLimitFilter } from './policy/route-policy.js';
import type { MeshSpec } from '../../api/mesh/mesh.js';
import { hcmTelemetry } from './telemetry.js';

export type ListenerResource = Record<string, unknown> & { name: string };

export const HCM_TYPE = `${TYPE_PREFIX}envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager`;
export const ROUTER_TYPE = `${TYPE_PREFIX}envoy.extensions.filters.http.router.v3.Router`;
const HCM_FILTER = 'envoy.filters.network.http_connection_manager';
const TCP_PROXY_FILTER = 'envoy.filters.network.tcp_proxy';
export const TCP_PROXY_TYPE = `${TYPE_PREFIX}envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy`;

/** Per-route filters the routes of a listener use: the HCM must carry them (before the router). */
export interface UsedFilters {
  fault: boolean;
  rateLimit: boolean;
}
const NONE: UsedFilters = { fault: false, rateLimit: false };

/** The router filter ends every chain (gRPC NACKs a chain where it is not last). */
function routerFilter(): Record<string, unknown> {
  return { name: 'envoy.filters.http.router', typed_config: { '@type': ROUTER_TYPE } };
}

function rdsHcm(statPrefix: string, routeConfigName: string, used: UsedFilters = NONE, telemetry: Record<string, unknown> = {}): Record<string, unknown> {
  const filters: Record<string, unknown>[] = [];
  // Rate limit first: a request over the limit is refused before anything else runs.
  if (used.rateLimit) filters.push(localRateLimitFilter());
  if (used.fault) filters.push(faultFilter());
  filters.push(routerFilter());
  return {
    '@type': HCM_TYPE,
    stat_prefix: statPrefix,
    rds: { config_source: { ads: {}, resource_api_version: 'V3' }, route_config_name: routeConfigName },
    http_filters: filters,
    // access_log / tracing from the Mesh (telemetry.ts).
    ...telemetry,
  };
}

/**
 * Client listeners of proxyless gRPC: an `api_listener` per HTTP-like Service
 * port, named as the target `xds:///<name>.<namespace>:<port>` resolves to,
 * with routes over RDS (same name).
 */
export function generateGrpcClientListeners(input: MeshInput, used: (routeConfigName: string) => UsedFilters = () => NONE): ListenerResource[] {
  const out: ListenerResource[] = [];
  for (const svc of sortByName(input.services)) {
    for (const p of svc.spec.ports) {
      if (p.protocol === 'tcp') continue;
      const name = grpcClientListenerName(refOf(svc), p.port);
      out.push({ '@type': LISTENER, name, api_listener: { api_listener: rdsHcm(name, name, used(name)) } });
    }
  }
  return out;
}

/** Weft proxy's outbound listener: 0.0.0.0:15001, every visible Service through RDS `outbound`. */
export function generateOutboundListener(used: UsedFilters = NONE, mesh?: Resource<MeshSpec>): ListenerResource {
  return {
    '@type': LISTENER,
    name: OUTBOUND_LISTENER,
    address: { socket_address: { address: '0.0.0.0', port_value: OUTBOUND_PORT } },
    default_filter_chain: { filters: [{ name: HCM_FILTER, typed_config: rdsHcm('outbound', OUTBOUND_ROUTE, used, hcmTelemetry(mesh, 'outbound')) }] },
  };
}

/**
 * Inbound listener of a gRPC server (XdsServer, gRFC A36), made from the name it
 * asks for: `grpc/server?xds.resource.listening_address=IP:port`. The address
 * must equal the bound one or the server refuses to serve; its routes must use
 * `non_forwarding_action`. Plaintext for now (mTLS comes with the CA).
 */
export function generateServerListener(name: string): ListenerResource | undefined {
  const addr = parseServerListenerName(name);
  if (addr === undefined) return undefined;
  return {
    '@type': LISTENER,
    name,
    address: { socket_address: { address: addr.host, port_value: addr.port } },
    default_filter_chain: {
      filters: [
        {
          name: HCM_FILTER,
          typed_config: {
            '@type': HCM_TYPE,
            stat_prefix: 'inbound',
            route_config: {
              name: `inbound|${addr.port}`,
              virtual_hosts: [{ name: 'inbound', domains: ['*'], routes: [{ name: 'default', match: { prefix: '/' }, non_forwarding_action: {} }] }],
            },
            http_filters: [routerFilter()],
          },
        },
      ],
    },
  };
}

// ---------------------------------------------------------------------------
// TCP (Weft's proxy only)

function isServiceRef(p: { group?: string; kind?: string }): boolean {
  return (p.kind ?? 'Service') === 'Service' && (p.group === undefined || p.group === '' || p.group === 'weft.dev' || p.group === 'core');
}

function olderFirst(a: Resource, b: Resource): number {
  const at = a.metadata.creationTimestamp ?? '\uffff';
  const bt = b.metadata.creationTimestamp ?? '\uffff';
  if (at !== bt) return at < bt ? -1 : 1;
  const an = `${a.metadata.namespace ?? ''}/${a.metadata.name}`;
  const bn = `${b.metadata.namespace ?? ''}/${b.metadata.name}`;
  return an < bn ? -1 : an > bn ? 1 : 0;
}

/** The TCPRoute in charge of a Service port: the oldest attached one (Gateway API conflict rule), then by name. */
function tcpRouteFor(routes: readonly Resource<TCPRouteSpec>[], s: ServiceRef, port: number): Resource<TCPRouteSpec> | undefined {
  const attached = routes.filter((r) =>
    (r.spec.parentRefs ?? []).some(
      (p) => isServiceRef(p) && p.name === s.name && (p.namespace ?? r.metadata.namespace ?? 'default') === s.namespace && (p.port === undefined || p.port === port),
    ),
  );
  return attached.sort(olderFirst)[0];
}

function tcpProxy(statPrefix: string, route: Resource<TCPRouteSpec> | undefined, self: ServiceRef, port: number): Record<string, unknown> {
  const out: Record<string, unknown> = { '@type': TCP_PROXY_TYPE, stat_prefix: statPrefix };
  if (route === undefined) {
    out.cluster = clusterName(self, port);
    return out;
  }
  // A connection has nothing to pick a rule by: every rule's backends are merged.
  const weights = new Map<string, number>();
  for (const rule of route.spec.rules) {
    for (const b of rule.backendRefs) {
      const w = b.weight ?? 1;
      if (w <= 0 || !isServiceRef(b) || b.port === undefined) continue;
      const name = clusterName({ name: b.name, namespace: b.namespace ?? route.metadata.namespace ?? 'default' }, b.port);
      weights.set(name, (weights.get(name) ?? 0) + w);
    }
  }
  const clusters = [...weights.entries()];
  const only = clusters[0];
  if (clusters.length === 0) out.cluster = 'weft|no-backend';
  else if (clusters.length === 1 && only !== undefined) out.cluster = only[0];
  else out.weighted_clusters = { clusters: clusters.map(([name, weight]) => ({ name, weight })) };
  return out;
}

/** Which TCP Service ports lost their port number to another Service in this view (see names.ts). */
export function tcpPortConflicts(input: MeshInput, view: ProxyView): { service: ServiceRef; port: number; lostTo: ServiceRef }[] {
  return tcpPorts(input, view).conflicts;
}

function tcpPorts(input: MeshInput, view: ProxyView): { winners: { svc: Resource<ServiceSpec>; port: number }[]; conflicts: { service: ServiceRef; port: number; lostTo: ServiceRef }[] } {
  const own = (s: Resource): number => ((s.metadata.namespace ?? 'default') === view.namespace ? 0 : 1);
  const services = sortByName(input.services).sort((a, b) => own(a) - own(b));
  const byPort = new Map<number, Resource<ServiceSpec>>();
  const winners: { svc: Resource<ServiceSpec>; port: number }[] = [];
  const conflicts: { service: ServiceRef; port: number; lostTo: ServiceRef }[] = [];
  for (const svc of services) {
    for (const p of svc.spec.ports) {
      if (p.protocol !== 'tcp' || p.port === OUTBOUND_PORT) continue;
      const holder = byPort.get(p.port);
      if (holder !== undefined) {
        conflicts.push({ service: refOf(svc), port: p.port, lostTo: refOf(holder) });
        continue;
      }
      byPort.set(p.port, svc);
      winners.push({ svc, port: p.port });
    }
  }
  return { winners, conflicts };
}

/**
 * Weft proxy's TCP listeners: one per `tcp` Service port, on
 * 127.0.0.1:<port> (names.ts explains the convention), with a tcp_proxy to the
 * Service's own cluster or, when a TCPRoute is attached, to its backends by weight.
 */
export function generateTcpListeners(input: MeshInput, view: ProxyView): ListenerResource[] {
  const routes = input.tcpRoutes ?? [];
  const out: ListenerResource[] = [];
  for (const { svc, port } of tcpPorts(input, view).winners) {
    const ref = refOf(svc);
    const name = tcpListenerName(ref, port);
    out.push({
      '@type': LISTENER,
      name,
      address: { socket_address: { address: TCP_LISTENER_HOST, port_value: port } },
      traffic_direction: 'OUTBOUND',
      default_filter_chain: { filters: [{ name: TCP_PROXY_FILTER, typed_config: tcpProxy(name, tcpRouteFor(routes, ref, port), ref, port) }] },
    });
  }
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}
