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
import type { MirrorPolicy } from '../config/types.js';
import type { Snapshot } from '../config/state.js';
import type { ClusterHost } from '../upstream/cluster/cluster-manager.js';
import type { Writable } from 'node:stream';

export function shadowHost(host: string): string {
  const m = /^(\[[^\]]*\]|[^:]*)(:\d*)?$/.exec(host);
  return m === null ? `${host}-shadow` : `${m[1]!}-shadow${m[2] ?? ''}`;
}

export interface MirrorOptions {
  readonly random?: () => number;
}

/** Starts one mirrored request per policy that fires; returns how many were sent. */
export function mirrorRequest(snap: Snapshot, policies: readonly MirrorPolicy[], req: IncomingMessage, headers: readonly string[], path: string, bodyless: boolean, timeoutMs: number, opts: MirrorOptions = {}): number {
  const random = opts.random ?? Math.random;
  let sent = 0;
  const sinks: Writable[] = [];
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
    c.stats.upstreamRqTotal++;
    const method = req.method ?? 'GET';
    if (c.config.protocol === 'http2') {
      const hdrs: OutgoingHttpHeaders = { ':method': method, ':path': path, ':scheme': 'http' };
      for (let i = 0; i < raw.length; i += 2) {
        const k = raw[i]!.toLowerCase();
        if (k === 'host') hdrs[':authority'] = raw[i + 1]!;
        else if (k !== 'connection' && k !== 'keep-alive' && k !== 'transfer-encoding' && k !== 'te') hdrs[k] = raw[i + 1]!;
      }
      try {
        const s = c.pool.h2(h.address, h.port, c.config.connectTimeoutMs).session.request(hdrs, { endStream: bodyless });
        s.on('error', () => {});
        s.resume();
        if (timeoutMs > 0) s.setTimeout(timeoutMs, () => s.close());
        if (!bodyless) sinks.push(s);
      } catch { continue; }
    } else {
      const r = httpRequest({ host: h.address, port: h.port, method, path, headers: raw, agent: c.pool.agent, setHost: false });
      r.on('error', () => {});
      r.on('response', (up: IncomingMessage) => { up.on('error', () => {}); up.resume(); });
      if (timeoutMs > 0) r.setTimeout(timeoutMs, () => r.destroy());
      if (bodyless) r.end(); else sinks.push(r);
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
