// What the dashboard shows, derived from API objects: no DOM here, so this module
// runs (and is tested) in Node as well as in the browser.

export interface Meta {
  name: string;
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  resourceVersion?: string;
  creationTimestamp?: string;
}

export interface Obj {
  apiVersion: string;
  kind: string;
  metadata: Meta;
  spec?: unknown;
}

export interface WatchLine {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK';
  object: Obj;
}

interface ServicePort { name?: string; port: number; targetPort?: number; protocol?: string }
interface ServiceSpec { selector?: Record<string, string>; ports?: ServicePort[]; serviceAccounts?: string[] }
interface WorkloadSpec { address?: string; labels?: Record<string, string>; ports?: { port: number; name?: string }[]; health?: string; serviceAccount?: string }
interface Ref { group?: string; kind?: string; name: string; namespace?: string; port?: number; sectionName?: string; weight?: number }
interface RouteRule { name?: string; matches?: unknown[]; backendRefs?: Ref[] }
interface RouteSpec { parentRefs?: Ref[]; rules?: RouteRule[] }
interface PolicySpec { targetRefs?: Ref[] }

export const ROUTE_KINDS = ['HTTPRoute', 'GRPCRoute', 'TCPRoute'] as const;
export const POLICY_KINDS = ['BackendPolicy', 'SecurityPolicy'] as const;

/** `Kind/namespace/name` (cluster-scoped: `Kind/name`). */
export function keyOf(o: Obj): string {
  return o.metadata.namespace ? `${o.kind}/${o.metadata.namespace}/${o.metadata.name}` : `${o.kind}/${o.metadata.name}`;
}

export function nsName(o: Obj): string {
  return o.metadata.namespace ? `${o.metadata.namespace}/${o.metadata.name}` : o.metadata.name;
}

/**
 * The objects the dashboard knows, kept current from watch lines. A (re)connect
 * without a resume point starts a resync: the lines up to the first BOOKMARK are
 * the complete list, and objects missing from it are dropped then.
 */
export class ObjectCache {
  readonly objects = new Map<string, Obj>();
  resourceVersion: string | undefined;
  private resync: Map<string, Obj> | undefined;

  /** Between beginResync() and the BOOKMARK that ends the initial list. */
  get resyncing(): boolean {
    return this.resync !== undefined;
  }

  /** Call before reading a stream that starts with a full list (no resourceVersion). */
  beginResync(): void {
    this.resync = new Map();
  }

  /** Applies one line; true when what is shown changed. */
  apply(line: WatchLine): boolean {
    const rv = line.object.metadata.resourceVersion;
    if (line.type === 'BOOKMARK') {
      if (rv !== undefined) this.resourceVersion = rv;
      if (this.resync === undefined) return false;
      this.objects.clear();
      for (const [k, v] of this.resync) this.objects.set(k, v);
      this.resync = undefined;
      return true;
    }
    if (rv !== undefined && (this.resourceVersion === undefined || Number(rv) > Number(this.resourceVersion))) this.resourceVersion = rv;
    const target = this.resync ?? this.objects;
    if (line.type === 'DELETED') target.delete(keyOf(line.object));
    else target.set(keyOf(line.object), line.object);
    return this.resync === undefined;
  }

  ofKind(kind: string): Obj[] {
    return [...this.objects.values()].filter((o) => o.kind === kind).sort(byNsName);
  }
}

export function byNsName(a: Obj, b: Obj): number {
  return nsName(a).localeCompare(nsName(b));
}

export interface BackendView {
  name: string;
  port?: number;
  weight: number;
  /** Share of the rule's traffic, 0–100 (rounded to 0.1). */
  percent: number;
}

export interface RuleView {
  name?: string;
  matches: string;
  backends: BackendView[];
}

export interface RouteView {
  kind: string;
  name: string;
  namespace: string;
  /** The parent ports (undefined: every port). */
  ports: (number | string | undefined)[];
  rules: RuleView[];
}

export interface EndpointView {
  name: string;
  address: string;
  health: string;
  /** `store` (a Workload object) or `proxy` (registered by a connected sidecar). */
  source: 'store' | 'proxy';
}

export interface ServiceView {
  name: string;
  namespace: string;
  ports: string[];
  selector: string;
  serviceAccounts: string[];
  endpoints: EndpointView[];
  routes: RouteView[];
  policies: { kind: string; name: string; namespace: string; via: string }[];
}

const ns = (o: Obj): string => o.metadata.namespace ?? 'default';

function matchesSelector(selector: Record<string, string> | undefined, labels: Record<string, string> | undefined): boolean {
  if (selector === undefined || Object.keys(selector).length === 0) return false;
  return Object.entries(selector).every(([k, v]) => labels?.[k] === v);
}

