/**
 * Keeps one bound net.Server per Listener in the snapshot. Each accepted connection
 * first gets its filter chain (filter-chain-match.ts; the first bytes are peeked when
 * a chain matches on transport, SNI or ALPN), then TLS termination when the chain has
 * a DownstreamTlsContext (a never-listening node:tls server per chain, ALPN h2 → the
 * HTTP/2 server), then the chain's terminal filter as the snapshot has it *now*:
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
import { createServer as createTlsServer, type Server as TlsServer, type TLSSocket } from 'node:tls';
import type { CompiledFilterChain, CompiledListener, DownstreamTlsConfig, HttpConnectionManagerConfig } from '../config/types.js';
import { looksLikeTls, parseClientHello, sniffHttp } from '../tls/client-hello.js';
import { TlsMaterial } from '../tls/tls-material.js';
import { sanMatches, uriSans } from '../tls/upstream-tls.js';
import { CHAIN_NAME, selectFilterChain, type ConnectionFacts } from './filter-chain-match.js';
import { createRequestHandler, createUpgradeHandler, type ForwardContext } from '../http/forward.js';
import type { Logger } from '../../lib/log.js';
import { proxyTcp } from './tcp-proxy.js';
import { dispatchByOriginalDst } from './original-dst.js';

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
  /** TLS connections (their TCP sockets are in `sockets`). */
  readonly tlsSockets: Set<TLSSocket>;
  /** TLS servers (never listening) by filter chain name. */
  readonly tlsServers: Map<string, { cfg: DownstreamTlsConfig; server: TlsServer; version: number }>;
  port: number;
  readonly listening: Promise<void>;
}

/** Node's timeouts for an HCM (its defaults, 300 s / 60 s, stay when the HCM leaves them unset). */
function timeouts(hcm: HttpConnectionManagerConfig | undefined): { request: number; headers: number } {
  const request = hcm !== undefined && hcm.requestTimeoutMs > 0 ? hcm.requestTimeoutMs : 300_000;
  const headers = hcm !== undefined && hcm.requestHeadersTimeoutMs > 0 ? hcm.requestHeadersTimeoutMs : 60_000;
  return { request, headers: Math.min(headers, request) };
}

/**
 * Destroys a listener's connections, TLS sockets before the TCP sockets under them:
 * destroying only the TCP socket under a live TLSSocket (e.g. an upgraded WebSocket)
 * crashes node 20 at exit (SIGSEGV).
 */
function destroyAll(b: Bound): void {
  for (const t of b.tlsSockets) t.destroy();
  for (const s of b.sockets) s.destroy();
}

