/**
 * Names of the xDS resources Weft generates. These are an interface: proxyless
 * gRPC clients dial them, `weft proxy-config` prints them, and people who know
 * Istio should recognise them.
 *
 * - Host of a Service: `<name>.<namespace>` (DESIGN.md). Cluster names carry the
 *   fully qualified form `<name>.<namespace>.svc.cluster.local`, as Istio's do,
 *   so config dumps read the same: `outbound|8080||catalog.default.svc.cluster.local`.
 *   EDS resources use the cluster name as their service name.
 * - Listener of a proxyless gRPC client: `<name>.<namespace>:<port>` (what
 *   `xds:///<name>.<namespace>:<port>` resolves to); its RouteConfiguration has
 *   the same name.
 * - Weft proxy: Listener `outbound` on 0.0.0.0:15001 with RouteConfiguration
 *   `outbound` (every visible Service).
 * - Weft proxy, TCP: one Listener per `tcp` Service port, named
 *   `tcp|<name>.<namespace>:<port>`, bound on 127.0.0.1:<port> (TCP_LISTENER_HOST).
 *   A TCP connection carries no Host, so in explicit mode (no iptables, no
 *   original destination) the only thing that can name the Service is the local
 *   port the application dials: apps reach a TCP Service at 127.0.0.1:<service
 *   port> (or its name resolved to 127.0.0.1). The Istio-style alternatives, a
 *   filter_chain_match on destination port inside 15001 or a `0.0.0.0:<port>`
 *   listener with `bind_to_port: false`, both need the original destination of a
 *   redirected connection, which only transparent mode has. One port number can
 *   have only one such listener per proxy: when several visible TCP Services
 *   share a port, the one in the proxy's own namespace wins, then the first by
 *   namespace/name; the others get none (listed by `tcpPortConflicts`).
 * - Weft proxy, inbound (mesh → app): ONE Listener `inbound` on 0.0.0.0:15006
 *   (Istio's `virtualInbound`), for the proxy's own Service. Explicit mode has no
 *   original destination, so the Service port a connection is for is read from
 *   the connection itself:
 *   - mTLS: the SNI the calling proxy sends, Istio's form
 *     `outbound_.<port>_._.<name>.<namespace>.svc.cluster.local` (tlsSni). One
 *     filter chain per Service port, matched on `server_names`; works for HTTP
 *     and TCP ports alike.
 *   - plaintext (PERMISSIVE fallback, DISABLE): HTTP ports share one chain whose
 *     HttpConnectionManager routes by Host (`catalog.default:80`, as the outbound
 *     route leaves it) to the port. A plaintext TCP connection carries nothing
 *     that names a port, so it is served only when the Service has exactly one
 *     TCP port (and, if it also has HTTP ports, http_inspector tells them apart).
 *   Each chain ends in a STATIC cluster `inbound|<targetPort>||` with the one
 *   endpoint 127.0.0.1:<targetPort>: the application listens on loopback.
 *   RouteConfiguration (inline): `inbound|15006`.
 * - gRPC servers (XdsServer): the bootstrap template
 *   `grpc/server?xds.resource.listening_address=%s`, %s being `IP:port` (A36).
 */

export const CLUSTER_DOMAIN = 'svc.cluster.local';
export const OUTBOUND_LISTENER = 'outbound';
export const OUTBOUND_ROUTE = 'outbound';
export const OUTBOUND_PORT = 15001;
export const TCP_LISTENER_HOST = '127.0.0.1';
export const INBOUND_LISTENER = 'inbound';
export const INBOUND_PORT = 15006;
/** Where the application behind a Weft proxy listens (its targetPorts). */
export const INBOUND_APP_HOST = '127.0.0.1';
/** SDS names of the workload's certificate and of the trust bundle (Istio's names). */
export const SDS_CERT = 'default';
export const SDS_ROOT = 'ROOTCA';
export const SERVER_LISTENER_PREFIX = 'grpc/server?xds.resource.listening_address=';
export const SERVER_LISTENER_TEMPLATE = `${SERVER_LISTENER_PREFIX}%s`;

