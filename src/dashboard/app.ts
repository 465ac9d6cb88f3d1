// The dashboard page: state from one watch stream (every kind) plus polls of
// /xds/clients, /healthz, /version and (if served) /stats/services, rendered
// with plain DOM calls. Text is always set with textContent: no HTML from data.
import { follow, followSse, getJson, getOptionalJson, HttpError, setToken } from './api.js';
import { chart, GOLDEN_CHARTS, keepCharts } from './charts.js';
import { createServiceGraph, type ServiceGraph } from './graph.js';
import { createTapView } from './tap.js';
import {
  countdown, expiryTone, fmtMs, fmtPercent, fmtRps, parseStats, parseTimeSeries, serviceGraph, successTone,
  type StatsSnapshot, type TimeSeries,
} from './telemetry-model.js';
import {
  age, keyOf, ObjectCache, parseServiceStats, serviceViews, syncState, XDS_TYPES,
  type Obj, type ProxyStatus, type ServiceStats, type ServiceView, type SyncState,
} from './model.js';
import { toYaml } from './yaml.js';
import { win, type DomNode, type El, type InputEl } from './dom.js';

const document = win.document;
const location = win.location;

type View = 'overview' | 'graph' | 'services' | 'service' | 'proxies' | 'certificates' | 'tap' | 'objects';
const VIEWS: readonly View[] = ['overview', 'graph', 'services', 'service', 'proxies', 'certificates', 'tap', 'objects'];

/** What /ui/api/certificates answers (src/control/http/dashboard.ts). */
interface CertView { subject: string; issuer: string; serialNumber: string; notBefore: string; notAfter: string; fingerprintSha256: string; ca: boolean }
interface PolicyBlock { title: string; lines: { setting: string; value?: unknown; source: string }[] }
interface Certificates { trustDomain: string; source: string; roots: CertView[]; signer: CertView; workload: { issuedTotal: number; live: number; soonestExpiry?: string } }

const cache = new ObjectCache();
const state = {
  proxies: [] as ProxyStatus[],
  proxiesError: undefined as string | undefined,
  healthy: undefined as boolean | undefined,
  version: '',
  /** undefined: not asked yet; null: this control plane serves no /stats/services. */
  stats: undefined as ServiceStats[] | null | undefined,
  watchState: 'connecting' as string,
  format: 'yaml' as 'yaml' | 'json',
  selected: undefined as string | undefined,
  /** Served by this control plane (from /ui/api/capabilities). */
  telemetry: false,
  certificatesServed: false,
  /** The newest /apis/telemetry/v1/stats/stream event. */
  live: undefined as StatsSnapshot | undefined,
  liveState: 'off' as 'off' | 'live' | 'retrying',
  series: new Map<string, TimeSeries>(),
  certificates: undefined as Certificates | undefined,
  /** Effective BackendPolicy of the service page's service (/ui/api/policy/NS/NAME). */
  policy: undefined as { id: string; blocks: PolicyBlock[] } | undefined,
  certificatesError: undefined as string | undefined,
};

// ---- DOM helpers ------------------------------------------------------------

type Child = DomNode | string | null | undefined | false;

function h(tag: string, attrs: Record<string, string | undefined> = {}, ...children: (Child | Child[] | Child[][])[]): El {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined) el.setAttribute(k, v);
  for (const c of children.flat(2)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(typeof c === 'string' ? document.createTextNode(c) : c);
  }
  return el;
}

const $ = (id: string): El => document.getElementById(id)!;

function badge(text: string, tone: 'ok' | 'warn' | 'bad' | 'kind' | '' = ''): El {
  return h('span', { class: `badge ${tone}`.trim() }, text);
}

/** A lock drawn by the style sheet (an emoji needs a font the machine may lack). */
function lockBadge(): El {
  return h('span', { class: 'badge ok lock', title: 'mutual TLS (at least 99% of requests)' }, 'mTLS');
}

function syncBadge(s: SyncState): El {
  return badge(s, s === 'SYNCED' ? 'ok' : s === 'NACKED' ? 'bad' : s === 'STALE' || s === 'NOT SENT' ? 'warn' : '');
}

function healthBadge(s: string): El {
  return badge(s, s === 'HEALTHY' ? 'ok' : s === 'DRAINING' || s === 'UNKNOWN' ? 'warn' : 'bad');
}

function stat(n: number | string, label: string, tone = ''): El {
  const long = String(n).length > 9 ? ' long' : '';
  return h('div', { class: `card stat ${tone}`.trim(), 'data-stat': label }, h('div', { class: `n${long}` }, String(n)), h('div', { class: 'l' }, label));
}

function objectLink(kind: string, namespace: string | undefined, name: string, text?: string): El {
  const key = namespace ? `${kind}/${namespace}/${name}` : `${kind}/${name}`;
  return h('a', { href: `#/objects/${encodeURIComponent(key)}` }, text ?? name);
}

// ---- views ------------------------------------------------------------------