export class ListenerManager {
  private readonly bound = new Map<string, Bound>();
  private pending: Promise<void> = Promise.resolve();
  private closed = false;
  /** Inline certificates need no secrets; used when the context brings no TLS material. */
  private readonly fallbackMaterial = new TlsMaterial();
  private readonly warned = new Set<string>();

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
    // noDelay: node:http2 writes a response in several small writes; with Nagle each one after
    // the first waits for the peer's delayed ACK (~40 ms), which capped proxy-to-proxy h2 (as Envoy, always TCP_NODELAY).
    const server = createNetServer({ allowHalfOpen: true, noDelay: true });
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
      // Transparent mode: a redirected connection may be TCP or leave the mesh (original-dst.ts).
      if (dispatchByOriginalDst(l.name, s, this.ctx)) return;
      const cur = this.ctx.snapshot().listeners.get(l.name) ?? l;
      const chains = cur.chains ?? [];
      const only = chains.length === 1 ? chains[0]! : undefined;
      // One chain that matches on nothing: no need to peek (the common outbound case).
      if (only !== undefined && !cur.inspect && only.match.destinationPort === undefined) return this.dispatch(b, cur, only, s, undefined);
      this.peek(s, timeouts(cur.hcm).headers, (facts) => {
        const chain = selectFilterChain(cur, facts);
        if (chain === undefined) {
          // STRICT mTLS refusing plaintext lands here (only tls chains exist).
          stats.sslScope(`listener.${l.name}`).noFilterChainMatch++;
          this.log.debug({ listener: l.name, remote: s.remoteAddress, transport: facts.transportProtocol, sni: facts.serverName }, 'no filter chain matched; connection closed');
          s.destroy();
          return;
        }
        this.dispatch(b, cur, chain, s, facts);
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
      tlsServers: new Map(),
      tlsSockets: new Set(),
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
   * Serves a connection on the chosen chain: TLS termination first when the chain
   * has a DownstreamTlsContext, then TCP proxy or HTTP (by ALPN over TLS, by the
   * HTTP/2 preface in plaintext).
   */
  private dispatch(b: Bound, l: CompiledListener, chain: CompiledFilterChain, s: Socket, facts: ConnectionFacts | undefined): void {
    (s as unknown as Record<symbol, unknown>)[CHAIN_NAME] = chain.name;
    if (chain.tls === undefined) return this.serve(b, l, chain, s, facts?.applicationProtocols[0]);
    const ssl = this.ctx.stats.sslScope(`listener.${l.name}`);
    let server: TlsServer;
    try {
      server = this.tlsServerFor(b, chain, chain.tls);
    } catch (e) {
      ssl.connectionError++;
      // Typically "secret not available yet": once per chain until the material changes.
      const key = `${l.name}|${chain.name}|${this.ctx.tls?.material.version ?? 0}`;
      if (!this.warned.has(key)) {
        if (this.warned.size > 1000) this.warned.clear();
        this.warned.add(key);
        this.log.warn({ listener: l.name, chain: chain.name, reason: (e as Error).message }, 'TLS listener cannot handshake');
      }
      s.destroy();
      return;
    }
    // node's TLS server reads what the peek put back (unshift) before the socket's own bytes.
    server.emit('connection', s);
  }

  private serve(b: Bound, l: CompiledListener, chain: CompiledFilterChain, s: Socket, proto: string | undefined): void {
    if (chain.tcp !== undefined) return proxyTcp(l.name, s, chain.tcp, this.ctx.snapshot(), this.ctx.stats, this.ctx);
    const tls = (s as Partial<TLSSocket>).encrypted === true;
    if (tls) {
      if ((s as TLSSocket).alpnProtocol === 'h2') b.h2.emit('connection', s);
      else b.http1.emit('connection', s);
      return;
    }
    if (chain.hcm?.codec === 'HTTP1' || proto === 'http/1.1') { b.http1.emit('connection', s); s.resume(); return; }
    if (proto === 'h2c') return void b.h2.emit('connection', s);
    this.sniff(s, timeouts(chain.hcm).headers, (isH2) => {
      // node:http2 reads what the socket has buffered on the next tick (it must stay
      // paused until then); node:http needs the socket flowing again.
      if (isH2) b.h2.emit('connection', s);
      else { b.http1.emit('connection', s); s.resume(); }
    });
  }

  /**
   * One node:tls server (never listening) per chain's TLS config. Its SecureContext is
   * rebuilt when the TLS material changed, before the next handshake: new connections
   * get the new SVID, live ones keep theirs.
   */
  private tlsServerFor(b: Bound, chain: CompiledFilterChain, cfg: DownstreamTlsConfig): TlsServer {
    const material = this.ctx.tls?.material ?? this.fallbackMaterial;
    const cur = b.tlsServers.get(chain.name);
    if (cur !== undefined && cur.cfg === cfg) {
      if (cur.version !== material.version) {
        cur.server.setSecureContext(material.options(cfg.certificate, cfg.validation));
        cur.version = material.version;
      }
      return cur.server;
    }
    const ssl = this.ctx.stats.sslScope(`listener.${b.name}`);
    const server = createTlsServer({
      ...material.options(cfg.certificate, cfg.validation),
      // Checked in 'secureConnection' so that each refusal is counted and logged with its reason.
      requestCert: cfg.validation !== undefined,
      rejectUnauthorized: false,
      ...(cfg.alpn.length > 0 ? { ALPNProtocols: [...cfg.alpn] } : {}),
      handshakeTimeout: 10_000,
    });
    server.on('tlsClientError', (err: Error & { code?: string }, ts: TLSSocket) => {
      ssl.connectionError++;
      this.log.debug({ listener: b.name, chain: chain.name, remote: ts.remoteAddress, reason: err.code ?? err.message }, 'downstream TLS handshake failed');
    });
    server.on('secureConnection', (ts: TLSSocket) => {
      const refuse = (why: string, field: 'noCertificate' | 'failVerifyError' | 'failVerifySan'): void => {
        ssl[field]++;
        this.log.info({ listener: b.name, chain: chain.name, remote: ts.remoteAddress, reason: why }, 'downstream TLS peer refused');
        ts.destroy();
      };
      if (cfg.validation !== undefined) {
        const peer = ts.getPeerCertificate();
        const hasCert = peer !== null && peer !== undefined && Object.keys(peer).length > 0;
        if (!hasCert) {
          if (cfg.requireClientCertificate) return refuse('no client certificate', 'noCertificate');
        } else if (!ts.authorized) {
          return refuse(`client certificate does not verify: ${String(ts.authorizationError)}`, 'failVerifyError');
        } else if (!sanMatches(uriSans(peer), cfg.sanMatchers)) {
          return refuse(`client identity ${uriSans(peer).join(', ') || '(no URI SAN)'} is not allowed`, 'failVerifySan');
        }
      }
      ssl.handshake++;
      b.tlsSockets.add(ts);
      ts.once('close', () => b.tlsSockets.delete(ts));
      (ts as unknown as Record<symbol, unknown>)[CHAIN_NAME] = chain.name;
      ts.on('error', () => {});
      const snapL = this.ctx.snapshot().listeners.get(b.name);
      const now = snapL?.chains?.find((c) => c.name === chain.name) ?? chain;
      this.serve(b, snapL ?? ({ name: b.name } as CompiledListener), now, ts as unknown as Socket, undefined);
    });
    b.tlsServers.set(chain.name, { cfg, server, version: material.version });
    return server;
  }

  /**
   * tls_inspector + http_inspector: reads the first bytes (a whole ClientHello for
   * TLS, enough to tell HTTP/1.x or the h2c preface otherwise), puts them back and
   * reports what a filter chain can match on. Silent clients are cut after `timeoutMs`.
   */
  private peek(s: Socket, timeoutMs: number, decide: (f: ConnectionFacts) => void): void {
    let buf: Buffer = Buffer.alloc(0);
    const timer = setTimeout(() => s.destroy(), timeoutMs);
    const finish = (f: ConnectionFacts): void => {
      clearTimeout(timer);
      s.off('data', onData);
      s.off('close', onClose);
      s.pause();
      s.unshift(buf);
      decide(f);
    };
    const destinationPort = s.localPort ?? 0;
    const onData = (chunk: Buffer): void => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      if (looksLikeTls(buf)) {
        const hello = parseClientHello(buf);
        if (hello === 'incomplete') return;
        return finish({ destinationPort, transportProtocol: 'tls', serverName: hello?.serverName, applicationProtocols: hello?.alpn ?? [] });
      }
      const http = sniffHttp(buf);
      if (http === 'incomplete') return;
      finish({ destinationPort, transportProtocol: 'raw_buffer', serverName: undefined, applicationProtocols: http === undefined ? [] : [http] });
    };
    const onClose = (): void => clearTimeout(timer);
    s.on('data', onData);
    s.once('close', onClose);
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
      destroyAll(b);
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
        destroyAll(b);
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
