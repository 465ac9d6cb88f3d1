/**
 * startProxy: the sidecar's composition root. Wires config state (compiled
 * snapshots), the cluster manager, listeners, the admin server and, when the
 * bootstrap or options name a control plane, the ADS client.
 */
import { hostname } from 'node:os';
import { createLogger, type Logger } from '../lib/log.js';
import { startAdminServer, type AdminServer } from './admin/admin-server.js';
import { proxyStatus } from './admin/status.js';
import { loadBootstrap, type Bootstrap } from './config/bootstrap.js';
import { ConfigState, type ResourceKind, type Snapshot } from './config/state.js';
import type { ProtoJson } from './config/types.js';
import type { AccessLogEntry } from './http/forward.js';
import { ListenerManager } from './listeners/listener-manager.js';
import { ProxyStats } from './stats.js';
import { flushObservability } from './observability/flush.js';
import { selfIdentityOf } from './observability/labels.js';
import { ClusterManager } from './upstream/cluster/cluster-manager.js';
import { createProbe } from './upstream/health/probes.js';
import { clusterTlsContext, type UpstreamTlsContext } from './tls/upstream-tls.js';
// Type-only: the ADS client (grpc-js + the xDS protos, ~20 MB of heap) is imported
// lazily, only when a control plane is configured; a static bootstrap never loads it.
import type { AdsClient, XdsNode } from './xds-client/ads-client.js';
import type { DeltaAdsClient } from './xds-client/delta-ads-client.js';
import type { Backoff } from './xds-client/backoff.js';
import { NODE_METADATA } from './xds-client/node-metadata.js';
import type { IdentityManager, WorkloadSvid } from './identity/identity-manager.js';
import { SDS_DEFAULT_CERT, SDS_ROOT_CA, TlsMaterial } from './tls/tls-material.js';
import { applySecrets, parseSecrets } from './tls/secrets.js';
import { accessLogHook, recorderFor, startTelemetry, type TelemetryOptions } from './telemetry/setup.js';

export type { AccessLogEntry } from './http/forward.js';
export type { Snapshot, ResourceKind } from './config/state.js';
export { NODE_METADATA } from './xds-client/node-metadata.js';

export interface ProxyOptions {
  /** Envoy-style bootstrap: a JSON/YAML file path, or the object itself. */
  readonly bootstrap?: string | ProtoJson;
  /** Admin `host:port`; default the bootstrap's admin.address, else 127.0.0.1:15000. Port 0 picks one. */
  readonly adminAddr?: string;
  /** ADS servers (`host:port`); overrides the bootstrap's ads_config. */
  readonly xdsAddresses?: readonly string[];
  /** Node identity; merged over the bootstrap's `node`. `locality` is sent as node.locality (EDS priorities are relative to it). */
  readonly node?: { id?: string; cluster?: string; metadata?: Record<string, unknown>; locality?: { region?: string; zone?: string; sub_zone?: string } };
  /**
   * The workload this sidecar serves; sent as node metadata (NODE_METADATA keys) so the
   * control plane can register it. Also names the node (`sidecar~ADDRESS~SERVICE.NAMESPACE`)
   * unless `node.id` is given.
   */
  readonly workload?: { service: string; namespace?: string; address?: string; ports?: readonly number[]; serviceAccount?: string | undefined };
  /**
   * Listener name → `host:port` to bind instead of the address its config gives (port 0
   * picks one). `weft proxy` binds the xDS `outbound` listener (0.0.0.0:15001) on loopback.
   */
  readonly listenerAddresses?: Readonly<Record<string, string>>;
  readonly logLevel?: string;
  readonly logger?: Logger;
  /** Called once per finished downstream request (access log, tap). */
  readonly onAccessLog?: (e: AccessLogEntry) => void;
  /** How long removed listeners and `close()` let busy connections finish. Default 5 s. */
  readonly drainMs?: number;
  readonly initialFetchTimeoutMs?: number;
  /** Reconnect backoff for the ADS client (tests inject a fast one). */
  readonly xdsBackoff?: Backoff;
  /**
   * xDS flavour: `delta` (incremental: only changed resources travel, reconnects resend
   * nothing the proxy holds) or `sotw` (state of the world). Default DEFAULT_XDS_PROTOCOL.
   */
  readonly xdsProtocol?: XdsProtocol;
  /** Notified after each xDS response (accepted or NACKed). */
  readonly onXdsResponse?: (e: { typeUrl: string; version: string; accepted: boolean; error?: string }) => void;
  /**
   * The workload identity (src/proxy/identity/), shown at admin `/certs`; the caller owns
   * and closes it. Its SVID is the SDS secret `default` and its bundle `ROOTCA` of TLS
   * listeners and clusters (tls/tls-material.ts), followed through `rotated` / `bundle`.
   */
  readonly identity?: Pick<IdentityManager, 'certs'> & Partial<Pick<IdentityManager, 'current' | 'on' | 'off' | 'setTrustBundle'>>;
  /**
   * Worker processes (node:cluster) sharing the listener ports; default 1 (this process
   * serves). With N > 1 this process becomes the primary: it holds the one ADS stream,
   * serves admin (stats summed over workers) and sends each accepted config to the
   * workers over IPC; see src/proxy/workers/. `onAccessLog`, `logger` and `identity`
   * stay in the primary and do not see worker requests.
   */
  readonly concurrency?: number;
  /** false: no admin server (node:cluster workers, whose primary serves admin). Default true. */
  readonly admin?: boolean;
  /**
   * Summaries and taps for the control plane (src/proxy/telemetry/): on by default when
   * the node metadata names a Service and a control plane is configured; false turns it off.
   */
  readonly telemetry?: TelemetryOptions | false;
}

