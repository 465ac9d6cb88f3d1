import { mkdir, stat } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import type { SourceDocument } from '../api/parse.js';
import { keyOf, keyString } from '../api/types.js';
import { validateDocuments } from '../api/validate.js';
import { formatFieldError, WeftError } from '../lib/errors.js';
import { createLogger, type Logger } from '../lib/log.js';
import { openEtcdStore, type EtcdStore } from '../store/etcd/etcd-store.js';
import { openFileStore } from '../store/file/file-store.js';
import type { ConfigStore } from '../store/types.js';
import { loadOrCreateAdminToken } from './admin-token.js';
import { sharedAdminToken } from './ha/admin-token.js';
import { checkSharedRoot, sharedJoinTokenKey } from './ha/ca-shared.js';
import { startHa } from './ha/ha.js';
import type { LeaderStatus } from './ha/leader.js';
import { isLoopback } from './http/auth.js';
import { createApiServer, type ApiServer } from './http/server.js';
import { readMeshSettings, startCaService, type CaService } from './identity/ca-service.js';
import { SOLE_LEADER, startRootRotation } from './identity/root-rotation.js';
import type { XdsStatusSource } from './http/xds.js';
import type { AdsServer } from './xds/ads-server.js';
import type { SuppliedCaFiles } from './ca/root.js';
import { startXdsServer } from './xds/xds-server.js';
import { ControlPlaneTls } from './xds/xds-tls.js';
import { TelemetryHub } from './telemetry/hub.js';

export interface ControlPlaneOptions {
  dataDir: string;
  /** `host:port` (`[::1]:15020` for IPv6); port 0 picks a free one. */
  apiAddr: string;
  /**
   * xDS (gRPC, plaintext) `host:port`; port 0 picks a free one. `weft control`
   * always passes one (default DEFAULT_XDS_ADDR, 127.0.0.1:15010). Omitted, it
   * is `127.0.0.1:0`: an embedder or test that starts several control planes
   * in one process must not collide on a fixed port it never asked for.
   */
  xdsAddr?: string;
  /** Allow a non-loopback `xdsAddr` although xDS is unauthenticated (`--xds-insecure-public`). */
  xdsInsecurePublic?: boolean;
  /**
   * The mTLS xDS listener (`--xds-tls-addr`): a certificate of the mesh CA,
   * client certificates required and checked against the trust bundle.
   * Omitted: none.
   */
  xdsTlsAddr?: string;
  /** Debounce of store changes before xDS translation (default 100 ms). */
  xdsDebounceMs?: number;
  logLevel?: string;
  /**
   * The operator's CA PEM files (`--ca-cert/--ca-key`, `--ca-intermediate-*`)
   * instead of a root generated in DATA_DIR/ca. With several replicas, give
   * every one the same files: that is how they share the signing key.
   */
  caSupplied?: SuppliedCaFiles;
  /**
   * `--dev-workload-ttl`: the lifetime of every workload certificate, whatever
   * the Mesh says (may be below its 1m floor). Testing and demos only.
   */
  devWorkloadTtlMs?: number;
  /**
   * Keep the configuration in etcd instead of DATA_DIR/store (`--store
   * etcd://...`): many replicas share it (docs/ha.md). The data directory
   * still holds the admin token.
   */
  etcd?: {
    endpoints: string[];
    /** Key prefix (default `/weft/`). */
    prefix?: string;
    /** Lease TTL of this replica's registrations and leadership, seconds (default 10). */
    leaseTtlSeconds?: number;
  };
}

/** `weft control --xds-addr` default (DESIGN.md, "Ports"). */
export const DEFAULT_XDS_ADDR = '127.0.0.1:15010';

export interface ControlPlane {
  /** `http://host:port` with the port actually bound. */
  apiUrl: string;
  /** `host:port` of the xDS listener, with the port actually bound. */
  xdsAddress: string;
  /** `host:port` of the mTLS xDS listener, when one was asked for. */
  xdsTlsAddress?: string;
  adminToken: string;
  store: ConfigStore;
  /** With an etcd store: whether this replica runs the singleton duties (src/control/ha/leader.ts). */
  leader?: LeaderStatus;
  /** The mesh CA (DATA_DIR/ca): tokens, certificates, trust bundle, root rotation (through `ca.ca`). */
  ca: CaService;
  /** Stops accepting, ends watch streams, waits for in-flight requests, closes the store. */
  close(): Promise<void>;
}

/** Something the control plane runs; started in order, stopped in reverse. */
interface Service {
  name: string;
  stop(): Promise<void>;
}

/**
 * Starts `weft control`: data directory, store, admin token, then the network
 * services. New services (the xDS server, the CA) are started in the marked
 * place below and pushed onto `services`; close() stops them in reverse order,
 * then closes the store they all read.
 */
