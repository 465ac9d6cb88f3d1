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
import { Agent } from 'node:http';
import { connect as h2connect, type ClientHttp2Session } from 'node:http2';
import { connect as netConnect, type Socket } from 'node:net';

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
   * `onNew` runs when a new connection is attempted.
   */
  h2(host: string, port: number, connectTimeoutMs: number, onNew?: (c: H2Conn) => void): H2Conn;
  /** Closes idle sockets; in-flight requests finish. */
  close(): void;
}

export function createUpstreamPool(maxConnections: number): UpstreamPool {
  const agent = new Agent({
    keepAlive: true,
    keepAliveMsecs: 1000,
    maxSockets: maxConnections,
    maxTotalSockets: maxConnections,
    maxFreeSockets: 256,
    // LIFO keeps a few sockets hot and lets the rest idle out at the server.
    scheduling: 'lifo',
  });
  const sessions = new Map<string, H2Conn>();
  let closed = false;
  const h2 = (host: string, port: number, connectTimeoutMs: number, onNew?: (c: H2Conn) => void): H2Conn => {
    const key = `${host}:${port}`;
    const cur = sessions.get(key);
    if (cur !== undefined && !cur.session.closed && !cur.session.destroyed) return cur;
    let sock: Socket | undefined;
    const session = h2connect(`http://${host.includes(':') ? `[${host}]` : host}:${port}`, {
      createConnection: () => {
        sock = netConnect({ host, port });
        return sock;
      },
      // No cap on concurrent streams beyond the server's own SETTINGS.
      peerMaxConcurrentStreams: 1000,
    });
    const conn: H2Conn = { session, connected: false };
    const forget = (): void => { if (sessions.get(key) === conn) sessions.delete(key); };
    const ct = setTimeout(() => {
      sock?.destroy(Object.assign(new Error(`connect timeout after ${connectTimeoutMs} ms`), { code: 'WEFT_ERR_CONNECT_TIMEOUT' }));
    }, connectTimeoutMs);
    sock?.once('connect', () => { conn.connected = true; clearTimeout(ct); });
    session.once('close', () => { clearTimeout(ct); forget(); });
    session.once('goaway', forget);
    session.on('error', forget);
    // An idle session does not keep the process alive; streams ref it while they run.
    session.unref();
    if (!closed) sessions.set(key, conn);
    onNew?.(conn);
    return conn;
  };
  return {
    agent,
    h2,
    close: () => {
      closed = true;
      for (const c of sessions.values()) c.session.close();
      sessions.clear();
      // Destroy only idle sockets; busy ones are released to an agent nobody uses
      // again and are closed when their response ends (keepAlive false from now).
      for (const list of Object.values(agent.freeSockets)) for (const s of list ?? []) s.destroy();
      agent.maxFreeSockets = 0;
      (agent as unknown as { keepAlive: boolean }).keepAlive = false;
    },
  };
}
