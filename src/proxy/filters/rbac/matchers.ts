/**
 * Envoy's RBAC matcher trees (envoy.config.rbac.v3 Permission and Principal) compiled
 * once into closures. Everything that costs (regexes, CIDR tables, header-name
 * dispatch) is done here at create(); per request a matcher only reads fields of the
 * request and compares strings. A field Weft cannot evaluate is a ConfigError (NACK),
 * never a matcher that silently says yes or no.
 */
import { BlockList, isIPv4, isIPv6 } from 'node:net';
import type { IncomingHttpHeaders } from 'node:http';
import { compileHeaderMatcher, compileStringMatcher, stringMatches } from '../../config/compile-route.js';
import { arr, bool, fail, num, obj, str } from '../../config/proto-values.js';
import type { HeaderMatch, ProtoJson, StringMatch } from '../../config/types.js';
import type { DownstreamConnection } from '../types.js';

/** What a matcher reads: a FilterRequest satisfies it; the network filter builds one per connection. */
export interface AuthzInput {
  readonly method: string;
  readonly path: string;
  readonly authority: string;
  readonly headers: IncomingHttpHeaders;
  /** `localAddress` is read when a policy uses destination_ip (network filter: always known). */
  readonly connection: DownstreamConnection & { readonly localAddress?: string | undefined };
  readonly metadata: ReadonlyMap<string, Record<string, unknown>>;
}

export type Matcher = (r: AuthzInput) => boolean;

/** Thrown when a request lacks what a matcher needs (the filter then denies: fail closed). */
export class UnevaluableError extends Error {}

/** HTTP matchers refused on a TCP chain: there is no request to read. */
export type Scope = 'http' | 'network';

const ALWAYS: Matcher = () => true;

// ---------------------------------------------------------------------------
// Leaves

/** Reads a header the way Envoy's header map does: pseudo-headers from the request line, repeats joined with ','. */
function headerReader(name: string): (r: AuthzInput) => string | undefined {
  switch (name) {
    case ':method': return (r) => r.method;
    case ':path': return (r) => r.path;
    case ':authority': case 'host': return (r) => r.authority;
    case ':scheme': return (r) => {
      const s = r.headers[':scheme'];
      return typeof s === 'string' ? s : r.connection.tls ? 'https' : 'http';
    };
    default: return (r) => {
      const v = r.headers[name];
      return v === undefined ? undefined : Array.isArray(v) ? v.join(',') : v;
    };
  }
}

/** HeaderMatcher semantics as router/route-table.ts headerMatches, on a pre-resolved reader. */
function headerMatcher(m: HeaderMatch): Matcher {
  const read = headerReader(m.name);
  return (r) => {
    let value = read(r);
    if (value === undefined && m.treatMissingAsEmpty) value = '';
    let ok: boolean;
    if (m.present !== undefined) ok = (value !== undefined) === m.present;
    else if (value === undefined) return false; // invert_match does not turn a missing header into a match (Envoy)
    else if (m.string !== undefined) ok = stringMatches(m.string, value);
    else if (m.range !== undefined) {
      const n = /^-?\d+$/.test(value) ? Number(value) : NaN;
      ok = n >= m.range.start && n < m.range.end;
    } else ok = true;
    return m.invert ? !ok : ok;
  };
}

/** url_path: the path without its query or fragment (Envoy's PathMatcher). */
function urlPathMatcher(v: unknown, path: string): Matcher {
  const pm = obj(v, path);
  for (const k of Object.keys(pm)) if (k !== 'path') fail(`${path}.${k}`, 'not supported');
  const sm = compileStringMatcher(pm.path, `${path}.path`);
  return (r) => {
    const p = r.path;
    let end = p.indexOf('?');
    const hash = p.indexOf('#');
    if (hash >= 0 && (end < 0 || hash < end)) end = hash;
    return stringMatches(sm, end < 0 ? p : p.slice(0, end));
  };
}

/** `::ffff:10.0.0.1` (a dual-stack socket's view of an IPv4 peer) → `10.0.0.1`. */
function plainIp(ip: string): string {
  return ip.startsWith('::ffff:') && ip.includes('.') ? ip.slice(7) : ip;
}

