import type { XdsNode } from '../registry/workload-registry.js';
import { META, metaFlag, parseInboundPort, structToJson } from '../registry/node-metadata.js';
import { localityOf, scopeOf, type ProxyView } from './model.js';
import { INBOUND_APP_HOST } from './names.js';

/**
 * The view a connecting xDS client gets, from its node: namespace, scope, client
 * flavour and locality. One function for the SotW and delta servers, so the two
 * protocols can never disagree about what a proxy sees.
 */
export function viewOfNode(node: XdsNode): ProxyView {
  const meta = structToJson(node.metadata);
  const ns = meta[META.namespace];
  const namespace = typeof ns === 'string' && ns !== '' ? ns : 'default';
  // Scope: no WEFT_NAMESPACES / WEFT_DEPENDENCIES = every namespace (Istio's default too).
  const view: ProxyView = { namespace, ...scopeOf(namespace, meta[META.namespaces], meta[META.dependencies]) };
  // Proxyless gRPC (user agent "gRPC Node Pure JS", "gRPC Go", ...) gets its own view: degraded clusters.
  const agent = (node as XdsNode & { user_agent_name?: string }).user_agent_name ?? '';
  if (/^grpc\b/i.test(agent)) view.client = 'grpc';
  // Locality failover: EDS priorities relative to node.locality (endpoints.ts); none = all at priority 0.
  const locality = localityOf(node.locality);
  if (locality !== undefined) view.locality = locality;
  // Security (security/mesh-tls.ts): only clients that can serve it get it, so
  // older proxies (no inbound listener) and plain gRPC keep their snapshots.
  const service = meta[META.service];
  const named = typeof service === 'string' && service !== '' ? service : undefined;
  if (view.client === 'grpc') {
    if (metaFlag(meta[META.grpcMtls])) {
      view.grpcMtls = true;
      if (named !== undefined) view.service = named;
    }
  } else if (named !== undefined && hasInboundPort(meta[META.inboundPort])) {
    view.service = named;
    const address = meta[META.address];
    if (typeof address === 'string' && /^127\./.test(address) && address !== INBOUND_APP_HOST) view.appHost = address;
  }
  return view;
}

function hasInboundPort(v: Parameters<typeof parseInboundPort>[0]): boolean {
  try {
    return parseInboundPort(v) !== undefined;
  } catch {
    return false;
  }
}