export async function startControlPlane(opts: ControlPlaneOptions): Promise<ControlPlane> {
  const log = createLogger('control', opts.logLevel);
  const xdsAddr = opts.xdsAddr ?? '127.0.0.1:0';
  checkXdsAddr(xdsAddr, opts.xdsInsecurePublic ?? false);
  const dataDir = resolve(opts.dataDir);
  await ensurePrivateDir(dataDir, log);

  const storeLog = log.child({ component: 'store' });
  const etcdStore: EtcdStore | undefined = opts.etcd
    ? await openEtcdStore({ endpoints: opts.etcd.endpoints, ...(opts.etcd.prefix !== undefined ? { prefix: opts.etcd.prefix } : {}), logger: storeLog })
    : undefined;
  const store: ConfigStore = etcdStore ?? (await openFileStore(join(dataDir, 'store'), { logger: storeLog }));
  const services: Service[] = [];
  const stopAll = async () => {
    for (const s of services.reverse()) {
      try {
        await s.stop();
      } catch (err) {
        log.error({ err, service: s.name }, 'stopping a service failed');
      }
    }
    services.length = 0;
    await store.close();
  };

  try {
    const adminToken = etcdStore ? await sharedAdminToken(etcdStore, dataDir, log) : await loadOrCreateAdminToken(dataDir);
    await revalidateStored(store, log);

    // --- services: start here, each followed by services.push({ name, stop }) ---
    // The CA first: the HTTP API (/ca/*) and SDS serve from it. Not a listener, so the
    // API port is still the first thing bound.
    // With etcd, the join-token key is the one every replica shares (ha/ca-shared.ts).
    const caLog = log.child({ component: 'ca' });
    const joinTokenKey = etcdStore ? await sharedJoinTokenKey(etcdStore, dataDir, caLog) : undefined;
    const ca = await startCaService({ dataDir, store, log: caLog, ...(opts.caSupplied ? { supplied: opts.caSupplied } : {}), ...(joinTokenKey ? { joinTokenKey } : {}), ...(opts.devWorkloadTtlMs !== undefined ? { workloadTtlOverrideMs: opts.devWorkloadTtlMs } : {}), replicated: etcdStore !== undefined });
    services.push({ name: 'ca', stop: async () => ca.close() });
    if (etcdStore) {
      await checkSharedRoot(etcdStore, ca.ca.material, caLog);
      if (opts.caSupplied === undefined) {
        caLog.warn('ca: no --ca-cert/--ca-key with --store etcd: this replica generated its own root in DATA_DIR/ca, so certificates from other replicas will not verify against its bundle; give every replica the same CA files (docs/ha.md)');
      }
    }
    // The HTTP API binds first: its address is the one people check, and a taken
    // API port should be the error they see. It reads the ADS server through a
    // holder filled in a moment later (until then: no clients).
    const started: { ads?: AdsServer; leader?: LeaderStatus } = {};
    const xdsView: XdsStatusSource & { readonly leader?: LeaderStatus } = {
      listClients: () => started.ads?.listClients() ?? [],
      configOf: (nodeId) => started.ads?.configOf(nodeId),
      get counters() {
        return started.ads?.counters ?? { pushes: 0, nacks: 0, stale: 0 };
      },
    };
    // weft_control_leader (metrics.ts reads it from here); only with etcd.
    if (etcdStore) Object.defineProperty(xdsView, 'leader', { enumerable: true, get: () => started.leader });
    // Proxies' summaries and taps: served on the xDS port, read through the HTTP API.
    const telemetry = new TelemetryHub({ log: log.child({ component: 'telemetry' }), store });
    services.push({ name: 'telemetry', stop: async () => telemetry.close() });
    const api = createApiServer({ store, adminToken, xds: xdsView, ca, telemetry, log: log.child({ component: 'http' }) });
    const apiAddress = await listen(api, opts.apiAddr);
    api.on('error', (err) => log.error({ err }, 'HTTP API server error'));
    services.push({ name: 'http', stop: () => closeServer(api) });
    const apiUrl = `http://${apiAddress.family === 'IPv6' ? `[${apiAddress.address}]` : apiAddress.address}:${apiAddress.port}`;

    const xdsTls = opts.xdsTlsAddr !== undefined ? await ControlPlaneTls.start(ca, log.child({ component: 'xds' })) : undefined;
    if (xdsTls) services.push({ name: 'xds-tls', stop: async () => xdsTls.close() });
    const xds = await startXdsServer({
      store,
      addr: xdsAddr,
      sds: ca,
      ...(xdsTls && opts.xdsTlsAddr !== undefined ? { tls: { addr: opts.xdsTlsAddr, certificates: xdsTls } } : {}),
      insecurePublic: opts.xdsInsecurePublic ?? false,
      telemetry,
      log: log.child({ component: 'xds' }),
      ...(opts.xdsDebounceMs !== undefined ? { debounceMs: opts.xdsDebounceMs } : {}),
    });
    services.push({ name: 'xds', stop: () => xds.close() });
    started.ads = xds.ads;

    if (etcdStore) {
      const ha = await startHa({ store: etcdStore, registry: xds.registry, ...(opts.etcd?.leaseTtlSeconds !== undefined ? { leaseTtlSeconds: opts.etcd.leaseTtlSeconds } : {}), log: log.child({ component: 'ha' }) });
      services.push({ name: 'ha', stop: () => ha.close() });
      started.leader = ha.leader;
    }
    // Singleton duty under the leader (without etcd this process is the only one): CA root rotation.
    const rootRotation = startRootRotation({ ca, leader: started.leader ?? SOLE_LEADER, workloadTtlMs: async () => (await readMeshSettings(store)).workloadTtlMs, log: caLog });
    services.push({ name: 'root-rotation', stop: async () => rootRotation.close() });
    // --- end of services ---

    log.info({ apiUrl, xdsAddress: xds.address, xdsTlsAddress: xds.tlsAddress, dataDir }, 'control plane started');
    let closing: Promise<void> | undefined;
    return {
      apiUrl,
      xdsAddress: xds.address,
      ...(xds.tlsAddress !== undefined ? { xdsTlsAddress: xds.tlsAddress } : {}),
      adminToken,
      store,
      ca,
      ...(started.leader ? { leader: started.leader } : {}),
      close: () => {
        closing ??= stopAll().then(() => log.info('control plane stopped'));
        return closing;
      },
    };
  } catch (e) {
    await stopAll().catch((err: unknown) => log.error({ err }, 'cleanup after a failed start failed'));
    throw e;
  }
}

