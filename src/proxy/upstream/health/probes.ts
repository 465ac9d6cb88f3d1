/**
 * The active health check probes: TCP connect, HTTP GET (path, expected_statuses) and
 * gRPC health (grpc.health.v1.Health/Check over HTTP/2: SERVING passes).
 *
 * As in Envoy, a probe uses the cluster's transport socket: for a cluster with an
 * UpstreamTlsContext it connects with tls/upstream-tls.ts (our SVID, the server's
 * chain and SPIFFE ID verified), so a host presenting the wrong identity fails its
 * checks. TCP passes once the handshake has verified the server; HTTP offers ALPN
 * http/1.1 and gRPC ALPN h2. Each probe is its own connection, closed after it.
 */
import { request as httpRequest } from 'node:http';
import { connect as h2connect, constants as h2c } from 'node:http2';
import { connect as netConnect, type Socket } from 'node:net';
import type { HealthCheckConfig } from '../../config/types.js';
import { connectUpstreamTls, type UpstreamTlsContext } from '../../tls/upstream-tls.js';

export interface ProbeTarget { readonly key: string; readonly address: string; readonly port: number }

/** One probe: resolves true (healthy) or false; the checker bounds it by the timeout. */
export type Probe = (t: ProbeTarget, cfg: HealthCheckConfig, cluster: string) => Promise<boolean>;

/** The TLS connect context of a cluster by name, or undefined for a plaintext cluster. */
export type ClusterTlsLookup = (cluster: string) => UpstreamTlsContext | undefined;

const hostPort = (t: ProbeTarget): string => (t.address.includes(':') ? `[${t.address}]:${t.port}` : `${t.address}:${t.port}`);

/** The probes, over TLS for clusters `tlsOf` names a context for. */
export function createProbe(tlsOf: ClusterTlsLookup = () => undefined): Probe {
  return (t, cfg, cluster) => {
    const tls = tlsOf(cluster);
    switch (cfg.kind.type) {
      case 'tcp': return tcpProbe(t, cfg.timeoutMs, tls);
      case 'http': return httpProbe(t, cfg.kind.path, cfg.kind.host, cfg.kind.expected, cfg.timeoutMs, tls);
      case 'grpc': return grpcProbe(t, cfg.kind.serviceName, cfg.kind.authority, cfg.timeoutMs, tls);
    }
  };
}

/** Plaintext probes (no cluster is TLS). */
export const defaultProbe: Probe = createProbe();

function tcpProbe(t: ProbeTarget, timeoutMs: number, tls: UpstreamTlsContext | undefined): Promise<boolean> {
  return new Promise((resolve) => {
    const s = tls === undefined ? netConnect({ host: t.address, port: t.port }) : connectUpstreamTls(t.address, t.port, tls);
    const timer = setTimeout(() => { s.destroy(); resolve(false); }, timeoutMs);
    // Over TLS the check passes once the server's chain and SPIFFE ID are verified.
    s.once(tls === undefined ? 'connect' : 'secureConnect', () => { clearTimeout(timer); s.destroy(); resolve(true); });
    s.once('error', () => { clearTimeout(timer); resolve(false); });
  });
}

function httpProbe(t: ProbeTarget, path: string, host: string | undefined, expected: readonly (readonly [number, number])[], timeoutMs: number, tls: UpstreamTlsContext | undefined): Promise<boolean> {
  return new Promise((resolve) => {
    const r = httpRequest({
      host: t.address, port: t.port, path, method: 'GET',
      // node uses createConnection only when no agent is given (agent: false would build a plain one).
      ...(tls === undefined ? { agent: false } : { createConnection: () => connectUpstreamTls(t.address, t.port, tls, ['http/1.1']) as Socket }),
      headers: { host: host ?? hostPort(t), 'user-agent': 'weft-health-checker', connection: 'close' },
    }, (res) => {
      const code = res.statusCode ?? 0;
      res.resume();
      resolve(expected.some(([a, b]) => code >= a && code < b));
    });
    r.setTimeout(timeoutMs, () => r.destroy());
    r.on('error', () => resolve(false));
    r.end();
  });
}

/** grpc.health.v1.HealthCheckRequest { string service = 1; } encoded by hand. */
function encodeHealthRequest(service: string): Buffer {
  const s = Buffer.from(service);
  const msg = s.length === 0 ? Buffer.alloc(0) : Buffer.concat([Buffer.from([0x0a]), varint(s.length), s]);
  const frame = Buffer.alloc(5);
  frame.writeUInt32BE(msg.length, 1);
  return Buffer.concat([frame, msg]);
}

function varint(n: number): Buffer {
  const out: number[] = [];
  while (n > 0x7f) { out.push((n & 0x7f) | 0x80); n >>>= 7; }
  out.push(n);
  return Buffer.from(out);
}

/** HealthCheckResponse { ServingStatus status = 1; } — SERVING is 1. */
export function decodeServingStatus(body: Buffer): number | undefined {
  if (body.length < 5) return undefined;
  const len = body.readUInt32BE(1);
  const msg = body.subarray(5, 5 + len);
  let i = 0;
  let status = 0; // proto3 default: UNKNOWN
  while (i < msg.length) {
    const tag = msg[i++]!;
    const field = tag >> 3; const wire = tag & 7;
    if (wire === 0) {
      let v = 0; let shift = 0;
      for (;;) { const b = msg[i++]; if (b === undefined) return undefined; v |= (b & 0x7f) << shift; shift += 7; if ((b & 0x80) === 0) break; }
      if (field === 1) status = v;
    } else if (wire === 2) {
      let l = 0; let shift = 0;
      for (;;) { const b = msg[i++]; if (b === undefined) return undefined; l |= (b & 0x7f) << shift; shift += 7; if ((b & 0x80) === 0) break; }
      i += l;
    } else {
      return undefined;
    }
  }
  return status;
}

function grpcProbe(t: ProbeTarget, service: string, authority: string | undefined, timeoutMs: number, tls: UpstreamTlsContext | undefined): Promise<boolean> {
  return new Promise((resolve) => {
    let done = false;
    const finish = (ok: boolean): void => { if (done) return; done = true; clearTimeout(timer); session.destroy(); resolve(ok); };
    const session = h2connect(`${tls === undefined ? 'http' : 'https'}://${hostPort(t)}`,
      tls === undefined ? {} : { createConnection: () => connectUpstreamTls(t.address, t.port, tls, ['h2']) });
    const timer = setTimeout(() => finish(false), timeoutMs);
    session.on('error', () => finish(false));
    const s = session.request({
      ':method': 'POST', ':path': '/grpc.health.v1.Health/Check', ':authority': authority ?? hostPort(t),
      'content-type': 'application/grpc', te: 'trailers', 'user-agent': 'weft-health-checker',
    });
    const chunks: Buffer[] = [];
    let grpcStatus: string | undefined;
    let httpOk = false;
    const passed = (): boolean => httpOk && grpcStatus === '0' && decodeServingStatus(Buffer.concat(chunks)) === 1;
    s.on('response', (h) => {
      httpOk = h[':status'] === 200;
      if (h['grpc-status'] !== undefined) grpcStatus = String(h['grpc-status']);
    });
    s.on('trailers', (h) => { if (h['grpc-status'] !== undefined) grpcStatus = String(h['grpc-status']); });
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('end', () => finish(passed()));
    s.on('error', () => finish(false));
    s.on('close', () => { if (s.rstCode !== undefined && s.rstCode !== h2c.NGHTTP2_NO_ERROR) finish(false); else finish(passed()); });
    s.end(encodeHealthRequest(service));
  });
}