export type XdsProtocol = 'sotw' | 'delta';
export const DEFAULT_XDS_PROTOCOL: XdsProtocol = 'delta';

/** The ADS client class for `protocol`, loaded lazily (grpc-js and the protos are heavy). */
export async function loadAdsClient(protocol: XdsProtocol | undefined): Promise<typeof AdsClient | typeof DeltaAdsClient> {
  return (protocol ?? DEFAULT_XDS_PROTOCOL) === 'delta'
    ? (await import('./xds-client/delta-ads-client.js')).DeltaAdsClient
    : (await import('./xds-client/ads-client.js')).AdsClient;
}

export interface Proxy {
  readonly adminUrl: string;
  /** Bound port of a listener (by Listener name), once it listens. */
  listenerPort(name: string): number | undefined;
  isReady(): boolean;
  /** The snapshot in force. */
  snapshot(): Snapshot;
  /**
   * Applies resources as an xDS response would (LDS/CDS replace all dynamic ones of the
   * kind; RDS/EDS add or replace by name; `full: true` makes any kind replace all of its
   * dynamic resources) and waits for listeners to bind (in every worker, with workers). Throws a
   * ConfigError (nothing changes) on a resource it cannot honour.
   */
  applyResources(kind: ResourceKind, resources: readonly unknown[], version: string, opts?: { full?: boolean }): Promise<void>;
  readonly stats: ProxyStats;
  /** TLS secrets by SDS name (`default` = the SVID, `ROOTCA` = the bundle); tests and workers set them. */
  readonly tlsMaterial: TlsMaterial;
  /** Stops accepting downstream connections and lets busy ones finish (drainMs). */
  drain(): Promise<void>;
  close(): Promise<void>;
}

function splitHostPort(addr: string, flag: string): { host: string; port: number } {
  const m = /^\[?([^\]]*?)\]?:(\d+)$/.exec(addr);
  if (m === null) throw new Error(`${flag}: want host:port, got "${addr}"`);
  return { host: m[1]!, port: Number(m[2]) };
}

