/** Virtual host selection and route matching over a compiled route config (Envoy order). */
import { stringMatches } from '../config/compile-route.js';
import type { CompiledRoute, CompiledRouteConfig, CompiledVirtualHost, HeaderMatch, HttpConnectionManagerConfig, QueryParamMatch } from '../config/types.js';

export interface RequestView {
  /** Lower-case authority as received (may include a port). */
  readonly authority: string;
  /** Path without the query string. */
  readonly path: string;
  /** Query string without `?` ('' if none). */
  readonly query: string;
  /** node:http's joined, lower-cased header object. */
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
}

/** Envoy: exact, then longest `*.suffix`, then longest `prefix.*`, then `*`. */
function lookupDomain(rc: CompiledRouteConfig, host: string): CompiledVirtualHost | undefined {
  const exact = rc.exact.get(host);
  if (exact !== undefined) return exact;
  for (const [suffix, vh] of rc.suffixes) if (host.length > suffix.length && host.endsWith(suffix)) return vh;
  for (const [prefix, vh] of rc.prefixes) if (host.length > prefix.length && host.startsWith(prefix)) return vh;
  return undefined;
}

function stripPort(host: string): string {
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    return end === -1 ? host : host.slice(0, end + 1);
  }
  const colon = host.lastIndexOf(':');
  return colon === -1 || host.indexOf(':') !== colon ? host : host.slice(0, colon);
}

export function selectVirtualHost(rc: CompiledRouteConfig, hcm: HttpConnectionManagerConfig, authority: string, listenerPort: number): CompiledVirtualHost | undefined {
  let host = authority;
  if (hcm.stripAnyHostPort) host = stripPort(host);
  else if (hcm.stripMatchingHostPort && host.endsWith(`:${listenerPort}`)) host = stripPort(host);
  return lookupDomain(rc, host) ?? rc.catchAll;
}

function headerValue(headers: RequestView['headers'], name: string): string | undefined {
  const v = headers[name];
  if (v === undefined) return undefined;
  // Envoy joins repeated headers with "," for matching.
  return Array.isArray(v) ? v.join(',') : v;
}

export function headerMatches(m: HeaderMatch, headers: RequestView['headers']): boolean {
  let value = headerValue(headers, m.name);
  if (value === undefined && m.treatMissingAsEmpty) value = '';
  let ok: boolean;
  if (m.present !== undefined) {
    ok = (value !== undefined) === m.present;
  } else if (value === undefined) {
    // A missing header fails a value match, and invert_match does not turn that into a match (Envoy).
    return false;
  } else if (m.string !== undefined) {
    ok = stringMatches(m.string, value);
  } else if (m.range !== undefined) {
    const n = /^-?\d+$/.test(value) ? Number(value) : NaN;
    ok = n >= m.range.start && n < m.range.end;
  } else {
    ok = true;
  }
  return m.invert ? !ok : ok;
}

function queryValues(query: string): Map<string, string> {
  const out = new Map<string, string>();
  if (query === '') return out;
  for (const part of query.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const rawName = eq === -1 ? part : part.slice(0, eq);
    const rawValue = eq === -1 ? '' : part.slice(eq + 1);
    let name = rawName; let value = rawValue;
    try { name = decodeURIComponent(rawName.replace(/\+/g, ' ')); value = decodeURIComponent(rawValue.replace(/\+/g, ' ')); } catch { /* keep raw */ }
    if (!out.has(name)) out.set(name, value);
  }
  return out;
}

function queryMatches(ms: readonly QueryParamMatch[], query: string): boolean {
  const values = queryValues(query);
  for (const m of ms) {
    const v = values.get(m.name);
    if (m.present !== undefined) {
      if ((v !== undefined) !== m.present) return false;
    } else if (v === undefined || (m.string !== undefined && !stringMatches(m.string, v))) {
      return false;
    }
  }
  return true;
}

function pathMatches(r: CompiledRoute, path: string): boolean {
  const m = r.path;
  switch (m.kind) {
    case 'prefix': return (m.caseSensitive ? path : path.toLowerCase()).startsWith(m.value);
    case 'path': return (m.caseSensitive ? path : path.toLowerCase()) === m.value;
    case 'regex': return m.regex.test(path);
    case 'separated-prefix': {
      const p = m.caseSensitive ? path : path.toLowerCase();
      if (!p.startsWith(m.value)) return false;
      return p.length === m.value.length || p.charCodeAt(m.value.length) === 47 /* / */ || m.value === '/';
    }
  }
}

/** First route of the virtual host that matches, in order. */
export function matchRoute(vh: CompiledVirtualHost, req: RequestView): CompiledRoute | undefined {
  for (const r of vh.routes) {
    if (!pathMatches(r, req.path)) continue;
    let ok = true;
    for (const h of r.headers) if (!headerMatches(h, req.headers)) { ok = false; break; }
    if (!ok) continue;
    if (r.query.length > 0 && !queryMatches(r.query, req.query)) continue;
    return r;
  }
  return undefined;
}