/** `host:port`, `[v6]:port`; the port may be 0. */
export function parseHostPort(addr: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(addr.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new WeftError('WEFT_ERR_USAGE', `address "${addr}" must be host:port (e.g. 127.0.0.1:15020 or [::1]:15020)`);
  return { host: (m[1] ?? m[2])!, port };
}

/**
 * The plaintext xDS listener does not authenticate its peers (the mTLS one,
 * `xdsTlsAddr`, does). Anyone who can reach it can read every
 * Service, route and endpoint of the mesh and register workloads that then
 * receive traffic. So it stays on loopback, where only this machine's
 * processes (proxies, proxyless gRPC apps) can reach it, unless the operator
 * says in so many words that the network is trusted.
 */
function checkXdsAddr(addr: string, insecurePublic: boolean): void {
  const { host } = parseHostPort(addr);
  if (insecurePublic || host === 'localhost' || isLoopback(host)) return;
  throw new WeftError(
    'WEFT_ERR_USAGE',
    `--xds-addr ${addr} is not a loopback address: that listener is plaintext and unauthenticated, so anyone who reaches it can read the mesh's configuration and register workloads; use 127.0.0.1 or [::1] (other hosts use the mTLS listener, --xds-tls-addr), or add --xds-insecure-public on a trusted network`,
  );
}

async function ensurePrivateDir(dir: string, log: Logger): Promise<void> {
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const st = await stat(dir);
    // An existing directory keeps its mode (it is the user's); say so if others can read it.
    if (process.platform !== 'win32' && (st.mode & 0o077) !== 0) {
      log.warn({ dataDir: dir, mode: (st.mode & 0o777).toString(8) }, 'the data directory is accessible to other users; chmod 700 it');
    }
  } catch (e) {
    throw new WeftError('WEFT_ERR_STORE', `cannot create the data directory ${dir}`, { cause: e });
  }
}

/**
 * Schemas and checks get stricter between versions; an object stored by an
 * older Weft may no longer pass. It stays (deleting user config is never right)
 * and is served as is, but every problem is logged at start. References are not
 * checked here: a dangling one is a state the store may legitimately pass through.
 */
async function revalidateStored(store: ConfigStore, log: Logger): Promise<void> {
  const { items } = await store.list();
  const docs: SourceDocument[] = items.map((r, i) => ({ source: 'store', document: i + 1, pathPrefix: '', value: r }));
  const { errors } = validateDocuments(docs);
  for (const e of errors) {
    const r = e.document === undefined ? undefined : items[e.document - 1];
    log.warn({ object: r ? keyString(keyOf(r)) : undefined, path: e.path, problem: e.message }, `stored object no longer validates: ${formatFieldError({ ...e, source: undefined, document: undefined })}`);
  }
  if (errors.length > 0) log.warn({ errors: errors.length }, 'some stored objects do not validate; fix them with weft apply');
}

function listen(server: ApiServer, addr: string): Promise<AddressInfo> {
  const { host, port } = parseHostPort(addr);
  return new Promise((resolvePromise, reject) => {
    const onError = (e: Error) => reject(new WeftError('WEFT_ERR_UNAVAILABLE', `cannot listen on ${addr}: ${e.message}`, { cause: e }));
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolvePromise(server.address() as AddressInfo);
    });
  });
}

function closeServer(server: ApiServer): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    server.close((err) => (err && (err as NodeJS.ErrnoException).code !== 'ERR_SERVER_NOT_RUNNING' ? reject(err) : resolvePromise()));
  });
}
