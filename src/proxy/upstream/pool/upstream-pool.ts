/**
 * One keep-alive connection pool per cluster: node:http's Agent.
 *
 * Measured (2026-11, Node 20, loopback, 1 KiB responses, 32 concurrent requests,
 * 6,000 requests, shared 2-core box so numbers are noisy): as a bare client undici's
 * Pool did ~6.1k vs ~5.4k req/s cold and ~21.7k vs ~16.7k req/s warm, i.e. ~15–30 %
 * faster than http.request over a keep-alive Agent. We still use the Agent for now:
 * the downstream side is node:http, and `pipe()` between node:http streams gives
 * streaming with back-pressure both ways (and upload of a request body while the
 * response streams) for free, where undici's dispatch handler would need a hand-made
 * bridge. Measured end to end through Weft (2026-11-25, docs/adr/0004): no gain the
 * shared 2-core machine could show (+2 % req/s, inside the noise) for +14.8 MB of idle
 * RSS, so the Agent stays.
 */
import { Agent, type AgentOptions, type ClientRequestArgs } from 'node:http';
import type { Duplex } from 'node:stream';
import { connect as h2connect, type ClientHttp2Session } from 'node:http2';
import { connect as netConnect, type Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { UpstreamTlsConfig } from '../../config/types.js';
import { connectUpstreamTls, type UpstreamTlsContext } from '../../tls/upstream-tls.js';

/**
 * TLS clusters (UpstreamTlsContext): one Agent per compiled TLS config, whose
 * connections are opened by tls/upstream-tls.ts and handed to node:http only once
 * verified (createConnection's callback form), so a failed handshake or SAN
 * mismatch is a connect failure. When ALPN picks h2, the verified connection becomes
 * this host's HTTP/2 session instead and the request is told to go there
 * (error code WEFT_ERR_ALPN_H2); later requests to the host use HTTP/2 directly.
 */
export const ALPN_H2 = 'WEFT_ERR_ALPN_H2';

/** Flow-control windows of upstream HTTP/2 sessions (Envoy's defaults are 256 MiB for both). */
const STREAM_WINDOW = 1 << 20;
const CONNECTION_WINDOW = 16 << 20;

/** One multiplexed HTTP/2 session to one endpoint. */
export interface H2Conn {
  readonly session: ClientHttp2Session;
  /** True once the TCP connection is up (streams that fail before it are connect failures). */
  connected: boolean;
}

export interface UpstreamPool {
  readonly agent: Agent;
  /**
   * The HTTP/2 session to `host:port`, created on first use and replaced once it is
   * closed, errored or GOAWAY'd (streams already on the old one finish there).
   * `onNew` runs when a new connection is attempted. With `tls`, over mTLS (ALPN h2).
   */
  h2(host: string, port: number, connectTimeoutMs: number, onNew?: (c: H2Conn) => void, tls?: UpstreamTlsContext): H2Conn;
  /** The keep-alive Agent of a TLS cluster: verified connections only (see ALPN_H2). */
  tlsAgent(tls: UpstreamTlsContext, connectTimeoutMs: number): Agent;
  /** True once a TLS handshake with `host:port` negotiated h2 (send HTTP/2 there). */
  negotiatedH2(host: string, port: number): boolean;
  /** Closes idle sockets; in-flight requests finish. */
  close(): void;
}

export function createUpstreamPool(maxConnections: number): UpstreamPool {
  const agent = new Agent({
    keepAlive: true,
    keepAliveMsecs: 1000,
    // Passed to net.connect: no Nagle delay on the request's writes.
    noDelay: true,
    maxSockets: maxConnections,
    maxTotalSockets: maxConnections,
    maxFreeSockets: 256,
    // LIFO keeps a few sockets hot and lets the rest idle out at the server.
    scheduling: 'lifo',
  });
  const sessions = new Map<string, H2Conn>();
  /** `host:port` of TLS peers that chose h2 by ALPN. */
  const alpnH2 = new Set<string>();
  const tlsAgents = new Map<UpstreamTlsConfig, TlsAgent>();
  let closed = false;
  const authority = (host: string, port: number): string => `${host.includes(':') ? `[${host}]` : host}:${port}`;
  /** Wraps a connection (connecting, or already verified) in an HTTP/2 session and registers it. */
  const open = (key: string, host: string, port: number, sock: Socket | TLSSocket, tls: boolean, connectTimeoutMs: number): H2Conn => {
    const session = h2connect(`${tls ? 'https' : 'http'}://${authority(host, port)}`, {
      createConnection: () => sock,
      // No cap on concurrent streams beyond the server's own SETTINGS.
      peerMaxConcurrentStreams: 1000,
      // HTTP/2's default windows (64 KiB per stream and for the whole connection) make every
      // response bigger than that wait a round trip per 64 KiB, shared by all streams.
      settings: { initialWindowSize: STREAM_WINDOW },
    });
    session.once('localSettings', () => { if (!session.destroyed) session.setLocalWindowSize(CONNECTION_WINDOW); });
    // An adopted connection (ALPN chose h2 on a verified socket) still waits for SETTINGS.
    const conn: H2Conn = { session, connected: !tls && !sock.connecting };
    const forget = (): void => { if (sessions.get(key) === conn) sessions.delete(key); };
    if (!conn.connected) {
      const ct = setTimeout(() => {
        sock.destroy(Object.assign(new Error(`connect timeout after ${connectTimeoutMs} ms`), { code: 'WEFT_ERR_CONNECT_TIMEOUT' }));
      }, connectTimeoutMs);
      if (tls) {
        // Over TLS "connected" means both sides accepted each other: the peer's SETTINGS
        // frame. (With TLS 1.3 the client's handshake ends before the server has checked
        // our certificate; a peer that refuses it just closes.) Anything earlier is UF.
        session.once('remoteSettings', () => { conn.connected = true; clearTimeout(ct); });
      } else {
        sock.once('connect', () => { conn.connected = true; clearTimeout(ct); });
      }
      session.once('close', () => clearTimeout(ct));
    }
    session.once('close', forget);
    session.once('goaway', forget);
    session.on('error', forget);
    // An idle session does not keep the process alive; streams ref it while they run.
    session.unref();
    if (!closed) sessions.set(key, conn);
    return conn;
  };
  const h2 = (host: string, port: number, connectTimeoutMs: number, onNew?: (c: H2Conn) => void, tls?: UpstreamTlsContext): H2Conn => {
    const key = `${host}:${port}${tls === undefined ? '' : '|tls'}`;
    const cur = sessions.get(key);
    if (cur !== undefined && !cur.session.closed && !cur.session.destroyed) return cur;
    // noDelay: a stream's HEADERS and DATA frames are separate small writes (Nagle would hold the later ones).
    const sock = tls === undefined ? netConnect({ host, port, noDelay: true }) : connectUpstreamTls(host, port, tls, ['h2']);
    const conn = open(key, host, port, sock, tls !== undefined, connectTimeoutMs);
    onNew?.(conn);
    return conn;
  };
  const tlsAgent = (tls: UpstreamTlsContext, connectTimeoutMs: number): Agent => {
    let a = tlsAgents.get(tls.config);
    if (a === undefined) {
      a = new TlsAgent({ keepAlive: true, keepAliveMsecs: 1000, maxSockets: maxConnections, maxTotalSockets: maxConnections, maxFreeSockets: 256, scheduling: 'lifo' });
      const agentRef = a;
      a.adopt = (host, port, sock) => {
        alpnH2.add(`${host}:${port}`);
        const key = `${host}:${port}|tls`;
        const cur = sessions.get(key);
        if (cur !== undefined && !cur.session.closed && !cur.session.destroyed) { sock.destroy(); return; }
        open(key, host, port, sock, true, agentRef.connectTimeoutMs);
      };
      tlsAgents.set(tls.config, a);
    }
    // Per call: the cluster's settings may change while its compiled TLS config stays.
    a.ctx = tls;
    a.connectTimeoutMs = connectTimeoutMs;
    return a;
  };
  return {
    agent,
    h2,
    tlsAgent,
    negotiatedH2: (host, port) => alpnH2.has(`${host}:${port}`),
    close: () => {
      closed = true;
      for (const c of sessions.values()) c.session.close();
      sessions.clear();
      for (const a of tlsAgents.values()) closeAgent(a);
      tlsAgents.clear();
      // Destroy only idle sockets; busy ones are released to an agent nobody uses
      // again and are closed when their response ends (keepAlive false from now).
      closeAgent(agent);
    },
  };
}

function closeAgent(agent: Agent): void {
  for (const list of Object.values(agent.freeSockets)) for (const s of list ?? []) s.destroy();
  agent.maxFreeSockets = 0;
  (agent as unknown as { keepAlive: boolean }).keepAlive = false;
}


class TlsAgent extends Agent {
  ctx!: UpstreamTlsContext;
  connectTimeoutMs = 5000;
  adopt!: (host: string, port: number, sock: TLSSocket, t: UpstreamTlsContext) => void;

  constructor(opts: AgentOptions) {
    super(opts);
  }

  override createConnection(options: ClientRequestArgs, oncreate?: (err: Error | null, stream: Duplex) => void): undefined {
    const host = options.host ?? 'localhost';
    const port = Number(options.port);
    const t = this.ctx;
    const sock = connectUpstreamTls(host, port, t);
    const ct = setTimeout(() => {
      t.stats.upstreamCxConnectTimeout++;
      sock.destroy(Object.assign(new Error(`connect timeout after ${this.connectTimeoutMs} ms`), { code: 'WEFT_ERR_CONNECT_TIMEOUT' }));
    }, this.connectTimeoutMs);
    t.stats.upstreamCxTotal++;
    const done = oncreate ?? ((): void => {});
    const onError = (err: Error): void => { clearTimeout(ct); done(err, sock); };
    sock.once('error', onError);
    sock.once('secureConnect', () => {
      clearTimeout(ct);
      sock.off('error', onError);
      const ts = sock as TLSSocket;
      if (ts.alpnProtocol === 'h2') {
        this.adopt(host, port, ts, t);
        done(Object.assign(new Error('the upstream chose HTTP/2 (ALPN h2)'), { code: ALPN_H2 }), sock);
        return;
      }
      done(null, sock);
    });
    return undefined;
  }
}
