/**
 * envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication (and PerRouteConfig) →
 * JwtConfig. Providers, rules and requirement_map are compiled once; every field Weft
 * does not implement is refused (NACK).
 *
 * remote_jwks is fetched from its http_uri.uri directly (undici's fetch, Node's CA
 * roots), not through http_uri.cluster: the control plane's jwks|host:port cluster
 * resolves to the same host, and a filter does not reach the cluster manager.
 */
import { readFileSync } from 'node:fs';
import { compileHeaderMatcher, compileStringMatcher, stringMatches } from '../../config/compile-route.js';
import { arr, bool, compileRegex, durationMs, fail, isObject, num, obj, str } from '../../config/proto-values.js';
import type { HeaderMatch, ProtoJson, StringMatch } from '../../config/types.js';
import type { FilterDeps, FilterRequest } from '../types.js';
import { localJwks, remoteJwks, type JwksSource } from './jwks.js';

export type TokenLocation =
  | { readonly kind: 'header'; readonly name: string; readonly prefix: string }
  | { readonly kind: 'param'; readonly name: string }
  | { readonly kind: 'cookie'; readonly name: string };

export interface JwtProvider {
  readonly name: string;
  /** undefined: any issuer. */
  readonly issuer: string | undefined;
  /** undefined: the aud claim is not checked. */
  readonly audiences: readonly string[] | undefined;
  readonly subjects: StringMatch | undefined;
  readonly clockSkewSec: number;
  readonly requireExpiration: boolean;
  readonly maxLifetimeSec: number | undefined;
  readonly jwks: JwksSource;
  readonly forward: boolean;
  readonly locations: readonly TokenLocation[];
  readonly forwardPayloadHeader: string | undefined;
  readonly padForwardPayloadHeader: boolean;
  readonly payloadInMetadata: string | undefined;
  readonly headerInMetadata: string | undefined;
  readonly failedStatusInMetadata: string | undefined;
  readonly claimToHeaders: readonly { readonly header: string; readonly claim: readonly string[] }[];
}

/** One verification: a provider, with the audiences of a provider_and_audiences requirement if any. */
export interface VerifyUnit {
  readonly key: string;
  readonly provider: JwtProvider;
  readonly audiences: readonly string[] | undefined;
}

export type Requirement =
  | { readonly kind: 'unit'; readonly unit: VerifyUnit }
  | { readonly kind: 'any'; readonly children: readonly Requirement[] }
  | { readonly kind: 'all'; readonly children: readonly Requirement[] }
  /** Passes when no provider finds a token; a token that is found must verify. */
  | { readonly kind: 'allow_missing'; readonly units: readonly VerifyUnit[] }
  /** Always passes; tokens that verify still fill metadata and headers. */
  | { readonly kind: 'allow_missing_or_failed'; readonly units: readonly VerifyUnit[] };

export interface CompiledRequirement {
  readonly root: Requirement;
  /** Every verification the requirement may need (each runs at most once per request). */
  readonly units: readonly VerifyUnit[];
}

export interface JwtRule {
  readonly match: (r: FilterRequest) => boolean;
  /** undefined: no JWT needed on these requests. */
  readonly requirement: CompiledRequirement | undefined;
}

export interface JwtConfig {
  readonly providers: ReadonlyMap<string, JwtProvider>;
  readonly rules: readonly JwtRule[];
  readonly requirementMap: ReadonlyMap<string, CompiledRequirement>;
  readonly bypassCorsPreflight: boolean;
}

export type JwtPerRoute = { readonly disabled: true } | { readonly disabled: false; readonly requirementName: string };

const DEFAULT_LOCATIONS: readonly TokenLocation[] = Object.freeze([
  { kind: 'header', name: 'authorization', prefix: 'Bearer ' },
  { kind: 'param', name: 'access_token' },
]);
/** Envoy's default remote JWKS cache duration. */
const DEFAULT_CACHE_MS = 600_000;
const DEFAULT_FETCH_TIMEOUT_MS = 5_000;
/** Minimum time between refetches caused by unknown kids (or after a failed fetch). */
export const JWKS_REFRESH_COOLDOWN_MS = 5_000;

