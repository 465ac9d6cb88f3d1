import { LISTENER, TYPE_PREFIX } from '../../xds/type-urls.js';
import { grpcClientListenerName, OUTBOUND_LISTENER, OUTBOUND_PORT, OUTBOUND_ROUTE, parseServerListenerName } from './names.js';
import { refOf, sortByName, type MeshInput } from './model.js';

export type ListenerResource = Record<string, unknown> & { name: string };

export const HCM_TYPE = `${TYPE_PREFIX}envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager`;
export const ROUTER_TYPE = `${TYPE_PREFIX}envoy.extensions.filters.http.router.v3.Router`;
const HCM_FILTER = 'envoy.filters.network.http_connection_manager';

/** The router filter ends every chain (gRPC NACKs a chain where it is not last). */
function routerFilter(): Record<string, unknown> {
  return { name: 'envoy.filters.http.router', typed_config: { '@type': ROUTER_TYPE } };
}

function rdsHcm(statPrefix: string, routeConfigName: string): Record<string, unknown> {
  return {
    '@type': HCM_TYPE,
    stat_prefix: statPrefix,
    rds: { config_source: { ads: {}, resource_api_version: 'V3' }, route_config_name: routeConfigName },
    http_filters: [routerFilter()],
  };
}

/**
 * Client listeners of proxyless gRPC: an `api_listener` per HTTP-like Service
 * port, named as the target `xds:///<name>.<namespace>:<port>` resolves to,
 * with routes over RDS (same name).
 */
export function generateGrpcClientListeners(input: MeshInput): ListenerResource[] {
  const out: ListenerResource[] = [];
  for (const svc of sortByName(input.services)) {
    for (const p of svc.spec.ports) {
      if (p.protocol === 'tcp') continue;
      const name = grpcClientListenerName(refOf(svc), p.port);
      out.push({ '@type': LISTENER, name, api_listener: { api_listener: rdsHcm(name, name) } });
    }
  }
  return out;
}

/** Weft proxy's outbound listener: 0.0.0.0:15001, every visible Service through RDS `outbound`. */
export function generateOutboundListener(): ListenerResource {
  return {
    '@type': LISTENER,
    name: OUTBOUND_LISTENER,
    address: { socket_address: { address: '0.0.0.0', port_value: OUTBOUND_PORT } },
    default_filter_chain: { filters: [{ name: HCM_FILTER, typed_config: rdsHcm('outbound', OUTBOUND_ROUTE) }] },
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