/** envoy.config.core.v3.CidrRange → a BlockList holding that one subnet. */
function cidrMatcher(v: unknown, path: string, read: (r: AuthzInput) => string | undefined): Matcher {
  const c = obj(v, path);
  for (const k of Object.keys(c)) if (k !== 'address_prefix' && k !== 'prefix_len') fail(`${path}.${k}`, 'not supported');
  const addr = plainIp(str(c.address_prefix, `${path}.address_prefix`));
  const family = isIPv4(addr) ? 'ipv4' : isIPv6(addr) ? 'ipv6' : fail(`${path}.address_prefix`, `"${addr}" is not an IP address`);
  const max = family === 'ipv4' ? 32 : 128;
  const len = num(c.prefix_len, `${path}.prefix_len`, 0);
  if (!Number.isInteger(len) || len < 0 || len > max) fail(`${path}.prefix_len`, `must be an integer in [0, ${max}]`);
  const list = new BlockList();
  list.addSubnet(addr, len, family);
  return (r) => {
    const raw = read(r);
    if (raw === undefined) throw new UnevaluableError('the connection\'s local address is not known');
    const ip = plainIp(raw);
    const f = isIPv4(ip) ? 'ipv4' : isIPv6(ip) ? 'ipv6' : undefined;
    return f === family && list.check(ip, f);
  };
}

// ---------------------------------------------------------------------------
// Metadata (envoy.type.matcher.v3.MetadataMatcher / ValueMatcher)

type ValueTest = (v: unknown) => boolean;

function valueMatcher(v: unknown, path: string): ValueTest {
  const m = obj(v, path);
  const keys = Object.keys(m);
  if (keys.length !== 1) fail(path, 'needs exactly one of null_match, double_match, string_match, bool_match, present_match, list_match, or_match');
  const k = keys[0]!;
  const p = `${path}.${k}`;
  switch (k) {
    case 'null_match': return (x) => x === null || x === undefined;
    case 'string_match': {
      const sm: StringMatch = compileStringMatcher(m.string_match, p);
      return (x) => typeof x === 'string' && stringMatches(sm, x);
    }
    case 'bool_match': {
      const want = bool(m.bool_match, p);
      return (x) => x === want;
    }
    case 'present_match': {
      const want = bool(m.present_match, p);
      return (x) => (x !== undefined && x !== null) === want;
    }
    case 'double_match': {
      const d = obj(m.double_match, p);
      if (d.exact !== undefined) {
        const e = num(d.exact, `${p}.exact`, 0);
        return (x) => x === e;
      }
      if (d.range !== undefined) {
        const rg = obj(d.range, `${p}.range`);
        const start = num(rg.start, `${p}.range.start`, -Infinity);
        const end = num(rg.end, `${p}.range.end`, Infinity);
        return (x) => typeof x === 'number' && x >= start && x < end;
      }
      return fail(p, 'needs exact or range');
    }
    case 'list_match': {
      const lm = obj(m.list_match, p);
      if (lm.one_of === undefined) fail(p, 'needs one_of');
      const one = valueMatcher(lm.one_of, `${p}.one_of`);
      return (x) => Array.isArray(x) && x.some(one);
    }
    case 'or_match': {
      const list = arr(obj(m.or_match, p).value_matchers, `${p}.value_matchers`).map((x, i) => valueMatcher(x, `${p}.value_matchers[${i}]`));
      if (list.length < 2) fail(`${p}.value_matchers`, 'needs at least two matchers');
      return (x) => list.some((t) => t(x));
    }
    default: return fail(p, 'not supported');
  }
}

/** Dynamic metadata at filter → path[0] → path[1]…; JWT payloads are plain objects. */
export function metadataMatcher(v: unknown, path: string): Matcher {
  const m = obj(v, path);
  for (const k of Object.keys(m)) if (!['filter', 'path', 'value', 'invert'].includes(k)) fail(`${path}.${k}`, 'not supported');
  const filter = str(m.filter, `${path}.filter`);
  const keys = arr(m.path, `${path}.path`).map((s, i) => {
    const seg = obj(s, `${path}.path[${i}]`);
    if (Object.keys(seg).some((k) => k !== 'key')) fail(`${path}.path[${i}]`, 'only key segments are supported');
    return str(seg.key, `${path}.path[${i}].key`);
  });
  if (keys.length === 0) fail(`${path}.path`, 'must not be empty');
  const test = valueMatcher(m.value, `${path}.value`);
  const invert = bool(m.invert, `${path}.invert`);
  return (r) => {
    let cur: unknown = r.metadata.get(filter);
    for (const k of keys) {
      if (cur === null || typeof cur !== 'object' || Array.isArray(cur)) { cur = undefined; break; }
      cur = (cur as Record<string, unknown>)[k];
    }
    return test(cur) !== invert;
  };
}

// ---------------------------------------------------------------------------
// Trees

function only(o: ProtoJson, path: string): [string, unknown] {
  const keys = Object.keys(o);
  if (keys.length !== 1) fail(path, keys.length === 0 ? 'must set one rule' : `sets ${keys.join(', ')}: exactly one is allowed`);
  const k = keys[0]!;
  return [k, o[k]];
}

