/**
 * The environment `weft run` gives the application so it can reach the mesh in
 * explicit mode (no iptables): the outbound listener as HTTP_PROXY, and one
 * WEFT_<SERVICE>_URL per Service the sidecar knows, read from the proxy's own
 * config (clusters and TCP listeners) so the list is what the control plane
 * really sent, not what the app hopes for.
 */

/** One Service port the sidecar can reach. */
export interface MeshService {
  readonly name: string;
  readonly namespace: string;
  readonly port: number;
  /** tcp: reached at a local port of the sidecar (a TCP connection has no Host to route by). */
  readonly protocol: 'http' | 'tcp';
  /** For tcp: the loopback port this sidecar's listener for the Service is bound on. */
  readonly localPort?: number;
}

// Istio's names, as the control plane generates them (src/control/xds/names.ts; not
// imported: the proxy side must not depend on the control plane).
const CLUSTER = /^outbound\|(\d+)\|\|([a-z0-9-]+)\.([a-z0-9-]+)\.svc\.cluster\.local$/;
const TCP_LISTENER = /^tcp\|([a-z0-9-]+)\.([a-z0-9-]+):(\d+)$/;

/**
 * Services from the names of the proxy's clusters (one per Service port) and TCP
 * listeners (one per `tcp` Service port). `listenerPort` gives a TCP listener's
 * bound port; a listener that is not bound (its port was taken) yields no URL.
 */
export function servicesFromConfig(clusterNames: Iterable<string>, listenerNames: Iterable<string>, listenerPort: (name: string) => number | undefined): MeshService[] {
  const tcp = new Map<string, string>();
  for (const l of listenerNames) {
    const m = TCP_LISTENER.exec(l);
    if (m !== null) tcp.set(`${m[1]!}.${m[2]!}:${m[3]!}`, l);
  }
  const out: MeshService[] = [];
  for (const c of clusterNames) {
    const m = CLUSTER.exec(c);
    if (m === null) continue;
    const [port, name, namespace] = [Number(m[1]), m[2]!, m[3]!];
    const listener = tcp.get(`${name}.${namespace}:${port}`);
    if (listener === undefined) {
      out.push({ name, namespace, port, protocol: 'http' });
      continue;
    }
    const localPort = listenerPort(listener);
    if (localPort !== undefined) out.push({ name, namespace, port, protocol: 'tcp', localPort });
  }
  return out.sort((a, b) => (a.namespace + a.name).localeCompare(b.namespace + b.name) || a.port - b.port);
}

/** `catalog-v2` → `CATALOG_V2`: the shape shells and most languages accept in a variable name. */
export function envKey(name: string): string {
  return name.toUpperCase().replace(/[^A-Z0-9]/g, '_');
}

/** `http://catalog.default` (port 80 left out), `http://inventory.default:50051`, `tcp://127.0.0.1:40123`. */
export function serviceUrl(s: MeshService): string {
  if (s.protocol === 'tcp') return `tcp://127.0.0.1:${s.localPort ?? s.port}`;
  return s.port === 80 ? `http://${s.name}.${s.namespace}` : `http://${s.name}.${s.namespace}:${s.port}`;
}

/**
 * WEFT_<NAME>_URL for Services of the app's own namespace, WEFT_<NAME>_<NAMESPACE>_URL
 * for every Service. A Service with several ports gets its lowest port in the
 * short names and WEFT_<NAME>_<PORT>_URL for each port.
 */
export function serviceEnv(services: readonly MeshService[], ownNamespace: string): Record<string, string> {
  const env: Record<string, string> = {};
  const first = new Set<string>();
  for (const s of services) {
    const key = `${s.namespace}/${s.name}`;
    const url = serviceUrl(s);
    if (s.namespace === ownNamespace) env[`WEFT_${envKey(s.name)}_${s.port}_URL`] = url;
    if (first.has(key)) continue;
    first.add(key);
    env[`WEFT_${envKey(s.name)}_${envKey(s.namespace)}_URL`] = url;
    if (s.namespace === ownNamespace) env[`WEFT_${envKey(s.name)}_URL`] = url;
  }
  return env;
}
