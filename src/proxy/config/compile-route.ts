/**
 * RouteConfiguration → CompiledRouteConfig. Follows Envoy v3 route semantics for the
 * subset Weft honours; anything else is refused with the path of the offending field
 * (a NACK keeps the last good config, which is safer than half-honouring it).
 */
import { compileRetryPolicy } from './compile-retry.js';
import { DEFAULT_FILTER_DEPS, findFilter } from '../filters/registry.js';
import { runtimeFractionalPercent } from '../filters/fractional-percent.js';
import {
  arr, bool, compileRegex, durationMs, enumStr, fail, isObject, num, obj, optObj, optStr, str, typedConfig,
} from './proto-values.js';
import type {
  AppendAction, CompiledRoute, CompiledRouteConfig, CompiledVirtualHost, HashPolicy, HeaderMatch,
  HeaderMutation, HeaderToAdd, MirrorPolicy, PathMatch, ProtoJson, QueryParamMatch, RegexRewrite, RetryPolicy, RouteAction,
  StringMatch, WeightedCluster,
} from './types.js';

const DEFAULT_ROUTE_TIMEOUT_MS = 15_000;
export const EMPTY_MUTATION: HeaderMutation = Object.freeze({ add: Object.freeze([]), remove: Object.freeze([]) });

export function compileStringMatcher(v: unknown, path: string): StringMatch {
  const m = obj(v, path);
  const ignoreCase = bool(m.ignore_case, `${path}.ignore_case`);
  const flags = ignoreCase ? 'i' : '';
  const lower = (s: string): string => (ignoreCase ? s.toLowerCase() : s);
  if (m.exact !== undefined) return { kind: 'exact', value: lower(str(m.exact, `${path}.exact`)), ignoreCase };
  if (m.prefix !== undefined) return { kind: 'prefix', value: lower(str(m.prefix, `${path}.prefix`)), ignoreCase };
  if (m.suffix !== undefined) return { kind: 'suffix', value: lower(str(m.suffix, `${path}.suffix`)), ignoreCase };
  if (m.contains !== undefined) return { kind: 'contains', value: lower(str(m.contains, `${path}.contains`)), ignoreCase };
  if (m.safe_regex !== undefined) return { kind: 'regex', value: '', ignoreCase, regex: compileRegex(m.safe_regex, `${path}.safe_regex`, true, flags) };
  return fail(path, 'needs one of exact, prefix, suffix, contains, safe_regex');
}

export function stringMatches(m: StringMatch, value: string): boolean {
  const v = m.ignoreCase && m.kind !== 'regex' ? value.toLowerCase() : value;
  switch (m.kind) {
    case 'exact': return v === m.value;
    case 'prefix': return v.startsWith(m.value);
    case 'suffix': return v.endsWith(m.value);
    case 'contains': return v.includes(m.value);
    case 'regex': return m.regex!.test(v);
  }
}

export function compileHeaderMatcher(v: unknown, path: string): HeaderMatch {
  const h = obj(v, path);
  const name = str(h.name, `${path}.name`).toLowerCase();
  const base = {
    name,
    invert: bool(h.invert_match, `${path}.invert_match`),
    treatMissingAsEmpty: bool(h.treat_missing_header_as_empty, `${path}.treat_missing_header_as_empty`),
  };
  if (h.present_match !== undefined) return { ...base, present: bool(h.present_match, `${path}.present_match`) };
  if (h.string_match !== undefined) return { ...base, string: compileStringMatcher(h.string_match, `${path}.string_match`) };
  if (h.exact_match !== undefined) return { ...base, string: { kind: 'exact', value: str(h.exact_match, `${path}.exact_match`), ignoreCase: false } };
  if (h.prefix_match !== undefined) return { ...base, string: { kind: 'prefix', value: str(h.prefix_match, `${path}.prefix_match`), ignoreCase: false } };
  if (h.suffix_match !== undefined) return { ...base, string: { kind: 'suffix', value: str(h.suffix_match, `${path}.suffix_match`), ignoreCase: false } };
  if (h.contains_match !== undefined) return { ...base, string: { kind: 'contains', value: str(h.contains_match, `${path}.contains_match`), ignoreCase: false } };
  if (h.safe_regex_match !== undefined) return { ...base, string: { kind: 'regex', value: '', ignoreCase: false, regex: compileRegex(h.safe_regex_match, `${path}.safe_regex_match`) } };
  if (h.range_match !== undefined) {
    const r = obj(h.range_match, `${path}.range_match`);
    return { ...base, range: { start: num(r.start, `${path}.range_match.start`, 0), end: num(r.end, `${path}.range_match.end`, 0) } };
  }
  // No specifier: Envoy treats it as "header is present".
  return { ...base, present: true };
}

