/**
 * The sidecar of `weft run`: a Weft proxy in this process (one worker: a sidecar
 * serves one app), its workload identity when a join token is given, and what the
 * app needs to know about it once it is ready.
 */
import type { IdentityManager } from '../proxy/identity/index.js';
import type { Proxy } from '../proxy/proxy.js';
import { serviceAccountOf } from '../proxy/xds-client/node-metadata.js';
import { WeftError } from '../lib/errors.js';
import { createLogger } from '../lib/log.js';
import { freePort } from './free-port.js';
import { serviceEnv, servicesFromConfig, type MeshService } from './service-env.js';

/** Listener names the control plane gives a Weft proxy (src/control/xds/names.ts). */
const OUTBOUND_LISTENER = 'outbound';
const INBOUND_LISTENER = 'inbound';
/**
 * Node metadata key of the bound inbound port, read by the control plane to point
 * peers' endpoints at this sidecar (agreed with the proxy's NODE_METADATA; sent
 * by name so that this works whether or not that table lists it yet).
 */
const INBOUND_PORT_KEY = 'WEFT_INBOUND_PORT';
const META_LABELS = 'WEFT_LABELS';
/** Readiness has no event; this is how often it is looked at. */
const READY_POLL_MS = 25;

export interface SidecarOptions {
  readonly xds: readonly string[];
  readonly service: string;
  readonly namespace: string;
  readonly workloadAddress: string;
  readonly appPorts: readonly number[];
  readonly labels: Readonly<Record<string, string>>;
  readonly serviceAccount?: string;
  readonly adminAddr: string;
  readonly outboundAddr: string;
  /** Undefined: a free port on the workload address. */
  readonly inboundAddr?: string;
  readonly drainMs: number;
  readonly logLevel: string;
  readonly locality?: { region: string; zone?: string; sub_zone?: string };
  readonly nodeId?: string;
  /** Control plane HTTP API: the workload certificate (with joinToken) and the Service list (local TCP ports). */
  readonly apiUrl: string;
  readonly joinToken?: string;
  /** 'free': this sidecar's TCP listeners take free loopback ports (many sidecars on one host); 'service': the Service ports. */
  readonly tcpPorts: 'free' | 'service';
  /** How long to wait for the first xDS config. */
  readonly readyTimeoutMs: number;
  /**
   * xDS (and telemetry) over mTLS with the workload certificate, as `weft proxy
   * --xds-tls`: needs joinToken; `xds` names the control plane's TLS xDS address.
   */
  readonly xdsTls?: boolean;
  /** xDS flavour (ProxyOptions.xdsProtocol); default the proxy's. */
  readonly xdsProtocol?: 'sotw' | 'delta';
  /** Kept listing every Service the sidecar routes to at its VIP (transparent mode), as `weft proxy --hosts-file`. */
  readonly hostsFile?: string;
  /** Where warnings go (a hosts file that cannot be written); default stderr. */
  readonly say?: (line: string) => void;
}

export interface Sidecar {
  readonly proxy: Proxy;
  readonly adminUrl: string;
  readonly adminPort: number;
  readonly outboundPort: number;
  readonly inboundPort: number;
  readonly nodeId: string;
  readonly spiffeId?: string;
  /** The Services known when the proxy became ready. */
  services(): MeshService[];
  /** The app's environment additions. */
  appEnv(appPorts: readonly number[]): Record<string, string>;
  /** Stop accepting, let busy requests finish (drainMs), close everything. */
  stop(): Promise<void>;
}

const HOST_PORT = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/;

function splitHostPort(v: string): { host: string; port: number } {
  const m = HOST_PORT.exec(v);
  if (m === null) throw new WeftError('WEFT_ERR_USAGE', `want host:port, got "${v}"`);
  return { host: m[1] ?? m[2]!, port: Number(m[3]) };
}

function urlHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

/** Istio's node id plus the app ports, as `weft proxy` makes it. */
export function sidecarNodeId(o: { workloadAddress: string; service: string; namespace: string; appPorts: readonly number[] }): string {
  const base = `sidecar~${o.workloadAddress}~${o.service}.${o.namespace}`;
  return o.appPorts.length === 0 ? base : `${base}~${o.appPorts.join(',')}`;
}

/**
 * TCP listener names of every `tcp` Service port (`tcp|name.ns:port`), from the
 * control plane's read API (loopback reads need no token). Best effort: a
 * control plane that refuses (remote, without the admin token) leaves the
 * Service ports in place.
 */
async function tcpListenerNames(apiUrl: string): Promise<string[]> {
  try {
    const res = await fetch(`${apiUrl}/apis/weft.dev/v1alpha1/services`, { signal: AbortSignal.timeout(5000) });
    if (!res.ok) return [];
    const list = (await res.json()) as { items?: { metadata?: { name?: string; namespace?: string }; spec?: { ports?: { port?: number; protocol?: string }[] } }[] };
    const out: string[] = [];
    for (const s of list.items ?? []) {
      for (const p of s.spec?.ports ?? []) {
        if (p.protocol === 'tcp' && p.port !== undefined) out.push(`tcp|${s.metadata?.name ?? ''}.${s.metadata?.namespace ?? 'default'}:${p.port}`);
      }
    }
    return out;
  } catch {
    return [];
  }
}

async function startIdentity(o: SidecarOptions): Promise<IdentityManager | undefined> {
  if (o.joinToken === undefined) return undefined;
  const { createIdentityManager } = await import('../proxy/identity/index.js');
  const identity = createIdentityManager({ apiUrl: o.apiUrl, joinToken: o.joinToken, log: createLogger('weft-run', o.logLevel) });
  await identity.start();
  return identity;
}