function refuse(o: ProtoJson, path: string, known: readonly string[]): void {
  for (const k of Object.keys(o)) if (!known.includes(k)) fail(`${path}.${k}`, 'not supported');
}

function stringList(v: unknown, path: string): string[] {
  return arr(v, path).map((x, i) => str(x, `${path}[${i}]`));
}

function compileJwks(p: ProtoJson, path: string, deps: FilterDeps): JwksSource {
  if ((p.local_jwks === undefined) === (p.remote_jwks === undefined)) fail(path, 'needs exactly one of local_jwks, remote_jwks');
  if (p.local_jwks !== undefined) {
    const lp = `${path}.local_jwks`;
    const l = obj(p.local_jwks, lp);
    refuse(l, lp, ['inline_string', 'inline_bytes', 'filename']);
    let text: string;
    if (l.inline_string !== undefined) text = str(l.inline_string, `${lp}.inline_string`);
    else if (l.inline_bytes !== undefined) text = Buffer.from(str(l.inline_bytes, `${lp}.inline_bytes`), 'base64').toString('utf8');
    else if (l.filename !== undefined) {
      const f = str(l.filename, `${lp}.filename`);
      try { text = readFileSync(f, 'utf8'); } catch (e) { return fail(`${lp}.filename`, `cannot read ${f}: ${(e as Error).message}`, e); }
    } else return fail(lp, 'needs inline_string, inline_bytes or filename');
    try {
      return localJwks(text);
    } catch (e) {
      return fail(lp, `invalid JWKS: ${(e as Error).message}`, e);
    }
  }
  const rp = `${path}.remote_jwks`;
  const r = obj(p.remote_jwks, rp);
  refuse(r, rp, ['http_uri', 'cache_duration', 'async_fetch']);
  const h = obj(r.http_uri, `${rp}.http_uri`);
  refuse(h, `${rp}.http_uri`, ['uri', 'cluster', 'timeout']);
  const uri = str(h.uri, `${rp}.http_uri.uri`);
  let u: URL;
  try { u = new URL(uri); } catch (e) { return fail(`${rp}.http_uri.uri`, `invalid URI "${uri}"`, e); }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') fail(`${rp}.http_uri.uri`, 'must be http or https');
  const timeoutMs = durationMs(h.timeout, `${rp}.http_uri.timeout`, DEFAULT_FETCH_TIMEOUT_MS);
  if (timeoutMs <= 0) fail(`${rp}.http_uri.timeout`, 'must be positive');
  const src = remoteJwks({ uri, timeoutMs, cacheMs: durationMs(r.cache_duration, `${rp}.cache_duration`, DEFAULT_CACHE_MS), cooldownMs: JWKS_REFRESH_COOLDOWN_MS, now: deps.now });
  if (r.async_fetch !== undefined) {
    const af = obj(r.async_fetch, `${rp}.async_fetch`);
    refuse(af, `${rp}.async_fetch`, ['fast_listener', 'failed_refetch_duration']);
    // Fetch now instead of on the first request; a failure here is retried by that request.
    Promise.resolve().then(() => src.keys()).catch(() => undefined);
  }
  return src;
}

function compileLocations(p: ProtoJson, path: string): readonly TokenLocation[] {
  const out: TokenLocation[] = [];
  arr(p.from_headers, `${path}.from_headers`).forEach((x, i) => {
    const hp = `${path}.from_headers[${i}]`;
    const h = obj(x, hp);
    refuse(h, hp, ['name', 'value_prefix']);
    out.push({ kind: 'header', name: str(h.name, `${hp}.name`).toLowerCase(), prefix: h.value_prefix === undefined ? '' : str(h.value_prefix, `${hp}.value_prefix`) });
  });
  for (const n of stringList(p.from_params, `${path}.from_params`)) out.push({ kind: 'param', name: n });
  for (const n of stringList(p.from_cookies, `${path}.from_cookies`)) out.push({ kind: 'cookie', name: n });
  return out.length === 0 ? DEFAULT_LOCATIONS : Object.freeze(out);
}