/** Human text for one route match (HTTP path/headers/method, gRPC service/method). */
export function describeMatch(m: unknown): string {
  if (typeof m !== 'object' || m === null) return '*';
  const parts: string[] = [];
  const r = m as { path?: { type?: string; value?: string }; method?: unknown; headers?: { name: string; value?: string }[]; queryParams?: { name: string; value?: string }[] };
  if (r.path?.value !== undefined) parts.push(`${r.path.type === 'Exact' ? '=' : r.path.type === 'RegularExpression' ? '~' : ''}${r.path.value}${r.path.type === 'PathPrefix' || r.path.type === undefined ? '*' : ''}`);
  if (typeof r.method === 'string') parts.push(r.method);
  else if (typeof r.method === 'object' && r.method !== null) {
    const g = r.method as { service?: string; method?: string };
    parts.push(`${g.service ?? '*'}/${g.method ?? '*'}`);
  }
  for (const h of r.headers ?? []) parts.push(`${h.name}: ${h.value ?? ''}`);
  for (const q of r.queryParams ?? []) parts.push(`?${q.name}=${q.value ?? ''}`);
  return parts.length > 0 ? parts.join(' ') : '*';
}

export function routeView(r: Obj): RouteView {
  const spec = (r.spec ?? {}) as RouteSpec;
  const rules = (spec.rules ?? []).map((rule): RuleView => {
    const refs = rule.backendRefs ?? [];
    const total = refs.reduce((s, b) => s + (b.weight ?? 1), 0);
    return {
      ...(rule.name !== undefined ? { name: rule.name } : {}),
      matches: rule.matches && rule.matches.length > 0 ? rule.matches.map(describeMatch).join(' | ') : '*',
      backends: refs.map((b) => ({
        name: b.namespace && b.namespace !== ns(r) ? `${b.namespace}/${b.name}` : b.name,
        ...(b.port !== undefined ? { port: b.port } : {}),
        weight: b.weight ?? 1,
        percent: total === 0 ? 0 : Math.round(((b.weight ?? 1) * 1000) / total) / 10,
      })),
    };
  });
  return { kind: r.kind, name: r.metadata.name, namespace: ns(r), ports: [], rules };
}

function parentsOf(r: Obj): Ref[] {
  return ((r.spec ?? {}) as RouteSpec).parentRefs ?? [];
}

function refersTo(ref: Ref, from: Obj, kind: string, target: Obj): boolean {
  return (ref.kind ?? kind) === kind && ref.name === target.metadata.name && (ref.namespace ?? ns(from)) === ns(target);
}

/** `sidecar~ADDRESS~SERVICE.NAMESPACE[~PORTS]` (docs/proxy.md) → `NAMESPACE/SERVICE`. */
export function serviceOfNode(nodeId: string): string | undefined {
  const parts = nodeId.split('~');
  if (parts[0] !== 'sidecar' || parts.length < 3) return undefined;
  const svc = parts[2]!;
  const dot = svc.lastIndexOf('.');
  if (dot <= 0) return undefined;
  return `${svc.slice(dot + 1)}/${svc.slice(0, dot)}`;
}

/** Each Service with its ports, endpoints, the routes whose parent it is and the policies that apply to it. */
export function serviceViews(cache: ObjectCache, proxies: readonly ProxyStatus[] = []): ServiceView[] {
  const workloads = cache.ofKind('Workload');
  const routes = ROUTE_KINDS.flatMap((k) => cache.ofKind(k));
  return cache.ofKind('Service').map((svc): ServiceView => {
    const spec = (svc.spec ?? {}) as ServiceSpec;
    const endpoints: EndpointView[] = workloads
      .filter((w) => ns(w) === ns(svc) && matchesSelector(spec.selector, ((w.spec ?? {}) as WorkloadSpec).labels ?? w.metadata.labels))
      .map((w) => {
        const ws = (w.spec ?? {}) as WorkloadSpec;
        return { name: w.metadata.name, address: ws.address ?? '', health: ws.health ?? 'UNKNOWN', source: 'store' as const };
      });
    for (const p of proxies) {
      if (serviceOfNode(p.nodeId) !== `${ns(svc)}/${svc.metadata.name}` || p.workload === undefined) continue;
      const name = p.workload.slice(p.workload.indexOf('/') + 1);
      if (endpoints.some((e) => e.name === name)) continue;
      endpoints.push({ name, address: p.nodeId.split('~')[1] ?? '', health: 'HEALTHY', source: 'proxy' });
    }
    const attached: RouteView[] = [];
    for (const r of routes) {
      const parents = parentsOf(r).filter((p) => refersTo(p, r, 'Service', svc));
      if (parents.length === 0) continue;
      attached.push({ ...routeView(r), ports: parents.map((p) => p.port ?? p.sectionName) });
    }
    const policies: ServiceView['policies'] = [];
    for (const pk of POLICY_KINDS) {
      for (const p of cache.ofKind(pk)) {
        if (ns(p) !== ns(svc)) continue;
        const targets = ((p.spec ?? {}) as PolicySpec).targetRefs;
        let via: string | undefined;
        if (pk === 'SecurityPolicy' && (targets === undefined || targets.length === 0)) via = `namespace ${ns(p)}`;
        for (const t of targets ?? []) {
          if (via !== undefined) break;
          if (t.kind === 'Service' && t.name === svc.metadata.name) via = t.sectionName ?? (t.port !== undefined ? `port ${t.port}` : 'service');
          else if (t.kind === 'Namespace' && t.name === ns(svc)) via = `namespace ${t.name}`;
          else if (t.kind !== undefined && (ROUTE_KINDS as readonly string[]).includes(t.kind) && attached.some((r) => r.kind === t.kind && r.name === t.name)) via = `${t.kind}/${t.name}${t.sectionName ? `#${t.sectionName}` : ''}`;
        }
        if (via !== undefined) policies.push({ kind: pk, name: p.metadata.name, namespace: ns(p), via });
      }
    }
    return {
      name: svc.metadata.name,
      namespace: ns(svc),
      ports: (spec.ports ?? []).map((p) => `${p.name ? `${p.name} ` : ''}${p.port}${p.targetPort !== undefined && p.targetPort !== p.port ? `→${p.targetPort}` : ''}/${p.protocol ?? 'http'}`),
      selector: Object.entries(spec.selector ?? {}).map(([k, v]) => `${k}=${v}`).join(', '),
      serviceAccounts: spec.serviceAccounts ?? [],
      endpoints,
      routes: attached,
      policies,
    };
  });
}

