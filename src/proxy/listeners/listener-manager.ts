/**
 * Keeps one bound node:http server per Listener in the snapshot. A server looks its
 * listener up by name in the snapshot each request captures, so a changed route or
 * HCM setting needs no rebind; only a new, removed or moved address touches sockets.
 * A removed listener stops accepting at once and drains: idle keep-alive connections
 * close now, busy ones after their response (or after `drainMs`).
 */
import { createServer, type Server } from 'node:http';
import type { Socket } from 'node:net';
import type { Snapshot } from '../config/state.js';
import type { CompiledListener } from '../config/types.js';
import { createRequestHandler, type ForwardContext } from '../http/forward.js';
import type { Logger } from '../../lib/log.js';

interface Bound {
  readonly name: string;
  readonly host: string;
  readonly configuredPort: number;
  readonly server: Server;
  port: number;
  readonly listening: Promise<void>;
}

export class ListenerManager {
  private readonly bound = new Map<string, Bound>();
  private pending: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(private readonly ctx: ForwardContext, private readonly log: Logger, private readonly drainMs = 5000) {}

  /** Brings the bound servers in line with the snapshot; resolves when all listen. */
  reconcile(snap: Snapshot): Promise<void> {
    // Serialise: a later snapshot's reconcile runs after the earlier one finished binding.
    this.pending = this.pending.then(() => this.doReconcile(snap));
    return this.pending;
  }

  private async doReconcile(snap: Snapshot): Promise<void> {
    if (this.closed) return;
    for (const [name, b] of this.bound) {
      const l = snap.listeners.get(name);
      if (l === undefined || l.host !== b.host || l.port !== b.configuredPort) {
        this.bound.delete(name);
        this.drain(b);
      }
    }
    const starting: Promise<void>[] = [];
    for (const l of snap.listeners.values()) {
      if (this.bound.has(l.name)) continue;
      const b = this.bind(l);
      this.bound.set(l.name, b);
      starting.push(b.listening.catch((e: unknown) => {
        this.log.error({ err: e, listener: l.name }, 'listener failed to bind');
        this.bound.delete(l.name);
      }));
    }
    await Promise.all(starting);
  }

  private bind(l: CompiledListener): Bound {
    const hcm = l.hcm;
    const server = createServer({
      keepAlive: true,
      // Node's defaults (300 s, 60 s) stay when the HCM leaves these unset.
      requestTimeout: hcm.requestTimeoutMs > 0 ? hcm.requestTimeoutMs : 300_000,
      headersTimeout: hcm.requestHeadersTimeoutMs > 0 ? hcm.requestHeadersTimeoutMs : 60_000,
    });
    server.keepAliveTimeout = Math.min(hcm.idleTimeoutMs, 2 ** 31 - 1);
    const stats = this.ctx.stats;
    server.on('connection', (s: Socket) => {
      stats.downstreamCxActive++;
      stats.downstreamCxTotal++;
      s.once('close', () => { stats.downstreamCxActive--; });
    });
    const b: Bound = {
      name: l.name,
      host: l.host,
      configuredPort: l.port,
      server,
      port: 0,
      listening: new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(l.port, l.host, () => {
          server.off('error', reject);
          const addr = server.address();
          b.port = typeof addr === 'object' && addr !== null ? addr.port : l.port;
          resolve();
        });
      }),
    };
    server.on('request', createRequestHandler(l.name, () => b.port, this.ctx));
    return b;
  }

  private drain(b: Bound): void {
    b.server.close();
    b.server.closeIdleConnections();
    setTimeout(() => b.server.closeAllConnections(), this.drainMs).unref();
  }

  /** The bound port of a listener (useful when it was configured with port 0). */
  port(name: string): number | undefined {
    const b = this.bound.get(name);
    return b === undefined || b.port === 0 ? undefined : b.port;
  }

  addresses(): { name: string; host: string; port: number }[] {
    return [...this.bound.values()].map((b) => ({ name: b.name, host: b.host, port: b.port }));
  }

  /** Stops accepting; with `drainMs` > 0 busy connections get that long to finish. */
  async close(drainMs = 0): Promise<void> {
    this.closed = true;
    await this.pending.catch(() => {});
    const all = [...this.bound.values()];
    this.bound.clear();
    await Promise.all(all.map((b) => new Promise<void>((resolve) => {
      b.server.close(() => resolve());
      b.server.closeIdleConnections();
      if (drainMs <= 0) b.server.closeAllConnections();
      else setTimeout(() => b.server.closeAllConnections(), drainMs).unref();
    })));
  }
}
