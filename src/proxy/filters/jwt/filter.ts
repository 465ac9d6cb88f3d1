/**
 * envoy.filters.http.jwt_authn. The first rule whose match fits the request (or the
 * route's PerRouteConfig) gives the requirement; every verification it may need runs
 * once, concurrently; then the requirement tree decides. A request with no token and
 * a requirement that allows that passes synchronously, without a promise.
 *
 * On success a provider writes its payload to dynamic metadata under
 * `envoy.filters.http.jwt_authn` / payload_in_metadata (RBAC's metadata matchers read
 * it there), copies claims into headers (claim_to_headers), forwards the payload
 * (forward_payload_header) and, unless `forward`, strips the token header.
 * Refusal: 401 (403 for a wrong audience) with `www-authenticate: Bearer realm="<url>"`
 * and `error="invalid_token"` when a token was presented; gRPC gets UNAUTHENTICATED.
 */
import { createLogger, type Logger } from '../../../lib/log.js';
import type { ProtoJson } from '../../config/types.js';
import type { FilterDeps, FilterFactory, FilterRequest, FilterVerdict, HttpFilter, LocalReplySpec } from '../types.js';
import { compileJwtAuthn, compileJwtPerRoute, type CompiledRequirement, type JwtConfig, type JwtPerRoute, type JwtProvider, type Requirement, type VerifyUnit } from './config.js';
import { extractTokens, type FoundToken } from './extract.js';
import { JWT_STATUS_MESSAGES, type JwtStatus } from './status.js';
import { verifyToken, type Verified } from './verify.js';

export const JWT_FILTER_NAME = 'envoy.filters.http.jwt_authn';
/** Dynamic-metadata namespace of verified payloads (rbac.ts's claim matchers read it). */
export const JWT_METADATA_NAMESPACE = 'envoy.filters.http.jwt_authn';

let logger: Logger | undefined;
const log = (): Logger => (logger ??= createLogger('weft-proxy'));

function mark(r: FilterRequest, key: string, value: unknown): void {
  const rec = r.metadata.get(JWT_METADATA_NAMESPACE);
  if (rec !== undefined) rec[key] = value;
  else r.metadata.set(JWT_METADATA_NAMESPACE, { [key]: value });
}

/** A claim as a header value: strings as they are, numbers and booleans printed, lists of those joined. */
function claimValue(payload: Record<string, unknown>, path: readonly string[]): string | undefined {
  let cur: unknown = payload;
  for (const k of path) {
    if (cur === null || typeof cur !== 'object' || Array.isArray(cur)) return undefined;
    cur = (cur as Record<string, unknown>)[k];
  }
  const one = (x: unknown): string | undefined => (typeof x === 'string' ? x : typeof x === 'number' || typeof x === 'boolean' ? String(x) : undefined);
  if (Array.isArray(cur)) {
    const parts = cur.map(one);
    return parts.every((x) => x !== undefined) ? parts.join(',') : undefined;
  }
  return one(cur);
}

function applySuccess(p: JwtProvider, found: FoundToken, v: Verified, r: FilterRequest): void {
  if (p.payloadInMetadata !== undefined) mark(r, p.payloadInMetadata, v.payload);
  if (p.headerInMetadata !== undefined) mark(r, p.headerInMetadata, v.header);
  if (!p.forward && found.location.kind === 'header') r.removeRequestHeader(found.location.name);
  if (p.forwardPayloadHeader !== undefined) {
    let seg = found.token.split('.')[1] ?? '';
    if (p.padForwardPayloadHeader) seg += '='.repeat((4 - (seg.length % 4)) % 4);
    r.setRequestHeader(p.forwardPayloadHeader, seg);
  }
  for (const c of p.claimToHeaders) {
    const value = claimValue(v.payload, c.claim);
    if (value !== undefined) r.setRequestHeader(c.header, value);
  }
}

/** Tries the tokens found for a unit in order; the first that verifies wins. */
async function verifyUnit(u: VerifyUnit, tokens: readonly FoundToken[], r: FilterRequest): Promise<JwtStatus> {
  let last: JwtStatus = 'JwtMissed';
  for (const t of tokens) {
    const res = await verifyToken(u.provider, u.audiences, t.token, Date.now());
    if (res.status === 'Ok') {
      applySuccess(u.provider, t, res.verified, r);
      return 'Ok';
    }
    last = res.status;
  }
  if (u.provider.failedStatusInMetadata !== undefined) mark(r, u.provider.failedStatusInMetadata, { code: last, message: JWT_STATUS_MESSAGES[last] });
  return last;
}

