// The dashboard page: state from one watch stream (every kind) plus polls of
// /xds/clients, /healthz, /version and (if served) /stats/services, rendered
// with plain DOM calls. Text is always set with textContent: no HTML from data.
import { follow, getJson, getOptionalJson, HttpError, setToken } from './api.js';
import {
  age, keyOf, ObjectCache, parseServiceStats, serviceViews, syncState, XDS_TYPES,
  type Obj, type ProxyStatus, type ServiceStats, type ServiceView, type SyncState,
} from './model.js';
import { toYaml } from './yaml.js';
import { win, type DomNode, type El, type InputEl } from './dom.js';

const document = win.document;
const location = win.location;

type View = 'overview' | 'services' | 'proxies' | 'objects';

const cache = new ObjectCache();
const state = {
  proxies: [] as ProxyStatus[],
  proxiesError: undefined as string | undefined,
  healthy: undefined as boolean | undefined,
  version: '',
  /** undefined: not asked yet; null: this control plane serves no /stats/services. */
  stats: undefined as ServiceStats[] | null | undefined,
  live: 'connecting' as string,
  format: 'yaml' as 'yaml' | 'json',
  selected: undefined as string | undefined,
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

function syncBadge(s: SyncState): El {
  return badge(s, s === 'SYNCED' ? 'ok' : s === 'NACKED' ? 'bad' : s === 'STALE' || s === 'NOT SENT' ? 'warn' : '');
}

function healthBadge(s: string): El {
  return badge(s, s === 'HEALTHY' ? 'ok' : s === 'DRAINING' || s === 'UNKNOWN' ? 'warn' : 'bad');
}

function stat(n: number | string, label: string, tone = ''): El {
  return h('div', { class: `card stat ${tone}`.trim(), 'data-stat': label }, h('div', { class: 'n' }, String(n)), h('div', { class: 'l' }, label));
}

function objectLink(kind: string, namespace: string | undefined, name: string, text?: string): El {
  const key = namespace ? `${kind}/${namespace}/${name}` : `${kind}/${name}`;
  return h('a', { href: `#/objects/${encodeURIComponent(key)}` }, text ?? name);
}

// ---- views ------------------------------------------------------------------

function view(): View {
  const v = location.hash.replace(/^#\/?/, '').split('/')[0];
  return v === 'services' || v === 'proxies' || v === 'objects' ? v : 'overview';
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

/** Golden metrics, only from a real /stats/services; never invented. */
function metricsPanel(service?: ServiceView): El {
  const title = service ? 'Golden metrics' : 'Golden metrics per service';
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

function servicePanel(s: ServiceView): El {
  const id = `${s.namespace}/${s.name}`;
  return h('div', { class: 'panel', 'data-service': id },
    h('div', { class: 'panel-head' },
      h('span', { class: 'name' }, s.name),
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
        state.stats ? metricsPanel(s) : null,
      ),
    ),
  );
}

function services(): El {
  const list = serviceViews(cache, state.proxies);
  return h('section', { id: 'view-services' },
    h('h2', {}, `Services (${list.length})`),
    state.stats ? null : metricsPanel(),
    list.length === 0 ? h('div', { class: 'panel empty' }, 'No services yet: weft apply -f examples/') : list.map(servicePanel),
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
      XDS_TYPES.map((t) => h('td', { 'data-type': t, title: `sent ${p.types[t]?.sentVersion ?? '—'}\nacked ${p.types[t]?.ackedVersion ?? '—'}` }, syncBadge(syncState(p.types[t])))),
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

let scheduled = false;
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
    const content = v === 'services' ? services() : v === 'proxies' ? proxies() : v === 'objects' ? objects() : overview();
    const main = $('main');
    const y = win.scrollY;
    main.replaceChildren(content);
    win.scrollTo(0, y);
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
      if (cache.apply(line)) render();
    },
    onState: (s, detail) => {
      state.live = s;
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
      statsServed = (await getJson<{ stats?: boolean }>('/ui/api/capabilities')).stats === true;
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

async function pollAll(): Promise<void> {
  await Promise.all([pollProxies(), pollHealth(), pollStats()]);
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
  render();
}

start();
