/**
 * The proxy with N node:cluster workers (`startProxy({ concurrency: N })`, `weft proxy
 * --concurrency N`), Envoy's `--concurrency` / Istio's sidecar default of 2:
 *
 * - the primary holds the config: the bootstrap's static resources, the one ADS stream
 *   (one registration per proxy, not per worker) and a ConfigState that compiles every
 *   response (ACK/NACK as in a single process). After each accepted change it sends the
 *   workers the dynamic resources in force (a whole-config message; coalesced per tick).
 * - each worker (worker-main.ts) runs listeners and upstream pools; node:cluster shares
 *   the listening sockets (SCHED_RR: the primary accepts and hands connections out).
 * - admin is served by the primary: /config_dump and /clusters from its snapshot,
 *   /stats and /metrics summed over the workers (gathered over IPC per scrape),
 *   /workers per worker. /ready: the config is in force in every worker.
 * - drain() drains every worker; close() closes and reaps them. A worker that dies
 *   unexpectedly is replaced and sent the current config.
 */
import cluster, { type Worker } from 'node:cluster';
import { fileURLToPath } from 'node:url';
import { createLogger } from '../../lib/log.js';
import { startAdminServer, type AdminServer } from '../admin/admin-server.js';
import { proxyStatus } from '../admin/status.js';
import { loadBootstrap } from '../config/bootstrap.js';
import { ConfigState } from '../config/state.js';
import { followIdentity, loadAdsClient, xdsNode, type Proxy, type ProxyOptions } from '../proxy.js';
import { SDS_ROOT_CA, TlsMaterial } from '../tls/tls-material.js';
import { applySecrets, parseSecrets } from '../tls/secrets.js';
import { ProxyStats } from '../stats.js';
import { ClusterManager } from '../upstream/cluster/cluster-manager.js';
import type { AdsClient } from '../xds-client/ads-client.js';
import type { DeltaAdsClient } from '../xds-client/delta-ads-client.js';
import { ownServiceOf, recorderFor, startTelemetry } from '../telemetry/setup.js';
import { configMessage, mergeStats, requestTotal, sumHostCounters, type HostCountersWire, WORKER_INDEX_ENV, WORKER_OPTIONS_ENV, type FromWorker, type StatsWire, type ToWorker, type WorkerOptions } from './protocol.js';

const START_TIMEOUT_MS = 30_000;
const REPLY_TIMEOUT_MS = 5_000;
/** A crash loop stops restarting workers after this many exits within the window. */
const MAX_RESTARTS = 10;
const RESTART_WINDOW_MS = 60_000;

interface Slot {
  readonly index: number;
  worker: Worker;
  up: boolean;
  appliedSeq: number;
  ports: Record<string, number>;
  lastError: string | undefined;
}

function splitHostPort(addr: string): { host: string; port: number } {
  const m = /^\[?([^\]]*?)\]?:(\d+)$/.exec(addr);
  if (m === null) throw new Error(`adminAddr: want host:port, got "${addr}"`);
  return { host: m[1]!, port: Number(m[2]) };
}

/**
 * The primary's node flags minus those that would make a worker run something else than
 * worker-main.js (`-e`/`-p` code, `--test`, `--input-type`); the rest (--cpu-prof,
 * --max-old-space-size…) carries over.
 */
export function workerExecArgv(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '-e' || a === '--eval' || a === '-p' || a === '--print') { i++; continue; }
    if (a.startsWith('--eval=') || a.startsWith('--print=') || a.startsWith('--test') || a.startsWith('--input-type') || a.startsWith('--watch')) continue;
    out.push(a);
  }
  return out;
}