function view(): View {
  const v = location.hash.replace(/^#\/?/, '').split('/')[0] as View;
  return VIEWS.includes(v) ? v : 'overview';
}

/** `#/service/NS/NAME` → `NS/NAME`. */
function selectedService(): string | undefined {
  const parts = location.hash.replace(/^#\/?/, '').split('/');
  return parts.length >= 3 ? `${decodeURIComponent(parts[1]!)}/${decodeURIComponent(parts[2]!)}` : undefined;
}

function serviceHref(id: string): string {
  const [ns, name] = id.split('/') as [string, string];
  return `#/service/${encodeURIComponent(ns)}/${encodeURIComponent(name)}`;
}

const KIND_ORDER = ['Mesh', 'Service', 'Workload', 'HTTPRoute', 'GRPCRoute', 'TCPRoute', 'BackendPolicy', 'SecurityPolicy'];

function overview(): El {
  const counts = new Map<string, number>(KIND_ORDER.map((k) => [k, 0]));
  for (const o of cache.objects.values()) counts.set(o.kind, (counts.get(o.kind) ?? 0) + 1);
  const nacked = state.proxies.filter((p) => XDS_TYPES.some((t) => syncState(p.types[t]) === 'NACKED')).length;
  const synced = state.proxies.filter((p) => XDS_TYPES.every((t) => p.types[t] === undefined || syncState(p.types[t]) === 'SYNCED')).length;
  const health = state.healthy === undefined ? '…' : state.healthy ? 'healthy' : 'unhealthy';
  return h('section', { id: 'view-overview' },
    h('h2', {}, 'Control plane'),
    h('div', { class: 'grid' },
      stat(health, 'control plane', state.healthy === false ? 'bad' : state.healthy ? 'ok' : ''),
      stat(state.proxies.length, 'connected proxies'),
      stat(synced, 'proxies in sync', synced === state.proxies.length ? 'ok' : ''),
      stat(nacked, 'proxies with NACKs', nacked > 0 ? 'bad' : ''),
      stat(cache.resourceVersion ?? '—', 'store revision'),
    ),
    h('h2', {}, 'Configuration'),
    meshSummary(),
    h('div', { class: 'grid', id: 'kind-counts' }, [...counts].map(([k, n]) => stat(n, k))),
    metricsPanel(),
  );
}

/** The Mesh's headline settings, as chips. */
function meshSummary(): El | null {
  const mesh = cache.ofKind('Mesh')[0];
  if (mesh === undefined) return h('div', { class: 'panel empty' }, 'No Mesh object: mesh-wide defaults apply.');
  const s = (mesh.spec ?? {}) as { trustDomain?: string; mtls?: { mode?: string }; outboundPolicy?: string; tracing?: { sampling?: number } };
  const chip = (k: string, v: string | number | undefined): El | null => (v === undefined ? null : h('span', { class: 'chip' }, `${k} `, h('strong', {}, String(v))));
  return h('div', { class: 'panel', 'data-panel': 'mesh' },
    h('span', { class: 'muted' }, `Mesh ${mesh.metadata.name}: `),
    chip('mTLS', s.mtls?.mode), chip('trust domain', s.trustDomain), chip('outbound', s.outboundPolicy), chip('trace sampling %', s.tracing?.sampling),
  );
}

function fmt(n: number | undefined, unit: string, digits = 1): string {
  return n === undefined ? '—' : `${n.toFixed(digits)}${unit}`;
}

/** Golden metrics, only from a real telemetry API (or /stats/services); never invented. */
function metricsPanel(service?: ServiceView): El {
  const title = service ? 'Golden metrics' : 'Golden metrics per service';
  if (state.telemetry) return telemetryTable(title, service ? `${service.namespace}/${service.name}` : undefined);
  if (!state.stats) {
    return h('div', { class: 'panel', 'data-panel': 'metrics' },
      h('h3', {}, title),
      h('div', { class: 'metrics-note' }, state.stats === undefined ? 'checking for /stats/services…' : 'metrics not available yet: this control plane does not serve /stats/services'),
    );
  }
  const rows = state.stats.filter((s) => !service || (s.service === service.name && (s.namespace ?? 'default') === service.namespace));
  return h('div', { class: 'panel', 'data-panel': 'metrics' },
    h('h3', {}, `${title} (from /stats/services)`),
    rows.length === 0
      ? h('div', { class: 'metrics-note' }, 'no traffic recorded')
      : h('table', {},
          h('tr', {}, ['service', 'requests/s', 'success', 'p50', 'p95', 'p99'].map((c) => h('th', {}, c))),
          rows.map((s) => h('tr', {},
            h('td', {}, `${s.namespace ?? 'default'}/${s.service}`),
            h('td', { class: 'right' }, fmt(s.requestsPerSecond, '', 2)),
            h('td', { class: 'right' }, s.successRate === undefined ? '—' : `${(s.successRate * (s.successRate <= 1 ? 100 : 1)).toFixed(2)}%`),
            h('td', { class: 'right' }, fmt(s.p50Ms, ' ms')),
            h('td', { class: 'right' }, fmt(s.p95Ms, ' ms')),
            h('td', { class: 'right' }, fmt(s.p99Ms, ' ms')),
          )),
        ),
  );
}

function servicePanel(s: ServiceView, withMetrics = true): El {
  const id = `${s.namespace}/${s.name}`;
  return h('div', { class: 'panel', 'data-service': id },
    h('div', { class: 'panel-head' },
      h('a', { class: 'name', href: serviceHref(id) }, s.name),
      h('span', { class: 'muted' }, s.namespace),
      s.ports.map((p) => h('span', { class: 'chip mono' }, p)),
      s.selector ? h('span', { class: 'muted' }, `selector ${s.selector}`) : null,
      objectLink('Service', s.namespace, s.name, 'yaml'),
    ),
    h('div', { class: 'cols' },
      h('div', {},
        h('h3', {}, `Endpoints (${s.endpoints.length})`),
        s.endpoints.length === 0
          ? h('div', { class: 'empty' }, 'no workloads')
          : h('table', { class: 'endpoints' }, s.endpoints.map((e) => h('tr', { 'data-endpoint': e.name },
              h('td', {}, e.source === 'store' ? objectLink('Workload', s.namespace, e.name) : e.name),
              h('td', { class: 'mono' }, e.address),
              h('td', {}, healthBadge(e.health)),
              h('td', { class: 'muted' }, e.source === 'proxy' ? 'sidecar' : ''),
            ))),
      ),
      h('div', {},
        h('h3', {}, `Routes (${s.routes.length})`),
        s.routes.length === 0 ? h('div', { class: 'empty' }, 'no routes: traffic goes straight to the service') : null,
        s.routes.map((r) => h('div', { class: 'route', 'data-route': `${r.kind}/${r.name}` },
          h('div', {}, badge(r.kind, 'kind'), ' ', objectLink(r.kind, r.namespace, r.name),
            r.ports.some((p) => p !== undefined) ? h('span', { class: 'muted' }, ` port ${r.ports.filter((p) => p !== undefined).join(', ')}`) : null),
          r.rules.map((rule) => h('div', { class: 'rule' },
            h('div', { class: 'match' }, rule.name ? `${rule.name}: ` : '', rule.matches),
            rule.backends.map((b) => {
              const fill = h('span');
              fill.style.width = `${b.percent}%`;
              return h('div', { class: 'backend', 'data-backend': b.name, 'data-weight': String(b.weight) },
                h('span', { class: 'mono' }, `${b.name}${b.port !== undefined ? `:${b.port}` : ''}`),
                h('div', { class: 'bar' }, fill),
                h('span', { class: 'weight' }, `w ${b.weight} · ${b.percent}%`),
              );
            }),
          )),
        )),
      ),
      h('div', {},
        h('h3', {}, `Policies (${s.policies.length})`),
        s.policies.length === 0
          ? h('div', { class: 'empty' }, 'none')
          : h('table', {}, s.policies.map((p) => h('tr', { 'data-policy': `${p.kind}/${p.name}` },
              h('td', {}, badge(p.kind === 'SecurityPolicy' ? 'Security' : 'Backend', 'kind')),
              h('td', {}, objectLink(p.kind, p.namespace, p.name)),
              h('td', { class: 'muted' }, p.via),
            ))),
        withMetrics && (state.stats || state.telemetry) ? metricsPanel(s) : null,
      ),
    ),
  );
}

function services(): El {
  const list = serviceViews(cache, state.proxies);
  return h('section', { id: 'view-services' },
    h('h2', {}, `Services (${list.length})`),
    state.stats || state.telemetry ? null : metricsPanel(),
    list.length === 0 ? h('div', { class: 'panel empty' }, 'No services yet: weft apply -f examples/') : list.map((s) => servicePanel(s)),
  );
}

function proxies(): El {
  const now = Date.now();
  const rows: El[] = [];
  for (const p of state.proxies) {
    const nacks = XDS_TYPES.flatMap((t) => {
      const st = p.types[t];
      return st?.lastNack && syncState(st) === 'NACKED' ? [{ type: t, ...st.lastNack }] : [];
    });
    rows.push(h('tr', { 'data-node': p.nodeId, class: nacks.length > 0 ? 'nack' : undefined },
      h('td', { class: 'mono' }, p.nodeId),
      h('td', {}, p.workload ?? h('span', { class: 'muted' }, '—')),
      h('td', {}, p.namespace),
      XDS_TYPES.map((t) => h('td', { 'data-type': t, title: `sent ${p.types[t]?.sentVersion ?? '—'}\nacked ${p.types[t]?.ackedVersion ?? '—'}` },
        syncBadge(syncState(p.types[t])),
        p.types[t]?.ackedVersion ? h('div', { class: 'ver mono muted' }, p.types[t]!.ackedVersion!.slice(0, 8)) : null)),
      h('td', { class: 'muted' }, age(p.connectedAt, now)),
      h('td', { class: 'muted' }, age(p.lastPushAt, now)),
    ));
    for (const n of nacks) {
      rows.push(h('tr', { class: 'nack', 'data-nack': p.nodeId },
        h('td', { colspan: '10' }, h('span', { class: 'badge bad' }, `${n.type} NACK`), ' ', h('span', { class: 'nackmsg' }, n.message), h('span', { class: 'muted' }, ` (version ${n.version.slice(0, 12)}, ${age(n.at, now)} ago)`)),
      ));
    }
  }
  return h('section', { id: 'view-proxies' },
    h('h2', {}, `Proxies (${state.proxies.length})`),
    state.proxiesError ? h('div', { class: 'panel' }, h('span', { class: 'badge bad' }, 'error'), ' ', state.proxiesError) : null,
    h('div', { class: 'panel' },
      state.proxies.length === 0
        ? h('div', { class: 'empty' }, 'No proxies connected.')
        : h('table', { id: 'proxies' },
            h('tr', {}, ['node', 'workload', 'namespace', ...XDS_TYPES, 'connected', 'last push'].map((c) => h('th', {}, c))),
            rows,
          ),
    ),
  );
}

function objects(): El {
  const sel = state.selected;
  const obj: Obj | undefined = sel === undefined ? undefined : cache.objects.get(sel);
  const groups = KIND_ORDER.map((k) => [k, cache.ofKind(k)] as const).filter(([, l]) => l.length > 0);
  const fmtBtn = (f: 'yaml' | 'json'): El => {
    const b = h('button', { type: 'button', class: state.format === f ? 'on' : undefined, 'data-format': f }, f.toUpperCase());
    b.addEventListener('click', () => {
      state.format = f;
      render();
    });
    return b;
  };
  return h('section', { id: 'view-objects' },
    h('h2', {}, 'Objects'),
    h('div', { class: 'objects' },
      h('div', { class: 'panel objlist' }, groups.map(([k, list]) => [
        h('div', { class: 'group' }, `${k} (${list.length})`),
        ...list.map((o) => {
          const key = keyOf(o);
          return h('a', { href: `#/objects/${encodeURIComponent(key)}`, class: key === sel ? 'sel' : undefined }, o.metadata.namespace ? `${o.metadata.namespace}/${o.metadata.name}` : o.metadata.name);
        }),
      ])),
      h('div', { class: 'panel' },
        obj === undefined
          ? h('div', { class: 'empty' }, sel === undefined ? 'Pick an object on the left.' : `${sel} does not exist (deleted?)`)
          : [
              h('div', { class: 'toolbar' }, h('strong', {}, sel ?? ''), h('span', { class: 'muted' }, `rv ${obj.metadata.resourceVersion ?? '—'}`), fmtBtn('yaml'), fmtBtn('json')),
              h('pre', { class: 'obj', id: 'object-text' }, state.format === 'yaml' ? toYaml(obj) : `${JSON.stringify(obj, null, 2)}\n`),
            ],
      ),
    ),
  );
}

// ---- telemetry views ----------------------------------------------------------

function telemetryNote(): El | null {
  if (!state.telemetry) return h('div', { class: 'metrics-note', 'data-note': 'telemetry' }, 'live traffic not available: this control plane does not serve /apis/telemetry/v1');
  if (state.live === undefined) return h('div', { class: 'metrics-note' }, state.liveState === 'retrying' ? 'telemetry stream reconnecting…' : 'waiting for the first telemetry snapshot…');
  return null;
}

function successCell(rate: number, rps: number): El {
  const tone = successTone(rate, rps);
  return h('td', { class: `right tone-${tone}` }, rps > 0 ? fmtPercent(rate) : '—');
}

/** Per-service golden metrics from the live stats stream; `only` keeps one service. */
function telemetryTable(title: string, only?: string): El {
  const note = telemetryNote();
  const rows = (state.live?.services ?? []).filter((s) => only === undefined || `${s.namespace}/${s.name}` === only);
  return h('div', { class: 'panel', 'data-panel': 'metrics' },
    h('h3', {}, `${title}${state.live ? ` (last ${state.live.window})` : ''}`),
    note ?? (rows.length === 0
      ? h('div', { class: 'metrics-note' }, 'no traffic recorded')
      : h('table', {},
          h('tr', {}, ['service', 'requests/s', 'success', 'p50', 'p95', 'p99', 'proxies'].map((c) => h('th', {}, c))),
          rows.map((s) => h('tr', { 'data-stats': `${s.namespace}/${s.name}` },
            h('td', {}, h('a', { href: serviceHref(`${s.namespace}/${s.name}`) }, `${s.namespace}/${s.name}`)),
            h('td', { class: 'right' }, fmtRps(s.rps)),
            successCell(s.successRate, s.rps),
            h('td', { class: 'right' }, fmtMs(s.p50Ms)),
            h('td', { class: 'right' }, fmtMs(s.p95Ms)),
            h('td', { class: 'right' }, fmtMs(s.p99Ms)),
            h('td', { class: 'right' }, String(s.proxies)),
          )),
        )),
  );
}

let graph: ServiceGraph | undefined;
let graphBox: El | undefined;
/**
 * The graph view's section is kept and only its other parts are rebuilt:
 * taking the canvas out of the document on each update would leave cytoscape
 * with a cleared canvas until something else makes it redraw.
 */
let graphSection: El | undefined;
let graphParts: El | undefined;

function graphView(): El {
  const declared = cache.ofKind('Service').map((o) => ({ name: o.metadata.name, namespace: o.metadata.namespace ?? 'default' }));
  const g = serviceGraph(declared, state.live);
  graphBox ??= h('div', { id: 'graph', class: 'graph', role: 'img', 'aria-label': 'service graph: services as nodes, traffic as arrows' });
  const loaded = (globalThis as { cytoscape?: unknown }).cytoscape !== undefined;
  const legend = h('div', { class: 'legend muted' },
    h('span', { class: 'dot tone-ok' }), ' ≥ 99% success ', h('span', { class: 'dot tone-warn' }), ' ≥ 95% ', h('span', { class: 'dot tone-bad' }), ' < 95% ',
    h('span', { class: 'dot tone-idle' }), ' no traffic · solid line = mTLS, dashed = plain text · click a service to open it');
  if (graphSection === undefined) {
    graphParts = h('div');
    graphSection = h('section', { id: 'view-graph' },
      h('h2', {}, 'Service graph'),
      h('div', { class: 'panel graphpanel' }, legend, graphBox, loaded ? null : h('div', { class: 'empty' }, 'graph library not loaded: the tables below hold the same data')),
      graphParts);
  }
  graphParts!.replaceChildren(
    telemetryNote() ?? '',
    h('div', { class: 'cols2' },
      h('div', { class: 'panel' },
        h('h3', {}, `Services (${g.nodes.length})`),
        h('table', { id: 'graph-nodes' },
          h('tr', {}, ['service', 'requests/s', 'success', 'p99'].map((c) => h('th', {}, c))),
          g.nodes.map((n) => h('tr', { 'data-node-id': n.id, class: n.unknown ? 'unknown' : undefined },
            h('td', {}, h('span', { class: `dot tone-${n.tone}` }), ' ', h('a', { href: serviceHref(n.id) }, n.id)),
            h('td', { class: 'right' }, n.rps === undefined ? '—' : fmtRps(n.rps)),
            successCell(n.successRate ?? 0, n.rps ?? 0),
            h('td', { class: 'right' }, n.p99Ms === undefined || !n.rps ? '—' : fmtMs(n.p99Ms)),
          )),
        ),
      ),
      h('div', { class: 'panel' },
        h('h3', {}, `Traffic (${g.edges.length})`),
        g.edges.length === 0
          ? h('div', { class: 'empty' }, 'no traffic between services in this window')
          : h('table', { id: 'graph-edges' },
              h('tr', {}, ['from → to', 'requests/s', 'errors', 'p99', 'mTLS'].map((c) => h('th', {}, c))),
              g.edges.map((e) => h('tr', { 'data-edge': e.id },
                h('td', {}, h('a', { href: serviceHref(e.source) }, e.source), ' → ', h('a', { href: serviceHref(e.target) }, e.target)),
                h('td', { class: 'right' }, fmtRps(e.rps)),
                h('td', { class: `right tone-${e.tone}` }, fmtPercent(e.errorRate)),
                h('td', { class: 'right' }, fmtMs(e.p99Ms)),
                h('td', {}, e.mtls ? lockBadge() : badge('plain', 'warn')),
              )),
            ),
      ),
    ),
  );
  return graphSection;
}

function servicePage(): El {
  const id = selectedService();
  const s = serviceViews(cache, state.proxies).find((v) => `${v.namespace}/${v.name}` === id);
  if (id === undefined || s === undefined) {
    return h('section', { id: 'view-service' }, h('h2', {}, id ?? 'Service'), h('div', { class: 'panel empty' }, `${id ?? 'this service'} does not exist (deleted?)`), h('a', { href: '#/services' }, 'all services'));
  }
  const live = state.live?.services.find((x) => `${x.namespace}/${x.name}` === id);
  const series = state.series.get(id);
  keepCharts(new Set([id]));
  const inbound = (state.live?.edges ?? []).filter((e) => `${e.destination.namespace}/${e.destination.name}` === id && e.rps > 0);
  const outbound = (state.live?.edges ?? []).filter((e) => `${e.source.namespace}/${e.source.name}` === id && e.rps > 0);
  const peer = (list: typeof inbound, side: 'source' | 'destination'): El => list.length === 0
    ? h('div', { class: 'empty' }, 'none in this window')
    : h('table', {}, list.map((e) => h('tr', {},
        h('td', {}, h('a', { href: serviceHref(`${e[side].namespace}/${e[side].name}`) }, `${e[side].namespace}/${e[side].name}`)),
        h('td', { class: 'right' }, fmtRps(e.rps)),
        h('td', { class: 'right' }, `${fmtPercent(e.errorRate)} err`),
        h('td', {}, e.mtls ? lockBadge() : badge('plain', 'warn')))));
  return h('section', { id: 'view-service', 'data-service-page': id },
    h('div', { class: 'crumbs' }, h('a', { href: '#/services' }, 'Services'), ' / ', id),
    state.telemetry
      ? h('div', { class: 'panel', 'data-panel': 'charts' },
          h('h3', {}, `Golden metrics, last 5 minutes${live ? ` · now ${fmtRps(live.rps)}, ${fmtPercent(live.successRate)} success, p99 ${fmtMs(live.p99Ms)}` : ''}`),
          h('div', { class: 'charts' }, GOLDEN_CHARTS.map((c) => chart(id, c, series))),
          live && live.routes.length > 0
            ? [h('h3', {}, 'Per route'), h('table', { id: 'route-stats' },
                h('tr', {}, ['route', 'requests/s', 'success', 'p50', 'p95', 'p99'].map((c) => h('th', {}, c))),
                live.routes.map((r) => h('tr', { 'data-route-stats': r.name },
                  h('td', { class: 'mono' }, r.name || '(default)'),
                  h('td', { class: 'right' }, fmtRps(r.rps)),
                  successCell(r.successRate, r.rps),
                  h('td', { class: 'right' }, fmtMs(r.p50Ms)),
                  h('td', { class: 'right' }, fmtMs(r.p95Ms)),
                  h('td', { class: 'right' }, fmtMs(r.p99Ms)),
                )))]
            : null,
        )
      : h('div', { class: 'panel' }, telemetryNote()),
    servicePanel(s, false),
    effectivePolicyPanel(id),
    h('div', { class: 'cols2' },
      h('div', { class: 'panel' }, h('h3', {}, `Called by (${inbound.length})`), peer(inbound, 'source')),
      h('div', { class: 'panel' }, h('h3', {}, `Calls (${outbound.length})`), peer(outbound, 'destination')),
    ),
  );
}

/** Compact JSON of a setting's value (`{"attempts":3,…}`), shortened for a table cell. */
function settingText(v: unknown): string {
  const t = JSON.stringify(v);
  return t.length > 140 ? `${t.slice(0, 139)}…` : t;
}

function effectivePolicyPanel(id: string): El {
  const p = state.policy?.id === id ? state.policy : undefined;
  return h('div', { class: 'panel', 'data-panel': 'effective-policy' },
    h('h3', {}, 'Effective policy'),
    p === undefined
      ? h('div', { class: 'empty' }, 'loading…')
      : p.blocks.map((b) => h('div', { class: 'effective', 'data-effective': b.title },
          h('div', { class: 'muted' }, b.title),
          h('table', {}, b.lines.map((l) => h('tr', { 'data-setting': l.setting, class: l.value === undefined ? 'unset' : undefined },
            h('td', { class: 'mono' }, l.setting),
            h('td', { class: 'mono' }, l.value === undefined ? 'unset (proxy default)' : settingText(l.value)),
            h('td', { class: 'muted' }, l.source),
          ))),
        )),
  );
}

// ---- certificates ---------------------------------------------------------------

function certRow(role: string, c: CertView, now: number): El {
  const tone = expiryTone(c.notBefore, c.notAfter, now);
  return h('tr', { 'data-cert': c.serialNumber, class: tone === 'ok' ? undefined : `expiry-${tone}` },
    h('td', {}, badge(role, 'kind')),
    h('td', {}, c.subject, h('div', { class: 'muted mono small' }, `serial ${c.serialNumber.slice(0, 16)}${c.serialNumber.length > 16 ? '…' : ''} · sha256 ${c.fingerprintSha256.slice(0, 23)}…`)),
    h('td', { class: 'muted' }, c.notBefore.slice(0, 10)),
    h('td', { class: 'muted' }, c.notAfter.replace('T', ' ').slice(0, 16)),
    h('td', { class: 'countdown' }, badge(countdown(c.notAfter, now), tone === 'ok' ? 'ok' : tone === 'soon' ? 'warn' : 'bad')),
  );
}

function certificatesView(): El {
  const c = state.certificates;
  const now = Date.now();
  if (!state.certificatesServed || c === undefined) {
    return h('section', { id: 'view-certificates' }, h('h2', {}, 'Certificates'),
      h('div', { class: 'panel empty' }, state.certificatesError ?? (state.certificatesServed ? 'loading…' : 'this control plane runs no certificate authority')));
  }
  const soonest = c.workload.soonestExpiry;
  return h('section', { id: 'view-certificates' },
    h('h2', {}, 'Certificates'),
    h('div', { class: 'grid' },
      stat(c.trustDomain, 'trust domain'),
      stat(c.roots.length, 'trusted roots'),
      stat(c.workload.live, 'live workload certificates'),
      stat(c.workload.issuedTotal, 'issued since start'),
      stat(soonest === undefined ? '—' : countdown(soonest, now), 'soonest workload expiry', soonest !== undefined && Date.parse(soonest) - now < 3_600_000 ? 'bad' : ''),
    ),
    h('div', { class: 'panel' },
      h('h3', {}, `Certificate authority (${c.source})`),
      h('table', { id: 'certs' },
        h('tr', {}, ['role', 'subject', 'valid from', 'expires', 'expires in'].map((x) => h('th', {}, x))),
        c.roots.map((r) => certRow(r.serialNumber === c.signer.serialNumber ? 'root · signer' : 'root', r, now)),
        c.roots.some((r) => r.serialNumber === c.signer.serialNumber) ? null : certRow('intermediate · signer', c.signer, now),
      ),
      h('p', { class: 'muted small' }, 'Workload certificates are short-lived and renewed by each proxy; the CA counts them (serial and expiry) rather than keeping them. Highlighted: less than a fifth of the lifetime or an hour left.'),
    ),
  );
}

let tap: ReturnType<typeof createTapView> | undefined;

function tapView(): El {
  if (!state.telemetry) return h('section', { id: 'view-tap' }, h('h2', {}, 'Tap'), h('div', { class: 'panel' }, telemetryNote()));
  tap ??= createTapView();
  tap.setServices(cache.ofKind('Service').map((o) => `${o.metadata.namespace ?? 'default'}/${o.metadata.name}`));
  return tap.element;
}

let scheduled = false;
let lastView: View | undefined;
let shown: El | undefined;
let lastService: string | undefined;
function render(): void {
  if (scheduled) return;
  scheduled = true;
  win.requestAnimationFrame(() => {
    scheduled = false;
    const v = view();
    if (v === 'objects') {
      const key = location.hash.split('/').slice(2).join('/');
      state.selected = key === '' ? undefined : decodeURIComponent(key);
    }
    for (const a of document.querySelectorAll('#nav a')) a.classList.toggle('active', a.dataset.view === v);
    const content = v === 'services' ? services() : v === 'proxies' ? proxies() : v === 'objects' ? objects() : v === 'graph' ? graphView()
      : v === 'service' ? servicePage() : v === 'certificates' ? certificatesView() : v === 'tap' ? tapView() : overview();
    const main = $('main');
    const y = win.scrollY;
    const attached = shown !== content;
    if (attached) main.replaceChildren(content);
    shown = content;
    win.scrollTo(0, y);
    if (v === 'graph' && graphBox !== undefined && graphBox.isConnected) {
      // Made and resized once the container is in the document: cytoscape measures it.
      graph ??= createServiceGraph(graphBox, (id) => {
        location.hash = serviceHref(id);
      });
      if (attached) graph?.resize();
      const declared = cache.ofKind('Service').map((o) => ({ name: o.metadata.name, namespace: o.metadata.namespace ?? 'default' }));
      const g = serviceGraph(declared, state.live);
      graph?.update(g.nodes, g.edges);
    }
    const sel = v === 'service' ? selectedService() : undefined;
    if (sel !== undefined && (v !== lastView || sel !== lastService)) {
      void pollSeries();
      void pollPolicy();
    }
    lastView = v;
    lastService = sel;
    main.dataset.rendered = String(Date.now());
  });
}

// ---- status bar and the token prompt -----------------------------------------

function setLive(text: string, tone: 'ok' | 'warn' | 'bad' | ''): void {
  const el = $('live');
  el.textContent = text;
  el.className = `badge ${tone}`.trim();
}

function askForToken(reason: string): void {
  const banner = $('banner');
  if (!banner.hidden) return;
  const input = h('input', { type: 'password', placeholder: 'admin token', autocomplete: 'off' }) as InputEl;
  const form = h('form', {}, input, h('button', { type: 'submit' }, 'Use token'));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    setToken(input.value.trim());
    banner.hidden = true;
    restartWatch();
    void pollAll();
  });
  banner.replaceChildren(`${reason}. Reads from a non-loopback address need the admin token (DATA_DIR/admin-token).`, form);
  banner.hidden = false;
}

