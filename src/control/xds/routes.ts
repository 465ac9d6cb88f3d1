import type { Resource } from '../../api/types.js';
import type { ServiceSpec } from '../../api/service/service.js';
import type { HTTPHeaderMatch, HTTPRouteMatch, HTTPRouteRule, HTTPRouteSpec } from '../../api/httproute/httproute.js';
import { parseDuration } from '../../lib/duration.js';
import { ROUTE_CONFIGURATION } from '../../xds/type-urls.js';
import { clusterName, grpcClientListenerName, OUTBOUND_ROUTE, serviceDomains, type ServiceRef } from './names.js';
import { protoDuration, refOf, sortByName, type BackendRefLike, type GrpcRouteSpecLike, type HeaderModifier, type MeshInput, type ProxyView } from './model.js';
import { PolicyIndex } from './policy/index.js';
import { applyRoutePolicy } from './policy/route-policy.js';
import { meshSettings, type OutboundPolicy } from './security/inputs.js';

/**
 * HTTPRoute and GRPCRoute (GAMMA: parentRefs name a Service) → RouteConfiguration.
 *
 * Two flavours of the same translation:
 * - `envoy`: for Weft's proxy (and Envoy). Everything the Gateway API says.
 * - `grpc`: for proxyless gRPC clients, which NACK a whole RouteConfiguration
 *   over one route they cannot run. So: no redirects (the route is left out),
 *   no `path_separated_prefix` (a PathPrefix `/a` becomes `path /a` + `prefix
 *   /a/`), no query parameters or non-POST methods (gRPC requests have no
 *   query and are POSTs: such a route can never match, so it is left out),
 *   timeouts as `max_stream_duration` (what gRPC honours), no retry policy.
 *
 * Order of routes in a virtual host follows the Gateway API precedence: exact
 * path, then regular expressions (their place is implementation-specific; here,
 * as in Contour and Envoy Gateway, before prefixes, so that a catch-all `/`
 * cannot shadow them), then longer prefix, then method match, more header
 * matches, more query matches;
 * ties by the route's creationTimestamp, then namespace/name, then rule order.
 *
 * BackendPolicy request settings (retry, timeouts, fault injection, rate limit,
 * and the hash policy of RingHash/Maglev backends) are applied per route by
 * policy/route-policy.ts, resolved for the (Service port, route rule) pair.
 *
 * A Service with no route attached to a port gets one default route to its own
 * cluster. A rule without usable backends answers 500 (envoy) or points at a
 * cluster that does not exist (grpc: the call fails UNAVAILABLE).
 *
 * Mesh `outboundPolicy` (the `outbound` route configuration only):
 * - REGISTRY_ONLY: a last virtual host `block_all` (domains `*`) answers 502,
 *   as Istio's BlackHoleCluster does, so a call to a host outside the registry
 *   is refused and says so.
 * - ALLOW_ANY (default): not yet. Istio's PassthroughCluster forwards to the
 *   original destination, which explicit mode does not have; forwarding by Host
 *   needs a dynamic-forward-proxy cluster the Weft proxy does not implement. So
 *   an unknown host gets 404 NR, the same as today.
 */

export type Flavour = 'envoy' | 'grpc';
export type RouteConfiguration = Record<string, unknown> & { name: string };
type Obj = Record<string, unknown>;

const NO_CLUSTER = 'weft|no-backend';

interface RuleEntry {
  /** For ordering and names. */
  kind: 'HTTPRoute' | 'GRPCRoute';
  route: Resource;
  ruleIndex: number;
  matchIndex: number;
  /** Sort key parts. */
  pathRank: number;
  pathLength: number;
  method: number;
  headers: number;
  queries: number;
  build: (flavour: Flavour) => Obj[];
}

export interface AttachedRoutes {
  /** key `ns/name:port` → entries */
  byServicePort: Map<string, RuleEntry[]>;
}

function spKey(s: ServiceRef, port: number): string {
  return `${s.namespace}/${s.name}:${port}`;
}

function isServiceParent(p: { group?: string; kind?: string }): boolean {
  return (p.kind ?? 'Service') === 'Service' && (p.group === undefined || p.group === '' || p.group === 'weft.dev');
}