export async function startSidecar(o: SidecarOptions): Promise<Sidecar> {
  if (o.xdsTls === true && o.joinToken === undefined) {
    throw new WeftError('WEFT_ERR_USAGE', '--xds-tls authenticates with the workload certificate: pass the join token with --token (weft token create)');
  }
  const { startProxy } = await import('../proxy/proxy.js');
  const identity = await startIdentity(o);
  const spiffeId = identity?.current()?.spiffeId;
  if (o.xdsTls === true && identity !== undefined) {
    try {
      await (await import('../proxy/xds-client/xds-tls.js')).useXdsTls(identity);
    } catch (e) {
      identity.close();
      throw e;
    }
  }
  const say = o.say ?? ((line: string): void => { process.stderr.write(`${line}\n`); });
  const hosts = o.hostsFile === undefined ? undefined : (await import('../proxy/capture/hosts-file.js')).followHostsFile(o.hostsFile, (e) => {
    say(`warning: --hosts-file ${o.hostsFile}: ${e instanceof Error ? e.message : String(e)}`);
  });
  // The port goes into the node metadata, so it is chosen before the listener exists.
  const inbound = o.inboundAddr !== undefined ? splitHostPort(o.inboundAddr) : { host: o.workloadAddress, port: 0 };
  if (inbound.port === 0) inbound.port = await freePort(inbound.host);
  const listenerAddresses: Record<string, string> = {
    [OUTBOUND_LISTENER]: o.outboundAddr,
    [INBOUND_LISTENER]: `${urlHost(inbound.host)}:${inbound.port}`,
  };
  if (o.tcpPorts === 'free') for (const n of await tcpListenerNames(o.apiUrl)) listenerAddresses[n] = '127.0.0.1:0';
  const nodeId = o.nodeId ?? sidecarNodeId(o);
  const serviceAccount = o.serviceAccount ?? serviceAccountOf(spiffeId);
  const metadata: Record<string, unknown> = { [INBOUND_PORT_KEY]: String(inbound.port) };
  if (Object.keys(o.labels).length > 0) metadata[META_LABELS] = JSON.stringify(o.labels);
  let proxy: Proxy;
  try {
    proxy = await startProxy({
      ...(hosts !== undefined ? { onXdsResponse: (e: { accepted: boolean }) => hosts.onXdsResponse(e) } : {}),
      adminAddr: o.adminAddr,
      xdsAddresses: o.xds,
      node: { id: nodeId, metadata, ...(o.locality !== undefined ? { locality: o.locality } : {}) },
      workload: { service: o.service, namespace: o.namespace, address: o.workloadAddress, ports: o.appPorts, serviceAccount },
      listenerAddresses,
      drainMs: o.drainMs,
      concurrency: 1,
      logLevel: o.logLevel,
      ...(o.xdsProtocol !== undefined ? { xdsProtocol: o.xdsProtocol } : {}),
      ...(identity ? { identity } : {}),
    });
  } catch (e) {
    identity?.close();
    throw e;
  }
  const stop = async (): Promise<void> => {
    try {
      await proxy.drain();
      await proxy.close();
    } finally {
      identity?.close();
    }
  };
  hosts?.attach(() => proxy.snapshot());
  let outboundPort: number;
  try {
    outboundPort = await whenReady(proxy, o.readyTimeoutMs);
    // The app may resolve Service names as soon as it starts.
    await hosts?.sync();
  } catch (e) {
    await proxy.close().catch(() => {});
    identity?.close();
    throw e;
  }
  const services = (): MeshService[] => {
    const snap = proxy.snapshot();
    return servicesFromConfig(snap.clusters.keys(), snap.listeners.keys(), (n) => proxy.listenerPort(n));
  };
  const adminPort = Number(new URL(proxy.adminUrl).port);
  const outHost = urlHost(splitHostPort(o.outboundAddr).host);
  return {
    proxy,
    adminUrl: proxy.adminUrl,
    adminPort,
    outboundPort,
    inboundPort: proxy.listenerPort(INBOUND_LISTENER) ?? inbound.port,
    nodeId,
    ...(spiffeId !== undefined ? { spiffeId } : {}),
    services,
    appEnv: (appPorts) => {
      const proxyUrl = `http://${outHost}:${outboundPort}`;
      const env: Record<string, string> = {
        HTTP_PROXY: proxyUrl,
        http_proxy: proxyUrl,
        // The admin endpoint and the app's own loopback ports must not go through the proxy.
        NO_PROXY: 'localhost,127.0.0.1,::1',
        no_proxy: 'localhost,127.0.0.1,::1',
        WEFT_SERVICE: o.service,
        WEFT_NAMESPACE: o.namespace,
        WEFT_WORKLOAD_ADDRESS: o.workloadAddress,
        WEFT_PROXY_ADMIN: proxy.adminUrl,
        WEFT_OUTBOUND: `${outHost}:${outboundPort}`,
        ...serviceEnv(services(), o.namespace),
      };
      if (appPorts.length > 0) env.PORT = String(appPorts[0]);
      if (spiffeId !== undefined) env.WEFT_SPIFFE_ID = spiffeId;
      return env;
    },
    stop,
  };
}

/** The outbound listener's port once the proxy has its first config and listens. */
function whenReady(proxy: Proxy, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const check = (): void => {
      const port = proxy.listenerPort(OUTBOUND_LISTENER);
      if (proxy.isReady() && port !== undefined) return resolve(port);
      if (Date.now() >= deadline) {
        return reject(new WeftError('WEFT_ERR_UNAVAILABLE', `the sidecar got no configuration with an "${OUTBOUND_LISTENER}" listener within ${timeoutMs} ms (is --xds right, and the control plane up?)`));
      }
      setTimeout(check, READY_POLL_MS);
    };
    check();
  });
}
