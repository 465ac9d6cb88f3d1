import type { Resource } from '../../api/types.js';
import type { ServiceSpec } from '../../api/service/service.js';
import { CLUSTER, LISTENER, TYPE_PREFIX } from '../../xds/type-urls.js';
import { INBOUND_APP_HOST, INBOUND_LISTENER, INBOUND_PORT, inboundClusterName, serviceDomains, tlsSni, type ServiceRef } from './names.js';
import { refOf } from './model.js';
import { HCM_TYPE, ROUTER_TYPE, TCP_PROXY_TYPE, type ListenerResource } from './listeners.js';
import type { ClusterResource } from './clusters.js';
import { findService, meshSettings, mtlsModeFor, policiesFor, spiffeIdsOf, type SecurityMeshInput } from './security/inputs.js';
import { buildJwt } from './security/jwt.js';
import { buildRbac, rbacHttpFilters, rbacNetworkFilters, rbacPerRoute, type RbacContext, type RbacSet } from './security/rbac.js';
import { ALPN_HTTP, downstreamTlsSocket } from './security/tls.js';
import { hcmTelemetry } from './telemetry.js';
import { inboundPortPolicy, inboundRateLimitFilter, type InboundPortPolicy } from './policy/inbound-policy.js';

/**
 * The Weft proxy's inbound side (names.ts has the naming scheme, and
 * docs/architecture.md "Inbound" the why): Listener `inbound` on 0.0.0.0:15006
 * for the proxy's own Service, plus one STATIC cluster `inbound|<targetPort>||`
 * per target port of the application (127.0.0.1:<targetPort>).
 *
 * Filter chains, by the Service's effective mTLS mode (SecurityPolicy naming the
 * Service > namespace-wide SecurityPolicy > Mesh):
 * - STRICT: one TLS chain per Service port, matched on the SNI
 *   `outbound_.<port>_._.<fqdn>` (+ transport_protocol tls, tls_inspector).
 * - PERMISSIVE: those, plus plaintext chains (transport_protocol raw_buffer).
 * - DISABLE: plaintext chains only.
 * Plaintext chains: all HTTP ports share one HCM routing by Host (the first
 * HTTP port takes any Host); a single TCP port gets a tcp_proxy chain (with
 * http_inspector to tell it from HTTP when both exist); with several TCP ports
 * plaintext TCP cannot name its port and is not served (see `notes`).
 *
 * HTTP chains: jwt_authn → RBAC (audit, deny, allow) → local_ratelimit → router.
 * local_ratelimit is there when a BackendPolicy on the Service (or port) has
 * `rateLimit.scope: workload`; its bucket sits on the port's route. Fault
 * injection stays on the caller's outbound routes. BackendPolicy parts applied
 * here: policy/inbound-policy.ts.
 * TCP chains: network RBAC → tcp_proxy.
 */

type Obj = Record<string, unknown>;
type Port = ServiceSpec['ports'][number];

const HCM_FILTER = 'envoy.filters.network.http_connection_manager';
const TCP_PROXY_FILTER = 'envoy.filters.network.tcp_proxy';
const TLS_INSPECTOR = { name: 'envoy.filters.listener.tls_inspector', typed_config: { '@type': `${TYPE_PREFIX}envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector` } };
const HTTP_INSPECTOR = { name: 'envoy.filters.listener.http_inspector', typed_config: { '@type': `${TYPE_PREFIX}envoy.extensions.filters.listener.http_inspector.v3.HttpInspector` } };
const HTTP_PROTOCOL_OPTIONS = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';
export const INBOUND_ROUTE = `inbound|${INBOUND_PORT}`;

export interface InboundResult {
  listener: ListenerResource;
  /** STATIC clusters of the application's ports, then JWKS clusters. */
  clusters: ClusterResource[];
  /** What could not be served, for `weft describe` / logs. */
  notes: string[];
}

/** HTTP filters of an inbound HCM, in DESIGN.md's order. */
export function inboundHttpFilters(parts: { jwt?: Obj | undefined; rbac?: readonly Obj[]; rateLimit?: Obj; fault?: Obj }): Obj[] {
  const out: Obj[] = [];
  if (parts.jwt !== undefined) out.push(parts.jwt);
  out.push(...(parts.rbac ?? []));
  if (parts.rateLimit !== undefined) out.push(parts.rateLimit);
  if (parts.fault !== undefined) out.push(parts.fault);
  out.push({ name: 'envoy.filters.http.router', typed_config: { '@type': ROUTER_TYPE } });
  return out;
}