/** Attach every route rule to the (Service, port) pairs its parentRefs name. */
export function attachRoutes(input: MeshInput): AttachedRoutes {
  const services = new Map<string, Resource<ServiceSpec>>();
  for (const s of input.services) services.set(`${s.metadata.namespace ?? 'default'}/${s.metadata.name}`, s);
  const byServicePort = new Map<string, RuleEntry[]>();
  const attach = (route: Resource, parents: GrpcRouteSpecLike['parentRefs'], entries: RuleEntry[]): void => {
    const targets = new Set<string>();
    for (const p of parents ?? []) {
      if (!isServiceParent(p)) continue;
      const svc = services.get(`${p.namespace ?? route.metadata.namespace ?? 'default'}/${p.name}`);
      if (svc === undefined) continue;
      for (const sp of svc.spec.ports) if (p.port === undefined || p.port === sp.port) targets.add(spKey(refOf(svc), sp.port));
    }
    for (const t of targets) {
      let list = byServicePort.get(t);
      if (list === undefined) byServicePort.set(t, (list = []));
      list.push(...entries);
    }
  };
  for (const r of input.httpRoutes) attach(r, r.spec.parentRefs, httpEntries(r));
  for (const r of input.grpcRoutes) attach(r, r.spec.parentRefs, grpcEntries(r));
  for (const list of byServicePort.values()) list.sort(compareEntries);
  return { byServicePort };
}