const PROVIDER_FIELDS = [
  'issuer', 'audiences', 'subjects', 'require_expiration', 'max_lifetime', 'clock_skew_seconds', 'local_jwks', 'remote_jwks', 'forward',
  'from_headers', 'from_params', 'from_cookies', 'forward_payload_header', 'pad_forward_payload_header', 'payload_in_metadata',
  'header_in_metadata', 'failed_status_in_metadata', 'claim_to_headers', 'clear_route_cache',
];

function optName(v: unknown, path: string): string | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  return str(v, path);
}

export function compileProvider(name: string, v: unknown, path: string, deps: FilterDeps): JwtProvider {
  const p = obj(v, path);
  refuse(p, path, PROVIDER_FIELDS);
  if (bool(p.clear_route_cache, `${path}.clear_route_cache`)) fail(`${path}.clear_route_cache`, 'route re-selection after JWT verification is not supported');
  const audiences = stringList(p.audiences, `${path}.audiences`);
  const maxLifetimeMs = p.max_lifetime === undefined ? undefined : durationMs(p.max_lifetime, `${path}.max_lifetime`, 0);
  const claimToHeaders = arr(p.claim_to_headers, `${path}.claim_to_headers`).map((x, i) => {
    const cp = `${path}.claim_to_headers[${i}]`;
    const c = obj(x, cp);
    refuse(c, cp, ['header_name', 'claim_name']);
    const header = str(c.header_name, `${cp}.header_name`).toLowerCase();
    if (!/^[!#$%&'*+\-.^_`|~0-9a-z]+$/.test(header)) fail(`${cp}.header_name`, `"${header}" is not a valid header name`);
    const claim = str(c.claim_name, `${cp}.claim_name`);
    if (claim === '') fail(`${cp}.claim_name`, 'must not be empty');
    return Object.freeze({ header, claim: Object.freeze(claim.split('.')) });
  });
  const skew = num(p.clock_skew_seconds, `${path}.clock_skew_seconds`, 60);
  if (!Number.isInteger(skew) || skew < 0) fail(`${path}.clock_skew_seconds`, 'must be a non-negative integer');
  return Object.freeze({
    name,
    issuer: optName(p.issuer, `${path}.issuer`),
    audiences: audiences.length === 0 ? undefined : Object.freeze(audiences),
    subjects: p.subjects === undefined ? undefined : compileStringMatcher(p.subjects, `${path}.subjects`),
    clockSkewSec: skew,
    requireExpiration: bool(p.require_expiration, `${path}.require_expiration`),
    maxLifetimeSec: maxLifetimeMs === undefined ? undefined : maxLifetimeMs / 1000,
    jwks: compileJwks(p, path, deps),
    forward: bool(p.forward, `${path}.forward`),
    locations: compileLocations(p, path),
    forwardPayloadHeader: optName(p.forward_payload_header, `${path}.forward_payload_header`)?.toLowerCase(),
    padForwardPayloadHeader: bool(p.pad_forward_payload_header, `${path}.pad_forward_payload_header`),
    payloadInMetadata: optName(p.payload_in_metadata, `${path}.payload_in_metadata`),
    headerInMetadata: optName(p.header_in_metadata, `${path}.header_in_metadata`),
    failedStatusInMetadata: optName(p.failed_status_in_metadata, `${path}.failed_status_in_metadata`),
    claimToHeaders: Object.freeze(claimToHeaders),
  });
}

function compileRequirement(v: unknown, path: string, providers: ReadonlyMap<string, JwtProvider>): CompiledRequirement {
  const units = new Map<string, VerifyUnit>();
  const unit = (provider: JwtProvider, audiences: readonly string[] | undefined): VerifyUnit => {
    const key = audiences === undefined ? provider.name : `${provider.name}\u0000${audiences.join('\u0000')}`;
    let u = units.get(key);
    if (u === undefined) { u = Object.freeze({ key, provider, audiences }); units.set(key, u); }
    return u;
  };
  const allUnits = (): VerifyUnit[] => [...providers.values()].map((p) => unit(p, undefined));
  const providerNamed = (n: unknown, p: string): JwtProvider => {
    const name = str(n, p);
    return providers.get(name) ?? fail(p, `no provider named "${name}"`);
  };
  const walk = (x: unknown, p: string): Requirement => {
    const o = obj(x, p);
    const keys = Object.keys(o);
    if (keys.length !== 1) fail(p, 'needs exactly one of provider_name, provider_and_audiences, requires_any, requires_all, allow_missing, allow_missing_or_failed');
    const k = keys[0]!;
    const kp = `${p}.${k}`;
    switch (k) {
      case 'provider_name': return { kind: 'unit', unit: unit(providerNamed(o.provider_name, kp), undefined) };
      case 'provider_and_audiences': {
        const pa = obj(o.provider_and_audiences, kp);
        refuse(pa, kp, ['provider_name', 'audiences']);
        const aud = stringList(pa.audiences, `${kp}.audiences`);
        return { kind: 'unit', unit: unit(providerNamed(pa.provider_name, `${kp}.provider_name`), aud.length === 0 ? undefined : Object.freeze(aud)) };
      }
      case 'requires_any': case 'requires_all': {
        const list = arr(obj(o[k], kp).requirements, `${kp}.requirements`);
        if (list.length < 2) fail(`${kp}.requirements`, 'needs at least two requirements');
        const children = Object.freeze(list.map((y, i) => walk(y, `${kp}.requirements[${i}]`)));
        return k === 'requires_any' ? { kind: 'any', children } : { kind: 'all', children };
      }
      case 'allow_missing': return { kind: 'allow_missing', units: allUnits() };
      case 'allow_missing_or_failed': return { kind: 'allow_missing_or_failed', units: allUnits() };
      default: return fail(kp, 'not supported');
    }
  };
  const root = walk(v, path);
  return Object.freeze({ root, units: Object.freeze([...units.values()]) });
}

/** Reads a header for a rule's header matcher (pseudo-headers from the request line). */
function headerOf(r: FilterRequest, name: string): string | string[] | undefined {
  if (name === ':method') return r.method;
  if (name === ':path') return r.path;
  if (name === ':authority' || name === 'host') return r.authority;
  return r.headers[name];
}

function headerOk(m: HeaderMatch, r: FilterRequest): boolean {
  const raw = headerOf(r, m.name);
  let value = Array.isArray(raw) ? raw.join(',') : raw;
  if (value === undefined && m.treatMissingAsEmpty) value = '';
  let ok: boolean;
  if (m.present !== undefined) ok = (value !== undefined) === m.present;
  else if (value === undefined) return false;
  else if (m.string !== undefined) ok = stringMatches(m.string, value);
  else if (m.range !== undefined) { const n = /^-?\d+$/.test(value) ? Number(value) : NaN; ok = n >= m.range.start && n < m.range.end; } else ok = true;
  return m.invert ? !ok : ok;
}

/** A rule's RouteMatch: path prefix / exact / regex / separated prefix, and headers. */
function compileRuleMatch(v: unknown, path: string): (r: FilterRequest) => boolean {
  const m = obj(v, path);
  refuse(m, path, ['prefix', 'path', 'safe_regex', 'path_separated_prefix', 'case_sensitive', 'headers']);
  const cs = bool(m.case_sensitive, `${path}.case_sensitive`, true);
  const norm = (s: string): string => (cs ? s : s.toLowerCase());
  const headers = arr(m.headers, `${path}.headers`).map((h, i) => compileHeaderMatcher(h, `${path}.headers[${i}]`));
  let pathOk: (p: string) => boolean;
  if (m.prefix !== undefined) { const x = norm(str(m.prefix, `${path}.prefix`)); pathOk = (p) => norm(p).startsWith(x); }
  else if (m.path !== undefined) { const x = norm(str(m.path, `${path}.path`)); pathOk = (p) => norm(p) === x; }
  else if (m.safe_regex !== undefined) { const re = compileRegex(m.safe_regex, `${path}.safe_regex`, true, cs ? '' : 'i'); pathOk = (p) => re.test(p); }
  else if (m.path_separated_prefix !== undefined) {
    const x = norm(str(m.path_separated_prefix, `${path}.path_separated_prefix`));
    pathOk = (p) => { const n = norm(p); return n === x || (n.startsWith(x) && n[x.length] === '/'); };
  } else return fail(path, 'needs prefix, path, safe_regex or path_separated_prefix');
  return (r) => {
    const q = r.path.indexOf('?');
    if (!pathOk(q < 0 ? r.path : r.path.slice(0, q))) return false;
    for (const h of headers) if (!headerOk(h, r)) return false;
    return true;
  };
}

export function compileJwtAuthn(f: ProtoJson, path: string, deps: FilterDeps): JwtConfig {
  refuse(f, path, ['@type', 'providers', 'rules', 'requirement_map', 'bypass_cors_preflight', 'stat_prefix', 'strip_failure_response']);
  if (bool(f.strip_failure_response, `${path}.strip_failure_response`)) fail(`${path}.strip_failure_response`, 'not supported');
  const providers = new Map<string, JwtProvider>();
  const pv = f.providers === undefined ? {} : obj(f.providers, `${path}.providers`);
  for (const [name, p] of Object.entries(pv)) providers.set(name, compileProvider(name, p, `${path}.providers["${name}"]`, deps));
  const requirementMap = new Map<string, CompiledRequirement>();
  const rm = f.requirement_map === undefined ? {} : obj(f.requirement_map, `${path}.requirement_map`);
  for (const [name, r] of Object.entries(rm)) requirementMap.set(name, compileRequirement(r, `${path}.requirement_map["${name}"]`, providers));
  const rules = arr(f.rules, `${path}.rules`).map((x, i) => {
    const rp = `${path}.rules[${i}]`;
    const r = obj(x, rp);
    refuse(r, rp, ['match', 'requires', 'requirement_name']);
    if (r.requires !== undefined && r.requirement_name !== undefined) fail(rp, 'sets both requires and requirement_name');
    let requirement: CompiledRequirement | undefined;
    if (r.requires !== undefined) requirement = compileRequirement(r.requires, `${rp}.requires`, providers);
    else if (r.requirement_name !== undefined) {
      const n = str(r.requirement_name, `${rp}.requirement_name`);
      requirement = requirementMap.get(n) ?? fail(`${rp}.requirement_name`, `not in requirement_map: "${n}"`);
    }
    return Object.freeze({ match: compileRuleMatch(r.match, `${rp}.match`), requirement });
  });
  return Object.freeze({ providers, rules: Object.freeze(rules), requirementMap, bypassCorsPreflight: bool(f.bypass_cors_preflight, `${path}.bypass_cors_preflight`) });
}

/** PerRouteConfig: `disabled: true` or a requirement_name from the filter's requirement_map. */
export function compileJwtPerRoute(f: ProtoJson, path: string): JwtPerRoute {
  refuse(f, path, ['@type', 'disabled', 'requirement_name']);
  if (bool(f.disabled, `${path}.disabled`)) return { disabled: true };
  if (f.requirement_name === undefined || !isObject(f) || f.requirement_name === '') fail(path, 'needs disabled or requirement_name');
  return { disabled: false, requirementName: str(f.requirement_name, `${path}.requirement_name`) };
}