function targetOf(p: Port): number {
  return p.targetPort ?? p.port;
}

function isHttp(p: Port): boolean {
  return p.protocol !== 'tcp';
}

function inboundCluster(p: Port, appHost: string): ClusterResource {
  const name = inboundClusterName(targetOf(p));
  const c: ClusterResource = {
    '@type': CLUSTER,
    name,
    type: 'STATIC',
    connect_timeout: { seconds: 10 },
    lb_policy: 'ROUND_ROBIN',
    load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: appHost, port_value: targetOf(p) } } } }] }] },
  };
  if (p.protocol === 'grpc' || p.protocol === 'http2') {
    c.typed_extension_protocol_options = { [HTTP_PROTOCOL_OPTIONS]: { '@type': `${TYPE_PREFIX}${HTTP_PROTOCOL_OPTIONS}`, explicit_http_config: { http2_protocol_options: {} } } };
  }
  return c;
}

/** `idleOnRoute`: put the policy's stream idle timeout on the route (a shared HCM cannot carry one per port). */
function route(p: Port, policy?: InboundPortPolicy, idleOnRoute = false): Obj {
  const action: Obj = { cluster: inboundClusterName(targetOf(p)), timeout: { seconds: 0 } };
  if (idleOnRoute && policy?.streamIdle !== undefined) action.idle_timeout = policy.streamIdle;
  const r: Obj = { name: 'default', match: { prefix: '/' }, route: action };
  if (policy !== undefined && Object.keys(policy.perFilter).length > 0) r.typed_per_filter_config = policy.perFilter;
  return r;
}

/** `telemetry`: the Mesh's access log and tracing for inbound HCMs (telemetry.ts); `extra`: more HCM fields. */
function hcm(statPrefix: string, routeConfig: Obj, filters: Obj[], telemetry: Obj, extra: Obj = {}): Obj {
  return { name: HCM_FILTER, typed_config: { '@type': HCM_TYPE, stat_prefix: statPrefix, route_config: routeConfig, http_filters: filters, ...extra, ...telemetry } };
}

function tcpFilters(p: Port, rbac: readonly RbacSet[], statPrefix: string): Obj[] {
  return [...rbacNetworkFilters(rbac, statPrefix), { name: TCP_PROXY_FILTER, typed_config: { '@type': TCP_PROXY_TYPE, stat_prefix: statPrefix, cluster: inboundClusterName(targetOf(p)) } }];
}