/** The xDS node identity: options over the bootstrap's `node`, workload metadata, a default id. */
export function xdsNode(opts: ProxyOptions, bootstrap: Bootstrap): XdsNode {
  const w = opts.workload;
  const workloadMeta: Record<string, unknown> = {};
  if (w !== undefined) {
    workloadMeta[NODE_METADATA.service] = w.service;
    workloadMeta[NODE_METADATA.namespace] = w.namespace ?? 'default';
    if (w.address !== undefined) workloadMeta[NODE_METADATA.workloadAddress] = w.address;
    if (w.ports !== undefined) workloadMeta[NODE_METADATA.workloadPorts] = w.ports.join(',');
    if (w.serviceAccount !== undefined) workloadMeta[NODE_METADATA.serviceAccount] = w.serviceAccount;
  }
  const defaultId = w === undefined ? `weft-proxy~${hostname()}~${process.pid}` : `sidecar~${w.address ?? hostname()}~${w.service}.${w.namespace ?? 'default'}`;
  return {
    id: opts.node?.id ?? bootstrap.node.id ?? defaultId,
    cluster: opts.node?.cluster ?? bootstrap.node.cluster ?? (w === undefined ? '' : `${w.service}.${w.namespace ?? 'default'}`),
    metadata: { ...bootstrap.node.metadata, ...workloadMeta, ...opts.node?.metadata },
    ...(opts.node?.locality !== undefined ? { locality: opts.node.locality } : {}),
  };
}

/** Mirrors the identity's SVID and bundle into the TLS material; returns the unsubscribe. */
export function followIdentity(m: TlsMaterial, identity: ProxyOptions['identity']): () => void {
  if (identity?.current === undefined || identity.on === undefined) return () => {};
  const onSvid = (svid: WorkloadSvid): void => {
    m.setCertificate(SDS_DEFAULT_CERT, { certPem: svid.chainPem, keyPem: svid.keyPem });
    m.setValidation(SDS_ROOT_CA, svid.bundlePem);
  };
  const onBundle = (pem: string): void => m.setValidation(SDS_ROOT_CA, pem);
  const cur = identity.current();
  if (cur !== undefined) onSvid(cur);
  identity.on('rotated', onSvid);
  identity.on('bundle', onBundle);
  return () => { identity.off?.('rotated', onSvid); identity.off?.('bundle', onBundle); };
}

