/**
 * The admin server (loopback only by default): /ready, /config_dump, /clusters,
 * /stats, /metrics (Prometheus text), /drain. It reads the snapshot in force; it
 * never changes config.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Snapshot } from '../config/state.js';
import type { ProtoJson } from '../config/types.js';
import type { ProxyStats } from '../stats.js';
import { configDump } from './config-dump.js';

export interface AdminContext {
  snapshot(): Snapshot;
  readonly stats: ProxyStats;
  isReady(): boolean;
  bootstrap(): ProtoJson;
  /** Stops accepting new downstream connections and lets busy ones finish. */
  drain(): Promise<void>;
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

function clustersText(snap: Snapshot): string {
  const lines: string[] = [];
  for (const c of [...snap.clusters.values()].sort((a, b) => (a.name < b.name ? -1 : 1))) {
    lines.push(`${c.name}::default_priority::max_connections::${c.config.maxConnections}`);
    lines.push(`${c.name}::default_priority::max_requests::${c.config.maxRequests}`);
    lines.push(`${c.name}::lb_policy::${c.config.lbPolicy}`);
    for (const h of c.hosts) {
      const p = `${c.name}::${h.key}`;
      lines.push(`${p}::rq_active::${h.stats.active}`, `${p}::rq_total::${h.stats.total}`, `${p}::cx_connect_fail::${h.stats.connectFailures}`);
      lines.push(`${p}::weight::${h.weight}`, `${p}::priority::${h.priority}`, `${p}::zone::${h.locality}`);
      lines.push(`${p}::health_flags::${h.health === 'HEALTHY' || h.health === 'UNKNOWN' ? 'healthy' : `/eds_health_status=${h.health}`}`);
    }
  }
  return lines.join('\n') + '\n';
}

function clustersJson(snap: Snapshot): unknown {
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
        stats: { rq_active: h.stats.active, rq_total: h.stats.total, cx_connect_fail: h.stats.connectFailures },
        usable: c.usable.includes(h),
      })),
    })),
  };
}

export function startAdminServer(host: string, port: number, ctx: AdminContext): Promise<AdminServer> {
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://admin');
    const snap = ctx.snapshot();
    switch (url.pathname) {
      case '/ready': return ctx.isReady() ? send(res, 200, 'LIVE\n') : send(res, 503, 'PRE_INITIALIZING\n');
      case '/config_dump': return send(res, 200, JSON.stringify(configDump(snap, ctx.bootstrap()), null, 2) + '\n', 'application/json');
      case '/clusters':
        return url.searchParams.get('format') === 'json'
          ? send(res, 200, JSON.stringify(clustersJson(snap), null, 2) + '\n', 'application/json')
          : send(res, 200, clustersText(snap));
      case '/stats':
        return url.searchParams.get('format') === 'prometheus' ? send(res, 200, ctx.stats.renderPrometheus(), 'text/plain; version=0.0.4') : send(res, 200, ctx.stats.renderText());
      case '/stats/prometheus':
      case '/metrics':
        return send(res, 200, ctx.stats.renderPrometheus(), 'text/plain; version=0.0.4');
      case '/drain':
      case '/drain_listeners':
        if (req.method !== 'POST') return send(res, 405, 'use POST\n');
        void ctx.drain();
        return send(res, 200, 'OK\n');
      case '/':
        return send(res, 200, ['/ready', '/config_dump', '/clusters', '/stats', '/metrics', '/drain (POST)'].join('\n') + '\n');
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
