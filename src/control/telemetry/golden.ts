/**
 * Golden metrics (requests/s, success rate, latency percentiles) from the summaries
 * proxies sent, over a window: per Service, per route of a Service, per edge (source
 * Service → destination Service). Pure functions over the rings, so the window and
 * rate arithmetic is unit-tested without a network.
 *
 * Rates: a proxy's summaries each cover [start, end) (times as the control plane
 * received them). Over a window W ending now, the reports start at
 * S = max(now − W, the earliest start of any proxy's summary in W): a mesh (or a
 * control plane) up for 10 s is not diluted over 60 s. A proxy's counts are divided by
 * its latestEnd − S, so the part of W it has not reported yet (up to one interval)
 * does not count as silence. S is common to every proxy: the caller's and the callee's
 * proxies see the same requests, and must give them the same rate (with a start of its
 * own, a caller that connected a second after its callee showed edges at up to twice
 * the callee's rate). Rates of different proxies add up.
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

export interface RouteStats { name: string; rps: number; successRate: number | null; p50Ms: number | null; p95Ms: number | null; p99Ms: number | null; requests: number }
export interface ServiceStats extends Omit<RouteStats, 'name'> { name: string; namespace: string; proxies: number; requests: number; routes: RouteStats[] }
/** `requests`: how many the window holds (`rps` is over the span the reports cover). */
export interface EdgeStats { source: PeerRef; destination: PeerRef; rps: number; requests: number; errorRate: number | null; p99Ms: number | null; mtls: boolean }
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

/** S above: where the reports of every proxy in the window start (never before `from`). */
export function reportsStart(rings: readonly ProxyRing[], from: number): number {
  let start = Infinity;
  for (const r of rings) for (const s of r.summaries) if (s.endMs > from && s.startMs < start) start = s.startMs;
  return Math.max(from, start);
}

/** Seconds from `start` to the end of a proxy's last summary that ends after `from`; 0 when none does. */
export function spanSeconds(summaries: readonly StoredSummary[], from: number, start: number): number {
  let end = -Infinity;
  for (const s of summaries) if (s.endMs > from && s.endMs > end) end = s.endMs;
  return end === -Infinity ? 0 : Math.max(0.001, (end - start) / 1000);
}

/** Visits every stat of every summary inside the window with its proxy's span (from the common start). */
function eachStat(rings: readonly ProxyRing[], from: number, fn: (ring: ProxyRing, s: StoredStat, span: number) => void): void {
  const start = reportsStart(rings, from);
  for (const r of rings) {
    const span = spanSeconds(r.summaries, from, start);
    if (span === 0) continue;
    for (const sum of r.summaries) {
      if (sum.endMs <= from) continue;
      for (const s of sum.stats) if (s.requests > 0) fn(r, s, span);
    }
  }
}

const key = (p: PeerRef): string => `${p.namespace}/${p.name}`;

function fields(a: Acc): Omit<RouteStats, 'name' | 'requests'> {
  return {
    rps: round(a.rps)!,
    successRate: a.requests === 0 ? null : round(a.successes / a.requests, 4),
    p50Ms: round(a.latency.quantile(0.5)),
    p95Ms: round(a.latency.quantile(0.95)),
    p99Ms: round(a.latency.quantile(0.99)),
  };
}

/** Options of computeStats. */
export interface StatsOptions {
  readonly now: number;
  readonly windowMs: number;
  readonly namespace?: string | undefined;
  readonly window: string;
  /** How a reported route name is shown (route-names.ts); default: as reported. */
  readonly routeLabel?: ((route: string, destination: PeerRef) => string) | undefined;
}

interface EdgeAcc { readonly source: PeerRef; readonly destination: PeerRef; readonly acc: Acc }

/**
 * Every request is seen by up to two proxies: the caller's (outbound) and the callee's
 * (inbound). Each number takes one view, so nothing is counted twice:
 *
 * - A Service's numbers: its own proxies' inbound traffic when it has any in the window
 *   (all it served, unmeshed callers included), else its callers' outbound traffic to it
 *   (a Service without sidecars).
 * - Its routes: the callers' outbound view when there is one, since only the caller's
 *   proxy routes by HTTPRoute / GRPCRoute rules (the callee's inbound listener has a
 *   single catch-all route); else the inbound routes.
 * - An edge (source → destination): the caller's outbound view when the caller has a
 *   sidecar that reported in the window, else the callee's inbound view of a caller it
 *   could name (a caller known only by namespace is no edge).
 */
export function computeStats(rings: readonly ProxyRing[], opts: StatsOptions): StatsResponse {
  const from = opts.now - opts.windowMs;
  const label = opts.routeLabel ?? ((r: string): string => r);
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
  for (const r of rings) if (r.connected && r.service.name !== '') svc(r.service).proxies++;
  // Services whose own sidecars reported in the window: their outbound view is the edge.
  const reporting = new Set<string>();
  for (const r of rings) if (r.service.name !== '' && r.summaries.some((x) => x.endMs > from)) reporting.add(key(r.service));
  const edgeMap = new Map<string, EdgeAcc>();
  eachStat(rings, from, (_r, s, span) => {
    const d = svc(s.destination);
    if (s.direction === 'inbound') {
      d.inbound.add(s, span);
      if (s.route !== '') routeAcc(d.inRoutes, label(s.route, s.destination)).add(s, span);
      if (s.source.name === 'unknown' || s.source.name === '' || reporting.has(key(s.source))) return;
    } else {
      d.outbound.add(s, span);
      if (s.route !== '') routeAcc(d.outRoutes, label(s.route, s.destination)).add(s, span);
    }
    const edgeKey = `${key(s.source)}>${key(s.destination)}`;
    let e = edgeMap.get(edgeKey);
    if (e === undefined) edgeMap.set(edgeKey, (e = { source: s.source, destination: s.destination, acc: new Acc() }));
    e.acc.add(s, span);
  });
  const inNs = (p: PeerRef): boolean => opts.namespace === undefined || p.namespace === opts.namespace;
  const out: ServiceStats[] = [];
  for (const s of services.values()) {
    if (!inNs(s.ref) || s.ref.name === 'unknown') continue;
    const a = s.inbound.requests > 0 ? s.inbound : s.outbound;
    const routes = s.outRoutes.size > 0 ? s.outRoutes : s.inRoutes;
    out.push({
      name: s.ref.name, namespace: s.ref.namespace, ...fields(a), requests: a.requests, proxies: s.proxies,
      routes: [...routes].map(([name, r]) => ({ name, ...fields(r), requests: r.requests })).sort((x, y) => x.name.localeCompare(y.name)),
    });
  }
  out.sort((x, y) => x.namespace.localeCompare(y.namespace) || x.name.localeCompare(y.name));
  const edges: EdgeStats[] = [];
  for (const e of edgeMap.values()) {
    if (!inNs(e.source) && !inNs(e.destination)) continue;
    edges.push({
      source: e.source, destination: e.destination, rps: round(e.acc.rps)!, requests: e.acc.requests,
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
