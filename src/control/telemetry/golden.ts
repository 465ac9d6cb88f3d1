/**
 * Golden metrics (requests/s, success rate, latency percentiles) from the summaries
 * proxies sent, over a window: per Service, per route of a Service, per edge (source
 * Service → destination Service). Pure functions over the rings, so the window and
 * rate arithmetic is unit-tested without a network.
 *
 * Rates: a proxy's summaries each cover [start, end) (times as the control plane
 * received them). Over a window W ending now, a proxy's included summaries cover
 * latestEnd − max(now − W, earliestStart): its counts are divided by that span, not by
 * W, so a proxy that connected 10 s ago is not diluted over 60 s, and the part of W
 * that no summary has reported yet (up to one interval) does not count as silence.
 * Rates of different proxies add up.
 */
import { Histogram } from '../../telemetry/histogram.js';

export interface PeerRef { readonly name: string; readonly namespace: string }

/** One key's counts in one summary (as stored: sparse histogram). */
export interface StoredStat {
  readonly direction: 'inbound' | 'outbound';
  readonly source: PeerRef;
  readonly destination: PeerRef;
  readonly route: string;
  readonly mtls: boolean;
  readonly requests: number;
  readonly successes: number;
  readonly buckets: readonly number[];
  readonly counts: readonly number[];
}

export interface StoredSummary {
  /** ms epoch, control plane clock. */
  readonly startMs: number;
  readonly endMs: number;
  readonly stats: readonly StoredStat[];
}

export interface ProxyRing {
  readonly id: string;
  readonly service: PeerRef;
  readonly connected: boolean;
  readonly summaries: readonly StoredSummary[];
}

export interface RouteStats { name: string; rps: number; successRate: number | null; p50Ms: number | null; p95Ms: number | null; p99Ms: number | null }
export interface ServiceStats extends Omit<RouteStats, 'name'> { name: string; namespace: string; proxies: number; requests: number; routes: RouteStats[] }
export interface EdgeStats { source: PeerRef; destination: PeerRef; rps: number; errorRate: number | null; p99Ms: number | null; mtls: boolean }
export interface StatsResponse { window: string; generatedAt: string; services: ServiceStats[]; edges: EdgeStats[] }

class Acc {
  rps = 0;
  requests = 0;
  successes = 0;
  mtlsRequests = 0;
  readonly latency = new Histogram();

  add(s: StoredStat, span: number): void {
    this.rps += s.requests / span;
    this.requests += s.requests;
    this.successes += s.successes;
    if (s.mtls) this.mtlsRequests += s.requests;
    this.latency.mergeSparse({ buckets: s.buckets, counts: s.counts });
  }
}

const round = (v: number | undefined, digits = 3): number | null => (v === undefined || !Number.isFinite(v) ? null : Math.round(v * 10 ** digits) / 10 ** digits);

/** The span (seconds) a proxy's summaries cover within [from, ∞), or 0 when none. */
export function coveredSeconds(summaries: readonly StoredSummary[], from: number): number {
  let start = Infinity;
  let end = -Infinity;
  for (const s of summaries) {
    if (s.endMs <= from) continue;
    start = Math.min(start, s.startMs);
    end = Math.max(end, s.endMs);
  }
  if (end === -Infinity) return 0;
  return Math.max(0.001, (end - Math.max(from, start)) / 1000);
}

/** Visits every stat of every summary inside the window with its proxy's span. */
function eachStat(rings: readonly ProxyRing[], from: number, fn: (ring: ProxyRing, s: StoredStat, span: number) => void): void {
  for (const r of rings) {
    const span = coveredSeconds(r.summaries, from);
    if (span === 0) continue;
    for (const sum of r.summaries) {
      if (sum.endMs <= from) continue;
      for (const s of sum.stats) if (s.requests > 0) fn(r, s, span);
    }
  }
}

const key = (p: PeerRef): string => `${p.namespace}/${p.name}`;

function fields(a: Acc): Omit<RouteStats, 'name'> {
  return {
    rps: round(a.rps)!,
    successRate: a.requests === 0 ? null : round(a.successes / a.requests, 4),
    p50Ms: round(a.latency.quantile(0.5)),
    p95Ms: round(a.latency.quantile(0.95)),
    p99Ms: round(a.latency.quantile(0.99)),
  };
}

/**
 * A Service's numbers come from its own proxies' inbound traffic when it has any in the
 * window (what the Service served), else from its callers' outbound traffic to it (a
 * Service without sidecars). Its routes come from the same side, so they add up to the
 * Service's numbers: the inbound routes of its proxies, or the callers' outbound routes.
 */
