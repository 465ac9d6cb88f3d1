/**
 * Keeps one bound net.Server per Listener in the snapshot. Each accepted connection
 * is dispatched by the listener's terminal filter as the snapshot has it *now*:
 * - tcp_proxy → tcp-proxy.ts;
 * - the HTTP connection manager → the first bytes are sniffed: the HTTP/2 connection
 *   preface (`PRI * HTTP/2.0…`, h2c with prior knowledge) goes to a node:http2
 *   server, anything else to a node:http server (both never listen themselves; they
 *   get the socket through `emit('connection')`).
 * Requests look their listener up by name in the snapshot they capture, so a changed
 * route or HCM setting needs no rebind (limits and timeouts are re-applied to the
 * servers on each reconcile); only a new, removed or moved address touches sockets.
 * A removed listener stops accepting at once and drains: idle keep-alive connections
 * close now, HTTP/2 sessions get GOAWAY, busy connections get `drainMs`.
 *
 * Limits: envoy.filters.network.connection_limit → net.Server.maxConnections (new
 * connections over it are closed at once and counted); max_request_headers_kb →
 * maxHeaderSize (431); request_headers_timeout / request_timeout → node's
 * headersTimeout / requestTimeout (408, slowloris); idle_timeout → keep-alive
 * timeout (HTTP/1.1) or a session idle timer with no open streams (HTTP/2).
 */
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createH2Server, type Http2Server, type ServerHttp2Session } from 'node:http2';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import type { Snapshot } from '../config/state.js';
import type { CompiledListener, HttpConnectionManagerConfig } from '../config/types.js';
import { createRequestHandler, createUpgradeHandler, type ForwardContext } from '../http/forward.js';
import type { Logger } from '../../lib/log.js';
import { proxyTcp } from './tcp-proxy.js';

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
const MAX_TIMER = 2 ** 31 - 1;

interface Bound {
  readonly name: string;
  readonly host: string;
  readonly configuredPort: number;
  readonly server: NetServer;
  readonly http1: HttpServer;
  readonly h2: Http2Server;
  readonly sockets: Set<Socket>;
  readonly sessions: Set<ServerHttp2Session>;
  port: number;
  readonly listening: Promise<void>;
}