// ---- data ---------------------------------------------------------------------

let stopWatch: (() => void) | undefined;
function restartWatch(): void {
  stopWatch?.();
  stopWatch = follow('/ui/api/watch', {
    onStart: (resume) => {
      if (resume === undefined) cache.beginResync();
    },
    onLine: (line) => {
      if (cache.apply(line)) {
        render();
        policyChanged();
      }
    },
    onState: (s, detail) => {
      state.watchState = s;
      if (s === 'live') setLive('● live', 'ok');
      else if (s === 'connecting') setLive('connecting…', '');
      else if (s === 'unauthorized') {
        setLive('no access', 'bad');
        askForToken(detail ?? 'unauthorized');
      } else setLive('reconnecting…', 'warn');
      if (detail) $('live').title = detail;
    },
    resumeFrom: () => (cache.resyncing ? undefined : cache.resourceVersion),
  });
}

async function pollProxies(): Promise<void> {
  try {
    const r = await getJson<{ items: ProxyStatus[] }>('/xds/clients');
    state.proxies = r.items;
    state.proxiesError = undefined;
  } catch (e) {
    state.proxiesError = e instanceof Error ? e.message : String(e);
    if (e instanceof HttpError && (e.status === 401 || e.status === 403)) askForToken(e.message);
  }
  render();
}

