import type { XdsNode } from '../registry/workload-registry.js';
import { META, structToJson } from '../registry/node-metadata.js';
import { localityOf, scopeOf, type ProxyView } from './model.js';

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
  return view;
}