function list(v: unknown, field: string, path: string, each: (x: unknown, p: string) => Matcher): Matcher[] {
  const rules = arr(obj(v, path)[field], `${path}.${field}`);
  if (rules.length === 0) fail(`${path}.${field}`, 'must not be empty');
  return rules.map((x, i) => each(x, `${path}.${field}[${i}]`));
}

function allOf(ms: Matcher[]): Matcher {
  if (ms.length === 1) return ms[0]!;
  return (r) => { for (const m of ms) if (!m(r)) return false; return true; };
}

export function anyOf(ms: Matcher[]): Matcher {
  if (ms.length === 1) return ms[0]!;
  return (r) => { for (const m of ms) if (m(r)) return true; return false; };
}

function httpOnly(scope: Scope, path: string, m: () => Matcher): Matcher {
  if (scope === 'network') fail(path, 'an HTTP matcher cannot be evaluated by the network RBAC filter');
  return m();
}

const remote = (r: AuthzInput): string => r.connection.remoteAddress;
const local = (r: AuthzInput): string | undefined => r.connection.localAddress || undefined;

/** envoy.config.rbac.v3.Permission. */
export function compilePermission(v: unknown, path: string, scope: Scope): Matcher {
  const [k, x] = only(obj(v, path), path);
  const p = `${path}.${k}`;
  switch (k) {
    case 'any':
      if (!bool(x, p)) fail(p, 'must be true');
      return ALWAYS;
    case 'and_rules': return allOf(list(x, 'rules', p, (y, q) => compilePermission(y, q, scope)));
    case 'or_rules': return anyOf(list(x, 'rules', p, (y, q) => compilePermission(y, q, scope)));
    case 'not_rule': {
      const m = compilePermission(x, p, scope);
      return (r) => !m(r);
    }
    case 'header': return httpOnly(scope, p, () => headerMatcher(compileHeaderMatcher(x, p)));
    case 'url_path': return httpOnly(scope, p, () => urlPathMatcher(x, p));
    case 'metadata': return httpOnly(scope, p, () => metadataMatcher(x, p));
    case 'destination_ip': return cidrMatcher(x, p, local);
    case 'destination_port': {
      const port = num(x, p, 0);
      if (!Number.isInteger(port) || port < 0 || port > 65535) fail(p, 'must be a port number');
      return (r) => r.connection.localPort === port;
    }
    case 'destination_port_range': {
      const rg = obj(x, p);
      const start = num(rg.start, `${p}.start`, 0);
      const end = num(rg.end, `${p}.end`, 0);
      return (r) => r.connection.localPort >= start && r.connection.localPort < end;
    }
    case 'requested_server_name': {
      const sm = compileStringMatcher(x, p);
      return (r) => stringMatches(sm, r.connection.serverName ?? '');
    }
    default: return fail(p, 'not supported');
  }
}

/** envoy.config.rbac.v3.Principal. */
export function compilePrincipal(v: unknown, path: string, scope: Scope): Matcher {
  const [k, x] = only(obj(v, path), path);
  const p = `${path}.${k}`;
  switch (k) {
    case 'any':
      if (!bool(x, p)) fail(p, 'must be true');
      return ALWAYS;
    case 'and_ids': return allOf(list(x, 'ids', p, (y, q) => compilePrincipal(y, q, scope)));
    case 'or_ids': return anyOf(list(x, 'ids', p, (y, q) => compilePrincipal(y, q, scope)));
    case 'not_id': {
      const m = compilePrincipal(x, p, scope);
      return (r) => !m(r);
    }
    case 'authenticated': {
      const a = obj(x, p);
      for (const f of Object.keys(a)) if (f !== 'principal_name') fail(`${p}.${f}`, 'not supported');
      // Weft sees the verified peer's SPIFFE ID (URI SAN); Envoy would also try DNS SANs and the subject.
      if (a.principal_name === undefined) return (r) => r.connection.tls && r.connection.peerPrincipal !== undefined;
      const sm = compileStringMatcher(a.principal_name, `${p}.principal_name`);
      return (r) => r.connection.peerPrincipal !== undefined && stringMatches(sm, r.connection.peerPrincipal);
    }
    // source_ip is the deprecated name of direct_remote_ip. remote_ip is the client address after
    // x-forwarded-for trust; Weft's HCM trusts no XFF hops, so it is the peer address too.
    case 'source_ip': case 'direct_remote_ip': case 'remote_ip': return cidrMatcher(x, p, remote);
    case 'header': return httpOnly(scope, p, () => headerMatcher(compileHeaderMatcher(x, p)));
    case 'url_path': return httpOnly(scope, p, () => urlPathMatcher(x, p));
    case 'metadata': return httpOnly(scope, p, () => metadataMatcher(x, p));
    default: return fail(p, 'not supported');
  }
}