async function pollHealth(): Promise<void> {
  try {
    const res = await fetch('/healthz', {});
    state.healthy = res.ok;
    await res.body?.cancel();
    if (state.version === '') {
      state.version = (await getJson<{ version: string }>('/version')).version;
      $('version').textContent = `v${state.version}`;
    }
  } catch {
    state.healthy = false;
  }
  render();
}

let statsCheckedAt = 0;
let statsServed = false;
async function pollStats(): Promise<void> {
  // Whether the control plane serves /stats/services is asked again every 30 s
  // (a newer control plane may come up behind the same address).
  try {
    if (Date.now() - statsCheckedAt >= 30_000) {
      statsCheckedAt = Date.now();
      const caps = await getJson<{ stats?: boolean; telemetry?: boolean; certificates?: boolean }>('/ui/api/capabilities');
      statsServed = caps.stats === true;
      state.certificatesServed = caps.certificates === true;
      setTelemetry(caps.telemetry === true);
    }
    if (!statsServed) state.stats = null;
    else {
      const body = await getOptionalJson<unknown>('/stats/services');
      state.stats = body === undefined ? null : parseServiceStats(body);
    }
  } catch {
    state.stats = null;
  }
  render();
}

let stopStats: (() => void) | undefined;
/** Follows /apis/telemetry/v1/stats/stream while the control plane serves it. */
function setTelemetry(on: boolean): void {
  if (on === state.telemetry && (on ? stopStats !== undefined : true)) return;
  state.telemetry = on;
  stopStats?.();
  stopStats = undefined;
  if (!on) return;
  stopStats = followSse('/apis/telemetry/v1/stats/stream', (event, data) => {
    if (event !== 'stats' && event !== 'message') return;
    try {
      state.live = parseStats(JSON.parse(data));
    } catch {
      return;
    }
    render();
  }, (s) => {
    state.liveState = s;
    render();
  });
}

