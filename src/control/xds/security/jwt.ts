import type { Resource } from '../../../api/types.js';
import type { JwtProvider, SecurityPolicySpec } from '../../../api/securitypolicy/securitypolicy.js';
import { CLUSTER, TYPE_PREFIX } from '../../../xds/type-urls.js';
import { TLS_TRANSPORT_SOCKET, UPSTREAM_TLS_TYPE } from './tls.js';

/**
 * SecurityPolicy `jwt` → envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication.
 *
 * - Every provider of every policy covering the workload, named
 *   `<namespace>/<policy>/<provider>`.
 * - `payload_in_metadata` is the issuer (as Istio does): RBAC's claim matchers
 *   read `envoy.filters.http.jwt_authn` metadata at [issuer, claim...].
 * - One rule for every path: `required` (by any covering policy) → a valid token
 *   from one of the providers, else 401; otherwise requires_any [providers...,
 *   allow_missing]: no token passes, a bad token is refused.
 * - JWKS: `inline` → local_jwks.inline_string; `uri` → remote_jwks through a
 *   cluster `jwks|<host>:<port>` (STRICT_DNS, TLS for https with SNI = host,
 *   verified against the system roots file). The cluster must reach the proxy
 *   over CDS with the listener (jwksClusters).
 */

type Obj = Record<string, unknown>;
export const JWT_FILTER = 'envoy.filters.http.jwt_authn';
export const JWT_TYPE = `${TYPE_PREFIX}envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication`;
/** Roots a JWKS over https is checked against (Debian/Ubuntu/Alpine path, as Istio uses). */
export const SYSTEM_ROOTS_FILE = '/etc/ssl/certs/ca-certificates.crt';
const JWKS_TIMEOUT = { seconds: 5 };
const JWKS_CACHE = { seconds: 300 };

export interface JwtSetup {
  /** The http filter, or undefined when no covering policy has `jwt`. */
  filter: Obj | undefined;
  /** Metadata keys of verified payloads (RbacContext.jwtPayloadKeys). */
  payloadKeys: string[];
  /** Clusters for remote JWKS. */
  clusters: (Obj & { name: string })[];
}

function jwksTarget(uri: string): { host: string; port: number; tls: boolean } {
  const u = new URL(uri);
  const tls = u.protocol === 'https:';
  return { host: u.hostname, port: u.port === '' ? (tls ? 443 : 80) : Number(u.port), tls };
}

export function jwksClusterName(uri: string): string {
  const t = jwksTarget(uri);
  return `jwks|${t.host}:${t.port}`;
}

function jwksCluster(uri: string): Obj & { name: string } {
  const t = jwksTarget(uri);
  const name = jwksClusterName(uri);
  const c: Obj & { name: string } = {
    '@type': CLUSTER,
    name,
    type: 'STRICT_DNS',
    connect_timeout: { seconds: 5 },
    lb_policy: 'ROUND_ROBIN',
    load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: t.host, port_value: t.port } } } }] }] },
  };
  if (t.tls) {
    c.transport_socket = {
      name: TLS_TRANSPORT_SOCKET,
      typed_config: { '@type': UPSTREAM_TLS_TYPE, sni: t.host, common_tls_context: { validation_context: { trusted_ca: { filename: SYSTEM_ROOTS_FILE } } } },
    };
  }
  return c;
}

function provider(p: JwtProvider): Obj {
  const out: Obj = { issuer: p.issuer };
  if ((p.audiences?.length ?? 0) > 0) out.audiences = p.audiences;
  if (p.jwks.inline !== undefined) out.local_jwks = { inline_string: p.jwks.inline };
  else if (p.jwks.uri !== undefined) {
    out.remote_jwks = { http_uri: { uri: p.jwks.uri, cluster: jwksClusterName(p.jwks.uri), timeout: JWKS_TIMEOUT }, cache_duration: JWKS_CACHE };
  }
  if (p.forwardOriginalToken) out.forward = true;
  if (p.fromHeaders !== undefined) out.from_headers = p.fromHeaders.map((h) => (h.prefix !== undefined ? { name: h.name, value_prefix: h.prefix } : { name: h.name }));
  if (p.fromParams !== undefined) out.from_params = p.fromParams;
  out.payload_in_metadata = p.issuer;
  return out;
}

export function buildJwt(policies: readonly Resource<SecurityPolicySpec>[]): JwtSetup {
  const providers: Obj = {};
  const names: string[] = [];
  const keys = new Set<string>();
  const clusters = new Map<string, Obj & { name: string }>();
  let required = false;
  for (const pol of policies) {
    const j = pol.spec.jwt;
    if (j === undefined) continue;
    required ||= j.required;
    for (const p of j.providers) {
      const name = `${pol.metadata.namespace ?? 'default'}/${pol.metadata.name}/${p.name}`;
      providers[name] = provider(p);
      names.push(name);
      keys.add(p.issuer);
      if (p.jwks.uri !== undefined) {
        const c = jwksCluster(p.jwks.uri);
        clusters.set(c.name, c);
      }
    }
  }
  if (names.length === 0) return { filter: undefined, payloadKeys: [], clusters: [] };
  const one = (n: string): Obj => ({ provider_name: n });
  let requires: Obj;
  if (required) requires = names.length === 1 ? one(names[0] ?? '') : { requires_any: { requirements: names.map(one) } };
  else requires = { requires_any: { requirements: [...names.map(one), { allow_missing: {} }] } };
  return {
    filter: { name: JWT_FILTER, typed_config: { '@type': JWT_TYPE, providers, rules: [{ match: { prefix: '/' }, requires }] } },
    payloadKeys: [...keys],
    clusters: [...clusters.values()],
  };
}