function compileQueryMatcher(v: unknown, path: string): QueryParamMatch {
  const q = obj(v, path);
  const name = str(q.name, `${path}.name`);
  if (q.present_match !== undefined) return { name, present: bool(q.present_match, `${path}.present_match`) };
  if (q.string_match !== undefined) return { name, string: compileStringMatcher(q.string_match, `${path}.string_match`) };
  return { name, present: true };
}

function compilePathMatch(m: ProtoJson, path: string): PathMatch {
  const caseSensitive = bool(m.case_sensitive, `${path}.case_sensitive`, true);
  const norm = (s: string): string => (caseSensitive ? s : s.toLowerCase());
  if (m.prefix !== undefined) return { kind: 'prefix', value: norm(str(m.prefix, `${path}.prefix`)), caseSensitive };
  if (m.path !== undefined) return { kind: 'path', value: norm(str(m.path, `${path}.path`)), caseSensitive };
  if (m.safe_regex !== undefined) return { kind: 'regex', regex: compileRegex(m.safe_regex, `${path}.safe_regex`, true, caseSensitive ? '' : 'i') };
  if (m.path_separated_prefix !== undefined) {
    const p = str(m.path_separated_prefix, `${path}.path_separated_prefix`);
    if (!p.startsWith('/') || (p.length > 1 && p.endsWith('/'))) fail(`${path}.path_separated_prefix`, 'must start with / and not end with /');
    if (/[?#]/.test(p)) fail(`${path}.path_separated_prefix`, 'must not contain ? or #');
    return { kind: 'separated-prefix', value: norm(p), caseSensitive };
  }
  for (const k of ['connect_matcher', 'path_match_policy']) if (m[k] !== undefined) fail(`${path}.${k}`, 'not supported');
  return fail(path, 'needs one of prefix, path, safe_regex, path_separated_prefix');
}

const APPEND_ACTIONS: readonly AppendAction[] = ['APPEND_IF_EXISTS_OR_ADD', 'ADD_IF_ABSENT', 'OVERWRITE_IF_EXISTS_OR_ADD', 'OVERWRITE_IF_EXISTS'];

function compileHeadersToAdd(v: unknown, path: string): HeaderToAdd[] {
  return arr(v, path).map((x, i) => {
    const p = `${path}[${i}]`;
    const o = obj(x, p);
    const h = obj(o.header, `${p}.header`);
    const name = str(h.key, `${p}.header.key`).toLowerCase();
    if (name === '' || name.startsWith(':') || name === 'host') fail(`${p}.header.key`, `cannot set "${name}" with headers_to_add`);
    const value = h.value === undefined ? '' : str(h.value, `${p}.header.value`);
    if (/%[A-Z_]+(\([^)]*\))?%/.test(value)) fail(`${p}.header.value`, 'command operators (%...%) are not supported yet');
    let action: AppendAction;
    if (o.append_action !== undefined) {
      if (o.append !== undefined) fail(p, 'append and append_action are mutually exclusive');
      action = enumStr(o.append_action, `${p}.append_action`, APPEND_ACTIONS, 'APPEND_IF_EXISTS_OR_ADD');
    } else {
      // Deprecated BoolValue `append`: true (the default) appends, false overwrites.
      action = bool(o.append, `${p}.append`, true) ? 'APPEND_IF_EXISTS_OR_ADD' : 'OVERWRITE_IF_EXISTS_OR_ADD';
    }
    return { name, value, action, keepEmptyValue: bool(o.keep_empty_value, `${p}.keep_empty_value`) };
  });
}

export function compileMutation(o: ProtoJson, reqAdd: string, reqRemove: string, path: string): HeaderMutation {
  const add = compileHeadersToAdd(o[reqAdd], `${path}${reqAdd}`);
  const remove = arr(o[reqRemove], `${path}${reqRemove}`).map((x, i) => str(x, `${path}${reqRemove}[${i}]`).toLowerCase());
  if (add.length === 0 && remove.length === 0) return EMPTY_MUTATION;
  return Object.freeze({ add: Object.freeze(add), remove: Object.freeze(remove) });
}

function requestMutation(o: ProtoJson, path: string): HeaderMutation {
  return compileMutation(o, 'request_headers_to_add', 'request_headers_to_remove', path);
}
function responseMutation(o: ProtoJson, path: string): HeaderMutation {
  return compileMutation(o, 'response_headers_to_add', 'response_headers_to_remove', path);
}

function compileRegexRewrite(v: unknown, path: string): RegexRewrite | undefined {
  const r = optObj(v, path);
  if (r === undefined) return undefined;
  const regex = compileRegex(r.pattern, `${path}.pattern`, false, 'g');
  // RE2 substitutions use \1; JavaScript uses $1.
  const substitution = str(r.substitution ?? '', `${path}.substitution`).replace(/\$/g, '$$$$').replace(/\\(\d)/g, '$$$1');
  return { regex, substitution };
}

function compileHashPolicies(v: unknown, path: string): HashPolicy[] {
  return arr(v, path).map((x, i): HashPolicy => {
    const p = `${path}[${i}]`;
    const h = obj(x, p);
    const terminal = bool(h.terminal, `${p}.terminal`);
    if (h.header !== undefined) {
      const hh = obj(h.header, `${p}.header`);
      if (hh.regex_rewrite !== undefined) fail(`${p}.header.regex_rewrite`, 'not supported');
      return { kind: 'header', name: str(hh.header_name, `${p}.header.header_name`).toLowerCase(), terminal };
    }
    if (h.cookie !== undefined) {
      const c = obj(h.cookie, `${p}.cookie`);
      if (arr(c.attributes, `${p}.cookie.attributes`).length > 0) fail(`${p}.cookie.attributes`, 'not supported yet');
      const ttlMs = c.ttl === undefined ? undefined : durationMs(c.ttl, `${p}.cookie.ttl`, 0);
      return { kind: 'cookie', name: str(c.name, `${p}.cookie.name`), terminal, ttlMs, path: optStr(c.path, `${p}.cookie.path`) };
    }
    if (h.connection_properties !== undefined) {
      const c = obj(h.connection_properties, `${p}.connection_properties`);
      if (!bool(c.source_ip, `${p}.connection_properties.source_ip`)) fail(`${p}.connection_properties`, 'only source_ip: true is supported');
      return { kind: 'source-ip', terminal };
    }
    if (h.query_parameter !== undefined) {
      const q = obj(h.query_parameter, `${p}.query_parameter`);
      return { kind: 'query', name: str(q.name, `${p}.query_parameter.name`), terminal };
    }
    return fail(p, 'needs one of header, cookie, connection_properties, query_parameter');
  });
}

/**
 * Route `idle_timeout` and `max_stream_duration` (http/forward.ts enforces them).
 * `grpc_timeout_header_offset` is refused (Weft does not support it).
 */
function compileStreamTimeouts(a: ProtoJson, p: string): Pick<RouteAction & { kind: 'forward' }, 'idleTimeoutMs' | 'maxStreamDurationMs' | 'grpcTimeoutHeaderMaxMs'> {
  const out: { idleTimeoutMs?: number; maxStreamDurationMs?: number; grpcTimeoutHeaderMaxMs?: number } = {};
  if (a.idle_timeout !== undefined && a.idle_timeout !== null) out.idleTimeoutMs = durationMs(a.idle_timeout, `${p}.idle_timeout`, 0);
  const msd = optObj(a.max_stream_duration, `${p}.max_stream_duration`);
  if (msd !== undefined) {
    const mp = `${p}.max_stream_duration`;
    if (msd.grpc_timeout_header_offset !== undefined && msd.grpc_timeout_header_offset !== null && durationMs(msd.grpc_timeout_header_offset, `${mp}.grpc_timeout_header_offset`, 0) !== 0) {
      fail(`${mp}.grpc_timeout_header_offset`, 'not supported yet');
    }
    if (msd.max_stream_duration !== undefined && msd.max_stream_duration !== null) out.maxStreamDurationMs = durationMs(msd.max_stream_duration, `${mp}.max_stream_duration`, 0);
    if (msd.grpc_timeout_header_max !== undefined && msd.grpc_timeout_header_max !== null) out.grpcTimeoutHeaderMaxMs = durationMs(msd.grpc_timeout_header_max, `${mp}.grpc_timeout_header_max`, 0);
  }
  return out;
}

const REDIRECT_CODES: Record<string, number> = {
  MOVED_PERMANENTLY: 301, FOUND: 302, SEE_OTHER: 303, TEMPORARY_REDIRECT: 307, PERMANENT_REDIRECT: 308,
};

function compileAction(r: ProtoJson, path: string, vhost: VhostDefaults): RouteAction {
  if (r.route !== undefined) {
    const p = `${path}.route`;
    const a = obj(r.route, p);
    for (const k of ['cluster_header', 'cluster_specifier_plugin', 'inline_cluster_specifier_plugin', 'auto_host_rewrite', 'host_rewrite_header', 'host_rewrite_path_regex', 'rate_limits', 'upgrade_configs']) {
      if (a[k] !== undefined && !(Array.isArray(a[k]) && (a[k] as unknown[]).length === 0)) fail(`${p}.${k}`, 'not supported yet');
    }
    let cluster: string | undefined;
    let weighted: { clusters: WeightedCluster[]; total: number } | undefined;
    if (a.cluster !== undefined) {
      cluster = str(a.cluster, `${p}.cluster`);
      if (cluster === '') fail(`${p}.cluster`, 'must not be empty');
    } else if (a.weighted_clusters !== undefined) {
      const wp = `${p}.weighted_clusters`;
      const w = obj(a.weighted_clusters, wp);
      const clusters = arr(w.clusters, `${wp}.clusters`).map((x, i): WeightedCluster => {
        const cp = `${wp}.clusters[${i}]`;
        const c = obj(x, cp);
        const weight = num(c.weight, `${cp}.weight`, 0);
        if (!Number.isInteger(weight) || weight < 0) fail(`${cp}.weight`, 'must be an integer ≥ 0');
        return {
          name: str(c.name, `${cp}.name`),
          weight,
          requestHeaders: requestMutation(c, `${cp}.`),
          responseHeaders: responseMutation(c, `${cp}.`),
        };
      });
      if (clusters.length === 0) fail(`${wp}.clusters`, 'must not be empty');
      const total = clusters.reduce((s, c) => s + c.weight, 0);
      if (total <= 0) fail(`${wp}.clusters`, 'weights must sum to more than 0');
      weighted = { clusters, total };
    } else {
      fail(p, 'needs cluster or weighted_clusters');
    }
    const prefixRewrite = optStr(a.prefix_rewrite, `${p}.prefix_rewrite`);
    const regexRewrite = compileRegexRewrite(a.regex_rewrite, `${p}.regex_rewrite`);
    if (prefixRewrite !== undefined && regexRewrite !== undefined) fail(p, 'prefix_rewrite and regex_rewrite are mutually exclusive');
    const nf = enumStr(a.cluster_not_found_response_code, `${p}.cluster_not_found_response_code`, ['SERVICE_UNAVAILABLE', 'NOT_FOUND', 'INTERNAL_SERVER_ERROR'], 'SERVICE_UNAVAILABLE');
    return {
      kind: 'forward',
      cluster,
      weighted,
      prefixRewrite,
      regexRewrite,
      hostRewrite: optStr(a.host_rewrite_literal, `${p}.host_rewrite_literal`),
      timeoutMs: durationMs(a.timeout, `${p}.timeout`, DEFAULT_ROUTE_TIMEOUT_MS),
      ...compileStreamTimeouts(a, p),
      hashPolicies: compileHashPolicies(a.hash_policy, `${p}.hash_policy`),
      clusterNotFoundStatus: nf === 'NOT_FOUND' ? 404 : nf === 'INTERNAL_SERVER_ERROR' ? 500 : 503,
      // Envoy: a route's retry policy replaces the virtual host's (no merging).
      retry: a.retry_policy !== undefined ? compileRetryPolicy(a.retry_policy, `${p}.retry_policy`) : vhost.retry,
      mirrors: compileMirrors(a.request_mirror_policies, `${p}.request_mirror_policies`),
      bufferLimitBytes: r.per_request_buffer_limit_bytes !== undefined ? num(r.per_request_buffer_limit_bytes, `${path}.per_request_buffer_limit_bytes`, 0) : vhost.bufferLimitBytes,
    };
  }
  if (r.redirect !== undefined) {
    const p = `${path}.redirect`;
    const d = obj(r.redirect, p);
    let scheme = optStr(d.scheme_redirect, `${p}.scheme_redirect`);
    if (bool(d.https_redirect, `${p}.https_redirect`)) scheme = 'https';
    const port = d.port_redirect === undefined ? undefined : num(d.port_redirect, `${p}.port_redirect`, 0);
    const code = d.response_code === undefined ? 301
      : typeof d.response_code === 'number' ? [301, 302, 303, 307, 308][d.response_code] ?? fail(`${p}.response_code`, 'unknown code')
        : REDIRECT_CODES[str(d.response_code, `${p}.response_code`)] ?? fail(`${p}.response_code`, `unknown code ${String(d.response_code)}`);
    const path2 = optStr(d.path_redirect, `${p}.path_redirect`);
    const prefixRewrite = optStr(d.prefix_rewrite, `${p}.prefix_rewrite`);
    const regexRewrite = compileRegexRewrite(d.regex_rewrite, `${p}.regex_rewrite`);
    if ([path2, prefixRewrite, regexRewrite].filter((x) => x !== undefined).length > 1) fail(p, 'path_redirect, prefix_rewrite and regex_rewrite are mutually exclusive');
    return {
      kind: 'redirect',
      scheme,
      host: optStr(d.host_redirect, `${p}.host_redirect`),
      port: port === 0 ? undefined : port,
      path: path2,
      prefixRewrite,
      regexRewrite,
      status: code,
      stripQuery: bool(d.strip_query, `${p}.strip_query`),
    };
  }
  if (r.direct_response !== undefined) {
    const p = `${path}.direct_response`;
    const d = obj(r.direct_response, p);
    const status = num(d.status, `${p}.status`, 0);
    if (!Number.isInteger(status) || status < 200 || status > 599) fail(`${p}.status`, 'must be a status code 200–599');
    let body: Buffer | undefined;
    const b = optObj(d.body, `${p}.body`);
    if (b !== undefined) {
      if (b.inline_string !== undefined) body = Buffer.from(str(b.inline_string, `${p}.body.inline_string`));
      else if (b.inline_bytes !== undefined) body = Buffer.isBuffer(b.inline_bytes) ? b.inline_bytes : Buffer.from(str(b.inline_bytes, `${p}.body.inline_bytes`), 'base64');
      else fail(`${p}.body`, 'only inline_string and inline_bytes are supported');
    }
    return { kind: 'direct', status, body };
  }
  return fail(path, 'needs one of route, redirect, direct_response');
}

const NO_MIRRORS: readonly MirrorPolicy[] = Object.freeze([]);

function compileMirrors(v: unknown, path: string): readonly MirrorPolicy[] {
  const list = arr(v, path);
  if (list.length === 0) return NO_MIRRORS;
  return Object.freeze(list.map((x, i): MirrorPolicy => {
    const p = `${path}[${i}]`;
    const m = obj(x, p);
    if (m.cluster_header !== undefined && m.cluster_header !== '') fail(`${p}.cluster_header`, 'not supported yet');
    const cluster = str(m.cluster, `${p}.cluster`);
    if (cluster === '') fail(`${p}.cluster`, 'must not be empty');
    return { cluster, fraction: runtimeFractionalPercent(m.runtime_fraction, `${p}.runtime_fraction`, 1), shadowSuffix: !bool(m.disable_shadow_host_suffix_append, `${p}.disable_shadow_host_suffix_append`) };
  }));
}

const NO_PER_FILTER: ReadonlyMap<string, unknown> = new Map();
const FILTER_CONFIG_TYPE = 'envoy.config.route.v3.FilterConfig';

/** typed_per_filter_config: each entry compiled by its filter's factory; unknown filters refused unless optional. */
function compilePerFilter(v: unknown, path: string): ReadonlyMap<string, unknown> {
  if (!isObject(v) || Object.keys(v).length === 0) return NO_PER_FILTER;
  const out = new Map<string, unknown>();
  for (const [name, cfg] of Object.entries(v)) {
    const p = `${path}.${name}`;
    let { type, fields } = typedConfig(cfg, p);
    let optional = false;
    if (type === FILTER_CONFIG_TYPE) {
      optional = bool(fields.is_optional, `${p}.is_optional`);
      if (bool(fields.disabled, `${p}.disabled`)) fail(`${p}.disabled`, 'disabling a filter per route is not supported yet');
      ({ type, fields } = typedConfig(fields.config, `${p}.config`));
    }
    const factory = findFilter(name, type);
    if (factory === undefined) {
      if (optional) continue;
      fail(p, `no HTTP filter implements ${type}`);
    }
    out.set(name, factory.compilePerRoute(fields, p, DEFAULT_FILTER_DEPS));
  }
  return out;
}

/** Virtual-host settings a route inherits. */
interface VhostDefaults {
  readonly retry: RetryPolicy | undefined;
  readonly bufferLimitBytes: number;
  /** typed_per_filter_config of the virtual host and route config: a route's own entry wins, per filter (Envoy: most specific). */
  readonly perFilter: ReadonlyMap<string, unknown>;
}

/** `outer` overridden by `inner`, filter by filter. */
function mergePerFilter(outer: ReadonlyMap<string, unknown>, inner: ReadonlyMap<string, unknown>): ReadonlyMap<string, unknown> {
  if (outer.size === 0) return inner;
  if (inner.size === 0) return outer;
  return new Map([...outer, ...inner]);
}

/** Envoy buffers up to the connection's buffer limit (1 MiB by default) for retries. */
const DEFAULT_BUFFER_LIMIT = 1024 * 1024;

function compileRoute(v: unknown, path: string, vhost: VhostDefaults): CompiledRoute {
  const r = obj(v, path);
  const m = obj(r.match, `${path}.match`);
  for (const k of ['grpc', 'tls_context', 'dynamic_metadata', 'filter_state', 'runtime_fraction']) {
    if (m[k] !== undefined) fail(`${path}.match.${k}`, 'not supported yet');
  }
  return Object.freeze({
    name: r.name === undefined ? '' : str(r.name, `${path}.name`),
    perFilter: mergePerFilter(vhost.perFilter, compilePerFilter(r.typed_per_filter_config, `${path}.typed_per_filter_config`)),
    path: compilePathMatch(m, `${path}.match`),
    headers: arr(m.headers, `${path}.match.headers`).map((h, i) => compileHeaderMatcher(h, `${path}.match.headers[${i}]`)),
    query: arr(m.query_parameters, `${path}.match.query_parameters`).map((q, i) => compileQueryMatcher(q, `${path}.match.query_parameters[${i}]`)),
    action: compileAction(r, path, vhost),
    requestHeaders: requestMutation(r, `${path}.`),
    responseHeaders: responseMutation(r, `${path}.`),
  });
}

function validateDomain(d: string, path: string): void {
  if (d === '*') return;
  const stars = d.split('*').length - 1;
  if (stars > 1 || (stars === 1 && !d.startsWith('*') && !d.endsWith('*'))) fail(path, `"${d}": a wildcard may only be a prefix (*.foo) or a suffix (foo.*)`);
}

export function compileRouteConfig(v: unknown, path = ''): CompiledRouteConfig {
  const rc = obj(v, path || 'route_config');
  const at = (s: string): string => (path === '' ? s : `${path}.${s}`);
  for (const k of ['vhds', 'cluster_specifier_plugins']) if (rc[k] !== undefined && !(Array.isArray(rc[k]) && (rc[k] as unknown[]).length === 0)) fail(at(k), 'not supported');
  const name = rc.name === undefined ? '' : str(rc.name, at('name'));
  const exact = new Map<string, CompiledVirtualHost>();
  const suffixes: [string, CompiledVirtualHost][] = [];
  const prefixes: [string, CompiledVirtualHost][] = [];
  let catchAll: CompiledVirtualHost | undefined;
  const seen = new Set<string>();
  const rcPerFilter = compilePerFilter(rc.typed_per_filter_config, at('typed_per_filter_config'));
  const vhosts = arr(rc.virtual_hosts, at('virtual_hosts')).map((x, i) => {
    const p = at(`virtual_hosts[${i}]`);
    const vh = obj(x, p);
    if (vh.require_tls !== undefined && vh.require_tls !== 'NONE' && vh.require_tls !== 0) fail(`${p}.require_tls`, 'not supported');
    const domains = arr(vh.domains, `${p}.domains`).map((d, j) => str(d, `${p}.domains[${j}]`).toLowerCase());
    if (domains.length === 0) fail(`${p}.domains`, 'must not be empty');
    const vhost: VhostDefaults = {
      retry: vh.retry_policy === undefined ? undefined : compileRetryPolicy(vh.retry_policy, `${p}.retry_policy`),
      bufferLimitBytes: num(vh.per_request_buffer_limit_bytes, `${p}.per_request_buffer_limit_bytes`, DEFAULT_BUFFER_LIMIT),
      perFilter: mergePerFilter(rcPerFilter, compilePerFilter(vh.typed_per_filter_config, `${p}.typed_per_filter_config`)),
    };
    const compiled: CompiledVirtualHost = Object.freeze({
      name: vh.name === undefined ? '' : str(vh.name, `${p}.name`),
      domains,
      routes: Object.freeze(arr(vh.routes, `${p}.routes`).map((r, j) => compileRoute(r, `${p}.routes[${j}]`, vhost))),
      requestHeaders: requestMutation(vh, `${p}.`),
      responseHeaders: responseMutation(vh, `${p}.`),
    });
    domains.forEach((d, j) => {
      const dp = `${p}.domains[${j}]`;
      validateDomain(d, dp);
      if (seen.has(d)) fail(dp, `domain "${d}" appears in more than one virtual host`);
      seen.add(d);
      if (d === '*') catchAll = compiled;
      else if (d.startsWith('*')) suffixes.push([d.slice(1), compiled]);
      else if (d.endsWith('*')) prefixes.push([d.slice(0, -1), compiled]);
      else exact.set(d, compiled);
    });
    return compiled;
  });
  // Envoy: longest wildcard wins.
  suffixes.sort((a, b) => b[0].length - a[0].length);
  prefixes.sort((a, b) => b[0].length - a[0].length);
  return Object.freeze({
    name,
    exact,
    suffixes,
    prefixes,
    catchAll,
    requestHeaders: requestMutation(rc, path === '' ? '' : `${path}.`),
    responseHeaders: responseMutation(rc, path === '' ? '' : `${path}.`),
    mostSpecificHeaderMutationsWins: bool(rc.most_specific_header_mutations_wins, at('most_specific_header_mutations_wins')),
    virtualHosts: vhosts,
  });
}

/** The cluster names a route config refers to (for reference checks and dumps). */
export function referencedClusters(rc: CompiledRouteConfig): Set<string> {
  const out = new Set<string>();
  for (const vh of rc.virtualHosts) {
    for (const r of vh.routes) {
      if (r.action.kind !== 'forward') continue;
      if (r.action.cluster !== undefined) out.add(r.action.cluster);
      for (const w of r.action.weighted?.clusters ?? []) out.add(w.name);
      for (const m of r.action.mirrors) out.add(m.cluster);
    }
  }
  return out;
}
