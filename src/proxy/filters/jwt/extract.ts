/**
 * Finds the tokens a provider looks for: headers (with a value prefix such as
 * "Bearer "), query parameters and cookies, in the order configured. With none
 * configured Envoy looks at `Authorization: Bearer <jwt>` and `?access_token=`.
 */
import type { FilterRequest } from '../types.js';
import type { TokenLocation } from './config.js';

export interface FoundToken {
  readonly token: string;
  readonly location: TokenLocation;
}

function headerString(r: FilterRequest, name: string): string | undefined {
  const v = r.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** The token part of a header value after its prefix (RFC 6750: the scheme is case-insensitive). */
function fromHeader(value: string, prefix: string): string | undefined {
  let v = value;
  if (prefix !== '') {
    if (v.length < prefix.length || v.slice(0, prefix.length).toLowerCase() !== prefix.toLowerCase()) return undefined;
    v = v.slice(prefix.length);
  }
  v = v.trim();
  // A prefix like `Bearer ` may be followed by more parameters after the token.
  const end = v.search(/[\s,]/);
  if (end >= 0) v = v.slice(0, end);
  return v === '' ? undefined : v;
}

function queryParam(path: string, name: string): string | undefined {
  const q = path.indexOf('?');
  if (q < 0) return undefined;
  const v = new URLSearchParams(path.slice(q + 1)).get(name);
  return v === null || v === '' ? undefined : v;
}

function cookie(header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) {
      const v = part.slice(eq + 1).trim();
      return v === '' ? undefined : v;
    }
  }
  return undefined;
}

export function extractTokens(locations: readonly TokenLocation[], r: FilterRequest): FoundToken[] {
  const out: FoundToken[] = [];
  for (const l of locations) {
    let t: string | undefined;
    if (l.kind === 'header') {
      const v = headerString(r, l.name);
      t = v === undefined ? undefined : fromHeader(v, l.prefix);
    } else if (l.kind === 'param') t = queryParam(r.path, l.name);
    else t = cookie(headerString(r, 'cookie'), l.name);
    if (t !== undefined && !out.some((x) => x.token === t)) out.push({ token: t, location: l });
  }
  return out;
}
