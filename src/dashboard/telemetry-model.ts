// What the dashboard derives from the telemetry API (/apis/telemetry/v1/*) and
// the CA view: the service graph, health tones, expiry countdowns. No DOM here,
// so it runs (and is tested) in Node as well as in the browser.

export interface RouteStats {
  name: string;
  rps: number;
  successRate: number;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
}

export interface ServiceTelemetry extends RouteStats {
  namespace: string;
  proxies: number;
  routes: RouteStats[];
}

export interface ServiceRef {
  name: string;
  namespace: string;
}

export interface EdgeStats {
  source: ServiceRef;
  destination: ServiceRef;
  rps: number;
  errorRate: number;
  p99Ms: number;
  /** True when at least 99% of the edge's requests were mTLS. */
  mtls: boolean;
}

/** GET /apis/telemetry/v1/stats and each `stats` event of /stats/stream. */
export interface StatsSnapshot {
  window: string;
  generatedAt: string;
  services: ServiceTelemetry[];
  edges: EdgeStats[];
}

/** GET /apis/telemetry/v1/timeseries. */
export interface TimeSeries {
  step: number;
  points: { t: number; rps: number; successRate: number; p50Ms: number; p99Ms: number }[];
}

/** One tap event (GET /apis/telemetry/v1/tap). */
export interface TapEvent {
  time: string;
  proxy: string;
  direction: string;
  method: string;
  authority: string;
  path: string;
  status: number;
  flags: string;
  durationMs: number;
  source: string;
  destination: string;
  requestId: string;
  traceId?: string;
}

const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);
const str = (v: unknown): string => (typeof v === 'string' ? v : '');
const obj = (v: unknown): Record<string, unknown> => (typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : {});
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

function routeStats(v: unknown): RouteStats {
  const r = obj(v);
  return { name: str(r.name), rps: num(r.rps), successRate: num(r.successRate), p50Ms: num(r.p50Ms), p95Ms: num(r.p95Ms), p99Ms: num(r.p99Ms) };
}

function serviceRef(v: unknown): ServiceRef {
  const r = obj(v);
  return { name: str(r.name), namespace: str(r.namespace) || 'default' };
}

/**
 * Reads a stats document defensively: the page must not throw on a field a newer
 * control plane adds or an older one lacks. Missing numbers read as 0.
 */
export function parseStats(body: unknown): StatsSnapshot {
  const b = obj(body);
  return {
    window: str(b.window),
    generatedAt: str(b.generatedAt),
    services: arr(b.services).map((s) => {
      const r = obj(s);
      return { ...routeStats(r), namespace: str(r.namespace) || 'default', proxies: num(r.proxies), routes: arr(r.routes).map(routeStats) };
    }).filter((s) => s.name !== ''),
    edges: arr(b.edges).map((e) => {
      const r = obj(e);
      return { source: serviceRef(r.source), destination: serviceRef(r.destination), rps: num(r.rps), errorRate: num(r.errorRate), p99Ms: num(r.p99Ms), mtls: r.mtls === true };
    }).filter((e) => e.source.name !== '' && e.destination.name !== ''),
  };
}

export function parseTimeSeries(body: unknown): TimeSeries {
  const b = obj(body);
  return {
    step: num(b.step),
    points: arr(b.points).map((p) => {
      const r = obj(p);
      return { t: num(r.t), rps: num(r.rps), successRate: num(r.successRate), p50Ms: num(r.p50Ms), p99Ms: num(r.p99Ms) };
    }).filter((p) => p.t > 0).sort((a, b) => a.t - b.t),
  };
}

export function parseTapEvent(body: unknown): TapEvent | undefined {
  const r = obj(body);
  if (str(r.path) === '' && str(r.method) === '') return undefined;
  const e: TapEvent = {
    time: str(r.time), proxy: str(r.proxy), direction: str(r.direction), method: str(r.method), authority: str(r.authority),
    path: str(r.path), status: num(r.status), flags: str(r.flags), durationMs: num(r.durationMs),
    source: typeof r.source === 'string' ? r.source : refText(r.source), destination: typeof r.destination === 'string' ? r.destination : refText(r.destination),
    requestId: str(r.requestId),
  };
  if (typeof r.traceId === 'string') e.traceId = r.traceId;
  return e;
}

function refText(v: unknown): string {
  const r = obj(v);
  const name = str(r.name);
  if (name === '') return '';
  return str(r.namespace) ? `${str(r.namespace)}/${name}` : name;
}

/** Health tone of a success rate (0–1): what colours a node or a cell. */
export type Tone = 'ok' | 'warn' | 'bad' | 'idle';