/** "No token for me": missing, or a token some other issuer signed. */
function absent(s: JwtStatus): boolean {
  return s === 'JwtMissed' || s === 'JwtUnknownIssuer';
}

function combine(q: Requirement, results: ReadonlyMap<string, JwtStatus>): JwtStatus {
  switch (q.kind) {
    case 'unit': return results.get(q.unit.key) ?? 'JwtMissed';
    case 'all': {
      for (const c of q.children) {
        const s = combine(c, results);
        if (s !== 'Ok') return s;
      }
      return 'Ok';
    }
    case 'any': {
      let err: JwtStatus | undefined;
      for (const c of q.children) {
        const s = combine(c, results);
        if (s === 'Ok') return 'Ok';
        if (s !== 'JwtMissed') err ??= s;
      }
      return err ?? 'JwtMissed';
    }
    case 'allow_missing': {
      let err: JwtStatus | undefined;
      for (const u of q.units) {
        const s = results.get(u.key) ?? 'JwtMissed';
        if (s === 'Ok') return 'Ok';
        if (!absent(s)) err ??= s;
      }
      return err ?? 'Ok';
    }
    case 'allow_missing_or_failed': return 'Ok';
  }
}

function pathOnly(p: string): string {
  const q = p.indexOf('?');
  return q < 0 ? p : p.slice(0, q);
}

function refusal(s: JwtStatus, r: FilterRequest): LocalReplySpec {
  let auth = `Bearer realm="${r.connection.tls ? 'https' : 'http'}://${r.authority}${pathOnly(r.path)}"`;
  if (s !== 'JwtMissed') auth += ', error="invalid_token"';
  if (log().isLevelEnabled('debug')) log().debug({ jwt: { status: s, message: JWT_STATUS_MESSAGES[s], path: pathOnly(r.path) } }, `jwt_authn: ${JWT_STATUS_MESSAGES[s]}`);
  return { flag: 'JWT', status: s === 'JwtAudienceNotAllowed' ? 403 : 401, headers: { 'www-authenticate': auth } };
}

function decide(req: CompiledRequirement, results: ReadonlyMap<string, JwtStatus>, r: FilterRequest): FilterVerdict {
  const s = combine(req.root, results);
  return s === 'Ok' ? undefined : refusal(s, r);
}

export function createJwtFilter(cfg: JwtConfig): HttpFilter {
  return {
    decodeHeaders(r: FilterRequest, perRoute: unknown): FilterVerdict | Promise<FilterVerdict> {
      let req: CompiledRequirement | undefined;
      if (perRoute !== undefined) {
        const pr = perRoute as JwtPerRoute;
        if (pr.disabled) return undefined;
        req = cfg.requirementMap.get(pr.requirementName);
        // A route naming a requirement the listener lacks: refuse rather than let it through unchecked.
        if (req === undefined) return refusal('JwtVerificationFail', r);
      } else {
        for (const rule of cfg.rules) {
          if (rule.match(r)) { req = rule.requirement; break; }
        }
      }
      if (req === undefined) return undefined;
      if (cfg.bypassCorsPreflight && r.method === 'OPTIONS' && r.headers.origin !== undefined && r.headers['access-control-request-method'] !== undefined) return undefined;
      const results = new Map<string, JwtStatus>();
      let pending: Promise<void>[] | undefined;
      for (const u of req.units) {
        const tokens = extractTokens(u.provider.locations, r);
        if (tokens.length === 0) results.set(u.key, 'JwtMissed');
        else (pending ??= []).push(verifyUnit(u, tokens, r).then((s) => { results.set(u.key, s); }));
      }
      if (pending === undefined) return decide(req, results, r);
      const chosen = req;
      return Promise.all(pending).then(() => decide(chosen, results, r));
    },
  };
}

export const jwtFactory: FilterFactory = {
  name: JWT_FILTER_NAME,
  typeName: 'envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication',
  create: (fields: ProtoJson, path: string, deps: FilterDeps) => createJwtFilter(compileJwtAuthn(fields, path, deps)),
  compilePerRoute: (fields: ProtoJson, path: string) => compileJwtPerRoute(fields, path),
};