function compareEntries(a: RuleEntry, b: RuleEntry): number {
  return (
    b.pathRank - a.pathRank ||
    b.pathLength - a.pathLength ||
    b.method - a.method ||
    b.headers - a.headers ||
    b.queries - a.queries ||
    cmp(a.route.metadata.creationTimestamp ?? '', b.route.metadata.creationTimestamp ?? '') ||
    cmp(`${a.route.metadata.namespace ?? ''}/${a.route.metadata.name}`, `${b.route.metadata.namespace ?? ''}/${b.route.metadata.name}`) ||
    a.ruleIndex - b.ruleIndex ||
    a.matchIndex - b.matchIndex
  );
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

// ---------------------------------------------------------------------------
// HTTPRoute

const PATH_RANK = { Exact: 3, RegularExpression: 2, PathPrefix: 1 } as const;

function httpEntries(r: Resource<HTTPRouteSpec>): RuleEntry[] {
  const out: RuleEntry[] = [];
  r.spec.rules.forEach((rule, ruleIndex) => {
    const matches: HTTPRouteMatch[] = rule.matches.length > 0 ? rule.matches : [{ path: { type: 'PathPrefix', value: '/' } }];
    matches.forEach((m, matchIndex) => {
      out.push({
        kind: 'HTTPRoute',
        route: r,
        ruleIndex,
        matchIndex,
        pathRank: PATH_RANK[m.path.type],
        pathLength: m.path.type === 'PathPrefix' ? m.path.value.length : 0,
        method: m.method === undefined ? 0 : 1,
        headers: m.headers?.length ?? 0,
        queries: m.queryParams?.length ?? 0,
        build: (flavour) => buildHttpRoutes(r, rule, ruleIndex, m, matchIndex, flavour),
      });
    });
  });
  return out;
}

function stringMatch(type: 'Exact' | 'RegularExpression' | undefined, value: string): Obj {
  return type === 'RegularExpression' ? { safe_regex: regex(value) } : { exact: value };
}

function regex(value: string): Obj {
  return { google_re2: {}, regex: value };
}

function headerMatchers(headers: readonly HTTPHeaderMatch[] | undefined): Obj[] {
  return (headers ?? []).map((h) => ({ name: h.name.toLowerCase(), string_match: stringMatch(h.type, h.value) }));
}

/** One Gateway match may become more than one Envoy match (grpc's PathPrefix). */
function httpRouteMatches(m: HTTPRouteMatch, flavour: Flavour): Obj[] | undefined {
  const headers = headerMatchers(m.headers);
  if (m.method !== undefined) {
    if (flavour === 'grpc') {
      if (m.method !== 'POST') return undefined;
    } else {
      headers.push({ name: ':method', string_match: { exact: m.method } });
    }
  }
  const extra: Obj = {};
  if (headers.length > 0) extra.headers = headers;
  if ((m.queryParams?.length ?? 0) > 0) {
    if (flavour === 'grpc') return undefined;
    extra.query_parameters = (m.queryParams ?? []).map((q) => ({ name: q.name, string_match: stringMatch(q.type, q.value) }));
  }
  const v = m.path.value;
  switch (m.path.type) {
    case 'Exact':
      return [{ path: v, ...extra }];
    case 'RegularExpression':
      return [{ safe_regex: regex(v), ...extra }];
    case 'PathPrefix':
      if (v === '/' || v.endsWith('/')) return [{ prefix: v, ...extra }];
      if (flavour === 'envoy') return [{ path_separated_prefix: v, ...extra }];
      return [{ path: v, ...extra }, { prefix: `${v}/`, ...extra }];
  }
}

function buildHttpRoutes(r: Resource<HTTPRouteSpec>, rule: HTTPRouteRule, ruleIndex: number, m: HTTPRouteMatch, matchIndex: number, flavour: Flavour): Obj[] {
  const matches = httpRouteMatches(m, flavour);
  if (matches === undefined) return [];
  const filters = rule.filters ?? [];
  const redirect = filters.find((f) => f.type === 'RequestRedirect')?.requestRedirect;
  const base: Obj = {};
  applyHeaderModifiers(base, filters);
  let action: Obj;
  if (redirect !== undefined) {
    if (flavour === 'grpc') return [];
    const rd: Obj = { response_code: REDIRECT_CODES[redirect.statusCode] ?? 'FOUND' };
    if (redirect.scheme !== undefined) rd.scheme_redirect = redirect.scheme;
    if (redirect.hostname !== undefined) rd.host_redirect = redirect.hostname;
    if (redirect.port !== undefined) rd.port_redirect = redirect.port;
    if (redirect.path?.type === 'ReplaceFullPath') rd.path_redirect = redirect.path.replaceFullPath ?? '/';
    if (redirect.path?.type === 'ReplacePrefixMatch') rd.prefix_rewrite = redirect.path.replacePrefixMatch ?? '/';
    return matches.map((match, k) => ({ name: entryName(r, ruleIndex, matchIndex, k), match, redirect: rd, ...base }));
  }
  const ra = routeAction(r, rule.backendRefs ?? [], filters, flavour);
  if (ra === undefined) {
    if (flavour === 'grpc') action = { route: { cluster: NO_CLUSTER } };
    else action = { direct_response: { status: 500 } };
  } else {
    action = { route: ra };
    const rewrite = filters.find((f) => f.type === 'URLRewrite')?.urlRewrite;
    if (rewrite?.hostname !== undefined) ra.host_rewrite_literal = rewrite.hostname;
    if (rewrite?.path?.type === 'ReplacePrefixMatch') ra.prefix_rewrite = rewrite.path.replacePrefixMatch ?? '/';
    if (rewrite?.path?.type === 'ReplaceFullPath') ra.regex_rewrite = { pattern: regex('^/.*$'), substitution: rewrite.path.replaceFullPath ?? '/' };
    applyTimeouts(ra, rule, flavour);
    if (flavour === 'envoy' && rule.retry !== undefined) {
      const rp: Obj = { retry_on: '5xx,connect-failure,refused-stream', num_retries: { value: rule.retry.attempts ?? 1 } };
      if ((rule.retry.codes?.length ?? 0) > 0) {
        rp.retry_on = 'retriable-status-codes,connect-failure,refused-stream';
        rp.retriable_status_codes = rule.retry.codes;
      }
      const backoff = rule.retry.backoff === undefined ? undefined : parseDuration(rule.retry.backoff);
      if (backoff !== undefined && backoff > 0) rp.retry_back_off = { base_interval: protoDuration(backoff) };
      ra.retry_policy = rp;
    }
  }
  return matches.map((match, k) => ({ name: entryName(r, ruleIndex, matchIndex, k), match, ...action, ...base }));
}

const REDIRECT_CODES: Record<number, string> = {
  301: 'MOVED_PERMANENTLY',
  302: 'FOUND',
  303: 'SEE_OTHER',
  307: 'TEMPORARY_REDIRECT',
  308: 'PERMANENT_REDIRECT',
};

function applyTimeouts(ra: Obj, rule: HTTPRouteRule, flavour: Flavour): void {
  const t = rule.timeouts;
  if (t === undefined) return;
  const request = t.request === undefined ? undefined : parseDuration(t.request);
  const backend = t.backendRequest === undefined ? undefined : parseDuration(t.backendRequest);
  const total = request ?? backend;
  if (total !== undefined) {
    ra.timeout = protoDuration(total);
    if (flavour === 'grpc') ra.max_stream_duration = { max_stream_duration: protoDuration(total) };
  }
  if (flavour === 'envoy' && backend !== undefined && request !== undefined && backend !== request) {
    ra.retry_policy = { ...((ra.retry_policy as Obj | undefined) ?? {}), per_try_timeout: protoDuration(backend) };
  }
}

function entryName(r: Resource, ruleIndex: number, matchIndex: number, k: number): string {
  const base = `${r.kind}/${r.metadata.namespace ?? 'default'}/${r.metadata.name}/rule${ruleIndex}/match${matchIndex}`;
  return k === 0 ? base : `${base}.${k}`;
}

// ---------------------------------------------------------------------------
// Shared by both route kinds

type FilterLike = {
  type: string;
  requestHeaderModifier?: HeaderModifier;
  responseHeaderModifier?: HeaderModifier;
  requestMirror?: { backendRef: BackendRefLike; percent?: number; fraction?: { numerator: number; denominator?: number } };
};

function headersToAdd(m: HeaderModifier): Obj[] {
  return [
    ...(m.set ?? []).map((h) => ({ header: { key: h.name, value: h.value }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' })),
    ...(m.add ?? []).map((h) => ({ header: { key: h.name, value: h.value }, append_action: 'APPEND_IF_EXISTS_OR_ADD' })),
  ];
}

/** Header modifiers go on the route, or on one weighted cluster for a backend's own filters. */
function applyHeaderModifiers(target: Obj, filters: readonly FilterLike[]): void {
  for (const f of filters) {
    if (f.type === 'RequestHeaderModifier' && f.requestHeaderModifier) {
      const add = headersToAdd(f.requestHeaderModifier);
      if (add.length > 0) target.request_headers_to_add = add;
      if ((f.requestHeaderModifier.remove?.length ?? 0) > 0) target.request_headers_to_remove = f.requestHeaderModifier.remove;
    }
    if (f.type === 'ResponseHeaderModifier' && f.responseHeaderModifier) {
      const add = headersToAdd(f.responseHeaderModifier);
      if (add.length > 0) target.response_headers_to_add = add;
      if ((f.responseHeaderModifier.remove?.length ?? 0) > 0) target.response_headers_to_remove = f.responseHeaderModifier.remove;
    }
  }
}

function backendCluster(route: Resource, b: BackendRefLike): string {
  if (!isServiceParent(b) || b.port === undefined) return NO_CLUSTER;
  return clusterName({ name: b.name, namespace: b.namespace ?? route.metadata.namespace ?? 'default' }, b.port);
}

function mirrorPolicies(route: Resource, filters: readonly FilterLike[]): Obj[] {
  const out: Obj[] = [];
  for (const f of filters) {
    const m = f.type === 'RequestMirror' ? f.requestMirror : undefined;
    if (m === undefined) continue;
    const policy: Obj = { cluster: backendCluster(route, m.backendRef) };
    if (m.percent !== undefined) policy.runtime_fraction = { default_value: { numerator: m.percent, denominator: 'HUNDRED' } };
    else if (m.fraction !== undefined) {
      policy.runtime_fraction = { default_value: { numerator: Math.round((m.fraction.numerator / (m.fraction.denominator ?? 100)) * 1_000_000), denominator: 'MILLION' } };
    }
    out.push(policy);
  }
  return out;
}

/** The `route` action, or undefined when no backend can take traffic. */
function routeAction(route: Resource, backends: readonly (BackendRefLike & { weight?: number; filters?: readonly FilterLike[] })[], filters: readonly FilterLike[], flavour: Flavour): Obj | undefined {
  const live = backends.filter((b) => (b.weight ?? 1) > 0);
  if (live.length === 0) return undefined;
  const ra: Obj = {};
  const perBackendFilters = live.some((b) => (b.filters?.length ?? 0) > 0);
  const first = live[0];
  if (live.length === 1 && first !== undefined && !perBackendFilters) {
    ra.cluster = backendCluster(route, first);
  } else {
    ra.weighted_clusters = {
      clusters: live.map((b) => {
        const wc: Obj = { name: backendCluster(route, b), weight: { value: b.weight ?? 1 } };
        if (flavour === 'envoy') applyHeaderModifiers(wc, b.filters ?? []);
        return wc;
      }),
    };
  }
  const mirrors = mirrorPolicies(route, filters);
  if (mirrors.length > 0) ra.request_mirror_policies = mirrors;
  return ra;
}

// ---------------------------------------------------------------------------
// GRPCRoute

type GrpcRule = NonNullable<GrpcRouteSpecLike['rules']>[number];
type GrpcMatch = NonNullable<GrpcRule['matches']>[number];

function grpcEntries(r: Resource<GrpcRouteSpecLike>): RuleEntry[] {
  const out: RuleEntry[] = [];
  (r.spec.rules ?? [{}]).forEach((rule, ruleIndex) => {
    const matches: GrpcMatch[] = (rule.matches?.length ?? 0) > 0 ? (rule.matches ?? []) : [{}];
    matches.forEach((m, matchIndex) => {
      const method = m.method;
      const exact = method !== undefined && (method.type ?? 'Exact') === 'Exact';
      // Same ranks as HTTP: full method = exact path, a service = prefix, a regex between.
      const pathRank = method === undefined ? 1 : exact && method.service !== undefined && method.method !== undefined ? 3 : exact && method.service !== undefined ? 1 : 2;
      out.push({
        kind: 'GRPCRoute',
        route: r,
        ruleIndex,
        matchIndex,
        pathRank,
        pathLength: exact && method?.service !== undefined ? method.service.length + 2 : 1,
        method: 0,
        headers: m.headers?.length ?? 0,
        queries: 0,
        build: (flavour) => buildGrpcRoute(r, rule, ruleIndex, m, matchIndex, flavour),
      });
    });
  });
  return out;
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function grpcPathMatch(m: GrpcMatch): Obj {
  const method = m.method;
  if (method === undefined || (method.service === undefined && method.method === undefined)) return { prefix: '/' };
  if ((method.type ?? 'Exact') === 'Exact') {
    if (method.service !== undefined && method.method !== undefined) return { path: `/${method.service}/${method.method}` };
    if (method.service !== undefined) return { prefix: `/${method.service}/` };
    return { safe_regex: regex(`/[^/]+/${escapeRe(method.method ?? '')}`) };
  }
  return { safe_regex: regex(`/${method.service ?? '[^/]+'}/${method.method ?? '[^/]+'}`) };
}

function buildGrpcRoute(r: Resource<GrpcRouteSpecLike>, rule: GrpcRule, ruleIndex: number, m: GrpcMatch, matchIndex: number, flavour: Flavour): Obj[] {
  const match: Obj = grpcPathMatch(m);
  const headers = (m.headers ?? []).map((h) => ({ name: h.name.toLowerCase(), string_match: stringMatch(h.type, h.value) }));
  if (headers.length > 0) match.headers = headers;
  const filters = rule.filters ?? [];
  const base: Obj = {};
  applyHeaderModifiers(base, filters);
  const ra = routeAction(r, rule.backendRefs ?? [], filters, flavour);
  const action: Obj = ra !== undefined ? { route: ra } : flavour === 'grpc' ? { route: { cluster: NO_CLUSTER } } : { direct_response: { status: 500 } };
  return [{ name: entryName(r, ruleIndex, matchIndex, 0), match, ...action, ...base }];
}

// ---------------------------------------------------------------------------
// Route configurations

function routesFor(attached: AttachedRoutes, svc: Resource<ServiceSpec>, port: number, flavour: Flavour, policies?: PolicyIndex): Obj[] {
  const ref = refOf(svc);
  const sp = svc.spec.ports.find((p) => p.port === port);
  const service = { ...ref, port, ...(sp?.name !== undefined ? { portName: sp.name } : {}) };
  const protocol = sp?.protocol ?? 'http';
  const apply = (routes: Obj[], e: RuleEntry | undefined): Obj[] => {
    if (policies === undefined || policies.empty) return routes;
    const ruleName = e === undefined ? undefined : (e.route.spec as { rules?: { name?: string }[] }).rules?.[e.ruleIndex]?.name;
    const eff = policies.resolve(
      e === undefined
        ? { service }
        : { service, route: { kind: e.kind, namespace: e.route.metadata.namespace ?? 'default', name: e.route.metadata.name, ...(ruleName !== undefined ? { ruleName } : {}) } },
    );
    for (const r of routes) applyRoutePolicy(r, eff.settings, { flavour, protocol, lbOf: policies.lbOf });
    return routes;
  };
  const entries = attached.byServicePort.get(spKey(ref, port));
  if (entries === undefined || entries.length === 0) {
    return apply([{ name: 'default', match: { prefix: '/' }, route: { cluster: clusterName(ref, port) } }], undefined);
  }
  return entries.flatMap((e) => apply(e.build(flavour), e));
}

function isHttpLike(protocol: string): boolean {
  return protocol !== 'tcp';
}

/** One RouteConfiguration per HTTP-like Service port, named as the gRPC client's Listener. */
export function generateGrpcRouteConfigs(input: MeshInput, view: ProxyView, attached = attachRoutes(input), policies = new PolicyIndex(input)): RouteConfiguration[] {
  const out: RouteConfiguration[] = [];
  for (const svc of sortByName(input.services)) {
    const ref = refOf(svc);
    for (const p of svc.spec.ports) {
      if (!isHttpLike(p.protocol)) continue;
      const name = grpcClientListenerName(ref, p.port);
      out.push({
        '@type': ROUTE_CONFIGURATION,
        name,
        virtual_hosts: [{ name, domains: serviceDomains(ref, p.port, ref.namespace === view.namespace), routes: routesFor(attached, svc, p.port, 'grpc', policies) }],
      });
    }
  }
  return out;
}

/**
 * `outbound`: one virtual host per HTTP-like Service port. Domains with `:port`
 * go to that port; the port-less forms go to the Service's first HTTP-like port
 * (Envoy rejects a domain listed by two virtual hosts).
 */
export function generateOutboundRouteConfig(input: MeshInput, view: ProxyView, attached = attachRoutes(input), policies = new PolicyIndex(input)): RouteConfiguration {
  const vhosts: Obj[] = [];
  for (const svc of sortByName(input.services)) {
    const ref = refOf(svc);
    const same = ref.namespace === view.namespace;
    let first = true;
    for (const p of svc.spec.ports) {
      if (!isHttpLike(p.protocol)) continue;
      const domains = serviceDomains(ref, p.port, same).filter((d) => first || d.endsWith(`:${p.port}`));
      first = false;
      vhosts.push({ name: grpcClientListenerName(ref, p.port), domains, routes: routesFor(attached, svc, p.port, 'envoy', policies) });
    }
  }
  const blocked = outboundCatchAll(meshSettings(input).outboundPolicy);
  if (blocked !== undefined) vhosts.push(blocked);
  return { '@type': ROUTE_CONFIGURATION, name: OUTBOUND_ROUTE, virtual_hosts: vhosts };
}

/** The catch-all virtual host of the `outbound` route configuration for a Mesh outboundPolicy, if any. */
export function outboundCatchAll(policy: OutboundPolicy): Obj | undefined {
  if (policy !== 'REGISTRY_ONLY') return undefined;
  return { name: 'block_all', domains: ['*'], routes: [{ name: 'block_all', match: { prefix: '/' }, direct_response: { status: 502, body: { inline_string: 'host not in the mesh registry (Mesh outboundPolicy REGISTRY_ONLY)\n' } } }] };
}