export function computeStats(rings: readonly ProxyRing[], opts: { now: number; windowMs: number; namespace?: string | undefined; window: string }): StatsResponse {
  const from = opts.now - opts.windowMs;
  type Svc = { ref: PeerRef; inbound: Acc; outbound: Acc; inRoutes: Map<string, Acc>; outRoutes: Map<string, Acc>; proxies: number };
  const services = new Map<string, Svc>();
  const svc = (p: PeerRef): Svc => {
    let s = services.get(key(p));
    if (s === undefined) {
      s = { ref: p, inbound: new Acc(), outbound: new Acc(), inRoutes: new Map(), outRoutes: new Map(), proxies: 0 };
      services.set(key(p), s);
    }
    return s;
  };
  const routeAcc = (m: Map<string, Acc>, name: string): Acc => {
    let a = m.get(name);
    if (a === undefined) m.set(name, (a = new Acc()));
    return a;
  };
  const outEdges = new Map<string, { source: PeerRef; destination: PeerRef; acc: Acc }>();
  const inEdges = new Map<string, { source: PeerRef; destination: PeerRef; acc: Acc }>();
  for (const r of rings) if (r.connected && r.service.name !== '') svc(r.service).proxies++;
  eachStat(rings, from, (_r, s, span) => {
    const edgeKey = `${key(s.source)}>${key(s.destination)}`;
    const edges = s.direction === 'outbound' ? outEdges : inEdges;
    let e = edges.get(edgeKey);
    if (e === undefined) edges.set(edgeKey, (e = { source: s.source, destination: s.destination, acc: new Acc() }));
    e.acc.add(s, span);
    const d = svc(s.destination);
    if (s.direction === 'inbound') {
      d.inbound.add(s, span);
      if (s.route !== '') routeAcc(d.inRoutes, s.route).add(s, span);
    } else {
      d.outbound.add(s, span);
      if (s.route !== '') routeAcc(d.outRoutes, s.route).add(s, span);
    }
  });
  const inNs = (p: PeerRef): boolean => opts.namespace === undefined || p.namespace === opts.namespace;
  const out: ServiceStats[] = [];
  for (const s of services.values()) {
    if (!inNs(s.ref) || s.ref.name === 'unknown') continue;
    // Routes from the same side as the Service's numbers, so that they add up to them.
    const useInbound = s.inbound.requests > 0;
    const a = useInbound ? s.inbound : s.outbound;
    const routes = useInbound ? s.inRoutes : s.outRoutes;
    out.push({
      name: s.ref.name, namespace: s.ref.namespace, ...fields(a), requests: a.requests, proxies: s.proxies,
      routes: [...routes].map(([name, r]) => ({ name, ...fields(r) })).sort((x, y) => x.name.localeCompare(y.name)),
    });
  }
  out.sort((x, y) => x.namespace.localeCompare(y.namespace) || x.name.localeCompare(y.name));
  // Callers' view first; the inbound view only adds pairs no caller reported (an
  // unmeshed caller whose identity the server side knows).
  const edges: EdgeStats[] = [];
  for (const [k, e] of [...outEdges, ...[...inEdges].filter(([k2, e2]) => !outEdges.has(k2) && e2.source.name !== 'unknown')]) {
    void k;
    if (!inNs(e.source) && !inNs(e.destination)) continue;
    edges.push({
      source: e.source, destination: e.destination, rps: round(e.acc.rps)!,
      errorRate: e.acc.requests === 0 ? null : round(1 - e.acc.successes / e.acc.requests, 4),
      p99Ms: round(e.acc.latency.quantile(0.99)),
      mtls: e.acc.requests > 0 && e.acc.mtlsRequests / e.acc.requests >= 0.99,
    });
  }
  edges.sort((x, y) => key(x.source).localeCompare(key(y.source)) || key(x.destination).localeCompare(key(y.destination)));
  return { window: opts.window, generatedAt: new Date(opts.now).toISOString(), services: out, edges };
}

export interface TimeseriesPoint { t: number; rps: number; successRate: number | null; p50Ms: number | null; p99Ms: number | null }

/**
 * One Service over the last `minutes`, in `stepS`-second points (a summary counts in
 * the step its end falls in). Same source rule as computeStats: inbound when the
 * Service's own proxies reported any in the range, else its callers' outbound.
 */
export function computeTimeseries(rings: readonly ProxyRing[], opts: { now: number; minutes: number; stepS: number; service: PeerRef }): { step: number; points: TimeseriesPoint[] } {
  const stepMs = opts.stepS * 1000;
  const end = Math.floor(opts.now / stepMs) * stepMs + stepMs;
  const n = Math.max(1, Math.ceil((opts.minutes * 60_000) / stepMs));
  const from = end - n * stepMs;
  const inbound = Array.from({ length: n }, () => new Acc());
  const outbound = Array.from({ length: n }, () => new Acc());
  let anyInbound = false;
  for (const r of rings) {
    for (const sum of r.summaries) {
      if (sum.endMs <= from || sum.endMs > end) continue;
      const i = Math.min(n - 1, Math.floor((sum.endMs - from) / stepMs));
      for (const s of sum.stats) {
        if (s.destination.name !== opts.service.name || s.destination.namespace !== opts.service.namespace || s.requests === 0) continue;
        if (s.direction === 'inbound') anyInbound = true;
        (s.direction === 'inbound' ? inbound : outbound)[i]!.add(s, opts.stepS);
      }
    }
  }
  const use = anyInbound ? inbound : outbound;
  return {
    step: opts.stepS,
    points: use.map((a, i) => {
      const f = fields(a);
      return { t: from + i * stepMs, rps: f.rps, successRate: f.successRate, p50Ms: f.p50Ms, p99Ms: f.p99Ms };
    }),
  };
}