// ---- proxies (GET /xds/clients) -------------------------------------------

export const XDS_TYPES = ['CDS', 'LDS', 'EDS', 'RDS'] as const;

export interface TypeStatus {
  subscribed?: string[];
  sentVersion?: string;
  ackedVersion?: string;
  lastNack?: { message: string; at: string; version: string };
}

export interface ProxyStatus {
  id: string;
  nodeId: string;
  workload?: string;
  namespace: string;
  connectedAt: string;
  lastPushAt?: string;
  types: Partial<Record<string, TypeStatus>>;
}

export type SyncState = 'SYNCED' | 'NACKED' | 'STALE' | 'NOT SENT' | '—';

/** As `weft proxy-status` and docs/http-api.md define it. */
export function syncState(t: TypeStatus | undefined): SyncState {
  if (t === undefined) return '—';
  if (t.sentVersion === undefined) return 'NOT SENT';
  if (t.ackedVersion === t.sentVersion) return 'SYNCED';
  if (t.lastNack !== undefined && t.lastNack.version === t.sentVersion) return 'NACKED';
  return 'STALE';
}

// ---- golden metrics (GET /stats/services, when some control plane serves it) --

export interface ServiceStats {
  service: string;
  namespace?: string;
  requestsPerSecond?: number;
  successRate?: number;
  p50Ms?: number;
  p95Ms?: number;
  p99Ms?: number;
}

/** Reads the shapes a stats endpoint is likely to use; anything unrecognised gives []. */
export function parseServiceStats(body: unknown): ServiceStats[] {
  const items = Array.isArray(body) ? body : typeof body === 'object' && body !== null && Array.isArray((body as { items?: unknown }).items) ? (body as { items: unknown[] }).items : [];
  const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
  const out: ServiceStats[] = [];
  for (const it of items) {
    if (typeof it !== 'object' || it === null) continue;
    const r = it as Record<string, unknown>;
    const latency = (typeof r.latencyMs === 'object' && r.latencyMs !== null ? r.latencyMs : {}) as Record<string, unknown>;
    const service = typeof r.service === 'string' ? r.service : typeof r.name === 'string' ? r.name : undefined;
    if (service === undefined) continue;
    const s: ServiceStats = { service };
    if (typeof r.namespace === 'string') s.namespace = r.namespace;
    const rps = num(r.requestsPerSecond) ?? num(r.rps);
    if (rps !== undefined) s.requestsPerSecond = rps;
    const sr = num(r.successRate);
    if (sr !== undefined) s.successRate = sr;
    const p50 = num(r.p50Ms) ?? num(latency.p50);
    const p95 = num(r.p95Ms) ?? num(latency.p95);
    const p99 = num(r.p99Ms) ?? num(latency.p99);
    if (p50 !== undefined) s.p50Ms = p50;
    if (p95 !== undefined) s.p95Ms = p95;
    if (p99 !== undefined) s.p99Ms = p99;
    out.push(s);
  }
  return out;
}

/** `12 s`, `3 min`, `2 h`, `4 d` since `iso` (relative to `now`). */
export function age(iso: string | undefined, now: number): string {
  if (iso === undefined) return '—';
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return '—';
  const s = Math.max(0, Math.round((now - t) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  if (s < 172800) return `${Math.round(s / 3600)}h`;
  return `${Math.round(s / 86400)}d`;
}