/** Node's timeouts for an HCM (its defaults, 300 s / 60 s, stay when the HCM leaves them unset). */
function timeouts(hcm: HttpConnectionManagerConfig | undefined): { request: number; headers: number } {
  const request = hcm !== undefined && hcm.requestTimeoutMs > 0 ? hcm.requestTimeoutMs : 300_000;
  const headers = hcm !== undefined && hcm.requestHeadersTimeoutMs > 0 ? hcm.requestHeadersTimeoutMs : 60_000;
  return { request, headers: Math.min(headers, request) };
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
      } else {
        this.applySettings(b, l);
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
        b.http1.close(() => {});
      }));
    }
    await Promise.all(starting);
  }

  /** Limits and timeouts that node lets us change on a live server. */
  private applySettings(b: Bound, l: CompiledListener): void {
    // Unset means unlimited (node checks it only when set).
    (b.server as { maxConnections?: number }).maxConnections = l.maxConnections;
    const hcm = l.hcm;
    const to = timeouts(hcm);
    b.http1.requestTimeout = to.request;
    b.http1.headersTimeout = to.headers;
    b.http1.keepAliveTimeout = Math.min(hcm?.idleTimeoutMs ?? 3_600_000, MAX_TIMER);
    // One more than the limit so that the handler can tell "too many" (node truncates silently).
    b.http1.maxHeadersCount = (hcm?.maxHeadersCount ?? 100) + 1;
    (b.http1 as { maxHeaderSize?: number }).maxHeaderSize = hcm?.maxRequestHeadersBytes ?? 60 * 1024;
  }

  private bind(l: CompiledListener): Bound {
    const stats = this.ctx.stats;
    const ls = stats.listener(l.name);
    const to = timeouts(l.hcm);
    const http1 = createHttpServer({
      keepAlive: true,
      requestTimeout: to.request,
      headersTimeout: to.headers,
      maxHeaderSize: l.hcm?.maxRequestHeadersBytes ?? 60 * 1024,
      // How often node checks the headers/request timeouts (fixed at creation).
      connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(to.headers / 4))),
    });
    // node starts tracking connections (keep-alive idle list, the headers/request
    // timeout checker) on 'listening'; this server never listens itself.
    http1.emit('listening');
    const h2 = createH2Server({
      maxHeaderListPairs: (l.hcm?.maxHeadersCount ?? 100) + 4,
      settings: { maxHeaderListSize: l.hcm?.maxRequestHeadersBytes ?? 60 * 1024 },
    });
    const server = createNetServer({ allowHalfOpen: true });
    const sockets = new Set<Socket>();
    const sessions = new Set<ServerHttp2Session>();
    http1.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
      if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') ls.cxIdleTimeout++;
      // node's default: 400/408/431 when the socket is writable, then destroy.
      if (socket.writable && !socket.destroyed) {
        const status = err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : err.code === 'HPE_HEADER_OVERFLOW' ? 431 : 400;
        const text = status === 408 ? 'Request Timeout' : status === 431 ? 'Request Header Fields Too Large' : 'Bad Request';
        socket.end(`HTTP/1.1 ${status} ${text}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
        setTimeout(() => socket.destroy(), 1000).unref();
      } else {
        socket.destroy();
      }
    });
    h2.on('session', (session: ServerHttp2Session) => {
      sessions.add(session);
      session.once('close', () => sessions.delete(session));
      let open = 0;
      const idleMs = this.ctx.snapshot().listeners.get(l.name)?.hcm?.idleTimeoutMs ?? 3_600_000;
      let idle: NodeJS.Timeout | undefined;
      const arm = (): void => {
        if (idleMs <= 0) return;
        idle = setTimeout(() => { ls.cxIdleTimeout++; session.close(); }, Math.min(idleMs, MAX_TIMER));
        idle.unref();
      };
      session.on('stream', (stream) => {
        open++;
        if (idle !== undefined) { clearTimeout(idle); idle = undefined; }
        stream.once('close', () => { if (--open === 0 && !session.closed) arm(); });
      });
      session.once('close', () => { if (idle !== undefined) clearTimeout(idle); });
      arm();
    });
    server.on('drop', () => { ls.cxOverflow++; });
    server.on('connection', (s: Socket) => {
      stats.downstreamCxActive++;
      stats.downstreamCxTotal++;
      sockets.add(s);
      s.once('close', () => { stats.downstreamCxActive--; sockets.delete(s); });
      s.on('error', () => {});
      const cur = this.ctx.snapshot().listeners.get(l.name) ?? l;
      if (cur.tcp !== undefined) return proxyTcp(l.name, s, cur.tcp, this.ctx.snapshot(), stats);
      if (cur.hcm?.codec === 'HTTP1') return void http1.emit('connection', s);
      this.sniff(s, timeouts(cur.hcm).headers, (isH2) => {
        // node:http2 reads what the socket has buffered on the next tick (it must stay
        // paused until then); node:http needs the socket flowing again.
        if (isH2) h2.emit('connection', s);
        else { http1.emit('connection', s); s.resume(); }
      });
    });
    const b: Bound = {
      name: l.name,
      host: l.host,
      configuredPort: l.port,
      server,
      http1,
      h2,
      sockets,
      sessions,
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
    this.applySettings(b, l);
    const onRequest = createRequestHandler(l.name, () => b.port, this.ctx);
    http1.on('request', onRequest);
    h2.on('request', onRequest as unknown as (req: unknown, res: unknown) => void);
    http1.on('upgrade', createUpgradeHandler(l.name, () => b.port, this.ctx));
    return b;
  }

  /**
   * Reads until the bytes are known to be (or not to be) the HTTP/2 preface, puts
   * them back and calls `decide`. A client that sends nothing for `timeoutMs` is cut.
   */
  private sniff(s: Socket, timeoutMs: number, decide: (isH2: boolean) => void): void {
    let buf: Buffer = Buffer.alloc(0);
    const timer = setTimeout(() => s.destroy(), timeoutMs);
    const onData = (chunk: Buffer): void => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      const n = Math.min(buf.length, PREFACE.length);
      const isPrefix = buf.subarray(0, n).equals(PREFACE.subarray(0, n));
      if (isPrefix && buf.length < PREFACE.length) return;
      clearTimeout(timer);
      s.off('data', onData);
      s.off('close', onClose);
      s.pause();
      s.unshift(buf);
      decide(isPrefix);
    };
    const onClose = (): void => clearTimeout(timer);
    s.on('data', onData);
    s.once('close', onClose);
  }

  private drain(b: Bound): void {
    b.server.close();
    b.http1.closeIdleConnections();
    for (const session of b.sessions) session.close();
    setTimeout(() => {
      for (const s of b.sockets) s.destroy();
      b.http1.close(() => {});
    }, this.drainMs).unref();
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
      b.http1.closeIdleConnections();
      const killAll = (): void => {
        for (const s of b.sockets) s.destroy();
        b.http1.close(() => {});
      };
      if (drainMs <= 0) killAll();
      else {
        for (const session of b.sessions) session.close();
        setTimeout(killAll, drainMs).unref();
      }
    })));
  }
}
