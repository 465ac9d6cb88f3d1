/**
 * The control plane under test, alone in its own process so that its RSS and
 * CPU are its own: opens a file store in a temp dir, seeds it, starts the xDS
 * server on 127.0.0.1:0 and obeys the parent over IPC (see ChildRequest).
 * Store writes happen here (the file store is single-process), timed with the
 * same wall clock the parent uses: performance.timeOrigin + performance.now().
 */
import { performance } from 'node:perf_hooks';
import type { Resource } from '../../src/api/types.js';
import { createLogger } from '../../src/lib/log.js';
import { openFileStore } from '../../src/store/file/file-store.js';
import type { ConfigStore } from '../../src/store/types.js';
import { startXdsServer, type XdsServerHandle } from '../../src/control/xds/xds-server.js';
import { seed } from './fixtures.js';

export type ChildRequest =
  | { op: 'init'; id: number; dir: string; services: number; endpoints: number; debounceMs?: number }
  | { op: 'stats'; id: number; gc?: boolean }
  | { op: 'put'; id: number; resource: Resource }
  | { op: 'churn'; id: number; changes: Resource[]; ratePerSec: number }
  | { op: 'close'; id: number };

export interface ChildStats {
  rss: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
  /** process.cpuUsage(), microseconds. */
  cpuUserUs: number;
  cpuSystemUs: number;
  streams: number;
  pushes: number;
  nacks: number;
  stale: number;
  builds: number;
  /** The server's own change → ACK histogram (weft_control_xds_convergence_seconds): per-bucket counts (last: +Inf), sum in s. */
  convergence: { counts: number[]; sum: number; count: number };
}

export type ChildReply =
  | { op: 'ready'; id: number; address: string; seedMs: number; startMs: number }
  | { op: 'stats'; id: number; stats: ChildStats }
  | { op: 'put'; id: number; writeAt: number; doneAt: number }
  | { op: 'wrote'; k: number; writeAt: number; doneAt: number }
  | { op: 'churn-done'; id: number; written: number; maxLagMs: number; maxPutMs: number }
  | { op: 'closed'; id: number }
  | { op: 'error'; id: number; message: string };

const now = (): number => performance.timeOrigin + performance.now();

const log = createLogger('bench-xds', process.env.WEFT_BENCH_LOG ?? 'silent');
let store: ConfigStore | undefined;
let xds: XdsServerHandle | undefined;
let closing = false;

function send(m: ChildReply): void {
  process.send?.(m);
}

function stats(): ChildStats {
  const m = process.memoryUsage();
  const c = process.cpuUsage();
  const streams = xds?.ads.listClients().length ?? 0;
  return {
    rss: m.rss,
    heapUsed: m.heapUsed,
    external: m.external,
    arrayBuffers: m.arrayBuffers,
    cpuUserUs: c.user,
    cpuSystemUs: c.system,
    streams,
    pushes: xds?.ads.counters.pushes ?? 0,
    nacks: xds?.ads.counters.nacks ?? 0,
    stale: xds?.ads.counters.stale ?? 0,
    builds: xds?.cache.buildCount ?? 0,
    convergence: xds ? { counts: [...xds.ads.counters.convergence.counts], sum: xds.ads.counters.convergence.sum, count: xds.ads.counters.convergence.count } : { counts: [], sum: 0, count: 0 },
  };
}

async function churn(id: number, changes: Resource[], ratePerSec: number): Promise<void> {
  const s = store;
  if (!s) throw new Error('not initialised');
  const t0 = now();
  const interval = 1000 / ratePerSec;
  let maxLagMs = 0;
  let maxPutMs = 0;
  const inflight: Promise<void>[] = [];
  // Bounded: a starved event loop stops issuing writes at twice the planned duration (+5 s).
  const giveUpAt = t0 + 2 * changes.length * interval + 5000;
  let written = 0;
  for (let k = 0; k < changes.length && !closing && now() < giveUpAt; k++) {
    written++;
    const due = t0 + k * interval;
    const wait = due - now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const writeAt = now();
    maxLagMs = Math.max(maxLagMs, writeAt - due);
    inflight.push(
      s.put(changes[k] as Resource).then(() => {
        const doneAt = now();
        maxPutMs = Math.max(maxPutMs, doneAt - writeAt);
        send({ op: 'wrote', k, writeAt, doneAt });
      }),
    );
  }
  await Promise.all(inflight);
  send({ op: 'churn-done', id, written, maxLagMs, maxPutMs });
}

async function handle(m: ChildRequest): Promise<void> {
  switch (m.op) {
    case 'init': {
      const t0 = now();
      store = await openFileStore(m.dir, { logger: log });
      const all = seed(m.services, m.endpoints);
      for (let i = 0; i < all.length; i += 500) await store.putMany(all.slice(i, i + 500));
      const t1 = now();
      xds = await startXdsServer({ store, addr: '127.0.0.1:0', log, ...(m.debounceMs !== undefined ? { debounceMs: m.debounceMs } : {}) });
      // Build the one view every simulated proxy shares now, so "idle" includes it.
      xds.cache.snapshot({ namespace: 'default' });
      send({ op: 'ready', id: m.id, address: xds.address, seedMs: t1 - t0, startMs: now() - t1 });
      return;
    }
    case 'stats':
      if (m.gc) {
        const gc = (globalThis as { gc?: () => void }).gc;
        gc?.();
        await new Promise((r) => setTimeout(r, 50));
        gc?.();
      }
      send({ op: 'stats', id: m.id, stats: stats() });
      return;
    case 'put': {
      if (!store) throw new Error('not initialised');
      const writeAt = now();
      await store.put(m.resource);
      send({ op: 'put', id: m.id, writeAt, doneAt: now() });
      return;
    }
    case 'churn':
      await churn(m.id, m.changes, m.ratePerSec);
      return;
    case 'close':
      closing = true;
      await xds?.close();
      await store?.close();
      send({ op: 'closed', id: m.id });
      // Let the IPC message go, then exit normally (so --cpu-prof writes its profile).
      setTimeout(() => process.exit(0), 100);
      return;
  }
}

process.on('message', (m: ChildRequest) => {
  handle(m).catch((err: unknown) => send({ op: 'error', id: m.id, message: err instanceof Error ? err.message : String(err) }));
});
// The parent died: do not linger.
process.on('disconnect', () => {
  if (!closing) process.exit(1);
});