function sameRbac(a: readonly RbacSet[], b: readonly RbacSet[]): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** The inbound listener and clusters of a Weft proxy whose workload belongs to `own`; undefined when that Service does not exist. */
/** `appHost`: where the application listens (ProxyView.appHost); 127.0.0.1 by default. */
export function generateInbound(input: SecurityMeshInput, own: ServiceRef, appHost: string = INBOUND_APP_HOST): InboundResult | undefined {
  const svc: Resource<ServiceSpec> | undefined = findService(input, own);
  if (svc === undefined) return undefined;
  const ref = refOf(svc);
  const { trustDomain } = meshSettings(input);
  const policies = policiesFor(input, ref);
  const { mode } = mtlsModeFor(input, ref);
  const telemetry = hcmTelemetry(input.mesh, 'inbound');
  const ports = svc.spec.ports;
  const httpPorts = ports.filter(isHttp);
  const tcpPorts = ports.filter((p) => !isHttp(p));
  const jwt = httpPorts.length > 0 ? buildJwt(policies) : { filter: undefined, payloadKeys: [], clusters: [] };
  const serviceIds = (namespace: string, name: string): readonly string[] | undefined => {
    const s = findService(input, { namespace, name });
    return s === undefined ? undefined : spiffeIdsOf(input, s);
  };
  const rbacFor = (p: Port): RbacSet[] =>
    buildRbac(policies, { trustDomain, protocol: isHttp(p) ? 'http' : 'tcp', port: p.port, targetPort: targetOf(p), jwtPayloadKeys: jwt.payloadKeys, serviceIds } satisfies RbacContext);
  const notes: string[] = [];
  const chains: Obj[] = [];
  const portPolicies = new Map(httpPorts.map((p) => [p, inboundPortPolicy(input, svc, p)]));

  if (mode !== 'DISABLE') {
    for (const p of ports) {
      const rbac = rbacFor(p);
      const match = { server_names: [tlsSni(ref, p.port)], transport_protocol: 'tls' };
      const prefix = `inbound|${p.port}`;
      const pp = portPolicies.get(p);
      const rateLimit = inboundRateLimitFilter(pp === undefined ? [] : [pp]);
      const filters = isHttp(p)
        ? [hcm(prefix, { name: `${INBOUND_ROUTE}|${p.port}`, virtual_hosts: [{ name: prefix, domains: ['*'], routes: [route(p, pp)] }] }, inboundHttpFilters({ jwt: jwt.filter, rbac: rbacHttpFilters(rbac), ...(rateLimit !== undefined ? { rateLimit } : {}) }), telemetry, pp?.streamIdle !== undefined ? { stream_idle_timeout: pp.streamIdle } : {})]
        : tcpFilters(p, rbac, prefix);
      chains.push({ name: `${prefix}|tls`, filter_chain_match: match, transport_socket: downstreamTlsSocket(isHttp(p) ? ALPN_HTTP : undefined), filters });
    }
  }

  if (mode !== 'DISABLE' && mode !== 'STRICT') notes.push(`mTLS ${mode}: plaintext accepted`);
  if (mode !== 'STRICT') {
    const plain = mode === 'PERMISSIVE' ? { transport_protocol: 'raw_buffer' } : {};
    const tcp = tcpPorts.length === 1 ? tcpPorts[0] : undefined;
    if (tcpPorts.length > 1) notes.push(`plaintext TCP is not served: ${tcpPorts.length} TCP ports and nothing in a plaintext connection names one (use mTLS)`);
    const sniff = tcp !== undefined && httpPorts.length > 0;
    const first = httpPorts[0];
    if (first !== undefined) {
      const base = rbacFor(first);
      const vhosts = httpPorts.map((p, i) => {
        const vh: Obj = { name: `inbound|${p.port}`, domains: i === 0 ? ['*'] : serviceDomains(ref, p.port, true).filter((d) => d.endsWith(`:${p.port}`)), routes: [route(p, portPolicies.get(p), true)] };
        const own = rbacFor(p);
        if (!sameRbac(own, base)) vh.typed_per_filter_config = rbacPerRoute(own);
        return vh;
      });
      // The catch-all must come last: Envoy picks exact domains first anyway, but readers scan in order.
      vhosts.push(vhosts.shift() as Obj);
      const match = { ...plain, ...(sniff ? { application_protocols: ['http/1.0', 'http/1.1', 'h2c'] } : {}) };
      const rateLimit = inboundRateLimitFilter([...portPolicies.values()]);
      chains.push({
        name: 'inbound|http|plaintext',
        ...(Object.keys(match).length > 0 ? { filter_chain_match: match } : {}),
        filters: [hcm('inbound|http', { name: INBOUND_ROUTE, virtual_hosts: vhosts }, inboundHttpFilters({ jwt: jwt.filter, rbac: rbacHttpFilters(base), ...(rateLimit !== undefined ? { rateLimit } : {}) }), telemetry)],
      });
    }
    if (tcp !== undefined) {
      const prefix = `inbound|${tcp.port}`;
      chains.push({ name: `${prefix}|plaintext`, ...(Object.keys(plain).length > 0 ? { filter_chain_match: plain } : {}), filters: tcpFilters(tcp, rbacFor(tcp), prefix) });
    }
  }

  const listenerFilters: Obj[] = [];
  if (mode !== 'DISABLE') listenerFilters.push(TLS_INSPECTOR);
  if (mode !== 'STRICT' && tcpPorts.length === 1 && httpPorts.length > 0) listenerFilters.push(HTTP_INSPECTOR);
  const listener: ListenerResource = {
    '@type': LISTENER,
    name: INBOUND_LISTENER,
    address: { socket_address: { address: '0.0.0.0', port_value: INBOUND_PORT } },
    traffic_direction: 'INBOUND',
    ...(listenerFilters.length > 0 ? { listener_filters: listenerFilters } : {}),
    filter_chains: chains,
  };
  const clusters = new Map<string, ClusterResource>();
  for (const p of ports) clusters.set(inboundClusterName(targetOf(p)), inboundCluster(p, appHost));
  return { listener, clusters: [...clusters.values(), ...jwt.clusters], notes };
}
