/**
 * The admin server (loopback only by default): /ready, /config_dump, /clusters,
 * /stats, /metrics (Prometheus text), /status (control-plane connection), /drain. It reads the snapshot in force; it
 * never changes config.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Snapshot } from '../config/state.js';
import type { ProtoJson } from '../config/types.js';
import type { ProxyStats } from '../stats.js';
import { configDump } from './config-dump.js';
import { renderStatusMetrics, type ProxyStatus } from './status.js';

export interface AdminContext {
  snapshot(): Snapshot;
  readonly stats: ProxyStats;
  isReady(): boolean;
  bootstrap(): ProtoJson;
  /** Stops accepting new downstream connections and lets busy ones finish. */
  drain(): Promise<void>;
  /** The workload certificate (SPIFFE ID, serial, expiry; never the key), when the proxy has an identity. */
  certs?(): unknown;
  /** Control-plane connection, config age, certificate expiry: `/status` and the `weft_proxy_*` gauges in /metrics. */
  status?(): ProxyStatus;
  /**
   * With node:cluster workers (src/proxy/workers/): the stats summed over the workers,
   * gathered over IPC on each scrape; /stats and /metrics render these instead of `stats`.
   */
  gatherStats?(): Promise<ProxyStats>;
  /** With workers: one JSON row per worker (id, pid, ready, its own request counters), at /workers. */
  workers?(): Promise<unknown>;
  /** With workers: per-host request counters summed over the workers, for /clusters. */
  gatherHostCounters?(): Promise<HostCountersLookup>;
}

export interface AdminServer {
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

function send(res: ServerResponse, status: number, body: string, type = 'text/plain; charset=utf-8'): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
  res.end(body);
}

/** Per-host request counters (summed over workers when there are workers). */
export interface HostCounters { readonly active: number; readonly total: number; readonly connectFailures: number }
export type HostCountersLookup = (cluster: string, hostKey: string) => HostCounters | undefined;

function clustersText(snap: Snapshot, counters?: HostCountersLookup): string {
  const lines: string[] = [];
  for (const c of [...snap.clusters.values()].sort((a, b) => (a.name < b.name ? -1 : 1))) {
    lines.push(`${c.name}::default_priority::max_connections::${c.config.maxConnections}`);
    lines.push(`${c.name}::default_priority::max_requests::${c.config.maxRequests}`);
    lines.push(`${c.name}::lb_policy::${c.config.lbPolicy}`);
    for (const h of c.hosts) {
      const p = `${c.name}::${h.key}`;
      const st = counters?.(c.name, h.key) ?? h.stats;
      lines.push(`${p}::rq_active::${st.active}`, `${p}::rq_total::${st.total}`, `${p}::cx_connect_fail::${st.connectFailures}`);
      lines.push(`${p}::weight::${h.weight}`, `${p}::priority::${h.priority}`, `${p}::zone::${h.locality}`);
      lines.push(`${p}::health_flags::${h.health === 'HEALTHY' || h.health === 'UNKNOWN' ? 'healthy' : `/eds_health_status=${h.health}`}`);
    }
  }
  return lines.join('\n') + '\n';
}

function clustersJson(snap: Snapshot, counters?: HostCountersLookup): unknown {
  return {
    cluster_statuses: [...snap.clusters.values()].map((c) => ({
      name: c.name,
      lb_policy: c.config.lbPolicy,
      host_statuses: c.hosts.map((h) => ({
        address: { socket_address: { address: h.address, port_value: h.port } },
        health_status: { eds_health_status: h.health },
        weight: h.weight,
        priority: h.priority,
        locality: h.locality,
        stats: ((st: HostCounters) => ({ rq_active: st.active, rq_total: st.total, cx_connect_fail: st.connectFailures }))(counters?.(c.name, h.key) ?? h.stats),
        usable: c.usable.includes(h),
      })),
    })),
  };
}

export function startAdminServer(host: string, port: number, ctx: AdminContext): Promise<AdminServer> {
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://admin');
    const snap = ctx.snapshot();
    const statusMetrics = (): string => (ctx.status === undefined ? '' : renderStatusMetrics(ctx.status()));
    switch (url.pathname) {
      case '/ready': return ctx.isReady() ? send(res, 200, 'LIVE\n') : send(res, 503, 'PRE_INITIALIZING\n');
      case '/config_dump': return send(res, 200, JSON.stringify(configDump(snap, ctx.bootstrap()), null, 2) + '\n', 'application/json');
      case '/clusters':
        if (ctx.gatherHostCounters !== undefined) {
          const json = url.searchParams.get('format') === 'json';
          return void ctx.gatherHostCounters().then(
            (cs) => (json ? send(res, 200, JSON.stringify(clustersJson(snap, cs), null, 2) + '\n', 'application/json') : send(res, 200, clustersText(snap, cs))),
            (e: unknown) => send(res, 500, `gathering worker stats failed: ${String(e)}\n`),
          );
        }
        return url.searchParams.get('format') === 'json'
          ? send(res, 200, JSON.stringify(clustersJson(snap), null, 2) + '\n', 'application/json')
          : send(res, 200, clustersText(snap));
      case '/workers':
        if (ctx.workers === undefined) return send(res, 404, 'not found (single process)\n');
        return void ctx.workers().then((w) => send(res, 200, JSON.stringify({ workers: w }, null, 2) + '\n', 'application/json'), (e: unknown) => send(res, 500, `${String(e)}\n`));
      case '/stats':
      case '/stats/prometheus':
      case '/metrics':
        if (ctx.gatherStats !== undefined) {
          const prom = url.pathname !== '/stats' || url.searchParams.get('format') === 'prometheus';
          return void ctx.gatherStats().then(
            (st) => (prom ? send(res, 200, st.renderPrometheus() + statusMetrics(), 'text/plain; version=0.0.4') : send(res, 200, st.renderText())),
            (e: unknown) => send(res, 500, `gathering worker stats failed: ${String(e)}\n`),
          );
        }
        if (url.pathname === '/stats') return url.searchParams.get('format') === 'prometheus' ? send(res, 200, ctx.stats.renderPrometheus() + statusMetrics(), 'text/plain; version=0.0.4') : send(res, 200, ctx.stats.renderText());
        return send(res, 200, ctx.stats.renderPrometheus() + statusMetrics(), 'text/plain; version=0.0.4');
      case '/status':
        if (ctx.status === undefined) return send(res, 404, 'not found\n');
        return send(res, 200, JSON.stringify(ctx.status(), null, 2) + '\n', 'application/json');
      case '/certs':
        return send(res, 200, JSON.stringify({ certificates: ctx.certs ? [ctx.certs()] : [] }, null, 2) + '\n', 'application/json');
      case '/drain':
      case '/drain_listeners':
        if (req.method !== 'POST') return send(res, 405, 'use POST\n');
        void ctx.drain();
        return send(res, 200, 'OK\n');
      case '/':
        return send(res, 200, ['/ready', '/config_dump', '/clusters', '/stats', '/metrics', '/status', '/certs', '/drain (POST)'].join('\n') + '\n');
      default:
        return send(res, 404, 'not found\n');
    }
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const addr = server.address();
      const bound = typeof addr === 'object' && addr !== null ? addr.port : port;
      resolve({
        url: `http://${host.includes(':') ? `[${host}]` : host}:${bound}`,
        port: bound,
        close: () => new Promise<void>((r) => { server.close(() => r()); server.closeAllConnections(); }),
      });
    });
  });
}
