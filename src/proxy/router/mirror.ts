/**
 * Request mirroring (route request_mirror_policies): a copy of the request goes to
 * the mirror cluster, fire and forget. The copy never affects the primary: its
 * response is drained and dropped, its errors and timeouts are swallowed, and the
 * body is copied as the primary reads it (the mirror never slows the primary down;
 * a slow mirror only buffers). As in Envoy the Host gets a `-shadow` suffix
 * (`catalog:80` → `catalog-shadow:80`) unless the policy disables it; each policy
 * applies to runtime_fraction of requests.
 */
import { request as httpRequest, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import type { Writable } from 'node:stream';
import type { MirrorPolicy } from '../config/types.js';
import type { Snapshot } from '../config/state.js';
import type { ClusterHost, ClusterRuntime } from '../upstream/cluster/cluster-manager.js';
import { ALPN_H2 } from '../upstream/pool/upstream-pool.js';
import type { UpstreamTlsContext } from '../tls/upstream-tls.js';

export function shadowHost(host: string): string {
  const m = /^(\[[^\]]*\]|[^:]*)(:\d*)?$/.exec(host);
  return m === null ? `${host}-shadow` : `${m[1]!}-shadow${m[2] ?? ''}`;
}

export interface MirrorOptions {
  readonly random?: () => number;
  /**
   * The mirror cluster's TLS connect context (tls/upstream-tls.ts), as for the primary
   * request: with one, the copy goes over mTLS with the server's SPIFFE ID checked.
   */
  readonly tlsOf?: (c: ClusterRuntime) => UpstreamTlsContext | undefined;
}

/** Body bytes kept for a TLS copy whose peer may still switch it to HTTP/2 (ALPN); beyond this it is dropped then. */
const REPLAY_LIMIT = 1 << 20;

/** Starts one mirrored request per policy that fires; returns how many were sent. */
export function mirrorRequest(snap: Snapshot, policies: readonly MirrorPolicy[], req: IncomingMessage, headers: readonly string[], path: string, bodyless: boolean, timeoutMs: number, opts: MirrorOptions = {}): number {
  const random = opts.random ?? Math.random;
  let sent = 0;
  const sinks: Writable[] = [];
  const method = req.method ?? 'GET';
  for (const p of policies) {
    if (p.fraction < 1 && random() >= p.fraction) continue;
    const c = snap.clusters.get(p.cluster);
    const h = c?.lb.pick({ hash: undefined }) as ClusterHost | undefined;
    if (c === undefined || h === undefined) continue;
    const raw: string[] = [];
    for (let i = 0; i < headers.length; i += 2) {
      const k = headers[i]!;
      raw.push(k, p.shadowSuffix && k.toLowerCase() === 'host' ? shadowHost(headers[i + 1]!) : headers[i + 1]!);
    }
    const tls = opts.tlsOf?.(c);
    c.stats.upstreamRqTotal++;
    if (c.config.protocol === 'http2' || (tls !== undefined && c.pool.negotiatedH2(h.address, h.port))) {
      const s = h2Copy(c, h, tls, method, path, raw, bodyless, timeoutMs);
      if (s === undefined) continue;
      if (!bodyless) sinks.push(s);
    } else {
      const r = httpRequest({ host: h.address, port: h.port, method, path, headers: raw, agent: tls === undefined ? c.pool.agent : c.pool.tlsAgent(tls, c.config.connectTimeoutMs), setHost: false });
      const idx = sinks.length;
      if (!bodyless) sinks.push(r);
      // A TLS peer may pick h2 by ALPN: the copy then moves to its HTTP/2 session. Node
      // fails the request before it had a socket, so nothing was sent: keep the body until then.
      let replay: Buffer[] | undefined = tls !== undefined && !bodyless ? [] : undefined;
      let replayBytes = 0;
      if (replay !== undefined) {
        r.once('socket', () => { replay = undefined; });
        req.on('data', (chunk: Buffer) => {
          if (replay === undefined) return;
          replayBytes += chunk.length;
          if (replayBytes > REPLAY_LIMIT) replay = undefined; else replay.push(chunk);
        });
      }
      r.on('error', (err: Error & { code?: string }) => {
        if (err.code !== ALPN_H2) return;
        if (!bodyless && replay === undefined) return;
        const s = h2Copy(c, h, tls, method, path, raw, bodyless, timeoutMs);
        if (s === undefined || bodyless) return;
        for (const chunk of replay!) s.write(chunk);
        if (req.readableEnded) s.end(); else sinks[idx] = s;
      });
      r.on('response', (up: IncomingMessage) => { up.on('error', () => {}); up.resume(); });
      if (timeoutMs > 0) r.setTimeout(timeoutMs, () => r.destroy());
      if (bodyless) r.end();
    }
    sent++;
  }
  if (sinks.length > 0) {
    // The primary pipes req; a 'data' listener sees the same chunks without pausing it.
    req.on('data', (chunk: Buffer) => { for (const s of sinks) if (!s.destroyed) s.write(chunk); });
    req.on('end', () => { for (const s of sinks) if (!s.destroyed) s.end(); });
    req.on('aborted', () => { for (const s of sinks) s.destroy(); });
  }
  return sent;
}

/** The copy as a stream on the host's HTTP/2 session (h2c, or mTLS with ALPN h2); undefined when it cannot start. */
function h2Copy(c: ClusterRuntime, h: ClusterHost, tls: UpstreamTlsContext | undefined, method: string, path: string, raw: readonly string[], bodyless: boolean, timeoutMs: number): Writable | undefined {
  const hdrs: OutgoingHttpHeaders = { ':method': method, ':path': path, ':scheme': tls === undefined ? 'http' : 'https' };
  for (let i = 0; i < raw.length; i += 2) {
    const k = raw[i]!.toLowerCase();
    if (k === 'host') hdrs[':authority'] = raw[i + 1]!;
    else if (k !== 'connection' && k !== 'keep-alive' && k !== 'transfer-encoding' && k !== 'te') hdrs[k] = raw[i + 1]!;
  }
  try {
    const s = c.pool.h2(h.address, h.port, c.config.connectTimeoutMs, undefined, tls).session.request(hdrs, { endStream: bodyless });
    s.on('error', () => {});
    s.resume();
    if (timeoutMs > 0) s.setTimeout(timeoutMs, () => s.close());
    return s;
  } catch {
    return undefined;
  }
}