export async function startProxy(opts: ProxyOptions = {}): Promise<Proxy> {
  if ((opts.concurrency ?? 1) > 1) {
    const { startPrimary } = await import('./workers/primary.js');
    return startPrimary(opts);
  }
  const log = opts.logger ?? createLogger('weft-proxy', opts.logLevel);
  const bootstrap = await loadBootstrap(opts.bootstrap);
  const stats = new ProxyStats();
  // Active health checks use the cluster's TLS (SVID, SPIFFE ID check) like requests do; state, tlsMaterial and log exist by the first probe.
  const clusters: ClusterManager = new ClusterManager(stats, { probe: createProbe((name): UpstreamTlsContext | undefined => {
    const c = state.snapshot.clusters.get(name);
    return c === undefined ? undefined : clusterTlsContext(c, tlsMaterial, (scope) => stats.sslScope(scope), log);
  }) });
  let listeners: ListenerManager | undefined = undefined;
  let listenersSettled: Promise<void> = Promise.resolve();
  const rebind = new Map(Object.entries(opts.listenerAddresses ?? {}).map(([n, a]) => [n, splitHostPort(a, `listenerAddresses.${n}`)]));
  /** The snapshot with overridden listener addresses, for binding only (requests read the real one). */
  const bindView = (snap: Snapshot): Snapshot => {
    if (rebind.size === 0) return snap;
    const ls = new Map(snap.listeners);
    for (const [n, a] of rebind) {
      const l = ls.get(n);
      if (l !== undefined) ls.set(n, Object.freeze({ ...l, host: a.host, port: a.port }));
    }
    return { ...snap, listeners: ls };
  };
  const state = new ConfigState(clusters, (snap) => {
    if (listeners !== undefined) listenersSettled = listeners.reconcile(bindView(snap));
  });
  const telemetryNode = xdsNode(opts, bootstrap);
  // Istio-style metric labels (observability/labels.ts): who this proxy is.
  stats.labels.setSelf(selfIdentityOf(telemetryNode));
  stats.labels.setSelfPrincipal(opts.identity?.certs().spiffeId);
  const recorder = recorderFor(opts.telemetry, telemetryNode.metadata);
  const tlsMaterial = new TlsMaterial();
  const unfollow = followIdentity(tlsMaterial, opts.identity);
  const ctx = { snapshot: () => state.snapshot, stats, onAccessLog: accessLogHook(recorder, opts.onAccessLog), tls: { material: tlsMaterial, log } };
  listeners = new ListenerManager(ctx, log, opts.drainMs ?? 5000);

  // Static resources: clusters before listeners, as Envoy initialises them.
  state.apply('cluster', bootstrap.staticClusters, '', { full: false, isStatic: true });
  state.apply('listener', bootstrap.staticListeners, '', { full: false, isStatic: true });
  await listenersSettled;
  let staticReady = true;
  let draining = false;

  const xdsAddresses = opts.xdsAddresses ?? bootstrap.adsAddresses;
  let ads: AdsClient | DeltaAdsClient | undefined;
  if (xdsAddresses.length > 0) {
    const node = xdsNode(opts, bootstrap);
    const Ads = await loadAdsClient(opts.xdsProtocol);
    ads = new Ads({
      addresses: xdsAddresses,
      node,
      state,
      log,
      backoff: opts.xdsBackoff,
      initialFetchTimeoutMs: opts.initialFetchTimeoutMs,
      onResponse: opts.onXdsResponse,
      onInitialized: () => { staticReady = false; void listenersSettled.then(() => { staticReady = true; }); },
      // SDS over ADS: ROOTCA after a root rotation also reaches the identity (and its xDS mTLS).
      onSecrets: (res) => applySecrets(tlsMaterial, parseSecrets(res), (name, pem) => { if (name === SDS_ROOT_CA) opts.identity?.setTrustBundle?.(pem); }),
    });
    ads.start();
  }
  const telemetry = await startTelemetry({ opts: opts.telemetry, recorder, addresses: xdsAddresses, nodeId: telemetryNode.id, metadata: telemetryNode.metadata, log, certs: opts.identity === undefined ? undefined : () => opts.identity!.certs() });

  let admin: AdminServer | undefined;
  const adminAddr = splitHostPort(opts.adminAddr ?? bootstrap.adminAddr ?? '127.0.0.1:15000', 'adminAddr');
  const drain = async (): Promise<void> => {
    draining = true;
    await listeners?.close(opts.drainMs ?? 5000);
  };
  try {
    if (opts.admin !== false) admin = await startAdminServer(adminAddr.host, adminAddr.port, {
      snapshot: () => state.snapshot,
      stats,
      isReady: () => !draining && staticReady && (ads === undefined || ads.isInitialized),
      bootstrap: () => bootstrap.raw,
      drain,
      ...(opts.identity ? { certs: () => opts.identity!.certs() } : {}),
      status: () => proxyStatus(ads?.status(), opts.identity?.certs()),
    });
  } catch (e) {
    ads?.close();
    telemetry?.close();
    await listeners.close();
    clusters.close();
    throw e;
  }
  log.info({ admin: admin?.url, listeners: listeners.addresses(), xds: xdsAddresses }, 'proxy started');

  return {
    adminUrl: admin?.url ?? '',
    listenerPort: (name) => listeners?.port(name),
    isReady: () => !draining && staticReady && (ads === undefined || ads.isInitialized),
    snapshot: () => state.snapshot,
    applyResources: async (kind, resources, version, o) => {
      state.apply(kind, resources, version, { full: o?.full ?? (kind === 'listener' || kind === 'cluster') });
      await listenersSettled;
    },
    stats,
    tlsMaterial,
    drain,
    close: async () => {
      unfollow();
      ads?.close();
      await listeners?.close();
      telemetry?.close();
      await flushObservability();
      await admin?.close();
      clusters.close();
    },
  };
}