export async function startPrimary(opts: ProxyOptions): Promise<Proxy> {
  if (!cluster.isPrimary) throw new Error('startProxy({ concurrency > 1 }) must run in a node:cluster primary, not in a worker');
  const n = Math.max(1, Math.floor(opts.concurrency ?? 2));
  const log = opts.logger ?? createLogger('weft-proxy', opts.logLevel);
  const bootstrap = await loadBootstrap(opts.bootstrap);
  const stats = new ProxyStats();
  // The primary compiles clusters (for ACK/NACK and /config_dump) but sends no traffic:
  // its active health checks probe nothing (each worker runs its own).
  const clusters = new ClusterManager(stats, { probe: () => Promise.resolve(true) });

  let seq = 0;
  let broadcastPending = false;
  const slots: Slot[] = [];
  let closing = false;
  let draining = false;
  const toAll = (m: ToWorker): void => {
    for (const s of slots) if (s.up && s.worker.isConnected()) s.worker.send(m);
  };
  const state = new ConfigState(clusters, () => {
    seq++;
    if (broadcastPending) return;
    broadcastPending = true;
    // One message per tick however many kinds changed in it.
    setImmediate(() => { broadcastPending = false; toAll(configMessage(state.snapshot, seq)); });
  });
  state.apply('cluster', bootstrap.staticClusters, '', { full: false, isStatic: true });
  state.apply('listener', bootstrap.staticListeners, '', { full: false, isStatic: true });
  let readySeq = seq;
  // TLS secrets live here (the identity is the primary's) and are copied to every worker.
  const tlsMaterial = new TlsMaterial();
  const unfollow = followIdentity(tlsMaterial, opts.identity);
  tlsMaterial.on('change', () => toAll({ t: 'tls', material: tlsMaterial.dump() }));
  // Telemetry: workers count and push (telemetry/worker-push.ts); this recorder merges and sends.
  const node = xdsNode(opts, bootstrap);
  const recorder = recorderFor(opts.telemetry, node.metadata);
  const own = recorder === undefined ? undefined : ownServiceOf(node.metadata);

  // ---- workers
  const wopts: WorkerOptions = {
    ...(opts.bootstrap !== undefined ? { bootstrap: opts.bootstrap } : {}),
    ...(opts.listenerAddresses !== undefined ? { listenerAddresses: opts.listenerAddresses } : {}),
    ...(opts.drainMs !== undefined ? { drainMs: opts.drainMs } : {}),
    ...(opts.logLevel !== undefined ? { logLevel: opts.logLevel } : {}),
    ...(own !== undefined ? { telemetry: own } : {}),
    node: { id: node.id, metadata: node.metadata },
    ...(opts.identity !== undefined ? { principal: opts.identity.certs().spiffeId } : {}),
  };
  {
    cluster.schedulingPolicy = cluster.SCHED_RR;
    cluster.setupPrimary({
      exec: fileURLToPath(new URL('./worker-main.js', import.meta.url)),
      args: [],
      execArgv: workerExecArgv(process.execArgv),
    });
  }
  let nextId = 1;
  const waiting = new Map<number, (m: FromWorker) => void>();
  const appliedWaiters = new Set<() => void>();
  const notifyApplied = (): void => { for (const f of [...appliedWaiters]) f(); };

  const restarts: number[] = [];
  const fork = (index: number): Slot => {
    const worker = cluster.fork({ [WORKER_OPTIONS_ENV]: JSON.stringify(wopts), [WORKER_INDEX_ENV]: String(index) });
    const slot: Slot = slots[index] ?? { index, worker, up: false, appliedSeq: 0, ports: {}, lastError: undefined };
    Object.assign(slot, { worker, up: false, appliedSeq: 0, ports: {}, lastError: undefined });
    slots[index] = slot;
    worker.on('message', (m: FromWorker) => {
      switch (m.t) {
        case 'up':
          slot.up = true;
          // Secrets before config, so the worker's first TLS handshake has them.
          worker.send({ t: 'tls', material: tlsMaterial.dump() } satisfies ToWorker);
          worker.send(configMessage(state.snapshot, seq));
          if (recorder !== undefined && recorder.activeTaps > 0) worker.send({ t: 'taps', taps: recorder.tapSpecs() } satisfies ToWorker);
          return;
        case 'telemetry':
          recorder?.mergeWorker(m.summary, m.tap);
          return;
        case 'applied':
          slot.appliedSeq = Math.max(slot.appliedSeq, m.seq);
          slot.ports = m.ports;
          slot.lastError = m.error;
          if (m.error !== undefined) log.error({ worker: index, err: m.error }, 'worker failed to apply config');
          return notifyApplied();
        case 'stats':
        case 'done':
          waiting.get(m.id)?.(m);
          waiting.delete(m.id);
          return;
      }
    });
    worker.on('error', (e) => log.warn({ worker: index, err: e }, 'worker IPC error'));
    worker.on('exit', (code, signal) => {
      slot.up = false;
      notifyApplied();
      if (closing) return;
      const now = Date.now();
      restarts.push(now);
      while (restarts.length > 0 && restarts[0]! < now - RESTART_WINDOW_MS) restarts.shift();
      if (restarts.length > MAX_RESTARTS) {
        log.error({ worker: index, code, signal }, `proxy worker exited; more than ${MAX_RESTARTS} restarts in ${RESTART_WINDOW_MS / 1000} s, not starting another`);
        return;
      }
      log.error({ worker: index, code, signal }, 'proxy worker exited; starting another');
      fork(index);
    });
    return slot;
  };

  /** Sends a request to one worker and waits for its reply (undefined if it is gone or slow). */
  const ask = (s: Slot, m: { t: 'stats' | 'drain' | 'close' }, timeoutMs = REPLY_TIMEOUT_MS): Promise<FromWorker | undefined> => new Promise((resolve) => {
    if (!s.worker.isConnected()) return resolve(undefined);
    const id = nextId++;
    const done = (r: FromWorker | undefined): void => { clearTimeout(timer); waiting.delete(id); s.worker.off('exit', gone); resolve(r); };
    const gone = (): void => done(undefined);
    const timer = setTimeout(gone, timeoutMs);
    waiting.set(id, done);
    s.worker.once('exit', gone);
    s.worker.send({ ...m, id } as ToWorker);
  });

  /** Resolves once every worker runs config `target` (or newer); rejects after `timeoutMs`. */
  const allApplied = (target: number, timeoutMs: number): Promise<void> => new Promise((resolve, reject) => {
    const check = (): void => {
      if (slots.length === n && slots.every((s) => s.up && s.appliedSeq >= target)) { clearTimeout(timer); appliedWaiters.delete(check); resolve(); }
    };
    const timer = setTimeout(() => {
      appliedWaiters.delete(check);
      reject(new Error(`proxy workers did not apply config ${target} within ${timeoutMs} ms (${slots.map((s) => `#${s.index}: up=${s.up} seq=${s.appliedSeq}`).join(', ')})`));
    }, timeoutMs);
    appliedWaiters.add(check);
    check();
  });

  /** Waits up to `graceMs` for every worker to exit, then SIGKILLs the rest. */
  const killAll = async (graceMs = 0): Promise<void> => {
    closing = true;
    await Promise.all(slots.map((s) => new Promise<void>((r) => {
      if (s.worker.isDead()) return r();
      const t = setTimeout(() => s.worker.process.kill('SIGKILL'), graceMs);
      s.worker.once('exit', () => { clearTimeout(t); r(); });
    })));
  };

  for (let i = 0; i < n; i++) fork(i);
  try {
    await allApplied(readySeq, START_TIMEOUT_MS);
  } catch (e) {
    await killAll();
    clusters.close();
    throw e;
  }

  // ---- ADS (primary only), loaded lazily as in a single process
  const xdsAddresses = opts.xdsAddresses ?? bootstrap.adsAddresses;
  let ads: AdsClient | DeltaAdsClient | undefined;
  let adsReady = xdsAddresses.length === 0;
  if (xdsAddresses.length > 0) {
    const Ads = await loadAdsClient(opts.xdsProtocol);
    ads = new Ads({
      addresses: xdsAddresses,
      node,
      state,
      log,
      backoff: opts.xdsBackoff,
      initialFetchTimeoutMs: opts.initialFetchTimeoutMs,
      onResponse: opts.onXdsResponse,
      onInitialized: () => { readySeq = seq; adsReady = true; },
      // SDS over ADS: ROOTCA after a root rotation also reaches the identity (and its xDS mTLS).
      onSecrets: (res) => applySecrets(tlsMaterial, parseSecrets(res), (name, pem) => { if (name === SDS_ROOT_CA) opts.identity?.setTrustBundle?.(pem); }),
    });
    ads.start();
  }
  const telemetry = await startTelemetry({
    opts: opts.telemetry, recorder, addresses: xdsAddresses, nodeId: node.id, metadata: node.metadata, log,
    onTapsChanged: (taps) => toAll({ t: 'taps', taps }),
    certs: opts.identity === undefined ? undefined : () => opts.identity!.certs(),
  });

  const gather = async (): Promise<{ slot: Slot; stats: StatsWire | undefined; hosts: HostCountersWire | undefined }[]> =>
    Promise.all(slots.map(async (s) => {
      const r = await ask(s, { t: 'stats' });
      return { slot: s, stats: r?.t === 'stats' ? r.stats : undefined, hosts: r?.t === 'stats' ? r.hosts : undefined };
    }));
  const isReady = (): boolean => !draining && adsReady && slots.every((s) => s.up && s.appliedSeq >= readySeq);
  const drain = async (): Promise<void> => {
    draining = true;
    await Promise.all(slots.map((s) => ask(s, { t: 'drain' }, (opts.drainMs ?? 5000) + REPLY_TIMEOUT_MS)));
  };

  let admin: AdminServer | undefined;
  if (opts.admin !== false) {
    const adminAddr = splitHostPort(opts.adminAddr ?? bootstrap.adminAddr ?? '127.0.0.1:15000');
    try {
      admin = await startAdminServer(adminAddr.host, adminAddr.port, {
        snapshot: () => state.snapshot,
        stats,
        isReady,
        bootstrap: () => bootstrap.raw,
        drain,
        ...(opts.identity ? { certs: () => opts.identity!.certs() } : {}),
        status: () => proxyStatus(ads?.status(), opts.identity?.certs()),
        gatherStats: async () => {
          const sum = new ProxyStats();
          for (const g of await gather()) if (g.stats !== undefined) mergeStats(sum, g.stats);
          return sum;
        },
        gatherHostCounters: async () => sumHostCounters((await gather()).flatMap((g) => (g.hosts === undefined ? [] : [g.hosts]))),
        workers: async () => (await gather()).map((g) => ({
          index: g.slot.index,
          pid: g.slot.worker.process.pid,
          ready: g.slot.up && g.slot.appliedSeq >= readySeq,
          config_seq: g.slot.appliedSeq,
          downstream_cx_total: g.stats?.numbers.downstreamCxTotal,
          downstream_rq_total: g.stats === undefined ? undefined : requestTotal(g.stats),
          ...(g.slot.lastError === undefined ? {} : { error: g.slot.lastError }),
        })),
      });
    } catch (e) {
      ads?.close();
      telemetry?.close();
      await killAll();
      clusters.close();
      throw e;
    }
  }
  log.info({ admin: admin?.url, workers: slots.map((s) => s.worker.process.pid), listeners: slots[0]?.ports, xds: xdsAddresses }, 'proxy started');
  // Access log rotation (observability/sinks.ts): the workers hold the files, so logrotate's SIGUSR1 to this process is passed on.
  const onUsr1 = (): void => { for (const s of slots) if (s.worker.isConnected()) s.worker.process.kill('SIGUSR1'); };
  process.on('SIGUSR1', onUsr1);

  return {
    adminUrl: admin?.url ?? '',
    listenerPort: (name) => slots.find((s) => s.up && s.ports[name] !== undefined)?.ports[name],
    isReady,
    snapshot: () => state.snapshot,
    applyResources: async (kind, resources, version, o) => {
      state.apply(kind, resources, version, { full: o?.full ?? (kind === 'listener' || kind === 'cluster') });
      await allApplied(seq, START_TIMEOUT_MS);
    },
    stats,
    tlsMaterial,
    drain,
    close: async () => {
      closing = true;
      process.off('SIGUSR1', onUsr1);
      unfollow();
      ads?.close();
      await Promise.all(slots.map((s) => ask(s, { t: 'close' }, REPLY_TIMEOUT_MS + 1000)));
      telemetry?.close();
      await killAll(2000);
      await admin?.close();
      clusters.close();
    },
  };
}