async function pollPolicy(): Promise<void> {
  const id = view() === 'service' ? selectedService() : undefined;
  if (id === undefined || !cache.objects.has(`Service/${id}`)) return;
  const [ns, name] = id.split('/') as [string, string];
  try {
    const r = await getJson<{ blocks: PolicyBlock[] }>(`/ui/api/policy/${encodeURIComponent(ns)}/${encodeURIComponent(name)}`);
    state.policy = { id, blocks: r.blocks };
  } catch {
    // keep what was shown; the object cache says whether the service still exists
  }
  render();
}

let policyTimer: ReturnType<typeof setTimeout> | undefined;
/** After a change in the store: the effective policy is read again (once per burst of changes). */
function policyChanged(): void {
  if (view() !== 'service') return;
  clearTimeout(policyTimer);
  policyTimer = setTimeout(() => void pollPolicy(), 200);
}

async function pollSeries(): Promise<void> {
  const id = view() === 'service' ? selectedService() : undefined;
  if (!state.telemetry || id === undefined) return;
  const [ns, name] = id.split('/') as [string, string];
  try {
    const body = await getJson<unknown>(`/apis/telemetry/v1/timeseries?${new URLSearchParams({ service: name, namespace: ns, minutes: '5' }).toString()}`);
    state.series.set(id, parseTimeSeries(body));
    for (const k of state.series.keys()) if (k !== id) state.series.delete(k);
  } catch {
    // keep the last series; the stats stream's badge says whether telemetry is reachable
  }
  render();
}

async function pollCertificates(): Promise<void> {
  if (!state.certificatesServed) return;
  try {
    state.certificates = await getJson<Certificates>('/ui/api/certificates');
    state.certificatesError = undefined;
  } catch (e) {
    state.certificatesError = e instanceof Error ? e.message : String(e);
  }
  if (view() === 'certificates') render();
}

async function pollAll(): Promise<void> {
  await Promise.all([pollProxies(), pollHealth(), pollStats()]);
  await pollCertificates();
}

function every(ms: number, fn: () => Promise<void>): void {
  const loop = (): void => {
    void fn().finally(() => setTimeout(loop, document.hidden ? ms * 5 : ms));
  };
  setTimeout(loop, ms);
}

function start(): void {
  win.addEventListener('hashchange', render);
  restartWatch();
  void pollAll();
  every(2_000, pollProxies);
  every(5_000, pollHealth);
  every(5_000, pollStats);
  every(5_000, pollSeries);
  every(10_000, pollCertificates);
  // The countdowns tick even when nothing else changes.
  every(1_000, async () => {
    if (view() === 'certificates') render();
    return Promise.resolve();
  });
  render();
}

start();
