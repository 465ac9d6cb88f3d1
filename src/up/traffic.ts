/**
 * The demo's traffic generator: a fixed rate of GETs to web, at most a few in
 * flight (a slow mesh gets fewer requests, never a pile-up), counted by outcome
 * and by the catalog version that answered.
 */
import { Agent, request } from 'node:http';

export interface TrafficStats {
  sent: number;
  ok: number;
  failed: number;
  /** catalog version → answers (from web's JSON). */
  versions: Record<string, number>;
}

export interface Traffic {
  stats(): TrafficStats;
  stop(): Promise<void>;
}

export interface TrafficOptions {
  /** `http://host:port/` of web. */
  readonly url: string;
  readonly perSecond: number;
  /** Requests allowed in flight; a tick with this many still open is skipped. */
  readonly maxInFlight?: number;
  readonly timeoutMs?: number;
}

function getJson(url: string, agent: Agent, timeoutMs: number): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent, timeout: timeoutMs, headers: { accept: 'application/json' } }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (c: string) => (text += c));
      res.on('end', () => {
        try {
          resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as unknown });
        } catch {
          resolve({ status: res.statusCode ?? 0, body: undefined });
        }
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

export function startTraffic(o: TrafficOptions): Traffic {
  const agent = new Agent({ keepAlive: true, maxSockets: o.maxInFlight ?? 8 });
  const s: TrafficStats = { sent: 0, ok: 0, failed: 0, versions: {} };
  const inFlight = new Set<Promise<void>>();
  const one = async (): Promise<void> => {
    s.sent++;
    try {
      const r = await getJson(o.url, agent, o.timeoutMs ?? 5000);
      const version = (r.body as { catalog?: { version?: unknown } } | undefined)?.catalog?.version;
      if (r.status === 200) s.ok++;
      else s.failed++;
      if (typeof version === 'string') s.versions[version] = (s.versions[version] ?? 0) + 1;
    } catch {
      s.failed++;
    }
  };
  const timer = setInterval(() => {
    if (inFlight.size >= (o.maxInFlight ?? 8)) return;
    const p = one().finally(() => inFlight.delete(p));
    inFlight.add(p);
  }, Math.max(1, Math.round(1000 / o.perSecond)));
  return {
    stats: () => ({ ...s, versions: { ...s.versions } }),
    async stop() {
      clearInterval(timer);
      await Promise.allSettled([...inFlight]);
      agent.destroy();
    },
  };
}