export interface ServiceRef {
  name: string;
  namespace: string;
}

/** `catalog.default` */
export function hostOf(s: ServiceRef): string {
  return `${s.name}.${s.namespace}`;
}

/** `catalog.default.svc.cluster.local` */
export function fqdnOf(s: ServiceRef): string {
  return `${s.name}.${s.namespace}.${CLUSTER_DOMAIN}`;
}

/** `outbound|8080||catalog.default.svc.cluster.local` (Istio's `outbound|PORT|SUBSET|HOST`). */
export function clusterName(s: ServiceRef, port: number, subset = ''): string {
  return `outbound|${port}|${subset}|${fqdnOf(s)}`;
}

/** Inverse of clusterName; undefined for names Weft did not make. */
export function parseClusterName(name: string): (ServiceRef & { port: number; subset: string }) | undefined {
  const m = /^outbound\|(\d+)\|([^|]*)\|([^.]+)\.([^.]+)\.svc\.cluster\.local$/.exec(name);
  if (!m) return undefined;
  return { port: Number(m[1]), subset: m[2] ?? '', name: m[3] ?? '', namespace: m[4] ?? '' };
}

/** `catalog.default:8080`: the Listener (and RouteConfiguration) of a proxyless gRPC client. */
export function grpcClientListenerName(s: ServiceRef, port: number): string {
  return `${hostOf(s)}:${port}`;
}

/** Domains a virtual host answers to. `sameNamespace` adds the bare name. */
export function serviceDomains(s: ServiceRef, port: number | undefined, sameNamespace: boolean): string[] {
  const hosts = [hostOf(s), `${hostOf(s)}.svc`, fqdnOf(s)];
  if (sameNamespace) hosts.unshift(s.name);
  const out: string[] = [];
  for (const h of hosts) {
    if (port !== undefined) out.push(h, `${h}:${port}`);
    else out.push(h);
  }
  return out;
}

/** The Listener name an XdsServer bound to `address` (`IP:port`, IPv6 in brackets) asks for. */
export function serverListenerName(address: string): string {
  return `${SERVER_LISTENER_PREFIX}${address}`;
}

/** `{host, port}` of a server listener name, or undefined. */
export function parseServerListenerName(name: string): { host: string; port: number } | undefined {
  if (!name.startsWith(SERVER_LISTENER_PREFIX)) return undefined;
  const addr = name.slice(SERVER_LISTENER_PREFIX.length);
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(addr) ?? /^([^:]+):(\d+)$/.exec(addr);
  if (!m) return undefined;
  const port = Number(m[2]);
  if (!Number.isInteger(port) || port < 1 || port > 65535) return undefined;
  return { host: m[1] ?? '', port };
}

/** `tcp|ledger.default:9000`: the Weft proxy's TCP listener for a Service port. */
export function tcpListenerName(s: ServiceRef, port: number): string {
  return `tcp|${hostOf(s)}:${port}`;
}

/** `inbound|8080||`: the STATIC cluster of the local application's port (Istio's inbound cluster name). */
export function inboundClusterName(targetPort: number): string {
  return `inbound|${targetPort}||`;
}

/** `outbound_.80_._.catalog.default.svc.cluster.local`: the SNI of mTLS to a Service port (Istio's form); the inbound listener picks the port by it. */
export function tlsSni(s: ServiceRef, port: number, subset = ''): string {
  return `outbound_.${port}_.${subset}_.${fqdnOf(s)}`;
}

/** `spiffe://cluster.local/ns/default/sa/web` */
export function spiffeUri(trustDomain: string, namespace: string, serviceAccount: string): string {
  return `spiffe://${trustDomain}/ns/${namespace}/sa/${serviceAccount}`;
}