export function successTone(successRate: number | undefined, rps: number | undefined): Tone {
  if (successRate === undefined || rps === undefined || rps <= 0) return 'idle';
  if (successRate >= 0.99) return 'ok';
  if (successRate >= 0.95) return 'warn';
  return 'bad';
}

export const nodeId = (r: ServiceRef): string => `${r.namespace}/${r.name}`;

export interface GraphNode {
  id: string;
  name: string;
  namespace: string;
  tone: Tone;
  rps?: number;
  successRate?: number;
  p99Ms?: number;
  /** Known only from traffic (no Service object): an external or undeclared peer. */
  unknown: boolean;
}

export interface GraphEdge {
  id: string;
  source: string;
  target: string;
  rps: number;
  errorRate: number;
  p99Ms: number;
  mtls: boolean;
  tone: Tone;
  label: string;
}

/**
 * Nodes are the declared services plus any service seen in traffic; edges are the
 * traffic of the stats window (an edge with no requests is not drawn).
 */
export function serviceGraph(declared: readonly ServiceRef[], stats: StatsSnapshot | undefined): { nodes: GraphNode[]; edges: GraphEdge[] } {
  const nodes = new Map<string, GraphNode>();
  for (const d of declared) nodes.set(nodeId(d), { id: nodeId(d), name: d.name, namespace: d.namespace, tone: 'idle', unknown: false });
  const touch = (r: ServiceRef): void => {
    if (!nodes.has(nodeId(r))) nodes.set(nodeId(r), { id: nodeId(r), name: r.name, namespace: r.namespace, tone: 'idle', unknown: true });
  };
  for (const s of stats?.services ?? []) {
    touch(s);
    const n = nodes.get(nodeId(s))!;
    n.rps = s.rps;
    n.successRate = s.successRate;
    n.p99Ms = s.p99Ms;
    n.tone = successTone(s.successRate, s.rps);
  }
  const edges: GraphEdge[] = [];
  for (const e of stats?.edges ?? []) {
    if (e.rps <= 0) continue;
    touch(e.source);
    touch(e.destination);
    const id = `${nodeId(e.source)}->${nodeId(e.destination)}`;
    edges.push({
      id, source: nodeId(e.source), target: nodeId(e.destination), rps: e.rps, errorRate: e.errorRate, p99Ms: e.p99Ms, mtls: e.mtls,
      tone: successTone(1 - e.errorRate, e.rps),
      label: `${e.mtls ? 'mTLS · ' : ''}${fmtRps(e.rps)} · ${fmtPercent(e.errorRate)} err · p99 ${fmtMs(e.p99Ms)}`,
    });
  }
  return { nodes: [...nodes.values()].sort((a, b) => a.id.localeCompare(b.id)), edges: edges.sort((a, b) => a.id.localeCompare(b.id)) };
}

export function fmtRps(n: number): string {
  return `${n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2)} rps`;
}

/** 0–1 → `99.5%`. */
export function fmtPercent(ratio: number): string {
  const p = ratio * 100;
  return `${p === 0 || p === 100 ? p.toFixed(0) : p >= 99.9 || p < 0.1 ? p.toFixed(2) : p.toFixed(1)}%`;
}

export function fmtMs(ms: number): string {
  return ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : ms >= 10 ? `${ms.toFixed(0)} ms` : `${ms.toFixed(1)} ms`;
}

// ---- certificates (/ui/api/certificates) -------------------------------------

export type ExpiryTone = 'ok' | 'soon' | 'expired';

/**
 * Expiring soon: less than a fifth of the certificate's lifetime left (so a 24 h
 * workload certificate turns at ~5 h, a 10-year root at 2 years), or under an hour.
 */
export function expiryTone(notBefore: string, notAfter: string, now: number): ExpiryTone {
  const from = Date.parse(notBefore);
  const to = Date.parse(notAfter);
  if (Number.isNaN(to)) return 'ok';
  const left = to - now;
  if (left <= 0) return 'expired';
  const life = Number.isNaN(from) ? Number.POSITIVE_INFINITY : to - from;
  return left < 3_600_000 || left < life / 5 ? 'soon' : 'ok';
}

/** `3d 4h`, `5h 12m`, `12m 30s`, `expired 2h ago`. */
export function countdown(notAfter: string, now: number): string {
  const to = Date.parse(notAfter);
  if (Number.isNaN(to)) return '—';
  const ms = to - now;
  const s = Math.floor(Math.abs(ms) / 1000);
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  const text = d > 0 ? `${d}d ${h}h` : h > 0 ? `${h}h ${m}m` : `${m}m ${s % 60}s`;
  return ms < 0 ? `expired ${text} ago` : text;
}
